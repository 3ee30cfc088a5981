"""The archive format: reproducible tar and line-based manifest (pure functions)."""

import io
import tarfile

import pytest

from crossbuild.archive import MANIFEST_HEADER, MANIFEST_HEADER_V2, deterministic_tar, manifest_text, read_manifest
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


def test_the_default_framework_keeps_version_1_byte_for_byte():
    listed = [("bin/x_test", 10, "ab" * 32)]
    assert manifest_text("linux_arm64", "aarch64-linux-musl", listed, "crossbuild") == manifest_text(
        "linux_arm64", "aarch64-linux-musl", listed
    )


def test_another_framework_writes_version_2_with_a_framework_line():
    text = manifest_text("linux_x86_64", "x86_64-linux-musl", [("bin/a_test", 1, "cd" * 32)], "gtest")
    assert text.splitlines() == [
        MANIFEST_HEADER_V2,
        "platform linux_x86_64",
        "target x86_64-linux-musl",
        "framework gtest",
        f"binary bin/a_test {'cd' * 32}",
    ]


@pytest.mark.parametrize("framework", ["crossbuild", "gtest", "catch2", "doctest"])
def test_the_reader_reads_what_the_writer_writes(framework):
    listed = [("bin/a_test", 1, "cd" * 32), ("bin/b_test", 2, "ef" * 32)]
    m = read_manifest(manifest_text("linux_arm64", "aarch64-linux-musl", listed, framework))
    assert (m.version, m.platform, m.triple, m.framework) == (
        1 if framework == "crossbuild" else 2, "linux_arm64", "aarch64-linux-musl", framework
    )
    assert m.binaries == (("bin/a_test", "cd" * 32), ("bin/b_test", "ef" * 32))


def test_the_reader_takes_unknown_keys_in_version_2_only():
    base = f"platform linux_arm64\ntarget aarch64-linux-musl\nbinary bin/a {'00' * 32}\n"
    assert read_manifest(f"{MANIFEST_HEADER_V2}\nfuture-key 1\n{base}").framework == "crossbuild"
    for bad in (
        f"{MANIFEST_HEADER}\nframework gtest\n{base}",  # version 1 has no framework line
        f"crossbuild-test-archive 3\n{base}",
        f"{MANIFEST_HEADER_V2}\nframework boost\n{base}",
        f"{MANIFEST_HEADER_V2}\ntarget x\n",
        f"{MANIFEST_HEADER}\nplatform p\ntarget t\nbinary bin/a short\n",
    ):
        with pytest.raises(ValueError):
            read_manifest(bad)
