"""The measuring half of the worker benchmark (see worker_benchmark.py for each figure)."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence

from reapi_bridge_testing import sh_worker
from reapi_bridge_testing.bridge import (
    client_for,
    execute,
    make_action,
    make_test_config,
    running_bridge,
    running_executor,
    traversable_temp_dir,
)

MODES = ("one-shot", "worker")


@dataclass
class Series:
    """One (executor, mode): the three figures of each action, in ms."""

    round_trip: List[float] = field(default_factory=list)
    executor: List[float] = field(default_factory=list)
    execution: List[float] = field(default_factory=list)
    first_request: Dict[str, float] = field(default_factory=dict)  # worker mode: the start-up request


@dataclass
class Figures:
    actions: int
    load: tuple
    series: Dict[str, Dict[str, Series]]  # isa -> mode -> Series


def _ms(start, end) -> float:
    return (end.ToNanoseconds() - start.ToNanoseconds()) / 1e6


def _one(client, isa: str, mode: str, label: str):
    platform = {"OSFamily": "linux", "ISA": isa}
    if mode == "worker":
        platform["persistentWorkerProtocol"] = "json"
    action = make_action(
        client,
        sh_worker.argv(),
        files={sh_worker.PATH_IN_INPUTS: sh_worker.SCRIPT.encode(), "args/request.flags": f"{label}\n".encode()},
        platform=platform,
    )
    started = time.perf_counter()
    response, _ = execute(client, action, skip_cache_lookup=True)
    round_trip = (time.perf_counter() - started) * 1e3
    result = response.result
    if response.status.code != 0 or result.exit_code != 0:
        raise RuntimeError(f"{isa} {mode} action failed: {response.status.message} exit {result.exit_code}")
    stderr = client.stream_read(result.stderr_digest).decode()
    if (mode == "worker") == ("one-shot" in stderr):
        raise RuntimeError(f"{isa} {mode} action was not served as asked: {stderr!r}")
    meta = result.execution_metadata
    return (
        round_trip,
        _ms(meta.worker_start_timestamp, meta.worker_completed_timestamp),
        _ms(meta.execution_start_timestamp, meta.execution_completed_timestamp),
    )


def measure(isas: Sequence[str], actions: int, log: Callable[[str], None] = print) -> Figures:
    series: Dict[str, Dict[str, Series]] = {}
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as state, traversable_temp_dir() as work:
        config = make_test_config(Path(state))
        with running_bridge(config) as bridge:
            address = f"127.0.0.1:{bridge.port}"
            with client_for(address) as client:
                for isa in isas:
                    name = f"bench-{isa}"
                    extra = {"rootfs": work / "arm64-rootfs"} if isa == "arm-a64" else {}
                    log(f"starting the {isa} executor")
                    with running_executor(address, work, isa=isa, name=name, **extra):
                        series[isa] = {}
                        run_id = uuid.uuid4().hex[:8]
                        # One warm-up action each way (the executor's first input fetch).
                        _one(client, isa, "one-shot", f"warm-up {run_id}")
                        for mode in MODES:
                            s = series[isa][mode] = Series()
                            if mode == "worker":
                                rt, ex, exe = _one(client, isa, mode, f"first {run_id}")
                                s.first_request = {"round_trip": rt, "executor": ex, "execution": exe}
                            log(f"{isa}: {actions} {mode} actions")
                            for i in range(actions):
                                rt, ex, exe = _one(client, isa, mode, f"{mode} {i} {run_id}")
                                s.round_trip.append(rt)
                                s.executor.append(ex)
                                s.execution.append(exe)
    return Figures(actions, os.getloadavg(), series)
