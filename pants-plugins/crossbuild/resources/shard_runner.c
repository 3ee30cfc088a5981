/*
 * shard_runner.c - runs one test binary's share of a crossbuild test shard and writes JUnit XML.
 *
 * The crossbuild plugin cross-builds this file with its own zig for the platform the shard runs
 * on (a static binary: it needs nothing from the userland, not even a shell), and runs it once
 * per (shard, test binary), so each binary's results are cached on their own: editing one test
 * source re-runs only that binary's cases.
 *
 * Usage:
 *   shard_runner [--exec-per-case] [--framework=NAME] BINARY SHARD_INDEX TOTAL_SHARDS PARTITION
 *                CASE_TIMEOUT JUNIT_XML
 *   shard_runner @FLAGFILE
 *   shard_runner --persistent_worker
 *
 *   BINARY         the test binary, a path relative to the working directory (the sandbox), as
 *                  the archive's manifest names it (`bin/foo_test`); it is the JUnit classname.
 *   SHARD_INDEX    0-based, below TOTAL_SHARDS. Output says "shard K/N" with K 1-based. The test
 *                  processes get Bazel's TEST_SHARD_INDEX and TEST_TOTAL_SHARDS from these two
 *                  arguments (whatever the runner's own environment says), and the rest of the
 *                  runner's environment.
 *   PARTITION      which of the binary's cases belong to this shard:
 *                    hash   (POSIX cksum CRC-32 of "BINARY::CASE") mod TOTAL_SHARDS: a case keeps
 *                           its shard when other cases, or other binaries, come and go.
 *                    count  the binary's i-th case (0-based, --list order) runs on shard i mod N.
 *                    slice  the binary's cases cut into N consecutive blocks; shard k runs indexes
 *                           [floor(k*M/N), floor((k+1)*M/N)) of its M cases.
 *                  count and slice work within one binary: every binary's first case is on shard 1.
 *   CASE_TIMEOUT   whole seconds >= 1, for `--list` and for each case.
 *   JUNIT_XML      written atomically (a temporary file renamed into place) on exit 0 and 1, and
 *                  on exit 3 when the problem allows it; never half written.
 *   --exec-per-case  never try --run (below): one `--exact` process per case. Options come before
 *                  BINARY; `--` ends them. CROSSBUILD_EXEC_PER_CASE=1 in the environment does the
 *                  same (older plugins set it).
 *   --framework=NAME  how BINARY lists and runs its cases: crossbuild (the default: the protocol
 *                  below), gtest, catch2 or doctest (see "Other frameworks"). Another NAME is a
 *                  usage error. In a flagfile it is a line of its own before BINARY.
 *
 *   The positional form writes its report to stdout and its diagnostics to stderr.
 *
 *   @FLAGFILE (the form the plugin uses): the same arguments, options included, one per line of
 *   FLAGFILE (a path relative to the working directory; "\n" or "\r\n" ends a line). As in
 *   Bazel, a line starting with "@@" stands for itself with one "@" fewer; a line starting with
 *   one "@" (another flagfile) is a usage error. This form writes everything, report and
 *   diagnostics, to stderr, in the order it happened: a persistent worker's response carries
 *   exactly those bytes, and its executor hands them back as the action's stderr.
 *
 *   --persistent_worker: a Bazel persistent worker (singleplex, protobuf framing), so that an
 *   emulated executor pays the emulator's start-up once for many actions. Requests come on
 *   stdin, responses go to stdout (nothing else does); each message is its length as a base-128
 *   varint, then the message (at most 16 MiB). The fields used:
 *     WorkRequest   arguments=1 (repeated string: the flagfile's lines), inputs=2 (ignored),
 *                   request_id=3 (int32), cancel=4 (bool), verbosity=5 (ignored),
 *                   sandbox_dir=6 (string, relative to the worker's working directory)
 *     WorkResponse  exit_code=1 (int32), output=2 (string), request_id=3 (int32, echoed)
 *   Other fields are skipped by their wire type (varint, 64-bit, length-delimited, 32-bit).
 *   Each request runs in a child process: in sandbox_dir if it is set, stdin /dev/null, stdout
 *   and stderr into one temporary file, the same code as `@FLAGFILE` with the request's
 *   arguments (nothing is kept from one request to the next: every file is read afresh). The
 *   response holds the child's exit status (128 + N if signal N killed it) and that file (past
 *   16 MiB less 4 KiB: its end, after a note of what was left out), so its
 *   output and the JUnit XML are what `shard_runner @FLAGFILE` gives for the same inputs. A
 *   request with cancel set gets no response (a singleplex worker has answered every request it
 *   has read). End of stdin: exit 0. A malformed frame or message: a message on stderr, exit 1.
 *
 * Protocol with the test binary (see crossbuild_test.h):
 *   BIN --list                    case names, one per line (blank lines, a trailing CR ignored).
 *   BIN --run TIMEOUT OUTDIR      tried first: the binary forks once per case (a case costs a
 *                                 fork, not an exec: under qemu-user, not a new emulator). It must
 *                                 answer "crossbuild-run 1" on its first line; otherwise the runner
 *                                 falls back to
 *   BIN --exact NAME              one process per case, run here with the case timeout (SIGTERM,
 *                                 SIGKILL 2 s later, to the case's whole process group).
 *   Working directory: the runner's. stdin: /dev/null. stdout and stderr of a case are captured
 *   together; the XML keeps the last 64 KiB, the console the last 50 lines.
 *   If a --run binary stops answering for CASE_TIMEOUT + 10 s, or dies, the runner kills it,
 *   reports the case it was on, and starts --run again with the cases left.
 *
 * Other frameworks (--framework=gtest|catch2|doctest): the binary as its framework built it, one
 * process per case (never --run), with the case timeout, process group kill, output capture and
 * limits above. Partitions, the shard variables, the report and the XML are the same; a case
 * that is listed but never run (disabled, hidden, skip-decorated) is SKIP, `<skipped/>` in the
 * XML, and counts as passed for the exit status; so does a case that skipped itself (GTEST_SKIP).
 * Each case runs with a filter that selects exactly it, and the framework's XML report
 * (report.xml in the temporary folder) is read for what failed and where: the JUnit message is
 * "FILE:LINE: ..." per failure (the classification's text when the report has none). A report
 * that does not show exactly that case run turns an exit 0 into FAIL (a filter that selects
 * nothing passes in all three). When the filter for a case would also select another listed
 * case, that one is excluded by its own filter; when that would exclude the case too (two cases
 * with the same name, or names only wildcards or case tell apart), the case is an ERROR of type
 * "filter", not run.
 *   gtest    BIN --gtest_list_tests: "Suite." lines (typed: "Prefix/Suite/0.  # TypeParam = int")
 *            followed by "  Case" lines ("  Case/1  # GetParam() = 5"); the comments are dropped,
 *            the case is "Suite.Case"; gtest_main's "Running main() from" line and other lines
 *            before the first suite are ignored, anything else is an error. A suite or case
 *            named DISABLED_..., or .../DISABLED_...: SKIP. Run: BIN --gtest_filter=PATTERN
 *            --gtest_color=no --gtest_output=xml:REPORT; the filter has no escapes, so `*`,
 *            `?`, `:` and `-` in a name are written `?`, and other cases that pattern matches
 *            follow as negative patterns ("PATTERN-OTHER:OTHER"). GTEST_SHARD_INDEX,
 *            GTEST_TOTAL_SHARDS, GTEST_SHARD_STATUS_FILE and GTEST_ALSO_RUN_DISABLED_TESTS are
 *            removed from the environment.
 *            Death tests work: they fork, or re-execute the binary, in the case's process group.
 *   catch2   (v2) BIN --list-test-names-only, and BIN --list-test-names-only "[.]" for the hidden
 *            cases (SKIP); a name Catch2 printed quoted ("#name") is unquoted; the exit status
 *            must be the number of names (Catch2 v2's, at most 255), else it is not Catch2. Run:
 *            BIN SPEC --reporter=xml --out=REPORT, SPEC the name in double quotes with `\`, `"`
 *            and `,` escaped by a backslash, then ` ~"OTHER"` for each other case it matches
 *            (Catch2 v2 compares names trimmed and case-insensitively, `*` a wildcard at either
 *            end, even escaped).
 *   doctest  (2.4) BIN --dt-list-test-cases --dt-reporters=xml --dt-no-skip --dt-no-version: the
 *            TestCase elements of its XML; skipped="true" (doctest::skip): SKIP. Run:
 *            BIN --dt-test-case=NAME [--dt-test-case-exclude=OTHER,...] --dt-case-sensitive
 *            --dt-reporters=xml --dt-out=REPORT --dt-no-version, with `\` and `,` escaped by a
 *            backslash (`*` and `?` have no escape: they match themselves, and others are
 *            excluded). The `--dt-` forms work whether or not unprefixed options are enabled.
 *   A listing that fails, times out, or prints what its framework would not is one ERROR
 *   testcase named after the listing option (e.g. "--gtest_list_tests") whose message names the
 *   binary and the framework ("bin/foo_test does not look like a GoogleTest binary ...").
 *
 * Classification: PASS exit 0; FAIL other exit status (4: the case called exit() early); CRASH
 * killed by a signal; TIMEOUT killed for running past CASE_TIMEOUT. A failing --list is one
 * ERROR testcase named "--list" for the binary. SKIP: see "Other frameworks".
 *
 * Architecture: an ELF binary for another machine than this runner's is refused (exit 3), unless
 * CROSSBUILD_ALLOW_EMULATION=1 and qemu-ARCH-static (or qemu-ARCH) is on PATH: then it runs under
 * qemu-user, and the runner says so. The plugin allows that only where a shard's environment fell
 * back to the local machine.
 *
 * Exit status: 0 every selected case passed (also when there were none), 1 something failed,
 * 2 usage error (no XML), 3 the binary could not be run at all or the XML could not be written.
 * Killed by a signal: no XML is written (the temporary file is left in the sandbox only).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_LIMIT 65536
#define PRINT_LINES 50
#define NAME_MAX_LEN 4000
#define RUN_GRACE_SECONDS 10

#if defined(__aarch64__)
#define HOST_ARCH "aarch64"
#elif defined(__x86_64__)
#define HOST_ARCH "x86_64"
#else
#define HOST_ARCH "unknown"
#endif

enum kind { PASS, FAIL, CRASH, TIMEOUT, ERROR, SKIP };
static const char *KIND_NAMES[] = {"PASS", "FAIL", "CRASH", "TIMEOUT", "ERROR", "SKIP"};

struct test_case {
    char *name;
    enum kind kind;
    long long micros;
    char *message;    /* NULL when passed */
    char *output;     /* last OUTPUT_LIMIT bytes (with a note if cut), NULL if none kept */
    const char *skip; /* listed but never run (a disabled or hidden case): why, else NULL */
    const char *error_type; /* the JUnit type of an ERROR; NULL: "list" */
};

/* --framework=NAME: how the binary is asked for its cases and run. */
enum framework { FW_CROSSBUILD, FW_GTEST, FW_CATCH2, FW_DOCTEST };
static const char *FW_NAMES[] = {"crossbuild", "gtest", "catch2", "doctest"};
static const char *FW_TITLES[] = {"crossbuild_test.h", "GoogleTest", "Catch2", "doctest"};
static const char *FW_LIST_ARGS[] = {"--list", "--gtest_list_tests", "--list-test-names-only",
                                     "--dt-list-test-cases"};
static enum framework framework;

static const char *binary, *partition, *junit_path;
static unsigned long shard, total, case_timeout;
static int exec_per_case; /* --exec-per-case, or CROSSBUILD_EXEC_PER_CASE=1 */
static char work_dir[4096];
static const char *emulator; /* qemu path, or NULL */
static struct test_case *cases;
static size_t ncases, ncap;
static size_t nlisted; /* every listed case; cases[ncases..nlisted) are other shards' (names kept) */

/* ---- small utilities --------------------------------------------------------------------- */

static void die_usage(const char *fmt, ...) {
    va_list ap;
    fputs("shard_runner: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: shard_runner [--exec-per-case] [--framework=crossbuild|gtest|catch2|doctest] BINARY\n"
          "                    SHARD_INDEX TOTAL_SHARDS hash|count|slice CASE_TIMEOUT JUNIT_XML\n"
          "       shard_runner @FLAGFILE        (the same arguments, one per line)\n"
          "       shard_runner --persistent_worker\n",
          stderr);
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("shard_runner: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static char *xprintf(const char *fmt, ...) {
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int parse_ulong(const char *s, unsigned long *out) {
    char *end = NULL;
    if (*s < '0' || *s > '9' || strlen(s) > 9) return 0;
    *out = strtoul(s, &end, 10);
    return *end == 0;
}

static long long now_micros(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* Whole file, or NULL. *len gets its size. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t cap = 65536, n = 0, r;
    if (f == NULL) return NULL;
    buf = xmalloc(cap);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *bigger = xmalloc(cap * 2);
            memcpy(bigger, buf, n);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    buf[n] = 0; /* n < cap always */
    *len = n;
    return buf;
}

/* The last OUTPUT_LIMIT bytes of a file, with a note when bytes were left out; NULL if empty. */
static char *output_tail(const char *path) {
    struct stat st;
    FILE *f;
    char *buf, *note;
    size_t n, skip;
    if (stat(path, &st) != 0 || st.st_size == 0) return NULL;
    f = fopen(path, "rb");
    if (f == NULL) return NULL;
    skip = (size_t)st.st_size > OUTPUT_LIMIT ? (size_t)st.st_size - OUTPUT_LIMIT : 0;
    if (skip) fseek(f, (long)skip, SEEK_SET);
    buf = xmalloc(OUTPUT_LIMIT + 1);
    n = fread(buf, 1, OUTPUT_LIMIT, f);
    buf[n] = 0;
    fclose(f);
    if (!skip) return buf;
    note = xprintf("[... %lu bytes omitted, the last %d bytes follow ...]\n%s", (unsigned long)skip,
                   OUTPUT_LIMIT, buf);
    free(buf);
    return note;
}

static void rm_tree_files(const char *dir); /* below */

/* ---- cksum (POSIX CRC-32 of the bytes, then of the length) ------------------------------------ */

static uint32_t crc_table[256];

static void crc_init(void) {
    uint32_t i, j, c;
    for (i = 0; i < 256; i++) {
        c = i << 24;
        for (j = 0; j < 8; j++) c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
        crc_table[i] = c;
    }
}

static uint32_t cksum(const char *s, size_t n) {
    uint32_t c = 0;
    size_t i, len;
    for (i = 0; i < n; i++) c = (c << 8) ^ crc_table[((c >> 24) ^ (unsigned char)s[i]) & 0xff];
    for (len = n; len > 0; len >>= 8) c = (c << 8) ^ crc_table[((c >> 24) ^ (len & 0xff)) & 0xff];
    return ~c;
}

/* ---- processes --------------------------------------------------------------------------- */

static volatile sig_atomic_t alarm_fired, stop_signal;

static void on_alarm(int sig) {
    (void)sig;
    alarm_fired = 1;
}

static void on_stop(int sig) {
    stop_signal = sig;
}

/* Starts [emulator] BINARY ARGS... in its own process group, stdin from `in` (or /dev/null),
 * stdout to `out_fd`, stderr to `err_fd`. */
static pid_t spawn(char *const *args, const char *in, int out_fd, int err_fd) {
    char *argv[16];
    size_t a = 0, i;
    pid_t pid;
    if (emulator) argv[a++] = (char *)emulator;
    argv[a++] = (char *)binary;
    for (i = 0; args[i] != NULL && a < 15; i++) argv[a++] = args[i];
    argv[a] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "shard_runner: fork failed: %s\n", strerror(errno));
        exit(3);
    }
    if (pid == 0) {
        int fd = open(in ? in : "/dev/null", O_RDONLY);
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        if (fd >= 0) dup2(fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "shard_runner: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    setpgid(pid, pid);
    return pid;
}

/* Waits for pid with the case timeout: SIGTERM to its group at the deadline, SIGKILL 2 s later. */
static int wait_timed(pid_t pid, int *timed_out) {
    int status = 0, stage = 0;
    *timed_out = 0;
    alarm_fired = 0;
    alarm((unsigned)case_timeout);
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (alarm_fired) {
            alarm_fired = 0;
            *timed_out = 1;
            kill(-pid, stage ? SIGKILL : SIGTERM);
            stage = 1;
            alarm(2);
        }
    }
    alarm(0);
    kill(-pid, SIGKILL); /* anything the test left running in its group */
    return status;
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGSYS: return "SIGSYS";
    default: return "?";
    }
}

/* Sets kind and message of c from how it ended. */
static void classify(struct test_case *c, int exited, int value, int timed_out) {
    if (timed_out) {
        c->kind = TIMEOUT;
        c->message = xprintf("timed out after %lus", case_timeout);
    } else if (!exited) {
        c->kind = CRASH;
        c->message = xprintf("killed by signal %d (%s)", value, signal_name(value));
    } else if (value == 0) {
        c->kind = PASS;
    } else {
        c->kind = FAIL;
        c->message = xprintf("exit status %d%s", value,
                             value == 4   ? " (the case called exit() before it finished)"
                             : value == 126 ? " (the binary could not be executed)"
                             : value == 127 ? " (the binary or its interpreter was not found)"
                                            : "");
    }
}

/* ---- listing and selecting ----------------------------------------------------------------- */

static struct test_case *add_case(const char *name) {
    if (ncases == ncap) {
        struct test_case *bigger;
        ncap = ncap ? ncap * 2 : 64;
        bigger = xmalloc(ncap * sizeof *bigger);
        if (ncases) memcpy(bigger, cases, ncases * sizeof *cases);
        free(cases);
        cases = bigger;
    }
    memset(&cases[ncases], 0, sizeof *cases);
    cases[ncases].name = xstrdup(name);
    return &cases[ncases++];
}

/* ---- other frameworks: names, filters, reports ------------------------------------------- */

/* Glob match as GoogleTest's --gtest_filter and doctest's --test-case do it: `*` any run of
 * characters, `?` any one character, everything else itself (case-sensitive). */
static int glob_match(const char *p, const char *s) {
    const char *star = NULL, *back = NULL;
    while (*s) {
        if (*p == '*') {
            star = ++p;
            back = s;
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star;
            s = ++back;
        } else {
            return 0;
        }
    }
    while (*p == '*') p++;
    return *p == 0;
}

/* A GoogleTest name as a --gtest_filter pattern: the filter has no escapes, so the characters it
 * reads as syntax (`*`, `?`, `:` between patterns, `-` before the negative patterns) become `?`,
 * which matches them too. */
static char *gtest_pattern(const char *name) {
    char *p = xstrdup(name), *q;
    for (q = p; *q; q++)
        if (*q == '*' || *q == '?' || *q == ':' || *q == '-') *q = '?';
    return p;
}

/* GoogleTest's kDisableTestFilter: a suite or test name that starts with DISABLED_, or has a
 * part after a `/` that does (a typed or parameterised suite's instance). */
static int gtest_disabled(const char *suite, const char *test) {
    return glob_match("DISABLED_*", suite) || glob_match("*/DISABLED_*", suite) ||
           glob_match("DISABLED_*", test) || glob_match("*/DISABLED_*", test);
}

/* Catch2 v2 matches a test spec's name against a case name after trimming both (" \t\n\r") and
 * lowering their case, with `*` a wildcard only as the first or the last character. */
static int catch_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void catch_trim(const char *s, const char **from, size_t *len) {
    size_t n = strlen(s);
    while (n > 0 && catch_space(*s)) s++, n--;
    while (n > 0 && catch_space(s[n - 1])) n--;
    *from = s;
    *len = n;
}

static int catch_lower_eq(const char *a, const char *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return 1;
}

static int catch_matches(const char *pattern, const char *name) {
    const char *p, *s;
    size_t pl, sl, i;
    int at_start = 0, at_end = 0;
    catch_trim(pattern, &p, &pl);
    catch_trim(name, &s, &sl);
    if (pl > 0 && p[0] == '*') p++, pl--, at_start = 1;
    if (pl > 0 && p[pl - 1] == '*') pl--, at_end = 1;
    if (at_start && at_end) {
        for (i = 0; i + pl <= sl; i++)
            if (catch_lower_eq(s + i, p, pl)) return 1;
        return 0;
    }
    if (at_start) return sl >= pl && catch_lower_eq(s + sl - pl, p, pl);
    if (at_end) return sl >= pl && catch_lower_eq(s, p, pl);
    return sl == pl && catch_lower_eq(s, p, pl);
}

/* Does the filter the framework is given for case name `a` select case name `b` too? */
static int filter_selects(const char *a, const char *b) {
    int r;
    char *p;
    switch (framework) {
    case FW_GTEST:
        if (strpbrk(a, "*?:-") == NULL) return strcmp(a, b) == 0;
        p = gtest_pattern(a);
        r = glob_match(p, b);
        free(p);
        return r;
    case FW_DOCTEST:
        if (strpbrk(a, "*?") == NULL) return strcmp(a, b) == 0;
        return glob_match(a, b);
    case FW_CATCH2:
        return catch_matches(a, b);
    default:
        return strcmp(a, b) == 0;
    }
}

/* Appends s to a growing string (*buf, *len), with `quote` characters backslash-escaped. */
static void append_escaped(char **buf, size_t *len, const char *s, const char *quote) {
    size_t n = strlen(s), i;
    char *bigger = xmalloc(*len + 2 * n + 1);
    if (*len) memcpy(bigger, *buf, *len);
    free(*buf);
    *buf = bigger;
    for (i = 0; i < n; i++) {
        if (strchr(quote, s[i]) != NULL) (*buf)[(*len)++] = '\\';
        (*buf)[(*len)++] = s[i];
    }
    (*buf)[*len] = 0;
}

/* The arguments that run exactly case c and nothing else (report written to `report`), into
 * argv (room for 8, NULL-terminated, each allocated). Returns NULL, or why it cannot be done:
 * when a filter that selects c also selects another listed case that would run, that case is
 * excluded by name, unless excluding it would exclude c too. */
static char *framework_args(const struct test_case *c, const char *report, char **argv) {
    char *select = NULL, *exclude = NULL;
    size_t slen = 0, elen = 0, i, n = 0;
    for (i = 0; i < nlisted; i++) {
        const struct test_case *o = &cases[i];
        if (o == c || (o->skip && framework != FW_CATCH2)) continue; /* those never run */
        if (!filter_selects(c->name, o->name)) continue;
        if (filter_selects(o->name, c->name)) {
            free(exclude);
            return strcmp(o->name, c->name) == 0
                       ? xprintf("%s lists two cases named '%s': they cannot be run apart",
                                 binary, c->name)
                       : xprintf("%s's filter cannot select '%s' alone: it also selects '%s', and "
                                 "a filter that excludes that case excludes this one too%s",
                                 FW_TITLES[framework], c->name, o->name,
                                 framework == FW_CATCH2 ? " (Catch2 compares names case-"
                                                          "insensitively; '*' is a wildcard at "
                                                          "either end)"
                                 : framework == FW_GTEST ? " (--gtest_filter has no escapes: '*', "
                                                           "'?', ':' and '-' in a name match any "
                                                           "character)"
                                                         : " (doctest filters have no escape for "
                                                           "'*' and '?')");
        }
        switch (framework) {
        case FW_GTEST: {
            char *p = gtest_pattern(o->name);
            if (exclude) append_escaped(&exclude, &elen, ":", "");
            append_escaped(&exclude, &elen, p, "");
            free(p);
            break;
        }
        case FW_CATCH2:
            append_escaped(&exclude, &elen, " ~\"", "");
            append_escaped(&exclude, &elen, o->name, "\\\",");
            append_escaped(&exclude, &elen, "\"", "");
            break;
        default:
            if (exclude) append_escaped(&exclude, &elen, ",", "");
            append_escaped(&exclude, &elen, o->name, "\\,");
        }
    }
    switch (framework) {
    case FW_GTEST: {
        char *p = gtest_pattern(c->name);
        argv[n++] = exclude ? xprintf("--gtest_filter=%s-%s", p, exclude)
                            : xprintf("--gtest_filter=%s", p);
        free(p);
        argv[n++] = xstrdup("--gtest_color=no");
        argv[n++] = xprintf("--gtest_output=xml:%s", report);
        break;
    }
    case FW_CATCH2:
        /* A quoted name: inside quotes only `"` ends it; `\` escapes `\`, `"` and `,` (which
         * would end the filter even in quotes). Excluded names follow as ` ~"NAME"`. */
        append_escaped(&select, &slen, "\"", "");
        append_escaped(&select, &slen, c->name, "\\\",");
        append_escaped(&select, &slen, "\"", "");
        if (exclude) append_escaped(&select, &slen, exclude, "");
        argv[n++] = select;
        argv[n++] = xstrdup("--reporter=xml");
        argv[n++] = xprintf("--out=%s", report);
        break;
    default:
        /* doctest: `,` separates patterns unless escaped as `\,`; `\\` is a backslash. */
        append_escaped(&select, &slen, c->name, "\\,");
        argv[n++] = xprintf("--dt-test-case=%s", select);
        free(select);
        if (exclude) argv[n++] = xprintf("--dt-test-case-exclude=%s", exclude);
        argv[n++] = xstrdup("--dt-case-sensitive");
        argv[n++] = xstrdup("--dt-reporters=xml");
        argv[n++] = xprintf("--dt-out=%s", report);
        argv[n++] = xstrdup("--dt-no-version");
    }
    argv[n] = NULL;
    free(exclude);
    return NULL;
}

/* ---- a small XML reader for the frameworks' reports ---------------------------------------- */

#define XML_MAX_ATTRS 24

struct xml_handler {
    void (*start)(void *ctx, const char *tag, char **attrs, size_t nattrs); /* name, value, ... */
    void (*end)(void *ctx, const char *tag);
    void (*text)(void *ctx, const char *text, size_t len);
    void *ctx;
};

static const char *xml_attr(char **attrs, size_t nattrs, const char *name) {
    size_t i;
    for (i = 0; i + 1 < nattrs; i += 2)
        if (strcmp(attrs[i], name) == 0) return attrs[i + 1];
    return NULL;
}

static char *find_text(char *p, char *end, const char *what) {
    size_t n = strlen(what);
    for (; p + n <= end; p++)
        if (memcmp(p, what, n) == 0) return p;
    return NULL;
}

/* Decodes entities and character references in [s, end) in place (the result is never longer);
 * returns its new end. Unknown ones are kept as they are. */
static char *xml_decode(char *s, char *end) {
    char *out = s;
    while (s < end) {
        if (*s == '&') {
            char *semi = memchr(s, ';', (size_t)(end - s) < 12 ? (size_t)(end - s) : 12);
            static const char *const names[] = {"lt;", "gt;", "amp;", "quot;", "apos;"};
            static const char chars[] = "<>&\"'";
            size_t k;
            for (k = 0; semi && k < 5; k++) {
                if ((size_t)(semi - s) == strlen(names[k]) && memcmp(s + 1, names[k], strlen(names[k])) == 0)
                    break;
            }
            if (semi && k < 5) {
                *out++ = chars[k];
                s = semi + 1;
                continue;
            }
            if (semi && semi - s >= 3 && s[1] == '#') {
                char *stop = NULL;
                unsigned long cp = s[2] == 'x' || s[2] == 'X' ? strtoul(s + 3, &stop, 16)
                                                              : strtoul(s + 2, &stop, 10);
                if (stop == semi && cp > 0 && cp <= 0x10FFFF) {
                    if (cp < 0x80) {
                        *out++ = (char)cp;
                    } else if (cp < 0x800) {
                        *out++ = (char)(0xC0 | cp >> 6);
                        *out++ = (char)(0x80 | (cp & 0x3F));
                    } else if (cp < 0x10000) {
                        *out++ = (char)(0xE0 | cp >> 12);
                        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
                        *out++ = (char)(0x80 | (cp & 0x3F));
                    } else {
                        *out++ = (char)(0xF0 | cp >> 18);
                        *out++ = (char)(0x80 | (cp >> 12 & 0x3F));
                        *out++ = (char)(0x80 | (cp >> 6 & 0x3F));
                        *out++ = (char)(0x80 | (cp & 0x3F));
                    }
                    s = semi + 1;
                    continue;
                }
            }
        }
        *out++ = *s++;
    }
    return out;
}

/* Reads the XML in buf[0, len) (modified in place) and calls the handler for each start tag,
 * end tag (also for `<x/>`) and piece of text (entities decoded, CDATA as it is). Tolerant: it
 * stops at the first thing it cannot read, such as the cut end of a report. */
static void xml_scan(char *buf, size_t len, const struct xml_handler *h) {
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *lt = memchr(p, '<', (size_t)(end - p)), *gt, *q, *tag;
        char *attrs[XML_MAX_ATTRS];
        size_t nattrs = 0;
        int closed = 0;
        if (lt == NULL) lt = end;
        if (lt > p) {
            char *e = xml_decode(p, lt);
            h->text(h->ctx, p, (size_t)(e - p));
        }
        if (lt == end) return;
        p = lt;
        if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            char *stop = find_text(p + 9, end, "]]>");
            if (stop == NULL) return;
            h->text(h->ctx, p + 9, (size_t)(stop - p - 9));
            p = stop + 3;
            continue;
        }
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            char *stop = find_text(p + 4, end, "-->");
            if (stop == NULL) return;
            p = stop + 3;
            continue;
        }
        /* the end of the tag: the first `>` outside quotes */
        for (gt = p + 1, q = NULL; gt < end; gt++) {
            if (q) {
                if (*gt == *q) q = NULL;
            } else if (*gt == '"' || *gt == '\'') {
                q = gt;
            } else if (*gt == '>') {
                break;
            }
        }
        if (gt >= end) return;
        *gt = 0;
        if (p[1] == '?' || p[1] == '!') {
            p = gt + 1;
            continue;
        }
        if (p[1] == '/') {
            for (q = p + 2; *q && !strchr(" \t\r\n", *q); q++) {}
            *q = 0;
            h->end(h->ctx, p + 2);
            p = gt + 1;
            continue;
        }
        if (gt > p + 1 && gt[-1] == '/') {
            closed = 1;
            gt[-1] = 0;
        }
        tag = p + 1;
        for (q = tag; *q && !strchr(" \t\r\n", *q); q++) {}
        while (*q) {
            char *name, *value, quote;
            *q++ = 0;
            while (*q && strchr(" \t\r\n", *q)) q++;
            if (!*q) break;
            name = q;
            while (*q && *q != '=' && !strchr(" \t\r\n", *q)) q++;
            if (*q != '=' || (q[1] != '"' && q[1] != '\'')) return; /* not XML we can read */
            *q = 0;
            quote = q[1];
            value = q + 2;
            q = strchr(value, quote);
            if (q == NULL) return;
            *xml_decode(value, q) = 0;
            if (nattrs + 2 <= XML_MAX_ATTRS) {
                attrs[nattrs++] = name;
                attrs[nattrs++] = value;
            }
            q++; /* past the quote, at a space (the loop cuts it) or the end */
            if (*q && !strchr(" \t\r\n", *q)) return;
        }
        h->start(h->ctx, tag, attrs, nattrs);
        if (closed) h->end(h->ctx, tag);
        p = gt + 1;
    }
}

/* ---- reading a framework's report of one case ---------------------------------------------- */

#define FAILURES_LIMIT 8192
#define PIECE_LIMIT 2048

/* Bounded text: what does not fit is dropped (and noted). */
struct piece {
    char text[PIECE_LIMIT];
    size_t len;
};

static void piece_add(struct piece *b, const char *s, size_t n) {
    if (n > sizeof b->text - 1 - b->len) n = sizeof b->text - 1 - b->len;
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = 0;
}

/* b's text without the white space around it */
static char *piece_trimmed(struct piece *b) {
    char *s = b->text;
    size_t n = b->len;
    while (n > 0 && strchr(" \t\r\n", *s)) s++, n--;
    while (n > 0 && strchr(" \t\r\n", s[n - 1])) n--;
    s[n] = 0;
    return s;
}

struct report {
    const char *want; /* the case's name */
    size_t ran;       /* cases the report says ran */
    size_t found;     /* of those, the ones named `want` */
    int depth, case_depth, failure_depth; /* case_depth, failure_depth: 0 when outside */
    int skipped;
    char skip_message[PIECE_LIMIT];
    char failures[FAILURES_LIMIT];
    size_t flen, nfailures, nlost;
    char what[64];            /* the failure being read: an assertion's macro, or a kind */
    char where[PIECE_LIMIT];  /* file:line, or "" */
    struct piece original, expanded, text, *collect;
};

static void add_failure(struct report *r, const char *text) {
    size_t n = strlen(text), room = sizeof r->failures - 1 - r->flen;
    r->nfailures++;
    if (r->flen > 0) n++;
    if (n > room) {
        r->nlost++;
        return;
    }
    if (r->flen > 0) r->failures[r->flen++] = '\n';
    memcpy(r->failures + r->flen, text, strlen(text) + 1);
    r->flen += strlen(text);
}

/* "FILE:LINE\nMESSAGE" (GoogleTest's message attribute) as "FILE:LINE: MESSAGE" */
static char *gtest_message(const char *m) {
    const char *nl = strchr(m, '\n');
    if (nl == NULL) return xstrdup(m);
    return xprintf("%.*s: %s", (int)(nl - m), m, nl + 1);
}

static void report_start(void *ctx, const char *tag, char **attrs, size_t nattrs) {
    struct report *r = ctx;
    const char *v;
    r->depth++;
    if (r->case_depth == 0) {
        if (framework == FW_GTEST && strcmp(tag, "testcase") == 0) {
            const char *suite = xml_attr(attrs, nattrs, "classname"),
                       *name = xml_attr(attrs, nattrs, "name");
            size_t sl;
            v = xml_attr(attrs, nattrs, "status");
            if (v == NULL || strcmp(v, "run") != 0 || suite == NULL || name == NULL) return;
            r->ran++;
            sl = strlen(suite);
            if (strncmp(r->want, suite, sl) == 0 && r->want[sl] == '.' &&
                strcmp(r->want + sl + 1, name) == 0) {
                r->found++;
                r->case_depth = r->depth;
                v = xml_attr(attrs, nattrs, "result");
                if (v && strcmp(v, "skipped") == 0) r->skipped = 1;
            }
        } else if (framework != FW_GTEST && strcmp(tag, "TestCase") == 0) {
            v = xml_attr(attrs, nattrs, "skipped");
            if (framework == FW_DOCTEST && v && strcmp(v, "true") == 0) return;
            r->ran++;
            v = xml_attr(attrs, nattrs, "name");
            if (v && strcmp(v, r->want) == 0) {
                r->found++;
                r->case_depth = r->depth;
            }
        }
        return;
    }
    if (framework == FW_GTEST) {
        v = xml_attr(attrs, nattrs, "message");
        if (strcmp(tag, "failure") == 0) {
            char *m = gtest_message(v ? v : "a failure without a message");
            add_failure(r, m);
            free(m);
        } else if (strcmp(tag, "skipped") == 0) {
            char *m = gtest_message(v ? v : "");
            r->skipped = 1;
            snprintf(r->skip_message, sizeof r->skip_message, "%s", m);
            free(m);
        }
        return;
    }
    if (r->failure_depth != 0) {
        /* inside a failure: the parts of it */
        if (strcmp(tag, "Original") == 0) r->collect = &r->original;
        else if (strcmp(tag, "Expanded") == 0) r->collect = &r->expanded;
        else if (strcmp(tag, "Text") == 0) r->collect = &r->text;
        return;
    }
    {
        const char *file = xml_attr(attrs, nattrs, "filename"), *line = xml_attr(attrs, nattrs, "line");
        const char *what = NULL;
        if (strcmp(tag, "Expression") == 0) {
            v = xml_attr(attrs, nattrs, "success");
            if (v && strcmp(v, "false") == 0) what = xml_attr(attrs, nattrs, "type");
            if (v && strcmp(v, "false") == 0 && what == NULL) what = "an assertion";
        } else if (strcmp(tag, "Exception") == 0) {
            what = "unexpected exception";
        } else if (strcmp(tag, "FatalErrorCondition") == 0) {
            what = "fatal error";
        } else if (strcmp(tag, "Failure") == 0) {
            what = "";
        } else if (strcmp(tag, "Message") == 0) {
            v = xml_attr(attrs, nattrs, "type");
            if (v && strstr(v, "ERROR") != NULL) what = "";
        }
        if (what == NULL) return;
        r->failure_depth = r->depth;
        snprintf(r->what, sizeof r->what, "%s", what);
        if (file && line) snprintf(r->where, sizeof r->where, "%s:%s: ", file, line);
        else r->where[0] = 0;
        r->original.len = r->expanded.len = r->text.len = 0;
        r->original.text[0] = r->expanded.text[0] = r->text.text[0] = 0;
        /* Catch2 writes the text of an Exception, Failure or FatalErrorCondition in the element,
         * doctest a Message's in its Text child, and an Exception's in the element */
        r->collect = strcmp(tag, "Message") == 0 ? NULL : &r->text;
    }
}

static void report_end(void *ctx, const char *tag) {
    struct report *r = ctx;
    (void)tag;
    if (r->failure_depth != 0 && r->depth == r->failure_depth) {
        char *m;
        const char *orig = piece_trimmed(&r->original), *exp = piece_trimmed(&r->expanded),
                   *text = piece_trimmed(&r->text);
        if (*orig) {
            m = strcmp(orig, exp) == 0 || !*exp
                    ? xprintf("%s%s( %s )", r->where, r->what, orig)
                    : xprintf("%s%s( %s ) with expansion: %s", r->where, r->what, orig, exp);
        } else {
            m = xprintf("%s%s%s%s", r->where, r->what, *r->what && *text ? ": " : "", text);
        }
        add_failure(r, m);
        free(m);
        r->failure_depth = 0;
        r->collect = NULL;
    } else if (r->failure_depth != 0) {
        r->collect = NULL; /* the end of Original, Expanded or a Message's Text */
    }
    if (r->case_depth != 0 && r->depth == r->case_depth) r->case_depth = 0;
    r->depth--;
}

static void report_text(void *ctx, const char *text, size_t len) {
    struct report *r = ctx;
    if (r->collect) piece_add(r->collect, text, len);
}

/* ---- listing: each framework's way -------------------------------------------------------- */

/* Calls fn for each line of text (a trailing CR dropped, blank lines skipped), with its number;
 * stops and returns what fn returns when that is not NULL. */
static char *each_line(char *text, size_t len, char *(*fn)(void *ctx, char *line, size_t number),
                       void *ctx) {
    size_t i, start = 0, number = 0;
    for (i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n') continue;
        number++;
        {
            size_t end = i;
            char saved, *problem;
            if (end > start && text[end - 1] == '\r') end--;
            if (end > start) {
                saved = text[end];
                text[end] = 0;
                problem = fn(ctx, text + start, number);
                text[end] = saved;
                if (problem) return problem;
            }
        }
        start = i + 1;
    }
    return NULL;
}

static char *crossbuild_line(void *ctx, char *line, size_t number) {
    (void)ctx;
    (void)number;
    add_case(line);
    return NULL;
}

struct gtest_listing {
    char suite[NAME_MAX_LEN]; /* "" before the first suite line */
    int preamble;             /* lines before it that were neither */
};

/* GoogleTest: "Suite." lines (with "  # TypeParam = ..." comments), then "  Case" lines (with
 * "  # GetParam() = ..." comments); gtest_main's "Running main() from ..." line before them. */
static char *gtest_line(void *ctx, char *line, size_t number) {
    struct gtest_listing *l = ctx;
    char *comment = strstr(line, "  # "), *name;
    size_t n;
    if (strncmp(line, "Running main() from ", 20) == 0 && !l->suite[0]) return NULL;
    if (comment) *comment = 0;
    n = strlen(line);
    while (n > 0 && line[n - 1] == ' ') line[--n] = 0;
    if (n > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ' && l->suite[0]) {
        struct test_case *c;
        name = xprintf("%s.%s", l->suite, line + 2);
        c = add_case(name);
        if (gtest_disabled(l->suite, line + 2))
            c->skip = "disabled (DISABLED_ in its name): GoogleTest runs it only when asked to";
        free(name);
        return NULL;
    }
    if (n > 1 && line[0] != ' ' && line[n - 1] == '.' && n < sizeof l->suite) {
        memcpy(l->suite, line, n - 1);
        l->suite[n - 1] = 0;
        return NULL;
    }
    if (!l->suite[0] && line[0] != ' ') {
        l->preamble++;
        return NULL;
    }
    return xprintf("line %lu of what --gtest_list_tests printed is neither a \"Suite.\" line nor an "
                   "indented case: '%.200s'", (unsigned long)number, line);
}

static char *catch2_line(void *ctx, char *line, size_t number) {
    size_t n = strlen(line);
    struct test_case *c;
    (void)number;
    /* Catch2 quotes names that start with '#' */
    if (n >= 3 && line[0] == '"' && line[1] == '#' && line[n - 1] == '"') {
        line[n - 1] = 0;
        c = add_case(line + 1);
        line[n - 1] = '"';
    } else {
        c = add_case(line);
    }
    if (ctx) c->skip = "hidden (tagged [.]): Catch2 runs it only when asked to";
    return NULL;
}

struct doctest_listing {
    int seen_root;
};

static void doctest_list_start(void *ctx, const char *tag, char **attrs, size_t nattrs) {
    struct doctest_listing *l = ctx;
    const char *name = xml_attr(attrs, nattrs, "name"), *skipped = xml_attr(attrs, nattrs, "skipped");
    if (strcmp(tag, "doctest") == 0) l->seen_root = 1;
    if (!l->seen_root || strcmp(tag, "TestCase") != 0 || name == NULL) return;
    add_case(name)->skip = skipped && strcmp(skipped, "true") == 0
                               ? "skipped (doctest::skip): doctest runs it only when asked to"
                               : NULL;
}

static void xml_ignore_end(void *ctx, const char *tag) {
    (void)ctx;
    (void)tag;
}

static void xml_ignore_text(void *ctx, const char *text, size_t len) {
    (void)ctx;
    (void)text;
    (void)len;
}
/* Runs BIN ARGS for a listing with the case timeout: stdout to out_path, stderr to err_path. */
static int run_listing(char **args, const char *out_path, const char *err_path, int *timed_out) {
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    if (out_fd < 0 || err_fd < 0) {
        fprintf(stderr, "shard_runner: cannot create files in %s: %s\n", work_dir, strerror(errno));
        exit(3);
    }
    pid = spawn(args, NULL, out_fd, err_fd);
    close(out_fd);
    close(err_fd);
    return wait_timed(pid, timed_out);
}

/* What a framework's listing printed, as cases. Returns NULL, or what is wrong with it. */
static char *parse_listing(char *text, size_t len, int status, int hidden) {
    switch (framework) {
    case FW_GTEST: {
        struct gtest_listing l;
        char *problem;
        memset(&l, 0, sizeof l);
        if (WEXITSTATUS(status) != 0) return NULL; /* reported by the caller */
        problem = each_line(text, len, gtest_line, &l);
        if (problem == NULL && l.preamble > 0 && !l.suite[0])
            problem = xstrdup("--gtest_list_tests printed no \"Suite.\" line, only other text");
        return problem;
    }
    case FW_CATCH2: {
        size_t before = ncases, listed;
        each_line(text, len, catch2_line, hidden ? &hidden : NULL);
        listed = ncases - before;
        /* Catch2 v2 exits with the number of names it listed (at most 255) */
        if ((size_t)WEXITSTATUS(status) != (listed < 255 ? listed : 255))
            return xprintf("--list-test-names-only%s printed %lu names but exited with status %d "
                           "(Catch2 exits with the number of names it lists)",
                           hidden ? " [.]" : "", (unsigned long)listed, WEXITSTATUS(status));
        return NULL;
    }
    case FW_DOCTEST: {
        struct doctest_listing l = {0};
        struct xml_handler h = {doctest_list_start, xml_ignore_end, xml_ignore_text, NULL};
        h.ctx = &l;
        if (WEXITSTATUS(status) != 0) return NULL;
        xml_scan(text, len, &h);
        if (!l.seen_root)
            return xstrdup("--dt-list-test-cases --dt-reporters=xml printed no <doctest> report");
        return NULL;
    }
    default:
        if (WEXITSTATUS(status) == 0) each_line(text, len, crossbuild_line, NULL);
        return NULL;
    }
}

/* Lists the binary's cases (--list, or the framework's listing); on success fills `cases` with
 * every case and returns 1. On failure fills `err` (the ERROR testcase) and returns 0. */
static int list_cases(struct test_case *err) {
    char *out_path = xprintf("%s/list.out", work_dir), *err_path = xprintf("%s/list.err", work_dir);
    char *args[5];
    long long t0 = now_micros();
    int status, timed_out, pass;
    char *problem = NULL;
    const char *what = FW_LIST_ARGS[framework];
    args[0] = (char *)what;
    args[1] = NULL;
    if (framework == FW_DOCTEST) {
        args[1] = "--dt-reporters=xml";
        args[2] = "--dt-no-skip"; /* lists doctest::skip() cases too, marked skipped="true" */
        args[3] = "--dt-no-version";
        args[4] = NULL;
    }
    /* Catch2 leaves hidden cases out of its listing: a second one asks for them by their tag */
    for (pass = 0; pass < (framework == FW_CATCH2 ? 2 : 1); pass++) {
        if (pass == 1) {
            args[1] = "[.]";
            args[2] = NULL;
        }
        status = run_listing(args, out_path, err_path, &timed_out);
        if (timed_out || !WIFEXITED(status)) break;
        {
            size_t len = 0;
            char *text = read_file(out_path, &len);
            problem = parse_listing(text ? text : "", text ? len : 0, status, pass);
            free(text);
        }
        if (problem || (WEXITSTATUS(status) != 0 && framework != FW_CATCH2)) break;
    }
    err->micros = now_micros() - t0;
    if (!timed_out && WIFEXITED(status) && problem == NULL &&
        (WEXITSTATUS(status) == 0 || framework == FW_CATCH2)) {
        nlisted = ncases;
        return 1;
    }
    {
        char *both = xprintf("%s/list.all", work_dir);
        char *cmd_out, *cmd_err, *how;
        size_t lo = 0, le = 0;
        FILE *f = fopen(both, "wb");
        cmd_err = read_file(err_path, &le);
        cmd_out = read_file(out_path, &lo);
        if (f) {
            if (cmd_err) fwrite(cmd_err, 1, le, f);
            if (cmd_out) fwrite(cmd_out, 1, lo, f);
            fclose(f);
        }
        free(cmd_out);
        free(cmd_err);
        err->name = xstrdup(what);
        err->kind = ERROR;
        if (timed_out) {
            how = xprintf("%s timed out after %lus", what, case_timeout);
        } else if (WIFSIGNALED(status)) {
            how = xprintf("%s was killed by signal %d (%s)", what, WTERMSIG(status),
                          signal_name(WTERMSIG(status)));
        } else if (problem) {
            how = problem;
        } else {
            how = xprintf("%s failed with exit status %d", what, WEXITSTATUS(status));
        }
        if (framework == FW_CROSSBUILD) {
            err->message = how;
        } else if (timed_out || WIFSIGNALED(status)) {
            err->message = xprintf("%s (%s, --framework=%s)", how, binary, FW_NAMES[framework]);
        } else {
            err->message = xprintf("%s does not look like a %s binary (--framework=%s): %s", binary,
                                   FW_TITLES[framework], FW_NAMES[framework], how);
        }
        err->output = output_tail(both);
        free(both);
    }
    return 0;
}

/* Keeps this shard's cases (moves them to the front, the others behind them, names kept for the
 * frameworks' filters); returns how many. */
static size_t select_cases(void) {
    size_t i, kept = 0, lo = (size_t)(shard * ncases / total), hi = (size_t)((shard + 1) * ncases / total);
    size_t blen = strlen(binary);
    for (i = 0; i < ncases; i++) {
        int keep;
        if (strcmp(partition, "count") == 0) {
            keep = i % total == shard;
        } else if (strcmp(partition, "slice") == 0) {
            keep = i >= lo && i < hi;
        } else {
            size_t nlen = strlen(cases[i].name);
            char *key = xmalloc(blen + nlen + 3);
            memcpy(key, binary, blen);
            memcpy(key + blen, "::", 2);
            memcpy(key + blen + 2, cases[i].name, nlen + 1);
            keep = cksum(key, blen + nlen + 2) % total == shard;
            free(key);
        }
        if (keep) {
            struct test_case tmp = cases[kept];
            cases[kept++] = cases[i];
            cases[i] = tmp;
        }
    }
    ncases = kept;
    return kept;
}

/* ---- running ------------------------------------------------------------------------------- */

/* Old protocol: one `BIN --exact NAME` process per case. */
static void run_exact(struct test_case *c) {
    char *out_path = xprintf("%s/case.out", work_dir);
    char *args[] = {"--exact", c->name, NULL};
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), status, timed_out;
    long long t0 = now_micros();
    pid_t pid;
    if (fd < 0) {
        fprintf(stderr, "shard_runner: cannot create %s: %s\n", out_path, strerror(errno));
        exit(3);
    }
    pid = spawn(args, NULL, fd, fd);
    close(fd);
    status = wait_timed(pid, &timed_out);
    c->micros = now_micros() - t0;
    classify(c, WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
             timed_out);
    if (c->kind != PASS) c->output = output_tail(out_path);
    unlink(out_path);
    free(out_path);
}

/* Reads one line from fd into line (NUL-terminated, without '\n'), waiting at most `seconds`.
 * Returns 1 for a line, 0 at end of file or on error, -1 on timeout. Buffered across calls. */
static char rbuf[8192];
static size_t rlen;

static int read_line(int fd, char *line, size_t cap, int seconds) {
    long long deadline = now_micros() + (long long)seconds * 1000000LL;
    for (;;) {
        char *nl = memchr(rbuf, '\n', rlen);
        struct pollfd p;
        long long left;
        ssize_t r;
        if (nl != NULL) {
            size_t n = (size_t)(nl - rbuf);
            if (n >= cap) n = cap - 1;
            memcpy(line, rbuf, n);
            line[n] = 0;
            rlen -= (size_t)(nl - rbuf) + 1;
            memmove(rbuf, nl + 1, rlen);
            return 1;
        }
        if (rlen == sizeof rbuf) rlen = 0; /* an absurd line: drop it */
        left = deadline - now_micros();
        if (left <= 0) return -1;
        p.fd = fd;
        p.events = POLLIN;
        r = poll(&p, 1, (int)(left / 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) continue;
        r = read(fd, rbuf + rlen, sizeof rbuf - rlen);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        rlen += (size_t)r;
    }
}

/* New protocol: `BIN --run TIMEOUT OUTDIR` over cases [from, ncases). Returns the index of the
 * first case it did not report (== ncases when all were), or (size_t)-1 when the binary does not
 * speak --run (nothing reported). */
static size_t run_forked(size_t from) {
    char *names_path = xprintf("%s/names", work_dir), *out_dir = xprintf("%s/out", work_dir);
    char *err_path = xprintf("%s/run.err", work_dir), *timeout_arg = xprintf("%lu", case_timeout);
    char *args[] = {"--run", timeout_arg, out_dir, NULL};
    char line[256];
    FILE *names = fopen(names_path, "wb");
    int pipe_fds[2], err_fd, status, got;
    size_t i, next = from;
    pid_t pid;
    if (names == NULL || pipe(pipe_fds) != 0) {
        fprintf(stderr, "shard_runner: cannot prepare --run in %s: %s\n", work_dir, strerror(errno));
        exit(3);
    }
    for (i = from; i < ncases; i++) fprintf(names, "%s\n", cases[i].name);
    fclose(names);
    mkdir(out_dir, 0700);
    err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid = spawn(args, names_path, pipe_fds[1], err_fd >= 0 ? err_fd : 2);
    close(pipe_fds[1]);
    if (err_fd >= 0) close(err_fd);
    rlen = 0;
    got = read_line(pipe_fds[0], line, sizeof line, (int)case_timeout + RUN_GRACE_SECONDS);
    if (got != 1 || strcmp(line, "crossbuild-run 1") != 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        close(pipe_fds[0]);
        return (size_t)-1;
    }
    for (;;) {
        unsigned long n;
        char what[16];
        long value;
        long long us;
        got = read_line(pipe_fds[0], line, sizeof line, (int)case_timeout + RUN_GRACE_SECONDS);
        if (got != 1 || strcmp(line, "end") == 0) break;
        if (sscanf(line, "%lu %15s %ld %lld", &n, what, &value, &us) != 4 || n != next - from ||
            next >= ncases)
            break;
        {
            struct test_case *c = &cases[next];
            char *out_path = xprintf("%s/%lu", out_dir, n);
            c->micros = us;
            if (strcmp(what, "missing") == 0) {
                c->kind = FAIL;
                c->message = xstrdup("no such case (listed by --list but unknown to --run)");
            } else {
                classify(c, strcmp(what, "exit") == 0, (int)value, strcmp(what, "timeout") == 0);
            }
            if (c->kind != PASS) c->output = output_tail(out_path);
            unlink(out_path);
            free(out_path);
        }
        next++;
    }
    if (got == -1 || next < ncases) {
        /* Hung or died between cases: the current case takes the blame. */
        kill(-pid, SIGKILL);
    }
    waitpid(pid, &status, 0);
    close(pipe_fds[0]);
    if (next < ncases) {
        struct test_case *c = &cases[next];
        char *out_path = xprintf("%s/%lu", out_dir, (unsigned long)(next - from));
        size_t le = 0;
        char *run_err = read_file(err_path, &le);
        c->micros = 0;
        if (got == -1) {
            c->kind = TIMEOUT;
            c->message = xprintf("the test binary stopped answering for %lus during this case",
                                 case_timeout + RUN_GRACE_SECONDS);
        } else {
            c->kind = CRASH;
            c->message = WIFSIGNALED(status)
                             ? xprintf("the test binary died of signal %d (%s) during this case",
                                       WTERMSIG(status), signal_name(WTERMSIG(status)))
                             : xprintf("the test binary ended (exit status %d) during this case",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        c->output = output_tail(out_path);
        if (c->output == NULL && run_err != NULL && le > 0) c->output = xstrdup(run_err);
        free(run_err);
        free(out_path);
        next++;
    }
    return next;
}

/* A GoogleTest, Catch2 or doctest case: one process, its filter selecting exactly that case, its
 * report (XML) read for what failed and where, and for whether the case ran at all. */
static void run_framework_case(struct test_case *c) {
    char *out_path = xprintf("%s/case.out", work_dir), *report_path = xprintf("%s/report.xml", work_dir);
    char *args[9], *refused;
    int fd, status, timed_out;
    long long t0 = now_micros();
    size_t i;
    pid_t pid;
    if (c->skip) {
        c->kind = SKIP;
        c->message = xstrdup(c->skip);
        return;
    }
    refused = framework_args(c, report_path, args);
    if (refused) {
        c->kind = ERROR;
        c->error_type = "filter";
        c->message = refused;
        return;
    }
    fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fprintf(stderr, "shard_runner: cannot create %s: %s\n", out_path, strerror(errno));
        exit(3);
    }
    unlink(report_path);
    pid = spawn(args, NULL, fd, fd);
    close(fd);
    status = wait_timed(pid, &timed_out);
    c->micros = now_micros() - t0;
    classify(c, WIFEXITED(status), WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
             timed_out);
    if (c->kind == PASS || c->kind == FAIL || c->kind == CRASH) {
        struct report *r = xmalloc(sizeof *r);
        struct xml_handler h = {report_start, report_end, report_text, NULL};
        size_t len = 0;
        char *xml = read_file(report_path, &len);
        int have_report = xml != NULL;
        memset(r, 0, sizeof *r);
        r->want = c->name;
        h.ctx = r;
        if (xml) xml_scan(xml, len, &h);
        free(xml);
        if (c->kind == CRASH) {
            /* Catch2 and doctest report the signal before they die of it */
            if (r->found == 1 && r->nfailures > 0) {
                char *m = xprintf("%s: %s", c->message, r->failures);
                free(c->message);
                c->message = m;
            }
        } else {
            int exit_status = WEXITSTATUS(status), alone = r->found == 1 && r->ran == 1;
            free(c->message);
            c->message = NULL;
            if (alone && r->nfailures > 0) {
                /* what failed and where, as the framework reported it */
                c->kind = FAIL;
                c->message = r->nlost ? xprintf("%s\n(and %lu more failures)", r->failures,
                                                (unsigned long)r->nlost)
                                      : xstrdup(r->failures);
            } else if (alone && c->kind == PASS) {
                if (r->skipped) {
                    c->kind = SKIP;
                    c->message = xstrdup(r->skip_message[0] ? r->skip_message : "skipped");
                }
            } else if (alone) {
                c->message = xprintf("exit status %d", exit_status);
            } else if (!have_report) {
                c->kind = FAIL;
                c->message = xprintf("exit status %d, and %s wrote no report for the filter %s",
                                     exit_status, FW_TITLES[framework], args[0]);
            } else if (r->found == 0) {
                /* exit 0 too: a filter that selected nothing passes */
                c->kind = FAIL;
                c->message = xprintf("exit status %d, but %s's report does not show this case run "
                                     "(the filter %s ran %lu other cases)",
                                     exit_status, FW_TITLES[framework], args[0], (unsigned long)r->ran);
            } else {
                c->kind = FAIL;
                c->message = xprintf("exit status %d, but %s's report shows %lu cases run for the "
                                     "filter %s, not just this one",
                                     exit_status, FW_TITLES[framework], (unsigned long)r->ran, args[0]);
            }
        }
        free(r);
    }
    if (c->kind != PASS && c->kind != SKIP) c->output = output_tail(out_path);
    unlink(out_path);
    unlink(report_path);
    for (i = 0; args[i]; i++) free(args[i]);
    free(out_path);
    free(report_path);
}

/* ---- reporting ----------------------------------------------------------------------------- */

/* Prints s with control characters (but tab) dropped, the last PRINT_LINES lines, indented. */
static void print_output(const char *s) {
    const char *p = s + strlen(s);
    int lines = 0;
    if (p > s && p[-1] == '\n') p--;
    while (p > s) {
        if (p[-1] == '\n' && ++lines == PRINT_LINES) break;
        p--;
    }
    fputs("    | ", stdout);
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\n') {
            if (p[1]) fputs("\n    | ", stdout);
        } else if (ch >= 0x20 || ch == '\t') {
            if (ch != 0x7f) putchar(ch);
        }
    }
    putchar('\n');
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static int utf8_len(const unsigned char *s) {
    unsigned char b = s[0];
    int need, i;
    unsigned lo = 0x80, hi = 0xbf;
    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b == 0xe0) need = 2, lo = 0xa0;
    else if (b == 0xed) need = 2, hi = 0x9f;
    else if (b >= 0xe1 && b <= 0xef) need = 2;
    else if (b == 0xf0) need = 3, lo = 0x90;
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else if (b == 0xf4) need = 3, hi = 0x8f;
    else return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (i = 2; i <= need; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    /* U+FFFE and U+FFFF are not XML characters */
    if (b == 0xef && s[1] == 0xbf && s[2] >= 0xbe) return 0;
    return need + 1;
}

/* Writes s as XML text (attr: as an attribute value): escaped, control characters dropped,
 * invalid UTF-8 replaced by U+FFFD, so the file is always well-formed. */
static void xml_escape(FILE *f, const char *s, int attr) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = utf8_len(p);
        if (n == 0) {
            fputs("\xef\xbf\xbd", f);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, (size_t)n, f);
            p += n;
            continue;
        }
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\r': fputs("&#13;", f); break;
        case '\t': fputs(attr ? "&#9;" : "\t", f); break;
        case '\n': fputs(attr ? "&#10;" : "\n", f); break;
        default:
            if (*p >= 0x20 && *p != 0x7f) fputc(*p, f);
        }
        p++;
    }
}

static int write_junit(const struct test_case *list, size_t n, long long micros) {
    char *tmp = xprintf("%s.tmp.%ld", junit_path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    size_t i, failures = 0, errors = 0, skipped = 0;
    int ok;
    if (f == NULL) {
        fprintf(stderr, "shard_runner: cannot write the JUnit XML %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (list[i].kind == ERROR) errors++;
        else if (list[i].kind == SKIP) skipped++;
        else if (list[i].kind != PASS) failures++;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"");
    xml_escape(f, binary, 1);
    fprintf(f, "\" tests=\"%lu\" failures=\"%lu\" errors=\"%lu\" skipped=\"%lu\" time=\"%.3f\">\n",
            (unsigned long)n, (unsigned long)failures, (unsigned long)errors, (unsigned long)skipped,
            micros / 1e6);
    fprintf(f, "    <properties>\n      <property name=\"shard\" value=\"%lu/%lu\"/>\n"
               "      <property name=\"partition\" value=\"%s\"/>\n"
               "      <property name=\"mode\" value=\"%s\"/>\n    </properties>\n",
            shard + 1, total, partition, emulator ? "emulated" : "native");
    for (i = 0; i < n; i++) {
        const struct test_case *c = &list[i];
        const char *tag = c->kind == ERROR ? "error" : "failure";
        fputs("    <testcase classname=\"", f);
        xml_escape(f, binary, 1);
        fputs("\" name=\"", f);
        xml_escape(f, c->name, 1);
        fprintf(f, "\" time=\"%.6f\"", c->micros / 1e6);
        if (c->kind == PASS) {
            fputs("/>\n", f);
            continue;
        }
        if (c->kind == SKIP) {
            fputs(">\n      <skipped message=\"", f);
            xml_escape(f, c->message ? c->message : "", 1);
            fputs("\"/>\n    </testcase>\n", f);
            continue;
        }
        fprintf(f, ">\n      <%s message=\"", tag);
        xml_escape(f, c->message ? c->message : "", 1);
        fprintf(f, "\" type=\"%s\">", c->kind == ERROR     ? (c->error_type ? c->error_type : "list")
                                      : c->kind == FAIL    ? "fail"
                                      : c->kind == CRASH   ? "crash"
                                                           : "timeout");
        if (c->output) xml_escape(f, c->output, 0);
        fprintf(f, "</%s>\n    </testcase>\n", tag);
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    ok = fflush(f) == 0 && ferror(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && !stop_signal && rename(tmp, junit_path) == 0) {
        free(tmp);
        return 1;
    }
    if (!stop_signal)
        fprintf(stderr, "shard_runner: cannot write the JUnit XML %s: %s\n", junit_path,
                strerror(errno));
    unlink(tmp);
    free(tmp);
    return 0;
}

/* ---- setup --------------------------------------------------------------------------------- */

/* The ELF machine of the binary as an architecture name, or NULL if it is not ELF. */
static const char *elf_arch(const char *path) {
    unsigned char h[20];
    FILE *f = fopen(path, "rb");
    size_t n;
    unsigned machine;
    if (f == NULL) return NULL;
    n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n < sizeof h || memcmp(h, "\x7f" "ELF", 4) != 0) return NULL;
    machine = h[5] == 2 ? (unsigned)h[18] << 8 | h[19] : (unsigned)h[19] << 8 | h[18];
    switch (machine) {
    case 62: return "x86_64";
    case 183: return "aarch64";
    default: return "another machine";
    }
}

static const char *find_on_path(const char *name) {
    const char *path = getenv("PATH");
    static char buf[4096];
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if (len > 0 && len + strlen(name) + 2 < sizeof buf) {
            memcpy(buf, path, len);
            buf[len] = '/';
            strcpy(buf + len + 1, name);
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return buf;
        }
        path = colon ? colon + 1 : NULL;
    }
    return NULL;
}

static void fatal_setup(const char *message) {
    struct test_case c;
    memset(&c, 0, sizeof c);
    c.name = (char *)"setup";
    c.kind = ERROR;
    c.message = (char *)message;
    fprintf(stderr, "shard_runner: error: %s\n", message);
    write_junit(&c, 1, 0);
    exit(3);
}

/* Removes the runner's temporary folder: its files, and out/ with whatever case outputs are
 * left in it (most were removed as their results came in). */
static void remove_files_in(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL) return;
    while ((e = readdir(d)) != NULL) {
        char *p;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        p = xprintf("%s/%s", dir, e->d_name);
        /* A folder: Linux says EISDIR, POSIX also allows EPERM. */
        if (unlink(p) != 0 && (errno == EISDIR || errno == EPERM)) {
            remove_files_in(p);
            rmdir(p);
        }
        free(p);
    }
    closedir(d);
}

static void rm_tree_files(const char *dir) {
    remove_files_in(dir);
    rmdir(dir);
}

/* One (shard, binary): the whole job of the runner, in whichever mode it was started. `args`
 * are the arguments after the program name, `@@` already turned into `@`. Returns the exit
 * status; usage errors and some setup errors exit the process directly. */
static int run_shard(char **args, size_t nargs) {
    struct sigaction sa;
    struct test_case list_error;
    const char *arch, *exec_env = getenv("CROSSBUILD_EXEC_PER_CASE");
    size_t selected, i, from, counts[6] = {0, 0, 0, 0, 0, 0};
    long long t0 = now_micros();
    int listed;
    struct stat st;
    char number[32];

    for (i = 0; i < nargs && strncmp(args[i], "--", 2) == 0; i++) {
        if (strcmp(args[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(args[i], "--exec-per-case") == 0) {
            exec_per_case = 1;
        } else if (strncmp(args[i], "--framework=", 12) == 0) {
            size_t f;
            for (f = 0; f < sizeof FW_NAMES / sizeof *FW_NAMES; f++)
                if (strcmp(args[i] + 12, FW_NAMES[f]) == 0) break;
            if (f == sizeof FW_NAMES / sizeof *FW_NAMES)
                die_usage("unknown framework '%s' in '%s' (crossbuild, gtest, catch2 or doctest)",
                          args[i] + 12, args[i]);
            framework = (enum framework)f;
        } else {
            die_usage("unknown option '%s'", args[i]);
        }
    }
    args += i;
    nargs -= i;
    if (nargs != 6) die_usage("expected 6 arguments, got %lu", (unsigned long)nargs);
    binary = args[0];
    partition = args[3];
    junit_path = args[5];
    if (!parse_ulong(args[2], &total) || total < 1)
        die_usage("TOTAL_SHARDS must be a whole number >= 1, got '%s'", args[2]);
    if (!parse_ulong(args[1], &shard) || shard >= total)
        die_usage("SHARD_INDEX is 0-based and must be below TOTAL_SHARDS (%lu), got '%s'", total,
                  args[1]);
    if (strcmp(partition, "hash") && strcmp(partition, "count") && strcmp(partition, "slice"))
        die_usage("PARTITION must be hash, count or slice, got '%s'", partition);
    if (!parse_ulong(args[4], &case_timeout) || case_timeout < 1)
        die_usage("CASE_TIMEOUT must be whole seconds >= 1, got '%s'", args[4]);
    if (!*junit_path) die_usage("JUNIT_XML is empty");
    if (exec_env && strcmp(exec_env, "1") == 0) exec_per_case = 1;

    /* Bazel's sharding variables for the test processes, from the arguments (the environment
     * of a worker is shared by every shard, so it cannot carry them). */
    snprintf(number, sizeof number, "%lu", shard);
    setenv("TEST_SHARD_INDEX", number, 1);
    snprintf(number, sizeof number, "%lu", total);
    setenv("TEST_TOTAL_SHARDS", number, 1);
    if (framework == FW_GTEST) {
        /* GoogleTest would shard again within what this runner gives it */
        unsetenv("GTEST_SHARD_INDEX");
        unsetenv("GTEST_TOTAL_SHARDS");
        unsetenv("GTEST_SHARD_STATUS_FILE");
        unsetenv("GTEST_ALSO_RUN_DISABLED_TESTS"); /* disabled cases are reported skipped */
    }

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_alarm; /* no SA_RESTART: the alarm interrupts waitpid */
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    crc_init();

    {
        /* In the sandbox if it is writable (nothing shared with other actions), else TMPDIR. */
        const char *base = getenv("TMPDIR");
        char *tmpl = xstrdup("./crossbuild-shard.XXXXXX");
        if (mkdtemp(tmpl) == NULL) {
            free(tmpl);
            tmpl = xprintf("%s/crossbuild-shard.XXXXXX", base && *base ? base : "/tmp");
            if (mkdtemp(tmpl) == NULL) {
                fprintf(stderr, "shard_runner: cannot create a temporary folder %s: %s\n", tmpl,
                        strerror(errno));
                return 3;
            }
        }
        if (strlen(tmpl) >= sizeof work_dir) {
            fprintf(stderr, "shard_runner: temporary folder path too long: %s\n", tmpl);
            return 3;
        }
        strcpy(work_dir, tmpl);
        free(tmpl);
    }

    if (stat(binary, &st) != 0 || !S_ISREG(st.st_mode)) {
        rm_tree_files(work_dir);
        fatal_setup(xprintf("the test binary %s does not exist", binary));
    }
    arch = elf_arch(binary);
    if (arch != NULL && strcmp(arch, HOST_ARCH) != 0) {
        const char *allow = getenv("CROSSBUILD_ALLOW_EMULATION");
        char *qemu = xprintf("qemu-%s-static", arch);
        const char *found = NULL;
        if (allow && strcmp(allow, "1") == 0 && strcmp(arch, "another machine") != 0) {
            found = find_on_path(qemu);
            if (!found) {
                free(qemu);
                qemu = xprintf("qemu-%s", arch);
                found = find_on_path(qemu);
            }
        }
        free(qemu);
        if (!found) {
            rm_tree_files(work_dir);
            fatal_setup(xprintf("%s was built for %s but this shard runs on %s", binary, arch,
                                HOST_ARCH));
        }
        emulator = xstrdup(found);
        printf("note: running %s binaries under %s on this %s machine (remote execution is off)\n",
               arch, emulator, HOST_ARCH);
    }

    memset(&list_error, 0, sizeof list_error);
    listed = list_cases(&list_error);
    if (!listed) {
        printf("ERROR %s %s (%.3fs): %s\n", binary, list_error.name, list_error.micros / 1e6,
               list_error.message);
        if (list_error.output) print_output(list_error.output);
        rm_tree_files(work_dir);
        printf("shard %lu/%lu, %s: 0 passed, 0 failed, 0 timed out, 0 crashed, 1 error\n",
               shard + 1, total, binary);
        return write_junit(&list_error, 1, now_micros() - t0) ? 1 : 3;
    }
    {
        size_t all = ncases;
        selected = select_cases();
        printf("shard %lu/%lu, %s: %lu of %lu cases (%s%s%s partition, %lus per case)\n", shard + 1,
               total, binary, (unsigned long)selected, (unsigned long)all,
               framework == FW_CROSSBUILD ? "" : FW_NAMES[framework],
               framework == FW_CROSSBUILD ? "" : ", ", partition, case_timeout);
    }

    from = 0;
    if (selected > 0 && framework != FW_CROSSBUILD) {
        for (i = 0; i < ncases && !stop_signal; i++) run_framework_case(&cases[i]);
    } else if (selected > 0) {
        size_t done = exec_per_case ? (size_t)-1 : run_forked(0);
        if (done == (size_t)-1) {
            if (!exec_per_case)
                printf("note: %s does not answer --run: one process per case (--exact)\n", binary);
            for (i = 0; i < ncases && !stop_signal; i++) run_exact(&cases[i]);
        } else {
            while (done < ncases && !stop_signal) {
                from = done;
                done = run_forked(from);
                if (done == (size_t)-1) break; /* it answered before: cannot happen but for a bug */
            }
        }
    }
    if (stop_signal) {
        rm_tree_files(work_dir);
        fprintf(stderr, "shard_runner: stopped by signal %d; no results written\n", (int)stop_signal);
        signal((int)stop_signal, SIG_DFL);
        raise((int)stop_signal);
        return 128 + (int)stop_signal;
    }
    for (i = 0; i < ncases; i++) {
        struct test_case *c = &cases[i];
        counts[c->kind]++;
        if (c->kind == PASS) {
            printf("PASS %s::%s (%.3fs)\n", binary, c->name, c->micros / 1e6);
        } else if (c->kind == SKIP) {
            printf("SKIP %s::%s: %s\n", binary, c->name, c->message);
        } else {
            printf("%s %s::%s (%.3fs): %s\n", KIND_NAMES[c->kind], binary, c->name, c->micros / 1e6,
                   c->message);
            if (c->output) print_output(c->output);
        }
    }
    rm_tree_files(work_dir);
    printf("shard %lu/%lu, %s: %lu passed, %lu failed, %lu timed out, %lu crashed", shard + 1, total,
           binary, (unsigned long)counts[PASS], (unsigned long)counts[FAIL],
           (unsigned long)counts[TIMEOUT], (unsigned long)counts[CRASH]);
    if (counts[SKIP]) printf(", %lu skipped", (unsigned long)counts[SKIP]);
    if (counts[ERROR]) printf(", %lu %s", (unsigned long)counts[ERROR], counts[ERROR] == 1 ? "error" : "errors");
    printf(" of %lu cases\n", (unsigned long)ncases);
    if (!write_junit(cases, ncases, now_micros() - t0)) return 3;
    return counts[PASS] + counts[SKIP] == ncases ? 0 : 1;
}

/* ---- arguments from a flagfile or a work request ------------------------------------------ */

/* Bazel's escape: an argument starting with `@@` stands for the same text with one `@` fewer. A
 * lone leading `@` would be another flagfile, which this runner does not read. */
static void unescape_args(char **args, size_t nargs) {
    size_t i;
    for (i = 0; i < nargs; i++) {
        if (args[i][0] != '@') continue;
        if (args[i][1] != '@')
            die_usage("'%s': a flagfile may not name another flagfile (write @@ for a leading @)",
                      args[i]);
        memmove(args[i], args[i] + 1, strlen(args[i]));
    }
}

struct arg_list {
    char **items;
    size_t n, cap;
};

static void arg_add(struct arg_list *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        char **bigger;
        l->cap = l->cap ? l->cap * 2 : 16;
        bigger = xmalloc(l->cap * sizeof *bigger);
        if (l->n) memcpy(bigger, l->items, l->n * sizeof *bigger);
        free(l->items);
        l->items = bigger;
    }
    l->items[l->n] = xmalloc(len + 1);
    memcpy(l->items[l->n], s, len);
    l->items[l->n++][len] = 0;
}

/* `shard_runner @FLAGFILE`: one argument per line ("\n", or "\r\n"); the text after the last
 * newline is an argument too when it is not empty. */
static int run_flagfile(const char *path) {
    struct arg_list l = {NULL, 0, 0};
    size_t len, i, start = 0;
    char *text = read_file(path, &len);
    if (text == NULL) die_usage("cannot read the flagfile %s: %s", path, strerror(errno));
    if (memchr(text, 0, len) != NULL) die_usage("the flagfile %s holds a NUL byte", path);
    for (i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n') continue;
        if (i == len && start == len) break;
        arg_add(&l, text + start, i > start && text[i - 1] == '\r' ? i - start - 1 : i - start);
        start = i + 1;
    }
    free(text);
    unescape_args(l.items, l.n);
    return run_shard(l.items, l.n);
}

/* ---- persistent worker (Bazel's worker protocol, protobuf framing) ------------------------- */

#define MESSAGE_LIMIT (16u << 20)
#define RESPONSE_OUTPUT_LIMIT (MESSAGE_LIMIT - 4096)

struct work_request {
    struct arg_list args;
    int32_t request_id;
    int cancel;
    char *sandbox_dir; /* NULL when absent */
};

static void worker_fail(const char *fmt, ...) {
    va_list ap;
    fputs("shard_runner: persistent worker: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Reads exactly n bytes from fd. Returns n, or how many it got before end of file. */
static size_t read_exact(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) worker_fail("cannot read stdin: %s", strerror(errno));
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static void write_exact(int fd, const unsigned char *buf, size_t n) {
    while (n > 0) {
        ssize_t r = write(fd, buf, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) worker_fail("cannot write a response: %s", strerror(errno));
        buf += r;
        n -= (size_t)r;
    }
}

/* Decodes a varint from [*p, end); returns 0 when it is cut short or longer than 10 bytes. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *value) {
    unsigned shift;
    *value = 0;
    for (shift = 0; shift < 70; shift += 7) {
        unsigned char b;
        if (*p >= end) return 0;
        b = *(*p)++;
        *value |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

static size_t put_varint(unsigned char *p, uint64_t value) {
    size_t n = 0;
    while (value >= 0x80) {
        p[n++] = (unsigned char)(value | 0x80);
        value >>= 7;
    }
    p[n++] = (unsigned char)value;
    return n;
}

/* An int32 field's varint (sign-extended to 64 bits when negative) as the int32 it encodes. */
static int32_t as_int32(uint64_t v) {
    uint32_t u = (uint32_t)v;
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Reads one length-prefixed message into a new buffer. Returns 0 at end of file before its first
 * byte; exits on anything else that is not a whole frame within MESSAGE_LIMIT. */
static int read_frame(unsigned char **buf, size_t *len) {
    unsigned char b;
    uint64_t size = 0;
    unsigned shift;
    for (shift = 0;; shift += 7) {
        if (read_exact(0, &b, 1) != 1) {
            if (shift == 0) return 0;
            worker_fail("stdin ended inside a length prefix");
        }
        if (shift > 28) worker_fail("a length prefix longer than 5 bytes");
        size |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
    }
    if (size > MESSAGE_LIMIT)
        worker_fail("a request of %llu bytes (the limit is %u)", (unsigned long long)size,
                    MESSAGE_LIMIT);
    *len = (size_t)size;
    *buf = xmalloc(*len);
    if (read_exact(0, *buf, *len) != *len)
        worker_fail("stdin ended inside a request of %lu bytes", (unsigned long)*len);
    return 1;
}

/* WorkRequest: arguments=1 (string, repeated), inputs=2 (message, repeated: skipped),
 * request_id=3 (int32), cancel=4 (bool), verbosity=5 (int32: ignored), sandbox_dir=6 (string).
 * Unknown fields are skipped by wire type. Exits on a malformed message. */
static void parse_request(const unsigned char *p, size_t len, struct work_request *req) {
    const unsigned char *end = p + len;
    memset(req, 0, sizeof *req);
    while (p < end) {
        uint64_t key, value = 0;
        const unsigned char *data = NULL;
        unsigned field, wire;
        if (!get_varint(&p, end, &key)) worker_fail("malformed request: a cut field key");
        field = key >> 3 > 0x1fffffff ? 0 : (unsigned)(key >> 3);
        wire = (unsigned)(key & 7);
        if (field == 0) worker_fail("malformed request: field number %llu", (unsigned long long)(key >> 3));
        switch (wire) {
        case 0:
            if (!get_varint(&p, end, &value)) worker_fail("malformed request: a cut varint");
            break;
        case 1:
            if (end - p < 8) worker_fail("malformed request: a cut 64-bit field");
            p += 8;
            break;
        case 2:
            if (!get_varint(&p, end, &value) || value > (uint64_t)(end - p))
                worker_fail("malformed request: field %u runs past the message", field);
            data = p;
            p += value;
            break;
        case 5:
            if (end - p < 4) worker_fail("malformed request: a cut 32-bit field");
            p += 4;
            break;
        default:
            worker_fail("malformed request: wire type %u in field %u", wire, field);
        }
        if (field > 6) continue;
        if (wire != (field == 1 || field == 2 || field == 6 ? 2u : 0u))
            worker_fail("malformed request: field %u has wire type %u", field, wire);
        if (field == 1 || field == 6) {
            if (memchr(data, 0, (size_t)value) != NULL)
                worker_fail("malformed request: a NUL byte in field %u", field);
            if (field == 1) {
                arg_add(&req->args, (const char *)data, (size_t)value);
            } else {
                free(req->sandbox_dir);
                req->sandbox_dir = xmalloc((size_t)value + 1);
                memcpy(req->sandbox_dir, data, (size_t)value);
                req->sandbox_dir[value] = 0;
            }
        } else if (field == 3) {
            req->request_id = as_int32(value);
        } else if (field == 4) {
            req->cancel = value != 0;
        }
    }
}

/* WorkResponse: exit_code=1, output=2, request_id=3 (zero values left out, as proto3 does). */
static void write_response(int exit_code, const char *output, size_t output_len, int32_t request_id) {
    unsigned char *msg = xmalloc(output_len + 64), prefix[10];
    size_t n = 0;
    if (exit_code != 0) {
        msg[n++] = 1 << 3 | 0;
        n += put_varint(msg + n, (uint64_t)(int64_t)exit_code);
    }
    if (output_len > 0) {
        msg[n++] = 2 << 3 | 2;
        n += put_varint(msg + n, output_len);
        memcpy(msg + n, output, output_len);
        n += output_len;
    }
    if (request_id != 0) {
        msg[n++] = 3 << 3 | 0;
        n += put_varint(msg + n, (uint64_t)(int64_t)request_id);
    }
    write_exact(1, prefix, put_varint(prefix, n));
    write_exact(1, msg, n);
    free(msg);
}

/* An unnamed temporary file for a request's output: in TMPDIR, /tmp, else the working folder. */
static int output_file(void) {
    const char *dirs[3];
    size_t i;
    dirs[0] = getenv("TMPDIR");
    dirs[1] = "/tmp";
    dirs[2] = ".";
    for (i = 0; i < 3; i++) {
        char *path;
        int fd;
        if (dirs[i] == NULL || !*dirs[i]) continue;
        path = xprintf("%s/.shard_runner-output.XXXXXX", dirs[i]);
        fd = mkstemp(path);
        if (fd >= 0) {
            unlink(path);
            free(path);
            return fd;
        }
        free(path);
    }
    worker_fail("cannot create a temporary file for a request's output: %s", strerror(errno));
    return -1;
}

/* A request's output: the whole file, or its last RESPONSE_OUTPUT_LIMIT bytes with a note. */
static char *read_output(int fd, size_t *len) {
    struct stat st;
    size_t size, skip, n;
    char *buf, *note;
    if (fstat(fd, &st) != 0) worker_fail("cannot read a request's output: %s", strerror(errno));
    size = (size_t)st.st_size;
    skip = size > RESPONSE_OUTPUT_LIMIT ? size - RESPONSE_OUTPUT_LIMIT : 0;
    if (lseek(fd, (off_t)skip, SEEK_SET) < 0)
        worker_fail("cannot read a request's output: %s", strerror(errno));
    buf = xmalloc(size - skip + 1);
    n = read_exact(fd, (unsigned char *)buf, size - skip);
    buf[n] = 0;
    *len = n;
    if (!skip) return buf;
    note = xprintf("[... %lu bytes of output omitted ...]\n%s", (unsigned long)skip, buf);
    free(buf);
    *len = strlen(note);
    return note;
}

/* Runs one request in a child process, as `shard_runner @FLAGFILE` would run those arguments,
 * and answers with its exit status and everything it wrote. */
static void serve(struct work_request *req) {
    int fd = output_file(), status = 0;
    pid_t parent = getpid(), pid;
    size_t len;
    char *output;
    fflush(stderr);
    pid = fork();
    if (pid < 0) worker_fail("fork failed: %s", strerror(errno));
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the worker was killed: stop like a one-shot runner */
        if (getppid() != parent) _exit(128 + SIGTERM);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            close(null_fd);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_DFL);
        if (req->sandbox_dir && *req->sandbox_dir && chdir(req->sandbox_dir) != 0) {
            fprintf(stderr, "shard_runner: cannot enter the sandbox %s: %s\n", req->sandbox_dir,
                    strerror(errno));
            exit(3);
        }
        unescape_args(req->args.items, req->args.n);
        exit(run_shard(req->args.items, req->args.n));
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) worker_fail("waitpid failed: %s", strerror(errno));
    }
    output = read_output(fd, &len);
    close(fd);
    write_response(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output, len,
                   req->request_id);
    free(output);
}

static int worker_main(void) {
    unsigned char *buf;
    size_t len, i;
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, reported */
    while (read_frame(&buf, &len)) {
        struct work_request req;
        parse_request(buf, len, &req);
        free(buf);
        /* Singleplex: a request is answered before the next one is read, so a cancel names a
         * request already answered (or none): nothing to do, and no response. */
        if (!req.cancel) serve(&req);
        for (i = 0; i < req.args.n; i++) free(req.args.items[i]);
        free(req.args.items);
        free(req.sandbox_dir);
    }
    return 0;
}

int main(int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--persistent_worker") != 0) continue;
        if (argc != 2) die_usage("--persistent_worker takes no other arguments");
        return worker_main();
    }
    if (argc == 2 && argv[1][0] == '@' && argv[1][1] != '@') {
        /* Everything on stderr, in the order it was written, as a worker's response holds it. */
        dup2(2, 1);
        setvbuf(stdout, NULL, _IOLBF, 0);
        return run_flagfile(argv[1] + 1);
    }
    return run_shard(argv + 1, (size_t)(argc - 1));
}
