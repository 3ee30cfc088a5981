"""What Execute means on this bridge, as a plain object (no gRPC): the cache lookup, the check
that every input is in the CAS, the timeout policy, the job handed to the scheduler, and what
enters the action cache once an executor reports a result.

Pants only recovers from missing inputs if told exactly which, so a missing Action, Command,
Directory or file is reported, all of them, before anything is queued.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from google.protobuf import duration_pb2
from google.rpc import code_pb2

from reapi_bridge.actioncache.instance import stored_result_violation
from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument, NotFound
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.common.reapi import require_sha256, timeout_seconds
from reapi_bridge.common.tree import file_digests, files_under, parse_directories, walk_directories
from reapi_bridge.common.tree_validation import command_violation, require, tree_violation
from reapi_bridge.common.workers import matching_properties, platform_properties, tool_inputs_in, worker_spec
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.scheduler.scheduler import Job, JobOutcome, Platform, Scheduler

# How often a quiet Execute stream still sends the operation, so clients see it alive.
KEEPALIVE_SECONDS = 30.0


@dataclass(frozen=True)
class ExecuteRequest:
    instance_name: str
    action_digest: re_pb2.Digest  # checked after the instance and digest function
    skip_cache_lookup: bool = False
    digest_function: int = 0
    client: str = ""  # RequestMetadata.tool_invocation_id, else the peer: queues take turns by it


@dataclass(frozen=True)
class ExecuteStart:
    """How an Execute begins: served from the cache, refused for missing inputs, or queued."""

    action_digest: BlobDigest
    cached: Optional[re_pb2.ActionResult] = None
    missing: Tuple[BlobDigest, ...] = ()
    job: Optional[Job] = None


def platform_of(action: re_pb2.Action, command: re_pb2.Command) -> Platform:
    """What an executor must offer: Action.platform, falling back to Command.platform (which
    is all Pants sets), without the persistent-worker hints (never matched)."""
    return frozenset(matching_properties(platform_properties(action, command)).items())


def worker_key_of(action: re_pb2.Action, command: re_pb2.Command, directories) -> Optional[str]:
    """The key of the persistent worker that may serve the action (None: it runs one-shot),
    derived as the executor derives it. A malformed worker hint is INVALID_ARGUMENT."""
    spec = worker_spec(
        command,
        platform_properties(action, command),
        lambda startup: tool_inputs_in(
            files_under(BlobDigest.from_proto(action.input_root_digest), directories), startup, command.working_directory
        ),
    )
    return spec.key if spec else None


def should_cache(job: Job) -> bool:
    """Only a cacheable action's successful result (exit code 0) enters the action cache."""
    result = job.outcome.result if job.outcome else None
    return job.cacheable and result is not None and result.exit_code == 0


def cache_successful_result(action_cache: ActionCache) -> Callable[[Job], Optional[JobOutcome]]:
    """The scheduler's `on_success`: what enters the action cache when an executor reports a
    result (called before anyone sees the job done, outside the scheduler's lock). A result
    that breaks tree_validation's rules is not stored: the action fails, saying why."""

    def record(job: Job) -> Optional[JobOutcome]:
        try:
            refused = stored_result_violation(job.outcome.result, action_cache.cas)
        except InvalidArgument as exc:
            refused = exc
        if refused is not None:
            return JobOutcome(
                None,
                status_code=code_pb2.INVALID_ARGUMENT,
                message=f"executor {job.executor} reported a result for action {job.action_digest} "
                f"that the bridge refuses: {refused}",
            )
        if should_cache(job):
            action_cache.put(job.instance, job.action_digest, job.outcome.result, writer=f"executor {job.executor}")
        return None

    return record


class Watch:
    """One client stream following a job. The scheduler counts watchers to cancel abandoned
    jobs; `release` (idempotent) ends the watch, from the stream or from a disconnect callback."""

    def __init__(self, scheduler: Scheduler, job: Job) -> None:
        self._scheduler = scheduler
        self.job = job
        self._released = threading.Lock()
        scheduler.watch(job)

    def release(self) -> None:
        if self._released.acquire(blocking=False):
            self._scheduler.unwatch(self.job)

    def updates(self, still_wanted: Callable[[], bool], keepalive: float = KEEPALIVE_SECONDS) -> Iterator[Job]:
        """The job each time it changes, and every `keepalive` seconds while it does not; ends
        after the job is done, when the caller is gone, or when the bridge shuts down."""
        try:
            version = -1
            while still_wanted() and not self._scheduler.is_shut_down:
                current = self.job.version
                if current != version:
                    version = current
                    yield self.job
                    if self.job.done:
                        return
                if self._scheduler.wait_for_change(self.job, version, keepalive) == version:
                    yield self.job  # keep-alive
        finally:
            self.release()


class ExecutionInstance:
    def __init__(
        self,
        cas: ContentAddressableStorage,
        action_cache: ActionCache,
        scheduler: Scheduler,
        instances: InstanceRegistry,
        default_timeout_seconds: float,
        max_timeout_seconds: float,
        on_cache_hit: Optional[Callable[[ExecuteRequest, BlobDigest, re_pb2.ActionResult], None]] = None,
    ) -> None:
        self.on_cache_hit = on_cache_hit
        self.cas = cas
        self.action_cache = action_cache
        self.scheduler = scheduler
        self.instances = instances
        self.default_timeout = default_timeout_seconds
        self.max_timeout = max_timeout_seconds

    # ----------------------------------------------------------------------------- Execute

    def execute(self, request: ExecuteRequest) -> ExecuteStart:
        self.instances.require(request.instance_name)
        require_sha256(request.digest_function)
        action_digest = BlobDigest.from_proto(request.action_digest)
        if not request.skip_cache_lookup:
            hit = self.action_cache.get(request.instance_name, action_digest)
            if hit is not None:
                if self.on_cache_hit is not None:
                    self.on_cache_hit(request, action_digest, hit)
                return ExecuteStart(action_digest, cached=hit)
        missing: List[BlobDigest] = []
        action = self._load(action_digest, re_pb2.Action, missing)
        command = None
        directories: Dict[BlobDigest, re_pb2.Directory] = {}
        if action is not None:
            command = self._load(BlobDigest.from_proto(action.command_digest), re_pb2.Command, missing)
            root = BlobDigest.from_proto(action.input_root_digest)
            missing.extend(self._missing_inputs(root, directories))
            # What is there must be well-formed, even while other blobs are missing.
            if command is not None:
                require(command_violation(command), f"action {action_digest}: command: ")
            require(tree_violation(root, directories.get), f"action {action_digest}: input root: ")
        if missing:
            return ExecuteStart(action_digest, missing=tuple(sorted(set(missing))))
        assert action is not None and command is not None
        self._apply_timeout_policy(action)
        job = self.scheduler.submit(
            Job(
                instance=request.instance_name,
                action_digest=action_digest,
                action=action,
                platform=platform_of(action, command),
                client=request.client,
                cacheable=not action.do_not_cache,
                worker_key=worker_key_of(action, command, directories),
                argv_head=tuple(a[:200] for a in command.arguments[:4]),
            )
        )
        return ExecuteStart(action_digest, job=job)

    def _apply_timeout_policy(self, action: re_pb2.Action) -> None:
        requested = timeout_seconds(action)
        if requested > self.max_timeout:
            raise InvalidArgument(
                f"action timeout {requested:g}s is over the bridge's maximum of {self.max_timeout:g}s"
            )
        if requested <= 0:
            action.timeout.CopyFrom(duration_pb2.Duration(seconds=int(self.default_timeout)))

    def _load(self, digest: BlobDigest, message_cls, missing: List[BlobDigest]):
        blobs = self._present([digest])
        if digest not in blobs:
            missing.append(digest)
            return None
        try:
            return message_cls.FromString(blobs[digest])
        except Exception:
            raise InvalidArgument(f"blob {digest} is not a valid {message_cls.__name__}")

    def _present(self, digests: Sequence[BlobDigest]) -> Dict[BlobDigest, bytes]:
        found = {}
        for digest in digests:
            try:
                found[digest] = self.cas.read_bytes(digest)
            except NotFound:
                continue
        return found

    def _missing_inputs(self, root: BlobDigest, directories: Dict[BlobDigest, re_pb2.Directory]) -> List[BlobDigest]:
        """Every Directory and file of the input tree that is not in the CAS; the Directory
        messages found go into `directories`."""
        absent: List[BlobDigest] = []

        def fetch(level):
            found = parse_directories(self._present(level), re_pb2.Directory)
            absent.extend(d for d in level if d not in found)
            return found

        directories.update(walk_directories(root, fetch))
        return absent + self.cas.find_missing(sorted(set(file_digests(directories.values()))))

    # ----------------------------------------------------------------------------- operations

    def job(self, name: str) -> Job:
        job = self.scheduler.job(name)
        if job is None:
            raise NotFound(f"operation {name!r} is unknown or has expired")
        return job

    def cancel(self, name: str) -> None:
        self.job(name)
        self.scheduler.cancel(name)

    def watch(self, job: Job) -> Watch:
        return Watch(self.scheduler, job)
