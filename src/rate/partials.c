/* cdrecon — partial calls and sessions: parts sharing a call_id merged on the first part, and the per-part roundings a billing system may have used. */
/*
 * CONTRACT.md: partial records of one call (same msisdn and call_id) are one
 * call: the durations (bytes) are summed and rounded up once, the whole
 * charge belongs to the first part, the other parts are rebuilt at 0 and
 * compared on the first.
 */
#include <string.h>

#include "rate_int.h"

cdr_err rt_group_partials(ctx *c, work *w, size_t n, int month_unrated)
{
    /* key (service, call_id); the first part is the earliest */
    cdr_err err;
    if ((err = rt_htab_reset(&c->group, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        w[i].group_first = -1;
        w[i].g_usage = w[i].b->amount;
        w[i].g_billed = w[i].b->billed;
        w[i].g_parts = 1;
        w[i].g_sep_billable_usage = -1;
        w[i].g_sep_whole_usage = -1;
        w[i].next_part = -1;
        w[i].last_part = (int32_t)i;
        if (w[i].status != CDR_RS_RATED || !is_partial(w[i].b) || month_unrated)
            continue;
        const blob *b = w[i].b;
        uint64_t h = cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
        size_t mask = c->group.mask, k = h & mask;
        while (c->group.v[k] >= 0) {
            const blob *o = w[c->group.v[k]].b;
            if (c->group.h[k] == h && o->service == b->service && o->l_call == b->l_call &&
                !memcmp(b_call(o), b_call(b), b->l_call))
                break;
            k = (k + 1) & mask;
        }
        if (c->group.v[k] < 0) {
            c->group.h[k] = h;
            c->group.v[k] = (int32_t)i;
        } else {
            int32_t f = c->group.v[k];
            w[i].group_first = f;
            w[i].status = CDR_RS_PARTIAL_REST;
            w[f].status = CDR_RS_PARTIAL_FIRST;
            if (__builtin_add_overflow(w[f].g_usage, b->amount, &w[f].g_usage))
                w[f].g_usage = INT64_MAX; /* above every usage limit: unrated */
            w[f].g_billed += b->billed;
            w[f].g_parts++;
            w[w[f].last_part].next_part = (int32_t)i;
            w[f].last_part = (int32_t)i;
        }
    }
    return CDR_OK;
}

void rt_part_rounding(work *w, int32_t first, cdr_service svc, int64_t increment)
{
    int64_t sep = 0, whole = 0;
    for (int32_t j = first; j >= 0; j = w[j].next_part) {
        int64_t a = w[j].b->amount;
        if (__builtin_add_overflow(sep, cdr_rate_billable(svc, a, increment), &sep))
            sep = INT64_MAX; /* no charge reproduces it */
        if (__builtin_add_overflow(
                whole, cdr_rate_billable(svc, a, svc == CDR_SVC_VOICE ? 60 : 1024), &whole))
            whole = INT64_MAX;
    }
    w[first].g_sep_billable_usage = sep;
    w[first].g_sep_whole_usage = whole;
}
