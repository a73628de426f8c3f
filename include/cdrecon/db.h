/*
 * cdrecon — the SQLite results database (CONTRACT.md "Outputs",
 * docs/database.md for the schema and example queries).
 *
 * One database file holds every run: its input files (with SHA-256, so a
 * file is never ingested twice), findings (leakage included, category
 * "leakage"), refund candidates and rejects. Money is stored as INTEGER
 * micro-yuan (columns named *_micro); views findings_csv / candidates_csv
 * show yuan text exactly as the CSV files do.
 *
 * A run is ONE transaction (BEGIN IMMEDIATE ... COMMIT): a run that fails,
 * is rolled back or is killed leaves the database exactly as it was.
 * The database uses the rollback journal (journal_mode=DELETE) with
 * synchronous=FULL and foreign_keys=ON.
 *
 * Errors: CDR_E_NOMEM for SQLITE_NOMEM; CDR_E_IO for SQLITE_IOERR,
 * SQLITE_FULL, SQLITE_CANTOPEN and SQLITE_READONLY; CDR_E_DB for every
 * other SQLite error (constraint, busy, corrupt, not a database, newer
 * schema, ...). The message (with SQLite's words) is in cdr_db_message().
 *
 * A cdr_db handle is used by one thread at a time. Views passed to the
 * query callbacks are valid only during the call.
 */
#ifndef CDRECON_DB_H
#define CDRECON_DB_H

#include "findings.h"
#include "reader.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_DB_SCHEMA_VERSION 4 /* 2: the month state; 3: input profiles; 4: one index */
/* PRAGMA application_id of a cdrecon database: "CDRC". */
#define CDR_DB_APPLICATION_ID 0x43445243

typedef struct cdr_db cdr_db;

/*
 * Create or open the database at path and bring its schema up to date.
 * Refuses (CDR_E_DB) a database of a newer schema version, and a non-empty
 * SQLite file that is not a cdrecon database. On failure *out is NULL and
 * err (if not NULL) holds the reason.
 */
cdr_err cdr_db_open(const char *path, cdr_db **out, char *err, size_t errlen);
/* Open an existing database for reading only (investigate, evidence): no
 * schema change, no lock held. A database of schema 2 is read as it is. */
cdr_err cdr_db_open_readonly(const char *path, cdr_db **out, char *err, size_t errlen);
/* Close; rolls back a run still open. NULL is accepted. */
void cdr_db_close(cdr_db *db);
/* The last error in words ("" if none). */
const char *cdr_db_message(const cdr_db *db);

/* The underlying sqlite3 * (as void *), for tests and read-only tools that
 * need a PRAGMA or a query of their own. Do not close it. */
void *cdr_db_sqlite(cdr_db *db);

/* PRAGMA integrity_check: CDR_OK when it says "ok", else CDR_E_DB. */
cdr_err cdr_db_check(cdr_db *db);

/* Read into the connection's page cache what a night's run writes about
 * (outside a transaction, changing nothing): the index entries of the
 * findings and candidates of the newest month kept and the one before it,
 * and the rows of their current candidates, which a run supersedes. For a
 * caller that would otherwise wait (cdrecon run, while its tariff loads):
 * stop(u) is asked every few thousand steps and a non-zero answer ends it
 * at once. What was read stays cached for the run's transaction if nothing
 * else writes the file in between. CDR_OK also when stopped; an error only
 * if a query could not run. */
cdr_err cdr_db_warm(cdr_db *db, int (*stop)(void *u), void *u);

/*
 * Was a file with this SHA-256 already ingested by a committed run (or by
 * the run in progress)? CDR_OK with *run_id = that run, or 0 if unknown.
 */
cdr_err cdr_db_file_known(cdr_db *db, const uint8_t sha256[32], int64_t *run_id);

/*
 * Could a file of this many bytes be one already ingested? *maybe = 0 when no
 * ingested file has that size (so none can have the same SHA-256): the file
 * can then be hashed while it is read instead of before. 1 otherwise.
 */
cdr_err cdr_db_size_known(cdr_db *db, uint64_t size, int *maybe);

typedef struct cdr_db_run_info {
    int64_t started_at;       /* Unix seconds (UTC); 0 = now */
    const char *tool_version; /* NULL = CDRECON_VERSION */
    const char *command;      /* the command line, as text */
    const char *tariff_dir;
    const char *kind;         /* "run" (NULL), "rerate", "compact" */
    const char *profile;      /* the input profile's path as given, or NULL (none) */
    const char *profile_sha256; /* its SHA-256, 64 hex digits (with profile) */
} cdr_db_run_info;

/* Start a run: BEGIN IMMEDIATE and insert its runs row. One run at a time. */
cdr_err cdr_db_begin_run(cdr_db *db, const cdr_db_run_info *info, int64_t *run_id);

/*
 * Input files of the run. file_index is the reader's index; rejects and
 * findings name their file by that index, and the database maps it to the
 * file_id.
 *
 * Either in one step, after the file was read (stats complete):
 *     cdr_db_add_file(db, idx, name, &stats, &file_id)
 * or in two, when rejects are stored while the file is being read:
 *     cdr_db_file_start(db, idx, name, &file_id)   (sha256 still NULL)
 *     ... cdr_db_add_reject() ...
 *     cdr_db_file_finish(db, file_id, &stats)
 * The sha256 column is UNIQUE: adding or finishing a file whose SHA-256 is
 * already in the database fails with CDR_E_DB (constraint). A file found to
 * be known after it was read can be removed with cdr_db_file_drop(), which
 * deletes its row, rejects and findings (within the run's transaction).
 * stats->sha256 must be filled (want_sha256) unless stats->status != CDR_OK,
 * in which case the file is stored with a NULL sha256 (it can be retried).
 */
cdr_err cdr_db_add_file(cdr_db *db, uint32_t file_index, const char *name,
                        const cdr_file_stats *stats, int64_t *file_id);
cdr_err cdr_db_file_start(cdr_db *db, uint32_t file_index, const char *name, int64_t *file_id);
cdr_err cdr_db_file_finish(cdr_db *db, int64_t file_id, const cdr_file_stats *stats);
cdr_err cdr_db_file_drop(cdr_db *db, int64_t file_id);
/* The input profile the file was read with (path as given, SHA-256 as 64 hex
 * digits), or NULL for none (the default). */
cdr_err cdr_db_file_profile(cdr_db *db, int64_t file_id, const char *profile,
                            const char *sha256_hex);

/* Rows of the run (prepared statements, bound parameters). */
cdr_err cdr_db_add_reject(cdr_db *db, const cdr_reject *r);
cdr_err cdr_db_add_finding(cdr_db *db, const cdr_finding *f);
cdr_err cdr_db_add_candidate(cdr_db *db, const cdr_candidate *c);

typedef struct cdr_db_run_end {
    cdr_err status;        /* the run's exit status (CDR_OK, CDR_E_REJECTS, ...) */
    uint64_t rows_unrated; /* rows read but not rated, counted apart */
    int64_t finished_at;   /* Unix seconds; 0 = now */
    int64_t tariff_id;     /* 0: none */
    const char *months;    /* the months the run touched, "2026-09;2026-10" */
    uint64_t submonths, submonths_full;
} cdr_db_run_end;

/* Compute the run's totals, store them and COMMIT. On failure the run is
 * rolled back and the error returned. */
cdr_err cdr_db_commit_run(cdr_db *db, const cdr_db_run_end *end);
/* The same in two halves, for a caller with work to finish before the
 * commit point (a run's outputs, placed before it commits). _begin stores
 * the run's totals and starts the COMMIT on a thread of its own: SQLite
 * writes and syncs its journal, then the database, and waits just before
 * deleting the journal, the commit point (src/output/dbgate.h). _end(go)
 * lets it commit, or (go == 0) makes it fail: the run rolled back, the
 * file as it was. Returns as cdr_db_commit_run. Nothing else may use db
 * between the two (cdr_db_close calls a begun commit off). Without the
 * gate (or a thread) _begin only stores the totals and _end commits. */
cdr_err cdr_db_commit_begin(cdr_db *db, const cdr_db_run_end *end);
cdr_err cdr_db_commit_end(cdr_db *db, int go);
/* ROLLBACK: nothing of the run remains. Safe when no run is open. */
cdr_err cdr_db_rollback_run(cdr_db *db);
/* The write lock without a run, only if it is free at once (no waiting):
 * 1 taken, 0 not (another run holds it, or a run is open). cdr_db_unlock
 * gives it back; nothing is written between them. */
int cdr_db_try_lock(cdr_db *db);
void cdr_db_unlock(cdr_db *db);

/* ------------------------------------------------------------------ */
/* Queries for investigators.                                          */

/* A stored finding: f->file_index is 0; file_id says which file. */
typedef int (*cdr_db_finding_fn)(const cdr_finding *f, int64_t run_id, int64_t file_id,
                                 void *user); /* non-zero: stop */
typedef int (*cdr_db_candidate_fn)(const cdr_candidate *c, int64_t run_id,
                                   void *user); /* non-zero: stop */

/* Findings of one number and bill month, all runs, in (start_time, record_id,
 * run_id) order. CDR_E_NOTFOUND when there are none. */
cdr_err cdr_db_findings_for(cdr_db *db, const char *msisdn, cdr_month month,
                            cdr_db_finding_fn fn, void *user);
/* Candidates of one number and month (one per run that found some). */
cdr_err cdr_db_candidates_for(cdr_db *db, const char *msisdn, cdr_month month,
                              cdr_db_candidate_fn fn, void *user);

typedef struct cdr_db_totals {
    int64_t run_id;
    char started_at[32];  /* "YYYY-MM-DDTHH:MM:SSZ" */
    char finished_at[32]; /* "" while running */
    int status;           /* cdr_err of the run */
    uint64_t files, rows_read, rows_accepted, rows_rejected, rows_unrated;
    uint64_t findings, overcharged_records, leakage_records, candidates;
    cdr_money overcharge, refund, leakage; /* leakage as a positive amount */
} cdr_db_totals;

/* Totals stored for one run; CDR_E_NOTFOUND if no such run. run_id 0 means
 * the latest committed run. */
cdr_err cdr_db_run_totals(cdr_db *db, int64_t run_id, cdr_db_totals *out);

/* ------------------------------------------------------------------ */
/* A month over many runs (schema 2, docs/database.md).                 */

/* The open run's id (0 if none). */
int64_t cdr_db_open_run(const cdr_db *db);

/* The id of a tariff by the SHA-256 of its tables, added (with the open
 * run as its first) when new. */
cdr_err cdr_db_tariff_id(cdr_db *db, const uint8_t sha256[32], const char *dir, int64_t *id);

/* Mark the current findings and unrated records (or the current candidate)
 * of a subscriber-month as superseded by the open run. h: the msisdn's hash
 * (cdr_msisdn_hash): the subscriber-month's rows are found by the *_key
 * index (month, h, msisdn) and no index changes (schema 4). */
cdr_err cdr_db_supersede_records(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month);
cdr_err cdr_db_supersede_candidate(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month);
/* The same for the records from from_seq on only (a subscriber-month
 * re-rated from its rewind point: CDR_SM_REWIND). */
cdr_err cdr_db_supersede_records_from(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month,
                                      uint64_t from_seq);

/* A readable record that cannot be rated (CONTRACT.md: counted apart). */
typedef struct cdr_db_unrated {
    int64_t file_id;        /* 0: unknown */
    const char *file;
    uint64_t line, offset;
    cdr_str record_id, msisdn;
    cdr_month month;
    cdr_service service;
    cdr_money billed;
    const char *reason;
    uint64_t msisdn_hash, seq;
} cdr_db_unrated;
cdr_err cdr_db_add_unrated(cdr_db *db, const cdr_db_unrated *u);

/* One line of changes.csv: status "new", "increased", "decreased", "withdrawn". */
typedef struct cdr_db_change {
    cdr_str msisdn;
    cdr_month month;
    cdr_money previous_refund, refund, delta;
    const char *status;
} cdr_db_change;
cdr_err cdr_db_add_change(cdr_db *db, cdr_str msisdn, uint64_t msisdn_hash, cdr_month month,
                          cdr_money previous, cdr_money refund, const char *status);

/* The live state files (names; free with cdr_db_free_names), and changes to
 * the list within the open run. kind: "segment" or "checkpoint". */
cdr_err cdr_db_state_list(cdr_db *db, char ***names, size_t *n);
void cdr_db_free_names(char **names, size_t n);
cdr_err cdr_db_state_add(cdr_db *db, const char *name, cdr_month month, const char *kind,
                         uint64_t records, uint64_t bytes);
cdr_err cdr_db_state_drop(cdr_db *db, const char *name);

/* Settings kept with the database (the state's directory). */
cdr_err cdr_db_meta_get(cdr_db *db, const char *key, char *buf, size_t len, int *found);
cdr_err cdr_db_meta_set(cdr_db *db, const char *key, const char *value);

/* A file read but refused as a probable re-delivery (not ingested). */
cdr_err cdr_db_file_refuse(cdr_db *db, int64_t file_id, const char *message, uint64_t copies);

/* A savepoint inside the open run: "begin", "rollback" (to it, and end it)
 * or "release". */
cdr_err cdr_db_savepoint(cdr_db *db, const char *what);

/* The current rows of these months, in the engine's order (subscribers by
 * hash and msisdn, months, records in time order). */
cdr_err cdr_db_current_findings(cdr_db *db, const cdr_month *months, size_t n,
                                cdr_db_finding_fn fn, void *user);
cdr_err cdr_db_current_candidates(cdr_db *db, const cdr_month *months, size_t n,
                                  cdr_db_candidate_fn fn, void *user);
cdr_err cdr_db_current_unrated(cdr_db *db, const cdr_month *months, size_t n,
                               int (*fn)(const cdr_db_unrated *u, void *user), void *user);
/* Every tariff the database knows: id, SHA-256 (hex) and directory. */
cdr_err cdr_db_tariffs(cdr_db *db, int (*fn)(int64_t id, const char *sha256, const char *dir,
                                             void *user),
                       void *user);
/* The changes of one run, in the same order. */
cdr_err cdr_db_run_changes(cdr_db *db, int64_t run_id,
                           int (*fn)(const cdr_db_change *c, void *user), void *user);
/* The changes of several runs (a night over many shards' runs), in the
 * order of the outputs: by subscriber (h, msisdn), month, run. */
cdr_err cdr_db_runs_changes(cdr_db *db, const int64_t *runs, size_t n,
                            int (*fn)(const cdr_db_change *c, void *user), void *user);
/* The finished runs that ingested any of the files (by the SHA-256 of
 * their bytes, hex), in run order, with the months each reported. */
cdr_err cdr_db_runs_of_files(cdr_db *db, const char *const *sha_hex, size_t n,
                             int (*fn)(int64_t run_id, const char *months, void *user),
                             void *user);
/* The tariff directory of the last finished run; *found 0 if none. */
cdr_err cdr_db_last_tariff_dir(cdr_db *db, char *buf, size_t len, int *found);

#ifdef __cplusplus
}
#endif
#endif
