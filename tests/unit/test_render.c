/* Unit tests: a statement made by hand, rendered as text (cdr_render_text)
 * and as an evidence page (cdr_evidence_write: the arithmetic of each
 * record in words), against what was worked out by hand from the
 * records' numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/evidence.h"
#include "cdrecon/render.h"
#include "cdrecon/statement.h"

#define Y(x) ((cdr_money)((x) * 10000) * (CDR_MICRO / 10000)) /* yuan, 4 decimals */

static cdr_time at(const char *s)
{
    cdr_time t = 0;
    assert_int_equal(cdr_time_parse(s, strlen(s), &t), CDR_OK);
    return t;
}

/* Three records of 13800138000 in 2026-10:
 *   R1 a voice call of 61 s at 0.15 yuan a minute (by the minute): 120 s
 *      billable, 0.30 due, billed 0.50;
 *   R2 a duplicate of R1's SMS neighbour: due 0.00, billed 0.10;
 *   R3 an SMS of 40 characters at 0.10 less a 10 % discount: 0.09 due,
 *      billed 0.10 (the discount not applied). */
static cdr_stmt_rec recs[3];
static cdr_stmt_pool pool;
static cdr_stmt stmt;

static void rec(cdr_stmt_rec *r, const char *id, uint64_t line, cdr_service sv, const char *peer,
                const char *start, int64_t amount, int64_t usage, int64_t billable,
                cdr_money billed, cdr_money rebuilt)
{
    memset(r, 0, sizeof *r);
    r->file = (char *)"a.csv";
    r->line = line;
    r->offset = 40 * line;
    r->record_id = (char *)id;
    r->msisdn = (char *)"13800138000";
    r->service = sv;
    r->direction = CDR_DIR_MO;
    r->peer = (char *)peer;
    r->start = at(start);
    r->amount = amount;
    r->usage = usage;
    r->billable = billable;
    r->covered = 0;
    r->billed = billed;
    r->has_rebuilt = 1;
    r->rebuilt = rebuilt;
    r->difference = billed - rebuilt;
    r->status = CDR_RS_RATED;
    r->dup_of = r->call_id = r->sms_ref = r->band = r->pool = r->extra = (char *)"";
    r->explanation = (char *)"";
    r->parts = 1;
    r->plan = (char *)"b58";
    r->pool_after = -1;
}

static int setup(void **st)
{
    (void)st;
    rec(&recs[0], "R1", 2, CDR_SVC_VOICE, "13900139000", "2026-10-05 10:00:00", 61, 61, 120,
        Y(0.50), Y(0.30));
    recs[0].rate_line = 7;
    recs[0].price = Y(0.15);
    recs[0].unit = recs[0].increment = 60;
    recs[0].band = (char *)"peak";
    recs[0].pool = (char *)"voice60";
    recs[0].pool_after = 3480;
    recs[0].category = (char *)"rate_mismatch";
    recs[0].explanation = (char *)"billed above the rate row";

    rec(&recs[1], "R2", 3, CDR_SVC_SMS, "10086", "2026-10-05 10:05:00", 40, 1, 1, Y(0.10), 0);
    recs[1].status = CDR_RS_DUPLICATE;
    recs[1].dup_of = (char *)"R1";
    recs[1].category = (char *)"duplicate";
    recs[1].explanation = (char *)"same as R1";

    rec(&recs[2], "R3", 4, CDR_SVC_SMS, "1065888800001234567890", "2026-10-06 09:00:00", 40, 1, 1,
        Y(0.10), Y(0.09));
    recs[2].rate_line = 9;
    recs[2].price = Y(0.10);
    recs[2].unit = recs[2].increment = 1;
    recs[2].discount_micro = 10 * CDR_MICRO;
    recs[2].category = (char *)"discount_not_applied";

    pool = (cdr_stmt_pool){(char *)"voice60", (char *)"b58", 3600, 120, 3480, "s"};
    memset(&stmt, 0, sizeof stmt);
    stmt.msisdn = (char *)"13800138000";
    assert_int_equal(cdr_month_parse("2026-10", 7, &stmt.month), CDR_OK);
    stmt.recs = recs;
    stmt.n_recs = 3;
    stmt.pools = &pool;
    stmt.n_pools = 1;
    stmt.n_findings = 3;
    stmt.n_duplicates = 1;
    stmt.total_billed = Y(0.70);
    stmt.total_rebuilt = Y(0.39);
    stmt.vip = 1;
    stmt.join_date = at("2025-01-15 00:00:00");
    stmt.has_candidate = 1;
    stmt.cand.msisdn.p = stmt.msisdn;
    stmt.cand.msisdn.n = 11;
    stmt.cand.month = stmt.month;
    stmt.cand.records = 3;
    stmt.cand.overcharge = Y(0.31);
    stmt.cand.refund = Y(0.62);
    stmt.cand.categories = 1u << CDR_CAT_DUPLICATE | 1u << CDR_CAT_RATE_MISMATCH |
                           1u << CDR_CAT_DISCOUNT_NOT_APPLIED;
    stmt.cand.tier = 0;
    stmt.cand.policy = CDR_POLICY_REFUND_FIRST;
    stmt.cand.policy_reason = "first refund, small amount";
    return 0;
}

static char *render(cdr_err (*fn)(FILE *, const cdr_stmt *), const cdr_stmt *s)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&buf, &n);
    assert_non_null(fp);
    assert_int_equal(fn(fp, s), CDR_OK);
    fclose(fp);
    return buf;
}

/* Every line of the text statement; the table's columns padded to their
 * widths (19 5 3 20 | 14 9 9 9 right-aligned | 14 20 16), the peer of R3
 * (22 characters) cut to 19 and '~'. */
static void test_text(void **st)
{
    (void)st;
    char *out = render(cdr_render_text, &stmt);
    const char *want =
        "Statement of 13800138000 for 2026-10\n"
        "plan b58; VIP yes; joined 2025-01-15\n"
        "3 records (1 duplicates, 0 unrated); billed 0.70 yuan, rebuilt 0.39 yuan; 3 findings\n"
        "\n"
        "time                svc   dir other party                   usage    billed   rebuilt"
        "      diff bundle left    status               flags            category\n"
        "2026-10-05 10:00:00 voice mo  13900139000                    1:01      0.50      0.30"
        "      0.20 voice60 58:00  ok                                    rate_mismatch\n"
        "2026-10-05 10:05:00 sms   mo  10086                 1 seg (40 ch)      0.10      0.00"
        "      0.10                duplicate of R1                       duplicate\n"
        "2026-10-06 09:00:00 sms   mo  1065888800001234567~  1 seg (40 ch)      0.10      0.09"
        "      0.01                ok                                    discount_not_applied\n"
        "\n"
        "Bundles\n"
        "  pool         plan            allowance           used           left\n"
        "  voice60      b58                 60:00           2:00          58:00\n"
        "\n"
        "Verdict\n"
        "  overcharge  0.31 yuan on 3 records\n"
        "  refund      0.62 yuan (billing error: the overcharge refunded twice, as account "
        "credit)\n"
        "  categories  discount_not_applied;duplicate;rate_mismatch\n"
        "  approval    tier 0: agent refunds directly (up to 20 yuan, the customer's first "
        "refund)\n"
        "  policy      refund_first: first refund, small amount\n"
        "  deadline    refund within 48 hours of confirming the amount\n"
        "  special     no\n"
        "\n"
        "Findings in words\n"
        "  2026-10-05 10:00:00  record R1 (a.csv line 2) [rate_mismatch]: billed above the rate "
        "row\n"
        "  2026-10-05 10:05:00  record R2 (a.csv line 3) [duplicate]: same as R1\n"
        "  2026-10-06 09:00:00  record R3 (a.csv line 4) [discount_not_applied]: flagged\n";
    assert_string_equal(out, want);
    free(out);
}

/* Without a candidate: no refund, and leakage said as such. */
static void test_text_no_candidate(void **st)
{
    (void)st;
    cdr_stmt s = stmt;
    s.has_candidate = 0;
    s.leakage = Y(1.25);
    char *out = render(cdr_render_text, &s);
    assert_non_null(strstr(out, "\nVerdict\n  no overcharge: nothing to refund\n"
                                "  leakage     1.25 yuan undercharged (reported to revenue "
                                "assurance, never refunded)\n"));
    free(out);
}

/* The JSON form carries the same numbers, as yuan strings. */
static void test_json_numbers(void **st)
{
    (void)st;
    char *out = render(cdr_render_json, &stmt);
    assert_non_null(strstr(out, "\"billed\":\"0.50\""));
    assert_non_null(strstr(out, "\"rebuilt\":\"0.30\""));
    assert_non_null(strstr(out, "\"difference\":\"0.20\""));
    assert_non_null(strstr(out, "\"dup_of\":\"R1\""));
    assert_non_null(strstr(out, "\"pool\":\"voice60\",\"plan\":\"b58\",\"allowance\":3600,"
                                "\"used\":120,\"left\":3480,\"unit\":\"s\""));
    free(out);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    fclose(fp);
    return b;
}

/* The evidence page's arithmetic of each record, worked out by hand:
 *   R1: 61 s in 60 s steps = 120 s; 120 × 0.15 / 60 = 0.30 exactly (no
 *       "≈"); billed 0.50, 0.20 over;
 *   R2: a duplicate is due nothing; billed 0.10, all of it over;
 *   R3: 40 characters, no plan in a tariff-less pack: "= 1 segments";
 *       0.10 × (1 − 10 %) = 0.09 exactly; billed 0.10, 0.01 over (not a
 *       whole number of segments: said in yuan). */
static void test_evidence_arithmetic(void **st)
{
    (void)st;
    char dir[] = "/tmp/cdrecon-test-render.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pack[64];
    snprintf(pack, sizeof pack, "%s/pack", dir);
    cdr_evidence *ev = NULL;
    char err[256] = "";
    assert_int_equal(cdr_evidence_open(pack, 0, &ev, err, sizeof err), CDR_OK);
    cdr_evidence_opts o;
    memset(&o, 0, sizeof o);
    o.refund_date = at("2026-11-02 00:00:00");
    assert_int_equal(cdr_evidence_write(ev, &stmt, &o), CDR_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/internal/evidence.html", pack);
    char *html = slurp(path);
    assert_non_null(strstr(html, "<span class=\"en\">61 s → rounded up to 60 s = 120 s; 120 s × "
                                 "0.15 yuan/60 s (band peak) = 0.30 yuan; billed 0.50 yuan; "
                                 "overcharged 0.50 − 0.30 = 0.20 yuan</span>"));
    assert_non_null(strstr(html, "61 秒 → 按 60 秒进位 = 120 秒;120 秒 × 0.15 元/60 秒 (时段 peak) "
                                 "= 0.30 元;计费 0.50 元;多收 0.50 − 0.30 = 0.20 元"));
    assert_non_null(strstr(html, "<span class=\"en\">duplicate of record R1, a duplicate is not "
                                 "charged: due 0.00 yuan; billed 0.10 yuan; overcharged 0.10 − "
                                 "0.00 = 0.10 yuan</span>"));
    assert_non_null(strstr(html, "<span class=\"en\">40 characters = 1 segments; 1 segments × "
                                 "0.10 yuan/segment × (1 − 10%) = 0.09 yuan; billed 0.10 yuan; "
                                 "overcharged 0.10 − 0.09 = 0.01 yuan</span>"));
    /* the engine's words, internal copy only */
    assert_non_null(strstr(html, "<br><span class=\"en\">engine: billed above the rate row</span>"));
    free(html);
    snprintf(path, sizeof path, "%s/customer/evidence.html", pack);
    html = slurp(path);
    assert_null(strstr(html, "engine: "));
    free(html);
    cdr_evidence_free(ev);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_no_candidate),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_evidence_arithmetic),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
