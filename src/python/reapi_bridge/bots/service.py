"""The Remote Workers API Bots service over BotsInstance (see instance.py)."""

from __future__ import annotations

import logging
import threading
from typing import Dict

from google.protobuf import empty_pb2

from reapi_bridge.bots.instance import BotsInstance
from reapi_bridge.common.grpc_errors import unary
from reapi_bridge.common.permissions import WORKER
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc

logger = logging.getLogger(__name__)


class BotsService(bots_pb2_grpc.BotsServicer):
    """A bot session belongs to the caller that created it: another identity (even one with
    `worker`) cannot report or take its leases."""

    def __init__(self, bots: BotsInstance, auth, instances) -> None:
        self.bots = bots
        self.auth = auth
        # One queue serves every instance, so a bot may be handed any instance's action: it
        # needs `worker` on all of them.
        self.instances = instances
        self._owners: Dict[str, str] = {}  # session name -> the caller that created it
        self._lock = threading.Lock()

    @unary
    def CreateBotSession(self, request, context):
        caller = self.auth.require_everywhere(context, WORKER, self.instances.names())
        session = self.bots.create_session(request.bot_session)
        with self._lock:
            self._owners[session.name] = caller.name
        return session

    @unary
    def UpdateBotSession(self, request, context):
        caller = self.auth.require_everywhere(context, WORKER, self.instances.names())
        with self._lock:
            owner = self._owners.get(request.name)
        if owner is not None and owner != caller.name:
            self.auth.refuse_other(context, caller, f"bot session {request.name!r}")
        return self.bots.update_session(
            request.name, request.bot_session, context.time_remaining(), still_wanted=context.is_active
        )

    @unary
    def PostBotEventTemp(self, request, context):
        self.auth.require_somewhere(context, WORKER)
        logger.info("bot event from %s: %s", request.name, request.msg)
        return empty_pb2.Empty()
