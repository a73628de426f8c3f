/*
 * cdrecon cluster — a sharded directory (docs/cluster.md).
 *
 *   cdrecon cluster init --parts P DIR
 *   cdrecon cluster report --cluster DIR --out OUT [--month YYYY-MM] [--quiet]
 *   cdrecon cluster shard --cluster DIR MSISDN...
 *
 * `report` is the last stage of a night: the outputs of one machine's run
 * over the night's files, from every shard. The night is the set of files
 * routed since the last report (DIR/nights, the ledger, says which files
 * each night had); when no file is new, the last night is reported again,
 * so a rerun writes the same bytes. findings, candidates and unrated are
 * the current ones of the months the night's shard runs touched; changes
 * are those runs' changes; rejects are the night's files' rejected rows.
 * Each shard's rows come out in the subscribers' order (h, msisdn, month)
 * and a subscriber lives in one shard, so a merge of the shards' streams by
 * (h, msisdn) is the order one machine writes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/cluster.h"
#include "cdrecon/db.h"
#include "cdrecon/engine.h"
#include "cdrecon/outcsv.h"
#include "cli.h"
#include "ingest.h"
#include "opts.h"
#include "outputs.h"
#include "paths.h"

enum { O_PARTS = 1, O_OUT };
static const cli_opt init_opts[] = {
    {"--parts", 0, CLI_OPT_VALUE, "P", "init: the number of shards, 1 to 4096 (fixed)", O_PARTS},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt dir_opts[] = {
    {"--cluster", 0, CLI_OPT_VALUE, "DIR", "report, shard: the sharded directory", CLI_O_CLUSTER},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt report_opts[] = {
    {"--out", 0, CLI_OPT_VALUE, "OUT", "report: the output directory", O_OUT},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM", "report: only this bill month", CLI_O_MONTH},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const init_tables[] = {init_opts, NULL};
static const cli_opt *const shard_tables[] = {dir_opts, NULL};
static const cli_opt *const report_tables[] = {dir_opts, report_opts, cli_quiet_opts, NULL};
static const cli_opt *const cluster_tables[] = {init_opts, dir_opts, report_opts, cli_quiet_opts,
                                                NULL};
#define CLUSTER_TAIL                                                                 \
    "exit: 0 done; 1 usage; 11 a shard has not rated what was routed to it;\n"       \
    "other codes: docs/exit-codes.md, docs/cluster.md\n"
static const cli_spec cluster_spec = {
    "cluster",
    "cdrecon cluster init --parts P DIR\n"
    "cdrecon cluster report --cluster DIR --out OUT [--month YYYY-MM] [--quiet]\n"
    "cdrecon cluster shard --cluster DIR MSISDN...",
    "A sharded directory: P shards, each with its own database and month state;\n"
    "a subscriber's shard is FNV-1a-64 of the normalised msisdn, modulo P.\n"
    "  init      make DIR a sharded directory of P shards (1 to 4096; fixed)\n"
    "  report    the night over all shards, as one machine's `run` would write it:\n"
    "            findings.csv, candidates.csv, unrated.csv, changes.csv, rejects.csv\n"
    "            in OUT, and the summary; a rerun writes the same\n"
    "  shard     print each number's shard\n"
    "The stages of a night: `cdrecon split --cluster DIR FILES` (route),\n"
    "`cdrecon run --cluster DIR --shard K` for every K (rate), then report.\n",
    cluster_tables, CLUSTER_TAIL, 0,
};
static const cli_spec init_spec = {
    "cluster init", "cdrecon cluster init --parts P DIR",
    "Make DIR a sharded directory of P shards.\n", init_tables, CLUSTER_TAIL,
    CLI_ARGS_DASH_OPT,
};
static const cli_spec shard_spec = {
    "cluster shard", "cdrecon cluster shard --cluster DIR MSISDN...",
    "Print each number's shard.\n", shard_tables, CLUSTER_TAIL, CLI_ARGS_DASH_OPT,
};
static const cli_spec report_spec = {
    "cluster report",
    "cdrecon cluster report --cluster DIR --out OUT [--month YYYY-MM] [--quiet]",
    "The night over all shards, as one machine's `run` would write it.\n", report_tables,
    CLUSTER_TAIL, CLI_ARGS_NO_POS,
};

/* ---------------------------------------------------------------- init */

static int cluster_init(int argc, char **argv)
{
    const char *dir = NULL;
    long parts = 0;
    cli_args args;
    cli_args_init(&args, &init_spec, argc - 1, argv + 1);
    for (int id; (id = cli_args_next(&args)) != CLI_ARG_END;) {
        const char *v = args.val;
        char *end;
        switch (id) {
        case CLI_ARG_HELP: return CDR_OK;
        case CLI_ARG_ERR: return CDR_E_USAGE;
        case O_PARTS:
            errno = 0;
            parts = strtol(v, &end, 10);
            if (errno || end == v || *end || parts < 1 || parts > (long)CDR_CLUSTER_MAX_PARTS)
                return cli_fail(CDR_E_USAGE, "--parts: a number from 1 to %u",
                                CDR_CLUSTER_MAX_PARTS);
            break;
        case CLI_ARG_POS:
            if (dir)
                return cli_fail(CDR_E_USAGE, "one directory only");
            dir = v;
            break;
        }
    }
    if (!dir || !parts)
        return cli_fail(CDR_E_USAGE, "usage: cdrecon cluster init --parts P DIR");
    char err[1024];
    cdr_err e = cdr_cluster_init(dir, (uint32_t)parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    printf("%s: a sharded directory of %ld shards\n", dir, parts);
    return CDR_OK;
}

/* ---------------------------------------------------------------- shard */

static int shard_print(const char *dir, const char **nums, int n);

static int cluster_shard(int argc, char **argv)
{
    const char *dir = NULL;
    const char **nums = calloc((size_t)argc, sizeof *nums);
    int n = 0;
    if (!nums)
        return CDR_E_NOMEM;
    cli_args args;
    cli_args_init(&args, &shard_spec, argc - 1, argv + 1);
    for (int id; (id = cli_args_next(&args)) != CLI_ARG_END;) {
        if (id == CLI_ARG_HELP || id == CLI_ARG_ERR) {
            free(nums);
            return id == CLI_ARG_HELP ? CDR_OK : CDR_E_USAGE;
        }
        if (id == CLI_O_CLUSTER)
            dir = args.val;
        else if (id == CLI_ARG_POS)
            nums[n++] = args.val;
    }
    int rc = shard_print(dir, nums, n);
    free(nums);
    return rc;
}

/* Each number of nums[0..n-1] with its shard of the sharded directory dir. */
static int shard_print(const char *dir, const char **nums, int n)
{
    if (!dir || n == 0)
        return cli_fail(CDR_E_USAGE, "usage: cdrecon cluster shard --cluster DIR MSISDN...");
    uint32_t parts;
    char err[1024];
    cdr_err e = cdr_cluster_parts(dir, &parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    for (int i = 0; i < n; i++) {
        cdr_str ns;
        if (cdr_number_normalise(nums[i], strlen(nums[i]), &ns) != CDR_OK)
            return cli_fail(CDR_E_USAGE, "not a phone number (digits, optional +)");
        printf("%.*s %u\n", (int)ns.n, ns.p, cdr_shard_of(ns.p, ns.n, parts));
    }
    return CDR_OK;
}

/* ---------------------------------------------------------------- report */

typedef struct night_file {
    cdr_route_mark m;
} night_file;

typedef struct report_ctx {
    const char *dir, *out_dir;
    uint32_t parts;
    int quiet;
    cdr_month month; /* --month, or -1 */
    night_file *files;
    size_t nfiles;
    const char **shas; /* the night's files (hex) */
    long night;        /* its number in the ledger */
    int new_night;     /* not in the ledger yet */
    /* per shard: the night's runs */
    int64_t **runs;
    size_t *nruns;
    cdr_month *months;
    size_t nmonths;
    /* the merge */
    FILE **tmp;        /* one per shard, for the kind being written */
    int kind;
    uint32_t cur_shard;
    cdr_err err;
    cli_outputs out;
} report_ctx;

static int cmp_files(const void *a, const void *b)
{
    const night_file *x = a, *y = b;
    int c = strcmp(x->m.name, y->m.name);
    return c ? c : strcmp(x->m.sha256, y->m.sha256);
}

/* The ledger: lines "night N SHA". */
typedef struct ledger {
    long *night;
    char (*sha)[65];
    size_t n, cap;
    long last;
} ledger;

static cdr_err ledger_read(const char *dir, ledger *l)
{
    char p[PATH_MAX];
    memset(l, 0, sizeof *l);
    snprintf(p, sizeof p, "%s/nights", dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return errno == ENOENT ? CDR_OK : cli_fail(CDR_E_IO, "cannot read %s: %s", p,
                                                  strerror(errno));
    char line[200];
    long n;
    char sha[65];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "night %ld %64s", &n, sha) != 2 || strlen(sha) != 64) {
            fclose(f);
            return cli_fail(CDR_E_PARSE, "%s: not a ledger line: %.40s", p, line);
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 256;
            long *a = realloc(l->night, nc * sizeof *a);
            if (a)
                l->night = a;
            char(*b)[65] = realloc(l->sha, nc * sizeof *b);
            if (b)
                l->sha = b;
            if (!a || !b) {
                fclose(f);
                return CDR_E_NOMEM;
            }
            l->cap = nc;
        }
        l->night[l->n] = n;
        memcpy(l->sha[l->n], sha, 65);
        l->n++;
        if (n > l->last)
            l->last = n;
    }
    fclose(f);
    return CDR_OK;
}

static int ledger_has(const ledger *l, const char *sha, long *night)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->sha[i], sha)) {
            if (night)
                *night = l->night[i];
            return 1;
        }
    return 0;
}

/* The ledger again, with the new night's files (temporary file, rename). */
static cdr_err ledger_write(report_ctx *r, const ledger *l)
{
    char p[PATH_MAX], t[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/nights", r->dir);
    snprintf(t, sizeof t, "%s/.nights.tmp.%ld", r->dir, (long)getpid());
    FILE *f = fopen(t, "w");
    if (!f)
        return cli_fail(CDR_E_IO, "cannot write %s: %s", t, strerror(errno));
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "night %ld %s\n", l->night[i], l->sha[i]);
    for (size_t i = 0; i < r->nfiles; i++)
        fprintf(f, "night %ld %s\n", r->night, r->files[i].m.sha256);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad || rename(t, p) != 0) {
        unlink(t);
        return cli_fail(CDR_E_IO, "cannot write %s: %s", p, strerror(errno));
    }
    return CDR_OK;
}

/* The night's files: the routed ones not in the ledger, else the last
 * night's. */
static cdr_err night_files(report_ctx *r)
{
    char p[PATH_MAX], err[1024];
    ledger l;
    cdr_err e = ledger_read(r->dir, &l);
    if (e != CDR_OK)
        goto out;
    snprintf(p, sizeof p, "%s/routed", r->dir);
    DIR *d = opendir(p);
    if (!d) {
        e = cli_fail(CDR_E_IO, "cannot read %s: %s", p, strerror(errno));
        goto out;
    }
    size_t cap = 0;
    struct dirent *de;
    for (int pass = 0; pass < 2 && e == CDR_OK; pass++) {
        /* pass 0: files not in the ledger; pass 1 (none): the last night's */
        if (pass == 1 && (r->nfiles || !l.n))
            break;
        rewinddir(d);
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n != 64 + 5 || strcmp(de->d_name + 64, ".done"))
                continue;
            char sha[65];
            memcpy(sha, de->d_name, 64);
            sha[64] = '\0';
            long nn = 0;
            int in = ledger_has(&l, sha, &nn);
            if (pass == 0 ? in : !(in && nn == l.last))
                continue;
            if (r->nfiles == cap) {
                cap = cap ? cap * 2 : 64;
                night_file *v = realloc(r->files, cap * sizeof *v);
                if (!v) {
                    e = CDR_E_NOMEM;
                    break;
                }
                r->files = v;
            }
            if ((e = cdr_route_mark_read(r->dir, sha, &r->files[r->nfiles].m, err,
                                         sizeof err)) != CDR_OK) {
                cli_fail(e, "%s", err);
                break;
            }
            r->nfiles++;
        }
        r->new_night = pass == 0;
        r->night = pass == 0 ? l.last + 1 : l.last;
    }
    closedir(d);
    if (e != CDR_OK)
        goto out;
    if (r->nfiles)
        qsort(r->files, r->nfiles, sizeof *r->files, cmp_files);
    r->shas = calloc(r->nfiles + 1, sizeof *r->shas);
    if (!r->shas) {
        e = CDR_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->nfiles; i++)
        r->shas[i] = r->files[i].m.sha256;
    if (r->new_night && r->nfiles)
        e = ledger_write(r, &l) == CDR_OK ? CDR_OK : CDR_E_IO;
    /* (written before the outputs: a report killed after it reports the
     * same night again, now found as the last one) */
out:
    free(l.night);
    free(l.sha);
    return e;
}

static int add_month(report_ctx *r, cdr_month m)
{
    for (size_t i = 0; i < r->nmonths; i++)
        if (r->months[i] == m)
            return 0;
    cdr_month *v = realloc(r->months, (r->nmonths + 1) * sizeof *v);
    if (!v)
        return -1;
    r->months = v;
    r->months[r->nmonths++] = m;
    return 0;
}

typedef struct runs_acc {
    report_ctx *r;
    uint32_t k;
} runs_acc;

static int on_run(int64_t run_id, const char *months, void *user)
{
    runs_acc *a = user;
    report_ctx *r = a->r;
    int64_t *v = realloc(r->runs[a->k], (r->nruns[a->k] + 1) * sizeof *v);
    if (!v)
        return 1;
    r->runs[a->k] = v;
    v[r->nruns[a->k]++] = run_id;
    for (const char *p = months; *p;) {
        const char *q = strchr(p, ';');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        cdr_month m;
        if (r->month < 0 && cdr_month_parse(p, n, &m) == CDR_OK && add_month(r, m) != 0)
            return 1;
        p += n + (q != NULL);
    }
    return 0;
}

static void shard_db(const report_ctx *r, uint32_t k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shard-%u/cdrecon.db", r->dir, k);
}

/* Every shard rated what was routed to it for the night; its runs. */
static cdr_err night_runs(report_ctx *r)
{
    char p[PATH_MAX], err[1024];
    for (uint32_t k = 0; k < r->parts; k++) {
        for (size_t i = 0; i < r->nfiles; i++) {
            snprintf(p, sizeof p, "%s/shard-%u/incoming/%s.piece", r->dir, k,
                     r->files[i].m.sha256);
            if (access(p, F_OK) == 0)
                return cli_fail(CDR_E_NOTFOUND, "shard %u has not rated %s yet (its piece %s "
                                "waits): run `cdrecon run --cluster %s --shard %u` first",
                                k, r->files[i].m.name, p, r->dir, k);
        }
        shard_db(r, k, p, sizeof p);
        if (access(p, F_OK) != 0 || r->nfiles == 0)
            continue;
        cdr_db *db = NULL;
        cdr_err e = cdr_db_open_readonly(p, &db, err, sizeof err);
        if (e != CDR_OK)
            return cli_fail(e, "cannot open database %s: %s", p, err);
        runs_acc a = {r, k};
        e = cdr_db_runs_of_files(db, r->shas, r->nfiles, on_run, &a);
        if (e != CDR_OK)
            cli_fail(e, "database %s: %s", p, cdr_db_message(db));
        cdr_db_close(db);
        if (e != CDR_OK)
            return e;
    }
    if (r->month >= 0 && add_month(r, r->month) != 0)
        return CDR_E_NOMEM;
    return CDR_OK;
}

/* ---- the merge ---- */

/* A row in a shard's temporary stream: h (cdr_msisdn_hash: the database
 * orders by it, unsigned), msisdn, row bytes. */
static int row_done(void *user, int kind, cdr_str msisdn)
{
    report_ctx *r = user;
    cdr_csvw *w = r->out.w[kind];
    size_t n;
    const char *row = cdr_csvw_memory(w, &n);
    uint64_t h = cdr_msisdn_hash(msisdn.p, msisdn.n);
    uint32_t ml = (uint32_t)msisdn.n, rl = (uint32_t)n;
    FILE *f = r->tmp[(size_t)kind * r->parts + r->cur_shard];
    if (fwrite(&h, sizeof h, 1, f) != 1 || fwrite(&ml, sizeof ml, 1, f) != 1 ||
        fwrite(msisdn.p, 1, ml, f) != ml || fwrite(&rl, sizeof rl, 1, f) != 1 ||
        fwrite(row, 1, rl, f) != rl) {
        r->err = CDR_E_IO;
        return 1;
    }
    cdr_csvw_memory_reset(w);
    return 0;
}

typedef struct cursor {
    FILE *f;
    uint64_t h;
    char *m;
    uint32_t ml;
    char *row;
    uint32_t rl, mcap, rcap;
    int have;
} cursor;

/* *buf (*cap bytes) holds at least n bytes; -1 when memory ran out. */
static int grow(char **buf, uint32_t *cap, uint32_t n)
{
    if (n <= *cap)
        return 0;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static int cur_next(cursor *c)
{
    c->have = 0;
    if (fread(&c->h, sizeof c->h, 1, c->f) != 1)
        return feof(c->f) ? 0 : -1;
    if (fread(&c->ml, sizeof c->ml, 1, c->f) != 1)
        return -1;
    if (grow(&c->m, &c->mcap, c->ml) != 0)
        return -1;
    if (fread(c->m, 1, c->ml, c->f) != c->ml || fread(&c->rl, sizeof c->rl, 1, c->f) != 1)
        return -1;
    if (grow(&c->row, &c->rcap, c->rl) != 0)
        return -1;
    if (fread(c->row, 1, c->rl, c->f) != c->rl)
        return -1;
    c->have = 1;
    return 0;
}

static int cur_less(const cursor *a, const cursor *b)
{
    if (a->h != b->h)
        return a->h < b->h;
    size_t n = a->ml < b->ml ? a->ml : b->ml;
    int c = memcmp(a->m, b->m, n);
    return c ? c < 0 : a->ml < b->ml;
}

static void heap_down(cursor **hp, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cur_less(hp[l], hp[m]))
            m = l;
        if (l + 1 < n && cur_less(hp[l + 1], hp[m]))
            m = l + 1;
        if (m == i)
            return;
        cursor *t = hp[i];
        hp[i] = hp[m];
        hp[m] = t;
        i = m;
    }
}

/* Merge the shards' streams into w. */
static cdr_err merge(report_ctx *r, cdr_csvw *w)
{
    cursor *cs = calloc(r->parts, sizeof *cs);
    cursor **hp = calloc(r->parts, sizeof *hp);
    cdr_err e = cs && hp ? CDR_OK : CDR_E_NOMEM;
    size_t n = 0;
    for (uint32_t k = 0; e == CDR_OK && k < r->parts; k++) {
        cs[k].f = r->tmp[k];
        rewind(cs[k].f);
        if (cur_next(&cs[k]) != 0)
            e = CDR_E_IO;
        else if (cs[k].have)
            hp[n++] = &cs[k];
    }
    for (size_t i = n; i-- > 0;)
        heap_down(hp, n, i);
    while (e == CDR_OK && n) {
        cursor *c = hp[0];
        if (cdr_csvw_raw_rows(w, c->row, c->rl, 1) != CDR_OK) {
            e = cdr_csvw_status(w);
            break;
        }
        if (cur_next(c) != 0) {
            e = CDR_E_IO;
            break;
        }
        if (!c->have)
            hp[0] = hp[--n];
        heap_down(hp, n, 0);
    }
    for (uint32_t k = 0; cs && k < r->parts; k++) {
        free(cs[k].m);
        free(cs[k].row);
    }
    free(cs);
    free(hp);
    return e;
}

/* Every shard's rows to its streams (one per output), then the merges. */
static cdr_err write_outputs(report_ctx *r, cdr_csvw **final)
{
    char p[PATH_MAX], err[1024];
    cdr_err e = CDR_OK;
    size_t nt = (size_t)CLI_OUT__COUNT * r->parts;
    FILE **all = calloc(nt, sizeof *all);
    if (!all)
        return CDR_E_NOMEM;
    for (size_t i = 0; i < nt && e == CDR_OK; i++)
        if (!(all[i] = tmpfile()))
            e = cli_fail(CDR_E_IO, "cannot create a temporary file: %s", strerror(errno));
    for (int k = 0; k < CLI_OUT__COUNT && e == CDR_OK; k++)
        e = cdr_csvw_open_memory(&r->out.w[k]);
    r->out.row_done = row_done;
    r->out.user = r;
    for (uint32_t k = 0; k < r->parts && e == CDR_OK; k++) {
        shard_db(r, k, p, sizeof p);
        if (access(p, F_OK) != 0)
            continue;
        cdr_db *db = NULL;
        if ((e = cdr_db_open_readonly(p, &db, err, sizeof err)) != CDR_OK) {
            cli_fail(e, "cannot open database %s: %s", p, err);
            break;
        }
        r->cur_shard = k;
        r->tmp = all; /* row_done picks all[kind * parts + shard] */
        e = cli_outputs_from_db(&r->out, db, r->months, r->nmonths, r->runs[k], r->nruns[k]);
        if (e != CDR_OK && r->err == CDR_OK)
            cli_fail(e, "database %s: %s", p, cdr_db_message(db));
        cdr_db_close(db);
        if (r->err != CDR_OK) {
            e = cli_fail(r->err, "cannot write a temporary file: %s", strerror(errno));
            break;
        }
    }
    for (int kind = 0; kind < CLI_OUT__COUNT && e == CDR_OK; kind++) {
        r->tmp = all + (size_t)kind * r->parts;
        if ((e = merge(r, final[kind])) != CDR_OK)
            cli_fail(e, "cannot merge %s: %s", cli_out_names[kind],
                     cdr_csvw_status(final[kind]) ? cdr_csvw_message(final[kind])
                                                  : strerror(errno));
    }
    for (size_t i = 0; i < nt; i++)
        if (all[i])
            fclose(all[i]);
    free(all);
    r->tmp = NULL;
    for (int k = 0; k < CLI_OUT__COUNT; k++) {
        cdr_csvw_free(r->out.w[k]);
        r->out.w[k] = NULL;
    }
    return e;
}

/* The night's rejected rows, file by file (name order). */
static cdr_err write_rejects(report_ctx *r, cdr_csvw *w, uint64_t *n)
{
    char p[PATH_MAX];
    char *buf = malloc(1 << 16);
    if (!buf)
        return CDR_E_NOMEM;
    cdr_err e = CDR_OK;
    *n = 0;
    for (size_t i = 0; i < r->nfiles && e == CDR_OK; i++) {
        const cdr_route_mark *m = &r->files[i].m;
        if (strcmp(m->status, "routed") != 0)
            continue;
        snprintf(p, sizeof p, "%s/routed/%s.rejects", r->dir, m->sha256);
        FILE *f = fopen(p, "r");
        if (!f) {
            e = cli_fail(CDR_E_IO, "cannot read %s: %s", p, strerror(errno));
            break;
        }
        size_t got;
        while ((got = fread(buf, 1, 1 << 16, f)) > 0)
            if (cdr_csvw_raw(w, buf, got) != CDR_OK)
                break;
        if (ferror(f))
            e = cli_fail(CDR_E_IO, "cannot read %s: %s", p, strerror(errno));
        fclose(f);
        *n += m->st.rows_rejected;
    }
    free(buf);
    if (e == CDR_OK && (e = cdr_csvw_status(w)) != CDR_OK)
        cli_fail(e, "%s", cdr_csvw_message(w));
    return e;
}

static void months_text(const report_ctx *r, char *buf, size_t len)
{
    cdr_month *m = malloc((r->nmonths + 1) * sizeof *m);
    size_t k = 0;
    buf[0] = '\0';
    if (!m)
        return;
    memcpy(m, r->months, r->nmonths * sizeof *m);
    for (size_t i = 1; i < r->nmonths; i++) /* (a handful: insertion sort) */
        for (size_t j = i; j > 0 && m[j] < m[j - 1]; j--) {
            cdr_month t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    for (size_t i = 0; i < r->nmonths && k + 9 < len; i++) {
        if (i)
            buf[k++] = ';';
        k += cdr_month_format(m[i], buf + k);
        buf[k] = '\0';
    }
    free(m);
}

static void print_report(const report_ctx *r, uint64_t nrej)
{
    uint64_t routed = 0, same = 0, gz = 0, rd = 0, acc = 0, rej = 0, blank = 0, runs = 0;
    uint64_t shards = 0, skipped = 0, profiled = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const cdr_route_mark *m = &r->files[i].m;
        if (strcmp(m->status, "routed") != 0) {
            same++;
            continue;
        }
        routed++;
        gz += m->st.gzip != 0;
        rd += m->st.rows_read;
        acc += m->st.rows_accepted;
        rej += m->st.rows_rejected;
        skipped += m->st.rows_skipped;
        profiled += m->profile[0] != 0;
        blank += m->st.blank_lines;
    }
    for (uint32_t k = 0; k < r->parts; k++) {
        runs += r->nruns[k];
        shards += r->nruns[k] != 0;
    }
    char mt[1024];
    months_text(r, mt, sizeof mt);
    printf("cdrecon cluster report, night %ld  (%s, %u shards; outputs in %s)\n", r->night,
           r->dir, r->parts, r->out_dir);
    printf("files       %llu routed (%llu gzip), %llu with the content of a file routed "
           "before\n",
           (unsigned long long)routed, (unsigned long long)gz, (unsigned long long)same);
    char sk[64] = "";
    if (profiled) /* (split read files through a profile: it may have skipped records) */
        snprintf(sk, sizeof sk, " + %llu skipped", (unsigned long long)skipped);
    printf("rows        %llu read = %llu accepted + %llu rejected%s; %llu blank lines\n",
           (unsigned long long)rd, (unsigned long long)acc, (unsigned long long)rej, sk,
           (unsigned long long)blank);
    printf("shards      %llu runs in %llu of %u shards\n", (unsigned long long)runs,
           (unsigned long long)shards, r->parts);
    printf("rejects     %llu rows (rejects.csv)\n", (unsigned long long)nrej);
    cli_outputs_print_month(&r->out.tot, mt);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cluster_report(int argc, char **argv)
{
    report_ctx r;
    memset(&r, 0, sizeof r);
    r.month = -1;
    cli_args args;
    cli_args_init(&args, &report_spec, argc - 1, argv + 1);
    for (int id; (id = cli_args_next(&args)) != CLI_ARG_END;) {
        cdr_err e;
        switch (id) {
        case CLI_ARG_HELP: return CDR_OK;
        case CLI_ARG_ERR: return CDR_E_USAGE;
        case CLI_O_CLUSTER: r.dir = args.val; break;
        case O_OUT: r.out_dir = args.val; break;
        case CLI_O_MONTH:
            if ((e = cli_month_value(args.val, &r.month)) != CDR_OK)
                return e;
            break;
        case CLI_O_QUIET: r.quiet = 1; break;
        }
    }
    if (!r.dir || !r.out_dir)
        return cli_fail(CDR_E_USAGE, "usage: cdrecon cluster report --cluster DIR --out OUT "
                        "[--month YYYY-MM]");
    char err[1024];
    cdr_err e = cdr_cluster_parts(r.dir, &r.parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    raise_fd_limit();
    cli_outdir od = {-1, NULL};
    cdr_csvw *fw[CLI_OUT__COUNT] = {NULL}, *rw = NULL;
    r.runs = calloc(r.parts, sizeof *r.runs);
    r.nruns = calloc(r.parts, sizeof *r.nruns);
    uint64_t nrej = 0;
    if (!r.runs || !r.nruns) {
        e = CDR_E_NOMEM;
        goto out;
    }
    if ((e = night_files(&r)) != CDR_OK || (e = night_runs(&r)) != CDR_OK)
        goto out;
    if ((e = cli_outdir_open(&od, r.out_dir, CDR_DIR_CREATE, err, sizeof err)) != CDR_OK) {
        cli_fail(e, "output directory: %s", err);
        goto out;
    }
    for (int k = 0; k < CLI_OUT__COUNT && e == CDR_OK; k++)
        e = cli_outdir_csvw(&od, cli_out_names[k], 0, &fw[k], err, sizeof err);
    if (e == CDR_OK)
        e = cli_outdir_csvw(&od, "rejects.csv", 0, &rw, err, sizeof err);
    if (e != CDR_OK) {
        cli_fail(e, "cannot create outputs: %s", err);
        goto out;
    }
    cli_outputs hdr = {.w = {fw[0], fw[1], fw[2], fw[3]}};
    cli_outputs_headers(&hdr);
    cdr_rejects_csv_header(rw);
    if ((e = write_outputs(&r, fw)) != CDR_OK || (e = write_rejects(&r, rw, &nrej)) != CDR_OK)
        goto out;
    for (int k = 0; k <= CLI_OUT__COUNT; k++) {
        cdr_csvw *w = k < CLI_OUT__COUNT ? fw[k] : rw;
        if ((e = cdr_csvw_commit(w)) != CDR_OK) {
            cli_fail(e, "cannot write outputs: %s", cdr_csvw_message(w));
            goto out;
        }
    }
    if (!r.quiet)
        print_report(&r, nrej);
out:
    for (int k = 0; k < CLI_OUT__COUNT; k++)
        cdr_csvw_free(fw[k]);
    cdr_csvw_free(rw);
    cli_outdir_close(&od);
    for (uint32_t k = 0; r.runs && k < r.parts; k++)
        free(r.runs[k]);
    free(r.runs);
    free(r.nruns);
    free(r.months);
    free(r.files);
    free(r.shas);
    return e;
}

int cmd_cluster(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        cli_help(&cluster_spec, argc < 2 ? stderr : stdout);
        return argc < 2 ? CDR_E_USAGE : CDR_OK;
    }
    if (!strcmp(argv[1], "init"))
        return cluster_init(argc, argv);
    if (!strcmp(argv[1], "shard"))
        return cluster_shard(argc, argv);
    if (!strcmp(argv[1], "report"))
        return cluster_report(argc, argv);
    return cli_fail(CDR_E_USAGE, "unknown cluster command %s (init, report, shard)", argv[1]);
}
