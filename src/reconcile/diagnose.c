/* cdrecon — the diagnosis of an overcharge: a table of probes, one per category, in CONTRACT.md's precedence order. */
/*
 * Each probe asks whether its billing error explains the billed amount:
 * most from the record's status (a duplicate, a free number, a VAS record
 * without a subscription), the others by rating the record again with one
 * thing changed (each part rounded alone, another band, no discount, more
 * units) and seeing whether that reproduces what was billed. The first
 * probe that applies names the category; rate_mismatch, last, always does.
 *
 * Adding a category: its enum value in include/cdrecon/findings.h (in the
 * precedence order), its name in src/findings.c, and one row here with its
 * probe function.
 */
#include <stdio.h>
#include <string.h>

#include "reconcile_int.h"

/* ---- the rating tried again with one change ---- */

static cdr_money alt_charge(const cdr_rate_in *base, void (*tweak)(cdr_rate_in *, int64_t),
                            int64_t arg, int *ok)
{
    cdr_rate_in in = *base;
    cdr_rate_out o;
    tweak(&in, arg);
    if (cdr_rate_usage(&in, &o) != CDR_OK || o.unrated) {
        *ok = 0;
        return 0;
    }
    *ok = 1;
    return o.charge;
}

static void tw_billable(cdr_rate_in *in, int64_t v) { in->billable_override = v; }
static void tw_band(cdr_rate_in *in, int64_t v) { in->force_band = (int32_t)v; }
static void tw_start_rule(cdr_rate_in *in, int64_t v) { (void)v; in->force_start_rule = 1; }
static void tw_no_discount(cdr_rate_in *in, int64_t v) { (void)v; in->no_discount = 1; }

/* Smallest k > from with alt(k) >= billed; returns k if alt(k) == billed, else -1. */
static int64_t search_units(const cdr_rate_in *base, int64_t from, cdr_money billed)
{
    int ok;
    int64_t lo = from, hi = from + 1, limit = (int64_t)1 << 40;
    cdr_money v = alt_charge(base, tw_billable, hi, &ok);
    if (!ok)
        return -1;
    while (v < billed) {
        lo = hi;
        if (hi > limit)
            return -1;
        hi = hi * 2 + 1;
        v = alt_charge(base, tw_billable, hi, &ok);
        if (!ok)
            return -1;
    }
    /* alt(lo) < billed (or lo == from), alt(hi) >= billed */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        v = alt_charge(base, tw_billable, mid, &ok);
        if (!ok)
            return -1;
        if (v >= billed)
            hi = mid;
        else
            lo = mid;
    }
    v = alt_charge(base, tw_billable, hi, &ok);
    return ok && v == billed ? hi : -1;
}

/* The amounts of an explanation: billed, rebuilt, billed - rebuilt. */
typedef struct amounts {
    char billed[32], rebuilt[32], over[32];
} amounts;

static void amounts_of(const rc_record *r, amounts *a)
{
    cdr_money_format(r->billed, 2, a->billed);
    cdr_money_format(r->rebuilt, 2, a->rebuilt);
    cdr_money_format(r->billed - r->rebuilt, 2, a->over);
}

/* Rated: the record has a rating of its own (ro is set). */
static int rated(const rc_record *r)
{
    return r->status == CDR_RS_RATED || r->status == CDR_RS_PARTIAL_FIRST;
}

/* ---- the probes, in precedence order ---- */

static int p_duplicate(const rc_record *r, char *x, size_t xn)
{
    if (r->status != CDR_RS_DUPLICATE)
        return 0;
    amounts a;
    amounts_of(r, &a);
    int same_id = r->dup_of.n == r->record_id.n &&
                  !memcmp(r->dup_of.p, r->record_id.p, r->record_id.n);
    snprintf(x, xn, "duplicate of record %.*s (%s); a duplicate is not charged: billed %s, "
             "overcharged %s", (int)r->dup_of.n, r->dup_of.p,
             same_id ? "same record_id" : "same usage under a new record_id", a.billed, a.over);
    return 1;
}

static int p_free_number(const rc_record *r, char *x, size_t xn)
{
    if (r->status != CDR_RS_FREE)
        return 0;
    amounts a;
    amounts_of(r, &a);
    const cdr_free_number *f = cdr_tariff_free_number(r->t, r->peer.p, r->peer.n);
    snprintf(x, xn, "%s to free number %.*s (%s) charged %s; free numbers are not charged",
             r->service == CDR_SVC_SMS ? "SMS" : "call", (int)r->peer.n, r->peer.p,
             f ? f->label : "", a.billed);
    return 1;
}

static int p_zero_duration(const rc_record *r, char *x, size_t xn)
{
    if (r->service != CDR_SVC_VOICE || r->usage != 0)
        return 0;
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "0-second call charged %s; a call of 0 s is not charged", a.billed);
    return 1;
}

/* docs/rating.md: each part rounded up alone to the rate's increment, then
 * each to a whole minute (voice) / MB (data). */
static int p_partial_rounding(const rc_record *r, char *x, size_t xn)
{
    if (r->status != CDR_RS_PARTIAL_FIRST || r->parts < 2 || !r->ro->rate)
        return 0;
    int ok;
    amounts a;
    int64_t sep = r->sep_billable, whole = r->sep_whole;
    int voice = r->service == CDR_SVC_VOICE;
    cdr_money v = alt_charge(r->in, tw_billable, sep, &ok);
    if (ok && v == r->billed) {
        amounts_of(r, &a);
        snprintf(x, xn, "%u partial records of one %s rounded up separately "
                 "(%lld billable units instead of %lld merged): billed %s, should be %s",
                 r->parts, voice ? "call" : "session", (long long)sep,
                 (long long)r->ro->billable, a.billed, a.rebuilt);
        return 1;
    }
    if (whole == sep)
        return 0;
    v = alt_charge(r->in, tw_billable, whole, &ok);
    if (!ok || v != r->billed)
        return 0;
    amounts_of(r, &a);
    snprintf(x, xn, "%u partial records of one %s each rounded up to a whole %s "
             "(%lld billable %s instead of %lld merged): billed %s, should be %s",
             r->parts, voice ? "call" : "session", voice ? "minute" : "MB", (long long)whole,
             voice ? "seconds" : "KB", (long long)r->ro->billable, a.billed, a.rebuilt);
    return 1;
}

static int p_vas_no_subscription(const rc_record *r, char *x, size_t xn)
{
    if (r->status != CDR_RS_NO_SUBSCRIPTION)
        return 0;
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "information fee for SP service %.*s charged %s without a valid "
             "subscription at that time", (int)r->peer.n, r->peer.p, a.billed);
    return 1;
}

static int p_data_no_usage(const rc_record *r, char *x, size_t xn)
{
    if (r->service != CDR_SVC_DATA || r->usage != 0)
        return 0;
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "data record of 0 bytes charged %s; no usage, no charge", a.billed);
    return 1;
}

static int p_bundle_not_applied(const rc_record *r, char *x, size_t xn)
{
    if (!rated(r) || r->ro->covered <= 0)
        return 0;
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "bundle pool %s still covered %lld of %lld billable units; billed %s, "
             "should be %s", r->t->pool_names[r->ro->pool], (long long)r->ro->covered,
             (long long)r->ro->billable, a.billed, a.rebuilt);
    return 1;
}

static int p_discount_not_applied(const rc_record *r, char *x, size_t xn)
{
    if (!rated(r) || r->ro->discount_micro <= 0)
        return 0;
    int ok;
    cdr_money v = alt_charge(r->in, tw_no_discount, 0, &ok);
    if (!ok || v != r->billed)
        return 0;
    amounts a;
    char pct[32];
    amounts_of(r, &a);
    cdr_money_format(r->ro->discount_micro, 0, pct);
    snprintf(x, xn, "plan discount of %s%% not applied: billed %s is the undiscounted "
             "charge, should be %s", pct, a.billed, a.rebuilt);
    return 1;
}

/* Another band's price reproduces the billed amount, or (a split plan) the
 * whole call at its start band's. */
static int p_wrong_band(const rc_record *r, char *x, size_t xn)
{
    const cdr_tariff *t = r->t;
    if (!rated(r) || t->n_band_names == 0 || r->ro->band < 0)
        return 0;
    int ok;
    amounts a;
    for (size_t bi = 0; bi < t->n_band_names; bi++) {
        if ((int32_t)bi == r->ro->band)
            continue;
        cdr_money v = alt_charge(r->in, tw_band, (int64_t)bi, &ok);
        if (ok && v == r->billed) {
            amounts_of(r, &a);
            snprintf(x, xn, "charged at the %s band's price although the record starts in "
                     "the %s band: billed %s, should be %s", t->band_names[bi],
                     t->band_names[r->ro->band], a.billed, a.rebuilt);
            return 1;
        }
    }
    if (r->ro->n_pieces <= 1)
        return 0;
    cdr_money v = alt_charge(r->in, tw_start_rule, 0, &ok);
    if (!ok || v != r->billed)
        return 0;
    amounts_of(r, &a);
    snprintf(x, xn, "the whole call was charged at the %s band's price; the plan "
             "splits calls at band boundaries: billed %s, should be %s",
             t->band_names[r->ro->band], a.billed, a.rebuilt);
    return 1;
}

/* A segment beyond the message's count, or more segments billed than its
 * length gives. */
static int p_sms_segments(const rc_record *r, char *x, size_t xn)
{
    if (r->service != CDR_SVC_SMS)
        return 0;
    amounts a;
    if (r->status == CDR_RS_SEGMENT_OVER) {
        amounts_of(r, &a);
        snprintf(x, xn, "segment %d of a long SMS of %lld characters, which has fewer "
                 "segments; an overcounted segment is not charged: billed %s",
                 r->sms_part, (long long)r->amount, a.billed);
        return 1;
    }
    if (!rated(r))
        return 0;
    int64_t k = search_units(r->in, r->ro->billable, r->billed);
    if (k <= 0)
        return 0;
    amounts_of(r, &a);
    snprintf(x, xn, "billed %lld segments, the message length of %lld characters "
             "gives %lld: billed %s, should be %s", (long long)k, (long long)r->amount,
             (long long)r->ro->billable, a.billed, a.rebuilt);
    return 1;
}

static int p_data_rounding(const rc_record *r, char *x, size_t xn)
{
    if (r->service != CDR_SVC_DATA || !rated(r) || r->usage <= 0)
        return 0;
    int64_t k = search_units(r->in, r->ro->billable, r->billed);
    if (k <= 0)
        return 0;
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "billed %lld KB, %lld bytes round up to %lld KB: billed %s, "
             "should be %s", (long long)k, (long long)r->usage, (long long)r->ro->billable,
             a.billed, a.rebuilt);
    return 1;
}

static int p_rate_mismatch(const rc_record *r, char *x, size_t xn)
{
    amounts a;
    amounts_of(r, &a);
    snprintf(x, xn, "billed %s, the tariff gives %s (no known billing error reproduces the "
             "billed amount)", a.billed, a.rebuilt);
    return 1;
}

/* CONTRACT.md "Findings and refunds": "When several categories could explain
 * one record, the first that applies in this order wins". */
const rc_probe rc_probes[] = {
    {CDR_CAT_DUPLICATE, p_duplicate},
    {CDR_CAT_FREE_NUMBER, p_free_number},
    {CDR_CAT_ZERO_DURATION, p_zero_duration},
    {CDR_CAT_PARTIAL_ROUNDING, p_partial_rounding},
    {CDR_CAT_VAS_NO_SUBSCRIPTION, p_vas_no_subscription},
    {CDR_CAT_DATA_NO_USAGE, p_data_no_usage},
    {CDR_CAT_BUNDLE_NOT_APPLIED, p_bundle_not_applied},
    {CDR_CAT_DISCOUNT_NOT_APPLIED, p_discount_not_applied},
    {CDR_CAT_WRONG_BAND, p_wrong_band},
    {CDR_CAT_SMS_SEGMENTS, p_sms_segments},
    {CDR_CAT_DATA_ROUNDING, p_data_rounding},
    {CDR_CAT_RATE_MISMATCH, p_rate_mismatch},
};
const size_t rc_n_probes = sizeof rc_probes / sizeof *rc_probes;

/* One row per overcharge category (the enum lists them in the same order). */
_Static_assert(sizeof rc_probes / sizeof *rc_probes == CDR_CAT__OVERCHARGE_COUNT,
               "one probe per overcharge category");

cdr_category rc_diagnose(const rc_record *r, char *x, size_t xn)
{
    for (size_t i = 0; i < rc_n_probes; i++)
        if (rc_probes[i].probe(r, x, xn))
            return rc_probes[i].category;
    return CDR_CAT_RATE_MISMATCH; /* (not reached: its probe always applies) */
}
