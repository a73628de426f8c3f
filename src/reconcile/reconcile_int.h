/* cdrecon — reconcile/'s internal header: rebuilt against billed, the diagnosis table, candidates and policy. */
/*
 * A rebuilt charge compared with the billed one, the category of a
 * difference (the diagnosis: a table of probes in CONTRACT.md's precedence
 * order), and the refund candidate of a subscriber-month with its approval
 * tier and policy (DOMAIN.md).
 *
 * rate/ calls these for the records it rates; nothing here knows how
 * records are packed, grouped or stored: a record comes as an rc_record
 * (views and numbers), so that each piece can be tried on a record made by
 * hand (tests/unit/test_reconcile.c). Not public.
 */
#ifndef CDRECON_RECONCILE_INT_H
#define CDRECON_RECONCILE_INT_H

#include "cdrecon/engine.h"

/* One compared record as reconcile/ sees it. */
typedef struct rc_record {
    const cdr_tariff *t;
    cdr_rec_status status;
    cdr_service service;
    cdr_str peer;
    cdr_str record_id;
    cdr_str dup_of;          /* a duplicate: its original's record_id */
    int64_t amount;          /* the record's own duration_s / bytes / sms_chars */
    int32_t sms_part;        /* a per-segment SMS record: its segment number */
    int64_t usage;           /* the usage compared: a call's or session's parts merged on
                                its first part, else amount */
    uint32_t parts;          /* parts of a merged call or session (1 otherwise) */
    int64_t sep_billable;    /* first part: the parts' usage each rounded up alone to the
                                rate's increment, summed */
    int64_t sep_whole;       /* first part: each rounded up to a whole minute / MB, summed */
    const cdr_rate_in *in;   /* the rating's input: probes rate it again with one change */
    const cdr_rate_out *ro;  /* the rating (read only when status is RATED or PARTIAL_FIRST) */
    cdr_money billed;        /* billed as compared (a first part: the sum of its parts') */
    cdr_money rebuilt;
} rc_record;

/* Whether a record has a finding: a difference beyond the tolerance (a
 * record compared on its own: not a later part, not unrated), a duplicate,
 * or a flag. Asked of every record, so inline; rc_compare is called only
 * when it says yes. */
static inline int rc_has_finding(cdr_rec_status s, cdr_money diff, cdr_money tolerance,
                                 unsigned flags)
{
    int compare = s != CDR_RS_PARTIAL_REST && s != CDR_RS_UNRATED;
    return (compare && (diff > tolerance || diff < -tolerance)) || s == CDR_RS_DUPLICATE ||
           flags != 0;
}

/* The finding's category and its explanation in plain words (x, xn bytes):
 * the diagnosis of an overcharge beyond the tolerance, leakage for an
 * undercharge beyond it, duplicate for a duplicate billed within it, or
 * CDR_CAT_NONE with the flags' words. */
cdr_category rc_compare(const rc_record *r, cdr_money tolerance, unsigned flags, char *x,
                        size_t xn);

/* ---- the diagnosis of an overcharge (reconcile/diagnose.c) ---- */

/* A probe: whether its category explains the overcharge of r; if so, the
 * explanation is written to x (xn bytes). */
typedef int (*rc_probe_fn)(const rc_record *r, char *x, size_t xn);
typedef struct rc_probe {
    cdr_category category;
    rc_probe_fn probe;
} rc_probe;
/* The probes in CONTRACT.md's precedence order (the first that applies
 * wins), one per overcharge category; the last, rate_mismatch, always
 * applies. */
extern const rc_probe rc_probes[];
extern const size_t rc_n_probes;

/* The category of an overcharge: the first probe that applies. */
cdr_category rc_diagnose(const rc_record *r, char *x, size_t xn);

/* ---- candidates and policy (reconcile/candidate.c, reconcile/policy.c) ---- */

/* The refund candidate of a subscriber-month with an overcharge: records
 * with an overcharge, their sum, the categories (bits) and the records'
 * flags; the refund is twice the overcharge; tier, special customer and
 * policy from the number's earlier refunds in the tariff and the
 * subscriber's join date (sub may be NULL). */
void rc_candidate(const cdr_tariff *t, cdr_str msisdn, uint64_t msisdn_hash, cdr_month month,
                  const cdr_subscriber *sub, uint32_t records, cdr_money over, uint32_t cats,
                  unsigned flags, cdr_candidate *cd);

/* The policy of a candidate whose month, refund, categories and flags are
 * set: special customer, approval tier, refund-first or verify-first and
 * the reason (cdr_policy_reason_text). refs: the number's earlier refunds
 * (any order; those from after the bill month are not counted as earlier);
 * join_date: the subscriber's, -1 if unknown. */
void rc_policy(cdr_candidate *cd, const cdr_prior_refund *refs, size_t nref,
               cdr_time join_date);

#endif
