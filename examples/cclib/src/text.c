#include "cclib/text.h"

#include <string.h>

/* The one place a char becomes a number: always 0..255. */
#define BYTE(c) ((unsigned)(unsigned char)(c))

int cclib_is_upper(char c) { return BYTE(c) >= 'A' && BYTE(c) <= 'Z'; }
int cclib_is_lower(char c) { return BYTE(c) >= 'a' && BYTE(c) <= 'z'; }
int cclib_is_alpha(char c) { return cclib_is_upper(c) || cclib_is_lower(c); }
int cclib_is_digit(char c) { return BYTE(c) >= '0' && BYTE(c) <= '9'; }
int cclib_is_alnum(char c) { return cclib_is_alpha(c) || cclib_is_digit(c); }
int cclib_is_print(char c) { return BYTE(c) >= 0x20 && BYTE(c) <= 0x7e; }
int cclib_is_high(char c) { return BYTE(c) >= 0x80; }

int cclib_is_space(char c) {
    unsigned b = BYTE(c);
    return b == ' ' || (b >= '\t' && b <= '\r');
}

int cclib_is_xdigit(char c) { return cclib_hex_value(c) >= 0; }

cclib_char_class cclib_classify(char c) {
    unsigned b = BYTE(c);
    if (b >= 0x80) return CCLIB_CLASS_HIGH;
    if (cclib_is_space(c)) return CCLIB_CLASS_SPACE;
    if (b < 0x20 || b == 0x7f) return CCLIB_CLASS_CONTROL;
    if (cclib_is_digit(c)) return CCLIB_CLASS_DIGIT;
    if (cclib_is_upper(c)) return CCLIB_CLASS_UPPER;
    if (cclib_is_lower(c)) return CCLIB_CLASS_LOWER;
    return CCLIB_CLASS_PUNCT;
}

char cclib_to_lower(char c) { return cclib_is_upper(c) ? (char)(c + ('a' - 'A')) : c; }
char cclib_to_upper(char c) { return cclib_is_lower(c) ? (char)(c - ('a' - 'A')) : c; }

int cclib_hex_value(char c) {
    unsigned b = BYTE(c);
    if (b >= '0' && b <= '9') return (int)(b - '0');
    if (b >= 'a' && b <= 'f') return (int)(b - 'a' + 10);
    if (b >= 'A' && b <= 'F') return (int)(b - 'A' + 10);
    return -1;
}

size_t cclib_count_high(const char *s, size_t n) {
    size_t i, count = 0;
    for (i = 0; i < n; i++) count += BYTE(s[i]) >= 0x80;
    return count;
}

int cclib_casecmp(const char *a, const char *b) {
    for (;; a++, b++) {
        unsigned x = BYTE(cclib_to_lower(*a));
        unsigned y = BYTE(cclib_to_lower(*b));
        if (x != y) return x < y ? -1 : 1;
        if (x == 0) return 0;
    }
}

void cclib_lower_inplace(char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) s[i] = cclib_to_lower(s[i]);
}

void cclib_upper_inplace(char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) s[i] = cclib_to_upper(s[i]);
}

cclib_str cclib_str_make(const char *p, size_t n) {
    cclib_str s;
    s.ptr = p;
    s.len = n;
    return s;
}

cclib_str cclib_str_from(const char *s) { return cclib_str_make(s, s != NULL ? strlen(s) : 0); }

int cclib_str_eq(cclib_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

cclib_str cclib_str_trim_left(cclib_str s) {
    while (s.len > 0 && cclib_is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    return s;
}

cclib_str cclib_str_trim_right(cclib_str s) {
    while (s.len > 0 && cclib_is_space(s.ptr[s.len - 1])) s.len--;
    return s;
}

cclib_str cclib_str_trim(cclib_str s) { return cclib_str_trim_right(cclib_str_trim_left(s)); }

int cclib_str_split_next(cclib_str *rest, char sep, cclib_str *field) {
    const char *hit;
    if (rest->ptr == NULL) return 0; /* exhausted */
    /* memchr compares as unsigned char, so a separator >= 0x80 is found either way. */
    hit = rest->len > 0 ? (const char *)memchr(rest->ptr, BYTE(sep), rest->len) : NULL;
    if (hit == NULL) {
        *field = *rest;
        rest->ptr = NULL;
        rest->len = 0;
        return 1;
    }
    field->ptr = rest->ptr;
    field->len = (size_t)(hit - rest->ptr);
    rest->len -= field->len + 1;
    rest->ptr = hit + 1;
    return 1;
}

int cclib_parse_u64(cclib_str s, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (s.len == 0) return -1;
    for (i = 0; i < s.len; i++) {
        unsigned d;
        if (!cclib_is_digit(s.ptr[i])) return -1;
        d = BYTE(s.ptr[i]) - '0';
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
