"""Helpers for tests that run Pants 2.17 itself (this interpreter's pantsbuild.pants) against
the built reapi-bridge.pex."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

PEX = Path("reapi-bridge.pex").resolve()


def python311() -> str:
    found = shutil.which("python3.11")
    if found:
        return found
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in sorted(Path(pyenv_root, "versions").glob("3.11*/bin/python3.11")):
        return str(candidate)
    raise AssertionError("CPython 3.11 is needed to run reapi-bridge.pex and was not found")


def bridge_command(*args: str) -> list:
    assert PEX.is_file(), "the reapi-bridge.pex runtime package is missing from the sandbox"
    return [python311(), str(PEX), *args]


def open_temp_dir(prefix: str) -> Path:
    """A temp dir every user can traverse: executors run actions as `nobody`."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def run_pants(root: Path, store: Path, *args: str, background: bool = False, named_caches: Path = None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "LANG": "C.UTF-8",
    }
    cmd = [
        sys.executable,
        "-c",
        "from pants.bin.pants_loader import main; main()",
        "--no-pantsd",
        "--no-watch-filesystem",
        f"--local-store-dir={store}",
        f"--named-caches-dir={named_caches or root / 'named-caches'}",
        f"--pants-workdir={root / '.pants.d'}",
        "--print-stacktrace",
        *args,
    ]
    if background:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)


def remote_flags(address: str, execution: bool = True) -> Sequence[str]:
    flags = ["--remote-cache-read", "--remote-cache-write", f"--remote-store-address={address}"]
    if execution:
        flags += ["--remote-execution", f"--remote-execution-address={address}"]
    return flags
