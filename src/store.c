/*
 * cdrecon — the per-subscriber store (include/cdrecon/store.h,
 * docs/investigate.md for the file layout).
 *
 * Format 2. A statement is a header (number, month, subscriber facts,
 * candidate, record count) and its records, each serialised field by field
 * with per-statement state (see "statement serialisation" below): varints
 * (LEB128, signed ones zigzagged), deltas, dictionary references for
 * repeated strings, identifiers as head + numeric tail. Totals and pool
 * summaries are recomputed by cdr_stmt_finish on reading. The writer takes
 * each record straight from the engine (rated_rec: no copy, no malloc).
 * The encoding and compression are done by encoders ("writer" below): the
 * writer's own for its serial calls, and store parts that `cdrecon run`
 * fills on its rating workers, one per engine bucket, then appends in
 * bucket order (each part starts a new block).
 * Integers in the file header, block headers, index entries and footer are
 * little-endian.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#if defined(__has_include)
#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#define HAVE_ISAL 1
/* Weak: a program linked without -lisal gets NULL and zlib's deflate. */
#pragma weak isal_deflate_stateless
#pragma weak isal_deflate_stateless_init
#pragma weak crc32_gzip_refl
#endif
#endif

#include "cdrecon/engine.h"
#include "cdrecon/outdir.h"
#include "cdrecon/store.h"
#include "swar.h"
#include "tmpdir.h"

#define FILE_MAGIC "CDRSTOR1"
#define FOOT_MAGIC "CDRSIDX1"
#define BLOCK_MAGIC 0x424b4443u /* "CDKB" */
#define HDR_FIXED 20            /* magic 8, version 4, meta length 4, crc 4 (+ meta) */
#define BLOCK_HDR 20            /* magic, clen, ulen, CRC of the data, CRC of header+zdata */
#define ENTRY_SIZE 64
#define FOOT_SIZE 64
#define META_MAX 4096
#define BLOCK_MAX (64u << 20)   /* refuse blocks claiming more than this */

/* ---------------------------------------------------------------- */
/* little-endian fixed fields                                        */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
/* CRC-32 (the gzip/zlib polynomial; ISA-L's is the same function as zlib's
 * crc32(), several times faster). */
static uint32_t crc_more(uint32_t c, const void *p, size_t n)
{
#ifdef HAVE_ISAL
    if (crc32_gzip_refl)
        return crc32_gzip_refl(c, p, n);
#endif
    const uint8_t *b = p;
    uLong z = c;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        z = crc32(z, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)z;
}
static uint32_t crc(const void *p, size_t n)
{
    return crc_more(0, p, n);
}

/* ---------------------------------------------------------------- */
/* growable byte buffer and the varint encoding                      */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} buf;

static int buf_grow(buf *b, size_t more)
{
    if (b->oom)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Room for `more` bytes (the fast path inline; oom keeps cap at n). */
static inline int buf_reserve(buf *b, size_t more)
{
    if (b->cap - b->n >= more)
        return 0;
    return buf_grow(b, more);
}

static void put_bytes(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) == 0) {
        memcpy(b->p + b->n, p, n);
        b->n += n;
    }
}

static inline void put_uv(buf *b, uint64_t v)
{
    if (buf_reserve(b, 10))
        return;
    uint8_t *q = b->p + b->n;
    while (v >= 0x80) {
        *q++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *q++ = (uint8_t)v;
    b->n = (size_t)(q - b->p);
}

static void put_sv(buf *b, int64_t v)
{
    put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A string; "same as prev" when prev is given and equal. NULL is "". */
/* Decoding cursor: any overrun or bad value sets bad. */
typedef struct cur {
    const uint8_t *p, *end;
    int bad;
    const char *why;
} cur;

static void cur_fail(cur *c, const char *why)
{
    if (!c->bad) {
        c->bad = 1;
        c->why = why;
    }
}

static uint64_t get_uv(cur *c)
{
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (c->p >= c->end) {
            cur_fail(c, "statement ends inside a number");
            return 0;
        }
        uint8_t x = *c->p++;
        v |= (uint64_t)(x & 0x7f) << sh;
        if (!(x & 0x80))
            return v;
    }
    cur_fail(c, "number longer than 64 bits");
    return 0;
}

static int64_t get_sv(cur *c)
{
    uint64_t u = get_uv(c);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}


static int fits_i32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* wrapping arithmetic (every int64 round-trips through a delta) */
static int64_t wsub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}
static int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* ---------------------------------------------------------------- */
/* statement serialisation (format 2)                                 */

#define DICT_MAX 32     /* values remembered per field and statement */
#define ID_DIGITS 18    /* longest numeric tail of an identifier taken as a number */
#define MONEY_ESC (1ull << 62)

_Static_assert(CDR_RS__COUNT <= 16, "record status must fit in 4 bits");
_Static_assert(CDR_SVC__COUNT <= 4, "service must fit in 2 bits");

/* Strings of few distinct values: reference to an earlier value of the same
 * field in the statement, or a literal (remembered while the dictionary has
 * room). Offsets are relative to the coder's base (encoder: the records
 * buffer; decoder: the statement's bytes). */
enum { D_FILE, D_MSISDN, D_PLAN, D_BAND, D_POOL, D_CATEGORY, D_EXPL, D__COUNT };
/* Identifiers: the head (as a dictionary string) and a numeric tail of up
 * to 18 digits, kept as a number delta-coded against the field's last one. */
enum { I_RECORD_ID, I_PEER, I_DUP_OF, I_CALL_ID, I_SMS_REF, I_EXTRA, I__COUNT = I_EXTRA + 8 };
/* The unknown columns "name=value;name=value" go as their ';'-separated
 * pieces, each an identifier (piece i in slot I_EXTRA + min(i, 7)). */

/* A record's strings, in this order (pointer and length, no NUL inside). */
enum { F_FILE, F_RECORD_ID, F_MSISDN, F_PEER, F_DUP_OF, F_CALL_ID, F_SMS_REF, F_PLAN, F_BAND,
       F_POOL, F_CATEGORY, F_EXPL, F_EXTRA, F__COUNT };

typedef struct dict {
    uint32_t n;
    uint32_t last; /* the entry found last (checked first; valid if < n) */
    size_t off[DICT_MAX];
    size_t len[DICT_MAX];
} dict;

typedef struct rate_key {
    uint32_t line;
    int64_t price, unit, increment;
} rate_key;

typedef struct codec {
    dict d[D__COUNT];
    dict head[I__COUNT];
    uint64_t tail[I__COUNT];
    int64_t prev_start;
    uint32_t n_rates;
    rate_key rates[DICT_MAX];
} codec;

static void codec_reset(codec *k)
{
    for (int i = 0; i < D__COUNT; i++)
        k->d[i].n = 0;
    for (int i = 0; i < I__COUNT; i++) {
        k->head[i].n = 0;
        k->tail[i] = 0;
    }
    k->prev_start = 0;
    k->n_rates = 0;
}

static const uint64_t pow10u[ID_DIGITS + 1] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull};

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static int64_t unzz(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Money: whole fen (most amounts) in fewer bytes. Even codes below 2^52 are
 * fen, odd codes micro-yuan, MONEY_ESC then a raw number for the rest. */
static void put_money(buf *b, int64_t v)
{
    if (v % 10000 == 0) {
        put_uv(b, zz(v / 10000) << 1);
    } else {
        uint64_t z = zz(v);
        if (z < (1ull << 63)) {
            put_uv(b, (z << 1) | 1);
        } else {
            put_uv(b, MONEY_ESC);
            put_uv(b, z);
        }
    }
}

/* a == b over n bytes; short strings without a library call */
static inline int eqn(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    if (n > 16)
        return memcmp(x, y, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return 0;
    return 1;
}

/* Index of s (n bytes) in d, or -1. The entries are distinct (added only
 * when not found), so the one found last, tried first, is the answer when
 * it matches: a statement's ids mostly share one head ("R", "C", ""). */
static int dict_find(dict *d, const uint8_t *base, const char *s, size_t n)
{
    uint32_t l = d->last;
    if (l < d->n && d->len[l] == n && eqn(base + d->off[l], s, n))
        return (int)l;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->len[i] == n && eqn(base + d->off[i], s, n)) {
            d->last = i;
            return (int)i;
        }
    return -1;
}

static void dict_add(dict *d, size_t off, size_t n)
{
    if (d->n < DICT_MAX) {
        d->off[d->n] = off;
        d->len[d->n] = n;
        d->n++;
    }
}

/* A dictionary string: varint (index << 1 | 1), or varint (len << 1) + bytes. */
static void enc_dstr(buf *b, dict *d, cdr_str v)
{
    const char *s = v.p;
    size_t n = v.n;
    int i = b->oom ? -1 : dict_find(d, b->p, s, n);
    if (i >= 0) {
        put_uv(b, ((uint64_t)i << 1) | 1);
        return;
    }
    put_uv(b, (uint64_t)n << 1);
    size_t off = b->n;
    put_bytes(b, s, n);
    if (!b->oom)
        dict_add(d, off, n);
}

/* An identifier: varint (head code << 5 | digits), head bytes if literal,
 * then the tail's delta if it has digits. */
/* Eight bytes that are all ASCII digits (exact). */
static inline int all_digits8(uint64_t x)
{
    return ((x & 0xF0F0F0F0F0F0F0F0ull) |
            (((x + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) ==
           0x3333333333333333ull;
}

/* The value of eight ASCII digits loaded little-endian (the first digit in
 * the low byte). */
static inline uint64_t eight_digits(uint64_t x)
{
    x -= 0x3030303030303030ull;
    x = x * 10 + (x >> 8); /* pairs */
    x = (((x & 0x000000FF000000FFull) * 0x000F424000000064ull) +
         (((x >> 16) & 0x000000FF000000FFull) * 0x0000271000000001ull)) >>
        32;
    return x;
}

/* The length of the digit tail of s (at most ID_DIGITS bytes) and its value:
 * eight bytes at a time where they are all digits (ids are mostly digits:
 * byte by byte this was most of enc_id's time). */
static size_t id_tail(const char *s, size_t n, uint64_t *value)
{
    size_t j = n;
    while (j >= 8 && n - j + 8 <= ID_DIGITS) {
        uint64_t x;
        memcpy(&x, s + j - 8, 8);
        if (!all_digits8(x))
            break;
        j -= 8;
    }
    while (j > 0 && s[j - 1] >= '0' && s[j - 1] <= '9' && n - j < ID_DIGITS)
        j--;
    size_t i = j;
    uint64_t v = 0;
    for (; (n - i) % 8; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    for (; i < n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        v = v * 100000000ull + eight_digits(x);
    }
    *value = v;
    return n - j;
}

static void enc_id(buf *b, codec *k, int f, cdr_str str)
{
    const char *s = str.p;
    size_t n = str.n;
    uint64_t v;
    size_t nd = id_tail(s, n, &v);
    size_t j = n - nd;
    dict *d = &k->head[f];
    int i = b->oom ? -1 : dict_find(d, b->p, s, j);
    if (i >= 0) {
        put_uv(b, ((((uint64_t)i << 1) | 1) << 5) | nd);
    } else {
        put_uv(b, (((uint64_t)j << 1) << 5) | nd);
        size_t off = b->n;
        put_bytes(b, s, j);
        if (!b->oom)
            dict_add(d, off, j);
    }
    if (nd) {
        put_sv(b, (int64_t)(v - k->tail[f]));
        k->tail[f] = v;
    }
}

static void enc_rate(buf *b, codec *k, const cdr_stmt_rec *r)
{
    for (uint32_t i = 0; i < k->n_rates; i++) {
        const rate_key *q = &k->rates[i];
        if (q->line == r->rate_line && q->price == r->price && q->unit == r->unit &&
            q->increment == r->increment) {
            put_uv(b, (uint64_t)i + 1);
            return;
        }
    }
    put_uv(b, 0);
    put_uv(b, r->rate_line);
    put_money(b, r->price);
    put_sv(b, r->unit);
    put_sv(b, r->increment);
    if (k->n_rates < DICT_MAX)
        k->rates[k->n_rates++] = (rate_key){r->rate_line, r->price, r->unit, r->increment};
}

static const char *s_or_empty(const char *s)
{
    return s ? s : "";
}

static void enc_extra(buf *b, codec *k, cdr_str v)
{
    if (v.n == 0) {
        put_uv(b, 0);
        return;
    }
    size_t pieces = 1;
    for (const char *q = v.p; (q = cdr_find_byte(q, v.n - (size_t)(q - v.p), ';')) != NULL; q++)
        pieces++;
    put_uv(b, pieces);
    const char *p = v.p, *end = v.p + v.n;
    for (size_t i = 0; i < pieces; i++) {
        const char *q = cdr_find_byte(p, (size_t)(end - p), ';');
        if (!q)
            q = end;
        enc_id(b, k, I_EXTRA + (i < 7 ? (int)i : 7), (cdr_str){p, (size_t)(q - p)});
        p = q + 1;
    }
}

/* One record: the numbers of r and the strings s[F__COUNT] (r's string
 * pointers are not read). -1 if an enumerated value cannot be represented. */
static int enc_rec(buf *b, codec *k, const cdr_stmt_rec *r, const cdr_str *s,
                   const char *s_msisdn, size_t s_len, cdr_month s_month)
{
    if ((unsigned)r->status >= CDR_RS__COUNT || (unsigned)r->service >= CDR_SVC__COUNT ||
        (unsigned)r->direction > CDR_DIR_MT)
        return -1;
    uint64_t other = r->month != s_month || s[F_MSISDN].n != s_len ||
                     !eqn(s[F_MSISDN].p, s_msisdn, s_len);
    put_uv(b, (uint64_t)r->status | (uint64_t)r->service << 4 | (uint64_t)r->direction << 6 |
                  (uint64_t)(r->has_rebuilt != 0) << 7 | other << 8 | (uint64_t)r->flags << 9);
    if (other) {
        enc_dstr(b, &k->d[D_MSISDN], s[F_MSISDN]);
        put_sv(b, wsub(r->month, s_month));
    }
    enc_dstr(b, &k->d[D_FILE], s[F_FILE]);
    put_uv(b, r->line);
    put_uv(b, r->offset);
    enc_id(b, k, I_RECORD_ID, s[F_RECORD_ID]);
    enc_id(b, k, I_PEER, s[F_PEER]);
    put_sv(b, wsub(r->start, k->prev_start));
    k->prev_start = r->start;
    put_sv(b, r->amount);
    put_sv(b, wsub(r->usage, r->amount));
    put_sv(b, wsub(r->billable, r->usage));
    put_sv(b, wsub(r->covered, r->billable));
    put_money(b, r->billed);
    put_money(b, r->rebuilt);
    put_sv(b, wsub(r->difference, r->has_rebuilt ? wsub(r->billed, r->rebuilt) : 0));
    enc_id(b, k, I_DUP_OF, s[F_DUP_OF]);
    put_uv(b, r->parts);
    enc_id(b, k, I_CALL_ID, s[F_CALL_ID]);
    put_sv(b, r->partial_seq);
    enc_id(b, k, I_SMS_REF, s[F_SMS_REF]);
    put_sv(b, r->sms_part);
    put_sv(b, r->sms_parts);
    enc_dstr(b, &k->d[D_PLAN], s[F_PLAN]);
    enc_rate(b, k, r);
    enc_dstr(b, &k->d[D_BAND], s[F_BAND]);
    enc_dstr(b, &k->d[D_POOL], s[F_POOL]);
    put_sv(b, r->pool_after);
    put_money(b, r->discount_micro);
    enc_dstr(b, &k->d[D_CATEGORY], s[F_CATEGORY]);
    enc_dstr(b, &k->d[D_EXPL], s[F_EXPL]);
    enc_extra(b, k, s[F_EXTRA]);
    return 0;
}

static cdr_str zstr(const char *p)
{
    return p ? (cdr_str){p, strlen(p)} : (cdr_str){"", 0};
}

/* The strings of a statement record. */
static void stmt_rec_strs(const cdr_stmt_rec *r, cdr_str *s)
{
    s[F_FILE] = zstr(r->file);
    s[F_RECORD_ID] = zstr(r->record_id);
    s[F_MSISDN] = zstr(r->msisdn);
    s[F_PEER] = zstr(r->peer);
    s[F_DUP_OF] = zstr(r->dup_of);
    s[F_CALL_ID] = zstr(r->call_id);
    s[F_SMS_REF] = zstr(r->sms_ref);
    s[F_PLAN] = zstr(r->plan);
    s[F_BAND] = zstr(r->band);
    s[F_POOL] = zstr(r->pool);
    s[F_CATEGORY] = zstr(r->category);
    s[F_EXPL] = zstr(r->explanation);
    s[F_EXTRA] = zstr(r->extra);
}

/* The statement's header: what cdr_stmt_finish cannot recompute from the
 * records (number, month, subscriber facts, candidate) and the record
 * count. The records follow. */
static void enc_head(buf *b, const char *msisdn, cdr_month month, int vip, cdr_time join,
                     const cdr_candidate *c, uint64_t n_recs)
{
    size_t n = strlen(msisdn);
    put_uv(b, n);
    put_bytes(b, msisdn, n);
    put_sv(b, month);
    put_sv(b, vip);
    put_sv(b, join);
    put_uv(b, c ? 1 : 0);
    if (c) {
        put_uv(b, c->records);
        put_sv(b, c->overcharge);
        put_sv(b, c->refund);
        put_uv(b, c->categories);
        put_sv(b, c->tier);
        put_uv(b, (uint64_t)c->policy);
        put_sv(b, c->special);
        put_uv(b, c->flags);
        const char *pr = s_or_empty(c->policy_reason);
        put_uv(b, strlen(pr));
        put_bytes(b, pr, strlen(pr));
    }
    put_uv(b, n_recs);
}

/* ---- decoding ---- */


static int64_t get_money(cur *c)
{
    uint64_t u = get_uv(c);
    if (u & 1)
        return unzz(u >> 1);
    if (u == MONEY_ESC)
        return unzz(get_uv(c));
    if (u >= (1ull << 52)) {
        cur_fail(c, "bad amount");
        return 0;
    }
    return unzz(u >> 1) * 10000;
}

/* n raw bytes at the cursor: no NUL, inside the statement. */
static const uint8_t *get_raw(cur *c, uint64_t n)
{
    if (c->bad)
        return NULL;
    if (n > (uint64_t)(c->end - c->p)) {
        cur_fail(c, "string runs past the statement");
        return NULL;
    }
    if (memchr(c->p, '\0', (size_t)n)) {
        cur_fail(c, "NUL byte in a string");
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

/* Append a dictionary string to sb; returns its offset there. */
static size_t dec_dstr(cur *c, const uint8_t *base, dict *d, buf *sb)
{
    size_t at = sb->n;
    uint64_t u = get_uv(c);
    const uint8_t *p = NULL;
    size_t n = 0;
    if (c->bad)
        goto out;
    if (u & 1) {
        if ((u >> 1) >= d->n) {
            cur_fail(c, "reference to an unknown string");
            goto out;
        }
        p = base + d->off[u >> 1];
        n = d->len[u >> 1];
    } else {
        n = (size_t)(u >> 1);
        if ((u >> 1) > (uint64_t)(c->end - c->p)) {
            cur_fail(c, "string runs past the statement");
            goto out;
        }
        if (!(p = get_raw(c, n)))
            goto out;
        dict_add(d, (size_t)(p - base), n);
    }
    put_bytes(sb, p, n);
out:
    put_bytes(sb, "", 1);
    return at;
}

/* An identifier appended to sb (no NUL). */
static void dec_id_raw(cur *c, const uint8_t *base, codec *k, int f, buf *sb)
{
    uint64_t u = get_uv(c);
    unsigned nd = (unsigned)(u & 31);
    uint64_t x = u >> 5;
    dict *d = &k->head[f];
    if (c->bad)
        goto out;
    if (nd > ID_DIGITS) {
        cur_fail(c, "bad identifier");
        goto out;
    }
    if (x & 1) {
        if ((x >> 1) >= d->n) {
            cur_fail(c, "reference to an unknown string");
            goto out;
        }
        put_bytes(sb, base + d->off[x >> 1], d->len[x >> 1]);
    } else {
        const uint8_t *p = get_raw(c, x >> 1);
        if (!p)
            goto out;
        dict_add(d, (size_t)(p - base), (size_t)(x >> 1));
        put_bytes(sb, p, (size_t)(x >> 1));
    }
    if (nd) {
        uint64_t v = k->tail[f] + (uint64_t)get_sv(c);
        if (c->bad || v >= pow10u[nd]) {
            cur_fail(c, "bad identifier number");
            goto out;
        }
        k->tail[f] = v;
        char dg[ID_DIGITS];
        for (unsigned i = nd; i-- > 0;) {
            dg[i] = (char)('0' + v % 10);
            v /= 10;
        }
        put_bytes(sb, dg, nd);
    }
out:
    return;
}

static size_t dec_id(cur *c, const uint8_t *base, codec *k, int f, buf *sb)
{
    size_t at = sb->n;
    dec_id_raw(c, base, k, f, sb);
    put_bytes(sb, "", 1);
    return at;
}

static size_t dec_extra(cur *c, const uint8_t *base, codec *k, buf *sb)
{
    size_t at = sb->n;
    uint64_t pieces = get_uv(c);
    if (pieces > (uint64_t)(c->end - c->p))
        cur_fail(c, "too many unknown columns");
    for (uint64_t i = 0; i < pieces && !c->bad; i++) {
        if (i)
            put_bytes(sb, ";", 1);
        dec_id_raw(c, base, k, I_EXTRA + (i < 7 ? (int)i : 7), sb);
    }
    put_bytes(sb, "", 1);
    return at;
}

static void dec_rate(cur *c, codec *k, cdr_stmt_rec *r)
{
    uint64_t u = get_uv(c);
    if (c->bad)
        return;
    if (u) {
        if (u > k->n_rates) {
            cur_fail(c, "reference to an unknown rate");
            return;
        }
        const rate_key *q = &k->rates[u - 1];
        r->rate_line = q->line;
        r->price = q->price;
        r->unit = q->unit;
        r->increment = q->increment;
        return;
    }
    u = get_uv(c);
    if (u > UINT32_MAX)
        cur_fail(c, "bad rate line");
    r->rate_line = (uint32_t)u;
    r->price = get_money(c);
    r->unit = get_sv(c);
    r->increment = get_sv(c);
    if (k->n_rates < DICT_MAX)
        k->rates[k->n_rates++] = (rate_key){r->rate_line, r->price, r->unit, r->increment};
}

/* One record into r; its strings go to sb (r's pointers set at the end). */
static void dec_rec(cur *c, const uint8_t *base, codec *k, cdr_stmt_rec *r, buf *sb,
                    const char *s_msisdn, cdr_month s_month)
{
    enum { S_FILE, S_REC, S_MSISDN, S_PEER, S_DUP, S_CALL, S_SMS, S_PLAN, S_BAND, S_POOL,
           S_CAT, S_EXPL, S_EXTRA, S__N };
    size_t at[S__N];
    memset(r, 0, sizeof *r);
    sb->n = 0;
    uint64_t h = get_uv(c);
    uint64_t st = h & 15, svc = (h >> 4) & 3;
    if (st >= CDR_RS__COUNT)
        cur_fail(c, "bad record status");
    if (svc >= CDR_SVC__COUNT)
        cur_fail(c, "bad service");
    if ((h >> 9) > UINT32_MAX)
        cur_fail(c, "bad flags");
    r->status = (cdr_rec_status)st;
    r->service = (cdr_service)svc;
    r->direction = (cdr_direction)((h >> 6) & 1);
    r->has_rebuilt = (int)((h >> 7) & 1);
    r->flags = (unsigned)(h >> 9);
    if (h & 256) {
        at[S_MSISDN] = dec_dstr(c, base, &k->d[D_MSISDN], sb);
        int64_t m = wadd(s_month, get_sv(c));
        if (!fits_i32(m))
            cur_fail(c, "bad month");
        r->month = (cdr_month)m;
    } else {
        at[S_MSISDN] = sb->n;
        put_bytes(sb, s_msisdn, strlen(s_msisdn) + 1);
        r->month = s_month;
    }
    at[S_FILE] = dec_dstr(c, base, &k->d[D_FILE], sb);
    r->line = get_uv(c);
    r->offset = get_uv(c);
    at[S_REC] = dec_id(c, base, k, I_RECORD_ID, sb);
    at[S_PEER] = dec_id(c, base, k, I_PEER, sb);
    r->start = wadd(k->prev_start, get_sv(c));
    k->prev_start = r->start;
    r->amount = get_sv(c);
    r->usage = wadd(r->amount, get_sv(c));
    r->billable = wadd(r->usage, get_sv(c));
    r->covered = wadd(r->billable, get_sv(c));
    r->billed = get_money(c);
    r->rebuilt = get_money(c);
    r->difference = wadd(get_sv(c), r->has_rebuilt ? wsub(r->billed, r->rebuilt) : 0);
    at[S_DUP] = dec_id(c, base, k, I_DUP_OF, sb);
    uint64_t u = get_uv(c);
    if (u > UINT32_MAX)
        cur_fail(c, "bad part count");
    r->parts = (uint32_t)u;
    at[S_CALL] = dec_id(c, base, k, I_CALL_ID, sb);
    r->partial_seq = get_sv(c);
    at[S_SMS] = dec_id(c, base, k, I_SMS_REF, sb);
    int64_t s = get_sv(c);
    if (!fits_i32(s))
        cur_fail(c, "bad sms_part");
    r->sms_part = (int32_t)s;
    s = get_sv(c);
    if (!fits_i32(s))
        cur_fail(c, "bad sms_parts");
    r->sms_parts = (int32_t)s;
    at[S_PLAN] = dec_dstr(c, base, &k->d[D_PLAN], sb);
    dec_rate(c, k, r);
    at[S_BAND] = dec_dstr(c, base, &k->d[D_BAND], sb);
    at[S_POOL] = dec_dstr(c, base, &k->d[D_POOL], sb);
    r->pool_after = get_sv(c);
    r->discount_micro = get_money(c);
    at[S_CAT] = dec_dstr(c, base, &k->d[D_CATEGORY], sb);
    at[S_EXPL] = dec_dstr(c, base, &k->d[D_EXPL], sb);
    at[S_EXTRA] = dec_extra(c, base, k, sb);
    if (sb->oom) {
        cur_fail(c, "out of memory");
        return;
    }
    char *p = (char *)sb->p;
    r->file = p + at[S_FILE];
    r->record_id = p + at[S_REC];
    r->msisdn = p + at[S_MSISDN];
    r->peer = p + at[S_PEER];
    r->dup_of = p + at[S_DUP];
    r->call_id = p + at[S_CALL];
    r->sms_ref = p + at[S_SMS];
    r->plan = p + at[S_PLAN];
    r->band = p + at[S_BAND];
    r->pool = p + at[S_POOL];
    r->category = p + at[S_CAT];
    r->explanation = p + at[S_EXPL];
    r->extra = p + at[S_EXTRA];
}

/*
 * Decode one statement into out (cdr_stmt_init'ed here). The records go
 * through cdr_stmt_add, the candidate through cdr_stmt_set_candidate, and
 * the totals and pool summaries come from cdr_stmt_finish, as on the scan
 * path; the subscriber's VIP flag and join date are the stored ones.
 */
static cdr_err dec_stmt(cur *c, cdr_stmt *out)
{
    cdr_err e = CDR_OK;
    const uint8_t *base = c->p;
    uint64_t ml = get_uv(c);
    const uint8_t *mp = c->bad || ml > CDR_NUMBER_MAX ? NULL : get_raw(c, ml);
    int64_t month = get_sv(c);
    if (c->bad || !mp || !fits_i32(month)) {
        cur_fail(c, "bad statement header");
        return CDR_E_PARSE;
    }
    char msisdn[CDR_NUMBER_MAX + 1];
    memcpy(msisdn, mp, (size_t)ml);
    msisdn[ml] = '\0';
    if ((e = cdr_stmt_init(out, msisdn, (cdr_month)month)) != CDR_OK)
        return e;
    int64_t vip = get_sv(c), join = get_sv(c);
    if (vip < -1 || vip > 1)
        cur_fail(c, "bad VIP flag");
    uint64_t has_cand = get_uv(c);
    if (has_cand > 1)
        cur_fail(c, "bad candidate marker");
    cdr_candidate cand;
    char *reason = NULL;
    memset(&cand, 0, sizeof cand);
    if (has_cand == 1 && !c->bad) {
        uint64_t u = get_uv(c);
        if (u > UINT32_MAX)
            cur_fail(c, "bad candidate record count");
        cand.records = (uint32_t)u;
        cand.overcharge = get_sv(c);
        cand.refund = get_sv(c);
        u = get_uv(c);
        if (u > UINT32_MAX)
            cur_fail(c, "bad categories");
        cand.categories = (uint32_t)u;
        int64_t tier = get_sv(c);
        if (tier < 0 || tier > 4)
            cur_fail(c, "bad tier");
        cand.tier = (int)tier;
        u = get_uv(c);
        if (u > CDR_POLICY_VERIFY_FIRST)
            cur_fail(c, "bad policy");
        cand.policy = (cdr_policy)u;
        int64_t sp = get_sv(c);
        if (sp != 0 && sp != 1)
            cur_fail(c, "bad special flag");
        cand.special = (int)sp;
        u = get_uv(c);
        if (u > UINT32_MAX)
            cur_fail(c, "bad flags");
        cand.flags = (unsigned)u;
        u = get_uv(c);
        const uint8_t *rp = get_raw(c, u);
        if (rp) {
            reason = malloc((size_t)u + 1);
            if (!reason)
                return CDR_E_NOMEM;
            memcpy(reason, rp, (size_t)u);
            reason[u] = '\0';
        }
    }
    uint64_t nr = get_uv(c);
    if (nr > (uint64_t)(c->end - c->p))
        cur_fail(c, "record count larger than the statement");
    codec *k = malloc(sizeof *k);
    buf sb = {0};
    if (!k) {
        e = CDR_E_NOMEM;
        goto out;
    }
    codec_reset(k);
    for (uint64_t i = 0; i < nr && !c->bad; i++) {
        cdr_stmt_rec r;
        dec_rec(c, base, k, &r, &sb, out->msisdn, out->month);
        if (!c->bad && (e = cdr_stmt_add(out, &r)) != CDR_OK)
            goto out;
    }
    if (c->bad)
        goto out;
    if (c->p != c->end) {
        cur_fail(c, "bytes left after the statement");
        goto out;
    }
    if (has_cand) {
        cand.msisdn.p = out->msisdn;
        cand.msisdn.n = strlen(out->msisdn);
        cand.month = out->month;
        cand.policy_reason = reason;
        if ((e = cdr_stmt_set_candidate(out, &cand)) != CDR_OK)
            goto out;
    }
    if ((e = cdr_stmt_finish(out, NULL)) != CDR_OK)
        goto out;
    out->vip = (int)vip;
    out->join_date = join;
out:
    free(k);
    free(sb.p);
    free(reason);
    if (e == CDR_OK && c->bad)
        e = CDR_E_PARSE;
    return e;
}

/* ---------------------------------------------------------------- */
/* encoder: subscriber-months -> serialised -> compressed blocks      */

typedef struct ientry {
    char msisdn[CDR_NUMBER_MAX + 1];
    cdr_month month;
    uint32_t n_recs;
    uint64_t block_off;  /* file offset of the block where the statement starts */
    uint32_t in_block;   /* offset of its first byte in that block's data */
    uint64_t len;        /* serialised length */
} ientry;

static int ientry_cmp(const void *a, const void *b);
static void ientry_pack(const ientry *en, uint8_t *p);

/*
 * An encoder turns subscriber-months into finished blocks (block header and
 * deflated data, exactly as they go into the file) in `out`, and their
 * index entries into `ix`, whose block offsets count from `base` (the
 * position of out's first byte in the encoder's output). It touches nothing
 * outside itself (the tariff is only read), so encoders run in parallel:
 * the writer keeps one for its serial calls (base: the file offset where
 * out goes next), and a store part, encoded on a rating worker, is one with
 * base 0 whose offsets the writer fixes up when it appends the part.
 */
struct cdr_store_part {
    const cdr_tariff *t;
    size_t block_size;
    int level;
    cdr_err status;
    char message[256];   /* the first error in words */

    buf block;           /* the block being filled (uncompressed) */
    buf out;             /* finished blocks */
    uint64_t base;       /* output position of out.p[0] */
    z_stream zs;         /* zlib's deflate, set up on first use */
    int zs_ready;
#ifdef HAVE_ISAL
    uint8_t *isal_buf;   /* ISA-L's level-1 work area (level 1 with ISA-L linked) */
    int isal_tried;
#endif
    buf sbuf;            /* the open statement's header */
    buf rbuf;            /* the open statement's records, serialised */
    ientry *ix;          /* entries of the statements in out (or in the block) */
    size_t n_ix, cap_ix;

    int open;            /* a subscriber-month is being accumulated */
    char cur_msisdn[CDR_NUMBER_MAX + 1];
    size_t cur_len;
    cdr_month cur_month;
    uint64_t cur_n;      /* its records so far */
    cdr_time cur_last;   /* start of its last record */
    int has_cand;
    cdr_candidate cand;  /* its candidate; policy_reason is cand_reason */
    char *cand_reason;
    codec k;             /* its dictionaries */
    char *scratch;       /* unknown columns of the record being encoded */
    size_t scratch_cap;
    char band[256];      /* its band pieces under split */
    const char *last_file;
    size_t last_file_len;
    cdr_store_info info; /* statements, records, blocks, raw_bytes not yet taken */
};
typedef struct cdr_store_part enc;

static cdr_err efail(enc *e, cdr_err err, const char *what)
{
    if (e->status == CDR_OK) {
        e->status = err;
        snprintf(e->message, sizeof e->message, "%s", what);
    }
    return e->status;
}

/* o is already checked (cdr_store_create). */
static void enc_init(enc *e, const cdr_tariff *t, const cdr_store_opts *o)
{
    memset(e, 0, sizeof *e);
    e->t = t;
    e->block_size = o->block_size;
    e->level = o->level;
}

/* Free the working state (compressor, buffers); out and ix stay. */
static void enc_release_work(enc *e)
{
    free(e->block.p);
    free(e->sbuf.p);
    free(e->rbuf.p);
    memset(&e->block, 0, sizeof e->block);
    memset(&e->sbuf, 0, sizeof e->sbuf);
    memset(&e->rbuf, 0, sizeof e->rbuf);
    free(e->scratch);
    e->scratch = NULL;
    e->scratch_cap = 0;
    free(e->cand_reason);
    e->cand_reason = NULL;
    if (e->zs_ready)
        deflateEnd(&e->zs);
    e->zs_ready = 0;
#ifdef HAVE_ISAL
    free(e->isal_buf);
    e->isal_buf = NULL;
    e->isal_tried = 0;
#endif
}

static void enc_free(enc *e)
{
    enc_release_work(e);
    free(e->out.p);
    free(e->ix);
}

/* Compress the current block onto out. */
static cdr_err flush_block(enc *e)
{
    if (e->status || e->block.n == 0)
        return e->status;
    uLong bound = compressBound((uLong)e->block.n); /* = deflateBound for level 1..9 */
    if (buf_reserve(&e->out, BLOCK_HDR + bound))
        return efail(e, CDR_E_NOMEM, "out of memory");
    uint8_t *h = e->out.p + e->out.n, *z = h + BLOCK_HDR;
    uLong zl = 0;
#ifdef HAVE_ISAL
    if (!e->isal_tried) {
        e->isal_tried = 1;
        if (e->level == 1 && isal_deflate_stateless && isal_deflate_stateless_init)
            e->isal_buf = calloc(1, ISAL_DEF_LVL1_DEFAULT); /* NULL: zlib does it; zeroed:
                                                             * ISA-L reads its hash table first */
    }
    /* The same zlib stream, about 4x faster than zlib's level 1 (and a
     * little smaller); zlib again if it does not fit the bound. */
    if (e->isal_buf) {
        struct isal_zstream is;
        memset(&is, 0, sizeof is);
        isal_deflate_stateless_init(&is);
        is.level = 1;
        is.level_buf = e->isal_buf;
        is.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
        is.gzip_flag = IGZIP_ZLIB;
        is.end_of_stream = 1;
        is.flush = NO_FLUSH;
        is.next_in = e->block.p;
        is.avail_in = (uint32_t)e->block.n;
        is.next_out = z;
        is.avail_out = (uint32_t)bound;
        if (isal_deflate_stateless(&is) == COMP_OK && is.avail_in == 0)
            zl = is.total_out;
    }
#endif
    if (zl == 0) {
        if (!e->zs_ready) {
            memset(&e->zs, 0, sizeof e->zs);
            int zr = deflateInit(&e->zs, e->level);
            if (zr != Z_OK)
                return efail(e, zr == Z_MEM_ERROR ? CDR_E_NOMEM : CDR_E_INTERNAL,
                             "cannot set up compression");
            e->zs_ready = 1;
        }
        if (deflateReset(&e->zs) != Z_OK)
            return efail(e, CDR_E_INTERNAL, "compress failed");
        e->zs.next_in = e->block.p;
        e->zs.avail_in = (uInt)e->block.n;
        e->zs.next_out = z;
        e->zs.avail_out = (uInt)bound;
        int zr = deflate(&e->zs, Z_FINISH);
        if (zr != Z_STREAM_END)
            return efail(e, zr == Z_MEM_ERROR ? CDR_E_NOMEM : CDR_E_INTERNAL, "compress failed");
        zl = e->zs.total_out;
    }
    put32(h, BLOCK_MAGIC);
    put32(h + 4, (uint32_t)zl);
    put32(h + 8, (uint32_t)e->block.n);
    put32(h + 12, crc(e->block.p, e->block.n));
    {
        /* the compressed bytes too: deflate ignores the padding bits of its
         * last byte, and a store must not carry undetectable damage */
        put32(h + 16, crc_more(crc(h, 16), z, zl));
    }
    e->out.n += BLOCK_HDR + zl;
    e->info.blocks++;
    e->block.n = 0;
    return CDR_OK;
}

/* Append bytes to the block stream, compressing full blocks. */
static cdr_err put_stream(enc *e, const uint8_t *p, size_t left)
{
    while (left) {
        size_t room = e->block_size - (e->block.n < e->block_size ? e->block.n : e->block_size);
        if (room == 0) {
            if (flush_block(e) != CDR_OK)
                return e->status;
            continue;
        }
        size_t k = left < room ? left : room;
        put_bytes(&e->block, p, k);
        if (e->block.oom)
            return efail(e, CDR_E_NOMEM, "out of memory");
        p += k;
        left -= k;
    }
    return CDR_OK;
}

/* Append the serialised statement (header in sbuf, records in rbuf) to the
 * block stream and index it. */
static cdr_err put_serialised(enc *e, const char *msisdn, cdr_month month, uint64_t n_recs)
{
    if (e->status)
        return e->status;
    if (e->sbuf.oom || e->rbuf.oom)
        return efail(e, CDR_E_NOMEM, "out of memory");
    if (e->n_ix == e->cap_ix) {
        size_t cap = e->cap_ix ? e->cap_ix * 2 : 256;
        ientry *ix = realloc(e->ix, cap * sizeof *ix);
        if (!ix)
            return efail(e, CDR_E_NOMEM, "out of memory");
        e->ix = ix;
        e->cap_ix = cap;
    }
    if (e->block.n >= e->block_size && flush_block(e) != CDR_OK)
        return e->status;
    ientry *en = &e->ix[e->n_ix++];
    memset(en, 0, sizeof *en);
    memcpy(en->msisdn, msisdn, strlen(msisdn));
    en->month = month;
    en->n_recs = (uint32_t)n_recs;
    en->block_off = e->base + e->out.n; /* where the current block will go */
    en->in_block = (uint32_t)e->block.n;
    en->len = e->sbuf.n + e->rbuf.n;
    if (put_stream(e, e->sbuf.p, e->sbuf.n) != CDR_OK ||
        put_stream(e, e->rbuf.p, e->rbuf.n) != CDR_OK)
        return e->status;
    e->info.statements++;
    e->info.records += n_recs;
    e->info.raw_bytes += en->len;
    return CDR_OK;
}

/* Start a subscriber-month: empty records buffer, fresh dictionaries. */
static cdr_err open_stmt(enc *e, const char *msisdn, size_t n, cdr_month month)
{
    if (n == 0 || n > CDR_NUMBER_MAX)
        return efail(e, CDR_E_RANGE, "subscriber number empty or too long for the index");
    memcpy(e->cur_msisdn, msisdn, n);
    e->cur_msisdn[n] = '\0';
    e->cur_len = n;
    e->cur_month = month;
    e->cur_n = 0;
    e->cur_last = 0;
    e->has_cand = 0;
    e->rbuf.n = 0;
    codec_reset(&e->k);
    e->open = 1;
    return CDR_OK;
}

static cdr_err add_rec(enc *e, const cdr_stmt_rec *r, const cdr_str *strs)
{
    if (e->cur_n >= UINT32_MAX)
        return efail(e, CDR_E_RANGE, "too many records in one subscriber-month");
    if (enc_rec(&e->rbuf, &e->k, r, strs, e->cur_msisdn, e->cur_len, e->cur_month) != 0)
        return efail(e, CDR_E_INTERNAL, "a record with an unknown status, service or direction");
    if (e->rbuf.oom)
        return efail(e, CDR_E_NOMEM, "out of memory");
    e->cur_n++;
    e->cur_last = r->start;
    return CDR_OK;
}

/* Close the open subscriber-month: the subscriber's facts (as
 * cdr_stmt_finish looks them up), the header, into the stream. */
static cdr_err close_current(enc *e)
{
    if (!e->open)
        return e->status;
    e->open = 0;
    if (e->status)
        return e->status;
    int vip = -1;
    cdr_time join = -1;
    if (e->t && e->cur_n) {
        const cdr_subscriber *sub = cdr_tariff_subscriber(e->t, e->cur_msisdn, e->cur_len,
                                                          e->cur_last);
        if (sub) {
            vip = sub->vip;
            join = sub->join_date;
        }
    }
    e->sbuf.n = 0;
    enc_head(&e->sbuf, e->cur_msisdn, e->cur_month, vip, join, e->has_cand ? &e->cand : NULL,
             e->cur_n);
    return put_serialised(e, e->cur_msisdn, e->cur_month, e->cur_n);
}

/* A string field of a row as cdr_stmt_rec_from_rated keeps it: copied,
 * then read as a C string (up to a NUL byte, if any). */
static inline cdr_str cstr(const char *p, size_t n)
{
    if (!p)
        return (cdr_str){"", 0};
    const char *z = cdr_find_byte(p, n, 0);
    return (cdr_str){p, z ? (size_t)(z - p) : n};
}

/*
 * The record cdr_stmt_rec_from_rated (src/statement.c) builds, as numbers
 * in *o and strings pointing into the engine's record and the tariff: no
 * copy, no allocation (the split band and the unknown columns go into the
 * encoder's scratch). Keep in step with cdr_stmt_rec_from_rated; the CLI
 * tests compare the store's statements with the scan path's, which uses it.
 */
static cdr_err rated_rec(enc *e, const cdr_rated *rr, const char *file, cdr_stmt_rec *o,
                         cdr_str *s)
{
    const cdr_row *row = &rr->row;
    const cdr_rate_out *ro = &rr->rating;
    const cdr_tariff *t = e->t;
    int rated = (rr->status == CDR_RS_RATED || rr->status == CDR_RS_PARTIAL_FIRST) && ro->rate;

    cdr_stmt_rec_numbers(rr, o);
    if (!file)
        file = "";
    if (file != e->last_file) {
        e->last_file = file;
        e->last_file_len = strlen(file);
    }
    s[F_FILE] = (cdr_str){file, e->last_file_len};
    s[F_RECORD_ID] = cstr(row->record_id.p, row->record_id.n);
    s[F_MSISDN] = cstr(row->msisdn.p, row->msisdn.n);
    s[F_PEER] = cstr(row->peer.p, row->peer.n);
    s[F_DUP_OF] = cstr(rr->dup_of.p, rr->dup_of.p ? rr->dup_of.n : 0);
    s[F_CALL_ID] = cstr(row->call_id.p, row->call_id.n);
    s[F_SMS_REF] = cstr(row->sms_ref.p, row->sms_ref.n);
    s[F_PLAN] = zstr(rr->plan >= 0 ? t->plans[rr->plan].name : "");
    s[F_POOL] = zstr(rated && ro->pool >= 0 ? t->pool_names[ro->pool] : "");
    s[F_CATEGORY] = zstr(rr->has_finding ? cdr_category_name(rr->finding.category) : "");
    s[F_EXPL] = zstr(rr->has_finding                               ? rr->finding.explanation
                     : rr->status == CDR_RS_UNRATED && rr->unrated ? rr->unrated
                                                                     : "");
    /* band (as snprintf into 256 bytes), or the pieces under split */
    if (rated && ro->n_pieces > 1) {
        size_t k = 0;
        e->band[0] = '\0';
        for (int i = 0; i < ro->n_pieces && k < sizeof e->band - 80; i++)
            k += (size_t)snprintf(e->band + k, sizeof e->band - k, "%s%s:%lld", i ? ";" : "",
                                  ro->pieces[i].band >= 0 ? t->band_names[ro->pieces[i].band]
                                                          : "*",
                                  (long long)ro->pieces[i].units);
        s[F_BAND] = zstr(e->band);
    } else if (rated && ro->band >= 0) {
        s[F_BAND] = zstr(t->band_names[ro->band]);
        if (s[F_BAND].n > sizeof e->band - 1)
            s[F_BAND].n = sizeof e->band - 1;
    } else {
        s[F_BAND] = zstr("");
    }
    /* unknown columns "name=value;..." */
    if (row->n_extra == 0) {
        s[F_EXTRA] = zstr("");
    } else {
        size_t len = cdr_row_extras_size(row);
        if (len > e->scratch_cap) {
            size_t cap = e->scratch_cap ? e->scratch_cap : 1024;
            while (cap < len)
                cap *= 2;
            char *p = realloc(e->scratch, cap);
            if (!p)
                return efail(e, CDR_E_NOMEM, "out of memory");
            e->scratch = p;
            e->scratch_cap = cap;
        }
        s[F_EXTRA] = cstr(e->scratch, cdr_row_extras_join(row, e->scratch));
    }
    return CDR_OK;
}

static cdr_err enc_add_rated(enc *e, const cdr_rated *r, const char *file)
{
    if (e->status)
        return e->status;
    if (e->open && (r->month != e->cur_month || e->cur_len != r->row.msisdn.n ||
                    !eqn(e->cur_msisdn, r->row.msisdn.p, r->row.msisdn.n))) {
        if (close_current(e) != CDR_OK)
            return e->status;
    }
    if (!e->open && open_stmt(e, r->row.msisdn.p, r->row.msisdn.n, r->month) != CDR_OK)
        return e->status;
    cdr_stmt_rec rec;
    cdr_str strs[F__COUNT];
    if (rated_rec(e, r, file, &rec, strs) != CDR_OK)
        return e->status;
    return add_rec(e, &rec, strs);
}

static cdr_err enc_add_candidate(enc *e, const cdr_candidate *c)
{
    if (e->status)
        return e->status;
    if (!e->open || c->month != e->cur_month || e->cur_len != c->msisdn.n ||
        memcmp(e->cur_msisdn, c->msisdn.p, c->msisdn.n) != 0)
        return efail(e, CDR_E_INTERNAL, "a candidate arrived without its records");
    char *reason = strdup(s_or_empty(c->policy_reason));
    if (!reason)
        return efail(e, CDR_E_NOMEM, "out of memory");
    free(e->cand_reason);
    e->cand_reason = reason;
    e->cand = *c;
    e->cand.policy_reason = reason;
    e->has_cand = 1;
    return CDR_OK;
}

static cdr_err enc_put(enc *e, const cdr_stmt *s)
{
    if (e->status)
        return e->status;
    if (close_current(e) != CDR_OK)
        return e->status;
    const char *msisdn = s_or_empty(s->msisdn);
    if (open_stmt(e, msisdn, strlen(msisdn), s->month) != CDR_OK)
        return e->status;
    e->open = 0;
    for (size_t i = 0; i < s->n_recs; i++) {
        cdr_str strs[F__COUNT];
        stmt_rec_strs(&s->recs[i], strs);
        if (add_rec(e, &s->recs[i], strs) != CDR_OK)
            return e->status;
    }
    e->sbuf.n = 0;
    enc_head(&e->sbuf, e->cur_msisdn, s->month, s->vip, s->join_date,
             s->has_candidate ? &s->cand : NULL, s->n_recs);
    return put_serialised(e, e->cur_msisdn, s->month, s->n_recs);
}

/* ---------------------------------------------------------------- */
/* writer                                                             */

struct cdr_store_writer {
    const cdr_tariff *t;
    cdr_store_opts o;
    char *path, *tmp_path; /* path: "DIR/NAME" for messages; tmp_path: "NAME.tmp.PID" */
    char *name;            /* NAME, relative to dirfd */
    int dirfd;             /* the store's directory (our own duplicate) */
    int fd;
    int committed;
    cdr_err status;
    char message[512];
    uint64_t off;        /* bytes written to the file */

    enc own;             /* the encoder of the serial calls (its base: the file offset) */

    ientry *ix;
    size_t n_ix, cap_ix;
    FILE *ixf;           /* index entries already written out (in order) */
    uint64_t n_ixf;
    ientry ix_last;      /* the last entry written to ixf */
    cdr_store_info info;

    pthread_mutex_t mu;  /* guards the two below: the first failure of a part */
    cdr_err part_status;
    char part_message[512];
};

void cdr_store_opts_init(cdr_store_opts *o)
{
    memset(o, 0, sizeof *o);
    o->level = 1;
    o->block_size = 65536;
}

static cdr_err wfail(cdr_store_writer *w, cdr_err e, const char *what, int errnum)
{
    if (w->status == CDR_OK) {
        w->status = e;
        if (errnum)
            snprintf(w->message, sizeof w->message, "%s: %s: %s", w->path, what,
                     strerror(errnum));
        else
            snprintf(w->message, sizeof w->message, "%s: %s", w->path, what);
    }
    return w->status;
}

static cdr_err wwrite(cdr_store_writer *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return wfail(w, CDR_E_IO, "write", errno);
        }
        b += k;
        n -= (size_t)k;
        w->off += (uint64_t)k;
    }
    return CDR_OK;
}

cdr_err cdr_store_create(const char *path, const cdr_tariff *t, const cdr_store_opts *o,
                         cdr_store_writer **out)
{
    *out = NULL;
    if (!path || !path[0])
        return CDR_E_USAGE;
    char *d = strdup(path), *b = strdup(path);
    if (!d || !b) {
        free(d);
        free(b);
        return CDR_E_NOMEM;
    }
    const char *dir = dirname(d), *name = basename(b);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cdr_err e;
    if (dfd < 0) {
        int en = errno;
        e = cdr_store_create_at(-1, dir, name, t, o, out); /* a writer for the message */
        if (*out && (*out)->status == CDR_OK) {
            (*out)->status = CDR_OK;
            wfail(*out, CDR_E_IO, "cannot open the store's directory", en);
            e = CDR_E_IO;
        }
    } else {
        e = cdr_store_create_at(dfd, dir, name, t, o, out);
        close(dfd);
    }
    free(d);
    free(b);
    return e;
}

cdr_err cdr_store_create_at(int dirfd, const char *dir_label, const char *name,
                            const cdr_tariff *t, const cdr_store_opts *o, cdr_store_writer **out)
{
    *out = NULL;
    if (!name || !name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
        return CDR_E_USAGE;
    if (!dir_label || !dir_label[0])
        dir_label = ".";
    cdr_store_writer *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->fd = -1;
    w->dirfd = -1;
    w->t = t;
    pthread_mutex_init(&w->mu, NULL);
    if (o)
        w->o = *o;
    else
        cdr_store_opts_init(&w->o);
    if (w->o.level < 1 || w->o.level > 9)
        w->o.level = 1;
    if (w->o.block_size < 256 || w->o.block_size > BLOCK_MAX / 2)
        w->o.block_size = 65536;
    const char *meta = w->o.meta ? w->o.meta : "";
    size_t mlen = strlen(meta);
    if (mlen > META_MAX)
        mlen = META_MAX;
    w->o.meta = NULL;
    enc_init(&w->own, t, &w->o);
    size_t pl = strlen(dir_label) + strlen(name) + 2;
    w->path = malloc(pl);
    w->name = strdup(name);
    w->tmp_path = malloc(strlen(name) + 32);
    if (!w->path || !w->name || !w->tmp_path) {
        cdr_store_writer_free(w);
        return CDR_E_NOMEM;
    }
    if (!strcmp(dir_label, "."))
        snprintf(w->path, pl, "%s", name);
    else
        snprintf(w->path, pl, "%s%s%s", dir_label,
                 dir_label[strlen(dir_label) - 1] == '/' ? "" : "/", name);
    snprintf(w->tmp_path, strlen(name) + 32, "%s.tmp.%ld", name, (long)getpid());
    if (dirfd < 0) {
        *out = w; /* cdr_store_create says why */
        return CDR_OK;
    }
    if ((w->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0) {
        wfail(w, CDR_E_IO, "cannot use the store's directory", errno);
        *out = w;
        return w->status;
    }
    struct stat st;
    if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        wfail(w, CDR_E_EXISTS, "exists and is not a regular file: not replaced", 0);
        *out = w;
        return w->status;
    }
    {
        /* what killed runs left: NAME.tmp.PID of dead processes */
        char prefix[4200];
        snprintf(prefix, sizeof prefix, "%s.tmp.", name);
        cdr_dir_remove_stale(w->dirfd, prefix);
    }
    w->fd = openat(w->dirfd, w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0644);
    if (w->fd < 0) {
        int en = errno;
        char what[4400];
        snprintf(what, sizeof what, "cannot create the temporary store file %s", w->tmp_path);
        wfail(w, CDR_E_IO, what, en);
        free(w->tmp_path); /* nothing of ours to remove */
        w->tmp_path = NULL;
        *out = w; /* the caller reads the message, then frees */
        return w->status;
    }
    uint8_t h[HDR_FIXED];
    memcpy(h, FILE_MAGIC, 8);
    put32(h + 8, CDR_STORE_VERSION);
    put32(h + 12, (uint32_t)mlen);
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, h, 16);
    c = crc32(c, (const Bytef *)meta, (uInt)mlen);
    put32(h + 16, (uint32_t)c);
    wwrite(w, h, 16);
    wwrite(w, meta, mlen);
    wwrite(w, h + 16, 4);
    w->own.base = w->off;
    *out = w;
    return w->status;
}

void cdr_store_set_tariff(cdr_store_writer *w, const cdr_tariff *t)
{
    w->t = t;
    w->own.t = t;
}

/* Index entries kept in memory before they are written to a temporary file.
 * A run adds them in index order (the engine's), so memory stays bounded
 * whatever the number of subscriber-months. */
#define IX_MEM_MAX ((size_t)1 << 16)

/* Write the in-memory entries to the temporary index file; they must
 * continue the order of what is there already. */
static cdr_err spill_index(cdr_store_writer *w)
{
    uint8_t p[ENTRY_SIZE];
    for (size_t i = 0; i < w->n_ix; i++) {
        const ientry *prev = i ? &w->ix[i - 1] : w->n_ixf ? &w->ix_last : NULL;
        if (prev && ientry_cmp(prev, &w->ix[i]) >= 0)
            return wfail(w, CDR_E_INTERNAL,
                         "subscriber-months not added in index order (or one added twice)", 0);
    }
    if (!w->ixf) {
        /* in the run's --tmp directory, like the engine's spill files; the
         * name is unlinked at once, so nothing is left behind */
        char path[4096];
        snprintf(path, sizeof path, "%s/cdrecon-index-XXXXXX", cdr_tmpdir(w->o.tmpdir));
        int fd = mkstemp(path);
        if (fd < 0)
            return wfail(w, CDR_E_IO, "temporary index file", errno);
        unlink(path);
        if (!(w->ixf = fdopen(fd, "w+b"))) {
            int en = errno;
            close(fd);
            return wfail(w, CDR_E_IO, "temporary index file", en);
        }
    }
    for (size_t i = 0; i < w->n_ix; i++) {
        ientry_pack(&w->ix[i], p);
        if (fwrite(p, 1, ENTRY_SIZE, w->ixf) != ENTRY_SIZE)
            return wfail(w, CDR_E_IO, "temporary index file", errno ? errno : EIO);
    }
    if (w->n_ix)
        w->ix_last = w->ix[w->n_ix - 1];
    w->n_ixf += w->n_ix;
    w->n_ix = 0;
    return CDR_OK;
}

/* Take an encoder's output: write its finished blocks at the end of the
 * file and add its index entries, their block offsets moved by `fix`. */
static cdr_err take(cdr_store_writer *w, enc *e, uint64_t fix)
{
    if (w->status)
        return w->status;
    if (e->status)
        return wfail(w, e->status, e->message, 0);
    if (e->out.n) {
        if (wwrite(w, e->out.p, e->out.n) != CDR_OK)
            return w->status;
        e->base += e->out.n;
        e->out.n = 0;
    }
    for (size_t i = 0; i < e->n_ix; i++) {
        if (w->n_ix == IX_MEM_MAX && spill_index(w) != CDR_OK)
            return w->status;
        if (w->n_ix == w->cap_ix) {
            size_t cap = w->cap_ix ? w->cap_ix * 2 : 1024;
            ientry *ix = realloc(w->ix, cap * sizeof *ix);
            if (!ix)
                return wfail(w, CDR_E_NOMEM, "out of memory", 0);
            w->ix = ix;
            w->cap_ix = cap;
        }
        ientry *en = &w->ix[w->n_ix++];
        *en = e->ix[i];
        en->block_off += fix;
    }
    e->n_ix = 0;
    w->info.statements += e->info.statements;
    w->info.records += e->info.records;
    w->info.blocks += e->info.blocks;
    w->info.raw_bytes += e->info.raw_bytes;
    e->info.statements = e->info.records = e->info.blocks = e->info.raw_bytes = 0;
    return CDR_OK;
}

cdr_err cdr_store_put(cdr_store_writer *w, const cdr_stmt *s)
{
    if (w->status)
        return w->status;
    enc_put(&w->own, s);
    return take(w, &w->own, 0);
}

/* ---- parts: encoded on other threads, appended in order ---- */

/* A part's failure, for cdr_store_writer_message (from any thread). */
static cdr_err part_report(cdr_store_writer *w, const enc *e)
{
    if (e->status == CDR_OK)
        return CDR_OK;
    pthread_mutex_lock(&w->mu);
    if (w->part_status == CDR_OK) {
        w->part_status = e->status;
        snprintf(w->part_message, sizeof w->part_message, "%s: %s", w->path, e->message);
    }
    pthread_mutex_unlock(&w->mu);
    return e->status;
}

static enc *part_get(cdr_store_writer *w, cdr_store_part **pp)
{
    if (!*pp) {
        enc *e = malloc(sizeof *e);
        if (!e) {
            enc dummy;
            enc_init(&dummy, NULL, &w->o);
            efail(&dummy, CDR_E_NOMEM, "out of memory");
            part_report(w, &dummy);
            return NULL;
        }
        enc_init(e, w->t, &w->o);
        *pp = e;
    }
    return *pp;
}

cdr_err cdr_store_part_add_rated(cdr_store_writer *w, cdr_store_part **p, const cdr_rated *r,
                                 const char *file)
{
    enc *e = part_get(w, p);
    if (!e)
        return CDR_E_NOMEM;
    enc_add_rated(e, r, file);
    return part_report(w, e);
}

cdr_err cdr_store_part_add_candidate(cdr_store_writer *w, cdr_store_part **p,
                                     const cdr_candidate *c)
{
    enc *e = part_get(w, p);
    if (!e)
        return CDR_E_NOMEM;
    enc_add_candidate(e, c);
    return part_report(w, e);
}

cdr_err cdr_store_part_put(cdr_store_writer *w, cdr_store_part **p, const cdr_stmt *s)
{
    enc *e = part_get(w, p);
    if (!e)
        return CDR_E_NOMEM;
    enc_put(e, s);
    return part_report(w, e);
}

cdr_err cdr_store_part_finish(cdr_store_writer *w, cdr_store_part *p)
{
    if (close_current(p) == CDR_OK)
        flush_block(p);
    enc_release_work(p); /* only the compressed blocks and the index entries stay */
    return part_report(w, p);
}

size_t cdr_store_part_bytes(const cdr_store_part *p)
{
    return p ? p->out.n + p->n_ix * sizeof(ientry) : 0;
}

cdr_err cdr_store_append_part(cdr_store_writer *w, cdr_store_part *p)
{
    if (w->status)
        return w->status;
    if (p->status)
        return wfail(w, p->status, p->message, 0);
    if (p->open || p->block.n)
        return wfail(w, CDR_E_INTERNAL, "a store part appended before it was finished", 0);
    /* what the serial calls left first: the part's blocks follow whole blocks */
    if (w->own.open || w->own.block.n) {
        if (close_current(&w->own) == CDR_OK)
            flush_block(&w->own);
        if (take(w, &w->own, 0) != CDR_OK)
            return w->status;
    }
    if (take(w, p, w->off) != CDR_OK)
        return w->status;
    w->own.base = w->off;
    return CDR_OK;
}

void cdr_store_part_free(cdr_store_part *p)
{
    if (!p)
        return;
    enc_free(p);
    free(p);
}

/* Index order: the engine's output order, (msisdn hash, msisdn, month), so
 * that a run's entries arrive sorted and can be written out as they come
 * (format 3; format 2 was ordered by msisdn). */
static int ientry_cmp(const void *a, const void *b)
{
    const ientry *x = a, *y = b;
    uint64_t hx = cdr_msisdn_hash(x->msisdn, strlen(x->msisdn));
    uint64_t hy = cdr_msisdn_hash(y->msisdn, strlen(y->msisdn));
    if (hx != hy)
        return hx < hy ? -1 : 1;
    int c = strcmp(x->msisdn, y->msisdn);
    if (c)
        return c;
    return (x->month > y->month) - (x->month < y->month);
}

static void ientry_pack(const ientry *en, uint8_t *p)
{
    memset(p, 0, ENTRY_SIZE);
    memcpy(p, en->msisdn, strlen(en->msisdn)); /* NUL-padded to 32 */
    put32(p + 32, (uint32_t)en->month);
    put32(p + 36, en->n_recs);
    put64(p + 40, en->block_off);
    put32(p + 48, en->in_block);
    put64(p + 52, en->len);
    put32(p + 60, crc(p, 60));
}

cdr_err cdr_store_commit(cdr_store_writer *w)
{
    if (w->committed)
        return CDR_OK;
    if (w->status)
        goto fail;
    if (close_current(&w->own) == CDR_OK)
        flush_block(&w->own);
    if (take(w, &w->own, 0) != CDR_OK)
        goto fail;
    uint64_t index_off;
    uint64_t n_index;
    if (w->ixf) {
        /* a large index: the rest in order, then copied in behind the blocks */
        if (spill_index(w) != CDR_OK || fflush(w->ixf) != 0 || fseek(w->ixf, 0, SEEK_SET) != 0) {
            wfail(w, CDR_E_IO, "temporary index file", errno ? errno : EIO);
            goto fail;
        }
        index_off = w->off;
        n_index = w->n_ixf;
        uint8_t cp[64 * ENTRY_SIZE];
        for (uint64_t left = n_index; left;) {
            size_t k = left < 64 ? (size_t)left : 64;
            if (fread(cp, ENTRY_SIZE, k, w->ixf) != k) {
                wfail(w, CDR_E_IO, "temporary index file", errno ? errno : EIO);
                goto fail;
            }
            if (wwrite(w, cp, k * ENTRY_SIZE) != CDR_OK)
                goto fail;
            left -= k;
        }
    } else {
        if (w->n_ix > 1) /* qsort must not get NULL, even for 0 items */
            qsort(w->ix, w->n_ix, sizeof *w->ix, ientry_cmp);
        for (size_t i = 1; i < w->n_ix; i++)
            if (ientry_cmp(&w->ix[i - 1], &w->ix[i]) == 0) {
                wfail(w, CDR_E_INTERNAL, "one subscriber-month written twice", 0);
                goto fail;
            }
        index_off = w->off;
        n_index = w->n_ix;
        buf ib = {0};
        if (buf_reserve(&ib, w->n_ix * ENTRY_SIZE + 1)) {
            wfail(w, CDR_E_NOMEM, "out of memory", 0);
            goto fail;
        }
        for (size_t i = 0; i < w->n_ix; i++)
            ientry_pack(&w->ix[i], ib.p + i * ENTRY_SIZE);
        wwrite(w, ib.p, w->n_ix * ENTRY_SIZE);
        free(ib.p);
    }
    w->info.created = (int64_t)time(NULL);
    uint8_t f[FOOT_SIZE];
    memset(f, 0, sizeof f);
    memcpy(f, FOOT_MAGIC, 8);
    put32(f + 8, CDR_STORE_VERSION);
    put32(f + 12, ENTRY_SIZE);
    put64(f + 16, index_off);
    put64(f + 24, n_index);
    put64(f + 32, w->info.records);
    put64(f + 40, w->info.blocks);
    put64(f + 48, (uint64_t)w->info.created);
    put32(f + 56, 0);
    put32(f + 60, crc(f, 60));
    if (wwrite(w, f, sizeof f) != CDR_OK)
        goto fail;
    w->info.file_bytes = w->off;
    if (fsync(w->fd) != 0) {
        wfail(w, CDR_E_IO, "fsync", errno);
        goto fail;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        wfail(w, CDR_E_IO, "close", errno);
        goto fail;
    }
    w->fd = -1;
    {
        struct stat st;
        if (fstatat(w->dirfd, w->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
            wfail(w, CDR_E_EXISTS, "exists and is not a regular file: not replaced", 0);
            goto fail;
        }
    }
    if (renameat(w->dirfd, w->tmp_path, w->dirfd, w->name) != 0) {
        wfail(w, CDR_E_IO, "rename into place", errno);
        goto fail;
    }
    w->committed = 1;
    if (fsync(w->dirfd) != 0 && errno != EINVAL)
        return wfail(w, CDR_E_IO, "fsync of the directory", errno);
    return CDR_OK;
fail:
    cdr_store_abort(w);
    return w->status;
}

void cdr_store_abort(cdr_store_writer *w)
{
    if (!w || w->committed)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_path && w->dirfd >= 0)
        unlinkat(w->dirfd, w->tmp_path, 0);
    w->own.open = 0;
}

void cdr_store_writer_free(cdr_store_writer *w)
{
    if (!w)
        return;
    cdr_store_abort(w);
    enc_free(&w->own);
    free(w->ix);
    if (w->ixf)
        fclose(w->ixf);
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->path);
    free(w->name);
    free(w->tmp_path);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

const char *cdr_store_writer_message(const cdr_store_writer *w)
{
    if (!w)
        return "";
    if (w->status)
        return w->message;
    pthread_mutex_lock((pthread_mutex_t *)&w->mu); /* a part may fail on a worker */
    const char *m = w->part_status ? w->part_message : w->message;
    pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
    return m;
}

void cdr_store_writer_info(const cdr_store_writer *w, cdr_store_info *info)
{
    *info = w->info;
    if (!w->committed)
        info->file_bytes = w->off;
}

/* ---------------------------------------------------------------- */
/* reader                                                             */

struct cdr_store {
    int fd;
    char *path;
    char *meta;
    uint64_t size, data_end; /* data_end = index offset */
    uint64_t n_ix;
    cdr_store_info info;
};

static cdr_err rfail(char *err, size_t errlen, cdr_err e, const char *path, const char *fmt,
                     const char *detail)
{
    if (err && errlen) {
        char what[256];
        snprintf(what, sizeof what, fmt, detail ? detail : "");
        snprintf(err, errlen, "%s: %s", path, what);
    }
    return e;
}

static cdr_err pread_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n) {
        ssize_t k = pread(fd, b, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return CDR_E_IO;
        }
        if (k == 0)
            return CDR_E_PARSE; /* shorter than its footer says: truncated */
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return CDR_OK;
}

cdr_err cdr_store_open(const char *path, cdr_store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    cdr_store *s = calloc(1, sizeof *s);
    if (!s)
        return CDR_E_NOMEM;
    s->fd = -1;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return CDR_E_NOMEM;
    }
    cdr_err e = CDR_OK;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        e = rfail(err, errlen, CDR_E_IO, path, "cannot open: %s", strerror(errno));
        goto bad;
    }
    if (!S_ISREG(st.st_mode)) {
        e = rfail(err, errlen, CDR_E_IO, path, "not a regular file%s", NULL);
        goto bad;
    }
    s->size = (uint64_t)st.st_size;
    uint8_t h[16];
    if (s->size < HDR_FIXED + FOOT_SIZE || pread_all(s->fd, h, 16, 0) != CDR_OK ||
        memcmp(h, FILE_MAGIC, 8) != 0) {
        e = rfail(err, errlen, CDR_E_PARSE, path, "not a cdrecon store%s", NULL);
        goto bad;
    }
    if (get32(h + 8) != CDR_STORE_VERSION) {
        uint32_t v = get32(h + 8);
        char vs[16];
        snprintf(vs, sizeof vs, "%u", (unsigned)v);
        e = rfail(err, errlen, CDR_E_PARSE, path,
                  v < CDR_STORE_VERSION
                      ? "store format version %s was written by an older cdrecon; this one "
                        "reads version " CDR_STORE_VERSION_TEXT ": run `cdrecon run` again "
                        "to rebuild the store"
                      : "store format version %s is newer than this cdrecon reads (version "
                        CDR_STORE_VERSION_TEXT ")",
                  vs);
        goto bad;
    }
    uint32_t mlen = get32(h + 12);
    if (mlen > META_MAX || HDR_FIXED + (uint64_t)mlen + FOOT_SIZE > s->size) {
        e = rfail(err, errlen, CDR_E_PARSE, path, "damaged store header%s", NULL);
        goto bad;
    }
    s->meta = malloc((size_t)mlen + 5);
    if (!s->meta) {
        e = CDR_E_NOMEM;
        goto bad;
    }
    if ((e = pread_all(s->fd, s->meta, (size_t)mlen + 4, 16)) != CDR_OK) {
        e = rfail(err, errlen, e, path, "cannot read the store header%s", NULL);
        goto bad;
    }
    {
        uLong c = crc32(0L, Z_NULL, 0);
        c = crc32(c, h, 16);
        c = crc32(c, (const Bytef *)s->meta, mlen);
        if ((uint32_t)c != get32((uint8_t *)s->meta + mlen)) {
            e = rfail(err, errlen, CDR_E_PARSE, path, "damaged store header (CRC)%s", NULL);
            goto bad;
        }
        s->meta[mlen] = '\0';
    }
    uint8_t f[FOOT_SIZE];
    if ((e = pread_all(s->fd, f, FOOT_SIZE, s->size - FOOT_SIZE)) != CDR_OK) {
        e = rfail(err, errlen, e, path, "cannot read the footer%s", NULL);
        goto bad;
    }
    if (memcmp(f, FOOT_MAGIC, 8) != 0) {
        e = rfail(err, errlen, CDR_E_PARSE, path,
                  "no store footer: the file is truncated or was not completely written%s", NULL);
        goto bad;
    }
    if (get32(f + 60) != crc(f, 60)) {
        e = rfail(err, errlen, CDR_E_PARSE, path, "damaged store footer (CRC)%s", NULL);
        goto bad;
    }
    uint64_t index_off = get64(f + 16), n = get64(f + 24);
    if (get32(f + 8) != CDR_STORE_VERSION || get32(f + 12) != ENTRY_SIZE ||
        index_off < HDR_FIXED + (uint64_t)mlen || n > s->size / ENTRY_SIZE ||
        index_off + n * ENTRY_SIZE + FOOT_SIZE != s->size) {
        e = rfail(err, errlen, CDR_E_PARSE, path,
                  "store footer does not match the file size (truncated or damaged)%s", NULL);
        goto bad;
    }
    s->data_end = index_off;
    s->n_ix = n;
    s->info.statements = n;
    s->info.records = get64(f + 32);
    s->info.blocks = get64(f + 40);
    s->info.created = (int64_t)get64(f + 48);
    s->info.file_bytes = s->size;
    *out = s;
    return CDR_OK;
bad:
    cdr_store_close(s);
    return e;
}

void cdr_store_close(cdr_store *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s->meta);
    free(s);
}

void cdr_store_info_get(const cdr_store *s, cdr_store_info *info)
{
    *info = s->info;
}

const char *cdr_store_meta(const cdr_store *s)
{
    return s && s->meta ? s->meta : "";
}

/* Read index entry i (checked). */
static cdr_err read_entry(cdr_store *s, uint64_t i, ientry *en, char *err, size_t errlen)
{
    uint8_t p[ENTRY_SIZE];
    cdr_err e = pread_all(s->fd, p, ENTRY_SIZE, s->data_end + i * ENTRY_SIZE);
    if (e != CDR_OK)
        return rfail(err, errlen, e, s->path, "cannot read the index%s", NULL);
    if (get32(p + 60) != crc(p, 60))
        return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged index entry (CRC)%s", NULL);
    memset(en, 0, sizeof *en);
    memcpy(en->msisdn, p, 32);
    en->month = (cdr_month)get32(p + 32);
    en->n_recs = get32(p + 36);
    en->block_off = get64(p + 40);
    en->in_block = get32(p + 48);
    en->len = get64(p + 52);
    if (!en->msisdn[0] || en->block_off >= s->data_end || en->len == 0 ||
        en->len > s->size * 1100) /* deflate cannot expand beyond ~1032:1 */
        return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged index entry%s", NULL);
    return CDR_OK;
}

/* Read and inflate the block at off; *next is the offset after it. */
static cdr_err read_block(cdr_store *s, uint64_t off, buf *zb, buf *ub, uint64_t *next,
                          char *err, size_t errlen)
{
    uint8_t h[BLOCK_HDR];
    if (off + BLOCK_HDR > s->data_end)
        return rfail(err, errlen, CDR_E_PARSE, s->path, "block outside the data area%s", NULL);
    cdr_err e = pread_all(s->fd, h, BLOCK_HDR, off);
    if (e != CDR_OK)
        return rfail(err, errlen, e, s->path, "cannot read a block%s", NULL);
    uint32_t clen = get32(h + 4), ulen = get32(h + 8);
    if (get32(h) != BLOCK_MAGIC || clen == 0 || ulen == 0 || ulen > BLOCK_MAX ||
        off + BLOCK_HDR + clen > s->data_end)
        return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged block header%s", NULL);
    zb->n = 0;
    ub->n = 0;
    if (buf_reserve(zb, clen) || buf_reserve(ub, ulen))
        return CDR_E_NOMEM;
    if ((e = pread_all(s->fd, zb->p, clen, off + BLOCK_HDR)) != CDR_OK)
        return rfail(err, errlen, e, s->path, "cannot read a block%s", NULL);
    {
        uLong c = crc32(0L, Z_NULL, 0);
        c = crc32(c, h, 16);
        c = crc32(c, zb->p, clen);
        if ((uint32_t)c != get32(h + 16))
            return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged block (CRC)%s", NULL);
    }
    uLongf got = ulen;
    int zr = uncompress(ub->p, &got, zb->p, clen);
    if (zr == Z_MEM_ERROR)
        return CDR_E_NOMEM;
    if (zr != Z_OK || got != ulen || crc(ub->p, ulen) != get32(h + 12))
        return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged block (inflate or CRC)%s",
                     NULL);
    ub->n = ulen;
    *next = off + BLOCK_HDR + clen;
    return CDR_OK;
}

/* The serialised bytes of one statement into out. */
static cdr_err read_stmt_bytes(cdr_store *s, const ientry *en, buf *out, char *err,
                               size_t errlen)
{
    buf zb = {0}, ub = {0};
    cdr_err e = CDR_OK;
    uint64_t off = en->block_off, next = 0;
    size_t skip = en->in_block;
    out->n = 0;
    if (buf_reserve(out, (size_t)en->len)) {
        e = CDR_E_NOMEM;
        goto done;
    }
    while (out->n < en->len) {
        if ((e = read_block(s, off, &zb, &ub, &next, err, errlen)) != CDR_OK)
            goto done;
        if (skip >= ub.n) {
            e = rfail(err, errlen, CDR_E_PARSE, s->path,
                      "index points past the end of a block%s", NULL);
            goto done;
        }
        size_t k = ub.n - skip;
        if (k > en->len - out->n)
            k = (size_t)(en->len - out->n);
        memcpy(out->p + out->n, ub.p + skip, k);
        out->n += k;
        skip = 0;
        off = next;
    }
done:
    free(zb.p);
    free(ub.p);
    return e;
}

static cdr_err decode_checked(cdr_store *s, const ientry *en, const buf *b, cdr_stmt *out,
                              char *err, size_t errlen)
{
    cur c = {b->p, b->p + b->n, 0, NULL};
    cdr_err e = dec_stmt(&c, out);
    if (e == CDR_E_PARSE || c.bad) {
        return rfail(err, errlen, CDR_E_PARSE, s->path, "damaged statement: %s",
                     c.why ? c.why : "bad value");
    }
    if (e != CDR_OK)
        return e;
    if (strcmp(out->msisdn, en->msisdn) != 0 || out->month != en->month ||
        out->n_recs != en->n_recs)
        return rfail(err, errlen, CDR_E_PARSE, s->path,
                     "statement does not match its index entry%s", NULL);
    return CDR_OK;
}

cdr_err cdr_store_get(cdr_store *s, const char *msisdn, cdr_month month, cdr_stmt *out,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof *out); /* cdr_stmt_free is safe on every return */
    if (!msisdn || strlen(msisdn) > CDR_NUMBER_MAX)
        return CDR_E_USAGE;
    ientry key, en;
    memset(&key, 0, sizeof key);
    strcpy(key.msisdn, msisdn);
    key.month = month;
    uint64_t lo = 0, hi = s->n_ix;
    cdr_err e;
    int found = 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if ((e = read_entry(s, mid, &en, err, errlen)) != CDR_OK)
            return e;
        int c = ientry_cmp(&en, &key);
        if (c == 0) {
            found = 1;
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!found) {
        if ((e = cdr_stmt_init(out, msisdn, month)) != CDR_OK)
            return e;
        return CDR_E_NOTFOUND;
    }
    buf b = {0};
    if ((e = read_stmt_bytes(s, &en, &b, err, errlen)) == CDR_OK)
        e = decode_checked(s, &en, &b, out, err, errlen);
    free(b.p);
    return e;
}

cdr_err cdr_store_verify(cdr_store *s, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    cdr_err e = CDR_OK;
    buf zb = {0}, ub = {0}, sb = {0};
    ientry prev, en;
    uint64_t records = 0, blocks = 0;
    /* every block, in file order */
    uint64_t off;
    {
        uint8_t h[16];
        if ((e = pread_all(s->fd, h, 16, 0)) != CDR_OK)
            goto done;
        off = HDR_FIXED + (uint64_t)get32(h + 12);
    }
    while (off < s->data_end) {
        uint64_t next;
        if ((e = read_block(s, off, &zb, &ub, &next, err, errlen)) != CDR_OK)
            goto done;
        blocks++;
        off = next;
    }
    if (blocks != s->info.blocks) {
        e = rfail(err, errlen, CDR_E_PARSE, s->path, "block count differs from the footer%s",
                  NULL);
        goto done;
    }
    for (uint64_t i = 0; i < s->n_ix; i++) {
        if ((e = read_entry(s, i, &en, err, errlen)) != CDR_OK)
            goto done;
        if (i && ientry_cmp(&prev, &en) >= 0) {
            e = rfail(err, errlen, CDR_E_PARSE, s->path, "index out of order%s", NULL);
            goto done;
        }
        prev = en;
        if ((e = read_stmt_bytes(s, &en, &sb, err, errlen)) != CDR_OK)
            goto done;
        cdr_stmt st;
        memset(&st, 0, sizeof st);
        e = decode_checked(s, &en, &sb, &st, err, errlen);
        cdr_stmt_free(&st);
        if (e != CDR_OK)
            goto done;
        records += en.n_recs;
    }
    if (records != s->info.records)
        e = rfail(err, errlen, CDR_E_PARSE, s->path, "record count differs from the footer%s",
                  NULL);
done:
    free(zb.p);
    free(ub.p);
    free(sb.p);
    return e;
}
