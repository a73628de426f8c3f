/*
 * cdrecon — the per-subscriber store (include/cdrecon/store.h,
 * docs/investigate.md for the file layout).
 *
 * A statement is serialised field by field: unsigned varints (LEB128),
 * signed ones zigzagged, strings as varint(len + 1) + bytes, where a
 * string equal to the same field of the previous record is varint 0.
 * Record start times are deltas from the previous record. Integers in the
 * file header, block headers, index entries and footer are little-endian.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cdrecon/store.h"

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
static uint32_t crc(const void *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const uint8_t *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* ---------------------------------------------------------------- */
/* growable byte buffer and the varint encoding                      */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} buf;

static int buf_reserve(buf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->n + more <= b->cap)
        return 0;
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

static void put_bytes(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) == 0) {
        memcpy(b->p + b->n, p, n);
        b->n += n;
    }
}

static void put_uv(buf *b, uint64_t v)
{
    if (buf_reserve(b, 10))
        return;
    while (v >= 0x80) {
        b->p[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->n++] = (uint8_t)v;
}

static void put_sv(buf *b, int64_t v)
{
    put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A string; "same as prev" when prev is given and equal. NULL is "". */
static void put_str(buf *b, const char *s, const char *prev)
{
    if (!s)
        s = "";
    if (prev && strcmp(s, prev) == 0) {
        put_uv(b, 0);
        return;
    }
    size_t n = strlen(s);
    put_uv(b, (uint64_t)n + 1);
    put_bytes(b, s, n);
}

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

/* A string, malloc'd. *prev is the previous value of the field (borrowed)
 * for "same as previous"; updated to the result. */
static char *get_str(cur *c, const char *prev)
{
    uint64_t n = get_uv(c);
    if (c->bad)
        return NULL;
    if (n == 0) {
        if (!prev) {
            cur_fail(c, "back-reference without a previous record");
            return NULL;
        }
        char *s = strdup(prev);
        if (!s)
            cur_fail(c, "out of memory");
        return s;
    }
    n--;
    if (n > (uint64_t)(c->end - c->p)) {
        cur_fail(c, "string runs past the statement");
        return NULL;
    }
    if (memchr(c->p, '\0', (size_t)n)) {
        cur_fail(c, "NUL byte in a string");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        cur_fail(c, "out of memory");
        return NULL;
    }
    memcpy(s, c->p, (size_t)n);
    s[n] = '\0';
    c->p += n;
    return s;
}

/* ---------------------------------------------------------------- */
/* statement serialisation                                            */

static const char *s_or_empty(const char *s)
{
    return s ? s : "";
}

static void enc_rec(buf *b, const cdr_stmt_rec *r, const cdr_stmt_rec *pv)
{
#define PS(f) put_str(b, r->f, pv ? s_or_empty(pv->f) : NULL)
    PS(file);
    put_uv(b, r->line);
    put_uv(b, r->offset);
    PS(record_id);
    PS(msisdn);
    put_sv(b, r->month);
    put_uv(b, (uint64_t)r->service);
    put_uv(b, (uint64_t)r->direction);
    PS(peer);
    put_sv(b, r->start - (pv ? pv->start : 0));
    put_sv(b, r->usage);
    put_sv(b, r->amount);
    put_sv(b, r->billable);
    put_sv(b, r->covered);
    put_sv(b, r->billed);
    put_sv(b, r->has_rebuilt);
    put_sv(b, r->rebuilt);
    put_sv(b, r->difference);
    put_uv(b, (uint64_t)r->status);
    PS(dup_of);
    put_uv(b, r->parts);
    PS(call_id);
    put_sv(b, r->partial_seq);
    PS(sms_ref);
    put_sv(b, r->sms_part);
    put_sv(b, r->sms_parts);
    PS(plan);
    put_uv(b, r->rate_line);
    put_sv(b, r->price);
    put_sv(b, r->unit);
    put_sv(b, r->increment);
    PS(band);
    PS(pool);
    put_sv(b, r->pool_after);
    put_sv(b, r->discount_micro);
    PS(category);
    put_uv(b, r->flags);
    PS(explanation);
    PS(extra);
#undef PS
}

static int fits_i32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

static void dec_rec(cur *c, cdr_stmt_rec *r, const cdr_stmt_rec *pv)
{
    uint64_t u;
    int64_t s;
    memset(r, 0, sizeof *r);
#define GS(f) r->f = get_str(c, pv ? pv->f : NULL)
    GS(file);
    r->line = get_uv(c);
    r->offset = get_uv(c);
    GS(record_id);
    GS(msisdn);
    s = get_sv(c);
    if (!fits_i32(s))
        cur_fail(c, "bad month");
    r->month = (cdr_month)s;
    u = get_uv(c);
    if (u >= CDR_SVC__COUNT)
        cur_fail(c, "bad service");
    r->service = (cdr_service)u;
    u = get_uv(c);
    if (u > CDR_DIR_MT)
        cur_fail(c, "bad direction");
    r->direction = (cdr_direction)u;
    GS(peer);
    r->start = get_sv(c) + (pv ? pv->start : 0);
    r->usage = get_sv(c);
    r->amount = get_sv(c);
    r->billable = get_sv(c);
    r->covered = get_sv(c);
    r->billed = get_sv(c);
    s = get_sv(c);
    if (s != 0 && s != 1)
        cur_fail(c, "bad has_rebuilt");
    r->has_rebuilt = (int)s;
    r->rebuilt = get_sv(c);
    r->difference = get_sv(c);
    u = get_uv(c);
    if (u >= CDR_RS__COUNT)
        cur_fail(c, "bad record status");
    r->status = (cdr_rec_status)u;
    GS(dup_of);
    u = get_uv(c);
    if (u > UINT32_MAX)
        cur_fail(c, "bad part count");
    r->parts = (uint32_t)u;
    GS(call_id);
    r->partial_seq = get_sv(c);
    GS(sms_ref);
    s = get_sv(c);
    if (!fits_i32(s))
        cur_fail(c, "bad sms_part");
    r->sms_part = (int32_t)s;
    s = get_sv(c);
    if (!fits_i32(s))
        cur_fail(c, "bad sms_parts");
    r->sms_parts = (int32_t)s;
    GS(plan);
    u = get_uv(c);
    if (u > UINT32_MAX)
        cur_fail(c, "bad rate line");
    r->rate_line = (uint32_t)u;
    r->price = get_sv(c);
    r->unit = get_sv(c);
    r->increment = get_sv(c);
    GS(band);
    GS(pool);
    r->pool_after = get_sv(c);
    r->discount_micro = get_sv(c);
    GS(category);
    u = get_uv(c);
    if (u > UINT32_MAX)
        cur_fail(c, "bad flags");
    r->flags = (unsigned)u;
    GS(explanation);
    GS(extra);
#undef GS
}

/* The pool units cdr_stmt_finish uses; a decoded unit must be one of them. */
static const char *const pool_units[] = {"s", "seg", "KB", "min", "MB", ""};

static void enc_stmt(buf *b, const cdr_stmt *s)
{
    put_str(b, s->msisdn, NULL);
    put_sv(b, s->month);
    put_sv(b, s->vip);
    put_sv(b, s->join_date);
    put_uv(b, s->n_findings);
    put_uv(b, s->n_duplicates);
    put_uv(b, s->n_unrated);
    put_sv(b, s->total_billed);
    put_sv(b, s->total_rebuilt);
    put_sv(b, s->leakage);
    put_uv(b, s->has_candidate ? 1 : 0);
    if (s->has_candidate) {
        const cdr_candidate *c = &s->cand;
        put_uv(b, c->records);
        put_sv(b, c->overcharge);
        put_sv(b, c->refund);
        put_uv(b, c->categories);
        put_sv(b, c->tier);
        put_uv(b, (uint64_t)c->policy);
        put_sv(b, c->special);
        put_uv(b, c->flags);
        put_str(b, c->policy_reason, NULL);
    }
    put_uv(b, s->n_pools);
    for (size_t i = 0; i < s->n_pools; i++) {
        const cdr_stmt_pool *p = &s->pools[i];
        put_str(b, p->pool, NULL);
        put_str(b, p->plan, NULL);
        put_sv(b, p->allowance);
        put_sv(b, p->used);
        put_sv(b, p->left);
        put_str(b, p->unit, NULL);
    }
    put_uv(b, s->n_recs);
    for (size_t i = 0; i < s->n_recs; i++)
        enc_rec(b, &s->recs[i], i ? &s->recs[i - 1] : NULL);
}

/*
 * Decode one statement into out (cdr_stmt_init'ed here). The records go
 * through cdr_stmt_add, the candidate through cdr_stmt_set_candidate; the
 * totals and pools are the ones cdr_stmt_finish computed when the store
 * was written, restored as they were.
 */
static cdr_err dec_stmt(cur *c, cdr_stmt *out)
{
    cdr_err e = CDR_OK;
    char *msisdn = get_str(c, NULL);
    int64_t month = get_sv(c);
    if (c->bad || !fits_i32(month)) {
        free(msisdn);
        cur_fail(c, "bad statement header");
        return CDR_E_PARSE;
    }
    if ((e = cdr_stmt_init(out, msisdn, (cdr_month)month)) != CDR_OK) {
        free(msisdn);
        return e;
    }
    free(msisdn);
    int64_t vip = get_sv(c), join = get_sv(c);
    uint64_t nf = get_uv(c), nd = get_uv(c), nu = get_uv(c);
    cdr_money tb = get_sv(c), tr = get_sv(c), lk = get_sv(c);
    uint64_t has_cand = get_uv(c);
    if (has_cand > 1)
        cur_fail(c, "bad candidate marker");
    cdr_candidate cand;
    char *reason = NULL;
    memset(&cand, 0, sizeof cand);
    if (has_cand == 1) {
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
        reason = get_str(c, NULL);
    }
    uint64_t np = get_uv(c);
    if (np > (uint64_t)(c->end - c->p))
        cur_fail(c, "pool count larger than the statement");
    cdr_stmt_pool *pools = NULL;
    size_t n_pools = 0;
    if (!c->bad && np) {
        pools = calloc((size_t)np, sizeof *pools);
        if (!pools) {
            e = CDR_E_NOMEM;
            goto out;
        }
        for (; n_pools < np && !c->bad; n_pools++) {
            cdr_stmt_pool *p = &pools[n_pools];
            p->pool = get_str(c, NULL);
            p->plan = get_str(c, NULL);
            p->allowance = get_sv(c);
            p->used = get_sv(c);
            p->left = get_sv(c);
            char *unit = get_str(c, NULL);
            p->unit = NULL;
            for (size_t k = 0; unit && k < sizeof pool_units / sizeof *pool_units; k++)
                if (strcmp(unit, pool_units[k]) == 0)
                    p->unit = pool_units[k];
            if (unit && !p->unit)
                cur_fail(c, "unknown pool unit");
            free(unit);
        }
    }
    uint64_t nr = get_uv(c);
    if (nr > (uint64_t)(c->end - c->p))
        cur_fail(c, "record count larger than the statement");
    cdr_stmt_rec prev, r;
    int have_prev = 0;
    memset(&prev, 0, sizeof prev);
    for (uint64_t i = 0; i < nr && !c->bad; i++) {
        dec_rec(c, &r, have_prev ? &prev : NULL);
        if (!c->bad)
            e = cdr_stmt_add(out, &r);
        if (have_prev)
            cdr_stmt_rec_clear(&prev);
        prev = r;
        have_prev = 1;
        if (e != CDR_OK)
            break;
    }
    if (have_prev)
        cdr_stmt_rec_clear(&prev);
    if (e != CDR_OK || c->bad)
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
    out->vip = (int)vip;
    out->join_date = join;
    out->n_findings = nf;
    out->n_duplicates = nd;
    out->n_unrated = nu;
    out->total_billed = tb;
    out->total_rebuilt = tr;
    out->leakage = lk;
    out->pools = pools;
    out->n_pools = n_pools;
    pools = NULL;
    n_pools = 0;
out:
    for (size_t i = 0; i < n_pools; i++) {
        free(pools[i].pool);
        free(pools[i].plan);
    }
    free(pools);
    free(reason);
    if (e == CDR_OK && c->bad)
        e = CDR_E_PARSE;
    return e;
}

/* ---------------------------------------------------------------- */
/* writer                                                             */

typedef struct ientry {
    char msisdn[CDR_NUMBER_MAX + 1];
    cdr_month month;
    uint32_t n_recs;
    uint64_t block_off;  /* file offset of the block where the statement starts */
    uint32_t in_block;   /* offset of its first byte in that block's data */
    uint64_t len;        /* serialised length */
} ientry;

struct cdr_store_writer {
    const cdr_tariff *t;
    cdr_store_opts o;
    char *path, *tmp_path;
    int fd;
    int committed;
    cdr_err status;
    char message[512];
    uint64_t off;        /* bytes written to the file */

    buf block;           /* the block being filled (uncompressed) */
    uint64_t block_off;  /* file offset the current block will get */
    buf zbuf;            /* compressed output */
    buf sbuf;            /* one statement's serialisation */

    ientry *ix;
    size_t n_ix, cap_ix;

    int open;            /* a subscriber-month is being accumulated */
    cdr_stmt cur;
    cdr_store_info info;
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
    cdr_store_writer *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->fd = -1;
    w->t = t;
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
    size_t pl = strlen(path);
    w->path = strdup(path);
    w->tmp_path = malloc(pl + 32);
    if (!w->path || !w->tmp_path) {
        cdr_store_writer_free(w);
        return CDR_E_NOMEM;
    }
    snprintf(w->tmp_path, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        wfail(w, CDR_E_IO, "cannot create the temporary store file", errno);
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
    w->block_off = w->off;
    *out = w;
    return w->status;
}

/* Compress and write the current block. */
static cdr_err flush_block(cdr_store_writer *w)
{
    if (w->status || w->block.n == 0)
        return w->status;
    uLongf zl = compressBound((uLong)w->block.n);
    w->zbuf.n = 0;
    if (buf_reserve(&w->zbuf, BLOCK_HDR + zl))
        return wfail(w, CDR_E_NOMEM, "out of memory", 0);
    int zr = compress2(w->zbuf.p + BLOCK_HDR, &zl, w->block.p, (uLong)w->block.n, w->o.level);
    if (zr != Z_OK)
        return wfail(w, zr == Z_MEM_ERROR ? CDR_E_NOMEM : CDR_E_INTERNAL, "compress failed", 0);
    put32(w->zbuf.p, BLOCK_MAGIC);
    put32(w->zbuf.p + 4, (uint32_t)zl);
    put32(w->zbuf.p + 8, (uint32_t)w->block.n);
    put32(w->zbuf.p + 12, crc(w->block.p, w->block.n));
    {
        /* the compressed bytes too: deflate ignores the padding bits of its
         * last byte, and a store must not carry undetectable damage */
        uLong c = crc32(0L, Z_NULL, 0);
        c = crc32(c, w->zbuf.p, 16);
        c = crc32(c, w->zbuf.p + BLOCK_HDR, (uInt)zl);
        put32(w->zbuf.p + 16, (uint32_t)c);
    }
    if (wwrite(w, w->zbuf.p, BLOCK_HDR + zl) != CDR_OK)
        return w->status;
    w->info.blocks++;
    w->block.n = 0;
    w->block_off = w->off;
    return CDR_OK;
}

/* Append a serialised statement to the block stream and index it. */
static cdr_err put_serialised(cdr_store_writer *w, const cdr_stmt *s)
{
    if (w->status)
        return w->status;
    size_t ml = strlen(s->msisdn ? s->msisdn : "");
    if (ml == 0 || ml > CDR_NUMBER_MAX)
        return wfail(w, CDR_E_RANGE, "subscriber number empty or too long for the index", 0);
    if (s->n_recs > UINT32_MAX)
        return wfail(w, CDR_E_RANGE, "too many records in one subscriber-month", 0);
    w->sbuf.n = 0;
    enc_stmt(&w->sbuf, s);
    if (w->sbuf.oom)
        return wfail(w, CDR_E_NOMEM, "out of memory", 0);
    if (w->n_ix == w->cap_ix) {
        size_t cap = w->cap_ix ? w->cap_ix * 2 : 1024;
        ientry *ix = realloc(w->ix, cap * sizeof *ix);
        if (!ix)
            return wfail(w, CDR_E_NOMEM, "out of memory", 0);
        w->ix = ix;
        w->cap_ix = cap;
    }
    if (w->block.n >= w->o.block_size && flush_block(w) != CDR_OK)
        return w->status;
    ientry *en = &w->ix[w->n_ix++];
    memset(en, 0, sizeof *en);
    memcpy(en->msisdn, s->msisdn, ml);
    en->month = s->month;
    en->n_recs = (uint32_t)s->n_recs;
    en->block_off = w->block_off;
    en->in_block = (uint32_t)w->block.n;
    en->len = w->sbuf.n;
    const uint8_t *p = w->sbuf.p;
    size_t left = w->sbuf.n;
    while (left) {
        size_t room = w->o.block_size - (w->block.n < w->o.block_size ? w->block.n : w->o.block_size);
        if (room == 0) {
            if (flush_block(w) != CDR_OK)
                return w->status;
            continue;
        }
        size_t k = left < room ? left : room;
        put_bytes(&w->block, p, k);
        if (w->block.oom)
            return wfail(w, CDR_E_NOMEM, "out of memory", 0);
        p += k;
        left -= k;
    }
    w->info.statements++;
    w->info.records += s->n_recs;
    w->info.raw_bytes += w->sbuf.n;
    return CDR_OK;
}

static cdr_err close_current(cdr_store_writer *w)
{
    if (!w->open)
        return w->status;
    w->open = 0;
    cdr_err e = cdr_stmt_finish(&w->cur, w->t);
    if (e != CDR_OK)
        wfail(w, e, "cannot finish a statement", 0);
    else
        put_serialised(w, &w->cur);
    cdr_stmt_free(&w->cur);
    return w->status;
}

cdr_err cdr_store_add_rated(cdr_store_writer *w, const cdr_rated *r, const char *file)
{
    if (w->status)
        return w->status;
    if (w->open && (r->month != w->cur.month || strlen(w->cur.msisdn) != r->row.msisdn.n ||
                    memcmp(w->cur.msisdn, r->row.msisdn.p, r->row.msisdn.n) != 0)) {
        if (close_current(w) != CDR_OK)
            return w->status;
    }
    cdr_err e;
    if (!w->open) {
        char num[CDR_NUMBER_MAX + 1];
        if (r->row.msisdn.n == 0 || r->row.msisdn.n > CDR_NUMBER_MAX)
            return wfail(w, CDR_E_RANGE, "subscriber number empty or too long", 0);
        memcpy(num, r->row.msisdn.p, r->row.msisdn.n);
        num[r->row.msisdn.n] = '\0';
        if ((e = cdr_stmt_init(&w->cur, num, r->month)) != CDR_OK)
            return wfail(w, e, "cannot start a statement", 0);
        w->open = 1;
    }
    /* Build the record in place at the end of the statement's array (what
     * cdr_stmt_add would do, without copying every string a second time). */
    cdr_stmt *s = &w->cur;
    if (s->n_recs == s->recs_cap) {
        size_t cap = s->recs_cap ? s->recs_cap * 2 : 16;
        cdr_stmt_rec *p = realloc(s->recs, cap * sizeof *p);
        if (!p)
            return wfail(w, CDR_E_NOMEM, "out of memory", 0);
        s->recs = p;
        s->recs_cap = cap;
    }
    e = cdr_stmt_rec_from_rated(r, w->t, file, &s->recs[s->n_recs]);
    if (e != CDR_OK)
        return wfail(w, e, "cannot add a record to a statement", 0);
    s->n_recs++;
    return CDR_OK;
}

cdr_err cdr_store_add_candidate(cdr_store_writer *w, const cdr_candidate *c)
{
    if (w->status)
        return w->status;
    if (!w->open || c->month != w->cur.month || strlen(w->cur.msisdn) != c->msisdn.n ||
        memcmp(w->cur.msisdn, c->msisdn.p, c->msisdn.n) != 0)
        return wfail(w, CDR_E_INTERNAL, "a candidate arrived without its records", 0);
    cdr_err e = cdr_stmt_set_candidate(&w->cur, c);
    if (e != CDR_OK)
        return wfail(w, e, "cannot set a candidate", 0);
    return CDR_OK;
}

cdr_err cdr_store_put(cdr_store_writer *w, const cdr_stmt *s)
{
    if (w->status)
        return w->status;
    if (close_current(w) != CDR_OK)
        return w->status;
    return put_serialised(w, s);
}

static int ientry_cmp(const void *a, const void *b)
{
    const ientry *x = a, *y = b;
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

static cdr_err sync_dir(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return CDR_E_NOMEM;
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(d);
    if (fd < 0)
        return CDR_E_IO;
    int r = fsync(fd);
    close(fd);
    return r == 0 || errno == EINVAL ? CDR_OK : CDR_E_IO;
}

cdr_err cdr_store_commit(cdr_store_writer *w)
{
    if (w->committed)
        return CDR_OK;
    if (w->status)
        goto fail;
    if (close_current(w) != CDR_OK || flush_block(w) != CDR_OK)
        goto fail;
    qsort(w->ix, w->n_ix, sizeof *w->ix, ientry_cmp);
    for (size_t i = 1; i < w->n_ix; i++)
        if (ientry_cmp(&w->ix[i - 1], &w->ix[i]) == 0) {
            char m[8];
            cdr_month_format(w->ix[i].month, m);
            wfail(w, CDR_E_INTERNAL, "one subscriber-month written twice", 0);
            goto fail;
        }
    uint64_t index_off = w->off;
    {
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
    put64(f + 24, w->n_ix);
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
    if (rename(w->tmp_path, w->path) != 0) {
        wfail(w, CDR_E_IO, "rename into place", errno);
        goto fail;
    }
    w->committed = 1;
    if (sync_dir(w->path) != CDR_OK)
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
    if (w->tmp_path)
        unlink(w->tmp_path);
    if (w->open) {
        cdr_stmt_free(&w->cur);
        w->open = 0;
    }
}

void cdr_store_writer_free(cdr_store_writer *w)
{
    if (!w)
        return;
    cdr_store_abort(w);
    free(w->block.p);
    free(w->zbuf.p);
    free(w->sbuf.p);
    free(w->ix);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

const char *cdr_store_writer_message(const cdr_store_writer *w)
{
    return w ? w->message : "";
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
        e = rfail(err, errlen, CDR_E_PARSE, path,
                  "store format version %s is not the one this cdrecon reads (1)",
                  get32(h + 8) == 0 ? "0" : ">1");
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
