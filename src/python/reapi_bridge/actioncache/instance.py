"""GetActionResult and UpdateActionResult as a plain object over the action cache (no gRPC):
which writes an instance accepts, and which outputs are inlined into a result."""

from __future__ import annotations

from typing import Collection, Optional

from reapi_bridge.actioncache.store import ActionCache
from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import BridgeError, InvalidArgument, NotFound, PermissionDenied
from reapi_bridge.common.tree_validation import Violation, result_violation
from reapi_bridge.config import InstanceConfig
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

# Outputs up to this size in all are inlined when the client asks for it.
MAX_INLINE_BYTES = 1 << 20


def stored_result_violation(result: re_pb2.ActionResult, cas: ContentAddressableStorage) -> Optional[Violation]:
    """The first rule a result breaks (see tree_validation), its output directories' Trees
    read from the CAS where they are there. A Tree blob that is not a Tree is INVALID_ARGUMENT."""

    def tree(digest: BlobDigest) -> Optional[re_pb2.Tree]:
        try:
            data = cas.read_bytes(digest)
        except NotFound:
            return None
        try:
            return re_pb2.Tree.FromString(data)
        except Exception:
            raise InvalidArgument(f"output directory tree {digest} is not a valid Tree")

    return result_violation(result, tree)


class ActionCacheInstance:
    def __init__(self, action_cache: ActionCache) -> None:
        self.action_cache = action_cache

    def get(
        self,
        instance: InstanceConfig,
        action: BlobDigest,
        *,
        inline_stdout: bool = False,
        inline_stderr: bool = False,
        inline_output_files: Collection[str] = (),
    ) -> re_pb2.ActionResult:
        result = self.action_cache.get(instance.name, action)
        if result is None:
            raise NotFound(f"no complete result is cached for action {action}")
        self._inline(result, inline_stdout, inline_stderr, set(inline_output_files))
        return result

    def update(
        self, instance: InstanceConfig, action: re_pb2.Digest, result: re_pb2.ActionResult, writer: str = ""
    ) -> None:
        """A client's write: refused before anything else is looked at where the instance
        does not accept them, and refused (INVALID_ARGUMENT, naming the path) for a result
        whose output paths, symlink targets or output Trees break tree_validation's rules."""
        if not instance.allow_client_writes:
            raise PermissionDenied(
                f"instance {instance.name!r} does not accept results from clients "
                "(allow_client_writes = false)"
            )
        digest = BlobDigest.from_proto(action)
        refused = stored_result_violation(result, self.action_cache.cas)
        if refused is not None:
            raise InvalidArgument(f"the result for action {digest} is refused: {refused}")
        self.action_cache.put(instance.name, digest, result, writer=writer)

    def _inline(self, result: re_pb2.ActionResult, stdout: bool, stderr: bool, files: set) -> None:
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

        if stdout and result.HasField("stdout_digest") and not result.stdout_raw:
            data = fetch(result.stdout_digest)
            if data is not None:
                result.stdout_raw = data
        if stderr and result.HasField("stderr_digest") and not result.stderr_raw:
            data = fetch(result.stderr_digest)
            if data is not None:
                result.stderr_raw = data
        for out in result.output_files:
            if out.path in files and not out.contents:
                data = fetch(out.digest)
                if data is not None:
                    out.contents = data
