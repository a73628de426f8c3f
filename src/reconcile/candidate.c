/* cdrecon — the refund candidate of a subscriber-month: its overcharged records, the double refund, and its policy. */
#include <string.h>

#include "reconcile_int.h"

void rc_candidate(const cdr_tariff *t, cdr_str msisdn, uint64_t msisdn_hash, cdr_month month,
                  const cdr_subscriber *sub, uint32_t records, cdr_money over, uint32_t cats,
                  unsigned flags, cdr_candidate *cd)
{
    size_t nref = 0;
    const cdr_prior_refund *refs = cdr_tariff_refunds(t, msisdn.p, msisdn.n, &nref);
    memset(cd, 0, sizeof *cd);
    cd->msisdn = msisdn;
    cd->month = month;
    cd->records = records;
    cd->overcharge = over;
    cd->refund = 2 * over; /* a billing error: the overcharge refunded twice */
    cd->categories = cats;
    cd->flags = flags;
    rc_policy(cd, refs, nref, sub ? sub->join_date : -1);
    cd->msisdn_hash = msisdn_hash;
}
