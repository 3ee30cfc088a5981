"""`up` / `down` / `supervise`: the embedded default — one bridge plus an x86-64 and an ARM64
executor on this machine, run by a supervisor process that restarts whichever of them exits.

`up` starts the supervisor (`reapi-bridge supervise`, detached in its own session, logging to
STATE_DIR/logs/supervisor.log) and waits until both executors have registered; the supervisor
starts the bridge, then the executors, and records what runs in STATE_DIR/cluster.json. The
bridge is always started again on the address it got the first time, so executors (which
reconnect by themselves) and Pants configurations keep working.

If the supervisor is gone but processes it started still run (it was killed with SIGKILL),
nothing would restart them: `up` stops those orphans (executors first) and starts afresh.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, List, Optional

import grpc

from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.cluster import secure as secure_setup
from reapi_bridge.cluster.processes import format_processes
from reapi_bridge.cluster.state import ClusterState, ProcessRecord, load_state
from reapi_bridge.cluster.supervisor import Backoff, ChildSpec, StartFailed, Supervisor, install_signal_handlers
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2, status_pb2_grpc

EXECUTOR_ISAS = ("x86-64", "arm-a64")
BRIDGE = "bridge"
STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL, per process


class ClusterError(Exception):
    pass


def executor_role(isa: str) -> str:
    return f"executor-{isa}"


def self_command() -> List[str]:
    """How to start this program again: the pex file, or the package with this sys.path."""
    argv0 = sys.argv[0]
    if argv0.endswith(".pex") and os.path.isfile(argv0):
        return [sys.executable, os.path.abspath(argv0)]
    return [sys.executable, "-m", "reapi_bridge"]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent does not reap it lingers as a zombie: not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _started_from(pid: int, state_dir: Path, *words: str) -> bool:
    """Whether live process `pid` is one this state dir's cluster started (its command line
    names the state dir and `words`), not an unrelated process that got a recorded pid again."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return True  # no /proc to tell: trust the record
    text = " ".join(argv)
    return str(state_dir) in text and all(w in argv for w in words)


def _tail(path: str, limit: int = 2000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def default_executor_slots() -> int:
    """Slots per executor that `up` starts: one per CPU, at least 2. Each executor gets them
    all: the emulated ARM64 executor's actions are dominated by process start-up (waiting, not
    computing), and the two executors are rarely busy at once."""
    return max(2, os.cpu_count() or 1)


def fetch_status(address: str, auth: ClientAuth = ClientAuth(), timeout: float = 10.0) -> status_pb2.StatusReport:
    with open_channel(address, auth) as channel:
        return status_pb2_grpc.BridgeStatusStub(channel).GetStatus(status_pb2.GetStatusRequest(), timeout=timeout)


# ---------------------------------------------------------------------------- the supervisor


def supervise(
    state_dir: Path,
    listen: str,
    config: Optional[Path],
    concurrency: int,
    backoff: Backoff = Backoff(),
    workers: bool = True,
    secure: bool = False,
    http_listen: str = "",
) -> int:
    """The supervisor process (`reapi-bridge supervise`): runs the bridge and the executors until
    SIGTERM or SIGINT. 1 if one of them could not start the first time (the reason is in the
    state file and the log), else 0."""
    state_dir = state_dir.resolve()
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bridge_dir = state_dir / "bridge"
    address_file = bridge_dir / "address"
    address_file.unlink(missing_ok=True)
    # The first start listens where asked (port 0: any free port); every later start on the
    # address the first one got.
    where = {"listen": listen, "address": "", "http": http_listen}
    supervisor: Optional[Supervisor] = None
    files = secure_setup.prepare(state_dir, bridge_dir, listen, config, EXECUTOR_ISAS) if secure else None
    if files is not None:
        config = files.config

    def bridge_argv() -> List[str]:
        args = [*self_command(), "serve", "--state-dir", str(bridge_dir), "--listen", where["listen"]]
        if where["http"]:
            args += ["--http-listen", where["http"]]
        return args + (["--config", str(config)] if config else [])

    def bridge_ready() -> bool:
        try:
            address = address_file.read_text().strip()
        except FileNotFoundError:
            return False
        if not address:
            return False
        where["address"], where["listen"] = address, address.split("://", 1)[-1]
        assert supervisor is not None
        supervisor.state.address = address
        try:
            http = (bridge_dir / "http-address").read_text().strip()
        except FileNotFoundError:
            http = ""
        if http:  # later starts keep the port the first one got
            where["http"] = http.split("://", 1)[-1]
            supervisor.state.http_address = http
        supervisor.save()
        return True

    def executor_argv(isa: str) -> Callable[[], List[str]]:
        return lambda: [
            *self_command(),
            "executor",
            "--bridge", where["address"],
            "--isa", isa,
            "--name", f"local-{isa}",
            "--concurrency", str(concurrency),
            "--work-dir", str(state_dir / "executors" / isa),
            "--rootfs", str(state_dir / "arm64-rootfs"),
            *([] if workers else ["--no-workers"]),
            *(
                []
                if files is None
                else [
                    "--tls-ca", str(files.ca),
                    "--token-file", str(files.executor_token(isa)),
                    "--signing-key", str(files.signing_key(isa)),
                ]
            ),
        ]

    env = child_env()
    children = [ChildSpec(BRIDGE, bridge_argv, logs / "bridge.log", ready=bridge_ready, env=env)]
    children += [
        ChildSpec(executor_role(isa), executor_argv(isa), logs / f"{executor_role(isa)}.log", env=env)
        for isa in EXECUTOR_ISAS
    ]
    supervisor = Supervisor(
        children,
        state_dir / "cluster.json",
        backoff=backoff,
        stop_timeout=STOP_TIMEOUT,
        log=str(logs / "supervisor.log"),
    )
    install_signal_handlers(supervisor)
    try:
        supervisor.run()
    except StartFailed:
        return 1
    return 0


# ---------------------------------------------------------------------------- up, down, status


class LocalCluster:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.state_file = self.state_dir / "cluster.json"
        self.logs = self.state_dir / "logs"
        self.supervisor_log = self.logs / "supervisor.log"

    def load(self) -> ClusterState:
        return load_state(self.state_file)

    def supervisor_running(self, state: ClusterState) -> bool:
        return _started_from(state.supervisor.pid, self.state_dir, "supervise")

    def _live_children(self, state: ClusterState) -> List[ProcessRecord]:
        return [p for p in state.processes if _started_from(p.pid, self.state_dir)]

    def client_auth(self) -> ClientAuth:
        """How `status` and `up` reach this state dir's bridge: as its local admin when it was
        started with --secure."""
        files = secure_setup.SecureFiles(self.state_dir / "secure")
        address = self.load().address
        return files.admin() if address.startswith("grpcs://") and files.exists() else ClientAuth()

    def up(
        self,
        listen: str,
        config: Optional[Path],
        concurrency: Optional[int] = None,
        log=print,
        workers: bool = True,
        secure: bool = False,
        http_listen: str = "",
    ) -> str:
        """Starts the supervisor unless it runs, executors with `concurrency` slots each
        (default: default_executor_slots()); waits until both executors have registered;
        returns the bridge address. When it started the supervisor and a child could not
        start, it stops everything again and raises ClusterError naming the child's log."""
        concurrency = concurrency or default_executor_slots()
        self.logs.mkdir(parents=True, exist_ok=True)
        state = self.load()
        if self.supervisor_running(state):
            pid = state.supervisor.pid
            address = self._wait_for_bridge(pid)
            log(f"reapi-bridge already running (pid {self.load().process(BRIDGE).pid}) on {address}, "
                f"supervised by pid {pid}")
            self._wait_for_executors(address, fresh=False)
            return address
        orphans = self._live_children(state)
        if orphans:
            log(f"the supervisor (pid {state.supervisor.pid}) is gone; stopping what it left running: "
                + ", ".join(f"{p.role} (pid {p.pid})" for p in orphans))
            _stop_processes(orphans, log)
        self.state_file.unlink(missing_ok=True)
        pid = self._start_supervisor(listen, config, concurrency, workers, secure, http_listen)
        try:
            address = self._wait_for_bridge(pid)
            state = self.load()
            log(f"started reapi-bridge (pid {state.process(BRIDGE).pid}) on {address}, supervised by pid {pid}")
            self._wait_for_executors(address, fresh=True)
        except BaseException:
            self._stop_supervisor(pid)
            raise
        state = self.load()
        for isa in EXECUTOR_ISAS:
            log(f"started the {isa} executor (pid {state.process(executor_role(isa)).pid})")
        return address

    def _start_supervisor(
        self, listen: str, config: Optional[Path], concurrency: int, workers: bool = True, secure: bool = False,
        http_listen: str = "",
    ) -> int:
        args = [
            "supervise",
            *(["--secure"] if secure else []),
            "--http-listen", http_listen,
            "--state-dir", str(self.state_dir),
            "--listen", listen,
            "--concurrency", str(concurrency),
            *([] if workers else ["--no-workers"]),
        ]
        if config:
            args += ["--config", str(config.resolve())]
        with open(self.supervisor_log, "ab") as log_file:
            proc = subprocess.Popen(
                [*self_command(), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=child_env(),
                start_new_session=True,
            )
        return proc.pid

    def _wait_for_bridge(self, supervisor_pid: int, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.load()
            if state.error:
                failed = [p for p in state.processes if p.last_exit]
                raise ClusterError(state.error + "".join(f":\n{_tail(p.log)}" for p in failed[:1]))
            if state.address:
                return state.address
            if not _alive(supervisor_pid):
                raise ClusterError(
                    f"the supervisor (pid {supervisor_pid}) exited; see {self.supervisor_log}:\n"
                    + _tail(str(self.supervisor_log))
                )
            if time.monotonic() > deadline:
                raise ClusterError(f"reapi-bridge did not start within {timeout:g}s; see {self.logs / 'bridge.log'}")
            time.sleep(0.1)

    def _wait_for_executors(self, address: str, fresh: bool, timeout: float = 300.0) -> None:
        """Until a session of each executor checked in just now. With `fresh` (this `up`
        started them), an executor that exited before it registered fails the start."""
        wanted = {f"local-{isa}" for isa in EXECUTOR_ISAS}
        deadline = time.monotonic() + timeout
        while True:
            try:
                # A session of a killed executor lingers until its lease times out; only a
                # session that checked in just now proves the executor is up.
                registered = {
                    e.name.rsplit("/", 1)[0]
                    for e in fetch_status(address, self.client_auth()).executors
                    if e.seconds_since_update < 3
                }
            except grpc.RpcError:
                registered = set()  # the bridge is being started again
            if wanted <= registered:
                return
            state = self.load()
            if fresh:
                for isa in EXECUTOR_ISAS:
                    p = state.process(executor_role(isa))
                    if p is not None and p.last_exit:
                        raise ClusterError(
                            f"{p.role} exited ({p.last_exit}) before it registered; see {p.log}:\n" + _tail(p.log)
                        )
            if not _alive(state.supervisor.pid):
                raise ClusterError(
                    f"the supervisor (pid {state.supervisor.pid}) exited; see {self.supervisor_log}:\n"
                    + _tail(str(self.supervisor_log))
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"executors {sorted(wanted - registered)} did not register within {timeout:g}s; "
                    f"see the logs in {self.logs}"
                )
            time.sleep(0.2)

    def _stop_supervisor(self, pid: int, log=lambda *_: None) -> None:
        """SIGTERM to the supervisor, which stops its children; SIGKILL if it does not finish
        in time, then whatever it left running is stopped here."""
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            # It stops its children one after another, each within STOP_TIMEOUT.
            deadline = time.monotonic() + STOP_TIMEOUT * (len(EXECUTOR_ISAS) + 1) + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                log(f"the supervisor (pid {pid}) did not stop in time; killed it")
        _stop_processes(self._live_children(self.load()))

    def down(self, log=print) -> None:
        """Stops the supervisor, which stops the executors, then the bridge; or, if the
        supervisor is gone, what it left running. Removes the state file."""
        state = self.load()
        supervised = self.supervisor_running(state)
        running = self._live_children(state)
        if not supervised and not running:
            self.state_file.unlink(missing_ok=True)
            log(f"nothing is running from {self.state_dir}")
            return
        if supervised:
            self._stop_supervisor(state.supervisor.pid, log)
        else:
            _stop_processes(running)
        for p in sorted(running, key=lambda p: p.role == BRIDGE):
            log(f"stopped {p.role} (pid {p.pid})")
        if supervised:
            log(f"stopped the supervisor (pid {state.supervisor.pid})")
        self.state_file.unlink(missing_ok=True)

    def processes_report(self) -> str:
        """The "processes" section of `status`; "" if nothing was started from this state dir."""
        state = self.load()
        if not state.processes:
            return ""
        return format_processes(state, self.supervisor_running(state), _alive, time.time())


def _stop_processes(processes: Iterable[ProcessRecord], log=lambda *_: None) -> None:
    """Executors first, so they hand back their leases to a bridge that is still there:
    SIGTERM, then SIGKILL after STOP_TIMEOUT."""
    for p in sorted(processes, key=lambda p: p.role == BRIDGE):
        pid = p.pid
        if not _alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        log(f"stopped {p.role} (pid {pid})")
