/* Unit tests: input profiles (src/profile.c, the profile path of src/reader.c).
 *
 * - the bundled month in each bundled profile's layout gives byte-identical
 *   findings and candidates to the contract's files (the engine's own output,
 *   file names mapped, line numbers equal by construction: docs/generator.md);
 * - every conversion at its edges: time patterns, UTC offsets, epoch, units,
 *   record types, numbers;
 * - what a reader says through a profile: reasons naming the operator's
 *   column, skipped rows counted (read = accepted + rejected + skipped),
 *   header checks naming the profile's line;
 * - refusals of bad profiles (more in testdata/profile-bad, t_profile_bad.sh).
 * The reader's every-chunk-size, gzip-member and fast-path-vs-libcsv tests
 * run the profile path too: tests/unit/test_reader.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdrecon/engine.h"
#include "cdrecon/outcsv.h"
#include "cdrecon/reader.h"
#include "cdrecon/tariff.h"
#include "profile_int.h"
#include "testbuf.h"

static const char *testdata(void)
{
    const char *td = getenv("TESTDATA");
    return td ? td : "testdata";
}

static cdr_profile *parse(const char *text)
{
    cdr_profile *p = NULL;
    char err[600];
    cdr_err e = cdr_profile_parse(text, strlen(text), "t.profile", &p, err, sizeof err);
    if (e != CDR_OK)
        fail_msg("profile refused: %s\n%s", err, text);
    return p;
}

static void expect_refused(const char *text, const char *want)
{
    cdr_profile *p = NULL;
    char err[600];
    cdr_err e = cdr_profile_parse(text, strlen(text), "t.profile", &p, err, sizeof err);
    if (e != CDR_E_PROFILE || p || !strstr(err, want))
        fail_msg("want refusal '%s', got %d '%s' for:\n%s", want, e, err, text);
}

#define MIN_PROFILE                                                                           \
    "record_id = id\nmsisdn = m\nservice = s\nstart_time = t\nbilled = b\n"

/* ------------------------------------------------------------------ */
/* The bundled month: findings and candidates through each profile     */

typedef struct out2 {
    cdr_csvw *f, *c;
} out2;

static int sink_finding(const cdr_finding *f, void *u)
{
    return cdr_findings_csv_row(((out2 *)u)->f, f) != CDR_OK;
}

static int sink_candidate(const cdr_candidate *c, void *u)
{
    return cdr_candidates_csv_row(((out2 *)u)->c, c) != CDR_OK;
}

static int add_row(const cdr_row *r, void *u)
{
    return cdr_engine_add((cdr_engine *)u, r) != CDR_OK;
}

static int no_reject(const cdr_reject *j, void *u)
{
    (void)u;
    fail_msg("rejected %s:%llu: %s", j->file, (unsigned long long)j->line, j->reason);
    return 1;
}

/* Run the month's three files (a, b, c) through the engine; the findings
 * and candidates as CSV, the files named by their letter only. */
static void run_month(const cdr_tariff *t, const char *dir, const char *const names[3],
                      const cdr_profile *prof, uint64_t skipped_want, buf *fo, buf *co)
{
    cdr_engine_opts eo;
    cdr_engine_opts_init(&eo);
    cdr_engine *e = NULL;
    assert_int_equal(cdr_engine_new(t, &eo, &e), CDR_OK);
    cdr_reader_opts ro;
    cdr_reader_opts_init(&ro);
    ro.profile = prof;
    uint64_t skipped = 0;
    for (uint32_t i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        const char *letter[] = {"a", "b", "c"};
        assert_int_equal(cdr_engine_set_file(e, i, letter[i]), CDR_OK);
        cdr_file_stats st;
        cdr_err re = cdr_read_file(path, i, &ro, add_row, no_reject, e, &st);
        if (re != CDR_OK)
            fail_msg("%s: %s", path, st.message);
        assert_int_equal(st.rows_read, st.rows_accepted + st.rows_rejected + st.rows_skipped);
        skipped += st.rows_skipped;
    }
    assert_int_equal(skipped, skipped_want);
    out2 o;
    assert_int_equal(cdr_csvw_open_memory(&o.f), CDR_OK);
    assert_int_equal(cdr_csvw_open_memory(&o.c), CDR_OK);
    cdr_findings_csv_header(o.f);
    cdr_candidates_csv_header(o.c);
    cdr_engine_sink sink = {.on_finding = sink_finding, .on_candidate = sink_candidate, .user = &o};
    cdr_engine_totals tot;
    assert_int_equal(cdr_engine_finish(e, &sink, &tot), CDR_OK);
    size_t n;
    const char *p = cdr_csvw_memory(o.f, &n);
    bput(fo, p, n);
    p = cdr_csvw_memory(o.c, &n);
    bput(co, p, n);
    cdr_csvw_free(o.f);
    cdr_csvw_free(o.c);
    cdr_engine_free(e);
}

/* findings.csv without its offset column (the bytes before a row differ
 * from one layout to another; file and line do not). */
static void drop_offsets(buf *b)
{
    buf o = {0};
    const char *p = b->p;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        /* columns: msisdn,month,record_id,file,line,category,flags,billed,rebuilt,
         * difference,service,start_time,peer,offset,explanation (no quotes
         * before offset in this month's rows) */
        size_t k = 0, col = 0;
        while (k < n && col < 13) {
            if (p[k] == ',')
                col++;
            k++;
        }
        size_t e = k;
        while (e < n && p[e] != ',')
            e++;
        bput(&o, p, k);
        bput(&o, p + e + 1, n - e - 1);
        p += n;
    }
    free(b->p);
    *b = o;
}

static void test_example_month_every_profile(void **st)
{
    (void)st;
    char dir[1024], err[1024];
    snprintf(dir, sizeof dir, "%s/example/tariff", testdata());
    cdr_tariff *t = NULL;
    if (cdr_tariff_load(dir, &t, err, sizeof err) != CDR_OK)
        fail_msg("%s", err);
    static const char *const contract[3] = {"cdr-2026-10-a.csv", "cdr-2026-10-b.csv",
                                            "cdr-2026-10-c.csv.gz"};
    static const char *const prof_names[3] = {"cdr-2026-10-a.csv", "cdr-2026-10-b.csv.gz",
                                              "cdr-2026-10-c.csv.gz"};
    buf f0 = {0}, c0 = {0};
    snprintf(dir, sizeof dir, "%s/example/cdr", testdata());
    run_month(t, dir, contract, NULL, 0, &f0, &c0);
    drop_offsets(&f0);
    assert_true(f0.n > 10000 && c0.n > 5000); /* the month has findings to compare */
    static const struct {
        const char *name;
        uint64_t skipped; /* its header/trailer records in the three files */
    } profs[] = {{"3gpp-32298", 3}, {"pipe-fen", 6}, {"vendor-ms", 6}};
    for (size_t i = 0; i < sizeof profs / sizeof *profs; i++) {
        char ppath[256];
        snprintf(ppath, sizeof ppath, "profiles/%s.profile", profs[i].name);
        cdr_profile *p = NULL;
        if (cdr_profile_load(ppath, &p, err, sizeof err) != CDR_OK)
            fail_msg("%s", err);
        buf f = {0}, c = {0};
        snprintf(dir, sizeof dir, "%s/example/profiles/%s", testdata(), profs[i].name);
        run_month(t, dir, prof_names, p, profs[i].skipped, &f, &c);
        drop_offsets(&f);
        if (strcmp(f.p, f0.p) != 0)
            fail_msg("%s: findings differ from the contract files'", profs[i].name);
        if (strcmp(c.p, c0.p) != 0)
            fail_msg("%s: candidates differ from the contract files'", profs[i].name);
        free(f.p);
        free(c.p);
        cdr_profile_free(p);
    }
    free(f0.p);
    free(c0.p);
    cdr_tariff_free(t);
}

/* ------------------------------------------------------------------ */
/* Conversions                                                          */

static int64_t tm(const char *s)
{
    cdr_time t;
    assert_int_equal(cdr_time_parse(s, strlen(s), &t), CDR_OK);
    return t;
}

static void time_is(const cdr_profile *p, const char *v, const char *tz, const char *want)
{
    cdr_time t = 0;
    int e = cdr_pf_time(p, v, strlen(v), tz, strlen(tz), &t);
    if (!want) {
        if (e == 0)
            fail_msg("'%s' (tz '%s') accepted as %lld", v, tz, (long long)t);
        return;
    }
    if (e != 0)
        fail_msg("'%s' (tz '%s') refused (%d), want %s", v, tz, e, want);
    char got[20];
    cdr_time_format(t, got);
    if (strcmp(got, want) != 0)
        fail_msg("'%s' (tz '%s'): got %s, want %s", v, tz, got, want);
}

static void test_time_formats(void **st)
{
    (void)st;
    cdr_profile *p = parse(MIN_PROFILE "start_time.format = %y%m%d%H%M%S%z\n"
                                       "local_utc_offset = +08:00\n");
    time_is(p, "261001080000+0800", "", "2026-10-01 08:00:00");
    time_is(p, "261001000000+0000", "", "2026-10-01 08:00:00");
    time_is(p, "260930233000+0000", "", "2026-10-01 07:30:00"); /* a day and a month later */
    time_is(p, "261231200000-0500", "", "2027-01-01 09:00:00"); /* a year later */
    time_is(p, "261001080000+08:00", "", "2026-10-01 08:00:00");
    time_is(p, "261001080000Z", "", "2026-10-01 16:00:00");
    time_is(p, "261001080000+08", "", "2026-10-01 08:00:00");
    time_is(p, "240229120000+0800", "", "2024-02-29 12:00:00");
    time_is(p, "250229120000+0800", "", NULL); /* no such day */
    time_is(p, "261301080000+0800", "", NULL);
    time_is(p, "261001240000+0800", "", NULL);
    time_is(p, "261001080000", "", NULL);      /* the offset is part of the pattern */
    time_is(p, "261001080000+0800x", "", NULL);
    time_is(p, "261001080000+1600", "", NULL); /* no such offset */
    time_is(p, "2610010800+0800", "", NULL);
    cdr_profile_free(p);

    p = parse(MIN_PROFILE "start_time.format = %d/%m/%Y %H:%M:%S.%f\n");
    time_is(p, "01/10/2026 08:00:05.123", "", "2026-10-01 08:00:05"); /* fraction dropped */
    time_is(p, "01/10/2026 08:00:05.9", "", "2026-10-01 08:00:05");
    time_is(p, "01/10/2026 08:00:05.", "", NULL);
    time_is(p, "01/10/2026 08:00:05.1/", "", NULL); /* '/' is not a digit of %f */
    time_is(p, "01/10/2026 08:00:05. 1", "", NULL);
    time_is(p, "1/10/2026 08:00:05.1", "", NULL); /* two digits each */
    cdr_profile_free(p);

    p = parse(MIN_PROFILE "start_time.format = %Y%m%d%H%M\n"); /* no seconds: :00 */
    time_is(p, "202610010800", "", "2026-10-01 08:00:00");
    cdr_profile_free(p);

    p = parse(MIN_PROFILE "start_time.format = epoch\nlocal_utc_offset = +08:00\n");
    time_is(p, "0", "", "1970-01-01 08:00:00");
    time_is(p, "1790812800", "", "2026-10-01 08:00:00");
    time_is(p, "-5", "", NULL);
    time_is(p, "17908128x0", "", NULL);
    cdr_profile_free(p);

    p = parse(MIN_PROFILE "start_time.format = epoch_ms\nlocal_utc_offset = -03:30\n");
    time_is(p, "1790812800999", "", "2026-09-30 20:30:00"); /* the second it began in */
    cdr_profile_free(p);

    p = parse("record_id = id\nmsisdn = m\nservice = s\nbilled = b\n"
              "start_time = d & h\nstart_time.format = %Y%m%d %H%M%S\n"
              "start_time.utc_offset = z\nlocal_utc_offset = +08:00\n");
    time_is(p, "20261001 080000", "+08:00", "2026-10-01 08:00:00");
    time_is(p, "20261001 080000", "+0000", "2026-10-01 16:00:00");
    time_is(p, "20261001 080000", "", NULL);
    time_is(p, "20261001 080000", "0800", NULL);
    cdr_profile_free(p);

    /* the contract's own format by default */
    p = parse(MIN_PROFILE);
    time_is(p, "2026-10-01 08:00:00", "", "2026-10-01 08:00:00");
    time_is(p, "2026-10-01T08:00:00", "", "2026-10-01 08:00:00");
    time_is(p, "20261001080000", "", NULL);
    cdr_profile_free(p);
    assert_int_equal(tm("2026-10-01 08:00:00") - tm("2026-10-01 00:00:00"), 8 * 3600);
}

/* The by-position reading of fixed-width patterns gives what walking the
 * pattern's steps gives, on valid values and on every one-byte change. */
static void test_time_fixed_equals_steps(void **st)
{
    (void)st;
    static const struct {
        const char *fmt, *val;
    } pats[] = {
        {"%y%m%d%H%M%S%z", "261001080000+0800"},  {"%y%m%d%H%M%S%z", "240229235959-0330"},
        {"%Y%m%d %H:%M:%S", "20261001 08:00:00"}, {"%Y-%m-%dT%H:%M", "2026-10-01T08:07"},
        {"%d.%m.%Y %H%M%S%z", "31.12.2026 235959Z"}, {"%H:%M:%S %d/%m/%Y", "23:59:59 28/02/2027"},
        {"%Y%m%d%H%M%S%z", "20261001080000+08:00"}, {"%%%Y%m%d%H%M", "%202610010800"},
        {"%y%m%d%H%M", "2610010800"}, {"%Y%m%d%H%M%S", "20261001080000"},
        {"x%Y%m%d-%H%M%S", "x20261001-080000"}, /* a number across two words */
        {"%Y-%m-%d %H:%M:%S", "2026-10-01 08:00:00"},
        {"%Y/%m/%d, %H.%M.%S h%z", "2026/10/01, 08.00.00 h-0230"}, /* 23 bytes + %z */
    };
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
        char text[300];
        snprintf(text, sizeof text, MIN_PROFILE "start_time.format = %s\nlocal_utc_offset = +08:00\n",
                 pats[i].fmt);
        cdr_profile *p = parse(text);
        assert_int_equal(p->tfix, 1);
        /* as words: 8 to 24 bytes before a %z, no number across two words */
        if ((p->tw_n > 0) != (strcmp(pats[i].fmt, "x%Y%m%d-%H%M%S") != 0))
            fail_msg("%s: tw_n %d", pats[i].fmt, p->tw_n);
        /* digits only, year to second (and %z): the two-word reading */
        int want_dig = !strcmp(pats[i].fmt, "%y%m%d%H%M%S%z") ? 12
                       : !strcmp(pats[i].fmt, "%Y%m%d%H%M%S%z") ||
                               !strcmp(pats[i].fmt, "%Y%m%d%H%M%S") ? 14 : 0;
        if (p->tdig != want_dig)
            fail_msg("%s: tdig %d, want %d", pats[i].fmt, p->tdig, want_dig);
        size_t n = strlen(pats[i].val);
        static const char alphabet[] = "0123456789+-:Z /.T%x9";
        for (int round = 0; round < 4000; round++) {
            char v[64];
            memcpy(v, pats[i].val, n + 1);
            size_t vn = n;
            if (round > 0) { /* change, cut or lengthen it */
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % n;
                unsigned what = (seed >> 20) % 8;
                if (what == 0 && vn > 1)
                    vn--;
                else if (what == 1 && vn + 1 < sizeof v)
                    v[vn++] = alphabet[(seed >> 3) % (sizeof alphabet - 1)];
                else
                    v[at] = alphabet[(seed >> 3) % (sizeof alphabet - 1)];
                v[vn] = '\0';
            }
            cdr_time a = 0, b = 0, c = 0, d = 0;
            int ed = cdr_pf_time(p, v, vn, "", 0, &d); /* the digits-only words, when so */
            int dig = p->tdig, words = p->tw_n;
            p->tdig = 0;
            int ea = cdr_pf_time(p, v, vn, "", 0, &a); /* as words, when it can */
            p->tw_n = 0;
            int ec = cdr_pf_time(p, v, vn, "", 0, &c); /* by bytes */
            p->tw_n = words;
            p->tfix = 0;
            int eb = cdr_pf_time(p, v, vn, "", 0, &b); /* by steps */
            p->tfix = 1;
            p->tdig = dig;
            if ((ea == 0) != (eb == 0) || (ea == 0 && a != b) || (ec == 0) != (eb == 0) ||
                (ec == 0 && c != b) || (ed == 0) != (eb == 0) || (ed == 0 && d != b))
                fail_msg("%s '%s': digits %d %lld, as words %d %lld, by bytes %d %lld, by steps "
                         "%d %lld", pats[i].fmt, v, ed, (long long)d, ea, (long long)a, ec,
                         (long long)c, eb, (long long)b);
            if (round == 0)
                assert_int_equal(ea, 0);
        }
        cdr_profile_free(p);
    }
    /* %f and a %z before the end are read by steps */
    cdr_profile *p = parse(MIN_PROFILE "start_time.format = %z %Y%m%d%H%M%S\n"
                                       "local_utc_offset = +08:00\n");
    assert_int_equal(p->tfix, 0);
    time_is(p, "+0000 20261001000000", "", "2026-10-01 08:00:00");
    time_is(p, "+00:00 20261001000000", "", "2026-10-01 08:00:00");
    time_is(p, "-0100 20261001000000", "", "2026-10-01 09:00:00");
    time_is(p, "+0000x20261001000000", "", NULL);
    cdr_profile_free(p);
}

static void money_is(const cdr_profile *p, const char *v, int want_e, cdr_money want)
{
    cdr_money m = -1;
    int e = cdr_pf_money(p, v, strlen(v), &m);
    if (e != want_e || (e == 0 && m != want))
        fail_msg("'%s': got %d %lld, want %d %lld", v, e, (long long)m, want_e, (long long)want);
}

static void test_money_units(void **st)
{
    (void)st;
    cdr_profile *p = parse(MIN_PROFILE "billed.unit = fen\n");
    money_is(p, "38", 0, 380000);
    money_is(p, "0", 0, 0);
    money_is(p, "1", 0, 10000);
    money_is(p, "0.0001", 0, 1); /* one micro-yuan */
    money_is(p, "0.00001", -2, 0); /* finer than a micro-yuan */
    money_is(p, "12.5", 0, 125000);
    money_is(p, "1e2", -1, 0);
    money_is(p, "", -1, 0);
    cdr_profile_free(p);
    p = parse(MIN_PROFILE "billed.unit = jiao\n");
    money_is(p, "3.8", 0, 380000);
    money_is(p, "0.00001", 0, 1);
    money_is(p, "0.000001", -2, 0);
    cdr_profile_free(p);
    p = parse(MIN_PROFILE "billed.unit = yuan\n");
    money_is(p, "0.38", 0, 380000);
    money_is(p, "0.0000001", -2, 0);
    cdr_profile_free(p);
}

static void number_is(const cdr_profile *p, const char *v, const char *want)
{
    cdr_str o;
    int e = cdr_pf_number(p, v, strlen(v), &o);
    if (!want) {
        if (e == 0)
            fail_msg("'%s' accepted as '%.*s'", v, (int)o.n, o.p);
        return;
    }
    if (e != 0 || o.n != strlen(want) || memcmp(o.p, want, o.n) != 0)
        fail_msg("'%s': got %d '%.*s', want '%s'", v, e, e ? 0 : (int)o.n, e ? "" : o.p, want);
}

static void test_numbers(void **st)
{
    (void)st;
    cdr_profile *p = parse(MIN_PROFILE "number.trunk_prefix = 0\n");
    number_is(p, "013800138000", "13800138000");
    number_is(p, "13800138000", "13800138000");
    number_is(p, "8613800138000", "13800138000");     /* the contract's rule still */
    number_is(p, "01012345678", "01012345678");       /* a landline keeps its 0 */
    number_is(p, "075512345678", "075512345678");     /* 0 + 11 digits, not a mobile */
    number_is(p, "0013800138000", "0013800138000");   /* 00 is not the trunk prefix 0 */
    number_is(p, "0x3800138000", NULL);
    cdr_profile_free(p);
    p = parse(MIN_PROFILE "number.country_code = 852\n");
    number_is(p, "85213800138000", "13800138000");
    number_is(p, "+85213800138000", "13800138000");
    number_is(p, "0085213800138000", "13800138000");
    number_is(p, "85212345678", "85212345678");
    cdr_profile_free(p);
}

static void test_type_lookup(void **st)
{
    (void)st;
    cdr_profile *p = parse("record_id = id\nmsisdn = m\nstart_time = t\nbilled = b\n"
                           "record_type = rt\ntype 0 = voice mo\ntype 00 = skip\n"
                           "type 85 = data\ntype \"a b\" = sms mt\n");
    assert_int_equal(p->type_by_word, 1);
    const pf_type *t = cdr_pf_type(p, "0", 1);
    assert_non_null(t);
    assert_int_equal(t->service, CDR_SVC_VOICE);
    assert_int_equal(t->direction, CDR_DIR_MO);
    assert_int_equal(cdr_pf_type(p, "00", 2)->skip, 1);
    assert_int_equal(cdr_pf_type(p, "85", 2)->direction, -1);
    assert_int_equal(cdr_pf_type(p, "a b", 3)->direction, CDR_DIR_MT);
    assert_null(cdr_pf_type(p, "8", 1));
    assert_null(cdr_pf_type(p, "850", 3));
    assert_null(cdr_pf_type(p, "", 0));
    assert_null(cdr_pf_type(p, "000000000", 9));
    cdr_profile_free(p);
    /* a key longer than a word: compared byte for byte */
    p = parse("record_id = id\nmsisdn = m\nstart_time = t\nbilled = b\n"
              "record_type = rt\ntype moCallRecord = voice mo\ntype mtCallRecord = voice mt\n");
    assert_int_equal(p->type_by_word, 0);
    assert_int_equal(cdr_pf_type(p, "mtCallRecord", 12)->direction, CDR_DIR_MT);
    assert_null(cdr_pf_type(p, "moCallRecorD", 12));
    cdr_profile_free(p);
}

/* ------------------------------------------------------------------ */
/* Reading through a profile                                            */

static int t_row(const cdr_row *r, void *u)
{
    buf *b = u;
    char t[20], m[32];
    cdr_time_format(r->start, t);
    cdr_money_format(r->billed, 2, m);
    bprintf(b, "R %llu %.*s %.*s %s %s %.*s %s dur%lld by%lld ch%lld %s", (unsigned long long)r->line,
            (int)r->record_id.n, r->record_id.p, (int)r->msisdn.n, r->msisdn.p,
            cdr_service_name(r->service), cdr_direction_name(r->direction), (int)r->peer.n,
            r->peer.p, t, (long long)r->duration_s, (long long)r->bytes,
            (long long)r->sms_chars, m);
    for (uint32_t i = 0; i < r->n_extra; i++)
        bprintf(b, " %.*s=%.*s", (int)r->extra_names[i].n, r->extra_names[i].p,
                (int)r->extra[i].n, r->extra[i].p);
    bput(b, "\n", 1);
    return 0;
}

static int t_rej(const cdr_reject *j, void *u)
{
    bprintf(u, "J %llu %s\n", (unsigned long long)j->line, j->reason);
    return 0;
}

static int t_skip(const cdr_reject *j, void *u)
{
    bprintf(u, "S %llu %s\n", (unsigned long long)j->line, j->reason);
    return 0;
}

/* Read data through the profile text; the transcript, and the counts. */
static void read_through(const char *ptext, const char *data, buf *out, cdr_file_stats *st)
{
    cdr_profile *p = parse(ptext);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cdrprofXXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.profile = p;
    o.on_skip = t_skip;
    bput(out, "", 0);
    cdr_read_file(path, 0, &o, t_row, t_rej, out, st);
    assert_int_equal(st->rows_read, st->rows_accepted + st->rows_rejected + st->rows_skipped);
    unlink(path);
    cdr_profile_free(p);
}

static void has(const buf *b, const char *want)
{
    if (!strstr(b->p, want))
        fail_msg("missing:\n%s\nin:\n%s", want, b->p);
}

static const char *const P3GPP =
    "separator = ,\nrecord_type = recordType\ntype 0 = voice mo\ntype 1 = voice mt\n"
    "type 85 = data\ntype 84 = skip\nrecord_id = id\nmsisdn = servedMSISDN\nimsi = servedIMSI\n"
    "number.imsi_prefix = 460\npeer = otherParty | apn\nstart_time = recordOpeningTime\n"
    "start_time.format = %y%m%d%H%M%S%z\nlocal_utc_offset = +08:00\nduration_s = duration\n"
    "bytes = up + down\nbilled = charge\n";

static void test_read_3gpp_style(void **st)
{
    (void)st;
    buf b = {0};
    cdr_file_stats s;
    read_through(P3GPP,
                 "recordType,id,servedMSISDN,servedIMSI,otherParty,apn,recordOpeningTime,"
                 "duration,up,down,charge,cell\n"
                 "0,r1,8613800138000,460001234567890,10086,,261001080000+0800,61,,,0.38,c1\n"
                 "85,r2,13800138000,,,cmnet,260930200000+0000,,100,24,0.01,c2\n"
                 "84,sgw copy with fewer fields\n"
                 "0,r3,,460001234567890,10086,,261001080000+0800,61,,,0.38,c3\n"
                 "0,r4,460001234567890,,10086,,261001080000+0800,61,,,0.38,c4\n"
                 "9,r5,13800138000,,10086,,261001080000+0800,61,,,0.38,c5\n"
                 "85,r6,13800138000,,,cmnet,261001080000+0800,,x,24,0.01,c6\n"
                 "85,r7,13800138000,,,cmnet,261001080000+0800,,1,,0.01,c7\n"
                 "1,r8,13800138000,,,,261001080000+0800,61,,,0.00,c8\n"
                 "0,r9,13800138000,,10086,,261001080000+0900,61,,,0.38,c9\n",
                 &b, &s);
    has(&b, "R 2 r1 13800138000 voice mo 10086 2026-10-01 08:00:00 dur61 by-1 ch-1 0.38 "
            "cell=c1\n");
    has(&b, "R 3 r2 13800138000 data mo cmnet 2026-10-01 04:00:00 dur-1 by124 ch-1 0.01");
    has(&b, "S 4 skipped: record type '84' (a type the profile skips)\n");
    has(&b, "J 5 missing msisdn '' in column servedMSISDN (an IMSI-only record: servedIMSI "
            "'460001234567890')\n");
    has(&b, "J 6 bad msisdn '460001234567890' in column servedMSISDN (an IMSI, not a phone "
            "number)\n");
    has(&b, "J 7 bad record_type '9' in column recordType (no type line for it in the "
            "profile)\n");
    has(&b, "J 8 bad bytes 'x' in column up (not a whole number >= 0)\n");
    has(&b, "J 9 missing bytes '' in column down (required for data)\n");
    has(&b, "J 10 missing peer '' in column otherParty (required for voice)\n");
    has(&b, "R 11 r9 13800138000 voice mo 10086 2026-10-01 07:00:00");
    assert_int_equal(s.rows_read, 10);
    assert_int_equal(s.rows_accepted, 3);
    assert_int_equal(s.rows_skipped, 1);
    assert_int_equal(s.rows_rejected, 6);
    free(b.p);

    /* a named column missing from the header fails the file before any row */
    buf b2 = {0};
    read_through(P3GPP, "recordType,id,servedMSISDN\n0,r1,13800138000\n", &b2, &s);
    assert_int_equal(s.status, CDR_E_HEADER);
    assert_int_equal(s.rows_read, 0);
    if (!strstr(s.message, "header lacks column(s) named by profile t.profile: 'otherParty' "
                           "(line 11), 'apn' (line 11), 'recordOpeningTime' (line 12)") ||
        !strstr(s.message, "'servedIMSI' (line 9)"))
        fail_msg("%s", s.message);
    free(b2.p);
}

static const char *const PPIPE =
    "separator = |\nquote = none\nheader = no\ncolumns = 7\nrecord_type = $1\n"
    "type 00 = skip\ntype 99 = skip\ntype 10 = voice mo\ntype 30 = data mo\n"
    "record_id = $2\nmsisdn = $3\npeer = $4\nstart_time = $5\nstart_time.format = %Y%m%d%H%M%S\n"
    "duration_s = $6\nduration_s.unit = ms\nbytes = $6\nbytes.unit = KB\nbilled = $7\n"
    "billed.unit = fen\nnumber.trunk_prefix = 0\nskip_prefix = #\n";

static void test_read_headerless_units(void **st)
{
    (void)st;
    buf b = {0};
    cdr_file_stats s;
    read_through(PPIPE,
                 "00|header record\n"
                 "10|r1|013800138000|013900139000|20261001080000|1|38\n"
                 "10|r2|13800138000|10086|20261001080000|1000|38\n"
                 "10|r3|13800138000|10086|20261001080000|1001|38\n"
                 "10|r4|13800138000|10086|20261001080000|0|0\n"
                 "30|r5|13800138000|cm\"net|20261001080000|3|12.5\n"
                 "10|r6|13800138000|10086|20261001080000|1|38|extra\n"
                 "10|r7|13800138000|10086|20261001080000|1|0.00001\n"
                 "# a comment line the profile skips\n"
                 "\n"
                 "99|7\n",
                 &b, &s);
    has(&b, "S 1 skipped: record type '00' (a type the profile skips)\n");
    has(&b, "R 2 r1 13800138000 voice mo 13900139000 2026-10-01 08:00:00 dur1 by-1 ch-1 0.38\n");
    has(&b, "R 3 r2 13800138000 voice mo 10086 2026-10-01 08:00:00 dur1 ");
    has(&b, "R 4 r3 13800138000 voice mo 10086 2026-10-01 08:00:00 dur2 ");
    has(&b, "R 5 r4 13800138000 voice mo 10086 2026-10-01 08:00:00 dur0 by-1 ch-1 0.00\n");
    has(&b, "R 6 r5 13800138000 data mo cm\"net 2026-10-01 08:00:00 dur-1 by3072 ch-1 0.125\n");
    has(&b, "J 7 8 fields, the profile says 7\n");
    has(&b, "J 8 billed out of range '0.00001' in column $7 (finer than a micro-yuan, or too "
            "large: fen)\n");
    has(&b, "S 9 skipped: the line starts with '#' (skip_prefix)\n");
    has(&b, "S 11 skipped: record type '99' (a type the profile skips)\n");
    assert_int_equal(s.rows_read, 10);
    assert_int_equal(s.rows_skipped, 3);
    assert_int_equal(s.rows_accepted, 5);
    assert_int_equal(s.blank_lines, 1);
    free(b.p);
}

static void test_read_pair_and_constants(void **st)
{
    (void)st;
    buf b = {0};
    cdr_file_stats s;
    read_through("separator = ;\nrecord_id = ID\nmsisdn = A\npeer = B\nservice = \"voice\"\n"
                 "direction = DIR?\nstart_time = D & T\nstart_time.format = %Y%m%d %H:%M:%S\n"
                 "duration_s = S1 + S2\nbilled = F\nbilled.unit = jiao\n",
                 "ID;A;B;D;T;S1;S2;F;x\n"
                 "r1;13800138000;10086;20261001;08:00:00;1;2;3.8;y\n"
                 "r2;13800138000;10086;20261001;;1;2;3.8;y\n"
                 "r3;13800138000;10086;;;1;2;3.8;y\n"
                 "r4;13800138000;10086;20261001;25:00:00;1;2;3.8;y\n"
                 "\"r;5\";13800138000;10086;20261001;08:00:00;1;2;-1;y\n",
                 &b, &s);
    has(&b, "R 2 r1 13800138000 voice mo 10086 2026-10-01 08:00:00 dur3 by-1 ch-1 0.38 x=y\n");
    has(&b, "J 3 bad start_time '20261001 ' in column D (expected %Y%m%d %H:%M:%S)\n");
    has(&b, "J 4 missing start_time '' in column D\n");
    has(&b, "J 5 bad start_time '20261001 25:00:00' in column D");
    has(&b, "J 6 negative billed '-1' in column F\n");
    free(b.p);
}

/* The contract's hostile-input rules hold through a profile too (issue 14):
 * usage within what rating computes, after the unit (10^9 s, 10^9
 * characters, 10^15 bytes), and no control bytes in the ids. */
static void test_read_limits_and_ids(void **st)
{
    (void)st;
    buf b = {0};
    cdr_file_stats s;
    read_through("separator = ;\nrecord_id = ID\nmsisdn = A\npeer = B | APN\nservice = SVC\n"
                 "start_time = T\nduration_s = MS\nduration_s.unit = ms\nsms_chars = C1 + C2\n"
                 "bytes = KB\nbytes.unit = KB\ncall_id = CALL?\nsms_ref = REF?\nbilled = F\n",
                 "ID;A;B;APN;SVC;T;MS;C1;C2;KB;CALL;REF;F\n"
                 "r1;13800138000;10086;;voice;2026-10-01 08:00:00;1000000000000;;;;;;0.1\n"
                 "r2;13800138000;10086;;voice;2026-10-01 08:00:00;1000000000001;;;;;;0.1\n"
                 "r3;13800138000;10086;;sms;2026-10-01 08:00:00;;999999999;1;;;;0.1\n"
                 "r4;13800138000;10086;;sms;2026-10-01 08:00:00;;999999999;2;;;;0.1\n"
                 "r5;13800138000;;cmnet;data;2026-10-01 08:00:00;;;;976562500000;;;0.1\n"
                 "r6;13800138000;;cmnet;data;2026-10-01 08:00:00;;;;976562500001;;;0.1\n"
                 "r\a7;13800138000;10086;;voice;2026-10-01 08:00:00;1000;;;;;;0.1\n"
                 "r8;13800138000;10086;;voice;2026-10-01 08:00:00;1000;;;;c\x1b;;0.1\n"
                 "r9;13800138000;10086;;sms;2026-10-01 08:00:00;;1;1;;;\x7f;0.1\n",
                 &b, &s);
    has(&b, "R 2 r1 13800138000 voice mo 10086 2026-10-01 08:00:00 dur1000000000 ");
    has(&b, "J 3 duration_s out of range '1000000000001' in column MS (above 10^9 s)\n");
    has(&b, "R 4 r3 13800138000 sms mo 10086 2026-10-01 08:00:00 dur-1 by-1 ch1000000000 ");
    has(&b, "J 5 sms_chars out of range '2' in column C2 (the sum is above 10^9)\n");
    has(&b, "R 6 r5 13800138000 data mo cmnet 2026-10-01 08:00:00 dur-1 by1000000000000000 ");
    has(&b, "J 7 bytes out of range '976562500001' in column KB (KB: above 10^15 bytes)\n");
    has(&b, "J 8 bad record_id 'r\\x077' in column ID (control character)\n");
    has(&b, "J 9 bad call_id 'c\\x1B' in column CALL (control character)\n");
    has(&b, "J 10 bad sms_ref '\\x7F' in column REF (control character)\n");
    assert_int_equal(s.rows_accepted, 3);
    assert_int_equal(s.rows_rejected, 6);
    free(b.p);
}

/* profiles/contract.profile reads the contract's files as the reader does
 * without a profile (more inputs: test_reader.c). */
static void test_contract_profile_file(void **st)
{
    (void)st;
    cdr_profile *p = NULL;
    char err[600];
    if (cdr_profile_load("profiles/contract.profile", &p, err, sizeof err) != CDR_OK)
        fail_msg("%s", err);
    char path[1024];
    snprintf(path, sizeof path, "%s/example/bad/cdr-2026-10-bad.csv", testdata());
    buf a = {0}, b = {0};
    cdr_file_stats sa, sb;
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    bput(&a, "", 0);
    bput(&b, "", 0);
    cdr_read_file(path, 0, &o, t_row, t_rej, &a, &sa);
    o.profile = p;
    cdr_read_file(path, 0, &o, t_row, t_rej, &b, &sb);
    assert_true(sa.rows_rejected > 10 && sa.rows_accepted > 1000);
    assert_string_equal(a.p, b.p);
    assert_int_equal(sa.rows_read, sb.rows_read);
    assert_int_equal(sb.rows_skipped, 0);
    free(a.p);
    free(b.p);
    cdr_profile_free(p);
}

/* ------------------------------------------------------------------ */
/* Refusals (the rest: testdata/profile-bad)                           */

static void test_refusals(void **st)
{
    (void)st;
    expect_refused("msisdn = m\nservice = s\nstart_time = t\nbilled = b\n",
                   "t.profile: record_id is not mapped");
    expect_refused(MIN_PROFILE "msisnd = x\n", "t.profile:6: unknown key 'msisnd'");
    expect_refused(MIN_PROFILE "msisdn = y\n", "t.profile:6: msisdn is given twice (first at line 2)");
    expect_refused(MIN_PROFILE "peer = a +\n", "t.profile:6: peer: a column is missing after '+'");
    expect_refused(MIN_PROFILE "peer = a + b\n", "peer: a sum (+) is only for");
    expect_refused(MIN_PROFILE "bytes = a + b | c\n", "bytes: '+' and '|' mixed");
    expect_refused(MIN_PROFILE "start_time.format = %Y-%m-%d %H:%q\n",
                   "t.profile:6: start_time.format: unknown code '%q'");
    expect_refused(MIN_PROFILE "start_time.format = %Y-%m %H:%M\n", "lacks a year, month, day");
    expect_refused(MIN_PROFILE "start_time.format = %Y%m%d%H%M%S%z\n",
                   "t.profile:6: start_time is in UTC or carries a UTC offset: declare");
    expect_refused(MIN_PROFILE "header = no\ncolumns = 5\n", "column 'id' by name, but the profile "
                                                           "says header = no");
    expect_refused(MIN_PROFILE "separator = :\n", "separator: ':' is not one of , | ; tab");
    expect_refused(MIN_PROFILE "service = \"fax\"\n", "service is given twice");
    expect_refused("record_id = id\nmsisdn = m\nservice = \"fax\"\nstart_time = t\nbilled = b\n",
                   "t.profile:3: service: the constant \"fax\" is not a valid service");
    expect_refused(MIN_PROFILE "record_type = rt\ntype 1 = voice\n",
                   "service and record_type are both given");
    expect_refused("record_id = id\nmsisdn = m\nstart_time = t\nbilled = b\nrecord_type = rt\n"
                   "type 1 = fax\n", "t.profile:6: type '1': 'fax' is not voice");
    expect_refused("record_id = id\nmsisdn = m\nstart_time = t\nbilled = b\nrecord_type = rt\n"
                   "type 1 = skip\n", "every type line says skip");
    expect_refused(MIN_PROFILE "this line has no equals sign\n", "t.profile:6: 'this line has no");
    expect_refused(MIN_PROFILE "direction = [unterminated\n", "unterminated [column name]");
    expect_refused(MIN_PROFILE "duration_s = $0\n", "bad column index '$0'");
    expect_refused(MIN_PROFILE "billed.unit = cent\n", "billed.unit: 'cent' is not yuan, jiao or fen");
    const char nul[] = "record_id = id\0\n";
    cdr_profile *p = NULL;
    char err[300];
    assert_int_equal(cdr_profile_parse(nul, sizeof nul - 1, "n", &p, err, sizeof err),
                     CDR_E_PROFILE);
    assert_non_null(strstr(err, "NUL byte"));
    assert_int_equal(cdr_profile_load("/nonexistent/x.profile", &p, err, sizeof err), CDR_E_IO);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_month_every_profile),
        cmocka_unit_test(test_time_formats),
        cmocka_unit_test(test_time_fixed_equals_steps),
        cmocka_unit_test(test_money_units),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_type_lookup),
        cmocka_unit_test(test_read_3gpp_style),
        cmocka_unit_test(test_read_headerless_units),
        cmocka_unit_test(test_read_pair_and_constants),
        cmocka_unit_test(test_read_limits_and_ids),
        cmocka_unit_test(test_contract_profile_file),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
