/* cdrecon — tariff look-ups used for every CDR, and their small containers. */
#include <stdlib.h>
#include <string.h>

#include "hashfn.h"
#include "tariff_int.h"

/* ---------------------------------------------------------------- arena */
struct cdr_arena_chunk {
    cdr_arena_chunk *next;
    char data[];
};

char *cdr_arena_strdup(cdr_arena *a, const char *s, size_t n)
{
    if (!a->head || a->cap - a->used < n + 1) {
        size_t cap = n + 1 > 1 << 20 ? n + 1 : 1 << 20;
        cdr_arena_chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        a->head = c;
        a->used = 0;
        a->cap = cap;
    }
    char *p = a->head->data + a->used;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    a->used += n + 1;
    return p;
}

void cdr_arena_free(cdr_arena *a)
{
    cdr_arena_chunk *c = a->head;
    while (c) {
        cdr_arena_chunk *nx = c->next;
        free(c);
        c = nx;
    }
    a->head = NULL;
    a->used = a->cap = 0;
}

/* ----------------------------------------------------------------- hash */
static uint64_t sh_hash(uint32_t ns, const char *k, size_t n)
{
    /* (was FNV-1a, a byte at a time: the prefix lookups of every record's
     * rating spent their time here) */
    return cdr_hash_bytes(k, n, (uint64_t)ns * 0x9E3779B97F4A7C15ULL);
}

static int sh_match(const cdr_sh_ent *e, uint32_t h, uint32_t ns, const char *k, size_t n)
{
    return e->h == h && e->ns == ns && e->n == n && (n == 0 || memcmp(e->k, k, n) == 0);
}

/* The slot of (ns, k[0..n)) in h (h->cap > 0): its entry, or the empty
 * slot where it would go; *fp its fingerprint. Inline: per-record
 * look-ups go through it. */
static inline cdr_sh_ent *sh_slot(const cdr_shash *h, uint32_t ns, const char *k, size_t n,
                                  uint32_t *fp)
{
    size_t mask = h->cap - 1;
    uint64_t hv = sh_hash(ns, k, n);
    size_t i = (size_t)hv & mask;
    *fp = (uint32_t)(hv >> 32);
    for (;;) {
        cdr_sh_ent *e = &h->e[i];
        if (!e->k || sh_match(e, *fp, ns, k, n))
            return e;
        i = (i + 1) & mask;
    }
}

const cdr_sh_ent *cdr_sh_get(const cdr_shash *h, uint32_t ns, const char *k, size_t n)
{
    if (!h->cap)
        return NULL;
    uint32_t fp;
    const cdr_sh_ent *e = sh_slot(h, ns, k, n, &fp);
    return e->k ? e : NULL;
}

static int sh_grow(cdr_shash *h)
{
    size_t nc = h->cap ? h->cap * 2 : 64;
    /* malloc + memset, not calloc: a large calloc is fresh mmap memory
     * that glibc leaves untouched; the probes below would read it first
     * (mapping the shared zero page) and then write it, and each such
     * write fault replaces the zero page with a TLB flush sent to the
     * other CPUs (perf: 5 % of a 2M-record `rate`, all in loading the
     * tariff's 250,000 subscribers). Writing the zeros first faults each
     * page once. (Through a volatile pointer: gcc turns malloc + memset
     * into calloc.) */
    static void *(*volatile zero_fill)(void *, int, size_t) = memset;
    if (nc > SIZE_MAX / sizeof(cdr_sh_ent))
        return -1;
    cdr_sh_ent *ne = malloc(nc * sizeof *ne);
    if (!ne)
        return -1;
    zero_fill(ne, 0, nc * sizeof *ne);
    for (size_t j = 0; j < h->cap; j++) {
        cdr_sh_ent *e = &h->e[j];
        if (!e->k)
            continue;
        size_t i = (size_t)sh_hash(e->ns, e->k, e->n) & (nc - 1); /* low bits */
        while (ne[i].k)
            i = (i + 1) & (nc - 1);
        ne[i] = *e;
    }
    free(h->e);
    h->e = ne;
    h->cap = nc;
    return 0;
}

cdr_sh_ent *cdr_sh_put(cdr_shash *h, uint32_t ns, const char *k, size_t n, int *created)
{
    *created = 0;
    if ((h->used + 1) * 2 > h->cap && sh_grow(h) != 0)
        return NULL;
    uint32_t fp;
    cdr_sh_ent *e = sh_slot(h, ns, k, n, &fp);
    if (!e->k) {
        e->k = k;
        e->n = (uint32_t)n;
        e->ns = ns;
        e->h = fp;
        e->a = e->b = -1;
        h->used++;
        *created = 1;
    }
    return e;
}

void cdr_sh_free(cdr_shash *h)
{
    free(h->e);
    h->e = NULL;
    h->cap = h->used = 0;
}

/* -------------------------------------------------------------- look-ups */
const cdr_subscriber *cdr_tariff_subscriber(const cdr_tariff *t, const char *msisdn, size_t n,
                                            cdr_time at)
{
    const cdr_sh_ent *e = cdr_sh_get(&t->ix->subscribers, 0, msisdn, n);
    if (!e)
        return NULL;
    const cdr_subscriber *s = t->subscribers + e->a;
    size_t lo = 0, hi = (size_t)e->b; /* first period with valid_from > at */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].valid_from <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    s += lo - 1;
    return at < s->valid_to ? s : NULL;
}

static int day_type(cdr_time day)
{
    return cdr_time_weekday(day) < 5 ? 0 : 1;
}

int32_t cdr_tariff_band_at(const cdr_tariff *t, cdr_time at)
{
    const cdr_tariff_index *ix = t->ix;
    if (!ix->have_bands)
        return -1;
    /* day_type and cdr_time_of_day in one division (twice a record) */
    int64_t days = at / 86400, sod = at % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t w = (days + 3) % 7; /* 1970-01-01 was a Thursday (Monday = 0) */
    if (w < 0)
        w += 7;
    return ix->band_min[w < 5 ? 0 : 1][sod / 60];
}

cdr_time cdr_tariff_band_change(const cdr_tariff *t, cdr_time at)
{
    const cdr_tariff_index *ix = t->ix;
    if (!ix->have_bands)
        return INT64_MAX;
    cdr_time day = cdr_time_day(at);
    int dt = day_type(day);
    int m = cdr_time_of_day(at) / 60;
    int16_t cur = ix->band_min[dt][m];
    int nm = ix->next_diff[dt][m];
    if (nm < CDR_MINUTES)
        return day + (cdr_time)nm * 60;
    /* The band lasts to midnight: look at the following days (a week at
     * most repeats the pattern). */
    for (int k = 0; k < 8; k++) {
        if (day > INT64_MAX - 2 * 86400)
            return INT64_MAX;
        day += 86400;
        dt = day_type(day);
        if (ix->band_min[dt][0] != cur)
            return day;
        nm = ix->next_diff[dt][0];
        if (nm < CDR_MINUTES)
            return day + (cdr_time)nm * 60;
    }
    return INT64_MAX;
}

const cdr_rate *cdr_tariff_find_rate(const cdr_tariff *t, int32_t plan, cdr_service svc,
                                     cdr_direction dir, const char *peer, size_t peer_len,
                                     int32_t band)
{
    const cdr_tariff_index *ix = t->ix;
    if (plan < 0 || (size_t)plan >= t->n_plans || (unsigned)svc >= CDR_SVC__COUNT)
        return NULL;
    uint32_t bucket = ((uint32_t)plan * CDR_SVC__COUNT + (uint32_t)svc) * 2 + (dir ? 1 : 0);
    uint64_t lens = ix->rate_lens[bucket];
    if (peer_len < CDR_PREFIX_MAX)
        lens &= (2ULL << peer_len) - 1; /* only lengths <= peer_len */
    lens &= cdr_pf_lengths(&ix->rate_pf, peer, peer_len); /* a domestic number: '*' only */
    while (lens) {
        int L = 63 - __builtin_clzll(lens);
        lens &= ~(1ULL << L);
        int32_t head;
        if (L == 0) {
            head = ix->rate_star[bucket];
        } else {
            const cdr_sh_ent *e = cdr_sh_get(&ix->prefixes, bucket, peer, (size_t)L);
            if (!e)
                continue;
            head = e->a;
        }
        /* The chain holds exact bands first, then the '*' row (if any). */
        for (int32_t i = head; i >= 0; i = ix->rate_next[i]) {
            const cdr_rate *r = &t->rates[i];
            if (r->band == band || r->band < 0)
                return r;
        }
    }
    return NULL;
}

const cdr_free_number *cdr_tariff_free_number(const cdr_tariff *t, const char *peer, size_t n)
{
    const cdr_tariff_index *ix = t->ix;
    uint64_t lens = ix->free_lens & cdr_pf_lengths(&ix->free_pf, peer, n);
    if (n < CDR_PREFIX_MAX)
        lens &= (2ULL << n) - 1;
    while (lens) {
        int L = 63 - __builtin_clzll(lens);
        lens &= ~(1ULL << L);
        const cdr_sh_ent *e = cdr_sh_get(&ix->prefixes, (uint32_t)ix->n_buckets, peer, (size_t)L);
        if (e)
            return &t->free_numbers[e->a];
    }
    return NULL;
}

const cdr_discount *cdr_tariff_discount(const cdr_tariff *t, int32_t plan, cdr_service svc)
{
    if (plan < 0 || (size_t)plan >= t->n_plans || (unsigned)svc >= CDR_SVC__COUNT)
        return NULL;
    int32_t i = t->ix->discount[(size_t)plan * CDR_SVC__COUNT + svc];
    return i < 0 ? NULL : &t->discounts[i];
}

const cdr_bundle *cdr_tariff_bundle(const cdr_tariff *t, int32_t plan, int32_t pool)
{
    if (plan < 0 || (size_t)plan >= t->n_plans || pool < 0 || (size_t)pool >= t->n_pool_names)
        return NULL;
    int32_t i = t->ix->bundle[(size_t)plan * t->n_pool_names + (size_t)pool];
    return i < 0 ? NULL : &t->bundles[i];
}

int cdr_tariff_subscribed(const cdr_tariff *t, const char *msisdn, size_t n, const char *code,
                          size_t code_len, cdr_time at)
{
    char key[CDR_NUMBER_MAX + 1 + CDR_NAME_MAX];
    if (n > CDR_NUMBER_MAX || code_len > CDR_NAME_MAX)
        return 0;
    memcpy(key, msisdn, n);
    key[n] = '|';
    memcpy(key + n + 1, code, code_len);
    const cdr_sh_ent *e = cdr_sh_get(&t->ix->subscriptions, 0, key, n + 1 + code_len);
    if (!e)
        return 0;
    for (int32_t i = 0; i < e->b; i++) {
        const cdr_subscription *s = &t->subscriptions[e->a + i];
        if (s->valid_from > at)
            break; /* sorted by valid_from */
        if (at < s->valid_to)
            return 1;
    }
    return 0;
}

const cdr_prior_refund *cdr_tariff_refunds(const cdr_tariff *t, const char *msisdn, size_t n,
                                           size_t *count)
{
    const cdr_sh_ent *e = cdr_sh_get(&t->ix->refunds, 0, msisdn, n);
    if (!e) {
        *count = 0;
        return NULL;
    }
    *count = (size_t)e->b;
    return &t->refunds[e->a];
}
