/* cdrecon tests — xorshift64, the unit tests' seeded random numbers. */
#ifndef CDRECON_TESTRND_H
#define CDRECON_TESTRND_H

#include <stdint.h>

/* The next number of the sequence in *s, all 64 bits. */
static inline uint64_t trnd64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The next number of the sequence in *s, 0 <= r < n (n > 0). */
static inline unsigned trnd(uint64_t *s, unsigned n)
{
    return (unsigned)(trnd64(s) % n);
}

#endif
