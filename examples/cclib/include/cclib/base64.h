/*
 * cclib/base64.h - RFC 4648 base64, standard (section 4) and URL-safe (section 5)
 * alphabets, with or without '=' padding.
 *
 * Decoding is strict: characters outside the alphabet (including whitespace), '='
 * anywhere but the end, a wrong amount of padding, an impossible length, and
 * non-zero leftover bits in the last character ("Zh==" instead of "Zg==") are all
 * rejected, so every byte string has exactly one accepted encoding per flag set.
 * Bytes >= 0x80 in the input are rejected like any other stray byte, whatever the
 * signedness of plain char.
 */
#ifndef CCLIB_BASE64_H
#define CCLIB_BASE64_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CCLIB_BASE64_STANDARD = 0,
    CCLIB_BASE64_URL = 1,   /* '-' and '_' instead of '+' and '/' */
    CCLIB_BASE64_NOPAD = 2  /* encode without '='; decode requires its absence */
};

/* Characters needed to encode n bytes, not counting the terminating NUL. */
size_t cclib_base64_encoded_len(size_t n, int flags);
/* Largest number of bytes that n characters can decode to. */
size_t cclib_base64_decoded_max(size_t n);

/* Writes cclib_base64_encoded_len(n, flags) characters and a NUL to dst; returns the
 * number of characters (without the NUL). */
size_t cclib_base64_encode(char *dst, const void *src, size_t n, int flags);

/* Decodes n characters from src into dst (room for cclib_base64_decoded_max(n)
 * bytes). Returns 0 and sets *out_len, or -1 if src is not valid base64 under flags
 * (*out_len is then left alone; dst may hold partial output). */
int cclib_base64_decode(void *dst, size_t *out_len, const char *src, size_t n, int flags);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_BASE64_H */
