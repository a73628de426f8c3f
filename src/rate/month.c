/* cdrecon — one subscriber-month rated in time order: each record's status, its charge with the bundle pools' balances, its flags and its comparison; then the candidate. */
/*
 * rt_month's steps: duplicates (duplicates.c) -> the month's limits ->
 * partial calls (partials.c) -> the walk from the month's start or from its
 * checkpoint -> per record, in time order: record_begin (the record as a
 * cdr_rated), record_status (duplicate, later part, no plan, free number,
 * no subscription, segment over, or to be rated), record_rate (its charge,
 * drawing on its bundle pool's balance), record_flags (overlap, overlong),
 * record_compare (reconcile/: the finding) and out to the sink -> the
 * candidate, and with a state the new checkpoint (checkpoint.c).
 *
 * The record's steps are static functions of this file, called once each:
 * gcc inlines them into month_record, and month_record into rt_month's
 * loop, so that the code runs as when it was one function. The walk's
 * state (mwalk) is never handed out by address for the same reason: the
 * checkpoint gets a copy.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rate_int.h"
#include "reconcile_int.h"
#include "grow.h"

int64_t *rt_pool_left(ctx *c, int32_t plan, int32_t pool, int64_t allowance)
{
    for (size_t i = 0; i < c->n_pb; i++)
        if (c->pb[i].plan == plan && c->pb[i].pool == pool)
            return &c->pb[i].left;
    if (cdr_grow(&c->pb, &c->pb_cap, c->n_pb + 1, sizeof *c->pb, 8))
        return NULL;
    c->pb[c->n_pb] = (pool_bal){plan, pool, allowance};
    return &c->pb[c->n_pb++].left;
}

cdr_err rt_fill_row(ctx *c, const blob *b, cdr_row *r)
{
    /* field by field, no memset of the whole row (a `rep stos`) */
    r->extra = NULL;
    r->extra_names = NULL;
    r->n_extra = 0;
    r->raw = (cdr_str){NULL, 0};
    r->msisdn = (cdr_str){b_msisdn(b), b->l_msisdn};
    r->record_id = (cdr_str){b_rid(b), b->l_rid};
    r->peer = (cdr_str){b_peer(b), b->l_peer};
    r->call_id = (cdr_str){b_call(b), b->l_call};
    r->sms_ref = (cdr_str){b_ref(b), b->l_ref};
    r->service = (cdr_service)b->service;
    r->direction = (cdr_direction)b->direction;
    r->start = b->start;
    r->duration_s = b->service == CDR_SVC_VOICE ? b->amount : -1;
    r->bytes = b->service == CDR_SVC_DATA ? b->amount : -1;
    r->sms_chars = b->service == CDR_SVC_SMS ? b->amount : -1;
    r->sms_part = b->sms_part;
    r->sms_parts = b->sms_parts;
    r->partial_seq = b->partial_seq;
    r->billed = b->billed;
    r->file_index = b->file_index;
    r->line = b->line;
    r->offset = b->offset;
    if (b->n_extra) {
        if (b->n_extra > c->xs_cap) {
            cdr_str *x = realloc(c->xs, b->n_extra * sizeof *x);
            if (!x)
                return CDR_E_NOMEM;
            c->xs = x;
            c->xs_cap = b->n_extra;
        }
        const unsigned char *s = b->x;
        for (uint32_t i = 0; i < b->n_extra; i++) {
            uint32_t l;
            s = get_len(s, &l);
            c->xs[i] = (cdr_str){(const char *)s, (size_t)l};
            s += l;
        }
        r->extra = c->xs;
        r->n_extra = b->n_extra;
        const cdr_engine *e = c->e;
        if (b->file_index < e->n_files && e->files[b->file_index].n_extra == b->n_extra)
            r->extra_names = e->files[b->file_index].extra_names;
        else
            r->n_extra = 0; /* names unknown: should not happen */
    }
    return CDR_OK;
}

/* Limits (docs/rating.md "Limits and sums"): a subscriber-month whose
 * billed amounts add up to more than CDR_MONEY_MAX is not rated at all; so
 * no sum of its billed amounts below (merged parts, overcharge, refund = 2
 * x overcharge) can leave 64 bits. Continuing from a checkpoint, the sums
 * start at the checkpoint's upper bounds of the stored records' sums;
 * reaching a limit from there is not decided here: the month is rated
 * whole instead (0: CDR_E_AGAIN to the caller). */
static int month_limits(mwalk *k, const work *w, size_t n, const st_ckpt *init)
{
    k->unrated = NULL;
    k->billed_sum = init ? (cdr_money)init->billed_hi << ST_SUM_SHIFT : 0;
    k->rebuilt_sum = init ? (cdr_money)init->rebuilt_hi << ST_SUM_SHIFT : 0;
    for (size_t i = 0; i < n && !k->unrated; i++) {
        cdr_money v = w[i].b->billed; /* (the reader gives 0..CDR_MONEY_MAX) */
        if (v < 0 || v > CDR_MONEY_MAX || (k->billed_sum += v) > CDR_MONEY_MAX)
            k->unrated = "the billed amounts of this subscriber-month add up to more than "
                         "1000000000000 yuan: out of range, not rated";
    }
    return !(k->unrated && init);
}

/* The record as a cdr_rated, before its status and rating. */
static cdr_err record_begin(ctx *c, const work *wi, cdr_rated *r, cdr_month month, uint64_t seq)
{
    const cdr_engine *e = c->e;
    const blob *b = wi->b;
    /* the rating and the finding are filled only when used (status /
     * has_finding say so): clearing the whole struct costs more than
     * rating many records */
    /* (the row is set field by field in rt_fill_row) */
    memset(&r->month, 0, offsetof(cdr_rated, rating) - offsetof(cdr_rated, month));
    r->rating.rate = NULL;
    r->rating.n_pieces = 0;
    memset(&r->rebuilt, 0, offsetof(cdr_rated, finding) - offsetof(cdr_rated, rebuilt));
    r->unrated = NULL;
    cdr_err err = rt_fill_row(c, b, &r->row);
    if (err != CDR_OK)
        return err;
    r->month = month;
    r->seq = seq;
    r->msisdn_hash = b->h;
    r->is_new = wi->is_new;
    r->file_name = eng_file_name(e, b->file_index);
    r->file_db_id = b->file_index < e->n_files ? e->files[b->file_index].db_id : 0;
    r->plan = -1;
    r->pool_after = -1;
    r->usage = b->amount;
    r->n_parts = 1;
    r->cmp_billed = b->billed;
    return CDR_OK;
}

/* The record's status where it is not simply rated: the month not rated,
 * a duplicate, a later part, no plan, a free number, no subscription, a
 * segment over the message's count. Returns 1 when it is to be rated. */
static int record_status(ctx *c, work *wi, cdr_rated *r, const mwalk *k)
{
    const cdr_tariff *t = c->e->t;
    const blob *b = wi->b;
    const cdr_subscriber *sub = k->sub;
    if (k->unrated) {
        wi->status = CDR_RS_UNRATED;
        r->unrated = k->unrated;
        return 0;
    }
    if (wi->status == CDR_RS_DUPLICATE) {
        const blob *o = c->wm[wi->dup_of].b;
        r->dup_of = (cdr_str){b_rid(o), o->l_rid};
        return 0;
    }
    if (wi->status == CDR_RS_PARTIAL_REST)
        return 0; /* compared on the first part */
    if (!sub) {
        wi->status = CDR_RS_UNRATED;
        r->unrated = "no plan for this number at the record's start time";
        return 0;
    }
    r->plan = sub->plan;
    if ((b->service == CDR_SVC_VOICE || b->service == CDR_SVC_SMS) &&
        b->direction == CDR_DIR_MO && cdr_tariff_free_number(t, b_peer(b), b->l_peer)) {
        wi->status = CDR_RS_FREE;
    } else if (b->service == CDR_SVC_VAS &&
               !cdr_tariff_subscribed(t, b_msisdn(b), b->l_msisdn, b_peer(b), b->l_peer,
                                      b->start)) {
        wi->status = CDR_RS_NO_SUBSCRIPTION;
    } else if (b->service == CDR_SVC_SMS && b->l_ref > 0 && b->sms_part > 0 &&
               b->sms_part > cdr_sms_segments(b->amount, t->plans[sub->plan].sms_single_chars,
                                              t->plans[sub->plan].sms_part_chars)) {
        wi->status = CDR_RS_SEGMENT_OVER;
    } else {
        return 1;
    }
    return 0;
}

/* The record's charge (CONTRACT.md "The arithmetic"): its usage, its rate
 * row and bundle pool, the pool's balance before it (bundles are consumed
 * in time order), the one rounding; a first part with its parts merged.
 * Out of range: unrated with the reason (the night goes on), or from a
 * checkpoint CDR_E_AGAIN (its sums are upper bounds: rate the month whole). */
static cdr_err record_rate(ctx *c, work *w, size_t i, cdr_rated *r, cdr_rate_in *in,
                           const mopts *mo, mwalk *k)
{
    const cdr_tariff *t = c->e->t;
    work *wi = &w[i];
    const blob *b = wi->b;
    const cdr_subscriber *sub = k->sub;
    cdr_rate_out *ro = &r->rating;
    in->tariff = t;
    in->plan = sub->plan;
    in->service = (cdr_service)b->service;
    in->direction = (cdr_direction)b->direction;
    in->peer = (cdr_str){b_peer(b), b->l_peer};
    in->start = b->start;
    int64_t usage = wi->g_usage;
    if (b->service == CDR_SVC_SMS)
        usage = (b->l_ref > 0 && b->sms_part > 0)
                    ? 1
                    : cdr_sms_segments(b->amount, t->plans[sub->plan].sms_single_chars,
                                       t->plans[sub->plan].sms_part_chars);
    in->usage = usage;
    r->usage = usage;
    /* learn the pool, then give its balance */
    int32_t band = cdr_tariff_band_at(t, b->start);
    const cdr_rate *pr = cdr_tariff_find_rate(t, sub->plan, in->service, in->direction,
                                              in->peer.p, in->peer.n, band);
    in->rate_hint = pr;
    in->band_hint = band;
    int64_t *left = NULL;
    if (pr && pr->pool >= 0) {
        const cdr_bundle *bu = cdr_tariff_bundle(t, sub->plan, pr->pool);
        if (bu) {
            left = rt_pool_left(c, sub->plan, pr->pool, bu->allowance_base);
            if (!left)
                return CDR_E_NOMEM;
            in->pool_avail = *left;
        }
    }
    if (cdr_rate_usage(in, ro) != CDR_OK)
        ro->unrated = "arithmetic out of range: the charge cannot be computed "
                      "(usage x price above 1000000000000 yuan)";
    else if (!ro->unrated && ro->charge > CDR_MONEY_MAX - k->rebuilt_sum) {
        if (mo->init)
            return CDR_E_AGAIN;
        ro->unrated = "the rebuilt charges of this subscriber-month would add up to "
                      "more than 1000000000000 yuan: out of range, not rated";
    }
    if (ro->unrated) {
        wi->status = CDR_RS_UNRATED;
        r->unrated = ro->unrated;
        return CDR_OK;
    }
    k->rebuilt_sum += ro->charge;
    if (left) {
        *left -= ro->covered;
        r->pool_after = *left;
    }
    r->rebuilt = ro->charge;
    if (wi->status == CDR_RS_PARTIAL_FIRST) {
        /* per-part rounding, for the partial_rounding diagnosis */
        rt_part_rounding(w, (int32_t)i, in->service, ro->rate->increment);
        r->n_parts = wi->g_parts;
        r->cmp_billed = wi->g_billed;
    }
    return CDR_OK;
}

/* Flags: overlapping and over-long voice records (duplicates excluded). */
static unsigned record_flags(const cdr_engine *e, const work *wi, mwalk *k)
{
    const blob *b = wi->b;
    unsigned flags = 0;
    if (b->service == CDR_SVC_VOICE && wi->status != CDR_RS_DUPLICATE) {
        if (b->start < k->prev_end)
            flags |= CDR_FLAG_OVERLAP;
        if (b->amount > e->o.max_duration)
            flags |= CDR_FLAG_OVERLONG;
        if (b->start + b->amount > k->prev_end)
            k->prev_end = b->start + b->amount;
    }
    return flags;
}

/* Compare (reconcile/): a finding for a difference beyond the tolerance, a
 * duplicate or a flag; an overcharge counts for the candidate, an
 * undercharge as leakage. */
static void record_compare(ctx *c, const work *wi, cdr_rated *r, const cdr_rate_in *in,
                           unsigned flags, mwalk *k)
{
    const cdr_engine *e = c->e;
    const blob *b = wi->b;
    cdr_engine_totals *tot = c->tot;
    cdr_money billed = r->cmp_billed, diff = billed - r->rebuilt;
    if (!rc_has_finding(wi->status, diff, e->o.tolerance, flags))
        return;
    rc_record rr = {.t = e->t, .status = wi->status, .service = (cdr_service)b->service,
                    .peer = r->row.peer, .record_id = r->row.record_id, .dup_of = r->dup_of,
                    .amount = b->amount, .sms_part = b->sms_part, .usage = wi->g_usage,
                    .parts = wi->g_parts, .sep_billable = wi->g_sep_billable_usage,
                    .sep_whole = wi->g_sep_whole_usage, .in = in, .ro = &r->rating,
                    .billed = billed, .rebuilt = r->rebuilt};
    cdr_category cat = rc_compare(&rr, e->o.tolerance, flags, c->expl, sizeof c->expl);
    cdr_finding *f = &r->finding;
    r->has_finding = 1;
    f->msisdn = r->row.msisdn;
    f->month = r->month;
    f->record_id = r->row.record_id;
    f->file_index = b->file_index;
    f->file = eng_file_name(e, b->file_index);
    f->line = b->line;
    f->offset = b->offset;
    f->service = (cdr_service)b->service;
    f->start = b->start;
    f->peer = r->row.peer;
    f->category = cat;
    f->flags = flags;
    f->billed = billed;
    f->rebuilt = r->rebuilt;
    f->difference = diff;
    f->explanation = c->expl;
    f->seq = r->seq;
    f->msisdn_hash = b->h;
    f->file_db_id = r->file_db_id;
    k->findings++;
    tot->findings++;
    tot->by_category[cat]++;
    if (cat < CDR_CAT__OVERCHARGE_COUNT && diff > e->o.tolerance) {
        /* a duplicate billed 0 is a finding, but no overcharge */
        tot->amount_by_category[cat] = cdr_money_total_add(tot->amount_by_category[cat], diff);
        k->over += diff;
        k->cand_records++;
        k->cats |= 1u << cat;
        k->has_candidate = 1;
    } else if (cat == CDR_CAT_LEAKAGE) {
        tot->amount_by_category[cat] = cdr_money_total_add(tot->amount_by_category[cat], -diff);
        tot->leakage = cdr_money_total_add(tot->leakage, -diff);
        tot->leakage_records++;
    }
    k->cflags |= flags;
}

/* Record i of the subscriber-month, from its status to the sink. Inline in
 * rt_month's loop (gcc would call it per record: too large to inline by
 * itself), so that the walk's state stays in registers as when this was one
 * function: the call and the walk in memory cost 0.8 % of `rate`'s
 * instructions (callgrind on a 300,000-row month, docs/performance.md). */
static inline __attribute__((always_inline)) cdr_err
month_record(ctx *c, work *w, size_t i, cdr_month month, const mopts *mo, mwalk *k)
{
    work *wi = &w[i];
    const blob *b = wi->b;
    cdr_rated r;
    cdr_err err = record_begin(c, wi, &r, month, mo->seq0 + i);
    if (err != CDR_OK)
        return err;
    const cdr_subscriber *sub = k->sub;
    if (!sub || b->start < sub->valid_from || b->start >= sub->valid_to)
        k->sub = cdr_tariff_subscriber(c->e->t, b_msisdn(b), b->l_msisdn, b->start);
    cdr_rate_in in;
    cdr_rate_in_init(&in);
    if (record_status(c, wi, &r, k) && (err = record_rate(c, w, i, &r, &in, mo, k)) != CDR_OK)
        return err;
    r.status = wi->status;
    unsigned flags = record_flags(c->e, wi, k);
    record_compare(c, wi, &r, &in, flags, k);
    c->tot->records++;
    if (wi->status == CDR_RS_DUPLICATE)
        c->tot->duplicates++;
    if (wi->status == CDR_RS_UNRATED)
        c->tot->unrated++;
    return rt_emit_record(c, &r);
}

/* After the month's last record: its candidate (an overcharge), and with a
 * state the new checkpoint; a candidate goes to the sink when there is no
 * state, or when it is new or changed. */
static cdr_err month_end(ctx *c, const work *w, size_t n, cdr_month month, const mopts *mo,
                         const mwalk *k)
{
    cdr_engine_totals *tot = c->tot;
    cdr_err err;
    int has = k->has_candidate && k->over > 0;
    cdr_candidate cd;
    if (has)
        rc_candidate(c->e->t, (cdr_str){b_msisdn(w[0].b), w[0].b->l_msisdn}, w[0].b->h, month,
                     k->sub, k->cand_records, k->over, k->cats, k->cflags, &cd);
    if (!mo->out) {
        /* no state: every candidate */
        if (has) {
            tot->candidates++;
            tot->overcharge += cd.overcharge;
            tot->refund += cd.refund;
            if ((err = rt_emit_candidate(c, &cd)) != CDR_OK)
                return err;
        }
        return CDR_OK;
    }
    int changed;
    if ((err = rt_walk_save(c, w, n, mo, *k, has ? &cd : NULL, &changed)) != CDR_OK)
        return err;
    int had = mo->prev && mo->prev->has_cand;
    mo->sm->has_candidate = has;
    mo->sm->refund = has ? cd.refund : 0;
    mo->sm->candidate_changed = changed;
    mo->sm->candidate_withdrawn = had && !has;
    tot->candidates_changed += (uint64_t)changed;
    tot->candidates_withdrawn += (uint64_t)(had && !has);
    if (changed) {
        tot->candidates++;
        tot->overcharge = cdr_money_total_add(tot->overcharge, cd.overcharge);
        tot->refund = cdr_money_total_add(tot->refund, cd.refund);
        if ((err = rt_emit_candidate(c, &cd)) != CDR_OK)
            return err;
    }
    return CDR_OK;
}

cdr_err rt_month(ctx *c, work *w, size_t n, cdr_month month, const mopts *mo)
{
    cdr_err err;
    c->wm = w;
    if ((err = rt_find_duplicates(c, w, n)) != CDR_OK)
        return err;
    if (c->copies)
        rt_count_copies(c, w, n);
    mwalk k;
    if (!month_limits(&k, w, n, mo->init))
        return CDR_E_AGAIN;
    if ((err = rt_group_partials(c, w, n, k.unrated != NULL)) != CDR_OK)
        return err;
    /* walk in time order (from where the checkpoint left off) */
    c->n_pb = 0;
    k.prev_end = INT64_MIN;
    k.sub = NULL;
    k.has_candidate = 0;
    k.cand_records = 0;
    k.over = 0;
    k.cats = 0;
    k.cflags = 0;
    k.findings = 0;
    if (mo->init) {
        mwalk from = k; /* (k's own address is not taken: it stays in registers) */
        if ((err = rt_walk_resume(c, &from, mo->init)) != CDR_OK)
            return err;
        k = from;
    }
    /* with a state: where a later part of the last call would go back to */
    size_t rw_at = mo->out && !k.unrated ? rt_rewind_point(w, n) : SIZE_MAX;
    c->rw_at = rw_at;
    c->rw_ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (__builtin_expect(i == rw_at, 0))
            rt_rewind_snap(c, w, i, mo, k);
        if ((err = month_record(c, w, i, month, mo, &k)) != CDR_OK)
            return err;
    }
    return month_end(c, w, n, month, mo, &k);
}

cdr_err rt_subscriber(ctx *c, const ent *ents, size_t n)
{
    cdr_err err;
    if (rt_work_grow(&c->w, &c->w_cap, n))
        return CDR_E_NOMEM;
    work *w = c->w;
    for (size_t i = 0; i < n; i++) {
        w[i].b = ents[i].b;
        w[i].is_new = 1;
    }
    /* months */
    size_t s = 0;
    while (s < n) {
        cdr_month m = cdr_time_month(w[s].b->start);
        /* the records are in time order: the month ends at the next one's
         * first second (one comparison a record, not a calendar sum) */
        cdr_time next = cdr_month_start(m + 1);
        size_t end = s + 1;
        while (end < n && w[end].b->start < next)
            end++;
        if (c->e->o.state) {
            err = rt_handle_submonth(c, w + s, end - s, m);
        } else {
            mopts mo = {NULL, NULL, 0, NULL, NULL};
            err = rt_month(c, w + s, end - s, m, &mo);
        }
        if (err != CDR_OK)
            return err;
        s = end;
    }
    return CDR_OK;
}
