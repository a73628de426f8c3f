/* Unit tests: the canonical record row. cdr_stmt_rated_write (rendered in
 * place, the `rate` hot path) must give the same bytes as the reference,
 * cdr_stmt_rec_from_rated + cdr_stmt_rec_write (cell by cell), on hostile
 * records; and the memory writer must give the same bytes as the stdio one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/outcsv.h"
#include "cdrecon/statement.h"
#include "cdrecon/tariff.h"
#include "tariff_int.h"

#include "testrnd.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* Bytes that matter to CSV and spreadsheets, and some that do not. */
static const char hostile[] = ",\"\r\n=+-@\t';:= a0Z9\xe4\xb8\xad";

static size_t fill(char *buf, size_t max)
{
    size_t n = trnd_below(&rng, max + 1);
    int kind = (int)trnd_below(&rng, 4);
    for (size_t i = 0; i < n; i++) {
        if (kind == 0)
            buf[i] = (char)('0' + trnd_below(&rng, 10)); /* plain digits */
        else if (kind == 3 && trnd_below(&rng, 40) == 0)
            buf[i] = '\0'; /* cut here by the reference's C strings */
        else
            buf[i] = hostile[trnd_below(&rng, sizeof hostile - 1)];
    }
    buf[n] = '\0';
    return n;
}

typedef struct fixture {
    cdr_tariff t;
    cdr_plan plans[3];
    char *bands[4];
    char *pools[2];
    cdr_rate rate;
    char names[10][320];
} fixture;

static void make_tariff(fixture *f)
{
    memset(f, 0, sizeof *f);
    static const char *const fixed[] = {"basic", "=HYPERLINK(\"x\")", "a,b", "peak",
                                        "off\"peak", "-night", "data_pool", "@voice\r\n"};
    for (int i = 0; i < 8; i++)
        snprintf(f->names[i], sizeof f->names[i], "%s", fixed[i]);
    /* a band name longer than the reference's 255-byte band buffer */
    memset(f->names[8], 'B', 300);
    f->names[8][300] = '\0';
    memset(f->names[9], ',', 100);
    f->names[9][100] = '\0';
    for (int i = 0; i < 3; i++)
        f->plans[i].name = f->names[i];
    f->bands[0] = f->names[3];
    f->bands[1] = f->names[4];
    f->bands[2] = f->names[8];
    f->bands[3] = f->names[9];
    f->pools[0] = f->names[6];
    f->pools[1] = f->names[7];
    f->t.plans = f->plans;
    f->t.n_plans = 3;
    f->t.band_names = f->bands;
    f->t.n_band_names = 4;
    f->t.pool_names = f->pools;
    f->t.n_pool_names = 2;
    f->rate.line = 17;
    f->rate.price = 190000;
    f->rate.unit = 60;
    f->rate.increment = 60;
}

static int64_t any_i64(void)
{
    switch (trnd_below(&rng, 10)) {
    case 9: { /* every width: a value of 1 to 19 digits */
        uint64_t p = 1;
        for (uint64_t k = trnd_below(&rng, 19); k; k--)
            p *= 10;
        return (int64_t)(p + trnd_below(&rng, p * 9));
    }
    case 6: /* whole fen (the money writer's short path), either sign */
        return (int64_t)trnd_below(&rng, 100000000) * 10000 * (trnd_below(&rng, 2) ? 1 : -1);
    case 7: { /* the extremes, as they are and cut to whole fen */
        static const int64_t ext[] = {INT64_MIN, INT64_MAX, INT64_MIN / 10000 * 10000,
                                      INT64_MAX / 10000 * 10000, -10000, 10000, 5000, -5000};
        return ext[trnd_below(&rng, sizeof ext / sizeof *ext)];
    }
    case 8:
        return (int64_t)trnd_below(&rng, 1000) * 10000 + (int64_t)trnd_below(&rng, 2) * 5000;
    case 0:
        return -1;
    case 1:
        return 0;
    case 2:
        return (int64_t)trnd_below(&rng, 100);
    case 3:
        return (int64_t)trnd_below(&rng, 10000000000ull);
    case 4:
        return -(int64_t)trnd_below(&rng, 1000000000);
    default:
        return (int64_t)(trnd64(&rng) >> 1) * (trnd_below(&rng, 2) ? 1 : -1);
    }
}

/* strings referenced by the record live here */
typedef struct bufs {
    char id[40], msisdn[40], peer[40], dup[40], call[40], ref[40], expl[200], unr[80];
    char ex_names[3][24], ex_vals[3][24];
    cdr_str ex[3], ex_n[3];
} bufs;

static void make_record(const fixture *f, bufs *b, cdr_rated *r)
{
    memset(r, 0, sizeof *r);
    cdr_row *row = &r->row;
    row->record_id = (cdr_str){b->id, fill(b->id, 30)};
    row->msisdn = (cdr_str){b->msisdn, fill(b->msisdn, 15)};
    row->peer = (cdr_str){b->peer, fill(b->peer, 30)};
    row->call_id = (cdr_str){b->call, fill(b->call, 20)};
    row->sms_ref = (cdr_str){b->ref, fill(b->ref, 10)};
    row->service = (cdr_service)trnd_below(&rng, CDR_SVC__COUNT);
    row->direction = (cdr_direction)trnd_below(&rng, 2);
    /* usually inside its bill month; sometimes not, or before 1970 */
    cdr_month mo = (cdr_month)(2026 * 12 + 9);
    switch (trnd_below(&rng, 8)) {
    case 0:
        mo = (cdr_month)(1900 * 12 + trnd_below(&rng, 2000 * 12));
        break;
    case 1:
        mo = (cdr_month)(1960 * 12 + trnd_below(&rng, 24));
        break;
    default:
        break;
    }
    r->month = mo;
    cdr_time m0 = cdr_month_start(mo), m1 = cdr_month_start(mo + 1);
    row->start = trnd_below(&rng, 10) ? m0 + (cdr_time)trnd_below(&rng, (uint64_t)(m1 - m0))
                           : m0 - 86400 * 40 + (cdr_time)trnd_below(&rng, 86400 * 80);
    row->duration_s = any_i64();
    row->bytes = any_i64();
    row->sms_chars = any_i64();
    row->sms_part = (int32_t)trnd_below(&rng, 5) - 1;
    row->sms_parts = (int32_t)trnd_below(&rng, 5);
    row->partial_seq = any_i64();
    row->billed = any_i64();
    row->line = trnd_below(&rng, 2) ? trnd_below(&rng, 1000) : trnd64(&rng);
    row->offset = trnd_below(&rng, 2) ? trnd_below(&rng, 100000) : trnd64(&rng);
    row->n_extra = (uint32_t)trnd_below(&rng, 4);
    for (uint32_t i = 0; i < row->n_extra; i++) {
        b->ex_n[i] = (cdr_str){b->ex_names[i], fill(b->ex_names[i], 12)};
        b->ex[i] = (cdr_str){b->ex_vals[i], fill(b->ex_vals[i], 12)};
    }
    row->extra = b->ex;
    row->extra_names = b->ex_n;

    r->status = (cdr_rec_status)trnd_below(&rng, CDR_RS__COUNT);
    r->plan = (int32_t)trnd_below(&rng, 4) - 1;
    cdr_rate_out *ro = &r->rating;
    ro->rate = trnd_below(&rng, 5) ? &f->rate : NULL;
    ro->band = (int32_t)trnd_below(&rng, 5) - 1;
    ro->billable = any_i64();
    ro->covered = any_i64();
    ro->pool = (int32_t)trnd_below(&rng, 3) - 1;
    ro->discount_micro = trnd_below(&rng, 2) ? 0 : any_i64();
    ro->n_pieces = trnd_below(&rng, 3) ? 1 : (int)trnd_below(&rng, CDR_RATE_MAX_PIECES + 1);
    for (int i = 0; i < ro->n_pieces; i++) {
        ro->pieces[i].band = (int32_t)trnd_below(&rng, 5) - 1;
        ro->pieces[i].units = any_i64();
    }
    r->rebuilt = any_i64();
    r->cmp_billed = any_i64();
    r->pool_after = any_i64();
    r->usage = any_i64();
    r->n_parts = (uint32_t)trnd_below(&rng, 4);
    if (trnd_below(&rng, 3) == 0)
        r->dup_of = (cdr_str){b->dup, fill(b->dup, 30)};
    r->has_finding = trnd_below(&rng, 3) == 0;
    if (r->has_finding) {
        r->finding.category = (cdr_category)trnd_below(&rng, CDR_CAT__COUNT);
        r->finding.flags = (unsigned)trnd_below(&rng, 4);
        fill(b->expl, 150);
        r->finding.explanation = b->expl;
    }
    if (trnd_below(&rng, 2)) {
        fill(b->unr, 60);
        r->unrated = b->unr;
    }
}

/* Both writers into memory, row by row. */
static void test_rated_write_matches_reference(void **st)
{
    (void)st;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    make_tariff(f);
    cdr_csvw *fast, *ref;
    assert_int_equal(cdr_csvw_open_memory(&fast), CDR_OK);
    assert_int_equal(cdr_csvw_open_memory(&ref), CDR_OK);
    static const char *const files[] = {"cdr-a.csv", "=evil,\"file\".csv", "", NULL};
    int quoted = 0, guarded = 0, split = 0, truncated = 0, with_ix = 0;
    uint64_t rows = 0;
    /* as loaded tariffs have it: the names as cells rendered beforehand
     * (half the records), and the file column as a cell (a quarter) */
    cdr_tariff_index *ix = calloc(1, sizeof *ix);
    assert_non_null(ix);
    assert_int_equal(cdr_tariff_index_names(&f->t, ix), 0);
    for (int i = 0; i < 200000; i++) {
        bufs b;
        cdr_rated r;
        make_record(f, &b, &r);
        const char *file = files[trnd_below(&rng, 4)];
        cdr_csvw_memory_reset(fast);
        cdr_csvw_memory_reset(ref);
        f->t.ix = trnd_below(&rng, 2) ? ix : NULL;
        with_ix += f->t.ix != NULL;
        if (file && trnd_below(&rng, 2)) {
            size_t cn;
            char *cell = cdr_stmt_file_cell(file, strlen(file), &cn);
            assert_non_null(cell);
            assert_int_equal(cdr_stmt_rated_write_cell(fast, &r, &f->t, cell, cn), CDR_OK);
            free(cell);
        } else {
            assert_int_equal(cdr_stmt_rated_write(fast, &r, &f->t, file), CDR_OK);
        }
        f->t.ix = NULL;
        cdr_stmt_rec rec;
        assert_int_equal(cdr_stmt_rec_from_rated(&r, &f->t, file, &rec), CDR_OK);
        assert_int_equal(cdr_stmt_rec_write(ref, &rec), CDR_OK);
        cdr_stmt_rec_clear(&rec);
        size_t na, nb;
        const char *a = cdr_csvw_memory(fast, &na), *bb = cdr_csvw_memory(ref, &nb);
        if (na != nb || memcmp(a, bb, na) != 0) {
            fprintf(stderr, "record %d differs:\nfast: %.*s\nref:  %.*s\n", i, (int)na, a,
                    (int)nb, bb);
            fail();
        }
        quoted += memchr(a, '"', na) != NULL;
        guarded += memchr(a, '\'', na) != NULL;
        split += r.rating.n_pieces > 1 && r.rating.rate &&
                 (r.status == CDR_RS_RATED || r.status == CDR_RS_PARTIAL_FIRST);
        truncated += na > 255 && memmem(a, na, f->names[8], 200) != NULL;
        rows += cdr_csvw_rows(fast); /* one a record (the reset empties the count) */
    }
    /* the hostile cases were really exercised */
    assert_true(quoted > 1000);
    assert_true(guarded > 1000);
    assert_true(split > 1000);
    assert_true(truncated > 100);
    assert_int_equal(rows, 200000);
    assert_true(with_ix > 90000);
    cdr_tariff_index_names_free(ix);
    free(ix);
    cdr_csvw_free(fast);
    cdr_csvw_free(ref);
    free(f);
}

/* The in-place row into a stream writer: the same bytes as into memory. */
static void test_rated_write_stream(void **st)
{
    (void)st;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    make_tariff(f);
    FILE *fp = tmpfile();
    assert_non_null(fp);
    cdr_csvw *sw, *mw;
    assert_int_equal(cdr_csvw_open_stream(fp, "tmp", &sw), CDR_OK);
    assert_int_equal(cdr_csvw_open_memory(&mw), CDR_OK);
    for (int i = 0; i < 2000; i++) {
        bufs b;
        cdr_rated r;
        make_record(f, &b, &r);
        assert_int_equal(cdr_stmt_rated_write(sw, &r, &f->t, "f.csv"), CDR_OK);
        assert_int_equal(cdr_stmt_rated_write(mw, &r, &f->t, "f.csv"), CDR_OK);
    }
    assert_int_equal(cdr_csvw_commit(sw), CDR_OK);
    assert_int_equal(cdr_csvw_rows(sw), 2000);
    size_t n;
    const char *m = cdr_csvw_memory(mw, &n);
    long sz = ftell(fp);
    assert_int_equal((size_t)sz, n);
    char *got = malloc(n + 1);
    assert_non_null(got);
    rewind(fp);
    assert_int_equal(fread(got, 1, n, fp), n);
    assert_memory_equal(got, m, n);
    free(got);
    cdr_csvw_free(sw);
    cdr_csvw_free(mw);
    fclose(fp);
    free(f);
}

/* A whole row may not start inside an open row; the error is sticky. */
static void test_row_begin_inside_row(void **st)
{
    (void)st;
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open_memory(&w), CDR_OK);
    cdr_csvw_textz(w, "x");
    assert_null(cdr_csvw_row_begin(w, 64));
    assert_int_equal(cdr_csvw_status(w), CDR_E_INTERNAL);
    assert_int_equal(cdr_csvw_end_row(w), CDR_E_INTERNAL);
    cdr_csvw_free(w);
}

/* Hostile cells: the memory writer and the stdio writer agree byte for byte. */
static void test_memory_matches_stdio(void **st)
{
    (void)st;
    static const char *const cells[] = {
        "",       "plain",   "a,b",   "say \"hi\"", "line\nbreak", "cr\rhere", "=SUM(A1)",
        "+1",     "-0.37",   "@cmd",  "\tTAB",      "\rCR",        "'quoted", "''",
        "=a,\"b\"", "\"",    ",",     "-",          "'",           "x=y;z=w", "\xe4\xb8\xad"};
    FILE *fp = tmpfile();
    assert_non_null(fp);
    cdr_csvw *sw, *mw;
    assert_int_equal(cdr_csvw_open_stream(fp, "tmp", &sw), CDR_OK);
    assert_int_equal(cdr_csvw_open_memory(&mw), CDR_OK);
    for (size_t i = 0; i < sizeof cells / sizeof *cells; i++) {
        for (int k = 0; k < 2; k++) {
            cdr_csvw *w = k ? mw : sw;
            cdr_csvw_textz(w, cells[i]);
            cdr_csvw_num(w, cells[i], strlen(cells[i]));
            cdr_csvw_text(w, "a\0b,", 4); /* explicit length: the NUL is kept */
            cdr_csvw_money(w, -370000);
            cdr_csvw_i64(w, INT64_MIN);
            cdr_csvw_u64(w, UINT64_MAX);
            assert_int_equal(cdr_csvw_end_row(w), CDR_OK);
        }
    }
    assert_int_equal(cdr_csvw_commit(sw), CDR_OK);
    size_t n;
    const char *m = cdr_csvw_memory(mw, &n);
    assert_int_equal((size_t)ftell(fp), n);
    char *got = malloc(n);
    assert_non_null(got);
    rewind(fp);
    assert_int_equal(fread(got, 1, n, fp), n);
    assert_memory_equal(got, m, n);
    /* and a few exact cells, so both cannot be wrong the same way */
#define HAS(lit) assert_non_null(memmem(m, n, lit, sizeof lit - 1))
    HAS("\"'=a,\"\"b\"\"\",\"=a,\"\"b\"\"\",");
    HAS("\n'-0.37,-0.37,");
    HAS("\n'\tTAB,\tTAB,");
    HAS("\n\"'\rCR\",\"\rCR\",");
    HAS("\n''quoted,'quoted,");
    HAS("\"a\0b,\",-0.37,-9223372036854775808,18446744073709551615\n");
#undef HAS
    free(got);
    cdr_csvw_free(sw);
    cdr_csvw_free(mw);
    fclose(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rated_write_matches_reference),
        cmocka_unit_test(test_rated_write_stream),
        cmocka_unit_test(test_row_begin_inside_row),
        cmocka_unit_test(test_memory_matches_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
