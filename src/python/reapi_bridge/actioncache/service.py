"""ActionCache service: results by action digest, writes gated per instance."""

from __future__ import annotations

from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import BridgeError, NotFound, PermissionDenied
from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.common.grpc_errors import for_instance, unary

# Outputs up to this size are inlined when the client asks for it.
MAX_INLINE_BYTES = 1 << 20


class ActionCacheService(re_grpc.ActionCacheServicer):
    def __init__(self, action_cache: ActionCache, instances: InstanceRegistry) -> None:
        self.action_cache = action_cache
        self.instances = instances

    @unary
    @for_instance
    def GetActionResult(self, request, context, instance):
        action = BlobDigest.from_proto(request.action_digest)
        result = self.action_cache.get(request.instance_name, action)
        if result is None:
            raise NotFound(f"no complete result is cached for action {action}")
        self._inline(result, request)
        return result

    @unary
    @for_instance
    def UpdateActionResult(self, request, context, instance):
        if not instance.allow_client_writes:
            raise PermissionDenied(
                f"instance {instance.name!r} does not accept results from clients "
                "(allow_client_writes = false)"
            )
        action = BlobDigest.from_proto(request.action_digest)
        self.action_cache.put(request.instance_name, action, request.action_result)
        return request.action_result

    def _inline(self, result: re_pb2.ActionResult, request) -> None:
        cas = self.action_cache.cas
        budget = MAX_INLINE_BYTES

        def fetch(digest_proto):
            nonlocal budget
            if digest_proto.size_bytes > budget:
                return None
            try:
                data = cas.read_bytes(BlobDigest.from_proto(digest_proto))
            except BridgeError:
                return None
            budget -= len(data)
            return data

        if request.inline_stdout and result.HasField("stdout_digest") and not result.stdout_raw:
            data = fetch(result.stdout_digest)
            if data is not None:
                result.stdout_raw = data
        if request.inline_stderr and result.HasField("stderr_digest") and not result.stderr_raw:
            data = fetch(result.stderr_digest)
            if data is not None:
                result.stderr_raw = data
        wanted = set(request.inline_output_files)
        for out in result.output_files:
            if out.path in wanted and not out.contents:
                data = fetch(out.digest)
                if data is not None:
                    out.contents = data
