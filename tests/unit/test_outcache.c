/* Unit tests: the month's outputs cache (src/output/outcache.c) on its own.
 * A file built from rows, merged with a delta of each kind of news (rows
 * added after the stored ones, replaced from a seq on, replaced whole, a new
 * subscriber-month, a candidate replaced or withdrawn) gives exactly the rows
 * expected, in the outputs' order across two months, and writes the next
 * file, which reads back the same; a file of another token, a damaged file,
 * an unknown month and a delta out of order are refused before any row is
 * handed over (CDR_E_NOTFOUND: the caller reads the database instead). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/outcache.h"

static const char TOK1[] = "0123456789abcdef0123456789abcdef";
static const char TOK2[] = "fedcba9876543210fedcba9876543210";
enum { M9 = 2026 * 12 + 8, M10 = 2026 * 12 + 9 }; /* (any two month numbers) */

typedef struct got {
    char text[8192];
    size_t n;
    int rows;
    int64_t sum1; /* findings: the differences; candidates: the refunds */
} got;

static int collect(const cdr_oc_row *r, void *user)
{
    got *g = user;
    char line[256];
    int k = snprintf(line, sizeof line, "%d %.*s ", r->section, (int)r->len, r->text);
    assert_true(k > 0 && g->n + (size_t)k < sizeof g->text);
    memcpy(g->text + g->n, line, (size_t)k + 1);
    g->n += (size_t)k;
    g->rows++;
    g->sum1 += r->section == CDR_OC_CANDIDATES ? r->num[4] : r->num[1];
    return 0;
}

static cdr_str S(const char *s)
{
    return (cdr_str){s, strlen(s)};
}

static void row(cdr_oc_build *b, int s, uint64_t h, const char *ms, cdr_month m, uint64_t seq,
                const char *text, int64_t v)
{
    int64_t num[CDR_OC_NUMS] = {0, v, 0, 0, v};
    char t[64];
    snprintf(t, sizeof t, "%s\n", text);
    assert_int_equal(cdr_oc_build_row(b, s, h, S(ms), m, seq, num, t, strlen(t)), CDR_OK);
}

static void drow(cdr_oc_delta *d, int s, uint64_t seq, const char *text, int64_t v)
{
    int64_t num[CDR_OC_NUMS] = {0, v, 0, 0, v};
    char t[64];
    snprintf(t, sizeof t, "%s\n", text);
    assert_int_equal(cdr_oc_delta_row(d, s, seq, num, t, strlen(t)), CDR_OK);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/test_outcache.XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rmdir_all(char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(d);
}

/* Month 10 holds A (h 10), B (h 20), C (h 30); month 9 holds A. */
static void build_old(const char *dir)
{
    cdr_month ms[2] = {M9, M10};
    cdr_oc_build *b;
    assert_int_equal(cdr_oc_build_new(dir, ms, 2, TOK1, &b), CDR_OK);
    /* findings, in the outputs' order: (h, msisdn, month), seq */
    row(b, CDR_OC_FINDINGS, 10, "A", M9, 0, "fA9.0", 1);
    row(b, CDR_OC_FINDINGS, 10, "A", M10, 0, "fA.0", 1);
    row(b, CDR_OC_FINDINGS, 10, "A", M10, 1, "fA.1", 1);
    row(b, CDR_OC_FINDINGS, 20, "B", M10, 0, "fB.0", 1);
    row(b, CDR_OC_FINDINGS, 20, "B", M10, 1, "fB.1", 1);
    row(b, CDR_OC_FINDINGS, 20, "B", M10, 2, "fB.2", 1);
    row(b, CDR_OC_FINDINGS, 20, "B", M10, 3, "fB.3", 1);
    row(b, CDR_OC_FINDINGS, 30, "C", M10, 0, "fC.0", 1);
    row(b, CDR_OC_CANDIDATES, 10, "A", M10, 0, "cA", 100);
    row(b, CDR_OC_CANDIDATES, 20, "B", M10, 0, "cB", 200);
    row(b, CDR_OC_CANDIDATES, 30, "C", M10, 0, "cC", 300);
    row(b, CDR_OC_UNRATED, 20, "B", M10, 5, "uB.5", 0);
    char err[256];
    assert_int_equal(cdr_oc_build_finish(b, err, sizeof err), CDR_OK);
    cdr_oc_build_free(b);
    assert_int_equal(cdr_oc_place(dir, ms, 2, err, sizeof err), CDR_OK);
}

static void merge_kinds(void **state)
{
    (void)state;
    char *dir = tmpdir();
    build_old(dir);
    cdr_oc_delta *d;
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    assert_int_equal(cdr_oc_delta_reset(d), CDR_OK);
    /* A of month 10 goes on: a finding after the stored ones, a new candidate */
    assert_int_equal(cdr_oc_delta_begin(d, 10, S("A"), M10, UINT64_MAX), CDR_OK);
    drow(d, CDR_OC_FINDINGS, 2, "fA.2", 1);
    drow(d, CDR_OC_CANDIDATES, 0, "cA'", 110);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);
    /* B from its rewind point at seq 2; its candidate and unrated row withdrawn */
    assert_int_equal(cdr_oc_delta_begin(d, 20, S("B"), M10, 2), CDR_OK);
    drow(d, CDR_OC_FINDINGS, 2, "fB.2'", 1);
    assert_int_equal(cdr_oc_delta_end(d, 1), CDR_OK);
    /* D (between B and C) new */
    assert_int_equal(cdr_oc_delta_begin(d, 25, S("D"), M10, UINT64_MAX), CDR_OK);
    drow(d, CDR_OC_FINDINGS, 0, "fD.0", 1);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);
    /* C re-rated whole: nothing now, its candidate unchanged */
    assert_int_equal(cdr_oc_delta_begin(d, 30, S("C"), M10, 0), CDR_OK);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);

    cdr_oc_month om[2] = {{M9, TOK1, 1, 0}, {M10, TOK1, 1, 1}};
    got g = {0};
    char err[256];
    assert_int_equal(cdr_oc_merge(dir, om, 2, TOK2, d, collect, &g, err, sizeof err), CDR_OK);
    assert_string_equal(g.text,
                        "0 fA9.0\n 0 fA.0\n 0 fA.1\n 0 fA.2\n 0 fB.0\n 0 fB.1\n 0 fB.2'\n "
                        "0 fD.0\n 1 cA'\n 1 cC\n ");
    cdr_oc_delta_free(d);

    /* the next file of month 10 (month 9 was not written again) reads back the
     * same under the new token */
    cdr_month m10 = M10;
    assert_int_equal(cdr_oc_place(dir, &m10, 1, err, sizeof err), CDR_OK);
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    cdr_oc_month om2[2] = {{M9, TOK1, 1, 0}, {M10, TOK2, 1, 0}};
    got g2 = {0};
    assert_int_equal(cdr_oc_merge(dir, om2, 2, TOK1, d, collect, &g2, err, sizeof err), CDR_OK);
    assert_string_equal(g2.text, g.text);
    assert_int_equal(g2.sum1, 1 * 8 + 110 + 300);
    /* the old token is refused now */
    cdr_oc_month om3[1] = {{M10, TOK1, 1, 0}};
    got g3 = {0};
    assert_int_equal(cdr_oc_merge(dir, om3, 1, TOK2, d, collect, &g3, err, sizeof err),
                     CDR_E_NOTFOUND);
    assert_int_equal(g3.rows, 0);
    cdr_oc_delta_free(d);
    rmdir_all(dir);
}

static void refused(void **state)
{
    (void)state;
    char *dir = tmpdir();
    build_old(dir);
    char err[256];
    got g = {0};
    cdr_oc_delta *d;
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    /* a month whose token is not known */
    cdr_oc_month unknown[1] = {{M10, NULL, 1, 0}};
    assert_int_equal(cdr_oc_merge(dir, unknown, 1, TOK2, d, collect, &g, err, sizeof err),
                     CDR_E_NOTFOUND);
    /* a month of the delta that is not merged */
    assert_int_equal(cdr_oc_delta_begin(d, 5, S("Z"), M10, UINT64_MAX), CDR_OK);
    drow(d, CDR_OC_FINDINGS, 0, "fZ", 1);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);
    cdr_oc_month only9[1] = {{M9, TOK1, 1, 1}};
    assert_int_equal(cdr_oc_merge(dir, only9, 1, TOK2, d, collect, &g, err, sizeof err),
                     CDR_E_NOTFOUND);
    cdr_oc_delta_free(d);
    /* news out of the outputs' order */
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    assert_int_equal(cdr_oc_delta_begin(d, 20, S("B"), M10, UINT64_MAX), CDR_OK);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);
    assert_int_equal(cdr_oc_delta_begin(d, 10, S("A"), M10, UINT64_MAX), CDR_OK);
    assert_int_equal(cdr_oc_delta_end(d, 0), CDR_OK);
    cdr_oc_month m10[1] = {{M10, TOK1, 1, 1}};
    assert_int_equal(cdr_oc_merge(dir, m10, 1, TOK2, d, collect, &g, err, sizeof err),
                     CDR_E_NOTFOUND);
    cdr_oc_delta_free(d);
    /* every byte of the file flipped in turn: refused, or (a byte the
     * checks do not cover cannot exist: header, chunks and footer all are)
     * never a different row */
    char path[512];
    snprintf(path, sizeof path, "%s/out-2026-10.cdo", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 100 && n < sizeof buf);
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x20;
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, n, f), n);
        fclose(f);
        buf[i] ^= 0x20;
        assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
        got gb = {0};
        cdr_oc_month mm[1] = {{M10, TOK1, 1, 0}};
        assert_int_equal(cdr_oc_merge(dir, mm, 1, TOK2, d, collect, &gb, err, sizeof err),
                         CDR_E_NOTFOUND);
        assert_int_equal(gb.rows, 0);
        cdr_oc_delta_free(d);
    }
    /* and cut short */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n - 1, f), n - 1);
    fclose(f);
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    cdr_oc_month mm[1] = {{M10, TOK1, 1, 0}};
    assert_int_equal(cdr_oc_merge(dir, mm, 1, TOK2, d, collect, &g, err, sizeof err),
                     CDR_E_NOTFOUND);
    cdr_oc_delta_free(d);
    rmdir_all(dir);
}

/* A file of many chunks (more than the deflater's queue; some of them do
 * not shrink and are stored as is), rewritten by a merge with no news:
 * every row comes back in order, and the next file holds the same bytes as
 * the one built from the rows, but for the token (header, footer and the
 * footer's CRC). */
static int count_rows(const cdr_oc_row *r, void *user)
{
    uint64_t *c = user;
    char want[64];
    int k = snprintf(want, sizeof want, "r%08llu,", (unsigned long long)*c);
    assert_true(r->len > (size_t)k);
    assert_memory_equal(r->text, want, (size_t)k);
    ++*c;
    return 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void many_chunks(void **state)
{
    (void)state;
    char *dir = tmpdir(), err[256], text[256], path[512];
    cdr_month m10 = M10;
    cdr_oc_build *b;
    assert_int_equal(cdr_oc_build_new(dir, &m10, 1, TOK1, &b), CDR_OK);
    uint64_t x = 42, rows = 40000;
    for (uint64_t i = 0; i < rows; i++) {
        int k = snprintf(text, sizeof text, "r%08llu,", (unsigned long long)i);
        size_t len = i / 4000 % 3 == 1 ? 200 : 60; /* a stretch of random bytes */
        for (size_t j = (size_t)k; j < len; j++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            text[j] = (char)(i / 4000 % 3 == 1 ? (x >> 56) : (uint64_t)('a' + j % 7));
        }
        text[len] = '\n';
        int64_t num[CDR_OC_NUMS] = {0, (int64_t)i, 0, 0, 0};
        assert_int_equal(cdr_oc_build_row(b, CDR_OC_FINDINGS, i / 3, S("A"), M10, i, num, text,
                                          len + 1),
                         CDR_OK);
    }
    assert_int_equal(cdr_oc_build_finish(b, err, sizeof err), CDR_OK);
    cdr_oc_build_free(b);
    assert_int_equal(cdr_oc_place(dir, &m10, 1, err, sizeof err), CDR_OK);
    snprintf(path, sizeof path, "%s/out-2026-10.cdo", dir);
    size_t n1, n2;
    unsigned char *f1 = slurp(path, &n1);
    assert_true(n1 > 8 * 256 * 1024 / 4); /* (many chunks, even deflated) */

    cdr_oc_delta *d;
    assert_int_equal(cdr_oc_delta_new(dir, &d), CDR_OK);
    cdr_oc_month om[1] = {{M10, TOK1, 1, 1}};
    uint64_t got_rows = 0;
    assert_int_equal(cdr_oc_merge(dir, om, 1, TOK2, d, count_rows, &got_rows, err, sizeof err),
                     CDR_OK);
    cdr_oc_delta_free(d);
    assert_int_equal(got_rows, rows);
    assert_int_equal(cdr_oc_place(dir, &m10, 1, err, sizeof err), CDR_OK);
    unsigned char *f2 = slurp(path, &n2);
    assert_int_equal(n1, n2);
    size_t foot = n1 - 60; /* OC_FOOT_SIZE: its token at 24, its CRC at 56 */
    assert_memory_equal(f1, f2, 16);
    assert_memory_equal(f2 + 16, TOK2, 32);
    assert_memory_equal(f1 + 48, f2 + 48, foot + 24 - 48);
    assert_memory_equal(f2 + foot + 24, TOK2, 32);
    free(f1);
    free(f2);
    rmdir_all(dir);
}

/* A write that fails in the deflater (a file size limit: EFBIG) fails the
 * file: a row after it or the finish says so, and nothing is placed. */
static void write_fails(void **state)
{
    (void)state;
    char *dir = tmpdir(), err[256], text[128];
    cdr_month m10 = M10;
    cdr_oc_build *b;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(cdr_oc_build_new(dir, &m10, 1, TOK1, &b), CDR_OK);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint64_t x = 7;
    cdr_err e = CDR_OK;
    for (uint64_t i = 0; i < 20000 && e == CDR_OK; i++) {
        for (size_t j = 0; j < 100; j++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            text[j] = (char)(x >> 56); /* (does not shrink: every chunk is its size) */
        }
        int64_t num[CDR_OC_NUMS] = {0};
        e = cdr_oc_build_row(b, CDR_OC_FINDINGS, i, S("A"), M10, i, num, text, 100);
    }
    if (e == CDR_OK)
        e = cdr_oc_build_finish(b, err, sizeof err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(e, CDR_E_IO);
    cdr_oc_build_free(b);
    cdr_oc_discard(dir, &m10, 1);
    rmdir_all(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(merge_kinds),
        cmocka_unit_test(refused),
        cmocka_unit_test(many_chunks),
        cmocka_unit_test(write_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
