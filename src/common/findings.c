/* cdrecon — names of categories, flags and policies. */
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
    return (unsigned)c < CDR_CAT__COUNT ? cat_names[c] : "?";
}

size_t cdr_flags_format(unsigned flags, char *buf)
{
    /* sorted by name: duplicate is not a flag in the output (it is a category) */
    size_t n = 0;
    buf[0] = '\0';
    if (flags & CDR_FLAG_OVERLAP) {
        strcpy(buf + n, "overlap");
        n += 7;
    }
    if (flags & CDR_FLAG_OVERLONG) {
        if (n)
            buf[n++] = ';';
        strcpy(buf + n, "overlong");
        n += 8;
    }
    buf[n] = '\0';
    return n;
}

size_t cdr_categories_format(uint32_t categories, char *buf)
{
    /* sort the present names alphabetically */
    const char *names[CDR_CAT__COUNT];
    int k = 0;
    for (int c = 0; c < CDR_CAT__COUNT; c++)
        if ((categories & (1u << c)) && cat_names[c][0])
            names[k++] = cat_names[c];
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *tmp = names[j];
            names[j] = names[j - 1];
            names[j - 1] = tmp;
        }
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < k; i++) {
        if (i)
            buf[n++] = ';';
        size_t l = strlen(names[i]);
        memcpy(buf + n, names[i], l);
        n += l;
    }
    buf[n] = '\0';
    return n;
}

const char *cdr_policy_name(cdr_policy p)
{
    return p == CDR_POLICY_REFUND_FIRST ? "refund_first" : "verify_first";
}
