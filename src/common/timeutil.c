/* cdrecon — operator-local wall-clock time arithmetic (no zones, no DST). */
#include <string.h>

#include "cdrecon/common.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *py, unsigned *pm, unsigned *pd)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *py = (int)(y + (m <= 2));
    *pm = m;
    *pd = d;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static cdr_err parse_ymd(const char *s, int64_t *days)
{
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return CDR_E_PARSE;
    if (y < 1900 || m < 1 || m > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)m))
        return CDR_E_RANGE;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return CDR_OK;
}

/* The usual "YYYY-MM-DD HH:MM:SS" of a CDR, read as three words: the
 * fourteen digits and five separators checked a word at a time (a byte is
 * a digit when its high nibble is 3 and adding 6 does not carry out of its
 * low nibble), and the month's first day remembered per thread. Anything
 * else (a bad byte, a value out of range, 'T', another length) goes the
 * general way below, which gives the error. Returns 1 with *out set, or 0. */
static int time_parse_fast(const char *s, cdr_time *out)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    (void)s;
    (void)out;
    return 0; /* the words below are read little-endian */
#else
    uint64_t a, b, c;
    memcpy(&a, s, 8);      /* YYYY-MM- */
    memcpy(&b, s + 8, 8);  /* DD HH:MM */
    memcpy(&c, s + 11, 8); /* HH:MM:SS */
    /* digit bytes: a 0..3, 5, 6; b 0, 1, 3, 4, 6, 7; c 6, 7 (c 0..5 are b's) */
    const uint64_t da = 0x00FFFF00FFFFFFFFull; /* bytes 0-3, 5, 6 */
    const uint64_t db = 0xFFFF00FFFF00FFFFull;                      /* bytes 0,1,3,4,6,7 */
    const uint64_t dc = 0xFFFF000000000000ull;                      /* bytes 6, 7 */
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ull, three = 0x3030303030303030ull,
                   six = 0x0606060606060606ull;
    if (((a & hi & da) ^ (three & da)) | (((a + six) & hi & da) ^ (three & da)) |
        ((b & hi & db) ^ (three & db)) | (((b + six) & hi & db) ^ (three & db)) |
        ((c & hi & dc) ^ (three & dc)) | (((c + six) & hi & dc) ^ (three & dc)))
        return 0;
    /* separators: a[4] a[7] '-', b[2] ' ', b[5] ':', c[5] ':' */
    if ((a & ~da) != 0x2D00002D00000000ull || (b & ~db) != 0x00003A0000200000ull ||
        ((c >> 40) & 0xFF) != ':')
        return 0;
    const uint64_t lo = 0x0F0F0F0F0F0F0F0Full;
    a &= lo;
    b &= lo;
    c &= lo;
#define D(w, i) ((unsigned)((w) >> (8 * (i))) & 0xF)
    unsigned y = D(a, 0) * 1000 + D(a, 1) * 100 + D(a, 2) * 10 + D(a, 3);
    unsigned m = D(a, 5) * 10 + D(a, 6), d = D(b, 0) * 10 + D(b, 1);
    unsigned hh = D(b, 3) * 10 + D(b, 4), mi = D(b, 6) * 10 + D(b, 7);
    unsigned ss = D(c, 6) * 10 + D(c, 7);
#undef D
    if (y < 1900 || m < 1 || m > 12 || d < 1 || hh > 23 || mi > 59 || ss > 59)
        return 0;
    static _Thread_local unsigned cy, cm, cdim;
    static _Thread_local int64_t cdays; /* days of y-m-01 */
    if (y != cy || m != cm) {
        cdays = days_from_civil(y, m, 1);
        cdim = days_in_month((int)y, m);
        cy = y;
        cm = m;
    }
    if (d > cdim)
        return 0;
    *out = (cdays + d - 1) * 86400 + hh * 3600 + mi * 60 + ss;
    return 1;
#endif
}

cdr_err cdr_time_parse(const char *s, size_t n, cdr_time *out)
{
    if (n == 19 && time_parse_fast(s, out))
        return CDR_OK;
    int64_t days;
    int hh, mi, ss;
    cdr_err e;
    if (n != 19 || (s[10] != ' ' && s[10] != 'T'))
        return CDR_E_PARSE;
    if ((e = parse_ymd(s, &days)) != CDR_OK)
        return e;
    if (!digits(s + 11, 2, &hh) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &ss))
        return CDR_E_PARSE;
    if (hh > 23 || mi > 59 || ss > 59)
        return CDR_E_RANGE;
    *out = days * 86400 + hh * 3600 + mi * 60 + ss;
    return CDR_OK;
}

cdr_err cdr_time_make(int y, int mo, int d, int hh, int mi, int ss, cdr_time *out)
{
    if (y < 1900 || y > 9999 || mo < 1 || mo > 12 || d < 1 || hh < 0 || hh > 23 || mi < 0 ||
        mi > 59 || ss < 0 || ss > 59)
        return CDR_E_RANGE;
    /* the month's first day remembered per thread, as in time_parse_fast */
    static _Thread_local int cy, cm;
    static _Thread_local unsigned cdim;
    static _Thread_local int64_t cdays;
    if (y != cy || mo != cm) {
        cdays = days_from_civil(y, (unsigned)mo, 1);
        cdim = days_in_month(y, (unsigned)mo);
        cy = y;
        cm = mo;
    }
    if ((unsigned)d > cdim)
        return CDR_E_RANGE;
    *out = (cdays + d - 1) * 86400 + hh * 3600 + mi * 60 + ss;
    return CDR_OK;
}

cdr_err cdr_date_parse(const char *s, size_t n, cdr_time *out)
{
    int64_t days;
    cdr_err e;
    if (n != 10)
        return CDR_E_PARSE;
    if ((e = parse_ymd(s, &days)) != CDR_OK)
        return e;
    *out = days * 86400;
    return CDR_OK;
}

cdr_err cdr_hhmm_parse(const char *s, size_t n, int32_t *out)
{
    int hh, mi;
    if (n != 5 || !digits(s, 2, &hh) || s[2] != ':' || !digits(s + 3, 2, &mi))
        return CDR_E_PARSE;
    if (mi > 59 || hh > 24 || (hh == 24 && mi != 0))
        return CDR_E_RANGE;
    *out = hh * 3600 + mi * 60;
    return CDR_OK;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static void put2(char *b, unsigned v)
{
    b[0] = (char)('0' + v / 10 % 10);
    b[1] = (char)('0' + v % 10);
}

static void put4(char *b, int v)
{
    b[0] = (char)('0' + v / 1000 % 10);
    b[1] = (char)('0' + v / 100 % 10);
    b[2] = (char)('0' + v / 10 % 10);
    b[3] = (char)('0' + v % 10);
}

size_t cdr_date_format(cdr_time t, char *buf)
{
    int y;
    unsigned m, d;
    civil_from_days(floordiv(t, 86400), &y, &m, &d);
    put4(buf, y);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = '\0';
    return 10;
}

size_t cdr_time_format(cdr_time t, char *buf)
{
    int32_t sod = cdr_time_of_day(t);
    cdr_date_format(t, buf);
    buf[10] = ' ';
    put2(buf + 11, (unsigned)(sod / 3600));
    buf[13] = ':';
    put2(buf + 14, (unsigned)(sod / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (unsigned)(sod % 60));
    buf[19] = '\0';
    return 19;
}

cdr_month cdr_time_month(cdr_time t)
{
    int y;
    unsigned m, d;
    civil_from_days(floordiv(t, 86400), &y, &m, &d);
    return (cdr_month)(y * 12 + (int)m - 1);
}

cdr_err cdr_month_parse(const char *s, size_t n, cdr_month *out)
{
    int y, m;
    if (n != 7 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m))
        return CDR_E_PARSE;
    if (y < 1900 || m < 1 || m > 12)
        return CDR_E_RANGE;
    *out = (cdr_month)(y * 12 + m - 1);
    return CDR_OK;
}

size_t cdr_month_format(cdr_month mo, char *buf)
{
    put4(buf, mo / 12);
    buf[4] = '-';
    put2(buf + 5, (unsigned)(mo % 12 + 1));
    buf[7] = '\0';
    return 7;
}

cdr_time cdr_month_start(cdr_month mo)
{
    return days_from_civil(mo / 12, (unsigned)(mo % 12 + 1), 1) * 86400;
}

int cdr_time_weekday(cdr_time t)
{
    /* 1970-01-01 was a Thursday (3 when Monday is 0). */
    int64_t days = floordiv(t, 86400);
    int64_t w = (days + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

int32_t cdr_time_of_day(cdr_time t)
{
    int64_t r = t % 86400;
    return (int32_t)(r < 0 ? r + 86400 : r);
}

cdr_time cdr_time_day(cdr_time t)
{
    return floordiv(t, 86400) * 86400;
}
