"""Runs an action through a persistent worker, or says why it must run one-shot.

Each request works in a fresh directory: a singleplex worker's working directory is fixed when
it starts, so its exec root is emptied and the request's inputs staged into it (the chain of
directories down to the working directory is kept, emptied, so the worker's cwd stays valid);
a multiplex request gets a folder of its own, named in `sandbox_dir`. Outputs are collected from
there exactly as for a one-shot action, and the response's `output` becomes the action's stderr
(as Bazel shows it), stdout staying empty.

A worker that cannot start, dies, closes its stdout or writes anything but a well-formed
response is killed and dropped from the pool; the action then runs one-shot, and its stderr
starts with a line saying why. A timeout or a cancellation kills a singleplex worker; a
multiplex worker is asked to cancel the request, and killed if it does not answer in time.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from google.rpc import code_pb2

from reapi_bridge.client.client import Client
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.reapi import timeout_seconds
from reapi_bridge.common.workers import (
    WORKER_FLAG,
    WorkerSpec,
    is_worker_action,
    platform_properties,
    tool_inputs_in,
    worker_spec,
)
from reapi_bridge.executor.inputs import InputMaterializer, empty_except, make_dirs, remove_tree
from reapi_bridge.executor.results import RunOutcome, now, upload_result
from reapi_bridge.executor.users import RunAs, drop_privileges, hand_over
from reapi_bridge.executor.workers.pool import Lease, PoolKey, WorkerPool
from reapi_bridge.executor.workers.process import Pending, WorkerGone, WorkerProcess
from reapi_bridge.executor.wrappers import CHROOT_MARKER, CommandWrapper, Direct
from reapi_bridge.protos.blaze.worker.worker_protocol_pb2 import Input, WorkRequest
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

logger = logging.getLogger(__name__)

NOTE_PREFIX = "reapi-bridge executor: "
_TAIL_LINES = 20


@dataclass(frozen=True)
class WorkerAttempt:
    """The outcome when a worker ran the action; otherwise why it runs one-shot ("" when the
    action is not a worker action at all)."""

    outcome: Optional[RunOutcome] = None
    note: str = ""


def read_flagfile(path: Path, workdir: Path, allowed: Sequence[Path] = (), depth: int = 0) -> List[str]:
    """The request's arguments, as Bazel builds them: the flag file's lines, where a line
    `@OTHER` is replaced by OTHER's lines (relative to the working directory) and a line
    starting `@@` is passed on as it is (the worker undoes that escape). A flag file must be
    inside one of `allowed` (the input root, the input cache) once symlinks are resolved: the
    executor never reads its own files into a request."""
    if depth > 8:
        raise OSError(f"flag files nested more than 8 deep at {path.name}")
    real = path.resolve()
    if allowed and not any(real == root or root in real.parents for root in allowed):
        raise OSError(f"flag file {path.name} is outside the action's input root")
    lines = real.read_text().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    arguments: List[str] = []
    for line in lines:
        line = line[:-1] if line.endswith("\r") else line
        if line.startswith("@") and not line.startswith("@@") and len(line) > 1:
            arguments.extend(read_flagfile(workdir / line[1:], workdir, allowed, depth + 1))
        else:
            arguments.append(line)
    return arguments


def _chain(working_directory: str) -> List[str]:
    normal = posixpath.normpath(working_directory or ".")
    return [] if normal == "." else normal.split("/")


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-_TAIL_LINES:]
    return "".join(f"  | {line}\n" for line in lines)


class WorkerRunner:
    def __init__(
        self,
        pool: WorkerPool,
        cas: Client,
        materializer: InputMaterializer,
        home: Path,
        *,
        wrapper: CommandWrapper = Direct(),
        run_as: Optional[RunAs] = None,
        instance: str = "",
        append_only_caches: Optional[Path] = None,
    ) -> None:
        self.pool = pool
        self.cas = cas
        self.materializer = materializer
        self.home = home
        self.wrapper = wrapper
        self.run_as = run_as
        self.instance = instance
        self.append_only_caches = append_only_caches
        home.mkdir(parents=True, exist_ok=True)

    def run(
        self, action: re_pb2.Action, command: re_pb2.Command, meta: re_pb2.ExecutedActionMetadata, cancelled: threading.Event
    ) -> WorkerAttempt:
        props = platform_properties(action, command)
        if not self.pool.settings.enabled or not is_worker_action(command, props):
            return WorkerAttempt()
        root_digest = BlobDigest.from_proto(action.input_root_digest)
        listing = self.materializer.listing(root_digest)
        try:
            spec = worker_spec(command, props, lambda startup: tool_inputs_in(listing, startup, command.working_directory))
        except InvalidArgument as exc:
            return WorkerAttempt(note=f"{NOTE_PREFIX}not run by a persistent worker: {exc}\n")
        assert spec is not None
        pool_key: PoolKey = (self.instance, self.run_as.name if self.run_as else "", spec.key)
        lease = self.pool.acquire(pool_key, spec.multiplex)
        if lease is None:
            return WorkerAttempt(
                note=f"{NOTE_PREFIX}every persistent worker for key {spec.short_key} is busy and the pool is "
                "at its caps (--max-workers, --max-workers-per-key); the action ran one-shot\n"
            )
        try:
            worker, request_root = self._worker_and_inputs(lease, spec, pool_key, command, root_digest)
        except (OSError, WorkerGone) as exc:
            return WorkerAttempt(
                note=f"{NOTE_PREFIX}the persistent worker for key {spec.short_key} could not start: {exc}; "
                "the action ran one-shot\n"
            )
        try:
            return self._request(worker, spec, command, action, listing, request_root, meta, cancelled)
        finally:
            if spec.multiplex:
                remove_tree(request_root)

    # ----------------------------------------------------------------------------- set-up

    def _worker_and_inputs(
        self, lease: Lease, spec: WorkerSpec, pool_key: PoolKey, command: re_pb2.Command, root_digest: BlobDigest
    ) -> Tuple[WorkerProcess, Path]:
        """The worker (started if new) and the input root this request works in, staged."""
        chain = _chain(command.working_directory)
        worker = lease.worker
        if worker is None:
            home = self.home / uuid.uuid4().hex
            exec_root = home / "exec"
            try:
                home.mkdir(parents=True)
                self.materializer.materialize(root_digest, exec_root)
                make_dirs(exec_root, chain)
                hand_over(exec_root, self.run_as)
                worker = self._start(spec, pool_key, home, exec_root, exec_root.joinpath(*chain))
            except BaseException:
                self.pool.started(lease, None)
                remove_tree(home)
                raise
            self.pool.started(lease, worker)
            logger.info("started worker %s (pid %d, key %s, %s)", worker.id, worker.pid, spec.short_key, spec.protocol)
            if not spec.multiplex:
                return worker, exec_root
        try:
            if spec.multiplex:
                request_root = worker.cwd / ".requests" / uuid.uuid4().hex
                self.materializer.materialize(root_digest, request_root)
                make_dirs(request_root, chain)
                hand_over(request_root, self.run_as)
                return worker, request_root
            empty_except(worker.exec_root, chain)
            self.materializer.materialize(root_digest, worker.exec_root, keep=chain)
            hand_over(worker.exec_root, self.run_as)
            return worker, worker.exec_root
        except BaseException:
            self.pool.discard(worker, "its inputs could not be staged")
            self.pool.release(worker, served=False)
            raise

    def _start(self, spec: WorkerSpec, pool_key: PoolKey, home: Path, exec_root: Path, cwd: Path) -> WorkerProcess:
        root = str(exec_root)
        argv = [a.replace(CHROOT_MARKER, root) for a in spec.startup_args] + [WORKER_FLAG]
        env = {name: value.replace(CHROOT_MARKER, root) for name, value in spec.environment}
        binds = [home, self.materializer.dirs_dir]
        if self.append_only_caches:
            binds.append(self.append_only_caches)
        wrapped = drop_privileges(self.wrapper.wrap(argv, cwd=cwd, binds=binds), self.run_as)
        cleanup = getattr(self.wrapper, "cleanup_killed", None)
        return WorkerProcess(
            spec, pool_key, home, exec_root, wrapped, cwd, env,
            on_killed=(lambda pid: cleanup(pid)) if cleanup else (lambda pid: None),
        )

    # ----------------------------------------------------------------------------- request

    def _request(
        self,
        worker: WorkerProcess,
        spec: WorkerSpec,
        command: re_pb2.Command,
        action: re_pb2.Action,
        listing,
        request_root: Path,
        meta: re_pb2.ExecutedActionMetadata,
        cancelled: threading.Event,
    ) -> WorkerAttempt:
        workdir = request_root.joinpath(*_chain(command.working_directory))
        served = False
        try:
            for rel in [*command.output_paths, *command.output_files, *command.output_directories]:
                make_dirs(request_root, _chain(command.working_directory) + rel.split("/")[:-1])
            try:
                arguments = read_flagfile(
                    workdir / spec.flagfile, workdir, (request_root.resolve(), self.materializer.dirs_dir.resolve())
                )
            except (OSError, UnicodeDecodeError) as exc:
                return WorkerAttempt(note=f"{NOTE_PREFIX}the flag file {spec.flagfile} could not be read ({exc}); the action ran one-shot\n")
            request = WorkRequest(
                arguments=arguments,
                inputs=[Input(path=path, digest=f.digest.hash.encode()) for path, f in listing],
                request_id=worker.next_request_id(),
            )
            if spec.multiplex:
                request.sandbox_dir = str(workdir.relative_to(worker.cwd))
            meta.input_fetch_completed_timestamp.CopyFrom(now())
            meta.execution_start_timestamp.CopyFrom(now())
            try:
                pending = worker.submit(request)
            except WorkerGone as exc:
                return self._failed(worker, str(exc))
            status, message = self._wait(worker, pending, action, cancelled)
            if status == code_pb2.OK and pending.error is not None:
                return self._failed(worker, pending.error)
            meta.execution_completed_timestamp.CopyFrom(now())
            response = pending.response if status == code_pb2.OK else None
            logs = worker.home / f"logs-{uuid.uuid4().hex}"
            logs.mkdir()
            try:
                stdout_path, stderr_path = logs / "stdout", logs / "stderr"
                stdout_path.write_bytes(b"")
                stderr_path.write_bytes(response.output.encode() if response else b"")
                exit_code = response.exit_code if response else -1
                outcome = upload_result(self.cas, workdir, command, stdout_path, stderr_path, exit_code, meta, status, message)
            finally:
                shutil.rmtree(logs, ignore_errors=True)
            served = response is not None
            return WorkerAttempt(outcome=outcome)
        finally:
            self.pool.release(worker, served)

    def _wait(self, worker: WorkerProcess, pending: Pending, action: re_pb2.Action, cancelled: threading.Event):
        timeout = timeout_seconds(action)
        start = time.monotonic()
        while not pending.done.wait(0.1):
            if timeout and time.monotonic() - start > timeout:
                self._stop(worker, pending, "the action timed out")
                return code_pb2.DEADLINE_EXCEEDED, f"action timed out after {timeout:g}s and was killed"
            if cancelled.is_set():
                self._stop(worker, pending, "the action was cancelled")
                return code_pb2.CANCELLED, "action cancelled"
        return code_pb2.OK, ""

    def _stop(self, worker: WorkerProcess, pending: Pending, why: str) -> None:
        """Ends a request early: a multiplex worker is asked to cancel it, a singleplex one (or a
        multiplex one that does not answer in time) is killed."""
        if worker.spec.multiplex:
            try:
                worker.cancel(pending.request_id)
                if pending.done.wait(self.pool.settings.cancel_grace_seconds) and pending.error is None:
                    return
            except WorkerGone:
                pass
        self.pool.discard(worker, why)

    def _failed(self, worker: WorkerProcess, reason: str) -> WorkerAttempt:
        self.pool.discard(worker, reason)
        logger.warning("worker %s (key %s) failed: %s", worker.id, worker.spec.short_key, reason)
        tail = _tail(worker.stderr_tail())
        return WorkerAttempt(
            note=f"{NOTE_PREFIX}the persistent worker for key {worker.spec.short_key} (pid {worker.pid}) failed: "
            f"{reason}; the action ran one-shot\n" + (f"  the worker's stderr ended with:\n{tail}" if tail else "")
        )
