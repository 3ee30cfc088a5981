"""Compile and link rules: one compile action per translation unit, one link per binary,
all with the pinned zig toolchain and fully reproducible outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import Digest, MergeDigests, RemovePrefix
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.platforms import PLATFORMS, PROFILES
from crossbuild.toolchain import ZigToolchain
from crossbuild.zig_process import ZigProcess


def zig_command(zig: ZigToolchain, *args: str) -> Tuple[str, ...]:
    """argv running `zig ARGS...` from the toolchain's stable path, with every absolute path a
    compile could leak (the sandbox, the toolchain) mapped to fixed names, so objects are
    byte-identical on every machine and in every sandbox."""
    script = (
        zig.shell_prelude
        + 'exec "$zig" "$@" "-ffile-prefix-map=$PWD=." "-ffile-prefix-map=$zig_real=/zig"'
    )
    return ("/bin/sh", "-c", script, "zig", *args)


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


def _language_flags(source: str) -> Tuple[str, ...]:
    return ("-std=c11",) if source.endswith(".c") else ("-std=c++17",)


@rule(desc="Compiling", level=LogLevel.DEBUG)
async def compile_object(request: CompileRequest, zig: ZigToolchain) -> CompiledObject:
    s = request.settings
    profile = PROFILES[s.profile]
    obj = f"__obj/{s.platform}/{s.profile}/{request.source}.o"
    compiler = "cc" if request.source.endswith(".c") else "c++"
    argv = (
        *zig_command(zig), compiler, "-target", s.triple,
        *_language_flags(request.source),
        *profile.compile_flags,
        "-fno-ident", "-fdiagnostics-color=never",
        *(f"-I{d}" for d in s.include_dirs),
        *s.copts,
        "-c", request.source, "-o", obj,
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
    profile = PROFILES[s.profile]
    out_dir = f"__bin/{s.platform}/{s.profile}"
    exe = f"{out_dir}/{request.name}{PLATFORMS[s.platform].executable_suffix}"
    objects = await Get(Digest, MergeDigests(o.digest for o in request.objects))
    linker = "c++" if any(not o.path.endswith(".c.o") for o in request.objects) else "cc"
    argv = (
        *zig_command(zig), linker, "-target", s.triple,
        *profile.compile_flags, *profile.link_flags,
        *(o.path for o in request.objects),
        *s.linkopts,
        "-o", exe,
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
