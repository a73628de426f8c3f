/* cdrecon — checkpoint files: one entry per subscriber-month of a month, in deflated chunks cut at buckets; the writer, the reader and its cursor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>

#include "deflate1.h"
#include "bsearch.h"
#include "errmsg.h"
#include "stfile.h"
#include "grow.h"

#define CKP_CHUNK_BYTES (64u << 10)
#define CKP_CHUNK_MIN (8u << 10)

/* ---- checkpoint files ---------------------------------------------------------------- */

typedef struct kdir {
    uint64_t first_h, offset, n, last_h;
} kdir;

struct st_ckw {
    st_wfile f;
    cdr_month month;
    uint64_t n;
    st_buf pend;            /* entries of the chunk being filled */
    st_buf pendf;           /* ... and their fingerprints */
    uint64_t pend_n, pend_first_h, pend_last_h;
    kdir *kd;
    size_t n_kd, kd_cap;
    st_buf z;
    unsigned char *lvl;
};

uint64_t st_ckw_entries(const st_ckw *w)
{
    return w->n;
}

uint64_t st_ckw_bytes(const st_ckw *w)
{
    return w->f.pos;
}

cdr_err st_ckw_create(const char *path, cdr_month month, st_ckw **out, char *err, size_t errlen)
{
    *out = NULL;
    st_ckw *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->month = month;
    w->lvl = calloc(1, ISAL_DEF_LVL1_DEFAULT);
    if (!w->lvl) {
        free(w);
        return CDR_E_NOMEM;
    }
    cdr_err e = stf_start(&w->f, path, CKP_MAGIC, CKP_VERSION, month, err, errlen);
    if (e != CDR_OK) {
        st_ckw_free(w);
        return e;
    }
    *out = w;
    return CDR_OK;
}

static cdr_err ck_cut(st_ckw *w)
{
    if (w->pend_n == 0)
        return CDR_OK;
    if (cdr_grow(&w->kd, &w->kd_cap, w->n_kd + 1, sizeof *w->kd, 64))
        return CDR_E_NOMEM;
    /* [deflated length][length][fingerprints' length][the entries,
     * deflated][their fingerprints, as they are][CRC of both] */
    size_t bound = w->pend.n + w->pend.n / 8 + 1024, fn = w->pendf.n;
    w->z.n = 0;
    if (fn > UINT32_MAX / 2 || st_buf_reserve(&w->z, bound + fn + 16) != 0)
        return CDR_E_NOMEM;
    size_t zn;
    if (cdr_deflate1(w->pend.p, w->pend.n, w->z.p + 12, bound, 1, w->lvl, ISAL_DEF_LVL1_DEFAULT,
                     0, &zn) != 0)
        return CDR_E_INTERNAL;
    cdr_put_le32(w->z.p, (uint32_t)zn);
    cdr_put_le32(w->z.p + 4, (uint32_t)w->pend.n);
    cdr_put_le32(w->z.p + 8, (uint32_t)fn);
    if (fn)
        memcpy(w->z.p + 12 + zn, w->pendf.p, fn);
    cdr_put_le32(w->z.p + 12 + zn + fn, st_crc(w->z.p + 12, zn + fn));
    w->kd[w->n_kd++] = (kdir){w->pend_first_h, w->f.pos, w->pend_n, w->pend_last_h};
    cdr_err e = stf_write(&w->f, w->z.p, 16 + zn + fn);
    w->pend.n = 0;
    w->pendf.n = 0;
    w->pend_n = 0;
    return e;
}

cdr_err st_ckw_append(st_ckw *w, st_ckpart *p)
{
    if (w->f.status)
        return w->f.status;
    if (p->n == 0)
        return CDR_OK;
    /* a chunk ends where a bucket does (past a few KiB): a run's cursor
     * seeks each bucket's start and so inflates each chunk once */
    if (w->pend_n && (p->first_h >> 56) != (w->pend_first_h >> 56) &&
        w->pend.n + w->pendf.n >= CKP_CHUNK_MIN) {
        cdr_err e = ck_cut(w);
        if (e != CDR_OK)
            return e;
    }
    if (w->pend_n == 0)
        w->pend_first_h = p->first_h;
    w->pend_last_h = p->last_h;
    st_buf_put(&w->pend, p->b.p, p->b.n);
    st_buf_put(&w->pendf, p->f.p, p->f.n);
    if (w->pend.failed || w->pendf.failed)
        return CDR_E_NOMEM;
    w->pend_n += p->n;
    w->n += p->n;
    p->b.n = 0;
    p->f.n = 0;
    p->n = 0;
    if (w->pend.n + w->pendf.n >= CKP_CHUNK_BYTES)
        return ck_cut(w);
    return CDR_OK;
}

cdr_err st_ckw_commit(st_ckw *w, char *err, size_t errlen)
{
    cdr_err e = ck_cut(w);
    if (e != CDR_OK)
        return e;
    st_buf d = {0};
    uint64_t kd_at = w->f.pos;
    for (size_t i = 0; i < w->n_kd; i++) {
        st_buf_u64le(&d, w->kd[i].first_h);
        st_buf_u64le(&d, w->kd[i].offset);
        st_buf_u64le(&d, w->kd[i].n);
        st_buf_u64le(&d, w->kd[i].last_h);
    }
    st_buf_u32le(&d, st_crc(d.p, d.n));
    if (d.failed) {
        st_buf_free(&d);
        return CDR_E_NOMEM;
    }
    stf_write(&w->f, d.p, d.n);
    st_buf_free(&d);
    unsigned char foot[CKP_FOOT_SIZE];
    memset(foot, 0, sizeof foot);
    memcpy(foot, CKP_FOOT, 8);
    cdr_put_le64(foot + 8, w->n);
    cdr_put_le64(foot + 16, kd_at);
    cdr_put_le64(foot + 24, w->n_kd);
    cdr_put_le32(foot + 32, (uint32_t)w->month);
    cdr_put_le32(foot + 36, CKP_VERSION);
    return stf_finish(&w->f, foot, sizeof foot, err, errlen);
}

void st_ckw_free(st_ckw *w)
{
    if (!w)
        return;
    stf_free(&w->f);
    st_buf_free(&w->pend);
    st_buf_free(&w->pendf);
    st_buf_free(&w->z);
    free(w->kd);
    free(w->lvl);
    free(w);
}

struct st_ckr {
    int fd;
    uint32_t version;       /* its format (CKP_VERSION_MIN..CKP_VERSION) */
    char *path;
    uint64_t size;
    cdr_month month;
    uint64_t n;
    kdir *kd;
    size_t n_kd;
};

cdr_month st_ckr_month(const st_ckr *r)
{
    return r->month;
}

uint64_t st_ckr_entries(const st_ckr *r)
{
    return r->n;
}

const char *st_ckr_name(const st_ckr *r)
{
    const char *s = strrchr(r->path, '/');
    return s ? s + 1 : r->path;
}

void st_ckr_close(st_ckr *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->kd);
    free(r->path);
    free(r);
}

cdr_err st_ckr_open(const char *path, st_ckr **out, char *err, size_t errlen)
{
    *out = NULL;
    st_ckr *r = calloc(1, sizeof *r);
    unsigned char *buf = NULL;
    if (!r)
        return CDR_E_NOMEM;
    r->fd = -1;
    r->path = strdup(path);
    if (!r->path)
        goto nomem;
    unsigned char foot[CKP_FOOT_SIZE];
    cdr_err e;
    if ((r->fd = stf_open_checked(path, CKP_MAGIC, CKP_FOOT, foot, sizeof foot, 36,
                                  CKP_VERSION_MIN, CKP_VERSION, "checkpoint", &r->size,
                                  &r->version, &e, err, errlen)) < 0) {
        st_ckr_close(r);
        return e;
    }
    r->n = cdr_le64(foot + 8);
    r->month = (cdr_month)cdr_le32(foot + 32);
    uint64_t kd = cdr_le64(foot + 16), nkd = cdr_le64(foot + 24);
    if (kd < HDR_SIZE || nkd > r->size / 32 || kd + nkd * 32 + 4 != r->size - CKP_FOOT_SIZE)
        goto bad;
    size_t dl = (size_t)(nkd * 32 + 4);
    if (!(buf = malloc(dl)))
        goto nomem;
    if (stf_pread(r->fd, buf, dl, kd) || cdr_le32(buf + dl - 4) != st_crc(buf, dl - 4))
        goto bad;
    r->kd = malloc((size_t)(nkd ? nkd : 1) * sizeof *r->kd);
    if (!r->kd)
        goto nomem;
    uint64_t total = 0;
    for (uint64_t i = 0; i < nkd; i++) {
        const unsigned char *p = buf + i * 32;
        r->kd[i] = (kdir){cdr_le64(p), cdr_le64(p + 8), cdr_le64(p + 16), cdr_le64(p + 24)};
        total += r->kd[i].n;
        if (r->kd[i].offset < HDR_SIZE || r->kd[i].offset >= kd ||
            r->kd[i].last_h < r->kd[i].first_h ||
            (i && r->kd[i].first_h < r->kd[i - 1].last_h))
            goto bad;
    }
    if (total != r->n)
        goto bad;
    r->n_kd = (size_t)nkd;
    free(buf);
    *out = r;
    return CDR_OK;
bad:
    cdr_seterr(err, errlen, "%s: not a checkpoint file, truncated or damaged", path);
    free(buf);
    st_ckr_close(r);
    return CDR_E_PARSE;
nomem:
    free(buf);
    st_ckr_close(r);
    return CDR_E_NOMEM;
}

static void ckcur_views(st_ckcur *c)
{
    c->rd = (st_rd){c->buf.p, c->buf.p + c->buf_n, 0};
    c->rf = (st_rd){c->buf.p + c->buf_n, c->buf.p + c->buf_n + c->buf_fn, 0};
}

/* Chunk k into c->buf: its entries inflated, then (format 5) their
 * fingerprints as they are. */
static cdr_err ckcur_load(st_ckcur *c, uint64_t k)
{
    st_ckr *r = c->r;
    if (c->loaded == r && c->chunk == k) {
        ckcur_views(c); /* (decoded already) */
        return CDR_OK;
    }
    c->loaded = NULL;
    unsigned char h[12];
    size_t hl = r->version >= 5 ? 12 : 8;
    uint64_t at = r->kd[k].offset;
    if (stf_pread(r->fd, h, hl, at) != CDR_OK)
        goto bad;
    uint32_t zl = cdr_le32(h), rl = cdr_le32(h + 4), fl = hl == 12 ? cdr_le32(h + 8) : 0;
    if (zl > (1u << 28) || rl > (1u << 28) || fl > (1u << 28) ||
        at + hl + zl + fl + 4 > r->size)
        goto bad;
    unsigned char *z = malloc((size_t)zl + fl + 4);
    if (!z)
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, z, (size_t)zl + fl + 4, at + hl) != CDR_OK ||
        cdr_le32(z + zl + fl) != st_crc(z, (size_t)zl + fl)) {
        free(z);
        goto bad;
    }
    c->buf.n = 0;
    if (st_buf_reserve(&c->buf, (size_t)rl + fl + 1) != 0) {
        free(z);
        return CDR_E_NOMEM;
    }
    struct inflate_state *st = malloc(sizeof *st);
    if (!st) {
        free(z);
        return CDR_E_NOMEM;
    }
    isal_inflate_init(st);
    st->crc_flag = ISAL_DEFLATE;
    st->next_in = z;
    st->avail_in = zl;
    st->next_out = c->buf.p;
    st->avail_out = rl;
    int ok = isal_inflate_stateless(st) == ISAL_DECOMP_OK && st->total_out == rl;
    free(st);
    if (ok && fl)
        memcpy(c->buf.p + rl, z + zl, fl);
    free(z);
    if (!ok)
        goto bad;
    c->chunk = k;
    c->loaded = r;
    c->buf_n = rl;
    c->buf_fn = fl;
    ckcur_views(c);
    return CDR_OK;
bad:
    snprintf(c->err, sizeof c->err, "%s: damaged checkpoint chunk", r->path);
    return CDR_E_PARSE;
}

cdr_err st_ckcur_next(st_ckcur *c)
{
    c->have = 0;
    if (c->done)
        return CDR_OK;
    while (c->rd.p >= c->rd.end) {
        if (c->rf.p != c->rf.end) { /* fingerprints no entry claimed */
            snprintf(c->err, sizeof c->err, "%s: damaged checkpoint chunk", c->r->path);
            return CDR_E_PARSE;
        }
        if (c->chunk + 1 >= c->r->n_kd) {
            c->done = 1;
            return CDR_OK;
        }
        cdr_err e = ckcur_load(c, c->chunk + 1);
        if (e != CDR_OK)
            return e;
    }
    const unsigned char *start = c->rd.p, *startf = c->rf.p;
    int g = st_ckpt_get(&c->rd, &c->rf, &c->cur, cdr_month_start(c->r->month),
                        (int)c->r->version);
    if (g != 0) {
        if (g == -2)
            return CDR_E_NOMEM;
        snprintf(c->err, sizeof c->err, "%s: damaged checkpoint entry", c->r->path);
        return CDR_E_PARSE;
    }
    c->cur_raw = start;
    c->cur_raw_n = (size_t)(c->rd.p - start);
    c->cur_rawf = startf;
    c->cur_rawf_n = (size_t)(c->rf.p - startf);
    c->have = 1;
    return CDR_OK;
}

typedef struct kd_key {
    const kdir *kd;
    uint64_t h;
} kd_key;

static int kd_below(size_t k, const void *x)
{
    const kd_key *q = x;
    return q->kd[k].last_h < q->h;
}

cdr_err st_ckcur_seek(st_ckcur *c, st_ckr *r, uint64_t h)
{
    if (c->r != r)
        c->loaded = NULL;
    c->r = r;
    c->have = c->done = 0;
    c->err[0] = '\0';
    if (r->n_kd == 0) {
        c->done = 1;
        return CDR_OK;
    }
    /* the first chunk that ends at or after h holds it (if anything does) */
    kd_key q = {r->kd, h};
    size_t lo = cdr_partition_point(r->n_kd, kd_below, &q);
    if (lo == r->n_kd) {
        c->done = 1;
        return CDR_OK;
    }
    cdr_err e = ckcur_load(c, lo);
    if (e != CDR_OK)
        return e;
    for (;;) {
        if ((e = st_ckcur_next(c)) != CDR_OK || !c->have)
            return e;
        if (c->cur.h >= h)
            return CDR_OK;
    }
}

void st_ckcur_free(st_ckcur *c)
{
    st_buf_free(&c->buf);
    st_ckpt_clear(&c->cur);
    memset(c, 0, sizeof *c);
}

void st_ckcur_copy(const st_ckcur *c, st_buf *b, st_buf *f)
{
    if (c->r->version == CKP_VERSION) {
        st_buf_put(b, c->cur_raw, c->cur_raw_n);
        st_buf_put(f, c->cur_rawf, c->cur_rawf_n);
        return;
    }
    /* an older file's entry, as read (an entry of format 2 or 3 keeps its
     * 18-bit fingerprints, and format 2's gets no rewind point) */
    st_ckpt_put(b, f, &c->cur, cdr_month_start(c->r->month));
}
