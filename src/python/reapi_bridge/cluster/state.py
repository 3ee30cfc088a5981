"""The state file of a supervisor (STATE_DIR/cluster.json): who runs, since when, how often it
was restarted and how it last exited. The supervisor is its only writer; `up`, `down` and
`status` read it. Writes are atomic (a temporary file renamed over the old one), so a reader
sees either the old or the new content, never a part."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional

# What a recorded process is doing.
RUNNING = "running"
RESTARTING = "restarting"  # exited unexpectedly; started again at `restart_at`
STOPPED = "stopped"


@dataclass
class ProcessRecord:
    role: str
    log: str
    pid: int = 0  # 0 while not running
    state: str = STOPPED
    started: float = 0.0  # wall-clock time of the last start
    restarts: int = 0  # starts after unexpected exits
    last_exit: str = ""  # "exit 3", "signal 9 (SIGKILL)"; "" if it never exited
    last_exit_at: float = 0.0
    restart_at: float = 0.0  # wall-clock time of the next start while RESTARTING


@dataclass
class SupervisorRecord:
    pid: int = 0
    started: float = 0.0
    log: str = ""


@dataclass
class ClusterState:
    address: str = ""
    http_address: str = ""  # the bridge's HTTP port (metrics, status page), "" if off
    supervisor: SupervisorRecord = field(default_factory=SupervisorRecord)
    # Why the supervisor gave up (a child could not start the first time); "" otherwise.
    error: str = ""
    processes: List[ProcessRecord] = field(default_factory=list)

    def process(self, role: str) -> Optional[ProcessRecord]:
        return next((p for p in self.processes if p.role == role), None)

    @classmethod
    def from_json(cls, data: dict) -> "ClusterState":
        known = {f for f in ProcessRecord.__dataclass_fields__}
        return cls(
            address=data.get("address", ""),
            http_address=data.get("http_address", ""),
            supervisor=SupervisorRecord(**data.get("supervisor") or {}),
            error=data.get("error", ""),
            processes=[ProcessRecord(**{k: v for k, v in p.items() if k in known}) for p in data.get("processes", [])],
        )


def load_state(path: Path) -> ClusterState:
    """The recorded state; an empty one if there is no file (or an unreadable one)."""
    try:
        return ClusterState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return ClusterState()
    except (ValueError, TypeError):
        return ClusterState()


def save_state(path: Path, state: ClusterState) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(tmp, path)


def describe_exit(returncode: int) -> str:
    """A Popen return code as people read it: `exit 3`, `signal 9 (SIGKILL)`."""
    if returncode >= 0:
        return f"exit {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    return f"signal {-returncode} ({name})"
