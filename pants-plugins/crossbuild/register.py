"""crossbuild: cross-compiled test archives, sharded tests, and trampolines."""

from crossbuild import archive, build, shard_runner, shards, toolchain, trampoline, zig_process
from crossbuild.target_types import (
    CrossbuildShardedTestsTarget,
    CrossbuildTestArchiveTarget,
    CrossbuildTestShardTarget,
    CrossbuildTrampolineTarget,
)


def target_types():
    return [CrossbuildTestArchiveTarget, CrossbuildShardedTestsTarget, CrossbuildTestShardTarget, CrossbuildTrampolineTarget]


def rules():
    return [
        *toolchain.rules(),
        *zig_process.rules(),
        *build.rules(),
        *archive.rules(),
        *shard_runner.rules(),
        *shards.rules(),
        *trampoline.rules(),
    ]
