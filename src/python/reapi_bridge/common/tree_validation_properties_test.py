"""Property tests: generated names, paths and symlink targets against the validation rules."""

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from reapi_bridge.common.tree_validation import (
    Violation,
    directory_violation,
    name_rule,
    path_rule,
    result_violation,
    target_rule,
)
from reapi_bridge.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

# Characters that make names awkward without making them invalid, and the invalid ones.
NAME_CHARS = st.sampled_from(list("ab.-_ Zé\u4e2d\n"))
names = st.text(NAME_CHARS, min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
BAD_NAMES = ["", ".", "..", "a/b", "/", "a\0b", "\0"]
BAD_COMPONENTS = ["", ".", ".."]

SETTINGS = settings(max_examples=300, deadline=None, database=None)


@SETTINGS
@given(names)
def test_generated_names_are_accepted(name):
    assert name_rule(name) is None


@SETTINGS
@given(st.lists(names, min_size=1, max_size=6))
def test_joined_names_are_valid_paths(parts):
    assert path_rule("/".join(parts)) is None


@SETTINGS
@given(st.lists(names, min_size=1, max_size=6), st.data())
def test_a_bad_component_anywhere_is_refused(parts, data):
    at = data.draw(st.integers(0, len(parts)))
    bad = data.draw(st.sampled_from(BAD_COMPONENTS))
    path = "/".join(parts[:at] + [bad] + parts[at:])
    assert path_rule(path) is not None
    assert path_rule("/" + "/".join(parts)) is not None
    assert path_rule("/".join(parts) + "/") is not None
    assert path_rule("/".join(parts) + "\0") is not None


def escapes(target: str, depth: int) -> bool:
    """An independent statement of the rule: some prefix of the target, resolved lexically
    (posixpath.normpath) from a directory `depth` levels below /R, leaves /R."""
    if target.startswith("/"):
        return True
    here = "/R" + "".join(f"/d{i}" for i in range(depth))
    parts = target.split("/")
    for i in range(1, len(parts) + 1):
        resolved = posixpath.normpath(posixpath.join(here, *parts[:i]))
        if not (resolved == "/R" or resolved.startswith("/R/")):
            return True
    return False


targets = st.lists(st.sampled_from(["..", ".", "", "a", "b c", "é"]), min_size=1, max_size=8).map("/".join)


@SETTINGS
@given(targets.filter(bool), st.integers(0, 5))
def test_symlink_targets_follow_lexical_resolution(target, depth):
    assert (target_rule(target, depth) is not None) == escapes(target, depth)


@SETTINGS
@given(targets.filter(bool), st.integers(0, 5))
def test_absolute_targets_are_refused(target, depth):
    assert target_rule("/" + target, depth) is not None


@SETTINGS
@given(st.lists(names, min_size=1, max_size=8, unique=True), st.sampled_from(BAD_NAMES))
def test_a_directory_with_one_bad_name_is_refused_naming_it(good, bad):
    entries = sorted(good + [bad], key=lambda n: n.encode())
    d = re_pb2.Directory(files=[re_pb2.FileNode(name=n) for n in entries])
    assert directory_violation(d, "top") == Violation(f"top/{bad}", name_rule(bad))
    assert directory_violation(re_pb2.Directory(files=[re_pb2.FileNode(name=n) for n in sorted(good, key=str.encode)])) is None


output_paths = st.lists(names, min_size=1, max_size=4).map("/".join)


@SETTINGS
@given(
    st.lists(output_paths, max_size=4),
    st.lists(output_paths, max_size=4),
    st.lists(st.tuples(output_paths, targets.filter(bool)), max_size=4),
)
def test_results_with_normalized_paths_are_accepted(files, dirs, links):
    links = [(p, t) for p, t in links if not escapes(t, p.count("/"))]
    result = re_pb2.ActionResult(
        output_files=[re_pb2.OutputFile(path=p) for p in files],
        output_directories=[re_pb2.OutputDirectory(path=p) for p in dirs],
        output_symlinks=[re_pb2.OutputSymlink(path=p, target=t) for p, t in links],
    )
    assert result_violation(result) is None


@SETTINGS
@given(
    st.lists(output_paths, max_size=3),
    st.sampled_from(["output_files", "output_directories", "output_symlinks", "output_file_symlinks"]),
    st.one_of(
        st.builds(lambda p: "../" + p, output_paths),
        st.builds(lambda p: "/" + p, output_paths),
        st.builds(lambda p: p + "/", output_paths),
        st.builds(lambda p: p + "/../..", output_paths),
        st.builds(lambda p: "./" + p, output_paths),
    ),
)
def test_a_result_with_an_escaping_path_is_refused_naming_it(good, field, bad):
    result = re_pb2.ActionResult(output_files=[re_pb2.OutputFile(path=p) for p in good])
    entries = getattr(result, field)
    if field == "output_directories":
        entries.add(path=bad)
    elif field == "output_files":
        entries.add(path=bad)
    else:
        entries.add(path=bad, target="x")
    v = result_violation(result)
    assert v is not None and (v.field, v.path) == (field, bad)


@SETTINGS
@given(output_paths, targets.filter(bool))
def test_output_symlink_targets_must_stay_in_the_working_directory(path, target):
    result = re_pb2.ActionResult(output_symlinks=[re_pb2.OutputSymlink(path=path, target=target)])
    refused = result_violation(result) is not None
    assert refused == escapes(target, path.count("/"))
