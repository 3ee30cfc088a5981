"""ActionCache service over ActionCacheInstance (see instance.py)."""

from __future__ import annotations

from reapi_bridge.actioncache.instance import ActionCacheInstance
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.grpc_errors import for_instance, requires, unary
from reapi_bridge.common.permissions import AC_WRITE, READ
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc


class ActionCacheService(re_grpc.ActionCacheServicer):
    def __init__(self, action_cache: ActionCacheInstance, instances: InstanceRegistry, auth) -> None:
        self.auth = auth
        self.action_cache = action_cache
        self.instances = instances

    @unary
    @requires(READ)
    @for_instance
    def GetActionResult(self, request, context, instance):
        return self.action_cache.get(
            instance,
            BlobDigest.from_proto(request.action_digest),
            inline_stdout=request.inline_stdout,
            inline_stderr=request.inline_stderr,
            inline_output_files=request.inline_output_files,
        )

    @unary
    @requires(AC_WRITE)
    @for_instance
    def UpdateActionResult(self, request, context, instance):
        caller = self.auth.caller(context)
        self.action_cache.update(instance, request.action_digest, request.action_result, writer=caller.describe())
        return request.action_result
