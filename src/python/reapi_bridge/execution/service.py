"""Execution and Operations services: Execute, WaitExecution, GetOperation, CancelOperation.

Execute answers from the action cache when it can; otherwise it checks that every input is in
the CAS (Pants only recovers from missing inputs if told exactly which, as a
PreconditionFailure), hands a job to the scheduler and streams the operation's stages.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterator, List, Optional

from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2, empty_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.scheduler.scheduler import COMPLETED, EXECUTING, QUEUED, Job, Scheduler
from reapi_bridge.common.grpc_errors import streaming, unary

logger = logging.getLogger(__name__)

_STAGES = {
    QUEUED: re_pb2.ExecutionStage.QUEUED,
    EXECUTING: re_pb2.ExecutionStage.EXECUTING,
    COMPLETED: re_pb2.ExecutionStage.COMPLETED,
}
# How often a quiet Execute stream still sends the operation, so clients see it alive.
KEEPALIVE_SECONDS = 30.0


def request_metadata(context) -> Optional[re_pb2.RequestMetadata]:
    for key, value in context.invocation_metadata() or ():
        if key == "build.bazel.remote.execution.v2.requestmetadata-bin":
            try:
                return re_pb2.RequestMetadata.FromString(value)
            except Exception:
                return None
    return None


def platform_of(action: re_pb2.Action, command: re_pb2.Command) -> frozenset:
    """Action.platform, falling back to Command.platform (which is all Pants sets)."""
    props = action.platform.properties or command.platform.properties
    return frozenset((p.name, p.value) for p in props)


def operation_for(job: Job) -> operations_pb2.Operation:
    op = operations_pb2.Operation(name=job.name, done=job.done)
    op.metadata.Pack(
        re_pb2.ExecuteOperationMetadata(
            stage=_STAGES[job.stage],
            action_digest=re_pb2.Digest(hash=job.action_digest.hash, size_bytes=job.action_digest.size),
        )
    )
    if job.done and job.outcome is not None:
        o = job.outcome
        response = re_pb2.ExecuteResponse(cached_result=o.cached, message=o.message)
        if o.result is not None:
            response.result.CopyFrom(o.result)
        response.status.code = o.status_code
        response.status.message = o.message
        response.status.details.extend(o.details)
        op.response.Pack(response)
    return op


def cached_operation(action_digest: re_pb2.Digest, result: re_pb2.ActionResult) -> operations_pb2.Operation:
    import uuid

    op = operations_pb2.Operation(name=f"operations/{uuid.uuid4()}", done=True)
    op.metadata.Pack(
        re_pb2.ExecuteOperationMetadata(stage=re_pb2.ExecutionStage.COMPLETED, action_digest=action_digest)
    )
    op.response.Pack(re_pb2.ExecuteResponse(result=result, cached_result=True))
    return op


def failed_operation(action_digest: re_pb2.Digest, status: status_pb2.Status) -> operations_pb2.Operation:
    import uuid

    op = operations_pb2.Operation(name=f"operations/{uuid.uuid4()}", done=True)
    op.metadata.Pack(
        re_pb2.ExecuteOperationMetadata(stage=re_pb2.ExecutionStage.COMPLETED, action_digest=action_digest)
    )
    op.response.Pack(re_pb2.ExecuteResponse(status=status))
    return op


class ExecutionService(re_grpc.ExecutionServicer):
    def __init__(
        self,
        cas: ContentAddressableStorage,
        action_cache: ActionCache,
        scheduler: Scheduler,
        instances: InstanceRegistry,
        default_timeout_seconds: float,
        max_timeout_seconds: float,
    ) -> None:
        self.cas = cas
        self.action_cache = action_cache
        self.scheduler = scheduler
        self.instances = instances
        self.default_timeout = default_timeout_seconds
        self.max_timeout = max_timeout_seconds

    @streaming
    def Execute(self, request, context):
        self.instances.require(request.instance_name)
        if request.digest_function not in (re_pb2.DigestFunction.UNKNOWN, re_pb2.DigestFunction.SHA256):
            raise InvalidArgument("only the SHA256 digest function is supported")
        action_digest = BlobDigest.from_proto(request.action_digest)
        if not request.skip_cache_lookup:
            hit = self.action_cache.get(request.instance_name, action_digest)
            if hit is not None:
                yield cached_operation(request.action_digest, hit)
                return
        missing: List[BlobDigest] = []
        action = self._load(action_digest, re_pb2.Action, missing)
        command = None
        if action is not None:
            command = self._load(BlobDigest.from_proto(action.command_digest), re_pb2.Command, missing)
            self._find_missing_inputs(BlobDigest.from_proto(action.input_root_digest), missing)
        if missing:
            yield failed_operation(request.action_digest, self._missing_status(missing))
            return
        assert action is not None and command is not None
        self._apply_timeout_policy(action)
        metadata = request_metadata(context)
        client = (metadata.tool_invocation_id if metadata else "") or context.peer()
        job = self.scheduler.submit(
            Job(
                instance=request.instance_name,
                action_digest=action_digest,
                action=action,
                platform=platform_of(action, command),
                client=client,
                cacheable=not action.do_not_cache,
            )
        )
        yield from self._stream(job, context)

    @streaming
    def WaitExecution(self, request, context):
        job = self.scheduler.job(request.name)
        if job is None:
            raise NotFound(f"operation {request.name!r} is unknown or has expired")
        yield from self._stream(job, context)

    def _stream(self, job: Job, context) -> Iterator[operations_pb2.Operation]:
        self.scheduler.watch(job)
        released = threading.Lock()

        def release() -> None:
            # Once, whichever comes first: the stream's end here, or gRPC's callback when the
            # client goes away (this thread may be waiting up to KEEPALIVE_SECONDS by then).
            if released.acquire(blocking=False):
                self.scheduler.unwatch(job)

        context.add_callback(release)
        try:
            version = -1
            while context.is_active() and not self.scheduler.is_shut_down:
                current = job.version
                if current != version:
                    version = current
                    yield operation_for(job)
                    if job.done:
                        return
                new_version = self.scheduler.wait_for_change(job, version, KEEPALIVE_SECONDS)
                if new_version == version:
                    yield operation_for(job)  # keep-alive
        finally:
            release()

    def _apply_timeout_policy(self, action: re_pb2.Action) -> None:
        requested = action.timeout.seconds + action.timeout.nanos / 1e9 if action.HasField("timeout") else 0
        if requested > self.max_timeout:
            raise InvalidArgument(
                f"action timeout {requested:g}s is over the bridge's maximum of {self.max_timeout:g}s"
            )
        if requested <= 0:
            action.timeout.CopyFrom(duration_pb2.Duration(seconds=int(self.default_timeout)))

    def _load(self, digest: BlobDigest, message_cls, missing: List[BlobDigest]):
        if not self.cas.contains(digest):
            missing.append(digest)
            return None
        try:
            return message_cls.FromString(self.cas.read_bytes(digest))
        except NotFound:
            missing.append(digest)
            return None
        except Exception:
            raise InvalidArgument(f"blob {digest} is not a valid {message_cls.__name__}")

    def _find_missing_inputs(self, root: BlobDigest, missing: List[BlobDigest]) -> None:
        files: List[BlobDigest] = []
        seen = set()
        stack = [root]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            directory = self._load(digest, re_pb2.Directory, missing)
            if directory is None:
                continue
            files.extend(BlobDigest.from_proto(f.digest) for f in directory.files)
            stack.extend(BlobDigest.from_proto(d.digest) for d in directory.directories)
        missing.extend(self.cas.find_missing(sorted(set(files))))

    @staticmethod
    def _missing_status(missing: List[BlobDigest]) -> status_pb2.Status:
        failure = error_details_pb2.PreconditionFailure()
        for digest in sorted(set(missing)):
            failure.violations.add(type="MISSING", subject=f"blobs/{digest.hash}/{digest.size}")
        status = status_pb2.Status(
            code=code_pb2.FAILED_PRECONDITION,
            message=f"{len(failure.violations)} input blob(s) are missing from the CAS",
        )
        status.details.add().Pack(failure)
        return status


class OperationsService(operations_pb2_grpc.OperationsServicer):
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    @unary
    def GetOperation(self, request, context):
        job = self.scheduler.job(request.name)
        if job is None:
            raise NotFound(f"operation {request.name!r} is unknown or has expired")
        return operation_for(job)

    @unary
    def CancelOperation(self, request, context):
        if self.scheduler.job(request.name) is None:
            raise NotFound(f"operation {request.name!r} is unknown or has expired")
        self.scheduler.cancel(request.name)
        return empty_pb2.Empty()
