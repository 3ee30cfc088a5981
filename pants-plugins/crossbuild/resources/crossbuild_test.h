/*
 * crossbuild_test.h - a single-header test harness for crossbuild native test binaries.
 *
 * Plain C99/C11 plus libc; needs __attribute__((constructor)), which GCC, Clang and
 * `zig cc` all provide. Include it from exactly ONE .c file per test binary: that file
 * becomes the binary, and this header supplies its main().
 *
 * THE TEST BINARY PROTOCOL
 *
 *   BIN --list         Print every registered case name, one per line, in the order
 *                      the cases appear in the source. Exit 0.
 *   BIN --exact NAME   Run exactly the case NAME in this process.
 *                        exit 0  the case passed (nothing is printed)
 *                        exit 1  an assertion failed; the reason is on stderr
 *                        exit 2  there is no case called NAME (stderr names it),
 *                                or the command line was not understood
 *                        exit 3  the binary is broken (more cases than it can hold)
 *                        exit 4  the case called exit() before it finished (whatever
 *                                the status it passed: its remaining checks never ran)
 *                      A crash is not caught: the process dies of its signal and the
 *                      runner reports it.
 *   BIN --run TIMEOUT OUTDIR
 *                      Run many cases, each in its own forked process, so a case costs
 *                      a fork rather than a new process (and, under an emulator, a new
 *                      emulator). Case names come on stdin, one per line. The binary
 *                      first prints the line "crossbuild-run 1", then, as each case
 *                      ends, one line
 *                          N exit CODE MICROSECONDS     the case exited with CODE
 *                          N signal SIG MICROSECONDS    the case was killed by SIG
 *                          N timeout SIG MICROSECONDS   it ran TIMEOUT seconds and was
 *                                                      killed (SIGTERM, then SIGKILL
 *                                                      2 s later)
 *                          N missing 0 0                there is no such case
 *                      and "end" after the last. N counts the input lines from 0. Each
 *                      case runs in its own process group with stdin from /dev/null and
 *                      its stdout and stderr in the file OUTDIR/N; a timeout kills the
 *                      whole group, and a case never outlives the binary (it gets
 *                      SIGKILL if the binary dies). Exit codes are those of --exact.
 *                      Exit 0 when every case was reported, whatever their results;
 *                      2 on bad arguments or an unusable OUTDIR. Linux and other POSIX
 *                      systems only (elsewhere --run is an unrecognised argument, and
 *                      a runner falls back to --exact). The crossbuild shard runner
 *                      uses --run and falls back to --exact for binaries that do not
 *                      answer "crossbuild-run 1".
 *   BIN                Run every case in this process, one after another, print one
 *                      line per case and a closing "N passed, N failed" line, exit 1
 *                      if any case failed (0 otherwise). Meant for running by hand; a
 *                      crash here ends the whole run.
 *   BIN --help         Print this usage summary.
 *
 * DEFINING CASES
 *
 *   CB_TEST(name) { ...body... }
 *
 *   Use at file scope. `name` must be a C identifier; it is the case name exactly as
 *   written (CB_TEST(parses_empty_input) is listed as "parses_empty_input"). Names must
 *   be unique within one binary (a repeated name fails to compile, since each case is a
 *   function). Cases register themselves from constructor functions before main() runs
 *   and are listed in source order: by line number within a file (cases from an
 *   #included file are kept together as a block). A binary holds at most
 *   CB_TEST_MAX_CASES cases (default 1024); #define it before including this header to
 *   raise it. A binary with too many cases refuses to do anything and says so (exit 3).
 *
 * ASSERTIONS
 *
 *   Each one evaluates its arguments exactly once. On failure it prints
 *   "FILE:LINE: MACRO(args as written) failed: details" to stderr and ends the case
 *   (exit 1 under --exact). They may be used in helper functions called from a case.
 *
 *   CB_ASSERT(cond)             cond is true (non-zero)
 *   CB_ASSERT_EQ_INT(a, b)      a == b, compared and printed as long long
 *   CB_ASSERT_EQ_UINT(a, b)     a == b, compared and printed as unsigned long long
 *                               (decimal and hex)
 *   CB_ASSERT_EQ_STR(a, b)      NUL-terminated strings are equal (both NULL counts as
 *                               equal); printed quoted, with C escapes for odd bytes
 *   CB_ASSERT_EQ_MEM(a, b, n)   the first n bytes at a and b are equal; on failure the
 *                               first differing offset and a hex dump around it
 *   CB_ASSERT_NEAR(a, b, eps)   |a - b| <= eps as doubles (a NaN is never near)
 *   CB_FAIL(msg)                fail unconditionally with the string msg
 *
 *   Example failure:
 *     tests/foo_test.c:42: CB_ASSERT_EQ_INT(x, 3) failed: 2 != 3
 *
 * EXAMPLE (tests/add_test.c, compiled and linked with the code under test)
 *
 *   #include "crossbuild_test.h"
 *   #include "mylib/add.h"
 *
 *   CB_TEST(adds_small_numbers) {
 *       CB_ASSERT_EQ_INT(add(2, 3), 5);
 *   }
 *
 *   CB_TEST(greets_by_name) {
 *       char buf[32];
 *       greet(buf, sizeof buf, "arm64");
 *       CB_ASSERT_EQ_STR(buf, "hello, arm64");
 *   }
 *
 *   $ ./add_test --list
 *   adds_small_numbers
 *   greets_by_name
 *   $ ./add_test --exact adds_small_numbers; echo $?
 *   0
 *
 * OWN main()
 *
 *   #define CB_TEST_NO_MAIN before the #include to leave main() out; then call
 *   cb_test_main(argc, argv) from your own main() and return what it returns.
 */
#ifndef CROSSBUILD_TEST_H
#define CROSSBUILD_TEST_H

/* --run needs POSIX (fork, waitpid, sigaction). Under a strict -std=c11 the C library
 * declares none of it unless asked; ask, as long as nothing else has chosen. Include
 * this header first in its file, so that the choice is made before any other header. */
#if defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && !defined(_BSD_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#define CB__HAVE_FORK 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#endif

#if !defined(__GNUC__) && !defined(__clang__)
#error "crossbuild_test.h needs __attribute__((constructor)): use GCC, Clang or zig cc"
#endif

#ifndef CB_TEST_MAX_CASES
#define CB_TEST_MAX_CASES 1024
#endif

#define CB__UNUSED __attribute__((unused))
#define CB__NORETURN __attribute__((noreturn))

typedef void (*cb__test_fn)(void);

typedef struct {
    const char *name;
    cb__test_fn fn;
    const char *file;
    int line;
    size_t group; /* cases from the same file share a group: see cb__sort_cases */
} cb__case;

static struct {
    cb__case cases[CB_TEST_MAX_CASES];
    size_t count;
    size_t dropped; /* registrations beyond CB_TEST_MAX_CASES */
    int in_case;    /* a case is running and on_fail is armed */
    jmp_buf on_fail;
} cb__state;

CB__UNUSED static void cb__register(const char *name, cb__test_fn fn, const char *file,
                                    int line) {
    if (cb__state.count >= (size_t)CB_TEST_MAX_CASES) {
        cb__state.dropped++;
        return;
    }
    cb__state.cases[cb__state.count].name = name;
    cb__state.cases[cb__state.count].fn = fn;
    cb__state.cases[cb__state.count].file = file;
    cb__state.cases[cb__state.count].line = line;
    cb__state.cases[cb__state.count].group = 0;
    cb__state.count++;
}

#define CB_TEST(name)                                                                      \
    static void cb__test_##name(void);                                                     \
    __attribute__((constructor)) static void cb__register_##name(void) {                   \
        cb__register(#name, cb__test_##name, __FILE__, __LINE__);                          \
    }                                                                                      \
    static void cb__test_##name(void)

/* ---- failure reporting ---------------------------------------------------------- */

CB__NORETURN CB__UNUSED static void cb__end_case(void) {
    fflush(stdout);
    fflush(stderr);
    if (cb__state.in_case) {
        longjmp(cb__state.on_fail, 1);
    }
    /* An assertion outside any case (e.g. from a constructor): just fail. */
    exit(1);
}

CB__UNUSED static void cb__head(const char *file, int line, const char *expr) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s failed", file, line, expr);
}

CB__UNUSED static void cb__put_quoted(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t shown = 0;
    if (s == NULL) {
        fputs("NULL", stderr);
        return;
    }
    fputc('"', stderr);
    for (; *p != 0; p++, shown++) {
        if (shown == 256) {
            fputs("\"...", stderr);
            return;
        }
        switch (*p) {
        case '"': fputs("\\\"", stderr); break;
        case '\\': fputs("\\\\", stderr); break;
        case '\n': fputs("\\n", stderr); break;
        case '\r': fputs("\\r", stderr); break;
        case '\t': fputs("\\t", stderr); break;
        default:
            if (*p < 0x20 || *p >= 0x7f) {
                fprintf(stderr, "\\x%02x", (unsigned)*p);
            } else {
                fputc(*p, stderr);
            }
        }
    }
    fputc('"', stderr);
}

CB__UNUSED static void cb__fail_bool(const char *file, int line, const char *expr) {
    cb__head(file, line, expr);
    fputc('\n', stderr);
    cb__end_case();
}

CB__UNUSED static void cb__fail_msg(const char *file, int line, const char *expr,
                                    const char *msg) {
    cb__head(file, line, expr);
    fprintf(stderr, ": %s\n", msg != NULL ? msg : "(null)");
    cb__end_case();
}

CB__UNUSED static void cb__check_int(const char *file, int line, const char *expr,
                                     long long a, long long b) {
    if (a == b) return;
    cb__head(file, line, expr);
    fprintf(stderr, ": %lld != %lld\n", a, b);
    cb__end_case();
}

CB__UNUSED static void cb__check_uint(const char *file, int line, const char *expr,
                                      unsigned long long a, unsigned long long b) {
    if (a == b) return;
    cb__head(file, line, expr);
    fprintf(stderr, ": %llu (0x%llx) != %llu (0x%llx)\n", a, a, b, b);
    cb__end_case();
}

CB__UNUSED static void cb__check_str(const char *file, int line, const char *expr,
                                     const char *a, const char *b) {
    if (a == b) return;
    if (a != NULL && b != NULL && strcmp(a, b) == 0) return;
    cb__head(file, line, expr);
    fputs(": ", stderr);
    cb__put_quoted(a);
    fputs(" != ", stderr);
    cb__put_quoted(b);
    fputc('\n', stderr);
    cb__end_case();
}

CB__UNUSED static void cb__dump_row(const char *label, const unsigned char *p, size_t from,
                                    size_t to, size_t mark) {
    size_t i;
    fprintf(stderr, "  %s +0x%04lx:", label, (unsigned long)from);
    for (i = from; i < to; i++) {
        if (i == mark) {
            fprintf(stderr, " [%02x]", (unsigned)p[i]);
        } else {
            fprintf(stderr, " %02x", (unsigned)p[i]);
        }
    }
    fputc('\n', stderr);
}

CB__UNUSED static void cb__check_mem(const char *file, int line, const char *expr,
                                     const void *a, const void *b, size_t n) {
    const unsigned char *pa = (const unsigned char *)a;
    const unsigned char *pb = (const unsigned char *)b;
    size_t off, from, to;
    if (n == 0 || a == b) return;
    if (a == NULL || b == NULL) {
        cb__head(file, line, expr);
        fprintf(stderr, ": %s is NULL\n", a == NULL ? "first pointer" : "second pointer");
        cb__end_case();
    }
    if (memcmp(a, b, n) == 0) return;
    for (off = 0; off < n && pa[off] == pb[off]; off++) {
    }
    cb__head(file, line, expr);
    fprintf(stderr, ": first difference at offset %lu of %lu: 0x%02x != 0x%02x\n",
            (unsigned long)off, (unsigned long)n, (unsigned)pa[off], (unsigned)pb[off]);
    from = off - off % 16;
    to = from + 16 < n ? from + 16 : n;
    cb__dump_row("a", pa, from, to, off);
    cb__dump_row("b", pb, from, to, off);
    cb__end_case();
}

CB__UNUSED static void cb__check_near(const char *file, int line, const char *expr,
                                      double a, double b, double eps) {
    double d = a - b;
    if (d < 0) d = -d;
    /* Written so that any NaN (a, b or eps) lands in the failure branch. */
    if (d <= eps) return;
    cb__head(file, line, expr);
    fprintf(stderr, ": %.17g and %.17g differ by %.17g, more than %.17g\n", a, b, d, eps);
    cb__end_case();
}

/* ---- assertion macros ------------------------------------------------------------ */

#define CB_ASSERT(cond)                                                                    \
    do {                                                                                   \
        if (!(cond)) cb__fail_bool(__FILE__, __LINE__, "CB_ASSERT(" #cond ")");            \
    } while (0)

#define CB_FAIL(msg) cb__fail_msg(__FILE__, __LINE__, "CB_FAIL", (msg))

#define CB_ASSERT_EQ_INT(a, b)                                                             \
    cb__check_int(__FILE__, __LINE__, "CB_ASSERT_EQ_INT(" #a ", " #b ")",                  \
                  (long long)(a), (long long)(b))

#define CB_ASSERT_EQ_UINT(a, b)                                                            \
    cb__check_uint(__FILE__, __LINE__, "CB_ASSERT_EQ_UINT(" #a ", " #b ")",                \
                   (unsigned long long)(a), (unsigned long long)(b))

#define CB_ASSERT_EQ_STR(a, b)                                                             \
    cb__check_str(__FILE__, __LINE__, "CB_ASSERT_EQ_STR(" #a ", " #b ")", (a), (b))

#define CB_ASSERT_EQ_MEM(a, b, n)                                                          \
    cb__check_mem(__FILE__, __LINE__, "CB_ASSERT_EQ_MEM(" #a ", " #b ", " #n ")", (a),     \
                  (b), (size_t)(n))

#define CB_ASSERT_NEAR(a, b, eps)                                                          \
    cb__check_near(__FILE__, __LINE__, "CB_ASSERT_NEAR(" #a ", " #b ", " #eps ")",         \
                   (double)(a), (double)(b), (double)(eps))

/* ---- running ----------------------------------------------------------------------- */

/* Put the cases in source order, whatever order the constructors ran in: by line
 * within each file, and files (a test file may #include others that define cases)
 * in the order their first case registered. Insertion sort: stable, lists are short. */
CB__UNUSED static void cb__sort_cases(void) {
    size_t i, j;
    for (i = 0; i < cb__state.count; i++) {
        cb__case *c = &cb__state.cases[i];
        c->group = i;
        for (j = 0; j < i; j++) {
            const char *f = cb__state.cases[j].file;
            if (f == c->file || strcmp(f, c->file) == 0) {
                c->group = cb__state.cases[j].group;
                break;
            }
        }
    }
    for (i = 1; i < cb__state.count; i++) {
        cb__case c = cb__state.cases[i];
        for (j = i; j > 0; j--) {
            const cb__case *prev = &cb__state.cases[j - 1];
            if (prev->group < c.group || (prev->group == c.group && prev->line <= c.line)) {
                break;
            }
            cb__state.cases[j] = *prev;
        }
        cb__state.cases[j] = c;
    }
}

/* 0 if the case passed, 1 if an assertion failed. Kept out of line so the setjmp
 * frame is this function's alone; nothing here is modified between setjmp and a
 * longjmp back to it. */
__attribute__((noinline)) CB__UNUSED static int cb__run_case(size_t index) {
    static volatile size_t running;
    running = index;
    cb__state.in_case = 1;
    if (setjmp(cb__state.on_fail) != 0) {
        cb__state.in_case = 0;
        return 1;
    }
    cb__state.cases[running].fn();
    cb__state.in_case = 0;
    return 0;
}

/* A case that calls exit() skips its remaining checks: whatever status it passes, that is
 * not a pass. Registered only where a case runs in a process of its own. */
CB__UNUSED static void cb__exit_during_case(void) {
    if (cb__state.in_case) {
        fflush(stdout);
        fprintf(stderr, "crossbuild_test: the case called exit() before it finished\n");
        fflush(stderr);
        _Exit(4);
    }
}

#ifdef CB__HAVE_FORK
static volatile sig_atomic_t cb__alarm_fired;

static void cb__on_alarm(int sig) {
    (void)sig;
    cb__alarm_fired = 1;
}

static long long cb__micros_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long long)(t1.tv_sec - t0->tv_sec) * 1000000LL + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* Waits for pid; after `seconds` (alarm), SIGTERM to its group, SIGKILL 2 s later.
 * Returns the wait status; *timed_out says whether the alarm fired. */
static int cb__wait_case(pid_t pid, unsigned seconds, int *timed_out) {
    int status = 0, stage = 0;
    *timed_out = 0;
    cb__alarm_fired = 0;
    alarm(seconds);
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (cb__alarm_fired) {
            cb__alarm_fired = 0;
            *timed_out = 1;
            kill(-pid, stage == 0 ? SIGTERM : SIGKILL);
            kill(pid, stage == 0 ? SIGTERM : SIGKILL);
            stage = 1;
            alarm(2);
        }
    }
    alarm(0);
    if (*timed_out) kill(-pid, SIGKILL); /* whatever the case started */
    return status;
}

/* The child side of --run: becomes the case. Never returns. */
CB__NORETURN static void cb__run_child(size_t index, const char *out_path, int devnull) {
    int fd;
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    setpgid(0, 0);
    signal(SIGALRM, SIG_DFL);
    fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _Exit(3);
    if (fd > 2) close(fd);
    if (devnull >= 0) dup2(devnull, 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    atexit(cb__exit_during_case);
    exit(cb__run_case(index));
}

static int cb__run_many(const char *prog, const char *timeout_arg, const char *out_dir) {
    char line[4096], out_path[4096];
    char *end = NULL;
    unsigned long seconds = strtoul(timeout_arg, &end, 10);
    unsigned long n = 0;
    struct sigaction sa;
    struct stat st;
    int devnull;
    if (end == timeout_arg || *end != 0 || seconds < 1 || seconds > 86400) {
        fprintf(stderr, "%s: --run TIMEOUT must be whole seconds, 1 to 86400, got '%s'\n", prog,
                timeout_arg);
        return 2;
    }
    /* stat, not access(): proot answers access() wrongly for some paths */
    if (strlen(out_dir) > sizeof out_path - 32 || stat(out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: --run OUTDIR '%s' is not a folder\n", prog, out_dir);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cb__on_alarm; /* no SA_RESTART: the alarm interrupts waitpid */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setvbuf(stdout, NULL, _IOFBF, 0);
    /* Opened once: every path lookup costs more under proot than the fork itself. */
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    printf("crossbuild-run 1\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line), i, found = (size_t)-1;
        struct timespec t0;
        pid_t pid;
        int status, timed_out;
        long long us;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        for (i = 0; i < cb__state.count; i++) {
            if (strcmp(cb__state.cases[i].name, line) == 0) {
                found = i;
                break;
            }
        }
        if (found == (size_t)-1) {
            printf("%lu missing 0 0\n", n++);
            fflush(stdout);
            continue;
        }
        snprintf(out_path, sizeof out_path, "%s/%lu", out_dir, n);
        fflush(stdout);
        fflush(stderr);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid = fork();
        if (pid < 0) {
            fprintf(stderr, "%s: fork failed: %s\n", prog, strerror(errno));
            return 3;
        }
        if (pid == 0) cb__run_child(found, out_path, devnull);
        status = cb__wait_case(pid, (unsigned)seconds, &timed_out);
        us = cb__micros_since(&t0);
        if (timed_out) {
            printf("%lu timeout %d %lld\n", n, WIFSIGNALED(status) ? WTERMSIG(status) : 0, us);
        } else if (WIFSIGNALED(status)) {
            printf("%lu signal %d %lld\n", n, WTERMSIG(status), us);
        } else {
            printf("%lu exit %d %lld\n", n, WEXITSTATUS(status), us);
        }
        fflush(stdout);
        n++;
    }
    printf("end\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
#endif

CB__UNUSED static void cb__usage(FILE *out, const char *prog) {
    fprintf(out,
            "usage: %s                 run every case, print a summary\n"
            "       %s --list          print the case names, one per line\n"
            "       %s --exact NAME    run the case NAME: exit 0 pass, 1 fail, 2 no such case\n"
            "       %s --run TIMEOUT OUTDIR   run the cases named on stdin, each in a forked\n"
            "                          process, output in OUTDIR/N; one result line per case\n",
            prog, prog, prog, prog);
}

CB__UNUSED static int cb_test_main(int argc, char **argv) {
    const char *prog = (argc > 0 && argv[0] != NULL) ? argv[0] : "test";
    size_t i;

    if (cb__state.dropped > 0) {
        fprintf(stderr,
                "%s: %lu test cases are defined but a binary holds at most %lu; "
                "#define CB_TEST_MAX_CASES to a larger number before including "
                "crossbuild_test.h, or split the file\n",
                prog, (unsigned long)(cb__state.count + cb__state.dropped),
                (unsigned long)CB_TEST_MAX_CASES);
        return 3;
    }
    cb__sort_cases();

    if (argc <= 1) {
        size_t passed = 0, failed = 0;
        /* Unbuffered, so the per-case lines interleave with assertion messages. */
        setvbuf(stdout, NULL, _IONBF, 0);
        for (i = 0; i < cb__state.count; i++) {
            if (cb__run_case(i) == 0) {
                passed++;
                printf("ok   %s\n", cb__state.cases[i].name);
            } else {
                failed++;
                printf("FAIL %s\n", cb__state.cases[i].name);
            }
        }
        printf("%lu passed, %lu failed\n", (unsigned long)passed, (unsigned long)failed);
        return failed == 0 ? 0 : 1;
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < cb__state.count; i++) {
            printf("%s\n", cb__state.cases[i].name);
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "--exact") == 0) {
        for (i = 0; i < cb__state.count; i++) {
            if (strcmp(cb__state.cases[i].name, argv[2]) == 0) {
                /* Keep anything the case prints if it then crashes. */
                setvbuf(stdout, NULL, _IOLBF, 0);
                atexit(cb__exit_during_case);
                return cb__run_case(i);
            }
        }
        fprintf(stderr, "%s: no test case named '%s' (try --list)\n", prog, argv[2]);
        return 2;
    }
#ifdef CB__HAVE_FORK
    if (argc == 4 && strcmp(argv[1], "--run") == 0) {
        return cb__run_many(prog, argv[2], argv[3]);
    }
#endif
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        cb__usage(stdout, prog);
        return 0;
    }
    fprintf(stderr, "%s: unrecognised arguments\n", prog);
    cb__usage(stderr, prog);
    return 2;
}

#ifndef CB_TEST_NO_MAIN
int main(int argc, char **argv) { return cb_test_main(argc, argv); }
#endif

#endif /* CROSSBUILD_TEST_H */
