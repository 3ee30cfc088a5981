"""The built pex serves, stops and restarts on the same state dir without losing anything."""

import hashlib
import os
import sys
from pathlib import Path

import pytest

from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing.bridge import BridgeProcess, client_for, digest_of

PEX = Path("reapi-bridge.pex")


def pex_command():
    assert PEX.is_file(), "the reapi-bridge.pex runtime package is missing from the sandbox"
    return [sys.executable, str(PEX)]


def store_everything(client):
    small = [client.upload(os.urandom(10 + i * 37)) for i in range(50)]
    large = [client.stream_upload(os.urandom((6 << 20) + i)) for i in range(2)]
    results = {}
    for i in range(5):
        action = digest_of(f"action {i}".encode())
        result = re_pb2.ActionResult(
            output_files=[re_pb2.OutputFile(path=f"out{i}", digest=small[i])],
            stdout_digest=small[i + 10],
            exit_code=i,
        )
        client.ac.UpdateActionResult(
            re_pb2.UpdateActionResultRequest(action_digest=action, action_result=result)
        )
        results[action.hash] = (action, result)
    return small + large, results


def check_everything(client, blobs, results):
    missing = client.cas.FindMissingBlobs(re_pb2.FindMissingBlobsRequest(blob_digests=blobs))
    assert list(missing.missing_blob_digests) == []
    for digest in blobs:
        data = client.stream_read(digest)
        assert hashlib.sha256(data).hexdigest() == digest.hash and len(data) == digest.size_bytes
    for action, result in results.values():
        got = client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action))
        assert got == result


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_serves_every_blob_and_result(tmp_path, how):
    state = tmp_path / "state"
    first = BridgeProcess(state, command=pex_command())
    with client_for(first.start()) as client:
        blobs, results = store_everything(client)
    if how == "sigterm":
        assert first.stop() == 0
    else:
        first.kill()  # everything acknowledged must survive a crash too
    second = BridgeProcess(state, command=pex_command())
    with client_for(second.start()) as client:
        check_everything(client, blobs, results)
    assert second.stop() == 0
    # The offline check agrees: every blob re-hashes to its name.
    verify = BridgeProcess(state, command=pex_command())
    import subprocess

    out = subprocess.run(
        [*verify.command, "verify", "--state-dir", str(state)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"blobs: {len(blobs)} " in out.stdout and "corrupt: 0" in out.stdout
    assert "action results: 5, complete: 5" in out.stdout


def test_second_bridge_on_same_state_dir_is_refused(tmp_path):
    state = tmp_path / "state"
    first = BridgeProcess(state, command=pex_command())
    first.start()
    try:
        second = BridgeProcess(state, command=pex_command())
        with pytest.raises(RuntimeError, match="in use by another reapi-bridge"):
            second.start()
    finally:
        first.stop()


def test_help_documents_every_option():
    import subprocess

    out = subprocess.run([*pex_command(), "serve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--config", "--listen", "--state-dir"):
        assert flag in out.stdout
    reference = subprocess.run([*pex_command(), "config"], capture_output=True, text=True).stdout
    import toml

    from reapi_bridge.config import parse_config, BridgeConfig

    assert parse_config(toml.loads(reference)) == BridgeConfig()


def test_bad_config_names_the_setting(tmp_path):
    import subprocess

    cfg = tmp_path / "bridge.toml"
    cfg.write_text("[cas]\nmax_bytes = 'lots'\n")
    out = subprocess.run(
        [*pex_command(), "serve", "--config", str(cfg)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "[cas].max_bytes" in out.stderr
