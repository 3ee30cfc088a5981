from reapi_bridge.cluster.processes import duration, format_processes
from reapi_bridge.cluster.state import (
    RESTARTING,
    RUNNING,
    STOPPED,
    ClusterState,
    ProcessRecord,
    SupervisorRecord,
    load_state,
    save_state,
)

NOW = 1_000_000.0


def state() -> ClusterState:
    return ClusterState(
        address="grpc://127.0.0.1:8980",
        supervisor=SupervisorRecord(pid=10, started=NOW - 3725, log="logs/supervisor.log"),
        processes=[
            ProcessRecord("bridge", "logs/bridge.log", pid=11, state=RUNNING, started=NOW - 3720),
            ProcessRecord(
                "executor-x86-64", "logs/executor-x86-64.log", state=RESTARTING, restarts=3,
                last_exit="exit 1", last_exit_at=NOW - 2, restart_at=NOW + 3.5,
            ),
            ProcessRecord(
                "executor-arm-a64", "logs/executor-arm-a64.log", pid=13, state=RUNNING, started=NOW - 12,
                restarts=1, last_exit="signal 9 (SIGKILL)", last_exit_at=NOW - 14,
            ),
        ],
    )


def test_duration():
    assert [duration(s) for s in (0, 12.9, 62, 3725, 90061)] == ["0s", "12s", "1m02s", "1h02m", "1d01h"]


def test_processes_section():
    text = format_processes(state(), True, lambda pid: True, NOW)
    assert text.splitlines() == [
        "processes (supervisor pid 10, up 1h02m):",
        "  role              pid  up            restarts  last exit",
        "  bridge            11   1h02m         0         -",
        "  executor-x86-64   -    starts in 4s  3         exit 1, 2s ago",
        "  executor-arm-a64  13   12s           1         signal 9 (SIGKILL), 14s ago",
    ], text


def test_without_a_supervisor_the_section_says_nothing_restarts():
    text = format_processes(state(), False, lambda pid: pid != 11, NOW)
    assert "is not running: nothing restarts them" in text.splitlines()[0]
    assert "  bridge            11   gone     0         -" in text.splitlines()


def test_state_file_round_trip(tmp_path):
    path = tmp_path / "cluster.json"
    save_state(path, state())
    assert load_state(path) == state()
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.json"], "no temporary file is left"
    assert load_state(tmp_path / "missing.json") == ClusterState()
    stopped = ProcessRecord("bridge", "b.log")
    assert stopped.state == STOPPED and stopped.pid == 0
