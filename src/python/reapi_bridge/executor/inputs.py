"""Materialises an action's input root from the CAS, fast when the same inputs recur.

Two local caches, both content-addressed and read-only once written:
  files/<hash>[.x]        every input file ever fetched; sandboxes get hard links to them
  dirs/<hash>-<size>/     whole directory trees with at least `dir_threshold` files (say, a
                          toolchain of 20,000 files); sandboxes get one symlink to them
A directory seen before therefore costs one symlink, not one link per file. Actions run as
an unprivileged user when the executor is root (see ActionRunner), so they cannot write to
either cache, and what later actions see stays what the digests say.

An input tree that breaks tree_validation's rules (a name like "..", a symlink out of the
root, ...) is refused before anything is written (InvalidTree). Writes into a sandbox never
follow a symlink: every entry is made relative to its directory's descriptor, and every
directory is opened with O_NOFOLLOW, so a symlink in the tree, or one a worker or an earlier
action left, cannot redirect them.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.tree import files_under, parse_directories, walk_directories
from reapi_bridge.common.tree_validation import require, tree_violation
from reapi_bridge.client.client import Client
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

logger = logging.getLogger(__name__)

DEFAULT_DIR_THRESHOLD = 256
_MAX_REMEMBERED_DIRECTORIES = 200_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(name, dir_fd: Optional[int] = None) -> int:
    """A descriptor for the directory `name` (relative to `dir_fd`), never through a symlink
    in its last component (ELOOP / ENOTDIR then)."""
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


class InputMaterializer:
    def __init__(
        self,
        cas: Client,
        cache_root: Path,
        dir_threshold: int = DEFAULT_DIR_THRESHOLD,
        max_bytes: int = 20 << 30,
    ) -> None:
        self.cas = cas
        # No eviction while actions run (a linked file may be in use); a cache over its limit
        # is emptied when the executor starts.
        if cache_root.exists() and _tree_bytes(cache_root) > max_bytes:
            logger.warning("input cache %s is over %d bytes; emptying it", cache_root, max_bytes)
            _force_remove(cache_root)
        self.files_dir = cache_root / "files"
        self.dirs_dir = cache_root / "dirs"
        self.tmp_dir = cache_root / "tmp"
        for d in (self.files_dir, self.dirs_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_dir.iterdir():
            _force_remove(leftover)
        self.dir_threshold = dir_threshold
        self._directories: "OrderedDict[BlobDigest, re_pb2.Directory]" = OrderedDict()
        self._valid = _ValidSubtrees()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- public

    def check(self, root: BlobDigest) -> None:
        """Raises InvalidTree (naming the path and the rule) if the input tree breaks
        tree_validation's rules. Subtrees found valid before are not looked at again."""
        if self._valid.get(root) == 0:
            return
        # Fetched level by level (and remembered) first, so the check reads no Directory alone.
        self._fetch_tree(root, skip=self._valid.__contains__)
        require(tree_violation(root, self._directory, known_valid=self._valid), "input root: ")

    def materialize(self, root: BlobDigest, dest: Path, keep: Optional[Sequence[str]] = None) -> None:
        """Creates `dest` (which must not exist) holding the input tree `root`. With `keep`
        (a chain of directory names from `dest` down, maybe empty), `dest` must exist and be
        empty but for that chain of empty real directories (see `empty_except`), which are
        filled in place: a running worker's working directory stays the same directory.
        A malformed tree is refused (InvalidTree) before anything is written."""
        self.check(root)
        tree = self._fetch_tree(root, prune=keep is None)
        counts = self._file_counts(root, tree)
        self._ensure_files(self._files_in(root, tree))
        if keep is None:
            dest.mkdir(parents=True)
        fd = open_dir(dest)
        try:
            if keep is not None:
                self._build_into(root, fd, tree, counts, list(keep))
            else:
                self._build(root, fd, tree, counts)
        finally:
            os.close(fd)

    def listing(self, root: BlobDigest) -> List[Tuple[str, re_pb2.FileNode]]:
        """(path, FileNode) of every file of the input tree, cached directories included."""
        return list(files_under(root, self._fetch_tree(root, prune=False)))

    # ----------------------------------------------------------------------------- tree

    def _cached_dir(self, digest: BlobDigest) -> Path:
        return self.dirs_dir / f"{digest.hash}-{digest.size}"

    def _fetch_tree(
        self, root: BlobDigest, prune: bool = True, skip: Optional[Callable[[BlobDigest], bool]] = None
    ) -> Dict[BlobDigest, re_pb2.Directory]:
        """Every Directory under root (with `prune`: not already materialised whole in the cache;
        with `skip`: not one it says True for)."""

        def fetch(level):
            found = {}
            with self._lock:
                for d in level:
                    known = self._directories.get(d)
                    if known is not None:
                        found[d] = known
            fetched = parse_directories(self.cas.read_many(d for d in level if d not in found), re_pb2.Directory)
            for d, directory in fetched.items():
                self._remember(d, directory)
            found.update(fetched)
            return found

        if skip is not None:
            return dict(walk_directories(root, fetch, prune=skip))
        return dict(walk_directories(root, fetch, prune=lambda d: prune and self._cached_dir(d).is_dir()))

    def _directory(self, digest: BlobDigest) -> Optional[re_pb2.Directory]:
        """One Directory, remembered or read from the CAS; None when the CAS does not have it."""
        with self._lock:
            known = self._directories.get(digest)
        if known is not None:
            return known
        found = parse_directories(self.cas.read_many([digest]), re_pb2.Directory).get(digest)
        if found is not None:
            self._remember(digest, found)
        return found

    def _remember(self, digest: BlobDigest, directory: re_pb2.Directory) -> None:
        with self._lock:
            self._directories[digest] = directory
            while len(self._directories) > _MAX_REMEMBERED_DIRECTORIES:
                self._directories.popitem(last=False)

    def _file_counts(self, root: BlobDigest, tree) -> Dict[BlobDigest, int]:
        counts: Dict[BlobDigest, int] = {}

        def count(d: BlobDigest) -> int:
            if d in counts:
                return counts[d]
            if d not in tree:  # already a cached directory
                counts[d] = 0
                return 0
            directory = tree[d]
            n = len(directory.files) + sum(count(BlobDigest.from_proto(c.digest)) for c in directory.directories)
            counts[d] = n
            return n

        count(root)
        return counts

    def _files_in(self, root: BlobDigest, tree) -> Set[BlobDigest]:
        files: Set[BlobDigest] = set()
        for directory in tree.values():
            files.update(BlobDigest.from_proto(f.digest) for f in directory.files)
        return files

    # ----------------------------------------------------------------------------- files

    def _file_path(self, digest: BlobDigest, executable: bool) -> Path:
        return self.files_dir / (digest.hash + (".x" if executable else ""))

    def _ensure_files(self, digests: Iterable[BlobDigest]) -> None:
        missing = [d for d in digests if not self._file_path(d, False).exists()]
        small = [d for d in missing if d.size <= (1 << 20)]
        for i in range(0, len(small), 500):
            for d, data in self.cas.read_many(small[i : i + 500]).items():
                self._store_file(d, data)
        for d in missing:
            if d.size > (1 << 20):
                tmp = self.tmp_dir / uuid.uuid4().hex
                self.cas.download_to(d, tmp)
                os.chmod(tmp, 0o444)
                os.replace(tmp, self._file_path(d, False))

    def _store_file(self, digest: BlobDigest, data: bytes) -> None:
        tmp = self.tmp_dir / uuid.uuid4().hex
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o444)
        os.replace(tmp, self._file_path(digest, False))

    def _link_file(self, digest: BlobDigest, executable: bool, dir_fd: int, name: str) -> None:
        source = self._file_path(digest, executable)
        if executable and not source.exists():
            tmp = self.tmp_dir / uuid.uuid4().hex
            shutil.copyfile(self._file_path(digest, False), tmp)
            os.chmod(tmp, 0o555)
            os.replace(tmp, source)
        try:
            os.link(source, name, dst_dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            _copy_into(source, dir_fd, name)  # too many links to one inode: a private copy

    # ----------------------------------------------------------------------------- build
    # Every entry is made relative to its directory's descriptor; names were checked (no "/",
    # not "." or ".."), so each is one entry of that directory, and none follows a symlink.

    def _build(self, digest: BlobDigest, fd: int, tree, counts) -> None:
        directory = tree[digest]
        for f in directory.files:
            self._link_file(BlobDigest.from_proto(f.digest), f.is_executable, fd, f.name)
        for s in directory.symlinks:
            os.symlink(s.target, s.name, dir_fd=fd)
        self._build_children(digest, fd, tree, counts)

    def _build_children(self, digest: BlobDigest, fd: int, tree, counts) -> None:
        for child in tree[digest].directories:
            cd = BlobDigest.from_proto(child.digest)
            cached = self._cached_dir(cd)
            if cached.is_dir():
                os.symlink(cached, child.name, dir_fd=fd)
            elif counts.get(cd, 0) >= self.dir_threshold:
                self._build_cached_dir(cd, tree, counts)
                os.symlink(cached, child.name, dir_fd=fd)
            else:
                os.mkdir(child.name, dir_fd=fd)
                child_fd = open_dir(child.name, fd)
                try:
                    self._build(cd, child_fd, tree, counts)
                finally:
                    os.close(child_fd)

    def _build_into(self, digest: BlobDigest, fd: int, tree, counts, keep: List[str]) -> None:
        """Like _build, into an existing directory, descending into the kept directory in place."""
        directory = tree[digest]
        kept = next((c for c in directory.directories if c.name == keep[0]), None) if keep else None
        for f in directory.files:
            self._link_file(BlobDigest.from_proto(f.digest), f.is_executable, fd, f.name)
        for s in directory.symlinks:
            os.symlink(s.target, s.name, dir_fd=fd)
        others = re_pb2.Directory(directories=[c for c in directory.directories if c is not kept])
        if others.directories:
            tree = {**tree, digest: others}
            self._build_children(digest, fd, tree, counts)
        if kept is not None:
            kept_fd = open_dir(kept.name, fd)
            try:
                self._build_into(BlobDigest.from_proto(kept.digest), kept_fd, tree, counts, keep[1:])
            finally:
                os.close(kept_fd)

    def _build_cached_dir(self, digest: BlobDigest, tree, counts) -> None:
        tmp = self.tmp_dir / f"dir-{uuid.uuid4().hex}"
        tmp.mkdir()
        fd = open_dir(tmp)
        try:
            self._build(digest, fd, tree, counts)
        finally:
            os.close(fd)
        _make_read_only(tmp)
        try:
            os.rename(tmp, self._cached_dir(digest))
        except OSError:  # another action built it first
            _force_remove(tmp)
        logger.info("cached input directory %s (%d files)", digest, counts.get(digest, 0))


class _ValidSubtrees:
    """digest -> the least depth at which its whole subtree was found valid (tree_violation's
    `known_valid`), shared by concurrent actions, the most recently found kept."""

    def __init__(self) -> None:
        self._depths: "OrderedDict[BlobDigest, int]" = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, digest: BlobDigest) -> bool:
        with self._lock:
            return digest in self._depths

    def get(self, digest: BlobDigest, default=None):
        with self._lock:
            return self._depths.get(digest, default)

    def __setitem__(self, digest: BlobDigest, depth: int) -> None:
        with self._lock:
            self._depths[digest] = depth
            self._depths.move_to_end(digest)
            while len(self._depths) > _MAX_REMEMBERED_DIRECTORIES:
                self._depths.popitem(last=False)


def _copy_into(source: Path, dir_fd: int, name: str) -> None:
    """A copy of `source` as the new entry `name` of `dir_fd` (never through a symlink), with
    its mode."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with open(source, "rb") as src, os.fdopen(os.dup(fd), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.fchmod(fd, stat.S_IMODE(os.stat(source).st_mode))
    finally:
        os.close(fd)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _make_read_only(root: Path) -> None:
    for _, _, _, dir_fd in os.fwalk(root):
        os.fchmod(dir_fd, 0o555)


def _force_remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    try:  # descriptors, not paths: a symlink swapped in never gets chmod'ed
        for _, _, _, dir_fd in os.fwalk(path):
            try:
                os.fchmod(dir_fd, 0o755)
            except OSError:
                pass
    except OSError:
        pass
    shutil.rmtree(path, ignore_errors=True)


def _remove_at(dir_fd: int, name: str) -> None:
    """Removes the entry `name` of `dir_fd` and, for a directory, everything in it, never
    following a symlink."""
    if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = open_dir(name, dir_fd)
    try:
        os.fchmod(fd, 0o700)
        for entry in list(os.scandir(fd)):
            _remove_at(fd, entry.name)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def empty_except(root: Path, keep: Sequence[str]) -> None:
    """Removes everything in `root` but the chain of real directories `keep` (names from
    `root` down), which are emptied the same way (created where missing). Works through
    directory descriptors: a symlink in the chain (say, one a worker made) is removed, never
    followed."""
    root.mkdir(parents=True, exist_ok=True)
    fd = open_dir(root)
    try:
        _empty_except_at(fd, list(keep))
    finally:
        os.close(fd)


def _empty_except_at(fd: int, keep: List[str]) -> None:
    for entry in list(os.scandir(fd)):
        if keep and entry.name == keep[0] and entry.is_dir(follow_symlinks=False):
            continue
        _remove_at(fd, entry.name)
    if keep:
        try:
            os.mkdir(keep[0], dir_fd=fd)
        except FileExistsError:
            pass
        child = open_dir(keep[0], fd)
        try:
            _empty_except_at(child, keep[1:])
        finally:
            os.close(child)


def make_dirs(root: Path, parts: Sequence[str]) -> None:
    """Creates the directories `parts` (names from `root` down) where missing, through
    directory descriptors: where one is a symlink (or not a directory) it stops there, so
    nothing is ever created through a symlink. Names must be plain (checked by
    tree_validation's path rules)."""
    fd = open_dir(root)
    try:
        for name in parts:
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = open_dir(name, fd)
            except OSError:  # a symlink or a file: not ours to create through
                return
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Removes a sandbox, including read-only directories an action may have made."""
    _force_remove(path)
