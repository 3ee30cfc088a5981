"""The executor's side of the Remote Workers API: one bot session per concurrent slot.

Each slot opens a session advertising the executor's properties, then loops on
UpdateBotSession: an idle slot's call waits server-side for work; a busy slot reports its lease
ACTIVE every `heartbeat_seconds` (that is what keeps the lease alive) and COMPLETED, with the
ActionResult packed in an Any, when done. A lease the server marks CANCELLED is killed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import grpc
from google.rpc import code_pb2, status_pb2

from reapi_bridge.auth.signing import SigningKey, sign_result
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.reapi import LEASE_ACTION_DIGEST_CONFIG, LEASE_INSTANCE_CONFIG
from reapi_bridge.executor.action_runner import ActionRunner
from reapi_bridge.common.workers import WARM_KEY_CONFIG, WORKER_ROW_CONFIG
from reapi_bridge.executor.results import RunOutcome
from reapi_bridge.executor.workers.pool import WorkerPool
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2

logger = logging.getLogger(__name__)


@dataclass
class _Running:
    lease_id: str
    thread: threading.Thread
    action_digest: Optional[BlobDigest] = None
    instance: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)
    outcome: Optional[RunOutcome] = None
    error: Optional[str] = None
    forgotten: bool = False


class BotSlot:
    def __init__(
        self,
        channel: grpc.Channel,
        runner: ActionRunner,
        bot_id: str,
        properties: Dict[str, str],
        *,
        instance: str = "",
        heartbeat_seconds: float = 2.0,
        poll_seconds: float = 15.0,
        create_timeout_seconds: float = 3.5,
        workers: Optional[WorkerPool] = None,
        signing_key: Optional[SigningKey] = None,
    ) -> None:
        self.stub = bots_pb2_grpc.BotsStub(channel)
        self.signing_key = signing_key
        self.runner = runner
        self.bot_id = bot_id
        self.properties = properties
        self.instance = instance
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        # BuildGrid holds CreateBotSession open like a poll (80% of the deadline), and that
        # call cannot be abandoned without leaving a session we cannot name. Under 3.75 s it
        # answers at once; work then arrives on the first (cancellable) UpdateBotSession.
        self.create_timeout_seconds = create_timeout_seconds
        self.workers = workers
        self.stopping = threading.Event()
        self.actions_run = 0
        self._idle_call = None

    def stop(self) -> None:
        """Stops taking work; an idle poll is abandoned, a running action finishes first."""
        self.stopping.set()
        call = self._idle_call
        if call is not None:
            call.cancel()

    def _session_message(self, status=bots_pb2.BotStatus.OK) -> bots_pb2.BotSession:
        device = worker_pb2.Device(
            handle=self.bot_id,
            properties=[worker_pb2.Device.Property(key=k, value=v) for k, v in sorted(self.properties.items())],
        )
        return bots_pb2.BotSession(
            bot_id=self.bot_id,
            status=status,
            worker=worker_pb2.Worker(devices=[device], configs=self._worker_configs()),
        )

    def _worker_configs(self) -> List[worker_pb2.Worker.Config]:
        """What the executor's persistent workers look like now: each key with a worker ready
        for a request (the scheduler prefers this executor for that key) and one row per worker
        for `status`. Configs are descriptive: nothing matches on them."""
        if self.workers is None:
            return []
        configs = [worker_pb2.Worker.Config(key=WARM_KEY_CONFIG, value=k) for k in self.workers.warm_keys()]
        configs += [
            worker_pb2.Worker.Config(key=WORKER_ROW_CONFIG, value=json.dumps(dataclasses.asdict(row), sort_keys=True))
            for row in self.workers.rows()
        ]
        return configs

    def serve(self) -> None:
        """Runs until `stopping` is set; reconnects (new session) after errors."""
        while not self.stopping.is_set():
            try:
                self._one_session()
            except (grpc.RpcError, grpc.FutureCancelledError) as exc:
                if self.stopping.is_set():
                    break
                if not isinstance(exc, grpc.RpcError):
                    continue
                logger.warning("bot %s: %s: %s; reconnecting", self.bot_id, exc.code().name, exc.details())
                self.stopping.wait(1.0)

    def _one_session(self) -> None:
        reply = self.stub.CreateBotSession(
            bots_pb2.CreateBotSessionRequest(parent=self.instance, bot_session=self._session_message()),
            timeout=self.create_timeout_seconds,
        )
        name = reply.name
        running: Optional[_Running] = None
        finished: Optional[_Running] = None
        reported = False  # whether the server has seen `running` as ACTIVE
        logger.info("bot %s: session %s open with %s", self.bot_id, name, self.properties)
        while True:
            # What the server says. BuildGrid offers leases already ACTIVE (ours PENDING) and
            # cancels by dropping a lease from the session; ours also marks it CANCELLED.
            stopping = self.stopping.is_set()
            offered = {lease.id: lease for lease in reply.leases}
            if running is not None:
                lease = offered.get(running.lease_id)
                gone = lease is None and reported
                if gone or (lease is not None and lease.state == bots_pb2.LeaseState.CANCELLED):
                    running.cancelled.set()
                    running.forgotten = gone  # the server no longer knows it: report nothing
            elif finished is None:
                # While stopping, still run a lease BuildGrid assigned before it saw
                # BOT_TERMINATING (it sends leases ACTIVE, and only a timeout frees them); our
                # bridge offers PENDING ones and requeues those itself when the session closes.
                wanted = (bots_pb2.LeaseState.ACTIVE,) if stopping else (bots_pb2.LeaseState.PENDING, bots_pb2.LeaseState.ACTIVE)
                for lease in reply.leases:
                    if lease.state in wanted:
                        running, reported = self._start(lease), False
                        break
            # Wait for the action a little, so a busy slot checks in every heartbeat.
            if running is not None:
                running.thread.join(self.heartbeat_seconds if reported else 0)
                if not running.thread.is_alive():
                    finished, running = running, None
                    self.actions_run += 1
            status = bots_pb2.BotStatus.BOT_TERMINATING if stopping and running is None else bots_pb2.BotStatus.OK
            request_session = self._session_message(status)
            request_session.name = name
            request_session.version = reply.version  # BuildGrid long-polls only when echoed
            if running is not None:
                request_session.leases.add(id=running.lease_id, state=bots_pb2.LeaseState.ACTIVE)
            if finished is not None and not finished.forgotten:
                request_session.leases.append(self._completed_lease(finished))
            call = self.stub.UpdateBotSession.future(
                bots_pb2.UpdateBotSessionRequest(name=name, bot_session=request_session),
                timeout=self.poll_seconds + 30,
            )
            self._idle_call = call if running is None and finished is None else None
            if self.stopping.is_set() and self._idle_call is not None and status == bots_pb2.BotStatus.OK:
                call.cancel()
            try:
                reply = call.result()
            except grpc.FutureCancelledError:
                if not self.stopping.is_set():
                    raise
                # stop() abandoned our idle poll. Say so: a server that still counts this
                # session as idle keeps assigning it work (BuildGrid: until its keepalive
                # timeout, 600 s by default).
                status = request_session.status = bots_pb2.BotStatus.BOT_TERMINATING
                reply = self.stub.UpdateBotSession(
                    bots_pb2.UpdateBotSessionRequest(name=name, bot_session=request_session),
                    timeout=10,
                )
            finally:
                self._idle_call = None
            finished = None
            reported = running is not None
            if status == bots_pb2.BotStatus.BOT_TERMINATING and not any(
                lease.state == bots_pb2.LeaseState.ACTIVE for lease in reply.leases
            ):
                return

    def _start(self, lease: bots_pb2.Lease) -> _Running:
        action = re_pb2.Action()
        if not lease.payload.Unpack(action):
            raise RuntimeError(f"lease payload {lease.payload.type_url} is not an Action")
        holder: Dict[str, _Running] = {}

        def work():
            job = holder["job"]
            try:
                job.outcome = self.runner.run(action, job.cancelled)
            except Exception as exc:  # reported as the lease's status, never dropped
                logger.exception("bot %s: action failed on the executor", self.bot_id)
                job.error = f"executor {self.bot_id} failed to run the action: {type(exc).__name__}: {exc}"

        thread = threading.Thread(target=work, name=f"action-{lease.id}", daemon=True)
        job = _Running(lease.id, thread, *self._lease_identity(lease, action))
        holder["job"] = job
        thread.start()
        return job

    def _lease_identity(self, lease: bots_pb2.Lease, action: re_pb2.Action):
        """(action digest, instance) the result is for: what the bridge says in the lease's
        requirements, else (another server) the payload's own digest and this bot's instance."""
        configs = {c.key: c.value for c in lease.requirements.configs}
        instance = configs.get(LEASE_INSTANCE_CONFIG, self.instance)
        text = configs.get(LEASE_ACTION_DIGEST_CONFIG, "")
        digest_hash, _, size = text.partition("/")
        try:
            return BlobDigest(digest_hash, int(size)), instance
        except (ValueError, InvalidArgument):
            return BlobDigest.of(lease.payload.value), instance

    def _completed_lease(self, job: _Running) -> bots_pb2.Lease:
        lease = bots_pb2.Lease(id=job.lease_id, state=bots_pb2.LeaseState.COMPLETED)
        if job.outcome is not None:
            if self.signing_key is not None and job.action_digest is not None:
                sign_result(
                    job.outcome.result, self.signing_key,
                    instance=job.instance, action_digest=job.action_digest, executor=self.bot_id,
                )
            lease.result.Pack(job.outcome.result)
            lease.status.CopyFrom(status_pb2.Status(code=job.outcome.status_code, message=job.outcome.message))
        else:
            lease.status.CopyFrom(status_pb2.Status(code=code_pb2.INTERNAL, message=job.error or "unknown failure"))
        return lease
