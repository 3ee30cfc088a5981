"""Execution and Operations services: Execute, WaitExecution, GetOperation, CancelOperation.
Each RPC hands its request to the ExecutionInstance and turns what it returns into
Operations (see instance.py for what Execute does)."""

from __future__ import annotations

from typing import Optional

from google.longrunning import operations_pb2_grpc
from google.protobuf import empty_pb2

from reapi_bridge.common.errors import NotFound
from reapi_bridge.common.grpc_errors import requires, streaming, unary
from reapi_bridge.common.permissions import EXECUTE
from reapi_bridge.execution.instance import ExecuteRequest, ExecutionInstance, Watch
from reapi_bridge.execution.operations import cached_operation, missing_inputs_operation, operation_for
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc


def request_metadata(context) -> Optional[re_pb2.RequestMetadata]:
    for key, value in context.invocation_metadata() or ():
        if key == "build.bazel.remote.execution.v2.requestmetadata-bin":
            try:
                return re_pb2.RequestMetadata.FromString(value)
            except Exception:
                return None
    return None


def _follow(watch: Watch, context):
    # gRPC calls back when the client goes away, which may be while this thread waits.
    context.add_callback(watch.release)
    for job in watch.updates(context.is_active):
        yield operation_for(job)


def permitted_job(execution: ExecutionInstance, auth, name: str, context):
    """The operation's job, once the caller is known to hold `execute` on its instance."""
    try:
        job = execution.job(name)
    except NotFound:
        auth.require_somewhere(context, EXECUTE)
        raise
    auth.require(context, EXECUTE, job.instance)
    return job


class ExecutionService(re_grpc.ExecutionServicer):
    def __init__(self, execution: ExecutionInstance, auth) -> None:
        self.execution = execution
        self.auth = auth

    @streaming
    @requires(EXECUTE)
    def Execute(self, request, context):
        metadata = request_metadata(context)
        start = self.execution.execute(
            ExecuteRequest(
                instance_name=request.instance_name,
                action_digest=request.action_digest,
                skip_cache_lookup=request.skip_cache_lookup,
                digest_function=request.digest_function,
                client=(metadata.tool_invocation_id if metadata else "") or context.peer(),
            )
        )
        if start.cached is not None:
            yield cached_operation(start.action_digest, start.cached)
        elif start.missing:
            yield missing_inputs_operation(start.action_digest, start.missing)
        else:
            yield from _follow(self.execution.watch(start.job), context)

    @streaming
    def WaitExecution(self, request, context):
        yield from _follow(self.execution.watch(permitted_job(self.execution, self.auth, request.name, context)), context)


class OperationsService(operations_pb2_grpc.OperationsServicer):
    def __init__(self, execution: ExecutionInstance, auth) -> None:
        self.execution = execution
        self.auth = auth

    @unary
    def GetOperation(self, request, context):
        return operation_for(permitted_job(self.execution, self.auth, request.name, context))

    @unary
    def CancelOperation(self, request, context):
        permitted_job(self.execution, self.auth, request.name, context)
        self.execution.cancel(request.name)
        return empty_pb2.Empty()
