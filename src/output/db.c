/*
 * cdrecon — the SQLite results database (include/cdrecon/db.h,
 * docs/database.md).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cdrecon/db.h"
#include "cdrecon/engine.h"
#include "cdrecon/version.h"
#include "dbgate.h"
#include "grow.h"

/* Prepared statements, created on first use and reused. */
enum {
    ST_FILE_KNOWN,
    ST_SIZE_KNOWN,
    ST_RUN_INSERT,
    ST_FILE_INSERT,
    ST_FILE_FINISH,
    ST_FILE_DROP,
    ST_REJECT_INSERT,
    ST_FINDING_INSERT,
    ST_CANDIDATE_INSERT,
    ST_RUN_FINISH,
    ST_FINDINGS_FOR,
    ST_CANDIDATES_FOR,
    ST_RUN_TOTALS,
    ST_TARIFF_GET,
    ST_TARIFF_ADD,
    ST_SUPERSEDE_FINDINGS,
    ST_SUPERSEDE_UNRATED,
    ST_SUPERSEDE_CANDIDATE,
    ST_UNRATED_INSERT,
    ST_CHANGE_INSERT,
    ST_STATE_ADD,
    ST_STATE_DROP,
    ST_STATE_LIST,
    ST_META_GET,
    ST_META_SET,
    ST_FILE_REFUSE,
    ST_CUR_FINDINGS,
    ST_CUR_CANDIDATES,
    ST_CUR_UNRATED,
    ST_RUN_CHANGES,
    ST_LAST_TARIFF,
    ST_CUR_FINDINGS1,
    ST_CUR_CANDIDATES1,
    ST_CUR_UNRATED1,
    ST_RUNS_OF_FILES,
    ST_RUN_REJECTS,
    ST_RUN_STATE,
    ST_FILE_PROFILE,
    ST__COUNT
};

static const char *const st_sql[ST__COUNT] = {
    /* a file is known by the SHA-256 of its bytes or of its content */
    [ST_FILE_KNOWN] = "SELECT run_id FROM files WHERE state = 'ingested' AND sha256 = ?1 "
                      "UNION ALL SELECT run_id FROM files WHERE state = 'ingested' AND "
                      "content_sha256 = ?1 LIMIT 1",
    [ST_SIZE_KNOWN] = "SELECT 1 FROM files WHERE state = 'ingested' AND sha256 IS NOT NULL AND "
                      "(size IS NULL OR size = ?1 OR bytes = ?1) LIMIT 1",
    [ST_RUN_INSERT] = "INSERT INTO runs(started_at, tool_version, contract_version, command, "
                      "tariff_dir, kind, profile, profile_sha256) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_FILE_INSERT] = "INSERT INTO files(run_id, file_index, name) VALUES (?1, ?2, ?3)",
    [ST_FILE_FINISH] = "UPDATE files SET size = ?2, bytes = ?3, sha256 = ?4, gzip = ?5, "
                       "rows_read = ?6, rows_accepted = ?7, rows_rejected = ?8, "
                       "blank_lines = ?9, rows_filtered = ?10, status = ?11, message = ?12, "
                       "content_sha256 = ?13, state = ?14, rows_skipped = ?15 WHERE file_id = ?1",
    [ST_FILE_DROP] = "DELETE FROM files WHERE file_id = ?1",
    [ST_REJECT_INSERT] = "INSERT INTO rejects(run_id, file_id, file, line, offset, reason, raw, "
                         "raw_len) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_FINDING_INSERT] =
        "INSERT INTO findings(run_id, file_id, msisdn, month, record_id, file, line, category, "
        "flags, billed_micro, rebuilt_micro, difference_micro, service, start_time, peer, "
        "offset, explanation, h, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
        "?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    [ST_CANDIDATE_INSERT] =
        "INSERT INTO candidates(run_id, msisdn, month, records, overcharge_micro, refund_micro, "
        "categories, tier, policy, special, flags, policy_reason, h) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    /* One pass over each table's rows of the run (row values): the run's
     * findings were read four times, which made most of the commit. Money
     * totals use cdr_total (below), never sum(): SQLite's sum() fails the
     * statement on an integer overflow. */
    [ST_RUN_FINISH] =
        "UPDATE runs SET finished_at = ?2, status = ?3, status_name = ?4, rows_unrated = ?5, "
        " (files, rows_read, rows_accepted, rows_rejected, rows_skipped) = (SELECT count(*),"
        "   coalesce(sum(rows_read), 0), coalesce(sum(rows_accepted), 0),"
        "   coalesce(sum(rows_rejected), 0), coalesce(sum(rows_skipped), 0)"
        "   FROM files WHERE run_id = ?1),"
        " (findings, overcharged_records, leakage_records, leakage_micro) = (SELECT count(*),"
        "   coalesce(sum(difference_micro > 0), 0), coalesce(sum(difference_micro < 0), 0),"
        "   cdr_total(CASE WHEN difference_micro < 0 THEN -difference_micro END)"
        "   FROM findings WHERE run_id = ?1),"
        " (candidates, overcharge_micro, refund_micro) = (SELECT count(*),"
        "   cdr_total(overcharge_micro), cdr_total(refund_micro)"
        "   FROM candidates WHERE run_id = ?1),"
        " tariff_id = ?6, months = ?7, submonths = ?8, submonths_full = ?9,"
        " changes = (SELECT count(*) FROM changes WHERE run_id = ?1) "
        "WHERE run_id = ?1",
    [ST_FINDINGS_FOR] =
        "SELECT run_id, file_id, msisdn, month, record_id, file, line, category, flags, "
        "billed_micro, rebuilt_micro, difference_micro, service, start_time, peer, offset, "
        "explanation FROM findings WHERE msisdn = ?1 AND month = ?2 AND h = ?3 "
        "ORDER BY start_time, record_id, run_id, finding_id",
    [ST_CANDIDATES_FOR] =
        "SELECT run_id, msisdn, month, records, overcharge_micro, refund_micro, categories, "
        "tier, policy, special, flags, policy_reason FROM candidates "
        "WHERE msisdn = ?1 AND month = ?2 AND h = ?3 ORDER BY run_id, candidate_id",
    [ST_RUN_TOTALS] =
        "SELECT run_id, started_at, coalesce(finished_at, ''), coalesce(status, -1), files, "
        "rows_read, rows_accepted, rows_rejected, rows_unrated, findings, overcharged_records, "
        "leakage_records, candidates, overcharge_micro, refund_micro, leakage_micro FROM runs "
        "WHERE (?1 > 0 AND run_id = ?1) OR (?1 <= 0 AND run_id = "
        "(SELECT max(run_id) FROM runs WHERE finished_at IS NOT NULL))",
    [ST_TARIFF_GET] = "SELECT tariff_id FROM tariffs WHERE sha256 = ?1",
    [ST_TARIFF_ADD] = "INSERT INTO tariffs(sha256, dir, first_run) VALUES (?1, ?2, ?3)",
    /* (h too: the *_key index (month, h, msisdn[, seq]) finds the
     * subscriber-month's rows; the update changes no index column) */
    [ST_SUPERSEDE_FINDINGS] = "UPDATE findings SET superseded_by = ?1 WHERE msisdn = ?2 AND "
                              "month = ?3 AND h = ?5 AND superseded_by IS NULL AND seq >= ?4",
    [ST_SUPERSEDE_UNRATED] = "UPDATE unrated SET superseded_by = ?1 WHERE msisdn = ?2 AND "
                             "month = ?3 AND h = ?5 AND superseded_by IS NULL AND seq >= ?4",
    [ST_SUPERSEDE_CANDIDATE] = "UPDATE candidates SET superseded_by = ?1 WHERE msisdn = ?2 AND "
                               "month = ?3 AND h = ?5 AND superseded_by IS NULL",
    [ST_UNRATED_INSERT] =
        "INSERT INTO unrated(run_id, file_id, file, line, offset, record_id, msisdn, month, "
        "service, billed_micro, reason, h, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?11, ?12, ?13)",
    [ST_CHANGE_INSERT] =
        "INSERT INTO changes(run_id, msisdn, month, previous_refund_micro, refund_micro, "
        "delta_micro, status, h) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_STATE_ADD] = "INSERT INTO state_files(name, month, kind, run_id, records, bytes) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_STATE_DROP] = "DELETE FROM state_files WHERE name = ?1",
    [ST_STATE_LIST] = "SELECT name FROM state_files ORDER BY name",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_FILE_PROFILE] = "UPDATE files SET profile = ?2, profile_sha256 = ?3 WHERE file_id = ?1",
    [ST_FILE_REFUSE] = "UPDATE files SET state = ?2, message = ?3, copies = ?4 WHERE file_id = ?1",
    [ST_CUR_FINDINGS] =
        "SELECT run_id, file_id, msisdn, month, record_id, file, line, category, flags, "
        "billed_micro, rebuilt_micro, difference_micro, service, start_time, peer, offset, "
        "explanation, h, seq FROM findings WHERE superseded_by IS NULL AND month IN "
        "(SELECT value FROM json_each(?1)) ORDER BY h, msisdn, month, seq",
    [ST_CUR_CANDIDATES] =
        "SELECT run_id, msisdn, month, records, overcharge_micro, refund_micro, categories, "
        "tier, policy, special, flags, policy_reason, h FROM candidates WHERE superseded_by IS "
        "NULL AND month IN (SELECT value FROM json_each(?1)) ORDER BY h, msisdn, month",
    [ST_CUR_UNRATED] =
        "SELECT file, line, offset, record_id, msisdn, month, service, billed_micro, reason, "
        "h, seq FROM unrated WHERE superseded_by IS NULL AND month IN "
        "(SELECT value FROM json_each(?1)) "
        "ORDER BY h, msisdn, month, seq",
    [ST_RUN_CHANGES] = "SELECT msisdn, month, previous_refund_micro, refund_micro, delta_micro, "
                       "status FROM changes WHERE run_id IN (SELECT value FROM json_each(?1)) "
                       "ORDER BY h, msisdn, month, run_id",
    /* one month (the usual report): the index gives the order, no sort */
    [ST_CUR_FINDINGS1] =
        "SELECT run_id, file_id, msisdn, month, record_id, file, line, category, flags, "
        "billed_micro, rebuilt_micro, difference_micro, service, start_time, peer, offset, "
        "explanation, h, seq FROM findings WHERE superseded_by IS NULL AND month = ?1"
        " ORDER BY h, msisdn, month, seq",
    [ST_CUR_CANDIDATES1] =
        "SELECT run_id, msisdn, month, records, overcharge_micro, refund_micro, categories, "
        "tier, policy, special, flags, policy_reason, h FROM candidates WHERE superseded_by IS "
        "NULL AND month = ?1 ORDER BY h, msisdn, month",
    [ST_CUR_UNRATED1] =
        "SELECT file, line, offset, record_id, msisdn, month, service, billed_micro, reason, "
        "h, seq FROM unrated WHERE superseded_by IS NULL AND month = ?1 "
        "ORDER BY h, msisdn, month, seq",
    [ST_LAST_TARIFF] = "SELECT coalesce(tariff_dir, '') FROM runs WHERE finished_at IS NOT NULL "
                       "AND tariff_dir IS NOT NULL ORDER BY run_id DESC LIMIT 1",
    [ST_RUNS_OF_FILES] =
        "SELECT DISTINCT r.run_id, coalesce(r.months, '') FROM runs r JOIN files f ON "
        "f.run_id = r.run_id WHERE r.finished_at IS NOT NULL AND f.sha256 IN (SELECT value "
        "FROM json_each(?1)) ORDER BY r.run_id",
    [ST_RUN_REJECTS] = "SELECT file, line, offset, reason, raw FROM rejects WHERE run_id = ?1 "
                       "ORDER BY reject_id",
    [ST_RUN_STATE] = "SELECT tariff_id, sha256, coalesce(dir, '') FROM tariffs ORDER BY tariff_id",
};

/* Yuan text of a micro-yuan integer column, exactly as cdr_money_format(v, 2):
 * at least 2 decimals, more only when non-zero. */
#define YUAN(c)                                                                         \
    "(CASE WHEN " c " < 0 THEN '-' ELSE '' END || (abs(" c ") / 1000000) || '.' || "    \
    "(CASE WHEN length(rtrim(printf('%06d', abs(" c ") % 1000000), '0')) < 2 "         \
    "THEN substr(printf('%06d', abs(" c ") % 1000000), 1, 2) "                          \
    "ELSE rtrim(printf('%06d', abs(" c ") % 1000000), '0') END))"

/* Schema 2 (contract version 2): a month over many runs. Findings,
 * candidates and unrated records are versioned: a run that re-rates a
 * subscriber-month marks the rows it replaces with superseded_by = its run;
 * the current ones have superseded_by NULL (views current_*). h is the
 * subscribers' order (cdr_msisdn_hash with its top bit flipped, so that
 * SQLite's signed order is the hash's unsigned order) and seq a record's
 * place in its subscriber-month's time order: ORDER BY h, msisdn, month,
 * seq is the engine's output order. (Its subscriber indexes of findings
 * and candidates are replaced in schema 4: schema_v3_to_v4.) */
static const char schema_v2[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE tariffs ("
    " tariff_id INTEGER PRIMARY KEY,"
    " sha256 TEXT NOT NULL UNIQUE,"
    " dir TEXT,"
    " first_run INTEGER);"
    "CREATE TABLE runs ("
    " run_id INTEGER PRIMARY KEY,"
    " started_at TEXT NOT NULL,"
    " finished_at TEXT,"
    " tool_version TEXT NOT NULL,"
    " contract_version INTEGER NOT NULL,"
    " command TEXT,"
    " tariff_dir TEXT,"
    " kind TEXT NOT NULL DEFAULT 'run',"
    " tariff_id INTEGER REFERENCES tariffs(tariff_id),"
    " months TEXT,"
    " submonths INTEGER NOT NULL DEFAULT 0,"
    " submonths_full INTEGER NOT NULL DEFAULT 0,"
    " changes INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER,"
    " status_name TEXT,"
    " files INTEGER NOT NULL DEFAULT 0,"
    " rows_read INTEGER NOT NULL DEFAULT 0,"
    " rows_accepted INTEGER NOT NULL DEFAULT 0,"
    " rows_rejected INTEGER NOT NULL DEFAULT 0,"
    " rows_unrated INTEGER NOT NULL DEFAULT 0,"
    " findings INTEGER NOT NULL DEFAULT 0,"
    " overcharged_records INTEGER NOT NULL DEFAULT 0,"
    " leakage_records INTEGER NOT NULL DEFAULT 0,"
    " candidates INTEGER NOT NULL DEFAULT 0,"
    " overcharge_micro INTEGER NOT NULL DEFAULT 0,"
    " refund_micro INTEGER NOT NULL DEFAULT 0,"
    " leakage_micro INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE files ("
    " file_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " file_index INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " size INTEGER,"
    " bytes INTEGER,"
    " sha256 TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),"
    " content_sha256 TEXT CHECK (content_sha256 IS NULL OR length(content_sha256) = 64),"
    " state TEXT NOT NULL DEFAULT 'ingested' CHECK (state IN ('ingested', 'failed', 'refused')),"
    " copies INTEGER NOT NULL DEFAULT 0,"
    " gzip INTEGER,"
    " rows_read INTEGER NOT NULL DEFAULT 0,"
    " rows_accepted INTEGER NOT NULL DEFAULT 0,"
    " rows_rejected INTEGER NOT NULL DEFAULT 0,"
    " blank_lines INTEGER NOT NULL DEFAULT 0,"
    " rows_filtered INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER,"
    " message TEXT,"
    " UNIQUE (run_id, file_index));"
    "CREATE UNIQUE INDEX files_sha ON files(sha256) WHERE state = 'ingested';"
    "CREATE INDEX files_content ON files(content_sha256) WHERE state = 'ingested';"
    "CREATE TABLE findings ("
    " finding_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " file_id INTEGER REFERENCES files(file_id) ON DELETE CASCADE,"
    " msisdn TEXT NOT NULL,"
    " month TEXT NOT NULL,"
    " record_id TEXT NOT NULL,"
    " file TEXT,"
    " line INTEGER,"
    " category TEXT NOT NULL,"
    " flags TEXT NOT NULL DEFAULT '',"
    " billed_micro INTEGER NOT NULL,"
    " rebuilt_micro INTEGER NOT NULL,"
    " difference_micro INTEGER NOT NULL,"
    " service TEXT,"
    " start_time TEXT,"
    " peer TEXT,"
    " offset INTEGER,"
    " explanation TEXT,"
    " h INTEGER NOT NULL DEFAULT 0,"
    " seq INTEGER NOT NULL DEFAULT 0,"
    " superseded_by INTEGER REFERENCES runs(run_id));"
    "CREATE TABLE candidates ("
    " candidate_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " msisdn TEXT NOT NULL,"
    " month TEXT NOT NULL,"
    " records INTEGER NOT NULL,"
    " overcharge_micro INTEGER NOT NULL,"
    " refund_micro INTEGER NOT NULL,"
    " categories TEXT NOT NULL,"
    " tier INTEGER NOT NULL,"
    " policy TEXT NOT NULL,"
    " special INTEGER NOT NULL,"
    " flags TEXT NOT NULL DEFAULT '',"
    " policy_reason TEXT,"
    " h INTEGER NOT NULL DEFAULT 0,"
    " superseded_by INTEGER REFERENCES runs(run_id));"
    "CREATE TABLE unrated ("
    " unrated_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " file_id INTEGER REFERENCES files(file_id) ON DELETE CASCADE,"
    " file TEXT,"
    " line INTEGER,"
    " offset INTEGER,"
    " record_id TEXT NOT NULL,"
    " msisdn TEXT NOT NULL,"
    " month TEXT NOT NULL,"
    " service TEXT,"
    " billed_micro INTEGER NOT NULL,"
    " reason TEXT,"
    " h INTEGER NOT NULL DEFAULT 0,"
    " seq INTEGER NOT NULL DEFAULT 0,"
    " superseded_by INTEGER REFERENCES runs(run_id));"
    "CREATE TABLE changes ("
    " change_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " msisdn TEXT NOT NULL,"
    " month TEXT NOT NULL,"
    " previous_refund_micro INTEGER NOT NULL,"
    " refund_micro INTEGER NOT NULL,"
    " delta_micro INTEGER NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('new', 'increased', 'decreased', 'withdrawn')),"
    " h INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE rejects ("
    " reject_id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,"
    " file_id INTEGER REFERENCES files(file_id) ON DELETE CASCADE,"
    " file TEXT NOT NULL,"
    " line INTEGER NOT NULL,"
    " offset INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " raw BLOB,"   /* the row's bytes as read: may hold NUL or invalid UTF-8 */
    " raw_len INTEGER);"
    "CREATE TABLE state_files ("
    " name TEXT PRIMARY KEY,"
    " month TEXT NOT NULL,"
    " kind TEXT NOT NULL CHECK (kind IN ('segment', 'checkpoint')),"
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " records INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL);"
    "CREATE INDEX files_run ON files(run_id);"
    "CREATE INDEX findings_msisdn_month ON findings(msisdn, month);"
    "CREATE INDEX findings_run ON findings(run_id);"
    "CREATE INDEX findings_file ON findings(file_id);"
    "CREATE INDEX findings_current ON findings(month, h, msisdn, seq) WHERE superseded_by IS NULL;"
    "CREATE INDEX candidates_msisdn_month ON candidates(msisdn, month);"
    "CREATE INDEX candidates_run ON candidates(run_id);"
    "CREATE INDEX candidates_current ON candidates(month, h, msisdn) WHERE superseded_by IS NULL;"
    "CREATE INDEX unrated_msisdn_month ON unrated(msisdn, month);"
    "CREATE INDEX unrated_file ON unrated(file_id);"
    "CREATE INDEX unrated_run ON unrated(run_id);"
    "CREATE INDEX changes_run ON changes(run_id);"
    "CREATE INDEX rejects_run ON rejects(run_id);"
    "CREATE INDEX rejects_file ON rejects(file_id);"
    "CREATE VIEW current_findings AS SELECT * FROM findings WHERE superseded_by IS NULL;"
    "CREATE VIEW current_candidates AS SELECT * FROM candidates WHERE superseded_by IS NULL;"
    "CREATE VIEW current_unrated AS SELECT * FROM unrated WHERE superseded_by IS NULL;"
    "CREATE VIEW findings_csv AS SELECT run_id, msisdn, month, record_id, file, line, "
    " category, flags, " YUAN("billed_micro") " AS billed, " YUAN("rebuilt_micro")
    " AS rebuilt, " YUAN("difference_micro") " AS difference, service, start_time, peer, "
    " offset, explanation, superseded_by FROM findings;"
    "CREATE VIEW candidates_csv AS SELECT run_id, msisdn, month, records, "
    YUAN("overcharge_micro") " AS overcharge, " YUAN("refund_micro") " AS refund, "
    " categories, tier, policy, special, flags, policy_reason, superseded_by FROM candidates;"
    "CREATE VIEW changes_csv AS SELECT run_id, msisdn, month, "
    YUAN("previous_refund_micro") " AS previous_refund, " YUAN("refund_micro") " AS refund, "
    YUAN("delta_micro") " AS delta, status FROM changes;";

struct cdr_db {
    sqlite3 *h;
    sqlite3_stmt *st[ST__COUNT];
    int64_t run_id; /* the open run, 0 if none */
    int64_t *file_ids; /* file_index -> file_id of the open run (0 = none) */
    size_t n_file_ids;
    char message[512];
    /* a commit begun (cdr_db_commit_begin): its thread, held at the gate */
    cdr_dbgate gate;
    pthread_t committer;
    int begun, committing, commit_rc; /* begun; on its thread; its result */
};

/* SQLite result code -> cdr_err (db.h). */
static cdr_err map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return CDR_OK;
    case SQLITE_NOMEM:
        return CDR_E_NOMEM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        return CDR_E_IO;
    default:
        return CDR_E_DB;
    }
}

static cdr_err dberr(cdr_db *db, int rc, const char *what)
{
    const char *m = db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc), *s = sqlite3_errstr(rc);
    if (strcmp(m, s) == 0)
        snprintf(db->message, sizeof db->message, "%s: %s", what, m);
    else
        snprintf(db->message, sizeof db->message, "%s: %s (%s)", what, m, s);
    return map_rc(rc);
}

/* A database that cannot be opened: SQLite's words, and the likely reason
 * when it is that the file's directory is missing. */
static cdr_err open_err(cdr_db *db, int rc, const char *path)
{
    cdr_err e = dberr(db, rc, "open");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if ((rc & 0xff) == SQLITE_CANTOPEN && slash && slash != dir) {
        *slash = '\0';
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            size_t n = strlen(db->message);
            snprintf(db->message + n, sizeof db->message - n, "; no directory %s", dir);
        }
    }
    return e;
}

static cdr_err failmsg(cdr_db *db, cdr_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->message, sizeof db->message, fmt, ap);
    va_end(ap);
    return e;
}

static cdr_err exec(cdr_db *db, const char *sql)
{
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CDR_OK : dberr(db, rc, "sql");
}

static sqlite3_stmt *stmt(cdr_db *db, int which, cdr_err *e)
{
    if (!db->st[which]) {
        int rc = sqlite3_prepare_v3(db->h, st_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->st[which], NULL);
        if (rc != SQLITE_OK) {
            *e = dberr(db, rc, "prepare");
            return NULL;
        }
    }
    *e = CDR_OK;
    return db->st[which];
}

/* Step a write statement to completion, then reset it. */
static cdr_err step_done(cdr_db *db, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    cdr_err e = rc == SQLITE_DONE ? CDR_OK : dberr(db, rc, what);
    sqlite3_reset(s);
    return e;
}

static cdr_err need_run(cdr_db *db)
{
    return db->run_id ? CDR_OK : failmsg(db, CDR_E_INTERNAL, "no run is open");
}

/* The statement of a write into the open run: NULL with *e set when no
 * run is open or it cannot be prepared. */
static sqlite3_stmt *run_stmt(cdr_db *db, int which, cdr_err *e)
{
    if ((*e = need_run(db)) != CDR_OK)
        return NULL;
    return stmt(db, which, e);
}

/* A read statement after its last step (rc): CDR_OK at a row or at the
 * end, else the error; the statement is reset. */
static cdr_err step_end(cdr_db *db, sqlite3_stmt *s, int rc, const char *what)
{
    cdr_err e = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? CDR_OK : dberr(db, rc, what);
    sqlite3_reset(s);
    return e;
}

/* Steps a bound read statement through its rows, calling row(s, ctx) on
 * each until it returns nonzero; *rows (when not NULL) is how many rows
 * were seen; the statement is reset. */
static cdr_err each_row(cdr_db *db, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ctx),
                        void *ctx, const char *what, int *rows)
{
    int rc, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (row(s, ctx))
            break;
    }
    if (rows)
        *rows = n;
    return step_end(db, s, rc, what);
}

/* Column 0 of a bound read statement's first row: as an integer into *v
 * (left as it is without a row). */
static cdr_err first_int64(cdr_db *db, sqlite3_stmt *s, int64_t *v, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    return step_end(db, s, rc, what);
}

/* ... and as text into buf (*found 1), or "" (*found 0) without a row. */
static cdr_err first_text(cdr_db *db, sqlite3_stmt *s, char *buf, size_t len, int *found,
                          const char *what)
{
    *found = 0;
    if (len)
        buf[0] = '\0';
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        snprintf(buf, len, "%s", t ? t : "");
        *found = 1;
    }
    return step_end(db, s, rc, what);
}

static int64_t pragma_int(cdr_db *db, const char *sql, cdr_err *e)
{
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            v = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    *e = (rc == SQLITE_OK || rc == SQLITE_DONE) ? CDR_OK : dberr(db, rc, sql);
    sqlite3_finalize(s);
    return v;
}

/* Schema 3 (input profiles, issue 17): the profile a run read its files
 * with, and each file (path as given and the SHA-256 of its bytes; NULL
 * without one: a shard's run takes pieces that split read, each with its
 * own), and
 * the rows a profile skipped (header and trailer records, record types that
 * are not rated): rows_read = rows_accepted + rows_rejected + rows_skipped.
 * A new database is made as schema 2 and then migrated, so that a new
 * database and a migrated one are the same by construction. The added
 * columns are at the end of their tables (ALTER TABLE ADD COLUMN). */
static const char schema_v2_to_v3[] =
    "ALTER TABLE runs ADD COLUMN profile TEXT;"
    "ALTER TABLE runs ADD COLUMN profile_sha256 TEXT"
    " CHECK (profile_sha256 IS NULL OR length(profile_sha256) = 64);"
    "ALTER TABLE runs ADD COLUMN rows_skipped INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE files ADD COLUMN rows_skipped INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE files ADD COLUMN profile TEXT;"
    "ALTER TABLE files ADD COLUMN profile_sha256 TEXT"
    " CHECK (profile_sha256 IS NULL OR length(profile_sha256) = 64);"
    "PRAGMA user_version = 3;";

/* Schema 4 (issue 13, a month over many nights): one subscriber index per
 * table where there were two. findings(msisdn, month) and the partial
 * findings_current(month, h, msisdn, seq) WHERE superseded_by IS NULL
 * became the full findings_key(month, h, msisdn, seq); the same for
 * candidates. A night's inserts then dirty one index of random pages
 * instead of two, and marking rows superseded changes no index (the
 * partial one lost an entry for each). Current rows are found by the key
 * with superseded_by IS NULL as a filter; a number's rows by (month, h,
 * msisdn), h from cdr_msisdn_hash. Same rows, same order: no output
 * changes (docs/database.md, docs/performance.md). candidates_key ends
 * with superseded_by: a candidate changes on most nights, so a
 * subscriber-month holds up to a version a night, and superseding its
 * current one through (month, h, msisdn) alone read every version's row
 * (night 30 of the bench month: 2,800 supersedes, 0.11 s); with the column
 * the key finds the current row itself, and the entry it moves stays on
 * the leaf where the new version's goes. */
static const char schema_v3_to_v4[] =
    "DROP INDEX findings_msisdn_month;"
    "DROP INDEX findings_current;"
    "DROP INDEX candidates_msisdn_month;"
    "DROP INDEX candidates_current;"
    "CREATE INDEX findings_key ON findings(month, h, msisdn, seq);"
    "CREATE INDEX candidates_key ON candidates(month, h, msisdn, superseded_by);"
    "PRAGMA user_version = 4;";
_Static_assert(CDR_DB_SCHEMA_VERSION == 4, "setup_schema migrates up to schema 4");

static void utc_text(int64_t t, char *buf, size_t n)
{
    time_t tt = t ? (time_t)t : time(NULL);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cdr_err setup_schema(cdr_db *db)
{
    cdr_err e;
    /* Decide and create under a write lock, so two processes creating the
     * same new database do not both run the DDL. */
    if ((e = exec(db, "BEGIN IMMEDIATE")) != CDR_OK)
        return e;
    int64_t ver = pragma_int(db, "PRAGMA user_version", &e);
    int64_t app = e == CDR_OK ? pragma_int(db, "PRAGMA application_id", &e) : 0;
    int64_t ntab = e == CDR_OK ? pragma_int(db, "SELECT count(*) FROM sqlite_schema", &e) : 0;
    if (e != CDR_OK)
        goto fail;
    if (ver == 0 && app == 0 && ntab == 0) {
        char sql[64];
        if ((e = exec(db, schema_v2)) != CDR_OK)
            goto fail;
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", CDR_DB_APPLICATION_ID);
        if ((e = exec(db, sql)) != CDR_OK)
            goto fail;
        if ((e = exec(db, "PRAGMA user_version = 2")) != CDR_OK)
            goto fail;
        ver = 2; /* (and migrated below, like any database of schema 2) */
    } else if (app != CDR_DB_APPLICATION_ID) {
        e = failmsg(db, CDR_E_DB, "not a cdrecon database (application_id %" PRId64 ")", app);
        goto fail;
    } else if (ver > CDR_DB_SCHEMA_VERSION) {
        e = failmsg(db, CDR_E_DB,
                    "database schema version %" PRId64 " is newer than this tool's (%d)", ver,
                    CDR_DB_SCHEMA_VERSION);
        goto fail;
    } else if (ver == 1) {
        e = failmsg(db, CDR_E_DB,
                    "database of schema version 1 (cdrecon before the month state): it holds "
                    "no month state to continue from; start a new database and ingest the "
                    "month's files into it");
        goto fail;
    } else if (ver < 1) {
        e = failmsg(db, CDR_E_DB, "database schema version %" PRId64 " unknown", ver);
        goto fail;
    }
    /* Migrations, each in this transaction: a database is migrated whole or
     * not at all. (Future: if (ver < 5) { ...; user_version = 5 }.) */
    if (ver < 3 && (e = exec(db, schema_v2_to_v3)) != CDR_OK)
        goto fail;
    if (ver < 4 && (e = exec(db, schema_v3_to_v4)) != CDR_OK)
        goto fail;
    return exec(db, "COMMIT");
fail:
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return e;
}

/* SQLite counts every allocation under a global mutex for its memory
 * statistics, which cdrecon never reads: off, once, before SQLite starts
 * (a no-op, SQLITE_MISUSE, if the program started SQLite already). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;
static void sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* cdr_total(x): the sum of the non-NULL integers x as cdr_money_total_add
 * makes it (docs/rating.md "Limits and sums"): exact while it fits in 64
 * bits, else INT64_MAX (out of range), never an error; 0 over no rows.
 * Used only by ST_RUN_FINISH: the schema and the views never name it, so
 * any SQLite client reads the database. */
static void total_step(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    cdr_money *acc = sqlite3_aggregate_context(cx, sizeof *acc);
    if (!acc) {
        sqlite3_result_error_nomem(cx);
        return;
    }
    if (sqlite3_value_type(argv[0]) != SQLITE_NULL)
        *acc = cdr_money_total_add(*acc, sqlite3_value_int64(argv[0]));
}

static void total_final(sqlite3_context *cx)
{
    cdr_money *acc = sqlite3_aggregate_context(cx, 0);
    sqlite3_result_int64(cx, acc ? *acc : 0);
}

cdr_err cdr_db_open(const char *path, cdr_db **out, char *err, size_t errlen)
{
    pthread_once(&sqlite_once, sqlite_setup);
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    cdr_db *db = calloc(1, sizeof *db);
    if (!db) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return CDR_E_NOMEM;
    }
    cdr_err e;
    /* NOMUTEX: a cdr_db is used by one thread at a time (the engine calls its
     * sink on the thread that called cdr_engine_finish), so SQLite's own
     * per-call locking is not needed. */
    int rc = sqlite3_open_v2(path, &db->h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
                                 SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX,
                             cdr_dbgate_vfs()); /* (NULL: the default; commits are not held) */
    if (rc != SQLITE_OK) {
        e = open_err(db, rc, path);
        goto fail;
    }
    sqlite3_busy_timeout(db->h, 10000);
    rc = sqlite3_create_function_v2(db->h, "cdr_total", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                    NULL, NULL, total_step, total_final, NULL);
    if (rc != SQLITE_OK) {
        e = dberr(db, rc, "cdr_total");
        goto fail;
    }
    /* Rollback journal, fully synchronous: a killed run leaves a hot journal
     * that the next open rolls back. */
    if ((e = exec(db, "PRAGMA journal_mode = DELETE")) != CDR_OK ||
        (e = exec(db, "PRAGMA synchronous = FULL")) != CDR_OK ||
        (e = exec(db, "PRAGMA foreign_keys = ON")) != CDR_OK ||
        (e = exec(db, "PRAGMA cache_size = -65536")) != CDR_OK || /* 64 MiB */
        (e = exec(db, "PRAGMA trusted_schema = OFF")) != CDR_OK)
        goto fail;
    if ((e = setup_schema(db)) != CDR_OK)
        goto fail;
    *out = db;
    return CDR_OK;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", db->message); /* (the caller names the file) */
    cdr_db_close(db);
    return e;
}

cdr_err cdr_db_open_readonly(const char *path, cdr_db **out, char *err, size_t errlen)
{
    pthread_once(&sqlite_once, sqlite_setup);
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    cdr_db *db = calloc(1, sizeof *db);
    if (!db)
        return CDR_E_NOMEM;
    cdr_err e;
    int rc = sqlite3_open_v2(path, &db->h,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        e = open_err(db, rc, path);
        goto fail;
    }
    sqlite3_busy_timeout(db->h, 10000);
    int64_t ver = pragma_int(db, "PRAGMA user_version", &e);
    int64_t app = e == CDR_OK ? pragma_int(db, "PRAGMA application_id", &e) : 0;
    if (e != CDR_OK)
        goto fail;
    /* schemas 2 and 3 are read as they are (a read-only open cannot
     * migrate them; the next run does): their readers never ask for what
     * schema 3 added, and find the same rows through the older indexes */
    if (app != CDR_DB_APPLICATION_ID || ver < 2 || ver > CDR_DB_SCHEMA_VERSION) {
        e = failmsg(db, CDR_E_DB, "not a cdrecon database of schema 2 to %d (application_id %" PRId64
                    ", schema %" PRId64 ")", CDR_DB_SCHEMA_VERSION, app, ver);
        goto fail;
    }
    *out = db;
    return CDR_OK;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", db->message); /* (the caller names the file) */
    cdr_db_close(db);
    return e;
}

void cdr_db_close(cdr_db *db)
{
    if (!db)
        return;
    if (db->run_id || db->begun)
        cdr_db_rollback_run(db);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_close_v2(db->h);
    free(db->file_ids);
    free(db);
}

const char *cdr_db_message(const cdr_db *db) { return db ? db->message : ""; }

void *cdr_db_sqlite(cdr_db *db) { return db->h; }

cdr_err cdr_db_check(cdr_db *db)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db->h, "PRAGMA integrity_check", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return dberr(db, rc, "integrity_check");
    cdr_err e = CDR_OK;
    int rows = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (rows++ == 0 && t && strcmp(t, "ok") == 0)
            continue;
        if (e == CDR_OK)
            e = failmsg(db, CDR_E_DB, "integrity_check: %s", t ? t : "?");
    }
    if (rc != SQLITE_DONE && e == CDR_OK)
        e = dberr(db, rc, "integrity_check");
    sqlite3_finalize(s);
    if (e == CDR_OK && rows == 0)
        e = failmsg(db, CDR_E_DB, "integrity_check: no answer");
    return e;
}

static void bind_month(sqlite3_stmt *s, int col, cdr_month m, char *buf);

typedef struct warm_stop {
    int (*stop)(void *u);
    void *u;
} warm_stop;

static int warm_progress(void *arg)
{
    const warm_stop *w = arg;
    return w->stop(w->u);
}

cdr_err cdr_db_warm(cdr_db *db, int (*stop)(void *u), void *u)
{
    /* the newest month with a candidate, and the one before it (late
     * records): a run's inserts land in their part of the keys, and its
     * supersedes on their current candidates' rows */
    static const char *const sql[] = {
        "SELECT count(*) FROM findings WHERE month >= ?1",
        "SELECT sum(refund_micro) FROM candidates WHERE month >= ?1 AND superseded_by IS NULL",
    };
    warm_stop w = {stop, u};
    sqlite3_progress_handler(db->h, 4096, warm_progress, &w);
    cdr_err e = CDR_OK;
    cdr_month newest = 0;
    int have = 0;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db->h, "SELECT max(month) FROM candidates", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW &&
        sqlite3_column_type(s, 0) == SQLITE_TEXT)
        have = cdr_month_parse((const char *)sqlite3_column_text(s, 0),
                               (size_t)sqlite3_column_bytes(s, 0), &newest) == CDR_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE && rc != SQLITE_INTERRUPT && rc != SQLITE_OK)
        e = dberr(db, rc, "warming the cache");
    sqlite3_finalize(s);
    char from[16];
    for (size_t i = 0; e == CDR_OK && have && i < sizeof sql / sizeof *sql; i++) {
        s = NULL;
        if ((rc = sqlite3_prepare_v2(db->h, sql[i], -1, &s, NULL)) == SQLITE_OK) {
            bind_month(s, 1, newest - 1, from);
            rc = sqlite3_step(s);
        }
        sqlite3_finalize(s);
        if (rc == SQLITE_INTERRUPT)
            break; /* (stopped: the caller has better to do now) */
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            e = dberr(db, rc, "warming the cache");
    }
    sqlite3_progress_handler(db->h, 0, NULL, NULL);
    return e;
}

static void hex(const uint8_t d[32], char *buf)
{
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        buf[2 * i] = x[d[i] >> 4];
        buf[2 * i + 1] = x[d[i] & 15];
    }
    buf[64] = '\0';
}

cdr_err cdr_db_file_known(cdr_db *db, const uint8_t sha256[32], int64_t *run_id)
{
    cdr_err e;
    char h[65];
    *run_id = 0;
    sqlite3_stmt *s = stmt(db, ST_FILE_KNOWN, &e);
    if (!s)
        return e;
    hex(sha256, h);
    sqlite3_bind_text(s, 1, h, 64, SQLITE_STATIC);
    return first_int64(db, s, run_id, "file_known");
}

cdr_err cdr_db_size_known(cdr_db *db, uint64_t size, int *maybe)
{
    cdr_err e;
    *maybe = 1;
    sqlite3_stmt *s = stmt(db, ST_SIZE_KNOWN, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, (int64_t)size);
    int rc = sqlite3_step(s);
    *maybe = rc != SQLITE_DONE;
    return step_end(db, s, rc, "size_known");
}

cdr_err cdr_db_begin_run(cdr_db *db, const cdr_db_run_info *info, int64_t *run_id)
{
    cdr_err e;
    char ts[32];
    *run_id = 0;
    if (db->run_id)
        return failmsg(db, CDR_E_INTERNAL, "a run is already open");
    if ((e = exec(db, "BEGIN IMMEDIATE")) != CDR_OK)
        return e;
    sqlite3_stmt *s = stmt(db, ST_RUN_INSERT, &e);
    if (!s)
        goto fail;
    utc_text(info ? info->started_at : 0, ts, sizeof ts);
    sqlite3_bind_text(s, 1, ts, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, info && info->tool_version ? info->tool_version : CDRECON_VERSION,
                      -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, CDRECON_CONTRACT_VERSION);
    sqlite3_bind_text(s, 4, info ? info->command : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, info ? info->tariff_dir : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, info && info->kind ? info->kind : "run", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, info ? info->profile : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, info && info->profile ? info->profile_sha256 : NULL, -1,
                      SQLITE_STATIC);
    if ((e = step_done(db, s, "insert run")) != CDR_OK)
        goto fail;
    db->run_id = sqlite3_last_insert_rowid(db->h);
    db->n_file_ids = 0;
    *run_id = db->run_id;
    return CDR_OK;
fail:
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return e;
}

static cdr_err map_file(cdr_db *db, uint32_t idx, int64_t file_id)
{
    if (idx >= db->n_file_ids) {
        size_t n = db->n_file_ids ? db->n_file_ids : 16;
        while (n <= idx)
            n *= 2;
        int64_t *p = realloc(db->file_ids, n * sizeof *p);
        if (!p)
            return failmsg(db, CDR_E_NOMEM, "out of memory");
        memset(p + db->n_file_ids, 0, (n - db->n_file_ids) * sizeof *p);
        db->file_ids = p;
        db->n_file_ids = n;
    }
    db->file_ids[idx] = file_id;
    return CDR_OK;
}

static void bind_file_id(cdr_db *db, sqlite3_stmt *s, int col, uint32_t idx)
{
    if (idx < db->n_file_ids && db->file_ids[idx])
        sqlite3_bind_int64(s, col, db->file_ids[idx]);
    else
        sqlite3_bind_null(s, col);
}

cdr_err cdr_db_file_start(cdr_db *db, uint32_t file_index, const char *name, int64_t *file_id)
{
    cdr_err e;
    *file_id = 0;
    sqlite3_stmt *s = run_stmt(db, ST_FILE_INSERT, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, db->run_id);
    sqlite3_bind_int64(s, 2, file_index);
    sqlite3_bind_text(s, 3, name ? name : "", -1, SQLITE_STATIC);
    if ((e = step_done(db, s, "insert file")) != CDR_OK)
        return e;
    *file_id = sqlite3_last_insert_rowid(db->h);
    return map_file(db, file_index, *file_id);
}

cdr_err cdr_db_file_profile(cdr_db *db, int64_t file_id, const char *profile,
                            const char *sha256_hex)
{
    cdr_err e;
    if ((e = need_run(db)) != CDR_OK)
        return e;
    if (profile && (!sha256_hex || strlen(sha256_hex) != 64))
        return failmsg(db, CDR_E_INTERNAL, "a profile without its SHA-256");
    sqlite3_stmt *s = stmt(db, ST_FILE_PROFILE, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, file_id);
    sqlite3_bind_text(s, 2, profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, profile ? sha256_hex : NULL, -1, SQLITE_STATIC);
    return step_done(db, s, "file profile");
}

cdr_err cdr_db_file_finish(cdr_db *db, int64_t file_id, const cdr_file_stats *st)
{
    cdr_err e;
    char h[65];
    sqlite3_stmt *s = run_stmt(db, ST_FILE_FINISH, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, file_id);
    sqlite3_bind_int64(s, 2, (int64_t)st->size);
    sqlite3_bind_int64(s, 3, (int64_t)st->bytes);
    if (st->status == CDR_OK) {
        hex(st->sha256, h);
        sqlite3_bind_text(s, 4, h, 64, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(s, 4);
    }
    sqlite3_bind_int(s, 5, st->gzip ? 1 : 0);
    sqlite3_bind_int64(s, 6, (int64_t)st->rows_read);
    sqlite3_bind_int64(s, 7, (int64_t)st->rows_accepted);
    sqlite3_bind_int64(s, 8, (int64_t)st->rows_rejected);
    sqlite3_bind_int64(s, 9, (int64_t)st->blank_lines);
    sqlite3_bind_int64(s, 10, (int64_t)st->rows_filtered);
    sqlite3_bind_int(s, 11, (int)st->status);
    sqlite3_bind_text(s, 12, st->message, -1, SQLITE_STATIC);
    char ch[65];
    if (st->status == CDR_OK && st->has_content_sha256) {
        hex(st->content_sha256, ch);
        sqlite3_bind_text(s, 13, ch, 64, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(s, 13);
    }
    sqlite3_bind_text(s, 14, st->status == CDR_OK ? "ingested" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 15, (int64_t)st->rows_skipped);
    if ((e = step_done(db, s, "update file")) != CDR_OK)
        return e;
    if (sqlite3_changes(db->h) != 1)
        return failmsg(db, CDR_E_INTERNAL, "file %" PRId64 " is not in the run", file_id);
    return CDR_OK;
}

cdr_err cdr_db_add_file(cdr_db *db, uint32_t file_index, const char *name,
                        const cdr_file_stats *stats, int64_t *file_id)
{
    cdr_err e = cdr_db_file_start(db, file_index, name, file_id);
    if (e != CDR_OK)
        return e;
    e = cdr_db_file_finish(db, *file_id, stats);
    if (e != CDR_OK) { /* all or nothing: remove the half-added row */
        char keep[sizeof db->message];
        memcpy(keep, db->message, sizeof keep);
        cdr_db_file_drop(db, *file_id);
        memcpy(db->message, keep, sizeof keep);
        *file_id = 0;
    }
    return e;
}

cdr_err cdr_db_file_drop(cdr_db *db, int64_t file_id)
{
    cdr_err e;
    sqlite3_stmt *s = run_stmt(db, ST_FILE_DROP, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, file_id);
    if ((e = step_done(db, s, "drop file")) != CDR_OK)
        return e;
    for (size_t i = 0; i < db->n_file_ids; i++)
        if (db->file_ids[i] == file_id)
            db->file_ids[i] = 0;
    return CDR_OK;
}

/* A borrowed view as text ("" for an absent view: NOT NULL columns). */
static void bind_str(sqlite3_stmt *s, int col, cdr_str v)
{
    sqlite3_bind_text(s, col, v.p ? v.p : "", v.p ? (int)v.n : 0, SQLITE_STATIC);
}

static void bind_month(sqlite3_stmt *s, int col, cdr_month m, char *buf)
{
    size_t n = cdr_month_format(m, buf);
    sqlite3_bind_text(s, col, buf, (int)n, SQLITE_STATIC);
}

/* ?1 the open run, ?2 the msisdn, ?3 the month (text in mon[16]). */
static void bind_run_who(cdr_db *db, sqlite3_stmt *s, cdr_str msisdn, cdr_month month, char *mon)
{
    sqlite3_bind_int64(s, 1, db->run_id);
    bind_str(s, 2, msisdn);
    bind_month(s, 3, month, mon);
}

/* An msisdn hash as stored: a signed column that orders as the unsigned
 * hash does (the top bit flipped). */
static void bind_hash(sqlite3_stmt *s, int col, uint64_t h)
{
    sqlite3_bind_int64(s, col, (int64_t)(h ^ 0x8000000000000000ull));
}

static uint64_t col_hash(sqlite3_stmt *s, int col)
{
    return (uint64_t)sqlite3_column_int64(s, col) ^ 0x8000000000000000ull;
}

cdr_err cdr_db_add_reject(cdr_db *db, const cdr_reject *r)
{
    cdr_err e;
    sqlite3_stmt *s = run_stmt(db, ST_REJECT_INSERT, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, db->run_id);
    bind_file_id(db, s, 2, r->file_index);
    sqlite3_bind_text(s, 3, r->file ? r->file : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)r->line);
    sqlite3_bind_int64(s, 5, (int64_t)r->offset);
    sqlite3_bind_text(s, 6, r->reason ? r->reason : "", -1, SQLITE_STATIC);
    /* raw as a BLOB: the bytes exactly (a NUL or invalid UTF-8 in a TEXT
     * value cuts it short or makes readers such as Python's sqlite3 fail) */
    sqlite3_bind_blob(s, 7, r->raw.p ? r->raw.p : "", (int)r->raw.n, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (int64_t)(r->raw_len ? r->raw_len : r->raw.n));
    return step_done(db, s, "insert reject");
}

cdr_err cdr_db_add_finding(cdr_db *db, const cdr_finding *f)
{
    cdr_err e;
    char mon[16], fl[64], ts[32];
    sqlite3_stmt *s = run_stmt(db, ST_FINDING_INSERT, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, db->run_id);
    if (f->file_db_id)
        sqlite3_bind_int64(s, 2, f->file_db_id);
    else
        bind_file_id(db, s, 2, f->file_index);
    bind_str(s, 3, f->msisdn);
    bind_month(s, 4, f->month, mon);
    bind_str(s, 5, f->record_id);
    sqlite3_bind_text(s, 6, f->file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, (int64_t)f->line);
    sqlite3_bind_text(s, 8, cdr_category_name(f->category), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, fl, (int)cdr_flags_format(f->flags, fl), SQLITE_STATIC);
    sqlite3_bind_int64(s, 10, f->billed);
    sqlite3_bind_int64(s, 11, f->rebuilt);
    sqlite3_bind_int64(s, 12, f->difference);
    sqlite3_bind_text(s, 13, cdr_service_name(f->service), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 14, ts, (int)cdr_time_format(f->start, ts), SQLITE_STATIC);
    bind_str(s, 15, f->peer);
    sqlite3_bind_int64(s, 16, (int64_t)f->offset);
    sqlite3_bind_text(s, 17, f->explanation, -1, SQLITE_STATIC);
    bind_hash(s, 18, f->msisdn_hash);
    sqlite3_bind_int64(s, 19, (int64_t)f->seq);
    return step_done(db, s, "insert finding");
}

cdr_err cdr_db_add_candidate(cdr_db *db, const cdr_candidate *c)
{
    cdr_err e;
    char mon[16], cats[256], fl[64];
    sqlite3_stmt *s = run_stmt(db, ST_CANDIDATE_INSERT, &e);
    if (!s)
        return e;
    bind_run_who(db, s, c->msisdn, c->month, mon);
    sqlite3_bind_int64(s, 4, c->records);
    sqlite3_bind_int64(s, 5, c->overcharge);
    sqlite3_bind_int64(s, 6, c->refund);
    sqlite3_bind_text(s, 7, cats, (int)cdr_categories_format(c->categories, cats),
                      SQLITE_STATIC);
    sqlite3_bind_int(s, 8, c->tier);
    sqlite3_bind_text(s, 9, cdr_policy_name(c->policy), -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 10, c->special ? 1 : 0);
    sqlite3_bind_text(s, 11, fl, (int)cdr_flags_format(c->flags, fl), SQLITE_STATIC);
    sqlite3_bind_text(s, 12, c->policy_reason, -1, SQLITE_STATIC);
    bind_hash(s, 13, c->msisdn_hash);
    return step_done(db, s, "insert candidate");
}

/* The run's row finished: its end, status and totals. */
static cdr_err finish_run_row(cdr_db *db, const cdr_db_run_end *end)
{
    cdr_err e;
    char ts[32];
    sqlite3_stmt *s = stmt(db, ST_RUN_FINISH, &e);
    if (!s)
        return e;
    utc_text(end ? end->finished_at : 0, ts, sizeof ts);
    cdr_err status = end ? end->status : CDR_OK;
    sqlite3_bind_int64(s, 1, db->run_id);
    sqlite3_bind_text(s, 2, ts, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)status);
    sqlite3_bind_text(s, 4, cdr_errname(status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, end ? (int64_t)end->rows_unrated : 0);
    if (end && end->tariff_id)
        sqlite3_bind_int64(s, 6, end->tariff_id);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_text(s, 7, end && end->months ? end->months : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, end ? (int64_t)end->submonths : 0);
    sqlite3_bind_int64(s, 9, end ? (int64_t)end->submonths_full : 0);
    return step_done(db, s, "finish run");
}

/* A failed commit: the run rolled back, the first error's message kept. */
static cdr_err commit_failed(cdr_db *db, cdr_err e)
{
    char keep[sizeof db->message];
    memcpy(keep, db->message, sizeof keep);
    cdr_db_rollback_run(db);
    /* A commit stopped at its gate left a hot journal and the pager in its
     * error state; the next read plays the journal back, so that the file
     * is as it was before the run when this returns, not at the next open. */
    sqlite3_exec(db->h, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    memcpy(db->message, keep, sizeof keep);
    return e;
}

static cdr_err commit_now(cdr_db *db)
{
    int rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return commit_failed(db, dberr(db, rc, "commit"));
    db->run_id = 0;
    db->n_file_ids = 0;
    return CDR_OK;
}

cdr_err cdr_db_commit_run(cdr_db *db, const cdr_db_run_end *end)
{
    cdr_err e;
    if ((e = need_run(db)) != CDR_OK)
        return e;
    if ((e = finish_run_row(db, end)) != CDR_OK)
        return commit_failed(db, e);
    return commit_now(db);
}

static void *committer_main(void *arg)
{
    cdr_db *db = arg;
    db->commit_rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

cdr_err cdr_db_commit_begin(cdr_db *db, const cdr_db_run_end *end)
{
    cdr_err e;
    if ((e = need_run(db)) != CDR_OK)
        return e;
    if (db->begun)
        return failmsg(db, CDR_E_INTERNAL, "a commit is already begun");
    if ((e = finish_run_row(db, end)) != CDR_OK)
        return commit_failed(db, e);
    db->begun = 1;
    const char *path = sqlite3_db_filename(db->h, "main");
    if (cdr_dbgate_arm(&db->gate, path) != 0)
        return CDR_OK; /* (no gate: cdr_db_commit_end commits) */
    if (pthread_create(&db->committer, NULL, committer_main, db) != 0) {
        cdr_dbgate_disarm(&db->gate);
        return CDR_OK;
    }
    db->committing = 1;
    return CDR_OK;
}

cdr_err cdr_db_commit_end(cdr_db *db, int go)
{
    if (!db->begun)
        return failmsg(db, CDR_E_INTERNAL, "no commit is begun");
    db->begun = 0;
    if (!db->committing)
        return go ? commit_now(db)
                  : commit_failed(db, failmsg(db, CDR_E_INTERRUPTED, "the commit was called off"));
    cdr_dbgate_release(&db->gate, go);
    pthread_join(db->committer, NULL);
    cdr_dbgate_disarm(&db->gate);
    db->committing = 0;
    if (db->commit_rc != SQLITE_OK)
        return commit_failed(db, go ? dberr(db, db->commit_rc, "commit")
                                    : failmsg(db, CDR_E_INTERRUPTED, "the commit was called off"));
    db->run_id = 0;
    db->n_file_ids = 0;
    return CDR_OK;
}

int cdr_db_try_lock(cdr_db *db)
{
    if (db->run_id || !sqlite3_get_autocommit(db->h))
        return 0;
    sqlite3_busy_timeout(db->h, 0);
    int ok = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_busy_timeout(db->h, 10000);
    return ok;
}

void cdr_db_unlock(cdr_db *db)
{
    if (!db->run_id && !sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

cdr_err cdr_db_rollback_run(cdr_db *db)
{
    if (db->begun) {
        cdr_db_commit_end(db, 0); /* (it rolls back) */
        return CDR_OK;
    }
    cdr_err e = CDR_OK;
    if (!sqlite3_get_autocommit(db->h)) {
        int rc = sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            e = dberr(db, rc, "rollback");
    }
    db->run_id = 0;
    db->n_file_ids = 0;
    return e;
}

/* ------------------------------------------------------------------ */
/* Queries.                                                            */

static cdr_str col_str(sqlite3_stmt *s, int i)
{
    cdr_str v;
    v.p = (const char *)sqlite3_column_text(s, i);
    v.n = (size_t)sqlite3_column_bytes(s, i);
    if (!v.p)
        v.p = "";
    return v;
}

static cdr_category category_from(cdr_str t)
{
    for (int c = 0; c < CDR_CAT__COUNT; c++) {
        const char *n = cdr_category_name((cdr_category)c);
        if (strlen(n) == t.n && memcmp(n, t.p, t.n) == 0)
            return (cdr_category)c;
    }
    return CDR_CAT_NONE;
}

/* "a;b;c" -> the bits that bit_of gives each name (0 for one it does
 * not know). */
static uint32_t names_to_bits(cdr_str t, uint32_t (*bit_of)(cdr_str name))
{
    uint32_t bits = 0;
    size_t i = 0;
    while (i < t.n) {
        size_t j = i;
        while (j < t.n && t.p[j] != ';')
            j++;
        cdr_str one = {t.p + i, j - i};
        bits |= bit_of(one);
        i = j + 1;
    }
    return bits;
}

static uint32_t flag_bit(cdr_str n)
{
    if (n.n == 9 && memcmp(n.p, "duplicate", 9) == 0)
        return CDR_FLAG_DUPLICATE;
    if (n.n == 7 && memcmp(n.p, "overlap", 7) == 0)
        return CDR_FLAG_OVERLAP;
    if (n.n == 8 && memcmp(n.p, "overlong", 8) == 0)
        return CDR_FLAG_OVERLONG;
    return 0;
}

static uint32_t category_bit(cdr_str n)
{
    cdr_category c = category_from(n);
    return c != CDR_CAT_NONE ? 1u << c : 0;
}

static unsigned flags_from(cdr_str t) { return (unsigned)names_to_bits(t, flag_bit); }

static uint32_t categories_from(cdr_str t) { return names_to_bits(t, category_bit); }

/* A row's service column; voice when it names none. */
static cdr_service service_from(cdr_str sv)
{
    cdr_service svc = CDR_SVC_VOICE;
    cdr_service_parse(sv.p, sv.n, &svc);
    return svc;
}

/* Columns 2..16 of a findings query (ST_FINDINGS_FOR, ST_CUR_FINDINGS*:
 * run_id and file_id come first) into f; its views are valid until the
 * next step. Returns what parsing the month column gave. */
static cdr_err finding_from(sqlite3_stmt *s, cdr_finding *f)
{
    memset(f, 0, sizeof *f);
    f->msisdn = col_str(s, 2);
    cdr_str m = col_str(s, 3);
    cdr_err month_rc = cdr_month_parse(m.p, m.n, &f->month);
    f->record_id = col_str(s, 4);
    f->file = (const char *)sqlite3_column_text(s, 5);
    f->line = (uint64_t)sqlite3_column_int64(s, 6);
    f->category = category_from(col_str(s, 7));
    f->flags = flags_from(col_str(s, 8));
    f->billed = sqlite3_column_int64(s, 9);
    f->rebuilt = sqlite3_column_int64(s, 10);
    f->difference = sqlite3_column_int64(s, 11);
    f->service = service_from(col_str(s, 12));
    cdr_str st = col_str(s, 13);
    cdr_time_parse(st.p, st.n, &f->start);
    f->peer = col_str(s, 14);
    f->offset = (uint64_t)sqlite3_column_int64(s, 15);
    f->explanation = (const char *)sqlite3_column_text(s, 16);
    return month_rc;
}

/* Columns 1..11 of a candidates query (ST_CANDIDATES_FOR,
 * ST_CUR_CANDIDATES*: run_id first) into c, as finding_from. */
static cdr_err candidate_from(sqlite3_stmt *s, cdr_candidate *c)
{
    memset(c, 0, sizeof *c);
    c->msisdn = col_str(s, 1);
    cdr_str m = col_str(s, 2);
    cdr_err month_rc = cdr_month_parse(m.p, m.n, &c->month);
    c->records = (uint32_t)sqlite3_column_int64(s, 3);
    c->overcharge = sqlite3_column_int64(s, 4);
    c->refund = sqlite3_column_int64(s, 5);
    c->categories = categories_from(col_str(s, 6));
    c->tier = sqlite3_column_int(s, 7);
    cdr_str pol = col_str(s, 8);
    c->policy = (pol.n == 12 && memcmp(pol.p, "verify_first", 12) == 0) ? CDR_POLICY_VERIFY_FIRST
                                                                        : CDR_POLICY_REFUND_FIRST;
    c->special = sqlite3_column_int(s, 9);
    c->flags = flags_from(col_str(s, 10));
    c->policy_reason = (const char *)sqlite3_column_text(s, 11);
    return month_rc;
}

/* A query's rows to a caller's function (fn, with user), one row
 * function per kind of row below. Findings and candidates by msisdn and
 * month (current 0: a row whose month does not parse is given month) or
 * the current ones of some months (current 1: with the msisdn hash and,
 * for findings, the sequence number). */
struct walk {
    union {
        cdr_db_finding_fn finding;
        cdr_db_candidate_fn candidate;
        int (*unrated)(const cdr_db_unrated *u, void *user);
        int (*run_months)(int64_t run_id, const char *months, void *user);
        int (*change)(const cdr_db_change *c, void *user);
        int (*tariff)(int64_t id, const char *sha256, const char *dir, void *user);
    } fn;
    void *user;
    cdr_month month;
    int current;
};

static int finding_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    cdr_finding f;
    if (finding_from(s, &f) != CDR_OK && !w->current)
        f.month = w->month;
    int64_t run_id = sqlite3_column_int64(s, 0);
    int64_t file_id = sqlite3_column_int64(s, 1);
    if (w->current) {
        f.msisdn_hash = col_hash(s, 17);
        f.seq = (uint64_t)sqlite3_column_int64(s, 18);
    }
    return w->fn.finding && w->fn.finding(&f, run_id, file_id, w->user);
}

static int candidate_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    cdr_candidate c;
    if (candidate_from(s, &c) != CDR_OK && !w->current)
        c.month = w->month;
    int64_t run_id = sqlite3_column_int64(s, 0);
    if (w->current)
        c.msisdn_hash = col_hash(s, 12);
    return w->fn.candidate && w->fn.candidate(&c, run_id, w->user);
}

/* A query by msisdn (?1), month (?2) and the msisdn's hash (?3: the
 * *_key index leads with month and h) through row; CDR_E_NOTFOUND
 * without a row. */
static cdr_err msisdn_month_rows(cdr_db *db, int which, const char *msisdn, cdr_month month,
                                 int (*row)(sqlite3_stmt *s, void *ctx), void *ctx,
                                 const char *what)
{
    cdr_err e;
    char mon[16];
    sqlite3_stmt *s = stmt(db, which, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, msisdn, -1, SQLITE_STATIC);
    bind_month(s, 2, month, mon);
    bind_hash(s, 3, cdr_msisdn_hash(msisdn, strlen(msisdn)));
    int n;
    e = each_row(db, s, row, ctx, what, &n);
    if (e == CDR_OK && n == 0)
        e = CDR_E_NOTFOUND;
    return e;
}

cdr_err cdr_db_findings_for(cdr_db *db, const char *msisdn, cdr_month month,
                            cdr_db_finding_fn fn, void *user)
{
    struct walk w = {.fn.finding = fn, .user = user, .month = month};
    return msisdn_month_rows(db, ST_FINDINGS_FOR, msisdn, month, finding_row, &w,
                             "findings query");
}

cdr_err cdr_db_candidates_for(cdr_db *db, const char *msisdn, cdr_month month,
                              cdr_db_candidate_fn fn, void *user)
{
    struct walk w = {.fn.candidate = fn, .user = user, .month = month};
    return msisdn_month_rows(db, ST_CANDIDATES_FOR, msisdn, month, candidate_row, &w,
                             "candidates query");
}

cdr_err cdr_db_run_totals(cdr_db *db, int64_t run_id, cdr_db_totals *out)
{
    cdr_err e;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = stmt(db, ST_RUN_TOTALS, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->run_id = sqlite3_column_int64(s, 0);
        snprintf(out->started_at, sizeof out->started_at, "%s",
                 (const char *)sqlite3_column_text(s, 1));
        snprintf(out->finished_at, sizeof out->finished_at, "%s",
                 (const char *)sqlite3_column_text(s, 2));
        out->status = sqlite3_column_int(s, 3);
        uint64_t *u[] = {&out->files,         &out->rows_read,    &out->rows_accepted,
                         &out->rows_rejected, &out->rows_unrated, &out->findings,
                         &out->overcharged_records, &out->leakage_records, &out->candidates};
        for (int i = 0; i < 9; i++)
            *u[i] = (uint64_t)sqlite3_column_int64(s, 4 + i);
        out->overcharge = sqlite3_column_int64(s, 13);
        out->refund = sqlite3_column_int64(s, 14);
        out->leakage = sqlite3_column_int64(s, 15);
        e = CDR_OK;
    } else if (rc == SQLITE_DONE) {
        e = failmsg(db, CDR_E_NOTFOUND, "no run %" PRId64, run_id);
    } else {
        e = dberr(db, rc, "run totals");
    }
    sqlite3_reset(s);
    return e;
}

/* ------------------------------------------------------------------ */
/* The month over many runs (schema 2).                                */

int64_t cdr_db_open_run(const cdr_db *db)
{
    return db->run_id;
}

cdr_err cdr_db_tariff_id(cdr_db *db, const uint8_t sha256[32], const char *dir, int64_t *id)
{
    cdr_err e;
    char h[65];
    hex(sha256, h);
    *id = 0;
    sqlite3_stmt *s = stmt(db, ST_TARIFF_GET, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, h, 64, SQLITE_STATIC);
    if ((e = first_int64(db, s, id, "tariff")) != CDR_OK || *id)
        return e;
    if (!(s = run_stmt(db, ST_TARIFF_ADD, &e)))
        return e;
    sqlite3_bind_text(s, 1, h, 64, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, dir, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, db->run_id);
    if ((e = step_done(db, s, "insert tariff")) != CDR_OK)
        return e;
    *id = sqlite3_last_insert_rowid(db->h);
    return CDR_OK;
}

/* from_seq: records from this one on (findings, unrated; -1: the
 * candidate statement, which has no ?4) */
static cdr_err supersede(cdr_db *db, int which, cdr_str msisdn, uint64_t h, cdr_month month,
                         int64_t from_seq)
{
    cdr_err e;
    char mon[16];
    sqlite3_stmt *s = run_stmt(db, which, &e);
    if (!s)
        return e;
    bind_run_who(db, s, msisdn, month, mon);
    if (from_seq >= 0)
        sqlite3_bind_int64(s, 4, from_seq);
    bind_hash(s, 5, h);
    return step_done(db, s, "supersede");
}

cdr_err cdr_db_supersede_records_from(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month,
                                      uint64_t from_seq)
{
    if (from_seq > INT64_MAX)
        return CDR_E_RANGE;
    cdr_err e = supersede(db, ST_SUPERSEDE_FINDINGS, msisdn, h, month, (int64_t)from_seq);
    return e == CDR_OK
               ? supersede(db, ST_SUPERSEDE_UNRATED, msisdn, h, month, (int64_t)from_seq)
               : e;
}

cdr_err cdr_db_supersede_records(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month)
{
    return cdr_db_supersede_records_from(db, msisdn, h, month, 0);
}

cdr_err cdr_db_supersede_candidate(cdr_db *db, cdr_str msisdn, uint64_t h, cdr_month month)
{
    return supersede(db, ST_SUPERSEDE_CANDIDATE, msisdn, h, month, -1);
}

cdr_err cdr_db_add_unrated(cdr_db *db, const cdr_db_unrated *u)
{
    cdr_err e;
    char mon[16];
    sqlite3_stmt *s = run_stmt(db, ST_UNRATED_INSERT, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, db->run_id);
    if (u->file_id)
        sqlite3_bind_int64(s, 2, u->file_id);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_text(s, 3, u->file ? u->file : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)u->line);
    sqlite3_bind_int64(s, 5, (int64_t)u->offset);
    bind_str(s, 6, u->record_id);
    bind_str(s, 7, u->msisdn);
    bind_month(s, 8, u->month, mon);
    sqlite3_bind_text(s, 9, cdr_service_name(u->service), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 10, u->billed);
    sqlite3_bind_text(s, 11, u->reason ? u->reason : "", -1, SQLITE_STATIC);
    bind_hash(s, 12, u->msisdn_hash);
    sqlite3_bind_int64(s, 13, (int64_t)u->seq);
    return step_done(db, s, "insert unrated");
}

cdr_err cdr_db_add_change(cdr_db *db, cdr_str msisdn, uint64_t msisdn_hash, cdr_month month,
                          cdr_money previous, cdr_money refund, const char *status)
{
    cdr_err e;
    char mon[16];
    sqlite3_stmt *s = run_stmt(db, ST_CHANGE_INSERT, &e);
    if (!s)
        return e;
    bind_run_who(db, s, msisdn, month, mon);
    sqlite3_bind_int64(s, 4, previous);
    sqlite3_bind_int64(s, 5, refund);
    sqlite3_bind_int64(s, 6, refund - previous);
    sqlite3_bind_text(s, 7, status, -1, SQLITE_STATIC);
    bind_hash(s, 8, msisdn_hash);
    return step_done(db, s, "insert change");
}

cdr_err cdr_db_state_add(cdr_db *db, const char *name, cdr_month month, const char *kind,
                         uint64_t records, uint64_t bytes)
{
    cdr_err e;
    char mon[16];
    sqlite3_stmt *s = run_stmt(db, ST_STATE_ADD, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    bind_month(s, 2, month, mon);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, db->run_id);
    sqlite3_bind_int64(s, 5, (int64_t)records);
    sqlite3_bind_int64(s, 6, (int64_t)bytes);
    return step_done(db, s, "add state file");
}

cdr_err cdr_db_state_drop(cdr_db *db, const char *name)
{
    cdr_err e;
    sqlite3_stmt *s = run_stmt(db, ST_STATE_DROP, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return step_done(db, s, "drop state file");
}

cdr_err cdr_db_state_list(cdr_db *db, char ***names, size_t *n)
{
    cdr_err e;
    *names = NULL;
    *n = 0;
    sqlite3_stmt *s = stmt(db, ST_STATE_LIST, &e);
    if (!s)
        return e;
    int rc;
    size_t cap = 0;
    char **v = NULL;
    e = CDR_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cdr_grow(&v, &cap, *n + 1, sizeof *v, 16)) {
            e = CDR_E_NOMEM;
            break;
        }
        const char *t = (const char *)sqlite3_column_text(s, 0);
        if (!(v[*n] = strdup(t ? t : ""))) {
            e = CDR_E_NOMEM;
            break;
        }
        (*n)++;
    }
    if (e == CDR_OK && rc != SQLITE_DONE)
        e = dberr(db, rc, "state files");
    sqlite3_reset(s);
    *names = v;
    if (e != CDR_OK) {
        cdr_db_free_names(v, *n);
        *names = NULL;
        *n = 0;
    }
    return e;
}

void cdr_db_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

cdr_err cdr_db_meta_get(cdr_db *db, const char *key, char *buf, size_t len, int *found)
{
    cdr_err e;
    *found = 0;
    if (len)
        buf[0] = '\0';
    sqlite3_stmt *s = stmt(db, ST_META_GET, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    return first_text(db, s, buf, len, found, "meta");
}

cdr_err cdr_db_meta_set(cdr_db *db, const char *key, const char *value)
{
    cdr_err e;
    sqlite3_stmt *s = run_stmt(db, ST_META_SET, &e);
    if (!s)
        return e;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return step_done(db, s, "meta");
}

cdr_err cdr_db_file_refuse(cdr_db *db, int64_t file_id, const char *message, uint64_t copies)
{
    cdr_err e;
    sqlite3_stmt *s = run_stmt(db, ST_FILE_REFUSE, &e);
    if (!s)
        return e;
    sqlite3_bind_int64(s, 1, file_id);
    sqlite3_bind_text(s, 2, "refused", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, message, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (int64_t)copies);
    return step_done(db, s, "refuse file");
}

cdr_err cdr_db_savepoint(cdr_db *db, const char *what)
{
    char sql[64];
    if (!strcmp(what, "begin"))
        return exec(db, "SAVEPOINT cdr_finish");
    if (!strcmp(what, "rollback")) {
        cdr_err e = exec(db, "ROLLBACK TO cdr_finish");
        return e == CDR_OK ? exec(db, "RELEASE cdr_finish") : e;
    }
    snprintf(sql, sizeof sql, "RELEASE cdr_finish");
    return exec(db, sql);
}

/* The months as a JSON array of "YYYY-MM" (for json_each). */
static char *months_json(const cdr_month *m, size_t n)
{
    char *j = malloc(n * 11 + 3);
    if (!j)
        return NULL;
    size_t k = 0;
    j[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            j[k++] = ',';
        j[k++] = '"';
        k += cdr_month_format(m[i], j + k);
        j[k++] = '"';
    }
    j[k++] = ']';
    j[k] = '\0';
    return j;
}

/* The statement of one month (one_month, ?1 the month) or of several
 * (many_months, ?1 a JSON array of months), bound; NULL with *e set. */
static sqlite3_stmt *months_stmt(cdr_db *db, int one_month, int many_months,
                                 const cdr_month *months, size_t n, cdr_err *e)
{
    sqlite3_stmt *s = stmt(db, n == 1 ? one_month : many_months, e);
    if (!s)
        return NULL;
    char m1[8];
    char *j = n == 1 ? (cdr_month_format(months[0], m1), strdup(m1)) : months_json(months, n);
    if (!j) {
        *e = CDR_E_NOMEM;
        return NULL;
    }
    sqlite3_bind_text(s, 1, j, -1, SQLITE_TRANSIENT);
    free(j);
    return s;
}

cdr_err cdr_db_current_findings(cdr_db *db, const cdr_month *months, size_t n,
                                cdr_db_finding_fn fn, void *user)
{
    cdr_err e;
    sqlite3_stmt *s = months_stmt(db, ST_CUR_FINDINGS1, ST_CUR_FINDINGS, months, n, &e);
    if (!s)
        return e;
    struct walk w = {.fn.finding = fn, .user = user, .current = 1};
    return each_row(db, s, finding_row, &w, "current findings", NULL);
}

cdr_err cdr_db_current_candidates(cdr_db *db, const cdr_month *months, size_t n,
                                  cdr_db_candidate_fn fn, void *user)
{
    cdr_err e;
    sqlite3_stmt *s = months_stmt(db, ST_CUR_CANDIDATES1, ST_CUR_CANDIDATES, months, n, &e);
    if (!s)
        return e;
    struct walk w = {.fn.candidate = fn, .user = user, .current = 1};
    return each_row(db, s, candidate_row, &w, "current candidates", NULL);
}

static int unrated_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    cdr_db_unrated u;
    memset(&u, 0, sizeof u);
    u.file = (const char *)sqlite3_column_text(s, 0);
    u.line = (uint64_t)sqlite3_column_int64(s, 1);
    u.offset = (uint64_t)sqlite3_column_int64(s, 2);
    u.record_id = col_str(s, 3);
    u.msisdn = col_str(s, 4);
    cdr_str m = col_str(s, 5);
    cdr_month_parse(m.p, m.n, &u.month);
    u.service = service_from(col_str(s, 6));
    u.billed = sqlite3_column_int64(s, 7);
    u.reason = (const char *)sqlite3_column_text(s, 8);
    u.msisdn_hash = col_hash(s, 9);
    u.seq = (uint64_t)sqlite3_column_int64(s, 10);
    return w->fn.unrated(&u, w->user);
}

cdr_err cdr_db_current_unrated(cdr_db *db, const cdr_month *months, size_t n,
                               int (*fn)(const cdr_db_unrated *u, void *user), void *user)
{
    cdr_err e;
    sqlite3_stmt *s = months_stmt(db, ST_CUR_UNRATED1, ST_CUR_UNRATED, months, n, &e);
    if (!s)
        return e;
    struct walk w = {.fn.unrated = fn, .user = user};
    return each_row(db, s, unrated_row, &w, "current unrated", NULL);
}

cdr_err cdr_db_run_changes(cdr_db *db, int64_t run_id,
                           int (*fn)(const cdr_db_change *c, void *user), void *user)
{
    return cdr_db_runs_changes(db, &run_id, 1, fn, user);
}

/* A JSON array of run ids, for json_each. */
static char *ids_json(const int64_t *ids, size_t n)
{
    char *j = malloc(n * 22 + 3), *p = j;
    if (!j)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", (long long)ids[i]);
    *p++ = ']';
    *p = '\0';
    return j;
}

cdr_err cdr_db_last_tariff_dir(cdr_db *db, char *buf, size_t len, int *found)
{
    cdr_err e;
    *found = 0;
    if (len)
        buf[0] = '\0';
    sqlite3_stmt *s = stmt(db, ST_LAST_TARIFF, &e);
    if (!s)
        return e;
    return first_text(db, s, buf, len, found, "runs");
}

static int run_months_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    const char *m = (const char *)sqlite3_column_text(s, 1);
    return w->fn.run_months(sqlite3_column_int64(s, 0), m ? m : "", w->user);
}

cdr_err cdr_db_runs_of_files(cdr_db *db, const char *const *sha_hex, size_t n,
                             int (*fn)(int64_t run_id, const char *months, void *user),
                             void *user)
{
    cdr_err e;
    sqlite3_stmt *s = stmt(db, ST_RUNS_OF_FILES, &e);
    if (!s)
        return e;
    char *j = malloc(n * 67 + 3), *p = j;
    if (!j)
        return CDR_E_NOMEM;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\"%.64s\"", i ? "," : "", sha_hex[i]);
    *p++ = ']';
    *p = '\0';
    sqlite3_bind_text(s, 1, j, -1, SQLITE_TRANSIENT);
    free(j);
    struct walk w = {.fn.run_months = fn, .user = user};
    return each_row(db, s, run_months_row, &w, "runs", NULL);
}

static int change_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    cdr_db_change c;
    c.msisdn = col_str(s, 0);
    cdr_str m = col_str(s, 1);
    cdr_month_parse(m.p, m.n, &c.month);
    c.previous_refund = sqlite3_column_int64(s, 2);
    c.refund = sqlite3_column_int64(s, 3);
    c.delta = sqlite3_column_int64(s, 4);
    c.status = (const char *)sqlite3_column_text(s, 5);
    return w->fn.change(&c, w->user);
}

cdr_err cdr_db_runs_changes(cdr_db *db, const int64_t *runs, size_t n,
                            int (*fn)(const cdr_db_change *c, void *user), void *user)
{
    cdr_err e;
    sqlite3_stmt *s = stmt(db, ST_RUN_CHANGES, &e);
    if (!s)
        return e;
    char *ids = ids_json(runs, n);
    if (!ids)
        return CDR_E_NOMEM;
    sqlite3_bind_text(s, 1, ids, -1, SQLITE_TRANSIENT);
    free(ids);
    struct walk w = {.fn.change = fn, .user = user};
    return each_row(db, s, change_row, &w, "changes", NULL);
}

static int tariff_row(sqlite3_stmt *s, void *ctx)
{
    struct walk *w = ctx;
    return w->fn.tariff(sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                        (const char *)sqlite3_column_text(s, 2), w->user);
}

cdr_err cdr_db_tariffs(cdr_db *db, int (*fn)(int64_t id, const char *sha256, const char *dir,
                                             void *user),
                       void *user)
{
    cdr_err e;
    sqlite3_stmt *s = stmt(db, ST_RUN_STATE, &e);
    if (!s)
        return e;
    struct walk w = {.fn.tariff = fn, .user = user};
    return each_row(db, s, tariff_row, &w, "tariffs", NULL);
}
