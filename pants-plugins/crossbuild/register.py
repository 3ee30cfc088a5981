"""crossbuild: cross-compiled test archives, sharded tests, and (later) trampolines."""

from crossbuild import archive, build, shards, toolchain
from crossbuild.target_types import (
    CrossbuildShardedTestsTarget,
    CrossbuildTestArchiveTarget,
    CrossbuildTestShardTarget,
)


def target_types():
    return [CrossbuildTestArchiveTarget, CrossbuildShardedTestsTarget, CrossbuildTestShardTarget]


def rules():
    return [*toolchain.rules(), *build.rules(), *archive.rules(), *shards.rules()]
