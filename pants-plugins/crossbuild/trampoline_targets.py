"""The `crossbuild_trampoline` target: a native launcher per platform carrying a Python program."""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    Dependencies,
    InvalidFieldException,
    OptionalSingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from crossbuild.trampoline_format import InterpreterKind, footer, validate_entry_point

TRAMPOLINE_PLATFORMS = ("linux_x86_64", "linux_arm64", "windows_x86_64", "windows_arm64")
INTERPRETER_LOOKUPS = {
    "absolute": InterpreterKind.ABSOLUTE,
    "relative": InterpreterKind.RELATIVE,
    "path": InterpreterKind.PATH,
}


class TrampolineScriptField(OptionalSingleSourceField):
    alias = "script"
    expected_file_extensions = (".py",)
    help = help_text(
        """
        The Python script the trampoline runs, relative to this BUILD file's directory. It
        becomes the payload's `__main__.py`. Give either `script` or `entry_point`, not both.
        """
    )


class TrampolineEntryPointField(StringField):
    alias = "entry_point"
    help = help_text(
        """
        What the trampoline runs, as `package.module:function`: a generated `__main__.py` imports
        the function, calls it with no arguments and exits with what it returns (None is 0).
        The module must be among the bundled `dependencies`. Give either `script` or
        `entry_point`, not both.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            try:
                validate_entry_point(value)
            except ValueError as e:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address}: {e}") from None
        return value


class TrampolineDependenciesField(Dependencies):
    help = help_text(
        """
        First-party Python code bundled into the payload: `python_sources` (and `resources`)
        targets and their own dependencies, placed at their paths relative to their source
        roots, so `import package.module` works from the zip. Third-party requirements are not
        bundled; the interpreter must provide them.
        """
    )


class TrampolineInterpreterField(StringField):
    alias = "interpreter"
    default = "python3"
    help = help_text(
        """
        The interpreter that runs the program: an absolute path (`/usr/bin/python3`,
        `C:\\Python312\\python.exe`), a path relative to the directory holding the launcher
        (`../venv/bin/python3`, `./python.exe`), or a bare name looked up on PATH (`python3`;
        Windows appends `.exe`). How it is read is `interpreter_lookup`, or inferred from its
        shape: absolute, or containing a path separator (relative), or a bare name (PATH).
        The interpreter must be CPython 3.8 or newer: it runs the launcher file itself, whose
        appended zip holds `__main__.py`.
        """
    )


class TrampolineInterpreterLookupField(StringField):
    alias = "interpreter_lookup"
    valid_choices = tuple(INTERPRETER_LOOKUPS)
    help = help_text(
        """
        How `interpreter` is found: `absolute` (an absolute path), `relative` (relative to the
        directory holding the launcher, whatever the working directory), or `path` (the first
        executable of that name on PATH). Unset: inferred from `interpreter`'s shape.
        """
    )


class TrampolinePlatformsField(StringSequenceField):
    alias = "platforms"
    default = TRAMPOLINE_PLATFORMS
    valid_choices = TRAMPOLINE_PLATFORMS
    help = help_text(
        f"""
        Platforms to build a launcher for: {', '.join(TRAMPOLINE_PLATFORMS)}. All are built on
        this machine with the pinned zig toolchain. `pants run` runs the host's one, which must
        be listed.
        """
    )

    @classmethod
    def compute_value(
        cls, raw_value: Optional[Iterable[str]], address: Address
    ) -> Optional[Tuple[str, ...]]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            if not value:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address} must name at least one platform.")
            duplicates = sorted({p for p in value if value.count(p) > 1})
            if duplicates:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address} lists {duplicates} twice.")
        return value


class TrampolineWindowsSubsystemField(StringField):
    alias = "windows_subsystem"
    default = "console"
    valid_choices = ("console", "gui")
    help = help_text(
        """
        Windows launchers only: `console` (a console program; Ctrl-C reaches the interpreter)
        or `gui` (no console window is opened, as for `pythonw`).
        """
    )


class TrampolineOutputPathField(OutputPathField):
    help = help_text(
        """
        Directory under dist/ for the launchers, one per platform as `PLATFORM/NAME` (`NAME.exe`
        on Windows), NAME being the target's name. Default: `path.to.dir/TARGET_NAME`.
        """
    )


class CrossbuildTrampolineTarget(Target):
    alias = "crossbuild_trampoline"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        TrampolineScriptField,
        TrampolineEntryPointField,
        TrampolineDependenciesField,
        TrampolineInterpreterField,
        TrampolineInterpreterLookupField,
        TrampolinePlatformsField,
        TrampolineWindowsSubsystemField,
        TrampolineOutputPathField,
    )
    help = help_text(
        """
        A small native launcher, per platform (Linux and Windows, x86-64 and ARM64), with a
        Python program appended: a zip of `__main__.py` and the bundled first-party modules.
        Started, it finds the interpreter and has it run the launcher file itself; arguments,
        standard streams and the exit code pass through. Linux launchers exec the interpreter;
        Windows ones run it as a child in a job object, so it dies with the launcher.

        `pants package` writes every platform's launcher to dist/ and prints its size;
        `pants run` runs the host's. Launchers are byte-identical on every build and machine.
        """
    )

    def validate(self) -> None:
        has_script = self[TrampolineScriptField].value is not None
        has_entry = self[TrampolineEntryPointField].value is not None
        if has_script == has_entry:
            raise InvalidFieldException(
                f"The target {self.address} needs exactly one of the `script` and `entry_point` "
                f"fields; it has {'both' if has_script else 'neither'}."
            )
        interpreter = self[TrampolineInterpreterField].value
        try:
            footer(interpreter_kind(self), interpreter, 22)
        except ValueError as e:
            raise InvalidFieldException(
                f"The `interpreter` field in target {self.address} ({interpreter!r}, read as "
                f"{interpreter_kind(self).name.lower()}): {e}"
            ) from None


def infer_interpreter_kind(spec: str) -> InterpreterKind:
    if spec.startswith("/") or spec.startswith("\\\\") or (len(spec) >= 3 and spec[1] == ":" and spec[2] in "\\/"):
        return InterpreterKind.ABSOLUTE
    if "/" in spec or "\\" in spec:
        return InterpreterKind.RELATIVE
    return InterpreterKind.PATH


def interpreter_kind(tgt: Target) -> InterpreterKind:
    lookup = tgt[TrampolineInterpreterLookupField].value
    if lookup is not None:
        return INTERPRETER_LOOKUPS[lookup]
    return infer_interpreter_kind(tgt[TrampolineInterpreterField].value or "")
