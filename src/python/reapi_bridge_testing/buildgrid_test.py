"""End-to-end check of the BuildGrid harness: PostgreSQL + BuildGrid come up, a minimal Remote
Workers API bot (our stubs) takes a lease, and an Execute client gets the bot's ActionResult.

Skipped only when the BuildGrid venv is missing and CROSSBUILD_REQUIRE_BUILDGRID is unset; CI sets
that variable, so there a missing install fails instead of skipping. Install with
`.ci/install-buildgrid`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import List, Optional

import grpc
import pytest
from google.protobuf import any_pb2

from reapi_bridge_testing.buildgrid import BuildGridServer, PostgresServer, buildgrid_availability
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2

_BUILDGRID = buildgrid_availability("buildgrid_harness_test")
_VENV = _BUILDGRID.venv
pytestmark = pytest.mark.skipif(_BUILDGRID.skip, reason=_BUILDGRID.reason)

PLATFORM = re_pb2.Platform(
    properties=[
        re_pb2.Platform.Property(name="ISA", value="x86-64"),
        re_pb2.Platform.Property(name="OSFamily", value="linux"),
    ]
)


@dataclass
class SeenLease:
    """What the bot observed of one lease, for assertions and for the report."""

    id: str
    state: int
    payload_type_url: str
    action: re_pb2.Action
    bot_session_name: str
    update_calls_before: int


@dataclass
class MinimalBot:
    """A Remote Workers API bot that completes every lease with a fixed ActionResult.

    Protocol, as BuildGrid 0.4.4 wants it: CreateBotSession(parent=instance, bot_session with
    bot_id, status OK and worker.devices[0].properties); then UpdateBotSession(name=session.name,
    bot_session=<the session last returned, echoed back with `version`>) in a loop. A new lease
    arrives already ACTIVE; the bot acks it by echoing it ACTIVE, then reports it COMPLETED with
    lease.result = Any(ActionResult) and lease.status OK. Each UpdateBotSession carries a gRPC
    deadline: BuildGrid long-polls for 80% of min(deadline, keepalive timeout), and assigns no
    lease at all to a call whose 80% is under 3 s.
    """

    channel: grpc.Channel
    instance_name: str
    bot_id: str = field(default_factory=lambda: f"crossbuild-test-bot-{uuid.uuid4()}")
    poll_deadline: float = 5.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    seen: List[SeenLease] = field(default_factory=list)
    completed: List[str] = field(default_factory=list)
    update_calls: int = 0
    update_durations: List[float] = field(default_factory=list)
    session_name: Optional[str] = None
    first_session: Optional[bots_pb2.BotSession] = None
    error: Optional[BaseException] = None

    def __post_init__(self) -> None:
        self.stub = bots_pb2_grpc.BotsStub(self.channel)
        self._thread = threading.Thread(target=self._run, name="minimal-bot", daemon=True)

    def start(self) -> "MinimalBot":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(timeout=self.poll_deadline + 10)

    def _worker(self) -> worker_pb2.Worker:
        return worker_pb2.Worker(
            devices=[
                worker_pb2.Device(
                    handle="primary",
                    properties=[
                        worker_pb2.Device.Property(key="ISA", value="x86-64"),
                        worker_pb2.Device.Property(key="OSFamily", value="linux"),
                    ],
                )
            ]
        )

    def _run(self) -> None:
        try:
            session = self.stub.CreateBotSession(
                bots_pb2.CreateBotSessionRequest(
                    parent=self.instance_name,
                    bot_session=bots_pb2.BotSession(
                        bot_id=self.bot_id, status=bots_pb2.OK, worker=self._worker()
                    ),
                ),
                timeout=self.poll_deadline,
            )
            self.first_session = bots_pb2.BotSession()
            self.first_session.CopyFrom(session)
            self.session_name = session.name
            while not self.stop_event.is_set():
                self._handle_leases(session)
                started = time.monotonic()
                try:
                    session = self.stub.UpdateBotSession(
                        bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session),
                        timeout=self.poll_deadline,
                    )
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                        continue  # the long poll outlived our deadline: poll again
                    raise
                finally:
                    self.update_calls += 1
                    self.update_durations.append(time.monotonic() - started)
        except BaseException as e:  # noqa: BLE001 - surfaced by the test
            if not self.stop_event.is_set():
                self.error = e

    def _handle_leases(self, session: bots_pb2.BotSession) -> None:
        """Advance each lease one step: new (as sent) -> ACTIVE ack -> COMPLETED."""
        for lease in session.leases:
            if lease.id in self.completed:
                continue
            known = [s for s in self.seen if s.id == lease.id]
            if not known:
                action = re_pb2.Action()
                if lease.payload.Is(re_pb2.Action.DESCRIPTOR):
                    lease.payload.Unpack(action)
                self.seen.append(
                    SeenLease(
                        id=lease.id,
                        state=lease.state,
                        payload_type_url=lease.payload.type_url,
                        action=action,
                        bot_session_name=session.name,
                        update_calls_before=self.update_calls,
                    )
                )
                # Acknowledge: the lease goes back ACTIVE (BuildGrid already sends it ACTIVE).
                lease.state = bots_pb2.ACTIVE
            else:
                # "Ran" it: report the result.
                result = re_pb2.ActionResult(exit_code=0, stdout_raw=b"hi")
                packed = any_pb2.Any()
                packed.Pack(result)
                lease.result.CopyFrom(packed)
                lease.status.code = 0
                lease.state = bots_pb2.COMPLETED
                self.completed.append(lease.id)


@pytest.fixture(scope="module")
def buildgrid(tmp_path_factory):
    with PostgresServer() as postgres:
        print(f"PostgreSQL up on port {postgres.port} in {postgres.startup_seconds:.2f}s", file=sys.stderr)
        work = tmp_path_factory.mktemp("buildgrid")
        with BuildGridServer(postgres, work, venv=_VENV) as server:
            print(
                f"BuildGrid up at {server.address} (instance {server.instance_name!r}): "
                f"migrate {server.migrate_seconds:.2f}s, start {server.startup_seconds:.2f}s",
                file=sys.stderr,
            )
            yield server


def _upload(cas: re_grpc.ContentAddressableStorageStub, instance: str, *messages) -> List[re_pb2.Digest]:
    import hashlib

    requests = []
    digests = []
    for message in messages:
        data = message.SerializeToString()
        digest = re_pb2.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        digests.append(digest)
        requests.append(re_pb2.BatchUpdateBlobsRequest.Request(digest=digest, data=data))
    response = cas.BatchUpdateBlobs(
        re_pb2.BatchUpdateBlobsRequest(instance_name=instance, requests=requests), timeout=10
    )
    for entry in response.responses:
        assert entry.status.code == 0, entry
    return digests


def test_capabilities_advertise_execution(buildgrid):
    with grpc.insecure_channel(buildgrid.target) as channel:
        caps = re_grpc.CapabilitiesStub(channel).GetCapabilities(
            re_pb2.GetCapabilitiesRequest(instance_name=buildgrid.instance_name), timeout=5
        )
    assert buildgrid.address.startswith("grpc://127.0.0.1:")
    assert caps.execution_capabilities.exec_enabled
    assert caps.cache_capabilities.digest_functions


def test_bot_receives_lease_and_client_gets_result(buildgrid):
    instance = buildgrid.instance_name
    with grpc.insecure_channel(buildgrid.target) as bot_channel, grpc.insecure_channel(
        buildgrid.target
    ) as client_channel:
        bot = MinimalBot(bot_channel, instance).start()
        try:
            deadline = time.monotonic() + 15
            while bot.session_name is None and bot.error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert bot.error is None, bot.error
            assert bot.session_name is not None, "CreateBotSession did not return"

            command = re_pb2.Command(
                arguments=["/bin/echo", "hi", str(uuid.uuid4())],
                output_paths=["out.txt"],
                platform=PLATFORM,
            )
            cas = re_grpc.ContentAddressableStorageStub(client_channel)
            (command_digest,) = _upload(cas, instance, command)
            input_root = re_pb2.Directory()
            (root_digest,) = _upload(cas, instance, input_root)
            action = re_pb2.Action(
                command_digest=command_digest,
                input_root_digest=root_digest,
                platform=PLATFORM,
            )
            action.timeout.seconds = 60
            (action_digest,) = _upload(cas, instance, action)

            started = time.monotonic()
            operations = re_grpc.ExecutionStub(client_channel).Execute(
                re_pb2.ExecuteRequest(
                    instance_name=instance, action_digest=action_digest, skip_cache_lookup=True
                ),
                timeout=60,
            )
            stages = []
            last = None
            for operation in operations:
                metadata = re_pb2.ExecuteOperationMetadata()
                if operation.metadata.Unpack(metadata):
                    stages.append(re_pb2.ExecutionStage.Value.Name(metadata.stage))
                last = operation
                if operation.done:
                    break
            elapsed = time.monotonic() - started
            assert bot.error is None, bot.error
            assert last is not None and last.done, last
            assert last.WhichOneof("result") == "response", last
            response = re_pb2.ExecuteResponse()
            assert last.response.Unpack(response)
            assert response.status.code == 0, response.status
            assert not response.cached_result
            assert response.result.exit_code == 0
            assert response.result.stdout_raw == b"hi"

            # What the bot saw: one lease carrying the Action itself.
            assert len(bot.seen) == 1, bot.seen
            lease = bot.seen[0]
            assert lease.payload_type_url == "type.googleapis.com/build.bazel.remote.execution.v2.Action"
            assert lease.action == action
            assert lease.state == bots_pb2.ACTIVE
            assert bot.completed == [lease.id]
            assert bot.session_name.startswith(f"{instance}/")

            print(
                "\nprotocol observations:"
                f"\n  bot_session.name={bot.session_name!r} version={bot.first_session.version!r}"
                f" expire_time={bot.first_session.expire_time.ToJsonString()}"
                f"\n  lease.id={lease.id!r} state={bots_pb2.LeaseState.Name(lease.state)}"
                f" payload={lease.payload_type_url}"
                f"\n  operation={last.name!r} stages={stages}"
                f"\n  execute round trip {elapsed:.2f}s; UpdateBotSession calls={bot.update_calls}"
                f" durations={[round(d, 2) for d in bot.update_durations]}",
                file=sys.stderr,
            )
        finally:
            bot.stop()
