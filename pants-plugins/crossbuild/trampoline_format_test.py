"""Trampolines: the file format (pure Python) and the launcher built with zig, run for real.

The x86_64 Linux launcher runs real Python programs; the aarch64 one runs under
qemu-aarch64-static with a stand-in interpreter; the Windows launchers are checked by parsing
their PE headers and, where wine is installed, run under wine with a stand-in interpreter.
"""

from __future__ import annotations

import io
import json
import os
import platform
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from crossbuild import trampoline_format as tf
from crossbuild.pe_headers import pe_facts
from crossbuild.resources import LAUNCHER_DIR, LAUNCHER_FILES, LAUNCHER_SOURCE
from crossbuild.trampoline_format import InterpreterKind, LauncherExit

HERE = Path(__file__).resolve().parent
LAUNCHER_SOURCES = HERE / "resources" / LAUNCHER_DIR
LAUNCHER_C = LAUNCHER_SOURCES / LAUNCHER_SOURCE
HOST_PYTHON = os.path.realpath(sys.executable)
IS_X86_64_LINUX = sys.platform.startswith("linux") and platform.machine() == "x86_64"
SIZE_LIMIT = 64 * 1024


def _find_zig() -> Optional[Path]:
    try:
        import ziglang  # type: ignore[import-not-found]

        zig = Path(ziglang.__file__).parent / "zig"
        if zig.exists():
            return zig
    except ImportError:
        pass
    override = os.environ.get("CROSSBUILD_ZIG")
    return Path(override) if override and Path(override).exists() else None


ZIG = _find_zig()
# CI (.ci/run) sets CROSSBUILD_REQUIRE_ZIG=1: there a missing zig fails these tests, never skips them.
ZIG_REQUIRED = os.environ.get("CROSSBUILD_REQUIRE_ZIG") == "1"
if ZIG_REQUIRED and ZIG is None:
    raise RuntimeError(
        "CROSSBUILD_REQUIRE_ZIG=1 but no zig: run .ci/install-ziglang (./pants then passes its zig "
        "as CROSSBUILD_ZIG), or point CROSSBUILD_ZIG at a zig binary"
    )
needs_zig = pytest.mark.skipif(
    ZIG is None or not LAUNCHER_C.exists(),
    reason="no zig: the `ziglang` package is not importable and $CROSSBUILD_ZIG is unset"
    if ZIG is None
    else f"{LAUNCHER_C} is missing (in a Pants sandbox: depend on crossbuild/resources/trampoline:files)",
)


@needs_zig
def test_zig_is_the_version_the_plugin_pins():
    from crossbuild.subsystems.zig import ZigSubsystem

    version = subprocess.run([str(ZIG), "version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version == ZigSubsystem.version.flag_options["default"]


needs_host = pytest.mark.skipif(
    not IS_X86_64_LINUX, reason="runs the x86_64-linux-musl launcher, which needs an x86_64 Linux host"
)


def _find_wine() -> Optional[str]:
    for candidate in (shutil.which("wine64"), "/usr/lib/wine/wine64", shutil.which("wine")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


WINE = _find_wine() if IS_X86_64_LINUX else None
QEMU_AARCH64 = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")

# ---------------------------------------------------------------------------------------------
# Building with zig


def _zig_run(cmd: List[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> None:
    env = dict(os.environ if env is None else env)
    # zig needs a cache directory; sandboxes have no HOME.
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", "/tmp/crossbuild-test-zig-cache")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")


def build_launcher(target: str, out_dir: Path, *, gui: bool = False, source: Path = LAUNCHER_C,
                   env: Optional[Dict[str, str]] = None) -> bytes:
    assert ZIG is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / ("launcher" + (".exe" if "windows" in target else ""))
    for cmd in tf.launcher_build_commands(str(ZIG), target, str(source), str(output), gui=gui):
        _zig_run(cmd, out_dir, env)
    return output.read_bytes()


def build_program(target: str, source_text: str, out: Path, *, windows_entry: Optional[str] = None,
                  libs: tuple = ()) -> Path:
    """A small C program (a stand-in interpreter) built with the same zig."""
    assert ZIG is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + ".c")
    src.write_text(source_text)
    if windows_entry:
        obj = str(out) + ".o"
        _zig_run([str(ZIG), "cc", "-target", target, "-std=c11", "-Os", "-g0", "-c", str(src), "-o", obj], out.parent)
        _zig_run([str(ZIG), "cc", "-target", target, "-nostdlib", "-s", f"-Wl,--entry,{windows_entry}",
                  "-Wl,-Brepro", obj, "-lkernel32", *libs, "-o", str(out)], out.parent)
    else:
        _zig_run([str(ZIG), "cc", "-target", target, "-Os", "-g0", "-s", str(src), "-o", str(out)], out.parent)
    return out


class Launchers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: Dict[tuple, bytes] = {}

    def get(self, target: str, gui: bool = False) -> bytes:
        key = (target, gui)
        if key not in self._built:
            self._built[key] = build_launcher(target, self.root / f"{target}{'-gui' if gui else ''}", gui=gui)
        return self._built[key]


@pytest.fixture(scope="session")
def launchers(tmp_path_factory) -> Launchers:
    if ZIG is None or not LAUNCHER_C.exists():
        pytest.skip("no zig, or no launcher.c beside this test")
    return Launchers(tmp_path_factory.mktemp("launchers"))


# ---------------------------------------------------------------------------------------------
# Making and running trampolines

PROBE = b"""\
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.buffer.read().decode("utf-8") if "--stdin" in args else None
print(json.dumps({"argv0": sys.argv[0], "args": args, "stdin": stdin, "pid": os.getpid(),
                  "executable": sys.executable, "version": list(sys.version_info[:2])}))
sys.exit(next((int(a[7:]) for a in args if a.startswith("--exit=")), 0))
"""


def make_trampoline(path: Path, launcher: bytes, kind: int, spec: str, *, main_py: Optional[bytes] = PROBE,
                    entry_point: Optional[str] = None, modules: Optional[Dict[str, bytes]] = None) -> Path:
    payload = tf.build_payload(main_py if entry_point is None else None, entry_point, modules or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.assemble(launcher, payload, tf.footer(kind, spec, len(payload))))
    path.chmod(0o755)
    return path


def run(cmd, *, input: Optional[bytes] = None, env: Optional[Dict[str, str]] = None, timeout: float = 120):
    return subprocess.run([str(c) for c in cmd], input=input, env=env, capture_output=True, timeout=timeout)


def probe(result) -> dict:
    assert result.stdout, result.stderr.decode(errors="replace")
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The format, in pure Python


def test_footer_layout_is_exactly_as_documented():
    data = tf.footer(InterpreterKind.PATH, "python3", 1234)
    assert data == (
        b"python3"
        + b"XBTRAMP1"
        + (1).to_bytes(4, "little")  # version
        + (2).to_bytes(4, "little")  # kind
        + (7).to_bytes(4, "little")  # spec length
        + (0).to_bytes(4, "little")  # flags
        + (1234).to_bytes(8, "little")  # payload length
    )
    assert len(data) - len(b"python3") == tf.FOOTER_SIZE == 32


def test_payload_is_deterministic_sorted_and_fixed():
    modules_a = {"pkg/b.py": b"B = 2\n", "pkg/__init__.py": b"", "ns/deep/m.py": b"M = 1\n", "a.py": b"A = 1\n"}
    modules_b = dict(reversed(list(modules_a.items())))
    one = tf.build_payload(b"print(1)\n", None, modules_a)
    assert one == tf.build_payload(b"print(1)\n", None, modules_b)
    with zipfile.ZipFile(io.BytesIO(one)) as zf:
        infos = zf.infolist()
        assert zf.comment == b""
        assert zf.read("__main__.py") == b"print(1)\n"
        assert zf.read("pkg/b.py") == b"B = 2\n"
    names = [i.filename for i in infos]
    assert names == sorted(names) == [
        "__main__.py", "a.py", "ns/", "ns/deep/", "ns/deep/m.py", "pkg/", "pkg/__init__.py", "pkg/b.py",
    ]
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.create_system == 3
        if info.filename.endswith("/"):
            assert info.external_attr >> 16 == 0o040755 and info.compress_type == zipfile.ZIP_STORED
        else:
            assert info.external_attr >> 16 == 0o100644 and info.compress_type == zipfile.ZIP_DEFLATED
    stored = tf.build_payload(b"print(1)\n", None, modules_a, deflate=False)
    with zipfile.ZipFile(io.BytesIO(stored)) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_entry_point_main_calls_the_function_and_exits_with_its_result():
    text = tf.entry_point_main("tool.cli:main").decode()
    assert "from tool.cli import main\n" in text and "sys.exit(main())" in text
    text = tf.entry_point_main(" tool.cli : App.run ").decode()
    assert "from tool.cli import App\n" in text and "sys.exit(App.run())" in text
    payload = tf.build_payload(None, "tool.cli:main", {"tool/__init__.py": b"", "tool/cli.py": b"def main(): pass\n"})
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        assert zf.read("__main__.py") == tf.entry_point_main("tool.cli:main")


@pytest.mark.parametrize(
    "bad", ["tool.cli", "tool.cli:", ":main", "a:b:c", "tool cli:main", "tool.cli:main [extra]", "class.x:f",
            "tool..cli:main", "tool.cli:main()", "1tool:main", ""],
)
def test_invalid_entry_points_are_named_in_the_error(bad):
    with pytest.raises(ValueError) as err:
        tf.build_payload(None, bad, {})
    assert repr(bad) in str(err.value) and "module:function" in str(err.value).replace("package.module", "module")


@pytest.mark.parametrize("bad", ["/abs.py", "../up.py", "a/../b.py", "a//b.py", "./a.py", "a\\b.py", "dir/", "C:x.py", ""])
def test_invalid_module_paths(bad):
    with pytest.raises(ValueError, match="invalid module path"):
        tf.build_payload(b"", None, {bad: b""})


def test_exactly_one_main():
    with pytest.raises(ValueError, match="got none"):
        tf.build_payload(None, None, {"a.py": b""})
    with pytest.raises(ValueError, match="got main_py, entry_point"):
        tf.build_payload(b"", "a:b", {})
    with pytest.raises(ValueError, match="main_py, modules"):
        tf.build_payload(b"", None, {"__main__.py": b""})
    assert tf.build_payload(None, None, {"__main__.py": b"x"}) == tf.build_payload(b"x", None, {})
    with pytest.raises(ValueError, match="both a module and a directory"):
        tf.build_payload(b"", None, {"pkg": b"", "pkg/x.py": b""})


@pytest.mark.parametrize(
    "kind, spec, match",
    [
        (3, "python3", "invalid interpreter kind 3"),
        (0, "python3", "not an absolute path"),
        (0, "bin/python3", "not an absolute path"),
        (1, "/usr/bin/python3", "not a relative path"),
        (1, "C:\\Python\\python.exe", "not a relative path"),
        (1, "C:python.exe", "not a relative path"),
        (2, "bin/python3", "bare name"),
        (2, "C:python", "bare name"),
        (2, "", "non-empty"),
        (0, "/usr/bin/py\0", "NUL"),
        (2, "p" * 40000, "at most 32768"),
    ],
)
def test_footer_rejects_bad_specs(kind, spec, match):
    with pytest.raises(ValueError, match=match):
        tf.footer(kind, spec, 100)


def test_footer_accepts_posix_and_windows_specs():
    for kind, spec in [(0, "/usr/bin/python3"), (0, "C:\\Python312\\python.exe"), (0, "c:/py/python.exe"),
                       (0, "\\\\server\\share\\python.exe"), (1, "../venv/bin/python3"), (1, "..\\py\\pythonw.exe"),
                       (2, "python3"), (2, "pythonw.exe"), (0, "/opt/pythön/bin/python3")]:
        data = tf.footer(kind, spec, 22)
        assert data[-tf.FOOTER_SIZE:][:8] == tf.MAGIC and data.startswith(spec.encode())


def test_assemble_declares_the_footer_as_the_zip_comment_and_parses_back():
    payload = tf.build_payload(b"print('hi')\n", None, {"m.py": b"X = 1\n"})
    tail = tf.footer(InterpreterKind.RELATIVE, "../py/python3", len(payload))
    launcher = b"\x7fELF fake launcher bytes" * 10
    data = tf.assemble(launcher, payload, tail)
    assert data.startswith(launcher) and data.endswith(tail)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # prefix + comment: still a plain zip for zipfile
        assert zf.comment == tail
        assert zf.read("m.py") == b"X = 1\n"
    parsed = tf.parse_footer(data)
    assert parsed == tf.Footer(1, InterpreterKind.RELATIVE, "../py/python3", 0, len(launcher), len(payload))
    assert parsed.launcher_len == len(launcher) and parsed.trailer_len == len(tail)
    assert tf.payload_of(data) == payload
    with pytest.raises(ValueError, match="declares a"):
        tf.assemble(launcher, payload + b"x", tail)
    with pytest.raises(ValueError, match="already ends with a trampoline footer"):
        tf.assemble(data, payload, tail)
    with pytest.raises(ValueError, match="archive comment"):
        tf.assemble(launcher, data[len(launcher):-len(tail)], tail)


def test_host_python_runs_an_assembled_file_directly(tmp_path):
    """zipimport takes a zip with a prefix and the footer as its comment (no launcher involved)."""
    payload = tf.build_payload(PROBE, None, {})
    path = tmp_path / "direct"
    path.write_bytes(tf.assemble(b"#!/bin/false\n" + bytes(range(256)) * 8, payload,
                                 tf.footer(0, "/usr/bin/python3", len(payload))))
    result = run([HOST_PYTHON, path, "x", "--exit=4"])
    assert result.returncode == 4, result.stderr
    assert probe(result)["args"] == ["x", "--exit=4"]


def _corruptions(good: bytes, launcher_len: int):
    """(name, bytes, exit code) for files the launcher must refuse without crashing."""
    fixed = len(good) - tf.FOOTER_SIZE

    def patch(offset: int, value: bytes) -> bytes:
        data = bytearray(good)
        data[offset:offset + len(value)] = value
        return bytes(data)

    spec_len = struct.unpack_from("<I", good, fixed + 16)[0]
    payload_len = struct.unpack_from("<Q", good, fixed + 24)[0]
    eocd = fixed - spec_len - 22
    return [
        ("bare launcher", good[:launcher_len], LauncherExit.NO_FOOTER),
        ("truncated end", good[:-7], LauncherExit.NO_FOOTER),
        ("tiny file", good[-20:], LauncherExit.NO_FOOTER),
        ("bad magic", patch(fixed, b"XBTRAMP9"), LauncherExit.NO_FOOTER),
        ("version 2", patch(fixed + 8, struct.pack("<I", 2)), LauncherExit.CORRUPT),
        ("kind 9", patch(fixed + 12, struct.pack("<I", 9)), LauncherExit.CORRUPT),
        ("spec length 0", patch(fixed + 16, struct.pack("<I", 0)), LauncherExit.CORRUPT),
        ("spec length huge", patch(fixed + 16, struct.pack("<I", 0xFFFFFFF0)), LauncherExit.CORRUPT),
        ("flags", patch(fixed + 20, struct.pack("<I", 1)), LauncherExit.CORRUPT),
        ("payload longer than file", patch(fixed + 24, struct.pack("<Q", len(good) * 2)), LauncherExit.CORRUPT),
        ("payload length 2**64-1", patch(fixed + 24, b"\xff" * 8), LauncherExit.CORRUPT),
        ("payload shorter than said", patch(fixed + 24, struct.pack("<Q", payload_len - 5)), LauncherExit.CORRUPT),
        ("bytes cut from the payload", good[:launcher_len + 40] + good[launcher_len + 140:], LauncherExit.CORRUPT),
        ("no launcher before payload", good[launcher_len:], LauncherExit.CORRUPT),
        ("zip comment length wrong", patch(eocd + 20, b"\x00\x00"), LauncherExit.CORRUPT),
        ("NUL in spec", patch(fixed - 1, b"\0"), LauncherExit.CORRUPT),
    ]


def test_parse_footer_refuses_corrupt_files_with_the_launchers_exit_codes():
    payload = tf.build_payload(PROBE, None, {})
    launcher = b"L" * 300
    good = tf.assemble(launcher, payload, tf.footer(0, "/usr/bin/python3", len(payload)))
    tf.parse_footer(good)
    for name, data, code in _corruptions(good, len(launcher)):
        with pytest.raises(tf.FooterError) as err:
            tf.parse_footer(data)
        assert err.value.exit_code == code, name


def test_launcher_build_commands():
    linux = tf.launcher_build_commands("zig", "aarch64-linux-musl", "l.c", "out")
    assert linux == [["zig", "cc", "-target", "aarch64-linux-musl", "-std=c11", "-Os", "-ffunction-sections",
                      "-fdata-sections", "-g0", "-s", "-Wl,--gc-sections", "l.c", "-o", "out"]]
    compile_, link = tf.launcher_build_commands("zig", "x86_64-windows-gnu", "l.c", "out.exe", gui=True)
    assert compile_[-3:] == ["l.c", "-o", "out.exe.o"] and "-c" in compile_
    assert "-nostdlib" in link and "-Wl,--subsystem,windows" in link and "-Wl,-Brepro" in link
    with pytest.raises(ValueError, match="no launcher for target"):
        tf.launcher_build_commands("zig", "riscv64-freestanding", "l.c", "out")


def test_the_plugin_puts_every_launcher_source_in_the_sandbox():
    on_disk = sorted(p.name for p in LAUNCHER_SOURCES.iterdir() if p.suffix in (".c", ".h"))
    assert on_disk == sorted(LAUNCHER_FILES)


# ---------------------------------------------------------------------------------------------
# The Linux launcher, running real Python


@pytest.fixture(scope="session")
def linux_launcher(launchers) -> bytes:
    if not IS_X86_64_LINUX:
        pytest.skip("needs an x86_64 Linux host")
    return launchers.get("x86_64-linux-musl")


@needs_zig
@needs_host
def test_arguments_stdin_exit_code_and_no_child_left_behind(tmp_path, linux_launcher):
    tool = make_trampoline(tmp_path / "tool", linux_launcher, InterpreterKind.ABSOLUTE, HOST_PYTHON)
    args = ["plain", "with space", "ünïcødé ✓", "", "--flag=a b", "*", "$HOME", "a\"quote", "back\\slash\\",
            "tab\there", "new\nline", "--stdin", "--exit=42"]
    proc = subprocess.Popen([str(tool), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate("stdin ✓ data\n".encode(), timeout=60)
    assert proc.returncode == 42, err
    got = json.loads(out)
    assert got["args"] == args
    assert got["argv0"] == str(tool)
    assert got["stdin"] == "stdin ✓ data\n"
    assert got["executable"] == HOST_PYTHON
    assert got["pid"] == proc.pid  # execv: Python replaced the launcher, nothing left behind


@needs_zig
@needs_host
def test_exit_codes_and_uncaught_exceptions(tmp_path, linux_launcher):
    tool = make_trampoline(tmp_path / "exit3", linux_launcher, 0, HOST_PYTHON, main_py=b"import sys\nsys.exit(3)\n")
    assert run([tool]).returncode == 3
    tool = make_trampoline(tmp_path / "boom", linux_launcher, 0, HOST_PYTHON, main_py=b"raise RuntimeError('boom')\n")
    result = run([tool])
    assert result.returncode == 1 and b"RuntimeError: boom" in result.stderr


@needs_zig
@needs_host
def test_bundled_modules_import_from_the_zip(tmp_path, linux_launcher):
    main = b"""\
import helper, helper.greet, nspkg.sub
print(helper.greet.greet("zip"), nspkg.sub.VALUE, helper.__file__)
"""
    modules = {
        "helper/__init__.py": b"",
        "helper/greet.py": b"def greet(name):\n    return 'hello ' + name\n",
        "nspkg/sub.py": b"VALUE = 'namespace package'\n",  # no __init__.py: a namespace package
    }
    tool = make_trampoline(tmp_path / "tool", linux_launcher, 0, HOST_PYTHON, main_py=main, modules=modules)
    result = run([tool])
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split(" ", 4) == ["hello", "zip", "namespace", "package",
                                                     f"{tool}/helper/__init__.py\n"]


@needs_zig
@needs_host
def test_entry_point_mode(tmp_path, linux_launcher):
    modules = {
        "tool/__init__.py": b"",
        "tool/cli.py": b"import sys\n\ndef main():\n    print('main', sys.argv[1:])\n    return 7\n\n"
                       b"class App:\n    @staticmethod\n    def run():\n        print('run')\n        return 'failed'\n",
    }
    tool = make_trampoline(tmp_path / "tool", linux_launcher, 0, HOST_PYTHON, entry_point="tool.cli:main",
                           modules=modules)
    result = run([tool, "x y", "ü"])
    assert (result.returncode, result.stdout.decode()) == (7, "main ['x y', 'ü']\n"), result.stderr
    tool = make_trampoline(tmp_path / "app", linux_launcher, 0, HOST_PYTHON, entry_point="tool.cli:App.run",
                           modules=modules)
    result = run([tool])
    assert (result.returncode, result.stdout, result.stderr) == (1, b"run\n", b"failed\n")


@needs_zig
@needs_host
def test_interpreter_relative_to_the_launcher_and_relocatable(tmp_path, linux_launcher):
    app = tmp_path / "app ✓"
    (app / "py").mkdir(parents=True)
    os.symlink(HOST_PYTHON, app / "py" / "python3")
    make_trampoline(app / "bin" / "tool", linux_launcher, InterpreterKind.RELATIVE, "../py/python3")
    moved = tmp_path / "elsewhere" / "moved app"
    moved.parent.mkdir()
    shutil.move(str(app), str(moved))
    result = run([moved / "bin" / "tool", "a b"], env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    got = probe(result)
    assert got["args"] == ["a b"]
    assert got["argv0"] == str(moved / "bin" / "tool")
    assert got["executable"] in (str(moved / "bin" / ".." / "py" / "python3"), str(moved / "py" / "python3"))


@needs_zig
@needs_host
def test_interpreter_on_path(tmp_path, linux_launcher):
    decoys, good = tmp_path / "decoys", tmp_path / "good dir"
    (decoys / "xb-python-test").mkdir(parents=True)  # a directory with the name: skipped
    good.mkdir()
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    (noexec / "xb-python-test").write_text("not executable")  # mode 0644: skipped
    os.symlink(HOST_PYTHON, good / "xb-python-test")
    tool = make_trampoline(tmp_path / "tool", linux_launcher, InterpreterKind.PATH, "xb-python-test")
    path = os.pathsep.join(["/nonexistent", "", str(decoys), str(noexec), str(good), "/usr/bin"])
    result = run([tool, "--exit=5"], env={"PATH": path})
    assert result.returncode == 5, result.stderr
    assert probe(result)["executable"] == str(good / "xb-python-test")


@needs_zig
@needs_host
def test_interpreter_not_found_names_every_candidate(tmp_path, linux_launcher):
    tool = make_trampoline(tmp_path / "tool", linux_launcher, InterpreterKind.PATH, "no-such-python")
    result = run([tool], env={"PATH": "/nonexistent-a::/nonexistent-b/"})
    assert result.returncode == LauncherExit.NOT_FOUND == 102
    assert result.stdout == b""
    assert result.stderr.decode() == (
        f"crossbuild trampoline ({tool}): interpreter \"no-such-python\" (name looked up on PATH) not found; tried:\n"
        "  /nonexistent-a/no-such-python\n"
        "  /nonexistent-b/no-such-python\n"
    )
    result = run([tool], env={})
    assert result.returncode == 102 and b"PATH is unset" in result.stderr and b"/usr/bin/no-such-python" in result.stderr

    tool = make_trampoline(tmp_path / "abs", linux_launcher, InterpreterKind.ABSOLUTE, "/nonexistent/python3")
    result = run([tool])
    assert result.returncode == 102 and b"tried:\n  /nonexistent/python3\n" in result.stderr

    tool = make_trampoline(tmp_path / "d ü" / "rel", linux_launcher, InterpreterKind.RELATIVE, "../venv/bin/python")
    result = run([tool])
    assert result.returncode == 102
    assert f"tried:\n  {tmp_path / 'd ü'}/../venv/bin/python\n" in result.stderr.decode()


@needs_zig
@needs_host
def test_interpreter_that_cannot_be_executed(tmp_path, linux_launcher):
    bogus = tmp_path / "python3"
    bogus.write_bytes(b"\x7fELF but not really an executable")
    bogus.chmod(0o755)
    tool = make_trampoline(tmp_path / "tool", linux_launcher, InterpreterKind.ABSOLUTE, str(bogus))
    result = run([tool])
    assert result.returncode == LauncherExit.EXEC == 103
    assert result.stderr.decode() == f"crossbuild trampoline ({tool}): cannot execute interpreter {bogus}: Exec format error\n"


@needs_zig
@needs_host
def test_corrupt_files_give_distinct_exit_codes_and_no_crash(tmp_path, linux_launcher):
    good = make_trampoline(tmp_path / "good", linux_launcher, 0, HOST_PYTHON).read_bytes()
    for i, (name, data, code) in enumerate(_corruptions(good, len(linux_launcher))):
        if name in ("tiny file", "no launcher before payload"):
            continue  # not executables any more
        path = tmp_path / f"bad{i}"
        path.write_bytes(data)
        path.chmod(0o755)
        result = run([path])
        message = result.stderr.decode()
        assert result.returncode == code, (name, message)
        assert message.startswith(f"crossbuild trampoline ({path}): ") and message.endswith("\n"), name
        assert message.count("\n") == 1, name
        with pytest.raises(tf.FooterError) as err:
            tf.parse_footer(data)
        assert err.value.exit_code == code, name
        if code == LauncherExit.NO_FOOTER:
            assert "no trampoline payload" in message
        else:
            assert "corrupt trampoline" in message


@needs_zig
@needs_host
def test_launcher_location_with_spaces_and_non_ascii(tmp_path, linux_launcher):
    tool = make_trampoline(tmp_path / "dir with spaces" / "ünïcødé ✓" / "my tool", linux_launcher, 0, HOST_PYTHON)
    result = run([tool, "arg"])
    assert result.returncode == 0, result.stderr
    assert probe(result)["argv0"] == str(tool)
    link = tmp_path / "link to tool"
    os.symlink(tool, link)  # run through a symlink: the real file is the script
    result = run([link])
    assert result.returncode == 0, result.stderr
    assert probe(result)["argv0"] == str(tool)


def _other_pythons() -> List[str]:
    """CPythons installed beside the one running the tests (pyenv's and the system's)."""
    found = set()
    roots = [Path(os.path.expanduser("~/.pyenv/versions")), Path("/usr/bin"), Path("/usr/local/bin")]
    for root in roots:
        if not root.is_dir():
            continue
        candidates = root.glob("*/bin/python3") if root.name == "versions" else root.glob("python3.[0-9]*")
        for c in candidates:
            if c.name.endswith("-config") or not os.access(c, os.X_OK):
                continue
            found.add(os.path.realpath(c))
    return sorted(found)


@needs_zig
@needs_host
@pytest.mark.parametrize("python", _other_pythons() or ["<none>"])
def test_every_cpython_from_3_8_runs_trampolines(tmp_path, linux_launcher, python):
    if python == "<none>":
        pytest.skip("no other CPython installed")
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[0] * 100 + sys.version_info[1])"],
                             capture_output=True, text=True)
    if version.returncode != 0 or int(version.stdout) < 308:
        pytest.skip(f"{python} is older than 3.8: its zipimport reads no zip with a comment")
    tool = make_trampoline(tmp_path / "tool", linux_launcher, 0, python, modules={"m.py": b""})
    result = run([tool, "ü", "--exit=9"])
    assert result.returncode == 9, result.stderr
    assert probe(result)["args"] == ["ü", "--exit=9"]


# ---------------------------------------------------------------------------------------------
# All four targets: size and reproducibility


SYSTEM_DLLS = {"kernel32.dll", "user32.dll", "shell32.dll", "advapi32.dll", "ntdll.dll"}
WINDOWS_MACHINE = {"x86_64-windows-gnu": 0x8664, "aarch64-windows-gnu": 0xAA64}


@needs_zig
@pytest.mark.parametrize("target", tf.LAUNCHER_TARGETS)
def test_launcher_is_small_and_reproducible(tmp_path, launchers, target):
    variants = [False, True] if "windows" in target else [False]
    for gui in variants:
        first = launchers.get(target, gui)
        # Again, from a copy of the sources elsewhere, from another directory, another environment.
        copy = tmp_path / f"elsewhere {gui}" / "src ü" / LAUNCHER_SOURCE
        copy.parent.mkdir(parents=True)
        for name in LAUNCHER_FILES:
            shutil.copy(LAUNCHER_SOURCES / name, copy.parent / name)
        env = dict(os.environ, SOURCE_DATE_EPOCH="1234567890", TZ="Asia/Tokyo")
        second = build_launcher(target, tmp_path / f"out {gui}", gui=gui, source=copy, env=env)
        assert first == second, f"{target} (gui={gui}) is not reproducible"
        assert len(first) < SIZE_LIMIT, f"{target}: {len(first)} bytes"
        assert not list((tmp_path / f"out {gui}").glob("*.pdb")), "zig wrote a .pdb"
        assert str(copy.parent).encode() not in first and b"launcher.c" not in first
        assert not [name for name in LAUNCHER_FILES if name.encode() in first]
        print(f"{target}{' gui' if gui else ''}: {len(first)} bytes")


@needs_zig
@pytest.mark.parametrize("target", ["x86_64-windows-gnu", "aarch64-windows-gnu"])
def test_windows_launcher_pe_headers(tmp_path, launchers, target):
    console, gui = pe_facts(launchers.get(target)), pe_facts(launchers.get(target, gui=True))
    for pe in (console, gui):
        assert pe["machine"] == WINDOWS_MACHINE[target]
        assert pe["imports"] == ["KERNEL32.dll"], pe["imports"]  # no C runtime DLLs
        assert {name.lower() for name in pe["imports"]} <= SYSTEM_DLLS
        assert pe["delay_imports"] == (0, 0)
        # Only an IMAGE_DEBUG_TYPE_REPRO entry (no CodeView record naming a .pdb): -Brepro made the
        # TimeDateStamp a hash of the image, and lld writes the same hash into that entry.
        assert pe["debug"] == [(16, pe["timestamp"])], pe["debug"]
    assert (console["subsystem"], gui["subsystem"]) == (3, 2)  # IMAGE_SUBSYSTEM_WINDOWS_CUI / _GUI
    print(f"{target}: imports {console['imports']}, TimeDateStamp {console['timestamp']:#x} "
          f"(gui {gui['timestamp']:#x}), sections {console['sections']}")

    payload = tf.build_payload(None, "tool.cli:main", {"tool/__init__.py": b"", "tool/cli.py": b"def main(): pass\n"})
    tail = tf.footer(InterpreterKind.RELATIVE, "..\\python\\pythonw.exe", len(payload))
    exe = tf.assemble(launchers.get(target, gui=True), payload, tail)
    footer = tf.parse_footer(exe)
    assert (footer.interpreter_kind, footer.interpreter_spec) == (InterpreterKind.RELATIVE, "..\\python\\pythonw.exe")
    assert pe_facts(exe) == gui  # appending leaves the PE image alone
    with zipfile.ZipFile(io.BytesIO(exe)) as zf:
        assert "sys.exit(main())" in zf.read("__main__.py").decode()


# ---------------------------------------------------------------------------------------------
# aarch64 Linux under qemu-user

STANDIN_POSIX = r"""
/* Stand-in interpreter: prints its arguments, exits with N given --exit=N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int code = 0;
    for (int i = 0; i < argc; i++) {
        printf("arg=%s\n", argv[i]);
        if (strncmp(argv[i], "--exit=", 7) == 0) code = atoi(argv[i] + 7);
    }
    return code;
}
"""


def _binfmt_runs_aarch64() -> bool:
    return any(Path(p).exists() for p in ("/proc/sys/fs/binfmt_misc/qemu-aarch64",
                                          "/proc/sys/fs/binfmt_misc/aarch64"))


@needs_zig
@needs_host
@pytest.mark.skipif(QEMU_AARCH64 is None, reason="qemu-aarch64-static is not installed")
def test_aarch64_launcher_under_qemu(tmp_path, launchers):
    launcher = launchers.get("aarch64-linux-musl")
    assert launcher[:4] == b"\x7fELF" and struct.unpack_from("<H", launcher, 18)[0] == 183  # EM_AARCH64
    standin_arm = build_program("aarch64-linux-musl", STANDIN_POSIX, tmp_path / "arm" / "standin")
    # The stand-in itself runs under qemu.
    result = run([QEMU_AARCH64, standin_arm, "x", "--exit=3"])
    assert (result.returncode, result.stdout) == (3, f"arg={standin_arm}\narg=x\narg=--exit=3\n".encode())
    # qemu-user hands execve to the host kernel, which runs an aarch64 binary only through
    # binfmt_misc; without it, the interpreter the launcher execs is a host build of the stand-in.
    if _binfmt_runs_aarch64():
        interpreter = standin_arm
    else:
        interpreter = build_program("x86_64-linux-musl", STANDIN_POSIX, tmp_path / "host" / "standin")
    app = tmp_path / "app ü"
    (app / "py").mkdir(parents=True)
    shutil.copy(interpreter, app / "py" / "python3")
    tool = make_trampoline(app / "bin" / "tool", launcher, InterpreterKind.RELATIVE, "../py/python3")
    result = run([QEMU_AARCH64, tool, "a b", "ü", "", "--exit=17"])
    assert result.returncode == 17, result.stderr
    assert result.stdout.decode().splitlines() == [
        f"arg={app}/bin/../py/python3", f"arg={tool}", "arg=a b", "arg=ü", "arg=", "arg=--exit=17",
    ]
    # PATH lookup, not found, no footer, corrupt footer: the same codes on aarch64.
    tool = make_trampoline(tmp_path / "onpath", launcher, InterpreterKind.PATH, "python3")
    result = run([QEMU_AARCH64, tool, "z"], env={"PATH": f"/nonexistent:{app / 'py'}"})
    assert (result.returncode, result.stdout.decode().splitlines()[-1]) == (0, "arg=z"), result.stderr
    result = run([QEMU_AARCH64, tool], env={"PATH": "/nonexistent"})
    assert result.returncode == 102 and b"tried:\n  /nonexistent/python3\n" in result.stderr
    bare = tmp_path / "bare"
    bare.write_bytes(launcher)
    bare.chmod(0o755)
    assert run([QEMU_AARCH64, bare]).returncode == 101
    corrupt = tmp_path / "corrupt"
    data = bytearray(tool.read_bytes())
    data[-24:-20] = struct.pack("<I", 7)
    corrupt.write_bytes(bytes(data))
    corrupt.chmod(0o755)
    result = run([QEMU_AARCH64, corrupt])
    assert result.returncode == 104 and b"unsupported format version 7" in result.stderr
    if not _binfmt_runs_aarch64():  # the launcher reports the failed execve of the aarch64 stand-in
        tool = make_trampoline(tmp_path / "armexec", launcher, InterpreterKind.ABSOLUTE, str(standin_arm))
        result = run([QEMU_AARCH64, tool])
        assert result.returncode == 103 and b"Exec format error" in result.stderr


# ---------------------------------------------------------------------------------------------
# The x86_64 Windows launcher under wine (where installed)

STANDIN_WINDOWS = r"""
/* Stand-in interpreter for Windows: prints its raw command line and its arguments as
 * CommandLineToArgvW splits them (UTF-8), echoes stdin given --stdin, sleeps given --sleep,
 * exits with N given --exit=N. No C runtime. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <shellapi.h>
void *memset(void *d, int c, size_t n);
void *memset(void *d, int c, size_t n) { volatile unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
static void put(HANDLE h, const wchar_t *w) {
    static char buf[8192]; DWORD done;
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof buf, NULL, NULL);
    if (n > 1) WriteFile(h, buf, (DWORD)(n - 1), &done, NULL);
}
static int starts(const wchar_t *s, const wchar_t *p) { while (*p) if (*s++ != *p++) return 0; return 1; }
void standin_entry(void);
void standin_entry(void) {
    HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
    const wchar_t *cmd = GetCommandLineW();
    put(out, L"cmdline="); put(out, cmd); put(out, L"\n");
    int argc = 0; wchar_t **argv = CommandLineToArgvW(cmd, &argc);
    UINT code = 0; int echo = 0, sleep = 0;
    for (int i = 0; i < argc; i++) {
        put(out, L"arg="); put(out, argv[i]); put(out, L"\n");
        if (starts(argv[i], L"--exit=")) { code = 0; for (const wchar_t *p = argv[i] + 7; *p >= L'0' && *p <= L'9'; p++) code = code * 10 + (UINT)(*p - L'0'); }
        if (starts(argv[i], L"--stdin")) echo = 1;
        if (starts(argv[i], L"--sleep")) sleep = 1;
    }
    if (echo) {
        static char buf[4096]; DWORD got, done; HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
        WriteFile(out, "stdin=", 6, &done, NULL);
        while (ReadFile(in, buf, sizeof buf, &got, NULL) && got) WriteFile(out, buf, got, &done, NULL);
    }
    if (sleep) { put(out, L"sleeping\n"); Sleep(120000); }
    ExitProcess(code);
}
"""


def _windows_path(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


class Wine:
    def __init__(self, prefix: Path, standin: Path) -> None:
        self.prefix = prefix
        self.standin = standin
        self.env = dict(os.environ, WINEPREFIX=str(prefix), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")

    def run(self, exe: Path, *args: str, input: Optional[bytes] = None, env: Optional[Dict[str, str]] = None):
        return run([WINE, exe, *args], input=input, env=dict(self.env, **(env or {})), timeout=300)


@pytest.fixture(scope="session")
def wine(tmp_path_factory, launchers):
    if WINE is None:
        pytest.skip("wine is not installed (apt-get install wine64): the Windows launcher is only inspected")
    root = tmp_path_factory.mktemp("wine")
    standin = build_program("x86_64-windows-gnu", STANDIN_WINDOWS, root / "standin.exe",
                            windows_entry="standin_entry", libs=("-lshell32",))
    w = Wine(root / "prefix", standin)
    yield w
    wineserver = shutil.which("wineserver") or "/usr/lib/wine/wineserver64"
    if os.access(wineserver, os.X_OK):  # stop this prefix's processes, nothing else
        subprocess.run([wineserver, "-k"], env=w.env, capture_output=True, timeout=60)


def _args_of(stdout: bytes) -> List[str]:
    return [line[4:] for line in stdout.decode().splitlines() if line.startswith("arg=")]


@needs_zig
@pytest.mark.parametrize("gui", [False, True], ids=["console", "gui"])
def test_windows_launcher_under_wine(tmp_path, launchers, wine, gui):
    launcher = launchers.get("x86_64-windows-gnu", gui=gui)
    app = tmp_path / "app dir ü"
    (app / "py").mkdir(parents=True)
    shutil.copy(wine.standin, app / "py" / "python.exe")
    tool = make_trampoline(app / "bin" / "tool.exe", launcher, InterpreterKind.RELATIVE, "../py/python.exe")
    args = ["a b", "ü ✓", "", 'x"y', "c:\\end\\", "--stdin", "--exit=7"]
    result = wine.run(tool, *args, input=b"from stdin")
    assert result.returncode == 7, result.stderr
    lines = result.stdout.decode().splitlines()
    interpreter = _windows_path(app / "bin") + "\\..\\py\\python.exe"
    launcher_path = _windows_path(app / "bin" / "tool.exe")
    # Both inserted paths quoted, the caller's arguments passed on as the caller's command line had them.
    assert lines[0].startswith(f'cmdline="{interpreter}" "{launcher_path}" ')
    assert _args_of(result.stdout) == [interpreter, launcher_path, *args]
    assert lines[-1] == "stdin=from stdin"

    absolute = make_trampoline(tmp_path / "abs.exe", launcher, InterpreterKind.ABSOLUTE,
                               _windows_path(app / "py" / "python.exe"))
    result = wine.run(absolute, "--exit=3")
    assert result.returncode == 3 and _args_of(result.stdout)[2:] == ["--exit=3"]

    onpath = make_trampoline(tmp_path / "onpath.exe", launcher, InterpreterKind.PATH, "python")
    result = wine.run(onpath, "q", env={"WINEPATH": f"Z:\\nonexistent;{_windows_path(app / 'py')}"})
    assert result.returncode == 0 and _args_of(result.stdout)[0] == _windows_path(app / "py" / "python.exe")

    missing = make_trampoline(tmp_path / "missing.exe", launcher, InterpreterKind.PATH, "nopython")
    result = wine.run(missing, env={"WINEPATH": "Z:\\nonexistent-a"})
    assert result.returncode == 102
    assert "not found; tried:\n  Z:\\nonexistent-a\\nopython.exe\n" in result.stderr.decode()

    bare = tmp_path / "bare.exe"
    bare.write_bytes(launcher)
    result = wine.run(bare)
    assert result.returncode == 101 and b"no trampoline payload" in result.stderr


@needs_zig
def test_windows_child_dies_with_the_launcher(tmp_path, launchers, wine):
    """KILL_ON_JOB_CLOSE: kill the launcher and the interpreter goes too (its stdout reaches EOF)."""
    shutil.copy(wine.standin, tmp_path / "python.exe")
    tool = make_trampoline(tmp_path / "tool.exe", launchers.get("x86_64-windows-gnu"), InterpreterKind.RELATIVE,
                           "python.exe")
    proc = subprocess.Popen([WINE, str(tool), "--sleep"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=wine.env)
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + 120
    while b"sleeping\n" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    assert b"sleeping\n" in seen, seen
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    eof = False
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0] and not os.read(fd, 4096):
            eof = True
            break
    proc.stdout.close()
    assert eof, "the interpreter outlived the launcher"


QUOTING_HARNESS = r"""
/* Runs the launcher's own quoting (wb_quoted) and argument-tail (args_tail) code. */
#include "@LAUNCHER@"
static const wchar_t *const cases[] = {
    L"plain", L"with space", L"", L"a\"b", L"trail\\", L"trail space\\", L"\\\\server\\x y\\",
    L"a\\\\\"b", L"tab\there", L"\"", L"\\\"", L"\\", L"x\\\\", L"\u00fc \u2713", L"new\nline", L"--k=\"v w\"",
};
static const wchar_t *const lines[] = {
    L"prog a b", L"\"C:\\a b\\prog.exe\" x", L"\"C:\\a b\"\\prog.exe  x \"y\"", L"prog", L"prog   ",
    L" x y", L"\"unterminated x", L"p\"q r\"s t", L"prog\t\"a\" b\\\\",
};
static void out8(const char *s) { DWORD d; WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, (DWORD)xb_strlen(s), &d, NULL); }
void harness_entry(void);
void harness_entry(void) {
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        out8("tail="); out8(to_utf8(args_tail(lines[i]))); out8("|\n");
    }
    const wchar_t *standin = args_tail(GetCommandLineW());
    wbuf cmd = {0};
    wb_quoted(&cmd, standin);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wb_ch(&cmd, L' ');
        wb_quoted(&cmd, cases[i]);
    }
    STARTUPINFOW si = {0};
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(standin, cmd.p, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) ExitProcess(99);
    WaitForSingleObject(pi.hProcess, INFINITE);
    ExitProcess(0);
}
"""
QUOTING_CASES = ["plain", "with space", "", 'a"b', "trail\\", "trail space\\", "\\\\server\\x y\\", 'a\\\\"b',
                 "tab\there", '"', '\\"', "\\", "x\\\\", "ü ✓", "new\nline", '--k="v w"']


@needs_zig
def test_windows_quoting_and_argument_tail_round_trip(tmp_path, wine):
    """wb_quoted's output parses back (CommandLineToArgvW) to the very strings; args_tail skips
    the program name the way the UCRT does."""
    harness = build_program("x86_64-windows-gnu", QUOTING_HARNESS.replace("@LAUNCHER@", str(LAUNCHER_C)),
                            tmp_path / "harness.exe", windows_entry="harness_entry")
    shutil.copy(wine.standin, tmp_path / "standin.exe")
    result = wine.run(harness, _windows_path(tmp_path / "standin.exe"))
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    tails = [line[5:-1] for line in text.split("\n") if line.startswith("tail=")]
    assert tails == ["a b", "x", 'x "y"', "", "", "x y", "", "t", '"a" b\\\\']
    args = text.split("\narg=")[1:]
    args[-1] = args[-1].rstrip("\n")
    assert args == [_windows_path(tmp_path / "standin.exe"), *QUOTING_CASES]
