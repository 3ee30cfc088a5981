"""A persistent worker in the emulated aarch64 userland: one long-lived proot + qemu session
serves many actions (real busybox-static:arm64, proot and qemu-aarch64-static, as the ARM64
executor of `up` runs them)."""

from __future__ import annotations

import re

import pytest

from reapi_bridge.executor.arm64_userland import build_rootfs
from reapi_bridge_testing import sh_worker
from reapi_bridge_testing.bridge import execute, make_action, running_executor

ARM = {"OSFamily": "linux", "ISA": "arm-a64"}
SERVED = re.compile(r"pid=(\S+) count=(\d+)(?: arch=(\S+))?")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return build_rootfs(tmp_path_factory.mktemp("arm64") / "rootfs")


@pytest.fixture
def arm_executor(address, open_dir, rootfs):
    with running_executor(address, open_dir, isa="arm-a64", name="test-arm", rootfs=rootfs) as ex:
        yield ex


def sh_action(client, n: int, workers: bool):
    platform = {**ARM, "persistentWorkerProtocol": "json"} if workers else dict(ARM)
    return make_action(
        client,
        sh_worker.argv(),
        files={sh_worker.PATH_IN_INPUTS: sh_worker.SCRIPT.encode(), "args/request.flags": f"request {n}\n".encode()},
        platform=platform,
    )


def served(client, action):
    response, _ = execute(client, action, skip_cache_lookup=True)
    assert response.status.code == 0 and response.result.exit_code == 0, response
    stderr = client.stream_read(response.result.stderr_digest).decode()
    match = SERVED.search(stderr)
    assert match, stderr
    return match.groups()


def test_one_emulated_session_serves_many_actions(client, arm_executor):
    answers = [served(client, sh_action(client, n, workers=True)) for n in range(4)]
    pids = {pid for pid, _, _ in answers}
    assert len(pids) == 1 and "one-shot" not in pids
    assert [int(count) for _, count, _ in answers] == [1, 2, 3, 4]
    assert {arch for _, _, arch in answers} == {"aarch64"}
    rows = arm_executor.pool.rows()
    assert len(rows) == 1 and rows[0].protocol == "json" and rows[0].requests == 4 and rows[0].rss_bytes > 0


def test_without_the_hint_the_same_action_runs_one_shot(client, arm_executor):
    assert served(client, sh_action(client, 0, workers=False))[0] == "one-shot"
    assert not arm_executor.pool.rows()
