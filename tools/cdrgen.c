/*
 * cdrgen — seeded generator of a mobile operator's bill month: a tariff
 * directory, CDR files (gzip or plain), injected billing errors with the
 * truth a correct re-rating must find, and malformed rows with their list.
 *
 * It is an INDEPENDENT oracle: it computes every correct charge itself from
 * its own copy of the tariff (the tables below), never through the rating
 * engine, the tariff loader or the reader. Same seed and options give the
 * same bytes. Memory is bounded: subscribers are generated one at a time and
 * rows are shuffled and written in blocks. See docs/generator.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cdrecon/common.h"

/* ------------------------------------------------------------------ */
/* PRNG: splitmix64 seeding, xoshiro256**.                              */
typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static void rng_init(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&x);
}
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnext(rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}
/* uniform in [0, n) */
static uint64_t runi(rng *r, uint64_t n)
{
    return n ? (uint64_t)(((unsigned __int128)rnext(r) * n) >> 64) : 0;
}
/* uniform in [a, b] */
static int64_t rrange(rng *r, int64_t a, int64_t b) { return a + (int64_t)runi(r, (uint64_t)(b - a + 1)); }
/* probability p in 1/1e6 steps (no floating point drift across platforms) */
static int rchance(rng *r, uint32_t ppm) { return runi(r, 1000000) < ppm; }

/* ------------------------------------------------------------------ */
/* Time (own civil calendar; operator-local, no zones).                 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}
static int weekday(int64_t t) { int64_t w = (t / 86400 + 3) % 7; return (int)w; } /* 0=Mon */
static int64_t sod(int64_t t) { return t % 86400; }

static char *put2(char *p, int v) { p[0] = (char)('0' + v / 10); p[1] = (char)('0' + v % 10); return p + 2; }
static char *put_date(char *p, int64_t t)
{
    int y, m, d;
    civil_from_days(t / 86400, &y, &m, &d);
    p = put2(p, y / 100); p = put2(p, y % 100); *p++ = '-';
    p = put2(p, m); *p++ = '-';
    return put2(p, d);
}
static char *put_time(char *p, int64_t t)
{
    int64_t s = sod(t);
    p = put_date(p, t); *p++ = ' ';
    p = put2(p, (int)(s / 3600)); *p++ = ':';
    p = put2(p, (int)(s / 60 % 60)); *p++ = ':';
    return put2(p, (int)(s % 60));
}
static char *put_u(char *p, uint64_t v)
{
    char t[24];
    int k = 0;
    do { t[k++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (k) *p++ = t[--k];
    return p;
}
static char *put_i(char *p, int64_t v)
{
    if (v < 0) { *p++ = '-'; return put_u(p, (uint64_t)0 - (uint64_t)v); }
    return put_u(p, (uint64_t)v);
}
static char *put_s(char *p, const char *s) { size_t n = strlen(s); memcpy(p, s, n); return p + n; }
static char *put_money(char *p, int64_t v) { return p + cdr_money_format(v, 2, p); }
static char *put_padu(char *p, uint64_t v, int w)
{
    for (int i = w - 1; i >= 0; i--) { p[i] = (char)('0' + v % 10); v /= 10; }
    return p + w;
}

/* ------------------------------------------------------------------ */
/* The tariff (written to --tariff and used by the oracle below).       */
#define YUAN 1000000LL
#define STEP 10000LL /* rounding 0.01 */
enum { P_BASIC, P_B58, P_B88, P_D20, P_SPLIT, P_S67, P__N };
typedef struct plandef {
    const char *name, *fee;
    int single, part, split;
    int vinc;              /* voice increment (s) for domestic mo */
    int64_t peak, off;     /* micro-yuan per 60 s */
    int dinc;              /* data increment KB */
    int64_t vmin, sseg, dmb; /* bundle allowances, 0 = none */
    int disc;              /* percent off voice and data */
} plandef;
static const plandef PLANS[P__N] = {
    {"basic", "8.00", 70, 70, 0, 60, 190000, 100000, 10, 0, 0, 0, 0},
    {"b58", "58.00", 70, 70, 0, 60, 190000, 100000, 1, 200, 100, 1024, 0},
    {"b88", "88.00", 70, 70, 0, 6, 150000, 80000, 1, 500, 200, 3072, 0},
    {"d20", "38.00", 70, 70, 0, 60, 190000, 100000, 1, 0, 0, 0, 20},
    {"split", "18.00", 70, 70, 1, 60, 190000, 100000, 1, 0, 0, 0, 0},
    {"s67", "28.00", 70, 67, 0, 60, 190000, 100000, 1, 0, 0, 0, 0},
};
#define VOICE_UNIT 60
#define SMS_PRICE 100000LL
#define DATA_PRICE 290000LL /* per 1024 KB */
#define DATA_UNIT 1024
#define INTL_INC 60
static const struct { const char *prefix; int64_t price; } INTL[] = {
    {"00", 2000000}, {"00852", 1500000}, {"00853", 1500000},
};
#define N_INTL 3
static const struct { const char *code; int64_t price; const char *what; } VAS[] = {
    {"1065800101", 10000000, "music club"}, {"1065800202", 5000000, "news"},
    {"1065800303", 2000000, "weather"},     {"1065800404", 15000000, "game"},
    {"1065800505", 3000000, "reading"},
};
#define N_VAS 5
static const struct { const char *prefix, *label; } FREE[] = {
    {"110", "police"}, {"119", "fire"}, {"120", "ambulance"}, {"122", "traffic accident"},
    {"10086", "China Mobile service"}, {"10010", "China Unicom service"},
    {"10000", "China Telecom service"}, {"12315", "consumer complaints"},
};
#define N_FREE 8
static const char *const MOBILE_PFX[] = {"134", "135", "136", "137", "138", "139", "150", "151",
                                         "152", "157", "158", "159", "182", "183", "187", "188",
                                         "130", "131", "132", "155", "156", "186", "133", "153",
                                         "180", "181", "189", "191", "198", "199"};
#define N_MPFX 30
static const char *const APN[] = {"cmnet", "cmnet", "cmwap", "3gnet", ""};
enum { B_PEAK = 0, B_OFF = 1 };

/* ------------------------------------------------------------------ */
/* Records.                                                            */
enum { S_VOICE, S_SMS, S_DATA, S_VAS };
static const char *const SVC_NAME[] = {"voice", "sms", "data", "vas"};
enum {
    C_NONE, C_DUP, C_FREE, C_ZERO, C_PARTIAL, C_VAS, C_DATA0, C_BUNDLE, C_DISC, C_BAND,
    C_SMSSEG, C_DATAROUND, C_RATE, C_LEAK, C__N
};
static const char *const CAT_NAME[] = {
    "", "duplicate", "free_number", "zero_duration", "partial_rounding",
    "vas_no_subscription", "data_no_usage", "bundle_not_applied", "discount_not_applied",
    "wrong_band", "sms_segments", "data_rounding", "rate_mismatch", "leakage"};
enum { F_OVERLAP = 1, F_OVERLONG = 2 };

typedef struct rec {
    uint64_t id;
    int64_t start;
    int64_t dur, bytes; /* -1 when not used */
    int32_t chars;      /* -1 when not used */
    uint32_t sms_ref;   /* 0 none */
    int16_t sms_part, sms_parts;
    int16_t pseq, nparts; /* pseq 0 = complete; nparts on the head */
    uint64_t call_id;     /* 0 none */
    uint8_t svc, dir, free_, intl, vas, sub_ok, inj, flags, peerfmt, msfmt, no_inj, dup;
    char peer[24];
    int64_t billable, covered, correct, billed;
    int plan;
    uint32_t cell;
} rec;

typedef struct sub {
    char msisdn[12];
    int plan[2];
    int64_t change; /* -1 no change, else first second of the second period */
    int heavy, vip;
    int64_t join;
    int nsubs;
    struct { int code; int64_t from, to; } subs[3]; /* to exclusive */
    /* earlier refunds as written to refunds.csv (for the oracle's policy) */
    struct { int64_t date, amount; int cl, br; } refs[8];
    int nrefs;
    int special;
} sub;

/* ------------------------------------------------------------------ */
/* Options and global state.                                           */
typedef struct outf {
    char *path, *base;
    FILE *f;
    int gz;
    z_stream zs;
    unsigned char *zbuf;
    uint64_t line;
} outf;

static struct {
    uint64_t seed;
    const char *tariff, *out, *out_dir, *names, *faults_out, *truth, *cand;
    int files, level, days;
    int by_day;              /* --by-day: one file per start day, and the late file */
    uint32_t late_ppm;       /* --late: rows held back into the late file */
    uint64_t rows, subscribers, block;
    uint32_t faults_ppm, errors_ppm;
    int bundle_changes, refund_edges, same_second; /* edge-case modes (off by default) */
    int year, month;
    int64_t t0, t_end;
} O;

static outf *OUT;
static int N_OUT;
static rng G_ship;  /* file choice and shuffling */
static rng G_fault; /* fault rows */
static uint64_t next_id = 1;
static FILE *F_faults, *F_truth, *F_cand, *F_subs, *F_subscr, *F_ref;
static uint64_t n_rows, n_faults, n_truth, cat_count[C__N], n_flag[3];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cdrgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}
static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ------------------------------------------------------------------ */
/* Output files (plain or gzip through zlib deflate).                   */
#define ZCHUNK (1 << 18)
static void out_open(outf *o, const char *path)
{
    size_t n = strlen(path);
    o->path = strdup(path);
    const char *b = strrchr(path, '/');
    o->base = strdup(b ? b + 1 : path);
    o->gz = n > 3 && strcmp(path + n - 3, ".gz") == 0;
    o->f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!o->f)
        die("%s: %s", path, strerror(errno));
    if (o->gz) {
        memset(&o->zs, 0, sizeof o->zs);
        if (deflateInit2(&o->zs, O.level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            die("deflateInit2 failed");
        o->zbuf = xmalloc(ZCHUNK);
    }
}
static void out_write(outf *o, const char *p, size_t n, int flush)
{
    if (!o->gz) {
        if (n && fwrite(p, 1, n, o->f) != n)
            die("%s: write: %s", o->path, strerror(errno));
        return;
    }
    o->zs.next_in = (unsigned char *)p;
    o->zs.avail_in = (uInt)n;
    do {
        o->zs.next_out = o->zbuf;
        o->zs.avail_out = ZCHUNK;
        int rc = deflate(&o->zs, Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR)
            die("deflate failed");
        size_t have = ZCHUNK - o->zs.avail_out;
        if (have && fwrite(o->zbuf, 1, have, o->f) != have)
            die("%s: write: %s", o->path, strerror(errno));
    } while (o->zs.avail_out == 0);
}
static void out_close(outf *o)
{
    if (o->gz) {
        for (;;) {
            o->zs.next_in = NULL;
            o->zs.avail_in = 0;
            o->zs.next_out = o->zbuf;
            o->zs.avail_out = ZCHUNK;
            int rc = deflate(&o->zs, Z_FINISH);
            size_t have = ZCHUNK - o->zs.avail_out;
            if (have && fwrite(o->zbuf, 1, have, o->f) != have)
                die("%s: write: %s", o->path, strerror(errno));
            if (rc == Z_STREAM_END)
                break;
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                die("deflate finish failed");
        }
        deflateEnd(&o->zs);
        free(o->zbuf);
    }
    if (o->f == stdout ? fflush(o->f) != 0 : fclose(o->f) != 0)
        die("%s: close: %s", o->path, strerror(errno));
}

/* Buffered per-file writer: small rows are gathered before deflate. */
typedef struct wbuf { char *p; size_t n; } wbuf;
static wbuf *WB;
#define WBSZ (1 << 18)
static void wb_put(int fi, const char *p, size_t n)
{
    wbuf *w = &WB[fi];
    if (w->n + n > WBSZ) {
        out_write(&OUT[fi], w->p, w->n, 0);
        w->n = 0;
    }
    if (n > WBSZ) {
        out_write(&OUT[fi], p, n, 0);
        return;
    }
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static const char HEADER[] =
    "record_id,msisdn,service,direction,peer,cell_id,start_time,duration_s,bytes,sms_chars,"
    "sms_ref,sms_part,sms_parts,call_id,partial_seq,billed,msc_id\n";

/* ------------------------------------------------------------------ */
/* Row block: formatted rows waiting to be shuffled and written.        */
typedef struct brow { uint64_t off; uint32_t len; uint16_t file; uint8_t fault; } brow;
static char *B_txt;
static size_t B_n, B_cap;
static brow *B_rows;
static size_t B_nrows, B_rcap;

static const char *const FAULT_NAME[] = {"", "bad_time", "bad_money", "unknown_service",
                                         "field_count", "broken_quoting", "missing_msisdn",
                                         "nul_byte", "negative_duration", "invalid_utf8"};
#define N_FAULT_KINDS 9

typedef struct flush_job { int part, nparts; } flush_job;
static void *flush_part(void *arg)
{
    const flush_job *j = arg;
    for (size_t i = 0; i < B_nrows; i++) {
        brow *b = &B_rows[i];
        if (b->file % j->nparts == j->part)
            wb_put(b->file, B_txt + b->off, b->len);
    }
    return NULL;
}

static void block_flush(void)
{
    /* Fisher-Yates over the block, then stream out. */
    for (size_t i = B_nrows; i > 1; i--) {
        size_t j = (size_t)runi(&G_ship, i);
        brow t = B_rows[i - 1];
        B_rows[i - 1] = B_rows[j];
        B_rows[j] = t;
    }
    for (size_t i = 0; i < B_nrows; i++) {
        brow *b = &B_rows[i];
        OUT[b->file].line++;
        if (b->fault && F_faults)
            fprintf(F_faults, "%s,%llu,%s\n", OUT[b->file].base,
                    (unsigned long long)OUT[b->file].line, FAULT_NAME[b->fault]);
    }
    /* Each file is written by one thread (two threads when there are two or
     * more files): the bytes of every file do not depend on the threading. */
    flush_job jobs[2] = {{0, N_OUT >= 2 ? 2 : 1}, {1, 2}};
    pthread_t th;
    int threaded = N_OUT >= 2 && pthread_create(&th, NULL, flush_part, &jobs[1]) == 0;
    if (!threaded)
        jobs[0].nparts = 1;
    flush_part(&jobs[0]);
    if (threaded)
        pthread_join(th, NULL);
    B_n = 0;
    B_nrows = 0;
}

static char *block_reserve(size_t n)
{
    if (B_n + n > B_cap) {
        B_cap = (B_n + n) * 2;
        B_txt = xrealloc(B_txt, B_cap);
    }
    return B_txt + B_n;
}
static void block_add(size_t len, int file, int fault)
{
    if (B_nrows == B_rcap) {
        B_rcap = B_rcap ? B_rcap * 2 : 4096;
        B_rows = xrealloc(B_rows, B_rcap * sizeof *B_rows);
    }
    B_rows[B_nrows].off = B_n;
    B_rows[B_nrows].len = (uint32_t)len;
    B_rows[B_nrows].file = (uint16_t)file;
    B_rows[B_nrows].fault = (uint8_t)fault;
    B_nrows++;
    B_n += len;
}

/* ------------------------------------------------------------------ */
/* The oracle: bands, rates, charges.                                   */
static int band_at(int64_t t)
{
    if (weekday(t) >= 5)
        return B_OFF;
    int64_t s = sod(t);
    return s >= 7 * 3600 && s < 23 * 3600 ? B_PEAK : B_OFF;
}
static int64_t band_next(int64_t t) /* next 00:00, 07:00 or 23:00 after t */
{
    int64_t s = sod(t), day = t - s;
    if (s < 7 * 3600) return day + 7 * 3600;
    if (s < 23 * 3600) return day + 23 * 3600;
    return day + 86400;
}
static int64_t vprice(int plan, int band) { return band == B_PEAK ? PLANS[plan].peak : PLANS[plan].off; }
static int64_t intl_price(const char *peer)
{
    size_t best = 0;
    int64_t p = -1;
    for (int i = 0; i < N_INTL; i++) {
        size_t n = strlen(INTL[i].prefix);
        if (n > best && strncmp(peer, INTL[i].prefix, n) == 0) { best = n; p = INTL[i].price; }
    }
    return p;
}
static int is_free(const char *peer)
{
    for (int i = 0; i < N_FREE; i++)
        if (strncmp(peer, FREE[i].prefix, strlen(FREE[i].prefix)) == 0)
            return 1;
    return 0;
}
static int has_pool(int plan) { return PLANS[plan].vmin > 0; }
static int64_t ceil_to(int64_t v, int64_t inc) { return (v + inc - 1) / inc * inc; }
static int64_t round_half_up(__int128 num, __int128 den)
{
    /* num/den micro-yuan >= 0, to a multiple of STEP, half up */
    __int128 q = (2 * num + den * STEP) / (2 * den * STEP);
    return (int64_t)(q * STEP);
}

/* Voice billing variants. */
enum { V_NORMAL = -1, V_PEAK = B_PEAK, V_OFF = B_OFF, V_STARTBAND = 2 };
/* Charge for `billable` seconds of which the first `covered` are free. */
static int64_t voice_charge(const rec *r, int plan, int64_t billable, int64_t covered, int how, int nodisc)
{
    __int128 num = 0, den = VOICE_UNIT;
    int64_t left = billable - covered;
    if (r->dir == 1)
        return 0;
    if (r->intl) {
        num = (__int128)left * intl_price(r->peer);
    } else if (PLANS[plan].split && how == V_NORMAL) {
        int64_t t = r->start + covered;
        while (left > 0) {
            int64_t e = band_next(t), piece = e - t < left ? e - t : left;
            num += (__int128)piece * vprice(plan, band_at(t));
            t += piece;
            left -= piece;
        }
    } else {
        int b = (how == V_PEAK || how == V_OFF) ? how : band_at(r->start);
        num = (__int128)left * vprice(plan, b);
    }
    if (PLANS[plan].disc && !nodisc) {
        num *= 100 - PLANS[plan].disc;
        den *= 100;
    }
    return round_half_up(num, den);
}
static int64_t data_charge(int plan, int64_t kb, int64_t covered, int nodisc)
{
    __int128 num = (__int128)(kb - covered) * DATA_PRICE, den = DATA_UNIT;
    if (PLANS[plan].disc && !nodisc) {
        num *= 100 - PLANS[plan].disc;
        den *= 100;
    }
    return round_half_up(num, den);
}
static int64_t data_kb(int plan, int64_t bytes) { return ceil_to((bytes + 1023) / 1024, PLANS[plan].dinc); }
static int sms_segments(int plan, int chars)
{
    if (chars <= PLANS[plan].single)
        return 1;
    return (chars + PLANS[plan].part - 1) / PLANS[plan].part;
}
static int vinc(const rec *r, int plan) { return r->intl ? INTL_INC : PLANS[plan].vinc; }
static int plan_at(const sub *s, int64_t t) { return s->change >= 0 && t >= s->change ? s->plan[1] : s->plan[0]; }
static int subscribed(const sub *s, int code, int64_t t)
{
    for (int i = 0; i < s->nsubs; i++)
        if (s->subs[i].code == code && t >= s->subs[i].from && t < s->subs[i].to)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Per-subscriber generation.                                           */
static rec *R;
static size_t NR, CR;
static rec *newrec(void)
{
    if (NR == CR) {
        CR = CR ? CR * 2 : 256;
        R = xrealloc(R, CR * sizeof *R);
    }
    rec *r = &R[NR++];
    memset(r, 0, sizeof *r);
    r->id = next_id++;
    r->dur = r->bytes = -1;
    r->chars = -1;
    return r;
}

static void gen_mobile(rng *g, char *out)
{
    const char *p = MOBILE_PFX[runi(g, N_MPFX)];
    memcpy(out, p, 3);
    for (int i = 3; i < 11; i++)
        out[i] = (char)('0' + runi(g, 10));
    out[11] = 0;
}
static void gen_peer_voice(rng *g, rec *r, int kind)
{
    if (kind == 1) { /* free */
        strcpy(r->peer, FREE[runi(g, N_FREE)].prefix);
        r->free_ = 1;
        return;
    }
    if (kind == 2) { /* international */
        static const char *const cc[] = {"001", "0044", "0081", "0061", "00852", "00853", "0049"};
        char *p = r->peer;
        p = put_s(p, cc[runi(g, 7)]);
        for (int i = 0; i < 9; i++) *p++ = (char)('0' + runi(g, 10));
        *p = 0;
        r->intl = 1;
        return;
    }
    uint64_t k = runi(g, 100);
    if (k < 72) {
        gen_mobile(g, r->peer);
        if (runi(g, 100) < 4) r->peerfmt = (uint8_t)(1 + runi(g, 2)); /* +86 / 86 form */
    } else if (k < 94) { /* landline: 010 Beijing, 021 Shanghai, 020 Guangzhou, 0755 Shenzhen */
        static const char *const ac[] = {"010", "021", "020", "0755", "028", "0571"};
        char *p = put_s(r->peer, ac[runi(g, 6)]);
        int n = strlen(r->peer) == 3 ? 8 : 7;
        *p++ = (char)('2' + runi(g, 7));
        for (int i = 1; i < n; i++) *p++ = (char)('0' + runi(g, 10));
        *p = 0;
    } else { /* paid service numbers */
        static const char *const sn[] = {"95588", "95533", "95555", "4008123123", "95105105"};
        strcpy(r->peer, sn[runi(g, 5)]);
    }
}

static int64_t exp_dur(rng *g, int64_t mean)
{
    /* a rough long-tailed duration without floating point: sum of uniforms */
    int64_t k = runi(g, 100);
    if (k < 55) return rrange(g, 5, mean);
    if (k < 85) return rrange(g, mean, mean * 4);
    return rrange(g, mean * 4, mean * 12);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void make_sub(uint64_t idx, rng *g, sub *s)
{
    memset(s, 0, sizeof *s);
    /* unique msisdn: prefix + an affine bijection of the index modulo 10^8 */
    uint64_t suf = (idx * 48271ULL + (O.seed % 100000000ULL) * 7ULL + 12345678ULL) % 100000000ULL;
    memcpy(s->msisdn, MOBILE_PFX[idx % N_MPFX], 3);
    put_padu(s->msisdn + 3, suf, 8);
    s->msisdn[11] = 0;
    static const int dist[] = {P_BASIC, P_BASIC, P_BASIC, P_B58, P_B58, P_B58, P_B58, P_B88, P_B88,
                               P_D20, P_D20, P_D20, P_SPLIT, P_SPLIT, P_SPLIT, P_S67, P_S67, P_S67};
    s->plan[0] = dist[runi(g, sizeof dist / sizeof dist[0])];
    s->change = -1;
    int days = O.days;
    if (O.bundle_changes && has_pool(s->plan[0]) && days >= 4 && rchance(g, 400000)) {
        /* --bundle-changes: from one bundle plan to the other (each (plan,
         * pool) has its own allowance), or to a plan without bundles */
        s->plan[1] = runi(g, 4) ? (s->plan[0] == P_B58 ? P_B88 : P_B58) : P_BASIC;
        s->change = O.t0 + rrange(g, 2, days - 1) * 86400;
    } else if (!has_pool(s->plan[0]) && days >= 4 &&
               rchance(g, O.bundle_changes ? 200000 : 80000)) {
        /* (without --bundle-changes: only between plans without bundles) */
        static const int np[] = {P_BASIC, P_D20, P_SPLIT, P_S67, P_B58, P_B88};
        int q;
        do q = np[runi(g, O.bundle_changes ? 6 : 4)]; while (q == s->plan[0]);
        s->plan[1] = q;
        s->change = O.t0 + rrange(g, 2, days - 1) * 86400;
    } else {
        s->plan[1] = s->plan[0];
    }
    s->heavy = rchance(g, 300000);
    if (O.bundle_changes && s->change >= 0 && has_pool(s->plan[0]))
        s->heavy = 1; /* a pool used up before the change shows whose pool is whose */
    s->vip = rchance(g, 80000);
    int64_t back = rrange(g, 20, 365 * 12);
    s->join = O.t0 - back * 86400;
    int ns = (int)runi(g, 100) < 45 ? (int)rrange(g, 1, 3) : 0;
    int used = 0;
    for (int i = 0; i < ns; i++) {
        int c = (int)runi(g, N_VAS);
        if (used & (1 << c)) continue;
        used |= 1 << c;
        int k = s->nsubs++;
        s->subs[k].code = c;
        s->subs[k].from = s->join + rrange(g, 0, back) * 86400;
        s->subs[k].to = days_from_civil(2099, 12, 31) * 86400 + 86400;
        uint64_t v = runi(g, 100);
        if (v < 25 && days >= 4) /* unsubscribed mid-month */
            s->subs[k].to = O.t0 + rrange(g, 1, days - 1) * 86400;
        else if (v < 45 && days >= 4) /* subscribed mid-month */
            s->subs[k].from = O.t0 + rrange(g, 1, days - 1) * 86400;
    }
}

/* Month index y*12 + (m-1) of a time, and the first second of a month index. */
static int month_of(int64_t t)
{
    int y, m, d;
    civil_from_days(t / 86400, &y, &m, &d);
    return y * 12 + m - 1;
}
static int64_t month_start(int mi) { return days_from_civil(mi / 12, mi % 12 + 1, 1) * 86400; }
static int bill_month(void) { return O.year * 12 + O.month - 1; }

/* The refund rules of DOMAIN.md, the oracle's own reading (docs/rating.md
 * "Candidates" records the same decisions):
 * special customer: 3 or more refunds in one calendar month, or 100 yuan or
 * more in total, within the bill month and the three months before it,
 * company-liable and border-roaming refunds left out. */
static int oracle_special(const sub *s)
{
    int bm = bill_month(), per[4] = {0, 0, 0, 0};
    int64_t total = 0;
    for (int i = 0; i < s->nrefs; i++) {
        if (s->refs[i].cl || s->refs[i].br)
            continue;
        int back = bm - month_of(s->refs[i].date);
        if (back < 0 || back > 3)
            continue;
        per[back]++;
        total += s->refs[i].amount;
    }
    return per[0] >= 3 || per[1] >= 3 || per[2] >= 3 || per[3] >= 3 || total >= 100 * YUAN;
}
/* Approval tier (service centre, company-liable: every double refund is):
 * 0 up to 20 yuan for a number with no refund before the end of the bill
 * month; then up to 200, 500, 1000 yuan; above: 4. Bounds inclusive. */
static int oracle_tier(int64_t refund, int first)
{
    if (first && refund <= 20 * YUAN) return 0;
    if (refund <= 200 * YUAN) return 1;
    if (refund <= 500 * YUAN) return 2;
    if (refund <= 1000 * YUAN) return 3;
    return 4;
}
/* Refund first or verify first, and why (the reasons as candidates.csv
 * writes them). The first rule that applies decides. */
static const char *oracle_policy(const sub *s, int special, int flagged, int vas, int *first_refund,
                                 const char **policy)
{
    int bm = bill_month(), year_first = bm - bm % 12;
    int64_t end = month_start(bm + 1);
    int before = 0, this_year = 0, last3 = 0;
    for (int i = 0; i < s->nrefs; i++) {
        if (s->refs[i].date >= end)
            continue; /* after the bill month: not earlier */
        int rm = month_of(s->refs[i].date);
        before++;
        this_year += rm >= year_first;
        last3 += rm >= bm - 3;
    }
    *first_refund = before == 0;
    *policy = "verify_first";
    if (special)
        return "special customer (3+ refunds in a month or 100+ yuan in 3 months): verify first";
    if (flagged)
        return "overlapping or over-long call records need verification first";
    *policy = "refund_first";
    if (vas)
        return "value-added (SP) fee dispute: refund first";
    if (month_of(s->join) + 12 <= bm)
        return "customer for a year or more in good standing: refund first";
    if (!this_year && !last3)
        return "first fee dispute this year, no refund in the last three months: refund first";
    *policy = "verify_first";
    return "earlier refunds this year and tenure under a year: verify first";
}

static void add_ref(sub *s, int64_t t, const char *amount, int cl, int br)
{
    char a[16];
    cdr_money v;
    if (s->nrefs == 8 || cdr_money_parse(amount, strlen(amount), &v) != CDR_OK)
        die("internal: refund table");
    s->refs[s->nrefs].date = t;
    s->refs[s->nrefs].amount = v;
    s->refs[s->nrefs].cl = cl;
    s->refs[s->nrefs].br = br;
    s->nrefs++;
    if (F_ref) {
        *put_date(a, t) = 0;
        fprintf(F_ref, "%s,%s,%s,%d,%d\n", s->msisdn, a, amount, cl, br);
    }
}

/* --refund-edges: earlier refunds at every edge of the special-customer
 * window (the bill month m and m-1..m-3) and of the tier and policy rules,
 * and join dates at the one-year tenure edge. D(k, d): day d of month m-k
 * (d = 0: the last day of that month). */
#define N_REFUND_EDGES 14
static void refund_edges(sub *s, rng *g)
{
    int bm = bill_month();
#define D(k, d) ((d) ? month_start(bm - (k)) + ((d) - 1) * 86400 : month_start(bm - (k) + 1) - 86400)
    /* tenure: exactly 12 months (first and last day of m-12: a year), 11
     * months (not), or recent; long tenure would decide most policies */
    static const int jk[] = {12, 12, 11, 2, 2, 2};
    uint64_t j = runi(g, 6);
    s->join = D(jk[j], j == 1 ? 0 : 1);
    switch ((int)runi(g, N_REFUND_EDGES)) {
    case 0: break; /* none: a first refund */
    case 1: /* 3 in m-3 (inside): special */
        add_ref(s, D(3, 1), "1.00", 0, 0); add_ref(s, D(3, 15), "1.00", 0, 0); add_ref(s, D(3, 0), "1.00", 0, 0);
        break;
    case 2: /* 3 in m-4 (just outside): not special */
        add_ref(s, D(4, 1), "1.00", 0, 0); add_ref(s, D(4, 15), "1.00", 0, 0); add_ref(s, D(4, 0), "1.00", 0, 0);
        break;
    case 3: /* 3 over two calendar months: not special */
        add_ref(s, D(3, 0), "2.00", 0, 0); add_ref(s, D(3, 0), "2.00", 0, 0); add_ref(s, D(2, 1), "2.00", 0, 0);
        break;
    case 4: /* exactly 100.00 from the first day of m-3 to the last of m: special */
        add_ref(s, D(3, 1), "60.00", 0, 0); add_ref(s, D(0, 0), "40.00", 0, 0);
        break;
    case 5: /* 99.99: not special */
        add_ref(s, D(3, 1), "60.00", 0, 0); add_ref(s, D(0, 0), "39.99", 0, 0);
        break;
    case 6: /* 99.99 on the last day of m-4 and 0.01 in m-3: not special */
        add_ref(s, D(4, 0), "99.99", 0, 0); add_ref(s, D(3, 1), "0.01", 0, 0);
        break;
    case 7: /* 3 in the bill month itself: special */
        add_ref(s, D(0, 1), "3.00", 0, 0); add_ref(s, D(0, 2), "3.00", 0, 0); add_ref(s, D(0, 0), "3.00", 0, 0);
        break;
    case 8: /* 3 and 100 yuan in the month after: not earlier, not special, a first refund */
        add_ref(s, D(-1, 1), "100.00", 0, 0); add_ref(s, D(-1, 2), "1.00", 0, 0); add_ref(s, D(-1, 3), "1.00", 0, 0);
        break;
    case 9: /* company-liable and border-roaming ones are left out: not special */
        add_ref(s, D(3, 1), "1.00", 0, 0); add_ref(s, D(3, 2), "1.00", 1, 0); add_ref(s, D(3, 3), "1.00", 0, 0);
        add_ref(s, D(1, 5), "100.00", 0, 1); add_ref(s, D(1, 6), "5.00", 0, 0);
        break;
    case 10: /* company-liable 100 in m-2: not special, but an earlier refund */
        add_ref(s, D(2, 10), "100.00", 1, 0);
        break;
    case 11: /* one in m-4: earlier, outside the last three months */
        add_ref(s, D(4, 10), "5.00", 0, 0);
        break;
    case 12: /* one a year and a month ago: earlier, not this year */
        add_ref(s, D(13, 10), "5.00", 0, 0);
        break;
    default: /* one on the first day of the bill month's year */
        add_ref(s, days_from_civil(O.year, 1, 1) * 86400, "5.00", 0, 0);
        break;
    }
#undef D
}

static void write_sub_tables(sub *s, rng *g)
{
    char a[16], b[16], c[16];
    if (O.refund_edges)
        refund_edges(s, g); /* sets the join date: before subscribers.csv */
    if (F_subs) {
        *put_date(a, s->join) = 0;
        if (s->change < 0) {
            fprintf(F_subs, "%s,%s,%s,2099-12-31,%d,%s\n", s->msisdn, PLANS[s->plan[0]].name, a,
                    s->vip, a);
        } else {
            *put_date(b, s->change - 86400) = 0;
            *put_date(c, s->change) = 0;
            fprintf(F_subs, "%s,%s,%s,%s,%d,%s\n", s->msisdn, PLANS[s->plan[0]].name, a, b, s->vip, a);
            fprintf(F_subs, "%s,%s,%s,2099-12-31,%d,%s\n", s->msisdn, PLANS[s->plan[1]].name, c,
                    s->vip, a);
        }
    }
    if (F_subscr) {
        for (int i = 0; i < s->nsubs; i++) {
            *put_date(a, s->subs[i].from) = 0;
            *put_date(b, s->subs[i].to - 86400) = 0;
            fprintf(F_subscr, "%s,%s,%s,%s\n", s->msisdn, VAS[s->subs[i].code].code, a, b);
        }
    }
    if (O.refund_edges) {
        s->special = oracle_special(s);
        return;
    }
    /* Earlier refunds. Kinds are chosen so that the special-customer rule
     * has one answer: 3 refunds inside one calendar month last month, or
     * >= 100 yuan two months ago (special); or refunds that stay below both
     * thresholds once company-liable and border-roaming ones are left out. */
    uint64_t k = runi(g, 1000);
    int64_t m1 = 0, m2 = 0, m6 = 0; /* starts of month-1, month-2, month-10 */
    {
        int y = O.year, m = O.month - 1;
        if (m < 1) { m += 12; y--; }
        m1 = days_from_civil(y, m, 1) * 86400;
        m = m - 1;
        if (m < 1) { m += 12; y--; }
        m2 = days_from_civil(y, m, 1) * 86400;
        y = O.year - 1;
        m6 = days_from_civil(y, O.month, 1) * 86400;
    }
#define REF(t, amt, cl, br) add_ref(s, (t), amt, cl, br)
    if (k < 15) { /* special: 3 refunds within last month */
        REF(m1 + 2 * 86400, "5.00", 0, 0); REF(m1 + 11 * 86400, "12.40", 0, 0); REF(m1 + 24 * 86400, "3.80", 0, 0);
    } else if (k < 30) { /* special: >= 100 yuan two months ago */
        REF(m2 + 4 * 86400, "60.00", 0, 0); REF(m2 + 19 * 86400, "45.50", 0, 0);
    } else if (k < 45) { /* not special: company-liable refunds do not count */
        REF(m1 + 3 * 86400, "30.00", 1, 0); REF(m1 + 9 * 86400, "40.00", 1, 0);
        REF(m1 + 15 * 86400, "50.00", 1, 0); REF(m1 + 20 * 86400, "8.00", 0, 0);
    } else if (k < 60) { /* not special: border roaming does not count */
        REF(m1 + 6 * 86400, "120.00", 0, 1); REF(m2 + 6 * 86400, "10.00", 0, 0);
    } else if (k < 75) { /* not special any more: three refunds a year ago */
        REF(m6 + 1 * 86400, "6.00", 0, 0); REF(m6 + 8 * 86400, "7.00", 0, 0); REF(m6 + 20 * 86400, "150.00", 0, 0);
    } else if (k < 120) { /* one ordinary refund */
        REF(m2 + 10 * 86400, "9.90", 0, 0);
    }
#undef REF
    s->special = oracle_special(s);
    if (s->special != (k < 30))
        die("internal: refund kind %d gives special %d", (int)k, s->special);
}

/* Generate one subscriber's month into R[0..NR). */
static void gen_events(const sub *s, rng *g, uint64_t n_events)
{
    int64_t span = (int64_t)O.days * 86400;
    int64_t *st = xmalloc((n_events + 1) * sizeof *st);
    for (uint64_t i = 0; i < n_events; i++) {
        if (rchance(g, 60000)) { /* near a band boundary (07:00 / 23:00) */
            int64_t day = O.t0 + rrange(g, 0, O.days - 1) * 86400;
            st[i] = day + (runi(g, 2) ? 23 * 3600 : 7 * 3600) - rrange(g, 1, 1500);
            if (st[i] < O.t0) st[i] = O.t0;
        } else {
            st[i] = O.t0 + (int64_t)runi(g, (uint64_t)(span - 600));
        }
    }
    qsort(st, n_events, sizeof *st, cmp_i64);
    for (uint64_t i = 1; i < n_events; i++)
        if (st[i] <= st[i - 1]) st[i] = st[i - 1] + 1;
    st[n_events] = O.t_end;
    uint32_t sms_ref = (uint32_t)runi(g, 200);
    int heavy = s->heavy;
    for (uint64_t i = 0; i < n_events; i++) {
        int64_t t = st[i];
        if (t >= O.t_end - 1) break;
        int64_t room = st[i + 1] - t - 1; /* the event must end before the next one */
        if (room < 0) room = 0;
        uint64_t k = runi(g, 1000);
        rec *r;
        if (k < 260 || (k < 290 && room < 200)) { /* voice mo */
            r = newrec();
            r->svc = S_VOICE; r->start = t;
            uint64_t v = runi(g, 100);
            gen_peer_voice(g, r, v < 7 ? 1 : v < 12 ? 2 : 0);
            r->dur = runi(g, 100) < 9 ? 0 : exp_dur(g, heavy ? 420 : 90);
            if (r->dur > 10000) r->dur = 10000;
            if (r->dur > room) r->dur = room;
        } else if (k < 290) { /* long call written as partial records */
            int64_t total = rrange(g, 1900, 9000);
            if (total > room) total = room;
            int np = (int)rrange(g, 2, 3);
            uint64_t cid = next_id;
            int64_t left = total, tt = t;
            for (int j = 1; j <= np; j++) {
                r = newrec();
                r->svc = S_VOICE; r->start = tt;
                if (j == 1) gen_peer_voice(g, r, runi(g, 10) < 1 ? 2 : 0);
                else { strcpy(r->peer, R[NR - 2].peer); r->intl = R[NR - 2].intl; r->peerfmt = R[NR - 2].peerfmt; }
                r->dur = j == np ? left : left / (np - j + 1) + rrange(g, -30, 30);
                if (r->dur < 1) r->dur = 1;
                if (r->dur > left) r->dur = left;
                left -= r->dur;
                tt += r->dur;
                r->call_id = cid; r->pseq = (int16_t)j; r->nparts = (int16_t)np;
            }
        } else if (k < 450) { /* voice mt */
            r = newrec();
            r->svc = S_VOICE; r->dir = 1; r->start = t;
            gen_peer_voice(g, r, 0);
            r->dur = runi(g, 100) < 12 ? 0 : exp_dur(g, heavy ? 300 : 80);
            if (r->dur > 10000) r->dur = 10000;
            if (r->dur > room) r->dur = room;
        } else if (k < 610 || (k < 630 && room < 30)) { /* sms mo, one record */
            r = newrec();
            r->svc = S_SMS; r->start = t;
            if (runi(g, 100) < 4) { strcpy(r->peer, "10086"); r->free_ = 1; }
            else { gen_mobile(g, r->peer); if (runi(g, 100) < 4) r->peerfmt = 1; }
            uint64_t v = runi(g, 100);
            r->chars = v < 70 ? (int)rrange(g, 1, 70) : v < 85 ? (int)rrange(g, 60, 75)
                                                       : (int)rrange(g, 71, 300);
            if (O.same_second && !r->free_ && runi(g, 100) < 25) {
                /* a group SMS: the same message to 1-2 more recipients in the
                 * same second; the records differ only in the peer */
                int chars = r->chars, more = (int)rrange(g, 1, 2);
                for (int j = 0; j < more; j++) {
                    r = newrec();
                    r->svc = S_SMS; r->start = t; r->chars = chars;
                    gen_mobile(g, r->peer);
                }
            }
        } else if (k < 630) { /* long sms as per-segment records */
            int chars = (int)rrange(g, 71, 300);
            int plan = plan_at(s, t);
            int segs = sms_segments(plan, chars);
            char peer[24];
            gen_mobile(g, peer);
            sms_ref = (sms_ref + 1) % 65536; if (!sms_ref) sms_ref = 1;
            int64_t tt = t;
            for (int j = 1; j <= segs; j++) {
                r = newrec();
                r->svc = S_SMS; r->start = tt; strcpy(r->peer, peer);
                r->chars = chars; r->sms_ref = sms_ref;
                r->sms_part = (int16_t)j; r->sms_parts = (int16_t)segs;
                tt += rrange(g, 1, 3);
            }
            if (room < tt - t + 3 || plan_at(s, t) != plan_at(s, tt)) { /* no room: drop it */
                NR -= (size_t)segs;
            }
        } else if (k < 710) { /* sms mt */
            r = newrec();
            r->svc = S_SMS; r->dir = 1; r->start = t;
            if (runi(g, 100) < 10) strcpy(r->peer, "10086"); else gen_mobile(g, r->peer);
            r->chars = (int)rrange(g, 1, 140);
        } else if (k < 960) { /* data */
            const char *apn = APN[runi(g, 5)];
            int64_t bytes;
            uint64_t v = runi(g, 100);
            if (v < 3) bytes = 0;
            else if (v < 40) bytes = rrange(g, 1, 200 * 1024);
            else if (v < 85) bytes = rrange(g, 200 * 1024, 8 << 20);
            else bytes = rrange(g, 8 << 20, heavy ? 300 << 20 : 60 << 20);
            if (heavy && v >= 40) bytes *= 3;
            int np = bytes > 0 && room > 4000 && runi(g, 100) < 12 ? (int)rrange(g, 2, 3) : 1;
            uint64_t cid = next_id;
            int64_t left = bytes, tt = t;
            for (int j = 1; j <= np; j++) {
                r = newrec();
                r->svc = S_DATA; r->start = tt; strcpy(r->peer, apn);
                r->bytes = j == np ? left : left / (np - j + 1);
                left -= r->bytes;
                tt += rrange(g, 600, 1200);
                if (np > 1) { r->call_id = cid; r->pseq = (int16_t)j; r->nparts = (int16_t)np; }
            }
            if (O.same_second && np == 1 && bytes > 0 && runi(g, 100) < 20) {
                /* a parallel session on another APN, same second, same volume */
                static const char *const other[] = {"cmnet", "cmwap", "3gnet"};
                const char *apn2;
                do apn2 = other[runi(g, 3)]; while (!strcmp(apn2, apn));
                r = newrec();
                r->svc = S_DATA; r->start = t; r->bytes = bytes; strcpy(r->peer, apn2);
            }
        } else { /* vas */
            r = newrec();
            r->svc = S_VAS; r->start = t;
            int c = s->nsubs && runi(g, 100) < 75 ? s->subs[runi(g, (uint64_t)s->nsubs)].code
                                                  : (int)runi(g, N_VAS);
            r->vas = (uint8_t)c;
            strcpy(r->peer, VAS[c].code);
        }
    }
    free(st);
}

/* Structural injections that change usage: overlong and overlapping calls,
 * and an extra (overcounted) segment of a per-segment SMS. */
static int plain_voice_mo(const rec *r)
{
    return r->svc == S_VOICE && r->dir == 0 && !r->call_id && !r->free_ && !r->inj && !r->flags && !r->no_inj;
}
static void inject_structural(const sub *s, rng *g)
{
    if (!O.errors_ppm) return;
    for (size_t i = 0; i < NR; i++) {
        rec *r = &R[i];
        if (!plain_voice_mo(r) || r->dur == 0) continue;
        int64_t next = i + 1 < NR ? R[i + 1].start : O.t_end;
        if (rchance(g, O.errors_ppm / 4) && next - r->start > 11200) {
            int64_t d = rrange(g, 10801, 14400);
            if (d > next - r->start - 2) d = next - r->start - 2;
            if (d > 10800) { r->dur = d; r->flags = F_OVERLONG; continue; }
        }
        if (r->dur >= 4 && rchance(g, O.errors_ppm / 6)) {
            /* B: a short call that starts while A is still running (and ends
             * before A does). Records of the next event start after A ends,
             * so B goes right after A. Only B is flagged. */
            int64_t bs = r->start + rrange(g, 1, r->dur / 2);
            int64_t bd = rrange(g, 1, r->start + r->dur - bs - 1);
            uint64_t xid = newrec()->id;
            memmove(&R[i + 2], &R[i + 1], (NR - i - 2) * sizeof *R);
            rec *x = &R[i + 1];
            memset(x, 0, sizeof *x);
            x->id = xid; /* renumbered below; ids stay >= 1 */
            x->dur = bd; x->bytes = -1; x->chars = -1;
            x->svc = S_VOICE; x->start = bs;
            gen_peer_voice(g, x, 0);
            x->flags = F_OVERLAP;
            R[i].no_inj = 1;
            i++;
        }
    }
    /* overcounted segment: only on plans with no bundle and no discount */
    size_t n0 = NR;
    for (size_t i = 0; i < n0; i++) {
        rec *r = &R[i];
        if (r->svc != S_SMS || r->sms_part == 0 || r->sms_part != r->sms_parts) continue;
        int plan = plan_at(s, R[i - r->sms_part + 1].start);
        if (has_pool(plan) || PLANS[plan].disc) continue;
        int64_t next = i + 1 < n0 ? R[i + 1].start : O.t_end;
        if (next - r->start < 5 || !rchance(g, O.errors_ppm * 2)) continue;
        /* insert the extra part right after (shift the tail by one) */
        newrec();
        uint64_t id = R[NR - 1].id;
        memmove(&R[i + 2], &R[i + 1], (NR - i - 2) * sizeof *R);
        rec *x = &R[i + 1];
        *x = R[i];
        x->id = id;
        x->start = R[i].start + 2;
        x->sms_part = (int16_t)(R[i].sms_part + 1);
        for (int j = 0; j <= R[i].sms_part; j++)
            R[i - j + 1].sms_parts = (int16_t)(R[i].sms_part + 1);
        x->sms_parts = x->sms_part;
        x->inj = C_SMSSEG;
        x->billed = SMS_PRICE;
        n0++;
        i++;
    }
    /* record ids must follow time order within the subscriber: renumber */
    uint64_t base = R[0].id;
    for (size_t i = 1; i < NR; i++) if (R[i].id < base) base = R[i].id;
    for (size_t i = 0; i < NR; i++) {
        if (R[i].call_id && R[i].pseq == 1) {
            uint64_t old = R[i].call_id;
            for (size_t j = i; j < NR && j < i + (size_t)R[i].nparts; j++)
                if (R[j].call_id == old) R[j].call_id = base + i;
        }
    }
    for (size_t i = 0; i < NR; i++) R[i].id = base + i;
}

/* Rate every record exactly (the correct charge), running the bundles. */
static void rate_all(const sub *s)
{
    /* one balance per (plan, pool): a plan taken mid-month brings its whole
     * allowance (CONTRACT.md: per subscriber and bill month; no pro-rating) */
    int64_t pv[P__N], ps[P__N], pd[P__N];
    for (int p = 0; p < P__N; p++) {
        pv[p] = PLANS[p].vmin * 60; ps[p] = PLANS[p].sseg; pd[p] = PLANS[p].dmb * 1024;
    }
    for (size_t i = 0; i < NR; i++) {
        rec *r = &R[i];
        if (r->pseq > 1) { r->correct = 0; r->plan = R[i - 1].plan; continue; }
        int plan = plan_at(s, r->start);
        int64_t *pool_v = &pv[plan], *pool_s = &ps[plan], *pool_d = &pd[plan];
        r->plan = plan;
        r->covered = 0;
        r->free_ = (uint8_t)((r->svc == S_VOICE || r->svc == S_SMS) && r->dir == 0 && is_free(r->peer));
        switch (r->svc) {
        case S_VOICE: {
            int64_t dur = r->dur;
            for (int j = 1; j < r->nparts; j++) dur += R[i + j].dur;
            r->billable = dur == 0 ? 0 : ceil_to(dur, vinc(r, plan));
            if (r->dir == 1 || (r->free_)) { r->correct = 0; break; }
            if (!r->intl && has_pool(plan)) {
                r->covered = r->billable < *pool_v ? r->billable : *pool_v;
                *pool_v -= r->covered;
            }
            r->correct = voice_charge(r, plan, r->billable, r->covered, V_NORMAL, 0);
            break;
        }
        case S_SMS: {
            int segs = sms_segments(plan, r->chars);
            r->billable = r->sms_part ? (r->sms_part <= segs ? 1 : 0) : segs;
            if (r->dir == 1 || r->free_) { r->correct = 0; break; }
            if (has_pool(plan)) {
                r->covered = r->billable < *pool_s ? r->billable : *pool_s;
                *pool_s -= r->covered;
            }
            r->correct = (r->billable - r->covered) * SMS_PRICE;
            break;
        }
        case S_DATA: {
            int64_t bytes = r->bytes;
            for (int j = 1; j < r->nparts; j++) bytes += R[i + j].bytes;
            r->billable = data_kb(plan, bytes);
            if (has_pool(plan)) {
                r->covered = r->billable < *pool_d ? r->billable : *pool_d;
                *pool_d -= r->covered;
            }
            r->correct = data_charge(plan, r->billable, r->covered, 0);
            break;
        }
        default:
            r->sub_ok = (uint8_t)subscribed(s, r->vas, r->start);
            r->billable = 1;
            r->correct = r->sub_ok ? VAS[r->vas].price : 0;
        }
    }
    for (size_t i = 0; i < NR; i++)
        if (!R[i].inj) R[i].billed = R[i].correct;
}

static int plan_plain(int plan) { return !has_pool(plan) && !PLANS[plan].disc; }

/* Choose a billing error for record i among the categories that fit it. */
static void inject_billing(rng *g)
{
    if (!O.errors_ppm) return;
    for (size_t i = 0; i < NR; i++) {
        rec *r = &R[i];
        if (r->inj || r->flags || r->no_inj || r->pseq > 1 || r->sms_part) continue;
        int cand[C__N], nc = 0;
        int64_t val[C__N];
        int plan = r->plan, multi = r->nparts > 1;
        memset(val, 0, sizeof val);
        if (r->svc == S_VOICE && r->dir == 0) {
            int inc = vinc(r, plan);
            if (r->free_ && !multi && r->dur > 0) {
                rec x = *r; x.free_ = 0;
                val[C_FREE] = voice_charge(&x, plan, r->billable, 0, V_NORMAL, 1);
                cand[nc++] = C_FREE;
            }
            if (!r->free_ && !multi && r->dur == 0) {
                val[C_ZERO] = voice_charge(r, plan, inc, 0, V_NORMAL, 1);
                cand[nc++] = C_ZERO;
            }
            if (multi && !r->free_ && (plan == P_BASIC || plan == P_S67) && !r->intl) {
                int64_t sum = 0;
                for (int j = 0; j < r->nparts; j++) sum += ceil_to(R[i + j].dur, inc);
                int64_t b = voice_charge(r, plan, sum, 0, V_NORMAL, 0);
                if (b > r->correct) { val[C_PARTIAL] = b; cand[nc++] = C_PARTIAL; }
            }
            if (!multi && !r->free_ && r->covered > 0) {
                int64_t b = voice_charge(r, plan, r->billable, 0, V_NORMAL, 0);
                if (b > r->correct) { val[C_BUNDLE] = b; cand[nc++] = C_BUNDLE; }
            }
            if (!multi && !r->free_ && PLANS[plan].disc && r->billable > 0) {
                int64_t b = voice_charge(r, plan, r->billable, 0, V_NORMAL, 1);
                if (b > r->correct) { val[C_DISC] = b; cand[nc++] = C_DISC; }
            }
            if (!multi && !r->free_ && !r->intl && plan_plain(plan) && r->billable > 0) {
                int64_t b = 0;
                if (PLANS[plan].split && band_at(r->start) == B_PEAK)
                    b = voice_charge(r, plan, r->billable, 0, V_STARTBAND, 0);
                else if (band_at(r->start) == B_OFF)
                    b = voice_charge(r, plan, r->billable, 0, V_PEAK, 0);
                if (b > r->correct) { val[C_BAND] = b; cand[nc++] = C_BAND; }
            }
            if (!multi && !r->free_ && plan_plain(plan) && r->billable > 0) {
                static const int64_t add[] = {370000, 410000, 530000, 1170000};
                for (int a = 0; a < 4; a++) {
                    int64_t b = r->correct + add[a];
                    if (!r->intl && (b == voice_charge(r, plan, r->billable, 0, V_PEAK, 0) ||
                                     b == voice_charge(r, plan, r->billable, 0, V_OFF, 0) ||
                                     b == voice_charge(r, plan, r->billable, 0, V_STARTBAND, 0)))
                        continue;
                    val[C_RATE] = b; cand[nc++] = C_RATE;
                    break;
                }
            }
        } else if (r->svc == S_SMS && r->dir == 0) {
            if (r->free_) { val[C_FREE] = r->billable * SMS_PRICE; cand[nc++] = C_FREE; }
            else {
                if (r->covered > 0) { val[C_BUNDLE] = r->billable * SMS_PRICE; cand[nc++] = C_BUNDLE; }
                if (plan_plain(plan)) {
                    int segs = (int)r->billable;
                    int alt = r->chars > 70 ? (r->chars + 66) / 67 : segs + 1;
                    if (alt <= segs) alt = segs + 1;
                    val[C_SMSSEG] = alt * SMS_PRICE; cand[nc++] = C_SMSSEG;
                }
            }
        } else if (r->svc == S_DATA) {
            int64_t bytes = r->bytes;
            if (!multi && bytes == 0) { val[C_DATA0] = DATA_PRICE; cand[nc++] = C_DATA0; }
            if (!multi && bytes > 0 && r->covered > 0) {
                int64_t b = data_charge(plan, r->billable, 0, 0);
                if (b > r->correct) { val[C_BUNDLE] = b; cand[nc++] = C_BUNDLE; }
            }
            if (!multi && bytes > 0 && PLANS[plan].disc) {
                int64_t b = data_charge(plan, r->billable, 0, 1);
                if (b > r->correct) { val[C_DISC] = b; cand[nc++] = C_DISC; }
            }
            if (!multi && bytes > 0 && plan_plain(plan)) {
                int64_t b = data_charge(plan, ceil_to(r->billable, 1024), 0, 0);
                if (b <= r->correct)
                    b = data_charge(plan, ceil_to((bytes + 999) / 1000, PLANS[plan].dinc), 0, 0);
                if (b > r->correct) { val[C_DATAROUND] = b; cand[nc++] = C_DATAROUND; }
            }
        } else if (r->svc == S_VAS) {
            if (!r->sub_ok) { val[C_VAS] = VAS[r->vas].price; cand[nc++] = C_VAS; }
        }
        if (r->correct > 0 && !multi && r->dir == 0 && runi(g, 3) == 0) { val[C_LEAK] = 0; cand[nc++] = C_LEAK; }
        if (!nc) continue;
        /* categories that few records can carry are drawn more often, so a
         * small month still has every category several times */
        int rare = -1;
        for (int k = 0; k < nc; k++)
            if (cand[k] == C_PARTIAL || cand[k] == C_ZERO || cand[k] == C_DATA0 ||
                cand[k] == C_BAND || cand[k] == C_FREE || cand[k] == C_DISC || cand[k] == C_VAS)
                rare = cand[k];
        uint64_t ppm = rare == C_PARTIAL ? (uint64_t)O.errors_ppm * 20
                       : rare >= 0 ? (uint64_t)O.errors_ppm * 6 : O.errors_ppm;
        if (!rchance(g, (uint32_t)(ppm > 1000000 ? 1000000 : ppm))) continue;
        int c = rare >= 0 && runi(g, 2) ? rare : cand[runi(g, (uint64_t)nc)];
        r->inj = (uint8_t)c;
        if (c == C_PARTIAL) {
            int inc = vinc(r, plan);
            for (int j = 0; j < r->nparts; j++) {
                rec *p = &R[i + j];
                p->billed = voice_charge(r, plan, ceil_to(p->dur, inc), 0, V_NORMAL, 0);
            }
        } else {
            r->billed = val[c];
        }
    }
}

/* Duplicates: copies of sms/data/vas records (not partial, not segments).
 * Half keep the record_id, half get a new, larger one. The copy is billed
 * what the original was billed (0 if the original was free). */
static void inject_dups(rng *g)
{
    if (!O.errors_ppm) return;
    size_t n0 = NR;
    for (size_t i = 0; i < n0; i++) {
        rec *r = &R[i];
        if (r->svc == S_VOICE || r->inj || r->flags || r->call_id || r->sms_part) continue;
        if (!rchance(g, O.errors_ppm / 4)) continue;
        rec *x = newrec();
        uint64_t nid = x->id;
        r = &R[i];
        *x = *r;
        x->id = runi(g, 2) ? r->id : nid;
        x->dup = 1;
        x->inj = C_DUP;
        x->correct = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Row formatting.                                                      */
static char *put_id(char *p, uint64_t id, char pre)
{
    *p++ = pre;
    p = put_padu(p, (uint64_t)O.year * 100 + (uint64_t)O.month, 6);
    return put_padu(p, id, 10);
}
static size_t format_row(const sub *s, const rec *r, char *buf, int fault, rng *fg)
{
    char *p = buf;
    int svc = r->svc;
    if (fault == 5) { *p++ = '"'; p = put_id(p, r->id, 'F'); *p++ = '"'; *p++ = 'x'; }
    else p = put_id(p, r->id, fault ? 'F' : 'R');
    *p++ = ',';
    if (fault == 6) {
    } else if (fault == 7) {
        memcpy(p, s->msisdn, 5); p += 5; *p++ = '\0'; p = put_s(p, s->msisdn + 5);
    } else {
        if (r->msfmt == 1) p = put_s(p, "86");
        p = put_s(p, s->msisdn);
    }
    *p++ = ',';
    if (fault == 8) svc = S_VOICE;
    if (fault == 9) svc = S_DATA;
    if (fault == 3) { static const char *const u[] = {"fax", "ussd", "mms2"}; p = put_s(p, u[runi(fg, 3)]); }
    else p = put_s(p, SVC_NAME[svc]);
    *p++ = ',';
    p = put_s(p, r->dir ? "mt" : "mo");
    *p++ = ',';
    if (fault == 9) p = put_s(p, "cmnet\xC3\x28");
    else {
        if (r->peerfmt == 1) p = put_s(p, "+86");
        else if (r->peerfmt == 2) p = put_s(p, "86");
        p = put_s(p, r->peer);
    }
    *p++ = ',';
    p = put_u(p, r->cell);
    *p++ = ',';
    if (fault == 1) {
        static const char *const bt[] = {"2026-13-05 10:00:00", "2026-10-05 25:10:00", "05/10/2026 10:00",
                                         "2026-02-30 08:00:00", "2026-10-05"};
        p = put_s(p, bt[runi(fg, 5)]);
    } else p = put_time(p, r->start);
    *p++ = ',';
    if (fault == 8) p = put_i(p, -rrange(fg, 1, 600));
    else if (svc == S_VOICE) p = put_i(p, r->dur);
    *p++ = ',';
    if (svc == S_DATA) p = put_i(p, r->bytes < 0 ? 1000 : r->bytes);
    *p++ = ',';
    if (svc == S_SMS) p = put_i(p, r->chars);
    *p++ = ',';
    if (r->sms_ref && svc == S_SMS) {
        p = put_u(p, r->sms_ref); *p++ = ',';
        p = put_u(p, (uint64_t)r->sms_part); *p++ = ',';
        p = put_u(p, (uint64_t)r->sms_parts); *p++ = ',';
    } else {
        *p++ = ','; *p++ = ','; *p++ = ',';
    }
    if (r->call_id) { *p++ = 'C'; p = put_padu(p, r->call_id, 10); *p++ = ','; p = put_u(p, (uint64_t)r->pseq); }
    else *p++ = ',';
    *p++ = ',';
    if (fault == 2) { static const char *const bm[] = {"0.1O", "1.2.0", "0.1234567", "abc", "1e2"}; p = put_s(p, bm[runi(fg, 5)]); }
    else p = put_money(p, r->billed);
    if (fault != 4) {
        *p++ = ',';
        p = put_s(p, "BJMSC");
        p = put_padu(p, r->cell % 17, 2);
    } else if (runi(fg, 2)) {
        p = put_s(p, ",BJMSC01,extra");
    }
    *p++ = '\n';
    return (size_t)(p - buf);
}

/* The month in an input profile's layout (--profile). */
#include "cdrgen_profile.h"

/* ------------------------------------------------------------------ */
/* Truth.                                                              */
static void write_truth(const sub *s)
{
    char mon[8], a[32], b[32], c[32], idb[24];
    snprintf(mon, sizeof mon, "%04d-%02d", O.year, O.month);
    int64_t over = 0;
    int nrec = 0, cats = 0, flagged = 0;
    for (size_t i = 0; i < NR; i++) {
        rec *r = &R[i];
        flagged |= r->flags != 0;
        if (!r->inj && !r->flags) continue;
        if (r->pseq > 1) continue;
        int64_t billed = r->billed;
        if (r->nparts > 1)
            for (int j = 1; j < r->nparts; j++) billed += R[i + j].billed;
        int64_t diff = billed - r->correct;
        int cat = r->inj;
        if (cat == 0 && r->flags == 0) continue;
        if (cat && cat != C_DUP && diff == 0) continue; /* cannot happen; be safe */
        if (cat && cat != C_DUP && cat != C_LEAK && diff <= 0) die("internal: injected %s not an overcharge", CAT_NAME[cat]);
        if (cat == C_LEAK && diff >= 0) die("internal: leakage not an undercharge");
        *put_id(idb, r->id, 'R') = 0;
        a[cdr_money_format(billed, 2, a)] = 0;
        b[cdr_money_format(r->correct, 2, b)] = 0;
        c[cdr_money_format(diff, 2, c)] = 0;
        if (F_truth)
            fprintf(F_truth, "%s,%s,%s,%s,%s,%s,%s,%s\n", s->msisdn, mon, idb, CAT_NAME[cat],
                    r->flags == F_OVERLAP ? "overlap" : r->flags == F_OVERLONG ? "overlong" : "",
                    a, b, c);
        n_truth++;
        cat_count[cat]++;
        if (r->flags) n_flag[r->flags]++;
        if (diff > 0) { over += diff; nrec++; cats |= 1 << cat; }
    }
    if (over > 0 && F_cand) {
        /* categories sorted by name */
        const char *names[C__N];
        int n = 0;
        for (int c2 = 1; c2 < C__N; c2++) if (cats & (1 << c2)) names[n++] = CAT_NAME[c2];
        for (int x = 1; x < n; x++)
            for (int y = x; y > 0 && strcmp(names[y - 1], names[y]) > 0; y--) {
                const char *t = names[y]; names[y] = names[y - 1]; names[y - 1] = t;
            }
        a[cdr_money_format(over, 2, a)] = 0;
        b[cdr_money_format(2 * over, 2, b)] = 0;
        fprintf(F_cand, "%s,%s,%d,%s,%s,", s->msisdn, mon, nrec, a, b);
        for (int x = 0; x < n; x++) fprintf(F_cand, "%s%s", x ? ";" : "", names[x]);
        int first;
        const char *policy, *why = oracle_policy(s, s->special, flagged, (cats >> C_VAS) & 1,
                                                 &first, &policy);
        fprintf(F_cand, ",%d,%d,%s,\"%s\"\n", s->special, oracle_tier(2 * over, first), policy,
                why);
    }
}

/* ------------------------------------------------------------------ */
/* Tariff tables.                                                       */
static FILE *topen(const char *dir, const char *name, const char *header)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die("%s: %s", path, strerror(errno));
    fputs(header, f);
    return f;
}
static void tclose(FILE *f)
{
    if (f && fclose(f) != 0) die("tariff write: %s", strerror(errno));
}
static void money_s(int64_t v, char *buf) { buf[cdr_money_format(v, 2, buf)] = 0; }

static void write_static_tariff(const char *dir)
{
    char a[32], b[32];
    FILE *f = topen(dir, "plans.csv", "plan,monthly_fee,rounding,sms_single_chars,sms_part_chars,band_rule\n");
    for (int p = 0; p < P__N; p++)
        fprintf(f, "%s,%s,0.01,%d,%d,%s\n", PLANS[p].name, PLANS[p].fee, PLANS[p].single,
                PLANS[p].part, PLANS[p].split ? "split" : "start");
    tclose(f);
    f = topen(dir, "bands.csv", "band,days,from,to\n");
    fputs("peak,weekday,07:00,23:00\noffpeak,weekday,23:00,24:00\noffpeak,weekday,00:00,07:00\n"
          "offpeak,weekend,00:00,24:00\n", f);
    tclose(f);
    f = topen(dir, "rates.csv", "plan,service,direction,prefix,band,price,unit,increment,pool\n");
    for (int p = 0; p < P__N; p++) {
        const char *n = PLANS[p].name;
        int pool = has_pool(p);
        money_s(PLANS[p].peak, a); money_s(PLANS[p].off, b);
        fprintf(f, "%s,voice,mo,*,peak,%s,60,%d,%s\n", n, a, PLANS[p].vinc, pool ? "voice" : "");
        fprintf(f, "%s,voice,mo,*,offpeak,%s,60,%d,%s\n", n, b, PLANS[p].vinc, pool ? "voice" : "");
        for (int i = 0; i < N_INTL; i++) {
            money_s(INTL[i].price, a);
            fprintf(f, "%s,voice,mo,%s,*,%s,60,%d,\n", n, INTL[i].prefix, a, INTL_INC);
        }
        fprintf(f, "%s,voice,mt,*,*,0,60,%d,\n", n, PLANS[p].vinc);
        fprintf(f, "%s,sms,mo,*,*,0.10,1,1,%s\n", n, pool ? "sms" : "");
        fprintf(f, "%s,sms,mt,*,*,0,1,1,\n", n);
        fprintf(f, "%s,data,mo,*,*,0.29,1024,%d,%s\n", n, PLANS[p].dinc, pool ? "data" : "");
        for (int i = 0; i < N_VAS; i++) {
            money_s(VAS[i].price, a);
            fprintf(f, "%s,vas,mo,%s,*,%s,1,1,\n", n, VAS[i].code, a);
        }
    }
    tclose(f);
    f = topen(dir, "bundles.csv", "plan,pool,allowance,unit\n");
    for (int p = 0; p < P__N; p++) {
        if (!has_pool(p)) continue;
        fprintf(f, "%s,voice,%lld,min\n%s,sms,%lld,seg\n%s,data,%lld,MB\n", PLANS[p].name,
                (long long)PLANS[p].vmin, PLANS[p].name, (long long)PLANS[p].sseg, PLANS[p].name,
                (long long)PLANS[p].dmb);
    }
    tclose(f);
    f = topen(dir, "discounts.csv", "plan,service,percent\n");
    for (int p = 0; p < P__N; p++)
        if (PLANS[p].disc)
            fprintf(f, "%s,voice,%d\n%s,data,%d\n", PLANS[p].name, PLANS[p].disc, PLANS[p].name, PLANS[p].disc);
    tclose(f);
    f = topen(dir, "free_numbers.csv", "prefix,label\n");
    for (int i = 0; i < N_FREE; i++) fprintf(f, "%s,%s\n", FREE[i].prefix, FREE[i].label);
    tclose(f);
}

/* ------------------------------------------------------------------ */
static void usage(FILE *f)
{
    fputs("usage: cdrgen [options]\n"
          "  --seed N              PRNG seed (default 1)\n"
          "  --month YYYY-MM       bill month (default 2026-10)\n"
          "  --days D              only the first D days of the month (default: all)\n"
          "  --rows N              approximate number of CDR rows (default 10000)\n"
          "  --subscribers N       number of subscribers (default rows/40)\n"
          "  --tariff DIR          write the tariff directory (created if missing)\n"
          "  -o FILE               one CDR file ('-' = stdout; .gz = gzip)\n"
          "  --out-dir DIR         CDR files go to DIR ...\n"
          "  --files K             ... as K files cdr-001.csv.gz ... (default 1)\n"
          "  --names A,B,...       ... or with these names (.gz names are gzip)\n"
          "  --by-day              ... or one file per start day, cdr-YYYY-MM-DD.csv.gz, as a\n"
          "                        switch delivers them night by night, and cdr-YYYY-MM-late.csv.gz\n"
          "  --late RATE           with --by-day: this fraction of the rows goes to the late file\n"
          "  --level L             gzip level 1..9 (default 6)\n"
          "  --block N             rows shuffled together (default 262144)\n"
          "  --errors RATE         fraction of records with an injected billing error (0..1)\n"
          "  --truth FILE          injected findings (needs --errors)\n"
          "  --truth-candidates FILE  expected refund candidates\n"
          "  --faults RATE         fraction of extra malformed rows (0..1)\n"
          "  --faults-out FILE     their list: file,line,kind\n"
          "  --bundle-changes      subscribers also change between bundle plans mid-month\n"
          "  --refund-edges        earlier refunds at every edge of the special-customer,\n"
          "                        tier and policy rules; join dates at the 1-year edge\n"
          "  --same-second         group SMS and parallel data sessions: records that\n"
          "                        differ only in the peer (not duplicates)\n"

          "  --profile FILE        write the CDR files in this input profile's layout\n"
          "                        (docs/profiles.md; the month and the truth are the same)\n", f);
}

static uint32_t parse_rate(const char *s, const char *opt)
{
    /* decimal 0..1 with up to 6 fractional digits, parsed exactly */
    cdr_money v;
    if (cdr_money_parse(s, strlen(s), &v) != CDR_OK || v < 0 || v > CDR_MICRO)
        die("%s: want a fraction 0..1, got '%s'", opt, s);
    return (uint32_t)v;
}
static uint64_t parse_u(const char *s, const char *opt)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || e == s || s[0] == '-') die("%s: bad number '%s'", opt, s);
    return v;
}

int main(int argc, char **argv)
{
    O.seed = 1;
    O.level = 6;
    O.rows = 10000;
    O.block = 262144;
    O.files = 1;
    O.year = 2026;
    O.month = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), ""))
        if (!strcmp(a, "--seed")) O.seed = parse_u(ARG(), a);
        else if (!strcmp(a, "--month")) {
            const char *v = ARG();
            if (strlen(v) != 7 || sscanf(v, "%4d-%2d", &O.year, &O.month) != 2 || O.month < 1 ||
                O.month > 12 || O.year < 1971 || O.year > 9998)
                die("--month: want YYYY-MM");
        } else if (!strcmp(a, "--days")) O.days = (int)parse_u(ARG(), a);
        else if (!strcmp(a, "--rows")) O.rows = parse_u(ARG(), a);
        else if (!strcmp(a, "--subscribers")) O.subscribers = parse_u(ARG(), a);
        else if (!strcmp(a, "--tariff")) O.tariff = ARG();
        else if (!strcmp(a, "-o")) O.out = ARG();
        else if (!strcmp(a, "--out-dir")) O.out_dir = ARG();
        else if (!strcmp(a, "--files")) O.files = (int)parse_u(ARG(), a);
        else if (!strcmp(a, "--names")) O.names = ARG();
        else if (!strcmp(a, "--by-day")) O.by_day = 1;
        else if (!strcmp(a, "--late")) O.late_ppm = parse_rate(ARG(), a);
        else if (!strcmp(a, "--level")) O.level = (int)parse_u(ARG(), a);
        else if (!strcmp(a, "--block")) O.block = parse_u(ARG(), a);
        else if (!strcmp(a, "--errors")) O.errors_ppm = parse_rate(ARG(), a);
        else if (!strcmp(a, "--faults")) O.faults_ppm = parse_rate(ARG(), a);
        else if (!strcmp(a, "--truth")) O.truth = ARG();
        else if (!strcmp(a, "--truth-candidates")) O.cand = ARG();
        else if (!strcmp(a, "--faults-out")) O.faults_out = ARG();
        else if (!strcmp(a, "--bundle-changes")) O.bundle_changes = 1;
        else if (!strcmp(a, "--refund-edges")) O.refund_edges = 1;
        else if (!strcmp(a, "--same-second")) O.same_second = 1;
        else if (!strcmp(a, "--profile")) GP.path = ARG();
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else { usage(stderr); die("unknown option '%s'", a); }
#undef ARG
    }
    if (O.level < 1 || O.level > 9) die("--level: 1..9");
    if (O.files < 1 || O.files > 1000) die("--files: 1..1000");
    if (O.block < 1) O.block = 1;
    int mdays = (int)(days_from_civil(O.month == 12 ? O.year + 1 : O.year, O.month == 12 ? 1 : O.month + 1, 1) -
                      days_from_civil(O.year, O.month, 1));
    if (O.days <= 0 || O.days > mdays) O.days = mdays;
    O.t0 = days_from_civil(O.year, O.month, 1) * 86400;
    O.t_end = O.t0 + (int64_t)O.days * 86400;
    if (!O.subscribers) O.subscribers = O.rows / 40 ? O.rows / 40 : 1;
    if (O.subscribers > 100000000ULL) die("--subscribers: at most 10^8");

    if (GP.path) {
        if (O.faults_ppm) die("--faults with --profile: malformed rows are written in the contract's layout only");
        gp_load(GP.path);
    }
    /* outputs */
    if (O.out && (O.out_dir || O.names)) die("-o and --out-dir/--names are exclusive");
    if (O.by_day && (!O.out_dir || O.names)) die("--by-day needs --out-dir (and no --names)");
    if (O.out) {
        N_OUT = 1;
        OUT = calloc(1, sizeof *OUT);
        out_open(&OUT[0], O.out);
    } else if (O.out_dir) {
        mkdir(O.out_dir, 0777);
        char path[4096];
        if (O.by_day) {
            N_OUT = O.days + 1;
            OUT = calloc((size_t)N_OUT, sizeof *OUT);
            for (int k = 0; k < O.days; k++) {
                snprintf(path, sizeof path, "%s/cdr-%04d-%02d-%02d.csv.gz", O.out_dir, O.year,
                         O.month, k + 1);
                out_open(&OUT[k], path);
            }
            snprintf(path, sizeof path, "%s/cdr-%04d-%02d-late.csv.gz", O.out_dir, O.year,
                     O.month);
            out_open(&OUT[O.days], path);
        } else if (O.names) {
            char *list = strdup(O.names), *save = NULL;
            N_OUT = 0;
            OUT = calloc(1000, sizeof *OUT);
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (N_OUT == 1000) die("--names: too many");
                snprintf(path, sizeof path, "%s/%s", O.out_dir, t);
                out_open(&OUT[N_OUT++], path);
            }
            free(list);
            if (!N_OUT) die("--names: empty");
        } else {
            N_OUT = O.files;
            OUT = calloc((size_t)N_OUT, sizeof *OUT);
            for (int k = 0; k < N_OUT; k++) {
                snprintf(path, sizeof path, "%s/cdr-%03d.csv.gz", O.out_dir, k + 1);
                out_open(&OUT[k], path);
            }
        }
    } else if (!O.tariff) {
        usage(stderr);
        die("nothing to do: give -o, --out-dir or --tariff");
    }
    WB = calloc((size_t)(N_OUT ? N_OUT : 1), sizeof *WB);
    for (int k = 0; k < N_OUT; k++) {
        WB[k].p = xmalloc(WBSZ);
        if (GP.on)
            gp_header(k);
        else
            wb_put(k, HEADER, sizeof HEADER - 1);
        OUT[k].line = 1;
    }
    if (O.faults_out) {
        F_faults = fopen(O.faults_out, "w");
        if (!F_faults) die("%s: %s", O.faults_out, strerror(errno));
        fputs("file,line,kind\n", F_faults);
    }
    if (O.truth) {
        F_truth = fopen(O.truth, "w");
        if (!F_truth) die("%s: %s", O.truth, strerror(errno));
        fputs("msisdn,month,record_id,category,flags,billed,rebuilt,difference\n", F_truth);
    }
    if (O.cand) {
        F_cand = fopen(O.cand, "w");
        if (!F_cand) die("%s: %s", O.cand, strerror(errno));
        fputs("msisdn,month,records,overcharge,refund,categories,special,tier,policy,policy_reason\n",
              F_cand);
    }
    if (O.tariff) {
        mkdir(O.tariff, 0777);
        write_static_tariff(O.tariff);
        F_subs = topen(O.tariff, "subscribers.csv", "msisdn,plan,valid_from,valid_to,vip,join_date\n");
        F_subscr = topen(O.tariff, "subscriptions.csv", "msisdn,service_code,valid_from,valid_to\n");
        F_ref = topen(O.tariff, "refunds.csv", "msisdn,date,amount,company_liable,border_roaming\n");
    }
    rng_init(&G_ship, O.seed, 0xF11E5ULL);
    rng_init(&G_fault, O.seed, 0xFA017ULL);

    uint64_t avg = O.rows / O.subscribers ? O.rows / O.subscribers : 1;
    char rowbuf[2048];
    for (uint64_t si = 0; si < O.subscribers; si++) {
        rng g;
        sub s;
        rng_init(&g, O.seed, si + 1);
        make_sub(si, &g, &s);
        {
            rng gr;
            rng_init(&gr, O.seed ^ 0x5EF0D5ULL, si + 1);
            write_sub_tables(&s, &gr);
        }
        if (!N_OUT) continue;
        uint64_t ne = avg * (uint64_t)rrange(&g, 30, 170) / 100;
        if (s.heavy) ne = ne * 3 / 2;
        ne = ne * 100 / 127; /* parts, segments, overlaps and duplicates add ~27% rows */
        if (ne < 2) ne = 2;
        NR = 0;
        gen_events(&s, &g, ne);
        if (!NR) continue;
        for (size_t i = 0; i < NR; i++) {
            R[i].cell = (uint32_t)rrange(&g, 10000, 65535);
            if (runi(&g, 100) < 2) R[i].msfmt = 1;
        }
        inject_structural(&s, &g);
        rate_all(&s);
        inject_billing(&g);
        inject_dups(&g);
        write_truth(&s);
        /* format and queue the rows */
        for (size_t i = 0; i < NR; i++) {
            int fi;
            if (O.by_day) {
                /* the file of the start day, or (held back) the late file */
                int64_t d = (R[i].start - O.t0) / 86400;
                fi = d < 0 ? 0 : d >= O.days ? O.days - 1 : (int)d;
                if (O.late_ppm && rchance(&G_ship, O.late_ppm))
                    fi = O.days;
            } else {
                fi = (int)runi(&G_ship, (uint64_t)N_OUT);
            }
            size_t len = GP.on ? gp_format_row(&s, &R[i], rowbuf)
                               : format_row(&s, &R[i], rowbuf, 0, NULL);
            memcpy(block_reserve(len), rowbuf, len);
            block_add(len, fi, 0);
            n_rows++;
            if (O.faults_ppm && rchance(&G_fault, O.faults_ppm)) {
                int kind = (int)rrange(&G_fault, 1, N_FAULT_KINDS);
                int ff = O.by_day ? fi : (int)runi(&G_fault, (uint64_t)N_OUT);
                len = format_row(&s, &R[i], rowbuf, kind, &G_fault);
                memcpy(block_reserve(len), rowbuf, len);
                block_add(len, ff, kind);
                n_faults++;
            }
        }
        if (B_nrows >= O.block) block_flush();
    }
    block_flush();
    for (int k = 0; k < N_OUT; k++) {
        if (GP.on)
            gp_trailer(k, OUT[k].line - 1);
        out_write(&OUT[k], WB[k].p, WB[k].n, 0);
        out_close(&OUT[k]);
    }
    if (F_faults && fclose(F_faults)) die("faults-out: %s", strerror(errno));
    if (F_truth && fclose(F_truth)) die("truth: %s", strerror(errno));
    if (F_cand && fclose(F_cand)) die("truth-candidates: %s", strerror(errno));
    tclose(F_subs); tclose(F_subscr); tclose(F_ref);
    fprintf(stderr, "cdrgen: %llu subscribers, %llu rows, %llu fault rows, %llu truth rows",
            (unsigned long long)O.subscribers, (unsigned long long)n_rows,
            (unsigned long long)n_faults, (unsigned long long)n_truth);
    for (int c = 1; c < C__N; c++)
        if (cat_count[c]) fprintf(stderr, ", %s %llu", CAT_NAME[c], (unsigned long long)cat_count[c]);
    fprintf(stderr, ", overlap %llu, overlong %llu\n", (unsigned long long)n_flag[F_OVERLAP],
            (unsigned long long)n_flag[F_OVERLONG]);
    return 0;
}
