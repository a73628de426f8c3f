/* cdrecon compact — merge a month's segments into one (docs/state.md). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"
#include "cdrecon/db.h"
#include "cdrecon/state.h"
#include "cdrecon/version.h"
#include "ingest.h"
#include "opts.h"

static const cli_opt compact_opts[] = {
    {"--db", 0, CLI_OPT_VALUE, "FILE", "the database of `cdrecon run` (its state beside it)",
     CLI_O_DB},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM",
     "this month only (default: every month with 2+ segments)", CLI_O_MONTH},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const compact_tables[] = {compact_opts, cli_quiet_opts, NULL};
static const cli_spec compact_spec = {
    "compact",
    "cdrecon compact --db FILE [--month YYYY-MM] [--quiet]",
    "Merge each month's segments of the month state (one a night) into one: every\n"
    "subscriber-month's records together, in larger blocks. The records, the\n"
    "checkpoints and every result stay as they are; the state gets smaller and\n"
    "re-rating a subscriber-month whole reads one group instead of one a night.\n"
    "Run it when the nights are few (weekly, and when a month closes).\n",
    compact_tables,
    "",
    CLI_ARGS_NO_POS,
};

/* The arguments. 0, or -1 when the command ends here with *rc (--help:
 * CDR_OK; a usage error, reported). */
static int parse_args(int argc, char **argv, const char **db_path, cdr_month *month, int *quiet,
                      int *rc)
{
    cli_args args;
    *rc = CDR_OK;
    cli_args_init(&args, &compact_spec, argc, argv);
    for (int id; *rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP: return -1;
        case CLI_ARG_ERR: *rc = CDR_E_USAGE; break;
        case CLI_O_DB: *db_path = args.val; break;
        case CLI_O_MONTH: *rc = cli_month_value(args.val, month); break;
        case CLI_O_QUIET: *quiet = 1; break;
        }
    }
    if (*rc == CDR_OK && !*db_path) {
        cli_help(&compact_spec, stderr);
        *rc = CDR_E_USAGE;
    }
    return *rc == CDR_OK ? 0 : -1;
}

typedef struct compact_ctx {
    cdr_db *db;
    cdr_state *st;
    const char *dir;
    int64_t run_id;
    int quiet;
    char (*names)[64];      /* the segments replaced (removed after the commit) */
    size_t n_names, n_live;
    uint64_t merged, before, after; /* months merged, bytes of segments before and after */
} compact_ctx;

/* Merge the segments of month m into one: the new segment recorded in the
 * database in place of the old ones, whose names go to c->names. CDR_OK
 * also when there was nothing to merge; an error is reported. */
static cdr_err compact_month(compact_ctx *c, cdr_month m)
{
    char err[1024];
    size_t k = cdr_state_segment_names(c->st, m, c->names + c->n_names, c->n_live - c->n_names);
    cdr_state_compacted cp;
    cdr_err rc = cdr_state_compact(c->st, m, c->dir, c->run_id, &cp, err, sizeof err);
    if (rc == CDR_E_NOTFOUND)
        return CDR_OK;
    if (rc != CDR_OK)
        return cli_fail(rc, "compacting: %s", err);
    c->n_names += k;
    for (size_t j = c->n_names - k; j < c->n_names; j++) {
        char p[PATH_MAX + 80];
        snprintf(p, sizeof p, "%s/%s", c->dir, c->names[j]);
        FILE *f = fopen(p, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            c->before += (uint64_t)ftell(f);
            fclose(f);
        }
        if ((rc = cdr_db_state_drop(c->db, c->names[j])) != CDR_OK)
            break;
    }
    if (rc == CDR_OK)
        rc = cdr_db_state_add(c->db, cp.name, m, "segment", cp.records, cp.bytes);
    if (rc != CDR_OK)
        return cli_fail(rc, "database: %s", cdr_db_message(c->db));
    c->after += cp.bytes;
    c->merged++;
    if (!c->quiet) {
        char mo[8];
        cdr_month_format(m, mo);
        printf("%s: %zu segments, %llu records of %llu subscriber-months -> %s\n", mo,
               cp.replaced, (unsigned long long)cp.records, (unsigned long long)cp.submonths,
               cp.name);
    }
    return CDR_OK;
}

/* The state's manifest after the commit: what the database says now. */
static void write_manifest(cdr_db *db, const char *db_path, const char *dir)
{
    char err[1024];
    cdr_state_manifest m;
    memset(&m, 0, sizeof m);
    if (cdr_db_state_list(db, &m.live, &m.n_live) == CDR_OK &&
        (m.db_path = realpath(db_path, NULL)) != NULL) {
        /* tariffs are kept from the manifest the last run wrote */
        cdr_state_manifest old;
        if (cdr_state_manifest_read(dir, &old, err, sizeof err) == CDR_OK) {
            m.tariffs = old.tariffs;
            m.n_tariffs = old.n_tariffs;
            old.tariffs = NULL;
            old.n_tariffs = 0;
            cdr_state_manifest_free(&old);
        }
        if (cdr_state_manifest_write(dir, &m, err, sizeof err) != CDR_OK)
            cli_err("month state manifest: %s (the next run writes it again)", err);
    }
    cdr_state_manifest_free(&m);
}

int cmd_compact(int argc, char **argv)
{
    const char *db_path = NULL;
    cdr_month month = -1;
    int quiet = 0, rc = CDR_OK, run_open = 0;
    cdr_db *db = NULL;
    cdr_state *st = NULL;
    char **live = NULL, err[1024], dir[PATH_MAX];
    size_t n_live = 0, n_names = 0;
    char (*names)[64] = NULL;
    int found = 0;
    char *cmdline = NULL;
    if (parse_args(argc, argv, &db_path, &month, &quiet, &rc) != 0)
        return rc;
    if (access(db_path, F_OK) != 0)
        return cli_fail(CDR_E_IO, "no database %s", db_path);
    if ((rc = cdr_db_open(db_path, &db, err, sizeof err)) != CDR_OK)
        return cli_fail(rc, "cannot open database %s: %s", db_path, err);
    if (!(cmdline = cli_command_line(argc, argv))) {
        rc = cli_fail(CDR_E_NOMEM, "out of memory");
        goto out;
    }
    cdr_db_run_info info = {0, CDRECON_VERSION, cmdline, NULL, "compact", NULL, NULL};
    int64_t run_id = 0;
    if ((rc = cdr_db_meta_get(db, "state_dir", dir, sizeof dir, &found)) != CDR_OK ||
        (rc = cdr_db_begin_run(db, &info, &run_id)) != CDR_OK) {
        cli_fail(rc, "database: %s", cdr_db_message(db));
        goto out;
    }
    run_open = 1;
    if (!found) {
        rc = cli_fail(CDR_E_NOTFOUND, "database %s has no month state", db_path);
        goto out;
    }
    {
        char rec[sizeof dir];
        snprintf(rec, sizeof rec, "%s", dir);
        if (cli_state_dir_resolve(db_path, rec, dir, sizeof dir) != 0) {
            rc = cli_fail(CDR_E_IO, "cannot resolve the directory of %s", db_path);
            goto out;
        }
    }
    uint64_t removed = 0;
    if ((rc = cdr_db_state_list(db, &live, &n_live)) != CDR_OK ||
        (rc = cdr_state_collect_garbage(dir, (const char *const *)live, n_live, &removed, err,
                                        sizeof err)) != CDR_OK ||
        (rc = cdr_state_open(dir, (const char *const *)live, n_live, &st, err, sizeof err)) !=
            CDR_OK) {
        cli_fail(rc, "month state %s: %s", dir, err[0] ? err : cdr_db_message(db));
        goto out;
    }
    names = calloc(n_live + 1, sizeof *names);
    if (!names) {
        rc = CDR_E_NOMEM;
        goto out;
    }
    size_t nm = 0;
    const cdr_month *ms = cdr_state_months(st, &nm);
    compact_ctx cc = {db, st, dir, run_id, quiet, names, 0, n_live, 0, 0, 0};
    for (size_t i = 0; i < nm; i++) {
        if (month >= 0 && ms[i] != month)
            continue;
        if ((rc = compact_month(&cc, ms[i])) != CDR_OK)
            goto out;
    }
    n_names = cc.n_names;
    if (cc.merged == 0) {
        /* nothing to merge: no run to record, nothing changed */
        if (!quiet)
            printf("compact: no month has more than one segment; nothing changed\n");
        goto out; /* (rolls the run back) */
    }
    cdr_db_run_end end = {CDR_OK, 0, 0, 0, "", 0, 0};
    if ((rc = cdr_db_commit_run(db, &end)) != CDR_OK) {
        cli_fail(rc, "database commit failed: %s", cdr_db_message(db));
        goto out;
    }
    run_open = 0;
    for (size_t j = 0; j < n_names; j++) {
        char p[PATH_MAX + 80];
        snprintf(p, sizeof p, "%s/%s", dir, names[j]);
        unlink(p);
    }
    write_manifest(db, db_path, dir);
    if (!quiet)
        printf("compact: %llu month(s): %llu bytes of segments -> %llu\n",
               (unsigned long long)cc.merged, (unsigned long long)cc.before,
               (unsigned long long)cc.after);
out:
    if (run_open) {
        cdr_db_rollback_run(db);
        /* the new segments are not live: the next run removes them */
    }
    cdr_state_close(st);
    cdr_db_free_names(live, n_live);
    free(names);
    free(cmdline);
    cdr_db_close(db);
    return rc;
}
