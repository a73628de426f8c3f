/* cdrecon CLI — the current outputs of the reported months (outputs.h). */
#include "outputs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_out_names[CLI_OUT__COUNT] = {"findings.csv", "candidates.csv",
                                                   "unrated.csv", "changes.csv"};

static void sum_finding(cli_month_tot *t, int category, cdr_money difference)
{
    t->findings++;
    t->by_category[category]++;
    if (category == CDR_CAT_LEAKAGE) {
        t->leakage = cdr_money_total_add(t->leakage, -difference);
        t->leakage_records++;
        t->amount_by_category[category] =
            cdr_money_total_add(t->amount_by_category[category], -difference);
    } else if (difference > 0) {
        t->amount_by_category[category] =
            cdr_money_total_add(t->amount_by_category[category], difference);
    }
}

static void sum_candidate(cli_month_tot *t, int policy, int special, int tier,
                          cdr_money overcharge, cdr_money refund)
{
    t->candidates++;
    t->overcharge = cdr_money_total_add(t->overcharge, overcharge);
    t->refund = cdr_money_total_add(t->refund, refund);
    t->policy[policy == CDR_POLICY_VERIFY_FIRST]++;
    t->special += special != 0;
    if (tier >= 0 && tier <= 4)
        t->tier[tier]++;
}

static int reported(const cli_outputs *c, cdr_month m)
{
    for (size_t i = 0; i < c->n_report; i++)
        if (c->report[i] == m)
            return 1;
    return 0;
}

/* With an outputs cache being built: the row just rendered in c->mem
 * (rendered: how that went) goes to it, and to the CSV file when its month
 * is reported. 0: written and reported (to be summed), 1: not reported, -1:
 * failed. */
static int to_cache(cli_outputs *c, cdr_err rendered, int section, uint64_t h, cdr_str msisdn,
                    cdr_month m, uint64_t seq, const int64_t num[CDR_OC_NUMS])
{
    size_t len;
    const char *text = cdr_csvw_memory(c->mem, &len);
    int err = rendered != CDR_OK || cdr_csvw_status(c->mem) != CDR_OK ||
              cdr_oc_build_row(c->build, section, h, msisdn, m, seq, num, text, len) != CDR_OK;
    int out = section == CDR_OC_FINDINGS ? CLI_OUT_FINDINGS
              : section == CDR_OC_CANDIDATES ? CLI_OUT_CANDIDATES
                                             : CLI_OUT_UNRATED;
    int rep = reported(c, m);
    if (!err && rep)
        err = cdr_csvw_raw_rows(c->w[out], text, len, 1) != CDR_OK;
    cdr_csvw_memory_reset(c->mem);
    return err ? -1 : !rep;
}

static int put_finding(const cdr_finding *f, int64_t run_id, int64_t file_id, void *user)
{
    cli_outputs *c = user;
    (void)run_id;
    (void)file_id;
    if (c->build) {
        int64_t num[CDR_OC_NUMS] = {f->category, f->difference};
        int r = to_cache(c, cdr_findings_csv_row(c->mem, f), CDR_OC_FINDINGS, f->msisdn_hash,
                         f->msisdn, f->month, f->seq, num);
        if (r == 0)
            sum_finding(&c->tot, f->category, f->difference);
        return r < 0;
    }
    sum_finding(&c->tot, f->category, f->difference);
    return cdr_findings_csv_row(c->w[CLI_OUT_FINDINGS], f) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_FINDINGS, f->msisdn));
}

static int put_candidate(const cdr_candidate *cd, int64_t run_id, void *user)
{
    cli_outputs *c = user;
    (void)run_id;
    if (c->build) {
        int64_t num[CDR_OC_NUMS] = {cd->policy, cd->special, cd->tier, cd->overcharge,
                                    cd->refund};
        int r = to_cache(c, cdr_candidates_csv_row(c->mem, cd), CDR_OC_CANDIDATES,
                         cd->msisdn_hash, cd->msisdn, cd->month, 0, num);
        if (r == 0)
            sum_candidate(&c->tot, cd->policy, cd->special, cd->tier, cd->overcharge,
                          cd->refund);
        return r < 0;
    }
    sum_candidate(&c->tot, cd->policy, cd->special, cd->tier, cd->overcharge, cd->refund);
    return cdr_candidates_csv_row(c->w[CLI_OUT_CANDIDATES], cd) != CDR_OK ||
           (c->row_done && c->row_done(c->user, CLI_OUT_CANDIDATES, cd->msisdn));
}

cdr_err cli_unrated_csv_row(cdr_csvw *w, const cdr_db_unrated *u)
{
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
    return cdr_csvw_end_row(w);
}

static int put_unrated(const cdr_db_unrated *u, void *user)
{
    cli_outputs *c = user;
    if (c->build) {
        int64_t num[CDR_OC_NUMS] = {0};
        int r = to_cache(c, cli_unrated_csv_row(c->mem, u), CDR_OC_UNRATED, u->msisdn_hash,
                         u->msisdn, u->month, u->seq, num);
        if (r == 0)
            c->tot.unrated++;
        return r < 0;
    }
    c->tot.unrated++;
    return cli_unrated_csv_row(c->w[CLI_OUT_UNRATED], u) != CDR_OK ||
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

/* ---- the outputs cache (include/cdrecon/outcache.h) ---- */

static int month_in(const cdr_month *ms, size_t n, cdr_month m)
{
    for (size_t i = 0; i < n; i++)
        if (ms[i] == m)
            return 1;
    return 0;
}

static int merged_row(const cdr_oc_row *r, void *user)
{
    cli_outputs *c = user;
    int out = CLI_OUT_UNRATED;
    if (r->section == CDR_OC_FINDINGS) {
        out = CLI_OUT_FINDINGS;
        sum_finding(&c->tot, (int)r->num[0], r->num[1]);
    } else if (r->section == CDR_OC_CANDIDATES) {
        out = CLI_OUT_CANDIDATES;
        sum_candidate(&c->tot, (int)r->num[0], (int)r->num[1], (int)r->num[2], r->num[3],
                      r->num[4]);
    } else {
        c->tot.unrated++;
    }
    return cdr_csvw_raw_rows(c->w[out], r->text, r->len, 1) != CDR_OK;
}

/* a and b as one sorted list without repeats (the database's month order);
 * out holds na + nb. */
static size_t months_union(const cdr_month *a, size_t na, const cdr_month *b, size_t nb,
                           cdr_month *out)
{
    size_t n = 0;
    for (size_t i = 0; i < na + nb; i++) {
        cdr_month m = i < na ? a[i] : b[i - na];
        if (month_in(out, n, m))
            continue;
        size_t at = n++;
        while (at > 0 && out[at - 1] > m) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = m;
    }
    return n;
}

/* Each month's cache token as the database names it (into tok[i]); ""
 * for a month the state did not hold before the run (nothing to read);
 * *usable cleared when a month that had rows has no token. */
static cdr_err month_tokens(cdr_db *db, cdr_oc_month *om, size_t n,
                            char (*tok)[CDR_OC_TOKEN_LEN + 8], const cdr_month *existed,
                            size_t ne, int *usable)
{
    for (size_t i = 0; i < n; i++) {
        char key[32];
        int found = 0;
        cdr_err e = cdr_db_meta_get(db, cdr_oc_meta_key(om[i].m, key), tok[i], sizeof tok[i],
                                    &found);
        if (e != CDR_OK)
            return e;
        if (found && strlen(tok[i]) == CDR_OC_TOKEN_LEN)
            om[i].token = tok[i];
        else if (!month_in(existed, ne, om[i].m))
            om[i].token = "";
        else
            *usable = 0; /* (no cache yet, or one a run left unfinished) */
    }
    return CDR_OK;
}

/* The outputs from the database, every month's cache file written again
 * from the same rows. */
static cdr_err outputs_rebuilt(cli_outputs *o, cdr_db *db, const char *sdir, const cdr_month *all,
                               size_t n, const cdr_month *report, size_t nr, const char *token)
{
    cdr_err e, be = CDR_OK;
    char err[512];
    memset(&o->tot, 0, sizeof o->tot);
    if ((e = cdr_csvw_open_memory(&o->mem)) != CDR_OK ||
        (e = cdr_oc_build_new(sdir, all, n, token, &o->build)) != CDR_OK)
        goto out;
    o->report = report;
    o->n_report = nr;
    if ((e = cdr_db_current_findings(db, all, n, put_finding, o)) != CDR_OK ||
        (e = cdr_db_current_candidates(db, all, n, put_candidate, o)) != CDR_OK ||
        (e = cdr_db_current_unrated(db, all, n, put_unrated, o)) != CDR_OK ||
        (be = cdr_oc_build_finish(o->build, err, sizeof err)) != CDR_OK) {
        e = e != CDR_OK ? e : be;
        cdr_oc_discard(sdir, all, n);
    }
out:
    cdr_oc_build_free(o->build);
    o->build = NULL;
    cdr_csvw_free(o->mem);
    o->mem = NULL;
    o->report = NULL;
    o->n_report = 0;
    return e;
}

cdr_err cli_outputs_begin(cli_outputs *o, cdr_db *db, const char *sdir, const cdr_month *report,
                          size_t nr, const cdr_month *touched, size_t nt, const cdr_month *existed,
                          size_t ne, cdr_oc_delta *d, const int64_t *runs, size_t nruns,
                          cdr_month **placed, size_t *nplaced, int *from_db,
                          cdr_oc_merger **pending)
{
    *placed = NULL;
    *nplaced = 0;
    *from_db = 1;
    *pending = NULL;
    /* every month reported or touched */
    cdr_month *all = calloc(nr + nt + 1, sizeof *all);
    cdr_oc_month *om = calloc(nr + nt + 1, sizeof *om);
    char (*tok)[CDR_OC_TOKEN_LEN + 8] = calloc(nr + nt + 1, sizeof *tok);
    char token[CDR_OC_TOKEN_LEN + 1];
    cdr_oc_merger *mg = NULL;
    cdr_err e = !all || !om || !tok ? CDR_E_NOMEM : CDR_OK;
    size_t n = e == CDR_OK ? months_union(report, nr, touched, nt, all) : 0;
    int usable = d != NULL && !o->row_done;
    for (size_t i = 0; i < n; i++) /* (a reported month not touched keeps its file) */
        om[i] = (cdr_oc_month){all[i], NULL, month_in(report, nr, all[i]),
                               month_in(touched, nt, all[i])};
    if (e == CDR_OK && (e = month_tokens(db, om, n, tok, existed, ne, &usable)) == CDR_OK)
        e = cdr_oc_token(token);
    if (e == CDR_OK && usable) {
        char err[512];
        e = cdr_oc_merge_open(sdir, om, n, token, d, &mg, err, sizeof err);
        *from_db = e == CDR_E_NOTFOUND;
        e = e == CDR_E_NOTFOUND ? CDR_OK : e;
    }
    if (e == CDR_OK && *from_db) {
        for (size_t i = 0; i < n; i++)
            om[i].rewrite = 1; /* (every month's file written again) */
        e = outputs_rebuilt(o, db, sdir, all, n, report, nr, token);
    }
    if (e == CDR_OK && nruns)
        e = cdr_db_runs_changes(db, runs, nruns, put_change, o);
    for (int i = 0; e == CDR_OK && i < CLI_OUT__COUNT; i++)
        e = cdr_csvw_status(o->w[i]);
    /* the months whose file is written, and their new token */
    size_t np = 0;
    for (size_t i = 0; e == CDR_OK && i < n; i++) {
        char key[32];
        if (om[i].rewrite) {
            all[np++] = om[i].m;
            e = cdr_db_meta_set(db, cdr_oc_meta_key(om[i].m, key), token);
        }
    }
    if (e == CDR_OK) {
        *placed = all;
        *nplaced = np;
        *pending = mg;
        all = NULL;
        mg = NULL;
    }
    cdr_oc_merge_free(mg);
    free(all);
    free(om);
    free(tok);
    return e;
}

cdr_err cli_outputs_merge(cli_outputs *o, cdr_oc_merger *pending, char *err, size_t errlen)
{
    cdr_err e = cdr_oc_merge_rows(pending, merged_row, o, err, errlen);
    for (int i = 0; e == CDR_E_INTERRUPTED && i < CLI_OUT__COUNT; i++)
        if (cdr_csvw_status(o->w[i]) != CDR_OK)
            e = cdr_csvw_status(o->w[i]); /* (an output that failed stopped it) */
    for (int i = 0; e == CDR_OK && i < CLI_OUT__COUNT; i++)
        e = cdr_csvw_status(o->w[i]);
    return e;
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
