#include "cclib/varint.h"

/* Two's complement reinterpretation without implementation-defined conversions. */
static int64_t u64_to_i64(uint64_t u) {
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

static int32_t u32_to_i32(uint32_t u) {
    if (u <= (uint32_t)INT32_MAX) return (int32_t)u;
    return -(int32_t)(~u) - 1;
}

size_t cclib_uleb128_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t cclib_uleb128_encode(uint64_t v, uint8_t *out) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

size_t cclib_uleb128_decode(const uint8_t *in, size_t len, uint64_t *out) {
    uint64_t result = 0;
    unsigned shift = 0;
    size_t i;
    for (i = 0; i < len && i < CCLIB_VARINT_MAX_LEN; i++) {
        uint8_t b = in[i];
        if (shift == 63 && (b & 0x7e) != 0) return 0; /* bits above 63 */
        result |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = result;
            return i + 1;
        }
        shift += 7;
    }
    return 0; /* truncated, or still continuing after the tenth byte */
}

/* An arithmetic shift right by 7 of the two's complement value in u. */
static uint64_t sar7(uint64_t u) {
    if (u >> 63) return ~(~u >> 7);
    return u >> 7;
}

size_t cclib_sleb128_encode(int64_t v, uint8_t *out) {
    uint64_t u = (uint64_t)v; /* modular conversion: well defined */
    size_t n = 0;
    for (;;) {
        uint8_t b = (uint8_t)(u & 0x7f);
        u = sar7(u);
        if ((u == 0 && (b & 0x40) == 0) || (u == UINT64_MAX && (b & 0x40) != 0)) {
            out[n++] = b;
            return n;
        }
        out[n++] = (uint8_t)(b | 0x80);
    }
}

size_t cclib_sleb128_size(int64_t v) {
    uint8_t scratch[CCLIB_VARINT_MAX_LEN];
    return cclib_sleb128_encode(v, scratch);
}

size_t cclib_sleb128_decode(const uint8_t *in, size_t len, int64_t *out) {
    uint64_t result = 0;
    unsigned shift = 0;
    size_t i;
    for (i = 0; i < len && i < CCLIB_VARINT_MAX_LEN; i++) {
        uint8_t b = in[i];
        if (shift == 63) {
            /* Tenth byte: its lowest bit is bit 63; the other six must repeat it
             * (sign extension) and it must be the last byte. */
            uint8_t payload = (uint8_t)(b & 0x7f);
            if ((b & 0x80) != 0 || (payload != 0 && payload != 0x7f)) return 0;
            result |= (uint64_t)(payload & 1) << 63;
            *out = u64_to_i64(result);
            return i + 1;
        }
        result |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) == 0) {
            if (b & 0x40) result |= UINT64_MAX << shift; /* shift <= 63 here */
            *out = u64_to_i64(result);
            return i + 1;
        }
    }
    return 0;
}

size_t cclib_vlq_encode(uint64_t v, uint8_t *out) {
    uint8_t groups[CCLIB_VARINT_MAX_LEN];
    size_t n = 0, i;
    do {
        groups[n++] = (uint8_t)(v & 0x7f);
        v >>= 7;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        uint8_t g = groups[n - 1 - i];
        out[i] = (uint8_t)(i + 1 < n ? (g | 0x80) : g);
    }
    return n;
}

size_t cclib_vlq_decode(const uint8_t *in, size_t len, uint64_t *out) {
    uint64_t result = 0;
    size_t i;
    for (i = 0; i < len && i < CCLIB_VARINT_MAX_LEN; i++) {
        uint8_t b = in[i];
        if ((result >> 57) != 0) return 0; /* another 7 bits would not fit */
        result = (result << 7) | (uint64_t)(b & 0x7f);
        if ((b & 0x80) == 0) {
            *out = result;
            return i + 1;
        }
    }
    return 0;
}

uint32_t cclib_zigzag_encode32(int32_t v) {
    uint32_t u = (uint32_t)v;
    return (u << 1) ^ (v < 0 ? UINT32_MAX : 0u);
}

int32_t cclib_zigzag_decode32(uint32_t v) {
    return u32_to_i32((v >> 1) ^ (0u - (v & 1u)));
}

uint64_t cclib_zigzag_encode64(int64_t v) {
    uint64_t u = (uint64_t)v;
    return (u << 1) ^ (v < 0 ? UINT64_MAX : 0u);
}

int64_t cclib_zigzag_decode64(uint64_t v) {
    return u64_to_i64((v >> 1) ^ (0u - (v & 1u)));
}
