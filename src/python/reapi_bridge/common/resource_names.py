"""ByteStream resource names as REAPI defines them.

    reads:  {instance}/blobs/{hash}/{size}[/{anything}]
    writes: {instance}/uploads/{uuid}/blobs/{hash}/{size}[/{anything}]

The instance name may itself contain slashes but never the reserved segments, so the first
`blobs` / `uploads` segment splits it off.
"""

from __future__ import annotations

from dataclasses import dataclass

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument


@dataclass(frozen=True)
class ReadResource:
    instance: str
    digest: BlobDigest


@dataclass(frozen=True)
class WriteResource:
    instance: str
    upload_id: str
    digest: BlobDigest


def _digest(hash_part: str, size_part: str, name: str) -> BlobDigest:
    if not size_part.isdigit():
        raise InvalidArgument(f"resource name {name!r}: size {size_part!r} is not a number")
    try:
        return BlobDigest(hash_part, int(size_part))
    except InvalidArgument as exc:
        raise InvalidArgument(f"resource name {name!r}: {exc}")


def _compressed(parts: list, i: int, name: str) -> None:
    if "compressed-blobs" in parts[:i + 1]:
        raise InvalidArgument(
            f"resource name {name!r}: compressed blobs are not supported (the bridge advertises "
            "no compressors)"
        )


def parse_read_resource(name: str) -> ReadResource:
    parts = name.split("/")
    for i, part in enumerate(parts):
        if part == "compressed-blobs":
            _compressed(parts, i, name)
        if part == "blobs" and len(parts) >= i + 3:
            return ReadResource("/".join(parts[:i]), _digest(parts[i + 1], parts[i + 2], name))
    raise InvalidArgument(
        f"resource name {name!r} is not of the form '{{instance}}/blobs/{{hash}}/{{size}}'"
    )


def parse_write_resource(name: str) -> WriteResource:
    parts = name.split("/")
    for i, part in enumerate(parts):
        if part == "uploads" and len(parts) >= i + 5:
            if parts[i + 2] == "compressed-blobs":
                _compressed(parts, i + 2, name)
            if parts[i + 2] == "blobs":
                return WriteResource(
                    "/".join(parts[:i]),
                    parts[i + 1],
                    _digest(parts[i + 3], parts[i + 4], name),
                )
    raise InvalidArgument(
        f"resource name {name!r} is not of the form "
        "'{instance}/uploads/{uuid}/blobs/{hash}/{size}'"
    )


def _prefix(instance: str) -> str:
    return f"{instance}/" if instance else ""


def blob_path(digest: BlobDigest) -> str:
    """`blobs/{hash}/{size}`: a blob's name after the instance, and the subject REAPI gives a
    missing blob in a PreconditionFailure."""
    return f"blobs/{digest.hash}/{digest.size}"


def read_resource_name(instance: str, digest: BlobDigest) -> str:
    return _prefix(instance) + blob_path(digest)


def write_resource_name(instance: str, upload_id: str, digest: BlobDigest) -> str:
    return f"{_prefix(instance)}uploads/{upload_id}/{blob_path(digest)}"
