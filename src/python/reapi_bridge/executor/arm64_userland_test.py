"""The emulated aarch64 userland, end to end: a real busybox-static:arm64 from Debian, real proot
and qemu-aarch64-static (.ci/install-arm64-userland-deps installs them), nothing mocked."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reapi_bridge.executor.arm64_userland import (
    BASH_VERSION_LINE,
    STAMP,
    Arm64Userland,
    NativeRunner,
    UserlandError,
    build_rootfs,
    native_aarch64,
    prove_aarch64,
    read_stamp,
)

PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory) -> Path:
    # Fails (does not skip) when apt-get, dpkg, proot or qemu are missing: the message says
    # which, and to run .ci/install-arm64-userland-deps.
    return build_rootfs(tmp_path_factory.mktemp("arm64") / "rootfs")


@pytest.fixture(scope="session")
def userland(rootfs) -> Arm64Userland:
    return Arm64Userland.detect(rootfs)


@pytest.fixture
def input_root(tmp_path) -> Path:
    root = tmp_path / "action" / "root"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def private_tmp(tmp_path) -> Path:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp


def run(userland, argv, *, cwd, binds=(), env=None, tmp=None, timeout=60):
    wrapped = userland.wrap(argv, cwd=cwd, binds=binds, tmp=tmp)
    return subprocess.run(
        wrapped,
        env={"PATH": PATH, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def test_rootfs_layout(rootfs):
    for rel in [
        "bin/busybox",
        "bin/sh",
        "bin/cat",
        "bin/echo",
        "bin/uname",
        "usr/bin/env",
        "bin/bash",
        "etc/passwd",
    ]:
        assert (rootfs / rel).exists(), rel
    for rel in ["bin", "usr/bin", "sbin", "usr/sbin", "tmp", "dev", "proc", "etc", "work"]:
        assert (rootfs / rel).is_dir(), rel
    # Applet links are relative, so they also resolve from the host.
    assert (rootfs / "usr/bin/env").resolve() == (rootfs / "bin/busybox").resolve()
    assert not os.readlink(rootfs / "bin/sh").startswith("/")
    assert (rootfs / "bin/bash").read_text().startswith("#!/bin/sh\n")
    assert os.access(rootfs / "bin/bash", os.X_OK)
    passwd = (rootfs / "etc/passwd").read_text()
    assert passwd.startswith("root:x:0:0:") and "\nnobody:x:65534:" in passwd
    group = (rootfs / "etc/group").read_text()
    assert group.startswith("root:x:0:") and "nobody:x:65534:" in group
    stamp = json.loads((rootfs / STAMP).read_text())
    assert stamp["package"] == "busybox-static:arm64" and stamp["version"]
    # No staging folder is left next to it.
    assert [p.name for p in rootfs.parent.iterdir() if p.name.startswith(".rootfs.build-")] == []


def test_build_rootfs_is_idempotent(rootfs):
    before = (rootfs / STAMP).stat()
    start = time.monotonic()
    assert build_rootfs(rootfs) == rootfs
    assert time.monotonic() - start < 1.0  # no download, no rebuild
    assert (rootfs / STAMP).stat().st_ino == before.st_ino
    assert read_stamp(rootfs) is not None


def test_detect_rejects_an_incomplete_rootfs(tmp_path):
    (tmp_path / "bin").mkdir()
    with pytest.raises(UserlandError, match="build_rootfs"):
        Arm64Userland.detect(tmp_path)


def test_uname_says_aarch64(userland):
    assert prove_aarch64(userland) == "aarch64"


@pytest.mark.skipif(native_aarch64(), reason="on an aarch64 host the native runner is aarch64")
def test_prove_aarch64_refuses_the_x86_64_host():
    with pytest.raises(UserlandError, match="not 'aarch64'"):
        prove_aarch64(NativeRunner())


def test_native_runner_is_the_identity(tmp_path):
    assert NativeRunner().wrap(["a", "b c"], cwd=tmp_path, binds=[tmp_path]) == ["a", "b c"]


def test_script_sees_bound_input_root_env_and_private_tmp(userland, input_root, private_tmp):
    (input_root / "in.txt").write_text("from the host\n")
    (input_root / "sub").mkdir()
    (input_root / "script.sh").write_text(
        "set -e\n"
        'test "$(uname -m)" = aarch64\n'
        "test -f in.txt && test -d sub && test ! -e missing\n"
        'echo "cwd=$(pwd)" > out.txt\n'
        "cat in.txt >> out.txt\n"
        'echo "greeting=$GREETING" >> out.txt\n'
        'env | grep "^ABS_DIR=" >> out.txt\n'
        'test -f "$ABS_DIR/in.txt"\n'
        "echo scratch > /tmp/scratch.txt\n"
        "cat /tmp/scratch.txt >> sub/nested.txt\n"
    )
    proc = run(
        userland,
        ["/bin/sh", "script.sh"],
        cwd=input_root,
        binds=[input_root],
        tmp=private_tmp,
        env={"GREETING": "hello aarch64", "ABS_DIR": str(input_root)},
    )
    assert proc.returncode == 0, proc.stderr
    assert (input_root / "out.txt").read_text().splitlines() == [
        f"cwd={input_root}",
        "from the host",
        "greeting=hello aarch64",
        f"ABS_DIR={input_root}",
    ]
    assert (input_root / "sub/nested.txt").read_text() == "scratch\n"
    # /tmp inside is the private folder, not the host's /tmp.
    assert (private_tmp / "scratch.txt").read_text() == "scratch\n"


def test_relative_argv0_runs_from_the_working_directory(userland, input_root):
    script = input_root / "tool.sh"
    script.write_text('#!/bin/sh\necho "tool $# $1"\n')
    script.chmod(0o755)
    (input_root / "sub").mkdir()
    proc = run(userland, ["../tool.sh", "x y"], cwd=input_root / "sub", binds=[input_root])
    assert (proc.returncode, proc.stdout) == (0, "tool 1 x y\n"), proc.stderr


def test_bash_shim(userland, input_root):
    proc = run(userland, ["/bin/bash", "--version"], cwd=input_root, binds=[input_root])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == BASH_VERSION_LINE
    assert proc.stdout.startswith("GNU bash, version ")
    proc = run(userland, ["bash", "-c", "echo hi"], cwd=input_root, binds=[input_root])
    assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr
    proc = run(
        userland,
        ["/usr/bin/env", "bash", "--noprofile", "--norc", "-c", 'echo "$0 $1"', "zero", "one"],
        cwd=input_root,
        binds=[input_root],
    )
    assert (proc.returncode, proc.stdout) == (0, "zero one\n"), proc.stderr


def test_missing_command_fails_with_a_message(userland, input_root):
    proc = run(userland, ["/no/such/program"], cwd=input_root, binds=[input_root])
    assert proc.returncode != 0
    assert "not found" in proc.stderr
    proc = run(userland, ["no-such-program"], cwd=input_root, binds=[input_root])
    assert proc.returncode != 0
    assert "no-such-program" in proc.stderr
    proc = run(userland, ["/bin/sh", "-c", "no-such-program"], cwd=input_root, binds=[input_root])
    assert proc.returncode == 127
    assert "no-such-program: not found" in proc.stderr


def test_exit_code_propagates(userland, input_root):
    proc = run(
        userland, ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], cwd=input_root, binds=[input_root]
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    proc = run(userland, ["/bin/false"], cwd=input_root, binds=[input_root])
    assert proc.returncode == 1


def test_wrap_refuses_what_proot_cannot_take(userland, input_root):
    with pytest.raises(ValueError):
        userland.wrap([], cwd=input_root, binds=[input_root])
    with pytest.raises(ValueError, match="option"):
        userland.wrap(["-v"], cwd=input_root, binds=[input_root])
    with pytest.raises(ValueError, match="absolute"):
        userland.wrap(["true"], cwd=Path("rel"), binds=[input_root])
    with pytest.raises(ValueError, match="absolute"):
        userland.wrap(["true"], cwd=input_root, binds=[Path("rel")])
    with pytest.raises(UserlandError, match="does not exist"):
        userland.wrap(["true"], cwd=input_root / "missing", binds=[input_root])
    # A folder only the rootfs has is a valid cwd; a bare name is looked up in /bin, /usr/bin.
    assert userland.wrap(["true"], cwd=Path("/work"), binds=[])[-1] == "/bin/true"


def test_bare_command_runs_without_path(userland, input_root):
    """REAPI actions may carry no PATH at all (Pants runs `env -0` that way)."""
    proc = subprocess.run(
        userland.wrap(["uname", "-m"], cwd=input_root, binds=[input_root]),
        env={}, capture_output=True, text=True,
    )
    assert (proc.returncode, proc.stdout) == (0, "aarch64\n"), proc.stderr


def _aarch64_c_compiler() -> tuple[list[str], str] | None:
    if importlib.util.find_spec("ziglang") is not None:
        return [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-musl"], "zig (PyPI ziglang)"
    if shutil.which("zig"):
        return [shutil.which("zig"), "cc", "-target", "aarch64-linux-musl"], "zig"
    if shutil.which("aarch64-linux-gnu-gcc"):
        return [shutil.which("aarch64-linux-gnu-gcc")], "aarch64-linux-gnu-gcc"
    return None


def test_static_c_program_runs_inside(userland, input_root, tmp_path):
    compiler = _aarch64_c_compiler()
    if compiler is None:
        pytest.skip(
            "no aarch64 cross compiler: `pip install ziglang` (or apt-get install gcc-aarch64-linux-gnu) "
            "to run the C program test"
        )
    cc, name = compiler
    source = tmp_path / "hello.c"
    source.write_text(
        "#include <stdio.h>\n"
        "#include <stdlib.h>\n"
        "#include <sys/utsname.h>\n"
        "int main(int argc, char **argv) {\n"
        "  struct utsname u; uname(&u);\n"
        '  const char *greeting = getenv("GREETING");\n'
        '  printf("%s argc=%d arg1=%s env=%s\\n", u.machine, argc, argc > 1 ? argv[1] : "-",\n'
        '         greeting ? greeting : "(unset)");\n'
        "  return 42;\n"
        "}\n"
    )
    binary = input_root / "bin" / "hello"
    binary.parent.mkdir()
    env = dict(os.environ)
    if "HOME" not in env and "ZIG_GLOBAL_CACHE_DIR" not in env:  # zig's cache needs a home
        env["ZIG_GLOBAL_CACHE_DIR"] = str(tmp_path / "zig-cache")
    built = subprocess.run(
        [*cc, "-static", "-O2", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert built.returncode == 0, f"{name} failed: {built.stderr}"
    assert binary.read_bytes()[:4] == b"\x7fELF" and binary.read_bytes()[18] == 183  # e_machine EM_AARCH64
    proc = run(userland, ["bin/hello", "first"], cwd=input_root, binds=[input_root], env={"GREETING": "hi"})
    assert proc.returncode == 42, proc.stderr
    assert proc.stdout == "aarch64 argc=2 arg1=first env=hi\n"
    # Started from the emulated shell too: exec inside the userland goes through qemu as well.
    proc = run(userland, ["/bin/sh", "-c", "./bin/hello; echo rc=$?"], cwd=input_root, binds=[input_root])
    assert proc.stdout == "aarch64 argc=1 arg1=- env=(unset)\nrc=42\n", proc.stderr


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (those wait for whoever reaps orphans)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def test_killing_the_process_group_ends_everything_and_cleanup_removes_leftovers(userland, input_root):
    # What the executor does on a timeout: the whole session is killed, proot and the guest.
    argv = userland.wrap(
        ["/bin/sh", "-c", "sleep 60 & echo started > started; sleep 60"], cwd=input_root, binds=[input_root]
    )
    proc = subprocess.Popen(argv, env={"PATH": PATH}, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (input_root / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _live_members(proc.pid):
        assert (
            time.monotonic() < deadline
        ), f"guest processes outlived the killed group: {_live_members(proc.pid)}"
        time.sleep(0.05)
    Arm64Userland.cleanup_killed(proc.pid)
    assert list(Path("/tmp").glob(f"proot*-{proc.pid}-*")) == []
