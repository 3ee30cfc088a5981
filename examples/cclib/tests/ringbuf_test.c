/* The byte ring buffer: wrap-around, partial writes and reads, and a long randomised
 * run checked against a trivially correct model. */
#include "crossbuild_test.h"

#include <string.h>

#include "cclib/ringbuf.h"

CB_TEST(starts_empty) {
    unsigned char store[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 0);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_free(&rb), 8);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_cap(&rb), 8);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), -1);
}

CB_TEST(write_then_read_in_order) {
    unsigned char store[16];
    char out[16];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "hello", 5), 5);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, " world", 6), 6);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 11);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, sizeof out), 11);
    CB_ASSERT_EQ_MEM(out, "hello world", 11);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 0);
}

CB_TEST(write_truncates_when_full) {
    unsigned char store[4];
    char out[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "abcdef", 6), 4);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_free(&rb), 0);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "x", 1), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, 'x'), -1);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, sizeof out), 4);
    CB_ASSERT_EQ_MEM(out, "abcd", 4);
}

CB_TEST(wraps_around_the_end_of_storage) {
    unsigned char store[8];
    char out[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "012345", 6), 6);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, 4), 4); /* head now at 4 */
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "abcdef", 6), 6); /* crosses the end */
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 8);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, 8), 8);
    CB_ASSERT_EQ_MEM(out, "45abcdef", 8);
}

CB_TEST(peek_does_not_consume) {
    unsigned char store[8];
    char out[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "xyz", 3);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_peek(&rb, out, 2), 2);
    CB_ASSERT_EQ_MEM(out, "xy", 2);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 3);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_peek(&rb, out, 8), 3);
    CB_ASSERT_EQ_MEM(out, "xyz", 3);
}

CB_TEST(peek_across_the_wrap) {
    unsigned char store[5];
    char out[5];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "abcd", 4);
    cclib_ringbuf_skip(&rb, 3);
    cclib_ringbuf_write(&rb, "efgh", 4); /* "d" at index 3, "efgh" at 4,0,1,2 */
    CB_ASSERT_EQ_UINT(cclib_ringbuf_peek(&rb, out, 5), 5);
    CB_ASSERT_EQ_MEM(out, "defgh", 5);
}

CB_TEST(skip_discards_oldest) {
    unsigned char store[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "abcdef", 6);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_skip(&rb, 2), 2);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), 'c');
    CB_ASSERT_EQ_UINT(cclib_ringbuf_skip(&rb, 100), 3);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 0);
}

/* pop returns int 0..255: 0xff must come back as 255, not as -1 ("empty"), which is
 * what a byte passed through a signed char would look like on x86-64. */
CB_TEST(pop_returns_ff_as_255_not_empty) {
    unsigned char store[4];
    cclib_ringbuf rb;
    const char c = '\xff';
    cclib_ringbuf_init(&rb, store, sizeof store);
    CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, (uint8_t)c), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, 0x80), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, 0x00), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), 255);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), 128);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), -1);
}

CB_TEST(find_locates_a_line_end_across_the_wrap) {
    unsigned char store[8];
    char line[8];
    cclib_ringbuf rb;
    long at;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "xxxxxx", 6);
    cclib_ringbuf_skip(&rb, 6);
    cclib_ringbuf_write(&rb, "ab\ncd", 5); /* crosses the end of storage */
    at = cclib_ringbuf_find(&rb, '\n');
    CB_ASSERT_EQ_INT(at, 2);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, line, (size_t)at + 1), 3);
    CB_ASSERT_EQ_MEM(line, "ab\n", 3);
    CB_ASSERT_EQ_INT(cclib_ringbuf_find(&rb, '\n'), -1);
    CB_ASSERT_EQ_INT(cclib_ringbuf_find(&rb, 'd'), 1);
}

CB_TEST(find_high_byte) {
    unsigned char store[8];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "a\xc3\xa9z", 4);
    CB_ASSERT_EQ_INT(cclib_ringbuf_find(&rb, 0xa9), 2);
    CB_ASSERT_EQ_INT(cclib_ringbuf_find(&rb, 0xff), -1);
}

CB_TEST(clear_empties_and_resets) {
    unsigned char store[4];
    cclib_ringbuf rb;
    cclib_ringbuf_init(&rb, store, sizeof store);
    cclib_ringbuf_write(&rb, "abc", 3);
    cclib_ringbuf_clear(&rb);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 0);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "wxyz", 4), 4);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), 'w');
}

CB_TEST(zero_capacity_accepts_nothing) {
    cclib_ringbuf rb;
    char out[1];
    cclib_ringbuf_init(&rb, NULL, 0);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, "a", 1), 0);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, 1), 0);
    CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), -1);
    CB_ASSERT_EQ_INT(cclib_ringbuf_find(&rb, 'a'), -1);
}

CB_TEST(capacity_one) {
    unsigned char store[1];
    cclib_ringbuf rb;
    int i;
    cclib_ringbuf_init(&rb, store, 1);
    for (i = 0; i < 300; i++) {
        CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, (uint8_t)i), 0);
        CB_ASSERT_EQ_INT(cclib_ringbuf_push(&rb, 0), -1);
        CB_ASSERT_EQ_INT(cclib_ringbuf_pop(&rb), i & 0xff);
    }
}

CB_TEST(fill_and_drain_repeatedly_at_odd_capacity) {
    unsigned char store[7];
    unsigned char in[7], out[7];
    cclib_ringbuf rb;
    int round;
    size_t i;
    cclib_ringbuf_init(&rb, store, sizeof store);
    for (round = 0; round < 50; round++) {
        for (i = 0; i < sizeof in; i++) in[i] = (unsigned char)(round * 7 + (int)i);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, in, 3), 3);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, in + 3, 4), 4);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out, 5), 5);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, out + 5, 5), 2);
        CB_ASSERT_EQ_MEM(out, in, 7);
    }
}

/* A long run of random writes, reads, peeks and skips of random sizes, checked
 * against a plain array queue. The generator is fixed, so every run is the same. */
CB_TEST(random_operations_match_a_model) {
    unsigned char store[13];
    unsigned char model[13];
    size_t model_len = 0;
    cclib_ringbuf rb;
    uint32_t rng = 0x12345678u;
    unsigned next_byte = 0;
    int step;
    cclib_ringbuf_init(&rb, store, sizeof store);
    for (step = 0; step < 20000; step++) {
        unsigned char buf[20], got[20];
        size_t n, want, i;
        rng = rng * 1664525u + 1013904223u;
        n = (rng >> 8) % 20;
        switch ((rng >> 24) % 4) {
        case 0: /* write */
            for (i = 0; i < n; i++) buf[i] = (unsigned char)(next_byte++);
            want = n < sizeof model - model_len ? n : sizeof model - model_len;
            CB_ASSERT_EQ_UINT(cclib_ringbuf_write(&rb, buf, n), want);
            memcpy(model + model_len, buf, want);
            next_byte -= (unsigned)(n - want); /* bytes not taken are offered again */
            model_len += want;
            break;
        case 1: /* read */
            want = n < model_len ? n : model_len;
            CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, got, n), want);
            CB_ASSERT_EQ_MEM(got, model, want);
            memmove(model, model + want, model_len - want);
            model_len -= want;
            break;
        case 2: /* peek */
            want = n < model_len ? n : model_len;
            CB_ASSERT_EQ_UINT(cclib_ringbuf_peek(&rb, got, n), want);
            CB_ASSERT_EQ_MEM(got, model, want);
            break;
        default: /* skip */
            want = n < model_len ? n : model_len;
            CB_ASSERT_EQ_UINT(cclib_ringbuf_skip(&rb, n), want);
            memmove(model, model + want, model_len - want);
            model_len -= want;
            break;
        }
        CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), model_len);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_free(&rb), sizeof store - model_len);
    }
}

/* Length-prefixed frames (big-endian 16-bit length, then payload) streamed through
 * a small buffer in awkward chunk sizes, as a protocol reader would. */
CB_TEST(streams_length_prefixed_frames) {
    static const char *const payloads[] = {"", "a", "hello", "\xff\xfe\xfd", "0123456789"};
    unsigned char wire[64], store[12]; /* just room for the largest frame */
    size_t wire_len = 0, fed = 0, i, got_frames = 0, rounds = 0;
    cclib_ringbuf rb;
    for (i = 0; i < 5; i++) {
        size_t n = strlen(payloads[i]);
        wire[wire_len++] = (unsigned char)(n >> 8);
        wire[wire_len++] = (unsigned char)(n & 0xff);
        memcpy(wire + wire_len, payloads[i], n);
        wire_len += n;
    }
    cclib_ringbuf_init(&rb, store, sizeof store);
    while (got_frames < 5) {
        unsigned char hdr[2], body[16];
        size_t len;
        CB_ASSERT(++rounds < 1000); /* no progress would mean a bug */
        /* feed 3 bytes at a time (or whatever fits) */
        size_t chunk = wire_len - fed < 3 ? wire_len - fed : 3;
        fed += cclib_ringbuf_write(&rb, wire + fed, chunk);
        if (cclib_ringbuf_peek(&rb, hdr, 2) < 2) continue;
        len = ((size_t)hdr[0] << 8) | hdr[1];
        CB_ASSERT(len + 2 <= sizeof store);
        if (cclib_ringbuf_len(&rb) < len + 2) continue;
        cclib_ringbuf_skip(&rb, 2);
        CB_ASSERT_EQ_UINT(cclib_ringbuf_read(&rb, body, len), len);
        CB_ASSERT_EQ_MEM(body, payloads[got_frames], len);
        got_frames++;
    }
    CB_ASSERT_EQ_UINT(fed, wire_len);
    CB_ASSERT_EQ_UINT(cclib_ringbuf_len(&rb), 0);
}
