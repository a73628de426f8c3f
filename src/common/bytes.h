/* cdrecon — bytes of the files the library writes itself (the month state,
 * the outputs cache, the cluster's pieces): little-endian integers, LEB128
 * varints and zigzag for signed ones. Internal. */
#ifndef CDRECON_BYTES_H
#define CDRECON_BYTES_H

#include <stdint.h>

static inline uint32_t cdr_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t cdr_le64(const unsigned char *p)
{
    return (uint64_t)cdr_le32(p) | (uint64_t)cdr_le32(p + 4) << 32;
}

static inline void cdr_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void cdr_put_le64(unsigned char *p, uint64_t v)
{
    cdr_put_le32(p, (uint32_t)v);
    cdr_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* v as a varint at d (at most 10 bytes); returns the end. */
static inline unsigned char *cdr_put_varint(unsigned char *d, uint64_t v)
{
    while (v >= 0x80) {
        *d++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *d++ = (unsigned char)v;
    return d;
}

static inline uint64_t cdr_zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t cdr_unzz(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif
