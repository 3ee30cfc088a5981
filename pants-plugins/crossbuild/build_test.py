"""The exact argv of a compile and a link: cache keys and reproducible outputs depend on every
byte of it, so a change here must be deliberate."""

from pants.engine.fs import EMPTY_DIGEST, MergeDigests, RemovePrefix
from pants.engine.internals.native_engine import Digest
from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

from crossbuild.build import (
    BuildSettings,
    CompiledObject,
    CompileRequest,
    LinkRequest,
    compile_object,
    link_binary,
)
from crossbuild.toolchain import ZigToolchain
from crossbuild.zig_process import ZigProcess

SHA = "ab" * 32
ZIG = ZigToolchain(EMPTY_DIGEST, "0.11.0", SHA)
PRELUDE = (
    f'zig_home=".cache/crossbuild_zig/toolchains/{SHA}-2"; '
    'if [ ! -e "$zig_home/.complete" ]; then '
    "mkdir -p .cache/crossbuild_zig/toolchains && "
    'zig_tmp="$zig_home.tmp.$$" && rm -rf "$zig_tmp" && '
    '{ cp -alL __crossbuild_zig/. "$zig_tmp" 2>/dev/null || '
    '{ chmod -R u+w "$zig_tmp" 2>/dev/null; rm -rf "$zig_tmp" && cp -RL __crossbuild_zig/. "$zig_tmp"; }; } && '
    'chmod u+w "$zig_tmp" && : > "$zig_tmp/.complete" && '
    '{ mv -T "$zig_tmp" "$zig_home" 2>/dev/null || rm -rf "$zig_tmp"; } '
    '|| { echo "crossbuild: could not place the zig toolchain in $zig_home" >&2; exit 70; }; '
    "fi; "
    'zig_real="$(cd "$zig_home" && pwd -P)"; zig="$zig_real/ziglang/zig"; '
)
SCRIPT = PRELUDE + 'exec "$zig" "$@" "-ffile-prefix-map=$PWD=." "-ffile-prefix-map=$zig_real=/zig"'
SETTINGS = BuildSettings(
    platform="linux_arm64",
    profile="release",
    libc="musl",
    include_dirs=("lib/include", "__crossbuild"),
    copts=("-DX=1",),
    linkopts=("-lm",),
    owner="lib:tests",
)


def zig_process_of(rule, request) -> ZigProcess:
    seen = []

    def zig_process(p: ZigProcess) -> Digest:
        seen.append(p)
        return EMPTY_DIGEST

    mock_gets = [MockGet(output_type=Digest, input_types=(ZigProcess,), mock=zig_process)]
    if rule is link_binary:
        mock_gets += [
            MockGet(output_type=Digest, input_types=(MergeDigests,), mock=lambda _: EMPTY_DIGEST),
            MockGet(output_type=Digest, input_types=(RemovePrefix,), mock=lambda _: EMPTY_DIGEST),
        ]
    run_rule_with_mocks(rule, rule_args=[request, ZIG], mock_gets=mock_gets)
    (p,) = seen
    return p


def test_the_argv_of_a_compile():
    p = zig_process_of(compile_object, CompileRequest("lib/src/a.c", EMPTY_DIGEST, SETTINGS))
    assert p.argv == (
        "/bin/sh", "-c", SCRIPT, "zig", "cc", "-target", "aarch64-linux-musl", "-std=c11", "-O2",
        "-fno-ident", "-fdiagnostics-color=never", "-Ilib/include", "-I__crossbuild", "-DX=1",
        "-c", "lib/src/a.c", "-o", "__obj/linux_arm64/release/lib/src/a.c.o",
    )
    assert p.output_files == ("__obj/linux_arm64/release/lib/src/a.c.o",)
    assert p.description == "Compile lib/src/a.c for linux_arm64 (release)"


def test_the_argv_of_a_cxx_compile():
    p = zig_process_of(compile_object, CompileRequest("lib/src/b.cc", EMPTY_DIGEST, SETTINGS))
    assert p.argv[3:8] == ("zig", "c++", "-target", "aarch64-linux-musl", "-std=c++17")


def test_the_argv_of_a_link():
    objects = (
        CompiledObject(EMPTY_DIGEST, "__obj/linux_arm64/release/lib/tests/t_test.c.o"),
        CompiledObject(EMPTY_DIGEST, "__obj/linux_arm64/release/lib/src/a.c.o"),
    )
    p = zig_process_of(link_binary, LinkRequest("t_test", objects, SETTINGS))
    assert p.argv == (
        "/bin/sh", "-c", SCRIPT, "zig", "cc", "-target", "aarch64-linux-musl", "-O2",
        "-Wl,--strip-debug", "__obj/linux_arm64/release/lib/tests/t_test.c.o",
        "__obj/linux_arm64/release/lib/src/a.c.o", "-lm", "-o", "__bin/linux_arm64/release/t_test",
    )
    assert p.output_files == ("__bin/linux_arm64/release/t_test",)


def test_a_link_with_a_cxx_object_uses_cxx_and_windows_names_exe():
    settings = BuildSettings("windows_x86_64", "debug", "musl", (), (), (), "lib:tests")
    objects = (CompiledObject(EMPTY_DIGEST, "__obj/windows_x86_64/debug/b.cc.o"),)
    p = zig_process_of(link_binary, LinkRequest("t", objects, settings))
    assert p.argv[3:] == (
        "zig", "c++", "-target", "x86_64-windows-gnu", "-O0", "-g",
        "__obj/windows_x86_64/debug/b.cc.o", "-o", "__bin/windows_x86_64/debug/t.exe",
    )
