import pytest

from reapi_bridge.common.digests import BlobDigest
from reapi_bridge.common.errors import InvalidArgument
from reapi_bridge.common.tree_validation import (
    InvalidTree,
    Violation,
    command_violation,
    directory_violation,
    name_rule,
    path_rule,
    require,
    result_violation,
    target_rule,
    tree_message_violation,
    tree_violation,
)
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

EMPTY_FILE = BlobDigest.of(b"").to_proto(re_pb2.Digest)


def directory(files=(), dirs=(), links=()):
    """dirs: (name, Directory) pairs; links: (name, target) pairs; kept in the order given."""
    d = re_pb2.Directory()
    for name in files:
        d.files.add(name=name, digest=EMPTY_FILE)
    for name, child in dirs:
        d.directories.add(name=name, digest=digest(child).to_proto(re_pb2.Digest))
    for name, target in links:
        d.symlinks.add(name=name, target=target)
    return d


def digest(message) -> BlobDigest:
    return BlobDigest.of(message.SerializeToString(deterministic=True))


def build(root, *children):
    """The root's digest and the Directory map of a test tree (root and the given children)."""
    return digest(root), {digest(d): d for d in (root, *children)}


@pytest.mark.parametrize(
    "name, rule",
    [
        ("", "a name must not be empty"),
        (".", "a name must not be '.' or '..'"),
        ("..", "a name must not be '.' or '..'"),
        ("a/b", "a name must not contain '/'"),
        ("a\0b", "a name must not contain NUL"),
        ("...", None),
        (".hidden", None),
        ("with space", None),
        ("ünïcode", None),
    ],
)
def test_names(name, rule):
    assert name_rule(name) == rule


@pytest.mark.parametrize(
    "path, allow_empty, ok",
    [
        ("a/b/c", False, True),
        ("a", False, True),
        ("", False, False),
        ("", True, True),
        ("/etc/passwd", False, False),
        ("a/../b", False, False),
        ("../b", False, False),
        ("./b", False, False),
        ("a//b", False, False),
        ("a/", False, False),
        ("a\0", False, False),
        ("..a/b..", False, True),
    ],
)
def test_paths(path, allow_empty, ok):
    assert (path_rule(path, allow_empty=allow_empty) is None) == ok


@pytest.mark.parametrize(
    "target, depth, ok",
    [
        ("x", 0, True),
        ("./x", 0, True),
        ("../x", 0, False),
        ("../x", 1, True),
        ("../../x", 1, False),
        ("a/../../x", 1, True),
        ("a/../../../x", 1, False),
        ("../root/x", 0, False),  # leaves the root and comes back: still refused
        ("/etc/passwd", 5, False),
        ("", 0, False),
        ("a\0", 0, False),
        ("a//b/", 0, True),
    ],
)
def test_symlink_targets(target, depth, ok):
    assert (target_rule(target, depth) is None) == ok


def test_a_directory_named_dot_dot_is_named_by_its_full_path():
    a = directory(dirs=[("..", directory())])
    src = directory(dirs=[("a", a)])
    root_digest, found = build(directory(dirs=[("src", src)]), src, a, directory())
    violation = tree_violation(root_digest, found.get)
    assert violation == Violation("src/a/..", "a name must not be '.' or '..'")
    assert str(violation) == "'src/a/..': a name must not be '.' or '..'"


def test_sorting_and_uniqueness():
    assert directory_violation(directory(files=["b", "a"])) == Violation(
        "a", "a directory's files must be sorted by name (bytewise UTF-8)"
    )
    assert directory_violation(directory(files=["a", "a"])).rule.startswith("a name must appear once")
    # Unique across the three lists, even where each list is sorted.
    assert directory_violation(directory(files=["x"], links=[("x", "y")])).path == "x"
    assert directory_violation(directory(files=["x"], dirs=[("x", directory())])).path == "x"
    # Bytewise UTF-8: "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9).
    assert directory_violation(directory(files=["Z", "a", "é"])) is None
    assert directory_violation(directory(files=["é", "a"])) is not None


def test_symlinks_may_climb_only_as_far_as_they_are_deep():
    inner = directory(links=[("ok", "../../top"), ("up", "../sibling")])
    mid = directory(dirs=[("inner", inner)])
    root_digest, found = build(directory(dirs=[("mid", mid)]), mid, inner)
    assert tree_violation(root_digest, found.get) is None
    bad = directory(links=[("out", "../../../etc/passwd")])
    mid = directory(dirs=[("inner", bad)])
    root_digest, found = build(directory(dirs=[("mid", mid)]), mid, bad)
    violation = tree_violation(root_digest, found.get)
    assert violation.path == "mid/inner/out" and "leaves the root" in violation.rule
    root_digest, found = build(directory(links=[("abs", "/etc/passwd")]))
    assert "absolute" in tree_violation(root_digest, found.get).rule


def test_a_shared_directory_is_checked_where_it_is_shallowest():
    # Valid two levels down, escaping one level down: the shallow occurrence is refused.
    shared = directory(links=[("l", "../../x")])
    deep = directory(dirs=[("s", shared)])
    root = directory(dirs=[("a", deep), ("b", shared)])
    root_digest, found = build(root, deep, shared)
    assert tree_violation(root_digest, found.get).path == "b/l"
    known = {}
    assert tree_violation(digest(deep), found.get, depth=1, known_valid=known) is None
    assert known[digest(shared)] == 2
    # The memo does not hide the shallower use.
    assert tree_violation(root_digest, found.get, known_valid=known).path == "b/l"


def test_known_valid_is_updated_only_for_a_whole_valid_tree():
    child = directory(files=["f"])
    root = directory(dirs=[("c", child)])
    known = {}
    assert tree_violation(digest(root), {digest(root): root}.get, known_valid=known) is None
    assert known == {}  # the child was missing: nothing recorded
    assert tree_violation(digest(root), {digest(root): root, digest(child): child}.get, known_valid=known) is None
    assert known == {digest(root): 0, digest(child): 1}
    assert tree_violation(digest(root), lambda d: pytest.fail("looked up again"), known_valid=known) is None


def test_commands():
    assert command_violation(re_pb2.Command(output_files=["a/b"], output_directories=["", "d"], working_directory="w")) is None
    v = command_violation(re_pb2.Command(output_files=["ok", "../escape"]))
    assert v == Violation("../escape", "a path must be normalized (no '.' or '..' component)", "output_files")
    assert command_violation(re_pb2.Command(working_directory="/abs")).field == "working_directory"
    assert command_violation(re_pb2.Command(working_directory="a/..")).field == "working_directory"
    assert command_violation(re_pb2.Command(output_paths=["x/./y"])).field == "output_paths"
    assert command_violation(re_pb2.Command(output_files=[""])).field == "output_files"


def test_results():
    good = re_pb2.ActionResult(
        output_files=[re_pb2.OutputFile(path="out/a")],
        output_symlinks=[re_pb2.OutputSymlink(path="out/l", target="a")],
        output_directories=[re_pb2.OutputDirectory(path="")],
    )
    assert result_violation(good) is None
    for result, field, path in [
        (re_pb2.ActionResult(output_files=[re_pb2.OutputFile(path="../x")]), "output_files", "../x"),
        (re_pb2.ActionResult(output_files=[re_pb2.OutputFile(path="/x")]), "output_files", "/x"),
        (re_pb2.ActionResult(output_directories=[re_pb2.OutputDirectory(path="d/")]), "output_directories", "d/"),
        (re_pb2.ActionResult(output_symlinks=[re_pb2.OutputSymlink(path="l", target="/etc/passwd")]), "output_symlinks", "l"),
        (re_pb2.ActionResult(output_symlinks=[re_pb2.OutputSymlink(path="d/l", target="../../x")]), "output_symlinks", "d/l"),
        (re_pb2.ActionResult(output_file_symlinks=[re_pb2.OutputSymlink(path="l", target="../x")]), "output_file_symlinks", "l"),
        (re_pb2.ActionResult(output_directory_symlinks=[re_pb2.OutputSymlink(path="a\0", target="x")]), "output_directory_symlinks", "a\0"),
    ]:
        v = result_violation(result)
        assert (v.field, v.path) == (field, path), v


def test_output_trees_are_checked_with_the_working_directory_as_root():
    inner = directory(links=[("l", "../../../x")])  # out/d/inner/l climbs to the working directory
    root = directory(dirs=[("inner", inner)])
    t = re_pb2.Tree(root=root, children=[inner])
    assert tree_message_violation(t, "out/d") is None
    assert tree_message_violation(t, "d").path == "d/inner/l"
    bad = re_pb2.Tree(root=directory(files=["."]))
    result = re_pb2.ActionResult(
        output_directories=[re_pb2.OutputDirectory(path="out", tree_digest=digest(bad).to_proto(re_pb2.Digest))]
    )
    assert result_violation(result) is None  # the Tree is not available: not checked
    v = result_violation(result, {digest(bad): bad}.get)
    assert (v.field, v.path) == ("output_directories", "out/.")
    # A child no directory names is still checked.
    stray = re_pb2.Tree(root=directory(), children=[directory(files=[".."])])
    assert tree_message_violation(stray, "o").rule == "a name must not be '.' or '..'"


def test_require_raises_invalid_argument_with_the_context():
    require(None)
    with pytest.raises(InvalidArgument) as e:
        require(Violation("a/..", "a name must not be '.' or '..'"), "input root: ")
    assert isinstance(e.value, InvalidTree)
    assert str(e.value) == "input root: 'a/..': a name must not be '.' or '..'"
    assert e.value.status_name == "INVALID_ARGUMENT"
