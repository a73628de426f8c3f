/* cdrecon — rewind points: the walk before a subscriber-month's last partial call, kept with its few records, so that the call's next part re-rates those and not the month. */
/*
 * A call over midnight comes as parts on two nights. Its first night's
 * parts are the subscriber-month's last records; the next night brings the
 * rest, and with it the call's merged charge changes at its first part.
 * Without a rewind point the month is rated whole from every segment
 * (docs/state.md). With one, the checkpoint also holds the walk as it
 * stood before the call's first part and the records from there on (the
 * tail, at most ST_TAIL_MAX); the month goes on from there with the tail
 * and the new records, and replaces the findings from the tail's first
 * record on: the same as rating it whole, as nothing before the point
 * depends on what follows it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "rate_int.h"

size_t rt_rewind_point(const work *w, size_t n)
{
    if (n == 0)
        return SIZE_MAX;
    const work *l = &w[n - 1];
    if (!is_partial(l->b) || (l->status != CDR_RS_RATED && l->status != CDR_RS_PARTIAL_FIRST &&
                              l->status != CDR_RS_PARTIAL_REST))
        return SIZE_MAX;
    size_t r = l->status == CDR_RS_PARTIAL_REST ? (size_t)l->group_first : n - 1;
    for (;;) {
        if (n - r > ST_TAIL_MAX)
            return SIZE_MAX;
        size_t back = r;
        for (size_t j = r; j < n; j++) {
            if (w[j].status == CDR_RS_DUPLICATE && (size_t)w[j].dup_of < r)
                return SIZE_MAX; /* its original lies before the point */
            if (w[j].status == CDR_RS_PARTIAL_REST && (size_t)w[j].group_first < back)
                back = (size_t)w[j].group_first;
        }
        if (back == r)
            return r;
        r = back; /* a call begun before it: go back to that call's start */
    }
}

void rt_rewind_snap(ctx *c, const work *w, size_t i, const mopts *mo, mwalk k)
{
    st_rewind *s = &c->rw_snap;
    const st_ckpt *init = mo->init;
    c->rw_ok = 0;
    if (c->n_pb > ST_POOLS_MAX)
        return;
    s->seq = mo->seq0 + i;
    s->prev_end = k.prev_end;
    s->cflags = k.cflags;
    s->has_cand = k.has_candidate;
    s->over = k.over;
    s->cand_records = k.cand_records;
    s->cats = k.cats;
    s->n_findings = (init ? init->n_findings : 0) + k.findings;
    /* the billed sum of the records before the point (the walk sums the
     * month's in advance: month_limits) */
    cdr_money billed = init ? (cdr_money)init->billed_hi << ST_SUM_SHIFT : 0;
    for (size_t j = 0; j < i; j++)
        billed += w[j].b->billed; /* (below the month's limit, checked already) */
    s->billed_hi = rt_sum_hi(billed);
    s->rebuilt_hi = rt_sum_hi(k.rebuilt_sum);
    s->n_pools = (uint32_t)c->n_pb;
    for (size_t j = 0; j < c->n_pb; j++)
        s->pools[j] = (st_pool){c->pb[j].plan, c->pb[j].pool, c->pb[j].left};
    c->rw_ok = 1;
}

cdr_err rt_rewind_save(ctx *c, const work *w, size_t n, st_ckpt *o)
{
    const cdr_engine *e = c->e;
    o->has_rw = 0;
    if (c->rw_at >= n || !c->rw_ok)
        return CDR_OK;
    int64_t base = cdr_month_start(cdr_time_month(w[0].b->start));
    c->rw_tail.n = 0;
    for (size_t j = c->rw_at; j < n; j++) {
        const blob *b = w[j].b;
        int64_t db_id = b->file_index < e->n_files ? e->files[b->file_index].db_id : 0;
        if (db_id == 0)
            return CDR_OK; /* a file the database does not know: no rewind point */
        cdr_row row;
        cdr_err err = rt_fill_row(c, b, &row);
        if (err != CDR_OK)
            return err;
        st_tail_put(&c->rw_tail, &row, db_id, base);
    }
    if (c->rw_tail.failed)
        return CDR_E_NOMEM;
    unsigned char *tail = o->rw.tail;
    size_t cap = o->rw.tail_cap;
    o->rw = c->rw_snap;
    o->rw.tail = tail;
    o->rw.tail_cap = cap;
    if (st_ckpt_set_tail(o, c->rw_tail.p, c->rw_tail.n, (uint32_t)(n - c->rw_at)) != 0)
        return CDR_E_NOMEM;
    o->has_rw = 1;
    return CDR_OK;
}

cdr_err rt_load_tail(ctx *c, const st_ckpt *old)
{
    const st_rewind *rw = &old->rw;
    int64_t base = cdr_month_start(cdr_time_month(old->last_start));
    st_rd rd = {rw->tail, rw->tail + rw->tail_n, 0};
    c->st.n = 0;
    c->st.nb = 0;
    for (uint32_t j = 0; j < rw->n_tail; j++) {
        cdr_row row;
        int64_t db_id;
        st_rd again = rd;
        int g = st_tail_get(&rd, &row, &db_id, base, c->tx, (uint32_t)c->tx_cap);
        if (g == -3) {
            if (cdr_grow(&c->tx, &c->tx_cap, row.n_extra, sizeof *c->tx, 16))
                return CDR_E_NOMEM;
            rd = again;
            g = st_tail_get(&rd, &row, &db_id, base, c->tx, (uint32_t)c->tx_cap);
        }
        uint32_t fi = g == 0 ? rt_file_by_db_id(c->e, db_id) : UINT32_MAX;
        if (fi == UINT32_MAX)
            return rt_ck_fail(c, "damaged rewind point in a checkpoint entry");
        row.msisdn = (cdr_str){old->msisdn, old->msisdn_len};
        row.file_index = fi;
        cdr_err err = rt_stored_push(c, &row);
        if (err != CDR_OK)
            return err;
    }
    if (rd.p != rd.end)
        return rt_ck_fail(c, "damaged rewind point in a checkpoint entry");
    return rt_stored_unpack(c, old->h);
}

int rt_tail_has_call(const ctx *c, const blob *b)
{
    for (size_t j = 0; j < c->st.nb; j++) {
        const blob *t = &c->st.b[j];
        if (is_partial(t) && t->service == b->service && t->l_call == b->l_call &&
            !memcmp(b_call(t), b_call(b), b->l_call))
            return 1;
    }
    return 0;
}

void rt_rewind_init(const st_ckpt *old, st_ckpt *init)
{
    const st_rewind *rw = &old->rw;
    memset(init, 0, sizeof *init);
    init->h = old->h;
    init->n_records = rw->seq;
    init->tariff_id = old->tariff_id;
    init->prev_end = rw->prev_end;
    init->cflags = rw->cflags;
    init->has_cand = rw->has_cand;
    init->over = rw->over;
    init->cand_records = rw->cand_records;
    init->cats = rw->cats;
    init->n_findings = rw->n_findings;
    init->billed_hi = rw->billed_hi;
    init->rebuilt_hi = rw->rebuilt_hi;
    init->n_pools = rw->n_pools;
    memcpy(init->pools, rw->pools, rw->n_pools * sizeof *rw->pools);
    /* (borrowed: every key of the month, the tail's too; the new checkpoint
     * adds the walk's own, as sets) */
    init->n_pkeys = old->n_pkeys;
    init->pkeys = old->pkeys;
    init->n_rfp = old->n_rfp;
    init->rfp = old->rfp;
    init->rfp_shift = old->rfp_shift;
}
