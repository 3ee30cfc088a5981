"""Capabilities service: what this bridge supports, per instance."""

from __future__ import annotations

from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.build.bazel.semver import semver_pb2
from reapi_bridge.common.grpc_errors import for_instance, requires, unary
from reapi_bridge.common.permissions import AC_WRITE, PERMISSIONS


class CapabilitiesService(re_grpc.CapabilitiesServicer):
    def __init__(self, instances: InstanceRegistry, max_batch_bytes: int, auth, execution_enabled: bool) -> None:
        self.auth = auth
        self.instances = instances
        self.max_batch_bytes = max_batch_bytes
        self.execution_enabled = execution_enabled

    @unary
    @requires(*PERMISSIONS)
    @for_instance
    def GetCapabilities(self, request, context, instance):
        # update_enabled is for this caller: Bazel uploads its local results only when it is set.
        caller = self.auth.caller(context)
        may_write = instance.allow_client_writes and caller.grant.allows(AC_WRITE, instance.name)
        sha256 = re_pb2.DigestFunction.SHA256
        return re_pb2.ServerCapabilities(
            cache_capabilities=re_pb2.CacheCapabilities(
                digest_functions=[sha256],
                action_cache_update_capabilities=re_pb2.ActionCacheUpdateCapabilities(
                    update_enabled=may_write
                ),
                max_batch_total_size_bytes=self.max_batch_bytes,
                symlink_absolute_path_strategy=re_pb2.SymlinkAbsolutePathStrategy.ALLOWED,
            ),
            execution_capabilities=re_pb2.ExecutionCapabilities(
                digest_function=sha256,
                exec_enabled=self.execution_enabled,
                digest_functions=[sha256],
            ),
            low_api_version=semver_pb2.SemVer(major=2, minor=0),
            high_api_version=semver_pb2.SemVer(major=2, minor=3),
        )
