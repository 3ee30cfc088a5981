"""The scheduler: queues of actions per platform, matched to executors by their properties.

It knows nothing of gRPC or of how an executor runs a process. Jobs enter with `submit`;
executors take them with `next_job`; results come back with `complete`. Every state change
wakes whoever waits on the job (Execute streams, WaitExecution).

Rules:
- A job's platform is a set of (name, value) properties; an executor can run it when every
  property is advertised by the executor with that value.
- Within a platform queue, clients (RequestMetadata.tool_invocation_id) take turns, so one
  large build cannot starve another's actions.
- Identical cacheable actions in flight run once: later submitters share the first job.
- A job whose executor stops renewing its lease goes back to the queue, up to `max_attempts`;
  then it fails with a message naming the executors that lost it. Nothing is dropped.
- A job that no registered executor could ever run fails after `unmatched_grace_seconds`.
- A job nobody waits on any more (every Execute / WaitExecution stream on it ended) for
  `abandoned_grace_seconds` is cancelled, as CancelOperation would: clients that race a
  cache lookup against Execute drop the loser, and it must not take an executor slot.
- A job with a persistent-worker key goes, when it can, to an idle executor that reports a
  ready worker for that key; an executor without one passes such a job over only while such an
  idle executor is waiting for work (so nothing waits for a busy executor).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, FrozenSet, List, Optional, Sequence, Tuple

from google.rpc import code_pb2

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.config import ExecutionConfig

logger = logging.getLogger(__name__)

Platform = FrozenSet[Tuple[str, str]]

QUEUED = "QUEUED"
EXECUTING = "EXECUTING"
COMPLETED = "COMPLETED"

LEASE_PENDING = "PENDING"
LEASE_ACTIVE = "ACTIVE"
LEASE_CANCELLED = "CANCELLED"

# How far into one client's queue an executor looks for a job it is the better place for (a
# ready persistent worker), and past jobs an idle warm executor will take.
PREFERENCE_LOOKAHEAD = 64


def describe_platform(platform: Platform) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(platform)) or "(no properties)"


# The scheduler's settings are the [execution] table's (max_attempts, lease_timeout_seconds,
# unmatched_grace_seconds, operation_retention_seconds, abandoned_grace_seconds); config.py
# declares each with its default and meaning.
SchedulerSettings = ExecutionConfig


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: a result (maybe with a non-OK status, e.g. a timeout) or only an error."""

    result: Optional[object]  # re_pb2.ActionResult
    status_code: int = 0  # google.rpc.Code
    message: str = ""
    details: Tuple[object, ...] = ()  # Any-packed messages for the status
    cached: bool = False


@dataclass(eq=False)
class Job:
    instance: str
    action_digest: BlobDigest
    action: object  # re_pb2.Action
    platform: Platform
    client: str
    cacheable: bool
    name: str = field(default_factory=lambda: f"operations/{uuid.uuid4()}")
    stage: str = QUEUED
    attempts: int = 0
    executor: Optional[str] = None
    lost_by: List[str] = field(default_factory=list)
    outcome: Optional[JobOutcome] = None
    queued_at: float = field(default_factory=time.time)
    started_at: Optional[float] = None
    completed_at: Optional[float] = None
    cancel_requested: bool = False
    version: int = 0
    watchers: int = 0  # Execute / WaitExecution streams waiting on it now
    finishing: bool = False  # a successful result is being cached; done right after
    worker_key: Optional[str] = None  # the persistent worker that may serve it (a preference only)
    argv_head: Tuple[str, ...] = ()  # the command's first arguments, for the timeline
    unwatched_since: Optional[float] = None

    @property
    def done(self) -> bool:
        return self.stage == COMPLETED


@dataclass(eq=False)
class ExecutorSession:
    name: str
    executor_id: str
    properties: Dict[str, str]
    last_seen: float
    jobs: Dict[str, Job] = field(default_factory=dict)  # lease id -> job
    acked: set = field(default_factory=set)  # lease ids the executor has reported ACTIVE
    warm_keys: frozenset = frozenset()  # worker keys its executor has a ready worker for
    workers: Tuple[dict, ...] = ()  # its executor's persistent workers, as reported
    waiting: bool = False  # in next_job now: idle, and will take a job the moment one fits

    def can_run(self, platform: Platform) -> bool:
        return all(self.properties.get(k) == v for k, v in platform)


class _PlatformQueue:
    """Jobs of one platform, one FIFO per client, served round-robin."""

    def __init__(self) -> None:
        self.by_client: "OrderedDict[str, Deque[Job]]" = OrderedDict()

    def push(self, job: Job, front: bool = False) -> None:
        q = self.by_client.setdefault(job.client, deque())
        (q.appendleft if front else q.append)(job)
        if front:  # its client's turn comes next
            self.by_client.move_to_end(job.client, last=False)

    def pop(self, wanted: Callable[[Job], bool] = lambda job: True) -> Optional[Job]:
        """The first job `wanted` accepts, clients taking turns (each client's jobs in order,
        looking past a client's first jobs only as far as PREFERENCE_LOOKAHEAD)."""
        for client, q in list(self.by_client.items()):
            job = next((j for j in itertools.islice(q, PREFERENCE_LOOKAHEAD) if wanted(j)), None)
            if job is None:
                continue
            q.remove(job)
            del self.by_client[client]
            if q:
                self.by_client[client] = q  # to the back: the next client goes first
            return job
        return None

    def oldest_queued_at(self) -> float:
        return min(q[0].queued_at for q in self.by_client.values())

    def remove(self, job: Job) -> bool:
        q = self.by_client.get(job.client)
        if q is None or job not in q:
            return False
        q.remove(job)
        if not q:
            del self.by_client[job.client]
        return True

    def __len__(self) -> int:
        return sum(len(q) for q in self.by_client.values())

    def jobs(self) -> List[Job]:
        return list(itertools.chain.from_iterable(self.by_client.values()))


class Scheduler:
    def __init__(
        self,
        settings: SchedulerSettings = SchedulerSettings(),
        on_success: Optional[Callable[[Job], Optional[JobOutcome]]] = None,
        clock: Callable[[], float] = time.monotonic,
        on_finish: Optional[Callable[[Job], None]] = None,
    ) -> None:
        self.settings = settings
        self._on_success = on_success
        # Told of every job that ends, under the scheduler's lock (so: cheap, never blocking).
        self._on_finish = on_finish
        self._clock = clock
        self._cv = threading.Condition()
        self._queues: Dict[Platform, _PlatformQueue] = {}
        self._jobs: Dict[str, Job] = {}
        self._in_flight: Dict[Tuple[str, BlobDigest], Job] = {}
        self._sessions: Dict[str, ExecutorSession] = {}
        self._unmatched_since: Dict[str, float] = {}
        self._completed_total = 0
        self._shut_down = False

    # ----------------------------------------------------------------------------- clients

    def submit(self, job: Job) -> Job:
        """Queues a job, or returns the identical cacheable job already in flight."""
        with self._cv:
            key = (job.instance, job.action_digest)
            if job.cacheable:
                existing = self._in_flight.get(key)
                if existing is not None and not existing.done:
                    return existing
                self._in_flight[key] = job
            job.queued_at = self._clock()
            self._jobs[job.name] = job
            self._queues.setdefault(job.platform, _PlatformQueue()).push(job)
            self._bump(job)
            return job

    def job(self, name: str) -> Optional[Job]:
        with self._cv:
            return self._jobs.get(name)

    def wait_for_change(self, job: Job, seen_version: int, timeout: float) -> int:
        """Blocks until the job changes after `seen_version` (or timeout); returns its version."""
        deadline = time.monotonic() + timeout  # a real wait: Condition.wait is in real time
        with self._cv:
            while job.version == seen_version and not self._shut_down:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            return job.version

    def cancel(self, name: str) -> bool:
        with self._cv:
            job = self._jobs.get(name)
            if job is None or job.done:
                return False
            self._cancel(job, "cancelled by the client")
            return True

    def watch(self, job: Job) -> None:
        """A client stream starts waiting on the job."""
        with self._cv:
            job.watchers += 1
            job.unwatched_since = None

    def unwatch(self, job: Job) -> None:
        """A client stream on the job ended; the last one starts the abandonment grace."""
        with self._cv:
            job.watchers = max(0, job.watchers - 1)
            if job.watchers == 0 and not job.done:
                job.unwatched_since = self._clock()

    def _cancel(self, job: Job, message: str) -> None:
        queue = self._queues.get(job.platform)
        if job.stage == QUEUED and queue is not None and queue.remove(job):
            self._finish(job, JobOutcome(None, status_code=code_pb2.CANCELLED, message=message))
        else:
            job.cancel_requested = True
            self._bump(job)

    # ----------------------------------------------------------------------------- executors

    def open_session(self, executor_id: str, properties: Dict[str, str]) -> ExecutorSession:
        with self._cv:
            session = ExecutorSession(
                name=f"sessions/{executor_id}/{uuid.uuid4()}",
                executor_id=executor_id,
                properties=dict(properties),
                last_seen=self._clock(),
            )
            self._sessions[session.name] = session
            logger.info("executor %s registered: %s", executor_id, properties)
            self._cv.notify_all()
            return session

    def session(self, name: str) -> Optional[ExecutorSession]:
        with self._cv:
            return self._sessions.get(name)

    def report_workers(self, session: ExecutorSession, warm_keys: Sequence[str], workers: Sequence[dict]) -> None:
        """What the session's executor says of its persistent workers (see _take_for)."""
        with self._cv:
            session.warm_keys = frozenset(warm_keys)
            session.workers = tuple(workers)

    def heartbeat(self, session: ExecutorSession) -> None:
        with self._cv:
            session.last_seen = self._clock()

    def close_session(self, session: ExecutorSession, reason: str) -> None:
        with self._cv:
            self._drop_session(session, reason)

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def shutdown(self) -> None:
        """Wakes every waiter; no more work is handed out."""
        with self._cv:
            self._shut_down = True
            self._cv.notify_all()

    def next_job(
        self, session: ExecutorSession, timeout: float, still_wanted: Callable[[], bool] = lambda: True
    ) -> Optional[Job]:
        """The next job this executor can run, waiting up to `timeout` seconds for one (or
        until `still_wanted` says the caller went away)."""
        deadline = time.monotonic() + timeout  # a real wait: Condition.wait is in real time
        with self._cv:
            try:
                while True:
                    if session.name not in self._sessions or self._shut_down or not still_wanted():
                        return None
                    session.last_seen = self._clock()
                    job = self._take_for(session)
                    if job is not None:
                        return job
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    session.waiting = True
                    self._cv.wait(min(remaining, 0.5))
            finally:
                session.waiting = False

    def _take_for(self, session: ExecutorSession) -> Optional[Job]:
        candidates = [
            (q.oldest_queued_at(), platform)
            for platform, q in self._queues.items()
            if len(q) and session.can_run(platform)
        ]
        for _, platform in sorted(candidates):
            job = self._queues[platform].pop(lambda j: not self._warm_elsewhere(j, session))
            if job is not None:
                return self._assign(job, session)
        return None

    def _warm_elsewhere(self, job: Job, session: ExecutorSession) -> bool:
        """Whether an idle session (waiting for work right now) holds a ready worker for the
        job's key while this one does not: that one takes it at once. Never a reason to wait
        for a busy executor, so one key cannot starve the others."""
        if job.worker_key is None or job.worker_key in session.warm_keys:
            return False
        return any(
            other is not session and other.waiting and not other.jobs
            and job.worker_key in other.warm_keys and other.can_run(job.platform)
            for other in self._sessions.values()
        )

    def _assign(self, job: Job, session: ExecutorSession) -> Job:
        job.stage = EXECUTING
        job.attempts += 1
        job.executor = session.executor_id
        job.started_at = self._clock()
        self._unmatched_since.pop(job.name, None)
        session.jobs[job.name] = job
        self._bump(job)
        return job

    def complete(self, session: Optional[ExecutorSession], job: Job, outcome: JobOutcome) -> None:
        """Ends a job with its outcome. A successful result first goes to `on_success` (the
        action cache), outside the scheduler's lock, and only then do waiters see the job done,
        so a client that saw it done finds the result cached. An outcome `on_success` returns
        replaces the reported one (a result it refused)."""
        with self._cv:
            if session is not None:
                session.jobs.pop(job.name, None)
                session.acked.discard(job.name)
            if job.done or job.finishing:
                return
            if self._on_success is None or outcome.result is None or outcome.status_code != code_pb2.OK:
                self._finish(job, outcome)
                return
            job.finishing = True  # a repeated report is ignored from here on
            job.outcome = outcome  # not visible yet: clients read it once the job is done
        replaced = None
        try:
            replaced = self._on_success(job)
        except Exception:  # a failed cache write must not lose the result
            logger.exception("could not cache the result of %s", job.action_digest)
        with self._cv:
            self._finish(job, replaced if isinstance(replaced, JobOutcome) else outcome)

    def acknowledge(self, session: ExecutorSession, lease_id: str) -> None:
        """The executor reported the lease ACTIVE: it has started the job."""
        with self._cv:
            if lease_id in session.jobs:
                session.acked.add(lease_id)

    def leased_job(self, session: ExecutorSession, lease_id: str) -> Optional[Job]:
        with self._cv:
            return session.jobs.get(lease_id)

    def leases(self, session: ExecutorSession) -> List[Tuple[Job, str]]:
        """The session's leases now, each with its state: PENDING (handed out, not yet
        acknowledged), ACTIVE, or CANCELLED (the client cancelled; the executor must stop)."""
        with self._cv:
            out = []
            for job in session.jobs.values():
                if job.cancel_requested:
                    state = LEASE_CANCELLED
                elif job.name in session.acked:
                    state = LEASE_ACTIVE
                else:
                    state = LEASE_PENDING
                out.append((job, state))
            return out

    # ----------------------------------------------------------------------------- upkeep

    def reap(self) -> None:
        """Requeues work of silent executors, fails unrunnable jobs, forgets old operations."""
        now = self._clock()
        with self._cv:
            for session in list(self._sessions.values()):
                if now - session.last_seen > self.settings.lease_timeout_seconds:
                    self._drop_session(
                        session,
                        f"no update for {now - session.last_seen:.1f}s "
                        f"(lease timeout {self.settings.lease_timeout_seconds:g}s)",
                    )
            for platform, queue in self._queues.items():
                if not len(queue):
                    continue
                runnable = any(s.can_run(platform) for s in self._sessions.values())
                for job in queue.jobs():
                    if runnable:
                        self._unmatched_since.pop(job.name, None)
                        continue
                    since = self._unmatched_since.setdefault(job.name, now)
                    if now - since >= self.settings.unmatched_grace_seconds:
                        queue.remove(job)
                        self._unmatched_since.pop(job.name, None)
                        offered = sorted(
                            {describe_platform(frozenset(s.properties.items())) for s in self._sessions.values()}
                        )
                        self._finish(
                            job,
                            JobOutcome(
                                None,
                                status_code=code_pb2.FAILED_PRECONDITION,
                                message=(
                                    f"no executor offers the platform {describe_platform(platform)} "
                                    f"(waited {self.settings.unmatched_grace_seconds:g}s; executors "
                                    f"registered: {'; '.join(offered) or 'none'})"
                                ),
                            ),
                        )
            grace = self.settings.abandoned_grace_seconds
            cutoff = now - self.settings.operation_retention_seconds
            for name, job in list(self._jobs.items()):
                if job.done:
                    if job.completed_at is not None and job.completed_at < cutoff:
                        del self._jobs[name]
                elif (
                    not job.cancel_requested
                    and job.watchers == 0
                    and job.unwatched_since is not None
                    and now - job.unwatched_since >= grace
                ):
                    logger.info("cancelling %s (%s): no client has waited on it for %gs", name, job.action_digest, grace)
                    self._cancel(job, f"cancelled: no client waited on it for {grace:g}s")

    def _drop_session(self, session: ExecutorSession, reason: str) -> None:
        if self._sessions.pop(session.name, None) is None:
            return
        logger.warning("executor %s lost: %s", session.executor_id, reason)
        for job in list(session.jobs.values()):
            if job.done:
                continue
            job.lost_by.append(session.executor_id)
            if job.cancel_requested:
                self._finish(job, JobOutcome(None, status_code=code_pb2.CANCELLED, message="cancelled by the client"))
            elif job.attempts >= self.settings.max_attempts:
                self._finish(
                    job,
                    JobOutcome(
                        None,
                        status_code=code_pb2.UNAVAILABLE,
                        message=(
                            f"action {job.action_digest} was lost by {job.attempts} executor(s) "
                            f"({', '.join(job.lost_by)}); giving up after {job.attempts} attempts"
                        ),
                    ),
                )
            else:
                job.stage = QUEUED
                job.executor = None
                self._queues.setdefault(job.platform, _PlatformQueue()).push(job, front=True)
                self._bump(job)
        session.jobs.clear()

    def _finish(self, job: Job, outcome: JobOutcome) -> None:
        job.outcome = outcome
        job.stage = COMPLETED
        job.completed_at = self._clock()
        self._unmatched_since.pop(job.name, None)
        self._completed_total += 1
        if self._on_finish is not None:
            try:
                self._on_finish(job)
            except Exception:
                logger.exception("recording the end of %s failed", job.name)
        key = (job.instance, job.action_digest)
        if self._in_flight.get(key) is job:
            del self._in_flight[key]
        self._bump(job)

    def _bump(self, job: Job) -> None:
        job.version += 1
        self._cv.notify_all()

    # ----------------------------------------------------------------------------- status

    def snapshot(self) -> dict:
        with self._cv:
            return {
                "executors": [
                    {
                        "id": s.executor_id,
                        "properties": dict(sorted(s.properties.items())),
                        "busy": len(s.jobs),
                        "idle_seconds": round(self._clock() - s.last_seen, 1),
                        "workers": list(s.workers),
                    }
                    for s in self._sessions.values()
                ],
                "queues": {
                    describe_platform(p): len(q) for p, q in self._queues.items() if len(q)
                },
                "executing": sum(len(s.jobs) for s in self._sessions.values()),
                "completed": self._completed_total,
            }
