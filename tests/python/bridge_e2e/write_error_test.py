"""A write error (here: the file-size limit of the process, EFBIG) is reported clearly, leaves
nothing partial behind, and the bridge keeps serving what it has."""

import os
import resource

import grpc

from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing.bridge import BridgeProcess, client_for, digest_of

LIMIT = 4 << 20


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_write_error_is_reported_and_server_keeps_serving(tmp_path):
    state = tmp_path / "state"
    bridge = BridgeProcess(state, preexec_fn=limit_file_size)
    with client_for(bridge.start()) as client:
        kept = client.stream_upload(os.urandom(1 << 20))
        too_big = os.urandom(LIMIT + (1 << 20))
        try:
            client.stream_upload(too_big)
            raise AssertionError("a write past the file-size limit succeeded")
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "could not write blob" in exc.details()
            assert "too large" in exc.details().lower()
        missing = client.cas.FindMissingBlobs(
            re_pb2.FindMissingBlobsRequest(blob_digests=[kept, digest_of(too_big)])
        )
        assert list(missing.missing_blob_digests) == [digest_of(too_big)]
        assert client.stream_read(kept) == client.stream_read(kept)
        later = client.upload(b"still accepting small blobs")
        assert client.stream_read(later) == b"still accepting small blobs"
    bridge.stop()
    blobs = [p for p in (state / "cas" / "blobs").rglob("*") if p.is_file()]
    assert sorted(p.name for p in blobs) == sorted([kept.hash, later.hash])
    assert all(os.path.getsize(p) < LIMIT for p in blobs)
