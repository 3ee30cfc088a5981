"""Sharded tests: one generated test target per shard, each running the shared archive's cases
in its partition with the shard runner, in the shard's environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pants.core.goals.test import TestExtraEnv, TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.environments import (
    EnvironmentNameRequest,
    EnvironmentTarget,
    LocalEnvironmentTarget,
)
from pants.engine.addresses import Address, AddressInput
from pants.engine.environment import EnvironmentName
from pants.engine.fs import CreateDigest, Digest, MergeDigests, Snapshot
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import (
    GeneratedTargets,
    GenerateTargetsRequest,
    InvalidFieldException,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionMembership, UnionRule
from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from crossbuild.archive import BuildTestArchiveRequest, BuiltTestArchive
from crossbuild.resources import SANDBOX_DIR, SHARD_RUNNER, shard_runner_digest
from crossbuild.target_types import (
    CrossbuildArchiveField,
    CrossbuildBuildEnvironmentField,
    CrossbuildCaseTimeoutField,
    CrossbuildPartitionField,
    CrossbuildPlatformField,
    CrossbuildShardedTestsTarget,
    CrossbuildShardEnvironmentField,
    CrossbuildShardIndexField,
    CrossbuildShardsField,
    CrossbuildTestArchiveTarget,
    CrossbuildTestShardTarget,
)



def shard_name(index: int, total: int) -> str:
    return f"shard-{index + 1}-of-{total}"


class GenerateShardTargetsRequest(GenerateTargetsRequest):
    generate_from = CrossbuildShardedTestsTarget


@rule(desc="Generating shard targets", level=LogLevel.DEBUG)
async def generate_shards(request: GenerateShardTargetsRequest, union_membership: UnionMembership) -> GeneratedTargets:
    generator = request.generator
    total = generator[CrossbuildShardsField].value
    targets = []
    for index in range(total):
        targets.append(
            CrossbuildTestShardTarget(
                {
                    **request.template,
                    CrossbuildShardIndexField.alias: index,
                    CrossbuildShardsField.alias: total,
                },
                request.template_address.create_generated(shard_name(index, total)),
                union_membership,
            )
        )
    return GeneratedTargets(generator, targets)


class CrossbuildTestSubsystem(Subsystem):
    options_scope = "crossbuild-test"
    name = "crossbuild test shards"
    help = "Running `crossbuild_sharded_tests` shards with `pants test`."

    skip = SkipOption("test")


@dataclass(frozen=True)
class CrossbuildShardFieldSet(TestFieldSet):
    required_fields = (CrossbuildArchiveField, CrossbuildShardIndexField)

    archive: CrossbuildArchiveField
    shard_index: CrossbuildShardIndexField
    shards: CrossbuildShardsField
    partition: CrossbuildPartitionField
    case_timeout: CrossbuildCaseTimeoutField
    environment: CrossbuildShardEnvironmentField


class CrossbuildShardTestRequest(TestRequest):
    tool_subsystem = CrossbuildTestSubsystem
    field_set_type = CrossbuildShardFieldSet


@rule(desc="Running a crossbuild test shard", level=LogLevel.DEBUG)
async def run_shard(
    batch: CrossbuildShardTestRequest.Batch[CrossbuildShardFieldSet, Any],
    test_subsystem: TestSubsystem,
    test_extra_env: TestExtraEnv,
    env_target: EnvironmentTarget,
) -> TestResult:
    fs = batch.single_element
    # A remote environment that fell back to this machine (remote execution off) cannot run
    # another architecture's binaries natively; there the runner may use qemu-user if present.
    local = env_target.val is None or isinstance(env_target.val, LocalEnvironmentTarget)
    archive_address = await Get(
        Address,
        AddressInput,
        AddressInput.parse(
            fs.archive.value,
            relative_to=fs.address.spec_path,
            description_of_origin=f"the `archive` field of {fs.address}",
        ),
    )
    archive_target = await Get(
        WrappedTarget, WrappedTargetRequest(archive_address, description_of_origin=f"the `archive` field of {fs.address}")
    )
    if not archive_target.target.has_field(CrossbuildBuildEnvironmentField) or not isinstance(
        archive_target.target, CrossbuildTestArchiveTarget
    ):
        raise InvalidFieldException(
            f"The `archive` field of {fs.address} names {archive_address}, which is a "
            f"`{archive_target.target.alias}`, not a `crossbuild_test_archive`."
        )
    # The archive is built where its own target says (an x86-64 environment), whatever
    # environment this shard runs in: one build, shared by every shard through the cache.
    build_env = await Get(
        EnvironmentName,
        EnvironmentNameRequest,
        EnvironmentNameRequest.from_target(archive_target.target),
    )
    platform = archive_target.target[CrossbuildPlatformField].value
    if not platform.startswith("linux_"):
        raise InvalidFieldException(
            f"The `archive` field of {fs.address} names {archive_address}, built for {platform}; "
            "shards run Linux test binaries only (Windows archives are cross-built artifacts)."
        )
    built = await Get(BuiltTestArchive, {BuildTestArchiveRequest(archive_address): BuildTestArchiveRequest, build_env: EnvironmentName})
    runner = await Get(Digest, CreateDigest, shard_runner_digest())
    input_digest = await Get(Digest, MergeDigests([built.digest, runner]))
    index, total = fs.shard_index.value, fs.shards.value
    timeout = fs.case_timeout.value
    # Pants gathers every target's XML into one directory (`[test].report`): one name each.
    junit = f"{fs.address.path_safe_spec}.xml"
    process = Process(
        (
            "/bin/sh",
            f"{SANDBOX_DIR}/{SHARD_RUNNER}",
            built.path,
            str(index),
            str(total),
            fs.partition.value,
            str(timeout),
            junit,
        ),
        description=f"Run {fs.address} ({built.platform} archive, {shard_name(index, total)})",
        input_digest=input_digest,
        output_files=(junit,),
        env=FrozenDict(
            {
                **test_extra_env.env,
                "PATH": "/usr/bin:/bin",
                "TEST_SHARD_INDEX": str(index),
                "TEST_TOTAL_SHARDS": str(total),
                **({"CROSSBUILD_ALLOW_EMULATION": "1"} if local else {}),
            }
        ),
        cache_scope=ProcessCacheScope.PER_SESSION if test_subsystem.force else ProcessCacheScope.SUCCESSFUL,
        level=LogLevel.DEBUG,
    )
    result = await Get(FallibleProcessResult, Process, process)
    xml = await Get(Snapshot, Digest, result.output_digest)
    return TestResult.from_fallible_process_result(
        result,
        address=fs.address,
        output_setting=test_subsystem.output,
        xml_results=xml if xml.files else None,
    )


def rules():
    return [
        *collect_rules(),
        *CrossbuildShardTestRequest.rules(),
        UnionRule(GenerateTargetsRequest, GenerateShardTargetsRequest),
    ]
