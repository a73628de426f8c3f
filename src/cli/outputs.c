/* cdrecon CLI — the current outputs of the reported months (outputs.h). */
#include "outputs.h"

#include <stdio.h>
#include <string.h>

const char *const cli_out_names[CLI_OUT__COUNT] = {"findings.csv", "candidates.csv",
                                                   "unrated.csv", "changes.csv"};

static int put_finding(const cdr_finding *f, int64_t run_id, int64_t file_id, void *user)
{
    cli_outputs *c = user;
    (void)run_id;
    (void)file_id;
    c->tot.findings++;
    c->tot.by_category[f->category]++;
    if (f->category == CDR_CAT_LEAKAGE) {
        c->tot.leakage = cdr_money_total_add(c->tot.leakage, -f->difference);
        c->tot.leakage_records++;
        c->tot.amount_by_category[f->category] =
            cdr_money_total_add(c->tot.amount_by_category[f->category], -f->difference);
    } else if (f->difference > 0) {
        c->tot.amount_by_category[f->category] =
            cdr_money_total_add(c->tot.amount_by_category[f->category], f->difference);
    }
    return cdr_findings_csv_row(c->w[CLI_OUT_FINDINGS], f) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_FINDINGS, f->msisdn));
}

static int put_candidate(const cdr_candidate *cd, int64_t run_id, void *user)
{
    cli_outputs *c = user;
    (void)run_id;
    c->tot.candidates++;
    c->tot.overcharge = cdr_money_total_add(c->tot.overcharge, cd->overcharge);
    c->tot.refund = cdr_money_total_add(c->tot.refund, cd->refund);
    c->tot.policy[cd->policy == CDR_POLICY_VERIFY_FIRST]++;
    c->tot.special += cd->special != 0;
    if (cd->tier >= 0 && cd->tier <= 4)
        c->tot.tier[cd->tier]++;
    return cdr_candidates_csv_row(c->w[CLI_OUT_CANDIDATES], cd) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_CANDIDATES, cd->msisdn));
}

static int put_unrated(const cdr_db_unrated *u, void *user)
{
    cli_outputs *c = user;
    cdr_csvw *w = c->w[CLI_OUT_UNRATED];
    c->tot.unrated++;
    char buf[32];
    cdr_csvw_textz(w, u->file ? u->file : "");
    cdr_csvw_u64(w, u->line);
    cdr_csvw_u64(w, u->offset);
    cdr_csvw_text(w, u->record_id.p, u->record_id.n);
    cdr_csvw_text(w, u->msisdn.p, u->msisdn.n);
    cdr_csvw_text(w, buf, cdr_month_format(u->month, buf));
    cdr_csvw_textz(w, cdr_service_name(u->service));
    cdr_csvw_money(w, u->billed);
    cdr_csvw_textz(w, u->reason ? u->reason : "");
    return cdr_csvw_end_row(w) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_UNRATED, u->msisdn));
}

static int put_change(const cdr_db_change *ch, void *user)
{
    cli_outputs *c = user;
    cdr_csvw *w = c->w[CLI_OUT_CHANGES];
    char buf[32];
    cdr_csvw_text(w, ch->msisdn.p, ch->msisdn.n);
    cdr_csvw_text(w, buf, cdr_month_format(ch->month, buf));
    cdr_csvw_money(w, ch->previous_refund);
    cdr_csvw_money(w, ch->refund);
    cdr_csvw_money(w, ch->delta);
    cdr_csvw_textz(w, ch->status);
    return cdr_csvw_end_row(w) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_CHANGES, ch->msisdn));
}

static void header(cdr_csvw *w, const char *const *cols)
{
    for (int i = 0; cols[i]; i++)
        cdr_csvw_textz(w, cols[i]);
    cdr_csvw_end_row(w);
}

void cli_outputs_headers(cli_outputs *o)
{
    static const char *const uh[] = {"file", "line", "offset", "record_id", "msisdn", "month",
                                     "service", "billed", "reason", NULL};
    static const char *const chh[] = {"msisdn", "month", "previous_refund", "refund", "delta",
                                      "status", NULL};
    cdr_findings_csv_header(o->w[CLI_OUT_FINDINGS]);
    cdr_candidates_csv_header(o->w[CLI_OUT_CANDIDATES]);
    header(o->w[CLI_OUT_UNRATED], uh);
    header(o->w[CLI_OUT_CHANGES], chh);
}

/* From the database, so that a month delivered over many nights reads
 * exactly as if delivered at once. */
cdr_err cli_outputs_from_db(cli_outputs *o, cdr_db *db, const cdr_month *months, size_t n,
                            const int64_t *runs, size_t nruns)
{
    cdr_err e;
    if ((e = cdr_db_current_findings(db, months, n, put_finding, o)) != CDR_OK ||
        (e = cdr_db_current_candidates(db, months, n, put_candidate, o)) != CDR_OK ||
        (e = cdr_db_current_unrated(db, months, n, put_unrated, o)) != CDR_OK ||
        (nruns && (e = cdr_db_runs_changes(db, runs, nruns, put_change, o)) != CDR_OK))
        return e;
    for (int i = 0; i < CLI_OUT__COUNT; i++)
        if ((e = cdr_csvw_status(o->w[i])) != CDR_OK)
            return e;
    return CDR_OK;
}

void cli_outputs_print_month(const cli_month_tot *m, const char *months)
{
    char a[32], b[32];
    printf("month       %s, as of this run:\n", *months ? months : "(none)");
    printf("findings    %llu\n", (unsigned long long)m->findings);
    for (int k = 0; k < CDR_CAT__COUNT; k++) {
        if (!m->by_category[k])
            continue;
        cdr_money_format_total(m->amount_by_category[k], 2, a);
        if (k == CDR_CAT_NONE)
            printf("  %-22s %8llu\n", "(flags only)", (unsigned long long)m->by_category[k]);
        else
            printf("  %-22s %8llu  %12s yuan\n", cdr_category_name((cdr_category)k),
                   (unsigned long long)m->by_category[k], a);
    }
    cdr_money_format_total(m->overcharge, 2, a);
    cdr_money_format_total(m->refund, 2, b);
    printf("candidates  %llu subscriber-months: overcharge %s yuan, refund (x2) %s yuan\n",
           (unsigned long long)m->candidates, a, b);
    printf("            refund_first %llu, verify_first %llu, special customers %llu; "
           "tiers 0:%llu 1:%llu 2:%llu 3:%llu 4:%llu\n",
           (unsigned long long)m->policy[0], (unsigned long long)m->policy[1],
           (unsigned long long)m->special, (unsigned long long)m->tier[0],
           (unsigned long long)m->tier[1], (unsigned long long)m->tier[2],
           (unsigned long long)m->tier[3], (unsigned long long)m->tier[4]);
    cdr_money_format_total(m->leakage, 2, a);
    printf("leakage     %llu records undercharged by %s yuan (reported, never refunded)\n",
           (unsigned long long)m->leakage_records, a);
    printf("unrated     %llu records\n", (unsigned long long)m->unrated);
}
