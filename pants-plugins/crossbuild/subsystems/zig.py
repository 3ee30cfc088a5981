"""The pinned zig toolchain: PyPI's `ziglang` wheel, downloaded by URL and checked by hash."""

from __future__ import annotations

from pants.option.option_types import StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

_WHEELS = "https://files.pythonhosted.org/packages"


class ZigSubsystem(Subsystem):
    options_scope = "zig"
    help = softwrap(
        """
        The zig toolchain used as a hermetic C/C++ compiler and linker for every crossbuild
        platform. It comes from PyPI's `ziglang` wheel (which holds zig and its libc sources),
        pinned by version, sha256 and size, and reaches remote executors through the CAS like
        any other input. Its version and hash are part of every compile and link action.
        """
    )

    version = StrOption(
        default="0.17.1",
        help="Version of the `ziglang` wheel to use; must appear in `known_versions`.",
    )
    known_versions = StrListOption(
        default=[
            "0.17.1|linux_x86_64|ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54|101083562|"
            f"{_WHEELS}/59/e3/2a34676370a11c36b7cd04ffb2439c1089c0530cf4b01408c77cf7f8d9c3/"
            "ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl",
            "0.17.1|linux_arm64|b7c5f02fccd40f89b999ee16a1f5ddced56e6182370f8affe494bcf8a28cf07e|98063064|"
            f"{_WHEELS}/91/72/bb7c4f098ba3e535fa2ebefd9f26327ba63fb0672562959255cb5dd37aff/"
            "ziglang-0.17.1-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        ],
        help=softwrap(
            """
            Known wheels, each `VERSION|PLATFORM|SHA256|SIZE|URL`, PLATFORM being the Pants
            platform of the machine that runs the compiler (`linux_x86_64`, `linux_arm64`).
            Point URL at a mirror if PyPI's files host is not reachable.
            """
        ),
        advanced=True,
    )

    def wheel_for(self, platform: str):
        """(sha256, size, url) of the pinned wheel for the given Pants platform."""
        for entry in self.known_versions:
            parts = entry.split("|", 4)
            if len(parts) != 5:
                raise ValueError(f"[zig].known_versions entry {entry!r} is not VERSION|PLATFORM|SHA256|SIZE|URL")
            version, plat, sha256, size, url = parts
            if version == self.version and plat == platform:
                return sha256, int(size), url
        raise ValueError(
            f"[zig].known_versions has no ziglang {self.version} wheel for {platform}; add one "
            "(`VERSION|PLATFORM|SHA256|SIZE|URL`) or pick another [zig].version."
        )
