"""Temporary Pants 2.17 projects run against the built reapi-bridge.pex: the bridge's command, an
embedded cluster (`reapi-bridge up`/`down`), a small Pants project and running Pants on it.

Shared by the end-to-end tests (CPython 3.9 running this interpreter's pantsbuild.pants, the pex
a runtime package in the sandbox) and the benchmarks (CPython 3.11, Pants from the repository's
.crossbuild/pants-2.17.1-venv, dist/reapi-bridge.pex): what differs between them is a parameter."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# Where a test's sandbox holds the pex (its runtime package); the benchmarks pass their own.
PEX = Path("reapi-bridge.pex").resolve()


def pex_tool() -> Optional[Path]:
    """The pex tool ./pants built from the package index: ./pants exports its path as
    CROSSBUILD_PEX_TOOL (which [test].extra_env_vars passes to tests); run from a checkout (the
    benchmarks), it is .crossbuild/pex-VERSION there. None if neither exists."""
    override = os.environ.get("CROSSBUILD_PEX_TOOL")
    if override:
        return Path(override)
    built = sorted(Path(__file__).resolve().parent.parent.parent.glob(".crossbuild/pex-[0-9]*"))
    return built[-1] if built else None


def pex_cli_lines() -> List[str]:
    """A [pex-cli] section using `pex_tool()` (Pants' default downloads pex from GitHub, which is
    not reachable here; the crossbuild plugin fetches its zig with Pex), or none without it. The
    tool's file is named pex-VERSION, and ./pants checked it against the pin in pants.toml."""
    tool = pex_tool()
    if tool is None or not tool.is_file():
        return []
    data = tool.read_bytes()
    pin = f"{hashlib.sha256(data).hexdigest()}|{len(data)}"
    version = tool.name.rpartition("-")[2]
    return [
        "[pex-cli]",
        f'version = "v{version}"',
        f'known_versions = ["v{version}|linux_x86_64|{pin}", "v{version}|linux_arm64|{pin}"]',
        f'url_template = "file://{tool}"',
        "",
    ]


def python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found:
        return found
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in sorted(Path(pyenv_root, "versions").glob("3.11*/bin/python3.11")):
        return str(candidate)
    raise AssertionError("CPython 3.11 is needed to run reapi-bridge.pex and was not found")


def bridge_command(*args: str, pex: Path = PEX) -> list:
    assert pex.is_file(), f"the reapi-bridge.pex package is missing: {pex}"
    return [python311(), str(pex), *args]


def open_temp_dir(prefix: str) -> Path:
    """A temp dir every user can traverse: executors run actions as `nobody`."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def pants_env(home: Path) -> Dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def pants_command(
    root: Path,
    store: Path,
    *args: str,
    python: str = sys.executable,
    named_caches: Optional[Path] = None,
    pantsd: bool = False,
) -> List[str]:
    """argv of Pants (the pantsbuild.pants installed for `python`) in project `root` with `store`
    as its local store: without pantsd and file watching by default; with `pantsd`, through the
    console script beside `python`, since pantsd starts itself again from sys.argv."""
    # Sandboxes and immutable inputs go beside the store, not in /tmp: Pants 2.17 leaves an
    # `immutable_inputs*` folder behind at every exit (about 400 MB once zig is among them),
    # which filled the disk over a few test runs; beside the store they go with the test's tmp.
    execution_root = Path(f"{store}-sandboxes")
    execution_root.mkdir(parents=True, exist_ok=True)
    if pantsd:
        head = [str(Path(python).parent / "pants"), "--pantsd"]
    else:
        head = [python, "-c", "from pants.bin.pants_loader import main; main()", "--no-pantsd", "--no-watch-filesystem"]
    return [
        *head,
        f"--local-store-dir={store}",
        f"--named-caches-dir={named_caches or root / 'named-caches'}",
        f"--pants-workdir={root / '.pants.d'}",
        f"--local-execution-root-dir={execution_root}",
        *([] if pantsd else ["--print-stacktrace"]),
        *args,
    ]


def run_pants(
    root: Path,
    store: Path,
    *args: str,
    background: bool = False,
    named_caches: Optional[Path] = None,
    python: str = sys.executable,
    home: Optional[Path] = None,
    pantsd: bool = False,
):
    """Runs Pants (see `pants_command`) with HOME `home` (default: `root`/home); its output captured
    as text. A `subprocess.Popen` if `background`, else the finished `CompletedProcess`."""
    cmd = pants_command(root, store, *args, python=python, named_caches=named_caches, pantsd=pantsd)
    env = pants_env(home or root / "home")
    if background:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)


def remote_flags(address: str, execution: bool = True) -> List[str]:
    flags = ["--remote-cache-read", "--remote-cache-write", f"--remote-store-address={address}"]
    if execution:
        flags += ["--remote-execution", f"--remote-execution-address={address}"]
    return flags


# Remote environments a test project may name: (ISA, shell search path, worker hint). The
# `_workers` one adds the platform property that has executors serve `@FLAGFILE` actions (the
# shard runner's) through persistent workers, as the repository's linux_arm64 does; a project
# written with `arm64_workers` gives its linux_arm64 that property too.
REMOTE_ENVIRONMENTS = {
    "linux_x86_64": ("x86-64", '"/usr/bin", "/bin"', False),
    "linux_arm64": ("arm-a64", '"/bin", "/usr/bin"', False),
    "linux_arm64_workers": ("arm-a64", '"/bin", "/usr/bin"', True),
}


def environment_target(name: str, shell: bool, workers: bool = False) -> str:
    """The repository's root BUILD definition of environment `name`; the shell backend's field
    only where that backend is loaded (Pants refuses a field no loaded backend registers).
    `workers` adds the persistent-worker hint to an ARM64 environment."""
    if name == "local":
        return 'local_environment(name="local")\n'
    isa, search_path, hinted = REMOTE_ENVIRONMENTS[name]
    workers = hinted or (workers and isa == "arm-a64")
    shell_field = f"    shell_setup_executable_search_paths=[{search_path}],\n" if shell else ""
    hint = ', "persistentWorkerProtocol=proto"' if workers else ""
    platform = name.replace("_workers", "")
    return (
        f'remote_environment(\n    name="{name}",\n    platform="{platform}",\n'
        f'    extra_platform_properties=["OSFamily=linux", "ISA={isa}"{hint}],\n'
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
    arm64_workers: bool = False,
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
    lines += ["", "[anonymous-telemetry]", "enabled = false", "", *pex_cli_lines()]
    (root / "pants.toml").write_text("\n".join(lines) + ("\n" + textwrap.dedent(sections) if sections else ""))
    shell = "pants.backend.shell" in backends
    (root / "BUILD").write_text("".join(environment_target(n, shell, arm64_workers) for n in names) + build)
    for path, text in (files or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


class ClusterFailed(AssertionError):
    """`reapi-bridge up` exited non-zero (an assertion, for the tests that start a cluster)."""

    def __init__(self, returncode: int, output: str):
        super().__init__(f"`reapi-bridge up` exited {returncode}:\n{output}")
        self.returncode = returncode
        self.output = output


class Cluster:
    """`reapi-bridge up` (a bridge and one executor per ISA) on a private state dir, with
    `concurrency` slots per executor (None: `up`'s default)."""

    def __init__(
        self, state: Path, config: Optional[Path] = None, concurrency: Optional[int] = 1, pex: Path = PEX, secure: bool = False
    ):
        self.secure = secure
        self.state = state
        self.config = config
        self.concurrency = concurrency
        self.pex = pex

    def up(self) -> str:
        """The bridge's address; if `up` fails, `down` (for whatever it started) and ClusterFailed."""
        args = ["up", "--state-dir", str(self.state), "--listen", "127.0.0.1:0"]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.secure:
            args.append("--secure")
        out = subprocess.run(bridge_command(*args, pex=self.pex), capture_output=True, text=True)
        if out.returncode != 0:
            self.down()
            raise ClusterFailed(out.returncode, out.stdout + out.stderr)
        return out.stdout.strip().splitlines()[-1]

    def pid(self, role: str) -> int:
        state = json.loads((self.state / "cluster.json").read_text())
        return next(p["pid"] for p in state["processes"] if p["role"] == role)

    def status(self) -> str:
        out = subprocess.run(bridge_command("status", "--state-dir", str(self.state), pex=self.pex), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def down(self) -> None:
        subprocess.run(bridge_command("down", "--state-dir", str(self.state), pex=self.pex), capture_output=True)
