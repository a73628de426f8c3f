/*
 * cdrecon — names of finding categories, flags and policies (findings.h).
 * The names are part of the data contract (CONTRACT.md "Findings and refunds").
 */
#include <string.h>

#include "cdrecon/findings.h"

static const char *const cat_names[CDR_CAT__COUNT] = {
    [CDR_CAT_DUPLICATE] = "duplicate",
    [CDR_CAT_FREE_NUMBER] = "free_number",
    [CDR_CAT_ZERO_DURATION] = "zero_duration",
    [CDR_CAT_PARTIAL_ROUNDING] = "partial_rounding",
    [CDR_CAT_VAS_NO_SUBSCRIPTION] = "vas_no_subscription",
    [CDR_CAT_DATA_NO_USAGE] = "data_no_usage",
    [CDR_CAT_BUNDLE_NOT_APPLIED] = "bundle_not_applied",
    [CDR_CAT_DISCOUNT_NOT_APPLIED] = "discount_not_applied",
    [CDR_CAT_WRONG_BAND] = "wrong_band",
    [CDR_CAT_SMS_SEGMENTS] = "sms_segments",
    [CDR_CAT_DATA_ROUNDING] = "data_rounding",
    [CDR_CAT_RATE_MISMATCH] = "rate_mismatch",
    [CDR_CAT_LEAKAGE] = "leakage",
    [CDR_CAT_NONE] = "",
};

const char *cdr_category_name(cdr_category c)
{
    if ((unsigned)c >= CDR_CAT__COUNT || !cat_names[c])
        return "";
    return cat_names[c];
}

const char *cdr_policy_name(cdr_policy p)
{
    return p == CDR_POLICY_VERIFY_FIRST ? "verify_first" : "refund_first";
}

/* Append name to buf at *len with a ';' separator. */
static void append(char *buf, size_t *len, const char *name)
{
    size_t n = strlen(name);
    if (*len)
        buf[(*len)++] = ';';
    memcpy(buf + *len, name, n);
    *len += n;
    buf[*len] = '\0';
}

size_t cdr_flags_format(unsigned flags, char *buf)
{
    /* sorted by name */
    size_t len = 0;
    buf[0] = '\0';
    if (flags & CDR_FLAG_DUPLICATE)
        append(buf, &len, "duplicate");
    if (flags & CDR_FLAG_OVERLAP)
        append(buf, &len, "overlap");
    if (flags & CDR_FLAG_OVERLONG)
        append(buf, &len, "overlong");
    return len;
}

size_t cdr_categories_format(uint32_t categories, char *buf)
{
    /* Every name fits: 14 names, < 256 bytes with separators. Sort by name. */
    const char *sel[CDR_CAT__COUNT];
    size_t k = 0;
    for (unsigned c = 0; c < CDR_CAT__COUNT; c++)
        if ((categories & (1u << c)) && cat_names[c] && cat_names[c][0])
            sel[k++] = cat_names[c];
    for (size_t i = 1; i < k; i++) { /* insertion sort, k <= 13 */
        const char *v = sel[i];
        size_t j = i;
        while (j > 0 && strcmp(sel[j - 1], v) > 0) {
            sel[j] = sel[j - 1];
            j--;
        }
        sel[j] = v;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k; i++)
        append(buf, &len, sel[i]);
    return len;
}
