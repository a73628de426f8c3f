/*
 * cdrecon — findings (per record) and refund candidates (per subscriber-month),
 * CONTRACT.md "Findings and refunds".
 */
#ifndef CDRECON_FINDINGS_H
#define CDRECON_FINDINGS_H

#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Categories, in CONTRACT.md's precedence order (the first that applies wins). */
typedef enum cdr_category {
    CDR_CAT_DUPLICATE = 0,
    CDR_CAT_FREE_NUMBER,
    CDR_CAT_ZERO_DURATION,
    CDR_CAT_PARTIAL_ROUNDING,
    CDR_CAT_VAS_NO_SUBSCRIPTION,
    CDR_CAT_DATA_NO_USAGE,
    CDR_CAT_BUNDLE_NOT_APPLIED,
    CDR_CAT_DISCOUNT_NOT_APPLIED,
    CDR_CAT_WRONG_BAND,
    CDR_CAT_SMS_SEGMENTS,
    CDR_CAT_DATA_ROUNDING,
    CDR_CAT_RATE_MISMATCH,
    CDR_CAT__OVERCHARGE_COUNT, /* categories above are overcharges */
    CDR_CAT_LEAKAGE = CDR_CAT__OVERCHARGE_COUNT, /* undercharge: reported, never refunded */
    CDR_CAT_NONE,              /* no difference: a duplicate or flagged record only */
    CDR_CAT__COUNT
} cdr_category;

/* "duplicate", "free_number", ..., "leakage", "" for NONE. */
const char *cdr_category_name(cdr_category c);

/* Flags: no amount by themselves; they make the case verify-first. */
#define CDR_FLAG_OVERLAP  0x1u /* voice call starts before the previous one ended */
#define CDR_FLAG_OVERLONG 0x2u /* duration above the plausible maximum */
#define CDR_FLAG_DUPLICATE 0x4u /* the record is a duplicate (even if billed 0) */
/* "overlap;overlong" style text, sorted; "" when none. buf >= 64. */
size_t cdr_flags_format(unsigned flags, char *buf);

typedef struct cdr_finding {
    cdr_str msisdn;
    cdr_month month;
    cdr_str record_id;
    uint32_t file_index;
    const char *file;      /* input file name */
    uint64_t line;
    uint64_t offset;
    cdr_service service;
    cdr_time start;
    cdr_str peer;
    cdr_category category;
    unsigned flags;
    cdr_money billed;      /* for merged partials: sum of the parts */
    cdr_money rebuilt;
    cdr_money difference;  /* billed - rebuilt; > 0 overcharge, < 0 leakage */
    const char *explanation; /* plain words: what reproduces the billed amount */
    uint64_t seq;          /* the record's place in its subscriber-month's time order */
    uint64_t msisdn_hash;  /* the subscribers' order (cdr_msisdn_hash) */
    int64_t file_db_id;    /* with a state: the file's database id (0: by file_index) */
} cdr_finding;

typedef enum cdr_policy { CDR_POLICY_REFUND_FIRST = 0, CDR_POLICY_VERIFY_FIRST = 1 } cdr_policy;
const char *cdr_policy_name(cdr_policy p); /* "refund_first" / "verify_first" */

typedef struct cdr_candidate {
    cdr_str msisdn;
    cdr_month month;
    uint32_t records;       /* records with an overcharge */
    cdr_money overcharge;   /* sum of positive differences */
    cdr_money refund;       /* 2 x overcharge */
    uint32_t categories;    /* bit (1u << cdr_category) per category present */
    int tier;               /* 0..4, DOMAIN.md approval authority */
    cdr_policy policy;
    int special;            /* 0/1 special customer */
    unsigned flags;         /* union of the records' flags */
    const char *policy_reason; /* why refund-first or verify-first */
    int reason;             /* policy_reason as a number (cdr_policy_reason_text) */
    uint64_t msisdn_hash;   /* the subscribers' order (cdr_msisdn_hash) */
} cdr_candidate;

/* The text of a policy reason number (0..CDR_REASON__COUNT-1). */
#define CDR_REASON__COUNT 6
const char *cdr_policy_reason_text(int reason);

/* Categories as "a;b;c" (sorted by name). buf >= 256. */
size_t cdr_categories_format(uint32_t categories, char *buf);

#ifdef __cplusplus
}
#endif
#endif
