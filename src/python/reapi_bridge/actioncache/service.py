"""ActionCache service over ActionCacheInstance (see instance.py)."""

from __future__ import annotations

from reapi_bridge.actioncache.instance import ActionCacheInstance
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.grpc_errors import for_instance, unary
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc


class ActionCacheService(re_grpc.ActionCacheServicer):
    def __init__(self, action_cache: ActionCacheInstance, instances: InstanceRegistry) -> None:
        self.action_cache = action_cache
        self.instances = instances

    @unary
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
    @for_instance
    def UpdateActionResult(self, request, context, instance):
        self.action_cache.update(instance, request.action_digest, request.action_result)
        return request.action_result
