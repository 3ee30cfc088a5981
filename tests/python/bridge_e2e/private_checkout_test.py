"""`reapi-bridge up` works from a checkout that only root can enter (under /root, or in a
`mktemp -d` folder): executors started as root run actions as `nobody`, which cannot walk into
such a folder, so the executors keep sandboxes and input caches in a folder `nobody` can reach.

One x86-64 and one (emulated) ARM64 action run through the bridge; each proves it ran as
`nobody`, in a sandbox outside the private folder, could read a shared cached input directory
(a symlink into the input cache, which the emulated userland must see too) and could not write
to it.
"""

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from reapi_bridge.cluster.local import default_executor_slots
from reapi_bridge_testing.bridge import client_for, execute, make_action

PEX = Path("reapi-bridge.pex")
# Enough files that the executor materialises the folder once in its cache and links it.
TOOL = {f"tool/f{i:03d}": f"file {i}\n".encode() for i in range(300)}
SCRIPT = (
    "id -u; cat tool/f007; pwd; "
    "if (echo x >> tool/f007 || touch tool/new || echo x >> in.txt) 2>/dev/null; then echo WROTE; fi; "
    "uname -m"
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only an executor started as root runs actions as another user (nobody)"
)


def bridge(*args: str) -> subprocess.CompletedProcess:
    assert PEX.is_file(), "the reapi-bridge.pex runtime package is missing from the sandbox"
    return subprocess.run([sys.executable, str(PEX), *args], capture_output=True, text=True, timeout=900)


@pytest.fixture
def private_dir():
    d = Path(tempfile.mkdtemp(prefix="crossbuild-private-"))
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    yield d
    shutil.rmtree(d, ignore_errors=True)


def action_roots(state: Path) -> dict:
    """The folder each executor logged for its sandboxes and input caches."""
    roots = {}
    for isa in ("x86-64", "arm-a64"):
        log = (state / "logs" / f"executor-{isa}.log").read_text()
        found = re.search(r"sandboxes and input caches are in (\S+)", log)
        assert found, f"the {isa} executor did not say where its sandboxes are:\n{log}"
        roots[isa] = Path(found.group(1))
    return roots


def test_up_from_a_private_folder_runs_actions_as_nobody(private_dir):
    nobody = pwd.getpwnam("nobody")
    state = private_dir / "cluster"
    up = bridge("up", "--state-dir", str(state), "--listen", "127.0.0.1:0")
    roots = {}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        address = up.stdout.strip().splitlines()[-1]
        roots = action_roots(state)

        # `up` waits for one slot of each executor; the others open their sessions alongside.
        slots = default_executor_slots()
        wanted = [rf"local-{isa} .* {slots} slots: 0 busy, {slots} free" for isa in ("x86-64", "arm-a64")]
        for _ in range(30):
            status = bridge("status", "--state-dir", str(state))
            assert status.returncode == 0, status.stderr
            if all(re.search(line, status.stdout) for line in wanted):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"not every slot registered:\n{status.stdout}")

        for isa, root in roots.items():
            assert private_dir not in root.parents
            info = root.stat()
            assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, nobody.pw_gid, 0o710), root
        with client_for(address) as client:
            for isa, machine, path in (("x86-64", "x86_64", "/usr/bin:/bin"), ("arm-a64", "aarch64", "/bin:/usr/bin")):
                action = make_action(
                    client,
                    ["/bin/sh", "-c", SCRIPT],
                    files={**TOOL, "in.txt": b"input\n"},
                    env={"PATH": path},
                    platform={"OSFamily": "linux", "ISA": isa},
                )
                response, _ = execute(client, action)
                result = response.result
                stderr = client.stream_read(result.stderr_digest).decode()
                assert response.status.code == 0 and result.exit_code == 0, (response.status, stderr)
                assert result.execution_metadata.worker.startswith(f"local-{isa}/")
                lines = client.stream_read(result.stdout_digest).decode().splitlines()
                assert "WROTE" not in lines, f"an action wrote to the shared input cache ({isa})"
                uid, content, cwd, arch = lines
                assert (int(uid), content, arch) == (nobody.pw_uid, "file 7", machine), stderr
                assert Path(cwd).is_relative_to(roots[isa] / "sandboxes")
    finally:
        down = bridge("down", "--state-dir", str(state))
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)
    assert down.returncode == 0, down.stdout + down.stderr
