"""google.bytestream.ByteStream over the CAS: streamed reads, resumable uploads."""

from __future__ import annotations

import logging

from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from reapi_bridge.common.resource_names import parse_read_resource, parse_write_resource
from reapi_bridge.common.grpc_errors import streaming, unary

logger = logging.getLogger(__name__)


class ByteStreamService(bs_grpc.ByteStreamServicer):
    def __init__(
        self, cas: ContentAddressableStorage, instances: InstanceRegistry, read_chunk_bytes: int
    ) -> None:
        self.cas = cas
        self.instances = instances
        self.read_chunk_bytes = read_chunk_bytes

    @streaming
    def Read(self, request, context):
        resource = parse_read_resource(request.resource_name)
        self.instances.require(resource.instance)
        chunks = self.cas.read_chunks(
            resource.digest, request.read_offset, request.read_limit, self.read_chunk_bytes
        )
        for chunk in chunks:
            yield bs_pb2.ReadResponse(data=chunk)

    @unary
    def Write(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None:
            raise InvalidArgument("Write stream carried no request")
        resource = parse_write_resource(first.resource_name)
        self.instances.require(resource.instance)
        digest = resource.digest
        if first.write_offset == 0 and self.cas.contains(digest):
            # Someone already stored it: REAPI lets the server end the upload at once.
            return bs_pb2.WriteResponse(committed_size=digest.size)
        writer = self.cas.begin_upload(resource.upload_id, digest, first.write_offset)
        try:
            request = first
            while True:
                if request.resource_name and request.resource_name != first.resource_name:
                    raise InvalidArgument(
                        f"resource name changed within one Write stream: {request.resource_name!r}"
                    )
                if request.write_offset != writer.committed_size:
                    raise InvalidArgument(
                        f"write_offset {request.write_offset} but {writer.committed_size} bytes "
                        f"were committed for {first.resource_name!r}"
                    )
                if request.data:
                    writer.write(request.data)
                if request.finish_write:
                    writer.commit()
                    return bs_pb2.WriteResponse(committed_size=writer.committed_size)
                request = next(request_iterator, None)
                if request is None:
                    raise InvalidArgument(
                        f"Write stream for {first.resource_name!r} ended without finish_write "
                        f"after {writer.committed_size} bytes; resume from there"
                    )
        finally:
            writer.close()

    @unary
    def QueryWriteStatus(self, request, context):
        resource = parse_write_resource(request.resource_name)
        self.instances.require(resource.instance)
        if self.cas.contains(resource.digest):
            return bs_pb2.QueryWriteStatusResponse(
                committed_size=resource.digest.size, complete=True
            )
        committed = self.cas.upload_committed_size(resource.upload_id, resource.digest)
        if committed is None:
            raise NotFound(f"no upload is in progress for {request.resource_name!r}")
        return bs_pb2.QueryWriteStatusResponse(committed_size=committed, complete=False)
