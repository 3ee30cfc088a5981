"""One persistent worker process: requests written to its stdin, responses read from its
stdout by a thread of its own and handed to whoever waits for that request id.

The worker runs in its own session (process group), so killing it kills what it started, an
emulated userland's guest processes included. Anything but a well-formed response for a
request in flight (end of file, garbage, an unknown request id) makes the worker dead: every
waiter gets WorkerGone, and the pool replaces it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from reapi_bridge.common.workers import WorkerSpec
from reapi_bridge.executor.workers.protocol import (
    PipeReader,
    WorkerProtocolError,
    encode_request,
    read_response,
)
from reapi_bridge.protos.blaze.worker.worker_protocol_pb2 import WorkRequest, WorkResponse

logger = logging.getLogger(__name__)

# How much of a dead worker's stderr log a failure message quotes.
STDERR_TAIL_BYTES = 2000


class WorkerGone(Exception):
    """The worker died or broke the protocol before answering."""


@dataclass
class Pending:
    request_id: int
    done: threading.Event = field(default_factory=threading.Event)
    response: Optional[WorkResponse] = None
    error: Optional[str] = None


def _stat_fields(pid: int) -> List[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        # After the command name: state(0) ppid(1) pgrp(2) session(3) ... rss(21), in pages.
        return f.read().rsplit(b")", 1)[1].split()


def _children(pid: int) -> List[int]:
    found: List[int] = []
    for task in os.scandir(f"/proc/{pid}/task"):
        with open(f"{task.path}/children", "rb") as f:
            found.extend(int(c) for c in f.read().split())
    return found


def tree_rss_bytes(pid: int) -> int:
    """The resident memory of a process and all its descendants (a worker and what it
    started: proot, the emulator, the guest), read from /proc/PID/task/*/children."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            total += int(_stat_fields(current)[21]) * page
            todo.extend(_children(current))
        except (OSError, IndexError, ValueError):
            continue
    return total


class WorkerProcess:
    def __init__(
        self,
        spec: WorkerSpec,
        pool_key: tuple,
        home: Path,
        exec_root: Path,
        argv: Sequence[str],
        cwd: Path,
        env: Dict[str, str],
        on_killed: Callable[[int], None] = lambda pid: None,
    ) -> None:
        self.spec = spec
        self.pool_key = pool_key
        self.id = uuid.uuid4().hex[:8]
        self.home = home
        self.exec_root = exec_root  # where singleplex requests' inputs are staged
        self.cwd = cwd
        self.stderr_log = home / "stderr.log"
        self._on_killed = on_killed
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: Dict[int, Pending] = {}
        self._next_id = 1
        self.dead_reason: Optional[str] = None
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self.requests_served = 0
        self.in_flight = 0
        self.rss_bytes = 0
        with open(self.stderr_log, "ab") as err:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                bufsize=0,
            )
        self._reader = PipeReader(self.proc.stdout.fileno())
        self._thread = threading.Thread(target=self._read_loop, name=f"worker-{self.id}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.dead_reason is None

    # ----------------------------------------------------------------------------- requests

    def next_request_id(self) -> int:
        """0 for a singleplex worker (one request at a time), else a fresh nonzero id."""
        if not self.spec.multiplex:
            return 0
        with self._lock:
            rid, self._next_id = self._next_id, self._next_id % 0x7FFFFFFF + 1
            return rid

    def submit(self, request: WorkRequest) -> Pending:
        pending = Pending(request.request_id)
        with self._lock:
            if self.dead_reason is not None:
                raise WorkerGone(self.dead_reason)
            self._pending[request.request_id] = pending
        self._write(request)
        return pending

    def cancel(self, request_id: int) -> None:
        """Asks a multiplex worker to stop a request (its response still comes)."""
        self._write(WorkRequest(request_id=request_id, cancel=True))

    def _write(self, request: WorkRequest) -> None:
        data = encode_request(request, self.spec.protocol)
        try:
            with self._write_lock:
                self.proc.stdin.write(data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            self._die(f"its stdin is closed ({exc})")
            raise WorkerGone(self.dead_reason or "stdin closed") from None

    def _read_loop(self) -> None:
        try:
            self._read_responses()
        finally:
            self.proc.stdout.close()

    def _read_responses(self) -> None:
        while True:
            try:
                response = read_response(self._reader, self.spec.protocol)
            except EOFError:
                code = self.proc.poll()
                if code is None:
                    try:
                        code = self.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        code = None
                self._die("it closed its stdout" + (f" and exited with {code}" if code is not None else ""))
                return
            except (WorkerProtocolError, OSError) as exc:
                self._die(f"it wrote something that is not a WorkResponse: {exc}")
                return
            with self._lock:
                pending = self._pending.pop(response.request_id, None)
            if pending is None:
                self._die(f"it answered request id {response.request_id}, which is not in flight")
                return
            pending.response = response
            pending.done.set()

    # ----------------------------------------------------------------------------- death

    def _die(self, reason: str) -> None:
        with self._lock:
            if self.dead_reason is not None:
                return
            self.dead_reason = reason
            waiting: List[Pending] = list(self._pending.values())
            self._pending.clear()
        for pending in waiting:
            pending.error = reason
            pending.done.set()
        self._kill_group()

    def kill(self, reason: str) -> None:
        """Kills the worker and everything it started; waiters get WorkerGone(reason)."""
        self._die(reason)

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s (pid %d) did not exit after SIGKILL", self.id, self.proc.pid)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._on_killed(self.proc.pid)

    def stderr_tail(self) -> str:
        try:
            with open(self.stderr_log, "rb") as f:
                f.seek(max(0, os.path.getsize(self.stderr_log) - STDERR_TAIL_BYTES))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def measure_rss(self) -> int:
        self.rss_bytes = tree_rss_bytes(self.proc.pid) if self.alive else 0
        return self.rss_bytes
