"""Target generation and field validation, through Pants' own RuleRunner."""

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from crossbuild.testutil import plugin_rules, plugin_target_types
from crossbuild.target_types import (
    CrossbuildLibcField,
    CrossbuildPartitionField,
    CrossbuildShardIndexField,
    CrossbuildShardsField,
    CrossbuildTestShardTarget,
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(target_types=plugin_target_types(), rules=plugin_rules())


def test_one_target_per_shard(rule_runner):
    rule_runner.write_files(
        {
            "src/BUILD": (
                'crossbuild_test_archive(name="a", sources=["t_test.c"])\n'
                'crossbuild_sharded_tests(name="arm", archive=":a", shards=4, partition="slice", case_timeout=5)\n'
            ),
            "src/t_test.c": "int main(void) { return 0; }\n",
        }
    )
    shards = [rule_runner.get_target(Address("src", target_name="arm", generated_name=f"shard-{k}-of-4")) for k in range(1, 5)]
    assert all(isinstance(t, CrossbuildTestShardTarget) for t in shards)
    assert [t[CrossbuildShardIndexField].value for t in shards] == [0, 1, 2, 3]
    assert {t[CrossbuildShardsField].value for t in shards} == {4}
    assert {t[CrossbuildPartitionField].value for t in shards} == {"slice"}
    assert str(shards[1].address) == "src:arm#shard-2-of-4"


def test_bad_fields_name_the_target(rule_runner):
    rule_runner.write_files(
        {
            "src/BUILD": (
                'crossbuild_test_archive(name="a", sources=["t_test.c"], libc="glibc")\n'
                'crossbuild_sharded_tests(name="z", archive=":a", shards=0)\n'
            ),
            "src/t_test.c": "int main(void) { return 0; }\n",
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src", target_name="a"))[CrossbuildLibcField]
    assert "libc" in str(e.value) and "src:a" in str(e.value)
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src", target_name="z", generated_name="shard-1-of-0"))
    assert "shards" in str(e.value)


def test_non_integer_shards_is_a_build_error_naming_the_field(rule_runner):
    rule_runner.write_files(
        {
            "src/BUILD": (
                'crossbuild_test_archive(name="a", sources=["t_test.c"])\n'
                'crossbuild_sharded_tests(name="z", archive=":a", shards="two")\n'
            ),
            "src/t_test.c": "int main(void) { return 0; }\n",
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src", target_name="z"))
    assert "shards" in str(e.value) and "src:z" in str(e.value)


def test_the_flagfile_holds_every_per_action_value_one_per_line():
    from crossbuild.shards import flagfile_name, flagfile_text

    assert flagfile_name("bin/alpha_test") == "shard-args/alpha_test.args"
    assert flagfile_text("bin/alpha_test", 2, 4, "hash", 60, False) == (
        "bin/alpha_test\n2\n4\nhash\n60\njunit-alpha_test.xml\n"
    )
    assert flagfile_text("bin/a", 0, 1, "slice", 5, True) == "--exec-per-case\nbin/a\n0\n1\nslice\n5\njunit-a.xml\n"
    # Bazel's escape for a leading `@`; a line break cannot be written at all.
    assert flagfile_text("@x/t", 0, 1, "count", 5, False).startswith("@@x/t\n0\n")
    with pytest.raises(ValueError):
        flagfile_text("bin/a\nb", 0, 1, "count", 5, False)


def test_the_shard_result_shows_each_runner_report_from_stderr():
    """The runner (one-shot `@FLAGFILE`, or a worker's response) reports on stderr."""
    from pants.core.goals.test import ShowOutput, TestSubsystem
    from pants.engine.fs import (
        EMPTY_DIGEST,
        EMPTY_FILE_DIGEST,
        EMPTY_SNAPSHOT,
        CreateDigest,
        Digest,
        DigestContents,
        FileContent,
        Snapshot,
    )
    from pants.engine.internals.native_engine import ProcessExecutionEnvironment
    from pants.engine.process import FallibleProcessResult, ProcessResultMetadata
    from pants.testutil.option_util import create_subsystem
    from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

    from crossbuild.shards import _shard_result

    env = ProcessExecutionEnvironment(
        environment_name=None, platform="linux_x86_64", docker_image=None, remote_execution=False,
        remote_execution_extra_platform_properties=[],
    )

    def result(stderr: str, code: int, source: str, xml_name: str) -> FallibleProcessResult:
        # The output digest stands for the files the mock below returns: one XML, or none.
        digest = Digest("0" * 64, 1) if xml_name else EMPTY_DIGEST
        return FallibleProcessResult(
            stdout=b"", stdout_digest=EMPTY_FILE_DIGEST, stderr=stderr.encode(), stderr_digest=EMPTY_FILE_DIGEST,
            exit_code=code, output_digest=digest,
            metadata=ProcessResultMetadata(10, env, source, 1),
        )

    ran = "shard 1/2, bin/a_test: 2 of 3 cases\nFAIL bin/a_test::x (0.001s): exit status 1\n    | boom\nshard 1/2, bin/a_test: 1 passed, 1 failed\n"
    cached = "shard 1/2, bin/b_test: 1 of 1 cases\nPASS bin/b_test::y (0.001s)\nshard 1/2, bin/b_test: 1 passed\n"
    dead = "shard_runner: stopped by signal 15; no results written\n"
    actions = [
        (("bin/a_test",), result(ran, 1, "ran", "junit-a_test.xml")),
        (("bin/b_test",), result(cached, 0, "hit_remotely", "junit-b_test.xml")),
        (("bin/c_test",), result(dead, 143, "ran", "")),
    ]
    written = []

    def contents(digest: Digest) -> DigestContents:
        if digest == EMPTY_DIGEST:
            return DigestContents([])
        return DigestContents([FileContent(f"junit-{n}_test.xml", b"<testsuites/>") for n in "ab"])

    def create(request: CreateDigest) -> Digest:
        written.extend(request)
        return EMPTY_DIGEST

    test_subsystem = create_subsystem(TestSubsystem, output=ShowOutput.ALL)
    out = run_rule_with_mocks(
        _shard_result,
        rule_args=[Address("src", target_name="arm", generated_name="shard-1-of-2"), "shard-1-of-2", actions, test_subsystem],
        mock_gets=[
            MockGet(output_type=DigestContents, input_types=(Digest,), mock=contents),
            MockGet(output_type=Digest, input_types=(CreateDigest,), mock=create),
            MockGet(output_type=Snapshot, input_types=(Digest,), mock=lambda _: EMPTY_SNAPSHOT),
        ],
    )
    assert out.stdout == (
        "== bin/a_test: ran, exit 1\n" + ran
        + "== bin/b_test: cached remotely, exit 0\nshard 1/2, bin/b_test: 1 of 1 cases\nshard 1/2, bin/b_test: 1 passed\n"
        + "== bin/c_test: ran, exit 143\n" + dead
    )
    assert out.stderr == "" and out.exit_code == 1
    (report,) = written
    assert b"exit status 143\nshard_runner: stopped by signal 15" in report.content


def test_the_flagfile_names_a_framework_before_the_binary_and_not_the_default():
    from crossbuild.shards import flagfile_text

    assert flagfile_text("bin/alpha_test", 0, 2, "count", 30, False, "gtest") == (
        "--framework=gtest\nbin/alpha_test\n0\n2\ncount\n30\njunit-alpha_test.xml\n"
    )
    assert flagfile_text("bin/alpha_test", 0, 2, "count", 30, True, "catch2").splitlines()[:3] == [
        "--exec-per-case",
        "--framework=catch2",
        "bin/alpha_test",
    ]
    # The default framework writes exactly what it wrote before the field existed.
    assert flagfile_text("bin/alpha_test", 2, 4, "hash", 60, False, "crossbuild") == flagfile_text(
        "bin/alpha_test", 2, 4, "hash", 60, False
    )


def test_the_framework_field_defaults_to_crossbuild_and_takes_the_known_ones(rule_runner):
    from crossbuild.target_types import FRAMEWORKS, CrossbuildFrameworkField

    archives = "".join(f'crossbuild_test_archive(name="{f}", sources=["t_test.cc"], framework="{f}")\n' for f in FRAMEWORKS)
    rule_runner.write_files(
        {
            "src/BUILD": 'crossbuild_test_archive(name="plain", sources=["t_test.cc"])\n' + archives,
            "src/t_test.cc": "int main() { return 0; }\n",
        }
    )
    assert rule_runner.get_target(Address("src", target_name="plain"))[CrossbuildFrameworkField].value == "crossbuild"
    for f in FRAMEWORKS:
        assert rule_runner.get_target(Address("src", target_name=f))[CrossbuildFrameworkField].value == f


def test_an_unknown_framework_is_a_build_error_naming_target_field_and_choices(rule_runner):
    from crossbuild.target_types import CrossbuildFrameworkField

    rule_runner.write_files(
        {
            "src/BUILD": 'crossbuild_test_archive(name="a", sources=["t_test.cc"], framework="boost")\n',
            "src/t_test.cc": "int main() { return 0; }\n",
        }
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("src", target_name="a"))[CrossbuildFrameworkField]
    message = str(e.value)
    assert "framework" in message and "src:a" in message and "boost" in message
    assert "gtest" in message and "doctest" in message, message
