/* cdrecon — the month's outputs kept current (docs/state.md, "The outputs
 * cache").
 *
 * A run writes findings.csv, candidates.csv and unrated.csv with the current
 * rows of every subscriber-month of the months it touched: on the last night
 * of a month that is every finding of the month, written again each night.
 * Reading them from the database costs a look-up per row; so each month also
 * keeps its current rows, rendered, in one file of the state directory,
 * `out-YYYY-MM.cdo`, in the outputs' order. A run then writes its outputs by
 * streaming that file and patching in what its own rating changed (the
 * "delta"), and writes the next version of the file as it goes.
 *
 * The file is a copy, never the truth: it names a token, and it is used only
 * when the database names the same token for that month (meta key
 * "outcache YYYY-MM", set in the run's transaction). A run that touches a
 * month either writes a new file with a new token or clears the month's
 * token; a killed run, a damaged or missing file, a database restored
 * without it: the token does not match and the outputs come from the
 * database, as before, which also writes the file again.
 *
 * Rows are kept as the CSV lines the outputs hold, with the numbers the
 * run's summary sums (findings: category, difference; candidates: policy,
 * special, tier, overcharge, refund). Sections: findings, candidates,
 * unrated, each in the subscribers' order (h, msisdn), rows by seq. */
#ifndef CDRECON_OUTCACHE_H
#define CDRECON_OUTCACHE_H

#include "cdrecon/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CDR_OC_FINDINGS, CDR_OC_CANDIDATES, CDR_OC_UNRATED, CDR_OC__SECTIONS };
#define CDR_OC_NUMS 5
#define CDR_OC_TOKEN_LEN 32 /* hex characters */

/* One row handed to a merge's caller. */
typedef struct cdr_oc_row {
    int section;
    cdr_month month;
    cdr_str msisdn;
    int64_t num[CDR_OC_NUMS];
    const char *text; /* the CSV line, "\n" included */
    size_t len;
} cdr_oc_row;

/* ---- the delta: what this run's rating changed, in the drain's order --- */

typedef struct cdr_oc_delta cdr_oc_delta;

/* Temporary files in dir (removed at once: nothing stays if the run is
 * killed). */
cdr_err cdr_oc_delta_new(const char *dir, cdr_oc_delta **out);
void cdr_oc_delta_free(cdr_oc_delta *d);
/* Empty again (a rating pass started over). */
cdr_err cdr_oc_delta_reset(cdr_oc_delta *d);
/* A subscriber-month's news starts: its earlier findings and unrated rows
 * with seq >= from_seq are replaced (from_seq 0: all of them; UINT64_MAX:
 * none, the new rows are added). */
cdr_err cdr_oc_delta_begin(cdr_oc_delta *d, uint64_t h, cdr_str msisdn, cdr_month m,
                           uint64_t from_seq);
/* A new row of the subscriber-month begun (a candidate row replaces its
 * candidate). */
cdr_err cdr_oc_delta_row(cdr_oc_delta *d, int section, uint64_t seq,
                         const int64_t num[CDR_OC_NUMS], const char *text, size_t len);
/* Its end; withdrawn: its candidate is gone. */
cdr_err cdr_oc_delta_end(cdr_oc_delta *d, int candidate_withdrawn);

/* ---- the files ----------------------------------------------------------- */

/* A new random token (hex, NUL-terminated). */
cdr_err cdr_oc_token(char tok[CDR_OC_TOKEN_LEN + 1]);

/* What to do with each month: its expected token ("" when the month had no
 * rows before this run: nothing to read), whether its rows are reported
 * (handed to fn) and whether its file is written again (with new_token). */
typedef struct cdr_oc_month {
    cdr_month m;
    const char *token; /* NULL: unknown, the cache cannot be used */
    int report, rewrite;
} cdr_oc_month;

typedef int (*cdr_oc_row_fn)(const cdr_oc_row *r, void *user);

/* Every month's current rows: its file merged with the delta, section by
 * section, across months in the outputs' order (h, msisdn, month). Each
 * rewritten month's next file is written as out-YYYY-MM.cdo.tmp.
 * CDR_E_NOTFOUND (before any row is handed over) when a file is missing,
 * damaged or not of its token: the caller takes the database instead. */
cdr_err cdr_oc_merge(const char *dir, const cdr_oc_month *months, size_t n,
                     const char *new_token, cdr_oc_delta *d, cdr_oc_row_fn fn, void *user,
                     char *err, size_t errlen);
/* cdr_oc_merge in two halves, for a caller with other work between them:
 * _open checks every file and opens the next ones (CDR_E_NOTFOUND as
 * above: no row handed over yet); _rows hands the rows over and finishes
 * the next files (under the new_token given to _open). cdr_oc_merge_free after
 * either: the next files are discarded unless _rows succeeded. */
typedef struct cdr_oc_merger cdr_oc_merger;
cdr_err cdr_oc_merge_open(const char *dir, const cdr_oc_month *months, size_t n,
                          const char *new_token, cdr_oc_delta *d, cdr_oc_merger **out,
                          char *err, size_t errlen);
cdr_err cdr_oc_merge_rows(cdr_oc_merger *mg, cdr_oc_row_fn fn, void *user, char *err,
                          size_t errlen);
void cdr_oc_merge_free(cdr_oc_merger *mg);
/* The bytes of the month files an opened merge reads (its cost's measure). */
uint64_t cdr_oc_merge_size(const cdr_oc_merger *mg);

/* Files written from rows given in the outputs' order, section by section
 * (from the database). */
typedef struct cdr_oc_build cdr_oc_build;
cdr_err cdr_oc_build_new(const char *dir, const cdr_month *months, size_t n,
                         const char *token, cdr_oc_build **out);
cdr_err cdr_oc_build_row(cdr_oc_build *b, int section, uint64_t h, cdr_str msisdn,
                         cdr_month m, uint64_t seq, const int64_t num[CDR_OC_NUMS],
                         const char *text, size_t len);
/* Completes every month's .tmp file. */
cdr_err cdr_oc_build_finish(cdr_oc_build *b, char *err, size_t errlen);
void cdr_oc_build_free(cdr_oc_build *b);

/* The .tmp files of the months renamed into place (just before the
 * database commit that names their token), or removed. */
cdr_err cdr_oc_place(const char *dir, const cdr_month *months, size_t n, char *err,
                     size_t errlen);
void cdr_oc_discard(const char *dir, const cdr_month *months, size_t n);

/* The meta key of a month's token ("outcache YYYY-MM"); buf >= 32. */
const char *cdr_oc_meta_key(cdr_month m, char *buf);

#ifdef __cplusplus
}
#endif

#endif
