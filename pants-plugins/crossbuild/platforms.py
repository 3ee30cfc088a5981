"""Target platforms and build profiles, as zig understands them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class TargetPlatform:
    name: str
    arch: str  # the first component of the triple, as `uname -m` prints it
    os: str

    def triple(self, libc: str) -> str:
        if self.os == "windows":
            return f"{self.arch}-windows-gnu"
        return f"{self.arch}-linux-{libc}"

    @property
    def executable_suffix(self) -> str:
        return ".exe" if self.os == "windows" else ""


PLATFORMS: Dict[str, TargetPlatform] = {
    "linux_arm64": TargetPlatform("linux_arm64", "aarch64", "linux"),
    "linux_x86_64": TargetPlatform("linux_x86_64", "x86_64", "linux"),
    "windows_arm64": TargetPlatform("windows_arm64", "aarch64", "windows"),
    "windows_x86_64": TargetPlatform("windows_x86_64", "x86_64", "windows"),
}


@dataclass(frozen=True)
class BuildProfile:
    name: str
    compile_flags: Tuple[str, ...]
    link_flags: Tuple[str, ...]


# zig builds libc into its cache with debug info naming the toolchain's absolute path, which
# differs between checkouts and machines; release profiles drop debug sections at link time,
# which makes their binaries byte-identical everywhere. Debug builds keep them (and that path).
PROFILES: Dict[str, BuildProfile] = {
    "debug": BuildProfile("debug", ("-O0", "-g"), ()),
    "release": BuildProfile("release", ("-O2",), ("-Wl,--strip-debug",)),
    "release-lto": BuildProfile("release-lto", ("-O2", "-flto"), ("-flto", "-Wl,--strip-debug")),
    "release-size": BuildProfile(
        "release-size", ("-Os", "-ffunction-sections", "-fdata-sections"), ("-s", "-Wl,--gc-sections")
    ),
}
