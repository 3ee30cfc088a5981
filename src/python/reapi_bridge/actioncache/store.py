"""The action cache: ActionResults by action digest, per instance, persisted in SQLite.

A stored result is served only while every blob it references is still in the CAS (outputs,
stdout/stderr, output trees and the files inside them): a hit whose outputs were evicted would
make the client fail to download them, which is worse than a miss.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.tree import file_digests
from reapi_bridge.common.errors import NotFound, StorageFailure
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_results (
    instance TEXT NOT NULL,
    action_hash TEXT NOT NULL,
    action_size INTEGER NOT NULL,
    result BLOB NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (instance, action_hash, action_size)
)
"""


@dataclass(frozen=True)
class ActionCacheStats:
    entries: int
    hits: int
    misses: int
    incomplete: int


def referenced_blobs(result: re_pb2.ActionResult, cas: ContentAddressableStorage) -> List[BlobDigest]:
    """Every blob a client may fetch after this result; raises NotFound if a tree is gone."""
    digests = [BlobDigest.from_proto(f.digest) for f in result.output_files]
    for field in ("stdout_digest", "stderr_digest"):
        if result.HasField(field):
            digests.append(BlobDigest.from_proto(getattr(result, field)))
    for out_dir in result.output_directories:
        tree_digest = BlobDigest.from_proto(out_dir.tree_digest)
        digests.append(tree_digest)
        tree = re_pb2.Tree.FromString(cas.read_bytes(tree_digest))
        digests.extend(file_digests([tree.root, *tree.children]))
    return digests


# (instance, action, result) -> None when the result may be served, else why not.
Verifier = Callable[[str, BlobDigest, re_pb2.ActionResult], Optional[str]]
# (event, **fields): the audit log's record.
Audit = Callable[..., None]


class ActionCache:
    """`verifier` decides whether a stored result may be served (executor signatures); a
    refused one is a miss, logged to `audit`, which also sees every write."""

    def __init__(
        self,
        db_path: Path,
        cas: ContentAddressableStorage,
        verifier: Optional[Verifier] = None,
        audit: Optional[Audit] = None,
    ) -> None:
        self.cas = cas
        self.verifier = verifier
        self.audit = audit or (lambda event, **fields: None)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        self._hits = 0
        self._misses = 0
        self._incomplete = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, instance: str, action: BlobDigest) -> Optional[re_pb2.ActionResult]:
        with self._lock:
            row = self._conn.execute(
                "SELECT result FROM action_results WHERE instance=? AND action_hash=? AND action_size=?",
                (instance, action.hash, action.size),
            ).fetchone()
        if row is None:
            self._count(miss=True)
            return None
        result = re_pb2.ActionResult.FromString(row[0])
        problem = self.verifier(instance, action, result) if self.verifier else None
        if problem is not None:
            logger.warning("not serving the cached result of %s on %r: %s", action, instance, problem)
            self.audit("result-refused", instance=instance, action=str(action), reason=problem)
            self._count(miss=True)
            return None
        try:
            complete = not self.cas.find_missing(referenced_blobs(result, self.cas))
        except NotFound:
            complete = False
        if not complete:
            self._count(miss=True, incomplete=True)
            return None
        self._count(miss=False)
        return result

    def put(self, instance: str, action: BlobDigest, result: re_pb2.ActionResult, writer: str = "") -> None:
        """Stores `result`; `writer` (who wrote it) goes to the audit log."""
        data = result.SerializeToString(deterministic=True)
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO action_results VALUES (?, ?, ?, ?, ?)",
                    (instance, action.hash, action.size, data, time.time()),
                )
        except sqlite3.Error as exc:
            full = "full" in str(exc).lower()
            raise StorageFailure(f"could not store the result of action {action}: {exc}", disk_full=full)
        self.audit("ac-write", instance=instance, action=str(action), writer=writer, exit_code=result.exit_code)

    def stats(self) -> ActionCacheStats:
        with self._lock:
            (entries,) = self._conn.execute("SELECT COUNT(*) FROM action_results").fetchone()
            return ActionCacheStats(entries, self._hits, self._misses, self._incomplete)

    def entries(self):
        """(instance, action digest) of every stored result."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT instance, action_hash, action_size FROM action_results ORDER BY 1, 2"
            ).fetchall()
        return [(inst, BlobDigest(h, s)) for inst, h, s in rows]

    def _count(self, *, miss: bool, incomplete: bool = False) -> None:
        with self._lock:
            if miss:
                self._misses += 1
            else:
                self._hits += 1
            if incomplete:
                self._incomplete += 1
