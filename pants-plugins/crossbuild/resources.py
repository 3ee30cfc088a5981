"""Files the plugin ships (under crossbuild/resources/) and puts into sandboxes."""

from __future__ import annotations

import pkgutil

from pants.engine.fs import CreateDigest, FileContent

from crossbuild.zig_commands import SANDBOX_DIR

HARNESS_HEADER = "crossbuild_test.h"
SHARD_RUNNER_SOURCE = "shard_runner.c"
# The trampoline launcher's C sources (under resources/trampoline/): zig compiles LAUNCHER_SOURCE,
# which includes the others.
LAUNCHER_DIR = "trampoline"
LAUNCHER_SOURCE = "launcher.c"
LAUNCHER_FILES = (LAUNCHER_SOURCE, "launcher_common.h", "launcher_posix.c", "launcher_windows.c")


def resource_bytes(name: str) -> bytes:
    data = pkgutil.get_data("crossbuild", f"resources/{name}")
    if data is None:
        raise FileNotFoundError(f"the crossbuild plugin is missing its resource {name}")
    return data


def harness_header_digest() -> CreateDigest:
    return CreateDigest([FileContent(f"{SANDBOX_DIR}/{HARNESS_HEADER}", resource_bytes(HARNESS_HEADER))])


def launcher_sources_digest() -> CreateDigest:
    """The launcher's sources, side by side at the sandbox root."""
    return CreateDigest([FileContent(name, resource_bytes(f"{LAUNCHER_DIR}/{name}")) for name in LAUNCHER_FILES])
