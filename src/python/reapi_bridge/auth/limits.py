"""Per-client limits, so one client cannot take every server thread or fill memory: calls
open at once, and upload bytes in flight (BatchUpdateBlobs requests, ByteStream Write chunks).
A call over a limit is refused with RESOURCE_EXHAUSTED, which Pants and Bazel retry with
backoff.

A client is its bearer token's id, else its certificate's common name, else its address.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable, Dict, Optional

import grpc

from reapi_bridge.auth.authorizer import bearer_of, certificate_name_of

_UPLOADS = {
    "/build.bazel.remote.execution.v2.ContentAddressableStorage/BatchUpdateBlobs",
    "/google.bytestream.ByteStream/Write",
}


def client_key(context) -> str:
    bearer = bearer_of(context)
    if bearer is not None:
        parts = bearer.split(".")
        return f"token:{parts[1]}" if len(parts) == 3 else "token:malformed"
    name = certificate_name_of(context)
    if name is not None:
        return f"certificate:{name}"
    peer = context.peer() or ""
    return "address:" + peer.rsplit(":", 1)[0]


class ClientLimits:
    def __init__(self, max_calls: int, max_bytes: int) -> None:
        self.max_calls = max_calls
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._calls: Dict[str, int] = defaultdict(int)
        self._bytes: Dict[str, int] = defaultdict(int)

    def enter(self, client: str) -> Optional[str]:
        with self._lock:
            if self.max_calls and self._calls[client] >= self.max_calls:
                return f"{client} already has {self._calls[client]} calls open (limit {self.max_calls}); retry later"
            self._calls[client] += 1
        return None

    def leave(self, client: str) -> None:
        with self._lock:
            self._calls[client] -= 1
            if self._calls[client] <= 0:
                del self._calls[client]

    def take_bytes(self, client: str, n: int) -> Optional[str]:
        with self._lock:
            if self.max_bytes and self._bytes[client] + n > self.max_bytes and self._bytes[client] > 0:
                return f"{client} already has {self._bytes[client]} upload bytes in flight (limit {self.max_bytes}); retry later"
            self._bytes[client] += n
        return None

    def give_bytes(self, client: str, n: int) -> None:
        with self._lock:
            self._bytes[client] -= n
            if self._bytes[client] <= 0:
                del self._bytes[client]

    def open_calls(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._calls)


class LimitInterceptor(grpc.ServerInterceptor):
    def __init__(self, limits: ClientLimits) -> None:
        self.limits = limits

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        upload = handler_call_details.method in _UPLOADS
        limits = self.limits

        def guard(behavior: Callable, streaming_response: bool, streaming_request: bool):
            def call(request_or_iterator, context):
                client = client_key(context)
                why = limits.enter(client)
                if why:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)
                held = [0]

                def take(n: int) -> None:
                    why = limits.take_bytes(client, n)
                    if why:
                        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)
                    held[0] += n

                def release_chunk(n: int) -> None:
                    limits.give_bytes(client, n)
                    held[0] -= n

                def counted(iterator):
                    for message in iterator:
                        n = len(message.data)
                        take(n)
                        yield message
                        release_chunk(n)

                def finish() -> None:
                    if held[0]:
                        limits.give_bytes(client, held[0])
                    limits.leave(client)

                try:
                    arg = request_or_iterator
                    if upload and streaming_request:
                        arg = counted(request_or_iterator)
                    elif upload:
                        take(request_or_iterator.ByteSize())
                    if streaming_response:
                        return _finally(behavior(arg, context), finish)
                    result = behavior(arg, context)
                except BaseException:
                    finish()
                    raise
                finish()
                return result

            return call

        return _rewrap(handler, guard)


def _finally(iterator, done: Callable[[], None]):
    try:
        yield from iterator
    finally:
        done()


def _rewrap(handler, guard):
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary, False, False),
                                                   handler.request_deserializer, handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream, True, False),
                                                    handler.request_deserializer, handler.response_serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary, False, True),
                                                    handler.request_deserializer, handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream, True, True),
                                                 handler.request_deserializer, handler.response_serializer)
