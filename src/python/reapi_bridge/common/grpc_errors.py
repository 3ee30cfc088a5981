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


def requires(*permissions: str, instance=lambda request: request.instance_name):
    """The caller must hold one of `permissions` on the request's instance (checked by the
    service's `auth`, an Authorizer) before anything else, even before the instance is looked
    up: a caller without rights learns nothing about what is served. Goes under `unary` /
    `streaming`, which turn the refusal into UNAUTHENTICATED or PERMISSION_DENIED."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(self, request, context, **kwargs):
            self.auth.require_any(context, permissions, instance(request))
            return fn(self, request, context, **kwargs)

        return wrapper

    return decorate
