"""The Remote Workers API as a plain object over the scheduler: executors open sessions, take
leases, report them ACTIVE, COMPLETED or CANCELLED. Every piece of lease state lives in the
scheduler, behind its lock; this object only translates bots messages.

A lease's id is the operation name of its job and its payload is the Action, packed in an
Any — the shape BuildGrid's bots use, so the same executors serve either server. A bot that is
idle blocks in UpdateBotSession until work arrives or its poll window ends.
"""

from __future__ import annotations

import json
import logging
from typing import Callable, List, Optional, Tuple

from google.protobuf import any_pb2
from google.rpc import code_pb2

from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.common.reapi import LEASE_ACTION_DIGEST_CONFIG, LEASE_INSTANCE_CONFIG
from reapi_bridge.common.workers import WARM_KEY_CONFIG, WORKER_ROW_CONFIG
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2
from reapi_bridge.scheduler.scheduler import LEASE_ACTIVE, LEASE_CANCELLED, JobOutcome, Scheduler

logger = logging.getLogger(__name__)

# Longest an idle bot's UpdateBotSession is held open waiting for work.
MAX_POLL_SECONDS = 10.0

_LEASE_STATES = {
    LEASE_CANCELLED: bots_pb2.LeaseState.CANCELLED,
    LEASE_ACTIVE: bots_pb2.LeaseState.ACTIVE,
}


def bot_properties(session: bots_pb2.BotSession) -> dict:
    props = {}
    for device in session.worker.devices[:1]:
        props.update({p.key: p.value for p in device.properties})
    props.update({p.key: p.value for p in session.worker.properties})
    return props


def worker_reports(session: bots_pb2.BotSession) -> Tuple[List[str], List[dict]]:
    """The warm worker keys and worker rows an executor reports in Worker.configs."""
    keys, rows = [], []
    for config in session.worker.configs:
        if config.key == WARM_KEY_CONFIG:
            keys.append(config.value)
        elif config.key == WORKER_ROW_CONFIG:
            try:
                row = json.loads(config.value)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return keys, rows


def lease_outcome(lease: bots_pb2.Lease) -> JobOutcome:
    if lease.state == bots_pb2.LeaseState.CANCELLED:
        return JobOutcome(None, status_code=code_pb2.CANCELLED, message="cancelled on the executor")
    result = None
    if lease.HasField("result"):
        result = re_pb2.ActionResult()
        if not lease.result.Unpack(result):
            return JobOutcome(
                None,
                status_code=code_pb2.INTERNAL,
                message=f"lease result is a {lease.result.type_url}, not an ActionResult",
            )
    details = tuple(any_pb2.Any(type_url=d.type_url, value=d.value) for d in lease.status.details)
    return JobOutcome(result, lease.status.code, lease.status.message, details)


class BotsInstance:
    def __init__(self, scheduler: Scheduler, poll_seconds: float = MAX_POLL_SECONDS) -> None:
        self.scheduler = scheduler
        self.poll_seconds = poll_seconds

    def create_session(self, bot: bots_pb2.BotSession) -> bots_pb2.BotSession:
        if not bot.bot_id:
            raise InvalidArgument("bot_session.bot_id is required")
        props = bot_properties(bot)
        if not props:
            raise InvalidArgument(
                f"bot {bot.bot_id} advertises no properties (worker.devices[0].properties)"
            )
        session = self.scheduler.open_session(bot.bot_id, props)
        self.scheduler.report_workers(session, *worker_reports(bot))
        reply = bots_pb2.BotSession()
        reply.CopyFrom(bot)
        reply.name = session.name
        del reply.leases[:]
        return reply

    def update_session(
        self,
        name: str,
        bot: bots_pb2.BotSession,
        time_remaining: Optional[float] = None,
        still_wanted: Callable[[], bool] = lambda: True,
    ) -> bots_pb2.BotSession:
        """Takes the executor's lease reports, waits for work when it is idle (up to the poll
        window, never past the caller's deadline), and returns the session's leases."""
        session = self.scheduler.session(name)
        if session is None:
            raise NotFound(f"bot session {name!r} is unknown or expired; create a new one")
        self.scheduler.heartbeat(session)
        self.scheduler.report_workers(session, *worker_reports(bot))
        for lease in bot.leases:
            job = self.scheduler.leased_job(session, lease.id)
            if job is None:
                continue
            if lease.state in (bots_pb2.LeaseState.COMPLETED, bots_pb2.LeaseState.CANCELLED):
                self.scheduler.complete(session, job, lease_outcome(lease))
            elif lease.state == bots_pb2.LeaseState.ACTIVE:
                self.scheduler.acknowledge(session, lease.id)
        if bot.status == bots_pb2.BotStatus.BOT_TERMINATING:
            self.scheduler.close_session(session, "the executor is shutting down")
        elif not self.scheduler.leases(session) and not bot.leases and bot.status in (
            bots_pb2.BotStatus.OK,
            bots_pb2.BotStatus.BOT_STATUS_UNSPECIFIED,
        ):
            window = self.poll_seconds if time_remaining is None else min(self.poll_seconds, time_remaining - 1.0)
            if window > 0:
                self.scheduler.next_job(session, window, still_wanted=still_wanted)
        reply = bots_pb2.BotSession()
        reply.CopyFrom(bot)
        reply.name = session.name
        del reply.leases[:]
        for job, state in self.scheduler.leases(session):
            lease = reply.leases.add(id=job.name)
            lease.payload.Pack(job.action)
            lease.requirements.configs.add(key=LEASE_ACTION_DIGEST_CONFIG, value=f"{job.action_digest.hash}/{job.action_digest.size}")
            lease.requirements.configs.add(key=LEASE_INSTANCE_CONFIG, value=job.instance)
            lease.state = _LEASE_STATES.get(state, bots_pb2.LeaseState.PENDING)
        return reply
