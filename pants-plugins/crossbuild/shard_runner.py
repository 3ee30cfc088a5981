"""The shard runner binary: `resources/shard_runner.c`, built once per platform with the plugin's
own zig (static, musl), so a shard needs nothing from its executor's userland, not even a shell.

It is built by the same compile and link rules as test binaries, in the environment the
archive is built in (x86-64), and cached like them: one compile and one link per platform,
ever."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.build import BuildSettings, CompiledObject, CompileRequest, LinkedBinary, LinkRequest
from crossbuild.resources import SANDBOX_DIR, SHARD_RUNNER_SOURCE, resource_bytes

RUNNER_NAME = "shard_runner"
# The profile most archives use, so zig's libc build for it is already in the cache.
RUNNER_PROFILE = "release"


@dataclass(frozen=True)
class ShardRunnerRequest:
    platform: str  # a linux_* platform


@dataclass(frozen=True)
class ShardRunner:
    digest: Digest  # holds `path` only
    path: str
    platform: str


@rule(desc="Building the crossbuild shard runner", level=LogLevel.DEBUG)
async def build_shard_runner(request: ShardRunnerRequest) -> ShardRunner:
    settings = BuildSettings(
        platform=request.platform,
        profile=RUNNER_PROFILE,
        libc="musl",
        include_dirs=(),
        copts=(),
        linkopts=(),
        owner="the crossbuild shard runner",
    )
    source_path = f"{SANDBOX_DIR}/{SHARD_RUNNER_SOURCE}"
    source = await Get(Digest, CreateDigest([FileContent(source_path, resource_bytes(SHARD_RUNNER_SOURCE))]))
    obj = await Get(CompiledObject, CompileRequest(source_path, source, settings))
    linked = await Get(LinkedBinary, LinkRequest(RUNNER_NAME, (obj,), settings))
    digest = await Get(Digest, AddPrefix(linked.digest, SANDBOX_DIR))
    return ShardRunner(digest, f"{SANDBOX_DIR}/{linked.path}", request.platform)


def rules():
    return collect_rules()
