"""ContentAddressableStorage service over CasInstance (see instance.py): FindMissingBlobs,
batch reads and writes, GetTree."""

from __future__ import annotations

from typing import Optional

from google.rpc import code_pb2, status_pb2

from reapi_bridge.cas.instance import CasInstance
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import BridgeError
from reapi_bridge.common.grpc_errors import for_instance, requires, streaming, unary
from reapi_bridge.common.permissions import CAS_WRITE, READ
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.common.reapi import require_sha256
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc

_OK = status_pb2.Status(code=code_pb2.OK)


def _status(exc: Optional[BridgeError]) -> status_pb2.Status:
    return _OK if exc is None else status_pb2.Status(code=getattr(code_pb2, exc.status_name), message=str(exc))


class CasService(re_grpc.ContentAddressableStorageServicer):
    def __init__(self, cas: CasInstance, instances: InstanceRegistry, auth) -> None:
        self.auth = auth
        self.cas = cas
        self.instances = instances

    @unary
    @requires(READ, CAS_WRITE)
    @for_instance
    def FindMissingBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        return re_pb2.FindMissingBlobsResponse(missing_blob_digests=self.cas.find_missing(request.blob_digests))

    @unary
    @requires(CAS_WRITE)
    @for_instance
    def BatchUpdateBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        response = re_pb2.BatchUpdateBlobsResponse()
        for digest, error in self.cas.batch_update(request.requests):
            response.responses.add(digest=digest, status=_status(error))
        return response

    @unary
    @requires(READ)
    @for_instance
    def BatchReadBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        response = re_pb2.BatchReadBlobsResponse()
        for digest, data, error in self.cas.batch_read(request.digests):
            response.responses.add(digest=digest, data=data, status=_status(error))
        return response

    @streaming
    @requires(READ)
    @for_instance
    def GetTree(self, request, context, instance):
        require_sha256(request.digest_function)
        root = BlobDigest.from_proto(request.root_digest)
        for page, token in self.cas.tree_pages(root, request.page_size, request.page_token):
            yield re_pb2.GetTreeResponse(directories=page, next_page_token=token)
