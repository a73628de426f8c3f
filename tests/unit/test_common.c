/* Unit tests: money, time, numbers, error table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "testrnd.h"
#include "cdrecon/common.h"
#include "swar.h"
#include "cdrecon/record.h"

static cdr_money M(const char *s)
{
    cdr_money v = 0;
    assert_int_equal(cdr_money_parse(s, strlen(s), &v), CDR_OK);
    return v;
}

static void test_money_parse(void **st)
{
    (void)st;
    assert_int_equal(M("0.19"), 190000);
    assert_int_equal(M("0.0003"), 300);
    assert_int_equal(M("12"), 12000000);
    assert_int_equal(M("-3.5"), -3500000);
    assert_int_equal(M("0.000001"), 1);
    assert_int_equal(M("1.2300000"), 1230000); /* zeros past 6 digits are exact */
    assert_int_equal(M("1000000000000"), CDR_MONEY_MAX);
    cdr_money v;
    const char *bad[] = {"", "-", ".5", "5.", "1,5", " 1", "1 ", "+1", "1e3", "0x10", "1.2.3", "--1", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cdr_money_parse(bad[i], strlen(bad[i]), &v), CDR_E_PARSE);
    assert_int_equal(cdr_money_parse("0.0000001", 9, &v), CDR_E_RANGE);
    assert_int_equal(cdr_money_parse("1000000000000.000001", 20, &v), CDR_E_RANGE);
    assert_int_equal(cdr_money_parse("99999999999999999999999", 23, &v), CDR_E_RANGE);
}

static void test_money_format(void **st)
{
    (void)st;
    char b[32];
    cdr_money_format(190000, 2, b);
    assert_string_equal(b, "0.19");
    cdr_money_format(300, 2, b);
    assert_string_equal(b, "0.0003");
    cdr_money_format(-3500000, 2, b);
    assert_string_equal(b, "-3.50");
    cdr_money_format(0, 2, b);
    assert_string_equal(b, "0.00");
    cdr_money_format(12000000, 0, b);
    assert_string_equal(b, "12");
    cdr_money_format(1, 0, b);
    assert_string_equal(b, "0.000001");
    cdr_money_format(CDR_MONEY_MAX, 2, b);
    assert_string_equal(b, "1000000000000.00");
}

static cdr_money R(__int128 num, __int128 den, cdr_money step)
{
    cdr_money out = -1;
    assert_int_equal(cdr_money_round(num, den, step, &out), CDR_OK);
    return out;
}

/* Totals of a run saturate at INT64_MAX ("out of range"), never wrap. */
static void test_money_total_add(void **st)
{
    (void)st;
    char b[40];
    assert_int_equal(cdr_money_total_add(1, 2), 3);
    assert_int_equal(cdr_money_total_add(CDR_MONEY_MAX, CDR_MONEY_MAX), 2 * CDR_MONEY_MAX);
    assert_int_equal(cdr_money_total_add(INT64_MAX - 5, 5), CDR_MONEY_TOTAL_OVER);
    assert_int_equal(cdr_money_total_add(INT64_MAX - 5, 6), CDR_MONEY_TOTAL_OVER);
    cdr_money t = 0;
    for (int i = 0; i < 10; i++)
        t = cdr_money_total_add(t, CDR_MONEY_MAX);
    assert_int_equal(t, CDR_MONEY_TOTAL_OVER);
    assert_int_equal(cdr_money_total_add(t, 0), CDR_MONEY_TOTAL_OVER); /* stays */
    cdr_money_format_total(t, 2, b);
    assert_string_equal(b, "out of range");
    cdr_money_format_total(9 * CDR_MONEY_MAX, 2, b);
    assert_string_equal(b, "9000000000000.00");
}

static void test_money_round_midpoints(void **st)
{
    (void)st;
    /* exact half-fen midpoints round up */
    assert_int_equal(R(5000, 1, 10000), 10000);     /* 0.005 -> 0.01 */
    assert_int_equal(R(4999, 1, 10000), 0);         /* 0.004999 -> 0.00 */
    assert_int_equal(R(115000, 1, 10000), 120000);  /* 0.115 -> 0.12 (CONTRACT example) */
    assert_int_equal(R(125000, 1, 10000), 130000);  /* 0.125 -> 0.13, not banker's 0.12 */
    assert_int_equal(R(114999, 1, 10000), 110000);
    /* rationals: 10 s x 0.19/60 + 50 s x 0.10/60 = (1.9 + 5.0)/60 yuan = 0.115 */
    assert_int_equal(R((__int128)10 * 190000 + 50 * 100000, 60, 10000), 120000);
    /* 1/3 of a fen-and-a-half etc */
    assert_int_equal(R(15000, 3, 10000), 10000);    /* 0.005 exactly via 15000/3 */
    assert_int_equal(R(14999, 3, 10000), 0);
    /* yuan rounding and micro rounding */
    assert_int_equal(R(500000, 1, 1000000), 1000000);
    assert_int_equal(R(499999, 1, 1000000), 0);
    assert_int_equal(R(7, 2, 1), 4);                 /* 3.5 micro -> 4 */
    /* negative amounts: half away from zero */
    assert_int_equal(R(-5000, 1, 10000), -10000);
    cdr_money o;
    assert_int_equal(cdr_money_round(1, 0, 10000, &o), CDR_E_RANGE);
    /* around 2^63 in the numerator and the divisor (where the 64-bit
     * division gives way to the 128-bit one): the exact half-up quotient,
     * computed here in 128 bits, and the range limit */
    static const cdr_money steps[] = {1, 10000, 1000000};
    for (size_t si = 0; si < 3; si++)
        for (int k = -3; k <= 3; k++)
            for (int dk = 0; dk < 3; dk++) {
                cdr_money step = steps[si];
                __int128 den = dk == 0 ? 1 : dk == 1 ? 7 : ((__int128)1 << 62) / step / 2 + k;
                __int128 num = (((__int128)1 << 62) + k) - (__int128)step * den / 2;
                if (num < 0)
                    continue;
                __int128 q = (2 * num + (__int128)step * den) / ((__int128)2 * step * den) * step;
                cdr_err e = cdr_money_round(num, den, step, &o);
                if (q > CDR_MONEY_MAX) {
                    assert_int_equal(e, CDR_E_RANGE);
                } else {
                    assert_int_equal(e, CDR_OK);
                    assert_true(o == (cdr_money)q);
                }
            }
    /* on both sides of the 64-bit path's limits (num 2^61, den and step
     * 2^30), small values and midpoints: the quotient computed in 128 bits */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        __int128 lim[3] = {(__int128)1 << 61, (__int128)1 << 30, (__int128)1 << 30};
        __int128 v[3];
        for (int j = 0; j < 3; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            switch (x % 4) {
            case 0:
                v[j] = lim[j] - 4 + (__int128)(x >> 8) % 8; /* at the limit */
                break;
            case 1:
                v[j] = (__int128)(x >> 8) % 1000 + (j ? 1 : 0);
                break;
            default:
                v[j] = (__int128)x % (lim[j] * 2) + (j ? 1 : 0);
            }
        }
        if (i % 3 == 0) /* an exact midpoint: num/den = (k + 1/2) step */
            v[0] = ((__int128)(x >> 20) % 100000 * 2 + 1) * v[2] * v[1] / 2;
        __int128 q = (2 * v[0] + v[2] * v[1]) / (2 * v[2] * v[1]) * v[2];
        cdr_err e = cdr_money_round(v[0], v[1], (cdr_money)v[2], &o);
        if (q > CDR_MONEY_MAX) {
            assert_int_equal(e, CDR_E_RANGE);
        } else {
            assert_int_equal(e, CDR_OK);
            assert_true(o == (cdr_money)q);
        }
    }
}

static cdr_time T(const char *s)
{
    cdr_time t = 0;
    assert_int_equal(cdr_time_parse(s, strlen(s), &t), CDR_OK);
    return t;
}

/* cdr_time_parse reads the usual form a word at a time and falls back to
 * the general parser for anything else; against a plain reference here
 * (its own calendar: days counted year by year), on valid and out-of-range
 * values and on strings with one byte replaced (digits' neighbours '/' and
 * ':', separators, 'T', NUL, 0xFF) or a length off by one. */
static int ref_digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

static int ref_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static cdr_err ref_time_parse(const char *s, size_t n, cdr_time *out)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, hh, mi, ss;
    if (n != 19 || (s[10] != ' ' && s[10] != 'T'))
        return CDR_E_PARSE;
    if (!ref_digits(s, 4, &y) || s[4] != '-' || !ref_digits(s + 5, 2, &m) || s[7] != '-' ||
        !ref_digits(s + 8, 2, &d))
        return CDR_E_PARSE;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > dm[m - 1] + (m == 2 && ref_leap(y)))
        return CDR_E_RANGE;
    if (!ref_digits(s + 11, 2, &hh) || s[13] != ':' || !ref_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !ref_digits(s + 17, 2, &ss))
        return CDR_E_PARSE;
    if (hh > 23 || mi > 59 || ss > 59)
        return CDR_E_RANGE;
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += 365 + ref_leap(yy);
    for (int yy = y; yy < 1970; yy++)
        days -= 365 + ref_leap(yy);
    for (int mm = 1; mm < m; mm++)
        days += dm[mm - 1] + (mm == 2 && ref_leap(y));
    days += d - 1;
    *out = days * 86400 + hh * 3600 + mi * 60 + ss;
    return CDR_OK;
}

static void test_time_parse_matches_reference(void **st)
{
    (void)st;
    static const char subst[] = "0123456789/:- Ta\0\xff";
    uint64_t x = 0x853C49E6748FEA9Bull;
    for (int i = 0; i < 300000; i++) {
        char b[40];
        unsigned v[6];
        v[0] = 1890 + trnd(&x, 220);
        v[1] = trnd(&x, 14);
        v[2] = trnd(&x, 33);
        v[3] = trnd(&x, 26);
        v[4] = trnd(&x, 62);
        v[5] = trnd(&x, 62);
        int len = snprintf(b, sizeof b, "%04u-%02u-%02u %02u:%02u:%02u", v[0], v[1], v[2], v[3],
                           v[4], v[5]);
        if (i % 3 == 1) {
            unsigned at = trnd(&x, 19);
            b[at] = subst[trnd(&x, sizeof subst - 1)];
        }
        size_t n = (size_t)len;
        if (i % 50 == 7)
            n = 18 + trnd(&x, 3); /* 18, 19 or 20 bytes (b has room) */
        cdr_time got = -1, want = -1;
        cdr_err eg = cdr_time_parse(b, n, &got), ew = ref_time_parse(b, n, &want);
        if (eg != ew || (ew == CDR_OK && got != want))
            fail_msg("%.*s: %d %lld, want %d %lld", (int)n, b, (int)eg, (long long)got, (int)ew,
                     (long long)want);
    }
}

static void test_time(void **st)
{
    (void)st;
    char b[32];
    assert_int_equal(T("1970-01-01 00:00:00"), 0);
    assert_int_equal(T("2026-11-23 01:02:03"), T("2026-11-23T01:02:03"));
    cdr_time t = T("2024-02-29 23:59:59");
    cdr_time_format(t, b);
    assert_string_equal(b, "2024-02-29 23:59:59");
    assert_int_equal(cdr_time_of_day(t), 86399);
    cdr_month_format(cdr_time_month(t), b);
    assert_string_equal(b, "2024-02");
    assert_int_equal(cdr_time_month(t + 1), cdr_time_month(t) + 1);
    assert_int_equal(cdr_month_start(cdr_time_month(t) + 1), t + 1);
    assert_int_equal(cdr_time_weekday(T("2026-11-23 12:00:00")), 0); /* a Monday */
    assert_int_equal(cdr_time_weekday(T("2026-11-22 12:00:00")), 6); /* Sunday */
    assert_int_equal(cdr_time_weekday(T("1969-12-31 12:00:00")), 2); /* Wednesday */
    cdr_time x;
    const char *bad[] = {"2023-02-29 00:00:00", "2024-13-01 00:00:00", "2024-01-01 24:00:00",
                         "2024-01-01 00:60:00", "2024-01-01  0:00:00", "2024/01/01 00:00:00",
                         "2024-01-01 00:00", "2024-01-01 00:00:00Z", "1899-12-31 00:00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_not_equal(cdr_time_parse(bad[i], strlen(bad[i]), &x), CDR_OK);
    int32_t hm;
    assert_int_equal(cdr_hhmm_parse("23:00", 5, &hm), CDR_OK);
    assert_int_equal(hm, 23 * 3600);
    assert_int_equal(cdr_hhmm_parse("24:00", 5, &hm), CDR_OK);
    assert_int_equal(hm, 86400);
    assert_int_not_equal(cdr_hhmm_parse("24:01", 5, &hm), CDR_OK);
    cdr_month m;
    assert_int_equal(cdr_month_parse("2026-11", 7, &m), CDR_OK);
    cdr_month_format(m, b);
    assert_string_equal(b, "2026-11");
    assert_int_not_equal(cdr_month_parse("2026-13", 7, &m), CDR_OK);
}

static const char *N(const char *s)
{
    static char buf[64];
    cdr_str o;
    assert_int_equal(cdr_number_normalise(s, strlen(s), &o), CDR_OK);
    memcpy(buf, o.p, o.n);
    buf[o.n] = 0;
    return buf;
}

static void test_numbers(void **st)
{
    (void)st;
    assert_string_equal(N("13800138000"), "13800138000");
    assert_string_equal(N("+8613800138000"), "13800138000");
    assert_string_equal(N("008613800138000"), "13800138000");
    assert_string_equal(N("8613800138000"), "13800138000");
    assert_string_equal(N("10086"), "10086");
    assert_string_equal(N("862112345678"), "862112345678"); /* 12 digits: not +86 mobile */
    assert_string_equal(N("+8602112345678"), "+8602112345678" + 1); /* '+' dropped only */
    assert_string_equal(N("8623800138000"), "8623800138000"); /* rest starts with 2: not a mobile */
    cdr_str o;
    assert_int_equal(cdr_number_normalise("", 0, &o), CDR_E_PARSE);
    assert_int_equal(cdr_number_normalise("138-0013", 8, &o), CDR_E_PARSE);
    assert_int_equal(cdr_number_normalise("+", 1, &o), CDR_E_PARSE);
    /* the digit check (eight bytes at a time) against a byte loop: every
     * length up to CDR_NUMBER_MAX + 1, every byte value at every position */
    char s[CDR_NUMBER_MAX + 2];
    int rejected = 0;
    for (size_t n = 1; n <= CDR_NUMBER_MAX + 1; n++)
        for (size_t at = 0; at < n; at++)
            for (int c = 0; c < 256; c++) {
                for (size_t i = 0; i < n; i++)
                    s[i] = (char)('0' + (i * 7 + n) % 10);
                s[at] = (char)c;
                size_t plus = s[0] == '+';
                int ok = n - plus >= 1 && n - plus <= CDR_NUMBER_MAX;
                for (size_t i = plus; i < n; i++)
                    ok &= s[i] >= '0' && s[i] <= '9';
                cdr_err e = cdr_number_normalise(s, n, &o);
                if ((e == CDR_OK) != ok)
                    fail_msg("length %zu, byte 0x%02x at %zu: %d", n, c, at, (int)e);
                rejected += !ok;
            }
    assert_true(rejected > 10000);
    char b[64];
    cdr_number_mask("13812341234", 11, b);
    assert_string_equal(b, "138****1234");
    cdr_number_mask("10086", 5, b);
    assert_string_equal(b, "10086");
}

/* cdr_find_byte (word at a time up to 32 bytes) against memchr: every
 * length to 40, the byte at every position, alone, twice, or absent, with
 * neighbours that trip the zero-byte test's borrow (c - 1, c + 1, 0x80). */
static void test_find_byte(void **st)
{
    (void)st;
    static const unsigned char cs[] = {0, ';', 0x80, 0xff, 1};
    char buf[48];
    int found = 0;
    for (size_t ci = 0; ci < sizeof cs; ci++) {
        unsigned char c = cs[ci];
        for (size_t n = 0; n <= 40; n++)
            for (size_t at = 0; at <= n; at++)
                for (int fill = 0; fill < 4; fill++) {
                    for (size_t i = 0; i < sizeof buf; i++)
                        buf[i] = (char)(fill == 0   ? c + 1
                                        : fill == 1 ? c - 1
                                        : fill == 2 ? 0x80
                                                    : 'a' + (int)(i % 7)); /* (no c in cs) */
                    if (at < n) {
                        buf[at] = (char)c;
                        if (at + 3 < n)
                            buf[at + 3] = (char)c;
                    }
                    const char *want = n ? memchr(buf, c, n) : NULL;
                    const char *got = cdr_find_byte(buf, n, c);
                    if (got != want)
                        fail_msg("byte 0x%02x, length %zu, at %zu, fill %d: %td, want %td", c, n,
                                 at, fill, got ? got - buf : -1, want ? want - buf : -1);
                    found += got != NULL;
                }
    }
    assert_true(found > 10000);
}

static void test_errors(void **st)
{
    (void)st;
    for (int e = 0; e < CDR_E__COUNT; e++) {
        assert_string_not_equal(cdr_strerror((cdr_err)e), "unknown error");
        assert_true(strncmp(cdr_errname((cdr_err)e), "CDR_", 4) == 0);
    }
    assert_string_equal(cdr_strerror((cdr_err)999), "unknown error");
    cdr_service s;
    assert_int_equal(cdr_service_parse("VOICE", 5, &s), CDR_OK);
    assert_int_equal(s, CDR_SVC_VOICE);
    assert_int_equal(cdr_service_parse("mms", 3, &s), CDR_E_PARSE);
    /* every name in any case; prefixes, extensions and non-ASCII folds refused */
    static const struct { const char *in; int ok; cdr_service want; } sv[] = {
        {"sms", 1, CDR_SVC_SMS},   {"Sms", 1, CDR_SVC_SMS},    {"DATA", 1, CDR_SVC_DATA},
        {"dAtA", 1, CDR_SVC_DATA}, {"vas", 1, CDR_SVC_VAS},    {"VaS", 1, CDR_SVC_VAS},
        {"voice", 1, CDR_SVC_VOICE}, {"voic", 0, 0},           {"voices", 0, 0},
        {"sm", 0, 0},              {"", 0, 0},                 {"d\xc3\xa1ta", 0, 0},
        {"v@ice", 0, 0},           {"DATA ", 0, 0},
    };
    for (size_t i = 0; i < sizeof sv / sizeof *sv; i++) {
        cdr_err e = cdr_service_parse(sv[i].in, strlen(sv[i].in), &s);
        assert_int_equal(e, sv[i].ok ? CDR_OK : CDR_E_PARSE);
        if (sv[i].ok)
            assert_int_equal(s, sv[i].want);
    }
    cdr_direction d;
    assert_int_equal(cdr_direction_parse("mO", 2, &d), CDR_OK);
    assert_int_equal(d, CDR_DIR_MO);
    assert_int_equal(cdr_direction_parse("m", 1, &d), CDR_E_PARSE);
    assert_int_equal(cdr_direction_parse("mox", 3, &d), CDR_E_PARSE);
    assert_int_equal(cdr_direction_parse("m\x0f", 2, &d), CDR_E_PARSE); /* 'O' - 64 */
    assert_int_equal(cdr_direction_parse("", 0, &d), CDR_OK);
    assert_int_equal(d, CDR_DIR_MO);
    assert_int_equal(cdr_direction_parse("MT", 2, &d), CDR_OK);
    assert_int_equal(d, CDR_DIR_MT);

    /* Against the reference (strncasecmp in the C locale, exact length) for
     * every string of up to 5 bytes over an alphabet of each name's letters
     * in both cases and the bytes next to them (a byte that only looks like
     * a letter after | 0x20 must not match), each 1..5-byte length. */
    static const char names[][6] = {"voice", "sms", "data", "vas"};
    static const char alpha[] = "voicesmdatVOICESMDATx@`\x00\x80\xc1\xe1\x16\x36\x56\x76";
    const size_t na = sizeof alpha - 1;
    char buf[8];
    long checked = 0;
    for (size_t len = 0; len <= 5; len++) {
        size_t combos = 1;
        for (size_t k = 0; k < len; k++)
            combos *= na;
        for (size_t c = 0; c < combos; c++) {
            size_t x = c;
            for (size_t k = 0; k < len; k++, x /= na)
                buf[k] = alpha[x % na];
            int want = -1;
            for (int i = 0; i < 4; i++)
                if (strlen(names[i]) == len && strncasecmp(buf, names[i], len) == 0 &&
                    !memchr(buf, 0, len))
                    want = i;
            cdr_service got = (cdr_service)-1;
            cdr_err e = cdr_service_parse(buf, len, &got);
            assert_int_equal(e, want >= 0 ? CDR_OK : CDR_E_PARSE);
            if (want >= 0)
                assert_int_equal(got, want);
            if (len <= 2) {
                int dw = len == 0 ? 0
                         : len == 2 && !memchr(buf, 0, 2) && strncasecmp(buf, "mo", 2) == 0 ? 0
                         : len == 2 && !memchr(buf, 0, 2) && strncasecmp(buf, "mt", 2) == 0 ? 1
                                                                                           : -1;
                e = cdr_direction_parse(buf, len, &d);
                assert_int_equal(e, dw >= 0 ? CDR_OK : CDR_E_PARSE);
                if (dw >= 0)
                    assert_int_equal(d, dw);
            }
            checked++;
        }
    }
    assert_true(checked > 5000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money_parse),  cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_money_round_midpoints), cmocka_unit_test(test_money_total_add), cmocka_unit_test(test_find_byte), cmocka_unit_test(test_time),
        cmocka_unit_test(test_time_parse_matches_reference),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
