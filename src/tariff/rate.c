/* cdrecon — one record's charge: increments, bands, bundles, discount, one rounding. */
#include <string.h>

#include "cdrecon/rate.h"

void cdr_rate_in_init(cdr_rate_in *in)
{
    /* field by field: a memset of the struct is a `rep stos` in gcc's code,
     * slow to start for a call made once per record */
    in->tariff = NULL;
    in->plan = 0;
    in->service = (cdr_service)0;
    in->direction = (cdr_direction)0;
    in->peer = (cdr_str){NULL, 0};
    in->start = 0;
    in->usage = 0;
    in->pool_avail = -1;
    in->force_band = -1;
    in->force_start_rule = 0;
    in->no_discount = 0;
    in->no_bundle = 0;
    in->billable_override = -1;
    in->rate_hint = NULL;
    in->band_hint = -1;
}

static int64_t round_up(int64_t v, int64_t inc)
{
    if (inc <= 1)
        return v;
    return (v + inc - 1) / inc * inc;
}

int64_t cdr_rate_billable(cdr_service s, int64_t usage, int64_t increment)
{
    if (usage <= 0)
        return 0;
    switch (s) {
    case CDR_SVC_VOICE:
    case CDR_SVC_SMS:
        return round_up(usage, increment);
    case CDR_SVC_DATA:
        return round_up((usage + 1023) / 1024, increment);
    case CDR_SVC_VAS:
        return 1;
    }
    return 0;
}

int64_t cdr_sms_segments(int64_t chars, int32_t single_chars, int32_t part_chars)
{
    if (single_chars <= 0)
        single_chars = 70;
    if (part_chars <= 0)
        part_chars = 70;
    if (chars <= single_chars)
        return 1;
    return (chars + part_chars - 1) / part_chars;
}

static __int128 gcd128(__int128 a, __int128 b)
{
    if (a < 0)
        a = -a;
    while (b) {
        __int128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* acc (num/den) += units * price / unit. The first term is taken as is (the
 * common case: one piece); later terms are cross-multiplied and reduced. */
static cdr_err frac_add(__int128 *num, __int128 *den, int64_t units, cdr_money price, int64_t unit)
{
    const __int128 lim = (__int128)1 << 90;
    __int128 n2 = (__int128)units * price, d2 = unit;
    if (*num == 0) {
        *num = n2;
        *den = d2;
    } else if (*den == d2) {
        *num += n2;
    } else {
        __int128 n = *num * d2 + n2 * *den, d = *den * d2;
        __int128 g = gcd128(n, d);
        if (g > 1) {
            n /= g;
            d /= g;
        }
        *num = n;
        *den = d;
    }
    if (*num > lim || *num < -lim || *den > ((__int128)1 << 60))
        return CDR_E_RANGE;
    return CDR_OK;
}

/* The steps of cdr_rate_usage are always inlined: it runs once per
 * record (callgrind, `rate` of 300,000 rows: the same instruction count
 * as the one function they were cut from). */
#define RATE_STEP static inline __attribute__((always_inline))

/* The charged seconds of a voice call under the split rule, laid out
 * from `at` and cut at band changes: each piece at its band's rate into
 * num/den and out->pieces. A band without a rate row: out->unrated,
 * CDR_OK. */
RATE_STEP cdr_err split_pieces(const cdr_rate_in *in, cdr_time at, int64_t left, __int128 *num,
                               __int128 *den, cdr_rate_out *out)
{
    const cdr_tariff *t = in->tariff;
    cdr_err e;
    int np = 0;
    while (left > 0) {
        int32_t b = cdr_tariff_band_at(t, at);
        cdr_time next = cdr_tariff_band_change(t, at);
        int64_t len = next - at;
        if (len <= 0 || len > left)
            len = left;
        const cdr_rate *pr = cdr_tariff_find_rate(t, in->plan, in->service, in->direction,
                                                  in->peer.p, in->peer.n, b);
        if (!pr) {
            out->unrated = "no rate row for a band the call runs into (split rule)";
            return CDR_OK;
        }
        if ((e = frac_add(num, den, len, pr->price, pr->unit)) != CDR_OK)
            return e;
        if (np < CDR_RATE_MAX_PIECES && np > 0 && out->pieces[np - 1].band == b &&
            out->pieces[np - 1].rate == pr) {
            out->pieces[np - 1].units += len;
        } else if (np < CDR_RATE_MAX_PIECES) {
            out->pieces[np].band = b;
            out->pieces[np].rate = pr;
            out->pieces[np].units = len;
            np++;
        }
        at += len;
        left -= len;
    }
    out->n_pieces = np;
    return CDR_OK;
}

/* The plan's discount of the service (unless in->no_discount) on
 * num/den, the fraction reduced. */
RATE_STEP void apply_discount(const cdr_rate_in *in, __int128 *num, __int128 *den,
                              cdr_rate_out *out)
{
    const cdr_tariff *t = in->tariff;
    const cdr_discount *d = in->no_discount ? NULL : cdr_tariff_discount(t, in->plan, in->service);
    if (d && d->percent_micro > 0) {
        const int64_t full = 100 * CDR_MICRO; /* 100% in percent_micro */
        out->discount_micro = d->percent_micro;
        *num *= (full - d->percent_micro);
        *den *= full;
        __int128 g = gcd128(*num, *den);
        if (g > 1) {
            *num /= g;
            *den /= g;
        }
    }
}

cdr_err cdr_rate_usage(const cdr_rate_in *in, cdr_rate_out *out)
{
    const cdr_tariff *t = in->tariff;
    const cdr_plan *plan = &t->plans[in->plan];
    cdr_err e;

    /* (field by field, see cdr_rate_in_init; pieces[] beyond n_pieces are
     * left as they are) */
    out->rate = NULL;
    out->band = -1;
    out->billable = 0;
    out->covered = 0;
    out->pool = -1;
    out->gross = 0;
    out->charge = 0;
    out->discount_micro = 0;
    out->n_pieces = 0;
    out->unrated = NULL;

    /* A usage above the reader's limits (only partial records summed can
     * reach it) is beyond what the tariff was checked for (common.h). */
    if (in->usage > (in->service == CDR_SVC_VOICE  ? CDR_DURATION_MAX
                     : in->service == CDR_SVC_DATA ? CDR_BYTES_MAX
                     : in->service == CDR_SVC_SMS  ? CDR_SMS_CHARS_MAX
                                                   : INT64_MAX)) {
        out->unrated = "usage above the limit rating computes (10^9 s, 10^9 SMS segments, "
                       "10^15 bytes), the parts of a call or session summed";
        return CDR_OK;
    }

    int32_t band = in->force_band >= 0 ? in->force_band
                   : in->rate_hint     ? in->band_hint
                                       : cdr_tariff_band_at(t, in->start);
    out->band = band;
    const cdr_rate *r = in->rate_hint && in->force_band < 0
                            ? in->rate_hint
                            : cdr_tariff_find_rate(t, in->plan, in->service, in->direction,
                                                   in->peer.p, in->peer.n, band);
    if (!r) {
        out->unrated = "no rate row matches (plan, service, direction, peer prefix, band)";
        return CDR_OK;
    }
    out->rate = r;

    int64_t billable;
    if (in->billable_override >= 0)
        billable = in->billable_override;
    else if (in->service == CDR_SVC_VAS)
        billable = 1;
    else
        billable = cdr_rate_billable(in->service, in->usage, r->increment);
    out->billable = billable;

    /* Bundle: the allowance covers the first billable units. */
    int64_t covered = 0;
    if (r->pool >= 0 && cdr_tariff_bundle(t, in->plan, r->pool)) {
        out->pool = r->pool;
        if (!in->no_bundle && in->pool_avail > 0)
            covered = billable < in->pool_avail ? billable : in->pool_avail;
    }
    out->covered = covered;
    int64_t charged = billable - covered;

    __int128 num = 0, den = 1;
    int split = plan->band_rule == CDR_BAND_SPLIT && in->service == CDR_SVC_VOICE &&
                in->force_band < 0 && !in->force_start_rule && band >= 0;
    if (!split || charged == 0) {
        if ((e = frac_add(&num, &den, charged, r->price, r->unit)) != CDR_OK)
            return e;
        out->n_pieces = 1;
        out->pieces[0].band = band;
        out->pieces[0].rate = r;
        out->pieces[0].units = charged;
    } else {
        /* Lay the charged seconds out from start+covered; cut at band changes. */
        e = split_pieces(in, in->start + covered, charged, &num, &den, out);
        if (e != CDR_OK || out->unrated)
            return e;
    }

    if ((e = cdr_money_round(num, den, plan->rounding, &out->gross)) != CDR_OK)
        return e;
    apply_discount(in, &num, &den, out);
    return cdr_money_round(num, den, plan->rounding, &out->charge);
}
