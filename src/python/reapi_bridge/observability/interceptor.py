"""Counts and times every gRPC call for the metrics: per service, method and status code.
Streams are timed until their last message."""

from __future__ import annotations

import time

import grpc

from reapi_bridge.observability.metrics import BridgeMetrics


def _names(method: str):
    # "/build.bazel.remote.execution.v2.ContentAddressableStorage/FindMissingBlobs"
    service, _, name = method.rpartition("/")
    return service.rsplit(".", 1)[-1].lstrip("/"), name


class MetricsInterceptor(grpc.ServerInterceptor):
    """gRPC runs intercept_service for every call, so nothing is looked up twice: each
    method's histogram child and counter children (by status code) are bound once, and the
    wrapped handler is reused while the continuation returns the same handler (the limits'
    interceptor, with authentication on, returns a new one per call)."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self.metrics = metrics
        self._children: dict = {}  # method -> (histogram child, {status code name: counter child})
        self._wrapped: dict = {}  # method -> (handler, wrapped handler)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, full_method: str, handler):
        service, method = _names(full_method)
        counts = self.metrics.rpcs
        if full_method not in self._children:
            self._children[full_method] = (self.metrics.rpc_seconds.labels(service, method), {})
        seconds, by_code = self._children[full_method]

        def done(context, start: float, failed: bool) -> None:
            code = context.code() if hasattr(context, "code") else None
            name = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
            counter = by_code.get(name)
            if counter is None:
                counter = by_code[name] = counts.labels(service, method, name)
            counter.inc()
            seconds.observe(time.perf_counter() - start)

        def unary(behavior):
            def call(request, context):
                start = time.perf_counter()
                failed = True
                try:
                    response = behavior(request, context)
                    failed = False
                    return response
                finally:
                    done(context, start, failed)

            return call

        def streaming(behavior):
            def call(request, context):
                start = time.perf_counter()
                failed = True
                try:
                    yield from behavior(request, context)
                    failed = False
                finally:
                    done(context, start, failed)

            return call

        wrap = {
            "unary_unary": (grpc.unary_unary_rpc_method_handler, unary),
            "unary_stream": (grpc.unary_stream_rpc_method_handler, streaming),
            "stream_unary": (grpc.stream_unary_rpc_method_handler, unary),
            "stream_stream": (grpc.stream_stream_rpc_method_handler, streaming),
        }
        for kind, (make, wrapper) in wrap.items():
            behavior = getattr(handler, kind)
            if behavior:
                return make(wrapper(behavior), handler.request_deserializer, handler.response_serializer)
        return handler
