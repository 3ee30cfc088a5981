"""The pinned zig toolchain: the `ziglang` wheel, fetched through the configured Python package
index (`[python-repos]`) and checked by its sha256."""

from __future__ import annotations

from typing import Tuple

from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

# The abbreviated Pex platform each Pants platform resolves the wheel for. `ziglang` wheels are
# `py3-none-<platform>`, so the interpreter part only has to be some CPython 3.
PEX_PLATFORMS = {
    "linux_x86_64": "linux_x86_64-cp-311-cp311",
    "linux_arm64": "linux_aarch64-cp-311-cp311",
}


class ZigSubsystem(Subsystem):
    options_scope = "zig"
    help = softwrap(
        """
        The zig toolchain used as a hermetic C/C++ compiler and linker for every crossbuild
        platform. It comes from the `ziglang` wheel (which holds zig and its libc sources),
        pinned by version and sha256: Pants' Pex fetches it on this machine from the package
        indexes `[python-repos]` configures (PyPI by default), with pip checking the wheel's
        hash, and it reaches remote executors through the CAS like any other input.
        Its version and hash are part of every compile and link action.
        """
    )

    version = StrOption(
        default="0.17.1",
        help="Version of the `ziglang` wheel to use; must appear in `known_versions`.",
    )
    known_versions = StrListOption(
        default=[
            "0.17.1|linux_x86_64|ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54|101083562",
            "0.17.1|linux_arm64|b7c5f02fccd40f89b999ee16a1f5ddced56e6182370f8affe494bcf8a28cf07e|98063064",
        ],
        help=softwrap(
            f"""
            Known wheels, each `VERSION|PLATFORM|SHA256|SIZE`: PLATFORM is the Pants platform
            of the machine that runs the compiler ({', '.join(f'`{p}`' for p in PEX_PLATFORMS)}),
            SHA256 the hash pip requires of the downloaded wheel, SIZE its size in bytes (for
            reference). The wheel comes from the configured package index: to use a mirror,
            set `[python-repos].indexes` or `[python-repos].find_links`, not these pins.
            """
        ),
        advanced=True,
    )

    def wheel_for(self, platform: str) -> Tuple[str, int]:
        """(sha256, size) of the pinned wheel for the given Pants platform."""
        for entry in self.known_versions:
            parts = entry.split("|")
            if len(parts) != 4:
                raise ValueError(
                    f"[zig].known_versions entry {entry!r} is not VERSION|PLATFORM|SHA256|SIZE (the "
                    "wheel comes from the package index `[python-repos]` configures; entries name no URL)"
                )
            version, plat, sha256, size = parts
            if version == self.version and plat == platform:
                return sha256, int(size)
        raise ValueError(
            f"[zig].known_versions has no ziglang {self.version} wheel for {platform}; add one "
            "(`VERSION|PLATFORM|SHA256|SIZE`) or pick another [zig].version."
        )
