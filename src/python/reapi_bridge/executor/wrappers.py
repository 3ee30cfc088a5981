"""How an executor turns an action's argv into the command it starts: as it is on this host,
or inside an emulated userland (see arm64_userland)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Protocol, Sequence

# Pants' placeholder for the input root in argv and environment (Pants 2.17 leaves it
# unreplaced for remote processes); executors replace it before a process or worker starts.
CHROOT_MARKER = "{chroot}"


class CommandWrapper(Protocol):
    def wrap(self, argv: Sequence[str], *, cwd: Path, binds: Sequence[Path]) -> List[str]:
        """The command line that runs `argv` in `cwd`, with `binds` (absolute host paths) visible
        at the same paths."""
        ...


class Direct:
    """Runs argv as it is, on this host."""

    def wrap(self, argv: Sequence[str], *, cwd: Path, binds: Sequence[Path]) -> List[str]:
        return list(argv)
