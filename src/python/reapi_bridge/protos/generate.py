"""Regenerate the Python stubs in this package from the .proto sources in proto/.

Usage, from the repository root, in an environment that has the bridge's pinned
grpcio-tools and googleapis-common-protos installed:

    PYTHONPATH=src/python python -m reapi_bridge.protos.generate

This rewrites src/python/reapi_bridge/protos/{build,google}/ in place: for every
proto/**/*.proto it writes <name>_pb2.py, <name>_pb2.pyi and <name>_pb2_grpc.py,
adds an empty __init__.py to every generated package directory, and deletes
generated files whose .proto no longer exists. Optional arguments:

    python -m reapi_bridge.protos.generate [--proto-root DIR] [--out DIR]

protoc (grpc_tools.protoc) emits absolute imports such as
``from build.bazel.semver import semver_pb2``; those of our own protos are
rewritten to ``from reapi_bridge.protos.build.bazel.semver import semver_pb2``.
Imports of google.protobuf, google.rpc and google.longrunning are left alone:
those modules come from the protobuf and googleapis-common-protos distributions,
and our protos import them by the file names those modules register in the
descriptor pool, so nothing is defined twice.

One wrinkle: googleapis-common-protos ships the long-running operations schema
as google/longrunning/operations_proto.proto, yet its Python module registers it
under the upstream name google/longrunning/operations.proto (and
google.longrunning.operations_pb2 is the module that loads it). Our .proto
therefore imports "google/longrunning/operations.proto", and protoc is given a
temporary include directory in which that name is a copy of the shipped
operations_proto.proto.

The output is a pure function of the .proto files and the pinned grpcio-tools
version; generate_test.py regenerates into a temporary directory and fails if
the committed stubs differ.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

# Python package under which the generated modules live.
PACKAGE = "reapi_bridge.protos"

# Top-level proto packages that are ours (their imports get the PACKAGE prefix).
OWN_PREFIXES = ("blaze", "build", "crossbuild", "google.bytestream", "google.devtools.remoteworkers")

# File name suffixes that protoc produces; anything else is hand-written.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

# Top-level directories (of this package) that hold generated code only.
GENERATED_ROOTS = ("blaze", "build", "crossbuild", "google")

# A .proto that must exist under the proto root; used to recognize it.
_MARKER = Path("build/bazel/remote/execution/v2/remote_execution.proto")

_OWN_IMPORT_RE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<kw>from|import)(?P<sp>[ \t]+)"
    r"(?P<module>(?:" + "|".join(re.escape(p) for p in OWN_PREFIXES) + r")(?:\.[\w.]*)?)(?=[ \t]|$)",
    re.MULTILINE,
)


def package_dir() -> Path:
    """The directory of this package (where the stubs are committed)."""
    return Path(__file__).resolve().parent


def find_proto_root(start: Path | None = None) -> Path:
    """Locate the repository's proto/ directory.

    Tries ``<cwd>/proto`` first (a Pants test sandbox has it there), then walks
    up from this file.
    """
    candidates = [Path.cwd() if start is None else start]
    candidates.extend(package_dir().parents)
    for base in candidates:
        root = base / "proto"
        if (root / _MARKER).is_file():
            return root.resolve()
    raise FileNotFoundError(f"could not find proto/{_MARKER} from {candidates[0]} or above {__file__}")


# (name our protos import, name of the file googleapis-common-protos ships)
_ALIASES = (("google/longrunning/operations.proto", "google/longrunning/operations_proto.proto"),)


def include_paths() -> list[Path]:
    """Include directories for protoc besides the proto root (and the alias dir).

    grpc_tools ships google/protobuf/*.proto in grpc_tools/_proto;
    googleapis-common-protos ships google/rpc/*.proto, google/longrunning/*.proto
    and google/api/*.proto next to its modules.
    """
    import google.rpc.status_pb2
    import grpc_tools

    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    googleapis = Path(google.rpc.status_pb2.__file__).resolve().parent.parent.parent
    probes = [(well_known, "google/protobuf/any.proto"), (googleapis, "google/rpc/status.proto")]
    probes.extend((googleapis, shipped) for _, shipped in _ALIASES)
    for path, probe in probes:
        if not (path / probe).is_file():
            raise FileNotFoundError(f"{probe} not found under {path}")
    return [well_known, googleapis]


def _write_aliases(alias_root: Path, googleapis: Path) -> None:
    for name, shipped in _ALIASES:
        dest = alias_root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((googleapis / shipped).read_bytes())


def proto_files(proto_root: Path) -> list[Path]:
    """All .proto files under proto_root, relative to it, in a stable order."""
    return sorted(p.relative_to(proto_root) for p in proto_root.rglob("*.proto"))


def rewrite_imports(text: str) -> str:
    """Prefix imports of our own proto modules with PACKAGE."""
    return _OWN_IMPORT_RE.sub(
        lambda m: f"{m['indent']}{m['kw']}{m['sp']}{PACKAGE}.{m['module']}", text
    )


def _run_protoc(proto_root: Path, files: Sequence[Path], out: Path, alias_root: Path) -> None:
    # In-process, so it works wherever grpc_tools is importable (venv, PEX, Pants sandbox).
    from grpc_tools import protoc

    well_known, googleapis = include_paths()
    _write_aliases(alias_root, googleapis)
    args = ["grpc_tools.protoc", f"--proto_path={proto_root}"]
    args.extend(f"--proto_path={p}" for p in (alias_root, well_known, googleapis))
    args.extend([f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"])
    args.extend(str(proto_root / f) for f in files)
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc exited with {code} (its messages are on stderr): {args}")


def _package_dirs(rel_files: Iterable[Path]) -> set[Path]:
    dirs: set[Path] = set()
    for rel in rel_files:
        for parent in rel.parents:
            if parent != Path("."):
                dirs.add(parent)
    return dirs


def render(proto_root: Path | None = None) -> dict[Path, bytes]:
    """Run protoc and return {path relative to the package dir: contents}."""
    proto_root = find_proto_root() if proto_root is None else proto_root.resolve()
    files = proto_files(proto_root)
    if not files:
        raise FileNotFoundError(f"no .proto files under {proto_root}")
    result: dict[Path, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="reapi-protoc-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        _run_protoc(proto_root, files, out, Path(tmp) / "aliases")
        for path in sorted(out.rglob("*")):
            if path.is_file():
                rel = path.relative_to(out)
                text = path.read_text(encoding="utf-8")
                result[rel] = rewrite_imports(text).encode("utf-8")
    unexpected = sorted(str(rel) for rel in result if rel.parts[0] not in GENERATED_ROOTS)
    if unexpected:
        raise RuntimeError(f"protoc wrote outside {GENERATED_ROOTS}: {unexpected}; extend GENERATED_ROOTS")
    for d in sorted(_package_dirs(result)):
        result.setdefault(d / "__init__.py", b"")
    return dict(sorted(result.items()))


def is_generated(rel: Path) -> bool:
    """Whether a path (relative to the package dir) belongs to the generated tree."""
    if len(rel.parts) < 2 or rel.parts[0] not in GENERATED_ROOTS or "__pycache__" in rel.parts:
        return False  # generate.py, BUILD, tests, ... are hand-written
    return rel.name == "__init__.py" or rel.name.endswith(GENERATED_SUFFIXES)


def existing_generated(out_dir: Path) -> list[Path]:
    """Generated files currently present under out_dir, relative to it."""
    if not out_dir.is_dir():
        return []
    return sorted(
        p.relative_to(out_dir)
        for p in out_dir.rglob("*")
        if p.is_file() and is_generated(p.relative_to(out_dir))
    )


def generate(out_dir: Path, proto_root: Path | None = None) -> list[Path]:
    """Generate the stubs into out_dir; return the written paths, relative to it.

    Stale generated files in out_dir (from deleted .proto files) are removed.
    """
    out_dir = Path(out_dir)
    rendered = render(proto_root)
    for stale in existing_generated(out_dir):
        if stale not in rendered:
            (out_dir / stale).unlink()
    for rel, data in rendered.items():
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_file() or dest.read_bytes() != data:
            dest.write_bytes(data)
    # Drop directories left empty by stale-file removal.
    for root in GENERATED_ROOTS:
        dirs = [p for p in (out_dir / root).rglob("*") if p.is_dir()] if (out_dir / root).is_dir() else []
        for d in sorted(dirs, reverse=True):
            if d.name != "__pycache__" and not any(d.iterdir()):
                d.rmdir()
    return list(rendered)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", type=Path, default=None, help="default: ./proto")
    parser.add_argument("--out", type=Path, default=None, help="default: this package's directory")
    args = parser.parse_args(argv)
    out = package_dir() if args.out is None else args.out
    written = generate(out, args.proto_root)
    print(f"generated {len(written)} files into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
