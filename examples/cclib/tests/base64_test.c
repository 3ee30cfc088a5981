/* Base64 against the RFC 4648 test vectors, both alphabets, with and without
 * padding, and strict rejection of malformed input. */
#include "crossbuild_test.h"

#include <string.h>

#include "cclib/base64.h"

static const char *const rfc_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const rfc_b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
static const char *const rfc_nopad[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

/* Decodes s (NUL-terminated) and checks the bytes; fails the case on any error. */
static void expect_decode(const char *s, int flags, const void *want, size_t want_len) {
    unsigned char out[512];
    size_t got = 99999;
    CB_ASSERT(cclib_base64_decoded_max(strlen(s)) <= sizeof out);
    CB_ASSERT_EQ_INT(cclib_base64_decode(out, &got, s, strlen(s), flags), 0);
    CB_ASSERT_EQ_UINT(got, want_len);
    CB_ASSERT_EQ_MEM(out, want, want_len);
}

static int decode_status(const char *s, int flags) {
    unsigned char out[64];
    size_t got = 0;
    return cclib_base64_decode(out, &got, s, strlen(s), flags);
}

CB_TEST(encode_rfc4648_vectors) {
    size_t i;
    for (i = 0; i < 7; i++) {
        char out[16];
        size_t n = cclib_base64_encode(out, rfc_plain[i], strlen(rfc_plain[i]), 0);
        CB_ASSERT_EQ_STR(out, rfc_b64[i]);
        CB_ASSERT_EQ_UINT(n, strlen(rfc_b64[i]));
    }
}

CB_TEST(decode_rfc4648_vectors) {
    size_t i;
    for (i = 0; i < 7; i++) expect_decode(rfc_b64[i], 0, rfc_plain[i], strlen(rfc_plain[i]));
}

CB_TEST(encode_without_padding) {
    size_t i;
    for (i = 0; i < 7; i++) {
        char out[16];
        cclib_base64_encode(out, rfc_plain[i], strlen(rfc_plain[i]), CCLIB_BASE64_NOPAD);
        CB_ASSERT_EQ_STR(out, rfc_nopad[i]);
    }
}

CB_TEST(decode_without_padding) {
    size_t i;
    for (i = 0; i < 7; i++) {
        expect_decode(rfc_nopad[i], CCLIB_BASE64_NOPAD, rfc_plain[i], strlen(rfc_plain[i]));
    }
}

CB_TEST(encoded_and_decoded_lengths) {
    size_t n;
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(0, 0), 0);
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(1, 0), 4);
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(3, 0), 4);
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(4, 0), 8);
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(1, CCLIB_BASE64_NOPAD), 2);
    CB_ASSERT_EQ_UINT(cclib_base64_encoded_len(2, CCLIB_BASE64_NOPAD), 3);
    for (n = 0; n < 100; n++) {
        CB_ASSERT(cclib_base64_decoded_max(cclib_base64_encoded_len(n, 0)) >= n);
        CB_ASSERT_EQ_UINT(cclib_base64_decoded_max(cclib_base64_encoded_len(n, CCLIB_BASE64_NOPAD)), n);
    }
}

CB_TEST(standard_and_url_alphabets_differ_only_in_62_and_63) {
    char out[16];
    cclib_base64_encode(out, "\xfb\xff", 2, 0);
    CB_ASSERT_EQ_STR(out, "+/8=");
    cclib_base64_encode(out, "\xfb\xff", 2, CCLIB_BASE64_URL);
    CB_ASSERT_EQ_STR(out, "-_8=");
    cclib_base64_encode(out, "\xfb\xef\xbe", 3, CCLIB_BASE64_URL | CCLIB_BASE64_NOPAD);
    CB_ASSERT_EQ_STR(out, "----");
    cclib_base64_encode(out, "\xff\xff\xff", 3, 0);
    CB_ASSERT_EQ_STR(out, "////");
}

CB_TEST(url_alphabet_decodes) {
    expect_decode("-_8=", CCLIB_BASE64_URL, "\xfb\xff", 2);
    expect_decode("____", CCLIB_BASE64_URL, "\xff\xff\xff", 3);
    expect_decode("-_8", CCLIB_BASE64_URL | CCLIB_BASE64_NOPAD, "\xfb\xff", 2);
}

CB_TEST(each_alphabet_rejects_the_others_specials) {
    CB_ASSERT_EQ_INT(decode_status("-_8=", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("+/8=", CCLIB_BASE64_URL), -1);
}

CB_TEST(all_byte_values_roundtrip) {
    static const char want[] =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
        "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9"
        "fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8"
        "vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7"
        "/P3+/w==";
    unsigned char all[256];
    char enc[400];
    int i;
    for (i = 0; i < 256; i++) all[i] = (unsigned char)i;
    CB_ASSERT_EQ_UINT(cclib_base64_encode(enc, all, sizeof all, 0), 344);
    CB_ASSERT_EQ_STR(enc, want);
    expect_decode(enc, 0, all, sizeof all);
}

CB_TEST(roundtrip_every_length_and_flag_set) {
    unsigned char src[64];
    char enc[100];
    size_t n;
    int flags;
    for (n = 0; n < sizeof src; n++) src[n] = (unsigned char)(0xff - n * 13);
    for (flags = 0; flags < 4; flags++) {
        for (n = 0; n <= sizeof src; n++) {
            size_t len = cclib_base64_encode(enc, src, n, flags);
            CB_ASSERT_EQ_UINT(len, cclib_base64_encoded_len(n, flags));
            CB_ASSERT_EQ_UINT(strlen(enc), len);
            expect_decode(enc, flags, src, n);
        }
    }
}

CB_TEST(utf8_text_encodes_the_same_everywhere) {
    char out[64];
    cclib_base64_encode(out, "caf\xc3\xa9", 5, 0);
    CB_ASSERT_EQ_STR(out, "Y2Fmw6k=");
    expect_decode("Y2Fmw6k=", 0, "caf\xc3\xa9", 5);
    cclib_base64_encode(out, "Many hands make light work.", 27, 0);
    CB_ASSERT_EQ_STR(out, "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu");
}

CB_TEST(rejects_characters_outside_the_alphabet) {
    CB_ASSERT_EQ_INT(decode_status("Zm9v!A==", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm 9v", CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm9v\n", CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm9.", 0), -1);
}

/* Bytes >= 0x80 are negative as plain char on x86-64. A decoder that indexed a
 * 256-entry table with a plain char would read before the table there; ours must
 * simply reject them, on every architecture. */
CB_TEST(rejects_high_bytes_on_every_architecture) {
    CB_ASSERT_EQ_INT(decode_status("Zm9\xc3\xa9", CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_INT(decode_status("\xff\xff\xff\xff", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zg\x80=", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("\xbdZm8", 0), -1);
}

CB_TEST(rejects_bad_lengths) {
    CB_ASSERT_EQ_INT(decode_status("Z", CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm9vY", CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm8", 0), -1);   /* padding required */
    CB_ASSERT_EQ_INT(decode_status("Zm9vY", 0), -1);
}

CB_TEST(rejects_misplaced_or_excess_padding) {
    CB_ASSERT_EQ_INT(decode_status("Z===", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("====", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zg==Zg==", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Z=g=", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm8=", CCLIB_BASE64_NOPAD), -1); /* '=' not allowed */
    CB_ASSERT_EQ_INT(decode_status("Zm9v====", 0), -1);
}

CB_TEST(rejects_nonzero_leftover_bits) {
    /* "Zg==" is "f"; "Zh==" has the same first byte but a stray bit in the leftovers. */
    CB_ASSERT_EQ_INT(decode_status("Zg==", 0), 0);
    CB_ASSERT_EQ_INT(decode_status("Zh==", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zm8=", 0), 0);
    CB_ASSERT_EQ_INT(decode_status("Zm9=", 0), -1);
    CB_ASSERT_EQ_INT(decode_status("Zh", CCLIB_BASE64_NOPAD), -1);
}

CB_TEST(empty_input_decodes_to_nothing) {
    size_t got = 123;
    CB_ASSERT_EQ_INT(cclib_base64_decode(NULL, &got, "", 0, 0), 0);
    CB_ASSERT_EQ_UINT(got, 0);
    got = 123;
    CB_ASSERT_EQ_INT(cclib_base64_decode(NULL, &got, "", 0, CCLIB_BASE64_NOPAD), 0);
    CB_ASSERT_EQ_UINT(got, 0);
}

CB_TEST(zero_bytes_encode_as_A) {
    char out[16];
    cclib_base64_encode(out, "\0", 1, 0);
    CB_ASSERT_EQ_STR(out, "AA==");
    cclib_base64_encode(out, "\0\0", 2, 0);
    CB_ASSERT_EQ_STR(out, "AAA=");
    cclib_base64_encode(out, "\0\0\0", 3, 0);
    CB_ASSERT_EQ_STR(out, "AAAA");
    expect_decode("AAA=", 0, "\0\0", 2);
}

CB_TEST(encode_terminates_output) {
    char out[16];
    memset(out, 'x', sizeof out);
    CB_ASSERT_EQ_UINT(cclib_base64_encode(out, "fo", 2, CCLIB_BASE64_NOPAD), 3);
    CB_ASSERT_EQ_MEM(out, "Zm8\0", 4);
    CB_ASSERT_EQ_UINT((unsigned char)out[4], 'x'); /* nothing past the NUL */
}

CB_TEST(failed_decode_leaves_length_alone) {
    unsigned char out[16];
    size_t got = 4242;
    CB_ASSERT_EQ_INT(cclib_base64_decode(out, &got, "Zm9vYmFy!", 9, CCLIB_BASE64_NOPAD), -1);
    CB_ASSERT_EQ_UINT(got, 4242);
}
