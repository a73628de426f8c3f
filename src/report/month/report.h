/*
 * cdrecon — the month report's internal pieces (include/cdrecon/report.h,
 * docs/report.md): HTML escaping and number masking into a textbuf,
 * tables filled by queries, the SVG charts, the figures.
 *
 * Layout arithmetic of the charts uses double (coordinates only); every
 * amount stays integer micro-yuan and is formatted with cdr_money_format.
 */
#ifndef CDRECON_REPORT_INT_H
#define CDRECON_REPORT_INT_H

#include <sqlite3.h>

#include "cdrecon/common.h"
#include "cdrecon/report.h"
#include "cdrecon/tariff.h"
#include "textbuf.h" /* src/report/: the page is built in a textbuf */

/* ---- text ---------------------------------------------------------- */

/* Text from the data: every number of 8 digits or more masked
 * (cdr_text_mask_numbers), then HTML-escaped (& < > " ' as entities;
 * control characters but TAB and LF, and invalid UTF-8, as U+FFFD).
 * Safe in element content and in quoted attribute values. */
void rp_esc(textbuf *b, const char *s);
void rp_escn(textbuf *b, const char *s, size_t n);
/* A path of the operator's (the database, the tariff directory): only runs
 * of 11 digits or more are masked (a date in a file name stays, so that the
 * shown commands still run), then HTML-escaped. */
void rp_esc_path(textbuf *b, const char *s);
/* A count with thousands separators: 12,345. */
void rp_count(textbuf *b, int64_t v);
/* An amount in yuan with thousands separators: 1,234.56 (2 decimals or
 * more, exact; a total at CDR_MONEY_TOTAL_OVER is "out of range"). */
void rp_yuan(textbuf *b, cdr_money v);

/* ---- tables ---------------------------------------------------------- */

typedef enum rp_coltype {
    RP_TEXT,     /* data text (masked, escaped) */
    RP_COUNT,    /* integer count */
    RP_MONEY,    /* integer micro-yuan, shown in yuan */
    RP_PRICE,    /* yuan as text (a tariff price), shown as it is */
    RP_MSISDN,   /* a subscriber number: masked 138****1234 */
    RP_CATEGORY, /* a category name, shown with its Chinese words */
    RP_WEEKDAY,  /* strftime('%w') text '0'..'6', shown as a day name */
    RP_WORD,     /* one of our own words (policy, state, kind, ...): Chinese and English */
    RP_BY_UNIT   /* money when the row's unit column says 'micro', else a count */
} rp_coltype;

typedef struct rp_col {
    const char *key; /* the query's column name */
    const char *zh, *en;
    rp_coltype type;
} rp_col;

typedef struct rp_cell {
    int null;
    int64_t i; /* numeric types */
    char *s;   /* text types (owned) */
} rp_cell;

typedef struct rp_table {
    const rp_col *cols;
    size_t ncols;
    int unit_col; /* for RP_BY_UNIT, else -1 */
    rp_cell *cells; /* nrows x ncols */
    size_t nrows, cap;
    int oom;
} rp_table;

void rp_table_init(rp_table *t, const rp_col *cols, size_t ncols, int unit_col);
/* A new row of null cells; NULL when out of memory (t->oom set). */
rp_cell *rp_table_add(rp_table *t);
rp_cell *rp_table_at(const rp_table *t, size_t row, size_t col);
void rp_table_free(rp_table *t);

/*
 * Run sql (parameters: ?1 the month "YYYY-MM", ?2 the as-of day
 * "YYYY-MM-DD", ?3 the month's runs as a JSON array of run ids, bound when
 * the statement has them) and append its rows to
 * t: column i of the result is t->cols[i], read as an integer for numeric
 * types and as text otherwise. Errors: SQLite's, mapped like the database
 * (CDR_E_NOMEM, CDR_E_IO, CDR_E_DB), with a message in err.
 */
cdr_err rp_query(sqlite3 *h, const char *sql, const char *month, const char *as_of,
                 const char *nights, rp_table *t, char *err, size_t errlen);
cdr_err rp_sqlite_err(sqlite3 *h, int rc, const char *what, char *err, size_t errlen);

/* The query as shown on the page: ?1 and ?2 replaced by the literals
 * 'YYYY-MM' and 'YYYY-MM-DD' (so it runs as it is in sqlite3). */
void rp_sql_shown(textbuf *b, const char *sql, const char *month, const char *as_of);

/* One table as HTML: a header row (Chinese, English under it) and one row
 * per table row; every cell carries its value in data-v (counts as
 * digits, money as exact yuan, numbers masked). */
void rp_table_html(textbuf *b, const rp_table *t, const char *id);

/* Chinese and English words of a category name ("wrong_band"); "" when
 * unknown. */
const char *rp_category_zh(const char *key);
const char *rp_category_en(const char *key);
/* Chinese and English of the page's own words ("refund_first", "passed",
 * "rerate", ...); NULL when unknown. */
const char *rp_word_zh(const char *key);
const char *rp_word_en(const char *key);

/* ---- charts (inline SVG) ---------------------------------------------- */

typedef enum rp_fmt { RP_FMT_COUNT, RP_FMT_MONEY } rp_fmt;

typedef struct rp_bar {
    const char *label; /* data text: masked and escaped */
    int64_t v;         /* count, or micro-yuan with RP_FMT_MONEY; < 0 drawn as 0 */
    int alt;           /* 1: drawn in the second colour (leakage) */
} rp_bar;

/* Horizontal bars, one <rect class="bar" data-v="..."> per bar, lengths
 * proportional to v (the largest fills the plot), the value written at
 * the end of each bar. n == 0 draws a "no data" chart with no bar. */
void rp_svg_bars(textbuf *b, const char *id, const rp_bar *bars, size_t n, rp_fmt fmt);

typedef struct rp_series {
    const char *key;   /* data-series attribute */
    const char *label; /* legend (our own words) */
    const int64_t *v;  /* n values, counts */
} rp_series;

/* A line chart over n points (x labels our own text), one <polyline
 * class="series" data-series="KEY"> per series with a <circle class="pt"
 * data-v> per point; y from 0 to the largest value. */
void rp_svg_lines(textbuf *b, const char *id, const char *const *x, size_t n,
                  const rp_series *s, size_t ns);

/* A 7 x 24 heat map: v[d][h] for day d (0 = Monday .. 6 = Sunday) and hour
 * h; one <rect class="cell" data-day data-hour data-v> per cell, darker for
 * more. */
void rp_svg_heat(textbuf *b, const char *id, const int64_t v[7][24]);

/* ---- figures --------------------------------------------------------- */

typedef struct rp_figure {
    const char *id;     /* "totals", "category", ... (ids and anchors) */
    const char *zh, *en; /* title */
    const char *sql;    /* NULL: computed here from the tariff (see the
                           tariff figures below) */
    const rp_col *cols;
    size_t ncols;
    int unit_col;
} rp_figure;

enum {
    RP_FIG_TOTALS,
    RP_FIG_CATEGORY,
    RP_FIG_NIGHTS,
    RP_FIG_PLANS,
    RP_FIG_RATES,
    RP_FIG_SERVICES,
    RP_FIG_HEAT,
    RP_FIG_TIERS,
    RP_FIG_DEADLINES,
    RP_FIG_SPECIAL,
    RP_FIG_TOP,
    RP_FIG_REJECT_REASONS,
    RP_FIG_REJECT_FILES,
    RP_FIG_FILES,
    RP_FIG_LATE,
    RP_FIG__COUNT
};

extern const rp_figure rp_figures[RP_FIG__COUNT];

/* Queries the page needs besides the figures. */
extern const char rp_sql_latest_month[]; /* the latest month with records */
extern const char rp_sql_month_known[];  /* ?1 has records: one row */
extern const char rp_sql_last_run[];     /* run_id, kind, finished_at of the latest run */
extern const char rp_sql_month_tariff[]; /* dir, sha256 of ?1's latest run's tariff */

/* ---- the month's numbers ------------------------------------------------
 *
 * The figures are computed in one pass over the month's findings (every
 * version) and one over its candidates, plus small queries of the run
 * history (runs, files, rejects, changes, state_files): the shown queries
 * read the same rows and give the same numbers (tests/cli/t_report_numbers.sh
 * runs them), but would scan the findings once per figure. */

/* Money sums of a group of findings: how many, overcharge (positive
 * differences), leakage (negative differences, as a positive amount). */
typedef struct rp_agg {
    size_t idx;
    int64_t n;
    cdr_money over, leak;
} rp_agg;

/* The plan and rate-row sums of a tariff (src/report/month/tariffs.c): every
 * current finding of the month with a non-zero difference; its plan is the
 * subscriber period in force at its start, its rate row the one an
 * originating (mo) record of that plan, service, peer and start band uses
 * (findings do not store the direction); duplicates, free numbers and SP
 * fees without a subscription have no rate row. */
typedef struct rp_tariff_sums rp_tariff_sums;
rp_tariff_sums *rp_tariff_sums_new(const cdr_tariff *t);
void rp_tariff_sums_add(rp_tariff_sums *s, const char *msisdn, cdr_time start, cdr_service svc,
                        const char *peer, const char *category, cdr_money difference);
/* The two tables, sorted and cut as the shown queries do (10 plans, 15
 * rate rows). 0 when out of memory. */
int rp_tariff_sums_tables(rp_tariff_sums *s, rp_table *plans, rp_table *rates);
void rp_tariff_sums_free(rp_tariff_sums *s);
/* The shown SQL of those two figures (sqlite3 .import of the tariff's
 * tables into temp tables, then the query), for the directory dir; bands:
 * whether the tariff has a bands.csv. */
void rp_tariff_sql_shown(textbuf *b, int fig, const char *dir, const char *month, int bands);

typedef struct rp_month rp_month;
/*
 * Read the month: ?1 = month, as_of the day deadlines are compared with;
 * keep_tariff: keep what the plan and rate-row figures need, for
 * rp_month_tariff (the tariff loads meanwhile). Errors from SQLite (mapped)
 * or CDR_E_NOMEM, with a message in err.
 */
cdr_err rp_month_load(sqlite3 *h, const char *month, const char *as_of, int keep_tariff,
                      rp_month **out, char *err, size_t errlen);
/* The plan and rate-row figures from the tariff. 0 when out of memory. */
int rp_month_tariff(rp_month *m, const cdr_tariff *t);
/* Fill t (initialised with the figure's columns) with the figure's rows:
 * exactly the rows its shown query gives. 0 when out of memory. */
int rp_month_table(const rp_month *m, int fig, rp_table *t);
void rp_month_free(rp_month *m);

/* Executed queries of the small tables; ?3 is the month's runs as a JSON
 * array of run ids. */
extern const char rp_sql_run_reject_reasons[];
extern const char rp_sql_run_reject_files[];

#endif
