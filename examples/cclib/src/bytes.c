#include "cclib/bytes.h"

#include <string.h>

/* Each byte is widened to the result type before shifting: shifting a promoted
 * (signed int) byte >= 0x80 left by 24 would overflow int. */

uint16_t cclib_load_le16(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint16_t)((uint16_t)b[0] | (uint16_t)((uint16_t)b[1] << 8));
}

uint32_t cclib_load_le32(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}

uint64_t cclib_load_le64(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint64_t)cclib_load_le32(b) | ((uint64_t)cclib_load_le32(b + 4) << 32);
}

uint16_t cclib_load_be16(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return (uint16_t)((uint16_t)(b[0] << 8) | (uint16_t)b[1]);
}

uint32_t cclib_load_be32(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) |
           (uint32_t)b[3];
}

uint64_t cclib_load_be64(const void *p) {
    const unsigned char *b = (const unsigned char *)p;
    return ((uint64_t)cclib_load_be32(b) << 32) | (uint64_t)cclib_load_be32(b + 4);
}

void cclib_store_le16(void *p, uint16_t v) {
    unsigned char *b = (unsigned char *)p;
    b[0] = (unsigned char)(v & 0xffu);
    b[1] = (unsigned char)(v >> 8);
}

void cclib_store_le32(void *p, uint32_t v) {
    unsigned char *b = (unsigned char *)p;
    b[0] = (unsigned char)(v & 0xffu);
    b[1] = (unsigned char)((v >> 8) & 0xffu);
    b[2] = (unsigned char)((v >> 16) & 0xffu);
    b[3] = (unsigned char)(v >> 24);
}

void cclib_store_le64(void *p, uint64_t v) {
    unsigned char *b = (unsigned char *)p;
    cclib_store_le32(b, (uint32_t)(v & 0xffffffffu));
    cclib_store_le32(b + 4, (uint32_t)(v >> 32));
}

void cclib_store_be16(void *p, uint16_t v) {
    unsigned char *b = (unsigned char *)p;
    b[0] = (unsigned char)(v >> 8);
    b[1] = (unsigned char)(v & 0xffu);
}

void cclib_store_be32(void *p, uint32_t v) {
    unsigned char *b = (unsigned char *)p;
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)((v >> 16) & 0xffu);
    b[2] = (unsigned char)((v >> 8) & 0xffu);
    b[3] = (unsigned char)(v & 0xffu);
}

void cclib_store_be64(void *p, uint64_t v) {
    unsigned char *b = (unsigned char *)p;
    cclib_store_be32(b, (uint32_t)(v >> 32));
    cclib_store_be32(b + 4, (uint32_t)(v & 0xffffffffu));
}

/* memcpy to/from a properly aligned local is the portable unaligned access: the
 * compiler turns it into a single load/store where the CPU allows it (x86-64 and
 * AArch64 both do) without the undefined behaviour of a misaligned pointer cast. */
uint32_t cclib_load_u32_native(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

uint64_t cclib_load_u64_native(const void *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

void cclib_store_u32_native(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

void cclib_store_u64_native(void *p, uint64_t v) { memcpy(p, &v, sizeof v); }

int cclib_host_is_little_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

uint16_t cclib_bswap16(uint16_t v) { return (uint16_t)((v >> 8) | (v << 8)); }

uint32_t cclib_bswap32(uint32_t v) {
    return ((v & 0x000000ffu) << 24) | ((v & 0x0000ff00u) << 8) | ((v & 0x00ff0000u) >> 8) |
           ((v & 0xff000000u) >> 24);
}

uint64_t cclib_bswap64(uint64_t v) {
    return ((uint64_t)cclib_bswap32((uint32_t)(v & 0xffffffffu)) << 32) |
           (uint64_t)cclib_bswap32((uint32_t)(v >> 32));
}

/* ---- reader ---- */

void cclib_reader_init(cclib_reader *r, const void *data, size_t len) {
    r->data = (const unsigned char *)data;
    r->len = data != NULL ? len : 0;
    r->pos = 0;
    r->failed = 0;
}

size_t cclib_reader_remaining(const cclib_reader *r) { return r->len - r->pos; }

int cclib_reader_failed(const cclib_reader *r) { return r->failed; }

static const unsigned char *reader_take(cclib_reader *r, size_t n) {
    const unsigned char *p;
    if (r->failed || n > r->len - r->pos) {
        r->failed = 1;
        return NULL;
    }
    p = r->data + r->pos;
    r->pos += n;
    return p;
}

uint8_t cclib_read_u8(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 1);
    return p != NULL ? p[0] : 0;
}

uint16_t cclib_read_be16(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 2);
    return p != NULL ? cclib_load_be16(p) : 0;
}

uint32_t cclib_read_be32(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 4);
    return p != NULL ? cclib_load_be32(p) : 0;
}

uint64_t cclib_read_be64(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 8);
    return p != NULL ? cclib_load_be64(p) : 0;
}

uint16_t cclib_read_le16(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 2);
    return p != NULL ? cclib_load_le16(p) : 0;
}

uint32_t cclib_read_le32(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 4);
    return p != NULL ? cclib_load_le32(p) : 0;
}

uint64_t cclib_read_le64(cclib_reader *r) {
    const unsigned char *p = reader_take(r, 8);
    return p != NULL ? cclib_load_le64(p) : 0;
}

int cclib_read_bytes(cclib_reader *r, void *dst, size_t n) {
    const unsigned char *p;
    if (n == 0) return r->failed ? -1 : 0; /* data may be NULL: no pointer arithmetic */
    p = reader_take(r, n);
    if (p == NULL) return -1;
    memcpy(dst, p, n);
    return 0;
}

/* ---- writer ---- */

void cclib_writer_init(cclib_writer *w, void *data, size_t cap) {
    w->data = (unsigned char *)data;
    w->cap = data != NULL ? cap : 0;
    w->pos = 0;
    w->failed = 0;
}

size_t cclib_writer_len(const cclib_writer *w) { return w->pos; }

int cclib_writer_failed(const cclib_writer *w) { return w->failed; }

static unsigned char *writer_take(cclib_writer *w, size_t n) {
    unsigned char *p;
    if (w->failed || n > w->cap - w->pos) {
        w->failed = 1;
        return NULL;
    }
    p = w->data + w->pos;
    w->pos += n;
    return p;
}

void cclib_write_u8(cclib_writer *w, uint8_t v) {
    unsigned char *p = writer_take(w, 1);
    if (p != NULL) p[0] = v;
}

void cclib_write_be16(cclib_writer *w, uint16_t v) {
    unsigned char *p = writer_take(w, 2);
    if (p != NULL) cclib_store_be16(p, v);
}

void cclib_write_be32(cclib_writer *w, uint32_t v) {
    unsigned char *p = writer_take(w, 4);
    if (p != NULL) cclib_store_be32(p, v);
}

void cclib_write_be64(cclib_writer *w, uint64_t v) {
    unsigned char *p = writer_take(w, 8);
    if (p != NULL) cclib_store_be64(p, v);
}

void cclib_write_le16(cclib_writer *w, uint16_t v) {
    unsigned char *p = writer_take(w, 2);
    if (p != NULL) cclib_store_le16(p, v);
}

void cclib_write_le32(cclib_writer *w, uint32_t v) {
    unsigned char *p = writer_take(w, 4);
    if (p != NULL) cclib_store_le32(p, v);
}

void cclib_write_le64(cclib_writer *w, uint64_t v) {
    unsigned char *p = writer_take(w, 8);
    if (p != NULL) cclib_store_le64(p, v);
}

void cclib_write_bytes(cclib_writer *w, const void *src, size_t n) {
    unsigned char *p;
    if (n == 0) return;
    p = writer_take(w, n);
    if (p != NULL) memcpy(p, src, n);
}
