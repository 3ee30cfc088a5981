"""Targets of the crossbuild plugin: cross-compiled test archives, their shards, pinned copies
of system directories (test frameworks' sources and headers), and trampolines (a native launcher
per platform carrying a Python program)."""

from __future__ import annotations

import re
from typing import Iterable, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.core.goals.test import TestTimeoutField
from pants.core.util_rules.environments import EnvironmentField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    Dependencies,
    IntField,
    InvalidFieldException,
    MultipleSourcesField,
    OptionalSingleSourceField,
    StringField,
    StringSequenceField,
    Target,
    TargetGenerator,
)
from pants.util.strutil import help_text

from crossbuild.platforms import PLATFORMS, PROFILES
from crossbuild.trampoline_format import InterpreterKind, footer, validate_entry_point


# ---------------------------------------------------------------------------------------------
# Test archives


class CrossbuildTestSourcesField(MultipleSourcesField):
    alias = "sources"
    expected_file_extensions = (".c", ".cc", ".cpp", ".cxx")
    required = True
    help = help_text(
        """
        Test sources, one test binary each. Each file is compiled and linked with the library
        objects of `dependencies` into a binary named after it (`foo_test.c` -> `foo_test`).
        With the default `framework`, test binaries speak the crossbuild test protocol: `BIN
        --list` prints the case names, `BIN --exact NAME` runs one case (exit 0 = pass), and
        optionally `BIN --run TIMEOUT OUTDIR` runs the cases named on stdin, forking once per
        case. `#include "crossbuild_test.h"` for a harness that does all three. Otherwise they
        are GoogleTest, Catch2 or doctest programs (see `framework`).
        """
    )


class CrossbuildLibraryDependenciesField(Dependencies):
    help = help_text(
        """
        Library sources (`cc_sources` targets, or single files) compiled once per platform and
        profile and linked into every test binary. Headers they include are inputs of every
        compile action. `crossbuild_system_directory` targets (a test framework from the
        machine, such as GoogleTest) add their snapshot to every compile's inputs, their
        `include_dirs` to the include path, and their compiled `sources` and `linkopts` to
        every link.
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


# Test frameworks the shard runner knows how to list and run; `crossbuild` is the plugin's own
# protocol (`--list`, `--exact`, `--run`, see crossbuild_test.h).
FRAMEWORKS = ("crossbuild", "gtest", "catch2", "doctest")
DEFAULT_FRAMEWORK = "crossbuild"


class CrossbuildFrameworkField(StringField):
    alias = "framework"
    default = DEFAULT_FRAMEWORK
    valid_choices = FRAMEWORKS
    help = help_text(
        """
        The test framework every binary of this archive is written with, which says how the
        shard runner lists and runs its cases: `crossbuild` (the default: `crossbuild_test.h`
        or any binary speaking `--list`/`--exact`), `gtest` (GoogleTest: `--gtest_list_tests`,
        `--gtest_filter`), `catch2` (Catch2 v2: `--list-test-names-only`, a test spec) or
        `doctest` (`--list-test-cases`, `--test-case`). The archive's manifest records it and
        each shard passes it to the runner (`--framework=NAME` in the binary's flagfile).
        The framework's own sources and headers come from a `crossbuild_system_directory`
        among `dependencies`.
        """
    )


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
        CrossbuildFrameworkField,
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


# ---------------------------------------------------------------------------------------------
# Pinned system directories


_PIN = re.compile(r"^[0-9a-f]{64}:[0-9]+$")


def _relative_path_problem(value: str, *, glob: bool) -> Optional[str]:
    """Why `value` is not a usable path (or glob) relative to a snapshot's root, or None."""
    body = value[1:] if glob and value.startswith("!") else value
    if not body:
        return "is empty"
    if body.startswith("/"):
        return "is absolute; it must be relative to `path`"
    if any(part == ".." for part in body.split("/")):
        return "contains `..`"
    return None


class SystemDirectoryPathField(StringField):
    alias = "path"
    required = True
    help = help_text(
        """
        Absolute path of the directory on this machine, such as
        `/usr/src/googletest/googletest`. Pants rules cannot read outside the build root, so
        each run of Pants copies the files `globs` selects from it (on this machine, never on
        an executor) into a snapshot, checks the snapshot against `digest`, and builds from
        the snapshot, which reaches remote executors like any other input.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        parts = value.split("/")
        if not value.startswith("/") or value == "/" or ".." in parts or "." in parts or "" in parts[1:]:
            raise InvalidFieldException(
                f"The `path` field of {address} is {value!r}; expected a normalised absolute "
                "directory path other than `/` (no `.`, `..`, `//` or trailing `/`)."
            )
        return value


class SystemDirectoryGlobsField(StringSequenceField):
    alias = "globs"
    default = ("**",)
    help = help_text(
        """
        Which files of `path` the snapshot holds, as Pants globs relative to `path`
        (`include/**`, `src/*.cc`; `!` excludes). Only these files are copied, pinned and
        given to compiles; keep them to what builds need. Default: everything under `path`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            if not any(not g.startswith("!") for g in value):
                raise InvalidFieldException(f"The `globs` field of {address} needs at least one glob that is not an exclusion.")
            for g in value:
                problem = _relative_path_problem(g, glob=True)
                if problem:
                    raise InvalidFieldException(f"The `globs` field of {address}: {g!r} {problem}.")
        return value


class SystemDirectoryDigestField(StringField):
    alias = "digest"
    help = help_text(
        """
        The pin: `SHA256:SIZE`, the digest of the snapshot (the fingerprint and size of the
        REAPI Directory tree Pants stores it as, which covers every selected file's path,
        content and executable bit, nothing else). A build stops when the machine's files
        differ from the pin, naming the path and both digests. To pin, or to update the pin
        after an intended change (a package upgrade), run a build that uses the directory
        (`pants package ARCHIVE`) or `pants crossbuild-pins ::`, and copy the digest it
        prints. Leaving it out is an error that prints the digest to pin.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not _PIN.match(value):
            raise InvalidFieldException(
                f"The `digest` field of {address} is {value!r}; expected `SHA256:SIZE` "
                "(64 lowercase hex digits, a colon, the size in bytes)."
            )
        return value


class SystemDirectoryIncludeDirsField(StringSequenceField):
    alias = "include_dirs"
    default = ()
    help = help_text(
        """
        Directories of the snapshot, relative to `path` (`include`; `.` for `path` itself),
        put on the include path of every compile of a test archive that depends on this
        target, and of this target's own `sources`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for d in value or ():
            problem = _relative_path_problem(d, glob=False)
            if problem:
                raise InvalidFieldException(f"The `include_dirs` field of {address}: {d!r} {problem}.")
        return value


SYSTEM_SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")


class SystemDirectorySourcesField(StringSequenceField):
    alias = "sources"
    default = ()
    help = help_text(
        """
        Files of the snapshot, relative to `path`, compiled as library sources (C for `.c`,
        C++17 for `.cc`, `.cpp`, `.cxx`) once per platform, profile and libc, with this
        target's `include_dirs` only (so every archive shares the objects), and linked into
        every test binary of an archive that depends on this target. For GoogleTest:
        `["src/gtest-all.cc", "src/gtest_main.cc"]`. Header-only frameworks (Catch2,
        doctest) list none.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Iterable[str]], address: Address) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        for f in value or ():
            problem = _relative_path_problem(f, glob=False)
            if problem is None and any(c in f for c in "*?[]!"):
                problem = "is a glob; list files"
            if problem is None and not f.endswith(SYSTEM_SOURCE_SUFFIXES):
                problem = f"does not end in one of {', '.join(SYSTEM_SOURCE_SUFFIXES)}"
            if problem:
                raise InvalidFieldException(f"The `sources` field of {address}: {f!r} {problem}.")
        return value


class SystemDirectoryLinkOptionsField(StringSequenceField):
    alias = "linkopts"
    default = ()
    help = help_text(
        """
        Linker flags added to every test binary linked with this directory's objects, after
        the objects (GoogleTest: `-lpthread`, which zig's libcs also link without being asked).
        """
    )


class SystemDirectoryPackageField(StringField):
    alias = "package"
    help = help_text(
        """
        The system package that provides `path` (`googletest` on Debian), named in the error
        when the directory is missing so the fix is one `apt-get install`.
        """
    )


class CrossbuildSystemDirectoryTarget(Target):
    alias = "crossbuild_system_directory"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        SystemDirectoryPathField,
        SystemDirectoryGlobsField,
        SystemDirectoryDigestField,
        SystemDirectoryIncludeDirsField,
        SystemDirectorySourcesField,
        SystemDirectoryLinkOptionsField,
        SystemDirectoryPackageField,
    )
    help = help_text(
        """
        Files from a directory of this machine outside the build root (a test framework's
        sources and headers from a system package, such as `/usr/src/googletest/googletest`),
        pinned by digest. Each run copies the files `globs` selects into a snapshot (on this
        machine, uncached, since the machine's copy can change), stops with an error if the
        directory is missing or its snapshot differs from `digest`, and otherwise gives the
        snapshot to the builds of `crossbuild_test_archive`s that depend on it: its files are
        inputs of every compile (so they reach remote executors through the CAS, like any
        source), `include_dirs` go on the include path, `sources` are compiled once per
        platform and profile and linked, with `linkopts`, into every test binary.
        `pants crossbuild-pins ADDRESSES` prints each directory's digest and whether it
        matches its pin.
        """
    )


# ---------------------------------------------------------------------------------------------
# Test shards


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


# ---------------------------------------------------------------------------------------------
# Trampolines


TRAMPOLINE_PLATFORMS = ("linux_x86_64", "linux_arm64", "windows_x86_64", "windows_arm64")
INTERPRETER_LOOKUPS = {
    "absolute": InterpreterKind.ABSOLUTE,
    "relative": InterpreterKind.RELATIVE,
    "path": InterpreterKind.PATH,
}


class TrampolineScriptField(OptionalSingleSourceField):
    alias = "script"
    expected_file_extensions = (".py",)
    help = help_text(
        """
        The Python script the trampoline runs, relative to this BUILD file's directory. It
        becomes the payload's `__main__.py`. Give either `script` or `entry_point`, not both.
        """
    )


class TrampolineEntryPointField(StringField):
    alias = "entry_point"
    help = help_text(
        """
        What the trampoline runs, as `package.module:function`: a generated `__main__.py` imports
        the function, calls it with no arguments and exits with what it returns (None is 0).
        The module must be among the bundled `dependencies`. Give either `script` or
        `entry_point`, not both.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            try:
                validate_entry_point(value)
            except ValueError as e:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address}: {e}") from None
        return value


class TrampolineDependenciesField(Dependencies):
    help = help_text(
        """
        First-party Python code bundled into the payload: `python_sources` (and `resources`)
        targets and their own dependencies, placed at their paths relative to their source
        roots, so `import package.module` works from the zip. Third-party requirements are not
        bundled; the interpreter must provide them.
        """
    )


class TrampolineInterpreterField(StringField):
    alias = "interpreter"
    default = "python3"
    help = help_text(
        """
        The interpreter that runs the program: an absolute path (`/usr/bin/python3`,
        `C:\\Python312\\python.exe`), a path relative to the directory holding the launcher
        (`../venv/bin/python3`, `./python.exe`), or a bare name looked up on PATH (`python3`;
        Windows appends `.exe`). How it is read is `interpreter_lookup`, or inferred from its
        shape: absolute, or containing a path separator (relative), or a bare name (PATH).
        The interpreter must be CPython 3.8 or newer: it runs the launcher file itself, whose
        appended zip holds `__main__.py`.
        """
    )


class TrampolineInterpreterLookupField(StringField):
    alias = "interpreter_lookup"
    valid_choices = tuple(INTERPRETER_LOOKUPS)
    help = help_text(
        """
        How `interpreter` is found: `absolute` (an absolute path), `relative` (relative to the
        directory holding the launcher, whatever the working directory), or `path` (the first
        executable of that name on PATH). Unset: inferred from `interpreter`'s shape.
        """
    )


class TrampolinePlatformsField(StringSequenceField):
    alias = "platforms"
    default = TRAMPOLINE_PLATFORMS
    valid_choices = TRAMPOLINE_PLATFORMS
    help = help_text(
        f"""
        Platforms to build a launcher for: {', '.join(TRAMPOLINE_PLATFORMS)}. All are built on
        this machine with the pinned zig toolchain. `pants run` runs the host's one, which must
        be listed.
        """
    )

    @classmethod
    def compute_value(
        cls, raw_value: Optional[Iterable[str]], address: Address
    ) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            if not value:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address} must name at least one platform.")
            duplicates = sorted({p for p in value if value.count(p) > 1})
            if duplicates:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address} lists {duplicates} twice.")
        return value


class TrampolineWindowsSubsystemField(StringField):
    alias = "windows_subsystem"
    default = "console"
    valid_choices = ("console", "gui")
    help = help_text(
        """
        Windows launchers only: `console` (a console program; Ctrl-C reaches the interpreter)
        or `gui` (no console window is opened, as for `pythonw`).
        """
    )


class TrampolineOutputPathField(OutputPathField):
    help = help_text(
        """
        Directory under dist/ for the launchers, one per platform as `PLATFORM/NAME` (`NAME.exe`
        on Windows), NAME being the target's name. Default: `path.to.dir/TARGET_NAME`.
        """
    )


class CrossbuildTrampolineTarget(Target):
    alias = "crossbuild_trampoline"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        TrampolineScriptField,
        TrampolineEntryPointField,
        TrampolineDependenciesField,
        TrampolineInterpreterField,
        TrampolineInterpreterLookupField,
        TrampolinePlatformsField,
        TrampolineWindowsSubsystemField,
        TrampolineOutputPathField,
    )
    help = help_text(
        """
        A small native launcher, per platform (Linux and Windows, x86-64 and ARM64), with a
        Python program appended: a zip of `__main__.py` and the bundled first-party modules.
        Started, it finds the interpreter and has it run the launcher file itself; arguments,
        standard streams and the exit code pass through. Linux launchers exec the interpreter;
        Windows ones run it as a child in a job object, so it dies with the launcher.

        `pants package` writes every platform's launcher to dist/ and prints its size;
        `pants run` runs the host's. Launchers are byte-identical on every build and machine.
        """
    )

    def validate(self) -> None:
        has_script = self[TrampolineScriptField].value is not None
        has_entry = self[TrampolineEntryPointField].value is not None
        if has_script == has_entry:
            raise InvalidFieldException(
                f"The target {self.address} needs exactly one of the `script` and `entry_point` "
                f"fields; it has {'both' if has_script else 'neither'}."
            )
        interpreter = self[TrampolineInterpreterField].value
        try:
            footer(interpreter_kind(self), interpreter, 22)
        except ValueError as e:
            raise InvalidFieldException(
                f"The `interpreter` field in target {self.address} ({interpreter!r}, read as "
                f"{interpreter_kind(self).name.lower()}): {e}"
            ) from None


def infer_interpreter_kind(spec: str) -> InterpreterKind:
    if spec.startswith("/") or spec.startswith("\\\\") or (len(spec) >= 3 and spec[1] == ":" and spec[2] in "\\/"):
        return InterpreterKind.ABSOLUTE
    if "/" in spec or "\\" in spec:
        return InterpreterKind.RELATIVE
    return InterpreterKind.PATH


def interpreter_kind(tgt: Target) -> InterpreterKind:
    lookup = tgt[TrampolineInterpreterLookupField].value
    if lookup is not None:
        return INTERPRETER_LOOKUPS[lookup]
    return infer_interpreter_kind(tgt[TrampolineInterpreterField].value or "")
