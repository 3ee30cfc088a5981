"""Options of `pants test` for crossbuild shards: `[crossbuild-test]`."""

from __future__ import annotations

from enum import Enum

from pants.option.option_types import BoolOption, EnumOption, SkipOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class Granularity(Enum):
    binary = "binary"
    shard = "shard"


class CrossbuildTestSubsystem(Subsystem):
    options_scope = "crossbuild-test"
    name = "crossbuild test shards"
    help = "Running `crossbuild_sharded_tests` shards with `pants test`."

    skip = SkipOption("test")
    granularity = EnumOption(
        default=Granularity.binary,
        help=softwrap(
            """
            What one test action of a shard runs. `binary` (the default): one action per test
            binary, whose inputs are that binary, the shard runner and the partition, so after
            an edit only the changed binaries' cases run again and every other binary's results
            come from the cache. `shard`: one action per shard running every binary of the
            archive in turn, so any change re-runs the whole shard (fewer actions, for a farm
            where each action costs much; also the baseline of the incremental benchmark).
            """
        ),
    )
    fork_cases = BoolOption(
        default=True,
        help=softwrap(
            """
            Let test binaries that speak `--run` (every binary using `crossbuild_test.h`) fork
            once per case, so a case costs a fork rather than a new process; under an emulator
            that is a few milliseconds instead of tens. Each case still has its own process.
            Off: one `BIN --exact NAME` process per case for every binary.
            """
        ),
    )
