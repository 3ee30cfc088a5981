"""The rules input trees, commands and action results must follow before anything trusts them.

Shared by the bridge (Execute, UpdateActionResult, results executors report) and the executors
(before an action's inputs are staged, and on the outputs they collect), so both refuse the
same things with the same words.

Directory (an input root, or a Tree's directories):
- a file, directory or symlink name is not empty, not "." or "..", and holds no "/" or NUL;
- files, directories and symlinks are each strictly sorted by name (bytewise UTF-8, as REAPI
  requires), and no name appears twice across the three;
- a symlink target is not empty, holds no NUL, is not absolute, and, resolved lexically from the
  symlink's own directory, never leaves the root (`../x` is fine one level down).
Paths (Command output paths and working directory, ActionResult output paths): relative and
normalized: no empty, "." or ".." component (so no leading or trailing "/"), no NUL. Only an
output directory may be "" (the whole working directory). Output symlink targets follow the
Directory rule, with the working directory as the root.

Every check returns the first Violation found (None when there is none); `require` turns one
into InvalidTree, an INVALID_ARGUMENT naming the path and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, MutableMapping, Optional, Tuple

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.tree import walk_paths

# digest -> Directory, None when it is not available (then it is not checked).
Lookup = Callable[[BlobDigest], Optional[object]]


@dataclass(frozen=True)
class Violation:
    """Which path breaks which rule; `field` says where the path came from ("" for a tree)."""

    path: str
    rule: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.field} " if self.field else ""
        return f"{where}{self.path!r}: {self.rule}"


class InvalidTree(InvalidArgument):
    def __init__(self, violation: Violation, context: str = "") -> None:
        super().__init__(f"{context}{violation}")
        self.violation = violation


def require(violation: Optional[Violation], context: str = "") -> None:
    """Raises InvalidTree for a violation; `context` (e.g. "input root: ") leads the message."""
    if violation is not None:
        raise InvalidTree(violation, context)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


# ----------------------------------------------------------------------------- names and paths


def name_rule(name: str) -> Optional[str]:
    """The rule a directory entry's name breaks, or None."""
    if not name:
        return "a name must not be empty"
    if name in (".", ".."):
        return "a name must not be '.' or '..'"
    if "/" in name:
        return "a name must not contain '/'"
    if "\0" in name:
        return "a name must not contain NUL"
    return None


def path_rule(path: str, *, allow_empty: bool = False) -> Optional[str]:
    """The rule a relative path breaks (see the module's rules), or None."""
    if path == "":
        return None if allow_empty else "a path must not be empty"
    if "\0" in path:
        return "a path must not contain NUL"
    if path.startswith("/"):
        return "a path must be relative (no leading '/')"
    for part in path.split("/"):
        if part == "":
            return "a path must be normalized (no empty component, no trailing '/')"
        if part in (".", ".."):
            return "a path must be normalized (no '.' or '..' component)"
    return None


def target_rule(target: str, depth: int) -> Optional[str]:
    """The rule a symlink target breaks, for a symlink `depth` directories below the root it
    must stay in, or None. Resolved lexically: `..` climbs one level, `.` and "" stay."""
    if not target:
        return "a symlink target must not be empty"
    if "\0" in target:
        return "a symlink target must not contain NUL"
    if target.startswith("/"):
        return f"symlink target {target!r} is absolute"
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return f"symlink target {target!r} leaves the root"
        elif part not in ("", "."):
            depth += 1
    return None


def _depth(path: str) -> int:
    return 0 if path == "" else path.count("/") + 1


def _parent_depth(path: str) -> int:
    return path.count("/")


# ----------------------------------------------------------------------------- directories


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def directory_violation(directory, path: str = "", depth: int = 0) -> Optional[Violation]:
    """The first rule one Directory at `path` (`depth` levels below the root symlinks must stay
    in) breaks, or None. Children are not looked into."""
    seen = set()
    for kind, entries in (("files", directory.files), ("directories", directory.directories), ("symlinks", directory.symlinks)):
        previous: Optional[bytes] = None
        for entry in entries:
            here = _join(path, entry.name)
            rule = name_rule(entry.name)
            if rule is not None:
                return Violation(here, rule)
            if entry.name in seen:
                return Violation(here, "a name must appear once among a directory's files, directories and symlinks")
            seen.add(entry.name)
            key = _sort_key(entry.name)
            if previous is not None and key <= previous:
                return Violation(here, f"a directory's {kind} must be sorted by name (bytewise UTF-8)")
            previous = key
    for link in directory.symlinks:
        rule = target_rule(link.target, depth)
        if rule is not None:
            return Violation(_join(path, link.name), rule)
    return None


def tree_violation(
    root: BlobDigest,
    lookup: Lookup,
    *,
    prefix: str = "",
    depth: int = 0,
    known_valid: Optional[MutableMapping[BlobDigest, int]] = None,
) -> Optional[Violation]:
    """The first rule a Directory tree breaks, or None. Directories `lookup` does not find are
    not checked (the caller says whether that is an error). Paths are named from `prefix` (the
    root's own path), `depth` levels below the root symlinks must stay in.

    `known_valid` (digest -> the least depth at which its whole subtree was found valid) skips
    what an earlier check covered; it is updated only when the whole tree was found and valid."""
    known = known_valid if known_valid is not None else {}
    checked: Dict[BlobDigest, int] = {}  # digest -> the least depth it was visited at

    def skip(digest: BlobDigest, level: int) -> bool:
        here = depth + level
        if min(known.get(digest, here + 1), checked.get(digest, here + 1)) <= here:
            return True
        checked[digest] = here
        return False

    missing = []

    def find(digest: BlobDigest):
        directory = lookup(digest)
        if directory is None:
            missing.append(digest)
        return directory

    seen: Dict[BlobDigest, int] = {}
    for path, level, digest, directory in walk_paths(root, find, skip):
        found = directory_violation(directory, _join(prefix, path) if path else prefix, depth + level)
        if found is not None:
            return found
        seen[digest] = min(depth + level, seen.get(digest, depth + level))
    if known_valid is not None and not missing:
        for digest, here in seen.items():
            known_valid[digest] = min(here, known_valid.get(digest, here))
    return None


def tree_message_violation(tree, path: str) -> Optional[Violation]:
    """The first rule a Tree (an output directory at `path` under the working directory)
    breaks, or None. Children are found by the digest of their deterministic serialisation;
    a child no directory reaches that way is checked where it would be shallowest."""
    children: Dict[BlobDigest, object] = {}
    for child in tree.children:
        children.setdefault(BlobDigest.of(child.SerializeToString(deterministic=True)), child)
    root_key = BlobDigest.of(tree.root.SerializeToString(deterministic=True))
    directories = {**children, root_key: tree.root}
    reached = set()

    def lookup(digest: BlobDigest):
        reached.add(digest)
        return directories.get(digest)

    found = tree_violation(root_key, lookup, prefix=path, depth=_depth(path))
    if found is not None:
        return found
    for digest, child in children.items():
        if digest not in reached:
            found = directory_violation(child, _join(path, f"(unreferenced directory {digest})"), _depth(path) + 1)
            if found is not None:
                return found
    return None


# ----------------------------------------------------------------------------- commands and results


def _paths_violation(field: str, paths: Iterable[str], allow_empty: bool = False) -> Optional[Violation]:
    for path in paths:
        rule = path_rule(path, allow_empty=allow_empty)
        if rule is not None:
            return Violation(path, rule, field)
    return None


def command_violation(command) -> Optional[Violation]:
    """The first rule a Command's working directory or output paths break, or None."""
    return (
        _paths_violation("working_directory", [command.working_directory], allow_empty=True)
        or _paths_violation("output_paths", command.output_paths, allow_empty=True)
        or _paths_violation("output_files", command.output_files)
        or _paths_violation("output_directories", command.output_directories, allow_empty=True)
    )


_SYMLINK_FIELDS: Tuple[str, ...] = ("output_symlinks", "output_file_symlinks", "output_directory_symlinks")


def result_violation(result, tree: Callable[[BlobDigest], Optional[object]] = lambda digest: None) -> Optional[Violation]:
    """The first rule an ActionResult breaks, or None. `tree` returns the Tree an output
    directory names (None: not available, not checked)."""
    found = _paths_violation("output_files", (f.path for f in result.output_files))
    if found is not None:
        return found
    for field in _SYMLINK_FIELDS:
        for link in getattr(result, field):
            rule = path_rule(link.path) or target_rule(link.target, _parent_depth(link.path))
            if rule is not None:
                return Violation(link.path, rule, field)
    for out in result.output_directories:
        rule = path_rule(out.path, allow_empty=True)
        if rule is not None:
            return Violation(out.path, rule, "output_directories")
        message = tree(BlobDigest.from_proto(out.tree_digest)) if out.HasField("tree_digest") else None
        if message is not None:
            found = tree_message_violation(message, out.path)
            if found is not None:
                return Violation(found.path, found.rule, "output_directories")
    return None
