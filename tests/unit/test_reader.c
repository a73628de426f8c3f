/* Unit tests: the streaming CDR reader (src/read/reader.c).
 *
 * Every input is turned into a transcript (rows, rejects, skipped lines,
 * counts) and the transcript must be identical whatever the buffer size
 * (every size from 1 byte up), the thread count, the gzip member
 * boundaries, and whether the fast path or libcsv splits the lines. Some
 * inputs are read through an input profile (other separators, no quoting,
 * no header, skipped records): the same invariances hold on that path, and
 * profiles/contract.profile gives the transcript of no profile at all. */
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

#include "cdrecon/profile.h"
#include "cdrecon/reader.h"
#include "testbuf.h"

#define HDR "record_id,msisdn,service,direction,peer,start_time,duration_s,bytes,sms_chars," \
            "sms_ref,sms_part,sms_parts,call_id,partial_seq,billed,extra1\n"

/* ------------------------------------------------------------------ */
static int t_row(const cdr_row *r, void *u)
{
    buf *b = u;
    bprintf(b, "R %llu@%llu ", (unsigned long long)r->line, (unsigned long long)r->offset);
    bstr(b, r->record_id);
    bstr(b, r->msisdn);
    bstr(b, r->peer);
    bstr(b, r->call_id);
    bstr(b, r->sms_ref);
    bprintf(b, " s%d d%d t%lld dur%lld by%lld ch%lld p%d/%d ps%lld b%lld ", r->service,
            r->direction, (long long)r->start, (long long)r->duration_s, (long long)r->bytes,
            (long long)r->sms_chars, r->sms_part, r->sms_parts, (long long)r->partial_seq,
            (long long)r->billed);
    for (uint32_t i = 0; i < r->n_extra; i++) {
        bstr(b, r->extra_names[i]);
        bstr(b, r->extra[i]);
    }
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
    bprintf(b, " %llu\n", (unsigned long long)j->raw_len);
    return 0;
}

/* lines an input profile skips */
static int t_skip(const cdr_reject *j, void *u)
{
    buf *b = u;
    bprintf(b, "S %llu@%llu %s ", (unsigned long long)j->line, (unsigned long long)j->offset,
            j->reason);
    bstr(b, j->raw);
    bput(b, "\n", 1);
    return 0;
}

static char *write_tmp(const void *data, size_t n, const char *suffix)
{
    char *path = malloc(64);
    snprintf(path, 64, "/tmp/cdrtestXXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    return path;
}

/* Gzip one member of data[0..n) onto out. */
static void gz_member(buf *out, const char *data, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
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

typedef struct result {
    buf t;
    cdr_file_stats st;
} result;

/* Read a file and build its transcript (with the counts line). */
static void read_path(const char *path, const cdr_reader_opts *o, result *res)
{
    memset(res, 0, sizeof *res);
    bput(&res->t, "", 0);
    cdr_err e = cdr_read_file(path, 0, o, t_row, t_rej, &res->t, &res->st);
    assert_int_equal(e, res->st.status);
    bprintf(&res->t, "read %llu acc %llu rej %llu skip %llu blank %llu filt %llu bytes %llu "
            "status %d %s\n",
            (unsigned long long)res->st.rows_read, (unsigned long long)res->st.rows_accepted,
            (unsigned long long)res->st.rows_rejected, (unsigned long long)res->st.rows_skipped,
            (unsigned long long)res->st.blank_lines, (unsigned long long)res->st.rows_filtered,
            (unsigned long long)res->st.bytes, res->st.status, res->st.message);
    /* The invariant, for every file. */
    assert_int_equal(res->st.rows_read,
                     res->st.rows_accepted + res->st.rows_rejected + res->st.rows_skipped);
    if (!o || !o->profile)
        assert_int_equal(res->st.rows_skipped, 0);
}

static void read_mem(const char *data, size_t n, const cdr_reader_opts *o, result *res)
{
    char *path = write_tmp(data, n, ".csv");
    read_path(path, o, res);
    unlink(path);
    free(path);
}

static void opts(cdr_reader_opts *o, size_t bs, int threads, int nofast)
{
    cdr_reader_opts_init(o);
    o->buf_size = bs;
    o->threads = threads;
    o->no_fast_path = nofast;
}

/* Profiles of the cases read through one (parsed once, case_profile()). */
#define PROF_PIPE                                                                            \
    "separator = pipe\nquote = none\nheader = no\ncolumns = 8\nrecord_type = $1\n"           \
    "type 00 = skip\ntype 99 = skip\ntype 10 = voice mo\ntype 11 = voice mt\ntype 30 = data\n" \
    "record_id = $2\nmsisdn = $3\npeer = $4\nstart_time = $5\n"                               \
    "start_time.format = %Y%m%d%H%M%S\nduration_s = $6\nduration_s.unit = ms\nbytes = $6\n"   \
    "billed = $7\nbilled.unit = fen\nnumber.trunk_prefix = 0\n"
#define PROF_3GPP                                                                            \
    "record_type = recordType\ntype 0 = voice mo\ntype 6 = sms mo\ntype 85 = data mo\n"       \
    "type 84 = skip\nrecord_id = id\nmsisdn = servedMSISDN\nimsi = servedIMSI\n"              \
    "number.imsi_prefix = 460\npeer = otherParty | apn\nstart_time = recordOpeningTime\n"      \
    "start_time.format = %y%m%d%H%M%S%z\nlocal_utc_offset = +08:00\nduration_s = duration\n"  \
    "bytes = up + down\nsms_chars = len\nbilled = charge\nskip_prefix = \"#\"\n"
#define PROF_SEMI                                                                            \
    "separator = ;\nrecord_id = ID\nmsisdn = A\npeer = B\nservice = SVC\ndirection = DIR?\n"   \
    "start_time = D & T\nstart_time.format = %Y%m%d %H:%M:%S\nstart_time.utc_offset = TZ\n"    \
    "local_utc_offset = +08:00\nduration_s = S1 + S2\nbytes = S1\nbilled = F\n"              \
    "billed.unit = jiao\n"
#define PROF_TAB                                                                             \
    "separator = tab\nrecord_id = $1\nmsisdn = $2\nservice = $3\npeer = $4\nstart_time = $5\n" \
    "start_time.format = epoch_ms\nlocal_utc_offset = +08:00\nbytes = $6\nbytes.unit = KB\n"   \
    "duration_s = $6\nbilled = $7\nheader = no\ncolumns = 7\n"

/* The inputs every invariance test runs on. */
static const struct {
    const char *name;
    const char *data;
    const char *profile; /* text, or NULL: the contract's layout */
} cases[] = {
    {"mixed",
     HDR "r1,13800138000,voice,mo,13900139000,2024-01-02 10:00:00,61,,,,,,,,0.38,x\n"
         "r2,+8613800138000,sms,MT,10086,2024-01-02 10:00:00,,,145,ref1,1,3,,,0.10,\"q,\"\"uoted\"\"\"\n"
         "\r\n"
         "r3,13800138000,data,,cmnet,2024-01-02T10:00:00,,2048,,,,,c1,1,0.000001,\"multi\nline\"\n"
         "\n"
         "r4,8613800138000,vas,,SP01,2024-01-02 10:00:00,,,,,,,,,5,\xc3\xa9t\xc3\xa9\n"
         "r5,13800138000,voice,mo,13900139000,2024-01-02 10:00:00,61,,,,,,,,-0.38,x\n"
         "r6,a,b\n"
         "r7,13800138000,voice,mo,13900139000,2024-01-02 10:00:00,61,,,,,,,,0.38,\"bad\"x\n"
         "r8,13800138000,voice,mo,13900139000,2024-01-02 10:00:00,61,,,,,,,,0.38,ok", NULL},
    {"crlf_bom",
     "\xef\xbb\xbf" "RECORD_ID,Msisdn,Service,Peer,Start_Time,Duration_S,Billed\r\n"
     "a,13800138000,voice,10086,2024-05-01 00:00:00,0,0\r\n"
     "b,13800138000,voice,10086,2024-05-01 00:00:00,0,0,\r\n"
     "\"c\",13800138000,voice,10086,\"2024-05-01 00:00:00\",0,\"0\r\n1\"\r\n"
     "d,13800138000,voice,10086,2024-05-01 00:00:00,0,0\r\r\n"
     "e,13800138000,voice,10086,2024-05-01 00:00:00,0,0\r\n", NULL},
    {"quotes_eof",
     "record_id,msisdn,service,peer,start_time,billed,bytes\n"
     "x1,13800138000,data,,2024-05-01 00:00:00,0,\"1\n2\n3\"\n"
     "x2,13800138000,data,,2024-05-01 00:00:00,0,10\n"
     "x3,13800138000,data,\"\",2024-05-01 00:00:00,0,\"10\"\n"
     "x4,13800138000,data,\"a\"\"b\",2024-05-01 00:00:00,0,\"unterminated\n"
     "x5,1,data,,2024-05-01 00:00:00,0,10\n", NULL},
    {"nul_utf8",
     "record_id,msisdn,service,peer,start_time,billed,bytes\n"
     "n1,13800138000,data,ap\0n,2024-05-01 00:00:00,0,10\n"
     "n2,13800138000,data,ap\xffn,2024-05-01 00:00:00,0,10\n"
     "n3,13800138000,data,\"ap\xed\xa0\x80\",2024-05-01 00:00:00,0,10\n"
     "n4,13800138000,data,\xe4\xb8\xad,2024-05-01 00:00:00,0,10\n"
     "n5,13800138000,data,,2024-05-01 00:00:00,0,10", NULL},
    {"pipe_headerless",
     "\xef\xbb\xbf" "00|header record|2024-05\r\n"
     "10|p1|013800138000|013900139000|20240501080000|1|38|c\"1\r\n"
     "11|p2|13800138000|10086|20240501080000|1001|12.5|c2\n"
     "\n"
     "30|p3|13800138000|cm,net|20240501080000|2048|0|c3\n"
     "30|p4|13800138000|cmnet|20240501080000||0|c4\n"
     "10|p5|13800138000|10086|2024050108000|1|38|c5\n"
     "55|p6|13800138000|10086|20240501080000|1|38|c6\n"
     "10|p7|13800138000|10086|20240501080000|1|38|c7|extra\n"
     "10|p8|13800138000|10\r086|20240501080000|1|38|c8\n"
     "10|p9|13800138000|10086|20240501080000|1|0.001|c9\n"
     "99|9", PROF_PIPE},
    {"3gpp_quoted",
     "# export of 2024-05-01\n"
     "recordType,id,servedMSISDN,servedIMSI,otherParty,apn,recordOpeningTime,duration,up,down,"
     "len,charge,cell\n"
     "0,g1,8613800138000,460001234567890,10086,,240501080000+0800,61,,,,0.38,\"a,\"\"b\"\"\"\n"
     "85,g2,13800138000,,,cmnet,240430230000+0000,,100,24,,0.01,\"multi\r\nline\"\n"
     "84,sgw\n"
     "6,g3,,460001234567890,10086,,240501080000+0800,,,,70,0.10,y\n"
     "85,g4,13800138000,,,\"cm\nnet\",240501080000+0800,,1,2,,0.01,z\n"
     "0,g5,13800138000,,10086,,240501080000+0800,61,,,,0.38,\xff\n"
     "\"0\",g6,13800138000,,10086,,240501080000+0800,61,,,,0.38,\xe4\xb8\xad\n"
     "# trailer: 6 records\n"
     "6,g7,13800138000,,10086,,240501080000+0800,,,,70,0.10,\"unterminated\n", PROF_3GPP},
    {"semicolon_pair",
     "ID;A;B;SVC;D;T;TZ;S1;S2;F;extra\n"
     "s1;13800138000;10086;voice;20240501;08:00:00;+08:00;1;2;3.8;\"a;b\"\n"
     "s2;13800138000;10086;VOICE;20240501;08:00:00;+0000;1;2;3.8;\"\"\n"
     "s3;13800138000;cmnet;data;20240501;08:00:00;Z;4096;;0;x\ty\n"
     "s4;13800138000;10086;voice;20240501;08:00:00;+8;1;2;3.8;\n"
     "\"s;5\";13800138000;10086;voice;20240501;;+08:00;1;2;3.8;\n"
     "s6;13800138000;10086;voice;20240501;08:00:00;+08:00;1;;3.8;\n", PROF_SEMI},
    {"tab_epoch",
     "t1\t13800138000\tdata\tcmnet\t1714521600123\t3\t0.10\n"
     "t2\t13800138000\tvoice\t10086\t1714521600999\t7\t0\n"
     "\"t\t3\"\t13800138000\tvoice\t10086\t1714521600000\t7\t0\n"
     "t4\t13800138000\tdata\tcmnet\t-1\t3\t0.10\n"
     "t5\t13800138000\tdata\tcmnet\t1714521600000\t1000000000000000\t0.10\n", PROF_TAB},
};
#define NCASES (sizeof cases / sizeof *cases)

static size_t case_len(size_t i)
{
    if (strcmp(cases[i].name, "nul_utf8") == 0) {
        /* contains a NUL: the length is that of the literal */
        static const char lit[] = "record_id,msisdn,service,peer,start_time,billed,bytes\n"
                                  "n1,13800138000,data,ap\0n,2024-05-01 00:00:00,0,10\n"
                                  "n2,13800138000,data,ap\xffn,2024-05-01 00:00:00,0,10\n"
                                  "n3,13800138000,data,\"ap\xed\xa0\x80\",2024-05-01 00:00:00,0,10\n"
                                  "n4,13800138000,data,\xe4\xb8\xad,2024-05-01 00:00:00,0,10\n"
                                  "n5,13800138000,data,,2024-05-01 00:00:00,0,10";
        return sizeof lit - 1;
    }
    return strlen(cases[i].data);
}

static cdr_profile *case_profs[NCASES];
static cdr_profile *contract_prof;

/* profiles/contract.profile (the tests run from the source tree's top). */
static const cdr_profile *contract_profile(void)
{
    char err[512];
    if (!contract_prof &&
        cdr_profile_load("profiles/contract.profile", &contract_prof, err, sizeof err) != CDR_OK)
        fail_msg("%s", err);
    return contract_prof;
}

/* The case's profile (NULL: the contract's layout), parsed once. */
static const cdr_profile *case_profile(size_t i)
{
    if (!cases[i].profile)
        return NULL;
    if (!case_profs[i]) {
        char err[512];
        if (cdr_profile_parse(cases[i].profile, strlen(cases[i].profile), cases[i].name,
                              &case_profs[i], err, sizeof err) != CDR_OK)
            fail_msg("%s", err);
    }
    return case_profs[i];
}

/* opts() for case i: its profile, and skipped lines into the transcript. */
static void case_opts(size_t i, cdr_reader_opts *o, size_t bs, int threads, int nofast)
{
    opts(o, bs, threads, nofast);
    o->profile = case_profile(i);
    o->on_skip = t_skip;
}

static void reference(size_t i, result *ref)
{
    cdr_reader_opts o;
    case_opts(i, &o, 4u << 20, 1, 0);
    read_mem(cases[i].data, case_len(i), &o, ref);
}

static void free_res(result *r)
{
    free(r->t.p);
}

/* ------------------------------------------------------------------ */

static void test_every_buffer_size(void **st)
{
    (void)st;
    for (size_t i = 0; i < NCASES; i++) {
        result ref;
        reference(i, &ref);
        size_t n = case_len(i);
        char *path = write_tmp(cases[i].data, n, ".csv");
        for (size_t bs = 1; bs <= n + 2; bs++)
            for (int th = 1; th <= 2; th++) {
                if (th == 2 && bs > 64 && bs % 7)
                    continue; /* threads: every small size, a sample of larger ones */
                cdr_reader_opts o;
                case_opts(i, &o, bs, th, 0);
                if (bs % 3 == 0)
                    o.in_buf_size = bs; /* small reads of the stored file too */
                result r;
                read_path(path, &o, &r);
                if (strcmp(r.t.p, ref.t.p) != 0)
                    fail_msg("case %s bs %zu threads %d:\n%s\n--- expected ---\n%s",
                             cases[i].name, bs, th, r.t.p, ref.t.p);
                free_res(&r);
            }
        unlink(path);
        free(path);
        free_res(&ref);
    }
}

static void test_gzip_member_boundaries(void **st)
{
    (void)st;
    for (size_t i = 0; i < NCASES; i++) {
        result ref;
        reference(i, &ref);
        size_t n = case_len(i);
        const char *d = cases[i].data;
        for (size_t cut = 0; cut <= n; cut++) {
            buf gz = {0};
            gz_member(&gz, d, cut);
            size_t cut2 = cut + (n - cut) / 2;
            gz_member(&gz, d + cut, cut2 - cut);
            gz_member(&gz, d + cut2, n - cut2);
            char *path = write_tmp(gz.p, gz.n, ".csv.gz");
            cdr_reader_opts o;
            case_opts(i, &o, cut % 5 == 0 ? 4096 : 1 + cut % 13, 1 + (int)(cut & 1), 0);
            o.in_buf_size = 1 + cut % 17;
            result r;
            read_path(path, &o, &r);
            assert_int_equal(r.st.gzip, 1);
            if (strcmp(r.t.p, ref.t.p) != 0)
                fail_msg("case %s cut %zu:\n%s\n--- expected ---\n%s", cases[i].name, cut, r.t.p,
                         ref.t.p);
            free_res(&r);
            unlink(path);
            free(path);
            free(gz.p);
        }
        free_res(&ref);
    }
}

/* Differential: the fast path and libcsv give the same rows and rejects. */
static void test_fast_path_equals_libcsv(void **st)
{
    (void)st;
    for (size_t i = 0; i < NCASES; i++) {
        result a, b;
        cdr_reader_opts o;
        case_opts(i, &o, 7, 1, 0);
        read_mem(cases[i].data, case_len(i), &o, &a);
        case_opts(i, &o, 7, 1, 1);
        read_mem(cases[i].data, case_len(i), &o, &b);
        assert_string_equal(a.t.p, b.t.p);
        free_res(&a);
        free_res(&b);
    }
    /* Random lines from a nasty alphabet, under a valid header. */
    static const char *const atoms[] = {
        "13800138000", "voice", "sms", "data", "vas", "2024-05-01 00:00:00", "0.10", "7", ",",
        ",", ",", ",", "\"", "\"\"", "\r", "\n", " ", "\t", "\xc3\xa9", "\xff", "x", "",
        "-1", "+8613800138000", "\r\n", "\0"};
    unsigned seed = 12345;
    for (int round = 0; round < 1500; round++) {
        buf in = {0};
        const char *h = "record_id,msisdn,service,peer,start_time,billed,duration_s,bytes,sms_chars\n";
        bput(&in, h, strlen(h));
        for (int k = 0; k < 40; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *a = atoms[(seed >> 16) % (sizeof atoms / sizeof *atoms)];
            size_t al = strcmp(a, "") == 0 && ((seed >> 16) % (sizeof atoms / sizeof *atoms)) ==
                                                  sizeof atoms / sizeof *atoms - 1
                            ? 1
                            : strlen(a);
            bput(&in, a, al);
            if (k % 9 == 8)
                {
                const char *ok = "r,13800138000,voice,10086,2024-05-01 00:00:00,0.1,5,,\n";
                bput(&in, ok, strlen(ok));
            }
        }
        result a, b, c;
        cdr_reader_opts o;
        opts(&o, 1 + round % 11, 1 + round % 2, 0);
        read_mem(in.p, in.n, &o, &a);
        opts(&o, 4096, 1, 1);
        read_mem(in.p, in.n, &o, &b);
        if (strcmp(a.t.p, b.t.p) != 0)
            fail_msg("round %d:\nfast:\n%s\nlibcsv:\n%s", round, a.t.p, b.t.p);
        /* the contract's layout as a profile: the same transcript */
        opts(&o, 1 + round % 13, 1, round % 3 == 0);
        o.profile = contract_profile();
        read_mem(in.p, in.n, &o, &c);
        if (strcmp(a.t.p, c.t.p) != 0)
            fail_msg("round %d:\nno profile:\n%s\ncontract.profile:\n%s", round, a.t.p, c.t.p);
        free_res(&a);
        free_res(&b);
        free_res(&c);
        free(in.p);
    }
    /* The same through a profile with another separator. */
    static const char *const atoms2[] = {
        "13800138000", "voice", "sms", "data", "20240501", "08:00:00", "+08:00", "3.8", "7",
        ";", ";", ";", ";", ",", "\"", "\"\"", "\r", "\n", " ", "\t", "\xc3\xa9", "\xff", "x",
        "", "-1", "+8613800138000", "\r\n", "\0"};
    size_t na2 = sizeof atoms2 / sizeof *atoms2;
    size_t semi = 0;
    while (strcmp(cases[semi].name, "semicolon_pair") != 0)
        semi++;
    for (int round = 0; round < 1000; round++) {
        buf in = {0};
        const char *h = "ID;A;B;SVC;D;T;TZ;S1;S2;F\n";
        bput(&in, h, strlen(h));
        for (int k = 0; k < 40; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t ai = (seed >> 16) % na2;
            bput(&in, atoms2[ai], ai == na2 - 1 ? 1 : strlen(atoms2[ai]));
            if (k % 9 == 8) {
                const char *ok = "r;13800138000;10086;voice;20240501;08:00:00;+08:00;1;2;3.8\n";
                bput(&in, ok, strlen(ok));
            }
        }
        result a, b;
        cdr_reader_opts o;
        case_opts(semi, &o, 1 + round % 11, 1 + round % 2, 0);
        read_mem(in.p, in.n, &o, &a);
        case_opts(semi, &o, 4096, 1, 1);
        read_mem(in.p, in.n, &o, &b);
        if (strcmp(a.t.p, b.t.p) != 0)
            fail_msg("profile round %d:\nfast:\n%s\nlibcsv:\n%s", round, a.t.p, b.t.p);
        free_res(&a);
        free_res(&b);
        free(in.p);
    }
}

/* profiles/contract.profile on every contract-layout case: the transcript
 * of no profile, at several buffer sizes. */
static void test_contract_profile_equals_none(void **st)
{
    (void)st;
    for (size_t i = 0; i < NCASES; i++) {
        if (cases[i].profile)
            continue;
        result ref;
        reference(i, &ref);
        for (size_t bs = 1; bs < 40; bs += 3) {
            cdr_reader_opts o;
            opts(&o, bs, 1 + (int)(bs & 1), bs % 2 == 0);
            o.profile = contract_profile();
            result r;
            read_mem(cases[i].data, case_len(i), &o, &r);
            if (strcmp(r.t.p, ref.t.p) != 0)
                fail_msg("case %s bs %zu:\n%s\n--- without a profile ---\n%s", cases[i].name,
                         bs, r.t.p, ref.t.p);
            free_res(&r);
        }
        free_res(&ref);
    }
}

/* ------------------------------------------------------------------ */
/* Reasons: one row each, the reason must say what and where.          */

static void expect_reject(const char *row, const char *want)
{
    buf in = {0};
    bput(&in, HDR, strlen(HDR));
    bput(&in, row, strlen(row));
    const char *ok = "\nok,13800138000,data,,,2024-01-01 00:00:00,,5,,,,,,,0,\n";
    bput(&in, ok, strlen(ok));
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.max_field = 80;
    o.max_row = 300;
    result r;
    read_mem(in.p, in.n, &o, &r);
    if (r.st.rows_rejected != 1 || r.st.rows_accepted != 1 || !strstr(r.t.p, want))
        fail_msg("row %s: want one reject '%s' and one accepted row, got:\n%s", row, want,
                 r.t.p);
    assert_non_null(strstr(r.t.p, "J 2@"));
    free_res(&r);
    free(in.p);
}

#define V "r,13800138000,voice,mo,13900139000,2024-01-02 10:00:00,61,,,,,,,,0.38,"
static void test_reject_reasons(void **st)
{
    (void)st;
    expect_reject("r,a,b", "3 fields, header has 16");
    expect_reject(V ",", "17 fields, header has 16");
    expect_reject(",13800138000,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.38,",
                  "missing record_id ''");
    expect_reject("r,138-0013,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.38,",
                  "bad msisdn '138-0013'");
    expect_reject("r,,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.38,", "missing msisdn ''");
    expect_reject("r,138,fax,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.38,", "bad service 'fax'");
    expect_reject("r,138,voice,up,139,2024-01-02 10:00:00,61,,,,,,,,0.38,",
                  "bad direction 'up'");
    expect_reject("r,138,voice,mo,139,2024-13-01 00:00:00,61,,,,,,,,0.38,",
                  "bad start_time '2024-13-01 00:00:00'");
    expect_reject("r,138,voice,mo,139,,61,,,,,,,,0.38,", "missing start_time ''");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.3.8,",
                  "bad billed '0.3.8'");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,-0.38,",
                  "negative billed '-0.38'");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,0.0000001,",
                  "billed out of range '0.0000001'");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,61,,,,,,,,,", "missing billed ''");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,,,,,,,,,0.38,",
                  "missing duration_s '' (required for voice)");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,-5,,,,,,,,0.38,",
                  "bad duration_s '-5'");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,1000000000000001,,,,,,,,0.38,",
                  "duration_s out of range '1000000000000001'");
    expect_reject("r,138,voice,mo,,2024-01-02 10:00:00,5,,,,,,,,0.38,",
                  "missing peer '' (required for voice)");
    expect_reject("r,138,voice,mo,1x9,2024-01-02 10:00:00,5,,,,,,,,0.38,", "bad peer '1x9'");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,,,,,,,0.38,",
                  "missing sms_chars '' (required for sms)");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,1.5,,,,,,0.38,",
                  "bad sms_chars '1.5'");
    expect_reject("r,138,data,mo,,2024-01-02 10:00:00,,,,,,,,,0.38,",
                  "missing bytes '' (required for data)");
    expect_reject("r,138,data,mo,,2024-01-02 10:00:00,,+5,,,,,,,0.38,", "bad bytes '+5'");
    expect_reject("r,138,vas,mo,,2024-01-02 10:00:00,,,,,,,,,0.38,", "missing peer ''");
    expect_reject("r,138,vas,mo,\"S\tP\",2024-01-02 10:00:00,,,,,,,,,0.38,",
                  "bad peer 'S\\x09P' (control character)");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,5,ref,2,,,,0.38,",
                  "missing sms_parts ''");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,5,ref,,2,,,0.38,",
                  "missing sms_part ''");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,5,ref,3,2,,,0.38,",
                  "bad sms_part '3' (greater than sms_parts)");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,5,ref,0,2,,,0.38,",
                  "bad sms_part '0'");
    expect_reject("r,138,sms,mo,139,2024-01-02 10:00:00,,,5,ref,1,0,,,0.38,",
                  "bad sms_parts '0'");
    expect_reject("r,138,voice,mo,139,2024-01-02 10:00:00,5,,,,,,c,x,0.38,",
                  "bad partial_seq 'x'");
    expect_reject(V "\"a\"b", "broken quoting in column extra1");
    expect_reject(V "a\"b", "broken quoting in column extra1");
    expect_reject(V "a\rb", "carriage return outside quotes in column extra1");
    expect_reject(V "\"\"\rb", "carriage return outside quotes in column extra1");
    expect_reject(V "\xc3", "invalid UTF-8 in column extra1 at byte 1 of the field: '\\xC3'");
    expect_reject(V "ab\xc0\xaf", "invalid UTF-8 in column extra1 at byte 3");
    expect_reject(V "01234567890123456789012345678901234567890123456789012345678901234567890123456789X",
                  "field longer than 80 bytes in column extra1 (81 bytes)");
    /* longer than max_row (300): rejected and skipped, next row read */
    char big[400];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_reject(big, "row longer than 300 bytes (a field longer than 80 bytes)");
    /* an overlong quoted row spanning lines is skipped to its end */
    char big2[700];
    snprintf(big2, sizeof big2, V "\"%.200s\n%.200s\n%.200s\"", big, big, big);
    expect_reject(big2, "row longer than 300 bytes");
    /* long value quoted truncated to ~60 bytes */
    expect_reject("r,138,fax0123456789012345678901234567890123456789012345678901234567890123,mo,"
                  "139,2024-01-02 10:00:00,61,,,,,,,,0.38,",
                  "bad service 'fax012345678901234567890123456789012345678901234567890123456...'");
}

static void test_nul_byte(void **st)
{
    (void)st;
    static const char in[] = "record_id,msisdn,service,peer,start_time,billed,bytes\n"
                             "a,13800138000,data,x\0y,2024-01-01 00:00:00,0,1\n"
                             "b,13800138000,data,xy,2024-01-01 00:00:00,0,1\n";
    for (int nofast = 0; nofast < 2; nofast++) {
        cdr_reader_opts o;
        opts(&o, 4096, 1, nofast);
        result r;
        read_mem(in, sizeof in - 1, &o, &r);
        assert_non_null(strstr(r.t.p, "J 2@54 NUL byte in column peer at byte 2 of the field"));
        assert_int_equal(r.st.rows_accepted, 1);
        free_res(&r);
    }
}

/* ------------------------------------------------------------------ */

static void expect_file(const char *data, size_t n, const char *suffix, cdr_err want,
                        const char *msg)
{
    char *path = write_tmp(data, n, suffix);
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    result r;
    read_path(path, &o, &r);
    if (r.st.status != want || !strstr(r.st.message, msg))
        fail_msg("want %d '%s', got %d '%s'", want, msg, r.st.status, r.st.message);
    free_res(&r);
    unlink(path);
    free(path);
}

static void test_header(void **st)
{
    (void)st;
    expect_file("", 0, ".csv", CDR_E_HEADER, "empty file: no header row");
    expect_file("\n\r\n\n", 4, ".csv", CDR_E_HEADER, "empty file: no header row");
    expect_file("\xef\xbb\xbf", 3, ".csv", CDR_E_HEADER, "empty file: no header row");
    expect_file("record_id,msisdn,service,start_time\n", 36, ".csv", CDR_E_HEADER,
                "lacks required column(s): billed");
    expect_file("record_id,Msisdn,service,start_time,billed,MSISDN\n", 50, ".csv", CDR_E_HEADER,
                "duplicate column 'MSISDN' in header (columns 2 and 6)");
    expect_file(" record_id,msisdn,service,start_time,billed\n", 44, ".csv", CDR_E_HEADER,
                "record_id");
    expect_file("record_id,\"msisdn\nx\",service,start_time,billed\n", 47, ".csv",
                CDR_E_HEADER, "msisdn");
    expect_file("record_id,\"ms\"isdn,service\n", 27, ".csv", CDR_E_HEADER,
                "bad header row (line 1): broken quoting");
    /* header only: fine, no rows */
    expect_file("record_id,msisdn,service,start_time,billed\n", 43, ".csv", CDR_OK, "");
    expect_file("\xef\xbb\xbfrecord_id,msisdn,service,start_time,billed", 45, ".csv", CDR_OK, "");
    expect_file("x", 1, ".gz", CDR_E_GZIP, "not gzip");
    expect_file("", 0, ".gz", CDR_E_GZIP, "not gzip");
    expect_file("x", 1, ".csv", CDR_E_HEADER, "lacks required");
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    result r;
    read_path("/nonexistent/cdr.csv", &o, &r);
    assert_int_equal(r.st.status, CDR_E_IO);
    free_res(&r);
}

static void test_extras_and_values(void **st)
{
    (void)st;
    const char *in = "Zeta,record_id,msisdn,service,peer,start_time,billed,duration_s,Alpha\n"
                     "z1,r1,008613800138000,VOICE,+8613900139000,2024-01-02 10:00:00,0.38,61,a1\n";
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    result r;
    read_mem(in, strlen(in), &o, &r);
    assert_int_equal(r.st.rows_accepted, 1);
    assert_non_null(strstr(r.t.p, "R 2@70 [2:r1][11:13800138000][11:13900139000][0:][0:] s0 d0 "));
    assert_non_null(strstr(r.t.p, "dur61 by-1 ch-1 p0/0 ps0 b380000 [4:Zeta][2:z1][5:Alpha][2:a1]"));
    free_res(&r);
}

static void test_line_filter_and_stop(void **st)
{
    (void)st;
    const char *in = "record_id,msisdn,service,peer,start_time,billed,bytes\n"
                     "a,13800138000,data,,2024-01-01 00:00:00,0,1\n"
                     "b,13900139000,data,,2024-01-01 00:00:00,0,1\n"
                     "c,13900139000,data,\"q\",2024-01-01 00:00:00,0,1\n";
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.line_filter = "13900139000";
    result r;
    read_mem(in, strlen(in), &o, &r);
    assert_int_equal(r.st.rows_accepted, 2);
    assert_int_equal(r.st.rows_filtered, 1);
    free_res(&r);
}

static int stop_first(const cdr_row *row, void *u)
{
    (void)row;
    (*(int *)u)++;
    return 1;
}

static void test_callback_stop(void **st)
{
    (void)st;
    buf in = {0};
    bput(&in, "record_id,msisdn,service,peer,start_time,billed,bytes\n", 54);
    for (int i = 0; i < 100000; i++)
        bprintf(&in, "r%d,13800138000,data,,2024-01-01 00:00:00,0,1\n", i);
    char *path = write_tmp(in.p, in.n, ".csv");
    for (int th = 1; th <= 2; th++) {
        cdr_reader_opts o;
        cdr_reader_opts_init(&o);
        o.threads = th;
        o.buf_size = 4096;
        int calls = 0;
        cdr_file_stats s;
        assert_int_equal(cdr_read_file(path, 0, &o, stop_first, NULL, &calls, &s),
                         CDR_E_INTERRUPTED);
        assert_int_equal(calls, 1);
    }
    unlink(path);
    free(path);
    free(in.p);
}

/* ------------------------------------------------------------------ */
/* Gzip damage                                                          */

static void test_gzip_truncated_every_offset(void **st)
{
    (void)st;
    buf gz = {0};
    size_t n = case_len(0);
    gz_member(&gz, cases[0].data, n / 2);
    gz_member(&gz, cases[0].data + n / 2, n - n / 2);
    for (size_t k = 1; k < gz.n; k++) {
        char *path = write_tmp(gz.p, k, ".csv.gz");
        for (int th = 1; th <= 2; th++) {
            cdr_reader_opts o;
            cdr_reader_opts_init(&o);
            o.threads = th;
            result r;
            read_path(path, &o, &r);
            /* a cut exactly between members is a complete first member */
            if (r.st.status == CDR_OK) {
                buf one = {0};
                gz_member(&one, cases[0].data, n / 2);
                assert_int_equal(k, one.n);
                free(one.p);
            } else {
                assert_int_equal(r.st.status, CDR_E_GZIP);
                if (!strstr(r.st.message, "truncated gzip stream at compressed offset") &&
                    !strstr(r.st.message, "corrupt gzip data"))
                    fail_msg("cut %zu: %s", k, r.st.message);
            }
            free_res(&r);
        }
        unlink(path);
        free(path);
    }
    free(gz.p);
}

static void test_gzip_flipped_and_trailing(void **st)
{
    (void)st;
    buf gz = {0};
    size_t n = case_len(0);
    gz_member(&gz, cases[0].data, n);
    result ref;
    reference(0, &ref);
    for (size_t k = 0; k < gz.n; k++) {
        char *c = malloc(gz.n);
        memcpy(c, gz.p, gz.n);
        c[k] ^= 0x55;
        char *path = write_tmp(c, gz.n, ".csv.gz");
        cdr_reader_opts o;
        cdr_reader_opts_init(&o);
        result r;
        read_path(path, &o, &r);
        /* either refused as gzip damage, or harmless (e.g. mtime, OS byte) */
        /* either the file fails (gzip damage, or damaged text seen before the
         * CRC check: a header error), or the flip was harmless (mtime, OS) */
        if (r.st.status == CDR_OK && strcmp(r.t.p, ref.t.p) != 0)
            fail_msg("flip at %zu accepted with different data", k);
        if (k >= gz.n - 8) /* CRC32 and ISIZE */
            assert_int_equal(r.st.status, CDR_E_GZIP);
        free_res(&r);
        unlink(path);
        free(path);
        free(c);
    }
    /* trailing garbage after the last member */
    bput(&gz, "\0\0\0\0", 4);
    char *path = write_tmp(gz.p, gz.n, ".csv.gz");
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    result r;
    read_path(path, &o, &r);
    assert_int_equal(r.st.status, CDR_E_GZIP);
    assert_non_null(strstr(r.st.message, "trailing garbage after gzip member"));
    free_res(&r);
    unlink(path);
    free(path);
    free_res(&ref);
    free(gz.p);
}

static void test_sha256_of_file(void **st)
{
    (void)st;
    char *path = write_tmp("abc", 3, ".csv");
    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.want_sha256 = 1;
    cdr_file_stats s;
    cdr_read_file(path, 0, &o, NULL, NULL, NULL, &s);
    char hex[65];
    cdr_sha256_hex(s.sha256, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(s.size, 3);
    unlink(path);
    free(path);
}

int main(void)
{
    /* t_inflate_zlib.sh runs this again with CDRECON_INFLATE=zlib; the
     * library reads no environment variable, so the test passes it on as
     * the CLI does (main.c). */
    cdr_reader_set_inflate(cdr_inflate_from_name(getenv("CDRECON_INFLATE")));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_buffer_size),
        cmocka_unit_test(test_gzip_member_boundaries),
        cmocka_unit_test(test_fast_path_equals_libcsv),
        cmocka_unit_test(test_contract_profile_equals_none),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_extras_and_values),
        cmocka_unit_test(test_line_filter_and_stop),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_gzip_truncated_every_offset),
        cmocka_unit_test(test_gzip_flipped_and_trailing),
        cmocka_unit_test(test_sha256_of_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
