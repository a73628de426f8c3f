/* cdrecon — a record's rebuilt charge against its billed one: overcharge (diagnosed), leakage, or a duplicate or flag at no difference. */
#include <stdio.h>

#include "reconcile_int.h"

cdr_category rc_compare(const rc_record *r, cdr_money tolerance, unsigned flags, char *x,
                        size_t xn)
{
    int compare = r->status != CDR_RS_PARTIAL_REST && r->status != CDR_RS_UNRATED;
    cdr_money diff = r->billed - r->rebuilt;
    x[0] = '\0';
    if (compare && diff > tolerance)
        return rc_diagnose(r, x, xn);
    if (compare && diff < -tolerance) {
        char m1[32], m2[32], m3[32];
        cdr_money_format(r->billed, 2, m1);
        cdr_money_format(r->rebuilt, 2, m2);
        cdr_money_format(-diff, 2, m3);
        snprintf(x, xn, "billed %s, the tariff gives %s: undercharged by %s (revenue leakage, "
                 "not refunded)", m1, m2, m3);
        return CDR_CAT_LEAKAGE;
    }
    if (r->status == CDR_RS_DUPLICATE) {
        snprintf(x, xn, "duplicate of record %.*s, billed 0: correct", (int)r->dup_of.n,
                 r->dup_of.p);
        return CDR_CAT_DUPLICATE;
    }
    if (flags)
        snprintf(x, xn, "%s%s%s",
                 flags & CDR_FLAG_OVERLAP ? "call starts before the previous call ended" : "",
                 (flags & CDR_FLAG_OVERLAP) && (flags & CDR_FLAG_OVERLONG) ? "; " : "",
                 flags & CDR_FLAG_OVERLONG ? "call longer than the plausible maximum" : "");
    return CDR_CAT_NONE;
}
