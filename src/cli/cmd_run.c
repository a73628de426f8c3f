/* cdrecon run — the nightly reconciliation job. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdrecon/db.h"
#include "cdrecon/outcsv.h"
#include "cdrecon/store.h"
#include "cdrecon/tariff.h"
#include "cdrecon/version.h"
#include "filehash.h"
#include "ingest.h"

static const char *usage_text =
    "usage: cdrecon run --tariff DIR --db FILE --out DIR [options] FILES...\n"
    "Re-rate every record, compare with what was billed, and write findings,\n"
    "double-refund candidates, leakage and rejects into the SQLite database and\n"
    "as findings.csv, candidates.csv, rejects.csv and unrated.csv in DIR.\n"
    "A file whose SHA-256 is already in the database is skipped (not counted twice).\n"
    "  --tariff DIR       tariff directory (required)\n"
    "  --db FILE          SQLite database, created if missing (required)\n"
    "  --out DIR          output directory, created if missing (required)\n"
    "  --month YYYY-MM    only records of this bill month (others are counted as out of scope)\n"

    "  --operator NAME    operator name for notification texts (recorded with the run)\n"
    CLI_ENGINE_OPTIONS_HELP
    "  --store FILE       per-subscriber store for `cdrecon investigate`\n"
    "                     (default DIR/cdrecon.store)\n"
    "  --no-store         do not write the store\n"
    "  --quiet            print nothing but errors\n"
    "exit status: 0 ok; 8 every file was already ingested; 9 finished with rejected rows;\n"
    "other codes: docs/exit-codes.md\n";

typedef struct run_ctx {
    cdr_db *db;
    cdr_csvw *findings, *candidates, *rejects, *unrated;
    cdr_store_writer *store; /* NULL with --no-store */
    const cdr_tariff *t;
    char **files;
    int64_t *file_ids;
    uint8_t (*pre_sha)[32];
    int *pre_hashed;
    int *skip;
    int *hash_as_read;
    int64_t *known_run;
    uint64_t rejected;
    uint64_t unrated_rows;
    uint64_t policy_count[2], special_count, tier_count[5];
    cdr_err err;
} run_ctx;

static int on_reject(const cdr_reject *r, void *user)
{
    run_ctx *c = user;
    c->rejected++;
    cdr_err e = cdr_db_add_reject(c->db, r);
    if (e == CDR_OK)
        e = cdr_rejects_csv_row(c->rejects, r);
    if (e != CDR_OK) {
        c->err = e;
        return 1;
    }
    return 0;
}

static cdr_err on_file_start(uint32_t idx, const char *name, void *user)
{
    run_ctx *c = user;
    return cdr_db_file_start(c->db, idx, name, &c->file_ids[idx]);
}

static cdr_err on_file_done(uint32_t idx, const char *name, cdr_file_stats *st, void *user)
{
    run_ctx *c = user;
    (void)name;
    if (c->err)
        return c->err;
    if (c->pre_hashed[idx])
        memcpy(st->sha256, c->pre_sha[idx], 32);
    else if (st->status == CDR_OK) {
        int64_t known = 0;
        cdr_err e = cdr_db_file_known(c->db, st->sha256, &known);
        if (e != CDR_OK)
            return e;
        if (known) {
            /* hashed as it was read (stdin, or a file whose size matched
             * none before: changed since, or of this run) and known */
            c->skip[idx] = 1;
            c->known_run[idx] = known;
            return cdr_db_file_drop(c->db, c->file_ids[idx]);
        }
    }
    return cdr_db_file_finish(c->db, c->file_ids[idx], st);
}

/* The store is encoded and compressed on the rating workers, one part per
 * bucket of subscribers (these run in parallel and only read c); the drain
 * thread appends the parts in order. */
static cdr_err store_record(void **state, const cdr_rated *r, void *user)
{
    run_ctx *c = user;
    cdr_store_part *p = *state;
    cdr_err e = cdr_store_part_add_rated(c->store, &p, r, c->files[r->row.file_index]);
    *state = p;
    return e;
}

static cdr_err store_candidate(void **state, const cdr_candidate *cd, void *user)
{
    run_ctx *c = user;
    cdr_store_part *p = *state;
    cdr_err e = cdr_store_part_add_candidate(c->store, &p, cd);
    *state = p;
    return e;
}

static cdr_err store_end(void *state, void *user)
{
    run_ctx *c = user;
    return cdr_store_part_finish(c->store, state);
}

static int store_append(void *state, void *user)
{
    run_ctx *c = user;
    cdr_err e = cdr_store_append_part(c->store, state);
    if (e != CDR_OK) {
        c->err = e;
        return 1;
    }
    return 0;
}

static void store_free(void *state, void *user)
{
    cdr_store_part_free(state);
}

static int on_record(const cdr_rated *r, void *user)
{
    run_ctx *c = user;
    if (r->status != CDR_RS_UNRATED)
        return 0;
    c->unrated_rows++;
    cdr_csvw *w = c->unrated;
    char buf[32];
    size_t n;
    cdr_csvw_textz(w, c->files[r->row.file_index]);
    cdr_csvw_u64(w, r->row.line);
    cdr_csvw_u64(w, r->row.offset);
    cdr_csvw_text(w, r->row.record_id.p, r->row.record_id.n);
    cdr_csvw_text(w, r->row.msisdn.p, r->row.msisdn.n);
    n = cdr_month_format(r->month, buf);
    cdr_csvw_text(w, buf, n);
    cdr_csvw_textz(w, cdr_service_name(r->row.service));
    cdr_csvw_money(w, r->row.billed);
    cdr_csvw_textz(w, r->unrated);
    if (cdr_csvw_end_row(w) != CDR_OK) {
        c->err = cdr_csvw_status(w);
        return 1;
    }
    return 0;
}

static int on_finding(const cdr_finding *f, void *user)
{
    run_ctx *c = user;
    cdr_err e = cdr_db_add_finding(c->db, f);
    if (e == CDR_OK)
        e = cdr_findings_csv_row(c->findings, f);
    if (e != CDR_OK) {
        c->err = e;
        return 1;
    }
    return 0;
}

static int on_candidate(const cdr_candidate *cd, void *user)
{
    run_ctx *c = user;
    cdr_err e = cdr_db_add_candidate(c->db, cd);
    if (e == CDR_OK)
        e = cdr_candidates_csv_row(c->candidates, cd);
    if (e != CDR_OK) {
        c->err = e;
        return 1;
    }
    c->policy_count[cd->policy]++;
    c->special_count += cd->special != 0;
    if (cd->tier >= 0 && cd->tier <= 4)
        c->tier_count[cd->tier]++;
    return 0;
}

static void yuan(char *buf, cdr_money v)
{
    cdr_money_format_total(v, 2, buf);
}

static cdr_err make_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? CDR_OK : CDR_E_IO;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return CDR_E_IO;
    return CDR_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An error while the tariff may still be loading: a bad tariff is said
 * first, as the error to fix first (1, with *rc its code), else 0. */
static int tariff_failed(cli_bgtariff *b, int *rc)
{
    if (cli_bgtariff_ready(b) == CDR_OK)
        return 0;
    *rc = b->rc;
    return 1;
}

int cmd_run(int argc, char **argv)
{
    const char *tariff_dir = NULL, *db_path = NULL, *out_dir = NULL, *v;
    const char *operator_name = NULL;
    int quiet = 0;
    const char *store_path = NULL;
    char *store_default = NULL;
    int no_store = 0;
    cdr_engine_opts eo;
    cdr_engine_opts_init(&eo);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cli_bgtariff bgt = {0};
    cdr_engine *eng = NULL;
    run_ctx c;
    cdr_file_stats *stats = NULL;
    char err[1024];
    char *cmdline = NULL;
    double t0 = now_s(), t_read = 0, t_rate = 0;
    int run_open = 0;
    int outputs_placed = 0; /* the CSVs were renamed into place, the run is not committed */
    int store_placed = 0;

    memset(&c, 0, sizeof c);
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
        } else if ((v = cli_optval(argc, argv, &i, "--tariff"))) {
            tariff_dir = v;
        } else if ((v = cli_optval(argc, argv, &i, "--db"))) {
            db_path = v;
        } else if ((v = cli_optval(argc, argv, &i, "--out"))) {
            out_dir = v;
        } else if ((v = cli_optval(argc, argv, &i, "--operator"))) {
            operator_name = v;
        } else if ((v = cli_optval(argc, argv, &i, "--month"))) {
            if (cdr_month_parse(v, strlen(v), &eo.month) != CDR_OK) {
                rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (want YYYY-MM)", v);
                goto out;
            }
        } else if ((v = cli_optval(argc, argv, &i, "--store"))) {
            store_path = v;
        } else if (!strcmp(a, "--no-store")) {
            no_store = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            rc = cli_fail(CDR_E_USAGE, "unknown option %s", a);
            goto out;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!tariff_dir || !db_path || !out_dir || nfiles == 0) {
        fputs(usage_text, stderr);
        rc = CDR_E_USAGE;
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(files[i], files[j])) {
                rc = cli_fail(CDR_E_USAGE, "%s is given twice", files[i]);
                goto out;
            }

    /* the command line, for the runs table and reproduction */
    {
        size_t len = 16;
        for (int i = 0; i < argc; i++)
            len += strlen(argv[i]) + 1;
        cmdline = malloc(len);
        if (!cmdline) {
            rc = CDR_E_NOMEM;
            goto out;
        }
        strcpy(cmdline, "cdrecon");
        for (int i = 0; i < argc; i++) {
            strcat(cmdline, " ");
            strcat(cmdline, argv[i]);
        }
    }

    /* the tariff loads on a second thread while the files are hashed and read */
    cli_bgtariff_start(&bgt, tariff_dir);
    c.files = files;
    c.file_ids = calloc((size_t)nfiles, sizeof *c.file_ids);
    c.pre_sha = calloc((size_t)nfiles, sizeof *c.pre_sha);
    c.pre_hashed = calloc((size_t)nfiles, sizeof *c.pre_hashed);
    c.skip = calloc((size_t)nfiles, sizeof *c.skip);
    c.known_run = calloc((size_t)nfiles, sizeof *c.known_run);
    stats = calloc((size_t)nfiles, sizeof *stats);
    if (!c.file_ids || !c.pre_sha || !c.pre_hashed || !c.skip || !c.known_run || !stats) {
        rc = CDR_E_NOMEM;
        goto out;
    }

    if ((rc = cdr_db_open(db_path, &c.db, err, sizeof err)) != CDR_OK) {
        if (tariff_failed(&bgt, &rc))
            goto out;
        cli_fail(rc, "cannot open database %s: %s", db_path, err);
        goto out;
    }
    /* Files already ingested are skipped before they are read. A file is
     * hashed first only when it could be one: when its size is that of a file
     * in the database or of another file of this run (the same content has
     * the same size). Any other file - a new night's files - is hashed while
     * it is read, on the reading thread, and checked again when it is done
     * (on_file_done), so the hash costs no time of its own. */
    int n_new = 0;
    uint64_t *sizes = calloc((size_t)nfiles, sizeof *sizes);
    int *is_reg = calloc((size_t)nfiles, sizeof *is_reg);
    if (!sizes || !is_reg) {
        free(sizes);
        free(is_reg);
        rc = CDR_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < nfiles; i++) {
        struct stat sb;
        if (strcmp(files[i], "-") != 0 && stat(files[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            is_reg[i] = 1;
            sizes[i] = (uint64_t)sb.st_size;
        }
    }
    for (int i = 0; i < nfiles; i++) {
        if (strcmp(files[i], "-") == 0) {
            n_new++;
            continue;
        }
        if (is_reg[i]) {
            int maybe = 0;
            for (int j = 0; j < nfiles && !maybe; j++)
                maybe = j != i && is_reg[j] && sizes[j] == sizes[i];
            if (!maybe && (rc = cdr_db_size_known(c.db, sizes[i], &maybe)) != CDR_OK) {
                cli_fail(rc, "database: %s", cdr_db_message(c.db));
                free(sizes);
                free(is_reg);
                goto out;
            }
            if (!maybe) {
                n_new++; /* hashed as it is read */
                continue;
            }
        }
        uint64_t size;
        if (cdr_file_sha256(files[i], c.pre_sha[i], &size) != CDR_OK) {
            int en = errno;
            free(sizes);
            free(is_reg);
            if (tariff_failed(&bgt, &rc))
                goto out;
            rc = cli_fail(CDR_E_IO, "cannot read %s: %s", files[i], strerror(en));
            goto out;
        }
        c.pre_hashed[i] = 1;
        if ((rc = cdr_db_file_known(c.db, c.pre_sha[i], &c.known_run[i])) != CDR_OK) {
            cli_fail(rc, "database: %s", cdr_db_message(c.db));
            free(sizes);
            free(is_reg);
            goto out;
        }
        for (int j = 0; j < i && !c.known_run[i]; j++)
            if (c.pre_hashed[j] && !c.skip[j] && !memcmp(c.pre_sha[i], c.pre_sha[j], 32)) {
                c.skip[i] = 1;
                if (!quiet)
                    fprintf(stderr, "cdrecon: run: %s has the same content as %s: skipped\n",
                            files[i], files[j]);
            }
        if (c.skip[i]) {
            /* same content as an earlier file of this run */
        } else if (c.known_run[i]) {
            c.skip[i] = 1;
            if (!quiet)
                fprintf(stderr, "cdrecon: run: %s was already ingested (run %lld): skipped\n",
                        files[i], (long long)c.known_run[i]);
        } else {
            n_new++;
        }
    }
    free(sizes);
    free(is_reg);
    if (n_new == 0) {
        if (tariff_failed(&bgt, &rc))
            goto out;
        if (!quiet)
            fprintf(stderr, "cdrecon: run: every file was already ingested; nothing new, "
                    "database and outputs unchanged\n");
        rc = CDR_E_ALREADY;
        goto out;
    }

    if (make_dir(out_dir) != CDR_OK) {
        if (tariff_failed(&bgt, &rc))
            goto out;
        rc = cli_fail(CDR_E_IO, "cannot create output directory %s", out_dir);
        goto out;
    }
    if ((rc = cdr_csvw_open(out_dir, "findings.csv", 0, &c.findings)) != CDR_OK ||
        (rc = cdr_csvw_open(out_dir, "candidates.csv", 0, &c.candidates)) != CDR_OK ||
        (rc = cdr_csvw_open(out_dir, "rejects.csv", 0, &c.rejects)) != CDR_OK ||
        (rc = cdr_csvw_open(out_dir, "unrated.csv", 0, &c.unrated)) != CDR_OK) {
        if (tariff_failed(&bgt, &rc))
            goto out;
        cli_fail(rc, "cannot create outputs in %s", out_dir);
        goto out;
    }
    /* the store: created now, so that a bad path fails before the reading;
     * it gets the tariff when the tariff is ready */
    if (!no_store) {
        if (!store_path) {
            store_default = malloc(strlen(out_dir) + 32);
            if (!store_default) {
                rc = CDR_E_NOMEM;
                goto out;
            }
            sprintf(store_default, "%s/cdrecon.store", out_dir);
            store_path = store_default;
        }
        cdr_store_opts so;
        cdr_store_opts_init(&so);
        char meta[512], mo[8] = "all", tol[32];
        if (eo.month >= 0)
            cdr_month_format(eo.month, mo);
        cdr_money_format(eo.tolerance, 2, tol);
        snprintf(meta, sizeof meta, "cdrecon run; tariff=%s; month=%s; tolerance=%s; "
                 "max_duration=%lld", tariff_dir, mo, tol, (long long)eo.max_duration);
        so.meta = meta;
        so.tmpdir = eo.tmpdir;
        if ((rc = cdr_store_create(store_path, NULL, &so, &c.store)) != CDR_OK) {
            if (tariff_failed(&bgt, &rc))
                goto out;
            cli_fail(rc, "cannot create the store: %s", cdr_store_writer_message(c.store));
            goto out;
        }
    }
    cdr_findings_csv_header(c.findings);
    cdr_candidates_csv_header(c.candidates);
    cdr_rejects_csv_header(c.rejects);
    {
        static const char *uh[] = {"file", "line", "offset", "record_id", "msisdn", "month",
                                   "service", "billed", "reason", NULL};
        for (int i = 0; uh[i]; i++)
            cdr_csvw_textz(c.unrated, uh[i]);
        cdr_csvw_end_row(c.unrated);
    }

    cdr_db_run_info info = {0, CDRECON_VERSION, cmdline, tariff_dir};
    int64_t run_id = 0;
    if ((rc = cdr_db_begin_run(c.db, &info, &run_id)) != CDR_OK) {
        if (tariff_failed(&bgt, &rc))
            goto out;
        cli_fail(rc, "database: %s", cdr_db_message(c.db));
        goto out;
    }
    run_open = 1;
    (void)operator_name;

    /* the tariff is still loading: the engine takes it after the reading */
    if ((rc = cdr_engine_new(NULL, &eo, &eng)) != CDR_OK)
        goto out;

    /* Read the new files. */
    cli_ingest in;
    memset(&in, 0, sizeof in);
    in.engine = eng;
    cdr_reader_opts_init(&in.ro);
    /* The files not hashed above are hashed as they are read. */
    c.hash_as_read = calloc((size_t)nfiles, sizeof *c.hash_as_read);
    if (!c.hash_as_read) {
        rc = CDR_E_NOMEM;
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        c.hash_as_read[i] = !c.pre_hashed[i];
    in.hash = c.hash_as_read;
    in.stats = stats;
    in.skip = c.skip;
    in.on_reject = on_reject;
    in.on_file_start = on_file_start;
    in.on_file_done = on_file_done;
    in.user = &c;
    in.tariff = &bgt;
    rc = cli_ingest_files(&in, files, nfiles);
    if (!(t = cli_bgtariff_take(&bgt))) { /* a bad tariff is said first */
        rc = bgt.rc;
        goto out;
    }
    c.t = t;
    cdr_engine_set_tariff(eng, t);
    if (c.store)
        cdr_store_set_tariff(c.store, t);
    if (c.err != CDR_OK && (rc == CDR_OK || rc == CDR_E_INTERRUPTED))
        rc = c.err;
    if (rc != CDR_OK) {
        /* A file that fails as a whole (corrupt gzip, bad header, read error)
         * fails the run: a month with a missing file would rate bundles wrong. */
        if (rc == CDR_E_DB || rc == CDR_E_IO || rc == CDR_E_NOMEM)
            cli_fail(rc, "run stopped%s%s", c.db ? ": " : "", c.db ? cdr_db_message(c.db) : "");
        else
            cli_err("run stopped: no results written; the database is unchanged");
        goto out;
    }
    for (int i = 0; i < nfiles; i++)
        if (c.skip[i] && !c.pre_hashed[i]) {
            cdr_engine_exclude_file(eng, (uint32_t)i);
            if (!quiet)
                fprintf(stderr, "cdrecon: run: %s was already ingested (run %lld): skipped\n",
                        files[i], (long long)c.known_run[i]);
        }

    /* only the unrated records are wanted one by one; the store takes every
     * record on the workers */
    cdr_engine_sink sink = {.on_record = on_record,
                            .on_finding = on_finding,
                            .on_candidate = on_candidate,
                            .user = &c,
                            .record_statuses = 1u << CDR_RS_UNRATED};
    if (c.store) {
        sink.work_record = store_record;
        sink.work_candidate = store_candidate;
        sink.work_end = store_end;
        sink.on_work = store_append;
        sink.free_work = store_free;
    }
    cdr_engine_totals tot;
    t_read = now_s() - t0;
    rc = cdr_engine_finish(eng, &sink, &tot);
    t_rate = now_s() - t0 - t_read;
    if (rc == CDR_E_INTERRUPTED && c.err)
        rc = c.err;
    if (rc != CDR_OK) {
        cli_fail(rc, "rating failed: %s", *cdr_engine_errmsg(eng) ? cdr_engine_errmsg(eng)
                                          : c.store && *cdr_store_writer_message(c.store)
                                              ? cdr_store_writer_message(c.store)
                                          : c.db ? cdr_db_message(c.db) : "");
        goto out;
    }

    /* Outputs first (renamed into place), the database commit last: a run
     * killed before the commit is redone whole by the next run. */
    /* From here a failure removes the outputs again: set before the
     * commits, as a commit can fail after its rename (fsync of the
     * directory) and leave the file under its final name. */
    outputs_placed = 1;
    cdr_csvw *ws[4] = {c.findings, c.candidates, c.rejects, c.unrated};
    for (int i = 0; i < 4; i++)
        if ((rc = cdr_csvw_commit(ws[i])) != CDR_OK) {
            cli_fail(rc, "cannot write outputs: %s", cdr_csvw_message(ws[i]));
            goto out;
        }
    store_placed = c.store != NULL;
    if (c.store && (rc = cdr_store_commit(c.store)) != CDR_OK) {
        cli_fail(rc, "cannot write the store: %s", cdr_store_writer_message(c.store));
        goto out;
    }
    cdr_db_run_end end = {c.rejected ? CDR_E_REJECTS : CDR_OK, c.unrated_rows, 0};
    if ((rc = cdr_db_commit_run(c.db, &end)) != CDR_OK) {
        cli_fail(rc, "database commit failed: %s", cdr_db_message(c.db));
        goto out;
    }
    outputs_placed = 0;
    run_open = 0;

    if (!quiet) {
        uint64_t rd = 0, acc = 0, rej = 0, blank = 0, nread = 0, ngz = 0, nskip = 0;
        for (int i = 0; i < nfiles; i++) {
            if (c.skip[i]) {
                nskip++;
                continue;
            }
            nread++;
            ngz += stats[i].gzip != 0;
            rd += stats[i].rows_read;
            acc += stats[i].rows_accepted;
            rej += stats[i].rows_rejected;
            blank += stats[i].blank_lines;
        }
        char a[32], b[32], d[32];
        printf("cdrecon run %lld  (database %s, outputs in %s)\n", (long long)run_id, db_path,
               out_dir);
        printf("files       %llu read (%llu gzip), %llu skipped as already ingested\n",
               (unsigned long long)nread, (unsigned long long)ngz, (unsigned long long)nskip);
        printf("rows        %llu read = %llu accepted + %llu rejected; %llu blank lines\n",
               (unsigned long long)rd, (unsigned long long)acc, (unsigned long long)rej,
               (unsigned long long)blank);
        printf("records     %llu rated, %llu duplicates, %llu unrated, %llu out of scope\n",
               (unsigned long long)tot.records, (unsigned long long)tot.duplicates,
               (unsigned long long)tot.unrated, (unsigned long long)tot.out_of_scope);
        printf("findings    %llu\n", (unsigned long long)tot.findings);
        for (int k = 0; k < CDR_CAT__COUNT; k++) {
            if (!tot.by_category[k])
                continue;
            yuan(a, tot.amount_by_category[k]);
            if (k == CDR_CAT_NONE)
                printf("  %-22s %8llu\n", "(flags only)", (unsigned long long)tot.by_category[k]);
            else
                printf("  %-22s %8llu  %12s yuan\n", cdr_category_name((cdr_category)k),
                       (unsigned long long)tot.by_category[k], a);
        }
        yuan(a, tot.overcharge);
        yuan(b, tot.refund);
        printf("candidates  %llu subscriber-months: overcharge %s yuan, refund (x2) %s yuan\n",
               (unsigned long long)tot.candidates, a, b);
        printf("            refund_first %llu, verify_first %llu, special customers %llu; "
               "tiers 0:%llu 1:%llu 2:%llu 3:%llu 4:%llu\n",
               (unsigned long long)c.policy_count[0], (unsigned long long)c.policy_count[1],
               (unsigned long long)c.special_count, (unsigned long long)c.tier_count[0],
               (unsigned long long)c.tier_count[1], (unsigned long long)c.tier_count[2],
               (unsigned long long)c.tier_count[3], (unsigned long long)c.tier_count[4]);
        yuan(d, tot.leakage);
        printf("leakage     %llu records undercharged by %s yuan (reported, never refunded)\n",
               (unsigned long long)tot.leakage_records, d);
        printf("time        %.2f s: reading %.2f s, rating and writing %.2f s, commit %.2f s%s\n",
               now_s() - t0, t_read, t_rate, now_s() - t0 - t_read - t_rate,
               tot.spilled ? " (spilled to disk)" : "");
    }
    rc = c.rejected ? CDR_E_REJECTS : CDR_OK;
out:
    if (outputs_placed) {
        /* The database refused the run: outputs of a run that did not happen
         * must not stand under their final names. */
        static const char *names[] = {"findings.csv", "candidates.csv", "rejects.csv",
                                      "unrated.csv"};
        /* (no allocation here: this path runs when memory ran out) */
        int dfd = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; dfd >= 0 && i < sizeof names / sizeof *names; i++)
            unlinkat(dfd, names[i], 0);
        if (dfd >= 0)
            close(dfd);
        if (store_placed)
            unlink(store_path);
        cli_err("outputs of the failed run were removed; the database is unchanged");
    }
    if (run_open)
        cdr_db_rollback_run(c.db);
    cdr_csvw_free(c.findings);
    cdr_csvw_free(c.candidates);
    cdr_csvw_free(c.rejects);
    cdr_csvw_free(c.unrated);
    cdr_store_writer_free(c.store);
    free(store_default);
    cdr_db_close(c.db);
    cdr_engine_free(eng);
    cli_bgtariff_join(&bgt); /* an early exit: wait for the loader */
    cdr_tariff_free(bgt.t);
    cdr_tariff_free(t);
    free(stats);
    free(c.file_ids);
    free(c.pre_sha);
    free(c.pre_hashed);
    free(c.skip);
    free(c.hash_as_read);
    free(c.known_run);
    free(cmdline);
    free(files);
    return rc;
}
