"""run_zig with a mocked process: what every zig action gets from the toolchain, and its error."""

import pytest
from pants.engine.fs import EMPTY_DIGEST, EMPTY_FILE_DIGEST
from pants.engine.process import FallibleProcessResult, Process
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from crossbuild.toolchain import ZigToolchain
from crossbuild.zig_process import CompileFailed, ZigProcess, run_zig

ZIG = ZigToolchain(EMPTY_DIGEST, "0.17.1", "0" * 64)
REQUEST = ZigProcess(
    ("/bin/sh", "-c", "zig cc"),
    input_digest=EMPTY_DIGEST,
    output_files=("a.o",),
    description="Compile a.c for linux_arm64 (release)",
    what="app:tests: compiling a.c for linux_arm64",
)


def run(exit_code: int, stderr: bytes = b""):
    seen = []

    def process(p: Process) -> FallibleProcessResult:
        seen.append(p)
        return FallibleProcessResult(b"", EMPTY_FILE_DIGEST, stderr, EMPTY_FILE_DIGEST, exit_code, EMPTY_DIGEST, None)

    mock = MockGet(output_type=FallibleProcessResult, input_types=(Process,), mock=process)
    try:
        return run_rule_with_mocks(run_zig, rule_args=[REQUEST, ZIG], mock_gets=[mock])
    finally:
        (p,) = seen
        assert (p.argv, p.description, p.output_files) == (REQUEST.argv, REQUEST.description, REQUEST.output_files)
        assert dict(p.immutable_input_digests) == ZIG.immutable_input_digests
        assert dict(p.append_only_caches) == ZIG.append_only_caches
        assert dict(p.env) == ZIG.env


def test_the_outputs_of_a_zig_that_succeeds():
    assert run(0) == EMPTY_DIGEST


def test_a_zig_that_fails_names_what_was_built_with_its_exit_code_and_stderr():
    with pytest.raises(CompileFailed) as e:
        run(1, b"a.c:3:9: error: use of undeclared identifier 'x'\n")
    assert str(e.value) == (
        "app:tests: compiling a.c for linux_arm64 failed (exit 1):\n"
        "a.c:3:9: error: use of undeclared identifier 'x'\n"
    )
