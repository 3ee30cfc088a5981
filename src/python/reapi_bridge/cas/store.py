"""The content-addressable store: blobs on disk, named by their SHA-256, with LRU eviction.

Layout under the CAS root:
    blobs/ab/abcdef...   complete, verified blobs, fanned out by the first two hex digits
    tmp/                 whole-blob writes in progress (removed at start-up: never resumable)
    uploads/             resumable ByteStream uploads, kept until finished or expired

A blob only ever appears under blobs/ by an atomic rename, after its size and SHA-256 were
checked and its data was fsynced, so a reader never sees a partial or wrong blob. The index
of what is stored lives in memory (hash -> size, least recently used first) and is rebuilt
from disk on start-up, ordered by modification time, which reads refresh.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, List, Optional, Tuple

from reapi_bridge.common.digests import EMPTY_HASH, BlobDigest
from reapi_bridge.common.errors import (
    Aborted,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ResourceExhausted,
    StorageFailure,
)

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

READ_CHUNK_BYTES = 1 << 20
# Large writes ask the kernel to start writeback every this many bytes, so the disk works
# while the rest of the blob arrives and the final fsync has little left to do.
WRITEBACK_BYTES = 8 << 20


def _writeback_starter():
    """sync_file_range(fd, offset, n, SYNC_FILE_RANGE_WRITE), or None where unavailable."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return lambda fd, offset, n: fn(fd, offset, n, 2)
    except (OSError, AttributeError):
        return None


_start_writeback = _writeback_starter()


def _storage_failure(what: str, exc: OSError) -> StorageFailure:
    disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    reason = "the disk is full" if disk_full else os.strerror(exc.errno or errno.EIO)
    return StorageFailure(f"could not {what}: {reason} ({exc})", disk_full=disk_full)


@dataclass(frozen=True)
class CasStats:
    blob_count: int
    total_bytes: int
    max_bytes: int
    evicted_blobs: int


class ContentAddressableStorage:
    """A disk-backed CAS shared by all instances of one bridge. Thread-safe."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        fsync: bool = True,
        upload_expiry_seconds: float = 3600.0,
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.upload_expiry_seconds = upload_expiry_seconds
        self._blobs_dir = self.root / "blobs"
        self._tmp_dir = self.root / "tmp"
        self._uploads_dir = self.root / "uploads"
        self._lock = threading.Lock()
        self._index: "OrderedDict[str, int]" = OrderedDict()
        self._total_bytes = 0
        self._evicted = 0
        self._uploads_in_progress: set = set()
        self._last_upload_sweep = 0.0
        self._prepare_dirs()
        self._rebuild_index()

    # ----------------------------------------------------------------------------- set-up

    def _prepare_dirs(self) -> None:
        for d in (self._blobs_dir, self._tmp_dir, self._uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        for i in range(256):
            (self._blobs_dir / f"{i:02x}").mkdir(exist_ok=True)
        # Whole-blob writes cannot be resumed, so what a crash left behind is garbage.
        for leftover in self._tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)

    def _rebuild_index(self) -> None:
        found = []
        for fan_dir in self._blobs_dir.iterdir():
            if not fan_dir.is_dir():
                continue
            with os.scandir(fan_dir) as entries:
                for entry in entries:
                    if not _HEX64.match(entry.name) or not entry.name.startswith(fan_dir.name):
                        continue
                    st = entry.stat()
                    found.append((st.st_mtime_ns, entry.name, st.st_size))
        found.sort()
        for _, blob_hash, size in found:
            self._index[blob_hash] = size
            self._total_bytes += size
        logger.info(
            "CAS at %s: %d blobs, %d bytes (limit %d)",
            self.root,
            len(self._index),
            self._total_bytes,
            self.max_bytes,
        )
        self._evict_over_limit(keep=None)

    # ----------------------------------------------------------------------------- queries

    def blob_path(self, digest: BlobDigest) -> Path:
        return self._blobs_dir / digest.hash[:2] / digest.hash

    def contains(self, digest: BlobDigest) -> bool:
        if digest.is_empty:
            return True
        with self._lock:
            size = self._index.get(digest.hash)
            if size is None or size != digest.size:
                return False
            self._index.move_to_end(digest.hash)
            return True

    def find_missing(self, digests: Iterable[BlobDigest]) -> List[BlobDigest]:
        """Digests not stored, in request order; present ones count as recently used."""
        missing = []
        index = self._index
        with self._lock:
            for digest in digests:
                if digest.size == 0 and digest.hash == EMPTY_HASH:
                    continue
                size = index.get(digest.hash)
                if size is None or size != digest.size:
                    missing.append(digest)
                else:
                    index.move_to_end(digest.hash)
        return missing

    def find_missing_hashes(self, pairs: List[Tuple[str, int]]) -> List[int]:
        """Positions of the (hash, size) pairs not stored; the fast path of FindMissingBlobs.

        Pairs are not validated: a malformed hash is simply not in the index, so the caller
        validates only what is reported missing.
        """
        missing = []
        index = self._index
        touch = index.move_to_end
        with self._lock:
            for i, (blob_hash, size) in enumerate(pairs):
                if index.get(blob_hash) == size:
                    touch(blob_hash)
                elif size != 0 or blob_hash != EMPTY_HASH:
                    missing.append(i)
        return missing

    def stats(self) -> CasStats:
        with self._lock:
            return CasStats(len(self._index), self._total_bytes, self.max_bytes, self._evicted)

    def digests(self) -> List[BlobDigest]:
        with self._lock:
            return [BlobDigest(h, s) for h, s in self._index.items()]

    # ----------------------------------------------------------------------------- reads

    def open(self, digest: BlobDigest) -> BinaryIO:
        """An open file positioned at 0; NotFound if the blob is not stored."""
        if digest.is_empty:
            import io

            return io.BytesIO(b"")
        if not self.contains(digest):
            raise NotFound(f"blob {digest} is not in the CAS")
        path = self.blob_path(digest)
        try:
            f = open(path, "rb", buffering=0)
        except FileNotFoundError:
            self._forget(digest.hash)
            raise NotFound(f"blob {digest} is not in the CAS")
        try:
            os.utime(f.fileno())
        except OSError:
            pass
        return f  # type: ignore[return-value]

    def read_bytes(self, digest: BlobDigest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def read_chunks(
        self, digest: BlobDigest, offset: int = 0, limit: int = 0, chunk_bytes: int = READ_CHUNK_BYTES
    ) -> Iterator[bytes]:
        """Yields the bytes [offset, offset+limit) of a blob (limit 0: to the end).

        Validation happens before the first chunk is produced, so errors surface at once.
        """
        if offset < 0:
            raise OutOfRange(f"read offset {offset} is negative")
        if limit < 0:
            raise InvalidArgument(f"read limit {limit} is negative")
        if offset > digest.size:
            raise OutOfRange(f"read offset {offset} is past the end of blob {digest}")
        f = self.open(digest)
        remaining = digest.size - offset if limit == 0 else min(limit, digest.size - offset)
        return self._iter_file(f, offset, remaining, chunk_bytes)

    @staticmethod
    def _iter_file(f: BinaryIO, offset: int, remaining: int, chunk_bytes: int) -> Iterator[bytes]:
        with f:
            if offset:
                f.seek(offset)
            while remaining > 0:
                chunk = f.read(min(chunk_bytes, remaining))
                if not chunk:
                    raise StorageFailure("blob file ended early; it was changed on disk")
                remaining -= len(chunk)
                yield chunk

    # ----------------------------------------------------------------------------- writes

    def put(self, digest: BlobDigest, data: bytes) -> None:
        """Stores one whole blob after checking it against its digest."""
        if len(data) != digest.size:
            raise InvalidArgument(
                f"blob {digest}: got {len(data)} bytes but the digest says {digest.size}"
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest.hash:
            raise InvalidArgument(f"blob {digest}: the data hashes to {actual}")
        if digest.is_empty or self.contains(digest):
            return
        self._check_fits(digest)
        tmp = self._tmp_dir / f"{digest.hash}.{threading.get_ident()}.{time.monotonic_ns()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._publish(tmp, digest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _storage_failure(f"store blob {digest}", exc)

    def begin_write(self, digest: BlobDigest) -> "BlobWriter":
        """A streaming, non-resumable write (for blobs produced inside the bridge)."""
        self._check_fits(digest)
        tmp = self._tmp_dir / f"{digest.hash}.{threading.get_ident()}.{time.monotonic_ns()}"
        return BlobWriter(self, digest, tmp, resume=False)

    def begin_upload(self, upload_id: str, digest: BlobDigest, offset: int) -> "BlobWriter":
        """A resumable ByteStream upload; `offset` must equal what was committed so far."""
        if not _UPLOAD_ID.match(upload_id):
            raise InvalidArgument(f"upload id {upload_id!r} has characters outside [A-Za-z0-9._-]")
        self._check_fits(digest)
        self._sweep_expired_uploads()
        key = f"{upload_id}-{digest.hash}-{digest.size}"
        with self._lock:
            if key in self._uploads_in_progress:
                raise Aborted(f"upload {upload_id} of blob {digest} is already being written")
            self._uploads_in_progress.add(key)
        try:
            path = self._uploads_dir / key
            committed = path.stat().st_size if path.exists() else 0
            if offset not in (0, committed):
                raise InvalidArgument(
                    f"write offset {offset} does not match the {committed} bytes committed so far "
                    f"for upload {upload_id}; ask QueryWriteStatus where to resume"
                )
            return BlobWriter(self, digest, path, resume=offset > 0, upload_key=key)
        except BaseException:
            with self._lock:
                self._uploads_in_progress.discard(key)
            raise

    def upload_committed_size(self, upload_id: str, digest: BlobDigest) -> Optional[int]:
        """Bytes received so far for a resumable upload, or None if there is none."""
        if not _UPLOAD_ID.match(upload_id):
            raise InvalidArgument(f"upload id {upload_id!r} has characters outside [A-Za-z0-9._-]")
        path = self._uploads_dir / f"{upload_id}-{digest.hash}-{digest.size}"
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None

    def _end_upload(self, key: Optional[str]) -> None:
        if key is not None:
            with self._lock:
                self._uploads_in_progress.discard(key)

    def _sweep_expired_uploads(self) -> None:
        now = time.time()
        if now - self._last_upload_sweep < 60:
            return
        self._last_upload_sweep = now
        with os.scandir(self._uploads_dir) as entries:
            for entry in entries:
                try:
                    if now - entry.stat().st_mtime > self.upload_expiry_seconds:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    def _check_fits(self, digest: BlobDigest) -> None:
        if digest.size > self.max_bytes:
            raise ResourceExhausted(
                f"blob {digest} is larger than the CAS size limit of {self.max_bytes} bytes"
            )

    def _publish(self, tmp: Path, digest: BlobDigest) -> None:
        """Moves a verified, synced temp file into place and indexes it."""
        os.rename(tmp, self.blob_path(digest))
        with self._lock:
            if digest.hash in self._index:
                self._index.move_to_end(digest.hash)
                return
            self._index[digest.hash] = digest.size
            self._total_bytes += digest.size
            self._evict_over_limit(keep=digest.hash)

    def _forget(self, blob_hash: str) -> None:
        with self._lock:
            size = self._index.pop(blob_hash, None)
            if size is not None:
                self._total_bytes -= size

    def _evict_over_limit(self, keep: Optional[str]) -> None:
        """Drops least recently used blobs until the total fits. Caller holds the lock."""
        while self._total_bytes > self.max_bytes and self._index:
            oldest, size = next(iter(self._index.items()))
            if oldest == keep:
                break
            del self._index[oldest]
            self._total_bytes -= size
            self._evicted += 1
            try:
                os.unlink(self._blobs_dir / oldest[:2] / oldest)
            except FileNotFoundError:
                pass

    # ----------------------------------------------------------------------------- checks

    def verify(self) -> List[BlobDigest]:
        """Re-hashes every stored blob; returns those whose content no longer matches."""
        bad = []
        for digest in self.digests():
            h = hashlib.sha256()
            try:
                with open(self.blob_path(digest), "rb") as f:
                    for chunk in iter(lambda: f.read(READ_CHUNK_BYTES), b""):
                        h.update(chunk)
                    size = f.tell()
            except FileNotFoundError:
                bad.append(digest)
                continue
            if h.hexdigest() != digest.hash or size != digest.size:
                bad.append(digest)
        return bad


class BlobWriter:
    """Receives a blob in order, hashing as it goes; `commit` publishes it, `close` keeps or
    discards the partial data (kept only for resumable uploads)."""

    def __init__(
        self,
        cas: ContentAddressableStorage,
        digest: BlobDigest,
        path: Path,
        *,
        resume: bool,
        upload_key: Optional[str] = None,
    ) -> None:
        self.cas = cas
        self.digest = digest
        self.path = path
        self.upload_key = upload_key
        self._hasher = hashlib.sha256()
        self._done = False
        self._writeback_from = 0
        try:
            if resume:
                self._fd = os.open(path, os.O_RDWR)
                with open(path, "rb", closefd=True) as existing:
                    for chunk in iter(lambda: existing.read(READ_CHUNK_BYTES), b""):
                        self._hasher.update(chunk)
                self.committed_size = os.lseek(self._fd, 0, os.SEEK_END)
            else:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
                self.committed_size = 0
        except OSError as exc:
            cas._end_upload(upload_key)
            raise _storage_failure(f"start writing blob {digest}", exc)

    def write(self, data: bytes) -> None:
        if self._done:
            raise InvalidArgument(f"blob {self.digest}: data after the write was finished")
        if self.committed_size + len(data) > self.digest.size:
            # The upload cannot succeed any more, so its partial data is worthless.
            self._done = True
            self._discard()
            raise InvalidArgument(
                f"blob {self.digest}: {self.committed_size + len(data)} bytes sent, more than the "
                f"declared size {self.digest.size}"
            )
        self._hasher.update(data)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            # Keep the file consistent with what the client may resume from.
            os.ftruncate(self._fd, self.committed_size)
            raise _storage_failure(f"write blob {self.digest}", exc)
        self.committed_size += len(data)
        if (
            self.cas.fsync
            and _start_writeback is not None
            and self.committed_size - self._writeback_from >= WRITEBACK_BYTES
        ):
            _start_writeback(self._fd, self._writeback_from, self.committed_size - self._writeback_from)
            self._writeback_from = self.committed_size

    def commit(self) -> None:
        """Checks size and hash, syncs, and publishes the blob. Discards it if wrong."""
        self._done = True
        try:
            if self.committed_size != self.digest.size:
                raise InvalidArgument(
                    f"blob {self.digest}: finished after {self.committed_size} bytes, but the "
                    f"digest says {self.digest.size}"
                )
            actual = self._hasher.hexdigest()
            if actual != self.digest.hash:
                raise InvalidArgument(f"blob {self.digest}: the data hashes to {actual}")
            try:
                if self.cas.fsync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
                self.cas._publish(self.path, self.digest)
            except OSError as exc:
                raise _storage_failure(f"store blob {self.digest}", exc)
        finally:
            self._discard()

    def close(self) -> None:
        """Ends an unfinished write: resumable uploads keep their data, others lose it."""
        if self._done:
            return
        self._done = True
        if self.upload_key is not None:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self.cas._end_upload(self.upload_key)
        else:
            self._discard()

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)
        self.cas._end_upload(self.upload_key)
