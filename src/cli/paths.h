/*
 * cdrecon CLI — where outputs may go (issue 14, items 5, 6 and 14).
 *
 * 1. No output over an input. Before anything is opened, a command lists
 *    its inputs (CDR files, a store read, the tariff directory, the
 *    database) and its outputs (files and directories), and
 *    cli_paths_check refuses any output that is an input, the database,
 *    another output, or inside (or equal to) the tariff directory: by
 *    device and inode for files that exist (after following links: a
 *    symbolic link or a hard link to an input is the input), by the
 *    resolved directory and name for outputs that do not exist yet
 *    (`rate --out x.csv --rejects ./x.csv`). Standard input and output
 *    ("-") and existing devices or FIFOs (written directly, never replaced)
 *    are not compared. The refusal is CDR_E_USAGE (exit 1): nothing was
 *    opened or written (docs/exit-codes.md).
 *
 * 2. Output directories opened once. cli_outdir_open opens a directory with
 *    cdr_dir_open (O_NOFOLLOW walk; the directory itself must not be a
 *    symbolic link) and keeps its descriptor; every file is then created
 *    relative to it (cdr_csvw_openat, cdr_store_create_at), so `--out LINK`
 *    never writes into the link's target.
 *
 * Nothing here prints: every function returns a cdr_err and, on failure, a
 * message in `err` that names the file and the OS reason; the caller prints
 * it (cli_fail(rc, "%s", err)).
 */
#ifndef CDRECON_CLI_PATHS_H
#define CDRECON_CLI_PATHS_H

#include <stdio.h>

#include "cdrecon/outcsv.h"
#include "cdrecon/outdir.h"
#include "cli.h"

/* ---------------------------------------------------------------- 1 */

typedef enum cli_path_role {
    CLI_PATH_INPUT,  /* a file that is read: CDR file, store (investigate/evidence) */
    CLI_PATH_TARIFF, /* the tariff directory: no output in it, none equal to it */
    CLI_PATH_DB,     /* the database: read and written in place; no output may be it */
    CLI_PATH_OUTPUT, /* a file that is written */
    CLI_PATH_OUTDIR, /* a directory that outputs are written into */
} cli_path_role;

typedef struct cli_path_ent cli_path_ent;
typedef struct cli_paths {
    cli_path_ent *v;
    size_t n, cap;
    int oom;
} cli_paths;

void cli_paths_init(cli_paths *ps);
/* `what` says what the path is in messages ("--out", "CDR file", "--db").
 * `path` must outlive the check (argv strings do). */
void cli_paths_add(cli_paths *ps, cli_path_role role, const char *what, const char *path);
/* DIR/NAME (an output file of an output directory: "DIR/findings.csv"). */
void cli_paths_add_in(cli_paths *ps, cli_path_role role, const char *what, const char *dir,
                      const char *name);
/* CDR_OK, or CDR_E_USAGE with "OUTPUT (what) is INPUT (what): ..." in err;
 * CDR_E_NOMEM. */
cdr_err cli_paths_check(cli_paths *ps, char *err, size_t errlen);
/* The inputs of a command that reads CDR files, in this order: the files
 * ("CDR file"), the store read ("--store"), the input profile
 * ("--profile"), the tariff directory ("--tariff"); NULL ones are left out. */
void cli_paths_add_inputs(cli_paths *ps, char *const *files, int nfiles, const char *store,
                          const char *profile, const char *tariff_dir);
/* An output directory ("--out") and the files names[0..n-1] in it, each
 * called `what`. */
void cli_paths_add_outdir(cli_paths *ps, const char *dir, const char *const *names, size_t n,
                          const char *what);
void cli_paths_free(cli_paths *ps);

/*
 * The check of `cdrecon run`, in one call, before the database or any
 * output is opened:
 *   inputs  files[0..nfiles-1] ("-" is skipped), the input profile (NULL:
 *           none), the tariff directory;
 *   the database db_path;
 *   outputs out_dir and its findings.csv, candidates.csv, rejects.csv,
 *           unrated.csv, changes.csv and report.html (run --report), and the
 *           month state's directory
 *           store_path (--store, else DB.state).
 * Refuses `run --db r.db --store r.db`, `run --store b.csv ... b.csv`,
 * `run --out DIR ... DIR/findings.csv`, `run --out TARIFF`,
 * `--store TARIFF/x`. CDR_OK, or CDR_E_USAGE with the reason in err.
 */
cdr_err cli_run_paths_check(const char *tariff_dir, const char *db_path, const char *out_dir,
                            const char *store_path, const char *profile_path,
                            char *const *files, int nfiles, char *err, size_t errlen);

/* ---------------------------------------------------------------- 2 */

typedef struct cli_outdir {
    int fd;            /* -1 when closed */
    const char *path;  /* as given (messages) */
} cli_outdir;

/*
 * Open the output directory `path` (flags: CDR_DIR_CREATE to create it and
 * its parents; the directory itself must not be a symbolic link; links
 * among its parents are followed only when owned by you or root). Errors:
 * CDR_E_EXISTS (a symbolic link, or not a directory), CDR_E_IO (with the OS
 * reason), CDR_E_USAGE, CDR_E_NOMEM.
 */
cdr_err cli_outdir_open(cli_outdir *d, const char *path, unsigned flags, char *err,
                        size_t errlen);
/* The directory of the output file `path` (not created; it may be a
 * symbolic link under the owner rule, as any parent); *name points into
 * path at the file's name. */
cdr_err cli_outdir_open_parent(cli_outdir *d, const char *path, const char **name, char *err,
                               size_t errlen);
void cli_outdir_close(cli_outdir *d); /* accepts a closed one */

/* A CSV writer for d/name (cdr_csvw_openat: temporary file, leftovers of
 * killed runs removed, rename at commit). */
cdr_err cli_outdir_csvw(cli_outdir *d, const char *name, unsigned flags, cdr_csvw **w,
                        char *err, size_t errlen);

/*
 * An output file named on the command line (rate --out/--rejects, scan
 * --rejects): "-" is standard output; an existing device or FIFO
 * (/dev/null, a pipe) is opened and written directly, and *direct gets its
 * FILE (the caller fcloses it after freeing the writer); anything else is
 * written through a temporary file in its directory
 * (cli_outdir_open_parent + cdr_csvw_openat) and renamed into place at
 * commit. `what` names the option in messages.
 */
cdr_err cli_output_file(const char *path, const char *what, cdr_csvw **w, FILE **direct,
                        char *err, size_t errlen);

/*
 * The month state's directory as the database records it (meta
 * `state_dir`): relative to the database's directory when it lies beside
 * or under it (DB.state, the default), so that a database moved or
 * restored with its state directory uses its own state and never the
 * original's; absolute otherwise (--store elsewhere). Databases written
 * before recorded it absolute: still read as recorded.
 * cli_state_dir_record: what to record for the resolved directory `real`;
 * cli_state_dir_resolve: the directory a recorded value names. 0, or -1
 * when the database's directory cannot be resolved.
 */
int cli_state_dir_record(const char *db_path, const char *real, char *buf, size_t len);
int cli_state_dir_resolve(const char *db_path, const char *recorded, char *buf, size_t len);

#endif
