/* Unit tests: rejected rows with NUL bytes and invalid UTF-8 (issue 14 item 11).
 * rejects.csv keeps every text output valid UTF-8 with a lossless escaped form
 * (cdr_bytes_escape); the database keeps the bytes exactly, as a BLOB. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "testrnd.h"
#include "cdrecon/db.h"
#include "cdrecon/outcsv.h"
#include "cdrecon/textsafe.h"

/* Decode the escaped form; returns the length. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
            out[k++] = '\\';
            i += 2;
        } else if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x') {
            unsigned v;
            assert_int_equal(sscanf(s + i + 2, "%2X", &v), 1);
            out[k++] = (char)v;
            i += 4;
        } else {
            out[k++] = s[i++];
        }
    }
    return k;
}

static int valid_utf8_no_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = cdr_utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!k || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f)
            return 0;
        i += k;
    }
    return 1;
}

static void test_escape_examples(void **st)
{
    (void)st;
    char b[64];
    cdr_bytes_escape("a\0b", 3, b);
    assert_string_equal(b, "a\\x00b");
    cdr_bytes_escape("\xff\xfe", 2, b);
    assert_string_equal(b, "\\xFF\\xFE");
    cdr_bytes_escape("C:\\x", 4, b);
    assert_string_equal(b, "C:\\\\x");
    cdr_bytes_escape("中,\t\"x\"\r\n", strlen("中,\t\"x\"\r\n"), b);
    assert_string_equal(b, "中,\t\"x\"\r\n");
    cdr_bytes_escape("\x1b[2J\x7f", 5, b);
    assert_string_equal(b, "\\x1B[2J\\x7F");
    cdr_bytes_escape("\xe4\xb8", 2, b); /* a character cut at the 4096-byte limit */
    assert_string_equal(b, "\\xE4\\xB8");
}

/* Random bytes: the escaped form is valid UTF-8 without control bytes (but
 * TAB/LF/CR) and decodes back to the bytes. */
static void test_escape_roundtrip(void **st)
{
    (void)st;
    uint64_t seed = 11;
    char in[300], esc[4 * 300 + 1], back[300];
    for (int t = 0; t < 50000; t++) {
        size_t n = trnd(&seed, 300);
        for (size_t i = 0; i < n; i++) {
            in[i] = (char)trnd(&seed, 256);
            if (trnd(&seed, 4) == 0) /* more backslashes, x and hex digits */
                in[i] = "\\x0F9a"[trnd(&seed, 6)];
        }
        size_t k = cdr_bytes_escape(in, n, esc);
        assert_int_equal(strlen(esc), k);
        assert_true(valid_utf8_no_ctl(esc, k));
        assert_int_equal(unescape(esc, k, back), n);
        assert_memory_equal(back, in, n);
    }
}

static cdr_reject hostile_reject(void)
{
    static const char raw[] = "r1,139\0""00,sms,\xff\xfe bad,\"x\"";
    cdr_reject r;
    memset(&r, 0, sizeof r);
    r.file = "day.csv";
    r.line = 3;
    r.offset = 99;
    r.reason = "NUL byte in column msisdn at byte 4 of the field";
    r.raw = (cdr_str){raw, sizeof raw - 1};
    r.raw_len = sizeof raw - 1;
    return r;
}

static void test_rejects_csv_row(void **st)
{
    (void)st;
    cdr_csvw *w = NULL;
    assert_int_equal(cdr_csvw_open_memory(&w), CDR_OK);
    cdr_reject r = hostile_reject();
    assert_int_equal(cdr_rejects_csv_row(w, &r), CDR_OK);
    size_t n;
    const char *p = cdr_csvw_memory(w, &n);
    assert_true(valid_utf8_no_ctl(p, n));
    assert_int_equal(n, strlen("day.csv,3,99,NUL byte in column msisdn at byte 4 of the field,"
                               "\"r1,139\\x0000,sms,\\xFF\\xFE bad,\"\"x\"\"\"\n"));
    assert_memory_equal(p, "day.csv,3,99,NUL byte in column msisdn at byte 4 of the field,"
                           "\"r1,139\\x0000,sms,\\xFF\\xFE bad,\"\"x\"\"\"\n", n);
    cdr_csvw_free(w);
}

static void test_db_raw_blob(void **st)
{
    (void)st;
    char path[] = "/tmp/cdr-rejraw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    cdr_db *db = NULL;
    char err[512];
    assert_int_equal(cdr_db_open(path, &db, err, sizeof err), CDR_OK);
    cdr_db_run_info info = {.command = "cdrecon run", .tariff_dir = "tariff/"};
    int64_t run_id = 0;
    assert_int_equal(cdr_db_begin_run(db, &info, &run_id), CDR_OK);
    cdr_reject r = hostile_reject();
    assert_int_equal(cdr_db_add_reject(db, &r), CDR_OK);
    cdr_db_run_end end = {.status = CDR_E_REJECTS};
    assert_int_equal(cdr_db_commit_run(db, &end), CDR_OK);
    cdr_db_close(db);

    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT typeof(raw), raw, raw_len FROM rejects", -1,
                                        &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "blob");
    assert_int_equal(sqlite3_column_bytes(q, 1), (int)r.raw.n);
    assert_memory_equal(sqlite3_column_blob(q, 1), r.raw.p, r.raw.n);
    assert_int_equal(sqlite3_column_int64(q, 2), (int64_t)r.raw.n);
    sqlite3_finalize(q);
    sqlite3_close(h);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_examples),
        cmocka_unit_test(test_escape_roundtrip),
        cmocka_unit_test(test_rejects_csv_row),
        cmocka_unit_test(test_db_raw_blob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
