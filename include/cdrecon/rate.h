/*
 * cdrecon — the arithmetic of one record's charge (CONTRACT.md "The arithmetic").
 *
 * cdr_rate_usage() is a pure function of the tariff, the usage and the
 * bundle balance before the record. The engine calls it once for the
 * rebuilt charge and again with overrides to find what reproduces a billed
 * amount (the diagnosis of a finding).
 */
#ifndef CDRECON_RATE_H
#define CDRECON_RATE_H

#include "tariff.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_RATE_MAX_PIECES 8 /* band pieces kept for evidence (the sum is always exact) */

typedef struct cdr_rate_in {
    const cdr_tariff *tariff;
    int32_t plan;
    cdr_service service;
    cdr_direction direction;
    cdr_str peer;           /* normalised peer / SP code / APN */
    cdr_time start;
    int64_t usage;          /* voice: seconds; sms: segments; data: bytes; vas: ignored */
    int64_t pool_avail;     /* remaining allowance in usage units before this record; -1 = none */

    /* Overrides used by the diagnosis; the defaults (cdr_rate_in_init) are off. */
    int32_t force_band;     /* >= 0: rate the whole record at this band (start rule) */
    int force_start_rule;   /* 1: ignore band_rule split */
    int no_discount;        /* 1: do not apply the plan discount */
    int no_bundle;          /* 1: act as if no allowance covered the record */
    int64_t billable_override; /* >= 0: use this many billable units instead */
    /* The rate row at the start band, if the caller already looked it up
     * (used only when force_band < 0); NULL: look it up. */
    const cdr_rate *rate_hint;
    int32_t band_hint;      /* with rate_hint: the start band it was found for */
} cdr_rate_in;

void cdr_rate_in_init(cdr_rate_in *in);

typedef struct cdr_rate_piece {
    int32_t band;           /* -1 = '*' */
    const cdr_rate *rate;
    int64_t units;          /* charged (uncovered) units priced in this piece */
} cdr_rate_piece;

typedef struct cdr_rate_out {
    const cdr_rate *rate;   /* the rate row at the start time (NULL if unrated) */
    int32_t band;           /* band at the start time, -1 if none */
    int64_t billable;       /* billable units after increment rounding */
    int64_t covered;        /* units covered by the bundle allowance */
    int32_t pool;           /* pool drawn from, -1 if none */
    cdr_money gross;        /* out-of-bundle charge before discount, rounded (for evidence) */
    cdr_money charge;       /* the rebuilt charge: rounded once, half-up */
    int64_t discount_micro; /* the discount applied, percent x 10^6 (0 if none) */
    int n_pieces;           /* band pieces (split rule); 1 otherwise */
    cdr_rate_piece pieces[CDR_RATE_MAX_PIECES]; /* only the first n_pieces are set */
    const char *unrated;    /* non-NULL: why the record cannot be rated (static text) */
} cdr_rate_out;

/*
 * Rate one usage. Returns CDR_OK (check out->unrated), or CDR_E_RANGE when
 * the arithmetic would overflow (absurd usage or price).
 */
cdr_err cdr_rate_usage(const cdr_rate_in *in, cdr_rate_out *out);

/* Billable units for a service (increment rounding; sms: segments given). */
int64_t cdr_rate_billable(cdr_service s, int64_t usage, int64_t increment);

/* SMS segments for a message of `chars` characters under a plan. */
int64_t cdr_sms_segments(int64_t chars, int32_t single_chars, int32_t part_chars);

#ifdef __cplusplus
}
#endif
#endif
