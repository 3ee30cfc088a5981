"""The Remote Workers API Bots service over BotsInstance (see instance.py)."""

from __future__ import annotations

import logging

from google.protobuf import empty_pb2

from reapi_bridge.bots.instance import BotsInstance
from reapi_bridge.common.grpc_errors import unary
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc

logger = logging.getLogger(__name__)


class BotsService(bots_pb2_grpc.BotsServicer):
    def __init__(self, bots: BotsInstance) -> None:
        self.bots = bots

    @unary
    def CreateBotSession(self, request, context):
        return self.bots.create_session(request.bot_session)

    @unary
    def UpdateBotSession(self, request, context):
        return self.bots.update_session(
            request.name, request.bot_session, context.time_remaining(), still_wanted=context.is_active
        )

    @unary
    def PostBotEventTemp(self, request, context):
        logger.info("bot event from %s: %s", request.name, request.msg)
        return empty_pb2.Empty()
