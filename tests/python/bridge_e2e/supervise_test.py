"""`reapi-bridge.pex up` runs a supervisor that starts again what dies: an ARM64 executor killed
with SIGKILL comes back by itself, an ARM64 action then runs, and `status` counts the restart.
A bridge that cannot start fails `up` with its log; a supervisor killed with SIGKILL leaves
processes that the next `up` stops before it starts afresh; `down` leaves nothing running.

No wall-clock limits are asserted: waits poll with generous deadlines."""

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from pants_project import Cluster, bridge_command, open_temp_dir
from reapi_bridge_testing.bridge import client_for, execute, make_action, wait_for

ARM = "executor-arm-a64"


@pytest.fixture
def cluster():
    c = Cluster(open_temp_dir("crossbuild-supervise-"))
    yield c
    c.down()


def state(cluster: Cluster) -> dict:
    return json.loads((cluster.state / "cluster.json").read_text())


def record(cluster: Cluster, role: str) -> dict:
    return next(p for p in state(cluster)["processes"] if p["role"] == role)


def processes_of(state_dir: Path) -> list:
    """Live processes whose command line names the state dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(state_dir) in cmdline and status != "Z":
            found.append(f"{proc.name}: {cmdline}")
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_on_arm64(address: str) -> str:
    with client_for(address) as client:
        action = make_action(
            client, ["/bin/sh", "-c", "uname -m"], env={"PATH": "/bin:/usr/bin"},
            platform={"OSFamily": "linux", "ISA": "arm-a64"}, salt=os.urandom(8),
        )
        response, _ = execute(client, action)
        result = response.result
        assert response.status.code == 0 and result.exit_code == 0, (
            response.status, client.stream_read(result.stderr_digest).decode()
        )
        assert result.execution_metadata.worker.startswith("local-arm-a64/")
        return client.stream_read(result.stdout_digest).decode()


def status_row(cluster: Cluster, role: str) -> list:
    """The role's row of the "processes" section of `status`: role, pid, up, restarts, last exit."""
    out = cluster.status()
    section = out[out.index("\nprocesses (") :]
    line = next(l for l in section.splitlines() if l.split()[:1] == [role])
    return re.split(r"\s{2,}", line.strip())


def test_a_killed_arm64_executor_is_restarted_and_runs_the_next_action(cluster):
    address = cluster.up()
    first = record(cluster, ARM)
    assert first["restarts"] == 0 and first["last_exit"] == ""
    os.kill(first["pid"], signal.SIGKILL)

    # Nobody runs `up` again: the supervisor starts a new ARM64 executor, which takes the action.
    assert run_on_arm64(address) == "aarch64\n"

    now = record(cluster, ARM)
    assert now["pid"] != first["pid"] and now["restarts"] == 1
    assert now["last_exit"] == "signal 9 (SIGKILL)"
    role, pid, up, restarts, last_exit = status_row(cluster, ARM)
    assert (pid, restarts) == (str(now["pid"]), "1")
    assert last_exit.startswith("signal 9 (SIGKILL), ")
    assert status_row(cluster, "bridge")[3] == "0" and status_row(cluster, "executor-x86-64")[3] == "0"

    # `up` on a running cluster says so and keeps the address.
    again = subprocess.run(
        bridge_command("up", "--state-dir", str(cluster.state), "--listen", "127.0.0.1:0"), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and again.stdout.strip().splitlines()[-1] == address

    supervisor = state(cluster)["supervisor"]["pid"]
    down = subprocess.run(bridge_command("down", "--state-dir", str(cluster.state)), capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert f"stopped the supervisor (pid {supervisor})" in down.stdout
    assert processes_of(cluster.state) == []
    assert not (cluster.state / "cluster.json").exists()


def test_a_killed_bridge_comes_back_on_its_address(cluster):
    address = cluster.up()
    os.kill(record(cluster, "bridge")["pid"], signal.SIGKILL)
    wait_for(lambda: record(cluster, "bridge")["restarts"] == 1 and record(cluster, "bridge")["pid"], "the restart", timeout=300, interval=0.2)
    # The executors reconnect to the new bridge by themselves.
    assert run_on_arm64(address) == "aarch64\n"


def test_up_after_the_supervisor_was_killed_starts_afresh(cluster):
    cluster.up()
    before = state(cluster)
    os.kill(before["supervisor"]["pid"], signal.SIGKILL)
    orphans = [p["pid"] for p in before["processes"]]
    status = cluster.status()
    assert "is not running: nothing restarts them" in status

    address = cluster.up()
    after = state(cluster)
    assert after["supervisor"]["pid"] != before["supervisor"]["pid"]
    assert not set(orphans) & {p["pid"] for p in after["processes"]}
    wait_for(lambda: not any(alive(pid) for pid in orphans), "the orphans to be gone", timeout=60)
    assert run_on_arm64(address) == "aarch64\n"
    cluster.down()
    assert processes_of(cluster.state) == []


def test_up_fails_naming_the_log_when_the_bridge_cannot_start(cluster):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.run(
            bridge_command("up", "--state-dir", str(cluster.state), "--listen", f"127.0.0.1:{port}"),
            capture_output=True, text=True,
        )
    assert up.returncode == 1
    assert f"see {cluster.state.resolve() / 'logs' / 'bridge.log'}" in up.stderr, up.stderr
    # The bridge's own words, from its log (grpcio raises where older releases returned port 0).
    assert re.search(r"could not listen|Failed to bind", up.stderr), up.stderr
    assert processes_of(cluster.state) == []
