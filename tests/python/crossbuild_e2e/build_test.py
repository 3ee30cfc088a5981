"""The crossbuild build rules through Pants 2.17, locally: reproducible archives, clear
compile errors, and a GoogleTest binary built from the machine's pinned googletest sources."""

import hashlib
import re
import subprocess
import tarfile
import textwrap
from pathlib import Path

from pants_project import run_pants, write_pants_project
from crossbuild_e2e.archive_shards_test import LIB_C, LIB_H, PLUGIN_ROOT, source_of_test, write_project

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


GOOGLETEST = Path("/usr/src/googletest/googletest")
GTEST_SOURCE = textwrap.dedent(
    """\
    #include <gtest/gtest.h>
    extern "C" {
    #include "mylib/lib.h"
    }

    template <class T> class Widths : public ::testing::Test {};
    using Types = ::testing::Types<char, short, long long>;
    TYPED_TEST_SUITE(Widths, Types);
    TYPED_TEST(Widths, HoldsSeven) { EXPECT_EQ(static_cast<int>(TypeParam{7}), cb_add(3, 4)); }

    class Adds : public ::testing::TestWithParam<int> {};
    TEST_P(Adds, One) { EXPECT_EQ(cb_add(GetParam(), 1), GetParam() + 1); }
    INSTANTIATE_TEST_SUITE_P(Small, Adds, ::testing::Values(0, 1, 2));

    TEST(Plain, Upper) { EXPECT_TRUE(cb_is_upper('Q')); }
    TEST(Plain, DISABLED_Never) { FAIL(); }
    """
)


def write_gtest_project(root: Path, pin: str = "") -> None:
    files = {"proj/mylib/lib.h": LIB_H, "proj/mylib/lib.c": LIB_C, "proj/tests/adds_test.cc": GTEST_SOURCE}
    digest = f'    digest="{pin}",\n' if pin else ""
    files["proj/BUILD"] = (
        'cc_sources(name="lib", sources=["mylib/*.c", "mylib/*.h"])\n'
        "crossbuild_system_directory(\n"
        '    name="googletest",\n'
        f'    path="{GOOGLETEST}",\n'
        '    globs=["include/**", "src/**"],\n'
        '    include_dirs=["include", "."],\n'
        '    sources=["src/gtest-all.cc", "src/gtest_main.cc"],\n'
        '    linkopts=["-lpthread"],\n'
        '    package="googletest",\n'
        f"{digest})\n"
        "crossbuild_test_archive(\n"
        '    name="tests-gtest",\n'
        '    framework="gtest",\n'
        '    sources=["tests/*_test.cc"],\n'
        '    dependencies=[":lib", ":googletest"],\n'
        '    include_dirs=["proj"],\n'
        '    platform="linux_x86_64",\n'
        ")\n"
    )
    write_pants_project(
        root,
        backends=["pants.backend.experimental.cc", "crossbuild"],
        plugin_root=PLUGIN_ROOT,
        sections='[source]\nroot_patterns = ["/"]\n',
        files=files,
    )


def test_a_googletest_binary_built_from_the_pinned_system_directory_lists_and_runs(tmp_path):
    assert GOOGLETEST.is_dir(), f"{GOOGLETEST} is missing: .ci/install-deps installs the Debian package googletest"
    project = tmp_path / "project"
    project.mkdir()
    store = tmp_path / "store"
    write_gtest_project(project)
    # No pin yet: the build stops and prints the digest to pin.
    result = package(project, store, "proj:tests-gtest")
    assert result.returncode != 0
    assert "proj:googletest has no `digest` pin" in result.stderr, result.stderr
    (pin,) = set(re.findall(r'digest="([0-9a-f]{64}:[0-9]+)"', result.stderr))
    pins = run_pants(project, store, "crossbuild-pins", "proj::", named_caches=SHARED_CACHES)
    assert pins.returncode == 1 and f'digest="{pin}"' in pins.stdout, pins.stdout + pins.stderr

    write_gtest_project(project, pin)
    result = package(project, store, "proj:tests-gtest")
    assert result.returncode == 0, result.stderr
    assert "bin/adds_test:" in result.stderr and "bytes (x86_64-linux-musl)" in result.stderr
    with tarfile.open(project / "dist" / "proj" / "tests-gtest.tar") as tar:
        manifest = tar.extractfile("manifest.txt").read().decode()
        tar.extractall(tmp_path / "unpacked")
    assert manifest.splitlines()[:4] == [
        "crossbuild-test-archive 2", "platform linux_x86_64", "target x86_64-linux-musl", "framework gtest",
    ]
    binary = tmp_path / "unpacked" / "bin" / "adds_test"
    listed = subprocess.run([str(binary), "--gtest_list_tests"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    # gtest_main.cc prints where main() comes from first: the sandbox path, not the machine's.
    assert listed.stdout.startswith(
        "Running main() from __crossbuild_system/usr/src/googletest/googletest/src/gtest_main.cc\n"
    ), listed.stdout
    lines = [l for l in listed.stdout.splitlines()[1:] if l]
    # Parameterised suites are instantiated when main() runs, so they come last.
    assert lines == [
        "Widths/0.  # TypeParam = char", "  HoldsSeven",
        "Widths/1.  # TypeParam = short", "  HoldsSeven",
        "Widths/2.  # TypeParam = long long", "  HoldsSeven",
        "Plain.", "  Upper", "  DISABLED_Never",
        "Small/Adds.", "  One/0  # GetParam() = 0", "  One/1  # GetParam() = 1", "  One/2  # GetParam() = 2",
    ], listed.stdout
    ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout
    assert "[  PASSED  ] 7 tests." in ran.stdout and "1 DISABLED TEST" in ran.stdout
