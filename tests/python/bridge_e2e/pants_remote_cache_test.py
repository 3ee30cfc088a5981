"""Pants 2.17 itself uses the bridge as its remote cache.

A small Pants project with several test targets runs twice against `reapi-bridge.pex serve`:
the first run executes the tests and writes results to the bridge; the second run, with an
empty local store, must report every test as "cached remotely".
"""

import subprocess
import textwrap
from pathlib import Path

from pants_project import PEX, python311, run_pants, write_pants_project

TESTS = ["alpha", "beta", "gamma", "delta"]


def write_project(root: Path, address: str) -> None:
    # Each test sleeps like a real test takes time: Pants 2.17 starts the local run while it
    # looks the result up, and a test of a few milliseconds can beat any cache lookup.
    global_settings = ["remote_cache_read = true", "remote_cache_write = true", f'remote_store_address = "{address}"']
    build = []
    for name in TESTS:
        (root / f"{name}.txt").write_text(f"{name}\n")
        build.append(
            textwrap.dedent(
                f"""\
                files(name="{name}-data", sources=["{name}.txt"])
                experimental_test_shell_command(
                    name="{name}",
                    command='sleep 2 && test "$(cat {name}.txt)" = "{name}" && echo checked {name}',
                    tools=["cat", "echo", "sleep", "test"],
                    execution_dependencies=[":{name}-data"],
                )
                """
            )
        )
    write_pants_project(root, backends=["pants.backend.shell"], global_settings=global_settings, build="\n".join(build))


def test_second_run_is_served_from_the_bridge(tmp_path):
    state = tmp_path / "bridge-state"
    bridge = subprocess.Popen(
        [python311(), str(PEX), "serve", "--state-dir", str(state), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        address = bridge.stdout.readline().strip()
        assert address.startswith("grpc://127.0.0.1:"), bridge.stderr.read()
        project = tmp_path / "project"
        project.mkdir()
        write_project(project, address)

        first = run_pants(project, tmp_path / "store-1", "test", "::")
        assert first.returncode == 0, first.stdout + first.stderr
        for name in TESTS:
            assert f"//:{name} succeeded" in first.stderr
        assert "cached remotely" not in first.stderr

        second = run_pants(project, tmp_path / "store-2", "test", "::")
        assert second.returncode == 0, second.stdout + second.stderr
        for name in TESTS:
            lines = [line for line in second.stderr.splitlines() if f"//:{name} succeeded" in line]
            assert lines and "cached remotely" in lines[0], second.stderr
    finally:
        bridge.terminate()
        bridge.wait(timeout=60)

    # The bridge really held the results: its action cache is not empty.
    verify = subprocess.run(
        [python311(), str(PEX), "verify", "--state-dir", str(state)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "action results: 0," not in verify.stdout
