"""GoogleTest binaries as they are, in ARM64 shards through the embedded cluster: every case
runs in exactly one shard (a DISABLED_ one is skipped), a second run from an empty local store
is served from the bridge, and editing one test source re-runs only that binary's cases.
GoogleTest comes from this machine's Debian package through a pinned
`crossbuild_system_directory` (the pin examples/cxxlib/BUILD carries)."""

import re
import textwrap
from pathlib import Path

import pytest

from crossbuild_e2e.archive_shards_test import PLUGIN_ROOT, executed_actions
from pants_project import Cluster, open_temp_dir, remote_flags, run_pants, write_pants_project

GOOGLETEST_PIN = "cd957320f4502ef3f66e5b7613dfc6676aebc401973ce36893f4e8e50dd616bc:159"

ALPHA = textwrap.dedent(
    """\
    #include <gtest/gtest.h>
    TEST(Alpha, Adds) { EXPECT_EQ(2 + 2, 4); }
    TEST(Alpha, DISABLED_NotYet) { FAIL(); }
    class AlphaParam : public ::testing::TestWithParam<int> {};
    TEST_P(AlphaParam, NonNegative) { EXPECT_GE(GetParam(), 0); }
    INSTANTIATE_TEST_SUITE_P(Small, AlphaParam, ::testing::Values(0, 1, 2, 3));
    """
)
BETA = textwrap.dedent(
    """\
    #include <gtest/gtest.h>
    template <typename T> class BetaTyped : public ::testing::Test {};
    using Types = ::testing::Types<int, long, unsigned>;
    TYPED_TEST_SUITE(BetaTyped, Types);
    TYPED_TEST(BetaTyped, DefaultIsZero) { EXPECT_EQ(TypeParam(), TypeParam(0)); }
    TEST(Beta, CharSigned) {
    #if defined(__aarch64__)
      EXPECT_FALSE(static_cast<char>(-1) < 0);  // char is unsigned on aarch64 Linux
    #else
      EXPECT_TRUE(static_cast<char>(-1) < 0);
    #endif
    }
    """
)


def write_project(root: Path) -> None:
    build = textwrap.dedent(
        f"""\
        crossbuild_system_directory(
            name="googletest", path="/usr/src/googletest/googletest", globs=["include/**", "src/**"],
            include_dirs=["include", "."], sources=["src/gtest-all.cc", "src/gtest_main.cc"],
            package="googletest", digest="{GOOGLETEST_PIN}",
        )
        crossbuild_test_archive(
            name="tests-arm64", framework="gtest", sources=["tests/*_test.cc"], dependencies=[":googletest"],
            platform="linux_arm64",
        )
        crossbuild_sharded_tests(
            name="arm64", archive=":tests-arm64", shards=3, partition="hash", environment="linux_arm64",
        )
        """
    )
    write_pants_project(
        root,
        backends=["pants.backend.experimental.cc", "crossbuild"],
        plugin_root=PLUGIN_ROOT,
        environments=["linux_arm64"],
        sections='[source]\nroot_patterns = ["/"]\n',
        files={"proj/BUILD": build, "proj/tests/alpha_test.cc": ALPHA, "proj/tests/beta_test.cc": BETA},
    )


@pytest.fixture
def cluster():
    c = Cluster(open_temp_dir("crossbuild-gtest-cluster-"), concurrency=2)
    yield c.up()
    c.down()


def run(project: Path, store: Path, address: str):
    return run_pants(project, store, *remote_flags(address), "test", "--output=all", "proj::")


def test_gtest_shards_cache_and_incremental_rebuild(cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)

    first = run(project, tmp_path / "store-1", cluster)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-8000:]
    passed = re.findall(r"PASS bin/(\w+)::(\S+)", log)
    assert sorted(passed) == sorted(
        [("alpha_test", "Alpha.Adds")]
        + [("alpha_test", f"Small/AlphaParam.NonNegative/{i}") for i in range(4)]
        + [("beta_test", f"BetaTyped/{i}.DefaultIsZero") for i in range(3)]
        + [("beta_test", "Beta.CharSigned")]
    ), "every case runs in exactly one shard, the aarch64 expectation holds"
    assert [name.rstrip(":") for name in re.findall(r"SKIP bin/alpha_test::(\S+)", log)] == ["Alpha.DISABLED_NotYet"]

    second = run(project, tmp_path / "store-2", cluster)
    log2 = second.stdout + second.stderr
    assert second.returncode == 0, log2[-8000:]
    for k in (1, 2, 3):
        line = next(l for l in log2.splitlines() if f"proj:arm64#shard-{k}-of-3 succeeded" in l)
        assert "cached remotely" in line, line

    beta = project / "proj" / "tests" / "beta_test.cc"
    beta.write_text(beta.read_text() + "TEST(Beta, Added) { EXPECT_EQ(1, 1); }\n")
    before = executed_actions(cluster)
    third = run(project, tmp_path / "store-2", cluster)
    log3 = third.stdout + third.stderr
    assert third.returncode == 0, log3[-8000:]
    assert re.findall(r"Completed: Compile (\S+) for linux_arm64", log3) == ["proj/tests/beta_test.cc"]
    assert "PASS bin/beta_test::Beta.Added" in log3
    assert sorted(re.findall(r"== (bin/\w+): ran", log3)) == 3 * ["bin/beta_test"], log3[-8000:]
    assert "PASS bin/alpha_test" not in log3
    assert executed_actions(cluster) - before >= 3
