"""The CAS and ByteStream operations as a plain object over the disk store (no gRPC): batch
limits, per-blob outcomes, GetTree's pages, streamed reads and resumable writes. The instance
name has been checked by the caller."""

from __future__ import annotations

import threading

from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import BridgeError, InvalidArgument, NotFound
from reapi_bridge.common.resource_names import WriteResource
from reapi_bridge.common.tree import parse_directories, walk_directories
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

DEFAULT_TREE_PAGE_SIZE = 1000

# One blob of a batch: its digest as sent, and the error that refused it (None: done).
BlobOutcome = Tuple[re_pb2.Digest, Optional[BridgeError]]


class CasTraffic:
    """Blob bytes in and out of the CAS services (counted where the services hand them over)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.read_bytes = 0
        self.written_bytes = 0

    def read(self, n: int) -> None:
        with self._lock:
            self.read_bytes += n

    def written(self, n: int) -> None:
        with self._lock:
            self.written_bytes += n

    def snapshot(self) -> dict:
        with self._lock:
            return {"read_bytes": self.read_bytes, "written_bytes": self.written_bytes}


class CasInstance:
    def __init__(
        self, store: ContentAddressableStorage, max_batch_bytes: int, read_chunk_bytes: int,
        traffic: Optional[CasTraffic] = None,
    ) -> None:
        self.traffic = traffic or CasTraffic()
        self.store = store
        self.max_batch_bytes = max_batch_bytes
        self.read_chunk_bytes = read_chunk_bytes

    # ----------------------------------------------------------------------------- CAS

    def find_missing(self, digests: Sequence[re_pb2.Digest]) -> List[re_pb2.Digest]:
        # Hot path (Pants asks for thousands of digests at once): work on the protos directly
        # and validate only what the index lookup does not already rule out.
        missing = []
        for i in self.store.find_missing_hashes([(d.hash, d.size_bytes) for d in digests]):
            d = digests[i]
            BlobDigest(d.hash, d.size_bytes)  # raises INVALID_ARGUMENT for a malformed digest
            missing.append(d)
        return missing

    def batch_update(self, requests: Sequence[re_pb2.BatchUpdateBlobsRequest.Request]) -> List[BlobOutcome]:
        total = sum(len(r.data) for r in requests)
        if total > self.max_batch_bytes:
            raise InvalidArgument(
                f"BatchUpdateBlobs carries {total} bytes, over the limit of {self.max_batch_bytes} "
                "advertised in GetCapabilities; send large blobs with ByteStream Write"
            )
        outcomes: List[BlobOutcome] = []
        for r in requests:
            try:
                if r.compressor != re_pb2.Compressor.IDENTITY:
                    raise InvalidArgument("compressed uploads are not supported")
                self.store.put(BlobDigest.from_proto(r.digest), r.data)
                self.traffic.written(len(r.data))
                outcomes.append((r.digest, None))
            except BridgeError as exc:
                outcomes.append((r.digest, exc))
        return outcomes

    def batch_read(self, protos: Sequence[re_pb2.Digest]) -> List[Tuple[re_pb2.Digest, bytes, Optional[BridgeError]]]:
        digests = [BlobDigest.from_proto(d) for d in protos]
        total = sum(d.size for d in digests)
        if total > self.max_batch_bytes:
            raise InvalidArgument(
                f"BatchReadBlobs asks for {total} bytes, over the limit of {self.max_batch_bytes} "
                "advertised in GetCapabilities; read large blobs with ByteStream Read"
            )
        out = []
        for proto, digest in zip(protos, digests):
            try:
                data = self.store.read_bytes(digest)
                self.traffic.read(len(data))
                out.append((proto, data, None))
            except BridgeError as exc:
                out.append((proto, b"", exc))
        return out

    def tree_pages(self, root: BlobDigest, page_size: int, page_token: str) -> Iterator[Tuple[List[re_pb2.Directory], str]]:
        """GetTree's pages: (directories, next page token), the last page's token empty."""
        if page_size < 0:
            raise InvalidArgument(f"page_size {page_size} is negative")
        page_size = page_size or DEFAULT_TREE_PAGE_SIZE
        start = 0
        if page_token:
            if not page_token.isdigit():
                raise InvalidArgument(f"page_token {page_token!r} was not issued by this server")
            start = int(page_token)
        directories = self._tree(root)
        if start > len(directories):
            raise InvalidArgument(f"page_token {page_token!r} is past the end of the tree")
        pos = start
        while True:
            page = directories[pos : pos + page_size]
            pos += len(page)
            token = str(pos) if pos < len(directories) else ""
            yield page, token
            if not token:
                return

    def _tree(self, root: BlobDigest) -> List[re_pb2.Directory]:
        """Directories reachable from root, breadth first, each once; absent parts are omitted
        (REAPI: a partial tree is returned), but an absent root is NOT_FOUND."""

        def fetch(level):
            present = {}
            for digest in level:
                try:
                    present[digest] = self.store.read_bytes(digest)
                except BridgeError:
                    if digest == root:  # NOT_FOUND for an absent root
                        raise
            return parse_directories(present, re_pb2.Directory)

        return [directory for _, directory in walk_directories(root, fetch)]

    # ----------------------------------------------------------------------------- ByteStream

    def read(self, digest: BlobDigest, offset: int, limit: int) -> Iterator[bytes]:
        for chunk in self.store.read_chunks(digest, offset, limit, self.read_chunk_bytes):
            self.traffic.read(len(chunk))
            yield chunk

    def write(self, name: str, resource: WriteResource, first_offset: int, pieces: Iterable[Tuple[str, int, bytes, bool]]) -> int:
        """A ByteStream Write: `pieces` are (resource_name, write_offset, data, finish_write) in
        stream order. Returns the committed size; a stream that ends without finish_write keeps
        what it committed, for QueryWriteStatus and a resumed Write."""
        digest = resource.digest
        if first_offset == 0 and self.store.contains(digest):
            # Someone already stored it: REAPI lets the server end the upload at once.
            return digest.size
        writer = self.store.begin_upload(resource.upload_id, digest, first_offset)
        try:
            for resource_name, offset, data, finish in pieces:
                if resource_name and resource_name != name:
                    raise InvalidArgument(f"resource name changed within one Write stream: {resource_name!r}")
                if offset != writer.committed_size:
                    raise InvalidArgument(
                        f"write_offset {offset} but {writer.committed_size} bytes were committed for {name!r}"
                    )
                if data:
                    writer.write(data)
                    self.traffic.written(len(data))
                if finish:
                    writer.commit()
                    return writer.committed_size
            raise InvalidArgument(
                f"Write stream for {name!r} ended without finish_write "
                f"after {writer.committed_size} bytes; resume from there"
            )
        finally:
            writer.close()

    def write_status(self, name: str, resource: WriteResource) -> Tuple[int, bool]:
        """(committed size, complete) of an upload."""
        if self.store.contains(resource.digest):
            return resource.digest.size, True
        committed = self.store.upload_committed_size(resource.upload_id, resource.digest)
        if committed is None:
            raise NotFound(f"no upload is in progress for {name!r}")
        return committed, False
