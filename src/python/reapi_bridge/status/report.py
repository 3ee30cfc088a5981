"""How `reapi-bridge status` prints the bridge's status report.

Rules for the printout:
- The report has one entry per bot session; an executor opens one session per slot, named
  `EXECUTOR/SLOT` (`local-arm-a64/0`, `local-arm-a64/1`), so sessions are grouped by the part
  of the name before the last `/` (a name without `/` is an executor with one slot).
- A slot that reconnected leaves its old session behind until the lease timeout; each slot is
  counted once, as its most recently seen session says. A slot is busy while it runs an action.
- "last seen" is the most recent check-in of any of the executor's slots. Under each executor,
  one line per slot: `local-arm-a64/0  busy (1 running), last seen 0.3s ago`.
- Persistent workers belong to an executor, not a slot: every slot reports the same pool, so
  the rows of the slot seen most recently are printed, one line per worker: short key,
  protocol, pid, requests answered, resident memory, idle time (or busy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List

from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2


@dataclass
class ExecutorSlots:
    """One executor: its slots' newest sessions, by slot name."""

    name: str
    properties: str
    slots: List[status_pb2.ExecutorStatus] = field(default_factory=list)

    @property
    def busy(self) -> int:
        return sum(1 for s in self.slots if s.running)

    @property
    def last_seen(self) -> float:
        return min(s.seconds_since_update for s in self.slots)

    @property
    def workers(self) -> List[status_pb2.WorkerStatus]:
        newest = min(self.slots, key=lambda s: s.seconds_since_update)
        return sorted(newest.workers, key=lambda w: (w.key, w.pid))


def executor_slots(executors: Iterable[status_pb2.ExecutorStatus]) -> List[ExecutorSlots]:
    newest: Dict[str, status_pb2.ExecutorStatus] = {}
    for e in executors:
        if e.name not in newest or e.seconds_since_update < newest[e.name].seconds_since_update:
            newest[e.name] = e
    groups: Dict[str, ExecutorSlots] = {}
    for slot_name, e in sorted(newest.items()):
        name = slot_name.rsplit("/", 1)[0]
        props = ", ".join(f"{k}={v}" for k, v in sorted(e.properties.items()))
        groups.setdefault(name, ExecutorSlots(name, props)).slots.append(e)
    return list(groups.values())


def _slots(n: int) -> str:
    return f"{n} slot" if n == 1 else f"{n} slots"


def format_report(report: status_pb2.StatusReport, address: str) -> str:
    lines = [f"reapi-bridge at {address} (instances: {', '.join(repr(i) for i in report.instances)})"]
    groups = executor_slots(report.executors)
    slots, busy = sum(len(g.slots) for g in groups), sum(g.busy for g in groups)
    lines.append(f"executors: {len(groups)} ({_slots(slots)}: {busy} busy, {slots - busy} free)")
    width = max([len(g.name) for g in groups] + [20])
    props_width = max([len(g.properties) for g in groups] + [28])
    for g in groups:
        lines.append(
            f"  {g.name:<{width}}  {g.properties:<{props_width}}  {_slots(len(g.slots))}: "
            f"{g.busy} busy, {len(g.slots) - g.busy} free, last seen {g.last_seen:.1f}s ago"
        )
        for e in g.slots:
            state = f"busy ({e.running} running)" if e.running else "idle"
            lines.append(f"    {e.name:<{width}}  {state}, last seen {e.seconds_since_update:.1f}s ago")
        workers = g.workers
        if workers:
            lines.append(f"    persistent workers: {len(workers)}")
            for w in workers:
                kind = w.protocol + (", multiplex" if w.multiplex else "")
                state = f"busy ({w.busy} in flight)" if w.busy else f"idle {w.idle_seconds:.1f}s"
                lines.append(
                    f"      key {w.key[:12]}  {kind:<16}  pid {w.pid:<7}  {w.requests} requests  "
                    f"RSS {w.rss_bytes / 2**20:.1f} MiB  {state}"
                )
    if report.queues:
        lines.append("queued actions:")
        for q in report.queues:
            lines.append(f"  {q.platform}: {q.queued}")
    else:
        lines.append("queued actions: none")
    lines.append(f"actions: {report.actions_running} running, {report.actions_completed} completed")
    lookups = report.action_cache_hits + report.action_cache_misses
    rate = f"{100.0 * report.action_cache_hits / lookups:.1f}%" if lookups else "n/a"
    lines.append(
        f"action cache: {report.action_cache_entries} results, {report.action_cache_hits} hits / "
        f"{lookups} lookups (hit rate {rate})"
    )
    lines.append(
        f"CAS: {report.cas_blobs} blobs, {report.cas_bytes / 2**20:.1f} MiB of "
        f"{report.cas_max_bytes / 2**30:.1f} GiB, {report.cas_evicted_blobs} evicted"
    )
    return "\n".join(lines)
