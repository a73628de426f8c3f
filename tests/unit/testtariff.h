/* cdrecon tests — the hand-made tariff (testdata/rate-hand) as T, loaded and freed by a cmocka group's setup and teardown. */
#ifndef CDRECON_TESTTARIFF_H
#define CDRECON_TESTTARIFF_H

#include <stdio.h>

#include "cdrecon/tariff.h"

#ifndef TESTDATA
#define TESTDATA "testdata"
#endif

static cdr_tariff *T;

static int setup(void **st)
{
    (void)st;
    char err[512];
    cdr_err e = cdr_tariff_load(TESTDATA "/rate-hand", &T, err, sizeof err);
    if (e != CDR_OK)
        fprintf(stderr, "tariff: %s\n", err);
    return e == CDR_OK ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    cdr_tariff_free(T);
    return 0;
}

#endif
