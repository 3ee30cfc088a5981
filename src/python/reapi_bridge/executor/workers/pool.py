"""An executor's persistent workers: which are idle, caps, idle timeout, RSS limit.

Workers are pooled by (instance name, action user, worker key), so a worker never serves two
instances, two users or two keys. A singleplex worker serves one request at a time; a multiplex
worker takes every request of its key. A pool at its caps evicts the least recently used idle
worker of another key; when nothing can be evicted the action runs one-shot (never waits).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from reapi_bridge.executor.workers.process import WorkerProcess

logger = logging.getLogger(__name__)

PoolKey = Tuple[str, str, str]  # (instance name, action user, worker key)


@dataclass(frozen=True)
class WorkerSettings:
    """How an executor keeps its workers (`executor --help` describes each flag)."""

    enabled: bool = True
    max_total: int = 8
    max_per_key: int = 4
    idle_timeout_seconds: float = 600.0
    rss_limit_bytes: int = 2 << 30
    cancel_grace_seconds: float = 5.0


@dataclass(frozen=True)
class WorkerRow:
    """One worker, as `status` shows it."""

    key: str
    protocol: str
    multiplex: bool
    pid: int
    requests: int
    rss_bytes: int
    idle_seconds: float
    busy: int


@dataclass
class Lease:
    """A worker to use (`worker`), or the right to start one for the key (`worker` is None)."""

    pool_key: PoolKey
    worker: Optional[WorkerProcess] = None


class WorkerPool:
    def __init__(self, settings: WorkerSettings = WorkerSettings(), clock=time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._workers: List[WorkerProcess] = []
        self._starting: Dict[PoolKey, int] = {}
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="worker-reaper", daemon=True)
        self._reaper.start()

    # ----------------------------------------------------------------------------- leases

    def acquire(self, pool_key: PoolKey, multiplex: bool) -> Optional[Lease]:
        """An idle worker of the key (or, for multiplex, any live one), else the right to start
        one, else None (caps reached and nothing idle to evict: run one-shot)."""
        doomed: List[WorkerProcess] = []
        try:
            with self._lock:
                self._workers = [w for w in self._workers if w.alive]
                mine = [w for w in self._workers if w.pool_key == pool_key]
                usable = [w for w in mine if multiplex or w.in_flight == 0]
                if usable:
                    worker = min(usable, key=lambda w: (w.in_flight, -w.last_used))
                    worker.in_flight += 1
                    return Lease(pool_key, worker)
                if multiplex and self._starting.get(pool_key):
                    return None  # one is starting for this key; this request runs one-shot
                if len(mine) + self._starting.get(pool_key, 0) >= self.settings.max_per_key:
                    return None
                while len(self._workers) + sum(self._starting.values()) >= self.settings.max_total:
                    idle = [w for w in self._workers if w.in_flight == 0 and w.pool_key != pool_key]
                    if not idle:
                        return None
                    victim = min(idle, key=lambda w: w.last_used)
                    self._workers.remove(victim)
                    doomed.append(victim)
                self._starting[pool_key] = self._starting.get(pool_key, 0) + 1
                return Lease(pool_key)
        finally:
            for victim in doomed:
                logger.info("worker %s (key %s) evicted: the pool is at its cap", victim.id, victim.spec.short_key)
                victim.kill("evicted to make room for another key's worker")

    def started(self, lease: Lease, worker: Optional[WorkerProcess]) -> None:
        """Ends a start reservation: `worker` joins the pool (busy), or None if it failed."""
        with self._lock:
            self._starting[lease.pool_key] -= 1
            if not self._starting[lease.pool_key]:
                del self._starting[lease.pool_key]
            if worker is not None:
                worker.in_flight = 1
                self._workers.append(worker)
                lease.worker = worker

    def release(self, worker: WorkerProcess, served: bool) -> None:
        """The request is over; a worker over its RSS limit is killed (and restarts on demand)."""
        with self._lock:
            worker.in_flight -= 1
            worker.last_used = self._clock()
            if served:
                worker.requests_served += 1
            check = worker.alive and worker.in_flight == 0
        if check and worker.measure_rss() > self.settings.rss_limit_bytes:
            logger.info(
                "worker %s (key %s) uses %d MiB, over the %d MiB limit: restarting it",
                worker.id, worker.spec.short_key, worker.rss_bytes >> 20, self.settings.rss_limit_bytes >> 20,
            )
            self.discard(worker, f"over the RSS limit ({worker.rss_bytes >> 20} MiB)")

    def discard(self, worker: WorkerProcess, reason: str) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.kill(reason)

    # ----------------------------------------------------------------------------- views

    def warm_keys(self) -> List[str]:
        """Keys with a worker that could take a request now."""
        with self._lock:
            return sorted({w.spec.key for w in self._workers if w.alive and (w.spec.multiplex or w.in_flight == 0)})

    def rows(self) -> List[WorkerRow]:
        now = self._clock()
        with self._lock:
            workers = [w for w in self._workers if w.alive]
        return [
            WorkerRow(
                key=w.spec.key,
                protocol=w.spec.protocol,
                multiplex=w.spec.multiplex,
                pid=w.pid,
                requests=w.requests_served,
                rss_bytes=w.rss_bytes or w.measure_rss(),
                idle_seconds=0.0 if w.in_flight else round(now - w.last_used, 1),
                busy=w.in_flight,
            )
            for w in workers
        ]

    # ----------------------------------------------------------------------------- lifetime

    def _reap_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.reap_idle()

    def reap_idle(self) -> None:
        limit = self.settings.idle_timeout_seconds
        now = self._clock()
        with self._lock:
            expired = [w for w in self._workers if w.in_flight == 0 and now - w.last_used > limit]
            for w in expired:
                self._workers.remove(w)
        for w in expired:
            logger.info("worker %s (key %s) idle for %.0fs: stopped", w.id, w.spec.short_key, now - w.last_used)
            w.kill(f"idle for over {limit:g}s")

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            w.kill("the executor is stopping")
