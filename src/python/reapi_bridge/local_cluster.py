"""`up` / `down`: the embedded default — one bridge plus an x86-64 and an ARM64 executor on
this machine, as background processes recorded in STATE_DIR/cluster.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

import grpc

from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2, status_pb2_grpc

EXECUTOR_ISAS = ("x86-64", "arm-a64")


class ClusterError(Exception):
    pass


@dataclass
class ClusterState:
    address: str = ""
    processes: List[dict] = field(default_factory=list)  # {"role", "pid", "log"}


def self_command() -> List[str]:
    """How to start this program again: the pex file, or the package with this sys.path."""
    argv0 = sys.argv[0]
    if argv0.endswith(".pex") and os.path.isfile(argv0):
        return [sys.executable, os.path.abspath(argv0)]
    return [sys.executable, "-m", "reapi_bridge"]


def _alive(pid: int) -> bool:
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


def default_executor_slots() -> int:
    """Slots per executor that `up` starts: one per CPU, at least 2. Each executor gets them
    all: the emulated ARM64 executor's actions are dominated by process start-up (waiting, not
    computing), and the two executors are rarely busy at once."""
    return max(2, os.cpu_count() or 1)


def fetch_status(address: str, timeout: float = 10.0) -> status_pb2.StatusReport:
    with grpc.insecure_channel(address.replace("grpc://", "")) as channel:
        return status_pb2_grpc.BridgeStatusStub(channel).GetStatus(status_pb2.GetStatusRequest(), timeout=timeout)


class LocalCluster:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.state_file = self.state_dir / "cluster.json"
        self.logs = self.state_dir / "logs"

    def load(self) -> ClusterState:
        if not self.state_file.exists():
            return ClusterState()
        return ClusterState(**json.loads(self.state_file.read_text()))

    def save(self, state: ClusterState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        os.replace(tmp, self.state_file)

    def up(self, listen: str, config: Optional[Path], concurrency: Optional[int] = None, log=print) -> str:
        """Starts what is not running, executors with `concurrency` slots each (default:
        default_executor_slots()); returns the bridge address."""
        concurrency = concurrency or default_executor_slots()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        state = self.load()
        bridge = next((p for p in state.processes if p["role"] == "bridge"), None)
        if bridge is None or not _alive(bridge["pid"]):
            self._stop_all(state)
            state = ClusterState()
            state.address, pid = self._start_bridge(listen, config)
            state.processes.append({"role": "bridge", "pid": pid, "log": str(self.logs / "bridge.log")})
            self.save(state)
            log(f"started reapi-bridge (pid {pid}) on {state.address}")
        else:
            log(f"reapi-bridge already running (pid {bridge['pid']}) on {state.address}")
        for isa in EXECUTOR_ISAS:
            role = f"executor-{isa}"
            proc = next((p for p in state.processes if p["role"] == role), None)
            if proc is not None and _alive(proc["pid"]):
                continue
            state.processes = [p for p in state.processes if p["role"] != role]
            pid = self._start_executor(state.address, isa, concurrency)
            state.processes.append({"role": role, "pid": pid, "log": str(self.logs / f"{role}.log")})
            self.save(state)
            log(f"started the {isa} executor (pid {pid})")
        self._wait_for_executors(state)
        return state.address

    def _spawn(self, args: List[str], log_name: str) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with open(self.logs / log_name, "ab") as log_file:
            return subprocess.Popen(
                [*self_command(), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )

    def _start_bridge(self, listen: str, config: Optional[Path]):
        address_file = self.state_dir / "address"
        address_file.unlink(missing_ok=True)
        args = ["serve", "--state-dir", str(self.state_dir / "bridge"), "--listen", listen]
        if config:
            args += ["--config", str(config)]
        proc = self._spawn(args, "bridge.log")
        bridge_address = self.state_dir / "bridge" / "address"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(
                    f"reapi-bridge exited with {proc.returncode}; see {self.logs / 'bridge.log'}:\n"
                    + (self.logs / "bridge.log").read_text()[-2000:]
                )
            if bridge_address.exists() and bridge_address.read_text().strip():
                return bridge_address.read_text().strip(), proc.pid
            time.sleep(0.1)
        raise ClusterError(f"reapi-bridge did not start within 120s; see {self.logs / 'bridge.log'}")

    def _start_executor(self, address: str, isa: str, concurrency: int) -> int:
        name = f"local-{isa}"
        args = [
            "executor",
            "--bridge", address,
            "--isa", isa,
            "--name", name,
            "--concurrency", str(concurrency),
            "--work-dir", str(self.state_dir / "executors" / isa),
            "--rootfs", str(self.state_dir / "arm64-rootfs"),
        ]
        return self._spawn(args, f"executor-{isa}.log").pid

    def _wait_for_executors(self, state: ClusterState, timeout: float = 300.0) -> None:
        wanted = {f"local-{isa}" for isa in EXECUTOR_ISAS}
        deadline = time.monotonic() + timeout
        while True:
            # A session of a killed executor lingers until its lease times out; only a
            # session that checked in just now proves the executor is up.
            registered = {
                e.name.rsplit("/", 1)[0] for e in fetch_status(state.address).executors if e.seconds_since_update < 3
            }
            if wanted <= registered:
                return
            for p in state.processes:
                if not _alive(p["pid"]):
                    raise ClusterError(
                        f"{p['role']} (pid {p['pid']}) exited; see {p['log']}:\n" + Path(p["log"]).read_text()[-2000:]
                    )
            if time.monotonic() > deadline:
                raise ClusterError(f"executors {sorted(wanted - registered)} did not register within {timeout:g}s")
            time.sleep(0.2)

    def down(self, log=print) -> None:
        state = self.load()
        if not state.processes:
            log(f"nothing is running from {self.state_dir}")
            return
        self._stop_all(state, log)
        self.state_file.unlink(missing_ok=True)

    def _stop_all(self, state: ClusterState, log=lambda *_: None) -> None:
        # Executors first, so they hand back their leases to a bridge that is still there.
        ordered = sorted(state.processes, key=lambda p: p["role"] == "bridge")
        for p in ordered:
            pid = p["pid"]
            if not _alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            log(f"stopped {p['role']} (pid {pid})")
