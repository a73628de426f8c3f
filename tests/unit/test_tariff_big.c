/* Unit test: a generated tariff with 1,000,000 subscriber rows loads in
 * reasonable time (generated under /tmp at run time) and looks up right. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdrecon/tariff.h"
#include "testrnd.h"

#define NROWS 1000000
#define NTWO 100000 /* numbers with two plan periods (the first NTWO numbers) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static cdr_time T(const char *s)
{
    cdr_time t = 0;
    assert_int_equal(cdr_time_parse(s, strlen(s), &t), CDR_OK);
    return t;
}

static void test_million_subscribers(void **st)
{
    (void)st;
    char dir[256], path[512], cmd[600];
    snprintf(dir, sizeof dir, "/tmp/cdrecon-test-tariff-big-%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    put(dir, "plans.csv", "plan,monthly_fee\nA,18\nB,38\n");
    put(dir, "rates.csv", "plan,service,price,unit,increment\nA,voice,0.19,60,60\nB,voice,0.1,60,60\n");
    snprintf(path, sizeof path, "%s/subscribers.csv", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("msisdn,plan,valid_from,valid_to,vip,join_date\n", fp);
    /* NTWO numbers get two periods (A to 2024-03-31, B from 2024-04-01);
     * the rest one open-ended period. Rows are written in a scrambled
     * order so that the loader has to sort them. */
    long n = 0;
    for (long i = 0; n < NROWS; i++) {
        long k = (i * 7919) % (NROWS - NTWO); /* 7919 is prime: a permutation */
        if (k < NTWO) {
            fprintf(fp, "138%08ld,B,2024-04-01,,0,\n", k);
            fprintf(fp, "138%08ld,A,2023-01-01,2024-03-31,1,2023-01-01\n", k);
            n += 2;
        } else {
            fprintf(fp, "138%08ld,A,2023-01-01,,0,\n", k);
            n++;
        }
    }
    fclose(fp);

    cdr_tariff *t = NULL;
    char err[256];
    double t0 = now();
    clock_t c0 = clock();
    cdr_err e = cdr_tariff_load(dir, &t, err, sizeof err);
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    double dt = now() - t0;
    if (e != CDR_OK)
        fail_msg("load: %s", err);
    printf("loaded %zu subscriber rows in %.3f s wall, %.3f s CPU\n", t->n_subscribers, dt, cpu);
    assert_int_equal(t->n_subscribers, NROWS);
    assert_int_equal(t->files[CDR_T_SUBSCRIBERS].rows, NROWS);
    /* CPU time, not wall time: the suite may share the machine. Under
     * valgrind or a sanitizer (CDRECON_SLOW_TESTS set) the bound is off. */
    if (!getenv("CDRECON_SLOW_TESTS"))
        assert_true(cpu < 8.0);

    /* Spot checks at period edges. */
    const cdr_subscriber *s;
    s = cdr_tariff_subscriber(t, "13800000007", 11, T("2024-03-31 23:59:59"));
    assert_non_null(s);
    assert_string_equal(t->plans[s->plan].name, "A");
    assert_int_equal(s->vip, 1);
    s = cdr_tariff_subscriber(t, "13800000007", 11, T("2024-04-01 00:00:00"));
    assert_string_equal(t->plans[s->plan].name, "B");
    assert_null(cdr_tariff_subscriber(t, "13800000007", 11, T("2022-12-31 23:59:59")));
    s = cdr_tariff_subscriber(t, "13800899999", 11, T("2030-01-01 00:00:00"));
    assert_non_null(s);
    assert_string_equal(t->plans[s->plan].name, "A");
    assert_null(cdr_tariff_subscriber(t, "13800900000", 11, T("2024-01-01 00:00:00")));

    /* Look-up speed: every number once, at a time inside its period. */
    char num[32];
    size_t found = 0;
    cdr_time at = T("2024-02-01 12:00:00");
    t0 = now();
    for (long k = 0; k < NROWS - NTWO; k++) {
        snprintf(num, sizeof num, "138%08ld", k);
        found += cdr_tariff_subscriber(t, num, 11, at) != NULL;
    }
    dt = now() - t0;
    printf("%ld subscriber look-ups in %.3f s (with snprintf)\n", (long)(NROWS - NTWO), dt);
    assert_int_equal(found, NROWS - NTWO);
    cdr_tariff_free(t);
    assert_int_equal(system(cmd), 0);
}

/* The loader sorts subscribers, subscriptions and refunds by number (then
 * code), date and line, with integer keys for digit strings of up to 16
 * digits and strcmp otherwise (src/tariff/tariff.c "sorting by number"). Numbers
 * here are made to catch a key that orders differently from strcmp:
 * prefixes of each other ("1", "10", "100"), leading zeros, 1 to 24
 * digits, many sharing their first 16 digits, codes of letters and digits.
 * The check is the reference order itself, pair by pair. */
static uint64_t rng = 88172645463325252ull;

#define NNUM 3000
static char nums[NNUM][32];

static void make_number(char *b)
{
    unsigned kind = trnd(&rng, 4), len;
    if (kind == 0) { /* shares the first 16 digits with many */
        len = 16 + trnd(&rng, 9);
        memcpy(b, "1391234567890123", 16);
        for (unsigned i = 16; i < len; i++)
            b[i] = (char)('0' + trnd(&rng, 3));
    } else if (kind == 1) { /* short: prefixes of each other */
        len = 1 + trnd(&rng, 4);
        for (unsigned i = 0; i < len; i++)
            b[i] = i ? (char)('0' + trnd(&rng, 2)) : '1';
    } else {
        len = 1 + trnd(&rng, 24);
        for (unsigned i = 0; i < len; i++)
            b[i] = (char)('0' + trnd(&rng, 10));
    }
    b[len] = '\0';
    /* the loader normalises 86 + 11-digit mobile and 0086 + mobile: keep
     * the numbers as they are written */
    if ((len == 13 && b[0] == '8' && b[1] == '6') || (len == 15 && b[0] == '0' && b[1] == '0'))
        b[0] = '7';
}

static void test_sort_order(void **st)
{
    (void)st;
    char dir[256], path[512], cmd[600];
    snprintf(dir, sizeof dir, "/tmp/cdrecon-test-tariff-sort-%ld", (long)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    put(dir, "plans.csv", "plan,monthly_fee\nA,18\nB,38\nC,58\n");
    put(dir, "rates.csv", "plan,service,price,unit,increment\nA,voice,0.19,60,60\n");
    size_t nn = 0;
    while (nn < NNUM) { /* distinct numbers */
        make_number(nums[nn]);
        size_t j = 0;
        while (j < nn && strcmp(nums[j], nums[nn]) != 0)
            j++;
        nn += j == nn;
    }
    /* 1 to 3 consecutive yearly periods per number, rows in random order */
    static const char *const plan[] = {"A", "B", "C"};
    static const char *const code[] = {"1065800505", "10658005", "1", "12",
                                       "VAS_A", "106580050512345678", "7"};
    size_t nsub = 0, nrow = NNUM * 3, *ord = malloc(nrow * sizeof *ord);
    assert_non_null(ord);
    for (size_t i = 0; i < nrow; i++)
        ord[i] = i;
    for (size_t i = nrow - 1; i > 0; i--) {
        size_t j = trnd(&rng, (unsigned)i + 1), x = ord[i];
        ord[i] = ord[j];
        ord[j] = x;
    }
    unsigned nper[NNUM];
    for (size_t i = 0; i < NNUM; i++)
        nper[i] = 1 + trnd(&rng, 3);
    snprintf(path, sizeof path, "%s/subscribers.csv", dir);
    FILE *fs = fopen(path, "w");
    snprintf(path, sizeof path, "%s/subscriptions.csv", dir);
    FILE *fv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/refunds.csv", dir);
    FILE *fr = fopen(path, "w");
    assert_true(fs && fv && fr);
    fputs("msisdn,plan,valid_from,valid_to,vip,join_date\n", fs);
    fputs("msisdn,service_code,valid_from,valid_to\n", fv);
    fputs("msisdn,date,amount\n", fr);
    for (size_t r = 0; r < nrow; r++) {
        size_t i = ord[r] / 3;
        unsigned p = (unsigned)(ord[r] % 3);
        if (p < nper[i]) {
            fprintf(fs, "%s,%s,%u-01-01,%u-12-31,0,\n", nums[i], plan[p], 2020 + p, 2020 + p);
            nsub++;
        }
        fprintf(fv, "%s,%s,2026-0%u-01,\n", nums[i], code[trnd(&rng, 7)], 1 + trnd(&rng, 9));
        fprintf(fr, "%s,2026-0%u-1%u,1.00\n", nums[i], 1 + trnd(&rng, 9), trnd(&rng, 10));
    }
    fclose(fs);
    fclose(fv);
    fclose(fr);
    free(ord);

    cdr_tariff *t = NULL;
    char err[256];
    if (cdr_tariff_load(dir, &t, err, sizeof err) != CDR_OK)
        fail_msg("load: %s", err);
    assert_int_equal(t->n_subscribers, nsub);
    assert_int_equal(t->n_subscriptions, nrow);
    assert_int_equal(t->n_refunds, nrow);
    for (size_t i = 1; i < t->n_subscribers; i++) {
        const cdr_subscriber *a = &t->subscribers[i - 1], *b = &t->subscribers[i];
        int c = strcmp(a->msisdn, b->msisdn);
        if (c > 0 || (c == 0 && a->valid_from >= b->valid_from))
            fail_msg("subscribers %zu: %s %lld before %s %lld", i, a->msisdn,
                     (long long)a->valid_from, b->msisdn, (long long)b->valid_from);
    }
    for (size_t i = 1; i < t->n_subscriptions; i++) {
        const cdr_subscription *a = &t->subscriptions[i - 1], *b = &t->subscriptions[i];
        int c = strcmp(a->msisdn, b->msisdn);
        if (!c)
            c = strcmp(a->service_code, b->service_code);
        if (!c)
            c = a->valid_from < b->valid_from ? -1 : a->valid_from > b->valid_from;
        if (!c)
            c = a->line < b->line ? -1 : 1;
        if (c > 0)
            fail_msg("subscriptions %zu: %s|%s before %s|%s", i, a->msisdn, a->service_code,
                     b->msisdn, b->service_code);
    }
    for (size_t i = 1; i < t->n_refunds; i++) {
        const cdr_prior_refund *a = &t->refunds[i - 1], *b = &t->refunds[i];
        int c = strcmp(a->msisdn, b->msisdn);
        if (!c)
            c = a->date < b->date ? -1 : a->date > b->date;
        if (!c)
            c = a->line < b->line ? -1 : 1;
        if (c > 0)
            fail_msg("refunds %zu: %s before %s", i, a->msisdn, b->msisdn);
    }
    /* every number finds its plan in each of its years */
    for (size_t i = 0; i < NNUM; i++)
        for (unsigned p = 0; p < nper[i]; p++) {
            char when[32];
            snprintf(when, sizeof when, "%u-06-30 12:00:00", 2020 + p);
            const cdr_subscriber *s = cdr_tariff_subscriber(t, nums[i], strlen(nums[i]), T(when));
            if (!s || strcmp(t->plans[s->plan].name, plan[p]) != 0)
                fail_msg("%s in %u: %s", nums[i], 2020 + p, s ? t->plans[s->plan].name : "none");
        }
    cdr_tariff_free(t);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_subscribers),
        cmocka_unit_test(test_sort_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
