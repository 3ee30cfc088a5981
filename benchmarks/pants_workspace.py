"""What the Pants benchmarks (crossbuild_benchmark.py, incremental_benchmark.py) share: paths
in this repository, their temporary directory, a temporary Pants project holding a copy of
examples/cclib, the embedded cluster, logging. The project and the cluster come from
tests/python/pants_project.py, as the end-to-end tests make theirs."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "pants-plugins"
PANTS_PYTHON = REPO / ".crossbuild" / "pants-2.17.1-venv" / "bin" / "python"
BRIDGE_PEX = REPO / "dist" / "reapi-bridge.pex"
HARNESS_HEADER = PLUGINS / "crossbuild" / "resources" / "crossbuild_test.h"

sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(PLUGINS))
sys.path.insert(0, str(REPO / "src" / "python"))
from pants_project import Cluster, ClusterFailed, write_pants_project  # noqa: E402

CCLIB = "examples/cclib"

_T0 = time.monotonic()


class BenchmarkError(RuntimeError):
    """A figure could not be measured."""


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def remove_tree(path: Path) -> None:
    """rmtree that also removes read-only folders (Pants' stores and zig's toolchain have them)."""

    def make_writable_and_retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            func(p)

    shutil.rmtree(path, onerror=make_writable_and_retry)
    shutil.rmtree(path, ignore_errors=True)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def elapsed() -> float:
    """Seconds since the benchmark started."""
    return time.monotonic() - _T0


# --------------------------------------------------------------------------- temporary layout


@dataclass
class Workspace:
    """The benchmark's temporary directory: projects, stores, cluster state, raw builds."""

    root: Path
    shared_named_caches: Path
    _stores: int = 0

    def fresh_store(self, label: str) -> Path:
        self._stores += 1
        store = self.root / "stores" / f"{self._stores:02d}-{label}"
        store.mkdir(parents=True)
        return store

    def subdir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)  # the executors run actions as `nobody` when started as root
        return d


def default_named_caches() -> Path:
    """Pants' default named caches dir for the real user (our Pants runs get another HOME)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache_home) / "pants" / "named_caches"


def make_project(dest: Path, plugin_root: Path = PLUGINS, arm64_workers: bool = False) -> Path:
    """A temporary Pants project with a copy of examples/cclib that loads the plugin from
    `plugin_root`: only the cc and crossbuild backends, and the repository's environments
    without the fields of backends not loaded here (shell, python), since executables are found
    by absolute path in every crossbuild action. `arm64_workers`: linux_arm64 asks for
    persistent workers, as the repository's does."""
    dest.mkdir(parents=True)
    write_pants_project(
        dest,
        backends=["pants.backend.experimental.cc", "crossbuild"],
        plugin_root=plugin_root,
        environments=["linux_x86_64", "linux_arm64"],
        sections='[source]\nroot_patterns = ["/"]\n',
        arm64_workers=arm64_workers,
    )
    shutil.copytree(REPO / CCLIB, dest / CCLIB)
    return dest


# --------------------------------------------------------------------------- the cluster


@contextlib.contextmanager
def cluster(state_dir: Path, concurrency: Optional[int] = 1):
    """The embedded bridge with one x86-64 and one ARM64 executor, `concurrency` slots each
    (None: `up`'s default); yields its address."""
    c = Cluster(state_dir, concurrency=concurrency, pex=BRIDGE_PEX)
    log("reapi-bridge.pex up")
    try:
        address = c.up()
    except ClusterFailed as e:
        raise BenchmarkError(f"`reapi-bridge up` exited {e.returncode}:\n{tail(e.output)}") from None
    log(f"  cluster at {address}")
    try:
        yield address
    finally:
        log("reapi-bridge.pex down")
        c.down()
