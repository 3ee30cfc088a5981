"""An executor (in this process) serving a bridge (in this process) over real gRPC."""

import os

import pytest

from reapi_bridge.config import BridgeConfig, ExecutionConfig, ServerConfig
from reapi_bridge.executor.main import Executor, ExecutorOptions
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.testing import running_executor, traversable_temp_dir, client_for, execute, make_action, running_bridge

X86 = {"OSFamily": "linux", "ISA": "x86-64"}


@pytest.fixture
def bridge(tmp_path):
    config = BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=32),
        execution=ExecutionConfig(lease_timeout_seconds=5, unmatched_grace_seconds=2),
    )
    with running_bridge(config) as b:
        yield b


@pytest.fixture
def open_dir():
    with traversable_temp_dir() as d:
        yield d


@pytest.fixture
def executor(bridge, open_dir):
    with running_executor(f"127.0.0.1:{bridge.port}", open_dir) as ex:
        yield ex


@pytest.fixture
def client(bridge):
    with client_for(f"127.0.0.1:{bridge.port}") as c:
        yield c


def test_runs_action_and_caches_result(client, executor, bridge):
    action = make_action(
        client,
        ["/bin/sh", "-c", 'cat in/data.txt > out/copy.txt; echo "$GREETING from $(pwd)"; uname -m; mkdir -p outdir/sub; echo x > outdir/sub/f'],
        files={"in/data.txt": b"payload\n"},
        env={"GREETING": "hello", "PATH": "/usr/bin:/bin", "WHERE": "{chroot}/in"},
        output_paths=["out/copy.txt", "outdir"],
        platform=X86,
    )
    response, stages = execute(client, action)
    assert response.status.code == 0, response.status.message
    result = response.result
    assert result.exit_code == 0
    stdout = client.stream_read(result.stdout_digest).decode()
    assert "hello from " in stdout and "x86_64" in stdout
    assert result.execution_metadata.worker.startswith("test-x86")
    assert [f.path for f in result.output_files] == ["out/copy.txt"]
    assert client.stream_read(result.output_files[0].digest) == b"payload\n"
    assert [d.path for d in result.output_directories] == ["outdir"]
    assert re_pb2.ExecutionStage.COMPLETED == stages[-1]
    again, _ = execute(client, action)
    assert again.cached_result and again.result == result


def test_chroot_marker_is_replaced(client, executor):
    action = make_action(
        client,
        ["/bin/sh", "-c", 'test -f "$DATA" && echo "{chroot}" | grep -v "{"'],
        files={"d.txt": b"1"},
        env={"DATA": "{chroot}/d.txt"},
        platform=X86,
    )
    response, _ = execute(client, action)
    assert response.result.exit_code == 0, client.stream_read(response.result.stderr_digest)


def test_timeout_is_deadline_exceeded(client, executor):
    action = make_action(client, ["/bin/sleep", "30"], platform=X86, timeout_seconds=1)
    response, _ = execute(client, action)
    assert response.status.code == 4  # DEADLINE_EXCEEDED


def test_missing_input_is_precondition_failure(client, executor):
    from google.rpc import error_details_pb2

    action = re_pb2.Action(
        command_digest=re_pb2.Digest(hash="a" * 64, size_bytes=10),
        input_root_digest=client.upload(re_pb2.Directory().SerializeToString()),
    )
    digest = client.upload(action.SerializeToString())
    response, _ = execute(client, digest)
    assert response.status.code == 9
    failure = error_details_pb2.PreconditionFailure()
    assert response.status.details[0].Unpack(failure)
    assert [(v.type, v.subject) for v in failure.violations] == [("MISSING", f"blobs/{'a' * 64}/10")]


def test_unmatchable_platform_fails_fast(client, executor):
    action = make_action(client, ["/bin/true"], platform={"OSFamily": "linux", "ISA": "riscv64"})
    response, _ = execute(client, action)
    assert response.status.code == 9
    assert "ISA=riscv64" in response.status.message


def test_action_cannot_corrupt_cached_inputs(client, executor, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the unprivileged action user is only used when the executor runs as root")
    files = {"tool/data.txt": b"original\n"}
    attack = make_action(
        client,
        ["/bin/sh", "-c", "echo corrupted > tool/data.txt; echo corrupted >> tool/data.txt; cat tool/data.txt"],
        files=files,
        platform=X86,
    )
    execute(client, attack)
    check = make_action(client, ["/bin/cat", "tool/data.txt"], files=files, platform=X86, salt=b"2")
    response, _ = execute(client, check)
    assert client.stream_read(response.result.stdout_digest) == b"original\n"


@pytest.fixture
def arm64_executor(bridge, open_dir):
    ex = Executor(
        ExecutorOptions(
            bridge=f"127.0.0.1:{bridge.port}",
            isa="arm-a64",
            work_dir=open_dir / "executor-arm64",
            append_only_caches=open_dir / "named-caches",
            rootfs=open_dir / "rootfs",
            name="test-arm64",
        )
    )
    ex.start()
    yield ex
    ex.stop()


def test_arm64_executor_runs_in_aarch64_userland(client, executor, arm64_executor):
    arm = {"OSFamily": "linux", "ISA": "arm-a64"}
    action = make_action(
        client,
        ["/bin/sh", "-c", "uname -m; cat in.txt; echo made > out.txt"],
        files={"in.txt": b"input on arm\n"},
        env={"PATH": "/bin:/usr/bin"},
        output_paths=["out.txt"],
        platform=arm,
    )
    response, _ = execute(client, action)
    result = response.result
    assert result.exit_code == 0, client.stream_read(result.stderr_digest)
    assert client.stream_read(result.stdout_digest) == b"aarch64\ninput on arm\n"
    assert result.execution_metadata.worker.startswith("test-arm64")
    assert client.stream_read(result.output_files[0].digest) == b"made\n"
    # The same command for x86-64 is another action, run by the other executor.
    x86 = make_action(client, ["/bin/sh", "-c", "uname -m"], env={"PATH": "/bin:/usr/bin"}, platform=X86)
    response, _ = execute(client, x86)
    assert client.stream_read(response.result.stdout_digest) == b"x86_64\n"
    assert response.result.execution_metadata.worker.startswith("test-x86")


def test_arm64_exit_status_is_the_commands_not_a_leftover_childs(client, arm64_executor):
    """proot reports whichever process ends last; the executor must report the command's."""
    action = make_action(
        client,
        ["/bin/sh", "-c", "(sleep 1; exit 7) & exit 5"],
        env={"PATH": "/bin:/usr/bin"},
        platform={"OSFamily": "linux", "ISA": "arm-a64"},
    )
    response, _ = execute(client, action)
    assert response.result.exit_code == 5
