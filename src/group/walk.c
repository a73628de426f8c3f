/* cdrecon — a bucket at the finish: loaded, cut into cache-sized slices by hash, decoded, sorted, and handed to rate/ one subscriber at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "rate_int.h"

/* The records of [p, p+len) into ents[k..] (hash, start, where), leaving
 * out excluded files. */
static size_t collect(cdr_engine *e, const unsigned char *p, size_t len, ent *ents, size_t k,
                      size_t cap, cdr_engine_totals *tot)
{
    for (size_t off = 0; off < len; off += packed_size(p + off)) {
        if (k == cap)
            return (size_t)-1; /* cannot happen: cap is the count filed */
        const char *m;
        size_t ml;
        int64_t st;
        uint32_t fi;
        peek(p + off, &m, &ml, &st, &fi);
        if (fi < e->n_files && e->files[fi].excluded) {
            tot->excluded++;
            continue;
        }
        ents[k].h = msisdn_hash(m, ml);
        ents[k].start = st;
        ents[k].b = NULL;
        ents[k].p = p + off;
        k++;
    }
    return k;
}

/* The bucket's records (its spill file's, read into *data, then those in
 * memory) as ents in c->ents[0..*k), excluded files left out. */
static cdr_err bucket_ents(ctx *c, int bi, unsigned char **data, size_t *k)
{
    cdr_engine *e = c->e;
    bucket *bk = &e->b[bi];
    size_t len;
    *k = 0;
    cdr_err err = grp_load_spill(e, bi, data, &len);
    if (err != CDR_OK || (!*data && !bk->head))
        return err;
    size_t cnt = bk->records; /* (counted as filed: one pass less over the data) */
    if (cnt > c->ents_cap) {
        ent *ne = realloc(c->ents, cnt * sizeof *ne);
        if (ne)
            c->ents = ne;
        ent *nt = ne ? realloc(c->tmp, cnt * sizeof *nt) : NULL;
        if (!nt)
            return CDR_E_NOMEM;
        c->tmp = nt;
        c->ents_cap = cnt;
    }
    size_t n = *data ? collect(e, *data, len, c->ents, 0, cnt, c->tot) : 0;
    for (chunk *ck = bk->head; ck && n != (size_t)-1; ck = ck->next)
        n = collect(e, ck->data, ck->n, c->ents, n, cnt, c->tot);
    if (n == (size_t)-1) {
        snprintf(e->err, sizeof e->err, "bucket %d holds more records than were filed", bi);
        return CDR_E_INTERNAL;
    }
    *k = n;
    return CDR_OK;
}

/* Slices: the bucket is cut by the next bits of the hash into slices of
 * about SLICE records, each decoded, sorted and rated while it fits in
 * the core's cache (a large bucket rated whole spends its time waiting
 * on memory). Slices follow the hash order, so the output is the same.
 * c->ents[start[j]..start[j + 1]) is slice j; returns the count. */
enum { SLICE = 2048, MAX_SLICES = 256 };

static size_t cut_slices(ctx *c, size_t k, size_t start[MAX_SLICES + 1])
{
    size_t nsl = 1;
    unsigned lg = 0;
    while (nsl < MAX_SLICES && nsl * SLICE < k) {
        nsl *= 2;
        lg++;
    }
    if (nsl == 1) {
        start[0] = 0;
        start[1] = k;
        return 1;
    }
    size_t cnts[MAX_SLICES] = {0};
    for (size_t i = 0; i < k; i++)
        cnts[(c->ents[i].h >> (56 - lg)) & (nsl - 1)]++;
    start[0] = 0;
    for (size_t j = 0; j < nsl; j++)
        start[j + 1] = start[j] + cnts[j];
    size_t pos[MAX_SLICES];
    memcpy(pos, start, nsl * sizeof *pos);
    for (size_t i = 0; i < k; i++)
        c->tmp[pos[(c->ents[i].h >> (56 - lg)) & (nsl - 1)]++] = c->ents[i];
    ent *t = c->ents; /* the scattered order becomes ents */
    c->ents = c->tmp;
    c->tmp = t;
    return nsl;
}

/* One slice, c->ents[a..a + n): decoded into c->blobs, sorted, and each
 * subscriber handed to rate/. */
static cdr_err rate_slice(ctx *c, size_t a, size_t n)
{
    cdr_err err = CDR_OK;
    ent *ents = c->ents;
    for (size_t i = 0; i < n; i++) {
        /* the slice's records are scattered over the bucket: fetch
         * ahead (a record spans one or two cache lines; not timed
         * alone - this VM's noise is larger than its effect) */
        if (i + 8 < n) {
            __builtin_prefetch(ents[a + i + 8].p);
            __builtin_prefetch(ents[a + i + 8].p + 64);
        }
        unpack(ents[a + i].p, &c->blobs[i]);
        c->blobs[i].h = ents[a + i].h;
        ents[a + i].b = &c->blobs[i];
    }
    size_t nruns;
    if (grp_sort_ents(c->e, ents + a, c->tmp + a, n, c->runs, &nruns) != 0)
        return CDR_E_NOMEM;
    /* each run one subscriber (grp_sort_ents compared the numbers), but
     * for the rare run of numbers sharing a hash */
    size_t s0 = a;
    for (size_t g = 0; g < nruns && err == CDR_OK; g++) {
        size_t z = s0 + (c->runs[g] & ~RUN_MIXED);
        if (!(c->runs[g] & RUN_MIXED)) {
            err = rt_subscriber(c, ents + s0, z - s0);
            s0 = z;
            continue;
        }
        while (s0 < z && err == CDR_OK) {
            size_t end = s0 + 1;
            while (end < z && ents[end].h == ents[s0].h &&
                   same_str(b_msisdn(ents[end].b), ents[end].b->l_msisdn,
                            b_msisdn(ents[s0].b), ents[s0].b->l_msisdn))
                end++;
            err = rt_subscriber(c, ents + s0, end - s0);
            s0 = end;
        }
    }
    return err;
}

/* The bucket's memory after it is rated: with c->out, its records (the
 * blobs point into them) live on in the outbuf until it is drained; with
 * a state they stay in the bucket (a finish may run again). */
static void release(ctx *c, bucket *bk, unsigned char *data)
{
    if (c->out)
        c->out->spill_data = data;
    else
        free(data);
    if (c->e->o.state)
        return;
    if (c->out) {
        c->out->chunks = bk->head;
    } else {
        for (chunk *ck = bk->head, *n; ck; ck = n) {
            n = ck->next;
            free(ck);
        }
    }
    bk->head = bk->tail = NULL;
    bk->bytes = 0;
}

cdr_err grp_walk_bucket(ctx *c, int bi)
{
    cdr_engine *e = c->e;
    bucket *bk = &e->b[bi];
    unsigned char *data = NULL;
    size_t k;
    cdr_err err = bucket_ents(c, bi, &data, &k);
    if (err != CDR_OK || (!data && !bk->head)) {
        free(data);
        return err;
    }
    if (!e->o.state)
        bk->records = 0; /* (with a state the records stay: a finish may run again) */
    size_t start[MAX_SLICES + 1];
    size_t nsl = cut_slices(c, k, start);
    size_t most = 0;
    for (size_t j = 0; j < nsl; j++)
        if (start[j + 1] - start[j] > most)
            most = start[j + 1] - start[j];
    if (most > c->blobs_cap) {
        blob *nb = realloc(c->blobs, most * sizeof *nb);
        if (nb)
            c->blobs = nb;
        uint32_t *nr = nb ? realloc(c->runs, most * sizeof *nr) : NULL;
        if (!nr) {
            free(data);
            return CDR_E_NOMEM;
        }
        c->runs = nr;
        c->blobs_cap = most;
    }
    for (size_t j = 0; j < nsl && err == CDR_OK; j++)
        err = rate_slice(c, start[j], start[j + 1] - start[j]);
    release(c, bk, data);
    return err;
}
