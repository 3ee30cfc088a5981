/* CRC-32, Adler-32, FNV-1a and the Internet checksum against published and
 * independently computed vectors. Several inputs are plain char strings with bytes
 * >= 0x80: a checksum that read them through plain char would get different answers
 * on x86-64 (signed char) and AArch64 (unsigned char). */
#include "crossbuild_test.h"

#include <string.h>

#include "cclib/checksum.h"

static const char quick_fox[] = "The quick brown fox jumps over the lazy dog";

CB_TEST(crc32_check_value) {
    /* The "check" value of the CRC catalogue for CRC-32/ISO-HDLC. */
    CB_ASSERT_EQ_UINT(cclib_crc32("123456789", 9), 0xcbf43926u);
}

CB_TEST(crc32_known_strings) {
    CB_ASSERT_EQ_UINT(cclib_crc32(NULL, 0), 0);
    CB_ASSERT_EQ_UINT(cclib_crc32("a", 1), 0xe8b7be43u);
    CB_ASSERT_EQ_UINT(cclib_crc32("abc", 3), 0x352441c2u);
    CB_ASSERT_EQ_UINT(cclib_crc32(quick_fox, strlen(quick_fox)), 0x414fa339u);
}

CB_TEST(crc32_high_bytes_in_char_data) {
    const char *s = "caf\xc3\xa9"; /* "café" in UTF-8 */
    CB_ASSERT_EQ_UINT(cclib_crc32(s, strlen(s)), 0x98ad42b5u);
    CB_ASSERT_EQ_UINT(cclib_crc32("\xff", 1), 0xff000000u);
    CB_ASSERT_EQ_UINT(cclib_crc32("\x80\xff\x7f\x00", 4), 0xda2238f3u);
}

CB_TEST(crc32_all_byte_values) {
    unsigned char all[256];
    int i;
    for (i = 0; i < 256; i++) all[i] = (unsigned char)i;
    CB_ASSERT_EQ_UINT(cclib_crc32(all, sizeof all), 0x29058c73u);
}

CB_TEST(crc32_incremental_matches_one_shot_at_every_split) {
    size_t len = strlen(quick_fox), cut;
    for (cut = 0; cut <= len; cut++) {
        uint32_t c = cclib_crc32(quick_fox, cut);
        c = cclib_crc32_update(c, quick_fox + cut, len - cut);
        CB_ASSERT_EQ_UINT(c, 0x414fa339u);
    }
}

/* Appending the CRC in little-endian order gives a message whose CRC is the fixed
 * residue 0x2144DF1C, the property receivers use to check frames in one pass. */
CB_TEST(crc32_residue_after_appending_crc) {
    unsigned char msg[9 + 4];
    uint32_t c;
    memcpy(msg, "123456789", 9);
    c = cclib_crc32(msg, 9);
    msg[9] = (unsigned char)(c & 0xff);
    msg[10] = (unsigned char)((c >> 8) & 0xff);
    msg[11] = (unsigned char)((c >> 16) & 0xff);
    msg[12] = (unsigned char)(c >> 24);
    CB_ASSERT_EQ_UINT(cclib_crc32(msg, sizeof msg), 0x2144df1cu);
}

CB_TEST(crc32_detects_single_bit_flips) {
    unsigned char buf[64];
    uint32_t good;
    size_t i;
    int bit;
    for (i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7);
    good = cclib_crc32(buf, sizeof buf);
    for (i = 0; i < sizeof buf; i++) {
        for (bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1u << bit);
            CB_ASSERT(cclib_crc32(buf, sizeof buf) != good);
            buf[i] ^= (unsigned char)(1u << bit);
        }
    }
}

CB_TEST(adler32_known_strings) {
    CB_ASSERT_EQ_UINT(cclib_adler32(NULL, 0), 1);
    CB_ASSERT_EQ_UINT(cclib_adler32("a", 1), 0x00620062u);
    CB_ASSERT_EQ_UINT(cclib_adler32("abc", 3), 0x024d0127u);
    CB_ASSERT_EQ_UINT(cclib_adler32("Wikipedia", 9), 0x11e60398u);
    CB_ASSERT_EQ_UINT(cclib_adler32("123456789", 9), 0x091e01deu);
    CB_ASSERT_EQ_UINT(cclib_adler32(quick_fox, strlen(quick_fox)), 0x5bdc0fdau);
}

CB_TEST(adler32_high_bytes_in_char_data) {
    const char *s = "caf\xc3\xa9";
    CB_ASSERT_EQ_UINT(cclib_adler32(s, strlen(s)), 0x06d90297u);
    CB_ASSERT_EQ_UINT(cclib_adler32("\xff", 1), 0x01000100u);
    CB_ASSERT_EQ_UINT(cclib_adler32("\x80\xff\x7f\x00", 4), 0x05ff01ffu);
}

/* 100000 bytes of 0xff: long enough to need the deferred modulo several times, and
 * the worst case for the running sums. */
CB_TEST(adler32_long_input_of_ff_bytes) {
    static unsigned char buf[100000];
    memset(buf, 0xff, sizeof buf);
    CB_ASSERT_EQ_UINT(cclib_adler32(buf, sizeof buf), 0x149a302cu);
}

CB_TEST(adler32_incremental_matches_one_shot) {
    static unsigned char buf[100000];
    size_t cuts[] = {0, 1, 5551, 5552, 5553, 77777, 100000};
    size_t i;
    memset(buf, 0xff, sizeof buf);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        uint32_t a = cclib_adler32(buf, cuts[i]);
        a = cclib_adler32_update(a, buf + cuts[i], sizeof buf - cuts[i]);
        CB_ASSERT_EQ_UINT(a, 0x149a302cu);
    }
}

CB_TEST(fnv1a32_known_strings) {
    CB_ASSERT_EQ_UINT(cclib_fnv1a32(NULL, 0), 0x811c9dc5u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32("a", 1), 0xe40c292cu);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32("foobar", 6), 0xbf9cf968u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32("123456789", 9), 0xbb86b11cu);
}

CB_TEST(fnv1a64_known_strings) {
    CB_ASSERT_EQ_UINT(cclib_fnv1a64(NULL, 0), 0xcbf29ce484222325u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64("a", 1), 0xaf63dc4c8601ec8cu);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64("foobar", 6), 0x85944171f73967e8u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64("123456789", 9), 0x06d5573923c6cdfcu);
}

CB_TEST(fnv1a_high_bytes_in_char_data) {
    const char *s = "caf\xc3\xa9";
    CB_ASSERT_EQ_UINT(cclib_fnv1a32(s, strlen(s)), 0xa82b5049u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64(s, strlen(s)), 0x48e8823acfa40d89u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32("\xff", 1), 0x7a0b824eu);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64("\xff", 1), 0xaf64724c8602eb6eu);
}

/* What the library must not do: XOR the byte in as a plain char. Where char is
 * signed the byte 0xff becomes 0xffffffff and the hash changes; where it is unsigned
 * the naive version happens to agree. The library agrees with the vector on both. */
static uint32_t naive_fnv1a32_plain_char(const char *s, size_t n) {
    uint32_t h = 0x811c9dc5u;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (uint32_t)(int)s[i]; /* sign-extends where char is signed */
        h *= 0x01000193u;
    }
    return h;
}

CB_TEST(fnv1a_does_not_sign_extend_like_a_naive_char_loop) {
    const char *s = "\xff";
    uint32_t naive = naive_fnv1a32_plain_char(s, 1);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32(s, 1), 0x7a0b824eu);
    if ((char)0xff < 0) {
        CB_ASSERT(naive != 0x7a0b824eu); /* the pitfall is real on this target */
    } else {
        CB_ASSERT_EQ_UINT(naive, 0x7a0b824eu);
    }
}

CB_TEST(fnv1a_all_byte_values_and_long_input) {
    unsigned char all[256];
    static unsigned char ff[100000];
    int i;
    for (i = 0; i < 256; i++) all[i] = (unsigned char)i;
    memset(ff, 0xff, sizeof ff);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32(all, sizeof all), 0x90a458c5u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64(all, sizeof all), 0x4242dc5249c33625u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a32(ff, sizeof ff), 0xd05e7fa5u);
    CB_ASSERT_EQ_UINT(cclib_fnv1a64(ff, sizeof ff), 0x945223f8e9767705u);
}

CB_TEST(inet_checksum_rfc1071_example) {
    static const unsigned char data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CB_ASSERT_EQ_UINT(cclib_inet_checksum(data, sizeof data), 0x220d);
}

CB_TEST(inet_checksum_ipv4_header) {
    /* 20-byte IPv4 header with its checksum field zeroed; the stored checksum is 0xb861. */
    unsigned char hdr[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                             0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    uint16_t sum = cclib_inet_checksum(hdr, sizeof hdr);
    CB_ASSERT_EQ_UINT(sum, 0xb861);
    /* With the checksum filled in (network order) the header verifies to zero. */
    hdr[10] = (unsigned char)(sum >> 8);
    hdr[11] = (unsigned char)(sum & 0xff);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum(hdr, sizeof hdr), 0);
}

CB_TEST(inet_checksum_odd_length_and_edge_cases) {
    CB_ASSERT_EQ_UINT(cclib_inet_checksum(NULL, 0), 0xffff);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("a", 1), 0x9eff);   /* 0x6100 padded */
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("abc", 3), 0x3b9d);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("\xff", 1), 0x00ff);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("caf\xc3\xa9", 5), 0x8cda);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("123456789", 9), 0xf62a);
}

CB_TEST(inet_checksum_end_around_carry) {
    /* 0x80ff + 0x7f00 = 0xffff: complement is 0. And many 0xffff words fold to 0xffff. */
    static unsigned char ff[100000];
    memset(ff, 0xff, sizeof ff);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("\x80\xff\x7f\x00", 4), 0);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum(ff, sizeof ff), 0);
    CB_ASSERT_EQ_UINT(cclib_inet_checksum("\xff\xff\x00\x01", 4), 0xfffe);
}
