/* cdrecon CLI — the current outputs of the months a run reports
 * (findings.csv, candidates.csv, unrated.csv, changes.csv), from the
 * database, and the month's totals as they are written. Shared by `run`
 * and `cluster report` (which writes them shard by shard and merges). */
#ifndef CDRECON_CLI_OUTPUTS_H
#define CDRECON_CLI_OUTPUTS_H

#include "cdrecon/db.h"
#include "cdrecon/findings.h"
#include "cdrecon/outcache.h"
#include "cdrecon/outcsv.h"

enum { CLI_OUT_FINDINGS, CLI_OUT_CANDIDATES, CLI_OUT_UNRATED, CLI_OUT_CHANGES, CLI_OUT__COUNT };
extern const char *const cli_out_names[CLI_OUT__COUNT]; /* "findings.csv", ... */

/* The current state of the months reported. */
typedef struct cli_month_tot {
    uint64_t findings, by_category[CDR_CAT__COUNT], candidates, leakage_records;
    cdr_money amount_by_category[CDR_CAT__COUNT], overcharge, refund, leakage;
    uint64_t policy[2], special, tier[5], unrated;
} cli_month_tot;

typedef struct cli_outputs {
    cdr_csvw *w[CLI_OUT__COUNT];
    cli_month_tot tot;
    /* if set: called after each row (kind CLI_OUT_*, the row's subscriber);
     * non-zero stops */
    int (*row_done)(void *user, int kind, cdr_str msisdn);
    void *user;
    /* if set (cli_outputs_current): every row also goes to the outputs
     * cache being built, and only rows of months marked in report[] go to
     * the CSV files */
    cdr_oc_build *build;
    const cdr_month *report;
    size_t n_report;
    cdr_csvw *mem; /* a row rendered for both */
} cli_outputs;

void cli_outputs_headers(cli_outputs *o);
/* The current findings, candidates and unrated records of the months, and
 * the changes of the runs, each in the subscribers' order (h, msisdn,
 * month); o->tot summed. */
cdr_err cli_outputs_from_db(cli_outputs *o, cdr_db *db, const cdr_month *months, size_t n,
                            const int64_t *runs, size_t nruns);
/* An unrated record's CSV row (unrated.csv). */
cdr_err cli_unrated_csv_row(cdr_csvw *w, const cdr_db_unrated *u);

/* The current outputs of a run (cmd_run): of the months `report`, from
 * the outputs cache of the state directory patched with the run's delta,
 * or, when a month's cache cannot be used, from the database. Either way
 * the cache files of the months `report` and `touched` are written again
 * (as .tmp; *placed lists them, for cdr_oc_place before the commit) and
 * their new token is set in the database. `existed`: the months the state
 * held before the run (the others had no rows). *from_db says which way.
 * Everything that needs the database is done here: when the cache
 * serves, its rows are still to merge, without the database, by
 * cli_outputs_merge(*pending) (then cdr_oc_merge_free; err says why it
 * failed, unless an output's writer did); else *pending is NULL and every
 * output is written. */
cdr_err cli_outputs_begin(cli_outputs *o, cdr_db *db, const char *sdir, const cdr_month *report,
                          size_t nr, const cdr_month *touched, size_t nt, const cdr_month *existed,
                          size_t ne, cdr_oc_delta *d, const int64_t *runs, size_t nruns,
                          cdr_month **placed, size_t *nplaced, int *from_db,
                          cdr_oc_merger **pending);
cdr_err cli_outputs_merge(cli_outputs *o, cdr_oc_merger *pending, char *err, size_t errlen);

/* The "month ..., as of this run:" block of the summary. */
void cli_outputs_print_month(const cli_month_tot *m, const char *months);

#endif
