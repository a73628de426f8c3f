/* cdrecon tests — a growable, NUL-terminated byte buffer for building
 * inputs and recording what callbacks saw (shared by the unit tests).
 * Include after <cmocka.h>: a failed allocation fails the test. */
#ifndef CDRECON_TESTBUF_H
#define CDRECON_TESTBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/common.h"

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static inline void bput(buf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* At most 8191 bytes of formatted text. */
static inline void bprintf(buf *b, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    bput(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* A view as "[length:bytes]". */
static inline void bstr(buf *b, cdr_str s)
{
    bprintf(b, "[%zu:", s.n);
    bput(b, s.p, s.n);
    bput(b, "]", 1);
}

#endif
