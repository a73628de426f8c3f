/*
 * reconcile/ on records made by hand (issue 15): each probe of the diagnosis
 * table, their precedence (CONTRACT.md "Findings and refunds"), the
 * comparison with its tolerance, and the refund policy (DOMAIN.md, decided
 * in docs/rating.md "Candidates"): approval tiers at their limits, the
 * special-customer window's edges, each refund-first / verify-first reason.
 *
 * Tariff: testdata/rate-hand. 2026-10-07 is a Wednesday: peak 07:00-23:00,
 * offpeak 23:00-07:00. Every expected amount and text is worked out beside
 * it from the tariff and the rules, not taken from a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "reconcile_int.h"
#include "testtariff.h"

static const cdr_money Yu = CDR_MICRO;

static cdr_money Y(const char *s)
{
    cdr_money v;
    assert_int_equal(cdr_money_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

static cdr_time at(const char *s)
{
    cdr_time v;
    assert_int_equal(cdr_time_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

static cdr_time day(const char *s)
{
    cdr_time v;
    assert_int_equal(cdr_date_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

static cdr_month month(const char *s)
{
    cdr_month m;
    assert_int_equal(cdr_month_parse(s, strlen(s), &m), CDR_OK);
    return m;
}

static int32_t plan(const char *name)
{
    for (size_t i = 0; i < T->n_plans; i++)
        if (!strcmp(T->plans[i].name, name))
            return (int32_t)i;
    fail_msg("no plan %s", name);
    return -1;
}

static cdr_str S(const char *s)
{
    return (cdr_str){s, strlen(s)};
}

/* A record made by hand and rated (status RATED, one part): the rating's
 * input and output live beside it. */
typedef struct hand {
    rc_record r;
    cdr_rate_in in;
    cdr_rate_out ro;
    char x[768];
} hand;

static void rated(hand *h, const char *plan_name, cdr_service svc, const char *peer,
                  const char *start, int64_t usage, int64_t pool_avail, const char *billed)
{
    memset(h, 0, sizeof *h);
    cdr_rate_in_init(&h->in);
    h->in.tariff = T;
    h->in.plan = plan(plan_name);
    h->in.service = svc;
    h->in.direction = CDR_DIR_MO;
    h->in.peer = S(peer);
    h->in.start = at(start);
    h->in.usage = usage;
    h->in.pool_avail = pool_avail;
    assert_int_equal(cdr_rate_usage(&h->in, &h->ro), CDR_OK);
    assert_null(h->ro.unrated);
    h->r = (rc_record){.t = T, .status = CDR_RS_RATED, .service = svc, .peer = S(peer),
                       .record_id = S("r2"), .dup_of = S(""), .amount = usage, .usage = usage,
                       .parts = 1, .sep_billable = -1, .sep_whole = -1, .in = &h->in,
                       .ro = &h->ro, .billed = Y(billed), .rebuilt = h->ro.charge};
}

/* A record that rate/ did not rate on its own (duplicate, free number,
 * no subscription, segment over): rebuilt 0, no rating. */
static void unrated_status(hand *h, cdr_rec_status st, cdr_service svc, const char *peer,
                           int64_t amount, const char *billed)
{
    memset(h, 0, sizeof *h);
    cdr_rate_in_init(&h->in);
    h->r = (rc_record){.t = T, .status = st, .service = svc, .peer = S(peer),
                       .record_id = S("r2"), .dup_of = S(""), .amount = amount, .usage = amount,
                       .parts = 1, .sep_billable = -1, .sep_whole = -1, .in = &h->in,
                       .ro = &h->ro, .billed = Y(billed), .rebuilt = 0};
}

/* The row of the table for category c. */
static rc_probe_fn probe(cdr_category c)
{
    for (size_t i = 0; i < rc_n_probes; i++)
        if (rc_probes[i].category == c)
            return rc_probes[i].probe;
    fail_msg("no probe for %d", (int)c);
    return NULL;
}

static int applies(cdr_category c, hand *h)
{
    h->x[0] = '\0';
    return probe(c)(&h->r, h->x, sizeof h->x);
}

#define DIAG(h, cat, text)                                                                    \
    do {                                                                                      \
        assert_int_equal(rc_diagnose(&(h)->r, (h)->x, sizeof (h)->x), (cat));                 \
        assert_string_equal((h)->x, (text));                                                  \
    } while (0)

/* ---- the table ---- */

static void test_table_order(void **st)
{
    (void)st;
    /* CONTRACT.md: "the first that applies in this order wins: duplicate,
     * free_number, zero_duration, partial_rounding, vas_no_subscription,
     * data_no_usage, bundle_not_applied, discount_not_applied, wrong_band,
     * sms_segments, data_rounding, rate_mismatch" */
    static const char *const contract[] = {
        "duplicate",          "free_number",          "zero_duration", "partial_rounding",
        "vas_no_subscription", "data_no_usage",       "bundle_not_applied",
        "discount_not_applied", "wrong_band",          "sms_segments",  "data_rounding",
        "rate_mismatch",
    };
    assert_int_equal(rc_n_probes, sizeof contract / sizeof *contract);
    for (size_t i = 0; i < rc_n_probes; i++) {
        assert_string_equal(cdr_category_name(rc_probes[i].category), contract[i]);
        assert_non_null(rc_probes[i].probe);
    }
}

/* ---- each probe: where it applies and where it does not ---- */

static void test_probe_duplicate(void **st)
{
    (void)st;
    hand h;
    unrated_status(&h, CDR_RS_DUPLICATE, CDR_SVC_VOICE, "13811112222", 60, "0.19");
    h.r.dup_of = S("r1");
    DIAG(&h, CDR_CAT_DUPLICATE, "duplicate of record r1 (same usage under a new record_id); a "
                                "duplicate is not charged: billed 0.19, overcharged 0.19");
    h.r.dup_of = S("r2"); /* the record_id again */
    DIAG(&h, CDR_CAT_DUPLICATE, "duplicate of record r2 (same record_id); a duplicate is not "
                                "charged: billed 0.19, overcharged 0.19");
    /* an ordinary record is no duplicate: 60 s peak on p60 = 0.19 */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.25");
    assert_false(applies(CDR_CAT_DUPLICATE, &h));
}

static void test_probe_free_number(void **st)
{
    (void)st;
    hand h;
    unrated_status(&h, CDR_RS_FREE, CDR_SVC_VOICE, "110", 60, "0.19");
    DIAG(&h, CDR_CAT_FREE_NUMBER,
         "call to free number 110 (police) charged 0.19; free numbers are not charged");
    unrated_status(&h, CDR_RS_FREE, CDR_SVC_SMS, "10086", 20, "0.10");
    DIAG(&h, CDR_CAT_FREE_NUMBER, "SMS to free number 10086 (customer service) charged 0.10; "
                                  "free numbers are not charged");
    /* the probe trusts rate/'s status: a rated record to 110 is not one */
    rated(&h, "p60", CDR_SVC_VOICE, "110", "2026-10-07 10:00:00", 60, -1, "0.25");
    assert_false(applies(CDR_CAT_FREE_NUMBER, &h));
}

static void test_probe_zero_duration(void **st)
{
    (void)st;
    hand h;
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 0, -1, "0.19");
    assert_int_equal(h.r.rebuilt, 0); /* 0 s: billable 0 */
    DIAG(&h, CDR_CAT_ZERO_DURATION, "0-second call charged 0.19; a call of 0 s is not charged");
    /* 1 s rounds up to a minute: 0.19, billed 0.38: not a zero-duration call */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 1, -1, "0.38");
    assert_int_equal(h.r.rebuilt, Y("0.19"));
    assert_false(applies(CDR_CAT_ZERO_DURATION, &h));
}

static void test_probe_partial_rounding(void **st)
{
    (void)st;
    hand h;
    /* p60 (60 s increment): three parts of 20 s merged are 60 s = 0.19; each
     * rounded up alone to 60 s, 180 s = 3 x 0.19 = 0.57 */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.57");
    h.r.status = CDR_RS_PARTIAL_FIRST;
    h.r.parts = 3;
    h.r.sep_billable = 180;
    h.r.sep_whole = 180;
    assert_int_equal(h.r.rebuilt, Y("0.19"));
    DIAG(&h, CDR_CAT_PARTIAL_ROUNDING,
         "3 partial records of one call rounded up separately (180 billable units instead of 60 "
         "merged): billed 0.57, should be 0.19");
    /* p6 (6 s increment): parts of 7 s and 8 s merged are 15 s -> 18 s x
     * 0.19/60 = 0.057 -> 0.06; each to the increment 12 + 12 = 24 s -> 0.076
     * -> 0.08; each to a whole minute 120 s -> 0.38. Billed 0.38: the second. */
    rated(&h, "p6", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 15, -1, "0.38");
    h.r.status = CDR_RS_PARTIAL_FIRST;
    h.r.parts = 2;
    h.r.sep_billable = 24;
    h.r.sep_whole = 120;
    assert_int_equal(h.r.rebuilt, Y("0.06"));
    DIAG(&h, CDR_CAT_PARTIAL_ROUNDING,
         "2 partial records of one call each rounded up to a whole minute (120 billable seconds "
         "instead of 18 merged): billed 0.38, should be 0.06");
    h.r.billed = Y("0.08"); /* the increment rule's amount */
    assert_true(applies(CDR_CAT_PARTIAL_ROUNDING, &h));
    h.r.billed = Y("0.25"); /* neither rule gives 0.25 */
    assert_false(applies(CDR_CAT_PARTIAL_ROUNDING, &h));
    h.r.billed = Y("0.38");
    h.r.parts = 1; /* one part: nothing to round separately */
    assert_false(applies(CDR_CAT_PARTIAL_ROUNDING, &h));
}

static void test_probe_vas_no_subscription(void **st)
{
    (void)st;
    hand h;
    unrated_status(&h, CDR_RS_NO_SUBSCRIPTION, CDR_SVC_VAS, "SP100", -1, "5.00");
    DIAG(&h, CDR_CAT_VAS_NO_SUBSCRIPTION, "information fee for SP service SP100 charged 5.00 "
                                          "without a valid subscription at that time");
    /* subscribed (10-01..10-15): rated at 5.00, billed 6.00 is something else */
    rated(&h, "p60", CDR_SVC_VAS, "SP100", "2026-10-10 10:00:00", -1, -1, "6.00");
    assert_int_equal(h.r.rebuilt, Y("5.00"));
    assert_false(applies(CDR_CAT_VAS_NO_SUBSCRIPTION, &h));
}

static void test_probe_data_no_usage(void **st)
{
    (void)st;
    hand h;
    rated(&h, "p60", CDR_SVC_DATA, "cmnet", "2026-10-07 10:00:00", 0, -1, "0.05");
    DIAG(&h, CDR_CAT_DATA_NO_USAGE, "data record of 0 bytes charged 0.05; no usage, no charge");
    rated(&h, "p60", CDR_SVC_DATA, "cmnet", "2026-10-07 10:00:00", 1, -1, "0.05");
    assert_false(applies(CDR_CAT_DATA_NO_USAGE, &h));
}

static void test_probe_bundle_not_applied(void **st)
{
    (void)st;
    hand h;
    /* pb: 2 minutes of vmin left; a 60 s call is covered whole: 0 */
    rated(&h, "pb", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, 120, "0.15");
    assert_int_equal(h.ro.covered, 60);
    DIAG(&h, CDR_CAT_BUNDLE_NOT_APPLIED, "bundle pool vmin still covered 60 of 60 billable units; "
                                         "billed 0.15, should be 0.00");
    /* 30 s left: a 90 s call (120 s billable) is charged 90 s = 1.5 x 0.15 =
     * 0.225 -> 0.23 */
    rated(&h, "pb", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 90, 30, "0.30");
    assert_int_equal(h.r.rebuilt, Y("0.23"));
    DIAG(&h, CDR_CAT_BUNDLE_NOT_APPLIED, "bundle pool vmin still covered 30 of 120 billable "
                                         "units; billed 0.30, should be 0.23");
    /* the allowance used up: nothing covered */
    rated(&h, "pb", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, 0, "0.30");
    assert_false(applies(CDR_CAT_BUNDLE_NOT_APPLIED, &h));
}

static void test_probe_discount_not_applied(void **st)
{
    (void)st;
    hand h;
    /* pd: 0.15 a minute less 20 %: 60 s = 0.12; billed the undiscounted 0.15 */
    rated(&h, "pd", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.15");
    assert_int_equal(h.r.rebuilt, Y("0.12"));
    DIAG(&h, CDR_CAT_DISCOUNT_NOT_APPLIED, "plan discount of 20% not applied: billed 0.15 is the "
                                           "undiscounted charge, should be 0.12");
    h.r.billed = Y("0.14"); /* not the undiscounted charge */
    assert_false(applies(CDR_CAT_DISCOUNT_NOT_APPLIED, &h));
    /* p60 has no discount */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.25");
    assert_false(applies(CDR_CAT_DISCOUNT_NOT_APPLIED, &h));
}

static void test_probe_wrong_band(void **st)
{
    (void)st;
    hand h;
    /* 23:30 is offpeak: 120 s = 2 x 0.10 = 0.20; billed at peak 2 x 0.19 */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 23:30:00", 120, -1, "0.38");
    assert_int_equal(h.r.rebuilt, Y("0.20"));
    DIAG(&h, CDR_CAT_WRONG_BAND, "charged at the peak band's price although the record starts "
                                 "in the offpeak band: billed 0.38, should be 0.20");
    /* CONTRACT.md's split example: 30 s at 22:59:50 on a split plan is
     * 10 s x 0.19/60 + 50 s x 0.10/60 = 0.115 -> 0.12; whole at peak 0.19 */
    rated(&h, "psplit", CDR_SVC_VOICE, "13811112222", "2026-10-07 22:59:50", 30, -1, "0.19");
    assert_int_equal(h.r.rebuilt, Y("0.12"));
    DIAG(&h, CDR_CAT_WRONG_BAND, "the whole call was charged at the peak band's price; the plan "
                                 "splits calls at band boundaries: billed 0.19, should be 0.12");
    /* 0.25 is no band's price for 60 s */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.25");
    assert_false(applies(CDR_CAT_WRONG_BAND, &h));
}

static void test_probe_sms_segments(void **st)
{
    (void)st;
    hand h;
    /* 140 characters on a 70/70 plan: 2 segments = 0.20; billed 3 (the
     * 67-character rule) = 0.30 */
    rated(&h, "p60", CDR_SVC_SMS, "13811112222", "2026-10-07 10:00:00", 2, -1, "0.30");
    h.r.amount = 140;
    assert_int_equal(h.r.rebuilt, Y("0.20"));
    DIAG(&h, CDR_CAT_SMS_SEGMENTS, "billed 3 segments, the message length of 140 characters gives "
                                   "2: billed 0.30, should be 0.20");
    h.r.billed = Y("0.25"); /* no whole number of segments costs 0.25 */
    assert_false(applies(CDR_CAT_SMS_SEGMENTS, &h));
    /* per-segment records: part 3 of a 140-character message (2 segments) */
    unrated_status(&h, CDR_RS_SEGMENT_OVER, CDR_SVC_SMS, "13811112222", 140, "0.10");
    h.r.sms_part = 3;
    DIAG(&h, CDR_CAT_SMS_SEGMENTS, "segment 3 of a long SMS of 140 characters, which has fewer "
                                   "segments; an overcounted segment is not charged: billed 0.10");
}

static void test_probe_data_rounding(void **st)
{
    (void)st;
    hand h;
    /* 1025 bytes = 2 KB (rounded up) x 0.01 = 0.02; billed a whole MB:
     * 1024 KB x 0.01 = 10.24 */
    rated(&h, "p60", CDR_SVC_DATA, "cmnet", "2026-10-07 10:00:00", 1025, -1, "10.24");
    assert_int_equal(h.r.rebuilt, Y("0.02"));
    DIAG(&h, CDR_CAT_DATA_ROUNDING,
         "billed 1024 KB, 1025 bytes round up to 2 KB: billed 10.24, should be 0.02");
    h.r.billed = Y("0.025"); /* between 2 and 3 KB: no whole KB count */
    assert_false(applies(CDR_CAT_DATA_ROUNDING, &h));
}

static void test_probe_rate_mismatch(void **st)
{
    (void)st;
    hand h;
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.25");
    DIAG(&h, CDR_CAT_RATE_MISMATCH, "billed 0.25, the tariff gives 0.19 (no known billing error "
                                    "reproduces the billed amount)");
}

/* ---- precedence: where two probes apply, the earlier category wins ---- */

static void test_precedence(void **st)
{
    (void)st;
    hand h;
    /* a duplicate 0-second call: duplicate before zero_duration */
    unrated_status(&h, CDR_RS_DUPLICATE, CDR_SVC_VOICE, "13811112222", 0, "0.19");
    h.r.dup_of = S("r1");
    assert_true(applies(CDR_CAT_ZERO_DURATION, &h));
    assert_int_equal(rc_diagnose(&h.r, h.x, sizeof h.x), CDR_CAT_DUPLICATE);
    /* a 0-second call to a free number: free_number before zero_duration */
    unrated_status(&h, CDR_RS_FREE, CDR_SVC_VOICE, "110", 0, "0.19");
    assert_true(applies(CDR_CAT_ZERO_DURATION, &h));
    assert_int_equal(rc_diagnose(&h.r, h.x, sizeof h.x), CDR_CAT_FREE_NUMBER);
    /* a call of 0 s in two parts billed 0.38: each part rounded up to a
     * whole minute (2 x 60 s x 0.19/60) reproduces it, but zero_duration
     * comes before partial_rounding */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 0, -1, "0.38");
    h.r.status = CDR_RS_PARTIAL_FIRST;
    h.r.parts = 2;
    h.r.sep_billable = 0;
    h.r.sep_whole = 120;
    assert_true(applies(CDR_CAT_PARTIAL_ROUNDING, &h));
    assert_int_equal(rc_diagnose(&h.r, h.x, sizeof h.x), CDR_CAT_ZERO_DURATION);
    /* pb: 140 characters (2 segments) with 3 segments of sseg left: covered,
     * 0. Billed 0.30: bundle_not_applied; sms_segments would also find a
     * count (6 segments, 3 of them over the allowance: 3 x 0.10 = 0.30) */
    rated(&h, "pb", CDR_SVC_SMS, "13811112222", "2026-10-07 10:00:00", 2, 3, "0.30");
    h.r.amount = 140;
    assert_int_equal(h.r.rebuilt, 0);
    assert_true(applies(CDR_CAT_SMS_SEGMENTS, &h));
    assert_string_equal(h.x, "billed 6 segments, the message length of 140 characters gives 2: "
                             "billed 0.30, should be 0.00");
    assert_int_equal(rc_diagnose(&h.r, h.x, sizeof h.x), CDR_CAT_BUNDLE_NOT_APPLIED);
    /* every record ends somewhere: rate_mismatch applies to all */
    unrated_status(&h, CDR_RS_FREE, CDR_SVC_VOICE, "110", 0, "0.19");
    assert_true(applies(CDR_CAT_RATE_MISMATCH, &h));
}

/* ---- the comparison ---- */

static void test_compare(void **st)
{
    (void)st;
    hand h;
    cdr_money tol = Y("0.01");
    /* 60 s peak = 0.19: billed 0.20 is within a tolerance of 0.01 */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.20");
    assert_false(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    assert_int_equal(rc_compare(&h.r, tol, 0, h.x, sizeof h.x), CDR_CAT_NONE);
    /* one micro-yuan more is an overcharge: diagnosed */
    h.r.billed = Y("0.200001");
    assert_true(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    assert_int_equal(rc_compare(&h.r, tol, 0, h.x, sizeof h.x), CDR_CAT_RATE_MISMATCH);
    /* undercharged by more than the tolerance: leakage */
    h.r.billed = Y("0.10");
    assert_true(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    assert_int_equal(rc_compare(&h.r, tol, 0, h.x, sizeof h.x), CDR_CAT_LEAKAGE);
    assert_string_equal(h.x, "billed 0.10, the tariff gives 0.19: undercharged by 0.09 "
                             "(revenue leakage, not refunded)");
    h.r.billed = Y("0.18"); /* 0.01 under: within */
    assert_false(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    /* a later part is compared on its first part; an unrated record not at all */
    h.r.billed = Y("0.50");
    h.r.status = CDR_RS_PARTIAL_REST;
    assert_false(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    h.r.status = CDR_RS_UNRATED;
    assert_false(rc_has_finding(h.r.status, h.r.billed - h.r.rebuilt, tol, 0));
    /* a duplicate billed 0 is a finding at no difference */
    unrated_status(&h, CDR_RS_DUPLICATE, CDR_SVC_VOICE, "13811112222", 60, "0");
    h.r.dup_of = S("r1");
    assert_true(rc_has_finding(h.r.status, 0, 0, 0));
    assert_int_equal(rc_compare(&h.r, 0, 0, h.x, sizeof h.x), CDR_CAT_DUPLICATE);
    assert_string_equal(h.x, "duplicate of record r1, billed 0: correct");
    /* flags alone: no category, the flags in words */
    rated(&h, "p60", CDR_SVC_VOICE, "13811112222", "2026-10-07 10:00:00", 60, -1, "0.19");
    unsigned fl = CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG;
    assert_true(rc_has_finding(h.r.status, 0, 0, fl));
    assert_int_equal(rc_compare(&h.r, 0, fl, h.x, sizeof h.x), CDR_CAT_NONE);
    assert_string_equal(h.x, "call starts before the previous call ended; call longer than the "
                             "plausible maximum");
    assert_int_equal(rc_compare(&h.r, 0, CDR_FLAG_OVERLONG, h.x, sizeof h.x), CDR_CAT_NONE);
    assert_string_equal(h.x, "call longer than the plausible maximum");
}

/* ---- the policy ---- */

static void test_tiers_at_limits(void **st)
{
    (void)st;
    /* DOMAIN.md "Approval authority": tier 0 up to 20 yuan for a first
     * refund; company-liable 200 / 500 / 1000, not company-liable 100 /
     * 300 / 500; limits inclusive (docs/rating.md): the limit itself is the
     * lower tier, one micro-yuan more the next */
    static const struct {
        int liable;
        cdr_money limit;
        int tier;
    } lim[] = {
        {1, 200, 1}, {1, 500, 2}, {1, 1000, 3}, {0, 100, 1}, {0, 300, 2}, {0, 500, 3},
    };
    for (size_t i = 0; i < sizeof lim / sizeof *lim; i++) {
        assert_int_equal(cdr_approval_tier(lim[i].limit * Yu, lim[i].liable, 0), lim[i].tier);
        assert_int_equal(cdr_approval_tier(lim[i].limit * Yu + 1, lim[i].liable, 0),
                         lim[i].tier + 1);
    }
    for (int liable = 0; liable <= 1; liable++) {
        assert_int_equal(cdr_approval_tier(20 * Yu, liable, 1), 0);
        assert_int_equal(cdr_approval_tier(20 * Yu + 1, liable, 1), 1);
        assert_int_equal(cdr_approval_tier(20 * Yu, liable, 0), 1); /* not the first refund */
        assert_int_equal(cdr_approval_tier(1, liable, 1), 0);
    }
    assert_int_equal(cdr_approval_tier(1000000 * Yu, 1, 1), 4);
}

static void test_special_window(void **st)
{
    (void)st;
    cdr_month m = month("2026-10");
    /* the window is the bill month and the three before: 2026-07..2026-10 */
    cdr_prior_refund r[3] = {{"", day("2026-07-01"), 1 * Yu, 0, 0, 0},
                             {"", day("2026-07-15"), 1 * Yu, 0, 0, 0},
                             {"", day("2026-07-31"), 1 * Yu, 0, 0, 0}};
    assert_true(cdr_special_customer(r, 3, m)); /* 3 in July, July's first day included */
    r[0].date = day("2026-06-30");              /* the day before the window */
    assert_false(cdr_special_customer(r, 3, m));
    r[0].date = day("2026-10-31"); /* 3 refunds but in two months */
    assert_false(cdr_special_customer(r, 3, m));
    /* after the bill month: not counted */
    cdr_prior_refund late[3] = {{"", day("2026-11-01"), 1 * Yu, 0, 0, 0},
                                {"", day("2026-11-02"), 1 * Yu, 0, 0, 0},
                                {"", day("2026-11-03"), 200 * Yu, 0, 0, 0}};
    assert_false(cdr_special_customer(late, 3, m));
    /* 100 yuan over the window: 50 in July + 50 in October */
    cdr_prior_refund sum[2] = {{"", day("2026-07-01"), 50 * Yu, 0, 0, 0},
                               {"", day("2026-10-31"), 50 * Yu, 0, 0, 0}};
    assert_true(cdr_special_customer(sum, 2, m));
    sum[1].amount = 50 * Yu - 1; /* 99.999999 */
    assert_false(cdr_special_customer(sum, 2, m));
    sum[1].amount = 50 * Yu;
    sum[0].company_liable = 1; /* company-liable refunds are not counted */
    assert_false(cdr_special_customer(sum, 2, m));
    sum[0].company_liable = 0;
    sum[0].border_roaming = 1; /* nor border-roaming ones */
    assert_false(cdr_special_customer(sum, 2, m));
}

/* A candidate of 2026-10 with this refund, categories and flags, decided
 * by rc_policy. */
static cdr_candidate cand(cdr_money refund, uint32_t cats, unsigned flags,
                          const cdr_prior_refund *refs, size_t n, const char *joined)
{
    cdr_candidate cd;
    memset(&cd, 0, sizeof cd);
    cd.month = month("2026-10");
    cd.refund = refund;
    cd.overcharge = refund / 2;
    cd.categories = cats;
    cd.flags = flags;
    rc_policy(&cd, refs, n, joined ? day(joined) : -1);
    assert_string_equal(cd.policy_reason, cdr_policy_reason_text(cd.reason));
    return cd;
}

static void test_policy_reasons(void **st)
{
    (void)st;
    const uint32_t VAS = 1u << CDR_CAT_VAS_NO_SUBSCRIPTION, BAND = 1u << CDR_CAT_WRONG_BAND;
    cdr_candidate cd;
    /* 4: no refund at all, joined half a year ago: first dispute of the year */
    cd = cand(2 * Yu, BAND, 0, NULL, 0, "2026-04-10");
    assert_int_equal(cd.policy, CDR_POLICY_REFUND_FIRST);
    assert_int_equal(cd.reason, 4);
    assert_int_equal(cd.tier, 0); /* 2 yuan, first refund */
    assert_false(cd.special);
    assert_string_equal(cd.policy_reason,
                        "first fee dispute this year, no refund in the last three months: "
                        "refund first");
    /* 5: a refund earlier this year (March) and tenure under a year */
    cdr_prior_refund march = {"", day("2026-03-05"), 5 * Yu, 0, 0, 0};
    cd = cand(2 * Yu, BAND, 0, &march, 1, "2026-04-10");
    assert_int_equal(cd.policy, CDR_POLICY_VERIFY_FIRST);
    assert_int_equal(cd.reason, 5);
    assert_int_equal(cd.tier, 1); /* not the first refund */
    /* 3: the same refund, but joined in 2025-10: a year by 2026-10 */
    cd = cand(2 * Yu, BAND, 0, &march, 1, "2025-10-31");
    assert_int_equal(cd.policy, CDR_POLICY_REFUND_FIRST);
    assert_int_equal(cd.reason, 3);
    cd = cand(2 * Yu, BAND, 0, &march, 1, "2025-11-01"); /* 11 months: not yet */
    assert_int_equal(cd.reason, 5);
    /* 2: an SP fee dispute is refund-first whatever the history */
    cd = cand(2 * Yu, VAS | BAND, 0, &march, 1, "2026-04-10");
    assert_int_equal(cd.policy, CDR_POLICY_REFUND_FIRST);
    assert_int_equal(cd.reason, 2);
    /* 1: a flagged record makes it verify-first, before the SP rule */
    cd = cand(2 * Yu, VAS, CDR_FLAG_OVERLAP, NULL, 0, "2020-01-01");
    assert_int_equal(cd.policy, CDR_POLICY_VERIFY_FIRST);
    assert_int_equal(cd.reason, 1);
    cd = cand(2 * Yu, VAS, CDR_FLAG_OVERLONG, NULL, 0, "2020-01-01");
    assert_int_equal(cd.reason, 1);
    /* 0: a special customer (3 refunds in August) before everything */
    cdr_prior_refund aug[3] = {{"", day("2026-08-03"), 1 * Yu, 0, 0, 0},
                               {"", day("2026-08-20"), 1 * Yu, 0, 0, 0},
                               {"", day("2026-08-31"), 1 * Yu, 0, 0, 0}};
    cd = cand(2 * Yu, VAS, CDR_FLAG_OVERLAP, aug, 3, "2020-01-01");
    assert_int_equal(cd.policy, CDR_POLICY_VERIFY_FIRST);
    assert_int_equal(cd.reason, 0);
    assert_true(cd.special);
    /* "the last three months" reach back over the new year: for 2026-02 a
     * refund in 2025-11 is in them (verify-first), one in 2025-10 is not
     * (and is last year's: refund-first) */
    cdr_candidate c2;
    memset(&c2, 0, sizeof c2);
    c2.month = month("2026-02");
    c2.refund = 2 * Yu;
    cdr_prior_refund nov = {"", day("2025-11-30"), 1 * Yu, 0, 0, 0};
    rc_policy(&c2, &nov, 1, -1);
    assert_int_equal(c2.reason, 5);
    nov.date = day("2025-10-31");
    rc_policy(&c2, &nov, 1, -1);
    assert_int_equal(c2.reason, 4);
    assert_int_equal(c2.tier, 1); /* an earlier refund all the same: not tier 0 */
}

static void test_policy_earlier_refunds(void **st)
{
    (void)st;
    /* docs/rating.md: an "earlier refund" is any row dated before the end of
     * the bill month, company-liable and border-roaming ones included */
    cdr_prior_refund r = {"", day("2026-11-01"), 1 * Yu, 0, 0, 0};
    cdr_candidate cd = cand(20 * Yu, 0, 0, &r, 1, NULL); /* after the month: first refund */
    assert_int_equal(cd.tier, 0);
    assert_int_equal(cd.reason, 4);
    r.date = day("2026-10-31"); /* the month's last day: earlier */
    cd = cand(20 * Yu, 0, 0, &r, 1, NULL);
    assert_int_equal(cd.tier, 1);
    assert_int_equal(cd.reason, 5);
    r.company_liable = 1;
    r.border_roaming = 1;
    cd = cand(20 * Yu, 0, 0, &r, 1, NULL);
    assert_int_equal(cd.tier, 1);
    assert_int_equal(cd.reason, 5);
    assert_false(cd.special);
    /* tier from the refund (2 x overcharge): 200.000001 yuan is tier 2 */
    cd = cand(200 * Yu + 1, 0, 0, &r, 1, NULL);
    assert_int_equal(cd.tier, 2);
}

static void test_candidate(void **st)
{
    (void)st;
    /* 13900000001 joined 2020-01-01 (subscribers.csv), no refunds.csv row */
    const cdr_subscriber *sub =
        cdr_tariff_subscriber(T, "13900000001", 11, at("2026-10-07 10:00:00"));
    assert_non_null(sub);
    cdr_candidate cd;
    rc_candidate(T, S("13900000001"), 42, month("2026-10"), sub, 2, Y("0.37"),
                 1u << CDR_CAT_WRONG_BAND, 0, &cd);
    assert_int_equal(cd.records, 2);
    assert_int_equal(cd.overcharge, Y("0.37"));
    assert_int_equal(cd.refund, Y("0.74")); /* double refund */
    assert_int_equal(cd.tier, 0);           /* 0.74 yuan, first refund */
    assert_int_equal(cd.policy, CDR_POLICY_REFUND_FIRST);
    assert_int_equal(cd.reason, 3); /* a customer since 2020 */
    assert_int_equal(cd.msisdn_hash, 42);
    assert_memory_equal(cd.msisdn.p, "13900000001", 11);
    /* without a subscriber (no join date): first dispute of the year */
    rc_candidate(T, S("13900000001"), 42, month("2026-10"), NULL, 1, Y("0.10"), 0, 0, &cd);
    assert_int_equal(cd.reason, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_order),
        cmocka_unit_test(test_probe_duplicate),
        cmocka_unit_test(test_probe_free_number),
        cmocka_unit_test(test_probe_zero_duration),
        cmocka_unit_test(test_probe_partial_rounding),
        cmocka_unit_test(test_probe_vas_no_subscription),
        cmocka_unit_test(test_probe_data_no_usage),
        cmocka_unit_test(test_probe_bundle_not_applied),
        cmocka_unit_test(test_probe_discount_not_applied),
        cmocka_unit_test(test_probe_wrong_band),
        cmocka_unit_test(test_probe_sms_segments),
        cmocka_unit_test(test_probe_data_rounding),
        cmocka_unit_test(test_probe_rate_mismatch),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_tiers_at_limits),
        cmocka_unit_test(test_special_window),
        cmocka_unit_test(test_policy_reasons),
        cmocka_unit_test(test_policy_earlier_refunds),
        cmocka_unit_test(test_candidate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
