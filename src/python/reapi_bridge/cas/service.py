"""ContentAddressableStorage service: FindMissingBlobs, batch reads and writes, GetTree."""

from __future__ import annotations

from typing import List

from google.rpc import code_pb2, status_pb2

from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import BridgeError, InvalidArgument
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.common.reapi import require_sha256
from reapi_bridge.common.tree import parse_directories, walk_directories
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.common.grpc_errors import for_instance, streaming, unary

DEFAULT_TREE_PAGE_SIZE = 1000


def _status(exc: BridgeError) -> status_pb2.Status:
    return status_pb2.Status(code=getattr(code_pb2, exc.status_name), message=str(exc))


_OK = status_pb2.Status(code=code_pb2.OK)


class CasService(re_grpc.ContentAddressableStorageServicer):
    def __init__(
        self, cas: ContentAddressableStorage, instances: InstanceRegistry, max_batch_bytes: int
    ) -> None:
        self.cas = cas
        self.instances = instances
        self.max_batch_bytes = max_batch_bytes

    @unary
    @for_instance
    def FindMissingBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        # Hot path (Pants asks for thousands of digests at once): work on the protos directly
        # and validate only what the index lookup does not already rule out.
        index_missing = self.cas.find_missing_hashes(
            [(d.hash, d.size_bytes) for d in request.blob_digests]
        )
        response = re_pb2.FindMissingBlobsResponse()
        digests = request.blob_digests
        for i in index_missing:
            d = digests[i]
            BlobDigest(d.hash, d.size_bytes)  # raises INVALID_ARGUMENT for a malformed digest
            response.missing_blob_digests.append(d)
        return response

    @unary
    @for_instance
    def BatchUpdateBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        total = sum(len(r.data) for r in request.requests)
        if total > self.max_batch_bytes:
            raise InvalidArgument(
                f"BatchUpdateBlobs carries {total} bytes, over the limit of {self.max_batch_bytes} "
                "advertised in GetCapabilities; send large blobs with ByteStream Write"
            )
        response = re_pb2.BatchUpdateBlobsResponse()
        for r in request.requests:
            entry = response.responses.add(digest=r.digest)
            try:
                if r.compressor != re_pb2.Compressor.IDENTITY:
                    raise InvalidArgument("compressed uploads are not supported")
                self.cas.put(BlobDigest.from_proto(r.digest), r.data)
                entry.status.CopyFrom(_OK)
            except BridgeError as exc:
                entry.status.CopyFrom(_status(exc))
        return response

    @unary
    @for_instance
    def BatchReadBlobs(self, request, context, instance):
        require_sha256(request.digest_function)
        digests = [BlobDigest.from_proto(d) for d in request.digests]
        total = sum(d.size for d in digests)
        if total > self.max_batch_bytes:
            raise InvalidArgument(
                f"BatchReadBlobs asks for {total} bytes, over the limit of {self.max_batch_bytes} "
                "advertised in GetCapabilities; read large blobs with ByteStream Read"
            )
        response = re_pb2.BatchReadBlobsResponse()
        for proto, digest in zip(request.digests, digests):
            entry = response.responses.add(digest=proto)
            try:
                entry.data = self.cas.read_bytes(digest)
                entry.status.CopyFrom(_OK)
            except BridgeError as exc:
                entry.status.CopyFrom(_status(exc))
        return response

    @streaming
    @for_instance
    def GetTree(self, request, context, instance):
        require_sha256(request.digest_function)
        root = BlobDigest.from_proto(request.root_digest)
        page_size = request.page_size or DEFAULT_TREE_PAGE_SIZE
        if request.page_size < 0:
            raise InvalidArgument(f"page_size {request.page_size} is negative")
        start = 0
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidArgument(f"page_token {request.page_token!r} was not issued by this server")
            start = int(request.page_token)
        directories = self._walk_tree(root)
        if start > len(directories):
            raise InvalidArgument(f"page_token {request.page_token!r} is past the end of the tree")
        # One response per page; the token of the last page is empty.
        pos = start
        while True:
            page = directories[pos : pos + page_size]
            pos += len(page)
            token = str(pos) if pos < len(directories) else ""
            yield re_pb2.GetTreeResponse(directories=page, next_page_token=token)
            if not token:
                return

    def _walk_tree(self, root: BlobDigest) -> List[re_pb2.Directory]:
        """Directories reachable from root, breadth first, each once; absent parts are omitted
        (REAPI: a partial tree is returned), but an absent root is NOT_FOUND."""
        self.cas.read_bytes(root)  # raises NOT_FOUND for an absent root

        def fetch(level):
            present = {}
            for digest in level:
                try:
                    present[digest] = self.cas.read_bytes(digest)
                except BridgeError:
                    continue
            return parse_directories(present, re_pb2.Directory)

        return [directory for _, directory in walk_directories(root, fetch)]
