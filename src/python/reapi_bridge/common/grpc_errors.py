"""Turns the core's BridgeErrors into gRPC statuses at the edge of each service method."""

from __future__ import annotations

import functools
import logging

import grpc

from reapi_bridge.common.errors import BridgeError

logger = logging.getLogger(__name__)


def _abort(context: grpc.ServicerContext, exc: BaseException, method: str):
    if isinstance(exc, BridgeError):
        context.abort(getattr(grpc.StatusCode, exc.status_name), str(exc))
    logger.exception("%s failed", method)
    context.abort(grpc.StatusCode.INTERNAL, f"{method}: unexpected {type(exc).__name__}: {exc}")


def unary(fn):
    """For unary and client-streaming methods."""

    @functools.wraps(fn)
    def wrapper(self, request, context):
        try:
            return fn(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.RpcError) or not isinstance(exc, Exception):
                raise
            _abort(context, exc, fn.__qualname__)

    return wrapper


def streaming(fn):
    """For server-streaming methods written as generators."""

    @functools.wraps(fn)
    def wrapper(self, request, context):
        try:
            yield from fn(self, request, context)
        except Exception as exc:
            if isinstance(exc, grpc.RpcError):
                raise
            _abort(context, exc, fn.__qualname__)

    return wrapper


def for_instance(fn):
    """For methods whose request names an instance (`instance_name`): the instance must be
    served (NOT_FOUND otherwise), and the method gets its InstanceConfig as `instance`. Goes
    under `unary` / `streaming`, which turn the error into a status."""

    @functools.wraps(fn)
    def wrapper(self, request, context):
        return fn(self, request, context, instance=self.instances.require(request.instance_name))

    return wrapper
