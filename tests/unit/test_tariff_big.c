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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
