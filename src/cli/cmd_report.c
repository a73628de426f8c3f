/* cdrecon report — the month at a glance: one self-contained HTML page of a
 * bill month from the results database and its run history
 * (include/cdrecon/report.h, docs/report.md). Also used by `run --report`. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdrecon/report.h"
#include "ingest.h"
#include "opts.h"
#include "paths.h"

#define REPORT_NAME "report.html"

enum { O_OUT = 1, O_AS_OF };
static const cli_opt report_options[] = {
    {"--db", 0, CLI_OPT_VALUE, "FILE", "the database written by `cdrecon run` (required)",
     CLI_O_DB},
    {"--out", 0, CLI_OPT_VALUE, "DIR", "output directory, created if missing (required)", O_OUT},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM",
     "the bill month (default: the latest month in the database)", CLI_O_MONTH},
    {"--as-of", 0, CLI_OPT_VALUE, "YYYY-MM-DD",
     "the day refund deadlines are compared with (default: today, UTC)", O_AS_OF},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const report_tables[] = {report_options, cli_tariff_opts, cli_quiet_opts,
                                               NULL};
static const cli_spec report_spec = {
    "report",
    "cdrecon report --db FILE --out DIR [--month YYYY-MM] [options]",
    "Write DIR/report.html: one printable page (no external resources, no script)\n"
    "of a bill month from the database and its run history: totals with the change\n"
    "since the previous run, findings and refunds by category and night by night,\n"
    "top plans and tariff rate rows, services, when wrong_band findings happen,\n"
    "candidates by approval tier and policy with their deadlines, special customers,\n"
    "the 20 largest candidates (numbers masked), rejects, files and late records;\n"
    "each figure with the SQL query that gives its numbers. The database is only read.\n"
    "The tariff (--tariff) gives the plan and rate-row figures; by default the one\n"
    "recorded with the month's latest run, if unchanged.\n",
    report_tables,
    "exit status: 0 ok; 11 the database holds no record of the month; 1 usage;\n"
    "other codes: docs/exit-codes.md\n",
    CLI_ARGS_NO_POS,
};

static void utc_now(char *day, size_t dn, char *stamp, size_t sn)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, dn, "%Y-%m-%d", &tm);
    strftime(stamp, sn, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cli_report_write(cdr_db *db, cli_outdir *od, const cdr_month *months, size_t n,
                     const char *db_path, const char *tariff_dir, const cdr_tariff *t,
                     const char *as_of, int quiet)
{
    char day[16], stamp[32], err[1024], tabs[PATH_MAX];
    cdr_report r;
    cdr_csvw *w = NULL;
    utc_now(day, sizeof day, stamp, sizeof stamp);
    cdr_report_opts ro = {.months = months,
                          .n_months = n,
                          .as_of = as_of ? as_of : day,
                          .tariff = t,
                          .db_name = db_path,
                          .created = stamp};
    if (tariff_dir)
        ro.tariff_dir = realpath(tariff_dir, tabs) ? tabs : tariff_dir;
    /* ("cdrecon: run: report: ...", but "cdrecon: report: ...") */
    const char *what = strcmp(cli_cmd, "report") ? "report: " : "";
    cdr_err rc = cdr_report_build(db, &ro, &r, err, sizeof err);
    if (rc != CDR_OK)
        return cli_fail(rc, "%s%s", what, err);
    if (r.note[0] && !quiet)
        cli_note("%s", r.note);
    /* through a temporary file renamed at commit, relative to the output
     * directory's descriptor: never through a link planted in its place */
    rc = cli_outdir_csvw(od, REPORT_NAME, 0, &w, err, sizeof err);
    if (rc == CDR_OK)
        rc = cdr_csvw_raw(w, r.html, r.html_len);
    if (rc == CDR_OK)
        rc = cdr_csvw_commit(w);
    if (rc != CDR_OK)
        cli_fail(rc, "cannot write the report: %s", w ? cdr_csvw_message(w) : err);
    else if (!quiet) {
        char buf[4 * PATH_MAX + 64];
        printf("report      %s/%s\n", cli_esc(od->path, buf, sizeof buf), REPORT_NAME);
    }
    cdr_csvw_free(w);
    cdr_report_free(&r);
    return rc;
}

typedef struct report_opts {
    const char *db_path, *out_dir, *tariff_dir, *as_of;
    cdr_month month;
    int has_month, quiet;
} report_opts;

static int parse_args(int argc, char **argv, report_opts *o, int *rc)
{
    cli_args args;
    cdr_time t;
    memset(o, 0, sizeof *o);
    *rc = CDR_OK;
    cli_args_init(&args, &report_spec, argc, argv);
    for (int id; *rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        const char *v = args.val;
        switch (id) {
        case CLI_ARG_HELP: return -1;
        case CLI_ARG_ERR: *rc = CDR_E_USAGE; break;
        case CLI_O_DB: o->db_path = v; break;
        case O_OUT: o->out_dir = v; break;
        case CLI_O_TARIFF: o->tariff_dir = v; break;
        case CLI_O_MONTH:
            *rc = cli_month_value(v, &o->month);
            o->has_month = 1;
            break;
        case O_AS_OF:
            if (strlen(v) != 10 || cdr_date_parse(v, 10, &t) != CDR_OK)
                *rc = cli_fail(CDR_E_USAGE, "bad --as-of '%s' (want YYYY-MM-DD)", v);
            o->as_of = v;
            break;
        case CLI_O_QUIET: o->quiet = 1; break;
        }
    }
    if (*rc != CDR_OK)
        return -1;
    if (!o->db_path || !o->out_dir) {
        cli_help(&report_spec, stderr);
        *rc = CDR_E_USAGE;
        return -1;
    }
    return 0;
}

int cmd_report(int argc, char **argv)
{
    report_opts o;
    int rc;
    char err[2048];
    cdr_db *db = NULL;
    cli_outdir od = {-1, NULL};
    if (parse_args(argc, argv, &o, &rc) != 0)
        return rc;
    /* the page may go anywhere but over the database or into the tariff */
    cli_paths ps;
    cli_paths_init(&ps);
    cli_paths_add(&ps, CLI_PATH_DB, "--db", o.db_path);
    if (o.tariff_dir)
        cli_paths_add(&ps, CLI_PATH_TARIFF, "--tariff", o.tariff_dir);
    cli_paths_add(&ps, CLI_PATH_OUTDIR, "--out", o.out_dir);
    cli_paths_add_in(&ps, CLI_PATH_OUTPUT, "output", o.out_dir, REPORT_NAME);
    rc = cli_paths_check(&ps, err, sizeof err);
    cli_paths_free(&ps);
    if (rc != CDR_OK)
        return cli_fail(rc, "%s", err);
    if ((rc = cdr_db_open_readonly(o.db_path, &db, err, sizeof err)) != CDR_OK)
        return cli_fail(rc, "cannot open database %s: %s", o.db_path, err);
    if ((rc = cli_outdir_open(&od, o.out_dir, CDR_DIR_CREATE, err, sizeof err)) != CDR_OK) {
        cli_fail(rc, "output directory: %s", err);
        goto out;
    }
    rc = cli_report_write(db, &od, o.has_month ? &o.month : NULL, o.has_month ? 1 : 0,
                          o.db_path, o.tariff_dir, NULL, o.as_of, o.quiet);
out:
    cli_outdir_close(&od);
    cdr_db_close(db);
    return rc;
}
