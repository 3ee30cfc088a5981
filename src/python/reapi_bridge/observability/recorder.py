"""The recent actions, for the web page and its JSON API: one record per finished execution
(and per Execute answered from the cache), kept in a ring buffer with a sequence number so a
page can ask only for what is new.

Phase times come from the executor's ExecutedActionMetadata (wall clock); the time an action
waited in the queue from the bridge's own clock. A Pants run is the records sharing a
`tool_invocation_id`; its critical path is the heaviest chain of actions that ran one after
another (each starting after the previous ended): with no dependency graph at hand, that chain
is what the run's wall time cannot be shorter than.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Deque, Dict, Iterable, List, Optional, Tuple

DEFAULT_CAPACITY = 20000


@dataclass(frozen=True)
class ActionRecord:
    seq: int
    operation: str
    instance: str
    action: str  # HASH/SIZE
    platform: str  # "ISA=arm-a64, OSFamily=linux"
    isa: str
    executor: str  # the slot (bot id) that ran it; "" for a cache hit
    invocation: str  # tool_invocation_id, or the client's address
    argv: Tuple[str, ...]  # the first few arguments
    exit_code: int
    status: int  # google.rpc.Code of the execution
    cached: bool
    queued: float  # wall-clock seconds
    worker_start: float
    fetch_start: float
    fetch_end: float
    exec_start: float
    exec_end: float
    upload_start: float
    upload_end: float
    completed: float

    def to_json(self) -> dict:
        out = asdict(self)
        out["argv"] = list(self.argv)
        return out


class ActionRecorder:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._lock = threading.Lock()
        self._records: Deque[ActionRecord] = deque(maxlen=capacity)
        self._next = 1

    def add(self, **fields) -> ActionRecord:
        with self._lock:
            record = ActionRecord(seq=self._next, **fields)
            self._next += 1
            self._records.append(record)
            return record

    def since(self, seq: int = 0, limit: int = DEFAULT_CAPACITY) -> List[ActionRecord]:
        """Records after `seq`, oldest first, at most `limit` (the newest ones)."""
        with self._lock:
            records = [r for r in self._records if r.seq > seq]
        return records[-limit:] if limit else records

    def invocations(self) -> List[dict]:
        """One row per Pants run (tool_invocation_id): counts, span, critical path."""
        groups: Dict[str, List[ActionRecord]] = {}
        for r in self.since(0):
            groups.setdefault(r.invocation, []).append(r)
        rows = [invocation_summary(name, records) for name, records in groups.items()]
        return sorted(rows, key=lambda row: row["start"], reverse=True)


def _span(r: ActionRecord) -> Tuple[float, float]:
    start = r.worker_start or r.queued or r.completed
    return start, max(r.completed, start)


def critical_path(records: Iterable[ActionRecord]) -> List[ActionRecord]:
    """The chain of actions, each starting at or after the previous one ended, with the
    largest total running time (weighted interval scheduling)."""
    items = sorted((r for r in records if not r.cached), key=lambda r: _span(r)[1])
    ends = [_span(r)[1] for r in items]
    best: List[float] = []
    back: List[Optional[int]] = []
    for i, r in enumerate(items):
        start, end = _span(r)
        j = bisect.bisect_right(ends, start, 0, i) - 1
        total = (end - start) + (best[j] if j >= 0 else 0.0)
        previous = j if j >= 0 else None
        if i and best[i - 1] >= total:
            total, previous = best[i - 1], -1  # -1: the best chain so far does not end here
        best.append(total)
        back.append(previous)
    chain: List[ActionRecord] = []
    i = len(items) - 1
    while i >= 0:
        if back[i] == -1:
            i -= 1
            continue
        chain.append(items[i])
        i = back[i] if back[i] is not None else -1
    return list(reversed(chain))


def invocation_summary(name: str, records: List[ActionRecord]) -> dict:
    spans = [_span(r) for r in records]
    path = critical_path(records)
    return {
        "invocation": name,
        "actions": len(records),
        "cached": sum(1 for r in records if r.cached),
        "failed": sum(1 for r in records if r.exit_code != 0 or r.status != 0),
        "by_isa": _count(r.isa for r in records),
        "start": min(s for s, _ in spans),
        "end": max(e for _, e in spans),
        "critical_path": [r.seq for r in path],
        "critical_path_seconds": round(sum(_span(r)[1] - _span(r)[0] for r in path), 3),
    }


def _count(values: Iterable[str]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
