#include "cclib/ringbuf.h"

#include <string.h>

void cclib_ringbuf_init(cclib_ringbuf *rb, void *storage, size_t cap) {
    rb->buf = (unsigned char *)storage;
    rb->cap = storage != NULL ? cap : 0;
    rb->head = 0;
    rb->len = 0;
}

void cclib_ringbuf_clear(cclib_ringbuf *rb) {
    rb->head = 0;
    rb->len = 0;
}

size_t cclib_ringbuf_len(const cclib_ringbuf *rb) { return rb->len; }
size_t cclib_ringbuf_free(const cclib_ringbuf *rb) { return rb->cap - rb->len; }
size_t cclib_ringbuf_cap(const cclib_ringbuf *rb) { return rb->cap; }

size_t cclib_ringbuf_write(cclib_ringbuf *rb, const void *src, size_t n) {
    const unsigned char *in = (const unsigned char *)src;
    size_t room = rb->cap - rb->len, tail, first;
    if (n > room) n = room;
    if (n == 0) return 0;
    tail = (rb->head + rb->len) % rb->cap;
    first = rb->cap - tail < n ? rb->cap - tail : n; /* up to the end of storage */
    memcpy(rb->buf + tail, in, first);
    memcpy(rb->buf, in + first, n - first); /* the wrapped-around rest, maybe none */
    rb->len += n;
    return n;
}

size_t cclib_ringbuf_peek(const cclib_ringbuf *rb, void *dst, size_t n) {
    unsigned char *out = (unsigned char *)dst;
    size_t first;
    if (n > rb->len) n = rb->len;
    if (n == 0) return 0;
    first = rb->cap - rb->head < n ? rb->cap - rb->head : n;
    memcpy(out, rb->buf + rb->head, first);
    memcpy(out + first, rb->buf, n - first);
    return n;
}

size_t cclib_ringbuf_skip(cclib_ringbuf *rb, size_t n) {
    if (n > rb->len) n = rb->len;
    if (n == 0) return 0;
    rb->head = (rb->head + n) % rb->cap;
    rb->len -= n;
    if (rb->len == 0) rb->head = 0; /* keep later writes contiguous */
    return n;
}

size_t cclib_ringbuf_read(cclib_ringbuf *rb, void *dst, size_t n) {
    return cclib_ringbuf_skip(rb, cclib_ringbuf_peek(rb, dst, n));
}

int cclib_ringbuf_push(cclib_ringbuf *rb, uint8_t byte) {
    return cclib_ringbuf_write(rb, &byte, 1) == 1 ? 0 : -1;
}

int cclib_ringbuf_pop(cclib_ringbuf *rb) {
    unsigned char byte;
    if (cclib_ringbuf_read(rb, &byte, 1) != 1) return -1;
    return byte;
}

long cclib_ringbuf_find(const cclib_ringbuf *rb, uint8_t byte) {
    size_t i;
    for (i = 0; i < rb->len; i++) {
        if (rb->buf[(rb->head + i) % rb->cap] == byte) return (long)i;
    }
    return -1;
}
