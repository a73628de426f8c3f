/* cdrecon — SHA-256 of input files, tariffs and evidence: nettle's
 * (docs/architecture.md: it measured 1.7x faster than the implementation
 * we had, with its own SHA-NI dispatch). Internal. */
#ifndef CDRECON_SHA256_H
#define CDRECON_SHA256_H

#include <nettle/sha2.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cdr_sha256 {
    struct sha256_ctx n;
} cdr_sha256;

static inline void cdr_sha256_init(cdr_sha256 *c)
{
    sha256_init(&c->n);
}

static inline void cdr_sha256_update(cdr_sha256 *c, const void *data, size_t n)
{
    sha256_update(&c->n, n, (const uint8_t *)data);
}

static inline void cdr_sha256_final(cdr_sha256 *c, uint8_t out[32])
{
    sha256_digest(&c->n, SHA256_DIGEST_SIZE, out);
}

/* One-shot convenience. */
void cdr_sha256_once(const void *data, size_t n, uint8_t out[32]);

#endif
