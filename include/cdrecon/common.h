/*
 * cdrecon — common definitions: error codes, money, time, phone numbers.
 *
 * The library never prints and never exits. Every fallible function returns a
 * cdr_err; the CLI maps it to the process exit status (docs/exit-codes.md).
 */
#ifndef CDRECON_COMMON_H
#define CDRECON_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes. The numbers are stable and are the CLI's exit status; never
 * reuse or renumber one (append new codes at the end, before CDR_E__COUNT).
 */
typedef enum cdr_err {
    CDR_OK = 0,
    CDR_E_USAGE = 1,      /* bad command line or argument */
    CDR_E_IO = 2,         /* a file cannot be opened, read or written */
    CDR_E_GZIP = 3,       /* corrupt, truncated or not-gzip .gz input */
    CDR_E_HEADER = 4,     /* CDR file header missing or invalid (column missing or twice) */
    CDR_E_TARIFF = 5,     /* tariff directory refused (inconsistent table) */
    CDR_E_NOMEM = 6,      /* out of memory, or a memory bound reached */
    CDR_E_DB = 7,         /* SQLite database error */
    CDR_E_ALREADY = 8,    /* every input was already ingested: nothing new */
    CDR_E_REJECTS = 9,    /* finished, but some rows were rejected */
    CDR_E_INTERNAL = 10,  /* a bug: an internal invariant failed */
    CDR_E_NOTFOUND = 11,  /* nothing matched (number/month without records) */
    CDR_E_EXISTS = 12,    /* output exists and would be overwritten */
    CDR_E_PARSE = 13,     /* a value could not be parsed (library-level) */
    CDR_E_RANGE = 14,     /* a value is out of its allowed range */
    CDR_E_INTERRUPTED = 15, /* stopped by a signal */
    CDR_E_REFUSED = 16,   /* a file was refused as a probable re-delivery (not ingested) */
    CDR_E_PROFILE = 17,   /* input profile refused (docs/profiles.md) */
    CDR_E__COUNT
} cdr_err;

/* Short, stable English description of an error code (never NULL). */
const char *cdr_strerror(cdr_err e);
/* The symbolic name of an error code, e.g. "CDR_E_GZIP" (never NULL). */
const char *cdr_errname(cdr_err e);

/* ------------------------------------------------------------------ */
/* Borrowed string view. Not NUL-terminated unless said otherwise.      */
typedef struct cdr_str {
    const char *p;
    size_t n;
} cdr_str;

/* ------------------------------------------------------------------ */
/* Money: integer micro-yuan. 1 yuan = 1,000,000 micro-yuan.            */
typedef int64_t cdr_money;
#define CDR_MICRO 1000000LL
/* Largest absolute amount we accept: 10^12 yuan. Keeps every product of
 * an amount and a usage count inside __int128 with room to spare. */
#define CDR_MONEY_MAX (1000000000000LL * CDR_MICRO)

/*
 * Parse decimal yuan text ("0.19", "12", "-3.5", "0.000001") into micro-yuan.
 * Grammar: ['-'] digit+ ['.' digit{1,6}]. No spaces, no '+', no exponent, no
 * thousands separators. More than 6 fractional digits is CDR_E_RANGE (it
 * cannot be represented exactly), so is a magnitude above CDR_MONEY_MAX.
 */
cdr_err cdr_money_parse(const char *s, size_t n, cdr_money *out);

/*
 * Format micro-yuan as decimal yuan with at least `min_decimals` (0..6)
 * fractional digits; further non-zero digits up to 6 are kept, so the text
 * is always exact. Returns the length written (buf needs >= 32 bytes).
 */
size_t cdr_money_format(cdr_money v, int min_decimals, char *buf);

/*
 * Round an exact rational amount num/den micro-yuan (den > 0) once,
 * half-up (ties away from zero for negatives), to a multiple of `step`
 * micro-yuan (step > 0, e.g. 10000 for 0.01 yuan). Returns CDR_E_RANGE
 * if the result does not fit.
 */
cdr_err cdr_money_round(__int128 num, __int128 den, cdr_money step, cdr_money *out);

/*
 * Limits (docs/rating.md "Limits and sums"). One record: billed and rebuilt
 * are each at most CDR_MONEY_MAX; the reader rejects a larger usage than
 * these, and the tariff loader refuses a price that the largest accepted
 * usage would take above CDR_MONEY_MAX, so every accepted record can be
 * rated. One subscriber-month: its billed amounts and its rebuilt charges
 * each add up to at most CDR_MONEY_MAX (the engine reports a record beyond
 * that unrated), so its overcharge is at most CDR_MONEY_MAX and its refund
 * at most 2 x CDR_MONEY_MAX, both far inside 64 bits.
 */
#define CDR_DURATION_MAX 1000000000LL       /* duration_s: 10^9 s (about 31.7 years) */
#define CDR_SMS_CHARS_MAX 1000000000LL      /* sms_chars: 10^9 characters */
#define CDR_BYTES_MAX 1000000000000000LL    /* bytes: 10^15 (about 0.9 PiB) */

/*
 * A total over many subscriber-months (a run's overcharge, refund, leakage):
 * a + b, exact while it fits in 64 bits; a sum that would pass INT64_MAX
 * stays at INT64_MAX, which every output shows as out of range (never a
 * wrapped number). Once at INT64_MAX a total stays there.
 */
cdr_money cdr_money_total_add(cdr_money a, cdr_money b);
#define CDR_MONEY_TOTAL_OVER INT64_MAX
/* cdr_money_format, but a total at CDR_MONEY_TOTAL_OVER is "out of range". */
size_t cdr_money_format_total(cdr_money v, int min_decimals, char *buf);
/* An amount as every output shows it, in yuan with 2 decimals or more
 * (cdr_money_format_total(v, 2, buf)); returns buf (>= 32 bytes), for use
 * as a printf argument. */
const char *cdr_yuan(cdr_money v, char *buf);

/* ------------------------------------------------------------------ */
/* Time: operator-local wall clock, counted as seconds since            */
/* 1970-01-01 00:00:00 of that same wall clock (no time zone, no DST).  */
typedef int64_t cdr_time;

/* Parse "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS" (exactly 19 chars).
 * Years 1900..9999; the date and time must exist (no Feb 30, no 24:00). */
cdr_err cdr_time_parse(const char *s, size_t n, cdr_time *out);
/* The time of a wall-clock date and time given as numbers: years
 * 1900..9999, the date must exist, hh 0..23, mi and ss 0..59. CDR_E_RANGE
 * otherwise. (Input profiles: every time format ends here.) */
cdr_err cdr_time_make(int y, int mo, int d, int hh, int mi, int ss, cdr_time *out);
/* Parse a date "YYYY-MM-DD" into the time of its 00:00:00. */
cdr_err cdr_date_parse(const char *s, size_t n, cdr_time *out);
/* Parse "HH:MM" (00:00..24:00) into seconds of the day (0..86400). */
cdr_err cdr_hhmm_parse(const char *s, size_t n, int32_t *out);
/* Format as "YYYY-MM-DD HH:MM:SS" (buf >= 20 bytes). Returns length. */
size_t cdr_time_format(cdr_time t, char *buf);
/* Format only the date "YYYY-MM-DD" (buf >= 11). Returns length. */
size_t cdr_date_format(cdr_time t, char *buf);

/* Bill month as a single integer yyyy*12 + (mm-1); compare and sort freely. */
typedef int32_t cdr_month;
cdr_month cdr_time_month(cdr_time t);
/* Parse "YYYY-MM". */
cdr_err cdr_month_parse(const char *s, size_t n, cdr_month *out);
/* Format "YYYY-MM" (buf >= 8). Returns length. */
size_t cdr_month_format(cdr_month m, char *buf);
/* First second of a month, and of the month after it. */
cdr_time cdr_month_start(cdr_month m);
/* 0 = Monday .. 6 = Sunday. */
int cdr_time_weekday(cdr_time t);
/* Seconds since the start of the day, 0..86399. */
int32_t cdr_time_of_day(cdr_time t);
/* The start (00:00:00) of the day containing t. */
cdr_time cdr_time_day(cdr_time t);

/* ------------------------------------------------------------------ */
/* Phone numbers.                                                      */
#define CDR_NUMBER_MAX 32 /* longest msisdn/peer digit string we accept */

/*
 * Normalise a subscriber or peer number: it must be 1..CDR_NUMBER_MAX ASCII
 * digits after an optional leading '+'. A leading "+86", "0086" or "86" in
 * front of an 11-digit mobile number (1xxxxxxxxxx) is removed. The result
 * is a view into the input (no copy). CDR_E_PARSE if not a digit string.
 */
cdr_err cdr_number_normalise(const char *s, size_t n, cdr_str *out);

/*
 * Mask a number for logs and customer copies: keep the first 3 and last 4
 * digits of numbers of 8 digits or more ("138****1234"); shorter numbers
 * (service numbers like 10086) are shown as they are. buf >= n + 1.
 */
size_t cdr_number_mask(const char *s, size_t n, char *buf);

#ifdef __cplusplus
}
#endif
#endif
