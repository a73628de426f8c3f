/*
 * Fuzz target: the exact value parsers (money, time, date, HH:MM, month,
 * numbers, service/direction names). Besides "no crash", every accepted
 * value must survive a format -> parse round trip unchanged.
 */
#include "fuzz_util.h"

#include "cdrecon/common.h"
#include "cdrecon/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char buf[64];
    cdr_money m, m2;
    cdr_time t, t2;
    int32_t hm;
    cdr_month mo, mo2;
    cdr_str num;

    if (cdr_money_parse(s, size, &m) == CDR_OK) {
        FZ_CHECK(m <= CDR_MONEY_MAX && m >= -CDR_MONEY_MAX);
        for (int d = 0; d <= 6; d++) {
            size_t n = cdr_money_format(m, d, buf);
            FZ_CHECK(n < sizeof buf);
            FZ_CHECK(cdr_money_parse(buf, n, &m2) == CDR_OK && m2 == m);
        }
        cdr_money r;
        if (cdr_money_round(m, 1, 10000, &r) == CDR_OK) {
            FZ_CHECK(r % 10000 == 0);
            __int128 diff = (__int128)m - r;
            FZ_CHECK(diff <= 5000 && diff >= -5000);
            if (diff == 5000 || diff == -5000) /* a tie goes away from zero */
                FZ_CHECK(r < 0 ? r < m : r > m);
        }
    }
    if (cdr_time_parse(s, size, &t) == CDR_OK) {
        size_t n = cdr_time_format(t, buf);
        FZ_CHECK(n == 19 && cdr_time_parse(buf, n, &t2) == CDR_OK && t2 == t);
        FZ_CHECK(size == 19 && memcmp(buf, s, 10) == 0 && memcmp(buf + 11, s + 11, 8) == 0);
        FZ_CHECK(cdr_time_of_day(t) >= 0 && cdr_time_of_day(t) < 86400);
        FZ_CHECK(cdr_time_weekday(t) >= 0 && cdr_time_weekday(t) < 7);
        mo = cdr_time_month(t);
        FZ_CHECK(cdr_month_start(mo) <= t && t < cdr_month_start(mo + 1));
    }
    if (cdr_date_parse(s, size, &t) == CDR_OK) {
        size_t n = cdr_date_format(t, buf);
        FZ_CHECK(n == 10 && cdr_date_parse(buf, n, &t2) == CDR_OK && t2 == t);
        FZ_CHECK(cdr_time_day(t) == t);
    }
    if (cdr_hhmm_parse(s, size, &hm) == CDR_OK)
        FZ_CHECK(hm >= 0 && hm <= 86400);
    if (cdr_month_parse(s, size, &mo) == CDR_OK) {
        size_t n = cdr_month_format(mo, buf);
        FZ_CHECK(cdr_month_parse(buf, n, &mo2) == CDR_OK && mo2 == mo);
    }
    if (cdr_number_normalise(s, size, &num) == CDR_OK) {
        FZ_CHECK(num.n >= 1 && num.n <= CDR_NUMBER_MAX);
        FZ_CHECK(num.p >= s && num.p + num.n <= s + size);
        char *mask = malloc(num.n + 1);
        if (mask) {
            size_t k = cdr_number_mask(num.p, num.n, mask);
            FZ_CHECK(k == num.n);
            free(mask);
        }
    }
    cdr_service sv;
    cdr_direction dr;
    (void)cdr_service_parse(s, size, &sv);
    (void)cdr_direction_parse(s, size, &dr);
    return 0;
}
