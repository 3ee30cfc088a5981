"""shard_runner.c and the harness's --run mode, end to end: both built with the plugin's pinned
zig, real test binaries, real signals and timeouts, natively and in the emulated aarch64
userland (proot + qemu-user, as the ARM64 executor runs them). Nothing is mocked.

Run: ./pants test pants-plugins/crossbuild/resources/shard_runner_test.py
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

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
    """runner, bad, old, listcrash and many, for both architectures."""
    out = tmp_path_factory.mktemp("built")
    sources = {"bad": BAD_C, "old": OLD_C, "listcrash": LIST_CRASH_C, "many": MANY_C}
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
