"""Rules for `crossbuild_trampoline`: build the launcher per platform with the pinned zig,
bundle the Python program, assemble, package to dist/ and run the host's launcher."""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.target_types import PythonSourceField
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.core.target_types import ResourceSourceField
from pants.core.util_rules.source_files import SourceFilesRequest
from pants.core.util_rules.stripped_source_files import StrippedSourceFiles
from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, CreateDigest, Digest, DigestContents, FileContent
from pants.engine.platform import Platform
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    HydratedSources,
    HydrateSourcesRequest,
    InvalidFieldException,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from crossbuild.platforms import PLATFORMS
from crossbuild.resources import LAUNCHER_SOURCE, launcher_sources_digest
from crossbuild.target_types import (
    TrampolineEntryPointField,
    TrampolineInterpreterField,
    TrampolineOutputPathField,
    TrampolinePlatformsField,
    TrampolineScriptField,
    TrampolineWindowsSubsystemField,
    interpreter_kind,
)
from crossbuild.toolchain import ZigToolchain
from crossbuild.trampoline_format import assemble, build_payload, footer, launcher_build_commands
from crossbuild.zig_process import ZigProcess


@dataclass(frozen=True)
class LauncherRequest:
    platform: str
    gui: bool


@dataclass(frozen=True)
class BuiltLauncher:
    platform: str
    content: bytes  # the stripped launcher executable


@dataclass(frozen=True)
class TrampolineRequest:
    address: Address


@dataclass(frozen=True)
class Trampoline:
    platform: str
    filename: str  # NAME or NAME.exe
    content: bytes
    launcher_size: int
    payload_size: int


@dataclass(frozen=True)
class Trampolines:
    address: Address
    trampolines: Tuple[Trampoline, ...]


@rule(desc="Building a trampoline launcher", level=LogLevel.DEBUG)
async def build_launcher(request: LauncherRequest, zig: ZigToolchain) -> BuiltLauncher:
    triple = PLATFORMS[request.platform].triple("musl")
    output = f"launcher-{request.platform}{PLATFORMS[request.platform].executable_suffix}"
    commands = launcher_build_commands("ZIG", triple, LAUNCHER_SOURCE, output, gui=request.gui)
    # Each command runs zig from its stable path (see ZigToolchain.shell_prelude), with the
    # sandbox path mapped away; -g0 and -s leave no other path in the launcher.
    script = zig.shell_prelude + " && ".join(
        '"$zig" ' + " ".join(shlex.quote(a) for a in cmd[1:]) + ' "-ffile-prefix-map=$PWD=."'
        for cmd in commands
    )
    sources = await Get(Digest, CreateDigest, launcher_sources_digest())
    built = await Get(
        Digest,
        ZigProcess(
            ("/bin/sh", "-c", script),
            input_digest=sources,
            output_files=(output,),
            description=f"Build the trampoline launcher for {request.platform}"
            + (" (gui)" if request.gui else ""),
            what=f"building the trampoline launcher for {request.platform}",
        ),
    )
    contents = await Get(DigestContents, Digest, built)
    return BuiltLauncher(request.platform, contents[0].content)


@rule(desc="Assembling trampolines", level=LogLevel.DEBUG)
async def build_trampolines(request: TrampolineRequest) -> Trampolines:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="crossbuild trampoline")
    )
    tgt = wrapped.target
    platforms = tuple(tgt[TrampolinePlatformsField].value or ())
    gui = tgt[TrampolineWindowsSubsystemField].value == "gui"
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([request.address]))
    bundled, script = await MultiGet(
        Get(
            StrippedSourceFiles,
            SourceFilesRequest(
                [t[PythonSourceField] for t in transitive.dependencies if t.has_field(PythonSourceField)]
                + [t[ResourceSourceField] for t in transitive.dependencies if t.has_field(ResourceSourceField)],
                for_sources_types=(PythonSourceField, ResourceSourceField),
            ),
        ),
        Get(HydratedSources, HydrateSourcesRequest(tgt[TrampolineScriptField])),
    )
    modules = {fc.path: fc.content for fc in await Get(DigestContents, Digest, bundled.snapshot.digest)}
    main_py = None
    if tgt[TrampolineScriptField].value is not None:
        files = await Get(DigestContents, Digest, script.snapshot.digest)
        if not files:
            raise InvalidFieldException(
                f"The `script` field in target {request.address}: "
                f"{tgt[TrampolineScriptField].value!r} does not exist in {request.address.spec_path or 'the root'}/."
            )
        main_py = files[0].content
        modules.pop("__main__.py", None)
    elif "__main__.py" in modules:
        raise InvalidFieldException(
            f"{request.address}: a bundled dependency is a top-level `__main__.py`, which would "
            "clash with the one `entry_point` generates; use `script` instead."
        )
    try:
        payload = build_payload(main_py, tgt[TrampolineEntryPointField].value, modules, deflate=False)
        trailer = footer(interpreter_kind(tgt), tgt[TrampolineInterpreterField].value, len(payload))
    except ValueError as e:
        raise InvalidFieldException(f"{request.address}: {e}") from None
    # Only now the launchers (and with them the zig toolchain): bad input fails fast.
    launchers = await MultiGet(
        Get(BuiltLauncher, LauncherRequest(p, gui and p.startswith("windows"))) for p in platforms
    )
    name = request.address.target_name
    out = []
    for launcher in launchers:
        content = assemble(launcher.content, payload, trailer)
        filename = name + PLATFORMS[launcher.platform].executable_suffix
        out.append(Trampoline(launcher.platform, filename, content, len(launcher.content), len(payload)))
    return Trampolines(request.address, tuple(out))


@dataclass(frozen=True)
class TrampolinePackageFieldSet(PackageFieldSet):
    required_fields = (TrampolinePlatformsField, TrampolineInterpreterField)

    platforms: TrampolinePlatformsField
    output_path: TrampolineOutputPathField


@rule(desc="Packaging trampolines", level=LogLevel.DEBUG)
async def package_trampolines(field_set: TrampolinePackageFieldSet) -> BuiltPackage:
    built = await Get(Trampolines, TrampolineRequest(field_set.address))
    directory = field_set.output_path.value_or_default(file_ending=None)
    files = [
        FileContent(os.path.join(directory, t.platform, t.filename), t.content, is_executable=True)
        for t in built.trampolines
    ]
    digest = await Get(Digest, CreateDigest(files))
    artifacts = tuple(
        BuiltPackageArtifact(
            f.path,
            extra_log_lines=(
                f"{t.platform}: {len(t.content):,} bytes (launcher {t.launcher_size:,} + payload and footer "
                f"{len(t.content) - t.launcher_size:,}), sha256 {hashlib.sha256(t.content).hexdigest()[:16]}",
            ),
        )
        for f, t in zip(files, built.trampolines)
    )
    return BuiltPackage(digest, artifacts)


@dataclass(frozen=True)
class TrampolineRunFieldSet(RunFieldSet):
    required_fields = (TrampolinePlatformsField, TrampolineInterpreterField)
    run_in_sandbox_behavior = RunInSandboxBehavior.RUN_REQUEST_HERMETIC

    platforms: TrampolinePlatformsField


@rule(desc="Running a trampoline", level=LogLevel.DEBUG)
async def run_trampoline(field_set: TrampolineRunFieldSet, platform: Platform) -> RunRequest:
    host = platform.value
    if host not in (field_set.platforms.value or ()):
        raise InvalidFieldException(
            f"`pants run {field_set.address}` needs a launcher for this machine ({host}), but the "
            f"`platforms` field lists only {list(field_set.platforms.value or ())}."
        )
    built = await Get(Trampolines, TrampolineRequest(field_set.address))
    (trampoline,) = (t for t in built.trampolines if t.platform == host)
    digest = await Get(
        Digest, CreateDigest([FileContent(trampoline.filename, trampoline.content, is_executable=True)])
    )
    digest = await Get(Digest, AddPrefix(digest, "__trampoline"))
    return RunRequest(digest=digest, args=(os.path.join("{chroot}", "__trampoline", trampoline.filename),))


def rules():
    return [
        *collect_rules(),
        UnionRule(PackageFieldSet, TrampolinePackageFieldSet),
        *TrampolineRunFieldSet.rules(),
    ]
