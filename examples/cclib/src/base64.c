#include "cclib/base64.h"

static const char std_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t cclib_base64_encoded_len(size_t n, int flags) {
    size_t full = n / 3, rest = n % 3;
    if (flags & CCLIB_BASE64_NOPAD) return full * 4 + (rest == 0 ? 0 : rest + 1);
    return (full + (rest != 0)) * 4;
}

size_t cclib_base64_decoded_max(size_t n) { return (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0); }

size_t cclib_base64_encode(char *dst, const void *src, size_t n, int flags) {
    const unsigned char *in = (const unsigned char *)src;
    const char *abc = (flags & CCLIB_BASE64_URL) ? url_alphabet : std_alphabet;
    int pad = !(flags & CCLIB_BASE64_NOPAD);
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long w = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8) |
                          (unsigned long)in[i + 2];
        dst[o++] = abc[(w >> 18) & 63];
        dst[o++] = abc[(w >> 12) & 63];
        dst[o++] = abc[(w >> 6) & 63];
        dst[o++] = abc[w & 63];
    }
    if (n - i == 1) {
        unsigned long w = (unsigned long)in[i] << 16;
        dst[o++] = abc[(w >> 18) & 63];
        dst[o++] = abc[(w >> 12) & 63];
        if (pad) {
            dst[o++] = '=';
            dst[o++] = '=';
        }
    } else if (n - i == 2) {
        unsigned long w = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8);
        dst[o++] = abc[(w >> 18) & 63];
        dst[o++] = abc[(w >> 12) & 63];
        dst[o++] = abc[(w >> 6) & 63];
        if (pad) dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

/* Value of one base64 character, or -1. Takes the byte as unsigned char: indexing a
 * table with a plain char would go negative for bytes >= 0x80 where char is signed. */
static int sextet(unsigned char c, int url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (url) {
        if (c == '-') return 62;
        if (c == '_') return 63;
    } else {
        if (c == '+') return 62;
        if (c == '/') return 63;
    }
    return -1;
}

int cclib_base64_decode(void *dst, size_t *out_len, const char *src, size_t n, int flags) {
    const unsigned char *in = (const unsigned char *)src;
    unsigned char *out = (unsigned char *)dst;
    int url = (flags & CCLIB_BASE64_URL) != 0;
    size_t data_len = n, i, o = 0, tail;
    unsigned long acc = 0;
    int bits = 0;

    if (flags & CCLIB_BASE64_NOPAD) {
        if (n % 4 == 1) return -1;
    } else {
        if (n % 4 != 0) return -1;
        /* Up to two '=' at the very end, and only there. */
        if (n > 0 && in[n - 1] == '=') data_len--;
        if (n > 1 && in[n - 2] == '=') data_len--;
    }
    tail = data_len % 4;
    if (tail == 1) return -1; /* e.g. "A===": one character carries only 6 bits */
    if (!(flags & CCLIB_BASE64_NOPAD) && tail != 0 && n - data_len != 4 - tail) return -1;

    for (i = 0; i < data_len; i++) {
        int v = sextet(in[i], url);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xffu);
        }
        acc &= 0xffffu; /* keep only bits that can still matter */
    }
    /* Leftover bits (2 after "xx", 4 after "xxx") must be zero for a canonical input. */
    if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0) return -1;
    *out_len = o;
    return 0;
}
