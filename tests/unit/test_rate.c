/*
 * Hand-computed rating cases (issue 3), against testdata/rate-hand.
 * Every expected amount has its arithmetic written beside it.
 * 2026-10-07 is a Wednesday (weekday): peak 07:00-23:00 at 0.19/min,
 * offpeak 23:00-07:00 at 0.10/min; weekends are offpeak all day.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cdrecon/engine.h"
#include "testrnd.h"
#include "testtariff.h"

/* ---- a tiny row builder ---- */
typedef struct rowspec {
    const char *rid, *msisdn, *svc, *dir, *peer, *start;
    int64_t amount; /* duration / bytes / chars */
    const char *billed;
    const char *call_id;
    int64_t seq;
    const char *sms_ref;
    int part, parts;
} rowspec;

#define MAXR 4096
typedef struct result {
    char rid[32];
    char msisdn[24]; /* (r's strings point into the engine's memory: gone after the run) */
    cdr_rated r;
    char cat[32];
    char expl[256];
    char dup_of[32];
} result;
static result RES[MAXR];
static int NRES;
static cdr_candidate CANDS[32];
static char CAND_MSISDN[32][16];
static int NCANDS;

static int on_rec(const cdr_rated *r, void *u)
{
    (void)u;
    result *x = &RES[NRES++];
    snprintf(x->rid, sizeof x->rid, "%.*s", (int)r->row.record_id.n, r->row.record_id.p);
    snprintf(x->msisdn, sizeof x->msisdn, "%.*s", (int)r->row.msisdn.n, r->row.msisdn.p);
    x->r = *r;
    snprintf(x->cat, sizeof x->cat, "%s", r->has_finding ? cdr_category_name(r->finding.category) : "-");
    snprintf(x->expl, sizeof x->expl, "%s", r->has_finding ? r->finding.explanation : "");
    snprintf(x->dup_of, sizeof x->dup_of, "%.*s", (int)r->dup_of.n, r->dup_of.p ? r->dup_of.p : "");
    return 0;
}

static int on_cand(const cdr_candidate *c, void *u)
{
    (void)u;
    snprintf(CAND_MSISDN[NCANDS], 16, "%.*s", (int)c->msisdn.n, c->msisdn.p);
    CANDS[NCANDS++] = *c;
    return 0;
}

static int THREADS = 2;

static void run_rows(const rowspec *rs, size_t n, size_t mem, cdr_engine_totals *tot)
{
    cdr_engine_opts o;
    cdr_engine_opts_init(&o);
    o.threads = THREADS;
    if (mem)
        o.mem_budget = mem;
    cdr_engine *e;
    assert_int_equal(cdr_engine_new(T, &o, &e), CDR_OK);
    assert_int_equal(cdr_engine_set_file(e, 0, "hand.csv"), CDR_OK);
    for (size_t i = 0; i < n; i++) {
        const rowspec *s = &rs[i];
        cdr_row r;
        memset(&r, 0, sizeof r);
        r.record_id = (cdr_str){s->rid, strlen(s->rid)};
        r.msisdn = (cdr_str){s->msisdn, strlen(s->msisdn)};
        assert_int_equal(cdr_service_parse(s->svc, strlen(s->svc), &r.service), CDR_OK);
        assert_int_equal(cdr_direction_parse(s->dir, strlen(s->dir), &r.direction), CDR_OK);
        r.peer = (cdr_str){s->peer, strlen(s->peer)};
        assert_int_equal(cdr_time_parse(s->start, strlen(s->start), &r.start), CDR_OK);
        r.duration_s = r.service == CDR_SVC_VOICE ? s->amount : -1;
        r.bytes = r.service == CDR_SVC_DATA ? s->amount : -1;
        r.sms_chars = r.service == CDR_SVC_SMS ? s->amount : -1;
        assert_int_equal(cdr_money_parse(s->billed, strlen(s->billed), &r.billed), CDR_OK);
        r.call_id = (cdr_str){s->call_id ? s->call_id : "", s->call_id ? strlen(s->call_id) : 0};
        r.partial_seq = s->seq;
        r.sms_ref = (cdr_str){s->sms_ref ? s->sms_ref : "", s->sms_ref ? strlen(s->sms_ref) : 0};
        r.sms_part = s->part;
        r.sms_parts = s->parts;
        r.line = i + 2;
        r.offset = i * 100;
        assert_int_equal(cdr_engine_add(e, &r), CDR_OK);
    }
    NRES = 0;
    NCANDS = 0;
    cdr_engine_sink sink = {.on_record = on_rec, .on_candidate = on_cand};
    cdr_engine_totals t;
    assert_int_equal(cdr_engine_finish(e, &sink, tot ? tot : &t), CDR_OK);
    cdr_engine_free(e);
}

static const result *R(const char *rid)
{
    for (int i = 0; i < NRES; i++)
        if (!strcmp(RES[i].rid, rid))
            return &RES[i];
    fail_msg("no result for %s", rid);
    return NULL;
}

static cdr_money Y(const char *s)
{
    cdr_money v;
    assert_int_equal(cdr_money_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

#define REBUILT(rid, yuan) assert_int_equal(R(rid)->r.rebuilt, Y(yuan))

#define V(rid, msisdn, start, dur, billed) {rid, msisdn, "voice", "mo", "13811112222", start, dur, billed, NULL, 0, NULL, 0, 0}

static void test_voice_increments(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* p60: 60 s increment, peak 0.19/60 s */
        V("a0", "13900000001", "2026-10-07 10:00:00", 0, "0"),     /* 0 s -> 0 */
        V("a1", "13900000001", "2026-10-07 10:01:00", 1, "0.19"),  /* 1 s -> 60 s -> 0.19 */
        V("a60", "13900000001", "2026-10-07 10:02:00", 60, "0.19"),/* 60 s -> 0.19 */
        V("a61", "13900000001", "2026-10-07 10:04:00", 61, "0.38"),/* 61 s -> 120 s -> 0.38 */
        /* p6: 6 s increment */
        V("b0", "13900000002", "2026-10-07 10:00:00", 0, "0"),     /* 0 */
        V("b1", "13900000002", "2026-10-07 10:01:00", 1, "0.02"),  /* 6 s x 0.19/60 = 0.019 -> 0.02 */
        V("b60", "13900000002", "2026-10-07 10:02:00", 60, "0.19"),/* 60 s -> 0.19 */
        V("b61", "13900000002", "2026-10-07 10:04:00", 61, "0.21"),/* 66 s x 0.19/60 = 0.209 -> 0.21 */
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("a0", "0");
    REBUILT("a1", "0.19");
    REBUILT("a60", "0.19");
    REBUILT("a61", "0.38");
    assert_int_equal(R("a61")->r.rating.billable, 120);
    REBUILT("b0", "0");
    REBUILT("b1", "0.02");
    assert_int_equal(R("b1")->r.rating.billable, 6);
    REBUILT("b60", "0.19");
    REBUILT("b61", "0.21");
    for (int i = 0; i < NRES; i++)
        assert_false(RES[i].r.has_finding); /* all billed right */
}

static void test_band_boundary(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* start rule: 30 s at 22:59:59 is rated whole at peak: 60 s x 0.19/60 = 0.19 */
        V("s1", "13900000001", "2026-10-07 22:59:59", 30, "0.19"),
        /* split: 60 billable s: 1 s peak + 59 s offpeak = (0.19 + 5.90)/60 = 0.1015 -> 0.10 */
        V("p1", "13900000003", "2026-10-07 22:59:59", 30, "0.10"),
        /* CONTRACT example: 22:59:50, 30 s: 10x0.19/60 + 50x0.10/60 = 0.115 -> 0.12 */
        V("p2", "13900000003", "2026-10-08 22:59:50", 30, "0.12"),
        /* split across 07:00 the other way: 06:59:30 + 120 s: 30 s offpeak + 90 s peak
           = (3.0 + 17.1)/60 = 0.335 -> 0.34 */
        V("p3", "13900000003", "2026-10-09 06:59:30", 120, "0.34"),
        /* Friday 22:59:00 -> weekend? no: 23:00 Friday is weekday offpeak; 60 s: 60 s peak
           until 23:00 = 0.19 */
        V("p4", "13900000003", "2026-10-09 22:59:00", 60, "0.19"),
        /* Friday 23:59:30 -> Saturday 00:00: offpeak both sides: 60 s x 0.10/60 = 0.10 */
        V("p5", "13900000003", "2026-10-09 23:59:30", 60, "0.10"),
        /* start rule, offpeak start: 0.10 */
        V("s2", "13900000001", "2026-10-07 06:59:59", 30, "0.10"),
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("s1", "0.19");
    REBUILT("p1", "0.10");
    assert_int_equal(R("p1")->r.rating.n_pieces, 2);
    assert_int_equal(R("p1")->r.rating.pieces[0].units, 1);
    assert_int_equal(R("p1")->r.rating.pieces[1].units, 59);
    REBUILT("p2", "0.12");
    REBUILT("p3", "0.34");
    REBUILT("p4", "0.19");
    REBUILT("p5", "0.10");
    REBUILT("s2", "0.10");
    for (int i = 0; i < NRES; i++)
        assert_false(RES[i].r.has_finding);
}

#define S(rid, msisdn, start, chars, billed) {rid, msisdn, "sms", "mo", "13811112222", start, chars, billed, NULL, 0, NULL, 0, 0}

static void test_sms_segments(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* 70/70 at 0.10 a segment */
        S("m70", "13900000001", "2026-10-07 10:00:00", 70, "0.10"),   /* 1 */
        S("m71", "13900000001", "2026-10-07 10:01:00", 71, "0.20"),   /* ceil(71/70) = 2 */
        S("m140", "13900000001", "2026-10-07 10:02:00", 140, "0.20"), /* 2 */
        S("m141", "13900000001", "2026-10-07 10:03:00", 141, "0.30"), /* 3 */
        S("m145", "13900000001", "2026-10-07 10:04:00", 145, "0.30"), /* 3 (the complaint case) */
        /* 70/67 */
        S("n70", "13900000004", "2026-10-07 10:00:00", 70, "0.10"),   /* 1: fits one SMS */
        S("n71", "13900000004", "2026-10-07 10:01:00", 71, "0.20"),   /* ceil(71/67) = 2 */
        S("n140", "13900000004", "2026-10-07 10:02:00", 140, "0.30"), /* ceil(140/67) = 3 */
        S("n141", "13900000004", "2026-10-07 10:03:00", 141, "0.30"), /* 3 */
        S("n145", "13900000004", "2026-10-07 10:04:00", 145, "0.30"), /* ceil(145/67) = 3 */
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("m70", "0.10");
    REBUILT("m71", "0.20");
    REBUILT("m140", "0.20");
    REBUILT("m141", "0.30");
    REBUILT("m145", "0.30");
    REBUILT("n70", "0.10");
    REBUILT("n71", "0.20");
    REBUILT("n140", "0.30");
    REBUILT("n141", "0.30");
    REBUILT("n145", "0.30");
    for (int i = 0; i < NRES; i++)
        assert_false(RES[i].r.has_finding);
}

#define D(rid, msisdn, start, bytes, billed) {rid, msisdn, "data", "mo", "cmnet", start, bytes, billed, NULL, 0, NULL, 0, 0}

static void test_data_rounding(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* p60: 0.01 per KB, 1 KB increment */
        D("d0", "13900000001", "2026-10-07 10:00:00", 0, "0"),        /* 0 KB */
        D("d1", "13900000001", "2026-10-07 10:01:00", 1, "0.01"),     /* ceil(1/1024) = 1 KB */
        D("d1024", "13900000001", "2026-10-07 10:02:00", 1024, "0.01"), /* 1 KB */
        D("d1025", "13900000001", "2026-10-07 10:03:00", 1025, "0.02"), /* 2 KB */
        /* p6: 10 KB increment */
        D("e1", "13900000002", "2026-10-07 10:01:00", 1, "0.10"),     /* 1 KB -> 10 KB */
        D("e10241", "13900000002", "2026-10-07 10:02:00", 10241, "0.20"), /* 11 KB -> 20 KB */
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("d0", "0");
    REBUILT("d1", "0.01");
    REBUILT("d1024", "0.01");
    REBUILT("d1025", "0.02");
    assert_int_equal(R("d1025")->r.rating.billable, 2);
    REBUILT("e1", "0.10");
    REBUILT("e10241", "0.20");
    for (int i = 0; i < NRES; i++)
        assert_false(RES[i].r.has_finding);
}

static void test_rounding_midpoints(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* prefix 0005 at 0.05/60 s, 6 s increment */
        {"h6", "13900000002", "voice", "mo", "000512345", "2026-10-07 10:00:00", 6, "0.01", NULL, 0, NULL, 0, 0},
        /* 6 x 0.05/60 = 0.005 exactly -> half-up 0.01 */
        {"h30", "13900000002", "voice", "mo", "000512345", "2026-10-07 10:01:00", 30, "0.03", NULL, 0, NULL, 0, 0},
        /* 30 x 0.05/60 = 0.025 -> 0.03 (banker's rounding would say 0.02) */
        {"h12", "13900000002", "voice", "mo", "000512345", "2026-10-07 10:02:00", 12, "0.01", NULL, 0, NULL, 0, 0},
        /* 12 x 0.05/60 = 0.01 exactly */
        {"h18", "13900000002", "voice", "mo", "000512345", "2026-10-07 10:03:00", 18, "0.02", NULL, 0, NULL, 0, 0},
        /* 18 x 0.05/60 = 0.015 -> 0.02 */
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("h6", "0.01");
    REBUILT("h30", "0.03");
    REBUILT("h12", "0.01");
    REBUILT("h18", "0.02");
}

static void test_bundle_time_order(void **st)
{
    (void)st;
    /* pb: voice pool 2 min = 120 s at 0.15/60, 60 s increment. Given out of order. */
    rowspec rs[] = {
        V("c3", "13900000005", "2026-10-07 12:00:00", 30, "0.15"),  /* pool empty: 60 s -> 0.15 */
        V("c1", "13900000005", "2026-10-07 10:00:00", 60, "0"),     /* 60 covered, 60 left */
        V("c2", "13900000005", "2026-10-07 11:00:00", 90, "0.15"),  /* 120 billable: 60 covered, 60 charged -> 0.15 */
        V("c1", "13900000005", "2026-10-07 10:00:00", 60, "0"),     /* duplicate (same id), billed 0: consumes nothing */
        V("c4", "13900000005", "2026-10-07 13:00:00", 60, "0.15"),  /* 0.15 */
        V("c4", "13900000005", "2026-10-07 13:00:00", 60, "0.15"),  /* duplicate after the pool ran out, billed: overcharge */
        /* sms pool 3 seg, exactly exhausted by a 3-segment message, then charged */
        S("t1", "13900000005", "2026-10-07 10:00:00", 141, "0"),    /* 3 seg covered, 0 left */
        S("t2", "13900000005", "2026-10-07 10:05:00", 20, "0.10"),  /* 1 seg charged */
    };
    cdr_engine_totals tot;
    run_rows(rs, sizeof rs / sizeof *rs, 0, &tot);
    REBUILT("c1", "0");
    assert_int_equal(R("c1")->r.pool_after, 60);
    REBUILT("c2", "0.15");
    assert_int_equal(R("c2")->r.rating.covered, 60);
    assert_int_equal(R("c2")->r.pool_after, 0);
    REBUILT("c3", "0.15");
    REBUILT("c4", "0.15");
    REBUILT("t1", "0");
    assert_int_equal(R("t1")->r.pool_after, 0);
    REBUILT("t2", "0.10");
    /* the two duplicates */
    int dups = 0;
    for (int i = 0; i < NRES; i++)
        if (RES[i].r.status == CDR_RS_DUPLICATE) {
            dups++;
            assert_int_equal(RES[i].r.rebuilt, 0);
            assert_string_equal(RES[i].cat, "duplicate");
        }
    assert_int_equal(dups, 2);
    assert_int_equal(tot.duplicates, 2);
    /* one candidate: the duplicate c4 billed 0.15 -> refund 0.30 */
    assert_int_equal(NCANDS, 1);
    assert_int_equal(CANDS[0].overcharge, Y("0.15"));
    assert_int_equal(CANDS[0].refund, Y("0.30"));
    assert_int_equal(CANDS[0].categories, 1u << CDR_CAT_DUPLICATE);
}

static void test_discount_and_free(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* pd: 0.15/min less 20%: 60 s -> 0.15 x 0.8 = 0.12 */
        V("x1", "13900000006", "2026-10-07 10:00:00", 60, "0.12"),
        /* 7 min -> 1.05 x 0.8 = 0.84 */
        V("x2", "13900000006", "2026-10-07 11:00:00", 420, "0.84"),
        /* free number 10086: 0, even if billed */
        {"f1", "13900000001", "voice", "mo", "10086", "2026-10-07 10:00:00", 120, "0.38", NULL, 0, NULL, 0, 0},
        {"f2", "13900000001", "sms", "mo", "+8610086", "2026-10-07 10:05:00", 10, "0", NULL, 0, NULL, 0, 0},
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("x1", "0.12");
    REBUILT("x2", "0.84");
    REBUILT("f1", "0");
    assert_string_equal(R("f1")->cat, "free_number");
    assert_int_equal(R("f1")->r.finding.difference, Y("0.38"));
    assert_int_equal(R("f1")->r.status, CDR_RS_FREE);
}

static void test_partials_and_segments(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* three partial records of one peak call: 30+30+30 = 90 s -> 120 s -> 0.38, all on part 1 */
        {"q2", "13900000001", "voice", "mo", "13811112222", "2026-10-07 10:00:30", 30, "0", "CALL1", 2, NULL, 0, 0},
        {"q1", "13900000001", "voice", "mo", "13811112222", "2026-10-07 10:00:00", 30, "0.38", "CALL1", 1, NULL, 0, 0},
        {"q3", "13900000001", "voice", "mo", "13811112222", "2026-10-07 10:01:00", 30, "0", "CALL1", 3, NULL, 0, 0},
        /* another call billed per part rounded up: 3 x 0.19 = 0.57 -> partial_rounding 0.19 over */
        {"r1", "13900000001", "voice", "mo", "13811112222", "2026-10-07 11:00:00", 30, "0.19", "CALL2", 1, NULL, 0, 0},
        {"r2", "13900000001", "voice", "mo", "13811112222", "2026-10-07 11:00:30", 30, "0.19", "CALL2", 2, NULL, 0, 0},
        {"r3", "13900000001", "voice", "mo", "13811112222", "2026-10-07 11:01:00", 30, "0.19", "CALL2", 3, NULL, 0, 0},
        /* a 145-character message written as 3 segment records, seconds apart: not duplicates */
        {"g1", "13900000001", "sms", "mo", "13811112222", "2026-10-07 12:00:00", 145, "0.10", NULL, 0, "77", 1, 3},
        {"g2", "13900000001", "sms", "mo", "13811112222", "2026-10-07 12:00:02", 145, "0.10", NULL, 0, "77", 2, 3},
        {"g3", "13900000001", "sms", "mo", "13811112222", "2026-10-07 12:00:04", 145, "0.10", NULL, 0, "77", 3, 3},
        /* a 100-character message the network wrote as 3 segments: the 3rd is overcounted */
        {"k1", "13900000001", "sms", "mo", "13811112222", "2026-10-07 13:00:00", 100, "0.10", NULL, 0, "78", 1, 3},
        {"k2", "13900000001", "sms", "mo", "13811112222", "2026-10-07 13:00:02", 100, "0.10", NULL, 0, "78", 2, 3},
        {"k3", "13900000001", "sms", "mo", "13811112222", "2026-10-07 13:00:04", 100, "0.10", NULL, 0, "78", 3, 3},
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    REBUILT("q1", "0.38");
    assert_int_equal(R("q1")->r.status, CDR_RS_PARTIAL_FIRST);
    assert_int_equal(R("q1")->r.n_parts, 3);
    assert_int_equal(R("q2")->r.status, CDR_RS_PARTIAL_REST);
    assert_int_equal(R("q3")->r.status, CDR_RS_PARTIAL_REST);
    assert_false(R("q1")->r.has_finding);
    assert_false(R("q2")->r.has_finding);
    /* r: billed sum 0.57, merged 0.38: partial_rounding on the first part */
    assert_string_equal(R("r1")->cat, "partial_rounding");
    assert_int_equal(R("r1")->r.finding.billed, Y("0.57"));
    assert_int_equal(R("r1")->r.finding.rebuilt, Y("0.38"));
    assert_int_equal(R("r1")->r.finding.difference, Y("0.19"));
    assert_false(R("r2")->r.has_finding);
    /* segments are not duplicates and are billed right */
    for (const char *id = "g1"; id; id = !strcmp(id, "g1") ? "g2" : !strcmp(id, "g2") ? "g3" : NULL) {
        assert_int_equal(R(id)->r.status, CDR_RS_RATED);
        REBUILT(id, "0.10");
        assert_false(R(id)->r.has_finding);
    }
    REBUILT("k1", "0.10");
    REBUILT("k2", "0.10");
    REBUILT("k3", "0");
    assert_int_equal(R("k3")->r.status, CDR_RS_SEGMENT_OVER);
    assert_string_equal(R("k3")->cat, "sms_segments");
}

static void test_diagnosis(void **st)
{
    (void)st;
    rowspec rs[] = {
        /* wrong band: an offpeak call (23:30) charged at peak: 2 min x 0.19 = 0.38 vs 0.20 */
        V("w1", "13900000001", "2026-10-07 23:30:00", 120, "0.38"),
        /* split plan charged whole at the start band: 22:59:50 30 s -> 0.19 vs 0.12 */
        V("w2", "13900000003", "2026-10-07 22:59:50", 30, "0.19"),
        /* 140 chars billed as 3 segments (the 67-char rule) on a 70/70 plan */
        S("sm", "13900000001", "2026-10-07 10:00:00", 140, "0.30"),
        /* data: 1025 bytes billed as 1 MB = 1024 KB x 0.01 = 10.24 vs 0.02 */
        D("dr", "13900000001", "2026-10-07 10:00:00", 1025, "10.24"),
        /* data without usage */
        D("dz", "13900000001", "2026-10-07 11:00:00", 0, "0.05"),
        /* zero-duration call charged */
        V("z0", "13900000001", "2026-10-07 12:00:00", 0, "0.19"),
        /* discount not applied: pd 60 s billed 0.15 instead of 0.12 */
        V("dn", "13900000006", "2026-10-07 10:00:00", 60, "0.15"),
        /* rate mismatch: 60 s peak billed 0.25 */
        V("rm", "13900000001", "2026-10-08 10:00:00", 60, "0.25"),
        /* leakage: billed 0.10 for 0.19 */
        V("lk", "13900000001", "2026-10-08 11:00:00", 60, "0.10"),
        /* vas: SP100 subscribed 10-01..10-15: the 20th is not */
        {"v1", "13900000001", "vas", "mo", "SP100", "2026-10-10 10:00:00", -1, "5.00", NULL, 0, NULL, 0, 0},
        {"v2", "13900000001", "vas", "mo", "SP100", "2026-10-20 10:00:00", -1, "5.00", NULL, 0, NULL, 0, 0},
        /* bundle not applied: pb first call billed though covered */
        V("bn", "13900000005", "2026-10-07 10:00:00", 60, "0.15"),
        /* the same usage under a new id: duplicate */
        V("dd1", "13900000001", "2026-10-09 10:00:00", 60, "0.19"),
        V("dd2", "13900000001", "2026-10-09 10:00:00", 60, "0.19"),
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    assert_string_equal(R("w1")->cat, "wrong_band");
    assert_int_equal(R("w1")->r.finding.difference, Y("0.18"));
    assert_string_equal(R("w2")->cat, "wrong_band");
    assert_int_equal(R("w2")->r.finding.difference, Y("0.07"));
    assert_string_equal(R("sm")->cat, "sms_segments");
    assert_string_equal(R("dr")->cat, "data_rounding");
    assert_int_equal(R("dr")->r.finding.difference, Y("10.22"));
    assert_string_equal(R("dz")->cat, "data_no_usage");
    assert_string_equal(R("z0")->cat, "zero_duration");
    assert_string_equal(R("dn")->cat, "discount_not_applied");
    assert_int_equal(R("dn")->r.finding.difference, Y("0.03"));
    assert_string_equal(R("rm")->cat, "rate_mismatch");
    assert_string_equal(R("lk")->cat, "leakage");
    assert_int_equal(R("lk")->r.finding.difference, -Y("0.09"));
    assert_false(R("v1")->r.has_finding);
    REBUILT("v1", "5.00");
    assert_string_equal(R("v2")->cat, "vas_no_subscription");
    assert_string_equal(R("bn")->cat, "bundle_not_applied");
    assert_false(R("dd1")->r.has_finding);
    assert_string_equal(R("dd2")->cat, "duplicate");
    assert_string_equal(R("dd2")->dup_of, "dd1");
}

static void test_flags(void **st)
{
    (void)st;
    rowspec rs[] = {
        V("o1", "13900000001", "2026-10-07 10:00:00", 120, "0.38"),
        V("o2", "13900000001", "2026-10-07 10:01:00", 60, "0.19"),   /* starts before o1 ended */
        V("o3", "13900000001", "2026-10-07 12:00:00", 20000, "63.46"),/* > 3 h; 20040 s x 0.19/60 = 63.46 */
    };
    run_rows(rs, sizeof rs / sizeof *rs, 0, NULL);
    assert_false(R("o1")->r.has_finding);
    assert_true(R("o2")->r.has_finding);
    assert_int_equal(R("o2")->r.finding.flags, CDR_FLAG_OVERLAP);
    assert_int_equal(R("o2")->r.finding.difference, 0);
    assert_int_equal(R("o3")->r.finding.flags, CDR_FLAG_OVERLONG);
    REBUILT("o3", "63.46");
}

/* Same rows in another order, with spilling forced: identical results. */
static void test_order_and_spill(void **st)
{
    (void)st;
    enum { N = 3000 };
    static rowspec rs[N];
    static char ids[N][16], starts[N][20], peers[N][16];
    const char *subs[] = {"13900000001", "13900000002", "13900000003", "13900000004", "13900000005", "13900000006"};
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], 16, "R%05d", i);
        snprintf(starts[i], 20, "2026-10-%02d %02d:%02d:%02d", 1 + i % 28, (i * 7) % 24, (i * 13) % 60, i % 60);
        snprintf(peers[i], 16, "138%08d", (i * 7919) % 100000000);
        rs[i] = (rowspec){ids[i], subs[i % 6], i % 3 ? "voice" : "sms", "mo", peers[i], starts[i],
                          i % 3 ? (i * 37) % 700 : (i * 11) % 200, "0.10", NULL, 0, NULL, 0, 0};
    }
    run_rows(rs, N, 0, NULL);
    static result a[N];
    int na = NRES;
    memcpy(a, RES, sizeof(result) * (size_t)NRES);
    /* reverse order, tiny memory budget (forces spilling) */
    static rowspec rev[N];
    for (int i = 0; i < N; i++)
        rev[i] = rs[N - 1 - i];
    cdr_engine_totals tot;
    run_rows(rev, N, 1, &tot); /* clamped to the 64 KiB minimum: spills */
    assert_true(tot.spilled);
    assert_int_equal(na, NRES);
    for (int i = 0; i < na; i++) {
        assert_string_equal(a[i].rid, RES[i].rid);
        assert_int_equal(a[i].r.rebuilt, RES[i].r.rebuilt);
        assert_int_equal(a[i].r.pool_after, RES[i].r.pool_after);
        assert_string_equal(a[i].cat, RES[i].cat);
    }
    /* one rating thread instead of two: the same records in the same order */
    THREADS = 1;
    run_rows(rs, N, 0, NULL);
    THREADS = 2;
    assert_int_equal(na, NRES);
    for (int i = 0; i < na; i++) {
        assert_string_equal(a[i].rid, RES[i].rid);
        assert_int_equal(a[i].r.rebuilt, RES[i].r.rebuilt);
        assert_string_equal(a[i].cat, RES[i].cat);
        assert_string_equal(a[i].expl, RES[i].expl);
    }
}

/* The order records are rated and delivered in, checked against its
 * definition rather than against another run: per subscriber by start
 * time, record_id, then line - with many equal start times, repeated
 * record_ids, and subscribers of 1 to 2000 records (the sort's short and
 * merged paths), as given, reversed and spilled. */
static void check_time_order(int n)
{
    assert_int_equal(NRES, n);
    int pairs = 0;
    for (int i = 1; i < NRES; i++) {
        const cdr_row *a = &RES[i - 1].r.row, *b = &RES[i].r.row;
        if (strcmp(RES[i - 1].msisdn, RES[i].msisdn))
            continue;
        pairs++;
        int c = a->start < b->start ? -1 : a->start > b->start;
        if (!c)
            c = strcmp(RES[i - 1].rid, RES[i].rid);
        if (!c)
            c = a->line < b->line ? -1 : a->line > b->line;
        if (c >= 0)
            fail_msg("record %d (%s) delivered after %s", i, RES[i].rid, RES[i - 1].rid);
    }
    assert_int_equal(pairs, n - 8); /* eight subscribers, each delivered together */
}

static void test_time_order(void **st)
{
    (void)st;
    enum { N = 4000 };
    static rowspec rs[N], rev[N];
    static char ids[N][16], starts[N][20];
    static const char *const subs[] = {"13900000001", "13900000002", "13900000003",
                                       "13900000004", "13900000005", "13900000006",
                                       "13900000007", "13900000008"};
    static const int upto[] = {1, 3, 20, 68, 117, 417, 2417, N}; /* 1, 2, 17, 48, 49, 300, 2000, rest */
    for (int i = 0; i < N; i++) {
        int sub = 0;
        while (i >= upto[sub])
            sub++;
        /* 37 distinct start times a subscriber; every 50th record_id repeated */
        int k = (i * 7919) % N;
        snprintf(ids[i], 16, "X%05d", i % 50 == 49 ? (k + 1) % N : k);
        snprintf(starts[i], 20, "2026-10-%02d 10:%02d:00", 1 + (i * 13) % 37 % 28, (i * 13) % 37);
        rs[i] = (rowspec){ids[i], subs[sub], "voice", "mo", "13811112222", starts[i], 60, "0.19",
                          NULL, 0, NULL, 0, 0};
        rev[N - 1 - i] = rs[i];
    }
    run_rows(rs, N, 0, NULL);
    check_time_order(N);
    run_rows(rev, N, 0, NULL);
    check_time_order(N);
    cdr_engine_totals tot;
    run_rows(rev, N, 1, &tot);
    assert_true(tot.spilled);
    check_time_order(N);
}

/* Every field of a record comes back from the engine as it went in -
 * packed, filed, spilled, read back and decoded: numbers of every byte
 * width and sign, strings and extras of 0 to 600 bytes (lengths past
 * one byte), start times from 1900 to 9999. */
enum { PK_N = 3000 };
typedef struct pk_rec {
    char rid[640], peer[320], call[320], ref[320], ex[2][320];
    cdr_row r;
    cdr_str exv[2];
} pk_rec;
static pk_rec *PK;
static int PK_SEEN;
static uint64_t pk_rng = 0x2545F4914F6CDD1Dull;

static uint64_t pk_next(void) { return trnd64(&pk_rng); }

/* a value of 1 to 8 significant bytes */
static uint64_t pk_wide(void) { return pk_next() >> (8 * (pk_next() % 8)); }

static size_t pk_str(char *b, size_t max)
{
    size_t n = pk_next() % 4 == 0 ? 255 + pk_next() % 3 - 1 : pk_next() % (max + 1);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(' ' + pk_next() % 95);
    return n;
}

static void pk_same(const cdr_str *a, const cdr_str *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->p, b->p, a->n);
}

static int pk_on_rec(const cdr_rated *x, void *u)
{
    (void)u;
    const cdr_row *g = &x->row;
    unsigned i = 0; /* the first five bytes (record_id is not NUL-terminated) */
    assert_true(g->record_id.n >= 5);
    for (int k = 0; k < 5; k++)
        i = i * 10 + (unsigned)(g->record_id.p[k] - '0');
    assert_true(i < PK_N);
    const cdr_row *w = &PK[i].r;
    pk_same(&g->record_id, &w->record_id);
    pk_same(&g->msisdn, &w->msisdn);
    pk_same(&g->peer, &w->peer);
    pk_same(&g->call_id, &w->call_id);
    pk_same(&g->sms_ref, &w->sms_ref);
    assert_int_equal(g->service, w->service);
    assert_int_equal(g->direction, w->direction);
    assert_true(g->start == w->start);
    assert_true(g->duration_s == w->duration_s);
    assert_true(g->bytes == w->bytes);
    assert_true(g->sms_chars == w->sms_chars);
    assert_true(g->billed == w->billed);
    assert_true(g->partial_seq == w->partial_seq);
    assert_true(g->line == w->line);
    assert_true(g->offset == w->offset);
    assert_int_equal(g->sms_part, w->sms_part);
    assert_int_equal(g->sms_parts, w->sms_parts);
    assert_int_equal(g->n_extra, 2);
    pk_same(&g->extra[0], &w->extra[0]);
    pk_same(&g->extra[1], &w->extra[1]);
    PK_SEEN++;
    return 0;
}

static void test_pack_roundtrip(void **st)
{
    (void)st;
    PK = calloc(PK_N, sizeof *PK);
    assert_non_null(PK);
    static const cdr_str names[2] = {{"cell_id", 7}, {"msc_id", 6}};
    for (unsigned i = 0; i < PK_N; i++) {
        pk_rec *k = &PK[i];
        cdr_row *r = &k->r;
        snprintf(k->rid, 6, "%05u", i);
        size_t n = 5 + pk_str(k->rid + 5, 600);
        r->record_id = (cdr_str){k->rid, n};
        /* numbers not in the tariff: unrated, the row comes back as it is */
        static char ms[PK_N][12];
        snprintf(ms[i], 12, "1370000%04u", i % 700);
        r->msisdn = (cdr_str){ms[i], 11};
        r->service = (cdr_service)(pk_next() % CDR_SVC__COUNT);
        r->direction = (cdr_direction)(pk_next() % 2);
        r->peer = (cdr_str){k->peer, pk_str(k->peer, 300)};
        r->call_id = (cdr_str){k->call, pk_str(k->call, 300)};
        r->sms_ref = (cdr_str){k->ref, pk_str(k->ref, 300)};
        r->start = (cdr_time)(pk_next() % (uint64_t)(253402300799 + 2208988800)) - 2208988800;
        int64_t amount = (int64_t)pk_wide() * (pk_next() % 2 ? 1 : -1);
        r->duration_s = r->service == CDR_SVC_VOICE ? amount : -1;
        r->bytes = r->service == CDR_SVC_DATA ? amount : -1;
        r->sms_chars = r->service == CDR_SVC_SMS ? amount : -1;
        r->billed = (int64_t)(pk_wide() >> 1) * (pk_next() % 2 ? 1 : -1);
        r->partial_seq = (int64_t)(pk_wide() >> 1) * (pk_next() % 2 ? 1 : -1);
        r->line = pk_wide();
        r->offset = pk_wide();
        r->sms_part = (int32_t)(uint32_t)pk_wide();
        r->sms_parts = (int32_t)(uint32_t)pk_wide();
        k->exv[0] = (cdr_str){k->ex[0], pk_str(k->ex[0], 300)};
        k->exv[1] = (cdr_str){k->ex[1], pk_str(k->ex[1], 300)};
        r->extra = k->exv;
        r->extra_names = names;
        r->n_extra = 2;
    }
    for (int mode = 0; mode < 3; mode++) {
        cdr_engine_opts o;
        cdr_engine_opts_init(&o);
        o.threads = mode == 2 ? 1 : 2;
        if (mode)
            o.mem_budget = 1; /* the minimum: spills */
        cdr_engine *e;
        assert_int_equal(cdr_engine_new(T, &o, &e), CDR_OK);
        assert_int_equal(cdr_engine_set_file(e, 0, "pack.csv"), CDR_OK);
        for (unsigned i = 0; i < PK_N; i++)
            assert_int_equal(cdr_engine_add(e, &PK[i].r), CDR_OK);
        PK_SEEN = 0;
        cdr_engine_sink sink = {.on_record = pk_on_rec};
        cdr_engine_totals tot;
        assert_int_equal(cdr_engine_finish(e, &sink, &tot), CDR_OK);
        assert_int_equal(tot.spilled != 0, mode != 0);
        cdr_engine_free(e);
        assert_int_equal(PK_SEEN, PK_N);
    }
    free(PK);
}

static void test_tiers_and_special(void **st)
{
    (void)st;
    const cdr_money Yu = CDR_MICRO;
    /* company-liable (every double refund): <=20 first refund: 0; <=200: 1; <=500: 2; <=1000: 3; >1000: 4 */
    assert_int_equal(cdr_approval_tier(20 * Yu, 1, 1), 0);
    assert_int_equal(cdr_approval_tier(20 * Yu + 1, 1, 1), 1);
    assert_int_equal(cdr_approval_tier(20 * Yu, 1, 0), 1);
    assert_int_equal(cdr_approval_tier(200 * Yu, 1, 0), 1);
    assert_int_equal(cdr_approval_tier(200 * Yu + 10000, 1, 0), 2);
    assert_int_equal(cdr_approval_tier(500 * Yu, 1, 0), 2);
    assert_int_equal(cdr_approval_tier(500 * Yu + 10000, 1, 0), 3);
    assert_int_equal(cdr_approval_tier(1000 * Yu, 1, 0), 3);
    assert_int_equal(cdr_approval_tier(1000 * Yu + 10000, 1, 0), 4);
    /* not company-liable: 100 / 300 / 500 */
    assert_int_equal(cdr_approval_tier(100 * Yu, 0, 0), 1);
    assert_int_equal(cdr_approval_tier(100 * Yu + 10000, 0, 0), 2);
    assert_int_equal(cdr_approval_tier(300 * Yu, 0, 0), 2);
    assert_int_equal(cdr_approval_tier(300 * Yu + 10000, 0, 0), 3);
    assert_int_equal(cdr_approval_tier(500 * Yu, 0, 0), 3);
    assert_int_equal(cdr_approval_tier(500 * Yu + 10000, 0, 0), 4);

    cdr_month m;
    cdr_month_parse("2026-10", 7, &m);
    cdr_time d1, d2, d3, d4;
    cdr_date_parse("2026-08-03", 10, &d1);
    cdr_date_parse("2026-08-20", 10, &d2);
    cdr_date_parse("2026-08-31", 10, &d3);
    cdr_date_parse("2026-06-30", 10, &d4); /* four months back: outside the window */
    cdr_prior_refund r[4] = {{"", d1, 1 * Yu, 0, 0, 0}, {"", d2, 1 * Yu, 0, 0, 0},
                             {"", d3, 1 * Yu, 0, 0, 0}, {"", d4, 500 * Yu, 0, 0, 0}};
    assert_true(cdr_special_customer(r, 3, m));   /* 3 refunds in August */
    assert_false(cdr_special_customer(r, 2, m));  /* 2 only */
    r[2].company_liable = 1;                      /* company-liable ones do not count */
    assert_false(cdr_special_customer(r, 3, m));
    r[2].company_liable = 0;
    r[2].border_roaming = 1;
    assert_false(cdr_special_customer(r, 3, m));
    assert_false(cdr_special_customer(r + 3, 1, m)); /* 500 yuan but four months ago */
    cdr_prior_refund big[2] = {{"", d1, 60 * Yu, 0, 0, 0}, {"", d2, 40 * Yu, 0, 0, 0}};
    assert_true(cdr_special_customer(big, 2, m));    /* 100 yuan in 3 months */
    big[1].amount = 40 * Yu - 1;
    assert_false(cdr_special_customer(big, 2, m));   /* 99.999999 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_voice_increments), cmocka_unit_test(test_band_boundary),
        cmocka_unit_test(test_sms_segments),     cmocka_unit_test(test_data_rounding),
        cmocka_unit_test(test_rounding_midpoints), cmocka_unit_test(test_bundle_time_order),
        cmocka_unit_test(test_discount_and_free), cmocka_unit_test(test_partials_and_segments),
        cmocka_unit_test(test_diagnosis),        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_order_and_spill),  cmocka_unit_test(test_time_order),  cmocka_unit_test(test_pack_roundtrip),  cmocka_unit_test(test_tiers_and_special),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
