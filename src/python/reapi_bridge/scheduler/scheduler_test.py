"""The scheduler on its own: no gRPC, a fake clock, executors played by the test."""

from __future__ import annotations

import threading
from typing import Dict, List, Optional

import pytest

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge_testing.bridge import wait_for
from reapi_bridge.scheduler.scheduler import (
    COMPLETED,
    EXECUTING,
    QUEUED,
    Job,
    JobOutcome,
    Scheduler,
    SchedulerSettings,
)

X86 = frozenset({("OSFamily", "linux"), ("ISA", "x86-64")})
ARM = frozenset({("OSFamily", "linux"), ("ISA", "arm-a64")})
X86_PROPS = {"OSFamily": "linux", "ISA": "x86-64"}
ARM_PROPS = {"OSFamily": "linux", "ISA": "arm-a64"}

OK, CANCELLED, FAILED_PRECONDITION, UNAVAILABLE = 0, 1, 9, 14

# Bounds that only keep a broken test from hanging; nothing waits on them when things work.
HANG_GUARD = 30.0


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_counter = iter(range(1, 1 << 30))


def digest(tag: Optional[str] = None) -> BlobDigest:
    return BlobDigest.of(f"action {tag if tag is not None else next(_counter)}".encode())


def make_job(
    client: str = "a",
    platform=X86,
    *,
    action_digest: Optional[BlobDigest] = None,
    cacheable: bool = True,
    instance: str = "",
    label: str = "",
) -> Job:
    job = Job(
        instance=instance,
        action_digest=action_digest or digest(),
        action=label or object(),
        platform=platform,
        client=client,
        cacheable=cacheable,
    )
    return job


def result(exit_code: int = 0):
    from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

    return re_pb2.ActionResult(exit_code=exit_code)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_scheduler(clock: FakeClock, on_success=None, **settings) -> Scheduler:
    return Scheduler(SchedulerSettings(**settings), on_success=on_success, clock=clock)


def take(scheduler: Scheduler, session) -> Optional[Job]:
    """What the executor gets right now (never waits)."""
    return scheduler.next_job(session, timeout=0)


def in_thread(fn, *args, **kwargs):
    """Runs fn in a daemon thread; returns (thread, box) where box['value'] is its return."""
    box: Dict[str, object] = {}

    def run():
        box["value"] = fn(*args, **kwargs)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# ----------------------------------------------------------------------------- matching


def test_executor_advertising_more_properties_takes_the_job(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job(platform=X86))
    session = s.open_session("big-x86", {**X86_PROPS, "cpu": "avx512", "pool": "fast"})
    assert take(s, session) is job
    assert job.stage == EXECUTING and job.executor == "big-x86" and job.attempts == 1
    assert session.jobs == {job.name: job}


def test_job_needing_a_property_the_executor_lacks_is_not_offered(clock):
    s = make_scheduler(clock)
    needs_gpu = s.submit(make_job(platform=X86 | {("gpu", "yes")}))
    needs_arm = s.submit(make_job(platform=ARM))
    plain = s.open_session("plain-x86", dict(X86_PROPS))
    other_gpu = s.open_session("x86-other-gpu", {**X86_PROPS, "gpu": "no"})
    assert take(s, plain) is None
    assert take(s, other_gpu) is None  # the property is there, with another value
    assert needs_gpu.stage == QUEUED and needs_arm.stage == QUEUED
    gpu = s.open_session("x86-gpu", {**X86_PROPS, "gpu": "yes"})
    assert take(s, gpu) is needs_gpu
    arm = s.open_session("arm", dict(ARM_PROPS))
    assert take(s, arm) is needs_arm


def test_job_without_platform_runs_anywhere(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job(platform=frozenset()))
    assert take(s, s.open_session("arm", dict(ARM_PROPS))) is job


# ----------------------------------------------------------------------------- order


def test_clients_take_turns_so_a_small_build_is_not_starved(clock):
    s = make_scheduler(clock)
    for i in range(10):
        s.submit(make_job("A", label=f"A{i}"))
        clock.advance(0.001)
    for i in range(2):
        s.submit(make_job("B", label=f"B{i}"))
        clock.advance(0.001)
    session = s.open_session("x86", dict(X86_PROPS))
    order: List[str] = []
    while True:
        job = take(s, session)
        if job is None:
            break
        order.append(job.action)
        s.complete(session, job, JobOutcome(result()))
    assert order == ["A0", "B0", "A1", "B1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"]


def test_oldest_first_across_the_platforms_an_executor_serves(clock):
    s = make_scheduler(clock)
    avx = X86 | {("cpu", "avx2")}
    s.submit(make_job("c", ARM, label="arm-oldest"))  # not servable by this executor
    clock.advance(1)
    s.submit(make_job("c", avx, label="avx-1"))
    clock.advance(1)
    s.submit(make_job("d", X86, label="x86-1"))
    clock.advance(1)
    s.submit(make_job("c", frozenset(), label="any-1"))
    clock.advance(1)
    s.submit(make_job("c", avx, label="avx-2"))
    clock.advance(1)
    s.submit(make_job("d", X86, label="x86-2"))
    session = s.open_session("x86-avx2", {**X86_PROPS, "cpu": "avx2"})
    order = []
    while (job := take(s, session)) is not None:
        order.append(job.action)
    assert order == ["avx-1", "x86-1", "any-1", "avx-2", "x86-2"]
    assert s.snapshot()["queues"] == {"ISA=arm-a64, OSFamily=linux": 1}


# ----------------------------------------------------------------------------- dedup


def test_identical_cacheable_actions_in_flight_run_once(clock):
    calls = []
    s = make_scheduler(clock, on_success=calls.append)
    d = digest("shared")
    first = s.submit(make_job("A", action_digest=d))
    second = s.submit(make_job("B", action_digest=d))
    assert second is first
    other_instance = s.submit(make_job("B", action_digest=d, instance="ci/main"))
    assert other_instance is not first
    session = s.open_session("x86", dict(X86_PROPS))
    assert take(s, session) is first
    third = s.submit(make_job("C", action_digest=d))  # still in flight while executing
    assert third is first
    assert take(s, session) is other_instance
    assert take(s, session) is None
    s.complete(session, first, JobOutcome(result()))
    assert first.done and first.attempts == 1 and calls == [first]
    # Once done, the same action is a new job (the action cache answers repeats).
    again = s.submit(make_job("A", action_digest=d))
    assert again is not first and again.stage == QUEUED


def test_identical_non_cacheable_actions_run_twice(clock):
    s = make_scheduler(clock)
    d = digest("volatile")
    first = s.submit(make_job("A", action_digest=d, cacheable=False))
    second = s.submit(make_job("A", action_digest=d, cacheable=False))
    assert second is not first
    session = s.open_session("x86", dict(X86_PROPS))
    assert {take(s, session), take(s, session)} == {first, second}
    assert take(s, session) is None


# ----------------------------------------------------------------------------- leases


def test_silent_executor_loses_its_job_to_the_front_of_the_queue(clock):
    s = make_scheduler(clock, lease_timeout_seconds=30, max_attempts=3)
    lost = s.submit(make_job("A", label="A0"))
    s.submit(make_job("A", label="A1"))
    s.submit(make_job("B", label="B0"))
    s.submit(make_job("B", label="B1"))
    first = s.open_session("exec-1", dict(X86_PROPS))
    assert take(s, first) is lost
    clock.advance(20)
    s.heartbeat(first)
    clock.advance(25)
    s.reap()  # 25s since the last heartbeat: still leased
    assert s.session(first.name) is first and lost.stage == EXECUTING
    clock.advance(6)
    s.reap()
    assert s.session(first.name) is None
    assert lost.stage == QUEUED and lost.executor is None and not lost.done
    assert lost.attempts == 1 and lost.lost_by == ["exec-1"]
    second = s.open_session("exec-2", dict(X86_PROPS))
    # Ahead of everything else queued, including the other client's turn.
    assert take(s, second) is lost
    assert lost.stage == EXECUTING and lost.executor == "exec-2" and lost.attempts == 2
    s.complete(second, lost, JobOutcome(result()))
    assert lost.outcome.status_code == OK and lost.lost_by == ["exec-1"]


def test_job_lost_max_attempts_times_fails_unavailable_naming_the_executors(clock):
    calls = []
    s = make_scheduler(clock, lease_timeout_seconds=30, max_attempts=3, on_success=calls.append)
    job = s.submit(make_job())
    for i in range(1, 4):
        assert not job.done
        session = s.open_session(f"exec-{i}", dict(X86_PROPS))
        assert take(s, session) is job and job.attempts == i
        clock.advance(31)
        s.reap()
    assert job.done and job.stage == COMPLETED
    assert job.outcome.status_code == UNAVAILABLE and job.outcome.result is None
    assert job.lost_by == ["exec-1", "exec-2", "exec-3"]
    for name in job.lost_by:
        assert name in job.outcome.message
    assert "3 attempts" in job.outcome.message
    assert calls == []
    assert take(s, s.open_session("exec-4", dict(X86_PROPS))) is None


def test_executor_that_closes_its_session_requeues_its_job(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    session = s.open_session("exec-1", dict(X86_PROPS))
    assert take(s, session) is job
    s.close_session(session, "shutting down")
    assert job.stage == QUEUED and job.lost_by == ["exec-1"]


# ----------------------------------------------------------------------------- unmatched


def test_job_no_executor_can_run_fails_after_the_grace_period(clock):
    s = make_scheduler(clock, unmatched_grace_seconds=30)
    s.open_session("x86", dict(X86_PROPS))
    job = s.submit(make_job(platform=ARM))
    s.reap()
    clock.advance(29)
    s.reap()
    assert not job.done
    clock.advance(1)
    s.reap()
    assert job.done
    assert job.outcome.status_code == FAILED_PRECONDITION
    assert "ISA=arm-a64, OSFamily=linux" in job.outcome.message
    assert "ISA=x86-64, OSFamily=linux" in job.outcome.message  # what is on offer
    assert s.snapshot()["queues"] == {}


def test_executor_registering_within_the_grace_period_gets_the_job(clock):
    s = make_scheduler(clock, unmatched_grace_seconds=30, lease_timeout_seconds=60)
    job = s.submit(make_job(platform=ARM))
    s.reap()
    clock.advance(20)
    s.reap()
    arm = s.open_session("arm", dict(ARM_PROPS))
    clock.advance(20)  # 40s after submission
    s.reap()
    assert not job.done
    assert take(s, arm) is job


def test_grace_period_restarts_when_a_requeued_job_loses_its_only_executor(clock):
    """A job that once waited for an executor, then ran, then was lost with its executor,
    waits the whole grace period again for a replacement (the ARM executor restarting)."""
    s = make_scheduler(clock, unmatched_grace_seconds=30, lease_timeout_seconds=30)
    job = s.submit(make_job(platform=ARM))
    s.reap()  # no ARM executor yet: the grace period starts
    clock.advance(10)
    arm = s.open_session("arm-1", dict(ARM_PROPS))
    assert take(s, arm) is job  # taken before any reap saw the executor
    clock.advance(31)
    s.reap()  # arm-1 went silent: requeued, and nothing can run it
    assert not job.done and job.stage == QUEUED and job.lost_by == ["arm-1"]
    clock.advance(29)
    s.reap()
    assert not job.done
    replacement = s.open_session("arm-2", dict(ARM_PROPS))
    assert take(s, replacement) is job


# ----------------------------------------------------------------------------- cancel


def test_cancel_queued_job_completes_it_cancelled(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    version = job.version
    assert s.cancel(job.name)
    assert job.done and job.outcome.status_code == CANCELLED and job.version > version
    assert take(s, s.open_session("x86", dict(X86_PROPS))) is None
    assert not s.cancel(job.name)  # already done
    assert not s.cancel("operations/unknown")


def test_cancel_executing_job_asks_the_executor(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    session = s.open_session("x86", dict(X86_PROPS))
    assert take(s, session) is job
    version = job.version
    assert s.cancel(job.name)
    assert job.cancel_requested and not job.done and job.stage == EXECUTING
    assert job.version > version  # streams see the request
    s.complete(session, job, JobOutcome(result(-9), status_code=CANCELLED, message="action cancelled"))
    assert job.done and job.outcome.status_code == CANCELLED


def test_cancelled_job_whose_executor_is_lost_is_not_requeued(clock):
    s = make_scheduler(clock, lease_timeout_seconds=30)
    job = s.submit(make_job())
    session = s.open_session("x86", dict(X86_PROPS))
    assert take(s, session) is job
    s.cancel(job.name)
    clock.advance(31)
    s.reap()
    assert job.done and job.outcome.status_code == CANCELLED
    assert take(s, s.open_session("x86-2", dict(X86_PROPS))) is None


# ----------------------------------------------------------------------------- retention


def test_completed_operations_are_forgotten_after_retention(clock):
    s = make_scheduler(clock, operation_retention_seconds=600)
    job = s.submit(make_job())
    running = s.submit(make_job())
    session = s.open_session("x86", dict(X86_PROPS))
    assert take(s, session) is job
    assert take(s, session) is running
    s.complete(session, job, JobOutcome(result()))
    clock.advance(599)
    s.heartbeat(session)
    s.reap()
    assert s.job(job.name) is job
    clock.advance(2)
    s.heartbeat(session)
    s.reap()
    assert s.job(job.name) is None
    assert s.job(running.name) is running  # not done: kept however old


# ----------------------------------------------------------------------------- on_success


def test_on_success_called_once_for_a_successful_result(clock):
    calls = []
    s = make_scheduler(clock, on_success=calls.append)
    ok, failed, error = s.submit(make_job()), s.submit(make_job()), s.submit(make_job())
    session = s.open_session("x86", dict(X86_PROPS))
    for _ in range(3):
        take(s, session)
    s.complete(session, ok, JobOutcome(result()))
    s.complete(session, ok, JobOutcome(result()))  # a repeated report changes nothing
    s.complete(session, failed, JobOutcome(result(), status_code=4, message="timed out"))
    s.complete(session, error, JobOutcome(None, status_code=13, message="executor broke"))
    assert calls == [ok]


def test_failing_on_success_does_not_lose_the_result(clock):
    def broken_cache(job):
        raise OSError("disk full")

    s = make_scheduler(clock, on_success=broken_cache)
    job = s.submit(make_job())
    session = s.open_session("x86", dict(X86_PROPS))
    take(s, session)
    outcome = JobOutcome(result())
    s.complete(session, job, outcome)
    assert job.done and job.outcome is outcome
    assert s.job(job.name) is job
    # The scheduler is still usable (its lock was released).
    nxt = s.submit(make_job())
    assert take(s, session) is nxt


# ----------------------------------------------------------------------------- waiting


def test_wait_for_change_wakes_on_a_change(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    seen = job.version
    t, box = in_thread(s.wait_for_change, job, seen, 600)
    session = s.open_session("x86", dict(X86_PROPS))
    assert take(s, session) is job
    t.join(HANG_GUARD)
    assert not t.is_alive()
    assert box["value"] == job.version and box["value"] > seen


def test_wait_for_change_returns_on_timeout_with_a_frozen_clock(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    t, box = in_thread(s.wait_for_change, job, job.version, 0.05)
    t.join(HANG_GUARD)
    assert not t.is_alive(), "wait_for_change ignored its timeout"
    assert box["value"] == job.version


def test_wait_for_change_wakes_on_shutdown(clock):
    s = make_scheduler(clock)
    job = s.submit(make_job())
    t, box = in_thread(s.wait_for_change, job, job.version, 600)
    s.shutdown()
    t.join(HANG_GUARD)
    assert not t.is_alive() and box["value"] == job.version


def test_idle_executor_wakes_when_work_arrives(clock):
    s = make_scheduler(clock)
    session = s.open_session("x86", dict(X86_PROPS))
    t, box = in_thread(s.next_job, session, 600)
    job = s.submit(make_job())
    t.join(HANG_GUARD)
    assert not t.is_alive() and box["value"] is job


def test_next_job_returns_on_timeout_with_a_frozen_clock(clock):
    s = make_scheduler(clock)
    session = s.open_session("x86", dict(X86_PROPS))
    t, box = in_thread(s.next_job, session, 0.05)
    t.join(HANG_GUARD)
    assert not t.is_alive(), "next_job ignored its timeout"
    assert box["value"] is None


# ----------------------------------------------------------------------------- abandoned


def test_a_queued_job_nobody_waits_on_is_dropped_after_the_grace(clock):
    s = make_scheduler(clock, abandoned_grace_seconds=10, unmatched_grace_seconds=600)
    job = s.submit(make_job())
    s.watch(job)
    s.unwatch(job)
    clock.advance(9)
    s.reap()
    assert not job.done
    clock.advance(1)
    s.reap()
    assert job.done and job.outcome.status_code == 1  # CANCELLED
    assert "no client waited on it for 10s" in job.outcome.message
    assert s.snapshot()["queues"] == {}


def test_a_running_job_nobody_waits_on_has_its_lease_cancelled(clock):
    s = make_scheduler(clock, abandoned_grace_seconds=10, lease_timeout_seconds=600)
    session = s.open_session("x86", dict(X86_PROPS))
    job = s.submit(make_job())
    s.watch(job)
    assert take(s, session) is job
    s.unwatch(job)
    clock.advance(10)
    s.reap()
    assert job.cancel_requested and not job.done  # the executor kills it and reports


def test_a_job_is_kept_while_any_client_waits_or_one_comes_back(clock):
    s = make_scheduler(clock, abandoned_grace_seconds=10, unmatched_grace_seconds=600)
    job = s.submit(make_job())
    s.watch(job)
    s.watch(job)  # a second client shares the identical action
    s.unwatch(job)
    clock.advance(60)
    s.reap()
    assert not job.done and not job.cancel_requested
    s.unwatch(job)
    clock.advance(5)
    s.watch(job)  # WaitExecution after a dropped stream
    clock.advance(60)
    s.reap()
    assert not job.done and not job.cancel_requested
    never_watched = s.submit(make_job(client="b"))
    clock.advance(60)
    s.reap()
    assert not never_watched.done  # only a job that had a waiter can be abandoned


# ----------------------------------------------------------------------------- persistent workers


def keyed_job(key: Optional[str], **kwargs) -> Job:
    job = make_job(**kwargs)
    job.worker_key = key
    return job


def test_a_slot_in_next_job_counts_as_waiting(clock):
    s = make_scheduler(clock)
    session = s.open_session("x", dict(X86_PROPS))
    thread, box = in_thread(s.next_job, session, HANG_GUARD)
    wait_for(lambda: session.waiting, "the slot to wait", timeout=HANG_GUARD)
    job = s.submit(make_job())
    thread.join(HANG_GUARD)
    assert box["value"] is job and not session.waiting


def test_an_idle_executor_with_a_ready_worker_gets_the_job_of_its_key(clock):
    s = make_scheduler(clock)
    cold = s.open_session("cold", dict(X86_PROPS))
    warm = s.open_session("warm", dict(X86_PROPS))
    s.report_workers(warm, ["k1"], [])
    warm.waiting = True  # idle in next_job, as while its UpdateBotSession waits for work
    job = s.submit(keyed_job("k1"))
    assert take(s, cold) is None  # passed over: the warm executor takes it the moment it wakes
    warm.waiting = False
    assert take(s, warm) is job and job.executor == "warm"


def test_a_key_nobody_holds_goes_to_whoever_asks(clock):
    s = make_scheduler(clock)
    cold = s.open_session("cold", dict(X86_PROPS))
    warm = s.open_session("warm", dict(X86_PROPS))
    s.report_workers(warm, ["k1"], [])
    warm.waiting = True
    job = s.submit(keyed_job("k2"))
    assert take(s, cold) is job


def test_a_warm_executor_that_is_not_waiting_does_not_hold_work_back(clock):
    s = make_scheduler(clock)
    cold = s.open_session("cold", dict(X86_PROPS))
    warm = s.open_session("warm", dict(X86_PROPS))
    s.report_workers(warm, ["k1"], [])  # not waiting: between polls, or gone quiet
    job = s.submit(keyed_job("k1"))
    assert take(s, cold) is job


def test_passing_over_a_job_still_lets_the_executor_take_another(clock):
    s = make_scheduler(clock)
    cold = s.open_session("cold", dict(X86_PROPS))
    warm = s.open_session("warm", dict(X86_PROPS))
    s.report_workers(warm, ["k1"], [])
    warm.waiting = True
    for_warm = s.submit(keyed_job("k1"))
    plain = s.submit(keyed_job(None))
    assert take(s, cold) is plain
    warm.waiting = False
    assert take(s, warm) is for_warm


def test_a_busy_warm_executor_does_not_hold_work_back(clock):
    """No waiting for the warm executor while it is busy: another takes the job at once."""
    s = make_scheduler(clock)
    warm = s.open_session("warm", dict(X86_PROPS))
    s.report_workers(warm, ["k1"], [])
    first = s.submit(keyed_job("k1"))
    assert take(s, warm) is first  # now busy
    cold = s.open_session("cold", dict(X86_PROPS))
    second = s.submit(keyed_job("k1"))
    assert take(s, cold) is second


def test_worker_reports_reach_the_snapshot(clock):
    s = make_scheduler(clock)
    session = s.open_session("x", dict(X86_PROPS))
    row = {"key": "k" * 64, "protocol": "proto", "pid": 7, "requests": 3}
    s.report_workers(session, ["k" * 64], [row])
    [executor] = s.snapshot()["executors"]
    assert executor["workers"] == [row]
