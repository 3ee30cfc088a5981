"""Errors raised by the bridge's plain-Python core, each tied to the gRPC status it maps to.

Storage and scheduling code raise these; the gRPC adapters turn them into statuses, so the
core never imports grpc.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base class; `status_name` is the name of a grpc.StatusCode member."""

    status_name = "INTERNAL"


class InvalidArgument(BridgeError):
    status_name = "INVALID_ARGUMENT"


class NotFound(BridgeError):
    status_name = "NOT_FOUND"


class OutOfRange(BridgeError):
    status_name = "OUT_OF_RANGE"


class ResourceExhausted(BridgeError):
    status_name = "RESOURCE_EXHAUSTED"


class PermissionDenied(BridgeError):
    status_name = "PERMISSION_DENIED"


class Aborted(BridgeError):
    status_name = "ABORTED"


class FailedPrecondition(BridgeError):
    status_name = "FAILED_PRECONDITION"


class StorageFailure(BridgeError):
    """Writing to the state directory failed (disk full, I/O error); nothing was stored."""

    status_name = "INTERNAL"

    def __init__(self, message: str, *, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full
        if disk_full:
            self.status_name = "RESOURCE_EXHAUSTED"


class Unauthenticated(BridgeError):
    """The call carried no credential where one is needed, or one that is unknown, revoked or
    malformed."""

    status_name = "UNAUTHENTICATED"
