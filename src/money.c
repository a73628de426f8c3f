/* cdrecon — exact decimal money: parse, format, round once half-up. */
#include "cdrecon/common.h"

cdr_err cdr_money_parse(const char *s, size_t n, cdr_money *out)
{
    size_t i = 0;
    int neg = 0;
    int64_t whole = 0, frac = 0;
    int fdigits = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i >= n || s[i] < '0' || s[i] > '9')
        return CDR_E_PARSE;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (whole > CDR_MONEY_MAX / CDR_MICRO)
            return CDR_E_RANGE;
        whole = whole * 10 + (s[i] - '0');
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n)
            return CDR_E_PARSE;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (fdigits == 6) {
                /* trailing zeros beyond 6 digits are still exact */
                if (s[i] != '0')
                    return CDR_E_RANGE;
                continue;
            }
            frac = frac * 10 + (s[i] - '0');
            fdigits++;
        }
        if (fdigits == 0)
            return CDR_E_PARSE;
    }
    if (i != n)
        return CDR_E_PARSE;
    while (fdigits < 6) {
        frac *= 10;
        fdigits++;
    }
    if (whole > CDR_MONEY_MAX / CDR_MICRO)
        return CDR_E_RANGE;
    int64_t v = whole * CDR_MICRO + frac;
    if (v > CDR_MONEY_MAX)
        return CDR_E_RANGE;
    *out = neg ? -v : v;
    return CDR_OK;
}

size_t cdr_money_format(cdr_money v, int min_decimals, char *buf)
{
    char tmp[32];
    size_t n = 0, k = 0;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t whole = a / CDR_MICRO, frac = a % CDR_MICRO;
    int decimals = 6;

    if (min_decimals < 0)
        min_decimals = 0;
    if (min_decimals > 6)
        min_decimals = 6;
    while (decimals > min_decimals && frac % 10 == 0) {
        frac /= 10;
        decimals--;
    }
    if (v < 0)
        buf[n++] = '-';
    do {
        tmp[k++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    while (k)
        buf[n++] = tmp[--k];
    if (decimals > 0) {
        buf[n++] = '.';
        for (int d = decimals - 1; d >= 0; d--) {
            uint64_t p = 1;
            for (int j = 0; j < d; j++)
                p *= 10;
            buf[n++] = (char)('0' + (frac / p) % 10);
        }
    }
    buf[n] = '\0';
    return n;
}

cdr_err cdr_money_round(__int128 num, __int128 den, cdr_money step, cdr_money *out)
{
    if (den <= 0 || step <= 0 || den > ((__int128)1 << 62))
        return CDR_E_RANGE;
    if (num > ((__int128)1 << 124) || num < -((__int128)1 << 124))
        return CDR_E_RANGE;
    int neg = num < 0;
    if (neg)
        num = -num;
    /* q = floor(num/den/step + 1/2) = floor((2*num + step*den) / (2*step*den)) */
    __int128 d2 = (__int128)2 * step * den;
    __int128 q = (2 * num + (__int128)step * den) / d2;
    __int128 r = q * step;
    if (r > CDR_MONEY_MAX)
        return CDR_E_RANGE;
    *out = (cdr_money)(neg ? -r : r);
    return CDR_OK;
}
