/* cdrecon — writing one RFC 4180 CSV cell safely (shared by the CLI and the
 * CSV outputs). Internal header. */
#ifndef CDRECON_CSVOUT_H
#define CDRECON_CSVOUT_H

#include <stdio.h>
#include <stddef.h>

/*
 * Write one text cell to fp: quoted (quotes doubled) when it contains a comma,
 * a double quote, CR or LF; and neutralised for spreadsheets: a cell whose
 * first byte is '=', '+', '-', '@', TAB or CR gets a leading apostrophe (')
 * so that "=SUM(A1)" is shown as text, not evaluated. Returns 0, or -1 if a
 * write failed (check ferror as usual).
 */
int cdr_csv_write_cell(FILE *fp, const char *s, size_t n);
/* The inverse for a text cell read back: a leading apostrophe added by
 * cdr_csv_write_cell (before = + - @ TAB CR or another apostrophe) is
 * dropped. Returns the view without it. */
static inline void cdr_csv_unneutralise(const char **s, size_t *n)
{
    if (*n >= 2 && (*s)[0] == '\'' &&
        ((*s)[1] == '=' || (*s)[1] == '+' || (*s)[1] == '-' || (*s)[1] == '@' ||
         (*s)[1] == '\t' || (*s)[1] == '\r' || (*s)[1] == '\'')) {
        (*s)++;
        (*n)--;
    }
}
/* The same without neutralisation, for numeric cells (amounts, line numbers). */
int cdr_csv_write_raw_cell(FILE *fp, const char *s, size_t n);

#endif
