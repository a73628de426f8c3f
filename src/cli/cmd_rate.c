/* cdrecon rate — every record with its rebuilt charge and how it was reached. */
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/outcsv.h"
#include "cdrecon/statement.h"
#include "cdrecon/tariff.h"
#include "ingest.h"
#include "paths.h"

static const char *usage_text =
    "usage: cdrecon rate --tariff DIR [options] FILES...\n"
    "Rebuild every record's charge from the tariff and write one CSV row per record:\n"
    "the rebuilt charge, the rate row used, the bundle pool and the allowance left\n"
    "after it, and its duplicate / partial status. FILES: .csv, .csv.gz or - (stdin).\n"
    "  --tariff DIR      tariff directory (required)\n"
    "  --out FILE        write the CSV to FILE (default: standard output)\n"
    "  --rejects FILE    write rejected rows as CSV to FILE\n"
    "  --month YYYY-MM   only records of this bill month\n"
    "  --msisdn N        only this subscriber\n"
    CLI_PROFILE_HELP
    CLI_ENGINE_OPTIONS_HELP;

typedef struct rate_ctx {
    cdr_csvw *out;
    cdr_csvw *rej;
    const cdr_tariff *t;
    uint64_t rejected;
    cdr_err werr;
    int tty;           /* the output is standard output on a terminal */
} rate_ctx;

static int on_reject(const cdr_reject *r, void *user)
{
    rate_ctx *c = user;
    c->rejected++;
    if (c->rej && cdr_rejects_csv_row(c->rej, r) != CDR_OK)
        return 1;
    return 0;
}

typedef struct rec_ctx {
    rate_ctx *c;
    char **file_cell; /* each as its CSV cell, rendered once */
    size_t *file_len;
} rec_ctx;

/* Where --out or --rejects names an existing device or FIFO (/dev/null,
 * /dev/stdout, a pipe), it is opened and written directly
 * (cli_output_file); a regular file is written through a temporary name
 * and renamed into place when complete. */
static FILE *direct_fp[2];

/* Runs on the rating workers: the row of one record, into the engine's writer. */
static cdr_err render_rated(const cdr_rated *r, void *w, void *user)
{
    rec_ctx *rc = user;
    uint32_t f = r->row.file_index;
    return cdr_stmt_rated_write_cell(w, r, rc->c->t, rc->file_cell[f], rc->file_len[f]);
}

/* Runs on the calling thread, bucket by bucket in order. */
static int on_text(const char *p, size_t n, uint64_t rows, void *user)
{
    rec_ctx *rc = user;
    cdr_err e;
    if (rc->c->tty) { /* a terminal: an unknown column with ESC must not drive it */
        char *b = malloc(4 * n + 1);
        if (!b) {
            rc->c->werr = CDR_E_NOMEM;
            return 1;
        }
        e = cdr_csvw_raw_rows(rc->c->out, b, cli_tty_escape(p, n, b), rows);
        free(b);
    } else {
        e = cdr_csvw_raw_rows(rc->c->out, p, n, rows);
    }
    if (e != CDR_OK) {
        rc->c->werr = e;
        return 1;
    }
    return 0;
}

static cdr_err open_out(const char *path, const char *what, cdr_csvw **w, FILE **direct)
{
    char err[1536];
    cdr_err e = cli_output_file(path, what, w, direct, err, sizeof err);
    if (e != CDR_OK)
        cli_fail(e, "%s", err);
    return e;
}

int cmd_rate(int argc, char **argv)
{
    const char *tariff_dir = NULL, *out_path = NULL, *rej_path = NULL, *profile_path = NULL, *v;
    cdr_profile *prof = NULL;
    cdr_engine_opts eo;
    cli_engine_opts_init(&eo);
    char **files = calloc((size_t)argc, sizeof *files);
    size_t *file_len = NULL;
    char **file_cell = NULL;
    int nfiles = 0;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cli_bgtariff bgt = {0};
    cdr_engine *eng = NULL;
    rate_ctx c = {0};
    cdr_file_stats *stats = NULL;
    char msisdn_buf[64];

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
        } else if ((v = cli_optval(argc, argv, &i, "--tariff"))) {
            tariff_dir = v;
        } else if ((v = cli_optval(argc, argv, &i, "--out"))) {
            out_path = v;
        } else if ((v = cli_optval(argc, argv, &i, "--rejects"))) {
            rej_path = v;
        } else if ((v = cli_optval(argc, argv, &i, "--month"))) {
            if (cdr_month_parse(v, strlen(v), &eo.month) != CDR_OK) {
                rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (want YYYY-MM)", v);
                goto out;
            }
        } else if ((v = cli_optval(argc, argv, &i, "--msisdn"))) {
            cdr_str ns;
            if (cdr_number_normalise(v, strlen(v), &ns) != CDR_OK) {
                rc = cli_fail(CDR_E_USAGE, "bad --msisdn");
                goto out;
            }
            memcpy(msisdn_buf, ns.p, ns.n);
            msisdn_buf[ns.n] = '\0';
            eo.msisdn = msisdn_buf;
        } else if (a[0] == '-' && a[1] == '-') {
            rc = cli_fail(CDR_E_USAGE, "unknown option %s", a);
            goto out;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!tariff_dir || nfiles == 0) {
        fputs(usage_text, stderr);
        rc = CDR_E_USAGE;
        goto out;
    }
    /* no output may be an input, the tariff or the other output */
    {
        cli_paths ps;
        char err[2048];
        cli_paths_init(&ps);
        for (int i = 0; i < nfiles; i++)
            cli_paths_add(&ps, CLI_PATH_INPUT, "CDR file", files[i]);
        cli_paths_add(&ps, CLI_PATH_INPUT, "--profile", profile_path);
        cli_paths_add(&ps, CLI_PATH_TARIFF, "--tariff", tariff_dir);
        cli_paths_add(&ps, CLI_PATH_OUTPUT, "--out", out_path);
        cli_paths_add(&ps, CLI_PATH_OUTPUT, "--rejects", rej_path);
        rc = cli_paths_check(&ps, err, sizeof err);
        cli_paths_free(&ps);
        if (rc != CDR_OK) {
            cli_fail(rc, "%s", err);
            goto out;
        }
    }
    /* the profile is checked before anything is read */
    if ((rc = cli_profile_load(profile_path, &prof)) != CDR_OK)
        goto out;
    /* the tariff loads on a second thread while the CDRs are read */
    cli_bgtariff_start(&bgt, tariff_dir);
    if ((rc = cdr_engine_new(NULL, &eo, &eng)) != CDR_OK)
        goto out;
    if ((rc = open_out(out_path ? out_path : "-", "--out", &c.out, &direct_fp[0])) != CDR_OK)
        goto out;
    c.tty = (!out_path || !strcmp(out_path, "-")) && isatty(STDOUT_FILENO);
    if (rej_path && (rc = open_out(rej_path, "--rejects", &c.rej, &direct_fp[1])) != CDR_OK)
        goto out;
    if (c.rej)
        cdr_rejects_csv_header(c.rej);

    stats = calloc((size_t)nfiles, sizeof *stats);
    if (!stats) {
        rc = CDR_E_NOMEM;
        goto out;
    }
    cli_ingest in = {0};
    in.engine = eng;
    cdr_reader_opts_init(&in.ro);
    in.ro.profile = prof;
    in.stats = stats;
    in.on_reject = on_reject;
    in.user = &c;
    in.tariff = &bgt;
    rc = cli_ingest_files(&in, files, nfiles);
    if (rc == CDR_E_INTERRUPTED && c.rej && cdr_csvw_status(c.rej) != CDR_OK) {
        rc = cli_fail(cdr_csvw_status(c.rej), "cannot write rejects: %s",
                      cdr_csvw_message(c.rej));
        goto out;
    }
    if (!(t = cli_bgtariff_take(&bgt))) {
        rc = bgt.rc;
        goto out;
    }
    c.t = t;
    cdr_engine_set_tariff(eng, t);
    if (rc != CDR_OK && rc != CDR_E_GZIP && rc != CDR_E_HEADER && rc != CDR_E_IO)
        goto out;
    cdr_err read_status = rc;

    cdr_stmt_rec_header(c.out);
    if (!(file_len = malloc((size_t)nfiles * sizeof *file_len)) ||
        !(file_cell = calloc((size_t)nfiles, sizeof *file_cell))) {
        rc = cli_fail(CDR_E_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        if (!(file_cell[i] = cdr_stmt_file_cell(files[i], strlen(files[i]), &file_len[i]))) {
            rc = cli_fail(CDR_E_NOMEM, "out of memory");
            goto out;
        }
    rec_ctx rcx = {&c, file_cell, file_len};
    /* rows are rendered on the rating workers and written here in order */
    cdr_engine_sink sink = {.user = &rcx, .render = render_rated, .on_text = on_text};
    cdr_engine_totals tot;
    rc = cdr_engine_finish(eng, &sink, &tot);
    if (rc == CDR_E_INTERRUPTED && c.werr) {
        /* the output could not be written: its writer says which file and why */
        rc = cli_fail(c.werr, "cannot write output: %s", cdr_csvw_message(c.out));
        goto out;
    }
    if (rc == CDR_E_INTERRUPTED && c.rej && cdr_csvw_status(c.rej) != CDR_OK) {
        rc = cli_fail(cdr_csvw_status(c.rej), "cannot write rejects: %s",
                      cdr_csvw_message(c.rej));
        goto out;
    }
    if (rc != CDR_OK) {
        cli_fail(rc, "rating failed%s%s", *cdr_engine_errmsg(eng) ? ": " : "",
                 cdr_engine_errmsg(eng));
        goto out;
    }
    if ((rc = cdr_csvw_commit(c.out)) != CDR_OK) {
        cli_fail(rc, "cannot write output: %s", cdr_csvw_message(c.out));
        goto out;
    }
    if (c.rej && (rc = cdr_csvw_commit(c.rej)) != CDR_OK) {
        cli_fail(rc, "cannot write rejects: %s", cdr_csvw_message(c.rej));
        goto out;
    }
    fprintf(stderr, "cdrecon: rate: %llu records rated, %llu duplicates, %llu unrated, "
            "%llu rejected%s\n", (unsigned long long)tot.records,
            (unsigned long long)tot.duplicates, (unsigned long long)tot.unrated,
            (unsigned long long)c.rejected, tot.spilled ? " (spilled to disk)" : "");
    rc = read_status != CDR_OK ? read_status : c.rejected ? CDR_E_REJECTS : CDR_OK;
out:
    cdr_csvw_free(c.out);
    cdr_csvw_free(c.rej);
    for (int k = 0; k < 2; k++) {
        if (direct_fp[k] && fclose(direct_fp[k]) != 0 && rc == CDR_OK)
            rc = cli_fail(CDR_E_IO, "cannot write %s: %s", k ? rej_path : out_path,
                          strerror(errno));
        direct_fp[k] = NULL;
    }
    cdr_engine_free(eng);
    cli_bgtariff_join(&bgt); /* an early exit: wait for the loader */
    cdr_tariff_free(bgt.t);
    cdr_tariff_free(t);
    cdr_profile_free(prof);
    free(stats);
    free(file_len);
    for (int i = 0; file_cell && i < nfiles; i++)
        free(file_cell[i]);
    free(file_cell);
    free(files);
    return rc;
}
