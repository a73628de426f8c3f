/*
 * cdrecon — internals of the tariff model shared by src/tariff/tariff.c (loading and
 * validation) and src/tariff/tariff_lookup.c (indexes and look-ups). Not public.
 */
#ifndef CDRECON_TARIFF_INT_H
#define CDRECON_TARIFF_INT_H

#include <string.h>
#include "cdrecon/tariff.h"

/* Longest rate or free-number prefix (bytes); prefix lengths are kept as a
 * 64-bit mask per look-up bucket. */
#define CDR_PREFIX_MAX 63
/* Longest plan/band/pool name and SP service code. */
#define CDR_NAME_MAX 64

/* A bump allocator for the tariff's strings: freed all at once. */
typedef struct cdr_arena_chunk cdr_arena_chunk;
typedef struct cdr_arena {
    cdr_arena_chunk *head;
    size_t used, cap;
} cdr_arena;
char *cdr_arena_strdup(cdr_arena *a, const char *s, size_t n); /* NULL on no memory */
void cdr_arena_free(cdr_arena *a);

/* Open-addressing hash of (namespace, byte string) -> two int32 values. The
 * keys are borrowed (arena strings) and must outlive the table. */
typedef struct cdr_sh_ent {
    const char *k;  /* NULL = empty slot */
    uint32_t n;
    uint32_t ns;
    uint32_t h;     /* high bits of the key's hash: compared before the key */
    int32_t a, b;
} cdr_sh_ent;
typedef struct cdr_shash {
    cdr_sh_ent *e;
    size_t cap, used;
} cdr_shash;
/* Returns the entry, inserting an empty one (a = b = -1, *created = 1) if
 * absent; NULL on no memory. The pointer is valid until the next insert. */
cdr_sh_ent *cdr_sh_put(cdr_shash *h, uint32_t ns, const char *k, size_t n, int *created);
const cdr_sh_ent *cdr_sh_get(const cdr_shash *h, uint32_t ns, const char *k, size_t n);
void cdr_sh_free(cdr_shash *h);

#define CDR_MINUTES 1440

/* The first byte of each one-byte prefix and the first two bytes of each
 * longer one (bit k of [k >> 3]): a number that starts with neither can
 * match only an empty prefix, and is answered without hashing (most peers,
 * for the free numbers and for every rate prefix but '*'). */
typedef struct cdr_prefix_filter {
    uint8_t b1[256 / 8];
    uint8_t b2[65536 / 8];
} cdr_prefix_filter;

static inline void cdr_pf_add(cdr_prefix_filter *f, const char *prefix, size_t n)
{
    const unsigned char *p = (const unsigned char *)prefix;
    if (n == 1)
        f->b1[p[0] >> 3] |= (uint8_t)(1u << (p[0] & 7));
    else if (n >= 2) {
        unsigned k = (unsigned)p[0] << 8 | p[1];
        f->b2[k >> 3] |= (uint8_t)(1u << (k & 7));
    }
}

/* The prefix lengths (bit L) that the n bytes at s may match. */
static inline uint64_t cdr_pf_lengths(const cdr_prefix_filter *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 1;
    unsigned k2 = n >= 2 ? (unsigned)p[0] << 8 | p[1] : 0;
    return 1 | (f->b1[p[0] >> 3] >> (p[0] & 7) & 1 ? 2 : 0) |
           (n >= 2 && f->b2[k2 >> 3] >> (k2 & 7) & 1 ? ~(uint64_t)3 : 0);
}

/* A name rendered as a CSV cell: the bytes the row writer would write. */
typedef struct cdr_name_cell {
    const char *p;
    size_t n;
} cdr_name_cell;

struct cdr_tariff_index {
    cdr_arena arena;
    cdr_shash plans;          /* plan name -> a = plan index */
    /* bands: day type 0 = weekday (Mon..Fri), 1 = weekend (Sat, Sun) */
    int have_bands;
    int16_t band_min[2][CDR_MINUTES];  /* band index in force in each minute */
    int16_t next_diff[2][CDR_MINUTES]; /* first later minute of that day with another
                                          band, CDR_MINUTES if none */
    /* rates: bucket = (plan * CDR_SVC__COUNT + service) * 2 + direction;
     * prefixes: ns = bucket for rates, ns = n_buckets for free numbers. */
    cdr_shash prefixes;       /* a = first rate (chain in rate_next) / free index */
    int32_t *rate_next;
    uint64_t *rate_lens;      /* per bucket: bit L set if some prefix has length L */
    int32_t *rate_star;       /* per bucket: the chain of its '*' prefix, -1 if none */
    cdr_prefix_filter rate_pf; /* the rate prefixes of all buckets */
    size_t n_buckets;
    uint64_t free_lens;
    cdr_prefix_filter free_pf;
    int32_t *discount;        /* [plan * CDR_SVC__COUNT + service] -> index or -1 */
    int32_t *bundle;          /* [plan * n_pool_names + pool] -> index or -1 */
    cdr_shash subscribers;    /* msisdn -> a = first, b = count (sorted by valid_from) */
    cdr_shash subscriptions;  /* "msisdn|code" -> a = first, b = count */
    cdr_shash refunds;        /* msisdn -> a = first, b = count (sorted by date) */
    /* the lengths of the plan, band and pool names (the row writer's
     * strlen calls were 3 % of rate's workers) */
    size_t *plan_len, *band_len, *pool_len;
    /* the same names as the row writer's CSV cells (quoted, guarded),
     * rendered once; a band name cut at 255 bytes as the band column is */
    cdr_name_cell *plan_cell, *band_cell, *pool_cell;
    char *cell_text;
};

/* The names' lengths and cells of t into ix (0, or -1: out of memory; what
 * was made is freed by cdr_tariff_index_names_free). */
int cdr_tariff_index_names(const cdr_tariff *t, cdr_tariff_index *ix);
void cdr_tariff_index_names_free(cdr_tariff_index *ix);

/* The length of name i (plan, band or pool) of a loaded tariff; a tariff
 * made by hand (tests) has no lengths: strlen. */
static inline size_t cdr_tariff_name_len(const size_t *lens, int32_t i, const char *name)
{
    return lens ? lens[i] : strlen(name);
}

#endif
