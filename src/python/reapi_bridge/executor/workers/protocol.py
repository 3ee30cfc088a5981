"""WorkRequest out, WorkResponse in: the two framings of the persistent-worker protocol.

- `proto`: each message preceded by its length as a base-128 varint;
- `json`: one JSON object per line, lowerCamelCase field names; unknown fields are ignored and
  absent ones take their defaults.

A reader raises WorkerProtocolError for anything that is not a well-formed response (garbage,
an oversized frame, a truncated message), and EOFError when the worker closed its stdout.
"""

from __future__ import annotations

import os
import select

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from reapi_bridge.protos.blaze.worker.worker_protocol_pb2 import WorkRequest, WorkResponse

# A response larger than this is refused (a worker writing garbage would otherwise make the
# reader allocate whatever its first bytes say).
MAX_MESSAGE_BYTES = 64 << 20
# A worker writes each response at once: once its first byte arrived, the rest must follow
# within this long, or what came was not a response (garbage that looked like a length).
FRAME_SECONDS = 10.0


class WorkerProtocolError(Exception):
    """The worker wrote something that is not a well-formed WorkResponse."""


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_request(request: WorkRequest, protocol: str) -> bytes:
    if protocol == "json":
        # indent=None writes one line; json.dumps escapes any newline inside strings.
        return json_format.MessageToJson(request, indent=None).encode() + b"\n"
    data = request.SerializeToString()
    return encode_varint(len(data)) + data


class PipeReader:
    """Reads a worker's stdout (a pipe's file descriptor). Waiting for a response's first byte
    has no limit (a request may take long); the rest of it must arrive within `frame_seconds`."""

    def __init__(self, fd: int, frame_seconds: float = FRAME_SECONDS) -> None:
        self.fd = fd
        self.frame_seconds = frame_seconds
        self._buffer = b""
        self._in_frame = False

    def begin(self) -> None:
        """The next byte starts a new response."""
        self._in_frame = False

    def _fill(self) -> bool:
        """Reads what the pipe has (at least a byte); False at end of file."""
        if self._in_frame:
            ready, _, _ = select.select([self.fd], [], [], self.frame_seconds)
            if not ready:
                raise WorkerProtocolError(
                    f"the worker started a response but wrote nothing more for {self.frame_seconds:g}s: "
                    f"not a response ({self._buffer[:60]!r})"
                )
        data = os.read(self.fd, 1 << 16)
        if not data:
            return False
        self._in_frame = True
        self._buffer += data
        return True

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (at least one); b"" at end of file."""
        if not self._buffer and not self._fill():
            return b""
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readline(self, limit: int) -> bytes:
        while b"\n" not in self._buffer and len(self._buffer) <= limit:
            if not self._fill():
                break
        end = self._buffer.find(b"\n")
        cut = end + 1 if end >= 0 else min(len(self._buffer), limit + 1)
        line, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return line


def _read_varint(stream: PipeReader) -> int:
    value, shift = 0, 0
    for count in range(10):
        byte = stream.read(1)
        if not byte:
            if count == 0:
                raise EOFError("the worker closed its stdout")
            raise WorkerProtocolError("the worker's stdout ended inside a length prefix")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
    raise WorkerProtocolError("a length prefix longer than 10 bytes: not the proto framing")


def _read_exactly(stream: PipeReader, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise WorkerProtocolError(f"the worker's stdout ended {remaining} bytes into a {size}-byte response")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_response(stream: PipeReader, protocol: str) -> WorkResponse:
    """The next WorkResponse on the worker's stdout (blocking)."""
    stream.begin()
    if protocol == "json":
        line = stream.readline(MAX_MESSAGE_BYTES + 1)
        if not line:
            raise EOFError("the worker closed its stdout")
        if len(line) > MAX_MESSAGE_BYTES or not line.endswith(b"\n"):
            raise WorkerProtocolError("a response line that never ends (or is over the size limit)")
        try:
            return json_format.Parse(line.decode("utf-8"), WorkResponse(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise WorkerProtocolError(f"not a JSON WorkResponse: {line[:120]!r}: {exc}") from None
    size = _read_varint(stream)
    if size > MAX_MESSAGE_BYTES:
        raise WorkerProtocolError(f"a response of {size} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    data = _read_exactly(stream, size)
    response = WorkResponse()
    try:
        response.ParseFromString(data)
    except DecodeError as exc:
        raise WorkerProtocolError(f"not a WorkResponse ({size} bytes: {data[:60]!r}): {exc}") from None
    return response
