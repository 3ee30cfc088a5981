"""Every generated module imports, and a few wire-format facts hold."""

from __future__ import annotations

import importlib

import pytest

from reapi_bridge.protos import generate

MODULES = sorted(
    "reapi_bridge.protos." + ".".join(p.with_suffix("").parts)
    for p in generate.existing_generated(generate.package_dir())
    if p.suffix == ".py" and p.name != "__init__.py"
)


def test_expected_modules_exist() -> None:
    assert "reapi_bridge.protos.build.bazel.remote.execution.v2.remote_execution_pb2" in MODULES
    assert "reapi_bridge.protos.google.bytestream.bytestream_pb2_grpc" in MODULES
    assert "reapi_bridge.protos.google.devtools.remoteworkers.v1test2.bots_pb2_grpc" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_wire_facts() -> None:
    from google.protobuf.descriptor import FieldDescriptor

    from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
    from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs
    from reapi_bridge.protos.google.devtools.remoteworkers.v1test2 import bots_pb2

    def number(message: type, field: str) -> int:
        return message.DESCRIPTOR.fields_by_name[field].number

    assert number(re.Digest, "hash") == 1
    assert number(re.Digest, "size_bytes") == 2
    assert re.Digest.DESCRIPTOR.fields_by_name["size_bytes"].type == FieldDescriptor.TYPE_INT64
    assert number(re.ActionResult, "stdout_digest") == 6
    assert number(re.ActionResult, "output_symlinks") == 12
    assert number(re.ExecuteRequest, "skip_cache_lookup") == 3
    assert number(re.ExecuteRequest, "action_digest") == 6
    assert number(re.Command, "output_paths") == 7
    assert number(re.BatchReadBlobsResponse.Response, "compressor") == 4
    assert re.DigestFunction.Value.Value("SHA256") == 1
    assert re.ExecutionStage.Value.Value("COMPLETED") == 4
    assert number(bs.ReadResponse, "data") == 10
    assert number(bs.WriteRequest, "data") == 10
    assert number(bots_pb2.Lease, "payload") == 8
    assert bots_pb2.LeaseState.Value("COMPLETED") == 4

    services = {
        s.full_name: s
        for fd in (re.DESCRIPTOR, bs.DESCRIPTOR, bots_pb2.DESCRIPTOR)
        for s in fd.services_by_name.values()
    }
    assert {
        "build.bazel.remote.execution.v2.Execution",
        "build.bazel.remote.execution.v2.ActionCache",
        "build.bazel.remote.execution.v2.ContentAddressableStorage",
        "build.bazel.remote.execution.v2.Capabilities",
        "google.bytestream.ByteStream",
        "google.devtools.remoteworkers.v1test2.Bots",
    } <= set(services)
    get_tree = services["build.bazel.remote.execution.v2.ContentAddressableStorage"].methods_by_name[
        "GetTree"
    ]
    assert get_tree.server_streaming and not get_tree.client_streaming
    write = services["google.bytestream.ByteStream"].methods_by_name["Write"]
    assert write.client_streaming and not write.server_streaming
    execute = services["build.bazel.remote.execution.v2.Execution"].methods_by_name["Execute"]
    assert execute.output_type.full_name == "google.longrunning.Operation"


def test_shares_descriptor_pool_with_googleapis() -> None:
    # Our protos depend on the google.longrunning / google.rpc files by the names
    # googleapis-common-protos registers, so both load into one pool.
    from google.longrunning import operations_pb2
    from google.rpc import status_pb2

    from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re

    deps = {d.name for d in re.DESCRIPTOR.dependencies}
    assert operations_pb2.Operation.DESCRIPTOR.file in re.DESCRIPTOR.dependencies
    assert status_pb2.Status.DESCRIPTOR.file.name in deps

    response = re.ExecuteResponse(status=status_pb2.Status(code=5, message="nope"))
    op = operations_pb2.Operation(name="op", done=True)
    op.response.Pack(response)
    again = re.ExecuteResponse()
    assert operations_pb2.Operation.FromString(op.SerializeToString()).response.Unpack(again)
    assert again.status.code == 5


def test_round_trip() -> None:
    from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re

    digest = re.Digest(hash="a" * 64, size_bytes=3)
    result = re.ActionResult(exit_code=1, stdout_digest=digest)
    result.output_files.add(path="out/x", digest=digest, is_executable=True)
    data = result.SerializeToString()
    assert re.ActionResult.FromString(data) == result
    # Field 6 (stdout_digest), length-delimited: tag byte 0x32.
    assert b"\x32" in data
