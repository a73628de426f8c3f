/* cdrecon — terminal escaping, display widths and number masking
 * (include/cdrecon/textsafe.h). */
#include <string.h>

#include "cdrecon/textsafe.h"

size_t cdr_utf8_len(const unsigned char *s, size_t n, uint32_t *cp_out)
{
    unsigned c = s[0];
    size_t k;
    uint32_t min;
    if (c < 0x80) {
        if (cp_out)
            *cp_out = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    uint32_t cp = c & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (cp_out)
        *cp_out = cp;
    return k;
}

int cdr_char_unsafe(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

static const char hexd[] = "0123456789ABCDEF";

size_t cdr_text_escape(const char *s, size_t n, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t k = cdr_utf8_len(p + i, n - i, &cp);
        if (k && !cdr_char_unsafe(cp)) {
            if (o + k >= cap)
                break;
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
            continue;
        }
        if (k == 0)
            k = 1; /* an invalid byte: escaped alone, the next one is looked at again */
        if (o + 4 * k >= cap)
            break;
        for (size_t j = 0; j < k; j++) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hexd[p[i + j] >> 4];
            buf[o++] = hexd[p[i + j] & 15];
        }
        i += k;
    }
    buf[o] = '\0';
    return o;
}

size_t cdr_bytes_escape(const char *s, size_t n, char *buf)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t k = cdr_utf8_len(p + i, n - i, &cp);
        if (k && cp == '\\') {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else if (k && (cp >= 0x20 || cp == '\t' || cp == '\n' || cp == '\r') && cp != 0x7F) {
            memcpy(buf + o, p + i, k);
            o += k;
        } else {
            k = 1;
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hexd[p[i] >> 4];
            buf[o++] = hexd[p[i] & 15];
        }
        i += k;
    }
    buf[o] = '\0';
    return o;
}

/* Wide (2-column) ranges: East Asian Wide and Fullwidth, the common ones. */
static const uint32_t wide[][2] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

/* Zero-width: combining marks, joiners, variation selectors. */
static const uint32_t zero[][2] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
    {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
    {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x20D0, 0x20FF},
    {0x302A, 0x302D}, {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF},
};

static int in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int cdr_char_width(uint32_t cp)
{
    if (cp < 0x300)
        return 1;
    if (in_ranges(cp, zero, sizeof zero / sizeof *zero))
        return 0;
    if (in_ranges(cp, wide, sizeof wide / sizeof *wide))
        return 2;
    return 1;
}

size_t cdr_text_width(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = cdr_utf8_len(p + i, n - i, &cp);
        if (k == 0) {
            w++;
            i++;
            continue;
        }
        w += (size_t)cdr_char_width(cp);
        i += k;
    }
    return w;
}

/* ------------------------------------------------------------------ */
/* Masking.                                                            */

/* A digit at s[i]: its length in bytes (1 ASCII, 3 full-width) and value,
 * else 0. */
static size_t digit_at(const unsigned char *s, size_t n, size_t i, int *val)
{
    if (i < n && s[i] >= '0' && s[i] <= '9') {
        *val = s[i] - '0';
        return 1;
    }
    if (i + 2 < n && s[i] == 0xEF && s[i + 1] == 0xBC && s[i + 2] >= 0x90 && s[i + 2] <= 0x99) {
        *val = s[i + 2] - 0x90;
        return 3;
    }
    return 0;
}

/* A separator between digit groups at s[i]: its length in bytes, else 0. */
static size_t sep_at(const unsigned char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    switch (s[i]) {
    case ' ': case '-': case '.': case '(': case ')':
        return 1;
    default:
        break;
    }
    if (i + 1 < n && s[i] == 0xC2 && s[i + 1] == 0xA0) /* NO-BREAK SPACE */
        return 2;
    if (i + 2 < n) {
        unsigned a = s[i], b = s[i + 1], c = s[i + 2];
        if (a == 0xE3 && b == 0x80 && c == 0x80) /* IDEOGRAPHIC SPACE */
            return 3;
        if (a == 0xE2 && b == 0x80 && c >= 0x90 && c <= 0x95) /* U+2010..U+2015 dashes */
            return 3;
        if (a == 0xEF && b == 0xBC && (c == 0x88 || c == 0x89 || c == 0x8D || c == 0x8E))
            return 3; /* full-width ( ) - . */
    }
    return 0;
}

/* A date YYYY-MM-DD (or with '.' or '/', one or two digits for month and
 * day) of ASCII digits at s[i], not followed by a digit: its length, else 0. */
static size_t date_at(const unsigned char *s, size_t n, size_t i)
{
    int v;
    size_t j = i;
    for (int k = 0; k < 4; k++, j++)
        if (j >= n || s[j] < '0' || s[j] > '9')
            return 0;
    if (j >= n || (s[j] != '-' && s[j] != '.' && s[j] != '/'))
        return 0;
    unsigned char sep = s[j++];
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9' && d < 3) {
            j++;
            d++;
        }
        if (d < 1 || d > 2)
            return 0;
        if (part == 0) {
            if (j >= n || s[j] != sep)
                return 0;
            j++;
        }
    }
    if (digit_at(s, n, j, &v))
        return 0;
    return j - i;
}

#define MAX_DIGITS 64

size_t cdr_text_mask_numbers(const char *str, size_t n, const char *own, char *buf)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t on = own ? strlen(own) : 0;
    size_t o = 0, i = 0;
    int v;
    while (i < n) {
        size_t dl = digit_at(s, n, i, &v);
        if (!dl) {
            buf[o++] = (char)s[i++];
            continue;
        }
        size_t dlen = date_at(s, n, i);
        if (dlen) {
            memcpy(buf + o, s + i, dlen);
            o += dlen;
            i += dlen;
            continue;
        }
        /* The number: digits, and separators that are followed by a digit. */
        size_t start = i, end = i, nd = 0;
        char digits[MAX_DIGITS + 1];
        for (;;) {
            size_t k;
            while ((k = digit_at(s, n, end, &v)) != 0) {
                if (nd < MAX_DIGITS)
                    digits[nd] = (char)('0' + v);
                nd++;
                end += k;
            }
            size_t j = end, seps = 0;
            while (seps < 2 && (k = sep_at(s, n, j)) != 0) {
                j += k;
                seps++;
            }
            if (seps == 0 || !digit_at(s, n, j, &v) || date_at(s, n, j))
                break;
            /* groups of a written number are short: past a prefix of at
             * most 4 digits, a group of 5 or more after a separator starts
             * another number ("10086 110 12315" is not one) */
            size_t g = 0;
            for (size_t q = j; (k = digit_at(s, n, q, &v)) != 0 && g < 5; q += k)
                g++;
            if (g > 4 && nd > 4)
                break;
            /* a whole mobile number (11 digits from a '1', after an 86 or
             * 0086 prefix) ends there: "139-0000-0001 139-0000-0002" is two */
            if (nd <= MAX_DIGITS &&
                ((nd == 11 && digits[0] == '1') ||
                 (nd == 13 && digits[0] == '8' && digits[1] == '6' && digits[2] == '1') ||
                 (nd == 15 && !memcmp(digits, "0086", 4) && digits[4] == '1')))
                break;
            end = j;
        }
        size_t keep_all = nd < 8;
        size_t skip = 0; /* country prefix digits */
        if (!keep_all && nd <= MAX_DIGITS) {
            if (nd == 13 && digits[0] == '8' && digits[1] == '6' && digits[2] == '1')
                skip = 2;
            else if (nd == 15 && !memcmp(digits, "0086", 4) && digits[4] == '1')
                skip = 4;
            if (on && nd - skip == on && memcmp(digits + skip, own, on) == 0)
                keep_all = 1;
        }
        if (keep_all) {
            memcpy(buf + o, s + start, end - start);
            o += end - start;
            i = end;
            continue;
        }
        size_t len = nd - skip, d = 0;
        for (size_t j = start; j < end;) {
            size_t k = digit_at(s, n, j, &v);
            if (!k) {
                buf[o++] = (char)s[j++];
                continue;
            }
            size_t pos = d - skip; /* index in the number after its prefix */
            if (d >= skip && pos >= 3 && pos + 4 < len) {
                buf[o++] = '*';
            } else {
                memcpy(buf + o, s + j, k);
                o += k;
            }
            d++;
            j += k;
        }
        i = end;
    }
    buf[o] = '\0';
    return o;
}
