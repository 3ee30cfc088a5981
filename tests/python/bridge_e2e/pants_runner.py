"""Helpers for tests that run Pants 2.17 itself (this interpreter's pantsbuild.pants) against
the built reapi-bridge.pex: the bridge's command, an embedded cluster, a small Pants project."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Dict, Optional, Sequence

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


def environment_target(name: str, shell: bool) -> str:
    """The repository's root BUILD definition of environment `name`; the shell backend's field
    only where that backend is loaded (Pants refuses a field no loaded backend registers)."""
    if name == "local":
        return 'local_environment(name="local")\n'
    isa, search_path = {"linux_x86_64": ("x86-64", '"/usr/bin", "/bin"'), "linux_arm64": ("arm-a64", '"/bin", "/usr/bin"')}[name]
    shell_field = f"    shell_setup_executable_search_paths=[{search_path}],\n" if shell else ""
    return (
        f'remote_environment(\n    name="{name}",\n    platform="{name}",\n'
        f'    extra_platform_properties=["OSFamily=linux", "ISA={isa}"],\n'
        f'    fallback_environment="local",\n{shell_field})\n'
    )


def write_pants_project(
    root: Path,
    *,
    backends: Sequence[str],
    plugin_root: Optional[Path] = None,
    environments: Sequence[str] = (),
    global_settings: Sequence[str] = (),
    sections: str = "",
    build: str = "",
    files: Optional[Dict[str, str]] = None,
) -> None:
    """A Pants 2.17 project: pants.toml (the backends, the crossbuild plugin from `plugin_root`,
    the named `environments` plus `local`, extra [GLOBAL] lines and extra sections), a root BUILD
    defining those environments followed by `build`, and `files` (path -> text)."""
    names = ["local", *environments] if environments else []
    lines = [
        "[GLOBAL]",
        'pants_version = "2.17.1"',
        f"backend_packages = {json.dumps(list(backends))}",
        'remote_execution_append_only_caches_base_path = "/tmp/crossbuild-append-only-caches"',
        'ca_certs_path = "/etc/ssl/certs/ca-certificates.crt"',
        *global_settings,
    ]
    if plugin_root is not None:
        lines.append(f'pythonpath = ["{plugin_root}"]')
    if names:
        lines += ["", "[environments-preview.names]", *(f'{n} = "//:{n}"' for n in names)]
    lines += ["", "[anonymous-telemetry]", "enabled = false", ""]
    (root / "pants.toml").write_text("\n".join(lines) + ("\n" + textwrap.dedent(sections) if sections else ""))
    shell = "pants.backend.shell" in backends
    (root / "BUILD").write_text("".join(environment_target(n, shell) for n in names) + build)
    for path, text in (files or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


class Cluster:
    """`reapi-bridge up` (a bridge and one executor per ISA) on a private state dir."""

    def __init__(self, state: Path, config: Optional[Path] = None, concurrency: int = 1):
        self.state = state
        self.config = config
        self.concurrency = concurrency

    def up(self) -> str:
        args = ["up", "--state-dir", str(self.state), "--listen", "127.0.0.1:0", "--concurrency", str(self.concurrency)]
        if self.config is not None:
            args += ["--config", str(self.config)]
        out = subprocess.run(bridge_command(*args), capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout.strip().splitlines()[-1]

    def pid(self, role: str) -> int:
        state = json.loads((self.state / "cluster.json").read_text())
        return next(p["pid"] for p in state["processes"] if p["role"] == role)

    def status(self) -> str:
        out = subprocess.run(bridge_command("status", "--state-dir", str(self.state)), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def down(self) -> None:
        subprocess.run(bridge_command("down", "--state-dir", str(self.state)), capture_output=True)
