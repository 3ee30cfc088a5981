"""crossbuild: cross-compiled test archives, sharded tests, and trampolines."""

from crossbuild import archive, build, shard_runner, shards, system_directory, toolchain, trampoline, zig_process
from crossbuild.target_types import (
    CrossbuildShardedTestsTarget,
    CrossbuildSystemDirectoryTarget,
    CrossbuildTestArchiveTarget,
    CrossbuildTestShardTarget,
    CrossbuildTrampolineTarget,
)


def target_types():
    return [
        CrossbuildTestArchiveTarget,
        CrossbuildShardedTestsTarget,
        CrossbuildTestShardTarget,
        CrossbuildSystemDirectoryTarget,
        CrossbuildTrampolineTarget,
    ]


def rules():
    return [
        *toolchain.rules(),
        *zig_process.rules(),
        *build.rules(),
        *system_directory.rules(),
        *archive.rules(),
        *shard_runner.rules(),
        *shards.rules(),
        *trampoline.rules(),
    ]
