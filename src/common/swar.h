/* cdrecon — word-at-a-time helpers: ASCII digits checked and converted
 * (both ways), short strings copied. Internal header. */
#ifndef CDRECON_SWAR_H
#define CDRECON_SWAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* The 8 ASCII digits of v < 10^8, most significant first in memory (a
 * little-endian word): halves, pairs, then digits, each step one multiply
 * by a reciprocal. */
static inline uint64_t cdr_digits8_text(uint32_t v)
{
    uint64_t x = (uint64_t)(v / 10000) | (uint64_t)(v % 10000) << 32;
    uint64_t y = ((x * 10486) >> 20) & 0x0000007F0000007Full;
    x = y | (x - y * 100) << 16;
    uint64_t z = ((x * 103) >> 10) & 0x000F000F000F000Full;
    x = z | (x - z * 10) << 8;
    return x + 0x3030303030303030ull;
}

/* Write v as exactly nd digits (leading zeros; v < 10^nd, nd <= 18) at out. */
static inline void cdr_format_digits(char *out, uint64_t v, unsigned nd)
{
    char t[24];
    uint64_t w = cdr_digits8_text((uint32_t)(v % 100000000u));
    memcpy(t + 16, &w, 8);
    if (nd > 8) {
        v /= 100000000u;
        w = cdr_digits8_text((uint32_t)(v % 100000000u));
        memcpy(t + 8, &w, 8);
        if (nd > 16) {
            w = cdr_digits8_text((uint32_t)(v / 100000000u)); /* < 100 here */
            memcpy(t, &w, 8);
        }
    }
    memcpy(out, t + 24 - nd, nd);
}

/* Copy n bytes; inline up to 32, as overlapping words (a library call for
 * each short string of a record or a row costs more than the copy). */
static inline void *cdr_copy_small(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    uint64_t a, b, c, e;
    if (n > 32) {
        memcpy(d, s, n);
    } else if (n >= 16) {
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        memcpy(&c, s + n - 16, 8);
        memcpy(&e, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + 8, &b, 8);
        memcpy(d + n - 16, &c, 8);
        memcpy(d + n - 8, &e, 8);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else if (n > 0) {
        unsigned char x = s[0], y = s[n / 2], z = s[n - 1];
        d[0] = x;
        d[n / 2] = y;
        d[n - 1] = z;
    }
    return d + n;
}

/* Non-zero if one of the eight bytes of x is b: exact as a yes/no, and its
 * lowest flagged byte is always a real b (a borrow only runs upwards from a
 * real one). */
static inline uint64_t cdr_swar_has(uint64_t x, unsigned char b)
{
    uint64_t y = x ^ (0x0101010101010101ull * b);
    return (y - 0x0101010101010101ull) & ~y & 0x8080808080808080ull;
}

/* The first byte c in [p, p + n), or NULL: inline for 8 to 32 bytes (a
 * word at a time, the last word overlapping), memchr otherwise. */
static inline const char *cdr_find_byte(const char *p, size_t n, unsigned char c)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 8 && n <= 32) {
        uint64_t w, m;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            if ((m = cdr_swar_has(w, c)) != 0)
                return p + i + (size_t)(__builtin_ctzll(m) >> 3);
        }
        if (i < n) { /* the last word, overlapping */
            i = n - 8;
            memcpy(&w, p + i, 8);
            if ((m = cdr_swar_has(w, c)) != 0)
                return p + i + (size_t)(__builtin_ctzll(m) >> 3);
        }
        return NULL;
    }
#endif
    return n ? memchr(p, c, n) : NULL;
}

#endif
