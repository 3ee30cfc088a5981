#!/usr/bin/env bash
# Builds every cclib test binary with real compilers and runs every case through the
# test binary protocol (--list, then --exact NAME for each name), on:
#
#   zig cc, x86_64-linux-musl   at -O2, -O0 -g and -Os, run natively
#   zig cc, aarch64-linux-musl  at -O2, -O0 -g and -Os, run under qemu-aarch64-static
#                               (natively on an aarch64 host), and as the plugin's
#                               release-lto (-O2 -flto) and release-size (-Os with
#                               section GC, stripped) profiles build them
#   host gcc                    -O2 with -fsigned-char and with -funsigned-char, and
#                               -O1 -g with ASan+UBSan, -funsigned-char and stricter
#                               warnings (-Wpedantic -Wconversion ...); skipped, and
#                               said so, if this gcc cannot link the sanitizers
#
# zig's -O0 builds also carry its default UndefinedBehaviorSanitizer, so misaligned
# loads, signed overflow and bad shifts in the library would stop those runs.
#
# Each configuration also runs a self-test of crossbuild_test.h itself: exit codes,
# failure messages, source-order listing, crash pass-through, the case limit.
#
# Usage: examples/cclib/check.sh [CONFIG...]      (default: all; names as printed)
# Environment:
#   ZIG           zig binary; otherwise `python3 -m ziglang` (PyPI ziglang), else `zig`
#   QEMU_AARCH64  emulator for aarch64 binaries (default: qemu-aarch64-static)
#   CC_HOST       host C compiler for the gcc configurations (default: gcc)
#   KEEP_BUILD=1  keep the build directory (printed at the end)
#   VERBOSE=1     print every case result, not only failures
# Exits non-zero if anything fails to build or any case fails.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
harness_dir="$(cd "$here/../../pants-plugins/crossbuild/resources" && pwd)"
[[ -f "$harness_dir/crossbuild_test.h" ]] || { echo "check.sh: crossbuild_test.h not found in $harness_dir" >&2; exit 2; }

warn_flags=(-std=c11 -Wall -Wextra -Werror)
verbose="${VERBOSE:-0}"

# ---- tools ---------------------------------------------------------------------------

zig_cmd=()
if [[ -n "${ZIG:-}" ]]; then
    zig_cmd=("$ZIG")
elif python3 -c 'import ziglang' >/dev/null 2>&1; then
    zig_cmd=(python3 -m ziglang)
elif command -v zig >/dev/null 2>&1; then
    zig_cmd=(zig)
fi

host_arch="$(uname -m)"
aarch64_runner=()
if [[ "$host_arch" != aarch64 && "$host_arch" != arm64 ]]; then
    qemu="${QEMU_AARCH64:-qemu-aarch64-static}"
    if command -v "$qemu" >/dev/null 2>&1; then
        aarch64_runner=("$(command -v "$qemu")")
    else
        aarch64_runner=(__missing__ "$qemu")
    fi
fi
x86_64_runner=()
if [[ "$host_arch" != x86_64 ]]; then
    x86_64_runner=(__missing__ "an x86-64 host")
fi
cc_host="${CC_HOST:-gcc}"

build_root="$(mktemp -d "${TMPDIR:-/tmp}/cclib-check.XXXXXX")"
cleanup() {
    if [[ "${KEEP_BUILD:-0}" == 1 ]]; then
        echo "build directory kept: $build_root"
    else
        rm -rf "$build_root"
    fi
}
trap cleanup EXIT

# ---- configurations ------------------------------------------------------------------
# name | compiler (zig:TARGET or host) | flags | runner (x86_64, aarch64 or host)
#      | extra link-only flags (optional)
configs=(
    "zig-x86_64-O2|zig:x86_64-linux-musl|-O2|x86_64"
    "zig-x86_64-O0g|zig:x86_64-linux-musl|-O0 -g|x86_64"
    "zig-x86_64-Os|zig:x86_64-linux-musl|-Os|x86_64"
    "zig-aarch64-O2|zig:aarch64-linux-musl|-O2|aarch64"
    "zig-aarch64-O0g|zig:aarch64-linux-musl|-O0 -g|aarch64"
    "zig-aarch64-Os|zig:aarch64-linux-musl|-Os|aarch64"
    "zig-aarch64-lto|zig:aarch64-linux-musl|-O2 -flto|aarch64|-flto"
    "zig-aarch64-size-gc|zig:aarch64-linux-musl|-Os -ffunction-sections -fdata-sections|aarch64|-s -Wl,--gc-sections"
    "gcc-signed-char|host|-O2 -fsigned-char|host"
    "gcc-unsigned-char|host|-O2 -funsigned-char|host"
    "gcc-asan-ubsan-unsigned-char|host|-O1 -g -funsigned-char -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Wstrict-prototypes -Wmissing-prototypes|host"
)

selected=("$@")
is_selected() {
    [[ ${#selected[@]} -eq 0 ]] && return 0
    local s
    for s in "${selected[@]}"; do [[ "$s" == "$1" ]] && return 0; done
    return 1
}
if [[ ${#selected[@]} -gt 0 ]]; then
    for s in "${selected[@]}"; do
        found=0
        for c in "${configs[@]}"; do [[ "${c%%|*}" == "$s" ]] && found=1; done
        [[ $found == 1 ]] || { echo "check.sh: unknown configuration '$s'" >&2; exit 2; }
    done
fi

# ---- helpers -------------------------------------------------------------------------

total_pass=0
total_fail=0
problems=0
summary=()
reference_lists="$build_root/reference-lists"
mkdir -p "$reference_lists"

# compile CONFIG_KIND FLAGS... -- args   (runs the configured compiler)
cc_run() {
    local kind="$1"; shift
    if [[ "$kind" == zig:* ]]; then
        "${zig_cmd[@]}" cc -target "${kind#zig:}" "$@"
    else
        "$cc_host" "$@"
    fi
}

# Runs a built binary with the configuration's runner.
run_bin() {
    local runner="$1"; shift
    case "$runner" in
        aarch64) "${aarch64_runner[@]}" "$@" ;;
        x86_64) "${x86_64_runner[@]}" "$@" ;;
        *) "$@" ;;
    esac
}

# Self-test of the harness: the protocol, exit codes and message formats.
harness_selftest() {
    local kind="$1" runner="$2" dir="$3" link_str="$4"; shift 4
    local flags=("$@") link_flags=()
    [[ "$kind" == zig:* ]] && link_flags=(-static)
    [[ -n "$link_str" ]] && read -r -a extra <<<"$link_str" && link_flags+=("${extra[@]}")
    local ok=1 out err rc line
    mkdir -p "$dir"
    cat >"$dir/selftest.c" <<'EOF'
#include "crossbuild_test.h"

#include <stdlib.h>

CB_TEST(zz_first_in_source) { CB_ASSERT_EQ_INT(1 + 1, 2); }
CB_TEST(fails_int) {
    int x = 2;
    CB_ASSERT_EQ_INT(x, 3); /* LINE_FAILS_INT */
}
CB_TEST(fails_uint) { CB_ASSERT_EQ_UINT(0xffffffffu, 0u); }
CB_TEST(fails_str) { CB_ASSERT_EQ_STR("caf\xc3\xa9\n", "cafe"); }
CB_TEST(fails_mem) { CB_ASSERT_EQ_MEM("\x00\x01\x02\x03\x04\x3a\x06", "\x00\x01\x02\x03\x04\x3b\x06", 7); }
CB_TEST(fails_near) { CB_ASSERT_NEAR(0.5, 0.25, 0.125); }
CB_TEST(fails_bool) { CB_ASSERT(1 > 2); }
static void helper(int v) { CB_ASSERT_EQ_INT(v, 0); }
CB_TEST(fails_in_helper) { helper(7); }
CB_TEST(passes_everything) {
    CB_ASSERT(1);
    CB_ASSERT_EQ_UINT(0xffffffffffffffffu, 0xffffffffffffffffu);
    CB_ASSERT_EQ_STR("a", "a");
    CB_ASSERT_EQ_STR(NULL, NULL);
    CB_ASSERT_EQ_MEM("ab", "ab", 2);
    CB_ASSERT_EQ_MEM(NULL, NULL, 0);
    CB_ASSERT_NEAR(1.0, 1.0 + 1e-12, 1e-9);
}
#ifdef SELFTEST_CRASH
CB_TEST(aborts) { abort(); }
#endif
CB_TEST(aa_last_in_source) { CB_ASSERT_EQ_INT(-1, -1); }
EOF
    local fails_int_line
    fails_int_line="$(grep -n LINE_FAILS_INT "$dir/selftest.c" | cut -d: -f1)"
    (cd "$dir" && cc_run "$kind" "${warn_flags[@]}" "${flags[@]}" -I"$harness_dir" selftest.c "${link_flags[@]}" -o selftest) >"$dir/build.log" 2>&1 &&
        (cd "$dir" && cc_run "$kind" "${warn_flags[@]}" "${flags[@]}" -I"$harness_dir" -DSELFTEST_CRASH selftest.c "${link_flags[@]}" -o selftest_crash) >>"$dir/build.log" 2>&1 &&
        (cd "$dir" && cc_run "$kind" "${warn_flags[@]}" "${flags[@]}" -I"$harness_dir" -DCB_TEST_MAX_CASES=3 selftest.c "${link_flags[@]}" -o selftest_small) >>"$dir/build.log" 2>&1 ||
        { echo "  harness self-test: build failed:"; sed 's/^/    /' "$dir/build.log"; return 1; }

    expect() { # DESCRIPTION CONDITION...
        local what="$1"; shift
        if ! "$@"; then echo "  harness self-test: $what"; ok=0; fi
    }
    # run ARGS... -> sets out, err, rc
    run() { out="$(cd "$dir" && run_bin "$runner" "$@" 2>"$dir/err")"; rc=$?; err="$(cat "$dir/err")"; }

    run ./selftest --list
    expect "--list exits 0 (got $rc)" test "$rc" = 0
    expect "--list prints cases in source order" test "$out" = "$(printf '%s\n' zz_first_in_source fails_int fails_uint fails_str fails_mem fails_near fails_bool fails_in_helper passes_everything aa_last_in_source)"

    run ./selftest --exact zz_first_in_source
    expect "passing case exits 0 silently (rc $rc)" test "$rc" = 0 -a -z "$out" -a -z "$err"
    run ./selftest --exact passes_everything
    expect "passes_everything exits 0 (rc $rc: $err)" test "$rc" = 0

    run ./selftest --exact fails_int
    expect "fails_int exits 1 (rc $rc)" test "$rc" = 1
    expect "fails_int message: got '$err'" test "$err" = "selftest.c:$fails_int_line: CB_ASSERT_EQ_INT(x, 3) failed: 2 != 3"
    run ./selftest --exact fails_uint
    expect "fails_uint message: got '$err'" test "$rc:$err" = "1:selftest.c:10: CB_ASSERT_EQ_UINT(0xffffffffu, 0u) failed: 4294967295 (0xffffffff) != 0 (0x0)"
    run ./selftest --exact fails_str
    expect "fails_str message: got '$err'" test "$rc:$err" = '1:selftest.c:11: CB_ASSERT_EQ_STR("caf\xc3\xa9\n", "cafe") failed: "caf\xc3\xa9\n" != "cafe"'
    run ./selftest --exact fails_mem
    line="$(printf '%s' "$err" | head -1)"
    expect "fails_mem message: got '$err'" test "$rc:$line" = '1:selftest.c:12: CB_ASSERT_EQ_MEM("\x00\x01\x02\x03\x04\x3a\x06", "\x00\x01\x02\x03\x04\x3b\x06", 7) failed: first difference at offset 5 of 7: 0x3a != 0x3b'
    expect "fails_mem hex dump: got '$err'" grep -qF '  a +0x0000: 00 01 02 03 04 [3a] 06' <<<"$err"
    run ./selftest --exact fails_near
    expect "fails_near message: got '$err'" test "$rc:$err" = "1:selftest.c:13: CB_ASSERT_NEAR(0.5, 0.25, 0.125) failed: 0.5 and 0.25 differ by 0.25, more than 0.125"
    run ./selftest --exact fails_bool
    expect "fails_bool message: got '$err'" test "$rc:$err" = "1:selftest.c:14: CB_ASSERT(1 > 2) failed"
    run ./selftest --exact fails_in_helper
    expect "fails_in_helper message: got '$err'" test "$rc:$err" = "1:selftest.c:15: CB_ASSERT_EQ_INT(v, 0) failed: 7 != 0"

    run ./selftest --exact no_such_case
    expect "unknown case exits 2 (rc $rc)" test "$rc" = 2
    expect "unknown case is named: got '$err'" grep -qF "'no_such_case'" <<<"$err"
    run ./selftest --bogus
    expect "bad arguments exit 2 (rc $rc)" test "$rc" = 2
    run ./selftest --help
    expect "--help exits 0 (rc $rc)" test "$rc" = 0

    run ./selftest
    expect "run-all exits 1 when a case fails (rc $rc)" test "$rc" = 1
    expect "run-all summary: got '$(tail -1 <<<"$out")'" test "$(tail -1 <<<"$out")" = "3 passed, 7 failed"

    run ./selftest_crash --exact aborts
    expect "a crash is not caught (rc $rc, want 134 = SIGABRT)" test "$rc" = 134
    run ./selftest_crash --exact aa_last_in_source
    expect "other cases still pass next to a crashing one (rc $rc)" test "$rc" = 0

    run ./selftest_small --list
    expect "too many cases exits 3 (rc $rc)" test "$rc" = 3
    expect "too many cases says so: got '$err'" grep -qF "CB_TEST_MAX_CASES" <<<"$err"

    [[ $ok == 1 ]]
}

# ---- main loop -----------------------------------------------------------------------

lib_sources=("$here"/src/*.c)
test_sources=("$here"/tests/*_test.c)

for config in "${configs[@]}"; do
    IFS='|' read -r name kind flag_str runner link_str <<<"$config"
    is_selected "$name" || continue
    read -r -a flags <<<"$flag_str"
    echo "== $name: ${kind/host/$cc_host} ${flag_str}${link_str:+ (link: $link_str)}"

    if [[ "$kind" == zig:* && ${#zig_cmd[@]} -eq 0 ]]; then
        echo "  FAILED: no zig (set ZIG, or pip install ziglang)"
        summary+=("$name: no zig"); problems=$((problems + 1)); continue
    fi
    if [[ "$runner" == aarch64 && "${aarch64_runner[0]:-}" == __missing__ ]] ||
       [[ "$runner" == x86_64 && "${x86_64_runner[0]:-}" == __missing__ ]]; then
        what="${aarch64_runner[1]:-}"; [[ "$runner" == x86_64 ]] && what="${x86_64_runner[1]}"
        echo "  FAILED: cannot run $runner binaries here (need $what)"
        summary+=("$name: cannot run"); problems=$((problems + 1)); continue
    fi
    if [[ "$flag_str" == *-fsanitize=* ]]; then
        probe="$build_root/$name-probe"
        mkdir -p "$probe"
        printf 'int main(void) { return 0; }\n' >"$probe/p.c"
        if ! "$cc_host" "${flags[@]}" "$probe/p.c" -o "$probe/p" >/dev/null 2>&1 || ! "$probe/p"; then
            echo "  skipped: $cc_host cannot build and run sanitizer binaries here"
            summary+=("$name: skipped (no sanitizer runtime)"); continue
        fi
    fi

    out_dir="$build_root/$name"
    mkdir -p "$out_dir/obj"
    link_flags=()
    [[ "$kind" == zig:* ]] && link_flags=(-static)
    if [[ -n "$link_str" ]]; then
        read -r -a extra_link <<<"$link_str"
        link_flags+=("${extra_link[@]}")
    fi

    # Library objects, compiled once per configuration.
    build_ok=1
    lib_objs=()
    for src in "${lib_sources[@]}"; do
        obj="$out_dir/obj/lib_$(basename "$src" .c).o"
        if ! cc_run "$kind" "${warn_flags[@]}" "${flags[@]}" -I"$here/include" -c "$src" -o "$obj" 2>"$out_dir/build.log"; then
            echo "  FAILED to compile $src:"; sed 's/^/    /' "$out_dir/build.log"; build_ok=0
        fi
        lib_objs+=("$obj")
    done
    if [[ $build_ok == 0 ]]; then
        summary+=("$name: library did not build"); problems=$((problems + 1)); continue
    fi

    cfg_pass=0; cfg_fail=0; cfg_bins=0
    for src in "${test_sources[@]}"; do
        tname="$(basename "$src" .c)"
        bin="$out_dir/$tname"
        if ! cc_run "$kind" "${warn_flags[@]}" "${flags[@]}" -I"$here/include" -I"$harness_dir" -c "$src" -o "$out_dir/obj/$tname.o" 2>"$out_dir/build.log" ||
           ! cc_run "$kind" "${flags[@]}" "$out_dir/obj/$tname.o" "${lib_objs[@]}" "${link_flags[@]}" -o "$bin" 2>>"$out_dir/build.log"; then
            echo "  FAILED to build $tname:"; sed 's/^/    /' "$out_dir/build.log"
            cfg_fail=$((cfg_fail + 1)); problems=$((problems + 1)); continue
        fi
        cfg_bins=$((cfg_bins + 1))

        if ! run_bin "$runner" "$bin" --list >"$out_dir/$tname.list" 2>"$out_dir/$tname.list.err"; then
            echo "  FAILED: $tname --list:"; sed 's/^/    /' "$out_dir/$tname.list.err"
            cfg_fail=$((cfg_fail + 1)); problems=$((problems + 1)); continue
        fi
        mapfile -t cases <"$out_dir/$tname.list"
        declared="$(grep -c '^CB_TEST(' "$src")"
        if [[ ${#cases[@]} -ne $declared ]]; then
            echo "  FAILED: $tname --list gave ${#cases[@]} names, the source declares $declared"
            problems=$((problems + 1))
        fi
        if [[ -n "$(sort "$out_dir/$tname.list" | uniq -d)" ]]; then
            echo "  FAILED: $tname --list has duplicate names"; problems=$((problems + 1))
        fi
        # Every configuration must list the same cases in the same order.
        if [[ -f "$reference_lists/$tname" ]]; then
            if ! cmp -s "$reference_lists/$tname" "$out_dir/$tname.list"; then
                echo "  FAILED: $tname --list differs from the first configuration's:"
                diff "$reference_lists/$tname" "$out_dir/$tname.list" | sed 's/^/    /'
                problems=$((problems + 1))
            fi
        else
            cp "$out_dir/$tname.list" "$reference_lists/$tname"
        fi

        bin_pass=0; bin_fail=0
        for case_name in "${cases[@]}"; do
            run_bin "$runner" "$bin" --exact "$case_name" >"$out_dir/case.out" 2>"$out_dir/case.err"
            rc=$?
            if [[ $rc -eq 0 ]]; then
                bin_pass=$((bin_pass + 1))
                [[ "$verbose" == 1 ]] && echo "  ok   $tname $case_name"
            else
                bin_fail=$((bin_fail + 1))
                if [[ $rc -gt 128 ]]; then how="killed by signal $((rc - 128))"; else how="exit $rc"; fi
                echo "  FAIL $tname $case_name ($how)"
                sed 's/^/    /' "$out_dir/case.err" "$out_dir/case.out" | head -40
            fi
        done

        # The unknown-name path and the run-everything mode, once per binary.
        run_bin "$runner" "$bin" --exact __no_such_case__ >/dev/null 2>&1
        rc=$?
        if [[ $rc -ne 2 ]]; then
            echo "  FAILED: $tname --exact <unknown> exited $rc, want 2"; problems=$((problems + 1))
        fi
        run_bin "$runner" "$bin" >"$out_dir/$tname.all" 2>&1
        rc=$?
        want_summary="$bin_pass passed, $bin_fail failed"
        got_summary="$(tail -1 "$out_dir/$tname.all")"
        if [[ "$got_summary" != "$want_summary" ]] || { [[ $bin_fail -eq 0 ]] && [[ $rc -ne 0 ]]; }; then
            echo "  FAILED: $tname with no arguments: exit $rc, summary '$got_summary', want '$want_summary'"
            problems=$((problems + 1))
        fi

        [[ "$verbose" == 1 || $bin_fail -ne 0 ]] && echo "  $tname: $bin_pass passed, $bin_fail failed"
        cfg_pass=$((cfg_pass + bin_pass)); cfg_fail=$((cfg_fail + bin_fail))
    done

    selftest="harness self-test ok"
    if ! harness_selftest "$kind" "$runner" "$out_dir/selftest" "$link_str" "${flags[@]}"; then
        selftest="harness self-test FAILED"; problems=$((problems + 1))
    fi

    total_pass=$((total_pass + cfg_pass)); total_fail=$((total_fail + cfg_fail))
    line="$name: $cfg_bins binaries, $cfg_pass passed, $cfg_fail failed; $selftest"
    echo "  $line"
    summary+=("$line")
done

echo
echo "== summary"
for line in "${summary[@]}"; do echo "  $line"; done
if [[ $problems -ne 0 ]]; then
    echo "  $problems other problem(s) reported above"
fi
echo "total: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 && $problems -eq 0 && $total_pass -gt 0 ]]
