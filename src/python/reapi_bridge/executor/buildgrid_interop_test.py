"""Our executors (x86-64 and emulated arm-a64, in this process) serving BuildGrid 0.4.4.

PostgreSQL + BuildGrid come up through reapi_bridge_testing.buildgrid; the executors attach to
BuildGrid's Bots service and a client (reapi_bridge_testing.bridge) runs actions through BuildGrid's
Execution service, reading outputs back from BuildGrid's CAS.

The actions carry their platform on Command.platform only, as Pants sends them (make_action
does that). BuildGrid 0.4.4 reads Action.platform when the Action has one and falls back to
Command.platform otherwise (buildgrid/server/execution/instance.py, ExecutionInstance.execute),
so no Action.platform is needed; the ISA routing checks below (each action runs on the
executor of its ISA) prove that the fallback is what schedules them.

Skipped only when the BuildGrid venv is missing and CROSSBUILD_REQUIRE_BUILDGRID is unset; CI sets
that variable, so there a missing install fails instead of skipping. Install with
`.ci/install-buildgrid` (and `.ci/install-arm64-userland-deps` for the arm-a64 executor).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from reapi_bridge_testing.buildgrid import BuildGridServer, PostgresServer, buildgrid_availability
from reapi_bridge.executor.main import Executor, ExecutorOptions
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing import sh_worker
from reapi_bridge_testing.bridge import client_for, execute, make_action, wait_until

_BUILDGRID = buildgrid_availability("buildgrid_interop_test")
_VENV = _BUILDGRID.venv
pytestmark = pytest.mark.skipif(_BUILDGRID.skip, reason=_BUILDGRID.reason)

X86 = {"OSFamily": "linux", "ISA": "x86-64"}
ARM = {"OSFamily": "linux", "ISA": "arm-a64"}
WORKER_HINTS = ("persistentWorkerKey", "persistentWorkerProtocol", "persistentWorkerMultiplex")
PATH_ENV = {"PATH": "/bin:/usr/bin"}
X86_NAME = "bgi-x86"
ARM_NAME = "bgi-arm64"
# One Execute, end to end (the arm-a64 one runs under proot + qemu).
EXECUTE_TIMEOUT = 120.0


def _log(message: str) -> None:
    print(f"buildgrid_interop_test: {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def buildgrid(tmp_path_factory):
    with PostgresServer() as postgres:
        _log(f"PostgreSQL up on port {postgres.port} in {postgres.startup_seconds:.2f}s")
        work = tmp_path_factory.mktemp("buildgrid")
        # The persistent-worker hints are for executors only: BuildGrid must accept them as
        # wildcard keys (never matched), as our own scheduler ignores them.
        with BuildGridServer(postgres, work, venv=_VENV, wildcard_property_keys=WORKER_HINTS) as server:
            _log(
                f"BuildGrid up at {server.address} (instance {server.instance_name!r}, venv {server.venv}): "
                f"migrate {server.migrate_seconds:.2f}s, start {server.startup_seconds:.2f}s"
            )
            yield server


@pytest.fixture(scope="module")
def open_dir():
    """A directory every user can traverse: actions run as `nobody` when the executor is root,
    and pytest's tmp dirs are private to their owner."""
    d = Path(tempfile.mkdtemp(prefix="crossbuild-bgi-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_STOPPED: set = set()


def _stop_executor(executor: Executor) -> float:
    """Stops it once (Executor.stop is not idempotent); returns the seconds it took."""
    if id(executor) in _STOPPED:
        return 0.0
    _STOPPED.add(id(executor))
    started = time.monotonic()
    executor.stop()
    elapsed = time.monotonic() - started
    alive = [t.name for t in executor._threads if t.is_alive()]
    _log(f"executor {executor.name} stopped in {elapsed:.2f}s; threads alive: {alive}")
    return elapsed


def _start_executor(options: ExecutorOptions) -> Executor:
    started = time.monotonic()
    executor = Executor(options)
    executor.start()
    _log(f"executor {executor.name} ({options.isa}) set up in {time.monotonic() - started:.2f}s")
    return executor


@pytest.fixture(scope="module")
def executors(buildgrid, open_dir):
    """Both executors, attached to BuildGrid; torn down (and checked to stop) at the end."""
    x86 = arm = None
    try:
        x86 = _start_executor(
            ExecutorOptions(
                bridge=buildgrid.address,
                isa="x86-64",
                instance=buildgrid.instance_name,
                work_dir=open_dir / "executor-x86",
                append_only_caches=open_dir / "named-caches",
                concurrency=2,
                name=X86_NAME,
            )
        )
        arm = _start_executor(
            ExecutorOptions(
                bridge=buildgrid.address,
                isa="arm-a64",
                instance=buildgrid.instance_name,
                work_dir=open_dir / "executor-arm64",
                append_only_caches=open_dir / "named-caches",
                rootfs=open_dir / "rootfs",
                name=ARM_NAME,
            )
        )
        yield {"x86-64": x86, "arm-a64": arm}
    finally:
        for executor in (arm, x86):
            if executor is not None:
                _stop_executor(executor)


@pytest.fixture(scope="module")
def client(buildgrid):
    with client_for(buildgrid.address, instance=buildgrid.instance_name) as c:
        yield c


def _run(client, buildgrid, action_digest, *, what: str):
    """testing.execute with a time limit, so a lost lease fails with BuildGrid's log, not a hang."""
    started = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(execute, client, action_digest)
    try:
        response, stages = future.result(timeout=EXECUTE_TIMEOUT)
    except concurrent.futures.TimeoutError:
        pytest.fail(
            f"{what}: Execute did not finish within {EXECUTE_TIMEOUT}s; BuildGrid log tail:\n"
            + "\n".join(buildgrid.log_text().splitlines()[-80:])
        )
    finally:
        pool.shutdown(wait=False)
    elapsed = time.monotonic() - started
    _log(
        f"{what}: {elapsed:.2f}s, stages={[re_pb2.ExecutionStage.Value.Name(s) for s in stages]}, "
        f"cached={response.cached_result}, status={response.status.code}, "
        f"exit={response.result.exit_code}, worker={response.result.execution_metadata.worker!r}"
    )
    return response, stages


def _stderr(client, result) -> str:
    if result.stderr_raw:
        return result.stderr_raw.decode(errors="replace")
    if result.HasField("stderr_digest"):
        return client.stream_read(result.stderr_digest).decode(errors="replace")
    return ""


def _stdout(client, result) -> bytes:
    if result.stdout_raw:
        return result.stdout_raw
    if result.HasField("stdout_digest"):
        return client.stream_read(result.stdout_digest)
    return b""


def _command_platform_only(client, action_digest) -> None:
    """The Action as uploaded has no platform: BuildGrid must take it from the Command."""
    action = re_pb2.Action.FromString(client.stream_read(action_digest))
    assert not action.HasField("platform"), action
    command = re_pb2.Command.FromString(client.stream_read(action.command_digest))
    assert command.platform.properties, command


def test_a_persistent_worker_serves_buildgrid_actions_on_arm64(client, buildgrid, executors):
    """Bazel-style worker actions through BuildGrid reach the ARM64 executor's worker: one
    emulated worker process answers both, and nothing matched on the hints."""
    served = []
    for n in range(2):
        action = make_action(
            client,
            sh_worker.argv(),
            files={sh_worker.PATH_IN_INPUTS: sh_worker.SCRIPT.encode(), "args/request.flags": f"{uuid.uuid4()} {n}\n".encode()},
            platform={**ARM, "persistentWorkerKey": "interop-sh", "persistentWorkerProtocol": "json"},
        )
        response, _ = _run(client, buildgrid, action, what=f"worker action {n}")
        assert response.status.code == 0 and response.result.exit_code == 0, response
        served.append(_stderr(client, response.result))
    pids = {line.split()[0] for line in served}
    assert len(pids) == 1 and "pid=one-shot" not in pids, served
    assert all("arch=aarch64" in line for line in served), served


def test_executors_register_with_buildgrid(buildgrid, executors):
    """Every slot opens a bot session (visible in BuildGrid's log as its bot_id)."""
    bot_ids = [slot.bot_id for ex in executors.values() for slot in ex.slots]
    assert wait_until(lambda: all(b in buildgrid.log_text() for b in bot_ids), timeout=30), (
        bot_ids,
        "\n".join(buildgrid.log_text().splitlines()[-60:]),
    )


def test_x86_action_then_cache_hit(client, buildgrid, executors):
    salt = uuid.uuid4().hex.encode()
    action = make_action(
        client,
        ["/bin/sh", "-c", "uname -m; cat in.txt"],
        files={"in.txt": b"input on x86\n"},
        env=PATH_ENV,
        platform=X86,
        salt=salt,
    )
    _command_platform_only(client, action)
    response, stages = _run(client, buildgrid, action, what="x86-64 action")
    assert response.status.code == 0, response.status
    result = response.result
    assert result.exit_code == 0, _stderr(client, result)
    assert _stdout(client, result) == b"x86_64\ninput on x86\n"
    assert result.execution_metadata.worker.startswith(f"{X86_NAME}/"), result.execution_metadata
    assert not response.cached_result
    assert stages[-1] == re_pb2.ExecutionStage.COMPLETED

    again, _ = _run(client, buildgrid, action, what="x86-64 action, again")
    assert again.status.code == 0, again.status
    assert again.cached_result
    assert again.result.exit_code == 0
    assert again.result.stdout_digest == result.stdout_digest
    assert again.result.execution_metadata.worker == result.execution_metadata.worker
    assert _stdout(client, again.result) == b"x86_64\ninput on x86\n"


def test_arm64_action_and_output_round_trip(client, buildgrid, executors):
    salt = uuid.uuid4().hex.encode()
    action = make_action(
        client,
        ["/bin/sh", "-c", "uname -m; cat in.txt; echo made on $(uname -m) > out/made.txt"],
        files={"in.txt": b"input on arm\n"},
        env=PATH_ENV,
        output_paths=["out/made.txt"],
        platform=ARM,
        salt=salt,
    )
    _command_platform_only(client, action)
    response, _ = _run(client, buildgrid, action, what="arm-a64 action")
    assert response.status.code == 0, response.status
    result = response.result
    assert result.exit_code == 0, _stderr(client, result)
    assert _stdout(client, result) == b"aarch64\ninput on arm\n"
    assert result.execution_metadata.worker.startswith(f"{ARM_NAME}/"), result.execution_metadata
    assert [f.path for f in result.output_files] == ["out/made.txt"]
    # The output went executor -> BuildGrid's CAS -> this client, by ByteStream and by batch.
    digest = result.output_files[0].digest
    assert client.stream_read(digest) == b"made on aarch64\n"
    batch = client.cas.BatchReadBlobs(
        re_pb2.BatchReadBlobsRequest(instance_name=client.instance, digests=[digest]), timeout=10
    )
    assert [(r.status.code, r.data) for r in batch.responses] == [(0, b"made on aarch64\n")]


def test_nonzero_exit_is_reported(client, buildgrid, executors):
    action = make_action(
        client,
        ["/bin/sh", "-c", "echo about to fail >&2; exit 3"],
        env=PATH_ENV,
        platform=X86,
        salt=uuid.uuid4().hex.encode(),
    )
    response, _ = _run(client, buildgrid, action, what="exit-3 action")
    # A command that ran and failed is a successful execution with a non-zero exit code.
    assert response.status.code == 0, response.status
    assert response.result.exit_code == 3
    assert "about to fail" in _stderr(client, response.result)
    assert response.result.execution_metadata.worker.startswith(f"{X86_NAME}/")
    # The harness configures `cache-failed-actions: false`: it runs again rather than hit.
    again, _ = _run(client, buildgrid, action, what="exit-3 action, again")
    assert not again.cached_result
    assert again.result.exit_code == 3


def test_isa_routing_holds_for_repeated_actions(client, buildgrid, executors):
    """Several distinct actions of each ISA, all with Command.platform only, each on its own
    ISA's executor: the platform cannot be getting lost (an empty platform would let either
    executor take any of them)."""
    for i in range(3):
        for props, name, machine in ((X86, X86_NAME, b"x86_64\n"), (ARM, ARM_NAME, b"aarch64\n")):
            action = make_action(
                client,
                ["/bin/sh", "-c", "uname -m"],
                env=PATH_ENV,
                platform=props,
                salt=f"{uuid.uuid4()}-{i}".encode(),
            )
            response, _ = _run(client, buildgrid, action, what=f"routing {props['ISA']} #{i}")
            assert response.result.exit_code == 0, _stderr(client, response.result)
            assert _stdout(client, response.result) == machine
            assert response.result.execution_metadata.worker.startswith(f"{name}/")


# BotStatus.OK in remote_workers' bots.proto, as BuildGrid stores it in its `bots` table.
_BOT_STATUS_OK = 1


def _bot_rows(buildgrid, bot_ids):
    """(bot_id, bot_status) of BuildGrid's bot sessions for `bot_ids`, read from its database with
    the BuildGrid venv's psycopg2 (the server has no RPC that lists bots)."""
    pg = buildgrid.postgres
    script = (
        "import json, sys, psycopg2\n"
        f"c = psycopg2.connect(host={pg.host!r}, port={pg.port}, user={pg.user!r}, dbname={pg.database!r})\n"
        "cur = c.cursor()\n"
        "cur.execute('SELECT bot_id, bot_status FROM bots WHERE bot_id = ANY(%s) ORDER BY bot_id', (sys.argv[1:],))\n"
        "print(json.dumps(cur.fetchall()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(buildgrid.venv / "bin" / "python"), "-c", script, *bot_ids],
        check=True, stdout=subprocess.PIPE, text=True, timeout=30, env=env,
    ).stdout
    return [tuple(row) for row in json.loads(out)]


def test_stopped_executor_leaves_no_idle_session(buildgrid, executors):
    """Runs last: stops the arm-a64 executor, then BuildGrid must no longer count its slots as
    idle bots it may hand work to (BOT_TERMINATING, or the session gone)."""
    arm = executors["arm-a64"]
    bot_ids = [slot.bot_id for slot in arm.slots]
    before = _bot_rows(buildgrid, bot_ids)
    if sorted(b for b, _ in before) != sorted(bot_ids):
        pytest.skip(f"the arm-a64 slots have no BuildGrid sessions to begin with: {before}")
    _stop_executor(arm)
    after = _bot_rows(buildgrid, bot_ids)
    _log(f"BuildGrid bot rows before stop {before}, after {after}")
    assert not [row for row in after if row[1] == _BOT_STATUS_OK], after
