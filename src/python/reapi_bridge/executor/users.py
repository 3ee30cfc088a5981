"""Who actions and workers run as: the executor's own user, or another (`--run-as`) entered
with setpriv, with the sandbox's own directories handed over to that user."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str

    @classmethod
    def user(cls, name: str) -> "RunAs":
        entry = pwd.getpwnam(name)
        return cls(entry.pw_uid, entry.pw_gid, name)


def hand_over(root: Path, run_as: Optional[RunAs]) -> None:
    """Gives the sandbox's own directories (never the shared cache files) to the action user."""
    if run_as is None:
        return
    for _, _, _, dir_fd in os.fwalk(root):  # descriptors: never through a symlink
        os.fchown(dir_fd, run_as.uid, run_as.gid)
    os.chown(root.parent, run_as.uid, run_as.gid)


def drop_privileges(argv: Sequence[str], run_as: Optional[RunAs]) -> List[str]:
    """Prefixes setpriv rather than switching users inside Popen: a uid switch makes Python
    fork instead of vfork, and a fork in a process full of gRPC threads can crash the child
    before it execs."""
    if run_as is None:
        return list(argv)
    return [
        "/usr/bin/setpriv",
        f"--reuid={run_as.uid}",
        f"--regid={run_as.gid}",
        "--clear-groups",
        "--",
        *argv,
    ]
