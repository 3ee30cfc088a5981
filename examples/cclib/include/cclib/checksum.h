/*
 * cclib/checksum.h - checksums and non-cryptographic hashes over bytes.
 *
 * Inputs are `const void *` and are read as unsigned char, so hashing a `char`
 * string gives the same value whether plain char is signed (x86-64) or unsigned
 * (AArch64 Linux). A NULL pointer is allowed when len is 0.
 *
 *   crc32    CRC-32/ISO-HDLC (zlib, PNG, Ethernet): reflected polynomial 0xEDB88320,
 *            initial value and final XOR 0xFFFFFFFF. crc32("123456789") = 0xCBF43926.
 *   adler32  RFC 1950 Adler-32. adler32("Wikipedia") = 0x11E60398.
 *   fnv1a    FNV-1a, 32 and 64 bit. fnv1a32("foobar") = 0xBF9CF968.
 *   inet     RFC 1071 Internet checksum: ones' complement sum of big-endian 16-bit
 *            words (an odd final byte is padded with zero), complemented.
 */
#ifndef CCLIB_CHECKSUM_H
#define CCLIB_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t cclib_crc32(const void *data, size_t len);
/* Continue a CRC: cclib_crc32_update(cclib_crc32(a), b) == crc32 of a followed by b.
 * Start from 0. */
uint32_t cclib_crc32_update(uint32_t crc, const void *data, size_t len);

uint32_t cclib_adler32(const void *data, size_t len);
/* Continue an Adler-32; start from 1. */
uint32_t cclib_adler32_update(uint32_t adler, const void *data, size_t len);

uint32_t cclib_fnv1a32(const void *data, size_t len);
uint64_t cclib_fnv1a64(const void *data, size_t len);

uint16_t cclib_inet_checksum(const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_CHECKSUM_H */
