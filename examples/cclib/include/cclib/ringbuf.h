/*
 * cclib/ringbuf.h - a byte FIFO over caller-provided storage of any size.
 *
 * Nothing is allocated. Writes that do not fit are truncated (the return value says
 * how much went in); reads return what is there. cclib_ringbuf_pop returns the byte as
 * 0..255 and -1 only when empty, so a 0xFF byte is never mistaken for "empty" (as it
 * would be if the byte were passed through a signed char). Not thread-safe.
 */
#ifndef CCLIB_RINGBUF_H
#define CCLIB_RINGBUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cclib_ringbuf {
    unsigned char *buf;
    size_t cap;
    size_t head; /* index of the oldest byte */
    size_t len;  /* bytes stored */
} cclib_ringbuf;

void cclib_ringbuf_init(cclib_ringbuf *rb, void *storage, size_t cap);
void cclib_ringbuf_clear(cclib_ringbuf *rb);
size_t cclib_ringbuf_len(const cclib_ringbuf *rb);
size_t cclib_ringbuf_free(const cclib_ringbuf *rb);
size_t cclib_ringbuf_cap(const cclib_ringbuf *rb);

/* Appends up to n bytes; returns how many were appended (less than n when full). */
size_t cclib_ringbuf_write(cclib_ringbuf *rb, const void *src, size_t n);
/* Removes up to n of the oldest bytes into dst; returns how many. */
size_t cclib_ringbuf_read(cclib_ringbuf *rb, void *dst, size_t n);
/* Copies up to n of the oldest bytes without removing them; returns how many. */
size_t cclib_ringbuf_peek(const cclib_ringbuf *rb, void *dst, size_t n);
/* Discards up to n of the oldest bytes; returns how many. */
size_t cclib_ringbuf_skip(cclib_ringbuf *rb, size_t n);

/* 0 on success, -1 if full. */
int cclib_ringbuf_push(cclib_ringbuf *rb, uint8_t byte);
/* The oldest byte as 0..255, or -1 if empty. */
int cclib_ringbuf_pop(cclib_ringbuf *rb);

/* Offset from the oldest byte of the first occurrence of byte, or -1 if absent
 * (e.g. to see whether a whole '\n'-terminated line has arrived). */
long cclib_ringbuf_find(const cclib_ringbuf *rb, uint8_t byte);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_RINGBUF_H */
