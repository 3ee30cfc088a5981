"""Pants 2.17 against the embedded cluster run as a shared bridge (`up --secure`): TLS with the
cluster's own CA, a developer bearer token (no ac-write), executors on tokens of their own and
signed results required.

Remote execution on both ISAs works and a second run (a fresh local store) is served from the
cache; a wrong CA is refused with a clear message; kill -9 of the bridge loses nothing, and
after the restart every permission still holds.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pants_project import Cluster, bridge_command, open_temp_dir, run_pants, write_pants_project


def secure_flags(address: str, ca: Path, token: Path):
    return [
        "--remote-execution",
        "--remote-cache-read",
        "--no-remote-cache-write",
        f"--remote-store-address={address}",
        f"--remote-execution-address={address}",
        f"--remote-ca-certs-path={ca}",
        f"--remote-oauth-bearer-token-path={token}",
    ]


def write_project(root: Path, salt: str) -> None:
    targets = [
        f'shell_command(name="{name}", command="uname -m > {name}.txt; echo {salt} >> {name}.txt", '
        f'tools=["uname"], output_files=["{name}.txt"], environment="{env}")\n'
        for name, env in (("on-x86", "linux_x86_64"), ("on-arm", "linux_arm64"))
    ]
    write_pants_project(
        root, backends=["pants.backend.shell"], environments=["linux_x86_64", "linux_arm64"], build="\n".join(targets)
    )


@pytest.fixture
def cluster():
    state = open_temp_dir("crossbuild-secure-")
    c = Cluster(state, secure=True)
    yield c
    c.down()


def _bridge(state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(bridge_command(*args), capture_output=True, text=True)


def first_run(cluster, tmp_path: Path, salt: str):
    """Starts the secure cluster and runs the project once through it as the developer:
    (address, CA, token file, project)."""
    address = cluster.up()
    secure = cluster.state / "secure"
    ca, token = secure / "tls" / "ca.pem", secure / "developer.token"
    project = tmp_path / "project"
    project.mkdir()
    write_project(project, salt)
    first = run_pants(project, tmp_path / "store-1", *secure_flags(address, ca, token), "export-codegen", "::")
    assert first.returncode == 0, first.stderr
    return address, ca, token, project


def test_pants_over_tls_with_a_token_runs_on_both_isas_and_is_served_from_the_cache(cluster, tmp_path):
    address, ca, token, project = first_run(cluster, tmp_path, "first")
    assert address.startswith("grpcs://localhost:")
    out = project / "dist" / "codegen"
    assert (out / "on-x86.txt").read_text() == "x86_64\nfirst\n"
    assert (out / "on-arm.txt").read_text() == "aarch64\nfirst\n"
    hits = cache_hits(cluster.status())

    # A fresh local store: both results come from the bridge's cache (signed by the executors).
    second = run_pants(project, tmp_path / "store-2", *secure_flags(address, ca, token), "export-codegen", "::")
    assert second.returncode == 0, second.stderr
    assert (out / "on-arm.txt").read_text() == "aarch64\nfirst\n"
    assert cache_hits(cluster.status()) >= hits + 2

    # A CA that did not sign the bridge's certificate: refused, and Pants says why.
    other = tmp_path / "other-ca"
    made = _bridge(cluster.state, "certs", "--out", str(other))
    assert made.returncode == 0, made.stderr
    write_project(project, "wrong-ca")
    wrong = run_pants(project, tmp_path / "store-3", *secure_flags(address, other / "ca.pem", token), "export-codegen", "::")
    assert wrong.returncode != 0
    assert "certificate" in wrong.stderr.lower(), wrong.stderr[-3000:]

    # No token at all: refused as unauthenticated.
    anonymous = [f for f in secure_flags(address, ca, token) if not f.startswith("--remote-oauth")]
    refused = run_pants(project, tmp_path / "store-4", *anonymous, "export-codegen", "::")
    assert refused.returncode != 0
    assert "anonymous callers do not have it" in refused.stderr, refused.stderr[-3000:]


def test_kill_9_and_restart_with_tls_and_auth_on_loses_nothing(cluster, tmp_path):
    address, ca, token, project = first_run(cluster, tmp_path, "before-kill")
    secure = cluster.state / "secure"

    os.kill(cluster.pid("bridge"), signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not _restarted(cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _restarted(cluster), "the supervisor did not bring the bridge back"
    # The same results, still signed and trusted, from a fresh store; nothing re-ran.
    second = run_pants(project, tmp_path / "store-2", *secure_flags(address, ca, token), "export-codegen", "::")
    assert second.returncode == 0, second.stderr
    assert (project / "dist" / "codegen" / "on-arm.txt").read_text() == "aarch64\nbefore-kill\n"
    assert cache_hits(cluster.status()) >= 2

    # Every permission still holds after the restart.
    codes = probe(address, ca, secure)
    assert codes == {
        "developer UpdateActionResult": "PERMISSION_DENIED",
        "developer CreateBotSession": "PERMISSION_DENIED",
        "executor Execute": "PERMISSION_DENIED",
        "anonymous GetCapabilities": "UNAUTHENTICATED",
        "revoked developer FindMissingBlobs": "UNAUTHENTICATED",
    }


PROBE = """
import json, sys
import grpc
from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re, remote_execution_pb2_grpc as reg
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
address, ca, developer, executor = sys.argv[1:5]
digest = re.Digest(hash="ab" * 32, size_bytes=1)
bot = bots_pb2.BotSession(bot_id="probe", worker=worker_pb2.Worker(devices=[worker_pb2.Device(
    handle="probe", properties=[worker_pb2.Device.Property(key="ISA", value="x86-64")])]))
calls = {
    "developer UpdateActionResult": (developer, lambda ch: reg.ActionCacheStub(ch).UpdateActionResult(
        re.UpdateActionResultRequest(action_digest=digest, action_result=re.ActionResult()))),
    "developer CreateBotSession": (developer, lambda ch: bots_pb2_grpc.BotsStub(ch).CreateBotSession(
        bots_pb2.CreateBotSessionRequest(bot_session=bot))),
    "executor Execute": (executor, lambda ch: list(reg.ExecutionStub(ch).Execute(re.ExecuteRequest(action_digest=digest)))),
    "anonymous GetCapabilities": (None, lambda ch: reg.CapabilitiesStub(ch).GetCapabilities(re.GetCapabilitiesRequest())),
}
if len(sys.argv) > 5:
    calls = {"revoked developer FindMissingBlobs": (developer, lambda ch: reg.ContentAddressableStorageStub(ch).FindMissingBlobs(
        re.FindMissingBlobsRequest(blob_digests=[digest])))}
codes = {}
for name, (token, call) in calls.items():
    with open_channel(address, ClientAuth(ca=ca, token_file=token)) as ch:
        try:
            call(ch)
            codes[name] = "OK"
        except grpc.RpcError as exc:
            codes[name] = exc.code().name
print(json.dumps(codes))
"""


def probe(address: str, ca: Path, secure: Path) -> dict:
    """Calls the Pants project cannot make, through the pex's own modules (PEX_INTERPRETER)."""
    def run(*extra: str) -> dict:
        cmd = bridge_command("-c", PROBE, address, str(ca), str(secure / "developer.token"),
                             str(secure / "executor-x86-64.token"), *extra)
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PEX_INTERPRETER": "1"})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    codes = run()
    revoke = subprocess.run(bridge_command("token", "revoke", "developer", "--state-dir", str(secure.parent / "bridge")),
                            capture_output=True, text=True)
    assert revoke.returncode == 0, revoke.stderr
    codes.update(run("revoked"))
    return codes


def cache_hits(status: str) -> int:
    match = re.search(r"action cache: \d+ results, (\d+) hits", status)
    assert match, status
    return int(match.group(1))


def _restarted(cluster) -> bool:
    """The bridge was started again and answers (status with the cluster's admin token)."""
    state = json.loads((cluster.state / "cluster.json").read_text())
    bridge = next(p for p in state["processes"] if p["role"] == "bridge")
    if bridge["restarts"] < 1:
        return False
    out = subprocess.run(bridge_command("status", "--state-dir", str(cluster.state)), capture_output=True, text=True)
    return out.returncode == 0
