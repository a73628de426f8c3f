/* cdrecon — word-at-a-time checks and conversions of ASCII digits.
 * Internal header. */
#ifndef CDRECON_SWAR_H
#define CDRECON_SWAR_H

#include <stdint.h>

/* Non-zero unless each of the eight bytes of x is '0'..'9': each byte's
 * high nibble must be 3 and its low nibble + 6 must stay below 16 (no
 * carry leaves a byte: the low nibbles are masked first). */
static inline uint64_t cdr_nondigit8(uint64_t x)
{
    return (((x & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull) |
            (((x & 0x0F0F0F0F0F0F0F0Full) + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull));
}

/* The number written by eight ASCII digits, the first (most significant)
 * in the lowest byte of x (as loaded from memory on a little-endian
 * machine): pairs, then quads, then the whole, each step one multiply. */
static inline uint64_t cdr_digits8_value(uint64_t x)
{
    x -= 0x3030303030303030ull;
    x = (x * 10 + (x >> 8)) & 0x00FF00FF00FF00FFull;
    x = (x * 100 + (x >> 16)) & 0x0000FFFF0000FFFFull;
    return (x * 10000 + (x >> 32)) & 0xFFFFFFFFull;
}

#endif
