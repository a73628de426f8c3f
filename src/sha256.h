/* cdrecon — SHA-256 (FIPS 180-4), our own small implementation. Internal. */
#ifndef CDRECON_SHA256_H
#define CDRECON_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct cdr_sha256 {
    uint32_t h[8];
    uint64_t len;      /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} cdr_sha256;

void cdr_sha256_init(cdr_sha256 *c);
void cdr_sha256_update(cdr_sha256 *c, const void *data, size_t n);
void cdr_sha256_final(cdr_sha256 *c, uint8_t out[32]);
/* One-shot convenience. */
void cdr_sha256_once(const void *data, size_t n, uint8_t out[32]);

#endif
