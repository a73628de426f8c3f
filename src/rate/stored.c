/* cdrecon — a subscriber-month's records in the month state: their record_ids asked, the records loaded and merged in time order with the new ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate_int.h"
#include "grow.h"

cdr_err rt_ck_fail(ctx *c, const char *why)
{
    snprintf(c->e->err, sizeof c->e->err, "%s", why && *why ? why : "damaged state file");
    return CDR_E_PARSE;
}

static int rid_add(const cdr_str *id, void *u)
{
    ctx *c = u;
    if (cdr_grow(&c->rids, &c->rids_cap, c->n_rids + 1, sizeof *c->rids, 256))
        return CDR_E_NOMEM;
    c->rids[c->n_rids++] = cdr_hash_bytes(id->p, id->n, 3);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Month mi's segment cursors at the group of (h, msisdn): *found[s]. */
static cdr_err seg_find(ctx *c, int mi, uint64_t h, const char *m, size_t n)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    for (size_t s = 0; s < em->n_segs; s++) {
        st_gcur *g = &wm->g[s];
        cdr_err err;
        if (!wm->g_on) {
            if ((err = st_gcur_seek(g, em->segs[s], h, m, n)) != CDR_OK)
                return err == CDR_E_NOMEM ? err : rt_ck_fail(c, g->err);
        } else if (st_gcur_find(g, h, m, n) < 0) {
            return rt_ck_fail(c, g->err);
        }
    }
    wm->g_on = 1;
    return CDR_OK;
}

static int seg_here(const st_gcur *g, uint64_t h, const char *m, size_t n)
{
    return g->have && st_key_cmp(g->cur.h, g->cur.msisdn, g->cur.msisdn_len, h, m, n) == 0;
}

/* Whether a new record's record_id is one of the stored records'. */
cdr_err rt_stored_ids_hit(ctx *c, int mi, const work *wn, size_t nn, uint64_t h,
                          const char *m, size_t ml, int *hit)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    cdr_err err;
    *hit = 0;
    c->n_rids = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++)
        if (seg_here(&wm->g[s], h, m, ml) && (err = st_gcur_ids(&wm->g[s], rid_add, c)) != CDR_OK)
            return err == CDR_E_NOMEM ? err : rt_ck_fail(c, wm->g[s].err);
    qsort(c->rids, c->n_rids, sizeof *c->rids, cmp_u64);
    for (size_t i = 0; i < nn && !*hit; i++) {
        uint64_t k = cdr_hash_bytes(b_rid(wn[i].b), wn[i].b->l_rid, 3);
        *hit = bsearch(&k, c->rids, c->n_rids, sizeof k, cmp_u64) != NULL;
    }
    return CDR_OK;
}

typedef struct load_ctx {
    ctx *c;
    const uint32_t *files; /* segment file index -> engine file index */
    size_t n_files;
} load_ctx;

cdr_err rt_stored_push(ctx *c, const cdr_row *row)
{
    stored *st = &c->st;
    packing pk;
    cdr_err err = pack_prepare(row, &pk);
    if (err != CDR_OK)
        return err;
    if (cdr_grow(&st->p, &st->cap, st->n + pk.need + PACK_PAD, 1, 65536))
        return CDR_E_NOMEM;
    pack_write(st->p + st->n, row, &pk);
    st->n += pk.need;
    st->nb++;
    return CDR_OK;
}

cdr_err rt_stored_unpack(ctx *c, uint64_t h)
{
    stored *st = &c->st;
    if (st->nb > st->bcap) {
        blob *b = realloc(st->b, st->nb * sizeof *b);
        if (!b)
            return CDR_E_NOMEM;
        st->b = b;
        st->bcap = st->nb;
    }
    size_t off = 0;
    for (size_t i = 0; i < st->nb; i++) {
        unpack(st->p + off, &st->b[i]);
        st->b[i].h = h;
        off += packed_size(st->p + off);
    }
    return CDR_OK;
}

/* A stored row, packed into the ctx's stored area (unpacked afterwards:
 * the area moves while it grows). */
static int stored_add(const cdr_row *r, uint32_t fl, void *u)
{
    load_ctx *x = u;
    if (fl >= x->n_files)
        return CDR_E_PARSE;
    cdr_row row = *r;
    row.file_index = x->files[fl];
    return rt_stored_push(x->c, &row);
}

/* Every stored record of (h, msisdn) in month mi, as blobs in c->st.b. */
cdr_err rt_load_stored(ctx *c, int mi, uint64_t h, const char *m, size_t ml)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    stored *st = &c->st;
    cdr_err err;
    st->n = 0;
    st->nb = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++) {
        if (!seg_here(&wm->g[s], h, m, ml))
            continue;
        load_ctx x = {c, em->seg_files[s], st_segr_n_files(em->segs[s])};
        err = st_gcur_rows(&wm->g[s], stored_add, &x);
        if (err != CDR_OK)
            return err == CDR_E_NOMEM ? err : rt_ck_fail(c, wm->g[s].err);
    }
    return rt_stored_unpack(c, h);
}

/* The stored records of the subscriber-month and the new ones wn[0..nn),
 * merged in time order into c->wf. */
cdr_err rt_merge_stored(ctx *c, const work *wn, size_t nn, size_t *total)
{
    stored *st = &c->st;
    size_t n = st->nb + nn;
    if (rt_work_grow(&c->wf, &c->wf_cap, n ? n : 1))
        return CDR_E_NOMEM;
    /* both sides are in time order (each segment's group is, and the new
     * records are): the stored side is sorted first, as several segments
     * interleave */
    if (st->nb > c->mix_cap) {
        const blob **m = realloc(c->mix, st->nb * sizeof *m);
        if (!m)
            return CDR_E_NOMEM;
        c->mix = m;
        c->mix_cap = st->nb;
    }
    for (size_t i = 0; i < st->nb; i++)
        c->mix[i] = &st->b[i];
    /* insertion sort on nearly sorted runs, else a merge sort via qsort */
    const cdr_engine *e = c->e;
    for (size_t i = 1; i < st->nb; i++) {
        const blob *x = c->mix[i];
        size_t j = i;
        while (j > 0 && grp_blob_time_cmp(e, c->mix[j - 1], x) > 0) {
            c->mix[j] = c->mix[j - 1];
            j--;
        }
        c->mix[j] = x;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < st->nb || j < nn) {
        int take_new = i == st->nb || (j < nn && grp_blob_time_cmp(e, wn[j].b, c->mix[i]) < 0);
        if (take_new) {
            c->wf[k].b = wn[j++].b;
            c->wf[k].is_new = 1;
        } else {
            c->wf[k].b = c->mix[i++];
            c->wf[k].is_new = 0;
        }
        k++;
    }
    *total = k;
    return CDR_OK;
}
