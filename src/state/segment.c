/* cdrecon — segment files: a run's records by subscriber-month in blocks of the column codec; the parts a bucket fills, the writer, the reader and its group cursor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "bsearch.h"
#include "cdrecon/engine.h"
#include "stfile.h"
#include "grow.h"

#define GROUPS_PER_CHUNK 1024

/* ---- segment parts -------------------------------------------------------------- */

void st_part_init(st_part *p)
{
    memset(p, 0, sizeof *p);
    p->open_first = 1;
}

void st_part_free(st_part *p)
{
    st_buf_free(&p->blocks);
    st_buf_free(&p->groups);
    free(p->block_recs);
    free(p->recs);
    free(p->rows);
    memset(p, 0, sizeof *p);
}

int st_part_flush(st_part *p, st_enc *enc)
{
    if (p->failed)
        return -1;
    if (p->n_recs == 0)
        return 0;
    for (size_t i = 0; i < p->n_recs; i++)
        p->recs[i].row = &p->rows[i];
    size_t at = p->blocks.n;
    st_buf_u32le(&p->blocks, 0);
    if (st_block_encode(p->recs, p->n_recs, enc, &p->blocks) != 0 || p->blocks.failed) {
        p->failed = 1;
        return -1;
    }
    st_put_le32(p->blocks.p + at, (uint32_t)(p->blocks.n - at - 4));
    if (p->n_blocks == p->blocks_cap) {
        size_t nc = p->blocks_cap ? p->blocks_cap * 2 : 8;
        uint32_t *b = realloc(p->block_recs, nc * sizeof *b);
        if (!b) {
            p->failed = 1;
            return -1;
        }
        p->block_recs = b;
        p->blocks_cap = nc;
    }
    p->block_recs[p->n_blocks++] = (uint32_t)p->n_recs;
    p->n_recs = 0;
    return 0;
}

int st_part_group(st_part *p, const char *msisdn, size_t n, uint64_t count, st_enc *enc)
{
    (void)enc;
    if (p->failed || n == 0 || n > CDR_NUMBER_MAX)
        return -1;
    st_buf_u8(&p->groups, (unsigned)n);
    st_buf_put(&p->groups, msisdn, n);
    st_buf_varint(&p->groups, count);
    if (p->groups.failed)
        return p->failed = 1, -1;
    p->n_groups++;
    p->open_first = 1;
    return 0;
}

int st_part_add(st_part *p, const cdr_row *r, uint32_t file_local, int64_t off_res, st_enc *enc)
{
    if (p->failed)
        return -1;
    size_t bs = p->block_size ? p->block_size : ST_BLOCK_RECORDS;
    if (!p->recs) {
        if (bs > ST_BLOCK_MAX)
            bs = p->block_size = ST_BLOCK_MAX;
        p->recs = malloc(bs * sizeof *p->recs);
        p->rows = malloc(bs * sizeof *p->rows);
        if (!p->recs || !p->rows) {
            p->failed = 1;
            return -1;
        }
    }
    if (p->n_recs == bs && st_part_flush(p, enc) != 0)
        return -1;
    p->rows[p->n_recs] = *r;
    p->recs[p->n_recs] = (st_rec){NULL, file_local, off_res, p->open_first};
    p->open_first = 0;
    p->n_recs++;
    p->n_records++;
    return 0;
}

/* ---- segment writer ------------------------------------------------------------- */

typedef struct cdir {
    uint64_t first_h, offset, first_rec;
    uint32_t n;
} cdir;

typedef struct bdir {
    uint64_t offset, first_rec;
} bdir;

struct st_segw {
    st_wfile f;
    cdr_month month;
    st_buf ftab;            /* the file table, serialised at creation */
    uint64_t n_records, n_groups;
    bdir *bd;
    size_t n_bd, bd_cap;
    /* group entries not yet in a chunk (with their first record index) */
    st_buf pend;
    uint64_t pend_n, pend_first_rec, pend_first_h;
    /* chunks are written after the blocks: they are kept here */
    st_buf chunks;
    cdir *cd;
    size_t n_cd, cd_cap;
};

uint64_t st_segw_records(const st_segw *w)
{
    return w->n_records;
}

uint64_t st_segw_bytes(const st_segw *w)
{
    return w->f.pos;
}

cdr_err st_segw_create(const char *path, cdr_month month, const st_file *files, size_t n_files,
                       st_segw **out, char *err, size_t errlen)
{
    *out = NULL;
    st_segw *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->month = month;
    st_buf_varint(&w->ftab, n_files);
    for (size_t i = 0; i < n_files; i++)
        st_file_put(&w->ftab, &files[i]);
    if (w->ftab.failed) {
        st_segw_free(w);
        return CDR_E_NOMEM;
    }
    cdr_err e = stf_start(&w->f, path, SEG_MAGIC, SEG_VERSION, month, err, errlen);
    if (e != CDR_OK) {
        st_segw_free(w);
        return e;
    }
    *out = w;
    return CDR_OK;
}

/* Cut the pending group entries into a chunk. */
static int seg_cut_chunk(st_segw *w)
{
    if (w->pend_n == 0)
        return 0;
    if (cdr_grow(&w->cd, &w->cd_cap, w->n_cd + 1, sizeof *w->cd, 64))
        return -1;
    w->cd[w->n_cd++] = (cdir){w->pend_first_h, w->chunks.n, w->pend_first_rec, (uint32_t)w->pend_n};
    st_buf_u32le(&w->chunks, (uint32_t)w->pend.n);
    st_buf_put(&w->chunks, w->pend.p, w->pend.n);
    st_buf_u32le(&w->chunks, st_crc(w->pend.p, w->pend.n));
    w->pend.n = 0;
    w->pend_n = 0;
    return w->chunks.failed ? -1 : 0;
}

cdr_err st_segw_append(st_segw *w, st_part *p)
{
    if (w->f.status)
        return w->f.status;
    if (p->failed || p->n_recs != 0)
        return CDR_E_INTERNAL; /* not flushed */
    /* blocks */
    size_t off = 0;
    uint64_t rec = w->n_records;
    for (size_t i = 0; i < p->n_blocks; i++) {
        uint32_t len = st_le32(p->blocks.p + off);
        if (cdr_grow(&w->bd, &w->bd_cap, w->n_bd + 1, sizeof *w->bd, 64))
            return CDR_E_NOMEM;
        w->bd[w->n_bd++] = (bdir){w->f.pos + off + 4, rec}; /* (this block of the part's) */
        rec += p->block_recs[i];
        off += 4 + (size_t)len;
    }
    cdr_err e = stf_write(&w->f, p->blocks.p, p->blocks.n);
    if (e != CDR_OK)
        return e;
    if (rec != w->n_records + p->n_records)
        return CDR_E_INTERNAL;
    /* groups: into chunks of GROUPS_PER_CHUNK */
    st_rd r = {p->groups.p, p->groups.p + p->groups.n, 0};
    uint64_t first = w->n_records;
    while (r.p < r.end) {
        const unsigned char *start = r.p;
        unsigned ml = st_rd_u8(&r);
        const unsigned char *m = st_rd_bytes(&r, ml);
        uint64_t cnt = st_rd_varint(&r);
        if (r.bad || !m)
            return CDR_E_INTERNAL;
        if (w->pend_n == 0) {
            w->pend_first_h = cdr_msisdn_hash((const char *)m, ml);
            w->pend_first_rec = first;
        }
        st_buf_put(&w->pend, start, (size_t)(r.p - start));
        w->pend_n++;
        w->n_groups++;
        first += cnt;
        if (w->pend_n == GROUPS_PER_CHUNK && seg_cut_chunk(w) != 0)
            return CDR_E_NOMEM;
    }
    if (first != w->n_records + p->n_records || w->pend.failed)
        return w->pend.failed ? CDR_E_NOMEM : CDR_E_INTERNAL;
    w->n_records = first;
    return CDR_OK;
}

cdr_err st_segw_commit(st_segw *w, char *err, size_t errlen)
{
    if (seg_cut_chunk(w) != 0)
        return CDR_E_NOMEM;
    unsigned char b4[4];
    uint64_t ft = w->f.pos;
    st_put_le32(b4, (uint32_t)w->ftab.n);
    stf_write(&w->f, b4, 4);
    stf_write(&w->f, w->ftab.p, w->ftab.n);
    st_put_le32(b4, st_crc(w->ftab.p, w->ftab.n));
    stf_write(&w->f, b4, 4);
    /* the chunks, then their directory with offsets made absolute */
    uint64_t chunks_at = w->f.pos;
    stf_write(&w->f, w->chunks.p, w->chunks.n);
    st_buf dirs = {0};
    for (size_t i = 0; i < w->n_cd; i++) {
        st_buf_u64le(&dirs, w->cd[i].first_h);
        st_buf_u64le(&dirs, chunks_at + w->cd[i].offset);
        st_buf_u64le(&dirs, w->cd[i].first_rec);
        st_buf_u32le(&dirs, w->cd[i].n);
        st_buf_u32le(&dirs, 0);
    }
    uint64_t cd_at = w->f.pos + 0;
    size_t cd_len = dirs.n;
    for (size_t i = 0; i < w->n_bd; i++) {
        st_buf_u64le(&dirs, w->bd[i].offset);
        st_buf_u64le(&dirs, w->bd[i].first_rec);
    }
    st_buf_u32le(&dirs, st_crc(dirs.p, dirs.n));
    if (dirs.failed) {
        st_buf_free(&dirs);
        return CDR_E_NOMEM;
    }
    stf_write(&w->f, dirs.p, dirs.n);
    uint64_t bd_at = cd_at + cd_len;
    st_buf_free(&dirs);
    unsigned char foot[SEG_FOOT_SIZE];
    memset(foot, 0, sizeof foot);
    memcpy(foot, SEG_FOOT, 8);
    st_put_le64(foot + 8, w->n_records);
    st_put_le64(foot + 16, w->n_groups);
    st_put_le64(foot + 24, ft);
    st_put_le64(foot + 32, cd_at);
    st_put_le64(foot + 40, w->n_cd);
    st_put_le64(foot + 48, bd_at);
    st_put_le64(foot + 56, w->n_bd);
    st_put_le32(foot + 64, (uint32_t)w->month);
    st_put_le32(foot + 68, SEG_VERSION);
    return stf_finish(&w->f, foot, sizeof foot, err, errlen);
}

void st_segw_free(st_segw *w)
{
    if (!w)
        return;
    stf_free(&w->f);
    st_buf_free(&w->ftab);
    st_buf_free(&w->pend);
    st_buf_free(&w->chunks);
    free(w->bd);
    free(w->cd);
    free(w);
}

/* ---- segment reader -------------------------------------------------------------------- */

struct st_segr {
    int fd;
    char *path;
    uint64_t size;
    cdr_month month;
    uint64_t n_records, n_groups;
    st_file *files;
    size_t n_files;
    cdir *cd;
    size_t n_cd;
    bdir *bd;
    size_t n_bd;
};

cdr_month st_segr_month(const st_segr *r)
{
    return r->month;
}

uint64_t st_segr_records(const st_segr *r)
{
    return r->n_records;
}

size_t st_segr_n_files(const st_segr *r)
{
    return r->n_files;
}

const char *st_segr_name(const st_segr *r)
{
    const char *s = strrchr(r->path, '/');
    return s ? s + 1 : r->path;
}

const st_file *st_segr_file(const st_segr *r, size_t i)
{
    return i < r->n_files ? &r->files[i] : NULL;
}

void st_segr_close(st_segr *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    for (size_t i = 0; i < r->n_files; i++)
        st_file_free(&r->files[i]);
    free(r->files);
    free(r->cd);
    free(r->bd);
    free(r->path);
    free(r);
}

/* The group and block directories (dlen bytes at cd, CRC at their end)
 * read and checked against the footer's bounds. */
static cdr_err read_dirs(st_segr *r, uint64_t cd, uint64_t ncd, uint64_t nbd, uint64_t ft,
                         char *err, size_t errlen)
{
    size_t dlen = (size_t)(ncd * 32 + nbd * 16 + 4);
    unsigned char *buf = malloc(dlen);
    cdr_err e = CDR_E_PARSE;
    if (!buf)
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, buf, dlen, cd) || st_le32(buf + dlen - 4) != st_crc(buf, dlen - 4)) {
        cdr_seterr(err, errlen, "%s: damaged segment directory", r->path);
        goto out;
    }
    r->cd = malloc((size_t)(ncd ? ncd : 1) * sizeof *r->cd);
    r->bd = malloc((size_t)(nbd ? nbd : 1) * sizeof *r->bd);
    if (!r->cd || !r->bd) {
        e = CDR_E_NOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < ncd; i++) {
        const unsigned char *p = buf + i * 32;
        r->cd[i] = (cdir){st_le64(p), st_le64(p + 8), st_le64(p + 16), st_le32(p + 24)};
        if (r->cd[i].offset < HDR_SIZE || r->cd[i].offset >= cd ||
            (i && (r->cd[i].first_rec < r->cd[i - 1].first_rec ||
                   r->cd[i].first_h < r->cd[i - 1].first_h))) {
            cdr_seterr(err, errlen, "%s: damaged group directory", r->path);
            goto out;
        }
    }
    for (uint64_t i = 0; i < nbd; i++) {
        const unsigned char *p = buf + ncd * 32 + i * 16;
        r->bd[i] = (bdir){st_le64(p), st_le64(p + 8)};
        if (r->bd[i].offset < HDR_SIZE + 4 || r->bd[i].offset >= ft ||
            r->bd[i].first_rec >= (r->n_records ? r->n_records : 1) ||
            (i && r->bd[i].first_rec <= r->bd[i - 1].first_rec) || (i == 0 && r->bd[0].first_rec)) {
            cdr_seterr(err, errlen, "%s: damaged block directory", r->path);
            goto out;
        }
    }
    r->n_cd = (size_t)ncd;
    r->n_bd = (size_t)nbd;
    e = CDR_OK;
out:
    free(buf);
    return e;
}

/* The file table at ft (its length, its entries, a CRC), before cd. */
static cdr_err read_file_table(st_segr *r, uint64_t ft, uint64_t cd, char *err, size_t errlen)
{
    unsigned char l4[4], *buf = NULL;
    cdr_err e = CDR_E_PARSE;
    uint32_t flen = 0;
    if (stf_pread(r->fd, l4, 4, ft) || (uint64_t)ft + 8 + (flen = st_le32(l4)) > cd)
        goto bad;
    if (!(buf = malloc((size_t)flen + 4)))
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, buf, (size_t)flen + 4, ft + 4) || st_le32(buf + flen) != st_crc(buf, flen))
        goto bad;
    st_rd rd = {buf, buf + flen, 0};
    uint64_t nf = st_rd_varint(&rd);
    if (rd.bad || nf > flen)
        goto bad;
    r->files = calloc((size_t)(nf ? nf : 1), sizeof *r->files);
    if (!r->files) {
        free(buf);
        return CDR_E_NOMEM;
    }
    for (uint64_t i = 0; i < nf; i++) {
        r->n_files = (size_t)i + 1;
        int g = st_file_get(&rd, &r->files[i]);
        if (g != 0) {
            e = g == -2 ? CDR_E_NOMEM : CDR_E_PARSE;
            goto bad;
        }
    }
    r->n_files = (size_t)nf;
    free(buf);
    return CDR_OK;
bad:
    cdr_seterr(err, errlen, "%s: damaged file table", r->path);
    free(buf);
    return e;
}

cdr_err st_segr_open(const char *path, st_segr **out, char *err, size_t errlen)
{
    *out = NULL;
    st_segr *r = calloc(1, sizeof *r);
    cdr_err e = CDR_E_PARSE;
    if (!r)
        return CDR_E_NOMEM;
    r->fd = -1;
    r->path = strdup(path);
    if (!r->path) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    unsigned char foot[SEG_FOOT_SIZE];
    uint32_t version;
    if ((r->fd = stf_open_checked(path, SEG_MAGIC, SEG_FOOT, foot, sizeof foot, 68, SEG_VERSION,
                                  SEG_VERSION, "segment", &r->size, &version, &e, err,
                                  errlen)) < 0)
        goto fail;
    r->month = (cdr_month)st_le32(foot + 64);
    r->n_records = st_le64(foot + 8);
    r->n_groups = st_le64(foot + 16);
    uint64_t ft = st_le64(foot + 24), cd = st_le64(foot + 32), ncd = st_le64(foot + 40);
    uint64_t bd = st_le64(foot + 48), nbd = st_le64(foot + 56);
    uint64_t end = r->size - SEG_FOOT_SIZE;
    if (ft < HDR_SIZE || ft + 8 > end || cd > end || ncd > end / 32 || nbd > end / 16 ||
        bd != cd + ncd * 32 || bd + nbd * 16 + 4 != end) {
        cdr_seterr(err, errlen, "%s: damaged segment footer", path);
        goto fail;
    }
    if ((e = read_dirs(r, cd, ncd, nbd, ft, err, errlen)) != CDR_OK ||
        (e = read_file_table(r, ft, cd, err, errlen)) != CDR_OK)
        goto fail;
    *out = r;
    return CDR_OK;
fail:
    st_segr_close(r);
    return e;
}

/* Load group chunk k into the cursor. */
static cdr_err gcur_load(st_gcur *c, uint64_t k)
{
    st_segr *r = c->r;
    const cdir *d = &r->cd[k];
    unsigned char l4[4];
    if (stf_pread(r->fd, l4, 4, d->offset) != CDR_OK) {
        snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return CDR_E_PARSE;
    }
    uint32_t len = st_le32(l4);
    if (len > (1u << 26) || d->offset + 8 + len > r->size) {
        snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return CDR_E_PARSE;
    }
    c->buf.n = 0;
    if (st_buf_reserve(&c->buf, (size_t)len + 4) != 0)
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, c->buf.p, (size_t)len + 4, d->offset + 4) != CDR_OK ||
        st_le32(c->buf.p + len) != st_crc(c->buf.p, len)) {
        snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return CDR_E_PARSE;
    }
    c->chunk = k;
    c->rd = (st_rd){c->buf.p, c->buf.p + len, 0};
    c->next_first = d->first_rec;
    return CDR_OK;
}

cdr_err st_gcur_next(st_gcur *c)
{
    st_segr *r = c->r;
    c->have = 0;
    if (c->done)
        return CDR_OK;
    while (c->rd.p >= c->rd.end) {
        if (c->chunk + 1 >= r->n_cd) {
            c->done = 1;
            return CDR_OK;
        }
        cdr_err e = gcur_load(c, c->chunk + 1);
        if (e != CDR_OK)
            return e;
    }
    unsigned ml = st_rd_u8(&c->rd);
    const unsigned char *m = (ml == 0 || ml > CDR_NUMBER_MAX) ? NULL : st_rd_bytes(&c->rd, ml);
    uint64_t cnt = st_rd_varint(&c->rd);
    if (!m || c->rd.bad || cnt == 0 || c->next_first + cnt > r->n_records) {
        snprintf(c->err, sizeof c->err, "%s: damaged group entry", r->path);
        return CDR_E_PARSE;
    }
    memcpy(c->msisdn, m, ml);
    c->msisdn[ml] = '\0';
    c->cur.msisdn = c->msisdn;
    c->cur.msisdn_len = ml;
    c->cur.h = cdr_msisdn_hash(c->msisdn, ml);
    c->cur.first = c->next_first;
    c->cur.count = cnt;
    c->next_first += cnt;
    c->have = 1;
    return CDR_OK;
}

cdr_err st_gcur_seek(st_gcur *c, st_segr *r, uint64_t h, const char *msisdn, size_t n)
{
    if (c->r != r) {
        st_buf keep = c->buf;
        st_block a = c->rows_blk, b = c->ids_blk;
        int whole = c->whole;
        memset(c, 0, sizeof *c);
        c->buf = keep;
        c->rows_blk = a;
        c->ids_blk = b;
        c->r = r;
        c->whole = whole;
    }
    c->rows_blk_no = c->ids_blk_no = -1;
    c->have = c->done = 0;
    c->err[0] = '\0';
    if (r->n_cd == 0) {
        c->done = 1;
        return CDR_OK;
    }
    /* the first chunk whose first hash is >= h, and one before it */
    size_t lo = 0, hi = r->n_cd;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (r->cd[m].first_h < h)
            lo = m + 1;
        else
            hi = m;
    }
    size_t k = lo ? lo - 1 : 0;
    cdr_err e = gcur_load(c, k);
    if (e != CDR_OK)
        return e;
    for (;;) {
        if ((e = st_gcur_next(c)) != CDR_OK || !c->have)
            return e;
        int cmp = msisdn ? st_key_cmp(c->cur.h, c->cur.msisdn, c->cur.msisdn_len, h, msisdn, n)
                         : (c->cur.h < h ? -1 : 0);
        if (cmp >= 0)
            return CDR_OK;
    }
}

int st_gcur_find(st_gcur *c, uint64_t h, const char *msisdn, size_t n)
{
    for (;;) {
        if (!c->have)
            return 0;
        int cmp = st_key_cmp(c->cur.h, c->cur.msisdn, c->cur.msisdn_len, h, msisdn, n);
        if (cmp == 0)
            return 1;
        if (cmp > 0)
            return 0;
        if (st_gcur_next(c) != CDR_OK)
            return -1;
    }
}

void st_gcur_free(st_gcur *c)
{
    st_buf_free(&c->buf);
    st_block_free(&c->rows_blk);
    st_block_free(&c->ids_blk);
    memset(c, 0, sizeof *c);
}

typedef struct bd_key {
    const bdir *bd;
    uint64_t rec;
} bd_key;

static int bd_at_or_before(size_t k, const void *x)
{
    const bd_key *q = x;
    return q->bd[k].first_rec <= q->rec;
}

/* The block holding record `rec`: the last whose first record is not
 * after it (the first block starts at record 0). */
static size_t block_of(const st_segr *r, uint64_t rec)
{
    bd_key q = {r->bd, rec};
    size_t k = cdr_partition_point(r->n_bd, bd_at_or_before, &q);
    return k ? k - 1 : 0;
}

static cdr_err load_block(st_gcur *c, size_t k, int ids, st_block *b, size_t from, size_t to)
{
    st_segr *r = c->r;
    unsigned char l4[4];
    uint64_t at = r->bd[k].offset;
    if (stf_pread(r->fd, l4, 4, at - 4) != CDR_OK) {
        snprintf(c->err, sizeof c->err, "%s: damaged block", r->path);
        return CDR_E_PARSE;
    }
    uint32_t len = st_le32(l4);
    if (len > (1u << 28) || at + len > r->size) {
        snprintf(c->err, sizeof c->err, "%s: damaged block", r->path);
        return CDR_E_PARSE;
    }
    unsigned char *tmp = malloc(len ? len : 1);
    if (!tmp)
        return CDR_E_NOMEM;
    cdr_err e = stf_pread(r->fd, tmp, len, at);
    if (e != CDR_OK) {
        free(tmp);
        snprintf(c->err, sizeof c->err, "%s: damaged block", r->path);
        return CDR_E_PARSE;
    }
    char why[200];
    int d = ids ? st_block_decode_ids(tmp, len, b, why, sizeof why)
                : st_block_decode_rows(tmp, len, b, from, to, why, sizeof why);
    free(tmp);
    if (d != 0) {
        if (d == -2)
            return CDR_E_NOMEM;
        snprintf(c->err, sizeof c->err, "%s: %s", r->path, why);
        return CDR_E_PARSE;
    }
    uint64_t expect = (k + 1 < r->n_bd ? r->bd[k + 1].first_rec : r->n_records) - r->bd[k].first_rec;
    if (b->n != expect) {
        snprintf(c->err, sizeof c->err, "%s: block holds %zu records, the directory says %llu",
                 r->path, b->n, (unsigned long long)expect);
        return CDR_E_PARSE;
    }
    return CDR_OK;
}

cdr_err st_gcur_ids(st_gcur *c, int (*fn)(const cdr_str *id, void *u), void *u)
{
    st_segr *r = c->r;
    if (!c->have)
        return CDR_E_INTERNAL;
    uint64_t rec = c->cur.first, end = c->cur.first + c->cur.count;
    while (rec < end) {
        size_t k = block_of(r, rec);
        if (c->ids_blk_no != (int64_t)k) {
            c->ids_blk_no = -1;
            cdr_err e = load_block(c, k, 1, &c->ids_blk, 0, SIZE_MAX);
            if (e != CDR_OK)
                return e;
            c->ids_blk_no = (int64_t)k;
        }
        uint64_t base = r->bd[k].first_rec, stop = base + c->ids_blk.n;
        for (; rec < end && rec < stop; rec++) {
            int s = fn(&c->ids_blk.rows[rec - base].record_id, u);
            if (s)
                return (cdr_err)s;
        }
    }
    return CDR_OK;
}

cdr_err st_gcur_rows(st_gcur *c, int (*fn)(const cdr_row *r, uint32_t file_local, void *u),
                     void *u)
{
    st_segr *r = c->r;
    if (!c->have)
        return CDR_E_INTERNAL;
    uint64_t rec = c->cur.first, end = c->cur.first + c->cur.count;
    while (rec < end) {
        size_t k = block_of(r, rec);
        uint64_t b0 = r->bd[k].first_rec;
        size_t from = (size_t)(rec - b0), to = (size_t)(end - b0); /* (to may pass the block) */
        if (c->rows_blk_no != (int64_t)k || from < c->rows_from || to > c->rows_to) {
            /* only the rows asked for (this group's, or what is left of
             * the block when it is read through): a subscriber's month
             * read alone decodes a few rows of each block, not all */
            c->rows_blk_no = -1;
            size_t upto = c->whole ? SIZE_MAX : to;
            cdr_err e = load_block(c, k, 0, &c->rows_blk, c->whole ? 0 : from, upto);
            if (e != CDR_OK)
                return e;
            c->rows_blk_no = (int64_t)k;
            c->rows_from = c->whole ? 0 : from;
            c->rows_to = upto;
        }
        uint64_t base = r->bd[k].first_rec, stop = base + c->rows_blk.n;
        for (; rec < end && rec < stop; rec++) {
            cdr_row *row = &c->rows_blk.rows[rec - base];
            uint32_t fl = c->rows_blk.file_local[rec - base];
            if (fl >= r->n_files || row->n_extra != r->files[fl].n_extra) {
                snprintf(c->err, sizeof c->err, "%s: record of an unknown file", r->path);
                return CDR_E_PARSE;
            }
            row->msisdn = (cdr_str){c->cur.msisdn, c->cur.msisdn_len};
            row->offset = st_file_offset(&r->files[fl], row->line, c->rows_blk.off_res[rec - base]);
            row->file_index = fl;
            row->extra_names = NULL;
            int s = fn(row, fl, u);
            if (s)
                return (cdr_err)s;
        }
    }
    return CDR_OK;
}
