"""Where an executor keeps what its actions must reach: the sandboxes, the input cache the
sandboxes link into, and (emulated ARM64) the aarch64 root filesystem.

Rules:
- Actions run as another user (`--run-as`, when the executor is root) must be able to walk
  down to these folders, with that user's uid and primary group (setpriv clears the others).
  When they can reach the work dir, everything lives in it, as always.
- When they cannot (a checkout under /root, or in a `mktemp -d` folder), these folders live in
  `crossbuild-executors/<sha256 of the work dir's real path>/` under /var/tmp, else under
  `tempfile.gettempdir()`. /var/tmp comes first because the input cache can grow to GiBs and
  /tmp is often memory. The same work dir always gets the same folder, so caches stay warm.
- Both levels must be real directories (not symlinks) owned by the executor's user and
  writable by no one else; a folder someone else made is refused, never reused.
  `crossbuild-executors` is 0711 (pass through, not list); the folder under it is 0710 and
  belongs to the action user's group, so of other users only that group can read the inputs
  (a private checkout's sources stay as private as the action user allows).
- Actions cannot write to the caches: their files and folders belong to the executor's user
  and are read-only.
- The lock file and logs stay in the work dir (one executor per work dir, so one per folder).
- The append-only caches path is Pants' contract
  (`[GLOBAL].remote_execution_append_only_caches_base_path`), so it is never moved: it must
  be reachable where it is (the default, under /tmp, is).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from reapi_bridge.executor.users import RunAs

logger = logging.getLogger(__name__)

FOLDER = "crossbuild-executors"


class ActionRootError(Exception):
    """No folder the action user can reach could be found or made safely."""


def unreachable_ancestor(path: Path, user: RunAs) -> Optional[Path]:
    """The first of `path` and its ancestors that `user` (uid and primary group only) cannot
    search, or None."""
    if user.uid == 0:
        return None
    for folder in [path, *path.parents]:
        info = os.stat(folder)
        if info.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return folder
    return None


def check_reachable(path: Path, user: RunAs) -> None:
    """Actions run as `user` must be able to walk down to `path` (made if missing)."""
    path.mkdir(parents=True, exist_ok=True)
    blocked = unreachable_ancestor(path, user)
    if blocked is not None:
        raise ActionRootError(
            f"{blocked} is not searchable by {user.name!r}, so actions run as that user cannot reach "
            f"{path}; pick a path outside it, or pass --run-as '' to run actions as root"
        )


def private_dir(path: Path, mode: int, gid: int = -1) -> Path:
    """Makes `path` (in a folder others cannot write) or accepts it only if it is a real
    directory of ours that group and others cannot write; leaves it `mode`, group `gid`."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise ActionRootError(f"{path} exists and is not a directory (a symlink?); refusing to use it")
    if info.st_uid != os.geteuid():
        raise ActionRootError(f"{path} belongs to uid {info.st_uid}, not to this executor's user; refusing to use it")
    if info.st_mode & 0o022:
        raise ActionRootError(f"{path} is writable by group or others; refusing to use it")
    if gid != -1 and info.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)
    return path


def default_bases() -> List[Path]:
    return list(dict.fromkeys([Path("/var/tmp"), Path(tempfile.gettempdir())]))


def action_root(work: Path, user: Optional[RunAs], bases: Optional[Sequence[Path]] = None) -> Path:
    """The folder holding what actions must reach, for an executor whose work dir is `work`
    (an absolute, real path) and whose actions run as `user` (None: as the executor)."""
    if user is None:
        return work
    blocked = unreachable_ancestor(work, user)
    if blocked is None:
        return work
    key = hashlib.sha256(str(work).encode()).hexdigest()[:24]
    refused = []
    for base in bases if bases is not None else default_bases():
        if not base.is_dir() or unreachable_ancestor(base, user) is not None:
            refused.append(f"{base} is missing or not searchable by {user.name!r}")
            continue
        try:
            root = private_dir(private_dir(base / FOLDER, 0o711) / key, 0o710, user.gid)
        except (ActionRootError, OSError) as exc:
            refused.append(str(exc))
            continue
        logger.info(
            "%s is not searchable by %r, so actions run as that user cannot reach the work dir %s; "
            "sandboxes and input caches are in %s",
            blocked, user.name, work, root,
        )
        return root
    raise ActionRootError(
        f"{blocked} is not searchable by {user.name!r}, so actions run as that user cannot reach {work}, "
        f"and no other folder could be used ({'; '.join(refused)}); pick a work dir outside "
        f"{blocked}, or pass --run-as '' to run actions as root"
    )


def reachable_copy(tree: Path, dest: Path, user: RunAs, same: Callable[[Path, Path], bool]) -> Path:
    """`tree` itself if `user` can reach it, else a copy at `dest` (kept while `same(tree,
    dest)` holds; replaced otherwise)."""
    if unreachable_ancestor(tree, user) is None:
        return tree
    if dest.is_dir() and same(tree, dest):
        return dest
    staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex}"
    old = staging.with_name(staging.name + ".old")
    try:
        shutil.copytree(tree, staging, symlinks=True)
        os.chmod(staging, 0o755)
        if dest.exists() or dest.is_symlink():
            os.rename(dest, old)
        os.rename(staging, dest)
    finally:
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
    logger.info("%s is not reachable by %r; using a copy at %s", tree, user.name, dest)
    return dest
