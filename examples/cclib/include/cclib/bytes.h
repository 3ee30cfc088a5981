/*
 * cclib/bytes.h - fixed-width integers to and from byte buffers.
 *
 * Every function here works on any address: nothing assumes the pointer is aligned
 * for the integer type, and nothing depends on the host's byte order except the
 * *_native functions, which say so. Bytes are handled as unsigned char throughout, so
 * the results do not depend on whether plain char is signed.
 */
#ifndef CCLIB_BYTES_H
#define CCLIB_BYTES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Explicit byte order: the same answer on every host. */
uint16_t cclib_load_le16(const void *p);
uint32_t cclib_load_le32(const void *p);
uint64_t cclib_load_le64(const void *p);
uint16_t cclib_load_be16(const void *p);
uint32_t cclib_load_be32(const void *p);
uint64_t cclib_load_be64(const void *p);

void cclib_store_le16(void *p, uint16_t v);
void cclib_store_le32(void *p, uint32_t v);
void cclib_store_le64(void *p, uint64_t v);
void cclib_store_be16(void *p, uint16_t v);
void cclib_store_be32(void *p, uint32_t v);
void cclib_store_be64(void *p, uint64_t v);

/* Host byte order, any alignment (memcpy underneath). */
uint32_t cclib_load_u32_native(const void *p);
uint64_t cclib_load_u64_native(const void *p);
void cclib_store_u32_native(void *p, uint32_t v);
void cclib_store_u64_native(void *p, uint64_t v);

/* 1 on a little-endian host, 0 on a big-endian one. */
int cclib_host_is_little_endian(void);

uint16_t cclib_bswap16(uint16_t v);
uint32_t cclib_bswap32(uint32_t v);
uint64_t cclib_bswap64(uint64_t v);

/*
 * A bounds-checked cursor over a byte buffer, e.g. for parsing a network-order
 * header. A read past the end returns 0, reads nothing and marks the reader failed;
 * once failed, every later read fails too, so a parser can check once at the end.
 */
typedef struct cclib_reader {
    const unsigned char *data;
    size_t len;
    size_t pos;
    int failed;
} cclib_reader;

void cclib_reader_init(cclib_reader *r, const void *data, size_t len);
size_t cclib_reader_remaining(const cclib_reader *r);
int cclib_reader_failed(const cclib_reader *r);
uint8_t cclib_read_u8(cclib_reader *r);
uint16_t cclib_read_be16(cclib_reader *r);
uint32_t cclib_read_be32(cclib_reader *r);
uint64_t cclib_read_be64(cclib_reader *r);
uint16_t cclib_read_le16(cclib_reader *r);
uint32_t cclib_read_le32(cclib_reader *r);
uint64_t cclib_read_le64(cclib_reader *r);
/* Copies n bytes to dst; 0 on success, -1 (nothing copied, reader failed) if short. */
int cclib_read_bytes(cclib_reader *r, void *dst, size_t n);

/* The writing counterpart: a write that does not fit writes nothing and marks the
 * writer failed (sticky, like the reader). */
typedef struct cclib_writer {
    unsigned char *data;
    size_t cap;
    size_t pos;
    int failed;
} cclib_writer;

void cclib_writer_init(cclib_writer *w, void *data, size_t cap);
size_t cclib_writer_len(const cclib_writer *w);
int cclib_writer_failed(const cclib_writer *w);
void cclib_write_u8(cclib_writer *w, uint8_t v);
void cclib_write_be16(cclib_writer *w, uint16_t v);
void cclib_write_be32(cclib_writer *w, uint32_t v);
void cclib_write_be64(cclib_writer *w, uint64_t v);
void cclib_write_le16(cclib_writer *w, uint16_t v);
void cclib_write_le32(cclib_writer *w, uint32_t v);
void cclib_write_le64(cclib_writer *w, uint64_t v);
void cclib_write_bytes(cclib_writer *w, const void *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* CCLIB_BYTES_H */
