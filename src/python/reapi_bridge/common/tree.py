"""The one walk over a Directory tree held in a CAS, wherever the blobs come from.

REAPI stores an input root as Directory messages that name their children by digest. The
walk goes level by level (breadth first), fetching each level's directories in one call, and
visits each directory once however often it is shared. Callers supply the fetch (the bridge's
own store, a remote CAS in batches, a memo in front of either) and may prune children.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument

# digests of one level -> the Directory messages found; absent ones are left out.
Fetch = Callable[[Sequence[BlobDigest]], Dict[BlobDigest, object]]


def walk_directories(
    root: BlobDigest,
    fetch: Fetch,
    prune: Callable[[BlobDigest], bool] = lambda digest: False,
) -> Iterator[Tuple[BlobDigest, object]]:
    """Yields (digest, Directory) for root and every directory below it, breadth first in the
    order children are listed, each once. A directory `fetch` does not return is skipped with
    everything below it (the caller decides whether that is an error); a child for which
    `prune` says True is not fetched."""
    seen = {root}
    level: List[BlobDigest] = [root]
    while level:
        found = fetch(level)
        next_level: List[BlobDigest] = []
        for digest in level:
            directory = found.get(digest)
            if directory is None:
                continue
            yield digest, directory
            for child in directory.directories:
                child_digest = BlobDigest.from_proto(child.digest)
                if child_digest not in seen and not prune(child_digest):
                    seen.add(child_digest)
                    next_level.append(child_digest)
        level = next_level


def parse_directories(blobs: Dict[BlobDigest, bytes], directory_cls) -> Dict[BlobDigest, object]:
    """Directory messages from their serialised blobs; a blob that is not one is INVALID_ARGUMENT."""
    parsed = {}
    for digest, data in blobs.items():
        try:
            parsed[digest] = directory_cls.FromString(data)
        except Exception:
            raise InvalidArgument(f"blob {digest} is not a valid {directory_cls.__name__}")
    return parsed


def file_digests(directories: Iterable[object]) -> List[BlobDigest]:
    """The digests of every file in the given Directory messages (with repeats)."""
    return [BlobDigest.from_proto(f.digest) for d in directories for f in d.files]


def walk_paths(
    root: BlobDigest,
    lookup: Callable[[BlobDigest], Optional[object]],
    skip: Callable[[BlobDigest, int], bool] = lambda digest, depth: False,
) -> Iterator[Tuple[str, int, BlobDigest, object]]:
    """Yields (path, depth, digest, Directory) for root ("", 0) and every directory below it,
    depth first in listed order, once per path: a directory shared by several paths is visited
    at each (unless `skip(digest, depth)` says True, which also skips everything below it).
    A directory `lookup` returns None for is skipped with everything below it. A path is the
    names from root down joined by "/", taken as they are (see tree_validation for the rules
    names must follow)."""
    stack: List[Tuple[str, int, BlobDigest]] = [("", 0, root)]
    while stack:
        path, depth, digest = stack.pop()
        if skip(digest, depth):
            continue
        directory = lookup(digest)
        if directory is None:
            continue
        yield path, depth, digest, directory
        for child in reversed(directory.directories):
            stack.append((f"{path}/{child.name}" if path else child.name, depth + 1, BlobDigest.from_proto(child.digest)))


def files_under(root: BlobDigest, directories: Mapping[BlobDigest, object]) -> Iterator[Tuple[str, object]]:
    """(path, FileNode) for every file of the tree, depth first in listed order. Directories
    missing from `directories` are skipped."""
    for path, _, _, directory in walk_paths(root, directories.get):
        for f in directory.files:
            yield (f"{path}/{f.name}" if path else f.name), f
