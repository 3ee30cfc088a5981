"""Per-client limits on a real bridge: one client's open calls beyond the limit are refused
with RESOURCE_EXHAUSTED while another client is served; and the byte budget as a plain object."""

from __future__ import annotations

import hashlib
import threading

import grpc

from reapi_bridge.auth.limits import ClientLimits
from reapi_bridge.auth.tls import ClientAuth, open_channel
from reapi_bridge.auth.tokens import TokenStore
from reapi_bridge.config import AuthConfig, BridgeConfig, ServerConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
from reapi_bridge_testing.bridge import running_bridge, wait_for

DATA = b"x" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()


def test_calls_over_a_clients_limit_are_refused_and_others_are_served(tmp_path):
    state = tmp_path / "state"
    store = TokenStore(state / "tokens.json")
    tokens = {}
    for name in ("greedy", "patient"):
        token, _ = store.create(name, ["developer"])
        (tmp_path / name).write_text(token)
        tokens[name] = ClientAuth(token_file=tmp_path / name)
    config = BridgeConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=state, max_workers=16),
        auth=AuthConfig(enabled=True, max_streams_per_client=2),
    )
    release = threading.Event()

    def slow_upload(n: int):
        name = f"uploads/00000000-0000-0000-0000-{n:012d}/blobs/{DIGEST}/{len(DATA)}"
        yield bs_pb2.WriteRequest(resource_name=name, data=DATA[:10])
        release.wait(60)
        yield bs_pb2.WriteRequest(resource_name=name, write_offset=10, data=DATA[10:], finish_write=True)

    def find_missing(channel):
        try:
            re_grpc.ContentAddressableStorageStub(channel).FindMissingBlobs(re_pb2.FindMissingBlobsRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details()
        return "OK", ""

    with running_bridge(config) as bridge:
        address = f"grpc://127.0.0.1:{bridge.port}"
        with open_channel(address, tokens["greedy"]) as greedy, open_channel(address, tokens["patient"]) as patient:
            stub = bs_grpc.ByteStreamStub(greedy)
            uploads = [stub.Write.future(slow_upload(i)) for i in range(2)]
            limits = bridge.security.limits
            wait_for(lambda: sum(limits.open_calls().values()) >= 2, "two uploads open")
            code, details = find_missing(greedy)
            assert code == "RESOURCE_EXHAUSTED"
            assert "limit 2" in details
            assert find_missing(patient) == ("OK", "")
            release.set()
            assert [u.result(timeout=60).committed_size for u in uploads] == [len(DATA), len(DATA)]
            assert find_missing(greedy) == ("OK", "")


def test_the_byte_budget_admits_one_large_upload_but_not_a_second_alongside():
    limits = ClientLimits(max_calls=0, max_bytes=100)
    assert limits.take_bytes("a", 150) is None  # alone, any size passes (else it could never)
    assert "limit 100" in limits.take_bytes("a", 1)
    assert limits.take_bytes("b", 60) is None  # another client has its own budget
    limits.give_bytes("a", 150)
    assert limits.take_bytes("a", 90) is None
    assert limits.take_bytes("a", 10) is None
    assert limits.take_bytes("a", 1) is not None
