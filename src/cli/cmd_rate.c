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
#include "opts.h"
#include "paths.h"

enum { O_OUT = 1, O_REJECTS, O_MSISDN };
static const cli_opt rate_opts[] = {
    {"--out", 0, CLI_OPT_VALUE, "FILE", "write the CSV to FILE (default: standard output)", O_OUT},
    {"--rejects", 0, CLI_OPT_VALUE, "FILE", "write rejected rows as CSV to FILE", O_REJECTS},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM", "only records of this bill month", CLI_O_MONTH},
    {"--msisdn", 0, CLI_OPT_VALUE, "N", "only this subscriber", O_MSISDN},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const rate_tables[] = {cli_tariff_opts, rate_opts, cli_profile_opts,
                                             cli_engine_opts, NULL};
static const cli_spec rate_spec = {
    "rate",
    "cdrecon rate --tariff DIR [options] FILES...",
    "Rebuild every record's charge from the tariff DIR (required) and write one CSV\n"
    "row per record: the rebuilt charge, the rate row used, the bundle pool and the\n"
    "allowance left after it, and its duplicate / partial status. FILES: .csv,\n"
    ".csv.gz or - (stdin).\n",
    rate_tables,
    "",
    0,
};

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

typedef struct rate_args {
    const char *tariff_dir, *out_path, *rej_path, *profile_path;
    cdr_engine_opts eo;
    char msisdn[64];
    char **files;
    int nfiles;
} rate_args;

/* The arguments into o (o->files allocated). 0, or -1 when the command ends
 * here with *rc (--help: CDR_OK; a usage error, reported). */
static int parse_args(int argc, char **argv, rate_args *o, int *rc)
{
    cli_args args;
    cdr_str ns;
    cli_engine_opts_init(&o->eo);
    if (!(o->files = calloc((size_t)argc, sizeof *o->files))) {
        *rc = CDR_E_NOMEM;
        return -1;
    }
    *rc = CDR_OK;
    cli_args_init(&args, &rate_spec, argc, argv);
    for (int id; *rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        const char *v = args.val;
        switch (id) {
        case CLI_ARG_HELP: return -1;
        case CLI_ARG_ERR: *rc = CDR_E_USAGE; break;
        case CLI_ARG_POS: o->files[o->nfiles++] = argv[args.i - 1]; break;
        case CLI_O_TARIFF: o->tariff_dir = v; break;
        case CLI_O_PROFILE: *rc = cli_profile_value(v, &o->profile_path); break;
        case CLI_O_MONTH: *rc = cli_month_value(v, &o->eo.month); break;
        case O_OUT: o->out_path = v; break;
        case O_REJECTS: o->rej_path = v; break;
        case O_MSISDN:
            if (cdr_number_normalise(v, strlen(v), &ns) != CDR_OK) {
                *rc = cli_fail(CDR_E_USAGE, "bad --msisdn");
                break;
            }
            memcpy(o->msisdn, ns.p, ns.n);
            o->msisdn[ns.n] = '\0';
            o->eo.msisdn = o->msisdn;
            break;
        default: *rc = cli_engine_value(id, v, &o->eo); break;
        }
    }
    if (*rc != CDR_OK)
        return -1;
    if (!o->tariff_dir || o->nfiles == 0) {
        cli_help(&rate_spec, stderr);
        *rc = CDR_E_USAGE;
        return -1;
    }
    /* no output may be an input, the tariff or the other output */
    cli_paths ps;
    char err[2048];
    cli_paths_init(&ps);
    cli_paths_add_inputs(&ps, o->files, o->nfiles, NULL, o->profile_path, o->tariff_dir);
    cli_paths_add(&ps, CLI_PATH_OUTPUT, "--out", o->out_path);
    cli_paths_add(&ps, CLI_PATH_OUTPUT, "--rejects", o->rej_path);
    *rc = cli_paths_check(&ps, err, sizeof err);
    cli_paths_free(&ps);
    if (*rc != CDR_OK) {
        cli_fail(*rc, "%s", err);
        return -1;
    }
    return 0;
}

/* Rate what was read and write every record's row to c->out, in order;
 * commit the outputs and print the summary on stderr. */
static cdr_err write_rated(rate_ctx *c, cdr_engine *eng, const rate_args *o)
{
    cdr_err rc;
    size_t *file_len = NULL;
    char **file_cell = NULL;
    cdr_stmt_rec_header(c->out);
    if (!(file_len = malloc((size_t)o->nfiles * sizeof *file_len)) ||
        !(file_cell = calloc((size_t)o->nfiles, sizeof *file_cell))) {
        rc = cli_fail(CDR_E_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < o->nfiles; i++) {
        const char *f = o->files[i];
        if (!(file_cell[i] = cdr_stmt_file_cell(f, strlen(f), &file_len[i]))) {
            rc = cli_fail(CDR_E_NOMEM, "out of memory");
            goto done;
        }
    }
    rec_ctx rcx = {c, file_cell, file_len};
    /* rows are rendered on the rating workers and written here in order */
    cdr_engine_sink sink = {.user = &rcx, .render = render_rated, .on_text = on_text};
    cdr_engine_totals tot;
    rc = cdr_engine_finish(eng, &sink, &tot);
    if (rc == CDR_E_INTERRUPTED && c->werr) {
        /* the output could not be written: its writer says which file and why */
        rc = cli_fail(c->werr, "cannot write output: %s", cdr_csvw_message(c->out));
        goto done;
    }
    if (rc == CDR_E_INTERRUPTED && c->rej && cdr_csvw_status(c->rej) != CDR_OK) {
        rc = cli_fail(cdr_csvw_status(c->rej), "cannot write rejects: %s",
                      cdr_csvw_message(c->rej));
        goto done;
    }
    if (rc != CDR_OK) {
        cli_fail(rc, "rating failed%s%s", *cdr_engine_errmsg(eng) ? ": " : "",
                 cdr_engine_errmsg(eng));
        goto done;
    }
    if ((rc = cdr_csvw_commit(c->out)) != CDR_OK) {
        cli_fail(rc, "cannot write output: %s", cdr_csvw_message(c->out));
        goto done;
    }
    if (c->rej && (rc = cdr_csvw_commit(c->rej)) != CDR_OK) {
        cli_fail(rc, "cannot write rejects: %s", cdr_csvw_message(c->rej));
        goto done;
    }
    fprintf(stderr, "cdrecon: rate: %llu records rated, %llu duplicates, %llu unrated, "
            "%llu rejected%s\n", (unsigned long long)tot.records,
            (unsigned long long)tot.duplicates, (unsigned long long)tot.unrated,
            (unsigned long long)c->rejected, tot.spilled ? " (spilled to disk)" : "");
done:
    free(file_len);
    for (int i = 0; file_cell && i < o->nfiles; i++)
        free(file_cell[i]);
    free(file_cell);
    return rc;
}

int cmd_rate(int argc, char **argv)
{
    rate_args o = {0};
    cdr_profile *prof = NULL;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cli_bgtariff bgt = {0};
    cdr_engine *eng = NULL;
    rate_ctx c = {0};
    cdr_file_stats *stats = NULL;

    if (parse_args(argc, argv, &o, &rc) != 0)
        goto out;
    /* the profile is checked before anything is read */
    if ((rc = cli_profile_load(o.profile_path, &prof)) != CDR_OK)
        goto out;
    /* the tariff loads on a second thread while the CDRs are read */
    cli_bgtariff_start(&bgt, o.tariff_dir);
    if ((rc = cdr_engine_new(NULL, &o.eo, &eng)) != CDR_OK)
        goto out;
    if ((rc = open_out(o.out_path ? o.out_path : "-", "--out", &c.out, &direct_fp[0])) != CDR_OK)
        goto out;
    c.tty = (!o.out_path || !strcmp(o.out_path, "-")) && isatty(STDOUT_FILENO);
    if (o.rej_path && (rc = open_out(o.rej_path, "--rejects", &c.rej, &direct_fp[1])) != CDR_OK)
        goto out;
    if (c.rej)
        cdr_rejects_csv_header(c.rej);

    stats = calloc((size_t)o.nfiles, sizeof *stats);
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
    rc = cli_ingest_files(&in, o.files, o.nfiles);
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

    if ((rc = write_rated(&c, eng, &o)) != CDR_OK)
        goto out;
    rc = read_status != CDR_OK ? read_status : c.rejected ? CDR_E_REJECTS : CDR_OK;
out:
    cdr_csvw_free(c.out);
    cdr_csvw_free(c.rej);
    for (int k = 0; k < 2; k++) {
        if (direct_fp[k] && fclose(direct_fp[k]) != 0 && rc == CDR_OK)
            rc = cli_fail(CDR_E_IO, "cannot write %s: %s", k ? o.rej_path : o.out_path,
                          strerror(errno));
        direct_fp[k] = NULL;
    }
    cdr_engine_free(eng);
    cli_bgtariff_join(&bgt); /* an early exit: wait for the loader */
    cdr_tariff_free(bgt.t);
    cdr_tariff_free(t);
    cdr_profile_free(prof);
    free(stats);
    free(o.files);
    return rc;
}
