/* cdrecon — a subscriber-month's checkpoint: the walk saved after its last record, and taken up again when new records come after it. */
/*
 * A checkpoint (src/state.h st_ckpt; docs/state.md) holds what rating the
 * next record needs from the records before it: the bundle pools'
 * balances, the end of the latest call, the flags and the candidate so
 * far, upper bounds of the billed and rebuilt sums (for the limits), the
 * keys of the partial calls and the fingerprints of the record_ids (a new
 * part of a stored call, or a record_id seen before, makes the month rated
 * whole: submonth.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rate_int.h"

cdr_err rt_walk_resume(ctx *c, mwalk *k, const st_ckpt *init)
{
    for (uint32_t i = 0; i < init->n_pools; i++)
        if (!rt_pool_left(c, init->pools[i].plan, init->pools[i].pool, init->pools[i].left))
            return CDR_E_NOMEM;
    k->prev_end = init->prev_end;
    k->cflags = init->cflags;
    if (init->has_cand) {
        k->cand_records = init->cand_records;
        k->over = init->over;
        k->cats = init->cats;
        k->has_candidate = 1;
    }
    return CDR_OK;
}

/* The partial calls' keys and the record_ids' fingerprints: the old ones
 * (continued) and those of w[0..n). */
static cdr_err save_keys(ctx *c, const work *w, size_t n, const st_ckpt *init, st_ckpt *o)
{
    o->n_pkeys = 0;
    if (init)
        for (uint32_t k = 0; k < init->n_pkeys; k++)
            if (st_ckpt_add_pkey(o, init->pkeys[k]) != 0)
                return CDR_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (is_partial(w[i].b) && st_ckpt_add_pkey(o, partial_key(w[i].b)) != 0)
            return CDR_E_NOMEM;
    /* (an entry continued keeps its fingerprints' width, 18 bits when it
     * came from a format 2 or 3 file; one rated from its first record has
     * every record_id at hand and takes the full width) */
    if (st_ckpt_rfps_from(o, init) != 0)
        return CDR_E_NOMEM;
    if (n > c->fps_cap) {
        uint32_t *f = realloc(c->fps, n * sizeof *f);
        if (!f)
            return CDR_E_NOMEM;
        c->fps = f;
        c->fps_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        c->fps[i] = rid_fp(w[i].b);
    return st_ckpt_add_rfps(o, c->fps, n) != 0 ? CDR_E_NOMEM : CDR_OK;
}

cdr_err rt_walk_save(ctx *c, const work *w, size_t n, const mopts *mo, mwalk walk,
                     const cdr_candidate *cd, int *changed)
{
    cdr_engine *e = c->e;
    const mwalk *k = &walk;
    const st_ckpt *init = mo->init;
    st_ckpt *o = mo->out;
    const blob *f0 = w[0].b;
    o->h = f0->h;
    o->msisdn_len = (uint8_t)f0->l_msisdn;
    memcpy(o->msisdn, b_msisdn(f0), f0->l_msisdn);
    o->msisdn[f0->l_msisdn] = '\0';
    o->n_records = mo->seq0 + n;
    o->last_start = w[n - 1].b->start;
    o->tariff_id = e->o.tariff_id;
    o->prev_end = k->prev_end;
    if (c->n_pb > ST_POOLS_MAX) {
        snprintf(e->err, sizeof e->err, "a subscriber-month draws from more than %d bundle pools",
                 ST_POOLS_MAX);
        return CDR_E_RANGE;
    }
    o->n_pools = (uint32_t)c->n_pb;
    for (size_t i = 0; i < c->n_pb; i++)
        o->pools[i] = (st_pool){c->pb[i].plan, c->pb[i].pool, c->pb[i].left};
    o->has_cand = cd != NULL;
    o->cflags = k->cflags;
    if (cd) {
        o->over = cd->overcharge;
        o->cand_records = cd->records;
        o->cats = cd->categories;
        o->tier = cd->tier;
        o->policy = (int)cd->policy;
        o->special = cd->special;
        o->reason = cd->reason;
    }
    o->n_findings = (init ? init->n_findings : 0) + k->findings;
    /* upper bounds of the month's sums, for the limits of a continuation */
    o->billed_hi = rt_sum_hi(k->billed_sum);
    o->rebuilt_hi = rt_sum_hi(k->rebuilt_sum);
    cdr_err err = save_keys(c, w, n, init, o);
    if (err != CDR_OK || (err = rt_rewind_save(c, w, n, o)) != CDR_OK)
        return err;
    const st_ckpt *p = mo->prev;
    int had = p && p->has_cand;
    *changed = cd && !(had && p->over == o->over && p->cand_records == o->cand_records &&
                       p->cats == o->cats && p->cflags == o->cflags && p->tier == o->tier &&
                       p->policy == o->policy && p->special == o->special &&
                       p->reason == o->reason);
    return CDR_OK;
}
