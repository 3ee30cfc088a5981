"""Execute, WaitExecution and the Operations service through a real bridge and a real x86-64
executor, both in this process, over loopback gRPC."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from reapi_bridge.config import BridgeConfig, ExecutionConfig, ServerConfig
from reapi_bridge.executor.main import Executor
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge_testing.bridge import running_executor, traversable_temp_dir, client_for, execute, make_action, running_bridge, wait_until

X86 = {"OSFamily": "linux", "ISA": "x86-64"}
PATH = {"PATH": "/usr/bin:/bin"}
METADATA_KEY = "build.bazel.remote.execution.v2.requestmetadata-bin"
MAX_TIMEOUT_SECONDS = 120
# Deadlines that only keep a broken test from hanging.
RPC_DEADLINE = 120
ABANDONED_GRACE_SECONDS = 1


@pytest.fixture
def bridge_config(tmp_path):
    return BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=32),
        execution=ExecutionConfig(
            lease_timeout_seconds=5,
            unmatched_grace_seconds=2,
            max_timeout_seconds=MAX_TIMEOUT_SECONDS,
            abandoned_grace_seconds=ABANDONED_GRACE_SECONDS,
        ),
    )


def actions_run(executor: Executor) -> int:
    return sum(slot.actions_run for slot in executor.slots)


def request_metadata(invocation_id: str):
    return [(METADATA_KEY, re_pb2.RequestMetadata(tool_invocation_id=invocation_id).SerializeToString())]


def response_of(op: operations_pb2.Operation) -> re_pb2.ExecuteResponse:
    response = re_pb2.ExecuteResponse()
    assert op.response.Unpack(response)
    return response


def stage_of(op: operations_pb2.Operation) -> int:
    meta = re_pb2.ExecuteOperationMetadata()
    assert op.metadata.Unpack(meta)
    return meta.stage


class Gate:
    """An action that runs until the test opens its gate (a file the action polls for)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"gate-{uuid.uuid4().hex}"

    def argv(self, output: str = "ran") -> List[str]:
        return ["/bin/sh", "-c", f"while [ ! -e {self.path} ]; do sleep 0.05; done; echo {output}"]

    def open(self) -> None:
        self.path.touch()
        self.path.chmod(0o644)


@pytest.fixture
def gate(open_dir, executor):
    """Opened at teardown at the latest (before the executor stops), so a failing test never
    leaves an action waiting."""
    g = Gate(open_dir)
    yield g
    g.open()


def sleepers_under(directory: Path) -> List[int]:
    """Pids of `/bin/sleep 30` processes whose working directory is under `directory`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() != b"/bin/sleep\x0030\x00":
                continue
            if os.readlink(entry / "cwd").startswith(str(directory)):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_wait_execution_streams_a_running_operation_to_completion(client, executor, gate):
    action = make_action(client, gate.argv("waited"), env=PATH, platform=X86)
    stub = re_grpc.ExecutionStub(client.channel)
    call = stub.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=RPC_DEADLINE)
    first = next(call)
    assert not first.done and first.name.startswith("operations/")
    call.cancel()  # the client goes away; the operation carries on

    waiting = stub.WaitExecution(re_pb2.WaitExecutionRequest(name=first.name), timeout=RPC_DEADLINE)
    op = next(waiting)
    assert op.name == first.name and not op.done
    gate.open()
    ops = [op, *waiting]
    last = ops[-1]
    assert last.done and last.name == first.name
    assert [op.done for op in ops[:-1]] == [False] * (len(ops) - 1)
    assert stage_of(last) == re_pb2.ExecutionStage.COMPLETED
    response = response_of(last)
    assert response.status.code == 0, response.status.message
    assert not response.cached_result
    assert client.stream_read(response.result.stdout_digest) == b"waited\n"

    # Within retention, the finished operation can still be fetched.
    operations = operations_pb2_grpc.OperationsStub(client.channel)
    got = operations.GetOperation(operations_pb2.GetOperationRequest(name=first.name), timeout=RPC_DEADLINE)
    assert got.done and got.name == first.name
    assert response_of(got) == response
    # And waiting on it again answers at once with the finished operation.
    again = list(stub.WaitExecution(re_pb2.WaitExecutionRequest(name=first.name), timeout=RPC_DEADLINE))
    assert len(again) == 1 and again[0].done and response_of(again[0]) == response


def test_unknown_operation_is_not_found(client):
    name = f"operations/{uuid.uuid4()}"
    operations = operations_pb2_grpc.OperationsStub(client.channel)
    with pytest.raises(grpc.RpcError) as e:
        operations.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_DEADLINE)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert name in e.value.details()
    stub = re_grpc.ExecutionStub(client.channel)
    with pytest.raises(grpc.RpcError) as e:
        list(stub.WaitExecution(re_pb2.WaitExecutionRequest(name=name), timeout=RPC_DEADLINE))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        operations.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=RPC_DEADLINE)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancel_operation_stops_a_running_action(client, executor, open_dir):
    action = make_action(client, ["/bin/sleep", "30"], platform=X86)
    stub = re_grpc.ExecutionStub(client.channel)
    call = stub.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=RPC_DEADLINE)
    name = next(call).name
    assert wait_until(lambda: sleepers_under(open_dir), timeout=60), "the action never started"
    started = time.monotonic()
    operations = operations_pb2_grpc.OperationsStub(client.channel)
    operations.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=RPC_DEADLINE)
    ops = list(call)
    elapsed = time.monotonic() - started
    last = ops[-1]
    assert last.done and last.name == name
    response = response_of(last)
    assert response.status.code == 1, response.status.message  # CANCELLED
    # Well before the 30 s the process would have taken on its own: it was killed.
    assert elapsed < 25, f"the Execute stream ended {elapsed:.1f}s after the cancel"
    assert response.result.exit_code == -9  # SIGKILL
    assert sleepers_under(open_dir) == []
    assert actions_run(executor) == 1
    assert not response.cached_result
    with pytest.raises(grpc.RpcError) as e:  # a cancelled run is not cached
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action), timeout=RPC_DEADLINE)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_action_whose_client_went_away_is_cancelled(client, executor, open_dir):
    """What Pants 2.17 does: Execute(skip_cache_lookup) raced against its own cache read, the
    stream dropped when the cache answers. The action must not keep an executor slot."""
    action = make_action(client, ["/bin/sleep", "30"], platform=X86)
    stub = re_grpc.ExecutionStub(client.channel)
    call = stub.Execute(re_pb2.ExecuteRequest(action_digest=action, skip_cache_lookup=True), timeout=RPC_DEADLINE)
    name = next(call).name
    assert wait_until(lambda: sleepers_under(open_dir), timeout=60), "the action never started"
    call.cancel()
    operations = operations_pb2_grpc.OperationsStub(client.channel)

    def finished():
        return operations.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=RPC_DEADLINE)

    assert wait_until(lambda: finished().done, timeout=60), "the abandoned action was never cancelled"
    response = response_of(finished())
    assert response.status.code == 1, response.status.message  # CANCELLED
    assert response.result.exit_code == -9  # killed on the executor, not left to finish
    assert wait_until(lambda: not sleepers_under(open_dir), timeout=30), "the process was not killed"


def test_a_client_that_reconnects_within_the_grace_keeps_its_action(client, executor):
    action = make_action(client, ["/bin/sh", "-c", f"sleep {ABANDONED_GRACE_SECONDS * 3}; echo done"], platform=X86)
    stub = re_grpc.ExecutionStub(client.channel)
    call = stub.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=RPC_DEADLINE)
    name = next(call).name
    call.cancel()
    ops = list(stub.WaitExecution(re_pb2.WaitExecutionRequest(name=name), timeout=RPC_DEADLINE))
    response = response_of(ops[-1])
    assert ops[-1].done and response.status.code == 0, response.status.message
    assert response.result.exit_code == 0
    assert client.stream_read(response.result.stdout_digest) == b"done\n"


def test_identical_concurrent_actions_from_two_clients_run_once(address, executor, gate):
    names: Dict[str, str] = {}
    finals: Dict[str, operations_pb2.Operation] = {}
    errors: List[BaseException] = []
    with client_for(address) as first, client_for(address) as second:
        action = make_action(first, gate.argv("shared"), env=PATH, platform=X86)

        def run(label, client):
            try:
                stub = re_grpc.ExecutionStub(client.channel)
                for op in stub.Execute(
                    re_pb2.ExecuteRequest(action_digest=action),
                    metadata=request_metadata(f"build-{label}"),
                    timeout=RPC_DEADLINE,
                ):
                    names.setdefault(label, op.name)
                    finals[label] = op
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=("a", first), daemon=True),
            threading.Thread(target=run, args=("b", second), daemon=True),
        ]
        for t in threads:
            t.start()
        assert wait_until(lambda: len(names) == 2 or errors, timeout=60)
        assert not errors, errors
        # Both submitted before either could finish (the gate is still shut): one operation.
        assert names["a"] == names["b"]
        gate.open()
        for t in threads:
            t.join(RPC_DEADLINE)
        assert not errors, errors
    a, b = response_of(finals["a"]), response_of(finals["b"])
    assert finals["a"].done and finals["b"].done
    assert a.status.code == 0 and a.result.exit_code == 0
    assert a == b
    assert a.result.execution_metadata.worker_start_timestamp == b.result.execution_metadata.worker_start_timestamp
    assert actions_run(executor) == 1


def test_skip_cache_lookup_runs_a_cached_action_again(client, executor):
    action = make_action(client, ["/bin/sh", "-c", "echo again"], env=PATH, platform=X86)
    first, _ = execute(client, action)
    assert first.status.code == 0 and not first.cached_result
    assert actions_run(executor) == 1
    cached, stages = execute(client, action)
    assert cached.cached_result and cached.result == first.result
    assert actions_run(executor) == 1
    rerun, _ = execute(client, action, skip_cache_lookup=True)
    assert not rerun.cached_result and rerun.status.code == 0
    assert actions_run(executor) == 2
    assert (
        rerun.result.execution_metadata.worker_start_timestamp
        != first.result.execution_metadata.worker_start_timestamp
    )


def test_action_timeout_over_the_maximum_is_invalid_argument(client):
    action = make_action(client, ["/bin/true"], platform=X86, timeout_seconds=MAX_TIMEOUT_SECONDS + 1)
    stub = re_grpc.ExecutionStub(client.channel)
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=RPC_DEADLINE))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{MAX_TIMEOUT_SECONDS}s" in e.value.details()


def test_request_metadata_names_the_client(client, executor, bridge):
    action = make_action(client, ["/bin/sh", "-c", "echo meta"], env=PATH, platform=X86)
    stub = re_grpc.ExecutionStub(client.channel)
    ops = list(
        stub.Execute(
            re_pb2.ExecuteRequest(action_digest=action),
            metadata=request_metadata("pants-run-1234"),
            timeout=RPC_DEADLINE,
        )
    )
    assert ops[-1].done and response_of(ops[-1]).status.code == 0
    job = bridge.scheduler.job(ops[-1].name)
    assert job is not None and job.client == "pants-run-1234"

    # Unparseable metadata is ignored: the peer address stands in for the client.
    other = make_action(client, ["/bin/sh", "-c", "echo meta"], env=PATH, platform=X86, salt=b"2")
    ops = list(
        stub.Execute(
            re_pb2.ExecuteRequest(action_digest=other),
            metadata=[(METADATA_KEY, b"\xff\xff not a proto")],
            timeout=RPC_DEADLINE,
        )
    )
    assert ops[-1].done and response_of(ops[-1]).status.code == 0
    job = bridge.scheduler.job(ops[-1].name)
    assert job is not None and job.client and job.client != "pants-run-1234"
