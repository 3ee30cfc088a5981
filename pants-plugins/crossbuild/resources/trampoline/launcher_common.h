/*
 * The part of the trampoline launcher both platforms share: reading and checking the footer
 * (the format is described in trampoline_format.py), growable message strings and the error
 * messages. Included once, at the top of launcher_posix.c and of launcher_windows.c, which
 * define the platform functions declared below.
 */

#ifndef XB_LAUNCHER_COMMON_H
#define XB_LAUNCHER_COMMON_H

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

/* Defined by each platform's file. */
static void *xb_alloc(size_t n);
static void *xb_realloc(void *p, size_t n);
static void xb_free(void *p);
_Noreturn static void xb_fail(int code, const char *utf8, size_t len); /* writes the message, exits */

/* The array p of *cap elements of `size` bytes, grown (doubling, from 256) to
 * hold at least `need`: the growth of sbuf and the Windows file's wbuf.
 * Running out of memory exits with 100. */
static void *xb_grow(void *p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 256;
    while (need > c) c *= 2;
    p = xb_realloc(p, c * size);
    if (!p) {
        static const char oom[] = "crossbuild trampoline: out of memory\n";
        xb_fail(XB_EXIT_SELF, oom, sizeof oom - 1);
    }
    *cap = c;
    return p;
}

/* A growable UTF-8 byte string; running out of memory exits with 100. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    b->p = xb_grow(b->p, &b->cap, b->n + n + 1, 1);
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

#endif
