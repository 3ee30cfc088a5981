"""Malformed input trees, escaping outputs and escaping results, end to end: a real bridge and
a real executor (in this process) over gRPC."""

import os
import threading

import grpc
import pytest
from google.rpc import code_pb2

from reapi_bridge.client.client import Client
from reapi_bridge.executor.action_runner import ActionRunner
from reapi_bridge.executor.inputs import InputMaterializer
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
from reapi_bridge_testing.bridge import execute, make_action, wait_until

X86 = {"OSFamily": "linux", "ISA": "x86-64"}
PATH = {"PATH": "/usr/bin:/bin"}


def upload_message(client, message) -> re_pb2.Digest:
    return client.upload(message.SerializeToString(deterministic=True))


def action_with_root(client, root: re_pb2.Digest, argv=("/bin/true",), output_paths=()) -> re_pb2.Digest:
    command = re_pb2.Command(arguments=list(argv), output_paths=list(output_paths))
    for k, v in sorted(X86.items()):
        command.platform.properties.add(name=k, value=v)
    return upload_message(client, re_pb2.Action(command_digest=upload_message(client, command), input_root_digest=root))


def execute_error(client, action: re_pb2.Digest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        list(client.execution.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=60))
    return e.value


def nothing_cached(client, bridge, action: re_pb2.Digest) -> bool:
    with pytest.raises(grpc.RpcError) as e:
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action), timeout=30)
    return e.value.code() == grpc.StatusCode.NOT_FOUND and bridge.action_cache.stats().entries == 0


def test_execute_with_a_dot_dot_name_is_invalid_argument_naming_it(client, bridge):
    dotdot = upload_message(client, re_pb2.Directory(files=[re_pb2.FileNode(name="x", digest=client.upload(b"x"))]))
    a = upload_message(client, re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="..", digest=dotdot)]))
    src = upload_message(client, re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="a", digest=a)]))
    root = upload_message(client, re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="src", digest=src)]))
    error = execute_error(client, action_with_root(client, root))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'src/a/..'" in error.details() and "'.' or '..'" in error.details()
    assert bridge.scheduler.snapshot()["completed"] == 0


def test_a_symlink_input_pointing_outside_the_root_is_refused(client, bridge):
    sub = upload_message(client, re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="passwd", target="../../etc/passwd")]))
    root = upload_message(client, re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="sub", digest=sub)]))
    error = execute_error(client, action_with_root(client, root))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'sub/passwd'" in error.details() and "leaves the root" in error.details()
    absolute = upload_message(client, re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="p", target="/etc/passwd")]))
    error = execute_error(client, action_with_root(client, absolute))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'p'" in error.details() and "absolute" in error.details()
    # One that climbs as far as it is deep is fine, and reaches the executor.
    ok = upload_message(client, re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="up", target="../sub")]))
    fine = upload_message(client, re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="d", digest=ok)]))
    # (No executor here: it is accepted and queued.)
    ops = client.execution.Execute(re_pb2.ExecuteRequest(action_digest=action_with_root(client, fine)), timeout=5)
    first = next(iter(ops))
    assert not first.done
    ops.cancel()


def test_an_escaping_command_is_refused_at_execute(client):
    action = make_action(client, ["/bin/true"], output_paths=["../../etc/cron.d/x"], platform=X86)
    error = execute_error(client, action)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'../../etc/cron.d/x'" in error.details()
    action = make_action(client, ["/bin/true"], working_directory="/tmp", platform=X86)
    error = execute_error(client, action)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "working_directory '/tmp'" in error.details()


def test_an_output_symlink_to_etc_passwd_is_refused_and_nothing_is_cached(client, executor, bridge):
    action = make_action(client, ["/bin/sh", "-c", "ln -s /etc/passwd out/link"], env=PATH, output_paths=["out/link"], platform=X86)
    response, _ = execute(client, action)
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert "'out/link'" in response.status.message and "/etc/passwd" in response.status.message
    assert not response.result.output_symlinks
    assert nothing_cached(client, bridge, action)


def test_an_output_under_a_symlink_out_of_the_root_is_refused(client, executor, bridge):
    action = make_action(
        client, ["/bin/sh", "-c", "rmdir out && ln -s /etc out"], env=PATH, output_paths=["out/passwd"], platform=X86
    )
    response, _ = execute(client, action)
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert "'out/passwd'" in response.status.message and "outside the action's input root" in response.status.message
    assert nothing_cached(client, bridge, action)


def test_a_symlink_inside_an_output_directory_that_escapes_is_refused(client, executor, bridge):
    action = make_action(
        client, ["/bin/sh", "-c", "mkdir -p d/e && ln -s ../../../x d/e/l"], env=PATH, output_paths=["d"], platform=X86
    )
    response, _ = execute(client, action)
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert "'d/e/l'" in response.status.message and "leaves the root" in response.status.message
    assert nothing_cached(client, bridge, action)
    # Symlinks that stay in the working directory are reported as they are.
    fine = make_action(
        client, ["/bin/sh", "-c", "mkdir -p d/e && ln -s ../../f d/e/l && touch f && ln -s d/e l"],
        env=PATH, output_paths=["d", "l"], platform=X86,
    )
    response, _ = execute(client, fine)
    assert response.status.code == 0, response.status.message
    assert [(s.path, s.target) for s in response.result.output_symlinks] == [("l", "d/e")]


def test_a_result_an_executor_reports_that_escapes_fails_the_action_and_is_not_cached(client, bridge):
    """An executor that does not check (or lies) is caught by the bridge."""
    action = make_action(client, ["/bin/true"], platform=X86, salt=b"rogue")
    stub = bots_pb2_grpc.BotsStub(client.channel)
    device = worker_pb2.Device(handle="rogue", properties=[worker_pb2.Device.Property(key=k, value=v) for k, v in sorted(X86.items())])
    session = stub.CreateBotSession(
        bots_pb2.CreateBotSessionRequest(bot_session=bots_pb2.BotSession(bot_id="rogue", worker=worker_pb2.Worker(devices=[device]))),
        timeout=30,
    )
    ops = client.execution.Execute(re_pb2.ExecuteRequest(action_digest=action), timeout=60)
    next(iter(ops))
    leases = []

    def offered():
        reply = stub.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=30)
        leases[:] = reply.leases
        return bool(leases)

    assert wait_until(offered, timeout=30)
    lease = bots_pb2.Lease(id=leases[0].id, state=bots_pb2.LeaseState.COMPLETED)
    lease.result.Pack(re_pb2.ActionResult(output_symlinks=[re_pb2.OutputSymlink(path="out", target="/etc/passwd")]))
    report = bots_pb2.BotSession()
    report.CopyFrom(session)
    report.leases.append(lease)
    stub.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=report), timeout=30)
    last = list(ops)[-1]
    assert last.done
    response = re_pb2.ExecuteResponse()
    last.response.Unpack(response)
    assert response.status.code == code_pb2.INVALID_ARGUMENT
    assert "the bridge refuses" in response.status.message and "output_symlinks 'out'" in response.status.message
    assert not response.HasField("result")
    assert nothing_cached(client, bridge, action)


@pytest.mark.parametrize(
    "result, named",
    [
        (re_pb2.ActionResult(output_files=[re_pb2.OutputFile(path="../../etc/passwd")]), "output_files '../../etc/passwd'"),
        (re_pb2.ActionResult(output_symlinks=[re_pb2.OutputSymlink(path="l", target="/etc/passwd")]), "output_symlinks 'l'"),
        (re_pb2.ActionResult(output_directories=[re_pb2.OutputDirectory(path="/abs")]), "output_directories '/abs'"),
    ],
)
def test_update_action_result_with_an_escaping_path_is_invalid_argument(client, bridge, result, named):
    action = client.upload(b"some action")
    with pytest.raises(grpc.RpcError) as e:
        client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=result), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in e.value.details()
    assert nothing_cached(client, bridge, action)


def test_update_action_result_checks_the_output_trees_it_has(client, bridge):
    bad_tree = re_pb2.Tree(root=re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="l", target="../../x")]))
    result = re_pb2.ActionResult(
        output_directories=[re_pb2.OutputDirectory(path="out", tree_digest=upload_message(client, bad_tree))]
    )
    action = client.upload(b"another action")
    with pytest.raises(grpc.RpcError) as e:
        client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=result), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'out/l'" in e.value.details()
    good = re_pb2.ActionResult(
        output_files=[re_pb2.OutputFile(path="out/f", digest=client.upload(b"f"))],
        output_symlinks=[re_pb2.OutputSymlink(path="out/l", target="f")],
    )
    client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=good), timeout=30)
    assert client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action), timeout=30) == good


def test_the_executor_itself_refuses_what_the_bridge_would(client, tmp_path):
    """Executors also serve other servers (BuildGrid): they check for themselves."""
    runner = ActionRunner(Client(client.channel), InputMaterializer(Client(client.channel), tmp_path / "cache"), tmp_path / "work", "t")
    escaping = upload_message(client, re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="l", target="../x")]))
    action = re_pb2.Action(
        command_digest=upload_message(client, re_pb2.Command(arguments=["/bin/true"])), input_root_digest=escaping
    )
    outcome = runner.run(action, threading.Event())
    assert outcome.status_code == code_pb2.INVALID_ARGUMENT
    assert "input root: 'l': symlink target '../x' leaves the root" in outcome.message
    assert os.listdir(tmp_path / "work") == []
    empty = upload_message(client, re_pb2.Directory())
    command = re_pb2.Command(arguments=["/bin/true"], output_files=["a/../../x"])
    action = re_pb2.Action(command_digest=upload_message(client, command), input_root_digest=empty)
    outcome = runner.run(action, threading.Event())
    assert outcome.status_code == code_pb2.INVALID_ARGUMENT and "output_files 'a/../../x'" in outcome.message
    assert os.listdir(tmp_path / "work") == []
