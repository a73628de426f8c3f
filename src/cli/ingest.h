/* cdrecon CLI — shared plumbing for the commands that read CDR files (options: opts.h). */
#ifndef CDRECON_CLI_INGEST_H
#define CDRECON_CLI_INGEST_H

#include "cdrecon/engine.h"
#include "cdrecon/reader.h"
#include "cli.h"

int cli_parse_size(const char *s, size_t *out);   /* "512M", "1G", "65536" */
int cli_parse_i64(const char *s, int64_t *out);

/* cdr_engine_opts_init, and tmpdir $TMPDIR when it is set and not empty
 * (the library reads no environment variable: without --tmp and $TMPDIR
 * its spill files go to /tmp). */
void cli_engine_opts_init(cdr_engine_opts *eo);
/* Load the profile at path (NULL: none, *out NULL). A refusal is reported
 * and returned (CDR_E_PROFILE, CDR_E_IO, CDR_E_NOMEM). */
cdr_err cli_profile_load(const char *path, cdr_profile **out);

/* The tariff loaded on a second thread while the CDRs are read. */
typedef struct cli_bgtariff {
    const char *dir;
    cdr_tariff *t;      /* after join: the tariff, or NULL */
    cdr_err rc;
    char err[1024];
    int started;
    int done;           /* set (atomically) when loading ended */
    void *th;           /* pthread_t, kept opaque here */
} cli_bgtariff;

void cli_bgtariff_start(cli_bgtariff *b, const char *dir); /* loads in place if no thread */
int cli_bgtariff_done(const cli_bgtariff *b);   /* loading ended, or never started (no wait) */
int cli_bgtariff_failed(const cli_bgtariff *b);            /* ended with an error (no wait) */
cdr_err cli_bgtariff_join(cli_bgtariff *b);                 /* rc; b->err says why */
cdr_err cli_bgtariff_ready(cli_bgtariff *b); /* join; a failure is reported here */
/* Join and hand the tariff over (the caller frees it); NULL if it failed to
 * load, reported here, with b->rc its code. Its warnings are printed
 * (cli_tariff_warnings). */
cdr_tariff *cli_bgtariff_take(cli_bgtariff *b);
/* "cdrecon: CMD: warning: tariff DIR: unknown file 'refund.csv' is not read
 * (did you mean refunds.csv?)" on stderr, one per t->warnings. */
void cli_tariff_warnings(const cdr_tariff *t);

typedef struct cli_ingest {
    cdr_engine *engine;          /* rows go here (may be NULL: count only) */
    cdr_reader_opts ro;
    cdr_file_stats *stats;       /* one per file, filled */
    cdr_reject_fn on_reject;
    cdr_err (*on_file_start)(uint32_t idx, const char *name, void *user);
    cdr_err (*on_file_done)(uint32_t idx, const char *name, cdr_file_stats *st, void *user);
    void *user;
    const int *skip;             /* skip[i] != 0: file i is not read (may be NULL) */
    const int *hash;             /* if set: hash[i] is file i's ro.want_sha256 */
    const cli_bgtariff *tariff;  /* if set: stop reading early when it failed to load */
    /* where file i is read from, when not files[i] itself (run --cluster:
     * the routed piece of the operator's file files[i]); may be NULL */
    char *const *paths;
    /* how a file is read (NULL: cdr_read_file) */
    cdr_err (*read_file)(const char *path, uint32_t file_index, const cdr_reader_opts *opts,
                         cdr_row_fn on_row, cdr_reject_fn on_reject, void *user,
                         cdr_file_stats *stats);
} cli_ingest;

/* Read every file into the engine. A file that fails as a whole is excluded
 * from the engine; the first such failure's code is returned after all
 * files were read. An engine or callback error stops at once; a stop asked
 * by on_reject returns CDR_E_INTERRUPTED without a message (the callback's
 * owner says why: its writer's or database's message). */
cdr_err cli_ingest_files(cli_ingest *in, char **files, int nfiles);
/* ... returns CDR_E_INTERRUPTED when stopped because in->tariff failed. */

/* The month state of a database (--db FILE) or of a state directory
 * (--store DIR), opened from its manifest (investigate, evidence). */
#include <limits.h>
#include "cdrecon/state.h"
#include "cdrecon/tariff.h"
typedef struct cli_state_src {
    cdr_state *st;
    cdr_state_manifest m;
    char dir[PATH_MAX];
} cli_state_src;
cdr_err cli_state_open(cli_state_src *s, const char *db_path, const char *store_dir);
void cli_state_close(cli_state_src *s);
/* The tariff to rate a subscriber-month with: `given` (a directory), else
 * the one it was last rated with (recorded with the state). *other: the
 * tariff loaded (with eo's tolerance and max_duration: cdr_rating_identity)
 * is not the one it was last rated with. CDR_E_NOTFOUND when
 * the state has no such subscriber-month (and no tariff was given). */
cdr_err cli_state_tariff(cli_state_src *s, const char *msisdn, cdr_month m, const char *given,
                         const cdr_engine_opts *eo, cdr_tariff **t, int *other);

/* --cluster DIR (not NULL): the database of the shard of the number
 * msisdn_arg (DIR/shard-K/cdrecon.db) into buf, and *db_path = buf; a usage
 * error when *db_path or store_path is given too. Reports its errors. */
cdr_err cli_cluster_db(const char *cluster, const char *msisdn_arg, const char **db_path,
                       const char *store_path, char *buf, size_t len);

/* "cdrecon" and the command's arguments, space-separated (recorded with a
 * run in the database); malloc'd, NULL when memory ran out. */
char *cli_command_line(int argc, char **argv);

#endif
