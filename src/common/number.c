/* cdrecon — subscriber and peer number normalisation and masking. */
#include <string.h>

#include "cdrecon/common.h"
#include "swar.h"

static int all_digits(const char *s, size_t n)
{
    if (n >= 8) { /* eight at a time, the last eight overlapping */
        uint64_t x, bad = 0;
        for (size_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&x, s + i, 8);
            bad |= cdr_nondigit8(x);
        }
        memcpy(&x, s + n - 8, 8);
        return !(bad | cdr_nondigit8(x));
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int is_mobile11(const char *s, size_t n)
{
    return n == 11 && s[0] == '1';
}

cdr_err cdr_number_normalise(const char *s, size_t n, cdr_str *out)
{
    int plus = 0;
    if (n > 0 && s[0] == '+') {
        plus = 1;
        s++;
        n--;
    }
    if (n == 0 || n > CDR_NUMBER_MAX || !all_digits(s, n))
        return CDR_E_PARSE;
    if (plus) {
        /* "+86" + 11-digit mobile */
        if (n == 13 && s[0] == '8' && s[1] == '6' && is_mobile11(s + 2, 11)) {
            s += 2;
            n -= 2;
        }
    } else if (n == 15 && s[0] == '0' && s[1] == '0' && s[2] == '8' && s[3] == '6' &&
               is_mobile11(s + 4, 11)) {
        s += 4;
        n -= 4;
    } else if (n == 13 && s[0] == '8' && s[1] == '6' && is_mobile11(s + 2, 11)) {
        s += 2;
        n -= 2;
    }
    out->p = s;
    out->n = n;
    return CDR_OK;
}

size_t cdr_number_mask(const char *s, size_t n, char *buf)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (n >= 8 && i >= 3 && i + 4 < n) ? '*' : s[i];
    buf[n] = '\0';
    return n;
}
