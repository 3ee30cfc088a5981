"""Collects an action's outputs as REAPI messages plus the blobs to upload.

Only what lies inside the action's input root is reported. An output path's directories are
resolved once (symlinks inside the root are fine) and must stay in the root; from there on,
everything is read through directory descriptors opened with O_NOFOLLOW, so a symlink swapped
in meanwhile (say, by a process the action left running) makes the collection fail rather than
read outside. Symlinks are reported as symlinks, never followed, and their targets must not
leave the working directory (tree_validation's rule). Anything refused raises OutputRefused:
the action fails with that message and nothing is uploaded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.tree_validation import command_violation, result_violation, target_rule
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

Blobs = Dict[BlobDigest, object]  # bytes or Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the type check must not block the executor.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutputRefused(Exception):
    """An output the executor will not report (it escapes the input root or the working
    directory); the message names it."""


def _hash_fd(fd: int) -> BlobDigest:
    h = hashlib.sha256()
    size = 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        h.update(chunk)
        size += len(chunk)
    return BlobDigest(h.hexdigest(), size)


def digest_file(path: Path) -> BlobDigest:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _hash_fd(fd)
    finally:
        os.close(fd)


def _is_executable(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)


def _file_at(dir_fd: int, name: str, shown: str) -> Tuple[BlobDigest, bool]:
    """The digest and executable bit of the regular file `name` of `dir_fd`."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise OutputRefused(f"output {shown!r} could not be opened without following a symlink ({exc.strerror})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutputRefused(f"output {shown!r} changed while it was collected (no longer a regular file)")
        return _hash_fd(fd), _is_executable(st)
    finally:
        os.close(fd)


def _open_dir_at(dir_fd: Optional[int], name, shown: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise OutputRefused(f"output {shown!r} could not be opened without following a symlink ({exc.strerror})")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _directory_at(
    fd: int, physical: Path, shown: str, depth: int, blobs: Blobs, children: Dict[BlobDigest, re_pb2.Directory]
) -> re_pb2.Directory:
    """The Directory for the open directory `fd` (at `physical`, shown as `shown`, `depth`
    levels below the working directory); file blobs and every sub-Directory are added to the
    maps."""
    directory = re_pb2.Directory()
    with os.scandir(fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        here = _join(shown, entry.name)
        st = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(entry.name, dir_fd=fd)
            rule = target_rule(target, depth)
            if rule is not None:
                raise OutputRefused(f"output {here!r} is a symlink the executor will not report: {rule} (for outputs, the root is the working directory)")
            directory.symlinks.add(name=entry.name, target=target)
        elif stat.S_ISDIR(st.st_mode):
            child_fd = _open_dir_at(fd, entry.name, here)
            try:
                sub = _directory_at(child_fd, physical / entry.name, here, depth + 1, blobs, children)
            finally:
                os.close(child_fd)
            data = sub.SerializeToString(deterministic=True)
            d = BlobDigest.of(data)
            children[d] = sub
            blobs[d] = data
            directory.directories.add(name=entry.name, digest=d.to_proto(re_pb2.Digest))
        elif stat.S_ISREG(st.st_mode):
            d, executable = _file_at(fd, entry.name, here)
            blobs[d] = physical / entry.name
            directory.files.add(name=entry.name, digest=d.to_proto(re_pb2.Digest), is_executable=executable)
    return directory


@dataclass
class CollectedOutputs:
    files: List[re_pb2.OutputFile] = field(default_factory=list)
    directories: List[re_pb2.OutputDirectory] = field(default_factory=list)
    symlinks: List[re_pb2.OutputSymlink] = field(default_factory=list)
    blobs: Blobs = field(default_factory=dict)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def _open_inside(root_real: str, real: str, shown: str) -> int:
    """A descriptor for the directory `real` (a resolved path inside `root_real`), opened one
    component at a time from the root, never through a symlink."""
    fd = _open_dir_at(None, root_real, shown)
    rel = os.path.relpath(real, root_real)
    for part in ([] if rel == "." else rel.split("/")):
        try:
            next_fd = _open_dir_at(fd, part, shown)
        finally:
            os.close(fd)
        fd = next_fd
    return fd


def collect_outputs(workdir: Path, command: re_pb2.Command) -> CollectedOutputs:
    """Outputs named by the command, relative to its working directory (`workdir`, which is
    the input root joined with command.working_directory); absent ones are skipped, as REAPI
    specifies. Raises OutputRefused for an output that would escape (see the module doc)."""
    refused = command_violation(command)
    if refused is not None:
        raise OutputRefused(f"the command's {refused}")
    levels = len([p for p in command.working_directory.split("/") if p])
    exec_root = workdir.parents[levels - 1] if levels else workdir
    root_real = os.path.realpath(exec_root)
    out = CollectedOutputs()
    trees: Dict[BlobDigest, re_pb2.Tree] = {}
    if command.output_paths:
        wanted: List[Tuple[str, str]] = [(p, "any") for p in command.output_paths]
    else:
        wanted = [(p, "file") for p in command.output_files] + [(p, "dir") for p in command.output_directories]
    for rel, kind in wanted:
        parts = rel.split("/") if rel else []
        parent = workdir.joinpath(*parts[:-1])
        if not os.path.lexists(parent):
            continue
        parent_real = os.path.realpath(parent)
        if not _inside(parent_real, root_real):
            raise OutputRefused(
                f"output {rel!r} resolves through a symlink to {os.path.join(parent_real, parts[-1] if parts else '')!r}, "
                "outside the action's input root"
            )
        if not os.path.isdir(parent_real):
            continue
        parent_fd = _open_inside(root_real, parent_real, rel)
        try:
            if not parts:
                _collect_dir(os.dup(parent_fd), Path(parent_real), rel, out, trees)
                continue
            name = parts[-1]
            try:
                st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=parent_fd)
                rule = target_rule(target, len(parts) - 1)
                if rule is not None:
                    raise OutputRefused(f"output {rel!r} is a symlink the executor will not report: {rule} (for outputs, the root is the working directory)")
                out.symlinks.append(re_pb2.OutputSymlink(path=rel, target=target))
            elif stat.S_ISDIR(st.st_mode) and kind in ("any", "dir"):
                _collect_dir(_open_dir_at(parent_fd, name, rel), Path(parent_real) / name, rel, out, trees)
            elif stat.S_ISREG(st.st_mode) and kind in ("any", "file"):
                d, executable = _file_at(parent_fd, name, rel)
                out.blobs[d] = Path(parent_real) / name
                out.files.append(re_pb2.OutputFile(path=rel, digest=d.to_proto(re_pb2.Digest), is_executable=executable))
        finally:
            os.close(parent_fd)
    # What the bridge will check, checked here first with the same rules.
    refused = result_violation(
        re_pb2.ActionResult(output_files=out.files, output_directories=out.directories, output_symlinks=out.symlinks),
        trees.get,
    )
    if refused is not None:
        raise OutputRefused(f"the action's outputs break a rule: {refused}")
    return out


def _collect_dir(fd: int, physical: Path, rel: str, out: CollectedOutputs, trees: Dict[BlobDigest, re_pb2.Tree]) -> None:
    """Adds the output directory open as `fd` (closed here) at `rel`."""
    try:
        children: Dict[BlobDigest, re_pb2.Directory] = {}
        depth = len(rel.split("/")) if rel else 0
        root = _directory_at(fd, physical, rel, depth, out.blobs, children)
    finally:
        os.close(fd)
    tree = re_pb2.Tree(root=root, children=[children[d] for d in sorted(children)])
    data = tree.SerializeToString(deterministic=True)
    d = BlobDigest.of(data)
    out.blobs[d] = data
    trees[d] = tree
    root_data = root.SerializeToString(deterministic=True)
    root_digest = BlobDigest.of(root_data)
    out.blobs[root_digest] = root_data
    out.directories.append(
        re_pb2.OutputDirectory(path=rel, tree_digest=d.to_proto(re_pb2.Digest), root_directory_digest=root_digest.to_proto(re_pb2.Digest))
    )
