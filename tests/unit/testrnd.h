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

/* The next number of the sequence in *s, 0 <= r < n over all 64 bits
 * (0 when n is 0). */
static inline uint64_t trnd_below(uint64_t *s, uint64_t n)
{
    return n ? trnd64(s) % n : 0;
}

#endif
