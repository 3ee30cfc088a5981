import os
from pathlib import Path

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.client.client import Client
from reapi_bridge.executor.inputs import InputMaterializer
from reapi_bridge_testing.bridge import client_for, make_test_config, running_bridge, upload_directory


def test_large_directories_are_materialised_once_and_shared(tmp_path):
    big = {f"tool/lib/f{i}.h": f"{i}\n".encode() for i in range(300)}
    big["tool/bin/run"] = (b"#!/bin/sh\necho run\n", True)
    with running_bridge(make_test_config(tmp_path / "bridge")) as bridge:
        with client_for(f"127.0.0.1:{bridge.port}") as client:
            root_a = upload_directory(client, {**big, "src/a.c": b"a"})
            root_b = upload_directory(client, {**big, "src/b.c": b"b"})
            m = InputMaterializer(Client(client.channel), tmp_path / "cache", dir_threshold=100)
            m.materialize(BlobDigest.from_proto(root_a), tmp_path / "a")
            m.materialize(BlobDigest.from_proto(root_b), tmp_path / "b")
    for sandbox, own in (("a", "a.c"), ("b", "b.c")):
        root = tmp_path / sandbox
        assert (root / "src" / own).exists()
        # The 300-file directory is one shared, read-only copy.
        assert (root / "tool").is_symlink()
        assert (root / "tool" / "lib" / "f299.h").read_text() == "299\n"
        assert os.access(root / "tool" / "bin" / "run", os.X_OK)
        assert not (root / "src").is_symlink()
    assert os.readlink(tmp_path / "a" / "tool") == os.readlink(tmp_path / "b" / "tool")
    cached = Path(os.readlink(tmp_path / "a" / "tool"))
    assert not os.stat(cached / "lib").st_mode & 0o222
    assert not os.stat(cached / "lib" / "f1.h").st_mode & 0o222


def test_small_trees_are_hard_links_to_the_file_cache(tmp_path):
    with running_bridge(make_test_config(tmp_path / "bridge")) as bridge:
        with client_for(f"127.0.0.1:{bridge.port}") as client:
            root = upload_directory(client, {"x/y.txt": b"y", "z.txt": b"z", "exe": (b"#!/bin/sh\n", True)})
            m = InputMaterializer(Client(client.channel), tmp_path / "cache")
            m.materialize(BlobDigest.from_proto(root), tmp_path / "s")
    s = tmp_path / "s"
    assert (s / "x" / "y.txt").read_text() == "y" and not (s / "x").is_symlink()
    assert os.stat(s / "z.txt").st_nlink == 2  # the sandbox and the cache share the inode
    assert os.access(s / "exe", os.X_OK) and not os.access(s / "z.txt", os.X_OK)


def test_cache_over_its_limit_is_emptied_at_start(tmp_path):
    cache = tmp_path / "cache"
    (cache / "files").mkdir(parents=True)
    (cache / "files" / ("a" * 64)).write_bytes(b"x" * 1000)
    with running_bridge(make_test_config(tmp_path / "bridge")) as bridge:
        with client_for(f"127.0.0.1:{bridge.port}") as client:
            InputMaterializer(Client(client.channel), cache, max_bytes=10_000)
            assert (cache / "files" / ("a" * 64)).exists()
            InputMaterializer(Client(client.channel), cache, max_bytes=500)
            assert not (cache / "files" / ("a" * 64)).exists()
            assert (cache / "files").is_dir()
