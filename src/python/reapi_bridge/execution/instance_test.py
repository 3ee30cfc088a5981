"""ExecutionInstance and BotsInstance as plain objects: real storage and a real scheduler, no
gRPC. What Execute decides (cache, missing inputs, timeout, platform) and what a completed
lease puts in the action cache, and when."""

import pytest
from google.protobuf import any_pb2

from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.bots.instance import BotsInstance
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.config import ExecutionConfig, InstanceConfig
from reapi_bridge.execution.instance import ExecuteRequest, ExecutionInstance, cache_successful_result
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2
from reapi_bridge.scheduler.scheduler import Scheduler

ARM = {"OSFamily": "linux", "ISA": "arm-a64"}


class World:
    def __init__(self, tmp_path):
        self.cas = ContentAddressableStorage(tmp_path / "cas", max_bytes=1 << 30, fsync=False)
        self.ac = ActionCache(tmp_path / "ac.sqlite3", self.cas)
        self.scheduler = Scheduler(ExecutionConfig(), on_success=cache_successful_result(self.ac))
        self.execution = ExecutionInstance(
            self.cas, self.ac, self.scheduler, InstanceRegistry([InstanceConfig("")]), 900, 3600
        )
        self.bots = BotsInstance(self.scheduler, poll_seconds=5)  # work is queued: no wait

    def put(self, data: bytes) -> re_pb2.Digest:
        digest = BlobDigest.of(data)
        self.cas.put(digest, data)
        return digest.to_proto(re_pb2.Digest)

    def action(self, upload_file=True, timeout=0.0) -> re_pb2.Digest:
        file_digest = BlobDigest.of(b"input").to_proto(re_pb2.Digest)
        if upload_file:
            self.put(b"input")
        sub = re_pb2.Directory(files=[re_pb2.FileNode(name="f", digest=file_digest)])
        root = re_pb2.Directory(
            directories=[re_pb2.DirectoryNode(name="d", digest=self.put(sub.SerializeToString()))]
        )
        command = re_pb2.Command(arguments=["true"])
        for k, v in sorted(ARM.items()):
            command.platform.properties.add(name=k, value=v)
        action = re_pb2.Action(
            command_digest=self.put(command.SerializeToString()),
            input_root_digest=self.put(root.SerializeToString()),
        )
        if timeout:
            action.timeout.FromNanoseconds(int(timeout * 1e9))
        return self.put(action.SerializeToString())


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.ac.close()


def test_missing_inputs_are_all_named_and_nothing_is_queued(world):
    digest = world.action(upload_file=False)
    start = world.execution.execute(ExecuteRequest("", digest))
    assert start.job is None and start.cached is None
    assert start.missing == (BlobDigest.of(b"input"),)
    assert world.scheduler.snapshot()["queues"] == {}


def test_an_absent_action_is_reported_missing(world):
    absent = BlobDigest.of(b"no such action")
    start = world.execution.execute(ExecuteRequest("", absent.to_proto(re_pb2.Digest)))
    assert start.missing == (absent,)


def test_queued_with_platform_and_default_timeout(world):
    start = world.execution.execute(ExecuteRequest("", world.action(), client="build-1"))
    job = start.job
    assert job is not None and not start.missing
    assert job.platform == frozenset(ARM.items())
    assert job.action.timeout.seconds == 900
    assert world.execution.job(job.name) is job


def test_timeout_over_the_maximum_is_refused(world):
    with pytest.raises(InvalidArgument, match="over the bridge's maximum"):
        world.execution.execute(ExecuteRequest("", world.action(timeout=7200)))


def test_unknown_instance_and_operation(world):
    with pytest.raises(NotFound, match="not served"):
        world.execution.execute(ExecuteRequest("elsewhere", world.action()))
    with pytest.raises(NotFound, match="unknown or has expired"):
        world.execution.job("operations/nope")


def complete_through_bots(world, exit_code: int):
    bot = bots_pb2.BotSession(bot_id="arm-1")
    device = bot.worker.devices.add()
    for k, v in ARM.items():
        device.properties.add(key=k, value=v)
    session = world.bots.create_session(bot)
    leased = world.bots.update_session(session.name, session)
    (lease,) = leased.leases
    assert lease.state == bots_pb2.LeaseState.PENDING
    lease.state = bots_pb2.LeaseState.ACTIVE
    acked = world.bots.update_session(session.name, leased)
    assert [l.state for l in acked.leases] == [bots_pb2.LeaseState.ACTIVE]
    lease = acked.leases[0]
    lease.state = bots_pb2.LeaseState.COMPLETED
    packed = any_pb2.Any()
    packed.Pack(re_pb2.ActionResult(exit_code=exit_code))
    lease.result.CopyFrom(packed)
    done = world.bots.update_session(session.name, acked)
    assert list(done.leases) == []


def test_a_successful_result_is_cached_before_the_job_is_done(world):
    digest = world.action()
    job = world.execution.execute(ExecuteRequest("", digest)).job
    seen_in_cache_when_done = []
    real_finish = world.scheduler._finish

    def finish(j, outcome):
        seen_in_cache_when_done.append(world.ac.get("", BlobDigest.from_proto(digest)) is not None)
        real_finish(j, outcome)

    world.scheduler._finish = finish
    complete_through_bots(world, exit_code=0)
    assert job.done and seen_in_cache_when_done == [True]
    again = world.execution.execute(ExecuteRequest("", digest))
    assert again.cached is not None and again.job is None


def test_a_failing_result_is_not_cached(world):
    digest = world.action()
    job = world.execution.execute(ExecuteRequest("", digest)).job
    complete_through_bots(world, exit_code=1)
    assert job.done and job.outcome.result.exit_code == 1
    assert world.ac.get("", BlobDigest.from_proto(digest)) is None
