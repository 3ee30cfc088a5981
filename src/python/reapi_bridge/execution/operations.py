"""How jobs and Execute outcomes look on the wire: google.longrunning Operations carrying
ExecuteOperationMetadata and ExecuteResponse."""

from __future__ import annotations

import uuid
from typing import Sequence

from google.longrunning import operations_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.resource_names import blob_path
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.scheduler.scheduler import COMPLETED, EXECUTING, QUEUED, Job

_STAGES = {
    QUEUED: re_pb2.ExecutionStage.QUEUED,
    EXECUTING: re_pb2.ExecutionStage.EXECUTING,
    COMPLETED: re_pb2.ExecutionStage.COMPLETED,
}


def operation_for(job: Job) -> operations_pb2.Operation:
    op = operations_pb2.Operation(name=job.name, done=job.done)
    op.metadata.Pack(
        re_pb2.ExecuteOperationMetadata(
            stage=_STAGES[job.stage], action_digest=job.action_digest.to_proto(re_pb2.Digest)
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


def _finished(action_digest: BlobDigest, response: re_pb2.ExecuteResponse) -> operations_pb2.Operation:
    op = operations_pb2.Operation(name=f"operations/{uuid.uuid4()}", done=True)
    op.metadata.Pack(
        re_pb2.ExecuteOperationMetadata(
            stage=re_pb2.ExecutionStage.COMPLETED, action_digest=action_digest.to_proto(re_pb2.Digest)
        )
    )
    op.response.Pack(response)
    return op


def cached_operation(action_digest: BlobDigest, result: re_pb2.ActionResult) -> operations_pb2.Operation:
    return _finished(action_digest, re_pb2.ExecuteResponse(result=result, cached_result=True))


def missing_inputs_operation(action_digest: BlobDigest, missing: Sequence[BlobDigest]) -> operations_pb2.Operation:
    """FAILED_PRECONDITION with one MISSING violation per blob, as REAPI asks."""
    failure = error_details_pb2.PreconditionFailure()
    for digest in missing:
        failure.violations.add(type="MISSING", subject=blob_path(digest))
    status = status_pb2.Status(
        code=code_pb2.FAILED_PRECONDITION,
        message=f"{len(failure.violations)} input blob(s) are missing from the CAS",
    )
    status.details.add().Pack(failure)
    return _finished(action_digest, re_pb2.ExecuteResponse(status=status))
