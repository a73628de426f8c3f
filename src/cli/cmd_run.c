/* cdrecon run — the nightly reconciliation job: a month over many runs
 * (CONTRACT.md "A month over many runs", docs/state.md, docs/database.md).
 *
 * Steps: open the database and its month state; skip files already
 * ingested; read the new ones into the engine; continue every subscriber-
 * month they touch from the state (re-rating it whole when it must);
 * refuse files that are mostly copies of records ingested before; write the
 * new versions of findings and candidates, the state's new files, and the
 * current state of the months touched as CSV; commit. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdrecon/cluster.h"
#include "cdrecon/db.h"
#include "cdrecon/filehash.h"
#include "cdrecon/outcsv.h"
#include "cdrecon/state.h"
#include "cdrecon/tariff.h"
#include "cdrecon/version.h"
#include "ingest.h"
#include "opts.h"
#include "outputs.h"
#include "paths.h"

enum { O_DB = 1, O_OUT, O_STORE, O_RERATE, O_REDELIVERY, O_OPERATOR, O_CLUSTER, O_SHARD,
       O_REPORT, O_NO_STORE };
static const cli_opt run_options[] = {
    {"--db", 0, CLI_OPT_VALUE, "FILE", "SQLite database, created if missing (required)", O_DB},
    {"--out", 0, CLI_OPT_VALUE, "DIR", "output directory, created if missing (required)", O_OUT},
    {"--store", 0, CLI_OPT_VALUE, "DIR",
     "the month state (default FILE.state beside the database;\n"
     "recorded in the database: later runs must give the same)", O_STORE},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM",
     "report only this bill month (every record is still ingested)", CLI_O_MONTH},
    {"--rerate", 0, 0, NULL,
     "no files: re-rate every stored subscriber-month (of --month)\n"
     "with the tariff given, and write the changes", O_RERATE},
    {"--accept-redelivery", 0, 0, NULL,
     "ingest files that look like re-deliveries (mostly copies\n"
     "of records already ingested) instead of refusing them", O_REDELIVERY},
    {"--operator", 0, CLI_OPT_VALUE, "NAME",
     "operator name for notification texts (recorded with the run)", O_OPERATOR},
    {"--cluster", 0, CLI_OPT_VALUE, "DIR",
     "with --shard K: the rate stage of a sharded night: consume what\n"
     "`cdrecon split` routed to shard K of DIR, with its database\n"
     "DIR/shard-K/cdrecon.db and outputs in DIR/shard-K/out; the\n"
     "tariff defaults to the one the shard last used. Exit 0 when\n"
     "nothing was new (docs/cluster.md)", O_CLUSTER},
    {"--shard", 0, CLI_OPT_VALUE, "K", "the shard of --cluster DIR to rate (0 .. P-1)", O_SHARD},
    {"--report", 0, 0, NULL,
     "after the commit, write DIR/report.html, the month report of\n"
     "the months reported (cdrecon report), and print its path", O_REPORT},
    /* gone: refused with the reason */
    {"--no-store", 0, 0, NULL, "gone: the month state is always kept (docs/state.md)",
     O_NO_STORE},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const run_tables[] = {cli_tariff_opts, run_options, cli_profile_opts,
                                            cli_engine_opts, cli_quiet_opts, NULL};
static const cli_spec run_spec = {
    "run",
    "cdrecon run --tariff DIR --db FILE --out DIR [options] FILES...\n"
    "cdrecon run --tariff DIR --db FILE --out DIR --rerate [--month YYYY-MM]\n"
    "cdrecon run --cluster DIR --shard K [--tariff DIR] [options]",
    "Add the FILES to the month state kept with the database, re-rate every\n"
    "subscriber-month they touch, and write the current findings, double-refund\n"
    "candidates and unrated records of the months touched, this run's changes to\n"
    "candidates (changes.csv) and its rejects, into the database and as CSV in DIR.\n"
    "A file already ingested (same SHA-256 of its bytes or of its content) is skipped.\n"
    "--tariff, --db and --out are required, except with --cluster. The profile of\n"
    "--profile is recorded with the run and its files; a sharded night gives it to\n"
    "`cdrecon split`, which reads the files.\n",
    run_tables,
    "exit status: 0 ok; 8 every file was already ingested; 9 finished with rejected rows;\n"
    "16 a file was refused as a re-delivery; 2/3/4 a file failed as a whole (the others\n"
    "were ingested); 17 the profile is refused; other codes: docs/exit-codes.md\n",
    0,
};

/* A file is a probable re-delivery when more than half of its accepted
 * records repeat the (msisdn, record_id) of records ingested before, and at
 * least this many do (docs/state.md "Re-delivered files"). */
#define REDELIVERY_MIN_COPIES 2

typedef struct run_opts {
    const char *tariff_dir, *db_path, *out_dir, *store_dir, *operator_name;
    const char *profile_path;  /* --profile FILE */
    cdr_profile *prof;         /* loaded, or NULL */
    char prof_hex[65];         /* its SHA-256 */
    char **piece_profile;      /* cluster: the profile split read files[i] with, or NULL */
    char (*piece_profile_hex)[65];
    int quiet, rerate, accept_redelivery;
    const char *cluster;       /* --cluster DIR (with --shard) */
    long shard;                /* -1 unless --shard */
    char **pieces;             /* cluster: the piece read for files[i] */
    char (*content_hex)[65];   /* cluster: the content SHA-256 of files[i] */
    char *cl_db, *cl_out, *cl_tariff; /* cluster: allocated paths */
    int report;                /* --report: DIR/report.html after the commit */
    cdr_month month;           /* -1: every month touched */
    cdr_engine_opts eo;
    char **files;
    int nfiles;
} run_opts;


typedef struct run_ctx {
    run_opts *o;
    cdr_db *db;
    cdr_csvw *rejects;
    char **files;
    int64_t *file_ids;
    uint8_t (*pre_sha)[32];
    int *pre_hashed, *skip, *hash_as_read, *refused;
    int64_t *known_run;
    cdr_file_stats *stats;
    uint64_t rejected;
    /* the sink's view of the subscriber-month being drained */
    cdr_submonth cur;
    uint64_t findings, unrated, candidates;
    cdr_err err;
    cli_outputs out;      /* the outputs, and the months reported summed as written */
    cdr_oc_delta *delta;  /* what the rating changed, for the outputs cache */
    cdr_csvw *dmem;       /* a row of it rendered */
    int outputs_from_db;  /* the outputs cache could not be used */
} run_ctx;

/* ---- reading ---- */

/* A sink callback's answer: go on (0), or stop (1) with e kept for the run
 * to report. */
static int stop_on(run_ctx *c, cdr_err e)
{
    if (e == CDR_OK)
        return 0;
    c->err = e;
    return 1;
}

static int on_reject(const cdr_reject *r, void *user)
{
    run_ctx *c = user;
    c->rejected++;
    cdr_err e = cdr_db_add_reject(c->db, r);
    if (e == CDR_OK)
        e = cdr_rejects_csv_row(c->rejects, r);
    return stop_on(c, e);
}

static cdr_err on_file_start(uint32_t idx, const char *name, void *user)
{
    run_ctx *c = user;
    run_opts *o = c->o;
    cdr_err e = cdr_db_file_start(c->db, idx, name, &c->file_ids[idx]);
    /* the profile the file is read with: this run's, or for a piece the one
     * split read the operator's file with */
    if (e == CDR_OK && o->cluster && o->piece_profile[idx])
        e = cdr_db_file_profile(c->db, c->file_ids[idx], o->piece_profile[idx],
                                o->piece_profile_hex[idx]);
    else if (e == CDR_OK && o->prof)
        e = cdr_db_file_profile(c->db, c->file_ids[idx], o->profile_path, o->prof_hex);
    return e;
}

static int hex_to_sha(const char *hex, uint8_t out[32]);

static cdr_err on_file_done(uint32_t idx, const char *name, cdr_file_stats *st, void *user)
{
    run_ctx *c = user;
    (void)name;
    if (c->err)
        return c->err;
    if (c->o->cluster && st->status == CDR_OK) {
        st->has_content_sha256 = hex_to_sha(c->o->content_hex[idx], st->content_sha256) == 0;
    }
    if (c->pre_hashed[idx]) {
        memcpy(st->sha256, c->pre_sha[idx], 32);
        if (!st->gzip && !c->o->cluster) {
            memcpy(st->content_sha256, c->pre_sha[idx], 32);
            st->has_content_sha256 = 1;
        }
    }
    if (st->status == CDR_OK) {
        /* hashed as it was read (or its content, for gzip): a copy of a file
         * ingested before, or of one of this run, is dropped */
        int64_t known = 0;
        cdr_err e = cdr_db_file_known(c->db, st->sha256, &known);
        if (e == CDR_OK && !known && st->has_content_sha256)
            e = cdr_db_file_known(c->db, st->content_sha256, &known);
        if (e != CDR_OK)
            return e;
        if (known) {
            c->skip[idx] = 1;
            c->known_run[idx] = known;
            return cdr_db_file_drop(c->db, c->file_ids[idx]);
        }
    }
    return cdr_db_file_finish(c->db, c->file_ids[idx], st);
}

/* ---- the engine's sink (on the draining thread) ---- */

static int on_submonth(const cdr_submonth *sm, void *user)
{
    run_ctx *c = user;
    cdr_err e = CDR_OK;
    if (!sm->end) {
        c->cur = *sm;
        if (sm->mode == CDR_SM_FULL)
            e = cdr_db_supersede_records(c->db, sm->msisdn, sm->msisdn_hash, sm->month);
        else if (sm->mode == CDR_SM_REWIND)
            e = cdr_db_supersede_records_from(c->db, sm->msisdn, sm->msisdn_hash, sm->month,
                                              sm->from_seq);
        if (e == CDR_OK)
            e = cdr_oc_delta_begin(c->delta, sm->msisdn_hash, sm->msisdn, sm->month,
                                   sm->mode == CDR_SM_FULL     ? 0
                                   : sm->mode == CDR_SM_REWIND ? sm->from_seq
                                                               : UINT64_MAX);
    } else {
        const char *status = NULL;
        cdr_money prev = sm->had_candidate ? sm->prev_refund : 0;
        cdr_money now = sm->has_candidate ? sm->refund : 0;
        if (sm->candidate_withdrawn) {
            e = cdr_db_supersede_candidate(c->db, sm->msisdn, sm->msisdn_hash, sm->month);
            status = "withdrawn";
        } else if (sm->candidate_changed) {
            status = !sm->had_candidate ? "new"
                     : now > prev       ? "increased"
                     : now < prev       ? "decreased"
                                        : NULL; /* other fields changed: a new version only */
        }
        if (e == CDR_OK && status)
            e = cdr_db_add_change(c->db, sm->msisdn, sm->msisdn_hash, sm->month, prev, now,
                                  status);
        if (e == CDR_OK)
            e = cdr_oc_delta_end(c->delta, sm->candidate_withdrawn);
    }
    return stop_on(c, e);
}

/* The row rendered in c->dmem into the delta. */
static cdr_err to_delta(run_ctx *c, int section, uint64_t seq, const int64_t num[CDR_OC_NUMS])
{
    size_t len;
    const char *text = cdr_csvw_memory(c->dmem, &len);
    cdr_err e = cdr_csvw_status(c->dmem);
    if (e == CDR_OK)
        e = cdr_oc_delta_row(c->delta, section, seq, num, text, len);
    cdr_csvw_memory_reset(c->dmem);
    return e;
}

static int on_record(const cdr_rated *r, void *user)
{
    run_ctx *c = user;
    if (r->status != CDR_RS_UNRATED)
        return 0;
    c->unrated++;
    cdr_db_unrated u = {r->file_db_id,
                        r->file_name,
                        r->row.line,
                        r->row.offset,
                        r->row.record_id,
                        r->row.msisdn,
                        r->month,
                        r->row.service,
                        r->row.billed,
                        r->unrated,
                        r->msisdn_hash,
                        r->seq};
    cdr_err e = cdr_db_add_unrated(c->db, &u);
    if (e == CDR_OK && (e = cli_unrated_csv_row(c->dmem, &u)) == CDR_OK)
        e = to_delta(c, CDR_OC_UNRATED, r->seq, (const int64_t[CDR_OC_NUMS]){0});
    return stop_on(c, e);
}

static int on_finding(const cdr_finding *f, void *user)
{
    run_ctx *c = user;
    c->findings++;
    cdr_err e = cdr_db_add_finding(c->db, f);
    if (e == CDR_OK && (e = cdr_findings_csv_row(c->dmem, f)) == CDR_OK)
        e = to_delta(c, CDR_OC_FINDINGS, f->seq,
                     (const int64_t[CDR_OC_NUMS]){f->category, f->difference});
    return stop_on(c, e);
}

static int on_candidate(const cdr_candidate *cd, void *user)
{
    run_ctx *c = user;
    cdr_err e = CDR_OK;
    c->candidates++;
    if (c->cur.had_candidate)
        e = cdr_db_supersede_candidate(c->db, cd->msisdn, cd->msisdn_hash, cd->month);
    if (e == CDR_OK)
        e = cdr_db_add_candidate(c->db, cd);
    if (e == CDR_OK && (e = cdr_candidates_csv_row(c->dmem, cd)) == CDR_OK)
        e = to_delta(c, CDR_OC_CANDIDATES, 0,
                     (const int64_t[CDR_OC_NUMS]){cd->policy, cd->special, cd->tier,
                                                  cd->overcharge, cd->refund});
    return stop_on(c, e);
}

/* ---- outputs ---- */

/* (the outputs are written by src/cli/outputs.c, shared with `cluster report`) */

/* ---- options ---- */

static int parse_args(int argc, char **argv, run_opts *o, int *rc)
{
    memset(o, 0, sizeof *o);
    o->month = -1;
    o->shard = -1;
    cli_engine_opts_init(&o->eo);
    o->files = calloc((size_t)argc + 1, sizeof *o->files);
    if (!o->files) {
        *rc = CDR_E_NOMEM;
        return -1;
    }
    *rc = CDR_OK;
    cli_args args;
    cli_args_init(&args, &run_spec, argc, argv);
    for (int id; *rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        const char *v = args.val;
        char *end;
        switch (id) {
        case CLI_ARG_HELP: return -1;
        case CLI_ARG_ERR: *rc = CDR_E_USAGE; break;
        case CLI_ARG_POS: o->files[o->nfiles++] = argv[args.i - 1]; break;
        case CLI_O_TARIFF: o->tariff_dir = v; break;
        case CLI_O_PROFILE: *rc = cli_profile_value(v, &o->profile_path); break;
        case CLI_O_MONTH: *rc = cli_month_value(v, &o->month); break;
        case CLI_O_QUIET: o->quiet = 1; break;
        case O_DB: o->db_path = v; break;
        case O_OUT: o->out_dir = v; break;
        case O_OPERATOR: o->operator_name = v; break;
        case O_STORE: o->store_dir = v; break;
        case O_CLUSTER: o->cluster = v; break;
        case O_SHARD:
            errno = 0;
            o->shard = strtol(v, &end, 10);
            if (errno || end == v || *end || o->shard < 0 ||
                o->shard >= (long)CDR_CLUSTER_MAX_PARTS)
                *rc = cli_fail(CDR_E_USAGE, "bad --shard '%s' (want 0 .. P-1)", v);
            break;
        case O_RERATE: o->rerate = 1; break;
        case O_REDELIVERY: o->accept_redelivery = 1; break;
        case O_REPORT: o->report = 1; break;
        case O_NO_STORE:
            *rc = cli_fail(CDR_E_USAGE, "--no-store is gone: the month state is what makes a "
                           "month over many nights right (docs/state.md)");
            break;
        default: *rc = cli_engine_value(id, v, &o->eo); break;
        }
    }
    if (*rc != CDR_OK)
        return -1;
    if (o->cluster || o->shard >= 0) {
        if (!o->cluster || o->shard < 0 || o->db_path || o->out_dir || o->store_dir ||
            o->nfiles) {
            *rc = cli_fail(CDR_E_USAGE, "--cluster DIR and --shard K go together, without "
                           "--db, --out, --store or files (the shard's are used)");
            return -1;
        }
        if (o->profile_path) {
            *rc = cli_fail(CDR_E_USAGE, "--profile goes to `cdrecon split`, which reads the "
                           "operator's files: a shard's pieces hold records already read "
                           "through it");
            return -1;
        }
        return 0; /* completed by cluster_setup */
    }
    if (!o->tariff_dir || !o->db_path || !o->out_dir || (o->nfiles == 0 && !o->rerate)) {
        cli_help(&run_spec, stderr);
        *rc = CDR_E_USAGE;
        return -1;
    }
    if (o->rerate && o->nfiles) {
        *rc = cli_fail(CDR_E_USAGE, "--rerate takes no files: run them first, then re-rate");
        return -1;
    }
    if (o->rerate && o->profile_path) {
        *rc = cli_fail(CDR_E_USAGE, "--rerate reads no files, so no profile: the stored "
                       "records were read through theirs");
        return -1;
    }
    for (int i = 0; i < o->nfiles; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(o->files[i], o->files[j])) {
                *rc = cli_fail(CDR_E_USAGE, "%s is given twice", o->files[i]);
                return -1;
            }
    return 0;
}

/* ---- run --cluster DIR --shard K ---- */

static int cmp_piece(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

/* The tariff the shard's database used last (no --tariff given). */
static cdr_err shard_last_tariff(run_opts *o)
{
    char err[1024];
    struct stat sb;
    if (stat(o->cl_db, &sb) != 0)
        return cli_fail(CDR_E_USAGE, "shard %ld has no database yet: give --tariff DIR",
                        o->shard);
    cdr_db *db = NULL;
    cdr_err e = cdr_db_open_readonly(o->cl_db, &db, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "cannot open database %s: %s", o->cl_db, err);
    char dir[PATH_MAX] = "";
    int found = 0;
    e = cdr_db_last_tariff_dir(db, dir, sizeof dir, &found);
    cdr_db_close(db);
    if (e != CDR_OK || !found || !*dir)
        return cli_fail(CDR_E_USAGE, "shard %ld: no tariff recorded: give --tariff DIR",
                        o->shard);
    if (!(o->cl_tariff = strdup(dir)))
        return CDR_E_NOMEM;
    o->tariff_dir = o->cl_tariff;
    return CDR_OK;
}

/* The shard's database, outputs, and the pieces routed to it whose file is
 * routed whole (its marker written): files[i] is the operator's file as
 * given to split, pieces[i] the piece read in its place. */
/* The names (their SHA-256) of the pieces in the shard's incoming
 * directory inc, sorted, into *names (malloc'd, *n of them). An error
 * opening inc is reported (*names NULL); CDR_E_NOMEM leaves the names read. */
static cdr_err list_pieces(const char *inc, char ***names_out, size_t *n_out)
{
    cdr_err e = CDR_OK;
    DIR *d = opendir(inc);
    if (!d)
        return cli_fail(CDR_E_IO, "cannot read %s: %s", inc, strerror(errno));
    size_t n = 0, cap = 0;
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l != 64 + 6 || strcmp(de->d_name + 64, ".piece") != 0)
            continue; /* (temporary files of split are hidden) */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                e = CDR_E_NOMEM;
                break;
            }
            names = v;
        }
        if (!(names[n] = strndup(de->d_name, 64))) {
            e = CDR_E_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (e == CDR_OK && n)
        qsort(names, n, sizeof *names, cmp_piece);
    *names_out = names;
    *n_out = n;
    return e;
}

static cdr_err cluster_setup(run_opts *o)
{
    char err[1024];
    uint32_t parts;
    cdr_err e = cdr_cluster_parts(o->cluster, &parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    if (o->shard >= (long)parts)
        return cli_fail(CDR_E_USAGE, "--shard %ld: %s has shards 0 to %u", o->shard,
                        o->cluster, parts - 1);
    size_t dl = strlen(o->cluster) + 64;
    char *inc = malloc(dl);
    o->cl_db = malloc(dl);
    o->cl_out = malloc(dl);
    if (!inc || !o->cl_db || !o->cl_out) {
        free(inc);
        return CDR_E_NOMEM;
    }
    snprintf(o->cl_db, dl, "%s/shard-%ld/cdrecon.db", o->cluster, o->shard);
    snprintf(o->cl_out, dl, "%s/shard-%ld/out", o->cluster, o->shard);
    snprintf(inc, dl, "%s/shard-%ld/incoming", o->cluster, o->shard);
    o->db_path = o->cl_db;
    o->out_dir = o->cl_out;
    if (!o->tariff_dir && (e = shard_last_tariff(o)) != CDR_OK) {
        free(inc);
        return e;
    }
    size_t n = 0;
    char **names = NULL;
    if ((e = list_pieces(inc, &names, &n)) != CDR_OK && !names) {
        free(inc);
        return e;
    }
    free(o->files);
    o->files = calloc(n + 1, sizeof *o->files);
    o->pieces = calloc(n + 1, sizeof *o->pieces);
    o->content_hex = calloc(n + 1, sizeof *o->content_hex);
    o->piece_profile = calloc(n + 1, sizeof *o->piece_profile);
    o->piece_profile_hex = calloc(n + 1, sizeof *o->piece_profile_hex);
    if (!o->files || !o->pieces || !o->content_hex || !o->piece_profile ||
        !o->piece_profile_hex)
        e = CDR_E_NOMEM;
    for (size_t i = 0; e == CDR_OK && i < n; i++) {
        cdr_route_mark *m = malloc(sizeof *m);
        if (!m) {
            e = CDR_E_NOMEM;
            break;
        }
        cdr_err me = cdr_route_mark_read(o->cluster, names[i], m, err, sizeof err);
        if (me == CDR_OK && !strcmp(m->status, "routed")) {
            size_t pl = strlen(inc) + 80;
            char *pp = malloc(pl);
            char *nm = strdup(m->name);
            if (!pp || !nm) {
                free(pp);
                free(nm);
                free(m);
                e = CDR_E_NOMEM;
                break;
            }
            snprintf(pp, pl, "%s/%s.piece", inc, names[i]);
            o->files[o->nfiles] = nm;
            o->pieces[o->nfiles] = pp;
            memcpy(o->content_hex[o->nfiles], m->content_sha256, 65);
            if (m->profile[0]) {
                if (!(o->piece_profile[o->nfiles] = strdup(m->profile))) {
                    free(m);
                    e = CDR_E_NOMEM;
                    o->nfiles++;
                    break;
                }
                memcpy(o->piece_profile_hex[o->nfiles], m->profile_sha256, 65);
            }
            o->nfiles++;
        } else if (me != CDR_E_NOTFOUND && !o->quiet) {
            cli_note("%s/%s.piece: %s: left for later", inc, names[i],
                     me == CDR_OK ? "its file was not routed as a whole" : err);
        }
        free(m);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(inc);
    return e;
}

static void cluster_free(run_opts *o)
{
    if (!o->cluster)
        return;
    for (int i = 0; o->files && i < o->nfiles; i++) {
        free(o->files[i]);
        free(o->pieces[i]);
        if (o->piece_profile)
            free(o->piece_profile[i]);
    }
    free(o->piece_profile);
    free(o->piece_profile_hex);
    free(o->pieces);
    free(o->content_hex);
    free(o->cl_db);
    free(o->cl_out);
    free(o->cl_tariff);
}

static cdr_err read_piece(const char *path, uint32_t idx, const cdr_reader_opts *ro,
                          cdr_row_fn row_fn, cdr_reject_fn reject_fn, void *user,
                          cdr_file_stats *st)
{
    (void)ro;
    (void)reject_fn; /* (rejected rows stayed with split) */
    return cdr_piece_read(path, idx, row_fn, user, st);
}

static int hex_to_sha(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* After the commit: the pieces now in the database are removed; the
 * refused ones are kept in DIR/shard-K/refused. */
static void cluster_consumed(run_ctx *c)
{
    run_opts *o = c->o;
    for (int i = 0; i < o->nfiles; i++) {
        if (c->stats[i].status != CDR_OK && !c->skip[i])
            continue; /* a failed piece stays: the next run says so again */
        if (c->skip[i] == 2) {
            char to[PATH_MAX + 80], dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s/shard-%ld/refused", o->cluster, o->shard);
            mkdir(dir, 0755);
            const char *b = strrchr(o->pieces[i], '/');
            snprintf(to, sizeof to, "%s%s", dir, b ? b : "/x.piece");
            if (rename(o->pieces[i], to) == 0)
                continue;
        }
        unlink(o->pieces[i]);
    }
}

/* ---- the state directory ---- */

/* The state's directory: --store, else what the database recorded, else
 * DB.state. A database's state never moves: a different --store is an
 * error. Created if missing. buf gets the path. */
static cdr_err state_dir(run_ctx *c, char *buf, size_t len)
{
    run_opts *o = c->o;
    char rec[PATH_MAX];
    int found = 0;
    cdr_err e = cdr_db_meta_get(c->db, "state_dir", rec, sizeof rec, &found);
    if (e != CDR_OK)
        return cli_fail(e, "database: %s", cdr_db_message(c->db));
    if (found) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", rec);
        if (cli_state_dir_resolve(o->db_path, tmp, rec, sizeof rec) != 0)
            return cli_fail(CDR_E_IO, "cannot resolve the directory of %s: %s", o->db_path,
                            strerror(errno));
    }
    char want[PATH_MAX];
    if (o->store_dir)
        snprintf(want, sizeof want, "%s", o->store_dir);
    else if (found)
        snprintf(want, sizeof want, "%s", rec);
    else
        snprintf(want, sizeof want, "%s.state", o->db_path);
    {
        /* created if missing; the directory itself must not be a link */
        cli_outdir sd = {-1, NULL};
        char derr[1024];
        if ((e = cli_outdir_open(&sd, want, CDR_DIR_CREATE, derr, sizeof derr)) != CDR_OK)
            return cli_fail(e, "state directory: %s", derr);
        cli_outdir_close(&sd);
    }
    char real[PATH_MAX];
    if (!realpath(want, real))
        return cli_fail(CDR_E_IO, "cannot resolve the state directory %s: %s", want,
                        strerror(errno));
    if (found && strcmp(real, rec) != 0)
        return cli_fail(CDR_E_USAGE, "the database's month state is in %s, not %s: give "
                        "--store %s (or no --store)", rec, real, rec);
    snprintf(buf, len, "%s", real);
    char as[PATH_MAX];
    if (!found && cli_state_dir_record(o->db_path, real, as, sizeof as) != 0)
        return cli_fail(CDR_E_IO, "cannot resolve the directory of %s: %s", o->db_path,
                        strerror(errno));
    if (!found && (e = cdr_db_meta_set(c->db, "state_dir", as)) != CDR_OK)
        return cli_fail(e, "database: %s", cdr_db_message(c->db));
    return CDR_OK;
}

static int add_tariff(int64_t id, const char *sha, const char *dir, void *user)
{
    cdr_state_manifest *m = user;
    cdr_state_tariff *t = realloc(m->tariffs, (m->n_tariffs + 1) * sizeof *t);
    if (!t)
        return 1;
    m->tariffs = t;
    t = &m->tariffs[m->n_tariffs];
    t->id = id;
    snprintf(t->sha256, sizeof t->sha256, "%s", sha ? sha : "");
    if (!(t->dir = strdup(dir ? dir : "")))
        return 1;
    m->n_tariffs++;
    return 0;
}

/* The state's manifest: what the database says of it (live files,
 * tariffs), for readers without the database (investigate --store). */
static cdr_err write_manifest(run_ctx *c, const char *dir)
{
    cdr_state_manifest m;
    char err[1024], real[PATH_MAX];
    memset(&m, 0, sizeof m);
    cdr_err e = cdr_db_state_list(c->db, &m.live, &m.n_live);
    if (e == CDR_OK)
        e = cdr_db_tariffs(c->db, add_tariff, &m);
    if (e == CDR_OK) {
        m.db_path = strdup(realpath(c->o->db_path, real) ? real : c->o->db_path);
        e = m.db_path ? cdr_state_manifest_write(dir, &m, err, sizeof err) : CDR_E_NOMEM;
        if (e != CDR_OK)
            cli_fail(e, "month state manifest: %s", err);
    } else {
        cli_fail(e, "database: %s", cdr_db_message(c->db));
    }
    cdr_state_manifest_free(&m);
    return e;
}

/* Under the database's write lock: the manifest written again (an earlier
 * run may have died before it) and every state file the database does not
 * name removed (what a killed run left); then, with st, the live files
 * opened. */
static cdr_err tidy_state(run_ctx *c, const char *dir, cdr_state **st)
{
    char **live = NULL;
    size_t n = 0;
    uint64_t removed = 0;
    char err[1024];
    cdr_err e = write_manifest(c, dir);
    if (e != CDR_OK)
        return e;
    if ((e = cdr_db_state_list(c->db, &live, &n)) != CDR_OK)
        return cli_fail(e, "database: %s", cdr_db_message(c->db));
    e = cdr_state_collect_garbage(dir, (const char *const *)live, n, &removed, err, sizeof err);
    if (e == CDR_OK) {
        if (removed && !c->o->quiet)
            cli_note("removed %llu state file(s) left by an unfinished run",
                    (unsigned long long)removed);
        if (st)
            e = cdr_state_open(dir, (const char *const *)live, n, st, err, sizeof err);
    }
    if (e != CDR_OK)
        cli_fail(e, "month state: %s", err);
    cdr_db_free_names(live, n);
    return e;
}

/* Nothing new to ingest: a run killed after its commit may still have left
 * the state files its commit replaced; they go now, as in any run, when the
 * write lock is free at once (else the next run removes them). The state
 * directory is the one the database records; nothing is created. */
static void tidy_state_idle(run_ctx *c)
{
    char rec[PATH_MAX], dir[PATH_MAX];
    int found = 0;
    if (cdr_db_meta_get(c->db, "state_dir", rec, sizeof rec, &found) != CDR_OK || !found ||
        cli_state_dir_resolve(c->o->db_path, rec, dir, sizeof dir) != 0)
        return;
    struct stat sb;
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || !cdr_db_try_lock(c->db))
        return;
    (void)tidy_state(c, dir, NULL); /* (a failure is said; the run still exits "nothing new") */
    cdr_db_unlock(c->db);
}

/* ---- which files are new ---- */

/* Files already ingested are skipped before they are read. A file is
 * hashed first only when it could be one: when its size is that of a file
 * in the database (its bytes, or its decompressed content) or of another
 * file of this run. Any other file is hashed while it is read, and checked
 * again when it is done (on_file_done), with its content's hash. */
static cdr_err precheck_files(run_ctx *c, int *n_new)
{
    run_opts *o = c->o;
    int nfiles = o->nfiles;
    cdr_err rc = CDR_OK;
    uint64_t *sizes = calloc((size_t)nfiles + 1, sizeof *sizes);
    int *is_reg = calloc((size_t)nfiles + 1, sizeof *is_reg);
    *n_new = 0;
    if (!sizes || !is_reg) {
        rc = CDR_E_NOMEM;
        goto out;
    }
    if (o->cluster) {
        /* a piece is known by its operator file's identity (its name) */
        for (int i = 0; i < nfiles; i++) {
            const char *b = strrchr(o->pieces[i], '/');
            uint8_t csha[32];
            int64_t known = 0;
            if (hex_to_sha(b + 1, c->pre_sha[i]) != 0 || hex_to_sha(o->content_hex[i], csha))
                return cli_fail(CDR_E_INTERNAL, "bad piece name %s", o->pieces[i]);
            c->pre_hashed[i] = 1;
            if ((rc = cdr_db_file_known(c->db, c->pre_sha[i], &known)) == CDR_OK && !known)
                rc = cdr_db_file_known(c->db, csha, &known);
            if (rc != CDR_OK)
                return cli_fail(rc, "database: %s", cdr_db_message(c->db));
            c->known_run[i] = known;
            c->skip[i] = known != 0;
            *n_new += !known;
        }
        goto out;
    }
    for (int i = 0; i < nfiles; i++) {
        struct stat sb;
        if (strcmp(o->files[i], "-") != 0 && stat(o->files[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            is_reg[i] = 1;
            sizes[i] = (uint64_t)sb.st_size;
        }
    }
    for (int i = 0; i < nfiles; i++) {
        if (!is_reg[i]) {
            (*n_new)++;
            continue;
        }
        int maybe = 0;
        for (int j = 0; j < nfiles && !maybe; j++)
            maybe = j != i && is_reg[j] && sizes[j] == sizes[i];
        if (!maybe && (rc = cdr_db_size_known(c->db, sizes[i], &maybe)) != CDR_OK) {
            cli_fail(rc, "database: %s", cdr_db_message(c->db));
            goto out;
        }
        if (!maybe) {
            (*n_new)++; /* hashed as it is read */
            continue;
        }
        uint64_t size;
        if (cdr_file_sha256(o->files[i], c->pre_sha[i], &size) != CDR_OK) {
            rc = cli_fail(CDR_E_IO, "cannot read %s: %s", o->files[i], strerror(errno));
            goto out;
        }
        c->pre_hashed[i] = 1;
        if ((rc = cdr_db_file_known(c->db, c->pre_sha[i], &c->known_run[i])) != CDR_OK) {
            cli_fail(rc, "database: %s", cdr_db_message(c->db));
            goto out;
        }
        for (int j = 0; j < i && !c->known_run[i]; j++)
            if (c->pre_hashed[j] && !c->skip[j] && !memcmp(c->pre_sha[i], c->pre_sha[j], 32)) {
                c->skip[i] = 1;
                if (!o->quiet)
                    cli_note("%s has the same content as %s: skipped",
                            o->files[i], o->files[j]);
            }
        if (c->skip[i]) {
            /* same bytes as an earlier file of this run */
        } else if (c->known_run[i]) {
            c->skip[i] = 1;
            if (!o->quiet)
                cli_note("%s was already ingested (run %lld): skipped",
                        o->files[i], (long long)c->known_run[i]);
        } else {
            (*n_new)++;
        }
    }
out:
    free(sizes);
    free(is_reg);
    return rc;
}

/* ---- rating, with the re-delivery check ---- */

static cdr_err rate_loop(run_ctx *c, cdr_engine *eng, const cdr_engine_sink *sink,
                         cdr_engine_totals *tot, uint64_t *refused_files, uint64_t *copies);

/* Finish the engine; refuse files that are mostly copies of records
 * ingested before and finish again without them. */
static cdr_err rate_all(run_ctx *c, cdr_engine *eng, const cdr_engine_sink *sink,
                        cdr_engine_totals *tot, uint64_t *refused_files)
{
    run_opts *o = c->o;
    cdr_err rc;
    uint64_t *copies = calloc((size_t)o->nfiles + 1, sizeof *copies);
    if (!copies)
        return CDR_E_NOMEM;
    *refused_files = 0;
    rc = rate_loop(c, eng, sink, tot, refused_files, copies);
    free(copies);
    return rc;
}

static cdr_err rate_loop(run_ctx *c, cdr_engine *eng, const cdr_engine_sink *sink,
                         cdr_engine_totals *tot, uint64_t *refused_files, uint64_t *copies)
{
    run_opts *o = c->o;
    cdr_err rc;
    for (;;) {
        if ((rc = cdr_db_savepoint(c->db, "begin")) != CDR_OK)
            return cli_fail(rc, "database: %s", cdr_db_message(c->db));
        c->findings = c->unrated = c->candidates = 0;
        if ((rc = cdr_oc_delta_reset(c->delta)) != CDR_OK)
            return cli_fail(rc, "cannot write the outputs' delta in the state directory");
        rc = cdr_engine_finish(eng, sink, tot);
        if (rc == CDR_E_INTERRUPTED && c->err)
            rc = c->err;
        if (rc != CDR_OK) {
            /* the first that failed says which file and why */
            const char *why = cdr_engine_errmsg(eng);
            if (!*why && c->rejects && cdr_csvw_status(c->rejects) != CDR_OK)
                why = cdr_csvw_message(c->rejects);
            if (!*why)
                why = cdr_db_message(c->db);
            cli_fail(rc, "rating failed%s%s", *why ? ": " : "", why);
            return rc;
        }
        int again = 0;
        for (int i = 0; i < o->nfiles && !o->accept_redelivery; i++) {
            if (c->skip[i] || c->refused[i] || c->stats[i].status != CDR_OK)
                continue;
            copies[i] = cdr_engine_file_copies(eng, (uint32_t)i);
            uint64_t acc = c->stats[i].rows_accepted;
            if (copies[i] >= REDELIVERY_MIN_COPIES && copies[i] * 2 > acc) {
                c->refused[i] = 1;
                again = 1;
            }
        }
        if (!again)
            return cdr_db_savepoint(c->db, "release");
        /* undo the finish, mark the files refused, and rate again without them */
        if ((rc = cdr_db_savepoint(c->db, "rollback")) != CDR_OK)
            return cli_fail(rc, "database: %s", cdr_db_message(c->db));
        if ((rc = cdr_engine_rewind(eng)) != CDR_OK)
            return rc;
        for (int i = 0; i < o->nfiles; i++) {
            if (!c->refused[i] || c->skip[i])
                continue;
            char msg[512];
            snprintf(msg, sizeof msg, "refused as a probable re-delivery: %llu of its %llu "
                     "records repeat the msisdn and record_id of records ingested before",
                     (unsigned long long)copies[i],
                     (unsigned long long)c->stats[i].rows_accepted);
            cli_err("%s: %s; nothing of it was ingested (--accept-redelivery ingests it)",
                    o->files[i], msg);
            cdr_engine_exclude_file(eng, (uint32_t)i);
            if ((rc = cdr_db_file_refuse(c->db, c->file_ids[i], msg, copies[i])) != CDR_OK)
                return cli_fail(rc, "database: %s", cdr_db_message(c->db));
            c->skip[i] = 2; /* (2: refused, not already ingested) */
            (*refused_files)++;
        }
    }
}

/* ---- the summary ---- */

static void print_summary(run_ctx *c, int64_t run_id, const cdr_engine_totals *tot,
                          const char *months, const double *ph)
{
    run_opts *o = c->o;
    uint64_t rd = 0, acc = 0, rej = 0, blank = 0, nread = 0, nskip = 0, nref = 0, nfail = 0;
    uint64_t skipped = 0;
    uint64_t ngz = 0;
    for (int i = 0; i < o->nfiles; i++) {
        if (c->skip[i] == 1) {
            nskip++;
            continue;
        }
        nread++;
        ngz += c->stats[i].gzip != 0;
        nref += c->skip[i] == 2;
        nfail += c->stats[i].status != CDR_OK;
        rd += c->stats[i].rows_read;
        acc += c->stats[i].rows_accepted;
        rej += c->stats[i].rows_rejected;
        skipped += c->stats[i].rows_skipped;
        blank += c->stats[i].blank_lines;
    }
    printf("cdrecon run %lld  (database %s, outputs in %s)\n", (long long)run_id, o->db_path,
           o->out_dir);
    printf("files       %llu read (%llu gzip), %llu skipped as already ingested, %llu refused "
           "as re-deliveries, %llu failed\n",
           (unsigned long long)nread, (unsigned long long)ngz, (unsigned long long)nskip,
           (unsigned long long)nref, (unsigned long long)nfail);
    char sk[64] = "";
    if (o->prof) /* (records the profile does not rate: read = accepted + rejected + skipped) */
        snprintf(sk, sizeof sk, " + %llu skipped", (unsigned long long)skipped);
    printf("rows        %llu read = %llu accepted + %llu rejected%s; %llu blank lines\n",
           (unsigned long long)rd, (unsigned long long)acc, (unsigned long long)rej, sk,
           (unsigned long long)blank);
    if (o->prof)
        printf("profile     %s (sha256 %.16s...)\n", o->profile_path, o->prof_hex);
    printf("records     %llu rated, %llu duplicates, %llu unrated",
           (unsigned long long)tot->records, (unsigned long long)tot->duplicates,
           (unsigned long long)tot->unrated);
    if (tot->records_rerated)
        printf(" (%llu of them stored records rated again)",
               (unsigned long long)tot->records_rerated);
    printf("\n");
    printf("state       %llu subscriber-months: %llu new, %llu continued, %llu re-rated whole",
           (unsigned long long)tot->submonths, (unsigned long long)tot->submonths_new,
           (unsigned long long)tot->submonths_continued, (unsigned long long)tot->submonths_full);
    if (tot->submonths_rewound)
        printf(", %llu from a rewind point", (unsigned long long)tot->submonths_rewound);
    printf("\n");
    if (tot->submonths_other_tariff)
        printf("            %llu subscriber-months not touched were last rated with another "
               "tariff: `cdrecon run --rerate` re-rates them\n",
               (unsigned long long)tot->submonths_other_tariff);
    printf("changes     %llu candidates new or changed, %llu withdrawn (changes.csv)\n",
           (unsigned long long)tot->candidates_changed,
           (unsigned long long)tot->candidates_withdrawn);
    /* the months as they stand now (the outputs) */
    cli_outputs_print_month(&c->out.tot, months);
    printf("time        %.2f s: reading %.2f s, rating %.2f s, outputs %.2f s%s, commit %.2f s%s\n",
           ph[4] - ph[0], ph[1] - ph[0], ph[2] - ph[1], ph[3] - ph[2],
           c->outputs_from_db ? " (from the database)" : "", ph[4] - ph[3],
           tot->spilled ? " (spilled to disk)" : "");
}

/* The database's warm-up stops once the tariff has loaded. */
static int tariff_loaded(void *u)
{
    return cli_bgtariff_done(u);
}

/* An error while the tariff may still be loading: a bad tariff is said
 * first, as the error to fix first (its code returned), else 0. */
static int tariff_failed(cli_bgtariff *b)
{
    if (!b->started || cli_bgtariff_ready(b) == CDR_OK)
        return 0;
    return b->rc ? b->rc : CDR_E_TARIFF;
}

/* The months to report: --month, else every month the run touched. */
static size_t report_months(const run_opts *o, const cdr_engine_state_file *w, size_t nw,
                            cdr_month *out, size_t cap, char *text, size_t tlen)
{
    size_t n = 0;
    if (o->month >= 0) {
        out[n++] = o->month;
    } else {
        for (size_t i = 0; i < nw && n < cap; i++) {
            if (w[i].kind != CDR_STATE_CHECKPOINT)
                continue;
            out[n++] = w[i].month;
        }
    }
    size_t k = 0;
    text[0] = '\0';
    for (size_t i = 0; i < n && k + 9 < tlen; i++) {
        if (i)
            text[k++] = ';';
        k += cdr_month_format(out[i], text + k);
        text[k] = '\0';
    }
    return n;
}

/* ---- the run, step by step ---- */

/* What the steps of a run share besides run_ctx. */
typedef struct run_job {
    run_ctx c;
    run_opts o;
    cli_bgtariff bgt;
    cdr_tariff *t;
    cdr_engine *eng;
    cdr_state *st;
    cli_outdir od;
    char *cmdline;
    char tariff_real[PATH_MAX];
    char sdir[PATH_MAX];
    double ph[5]; /* start, read, rated, outputs, committed */
    int run_open, outputs_placed, state_written;
    int64_t run_id, tariff_id;
    cdr_err file_rc;          /* the first file that failed as a whole */
    cdr_engine_totals tot;
    uint64_t refused;
    const cdr_engine_state_file *replaced; /* the state files this run replaced */
    size_t n_replaced;
    cdr_month *months;        /* the months reported */
    size_t nm;
    cdr_month *existed;       /* the months the state held before the run */
    size_t n_existed;
    cdr_month *oc_months;     /* the months whose outputs cache was written (.tmp) */
    size_t n_oc;
    cdr_oc_merger *pending;   /* the cache's rows, merged while the commit runs */
    char mtext[1024];
} run_job;

/* Before anything is opened: the per-file arrays, the paths, the profile;
 * then the tariff starts loading, the database opens and the files are
 * checked against it. CDR_E_ALREADY when nothing is new. */
static cdr_err run_prepare(run_job *j, int argc, char **argv)
{
    run_ctx *c = &j->c;
    run_opts *o = &j->o;
    cdr_err rc;
    char err[1024];
    c->files = o->files;
    size_t nf = (size_t)o->nfiles + 1;
    c->file_ids = calloc(nf, sizeof *c->file_ids);
    c->pre_sha = calloc(nf, sizeof *c->pre_sha);
    c->pre_hashed = calloc(nf, sizeof *c->pre_hashed);
    c->skip = calloc(nf, sizeof *c->skip);
    c->hash_as_read = calloc(nf, sizeof *c->hash_as_read);
    c->refused = calloc(nf, sizeof *c->refused);
    c->known_run = calloc(nf, sizeof *c->known_run);
    c->stats = calloc(nf, sizeof *c->stats);
    j->cmdline = cli_command_line(argc, argv);
    if (!c->file_ids || !c->pre_sha || !c->pre_hashed || !c->skip || !c->hash_as_read ||
        !c->refused || !c->known_run || !c->stats || !j->cmdline)
        return CDR_E_NOMEM;

    /* no output may be an input, the database, another output or in the
     * tariff; checked before anything is opened */
    char perr[2048], defst[PATH_MAX];
    snprintf(defst, sizeof defst, "%s.state", o->db_path);
    if ((rc = cli_run_paths_check(o->tariff_dir, o->db_path, o->out_dir,
                                  o->store_dir ? o->store_dir : defst, o->profile_path,
                                  o->files, o->nfiles, perr, sizeof perr)) != CDR_OK)
        return cli_fail(rc, "%s", perr);
    /* the profile is checked before anything is opened or read */
    if ((rc = cli_profile_load(o->profile_path, &o->prof)) != CDR_OK)
        return rc;
    if (o->prof)
        cdr_sha256_hex(cdr_profile_sha256(o->prof), o->prof_hex);

    /* the tariff is recorded (runs, tariffs) by its resolved path: investigate
     * --db and a shard's next run find it from any working directory */
    if (o->tariff_dir && realpath(o->tariff_dir, j->tariff_real))
        o->tariff_dir = j->tariff_real;

    /* the tariff loads on a second thread while the files are hashed and read */
    cli_bgtariff_start(&j->bgt, o->tariff_dir);
    if ((rc = cdr_db_open(o->db_path, &c->db, err, sizeof err)) != CDR_OK) {
        int trc = tariff_failed(&j->bgt);
        return trc ? trc : cli_fail(rc, "cannot open database %s: %s", o->db_path, err);
    }
    int n_new = 0;
    if ((rc = precheck_files(c, &n_new)) != CDR_OK)
        return rc;
    /* while the tariff still loads, this thread has nothing to do: it reads
     * what the night's database writes will need into the page cache (its
     * drain is the slowest stage of a late night's rating; docs/database.md) */
    if (n_new > 0 || o->rerate)
        (void)cdr_db_warm(c->db, tariff_loaded, &j->bgt);
    if ((rc = tariff_failed(&j->bgt)) != CDR_OK)
        return rc; /* (said by the loader: before anything is written) */
    if (n_new == 0 && !o->rerate) {
        tidy_state_idle(c);
        if (!o->quiet)
            cli_note("every file was already ingested; nothing new, "
                    "database and outputs unchanged");
        return CDR_E_ALREADY;
    }
    return CDR_OK;
}

/* The profile recorded with a shard's run: the one split read its new
 * pieces' files with, when they share one (each file records its own). */
static void shard_run_profile(const run_job *j, cdr_db_run_info *info)
{
    const run_opts *o = &j->o;
    int first = -1, same = 1;
    for (int i = 0; i < o->nfiles && same; i++) {
        if (j->c.skip[i])
            continue;
        if (first < 0)
            first = i;
        else
            same = (!o->piece_profile[i]) == (!o->piece_profile[first]) &&
                   (!o->piece_profile[i] ||
                    (!strcmp(o->piece_profile[i], o->piece_profile[first]) &&
                     !strcmp(o->piece_profile_hex[i], o->piece_profile_hex[first])));
    }
    if (first >= 0 && same && o->piece_profile[first]) {
        info->profile = o->piece_profile[first];
        info->profile_sha256 = o->piece_profile_hex[first];
    }
}

/* The outputs created (temporary names), the run begun in the database,
 * the month state opened and the engine made. */
static cdr_err run_begin(run_job *j)
{
    run_ctx *c = &j->c;
    run_opts *o = &j->o;
    cdr_csvw **ws = c->out.w;
    cdr_err rc;
    char err[1024];
    if ((rc = cli_outdir_open(&j->od, o->out_dir, CDR_DIR_CREATE, err, sizeof err)) != CDR_OK)
        return cli_fail(rc, "output directory: %s", err);
    if ((rc = cli_outdir_csvw(&j->od, "rejects.csv", 0, &c->rejects, err, sizeof err)) != CDR_OK)
        return cli_fail(rc, "cannot create outputs: %s", err);
    for (int i = 0; i < CLI_OUT__COUNT; i++)
        if ((rc = cli_outdir_csvw(&j->od, cli_out_names[i], 0, &ws[i], err, sizeof err)) !=
            CDR_OK)
            return cli_fail(rc, "cannot create outputs: %s", err);
    cdr_rejects_csv_header(c->rejects);

    cdr_db_run_info info = {0, CDRECON_VERSION, j->cmdline, o->tariff_dir,
                            o->rerate ? "rerate" : "run", NULL, NULL};
    if (o->prof) {
        info.profile = o->profile_path;
        info.profile_sha256 = o->prof_hex;
    } else if (o->cluster) {
        shard_run_profile(j, &info);
    }
    if ((rc = cdr_db_begin_run(c->db, &info, &j->run_id)) != CDR_OK)
        return cli_fail(rc, "database: %s", cdr_db_message(c->db));
    j->run_open = 1;
    if ((rc = state_dir(c, j->sdir, sizeof j->sdir)) != CDR_OK ||
        (rc = tidy_state(c, j->sdir, &j->st)) != CDR_OK)
        return rc;
    const cdr_month *ex = cdr_state_months(j->st, &j->n_existed);
    if (!(j->existed = malloc((j->n_existed + 1) * sizeof *j->existed)))
        return CDR_E_NOMEM;
    memcpy(j->existed, ex, j->n_existed * sizeof *ex);
    if ((rc = cdr_csvw_open_memory(&c->dmem)) != CDR_OK ||
        (rc = cdr_oc_delta_new(j->sdir, &c->delta)) != CDR_OK)
        return cli_fail(rc, "cannot write the outputs' delta in %s", j->sdir);

    o->eo.month = -1; /* every record goes into the state; --month limits the report */
    o->eo.state = j->st;
    o->eo.state_dir = j->sdir;
    o->eo.rerate = o->rerate;
    o->eo.rerate_months = o->month >= 0 ? &o->month : NULL;
    o->eo.n_rerate_months = o->month >= 0 ? 1 : 0;
    return cdr_engine_new(NULL, &o->eo, &j->eng);
}

/* Read the new files into the engine (j->file_rc: the first that failed as
 * a whole), take the tariff and give it to the engine. CDR_E_ALREADY when
 * everything turned out known while it was read. */
static cdr_err run_read(run_job *j)
{
    run_ctx *c = &j->c;
    run_opts *o = &j->o;
    cdr_err rc;
    cli_ingest in;
    memset(&in, 0, sizeof in);
    in.engine = j->eng;
    cdr_reader_opts_init(&in.ro);
    in.ro.want_content_sha256 = 1;
    in.ro.profile = o->prof;
    for (int i = 0; i < o->nfiles; i++)
        c->hash_as_read[i] = !c->pre_hashed[i];
    in.hash = c->hash_as_read;
    in.stats = c->stats;
    in.skip = c->skip;
    in.on_reject = on_reject;
    in.on_file_start = on_file_start;
    in.on_file_done = on_file_done;
    in.user = c;
    in.tariff = &j->bgt;
    if (o->cluster) {
        in.paths = o->pieces;
        in.read_file = read_piece;
    }
    j->file_rc = o->nfiles ? cli_ingest_files(&in, o->files, o->nfiles) : CDR_OK;
    j->ph[1] = cli_now_s();
    if (!(j->t = cli_bgtariff_take(&j->bgt))) /* a bad tariff is said first */
        return j->bgt.rc;
    if (c->err != CDR_OK)
        return cli_fail(c->err, "run stopped: %s", cdr_db_message(c->db));
    if (j->file_rc == CDR_E_INTERRUPTED || j->file_rc == CDR_E_NOMEM || j->file_rc == CDR_E_DB)
        return cli_fail(j->file_rc, "run stopped; the database is unchanged");
    /* a file that failed as a whole was excluded: the others go on (and
     * the run ends with that file's code) */
    int n_ingested = 0;
    for (int i = 0; i < o->nfiles; i++) {
        if (c->skip[i] && !c->pre_hashed[i] && c->stats[i].status == CDR_OK) {
            cdr_engine_exclude_file(j->eng, (uint32_t)i);
            if (!o->quiet)
                cli_note("%s was already ingested (run %lld): skipped",
                        o->files[i], (long long)c->known_run[i]);
        }
        n_ingested += !c->skip[i] && c->stats[i].status == CDR_OK;
        if (!c->skip[i])
            cdr_engine_set_file_id(j->eng, (uint32_t)i, c->file_ids[i]);
    }
    if (n_ingested == 0 && !o->rerate && j->file_rc == CDR_OK) {
        /* (everything turned out known while it was read: stdin, or a
         * recompressed copy) */
        if (!o->quiet)
            cli_note("every file was already ingested; nothing new, "
                    "database and outputs unchanged");
        return CDR_E_ALREADY;
    }
    uint8_t tsha[32];
    cdr_rating_identity(j->t, &o->eo, tsha); /* the tariff, and --tolerance, --max-duration */
    if ((rc = cdr_db_tariff_id(c->db, tsha, o->tariff_dir, &j->tariff_id)) != CDR_OK)
        return cli_fail(rc, "database: %s", cdr_db_message(c->db));
    cdr_engine_set_tariff(j->eng, j->t);
    cdr_engine_set_state_ids(j->eng, j->run_id, (uint32_t)j->tariff_id);
    return CDR_OK;
}

/* Outputs that could not be written: a writer that failed names its file
 * and the OS reason; else why, or the database's message. */
static cdr_err outputs_failed(run_ctx *c, cdr_err rc, const char *why)
{
    if (!why || !*why)
        why = cdr_db_message(c->db);
    for (int i = 0; i < CLI_OUT__COUNT; i++)
        if (cdr_csvw_status(c->out.w[i]) != CDR_OK) {
            why = cdr_csvw_message(c->out.w[i]);
            break;
        }
    return cli_fail(rc, "cannot write outputs%s%s", *why ? ": " : "", why);
}

/* Rate, record the state's new files in the database (the replaced ones
 * out) and write the outputs of the months reported (not yet in place;
 * when the outputs cache serves, its rows are merged by run_commit while
 * the database commits). */
static cdr_err run_rate(run_job *j)
{
    run_ctx *c = &j->c;
    cdr_err rc;
    cdr_engine_sink sink = {.on_record = on_record,
                            .on_finding = on_finding,
                            .on_candidate = on_candidate,
                            .on_submonth = on_submonth,
                            .user = c,
                            .record_statuses = 1u << CDR_RS_UNRATED};
    j->state_written = 1; /* (from here a failure removes what the engine wrote) */
    if ((rc = rate_all(c, j->eng, &sink, &j->tot, &j->refused)) != CDR_OK)
        return rc;
    j->ph[2] = cli_now_s();

    const cdr_engine_state_file *wr;
    size_t nw = cdr_engine_state_written(j->eng, &wr);
    j->n_replaced = cdr_engine_state_replaced(j->eng, &j->replaced);
    for (size_t i = 0; i < nw && rc == CDR_OK; i++)
        rc = cdr_db_state_add(c->db, wr[i].name, wr[i].month,
                              wr[i].kind == CDR_STATE_SEGMENT ? "segment" : "checkpoint",
                              wr[i].records, wr[i].bytes);
    for (size_t i = 0; i < j->n_replaced && rc == CDR_OK; i++)
        rc = cdr_db_state_drop(c->db, j->replaced[i].name);
    if (rc != CDR_OK)
        return cli_fail(rc, "database: %s", cdr_db_message(c->db));
    if (!(j->months = calloc(nw + 1, sizeof *j->months)))
        return CDR_E_NOMEM;
    j->nm = report_months(&j->o, wr, nw, j->months, nw + 1, j->mtext, sizeof j->mtext);
    cdr_month *touched = calloc(nw + 1, sizeof *touched);
    if (!touched)
        return CDR_E_NOMEM;
    size_t nt = 0;
    for (size_t i = 0; i < nw; i++)
        if (wr[i].kind == CDR_STATE_CHECKPOINT)
            touched[nt++] = wr[i].month;
    int64_t this_run = cdr_db_open_run(c->db);
    int from_db;
    cli_outputs_headers(&c->out);
    rc = cli_outputs_begin(&c->out, c->db, j->sdir, j->months, j->nm, touched, nt, j->existed,
                           j->n_existed, c->delta, &this_run, 1, &j->oc_months, &j->n_oc,
                           &from_db, &j->pending);
    c->outputs_from_db = from_db;
    free(touched);
    if (rc != CDR_OK)
        return outputs_failed(c, rc, NULL);
    j->ph[3] = cli_now_s();
    return CDR_OK;
}

/* The most bytes of outputs cache a run merges while its commit is held:
 * about 0.2 s of merging for the bench month's 17 MB, so readers of the
 * database wait under a second more than for the commit itself. */
#define RUN_HOLD_MAX ((uint64_t)64 << 20)

/* Outputs first (renamed into place), the database commit last: a run
 * killed before the commit is redone whole by the next run (its state
 * files are garbage then, removed by that run). Then the manifest, the
 * summary and the report. Returns the run's status. */
static int run_commit(run_job *j)
{
    run_ctx *c = &j->c;
    run_opts *o = &j->o;
    cdr_csvw **ws = c->out.w;
    int rc;
    cdr_csvw *all[CLI_OUT__COUNT + 1] = {ws[0], ws[1], ws[2], ws[3], c->rejects};
    cdr_err status = j->file_rc != CDR_OK ? j->file_rc
                     : j->refused         ? CDR_E_REFUSED
                     : c->rejected        ? CDR_E_REJECTS
                                          : CDR_OK;
    cdr_db_run_end end = {status, c->unrated, 0, j->tariff_id, j->mtext, j->tot.submonths,
                          j->tot.submonths_full};
    char err[1024];
    /* The commit's slow part (SQLite writes and syncs its journal and the
     * database) runs on a thread of its own while the cache's rows are
     * merged into the outputs; it commits once they are in place, below
     * (a failure before calls it off: run_end rolls the run back). Readers
     * of the database (investigate, report) wait while it is held, so only
     * while the merge is short: a larger month merges first and then
     * commits, readers waiting for the commit alone. */
    int begun = j->pending && cdr_oc_merge_size(j->pending) <= RUN_HOLD_MAX;
    if (begun && (rc = cdr_db_commit_begin(c->db, &end)) != CDR_OK)
        return cli_fail(rc, "database commit failed: %s", cdr_db_message(c->db));
    if (j->pending) {
        err[0] = '\0';
        rc = cli_outputs_merge(&c->out, j->pending, err, sizeof err);
        cdr_oc_merge_free(j->pending);
        j->pending = NULL;
        if (rc != CDR_OK)
            return outputs_failed(c, rc, err);
        j->ph[3] = cli_now_s();
    }
    j->outputs_placed = 1;
    for (int i = 0; i <= CLI_OUT__COUNT; i++)
        if ((rc = cdr_csvw_commit(all[i])) != CDR_OK)
            return cli_fail(rc, "cannot write outputs: %s", cdr_csvw_message(all[i]));
    /* (a cache placed here and a commit that then fails: its token is not the
     * database's, and the next run reads the database) */
    if ((rc = cdr_oc_place(j->sdir, j->oc_months, j->n_oc, err, sizeof err)) != CDR_OK)
        return cli_fail(rc, "outputs cache: %s", err);
    j->n_oc = 0;
    rc = begun ? cdr_db_commit_end(c->db, 1) : cdr_db_commit_run(c->db, &end);
    if (rc != CDR_OK)
        return cli_fail(rc, "database commit failed: %s", cdr_db_message(c->db));
    j->run_open = 0;
    j->outputs_placed = 0;
    j->state_written = 0;
    write_manifest(c, j->sdir); /* (a failure is said; the next run writes it again) */
    if (o->cluster)
        cluster_consumed(c);
    /* the replaced checkpoints are garbage now */
    for (size_t i = 0; i < j->n_replaced; i++) {
        char p[PATH_MAX + 80];
        snprintf(p, sizeof p, "%s/%s", j->sdir, j->replaced[i].name);
        unlink(p);
    }
    j->ph[4] = cli_now_s();
    if (!o->quiet)
        print_summary(c, j->run_id, &j->tot, j->mtext, j->ph);
    rc = status;
    if (o->report) { /* (the run is committed: a failed report only changes the status) */
        int rrc = cli_report_write(c->db, &j->od, j->months, j->nm, o->db_path, o->tariff_dir,
                                   j->t, NULL, o->quiet);
        rc = rrc != CDR_OK ? rrc : rc;
    }
    return rc;
}

/* What a run leaves when it ends, well or not: a failed run's outputs
 * removed, its state files discarded, its database transaction rolled back.
 * Returns the exit status (a shard's stage: nothing new and a refusal are
 * not failures of the night, docs/cluster.md). */
static int run_end(run_job *j, int rc)
{
    run_ctx *c = &j->c;
    run_opts *o = &j->o;
    if (j->outputs_placed) {
        /* The database refused the run: outputs of a run that did not happen
         * must not stand under their final names. */
        for (size_t i = 0; j->od.fd >= 0 && i < CLI_OUT__COUNT; i++)
            unlinkat(j->od.fd, cli_out_names[i], 0);
        if (j->od.fd >= 0)
            unlinkat(j->od.fd, "rejects.csv", 0);
        cli_err("outputs of the failed run were removed; the database is unchanged");
    }
    if (j->state_written && j->eng)
        cdr_engine_state_discard(j->eng);
    cdr_oc_merge_free(j->pending); /* (its next files discarded) */
    if (j->n_oc)
        cdr_oc_discard(j->sdir, j->oc_months, j->n_oc);
    cdr_oc_delta_free(c->delta);
    cdr_csvw_free(c->dmem);
    free(j->existed);
    free(j->oc_months);
    if (j->run_open)
        cdr_db_rollback_run(c->db);
    for (int i = 0; i < CLI_OUT__COUNT; i++)
        cdr_csvw_free(c->out.w[i]);
    cdr_csvw_free(c->rejects);
    cli_outdir_close(&j->od);
    cdr_db_close(c->db);
    cdr_engine_free(j->eng);
    cdr_state_close(j->st);
    cli_bgtariff_join(&j->bgt); /* an early exit: wait for the loader */
    cdr_tariff_free(j->bgt.t);
    cdr_tariff_free(j->t);
    free(j->months);
    free(c->stats);
    free(c->file_ids);
    free(c->pre_sha);
    free(c->pre_hashed);
    free(c->skip);
    free(c->hash_as_read);
    free(c->refused);
    free(c->known_run);
    free(j->cmdline);
    if (o->cluster) {
        if (rc == CDR_E_ALREADY && c->skip)
            cluster_consumed(c); /* (consumed by a run killed before it removed them) */
        cluster_free(o);
        if (rc == CDR_E_ALREADY || rc == CDR_E_REFUSED)
            rc = CDR_OK;
    }
    cdr_profile_free(o->prof);
    free(o->files);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_job *j = calloc(1, sizeof *j);
    int rc = CDR_OK;
    if (!j)
        return CDR_E_NOMEM;
    j->od.fd = -1;
    j->ph[0] = cli_now_s();
    if (parse_args(argc, argv, &j->o, &rc) != 0)
        goto out;
    j->c.o = &j->o;
    if (j->o.cluster) {
        if ((rc = cluster_setup(&j->o)) != CDR_OK)
            goto out;
        if (j->o.nfiles == 0 && !j->o.rerate) {
            if (!j->o.quiet)
                cli_note("nothing routed to shard %ld of %s: nothing to do", j->o.shard,
                         j->o.cluster);
            goto out; /* (exit 0: a stage with nothing to do is done) */
        }
    }
    if ((rc = run_prepare(j, argc, argv)) == CDR_OK && (rc = run_begin(j)) == CDR_OK &&
        (rc = run_read(j)) == CDR_OK && (rc = run_rate(j)) == CDR_OK)
        rc = run_commit(j);
out:
    rc = run_end(j, rc);
    free(j);
    return rc;
}
