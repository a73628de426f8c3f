/* cdrecon — exact decimal money: parse, format, round once half-up. */
#include <string.h>

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

static const char two_digits[201] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

size_t cdr_money_format(cdr_money v, int min_decimals, char *buf)
{
    size_t n = 0;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t whole = a / CDR_MICRO;
    unsigned frac = (unsigned)(a % CDR_MICRO);
    int decimals = 6;

    if (min_decimals < 0)
        min_decimals = 0;
    if (min_decimals > 6)
        min_decimals = 6;
    if (v < 0)
        buf[n++] = '-';
    size_t k = 1;
    for (uint64_t x = whole; x >= 10; x /= 10)
        k++;
    for (size_t i = n + k; whole >= 10; whole /= 10)
        buf[--i] = (char)('0' + whole % 10);
    buf[n] = (char)('0' + whole);
    n += k;
    /* the six fractional digits; trailing zeros dropped down to min_decimals */
    while (decimals > min_decimals && frac % 10 == 0) {
        frac /= 10;
        decimals--;
    }
    if (decimals > 0) {
        buf[n++] = '.';
        for (int i = decimals; i > 0;) {
            if (i >= 2) {
                memcpy(buf + n + i - 2, two_digits + 2 * (frac % 100), 2);
                frac /= 100;
                i -= 2;
            } else {
                buf[n] = (char)('0' + frac % 10);
                i--;
            }
        }
        n += (size_t)decimals;
    }
    buf[n] = '\0';
    return n;
}

cdr_err cdr_money_round(__int128 num, __int128 den, cdr_money step, cdr_money *out)
{
    /* Every usual charge: num, den and step small and positive, so that
     * the formula below fits in 64 bits (2*num + step*den < 2^62 + 2^60,
     * 2*step*den < 2^61) - the same quotient without 128-bit arithmetic,
     * twice a record. */
    if (num >= 0 && num < ((__int128)1 << 61) && den > 0 && den < ((__int128)1 << 30) &&
        step > 0 && step < ((cdr_money)1 << 30)) {
        uint64_t n64 = (uint64_t)num, d64 = (uint64_t)den, s64 = (uint64_t)step;
        uint64_t r = (2 * n64 + s64 * d64) / (2 * s64 * d64) * s64;
        if (r > (uint64_t)CDR_MONEY_MAX)
            return CDR_E_RANGE;
        *out = (cdr_money)r;
        return CDR_OK;
    }
    if (den <= 0 || step <= 0 || den > ((__int128)1 << 62))
        return CDR_E_RANGE;
    if (num > ((__int128)1 << 124) || num < -((__int128)1 << 124))
        return CDR_E_RANGE;
    int neg = num < 0;
    if (neg)
        num = -num;
    /* q = floor(num/den/step + 1/2) = floor((2*num + step*den) / (2*step*den)) */
    __int128 d2 = (__int128)2 * step * den;
    __int128 a = 2 * num + (__int128)step * den, q;
    /* both fit in 64 bits for every usual charge: one machine division
     * instead of the 128-bit library call (the same quotient) */
    if (a < ((__int128)1 << 63) && d2 < ((__int128)1 << 63))
        q = (__int128)((uint64_t)a / (uint64_t)d2);
    else
        q = a / d2;
    __int128 r = q * step;
    if (r > CDR_MONEY_MAX)
        return CDR_E_RANGE;
    *out = (cdr_money)(neg ? -r : r);
    return CDR_OK;
}

cdr_money cdr_money_total_add(cdr_money a, cdr_money b)
{
    cdr_money r;
    if (a == CDR_MONEY_TOTAL_OVER || b == CDR_MONEY_TOTAL_OVER || __builtin_add_overflow(a, b, &r))
        return CDR_MONEY_TOTAL_OVER;
    return r;
}

const char *cdr_yuan(cdr_money v, char *buf)
{
    cdr_money_format_total(v, 2, buf);
    return buf;
}

size_t cdr_money_format_total(cdr_money v, int min_decimals, char *buf)
{
    if (v == CDR_MONEY_TOTAL_OVER) {
        memcpy(buf, "out of range", sizeof "out of range");
        return sizeof "out of range" - 1;
    }
    return cdr_money_format(v, min_decimals, buf);
}
