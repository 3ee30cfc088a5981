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
