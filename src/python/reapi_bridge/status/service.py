"""The bridge's own status service (crossbuild.bridge.v1.BridgeStatus) over StatusInstance."""

from __future__ import annotations

from reapi_bridge.common.grpc_errors import unary
from reapi_bridge.common.permissions import READ
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2_grpc
from reapi_bridge.status.instance import StatusInstance


class StatusService(status_pb2_grpc.BridgeStatusServicer):
    def __init__(self, status: StatusInstance, auth) -> None:
        self.auth = auth
        self.status = status

    @unary
    def GetStatus(self, request, context):
        # Executors, queues and every instance's numbers: for callers who may read them all.
        self.auth.require_everywhere(context, READ, self.status.instances.names())
        return self.status.report()
