/* cdrecon — a copy of n bytes as a NUL-terminated string (internal header). */
#ifndef CDRECON_MEMDUPZ_H
#define CDRECON_MEMDUPZ_H

#include <stdlib.h>
#include <string.h>

/* p[0..n) and a '\0' in new memory (NUL bytes inside are kept); NULL when
 * out of memory. The caller frees it. */
static inline char *cdr_memdupz(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

#endif
