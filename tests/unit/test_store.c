/* Unit tests: the per-subscriber store (round trip of every field, blocks
 * spanning statements, not found, temp+rename, every byte flipped and
 * every truncation refused) and the JSON string writer of render.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/render.h"
#include "cdrecon/store.h"

static char dir[64];
static char path[128];

static int setup_dir(void **st)
{
    (void)st;
    strcpy(dir, "/tmp/cdrecon-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/s.store", dir);
    return 0;
}

static int teardown_dir(void **st)
{
    (void)st;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_entries(void)
{
    char cmd[256];
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

/* A record with every field set to something distinctive (k varies it). */
static void make_rec(cdr_stmt_rec *r, const char *msisdn, cdr_month m, int k)
{
    static char b[16][128];
    memset(r, 0, sizeof *r);
    snprintf(b[0], sizeof b[0], "dir/cdr-%d.csv.gz", k % 3);
    r->file = b[0];
    r->line = 1000000000000ull + (uint64_t)k;
    r->offset = (uint64_t)k * 77u;
    snprintf(b[1], sizeof b[1], "R%08d", k);
    r->record_id = b[1];
    r->msisdn = (char *)msisdn;
    r->month = m;
    r->service = (cdr_service)(k % 4);
    r->direction = (cdr_direction)(k % 2);
    snprintf(b[2], sizeof b[2], "%s", k % 5 == 0 ? "=SUM(A1)" : "13800138000");
    r->peer = b[2];
    r->start = cdr_month_start(m) + k * 61 - (k % 7 == 3 ? 3600 : 0); /* not monotonic */
    r->usage = k % 6 == 0 ? -1 : (int64_t)k * 1000003;
    r->amount = -1 + k;
    r->billable = k % 4 == 1 ? -1 : INT64_MAX - k;
    r->covered = k % 4 == 1 ? -1 : k;
    r->billed = (cdr_money)k * 10000 + 3;
    r->has_rebuilt = k % 3 != 2;
    r->rebuilt = r->has_rebuilt ? (cdr_money)k * 9000 : 0;
    r->difference = r->billed - r->rebuilt;
    r->status = (cdr_rec_status)(k % CDR_RS__COUNT);
    snprintf(b[3], sizeof b[3], "%s", k % 8 == 0 ? "R00000001" : "");
    r->dup_of = b[3];
    r->parts = (uint32_t)(k % 3 + 1);
    snprintf(b[4], sizeof b[4], "%s", k % 2 ? "call,\"x\"" : "");
    r->call_id = b[4];
    r->partial_seq = k % 3;
    snprintf(b[5], sizeof b[5], "%s", k % 9 == 0 ? "ref\n1" : "");
    r->sms_ref = b[5];
    r->sms_part = -k;
    r->sms_parts = INT32_MAX - k;
    r->plan = k < 5 ? "b58" : "计划";
    r->rate_line = (uint32_t)k * 3u;
    r->price = -k * 7;
    r->unit = 60;
    r->increment = k;
    r->band = k % 2 ? "peak:1;offpeak:59" : "peak";
    r->pool = k % 3 ? "vmin" : "";
    r->pool_after = k % 3 ? 1000 - k : -1;
    r->discount_micro = k % 4 == 0 ? 20000000 : 0;
    r->category = k % 5 == 0 ? "wrong_band" : "";
    r->flags = (unsigned)(k % 4);
    snprintf(b[6], sizeof b[6], "explanation %d: tab\there, quote \" and \x01", k);
    r->explanation = b[6];
    snprintf(b[7], sizeof b[7], "%s", k % 2 ? "cell_id=4F;msc_id=" : "");
    r->extra = b[7];
}

static void make_stmt(cdr_stmt *s, const char *msisdn, cdr_month m, int nrec, int cand)
{
    assert_int_equal(cdr_stmt_init(s, msisdn, m), CDR_OK);
    for (int k = 0; k < nrec; k++) {
        cdr_stmt_rec r;
        make_rec(&r, msisdn, m, k);
        assert_int_equal(cdr_stmt_add(s, &r), CDR_OK);
    }
    if (cand) {
        cdr_candidate c;
        memset(&c, 0, sizeof c);
        c.month = m;
        c.records = 3;
        c.overcharge = 123456;
        c.refund = 246912;
        c.categories = (1u << CDR_CAT_DUPLICATE) | (1u << CDR_CAT_WRONG_BAND);
        c.tier = 2;
        c.policy = CDR_POLICY_VERIFY_FIRST;
        c.special = 1;
        c.flags = CDR_FLAG_OVERLAP;
        c.policy_reason = "special customer: verify first";
        assert_int_equal(cdr_stmt_set_candidate(s, &c), CDR_OK);
    }
    /* totals and pool summaries are cdr_stmt_finish's (the store recomputes
     * them on reading, as the scan path computes them) */
    assert_int_equal(cdr_stmt_finish(s, NULL), CDR_OK);
    s->vip = nrec % 2;
    s->join_date = nrec % 3 ? -1 : cdr_month_start(m) - 86400 * 400;
}

#define SEQ(a, b) assert_string_equal((a) ? (a) : "", (b) ? (b) : "")

static void assert_rec_equal(const cdr_stmt_rec *a, const cdr_stmt_rec *b)
{
    SEQ(a->file, b->file);
    assert_true(a->line == b->line);
    assert_true(a->offset == b->offset);
    SEQ(a->record_id, b->record_id);
    SEQ(a->msisdn, b->msisdn);
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->service, b->service);
    assert_int_equal(a->direction, b->direction);
    SEQ(a->peer, b->peer);
    assert_true(a->start == b->start);
    assert_true(a->usage == b->usage);
    assert_true(a->amount == b->amount);
    assert_true(a->billable == b->billable);
    assert_true(a->covered == b->covered);
    assert_true(a->billed == b->billed);
    assert_int_equal(a->has_rebuilt, b->has_rebuilt);
    assert_true(a->rebuilt == b->rebuilt);
    assert_true(a->difference == b->difference);
    assert_int_equal(a->status, b->status);
    SEQ(a->dup_of, b->dup_of);
    assert_int_equal(a->parts, b->parts);
    SEQ(a->call_id, b->call_id);
    assert_true(a->partial_seq == b->partial_seq);
    SEQ(a->sms_ref, b->sms_ref);
    assert_int_equal(a->sms_part, b->sms_part);
    assert_int_equal(a->sms_parts, b->sms_parts);
    SEQ(a->plan, b->plan);
    assert_int_equal(a->rate_line, b->rate_line);
    assert_true(a->price == b->price);
    assert_true(a->unit == b->unit);
    assert_true(a->increment == b->increment);
    SEQ(a->band, b->band);
    SEQ(a->pool, b->pool);
    assert_true(a->pool_after == b->pool_after);
    assert_true(a->discount_micro == b->discount_micro);
    SEQ(a->category, b->category);
    assert_int_equal(a->flags, b->flags);
    SEQ(a->explanation, b->explanation);
    SEQ(a->extra, b->extra);
}

static void assert_stmt_equal(const cdr_stmt *a, const cdr_stmt *b)
{
    SEQ(a->msisdn, b->msisdn);
    assert_int_equal(a->month, b->month);
    assert_int_equal(a->n_recs, b->n_recs);
    for (size_t i = 0; i < a->n_recs; i++)
        assert_rec_equal(&a->recs[i], &b->recs[i]);
    assert_int_equal(a->n_pools, b->n_pools);
    for (size_t i = 0; i < a->n_pools; i++) {
        SEQ(a->pools[i].pool, b->pools[i].pool);
        SEQ(a->pools[i].plan, b->pools[i].plan);
        assert_true(a->pools[i].allowance == b->pools[i].allowance);
        assert_true(a->pools[i].used == b->pools[i].used);
        assert_true(a->pools[i].left == b->pools[i].left);
        SEQ(a->pools[i].unit, b->pools[i].unit);
    }
    assert_int_equal(a->has_candidate, b->has_candidate);
    if (a->has_candidate) {
        assert_int_equal(a->cand.msisdn.n, b->cand.msisdn.n);
        assert_memory_equal(a->cand.msisdn.p, b->cand.msisdn.p, a->cand.msisdn.n);
        assert_int_equal(a->cand.month, b->cand.month);
        assert_int_equal(a->cand.records, b->cand.records);
        assert_true(a->cand.overcharge == b->cand.overcharge);
        assert_true(a->cand.refund == b->cand.refund);
        assert_int_equal(a->cand.categories, b->cand.categories);
        assert_int_equal(a->cand.tier, b->cand.tier);
        assert_int_equal(a->cand.policy, b->cand.policy);
        assert_int_equal(a->cand.special, b->cand.special);
        assert_int_equal(a->cand.flags, b->cand.flags);
        SEQ(a->cand.policy_reason, b->cand.policy_reason);
    }
    assert_true(a->n_findings == b->n_findings);
    assert_true(a->n_duplicates == b->n_duplicates);
    assert_true(a->n_unrated == b->n_unrated);
    assert_true(a->total_billed == b->total_billed);
    assert_true(a->total_rebuilt == b->total_rebuilt);
    assert_true(a->leakage == b->leakage);
    assert_int_equal(a->vip, b->vip);
    assert_true(a->join_date == b->join_date);
}

/* The statements of the test store: numbers x months, in a non-sorted order. */
#define NS 6
static const char *nums[NS] = {"15900000002", "13800000001", "10086", "13800000001",
                                "19999999999999999999999999999999", "15900000002"};
static const int mons[NS] = {10, 10, 9, 9, 10, 11};
static const int nrecs[NS] = {40, 1, 3, 200, 2, 0};

static int small_store; /* 1: few, short records (the exhaustive damage tests) */

static void build_store(size_t block_size, cdr_stmt *orig)
{
    cdr_store_opts o;
    cdr_store_opts_init(&o);
    o.block_size = block_size;
    o.level = block_size == 1000 ? 6 : 1; /* zlib's deflate; level 1: ISA-L's when linked */
    o.meta = "test store";
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, &o, &w), CDR_OK);
    for (int i = 0; i < NS; i++) {
        make_stmt(&orig[i], nums[i], 2026 * 12 + mons[i] - 1,
                  small_store ? nrecs[i] % 4 : nrecs[i], i % 2 == 0);
        assert_int_equal(cdr_store_put(w, &orig[i]), CDR_OK);
    }
    assert_int_equal(cdr_store_commit(w), CDR_OK);
    cdr_store_info info;
    cdr_store_writer_info(w, &info);
    assert_int_equal(info.statements, NS);
    assert_int_equal(info.records, small_store ? 6 : 246);
    cdr_store_writer_free(w);
}

static void free_all(cdr_stmt *orig)
{
    for (int i = 0; i < NS; i++)
        cdr_stmt_free(&orig[i]);
}

static void check_all(cdr_store *s, const cdr_stmt *orig)
{
    char err[256];
    for (int i = 0; i < NS; i++) {
        cdr_stmt got;
        cdr_err e = cdr_store_get(s, nums[i], 2026 * 12 + mons[i] - 1, &got, err, sizeof err);
        assert_int_equal(e, CDR_OK);
        assert_stmt_equal(&orig[i], &got);
        cdr_stmt_free(&got);
    }
}

static void test_round_trip(void **st)
{
    (void)st;
    static const size_t sizes[] = {256, 1000, 65536};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        cdr_stmt orig[NS];
        build_store(sizes[z], orig);
        cdr_store *s;
        char err[256];
        assert_int_equal(cdr_store_open(path, &s, err, sizeof err), CDR_OK);
        assert_string_equal(cdr_store_meta(s), "test store");
        cdr_store_info info;
        cdr_store_info_get(s, &info);
        assert_int_equal(info.statements, NS);
        assert_int_equal(info.records, 246);
        if (sizes[z] == 256)
            assert_true(info.blocks > 20); /* statements span many blocks */
        check_all(s, orig);
        assert_int_equal(cdr_store_verify(s, err, sizeof err), CDR_OK);
        /* not found: another number, another month, a prefix of a number */
        cdr_stmt got;
        assert_int_equal(cdr_store_get(s, "13800000002", 2026 * 12 + 9, &got, err, sizeof err),
                         CDR_E_NOTFOUND);
        assert_int_equal(got.n_recs, 0);
        cdr_stmt_free(&got);
        assert_int_equal(cdr_store_get(s, "13800000001", 2026 * 12 + 7, &got, err, sizeof err),
                         CDR_E_NOTFOUND);
        cdr_stmt_free(&got);
        assert_int_equal(cdr_store_get(s, "1380000000", 2026 * 12 + 9, &got, err, sizeof err),
                         CDR_E_NOTFOUND);
        cdr_stmt_free(&got);
        cdr_store_close(s);
        free_all(orig);
    }
}

/* The edges of the record encoding: amounts and deltas at the int64 limits,
 * identifiers with leading zeros, more than 18 digits or digits only, unknown
 * columns with empty pieces, a record of another number and month, more
 * distinct strings than a statement's dictionary remembers. */
/* Parts (encoded apart, as on the rating workers) mixed with serial calls:
 * each part starts on a block of its own and its index entries are moved
 * to where its blocks land in the file; every statement reads back. */
static void test_parts(void **st)
{
    (void)st;
    cdr_store_opts o;
    cdr_store_opts_init(&o);
    o.block_size = 256; /* statements span blocks inside a part */
    cdr_stmt orig[NS];
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, &o, &w), CDR_OK);
    for (int i = 0; i < NS; i++)
        make_stmt(&orig[i], nums[i], 2026 * 12 + mons[i] - 1, nrecs[i], i % 2 == 0);
    cdr_store_part *a = NULL, *b = NULL;
    /* both parts encoded before anything is appended, as with a lookahead */
    assert_int_equal(cdr_store_part_put(w, &a, &orig[1]), CDR_OK);
    assert_int_equal(cdr_store_part_put(w, &a, &orig[2]), CDR_OK);
    assert_int_equal(cdr_store_part_put(w, &b, &orig[3]), CDR_OK);
    assert_int_equal(cdr_store_part_finish(w, a), CDR_OK);
    assert_int_equal(cdr_store_part_finish(w, b), CDR_OK);
    assert_true(cdr_store_part_bytes(a) > 0);
    assert_int_equal(cdr_store_put(w, &orig[0]), CDR_OK); /* leaves a short block open */
    assert_int_equal(cdr_store_append_part(w, a), CDR_OK);
    assert_int_equal(cdr_store_put(w, &orig[4]), CDR_OK);
    assert_int_equal(cdr_store_append_part(w, b), CDR_OK);
    assert_int_equal(cdr_store_put(w, &orig[5]), CDR_OK);
    cdr_store_part_free(a);
    cdr_store_part_free(b);
    cdr_store_part_free(NULL);
    assert_int_equal(cdr_store_commit(w), CDR_OK);
    cdr_store_info wi;
    cdr_store_writer_info(w, &wi);
    assert_int_equal(wi.statements, NS);
    assert_int_equal(wi.records, 246);
    cdr_store_writer_free(w);

    cdr_store *s;
    char err[256];
    assert_int_equal(cdr_store_open(path, &s, err, sizeof err), CDR_OK);
    cdr_store_info info;
    cdr_store_info_get(s, &info);
    assert_int_equal(info.statements, NS);
    assert_int_equal(info.records, 246);
    assert_int_equal(info.blocks, wi.blocks);
    check_all(s, orig);
    assert_int_equal(cdr_store_verify(s, err, sizeof err), CDR_OK);
    cdr_store_close(s);
    free_all(orig);
}

static void test_encoding_edges(void **st)
{
    (void)st;
    static const int64_t big[] = {INT64_MIN, INT64_MIN + 1, -10000, -1, 0, 1, 9999, 10000,
                                  INT64_MAX - 9999, INT64_MAX};
    static const char *ids[] = {"", "0", "007", "R0000000000000000000000001", "12345678901234567890",
                                "abc", "x9", "999999999999999999", "1000000000000000000",
                                "=SUM(A1)0"};
    static const char *extras[] = {"", ";", "a=1;;b=0012", "cell_id=21049;msc_id=BJMSC03",
                                   "x=;y", ";;;;;;;;;;z=99"};
    const char *msisdn = "13800000001";
    cdr_month m = 2026 * 12 + 9;
    cdr_stmt s;
    assert_int_equal(cdr_stmt_init(&s, msisdn, m), CDR_OK);
    char bufs[8][64];
    int n = 120;
    for (int k = 0; k < n; k++) {
        cdr_stmt_rec r;
        make_rec(&r, msisdn, m, k);
        int64_t v = big[k % 10], w = big[(k * 7 + 3) % 10];
        r.start = v;
        r.usage = w;
        r.amount = v;
        r.billable = big[(k * 3) % 10];
        r.covered = w;
        r.billed = v;
        r.rebuilt = w;
        r.difference = big[(k * 5 + 1) % 10];
        r.price = w;
        r.discount_micro = v;
        r.pool_after = w;
        r.partial_seq = v;
        r.line = (uint64_t)v;
        r.offset = (uint64_t)w;
        r.record_id = (char *)ids[k % 10];
        r.peer = (char *)ids[(k + 3) % 10];
        r.call_id = (char *)ids[(k + 5) % 10];
        r.sms_ref = (char *)ids[(k * 3) % 10];
        r.dup_of = (char *)ids[(k * 7) % 10];
        r.extra = (char *)extras[k % 6];
        snprintf(bufs[0], sizeof bufs[0], "explanation number %d", k); /* > 32 distinct */
        r.explanation = bufs[0];
        snprintf(bufs[1], sizeof bufs[1], "plan%d", k % 40);
        r.plan = bufs[1];
        r.rate_line = (uint32_t)(k % 37);
        if (k % 11 == 5) {
            r.msisdn = "15900000002";
            r.month = m + 1;
        }
        if (k % 13 == 7)
            r.month = INT32_MIN;
        assert_int_equal(cdr_stmt_add(&s, &r), CDR_OK);
    }
    assert_int_equal(cdr_stmt_finish(&s, NULL), CDR_OK);
    s.vip = 1;
    s.join_date = INT64_MIN;
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, NULL, &w), CDR_OK);
    assert_int_equal(cdr_store_put(w, &s), CDR_OK);
    assert_int_equal(cdr_store_commit(w), CDR_OK);
    cdr_store_writer_free(w);
    cdr_store *rs;
    char err[256];
    assert_int_equal(cdr_store_open(path, &rs, err, sizeof err), CDR_OK);
    cdr_stmt got;
    assert_int_equal(cdr_store_get(rs, msisdn, m, &got, err, sizeof err), CDR_OK);
    assert_stmt_equal(&s, &got);
    assert_int_equal(cdr_store_verify(rs, err, sizeof err), CDR_OK);
    cdr_stmt_free(&got);
    cdr_store_close(rs);
    cdr_stmt_free(&s);
}

static void test_empty_store(void **st)
{
    (void)st;
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, NULL, &w), CDR_OK);
    assert_int_equal(cdr_store_commit(w), CDR_OK);
    cdr_store_writer_free(w);
    cdr_store *s;
    char err[256];
    assert_int_equal(cdr_store_open(path, &s, err, sizeof err), CDR_OK);
    cdr_stmt got;
    assert_int_equal(cdr_store_get(s, "13800000001", 0, &got, err, sizeof err), CDR_E_NOTFOUND);
    cdr_stmt_free(&got);
    assert_int_equal(cdr_store_verify(s, err, sizeof err), CDR_OK);
    cdr_store_close(s);
}

static void test_duplicate_statement_refused(void **st)
{
    (void)st;
    cdr_stmt a;
    make_stmt(&a, "13800000001", 2026 * 12 + 9, 2, 0);
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, NULL, &w), CDR_OK);
    assert_int_equal(cdr_store_put(w, &a), CDR_OK);
    assert_int_equal(cdr_store_put(w, &a), CDR_OK);
    assert_int_not_equal(cdr_store_commit(w), CDR_OK);
    assert_true(strlen(cdr_store_writer_message(w)) > 0);
    cdr_store_writer_free(w);
    cdr_stmt_free(&a);
    assert_int_equal(count_entries(), 0); /* no store, no temporary file */
}

/* A writer that is not committed leaves neither PATH nor its temp file;
 * an existing store is replaced only by a complete one. */
static void test_no_half_store(void **st)
{
    (void)st;
    cdr_stmt orig[NS];
    build_store(1000, orig);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    cdr_store_writer *w;
    assert_int_equal(cdr_store_create(path, NULL, NULL, &w), CDR_OK);
    cdr_stmt a;
    make_stmt(&a, "13800000009", 2026 * 12 + 9, 500, 1);
    assert_int_equal(cdr_store_put(w, &a), CDR_OK);
    assert_int_equal(count_entries(), 2); /* the store and the writer's temp file */
    cdr_store_writer_free(w);             /* killed before commit */
    cdr_stmt_free(&a);
    assert_int_equal(count_entries(), 1);
    cdr_store *s;
    char err[256];
    assert_int_equal(cdr_store_open(path, &s, err, sizeof err), CDR_OK);
    check_all(s, orig);
    cdr_store_close(s);
    free_all(orig);
}

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spit(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Every single-byte change is caught by open or verify; a look-up never
 * returns a statement different from the original. */
static void test_every_byte_flipped(void **st)
{
    (void)st;
    cdr_stmt orig[NS];
    small_store = 1;
    build_store(256, orig);
    small_store = 0;
    size_t n;
    unsigned char *good = slurp(path, &n);
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    char bad_path[160], err[256];
    snprintf(bad_path, sizeof bad_path, "%s/bad.store", dir);
    size_t undetected = 0, wrong = 0;
    for (size_t pos = 0; pos < n; pos++) {
        memcpy(bad, good, n);
        bad[pos] ^= (unsigned char)(1u << (pos % 8));
        spit(bad_path, bad, n);
        cdr_store *s;
        cdr_err e = cdr_store_open(bad_path, &s, err, sizeof err);
        if (e != CDR_OK) {
            assert_int_equal(e, CDR_E_PARSE);
            continue;
        }
        for (int i = 0; i < NS; i++) {
            cdr_stmt got;
            e = cdr_store_get(s, nums[i], 2026 * 12 + mons[i] - 1, &got, err, sizeof err);
            if (e == CDR_OK) {
                /* must be the original, byte for byte (compare by CSV) */
                char *t1 = NULL, *t2 = NULL;
                size_t l1 = 0, l2 = 0;
                FILE *f1 = open_memstream(&t1, &l1), *f2 = open_memstream(&t2, &l2);
                cdr_render_json(f1, &orig[i]);
                cdr_render_json(f2, &got);
                fclose(f1);
                fclose(f2);
                if (l1 != l2 || memcmp(t1, t2, l1) != 0)
                    wrong++;
                free(t1);
                free(t2);
            } else {
                assert_true(e == CDR_E_PARSE || e == CDR_E_NOTFOUND);
            }
            cdr_stmt_free(&got);
        }
        if (cdr_store_verify(s, err, sizeof err) == CDR_OK) {
            undetected++;
            print_message("flip at byte %zu of %zu not detected\n", pos, n);
        }
        cdr_store_close(s);
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(undetected, 0);
    free(good);
    free(bad);
    free_all(orig);
}

static void test_every_truncation(void **st)
{
    (void)st;
    cdr_stmt orig[NS];
    small_store = 1;
    build_store(256, orig);
    small_store = 0;
    size_t n;
    unsigned char *good = slurp(path, &n);
    char bad_path[160], err[256];
    snprintf(bad_path, sizeof bad_path, "%s/cut.store", dir);
    for (size_t len = 0; len < n; len++) {
        spit(bad_path, good, len);
        cdr_store *s;
        cdr_err e = cdr_store_open(bad_path, &s, err, sizeof err);
        assert_int_equal(e, CDR_E_PARSE);
        assert_true(strstr(err, "cut.store") != NULL);
    }
    /* and a file that is not a store at all */
    spit(bad_path, (const unsigned char *)"msisdn,month\n", 13);
    cdr_store *s;
    assert_int_equal(cdr_store_open(bad_path, &s, err, sizeof err), CDR_E_PARSE);
    assert_int_equal(cdr_store_open("/nonexistent/x.store", &s, err, sizeof err), CDR_E_IO);
    free(good);
    free_all(orig);
}

static void test_json_string(void **st)
{
    (void)st;
    char *t = NULL;
    size_t l = 0;
    FILE *f = open_memstream(&t, &l);
    cdr_json_string(f, "a\"b\\c\n\x01\x7f\xff\xe4\xb8\xad\xed\xa0\x80" "d\t");
    cdr_json_string(f, NULL);
    fclose(f);
    assert_string_equal(t, "\"a\\\"b\\\\c\\n\\u0001\\u007f\\ufffd\xe4\xb8\xad"
                           "\\ufffd\\ufffd\\ufffdd\\t\"\"\"");
    free(t);
}

static void test_render_formats(void **st)
{
    (void)st;
    cdr_stmt s;
    make_stmt(&s, "13800000001", 2026 * 12 + 9, 12, 1);
    cdr_render_format fm;
    assert_int_equal(cdr_render_format_parse("JSON", &fm), CDR_OK);
    assert_int_equal(fm, CDR_RENDER_JSON);
    assert_int_equal(cdr_render_format_parse("xml", &fm), CDR_E_USAGE);
    for (int k = 0; k < 3; k++) {
        char *t = NULL;
        size_t l = 0;
        FILE *f = open_memstream(&t, &l);
        assert_int_equal(cdr_render_stmt(f, &s, (cdr_render_format)k), CDR_OK);
        fclose(f);
        assert_true(l > 100);
        if (k == CDR_RENDER_TEXT) {
            assert_non_null(strstr(t, "refund      0.246912 yuan"));
            assert_non_null(strstr(t, "tier 2: complaint supervisor"));
            assert_non_null(strstr(t, "verification within"));
        } else if (k == CDR_RENDER_CSV) {
            assert_non_null(strstr(t, "\n\npool,plan,allowance,used,left,unit\n"));
            assert_non_null(strstr(t, "\n\nmsisdn,month,records,overcharge,refund"));
        } else {
            assert_non_null(strstr(t, "\"approver\":\"complaint supervisor\""));
            assert_non_null(strstr(t, "\"categories\":[\"duplicate\",\"wrong_band\"]"));
        }
        free(t);
    }
    /* a stream that fails is an error, not silence */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(cdr_render_text(full, &s), CDR_E_IO);
        fclose(full);
    }
    cdr_stmt_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_parts, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_encoding_edges, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_empty_store, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_duplicate_statement_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_no_half_store, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_every_byte_flipped, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_every_truncation, setup_dir, teardown_dir),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_render_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
