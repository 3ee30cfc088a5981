"""Capabilities service: what this bridge supports, per instance."""

from __future__ import annotations

from reapi_bridge.common.instances import InstanceRegistry
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.build.bazel.semver import semver_pb2
from reapi_bridge.common.grpc_errors import for_instance, unary


class CapabilitiesService(re_grpc.CapabilitiesServicer):
    def __init__(self, instances: InstanceRegistry, max_batch_bytes: int, execution_enabled: bool) -> None:
        self.instances = instances
        self.max_batch_bytes = max_batch_bytes
        self.execution_enabled = execution_enabled

    @unary
    @for_instance
    def GetCapabilities(self, request, context, instance):
        sha256 = re_pb2.DigestFunction.SHA256
        return re_pb2.ServerCapabilities(
            cache_capabilities=re_pb2.CacheCapabilities(
                digest_functions=[sha256],
                action_cache_update_capabilities=re_pb2.ActionCacheUpdateCapabilities(
                    update_enabled=instance.allow_client_writes
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
