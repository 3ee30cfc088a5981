"""Runs one REAPI action: inputs in, process run, outputs and logs uploaded, ActionResult out."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Optional, Tuple

from google.rpc import code_pb2

from reapi_bridge.client.client import Client
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.reapi import timeout_seconds
from reapi_bridge.common.tree_validation import InvalidTree, command_violation
from reapi_bridge.executor.inputs import InputMaterializer, make_dirs, remove_tree
from reapi_bridge.executor.outputs import OutputRefused
from reapi_bridge.executor.results import RunOutcome, now, upload_result
from reapi_bridge.executor.users import RunAs, drop_privileges, hand_over
from reapi_bridge.executor.workers.runner import WorkerRunner
from reapi_bridge.executor.wrappers import CHROOT_MARKER, CommandWrapper, Direct
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

logger = logging.getLogger(__name__)

__all__ = ["ActionRunner", "CHROOT_MARKER", "RunAs", "RunOutcome"]


class ActionRunner:
    def __init__(
        self,
        cas: Client,
        materializer: InputMaterializer,
        work_root: Path,
        worker_name: str,
        *,
        wrapper: CommandWrapper = Direct(),
        append_only_caches: Optional[Path] = None,
        run_as: Optional[RunAs] = None,
        workers: Optional[WorkerRunner] = None,
    ) -> None:
        self.cas = cas
        self.materializer = materializer
        self.work_root = work_root
        self.worker_name = worker_name
        self.wrapper = wrapper
        self.append_only_caches = append_only_caches
        self.run_as = run_as
        self.workers = workers
        work_root.mkdir(parents=True, exist_ok=True)
        if append_only_caches is not None:
            append_only_caches.mkdir(parents=True, exist_ok=True)
            if run_as is not None:
                os.chown(append_only_caches, run_as.uid, run_as.gid)

    def run(self, action: re_pb2.Action, cancelled: threading.Event) -> RunOutcome:
        """Runs the action. A malformed command or input tree is refused before anything is
        staged, and outputs that would escape are refused after the run: either way the action
        fails with INVALID_ARGUMENT and a message naming the path and the rule."""
        meta = re_pb2.ExecutedActionMetadata(worker=self.worker_name, worker_start_timestamp=now())
        meta.input_fetch_start_timestamp.CopyFrom(now())
        command = re_pb2.Command.FromString(self.cas.read(BlobDigest.from_proto(action.command_digest)))
        refused = command_violation(command)
        if refused is not None:
            return self._refused(meta, f"the command is refused: {refused}")
        try:
            self.materializer.check(BlobDigest.from_proto(action.input_root_digest))
            return self._run(action, command, meta, cancelled)
        except InvalidTree as exc:
            return self._refused(meta, f"the action is refused: {exc}")
        except OutputRefused as exc:
            return self._refused(meta, f"the action's outputs are refused: {exc}")

    def _refused(self, meta: re_pb2.ExecutedActionMetadata, message: str) -> RunOutcome:
        logger.warning("%s: %s", self.worker_name, message)
        meta.worker_completed_timestamp.CopyFrom(now())
        return RunOutcome(re_pb2.ActionResult(execution_metadata=meta), code_pb2.INVALID_ARGUMENT, message)

    def _run(self, action, command, meta, cancelled) -> RunOutcome:
        note = ""
        if self.workers is not None:
            attempt = self.workers.run(action, command, meta, cancelled)
            if attempt.outcome is not None:
                return attempt.outcome
            note = attempt.note
            if cancelled.is_set():
                return RunOutcome(re_pb2.ActionResult(execution_metadata=meta), code_pb2.CANCELLED, "action cancelled")
        sandbox = self.work_root / uuid.uuid4().hex
        try:
            root = sandbox / "root"
            self.materializer.materialize(BlobDigest.from_proto(action.input_root_digest), root)
            meta.input_fetch_completed_timestamp.CopyFrom(now())
            return self._run_in(sandbox, root, action, command, meta, cancelled, note)
        finally:
            remove_tree(sandbox)

    def _run_in(self, sandbox, root, action, command, meta, cancelled, note: str = "") -> RunOutcome:
        root_str = str(root)
        argv = [a.replace(CHROOT_MARKER, root_str) for a in command.arguments]
        env = {v.name: v.value.replace(CHROOT_MARKER, root_str) for v in command.environment_variables}
        # One line per executed action, so an executor's log tells what it ran (cache hits
        # never reach it).
        logger.info("%s runs action %s: %s", self.worker_name, action.command_digest.hash[:12], shlex.join(argv)[:300])
        workdir = root / command.working_directory
        # Never through a symlink of the input tree (the shared input cache is one).
        chain = [p for p in command.working_directory.split("/") if p]
        make_dirs(root, chain)
        for rel in [*command.output_paths, *command.output_files, *command.output_directories]:
            make_dirs(root, chain + rel.split("/")[:-1])
        if self.run_as is not None:
            hand_over(root, self.run_as)
            os.chown(sandbox, self.run_as.uid, self.run_as.gid)
        # The sandbox links into the input cache's shared directories (symlinks to absolute
        # paths), so an emulated userland must see those at the same paths too.
        binds = [sandbox, self.materializer.dirs_dir]
        if self.append_only_caches:
            binds.append(self.append_only_caches)
        status_file = sandbox / "exit-status"
        if getattr(self.wrapper, "exit_status_is_last_process", False):
            # proot exits with the status of whichever guest process ends last, which may be a
            # leftover background child; a shell inside records the command's own status.
            argv = [
                "/bin/sh", "-c", 'st=0; "$@" || st=$?; echo "$st" > ' + f"'{status_file}'" + '; exit "$st"',
                "crossbuild-action", *argv,
            ]
        wrapped = drop_privileges(self.wrapper.wrap(argv, cwd=workdir, binds=binds), self.run_as)
        timeout = timeout_seconds(action)
        stdout_path, stderr_path = sandbox / "stdout", sandbox / "stderr"
        meta.execution_start_timestamp.CopyFrom(now())
        status, message, exit_code = code_pb2.OK, "", -1
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            if note:
                err.write(note.encode())
                err.flush()
            try:
                proc = subprocess.Popen(
                    wrapped,
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                err.write(f"could not start {argv[0] if argv else '(empty argv)'}: {exc}\n".encode())
                exit_code = 127
                proc = None
            if proc is not None:
                status, message, exit_code = self._wait(proc, timeout, cancelled)
                if status == code_pb2.OK and status_file.exists():
                    recorded = status_file.read_text().strip()
                    if recorded.lstrip("-").isdigit():
                        exit_code = int(recorded)
        meta.execution_completed_timestamp.CopyFrom(now())
        return upload_result(self.cas, workdir, command, stdout_path, stderr_path, exit_code, meta, status, message)

    def _wait(self, proc: subprocess.Popen, timeout: float, cancelled: threading.Event) -> Tuple[int, str, int]:
        start = time.monotonic()
        while True:
            try:
                code = proc.wait(timeout=0.1)
                return code_pb2.OK, "", code
            except subprocess.TimeoutExpired:
                pass
            if timeout and time.monotonic() - start > timeout:
                self._kill_group(proc)
                return code_pb2.DEADLINE_EXCEEDED, f"action timed out after {timeout:g}s and was killed", proc.returncode
            if cancelled.is_set():
                self._kill_group(proc)
                return code_pb2.CANCELLED, "action cancelled", proc.returncode

    @staticmethod
    def _kill_group(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
