"""`crossbuild_trampoline` fields and bad input, through Pants' own RuleRunner. (Building and
running real launchers: tests/python/crossbuild_e2e/trampoline_test.py.)"""

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from crossbuild.target_types import (
    TRAMPOLINE_PLATFORMS,
    TrampolinePlatformsField,
    infer_interpreter_kind,
    interpreter_kind,
)
from crossbuild.testutil import plugin_rules, plugin_target_types
from crossbuild.trampoline import TrampolineRequest, Trampolines
from crossbuild.trampoline_format import InterpreterKind


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        target_types=plugin_target_types(),
        rules=[*plugin_rules(), QueryRule(Trampolines, [TrampolineRequest])],
    )


def target(rule_runner, build: str, name: str = "t", files=None):
    rule_runner.write_files({"app/BUILD": build, "app/main.py": "print('hi')\n", **(files or {})})
    return rule_runner.get_target(Address("app", target_name=name))


def build_error(rule_runner, build: str) -> str:
    with pytest.raises(ExecutionError) as e:
        target(rule_runner, build)
    return str(e.value)


def test_defaults(rule_runner):
    tgt = target(rule_runner, 'crossbuild_trampoline(name="t", script="main.py")')
    assert tuple(tgt[TrampolinePlatformsField].value) == TRAMPOLINE_PLATFORMS
    assert interpreter_kind(tgt) is InterpreterKind.PATH


@pytest.mark.parametrize(
    "spec, kind",
    [
        ("python3", InterpreterKind.PATH),
        ("/usr/bin/python3", InterpreterKind.ABSOLUTE),
        ("C:\\Python312\\python.exe", InterpreterKind.ABSOLUTE),
        ("\\\\server\\share\\python.exe", InterpreterKind.ABSOLUTE),
        ("../venv/bin/python3", InterpreterKind.RELATIVE),
        ("./python.exe", InterpreterKind.RELATIVE),
        ("py dir\\pythonw.exe", InterpreterKind.RELATIVE),
    ],
)
def test_interpreter_lookup_is_inferred_from_the_spec(spec, kind):
    assert infer_interpreter_kind(spec) is kind


def test_explicit_lookup_wins(rule_runner):
    tgt = target(rule_runner, 'crossbuild_trampoline(name="t", script="main.py", interpreter="py", interpreter_lookup="relative")')
    assert interpreter_kind(tgt) is InterpreterKind.RELATIVE


@pytest.mark.parametrize(
    "fields, expected",
    [
        ('script="main.py", entry_point="app.main:run"', "exactly one of the `script` and `entry_point` fields; it has both"),
        ("", "exactly one of the `script` and `entry_point` fields; it has neither"),
        ('entry_point="app.main"', "`entry_point` field in target app:t"),
        ('entry_point="app.main:"', "`entry_point` field in target app:t"),
        ('entry_point="app-x.main:run"', "is not a dotted Python name"),
        ('script="main.py", interpreter="bin/python", interpreter_lookup="absolute"', "`interpreter` field in target app:t"),
        ('script="main.py", interpreter="/usr/bin/python3", interpreter_lookup="path"', "must be a bare name"),
        ('script="main.py", interpreter=""', "`interpreter` field in target app:t"),
        ('script="main.py", interpreter_lookup="registry"', "interpreter_lookup"),
        ('script="main.py", platforms=["macos_arm64"]', "platforms"),
        ('script="main.py", platforms=[]', "must name at least one platform"),
        ('script="main.py", platforms=["linux_arm64", "linux_arm64"]', "twice"),
        ('script="main.py", windows_subsystem="service"', "windows_subsystem"),
    ],
)
def test_bad_fields_are_build_errors_naming_the_field(rule_runner, fields, expected):
    message = build_error(rule_runner, f'crossbuild_trampoline(name="t", {fields})')
    assert expected in message, message
    assert "app:t" in message or "app/BUILD" in message, message


def test_a_script_that_does_not_exist_names_the_field(rule_runner):
    target(rule_runner, 'crossbuild_trampoline(name="t", script="nope.py")')
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(Trampolines, [TrampolineRequest(Address("app", target_name="t"))])
    assert "The `script` field in target app:t: 'nope.py' does not exist" in str(e.value)


def test_a_script_that_is_not_python_names_the_field(rule_runner):
    target(rule_runner, 'crossbuild_trampoline(name="t", script="main.txt")', files={"app/main.txt": ""})
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(Trampolines, [TrampolineRequest(Address("app", target_name="t"))])
    assert "app:t" in str(e.value) and "main.txt" in str(e.value) and ".py" in str(e.value)


def test_a_bundled_top_level_main_clashes_with_an_entry_point(rule_runner):
    target(
        rule_runner,
        'python_sources(name="lib")\ncrossbuild_trampoline(name="t", entry_point="main:run", dependencies=[":lib"])',
        files={"app/__main__.py": "", "app/main.py": "def run(): pass\n"},
    )
    rule_runner.set_options(["--source-root-patterns=['/app']", "--no-python-infer-imports"])
    with pytest.raises(ExecutionError) as e:
        rule_runner.request(Trampolines, [TrampolineRequest(Address("app", target_name="t"))])
    assert "clash with the one `entry_point` generates" in str(e.value)


def test_every_field_has_help_and_the_type_hints_pants_help_reads():
    from typing import get_type_hints

    from crossbuild.target_types import CrossbuildTrampolineTarget

    assert CrossbuildTrampolineTarget.help
    for field in CrossbuildTrampolineTarget.core_fields:
        assert field.help, field.alias
        assert "raw_value" in get_type_hints(field.compute_value), field.alias
