"""Persistent workers end to end: a bridge and an executor in this process over real gRPC, a
real worker process (reapi_bridge_testing/sample_worker.py, run by this machine's python3),
and actions built the way Bazel marks them remotely (platform properties, the
`bazel_tool_input` node property, a trailing @FLAGFILE), or the way Pants can (a protocol
property on the environment, no key).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Optional, Sequence

import grpc
import pytest
from google.rpc import code_pb2

from reapi_bridge.executor.workers.pool import WorkerSettings
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from google.longrunning import operations_pb2
from reapi_bridge.status.instance import StatusInstance
from reapi_bridge_testing import sample_worker
from reapi_bridge_testing.bridge import execute, make_action, running_executor, wait_until

SAMPLE_WORKER = Path(sample_worker.__file__)
PYTHON = "/usr/bin/python3"  # reachable by the action user (nobody); a pyenv shim under /root is not
X86 = {"OSFamily": "linux", "ISA": "x86-64"}
PID = re.compile(r"pid=(\d+|one-shot) count=(\d+)")


def worker_action(
    client,
    arguments: Sequence[str],
    *,
    protocol: Optional[str] = "proto",
    key: Optional[str] = "bazel-key-1",
    startup: Sequence[str] = (),
    multiplex: bool = False,
    mark_tool: bool = True,
    timeout_seconds: float = 0,
    output_paths: Sequence[str] = (),
    extra_files: Optional[Dict[str, bytes]] = None,
    salt: bytes = b"",
) -> re_pb2.Digest:
    """An action for the sample worker: `python3 tools/worker.py STARTUP... @args/request.flags`."""
    platform = dict(X86)
    if key:
        platform["persistentWorkerKey"] = key
    if protocol:
        platform["persistentWorkerProtocol"] = protocol
    if multiplex:
        platform["persistentWorkerMultiplex"] = "true"
    tool = (SAMPLE_WORKER.read_bytes(), False, {"bazel_tool_input": ""} if mark_tool else {})
    files = {"tools/worker.py": tool, "args/request.flags": "".join(a + "\n" for a in arguments).encode()}
    files.update(extra_files or {})
    flags = [f"--protocol={protocol or 'proto'}", *(["--multiplex"] if multiplex else []), *startup]
    return make_action(
        client,
        [PYTHON, "tools/worker.py", *flags, "@args/request.flags"],
        files=files,
        env={"PATH": "/usr/bin:/bin"},
        platform=platform,
        timeout_seconds=timeout_seconds,
        output_paths=output_paths,
        salt=salt,
    )


def run(client, action, skip_cache_lookup: bool = True):
    response, _ = execute(client, action, skip_cache_lookup=skip_cache_lookup)
    result = response.result
    stderr = client.stream_read(result.stderr_digest).decode() if result.HasField("stderr_digest") else ""
    stdout = client.stream_read(result.stdout_digest).decode() if result.HasField("stdout_digest") else ""
    return response, stdout, stderr


def served_by(stderr: str):
    match = PID.search(stderr)
    assert match, stderr
    return match.group(1), int(match.group(2))


@pytest.fixture
def worker_executor(address, open_dir, request):
    settings = getattr(request, "param", WorkerSettings())
    with running_executor(address, open_dir, workers=settings) as ex:
        yield ex


@pytest.mark.parametrize("protocol", ["proto", "json"])
def test_one_worker_process_serves_several_actions(client, worker_executor, protocol):
    pids, counts = [], []
    for i in range(3):
        response, stdout, stderr = run(client, worker_action(client, ["echo", f"n{i}"], protocol=protocol))
        assert response.status.code == 0 and response.result.exit_code == 0, stderr
        assert stdout == ""  # the response's output is the action's stderr
        assert f"args=n{i}" in stderr and "inputs=2" in stderr
        pid, count = served_by(stderr)
        pids.append(pid)
        counts.append(count)
    assert pids[0] != "one-shot" and len(set(pids)) == 1
    assert counts == [1, 2, 3]


def test_outputs_are_collected_and_each_request_sees_only_its_inputs(client, worker_executor):
    first = worker_action(client, ["write", "out/result.txt", "hello"], output_paths=["out/result.txt"],
                          extra_files={"only-first.txt": b"1"})
    response, _, stderr = run(client, first)
    assert response.result.exit_code == 0, stderr
    [output] = response.result.output_files
    assert output.path == "out/result.txt" and client.stream_read(output.digest) == b"hello"
    # The next request of the same worker works in a fresh exec root: the first one's extra
    # input and its output are gone.
    response, _, stderr = run(client, worker_action(client, ["read", "only-first.txt"]))
    assert response.result.exit_code != 0 and "No such file" in stderr
    response, _, stderr = run(client, worker_action(client, ["read", "out/result.txt"]))
    assert response.result.exit_code != 0 and "No such file" in stderr
    assert len({served_by(run(client, worker_action(client, ["echo"]))[2])[0] for _ in range(2)}) == 1


def test_results_are_cached_like_any_action(client, worker_executor):
    action = worker_action(client, ["echo", "cached"])
    response, _ = execute(client, action)
    assert response.result.exit_code == 0 and not response.cached_result
    again, _ = execute(client, action)
    assert again.cached_result and again.result == response.result


def test_different_keys_get_different_processes(client, worker_executor):
    a = served_by(run(client, worker_action(client, ["echo"], key="key-a"))[2])[0]
    b = served_by(run(client, worker_action(client, ["echo"], key="key-b"))[2])[0]
    assert a != b
    assert served_by(run(client, worker_action(client, ["echo"], key="key-a", salt=b"x"))[2])[0] == a


def test_pants_style_actions_derive_the_key_from_the_tool(client, worker_executor):
    """No key, nothing marked (what Pants can send): the key comes from the start-up command,
    the environment and the digests of the files it names; a changed tool gets a new worker."""
    common = dict(key=None, mark_tool=False)
    first = served_by(run(client, worker_action(client, ["echo"], **common))[2])
    second = served_by(run(client, worker_action(client, ["echo", "again"], **common))[2])
    assert first[0] == second[0] and second[1] == first[1] + 1
    changed = served_by(run(client, worker_action(client, ["echo"], startup=["--tag=v2"], **common))[2])
    assert changed[0] != first[0]


def test_multiplex_worker_serves_concurrent_requests_in_sandboxes(client, worker_executor):
    actions = [
        worker_action(client, ["write", "out.txt", f"r{i}"], multiplex=True, key="mx", output_paths=["out.txt"])
        for i in range(2)
    ]
    for action, i in zip(actions, range(2)):
        response, _, stderr = run(client, action)
        assert response.result.exit_code == 0, stderr
        assert client.stream_read(response.result.output_files[0].digest) == f"r{i}".encode()
    sleepers = [worker_action(client, ["sleep", "1.5"], multiplex=True, key="mx", salt=bytes([i])) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: run(client, a), sleepers))
    pids = {served_by(stderr)[0] for _, _, stderr in results}
    assert len(pids) == 1
    metas = [r.result.execution_metadata for r, _, _ in results]
    starts = [m.execution_start_timestamp.ToNanoseconds() for m in metas]
    ends = [m.execution_completed_timestamp.ToNanoseconds() for m in metas]
    assert max(starts) < min(ends), "the two requests did not overlap in the one worker"


def test_a_tool_without_worker_mode_runs_one_shot_and_says_so(client, worker_executor):
    response, _, stderr = run(client, worker_action(client, ["echo", "x"], startup=["--no-worker-mode"]))
    assert response.status.code == 0 and response.result.exit_code == 0
    assert "persistent worker" in stderr and "ran one-shot" in stderr
    assert "unknown flag --persistent_worker" in stderr  # the worker's own words, quoted
    assert served_by(stderr)[0] == "one-shot"


def test_a_crashing_worker_is_replaced_and_the_action_still_answered(client, worker_executor):
    before = served_by(run(client, worker_action(client, ["echo"]))[2])[0]
    response, _, stderr = run(client, worker_action(client, ["crash"]))
    # Retried one-shot, where the sample tool crashes too: the action reports that exit.
    assert response.status.code == 0 and response.result.exit_code == 3
    assert f"(pid {before}) failed: it closed its stdout" in stderr and "crashing as asked" in stderr
    after = served_by(run(client, worker_action(client, ["echo"]))[2])[0]
    assert after != before


def test_garbage_on_stdout_replaces_the_worker(client, worker_executor):
    before = served_by(run(client, worker_action(client, ["echo"]))[2])[0]
    response, _, stderr = run(client, worker_action(client, ["garbage"], protocol="proto"))
    assert response.status.code == 0
    assert "failed: it wrote something that is not a WorkResponse" in stderr
    assert served_by(run(client, worker_action(client, ["echo"]))[2])[0] != before


def test_garbage_in_json_replaces_the_worker(client, worker_executor):
    response, _, stderr = run(client, worker_action(client, ["garbage"], protocol="json", key="j"))
    assert response.status.code == 0
    assert "not a JSON WorkResponse" in stderr


def test_a_worker_that_never_answers_times_out_and_is_replaced(client, worker_executor):
    before = served_by(run(client, worker_action(client, ["echo"]))[2])[0]
    response, _, _ = run(client, worker_action(client, ["hang"], timeout_seconds=2))
    assert response.status.code == code_pb2.DEADLINE_EXCEEDED
    assert served_by(run(client, worker_action(client, ["echo"]))[2])[0] != before


@pytest.mark.parametrize("worker_executor", [WorkerSettings(rss_limit_bytes=150 << 20)], indirect=True)
def test_a_worker_over_its_rss_limit_is_restarted(client, worker_executor):
    before, _ = served_by(run(client, worker_action(client, ["alloc", "20"]))[2])
    assert served_by(run(client, worker_action(client, ["echo"]))[2])[0] == before
    response, _, stderr = run(client, worker_action(client, ["alloc", "200"]))
    assert response.result.exit_code == 0 and "holds 220 MiB" in stderr
    # Over the limit after that request: the next one gets a fresh process.
    assert served_by(run(client, worker_action(client, ["echo"]))[2])[0] != before


def _cancel_while_running(client, bridge, action) -> re_pb2.ExecuteResponse:
    stream = client.execution.Execute(
        re_pb2.ExecuteRequest(instance_name="", action_digest=action, skip_cache_lookup=True)
    )
    first = next(stream)
    assert wait_until(lambda: bridge.scheduler.snapshot()["executing"] == 1, timeout=30)
    time.sleep(0.5)  # the request reached the worker
    client.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=first.name))
    last = first
    for op in stream:
        last = op
    assert last.done
    response = re_pb2.ExecuteResponse()
    last.response.Unpack(response)
    return response


def test_cancelling_a_singleplex_request_kills_the_worker(client, worker_executor, bridge):
    before = served_by(run(client, worker_action(client, ["echo"]))[2])[0]
    response = _cancel_while_running(client, bridge, worker_action(client, ["sleep", "60"]))
    assert response.status.code == code_pb2.CANCELLED
    assert served_by(run(client, worker_action(client, ["echo"]))[2])[0] != before


def test_cancelling_a_multiplex_request_keeps_the_worker(client, worker_executor, bridge):
    before = served_by(run(client, worker_action(client, ["echo"], multiplex=True, key="mx"))[2])[0]
    response = _cancel_while_running(client, bridge, worker_action(client, ["sleep", "60"], multiplex=True, key="mx"))
    assert response.status.code == code_pb2.CANCELLED
    assert served_by(run(client, worker_action(client, ["echo"], multiplex=True, key="mx"))[2])[0] == before


@pytest.mark.parametrize("worker_executor", [WorkerSettings(max_per_key=1)], indirect=True)
def test_a_busy_key_at_its_cap_runs_one_shot(client, worker_executor):
    actions = [worker_action(client, ["sleep", "1.5"], salt=bytes([i])) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: run(client, a), actions))
    kinds = sorted(served_by(stderr)[0] == "one-shot" for _, _, stderr in results)
    assert kinds == [False, True]
    one_shot = next(stderr for _, _, stderr in results if "pid=one-shot" in stderr)
    assert "is busy and the pool is at its caps" in one_shot


@pytest.mark.parametrize("worker_executor", [WorkerSettings(idle_timeout_seconds=1)], indirect=True)
def test_idle_workers_are_stopped(client, worker_executor):
    run(client, worker_action(client, ["echo"]))
    assert worker_executor.pool.rows()
    assert wait_until(lambda: not worker_executor.pool.rows(), timeout=30)


@pytest.mark.parametrize("worker_executor", [WorkerSettings(enabled=False)], indirect=True)
def test_no_workers_runs_every_action_one_shot(client, worker_executor):
    response, _, stderr = run(client, worker_action(client, ["echo"]))
    assert response.result.exit_code == 0 and served_by(stderr)[0] == "one-shot"
    assert "persistent worker" not in stderr


def test_response_files_without_worker_hints_run_one_shot(client, worker_executor):
    action = make_action(
        client, ["/bin/sh", "-c", 'cat "${0#@}"', "@list.txt"], files={"list.txt": b"plain\n"}, platform=X86
    )
    response, stdout, _ = run(client, action)
    assert response.result.exit_code == 0 and stdout == "plain\n"
    assert not worker_executor.pool.rows()


def test_a_malformed_protocol_hint_is_invalid_argument(client, worker_executor):
    with pytest.raises(grpc.RpcError) as info:
        run(client, worker_action(client, ["echo"], protocol="xml"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "persistentWorkerProtocol='xml'" in info.value.details()


def test_status_lists_workers(client, worker_executor, bridge):
    run(client, worker_action(client, ["echo"], key="status-key"))
    run(client, worker_action(client, ["echo"], key="status-key", salt=b"2"))

    def rows():
        report = StatusInstance(bridge.cas, bridge.action_cache, bridge.scheduler, bridge.instances).report()
        return [w for e in report.executors for w in e.workers]

    # Slots report their executor's workers at their next check-in.
    assert wait_until(lambda: any(w.key == "status-key" and w.requests == 2 for w in rows()), timeout=30), rows()
    row = next(w for w in rows() if w.key == "status-key")
    assert row.protocol == "proto" and row.pid > 0 and row.rss_bytes > 0 and row.busy == 0


def test_kill_9_of_a_worker_mid_request_runs_the_action_one_shot(client, worker_executor):
    import os
    import signal

    before = int(served_by(run(client, worker_action(client, ["echo"]))[2])[0])
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(run, client, worker_action(client, ["sleep", "2"]))
        assert wait_until(lambda: any(r.busy for r in worker_executor.pool.rows()), timeout=30)
        os.kill(before, signal.SIGKILL)
        response, _, stderr = pending.result(timeout=120)
    assert response.status.code == 0 and response.result.exit_code == 0
    assert f"(pid {before}) failed" in stderr and "pid=one-shot" in stderr and "slept" in stderr
    assert int(served_by(run(client, worker_action(client, ["echo"]))[2])[0]) != before


def test_flag_files_expand_nested_files_and_pass_escapes_to_the_worker(client, worker_executor):
    """Bazel's rule: a line `@OTHER` is replaced by OTHER's lines; `@@x` reaches the worker as
    it is, and the worker unescapes it (the sample worker prints `@x`)."""
    action = worker_action(
        client, ["echo", "first", "@args/more.flags", "@@literal"], extra_files={"args/more.flags": b"second\nthird\n"}
    )
    response, _, stderr = run(client, action)
    assert response.result.exit_code == 0, stderr
    assert "args=first second third @literal" in stderr
    assert served_by(stderr)[0] != "one-shot"


def test_a_flag_file_outside_the_input_root_is_never_read(client, worker_executor):
    """`@../../../etc/hostname` (or a symlink out of the root) would have the executor read its
    own files into the request: refused, and the action runs one-shot, saying why."""
    action = worker_action(client, ["echo", "@../../../../../../../../etc/hostname"])
    response, _, stderr = run(client, action)
    assert "flag file" in stderr and "outside the action's input root" in stderr
    assert served_by(stderr)[0] == "one-shot"


def test_a_missing_flag_file_runs_one_shot_and_says_so(client, worker_executor):
    """A nested `@FILE` that is not in the input root: the executor cannot build the request,
    so the action runs one-shot (where the tool reports it as it would), nothing is lost."""
    response, _, stderr = run(client, worker_action(client, ["echo", "@args/absent.flags"]))
    assert response.status.code == 0
    assert "the flag file args/request.flags could not be read" in stderr and "ran one-shot" in stderr
    assert served_by(stderr)[0] == "one-shot"
