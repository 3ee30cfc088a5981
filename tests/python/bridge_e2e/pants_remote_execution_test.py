"""Pants 2.17 sends processes to the x86-64 and ARM64 executors through the bridge.

`reapi-bridge.pex up` starts a bridge and one executor per ISA (ARM64 emulated here). A
small Pants project defines both remote environments, as this repository's root BUILD does,
and a shell_command in each; their outputs prove the architecture, the results in the
bridge's action cache name the executor, and a second run is served from the cache.
"""

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from pants_project import Cluster, open_temp_dir, remote_flags, run_pants, write_pants_project


def write_project(root: Path, commands: dict) -> None:
    targets = []
    for name, (environment, command) in commands.items():
        targets.append(
            f'shell_command(name="{name}", command={command!r}, tools=["uname", "sleep", "cat"], '
            f'output_files=["{name}.txt"], environment="{environment}")\n'
        )
    write_pants_project(
        root, backends=["pants.backend.shell"], environments=["linux_x86_64", "linux_arm64"], build="\n".join(targets)
    )


def cached_workers(state: Path) -> set:
    """Worker names recorded in the results the bridge cached (ExecutedActionMetadata.worker,
    field 1 of field 9 of ActionResult), read straight from its database."""
    db = sqlite3.connect(str(state / "bridge" / "action-cache.sqlite3"))
    names = set()
    for (blob,) in db.execute("SELECT result FROM action_results"):
        for marker in (b"local-x86-64/", b"local-arm-a64/"):
            if marker in blob:
                names.add(marker.decode().rstrip("/"))
    db.close()
    return names


@pytest.fixture
def cluster():
    state = open_temp_dir("crossbuild-cluster-")
    config = state / "bridge.toml"
    # A short lease timeout so a killed executor's action is requeued quickly.
    config.write_text("[execution]\nlease_timeout_seconds = 4\nunmatched_grace_seconds = 120\n")
    c = Cluster(state, config)
    yield c
    c.down()


def test_each_environment_runs_on_its_architecture(cluster, tmp_path):
    address = cluster.up()
    project = tmp_path / "project"
    project.mkdir()
    write_project(
        project,
        {
            "on-x86": ("linux_x86_64", "uname -m > on-x86.txt"),
            "on-arm": ("linux_arm64", "uname -m > on-arm.txt"),
        },
    )
    first = run_pants(project, tmp_path / "store-1", *remote_flags(address), "export-codegen", "::")
    assert first.returncode == 0, first.stderr
    out = project / "dist" / "codegen"
    assert (out / "on-x86.txt").read_text() == "x86_64\n"
    assert (out / "on-arm.txt").read_text() == "aarch64\n"
    assert cached_workers(cluster.state) == {"local-x86-64", "local-arm-a64"}
    status = cluster.status()
    assert "local-arm-a64/0" in status and "ISA=arm-a64" in status
    hits = cache_hits(status)

    second = run_pants(project, tmp_path / "store-2", *remote_flags(address), "export-codegen", "::")
    assert second.returncode == 0, second.stderr
    assert (out / "on-arm.txt").read_text() == "aarch64\n"
    # Both commands were answered from the bridge's action cache. (Pants also re-runs its
    # uncacheable environment probes, so executed-action counts do grow.)
    assert cache_hits(cluster.status()) >= hits + 2


def cache_hits(status: str) -> int:
    """Action-cache hits of the bridge, from `reapi-bridge status`."""
    match = re.search(r"action cache: \d+ results, (\d+) hits", status)
    assert match, status
    return int(match.group(1))


def test_run_survives_arm64_executor_killed_mid_action(cluster, tmp_path):
    address = cluster.up()
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, {"slow-arm": ("linux_arm64", "sleep 8; uname -m > slow-arm.txt")})
    run = run_pants(project, tmp_path / "store", *remote_flags(address), "export-codegen", "::", background=True)
    deadline = time.monotonic() + 300
    while "busy (1 running)" not in cluster.status():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the ARM64 executor never started the action"
        time.sleep(0.2)
    os.kill(cluster.pid("executor-arm-a64"), signal.SIGKILL)
    cluster.up()  # the supervisor starts a new ARM64 executor; `up` waits until it registered
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert (project / "dist" / "codegen" / "slow-arm.txt").read_text() == "aarch64\n"
