/* cdrecon — a bucket's records sorted by (msisdn hash, msisdn, start time, record_id, file, line): subscribers in hash order, each in time order. */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* The order of records within a subscriber (CONTRACT.md "earlier"): start
 * time, record_id, then the file's name and the line, so that the order
 * does not depend on how the files were grouped into runs. */
int grp_blob_time_cmp(const cdr_engine *e, const blob *a, const blob *b)
{
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    int c = cmp_str(b_rid(a), a->l_rid, b_rid(b), b->l_rid);
    if (c)
        return c;
    if (a->file_index != b->file_index) {
        c = strcmp(eng_file_name(e, a->file_index), eng_file_name(e, b->file_index));
        if (c)
            return c;
    }
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->file_index < b->file_index ? -1 : a->file_index > b->file_index;
}

/* The order within one subscriber: time, then record_id, the file's name
 * and the line (grp_blob_time_cmp). */
static int cmp_time(const cdr_engine *e, const ent *a, const ent *b)
{
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return grp_blob_time_cmp(e, a->b, b->b);
}

static int cmp_time_q(const void *a, const void *b, void *e)
{
    return cmp_time(e, a, b);
}

/* The full order of records: msisdn hash, msisdn, then cmp_time. */
static int cmp_ent(const void *pa, const void *pb, void *e)
{
    const ent *a = pa, *b = pb;
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    int c = cmp_str(b_msisdn(a->b), a->b->l_msisdn, b_msisdn(b->b), b->b->l_msisdn);
    if (c)
        return c;
    return cmp_time(e, a, b);
}

typedef struct sgroup {
    uint64_t h;
    int32_t first, last;
    uint32_t count;
} sgroup;

static int cmp_group(const void *pa, const void *pb)
{
    const sgroup *a = pa, *b = pb;
    return a->h < b->h ? -1 : a->h > b->h;
}

/* Sort m 64-bit keys (t: room for m more). Insertion sort for a short
 * group, else runs of 16 merged bottom-up. */
static void ins_u64(uint64_t *k, size_t m)
{
    for (size_t i = 1; i < m; i++) {
        uint64_t x = k[i];
        size_t j = i;
        while (j > 0 && k[j - 1] > x) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = x;
    }
}

static void sort_u64(uint64_t *k, uint64_t *t, size_t m)
{
    enum { RUN = 8 };
    if (m <= 2 * RUN) {
        ins_u64(k, m);
        return;
    }
    for (size_t i = 0; i < m; i += RUN)
        ins_u64(k + i, m - i < RUN ? m - i : RUN);
    uint64_t *src = k, *dst = t;
    for (size_t w = RUN; w < m; w *= 2) {
        for (size_t i = 0; i < m; i += 2 * w) {
            size_t x = i, mid = i + w < m ? i + w : m, y = mid, end = i + 2 * w < m ? i + 2 * w : m;
            size_t o = i;
            while (x < mid && y < end) {
                uint64_t p = src[x], q = src[y];
                int tk = q < p;
                dst[o++] = tk ? q : p;
                x += (size_t)!tk;
                y += (size_t)tk;
            }
            while (x < mid)
                dst[o++] = src[x++];
            while (y < end)
                dst[o++] = src[y++];
        }
        uint64_t *sw = src;
        src = dst;
        dst = sw;
    }
    if (src != k)
        memcpy(k, src, m * sizeof *k);
}

/* Group a[0..n) by hash in one pass (a small open-addressing table: a
 * bucket holds a few thousand subscribers): *gp gets each hash's first and
 * last record and count, in the order the hashes came; next[] chains each
 * group's records in their order. 0, or -1 if memory ran out. */
static int group_by_hash(const ent *a, size_t n, int32_t *next, sgroup **gp, size_t *ngp)
{
    size_t cap = 64;
    while (cap < n / 4)
        cap *= 2;
    int32_t *slot = malloc(cap * sizeof *slot);
    size_t ng = 0, gcap = 256;
    sgroup *g = malloc(gcap * sizeof *g);
    if (!slot || !g)
        goto nomem;
    memset(slot, 0xff, cap * sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = a[i].h;
        size_t k = (size_t)(h ^ (h >> 32)) & (cap - 1);
        while (slot[k] >= 0 && g[slot[k]].h != h)
            k = (k + 1) & (cap - 1);
        next[i] = -1;
        if (slot[k] >= 0) {
            sgroup *x = &g[slot[k]];
            next[x->last] = (int32_t)i;
            x->last = (int32_t)i;
            x->count++;
            continue;
        }
        if (ng == gcap) {
            sgroup *more = realloc(g, 2 * gcap * sizeof *g);
            if (!more)
                goto nomem;
            g = more;
            gcap *= 2;
        }
        g[ng] = (sgroup){h, (int32_t)i, (int32_t)i, 1};
        slot[k] = (int32_t)ng++;
        if (ng * 2 > cap) { /* grow the table */
            free(slot);
            cap *= 4;
            slot = malloc(cap * sizeof *slot);
            if (!slot)
                goto nomem;
            memset(slot, 0xff, cap * sizeof *slot);
            for (size_t j = 0; j < ng; j++) {
                size_t q = (size_t)(g[j].h ^ (g[j].h >> 32)) & (cap - 1);
                while (slot[q] >= 0)
                    q = (q + 1) & (cap - 1);
                slot[q] = (int32_t)j;
            }
        }
    }
    free(slot);
    *gp = g;
    *ngp = ng;
    return 0;
nomem:
    free(slot);
    free(g);
    return -1;
}

/* One group - a subscriber's month or months, short - sorted by time into
 * r[0..m): as 64-bit keys (start time from the group's earliest, position),
 * record_id, file and line only deciding between equal start times; by the
 * full comparison when two numbers share the hash (or the keys would not
 * hold the group). idx: room for m, key: for 2 x m. Returns the group's
 * run: its count, with RUN_MIXED when numbers share the hash. */
static uint32_t sort_group(const cdr_engine *e, const ent *a, const sgroup *grp,
                           const int32_t *next, int32_t *idx, uint64_t *key, ent *r)
{
    size_t m = grp->count, k = 0;
    const ent *f = &a[grp->first];
    int same = 1;
    uint64_t lo = (uint64_t)f->start, hi = lo;
    for (int32_t i = grp->first; i >= 0; i = next[i]) {
        const ent *x = &a[i];
        idx[k++] = i;
        if (same && x != f &&
            !same_str(b_msisdn(x->b), x->b->l_msisdn, b_msisdn(f->b), f->b->l_msisdn))
            same = 0; /* two numbers share a hash: sort by the full order */
        if (x->start < (int64_t)lo)
            lo = (uint64_t)x->start;
        if (x->start > (int64_t)hi)
            hi = (uint64_t)x->start;
    }
    uint32_t run = (uint32_t)m | (same ? 0 : RUN_MIXED);
    if (!same || m >= ((size_t)1 << 24) || hi - lo >= ((uint64_t)1 << 40)) {
        for (k = 0; k < m; k++)
            r[k] = a[idx[k]];
        qsort_r(r, m, sizeof *r, same ? cmp_time_q : cmp_ent, (void *)e);
        return run;
    }
    for (k = 0; k < m; k++)
        key[k] = ((uint64_t)a[idx[k]].start - lo) << 24 | k;
    sort_u64(key, key + m, m);
    for (k = 0; k < m; k++)
        r[k] = a[idx[key[k] & 0xffffff]];
    /* equal start times: by record_id, file, line */
    for (size_t j = 0; j < m;) {
        size_t z = j + 1;
        while (z < m && key[z] >> 24 == key[j] >> 24)
            z++;
        for (size_t i = j + 1; i < z; i++) {
            ent x = r[i];
            size_t y = i;
            while (y > j && cmp_time(e, &r[y - 1], &x) > 0) {
                r[y] = r[y - 1];
                y--;
            }
            r[y] = x;
        }
        j = z;
    }
    return run;
}

/* Order a bucket's records by (msisdn hash, msisdn, start, record_id, file,
 * line): group them by hash, order the groups by hash, then sort each group
 * by time. tmp: room for n. Returns 0, or -1 if memory ran out (the records
 * are then left as they were). */
int grp_sort_ents(const cdr_engine *e, ent *a, ent *tmp, size_t n, uint32_t *runs,
                  size_t *nruns)
{
    *nruns = 0;
    if (n < 2) {
        if (n == 1)
            runs[(*nruns)++] = 1;
        return 0;
    }
    int32_t *next = malloc(n * sizeof *next);
    int32_t *idx = malloc(n * sizeof *idx);
    uint64_t *key = malloc(2 * n * sizeof *key);
    sgroup *g = NULL;
    size_t ng = 0;
    int ret = -1;
    if (next && idx && key && group_by_hash(a, n, next, &g, &ng) == 0) {
        qsort(g, ng, sizeof *g, cmp_group);
        size_t pos = 0;
        for (size_t gi = 0; gi < ng; gi++) {
            runs[(*nruns)++] = sort_group(e, a, &g[gi], next, idx, key, tmp + pos);
            pos += g[gi].count;
        }
        memcpy(a, tmp, n * sizeof *a);
        ret = 0;
    }
    free(next);
    free(idx);
    free(key);
    free(g);
    return ret;
}
