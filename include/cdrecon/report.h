/*
 * cdrecon — the month at a glance: one self-contained HTML page of a bill
 * month's reconciliation, from the results database and its run history
 * (docs/report.md).
 *
 * The page holds no external resource and no script: charts are inline SVG
 * drawn here, each with the numbers behind it in a table under it, and
 * every figure names the SQL query (runnable with `sqlite3 -readonly DB`)
 * that gives those numbers. Text is Chinese with English beside it. Every
 * run of 8 digits or more from the data is masked (138****1234): the page is
 * internal but travels by mail.
 *
 * The library only reads: it runs its queries with bound parameters inside
 * one read transaction (a consistent snapshot) and returns the page as
 * bytes; the caller writes it (the CLI through its output-directory
 * helpers). It never prints, exits or reads the environment or the clock.
 */
#ifndef CDRECON_REPORT_H
#define CDRECON_REPORT_H

#include "db.h"
#include "tariff.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdr_report_opts {
    /* The bill months, one section each; none (n_months 0): the latest
     * month the database holds records of. */
    const cdr_month *months;
    size_t n_months;
    /* "YYYY-MM-DD": the day refund deadlines are compared with; NULL: the
     * (UTC) day the latest run finished. */
    const char *as_of;
    /* The tariff directory for the plan and rate-row figures; NULL: the one
     * recorded with the month's latest run (used only if its tables still
     * have the SHA-256 recorded then). It loads on a thread of its own while
     * the database is read. */
    const char *tariff_dir;
    /* Or the tariff itself, loaded already (`run --report`: the run's);
     * tariff_dir (or its dir) is then only shown. */
    const cdr_tariff *tariff;
    /* How the database is named in the page ("sqlite3 -readonly NAME"). */
    const char *db_name;
    /* Creation time shown on the page (may be NULL). */
    const char *created;
} cdr_report_opts;

typedef struct cdr_report {
    char *html;       /* the page (UTF-8), html_len bytes, NUL-terminated */
    size_t html_len;
    cdr_month months[16]; /* the months reported (first n_months) */
    size_t n_months;
    char note[512];   /* "" or a remark for the caller to show (tariff not used, ...) */
} cdr_report;

/* Largest number of months in one page. */
#define CDR_REPORT_MAX_MONTHS 16

/*
 * Build the page from db (opened read-only or read-write; no run may be
 * open on it). On success fills *out (free with cdr_report_free). Errors:
 * CDR_E_NOTFOUND (the database holds no record of a month asked for, or
 * none at all), CDR_E_USAGE (bad as_of, too many months), CDR_E_DB /
 * CDR_E_IO / CDR_E_NOMEM from SQLite; err says what (errlen bytes).
 */
cdr_err cdr_report_build(cdr_db *db, const cdr_report_opts *o, cdr_report *out, char *err,
                         size_t errlen);
/* Free what cdr_report_build allocated (accepts a zeroed or freed one). */
void cdr_report_free(cdr_report *r);

#ifdef __cplusplus
}
#endif
#endif
