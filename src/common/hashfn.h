/* cdrecon — the 64-bit hash of a byte string used by the engine (records
 * into buckets, duplicates) and the tariff's lookup tables. Internal header.
 *
 * Eight bytes at a time, then the last 1..7 bytes as one word; a
 * splitmix64-style finish. The engine's bucket order (and so the order of
 * `rate` output) follows these values: changing them changes that order,
 * not any charge. */
#ifndef CDRECON_HASHFN_H
#define CDRECON_HASHFN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t cdr_load64(const unsigned char *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}
static inline uint64_t cdr_load32(const unsigned char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

/* The last n (1..7) bytes of a key as a little-endian word: the bytes
 * s[0..n-1], zero above. Built from whole loads (copying the bytes into a
 * zeroed word one at a time made the word's load wait for the byte stores:
 * most of this function's time in a profile). `whole` is the key's full
 * length, so s + n - 8 is inside it when whole >= 8. */
static inline uint64_t cdr_tail_word(const unsigned char *s, size_t n, size_t whole)
{
    if (whole >= 8)
        return cdr_load64(s + n - 8) >> (8 * (8 - n));
    if (n >= 4)
        return cdr_load32(s) | cdr_load32(s + n - 4) << (8 * (n - 4));
    return (uint64_t)s[0] | (uint64_t)s[n / 2] << (8 * (n / 2)) | (uint64_t)s[n - 1] << (8 * (n - 1));
}

static inline uint64_t cdr_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    const size_t whole = n;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ seed ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        h = (h ^ cdr_load64(s)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        h = (h ^ cdr_tail_word(s, n, whole)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

#endif
