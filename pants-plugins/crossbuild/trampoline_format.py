"""The trampoline file format: a native launcher with a Python program appended.

A trampoline starts a Python program with a chosen interpreter, the way uv, pip and distlib
install console scripts on Windows. The interpreter runs the trampoline file itself as its
script: CPython (3.8 or newer) finds ``__main__.py`` in the zip appended to the executable, as
for any zip with a prefix ("self-extracting" style). Arguments are passed on unchanged.

Layout of a trampoline file (integers little-endian)::

    [launcher executable]        resources/trampoline/launcher.c, built with zig
                                 (``launcher_build_commands``)
    [payload]                    a zip archive, offsets relative to its own first byte,
                                 holding __main__.py and the bundled modules
    [interpreter spec]           spec_len bytes of UTF-8, no NUL
    [fixed footer, 32 bytes]     the last 32 bytes of the file:
        offset  0  8 bytes  magic b"XBTRAMP1"
        offset  8  u32      format version, 1
        offset 12  u32      interpreter kind: 0 absolute path, 1 path relative to the directory
                            holding the launcher ('/' or '\\' separators), 2 bare name looked
                            up on PATH (``InterpreterKind``)
        offset 16  u32      spec_len, 1..32768
        offset 20  u32      flags, 0 in version 1
        offset 24  u64      payload_len, the payload's size in bytes (at least 22)

The interpreter spec and fixed footer are also the zip's archive comment: ``assemble`` sets the
comment length in the payload's end-of-central-directory record (its last 22 bytes) to
``spec_len + 32``, so the whole file is a well-formed zip with a prefix, which zipimport,
zipfile and unzip all read without complaint about trailing data.

This is the one description of the format: the launcher's C sources point here. The launcher
checks what ``parse_footer`` checks; its own exit codes (see ``LauncherExit``) are 100-104, and
once the interpreter runs, its exit code is the trampoline's.

This module is pure Python (3.9+, stdlib only): the Pants rules build the launcher with the
commands from ``launcher_build_commands`` and put the pieces together with ``build_payload``,
``footer`` and ``assemble``.
"""

from __future__ import annotations

import enum
import io
import keyword
import struct
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Dict, List, Mapping, Optional

MAGIC = b"XBTRAMP1"
FORMAT_VERSION = 1
FOOTER_SIZE = 32
MAX_SPEC_LEN = 32768
_FIXED = struct.Struct("<8sIIIIQ")  # magic, version, kind, spec_len, flags, payload_len
assert _FIXED.size == FOOTER_SIZE

_EOCD = struct.Struct("<4s4H2LH")  # zip end of central directory record, without its comment
_EOCD_SIGNATURE = b"PK\x05\x06"
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_COMPRESSLEVEL = 9
FILE_MODE = 0o100644
DIR_MODE = 0o040755

LAUNCHER_TARGETS = (
    "x86_64-linux-musl",
    "aarch64-linux-musl",
    "x86_64-windows-gnu",
    "aarch64-windows-gnu",
)


class InterpreterKind(enum.IntEnum):
    ABSOLUTE = 0  # the spec is an absolute path
    RELATIVE = 1  # the spec is a path relative to the directory holding the launcher
    PATH = 2  # the spec is a bare name looked up on PATH (on Windows ".exe" is appended)


class LauncherExit(enum.IntEnum):
    """The exit codes of the launcher itself (printed with a message on stderr)."""

    SELF = 100  # cannot find, open or read its own file, or out of memory
    NO_FOOTER = 101  # no footer: a bare launcher, or a file truncated at its end
    NOT_FOUND = 102  # interpreter not found; the message lists every candidate tried
    EXEC = 103  # interpreter found but could not be started (execv or CreateProcessW failed)
    # corrupt or unsupported footer or payload: unknown version, kind or flags, lengths that do
    # not fit in the file, a payload that is not a zip, an invalid interpreter spec
    CORRUPT = 104


class FooterError(ValueError):
    """A trampoline that the launcher would refuse; ``exit_code`` is the launcher's."""

    def __init__(self, message: str, exit_code: LauncherExit) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Footer:
    """What ``parse_footer`` finds at the end of a trampoline."""

    version: int
    interpreter_kind: InterpreterKind
    interpreter_spec: str
    flags: int
    payload_offset: int
    payload_len: int

    @property
    def launcher_len(self) -> int:
        return self.payload_offset

    @property
    def trailer_len(self) -> int:
        """Bytes after the payload: the interpreter spec and the fixed footer."""
        return len(self.interpreter_spec.encode("utf-8")) + FOOTER_SIZE


# ---------------------------------------------------------------------------------------------
# Payload


def validate_entry_point(entry_point: str) -> "tuple[str, List[str]]":
    """Checks an ``entry_point`` (``'package.module:function'``); returns the module and the
    attribute path. Raises ``ValueError`` saying what is wrong."""

    def bad(why: str) -> ValueError:
        return ValueError(
            f"invalid entry point {entry_point!r}: {why}; expected 'package.module:function' "
            "(dotted module path, a colon, then a function or dotted attribute path)"
        )

    if not isinstance(entry_point, str):
        raise ValueError(f"invalid entry point {entry_point!r}: not a string")
    if entry_point.count(":") != 1:
        raise bad("it needs exactly one ':'")
    module, attr = (part.strip() for part in entry_point.split(":"))

    def dotted(text: str, what: str) -> List[str]:
        parts = text.split(".")
        for part in parts:
            if not part.isidentifier() or keyword.iskeyword(part):
                raise bad(f"{what} {text!r} is not a dotted Python name")
        return parts

    dotted(module, "module")
    return module, dotted(attr, "attribute")


def entry_point_main(entry_point: str) -> bytes:
    """The ``__main__.py`` that runs ``module:function`` and exits with what it returns."""
    module, attrs = validate_entry_point(entry_point)
    return (
        f"# Generated by crossbuild: runs the entry point {module}:{'.'.join(attrs)}.\n"
        "import sys\n"
        "\n"
        f"from {module} import {attrs[0]}\n"
        "\n"
        'if __name__ == "__main__":\n'
        f"    sys.exit({'.'.join(attrs)}())\n"
    ).encode("utf-8")


def _validate_module_path(path: str) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError(f"invalid module path {path!r}: expected a non-empty string")
    pure = PurePosixPath(path)
    if (
        "\\" in path
        or "\0" in path
        or path.startswith("/")
        or path.endswith("/")
        or (len(path) > 1 and path[1] == ":")
        or any(part in ("", ".", "..") for part in path.split("/"))
        or str(pure) != path
    ):
        raise ValueError(
            f"invalid module path {path!r}: expected a relative POSIX path inside the zip "
            "such as 'pkg/mod.py' (no '..', '.', empty parts, backslashes or leading '/')"
        )
    return path


def build_payload(
    main_py: Optional[bytes],
    entry_point: Optional[str],
    modules: Mapping[str, bytes],
    *,
    deflate: bool = True,
) -> bytes:
    """A deterministic zip holding ``__main__.py`` and ``modules`` (path in the zip -> bytes).

    ``__main__.py`` comes from exactly one of ``main_py``, ``entry_point`` (``'pkg.mod:func'``,
    which generates one calling ``sys.exit(func())``) or a ``"__main__.py"`` key in ``modules``.

    Same inputs, same bytes: entries sorted by name, each parent directory given its own entry
    (so namespace packages import from the zip too), date 1980-01-01 00:00, mode 0644 (0755 for
    directories), Unix as creating system, no comment (``assemble`` adds the footer as one).
    Entries are deflated at level 9; deflated bytes depend on the zlib the interpreter was built
    with, so ``deflate=False`` stores them instead where the same payload must come out of
    differently built interpreters.
    """
    entries: Dict[str, bytes] = {}
    for path, data in modules.items():
        _validate_module_path(path)
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"module {path!r}: contents must be bytes, not {type(data).__name__}")
        entries[path] = bytes(data)
    sources = [name for name, given in (("main_py", main_py is not None),
                                        ("entry_point", entry_point is not None),
                                        ("modules['__main__.py']", "__main__.py" in entries)) if given]
    if len(sources) != 1:
        raise ValueError(
            "exactly one of main_py, entry_point or a '__main__.py' module must give __main__.py; "
            f"got {', '.join(sources) if sources else 'none'}"
        )
    if main_py is not None:
        entries["__main__.py"] = bytes(main_py)
    elif entry_point is not None:
        entries["__main__.py"] = entry_point_main(entry_point)

    directories = {str(parent) + "/" for path in entries for parent in PurePosixPath(path).parents}
    directories.discard("./")
    for directory in directories:
        if directory[:-1] in entries:
            raise ValueError(f"{directory[:-1]!r} is both a module and a directory of modules")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(set(entries) | directories):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # Unix, whatever the host, so the modes mean the same
            if name in directories:
                info.external_attr = (DIR_MODE << 16) | 0x10  # 0x10: MS-DOS directory bit
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                zf.writestr(info, entries[name], compresslevel=ZIP_COMPRESSLEVEL if deflate else None)
    payload = buffer.getvalue()
    _payload_eocd(payload)  # sanity: ends with an EOCD with no comment
    return payload


def _payload_eocd(payload: bytes) -> int:
    """The offset of a payload's EOCD record, which must end it with an empty comment."""
    offset = len(payload) - _EOCD.size
    if offset < 0 or payload[offset : offset + 4] != _EOCD_SIGNATURE:
        raise ValueError("payload is not a zip archive ending in an end-of-central-directory record")
    if payload[offset + 20 : offset + 22] != b"\0\0":
        raise ValueError("payload zip must not have an archive comment (the footer becomes its comment)")
    if not payload.startswith(_LOCAL_HEADER_SIGNATURE):
        raise ValueError("payload zip must start with a local file header (at least one entry)")
    return offset


# ---------------------------------------------------------------------------------------------
# Footer


def _is_absolute(spec: str) -> bool:
    posix = spec.startswith("/")
    unc = spec[:2] in ("\\\\", "//", "\\/", "/\\")
    drive = len(spec) >= 3 and spec[0].isascii() and spec[0].isalpha() and spec[1] == ":" and spec[2] in "\\/"
    return posix or unc or drive


def footer(interpreter_kind: int, interpreter_spec: str, payload_len: int) -> bytes:
    """Everything after the payload: the UTF-8 interpreter spec, then the fixed 32-byte footer.

    ``interpreter_kind`` is an ``InterpreterKind``: ``ABSOLUTE`` takes a POSIX (``/usr/bin/python3``)
    or Windows (``C:\\Python312\\python.exe``, ``\\\\server\\share\\python.exe``) absolute path;
    ``RELATIVE`` a relative path (either separator) from the launcher's directory, e.g.
    ``../venv/bin/python3``; ``PATH`` a bare name such as ``python3`` (Windows appends ``.exe``
    unless the name ends with it).
    """
    try:
        kind = InterpreterKind(interpreter_kind)
    except ValueError:
        raise ValueError(
            f"invalid interpreter kind {interpreter_kind!r}: expected 0 (absolute path), "
            "1 (relative to the launcher's directory) or 2 (name on PATH)"
        ) from None
    if not isinstance(interpreter_spec, str) or not interpreter_spec:
        raise ValueError(f"invalid interpreter spec {interpreter_spec!r}: expected a non-empty string")
    spec = interpreter_spec.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, a ValueError
    if len(spec) > MAX_SPEC_LEN:
        raise ValueError(f"interpreter spec is {len(spec)} bytes of UTF-8; at most {MAX_SPEC_LEN} fit")
    if "\0" in interpreter_spec:
        raise ValueError(f"invalid interpreter spec {interpreter_spec!r}: contains NUL")
    if kind is InterpreterKind.ABSOLUTE and not _is_absolute(interpreter_spec):
        raise ValueError(f"interpreter spec {interpreter_spec!r} is not an absolute path (kind ABSOLUTE)")
    if kind is InterpreterKind.RELATIVE and (
        _is_absolute(interpreter_spec) or interpreter_spec[0] in "/\\" or interpreter_spec[1:2] == ":"
    ):
        raise ValueError(f"interpreter spec {interpreter_spec!r} is not a relative path (kind RELATIVE)")
    if kind is InterpreterKind.PATH and any(c in interpreter_spec for c in "/\\:"):
        raise ValueError(
            f"interpreter spec {interpreter_spec!r} must be a bare name for kind PATH (no '/', '\\' or ':')"
        )
    if not isinstance(payload_len, int) or not _EOCD.size <= payload_len < 1 << 64:
        raise ValueError(f"invalid payload length {payload_len!r}: a zip is at least {_EOCD.size} bytes")
    return spec + _FIXED.pack(MAGIC, FORMAT_VERSION, int(kind), len(spec), 0, payload_len)


def assemble(launcher: bytes, payload: bytes, footer: bytes) -> bytes:
    """``launcher + payload + footer``, with the footer declared as the zip's comment.

    ``payload`` comes from ``build_payload`` and ``footer`` from ``footer(kind, spec, len(payload))``.
    """
    if len(launcher) >= FOOTER_SIZE and launcher[-FOOTER_SIZE:].startswith(MAGIC):
        raise ValueError("the launcher already ends with a trampoline footer")
    if len(footer) < FOOTER_SIZE or not footer[-FOOTER_SIZE:].startswith(MAGIC):
        raise ValueError("footer does not end with a trampoline footer (make it with footer())")
    _, _, _, spec_len, _, payload_len = _FIXED.unpack(footer[-FOOTER_SIZE:])
    if spec_len + FOOTER_SIZE != len(footer):
        raise ValueError(f"footer is {len(footer)} bytes but declares a {spec_len}-byte spec")
    if payload_len != len(payload):
        raise ValueError(f"footer declares a {payload_len}-byte payload but the payload is {len(payload)} bytes")
    eocd = _payload_eocd(payload)
    patched = payload[: eocd + 20] + struct.pack("<H", len(footer))
    return bytes(launcher) + patched + bytes(footer)


def parse_footer(data: bytes) -> Footer:
    """Reads a whole trampoline's footer, checking what the launcher checks, with its exit codes."""
    size = len(data)
    if size < FOOTER_SIZE or not data[-FOOTER_SIZE:].startswith(MAGIC):
        raise FooterError(
            f"no trampoline payload: the data does not end with the {MAGIC.decode()} footer "
            "(a launcher without a program appended, or a truncated file)",
            LauncherExit.NO_FOOTER,
        )
    _, version, kind, spec_len, flags, payload_len = _FIXED.unpack(data[-FOOTER_SIZE:])

    def corrupt(why: str) -> FooterError:
        return FooterError(f"corrupt trampoline: {why}", LauncherExit.CORRUPT)

    if version != FORMAT_VERSION:
        raise corrupt(f"unsupported format version {version} (this reader knows {FORMAT_VERSION})")
    if kind not in {k.value for k in InterpreterKind}:
        raise corrupt(f"unknown interpreter kind {kind}")
    if flags:
        raise corrupt(f"unknown flags {flags}")
    if not 1 <= spec_len <= MAX_SPEC_LEN:
        raise corrupt(f"interpreter spec length {spec_len} is outside 1..{MAX_SPEC_LEN}")
    tail = FOOTER_SIZE + spec_len
    if payload_len < _EOCD.size or payload_len + tail >= size:
        raise corrupt(
            f"payload length {payload_len} + spec length {spec_len} + footer {FOOTER_SIZE} do not fit "
            f"in {size} bytes with a launcher before them (truncated or corrupt file)"
        )
    payload_offset = size - tail - payload_len
    eocd = data[size - tail - _EOCD.size : size - tail]
    if (
        eocd[:4] != _EOCD_SIGNATURE
        or struct.unpack("<H", eocd[20:22])[0] != tail
        or data[payload_offset : payload_offset + 4] != _LOCAL_HEADER_SIGNATURE
    ):
        raise corrupt(
            f"the {payload_len} bytes at offset {payload_offset} are not a zip archive whose comment is the footer"
        )
    spec = data[size - tail : size - FOOTER_SIZE]
    if b"\0" in spec:
        raise corrupt("the interpreter spec contains NUL")
    try:
        text = spec.decode("utf-8")
    except UnicodeDecodeError:
        raise corrupt("the interpreter spec is not UTF-8") from None
    return Footer(version, InterpreterKind(kind), text, flags, payload_offset, payload_len)


def payload_of(data: bytes) -> bytes:
    """The payload zip of a trampoline, as ``build_payload`` made it (comment length back to 0)."""
    f = parse_footer(data)
    payload = data[f.payload_offset : f.payload_offset + f.payload_len]
    return payload[:-2] + b"\0\0"


# ---------------------------------------------------------------------------------------------
# Building the launcher


def launcher_build_commands(
    zig: str, target: str, source: str, output: str, *, gui: bool = False
) -> List[List[str]]:
    """The ``zig`` command lines that build the launcher for ``target`` into ``output``.

    Linux (musl, static): one ``zig cc``; libc comes from zig's cache (built on first use).
    Windows: compile, then link without any C runtime (entry ``xb_entry``, only KERNEL32
    imported), so no mingw CRT is built; ``gui`` picks the Windows subsystem (no console)
    instead of the console one. ``output + ".o"`` holds the Windows object file in between.

    Size-optimised and reproducible: ``-Os``, function/data sections collected, ``-g0`` and
    ``-s`` (no debug info, no symbols, no .pdb); the source uses no ``__DATE__``/``__TIME__``.
    PE timestamps: zig passes ``-Brepro`` to lld-link only when it links a C runtime; with
    ``-nostdlib`` lld-link writes the wall-clock time into the COFF TimeDateStamp, so two builds
    differ. ``-Wl,-Brepro`` makes it a hash of the image (plus an empty REPRO debug-directory
    entry), whatever ``SOURCE_DATE_EPOCH`` says. (zig rejects ``--no-insert-timestamp``;
    lld-link also takes ``SOURCE_DATE_EPOCH`` when ``-Brepro`` is absent.)
    """
    compile_flags = ["-std=c11", "-Os", "-ffunction-sections", "-fdata-sections", "-g0"]
    if target.endswith("-linux-musl") or target.endswith("-linux-gnu") or "-linux-" in target:
        return [[zig, "cc", "-target", target, *compile_flags, "-s", "-Wl,--gc-sections", source, "-o", output]]
    if "-windows" in target:
        obj = output + ".o"
        return [
            [zig, "cc", "-target", target, *compile_flags, "-c", source, "-o", obj],
            [
                zig, "cc", "-target", target, "-nostdlib", "-s", "-Wl,--gc-sections",
                "-Wl,--entry,xb_entry", f"-Wl,--subsystem,{'windows' if gui else 'console'}", "-Wl,-Brepro",
                obj, "-lkernel32", "-o", output,
            ],
        ]
    raise ValueError(f"no launcher for target {target!r}; supported: {', '.join(LAUNCHER_TARGETS)}")
