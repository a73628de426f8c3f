/* cdrecon — a failure's message into the caller's buffer (internal header).
 *
 * A library function that can fail in more ways than its cdr_err says takes
 * a buffer (err, errlen) from its caller and writes the message there: the
 * library never prints. Either may be NULL/0: then nothing is written. */
#ifndef CDRECON_ERRMSG_H
#define CDRECON_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

void cdr_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cdr_vseterr(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
