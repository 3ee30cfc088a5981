"""shard_runner.c's --framework=gtest|catch2|doctest, end to end: real GoogleTest, Catch2 and
doctest binaries built with the plugin's pinned zig from the machine's Debian packages
(googletest, catch2, doctest-dev; used from /usr at test time, nothing copied), run natively and,
for GoogleTest, in the emulated aarch64 userland as shard_runner_test runs crossbuild binaries.

Run: ./pants test pants-plugins/crossbuild/resources/frameworks_test.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from crossbuild.resources.shard_runner_test import (
    HOST,
    PATH,
    RUNNER_C,
    ZIG,
    Run,
    Worker,
    run_flagfile,
    untimed,
    xml_text,
    zig_cc,
)
from reapi_bridge.executor.arm64_userland import build_rootfs, host_runner

GTEST_ROOT = Path("/usr/src/googletest/googletest")
CATCH2_DIR = Path("/usr/include/catch2")
DOCTEST_DIR = Path("/usr/include/doctest")
CACHE = Path("/tmp/crossbuild-test-zig-cache")

missing = [str(p) for p in (GTEST_ROOT / "src" / "gtest-all.cc", CATCH2_DIR / "catch.hpp", DOCTEST_DIR / "doctest.h") if not p.exists()]
pytestmark = [
    pytest.mark.skipif(ZIG is None, reason="no zig ($CROSSBUILD_ZIG unset, ziglang not importable)"),
    pytest.mark.skipif(bool(missing), reason=f"framework packages not installed: {missing}"),
]

GTEST_CC = r"""
#include <gtest/gtest.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

TEST(Math, Adds) { EXPECT_EQ(2 + 2, 4); }
TEST(Math, FailsEq) {
    int x = 3;
    printf("about to compare\n");
    EXPECT_EQ(x, 4) << "x should be four";  // FAILS-HERE
}
TEST(Math, DISABLED_NeverRuns) { FAIL() << "a disabled test ran"; }
TEST(DISABLED_Off, NeverRunsEither) { FAIL() << "a disabled suite ran"; }
TEST(Crash, Segfaults) { raise(SIGSEGV); }
TEST(Slow, Hangs) { for (;;) pause(); }
TEST(Death, FastStyle) {
    EXPECT_DEATH({ fprintf(stderr, "dying now\n"); abort(); }, "dying now");
}
TEST(Death, ThreadsafeStyle) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-executes the binary
    EXPECT_EXIT({ fprintf(stderr, "leaving\n"); _exit(3); }, ::testing::ExitedWithCode(3), "leaving");
}
TEST(Env, NoGtestSharding) {
    EXPECT_EQ(getenv("GTEST_SHARD_INDEX"), nullptr);
    EXPECT_EQ(getenv("GTEST_TOTAL_SHARDS"), nullptr);
    EXPECT_NE(getenv("TEST_TOTAL_SHARDS"), nullptr);
}
TEST(Skips, Itself) { GTEST_SKIP() << "not on this machine"; }

template <typename T> class Typed : public ::testing::Test {};
using MyTypes = ::testing::Types<int, long, double>;
TYPED_TEST_SUITE(Typed, MyTypes);
TYPED_TEST(Typed, ZeroIsZero) { EXPECT_EQ(TypeParam(0), TypeParam(0)); }

class Param : public ::testing::TestWithParam<int> {};
TEST_P(Param, Even) { EXPECT_EQ(GetParam() % 2, 0); }
INSTANTIATE_TEST_SUITE_P(Evens, Param, ::testing::Values(2, 4, 6));
INSTANTIATE_TEST_SUITE_P(DISABLED_Odds, Param, ::testing::Values(1));

// Names only ::testing::RegisterTest can give: the filter's own syntax characters.
class Dynamic : public ::testing::Test {
  public:
    explicit Dynamic(bool pass) : pass_(pass) {}
    void TestBody() override {
        if (!pass_) FAIL() << "the wrong case ran: " << ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }
  private:
    bool pass_;
};
static void add(const char *name, bool pass) {
    ::testing::RegisterTest("Weird", name, nullptr, nullptr, __FILE__, __LINE__,
                            [pass]() -> Dynamic * { return new Dynamic(pass); });
}
static bool registered = [] {
    add("star*name", true);
    add("starXname", false);  // "star?name" matches it: excluded from star*name's filter
    add("colon:name", true);
    add("colonXname", false);
    add("-dash", true);
    add("Xdash", false);
    add("q?mark", true);      // q?mark and q*mark: each one's filter selects the other
    add("q*mark", true);
    return true;
}();
"""

CATCH2_CC = r"""
#define CATCH_CONFIG_MAIN
#include <catch.hpp>
#include <csignal>

TEST_CASE("plain passes") { REQUIRE(1 + 1 == 2); }
TEST_CASE("with, a comma [x] and brackets", "[tag]") { REQUIRE(true); }
TEST_CASE("a, b") { REQUIRE(true); }
TEST_CASE("a") { FAIL("decoy a ran"); }
TEST_CASE("b") { FAIL("decoy b ran"); }
TEST_CASE("decoy tagged x", "[x]") { FAIL("decoy [x] ran"); }
TEST_CASE("fails a require") {
    int x = 1;
    REQUIRE(x == 2);  // FAILS-HERE
}
TEST_CASE("#hash name") { REQUIRE(true); }
TEST_CASE("back\\slash \"quoted\" ~tilde") { REQUIRE(true); }
TEST_CASE("*star") { REQUIRE(true); }
TEST_CASE("a star") { FAIL("decoy a star ran"); }
TEST_CASE("Same Name") { REQUIRE(true); }
TEST_CASE("same name") { REQUIRE(true); }
TEST_CASE("hidden one", "[.]") { FAIL("a hidden case ran"); }
TEST_CASE("hidden too", "[.integration]") { FAIL("a hidden case ran"); }
TEST_CASE("crashes") { std::raise(SIGSEGV); }
"""

DOCTEST_CC = r"""
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest.h>

TEST_CASE("plain") { CHECK(1 == 1); }
TEST_CASE("PLAIN") { FAIL("decoy PLAIN ran"); }
TEST_CASE("star * and, comma") { CHECK(true); }
TEST_CASE("star x and, comma") { FAIL("decoy star x ran"); }
TEST_CASE("star 1 and") { FAIL("decoy star 1 ran"); }  // what "star * and" would select
TEST_CASE(" comma") { FAIL("decoy comma ran"); }
TEST_CASE("q?mark") { CHECK(true); }
TEST_CASE("qXmark") { FAIL("decoy qXmark ran"); }
TEST_CASE("back\\slash") { CHECK(true); }
TEST_CASE("fails check") {
    int x = 1;
    CHECK(x == 2);  // FAILS-HERE
}
TEST_CASE("skipped" * doctest::skip()) { FAIL("a skipped case ran"); }
TEST_SUITE("suite") {
    TEST_CASE("in a suite <&>") { CHECK(true); }
}
"""

# Not a framework binary at all: listings that crash, or print what no framework would.
LIST_CRASH_C = r"""
int main(void) { volatile int *p = (int *)0; return *p; }
"""
GARBAGE_C = r"""
#include <stdio.h>
int main(void) { puts("Suite."); puts("  Case"); puts("this is not a listing"); return 0; }
"""


def line_of(source: str, marker: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if marker in line)


def zig_env(out: Path) -> dict:
    return dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(CACHE), ZIG_LOCAL_CACHE_DIR=str(out / ".zig-local"))


def zig_cxx(arch: str, args: List[str], out: Path) -> None:
    """Runs in out's folder, so that sources named there relatively appear so in __FILE__."""
    proc = subprocess.run([ZIG, "c++", "-target", f"{arch}-linux-musl", "-std=c++17", "-O1", *args],
                          env=zig_env(out.parent), capture_output=True, text=True, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr


def gtest_all(arch: str, out: Path) -> Path:
    """gtest-all.cc compiled once per (zig, googletest, arch), kept across runs under /tmp."""
    src = GTEST_ROOT / "src" / "gtest-all.cc"
    key = hashlib.sha256(f"{Path(ZIG).resolve()}:{os.stat(ZIG).st_size}:{src.stat().st_mtime_ns}:{arch}".encode()).hexdigest()[:16]
    cached = CACHE / f"gtest-all-{arch}-{key}.o"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out / f"gtest-all-{arch}.o"
        zig_cxx(arch, [f"-I{GTEST_ROOT / 'include'}", f"-I{GTEST_ROOT}", "-c", str(src), "-o", str(tmp)], tmp)
        shutil.copy(tmp, f"{cached}.{os.getpid()}")
        os.replace(f"{cached}.{os.getpid()}", cached)
    return cached


def build_gtest(arch: str, out: Path) -> Path:
    (out / "gtest_cases.cc").write_text(GTEST_CC)
    binary = out / f"gtest-{arch}"
    zig_cxx(arch, [f"-I{GTEST_ROOT / 'include'}", "gtest_cases.cc", str(gtest_all(arch, out)),
                   str(GTEST_ROOT / "src" / "gtest_main.cc"), f"-I{GTEST_ROOT}", "-o", str(binary)], binary)
    return binary


def build_header_only(name: str, source: str, include: Path, out: Path) -> Path:
    (out / f"{name}_cases.cc").write_text(source)
    binary = out / f"{name}-{HOST}"
    zig_cxx(HOST, [f"-I{include}", f"{name}_cases.cc", "-o", str(binary)], binary)
    return binary


@pytest.fixture(scope="session")
def fw(tmp_path_factory) -> Dict[str, Path]:
    """The runner and the test binaries for this machine (gtest also for aarch64, built lazily)."""
    out = tmp_path_factory.mktemp("frameworks")
    for name, text in (("listcrash", LIST_CRASH_C), ("garbage", GARBAGE_C)):
        (out / f"{name}.c").write_text(text)
    (out / "cb.c").write_text('#include "crossbuild_test.h"\nCB_TEST(only) { CB_ASSERT_EQ_INT(1, 1); }\n')
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {
            "gtest": pool.submit(build_gtest, HOST, out),
            "catch2": pool.submit(build_header_only, "catch2", CATCH2_CC, CATCH2_DIR, out),
            "doctest": pool.submit(build_header_only, "doctest", DOCTEST_CC, DOCTEST_DIR, out),
            "runner": pool.submit(zig_cc, HOST, RUNNER_C, out / f"runner-{HOST}"),
            "crossbuild": pool.submit(zig_cc, HOST, out / "cb.c", out / "cb"),
            "listcrash": pool.submit(zig_cc, HOST, out / "listcrash.c", out / "listcrash"),
            "garbage": pool.submit(zig_cc, HOST, out / "garbage.c", out / "garbage"),
        }
        built = {name: job.result() for name, job in jobs.items()}
    built["out"] = out
    return built


def box_for(tmp_path: Path, fw: Dict[str, Path], binary: str, runner: Optional[Path] = None) -> Path:
    box = tmp_path / "box"
    (box / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(runner or fw["runner"], box / "shard_runner")
    shutil.copy(fw[binary], box / "bin" / "t")
    return box


def run(box: Path, framework: Optional[str], *args: str, env: Optional[dict] = None) -> Run:
    options = [f"--framework={framework}"] if framework else []
    proc = subprocess.run(["./shard_runner", *options, "bin/t", *args, "out.xml"], cwd=box, capture_output=True,
                          text=True, env={"PATH": PATH, **(env or {})}, timeout=600)
    xml = box / "out.xml"
    return Run(proc.returncode, proc.stdout, proc.stderr, ET.parse(xml).getroot() if xml.exists() else None)


def outcome(case: ET.Element) -> tuple:
    """(KIND, message) of a JUnit testcase as the runner writes it."""
    for tag in ("failure", "error", "skipped"):
        e = case.find(tag)
        if e is not None:
            kind = "SKIP" if tag == "skipped" else "ERROR" if tag == "error" else e.get("type").upper()
            return kind, e.get("message")
    return "PASS", None


# ---- GoogleTest ---------------------------------------------------------------------------------

GTEST_KINDS = {
    "Math.Adds": "PASS",
    "Math.FailsEq": "FAIL",
    "Math.DISABLED_NeverRuns": "SKIP",
    "DISABLED_Off.NeverRunsEither": "SKIP",
    "Crash.Segfaults": "CRASH",
    "Slow.Hangs": "TIMEOUT",
    "Death.FastStyle": "PASS",
    "Death.ThreadsafeStyle": "PASS",
    "Env.NoGtestSharding": "PASS",
    "Skips.Itself": "SKIP",
    "Typed/0.ZeroIsZero": "PASS",
    "Typed/1.ZeroIsZero": "PASS",
    "Typed/2.ZeroIsZero": "PASS",
    "Evens/Param.Even/0": "PASS",
    "Evens/Param.Even/1": "PASS",
    "Evens/Param.Even/2": "PASS",
    "DISABLED_Odds/Param.Even/0": "SKIP",
    "Weird.star*name": "PASS",
    "Weird.starXname": "FAIL",
    "Weird.colon:name": "PASS",
    "Weird.colonXname": "FAIL",
    "Weird.-dash": "PASS",
    "Weird.Xdash": "FAIL",
    "Weird.q?mark": "ERROR",
    "Weird.q*mark": "ERROR",
}


def check_gtest(result: Run) -> None:
    cases = result.cases()
    assert sorted(cases) == sorted(GTEST_KINDS), "every case"
    got = {name: outcome(case)[0] for name, case in cases.items()}
    assert got == GTEST_KINDS, result.stdout
    assert result.returncode == 1
    message = outcome(cases["Math.FailsEq"])[1]
    assert message.startswith(f"gtest_cases.cc:{line_of(GTEST_CC, 'FAILS-HERE')}: Expected equality of these values:")
    assert "Which is: 3" in message and message.endswith("x should be four")
    assert "about to compare" in cases["Math.FailsEq"].find("failure").text, "the case's output is kept"
    assert outcome(cases["Crash.Segfaults"])[1] == "killed by signal 11 (SIGSEGV)"
    assert outcome(cases["Slow.Hangs"])[1].startswith("timed out after")
    assert outcome(cases["Skips.Itself"])[1].endswith(": not on this machine")
    assert "disabled" in outcome(cases["Math.DISABLED_NeverRuns"])[1]
    for decoy in ("Weird.starXname", "Weird.colonXname", "Weird.Xdash"):
        assert f"the wrong case ran: {decoy.split('.')[1]}" in outcome(cases[decoy])[1], "only by its own filter"
    kind, message = outcome(cases["Weird.q?mark"])
    assert cases["Weird.q?mark"].find("error").get("type") == "filter"
    assert "cannot select 'Weird.q?mark' alone: it also selects 'Weird.q*mark'" in message
    suite = result.xml.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("25", "6", "2", "4")
    assert "shard 1/1, bin/t: 25 of 25 cases (gtest, hash partition," in result.stdout
    assert "shard 1/1, bin/t: 13 passed, 4 failed, 1 timed out, 1 crashed, 4 skipped, 2 errors of 25 cases" in result.stdout
    assert "SKIP bin/t::Math.DISABLED_NeverRuns: disabled" in result.stdout


def test_gtest_every_case_is_run_alone_and_reported(fw, tmp_path):
    box = box_for(tmp_path, fw, "gtest")
    sharded = {"GTEST_SHARD_INDEX": "1", "GTEST_TOTAL_SHARDS": "2", "GTEST_SHARD_STATUS_FILE": "/nonexistent/x"}
    result = run(box, "gtest", "0", "1", "hash", "2", env=sharded)
    check_gtest(result)
    assert not list(box.glob("crossbuild-shard.*")), "the runner removes its temporary folder"


@pytest.mark.parametrize("partition", ["hash", "count", "slice"])
def test_gtest_shards_partition_every_case_exactly_once(fw, tmp_path, partition):
    seen: List[str] = []
    for k in range(3):
        box = box_for(tmp_path / str(k), fw, "gtest")
        result = run(box, "gtest", str(k), "3", partition, "1")
        assert result.returncode in (0, 1), result.stdout + result.stderr
        seen += list(result.cases())
        for name, case in result.cases().items():
            assert outcome(case)[0] == GTEST_KINDS[name], name
    assert sorted(seen) == sorted(GTEST_KINDS)


# ---- Catch2 -------------------------------------------------------------------------------------

CATCH2_KINDS = {
    "plain passes": "PASS",
    "with, a comma [x] and brackets": "PASS",
    "a, b": "PASS",
    "a": "FAIL",
    "b": "FAIL",
    "decoy tagged x": "FAIL",
    "fails a require": "FAIL",
    "#hash name": "PASS",
    'back\\slash "quoted" ~tilde': "PASS",
    "*star": "PASS",
    "a star": "FAIL",
    "Same Name": "ERROR",
    "same name": "ERROR",
    "crashes": "CRASH",
    "hidden one": "SKIP",
    "hidden too": "SKIP",
}


def test_catch2_names_with_spaces_brackets_and_commas_select_exactly_one_case(fw, tmp_path):
    box = box_for(tmp_path, fw, "catch2")
    result = run(box, "catch2", "0", "1", "count", "10")
    cases = result.cases()
    assert list(cases) == list(CATCH2_KINDS)
    assert {name: outcome(case)[0] for name, case in cases.items()} == CATCH2_KINDS, result.stdout
    assert outcome(cases["fails a require"])[1] == (
        f"catch2_cases.cc:{line_of(CATCH2_CC, 'FAILS-HERE')}: REQUIRE( x == 2 ) with expansion: 1 == 2")
    assert outcome(cases["a"])[1].endswith(": decoy a ran")
    assert outcome(cases["crashes"])[1].startswith("killed by signal 11 (SIGSEGV): catch2_cases.cc:")
    assert "SIGSEGV - Segmentation violation signal" in outcome(cases["crashes"])[1]
    message = outcome(cases["Same Name"])[1]
    assert "cannot select 'Same Name' alone: it also selects 'same name'" in message and "case-insensitively" in message
    assert "hidden (tagged [.])" in outcome(cases["hidden one"])[1]
    assert result.returncode == 1


# ---- doctest ------------------------------------------------------------------------------------

DOCTEST_KINDS = {
    "plain": "PASS",
    "PLAIN": "FAIL",
    "star * and, comma": "PASS",
    "star x and, comma": "FAIL",
    "star 1 and": "FAIL",
    " comma": "FAIL",
    "q?mark": "PASS",
    "qXmark": "FAIL",
    "back\\slash": "PASS",
    "fails check": "FAIL",
    "skipped": "SKIP",
    "in a suite <&>": "PASS",
}


def test_doctest_wildcards_and_commas_in_names_select_exactly_one_case(fw, tmp_path):
    box = box_for(tmp_path, fw, "doctest")
    result = run(box, "doctest", "0", "1", "slice", "10")
    cases = result.cases()
    assert list(cases) == list(DOCTEST_KINDS)
    assert {name: outcome(case)[0] for name, case in cases.items()} == DOCTEST_KINDS, result.stdout
    assert outcome(cases["fails check"])[1] == (
        f"doctest_cases.cc:{line_of(DOCTEST_CC, 'FAILS-HERE')}: CHECK( x == 2 ) with expansion: 1 == 2")
    assert outcome(cases["PLAIN"])[1].endswith("decoy PLAIN ran"), "each decoy fails by its own filter only"
    assert "doctest::skip" in outcome(cases["skipped"])[1]
    assert "shard 1/1, bin/t: 5 passed, 6 failed, 0 timed out, 0 crashed, 1 skipped of 12 cases" in result.stdout


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "framework, listing, title",
    [("gtest", "--gtest_list_tests", "GoogleTest"), ("catch2", "--list-test-names-only", "Catch2"),
     ("doctest", "--dt-list-test-cases", "doctest")],
)
def test_a_crossbuild_binary_is_not_taken_for_another_framework(fw, tmp_path, framework, listing, title):
    box = box_for(tmp_path, fw, "crossbuild")
    result = run(box, framework, "0", "1", "hash", "5")
    assert result.returncode == 1
    (case,) = result.cases().values()
    assert case.get("name") == listing
    message = case.find("error").get("message")
    assert message.startswith(f"bin/t does not look like a {title} binary (--framework={framework}): "), message
    assert f"ERROR bin/t {listing} (" in result.stdout
    assert "unrecognised arguments" in case.find("error").text, "the binary's own complaint is kept"


def test_listings_that_crash_or_print_nonsense_are_one_error(fw, tmp_path):
    box = box_for(tmp_path / "crash", fw, "listcrash")
    for framework, listing in (("gtest", "--gtest_list_tests"), ("catch2", "--list-test-names-only"),
                               ("doctest", "--dt-list-test-cases")):
        result = run(box, framework, "0", "1", "hash", "5")
        (case,) = result.cases().values()
        assert case.get("name") == listing and result.returncode == 1
        assert case.find("error").get("message") == (
            f"{listing} was killed by signal 11 (SIGSEGV) (bin/t, --framework={framework})")
    box = box_for(tmp_path / "garbage", fw, "garbage")
    result = run(box, "gtest", "0", "1", "hash", "5")
    (case,) = result.cases().values()
    assert case.find("error").get("message") == (
        "bin/t does not look like a GoogleTest binary (--framework=gtest): line 3 of what --gtest_list_tests "
        "printed is neither a \"Suite.\" line nor an indented case: 'this is not a listing'")
    result = run(box, "doctest", "0", "1", "hash", "5")
    assert "printed no <doctest> report" in result.cases()["--dt-list-test-cases"].find("error").get("message")
    result = run(box, "catch2", "0", "1", "hash", "5")
    assert "printed 3 names but exited with status 0" in result.cases()["--list-test-names-only"].find("error").get("message")


def test_an_unknown_framework_is_a_usage_error(fw, tmp_path):
    box = box_for(tmp_path, fw, "gtest")
    for option in ("--framework=pytest", "--framework=", "--framework=GTEST"):
        proc = subprocess.run(["./shard_runner", option, "bin/t", "0", "1", "hash", "5", "out.xml"], cwd=box,
                              capture_output=True, text=True)
        assert proc.returncode == 2 and "unknown framework" in proc.stderr and "usage:" in proc.stderr, option
        assert not (box / "out.xml").exists()
    proc, _ = run_flagfile(box, ["--framework=nose", "bin/t", "0", "1", "hash", "5", "x.xml"])
    assert proc.returncode == 2 and "unknown framework 'nose'" in proc.stderr
    # The option belongs before BINARY: after it, the arguments do not add up.
    proc, _ = run_flagfile(box, ["bin/t", "--framework=gtest", "0", "1", "hash", "5", "x.xml"])
    assert proc.returncode == 2 and "expected 6 arguments, got 7" in proc.stderr


# ---- flagfile and persistent worker -------------------------------------------------------------

def test_flagfile_and_worker_take_the_framework_line_before_the_binary(fw, tmp_path):
    for framework, partition in (("doctest", "hash"), ("catch2", "count"), ("gtest", "slice")):
        box = box_for(tmp_path / framework, fw, framework)
        positional = run(box, framework, "1", "2", partition, "1")
        lines = [f"--framework={framework}", "bin/t", "1", "2", partition, "1", "flag.xml"]
        proc, xml = run_flagfile(box, lines)
        assert proc.returncode == positional.returncode and positional.returncode in (0, 1), proc.stderr
        assert untimed(proc.stderr) == untimed(positional.stdout + positional.stderr)
        assert xml == xml_text(box, "out.xml")
        worker = Worker(["./shard_runner", "--persistent_worker"], box)
        r = worker.request(lines[:-1] + ["worker.xml"], request_id=7)
        assert r.request_id == 7 and r.exit_code == proc.returncode and untimed(r.output) == untimed(proc.stderr)
        assert xml_text(box, "worker.xml") == xml
        # the next request, without the option, is a crossbuild request again
        r = worker.request(["bin/t", "0", "1", "hash", "2", "again.xml"])
        assert r.exit_code == 1 and "ERROR bin/t --list (" in r.output
        assert worker.finish()[0] == 0


# ---- emulated aarch64 ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def arm64_gtest(fw):
    out = fw["out"]
    return {"runner": zig_cc("aarch64", RUNNER_C, out / "runner-aarch64"), "gtest": build_gtest("aarch64", out)}


@pytest.fixture(scope="session")
def arm64(tmp_path_factory):
    rootfs = tmp_path_factory.mktemp("arm64") / "rootfs"
    if HOST != "aarch64":
        build_rootfs(rootfs)
    return host_runner(rootfs)


def test_emulated_arm64_gtest_binary(fw, arm64_gtest, arm64, tmp_path):
    box = tmp_path / "box"
    (box / "bin").mkdir(parents=True)
    shutil.copy(arm64_gtest["runner"], box / "shard_runner")
    shutil.copy(arm64_gtest["gtest"], box / "bin" / "t")
    (box / "flag.args").write_text("\n".join(["--framework=gtest", "bin/t", "0", "1", "hash", "3", "out.xml"]) + "\n")
    argv = arm64.wrap(["./shard_runner", "@flag.args"], cwd=box, binds=[box])
    proc = subprocess.run(argv, capture_output=True, text=True, start_new_session=True, env={"PATH": "/usr/bin:/bin"},
                          timeout=600)
    xml = box / "out.xml"
    result = Run(proc.returncode, proc.stderr, "", ET.parse(xml).getroot() if xml.exists() else None)
    check_gtest(result)
