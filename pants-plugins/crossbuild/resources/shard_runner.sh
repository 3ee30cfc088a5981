#!/bin/sh
# shard_runner.sh: runs one shard of a crossbuild test archive and writes JUnit XML.
#
# Usage:
#   sh shard_runner.sh ARCHIVE.tar SHARD_INDEX TOTAL_SHARDS PARTITION CASE_TIMEOUT_SECONDS JUNIT_XML_PATH
#
#   ARCHIVE.tar           an uncompressed tar made by crossbuild: manifest.txt plus the test binaries.
#   SHARD_INDEX           0-based, 0 <= SHARD_INDEX < TOTAL_SHARDS. Output says "shard K/N" with K
#                         1-based. TEST_SHARD_INDEX and TEST_TOTAL_SHARDS (Bazel's names) are exported
#                         to every test process (`--list` runs included).
#   TOTAL_SHARDS          >= 1.
#   PARTITION             how cases are spread over the shards; a "case" is BINARY_PATH::CASE_NAME
#                         with BINARY_PATH as written in the manifest:
#                           hash   the shard is (POSIX cksum CRC-32 of "BINARY_PATH::CASE_NAME", no
#                                  trailing newline) mod TOTAL_SHARDS: a case keeps its shard when other
#                                  cases are added or removed. The CRC is computed in awk, so it is
#                                  the same on every host (busybox has no cksum applet).
#                           count  the i-th case (0-based) over all binaries, in manifest order and then
#                                  in --list order, runs on shard i mod TOTAL_SHARDS.
#                           slice  the same ordered list cut into TOTAL_SHARDS consecutive blocks;
#                                  shard k runs indexes [floor(k*M/N), floor((k+1)*M/N)).
#   CASE_TIMEOUT_SECONDS  whole seconds >= 1, for each `--list` and each case.
#   JUNIT_XML_PATH        written (atomically) on exit 0, 1 and 3; its folder is created if needed.
#                         Relative ARCHIVE and JUNIT_XML_PATH are taken from the current folder.
#
# Archive: extracted with `tar -xf` into a fresh temporary folder (under $TMPDIR, else /tmp; removed
# on exit). Its manifest.txt is line based:
#     crossbuild-test-archive 1
#     platform linux_arm64
#     target aarch64-linux-musl
#     binary bin/foo_test <sha256 hex>
# The first line must be exactly `crossbuild-test-archive 1`; then `platform`, `target` (one each,
# required) and any number of `binary PATH SHA256` lines (PATH relative, no `..`, no blanks). Blank
# lines and `#` comments are ignored; anything else is an error. The target triple's first
# component (aarch64/arm64, x86_64/amd64) must match `uname -m` and the platform's architecture;
# every listed binary's sha256 must match.
#
# Test protocol: `BIN --list` prints one case name per line (blank lines and a trailing CR are
# ignored); `BIN --exact NAME` runs that case. Both run with the archive root as the working
# directory, stdin from /dev/null, under `timeout [-k 5] CASE_TIMEOUT`. A failing `--list` is one
# error testcase (name "--list") for that binary; its cases are then unknown, so with `count` and
# `slice` the other binaries' cases may move between shards, and every shard reports the error.
# Each case is a separate process; stdout+stderr are captured together; elapsed time comes from
# /proc/uptime (centiseconds). Classification, in this order:
#   PASS     exit status 0
#   TIMEOUT  status 124, 137 or 143 after at least CASE_TIMEOUT seconds. GNU timeout exits 124
#            (137 when -k had to SIGKILL); busybox timeout execs the test in its own process, so
#            the status is the test's own: 143 (SIGTERM) or 137 (SIGKILL after -k). Only the
#            elapsed time tells these from a test that kills itself. Under busybox, a test that
#            catches SIGTERM and exits with another status is reported as FAIL/CRASH.
#   CRASH    status > 128: "killed by signal N (SIGNAME)"
#   FAIL     any other status: "exit status N" (126/127: the binary could not be executed)
# Every selected case runs, whatever the earlier ones did.
#
# Output (stdout): a header, one line per case (`PASS bin/foo_test::case (0.01s)`,
# `FAIL bin/foo_test::case (0.02s): exit status 1`, `TIMEOUT ...: timed out after 5s`,
# `CRASH ...: killed by signal 11 (SIGSEGV)`, `ERROR bin/foo_test --list (0.01s): --list failed with
# exit status 2`), the last 50 lines
# of a non-passing case's output indented with "    | ", then
#   shard K/N: P passed, F failed, T timed out, C crashed, E errors of M cases
# where M counts the cases selected for this shard and E the binaries whose --list failed.
# Problems that stop the shard go to stderr as "shard_runner: error: ...".
#
# JUnit XML: <testsuites> holding one <testsuite name="shard-K-of-N" tests= failures= errors=
# skipped="0" time= timestamp=> with <properties> (partition, platform, target, shard) and one
# <testcase classname="BINARY_PATH" name="CASE" time="S.SS"> per case (plus one per --list error).
# Failures, timeouts and crashes have <failure message="..." type="fail|timeout|crash">, --list
# errors <error message="..." type="list">, holding the captured output (its last 64 KiB). Text
# is escaped (& < > " and, in attributes, tab/CR/LF as character references), control characters
# are dropped and bytes that are not valid UTF-8 become U+FFFD, so the file is always valid XML.
# On exit 3 the suite holds a single error testcase (classname "shard_runner", name "archive").
#
# Exit status: 0 all selected cases passed (also when the shard has none), 1 some case failed,
# timed out or crashed, or a --list failed, 2 usage error (no XML written), 3 archive, manifest or
# platform problem (also: no temporary folder, no timeout command, the XML cannot be written),
# 128+N the runner itself was killed by signal N (HUP, INT, TERM; the temporary folder is removed).
#
# Runs under busybox ash (the aarch64 userland has no other shell), dash and bash. Uses only:
# tar mkdir mktemp rm mv cat sha256sum uname awk tr tail sed wc date grep sleep kill timeout.
#
# Quirks this works around (busybox 1.35.0 from Debian 12's busybox-static:arm64, dash 0.5.12,
# mawk 1.3.4, proot 5.1.0, qemu-aarch64-static):
# - busybox has no `cksum` applet (only `crc32`, a different CRC), and mawk has no bitwise
#   functions: the POSIX cksum CRC is computed in portable awk, xor through a nibble table.
#   `printf "%d"` clamps at 2^31-1 in mawk and busybox awk: "%.0f" prints the 32-bit CRC.
# - busybox `timeout` exits 143 (the test's own SIGTERM death), never 124: it execs the test in
#   its own process and signals it from a cloned watchdog that polls once a second; it signals
#   the test process only, not its children (GNU timeout signals its whole process group).
# - That watchdog outlives the test by up to a second, and proot exits with the status of the
#   guest's LAST process to end, so the runner's own status would become 0: drain_strays waits
#   for every process whose command line names the extracted archive before exiting.
# - busybox grep stops at the NULs of /proc/PID/cmdline: the files go through `tr` first.
# - ash and dash print "Segmentation fault"/"Terminated" notices for children killed by a
#   signal, from a buffer flushed later, so `{ cmd; } 2>/dev/null` does not catch them: fd 2 is
#   /dev/null while tests run. And `{ (f) >file; } 2>/dev/null`, with f a function that execs,
#   loses `>file` in both: the subshell applies its redirections with `exec` itself.
# - busybox ash has no job control without a tty (`set -m`: "can't access tty"): no process
#   groups per case.
# - busybox `read` (and dash's) read one byte per system call, each traced by proot: bulk text
#   goes through awk, not `while read` loops, where it can.
# - qemu adds "qemu: uncaught target signal 11 (Segmentation fault) - core dumped" to the
#   stderr of a crashing test; it ends up in the captured output.

PATH=${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}
export PATH

KILL_AFTER=5          # seconds between the timeout signal (TERM) and SIGKILL, when timeout has -k
OUTPUT_LIMIT=65536    # bytes of a case's output kept in the JUnit XML
PRINT_LINES=50        # lines of a non-passing case's output printed to stdout
CR=$(printf '\r')

usage() {
    printf 'shard_runner: %s\n' "$1" >&2
    printf 'usage: sh shard_runner.sh ARCHIVE.tar SHARD_INDEX TOTAL_SHARDS hash|count|slice CASE_TIMEOUT_SECONDS JUNIT_XML_PATH\n' >&2
    exit 2
}

# Sets UINT to the value of $1 if it is a plain decimal number (leading zeros dropped, so that
# shell arithmetic does not read it as octal); fails otherwise.
parse_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    UINT=${1#"${1%%[!0]*}"}
    UINT=${UINT:-0}
    [ ${#UINT} -le 9 ]
}

[ $# -eq 6 ] || usage "expected 6 arguments, got $#"
ARCHIVE=$1
PARTITION=$4
JUNIT=$6
parse_uint "$3" || usage "TOTAL_SHARDS must be a whole number, got '$3'"
TOTAL=$UINT
[ "$TOTAL" -ge 1 ] || usage "TOTAL_SHARDS must be at least 1"
parse_uint "$2" || usage "SHARD_INDEX must be a whole number, got '$2'"
SHARD=$UINT
[ "$SHARD" -lt "$TOTAL" ] || usage "SHARD_INDEX is 0-based and must be below TOTAL_SHARDS ($TOTAL), got $SHARD"
case $PARTITION in
    hash | count | slice) ;;
    *) usage "PARTITION must be hash, count or slice, got '$PARTITION'" ;;
esac
parse_uint "$5" || usage "CASE_TIMEOUT_SECONDS must be a whole number of seconds, got '$5'"
CASE_TIMEOUT=$UINT
[ "$CASE_TIMEOUT" -ge 1 ] || usage "CASE_TIMEOUT_SECONDS must be at least 1"
[ -n "$JUNIT" ] || usage "JUNIT_XML_PATH is empty"

case $ARCHIVE in /*) ;; *) ARCHIVE=$(pwd)/$ARCHIVE ;; esac
case $JUNIT in /*) ;; *) JUNIT=$(pwd)/$JUNIT ;; esac
case $JUNIT in */) usage "JUNIT_XML_PATH names a folder: $JUNIT" ;; esac
JUNIT_DIR=${JUNIT%/*}
[ -n "$JUNIT_DIR" ] || JUNIT_DIR=/
[ -d "$JUNIT_DIR" ] || mkdir -p "$JUNIT_DIR" 2>/dev/null || usage "cannot create the folder of JUNIT_XML_PATH: $JUNIT_DIR"
[ ! -d "$JUNIT" ] || usage "JUNIT_XML_PATH is a folder: $JUNIT"
[ -w "$JUNIT_DIR" ] || usage "cannot write into the folder of JUNIT_XML_PATH: $JUNIT_DIR"

# fd 9: the runner's stderr, for its own messages (fd 2 is /dev/null while tests run).
exec 9>&2

K1=$((SHARD + 1))
SUITE="shard-$K1-of-$TOTAL"
TEST_SHARD_INDEX=$SHARD
TEST_TOTAL_SHARDS=$TOTAL
export TEST_SHARD_INDEX TEST_TOTAL_SHARDS

# --- time -------------------------------------------------------------------------------------

# Sets NOW to a monotonic time in centiseconds (/proc/uptime; `date +%s` if there is no /proc).
now_cs() {
    if read -r NOW_UP NOW_REST 2>/dev/null </proc/uptime; then
        NOW_FRAC=${NOW_UP#*.}
        NOW_FRAC=${NOW_FRAC#0}
        NOW=$((${NOW_UP%%.*} * 100 + ${NOW_FRAC:-0}))
    else
        NOW=$(($(date +%s) * 100))
    fi
}

# Sets SECS to centiseconds $1 as seconds with two decimals.
fmt_secs() {
    SECS_FRAC=$(($1 % 100))
    [ "$SECS_FRAC" -ge 10 ] || SECS_FRAC=0$SECS_FRAC
    SECS="$(($1 / 100)).$SECS_FRAC"
}

now_cs
START_CS=$NOW
TIMESTAMP=$(date -u +%Y-%m-%dT%H:%M:%S 2>/dev/null)

# --- awk programs -----------------------------------------------------------------------------
# All awk runs with LC_ALL=C, so that strings are bytes in gawk too (mawk and busybox awk always
# work on bytes). No bitwise functions: mawk has none.

# Shared helpers: ORD (byte -> number), xor via a nibble table, POSIX cksum CRC-32.
AWK_LIB='
function lib_init(   i, a, b, r, p, x, y, j, c) {
    for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i
    for (a = 0; a < 16; a++)
        for (b = 0; b < 16; b++) {
            r = 0; p = 1; x = a; y = b
            for (j = 0; j < 4; j++) {
                if ((x % 2) != (y % 2)) r += p
                x = int(x / 2); y = int(y / 2); p *= 2
            }
            X4[a * 16 + b] = r
        }
}
function xor32(a, b,   r, p, j, x, y) {
    r = 0; p = 1
    for (j = 0; j < 8; j++) {
        x = a % 16; y = b % 16
        r += X4[x * 16 + y] * p
        a = (a - x) / 16; b = (b - y) / 16; p *= 16
    }
    return r
}
function xor8(a, b) {
    return X4[(a % 16) * 16 + (b % 16)] + 16 * X4[int(a / 16) * 16 + int(b / 16)]
}
function crc_init(   i, j, c) {
    for (i = 0; i < 256; i++) {
        c = i * 16777216
        for (j = 0; j < 8; j++) {
            if (c >= 2147483648) c = xor32((c - 2147483648) * 2, 79764919)
            else c = c * 2
        }
        CRCT[i] = c
    }
}
function crc_byte(c, b) {
    return xor32((c % 16777216) * 256, CRCT[xor8(int(c / 16777216), b)])
}
# What `printf %s s | cksum` prints first.
function cksum(s,   n, ch, i, c) {
    n = split(s, ch, "")
    c = 0
    for (i = 1; i <= n; i++) c = crc_byte(c, ORD[ch[i]])
    for (i = n; i > 0; i = int(i / 256)) c = crc_byte(c, i % 256)
    return 4294967295 - c
}
'

# Selection: operands pass=1 BINARIES pass=2 CASES; prints this shard's lines of CASES.
# Also `awk ... -v mode=cksum` with keys on stdin prints each key's CRC (for the tests).
SELECT_AWK=$AWK_LIB'
BEGIN {
    lib_init()
    if (mode == "hash" || mode == "cksum") crc_init()
    ncase = 0
}
mode == "cksum" { printf "%.0f\n", cksum($0); next }
pass == 1 { sp = index($0, " "); BIN[substr($0, 1, sp - 1)] = substr($0, sp + 1); next }
pass == 2 {
    i = ncase++
    if (mode == "count") {
        if (i % n == k) print
    } else if (mode == "hash") {
        sp = index($0, " ")
        if (cksum(BIN[substr($0, 1, sp - 1)] "::" substr($0, sp + 1)) % n == k) print
    } else {
        LINES[i] = $0
    }
}
END {
    if (mode == "slice") {
        lo = int(k * ncase / n); hi = int((k + 1) * ncase / n)
        for (i = lo; i < hi; i++) print LINES[i]
    }
}
'

# JUnit XML: operands pass=1 BINARIES pass=2 PROPERTIES pass=3 RESULTS.
# RESULTS holds, per testcase, three lines:  C KIND BINIDX CENTISECONDS BODYFILE|-  /  NNAME  /  MMESSAGE
XML_AWK=$AWK_LIB'
function flush_buf() { if (nbuf) { printf "%s", buf; buf = ""; nbuf = 0 } }
function put(s) { buf = buf s; if (++nbuf >= 256) flush_buf() }
# Writes s escaped as XML text (attr: as an attribute value) through put().
function esc_put(s, attr,   n, a, i, b, c, j, need, lo, hi, ok) {
    if (s ~ (attr ? SAFE_ATTR : SAFE)) { put(s); return }
    n = split(s, a, "")
    for (i = 1; i <= n; i++) {
        b = ORD[a[i]]
        if (b < 128) {
            if (b == 38) put("&amp;")
            else if (b == 60) put("&lt;")
            else if (b == 62) put("&gt;")
            else if (b == 34) put("&quot;")
            else if (b == 13) put("&#13;")
            else if (b == 9 || b == 10) put(attr ? "&#" b ";" : a[i])
            else if (b >= 32 && b != 127) put(a[i])
            continue
        }
        need = 0; lo = 128; hi = 191
        if (b >= 194 && b <= 223) need = 1
        else if (b == 224) { need = 2; lo = 160 }
        else if ((b >= 225 && b <= 236) || b == 238 || b == 239) need = 2
        else if (b == 237) { need = 2; hi = 159 }
        else if (b == 240) { need = 3; lo = 144 }
        else if (b >= 241 && b <= 243) need = 3
        else if (b == 244) { need = 3; hi = 143 }
        ok = need > 0 && i + need <= n
        if (ok) { c = ORD[a[i + 1]]; if (c < lo || c > hi) ok = 0 }
        for (j = 2; ok && j <= need; j++) { c = ORD[a[i + j]]; if (c < 128 || c > 191) ok = 0 }
        if (ok && b == 239 && ORD[a[i + 1]] == 191 && ORD[a[i + 2]] >= 190) ok = 0
        if (ok) { for (j = 0; j <= need; j++) put(a[i + j]); i += need }
        else put(REPLACEMENT)
    }
}
function esc(s) { flush_buf(); esc_put(s, 1); out = buf; buf = ""; nbuf = 0; return out }
BEGIN {
    lib_init()
    SAFE = "^[\t !#-%\047-;=?-~]*$"
    SAFE_ATTR = "^[ !#-%\047-;=?-~]*$"
    REPLACEMENT = sprintf("%c%c%c", 239, 191, 189)
    printf "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    printf "<testsuites name=\"crossbuild\" tests=\"%d\" failures=\"%d\" errors=\"%d\" time=\"%s\">\n", tests, failures, errors, time
    printf "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"0\" time=\"%s\"", suite, tests, failures, errors, time
    if (timestamp != "") printf " timestamp=\"%s\"", timestamp
    printf ">\n"
    nprops = 0
}
pass == 1 { sp = index($0, " "); BIN[substr($0, 1, sp - 1)] = substr($0, sp + 1); next }
pass == 2 {
    if (nprops++ == 0) printf "    <properties>\n"
    sp = index($0, " ")
    printf "      <property name=\"%s\" value=\"%s\"/>\n", esc(substr($0, 1, sp - 1)), esc(substr($0, sp + 1))
    next
}
pass == 3 && !closed_props { if (nprops) printf "    </properties>\n"; closed_props = 1 }
pass == 3 && /^C / { kind = $2; bin = $3; cs = $4; body = $0; sub(/^C [^ ]+ [^ ]+ [^ ]+ /, "", body); next }
pass == 3 && /^N/ { name = substr($0, 2); next }
pass == 3 && /^M/ {
    msg = substr($0, 2)
    printf "    <testcase classname=\"%s\" name=\"%s\" time=\"%.2f\"", esc(BIN[bin]), esc(name), cs / 100
    if (kind == "PASS") { printf "/>\n"; next }
    tag = kind == "ERROR" ? "error" : "failure"
    printf ">\n      <%s message=\"%s\" type=\"%s\">", tag, esc(msg), kind == "ERROR" ? "list" : tolower(kind)
    if (body != "-") {
        first = 1
        while ((getline line < body) > 0) {
            if (!first) put("\n")
            first = 0
            esc_put(line, 0)
        }
        close(body)
        flush_buf()
    }
    printf "</%s>\n    </testcase>\n", tag
    next
}
END {
    if (!closed_props && nprops) printf "    </properties>\n"
    printf "  </testsuite>\n</testsuites>\n"
}
'

# --- temporary folder, cleanup ----------------------------------------------------------------

WORK=
RAN_TESTS=0

# Waits for processes still running from the archive (their command line names $ROOT/) to end:
# busybox timeout leaves a watchdog (a clone of itself, reparented to init when the test ends)
# that notices the end of the test only at its next one-second tick, and proot 5.1.0 exits with
# the status of the LAST process of the guest to end, so a watchdog outliving this script turns
# its exit status into 0. Whatever is left after about 3 seconds (a test's stray daemon) is
# SIGKILLed. GNU timeout waits for its child and leaves nothing behind.
drain_strays() {
    [ "$RAN_TESTS" = 1 ] || return 0
    printf '%s/\n' "$ROOT" >"$WORK/stray.pattern" || return 0
    drain_n=0
    # cmdline files are NUL-separated, which busybox grep cannot see through: tr them first. The
    # pattern is read from a file, so grep's own command line does not match it.
    while cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\000' '\n' | grep -q -F -f "$WORK/stray.pattern"; do
        drain_n=$((drain_n + 1))
        [ "$drain_n" -le 50 ] || break
        if [ "$drain_n" -gt 30 ]; then
            for drain_f in /proc/[0-9]*/cmdline; do
                if tr '\000' '\n' <"$drain_f" 2>/dev/null | grep -q -F -f "$WORK/stray.pattern"; then
                    drain_pid=${drain_f#/proc/}
                    kill -KILL "${drain_pid%/cmdline}" 2>/dev/null
                fi
            done
        fi
        sleep 0.1 2>/dev/null || sleep 1
    done
}

cleanup() {
    if [ -n "$WORK" ]; then
        drain_strays
        cd / 2>/dev/null
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

PLATFORM=
TARGET=

# Writes the JUnit XML from $WORK/binaries, $WORK/props and $WORK/results; $1..$5 are tests,
# failures, errors, centiseconds, results file.
write_junit() {
    fmt_secs "$4"
    printf '%s\n' "partition $PARTITION" "shard $K1/$TOTAL" >"$WORK/props"
    [ -z "$PLATFORM" ] || printf 'platform %s\n' "$PLATFORM" >>"$WORK/props"
    [ -z "$TARGET" ] || printf 'target %s\n' "$TARGET" >>"$WORK/props"
    [ -f "$WORK/binaries" ] || : >"$WORK/binaries"
    if LC_ALL=C awk -v suite="$SUITE" -v tests="$1" -v failures="$2" -v errors="$3" -v time="$SECS" \
        -v timestamp="$TIMESTAMP" "$XML_AWK" \
        pass=1 "$WORK/binaries" pass=2 "$WORK/props" pass=3 "$5" >"$JUNIT.tmp.$$" &&
        mv -f "$JUNIT.tmp.$$" "$JUNIT"; then
        return 0
    fi
    rm -f "$JUNIT.tmp.$$"
    printf 'shard_runner: error: could not write the JUnit XML to %s\n' "$JUNIT" >&9
    return 1
}

# Reports a problem with the archive, manifest or platform and exits 3.
fatal() {
    printf 'shard_runner: error: %s\n' "$1" >&9
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        printf '0 shard_runner\n' >"$WORK/binaries"
        printf '%s\n' "$1" >"$WORK/fatal.txt"
        printf 'C ERROR 0 0 %s\nNarchive\nM%s\n' "$WORK/fatal.txt" "$1" >"$WORK/fatal.results"
        now_cs
        write_junit 1 0 1 $((NOW - START_CS)) "$WORK/fatal.results"
    fi
    exit 3
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crossbuild-shard.XXXXXX") || {
    WORK=
    fatal "cannot create a temporary folder in ${TMPDIR:-/tmp}"
}
ROOT=$WORK/root
mkdir "$ROOT" "$WORK/out" || fatal "cannot create folders in $WORK"

# --- archive and manifest ---------------------------------------------------------------------

[ -f "$ARCHIVE" ] && [ -r "$ARCHIVE" ] || fatal "cannot read the archive $ARCHIVE"
if ! tar -xf "$ARCHIVE" -C "$ROOT" 2>"$WORK/tar.err"; then
    fatal "cannot extract $ARCHIVE: $(cat "$WORK/tar.err")"
fi
MANIFEST=$ROOT/manifest.txt
[ -f "$MANIFEST" ] || fatal "$ARCHIVE has no manifest.txt: not a crossbuild test archive"

NBIN=0
LINENO_M=0
: >"$WORK/binaries"
set -f
while IFS= read -r line || [ -n "$line" ]; do
    LINENO_M=$((LINENO_M + 1))
    line=${line%"$CR"}
    if [ "$LINENO_M" -eq 1 ]; then
        case $line in
            "crossbuild-test-archive 1") continue ;;
            "crossbuild-test-archive "*)
                fatal "unsupported manifest format version '${line#crossbuild-test-archive }' in $ARCHIVE: this runner reads crossbuild-test-archive 1 only" ;;
            *)
                fatal "unknown manifest format in $ARCHIVE: the first line of manifest.txt is '$line', not 'crossbuild-test-archive 1'" ;;
        esac
    fi
    # shellcheck disable=SC2086  # split into words on purpose (globbing is off)
    set -- $line
    case ${1-} in
        '' | '#'*) ;;
        platform)
            [ $# -eq 2 ] && [ -z "$PLATFORM" ] || fatal "manifest.txt line $LINENO_M: expected a single 'platform NAME' line"
            PLATFORM=$2 ;;
        target)
            [ $# -eq 2 ] && [ -z "$TARGET" ] || fatal "manifest.txt line $LINENO_M: expected a single 'target TRIPLE' line"
            TARGET=$2 ;;
        binary)
            [ $# -eq 3 ] || fatal "manifest.txt line $LINENO_M: expected 'binary PATH SHA256'"
            case $2 in
                /* | .. | ../* | */.. | */../*)
                    fatal "manifest.txt line $LINENO_M: binary path must be relative and stay inside the archive: $2" ;;
            esac
            case $3 in *[!0-9a-fA-F]*) fatal "manifest.txt line $LINENO_M: not a sha256 digest: $3" ;; esac
            [ ${#3} -eq 64 ] || fatal "manifest.txt line $LINENO_M: not a sha256 digest: $3"
            NBIN=$((NBIN + 1))
            eval "BIN_$NBIN=\$2 SHA_$NBIN=\$3"
            printf '%s %s\n' "$NBIN" "$2" >>"$WORK/binaries" ;;
        *)
            fatal "manifest.txt line $LINENO_M: unknown entry '$1'" ;;
    esac
done <"$MANIFEST"
set +f
[ "$LINENO_M" -ge 1 ] || fatal "manifest.txt in $ARCHIVE is empty"
[ -n "$PLATFORM" ] || fatal "manifest.txt in $ARCHIVE has no 'platform' line"
[ -n "$TARGET" ] || fatal "manifest.txt in $ARCHIVE has no 'target' line"

# Sets ARCH to the canonical name of architecture $1.
canon_arch() {
    case $1 in
        aarch64 | arm64 | aarch64_be) ARCH=aarch64 ;;
        x86_64 | amd64 | x86-64 | x64) ARCH=x86_64 ;;
        *) ARCH=$1 ;;
    esac
}
canon_arch "${TARGET%%-*}"
TARGET_ARCH=$ARCH
canon_arch "${PLATFORM#*_}"
[ "$ARCH" = "$TARGET_ARCH" ] ||
    fatal "manifest.txt in $ARCHIVE is inconsistent: platform $PLATFORM but target $TARGET"
MACHINE=$(uname -m)
canon_arch "$MACHINE"
EMULATOR=
if [ "$ARCH" != "$TARGET_ARCH" ]; then
    # Only where the plugin allows it (a shard whose remote environment fell back to this
    # machine) and qemu-user is installed: run the binaries emulated, and say so.
    if [ "${CROSSBUILD_ALLOW_EMULATION:-}" = 1 ] && EMULATOR=$(command -v "qemu-$TARGET_ARCH-static" || command -v "qemu-$TARGET_ARCH"); then
        printf 'note: running %s binaries under %s on this %s machine (remote execution is off)\n' "$TARGET_ARCH" "$EMULATOR" "$ARCH"
    else
        EMULATOR=
        fatal "this archive was built for $TARGET_ARCH (platform $PLATFORM, target $TARGET) but this shard runs on $ARCH"
    fi
fi

i=1
while [ "$i" -le "$NBIN" ]; do
    eval "p=\$BIN_$i want=\$SHA_$i"
    [ -f "$ROOT/$p" ] || fatal "archive contents do not match its manifest: $p is listed but not in $ARCHIVE"
    got=$(sha256sum "$ROOT/$p" 2>/dev/null) || fatal "cannot compute the sha256 of $p"
    got=${got%% *}
    want=$(printf '%s' "$want" | tr 'A-F' 'a-f')
    [ "$got" = "$want" ] ||
        fatal "archive contents do not match its manifest: $p has sha256 $got but the manifest says $want"
    i=$((i + 1))
done

command -v timeout >/dev/null 2>&1 || fatal "no timeout command on PATH ($PATH)"
# GNU timeout and busybox >= 1.33 take -k (SIGKILL after a grace period).
if timeout --help 2>&1 | grep -q -e '-k'; then TIMEOUT_HAS_K=1; else TIMEOUT_HAS_K=0; fi

# --- running ----------------------------------------------------------------------------------

# Replaces the (sub)shell with `timeout ... "$@"`.
run_timed_exec() {
    if [ "$TIMEOUT_HAS_K" = 1 ]; then
        exec timeout -k "$KILL_AFTER" "$CASE_TIMEOUT" $EMULATOR "$@"
    else
        exec timeout "$CASE_TIMEOUT" $EMULATOR "$@"
    fi
}

# Sets SIGNAME to " (SIGxxx)" for signal number $1 (Linux numbering, same on x86-64 and arm64).
signame() {
    case $1 in
        1) SIGNAME=HUP ;; 2) SIGNAME=INT ;; 3) SIGNAME=QUIT ;; 4) SIGNAME=ILL ;;
        5) SIGNAME=TRAP ;; 6) SIGNAME=ABRT ;; 7) SIGNAME=BUS ;; 8) SIGNAME=FPE ;;
        9) SIGNAME=KILL ;; 10) SIGNAME=USR1 ;; 11) SIGNAME=SEGV ;; 12) SIGNAME=USR2 ;;
        13) SIGNAME=PIPE ;; 14) SIGNAME=ALRM ;; 15) SIGNAME=TERM ;; 16) SIGNAME=STKFLT ;;
        24) SIGNAME=XCPU ;; 25) SIGNAME=XFSZ ;; 26) SIGNAME=VTALRM ;; 27) SIGNAME=PROF ;;
        31) SIGNAME=SYS ;; *) SIGNAME= ;;
    esac
    [ -z "$SIGNAME" ] || SIGNAME=" (SIG$SIGNAME)"
}

# Sets KIND and MSG from exit status $1 and elapsed centiseconds $2.
classify() {
    if [ "$1" -eq 0 ]; then
        KIND=PASS MSG=
    elif [ $(($2 + 1)) -ge $((CASE_TIMEOUT * 100)) ] && { [ "$1" -eq 124 ] || [ "$1" -eq 137 ] || [ "$1" -eq 143 ]; }; then
        KIND=TIMEOUT MSG="timed out after ${CASE_TIMEOUT}s"
    elif [ "$1" -gt 128 ]; then
        signame $(($1 - 128))
        KIND=CRASH MSG="killed by signal $(($1 - 128))$SIGNAME"
    else
        KIND=FAIL MSG="exit status $1"
        case $1 in
            126) MSG="$MSG (the binary could not be executed)" ;;
            127) MSG="$MSG (the binary or its interpreter was not found)" ;;
        esac
    fi
}

# Copies output file $1 to $2 for the XML: its last OUTPUT_LIMIT bytes, without control
# characters (except tab, LF, CR).
prepare_body() {
    BODY_SIZE=$(wc -c <"$1")
    BODY_SIZE=$((BODY_SIZE + 0))
    {
        if [ "$BODY_SIZE" -gt "$OUTPUT_LIMIT" ]; then
            printf '[... %s bytes omitted, the last %s bytes follow ...]\n' $((BODY_SIZE - OUTPUT_LIMIT)) "$OUTPUT_LIMIT"
        fi
        tail -c "$OUTPUT_LIMIT" "$1"
    } | LC_ALL=C tr -d '\000-\010\013\014\016-\037\177' >"$2"
}

# Prints the last lines of output file $1, indented.
show_output() {
    if [ -s "$1" ]; then
        tail -n "$PRINT_LINES" "$1" | LC_ALL=C tr -d '\000-\010\013\014\016-\037\177' | sed 's/^/    | /'
    fi
}

cd "$ROOT" || fatal "cannot enter $ROOT"
: >"$WORK/cases"
: >"$WORK/results"
NERR=0

printf 'shard %s/%s: archive %s, platform %s, target %s, %s partition, %ss per case\n' \
    "$K1" "$TOTAL" "${ARCHIVE##*/}" "$PLATFORM" "$TARGET" "$PARTITION" "$CASE_TIMEOUT"

# While tests run, the shell's stderr is /dev/null: ash and dash print their own notice
# ("Segmentation fault") when a child dies of a signal, from a buffer flushed at some later point,
# so a redirection around the one command does not catch it. Our own messages use fd 9.
exec 2>/dev/null

# 1. list every binary's cases, in manifest order.
RAN_TESTS=1
i=1
while [ "$i" -le "$NBIN" ]; do
    eval "p=\$BIN_$i"
    now_cs
    t0=$NOW
    (exec </dev/null >"$WORK/list.$i" 2>"$WORK/list.$i.err" 9>&-; run_timed_exec "$ROOT/$p" --list)
    st=$?
    now_cs
    el=$((NOW - t0))
    if [ "$st" -eq 0 ]; then
        LC_ALL=C awk -v idx="$i" '{ sub(/\r$/, "") } $0 != "" { print idx " " $0 }' "$WORK/list.$i" >>"$WORK/cases" 2>&9 ||
            fatal "cannot collect the cases of $p (awk)"
    else
        classify "$st" "$el"
        case $KIND in
            TIMEOUT) MSG="--list $MSG" ;;
            CRASH) MSG="--list was $MSG" ;;
            *) MSG="--list failed with exit status $st" ;;
        esac
        NERR=$((NERR + 1))
        cat "$WORK/list.$i.err" "$WORK/list.$i" >"$WORK/list.$i.all"
        fmt_secs "$el"
        printf 'ERROR %s --list (%ss): %s\n' "$p" "$SECS" "$MSG"
        show_output "$WORK/list.$i.all"
        prepare_body "$WORK/list.$i.all" "$WORK/list.$i.body"
        printf 'C ERROR %s %s %s\nN--list\nM%s\n' "$i" "$el" "$WORK/list.$i.body" "$MSG" >>"$WORK/results"
    fi
    i=$((i + 1))
done

# 2. select this shard's cases.
LC_ALL=C awk -v mode="$PARTITION" -v n="$TOTAL" -v k="$SHARD" "$SELECT_AWK" \
    pass=1 "$WORK/binaries" pass=2 "$WORK/cases" >"$WORK/selected" 2>&9 ||
    fatal "selecting this shard's cases failed (awk)"
ALL_CASES=$(wc -l <"$WORK/cases")
ALL_CASES=$((ALL_CASES + 0))
SELECTED=$(wc -l <"$WORK/selected")
SELECTED=$((SELECTED + 0))
printf 'shard %s/%s: %s of %s cases from %s binaries\n' "$K1" "$TOTAL" "$SELECTED" "$ALL_CASES" "$NBIN"
[ "$SELECTED" -gt 0 ] || printf 'shard %s/%s: no tests (all %s cases belong to other shards)\n' "$K1" "$TOTAL" "$ALL_CASES"

# 3. run them, each in its own process.
NPASS=0 NFAIL=0 NTIMEOUT=0 NCRASH=0 n=0
while IFS= read -r line; do
    idx=${line%% *}
    name=${line#* }
    eval "p=\$BIN_$idx"
    n=$((n + 1))
    out=$WORK/out/current  # reused: only non-passing cases keep a copy (the XML body)
    now_cs
    t0=$NOW
    (exec </dev/null >"$out" 2>&1 9>&-; run_timed_exec "$ROOT/$p" --exact "$name")
    st=$?
    now_cs
    el=$((NOW - t0))
    classify "$st" "$el"
    fmt_secs "$el"
    body=-
    case $KIND in
        PASS) NPASS=$((NPASS + 1)) ;;
        FAIL) NFAIL=$((NFAIL + 1)) ;;
        TIMEOUT) NTIMEOUT=$((NTIMEOUT + 1)) ;;
        CRASH) NCRASH=$((NCRASH + 1)) ;;
    esac
    if [ "$KIND" = PASS ]; then
        printf 'PASS %s::%s (%ss)\n' "$p" "$name" "$SECS"
    else
        printf '%s %s::%s (%ss): %s\n' "$KIND" "$p" "$name" "$SECS" "$MSG"
        show_output "$out"
        body=$WORK/out/$n.body
        prepare_body "$out" "$body"
    fi
    printf 'C %s %s %s %s\nN%s\nM%s\n' "$KIND" "$idx" "$el" "$body" "$name" "$MSG" >>"$WORK/results"
done <"$WORK/selected"

exec 2>&9
now_cs
NBAD=$((NFAIL + NTIMEOUT + NCRASH))
printf 'shard %s/%s: %s passed, %s failed, %s timed out, %s crashed, %s errors of %s cases\n' \
    "$K1" "$TOTAL" "$NPASS" "$NFAIL" "$NTIMEOUT" "$NCRASH" "$NERR" "$SELECTED"
write_junit $((SELECTED + NERR)) "$NBAD" "$NERR" $((NOW - START_CS)) "$WORK/results" || exit 3
[ $((NBAD + NERR)) -eq 0 ] || exit 1
exit 0
