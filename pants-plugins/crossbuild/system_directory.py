"""`crossbuild_system_directory`: files of a directory of this machine, outside the build root
(a test framework from a system package), copied into a Digest on every run and checked
against the target's pinned digest before any build uses them.

Pants rules read files outside the build root only through processes, so a local, uncached
process copies what the target's globs select into an output directory; the digest of that
snapshot (the fingerprint and size of its REAPI Directory tree) is the pin. Builds then use
the snapshot, placed in their sandboxes under `__crossbuild_system/<path>`, like any other
input: it reaches remote executors through the CAS, and compiles are cached on its content.

`pants crossbuild-pins ADDRESSES` prints every system directory's digest and whether it matches
its pin, which is how a pin is made or updated."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional, Tuple

from pants.core.util_rules.environments import EnvironmentNameRequest
from pants.engine.addresses import Address, Addresses
from pants.engine.console import Console
from pants.engine.environment import LOCAL_ENVIRONMENT_MATCHER, EnvironmentName
from pants.engine.fs import AddPrefix, Digest, DigestSubset, PathGlobs, RemovePrefix, Snapshot
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule, rule
from pants.engine.target import Targets, WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel

from crossbuild.target_types import (
    CrossbuildSystemDirectoryTarget,
    SystemDirectoryDigestField,
    SystemDirectoryGlobsField,
    SystemDirectoryIncludeDirsField,
    SystemDirectoryLinkOptionsField,
    SystemDirectoryPackageField,
    SystemDirectoryPathField,
    SystemDirectorySourcesField,
)

# Where a system directory's files appear in build sandboxes: `__crossbuild_system/usr/src/...`.
SYSTEM_SANDBOX_DIR = "__crossbuild_system"
# The snapshot process's output directory.
_OUT = "snapshot"
# Exit status of the snapshot process when `path` is not a directory.
_MISSING = 3

_GLOB_CHARS = "*?["

# Copies each root (a file or directory relative to $1) that exists into ./snapshot, following
# symbolic links, so the snapshot holds content only. A missing $1 exits _MISSING.
_COPY_SCRIPT = (
    'src="$1"; shift; '
    f'[ -d "$src" ] || {{ echo "no such directory: $src" >&2; exit {_MISSING}; }}; '
    f"mkdir -p {_OUT} || exit 4; "
    'for r in "$@"; do '
    '  [ -e "$src/$r" ] || continue; '
    '  d="${r%/*}"; [ "$d" = "$r" ] && d=.; '
    f'  mkdir -p "{_OUT}/$d" && cp -RL "$src/$r" "{_OUT}/$r" || exit 4; '
    "done"
)


def sandbox_root(path: str) -> str:
    """Where the snapshot of the absolute `path` sits in a sandbox."""
    return f"{SYSTEM_SANDBOX_DIR}{path}"


def copy_roots(globs: Tuple[str, ...]) -> Tuple[str, ...]:
    """What the snapshot process copies: the literal leading path of each glob that is not an
    exclusion (`include/**` -> `include`, `*.h` -> `.`), without roots inside another. The
    globs themselves then pick the files, so copying more than they match changes nothing."""
    roots = set()
    for glob in globs:
        if glob.startswith("!"):
            continue
        literal = []
        for part in glob.split("/"):
            if part in ("", "."):
                continue
            if any(c in part for c in _GLOB_CHARS):
                break
            literal.append(part)
        roots.add("/".join(literal) or ".")
    if "." in roots:
        return (".",)
    return tuple(sorted(r for r in roots if not any(r.startswith(o + "/") for o in roots)))


def pin_of(digest: Digest) -> str:
    """The pin of a snapshot: `SHA256:SIZE` of its root Directory."""
    return f"{digest.fingerprint}:{digest.serialized_bytes_length}"


class SystemDirectoryError(Exception):
    """A system directory is missing, selects nothing, or differs from its pin."""


@dataclass(frozen=True)
class SystemDirectoryRequest:
    address: Address


@dataclass(frozen=True)
class SystemDirectorySnapshot:
    """The machine's files as they are now, whatever the pin says."""

    address: Address
    path: str
    pin: Optional[str]  # the target's `digest` field
    digest: Digest  # the files, at their paths relative to `path`
    files: Tuple[str, ...]
    dirs: Tuple[str, ...]
    # Why there is no snapshot (the directory is missing, the globs select nothing), or None.
    problem: Optional[str]

    @property
    def actual(self) -> str:
        return pin_of(self.digest)


@dataclass(frozen=True)
class SystemDirectory:
    """A snapshot that matched its pin, laid out for build sandboxes."""

    address: Address
    path: str
    digest: Digest  # the files under `root`
    root: str
    include_dirs: Tuple[str, ...]  # sandbox paths
    sources: Tuple[str, ...]  # sandbox paths
    linkopts: Tuple[str, ...]


async def _target(address: Address) -> CrossbuildSystemDirectoryTarget:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(address, description_of_origin="crossbuild system directory")
    )
    tgt = wrapped.target
    if not isinstance(tgt, CrossbuildSystemDirectoryTarget):
        raise SystemDirectoryError(f"{address} is a `{tgt.alias}`, not a `crossbuild_system_directory`.")
    return tgt


@rule(desc="Snapshotting a system directory", level=LogLevel.DEBUG)
async def snapshot_system_directory(request: SystemDirectoryRequest) -> SystemDirectorySnapshot:
    tgt = await _target(request.address)
    path = tgt[SystemDirectoryPathField].value
    globs = tuple(tgt[SystemDirectoryGlobsField].value or ())
    pin = tgt[SystemDirectoryDigestField].value
    package = tgt[SystemDirectoryPackageField].value
    # The machine's directory is read here, never on an executor: a local process, whatever
    # environment the build runs in, and never cached, since the machine's copy can change
    # between runs (what it copies is cached by content as usual).
    local_env = await Get(
        EnvironmentName,
        EnvironmentNameRequest(LOCAL_ENVIRONMENT_MATCHER, description_of_origin=f"the system directory {request.address}"),
    )
    result = await Get(
        FallibleProcessResult,
        {
            Process(
                ("/bin/sh", "-c", _COPY_SCRIPT, "sh", path, *copy_roots(globs)),
                description=f"Snapshot {path} for {request.address}",
                output_directories=(_OUT,),
                env={"PATH": "/usr/bin:/bin"},
                cache_scope=ProcessCacheScope.PER_SESSION,
                level=LogLevel.DEBUG,
            ): Process,
            local_env: EnvironmentName,
        },
    )
    empty = await Get(Snapshot, PathGlobs([]))
    if result.exit_code == _MISSING:
        hint = (
            f" It is provided by the package `{package}` (`apt-get install {package}` on Debian)."
            if package
            else ""
        )
        problem = f"The directory {path} of `crossbuild_system_directory` {request.address} does not exist on this machine.{hint}"
        return SystemDirectorySnapshot(request.address, path, pin, empty.digest, (), (), problem)
    if result.exit_code != 0:
        raise SystemDirectoryError(
            f"Copying {path} for {request.address} failed (exit {result.exit_code}):\n"
            f"{result.stderr.decode(errors='replace')}"
        )
    copied = await Get(Digest, RemovePrefix(result.output_digest, _OUT))
    snapshot = await Get(Snapshot, DigestSubset(copied, PathGlobs(globs)))
    problem = None
    if not snapshot.files:
        problem = (
            f"The `globs` of `crossbuild_system_directory` {request.address} ({', '.join(globs)}) "
            f"select no file of {path}."
        )
    return SystemDirectorySnapshot(
        request.address, path, pin, snapshot.digest, tuple(snapshot.files), tuple(snapshot.dirs), problem
    )


def pin_problem(snap: SystemDirectorySnapshot) -> Optional[str]:
    """Why `snap` may not be used (missing, empty, no pin, a different pin), or None."""
    if snap.problem:
        return snap.problem
    field = f'digest="{snap.actual}"'
    how = f"`pants crossbuild-pins {snap.address}` prints the digest of the machine's copy."
    if snap.pin is None:
        return (
            f"`crossbuild_system_directory` {snap.address} has no `digest` pin. The files it "
            f"selects from {snap.path} have the digest {snap.actual}: if they are what you mean "
            f"to build with, add `{field}` to it. {how}"
        )
    if snap.pin != snap.actual:
        return (
            f"The files of {snap.path} differ from the pin of `crossbuild_system_directory` "
            f"{snap.address}: the pin is {snap.pin}, this machine's copy has {snap.actual}. If the "
            f"change is intended (an upgraded package), update the pin to `{field}`; otherwise "
            f"restore the pinned files (reinstall the package version the pin was made from). {how}"
        )
    return None


@rule(desc="Checking a system directory against its pin", level=LogLevel.DEBUG)
async def pinned_system_directory(request: SystemDirectoryRequest) -> SystemDirectory:
    tgt = await _target(request.address)
    snap = await Get(SystemDirectorySnapshot, SystemDirectoryRequest, request)
    problem = pin_problem(snap)
    if problem:
        raise SystemDirectoryError(problem)
    root = sandbox_root(snap.path)
    include_dirs = tuple(posixpath.normpath(d) for d in tgt[SystemDirectoryIncludeDirsField].value or ())
    sources = tuple(posixpath.normpath(s) for s in tgt[SystemDirectorySourcesField].value or ())
    missing_dirs = [d for d in include_dirs if d != "." and d not in snap.dirs]
    missing_sources = [s for s in sources if s not in snap.files]
    if missing_dirs or missing_sources:
        what = [
            *(f"`include_dirs` names {d}" for d in missing_dirs),
            *(f"`sources` names {s}" for s in missing_sources),
        ]
        raise SystemDirectoryError(
            f"`crossbuild_system_directory` {request.address}: {'; '.join(what)}, which the "
            f"snapshot of {snap.path} does not hold (its `globs` must select it)."
        )
    digest = await Get(Digest, AddPrefix(snap.digest, root))
    return SystemDirectory(
        address=request.address,
        path=snap.path,
        digest=digest,
        root=root,
        include_dirs=tuple(root if d == "." else f"{root}/{d}" for d in include_dirs),
        sources=tuple(f"{root}/{s}" for s in sources),
        linkopts=tuple(tgt[SystemDirectoryLinkOptionsField].value or ()),
    )


# ---------------------------------------------------------------------------------------------
# `pants crossbuild-pins`


class CrossbuildPinsSubsystem(GoalSubsystem):
    name = "crossbuild-pins"
    help = (
        "Prints the digest of every `crossbuild_system_directory` among the given targets as "
        "this machine has it, and whether it matches the target's `digest` pin; exits 1 if any "
        "is missing or differs. Copy a printed digest into the target to pin or update it."
    )


class CrossbuildPins(Goal):
    subsystem_cls = CrossbuildPinsSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@goal_rule
async def crossbuild_pins(console: Console, targets: Targets) -> CrossbuildPins:
    addresses = Addresses(t.address for t in targets if isinstance(t, CrossbuildSystemDirectoryTarget))
    snaps = await MultiGet(Get(SystemDirectorySnapshot, SystemDirectoryRequest(a)) for a in addresses)
    failed = False
    for snap in snaps:
        if snap.problem:
            failed = True
            console.print_stdout(f"{snap.address}: {snap.path}: MISSING\n  {snap.problem}")
            continue
        if snap.pin == snap.actual:
            state = "matches its pin"
        else:
            failed = True
            state = "has no pin" if snap.pin is None else f"DIFFERS from its pin {snap.pin}"
        console.print_stdout(
            f"{snap.address}: {snap.path} ({len(snap.files)} files) {state}\n  digest=\"{snap.actual}\""
        )
    if not snaps:
        console.print_stderr("No `crossbuild_system_directory` targets among the given addresses.")
    return CrossbuildPins(exit_code=1 if failed else 0)


def rules():
    return collect_rules()
