"""The one REAPI client: stubs for every service on one channel, and the CAS operations
executors, tests and benchmarks need (batched small blobs, streamed large ones, verified
downloads). It works against any REAPI server, not only this bridge."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import grpc
from google.longrunning import operations_pb2_grpc
from google.rpc import code_pb2

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.resource_names import read_resource_name, write_resource_name
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from reapi_bridge.protos.google.bytestream import bytestream_pb2 as bs_pb2
from reapi_bridge.protos.google.bytestream import bytestream_pb2_grpc as bs_grpc

BATCH_BYTES = 2 << 20  # well under every server's 4 MiB default
CHUNK_BYTES = 1 << 20
FIND_MISSING_PER_CALL = 10000

Blob = Union[bytes, Path]
AnyDigest = Union[BlobDigest, re_pb2.Digest]


class CasError(RuntimeError):
    """The server refused or garbled a blob."""


def _blob_digest(digest: AnyDigest) -> BlobDigest:
    return digest if isinstance(digest, BlobDigest) else BlobDigest.from_proto(digest)


def _pieces(source: Blob, chunk: int) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for offset in range(0, len(view), chunk):
            yield bytes(view[offset : offset + chunk])
    else:
        with open(source, "rb") as f:
            yield from iter(lambda: f.read(chunk), b"")


class Client:
    def __init__(self, channel: grpc.Channel, instance: str = "") -> None:
        self.channel = channel
        self.instance = instance
        self.cas = re_grpc.ContentAddressableStorageStub(channel)
        self.ac = re_grpc.ActionCacheStub(channel)
        self.capabilities = re_grpc.CapabilitiesStub(channel)
        self.execution = re_grpc.ExecutionStub(channel)
        self.operations = operations_pb2_grpc.OperationsStub(channel)
        self.bytestream = bs_grpc.ByteStreamStub(channel)

    # ----------------------------------------------------------------------------- names

    def read_resource(self, digest: AnyDigest) -> str:
        return read_resource_name(self.instance, _blob_digest(digest))

    def write_resource(self, digest: AnyDigest, upload_id: Optional[str] = None) -> str:
        return write_resource_name(self.instance, upload_id or str(uuid.uuid4()), _blob_digest(digest))

    # ----------------------------------------------------------------------------- reads

    def read(self, digest: BlobDigest) -> bytes:
        if digest.size == 0:
            return b""
        if digest.size <= BATCH_BYTES:
            return self.read_many([digest])[digest]
        return b"".join(self.stream_chunks(digest))

    def read_many(self, digests: Iterable[BlobDigest]) -> Dict[BlobDigest, bytes]:
        out: Dict[BlobDigest, bytes] = {}
        batch: List[BlobDigest] = []
        total = 0
        for d in sorted(set(digests)):
            if d.size == 0:
                out[d] = b""
            elif d.size > BATCH_BYTES:
                out[d] = b"".join(self.stream_chunks(d))
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
            re_pb2.BatchReadBlobsRequest(
                instance_name=self.instance, digests=[d.to_proto(re_pb2.Digest) for d in digests]
            )
        )
        out = {}
        for r in response.responses:
            d = BlobDigest.from_proto(r.digest)
            if r.status.code != code_pb2.OK:
                raise CasError(f"could not read blob {d}: {r.status.message} (code {r.status.code})")
            if hashlib.sha256(r.data).hexdigest() != d.hash:
                raise CasError(f"blob {d} arrived corrupted")
            out[d] = r.data
        return out

    def stream_chunks(self, digest: AnyDigest, offset: int = 0, limit: int = 0) -> Iterator[bytes]:
        """A blob's bytes through ByteStream Read, as the server sends them."""
        request = bs_pb2.ReadRequest(
            resource_name=self.read_resource(digest), read_offset=offset, read_limit=limit
        )
        for response in self.bytestream.Read(request):
            yield response.data

    def stream_read(self, digest: AnyDigest, offset: int = 0, limit: int = 0) -> bytes:
        return b"".join(self.stream_chunks(digest, offset, limit))

    def download_to(self, digest: BlobDigest, dest: Path) -> None:
        """Writes a blob to `dest` (via a temp file, renamed once verified)."""
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}")
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                chunks = [self.read(digest)] if digest.size <= BATCH_BYTES else self.stream_chunks(digest)
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            if h.hexdigest() != digest.hash or size != digest.size:
                raise CasError(f"blob {digest} arrived corrupted")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- writes

    def find_missing(self, digests: Iterable[BlobDigest]) -> List[BlobDigest]:
        digests = sorted(set(d for d in digests if d.size > 0))
        missing: List[BlobDigest] = []
        for i in range(0, len(digests), FIND_MISSING_PER_CALL):
            response = self.cas.FindMissingBlobs(
                re_pb2.FindMissingBlobsRequest(
                    instance_name=self.instance,
                    blob_digests=[d.to_proto(re_pb2.Digest) for d in digests[i : i + FIND_MISSING_PER_CALL]],
                )
            )
            missing.extend(BlobDigest.from_proto(d) for d in response.missing_blob_digests)
        return missing

    def upload(self, data: bytes) -> re_pb2.Digest:
        """One BatchUpdateBlobs call with one blob; returns its digest."""
        digest = BlobDigest.of(data)
        self.upload_batch([(digest, data)])
        return digest.to_proto(re_pb2.Digest)

    def upload_batch(self, batch: Sequence[Tuple[AnyDigest, bytes]]) -> None:
        """One BatchUpdateBlobs call; raises CasError naming the first blob refused."""
        request = re_pb2.BatchUpdateBlobsRequest(instance_name=self.instance)
        for d, data in batch:
            request.requests.add(digest=d if isinstance(d, re_pb2.Digest) else d.to_proto(re_pb2.Digest), data=data)
        response = self.cas.BatchUpdateBlobs(request)
        for r in response.responses:
            if r.status.code != code_pb2.OK:
                raise CasError(
                    f"could not upload blob {r.digest.hash}/{r.digest.size_bytes}: "
                    f"{r.status.message} (code {r.status.code})"
                )

    def upload_blobs(self, blobs: Dict[BlobDigest, Blob]) -> None:
        """Uploads the blobs the server lacks, small ones batched, large ones streamed; values
        are bytes or a path to read from."""
        missing = self.find_missing(blobs)
        batch: List[Tuple[BlobDigest, bytes]] = []
        total = 0
        for d in missing:
            source = blobs[d]
            if d.size > BATCH_BYTES:
                self.stream_upload(source, d)
                continue
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            if total + d.size > BATCH_BYTES:
                self.upload_batch(batch)
                batch, total = [], 0
            batch.append((d, data))
            total += d.size
        if batch:
            self.upload_batch(batch)

    def stream_upload(
        self, source: Blob, digest: Optional[AnyDigest] = None, chunk: int = CHUNK_BYTES
    ) -> re_pb2.Digest:
        """ByteStream Write of bytes (or a file, whose digest must be given); returns the digest
        once the server committed every byte."""
        if digest is not None:
            digest = _blob_digest(digest)
        else:
            if not isinstance(source, (bytes, bytearray)):
                raise ValueError("the digest of a file to upload must be given")
            digest = BlobDigest.of(bytes(source))
        name = self.write_resource(digest)

        def requests() -> Iterator[bs_pb2.WriteRequest]:
            offset = 0
            for piece in _pieces(source, chunk):
                last = offset + len(piece) >= digest.size
                yield bs_pb2.WriteRequest(
                    resource_name=name if offset == 0 else "", write_offset=offset, data=piece, finish_write=last
                )
                offset += len(piece)
            if offset == 0:  # an empty blob is one finishing request
                yield bs_pb2.WriteRequest(resource_name=name, write_offset=0, finish_write=True)

        response = self.bytestream.Write(requests())
        if response.committed_size != digest.size:
            raise CasError(f"blob {digest}: the server committed {response.committed_size} bytes")
        return digest.to_proto(re_pb2.Digest)
