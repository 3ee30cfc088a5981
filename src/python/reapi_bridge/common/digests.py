"""Blob digests (SHA-256 hash plus size) independent of any protobuf type."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from reapi_bridge.common.errors import InvalidArgument

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

EMPTY_HASH = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, order=True)
class BlobDigest:
    """A validated SHA-256 content digest: lowercase hex hash and size in bytes."""

    hash: str
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.hash, str) or not _HEX64.match(self.hash):
            raise InvalidArgument(
                f"digest hash {self.hash!r} is not 64 lowercase hex characters (SHA-256)"
            )
        if self.size < 0:
            raise InvalidArgument(f"digest {self.hash} has a negative size ({self.size})")

    @classmethod
    def of(cls, data: bytes) -> "BlobDigest":
        return cls(hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def from_proto(cls, digest) -> "BlobDigest":
        """From a build.bazel.remote.execution.v2.Digest message."""
        return cls(digest.hash, digest.size_bytes)

    def to_proto(self, digest_cls):
        return digest_cls(hash=self.hash, size_bytes=self.size)

    @property
    def is_empty(self) -> bool:
        return self.size == 0 and self.hash == EMPTY_HASH

    def __str__(self) -> str:
        return f"{self.hash}/{self.size}"


EMPTY_DIGEST = BlobDigest(EMPTY_HASH, 0)
