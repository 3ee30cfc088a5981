"""Each service against real storage, through a real gRPC server on a loopback port."""

import os
import threading
import uuid

import grpc
import pytest
from google.rpc import code_pb2

from reapi_bridge.config import InstanceConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge_testing.bridge import client_for, digest_of, make_test_config, running_bridge

INSTANCES = (InstanceConfig(""), InstanceConfig("ci/main", allow_client_writes=False))


@pytest.fixture
def bridge_config(tmp_path):
    return make_test_config(tmp_path / "state", INSTANCES)


def status_of(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def test_capabilities(client):
    caps = client.capabilities.GetCapabilities(re_pb2.GetCapabilitiesRequest())
    assert list(caps.cache_capabilities.digest_functions) == [re_pb2.DigestFunction.SHA256]
    assert caps.cache_capabilities.max_batch_total_size_bytes == 4 << 20
    assert caps.cache_capabilities.action_cache_update_capabilities.update_enabled
    assert caps.execution_capabilities.exec_enabled
    ci = client.capabilities.GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name="ci/main"))
    assert not ci.cache_capabilities.action_cache_update_capabilities.update_enabled


def test_unknown_instance_is_not_found(client):
    with pytest.raises(grpc.RpcError) as e:
        client.cas.FindMissingBlobs(re_pb2.FindMissingBlobsRequest(instance_name="nope"))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND
    assert "nope" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        b"".join(r.data for r in client.bytestream.Read(
            bs_pb2.ReadRequest(resource_name=f"nope/blobs/{'a' * 64}/1")))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_find_missing_and_batches(client):
    present = [client.upload(os.urandom(100 + i)) for i in range(10)]
    absent = [digest_of(os.urandom(50)) for _ in range(10)]
    empty = digest_of(b"")
    response = client.cas.FindMissingBlobs(
        re_pb2.FindMissingBlobsRequest(blob_digests=present + absent + [empty])
    )
    assert list(response.missing_blob_digests) == absent
    read = client.cas.BatchReadBlobs(re_pb2.BatchReadBlobsRequest(digests=[present[0], absent[0]]))
    assert read.responses[0].status.code == code_pb2.OK
    assert digest_of(read.responses[0].data) == present[0]
    assert read.responses[1].status.code == code_pb2.NOT_FOUND


def test_malformed_digest_is_invalid_argument(client):
    with pytest.raises(grpc.RpcError) as e:
        client.cas.FindMissingBlobs(
            re_pb2.FindMissingBlobsRequest(blob_digests=[re_pb2.Digest(hash="xyz", size_bytes=3)])
        )
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_update_with_wrong_data_stores_nothing(client, bridge):
    good = b"good data"
    wrong_hash = digest_of(b"other data")
    wrong_size = re_pb2.Digest(hash=digest_of(good).hash, size_bytes=len(good) + 1)
    response = client.cas.BatchUpdateBlobs(
        re_pb2.BatchUpdateBlobsRequest(
            requests=[
                re_pb2.BatchUpdateBlobsRequest.Request(digest=wrong_hash, data=good),
                re_pb2.BatchUpdateBlobsRequest.Request(digest=wrong_size, data=good),
                re_pb2.BatchUpdateBlobsRequest.Request(digest=digest_of(good), data=good),
            ]
        )
    )
    codes = [r.status.code for r in response.responses]
    assert codes == [code_pb2.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, code_pb2.OK]
    assert bridge.cas.stats().blob_count == 1


def test_batch_over_advertised_max(client):
    data = os.urandom(3 << 20)
    reqs = [
        re_pb2.BatchUpdateBlobsRequest.Request(digest=digest_of(data), data=data),
        re_pb2.BatchUpdateBlobsRequest.Request(digest=digest_of(data[1:]), data=data[1:]),
    ]
    with pytest.raises(grpc.RpcError) as e:
        client.cas.BatchUpdateBlobs(re_pb2.BatchUpdateBlobsRequest(requests=reqs))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "ByteStream" in e.value.details()


def test_get_tree_with_paging(client):
    leaf_file = client.upload(b"leaf")
    leaves = []
    for i in range(5):
        d = re_pb2.Directory(files=[re_pb2.FileNode(name=f"f{i}", digest=leaf_file)])
        leaves.append(client.upload(d.SerializeToString()))
    root = re_pb2.Directory(
        directories=[re_pb2.DirectoryNode(name=f"d{i}", digest=leaves[i]) for i in range(5)]
    )
    root_digest = client.upload(root.SerializeToString())
    pages, token = [], ""
    while True:
        responses = list(client.cas.GetTree(
            re_pb2.GetTreeRequest(root_digest=root_digest, page_size=2, page_token=token)
        ))
        pages.extend(responses)
        token = responses[-1].next_page_token
        if not token:
            break
        pages_seen = len(pages)
        assert pages_seen < 10
    dirs = [d for p in pages for d in p.directories]
    assert len(dirs) == 6 and dirs[0] == root
    assert all(len(p.directories) <= 2 for p in pages)
    with pytest.raises(grpc.RpcError) as e:
        list(client.cas.GetTree(re_pb2.GetTreeRequest(root_digest=digest_of(b"not there"))))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_bytestream_roundtrip_offsets_and_limits(client):
    data = os.urandom((5 << 20) + 123)
    digest = client.stream_upload(data, chunk=256 << 10)
    assert client.stream_read(digest) == data
    assert client.stream_read(digest, offset=1000, limit=5000) == data[1000:6000]
    assert client.stream_read(digest, offset=len(data)) == b""
    for offset in (-1, len(data) + 1):
        with pytest.raises(grpc.RpcError) as e:
            client.stream_read(digest, offset=offset)
        assert status_of(e) == grpc.StatusCode.OUT_OF_RANGE
    with pytest.raises(grpc.RpcError) as e:
        client.stream_read(digest, limit=-5)
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        client.stream_read(digest_of(b"absent"))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "name",
    ["", "blobs", "blobs/abc/3", f"blobs/{'a' * 64}/-1", f"blobs/{'A' * 64}/1", f"blobs/{'a' * 64}/x",
     f"compressed-blobs/zstd/{'a' * 64}/1"],
)
def test_malformed_read_names(client, name):
    with pytest.raises(grpc.RpcError) as e:
        list(client.bytestream.Read(bs_pb2.ReadRequest(resource_name=name)))
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT


def _write(client, requests):
    return client.bytestream.Write(iter(requests))


def test_write_wrong_hash_or_size_stores_nothing(client, bridge):
    data = b"x" * 1000
    for digest in (digest_of(b"y" * 1000), re_pb2.Digest(hash=digest_of(data).hash, size_bytes=999)):
        name = client.write_resource(digest)
        with pytest.raises(grpc.RpcError) as e:
            _write(client, [bs_pb2.WriteRequest(resource_name=name, data=data, finish_write=True)])
        assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert bridge.cas.stats().blob_count == 0
    assert not list((bridge.paths.cas / "uploads").iterdir())


def test_write_past_declared_size(client, bridge):
    digest = digest_of(b"12345")
    name = client.write_resource(digest)
    with pytest.raises(grpc.RpcError) as e:
        _write(client, [
            bs_pb2.WriteRequest(resource_name=name, data=b"1234"),
            bs_pb2.WriteRequest(write_offset=4, data=b"56", finish_write=True),
        ])
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert bridge.cas.stats().blob_count == 0


@pytest.mark.parametrize("name", ["uploads/x/blobs/abc/1", f"uploads/bad id/blobs/{'a' * 64}/1", "blobs/x/1"])
def test_malformed_write_names(client, name):
    with pytest.raises(grpc.RpcError) as e:
        _write(client, [bs_pb2.WriteRequest(resource_name=name, data=b"a", finish_write=True)])
    assert status_of(e) == grpc.StatusCode.INVALID_ARGUMENT


def test_disconnect_mid_upload_then_resume(client, bridge):
    data = os.urandom(3 << 20)
    digest = digest_of(data)
    name = client.write_resource(digest, upload_id=str(uuid.uuid4()))
    sent_two = threading.Event()
    never = threading.Event()

    def first_attempt():
        yield bs_pb2.WriteRequest(resource_name=name, write_offset=0, data=data[: 1 << 20])
        yield bs_pb2.WriteRequest(write_offset=1 << 20, data=data[1 << 20 : 2 << 20])
        sent_two.set()
        never.wait()  # the client "hangs" and is then cancelled

    future = client.bytestream.Write.future(first_attempt())
    sent_two.wait()

    def committed():
        try:
            return client.bytestream.QueryWriteStatus(
                bs_pb2.QueryWriteStatusRequest(resource_name=name)
            ).committed_size
        except grpc.RpcError:
            return -1

    from reapi_bridge_testing.bridge import wait_until

    assert wait_until(lambda: committed() == 2 << 20)
    future.cancel()
    never.set()
    # Nothing partial is visible as a blob.
    missing = client.cas.FindMissingBlobs(re_pb2.FindMissingBlobsRequest(blob_digests=[digest]))
    assert list(missing.missing_blob_digests) == [digest]
    assert wait_until(lambda: not bridge.cas._uploads_in_progress)
    status = client.bytestream.QueryWriteStatus(bs_pb2.QueryWriteStatusRequest(resource_name=name))
    assert (status.committed_size, status.complete) == (2 << 20, False)
    response = _write(client, [
        bs_pb2.WriteRequest(resource_name=name, write_offset=2 << 20, data=data[2 << 20 :], finish_write=True)
    ])
    assert response.committed_size == len(data)
    assert client.stream_read(digest) == data
    done = client.bytestream.QueryWriteStatus(bs_pb2.QueryWriteStatusRequest(resource_name=name))
    assert done.complete


def test_query_write_status_unknown_upload(client):
    name = client.write_resource(digest_of(b"never sent"))
    with pytest.raises(grpc.RpcError) as e:
        client.bytestream.QueryWriteStatus(bs_pb2.QueryWriteStatusRequest(resource_name=name))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_two_clients_upload_same_blob_at_once(client, bridge):
    data = os.urandom(4 << 20)
    results, errors = [], []

    def upload():
        try:
            results.append(client.stream_upload(data, chunk=64 << 10))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    assert bridge.cas.stats().blob_count == 1
    assert client.stream_read(results[0]) == data


def _action_result(client, with_missing=False):
    out = client.upload(b"output file")
    stdout = client.upload(b"stdout text")
    tree = re_pb2.Tree(root=re_pb2.Directory(files=[re_pb2.FileNode(name="a", digest=out)]))
    tree_digest = client.upload(tree.SerializeToString())
    result = re_pb2.ActionResult(
        output_files=[re_pb2.OutputFile(path="out.txt", digest=out)],
        output_directories=[re_pb2.OutputDirectory(path="dir", tree_digest=tree_digest)],
        stdout_digest=stdout,
        exit_code=0,
    )
    if with_missing:
        result.stderr_digest.CopyFrom(digest_of(b"stderr that was never uploaded"))
    return result


def test_action_cache_roundtrip_and_inlining(client):
    action = digest_of(b"action 1")
    result = _action_result(client)
    client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=result))
    got = client.ac.GetActionResult(
        re_pb2.GetActionResultRequest(action_digest=action, inline_stdout=True, inline_output_files=["out.txt"])
    )
    assert got.stdout_raw == b"stdout text"
    assert got.output_files[0].contents == b"output file"
    with pytest.raises(grpc.RpcError) as e:
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=digest_of(b"other")))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_action_cache_hides_results_with_missing_blobs(client):
    action = digest_of(b"action 2")
    client.ac.UpdateActionResult(
        re_pb2.UpdateActionResultRequest(action_digest=action, action_result=_action_result(client, True))
    )
    with pytest.raises(grpc.RpcError) as e:
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_action_cache_hides_results_whose_tree_contents_were_lost(client, bridge):
    action = digest_of(b"action 3")
    result = _action_result(client)
    client.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(action_digest=action, action_result=result))
    client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action))
    # Losing the file that only the tree names turns the hit into a miss.
    from reapi_bridge.common.digests import BlobDigest

    bridge.cas._forget(BlobDigest.from_proto(result.output_files[0].digest).hash)
    with pytest.raises(grpc.RpcError) as e:
        client.ac.GetActionResult(re_pb2.GetActionResultRequest(action_digest=action))
    assert status_of(e) == grpc.StatusCode.NOT_FOUND


def test_read_only_instance_refuses_client_writes(bridge):
    with client_for(f"127.0.0.1:{bridge.port}", instance="ci/main") as ci:
        with pytest.raises(grpc.RpcError) as e:
            ci.ac.UpdateActionResult(re_pb2.UpdateActionResultRequest(
                instance_name="ci/main", action_digest=digest_of(b"a"), action_result=re_pb2.ActionResult()))
        assert status_of(e) == grpc.StatusCode.PERMISSION_DENIED
        # ByteStream with an instance prefix works on the read-only instance for blobs.
        digest = ci.stream_upload(b"instance blob")
        assert ci.stream_read(digest) == b"instance blob"
