/* Byte-order loads and stores, unaligned access, and the bounds-checked reader and
 * writer. The same expectations hold on x86-64 and AArch64. */
#include "crossbuild_test.h"

#include <string.h>

#include "cclib/bytes.h"

static const unsigned char seq8[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

CB_TEST(load_le_known_bytes) {
    CB_ASSERT_EQ_UINT(cclib_load_le16(seq8), 0x2301u);
    CB_ASSERT_EQ_UINT(cclib_load_le32(seq8), 0x67452301u);
    CB_ASSERT_EQ_UINT(cclib_load_le64(seq8), 0xefcdab8967452301u);
}

CB_TEST(load_be_known_bytes) {
    CB_ASSERT_EQ_UINT(cclib_load_be16(seq8), 0x0123u);
    CB_ASSERT_EQ_UINT(cclib_load_be32(seq8), 0x01234567u);
    CB_ASSERT_EQ_UINT(cclib_load_be64(seq8), 0x0123456789abcdefu);
}

CB_TEST(store_le_writes_least_significant_first) {
    unsigned char b[8];
    cclib_store_le64(b, 0xefcdab8967452301u);
    CB_ASSERT_EQ_MEM(b, seq8, 8);
    memset(b, 0, sizeof b);
    cclib_store_le32(b, 0x67452301u);
    CB_ASSERT_EQ_MEM(b, seq8, 4);
    cclib_store_le16(b, 0x2301u);
    CB_ASSERT_EQ_MEM(b, seq8, 2);
}

CB_TEST(store_be_writes_most_significant_first) {
    unsigned char b[8];
    cclib_store_be64(b, 0x0123456789abcdefu);
    CB_ASSERT_EQ_MEM(b, seq8, 8);
    memset(b, 0, sizeof b);
    cclib_store_be32(b, 0x01234567u);
    CB_ASSERT_EQ_MEM(b, seq8, 4);
    cclib_store_be16(b, 0x0123u);
    CB_ASSERT_EQ_MEM(b, seq8, 2);
}

/* High bytes given as a plain char string: a load that went through plain char would
 * sign-extend 0xff to 0xffffffff on x86-64 and smear it over the other bytes. */
CB_TEST(high_bytes_from_char_string_do_not_sign_extend) {
    const char *s = "\xff\xfe\x80\x7f\x81\x00\x90\xa0";
    CB_ASSERT_EQ_UINT(cclib_load_be32(s), 0xfffe807fu);
    CB_ASSERT_EQ_UINT(cclib_load_le32(s), 0x7f80feffu);
    CB_ASSERT_EQ_UINT(cclib_load_be16(s + 2), 0x807fu);
    CB_ASSERT_EQ_UINT(cclib_load_le16(s + 4), 0x0081u);
    CB_ASSERT_EQ_UINT(cclib_load_be64(s), 0xfffe807f810090a0u);
}

CB_TEST(roundtrip_all_widths_both_orders) {
    unsigned char b[8];
    uint64_t v = 0x9e3779b97f4a7c15u; /* walk through varied bit patterns */
    int i;
    for (i = 0; i < 200; i++) {
        v = v * 6364136223846793005u + 1442695040888963407u;
        cclib_store_le16(b, (uint16_t)v);
        CB_ASSERT_EQ_UINT(cclib_load_le16(b), (uint16_t)v);
        cclib_store_be16(b, (uint16_t)v);
        CB_ASSERT_EQ_UINT(cclib_load_be16(b), (uint16_t)v);
        cclib_store_le32(b, (uint32_t)v);
        CB_ASSERT_EQ_UINT(cclib_load_le32(b), (uint32_t)v);
        cclib_store_be32(b, (uint32_t)v);
        CB_ASSERT_EQ_UINT(cclib_load_be32(b), (uint32_t)v);
        cclib_store_le64(b, v);
        CB_ASSERT_EQ_UINT(cclib_load_le64(b), v);
        cclib_store_be64(b, v);
        CB_ASSERT_EQ_UINT(cclib_load_be64(b), v);
    }
}

CB_TEST(le_and_be_are_byte_reversals) {
    unsigned char b[8];
    cclib_store_le64(b, 0x1122334455667788u);
    CB_ASSERT_EQ_UINT(cclib_load_be64(b), 0x8877665544332211u);
    cclib_store_le32(b, 0x11223344u);
    CB_ASSERT_EQ_UINT(cclib_load_be32(b), 0x44332211u);
}

CB_TEST(bswap_known_values) {
    CB_ASSERT_EQ_UINT(cclib_bswap16(0x1234u), 0x3412u);
    CB_ASSERT_EQ_UINT(cclib_bswap32(0x12345678u), 0x78563412u);
    CB_ASSERT_EQ_UINT(cclib_bswap64(0x0102030405060708u), 0x0807060504030201u);
    CB_ASSERT_EQ_UINT(cclib_bswap32(0xff000080u), 0x800000ffu);
    CB_ASSERT_EQ_UINT(cclib_bswap64(cclib_bswap64(0xdeadbeefcafef00du)), 0xdeadbeefcafef00du);
}

/* Loads at every offset of a buffer, so most of them are misaligned for the type. */
CB_TEST(unaligned_loads_at_every_offset) {
    unsigned char buf[40];
    size_t i, off;
    for (i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 37 + 11);
    for (off = 0; off + 8 <= sizeof buf; off++) {
        const unsigned char *p = buf + off;
        uint32_t want32 = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24;
        uint64_t want64 = (uint64_t)want32 | (uint64_t)((uint32_t)p[4] | (uint32_t)p[5] << 8 |
                                                        (uint32_t)p[6] << 16 |
                                                        (uint32_t)p[7] << 24)
                                                 << 32;
        CB_ASSERT_EQ_UINT(cclib_load_le32(p), want32);
        CB_ASSERT_EQ_UINT(cclib_load_le64(p), want64);
        CB_ASSERT_EQ_UINT(cclib_load_be32(p), cclib_bswap32(want32));
        CB_ASSERT_EQ_UINT(cclib_load_be64(p), cclib_bswap64(want64));
    }
}

CB_TEST(unaligned_native_loads_match_host_order) {
    unsigned char buf[24];
    size_t i, off;
    int le = cclib_host_is_little_endian();
    for (i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(0xf0 ^ i);
    for (off = 0; off + 8 <= sizeof buf; off++) {
        uint32_t n32 = cclib_load_u32_native(buf + off);
        uint64_t n64 = cclib_load_u64_native(buf + off);
        CB_ASSERT_EQ_UINT(n32, le ? cclib_load_le32(buf + off) : cclib_load_be32(buf + off));
        CB_ASSERT_EQ_UINT(n64, le ? cclib_load_le64(buf + off) : cclib_load_be64(buf + off));
    }
}

CB_TEST(unaligned_stores_leave_neighbours_alone) {
    unsigned char buf[32], want[32];
    size_t off;
    for (off = 1; off + 8 < sizeof buf; off += 3) {
        memset(buf, 0xaa, sizeof buf);
        memset(want, 0xaa, sizeof want);
        cclib_store_be64(buf + off, 0x0102030405060708u);
        memcpy(want + off, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        CB_ASSERT_EQ_MEM(buf, want, sizeof buf);
        cclib_store_u32_native(buf + off, 0u);
        memset(want + off, 0, 4);
        CB_ASSERT_EQ_MEM(buf, want, sizeof buf);
        cclib_store_u64_native(buf + off + 1, cclib_load_u64_native(want + off));
        memmove(want + off + 1, want + off, 8);
        CB_ASSERT_EQ_MEM(buf, want, sizeof buf);
    }
}

/* Both target architectures are little-endian; this pins that down so the native
 * tests above really cover the little-endian path, and checks the probe itself. */
CB_TEST(host_endianness_probe_agrees_with_memory_layout) {
    uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    CB_ASSERT_EQ_INT(cclib_host_is_little_endian(), first == 1);
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    CB_ASSERT_EQ_INT(cclib_host_is_little_endian(), 1);
#endif
#endif
}

CB_TEST(reader_parses_network_order_header) {
    /* version 1, flags 0x80, length 0x0102, id 0xdeadbeef, stamp 0x0011223344556677 */
    static const unsigned char hdr[] = {0x01, 0x80, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x00,
                                        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    cclib_reader r;
    cclib_reader_init(&r, hdr, sizeof hdr);
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 1);
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 0x80);
    CB_ASSERT_EQ_UINT(cclib_read_be16(&r), 0x0102);
    CB_ASSERT_EQ_UINT(cclib_read_be32(&r), 0xdeadbeefu);
    CB_ASSERT_EQ_UINT(cclib_read_be64(&r), 0x0011223344556677u);
    CB_ASSERT_EQ_UINT(cclib_reader_remaining(&r), 0);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 0);
}

CB_TEST(reader_little_endian_fields) {
    static const unsigned char data[] = {0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 0x08, 0x07,
                                         0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    cclib_reader r;
    cclib_reader_init(&r, data, sizeof data);
    CB_ASSERT_EQ_UINT(cclib_read_le16(&r), 0x1234);
    CB_ASSERT_EQ_UINT(cclib_read_le32(&r), 0x12345678u);
    CB_ASSERT_EQ_UINT(cclib_read_le64(&r), 0x0102030405060708u);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 0);
}

CB_TEST(reader_short_read_fails_without_consuming) {
    static const unsigned char data[] = {0xaa, 0xbb, 0xcc};
    cclib_reader r;
    cclib_reader_init(&r, data, sizeof data);
    CB_ASSERT_EQ_UINT(cclib_read_be32(&r), 0);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 1);
    CB_ASSERT_EQ_UINT(cclib_reader_remaining(&r), 3);
}

CB_TEST(reader_failure_is_sticky) {
    static const unsigned char data[] = {0x01, 0x02, 0x03};
    cclib_reader r;
    cclib_reader_init(&r, data, sizeof data);
    CB_ASSERT_EQ_UINT(cclib_read_be16(&r), 0x0102);
    CB_ASSERT_EQ_UINT(cclib_read_be16(&r), 0);
    /* One byte is still there, but the reader has failed: no more reads. */
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 0);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 1);
}

CB_TEST(reader_copies_bytes) {
    static const char data[] = "\x03" "abc" "\xff";
    char got[4] = {0};
    cclib_reader r;
    cclib_reader_init(&r, data, 5);
    CB_ASSERT_EQ_INT(cclib_read_bytes(&r, got, cclib_read_u8(&r)), 0);
    CB_ASSERT_EQ_STR(got, "abc");
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 0xff);
    CB_ASSERT_EQ_INT(cclib_read_bytes(&r, got, 1), -1);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 1);
}

CB_TEST(reader_on_empty_input) {
    cclib_reader r;
    cclib_reader_init(&r, NULL, 0);
    CB_ASSERT_EQ_UINT(cclib_reader_remaining(&r), 0);
    CB_ASSERT_EQ_INT(cclib_read_bytes(&r, NULL, 0), 0);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 0);
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 0);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 1);
}

CB_TEST(writer_produces_network_order) {
    unsigned char buf[16];
    static const unsigned char want[] = {0x01, 0x80, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef,
                                         0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    cclib_writer w;
    cclib_writer_init(&w, buf, sizeof buf);
    cclib_write_u8(&w, 1);
    cclib_write_u8(&w, 0x80);
    cclib_write_be16(&w, 0x0102);
    cclib_write_be32(&w, 0xdeadbeefu);
    cclib_write_be64(&w, 0x0011223344556677u);
    CB_ASSERT_EQ_INT(cclib_writer_failed(&w), 0);
    CB_ASSERT_EQ_UINT(cclib_writer_len(&w), 16);
    CB_ASSERT_EQ_MEM(buf, want, 16);
}

CB_TEST(writer_overflow_writes_nothing_and_sticks) {
    unsigned char buf[6] = {0, 0, 0, 0, 0, 0};
    static const unsigned char want[] = {0x34, 0x12, 0x00, 0x00, 0x00, 0x00};
    cclib_writer w;
    cclib_writer_init(&w, buf, sizeof buf);
    cclib_write_le16(&w, 0x1234);
    cclib_write_le64(&w, 0xffffffffffffffffu); /* does not fit in the 4 left */
    CB_ASSERT_EQ_INT(cclib_writer_failed(&w), 1);
    cclib_write_u8(&w, 0xff); /* would fit, but the writer has failed */
    CB_ASSERT_EQ_UINT(cclib_writer_len(&w), 2);
    CB_ASSERT_EQ_MEM(buf, want, sizeof buf);
}

CB_TEST(writer_then_reader_roundtrip_mixed_orders) {
    unsigned char buf[2 + 4 + 8 + 2 + 4 + 8 + 3];
    cclib_writer w;
    cclib_reader r;
    char tail[3];
    cclib_writer_init(&w, buf, sizeof buf);
    cclib_write_le16(&w, 0xbeef);
    cclib_write_le32(&w, 0x80000001u);
    cclib_write_le64(&w, 0x8000000000000001u);
    cclib_write_be16(&w, 0xbeef);
    cclib_write_be32(&w, 0x80000001u);
    cclib_write_be64(&w, 0x8000000000000001u);
    cclib_write_bytes(&w, "\xe9\x00\x7f", 3);
    CB_ASSERT_EQ_INT(cclib_writer_failed(&w), 0);
    CB_ASSERT_EQ_UINT(cclib_writer_len(&w), sizeof buf);
    cclib_reader_init(&r, buf, cclib_writer_len(&w));
    CB_ASSERT_EQ_UINT(cclib_read_le16(&r), 0xbeef);
    CB_ASSERT_EQ_UINT(cclib_read_le32(&r), 0x80000001u);
    CB_ASSERT_EQ_UINT(cclib_read_le64(&r), 0x8000000000000001u);
    CB_ASSERT_EQ_UINT(cclib_read_be16(&r), 0xbeef);
    CB_ASSERT_EQ_UINT(cclib_read_be32(&r), 0x80000001u);
    CB_ASSERT_EQ_UINT(cclib_read_be64(&r), 0x8000000000000001u);
    CB_ASSERT_EQ_INT(cclib_read_bytes(&r, tail, 3), 0);
    CB_ASSERT_EQ_MEM(tail, "\xe9\x00\x7f", 3);
    CB_ASSERT_EQ_UINT(cclib_reader_remaining(&r), 0);
}

/* A packed record whose 32- and 64-bit fields sit at odd offsets, as in many wire
 * formats: decoding it field by field must not depend on alignment. */
CB_TEST(packed_record_with_misaligned_fields) {
    unsigned char rec[1 + 4 + 8 + 2];
    cclib_reader r;
    rec[0] = 0x7e;
    cclib_store_be32(rec + 1, 0xcafebabeu);
    cclib_store_le64(rec + 5, 0x0123456789abcdefu);
    cclib_store_be16(rec + 13, 0xfffe);
    CB_ASSERT_EQ_UINT(cclib_load_be32(rec + 1), 0xcafebabeu);
    CB_ASSERT_EQ_UINT(cclib_load_le64(rec + 5), 0x0123456789abcdefu);
    cclib_reader_init(&r, rec, sizeof rec);
    CB_ASSERT_EQ_UINT(cclib_read_u8(&r), 0x7e);
    CB_ASSERT_EQ_UINT(cclib_read_be32(&r), 0xcafebabeu);
    CB_ASSERT_EQ_UINT(cclib_read_le64(&r), 0x0123456789abcdefu);
    CB_ASSERT_EQ_UINT(cclib_read_be16(&r), 0xfffe);
    CB_ASSERT_EQ_INT(cclib_reader_failed(&r), 0);
}
