/* cdrecon — SHA-256 helpers over nettle's (src/common/sha256.h): one-shot and hex. */
#include "sha256.h"

#include "cdrecon/filehash.h"

void cdr_sha256_once(const void *data, size_t n, uint8_t out[32])
{
    cdr_sha256 c;
    cdr_sha256_init(&c);
    cdr_sha256_update(&c, data, n);
    cdr_sha256_final(&c, out);
}

void cdr_sha256_hex(const uint8_t d[32], char *buf)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        buf[2 * i] = hx[d[i] >> 4];
        buf[2 * i + 1] = hx[d[i] & 15];
    }
    buf[64] = '\0';
}
