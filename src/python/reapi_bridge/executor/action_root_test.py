"""Where sandboxes and input caches go when the action user cannot reach the work dir."""

import os
import stat
from pathlib import Path

import pytest

from reapi_bridge.executor.action_root import (
    FOLDER,
    ActionRootError,
    action_root,
    reachable_copy,
    unreachable_ancestor,
)
from reapi_bridge.executor.users import RunAs
from reapi_bridge_testing.bridge import traversable_temp_dir

NOBODY = RunAs(65534, 65534, "nobody")
as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only an executor running as root runs actions as another user"
)


@pytest.fixture
def open_dir():
    with traversable_temp_dir() as d:
        yield d


@pytest.fixture
def private_work(open_dir) -> Path:
    private = open_dir / "private"
    private.mkdir()
    private.chmod(0o700)
    work = private / "checkout" / "executor"
    work.mkdir(parents=True)
    return work


@as_root
def test_reachability_follows_the_owner_group_and_other_bits(open_dir):
    folder = open_dir / "f"
    folder.mkdir()
    for mode, owner, group, reachable in [
        (0o700, 65534, 0, True),
        (0o770, 0, 65534, True),
        (0o701, 0, 0, True),
        (0o707, 0, 65534, False),  # group bits apply, not other bits
        (0o770, 0, 0, False),
    ]:
        os.chown(folder, owner, group)
        folder.chmod(mode)
        assert (unreachable_ancestor(folder, NOBODY) is None) == reachable, oct(mode)


def test_a_reachable_work_dir_or_no_other_user_keeps_everything_in_the_work_dir(open_dir, private_work):
    work = open_dir / "work"
    work.mkdir()
    assert action_root(work, NOBODY, bases=[]) == work
    assert action_root(private_work, None, bases=[]) == private_work


@as_root
def test_an_unreachable_work_dir_gets_a_folder_of_ours_outside_that_the_action_user_reaches(
    open_dir, private_work
):
    assert unreachable_ancestor(private_work, NOBODY) == private_work.parent.parent
    base = open_dir / "base"
    base.mkdir()
    root = action_root(private_work, NOBODY, bases=[base])
    assert root.parent == base / FOLDER and unreachable_ancestor(root, NOBODY) is None
    shared, own = os.lstat(root.parent), os.lstat(root)
    assert (shared.st_uid, stat.S_IMODE(shared.st_mode)) == (0, 0o711)
    assert (own.st_uid, own.st_gid, stat.S_IMODE(own.st_mode)) == (0, NOBODY.gid, 0o710)
    assert action_root(private_work, NOBODY, bases=[base]) == root, "the same work dir, the same folder"
    other = private_work.parent / "other"
    other.mkdir()
    assert action_root(other, NOBODY, bases=[base]) != root


@as_root
@pytest.mark.parametrize("squat", ["symlink", "writable", "foreign"])
def test_a_folder_someone_else_could_have_made_is_refused(open_dir, private_work, squat):
    squatted, good = open_dir / "squatted", open_dir / "good"
    squatted.mkdir()
    good.mkdir()
    elsewhere = open_dir / "elsewhere"
    elsewhere.mkdir()
    target = squatted / FOLDER
    if squat == "symlink":
        target.symlink_to(elsewhere)
    elif squat == "writable":
        target.mkdir()
        target.chmod(0o777)
    else:
        target.mkdir()
        os.chown(target, 65534, 65534)
    assert action_root(private_work, NOBODY, bases=[squatted, good]).parent == good / FOLDER
    with pytest.raises(ActionRootError, match="refusing to use it") as excinfo:
        action_root(private_work, NOBODY, bases=[squatted])
    assert f"{private_work.parent.parent} is not searchable by 'nobody'" in str(excinfo.value)
    assert list(elsewhere.iterdir()) == [], "nothing is made through a symlink"


@as_root
def test_an_unreachable_tree_is_used_through_a_copy(open_dir, private_work):
    tree = private_work / "rootfs"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "tool").write_text("v1")
    (tree / "bin" / "alias").symlink_to("tool")
    reachable = open_dir / "reachable"
    reachable.mkdir()
    same = lambda a, b: (a / "bin" / "tool").read_text() == (b / "bin" / "tool").read_text()  # noqa: E731
    assert reachable_copy(reachable, open_dir / "unused", NOBODY, same) == reachable
    copy = reachable_copy(tree, open_dir / "copy", NOBODY, same)
    assert copy == open_dir / "copy" and os.readlink(copy / "bin" / "alias") == "tool"
    inode = copy.stat().st_ino
    assert reachable_copy(tree, copy, NOBODY, same).stat().st_ino == inode, "an up-to-date copy is kept"
    (tree / "bin" / "tool").write_text("v2")
    assert (reachable_copy(tree, copy, NOBODY, same) / "bin" / "tool").read_text() == "v2"
    assert sorted(p.name for p in open_dir.iterdir()) == ["copy", "private", "reachable"]
