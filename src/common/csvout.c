/* cdrecon — one safe CSV cell (see csvout.h). */
#include <string.h>

#include "csvout.h"

/* A stream is written by one thread at a time: skip stdio's per-call lock. */
#define putc(c, fp) putc_unlocked(c, fp)
#define fwrite(p, s, n, fp) fwrite_unlocked(p, s, n, fp)

static int write_cell(FILE *fp, const char *s, size_t n, int neutralise)
{
    int guard = neutralise && n > 0 && cdr_csv_guard_byte(s[0]);
    /* A leading apostrophe is doubled too, so neutralising is reversible:
     * a reader strips exactly one leading apostrophe (cdr_csv_unneutralise). */
    int quote = 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = cdr_csv_quote_byte(s[i]);
    if (quote && putc('"', fp) == EOF)
        return -1;
    if (guard && putc('\'', fp) == EOF)
        return -1;
    if (!quote)
        return n && fwrite(s, 1, n, fp) != n ? -1 : 0;
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"') {
            if (fwrite(s + start, 1, i + 1 - start, fp) != i + 1 - start || putc('"', fp) == EOF)
                return -1;
            start = i + 1;
        }
    if (n > start && fwrite(s + start, 1, n - start, fp) != n - start)
        return -1;
    return putc('"', fp) == EOF ? -1 : 0;
}

int cdr_csv_write_cell(FILE *fp, const char *s, size_t n)
{
    return write_cell(fp, s, n, 1);
}

int cdr_csv_write_raw_cell(FILE *fp, const char *s, size_t n)
{
    return write_cell(fp, s, n, 0);
}
