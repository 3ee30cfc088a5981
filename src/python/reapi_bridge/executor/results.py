"""What an executor reports for a run, one-shot or through a worker: its outputs and logs
uploaded, and the ActionResult naming them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from reapi_bridge.client.client import Client
from reapi_bridge.executor.outputs import collect_outputs, digest_file
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2


@dataclass
class RunOutcome:
    result: re_pb2.ActionResult
    status_code: int = code_pb2.OK
    message: str = ""


def now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def upload_result(
    cas: Client,
    workdir: Path,
    command: re_pb2.Command,
    stdout_path: Path,
    stderr_path: Path,
    exit_code: int,
    meta: re_pb2.ExecutedActionMetadata,
    status: int = code_pb2.OK,
    message: str = "",
) -> RunOutcome:
    """Collects the command's outputs under `workdir`, uploads them with stdout and stderr, and
    fills in the upload and completion timestamps of `meta`."""
    meta.output_upload_start_timestamp.CopyFrom(now())
    outputs = collect_outputs(workdir, command)
    blobs = dict(outputs.blobs)
    stdout_digest = digest_file(stdout_path)
    stderr_digest = digest_file(stderr_path)
    blobs[stdout_digest] = stdout_path
    blobs[stderr_digest] = stderr_path
    cas.upload_blobs(blobs)
    meta.output_upload_completed_timestamp.CopyFrom(now())
    meta.worker_completed_timestamp.CopyFrom(now())
    result = re_pb2.ActionResult(
        output_files=outputs.files,
        output_directories=outputs.directories,
        output_symlinks=outputs.symlinks,
        exit_code=exit_code,
        stdout_digest=stdout_digest.to_proto(re_pb2.Digest),
        stderr_digest=stderr_digest.to_proto(re_pb2.Digest),
        execution_metadata=meta,
    )
    return RunOutcome(result, status, message)
