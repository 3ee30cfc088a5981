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
    def __init__(self, metrics: BridgeMetrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        service, method = _names(handler_call_details.method)
        counts, seconds = self.metrics.rpcs, self.metrics.rpc_seconds.labels(service, method)

        def done(context, start: float, failed: bool) -> None:
            code = context.code() if hasattr(context, "code") else None
            name = code.name if isinstance(code, grpc.StatusCode) else ("UNKNOWN" if failed else "OK")
            counts.labels(service, method, name).inc()
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
