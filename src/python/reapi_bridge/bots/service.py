"""The Remote Workers API Bots service: executors open sessions and take leases.

A lease's id is the operation name of its job and its payload is the Action, packed in an
Any — the shape BuildGrid's bots use, so the same executors serve either server. A bot that is
idle blocks in UpdateBotSession until work arrives or its poll window ends.
"""

from __future__ import annotations

import logging

from google.protobuf import any_pb2

from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc
from reapi_bridge.scheduler.scheduler import JobOutcome, Scheduler
from reapi_bridge.common.grpc_errors import unary

logger = logging.getLogger(__name__)

# Longest an idle bot's UpdateBotSession is held open waiting for work.
MAX_POLL_SECONDS = 10.0


def bot_properties(session: bots_pb2.BotSession) -> dict:
    props = {}
    for device in session.worker.devices[:1]:
        props.update({p.key: p.value for p in device.properties})
    props.update({p.key: p.value for p in session.worker.properties})
    return props


class BotsService(bots_pb2_grpc.BotsServicer):
    def __init__(self, scheduler: Scheduler, poll_seconds: float = MAX_POLL_SECONDS) -> None:
        self.scheduler = scheduler
        self.poll_seconds = poll_seconds

    @unary
    def CreateBotSession(self, request, context):
        bot = request.bot_session
        if not bot.bot_id:
            raise InvalidArgument("bot_session.bot_id is required")
        props = bot_properties(bot)
        if not props:
            raise InvalidArgument(
                f"bot {bot.bot_id} advertises no properties (worker.devices[0].properties)"
            )
        session = self.scheduler.open_session(bot.bot_id, props)
        reply = bots_pb2.BotSession()
        reply.CopyFrom(bot)
        reply.name = session.name
        del reply.leases[:]
        return reply

    @unary
    def UpdateBotSession(self, request, context):
        session = self.scheduler.session(request.name)
        if session is None:
            raise NotFound(f"bot session {request.name!r} is unknown or expired; create a new one")
        self.scheduler.heartbeat(session)
        for lease in request.bot_session.leases:
            job = session.jobs.get(lease.id)
            if job is None:
                continue
            if lease.state == bots_pb2.LeaseState.COMPLETED:
                self.scheduler.complete(session, job, self._outcome(lease))
                session.acked.discard(lease.id)
            elif lease.state == bots_pb2.LeaseState.CANCELLED:
                self.scheduler.complete(
                    session, job, JobOutcome(None, status_code=1, message="cancelled on the executor")
                )
                session.acked.discard(lease.id)
            elif lease.state == bots_pb2.LeaseState.ACTIVE:
                session.acked.add(lease.id)
        terminating = request.bot_session.status == bots_pb2.BotStatus.BOT_TERMINATING
        if terminating:
            self.scheduler.close_session(session, "the executor is shutting down")
        elif not session.jobs and not request.bot_session.leases and request.bot_session.status in (
            bots_pb2.BotStatus.OK,
            bots_pb2.BotStatus.BOT_STATUS_UNSPECIFIED,
        ):
            remaining = context.time_remaining()
            window = self.poll_seconds if remaining is None else min(self.poll_seconds, remaining - 1.0)
            if window > 0:
                self.scheduler.next_job(session, window, still_wanted=context.is_active)
        reply = bots_pb2.BotSession()
        reply.CopyFrom(request.bot_session)
        reply.name = session.name
        del reply.leases[:]
        for job in list(session.jobs.values()):
            lease = reply.leases.add(id=job.name)
            lease.payload.Pack(job.action)
            if job.cancel_requested:
                lease.state = bots_pb2.LeaseState.CANCELLED
            elif job.name in session.acked:
                lease.state = bots_pb2.LeaseState.ACTIVE
            else:
                lease.state = bots_pb2.LeaseState.PENDING
        return reply

    @unary
    def PostBotEventTemp(self, request, context):
        logger.info("bot event from %s: %s", request.name, request.msg)
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()

    @staticmethod
    def _outcome(lease: bots_pb2.Lease) -> JobOutcome:
        result = None
        if lease.HasField("result"):
            result = re_pb2.ActionResult()
            if not lease.result.Unpack(result):
                result = None
                return JobOutcome(
                    None, status_code=13, message=f"lease result is a {lease.result.type_url}, not an ActionResult"
                )
        details = tuple(any_pb2.Any(type_url=d.type_url, value=d.value) for d in lease.status.details)
        return JobOutcome(result, lease.status.code, lease.status.message, details)
