/* Unit tests: the SQLite results database, on real files in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdrecon/db.h"
#include "cdrecon/engine.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **st)
{
    fixture *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/cdrecon-db-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/results.db", fx->dir);
    *st = fx;
    return 0;
}

static int teardown(void **st)
{
    fixture *fx = *st;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static cdr_db *open_ok(const char *path)
{
    cdr_db *db = NULL;
    char err[256];
    cdr_err e = cdr_db_open(path, &db, err, sizeof err);
    if (e != CDR_OK)
        fail_msg("open %s: %s", path, err);
    return db;
}

/* One integer from SQL, through the raw handle. */
static int64_t q(cdr_db *db, const char *sql)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(cdr_db_sqlite(db), sql, -1, &s, NULL), SQLITE_OK);
    int rc = sqlite3_step(s);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return v;
}

/* The query plan's details, one line (static buffer). */
static const char *plan(cdr_db *db, const char *sql)
{
    static char buf[1024];
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(cdr_db_sqlite(db), sql, -1, &s, NULL), SQLITE_OK);
    buf[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW)
        if (sqlite3_column_text(s, 3))
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s; ",
                     (const char *)sqlite3_column_text(s, 3));
    sqlite3_finalize(s);
    return buf;
}

/* One text from SQL (static buffer). */
static const char *qs(cdr_db *db, const char *sql)
{
    static char buf[1024];
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(cdr_db_sqlite(db), sql, -1, &s, NULL), SQLITE_OK);
    buf[0] = '\0';
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return buf;
}

static cdr_file_stats stats_for(uint8_t seed)
{
    cdr_file_stats st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 32; i++)
        st.sha256[i] = (uint8_t)(seed * 31 + i);
    st.size = 1000 + seed;
    st.bytes = 5000 + seed;
    st.gzip = 1;
    st.rows_read = 10;
    st.rows_accepted = 9;
    st.rows_rejected = 1;
    st.blank_lines = 2;
    return st;
}

static cdr_finding finding(const char *msisdn, const char *rid, const char *start,
                           cdr_category cat, cdr_money billed, cdr_money rebuilt)
{
    cdr_finding f;
    memset(&f, 0, sizeof f);
    f.msisdn = (cdr_str){msisdn, strlen(msisdn)};
    f.msisdn_hash = cdr_msisdn_hash(msisdn, strlen(msisdn)); /* as the engine sets it */
    f.record_id = (cdr_str){rid, strlen(rid)};
    cdr_time_parse(start, strlen(start), &f.start);
    f.month = cdr_time_month(f.start);
    f.file = "day1.csv.gz";
    f.line = 42;
    f.offset = 4242;
    f.service = CDR_SVC_SMS;
    f.peer = (cdr_str){"13900139000", 11};
    f.category = cat;
    f.billed = billed;
    f.rebuilt = rebuilt;
    f.difference = billed - rebuilt;
    f.explanation = "billed as 3 segments; 145 characters are 3";
    return f;
}

static void test_schema_and_reopen(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    assert_int_equal(q(db, "PRAGMA user_version"), CDR_DB_SCHEMA_VERSION);
    assert_int_equal(q(db, "PRAGMA application_id"), CDR_DB_APPLICATION_ID);
    assert_int_equal(q(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(q(db, "PRAGMA synchronous"), 2); /* FULL */
    assert_string_equal(qs(db, "PRAGMA journal_mode"), "delete");
    const char *tables[] = {"runs",    "files",       "findings", "candidates",
                            "rejects", "unrated",     "changes",  "tariffs",
                            "meta",    "state_files", "current_findings",
                            "current_candidates",     "current_unrated"};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 tables[i]);
        assert_int_equal(q(db, sql), 1);
    }
    /* the per-number indexes exist and are used (schema 4: one per table,
     * with the msisdn's hash; a supersede finds the rows by it too) */
    assert_non_null(strstr(plan(db, "EXPLAIN QUERY PLAN SELECT * FROM findings WHERE msisdn = "
                                  "'1' AND month = '2024-03' AND h = 5"),
                           "findings_key (month=? AND h=? AND msisdn=?)"));
    assert_non_null(strstr(plan(db, "EXPLAIN QUERY PLAN SELECT * FROM candidates WHERE msisdn "
                                  "= '1' AND month = '2024-03' AND h = 5"),
                           "candidates_key (month=? AND h=? AND msisdn=?)"));
    assert_non_null(strstr(plan(db, "EXPLAIN QUERY PLAN UPDATE findings SET superseded_by = 2 "
                                  "WHERE msisdn = '1' AND month = '2024-03' AND h = 5 AND "
                                  "superseded_by IS NULL AND seq >= 0"),
                           "findings_key (month=? AND h=? AND msisdn=? AND seq>?)"));
    /* (a candidate's current version found by the key itself, not by
     * reading the row of every version) */
    assert_non_null(strstr(plan(db, "EXPLAIN QUERY PLAN UPDATE candidates SET superseded_by = 2 "
                                  "WHERE msisdn = '1' AND month = '2024-03' AND h = 5 AND "
                                  "superseded_by IS NULL"),
                           "candidates_key (month=? AND h=? AND msisdn=? AND superseded_by=?)"));
    assert_int_equal(q(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                           "tbl_name IN ('findings', 'candidates') AND sql LIKE '%msisdn%'"),
                     2);
    /* a file is known by the SHA-256 of its bytes or of its content: both
     * looked up by index, not by a scan */
    const char *known = plan(db, "EXPLAIN QUERY PLAN SELECT run_id FROM files WHERE state = "
                                 "'ingested' AND sha256 = 'x' UNION ALL SELECT run_id FROM "
                                 "files WHERE state = 'ingested' AND content_sha256 = 'x'");
    assert_null(strstr(known, "SCAN"));
    assert_non_null(strstr(known, "files_sha"));
    assert_non_null(strstr(known, "files_content"));
    /* the current findings of a month come in the output order by index */
    const char *cur = plan(db, "EXPLAIN QUERY PLAN SELECT * FROM findings WHERE superseded_by "
                               "IS NULL AND month = '2024-03' ORDER BY h, msisdn, seq");
    assert_non_null(strstr(cur, "findings_key (month=?)"));
    assert_null(strstr(cur, "TEMP B-TREE"));
    cur = plan(db, "EXPLAIN QUERY PLAN SELECT * FROM candidates WHERE superseded_by IS NULL AND "
                   "month = '2024-03' ORDER BY h, msisdn");
    assert_non_null(strstr(cur, "candidates_key (month=?)"));
    assert_null(strstr(cur, "TEMP B-TREE"));
    assert_int_equal(cdr_db_check(db), CDR_OK);
    int64_t nobj = q(db, "SELECT count(*) FROM sqlite_schema");
    cdr_db_close(db);
    db = open_ok(fx->path); /* reopen: nothing recreated */
    assert_int_equal(q(db, "SELECT count(*) FROM sqlite_schema"), nobj);
    cdr_db_close(db);
    cdr_db_close(NULL);
}

static void test_refuses_foreign_files(void **st)
{
    fixture *fx = *st;
    char p[160], err[256];
    cdr_db *db = (cdr_db *)1;
    /* not SQLite at all */
    snprintf(p, sizeof p, "%s/text.db", fx->dir);
    FILE *f = fopen(p, "w");
    fputs("msisdn,month\nthis is not a database, it is a CSV file of some length...\n", f);
    fclose(f);
    assert_int_equal(cdr_db_open(p, &db, err, sizeof err), CDR_E_DB);
    assert_null(db);
    assert_true(strlen(err) > 0);
    /* SQLite, but someone else's */
    snprintf(p, sizeof p, "%s/other.db", fx->dir);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(cdr_db_open(p, &db, err, sizeof err), CDR_E_DB);
    assert_non_null(strstr(err, "not a cdrecon database"));
    /* ours, from the future */
    db = open_ok(fx->path);
    assert_int_equal(sqlite3_exec(cdr_db_sqlite(db), "PRAGMA user_version = 99", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    cdr_db_close(db);
    assert_int_equal(cdr_db_open(fx->path, &db, err, sizeof err), CDR_E_DB);
    assert_non_null(strstr(err, "newer"));
    /* a directory that does not exist */
    snprintf(p, sizeof p, "%s/no/such/dir.db", fx->dir);
    assert_int_equal(cdr_db_open(p, &db, err, sizeof err), CDR_E_IO);
}

/* The columns of a table as one text: name, type, NOT NULL, default. */
static const char *columns(cdr_db *db, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' "
             "|| coalesce(dflt_value, '-'), ', ') FROM pragma_table_info('%s')", table);
    return qs(db, sql);
}

/* Schema 2 and 3's subscriber indexes, in place of schema 4's one per table. */
#define SCHEMA3_INDEXES                                                                      \
    "DROP INDEX findings_key;"                                                               \
    "DROP INDEX candidates_key;"                                                             \
    "CREATE INDEX findings_msisdn_month ON findings(msisdn, month);"                        \
    "CREATE INDEX findings_current ON findings(month, h, msisdn, seq) WHERE superseded_by IS " \
    "NULL;"                                                                                  \
    "CREATE INDEX candidates_msisdn_month ON candidates(msisdn, month);"                    \
    "CREATE INDEX candidates_current ON candidates(month, h, msisdn) WHERE superseded_by IS " \
    "NULL;"

/* Every index of the database with its SQL, by name (static buffer). */
static const char *indexes(cdr_db *db)
{
    return qs(db, "SELECT group_concat(name || ': ' || sql, '; ') FROM (SELECT name, sql FROM "
                  "sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name)");
}

/* Schema 2 (before input profiles) is migrated to 3 in place: the runs and
 * files it holds are kept, the new columns added at the end, the same as in
 * a new database; a read-only open reads it unmigrated. Then a run records
 * its profile and each file its own and its skipped rows. */
static void test_schema2_migrates(void **st)
{
    fixture *fx = *st;
    char fresh_runs[1024], fresh_files[1024], p[160], err[256];
    cdr_db *db = open_ok(fx->path);
    snprintf(fresh_runs, sizeof fresh_runs, "%s", columns(db, "runs"));
    snprintf(fresh_files, sizeof fresh_files, "%s", columns(db, "files"));
    char fresh_indexes[1024];
    snprintf(fresh_indexes, sizeof fresh_indexes, "%s", indexes(db));
    assert_non_null(strstr(fresh_runs, "profile TEXT 0 -, profile_sha256 TEXT 0 -, "
                                       "rows_skipped INTEGER 1 0"));
    int64_t run_id = 0, file_id = 0;
    cdr_db_run_info info = {0, NULL, "cdrecon run a.csv", "tariff/", NULL, NULL, NULL};
    assert_int_equal(cdr_db_begin_run(db, &info, &run_id), CDR_OK);
    cdr_file_stats fs = stats_for(1);
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &fs, &file_id), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    /* back to schema 2, as cdrecon of issue 13 made it */
    assert_int_equal(sqlite3_exec(cdr_db_sqlite(db),
                                  "ALTER TABLE runs DROP COLUMN profile;"
                                  "ALTER TABLE runs DROP COLUMN profile_sha256;"
                                  "ALTER TABLE runs DROP COLUMN rows_skipped;"
                                  "ALTER TABLE files DROP COLUMN rows_skipped;"
                                  "ALTER TABLE files DROP COLUMN profile;"
                                  "ALTER TABLE files DROP COLUMN profile_sha256;"
                                  SCHEMA3_INDEXES "PRAGMA user_version = 2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    cdr_db_close(db);

    assert_int_equal(cdr_db_open_readonly(fx->path, &db, err, sizeof err), CDR_OK);
    assert_int_equal(q(db, "PRAGMA user_version"), 2);
    assert_null(strstr(columns(db, "runs"), "profile"));
    cdr_db_close(db);

    db = open_ok(fx->path); /* migrated (through 3 to the current schema) */
    assert_int_equal(q(db, "PRAGMA user_version"), CDR_DB_SCHEMA_VERSION);
    assert_string_equal(columns(db, "runs"), fresh_runs);
    assert_string_equal(columns(db, "files"), fresh_files);
    assert_string_equal(indexes(db), fresh_indexes);
    assert_int_equal(q(db, "SELECT count(*) FROM runs WHERE run_id = 1 AND profile IS NULL AND "
                           "rows_skipped = 0 AND rows_read = 10 AND command = 'cdrecon run a.csv'"),
                     1);
    assert_int_equal(q(db, "SELECT count(*) FROM files WHERE name = 'a.csv' AND rows_read = 10 "
                           "AND rows_skipped = 0 AND profile IS NULL"),
                     1);
    assert_int_equal(cdr_db_check(db), CDR_OK);

    /* a run through a profile; a piece read through another */
    static const char sha_a[] =
        "a1ba58994705c607ee3cda76adaa969a1dcbd974260bb647549153aa38cee8b4";
    static const char sha_b[] =
        "0000000000000000000000000000000000000000000000000000000000000001";
    cdr_db_run_info pinfo = {0, NULL, "cdrecon run --profile p b.csv", "tariff/", NULL,
                             "profiles/3gpp.profile", sha_a};
    assert_int_equal(cdr_db_begin_run(db, &pinfo, &run_id), CDR_OK);
    cdr_file_stats b = stats_for(2), c = stats_for(3);
    b.rows_read = 12; /* 9 accepted, 1 rejected, 2 skipped */
    b.rows_skipped = 2;
    c.rows_read = 11;
    c.rows_skipped = 1;
    assert_int_equal(cdr_db_add_file(db, 0, "b.csv", &b, &file_id), CDR_OK);
    assert_int_equal(cdr_db_file_profile(db, file_id, "profiles/3gpp.profile", sha_a), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 1, "c.csv", &c, &file_id), CDR_OK);
    assert_int_equal(cdr_db_file_profile(db, file_id, "other.profile", sha_b), CDR_OK);
    assert_int_equal(cdr_db_file_profile(db, file_id, "bad", "abc"), CDR_E_INTERNAL);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_string_equal(qs(db, "SELECT profile || ' ' || profile_sha256 || ' ' || rows_read || ' ' "
                               "|| rows_skipped FROM runs WHERE run_id = 2"),
                        "profiles/3gpp.profile a1ba58994705c607ee3cda76adaa969a1dcbd974260bb64"
                        "7549153aa38cee8b4 23 3");
    assert_string_equal(qs(db, "SELECT group_concat(name || ':' || profile || ':' || rows_skipped, "
                               "' ') FROM files WHERE run_id = 2"),
                        "b.csv:profiles/3gpp.profile:2 c.csv:other.profile:1");
    /* a SHA-256 that is not 64 hex digits is refused by the schema too */
    assert_int_not_equal(sqlite3_exec(cdr_db_sqlite(db),
                                      "UPDATE runs SET profile_sha256 = 'x' WHERE run_id = 2",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    cdr_db_close(db);
    /* schema 1 is still refused, and a read-only open of a future schema */
    snprintf(p, sizeof p, "%s", fx->path);
    db = open_ok(p);
    assert_int_equal(sqlite3_exec(cdr_db_sqlite(db), "PRAGMA user_version = 5", NULL, NULL, NULL),
                     SQLITE_OK);
    cdr_db_close(db);
    assert_int_equal(cdr_db_open_readonly(p, &db, err, sizeof err), CDR_E_DB);
    assert_null(db);
}

typedef struct collected {
    int n;
    cdr_finding f[8];
    char rid[8][32];
    char expl[8][128];
    int64_t run_id[8], file_id[8];
} collected;

static int collect_finding(const cdr_finding *f, int64_t run_id, int64_t file_id, void *user)
{
    collected *c = user;
    if (c->n >= 8)
        return 1;
    int i = c->n++;
    c->f[i] = *f;
    snprintf(c->rid[i], sizeof c->rid[i], "%.*s", (int)f->record_id.n, f->record_id.p);
    snprintf(c->expl[i], sizeof c->expl[i], "%s", f->explanation ? f->explanation : "");
    c->run_id[i] = run_id;
    c->file_id[i] = file_id;
    return 0;
}

typedef struct ccollected {
    int n;
    cdr_candidate c;
    char reason[64];
    int64_t run_id;
} ccollected;

static int collect_candidate(const cdr_candidate *c, int64_t run_id, void *user)
{
    ccollected *cc = user;
    cc->n++;
    cc->c = *c;
    snprintf(cc->reason, sizeof cc->reason, "%s", c->policy_reason ? c->policy_reason : "");
    cc->run_id = run_id;
    return 0;
}

/* One run of findings and candidates for the schema 3 test: night 1 finds
 * two records of A and one of B, A a candidate; a later night re-rates A
 * whole (one finding left, a smaller candidate). */
static void schema3_night(cdr_db *db, int night)
{
    int64_t run_id = 0, file_id = 0;
    cdr_db_run_info info = {.command = "cdrecon run", .tariff_dir = "tariff/"};
    assert_int_equal(cdr_db_begin_run(db, &info, &run_id), CDR_OK);
    cdr_file_stats fs = stats_for((uint8_t)(10 + night));
    char name[16];
    snprintf(name, sizeof name, "d%d.csv", night);
    assert_int_equal(cdr_db_add_file(db, 0, name, &fs, &file_id), CDR_OK);
    cdr_finding a1 = finding("13800138000", "a1", "2024-03-05 10:00:00", CDR_CAT_SMS_SEGMENTS,
                             300000, 200000);
    cdr_finding a2 = finding("13800138000", "a2", "2024-03-06 10:00:00", CDR_CAT_SMS_SEGMENTS,
                             300000, 100000);
    cdr_finding b1 = finding("13800138001", "b1", "2024-03-05 11:00:00", CDR_CAT_RATE_MISMATCH,
                             100000, 90000);
    a2.seq = 1;
    cdr_candidate c;
    memset(&c, 0, sizeof c);
    c.msisdn = a1.msisdn;
    c.msisdn_hash = a1.msisdn_hash;
    c.month = a1.month;
    c.records = night == 1 ? 2 : 1;
    c.overcharge = night == 1 ? 300000 : 100000;
    c.refund = 2 * c.overcharge;
    c.policy_reason = "";
    if (night == 1) {
        assert_int_equal(cdr_db_add_finding(db, &b1), CDR_OK);
        assert_int_equal(cdr_db_add_finding(db, &a2), CDR_OK);
    } else {
        assert_int_equal(cdr_db_supersede_records(db, a1.msisdn, a1.msisdn_hash, a1.month),
                         CDR_OK);
        assert_int_equal(cdr_db_supersede_candidate(db, a1.msisdn, a1.msisdn_hash, a1.month),
                         CDR_OK);
    }
    assert_int_equal(cdr_db_add_finding(db, &a1), CDR_OK);
    assert_int_equal(cdr_db_add_candidate(db, &c), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
}

/* What the schema 3 test reads back: every version of A's March (findings
 * and candidates, through the per-number queries) and the current rows. */
static void schema3_reads(cdr_db *db, int versions_a, int candidates_a, int current)
{
    cdr_month march;
    cdr_month_parse("2024-03", 7, &march);
    collected got;
    memset(&got, 0, sizeof got);
    assert_int_equal(cdr_db_findings_for(db, "13800138000", march, collect_finding, &got),
                     CDR_OK);
    assert_int_equal(got.n, versions_a);
    ccollected cc;
    memset(&cc, 0, sizeof cc);
    assert_int_equal(cdr_db_candidates_for(db, "13800138000", march, collect_candidate, &cc),
                     CDR_OK);
    assert_int_equal(cc.n, candidates_a);
    assert_int_equal(cc.c.refund, 200000); /* the last version */
    assert_int_equal(q(db, "SELECT count(*) FROM current_findings WHERE month = '2024-03'"),
                     current);
    assert_string_equal(qs(db, "SELECT group_concat(msisdn || ':' || refund_micro, ' ') FROM "
                               "(SELECT * FROM current_candidates WHERE month = '2024-03' "
                               "ORDER BY h, msisdn)"),
                        "13800138000:200000");
}

/* Schema 3 (two subscriber indexes per table) is migrated to 4 in place:
 * the rows are kept, the indexes become those of a new database; a
 * read-only open reads it unmigrated, through its own indexes; after the
 * migration a run supersedes and adds as before. */
static void test_schema3_migrates(void **st)
{
    fixture *fx = *st;
    char fresh[1024], err[256];
    cdr_db *db = open_ok(fx->path);
    snprintf(fresh, sizeof fresh, "%s", indexes(db));
    assert_null(strstr(fresh, "_current"));
    schema3_night(db, 1);
    schema3_night(db, 2);
    /* back to schema 3, as cdrecon of issue 17 made it */
    assert_int_equal(sqlite3_exec(cdr_db_sqlite(db), SCHEMA3_INDEXES "PRAGMA user_version = 3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    cdr_db_close(db);

    assert_int_equal(cdr_db_open_readonly(fx->path, &db, err, sizeof err), CDR_OK);
    assert_int_equal(q(db, "PRAGMA user_version"), 3);
    assert_non_null(strstr(indexes(db), "findings_current"));
    schema3_reads(db, 3, 2, 2);
    cdr_db_close(db);

    db = open_ok(fx->path); /* migrated */
    assert_int_equal(q(db, "PRAGMA user_version"), CDR_DB_SCHEMA_VERSION);
    assert_string_equal(indexes(db), fresh);
    schema3_reads(db, 3, 2, 2);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    schema3_night(db, 3); /* A re-rated whole again */
    schema3_reads(db, 4, 3, 2);
    assert_int_equal(q(db, "SELECT count(*) FROM candidates WHERE superseded_by IS NOT NULL"), 2);
    cdr_db_close(db);
}

static void test_roundtrip(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run_id = 0, file_id = 0;
    cdr_db_run_info info = {.command = "cdrecon run --db x day1.csv.gz", .tariff_dir = "tariff/"};
    assert_int_equal(cdr_db_begin_run(db, &info, &run_id), CDR_OK);
    assert_true(run_id > 0);
    cdr_file_stats fs = stats_for(1);
    assert_int_equal(cdr_db_add_file(db, 0, "day1.csv.gz", &fs, &file_id), CDR_OK);

    cdr_reject r;
    memset(&r, 0, sizeof r);
    r.file_index = 0;
    r.file = "day1.csv.gz";
    r.line = 7;
    r.offset = 321;
    r.reason = "bad start_time '2024-13-01 00:00:00'";
    r.raw = (cdr_str){"r9,138,sms,=1+1,\"x\"", 19};
    r.raw_len = 19;
    assert_int_equal(cdr_db_add_reject(db, &r), CDR_OK);

    /* exact money: 1 micro-yuan, 0.0003, large, leakage */
    cdr_finding f1 = finding("13800138000", "r1", "2024-03-05 10:00:00", CDR_CAT_SMS_SEGMENTS,
                             300000, 200000);
    cdr_finding f2 = finding("13800138000", "r2", "2024-03-01 08:00:00", CDR_CAT_DUPLICATE,
                             123456789012345LL, 1);
    f2.flags = CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG;
    cdr_finding f3 = finding("13800138000", "r3", "2024-03-09 23:59:59", CDR_CAT_LEAKAGE, 300,
                             370300);
    f3.explanation = NULL;
    cdr_finding other = finding("13800138001", "r4", "2024-03-05 10:00:00",
                                CDR_CAT_RATE_MISMATCH, 100000, 90000);
    cdr_finding april = finding("13800138000", "r5", "2024-04-01 00:00:00",
                                CDR_CAT_WRONG_BAND, 100000, 90000);
    cdr_finding *all[] = {&f1, &f2, &f3, &other, &april};
    for (int i = 0; i < 5; i++)
        assert_int_equal(cdr_db_add_finding(db, all[i]), CDR_OK);

    cdr_candidate c;
    memset(&c, 0, sizeof c);
    c.msisdn = f1.msisdn;
    c.msisdn_hash = f1.msisdn_hash;
    c.month = f1.month;
    c.records = 2;
    c.overcharge = f1.difference + f2.difference;
    c.refund = 2 * c.overcharge;
    c.categories = (1u << CDR_CAT_SMS_SEGMENTS) | (1u << CDR_CAT_DUPLICATE);
    c.tier = 4;
    c.policy = CDR_POLICY_VERIFY_FIRST;
    c.special = 1;
    c.flags = CDR_FLAG_OVERLAP;
    c.policy_reason = "special customer: 3 refunds in one month";
    assert_int_equal(cdr_db_add_candidate(db, &c), CDR_OK);
    cdr_db_run_end end = {.status = CDR_E_REJECTS, .rows_unrated = 5};
    assert_int_equal(cdr_db_commit_run(db, &end), CDR_OK);
    cdr_db_close(db);

    db = open_ok(fx->path);
    collected got;
    memset(&got, 0, sizeof got);
    cdr_month march;
    cdr_month_parse("2024-03", 7, &march);
    assert_int_equal(cdr_db_findings_for(db, "13800138000", march, collect_finding, &got),
                     CDR_OK);
    assert_int_equal(got.n, 3); /* not the other number, not April */
    /* ordered by start time: r2, r1, r3 */
    assert_string_equal(got.rid[0], "r2");
    assert_string_equal(got.rid[1], "r1");
    assert_string_equal(got.rid[2], "r3");
    assert_int_equal(got.f[0].billed, 123456789012345LL);
    assert_int_equal(got.f[0].rebuilt, 1);
    assert_int_equal(got.f[0].difference, 123456789012344LL);
    assert_int_equal(got.f[0].category, CDR_CAT_DUPLICATE);
    assert_int_equal(got.f[0].flags, CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG);
    assert_int_equal(got.f[0].start, f2.start);
    assert_int_equal(got.f[0].month, march);
    assert_int_equal(got.f[0].service, CDR_SVC_SMS);
    assert_int_equal(got.f[0].line, 42);
    assert_int_equal(got.f[0].offset, 4242);
    assert_int_equal(got.f[1].category, CDR_CAT_SMS_SEGMENTS);
    assert_int_equal(got.f[1].difference, 100000);
    assert_string_equal(got.expl[1], "billed as 3 segments; 145 characters are 3");
    assert_int_equal(got.f[2].category, CDR_CAT_LEAKAGE);
    assert_int_equal(got.f[2].difference, -370000);
    assert_string_equal(got.expl[2], "");
    assert_int_equal(got.run_id[0], run_id);
    assert_int_equal(got.file_id[0], file_id);

    cdr_month may;
    cdr_month_parse("2024-05", 7, &may);
    assert_int_equal(cdr_db_findings_for(db, "13800138000", may, collect_finding, &got),
                     CDR_E_NOTFOUND);

    ccollected cc;
    memset(&cc, 0, sizeof cc);
    assert_int_equal(cdr_db_candidates_for(db, "13800138000", march, collect_candidate, &cc),
                     CDR_OK);
    assert_int_equal(cc.n, 1);
    assert_int_equal(cc.c.overcharge, c.overcharge);
    assert_int_equal(cc.c.refund, c.refund);
    assert_int_equal(cc.c.categories, c.categories);
    assert_int_equal(cc.c.records, 2);
    assert_int_equal(cc.c.tier, 4);
    assert_int_equal(cc.c.policy, CDR_POLICY_VERIFY_FIRST);
    assert_int_equal(cc.c.special, 1);
    assert_int_equal(cc.c.flags, CDR_FLAG_OVERLAP);
    assert_string_equal(cc.reason, c.policy_reason);

    /* rejects exactly */
    assert_string_equal(qs(db, "SELECT file || '|' || line || '|' || offset || '|' || reason "
                               "|| '|' || raw || '|' || raw_len FROM rejects"),
                        "day1.csv.gz|7|321|bad start_time '2024-13-01 00:00:00'|"
                        "r9,138,sms,=1+1,\"x\"|19");
    assert_int_equal(q(db, "SELECT file_id FROM rejects"), file_id);
    /* the file row */
    assert_string_equal(qs(db, "SELECT sha256 FROM files"),
                        "1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e");
    assert_int_equal(q(db, "SELECT blank_lines FROM files"), 2);

    /* the views print yuan as the CSV files do */
    assert_string_equal(qs(db, "SELECT group_concat(billed || '/' || rebuilt || '/' || "
                               "difference, ' ') FROM (SELECT * FROM findings_csv "
                               "ORDER BY record_id)"),
                        "0.30/0.20/0.10 123456789.012345/0.000001/123456789.012344 "
                        "0.0003/0.3703/-0.37 0.10/0.09/0.01 0.10/0.09/0.01");
    assert_string_equal(qs(db, "SELECT overcharge || '/' || refund FROM candidates_csv"),
                        "123456789.112344/246913578.224688");

    /* totals */
    cdr_db_totals t;
    assert_int_equal(cdr_db_run_totals(db, 0, &t), CDR_OK);
    assert_int_equal(t.run_id, run_id);
    assert_int_equal(t.status, CDR_E_REJECTS);
    assert_int_equal(t.files, 1);
    assert_int_equal(t.rows_read, 10);
    assert_int_equal(t.rows_accepted, 9);
    assert_int_equal(t.rows_rejected, 1);
    assert_int_equal(t.rows_unrated, 5);
    assert_int_equal(t.findings, 5);
    assert_int_equal(t.overcharged_records, 4);
    assert_int_equal(t.leakage_records, 1);
    assert_int_equal(t.candidates, 1);
    assert_int_equal(t.overcharge, c.overcharge);
    assert_int_equal(t.refund, c.refund);
    assert_int_equal(t.leakage, 370000);
    assert_true(strlen(t.finished_at) == 20);
    assert_int_equal(cdr_db_run_totals(db, 999, &t), CDR_E_NOTFOUND);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    cdr_db_close(db);
}

static void test_money_view_matches_format(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    sqlite3 *h = cdr_db_sqlite(db);
    sqlite3_stmt *s;
    /* Evaluate the view's expression on many values by inserting findings. */
    int64_t run_id;
    assert_int_equal(cdr_db_begin_run(db, NULL, &run_id), CDR_OK);
    static const cdr_money vals[] = {0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999,
                                     100000, 109000, 110000, 999999, 1000000, 1000001,
                                     1010000, 1100000, -1, -10000, -370000, -1000000,
                                     -123456, CDR_MONEY_MAX, -CDR_MONEY_MAX};
    size_t nv = sizeof vals / sizeof *vals;
    for (size_t i = 0; i < nv; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "%03zu", i);
        cdr_finding f = finding("1", rid, "2024-01-01 00:00:00", CDR_CAT_RATE_MISMATCH,
                                vals[i], 0);
        assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    }
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT billed FROM findings_csv ORDER BY record_id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < nv; i++) {
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        char want[32];
        cdr_money_format(vals[i], 2, want);
        assert_string_equal((const char *)sqlite3_column_text(s, 0), want);
    }
    sqlite3_finalize(s);
    cdr_db_close(db);
}

/* cdr_db_size_known: a file can be hashed while read only when no file of
 * its size was ingested (a committed run's, or the open run's finished one). */
static void test_size_known(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run, fid;
    int maybe = -1;
    cdr_file_stats a = stats_for(7);
    assert_int_equal(cdr_db_size_known(db, a.size, &maybe), CDR_OK);
    assert_int_equal(maybe, 0); /* empty database */
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_file_start(db, 0, "a.csv", &fid), CDR_OK);
    assert_int_equal(cdr_db_size_known(db, a.size, &maybe), CDR_OK);
    assert_int_equal(maybe, 0); /* started, not finished: no SHA-256 yet */
    assert_int_equal(cdr_db_file_finish(db, fid, &a), CDR_OK);
    assert_int_equal(cdr_db_size_known(db, a.size, &maybe), CDR_OK);
    assert_int_equal(maybe, 1);
    assert_int_equal(cdr_db_size_known(db, a.size + 1, &maybe), CDR_OK);
    assert_int_equal(maybe, 0);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(cdr_db_size_known(db, a.size, &maybe), CDR_OK);
    assert_int_equal(maybe, 1);
    assert_int_equal(cdr_db_size_known(db, a.size - 1, &maybe), CDR_OK);
    assert_int_equal(maybe, 0);
    /* a row with a SHA-256 but no size (not written by this version) makes
     * every size possible */
    sqlite3 *h = cdr_db_sqlite(db);
    assert_int_equal(sqlite3_exec(h, "UPDATE files SET size = NULL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(cdr_db_size_known(db, 12345, &maybe), CDR_OK);
    assert_int_equal(maybe, 1);
    cdr_db_close(db);
}

static void test_duplicate_sha_refused(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run1, run2, fid, known;
    cdr_file_stats a = stats_for(7), b = stats_for(8);
    assert_int_equal(cdr_db_file_known(db, a.sha256, &known), CDR_OK);
    assert_int_equal(known, 0);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run1), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &a, &fid), CDR_OK);
    /* the same bytes under another name, same run */
    assert_int_equal(cdr_db_add_file(db, 1, "copy-of-a.csv", &a, &fid), CDR_E_DB);
    assert_non_null(strstr(cdr_db_message(db), "UNIQUE"));
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(cdr_db_file_known(db, a.sha256, &known), CDR_OK);
    assert_int_equal(known, run1);

    /* a later run: the known file is refused by the constraint too */
    assert_int_equal(cdr_db_begin_run(db, NULL, &run2), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "b.csv", &b, &fid), CDR_OK);
    assert_int_equal(cdr_db_file_known(db, b.sha256, &known), CDR_OK);
    assert_int_equal(known, run2); /* the run in progress knows it */
    assert_int_equal(cdr_db_file_start(db, 1, "a-again.csv", &fid), CDR_OK);
    cdr_reject r;
    memset(&r, 0, sizeof r);
    r.file_index = 1;
    r.file = "a-again.csv";
    r.reason = "x";
    assert_int_equal(cdr_db_add_reject(db, &r), CDR_OK);
    assert_int_equal(cdr_db_file_finish(db, fid, &a), CDR_E_DB);
    /* the caller drops it: its rejects go with it */
    assert_int_equal(cdr_db_file_drop(db, fid), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM rejects"), 0);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM files"), 2);
    assert_int_equal(q(db, "SELECT count(*) FROM files WHERE name = 'a.csv' AND run_id = 1"), 1);
    /* a failed file has no sha256 and can be stored again */
    cdr_file_stats bad = stats_for(9);
    bad.status = CDR_E_GZIP;
    assert_int_equal(cdr_db_begin_run(db, NULL, &run2), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "bad.gz", &bad, &fid), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 1, "bad2.gz", &bad, &fid), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM files WHERE sha256 IS NULL AND status = 3"), 2);
    cdr_db_close(db);
}

static void test_rollback_leaves_nothing(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run, fid;
    cdr_file_stats a = stats_for(1);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_E_INTERNAL); /* one at a time */
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &a, &fid), CDR_OK);
    cdr_finding f = finding("1", "r1", "2024-01-01 00:00:00", CDR_CAT_DUPLICATE, 10000, 0);
    f.file_index = 0;
    assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    assert_int_equal(cdr_db_rollback_run(db), CDR_OK);
    assert_int_equal(cdr_db_rollback_run(db), CDR_OK); /* harmless twice */
    assert_int_equal(q(db, "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM files)"
                           " + (SELECT count(*) FROM findings)"),
                     0);
    int64_t known;
    assert_int_equal(cdr_db_file_known(db, a.sha256, &known), CDR_OK);
    assert_int_equal(known, 0);
    /* writes outside a run are refused */
    assert_int_equal(cdr_db_add_finding(db, &f), CDR_E_INTERNAL);
    /* closing with a run open rolls it back */
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    cdr_db_close(db);
    db = open_ok(fx->path);
    assert_int_equal(q(db, "SELECT count(*) FROM findings"), 0);
    assert_int_equal(q(db, "SELECT count(*) FROM runs"), 0);
    cdr_db_close(db);
}

/* A child opens the database, starts a run, writes enough rows that its page
 * cache spills into the database file (a hot journal exists), then waits to be
 * killed with SIGKILL. The next open must roll the run back completely. */
static void test_sigkill_mid_run(void **st)
{
    fixture *fx = *st;
    /* a committed run first */
    cdr_db *db = open_ok(fx->path);
    int64_t run1, fid;
    cdr_file_stats a = stats_for(1);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run1), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &a, &fid), CDR_OK);
    for (int i = 0; i < 50; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "a%d", i);
        cdr_finding f = finding("13800138000", rid, "2024-03-01 00:00:00",
                                CDR_CAT_RATE_MISMATCH, 20000, 10000);
        assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    }
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    cdr_db_close(db);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        cdr_db *cdb = NULL;
        if (cdr_db_open(fx->path, &cdb, NULL, 0) != CDR_OK)
            _exit(10);
        sqlite3_exec(cdr_db_sqlite(cdb), "PRAGMA cache_size = 20", NULL, NULL, NULL);
        int64_t run2, fid2;
        cdr_file_stats b = stats_for(2);
        if (cdr_db_begin_run(cdb, NULL, &run2) != CDR_OK ||
            cdr_db_add_file(cdb, 0, "b.csv", &b, &fid2) != CDR_OK)
            _exit(11);
        char expl[400];
        memset(expl, 'x', sizeof expl - 1);
        expl[sizeof expl - 1] = '\0';
        for (int i = 0; i < 3000; i++) {
            char rid[16];
            snprintf(rid, sizeof rid, "b%d", i);
            cdr_finding f = finding("13800138000", rid, "2024-03-02 00:00:00",
                                    CDR_CAT_DUPLICATE, 20000, 0);
            f.explanation = expl;
            if (cdr_db_add_finding(cdb, &f) != CDR_OK)
                _exit(12);
        }
        if (write(pfd[1], "k", 1) != 1)
            _exit(13);
        for (;;)
            pause();
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    /* the run is mid-write: a hot journal and a grown database file */
    char jpath[200];
    snprintf(jpath, sizeof jpath, "%s-journal", fx->path);
    struct stat js, ds;
    assert_int_equal(stat(jpath, &js), 0);
    assert_true(js.st_size > 0);
    assert_int_equal(stat(fx->path, &ds), 0);
    assert_true(ds.st_size > 400 * 1000); /* pages of the killed run reached the file */
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    db = open_ok(fx->path); /* recovery happens here */
    assert_int_equal(cdr_db_check(db), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM files"), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM findings"), 50);
    assert_int_equal(q(db, "SELECT count(*) FROM findings WHERE record_id LIKE 'b%'"), 0);
    assert_int_equal(q(db, "SELECT count(*) FROM findings WHERE run_id <> 1"), 0);
    int64_t known;
    cdr_file_stats b = stats_for(2);
    assert_int_equal(cdr_db_file_known(db, b.sha256, &known), CDR_OK);
    assert_int_equal(known, 0); /* the killed run's file can be ingested again */
    assert_int_equal(stat(jpath, &js), -1); /* journal rolled back and removed */
    /* and the database takes a new run normally */
    int64_t run3;
    assert_int_equal(cdr_db_begin_run(db, NULL, &run3), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "b.csv", &b, &fid), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    cdr_db_close(db);
}

/* Run 2 of the gate test: a file and n findings, then its commit begun. */
static void gate_run(cdr_db *db, int n)
{
    int64_t run, fid;
    cdr_file_stats b = stats_for(2);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "b.csv", &b, &fid), CDR_OK);
    for (int i = 0; i < n; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "b%d", i);
        cdr_finding f = finding("13800138001", rid, "2024-03-02 00:00:00", CDR_CAT_DUPLICATE,
                                20000, 0);
        assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    }
    assert_int_equal(cdr_db_commit_begin(db, NULL), CDR_OK);
}

/* The commit's slow part done and held: the database file grew past
 * `size` (its pages written) while the journal is still there. */
static void gate_held(const char *path, off_t size)
{
    char jpath[200];
    snprintf(jpath, sizeof jpath, "%s-journal", path);
    struct stat ds, js;
    for (int i = 0; i < 500 && (stat(path, &ds) != 0 || ds.st_size <= size); i++)
        usleep(10000);
    assert_int_equal(stat(path, &ds), 0);
    assert_true(ds.st_size > size);
    usleep(50000);
    assert_int_equal(stat(jpath, &js), 0); /* not yet committed */
}

/* Run 1's rows only, no journal left, and a new run commits. */
static void gate_rolled_back(const char *path)
{
    char jpath[200];
    struct stat js;
    snprintf(jpath, sizeof jpath, "%s-journal", path);
    cdr_db *db = open_ok(path);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    assert_int_equal(stat(jpath, &js), -1);
    assert_int_equal(q(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(q(db, "SELECT count(*) FROM findings"), 1);
    int64_t run, fid, known;
    cdr_file_stats b = stats_for(2);
    assert_int_equal(cdr_db_file_known(db, b.sha256, &known), CDR_OK);
    assert_int_equal(known, 0);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "b.csv", &b, &fid), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM runs"), 2);
    cdr_db_close(db);
}

/* The database file as it was when kept (run 1 committed). */
static void restore(const char *keep, const char *path)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", keep, path);
    assert_int_equal(system(cmd), 0);
}

/* cdr_db_commit_begin/_end: the commit written and synced on its own
 * thread, held before the journal's deletion until _end; called off, the
 * run is gone at once; killed while held, the next open rolls it back. */
static void test_commit_gate(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run1, fid;
    cdr_file_stats a = stats_for(1);
    assert_int_equal(cdr_db_commit_begin(db, NULL), CDR_E_INTERNAL); /* no run */
    assert_int_equal(cdr_db_commit_end(db, 1), CDR_E_INTERNAL);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run1), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &a, &fid), CDR_OK);
    cdr_finding f = finding("13800138000", "a1", "2024-03-01 00:00:00", CDR_CAT_RATE_MISMATCH,
                            20000, 10000);
    assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    struct stat ds;
    assert_int_equal(stat(fx->path, &ds), 0);
    off_t size1 = ds.st_size;
    char keep[160];
    snprintf(keep, sizeof keep, "%s.keep", fx->path);
    restore(fx->path, keep);

    /* called off: the run is rolled back before _end returns */
    gate_run(db, 2000);
    gate_held(fx->path, size1);
    assert_int_equal(cdr_db_commit_end(db, 0), CDR_E_INTERRUPTED);
    assert_int_equal(q(db, "SELECT count(*) FROM findings"), 1);
    cdr_db_close(db);
    gate_rolled_back(fx->path);

    /* killed while held: the next open rolls it back */
    restore(keep, fx->path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cdr_db *cdb = NULL;
        if (cdr_db_open(fx->path, &cdb, NULL, 0) != CDR_OK)
            _exit(10);
        gate_run(cdb, 2000);
        for (;;)
            pause();
    }
    gate_held(fx->path, size1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    gate_rolled_back(fx->path);

    /* closed while held: rolled back too */
    restore(keep, fx->path);
    db = open_ok(fx->path);
    gate_run(db, 2000);
    gate_held(fx->path, size1);
    cdr_db_close(db);
    gate_rolled_back(fx->path);

    /* let through: committed */
    restore(keep, fx->path);
    db = open_ok(fx->path);
    gate_run(db, 2000);
    gate_held(fx->path, size1);
    assert_int_equal(cdr_db_commit_end(db, 1), CDR_OK);
    assert_int_equal(cdr_db_commit_end(db, 1), CDR_E_INTERNAL); /* once */
    assert_int_equal(q(db, "SELECT count(*) FROM findings"), 2001);
    cdr_db_close(db);
    db = open_ok(fx->path);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    assert_int_equal(q(db, "SELECT count(*) FROM runs"), 2);
    assert_int_equal(q(db, "SELECT count(*) FROM findings WHERE record_id LIKE 'b%'"), 2000);
    cdr_db_close(db);
}

static void test_integrity_check_detects_damage(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    int64_t run, fid;
    cdr_file_stats a = stats_for(1);
    assert_int_equal(cdr_db_begin_run(db, NULL, &run), CDR_OK);
    assert_int_equal(cdr_db_add_file(db, 0, "a.csv", &a, &fid), CDR_OK);
    for (int i = 0; i < 200; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "a%d", i);
        cdr_finding f = finding("1380013800", rid, "2024-03-01 00:00:00",
                                CDR_CAT_RATE_MISMATCH, 20000, 10000);
        assert_int_equal(cdr_db_add_finding(db, &f), CDR_OK);
    }
    assert_int_equal(cdr_db_commit_run(db, NULL), CDR_OK);
    assert_int_equal(cdr_db_check(db), CDR_OK);
    /* break an index behind SQLite's back: the table and its index disagree */
    sqlite3 *h = cdr_db_sqlite(db);
    assert_int_equal(sqlite3_exec(h, "PRAGMA writable_schema = ON", NULL, NULL, NULL), SQLITE_OK);
    int64_t root = q(db, "SELECT rootpage FROM sqlite_schema WHERE name = 'findings_run'");
    assert_true(root > 0);
    cdr_db_close(db);
    /* overwrite the index's root page with zeros */
    FILE *f = fopen(fx->path, "r+b");
    assert_non_null(f);
    char zero[4096];
    memset(zero, 0, sizeof zero);
    assert_int_equal(fseek(f, (long)((root - 1) * 4096), SEEK_SET), 0);
    assert_int_equal(fwrite(zero, 1, sizeof zero, f), sizeof zero);
    fclose(f);
    char err[256];
    cdr_err e = cdr_db_open(fx->path, &db, err, sizeof err);
    if (e == CDR_OK) {
        assert_int_equal(cdr_db_check(db), CDR_E_DB);
        assert_true(strlen(cdr_db_message(db)) > 0);
        cdr_db_close(db);
    } else {
        assert_int_equal(e, CDR_E_DB); /* refused at open: also a detection */
    }
}

/* cdr_db_warm reads what a night writes about into the page cache: after
 * it, the current candidates of the newest months and their findings' key
 * come without a cache miss (before it, on a fresh connection, they miss);
 * it changes nothing, and a stop asked for ends it at once, without an
 * error. */
static int warm_stop_now(void *u)
{
    ++*(int *)u;
    return 1;
}

static int warm_go_on(void *u)
{
    ++*(int *)u;
    return 0;
}

static int warm_misses(cdr_db *db)
{
    int cur = 0, hi = 0;
    sqlite3_db_status(cdr_db_sqlite(db), SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
    q(db, "SELECT sum(refund_micro) FROM candidates WHERE month >= '2024-02' AND "
          "superseded_by IS NULL");
    q(db, "SELECT count(*) FROM findings WHERE month >= '2024-02'");
    sqlite3_db_status(cdr_db_sqlite(db), SQLITE_DBSTATUS_CACHE_MISS, &cur, &hi, 1);
    return cur;
}

static void test_warm(void **st)
{
    fixture *fx = *st;
    cdr_db *db = open_ok(fx->path);
    for (int night = 1; night <= 3; night++)
        schema3_night(db, night);
    /* and 5,000 current candidates of other numbers, so that the warm-up
     * runs long enough to be asked whether to stop */
    assert_int_equal(sqlite3_exec(cdr_db_sqlite(db),
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                                  "WHERE i < 5000) INSERT INTO candidates(run_id, msisdn, month, "
                                  "records, overcharge_micro, refund_micro, categories, tier, "
                                  "policy, special, h) SELECT 1, '1390000' || i, '2024-03', 1, i, "
                                  "2 * i, 'rate_mismatch', 0, 'refund_first', 0, i * 7919 FROM n",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    cdr_db_close(db);
    db = open_ok(fx->path);
    assert_true(warm_misses(db) > 0); /* (the counter sees misses) */
    cdr_db_close(db);
    db = open_ok(fx->path);
    int asked = 0;
    assert_int_equal(cdr_db_warm(db, warm_stop_now, &asked), CDR_OK);
    assert_int_equal(asked, 1); /* stopped at the first question */
    assert_true(warm_misses(db) > 0);
    cdr_db_close(db);
    db = open_ok(fx->path);
    asked = 0;
    assert_int_equal(cdr_db_warm(db, warm_go_on, &asked), CDR_OK);
    assert_true(asked > 1);
    assert_int_equal(warm_misses(db), 0);
    assert_int_equal(sqlite3_total_changes(cdr_db_sqlite(db)), 0);
    assert_int_equal(q(db, "SELECT count(*) FROM current_candidates"), 5001);
    assert_int_equal(q(db, "SELECT count(*) FROM candidates"), 5003);
    cdr_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema2_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema3_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_money_view_matches_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_sha_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integrity_check_detects_damage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
