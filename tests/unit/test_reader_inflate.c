/* Unit tests: the two gzip engines of the reader (src/read/inflate_gz.c, the
 * gzip part of src/read/reader.c): ISA-L (default) and zlib (cdr_reader_opts.inflate;
 * the CLI sets it from CDRECON_INFLATE=zlib).
 *
 * Every test runs each input through both engines and checks that they agree
 * with each other and with the plain-text read: every gzip header field
 * (FTEXT, FEXTRA, FNAME, FCOMMENT, FHCRC) alone and together, split across
 * reads of every small size; the header CRC, the trailer CRC32 and ISIZE
 * checked; reserved flags and unknown methods refused; empty members; every
 * cut and every flipped byte of a three-member file give the same status;
 * small output buffers on a larger file; trailing bytes; stdin. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "cdrecon/reader.h"
#include "testbuf.h"

static int t_row(const cdr_row *r, void *u)
{
    buf *b = u;
    bprintf(b, "R %llu@%llu ", (unsigned long long)r->line, (unsigned long long)r->offset);
    bstr(b, r->record_id);
    bstr(b, r->msisdn);
    bstr(b, r->peer);
    bprintf(b, " s%d t%lld by%lld b%lld ", r->service, (long long)r->start,
            (long long)r->bytes, (long long)r->billed);
    bstr(b, r->raw);
    bput(b, "\n", 1);
    return 0;
}

static int t_rej(const cdr_reject *j, void *u)
{
    buf *b = u;
    bprintf(b, "J %llu@%llu %s ", (unsigned long long)j->line, (unsigned long long)j->offset,
            j->reason);
    bstr(b, j->raw);
    bput(b, "\n", 1);
    return 0;
}

static char *write_tmp(const void *data, size_t n, const char *suffix)
{
    char *path = malloc(64);
    snprintf(path, 64, "/tmp/cdrinflXXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    return path;
}

typedef struct result {
    buf t;
    cdr_file_stats st;
} result;

static const char *const engines[2] = {"isal", "zlib"}; /* by cdr_inflate */

/* Read path with the given engine; the transcript has the rows (only when
 * with_rows) and a closing line with the counts and the status. */
static void read_with(int e, const char *path, size_t bs, size_t in_bs, int threads,
                      int with_rows, result *res)
{
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.inflate = (cdr_inflate)e;
    if (bs)
        o.buf_size = bs;
    o.in_buf_size = in_bs;
    o.threads = threads;
    memset(res, 0, sizeof *res);
    bput(&res->t, "", 0);
    buf rows = {0};
    bput(&rows, "", 0);
    cdr_err rc = cdr_read_file(path, 0, &o, t_row, t_rej, &rows, &res->st);
    assert_int_equal(rc, res->st.status);
    assert_int_equal(res->st.rows_read, res->st.rows_accepted + res->st.rows_rejected);
    if (with_rows)
        bput(&res->t, rows.p, rows.n);
    free(rows.p);
    if (res->st.status == CDR_OK)
        bprintf(&res->t, "read %llu acc %llu rej %llu bytes %llu status 0\n",
                (unsigned long long)res->st.rows_read,
                (unsigned long long)res->st.rows_accepted,
                (unsigned long long)res->st.rows_rejected, (unsigned long long)res->st.bytes);
    else
        bprintf(&res->t, "status %d\n", res->st.status);
}

static void free_res(result *r)
{
    free(r->t.p);
}

#define CSV                                                                              \
    "record_id,msisdn,service,peer,start_time,billed,bytes\n"                            \
    "a1,13800138000,data,cmnet,2024-05-01 00:00:00,0.01,100\n"                           \
    "a2,13800138000,voice,10086,2024-05-01 00:01:00,0.38,\n"                             \
    "a3,13800138000,data,\"q,uoted\",2024-05-01 00:02:00,0,7\n"                          \
    "a4,bad,data,cmnet,2024-05-01 00:03:00,0,1\n"                                        \
    "a5,13800138000,sms,10086,2024-05-01 00:04:00,0.1,\n"

/* Raw deflate of data[0..n) at the given level. */
static void deflate_raw(buf *out, const void *data, size_t n, int level)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 64;
    unsigned char *tmp = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = tmp;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    bput(out, tmp, cap - z.avail_out);
    deflateEnd(&z);
    free(tmp);
}

static void put_le32(buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    bput(b, x, 4);
}

enum { F_TEXT = 1, F_HCRC = 2, F_EXTRA = 4, F_NAME = 8, F_COMMENT = 16 };

/* One gzip member written by hand, with the header fields in flags.
 * bad_hcrc: store a wrong header CRC. */
static void gz_member_hand(buf *out, const void *data, size_t n, unsigned flags, int level,
                           int bad_hcrc)
{
    buf h = {0};
    unsigned char fixed[10] = {0x1f, 0x8b, 8, (unsigned char)flags, 0x78, 0x56, 0x34, 0x12, 0, 3};
    bput(&h, fixed, 10);
    if (flags & F_EXTRA) {
        /* XLEN 10: two subfields, "AP" (2 bytes) and "cd" (0 bytes) */
        static const unsigned char x[] = {10, 0, 'A', 'P', 2, 0, 0xff, 0x00, 'c', 'd', 0, 0};
        bput(&h, x, sizeof x);
    }
    if (flags & F_NAME)
        bput(&h, "cdr-2024-05.csv", 16); /* with its NUL, as gzip -N stores it */
    if (flags & F_COMMENT)
        bput(&h, "comment \xe4\xb8\xad", 12);
    if (flags & F_HCRC) {
        uint32_t c = (uint32_t)crc32(0, (const Bytef *)h.p, (uInt)h.n) & 0xffffu;
        if (bad_hcrc)
            c ^= 0x0100;
        unsigned char x[2] = {(unsigned char)c, (unsigned char)(c >> 8)};
        bput(&h, x, 2);
    }
    bput(out, h.p, h.n);
    deflate_raw(out, data, n, level);
    put_le32(out, (uint32_t)crc32(0, data, (uInt)n));
    put_le32(out, (uint32_t)n);
    free(h.p);
}

/* Plain-text reference transcript. */
static void plain_ref(const char *data, size_t n, result *ref)
{
    char *p = write_tmp(data, n, ".csv");
    read_with(0, p, 0, 0, 1, 1, ref);
    unlink(p);
    free(p);
}

static void expect_same(const result *ref, const result *r, const char *what, int e)
{
    if (strcmp((const char *)ref->t.p, (const char *)r->t.p) != 0)
        fail_msg("%s (engine %s):\n%s\n--- expected ---\n%s", what, engines[e], r->t.p,
                 ref->t.p);
}

/* ------------------------------------------------------------------ */

static void test_header_fields(void **st)
{
    (void)st;
    result ref;
    plain_ref(CSV, strlen(CSV), &ref);
    static const size_t in_sizes[] = {0, 1, 2, 3, 5, 11, 17};
    for (unsigned flags = 0; flags < 32; flags++) {
        buf gz = {0};
        /* two members: the fields must be parsed in the second one too */
        gz_member_hand(&gz, CSV, 60, flags, 6, 0);
        gz_member_hand(&gz, CSV + 60, strlen(CSV) - 60, flags ^ F_NAME, 1, 0);
        char *path = write_tmp(gz.p, gz.n, ".csv.gz");
        for (int e = 0; e < 2; e++)
            for (size_t i = 0; i < sizeof in_sizes / sizeof *in_sizes; i++) {
                result r;
                read_with(e, path, 0, in_sizes[i], 1 + (int)(i & 1), 1, &r);
                char what[64];
                snprintf(what, sizeof what, "flags %u in_buf %zu", flags, in_sizes[i]);
                expect_same(&ref, &r, what, e);
                free_res(&r);
            }
        unlink(path);
        free(path);
        free(gz.p);
    }
    free_res(&ref);
}

static void expect_gzip_error(const buf *gz, const char *what)
{
    char *path = write_tmp(gz->p, gz->n, ".csv.gz");
    for (int e = 0; e < 2; e++)
        for (size_t in = 0; in <= 3; in += 3) {
            result r;
            read_with(e, path, 0, in, 2, 0, &r);
            if (r.st.status != CDR_E_GZIP)
                fail_msg("%s (engine %s): status %d, expected CDR_E_GZIP", what, engines[e],
                         r.st.status);
            assert_non_null(strstr(r.st.message, "compressed offset"));
            free_res(&r);
        }
    unlink(path);
    free(path);
}

static void test_header_crc_checked(void **st)
{
    (void)st;
    for (unsigned flags = F_HCRC; flags < 32; flags += 4) {
        buf gz = {0};
        gz_member_hand(&gz, CSV, strlen(CSV), flags | F_HCRC, 6, 1);
        expect_gzip_error(&gz, "bad header CRC");
        free(gz.p);
    }
}

static void test_reserved_flags_and_method(void **st)
{
    (void)st;
    for (unsigned bit = 5; bit < 8; bit++) {
        buf gz = {0};
        gz_member_hand(&gz, CSV, strlen(CSV), 0, 6, 0);
        gz.p[3] = (char)(1u << bit);
        expect_gzip_error(&gz, "reserved flag");
        /* the same in a second member */
        buf two = {0};
        gz_member_hand(&two, CSV, 60, 0, 6, 0);
        size_t at = two.n;
        gz_member_hand(&two, CSV + 60, strlen(CSV) - 60, 0, 6, 0);
        two.p[at + 3] = (char)(1u << bit);
        expect_gzip_error(&two, "reserved flag, second member");
        free(two.p);
        free(gz.p);
    }
    buf gz = {0};
    gz_member_hand(&gz, CSV, strlen(CSV), 0, 6, 0);
    gz.p[2] = 7;
    expect_gzip_error(&gz, "method 7");
    free(gz.p);
}

static void test_trailer_checked(void **st)
{
    (void)st;
    buf gz = {0};
    gz_member_hand(&gz, CSV, strlen(CSV), F_NAME, 6, 0);
    gz_member_hand(&gz, CSV, 0, 0, 6, 0); /* an empty member last */
    size_t first_end = gz.n - 20;     /* the empty member is 20 bytes */
    for (size_t k = first_end - 8; k < gz.n; k++) {
        if (k >= first_end && k < first_end + 12)
            continue; /* the empty member's header (mtime, OS: not checked) */
        for (unsigned bit = 0; bit < 8; bit++) {
            buf c = {0};
            bput(&c, gz.p, gz.n);
            c.p[k] ^= (unsigned char)(1u << bit);
            char what[64];
            snprintf(what, sizeof what, "trailer byte %zu bit %u", k, bit);
            expect_gzip_error(&c, what);
            /* both engines name the same place: the start of the trailer */
            char *path = write_tmp(c.p, c.n, ".csv.gz");
            for (int e = 0; e < 2; e++) {
                result r;
                read_with(e, path, 0, 0, 1, 0, &r);
                if (k < first_end && r.st.error_offset != first_end - 8)
                    fail_msg("%s (engine %s): offset %llu, expected %zu", what, engines[e],
                             (unsigned long long)r.st.error_offset, first_end - 8);
                free_res(&r);
            }
            unlink(path);
            free(path);
            free(c.p);
        }
    }
    free(gz.p);
}

/* A three-member file (the middle one empty): every cut and every flipped
 * byte gives the same status with both engines, and the same rows when the
 * file is accepted. */
static void test_engines_agree_on_damage(void **st)
{
    (void)st;
    size_t n = strlen(CSV);
    buf gz = {0};
    gz_member_hand(&gz, CSV, n / 2, F_NAME, 6, 0);
    gz_member_hand(&gz, CSV, 0, F_HCRC, 6, 0);
    gz_member_hand(&gz, CSV + n / 2, n - n / 2, F_EXTRA | F_COMMENT, 9, 0);
    result ref;
    plain_ref(CSV, n, &ref);
    for (size_t k = 0; k <= gz.n; k++) {
        char *path = write_tmp(gz.p, k, ".csv.gz");
        result r[2];
        for (int e = 0; e < 2; e++)
            read_with(e, path, 0, 1 + k % 5, 2, 0, &r[e]);
        if (r[0].st.status != r[1].st.status)
            fail_msg("cut %zu: isal %d '%s', zlib %d '%s'", k, r[0].st.status,
                     r[0].st.message, r[1].st.status, r[1].st.message);
        if (k < gz.n && r[0].st.status == CDR_OK) {
            /* only a cut exactly at a member end is a whole file */
            assert_true(strstr((char *)r[0].t.p, "status 0") != NULL);
        }
        if (k == gz.n) {
            assert_int_equal(r[0].st.status, CDR_OK);
            free_res(&r[0]);
            read_with(0, path, 0, 0, 2, 1, &r[0]);
            expect_same(&ref, &r[0], "whole file", 0);
        }
        free_res(&r[0]);
        free_res(&r[1]);
        unlink(path);
        free(path);
    }
    for (size_t k = 0; k < gz.n; k++) {
        buf c = {0};
        bput(&c, gz.p, gz.n);
        c.p[k] ^= 0x55;
        char *path = write_tmp(c.p, c.n, ".csv.gz");
        result r[2];
        for (int e = 0; e < 2; e++)
            read_with(e, path, 0, 0, 2, 0, &r[e]);
        /* Both accept or both refuse. A refusal is CDR_E_GZIP, or CDR_E_HEADER
         * when the damage made text that fails as a header before the fault
         * is seen: ISA-L accepts some damaged Huffman tables that zlib
         * refuses at once (the CRC32 then fails at the end of the member). */
        if ((r[0].st.status == CDR_OK) != (r[1].st.status == CDR_OK))
            fail_msg("flip %zu: isal %d '%s', zlib %d '%s'", k, r[0].st.status,
                     r[0].st.message, r[1].st.status, r[1].st.message);
        for (int e = 0; e < 2; e++)
            if (r[e].st.status != CDR_OK && r[e].st.status != CDR_E_GZIP &&
                r[e].st.status != CDR_E_HEADER)
                fail_msg("flip %zu (engine %s): %d '%s'", k, engines[e], r[e].st.status,
                         r[e].st.message);
        if (r[0].st.status == CDR_OK) {
            /* accepted: then with the same rows as the undamaged file */
            for (int e = 0; e < 2; e++) {
                free_res(&r[e]);
                read_with(e, path, 0, 0, 2, 1, &r[e]);
                expect_same(&ref, &r[e], "harmless flip", e);
            }
        }
        free_res(&r[0]);
        free_res(&r[1]);
        unlink(path);
        free(path);
        free(c.p);
    }
    free_res(&ref);
    free(gz.p);
}

/* After the last member: nothing more may follow, whatever it is. */
static void test_trailing_bytes(void **st)
{
    (void)st;
    static const struct {
        const char *b;
        size_t n;
        const char *words;
    } tails[] = {
        {"\0", 1, "trailing garbage"},
        {"\0\0\0\0", 4, "trailing garbage"},
        {"x", 1, "trailing garbage"},
        {"\x1f", 1, "truncated"},
        {"\x1f\x8b", 2, "truncated"},
        {"\x1f\x8b\x08", 3, "truncated"},
        {"\x1f\x8b\x08\x00\x00\x00", 6, "truncated"},
        {"\x1f\x00", 2, "trailing garbage"},
        {"\x8b\x1f", 2, "trailing garbage"},
        {"\x1f\x8b\x09\x00", 4, "corrupt"},
    };
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        buf gz = {0};
        gz_member_hand(&gz, CSV, strlen(CSV), 0, 6, 0);
        bput(&gz, tails[i].b, tails[i].n);
        char *path = write_tmp(gz.p, gz.n, ".csv.gz");
        for (int e = 0; e < 2; e++)
            for (size_t in = 0; in <= 1; in++) {
                result r;
                read_with(e, path, 0, in, 1, 0, &r);
                assert_int_equal(r.st.status, CDR_E_GZIP);
                if (!strstr(r.st.message, tails[i].words))
                    fail_msg("tail %zu (engine %s): '%s', expected '%s'", i, engines[e],
                             r.st.message, tails[i].words);
                free_res(&r);
            }
        unlink(path);
        free(path);
        free(gz.p);
    }
}

/* A larger file read through small output buffers (the decoder stops with
 * output pending over and over, also when all input is already read). */
static void test_small_output_buffers(void **st)
{
    (void)st;
    buf csv = {0};
    bprintf(&csv, "record_id,msisdn,service,peer,start_time,billed,bytes\n");
    uint32_t x = 12345;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        bprintf(&csv, "r%d,138%08u,data,cmnet,2024-05-%02u 0%u:%02u:00,0.%02u,%u\n", i,
                (x >> 4) % 100000000u, 1 + (x >> 8) % 28, (x >> 3) % 10, (x >> 12) % 60,
                (x >> 16) % 100, x % 100000u);
    }
    result ref;
    plain_ref((char *)csv.p, csv.n, &ref);
    for (int level = 1; level <= 9; level += 8) {
        buf gz = {0};
        gz_member_hand(&gz, csv.p, csv.n / 3, 0, level, 0);
        gz_member_hand(&gz, csv.p + csv.n / 3, csv.n - csv.n / 3, F_NAME, level, 0);
        char *path = write_tmp(gz.p, gz.n, ".csv.gz");
        static const size_t outs[] = {1, 7, 4096, 65536 + 13};
        static const size_t ins[] = {0, 1, 4096, 1 << 20};
        for (int e = 0; e < 2; e++)
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++) {
                    if (outs[i] == 1 && ins[j] == 1)
                        continue; /* slow, and covered by the small cases */
                    result r;
                    /* threads only with the larger buffers (a chunk of 1 byte
                     * per hand-over is slow, and adds nothing) */
                    read_with(e, path, outs[i], ins[j], outs[i] < 4096 ? 1 : 1 + (int)(j & 1),
                              1, &r);
                    char what[64];
                    snprintf(what, sizeof what, "level %d out %zu in %zu", level, outs[i],
                             ins[j]);
                    expect_same(&ref, &r, what, e);
                    free_res(&r);
                }
        unlink(path);
        free(path);
        free(gz.p);
    }
    free_res(&ref);
    free(csv.p);
}

/* stdin ("-"): multi-member gzip, detected by its magic bytes. */
static void test_stdin(void **st)
{
    (void)st;
    buf gz = {0};
    gz_member_hand(&gz, CSV, 100, F_NAME, 6, 0);
    gz_member_hand(&gz, CSV + 100, strlen(CSV) - 100, F_EXTRA, 6, 0);
    char *path = write_tmp(gz.p, gz.n, ".bin");
    result ref;
    plain_ref(CSV, strlen(CSV), &ref);
    int saved = dup(0);
    assert_true(saved >= 0);
    for (int e = 0; e < 2; e++) {
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, 0), 0);
        close(fd);
        result r;
        read_with(e, "-", 0, 0, 2, 1, &r);
        expect_same(&ref, &r, "stdin", e);
        assert_int_equal(r.st.gzip, 1);
        free_res(&r);
    }
    assert_int_equal(dup2(saved, 0), 0);
    close(saved);
    free_res(&ref);
    unlink(path);
    free(path);
    free(gz.p);
}

/* The engine switch (CDRECON_INFLATE, passed on by the CLI): "zlib" names
 * zlib, anything else (unset, empty, another case) ISA-L; the choice set
 * with cdr_reader_set_inflate reaches every cdr_reader_opts_init, and both
 * read. */
static void test_engine_names(void **st)
{
    (void)st;
    buf gz = {0};
    gz_member_hand(&gz, CSV, strlen(CSV), 0, 6, 0);
    char *path = write_tmp(gz.p, gz.n, ".csv.gz");
    result ref;
    plain_ref(CSV, strlen(CSV), &ref);
    static const char *const vals[] = {NULL, "", "isal", "ZLIB", "other", "zlib"};
    for (size_t i = 0; i < 6; i++) {
        cdr_inflate want = i == 5 ? CDR_INFLATE_ZLIB : CDR_INFLATE_ISAL;
        assert_int_equal(cdr_inflate_from_name(vals[i]), want);
        assert_string_equal(cdr_inflate_name(want), i == 5 ? "zlib" : "isa-l");
        cdr_reader_set_inflate(cdr_inflate_from_name(vals[i]));
        cdr_reader_opts o;
        cdr_reader_opts_init(&o);
        assert_int_equal(o.inflate, want);
        result r;
        memset(&r, 0, sizeof r);
        bput(&r.t, "", 0);
        assert_int_equal(cdr_read_file(path, 0, &o, t_row, t_rej, &r.t, &r.st), CDR_OK);
        bprintf(&r.t, "read %llu acc %llu rej %llu bytes %llu status 0\n",
                (unsigned long long)r.st.rows_read, (unsigned long long)r.st.rows_accepted,
                (unsigned long long)r.st.rows_rejected, (unsigned long long)r.st.bytes);
        assert_int_equal(r.st.gzip, 1);
        expect_same(&ref, &r, vals[i] ? vals[i] : "(unset)", (int)want);
        free_res(&r);
    }
    cdr_reader_set_inflate(CDR_INFLATE_ISAL);
    free_res(&ref);
    unlink(path);
    free(path);
    free(gz.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_header_crc_checked),
        cmocka_unit_test(test_reserved_flags_and_method),
        cmocka_unit_test(test_trailer_checked),
        cmocka_unit_test(test_engines_agree_on_damage),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_small_output_buffers),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_engine_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
