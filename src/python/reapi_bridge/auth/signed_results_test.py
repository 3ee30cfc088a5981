"""Executor-signed results on a real bridge with a real executor: served when intact; not
served (NOT_FOUND, the action runs again) when tampered with on disk, replayed to another
action or instance, written unsigned by a client, or signed by a key revoked since."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import grpc
import pytest

from reapi_bridge.auth.audit import read_audit_log
from reapi_bridge.auth.signing import SIGNATURE_TYPE_URL, SigningKey, public_key_text
from reapi_bridge.config import AuthConfig, BridgeConfig, ExecutionConfig, ExecutorKeyConfig, InstanceConfig, ServerConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing.bridge import client_for, execute, make_action, running_bridge, running_executor

X86 = {"OSFamily": "linux", "ISA": "x86-64"}


@pytest.fixture
def key(tmp_path):
    key = SigningKey.generate()
    key.save(tmp_path / "executor.key")
    return key


def signing_config(tmp_path, key, revoked=False) -> BridgeConfig:
    return BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=tmp_path / "state", max_workers=32),
        execution=ExecutionConfig(lease_timeout_seconds=5, unmatched_grace_seconds=5),
        instances=(InstanceConfig(""), InstanceConfig("other")),
        auth=AuthConfig(require_signed_results=True),
        executor_keys=(ExecutorKeyConfig(key.key_id, public_key_text(key.public), "test-x86", revoked),),
    )


def _rows(bridge):
    return sqlite3.connect(str(bridge.paths.action_cache_db), isolation_level=None)


def _get(client, digest, instance=""):
    try:
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(instance_name=instance, action_digest=digest))
    except grpc.RpcError as exc:
        return exc.code().name
    return "OK"


def _run_signed(tmp_path, open_dir, key, client, address, salt=b""):
    with running_executor(address, open_dir, signing_key=tmp_path / "executor.key"):
        action = make_action(client, ["/bin/sh", "-c", "echo signed"], platform=X86, salt=salt)
        response, _ = execute(client, action)
    assert response.status.code == 0 and response.result.exit_code == 0
    return action, response.result


def test_intact_results_are_served_and_tampered_ones_are_not(tmp_path, open_dir, key):
    with running_bridge(signing_config(tmp_path, key)) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
        action, result = _run_signed(tmp_path, open_dir, key, client, f"127.0.0.1:{bridge.port}")
        assert [a.type_url for a in result.execution_metadata.auxiliary_metadata] == [SIGNATURE_TYPE_URL]
        assert _get(client, action) == "OK"
        assert execute(client, action)[0].cached_result

        # Tampered on disk: the exit code changed, the signature kept.
        db = _rows(bridge)
        (blob,) = db.execute("SELECT result FROM action_results WHERE action_hash=?", (action.hash,)).fetchone()
        forged = re_pb2.ActionResult.FromString(blob)
        forged.exit_code = 0 if forged.exit_code else 1
        forged.stdout_raw = b"forged"
        db.execute("UPDATE action_results SET result=? WHERE action_hash=?", (forged.SerializeToString(), action.hash))
        assert _get(client, action) == "NOT_FOUND"
        with running_executor(f"127.0.0.1:{bridge.port}", open_dir, signing_key=tmp_path / "executor.key"):
            again, _ = execute(client, action)
        assert not again.cached_result and again.result.exit_code == 0
        assert _get(client, action) == "OK"  # the fresh, signed result replaced it
        reasons = [e["reason"] for e in read_audit_log(bridge.paths.root / "audit.log") if e["event"] == "result-refused"]
        assert any("differs from what the executor signed" in r for r in reasons)


def test_replayed_signatures_and_unsigned_client_writes_are_not_served(tmp_path, open_dir, key):
    with running_bridge(signing_config(tmp_path, key)) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
        action, result = _run_signed(tmp_path, open_dir, key, client, f"127.0.0.1:{bridge.port}")
        other_action = make_action(client, ["/bin/sh", "-c", "echo other"], platform=X86)
        db = _rows(bridge)
        (blob,) = db.execute("SELECT result FROM action_results WHERE action_hash=?", (action.hash,)).fetchone()
        # The same signed bytes under another action digest, and under another instance.
        db.execute("INSERT INTO action_results VALUES ('', ?, ?, ?, 0)", (other_action.hash, other_action.size_bytes, blob))
        db.execute("INSERT INTO action_results VALUES ('other', ?, ?, ?, 0)", (action.hash, action.size_bytes, blob))
        assert _get(client, other_action) == "NOT_FOUND"
        assert _get(client, action, instance="other") == "NOT_FOUND"
        # A client's own (unsigned) write is accepted but, signatures being required, never served.
        third = make_action(client, ["/bin/true"], platform=X86)
        unsigned = re_pb2.ActionResult(exit_code=0)
        client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=third, action_result=unsigned))
        assert _get(client, third) == "NOT_FOUND"
        # A signature moved onto a client's result does not make it servable either.
        stolen = re_pb2.ActionResult(exit_code=0)
        stolen.execution_metadata.auxiliary_metadata.extend(result.execution_metadata.auxiliary_metadata)
        client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=stolen))
        assert _get(client, action) == "NOT_FOUND"
        reasons = " | ".join(e["reason"] for e in read_audit_log(bridge.paths.root / "audit.log") if e["event"] == "result-refused")
        for expected in ("for another action", "for instance ''", "not signed", "differs from what the executor signed"):
            assert expected in reasons


def test_results_signed_by_a_revoked_key_are_not_served(tmp_path, open_dir, key):
    config = signing_config(tmp_path, key)
    with running_bridge(config) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
        action, _ = _run_signed(tmp_path, open_dir, key, client, f"127.0.0.1:{bridge.port}")
        assert _get(client, action) == "OK"
    revoked = replace(config, executor_keys=(replace(config.executor_keys[0], revoked=True),))
    with running_bridge(revoked) as bridge, client_for(f"127.0.0.1:{bridge.port}") as client:
        assert _get(client, action) == "NOT_FOUND"
        assert not execute(client, action)[0].cached_result  # no executor: it queues, then fails
