/* tests/unit: the xorshift64 generator of the randomized unit tests (a fixed seed each: every run draws the same cases). */
#ifndef CDRECON_UNIT_RNG_H
#define CDRECON_UNIT_RNG_H

#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull; /* a test may set its own seed */

static inline uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static inline uint64_t below(uint64_t n)
{
    return n ? next() % n : 0;
}

#endif
