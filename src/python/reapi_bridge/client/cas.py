"""A CAS client for executors: batched small blobs, streamed large ones, whole trees."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import grpc

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc

BATCH_BYTES = 2 << 20  # well under every server's 4 MiB default
CHUNK_BYTES = 1 << 20

Blob = Union[bytes, Path]


class CasError(Exception):
    pass


def _proto(d: BlobDigest) -> re_pb2.Digest:
    return re_pb2.Digest(hash=d.hash, size_bytes=d.size)


class CasClient:
    def __init__(self, channel: grpc.Channel, instance: str = "") -> None:
        self.instance = instance
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.bytestream = bs_grpc.ByteStreamStub(channel)
        self._prefix = f"{instance}/" if instance else ""

    # ----------------------------------------------------------------------------- reads

    def read(self, digest: BlobDigest) -> bytes:
        if digest.size == 0:
            return b""
        if digest.size <= BATCH_BYTES:
            return self.read_many([digest])[digest]
        return b"".join(self._stream(digest))

    def read_many(self, digests: Iterable[BlobDigest]) -> Dict[BlobDigest, bytes]:
        out: Dict[BlobDigest, bytes] = {}
        batch: List[BlobDigest] = []
        total = 0
        for d in sorted(set(digests)):
            if d.size == 0:
                out[d] = b""
            elif d.size > BATCH_BYTES:
                out[d] = b"".join(self._stream(d))
            else:
                if total + d.size > BATCH_BYTES:
                    out.update(self._batch_read(batch))
                    batch, total = [], 0
                batch.append(d)
                total += d.size
        if batch:
            out.update(self._batch_read(batch))
        return out

    def _batch_read(self, digests: Sequence[BlobDigest]) -> Dict[BlobDigest, bytes]:
        response = self.cas.BatchReadBlobs(
            re_pb2.BatchReadBlobsRequest(instance_name=self.instance, digests=[_proto(d) for d in digests])
        )
        out = {}
        for r in response.responses:
            d = BlobDigest.from_proto(r.digest)
            if r.status.code != 0:
                raise CasError(f"could not read blob {d}: {r.status.message} (code {r.status.code})")
            if hashlib.sha256(r.data).hexdigest() != d.hash:
                raise CasError(f"blob {d} arrived corrupted")
            out[d] = r.data
        return out

    def _stream(self, digest: BlobDigest):
        name = f"{self._prefix}blobs/{digest.hash}/{digest.size}"
        for response in self.bytestream.Read(bs_pb2.ReadRequest(resource_name=name)):
            yield response.data

    def download_to(self, digest: BlobDigest, dest: Path) -> None:
        """Writes a blob to `dest` (via a temp file, renamed once verified)."""
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                chunks = [self.read(digest)] if digest.size <= BATCH_BYTES else self._stream(digest)
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            if h.hexdigest() != digest.hash or size != digest.size:
                raise CasError(f"blob {digest} arrived corrupted")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def tree(self, root: BlobDigest) -> Dict[BlobDigest, re_pb2.Directory]:
        """Every Directory under root, by digest (fetched level by level in batches)."""
        found: Dict[BlobDigest, re_pb2.Directory] = {}
        level = [root]
        while level:
            fetched = self.read_many(d for d in level if d not in found)
            next_level = []
            for d, data in fetched.items():
                directory = re_pb2.Directory.FromString(data)
                found[d] = directory
                next_level.extend(BlobDigest.from_proto(c.digest) for c in directory.directories)
            level = [d for d in set(next_level) if d not in found]
        return found

    # ----------------------------------------------------------------------------- writes

    def find_missing(self, digests: Iterable[BlobDigest]) -> List[BlobDigest]:
        digests = sorted(set(d for d in digests if d.size > 0))
        missing: List[BlobDigest] = []
        for i in range(0, len(digests), 10000):
            response = self.cas.FindMissingBlobs(
                re_pb2.FindMissingBlobsRequest(
                    instance_name=self.instance, blob_digests=[_proto(d) for d in digests[i : i + 10000]]
                )
            )
            missing.extend(BlobDigest.from_proto(d) for d in response.missing_blob_digests)
        return missing

    def upload(self, blobs: Dict[BlobDigest, Blob]) -> None:
        """Uploads the blobs the server lacks; values are bytes or a path to read from."""
        missing = self.find_missing(blobs)
        batch: List[Tuple[BlobDigest, bytes]] = []
        total = 0
        for d in missing:
            source = blobs[d]
            if d.size > BATCH_BYTES:
                self._stream_upload(d, source)
                continue
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            if total + d.size > BATCH_BYTES:
                self._batch_upload(batch)
                batch, total = [], 0
            batch.append((d, data))
            total += d.size
        if batch:
            self._batch_upload(batch)

    def _batch_upload(self, batch: Sequence[Tuple[BlobDigest, bytes]]) -> None:
        response = self.cas.BatchUpdateBlobs(
            re_pb2.BatchUpdateBlobsRequest(
                instance_name=self.instance,
                requests=[
                    re_pb2.BatchUpdateBlobsRequest.Request(digest=_proto(d), data=data) for d, data in batch
                ],
            )
        )
        for r in response.responses:
            if r.status.code != 0:
                raise CasError(f"could not upload blob {r.digest.hash}: {r.status.message}")

    def _stream_upload(self, digest: BlobDigest, source: Blob) -> None:
        name = f"{self._prefix}uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size}"

        def requests():
            offset = 0
            if isinstance(source, bytes):
                pieces = (source[i : i + CHUNK_BYTES] for i in range(0, len(source), CHUNK_BYTES))
            else:
                f = open(source, "rb")
                pieces = iter(lambda: f.read(CHUNK_BYTES), b"")
            for piece in pieces:
                last = offset + len(piece) >= digest.size
                yield bs_pb2.WriteRequest(
                    resource_name=name if offset == 0 else "", write_offset=offset, data=piece, finish_write=last
                )
                offset += len(piece)

        self.bytestream.Write(requests())
