"""shard_runner.c and the harness's --run mode, end to end: both built with the plugin's pinned
zig, real test binaries, real signals and timeouts, natively and in the emulated aarch64
userland (proot + qemu-user, as the ARM64 executor runs them). Nothing is mocked. The runner's
`@FLAGFILE` form and its persistent-worker mode are driven as an executor would: the worker
over real pipes, with protobuf frames written here by hand.

Run: ./pants test pants-plugins/crossbuild/resources/shard_runner_test.py
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from reapi_bridge.executor.arm64_userland import build_rootfs, host_runner

HERE = Path(__file__).resolve().parent
RUNNER_C = HERE / "shard_runner.c"
HARNESS = HERE / "crossbuild_test.h"
HOST = "aarch64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
OTHER = {"aarch64": "x86_64", "x86_64": "aarch64"}[HOST]
PATH = "/usr/local/bin:/usr/bin:/bin"


def _find_zig() -> Optional[str]:
    override = os.environ.get("CROSSBUILD_ZIG")
    if override and Path(override).exists():
        return override
    try:
        import ziglang  # type: ignore[import-not-found]

        return str(Path(ziglang.__file__).parent / "zig")
    except ImportError:
        return None


ZIG = _find_zig()
if ZIG is None and os.environ.get("CROSSBUILD_REQUIRE_ZIG") == "1":
    raise RuntimeError("CROSSBUILD_REQUIRE_ZIG=1 but no zig: run .ci/install-ziglang")
pytestmark = pytest.mark.skipif(ZIG is None, reason="no zig ($CROSSBUILD_ZIG unset, ziglang not importable)")

# Cases that misbehave in every way the runner must survive. `smash_global` corrupts state
# that `sees_clean_global` checks: in one process per case, the second never sees it.
BAD_C = r"""
#include "crossbuild_test.h"
#include <signal.h>
#include <unistd.h>
static int global_state = 7;
CB_TEST(passes) { CB_ASSERT_EQ_INT(2 + 2, 4); }
CB_TEST(fails) { printf("before the failure\n"); CB_ASSERT_EQ_INT(1, 2); }
CB_TEST(segfaults) { volatile int *p = (int *)0; *p = 1; }
CB_TEST(hangs) { for (;;) pause(); }
CB_TEST(exits_zero_early) { exit(0); }
CB_TEST(aborts) { abort(); }
CB_TEST(floods_output) {
    static char block[65536];
    int i;
    memset(block, 'x', sizeof block);
    for (i = 0; i < 160; i++) fwrite(block, 1, sizeof block, stdout); /* 10 MiB */
    printf("\nTHE-END-OF-THE-FLOOD\n");
    CB_FAIL("flooded");
}
CB_TEST(smash_global) { global_state = 99; CB_ASSERT_EQ_INT(global_state, 99); }
CB_TEST(sees_clean_global) { CB_ASSERT_EQ_INT(global_state, 7); }
CB_TEST(sees_shard_variables) {
    CB_ASSERT(getenv("TEST_SHARD_INDEX") != NULL);
    CB_ASSERT(getenv("TEST_TOTAL_SHARDS") != NULL);
    printf("shard vars %s/%s\n", getenv("TEST_SHARD_INDEX"), getenv("TEST_TOTAL_SHARDS"));
}
"""

EXPECTED = {
    "passes": ("PASS", None),
    "fails": ("FAIL", "exit status 1"),
    "segfaults": ("CRASH", "killed by signal 11 (SIGSEGV)"),
    "hangs": ("TIMEOUT", "timed out after 2s"),
    "exits_zero_early": ("FAIL", "exit status 4 (the case called exit() before it finished)"),
    "aborts": ("CRASH", "killed by signal 6 (SIGABRT)"),
    "floods_output": ("FAIL", "exit status 1"),
    "smash_global": ("PASS", None),
    "sees_clean_global": ("PASS", None),
    "sees_shard_variables": ("PASS", None),
}

# A binary that speaks only --list / --exact (no harness): one process per case.
OLD_C = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) { puts("old_pass"); puts("old_fail"); puts("old_crash"); return 0; }
    if (argc == 3 && strcmp(argv[1], "--exact") == 0) {
        if (strcmp(argv[2], "old_pass") == 0) return 0;
        if (strcmp(argv[2], "old_fail") == 0) { fprintf(stderr, "old says no\n"); return 1; }
        if (strcmp(argv[2], "old_crash") == 0) { volatile int *p = (int *)0; return *p; }
        return 2;
    }
    fprintf(stderr, "unknown arguments\n");
    return 2;
}
"""

LIST_CRASH_C = r"""
#include <string.h>
int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) { volatile int *p = (int *)0; return *p; }
    return 0;
}
"""

# Shows what its test processes see of the sharding variables.
ENV_C = r"""
#include "crossbuild_test.h"
#include <stdlib.h>
CB_TEST(shows_shard_variables) {
    printf("shard variables %s of %s\n", getenv("TEST_SHARD_INDEX"), getenv("TEST_TOTAL_SHARDS"));
    CB_FAIL("shown");
}
"""

MANY_C = '#include "crossbuild_test.h"\n' + "".join(
    f"CB_TEST(case_{i:03d}) {{ CB_ASSERT_EQ_INT({i} * 2, {i * 2}); }}\n" for i in range(60)
)


def zig_cc(target: str, source: Path, out: Path) -> Path:
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR="/tmp/crossbuild-test-zig-cache", ZIG_LOCAL_CACHE_DIR=str(out.parent / ".zig-local"))
    subprocess.run(
        [ZIG, "cc", "-target", f"{target}-linux-musl", "-std=c11", "-O2", "-Wall", "-Werror",
         f"-I{HARNESS.parent}", str(source), "-o", str(out)],
        check=True, env=env, capture_output=True, text=True,
    )
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Dict[str, Dict[str, Path]]:
    """runner, bad, old, listcrash, many and env, for both architectures."""
    out = tmp_path_factory.mktemp("built")
    sources = {"bad": BAD_C, "old": OLD_C, "listcrash": LIST_CRASH_C, "many": MANY_C, "env": ENV_C}
    for name, text in sources.items():
        (out / f"{name}.c").write_text(text)
    result: Dict[str, Dict[str, Path]] = {}
    for arch in ("x86_64", "aarch64"):
        result[arch] = {"runner": zig_cc(arch, RUNNER_C, out / f"runner-{arch}")}
        for name in sources:
            result[arch][name] = zig_cc(arch, out / f"{name}.c", out / f"{name}-{arch}")
    return result


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    xml: Optional[ET.Element]

    def cases(self) -> Dict[str, ET.Element]:
        assert self.xml is not None, self.stdout + self.stderr
        return {c.get("name"): c for c in self.xml.iter("testcase")}


def sandbox(tmp_path: Path, built, arch: str, binary: str) -> Path:
    box = tmp_path / "box"
    (box / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(built[arch]["runner"], box / "shard_runner")
    shutil.copy(built[arch][binary], box / "bin" / "t")
    return box


def run_native(box: Path, *args: str, env: Optional[dict] = None, runner: str = "./shard_runner") -> Run:
    proc = subprocess.run(
        [runner, "bin/t", *args, "out.xml"], cwd=box, capture_output=True, text=True,
        env={"PATH": PATH, "TEST_SHARD_INDEX": args[0], "TEST_TOTAL_SHARDS": args[1], **(env or {})},
    )
    xml = box / "out.xml"
    return Run(proc.returncode, proc.stdout, proc.stderr, ET.parse(xml).getroot() if xml.exists() else None)


def check_bad_binary(run: Run) -> None:
    cases = run.cases()
    assert set(cases) == set(EXPECTED)
    assert run.returncode == 1
    for name, (kind, message) in EXPECTED.items():
        problem = cases[name].find("failure")
        if kind == "PASS":
            assert problem is None, (name, run.stdout)
        else:
            assert problem is not None and problem.get("message") == message, (name, run.stdout)
            assert problem.get("type") == kind.lower(), name
        assert f"{kind} bin/t::{name} (" in run.stdout
    flood = cases["floods_output"].find("failure").text
    assert "THE-END-OF-THE-FLOOD" in flood and "bytes omitted" in flood
    assert len(flood.encode()) < 65536 + 200, "kept to its last 64 KiB"
    assert "before the failure" in cases["fails"].find("failure").text
    assert float(cases["hangs"].get("time")) >= 2.0
    assert "shard 1/1, bin/t: 4 passed, 3 failed, 1 timed out, 2 crashed of 10 cases" in run.stdout


def test_every_kind_of_failure_is_reported_and_every_case_runs(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "bad")
    run = run_native(box, "0", "1", "hash", "2")
    check_bad_binary(run)
    assert "does not answer --run" not in run.stdout, "the harness forks per case"
    assert not list(box.glob("crossbuild-shard.*")), "the runner removes its temporary folder"


def test_the_harness_speaks_run_and_reports_one_line_per_case(built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [str(built[HOST]["bad"]), "--run", "2", str(out)],
        input="passes\nsegfaults\nno_such_case\nexits_zero_early\n", capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "crossbuild-run 1" and lines[-1] == "end"
    fields = [line.split() for line in lines[1:-1]]
    assert [f[:3] for f in fields] == [["0", "exit", "0"], ["1", "signal", "11"], ["2", "missing", "0"], ["3", "exit", "4"]]
    assert "called exit() before it finished" in (out / "3").read_text()


def test_run_with_bad_arguments_is_refused_with_exit_2(built, tmp_path):
    binary = str(built[HOST]["bad"])
    for args, message in (
        (["--run", "0", str(tmp_path)], "--run TIMEOUT must be whole seconds, 1 to 86400, got '0'"),
        (["--run", "ten", str(tmp_path)], "got 'ten'"),
        (["--run", "5", str(tmp_path / "missing")], "is not a folder"),
    ):
        proc = subprocess.run([binary, *args], input="passes\n", capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "crossbuild-run 1" not in proc.stdout, "a runner falls back instead of reading results"


def test_a_missing_binary_is_a_setup_error_with_xml(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    (box / "bin" / "t").unlink()
    run = run_native(box, "0", "1", "hash", "5")
    assert run.returncode == 3
    assert "the test binary bin/t does not exist" in run.stderr
    assert run.cases()["setup"].find("error").get("message") == "the test binary bin/t does not exist"


def test_a_binary_without_run_gets_one_process_per_case(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "old")
    run = run_native(box, "0", "1", "count", "5")
    assert "does not answer --run: one process per case" in run.stdout
    cases = run.cases()
    assert cases["old_pass"].find("failure") is None
    assert cases["old_fail"].find("failure").get("message") == "exit status 1"
    assert "old says no" in cases["old_fail"].find("failure").text
    assert cases["old_crash"].find("failure").get("message") == "killed by signal 11 (SIGSEGV)"
    assert run.returncode == 1


def test_a_binary_that_crashes_in_list_is_one_error(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "listcrash")
    run = run_native(box, "0", "1", "hash", "5")
    assert run.returncode == 1
    (case,) = run.cases().values()
    error = case.find("error")
    assert case.get("name") == "--list" and error.get("message") == "--list was killed by signal 11 (SIGSEGV)"
    assert "ERROR bin/t --list" in run.stdout


@pytest.mark.parametrize("partition", ["hash", "count", "slice"])
def test_shards_partition_every_case_exactly_once(built, tmp_path, partition):
    seen: List[str] = []
    for k in range(3):
        box = sandbox(tmp_path / str(k), built, HOST, "many")
        run = run_native(box, str(k), "3", partition, "5")
        assert run.returncode == 0, run.stdout + run.stderr
        seen += list(run.cases())
        assert run.xml.find("testsuite").get("name") == "bin/t"
    assert sorted(seen) == [f"case_{i:03d}" for i in range(60)]


def test_hash_partition_is_the_posix_cksum_of_binary_and_case(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    run = run_native(box, "1", "4", "hash", "5")
    want = set()
    for i in range(60):
        key = f"bin/t::case_{i:03d}"
        crc = int(subprocess.run(["cksum"], input=key.encode(), capture_output=True, check=True).stdout.split()[0])
        if crc % 4 == 1:
            want.add(f"case_{i:03d}")
    assert set(run.cases()) == want


def test_runner_killed_mid_shard_writes_no_xml(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "bad")
    proc = subprocess.Popen(["./shard_runner", "bin/t", "0", "1", "slice", "30", "out.xml"], cwd=box,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": PATH})
    time.sleep(1.5)  # well into `hangs`, the fourth case
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert "stopped by signal 15; no results written" in err
    assert not (box / "out.xml").exists()


def test_usage_errors_exit_2_without_xml(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    for args in (["1", "1", "hash", "5"], ["0", "0", "hash", "5"], ["0", "1", "random", "5"], ["0", "1", "hash", "0"]):
        run = run_native(box, *args)
        assert run.returncode == 2 and "usage:" in run.stderr and run.xml is None, args


def test_a_binary_for_another_machine_is_refused_unless_emulation_is_allowed(built, tmp_path):
    box = tmp_path / "box"
    (box / "bin").mkdir(parents=True)
    shutil.copy(built[HOST]["runner"], box / "shard_runner")
    shutil.copy(built[OTHER]["many"], box / "bin" / "t")
    run = run_native(box, "0", "1", "hash", "5")
    assert run.returncode == 3
    assert f"bin/t was built for {OTHER} but this shard runs on {HOST}" in run.stderr
    assert run.cases()["setup"].find("error") is not None
    qemu = shutil.which(f"qemu-{OTHER}-static")
    if qemu is None:
        pytest.skip(f"qemu-{OTHER}-static is not installed")
    run = run_native(box, "0", "1", "hash", "5", env={"CROSSBUILD_ALLOW_EMULATION": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"running {OTHER} binaries under {qemu}" in run.stdout and len(run.cases()) == 60


# ---- @FLAGFILE and --persistent_worker -------------------------------------------------------

# Times differ from run to run; everything else the runner writes must not.
def untimed(text: str) -> str:
    text = re.sub(r"\(\d+\.\d{3}s\)", "(T)", text)
    return re.sub(r'time="[0-9.]+"', 'time="T"', text)


def xml_text(box: Path, name: str) -> Optional[str]:
    path = box / name
    return untimed(path.read_text()) if path.exists() else None


def write_flagfile(box: Path, lines: Sequence[str], name: str = "shard-args/t.args") -> str:
    (box / name).parent.mkdir(parents=True, exist_ok=True)
    (box / name).write_text("".join(line + "\n" for line in lines))
    return name


def run_flagfile(box: Path, lines: Sequence[str], env: Optional[dict] = None) -> Tuple[subprocess.CompletedProcess, Optional[str]]:
    """`shard_runner @FLAGFILE` (JUNIT_XML is the last line); returns the process and its XML."""
    name = write_flagfile(box, lines)
    proc = subprocess.run(["./shard_runner", "@" + name], cwd=box, capture_output=True, text=True,
                          env={"PATH": PATH, **(env or {})})
    return proc, xml_text(box, lines[-1])


# Protobuf, by hand: a varint, and fields by wire type (0 varint, 1 64-bit, 2 bytes, 5 32-bit).
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32 values go on the wire sign-extended to 64 bits
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, value, wire: Optional[int] = None) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if wire == 1:
        return varint(number << 3 | 1) + value.to_bytes(8, "little")
    if wire == 5:
        return varint(number << 3 | 5) + value.to_bytes(4, "little")
    return varint(number << 3) + varint(value)


def work_request(args: Sequence[str], request_id: int = 0, sandbox_dir: str = "", cancel: bool = False,
                 extra: bytes = b"") -> bytes:
    msg = b"".join(field(1, a) for a in args)
    if request_id:
        msg += field(3, request_id)
    if cancel:
        msg += field(4, 1)
    if sandbox_dir:
        msg += field(6, sandbox_dir)
    return msg + extra


def frame(msg: bytes) -> bytes:
    return varint(len(msg)) + msg


def read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


@dataclass
class Response:
    exit_code: int = 0
    output: str = ""
    request_id: int = 0
    was_cancelled: bool = False


def parse_response(data: bytes) -> Response:
    r, pos = Response(), 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        assert key & 7 in (0, 2), f"unexpected wire type in {data!r}"
        if key & 7 == 2:
            n, pos = read_varint(data, pos)
            value: object = data[pos:pos + n]
            pos += n
        else:
            value, pos = read_varint(data, pos)
        signed = lambda v: v - (1 << 64) if v >= 1 << 63 else v  # noqa: E731
        if key >> 3 == 1:
            r.exit_code = signed(value)
        elif key >> 3 == 2:
            r.output = value.decode()
        elif key >> 3 == 3:
            r.request_id = signed(value)
        elif key >> 3 == 4:
            r.was_cancelled = bool(value)
    return r


class Worker:
    """`shard_runner --persistent_worker` over real pipes, as an executor drives it."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: Optional[dict] = None):
        self.proc = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={"PATH": PATH, **(env or {})},
                                     start_new_session=True)

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def response(self) -> Response:
        prefix = b""
        while not prefix or prefix[-1] & 0x80:
            b = self.proc.stdout.read(1)
            assert b, f"the worker closed stdout: {self.finish()}"
            prefix += b
        n, _ = read_varint(prefix, 0)
        data = self.proc.stdout.read(n)
        assert len(data) == n
        return parse_response(data)

    def request(self, args: Sequence[str], **kw) -> Response:
        self.send(frame(work_request(args, **kw)))
        return self.response()

    def finish(self) -> Tuple[int, bytes, bytes]:
        """Closes stdin; the exit status, what is left on stdout, and stderr."""
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        return self.proc.wait(timeout=60), out, err


def lines_for(binary: str, shard: int, total: int, partition: str, timeout: int, junit: str,
              exec_per_case: bool = False) -> List[str]:
    return [*(["--exec-per-case"] if exec_per_case else []), binary, str(shard), str(total), partition,
            str(timeout), junit]


def test_flagfile_gives_the_positional_form_report_on_stderr_and_the_same_xml(built, tmp_path):
    for binary, partition in (("many", "hash"), ("old", "count"), ("listcrash", "slice")):
        box = sandbox(tmp_path / binary, built, HOST, binary)
        positional = run_native(box, "1", "2", partition, "5")
        proc, xml = run_flagfile(box, lines_for("bin/t", 1, 2, partition, 5, "flag.xml"))
        assert proc.returncode == positional.returncode, proc.stderr
        assert proc.stdout == "", "the @FLAGFILE form writes everything to stderr"
        assert untimed(proc.stderr) == untimed(positional.stdout + positional.stderr)
        assert xml == xml_text(box, "out.xml")


def test_flagfile_usage_errors_and_exec_per_case(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    proc, xml = run_flagfile(box, ["bin/t", "0", "1", "hash", "5"])
    assert proc.returncode == 2 and "expected 6 arguments, got 5" in proc.stderr and proc.stdout == ""
    proc, _ = run_flagfile(box, ["--fast", *lines_for("bin/t", 0, 1, "hash", 5, "x.xml")])
    assert proc.returncode == 2 and "unknown option '--fast'" in proc.stderr
    proc, _ = run_flagfile(box, ["@nested.args"])
    assert proc.returncode == 2 and "may not name another flagfile" in proc.stderr
    proc = subprocess.run(["./shard_runner", "@missing.args"], cwd=box, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot read the flagfile missing.args" in proc.stderr
    proc, xml = run_flagfile(box, lines_for("bin/t", 0, 1, "hash", 5, "x.xml", exec_per_case=True))
    assert proc.returncode == 0 and xml is not None and "60 passed" in proc.stderr
    # A harness binary answers --run; with --exec-per-case it is never asked (so no fallback note).
    assert "does not answer --run" not in proc.stderr
    old = sandbox(tmp_path / "old", built, HOST, "old")
    proc, _ = run_flagfile(old, lines_for("bin/t", 0, 1, "hash", 5, "x.xml", exec_per_case=True))
    assert proc.returncode == 1 and "does not answer --run" not in proc.stderr and "old says no" in proc.stderr
    # CRLF line ends and a last line without a newline read the same.
    (box / "crlf.args").write_bytes(b"bin/t\r\n0\r\n1\r\nhash\r\n5\r\ncrlf.xml")
    proc = subprocess.run(["./shard_runner", "@crlf.args"], cwd=box, capture_output=True, text=True)
    assert proc.returncode == 0 and (box / "crlf.xml").exists(), proc.stderr


def test_the_shard_variables_come_from_the_arguments(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "env")
    wrong = {"TEST_SHARD_INDEX": "7", "TEST_TOTAL_SHARDS": "8"}
    proc, xml = run_flagfile(box, lines_for("bin/t", 0, 3, "count", 5, "x.xml"), env=wrong)
    assert proc.returncode == 1 and "shard variables 0 of 3" in proc.stderr
    assert "shard variables 0 of 3" in xml
    worker = Worker(["./shard_runner", "--persistent_worker"], box, env=wrong)
    r = worker.request(lines_for("bin/t", 0, 2, "count", 5, "w.xml"))
    assert r.exit_code == 1 and "shard variables 0 of 2" in r.output
    assert worker.finish()[0] == 0


def test_at_at_stands_for_a_leading_at(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    (box / "@bin").mkdir()
    shutil.copy(box / "bin" / "t", box / "@bin" / "t")
    proc, _ = run_flagfile(box, ["@@bin/t", "0", "2", "hash", "5", "@@at.xml"])
    assert proc.returncode == 0, proc.stderr
    assert "shard 1/2, @bin/t:" in proc.stderr
    assert ET.parse(box / "@at.xml").getroot().find("testsuite").get("name") == "@bin/t"
    one_shot = untimed((box / "@at.xml").read_text())
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    r = worker.request(["@@bin/t", "0", "2", "hash", "5", "@@wat.xml"])
    assert r.exit_code == 0 and untimed(r.output) == untimed(proc.stderr)
    assert untimed((box / "@wat.xml").read_text()) == one_shot
    r = worker.request(["@nested.args"])
    assert r.exit_code == 2 and "may not name another flagfile" in r.output
    assert worker.finish()[0] == 0


def test_a_worker_serves_many_requests_in_one_process_as_one_shot_runs_would(built, tmp_path):
    box = sandbox(tmp_path / "w", built, HOST, "bad")
    ref = sandbox(tmp_path / "ref", built, HOST, "bad")
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    pid = worker.proc.pid
    requests = [
        ("bad", lines_for("bin/t", 0, 1, "hash", 2, "junit-t.xml")),
        ("many", lines_for("bin/t", 1, 3, "slice", 5, "junit-t.xml")),
        ("old", lines_for("bin/t", 0, 1, "count", 5, "junit-t.xml")),
        ("listcrash", lines_for("bin/t", 0, 1, "hash", 5, "junit-t.xml")),
        ("many", lines_for("bin/t", 2, 3, "hash", 5, "junit-t.xml", exec_per_case=True)),
    ]
    for n, (binary, lines) in enumerate(requests):
        # As an executor restages each request's inputs: the same paths, other files.
        for b in (box, ref):
            shutil.copy(built[HOST][binary], b / "bin" / "t")
            (b / "junit-t.xml").unlink(missing_ok=True)
        expected, expected_xml = run_flagfile(ref, lines)
        r = worker.request(lines, request_id=n + 1)
        assert worker.proc.poll() is None and worker.proc.pid == pid, "the same process serves every request"
        assert r.request_id == n + 1 and r.exit_code == expected.returncode, (binary, r.output)
        assert untimed(r.output) == untimed(expected.stderr), binary
        assert xml_text(box, "junit-t.xml") == expected_xml, binary
    code, rest, err = worker.finish()
    assert code == 0 and rest == b"" and err == b"", err
    assert not list(box.glob("crossbuild-shard.*")), "every request removes its temporary folder"


def test_a_worker_serves_requests_with_unknown_fields_sandbox_dirs_and_ids(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    sub = box / "sandbox" / "1"
    (sub / "bin").mkdir(parents=True)
    shutil.copy(box / "bin" / "t", sub / "bin" / "t")
    expected, expected_xml = run_flagfile(box, lines_for("bin/t", 0, 2, "count", 5, "x.xml"))
    extra = (
        field(2, field(1, "bin/t") + field(2, b"\x00\x01digest"))  # inputs: ignored
        + field(5, 10)  # verbosity
        + field(99, 12345)  # unknown: varint
        + field(100, 2**63 + 5, wire=1)  # unknown: 64-bit
        + field(101, 7, wire=5)  # unknown: 32-bit
        + field(102, b"\xff\xfe anything")  # unknown: bytes
        + field(3, 11)  # request_id, overridden below: the last one counts
    )
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    r = worker.request(lines_for("bin/t", 0, 2, "count", 5, "x.xml"), extra=extra + field(3, 12))
    assert r.request_id == 12 and r.exit_code == 0 and untimed(r.output) == untimed(expected.stderr)
    r = worker.request(lines_for("bin/t", 0, 2, "count", 5, "x.xml"), sandbox_dir="sandbox/1", request_id=-5)
    assert r.request_id == -5 and r.exit_code == 0 and untimed(r.output) == untimed(expected.stderr)
    assert xml_text(sub, "x.xml") == expected_xml
    # A cancel names a request already answered: no response. The next request's comes next.
    worker.send(frame(work_request([], request_id=12, cancel=True)))
    r = worker.request(lines_for("bin/t", 1, 2, "count", 5, "y.xml"), request_id=13)
    assert r.request_id == 13 and r.exit_code == 0 and "shard 2/2" in r.output
    # A request that fails: its exit status and usage text, and the worker goes on.
    r = worker.request(["bin/t", "0", "0", "hash", "5", "z.xml"], request_id=14)
    assert r.exit_code == 2 and "usage:" in r.output and not (box / "z.xml").exists()
    r = worker.request(lines_for("bin/t", 0, 1, "hash", 5, "z.xml"), sandbox_dir="no/such/dir")
    assert r.exit_code == 3 and "cannot enter the sandbox no/such/dir" in r.output
    code, rest, err = worker.finish()
    assert code == 0 and rest == b"", err


def child_pids(pid: int) -> List[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_request_reports_128_plus_the_signal(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "bad")
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    worker.send(frame(work_request(lines_for("bin/t", 0, 1, "slice", 5, "x.xml"), request_id=3)))
    time.sleep(1.5)  # well into `hangs`
    children = child_pids(worker.proc.pid)
    assert len(children) == 1, children
    os.kill(children[0], signal.SIGTERM)
    r = worker.response()
    assert r.request_id == 3 and r.exit_code == 128 + signal.SIGTERM
    assert "stopped by signal 15; no results written" in r.output and not (box / "x.xml").exists()
    assert worker.finish()[0] == 0


@pytest.mark.parametrize(
    "data, message",
    [
        (frame(field(1, "bin/t")[:-2]), "runs past the message"),  # a cut string
        (frame(b"\x0b\x0c"), "wire type 3"),  # a group
        (frame(field(3, "not a number")), "field 3 has wire type 2"),
        (frame(b"\x00\x01"), "field number 0"),
        (frame(b"\x18\xff\xff"), "a cut varint"),
        (frame(field(1, b"a\x00b")), "a NUL byte"),
        (varint(17 << 20) + b"x" * 64, "the limit is"),
        (varint(300) + b"short", "stdin ended inside a request"),
        (b"\xff\xff", "stdin ended inside a length prefix"),
        (b"\xff\xff\xff\xff\xff\xff\x01", "longer than 5 bytes"),
    ],
)
def test_a_malformed_frame_ends_the_worker_with_an_error(built, tmp_path, data, message):
    box = sandbox(tmp_path, built, HOST, "many")
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    r = worker.request(lines_for("bin/t", 0, 1, "hash", 5, "x.xml"))
    assert r.exit_code == 0
    try:
        worker.send(data)
    except BrokenPipeError:
        pass
    code, rest, err = worker.finish()
    assert code != 0 and rest == b"", "no response to a malformed request"
    assert message in err.decode(), err


def test_a_worker_exits_0_at_end_of_input_and_refuses_other_arguments(built, tmp_path):
    box = sandbox(tmp_path, built, HOST, "many")
    worker = Worker(["./shard_runner", "--persistent_worker"], box)
    assert worker.finish() == (0, b"", b"")
    proc = subprocess.run(["./shard_runner", "--persistent_worker", "extra"], cwd=box, capture_output=True, text=True)
    assert proc.returncode == 2 and "--persistent_worker takes no other arguments" in proc.stderr


@pytest.fixture(scope="session")
def arm64(tmp_path_factory):
    """How the ARM64 executor runs an action: natively on aarch64, else proot + qemu-user."""
    rootfs = tmp_path_factory.mktemp("arm64") / "rootfs"
    if HOST != "aarch64":
        build_rootfs(rootfs)
    return host_runner(rootfs)


def run_arm64(arm64, box: Path, *args: str) -> Run:
    argv = arm64.wrap(["./shard_runner", "bin/t", *args, "out.xml"], cwd=box, binds=[box])
    proc = subprocess.run(argv, capture_output=True, text=True, start_new_session=True,
                          env={"PATH": "/usr/bin:/bin", "TEST_SHARD_INDEX": args[0], "TEST_TOTAL_SHARDS": args[1]})
    xml = box / "out.xml"
    return Run(proc.returncode, proc.stdout, proc.stderr, ET.parse(xml).getroot() if xml.exists() else None)


def test_emulated_arm64_every_kind_of_failure(built, arm64, tmp_path):
    box = sandbox(tmp_path, built, "aarch64", "bad")
    run = run_arm64(arm64, box, "0", "1", "hash", "2")
    check_bad_binary(run)
    assert "does not answer --run" not in run.stdout


def test_emulated_arm64_old_protocol_and_partitions(built, arm64, tmp_path):
    box = sandbox(tmp_path / "old", built, "aarch64", "old")
    run = run_arm64(arm64, box, "0", "1", "hash", "5")
    assert "one process per case" in run.stdout and len(run.cases()) == 3 and run.returncode == 1
    host_box = sandbox(tmp_path / "host", built, HOST, "many")
    for k in range(2):
        emulated = run_arm64(arm64, sandbox(tmp_path / f"e{k}", built, "aarch64", "many"), str(k), "2", "hash", "5")
        native = run_native(host_box, str(k), "2", "hash", "5")
        assert set(emulated.cases()) == set(native.cases()), "the same partition on every machine"


def test_emulated_arm64_worker_serves_several_requests(built, arm64, tmp_path):
    """The reason for the worker: one emulated session for many actions."""
    box = sandbox(tmp_path / "w", built, "aarch64", "many")
    ref = sandbox(tmp_path / "ref", built, "aarch64", "many")
    worker = Worker(arm64.wrap(["./shard_runner", "--persistent_worker"], cwd=box, binds=[box]), box)
    for k in range(3):
        lines = lines_for("bin/t", k, 3, "hash", 5, f"junit-{k}.xml")
        r = worker.request(lines, request_id=k + 1)
        assert worker.proc.poll() is None
        expected = run_arm64(arm64, ref, str(k), "3", "hash", "5")
        assert r.request_id == k + 1 and r.exit_code == 0, r.output
        assert untimed(r.output) == untimed(expected.stdout + expected.stderr)
        assert xml_text(box, f"junit-{k}.xml") == xml_text(ref, "out.xml")
    assert worker.finish()[0] == 0
