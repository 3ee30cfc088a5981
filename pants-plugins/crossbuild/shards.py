"""Sharded tests: one generated test target per shard, each running the shared archive's cases
in its partition with the shard runner, in the shard's environment."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Sequence, Tuple

from pants.core.goals.test import TestExtraEnv, TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.environments import (
    EnvironmentNameRequest,
    EnvironmentTarget,
    LocalEnvironmentTarget,
)
from pants.engine.addresses import Address, AddressInput
from pants.engine.environment import EnvironmentName
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, FileDigest, MergeDigests, Snapshot
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.platform import Platform
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    GeneratedTargets,
    GenerateTargetsRequest,
    InvalidFieldException,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionMembership, UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from crossbuild.archive import BuildTestArchiveRequest, BuiltTestArchive
from crossbuild.junit import BinaryReport, merge_reports
from crossbuild.platforms import PLATFORMS
from crossbuild.shard_runner import ShardRunner, ShardRunnerRequest
from crossbuild.subsystems.crossbuild_shards import CrossbuildTestSubsystem, Granularity
from crossbuild.target_types import (
    DEFAULT_FRAMEWORK,
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


_SOURCE_WORDS = {
    "ran": "ran",
    "hit_locally": "cached locally",
    "hit_remotely": "cached remotely",
    "memoized": "cached in memory (unchanged since an earlier run)",
}


def junit_name(binary: str) -> str:
    """Where the runner writes one binary's JUnit XML in the sandbox."""
    return f"junit-{PurePath(binary).name}.xml"


FLAGFILE_DIR = "shard-args"


def flagfile_name(binary: str) -> str:
    """The runner's arguments for one binary, an input of its action (`shard_runner @FILE`)."""
    return f"{FLAGFILE_DIR}/{PurePath(binary).name}.args"


def flagfile_text(
    binary: str,
    index: int,
    total: int,
    partition: str,
    case_timeout: int,
    exec_per_case: bool,
    framework: str = DEFAULT_FRAMEWORK,
) -> str:
    """Every per-action value, one argument per line: the process's argv and environment stay
    the same for every shard and binary, so an executor can keep one persistent worker for all
    of them. A leading `@` is written `@@` (Bazel's flagfile escape). `--framework=NAME` says
    how the runner lists and runs the binary's cases; it is left out for the default
    (`crossbuild`), so those flagfiles, and the actions' cache keys, stay as they were."""
    args = [
        *(["--exec-per-case"] if exec_per_case else []),
        *([f"--framework={framework}"] if framework != DEFAULT_FRAMEWORK else []),
        binary,
        str(index),
        str(total),
        partition,
        str(case_timeout),
        junit_name(binary),
    ]
    for arg in args:
        if "\n" in arg or "\r" in arg:
            raise ValueError(f"a shard runner argument cannot hold a line break: {arg!r}")
    return "".join(("@" + arg if arg.startswith("@") else arg) + "\n" for arg in args)


async def _shard_result(
    address: Address,
    shard: str,
    actions: Sequence[Tuple[Tuple[str, ...], FallibleProcessResult]],
    test_subsystem: TestSubsystem,
) -> TestResult:
    """One TestResult for the shard: every action's output in order, each saying whether it ran
    or came from the cache, the worst exit code, and one merged JUnit file.

    The runner (`shard_runner @FLAGFILE`, or a persistent worker's response, which executors
    return as the action's stderr) writes its whole report to stderr; stdout stays empty."""
    results = [r for _, r in actions]
    xml_contents = await MultiGet(Get(DigestContents, Digest, r.output_digest) for r in results)
    # The newest run id among the results is this run's: an older one was reused from an
    # earlier run of the same pantsd (memoized), so that binary did not change either.
    current_run = max((r.metadata.source_run_id for r in results), default=0)
    stdout_parts, stderr_parts, reports = [], [], []
    ran = []
    for (paths, result), contents in zip(actions, xml_contents):
        source = result.metadata._source if result.metadata.source_run_id == current_run else "memoized"
        ran.append(source == "ran")
        label = paths[0] if len(paths) == 1 else f"{len(paths)} binaries"
        stdout_parts.append(f"== {label}: {_SOURCE_WORDS.get(source, source)}, exit {result.exit_code}\n")
        report = result.stderr.decode(errors="replace")
        text = report
        if source != "ran" and result.exit_code == 0:
            # Unchanged and passing: its summary lines say enough.
            text = "".join(line for line in text.splitlines(keepends=True) if line.startswith("shard "))
        stdout_parts.append(text)
        if result.stdout:
            stderr_parts.append(f"== {label}:\n{result.stdout.decode(errors='replace')}")
        written = {fc.path: fc.content for fc in contents}
        for path in paths:
            xml = written.get(junit_name(path))
            problem = "" if xml is not None else f"exit status {result.exit_code}\n{report}"
            reports.append(BinaryReport(path, xml, problem))
    exit_codes = [r.exit_code for r in results]
    exit_code = 0 if all(c == 0 for c in exit_codes) else next(c for c in exit_codes if c != 0)
    stdout = "".join(stdout_parts) or f"{shard}: the archive has no test binaries\n"
    stderr = "".join(stderr_parts)
    # Pants gathers every target's XML into one directory (`[test].report`): one name each.
    junit = await Get(
        Digest, CreateDigest([FileContent(f"{address.path_safe_spec}.xml", merge_reports(shard, reports))])
    )
    xml_snapshot = await Get(Snapshot, Digest, junit)
    # What Pants says of the shard: "ran" if any action ran, else where the results came
    # from; its time is that of every action that ran (else of all of them).
    timed = [r for r, did_run in zip(results, ran) if did_run] or results
    metadata = None
    if timed:
        elapsed = [r.metadata.total_elapsed_ms for r in timed]
        total_ms = None if any(e is None for e in elapsed) else sum(elapsed)
        metadata = dataclasses.replace(timed[0].metadata, total_elapsed_ms=total_ms)
    out_bytes, err_bytes = stdout.encode(), stderr.encode()
    return TestResult(
        exit_code=exit_code,
        stdout=stdout,
        stdout_digest=FileDigest(hashlib.sha256(out_bytes).hexdigest(), len(out_bytes)),
        stderr=stderr,
        stderr_digest=FileDigest(hashlib.sha256(err_bytes).hexdigest(), len(err_bytes)),
        addresses=(address,),
        output_setting=test_subsystem.output,
        result_metadata=metadata,
        xml_results=xml_snapshot,
    )


@rule(desc="Running a crossbuild test shard", level=LogLevel.DEBUG)
async def run_shard(
    batch: CrossbuildShardTestRequest.Batch[CrossbuildShardFieldSet, Any],
    test_subsystem: TestSubsystem,
    subsystem: CrossbuildTestSubsystem,
    test_extra_env: TestExtraEnv,
    env_target: EnvironmentTarget,
    shard_platform: Platform,
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
    # The runner is built for the machine the shard runs on: the archive's platform on an
    # executor, this machine's when the environment fell back here (then it runs the test
    # binaries under qemu-user).
    runner_platform = shard_platform.value
    if runner_platform not in PLATFORMS or not runner_platform.startswith("linux_"):
        raise InvalidFieldException(
            f"{fs.address} would run on {runner_platform}; crossbuild shards run on Linux only."
        )
    runner = await Get(ShardRunner, {ShardRunnerRequest(runner_platform): ShardRunnerRequest, build_env: EnvironmentName})
    index, total = fs.shard_index.value, fs.shards.value
    # Nothing that differs between shards or binaries: those values are in each action's
    # flagfile (the runner gives the test processes TEST_SHARD_INDEX and TEST_TOTAL_SHARDS from
    # it), so one persistent worker on an executor can serve every shard's actions.
    env = FrozenDict(
        {
            **test_extra_env.env,
            "PATH": "/usr/bin:/bin",
            **({"CROSSBUILD_ALLOW_EMULATION": "1"} if local else {}),
        }
    )
    cache_scope = ProcessCacheScope.PER_SESSION if test_subsystem.force else ProcessCacheScope.SUCCESSFUL
    paths = [path for path, _, _ in built.binaries]
    flagfiles = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                [
                    FileContent(
                        flagfile_name(path),
                        flagfile_text(
                            path,
                            index,
                            total,
                            fs.partition.value,
                            fs.case_timeout.value,
                            not subsystem.fork_cases,
                            built.framework,
                        ).encode(),
                    )
                ]
            ),
        )
        for path in paths
    )
    description = f"{fs.address} ({built.platform}, {shard_name(index, total)})"
    if subsystem.granularity == Granularity.binary:
        # One action per binary: its inputs are that binary, its flagfile (the partition) and
        # the runner, so an edit that changes one binary re-runs that binary's cases only.
        groups = [((path,), (digest, flags)) for path, digest, flags in zip(paths, built.binary_digests, flagfiles)]
    else:
        groups = [(tuple(paths), (*built.binary_digests, *flagfiles))] if paths else []
    inputs = await MultiGet(Get(Digest, MergeDigests([runner.digest, *ds])) for _, ds in groups)
    processes = []
    for (group, _), input_digest in zip(groups, inputs):
        if len(group) == 1:
            argv: Tuple[str, ...] = (runner.path, "@" + flagfile_name(group[0]))
        else:
            # Every binary in one action, one after another (the whole shard re-runs on any change).
            script = (
                'rc=0; for b in "$@"; do "./$0" "@' + FLAGFILE_DIR + '/${b##*/}.args"; '
                "s=$?; [ $s -le $rc ] || rc=$s; done; exit $rc"
            )
            argv = ("/bin/sh", "-c", script, runner.path, *group)
        processes.append(
            Process(
                argv,
                description=f"Run {group[0] if len(group) == 1 else 'every binary'} of {description}",
                input_digest=input_digest,
                output_files=tuple(junit_name(p) for p in group),
                env=env,
                cache_scope=cache_scope,
                level=LogLevel.DEBUG,
            )
        )
    results = await MultiGet(Get(FallibleProcessResult, Process, p) for p in processes)
    return await _shard_result(
        fs.address, shard_name(index, total), [(g, r) for (g, _), r in zip(groups, results)], test_subsystem
    )


def rules():
    return [
        *collect_rules(),
        *CrossbuildShardTestRequest.rules(),
        UnionRule(GenerateTargetsRequest, GenerateShardTargetsRequest),
    ]
