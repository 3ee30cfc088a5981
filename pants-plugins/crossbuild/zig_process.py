"""The one rule that runs the pinned zig: every compile and link (test binaries, the shard runner,
trampoline launchers) is a `ZigProcess`, run with the toolchain's inputs, caches and environment,
and failing the same way: `CompileFailed`, naming what was built and showing zig's stderr."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from crossbuild.toolchain import ZigToolchain


class CompileFailed(Exception):
    """zig exited non-zero; the message says what was being built and holds zig's stderr."""


@dataclass(frozen=True)
class ZigProcess:
    """A process calling zig (through `ZigToolchain.shell_prelude`) in a sandbox of `input_digest`."""

    argv: Tuple[str, ...]
    input_digest: Digest
    output_files: Tuple[str, ...]
    description: str
    # What is built, for the error message: "<what> failed (exit N):" then zig's stderr.
    what: str


@rule(desc="Running zig", level=LogLevel.DEBUG)
async def run_zig(request: ZigProcess, zig: ZigToolchain) -> Digest:
    """The digest of `output_files`, or `CompileFailed` if zig exits non-zero."""
    result = await Get(
        FallibleProcessResult,
        Process(
            request.argv,
            description=request.description,
            input_digest=request.input_digest,
            immutable_input_digests=zig.immutable_input_digests,
            append_only_caches=zig.append_only_caches,
            env=zig.env,
            output_files=request.output_files,
            level=LogLevel.INFO,
        ),
    )
    if result.exit_code != 0:
        raise CompileFailed(
            f"{request.what} failed (exit {result.exit_code}):\n{result.stderr.decode(errors='replace')}"
        )
    return result.output_digest


def rules():
    return collect_rules()
