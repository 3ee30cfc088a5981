"""Small REAPI rules every service applies the same way."""

from __future__ import annotations

from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

SUPPORTED_DIGEST_FUNCTIONS = (re_pb2.DigestFunction.UNKNOWN, re_pb2.DigestFunction.SHA256)


def timeout_seconds(action) -> float:
    """The Action's timeout in seconds; 0 when it has none."""
    return action.timeout.seconds + action.timeout.nanos / 1e9 if action.HasField("timeout") else 0


def require_sha256(digest_function: int) -> None:
    """UNKNOWN (a client that predates the field) means SHA-256; anything else is refused."""
    if digest_function not in SUPPORTED_DIGEST_FUNCTIONS:
        raise InvalidArgument("only the SHA256 digest function is supported")


# What a bridge lease tells its executor besides the Action (Lease.requirements.configs): the
# client's action digest ("HASH/SIZE") and instance name, which an executor's signature names.
# The Action in the payload may differ from the client's bytes (the bridge fills in its default
# timeout), so its digest is not the one to sign.
LEASE_ACTION_DIGEST_CONFIG = "crossbuild.action-digest"
LEASE_INSTANCE_CONFIG = "crossbuild.instance"
