"""`crossbuild_trampoline` end to end, driven by Pants 2.17: launchers for four platforms from
`pants package`, byte-identical from two checkouts; the x86-64 one runs a real Python program
here and under `pants run`; the aarch64 one runs on the ARM64 executor (through a Pants
`shell_command` in the linux_arm64 environment) with a stand-in interpreter that exists in that
busybox userland; the Windows ones are checked by their PE headers and footer."""

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pants_project import remote_flags, run_pants, write_pants_project
from crossbuild_e2e.archive_shards_test import cluster  # noqa: F401  (the embedded bridge and executors)
from crossbuild.pe_headers import pe_facts
from crossbuild.trampoline_format import FOOTER_SIZE, InterpreterKind, LauncherExit, parse_footer

PLUGIN_ROOT = Path("pants-plugins").resolve()
# zig's libc builds are shared by the projects of this module (and with build_test.py).
SHARED_CACHES = Path("/tmp/crossbuild-e2e-named-caches")
SIZE_LIMIT = 64 * 1024
PLATFORMS = {
    "linux_x86_64": "greet",
    "linux_arm64": "greet",
    "windows_x86_64": "greet.exe",
    "windows_arm64": "greet.exe",
}

CLI_PY = textwrap.dedent(
    '''\
    import sys

    from tool.words import greeting


    def main():
        args = sys.argv[1:]
        if args == ["--fail"]:
            print("failing on purpose", file=sys.stderr)
            return 3
        if args == ["-"]:
            args = [line.strip() for line in sys.stdin if line.strip()]
        for name in args or ["world"]:
            print(greeting(name))
        print(f"argv0-is-launcher={sys.argv[0].endswith('greet')}")
        return 0
    '''
)

# The linux_arm64 environment's busybox userland has no Python: this shell script stands in
# for the interpreter, reporting what the launcher handed it.
STANDIN = textwrap.dedent(
    """\
    #!/bin/sh
    echo "machine=$(uname -m)"
    echo "script-is-launcher=$( [ "$1" -ef ../../tramp/linux_arm64/standin-greet ] && echo yes || echo no )"
    echo "magic=$(tail -c 32 "$1" | head -c 8)"
    shift
    for a in "$@"; do echo "arg=[$a]"; done
    exit 7
    """
)

# Runs in src/tool (the BUILD file's directory); the packaged launcher is at the sandbox root.
# The stand-in is looked up on PATH (the launcher's PATH search, on aarch64), then with a PATH
# that lacks it.
ARM64_COMMAND = (
    "mkdir -p bin && cp standin.sh bin/xb-standin && chmod +x bin/xb-standin && "
    "{ PATH=\"$PWD/bin:$PATH\" ../../tramp/linux_arm64/standin-greet 'two words' 'ünï' --flag; "
    "echo \"status=$?\"; } > arm64.txt 2>&1; "
    "{ ../../tramp/linux_arm64/standin-greet; echo \"status=$?\"; } > arm64-missing.txt 2>&1; true"
)


def write_project(root: Path) -> None:
    files = {
        "src/tool/__init__.py": "",
        "src/tool/words.py": "def greeting(name):\n    return f'Hello, {name}!'\n",
        "src/tool/cli.py": CLI_PY,
        "src/tool/BUILD": """\
            python_sources(name="lib")

            crossbuild_trampoline(
                name="greet",
                entry_point="tool.cli:main",
                dependencies=[":lib"],
                interpreter="python3",
                output_path="tramp",
            )

            crossbuild_trampoline(
                name="greet-gui",
                entry_point="tool.cli:main",
                dependencies=[":lib"],
                interpreter="pythonw.exe",
                platforms=["windows_x86_64", "windows_arm64"],
                windows_subsystem="gui",
                output_path="tramp-gui",
            )

            crossbuild_trampoline(
                name="standin-greet",
                entry_point="tool.cli:main",
                dependencies=[":lib"],
                interpreter="xb-standin",
                platforms=["linux_arm64"],
                output_path="tramp",
            )

            files(name="standin", sources=["standin.sh"])

            shell_command(
                name="on-arm64",
                command=\"\"\"%s\"\"\",
                execution_dependencies=[":standin-greet", ":standin"],
                tools=["mkdir", "cp", "chmod", "uname", "tail", "head", "true"],
                output_files=["arm64.txt", "arm64-missing.txt"],
                environment="linux_arm64",
            )
            """ % ARM64_COMMAND,
        "src/tool/standin.sh": STANDIN,
    }
    files = {path: textwrap.dedent(text) if path.endswith("BUILD") else text for path, text in files.items()}
    write_pants_project(
        root,
        backends=["pants.backend.python", "pants.backend.shell", "crossbuild"],
        plugin_root=PLUGIN_ROOT,
        environments=["linux_arm64"],
        sections="""\
            [source]
            root_patterns = ["/src"]

            [python]
            interpreter_constraints = ["CPython>=3.8"]

            [python-infer]
            use_rust_parser = true
            """,
        files=files,
    )


def pants(project: Path, store: Path, *args: str):
    return run_pants(project, store, *args, named_caches=SHARED_CACHES)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Both trampoline targets packaged in two checkouts at different paths."""
    base = tmp_path_factory.mktemp("trampolines")
    projects = []
    for where in ("first", "second/deeper path"):
        project = base / where
        project.mkdir(parents=True)
        write_project(project)
        result = pants(project, base / f"store-{len(projects)}", "package", "src/tool:greet", "src/tool:greet-gui")
        assert result.returncode == 0, result.stderr
        projects.append((project, result.stderr))
    return projects


def test_one_launcher_per_platform_reproducible_and_small(packaged):
    (first, log), (second, _) = packaged
    for platform, filename in PLATFORMS.items():
        a = (first / "dist" / "tramp" / platform / filename).read_bytes()
        b = (second / "dist" / "tramp" / platform / filename).read_bytes()
        assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest(), f"{platform} differs between checkouts"
        footer = parse_footer(a)
        assert footer.launcher_len < SIZE_LIMIT, f"{platform}: launcher is {footer.launcher_len} bytes"
        assert (footer.interpreter_kind, footer.interpreter_spec) == (InterpreterKind.PATH, "python3")
        with zipfile.ZipFile(io.BytesIO(a)) as zf:
            assert sorted(zf.namelist()) == ["__main__.py", "tool/", "tool/__init__.py", "tool/cli.py", "tool/words.py"]
            assert "from tool.cli import main" in zf.read("__main__.py").decode()
        assert f"{platform}: {len(a):,} bytes (launcher {footer.launcher_len:,}" in log
        assert str(first).encode() not in a


@pytest.mark.parametrize("platform, machine", [("windows_x86_64", 0x8664), ("windows_arm64", 0xAA64)])
def test_windows_launchers_pe_headers(packaged, platform, machine):
    (project, _), _ = packaged
    console = (project / "dist" / "tramp" / platform / "greet.exe").read_bytes()
    gui = (project / "dist" / "tramp-gui" / platform / "greet-gui.exe").read_bytes()
    for exe, subsystem in ((console, 3), (gui, 2)):  # IMAGE_SUBSYSTEM_WINDOWS_CUI, _GUI
        facts = pe_facts(exe)
        assert facts["machine"] == machine
        assert facts["subsystem"] == subsystem
        assert facts["imports"] == ["KERNEL32.dll"], facts["imports"]
        assert [kind for kind, _ in facts["debug"]] == [16]  # only the REPRO entry, no .pdb reference
    assert parse_footer(gui).interpreter_spec == "pythonw.exe"
    assert not list((project / "dist" / "tramp").rglob("*.pdb"))


def run(path: Path, *args: str, stdin: str = ""):
    return subprocess.run([str(path), *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="runs the linux_x86_64 launcher")
def test_linux_x86_64_launcher_runs_python_here(packaged, tmp_path):
    (project, _), _ = packaged
    # Copied to a path with a space and non-ASCII characters; python3 is found on PATH.
    launcher = tmp_path / "bin dir ü" / "greet"
    launcher.parent.mkdir()
    launcher.write_bytes((project / "dist" / "tramp" / "linux_x86_64" / "greet").read_bytes())
    launcher.chmod(0o755)
    ok = run(launcher, "Ada", "two words")
    assert (ok.returncode, ok.stdout) == (0, "Hello, Ada!\nHello, two words!\nargv0-is-launcher=True\n"), ok.stderr
    piped = run(launcher, "-", stdin="x\ny\n")
    assert piped.stdout.splitlines()[:2] == ["Hello, x!", "Hello, y!"]
    failed = run(launcher, "--fail")
    assert (failed.returncode, failed.stderr) == (3, "failing on purpose\n")

    empty_path = subprocess.run([str(launcher)], capture_output=True, text=True, env={"PATH": str(tmp_path)})
    assert empty_path.returncode == LauncherExit.NOT_FOUND
    assert "python3" in empty_path.stderr and str(tmp_path) in empty_path.stderr

    truncated = tmp_path / "truncated"
    truncated.write_bytes(launcher.read_bytes()[:-FOOTER_SIZE // 2])
    truncated.chmod(0o755)
    broken = run(truncated)
    assert broken.returncode in (LauncherExit.NO_FOOTER, LauncherExit.CORRUPT), broken
    assert broken.stderr.strip() and "Traceback" not in broken.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="runs the linux_x86_64 launcher")
def test_pants_run_runs_the_hosts_launcher(packaged, tmp_path):
    (project, _), _ = packaged
    result = pants(project, tmp_path / "store", "run", "src/tool:greet", "--", "Grace")
    assert result.returncode == 0, result.stderr
    assert "Hello, Grace!" in result.stdout


def test_linux_arm64_launcher_runs_on_the_arm64_executor(cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    result = pants(project, tmp_path / "store", *remote_flags(cluster), "export-codegen", "src/tool:on-arm64")
    assert result.returncode == 0, result.stderr
    out = project / "dist" / "codegen" / "src" / "tool"
    lines = (out / "arm64.txt").read_text().splitlines()
    assert lines == [
        "machine=aarch64",
        "script-is-launcher=yes",
        "magic=XBTRAMP1",
        "arg=[two words]",
        "arg=[ünï]",
        "arg=[--flag]",
        "status=7",
    ], lines
    missing = (out / "arm64-missing.txt").read_text()
    assert f"status={int(LauncherExit.NOT_FOUND)}" in missing, missing
    assert "xb-standin" in missing, missing
