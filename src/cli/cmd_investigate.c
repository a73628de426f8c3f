/* cdrecon investigate — one number's bill month as a statement, from the
 * month state kept with `cdrecon run`'s database (fast path) or by scanning
 * CDR files. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/render.h"
#include "cdrecon/tariff.h"
#include "ingest.h"
#include "opts.h"

enum { O_FORMAT = 1, O_TIMING };
static const cli_opt investigate_opts[] = {
    {"--format", 0, CLI_OPT_VALUE, "F", "text (default), csv or json", O_FORMAT},
    {"--timing", 0, 0, NULL, "print the time taken on stderr", O_TIMING},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const investigate_tables[] = {
    cli_subject_opts, cli_tariff_opts, investigate_opts, cli_engine_opts, cli_profile_opts, NULL};
static const cli_spec investigate_spec = {
    "investigate",
    "cdrecon investigate --msisdn N --month YYYY-MM --db FILE [options]\n"
    "cdrecon investigate --msisdn N --month YYYY-MM --store DIR [options]\n"
    "cdrecon investigate --msisdn N --month YYYY-MM --cluster DIR [options]\n"
    "cdrecon investigate --msisdn N --month YYYY-MM --tariff DIR [options] FILES...",
    "One number's bill month as a statement: every record with its billed and\n"
    "rebuilt charge, the bundle running down, every flag, the per-pool summary and\n"
    "the verdict (overcharge, double refund, approval tier, refund-first or\n"
    "verify-first and its deadline). From the month state (--db, --store,\n"
    "--cluster: in seconds or less; --tariff rates with that tariff instead of the\n"
    "one the month was last rated with), or by re-rating the CDR FILES with the\n"
    "tariff DIR (the scan path: the engine options and --profile apply to it).\n",
    investigate_tables,
    "exit status: 0 ok; 11 the number has no record in that month; 1 usage;\n"
    "13 damaged store; other codes: docs/exit-codes.md\n",
    0,
};

int cmd_investigate(int argc, char **argv)
{
    const char *msisdn_arg = NULL, *month_arg = NULL, *store_path = NULL, *tariff_dir = NULL;
    const char *db_path = NULL, *cluster_dir = NULL;
    char cluster_db[PATH_MAX];
    cli_state_src src;
    int have_src = 0;
    const char *v, *profile_path = NULL;
    cdr_profile *prof = NULL;
    cdr_render_format fmt = CDR_RENDER_TEXT;
    int timing = 0;
    cdr_engine_opts eo;
    cli_engine_opts_init(&eo);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cdr_stmt s;
    int have_stmt = 0;
    char err[1024];
    char num[CDR_NUMBER_MAX + 1], masked[CDR_NUMBER_MAX + 1], mtext[8];
    cdr_month month = 0;
    double t0 = cli_now_s();

    memset(&s, 0, sizeof s);
    if (!files)
        return CDR_E_NOMEM;
    cli_args args;
    cli_args_init(&args, &investigate_spec, argc, argv);
    for (int id; rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        v = args.val;
        switch (id) {
        case CLI_ARG_HELP: free(files); return CDR_OK;
        case CLI_ARG_ERR: rc = CDR_E_USAGE; break;
        case CLI_ARG_POS: files[nfiles++] = argv[args.i - 1]; break;
        case CLI_O_PROFILE: rc = cli_profile_value(v, &profile_path); break;
        case CLI_O_MSISDN: msisdn_arg = v; break;
        case CLI_O_MONTH: month_arg = v; break;
        case CLI_O_STORE: store_path = v; break;
        case CLI_O_DB: db_path = v; break;
        case CLI_O_CLUSTER: cluster_dir = v; break;
        case CLI_O_TARIFF: tariff_dir = v; break;
        case O_FORMAT:
            if (cdr_render_format_parse(v, &fmt) != CDR_OK)
                rc = cli_fail(CDR_E_USAGE, "bad --format '%s' (text, csv or json)", v);
            break;
        case O_TIMING: timing = 1; break;
        default: rc = cli_engine_value(id, v, &eo); break;
        }
    }
    if (rc != CDR_OK)
        goto out;
    if (cluster_dir && (rc = cli_cluster_db(cluster_dir, msisdn_arg, &db_path, store_path,
                                            cluster_db, sizeof cluster_db)) != CDR_OK)
        goto out;
    if (!msisdn_arg || !month_arg || (!store_path && !tariff_dir && !db_path)) {
        cli_help(&investigate_spec, stderr);
        rc = CDR_E_USAGE;
        goto out;
    }
    if ((store_path || db_path) && nfiles) {
        rc = cli_fail(CDR_E_USAGE, "give either --db FILE (or --store DIR) or --tariff DIR "
                      "FILES..., not both");
        goto out;
    }
    if (store_path && db_path) {
        rc = cli_fail(CDR_E_USAGE, "give --db FILE or --store DIR, not both");
        goto out;
    }
    if (!store_path && !db_path && nfiles == 0) {
        rc = cli_fail(CDR_E_USAGE, "--tariff needs the CDR FILES of the month");
        goto out;
    }
    if (profile_path && (store_path || db_path)) {
        rc = cli_fail(CDR_E_USAGE, "--profile is for reading CDR FILES, not the month state "
                                   "(it holds the records as the profile read them)");
        goto out;
    }
    if ((rc = cli_profile_load(profile_path, &prof)) != CDR_OK)
        goto out;
    {
        cdr_str n;
        if (cdr_number_normalise(msisdn_arg, strlen(msisdn_arg), &n) != CDR_OK) {
            /* never echo a number on stderr in full */
            rc = cli_fail(CDR_E_USAGE, "--msisdn is not a phone number (digits, optional +)");
            goto out;
        }
        memcpy(num, n.p, n.n);
        num[n.n] = '\0';
        cdr_number_mask(num, n.n, masked);
    }
    if (cdr_month_parse(month_arg, strlen(month_arg), &month) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (want YYYY-MM)", month_arg);
        goto out;
    }
    cdr_month_format(month, mtext);

    const char *source;
    if (store_path || db_path) {
        source = "month state";
        int other = 0;
        if ((rc = cli_state_open(&src, db_path, store_path)) != CDR_OK)
            goto out;
        have_src = 1;
        rc = cli_state_tariff(&src, num, month, tariff_dir, &eo, &t, &other);
        if (rc != CDR_OK && rc != CDR_E_NOTFOUND)
            goto out;
        if (rc == CDR_OK) {
            if (other)
                fprintf(stderr, "cdrecon: investigate: note: rated with %s, not the tariff the "
                        "month was last rated with\n", tariff_dir ? tariff_dir : "the tariff");
            rc = cdr_stmt_from_state(t, src.st, num, month, &eo, &s, err, sizeof err);
            have_stmt = 1;
            if (rc != CDR_OK && rc != CDR_E_NOTFOUND) {
                cli_fail(rc, "%s", err[0] ? err : "month state");
                goto out;
            }
        }
    } else {
        source = "scan";
        if ((rc = cdr_tariff_load(tariff_dir, &t, err, sizeof err)) != CDR_OK) {
            cli_fail(rc, "tariff %s: %s", tariff_dir, err);
            goto out;
        }
        cli_tariff_warnings(t);
        cdr_reader_opts ro;
        cdr_reader_opts_init(&ro);
        ro.profile = prof;
        rc = cdr_stmt_scan_ro(t, files, (size_t)nfiles, num, month, &eo, &ro, NULL, &s, err,
                              sizeof err);
        have_stmt = 1;
        if (rc != CDR_OK && rc != CDR_E_NOTFOUND) {
            cli_fail(rc, "%s", err[0] ? err : "scan failed");
            goto out;
        }
    }
    if (rc == CDR_E_NOTFOUND || !have_stmt || s.n_recs == 0) {
        rc = cli_fail(CDR_E_NOTFOUND, "no record of %s in %s (%s)", masked, mtext, source);
        goto out;
    }
    if (fmt != CDR_RENDER_TEXT && isatty(STDOUT_FILENO)) {
        /* csv/json shown on a terminal: an unknown column's ESC escaped
         * (the text format escapes everything itself) */
        char *txt = NULL, *esc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&txt, &len);
        rc = m ? cdr_render_stmt(m, &s, fmt) : CDR_E_NOMEM;
        if (m)
            fclose(m);
        if (rc == CDR_OK && !(esc = malloc(4 * len + 1)))
            rc = CDR_E_NOMEM;
        if (rc == CDR_OK) {
            size_t k = cli_tty_escape(txt, len, esc);
            if (fwrite(esc, 1, k, stdout) != k || fflush(stdout) != 0)
                rc = CDR_E_IO;
        }
        free(txt);
        free(esc);
    } else {
        rc = cdr_render_stmt(stdout, &s, fmt);
    }
    if (rc != CDR_OK) {
        cli_fail(rc, "cannot write the statement");
        goto out;
    }
    if (timing)
        fprintf(stderr, "cdrecon: investigate: %s %s: %zu records from the %s in %.1f ms\n",
                masked, mtext, s.n_recs, source, (cli_now_s() - t0) * 1e3);
out:
    if (have_stmt)
        cdr_stmt_free(&s);
    if (have_src)
        cli_state_close(&src);
    cdr_tariff_free(t);
    cdr_profile_free(prof);
    free(files);
    return rc;
}
