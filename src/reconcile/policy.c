/* cdrecon — DOMAIN.md's refund rules: approval tiers, special customers, refund-first or verify-first and why. */
#include "reconcile_int.h"

int cdr_approval_tier(cdr_money refund, int company_liable, int first_refund)
{
    const cdr_money Y = CDR_MICRO;
    if (refund <= 20 * Y && first_refund)
        return 0;
    if (company_liable) {
        if (refund <= 200 * Y)
            return 1;
        if (refund <= 500 * Y)
            return 2;
        if (refund <= 1000 * Y)
            return 3;
        return 4;
    }
    if (refund <= 100 * Y)
        return 1;
    if (refund <= 300 * Y)
        return 2;
    if (refund <= 500 * Y)
        return 3;
    return 4;
}

int cdr_special_customer(const cdr_prior_refund *r, size_t n, cdr_month m)
{
    /* Window: the bill month and the three before it. */
    int count[4] = {0, 0, 0, 0};
    cdr_money sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].company_liable || r[i].border_roaming)
            continue;
        cdr_month rm = cdr_time_month(r[i].date);
        if (rm > m || rm < m - 3)
            continue;
        count[m - rm]++;
        sum = cdr_money_total_add(sum, r[i].amount);
    }
    for (int k = 0; k < 4; k++)
        if (count[k] >= 3)
            return 1;
    return sum >= 100 * CDR_MICRO;
}

void rc_policy(cdr_candidate *cd, const cdr_prior_refund *refs, size_t nref, cdr_time join_date)
{
    cdr_month month = cd->month;
    /* Refunds before the end of this bill month count as earlier refunds. */
    cdr_time month_end = cdr_month_start(month + 1);
    size_t earlier = 0, this_year = 0, last3 = 0;
    cdr_month year_start = month - month % 12;
    for (size_t i = 0; i < nref; i++) {
        if (refs[i].date >= month_end)
            continue;
        earlier++;
        cdr_month rm = cdr_time_month(refs[i].date);
        if (rm >= year_start)
            this_year++;
        if (rm >= month - 3)
            last3++;
    }
    cd->special = cdr_special_customer(refs, nref, month);
    cd->tier = cdr_approval_tier(cd->refund, 1, earlier == 0);
    int long_tenure = join_date >= 0 && cdr_time_month(join_date) + 12 <= month;
    if (cd->special) {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->reason = 0;
    } else if (cd->flags & (CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG)) {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->reason = 1;
    } else if (cd->categories & (1u << CDR_CAT_VAS_NO_SUBSCRIPTION)) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->reason = 2;
    } else if (long_tenure) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->reason = 3;
    } else if (this_year == 0 && last3 == 0) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->reason = 4;
    } else {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->reason = 5;
    }
    cd->policy_reason = cdr_policy_reason_text(cd->reason);
}

const char *cdr_policy_reason_text(int reason)
{
    static const char *const t[CDR_REASON__COUNT] = {
        "special customer (3+ refunds in a month or 100+ yuan in 3 months): verify first",
        "overlapping or over-long call records need verification first",
        "value-added (SP) fee dispute: refund first",
        "customer for a year or more in good standing: refund first",
        "first fee dispute this year, no refund in the last three months: refund first",
        "earlier refunds this year and tenure under a year: verify first",
    };
    return reason >= 0 && reason < CDR_REASON__COUNT ? t[reason] : "";
}
