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

typedef struct inv_args {
    const char *msisdn_arg, *month_arg, *store_path, *tariff_dir, *db_path, *cluster_dir;
    const char *profile_path;
    char cluster_db[PATH_MAX];
    cdr_render_format fmt;
    int timing;
    cdr_engine_opts eo;
    char **files;
    int nfiles;
} inv_args;

/* The arguments into o (o->files allocated), checked. 0, or -1 when the
 * command ends here with *rc (--help: CDR_OK; a usage error, reported). */
static int parse_args(int argc, char **argv, inv_args *o, int *rc)
{
    const char *v;
    *rc = CDR_OK;
    o->fmt = CDR_RENDER_TEXT;
    cli_engine_opts_init(&o->eo);
    if (!(o->files = calloc((size_t)argc + 1, sizeof *o->files))) {
        *rc = CDR_E_NOMEM;
        return -1;
    }
    cli_args args;
    cli_args_init(&args, &investigate_spec, argc, argv);
    for (int id; *rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        v = args.val;
        switch (id) {
        case CLI_ARG_HELP: return -1;
        case CLI_ARG_ERR: *rc = CDR_E_USAGE; break;
        case CLI_ARG_POS: o->files[o->nfiles++] = argv[args.i - 1]; break;
        case CLI_O_PROFILE: *rc = cli_profile_value(v, &o->profile_path); break;
        case CLI_O_MSISDN: o->msisdn_arg = v; break;
        case CLI_O_MONTH: o->month_arg = v; break;
        case CLI_O_STORE: o->store_path = v; break;
        case CLI_O_DB: o->db_path = v; break;
        case CLI_O_CLUSTER: o->cluster_dir = v; break;
        case CLI_O_TARIFF: o->tariff_dir = v; break;
        case O_FORMAT:
            if (cdr_render_format_parse(v, &o->fmt) != CDR_OK)
                *rc = cli_fail(CDR_E_USAGE, "bad --format '%s' (text, csv or json)", v);
            break;
        case O_TIMING: o->timing = 1; break;
        default: *rc = cli_engine_value(id, v, &o->eo); break;
        }
    }
    if (*rc != CDR_OK)
        return -1;
    if (o->cluster_dir && (*rc = cli_cluster_db(o->cluster_dir, o->msisdn_arg, &o->db_path,
                                                o->store_path, o->cluster_db,
                                                sizeof o->cluster_db)) != CDR_OK)
        return -1;
    if (!o->msisdn_arg || !o->month_arg || (!o->store_path && !o->tariff_dir && !o->db_path)) {
        cli_help(&investigate_spec, stderr);
        *rc = CDR_E_USAGE;
        return -1;
    }
    if ((o->store_path || o->db_path) && o->nfiles) {
        *rc = cli_fail(CDR_E_USAGE, "give either --db FILE (or --store DIR) or --tariff DIR "
                       "FILES..., not both");
        return -1;
    }
    if (o->store_path && o->db_path) {
        *rc = cli_fail(CDR_E_USAGE, "give --db FILE or --store DIR, not both");
        return -1;
    }
    if (!o->store_path && !o->db_path && o->nfiles == 0) {
        *rc = cli_fail(CDR_E_USAGE, "--tariff needs the CDR FILES of the month");
        return -1;
    }
    if (o->profile_path && (o->store_path || o->db_path)) {
        *rc = cli_fail(CDR_E_USAGE, "--profile is for reading CDR FILES, not the month state "
                                    "(it holds the records as the profile read them)");
        return -1;
    }
    return 0;
}

/* The statement on stdout; csv/json shown on a terminal with an unknown
 * column's ESC escaped (the text format escapes everything itself). */
static cdr_err write_stmt(const cdr_stmt *s, cdr_render_format fmt)
{
    cdr_err rc;
    if (fmt != CDR_RENDER_TEXT && isatty(STDOUT_FILENO)) {
        /* csv/json shown on a terminal: an unknown column's ESC escaped
         * (the text format escapes everything itself) */
        char *txt = NULL, *esc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&txt, &len);
        rc = m ? cdr_render_stmt(m, s, fmt) : CDR_E_NOMEM;
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
        rc = cdr_render_stmt(stdout, s, fmt);
    }
    return rc;
}

int cmd_investigate(int argc, char **argv)
{
    inv_args o = {0};
    cli_state_src src;
    int have_src = 0;
    cdr_profile *prof = NULL;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cdr_stmt s;
    int have_stmt = 0;
    char err[1024];
    char num[CDR_NUMBER_MAX + 1], masked[CDR_NUMBER_MAX + 1], mtext[8];
    cdr_month month = 0;
    double t0 = cli_now_s();

    memset(&s, 0, sizeof s);
    if (parse_args(argc, argv, &o, &rc) != 0)
        goto out;
    if ((rc = cli_profile_load(o.profile_path, &prof)) != CDR_OK)
        goto out;
    {
        cdr_str n;
        if (cdr_number_normalise(o.msisdn_arg, strlen(o.msisdn_arg), &n) != CDR_OK) {
            /* never echo a number on stderr in full */
            rc = cli_fail(CDR_E_USAGE, "--msisdn is not a phone number (digits, optional +)");
            goto out;
        }
        memcpy(num, n.p, n.n);
        num[n.n] = '\0';
        cdr_number_mask(num, n.n, masked);
    }
    if (cdr_month_parse(o.month_arg, strlen(o.month_arg), &month) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (want YYYY-MM)", o.month_arg);
        goto out;
    }
    cdr_month_format(month, mtext);

    const char *source;
    if (o.store_path || o.db_path) {
        source = "month state";
        int other = 0;
        if ((rc = cli_state_open(&src, o.db_path, o.store_path)) != CDR_OK)
            goto out;
        have_src = 1;
        rc = cli_state_tariff(&src, num, month, o.tariff_dir, &o.eo, &t, &other);
        if (rc != CDR_OK && rc != CDR_E_NOTFOUND)
            goto out;
        if (rc == CDR_OK) {
            if (other)
                fprintf(stderr, "cdrecon: investigate: note: rated with %s, not the tariff the "
                        "month was last rated with\n", o.tariff_dir ? o.tariff_dir : "the tariff");
            rc = cdr_stmt_from_state(t, src.st, num, month, &o.eo, &s, err, sizeof err);
            have_stmt = 1;
            if (rc != CDR_OK && rc != CDR_E_NOTFOUND) {
                cli_fail(rc, "%s", err[0] ? err : "month state");
                goto out;
            }
        }
    } else {
        source = "scan";
        if ((rc = cdr_tariff_load(o.tariff_dir, &t, err, sizeof err)) != CDR_OK) {
            cli_fail(rc, "tariff %s: %s", o.tariff_dir, err);
            goto out;
        }
        cli_tariff_warnings(t);
        cdr_reader_opts ro;
        cdr_reader_opts_init(&ro);
        ro.profile = prof;
        rc = cdr_stmt_scan_ro(t, o.files, (size_t)o.nfiles, num, month, &o.eo, &ro, NULL, &s, err,
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
    rc = write_stmt(&s, o.fmt);
    if (rc != CDR_OK) {
        cli_fail(rc, "cannot write the statement");
        goto out;
    }
    if (o.timing)
        fprintf(stderr, "cdrecon: investigate: %s %s: %zu records from the %s in %.1f ms\n",
                masked, mtext, s.n_recs, source, (cli_now_s() - t0) * 1e3);
out:
    if (have_stmt)
        cdr_stmt_free(&s);
    if (have_src)
        cli_state_close(&src);
    cdr_tariff_free(t);
    cdr_profile_free(prof);
    free(o.files);
    return rc;
}
