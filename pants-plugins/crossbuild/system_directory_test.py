"""`crossbuild_system_directory` through Pants' own RuleRunner, with real processes copying real
directories outside the build root: a missing directory, no pin, a different pin (both digests
in the message), a matching pin (the snapshot laid out for sandboxes), bad fields, and the
`crossbuild-pins` goal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from crossbuild.system_directory import (
    CrossbuildPins,
    SystemDirectory,
    SystemDirectoryRequest,
    SystemDirectorySnapshot,
    copy_roots,
)
from crossbuild.testutil import plugin_rules, plugin_target_types

ADDRESS = Address("third_party", target_name="fw")
FILES = {
    "include/fw/fw.h": "#pragma once\nint fw_version(void);\n",
    "include/fw/detail/impl.h": "#define FW_IMPL 1\n",
    "src/fw.cc": '#include "fw/fw.h"\nint fw_version(void) { return 3; }\n',
    "src/fw_main.cc": "int main() { return 0; }\n",
    "docs/README": "not selected\n",
}


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        target_types=plugin_target_types(),
        rules=[
            *plugin_rules(),
            QueryRule(SystemDirectory, [SystemDirectoryRequest]),
            QueryRule(SystemDirectorySnapshot, [SystemDirectoryRequest]),
            QueryRule(DigestContents, [Digest]),
        ],
    )


def machine_dir(tmp_path: Path, name: str = "usr-src-fw", files=None) -> Path:
    root = tmp_path / name
    for rel, text in (files or FILES).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def write_target(rule_runner: RuleRunner, directory: Path, digest: str | None = None, **fields: str) -> None:
    args = {
        "path": repr(str(directory)),
        "globs": '["include/**", "src/*.cc"]',
        "include_dirs": '["include"]',
        "sources": '["src/fw.cc"]',
        "package": '"libfw-dev"',
        **fields,
    }
    if digest is not None:
        args["digest"] = repr(digest)
    body = ", ".join(f"{k}={v}" for k, v in args.items())
    rule_runner.write_files({"third_party/BUILD": f'crossbuild_system_directory(name="fw", {body})\n'})


def snapshot(rule_runner: RuleRunner) -> SystemDirectorySnapshot:
    return rule_runner.request(SystemDirectorySnapshot, [SystemDirectoryRequest(ADDRESS)])


def pinned_error(rule_runner: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(SystemDirectory, [SystemDirectoryRequest(ADDRESS)])
    return str(e.value)


def test_a_missing_directory_names_the_target_path_and_package(rule_runner, tmp_path):
    missing = tmp_path / "not-installed"
    write_target(rule_runner, missing, digest="0" * 64 + ":1")
    message = pinned_error(rule_runner)
    assert f"The directory {missing} of `crossbuild_system_directory` third_party:fw does not exist" in message
    assert "`libfw-dev`" in message and "apt-get install libfw-dev" in message


def test_no_pin_prints_the_digest_to_pin(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root)
    actual = snapshot(rule_runner).actual
    message = pinned_error(rule_runner)
    assert "third_party:fw has no `digest` pin" in message
    assert f'digest="{actual}"' in message


def test_different_content_names_the_path_and_both_digests(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root)
    pinned = snapshot(rule_runner).actual
    write_target(rule_runner, root, digest=pinned)
    (root / "include/fw/fw.h").write_text("#pragma once\nint fw_version(void); /* 1.13 */\n")
    rule_runner.set_options([])  # the snapshot process runs once per session
    changed = snapshot(rule_runner).actual
    assert changed != pinned
    message = pinned_error(rule_runner)
    assert f"The files of {root} differ from the pin of `crossbuild_system_directory` third_party:fw" in message
    assert f"the pin is {pinned}, this machine's copy has {changed}" in message
    assert f'update the pin to `digest="{changed}"`' in message


def test_a_new_executable_bit_is_a_different_content(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root)
    before = snapshot(rule_runner).actual
    os.chmod(root / "src/fw.cc", 0o755)
    rule_runner.set_options([])
    assert snapshot(rule_runner).actual != before


def test_the_pin_covers_selected_content_only_not_place_or_times(rule_runner, tmp_path):
    first = machine_dir(tmp_path, "first")
    write_target(rule_runner, first)
    pin = snapshot(rule_runner).actual
    second = machine_dir(tmp_path, "elsewhere/second", files={**FILES, "docs/README": "changed, not selected\n"})
    os.utime(second / "src/fw.cc", (1, 1))
    write_target(rule_runner, second)
    rule_runner.set_options([])
    assert snapshot(rule_runner).actual == pin


def test_a_matching_pin_gives_the_snapshot_laid_out_for_sandboxes(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root)
    pin = snapshot(rule_runner).actual
    write_target(rule_runner, root, digest=pin, include_dirs='["include", "."]', linkopts='["-lpthread"]')
    system = rule_runner.request(SystemDirectory, [SystemDirectoryRequest(ADDRESS)])
    sandbox_root = f"__crossbuild_system{root}"
    assert system.root == sandbox_root
    assert system.include_dirs == (f"{sandbox_root}/include", sandbox_root)
    assert system.sources == (f"{sandbox_root}/src/fw.cc",)
    assert system.linkopts == ("-lpthread",)
    contents = rule_runner.request(DigestContents, [system.digest])
    assert {fc.path: fc.content.decode() for fc in contents} == {
        f"{sandbox_root}/{rel}": text for rel, text in FILES.items() if not rel.startswith("docs/")
    }


def test_symbolic_links_are_followed(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    target = tmp_path / "elsewhere.h"
    target.write_text("#define ELSEWHERE 1\n")
    (root / "include/fw/link.h").symlink_to(target)
    write_target(rule_runner, root)
    snap = snapshot(rule_runner)
    assert "include/fw/link.h" in snap.files
    contents = rule_runner.request(DigestContents, [snap.digest])
    assert {fc.path: fc.content for fc in contents}["include/fw/link.h"] == b"#define ELSEWHERE 1\n"


def test_globs_that_select_nothing_are_an_error(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root, globs='["lib/**"]', sources="[]", include_dirs="[]", digest="0" * 64 + ":1")
    message = pinned_error(rule_runner)
    assert "select no file of" in message and str(root) in message


def test_sources_and_include_dirs_must_be_in_the_snapshot(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root, globs='["include/**"]', sources='["src/fw.cc"]', include_dirs='["include", "inc"]')
    pin = snapshot(rule_runner).actual
    write_target(rule_runner, root, digest=pin, globs='["include/**"]', sources='["src/fw.cc"]', include_dirs='["include", "inc"]')
    message = pinned_error(rule_runner)
    assert "`include_dirs` names inc" in message and "`sources` names src/fw.cc" in message


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"path": '"usr/src/fw"'}, "The `path` field of third_party:fw"),
        ({"path": '"/usr/src/../fw"'}, "The `path` field of third_party:fw"),
        ({"path": '"/"'}, "The `path` field of third_party:fw"),
        ({"digest": '"abc"'}, "The `digest` field of third_party:fw"),
        ({"digest": '"' + "A" * 64 + ':12"'}, "The `digest` field of third_party:fw"),
        ({"globs": '["../etc/**"]'}, "The `globs` field of third_party:fw"),
        ({"globs": '["!docs/**"]'}, "at least one glob that is not an exclusion"),
        ({"include_dirs": '["/usr/include"]'}, "The `include_dirs` field of third_party:fw"),
        ({"sources": '["src/*.cc"]'}, "is a glob"),
        ({"sources": '["include/fw/fw.h"]'}, "does not end in one of"),
    ],
)
def test_bad_fields_name_the_target_and_field(rule_runner, tmp_path, fields, expected):
    write_target(rule_runner, tmp_path, **fields)
    with pytest.raises(ExecutionError) as e:
        tgt = rule_runner.get_target(ADDRESS)
        for field in tgt.field_values.values():
            field.value
    assert expected in str(e.value), str(e.value)


def test_copy_roots_are_the_literal_prefixes_of_the_globs():
    assert copy_roots(("include/**", "src/**")) == ("include", "src")
    assert copy_roots(("catch2/catch.hpp",)) == ("catch2/catch.hpp",)
    assert copy_roots(("include/**", "include/gtest/gtest.h", "!include/x/**")) == ("include",)
    assert copy_roots(("*.h", "src/**")) == (".",)
    assert copy_roots(("./src/*.cc",)) == ("src",)


def test_the_pins_goal_prints_each_digest_and_fails_on_a_mismatch(rule_runner, tmp_path):
    root = machine_dir(tmp_path)
    write_target(rule_runner, root)
    actual = snapshot(rule_runner).actual
    result = rule_runner.run_goal_rule(CrossbuildPins, args=["third_party:fw"])
    assert result.exit_code == 1
    assert f"third_party:fw: {root} (4 files) has no pin" in result.stdout
    assert f'digest="{actual}"' in result.stdout
    write_target(rule_runner, root, digest=actual)
    result = rule_runner.run_goal_rule(CrossbuildPins, args=["third_party:fw"])
    assert result.exit_code == 0, result.stdout
    assert "matches its pin" in result.stdout
    write_target(rule_runner, tmp_path / "gone", digest=actual)
    result = rule_runner.run_goal_rule(CrossbuildPins, args=["third_party:fw"])
    assert result.exit_code == 1 and "MISSING" in result.stdout and "apt-get install libfw-dev" in result.stdout


def test_every_field_has_help():
    from typing import get_type_hints

    from crossbuild.target_types import CrossbuildSystemDirectoryTarget, CrossbuildTestArchiveTarget

    assert CrossbuildSystemDirectoryTarget.help
    for field in (*CrossbuildSystemDirectoryTarget.core_fields, *CrossbuildTestArchiveTarget.core_fields):
        assert field.help, field.alias
        assert "raw_value" in get_type_hints(field.compute_value), field.alias
