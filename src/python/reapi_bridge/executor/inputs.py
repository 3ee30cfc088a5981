"""Materialises an action's input root from the CAS, fast when the same inputs recur.

Two local caches, both content-addressed and read-only once written:
  files/<hash>[.x]        every input file ever fetched; sandboxes get hard links to them
  dirs/<hash>-<size>/     whole directory trees with at least `dir_threshold` files (say, a
                          toolchain of 20,000 files); sandboxes get one symlink to them
A directory seen before therefore costs one symlink, not one link per file. Actions run as
an unprivileged user when the executor is root (see ActionRunner), so they cannot write to
either cache, and what later actions see stays what the digests say.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.tree import files_under, parse_directories, walk_directories
from reapi_bridge.client.client import Client
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

logger = logging.getLogger(__name__)

DEFAULT_DIR_THRESHOLD = 256
_MAX_REMEMBERED_DIRECTORIES = 200_000


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
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- public

    def materialize(self, root: BlobDigest, dest: Path, keep: Optional[Sequence[str]] = None) -> None:
        """Creates `dest` (which must not exist) holding the input tree `root`. With `keep`
        (a chain of directory names from `dest` down, maybe empty), `dest` must exist and be
        empty but for that chain of empty real directories (see `empty_except`), which are
        filled in place: a running worker's working directory stays the same directory."""
        tree = self._fetch_tree(root, prune=keep is None)
        counts = self._file_counts(root, tree)
        self._ensure_files(self._files_in(root, tree))
        if keep is not None:
            self._build_into(root, dest, tree, counts, list(keep))
        else:
            dest.mkdir(parents=True)
            self._build(root, dest, tree, counts)

    def listing(self, root: BlobDigest) -> List[Tuple[str, re_pb2.FileNode]]:
        """(path, FileNode) of every file of the input tree, cached directories included."""
        return list(files_under(root, self._fetch_tree(root, prune=False)))

    # ----------------------------------------------------------------------------- tree

    def _cached_dir(self, digest: BlobDigest) -> Path:
        return self.dirs_dir / f"{digest.hash}-{digest.size}"

    def _fetch_tree(self, root: BlobDigest, prune: bool = True) -> Dict[BlobDigest, re_pb2.Directory]:
        """Every Directory under root (with `prune`: not already materialised whole in the cache)."""

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

        return dict(walk_directories(root, fetch, prune=lambda d: prune and self._cached_dir(d).is_dir()))

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

    def _link_file(self, digest: BlobDigest, executable: bool, dest: Path) -> None:
        source = self._file_path(digest, executable)
        if executable and not source.exists():
            tmp = self.tmp_dir / uuid.uuid4().hex
            shutil.copyfile(self._file_path(digest, False), tmp)
            os.chmod(tmp, 0o555)
            os.replace(tmp, source)
        try:
            os.link(source, dest)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            shutil.copy2(source, dest)  # too many links to one inode: a private copy

    # ----------------------------------------------------------------------------- build

    def _build(self, digest: BlobDigest, dest: Path, tree, counts) -> None:
        directory = tree[digest]
        for f in directory.files:
            self._link_file(BlobDigest.from_proto(f.digest), f.is_executable, dest / f.name)
        for s in directory.symlinks:
            os.symlink(s.target, dest / s.name)
        self._build_children(digest, dest, tree, counts)

    def _build_children(self, digest: BlobDigest, dest: Path, tree, counts) -> None:
        for child in tree[digest].directories:
            cd = BlobDigest.from_proto(child.digest)
            target = dest / child.name
            cached = self._cached_dir(cd)
            if cached.is_dir():
                os.symlink(cached, target)
            elif counts.get(cd, 0) >= self.dir_threshold:
                self._build_cached_dir(cd, tree, counts)
                os.symlink(cached, target)
            else:
                target.mkdir()
                self._build(cd, target, tree, counts)

    def _build_into(self, digest: BlobDigest, dest: Path, tree, counts, keep: List[str]) -> None:
        """Like _build, into an existing `dest`, descending into the kept directory in place."""
        directory = tree[digest]
        kept = next((c for c in directory.directories if c.name == keep[0]), None) if keep else None
        for f in directory.files:
            self._link_file(BlobDigest.from_proto(f.digest), f.is_executable, dest / f.name)
        for s in directory.symlinks:
            os.symlink(s.target, dest / s.name)
        others = re_pb2.Directory(directories=[c for c in directory.directories if c is not kept])
        if others.directories:
            tree = {**tree, digest: others}
            self._build_children(digest, dest, tree, counts)
        if kept is not None:
            self._build_into(BlobDigest.from_proto(kept.digest), dest / kept.name, tree, counts, keep[1:])

    def _build_cached_dir(self, digest: BlobDigest, tree, counts) -> None:
        tmp = self.tmp_dir / f"dir-{uuid.uuid4().hex}"
        tmp.mkdir()
        self._build(digest, tmp, tree, counts)
        _make_read_only(tmp)
        try:
            os.rename(tmp, self._cached_dir(digest))
        except OSError:  # another action built it first
            _force_remove(tmp)
        logger.info("cached input directory %s (%d files)", digest, counts.get(digest, 0))


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
    for dirpath, dirnames, _ in os.walk(root):
        os.chmod(dirpath, 0o555)


def _force_remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    for dirpath, _, _ in os.walk(path):
        try:
            os.chmod(dirpath, 0o755)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def empty_except(root: Path, keep: Sequence[str]) -> None:
    """Removes everything in `root` but the chain of real directories `keep` (names from
    `root` down), which are emptied the same way (created where missing)."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(root):
        if keep and entry.name == keep[0] and entry.is_dir(follow_symlinks=False):
            continue
        _force_remove(Path(entry.path))
    if keep:
        empty_except(root / keep[0], keep[1:])


def remove_tree(path: Path) -> None:
    """Removes a sandbox, including read-only directories an action may have made."""
    _force_remove(path)
