"""The command lines of every compile and link, and the sandbox layout they assume, with no
Pants import: build.py runs them as `ZigProcess`es, and benchmarks/crossbuild_benchmark.py runs
the same argv outside Pants, in a folder laid out like the plugin's sandbox.

Every byte of these argv is part of the actions' cache keys, and the prefix maps are what
makes the outputs byte-identical on every machine and in every sandbox."""

from __future__ import annotations

from typing import Sequence, Tuple

from crossbuild.platforms import PLATFORMS, PROFILES

# Where the toolchain appears in a process's sandbox (as an immutable input).
ZIG_DIR = "__crossbuild_zig"
# The sandbox folder of the files the plugin ships (the test harness header, the shard runner's
# source); test archives compile with it as an include dir.
SANDBOX_DIR = "__crossbuild"
# The named cache holding zig's global cache (its libc builds) and the placed toolchains, as a
# path relative to the sandbox.
ZIG_CACHE_DIR = ".cache/crossbuild_zig"


def stable_zig_shell(wheel_sha256: str) -> str:
    """Shell that sets `$zig` (the compiler) and `$zig_real` (its folder, symlinks resolved).

    zig keys its cached libc builds on the absolute path of its `lib/` folder. The immutable
    input's path changes with every Pants run (Pants puts immutable inputs in a fresh temporary
    folder), so calling zig from there rebuilt libc on every run: 40-55 s per target. The first
    action that needs the toolchain therefore places a copy (hard links when the filesystem
    allows) in the append-only cache under the wheel's sha256, renamed into place only once
    complete, and every action calls zig from that fixed path."""
    # "-2": placements by older scripts could hold symbolic links into an executor's input
    # cache instead of the files; they are never used again.
    home = f"{ZIG_CACHE_DIR}/toolchains/{wheel_sha256}-2"
    return (
        f'zig_home="{home}"; '
        'if [ ! -e "$zig_home/.complete" ]; then '
        f'mkdir -p {ZIG_CACHE_DIR}/toolchains && '
        'zig_tmp="$zig_home.tmp.$$" && rm -rf "$zig_tmp" && '
        # -L: an executor may stage big input folders as symbolic links into its own cache;
        # zig finds its lib/ by real path, so the copy must hold the files themselves.
        f'{{ cp -alL {ZIG_DIR}/. "$zig_tmp" 2>/dev/null || '
        # (a failed hard-link copy leaves read-only folders behind: writable first, then gone)
        f'{{ chmod -R u+w "$zig_tmp" 2>/dev/null; rm -rf "$zig_tmp" && cp -RL {ZIG_DIR}/. "$zig_tmp"; }}; }} && '
        # The copy keeps its source's modes, and an executor's input folders are read-only.
        'chmod u+w "$zig_tmp" && : > "$zig_tmp/.complete" && '
        '{ mv -T "$zig_tmp" "$zig_home" 2>/dev/null || rm -rf "$zig_tmp"; } '
        '|| { echo "crossbuild: could not place the zig toolchain in $zig_home" >&2; exit 70; }; '
        'fi; '
        'zig_real="$(cd "$zig_home" && pwd -P)"; zig="$zig_real/ziglang/zig"; '
    )


def fixed_zig_shell(zig_dir: str = ZIG_DIR) -> str:
    """Shell that sets `$zig` and `$zig_real` for a toolchain that already stays at one path
    (`zig_dir`, relative to the working directory, may be a symbolic link to it): zig is called
    by its real path, as with `stable_zig_shell`, and nothing is copied."""
    return f'zig_real="$(cd {zig_dir} && pwd -P)"; zig="$zig_real/ziglang/zig"; '


def zig_command(shell_prelude: str, *args: str) -> Tuple[str, ...]:
    """argv running `zig ARGS...` as `shell_prelude` sets it up, with every absolute path a
    compile could leak (the sandbox, the toolchain) mapped to fixed names, so objects are
    byte-identical on every machine and in every sandbox."""
    script = shell_prelude + 'exec "$zig" "$@" "-ffile-prefix-map=$PWD=." "-ffile-prefix-map=$zig_real=/zig"'
    return ("/bin/sh", "-c", script, "zig", *args)


def object_path(platform: str, profile: str, source: str) -> str:
    """Where the compile of `source` writes its object."""
    return f"__obj/{platform}/{profile}/{source}.o"


def binary_dir(platform: str, profile: str) -> str:
    """The folder a link writes its binary into."""
    return f"__bin/{platform}/{profile}"


def binary_path(platform: str, profile: str, name: str) -> str:
    """Where the link of binary `name` writes it."""
    return f"{binary_dir(platform, profile)}/{name}{PLATFORMS[platform].executable_suffix}"


def _language_flags(source: str) -> Tuple[str, ...]:
    return ("-std=c11",) if source.endswith(".c") else ("-std=c++17",)


def compile_argv(
    shell_prelude: str,
    source: str,
    obj: str,
    *,
    triple: str,
    profile: str,
    include_dirs: Sequence[str],
    copts: Sequence[str] = (),
) -> Tuple[str, ...]:
    """argv compiling one C or C++ translation unit `source` into `obj`."""
    compiler = "cc" if source.endswith(".c") else "c++"
    return (
        *zig_command(shell_prelude), compiler, "-target", triple,
        *_language_flags(source),
        *PROFILES[profile].compile_flags,
        "-fno-ident", "-fdiagnostics-color=never",
        *(f"-I{d}" for d in include_dirs),
        *copts,
        "-c", source, "-o", obj,
    )


def link_argv(
    shell_prelude: str,
    objects: Sequence[str],
    exe: str,
    *,
    triple: str,
    profile: str,
    linkopts: Sequence[str] = (),
) -> Tuple[str, ...]:
    """argv linking `objects` into the binary `exe`; C++ if any object is not from a .c file."""
    p = PROFILES[profile]
    linker = "c++" if any(not o.endswith(".c.o") for o in objects) else "cc"
    return (
        *zig_command(shell_prelude), linker, "-target", triple,
        *p.compile_flags, *p.link_flags,
        *objects,
        *linkopts,
        "-o", exe,
    )
