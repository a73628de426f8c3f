/* cdrecon CLI — the current outputs of the months a run reports
 * (findings.csv, candidates.csv, unrated.csv, changes.csv), from the
 * database, and the month's totals as they are written. Shared by `run`
 * and `cluster report` (which writes them shard by shard and merges). */
#ifndef CDRECON_CLI_OUTPUTS_H
#define CDRECON_CLI_OUTPUTS_H

#include "cdrecon/db.h"
#include "cdrecon/findings.h"
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
} cli_outputs;

void cli_outputs_headers(cli_outputs *o);
/* The current findings, candidates and unrated records of the months, and
 * the changes of the runs, each in the subscribers' order (h, msisdn,
 * month); o->tot summed. */
cdr_err cli_outputs_from_db(cli_outputs *o, cdr_db *db, const cdr_month *months, size_t n,
                            const int64_t *runs, size_t nruns);
/* The "month ..., as of this run:" block of the summary. */
void cli_outputs_print_month(const cli_month_tot *m, const char *months);

#endif
