"""An executor (in this process) serving a bridge (in this process) over real gRPC."""

import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reapi_bridge.config import BridgeConfig, ExecutionConfig, ServerConfig
from reapi_bridge.executor.main import Executor, ExecutorOptions, ExecutorSetupError
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing.bridge import (
    client_for,
    execute,
    make_action,
    running_bridge,
    running_executor,
    traversable_temp_dir,
    wait_until,
)

X86 = {"OSFamily": "linux", "ISA": "x86-64"}


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


def test_two_slots_of_one_executor_run_two_actions_at_once(client, executor, bridge):
    """The scheduler hands concurrent jobs to different free slots of one executor; the
    executor's own timestamps show the two processes overlapping."""
    slots = lambda: {e["id"] for e in bridge.scheduler.snapshot()["executors"]}  # noqa: E731
    assert wait_until(lambda: slots() == {"test-x86/0", "test-x86/1"}, timeout=30), slots()
    actions = [make_action(client, ["/bin/sleep", "1"], platform=X86, salt=bytes([i])) for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda a: execute(client, a)[0], actions))
    assert [(r.status.code, r.result.exit_code) for r in responses] == [(0, 0), (0, 0)]
    metas = [r.result.execution_metadata for r in responses]
    assert sorted(m.worker for m in metas) == ["test-x86/0", "test-x86/1"]
    for start, end in (("worker_start_timestamp", "worker_completed_timestamp"),
                       ("execution_start_timestamp", "execution_completed_timestamp")):
        starts = [getattr(m, start).ToNanoseconds() for m in metas]
        ends = [getattr(m, end).ToNanoseconds() for m in metas]
        assert max(starts) < min(ends), f"{start}..{end} intervals do not overlap: {starts} {ends}"


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


def started_arm64_executor(bridge, work: Path, **options) -> Executor:
    ex = Executor(
        ExecutorOptions(
            bridge=f"127.0.0.1:{bridge.port}",
            isa="arm-a64",
            work_dir=work / "executor-arm64",
            rootfs=work / "rootfs",
            name="test-arm64",
            **options,
        )
    )
    ex.start()
    return ex


@pytest.fixture
def arm64_executor(bridge, open_dir):
    ex = started_arm64_executor(bridge, open_dir, append_only_caches=open_dir / "named-caches")
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


@pytest.fixture
def arm64_executor_outside_tmp(bridge):
    """Work dir outside /tmp, which the emulated userland shows anyway (as its /tmp)."""
    work = Path(tempfile.mkdtemp(prefix="crossbuild-test-", dir="/var/tmp"))
    work.chmod(0o755)
    ex = started_arm64_executor(bridge, work)
    yield ex
    ex.stop()
    shutil.rmtree(work, ignore_errors=True)


def test_arm64_action_reads_an_input_directory_shared_from_the_cache(client, arm64_executor_outside_tmp):
    """A directory of 256 files or more is one symlink into the input cache: the emulated
    userland must see the cache at the same path."""
    files = {f"tool/f{i:03d}": f"file {i}\n".encode() for i in range(300)}
    action = make_action(
        client,
        ["/bin/sh", "-c", "cat tool/f007 && ls tool | wc -l"],
        files=files,
        env={"PATH": "/bin:/usr/bin"},
        platform={"OSFamily": "linux", "ISA": "arm-a64"},
    )
    response, _ = execute(client, action)
    result = response.result
    assert result.exit_code == 0, client.stream_read(result.stderr_digest)
    assert client.stream_read(result.stdout_digest).split() == [b"file", b"7", b"300"]


def test_append_only_caches_the_action_user_cannot_reach_are_refused(bridge, open_dir):
    if os.geteuid() != 0:
        pytest.skip("the unprivileged action user is only used when the executor runs as root")
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    with pytest.raises(ExecutorSetupError, match=re.escape(f"{private} is not searchable by 'nobody'")):
        Executor(
            ExecutorOptions(
                bridge=f"127.0.0.1:{bridge.port}",
                isa="x86-64",
                work_dir=open_dir / "work",
                append_only_caches=private / "caches",
            )
        )
    # The work dir's lock was let go: a corrected executor can start there.
    Executor(ExecutorOptions(bridge=f"127.0.0.1:{bridge.port}", isa="x86-64", work_dir=open_dir / "work",
                             append_only_caches=open_dir / "caches")).stop()
