"""The archive format: reproducible tar and line-based manifest (pure functions)."""

import io
import tarfile

from crossbuild.archive import MANIFEST_HEADER, deterministic_tar, manifest_text
from crossbuild.platforms import PLATFORMS


def test_tar_is_byte_identical_whatever_the_insertion_order():
    a = deterministic_tar({"bin/b": b"2", "bin/a": b"1", "manifest.txt": b"m"}, {"bin/a", "bin/b"})
    b = deterministic_tar({"manifest.txt": b"m", "bin/a": b"1", "bin/b": b"2"}, {"bin/b", "bin/a"})
    assert a == b
    with tarfile.open(fileobj=io.BytesIO(a)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["bin", "bin/a", "bin/b", "manifest.txt"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert [oct(m.mode) for m in members] == ["0o755", "0o755", "0o755", "0o644"]


def test_manifest_names_platform_triple_and_digests():
    text = manifest_text("linux_arm64", "aarch64-linux-musl", [("bin/x_test", 10, "ab" * 32)])
    assert text.splitlines() == [
        MANIFEST_HEADER,
        "platform linux_arm64",
        "target aarch64-linux-musl",
        f"binary bin/x_test {'ab' * 32}",
    ]


def test_triples():
    assert PLATFORMS["linux_arm64"].triple("musl") == "aarch64-linux-musl"
    assert PLATFORMS["linux_x86_64"].triple("gnu.2.31") == "x86_64-linux-gnu.2.31"
    assert PLATFORMS["windows_arm64"].triple("musl") == "aarch64-windows-gnu"
    assert PLATFORMS["windows_x86_64"].executable_suffix == ".exe"
