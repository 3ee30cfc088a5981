/*
 * cclib/text.h - ASCII text helpers that give the same answers whatever the
 * signedness of plain char.
 *
 * On x86-64 plain char is signed, on AArch64 Linux it is unsigned, so the byte 0xE9
 * read through a char is -23 on one and 233 on the other. The usual traps:
 *   - <ctype.h> functions are undefined for negative values other than EOF;
 *   - `c >= 0x80` is never true for a signed char;
 *   - `*a - *b` in a comparison orders "\xe9" before "a" on x86-64 only.
 * Everything here converts each char to unsigned char before looking at it: bytes
 * >= 0x80 are never letters, digits or space, case folding leaves them alone, and
 * comparisons order bytes as unsigned values (as strcmp does).
 */
#ifndef CCLIB_TEXT_H
#define CCLIB_TEXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Classification: non-zero if c is in the class, ASCII only, locale-independent.
 * Space is ' ', '\t', '\n', '\v', '\f', '\r'. */
int cclib_is_alpha(char c);
int cclib_is_digit(char c);
int cclib_is_alnum(char c);
int cclib_is_space(char c);
int cclib_is_upper(char c);
int cclib_is_lower(char c);
int cclib_is_xdigit(char c);
int cclib_is_print(char c); /* 0x20..0x7e */
/* 1 for bytes 0x80..0xff (e.g. UTF-8 lead and continuation bytes). */
int cclib_is_high(char c);

typedef enum {
    CCLIB_CLASS_CONTROL, /* 0x00..0x1f and 0x7f, except space characters */
    CCLIB_CLASS_SPACE,
    CCLIB_CLASS_DIGIT,
    CCLIB_CLASS_UPPER,
    CCLIB_CLASS_LOWER,
    CCLIB_CLASS_PUNCT, /* the rest of 0x21..0x7e */
    CCLIB_CLASS_HIGH   /* 0x80..0xff */
} cclib_char_class;

cclib_char_class cclib_classify(char c);

char cclib_to_lower(char c);
char cclib_to_upper(char c);
/* 0..15 for a hex digit (either case), otherwise -1. */
int cclib_hex_value(char c);

/* Count of bytes in s[0..n) that are >= 0x80. */
size_t cclib_count_high(const char *s, size_t n);

/* Like strcmp but ASCII letters compare case-insensitively. Returns <0, 0 or >0,
 * comparing bytes as unsigned values. */
int cclib_casecmp(const char *a, const char *b);
/* Folds ASCII letters in place; other bytes are untouched. */
void cclib_lower_inplace(char *s, size_t n);
void cclib_upper_inplace(char *s, size_t n);

/* A non-owning slice of text (not NUL-terminated). */
typedef struct cclib_str {
    const char *ptr;
    size_t len;
} cclib_str;

cclib_str cclib_str_from(const char *s); /* the whole NUL-terminated string */
cclib_str cclib_str_make(const char *p, size_t n);
int cclib_str_eq(cclib_str a, const char *b); /* exact match with a NUL-terminated b */
cclib_str cclib_str_trim_left(cclib_str s);
cclib_str cclib_str_trim_right(cclib_str s);
cclib_str cclib_str_trim(cclib_str s);

/*
 * Splitting: call repeatedly with the same *rest (initially the whole text). Each
 * call stores the next field in *field and returns 1, or returns 0 when there are
 * no more. Every separator ends a field, so "a,,b" gives "a", "", "b", "a," gives
 * "a", "" and the empty text gives one empty field. sep may be any byte, including
 * one >= 0x80.
 */
int cclib_str_split_next(cclib_str *rest, char sep, cclib_str *field);

/* Parses a non-empty run of decimal digits (no sign, no spaces) into *out. Returns
 * 0, or -1 on an empty string, a non-digit or a value above UINT64_MAX. */
int cclib_parse_u64(cclib_str s, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_TEXT_H */
