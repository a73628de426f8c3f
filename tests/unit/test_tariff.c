/* Unit tests: tariff loading (testdata/tariff-mini) and every look-up. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdrecon/tariff.h"
#include "csvtable.h"
#include "testbuf.h"
#include "testrnd.h"

static cdr_tariff *mini;

static cdr_time T(const char *s)
{
    cdr_time t = 0;
    assert_int_equal(cdr_time_parse(s, strlen(s), &t), CDR_OK);
    return t;
}

static cdr_money M(const char *s)
{
    cdr_money v = 0;
    assert_int_equal(cdr_money_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

static int32_t band(const cdr_tariff *t, const char *name)
{
    for (size_t i = 0; i < t->n_band_names; i++)
        if (strcmp(t->band_names[i], name) == 0)
            return (int32_t)i;
    fail_msg("no band %s", name);
    return -2;
}

static int32_t plan(const cdr_tariff *t, const char *name)
{
    for (size_t i = 0; i < t->n_plans; i++)
        if (strcmp(t->plans[i].name, name) == 0)
            return (int32_t)i;
    fail_msg("no plan %s", name);
    return -2;
}

static int32_t pool(const cdr_tariff *t, const char *name)
{
    for (size_t i = 0; i < t->n_pool_names; i++)
        if (strcmp(t->pool_names[i], name) == 0)
            return (int32_t)i;
    return -1;
}

/* Write a tariff directory under /tmp: pairs of (file name, content), NULL-ended. */
static char *write_dir(const char *tag, ...)
{
    static char dir[256];
    char cmd[512];
    snprintf(dir, sizeof dir, "/tmp/cdrecon-test-tariff-%ld-%s", (long)getpid(), tag);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    va_list ap;
    va_start(ap, tag);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *text = va_arg(ap, const char *);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
    }
    va_end(ap);
    return dir;
}

static void rm_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **st)
{
    (void)st;
    const char *td = getenv("TESTDATA");
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/tariff-mini", td ? td : "testdata");
    cdr_err e = cdr_tariff_load(dir, &mini, err, sizeof err);
    if (e != CDR_OK)
        fprintf(stderr, "load %s: %s\n", dir, err);
    return e == CDR_OK ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    cdr_tariff_free(mini);
    return 0;
}

static void test_load_fields(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    assert_int_equal(t->n_plans, 2);
    const cdr_plan *b = &t->plans[plan(t, "basic")], *s = &t->plans[plan(t, "split")];
    assert_int_equal(b->monthly_fee, 18 * CDR_MICRO);
    assert_int_equal(b->rounding, 10000);
    assert_int_equal(b->sms_single_chars, 70);
    assert_int_equal(b->sms_part_chars, 70);
    assert_int_equal(b->band_rule, CDR_BAND_START);
    assert_int_equal(b->line, 2);
    assert_int_equal(s->rounding, 10000); /* empty cell = default */
    assert_int_equal(s->sms_part_chars, 67);
    assert_int_equal(s->band_rule, CDR_BAND_SPLIT);
    assert_int_equal(t->n_rates, 15);
    assert_int_equal(t->n_bands, 3);
    assert_int_equal(t->n_band_names, 2);
    assert_int_equal(t->n_bundles, 3);
    assert_int_equal(t->n_free_numbers, 3);
    assert_int_equal(t->n_subscribers, 4);
    assert_int_equal(t->n_subscriptions, 3);
    assert_int_equal(t->n_refunds, 3);
    assert_true(t->files[CDR_T_PLANS].present);
    assert_int_equal(t->files[CDR_T_RATES].rows, 15);
    assert_int_equal(t->files[CDR_T_SUBSCRIBERS].rows, 4); /* blank line skipped */
    /* sha256 of plans.csv (sha256sum testdata/tariff-mini/plans.csv) */
    static const uint8_t want[4] = {0xd2, 0x49, 0x29, 0x2f};
    assert_memory_equal(t->files[CDR_T_PLANS].sha256, want, 4);
    const cdr_bundle *bu = cdr_tariff_bundle(t, plan(t, "basic"), pool(t, "voice_min"));
    assert_non_null(bu);
    assert_int_equal(bu->unit, CDR_ALLOW_MIN);
    assert_int_equal(bu->allowance, 100);
    assert_int_equal(bu->allowance_base, 6000);
    bu = cdr_tariff_bundle(t, plan(t, "basic"), pool(t, "data_pool"));
    assert_int_equal(bu->allowance_base, 500 * 1024);
    bu = cdr_tariff_bundle(t, plan(t, "basic"), pool(t, "sms_pool"));
    assert_int_equal(bu->allowance_base, 50);
    assert_null(cdr_tariff_bundle(t, plan(t, "split"), pool(t, "voice_min")));
    assert_null(cdr_tariff_bundle(t, plan(t, "split"), -1));
    const cdr_discount *d = cdr_tariff_discount(t, plan(t, "split"), CDR_SVC_VOICE);
    assert_non_null(d);
    assert_int_equal(d->percent_micro, 12500000);
    assert_int_equal(cdr_tariff_discount(t, plan(t, "basic"), CDR_SVC_DATA)->percent_micro,
                     20000000);
    assert_null(cdr_tariff_discount(t, plan(t, "basic"), CDR_SVC_VOICE));
}

static const cdr_rate *R(const cdr_tariff *t, const char *pl, cdr_service s, cdr_direction d,
                         const char *peer, const char *bandname)
{
    return cdr_tariff_find_rate(t, plan(t, pl), s, d, peer, strlen(peer),
                                bandname ? band(t, bandname) : -1);
}

static void test_find_rate(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    const cdr_rate *r;
    r = R(t, "basic", CDR_SVC_VOICE, CDR_DIR_MO, "13912345678", "peak");
    assert_non_null(r);
    assert_int_equal(r->price, M("0.19"));
    assert_string_equal(r->prefix, "");
    assert_int_equal(r->unit, 60);
    assert_int_equal(r->pool, pool(t, "voice_min"));
    assert_int_equal(R(t, "basic", CDR_SVC_VOICE, CDR_DIR_MO, "13912345678", "offpeak")->price,
                     M("0.10"));
    /* international prefix 00 beats '*' in every band */
    r = R(t, "basic", CDR_SVC_VOICE, CDR_DIR_MO, "00441234567", "peak");
    assert_int_equal(r->price, M("8.00"));
    assert_int_equal(r->increment, 6);
    assert_int_equal(r->pool, -1);
    assert_int_equal(R(t, "basic", CDR_SVC_VOICE, CDR_DIR_MT, "13912345678", "peak")->price, 0);
    /* split plan: longest prefix wins; exact band beats '*' at equal length */
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13812345678", "peak")->price,
                     M("0.15"));
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13812345678", "offpeak")->price,
                     M("0.14"));
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13801234567", "peak")->price,
                     M("0.12"));
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "1380", "peak")->price, M("0.12"));
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "138", "peak")->price, M("0.15"));
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13", "offpeak")->price,
                     M("0.10"));
    /* band -1 (no bands known) only matches '*' rows */
    assert_int_equal(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13812345678", NULL)->price,
                     M("0.14"));
    assert_null(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MO, "13912345678", NULL));
    assert_null(R(t, "split", CDR_SVC_VOICE, CDR_DIR_MT, "13912345678", "peak"));
    assert_null(R(t, "split", CDR_SVC_DATA, CDR_DIR_MO, "cmnet", NULL));
    /* sms, data, vas */
    assert_int_equal(R(t, "basic", CDR_SVC_SMS, CDR_DIR_MO, "10658888", NULL)->price, M("0.05"));
    assert_int_equal(R(t, "basic", CDR_SVC_SMS, CDR_DIR_MO, "13912345678", NULL)->price,
                     M("0.10"));
    assert_int_equal(R(t, "basic", CDR_SVC_DATA, CDR_DIR_MO, "cmnet", NULL)->unit, 1024);
    assert_int_equal(R(t, "basic", CDR_SVC_DATA, CDR_DIR_MO, "", NULL)->price, M("0.29"));
    assert_int_equal(R(t, "basic", CDR_SVC_VAS, CDR_DIR_MO, "SP001", NULL)->price, M("5.00"));
    assert_int_equal(R(t, "basic", CDR_SVC_VAS, CDR_DIR_MO, "SP002", NULL)->price, M("2.00"));
    /* out-of-range plan / service */
    assert_null(cdr_tariff_find_rate(t, 99, CDR_SVC_VOICE, CDR_DIR_MO, "1", 1, -1));
    assert_null(cdr_tariff_find_rate(t, -1, CDR_SVC_VOICE, CDR_DIR_MO, "1", 1, -1));
}

static void test_free_number(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    assert_string_equal(cdr_tariff_free_number(t, "10086", 5)->label, "customer service");
    assert_string_equal(cdr_tariff_free_number(t, "1008611", 7)->label, "service menu, balance");
    assert_string_equal(cdr_tariff_free_number(t, "100861", 6)->label, "customer service");
    assert_string_equal(cdr_tariff_free_number(t, "110", 3)->label, "police");
    assert_string_equal(cdr_tariff_free_number(t, "1101", 4)->prefix, "110");
    assert_null(cdr_tariff_free_number(t, "11", 2));
    assert_null(cdr_tariff_free_number(t, "13800000001", 11));
    assert_null(cdr_tariff_free_number(t, "", 0));
}

/* The two differential tests below: a generated tariff, loaded or failed
 * with the loader's message; a random peer of fewer than max digits drawn
 * from the first `digits` digits, followed by a byte that is not part of it. */
static cdr_tariff *load_or_fail(const char *dir)
{
    cdr_tariff *t = NULL;
    char err[256];
    if (cdr_tariff_load(dir, &t, err, sizeof err) != CDR_OK)
        fail_msg("load: %s", err);
    return t;
}

static unsigned random_peer(uint64_t *x, char *peer, unsigned max, unsigned digits)
{
    unsigned n = trnd(x, max);
    for (unsigned i = 0; i < n; i++)
        peer[i] = (char)('0' + trnd(x, digits));
    peer[n] = 'x';
    return n;
}

/* cdr_tariff_free_number answers most peers from a first-bytes filter
 * before hashing; against a brute-force longest-prefix search over random
 * tables (prefixes of 1 to 6 digits over a small alphabet, so that prefixes
 * nest and share first bytes) and random peers of 0 to 12 digits. */
static void test_free_number_filter_matches_search(void **st)
{
    (void)st;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 40; round++) {
        static char table[8192];
        char pre[64][8];
        int np = 0;
        size_t k = (size_t)snprintf(table, sizeof table, "prefix,label\n");
        int want = 1 + (int)trnd(&x, 12);
        while (np < want) {
            unsigned len = 1 + trnd(&x, round % 4 == 0 ? 2 : 6);
            for (unsigned i = 0; i < len; i++)
                pre[np][i] = (char)('0' + trnd(&x, 4));
            pre[np][len] = '\0';
            int dup = 0;
            for (int j = 0; j < np; j++)
                dup |= strcmp(pre[j], pre[np]) == 0;
            if (dup)
                continue;
            k += (size_t)snprintf(table + k, sizeof table - k, "%s,f%d\n", pre[np], np);
            np++;
        }
        char *dir = write_dir("freef", "plans.csv", "plan\np\n", "rates.csv",
                              "plan,service,price,unit,increment\np,voice,0.1,60,60\n",
                              "subscribers.csv", "msisdn,plan,valid_from\n",
                              "free_numbers.csv", table,
                              (char *)NULL);
        cdr_tariff *t = load_or_fail(dir);
        for (int q = 0; q < 5000; q++) {
            char peer[16];
            unsigned n = random_peer(&x, peer, 13, q % 3 ? 4 : 10);
            int best = -1;
            size_t bl = 0;
            for (int j = 0; j < np; j++) {
                size_t l = strlen(pre[j]);
                if (l <= n && l > bl && memcmp(pre[j], peer, l) == 0)
                    best = j, bl = l;
            }
            const cdr_free_number *f = cdr_tariff_free_number(t, peer, n);
            if (best < 0 ? f != NULL : !f || strcmp(f->prefix, pre[best]) != 0)
                fail_msg("round %d peer %.*s: got %s, want %s", round, (int)n, peer,
                         f ? f->prefix : "none", best < 0 ? "none" : pre[best]);
        }
        cdr_tariff_free(t);
        rm_dir(dir);
    }
}

/* cdr_tariff_find_rate skips prefix lengths no prefix can match (a
 * first-bytes filter) and takes the '*' chain without hashing; against a
 * brute-force search over the rates: the longest matching prefix with a row
 * of the record's band, else its '*' row, else a shorter prefix. */
static void test_find_rate_matches_search(void **st)
{
    (void)st;
    uint64_t x = 0x2545F4914F6CDD1Dull;
    static const char *const bname[] = {"*", "peak", "offpeak"};
    for (int round = 0; round < 40; round++) {
        static char table[16384];
        char pre[96][8];
        int pb[96], np = 0;
        size_t k = (size_t)snprintf(table, sizeof table,
                                    "plan,service,direction,prefix,band,price,unit,increment\n");
        int want = 1 + (int)trnd(&x, 30);
        for (int tries = 0; np < want && tries < 1000; tries++) {
            unsigned len = trnd(&x, round % 4 == 0 ? 2 : 6);
            for (unsigned i = 0; i < len; i++)
                pre[np][i] = (char)('0' + trnd(&x, 3));
            pre[np][len] = '\0';
            pb[np] = (int)trnd(&x, 3);
            int dup = 0;
            for (int j = 0; j < np; j++)
                dup |= strcmp(pre[j], pre[np]) == 0 && pb[j] == pb[np];
            if (dup)
                continue;
            k += (size_t)snprintf(table + k, sizeof table - k, "p,voice,mo,%s,%s,0.%02d,60,60\n",
                                  len ? pre[np] : "*", bname[pb[np]], np);
            np++;
        }
        char *dir = write_dir("ratef", "plans.csv", "plan\np\n", "bands.csv",
                              "band,days,from,to\npeak,weekday,07:00,23:00\n"
                              "offpeak,weekday,23:00,07:00\noffpeak,weekend,00:00,24:00\n",
                              "rates.csv", table, "subscribers.csv", "msisdn,plan,valid_from\n",
                              (char *)NULL);
        cdr_tariff *t = load_or_fail(dir);
        for (int q = 0; q < 5000; q++) {
            char peer[16];
            unsigned n = random_peer(&x, peer, 9, q % 3 ? 3 : 10);
            int32_t bd = (int32_t)trnd(&x, (unsigned)t->n_band_names);
            const cdr_rate *want_r = NULL;
            for (int L = (int)n; L >= 0 && !want_r; L--) {
                const cdr_rate *star = NULL;
                for (size_t i = 0; i < t->n_rates; i++) {
                    const cdr_rate *r = &t->rates[i];
                    if ((int)strlen(r->prefix) != L || memcmp(r->prefix, peer, (size_t)L) != 0)
                        continue;
                    if (r->band == bd)
                        want_r = r;
                    else if (r->band < 0)
                        star = r;
                }
                if (!want_r)
                    want_r = star;
            }
            const cdr_rate *got = cdr_tariff_find_rate(t, 0, CDR_SVC_VOICE, CDR_DIR_MO, peer, n, bd);
            if (got != want_r)
                fail_msg("round %d peer %.*s band %d: got line %d, want line %d", round, (int)n,
                         peer, (int)bd, got ? (int)got->line : -1,
                         want_r ? (int)want_r->line : -1);
        }
        cdr_tariff_free(t);
        rm_dir(dir);
    }
}

static void test_band_at(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    int32_t peak = band(t, "peak"), off = band(t, "offpeak");
    /* 2024-01-01 is a Monday */
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 00:00:00")), off);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 06:59:59")), off);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 07:00:00")), peak);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 22:59:59")), peak);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 23:00:00")), off);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-01 23:59:59")), off);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-05 12:00:00")), peak); /* Friday */
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-06 12:00:00")), off);  /* Saturday */
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-07 12:00:00")), off);  /* Sunday */
    /* against cdr_time_weekday and cdr_time_of_day, before and after 1970
     * (band_at does both in one division) */
    uint64_t x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        cdr_time at = (cdr_time)(x >> 20) % ((cdr_time)200 * 365 * 86400) -
                      (cdr_time)100 * 365 * 86400;
        if (i < 4000)
            at = (cdr_time)(i - 2000) * 43 - 86400; /* around day edges near 0 */
        int32_t tod = cdr_time_of_day(at);
        int32_t want = cdr_time_weekday(at) < 5 && tod >= 7 * 3600 && tod < 23 * 3600 ? peak : off;
        if (cdr_tariff_band_at(t, at) != want)
            fail_msg("band_at(%lld): %d, want %d", (long long)at, cdr_tariff_band_at(t, at), want);
    }
    /* band_change */
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-01 06:59:59")),
                     T("2024-01-01 07:00:00"));
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-01 07:00:00")),
                     T("2024-01-01 23:00:00"));
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-01 22:59:50")),
                     T("2024-01-01 23:00:00"));
    /* across midnight: offpeak 23:00 Monday .. 07:00 Tuesday */
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-01 23:00:00")),
                     T("2024-01-02 07:00:00"));
    /* Friday night through the weekend to Monday 07:00 */
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-05 23:30:00")),
                     T("2024-01-08 07:00:00"));
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-07 12:00:00")),
                     T("2024-01-08 07:00:00"));
    /* before 1970: floor division of days */
    assert_int_equal(cdr_tariff_band_at(t, T("1969-12-29 07:00:00")), peak); /* Monday */
}

static void test_band_weekend_switch(void **st)
{
    (void)st;
    char *dir = write_dir("wk", "plans.csv", "plan\np\n", "bands.csv",
                          "band,days,from,to\n"
                          "night,weekday,23:00,07:00\n"
                          "day,weekday,07:00,23:00\n"
                          "wkend,weekend,00:00,24:00\n",
                          "rates.csv", "plan,service,price,band\np,voice,1,*\n",
                          "subscribers.csv", "msisdn,plan,valid_from\n", NULL);
    cdr_tariff *t = NULL;
    char err[256];
    assert_int_equal(cdr_tariff_load(dir, &t, err, sizeof err), CDR_OK);
    int32_t night = band(t, "night"), day = band(t, "day"), wk = band(t, "wkend");
    /* Friday 2024-01-05 23:59:59 is still the weekday night band */
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-05 23:59:59")), night);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-06 00:00:00")), wk);
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-05 23:30:00")),
                     T("2024-01-06 00:00:00"));
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-06 00:00:00")),
                     T("2024-01-08 00:00:00"));
    /* Monday 00:00 is the weekday night band, which wraps: 00:00..07:00 */
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-08 00:00:00")), night);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-07 23:59:59")), wk);
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-08 00:00:00")),
                     T("2024-01-08 07:00:00"));
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-08 07:00:00")), day);
    assert_int_equal(t->files[CDR_T_SUBSCRIBERS].rows, 0);
    assert_null(cdr_tariff_subscriber(t, "1", 1, 0));
    cdr_tariff_free(t);
    rm_dir(dir);

    /* No bands: band_at -1, band_change never */
    dir = write_dir("nob", "plans.csv", "plan\np\n", "rates.csv",
                    "plan,service,price\np,voice,1\n", "subscribers.csv",
                    "msisdn,plan,valid_from\n", NULL);
    assert_int_equal(cdr_tariff_load(dir, &t, err, sizeof err), CDR_OK);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-05 23:30:00")), -1);
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-05 23:30:00")), INT64_MAX);
    assert_false(t->files[CDR_T_BANDS].present);
    cdr_tariff_free(t);
    /* One band all day, every day: never changes */
    rm_dir(dir);
    dir = write_dir("one", "plans.csv", "plan\np\n", "bands.csv",
                    "band,days,from,to\nflat,all,00:00,24:00\n", "rates.csv",
                    "plan,service,price\np,voice,1\n", "subscribers.csv",
                    "msisdn,plan,valid_from\n", NULL);
    assert_int_equal(cdr_tariff_load(dir, &t, err, sizeof err), CDR_OK);
    assert_int_equal(cdr_tariff_band_at(t, T("2024-01-05 23:30:00")), 0);
    assert_int_equal(cdr_tariff_band_change(t, T("2024-01-05 23:30:00")), INT64_MAX);
    cdr_tariff_free(t);
    rm_dir(dir);
}

static void test_subscriber(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    const char *a = "13800000001";
    const cdr_subscriber *s;
    assert_null(cdr_tariff_subscriber(t, a, 11, T("2023-12-31 23:59:59")));
    s = cdr_tariff_subscriber(t, a, 11, T("2024-01-01 00:00:00"));
    assert_non_null(s);
    assert_int_equal(s->plan, plan(t, "basic"));
    assert_int_equal(s->valid_from, T("2024-01-01 00:00:00"));
    assert_int_equal(s->valid_to, T("2024-04-01 00:00:00")); /* exclusive */
    assert_int_equal(s->join_date, T("2020-05-01 00:00:00"));
    assert_int_equal(s->vip, 0);
    assert_int_equal(cdr_tariff_subscriber(t, a, 11, T("2024-03-31 23:59:59"))->plan,
                     plan(t, "basic"));
    s = cdr_tariff_subscriber(t, a, 11, T("2024-04-01 00:00:00"));
    assert_int_equal(s->plan, plan(t, "split"));
    assert_int_equal(s->vip, 1);
    assert_int_equal(s->valid_to, INT64_MAX);
    assert_non_null(cdr_tariff_subscriber(t, a, 11, T("2099-01-01 00:00:00")));
    /* "+8613800000002" was normalised; join_date empty = -1 */
    s = cdr_tariff_subscriber(t, "13800000002", 11, T("2024-05-01 00:00:00"));
    assert_non_null(s);
    assert_int_equal(s->join_date, -1);
    assert_int_equal(s->plan, plan(t, "basic")); /* " basic " trimmed */
    /* 13900000003: February 2024 only, both ends included */
    const char *c = "13900000003";
    assert_null(cdr_tariff_subscriber(t, c, 11, T("2024-01-31 23:59:59")));
    assert_non_null(cdr_tariff_subscriber(t, c, 11, T("2024-02-01 00:00:00")));
    assert_non_null(cdr_tariff_subscriber(t, c, 11, T("2024-02-29 23:59:59")));
    assert_null(cdr_tariff_subscriber(t, c, 11, T("2024-03-01 00:00:00")));
    assert_null(cdr_tariff_subscriber(t, "1390000000", 10, T("2024-02-10 00:00:00")));
    assert_null(cdr_tariff_subscriber(t, "13900000004", 11, T("2024-02-10 00:00:00")));
    /* the view need not be NUL-terminated */
    assert_non_null(cdr_tariff_subscriber(t, "139000000039999", 11, T("2024-02-10 00:00:00")));
}

static void test_subscribed_refunds(void **st)
{
    (void)st;
    const cdr_tariff *t = mini;
    const char *a = "13800000001";
    assert_false(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2024-02-29 23:59:59")));
    assert_true(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2024-03-01 00:00:00")));
    assert_true(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2024-03-15 23:59:59")));
    assert_false(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2024-03-16 00:00:00")));
    assert_false(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2024-04-30 23:59:59")));
    assert_true(cdr_tariff_subscribed(t, a, 11, "SP001", 5, T("2030-01-01 00:00:00")));
    assert_false(cdr_tariff_subscribed(t, a, 11, "SP002", 5, T("2024-01-10 00:00:00")));
    assert_true(cdr_tariff_subscribed(t, "13800000002", 11, "SP002", 5, T("2024-01-10 00:00:00")));
    assert_false(cdr_tariff_subscribed(t, a, 11, "SP00", 4, T("2024-03-10 00:00:00")));

    size_t n = 99;
    const cdr_prior_refund *r = cdr_tariff_refunds(t, a, 11, &n);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].date, T("2024-01-05 00:00:00")); /* sorted by date */
    assert_int_equal(r[0].company_liable, 1);
    assert_int_equal(r[0].amount, 3 * CDR_MICRO);
    assert_int_equal(r[1].amount, M("12.50"));
    assert_string_equal(r[1].msisdn, a);
    r = cdr_tariff_refunds(t, "13800000002", 11, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].border_roaming, 1);
    assert_int_equal(r[0].company_liable, 0);
    assert_null(cdr_tariff_refunds(t, "13900000003", 11, &n));
    assert_int_equal(n, 0);
}

/* A few refusals checked at the library level (the CLI test covers one
 * directory per reason under testdata/tariff-bad/). */
static void expect_refusal(const char *rates, const char *want)
{
    char *dir = write_dir("bad", "plans.csv", "plan\np\n", "bands.csv",
                          "band,days,from,to\npeak,all,08:00,20:00\noff,all,20:00,08:00\n",
                          "rates.csv", rates, "subscribers.csv", "msisdn,plan,valid_from\n",
                          NULL);
    cdr_tariff *t = (cdr_tariff *)1;
    char err[256];
    assert_int_equal(cdr_tariff_load(dir, &t, err, sizeof err), CDR_E_TARIFF);
    assert_null(t);
    assert_string_equal(err, want);
    rm_dir(dir);
}

static void test_refusals(void **st)
{
    (void)st;
    expect_refusal("plan,service,price,band\np,voice,1,peak\np,voice,1,peek\n",
                   "rates.csv:3: band 'peek' is not in bands.csv");
    expect_refusal("plan,service,price\np,voice,-0.01\n", "rates.csv:2: negative price -0.01");
    expect_refusal("plan,service,price,unit\np,voice,1,0\n",
                   "rates.csv:2: unit '0' must be a whole number > 0");
    expect_refusal("plan,service\np,voice\n", "rates.csv:1: missing required column 'price'");
    expect_refusal("plan,service,price\n\"p,voice,1\n",
                   "rates.csv:2: malformed CSV (unterminated quote)");
    expect_refusal("plan,service,price\np,voice,1,2\n",
                   "rates.csv:2: 4 fields, but the header has 3");
    expect_refusal("plan,service,price\nq,voice,1\n",
                   "rates.csv:2: unknown plan 'q' (not in plans.csv)");
    /* a quoted field over two lines: the next row's line is still right */
    expect_refusal("plan,service,price,label\np,voice,1,\"two\nlines\"\np,fax,1,x\n",
                   "rates.csv:4: unknown service 'fax' (voice, sms, data or vas)");
    char err[256];
    cdr_tariff *t = NULL;
    assert_int_equal(cdr_tariff_load("/nonexistent/cdrecon", &t, err, sizeof err), CDR_E_IO);
    assert_null(t);
    char *dir = write_dir("nop", "rates.csv", "plan\n", NULL);
    assert_int_equal(cdr_tariff_load(dir, &t, err, sizeof err), CDR_E_TARIFF);
    assert_non_null(strstr(err, "plans.csv: required table is missing"));
    rm_dir(dir);
    cdr_tariff_free(NULL);
}

/* ---- the table reader's direct split against libcsv ---- */
static cdr_err trace_row(void *ud, const cdr_str *f, size_t nf, uint32_t line, char *err,
                         size_t errlen)
{
    (void)err;
    (void)errlen;
    buf *t = ud;
    bprintf(t, "@%u:%zu|", (unsigned)line, nf);
    for (size_t i = 0; i < nf; i++) {
        bput(t, f[i].p, f[i].n);
        bput(t, "\x1f", 1);
    }
    return CDR_OK;
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    return trnd(&rng, n);
}

/* Random tables (plain rows, quoted fields with commas, quotes and line
 * ends inside, CR LF and bare CR, blank and space-only lines, NUL bytes, a
 * BOM, a missing last line end, wrong field counts) read with the direct
 * split and with libcsv alone: the same rows, lines and fields, the same
 * status and message. */
static void test_csvtable_fast_path_matches_libcsv(void **st)
{
    (void)st;
    char dir[] = "/tmp/cdr-csvt.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/t.csv", dir);
    static const char *const pieces[] = {"a", "bb", " c ", "", "1,5", "x\"y", "\"q,1\"",
                                         "\"l1\nl2\"", "\"\"", "\"a\"\"b\"", "\t", "z"};
    int differed_paths = 0;
    for (int round = 0; round < 3000; round++) {
        buf t[2] = {{0}};
        char *text = NULL;
        size_t tn = 0;
        FILE *mf = open_memstream(&text, &tn);
        assert_non_null(mf);
        if (rnd(10) == 0)
            fputs("\xEF\xBB\xBF", mf);
        int cols = 1 + (int)rnd(4), rows = (int)rnd(12);
        for (int r = 0; r <= rows; r++) {
            int k = rnd(20) == 0 ? cols + 1 - 2 * (int)rnd(2) : cols;
            for (int c = 0; c < k; c++) {
                if (c)
                    fputc(',', mf);
                fputs(rnd(3) ? pieces[rnd(4)] : pieces[rnd(sizeof pieces / sizeof *pieces)], mf);
                if (rnd(200) == 0)
                    fputc('\0', mf);
            }
            unsigned e = rnd(12);
            if (r == rows && rnd(3) == 0)
                break; /* no line end at the end */
            fputs(e == 0 ? "\r\n" : e == 1 ? "\r" : e == 2 ? "\n\n" : e == 3 ? "\n \n" : "\n", mf);
        }
        fclose(mf);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        fwrite(text, 1, tn, fp);
        fclose(fp);
        cdr_err e[2];
        char err[2][256];
        for (int mode = 0; mode < 2; mode++) {
            csvt_set_fast_path(mode);
            err[mode][0] = '\0';
            e[mode] = csvt_read(path, "t.csv", trace_row, &t[mode], NULL, NULL, NULL, err[mode],
                                sizeof err[mode]);
        }
        csvt_set_fast_path(1);
        if (e[0] != e[1] || strcmp(err[0], err[1]) != 0 || t[0].n != t[1].n ||
            (t[0].n && memcmp(t[0].p, t[1].p, t[0].n) != 0)) {
            fprintf(stderr, "round %d differs: %d '%s' / %d '%s'\n%.*s\n---\n%.*s\n", round,
                    e[0], err[0], e[1], err[1], (int)t[0].n, t[0].p, (int)t[1].n, t[1].p);
            fail();
        }
        differed_paths += e[0] == CDR_OK && t[0].n > 0;
        free(t[0].p);
        free(t[1].p);
        free(text);
    }
    assert_true(differed_paths > 300); /* many tables read whole */
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_fields),
        cmocka_unit_test(test_find_rate),
        cmocka_unit_test(test_free_number),
        cmocka_unit_test(test_band_at),
        cmocka_unit_test(test_band_weekend_switch),
        cmocka_unit_test(test_subscriber),
        cmocka_unit_test(test_subscribed_refunds),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_csvtable_fast_path_matches_libcsv),
        cmocka_unit_test(test_free_number_filter_matches_search),
        cmocka_unit_test(test_find_rate_matches_search),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
