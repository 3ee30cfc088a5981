"""Synthetic finished actions for the status page's test and benchmark: `count` actions over
two x86-64 and two ARM64 slots, back to back in each slot, in a few Pants runs."""

from __future__ import annotations

import time

from reapi_bridge.observability.recorder import ActionRecorder

SLOTS = (("x86-64", "local-x86-64/0"), ("x86-64", "local-x86-64/1"), ("arm-a64", "local-arm-a64/0"), ("arm-a64", "local-arm-a64/1"))


def fill(recorder: ActionRecorder, count: int, start: float = 0.0) -> dict:
    """Adds `count` actions; returns how many went to each ISA."""
    t = {slot: (start or time.time() - count * 0.05) for _, slot in SLOTS}
    by_isa: dict = {}
    for i in range(count):
        isa, slot = SLOTS[i % len(SLOTS)]
        t0 = t[slot]
        run = 0.02 + (i % 7) * 0.01
        recorder.add(
            operation=f"operations/synthetic-{i}", instance="", action=f"{i:064x}/{100 + i}",
            platform=f"ISA={isa}, OSFamily=linux", isa=isa, executor=slot, invocation=f"run-{i // 2500}",
            argv=("bin/shard_runner", f"@shard-args/case-{i}.args"), exit_code=0 if i % 97 else 1, status=0,
            cached=False, queued=t0, worker_start=t0 + 0.002, fetch_start=t0 + 0.002, fetch_end=t0 + 0.004,
            exec_start=t0 + 0.004, exec_end=t0 + 0.004 + run, upload_start=t0 + 0.004 + run,
            upload_end=t0 + 0.006 + run, completed=t0 + 0.007 + run,
        )
        t[slot] = t0 + 0.008 + run
        by_isa[isa] = by_isa.get(isa, 0) + 1
    return by_isa
