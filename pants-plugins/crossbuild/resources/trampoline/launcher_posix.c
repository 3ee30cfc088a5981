/*
 * The trampoline launcher on Linux (static, musl). See launcher.c.
 *
 * Interpreter lookup. Kind 0: the spec as is (must be absolute). Kind 1: the directory of the
 * launcher's real path + the spec. Kind 2: each non-empty PATH entry (never the current
 * directory; /usr/local/bin:/usr/bin:/bin if PATH is unset), first regular file with execute
 * permission wins. Not found: exit 102 listing every candidate path tried.
 *
 * execv(interpreter, [interpreter, <launcher path>, args...]); the launcher path comes from
 * /proc/self/exe (AT_EXECFN if /proc is missing), nothing is left running besides the
 * interpreter.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pread, readlink, strdup, getauxval */
#endif

#include "launcher_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static void *xb_alloc(size_t n) { return malloc(n); }
static void *xb_realloc(void *p, size_t n) { return realloc(p, n); }
static void xb_free(void *p) { free(p); }

_Noreturn static void xb_fail(int code, const char *utf8, size_t len) {
    while (len) {
        ssize_t w = write(2, utf8, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        utf8 += w;
        len -= (size_t)w;
    }
    _exit(code);
}

static int read_at_fd(void *ctx, uint64_t off, void *buf, uint32_t n) {
    int fd = *(int *)ctx;
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        off += (uint64_t)r;
        n -= (uint32_t)r;
    }
    return 0;
}

static char *self_path(void) {
    for (size_t cap = 256; cap <= (1u << 20); cap *= 2) {
        char *buf = malloc(cap);
        if (!buf) break;
        ssize_t n = readlink("/proc/self/exe", buf, cap);
        if (n < 0) {
            free(buf);
            break;
        }
        if ((size_t)n < cap) {
            buf[n] = 0;
            return buf;
        }
        free(buf);
    }
    /* No /proc: the path given to execve, valid as long as we did not chdir. */
    const char *fn = (const char *)getauxval(AT_EXECFN);
    if (fn && *fn) return strdup(fn);
    return 0;
}

static int is_executable_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *join(const char *dir, size_t dirlen, const char *name) {
    size_t nl = strlen(name);
    char *p = malloc(dirlen + 1 + nl + 1);
    if (!p) return 0;
    memcpy(p, dir, dirlen);
    size_t k = dirlen;
    if (k == 0 || p[k - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, nl + 1);
    return p;
}

static char *resolve(const char *self, const footer_t *ft) {
    sbuf tried = {0};
    int ntried = 0;
    const char *spec = ft->spec;
    if (ft->kind == XB_KIND_ABSOLUTE) {
        if (spec[0] != '/')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: interpreter is not an absolute path: ", spec);
        if (is_executable_file(spec)) return strdup(spec);
        sb_str(&tried, "\n  ");
        sb_str(&tried, spec);
        not_found(self, ft, &tried, 1, 0);
    }
    if (ft->kind == XB_KIND_RELATIVE) {
        if (spec[0] == '/')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: relative interpreter path is absolute: ", spec);
        const char *slash = strrchr(self, '/');
        char *cand = slash ? join(self, (size_t)(slash - self), spec) : join(".", 1, spec);
        if (!cand) die2(XB_EXIT_SELF, self, "out of memory", 0);
        if (is_executable_file(cand)) return cand;
        sb_str(&tried, "\n  ");
        sb_str(&tried, cand);
        not_found(self, ft, &tried, 1, 0);
    }
    /* XB_KIND_PATH */
    if (strchr(spec, '/'))
        die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: PATH interpreter name contains '/': ", spec);
    const char *path = getenv("PATH");
    const char *extra = 0;
    if (!path) {
        path = "/usr/local/bin:/usr/bin:/bin";
        extra = " (PATH is unset; searched /usr/local/bin:/usr/bin:/bin)";
    }
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) { /* empty entries (the current directory) are skipped */
            char *cand = join(p, len, spec);
            if (!cand) die2(XB_EXIT_SELF, self, "out of memory", 0);
            if (is_executable_file(cand)) return cand;
            sb_str(&tried, "\n  ");
            sb_str(&tried, cand);
            ntried++;
            free(cand);
        }
        if (!end) break;
        p = end + 1;
    }
    if (!ntried && !extra) extra = " (PATH has no directories)";
    not_found(self, ft, &tried, ntried, extra);
    return 0;
}

int main(int argc, char **argv) {
    char *self = self_path();
    if (!self) die2(XB_EXIT_SELF, 0, "cannot find its own executable (/proc/self/exe and AT_EXECFN unavailable)", 0);
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) die2(XB_EXIT_SELF, self, "cannot open its own file: ", strerror(errno));
    footer_t ft;
    read_footer(read_at_fd, &fd, (uint64_t)st.st_size, self, &ft);
    close(fd);
    char *interp = resolve(self, &ft);

    char **args = malloc(((size_t)(argc > 0 ? argc : 1) + 2) * sizeof *args);
    if (!args) die2(XB_EXIT_SELF, self, "out of memory", 0);
    size_t k = 0;
    args[k++] = interp;
    args[k++] = self;
    for (int i = 1; i < argc; i++) args[k++] = argv[i];
    args[k] = 0;
    execv(interp, args);
    int err = errno;
    sbuf b = {0};
    sb_intro(&b, self);
    sb_str(&b, "cannot execute interpreter ");
    sb_str(&b, interp);
    sb_str(&b, ": ");
    sb_str(&b, strerror(err));
    die(XB_EXIT_EXEC, &b);
    return XB_EXIT_EXEC;
}
