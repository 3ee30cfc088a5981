"""Collects an action's outputs as REAPI messages plus the blobs to upload."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

Blobs = Dict[BlobDigest, object]  # bytes or Path


def digest_file(path: Path) -> BlobDigest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return BlobDigest(h.hexdigest(), size)



def _is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)


def directory_message(path: Path, blobs: Blobs, children: Dict[BlobDigest, re_pb2.Directory]) -> re_pb2.Directory:
    """The Directory for `path`; file blobs and every sub-Directory are added to the maps."""
    directory = re_pb2.Directory()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        p = Path(entry.path)
        if entry.is_symlink():
            directory.symlinks.add(name=entry.name, target=os.readlink(p))
        elif entry.is_dir():
            sub = directory_message(p, blobs, children)
            data = sub.SerializeToString(deterministic=True)
            d = BlobDigest.of(data)
            children[d] = sub
            blobs[d] = data
            directory.directories.add(name=entry.name, digest=d.to_proto(re_pb2.Digest))
        elif entry.is_file():
            d = digest_file(p)
            blobs[d] = p
            directory.files.add(name=entry.name, digest=d.to_proto(re_pb2.Digest), is_executable=_is_executable(entry.stat()))
    return directory


@dataclass
class CollectedOutputs:
    files: List[re_pb2.OutputFile] = field(default_factory=list)
    directories: List[re_pb2.OutputDirectory] = field(default_factory=list)
    symlinks: List[re_pb2.OutputSymlink] = field(default_factory=list)
    blobs: Blobs = field(default_factory=dict)


def collect_outputs(workdir: Path, command: re_pb2.Command) -> CollectedOutputs:
    """Outputs named by the command, relative to its working directory; absent ones are
    skipped, as REAPI specifies."""
    out = CollectedOutputs()
    if command.output_paths:
        wanted: List[Tuple[str, str]] = [(p, "any") for p in command.output_paths]
    else:
        wanted = [(p, "file") for p in command.output_files] + [(p, "dir") for p in command.output_directories]
    for rel, kind in wanted:
        path = workdir / rel
        if path.is_symlink():
            out.symlinks.append(re_pb2.OutputSymlink(path=rel, target=os.readlink(path)))
        elif path.is_dir() and kind in ("any", "dir"):
            children: Dict[BlobDigest, re_pb2.Directory] = {}
            root = directory_message(path, out.blobs, children)
            tree = re_pb2.Tree(root=root, children=[children[d] for d in sorted(children)])
            data = tree.SerializeToString(deterministic=True)
            d = BlobDigest.of(data)
            out.blobs[d] = data
            root_data = root.SerializeToString(deterministic=True)
            root_digest = BlobDigest.of(root_data)
            out.blobs[root_digest] = root_data
            out.directories.append(
                re_pb2.OutputDirectory(path=rel, tree_digest=d.to_proto(re_pb2.Digest), root_directory_digest=root_digest.to_proto(re_pb2.Digest))
            )
        elif path.is_file() and kind in ("any", "file"):
            d = digest_file(path)
            out.blobs[d] = path
            out.files.append(
                re_pb2.OutputFile(path=rel, digest=d.to_proto(re_pb2.Digest), is_executable=_is_executable(path.stat()))
            )
    return out
