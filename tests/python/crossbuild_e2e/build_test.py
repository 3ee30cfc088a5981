"""The crossbuild build rules through Pants 2.17, locally: reproducible archives and clear
compile errors."""

import hashlib
from pathlib import Path

from pants_project import run_pants
from crossbuild_e2e.archive_shards_test import source_of_test, write_project

# zig builds libc for a target once per cache; sharing the cache across the projects of this
# module keeps that to one build.
SHARED_CACHES = Path("/tmp/crossbuild-e2e-named-caches")


def package(project: Path, store: Path, *targets: str):
    return run_pants(project, store, "package", *targets, named_caches=SHARED_CACHES)


def test_same_sources_give_byte_identical_archives_anywhere(tmp_path):
    digests = []
    for where in ("first/place", "second/elsewhere/deeper"):
        project = tmp_path / where
        project.mkdir(parents=True)
        write_project(project)
        result = package(project, tmp_path / f"store-{len(digests)}", "proj:tests-arm64")
        assert result.returncode == 0, result.stderr
        assert "bin/alpha_test:" in result.stderr and "bytes (aarch64-linux-musl)" in result.stderr
        tar = project / "dist" / "proj" / "tests-arm64.tar"
        digests.append(hashlib.sha256(tar.read_bytes()).hexdigest())
    assert digests[0] == digests[1], "archives differ between two checkouts"


def test_compile_error_names_target_and_shows_diagnostics(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    broken = project / "proj" / "tests" / "beta_test.c"
    broken.write_text(source_of_test("beta", 2) + "CB_TEST(broken) { int x = undefined_symbol; (void)x; }\n")
    result = package(project, tmp_path / "store", "proj:tests-arm64")
    assert result.returncode != 0
    assert "proj:tests-arm64" in result.stderr
    assert "proj/tests/beta_test.c" in result.stderr
    assert "undefined_symbol" in result.stderr and "error:" in result.stderr
