"""The supervisor with cheap children (sh and python one-liners): restarts after SIGKILL with a
growing backoff, records restarts and exits, stops in reverse order and restarts nothing
while or after it stops. No wall-clock limits: waits poll with generous deadlines; the backoff
is checked as lower bounds (a restart never comes before its delay)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

from reapi_bridge.cluster.state import RESTARTING, RUNNING, STOPPED, describe_exit, load_state
from reapi_bridge.cluster.supervisor import Backoff, ChildSpec, StartFailed, Supervisor
from reapi_bridge_testing.bridge import wait_for

# Each child appends "pid start-time" to its own file when it starts, and "stopped role" to a
# shared file when SIGTERM reaches it.
CHILD = """
import os, signal, sys, time
starts, stops, role = sys.argv[1:4]
def on_term(signum, frame):
    with open(stops, "a") as f:
        f.write(role + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
with open(starts, "a") as f:
    f.write(f"{os.getpid()} {time.time()}\\n")
while True:
    time.sleep(1)
"""


def starts(path: Path) -> List[tuple]:
    if not path.exists():
        return []
    return [(int(pid), float(t)) for pid, t in (line.split() for line in path.read_text().splitlines() if line)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Harness:
    def __init__(self, tmp: Path, roles=("first", "second"), backoff=Backoff(0.2, 1.6, 60.0), stop_timeout=30.0, **child):
        self.tmp = tmp
        self.stops = tmp / "stops"
        self.state_file = tmp / "cluster.json"
        self.specs = [
            ChildSpec(
                role,
                child.get(role, lambda role=role: [sys.executable, "-c", CHILD, str(tmp / f"{role}.starts"), str(self.stops), role]),
                tmp / f"{role}.log",
            )
            for role in roles
        ]
        self.supervisor = Supervisor(self.specs, self.state_file, backoff=backoff, stop_timeout=stop_timeout, poll_interval=0.05)
        self.error: List[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.supervisor.run()
        except BaseException as exc:  # reported by the test
            self.error.append(exc)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.supervisor.request_stop()
        self.thread.join(120)
        assert not self.thread.is_alive()

    def starts(self, role: str) -> List[tuple]:
        return starts(self.tmp / f"{role}.starts")

    def record(self, role: str):
        return load_state(self.state_file).process(role)


def test_backoff_doubles_to_the_cap():
    b = Backoff(initial=1.0, cap=30.0, reset_after=60.0)
    assert [b.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_restart_after_sigkill_with_growing_backoff_and_records(tmp_path):
    with Harness(tmp_path) as h:
        # Each child writes its start line itself, in no particular order.
        wait_for(lambda: len(h.starts("first")) == len(h.starts("second")) == 1, "both children to start")
        state = load_state(h.state_file)
        assert [p.role for p in state.processes] == ["first", "second"]
        assert state.supervisor.pid == os.getpid()
        first_pid = h.starts("first")[0][0]
        assert h.record("first").pid == first_pid and h.record("first").state == RUNNING

        # Killed three times in a row, each soon after its start: 0.2 s, 0.4 s, 0.8 s.
        gaps = []
        for n in range(1, 4):
            pid = h.starts("first")[-1][0]
            wait_for(lambda: h.record("first").pid == pid, "the state to name the new process")
            os.kill(pid, signal.SIGKILL)
            killed_at = time.time()
            wait_for(lambda: len(h.starts("first")) == n + 1, f"restart {n}")
            gaps.append(h.starts("first")[-1][1] - killed_at)
            rec = wait_for(lambda: (r := h.record("first")).restarts == n and r.state == RUNNING and r, "the record")
            assert rec.last_exit == "signal 9 (SIGKILL)"
            assert killed_at - 1 <= rec.last_exit_at <= rec.started
            assert rec.pid == h.starts("first")[-1][0] and alive(rec.pid)
        assert [g >= d for g, d in zip(gaps, (0.2, 0.4, 0.8))] == [True, True, True], gaps
        # The other child was left alone.
        assert len(h.starts("second")) == 1 and h.record("second").restarts == 0
        assert h.record("second").last_exit == ""
    assert h.error == []


def test_a_child_that_stays_up_resets_its_backoff(tmp_path):
    with Harness(tmp_path, roles=("only",), backoff=Backoff(0.2, 30.0, reset_after=1.0)) as h:
        for n in range(1, 3):  # two quick exits: the next delay would be 0.8 s
            pid = wait_for(lambda: len(h.starts("only")) == n and h.starts("only")[-1][0], "a start")
            wait_for(lambda: h.record("only").pid == pid, "the state")
            os.kill(pid, signal.SIGKILL)
        pid = wait_for(lambda: len(h.starts("only")) == 3 and h.starts("only")[-1][0], "the third start")
        time.sleep(1.5)  # up longer than reset_after
        wait_for(lambda: h.record("only").pid == pid, "the state")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: h.record("only").state == RESTARTING, "the exit to be recorded")
        rec = h.record("only")
        assert rec.restart_at - rec.last_exit_at == pytest.approx(0.2, abs=0.05)


def test_a_child_that_keeps_crashing_does_not_spin(tmp_path):
    crash = lambda: ["/bin/sh", "-c", f'echo "$$ $(date +%s.%N)" >> {tmp_path}/crash.starts; exit 3']
    with Harness(tmp_path, roles=("crash",), backoff=Backoff(0.1, 0.4, 60.0), crash=crash) as h:
        wait_for(lambda: len(h.starts("crash")) >= 5, "five attempts")
        times = [t for _, t in h.starts("crash")][:5]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert [g >= d for g, d in zip(gaps, (0.1, 0.2, 0.4, 0.4))] == [True] * 4, gaps
        rec = wait_for(lambda: (r := h.record("crash")).restarts >= 4 and r, "the record")
        assert rec.last_exit == "exit 3"


def test_stop_is_in_reverse_order_and_restarts_nothing(tmp_path):
    with Harness(tmp_path, roles=("bridge", "executor-a", "executor-b")) as h:
        wait_for(lambda: all(len(h.starts(r)) == 1 for r in ("bridge", "executor-a", "executor-b")), "all three to start")
        pids = {role: h.starts(role)[0][0] for role in ("bridge", "executor-a", "executor-b")}
        # One child is in its backoff when the stop comes: it must not start again.
        h.supervisor.backoff = Backoff(2.0, 2.0, 60.0)
        wait_for(lambda: h.record("executor-a").pid == pids["executor-a"], "the state")
        os.kill(pids["executor-a"], signal.SIGKILL)
        wait_for(lambda: h.record("executor-a").state == RESTARTING, "executor-a to wait for its restart")
    assert h.error == []
    assert h.stops.read_text().split() == ["executor-b", "bridge"]
    assert not any(alive(pid) for pid in pids.values())
    time.sleep(2.5)  # past executor-a's restart time
    assert len(h.starts("executor-a")) == 1
    state = load_state(h.state_file)
    assert [(p.role, p.pid, p.state) for p in state.processes] == [
        ("bridge", 0, STOPPED), ("executor-a", 0, STOPPED), ("executor-b", 0, STOPPED),
    ]
    assert state.process("executor-a").last_exit == "signal 9 (SIGKILL)"
    assert state.process("bridge").last_exit == "exit 0"


def test_a_child_deaf_to_sigterm_is_killed(tmp_path):
    deaf = lambda: [
        sys.executable, "-c",
        f"import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(tmp_path / 'deaf.starts')!r}, 'a').write(f'{{os.getpid()}} {{time.time()}}\\n'); time.sleep(1000)",
    ]
    with Harness(tmp_path, roles=("deaf",), stop_timeout=0.5, deaf=deaf) as h:
        pid = wait_for(lambda: h.starts("deaf") and h.starts("deaf")[0][0], "the start")
    assert not alive(pid)
    assert h.record("deaf").last_exit == "signal 9 (SIGKILL)"


def test_a_child_that_cannot_start_the_first_time_fails_the_start(tmp_path):
    ready_file = tmp_path / "ready"
    specs = [
        ChildSpec("bridge", lambda: ["/bin/sh", "-c", "echo cannot bind >&2; exit 1"], tmp_path / "bridge.log",
                  ready=ready_file.exists),
        ChildSpec("executor", lambda: ["sleep", "1000"], tmp_path / "executor.log"),
    ]
    supervisor = Supervisor(specs, tmp_path / "cluster.json", poll_interval=0.05)
    with pytest.raises(StartFailed, match=r"bridge exited \(exit 1\) before it was ready; see .*bridge.log"):
        supervisor.run()
    state = load_state(tmp_path / "cluster.json")
    assert "bridge exited" in state.error
    assert state.process("executor").started == 0, "nothing after the failed child was started"
    assert (tmp_path / "bridge.log").read_text() == "cannot bind\n"


def test_describe_exit():
    assert describe_exit(0) == "exit 0"
    assert describe_exit(3) == "exit 3"
    assert describe_exit(-9) == "signal 9 (SIGKILL)"
    assert describe_exit(-15) == "signal 15 (SIGTERM)"
