/* ASCII text helpers. Many cases feed bytes >= 0x80 through plain char, which is
 * signed on x86-64 and unsigned on AArch64 Linux: the answers must not change. */
#include "crossbuild_test.h"

#include <limits.h>
#include <string.h>

#include "cclib/text.h"

/* Not a library test: records which kind of target this binary is, so a run on both
 * architectures shows both kinds were exercised. AArch64 Linux (AAPCS64) makes plain
 * char unsigned, x86-64 makes it signed; -fsigned-char / -funsigned-char override. */
CB_TEST(plain_char_signedness_matches_the_target) {
#if defined(__CHAR_UNSIGNED__)
    CB_ASSERT_EQ_INT(CHAR_MIN, 0);
    CB_ASSERT_EQ_INT((int)(char)0xe9, 0xe9);
#else
    CB_ASSERT(CHAR_MIN < 0);
    CB_ASSERT_EQ_INT((int)(char)0xe9, -23);
#endif
#if defined(__aarch64__) && defined(__linux__) && !defined(__CHAR_UNSIGNED__)
    /* Only with an explicit -fsigned-char. */
    CB_ASSERT(CHAR_MIN < 0);
#endif
}

CB_TEST(classifies_every_byte_value_consistently) {
    int b;
    for (b = 0; b < 256; b++) {
        char c = (char)b;
        cclib_char_class k = cclib_classify(c);
        int want;
        if (b >= 0x80) want = CCLIB_CLASS_HIGH;
        else if (b == ' ' || (b >= 9 && b <= 13)) want = CCLIB_CLASS_SPACE;
        else if (b < 0x20 || b == 0x7f) want = CCLIB_CLASS_CONTROL;
        else if (b >= '0' && b <= '9') want = CCLIB_CLASS_DIGIT;
        else if (b >= 'A' && b <= 'Z') want = CCLIB_CLASS_UPPER;
        else if (b >= 'a' && b <= 'z') want = CCLIB_CLASS_LOWER;
        else want = CCLIB_CLASS_PUNCT;
        CB_ASSERT_EQ_INT(k, want);
        CB_ASSERT_EQ_INT(cclib_is_high(c), b >= 0x80);
        CB_ASSERT_EQ_INT(cclib_is_print(c), b >= 0x20 && b <= 0x7e);
    }
}

CB_TEST(class_counts_over_all_bytes) {
    int counts[7] = {0, 0, 0, 0, 0, 0, 0};
    int b;
    for (b = 0; b < 256; b++) counts[cclib_classify((char)b)]++;
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_CONTROL], 33 - 5); /* 0..31, 127, minus \t..\r */
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_SPACE], 6);
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_DIGIT], 10);
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_UPPER], 26);
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_LOWER], 26);
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_PUNCT], 32);
    CB_ASSERT_EQ_INT(counts[CCLIB_CLASS_HIGH], 128);
}

CB_TEST(latin1_and_utf8_bytes_are_not_letters_or_space) {
    /* 0xe9 is e-acute in Latin-1, 0xa0 no-break space, 0xc3 a UTF-8 lead byte. */
    static const char high[] = "\xe9\xa0\xc3\xa9\xff\x80\x85";
    size_t i;
    for (i = 0; i < sizeof high - 1; i++) {
        CB_ASSERT_EQ_INT(cclib_is_alpha(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_alnum(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_space(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_digit(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_xdigit(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_print(high[i]), 0);
        CB_ASSERT_EQ_INT(cclib_is_high(high[i]), 1);
    }
}

CB_TEST(ascii_predicates) {
    CB_ASSERT(cclib_is_alpha('a') && cclib_is_alpha('Z') && !cclib_is_alpha('@'));
    CB_ASSERT(!cclib_is_alpha('[') && !cclib_is_alpha('`') && !cclib_is_alpha('{'));
    CB_ASSERT(cclib_is_digit('0') && cclib_is_digit('9') && !cclib_is_digit('/'));
    CB_ASSERT(!cclib_is_digit(':'));
    CB_ASSERT(cclib_is_upper('Q') && !cclib_is_upper('q'));
    CB_ASSERT(cclib_is_lower('q') && !cclib_is_lower('Q'));
    CB_ASSERT(cclib_is_space('\v') && cclib_is_space('\f') && !cclib_is_space('\0'));
    CB_ASSERT(cclib_is_alnum('7') && !cclib_is_alnum('_'));
}

CB_TEST(hex_values) {
    CB_ASSERT_EQ_INT(cclib_hex_value('0'), 0);
    CB_ASSERT_EQ_INT(cclib_hex_value('9'), 9);
    CB_ASSERT_EQ_INT(cclib_hex_value('a'), 10);
    CB_ASSERT_EQ_INT(cclib_hex_value('F'), 15);
    CB_ASSERT_EQ_INT(cclib_hex_value('g'), -1);
    CB_ASSERT_EQ_INT(cclib_hex_value('G'), -1);
    CB_ASSERT_EQ_INT(cclib_hex_value('\xe1'), -1);
    CB_ASSERT_EQ_INT(cclib_hex_value('\0'), -1);
}

CB_TEST(case_conversion_is_ascii_only) {
    CB_ASSERT_EQ_INT(cclib_to_lower('A'), 'a');
    CB_ASSERT_EQ_INT(cclib_to_lower('z'), 'z');
    CB_ASSERT_EQ_INT(cclib_to_upper('m'), 'M');
    CB_ASSERT_EQ_INT(cclib_to_upper('@'), '@');
    /* High bytes come back unchanged, compared as bytes. */
    CB_ASSERT_EQ_UINT((unsigned char)cclib_to_lower('\xc9'), 0xc9);
    CB_ASSERT_EQ_UINT((unsigned char)cclib_to_upper('\xe9'), 0xe9);
}

CB_TEST(fold_in_place_leaves_utf8_alone) {
    char s[] = "Caf\xc3\xa9 AU LAIT \xc3\x89t\xc3\xa9";
    cclib_lower_inplace(s, strlen(s));
    CB_ASSERT_EQ_STR(s, "caf\xc3\xa9 au lait \xc3\x89t\xc3\xa9");
    cclib_upper_inplace(s, strlen(s));
    CB_ASSERT_EQ_STR(s, "CAF\xc3\xa9 AU LAIT \xc3\x89T\xc3\xa9");
}

CB_TEST(count_high_bytes) {
    const char *s = "na\xc3\xafve caf\xc3\xa9 \xe2\x82\xac";
    CB_ASSERT_EQ_UINT(cclib_count_high(s, strlen(s)), 7);
    CB_ASSERT_EQ_UINT(cclib_count_high("plain ascii", 11), 0);
    CB_ASSERT_EQ_UINT(cclib_count_high("\x7f\x80", 2), 1);
    CB_ASSERT_EQ_UINT(cclib_count_high("", 0), 0);
}

/* The naive check `c >= 0x80` on a plain char: never true where char is signed. This
 * shows the pitfall exists on the target, while the library counts correctly. */
CB_TEST(naive_high_byte_test_depends_on_char_signedness) {
    const char *s = "\xc3\xa9";
    size_t naive = 0, i;
    for (i = 0; i < 2; i++) {
        int v = s[i]; /* plain char -> int: sign-extends where char is signed */
        if (v >= 0x80) naive++;
    }
    CB_ASSERT_EQ_UINT(naive, CHAR_MIN < 0 ? 0 : 2);
    CB_ASSERT_EQ_UINT(cclib_count_high(s, 2), 2);
}

CB_TEST(casecmp_ignores_ascii_case) {
    CB_ASSERT_EQ_INT(cclib_casecmp("Hello", "hELLO"), 0);
    CB_ASSERT_EQ_INT(cclib_casecmp("", ""), 0);
    CB_ASSERT(cclib_casecmp("apple", "Banana") < 0);
    CB_ASSERT(cclib_casecmp("Zebra", "apple") > 0);
    CB_ASSERT(cclib_casecmp("abc", "ABCD") < 0);
    CB_ASSERT(cclib_casecmp("abcd", "ABC") > 0);
}

/* strcmp orders bytes as unsigned char, so "\xe9" sorts after "z" everywhere. A
 * comparison written as `*a - *b` over plain char would put it first on x86-64. */
CB_TEST(casecmp_orders_high_bytes_after_ascii) {
    CB_ASSERT(cclib_casecmp("\xe9t\xe9", "zoo") > 0);
    CB_ASSERT(cclib_casecmp("zoo", "\xe9t\xe9") < 0);
    CB_ASSERT(cclib_casecmp("caf\xc3\xa9", "cafe") > 0);
    CB_ASSERT(cclib_casecmp("\x7f", "\x80") < 0);
    CB_ASSERT(cclib_casecmp("\xff", "\x80") > 0);
    CB_ASSERT_EQ_INT(cclib_casecmp("\xc3\x89", "\xc3\x89"), 0);
    CB_ASSERT((strcmp("\xe9", "z") > 0) == (cclib_casecmp("\xe9", "z") > 0));
}

CB_TEST(casecmp_does_not_fold_high_bytes) {
    /* E-acute upper (0xc9) and lower (0xe9) in Latin-1 are different bytes to us. */
    CB_ASSERT(cclib_casecmp("\xc9", "\xe9") < 0);
    CB_ASSERT(cclib_casecmp("\xc3\x89", "\xc3\xa9") < 0);
}

static cclib_str S(const char *s) { return cclib_str_from(s); }

CB_TEST(trim_both_ends) {
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("  hello world \t\n")), "hello world"));
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("\r\n\v\f")), ""));
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("")), ""));
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("x")), "x"));
    CB_ASSERT(cclib_str_eq(cclib_str_trim_left(S("  a b  ")), "a b  "));
    CB_ASSERT(cclib_str_eq(cclib_str_trim_right(S("  a b  ")), "  a b"));
}

CB_TEST(trim_keeps_high_bytes) {
    /* 0xa0 (Latin-1 no-break space) and 0x85 (NEL) are not ASCII space: kept. */
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S(" \xa0x\xa0 ")), "\xa0x\xa0"));
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("\x85\t")), "\x85"));
    CB_ASSERT(cclib_str_eq(cclib_str_trim(S("\t\xc3\xa9\t")), "\xc3\xa9"));
}

CB_TEST(str_eq_and_make) {
    const char *text = "abcdef";
    CB_ASSERT(cclib_str_eq(cclib_str_make(text + 1, 3), "bcd"));
    CB_ASSERT(!cclib_str_eq(cclib_str_make(text, 3), "abcd"));
    CB_ASSERT(!cclib_str_eq(cclib_str_make(text, 3), "ab"));
    CB_ASSERT(cclib_str_eq(cclib_str_make(text, 0), ""));
    CB_ASSERT_EQ_UINT(cclib_str_from(NULL).len, 0);
}

/* Collects up to 8 fields of s split on sep, each copied into out[i]. */
static size_t split_all(const char *s, char sep, char out[8][16]) {
    cclib_str rest = S(s), field;
    size_t n = 0;
    while (cclib_str_split_next(&rest, sep, &field)) {
        CB_ASSERT(n < 8 && field.len < 16);
        memcpy(out[n], field.ptr, field.len);
        out[n][field.len] = '\0';
        n++;
    }
    return n;
}

CB_TEST(split_on_commas_keeps_empty_fields) {
    char f[8][16];
    CB_ASSERT_EQ_UINT(split_all("a,b,,c", ',', f), 4);
    CB_ASSERT_EQ_STR(f[0], "a");
    CB_ASSERT_EQ_STR(f[1], "b");
    CB_ASSERT_EQ_STR(f[2], "");
    CB_ASSERT_EQ_STR(f[3], "c");
}

CB_TEST(split_edge_cases) {
    char f[8][16];
    CB_ASSERT_EQ_UINT(split_all("", ',', f), 1);
    CB_ASSERT_EQ_STR(f[0], "");
    CB_ASSERT_EQ_UINT(split_all("a,", ',', f), 2);
    CB_ASSERT_EQ_STR(f[1], "");
    CB_ASSERT_EQ_UINT(split_all(",", ',', f), 2);
    CB_ASSERT_EQ_UINT(split_all("no separator", ',', f), 1);
    CB_ASSERT_EQ_STR(f[0], "no separator");
}

/* A separator >= 0x80 (here the Latin-1 middle dot 0xb7) is negative as a signed
 * char; it must still be found, and a UTF-8 byte must not be mistaken for it. */
CB_TEST(split_on_high_byte_separator) {
    char f[8][16];
    CB_ASSERT_EQ_UINT(split_all("a\xb7" "bc\xb7" "\xc3\xa9", '\xb7', f), 3);
    CB_ASSERT_EQ_STR(f[0], "a");
    CB_ASSERT_EQ_STR(f[1], "bc");
    CB_ASSERT_EQ_STR(f[2], "\xc3\xa9");
    CB_ASSERT_EQ_UINT(split_all("\xc3\xa9", '\xb7', f), 1);
}

CB_TEST(split_then_trim_parses_a_csv_line) {
    cclib_str rest = S(" id = 42 ;  name=arm64; ;"), field;
    const char *want[] = {"id = 42", "name=arm64", "", ""};
    size_t n = 0;
    while (cclib_str_split_next(&rest, ';', &field)) {
        CB_ASSERT(n < 4);
        CB_ASSERT(cclib_str_eq(cclib_str_trim(field), want[n]));
        n++;
    }
    CB_ASSERT_EQ_UINT(n, 4);
}

CB_TEST(parse_u64_valid) {
    uint64_t v = 0;
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("0"), &v), 0);
    CB_ASSERT_EQ_UINT(v, 0);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("007"), &v), 0);
    CB_ASSERT_EQ_UINT(v, 7);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("4294967296"), &v), 0);
    CB_ASSERT_EQ_UINT(v, 4294967296u);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("18446744073709551615"), &v), 0);
    CB_ASSERT_EQ_UINT(v, UINT64_MAX);
}

CB_TEST(parse_u64_rejects_bad_input) {
    uint64_t v = 31337;
    CB_ASSERT_EQ_INT(cclib_parse_u64(S(""), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("-1"), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("+1"), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S(" 1"), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("12a"), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("1\xb2"), &v), -1); /* Latin-1 superscript two */
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("18446744073709551616"), &v), -1);
    CB_ASSERT_EQ_INT(cclib_parse_u64(S("99999999999999999999"), &v), -1);
    CB_ASSERT_EQ_UINT(v, 31337);
}
