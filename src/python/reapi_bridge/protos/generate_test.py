"""The committed stubs must be exactly what generate.py produces from proto/."""

from __future__ import annotations

from pathlib import Path

from reapi_bridge.protos import generate

REGENERATE = "PYTHONPATH=src/python python -m reapi_bridge.protos.generate"


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    proto_root = generate.find_proto_root()
    written = generate.generate(tmp_path, proto_root)

    fresh = set(generate.existing_generated(tmp_path))
    assert fresh == set(written)
    assert any(p.name == "remote_execution_pb2.py" for p in fresh)

    committed_dir = generate.package_dir()
    committed = set(generate.existing_generated(committed_dir))
    missing = sorted(str(p) for p in fresh - committed)
    extra = sorted(str(p) for p in committed - fresh)
    assert not missing, f"generated files not committed: {missing}; run {REGENERATE}"
    assert not extra, f"committed files no .proto produces: {extra}; run {REGENERATE}"

    differing = sorted(
        str(p) for p in fresh if (committed_dir / p).read_bytes() != (tmp_path / p).read_bytes()
    )
    assert not differing, f"stale generated files: {differing}; run {REGENERATE}"


def test_generate_removes_stale_files_only(tmp_path: Path) -> None:
    stale = tmp_path / "build" / "gone" / "old_pb2.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("# from a deleted .proto\n")
    hand_written = tmp_path / "helpers.py"
    hand_written.write_text("X = 1\n")

    generate.generate(tmp_path, generate.find_proto_root())

    assert not stale.exists() and not stale.parent.exists()
    assert hand_written.read_text() == "X = 1\n"
    assert (tmp_path / "build" / "bazel" / "semver" / "semver_pb2.py").is_file()


def test_rewrite_imports_only_touches_our_packages() -> None:
    text = (
        "from build.bazel.semver import semver_pb2 as s\n"
        "from google.bytestream import bytestream_pb2 as b\n"
        "from google.devtools.remoteworkers.v1test2 import worker_pb2 as w\n"
        "from google.protobuf import any_pb2 as a\n"
        "from google.rpc import status_pb2 as st\n"
        "from google.longrunning import operations_pb2 as o\n"
        "from buildgrid.x import y\n"
    )
    assert generate.rewrite_imports(text).splitlines() == [
        "from reapi_bridge.protos.build.bazel.semver import semver_pb2 as s",
        "from reapi_bridge.protos.google.bytestream import bytestream_pb2 as b",
        "from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import worker_pb2 as w",
        "from google.protobuf import any_pb2 as a",
        "from google.rpc import status_pb2 as st",
        "from google.longrunning import operations_pb2 as o",
        "from buildgrid.x import y",
    ]
