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
from crossbuild.zig_commands import ZIG_CACHE_DIR, ZIG_DIR, stable_zig_shell

# Named cache for zig's global cache (its libc builds); without it every link rebuilds libc.
ZIG_CACHE_NAME = "crossbuild_zig"


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
