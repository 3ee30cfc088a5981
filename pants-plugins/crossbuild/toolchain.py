"""Rules that turn the pinned `ziglang` wheel into a toolchain digest usable by any process."""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.target_types import PexLayout
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import Pex, PexPlatforms, PexRequest
from pants.backend.python.util_rules.pex_requirements import PexRequirements
from pants.core.util_rules.environments import EnvironmentNameRequest
from pants.engine.environment import LOCAL_ENVIRONMENT_MATCHER, EnvironmentName
from pants.engine.fs import CreateDigest, DigestSubset, FileContent, PathGlobs, RemovePrefix, Snapshot
from pants.engine.internals.native_engine import Digest
from pants.engine.platform import Platform
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.subsystems.zig import PEX_PLATFORMS, ZigSubsystem
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


# The requirements file pip resolves the wheel from (hash-checking mode: only the pinned wheel
# is accepted) and the loose Pex it is installed into.
_REQUIREMENTS = "__crossbuild_ziglang.txt"
_PEX = "ziglang.pex"


def ziglang_requirement(version: str, sha256: str) -> str:
    """The requirements-file line that lets pip install exactly the pinned wheel."""
    return f"ziglang=={version} --hash=sha256:{sha256}\n"


@rule(desc="Fetching the zig toolchain", level=LogLevel.DEBUG)
async def fetch_zig(zig: ZigSubsystem, platform: Platform) -> ZigToolchain:
    # The platform of the environment the compiles run in; the wheel is fetched on this machine
    # (never on an executor) through the package index [python-repos] configures.
    sha256, _size = zig.wheel_for(platform.value)
    requirements, local_env = await MultiGet(
        Get(Digest, CreateDigest([FileContent(_REQUIREMENTS, ziglang_requirement(zig.version, sha256).encode())])),
        Get(
            EnvironmentName,
            EnvironmentNameRequest(LOCAL_ENVIRONMENT_MATCHER, description_of_origin="the [zig] toolchain"),
        ),
    )
    installed = await Get(
        Pex,
        {
            PexRequest(
                output_filename=_PEX,
                internal_only=False,
                layout=PexLayout.LOOSE,
                requirements=PexRequirements(),
                platforms=PexPlatforms([PEX_PLATFORMS[platform.value]]),
                additional_inputs=requirements,
                # pip sees `--hash`, so it refuses any file but the pinned wheel.
                additional_args=("--requirement", _REQUIREMENTS, "--no-transitive"),
                description=f"Fetching ziglang {zig.version} for {platform.value}",
            ): PexRequest,
            local_env: EnvironmentName,
        },
    )
    # A loose Pex holds each installed wheel under `.deps/<wheel file name>/`.
    wheel = await Get(
        Snapshot, DigestSubset(installed.digest, PathGlobs([f"{_PEX}/.deps/ziglang-{zig.version}-*.whl/ziglang/zig"]))
    )
    if len(wheel.files) != 1:
        raise ValueError(f"Installing ziglang {zig.version} for {platform.value} gave no single ziglang/zig: {wheel.files}")
    wheel_dir = wheel.files[0][: -len("/ziglang/zig")]
    toolchain = await Get(
        Digest,
        DigestSubset(installed.digest, PathGlobs([f"{wheel_dir}/ziglang/**", f"!{wheel_dir}/ziglang/**/__pycache__/**"])),
    )
    toolchain = await Get(Digest, RemovePrefix(toolchain, wheel_dir))
    return ZigToolchain(toolchain, zig.version, sha256)


def rules():
    return [*collect_rules(), *pex.rules()]
