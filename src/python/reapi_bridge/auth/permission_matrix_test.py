"""Every RPC of every service against every kind of caller, over TLS, on a real bridge: the
exact status code each one gets. What each caller holds and what each RPC needs are written
out here, independently of the bridge's own tables."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc

from reapi_bridge.auth.audit import read_audit_log
from reapi_bridge.auth.certs import issue
from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.config import AuthConfig, BridgeConfig, IdentityConfig, InstanceConfig, ServerConfig, TlsConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.crossbuild.bridge.v1 import status_pb2, status_pb2_grpc
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc, worker_pb2
from reapi_bridge_testing.bridge import running_bridge

BLOB = b"permission matrix"
DIGEST = re_pb2.Digest(hash=hashlib.sha256(BLOB).hexdigest(), size_bytes=len(BLOB))
MISSING = re_pb2.Digest(hash="ab" * 32, size_bytes=5)
NEVER_WRITTEN = re_pb2.Digest(hash="cd" * 32, size_bytes=5)  # UpdateActionResult writes MISSING
ALL = {"read", "cas-write", "ac-write", "execute", "worker"}

# name -> (permissions on instance "", whether the caller presents a valid credential)
CALLERS = {
    "anonymous": (set(), False),
    "bad-token": (set(), False),
    "revoked-token": (set(), False),
    "read-only": ({"read"}, True),
    "cas-write": ({"cas-write"}, True),
    "executor": ({"read", "cas-write", "worker"}, True),
    "executor-certificate": ({"read", "cas-write", "worker"}, True),
    "stranger-certificate": (set(), True),  # signed by the CA, but no [[identities]] entry
    "admin": (ALL, True),
    "other-instance": (set(), True),  # developer on instance "other" only
}


# Operation names carry no instance: an unknown one is NOT_FOUND for anyone who may execute on
# some instance, so the other-instance caller learns nothing more than it could anyway.
BY_OPERATION_NAME = {"Execution.WaitExecution", "Operations.GetOperation", "Operations.CancelOperation"}
HELD_ELSEWHERE = {"other-instance": {"read", "cas-write", "execute"}}


def _uuid_name(n: int) -> str:
    return f"uploads/00000000-0000-0000-0000-{n:012d}/blobs/{DIGEST.hash}/{DIGEST.size_bytes}"


def rpcs():
    """name -> (permissions, any one of which allows it; the call; the code it gets when allowed)."""
    re_ = re_pb2
    return {
        "CAS.FindMissingBlobs": ({"read", "cas-write"}, lambda ch: re_grpc.ContentAddressableStorageStub(ch).FindMissingBlobs(re_.FindMissingBlobsRequest(blob_digests=[MISSING])), "OK"),
        "CAS.BatchUpdateBlobs": ({"cas-write"}, lambda ch: re_grpc.ContentAddressableStorageStub(ch).BatchUpdateBlobs(re_.BatchUpdateBlobsRequest(requests=[re_.BatchUpdateBlobsRequest.Request(digest=DIGEST, data=BLOB)])), "OK"),
        "CAS.BatchReadBlobs": ({"read"}, lambda ch: re_grpc.ContentAddressableStorageStub(ch).BatchReadBlobs(re_.BatchReadBlobsRequest(digests=[MISSING])), "OK"),
        "CAS.GetTree": ({"read"}, lambda ch: list(re_grpc.ContentAddressableStorageStub(ch).GetTree(re_.GetTreeRequest(root_digest=MISSING))), "NOT_FOUND"),
        "ByteStream.Read": ({"read"}, lambda ch: list(bs_grpc.ByteStreamStub(ch).Read(bs_pb2.ReadRequest(resource_name=f"blobs/{MISSING.hash}/{MISSING.size_bytes}"))), "NOT_FOUND"),
        "ByteStream.Write": ({"cas-write"}, lambda ch: bs_grpc.ByteStreamStub(ch).Write(iter([bs_pb2.WriteRequest(resource_name=_uuid_name(1), data=BLOB, finish_write=True)])), "OK"),
        "ByteStream.QueryWriteStatus": ({"cas-write"}, lambda ch: bs_grpc.ByteStreamStub(ch).QueryWriteStatus(bs_pb2.QueryWriteStatusRequest(resource_name=_uuid_name(2))), "OK"),
        "ActionCache.GetActionResult": ({"read"}, lambda ch: re_grpc.ActionCacheStub(ch).GetActionResult(re_.GetActionResultRequest(action_digest=NEVER_WRITTEN)), "NOT_FOUND"),
        "ActionCache.UpdateActionResult": ({"ac-write"}, lambda ch: re_grpc.ActionCacheStub(ch).UpdateActionResult(re_.UpdateActionResultRequest(action_digest=MISSING, action_result=re_.ActionResult(exit_code=0))), "OK"),
        "Execution.Execute": ({"execute"}, lambda ch: list(re_grpc.ExecutionStub(ch).Execute(re_.ExecuteRequest(action_digest=MISSING))), "OK"),
        "Execution.WaitExecution": ({"execute"}, lambda ch: list(re_grpc.ExecutionStub(ch).WaitExecution(re_.WaitExecutionRequest(name="operations/nope"))), "NOT_FOUND"),
        "Operations.GetOperation": ({"execute"}, lambda ch: operations_pb2_grpc.OperationsStub(ch).GetOperation(operations_pb2.GetOperationRequest(name="operations/nope")), "NOT_FOUND"),
        "Operations.CancelOperation": ({"execute"}, lambda ch: operations_pb2_grpc.OperationsStub(ch).CancelOperation(operations_pb2.CancelOperationRequest(name="operations/nope")), "NOT_FOUND"),
        "Capabilities.GetCapabilities": (ALL, lambda ch: re_grpc.CapabilitiesStub(ch).GetCapabilities(re_.GetCapabilitiesRequest()), "OK"),
        "Bots.CreateBotSession": ({"worker"}, lambda ch: bots_pb2_grpc.BotsStub(ch).CreateBotSession(bots_pb2.CreateBotSessionRequest(bot_session=_bot())), "OK"),
        "Bots.UpdateBotSession": ({"worker"}, lambda ch: bots_pb2_grpc.BotsStub(ch).UpdateBotSession(bots_pb2.UpdateBotSessionRequest(name="sessions/nope", bot_session=_bot())), "NOT_FOUND"),
        "Bots.PostBotEventTemp": ({"worker"}, lambda ch: bots_pb2_grpc.BotsStub(ch).PostBotEventTemp(bots_pb2.PostBotEventTempRequest(name="sessions/nope", msg="hi")), "OK"),
        "Status.GetStatus": ({"read"}, lambda ch: status_pb2_grpc.BridgeStatusStub(ch).GetStatus(status_pb2.GetStatusRequest()), "OK"),
    }


def _bot():
    device = worker_pb2.Device(handle="matrix", properties=[worker_pb2.Device.Property(key="ISA", value="x86-64")])
    return bots_pb2.BotSession(bot_id="matrix-bot", worker=worker_pb2.Worker(devices=[device]))


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """Two bridges with authentication on: one over TLS for token callers (what Pants 2.17 can
    use), one over mTLS for certificate callers (gRPC cannot ask for a client certificate
    without requiring it). Yields (bridge for a caller, ClientAuth per caller, TLS files)."""
    root = tmp_path_factory.mktemp("matrix")
    tls = issue(root / "tls", ["localhost", "127.0.0.1"], clients=["executor-cert", "stranger"])

    def config(state: Path, client_ca: str) -> BridgeConfig:
        return BridgeConfig(
            server=ServerConfig(listen="127.0.0.1:0", state_dir=state, max_workers=32),
            instances=(InstanceConfig(""), InstanceConfig("other")),
            tls=TlsConfig(str(tls.server_cert), str(tls.server_key), client_ca),
            auth=AuthConfig(enabled=True),
            identities=(IdentityConfig("executor-cert", ("executor",), ("*",)),),
        )

    state = root / "state"
    store = TokenStore(state / "tokens.json")
    tokens = {}
    for name, perms, scopes in (
        ("read-only", ["read"], ["*"]),
        ("cas-write", ["cas-write"], ["*"]),
        ("executor", ["executor"], ["*"]),
        ("admin", ["admin"], ["*"]),
        ("other-instance", ["developer"], ["other"]),
        ("revoked-token", ["admin"], ["*"]),
    ):
        tokens[name], _ = store.create(name, perms, scopes)
    store.revoke("revoked-token")
    tokens["bad-token"] = "xb1.0123456789ab.not-a-real-secret"
    auths = {}
    for name, token in tokens.items():
        path = root / f"{name}.token"
        path.write_text(token)
        auths[name] = ClientAuth(ca=tls.ca, token_file=path)
    auths["anonymous"] = ClientAuth(ca=tls.ca)
    certs = {name: (cert, key) for name, cert, key in tls.clients}
    auths["executor-certificate"] = ClientAuth(ca=tls.ca, cert=certs["executor-cert"][0], key=certs["executor-cert"][1])
    auths["stranger-certificate"] = ClientAuth(ca=tls.ca, cert=certs["stranger"][0], key=certs["stranger"][1])
    with running_bridge(config(state, "")) as tokens_bridge, running_bridge(config(root / "mtls-state", str(tls.ca))) as mtls:
        bridges = {name: tokens_bridge for name in auths}
        bridges["executor-certificate"] = bridges["stranger-certificate"] = mtls
        yield bridges, auths, tls


def _code(call, channel) -> str:
    try:
        call(channel)
    except grpc.RpcError as exc:
        return exc.code().name
    return "OK"


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_rpc_gets_the_exact_status_for_this_caller(secured, caller):
    bridges, auths, _ = secured
    bridge = bridges[caller]
    held, authenticated = CALLERS[caller]
    got, want = {}, {}
    with open_channel(f"grpcs://127.0.0.1:{bridge.port}", auths[caller]) as channel:
        for name, (needs, call, allowed_code) in rpcs().items():
            got[name] = _code(call, channel)
            if held & needs or (name in BY_OPERATION_NAME and HELD_ELSEWHERE.get(caller, set()) & needs):
                want[name] = allowed_code
            else:
                want[name] = "PERMISSION_DENIED" if authenticated else "UNAUTHENTICATED"
    assert got == want


def test_refusals_name_the_permission_and_instance_and_are_audited(secured):
    bridges, auths, _ = secured
    bridge = bridges["admin"]
    with open_channel(f"grpcs://127.0.0.1:{bridge.port}", auths["read-only"]) as channel:
        with pytest.raises(grpc.RpcError) as info:
            rpcs()["ActionCache.UpdateActionResult"][1](channel)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'ac-write'" in info.value.details() and "instance ''" in info.value.details()
    assert "read-only" in info.value.details()
    with open_channel(f"grpcs://127.0.0.1:{bridge.port}", auths["revoked-token"]) as channel:
        with pytest.raises(grpc.RpcError) as info:
            rpcs()["CAS.FindMissingBlobs"][1](channel)
    assert "revoked" in info.value.details()
    log = read_audit_log(bridge.paths.root / "audit.log")
    refused = [e for e in log if e["event"] == "refused"]
    assert any(e["caller"] == "read-only" and e["permission"] == "ac-write" for e in refused)
    assert any("revoked" in e["reason"] for e in refused)
    assert any(e["event"] == "ac-write" and "admin" in e["writer"] for e in log)


def test_other_instance_caller_works_on_its_own_instance(secured):
    bridges, auths, _ = secured
    bridge = bridges["other-instance"]
    with open_channel(f"grpcs://127.0.0.1:{bridge.port}", auths["other-instance"]) as channel:
        stub = re_grpc.ContentAddressableStorageStub(channel)
        stub.FindMissingBlobs(re_pb2.FindMissingBlobsRequest(instance_name="other", blob_digests=[MISSING]))
        caps = re_grpc.CapabilitiesStub(channel).GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name="other"))
        assert not caps.cache_capabilities.action_cache_update_capabilities.update_enabled


def test_update_enabled_follows_the_callers_ac_write(secured):
    bridges, auths, _ = secured
    bridge = bridges["admin"]
    for caller, expected in (("admin", True), ("executor", False), ("read-only", False)):
        with open_channel(f"grpcs://127.0.0.1:{bridge.port}", auths[caller]) as channel:
            caps = re_grpc.CapabilitiesStub(channel).GetCapabilities(re_pb2.GetCapabilitiesRequest())
        assert caps.cache_capabilities.action_cache_update_capabilities.update_enabled is expected, caller


def test_plain_text_and_missing_client_certificates_are_refused(secured):
    bridges, auths, tls = secured

    def capabilities(c):
        return re_grpc.CapabilitiesStub(c).GetCapabilities(re_pb2.GetCapabilitiesRequest(), timeout=5)

    with open_channel(f"grpc://127.0.0.1:{bridges['admin'].port}", ClientAuth(token_file=auths["admin"].token_file)) as ch:
        assert _code(capabilities, ch) == "UNAVAILABLE"
    # The mTLS bridge refuses a TLS connection without a client certificate, token or not.
    with open_channel(f"grpcs://127.0.0.1:{bridges['executor-certificate'].port}", auths["admin"]) as ch:
        assert _code(capabilities, ch) == "UNAVAILABLE"


def test_wrong_ca_is_refused_with_a_clear_message(secured, tmp_path):
    bridges, _, _ = secured
    bridge = bridges["admin"]
    other = issue(tmp_path / "other-ca", ["127.0.0.1"])
    with open_channel(f"grpcs://127.0.0.1:{bridge.port}", ClientAuth(ca=other.ca)) as ch:
        with pytest.raises(grpc.RpcError) as info:
            re_grpc.CapabilitiesStub(ch).GetCapabilities(re_pb2.GetCapabilitiesRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_bot_session_is_bound_to_the_identity_that_created_it(secured):
    bridges, auths, _ = secured
    address = f"grpcs://127.0.0.1:{bridges['admin'].port}"
    with open_channel(address, auths["executor"]) as ch:
        session = bots_pb2_grpc.BotsStub(ch).CreateBotSession(bots_pb2.CreateBotSessionRequest(bot_session=_bot()))
    with open_channel(address, auths["admin"]) as ch:
        with pytest.raises(grpc.RpcError) as info:
            bots_pb2_grpc.BotsStub(ch).UpdateBotSession(
                bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=20
            )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "belongs to another identity" in info.value.details()
