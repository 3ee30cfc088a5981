"""Rules that turn the pinned `ziglang` wheel into a toolchain digest usable by any process."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.util_rules.archive import ExtractedArchive, MaybeExtractArchiveRequest
from pants.engine.fs import DigestSubset, DownloadFile, FileDigest, PathGlobs
from pants.engine.internals.native_engine import Digest
from pants.engine.platform import Platform
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.subsystems.zig import ZigSubsystem

# Where the toolchain appears in a process's sandbox (as an immutable input).
ZIG_DIR = "__crossbuild_zig"
# Named cache for zig's global cache (its libc builds); without it every link rebuilds libc.
ZIG_CACHE_NAME = "crossbuild_zig"
ZIG_CACHE_DIR = ".cache/crossbuild_zig"


def stable_zig_shell(wheel_sha256: str) -> str:
    """Shell that sets `$zig` (the compiler) and `$zig_real` (its folder, symlinks resolved).

    zig keys its cached libc builds on the absolute path of its `lib/` folder. The immutable
    input's path changes with every Pants run (Pants puts immutable inputs in a fresh temporary
    folder), so calling zig from there rebuilt libc on every run: 40-55 s per target. The first
    action that needs the toolchain therefore places a copy (hard links when the filesystem
    allows) in the append-only cache under the wheel's sha256, renamed into place only once
    complete, and every action calls zig from that fixed path."""
    home = f"{ZIG_CACHE_DIR}/toolchains/{wheel_sha256}"
    return (
        f'zig_home="{home}"; '
        'if [ ! -e "$zig_home/.complete" ]; then '
        f'mkdir -p {ZIG_CACHE_DIR}/toolchains && '
        'zig_tmp="$zig_home.tmp.$$" && rm -rf "$zig_tmp" && '
        f'{{ cp -al {ZIG_DIR}/. "$zig_tmp" 2>/dev/null || '
        f'{{ rm -rf "$zig_tmp" && cp -R {ZIG_DIR}/. "$zig_tmp"; }}; }} && '
        ': > "$zig_tmp/.complete" && '
        '{ mv -T "$zig_tmp" "$zig_home" 2>/dev/null || rm -rf "$zig_tmp"; } '
        '|| { echo "crossbuild: could not place the zig toolchain in $zig_home" >&2; exit 70; }; '
        'fi; '
        'zig_real="$(cd "$zig_home" && pwd -P)"; zig="$zig_real/ziglang/zig"; '
    )


@dataclass(frozen=True)
class ZigToolchain:
    """The extracted toolchain and how to call it inside a sandbox."""

    digest: Digest
    version: str
    wheel_sha256: str

    @property
    def shell_prelude(self) -> str:
        """Shell that sets `$zig` and `$zig_real`; see `stable_zig_shell`."""
        return stable_zig_shell(self.wheel_sha256)

    @property
    def immutable_input_digests(self):
        return {ZIG_DIR: self.digest}

    @property
    def append_only_caches(self):
        return {ZIG_CACHE_NAME: ZIG_CACHE_DIR}

    @property
    def env(self):
        return {
            # For the few POSIX tools that place the toolchain (mkdir, cp, mv); every executor
            # userland has them in one of these.
            "PATH": "/usr/bin:/bin",
            "ZIG_GLOBAL_CACHE_DIR": f"{ZIG_CACHE_DIR}/global",
            "ZIG_LOCAL_CACHE_DIR": f"{ZIG_CACHE_DIR}/local",
            # The identity of the toolchain, so results of two versions never mix in a cache.
            "CROSSBUILD_ZIG": f"{self.version}@{self.wheel_sha256}",
        }


@rule(desc="Fetching the zig toolchain", level=LogLevel.DEBUG)
async def fetch_zig(zig: ZigSubsystem, platform: Platform) -> ZigToolchain:
    sha256, size, url = zig.wheel_for(platform.value)
    wheel = await Get(Digest, DownloadFile(url, FileDigest(sha256, size)))
    extracted = await Get(ExtractedArchive, MaybeExtractArchiveRequest(wheel, use_suffix=".zip"))
    toolchain = await Get(Digest, DigestSubset(extracted.digest, PathGlobs(["ziglang/**"])))
    return ZigToolchain(toolchain, zig.version, sha256)


def rules():
    return collect_rules()
