/* Unit tests: CSV output writer (quoting, neutralisation, temp+rename,
 * refused names, write errors) and the three contract files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdrecon/outcsv.h"
#include "csvout.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Count directory entries other than . and .. */
static int entries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static int setup_dir(void **st)
{
    char *d = strdup("/tmp/cdrecon-outcsv-XXXXXX");
    if (!mkdtemp(d))
        return -1;
    *st = d;
    return 0;
}

static int teardown_dir(void **st)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*st);
    int rc = system(cmd);
    free(*st);
    return rc == 0 ? 0 : -1;
}

/* Write cells to a memory stream and return the text. */
static char memtext[4096];
static FILE *mem_open(void) { return fmemopen(memtext, sizeof memtext, "w"); }

static void test_quoting(void **st)
{
    (void)st;
    memset(memtext, 0, sizeof memtext);
    FILE *f = mem_open();
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open_stream(f, "mem", &w), CDR_OK);
    cdr_csvw_textz(w, "plain");
    cdr_csvw_textz(w, "a,b");
    cdr_csvw_textz(w, "say \"hi\"");
    cdr_csvw_textz(w, "two\nlines");
    cdr_csvw_text(w, "x\ry", 3);
    cdr_csvw_textz(w, "");
    cdr_csvw_textz(w, NULL);
    cdr_csvw_text(w, "\"", 1);
    assert_int_equal(cdr_csvw_end_row(w), CDR_OK);
    cdr_csvw_textz(w, "second");
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    assert_int_equal(cdr_csvw_rows(w), 2);
    cdr_csvw_free(w);
    fclose(f);
    assert_string_equal(memtext, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"x\ry\",,,\"\"\"\"\n"
                                 "second\n");
}

static void test_neutralise(void **st)
{
    (void)st;
    memset(memtext, 0, sizeof memtext);
    FILE *f = mem_open();
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open_stream(f, "mem", &w), CDR_OK);
    cdr_csvw_textz(w, "=SUM(A1)");
    cdr_csvw_textz(w, "+1");
    cdr_csvw_textz(w, "-x");
    cdr_csvw_textz(w, "@x");
    cdr_csvw_textz(w, "\tx");
    cdr_csvw_textz(w, "\rx");
    cdr_csvw_textz(w, "=HYPERLINK(\"h\",\"a,b\")");
    cdr_csvw_textz(w, "a=b"); /* only the first byte matters */
    cdr_csvw_end_row(w);
    /* numbers stay numbers */
    cdr_csvw_money(w, -370000);
    cdr_csvw_num(w, "-0.37", 5);
    cdr_csvw_money(w, 300);
    cdr_csvw_money(w, 0);
    cdr_csvw_money(w, 190000);
    cdr_csvw_money(w, 1);
    cdr_csvw_i64(w, -5);
    cdr_csvw_u64(w, UINT64_MAX);
    cdr_csvw_end_row(w);
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    fclose(f);
    assert_string_equal(memtext,
                        "'=SUM(A1),'+1,'-x,'@x,'\tx,\"'\rx\",\"'=HYPERLINK(\"\"h\"\",\"\"a,b\"\")\",a=b\n"
                        "-0.37,-0.37,0.0003,0.00,0.19,0.000001,-5,18446744073709551615\n");
}

/* The in-place cell writer (cdr_csv_put_cell / _cellz, with its word-wise
 * paths for cells up to 16 bytes) writes exactly what cdr_csv_write_cell
 * writes - of the whole cell, or (cellz) of the cell cut at its first NUL -
 * for every length 0..40 with each special byte at each position, and with
 * two specials at every pair of positions up to 17 bytes. */
static void put_cell_case(const char *s, size_t n, char *out, char *ref, size_t cap)
{
    for (int z = 0; z < 2; z++) {
        size_t rn = z ? strnlen(s, n) : n;
        FILE *fp = fmemopen(ref, cap, "w");
        assert_non_null(fp);
        assert_int_equal(cdr_csv_write_cell(fp, s, rn), 0);
        long want = ftell(fp);
        fclose(fp);
        memset(out, 0x5a, cap);
        char *e = z ? cdr_csv_put_cellz(out, s, n, 1) : cdr_csv_put_cell(out, s, n, 1);
        assert_int_equal(e - out, want);
        assert_memory_equal(out, ref, (size_t)want);
        assert_true((unsigned char)out[want] == 0x5a); /* nothing written past the cell */
    }
}

static void test_put_cell_matches_writer(void **st)
{
    (void)st;
    static const char specials[] = {',', '"', '\r', '\n', '\0', '=', '+', '-', '@', '\t', '\'',
                                    'a', (char)0xc3, ' '};
    char s[48] = {0}, out[256], ref[256];
    long cases = 0;
    for (size_t n = 0; n <= 40; n++) {
        for (size_t i = 0; i < n; i++)
            s[i] = (char)('a' + i % 26);
        put_cell_case(s, n, out, ref, sizeof out);
        for (size_t at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                char keep = s[at];
                s[at] = specials[k];
                put_cell_case(s, n, out, ref, sizeof out);
                s[at] = keep;
                cases++;
            }
    }
    for (size_t n = 2; n <= 17; n++)
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                for (size_t k = 0; k < 5; k++)
                    for (size_t m = 0; m < 5; m++) {
                        for (size_t i = 0; i < n; i++)
                            s[i] = (char)('0' + i % 10);
                        s[a] = specials[k];
                        s[b] = specials[m];
                        put_cell_case(s, n, out, ref, sizeof out);
                        cases++;
                    }
    assert_true(cases > 30000);
}

/* Whole rows from a memory writer: counted by scanning (raw) or as told
 * (raw_rows); a memory writer's reset empties its text and its count. */
static void test_raw_rows(void **st)
{
    (void)st;
    cdr_csvw *m, *w;
    assert_int_equal(cdr_csvw_open_memory(&m), CDR_OK);
    cdr_csvw_textz(m, "a");
    cdr_csvw_end_row(m);
    cdr_csvw_textz(m, "b,c");
    cdr_csvw_end_row(m);
    assert_int_equal(cdr_csvw_rows(m), 2);
    size_t n;
    const char *p = cdr_csvw_memory(m, &n);
    assert_int_equal(cdr_csvw_open_memory(&w), CDR_OK);
    assert_int_equal(cdr_csvw_raw(w, p, n), CDR_OK);
    assert_int_equal(cdr_csvw_rows(w), 2);
    assert_int_equal(cdr_csvw_raw_rows(w, p, n, cdr_csvw_rows(m)), CDR_OK);
    assert_int_equal(cdr_csvw_rows(w), 4);
    size_t wn;
    const char *wp = cdr_csvw_memory(w, &wn);
    assert_int_equal(wn, 2 * n);
    assert_memory_equal(wp, "a\n\"b,c\"\na\n\"b,c\"\n", wn);
    cdr_csvw_memory_reset(m);
    assert_int_equal(cdr_csvw_rows(m), 0);
    cdr_csvw_memory(m, &n);
    assert_int_equal(n, 0);
    cdr_csvw_free(m);
    cdr_csvw_free(w);
}

static void test_temp_and_rename(void **st)
{
    const char *dir = *st;
    char final[512], tmp[512];
    snprintf(final, sizeof final, "%s/findings.csv", dir);
    snprintf(tmp, sizeof tmp, "%s/.findings.csv.tmp.%ld", dir, (long)getpid());
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open(dir, "findings.csv", 0, &w), CDR_OK);
    assert_int_equal(cdr_findings_csv_header(w), CDR_OK);
    assert_false(exists(final));
    assert_true(exists(tmp));
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    assert_true(exists(final));
    assert_false(exists(tmp));
    assert_int_equal(entries(dir), 1);
    assert_string_equal(slurp(final),
                        "msisdn,month,record_id,file,line,category,flags,billed,rebuilt,"
                        "difference,service,start_time,peer,offset,explanation\n");

    /* Replacing keeps the old content until commit. */
    assert_int_equal(cdr_csvw_open(dir, "findings.csv", 0, &w), CDR_OK);
    cdr_csvw_textz(w, "new");
    cdr_csvw_end_row(w);
    assert_non_null(strstr(slurp(final), "msisdn")); /* the old file until commit */
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    assert_string_equal(slurp(final), "new\n");

    /* NOCLOBBER refuses an existing name. */
    assert_int_equal(cdr_csvw_open(dir, "findings.csv", CDR_CSVW_NOCLOBBER, &w), CDR_E_EXISTS);
    assert_null(w);
    assert_int_equal(entries(dir), 1);
}

static void test_abort(void **st)
{
    const char *dir = *st;
    char final[512];
    snprintf(final, sizeof final, "%s/candidates.csv", dir);
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open(dir, "candidates.csv", 0, &w), CDR_OK);
    cdr_candidates_csv_header(w);
    cdr_csvw_abort(w);
    assert_int_not_equal(cdr_csvw_commit(w), CDR_OK); /* no commit after abort */
    cdr_csvw_free(w);
    assert_false(exists(final));
    assert_int_equal(entries(dir), 0);
    /* free without commit aborts too */
    assert_int_equal(cdr_csvw_open(dir, "candidates.csv", 0, &w), CDR_OK);
    cdr_candidates_csv_header(w);
    cdr_csvw_free(w);
    cdr_csvw_free(NULL);
    assert_false(exists(final));
    assert_int_equal(entries(dir), 0);
}

static void test_bad_names(void **st)
{
    const char *dir = *st;
    const char *bad[] = {"../x", "a/b", "..", ".", "", "/etc/passwd", "x/../y", "..hidden"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cdr_csvw *w = (cdr_csvw *)1;
        assert_int_equal(cdr_csvw_open(dir, bad[i], 0, &w), CDR_E_USAGE);
        assert_null(w);
    }
    assert_int_equal(cdr_csvw_open(dir, NULL, 0, &(cdr_csvw *){NULL}), CDR_E_USAGE);
    assert_int_equal(entries(dir), 0);
}

static void test_symlink_tmp_refused(void **st)
{
    const char *dir = *st;
    char tmp[512], target[512];
    snprintf(tmp, sizeof tmp, "%s/.rejects.csv.tmp.%ld", dir, (long)getpid());
    snprintf(target, sizeof target, "%s/target", dir);
    assert_int_equal(symlink(target, tmp), 0);
    cdr_csvw *w;
    assert_int_equal(cdr_csvw_open(dir, "rejects.csv", 0, &w), CDR_E_IO);
    assert_null(w);
    assert_false(exists(target));
    assert_true(exists(tmp)); /* someone else's file is left alone */
    unlink(tmp);
    /* a missing directory is an I/O error */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(cdr_csvw_open(missing, "rejects.csv", 0, &w), CDR_E_IO);
}

static void test_dev_full_stream(void **st)
{
    (void)st;
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        skip();
    cdr_csvw *w;
    /* a small write: only the flush at commit can fail */
    assert_int_equal(cdr_csvw_open_stream(f, "/dev/full", &w), CDR_OK);
    assert_int_equal(cdr_rejects_csv_header(w), CDR_OK);
    assert_int_equal(cdr_csvw_commit(w), CDR_E_IO);
    assert_non_null(strstr(cdr_csvw_message(w), "No space"));
    cdr_csvw_free(w);
    fclose(f);

    /* a large write: fails on the way and stays failed */
    f = fopen("/dev/full", "w");
    assert_int_equal(cdr_csvw_open_stream(f, "/dev/full", &w), CDR_OK);
    cdr_err e = CDR_OK;
    for (int i = 0; i < 10000 && e == CDR_OK; i++) {
        cdr_csvw_textz(w, "0123456789012345678901234567890123456789");
        e = cdr_csvw_end_row(w);
    }
    assert_int_equal(e, CDR_E_IO);
    assert_int_equal(cdr_csvw_textz(w, "x"), CDR_E_IO);
    assert_int_equal(cdr_csvw_commit(w), CDR_E_IO);
    cdr_csvw_free(w);
    fclose(f);
}

/* A real file in the directory, with the file size limit hit (EFBIG):
 * commit must fail and leave neither the final nor the temporary file. */
static void test_write_error_in_dir(void **st)
{
    const char *dir = *st;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {4096, 4096};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(10);
        cdr_csvw *w;
        if (cdr_csvw_open(dir, "findings.csv", 0, &w) != CDR_OK)
            _exit(11);
        for (int i = 0; i < 1000; i++) {
            cdr_csvw_textz(w, "0123456789012345678901234567890123456789");
            cdr_csvw_end_row(w);
        }
        cdr_err e = cdr_csvw_commit(w);
        cdr_csvw_free(w);
        _exit(e == CDR_E_IO ? 0 : 12);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(entries(dir), 0);
}

static void test_contract_rows(void **st)
{
    const char *dir = *st;
    char path[512];
    cdr_csvw *w;

    /* findings */
    assert_int_equal(cdr_csvw_open(dir, "findings.csv", 0, &w), CDR_OK);
    cdr_findings_csv_header(w);
    cdr_finding f;
    memset(&f, 0, sizeof f);
    f.msisdn = (cdr_str){"13800138000", 11};
    assert_int_equal(cdr_month_parse("2024-03", 7, &f.month), CDR_OK);
    f.record_id = (cdr_str){"=r1", 3};
    f.file = "cdr,1.csv.gz";
    f.line = 17;
    f.offset = 1234;
    f.service = CDR_SVC_VOICE;
    assert_int_equal(cdr_time_parse("2024-03-01 22:59:50", 19, &f.start), CDR_OK);
    f.peer = (cdr_str){"10086", 5};
    f.category = CDR_CAT_FREE_NUMBER;
    f.flags = CDR_FLAG_OVERLONG | CDR_FLAG_OVERLAP;
    f.billed = 190000;
    f.rebuilt = 0;
    f.difference = 190000;
    f.explanation = "call to free number 10086 charged 0.19";
    assert_int_equal(cdr_findings_csv_row(w, &f), CDR_OK);
    f.category = CDR_CAT_LEAKAGE;
    f.flags = 0;
    f.billed = 0;
    f.rebuilt = 370000;
    f.difference = -370000;
    f.record_id = (cdr_str){"r2", 2};
    f.explanation = NULL;
    assert_int_equal(cdr_findings_csv_row(w, &f), CDR_OK);
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    snprintf(path, sizeof path, "%s/findings.csv", dir);
    assert_string_equal(
        slurp(path),
        "msisdn,month,record_id,file,line,category,flags,billed,rebuilt,difference,service,"
        "start_time,peer,offset,explanation\n"
        "13800138000,2024-03,'=r1,\"cdr,1.csv.gz\",17,free_number,overlap;overlong,0.19,0.00,"
        "0.19,voice,2024-03-01 22:59:50,10086,1234,call to free number 10086 charged 0.19\n"
        "13800138000,2024-03,r2,\"cdr,1.csv.gz\",17,leakage,,0.00,0.37,-0.37,voice,"
        "2024-03-01 22:59:50,10086,1234,\n");

    /* candidates */
    assert_int_equal(cdr_csvw_open(dir, "candidates.csv", 0, &w), CDR_OK);
    cdr_candidates_csv_header(w);
    cdr_candidate c;
    memset(&c, 0, sizeof c);
    c.msisdn = f.msisdn;
    c.month = f.month;
    c.records = 3;
    c.overcharge = 1230000;
    c.refund = 2460000;
    c.categories = (1u << CDR_CAT_WRONG_BAND) | (1u << CDR_CAT_DUPLICATE) |
                   (1u << CDR_CAT_SMS_SEGMENTS);
    c.tier = 1;
    c.policy = CDR_POLICY_VERIFY_FIRST;
    c.special = 1;
    c.flags = CDR_FLAG_OVERLAP;
    c.policy_reason = "special customer";
    assert_int_equal(cdr_candidates_csv_row(w, &c), CDR_OK);
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    snprintf(path, sizeof path, "%s/candidates.csv", dir);
    assert_string_equal(slurp(path),
                        "msisdn,month,records,overcharge,refund,categories,tier,policy,special,"
                        "flags,policy_reason\n"
                        "13800138000,2024-03,3,1.23,2.46,duplicate;sms_segments;wrong_band,1,"
                        "verify_first,1,overlap,special customer\n");

    /* rejects: the raw row is text and neutralised */
    assert_int_equal(cdr_csvw_open(dir, "rejects.csv", 0, &w), CDR_OK);
    cdr_rejects_csv_header(w);
    cdr_reject r;
    memset(&r, 0, sizeof r);
    r.file = "a.csv";
    r.line = 3;
    r.offset = 99;
    r.reason = "bad billed '=1+1'";
    r.raw = (cdr_str){"=cmd|' /C calc'!A0,\"x\"", 22};
    r.raw_len = 22;
    assert_int_equal(cdr_rejects_csv_row(w, &r), CDR_OK);
    assert_int_equal(cdr_csvw_commit(w), CDR_OK);
    cdr_csvw_free(w);
    snprintf(path, sizeof path, "%s/rejects.csv", dir);
    assert_string_equal(slurp(path), "file,line,offset,reason,raw\n"
                                     "a.csv,3,99,bad billed '=1+1',\"'=cmd|' /C calc'!A0,\"\"x\"\"\"\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_neutralise),
        cmocka_unit_test(test_put_cell_matches_writer),
        cmocka_unit_test(test_raw_rows),
        cmocka_unit_test_setup_teardown(test_temp_and_rename, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_abort, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_bad_names, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_symlink_tmp_refused, setup_dir, teardown_dir),
        cmocka_unit_test(test_dev_full_stream),
        cmocka_unit_test_setup_teardown(test_write_error_in_dir, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_contract_rows, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
