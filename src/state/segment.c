/* cdrecon — segment files: a run's records by subscriber-month in blocks of the column codec; the parts a bucket fills, the writer, the reader and its group cursor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>

#include "errmsg.h"
#include "bsearch.h"
#include "cdrecon/engine.h"
#include "deflate1.h"
#include "stfile.h"
#include "grow.h"
#include "swar.h"

#define GROUPS_PER_CHUNK 1024
/* Format 3's group index (docs/state.md "The group index"): an msisdn of
 * 1..GIDX_DIGITS digits is kept as a number (its digit count beside it, so
 * leading zeros stay); the chunk is deflated at ISA-L level GIDX_LEVEL. */
#define GIDX_DIGITS 18
#define GIDX_LEVEL 1
#define GIDX_RAW_MAX (1u << 20) /* a chunk's bytes, inflated: 1,024 groups need < 64 KiB */

static const uint64_t P10[GIDX_DIGITS + 1] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull};

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
    cdr_put_le32(p->blocks.p + at, (uint32_t)(p->blocks.n - at - 4));
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
    uint32_t version;       /* the format written (SEG_VERSION; 2 only for tests) */
    /* the key of the last group appended: keys must go up (format 3's
     * reader puts a chunk's groups back in key order) */
    uint64_t last_h;
    unsigned char last_m[CDR_NUMBER_MAX];
    size_t last_n;
    /* format 3: a chunk being encoded */
    st_buf payload;
    struct gnum *nums;
    size_t nums_cap;
    unsigned char *lvl;     /* ISA-L's level buffer */
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
    return st_segw_create_format(path, month, files, n_files, SEG_VERSION, out, err, errlen);
}

cdr_err st_segw_create_format(const char *path, cdr_month month, const st_file *files,
                              size_t n_files, uint32_t version, st_segw **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    if (version < SEG_VERSION_MIN || version > SEG_VERSION)
        return CDR_E_INTERNAL;
    st_segw *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->month = month;
    w->version = version;
    if (version >= 3 && !(w->lvl = calloc(1, ISAL_DEF_LVL1_DEFAULT))) {
        free(w);
        return CDR_E_NOMEM;
    }
    st_buf_varint(&w->ftab, n_files);
    for (size_t i = 0; i < n_files; i++)
        st_file_put(&w->ftab, &files[i]);
    if (w->ftab.failed) {
        st_segw_free(w);
        return CDR_E_NOMEM;
    }
    cdr_err e = stf_start(&w->f, path, SEG_MAGIC, version, month, err, errlen);
    if (e != CDR_OK) {
        st_segw_free(w);
        return e;
    }
    *out = w;
    return CDR_OK;
}

/* A group of a chunk being encoded whose msisdn is kept as a number. */
typedef struct gnum {
    uint64_t v, count;
    unsigned nd;
} gnum;

static int gnum_cmp(const void *pa, const void *pb)
{
    const gnum *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v < b->v ? -1 : 1;
    return (a->nd > b->nd) - (a->nd < b->nd);
}

/* The msisdn m[0..n) as a number: 1 when it is 1..GIDX_DIGITS digits. */
static int gidx_number(const unsigned char *m, size_t n, uint64_t *v)
{
    if (n == 0 || n > GIDX_DIGITS)
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(m[i] - '0');
        if (d > 9)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

/* Format 3: the pending entries (msisdn length, msisdn, varint count, in
 * key order) as a chunk's payload (docs/state.md "The group index"): the
 * count of groups and of those kept as numbers; each number's digit count;
 * every group's record count (the numbers' first, in number order, then
 * the others'); the numbers as differences from the one before; the other
 * msisdns as length and bytes. A reader computes each group's hash again
 * and sorts: the key order costs no bytes. */
static int gidx_encode(st_segw *w)
{
    if (cdr_grow(&w->nums, &w->nums_cap, w->pend_n, sizeof *w->nums, GROUPS_PER_CHUNK))
        return -1;
    size_t nn = 0;
    st_rd r = {w->pend.p, w->pend.p + w->pend.n, 0};
    while (r.p < r.end) {
        unsigned ml = st_rd_u8(&r);
        const unsigned char *m = st_rd_bytes(&r, ml);
        uint64_t cnt = st_rd_varint(&r), v;
        if (r.bad || !m)
            return -1;
        if (gidx_number(m, ml, &v))
            w->nums[nn++] = (gnum){v, cnt, ml};
    }
    qsort(w->nums, nn, sizeof *w->nums, gnum_cmp);
    st_buf *b = &w->payload;
    b->n = 0;
    st_buf_varint(b, w->pend_n);
    st_buf_varint(b, nn);
    for (size_t i = 0; i < nn; i++)
        st_buf_u8(b, w->nums[i].nd);
    for (size_t i = 0; i < nn; i++)
        st_buf_varint(b, w->nums[i].count);
    /* the other groups' counts, then (below) their msisdns, in key order */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (size_t i = 0; i < nn; i++)
                st_buf_varint(b, w->nums[i].v - (i ? w->nums[i - 1].v : 0));
        r = (st_rd){w->pend.p, w->pend.p + w->pend.n, 0};
        while (r.p < r.end) {
            unsigned ml = st_rd_u8(&r);
            const unsigned char *m = st_rd_bytes(&r, ml);
            uint64_t cnt = st_rd_varint(&r), v;
            if (gidx_number(m, ml, &v))
                continue;
            if (pass == 0) {
                st_buf_varint(b, cnt);
            } else {
                st_buf_u8(b, ml);
                st_buf_put(b, m, ml);
            }
        }
    }
    return b->failed ? -1 : 0;
}

/* Cut the pending group entries into a chunk: format 2, u32 length, the
 * entries, u32 CRC; format 3, u32 deflated length, u32 inflated length,
 * the payload deflated (gidx_encode), u32 CRC of the deflated bytes. */
static int seg_cut_chunk(st_segw *w)
{
    if (w->pend_n == 0)
        return 0;
    if (cdr_grow(&w->cd, &w->cd_cap, w->n_cd + 1, sizeof *w->cd, 64))
        return -1;
    w->cd[w->n_cd++] = (cdir){w->pend_first_h, w->chunks.n, w->pend_first_rec, (uint32_t)w->pend_n};
    if (w->version < 3) {
        st_buf_u32le(&w->chunks, (uint32_t)w->pend.n);
        st_buf_put(&w->chunks, w->pend.p, w->pend.n);
        st_buf_u32le(&w->chunks, st_crc(w->pend.p, w->pend.n));
    } else {
        if (gidx_encode(w) != 0 || w->payload.n > GIDX_RAW_MAX)
            return -1;
        size_t bound = w->payload.n + w->payload.n / 8 + 1024, at = w->chunks.n, zn;
        if (st_buf_reserve(&w->chunks, bound + 12) != 0 ||
            cdr_deflate1(w->payload.p, w->payload.n, w->chunks.p + at + 8, bound, GIDX_LEVEL,
                         w->lvl, ISAL_DEF_LVL1_DEFAULT, 0, &zn) != 0)
            return -1;
        cdr_put_le32(w->chunks.p + at, (uint32_t)zn);
        cdr_put_le32(w->chunks.p + at + 4, (uint32_t)w->payload.n);
        w->chunks.n = at + 8 + zn;
        st_buf_u32le(&w->chunks, st_crc(w->chunks.p + at + 8, zn));
    }
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
        uint32_t len = cdr_le32(p->blocks.p + off);
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
        if (r.bad || !m || ml == 0 || ml > CDR_NUMBER_MAX)
            return CDR_E_INTERNAL;
        uint64_t h = cdr_msisdn_hash((const char *)m, ml);
        if (w->n_groups && st_key_cmp(w->last_h, (const char *)w->last_m, w->last_n, h,
                                      (const char *)m, ml) >= 0)
            return CDR_E_INTERNAL; /* groups out of key order */
        w->last_h = h;
        memcpy(w->last_m, m, ml);
        w->last_n = ml;
        if (w->pend_n == 0) {
            w->pend_first_h = h;
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
    cdr_put_le32(b4, (uint32_t)w->ftab.n);
    stf_write(&w->f, b4, 4);
    stf_write(&w->f, w->ftab.p, w->ftab.n);
    cdr_put_le32(b4, st_crc(w->ftab.p, w->ftab.n));
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
    cdr_put_le64(foot + 8, w->n_records);
    cdr_put_le64(foot + 16, w->n_groups);
    cdr_put_le64(foot + 24, ft);
    cdr_put_le64(foot + 32, cd_at);
    cdr_put_le64(foot + 40, w->n_cd);
    cdr_put_le64(foot + 48, bd_at);
    cdr_put_le64(foot + 56, w->n_bd);
    cdr_put_le32(foot + 64, (uint32_t)w->month);
    cdr_put_le32(foot + 68, w->version);
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
    st_buf_free(&w->payload);
    free(w->nums);
    free(w->lvl);
    free(w->bd);
    free(w->cd);
    free(w);
}

/* ---- segment reader -------------------------------------------------------------------- */

struct st_segr {
    int fd;
    uint32_t version;       /* its format (SEG_VERSION_MIN..SEG_VERSION) */
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
    if (stf_pread(r->fd, buf, dlen, cd) || cdr_le32(buf + dlen - 4) != st_crc(buf, dlen - 4)) {
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
        r->cd[i] = (cdir){cdr_le64(p), cdr_le64(p + 8), cdr_le64(p + 16), cdr_le32(p + 24)};
        if (r->cd[i].offset < HDR_SIZE || r->cd[i].offset >= cd || r->cd[i].n == 0 ||
            r->cd[i].n > GROUPS_PER_CHUNK ||
            (i && (r->cd[i].first_rec < r->cd[i - 1].first_rec ||
                   r->cd[i].first_h < r->cd[i - 1].first_h))) {
            cdr_seterr(err, errlen, "%s: damaged group directory", r->path);
            goto out;
        }
    }
    for (uint64_t i = 0; i < nbd; i++) {
        const unsigned char *p = buf + ncd * 32 + i * 16;
        r->bd[i] = (bdir){cdr_le64(p), cdr_le64(p + 8)};
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
    if (stf_pread(r->fd, l4, 4, ft) || (uint64_t)ft + 8 + (flen = cdr_le32(l4)) > cd)
        goto bad;
    if (!(buf = malloc((size_t)flen + 4)))
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, buf, (size_t)flen + 4, ft + 4) || cdr_le32(buf + flen) != st_crc(buf, flen))
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
    if ((r->fd = stf_open_checked(path, SEG_MAGIC, SEG_FOOT, foot, sizeof foot, 68,
                                  SEG_VERSION_MIN, SEG_VERSION, "segment", &r->size, &r->version,
                                  &e, err, errlen)) < 0)
        goto fail;
    r->month = (cdr_month)cdr_le32(foot + 64);
    r->n_records = cdr_le64(foot + 8);
    r->n_groups = cdr_le64(foot + 16);
    uint64_t ft = cdr_le64(foot + 24), cd = cdr_le64(foot + 32), ncd = cdr_le64(foot + 40);
    uint64_t bd = cdr_le64(foot + 48), nbd = cdr_le64(foot + 56);
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

/* ---- the group index: a chunk decoded ------------------------------------------------ */

/* The stored bytes of chunk d into c->buf: format 2, the entries (*len
 * bytes); format 3, the deflated payload (*len bytes) and its inflated
 * length (*raw_len). Its CRC checked. */
static cdr_err chunk_read(st_gcur *c, const cdir *d, uint32_t *len, uint32_t *raw_len)
{
    st_segr *r = c->r;
    unsigned char h8[8];
    size_t hl = r->version >= 3 ? 8 : 4;
    if (stf_pread(r->fd, h8, hl, d->offset) != CDR_OK)
        return CDR_E_PARSE;
    *len = cdr_le32(h8);
    *raw_len = hl == 8 ? cdr_le32(h8 + 4) : *len;
    if (*len > (1u << 26) || (hl == 8 && *raw_len > GIDX_RAW_MAX) ||
        d->offset + hl + 4 + *len > r->size)
        return CDR_E_PARSE;
    c->buf.n = 0;
    if (st_buf_reserve(&c->buf, (size_t)*len + 4) != 0)
        return CDR_E_NOMEM;
    if (stf_pread(r->fd, c->buf.p, (size_t)*len + 4, d->offset + hl) != CDR_OK ||
        cdr_le32(c->buf.p + *len) != st_crc(c->buf.p, *len))
        return CDR_E_PARSE;
    return CDR_OK;
}

/* Room for n decoded groups. */
static int ent_room(st_gcur *c, size_t n)
{
    return cdr_grow(&c->ent, &c->ent_cap, n, sizeof *c->ent, GROUPS_PER_CHUNK);
}

/* Format 2: the entries as stored (msisdn length, msisdn, varint count),
 * in key order. (n: the directory's, 1..GROUPS_PER_CHUNK, as for format 3.) */
static int chunk_entries_v2(st_gcur *c, uint32_t len, size_t n)
{
    st_rd rd = {c->buf.p, c->buf.p + len, 0};
    if (ent_room(c, n) != 0)
        return -2;
    size_t k = 0;
    while (rd.p < rd.end) {
        unsigned ml = st_rd_u8(&rd);
        const unsigned char *m = (ml == 0 || ml > CDR_NUMBER_MAX) ? NULL : st_rd_bytes(&rd, ml);
        uint64_t cnt = st_rd_varint(&rd);
        if (!m || rd.bad || k == n)
            return -1;
        c->ent[k++] = (st_gent){cdr_msisdn_hash((const char *)m, ml), cnt, (const char *)m, ml};
    }
    return k == n ? 0 : -1;
}

#define SORT_BUCKETS 2048 /* (twice the groups of a chunk) */

/* The groups e[0..n) (1 <= n <= GROUPS_PER_CHUNK) put in key order. A
 * chunk's hashes lie evenly between two (those of its first group and the
 * next chunk's): one pass of a counting sort on the top bits of h - min
 * puts them almost in order, an insertion by the whole key moves the few
 * left (msisdns sharing a hash among them: the rule in test_rate_weak),
 * then the groups move along the permutation's cycles. */
static void sort_keys(st_gent *e, size_t n)
{
    uint64_t lo = e[0].h, hi = e[0].h;
    for (size_t i = 1; i < n; i++) {
        lo = e[i].h < lo ? e[i].h : lo;
        hi = e[i].h > hi ? e[i].h : hi;
    }
    unsigned shift = 0;
    while (((hi - lo) >> shift) >= SORT_BUCKETS)
        shift++;
    uint32_t at[SORT_BUCKETS + 1];
    uint16_t ord[GROUPS_PER_CHUNK];
    memset(at, 0, sizeof at);
    for (size_t i = 0; i < n; i++)
        at[((e[i].h - lo) >> shift) + 1]++;
    for (size_t b = 1; b <= SORT_BUCKETS; b++)
        at[b] += at[b - 1];
    for (size_t i = 0; i < n; i++)
        ord[at[(e[i].h - lo) >> shift]++] = (uint16_t)i;
    for (size_t i = 1; i < n; i++) {
        const st_gent *x = &e[ord[i]];
        if (st_key_cmp(e[ord[i - 1]].h, e[ord[i - 1]].msisdn, e[ord[i - 1]].len, x->h, x->msisdn,
                       x->len) <= 0)
            continue;
        uint16_t xi = ord[i];
        size_t j = i;
        do {
            ord[j] = ord[j - 1];
            j--;
        } while (j && st_key_cmp(e[ord[j - 1]].h, e[ord[j - 1]].msisdn, e[ord[j - 1]].len, x->h,
                                 x->msisdn, x->len) > 0);
        ord[j] = xi;
    }
    /* e[i] = the group at ord[i], cycle by cycle; ord[j] = j marks done */
    for (size_t i = 0; i < n; i++) {
        if (ord[i] == i)
            continue;
        st_gent t = e[i];
        size_t j = i;
        while (ord[j] != i) {
            size_t k = ord[j];
            e[j] = e[k];
            ord[j] = (uint16_t)j;
            j = k;
        }
        e[j] = t;
        ord[j] = (uint16_t)j;
    }
}

/* v as nd (1..GIDX_DIGITS) digits at out, leading zeros kept, a word at a
 * time: out has room for 8 bytes past the nd (which the next overwrites;
 * copying from a buffer instead cost a third of a chunk's decoding). */
static inline void gidx_digits(char *out, uint64_t v, unsigned nd)
{
    uint64_t w;
    if (nd <= 8) {
        w = cdr_digits8_text((uint32_t)v) >> (8 * (8 - nd));
        memcpy(out, &w, 8);
        return;
    }
    uint64_t hi = v / 100000000u;
    if (nd <= 16) {
        w = cdr_digits8_text((uint32_t)hi) >> (8 * (16 - nd));
        memcpy(out, &w, 8);
    } else {
        w = cdr_digits8_text((uint32_t)(hi / 100000000u)) >> (8 * (24 - nd));
        memcpy(out, &w, 8);
        w = cdr_digits8_text((uint32_t)(hi % 100000000u));
        memcpy(out + nd - 16, &w, 8);
    }
    w = cdr_digits8_text((uint32_t)(v % 100000000u));
    memcpy(out + nd - 8, &w, 8);
}

/* A varint of an inflated payload: its one-byte values (most record
 * counts) inline. */
static inline uint64_t gidx_varint(st_rd *r)
{
    if (r->p < r->end && *r->p < 0x80)
        return *r->p++;
    return st_rd_varint(r);
}

/* Format 3: the payload inflated into c->raw, its groups decoded (the
 * numbers written out as text into c->names), hashed and put in key
 * order. */
static int chunk_entries_v3(st_gcur *c, uint32_t len, uint32_t raw_len, size_t n)
{
    c->raw.n = 0;
    if (st_buf_reserve(&c->raw, raw_len ? raw_len : 1) != 0)
        return -2;
    /* ISA-L's state (87 KB) only while inflating, as for checkpoint
     * chunks: a run keeps a cursor per segment and thread */
    struct inflate_state *st = malloc(sizeof *st);
    if (!st)
        return -2;
    isal_inflate_init(st);
    st->crc_flag = ISAL_DEFLATE;
    st->next_in = c->buf.p;
    st->avail_in = len;
    st->next_out = c->raw.p;
    st->avail_out = raw_len;
    int ok = isal_inflate_stateless(st) == ISAL_DECOMP_OK && st->total_out == raw_len;
    free(st);
    if (!ok)
        return -1;
    st_rd rd = {c->raw.p, c->raw.p + raw_len, 0};
    uint64_t nall = st_rd_varint(&rd), nn = st_rd_varint(&rd);
    if (rd.bad || nall != n || nn > n)
        return -1;
    const unsigned char *nd = st_rd_bytes(&rd, (size_t)nn);
    if (!nd || ent_room(c, n) != 0)
        return nd ? -2 : -1;
    size_t digits = 0;
    for (size_t i = 0; i < nn; i++)
        digits += nd[i];
    c->names.n = 0;
    if (st_buf_reserve(&c->names, digits + 8) != 0)
        return -2;
    st_gent *e = c->ent;
    for (size_t i = 0; i < n; i++)
        e[i].count = gidx_varint(&rd);
    uint64_t v = 0;
    char *out = (char *)c->names.p;
    for (size_t i = 0; i < nn; i++) {
        uint64_t gap = gidx_varint(&rd);
        unsigned k = nd[i];
        if (k == 0 || k > GIDX_DIGITS || (i && gap > UINT64_MAX - v))
            return -1;
        v = i ? v + gap : gap;
        if (v >= P10[k])
            return -1;
        gidx_digits(out, v, k);
        e[i].msisdn = out;
        e[i].len = k;
        out += k;
    }
    for (size_t i = nn; i < n; i++) {
        unsigned ml = st_rd_u8(&rd);
        const unsigned char *m = (ml == 0 || ml > CDR_NUMBER_MAX) ? NULL : st_rd_bytes(&rd, ml);
        if (!m)
            return -1;
        e[i].msisdn = (const char *)m;
        e[i].len = ml;
    }
    if (rd.bad || rd.p != rd.end)
        return -1;
    for (size_t i = 0; i < n; i++)
        e[i].h = cdr_msisdn_hash(e[i].msisdn, e[i].len);
    sort_keys(e, n);
    return 0;
}

/* Load group chunk k into the cursor (kept when it is there already). */
static cdr_err gcur_load(st_gcur *c, uint64_t k)
{
    st_segr *r = c->r;
    const cdir *d = &r->cd[k];
    c->at = 0;
    c->next_first = d->first_rec;
    if (c->loaded && c->chunk == k)
        return CDR_OK;
    c->loaded = 0;
    c->n_ent = 0;
    uint32_t len, raw_len;
    uint64_t end = k + 1 < r->n_cd ? r->cd[k + 1].first_rec : r->n_records;
    cdr_err e = d->first_rec >= end ? CDR_E_PARSE : chunk_read(c, d, &len, &raw_len);
    if (e != CDR_OK) {
        if (e != CDR_E_NOMEM)
            snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return e;
    }
    int g = r->version >= 3 ? chunk_entries_v3(c, len, raw_len, d->n)
                            : chunk_entries_v2(c, len, d->n);
    if (g == -2)
        return CDR_E_NOMEM;
    /* the groups: in key order, each with records, the first as the
     * directory says, together up to the next chunk's first record */
    uint64_t first = d->first_rec;
    for (size_t i = 0; g == 0 && i < d->n; i++) {
        const st_gent *x = &c->ent[i];
        if (x->count == 0 || x->count > end - first ||
            (i ? st_key_cmp(c->ent[i - 1].h, c->ent[i - 1].msisdn, c->ent[i - 1].len, x->h,
                            x->msisdn, x->len) >= 0
               : x->h != d->first_h))
            g = -1;
        first += x->count;
    }
    if (g != 0 || first != end) {
        snprintf(c->err, sizeof c->err, "%s: damaged group entry", r->path);
        return CDR_E_PARSE;
    }
    c->chunk = k;
    c->n_ent = d->n;
    c->loaded = 1;
    return CDR_OK;
}

cdr_err st_gcur_next(st_gcur *c)
{
    st_segr *r = c->r;
    c->have = 0;
    if (c->done)
        return CDR_OK;
    while (c->at >= c->n_ent) {
        if (c->chunk + 1 >= r->n_cd) {
            c->done = 1;
            return CDR_OK;
        }
        cdr_err e = gcur_load(c, c->chunk + 1);
        if (e != CDR_OK)
            return e;
    }
    const st_gent *x = &c->ent[c->at++];
    memcpy(c->msisdn, x->msisdn, x->len);
    c->msisdn[x->len] = '\0';
    c->cur.msisdn = c->msisdn;
    c->cur.msisdn_len = x->len;
    c->cur.h = x->h;
    c->cur.first = c->next_first;
    c->cur.count = x->count;
    c->next_first += x->count;
    c->have = 1;
    return CDR_OK;
}

cdr_err st_gcur_seek(st_gcur *c, st_segr *r, uint64_t h, const char *msisdn, size_t n)
{
    if (c->r != r) {
        /* a cursor moved to another segment keeps its memory */
        st_gcur keep = *c;
        memset(c, 0, sizeof *c);
        c->buf = keep.buf;
        c->raw = keep.raw;
        c->names = keep.names;
        c->ent = keep.ent;
        c->ent_cap = keep.ent_cap;
        c->rows_blk = keep.rows_blk;
        c->ids_blk = keep.ids_blk;
        c->r = r;
        c->whole = keep.whole;
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
    st_buf_free(&c->raw);
    st_buf_free(&c->names);
    free(c->ent);
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
    uint32_t len = cdr_le32(l4);
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
    int d = ids ? st_block_decode_ids(tmp, len, b, from, to, why, sizeof why)
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
        uint64_t b0 = r->bd[k].first_rec;
        size_t from = (size_t)(rec - b0), to = (size_t)(end - b0); /* (to may pass the block) */
        if (c->ids_blk_no != (int64_t)k || from < c->ids_from || to > c->ids_to) {
            /* only this group's ids: a doubt asks one subscriber-month of
             * each segment, a few rows of a block of thousands */
            c->ids_blk_no = -1;
            cdr_err e = load_block(c, k, 1, &c->ids_blk, from, to);
            if (e != CDR_OK)
                return e;
            c->ids_blk_no = (int64_t)k;
            c->ids_from = from;
            c->ids_to = to;
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
