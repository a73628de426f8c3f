/* cdrecon — subscriber-months with a month state: continued from their checkpoint or rated whole, untouched ones carried over, the bucket's state parts written. */
/*
 * A bucket's subscriber-months come in hash order, and so do each month's
 * old checkpoint entries (st_ckcur): the cursor is advanced to each
 * subscriber-month rated, and every entry it passes - a subscriber-month
 * no new record touches - is copied to the new checkpoint file as it is
 * (or, re-rating, rated again from its stored records).
 */
#include <stdio.h>
#include <string.h>

#include "rate_int.h"
#include "bsearch.h"

typedef struct month_key {
    const emonth *em;
    cdr_month m;
} month_key;

static int month_below(size_t k, const void *x)
{
    const month_key *q = x;
    return q->em[k].m < q->m;
}

/* The month index of m in the finish's months (they are sorted). */
static int month_index(const cdr_engine *e, cdr_month m)
{
    month_key q = {e->em, m};
    size_t k = cdr_partition_point(e->n_em, month_below, &q);
    return k < e->n_em && e->em[k].m == m ? (int)k : -1;
}

static uint64_t bucket_lo(int bi)
{
    return (uint64_t)bi << 56;
}

/* Whether hash h is still in the current bucket. */
static int in_bucket(int bi, uint64_t h)
{
    return (int)(h >> 56) == bi;
}

/* Position month mi's checkpoint cursor at the bucket's start (once). */
static cdr_err ck_start(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    if (wm->ck_on)
        return CDR_OK;
    wm->ck_on = 1;
    st_ckr *r = c->e->em[mi].ckp;
    if (!r) {
        wm->ck.have = 0;
        return CDR_OK;
    }
    cdr_err err = st_ckcur_seek(&wm->ck, r, bucket_lo(c->bucket));
    return err == CDR_OK ? CDR_OK : err == CDR_E_NOMEM ? err : rt_ck_fail(c, wm->ck.err);
}

/* Continue or rate whole (docs/state.md): a subscriber-month the state
 * does not have is new; one to re-rate, last rated with another tariff,
 * or whose new records do not all come after its stored ones is rated
 * whole; so is one where a new record is a part of a stored call or
 * repeats a stored record_id (it would make a duplicate). Otherwise the
 * new records continue it from its checkpoint. */
static cdr_err decide_mode(ctx *c, int mi, const work *wn, size_t nn, const st_ckpt *old,
                           uint64_t h, const char *m, size_t ml, cdr_submonth_mode *mode)
{
    cdr_engine *e = c->e;
    if (!old) {
        *mode = CDR_SM_NEW;
        return CDR_OK;
    }
    if (e->em[mi].rerate || old->tariff_id != e->o.tariff_id || nn == 0 ||
        wn[0].b->start <= old->last_start) {
        *mode = CDR_SM_FULL;
        return CDR_OK;
    }
    *mode = CDR_SM_CONTINUE;
    /* a new part of a stored call: from the rewind point when the call is
     * in its tail (rewind.c), else rated whole */
    int tail = 0;
    for (size_t i = 0; i < nn && *mode != CDR_SM_FULL; i++) {
        if (!is_partial(wn[i].b) || !st_ckpt_has_pkey(old, partial_key(wn[i].b)))
            continue;
        if (!old->has_rw) {
            *mode = CDR_SM_FULL;
            break;
        }
        cdr_err err;
        if (!tail && (err = rt_load_tail(c, old)) != CDR_OK)
            return err;
        tail = 1;
        *mode = rt_tail_has_call(c, wn[i].b) ? CDR_SM_REWIND : CDR_SM_FULL;
    }
    /* a record_id seen before makes a duplicate: rated whole. The
     * fingerprints say "not seen" for certain; on a "perhaps" (about
     * 1 in 17,000 at 60 records; 1 in 4,400 for an entry of 18 bits) the
     * stored ids themselves decide */
    int doubt = 0;
    for (size_t i = 0; i < nn && !doubt && *mode != CDR_SM_FULL; i++)
        doubt = st_ckpt_has_rfp(old, rid_fp(wn[i].b));
    if (doubt) {
        int hit;
        cdr_err err = rt_stored_ids_hit(c, mi, wn, nn, h, m, ml, &hit);
        if (err != CDR_OK)
            return err;
        if (hit)
            *mode = CDR_SM_FULL;
    }
    return CDR_OK;
}

/* To rate the subscriber-month whole: its stored records loaded (as many
 * as the checkpoint `expect` counts, when given) and merged in time order
 * with the new ones into c->wf (*n records). */
static cdr_err load_whole(ctx *c, int mi, const work *wn, size_t nn, const st_ckpt *expect,
                          uint64_t h, const char *m, size_t ml, size_t *n)
{
    cdr_err err;
    if ((err = rt_load_stored(c, mi, h, m, ml)) != CDR_OK)
        return err;
    if (expect && c->st.nb != expect->n_records) {
        snprintf(c->e->err, sizeof c->e->err, "the state holds %zu records of a "
                 "subscriber-month whose checkpoint counts %llu", c->st.nb,
                 (unsigned long long)expect->n_records);
        return CDR_E_PARSE;
    }
    if ((err = rt_merge_stored(c, wn, nn, n)) != CDR_OK)
        return err;
    c->tot->records_rerated += c->st.nb;
    return CDR_OK;
}

/* The subscriber-month's new checkpoint into the bucket's checkpoint part,
 * and its new records wn[0..nn) into the bucket's segment part. */
static cdr_err write_parts(ctx *c, int mi, const work *wn, size_t nn, uint64_t h,
                           const char *m, size_t ml)
{
    cdr_engine *e = c->e;
    outbuf *o = c->out;
    cdr_err err;
    st_ckpart *cp = &o->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = h;
    cp->last_h = h;
    st_ckpt_put(&cp->b, &cp->f, &c->ck_new, cdr_month_start(e->em[mi].m));
    cp->n++;
    if (cp->b.failed || cp->f.failed)
        return CDR_E_NOMEM;
    if (!nn)
        return CDR_OK;
    if (!c->enc_ready) {
        if (st_enc_init(&c->enc, 1) != 0)
            return CDR_E_NOMEM;
        c->enc_ready = 1;
    }
    st_part *part = &o->parts[mi];
    if (st_part_group(part, m, ml, nn, &c->enc) != 0)
        return CDR_E_NOMEM;
    for (size_t i = 0; i < nn; i++) {
        cdr_row r;
        const blob *b = wn[i].b;
        if ((err = rt_fill_row(c, b, &r)) != CDR_OK)
            return err;
        if (r.n_extra) {
            /* the part keeps the row's views until its block is cut */
            cdr_str *x = rt_arena_alloc(o, r.n_extra * sizeof *x);
            if (!x)
                return CDR_E_NOMEM;
            memcpy(x, r.extra, r.n_extra * sizeof *x);
            r.extra = x;
        }
        const file_info *f = &e->files[b->file_index];
        st_file sf = {.anchors = f->anchors, .n_anchors = f->n_anchors, .row_len = f->row_len};
        if (st_part_add(part, &r, b->file_index, st_file_off_res(&sf, b->line, b->offset),
                        &c->enc) != 0)
            return CDR_E_NOMEM;
    }
    return CDR_OK;
}

/* Rate one subscriber-month with the state: new records wn[0..nn) (may be
 * none: a re-rating), its old checkpoint `old` (NULL: none). Emits the
 * events, the new checkpoint into the bucket's checkpoint part and the new
 * records into the bucket's segment part. */
static cdr_err rate_submonth(ctx *c, int mi, work *wn, size_t nn, const st_ckpt *old,
                             uint64_t h, const char *m, size_t ml)
{
    emonth *em = &c->e->em[mi];
    outbuf *o = c->out;
    cdr_err err;
    cdr_submonth sm;
    memset(&sm, 0, sizeof sm);
    sm.msisdn = (cdr_str){m, ml};
    sm.msisdn_hash = h;
    sm.month = em->m;
    sm.had_candidate = old && old->has_cand;
    sm.prev_refund = sm.had_candidate ? 2 * old->over : 0;
    sm.new_records = nn;
    cdr_submonth_mode mode;
    if ((err = decide_mode(c, mi, wn, nn, old, h, m, ml, &mode)) != CDR_OK)
        return err;
    sm.mode = mode;
    sm.records = (old ? old->n_records : 0) + nn;

    mopts mo = {NULL, old, 0, &c->ck_new, &sm};
    work *w = wn;
    size_t n = nn;
    st_ckpt rinit; /* (a rewind point's walk; its key sets are old's) */
    size_t tail_n = 0;
    if (mode == CDR_SM_CONTINUE) {
        mo.init = old;
        mo.seq0 = old->n_records;
    } else if (mode == CDR_SM_REWIND) {
        /* the tail, loaded by decide_mode, and the new records after it */
        if ((err = rt_merge_stored(c, wn, nn, &n)) != CDR_OK)
            return err;
        w = c->wf;
        rt_rewind_init(old, &rinit);
        mo.init = &rinit;
        mo.seq0 = rinit.n_records;
        sm.from_seq = rinit.n_records;
        tail_n = c->st.nb;
    } else if (mode == CDR_SM_FULL) {
        if ((err = load_whole(c, mi, wn, nn, old, h, m, ml, &n)) != CDR_OK)
            return err;
        w = c->wf;
    }
    if (n == 0)
        return CDR_OK; /* (a checkpoint without records cannot be written) */
    if ((err = rt_emit_submonth(c, &sm)) != CDR_OK)
        return err;
    outbuf_mark mark = rt_outbuf_save(o);
    cdr_engine_totals tot_keep = *c->tot;
    err = rt_month(c, w, n, em->m, &mo);
    if (err == CDR_E_AGAIN && (mode == CDR_SM_CONTINUE || mode == CDR_SM_REWIND)) {
        /* a limit the checkpoint's bounds cannot decide: rate it whole */
        rt_outbuf_restore(o, &mark);
        *c->tot = tot_keep;
        mode = sm.mode = CDR_SM_FULL;
        o->sms[o->n_sms - 1].mode = CDR_SM_FULL; /* (the begin event just emitted) */
        if ((err = load_whole(c, mi, wn, nn, NULL, h, m, ml, &n)) != CDR_OK)
            return err;
        w = c->wf;
        mo.init = NULL;
        mo.seq0 = 0;
        err = rt_month(c, w, n, em->m, &mo);
    }
    if (err != CDR_OK)
        return err;
    sm.end = 1;
    if ((err = rt_emit_submonth(c, &sm)) != CDR_OK)
        return err;
    c->tot->submonths++;
    c->tot->submonths_new += mode == CDR_SM_NEW;
    c->tot->submonths_continued += mode == CDR_SM_CONTINUE;
    c->tot->submonths_full += mode == CDR_SM_FULL;
    c->tot->submonths_rewound += mode == CDR_SM_REWIND;
    if (mode == CDR_SM_REWIND)
        c->tot->records_rerated += tail_n;
    return write_parts(c, mi, wn, nn, h, m, ml);
}

/* An old checkpoint entry no new record touches: copied, or (re-rating)
 * its subscriber-month rated again from the state. */
static cdr_err untouched(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    const st_ckpt *k = &wm->ck.cur;
    if (c->e->em[mi].rerate)
        return rate_submonth(c, mi, NULL, 0, k, k->h, k->msisdn, k->msisdn_len);
    if (k->tariff_id != c->e->o.tariff_id)
        c->tot->submonths_other_tariff++;
    st_ckpart *cp = &c->out->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = k->h;
    cp->last_h = k->h;
    st_ckcur_copy(&wm->ck, &cp->b, &cp->f);
    cp->n++;
    return cp->b.failed || cp->f.failed ? CDR_E_NOMEM : CDR_OK;
}

/* Advance month mi's checkpoint cursor to the key (h, m), handling every
 * entry before it; *old is the entry of the key itself, if there is one. */
static cdr_err ck_advance(ctx *c, int mi, uint64_t h, const char *m, size_t ml,
                          const st_ckpt **old)
{
    wmonth *wm = &c->wmo[mi];
    cdr_err err = ck_start(c, mi);
    *old = NULL;
    while (err == CDR_OK && wm->ck.have) {
        const st_ckpt *k = &wm->ck.cur;
        int cmp = st_key_cmp(k->h, k->msisdn, k->msisdn_len, h, m, ml);
        if (cmp == 0) {
            *old = k;
            return CDR_OK;
        }
        if (cmp > 0)
            return CDR_OK;
        if ((err = untouched(c, mi)) == CDR_OK && (err = st_ckcur_next(&wm->ck)) != CDR_OK &&
            err != CDR_E_NOMEM)
            err = rt_ck_fail(c, wm->ck.err);
    }
    return err;
}

cdr_err rt_handle_submonth(ctx *c, work *wn, size_t nn, cdr_month m)
{
    int mi = month_index(c->e, m);
    if (mi < 0) {
        snprintf(c->e->err, sizeof c->e->err, "a record of a month the finish did not expect");
        return CDR_E_INTERNAL;
    }
    const blob *b0 = wn[0].b;
    const st_ckpt *old;
    cdr_err err = ck_advance(c, mi, b0->h, b_msisdn(b0), b0->l_msisdn, &old);
    if (err != CDR_OK)
        return err;
    err = rate_submonth(c, mi, wn, nn, old, b0->h, b_msisdn(b0), b0->l_msisdn);
    if (err == CDR_OK && old && (err = st_ckcur_next(&c->wmo[mi].ck)) != CDR_OK &&
        err != CDR_E_NOMEM)
        err = rt_ck_fail(c, c->wmo[mi].ck.err);
    return err;
}

cdr_err rt_finish_bucket_state(ctx *c)
{
    cdr_engine *e = c->e;
    cdr_err err = CDR_OK;
    for (size_t mi = 0; mi < e->n_em && err == CDR_OK; mi++) {
        wmonth *wm = &c->wmo[mi];
        if ((err = ck_start(c, (int)mi)) != CDR_OK)
            break;
        while (err == CDR_OK && wm->ck.have && in_bucket(c->bucket, wm->ck.cur.h)) {
            if ((err = untouched(c, (int)mi)) == CDR_OK &&
                (err = st_ckcur_next(&wm->ck)) != CDR_OK && err != CDR_E_NOMEM)
                err = rt_ck_fail(c, wm->ck.err);
        }
        if (err == CDR_OK && c->enc_ready && st_part_flush(&c->out->parts[mi], &c->enc) != 0)
            err = CDR_E_NOMEM;
        wm->ck_on = 0;
        wm->g_on = 0;
    }
    return err;
}
