import hashlib
import os
import threading

import pytest

from reapi_bridge.cas.store import ContentAddressableStorage
from reapi_bridge.common.digests import EMPTY_DIGEST, BlobDigest
from reapi_bridge.common.errors import Aborted, InvalidArgument, NotFound, OutOfRange, ResourceExhausted


def make_cas(tmp_path, **kwargs) -> ContentAddressableStorage:
    kwargs.setdefault("max_bytes", 1 << 30)
    return ContentAddressableStorage(tmp_path / "cas", **kwargs)


def visible_files(cas: ContentAddressableStorage):
    return sorted(p.name for p in (cas.root / "blobs").rglob("*") if p.is_file())


def test_put_then_read_back(tmp_path):
    cas = make_cas(tmp_path)
    data = b"hello crossbuild"
    digest = BlobDigest.of(data)
    assert cas.find_missing([digest]) == [digest]
    cas.put(digest, data)
    assert cas.find_missing([digest]) == []
    assert cas.read_bytes(digest) == data
    assert b"".join(cas.read_chunks(digest, offset=6, limit=5)) == b"cross"
    assert cas.stats().blob_count == 1


def test_empty_blob_is_always_present(tmp_path):
    cas = make_cas(tmp_path)
    assert cas.find_missing([EMPTY_DIGEST]) == []
    assert cas.read_bytes(EMPTY_DIGEST) == b""


@pytest.mark.parametrize("data,claimed", [(b"abc", b"abd"), (b"abc", b"abcd")])
def test_wrong_data_is_rejected_and_nothing_stored(tmp_path, data, claimed):
    cas = make_cas(tmp_path)
    digest = BlobDigest.of(claimed)
    with pytest.raises(InvalidArgument):
        cas.put(digest, data)
    assert visible_files(cas) == []
    assert list((cas.root / "tmp").iterdir()) == []


def test_same_size_other_hash_is_missing(tmp_path):
    cas = make_cas(tmp_path)
    cas.put(BlobDigest.of(b"abc"), b"abc")
    wrong_size = BlobDigest(BlobDigest.of(b"abc").hash, 4)
    assert cas.find_missing([wrong_size]) == [wrong_size]
    with pytest.raises(NotFound):
        cas.read_bytes(wrong_size)


def test_lru_eviction_keeps_recently_used(tmp_path):
    cas = make_cas(tmp_path, max_bytes=300)
    blobs = [bytes([i]) * 100 for i in range(3)]
    digests = [BlobDigest.of(b) for b in blobs]
    for d, b in zip(digests, blobs):
        cas.put(d, b)
    cas.read_bytes(digests[0])  # now the most recently used
    fourth = b"\x09" * 100
    cas.put(BlobDigest.of(fourth), fourth)
    assert cas.find_missing(digests) == [digests[1]]
    assert cas.stats().total_bytes == 300
    assert len(visible_files(cas)) == 3


def test_blob_larger_than_limit(tmp_path):
    cas = make_cas(tmp_path, max_bytes=10)
    data = b"x" * 11
    with pytest.raises(ResourceExhausted):
        cas.put(BlobDigest.of(data), data)


def test_index_rebuilt_on_restart(tmp_path):
    cas = make_cas(tmp_path)
    stored = []
    for i in range(20):
        data = os.urandom(50 + i)
        d = BlobDigest.of(data)
        cas.put(d, data)
        stored.append(d)
    reopened = make_cas(tmp_path)
    assert reopened.find_missing(stored) == []
    assert reopened.stats().total_bytes == sum(d.size for d in stored)
    assert reopened.verify() == []


def test_verify_detects_corruption(tmp_path):
    cas = make_cas(tmp_path)
    data = b"important bytes"
    d = BlobDigest.of(data)
    cas.put(d, data)
    path = cas.blob_path(d)
    os.chmod(path, 0o644)
    path.write_bytes(b"Important bytes")
    assert cas.verify() == [d]


def test_streaming_write_and_offsets(tmp_path):
    cas = make_cas(tmp_path)
    data = os.urandom(3 << 20)
    d = BlobDigest.of(data)
    writer = cas.begin_write(d)
    for i in range(0, len(data), 65536):
        writer.write(data[i : i + 65536])
    writer.commit()
    assert b"".join(cas.read_chunks(d)) == data
    assert b"".join(cas.read_chunks(d, offset=len(data))) == b""
    with pytest.raises(OutOfRange):
        cas.read_chunks(d, offset=len(data) + 1)
    with pytest.raises(OutOfRange):
        cas.read_chunks(d, offset=-1)


def test_write_past_declared_size(tmp_path):
    cas = make_cas(tmp_path)
    d = BlobDigest.of(b"1234")
    writer = cas.begin_write(d)
    writer.write(b"12")
    with pytest.raises(InvalidArgument):
        writer.write(b"345")
    writer.close()
    assert visible_files(cas) == []


def test_interrupted_upload_resumes_and_is_never_visible(tmp_path):
    cas = make_cas(tmp_path)
    data = os.urandom(200_000)
    d = BlobDigest.of(data)
    first = cas.begin_upload("u-1", d, 0)
    first.write(data[:120_000])
    first.close()  # the client went away
    assert cas.find_missing([d]) == [d]
    assert visible_files(cas) == []
    assert cas.upload_committed_size("u-1", d) == 120_000
    with pytest.raises(InvalidArgument):
        cas.begin_upload("u-1", d, 50_000)
    resumed = cas.begin_upload("u-1", d, 120_000)
    resumed.write(data[120_000:])
    resumed.commit()
    assert cas.read_bytes(d) == data
    assert cas.upload_committed_size("u-1", d) is None


def test_same_upload_id_twice_at_once_is_aborted(tmp_path):
    cas = make_cas(tmp_path)
    d = BlobDigest.of(b"abc")
    w = cas.begin_upload("same", d, 0)
    with pytest.raises(Aborted):
        cas.begin_upload("same", d, 0)
    w.write(b"abc")
    w.commit()


def test_concurrent_uploads_of_one_blob_give_one_blob(tmp_path):
    cas = make_cas(tmp_path)
    data = os.urandom(1 << 20)
    d = BlobDigest.of(data)
    errors = []

    def upload(n):
        try:
            w = cas.begin_upload(f"client-{n}", d, 0)
            for i in range(0, len(data), 4096):
                w.write(data[i : i + 4096])
            w.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert visible_files(cas) == [d.hash]
    assert cas.stats().blob_count == 1
    assert hashlib.sha256(cas.read_bytes(d)).hexdigest() == d.hash


def test_bad_digest_strings():
    with pytest.raises(InvalidArgument):
        BlobDigest("ABC", 1)
    with pytest.raises(InvalidArgument):
        BlobDigest("a" * 64, -1)
