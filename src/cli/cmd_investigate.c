/* cdrecon investigate — one number's bill month as a statement, from the
 * month state kept with `cdrecon run`'s database (fast path) or by scanning
 * CDR files. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/render.h"
#include "cdrecon/tariff.h"
#include "ingest.h"

static const char *usage_text =
    "usage: cdrecon investigate --msisdn N --month YYYY-MM --db FILE [options]\n"
    "       cdrecon investigate --msisdn N --month YYYY-MM --store DIR [options]\n"
    "       cdrecon investigate --msisdn N --month YYYY-MM --cluster DIR [options]\n"
    "       cdrecon investigate --msisdn N --month YYYY-MM --tariff DIR [options] FILES...\n"
    "One number's bill month as a statement: every record with its billed and\n"
    "rebuilt charge, the bundle running down, every flag, the per-pool summary and\n"
    "the verdict (overcharge, double refund, approval tier, refund-first or\n"
    "verify-first and its deadline).\n"
    "  --msisdn N         the subscriber (+86/0086/86 prefixes are removed)\n"
    "  --month YYYY-MM    the bill month\n"
    "  --db FILE          the month to date from the month state of `cdrecon run`'s\n"
    "                     database (every file ingested so far; in seconds or less)\n"
    "  --store DIR        the same from the month state directory itself\n"
    "  --cluster DIR      the same from the shard of a sharded directory that holds\n"
    "                     the number (docs/cluster.md)\n"
    "  --tariff DIR       with --db/--store: rate with this tariff instead of the one the\n"
    "                     month was last rated with; without: re-rate the CDR FILES\n"
    "  --format F         text (default), csv or json\n"
    "  --tolerance YUAN   scan path: as given to run (default 0)\n"
    "  --max-duration S   scan path: as given to run (default 10800)\n"
    "  --mem SIZE         scan path: memory before spilling (default 1G)\n"
    "  --tmp DIR          scan path: spill directory\n"
    "  --threads N        scan path: rating threads (default 2)\n"
    "  --profile FILE     scan path: read the FILES through an input profile\n"
    "                     (docs/profiles.md)\n"
    "  --timing           print the time taken on stderr\n"
    "exit status: 0 ok; 11 the number has no record in that month; 1 usage;\n"
    "13 damaged store; other codes: docs/exit-codes.md\n";

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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            free(files);
            return CDR_OK;
        } else if (cli_engine_option(argc, argv, &i, &eo, &rc)) {
            if (rc != CDR_OK)
                goto out;
        } else if (cli_profile_option(argc, argv, &i, &profile_path, &rc)) {
            if (rc != CDR_OK)
                goto out;
        } else if ((v = cli_optval(argc, argv, &i, "--msisdn"))) {
            msisdn_arg = v;
        } else if ((v = cli_optval(argc, argv, &i, "--month"))) {
            month_arg = v;
        } else if ((v = cli_optval(argc, argv, &i, "--store"))) {
            store_path = v;
        } else if ((v = cli_optval(argc, argv, &i, "--db"))) {
            db_path = v;
        } else if ((v = cli_optval(argc, argv, &i, "--cluster"))) {
            cluster_dir = v;
        } else if ((v = cli_optval(argc, argv, &i, "--tariff"))) {
            tariff_dir = v;
        } else if ((v = cli_optval(argc, argv, &i, "--format"))) {
            if (cdr_render_format_parse(v, &fmt) != CDR_OK) {
                rc = cli_fail(CDR_E_USAGE, "bad --format '%s' (text, csv or json)", v);
                goto out;
            }
        } else if (!strcmp(a, "--timing")) {
            timing = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            rc = cli_fail(CDR_E_USAGE, "unknown option %s", a);
            goto out;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (cluster_dir) {
        if (db_path || store_path) {
            rc = cli_fail(CDR_E_USAGE, "give --cluster DIR or --db FILE (or --store DIR)");
            goto out;
        }
        if ((rc = cli_cluster_db(cluster_dir, msisdn_arg, cluster_db, sizeof cluster_db)) !=
            CDR_OK)
            goto out;
        db_path = cluster_db;
    }
    if (!msisdn_arg || !month_arg || (!store_path && !tariff_dir && !db_path)) {
        fputs(usage_text, stderr);
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
