"""Compile and link rules: one compile action per translation unit, one link per binary,
all with the pinned zig toolchain and fully reproducible outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import Digest, MergeDigests, RemovePrefix
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.platforms import PLATFORMS
from crossbuild.toolchain import ZigToolchain
from crossbuild.zig_commands import binary_dir, binary_path, compile_argv, link_argv, object_path
from crossbuild.zig_process import ZigProcess


@dataclass(frozen=True)
class BuildSettings:
    """What every action of one archive shares."""

    platform: str
    profile: str
    libc: str
    include_dirs: Tuple[str, ...]
    copts: Tuple[str, ...]
    linkopts: Tuple[str, ...]
    owner: str  # address, for messages

    @property
    def triple(self) -> str:
        return PLATFORMS[self.platform].triple(self.libc)


@dataclass(frozen=True)
class CompileRequest:
    source: str
    headers: Digest  # the source file itself plus every header it may include
    settings: BuildSettings


@dataclass(frozen=True)
class CompiledObject:
    digest: Digest
    path: str


@dataclass(frozen=True)
class LinkRequest:
    name: str
    objects: Tuple[CompiledObject, ...]
    settings: BuildSettings


@dataclass(frozen=True)
class LinkedBinary:
    digest: Digest  # holds `path` only
    path: str


@rule(desc="Compiling", level=LogLevel.DEBUG)
async def compile_object(request: CompileRequest, zig: ZigToolchain) -> CompiledObject:
    s = request.settings
    obj = object_path(s.platform, s.profile, request.source)
    argv = compile_argv(
        zig.shell_prelude, request.source, obj,
        triple=s.triple, profile=s.profile, include_dirs=s.include_dirs, copts=s.copts,
    )
    digest = await Get(
        Digest,
        ZigProcess(
            argv,
            input_digest=request.headers,
            output_files=(obj,),
            description=f"Compile {request.source} for {s.platform} ({s.profile})",
            what=f"{s.owner}: compiling {request.source} for {s.platform}",
        ),
    )
    return CompiledObject(digest, obj)


@rule(desc="Linking", level=LogLevel.DEBUG)
async def link_binary(request: LinkRequest, zig: ZigToolchain) -> LinkedBinary:
    s = request.settings
    out_dir = binary_dir(s.platform, s.profile)
    exe = binary_path(s.platform, s.profile, request.name)
    objects = await Get(Digest, MergeDigests(o.digest for o in request.objects))
    argv = link_argv(
        zig.shell_prelude, [o.path for o in request.objects], exe,
        triple=s.triple, profile=s.profile, linkopts=s.linkopts,
    )
    linked = await Get(
        Digest,
        ZigProcess(
            argv,
            input_digest=objects,
            output_files=(exe,),
            description=f"Link {request.name} for {s.platform} ({s.profile})",
            what=f"{s.owner}: linking {request.name} for {s.platform}",
        ),
    )
    digest = await Get(Digest, RemovePrefix(linked, out_dir))
    return LinkedBinary(digest, exe[len(out_dir) + 1 :])


def rules():
    return collect_rules()
