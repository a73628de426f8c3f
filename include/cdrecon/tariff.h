/*
 * cdrecon — the tariff directory (CONTRACT.md "Tariff directory"), loaded,
 * validated and indexed for rating.
 *
 * cdr_tariff_load() reads every table, refuses an inconsistent tariff with
 * file, line and reason, and builds the look-up indexes. The tariff is
 * read-only after loading and may be shared by threads.
 */
#ifndef CDRECON_TARIFF_H
#define CDRECON_TARIFF_H

#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdr_band_rule { CDR_BAND_START = 0, CDR_BAND_SPLIT = 1 } cdr_band_rule;
typedef enum cdr_days { CDR_DAYS_ALL = 0, CDR_DAYS_WEEKDAY = 1, CDR_DAYS_WEEKEND = 2 } cdr_days;

typedef struct cdr_plan {
    char *name;
    cdr_money monthly_fee;
    cdr_money rounding;        /* micro-yuan step, default 10000 (0.01 yuan) */
    int32_t sms_single_chars;  /* default 70 */
    int32_t sms_part_chars;    /* default 70 */
    cdr_band_rule band_rule;   /* default start */
    uint32_t line;             /* line in plans.csv */
} cdr_plan;

typedef struct cdr_band_row {
    int32_t band;      /* index into tariff->band_names */
    cdr_days days;
    int32_t from, to;  /* seconds of day; to exclusive; to <= from means it wraps past midnight */
    uint32_t line;
} cdr_band_row;

typedef struct cdr_rate {
    int32_t plan;           /* index into plans */
    cdr_service service;
    cdr_direction direction;
    char *prefix;           /* "" for '*' (matches anything) */
    int32_t band;           /* index into band_names, -1 for '*' */
    cdr_money price;        /* micro-yuan per unit */
    int64_t unit;           /* voice: seconds; sms: segments; data: KB; vas: records (1) */
    int64_t increment;      /* usage rounded up to this many units of usage (seconds/KB/segments) */
    int32_t pool;           /* index into pool_names, -1 if none */
    uint32_t line;          /* line in rates.csv */
} cdr_rate;

typedef enum cdr_allow_unit { CDR_ALLOW_MIN = 0, CDR_ALLOW_SEG = 1, CDR_ALLOW_MB = 2 } cdr_allow_unit;

typedef struct cdr_bundle {
    int32_t plan;
    int32_t pool;           /* index into pool_names */
    int64_t allowance;      /* in the table's unit (minutes, segments, MB) */
    cdr_allow_unit unit;
    int64_t allowance_base; /* in usage units: seconds (min*60), segments, KB (MB*1024) */
    uint32_t line;
} cdr_bundle;

typedef struct cdr_discount {
    int32_t plan;
    cdr_service service;
    int64_t percent_micro;  /* percent x 10^6: 20% = 20000000; 0 < p <= 100% */
    uint32_t line;
} cdr_discount;

typedef struct cdr_free_number {
    char *prefix;
    char *label;
    uint32_t line;
} cdr_free_number;

typedef struct cdr_subscriber {
    char *msisdn;           /* normalised */
    int32_t plan;
    cdr_time valid_from;    /* 00:00:00 of the first day */
    cdr_time valid_to;      /* 00:00:00 of the day AFTER the last day (exclusive) */
    int vip;                /* 0/1 */
    cdr_time join_date;     /* 00:00:00 of the join day; -1 if unknown */
    uint32_t line;
} cdr_subscriber;

typedef struct cdr_subscription {
    char *msisdn;
    char *service_code;
    cdr_time valid_from;    /* inclusive, 00:00:00 */
    cdr_time valid_to;      /* exclusive: 00:00:00 of the day after valid_to */
    uint32_t line;
} cdr_subscription;

typedef struct cdr_prior_refund {
    char *msisdn;
    cdr_time date;          /* 00:00:00 of the day */
    cdr_money amount;
    int company_liable;     /* 0/1 */
    int border_roaming;     /* 0/1 */
    uint32_t line;
} cdr_prior_refund;

/* The tables of the tariff directory, in the order of cdr_tariff.files[]. */
typedef enum cdr_table {
    CDR_T_PLANS = 0, CDR_T_BANDS, CDR_T_RATES, CDR_T_BUNDLES, CDR_T_DISCOUNTS,
    CDR_T_FREE, CDR_T_SUBSCRIBERS, CDR_T_SUBSCRIPTIONS, CDR_T_REFUNDS, CDR_T__COUNT
} cdr_table;

typedef struct cdr_tariff_file {
    const char *name;       /* "plans.csv", ... */
    int present;
    uint8_t sha256[32];
    uint64_t size;
    uint64_t rows;
} cdr_tariff_file;

typedef struct cdr_tariff_index cdr_tariff_index; /* opaque look-up structures */

typedef struct cdr_tariff {
    char *dir;
    cdr_tariff_file files[CDR_T__COUNT];
    cdr_plan *plans;               size_t n_plans;
    char **band_names;             size_t n_band_names;
    cdr_band_row *bands;           size_t n_bands;
    char **pool_names;             size_t n_pool_names;
    cdr_rate *rates;               size_t n_rates;
    cdr_bundle *bundles;           size_t n_bundles;
    cdr_discount *discounts;       size_t n_discounts;
    cdr_free_number *free_numbers; size_t n_free_numbers;
    cdr_subscriber *subscribers;   size_t n_subscribers;
    cdr_subscription *subscriptions; size_t n_subscriptions;
    cdr_prior_refund *refunds;     size_t n_refunds;
    cdr_tariff_index *ix;
    /* Warnings, not refusals: each entry of the directory that is not one
     * of the tables above (hidden names excepted), e.g. "unknown file
     * 'refund.csv' is not read (did you mean refunds.csv?)". Sorted; the
     * CLI prints them, check-tariff lists them. */
    char **warnings;               size_t n_warnings;
} cdr_tariff;

/*
 * Load and validate a tariff directory. On failure returns CDR_E_TARIFF (or
 * CDR_E_IO / CDR_E_NOMEM) with `err` (errlen bytes) holding
 * "FILE:LINE: reason". *out is NULL on failure. A table must be a regular
 * file of at most 1 GiB (a FIFO, a device such as a link to /dev/zero, or
 * a directory is refused: CDR_E_TARIFF); a symbolic link to nothing is
 * CDR_E_IO, not an absent table. Files that are not tables go to
 * t->warnings.
 */
cdr_err cdr_tariff_load(const char *dir, cdr_tariff **out, char *err, size_t errlen);

/* The tariff's identity: SHA-256 over every table's name, presence and
 * SHA-256. Two directories with the same tables have the same. */
void cdr_tariff_sha256(const cdr_tariff *t, uint8_t out[32]);
void cdr_tariff_free(cdr_tariff *t); /* accepts NULL */

/* --- look-ups used by the rating engine (all O(1) or O(log n)) --- */

/* The subscriber period in force for msisdn at time t, or NULL. */
const cdr_subscriber *cdr_tariff_subscriber(const cdr_tariff *t, const char *msisdn, size_t n,
                                            cdr_time at);

/* Band index in force at time t; -1 if bands.csv is empty/absent. */
int32_t cdr_tariff_band_at(const cdr_tariff *t, cdr_time at);
/* The first instant after `at` at which the band changes (for band_rule
 * split); returns a time > at. With no bands, returns INT64_MAX. */
cdr_time cdr_tariff_band_change(const cdr_tariff *t, cdr_time at);

/* The rate row for (plan, service, direction, peer, band): longest
 * matching prefix wins; at equal prefix length an exact band beats '*'.
 * NULL if none matches. */
const cdr_rate *cdr_tariff_find_rate(const cdr_tariff *t, int32_t plan, cdr_service svc,
                                     cdr_direction dir, const char *peer, size_t peer_len,
                                     int32_t band);

/* The longest free-number prefix matching `peer`, or NULL. */
const cdr_free_number *cdr_tariff_free_number(const cdr_tariff *t, const char *peer, size_t n);

/* Discount row for (plan, service), or NULL. */
const cdr_discount *cdr_tariff_discount(const cdr_tariff *t, int32_t plan, cdr_service svc);

/* Bundle row for (plan, pool), or NULL. */
const cdr_bundle *cdr_tariff_bundle(const cdr_tariff *t, int32_t plan, int32_t pool);

/* Is a subscription for (msisdn, service_code) valid at time t? */
int cdr_tariff_subscribed(const cdr_tariff *t, const char *msisdn, size_t n,
                          const char *code, size_t code_len, cdr_time at);

/* Earlier refunds of one number, sorted by date (for the special-customer
 * rule). Sets *count; returns NULL when none. */
const cdr_prior_refund *cdr_tariff_refunds(const cdr_tariff *t, const char *msisdn, size_t n,
                                           size_t *count);

#ifdef __cplusplus
}
#endif
#endif
