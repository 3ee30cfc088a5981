"""google.bytestream.ByteStream over CasInstance (see instance.py): streamed reads, resumable
uploads. The instance comes from the resource name."""

from __future__ import annotations

from reapi_bridge.cas.instance import CasInstance
from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.grpc_errors import streaming, unary
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.common.permissions import CAS_WRITE, READ
from reapi_bridge.common.resource_names import parse_read_resource, parse_write_resource
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc


class ByteStreamService(bs_grpc.ByteStreamServicer):
    def __init__(self, cas: CasInstance, instances: InstanceRegistry, auth) -> None:
        self.auth = auth
        self.cas = cas
        self.instances = instances

    @streaming
    def Read(self, request, context):
        resource = parse_read_resource(request.resource_name)
        self.auth.require(context, READ, resource.instance)
        self.instances.require(resource.instance)
        for chunk in self.cas.read(resource.digest, request.read_offset, request.read_limit):
            yield bs_pb2.ReadResponse(data=chunk)

    @unary
    def Write(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None:
            raise InvalidArgument("Write stream carried no request")
        resource = parse_write_resource(first.resource_name)
        self.auth.require(context, CAS_WRITE, resource.instance)
        self.instances.require(resource.instance)

        def pieces():
            request = first
            while request is not None:
                yield request.resource_name, request.write_offset, request.data, request.finish_write
                request = next(request_iterator, None)

        committed = self.cas.write(first.resource_name, resource, first.write_offset, pieces())
        return bs_pb2.WriteResponse(committed_size=committed)

    @unary
    def QueryWriteStatus(self, request, context):
        resource = parse_write_resource(request.resource_name)
        self.auth.require(context, CAS_WRITE, resource.instance)
        self.instances.require(resource.instance)
        committed, complete = self.cas.write_status(request.resource_name, resource)
        return bs_pb2.QueryWriteStatusResponse(committed_size=committed, complete=complete)
