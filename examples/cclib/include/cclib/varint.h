/*
 * cclib/varint.h - variable-length integer encodings.
 *
 *   LEB128 (little-endian base 128, as in DWARF, WebAssembly and protobuf varints):
 *     7 bits per byte, least significant group first, high bit set on every byte but
 *     the last. Unsigned (ULEB128) and signed two's complement (SLEB128).
 *   VLQ (big-endian base 128, as in MIDI files): the same bytes' shape but most
 *     significant group first.
 *   Zigzag: maps signed to unsigned so small magnitudes stay small
 *     (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...), as protobuf's sint types do.
 *
 * Encoders write to a caller buffer of at least CCLIB_VARINT_MAX_LEN bytes and return
 * the number of bytes written. Decoders return the number of bytes consumed, or 0 if
 * the input is truncated, longer than CCLIB_VARINT_MAX_LEN bytes, or encodes a value
 * that does not fit in 64 bits; *out is written only on success. Redundant
 * (non-minimal) encodings within the length limit are accepted.
 *
 * All arithmetic is on unsigned types, so the results do not depend on how the
 * compiler shifts negative numbers.
 */
#ifndef CCLIB_VARINT_H
#define CCLIB_VARINT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CCLIB_VARINT_MAX_LEN 10

size_t cclib_uleb128_size(uint64_t v);
size_t cclib_uleb128_encode(uint64_t v, uint8_t *out);
size_t cclib_uleb128_decode(const uint8_t *in, size_t len, uint64_t *out);

size_t cclib_sleb128_size(int64_t v);
size_t cclib_sleb128_encode(int64_t v, uint8_t *out);
size_t cclib_sleb128_decode(const uint8_t *in, size_t len, int64_t *out);

size_t cclib_vlq_encode(uint64_t v, uint8_t *out);
size_t cclib_vlq_decode(const uint8_t *in, size_t len, uint64_t *out);

uint32_t cclib_zigzag_encode32(int32_t v);
int32_t cclib_zigzag_decode32(uint32_t v);
uint64_t cclib_zigzag_encode64(int64_t v);
int64_t cclib_zigzag_decode64(uint64_t v);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_VARINT_H */
