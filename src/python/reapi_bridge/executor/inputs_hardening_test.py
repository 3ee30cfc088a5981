"""Input trees against a real bridge's CAS: generated valid trees are staged and never reach
outside their root; generated invalid ones are refused before anything is written; symlinks
left in a sandbox never redirect the executor's writes."""

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reapi_bridge.client.client import Client
from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.tree_validation import InvalidTree, name_rule, tree_violation
from reapi_bridge.executor.inputs import InputMaterializer, empty_except, make_dirs
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from reapi_bridge_testing.bridge import client_for, make_test_config, running_bridge

SETTINGS = settings(
    max_examples=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

names = st.text(st.sampled_from(list("ab.-_ é")), min_size=1, max_size=5).filter(lambda n: name_rule(n) is None)


# A tree spec: {name: bytes (a file) | ("link", ups, rest) | dict (a directory)}. A link climbs
# `ups` levels (at most as deep as it is) then descends through `rest` (names or ".").
def _entries(children):
    link = st.tuples(st.just("link"), st.integers(0, 4), st.lists(st.one_of(names, st.just(".")), max_size=3))
    return st.dictionaries(names, st.one_of(st.binary(max_size=8), link, children), max_size=5)


trees = st.recursive(_entries(st.nothing()), _entries, max_leaves=12)


def link_target(ups: int, rest, depth: int) -> str:
    return "/".join([".."] * min(ups, depth) + list(rest)) or "."


def upload(client: Client, spec: dict, depth: int = 0, bad=None) -> re_pb2.Digest:
    """Uploads the tree; `bad` (path tuple, name, kind) puts one invalid entry in it."""
    directory = re_pb2.Directory()
    entries = dict(spec)
    if bad is not None and bad[0] == ():
        _, name, kind = bad
        entries[name] = ("raw", kind)
    for name in sorted(entries, key=lambda n: n.encode()):
        value = entries[name]
        if isinstance(value, dict):
            sub = bad if bad is not None and bad[0][:1] == (name,) else None
            sub = (sub[0][1:], sub[1], sub[2]) if sub else None
            directory.directories.add(name=name, digest=upload(client, value, depth + 1, sub))
        elif isinstance(value, bytes):
            directory.files.add(name=name, digest=client.upload(value))
        elif value[0] == "link":
            directory.symlinks.add(name=name, target=link_target(value[1], value[2], depth))
        elif value[1] == "escaping":
            directory.symlinks.add(name=name, target="../" * (depth + 1) + "outside")
        elif value[1] == "absolute":
            directory.symlinks.add(name=name, target="/etc/passwd")
        else:
            directory.files.add(name=name, digest=client.upload(b"bad"))
    return client.upload(directory.SerializeToString(deterministic=True))


def directories_of(spec: dict, prefix=()):
    yield prefix
    for name, value in spec.items():
        if isinstance(value, dict):
            yield from directories_of(value, prefix + (name,))


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    with running_bridge(make_test_config(tmp_path_factory.mktemp("bridge"))) as bridge:
        with client_for(f"127.0.0.1:{bridge.port}") as client:
            yield client


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def check_staged(root: Path, spec: dict) -> None:
    """`root` holds exactly `spec`, and every symlink in it resolves inside `root`."""
    for name, value in spec.items():
        here = root / name
        if isinstance(value, dict):
            assert here.is_dir() and not here.is_symlink()
            check_staged(here, value)
        elif isinstance(value, bytes):
            assert not here.is_symlink() and here.read_bytes() == value
        else:
            assert here.is_symlink()
    assert sorted(os.listdir(root)) == sorted(spec)


@SETTINGS
@given(spec=trees)
def test_generated_valid_trees_are_staged_inside_their_root(cas, tmp_path_factory, spec):
    root_digest = upload(cas, spec)
    base = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    box = base / "box"
    box.mkdir()
    m = InputMaterializer(Client(cas.channel), base / "cache", dir_threshold=10_000)
    m.materialize(BlobDigest.from_proto(root_digest), box / "root")
    assert os.listdir(box) == ["root"]
    real_root = os.path.realpath(box / "root")
    check_staged(box / "root", spec)
    for dirpath, dirnames, filenames in os.walk(box / "root"):
        for name in dirnames + filenames:
            assert inside(os.path.realpath(os.path.join(dirpath, name)), real_root), os.path.join(dirpath, name)


@SETTINGS
@given(spec=trees, data=st.data())
def test_generated_invalid_trees_are_refused_before_anything_is_written(cas, tmp_path_factory, spec, data):
    where = data.draw(st.sampled_from(sorted(directories_of(spec))))
    kind = data.draw(st.sampled_from(["", ".", "..", "a/b", "a\0b", "escaping", "absolute"]))
    name = kind if kind not in ("escaping", "absolute") else "zz-link"
    root_digest = upload(cas, spec, bad=(where, name, kind))
    base = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    m = InputMaterializer(Client(cas.channel), base / "cache", dir_threshold=10_000)
    with pytest.raises(InvalidTree) as e:
        m.materialize(BlobDigest.from_proto(root_digest), base / "root")
    assert e.value.violation.path == "/".join(where + (name,))
    assert not (base / "root").exists()


def test_a_shared_directory_valid_deep_is_refused_where_it_would_escape(cas, tmp_path):
    shared = re_pb2.Directory(symlinks=[re_pb2.SymlinkNode(name="l", target="../../x")])
    shared_digest = cas.upload(shared.SerializeToString(deterministic=True))
    deep = re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="s", digest=shared_digest)])
    deep_digest = cas.upload(deep.SerializeToString(deterministic=True))
    m = InputMaterializer(Client(cas.channel), tmp_path / "cache")
    ok = re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="a", digest=deep_digest)])
    m.materialize(BlobDigest.from_proto(cas.upload(ok.SerializeToString(deterministic=True))), tmp_path / "ok")
    # The same directory one level up: remembered as valid two levels down only.
    bad = re_pb2.Directory(
        directories=[re_pb2.DirectoryNode(name="a", digest=deep_digest), re_pb2.DirectoryNode(name="b", digest=shared_digest)]
    )
    with pytest.raises(InvalidTree, match="'b/l': symlink target '../../x' leaves the root"):
        m.materialize(BlobDigest.from_proto(cas.upload(bad.SerializeToString(deterministic=True))), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_restaging_never_follows_a_symlink_left_in_the_exec_root(cas, tmp_path):
    """A worker's exec root is emptied and refilled in place; what an action left there (a
    symlink where a kept directory was, or where an input goes) is removed, not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    exec_root = tmp_path / "exec"
    (exec_root / "work").mkdir(parents=True)
    os.symlink(outside, exec_root / "work" / "sub")  # where the chain continues
    os.symlink(outside, exec_root / "inputs")  # where an input directory goes
    empty_except(exec_root, ["work", "sub"])
    assert (outside / "precious").read_text() == "keep me"
    assert not (exec_root / "work" / "sub").is_symlink() and (exec_root / "work" / "sub").is_dir()
    inputs = re_pb2.Directory(files=[re_pb2.FileNode(name="precious", digest=cas.upload(b"overwritten"))])
    work = re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="sub", digest=cas.upload(re_pb2.Directory().SerializeToString()))])
    root = re_pb2.Directory(
        directories=[
            re_pb2.DirectoryNode(name="inputs", digest=cas.upload(inputs.SerializeToString(deterministic=True))),
            re_pb2.DirectoryNode(name="work", digest=cas.upload(work.SerializeToString(deterministic=True))),
        ]
    )
    root_digest = BlobDigest.from_proto(cas.upload(root.SerializeToString(deterministic=True)))
    m = InputMaterializer(Client(cas.channel), tmp_path / "cache")
    m.materialize(root_digest, exec_root, keep=["work", "sub"])
    assert (exec_root / "inputs" / "precious").read_bytes() == b"overwritten"
    assert (outside / "precious").read_text() == "keep me"
    # A symlink swapped in for the kept directory after it was emptied: staging stops there.
    empty_except(exec_root, ["work", "sub"])
    os.rmdir(exec_root / "work" / "sub")
    os.symlink(outside, exec_root / "work" / "sub")
    with pytest.raises(OSError):
        m.materialize(root_digest, exec_root, keep=["work", "sub"])
    assert sorted(os.listdir(outside)) == ["precious"]


def test_output_parents_are_not_created_through_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    make_dirs(root, ["link", "made"])
    make_dirs(root, ["real", "made"])
    assert os.listdir(outside) == []
    assert (root / "real" / "made").is_dir()


def test_the_check_reads_the_tree_only_once(cas, tmp_path):
    leaf = re_pb2.Directory(files=[re_pb2.FileNode(name="f", digest=cas.upload(b"f"))])
    root = re_pb2.Directory(directories=[re_pb2.DirectoryNode(name="d", digest=cas.upload(leaf.SerializeToString(deterministic=True)))])
    root_digest = BlobDigest.from_proto(cas.upload(root.SerializeToString(deterministic=True)))
    m = InputMaterializer(Client(cas.channel), tmp_path / "cache")
    m.check(root_digest)
    assert tree_violation(root_digest, lambda d: None, known_valid=m._valid) is None
    m.cas = None  # a second check needs nothing from the CAS
    m.check(root_digest)
