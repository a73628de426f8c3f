/*
 * cdrecon — one subscriber's bill month as a statement: every record with its
 * rebuilt charge and how it was reached, the bundle pools as they ran down,
 * and the verdict (the refund candidate, if any).
 *
 * A statement comes from the engine (cdr_stmt_scan: read CDR files, keep one
 * number's month, rate it) or from the month state kept by `cdrecon run`
 * (cdr_stmt_from_state, state.h). Both give identical statements. A record
 * is written in one canonical text form, the row of `cdrecon rate` /
 * records.csv (cdr_stmt_rec_write / cdr_stmt_rec_parse).
 */
#ifndef CDRECON_STATEMENT_H
#define CDRECON_STATEMENT_H

#include "engine.h"
#include "outcsv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One record of a statement. Strings are NUL-terminated and owned by the
 * statement (or by the caller for a free-standing record: cdr_stmt_rec_clear). */
typedef struct cdr_stmt_rec {
    char *file;            /* input file name */
    uint64_t line, offset;
    char *record_id;
    char *msisdn;
    cdr_month month;
    cdr_service service;
    cdr_direction direction;
    char *peer;            /* as in the record (normalised) */
    cdr_time start;
    int64_t usage;         /* rated usage: voice s (merged for a first part), sms segments,
                              data bytes (merged), vas 1; for unrated/other: the record's own */
    int64_t amount;        /* the record's own duration_s / bytes / sms_chars (-1 for vas) */
    int64_t billable;      /* billable units after increments (-1 if not rated) */
    int64_t covered;       /* units covered by the bundle (-1 if not rated) */
    cdr_money billed;      /* the billed amount compared: sum of the parts for a merged call */
    int has_rebuilt;       /* 0 for unrated records */
    cdr_money rebuilt;     /* 0 for later partial parts (rebuilt at 0) */
    cdr_money difference;  /* billed - rebuilt (0 when !has_rebuilt, and for later
                            * partial parts: compared on the first part) */
    cdr_rec_status status;
    char *dup_of;          /* "" unless a duplicate */
    uint32_t parts;        /* merged parts (1 otherwise) */
    char *call_id;         /* "" if none */
    int64_t partial_seq;
    char *sms_ref;         /* "" if none */
    int32_t sms_part, sms_parts;
    char *plan;            /* plan name, "" if none */
    uint32_t rate_line;    /* line in rates.csv, 0 if none */
    cdr_money price;       /* of that rate row (micro-yuan per unit) */
    int64_t unit, increment;
    char *band;            /* "peak", or the pieces "peak:1;offpeak:59" under split */
    char *pool;            /* bundle pool, "" if none */
    int64_t pool_after;    /* allowance left after this record, -1 if no pool */
    int64_t discount_micro;/* discount applied, percent x 10^6 */
    char *category;        /* "" or a category name ("leakage", "duplicate", ...) */
    unsigned flags;        /* CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG */
    char *explanation;     /* the finding in words, or the unrated reason, or "" */
    char *extra;           /* unknown columns as "name=value;name=value" */
} cdr_stmt_rec;

/* Per-pool summary: allowance at the start of the month, used, left. */
typedef struct cdr_stmt_pool {
    char *pool;
    char *plan;
    int64_t allowance;     /* usage units: seconds, segments, KB */
    int64_t used;
    int64_t left;
    const char *unit;      /* "s", "seg", "KB" */
} cdr_stmt_pool;

typedef struct cdr_stmt {
    char *msisdn;
    cdr_month month;
    cdr_stmt_rec *recs;
    size_t n_recs;
    size_t recs_cap;
    cdr_stmt_pool *pools;
    size_t n_pools;
    int has_candidate;
    cdr_candidate cand;    /* cand.msisdn points at msisdn; policy_reason owned */
    uint64_t n_findings, n_duplicates, n_unrated;
    cdr_money total_billed, total_rebuilt, leakage; /* leakage as a positive amount */
    int vip;               /* from subscribers.csv (0/1), -1 unknown */
    cdr_time join_date;    /* -1 unknown */
} cdr_stmt;

/* The canonical text row: header and one record (columns in docs/rating.md). */
cdr_err cdr_stmt_rec_header(cdr_csvw *w);
cdr_err cdr_stmt_rec_write(cdr_csvw *w, const cdr_stmt_rec *r);
/* Parse the fields of one row written by cdr_stmt_rec_write (header order).
 * Strings are copied (free with cdr_stmt_rec_clear). */
cdr_err cdr_stmt_rec_parse(const cdr_str *fields, size_t n, cdr_stmt_rec *out);
void cdr_stmt_rec_clear(cdr_stmt_rec *r);

/* Write the canonical row of an engine record directly (no allocation in the
 * common case): the same bytes as cdr_stmt_rec_from_rated + cdr_stmt_rec_write. */
cdr_err cdr_stmt_rated_write(cdr_csvw *w, const cdr_rated *r, const cdr_tariff *t,
                             const char *file);
/* The same with the file name's length given (file not NULL). */
cdr_err cdr_stmt_rated_write_n(cdr_csvw *w, const cdr_rated *r, const cdr_tariff *t,
                               const char *file, size_t file_n);
/* The file column as its CSV cell (malloc'd, *cell_n bytes, no NUL), and
 * the row writer given that cell: for a caller writing many rows of one
 * file (rate's workers), the file name is quoted and guarded once. */
char *cdr_stmt_file_cell(const char *file, size_t n, size_t *cell_n);
cdr_err cdr_stmt_rated_write_cell(cdr_csvw *w, const cdr_rated *r, const cdr_tariff *t,
                                  const char *file_cell, size_t cell_n);

/* Every number of the canonical record of an engine record (strings are
 * left NULL): the one place both the row writer and the store take them from. */
void cdr_stmt_rec_numbers(const cdr_rated *r, cdr_stmt_rec *out);

/* Build a record from the engine's view of it. */
cdr_err cdr_stmt_rec_from_rated(const cdr_rated *r, const cdr_tariff *t, const char *file,
                                cdr_stmt_rec *out);

/*
 * The scan path: read `files` (with the reader's line pre-filter on the
 * number), rate one number's month, and build its statement. stats gets one
 * cdr_file_stats per file (may be NULL). CDR_E_NOTFOUND when the number has
 * no record in that month (the statement is still valid and empty).
 */
cdr_err cdr_stmt_scan(const cdr_tariff *t, char **files, size_t nfiles, const char *msisdn,
                      cdr_month month, const cdr_engine_opts *eo, cdr_file_stats *stats,
                      cdr_stmt *out, char *err, size_t errlen);
/* The same with reader options (an input profile, say; ro may be NULL): its
 * line_filter is replaced by the number. */
cdr_err cdr_stmt_scan_ro(const cdr_tariff *t, char **files, size_t nfiles, const char *msisdn,
                         cdr_month month, const cdr_engine_opts *eo,
                         const cdr_reader_opts *ro, cdr_file_stats *stats, cdr_stmt *out,
                         char *err, size_t errlen);

/*
 * The month-state path: every record of one number's month from the state
 * (state.h), rated with the tariff: the same statement as a run over all the
 * files ingested so far gives. CDR_E_NOTFOUND when the state has none.
 */
struct cdr_state;
cdr_err cdr_stmt_from_state(const cdr_tariff *t, struct cdr_state *st, const char *msisdn,
                            cdr_month month, const cdr_engine_opts *eo, cdr_stmt *out,
                            char *err, size_t errlen);

/* Accumulate a statement record by record (used by the scan path and by
 * the store reader): init, add records in time order, set the candidate,
 * finish (computes totals and pool summaries). */
cdr_err cdr_stmt_init(cdr_stmt *s, const char *msisdn, cdr_month month);
cdr_err cdr_stmt_add(cdr_stmt *s, const cdr_stmt_rec *r); /* copies */
cdr_err cdr_stmt_set_candidate(cdr_stmt *s, const cdr_candidate *c);
cdr_err cdr_stmt_finish(cdr_stmt *s, const cdr_tariff *t /* may be NULL */);
void cdr_stmt_free(cdr_stmt *s); /* frees the contents; s itself is the caller's */

#ifdef __cplusplus
}
#endif
#endif
