"""A supervisor of child processes, as a build daemon needs one: it starts its children in order
(each one ready before the next), starts again any child that exits while it was not asked to
stop, waiting longer after each quick exit, and stops them in reverse order.

Restart backoff: the first restart waits `initial` seconds, each further one twice as long up
to `cap`; a child that stayed up `reset_after` seconds or more before exiting starts again after
`initial` (its crash counter is reset). So a child that cannot start at all costs one attempt
per `cap` seconds, not a busy loop.

Everything it does is recorded in a state file (see `state`): per child the pid, the start
time, how often it was restarted, and how and when it last exited.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence

from reapi_bridge.cluster.state import (
    RESTARTING,
    RUNNING,
    STOPPED,
    ClusterState,
    ProcessRecord,
    SupervisorRecord,
    describe_exit,
    save_state,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the start that follows `failures` quick exits in a row
        (the first restart follows one: `initial`)."""
        return min(self.cap, self.initial * 2 ** min(max(failures - 1, 0), 32))


@dataclass
class ChildSpec:
    role: str
    # Asked at every start, so a restart can differ from the first start (the bridge is
    # started again on the port it got the first time).
    argv: Callable[[], Sequence[str]]
    log: Path
    # First start only: polled until true before the next child starts. The child exiting
    # first, or `ready_timeout` passing, fails the start.
    ready: Optional[Callable[[], bool]] = None
    ready_timeout: float = 120.0
    env: Optional[Mapping[str, str]] = None


class StartFailed(Exception):
    """A child could not start the first time."""


class Supervisor:
    def __init__(
        self,
        children: Sequence[ChildSpec],
        state_file: Path,
        *,
        backoff: Backoff = Backoff(),
        stop_timeout: float = 30.0,
        poll_interval: float = 0.2,
        log: str = "",
    ) -> None:
        self.children = list(children)
        self.state_file = state_file
        self.backoff = backoff
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.state = ClusterState(
            supervisor=SupervisorRecord(pid=os.getpid(), started=time.time(), log=log),
            processes=[ProcessRecord(role=c.role, log=str(c.log)) for c in self.children],
        )
        self._procs: Dict[str, subprocess.Popen] = {}
        self._up_since: Dict[str, float] = {}  # monotonic start time of each running child
        self._failures: Dict[str, int] = {c.role: 0 for c in self.children}  # quick exits in a row
        self._restart_due: Dict[str, float] = {}  # monotonic time of each pending restart
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Asks `run` to stop every child and return; safe from a signal handler or a thread."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def save(self) -> None:
        save_state(self.state_file, self.state)

    def record(self, role: str) -> ProcessRecord:
        rec = self.state.process(role)
        assert rec is not None, role
        return rec

    def run(self) -> None:
        """Starts every child, keeps them running until `request_stop`, then stops them
        (the last started first). Raises StartFailed, after stopping what it started, when a
        child cannot start the first time; the reason is also recorded as the state's error."""
        self.save()
        try:
            for spec in self.children:
                if self.stopping:
                    break
                self._start(spec)
                self._await_ready(spec)
            while not self.stopping:
                self._tick()
                self._stopping.wait(self.poll_interval)
        except StartFailed as exc:
            self.state.error = str(exc)
            logger.error("%s", exc)
            raise
        finally:
            self.stop_all()

    # ------------------------------------------------------------------ starting

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen:
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log_file:
            return subprocess.Popen(
                list(spec.argv()),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=dict(spec.env) if spec.env is not None else None,
                # Its own session: a signal meant for the supervisor's group does not reach
                # it, and its own children can be stopped with it.
                start_new_session=True,
            )

    def _start(self, spec: ChildSpec) -> None:
        try:
            proc = self._spawn(spec)
        except OSError as exc:
            raise StartFailed(f"{spec.role} could not be started: {exc}") from None
        rec = self.record(spec.role)
        rec.pid, rec.state, rec.started, rec.restart_at = proc.pid, RUNNING, time.time(), 0.0
        self._procs[spec.role] = proc
        self._up_since[spec.role] = time.monotonic()
        logger.info("started %s (pid %d)", spec.role, proc.pid)
        self.save()

    def _await_ready(self, spec: ChildSpec) -> None:
        if spec.ready is None:
            return
        proc = self._procs[spec.role]
        deadline = time.monotonic() + spec.ready_timeout
        while not spec.ready():
            returncode = proc.poll()
            if returncode is not None:
                self._procs.pop(spec.role)
                rec = self.record(spec.role)
                rec.pid, rec.state = 0, STOPPED
                rec.last_exit, rec.last_exit_at = describe_exit(returncode), time.time()
                raise StartFailed(f"{spec.role} exited ({rec.last_exit}) before it was ready; see {spec.log}")
            if self.stopping:
                return
            if time.monotonic() > deadline:
                raise StartFailed(f"{spec.role} was not ready within {spec.ready_timeout:g}s; see {spec.log}")
            self._stopping.wait(self.poll_interval)

    # ------------------------------------------------------------------ watching

    def _tick(self) -> None:
        """Notices children that exited and starts those whose backoff has passed."""
        for spec in self.children:
            if self.stopping:
                return
            proc = self._procs.get(spec.role)
            if proc is not None:
                returncode = proc.poll()
                if returncode is not None:
                    self._exited(spec, proc.pid, describe_exit(returncode))
            elif spec.role in self._restart_due and time.monotonic() >= self._restart_due[spec.role]:
                del self._restart_due[spec.role]
                self.record(spec.role).restarts += 1
                try:
                    self._start(spec)
                except StartFailed as exc:
                    self._up_since[spec.role] = time.monotonic()
                    self._exited(spec, 0, str(exc))

    def _exited(self, spec: ChildSpec, pid: int, how: str) -> None:
        self._procs.pop(spec.role, None)
        now = time.monotonic()
        up_for = now - self._up_since.get(spec.role, now)
        if up_for >= self.backoff.reset_after:
            self._failures[spec.role] = 0
        self._failures[spec.role] += 1
        delay = self.backoff.delay(self._failures[spec.role])
        self._restart_due[spec.role] = now + delay
        rec = self.record(spec.role)
        rec.pid, rec.state = 0, RESTARTING
        rec.last_exit, rec.last_exit_at, rec.restart_at = how, time.time(), time.time() + delay
        logger.warning(
            "%s (pid %d) exited unexpectedly (%s) after %.1fs up; starting it again in %gs (see %s)",
            spec.role, pid, how, up_for, delay, spec.log,
        )
        self.save()

    # ------------------------------------------------------------------ stopping

    def stop_all(self) -> None:
        """Stops every child, the last started first: SIGTERM, then SIGKILL (to its whole
        process group) after `stop_timeout`. No child is started again afterwards."""
        self._stopping.set()
        self._restart_due.clear()
        for spec in reversed(self.children):
            rec = self.record(spec.role)
            proc = self._procs.pop(spec.role, None)
            if proc is not None:
                self._stop(spec.role, proc)
                rec.last_exit, rec.last_exit_at = describe_exit(proc.returncode), time.time()
            rec.pid, rec.state, rec.restart_at = 0, STOPPED, 0.0
            self.save()

    def _stop(self, role: str, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) still runs %gs after SIGTERM; killing it", role, proc.pid, self.stop_timeout)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
                proc.wait()
        logger.info("stopped %s (pid %d): %s", role, proc.pid, describe_exit(proc.returncode))


def install_signal_handlers(supervisor: Supervisor) -> None:
    """SIGTERM and SIGINT stop the supervisor and its children (from the main thread only)."""

    def on_signal(signum, frame):
        logger.info("received %s; stopping", signal.Signals(signum).name)
        supervisor.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

