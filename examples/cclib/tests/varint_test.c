/* LEB128, big-endian VLQ and zigzag against published vectors (DWARF, protobuf,
 * MIDI), plus round trips and malformed input. */
#include "crossbuild_test.h"

#include <string.h>

#include "cclib/varint.h"

typedef struct {
    uint64_t value;
    const char *bytes; /* encoding, as a string literal of escapes */
    size_t len;
} uvec;

typedef struct {
    int64_t value;
    const char *bytes;
    size_t len;
} svec;

#define V(value, lit) {value, lit, sizeof(lit) - 1}

static const uvec uleb_vectors[] = {
    V(0u, "\x00"),
    V(1u, "\x01"),
    V(2u, "\x02"),
    V(127u, "\x7f"),
    V(128u, "\x80\x01"),
    V(129u, "\x81\x01"),
    V(130u, "\x82\x01"),
    V(150u, "\x96\x01"), /* protobuf docs */
    V(300u, "\xac\x02"), /* protobuf docs */
    V(12857u, "\xb9\x64"), /* DWARF spec */
    V(624485u, "\xe5\x8e\x26"),
    V(16383u, "\xff\x7f"),
    V(16384u, "\x80\x80\x01"),
    V(4294967295u, "\xff\xff\xff\xff\x0f"),
    V(0x8000000000000000u, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
    V(0xffffffffffffffffu, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
};

static const svec sleb_vectors[] = {
    V(0, "\x00"),
    V(1, "\x01"),
    V(-1, "\x7f"),
    V(2, "\x02"),
    V(-2, "\x7e"),
    V(63, "\x3f"),
    V(-64, "\x40"),
    V(64, "\xc0\x00"),
    V(-65, "\xbf\x7f"),
    V(127, "\xff\x00"),
    V(-127, "\x81\x7f"),
    V(128, "\x80\x01"),
    V(-128, "\x80\x7f"),
    V(129, "\x81\x01"),
    V(-129, "\xff\x7e"),
    V(-123456, "\xc0\xbb\x78"),
    V(INT64_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00"),
    V(INT64_MIN, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f"),
};

static const uvec vlq_vectors[] = {
    /* The MIDI file specification's table */
    V(0x00u, "\x00"),
    V(0x40u, "\x40"),
    V(0x7fu, "\x7f"),
    V(0x80u, "\x81\x00"),
    V(0x2000u, "\xc0\x00"),
    V(0x3fffu, "\xff\x7f"),
    V(0x4000u, "\x81\x80\x00"),
    V(0x100000u, "\xc0\x80\x00"),
    V(0x1fffffu, "\xff\xff\x7f"),
    V(0x200000u, "\x81\x80\x80\x00"),
    V(0x8000000u, "\xc0\x80\x80\x00"),
    V(0xfffffffu, "\xff\xff\xff\x7f"),
    V(0xffffffffffffffffu, "\x81\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

CB_TEST(uleb128_encodes_known_vectors) {
    size_t i;
    for (i = 0; i < COUNT(uleb_vectors); i++) {
        uint8_t out[CCLIB_VARINT_MAX_LEN];
        size_t n = cclib_uleb128_encode(uleb_vectors[i].value, out);
        CB_ASSERT_EQ_UINT(n, uleb_vectors[i].len);
        CB_ASSERT_EQ_MEM(out, uleb_vectors[i].bytes, n);
        CB_ASSERT_EQ_UINT(cclib_uleb128_size(uleb_vectors[i].value), n);
    }
}

CB_TEST(uleb128_decodes_known_vectors) {
    size_t i;
    for (i = 0; i < COUNT(uleb_vectors); i++) {
        uint64_t v = 12345;
        size_t n = cclib_uleb128_decode((const uint8_t *)uleb_vectors[i].bytes,
                                        uleb_vectors[i].len, &v);
        CB_ASSERT_EQ_UINT(n, uleb_vectors[i].len);
        CB_ASSERT_EQ_UINT(v, uleb_vectors[i].value);
    }
}

CB_TEST(uleb128_decode_stops_at_last_byte) {
    static const uint8_t in[] = {0xac, 0x02, 0x99, 0x99};
    uint64_t v = 0;
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(in, sizeof in, &v), 2);
    CB_ASSERT_EQ_UINT(v, 300);
}

CB_TEST(uleb128_rejects_truncated_input) {
    static const uint8_t in[] = {0xe5, 0x8e, 0xa6};
    uint64_t v = 77;
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(in, sizeof in, &v), 0);
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(in, 0, &v), 0);
    CB_ASSERT_EQ_UINT(v, 77); /* untouched on failure */
}

CB_TEST(uleb128_rejects_values_above_64_bits) {
    static const uint8_t bit64[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    uint64_t v = 0;
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(bit64, sizeof bit64, &v), 0);
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(eleven, sizeof eleven, &v), 0);
}

CB_TEST(uleb128_accepts_redundant_zero_groups) {
    static const uint8_t in[] = {0x81, 0x80, 0x80, 0x00};
    uint64_t v = 0;
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(in, sizeof in, &v), 4);
    CB_ASSERT_EQ_UINT(v, 1);
}

CB_TEST(uleb128_roundtrip_powers_of_two_and_neighbours) {
    int bit;
    for (bit = 0; bit < 64; bit++) {
        uint64_t base = (uint64_t)1 << bit;
        uint64_t cases[3];
        int k;
        cases[0] = base - 1;
        cases[1] = base;
        cases[2] = base + 1;
        for (k = 0; k < 3; k++) {
            uint8_t buf[CCLIB_VARINT_MAX_LEN];
            uint64_t back = 0;
            size_t n = cclib_uleb128_encode(cases[k], buf);
            CB_ASSERT_EQ_UINT(n, cclib_uleb128_size(cases[k]));
            CB_ASSERT_EQ_UINT(cclib_uleb128_decode(buf, n, &back), n);
            CB_ASSERT_EQ_UINT(back, cases[k]);
        }
    }
}

CB_TEST(uleb128_size_boundaries) {
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0), 1);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x7f), 1);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x80), 2);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x3fff), 2);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x4000), 3);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x7fffffffffffffffu), 9);
    CB_ASSERT_EQ_UINT(cclib_uleb128_size(0x8000000000000000u), 10);
}

CB_TEST(sleb128_encodes_known_vectors) {
    size_t i;
    for (i = 0; i < COUNT(sleb_vectors); i++) {
        uint8_t out[CCLIB_VARINT_MAX_LEN];
        size_t n = cclib_sleb128_encode(sleb_vectors[i].value, out);
        CB_ASSERT_EQ_UINT(n, sleb_vectors[i].len);
        CB_ASSERT_EQ_MEM(out, sleb_vectors[i].bytes, n);
        CB_ASSERT_EQ_UINT(cclib_sleb128_size(sleb_vectors[i].value), n);
    }
}

CB_TEST(sleb128_decodes_known_vectors) {
    size_t i;
    for (i = 0; i < COUNT(sleb_vectors); i++) {
        int64_t v = 12345;
        size_t n = cclib_sleb128_decode((const uint8_t *)sleb_vectors[i].bytes,
                                        sleb_vectors[i].len, &v);
        CB_ASSERT_EQ_UINT(n, sleb_vectors[i].len);
        CB_ASSERT_EQ_INT(v, sleb_vectors[i].value);
    }
}

CB_TEST(sleb128_roundtrip_signed_range) {
    int bit, sign;
    for (bit = 0; bit < 63; bit++) {
        for (sign = -1; sign <= 1; sign += 2) {
            int64_t base = (int64_t)((uint64_t)1 << bit) * sign;
            int64_t d;
            for (d = -1; d <= 1; d++) {
                int64_t v = base + d;
                uint8_t buf[CCLIB_VARINT_MAX_LEN];
                int64_t back = 0;
                size_t n = cclib_sleb128_encode(v, buf);
                CB_ASSERT(n >= 1 && n <= CCLIB_VARINT_MAX_LEN);
                CB_ASSERT_EQ_UINT(cclib_sleb128_decode(buf, n, &back), n);
                CB_ASSERT_EQ_INT(back, v);
            }
        }
    }
}

CB_TEST(sleb128_rejects_bad_tenth_byte) {
    /* Tenth byte must be 0x00 or 0x7f: anything else has bits beyond 64. */
    static const uint8_t bad[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t cont[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0xff};
    int64_t v = 5;
    CB_ASSERT_EQ_UINT(cclib_sleb128_decode(bad, sizeof bad, &v), 0);
    CB_ASSERT_EQ_UINT(cclib_sleb128_decode(cont, sizeof cont, &v), 0);
    CB_ASSERT_EQ_INT(v, 5);
}

CB_TEST(sleb128_rejects_truncated_input) {
    static const uint8_t in[] = {0xc0, 0xbb};
    int64_t v = 0;
    CB_ASSERT_EQ_UINT(cclib_sleb128_decode(in, sizeof in, &v), 0);
}

CB_TEST(sleb128_sign_extends_short_encodings) {
    /* 0x40 alone is -64; 0xc0 0x00 is +64: the sign comes from bit 6 of the last byte. */
    static const uint8_t neg[] = {0x40};
    static const uint8_t pos[] = {0xc0, 0x00};
    int64_t v = 0;
    CB_ASSERT_EQ_UINT(cclib_sleb128_decode(neg, 1, &v), 1);
    CB_ASSERT_EQ_INT(v, -64);
    CB_ASSERT_EQ_UINT(cclib_sleb128_decode(pos, 2, &v), 2);
    CB_ASSERT_EQ_INT(v, 64);
}

CB_TEST(vlq_encodes_midi_vectors) {
    size_t i;
    for (i = 0; i < COUNT(vlq_vectors); i++) {
        uint8_t out[CCLIB_VARINT_MAX_LEN];
        size_t n = cclib_vlq_encode(vlq_vectors[i].value, out);
        CB_ASSERT_EQ_UINT(n, vlq_vectors[i].len);
        CB_ASSERT_EQ_MEM(out, vlq_vectors[i].bytes, n);
    }
}

CB_TEST(vlq_decodes_midi_vectors) {
    size_t i;
    for (i = 0; i < COUNT(vlq_vectors); i++) {
        uint64_t v = 0;
        size_t n = cclib_vlq_decode((const uint8_t *)vlq_vectors[i].bytes, vlq_vectors[i].len, &v);
        CB_ASSERT_EQ_UINT(n, vlq_vectors[i].len);
        CB_ASSERT_EQ_UINT(v, vlq_vectors[i].value);
    }
}

CB_TEST(vlq_rejects_overflow_and_truncation) {
    static const uint8_t over[] = {0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t trunc[] = {0x81, 0x80};
    uint64_t v = 9;
    CB_ASSERT_EQ_UINT(cclib_vlq_decode(over, sizeof over, &v), 0);
    CB_ASSERT_EQ_UINT(cclib_vlq_decode(trunc, sizeof trunc, &v), 0);
    CB_ASSERT_EQ_UINT(v, 9);
}

CB_TEST(vlq_and_leb128_differ_only_in_group_order) {
    uint8_t le[CCLIB_VARINT_MAX_LEN], be[CCLIB_VARINT_MAX_LEN];
    uint64_t v = 0x0123456789abcdefu;
    size_t n = cclib_uleb128_encode(v, le), i;
    CB_ASSERT_EQ_UINT(cclib_vlq_encode(v, be), n);
    for (i = 0; i < n; i++) {
        CB_ASSERT_EQ_UINT(le[i] & 0x7f, be[n - 1 - i] & 0x7f);
        CB_ASSERT_EQ_UINT(le[i] & 0x80, i + 1 < n ? 0x80 : 0);
        CB_ASSERT_EQ_UINT(be[i] & 0x80, i + 1 < n ? 0x80 : 0);
    }
}

CB_TEST(zigzag32_known_values) {
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(0), 0);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(-1), 1);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(1), 2);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(-2), 3);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(2147483647), 4294967294u);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode32(INT32_MIN), 4294967295u);
    CB_ASSERT_EQ_INT(cclib_zigzag_decode32(4294967295u), INT32_MIN);
    CB_ASSERT_EQ_INT(cclib_zigzag_decode32(3), -2);
}

CB_TEST(zigzag64_known_values_and_roundtrip) {
    int64_t v;
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode64(INT64_MAX), 0xfffffffffffffffeu);
    CB_ASSERT_EQ_UINT(cclib_zigzag_encode64(INT64_MIN), 0xffffffffffffffffu);
    CB_ASSERT_EQ_INT(cclib_zigzag_decode64(0xffffffffffffffffu), INT64_MIN);
    CB_ASSERT_EQ_INT(cclib_zigzag_decode64(0xfffffffffffffffeu), INT64_MAX);
    for (v = -1000; v <= 1000; v++) {
        uint64_t z = cclib_zigzag_encode64(v);
        CB_ASSERT_EQ_UINT(z, v >= 0 ? (uint64_t)v * 2 : (uint64_t)(-v) * 2 - 1);
        CB_ASSERT_EQ_INT(cclib_zigzag_decode64(z), v);
    }
}

/* A protobuf-style sint64 field: zigzag then ULEB128. -1 is one byte, not ten. */
CB_TEST(zigzag_then_uleb128_keeps_small_negatives_short) {
    uint8_t buf[CCLIB_VARINT_MAX_LEN];
    uint64_t back = 0;
    CB_ASSERT_EQ_UINT(cclib_uleb128_encode(cclib_zigzag_encode64(-1), buf), 1);
    CB_ASSERT_EQ_UINT(buf[0], 0x01);
    CB_ASSERT_EQ_UINT(cclib_uleb128_encode(cclib_zigzag_encode64(-150), buf), 2);
    CB_ASSERT_EQ_UINT(cclib_uleb128_decode(buf, 2, &back), 2);
    CB_ASSERT_EQ_INT(cclib_zigzag_decode64(back), -150);
    CB_ASSERT_EQ_UINT(cclib_uleb128_encode((uint64_t)(int64_t)-1, buf), 10);
}

/* A stream of several varints back to back, as in a packed repeated field. */
CB_TEST(uleb128_stream_of_values) {
    static const uint64_t values[] = {3, 270, 86942, 0, 0xffffffffu, 1};
    uint8_t buf[64];
    size_t pos = 0, i;
    for (i = 0; i < COUNT(values); i++) pos += cclib_uleb128_encode(values[i], buf + pos);
    CB_ASSERT_EQ_MEM(buf, "\x03\x8e\x02\x9e\xa7\x05\x00\xff\xff\xff\xff\x0f\x01", 13);
    CB_ASSERT_EQ_UINT(pos, 13);
    {
        size_t at = 0;
        for (i = 0; i < COUNT(values); i++) {
            uint64_t v = 0;
            size_t n = cclib_uleb128_decode(buf + at, pos - at, &v);
            CB_ASSERT(n > 0);
            CB_ASSERT_EQ_UINT(v, values[i]);
            at += n;
        }
        CB_ASSERT_EQ_UINT(at, pos);
    }
}
