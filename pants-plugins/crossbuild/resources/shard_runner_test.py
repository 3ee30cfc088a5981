"""shard_runner.sh end to end: real archives, real `timeout`, real signals, nothing mocked.

The "test binaries" are shell scripts that speak the runner's protocol (`--list`, `--exact NAME`)
and behave according to the case name's prefix. Each run of a case (and each `--list`) appends a
record to RECDIR/shard-$TEST_SHARD_INDEX-of-$TEST_TOTAL_SHARDS.log, so the tests see what actually
ran where and with which environment.

Host tests run the runner with the host's shells (dash as /bin/sh, bash) and an archive for the
host's architecture. The userland tests run it with busybox ash inside the emulated aarch64
userland (proot + qemu-aarch64-static; .ci/install-arm64-userland-deps installs them, and a
missing piece fails rather than skips), or natively on an aarch64 host.

Run: cd /work/main && PYTHONPATH=src/python python -m pytest -q pants-plugins/crossbuild/resources/shard_runner_test.py
"""

from __future__ import annotations

import hashlib
import io
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from reapi_bridge.executor.arm64_userland import Arm64Userland, build_rootfs, host_runner

RUNNER = Path(__file__).resolve().with_name("shard_runner.sh")
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
SEP = "\x1f"

HOST_ARCH = "aarch64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
PLATFORM_OF = {"aarch64": "linux_arm64", "x86_64": "linux_x86_64"}
OTHER_ARCH = {"aarch64": "x86_64", "x86_64": "aarch64"}

# Names that go through every layer: the list file, sh variables, awk, printf, XML attributes.
WEIRD_NAMES = [
    "weird <&>\"' name",
    "ünïcødé ✓ 名前",
    "glob*[x]?",
    "back\\slash",
    "-dash-first",
    " leading space",
    "trailing space ",
    "tab\there",
    "percent %s %d %%",
    "dollar $HOME `true` $(true)",
]

FAIL_OUTPUT = (
    "failing: \\000NUL \\001\\033[31m ESC \\377\\376 bad utf8 ]]> <&> \"quoted\" ünï ✓\\n"
)


def fake_binary(binary: str, cases: Sequence[str], recdir: Path, *, list_exit: int = 0) -> str:
    """A shell-script test binary: `--list` prints `cases`; `--exact NAME` behaves by prefix."""
    listing = "\n".join(cases)
    if list_exit:
        list_body = f"echo 'cannot list: broken on purpose' >&2; echo 'partial-output'; exit {list_exit}"
    else:
        list_body = "cat <<'END_OF_CASES'\n" + listing + "\nEND_OF_CASES" if cases else ":"
    return f"""#!/bin/sh
# Fake crossbuild test binary {binary}.
rec={shlex.quote(str(recdir))}/shard-${{TEST_SHARD_INDEX-unset}}-of-${{TEST_TOTAL_SHARDS-unset}}.log
case "$1" in
--list)
    printf '%s\\037--list\\037\\037%s\\037%s\\n' {shlex.quote(binary)} "${{TEST_SHARD_INDEX-unset}}" "${{TEST_TOTAL_SHARDS-unset}}" >>"$rec"
{list_body}
    ;;
--exact)
    printf '%s\\037run\\037%s\\037%s\\037%s\\n' {shlex.quote(binary)} "$2" "${{TEST_SHARD_INDEX-unset}}" "${{TEST_TOTAL_SHARDS-unset}}" >>"$rec"
    case "$2" in
    fail*) printf '{FAIL_OUTPUT}'; echo "second line on stderr" >&2; exit 1 ;;
    segv*) echo "about to crash"; kill -SEGV $$ ;;
    hang*) echo "hanging"; exec sleep 30 ;;
    exit3*) echo "exiting 3"; exit 3 ;;
    daemon*) "$0" --exact spin_forever </dev/null >/dev/null 2>&1 & echo "left a daemon behind" ;;
    spin*) while :; do sleep 1; done ;;
    *) echo "ok: $2" ;;
    esac
    ;;
*) echo "usage: $0 --list | --exact NAME" >&2; exit 64 ;;
esac
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Archive:
    path: Path
    binaries: List[Tuple[str, List[str]]]  # manifest order, --list order
    recdir: Path

    @property
    def all_cases(self) -> List[Tuple[str, str]]:
        return [(b, c) for b, cases in self.binaries for c in cases]


def build_archive(
    dest: Path,
    binaries: Sequence[Tuple[str, Sequence[str]]],
    *,
    arch: str = HOST_ARCH,
    recdir: Optional[Path] = None,
    first_line: str = "crossbuild-test-archive 1",
    tamper: Optional[str] = None,
    broken_list: Sequence[str] = (),
) -> Archive:
    """Writes a crossbuild test archive to `dest`."""
    recdir = recdir or dest.parent / (dest.name + ".records")
    recdir.mkdir(parents=True, exist_ok=True)
    contents: Dict[str, bytes] = {}
    for binary, cases in binaries:
        contents[binary] = fake_binary(
            binary, cases, recdir, list_exit=2 if binary in broken_list else 0
        ).encode()
    manifest = [first_line, f"platform {PLATFORM_OF[arch]}", f"target {arch}-linux-musl"]
    manifest += [f"binary {binary} {sha256(data)}" for binary, data in contents.items()]
    if tamper is not None:
        contents[tamper] += b"# tampered after the manifest was written\n"
    files = {"manifest.txt": ("\n".join(manifest) + "\n").encode(), **contents}
    # Laid out like crossbuild.archive.deterministic_tar: GNU format, directory entries, sorted,
    # mtime 0, owner 0:0.
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(p) for name in files for p in PurePosixPath(name).parents if str(p) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.gid = len(files[name]), 0, 0, 0
            info.mode = 0o755 if name in contents else 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return Archive(dest, [(b, list(c)) for b, c in binaries], recdir)


@dataclass
class Case:
    classname: str
    name: str
    kind: str  # pass, fail, timeout, crash, error
    message: str = ""
    text: str = ""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    junit: Path
    suite: Optional[ET.Element] = None
    cases: List[Case] = field(default_factory=list)

    def parse_junit(self) -> "Run":
        root = ET.parse(self.junit).getroot()  # raises on invalid XML
        assert root.tag == "testsuites"
        suites = root.findall("testsuite")
        assert len(suites) == 1
        self.suite = suites[0]
        for tc in self.suite.findall("testcase"):
            failure, error = tc.find("failure"), tc.find("error")
            node = failure if failure is not None else error
            if node is None:
                kind = "pass"
            elif node is error:
                kind = "error"
            else:
                kind = node.get("type", "")
            self.cases.append(
                Case(
                    tc.get("classname", ""),
                    tc.get("name", ""),
                    kind,
                    "" if node is None else node.get("message", ""),
                    "" if node is None else (node.text or ""),
                )
            )
        return self

    def suite_counts(self) -> Tuple[int, int, int]:
        assert self.suite is not None
        return tuple(int(self.suite.get(a)) for a in ("tests", "failures", "errors"))  # type: ignore


def host_argv(shell: str, archive: Path, k: int, n: int, partition: str, timeout: int, junit: Path):
    return [shell, str(RUNNER), str(archive), str(k), str(n), partition, str(timeout), str(junit)]


def run_host(
    archive: Archive, k: int, n: int, partition: str = "hash", *, timeout: int = 5, shell: str = "/bin/sh",
    junit: Optional[Path] = None,
) -> Run:
    junit = junit or archive.path.parent / f"junit-{partition}-{k}-of-{n}.xml"
    proc = subprocess.run(
        host_argv(shell, archive.path, k, n, partition, timeout, junit),
        env={"PATH": PATH, "TMPDIR": str(archive.path.parent)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"), junit)


def records(archive: Archive) -> List[List[str]]:
    out = []
    for log in sorted(archive.recdir.glob("*.log")):
        for line in log.read_bytes().decode("utf-8").splitlines():
            out.append([log.name] + line.split(SEP))
    return out


def cksum(data: bytes) -> int:
    proc = subprocess.run(["cksum"], input=data, capture_output=True, check=True)
    return int(proc.stdout.split()[0])


def expected_shards(archive: Archive, partition: str, n: int) -> Dict[Tuple[str, str], int]:
    cases = archive.all_cases
    if partition == "hash":
        return {(b, c): cksum(f"{b}::{c}".encode()) % n for b, c in cases}
    if partition == "count":
        return {case: i % n for i, case in enumerate(cases)}
    assert partition == "slice"
    m = len(cases)
    return {case: k for k in range(n) for case in cases[k * m // n : (k + 1) * m // n]}


def shells() -> List[str]:
    found = []
    for name in ("dash", "bash"):
        path = shutil.which(name, path=PATH)
        if path:
            found.append(path)
    return found or ["/bin/sh"]


def standard_binaries(extra: Sequence[Tuple[str, Sequence[str]]] = ()) -> List[Tuple[str, List[str]]]:
    return [
        ("bin/alpha_test", [f"pass_a{i}" for i in range(1, 6)] + WEIRD_NAMES[:5]),
        ("bin/beta_test", [f"pass_b{i}" for i in range(1, 5)]),
        *[(b, list(c)) for b, c in extra],
        ("tests/deep/gamma_test", [f"pass_g{i}" for i in range(1, 4)] + WEIRD_NAMES[5:]),
    ]


MIXED = [
    ("bin/mixed_test", ["pass_1", "segv_crash", "fail_output", "hang_forever", "pass_2", "exit3_case"]),
    ("bin/other_test", ["pass_other"]),
]


def assert_no_control_chars(text: str) -> None:
    bad = [c for c in text if (ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127]
    assert not bad, f"control characters in XML text: {bad!r}"


def check_mixed(run: Run, archive: Archive, *, timeout: int, k: int = 0, n: int = 1) -> None:
    """The shared expectations for MIXED run as one shard (host or userland)."""
    assert run.code == 1, run.stdout + run.stderr
    out = run.stdout
    assert f"shard {k + 1}/{n}" in out
    assert re.search(r"^PASS bin/mixed_test::pass_1 \(\d+\.\d\ds\)$", out, re.M), out
    assert re.search(
        r"^CRASH bin/mixed_test::segv_crash \(\d+\.\d\ds\): killed by signal 11 \(SIGSEGV\)$", out, re.M
    ), out
    assert re.search(r"^FAIL bin/mixed_test::fail_output \(\d+\.\d\ds\): exit status 1$", out, re.M), out
    m = re.search(
        rf"^TIMEOUT bin/mixed_test::hang_forever \((\d+\.\d\d)s\): timed out after {timeout}s$", out, re.M
    )
    assert m, out
    assert timeout <= float(m.group(1)) < timeout + 4, m.group(0)
    assert re.search(r"^PASS bin/mixed_test::pass_2 ", out, re.M), out
    assert re.search(r"^FAIL bin/mixed_test::exit3_case \(\d+\.\d\ds\): exit status 3$", out, re.M), out
    assert re.search(r"^PASS bin/other_test::pass_other ", out, re.M), out
    assert f"shard {k + 1}/{n}: 3 passed, 2 failed, 1 timed out, 1 crashed, 0 errors of 7 cases" in out
    assert "    | about to crash" in out

    # Every case ran, in order, after the crash and the hang, with the shard variables set.
    ran = [(r[1], r[3]) for r in records(archive) if r[2] == "run"]
    assert ran == archive.all_cases
    assert all(r[0] == f"shard-{k}-of-{n}.log" and r[4:] == [str(k), str(n)] for r in records(archive))

    run.parse_junit()
    assert run.suite.get("name") == f"shard-{k + 1}-of-{n}"
    assert run.suite_counts() == (7, 4, 0)
    by_name = {c.name: c for c in run.cases}
    assert [c.name for c in run.cases] == [c for _, c in archive.all_cases]
    assert {c.classname for c in run.cases} == {"bin/mixed_test", "bin/other_test"}
    assert by_name["pass_1"].kind == "pass" and by_name["pass_other"].kind == "pass"
    crash = by_name["segv_crash"]
    assert (crash.kind, crash.message) == ("crash", "killed by signal 11 (SIGSEGV)")
    assert "about to crash" in crash.text
    hang = by_name["hang_forever"]
    assert (hang.kind, hang.message) == ("timeout", f"timed out after {timeout}s")
    assert "hanging" in hang.text
    fail = by_name["fail_output"]
    assert (fail.kind, fail.message) == ("fail", "exit status 1")
    assert "failing: NUL [31m ESC " in fail.text  # NUL, \001 and ESC dropped
    assert ']]> <&> "quoted" ünï ✓' in fail.text
    assert "\ufffd" in fail.text  # the invalid UTF-8 bytes
    assert "second line on stderr" in fail.text
    assert_no_control_chars(fail.text)
    assert by_name["exit3_case"].message == "exit status 3"
    for tc in run.suite.findall("testcase"):
        assert re.fullmatch(r"\d+\.\d\d", tc.get("time")), tc.get("time")
    assert float(run.suite.findall("testcase")[3].get("time")) >= timeout


# --- host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("partition", ["hash", "count", "slice"])
@pytest.mark.parametrize("n", [1, 3, 4])
def test_shards_partition_all_cases_exactly_once(tmp_path, partition, n):
    archive = build_archive(tmp_path / "tests.tar", standard_binaries())
    expected = expected_shards(archive, partition, n)
    seen: Dict[Tuple[str, str], int] = {}
    for k in range(n):
        run = run_host(archive, k, n, partition).parse_junit()
        assert run.code == 0, run.stdout + run.stderr
        mine = [(c.classname, c.name) for c in run.cases]
        assert all(c.kind == "pass" for c in run.cases)
        for case in mine:
            assert case not in seen, f"{case} ran on shards {seen[case]} and {k}"
            seen[case] = k
        # JUnit, the cases' own records and the stdout agree.
        ran = [(r[1], r[3]) for r in records(archive) if r[0] == f"shard-{k}-of-{n}.log" and r[2] == "run"]
        assert ran == mine
        assert f"shard {k + 1}/{n}: {len(mine)} passed, 0 failed, 0 timed out, 0 crashed, 0 errors of {len(mine)} cases" in run.stdout
        assert run.suite_counts() == (len(mine), 0, 0)
        assert run.suite.get("name") == f"shard-{k + 1}-of-{n}"
        # Cases keep manifest order, then --list order, inside a shard.
        order = {case: i for i, case in enumerate(archive.all_cases)}
        assert [order[c] for c in mine] == sorted(order[c] for c in mine)
    assert seen == expected
    assert set(seen) == set(archive.all_cases)
    if partition == "slice":
        sizes = [list(seen.values()).count(k) for k in range(n)]
        assert max(sizes) - min(sizes) <= 1


def test_hash_partition_is_stable_when_cases_are_added(tmp_path):
    n = 4
    (tmp_path / "a").mkdir()
    before = build_archive(tmp_path / "a" / "tests.tar", standard_binaries())
    grown = standard_binaries(extra=[("bin/new_test", ["pass_n1", "pass_n2", "pass_n3"])])
    grown[0][1].insert(2, "pass_a_inserted")
    grown[-1][1].append("pass_g_appended")
    (tmp_path / "b").mkdir()
    after = build_archive(tmp_path / "b" / "tests.tar", grown)

    def shard_map(archive: Archive) -> Dict[Tuple[str, str], int]:
        result = {}
        for k in range(n):
            run = run_host(archive, k, n, "hash").parse_junit()
            assert run.code == 0, run.stdout + run.stderr
            result.update({(c.classname, c.name): k for c in run.cases})
        return result

    old, new = shard_map(before), shard_map(after)
    assert set(old) == set(before.all_cases) and set(new) == set(after.all_cases)
    assert {case: new[case] for case in old} == old
    assert len(set(new.values())) > 1  # the cases really are spread


@pytest.mark.parametrize("shell", shells())
def test_crash_fail_and_hang_are_reported_and_every_case_runs(tmp_path, shell):
    archive = build_archive(tmp_path / "mixed.tar", MIXED)
    started = time.monotonic()
    run = run_host(archive, 0, 1, "count", timeout=1, shell=shell)
    assert time.monotonic() - started < 15
    check_mixed(run, archive, timeout=1)
    assert run.stderr == ""


def test_shard_variables_reach_list_and_cases(tmp_path):
    archive = build_archive(tmp_path / "tests.tar", standard_binaries())
    for k in range(3):
        assert run_host(archive, k, 3, "count").code == 0
    recs = records(archive)
    assert {r[0] for r in recs} == {f"shard-{k}-of-3.log" for k in range(3)}  # never "unset"
    for r in recs:
        k = int(r[0].split("-")[1])
        assert r[4:] == [str(k), "3"]
    assert sum(1 for r in recs if r[2] == "--list") == 3 * len(archive.binaries)


def test_weird_names_and_output_make_valid_xml(tmp_path):
    names = WEIRD_NAMES + ["fail " + WEIRD_NAMES[0], "fail ünï ✓"]
    archive = build_archive(tmp_path / "weird.tar", [("bin/wéird dir/x_test".replace(" ", "_"), names)])
    for shell in shells():
        for f in archive.recdir.glob("*"):
            f.unlink()
        run = run_host(archive, 0, 1, "hash", shell=shell).parse_junit()
        assert run.code == 1, run.stdout + run.stderr
        assert [c.name for c in run.cases] == names  # exact round trip through sh, awk and XML
        assert all(c.classname == "bin/wéird_dir/x_test" for c in run.cases)
        assert [c.kind for c in run.cases] == ["pass"] * len(WEIRD_NAMES) + ["fail", "fail"]
        assert run.suite_counts() == (len(names), 2, 0)
        for c in run.cases:
            assert_no_control_chars(c.text)
        ran = [r[3] for r in records(archive) if r[2] == "run"]
        assert ran == names
        for name in WEIRD_NAMES:
            assert f"PASS bin/wéird_dir/x_test::{name} (" in run.stdout


def test_list_failure_is_an_error_testcase(tmp_path):
    archive = build_archive(
        tmp_path / "t.tar",
        [("bin/broken_test", ["pass_x"]), ("bin/fine_test", ["pass_1", "pass_2"])],
        broken_list=["bin/broken_test"],
    )
    run = run_host(archive, 0, 1, "count").parse_junit()
    assert run.code == 1
    assert re.search(r"^ERROR bin/broken_test --list \(\d+\.\d\ds\): --list failed with exit status 2$", run.stdout, re.M)
    assert "shard 1/1: 2 passed, 0 failed, 0 timed out, 0 crashed, 1 errors of 2 cases" in run.stdout
    assert run.suite_counts() == (3, 0, 1)
    err = run.cases[0]
    assert (err.classname, err.name, err.kind) == ("bin/broken_test", "--list", "error")
    assert err.message == "--list failed with exit status 2"
    assert "cannot list: broken on purpose" in err.text and "partial-output" in err.text
    assert [(c.classname, c.name, c.kind) for c in run.cases[1:]] == [
        ("bin/fine_test", "pass_1", "pass"),
        ("bin/fine_test", "pass_2", "pass"),
    ]


def test_shards_without_cases_pass_with_an_empty_suite(tmp_path):
    archive = build_archive(tmp_path / "one.tar", [("bin/one_test", ["pass_only"]), ("bin/none_test", [])])
    owners = []
    for k in range(3):
        run = run_host(archive, k, 3, "hash").parse_junit()
        assert run.code == 0, run.stdout + run.stderr
        if run.cases:
            owners.append(k)
            continue
        assert f"shard {k + 1}/3: 0 of 1 cases from 2 binaries" in run.stdout
        assert f"shard {k + 1}/3: no tests (all 1 cases belong to other shards)" in run.stdout
        assert f"shard {k + 1}/3: 0 passed, 0 failed, 0 timed out, 0 crashed, 0 errors of 0 cases" in run.stdout
        assert run.suite_counts() == (0, 0, 0)
        assert run.suite.get("name") == f"shard-{k + 1}-of-3"
    assert owners == [cksum(b"bin/one_test::pass_only") % 3]
    # A shard of an archive with no binaries at all.
    (tmp_path / "empty").mkdir()
    empty = build_archive(tmp_path / "empty" / "e.tar", [])
    run = run_host(empty, 0, 1, "slice").parse_junit()
    assert run.code == 0 and run.suite_counts() == (0, 0, 0)


def test_tampered_binary_is_refused(tmp_path):
    archive = build_archive(tmp_path / "t.tar", standard_binaries(), tamper="bin/beta_test")
    with tarfile.open(archive.path) as tar:
        actual = sha256(tar.extractfile("bin/beta_test").read())
        manifest = tar.extractfile("manifest.txt").read().decode()
    listed = re.search(r"^binary bin/beta_test (\w+)$", manifest, re.M).group(1)
    assert actual != listed
    run = run_host(archive, 0, 1, "hash")
    assert run.code == 3
    assert "archive contents do not match its manifest" in run.stderr
    assert f"bin/beta_test has sha256 {actual} but the manifest says {listed}" in run.stderr
    assert records(archive) == []  # nothing ran
    run.parse_junit()
    assert run.suite_counts() == (1, 0, 1)
    assert run.cases[0].kind == "error" and "do not match its manifest" in run.cases[0].message


@pytest.mark.parametrize(
    "first_line, message",
    [
        ("crossbuild-test-archive 2", "unsupported manifest format version '2'"),
        ("crossbuild-test-archive", "unknown manifest format"),
        ("hello world", "unknown manifest format"),
    ],
)
def test_unknown_manifest_version_is_refused(tmp_path, first_line, message):
    archive = build_archive(tmp_path / "t.tar", standard_binaries(), first_line=first_line)
    run = run_host(archive, 0, 1, "hash")
    assert run.code == 3
    assert message in run.stderr and "crossbuild-test-archive 1" in run.stderr
    assert records(archive) == []


def test_archive_for_another_architecture_is_refused_on_the_host(tmp_path):
    other = OTHER_ARCH[HOST_ARCH]
    archive = build_archive(tmp_path / "t.tar", standard_binaries(), arch=other)
    run = run_host(archive, 0, 1, "hash")
    assert run.code == 3
    assert (
        f"this archive was built for {other} (platform {PLATFORM_OF[other]}, target {other}-linux-musl) "
        f"but this shard runs on {HOST_ARCH}"
    ) in run.stderr
    assert records(archive) == []


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["A", "0", "1", "hash", "5"],
        ["A", "0", "1", "hash", "5", "J", "extra"],
        ["A", "1", "1", "hash", "5", "J"],
        ["A", "-1", "3", "hash", "5", "J"],
        ["A", "0", "0", "hash", "5", "J"],
        ["A", "x", "3", "hash", "5", "J"],
        ["A", "0", "3", "random", "5", "J"],
        ["A", "0", "3", "hash", "0", "J"],
        ["A", "0", "3", "hash", "1.5", "J"],
        ["A", "0", "3", "hash", "5", ""],
    ],
)
def test_usage_errors(tmp_path, args):
    archive = build_archive(tmp_path / "t.tar", [("bin/a_test", ["pass_1"])])
    args = [str(archive.path) if a == "A" else str(tmp_path / "j.xml") if a == "J" else a for a in args]
    proc = subprocess.run(["/bin/sh", str(RUNNER), *args], env={"PATH": PATH}, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "usage: sh shard_runner.sh" in proc.stderr
    assert not (tmp_path / "j.xml").exists()
    assert records(archive) == []


def test_relative_paths_and_missing_junit_folder(tmp_path):
    archive = build_archive(tmp_path / "t.tar", [("bin/a_test", ["pass_1"])])
    proc = subprocess.run(
        ["/bin/sh", str(RUNNER), "t.tar", "00", "1", "count", "05", "reports/deeper/j.xml"],
        cwd=tmp_path, env={"PATH": PATH}, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = Run(0, proc.stdout, proc.stderr, tmp_path / "reports" / "deeper" / "j.xml").parse_junit()
    assert [(c.name, c.kind) for c in run.cases] == [("pass_1", "pass")]


def test_temporary_folder_is_removed(tmp_path):
    archive = build_archive(tmp_path / "t.tar", MIXED)
    private = tmp_path / "private-tmp"
    private.mkdir()
    proc = subprocess.run(
        host_argv("/bin/sh", archive.path, 0, 1, "count", 1, tmp_path / "j.xml"),
        env={"PATH": PATH, "TMPDIR": str(private)}, capture_output=True,
    )
    assert proc.returncode == 1
    assert list(private.iterdir()) == []


def test_processes_left_behind_from_the_archive_are_killed(tmp_path):
    archive = build_archive(tmp_path / "t.tar", [("bin/d_test", ["daemon_case", "pass_after"])])
    private = tmp_path / "private-tmp"
    private.mkdir()
    started = time.monotonic()
    proc = subprocess.run(
        host_argv("/bin/sh", archive.path, 0, 1, "count", 5, tmp_path / "j.xml"),
        env={"PATH": PATH, "TMPDIR": str(private)}, capture_output=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 2.5 < time.monotonic() - started < 15  # waited ~3 s for the stray, then killed it
    assert sorted(r[3] for r in records(archive) if r[2] == "run") == ["daemon_case", "pass_after", "spin_forever"]
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(private).encode() in cmdline.read_bytes():
                survivors.append(cmdline)
        except OSError:
            pass
    assert survivors == []


# --- the aarch64 userland (busybox ash, busybox applets) ------------------------------------------


@pytest.fixture(scope="session")
def arm64(tmp_path_factory):
    # Fails (does not skip) when apt-get, dpkg, proot or qemu are missing.
    return host_runner(build_rootfs(tmp_path_factory.mktemp("arm64") / "rootfs"))


def userland_popen(arm64, archive: Archive, k: int, n: int, partition: str, timeout: int, junit: Path):
    work = archive.path.parent
    argv = arm64.wrap(
        host_argv("/bin/sh", archive.path, k, n, partition, timeout, junit), cwd=work, binds=[work, RUNNER.parent]
    )
    return subprocess.Popen(
        argv,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def run_userland(arm64, archive: Archive, k: int, n: int, partition: str = "hash", *, timeout: int = 20) -> Run:
    junit = archive.path.parent / f"arm64-junit-{partition}-{k}-of-{n}.xml"
    proc = userland_popen(arm64, archive, k, n, partition, timeout, junit)
    out, err = proc.communicate(timeout=300)
    return Run(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), junit)


def test_userland_is_busybox_on_aarch64(arm64, tmp_path):
    argv = arm64.wrap(["/bin/sh", "-c", "uname -m; command -v cksum || echo no-cksum"], cwd=tmp_path, binds=[tmp_path])
    out = subprocess.run(argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60).stdout
    assert out.split()[0] == "aarch64"
    if isinstance(arm64, Arm64Userland):
        # Debian's busybox has no cksum applet: the hash partition computes the CRC in awk.
        assert out.split()[1] == "no-cksum"


def test_userland_crash_fail_and_hang(arm64, tmp_path):
    archive = build_archive(tmp_path / "mixed.tar", MIXED, arch="aarch64")
    run = run_userland(arm64, archive, 0, 1, "count", timeout=1)
    # Also proves the exit status survives proot, which exits with the status of the guest's
    # last process: busybox timeout's watchdogs must be gone before the runner exits.
    check_mixed(run, archive, timeout=1)


def test_userland_partitions_match_the_host(arm64, tmp_path):
    binaries = standard_binaries()
    (tmp_path / "arm").mkdir()
    (tmp_path / "host").mkdir()
    arm = build_archive(tmp_path / "arm" / "t.tar", binaries, arch="aarch64")
    host = build_archive(tmp_path / "host" / "t.tar", binaries)
    n = 3
    for partition in ("hash", "count", "slice"):
        expected = expected_shards(arm, partition, n)
        procs = [
            (k, userland_popen(arm64, arm, k, n, partition, 20, arm.path.parent / f"{partition}-{k}.xml"))
            for k in range(n)
        ]
        seen: Dict[Tuple[str, str], int] = {}
        for k, proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, (out + err).decode("utf-8", "replace")
            run = Run(0, out.decode(), err.decode(), arm.path.parent / f"{partition}-{k}.xml").parse_junit()
            assert f"shard {k + 1}/{n}:" in run.stdout
            for c in run.cases:
                assert c.kind == "pass"
                assert (c.classname, c.name) not in seen
                seen[(c.classname, c.name)] = k
        assert seen == expected
        host_seen = {}
        for k in range(n):
            run = run_host(host, k, n, partition).parse_junit()
            host_seen.update({(c.classname, c.name): k for c in run.cases})
        assert host_seen == seen
    for r in records(arm):
        assert r[0] == f"shard-{r[4]}-of-3.log" and r[5] == "3"


def test_userland_empty_shard_passes(arm64, tmp_path):
    archive = build_archive(tmp_path / "one.tar", [("bin/one_test", ["pass_only"])], arch="aarch64")
    owner = cksum(b"bin/one_test::pass_only") % 3
    k = (owner + 1) % 3
    run = run_userland(arm64, archive, k, 3, "hash").parse_junit()
    assert run.code == 0, run.stdout + run.stderr
    assert run.suite_counts() == (0, 0, 0)
    assert f"shard {k + 1}/3: 0 passed, 0 failed, 0 timed out, 0 crashed, 0 errors of 0 cases" in run.stdout


def test_userland_refuses_an_x86_64_archive(arm64, tmp_path):
    archive = build_archive(tmp_path / "x86.tar", standard_binaries(), arch="x86_64")
    run = run_userland(arm64, archive, 0, 1)
    assert run.code == 3, run.stdout + run.stderr
    assert (
        "this archive was built for x86_64 (platform linux_x86_64, target x86_64-linux-musl) "
        "but this shard runs on aarch64"
    ) in run.stderr
    assert records(archive) == []
    run.parse_junit()
    assert run.suite_counts() == (1, 0, 1)


def test_userland_refuses_tampered_and_unknown_archives(arm64, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tampered = build_archive(tmp_path / "a" / "t.tar", standard_binaries(), arch="aarch64", tamper="bin/alpha_test")
    run = run_userland(arm64, tampered, 0, 1)
    assert run.code == 3 and "archive contents do not match its manifest: bin/alpha_test has sha256" in run.stderr
    unknown = build_archive(
        tmp_path / "b" / "t.tar", standard_binaries(), arch="aarch64", first_line="crossbuild-test-archive 7"
    )
    run = run_userland(arm64, unknown, 0, 1)
    assert run.code == 3 and "unsupported manifest format version '7'" in run.stderr
