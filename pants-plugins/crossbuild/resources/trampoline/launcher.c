/*
 * crossbuild trampoline launcher (C11, one file, Linux and Windows).
 *
 * A trampoline is this launcher with a Python program appended to it. It
 * finds an interpreter and runs it with the trampoline file itself as the
 * script: Python's zipimport finds __main__.py in the zip appended to the
 * executable (a zip with a prefix is fine for zipimport, CPython >= 3.8).
 *
 * File layout (all integers little-endian):
 *
 *   +--------------------------------------------------------------+
 *   | launcher executable (this program, as linked)                 |
 *   +--------------------------------------------------------------+
 *   | payload: a zip archive, offsets relative to its own start,    |
 *   | holding __main__.py and the bundled modules. Its end of       |
 *   | central directory record (EOCD, the payload's last 22 bytes)  |
 *   | declares a comment length of spec_len + 32: the interpreter   |
 *   | spec and the fixed footer below ARE the zip's comment, so the |
 *   | whole file is a well-formed (self-extracting style) zip.      |
 *   +--------------------------------------------------------------+
 *   | interpreter spec: spec_len bytes of UTF-8, no NUL             |
 *   +--------------------------------------------------------------+
 *   | fixed footer, 32 bytes, the last bytes of the file:           |
 *   |   offset  0  u8[8]  magic "XBTRAMP1"                          |
 *   |   offset  8  u32    format version (1)                        |
 *   |   offset 12  u32    interpreter kind                          |
 *   |                       0 = absolute path                       |
 *   |                       1 = path relative to the directory      |
 *   |                           holding the launcher ('/' or '\')   |
 *   |                       2 = bare name looked up on PATH         |
 *   |   offset 16  u32    spec_len (1 .. 32768)                     |
 *   |   offset 20  u32    flags, must be 0 in version 1             |
 *   |   offset 24  u64    payload_len (bytes of the zip, >= 22)     |
 *   +--------------------------------------------------------------+
 *
 * trampoline_format.py (beside the plugin) writes this layout; keep the two
 * in step.
 *
 * Exit codes of the launcher itself (once the interpreter runs, its exit
 * code is the trampoline's):
 *   100  the launcher cannot find, open or read its own file (or no memory)
 *   101  no trampoline footer: a bare launcher, or a file truncated at its end
 *   102  interpreter not found (the message lists every candidate tried)
 *   103  interpreter found but could not be started (execv/CreateProcessW)
 *   104  corrupt or unsupported footer/payload: unknown version, kind or
 *        flags, lengths exceeding the file, payload not a zip, invalid spec
 *
 * Interpreter lookup. Kind 0: the spec as is (must be absolute). Kind 1: the
 * directory of the launcher's real path + the spec ('/' becomes '\' on
 * Windows). Kind 2, Linux: each non-empty PATH entry (never the current
 * directory; /usr/local/bin:/usr/bin:/bin if PATH is unset), first regular
 * file with execute permission wins; Windows: each non-empty PATH entry,
 * quotes removed, with ".exe" appended to the name unless it ends with it.
 * Not found: exit 102 listing every candidate path tried.
 *
 * Linux: execv(interpreter, [interpreter, <launcher path>, args...]); the
 * launcher path comes from /proc/self/exe (AT_EXECFN if /proc is missing),
 * nothing is left running besides the interpreter.
 *
 * Windows: CreateProcessW of `"interpreter" "launcher path" <args>`, where
 * <args> is the launcher's own command line after its program name, passed
 * on verbatim (so the child parses exactly what the caller wrote, whatever
 * its quoting); the two inserted paths are quoted by the MSVCRT rules. The
 * child is put in a job object with KILL_ON_JOB_CLOSE (it dies with the
 * launcher; SILENT_BREAKAWAY_OK leaves its own children alone, as py.exe,
 * distlib and uv do), Ctrl-C/Ctrl-Break are ignored by the launcher through
 * a handler that returns TRUE (SetConsoleCtrlHandler(NULL, TRUE) would be
 * inherited and make the child ignore Ctrl-C too), and the launcher exits
 * with the child's exit code. No C runtime: only KERNEL32 is imported, and
 * USER32 is loaded at run time in GUI builds only (error dialog, busy
 * cursor). Console or GUI is chosen at link time with
 * -Wl,--subsystem,console|windows; the launcher reads its own PE header to
 * know which.
 *
 * Build (launcher_build_commands() in trampoline_format.py makes these):
 *   zig cc -target x86_64-linux-musl -std=c11 -Os -ffunction-sections
 *          -fdata-sections -g0 -s -Wl,--gc-sections launcher.c -o launcher
 *   zig cc -target x86_64-windows-gnu -std=c11 -Os -ffunction-sections
 *          -fdata-sections -g0 -c launcher.c -o launcher.o
 *   zig cc -target x86_64-windows-gnu -nostdlib -s -Wl,--gc-sections
 *          -Wl,--entry,xb_entry -Wl,--subsystem,console -Wl,-Brepro
 *          launcher.o -lkernel32 -o launcher.exe
 * -Wl,-Brepro matters: zig passes it to lld-link only when it links a C
 * runtime; without it the COFF TimeDateStamp is the time of the link.
 */

#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* pread, readlink, strdup, getauxval */
#endif

#include <stddef.h>
#include <stdint.h>

#define XB_MAGIC "XBTRAMP1"
#define XB_FOOTER_SIZE 32u
#define XB_VERSION 1u
#define XB_MAX_SPEC 32768u
#define XB_EOCD_SIZE 22u

enum {
    XB_EXIT_SELF = 100,
    XB_EXIT_NO_FOOTER = 101,
    XB_EXIT_NOT_FOUND = 102,
    XB_EXIT_EXEC = 103,
    XB_EXIT_CORRUPT = 104,
};

enum { XB_KIND_ABSOLUTE = 0, XB_KIND_RELATIVE = 1, XB_KIND_PATH = 2 };

/* ------------------------------------------------------------------------ */
/* Helpers shared by both platforms (no libc string functions on Windows). */

static size_t xb_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static int xb_memeq(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return 0;
    return 1;
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void *xb_alloc(size_t n);
static void *xb_realloc(void *p, size_t n);
static void xb_free(void *p);
_Noreturn static void xb_fail(int code, const char *utf8, size_t len); /* writes the message, exits */

/* A growable UTF-8 byte string; running out of memory exits with 100. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = xb_realloc(b->p, cap);
        if (!p) {
            static const char oom[] = "crossbuild trampoline: out of memory\n";
            xb_fail(XB_EXIT_SELF, oom, sizeof oom - 1);
        }
        b->p = p;
        b->cap = cap;
    }
    for (size_t i = 0; i < n; i++) b->p[b->n + i] = s[i];
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, xb_strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_add(b, tmp + i, sizeof tmp - i);
}

/* Starts an error message: "crossbuild trampoline (<self>): ". */
static void sb_intro(sbuf *b, const char *self_utf8) {
    sb_str(b, "crossbuild trampoline");
    if (self_utf8) {
        sb_str(b, " (");
        sb_str(b, self_utf8);
        sb_str(b, ")");
    }
    sb_str(b, ": ");
}

_Noreturn static void die(int code, sbuf *b) {
    sb_str(b, "\n");
    xb_fail(code, b->p, b->n);
}

_Noreturn static void die2(int code, const char *self_utf8, const char *a, const char *c) {
    sbuf b = {0};
    sb_intro(&b, self_utf8);
    sb_str(&b, a);
    if (c) sb_str(&b, c);
    die(code, &b);
}

/* What the footer says, once validated. */
typedef struct {
    uint32_t kind;
    uint32_t spec_len;
    uint64_t payload_len;
    uint64_t payload_offset;
    char *spec; /* NUL-terminated copy of the spec */
} footer_t;

/* Reads n bytes at offset off of the launcher's own file; 0 on success. */
typedef int (*read_at_fn)(void *ctx, uint64_t off, void *buf, uint32_t n);

/* Validates the footer (and the payload's zip framing) of a file of the given
 * size. Exits with 101 or 104 and a message on any problem. */
static void read_footer(read_at_fn read_at, void *ctx, uint64_t size, const char *self, footer_t *out) {
    unsigned char f[XB_FOOTER_SIZE];
    if (size < XB_FOOTER_SIZE || read_at(ctx, size - XB_FOOTER_SIZE, f, XB_FOOTER_SIZE) != 0 ||
        !xb_memeq(f, XB_MAGIC, 8))
        die2(XB_EXIT_NO_FOOTER, self,
             "no trampoline payload: the file does not end with the " XB_MAGIC
             " footer (a launcher without a program appended, or a truncated file)",
             0);
    uint32_t version = rd32(f + 8), kind = rd32(f + 12), spec_len = rd32(f + 16), flags = rd32(f + 20);
    uint64_t payload_len = rd64(f + 24);
    sbuf b = {0};
    sb_intro(&b, self);
    if (version != XB_VERSION) {
        sb_str(&b, "corrupt trampoline footer: unsupported format version ");
        sb_u64(&b, version);
        sb_str(&b, " (this launcher reads version 1)");
        die(XB_EXIT_CORRUPT, &b);
    }
    if (kind > XB_KIND_PATH) {
        sb_str(&b, "corrupt trampoline footer: unknown interpreter kind ");
        sb_u64(&b, kind);
        die(XB_EXIT_CORRUPT, &b);
    }
    if (flags != 0) {
        sb_str(&b, "corrupt trampoline footer: unknown flags ");
        sb_u64(&b, flags);
        die(XB_EXIT_CORRUPT, &b);
    }
    if (spec_len == 0 || spec_len > XB_MAX_SPEC) {
        sb_str(&b, "corrupt trampoline footer: interpreter spec length ");
        sb_u64(&b, spec_len);
        sb_str(&b, " is outside 1..32768");
        die(XB_EXIT_CORRUPT, &b);
    }
    uint64_t tail = (uint64_t)XB_FOOTER_SIZE + spec_len;
    if (payload_len < XB_EOCD_SIZE || payload_len > size || size - payload_len < tail ||
        size - payload_len - tail == 0) {
        sb_str(&b, "corrupt trampoline footer: payload length ");
        sb_u64(&b, payload_len);
        sb_str(&b, " + interpreter spec length ");
        sb_u64(&b, spec_len);
        sb_str(&b, " + footer 32 do not fit in the file of ");
        sb_u64(&b, size);
        sb_str(&b, " bytes (truncated or corrupt file)");
        die(XB_EXIT_CORRUPT, &b);
    }
    uint64_t payload_offset = size - tail - payload_len;
    /* The EOCD (its comment is the spec + footer) directly precedes the spec. */
    unsigned char *buf = xb_alloc(XB_EOCD_SIZE + spec_len + 1);
    if (!buf) die2(XB_EXIT_SELF, self, "out of memory", 0);
    unsigned char head[4];
    if (read_at(ctx, size - tail - XB_EOCD_SIZE, buf, XB_EOCD_SIZE + spec_len) != 0 ||
        read_at(ctx, payload_offset, head, 4) != 0)
        die2(XB_EXIT_SELF, self, "cannot read its own file", 0);
    if (!xb_memeq(buf, "PK\5\6", 4) || (uint64_t)(buf[20] | buf[21] << 8) != tail || !xb_memeq(head, "PK\3\4", 4)) {
        sb_str(&b, "corrupt trampoline payload: the ");
        sb_u64(&b, payload_len);
        sb_str(&b, " bytes at offset ");
        sb_u64(&b, payload_offset);
        sb_str(&b, " are not a zip archive whose comment is the footer");
        die(XB_EXIT_CORRUPT, &b);
    }
    char *spec = (char *)buf + XB_EOCD_SIZE;
    for (uint32_t i = 0; i < spec_len; i++)
        if (spec[i] == 0) die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: the interpreter spec contains NUL", 0);
    spec[spec_len] = 0;
    xb_free(b.p);
    out->kind = kind;
    out->spec_len = spec_len;
    out->payload_len = payload_len;
    out->payload_offset = payload_offset;
    out->spec = spec;
}

static const char *kind_name(uint32_t kind) {
    return kind == XB_KIND_ABSOLUTE   ? "absolute path"
           : kind == XB_KIND_RELATIVE ? "path relative to the launcher's directory"
                                      : "name looked up on PATH";
}

/* Message for 102: the spec, how it was looked up, every candidate. */
_Noreturn static void not_found(const char *self, const footer_t *ft, const sbuf *tried, int ntried, const char *extra) {
    sbuf b = {0};
    sb_intro(&b, self);
    sb_str(&b, "interpreter \"");
    sb_str(&b, ft->spec);
    sb_str(&b, "\" (");
    sb_str(&b, kind_name(ft->kind));
    sb_str(&b, ") not found");
    if (extra) sb_str(&b, extra);
    if (ntried) {
        sb_str(&b, "; tried:");
        sb_add(&b, tried->p, tried->n);
    }
    die(XB_EXIT_NOT_FOUND, &b);
}

/* ======================================================================== */
#ifndef _WIN32
/* Linux */

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

/* ======================================================================== */
#else
/* Windows: no C runtime; entry point xb_entry. */

#define WIN32_LEAN_AND_MEAN
#include <windows.h>

/* Without a C runtime, these must be here: the compiler emits calls to them
 * for struct copies, zeroing and loops it recognises. volatile keeps it from
 * turning their own loops back into calls to themselves. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
size_t strlen(const char *s);
size_t wcslen(const wchar_t *s);
size_t strlen(const char *s) {
    const volatile char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}
size_t wcslen(const wchar_t *s) {
    const volatile wchar_t *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}
void *memset(void *dst, int c, size_t n) {
    volatile unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    volatile unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

static void *xb_alloc(size_t n) { return HeapAlloc(GetProcessHeap(), 0, n ? n : 1); }
static void *xb_realloc(void *p, size_t n) {
    return p ? HeapReAlloc(GetProcessHeap(), 0, p, n ? n : 1) : HeapAlloc(GetProcessHeap(), 0, n ? n : 1);
}
static void xb_free(void *p) {
    if (p) HeapFree(GetProcessHeap(), 0, p);
}

static size_t wlen(const wchar_t *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* A growable wide string. */
typedef struct {
    wchar_t *p;
    size_t n, cap;
} wbuf;

static void wb_add(wbuf *b, const wchar_t *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        wchar_t *p = xb_realloc(b->p, cap * sizeof *p);
        if (!p) {
            static const char oom[] = "crossbuild trampoline: out of memory\n";
            xb_fail(XB_EXIT_SELF, oom, sizeof oom - 1);
        }
        b->p = p;
        b->cap = cap;
    }
    for (size_t i = 0; i < n; i++) b->p[b->n + i] = s[i];
    b->n += n;
    b->p[b->n] = 0;
}

static void wb_str(wbuf *b, const wchar_t *s) { wb_add(b, s, wlen(s)); }
static void wb_ch(wbuf *b, wchar_t c) { wb_add(b, &c, 1); }

/* Appends one argument quoted so that CommandLineToArgvW and the MSVCRT/UCRT
 * parsers give it back unchanged: backslashes are literal except before a
 * double quote, where 2n backslashes + quote mean n backslashes and the quote
 * toggles quoting, and 2n+1 + quote mean n backslashes and a literal quote. */
static void wb_quoted(wbuf *b, const wchar_t *arg) {
    int plain = arg[0] != 0;
    for (const wchar_t *p = arg; *p; p++)
        if (*p == L' ' || *p == L'\t' || *p == L'\n' || *p == L'\v' || *p == L'"') plain = 0;
    if (plain) {
        wb_str(b, arg);
        return;
    }
    wb_ch(b, L'"');
    for (const wchar_t *p = arg;; p++) {
        size_t backslashes = 0;
        while (*p == L'\\') {
            p++;
            backslashes++;
        }
        if (!*p) { /* double them: the closing quote follows */
            for (size_t i = 0; i < backslashes * 2; i++) wb_ch(b, L'\\');
            break;
        }
        if (*p == L'"') {
            for (size_t i = 0; i < backslashes * 2 + 1; i++) wb_ch(b, L'\\');
        } else {
            for (size_t i = 0; i < backslashes; i++) wb_ch(b, L'\\');
        }
        wb_ch(b, *p);
    }
    wb_ch(b, L'"');
}

/* The raw command line after the program name, as the UCRT splits it: the
 * program name runs to the first space or tab outside double quotes (quotes
 * toggle, backslashes are not special there). */
static const wchar_t *args_tail(const wchar_t *cmd) {
    int quoted = 0;
    for (; *cmd; cmd++) {
        if (*cmd == L'"')
            quoted = !quoted;
        else if (!quoted && (*cmd == L' ' || *cmd == L'\t'))
            break;
    }
    while (*cmd == L' ' || *cmd == L'\t') cmd++;
    return cmd;
}

static const char *to_utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? xb_alloc((size_t)n) : 0;
    if (!s || WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) return "?";
    return s;
}

static wchar_t *from_utf8(const char *s, size_t len) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, NULL, 0);
    if (n <= 0) return 0;
    wchar_t *w = xb_alloc(((size_t)n + 1) * sizeof *w);
    if (!w) return 0;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, w, n) != n) return 0;
    w[n] = 0;
    return w;
}

static int is_gui(void) {
    const unsigned char *base = (const unsigned char *)GetModuleHandleW(NULL);
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
    return nt->OptionalHeader.Subsystem == IMAGE_SUBSYSTEM_WINDOWS_GUI;
}

static HMODULE user32(void) { return LoadLibraryExW(L"user32.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32); }

typedef int(WINAPI *message_box_fn)(HWND, LPCWSTR, LPCWSTR, UINT);

_Noreturn static void xb_fail(int code, const char *utf8, size_t len) {
    HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
    wchar_t *w = from_utf8(utf8, len);
    DWORD mode, done;
    if (h && h != INVALID_HANDLE_VALUE) {
        if (w && GetConsoleMode(h, &mode))
            WriteConsoleW(h, w, (DWORD)wlen(w), &done, NULL);
        else
            WriteFile(h, utf8, (DWORD)len, &done, NULL);
    } else if (w && is_gui()) { /* a GUI program started without a console */
        HMODULE u = user32();
        message_box_fn box = u ? (message_box_fn)(void (*)(void))GetProcAddress(u, "MessageBoxW") : 0;
        if (box) box(NULL, w, L"crossbuild trampoline", MB_OK | MB_ICONERROR);
    }
    ExitProcess((UINT)code);
}

typedef struct {
    HANDLE h;
} file_ctx;

static int read_at_handle(void *ctx, uint64_t off, void *buf, uint32_t n) {
    HANDLE h = ((file_ctx *)ctx)->h;
    char *p = buf;
    while (n) {
        OVERLAPPED ov = {0};
        ov.Offset = (DWORD)off;
        ov.OffsetHigh = (DWORD)(off >> 32);
        DWORD got = 0;
        if (!ReadFile(h, p, n, &got, &ov) || got == 0) return -1;
        p += got;
        off += got;
        n -= got;
    }
    return 0;
}

static wchar_t *self_path(void) {
    for (DWORD cap = 260; cap <= 65536; cap *= 2) {
        wchar_t *buf = xb_alloc(cap * sizeof *buf);
        if (!buf) return 0;
        DWORD n = GetModuleFileNameW(NULL, buf, cap);
        if (n == 0) return 0;
        if (n < cap) return buf;
        xb_free(buf);
    }
    return 0;
}

static int file_exists(const wchar_t *p) {
    DWORD a = GetFileAttributesW(p);
    return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

static void add_tried(sbuf *tried, const wchar_t *cand) {
    sb_str(tried, "\n  ");
    sb_str(tried, to_utf8(cand));
}

static int is_absolute_w(const wchar_t *p) {
    if ((p[0] == L'\\' || p[0] == L'/') && (p[1] == L'\\' || p[1] == L'/')) return 1; /* UNC, \\?\ */
    return ((p[0] >= L'A' && p[0] <= L'Z') || (p[0] >= L'a' && p[0] <= L'z')) && p[1] == L':' &&
           (p[2] == L'\\' || p[2] == L'/');
}

static int ends_with_exe(const wchar_t *p, size_t n) {
    if (n < 4) return 0;
    const wchar_t *e = p + n - 4;
    return e[0] == L'.' && (e[1] | 32) == L'e' && (e[2] | 32) == L'x' && (e[3] | 32) == L'e';
}

static wchar_t *resolve(const wchar_t *self_w, const char *self, const footer_t *ft) {
    sbuf tried = {0};
    int ntried = 0;
    wchar_t *spec = from_utf8(ft->spec, ft->spec_len);
    if (!spec) die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: the interpreter spec is not UTF-8", 0);
    if (ft->kind != XB_KIND_PATH)
        for (wchar_t *p = spec; *p; p++)
            if (*p == L'/') *p = L'\\';
    if (ft->kind == XB_KIND_ABSOLUTE) {
        if (!is_absolute_w(spec))
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: interpreter is not an absolute path: ", ft->spec);
        if (file_exists(spec)) return spec;
        add_tried(&tried, spec);
        not_found(self, ft, &tried, 1, 0);
    }
    if (ft->kind == XB_KIND_RELATIVE) {
        if (is_absolute_w(spec) || spec[0] == L'\\')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: relative interpreter path is absolute: ", ft->spec);
        size_t dir = wlen(self_w);
        while (dir && self_w[dir - 1] != L'\\' && self_w[dir - 1] != L'/') dir--;
        wbuf c = {0};
        wb_add(&c, self_w, dir);
        wb_str(&c, spec);
        if (file_exists(c.p)) return c.p;
        add_tried(&tried, c.p);
        not_found(self, ft, &tried, 1, 0);
    }
    /* XB_KIND_PATH: each PATH entry (quotes removed, empty ones skipped),
     * with ".exe" appended unless the name already ends with it. */
    for (wchar_t *p = spec; *p; p++)
        if (*p == L'/' || *p == L'\\' || *p == L':')
            die2(XB_EXIT_CORRUPT, self, "corrupt trampoline footer: PATH interpreter name is a path: ", ft->spec);
    size_t speclen = wlen(spec);
    int add_exe = !ends_with_exe(spec, speclen);
    DWORD need = GetEnvironmentVariableW(L"PATH", NULL, 0);
    wchar_t *path = need ? xb_alloc((need + 1) * sizeof *path) : 0;
    if (!path || GetEnvironmentVariableW(L"PATH", path, need + 1) == 0) {
        not_found(self, ft, &tried, 0, " (PATH is not set)");
    }
    for (wchar_t *p = path;;) {
        wchar_t *end = p;
        while (*end && *end != L';') end++;
        wbuf c = {0};
        for (wchar_t *q = p; q < end; q++)
            if (*q != L'"') wb_ch(&c, *q);
        if (c.n) {
            if (c.p[c.n - 1] != L'\\' && c.p[c.n - 1] != L'/') wb_ch(&c, L'\\');
            wb_str(&c, spec);
            if (add_exe) wb_str(&c, L".exe");
            if (file_exists(c.p)) return c.p;
            add_tried(&tried, c.p);
            ntried++;
            xb_free(c.p);
        }
        if (!*end) break;
        p = end + 1;
    }
    not_found(self, ft, &tried, ntried, ntried ? 0 : " (PATH has no directories)");
    return 0;
}

static BOOL WINAPI ignore_ctrl(DWORD type) {
    (void)type;
    return TRUE; /* the child, on the same console, gets the event and decides */
}

static HANDLE inheritable(DWORD which) {
    HANDLE h = GetStdHandle(which), dup = NULL;
    if (!h || h == INVALID_HANDLE_VALUE) return NULL;
    if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, 0, TRUE, DUPLICATE_SAME_ACCESS))
        return NULL;
    return dup;
}

typedef BOOL(WINAPI *post_message_fn)(HWND, UINT, WPARAM, LPARAM);
typedef BOOL(WINAPI *get_message_fn)(LPMSG, HWND, UINT, UINT);

/* Windows shows the "app starting" cursor until a GUI program pumps
 * messages; the launcher never does, so do it once. */
static void clear_busy_cursor(void) {
    HMODULE u = user32();
    if (!u) return;
    post_message_fn post = (post_message_fn)(void (*)(void))GetProcAddress(u, "PostMessageW");
    get_message_fn get = (get_message_fn)(void (*)(void))GetProcAddress(u, "GetMessageW");
    if (post && get) {
        MSG msg;
        post(NULL, 0, 0, 0);
        get(&msg, NULL, 0, 0);
    }
}

void xb_entry(void);
void xb_entry(void) {
    wchar_t *self_w = self_path();
    if (!self_w) die2(XB_EXIT_SELF, 0, "cannot find its own executable (GetModuleFileNameW failed)", 0);
    const char *self = to_utf8(self_w);
    file_ctx fc;
    fc.h = CreateFileW(self_w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER size;
    if (fc.h == INVALID_HANDLE_VALUE || !GetFileSizeEx(fc.h, &size))
        die2(XB_EXIT_SELF, self, "cannot open its own file", 0);
    footer_t ft;
    read_footer(read_at_handle, &fc, (uint64_t)size.QuadPart, self, &ft);
    CloseHandle(fc.h);
    wchar_t *interp = resolve(self_w, self, &ft);

    wbuf cmd = {0};
    wb_quoted(&cmd, interp);
    wb_ch(&cmd, L' ');
    wb_quoted(&cmd, self_w);
    const wchar_t *tail = args_tail(GetCommandLineW());
    if (*tail) {
        wb_ch(&cmd, L' ');
        wb_str(&cmd, tail);
    }

    HANDLE job = CreateJobObjectW(NULL, NULL);
    if (job) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION info = {0};
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK;
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &info, sizeof info);
    }
    SetConsoleCtrlHandler(ignore_ctrl, TRUE);

    STARTUPINFOW si;
    GetStartupInfoW(&si);
    si.cb = sizeof si;
    si.lpReserved = NULL;
    si.lpReserved2 = NULL; /* CRT file-descriptor blocks meant for the launcher */
    si.cbReserved2 = 0;
    /* hStdInput doubles as the hotkey/monitor of STARTF_USEHOTKEY (0x200) and
     * STARTF_MONITOR (0x400): those cannot travel with standard handles. */
    si.dwFlags = (si.dwFlags & ~(DWORD)0x600) | STARTF_USESTDHANDLES;
    si.hStdInput = inheritable(STD_INPUT_HANDLE);
    si.hStdOutput = inheritable(STD_OUTPUT_HANDLE);
    si.hStdError = inheritable(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    if (!CreateProcessW(interp, cmd.p, NULL, NULL, TRUE, CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT, NULL, NULL,
                        &si, &pi)) {
        DWORD err = GetLastError();
        sbuf b = {0};
        sb_intro(&b, self);
        sb_str(&b, "cannot start interpreter ");
        sb_str(&b, to_utf8(interp));
        sb_str(&b, ": error ");
        sb_u64(&b, err);
        wchar_t *text = NULL;
        if (FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                           NULL, err, 0, (LPWSTR)&text, 0, NULL) &&
            text) {
            size_t n = wlen(text);
            while (n && (text[n - 1] == L'\r' || text[n - 1] == L'\n' || text[n - 1] == L' ')) text[--n] = 0;
            sb_str(&b, " (");
            sb_str(&b, to_utf8(text));
            sb_str(&b, ")");
        }
        die(XB_EXIT_EXEC, &b);
    }
    if (job) AssignProcessToJobObject(job, pi.hProcess); /* best effort: nested jobs need Windows 8 */
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    if (si.hStdInput) CloseHandle(si.hStdInput);
    if (si.hStdOutput) CloseHandle(si.hStdOutput);
    if (si.hStdError) CloseHandle(si.hStdError);
    if (is_gui()) clear_busy_cursor();
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    ExitProcess(code);
}

#endif
