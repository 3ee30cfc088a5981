"""Targets of the crossbuild plugin: cross-compiled test archives and their shards."""

from __future__ import annotations

from typing import Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.core.goals.test import TestTimeoutField
from pants.core.util_rules.environments import EnvironmentField
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    Dependencies,
    IntField,
    InvalidFieldException,
    MultipleSourcesField,
    StringField,
    StringSequenceField,
    Target,
    TargetGenerator,
)
from pants.util.strutil import help_text

from crossbuild.platforms import PLATFORMS, PROFILES


class CrossbuildTestSourcesField(MultipleSourcesField):
    alias = "sources"
    expected_file_extensions = (".c", ".cc", ".cpp", ".cxx")
    required = True
    help = help_text(
        """
        Test sources, one test binary each. Each file is compiled and linked with the library
        objects of `dependencies` into a binary named after it (`foo_test.c` -> `foo_test`).
        Test binaries speak the crossbuild test protocol: `BIN --list` prints the case names,
        `BIN --exact NAME` runs one case (exit 0 = pass), and optionally `BIN --run TIMEOUT
        OUTDIR` runs the cases named on stdin, forking once per case. `#include
        "crossbuild_test.h"` for a harness that does all three.
        """
    )


class CrossbuildLibraryDependenciesField(Dependencies):
    help = help_text(
        """
        Library sources (`cc_sources` targets, or single files) compiled once per platform and
        profile and linked into every test binary. Headers they include are inputs of every
        compile action.
        """
    )


class CrossbuildPlatformField(StringField):
    alias = "platform"
    default = "linux_arm64"
    valid_choices = tuple(PLATFORMS)
    help = help_text(
        f"""
        Platform the binaries are built for: {', '.join(PLATFORMS)}. Linux binaries are static
        (musl) unless `libc` says otherwise.
        """
    )


class CrossbuildProfileField(StringField):
    alias = "profile"
    default = "release"
    valid_choices = tuple(PROFILES)
    help = help_text(
        """
        Build profile: `debug` (-O0 -g), `release` (-O2), `release-lto` (-O2 with link-time
        optimisation), `release-size` (-Os, stripped).
        """
    )


class CrossbuildLibcField(StringField):
    alias = "libc"
    default = "musl"
    help = help_text(
        """
        C library of Linux binaries: `musl` (static, default) or `gnu` with an optional glibc
        version suffix (`gnu.2.31`). Ignored for Windows platforms (always the gnu ABI).
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        if value != "musl" and not (value == "gnu" or value.startswith("gnu.2.")):
            raise InvalidFieldException(
                f"The `libc` field of {address} is {value!r}; expected `musl`, `gnu` or `gnu.2.NN`."
            )
        return value


class CrossbuildIncludeDirsField(StringSequenceField):
    alias = "include_dirs"
    default = ()
    help = help_text(
        """
        Include directories, relative to the build root (for example `examples/cclib/include`).
        The plugin's own `crossbuild_test.h` is always on the include path.
        """
    )


class CrossbuildCompileOptionsField(StringSequenceField):
    alias = "copts"
    default = ()
    help = "Extra compiler flags for every translation unit of this archive."


class CrossbuildLinkOptionsField(StringSequenceField):
    alias = "linkopts"
    default = ()
    help = "Extra linker flags for every binary of this archive."


class CrossbuildBuildEnvironmentField(EnvironmentField):
    help = help_text(
        """
        Environment in which compile, link and archive actions run: an x86-64 one, such as
        `local` or `linux_x86_64`. Shards run where their own `environment` says.
        """
    )


class CrossbuildTestArchiveTarget(Target):
    alias = "crossbuild_test_archive"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        CrossbuildTestSourcesField,
        CrossbuildLibraryDependenciesField,
        CrossbuildPlatformField,
        CrossbuildProfileField,
        CrossbuildLibcField,
        CrossbuildIncludeDirsField,
        CrossbuildCompileOptionsField,
        CrossbuildLinkOptionsField,
        CrossbuildBuildEnvironmentField,
        OutputPathField,
    )
    help = help_text(
        """
        Test binaries cross-compiled once with the pinned zig toolchain and packed into one
        reproducible archive (sorted entries, fixed mtimes and owners) with a manifest of each
        binary's sha256. `pants package` writes it to dist/ and reports binary sizes;
        `crossbuild_sharded_tests` runs it.
        """
    )


class CrossbuildArchiveField(StringField):
    alias = "archive"
    required = True
    help = "Address of the `crossbuild_test_archive` whose binaries the shards run."


class CrossbuildShardsField(IntField):
    alias = "shards"
    default = 1
    help = help_text(
        """
        Number of shards (N). Each is its own test target `NAME#shard-K-of-N` (K is 1-based),
        cached and reported separately, so `pants test --shard=...` can spread them over CI jobs.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> int:
        value = super().compute_value(raw_value, address)
        if value < 1 or value > 1000:
            raise InvalidFieldException(f"The `shards` field of {address} must be 1..1000, got {value}.")
        return value


class CrossbuildPartitionField(StringField):
    alias = "partition"
    default = "hash"
    valid_choices = ("hash", "count", "slice")
    help = help_text(
        """
        How each binary's cases are split over the shards: `hash` (by a CRC of the binary's path
        and the case name: a case stays in its shard as cases or binaries are added), `count`
        (round-robin in the binary's `--list` order), `slice` (the binary's cases in N
        contiguous blocks). `count` and `slice` work within each binary, never across binaries,
        so one binary's cases never move because another binary changed; with few cases per
        binary the first shards get more of them.
        """
    )


class CrossbuildCaseTimeoutField(IntField):
    alias = "case_timeout"
    default = 60
    help = "Seconds one test case may run before it is killed and reported as timed out."


class CrossbuildShardIndexField(IntField):
    alias = "shard_index"
    required = True
    help = "0-based index of this shard (set by `crossbuild_sharded_tests`)."


class CrossbuildShardEnvironmentField(EnvironmentField):
    help = help_text(
        """
        Environment the shards run in, for example `linux_arm64` for an ARM64 archive.
        """
    )


class CrossbuildTestShardTarget(Target):
    alias = "crossbuild_test_shard"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        CrossbuildArchiveField,
        CrossbuildShardIndexField,
        CrossbuildShardsField,
        CrossbuildPartitionField,
        CrossbuildCaseTimeoutField,
        CrossbuildShardEnvironmentField,
        TestTimeoutField,
    )
    help = help_text(
        """
        One shard of a test archive (generated by `crossbuild_sharded_tests`; not written by hand).
        """
    )


class CrossbuildShardedTestsTarget(TargetGenerator):
    alias = "crossbuild_sharded_tests"
    generated_target_cls = CrossbuildTestShardTarget
    core_fields = (*COMMON_TARGET_FIELDS, CrossbuildArchiveField, CrossbuildShardsField)
    copied_fields = (*COMMON_TARGET_FIELDS, CrossbuildArchiveField, CrossbuildShardsField)
    moved_fields = (
        CrossbuildPartitionField,
        CrossbuildCaseTimeoutField,
        CrossbuildShardEnvironmentField,
        TestTimeoutField,
    )
    help = help_text(
        """
        Runs a `crossbuild_test_archive` as N test shards, `NAME#shard-K-of-N` for K in 1..N.
        The binaries are built once; each shard runs every binary in its own action (its
        inputs: that binary, the shard runner and the partition), so after an edit only the
        changed binaries' cases run again and the others come from the cache. The runner lists
        a binary's cases, keeps its partition, and runs each case in its own process (forked
        by the binary itself when it speaks `--run`, else one `--exact` process per case) with
        `case_timeout`, and writes JUnit XML (one suite per binary). Shards see Bazel's
        TEST_SHARD_INDEX (0-based) and TEST_TOTAL_SHARDS.
        """
    )
