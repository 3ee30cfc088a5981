"""The crossbuild plugin end to end, driven by Pants 2.17 against the embedded bridge and its
x86-64 and ARM64 executors.

One small C project: a library and three test binaries built once here for linux_arm64 and
run as three shards on the ARM64 executor, one action per (shard, binary). Checked: every case
runs in exactly one shard; a second run from an empty local store is served from the bridge;
editing one test source recompiles one object, relinks one binary and runs that binary's
actions only (one per shard) on the ARM64 executor, the other binaries coming from the cache.
"""

import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from pants_project import (
    Cluster,
    bridge_command,
    environment_target,
    open_temp_dir,
    remote_flags,
    run_pants,
    write_pants_project,
)

PLUGIN_ROOT = Path("pants-plugins").resolve()

LIB_H = "int cb_add(int a, int b);\nint cb_is_upper(char c);\n"
LIB_C = textwrap.dedent(
    """\
    #include "mylib/lib.h"
    int cb_add(int a, int b) { return a + b; }
    int cb_is_upper(char c) { unsigned char u = (unsigned char)c; return u >= 'A' && u <= 'Z'; }
    """
)


def source_of_test(name: str, cases: int) -> str:
    body = ['#include "crossbuild_test.h"', '#include "mylib/lib.h"']
    for i in range(cases):
        body.append(f"CB_TEST({name}_{i}) {{ CB_ASSERT_EQ_INT(cb_add({i}, 1), {i + 1}); }}")
    body.append(f"CB_TEST({name}_char) {{ CB_ASSERT(!cb_is_upper((char)0xC9)); CB_ASSERT(cb_is_upper('Q')); }}")
    return "\n".join(body) + "\n"


def write_project(root: Path) -> None:
    files = {"proj/mylib/lib.h": LIB_H, "proj/mylib/lib.c": LIB_C}
    for name, n in (("alpha", 5), ("beta", 4), ("gamma", 3)):
        files[f"proj/tests/{name}_test.c"] = source_of_test(name, n)
    files["proj/BUILD"] = textwrap.dedent(
        """\
        cc_sources(name="lib", sources=["mylib/*.c", "mylib/*.h"])
        crossbuild_test_archive(
            name="tests-arm64",
            sources=["tests/*_test.c"],
            dependencies=[":lib"],
            include_dirs=["proj"],
            platform="linux_arm64",
        )
        crossbuild_sharded_tests(
            name="arm64", archive=":tests-arm64", shards=3, partition="count",
            environment="linux_arm64",
        )
        """
    )
    write_pants_project(
        root,
        backends=["pants.backend.experimental.cc", "crossbuild"],
        plugin_root=PLUGIN_ROOT,
        environments=["linux_arm64"],
        sections='[source]\nroot_patterns = ["/"]\n',
        files=files,
    )


ALL_CASES = {f"{n}_{i}" for n, k in (("alpha", 5), ("beta", 4), ("gamma", 3)) for i in range(k)} | {
    "alpha_char",
    "beta_char",
    "gamma_char",
}


@pytest.fixture
def cluster():
    """The embedded cluster's address."""
    c = Cluster(open_temp_dir("crossbuild-e2e-cluster-"), concurrency=2)
    yield c.up()
    c.down()


def executed_actions(address: str) -> int:
    """Actions the bridge's executors have completed (cache hits are not executions)."""
    out = subprocess.run(bridge_command("status", "--bridge", address), capture_output=True, text=True, check=True)
    return int(re.search(r"actions: \d+ running, (\d+) completed", out.stdout).group(1))


def run(project: Path, store: Path, address: str, *args: str):
    return run_pants(project, store, *remote_flags(address), "test", "--output=all", *args, "proj::")


def test_archive_shards_cache_and_incremental_rebuild(cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)

    first = run(project, tmp_path / "store-1", cluster)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log
    for k in (1, 2, 3):
        assert f"proj:arm64#shard-{k}-of-3 succeeded" in log and "ran in remote environment `linux_arm64`" in log
    ran = re.findall(r"PASS bin/\w+::(\w+)", log)
    assert sorted(ran) == sorted(ALL_CASES), "every case runs in exactly one shard"
    ran_binaries = re.findall(r"== (bin/\w+): ran, exit 0", log)
    assert sorted(ran_binaries) == sorted(3 * ["bin/alpha_test", "bin/beta_test", "bin/gamma_test"]), log
    compiles = re.findall(r"Completed: Compile (\S+) for linux_arm64", log)
    links = re.findall(r"Completed: Link (\S+) for linux_arm64", log)
    # The shard runner is built once per platform like any binary (here: for the executor's).
    assert sorted(compiles) == [
        "__crossbuild/shard_runner.c", "proj/mylib/lib.c", "proj/tests/alpha_test.c",
        "proj/tests/beta_test.c", "proj/tests/gamma_test.c",
    ]
    assert sorted(links) == ["alpha_test", "beta_test", "gamma_test", "shard_runner"], "each binary linked once for all shards"

    second = run(project, tmp_path / "store-2", cluster)
    log2 = second.stdout + second.stderr
    assert second.returncode == 0, log2
    for k in (1, 2, 3):
        line = next(l for l in log2.splitlines() if f"proj:arm64#shard-{k}-of-3 succeeded" in l)
        assert "cached remotely" in line, line

    beta = project / "proj" / "tests" / "beta_test.c"
    beta.write_text(beta.read_text() + "CB_TEST(beta_added) { CB_ASSERT(1); }\n")
    before = executed_actions(cluster)
    third = run(project, tmp_path / "store-2", cluster)
    log3 = third.stdout + third.stderr
    assert third.returncode == 0, log3
    assert re.findall(r"Completed: Compile (\S+) for linux_arm64", log3) == ["proj/tests/beta_test.c"]
    assert re.findall(r"Completed: Link (\S+) for linux_arm64", log3) == ["beta_test"]
    assert "PASS bin/beta_test::beta_added" in log3
    # Each shard ran beta's action and took alpha's and gamma's results from the cache.
    assert sorted(re.findall(r"== (bin/\w+): ran", log3)) == 3 * ["bin/beta_test"], log3
    cached = re.findall(r"== (bin/\w+): cached (?:locally|remotely)", log3)
    assert sorted(cached) == sorted(3 * ["bin/alpha_test", "bin/gamma_test"]), log3
    assert "PASS bin/alpha_test" not in log3
    # Those three ran on the bridge's executors (Pants says "ran" only for an execution, never
    # for a cache hit; the environment is remote). Not "== 3": Pants 2.17 races its own
    # GetActionResult against Execute(skip_cache_lookup=true) for the same action and drops
    # the loser, and the bridge still runs an execution whose client went away.
    assert executed_actions(cluster) - before >= 3


def _reports(project: Path, workers: bool) -> dict:
    """Each shard's merged JUnit XML (of proj:arm64-workers or proj:arm64), times blanked
    (they differ on every run)."""
    found = {}
    for path in sorted((project / "dist" / "test" / "reports").glob("*shard-*.xml")):
        if ("arm64-workers" in path.name) != workers:
            continue
        shard = re.search(r"shard-\d+-of-\d+", path.name).group(0)
        found[shard] = re.sub(rb'(time|timestamp)="[^"]*"', rb'\1=""', path.read_bytes())
    return found


def test_arm64_shards_through_persistent_workers_give_the_same_results(cluster, tmp_path):
    """The same archive's shards in two environments: plain linux_arm64 (one process per
    action) and one whose platform asks for persistent workers. The worker shards run in one
    long-lived emulated session per executor slot (status lists the workers and what they
    served), and every report is the same as the one-shot shards' but for times."""
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    build = project / "proj" / "BUILD"
    build.write_text(
        build.read_text()
        + 'crossbuild_sharded_tests(\n    name="arm64-workers", archive=":tests-arm64", shards=3, partition="count",\n'
        '    environment="linux_arm64_workers",\n)\n'
    )
    toml = (project / "pants.toml").read_text()
    (project / "pants.toml").write_text(
        toml.replace('linux_arm64 = "//:linux_arm64"', 'linux_arm64 = "//:linux_arm64"\nlinux_arm64_workers = "//:linux_arm64_workers"')
    )
    (project / "BUILD").write_text((project / "BUILD").read_text() + environment_target("linux_arm64_workers", shell=False))

    result = run(project, tmp_path / "store", cluster, "--test-report")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    for k in (1, 2, 3):
        assert f"proj:arm64-workers#shard-{k}-of-3 succeeded" in log

    def served():
        out = subprocess.run(bridge_command("status", "--bridge", cluster), capture_output=True, text=True, check=True)
        return out.stdout, [int(n) for n in re.findall(r"key \w+\s+proto\s+pid \d+\s+(\d+) requests", out.stdout)]

    # Nine worker actions (3 shards x 3 binaries; Pants may race a few twice), on at most two
    # workers (one per slot). Slots report their executor's workers when they next check in.
    deadline = time.monotonic() + 60
    while sum(served()[1]) < 9 and time.monotonic() < deadline:
        time.sleep(0.5)
    text, requests = served()
    assert sum(requests) >= 9 and 1 <= len(requests) <= 2, text
    arm_block, x86_block = text.split("local-arm-a64", 1)[1].split("local-x86-64", 1)
    assert "persistent workers" in arm_block and "persistent workers" not in x86_block, text
    one_shot, through_workers = _reports(project, workers=False), _reports(project, workers=True)
    assert sorted(one_shot) == ["shard-1-of-3", "shard-2-of-3", "shard-3-of-3"]
    assert through_workers == one_shot
    # Every case passed once in each target.
    passes = re.findall(r"PASS bin/\w+::(\w+)", log)
    assert sorted(passes) == sorted(2 * list(ALL_CASES)), log
