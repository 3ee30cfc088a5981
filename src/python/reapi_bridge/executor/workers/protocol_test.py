"""The two framings, and what counts as a broken worker, over real pipes."""

import os
import threading

import pytest

from reapi_bridge.executor.workers.protocol import (
    MAX_MESSAGE_BYTES,
    PipeReader,
    WorkerProtocolError,
    encode_request,
    encode_varint,
    read_response,
)
from reapi_bridge.protos.blaze.worker.worker_protocol_pb2 import Input, WorkRequest, WorkResponse


def pipe_with(data: bytes, close: bool = True):
    r, w = os.pipe()
    os.write(w, data)
    if close:
        os.close(w)
    return PipeReader(r, frame_seconds=0.3), w


def test_proto_request_uses_the_public_field_numbers():
    request = WorkRequest(arguments=["a"], inputs=[Input(path="p", digest=b"d")], request_id=5, sandbox_dir="s")
    data = encode_request(request, "proto")
    assert data[0] == len(data) - 1  # varint length prefix, then the message
    body = data[1:]
    # field 1 (arguments, length-delimited) comes first: tag (1 << 3) | 2
    assert body[0] == 0x0A and body.index(bytes([(3 << 3) | 0, 5])) > 0 and bytes([(6 << 3) | 2, 1]) + b"s" in body


def test_json_request_is_one_line_in_lower_camel_case():
    line = encode_request(WorkRequest(arguments=["x\ny"], request_id=3, sandbox_dir="d"), "json")
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert b'"requestId": 3' in line or b'"requestId":3' in line
    assert b'"sandboxDir"' in line


@pytest.mark.parametrize("protocol", ["proto", "json"])
def test_responses_round_trip(protocol):
    response = WorkResponse(exit_code=2, output="out\n", request_id=7, was_cancelled=True)
    if protocol == "json":
        data = b'{"exitCode": 2, "output": "out\\n", "requestId": 7, "wasCancelled": true, "future": 1}\n'
    else:
        body = response.SerializeToString()
        data = encode_varint(len(body)) + body
    reader, _ = pipe_with(data * 2)
    assert read_response(reader, protocol) == response
    assert read_response(reader, protocol) == response
    with pytest.raises(EOFError):
        read_response(reader, protocol)


def test_a_length_that_never_completes_is_garbage_not_a_hang():
    reader, w = pipe_with(b"garbage\n", close=False)  # 'g' reads as a 103-byte length
    with pytest.raises(WorkerProtocolError, match="wrote nothing more"):
        read_response(reader, "proto")
    os.close(w)


def test_an_oversized_frame_is_refused():
    reader, _ = pipe_with(encode_varint(MAX_MESSAGE_BYTES + 1) + b"x")
    with pytest.raises(WorkerProtocolError, match="over the"):
        read_response(reader, "proto")


def test_a_truncated_message_is_refused():
    reader, _ = pipe_with(encode_varint(10) + b"abc")
    with pytest.raises(WorkerProtocolError, match="ended 7 bytes into"):
        read_response(reader, "proto")


def test_json_garbage_is_refused():
    reader, _ = pipe_with(b"hello world\n")
    with pytest.raises(WorkerProtocolError, match="not a JSON WorkResponse"):
        read_response(reader, "json")


def test_waiting_for_a_slow_response_has_no_limit():
    r, w = os.pipe()
    reader = PipeReader(r, frame_seconds=0.1)
    body = WorkResponse(output="late").SerializeToString()
    timer = threading.Timer(0.5, lambda: os.write(w, encode_varint(len(body)) + body))
    timer.start()
    assert read_response(reader, "proto").output == "late"
    os.close(w)
