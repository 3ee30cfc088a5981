"""What the scheduler and Execute report when an action finishes, turned into a timeline
record and metric observations."""

from __future__ import annotations

import time
from typing import Callable, Optional

from reapi_bridge.observability.metrics import BridgeMetrics
from reapi_bridge.observability.recorder import ActionRecorder


def _seconds(ts) -> float:
    return ts.seconds + ts.nanos / 1e9 if ts is not None and (ts.seconds or ts.nanos) else 0.0


def _outcome(exit_code: int, status: int, has_result: bool) -> str:
    if status != 0 or not has_result:
        return "error"
    return "ok" if exit_code == 0 else "failed"


class ActionFeed:
    """`finished(job)` for the scheduler (called under its lock: cheap), `cache_hit(...)` for
    Execute answered from the cache."""

    def __init__(self, recorder: ActionRecorder, metrics: Optional[BridgeMetrics],
                 mono: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.recorder = recorder
        self.metrics = metrics
        self.mono = mono
        self.wall = wall

    def finished(self, job) -> None:
        outcome = job.outcome
        result = outcome.result if outcome is not None else None
        meta = result.execution_metadata if result is not None else None
        offset = self.wall() - self.mono()  # the scheduler's clock is monotonic
        queued = job.queued_at + offset
        completed = (job.completed_at or self.mono()) + offset
        stamps = {
            "worker_start": _seconds(meta.worker_start_timestamp) if meta else 0.0,
            "fetch_start": _seconds(meta.input_fetch_start_timestamp) if meta else 0.0,
            "fetch_end": _seconds(meta.input_fetch_completed_timestamp) if meta else 0.0,
            "exec_start": _seconds(meta.execution_start_timestamp) if meta else 0.0,
            "exec_end": _seconds(meta.execution_completed_timestamp) if meta else 0.0,
            "upload_start": _seconds(meta.output_upload_start_timestamp) if meta else 0.0,
            "upload_end": _seconds(meta.output_upload_completed_timestamp) if meta else 0.0,
        }
        if not stamps["worker_start"] and job.started_at:
            stamps["worker_start"] = job.started_at + offset
        props = dict(job.platform) if job.platform else {}
        platform = ", ".join(f"{k}={v}" for k, v in sorted(props.items()))
        executor = (meta.worker if meta and meta.worker else "") or (job.executor or "")
        exit_code = result.exit_code if result is not None else -1
        status = outcome.status_code if outcome is not None else 2
        self.recorder.add(
            operation=job.name, instance=job.instance, action=f"{job.action_digest.hash}/{job.action_digest.size}",
            platform=platform, isa=props.get("ISA", ""), executor=executor, invocation=job.client,
            argv=tuple(getattr(job, "argv_head", ()) or ()), exit_code=exit_code, status=status, cached=False,
            queued=queued, completed=completed, **stamps,
        )
        if self.metrics is not None:
            start = stamps["worker_start"]
            self.metrics.observe_execution(
                platform, executor.rsplit("/", 1)[0] if executor else "", _outcome(exit_code, status, result is not None),
                queued=(start - queued) if start else None,
                executing=(stamps["upload_end"] or completed) - start if start else None,
            )

    def cache_hit(self, instance: str, action_digest, invocation: str, result) -> None:
        now = self.wall()
        self.recorder.add(
            operation="", instance=instance, action=f"{action_digest.hash}/{action_digest.size}", platform="", isa="",
            executor="", invocation=invocation, argv=(), exit_code=result.exit_code, status=0, cached=True,
            queued=now, worker_start=now, fetch_start=0.0, fetch_end=0.0, exec_start=now, exec_end=now,
            upload_start=0.0, upload_end=0.0, completed=now,
        )
        if self.metrics is not None:
            self.metrics.observe_execution("", "", "cached", queued=None, executing=None)
