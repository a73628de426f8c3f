/* cdrecon — writing one RFC 4180 CSV cell safely (shared by the CSV outputs,
 * the in-place row writers and the tariff's name cells). Internal header. */
#ifndef CDRECON_CSVOUT_H
#define CDRECON_CSVOUT_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "swar.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * Write one text cell to fp: quoted (quotes doubled) when it contains a comma,
 * a double quote, CR or LF; and neutralised for spreadsheets: a cell whose
 * first byte is '=', '+', '-', '@', TAB or CR gets a leading apostrophe (')
 * so that "=SUM(A1)" is shown as text, not evaluated. Returns 0, or -1 if a
 * write failed (check ferror as usual).
 */
int cdr_csv_write_cell(FILE *fp, const char *s, size_t n);

/* The rules, in one place (cdr_csv_write_cell, the memory writer of outcsv.c
 * and the in-place row writers all use these). */
/* A text cell starting with this byte gets a leading apostrophe. */
static inline int cdr_csv_guard_byte(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r' || c == '\'';
}
#if defined(__SSE2__)
/* Non-zero if one of the 16 bytes of v is ',' '"' CR LF, or NUL when nul is
 * set: the SWAR checks below in a third of the instructions (every x86-64
 * has SSE2; other machines use the SWAR words). */
static inline int cdr_csv_sse_special(__m128i v, int nul)
{
    __m128i m = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
    if (nul)
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_setzero_si128()));
    return _mm_movemask_epi8(m);
}
#endif
/* A cell containing one of these bytes is quoted: ',' '"' CR LF (a mask of
 * the bytes below 64). */
#define CDR_CSV_QUOTE_MASK ((1ull << ',') | (1ull << '"') | (1ull << '\r') | (1ull << '\n'))
static inline int cdr_csv_in_mask(char c, unsigned long long mask)
{
    return (unsigned char)c < 64 && ((mask >> (unsigned char)c) & 1);
}
static inline int cdr_csv_quote_byte(char c)
{
    return cdr_csv_in_mask(c, CDR_CSV_QUOTE_MASK);
}
/* Non-zero if one of the eight bytes of x is ',' '"' CR LF, or NUL when
 * nul is set (cdr_swar_has, src/common/swar.h, is exact as a yes/no). */
static inline uint64_t cdr_csv_swar_special(uint64_t x, int nul)
{
    uint64_t r = cdr_swar_has(x, ',') | cdr_swar_has(x, '"') | cdr_swar_has(x, '\r') |
                 cdr_swar_has(x, '\n');
    return r | (nul ? cdr_swar_has(x, 0) : 0);
}
/* The same for four bytes. */
static inline uint32_t cdr_csv_swar_has32(uint32_t x, unsigned char b)
{
    uint32_t y = x ^ (0x01010101u * b);
    return (y - 0x01010101u) & ~y & 0x80808080u;
}
static inline uint32_t cdr_csv_swar_special32(uint32_t x, int nul)
{
    uint32_t r = cdr_csv_swar_has32(x, ',') | cdr_csv_swar_has32(x, '"') |
                 cdr_csv_swar_has32(x, '\r') | cdr_csv_swar_has32(x, '\n');
    return r | (nul ? cdr_csv_swar_has32(x, 0) : 0);
}
/* The most bytes a cell of n bytes can take: quotes, apostrophe, every byte
 * a doubled quote. */
#define CDR_CSV_CELL_MAX(n) (2 * (size_t)(n) + 3)

/* Inlined at every call: each call site then has its own branches, whose
 * loop counts follow its column (a record_id is always 17 bytes, a msisdn
 * 11...) and are predicted; one shared copy mispredicted its loop exits on
 * most cells. */
#if defined(__GNUC__)
#define CDR_CSV_INLINE static inline __attribute__((always_inline))
#else
#define CDR_CSV_INLINE static inline
#endif

/* The quoted form of s[0..n) at d (the guard quote inside the quotes; cut
 * at a NUL byte with cut_at_nul): cdr_csv_put_cell_'s way out when the
 * text has a byte to quote. */
CDR_CSV_INLINE char *cdr_csv_put_quoted_(char *d, const char *s, size_t n, int guard,
                                         int cut_at_nul)
{
    if (cut_at_nul) {
        const char *z = memchr(s, '\0', n);
        if (z)
            n = (size_t)(z - s);
    }
    *d++ = '"';
    if (guard)
        *d++ = '\'';
    for (size_t i = 0; i < n; i++) {
        *d++ = s[i];
        if (s[i] == '"')
            *d++ = '"';
    }
    *d++ = '"';
    return d;
}

CDR_CSV_INLINE char *cdr_csv_put_cell_(char *d, const char *s, size_t n, int neutralise,
                                       int cut_at_nul)
{
    int guard = neutralise && n > 0 && s[0] != '\0' && cdr_csv_guard_byte(s[0]);
    char *d0 = d;
    /* the common case: nothing to quote, copied as it is scanned */
    if (guard)
        *d++ = '\'';
    unsigned long long stop = CDR_CSV_QUOTE_MASK | (cut_at_nul ? 1ull : 0);
    /* Up to 16 bytes (most cells): checked and copied as two overlapping
     * words, without a loop; anything to quote or cut goes to the loops
     * below, which decide byte by byte. */
    if (n <= 16) {
        if (n >= 8) {
            uint64_t a, b;
            memcpy(&a, s, 8);
            memcpy(&b, s + n - 8, 8);
#if defined(__SSE2__)
            if (!cdr_csv_sse_special(_mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)a),
                                                        _mm_cvtsi64_si128((long long)b)),
                                     cut_at_nul)) {
#else
            if (!(cdr_csv_swar_special(a, cut_at_nul) | cdr_csv_swar_special(b, cut_at_nul))) {
#endif
                memcpy(d, &a, 8);
                memcpy(d + n - 8, &b, 8);
                return d + n;
            }
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, s, 4);
            memcpy(&b, s + n - 4, 4);
#if defined(__SSE2__)
            if (!cdr_csv_sse_special(_mm_unpacklo_epi32(_mm_cvtsi32_si128((int)a),
                                                        _mm_cvtsi32_si128((int)b)),
                                     cut_at_nul)) {
#else
            if (!(cdr_csv_swar_special32(a, cut_at_nul) | cdr_csv_swar_special32(b, cut_at_nul))) {
#endif
                memcpy(d, &a, 4);
                memcpy(d + n - 4, &b, 4);
                return d + n;
            }
        } else if (n > 0) {
            char x = s[0], y = s[n / 2], z = s[n - 1];
            if (!(cdr_csv_in_mask(x, stop) | cdr_csv_in_mask(y, stop) | cdr_csv_in_mask(z, stop))) {
                d[0] = x;
                d[n / 2] = y;
                d[n - 1] = z;
                return d + n;
            }
        } else {
            return d;
        }
    }
    size_t i = 0;
#if defined(__SSE2__)
    /* sixteen bytes at a time while none of them is one of the mask's */
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        if (cdr_csv_sse_special(v, cut_at_nul))
            break;
        _mm_storeu_si128((__m128i *)(void *)d, v);
        d += 16;
    }
#endif
    /* eight bytes at a time while none of them is one of the mask's */
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (cdr_swar_has(x, ',') | cdr_swar_has(x, '"') | cdr_swar_has(x, '\r') |
            cdr_swar_has(x, '\n') | (cut_at_nul ? cdr_swar_has(x, 0) : 0))
            break;
        memcpy(d, &x, 8);
        d += 8;
    }
    for (; i < n; i++) {
        char ch = s[i];
        if (cdr_csv_in_mask(ch, stop)) {
            if (ch == '\0')
                return d; /* cut_at_nul: the cell ends here, nothing quoted before */
            goto quoted;
        }
        *d++ = ch;
    }
    return d;
quoted:
    return cdr_csv_put_quoted_(d0, s, n, guard, cut_at_nul);
}
/*
 * Write one cell (no separator) at d, exactly the bytes cdr_csv_write_cell
 * (neutralise = 1) or cdr_csv_write_raw_cell (0) writes; d must have room for
 * CDR_CSV_CELL_MAX(n) bytes. Returns the end of the cell.
 */
CDR_CSV_INLINE char *cdr_csv_put_cell(char *d, const char *s, size_t n, int neutralise)
{
    return cdr_csv_put_cell_(d, s, n, neutralise, 0);
}
/* The same for s cut at its first NUL byte (a C string's view of it). */
CDR_CSV_INLINE char *cdr_csv_put_cellz(char *d, const char *s, size_t n, int neutralise)
{
    return cdr_csv_put_cell_(d, s, n, neutralise, 1);
}

/* The inverse for a text cell read back: a leading apostrophe added by
 * cdr_csv_write_cell (before = + - @ TAB CR or another apostrophe) is
 * dropped. Returns the view without it. */
static inline void cdr_csv_unneutralise(const char **s, size_t *n)
{
    if (*n >= 2 && (*s)[0] == '\'' && cdr_csv_guard_byte((*s)[1])) {
        (*s)++;
        (*n)--;
    }
}
/* The same without neutralisation, for numeric cells (amounts, line numbers). */
int cdr_csv_write_raw_cell(FILE *fp, const char *s, size_t n);

#endif
