/* cdrecon — the one table of error names and messages; a failure's own
 * message into the caller's buffer (errmsg.h). */
#include <stdio.h>

#include "cdrecon/common.h"
#include "errmsg.h"

static const struct {
    const char *name;
    const char *msg;
} errtab[CDR_E__COUNT] = {
    [CDR_OK] = {"CDR_OK", "success"},
    [CDR_E_USAGE] = {"CDR_E_USAGE", "bad command line or argument"},
    [CDR_E_IO] = {"CDR_E_IO", "file cannot be opened, read or written"},
    [CDR_E_GZIP] = {"CDR_E_GZIP", "corrupt, truncated or not-gzip compressed input"},
    [CDR_E_HEADER] = {"CDR_E_HEADER", "CDR file header missing or invalid"},
    [CDR_E_TARIFF] = {"CDR_E_TARIFF", "tariff refused"},
    [CDR_E_NOMEM] = {"CDR_E_NOMEM", "out of memory or memory bound reached"},
    [CDR_E_DB] = {"CDR_E_DB", "database error"},
    [CDR_E_ALREADY] = {"CDR_E_ALREADY", "every input was already ingested; nothing new"},
    [CDR_E_REJECTS] = {"CDR_E_REJECTS", "finished, but some rows were rejected"},
    [CDR_E_INTERNAL] = {"CDR_E_INTERNAL", "internal error"},
    [CDR_E_NOTFOUND] = {"CDR_E_NOTFOUND", "no matching records"},
    [CDR_E_EXISTS] = {"CDR_E_EXISTS", "output already exists"},
    [CDR_E_PARSE] = {"CDR_E_PARSE", "value cannot be parsed"},
    [CDR_E_RANGE] = {"CDR_E_RANGE", "value out of range"},
    [CDR_E_INTERRUPTED] = {"CDR_E_INTERRUPTED", "interrupted by a signal"},
    [CDR_E_REFUSED] = {"CDR_E_REFUSED",
                       "a file was refused as a probable re-delivery of records already ingested"},
    [CDR_E_PROFILE] = {"CDR_E_PROFILE", "input profile refused"},
};

const char *cdr_strerror(cdr_err e)
{
    if ((unsigned)e >= CDR_E__COUNT || !errtab[e].msg)
        return "unknown error";
    return errtab[e].msg;
}

const char *cdr_errname(cdr_err e)
{
    if ((unsigned)e >= CDR_E__COUNT || !errtab[e].name)
        return "CDR_E_UNKNOWN";
    return errtab[e].name;
}

void cdr_vseterr(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

void cdr_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cdr_vseterr(err, errlen, fmt, ap);
    va_end(ap);
}
