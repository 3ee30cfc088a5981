"""The "processes" section of `reapi-bridge status`: what the supervisor of the embedded
cluster runs, read from its state file.

    processes (supervisor pid 4242, up 1h02m):
      role              pid     up       restarts  last exit
      bridge            4250    1h02m    0         -
      executor-x86-64   4261    1h02m    0         -
      executor-arm-a64  5120    12s      1         signal 9 (SIGKILL), 14s ago
"""

from __future__ import annotations

import math
from typing import Callable, List

from reapi_bridge.cluster.state import RESTARTING, RUNNING, ClusterState, ProcessRecord


def duration(seconds: float) -> str:
    """`12s`, `5m02s`, `3h04m`, `2d03h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _row(p: ProcessRecord, supervised: bool, alive: Callable[[int], bool], now: float) -> List[str]:
    if p.state == RUNNING and p.pid and alive(p.pid):
        pid, up = str(p.pid), duration(now - p.started)
    elif p.state == RUNNING and p.pid:
        pid, up = f"{p.pid}", "exited" if supervised else "gone"
    elif p.state == RESTARTING and supervised:
        pid, up = "-", f"starts in {duration(math.ceil(p.restart_at - now))}" if p.restart_at > now else "starting"
    else:
        pid, up = "-", "stopped"
    last = f"{p.last_exit}, {duration(now - p.last_exit_at)} ago" if p.last_exit else "-"
    return [p.role, pid, up, str(p.restarts), last]


def format_processes(state: ClusterState, supervised: bool, alive: Callable[[int], bool], now: float) -> str:
    """`supervised`: the supervisor process runs; `alive(pid)`: whether a process runs."""
    sup = state.supervisor
    if supervised:
        head = f"processes (supervisor pid {sup.pid}, up {duration(now - sup.started)}):"
    else:
        head = (
            f"processes (the supervisor, pid {sup.pid}, is not running: nothing restarts them; "
            "`up` stops what is left and starts afresh):"
        )
    rows = [["role", "pid", "up", "restarts", "last exit"]]
    rows += [_row(p, supervised, alive, now) for p in state.processes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [head]
    for r in rows:
        lines.append("  " + "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(r[:4])) + "  " + r[4])
    if state.error:
        lines.append(f"  error: {state.error}")
    return "\n".join(lines)
