/*
 * cdrecon scan — read and validate CDR files: per-file counts, rejects.
 *
 *   cdrecon scan [--rejects FILE] [--quiet] [--sha256] [--threads 1|2] [--profile FILE]
 *                FILES...
 *
 * stdout: one line per file, then a totals line (with a profile, the rows
 * it skipped too: read = accepted + rejected + skipped). Rejects go as CSV
 * (file,line,offset,reason,raw) to --rejects FILE, else the first few to
 * stderr with phone numbers masked. Exit: the first file-level error code,
 * else CDR_E_REJECTS if any row was rejected, else CDR_OK.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/outcsv.h"
#include "cdrecon/reader.h"
#include "cli.h"
#include "ingest.h"
#include "opts.h"
#include "paths.h"
#include "progress.h"

#define STDERR_REJECTS 20

struct scan_ctx {
    cdr_csvw *rej;       /* rejects CSV, or NULL */
    int quiet;
    uint64_t shown;      /* rejects listed on stderr */
    uint64_t hidden;     /* rejects not listed on stderr */
    cli_progress *prog;
};

enum { O_REJECTS = 1, O_QUIET, O_SHA256, O_THREADS };
static const cli_opt scan_opts[] = {
    {"--rejects", 0, CLI_OPT_VALUE | CLI_OPT_NOEQ, "FILE",
     "write every rejected row as CSV file,line,offset,reason,raw\n"
     "(without it, the first 20 rejects go to stderr, masked)", O_REJECTS},
    {"--quiet", 'q', 0, NULL, "no progress line and no rejects on stderr", O_QUIET},
    {"--sha256", 0, 0, NULL, "print the SHA-256 of each file as stored", O_SHA256},
    {"--threads", 0, CLI_OPT_VALUE | CLI_OPT_NOEQ, "N",
     "1: read and parse on one thread; 2 (default): overlap", O_THREADS},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const scan_tables[] = {scan_opts, cli_profile_opts, NULL};
static const cli_spec scan_spec = {
    "scan",
    "cdrecon scan [--rejects FILE] [--quiet] [--sha256] [--threads 1|2] [--profile FILE] FILES...",
    "Read CDR files (plain CSV, .gz, or - for stdin), check every row, and\n"
    "print per-file counts: rows read = accepted + rejected (+ skipped, with a\n"
    "profile). The options come before the files.\n",
    scan_tables,
    "exit: 0 ok, 9 some rows rejected, or the first file's error code\n"
    "(docs/exit-codes.md).\n",
    CLI_ARGS_POS_STOPS | CLI_ARGS_DASH_OPT,
};

static int on_reject(const cdr_reject *j, void *user)
{
    struct scan_ctx *c = user;
    if (c->rej) {
        /* a failed write is sticky: reported (with the file and the OS
         * reason) when the writer is committed */
        cdr_rejects_csv_row(c->rej, j);
        return 0;
    }
    if (c->quiet || c->shown >= STDERR_REJECTS) {
        c->hidden++;
        return 0;
    }
    char m[700];
    cli_progress_clear(c->prog);
    cli_note("%s:%llu: rejected: %s", j->file, (unsigned long long)j->line,
             cli_mask_digits(j->reason, m, sizeof m));
    c->shown++;
    return 0;
}

/* The line of one file read (and its SHA-256 with --sha256); its failure
 * on stderr unless quiet. */
static void print_file(const char *path, cdr_err e, const cdr_file_stats *st, int has_prof,
                       int sha, int quiet)
{
    char sz[64] = "";
    if (st->gzip)
        snprintf(sz, sizeof sz, " (gzip %llu bytes)", (unsigned long long)st->size);
    char status[700], pe[1024];
    cli_esc(path, pe, sizeof pe);
    if (e == CDR_OK) {
        snprintf(status, sizeof status, "ok");
    } else {
        char m[600];
        snprintf(status, sizeof status, "FAILED %s: %s", cdr_errname(e),
                 cli_mask_digits(st->message, m, sizeof m));
    }
    char skipped[64] = "";
    if (has_prof) /* without a profile nothing is skipped: the line stays as it was */
        snprintf(skipped, sizeof skipped, ", %llu skipped",
                 (unsigned long long)st->rows_skipped);
    printf("%s: %llu read, %llu accepted, %llu rejected%s, %llu blank lines, %llu bytes%s: "
           "%s\n",
           pe, (unsigned long long)st->rows_read, (unsigned long long)st->rows_accepted,
           (unsigned long long)st->rows_rejected, skipped, (unsigned long long)st->blank_lines,
           (unsigned long long)st->bytes, sz, status);
    if (sha && e == CDR_OK) {
        char hex[65];
        cdr_sha256_hex(st->sha256, hex);
        printf("%s: sha256 %s\n", pe, hex);
    }
    if (e != CDR_OK && !quiet) {
        char m[600];
        cli_fail(e, "%s: %s", path, cli_mask_digits(st->message, m, sizeof m));
    }
}

/* The rejects file, which must not be one of the files read (nor the
 * profile): opened (*direct when written directly), its header written. */
static int open_rejects(const char *rejects, char **files, int nfiles, const char *profile_path,
                        struct scan_ctx *ctx, FILE **direct)
{
    cli_paths ps;
    char err[2048];
    cli_paths_init(&ps);
    cli_paths_add_inputs(&ps, files, nfiles, NULL, profile_path, NULL);
    cli_paths_add(&ps, CLI_PATH_OUTPUT, "--rejects", rejects);
    cdr_err e = cli_paths_check(&ps, err, sizeof err);
    cli_paths_free(&ps);
    if (e == CDR_OK)
        e = cli_output_file(rejects, "--rejects", &ctx->rej, direct, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    cdr_rejects_csv_header(ctx->rej);
    return CDR_OK;
}

/* Commit the rejects file (and close it when written directly). */
static int close_rejects(struct scan_ctx *ctx, FILE *direct, const char *rejects)
{
    cdr_err e = cdr_csvw_commit(ctx->rej);
    char m[700];
    snprintf(m, sizeof m, "%s", cdr_csvw_message(ctx->rej));
    cdr_csvw_free(ctx->rej);
    if (direct && fclose(direct) != 0 && e == CDR_OK) {
        e = CDR_E_IO;
        snprintf(m, sizeof m, "%s: %s", rejects, strerror(errno));
    }
    if (e != CDR_OK)
        return cli_fail(e, "cannot write rejects file: %s", m);
    return CDR_OK;
}

int cmd_scan(int argc, char **argv)
{
    const char *rejects = NULL, *profile_path = NULL;
    int quiet = 0, sha = 0, threads = 2, rc = CDR_OK, i = 0;
    cli_args args;
    cli_args_init(&args, &scan_spec, argc, argv);
    for (int id; !i && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP: return CDR_OK;
        case CLI_ARG_ERR: return CDR_E_USAGE;
        case CLI_ARG_POS: i = args.i - 1; break; /* the files: the rest */
        case O_QUIET: quiet = 1; break;
        case O_SHA256: sha = 1; break;
        case O_REJECTS: rejects = args.val; break;
        case O_THREADS:
            if (strcmp(args.val, "1") != 0 && strcmp(args.val, "2") != 0) {
                cli_err("--threads must be 1 or 2, not '%s'", args.val);
                return CDR_E_USAGE;
            }
            threads = args.val[0] - '0';
            break;
        case CLI_O_PROFILE:
            if ((rc = cli_profile_value(args.val, &profile_path)) != CDR_OK)
                return rc;
            break;
        }
    }
    int nfiles = i ? argc - i : 0;
    if (nfiles <= 0) {
        cli_err("no input files");
        cli_help(&scan_spec, stderr);
        return CDR_E_USAGE;
    }

    cdr_profile *prof = NULL;
    cdr_err perr = cli_profile_load(profile_path, &prof);
    if (perr != CDR_OK)
        return perr;

    cli_progress prog;
    cli_progress_init(&prog, quiet);
    struct scan_ctx ctx = {NULL, quiet, 0, 0, &prog};
    FILE *direct = NULL;
    if (rejects && (rc = open_rejects(rejects, argv + i, nfiles, profile_path, &ctx, &direct))) {
        cdr_profile_free(prof);
        return rc;
    }

    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.threads = threads;
    o.want_sha256 = sha;
    o.progress = cli_progress_cb;
    o.progress_user = &prog;
    o.profile = prof;

    cdr_err first_err = CDR_OK;
    uint64_t t_read = 0, t_acc = 0, t_rej = 0, t_skip = 0, t_blank = 0, t_bytes = 0;
    int failed = 0;
    for (int k = 0; k < nfiles; k++) {
        const char *path = argv[i + k];
        cdr_file_stats st;
        cdr_err e = cdr_read_file(path, (uint32_t)k, &o, NULL, on_reject, &ctx, &st);
        cli_progress_clear(&prog);
        print_file(path, e, &st, prof != NULL, sha, quiet);
        if (e != CDR_OK) {
            failed++;
            if (first_err == CDR_OK)
                first_err = e;
        }
        t_read += st.rows_read;
        t_acc += st.rows_accepted;
        t_rej += st.rows_rejected;
        t_skip += st.rows_skipped;
        t_blank += st.blank_lines;
        t_bytes += st.bytes;
    }
    char skipped[64] = "";
    if (prof)
        snprintf(skipped, sizeof skipped, ", %llu skipped", (unsigned long long)t_skip);
    printf("total: %d file%s (%d failed), %llu read, %llu accepted, %llu rejected%s, "
           "%llu blank lines, %llu bytes\n",
           nfiles, nfiles == 1 ? "" : "s", failed, (unsigned long long)t_read,
           (unsigned long long)t_acc, (unsigned long long)t_rej, skipped,
           (unsigned long long)t_blank, (unsigned long long)t_bytes);
    cdr_profile_free(prof);
    if (ctx.hidden && !ctx.rej && !quiet)
        cli_err("%llu more rejects not shown (write them all with --rejects FILE)",
                (unsigned long long)ctx.hidden);
    if (ctx.rej && (rc = close_rejects(&ctx, direct, rejects)) != CDR_OK)
        return rc;
    if (fflush(stdout) != 0)
        return cli_fail(CDR_E_IO, "cannot write standard output");
    if (first_err != CDR_OK)
        return first_err;
    return t_rej ? CDR_E_REJECTS : CDR_OK;
}
