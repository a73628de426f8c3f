/* cdrecon — a growable text buffer with a sticky out-of-memory flag, in
 * which the evidence pages and the month report are built (the internal
 * header of src/report/ and src/report/month/). */
#ifndef CDRECON_TEXTBUF_H
#define CDRECON_TEXTBUF_H

#include <stddef.h>
#include <string.h>

/* Zero-initialised it is empty. p is NUL-terminated once anything was put;
 * after a failed allocation oom is set, nothing more is added, and the
 * caller reports CDR_E_NOMEM when it is done. */
typedef struct textbuf {
    char *p;
    size_t n, cap;
    int oom;
} textbuf;

void tb_put(textbuf *b, const char *s, size_t n);
static inline void tb_puts(textbuf *b, const char *s)
{
    tb_put(b, s, strlen(s));
}
void tb_printf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tb_free(textbuf *b); /* and empty again */

#endif
