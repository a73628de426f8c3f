/* cdrecon — the month state on disk (src/state/state.h, include/cdrecon/state.h,
 * docs/state.md): segment and checkpoint files, their writers, readers and
 * cursors, and the state directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "deflate1.h"
#include "cdrecon/engine.h"
#include "errmsg.h"
#include "state.h"

#define SEG_MAGIC "CDRSEG01"
#define SEG_FOOT "CDRSEGF1"
#define CKP_MAGIC "CDRCKP01"
#define CKP_FOOT "CDRCKPF1"
#define ST_VERSION 2 /* 2: checkpoint chunks carry their last key; 18-bit record_id fingerprints */
#define HDR_SIZE 16
#define SEG_FOOT_SIZE 80
#define CKP_FOOT_SIZE 56
#define GROUPS_PER_CHUNK 1024
#define CKP_CHUNK_BYTES (64u << 10)
#define CKP_CHUNK_MIN (8u << 10)
#define FILE_CAP ((uint64_t)1 << 40) /* the largest state file we accept */

static uint32_t crc(const void *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- checkpoints ------------------------------------------------------------ */

void st_ckpt_clear(st_ckpt *c)
{
    free(c->pkeys);
    free(c->rfp);
    memset(c, 0, sizeof *c);
}

/* c's own arrays, kept across a whole-struct assignment or memset */
typedef struct ck_arrays {
    uint32_t *pkeys;
    uint32_t pkeys_cap;
    uint32_t *rfp;
    uint32_t rfp_cap;
} ck_arrays;

static ck_arrays ck_keep(const st_ckpt *c)
{
    return (ck_arrays){c->pkeys, c->pkeys_cap, c->rfp, c->rfp_cap};
}

static void ck_restore(st_ckpt *c, ck_arrays a)
{
    c->pkeys = a.pkeys;
    c->pkeys_cap = a.pkeys_cap;
    c->rfp = a.rfp;
    c->rfp_cap = a.rfp_cap;
}

static int ck_reserve(void **p, uint32_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    if (n > UINT32_MAX)
        return -1;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
}

int st_ckpt_copy(st_ckpt *dst, const st_ckpt *src)
{
    ck_arrays a = ck_keep(dst);
    *dst = *src;
    ck_restore(dst, a);
    if (ck_reserve((void **)&dst->pkeys, &dst->pkeys_cap, src->n_pkeys, sizeof *dst->pkeys) ||
        ck_reserve((void **)&dst->rfp, &dst->rfp_cap, src->n_rfp, sizeof *dst->rfp)) {
        dst->n_pkeys = dst->n_rfp = 0;
        return -1;
    }
    if (src->n_pkeys)
        memcpy(dst->pkeys, src->pkeys, src->n_pkeys * sizeof *dst->pkeys);
    if (src->n_rfp)
        memcpy(dst->rfp, src->rfp, src->n_rfp * sizeof *dst->rfp);
    return 0;
}

int st_ckpt_has_rfp(const st_ckpt *c, uint32_t f)
{
    size_t lo = 0, hi = c->n_rfp;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (c->rfp[m] < f)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < c->n_rfp && c->rfp[lo] == f;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int st_ckpt_add_rfps(st_ckpt *c, uint32_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_u32);
    if (ck_reserve((void **)&c->rfp, &c->rfp_cap, (size_t)c->n_rfp + n, sizeof *c->rfp))
        return -1;
    /* merge from the back into c->rfp (its first i stay where they are),
     * then drop the repeats */
    size_t i = c->n_rfp, j = n, k = (size_t)c->n_rfp + n;
    while (j > 0) {
        if (i > 0 && c->rfp[i - 1] > v[j - 1])
            c->rfp[--k] = c->rfp[--i];
        else
            c->rfp[--k] = v[--j];
    }
    size_t total = (size_t)c->n_rfp + n, out = 0;
    for (size_t r = 0; r < total; r++)
        if (out == 0 || c->rfp[out - 1] != c->rfp[r])
            c->rfp[out++] = c->rfp[r];
    c->n_rfp = (uint32_t)out;
    return 0;
}

int st_ckpt_has_pkey(const st_ckpt *c, uint32_t k)
{
    size_t lo = 0, hi = c->n_pkeys;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (c->pkeys[m] < k)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < c->n_pkeys && c->pkeys[lo] == k;
}

int st_ckpt_add_pkey(st_ckpt *c, uint32_t k)
{
    size_t lo = 0, hi = c->n_pkeys;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (c->pkeys[m] < k)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo < c->n_pkeys && c->pkeys[lo] == k)
        return 0;
    if (c->n_pkeys == c->pkeys_cap) {
        uint32_t nc = c->pkeys_cap ? c->pkeys_cap * 2 : 8;
        uint32_t *p = realloc(c->pkeys, nc * sizeof *p);
        if (!p)
            return -1;
        c->pkeys = p;
        c->pkeys_cap = nc;
    }
    memmove(c->pkeys + lo + 1, c->pkeys + lo, (c->n_pkeys - lo) * sizeof *c->pkeys);
    c->pkeys[lo] = k;
    c->n_pkeys++;
    return 0;
}

void st_ckpt_put(st_buf *b, const st_ckpt *c, int64_t base)
{
    st_buf_u8(b, c->msisdn_len);
    st_buf_put(b, c->msisdn, c->msisdn_len);
    st_buf_varint(b, c->n_records);
    st_buf_varint(b, st_zz(c->last_start - base));
    st_buf_varint(b, c->tariff_id);
    st_buf_varint(b, c->prev_end == INT64_MIN ? 0 : st_zz(c->prev_end - c->last_start) + 1);
    st_buf_varint(b, c->n_pools);
    for (uint32_t i = 0; i < c->n_pools; i++) {
        st_buf_varint(b, (uint32_t)c->pools[i].plan);
        st_buf_varint(b, (uint32_t)c->pools[i].pool);
        st_buf_varint(b, st_zz(c->pools[i].left));
    }
    st_buf_varint(b, c->cflags); /* (flags count even without an overcharge) */
    st_buf_u8(b, (unsigned)(c->has_cand != 0));
    if (c->has_cand) {
        st_buf_varint(b, st_zz(c->over));
        st_buf_varint(b, c->cand_records);
        st_buf_varint(b, c->cats);
        st_buf_u8(b, (unsigned)c->tier);
        st_buf_u8(b, (unsigned)c->policy);
        st_buf_u8(b, (unsigned)c->special);
        st_buf_u8(b, (unsigned)c->reason);
    }
    st_buf_varint(b, c->n_findings);
    st_buf_varint(b, c->billed_hi);
    st_buf_varint(b, c->rebuilt_hi);
    st_buf_varint(b, c->n_pkeys);
    for (uint32_t i = 0; i < c->n_pkeys; i++)
        st_buf_u32le(b, c->pkeys[i]);
    st_buf_varint(b, c->n_rfp); /* then the gaps between them */
    for (uint32_t i = 0; i < c->n_rfp; i++)
        st_buf_varint(b, i ? (uint32_t)(c->rfp[i] - c->rfp[i - 1]) : c->rfp[0]);
}

int st_ckpt_get(st_rd *r, st_ckpt *c, int64_t base)
{
    ck_arrays a = ck_keep(c);
    memset(c, 0, sizeof *c);
    ck_restore(c, a);
    c->msisdn_len = (uint8_t)st_rd_u8(r);
    const unsigned char *m;
    if (c->msisdn_len == 0 || c->msisdn_len > CDR_NUMBER_MAX ||
        !(m = st_rd_bytes(r, c->msisdn_len)))
        return -1;
    memcpy(c->msisdn, m, c->msisdn_len);
    c->msisdn[c->msisdn_len] = '\0';
    c->h = cdr_msisdn_hash(c->msisdn, c->msisdn_len);
    c->n_records = st_rd_varint(r);
    c->last_start = base + st_unzz(st_rd_varint(r));
    c->tariff_id = (uint32_t)st_rd_varint(r);
    uint64_t pe = st_rd_varint(r);
    c->prev_end = pe == 0 ? INT64_MIN : c->last_start + st_unzz(pe - 1);
    uint64_t np = st_rd_varint(r);
    if (np > ST_POOLS_MAX)
        return -1;
    c->n_pools = (uint32_t)np;
    for (uint32_t i = 0; i < c->n_pools; i++) {
        c->pools[i].plan = (int32_t)st_rd_varint(r);
        c->pools[i].pool = (int32_t)st_rd_varint(r);
        c->pools[i].left = st_unzz(st_rd_varint(r));
    }
    c->cflags = (unsigned)st_rd_varint(r);
    c->has_cand = (int)st_rd_u8(r);
    if (c->has_cand > 1)
        return -1;
    if (c->has_cand) {
        c->over = st_unzz(st_rd_varint(r));
        c->cand_records = (uint32_t)st_rd_varint(r);
        c->cats = (uint32_t)st_rd_varint(r);
        c->tier = (int)st_rd_u8(r);
        c->policy = (int)st_rd_u8(r);
        c->special = (int)st_rd_u8(r);
        c->reason = (int)st_rd_u8(r);
    }
    c->n_findings = st_rd_varint(r);
    c->billed_hi = st_rd_varint(r);
    c->rebuilt_hi = st_rd_varint(r);
    uint64_t nk = st_rd_varint(r);
    if (r->bad || nk > (uint64_t)(r->end - r->p) / 4)
        return -1;
    if (nk > c->pkeys_cap) {
        uint32_t *k = realloc(c->pkeys, nk * sizeof *k);
        if (!k)
            return -2;
        c->pkeys = k;
        c->pkeys_cap = (uint32_t)nk;
    }
    c->n_pkeys = (uint32_t)nk;
    for (uint32_t i = 0; i < c->n_pkeys; i++) {
        c->pkeys[i] = st_rd_u32le(r);
        if (i && c->pkeys[i] <= c->pkeys[i - 1])
            return -1;
    }
    uint64_t nf = st_rd_varint(r);
    if (r->bad || nf > ((uint64_t)1 << ST_RFP_BITS) || nf > (uint64_t)(r->end - r->p))
        return -1;
    if (ck_reserve((void **)&c->rfp, &c->rfp_cap, (size_t)nf, sizeof *c->rfp))
        return -2;
    c->n_rfp = (uint32_t)nf;
    uint32_t v = 0;
    for (uint32_t i = 0; i < c->n_rfp; i++) {
        uint64_t g = st_rd_varint(r);
        if ((i && g == 0) || v + g >= ((uint64_t)1 << ST_RFP_BITS))
            return -1;
        v += (uint32_t)g;
        c->rfp[i] = v;
    }
    return r->bad ? -1 : 0;
}

/* ---- files ------------------------------------------------------------------- */

void st_file_free(st_file *f)
{
    if (!f)
        return;
    free(f->name);
    for (uint32_t i = 0; i < f->n_extra; i++)
        free(f->extra_names[i]);
    free(f->extra_names);
    free(f->anchors);
    memset(f, 0, sizeof *f);
}

static const st_anchor *anchor_for(const st_file *f, uint64_t line)
{
    if (f->n_anchors == 0 || line < f->anchors[0].line)
        return NULL;
    size_t lo = 0, hi = f->n_anchors;
    while (hi - lo > 1) {
        size_t m = lo + (hi - lo) / 2;
        if (f->anchors[m].line <= line)
            lo = m;
        else
            hi = m;
    }
    return &f->anchors[lo];
}

int64_t st_file_off_res(const st_file *f, uint64_t line, uint64_t offset)
{
    const st_anchor *a = anchor_for(f, line);
    if (!a)
        return (int64_t)offset;
    return (int64_t)(offset - a->offset - (line - a->line) * f->row_len);
}

uint64_t st_file_offset(const st_file *f, uint64_t line, int64_t res)
{
    const st_anchor *a = anchor_for(f, line);
    if (!a)
        return (uint64_t)res;
    return a->offset + (line - a->line) * f->row_len + (uint64_t)res;
}

static void put_file(st_buf *b, const st_file *f)
{
    size_t nl = strlen(f->name);
    st_buf_varint(b, st_zz(f->db_id));
    st_buf_varint(b, nl);
    st_buf_put(b, f->name, nl);
    st_buf_varint(b, f->n_extra);
    for (uint32_t i = 0; i < f->n_extra; i++) {
        size_t l = strlen(f->extra_names[i]);
        st_buf_varint(b, l);
        st_buf_put(b, f->extra_names[i], l);
    }
    st_buf_varint(b, f->row_len);
    st_buf_varint(b, f->n_anchors);
    uint64_t pl = 0, po = 0;
    for (uint32_t i = 0; i < f->n_anchors; i++) {
        st_buf_varint(b, f->anchors[i].line - pl);
        st_buf_varint(b, f->anchors[i].offset - po);
        pl = f->anchors[i].line;
        po = f->anchors[i].offset;
    }
}

static char *rd_str(st_rd *r, size_t max)
{
    uint64_t l = st_rd_varint(r);
    const unsigned char *p = (r->bad || l > max) ? NULL : st_rd_bytes(r, (size_t)l);
    if (!p) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)l + 1);
    if (!s)
        return NULL;
    memcpy(s, p, (size_t)l);
    s[l] = '\0';
    return s;
}

static int get_file(st_rd *r, st_file *f)
{
    memset(f, 0, sizeof *f);
    f->db_id = st_unzz(st_rd_varint(r));
    if (!(f->name = rd_str(r, 65536)))
        return r->bad ? -1 : -2;
    uint64_t ne = st_rd_varint(r);
    if (r->bad || ne > 65535)
        return -1;
    if (ne) {
        f->extra_names = calloc((size_t)ne, sizeof *f->extra_names);
        if (!f->extra_names)
            return -2;
    }
    for (uint64_t i = 0; i < ne; i++) {
        f->n_extra = (uint32_t)i;
        if (!(f->extra_names[i] = rd_str(r, 65536)))
            return r->bad ? -1 : -2;
    }
    f->n_extra = (uint32_t)ne;
    f->row_len = st_rd_varint(r);
    uint64_t na = st_rd_varint(r);
    if (r->bad || na > (uint64_t)(r->end - r->p) / 2)
        return -1;
    if (na) {
        f->anchors = malloc((size_t)na * sizeof *f->anchors);
        if (!f->anchors)
            return -2;
    }
    uint64_t pl = 0, po = 0;
    for (uint64_t i = 0; i < na; i++) {
        pl += st_rd_varint(r);
        po += st_rd_varint(r);
        f->anchors[i] = (st_anchor){pl, po};
    }
    f->n_anchors = (uint32_t)na;
    return r->bad ? -1 : 0;
}

/* ---- writing a file ------------------------------------------------------------ */

typedef struct wfile {
    char *path, *tmp;
    int fd;
    uint64_t pos;
    int committed;
    cdr_err status;
    char msg[512];
} wfile;

static cdr_err wf_open(wfile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path);
    f->path = malloc(n + 1);
    f->tmp = malloc(n + 5);
    if (!f->path || !f->tmp)
        return CDR_E_NOMEM;
    memcpy(f->path, path, n + 1);
    memcpy(f->tmp, path, n);
    memcpy(f->tmp + n, ".tmp", 5);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (f->fd < 0) {
        snprintf(f->msg, sizeof f->msg, "cannot create %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    return CDR_OK;
}

static cdr_err wf_write(wfile *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    if (f->status)
        return f->status;
    while (n) {
        ssize_t w = write(f->fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(f->msg, sizeof f->msg, "cannot write %s: %s", f->tmp,
                     w < 0 ? strerror(errno) : "no progress");
            return f->status = CDR_E_IO;
        }
        b += w;
        n -= (size_t)w;
        f->pos += (uint64_t)w;
    }
    return CDR_OK;
}

/* fsync, rename into place, fsync the directory. */
static cdr_err wf_commit(wfile *f)
{
    if (f->status)
        return f->status;
    if (fsync(f->fd) != 0 || close(f->fd) != 0) {
        f->fd = -1;
        snprintf(f->msg, sizeof f->msg, "cannot write %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0) {
        snprintf(f->msg, sizeof f->msg, "cannot rename %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    f->committed = 1;
    char *dir = strdup(f->path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return CDR_OK;
}

static void wf_free(wfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (!f->committed && f->tmp)
        unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* A segment or checkpoint file begun: created under its temporary name,
 * its header (magic, version, month) written; what failed said in err. */
static cdr_err wf_start(wfile *f, const char *path, const char *magic, cdr_month m, char *err,
                        size_t errlen)
{
    cdr_err e = wf_open(f, path);
    if (e == CDR_OK) {
        unsigned char h[HDR_SIZE];
        memcpy(h, magic, 8);
        put_le32(h + 8, ST_VERSION);
        put_le32(h + 12, (uint32_t)m);
        e = wf_write(f, h, sizeof h);
    }
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f->msg);
    return e;
}

/* wf_commit, what failed said in err. */
static cdr_err wf_finish(wfile *f, char *err, size_t errlen)
{
    cdr_err e = wf_commit(f);
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f->msg);
    return e;
}

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
    put_le32(p->blocks.p + at, (uint32_t)(p->blocks.n - at - 4));
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
    wfile f;
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
        put_file(&w->ftab, &files[i]);
    if (w->ftab.failed) {
        st_segw_free(w);
        return CDR_E_NOMEM;
    }
    cdr_err e = wf_start(&w->f, path, SEG_MAGIC, month, err, errlen);
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
    if (w->n_cd == w->cd_cap) {
        size_t nc = w->cd_cap ? w->cd_cap * 2 : 64;
        cdir *c = realloc(w->cd, nc * sizeof *c);
        if (!c)
            return -1;
        w->cd = c;
        w->cd_cap = nc;
    }
    w->cd[w->n_cd++] = (cdir){w->pend_first_h, w->chunks.n, w->pend_first_rec, (uint32_t)w->pend_n};
    st_buf_u32le(&w->chunks, (uint32_t)w->pend.n);
    st_buf_put(&w->chunks, w->pend.p, w->pend.n);
    st_buf_u32le(&w->chunks, crc(w->pend.p, w->pend.n));
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
        uint32_t len = le32(p->blocks.p + off);
        if (w->n_bd == w->bd_cap) {
            size_t nc = w->bd_cap ? w->bd_cap * 2 : 64;
            bdir *b = realloc(w->bd, nc * sizeof *b);
            if (!b)
                return CDR_E_NOMEM;
            w->bd = b;
            w->bd_cap = nc;
        }
        w->bd[w->n_bd++] = (bdir){w->f.pos + off + 4, rec}; /* (this block of the part's) */
        rec += p->block_recs[i];
        off += 4 + (size_t)len;
    }
    cdr_err e = wf_write(&w->f, p->blocks.p, p->blocks.n);
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
    put_le32(b4, (uint32_t)w->ftab.n);
    wf_write(&w->f, b4, 4);
    wf_write(&w->f, w->ftab.p, w->ftab.n);
    put_le32(b4, crc(w->ftab.p, w->ftab.n));
    wf_write(&w->f, b4, 4);
    /* the chunks, then their directory with offsets made absolute */
    uint64_t chunks_at = w->f.pos;
    wf_write(&w->f, w->chunks.p, w->chunks.n);
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
    st_buf_u32le(&dirs, crc(dirs.p, dirs.n));
    if (dirs.failed) {
        st_buf_free(&dirs);
        return CDR_E_NOMEM;
    }
    wf_write(&w->f, dirs.p, dirs.n);
    uint64_t bd_at = cd_at + cd_len;
    st_buf_free(&dirs);
    unsigned char foot[SEG_FOOT_SIZE];
    memset(foot, 0, sizeof foot);
    memcpy(foot, SEG_FOOT, 8);
    put_le64(foot + 8, w->n_records);
    put_le64(foot + 16, w->n_groups);
    put_le64(foot + 24, ft);
    put_le64(foot + 32, cd_at);
    put_le64(foot + 40, w->n_cd);
    put_le64(foot + 48, bd_at);
    put_le64(foot + 56, w->n_bd);
    put_le32(foot + 64, (uint32_t)w->month);
    put_le32(foot + 68, ST_VERSION);
    put_le32(foot + 76, crc(foot, 76));
    wf_write(&w->f, foot, sizeof foot);
    return wf_finish(&w->f, err, errlen);
}

void st_segw_free(st_segw *w)
{
    if (!w)
        return;
    wf_free(&w->f);
    st_buf_free(&w->ftab);
    st_buf_free(&w->pend);
    st_buf_free(&w->chunks);
    free(w->bd);
    free(w->cd);
    free(w);
}

/* ---- reading a file ------------------------------------------------------------------ */

static cdr_err pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *b = buf;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? CDR_E_PARSE : CDR_E_IO;
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return CDR_OK;
}

static int open_ro(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    *size = (uint64_t)sb.st_size;
    return fd;
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

cdr_err st_segr_open(const char *path, st_segr **out, char *err, size_t errlen)
{
    *out = NULL;
    st_segr *r = calloc(1, sizeof *r);
    unsigned char *buf = NULL;
    cdr_err e = CDR_E_PARSE;
    if (!r)
        return CDR_E_NOMEM;
    r->fd = -1;
    r->path = strdup(path);
    if (!r->path) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    if ((r->fd = open_ro(path, &r->size)) < 0) {
        cdr_seterr(err, errlen, "cannot open state file %s: %s", path, strerror(errno));
        e = CDR_E_IO;
        goto fail;
    }
    unsigned char h[HDR_SIZE], foot[SEG_FOOT_SIZE];
    if (r->size < HDR_SIZE + SEG_FOOT_SIZE || r->size > FILE_CAP ||
        pread_all(r->fd, h, sizeof h, 0) || memcmp(h, SEG_MAGIC, 8) ||
        pread_all(r->fd, foot, sizeof foot, r->size - SEG_FOOT_SIZE) ||
        memcmp(foot, SEG_FOOT, 8) || le32(foot + 76) != crc(foot, 76)) {
        cdr_seterr(err, errlen, "%s: not a segment file, or truncated", path);
        goto fail;
    }
    if (le32(h + 8) != ST_VERSION || le32(foot + 68) != ST_VERSION) {
        cdr_seterr(err, errlen, "%s: segment format version %u (this program reads %u)", path,
                le32(h + 8), ST_VERSION);
        goto fail;
    }
    r->month = (cdr_month)le32(foot + 64);
    r->n_records = le64(foot + 8);
    r->n_groups = le64(foot + 16);
    uint64_t ft = le64(foot + 24), cd = le64(foot + 32), ncd = le64(foot + 40);
    uint64_t bd = le64(foot + 48), nbd = le64(foot + 56);
    uint64_t end = r->size - SEG_FOOT_SIZE;
    if (ft < HDR_SIZE || ft + 8 > end || cd > end || ncd > end / 32 || nbd > end / 16 ||
        bd != cd + ncd * 32 || bd + nbd * 16 + 4 != end) {
        cdr_seterr(err, errlen, "%s: damaged segment footer", path);
        goto fail;
    }
    /* directories */
    size_t dlen = (size_t)(ncd * 32 + nbd * 16 + 4);
    buf = malloc(dlen);
    if (!buf) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    if (pread_all(r->fd, buf, dlen, cd) || le32(buf + dlen - 4) != crc(buf, dlen - 4)) {
        cdr_seterr(err, errlen, "%s: damaged segment directory", path);
        goto fail;
    }
    r->cd = malloc((size_t)(ncd ? ncd : 1) * sizeof *r->cd);
    r->bd = malloc((size_t)(nbd ? nbd : 1) * sizeof *r->bd);
    if (!r->cd || !r->bd) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    for (uint64_t i = 0; i < ncd; i++) {
        const unsigned char *p = buf + i * 32;
        r->cd[i] = (cdir){le64(p), le64(p + 8), le64(p + 16), le32(p + 24)};
        if (r->cd[i].offset < HDR_SIZE || r->cd[i].offset >= cd ||
            (i && (r->cd[i].first_rec < r->cd[i - 1].first_rec ||
                   r->cd[i].first_h < r->cd[i - 1].first_h))) {
            cdr_seterr(err, errlen, "%s: damaged group directory", path);
            goto fail;
        }
    }
    for (uint64_t i = 0; i < nbd; i++) {
        const unsigned char *p = buf + ncd * 32 + i * 16;
        r->bd[i] = (bdir){le64(p), le64(p + 8)};
        if (r->bd[i].offset < HDR_SIZE + 4 || r->bd[i].offset >= ft ||
            r->bd[i].first_rec >= (r->n_records ? r->n_records : 1) ||
            (i && r->bd[i].first_rec <= r->bd[i - 1].first_rec) || (i == 0 && r->bd[0].first_rec)) {
            cdr_seterr(err, errlen, "%s: damaged block directory", path);
            goto fail;
        }
    }
    r->n_cd = (size_t)ncd;
    r->n_bd = (size_t)nbd;
    free(buf);
    buf = NULL;
    /* the file table */
    unsigned char l4[4];
    if (pread_all(r->fd, l4, 4, ft)) {
        cdr_seterr(err, errlen, "%s: damaged file table", path);
        goto fail;
    }
    uint32_t flen = le32(l4);
    if ((uint64_t)ft + 8 + flen > cd) {
        cdr_seterr(err, errlen, "%s: damaged file table", path);
        goto fail;
    }
    buf = malloc((size_t)flen + 4);
    if (!buf) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    if (pread_all(r->fd, buf, (size_t)flen + 4, ft + 4) || le32(buf + flen) != crc(buf, flen)) {
        cdr_seterr(err, errlen, "%s: damaged file table", path);
        goto fail;
    }
    st_rd rd = {buf, buf + flen, 0};
    uint64_t nf = st_rd_varint(&rd);
    if (rd.bad || nf > flen) {
        cdr_seterr(err, errlen, "%s: damaged file table", path);
        goto fail;
    }
    r->files = calloc((size_t)(nf ? nf : 1), sizeof *r->files);
    if (!r->files) {
        e = CDR_E_NOMEM;
        goto fail;
    }
    for (uint64_t i = 0; i < nf; i++) {
        r->n_files = (size_t)i + 1;
        int g = get_file(&rd, &r->files[i]);
        if (g != 0) {
            e = g == -2 ? CDR_E_NOMEM : CDR_E_PARSE;
            cdr_seterr(err, errlen, "%s: damaged file table", path);
            goto fail;
        }
    }
    r->n_files = (size_t)nf;
    free(buf);
    *out = r;
    return CDR_OK;
fail:
    free(buf);
    st_segr_close(r);
    return e;
}

/* Load group chunk k into the cursor. */
static cdr_err gcur_load(st_gcur *c, uint64_t k)
{
    st_segr *r = c->r;
    const cdir *d = &r->cd[k];
    unsigned char l4[4];
    if (pread_all(r->fd, l4, 4, d->offset) != CDR_OK) {
        snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return CDR_E_PARSE;
    }
    uint32_t len = le32(l4);
    if (len > (1u << 26) || d->offset + 8 + len > r->size) {
        snprintf(c->err, sizeof c->err, "%s: damaged group chunk", r->path);
        return CDR_E_PARSE;
    }
    c->buf.n = 0;
    if (st_buf_reserve(&c->buf, (size_t)len + 4) != 0)
        return CDR_E_NOMEM;
    if (pread_all(r->fd, c->buf.p, (size_t)len + 4, d->offset + 4) != CDR_OK ||
        le32(c->buf.p + len) != crc(c->buf.p, len)) {
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

/* The block holding record `rec`. */
static size_t block_of(const st_segr *r, uint64_t rec)
{
    size_t lo = 0, hi = r->n_bd;
    while (hi - lo > 1) {
        size_t m = lo + (hi - lo) / 2;
        if (r->bd[m].first_rec <= rec)
            lo = m;
        else
            hi = m;
    }
    return lo;
}

static cdr_err load_block(st_gcur *c, size_t k, int ids, st_block *b, size_t from, size_t to)
{
    st_segr *r = c->r;
    unsigned char l4[4];
    uint64_t at = r->bd[k].offset;
    if (pread_all(r->fd, l4, 4, at - 4) != CDR_OK) {
        snprintf(c->err, sizeof c->err, "%s: damaged block", r->path);
        return CDR_E_PARSE;
    }
    uint32_t len = le32(l4);
    if (len > (1u << 28) || at + len > r->size) {
        snprintf(c->err, sizeof c->err, "%s: damaged block", r->path);
        return CDR_E_PARSE;
    }
    unsigned char *tmp = malloc(len ? len : 1);
    if (!tmp)
        return CDR_E_NOMEM;
    cdr_err e = pread_all(r->fd, tmp, len, at);
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

/* ---- checkpoint files ---------------------------------------------------------------- */

typedef struct kdir {
    uint64_t first_h, offset, n, last_h;
} kdir;

struct st_ckw {
    wfile f;
    cdr_month month;
    uint64_t n;
    st_buf pend;            /* entries of the chunk being filled */
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
    cdr_err e = wf_start(&w->f, path, CKP_MAGIC, month, err, errlen);
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
    if (w->n_kd == w->kd_cap) {
        size_t nc = w->kd_cap ? w->kd_cap * 2 : 64;
        kdir *k = realloc(w->kd, nc * sizeof *k);
        if (!k)
            return CDR_E_NOMEM;
        w->kd = k;
        w->kd_cap = nc;
    }
    size_t bound = w->pend.n + w->pend.n / 8 + 1024;
    w->z.n = 0;
    if (st_buf_reserve(&w->z, bound + 12) != 0)
        return CDR_E_NOMEM;
    size_t zn;
    if (cdr_deflate1(w->pend.p, w->pend.n, w->z.p + 8, bound, 1, w->lvl, ISAL_DEF_LVL1_DEFAULT, 0,
                     &zn) != 0)
        return CDR_E_INTERNAL;
    put_le32(w->z.p, (uint32_t)zn);
    put_le32(w->z.p + 4, (uint32_t)w->pend.n);
    put_le32(w->z.p + 8 + zn, crc(w->z.p + 8, zn));
    w->kd[w->n_kd++] = (kdir){w->pend_first_h, w->f.pos, w->pend_n, w->pend_last_h};
    cdr_err e = wf_write(&w->f, w->z.p, 12 + zn);
    w->pend.n = 0;
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
        w->pend.n >= CKP_CHUNK_MIN) {
        cdr_err e = ck_cut(w);
        if (e != CDR_OK)
            return e;
    }
    if (w->pend_n == 0)
        w->pend_first_h = p->first_h;
    w->pend_last_h = p->last_h;
    st_buf_put(&w->pend, p->b.p, p->b.n);
    if (w->pend.failed)
        return CDR_E_NOMEM;
    w->pend_n += p->n;
    w->n += p->n;
    p->b.n = 0;
    p->n = 0;
    if (w->pend.n >= CKP_CHUNK_BYTES)
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
    st_buf_u32le(&d, crc(d.p, d.n));
    if (d.failed) {
        st_buf_free(&d);
        return CDR_E_NOMEM;
    }
    wf_write(&w->f, d.p, d.n);
    st_buf_free(&d);
    unsigned char foot[CKP_FOOT_SIZE];
    memset(foot, 0, sizeof foot);
    memcpy(foot, CKP_FOOT, 8);
    put_le64(foot + 8, w->n);
    put_le64(foot + 16, kd_at);
    put_le64(foot + 24, w->n_kd);
    put_le32(foot + 32, (uint32_t)w->month);
    put_le32(foot + 36, ST_VERSION);
    put_le32(foot + 52, crc(foot, 52));
    wf_write(&w->f, foot, sizeof foot);
    return wf_finish(&w->f, err, errlen);
}

void st_ckw_free(st_ckw *w)
{
    if (!w)
        return;
    wf_free(&w->f);
    st_buf_free(&w->pend);
    st_buf_free(&w->z);
    free(w->kd);
    free(w->lvl);
    free(w);
}

struct st_ckr {
    int fd;
    char *path;
    uint64_t size;
    cdr_month month;
    uint64_t n;
    kdir *kd;
    size_t n_kd;
};

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
    if ((r->fd = open_ro(path, &r->size)) < 0) {
        cdr_seterr(err, errlen, "cannot open state file %s: %s", path, strerror(errno));
        st_ckr_close(r);
        return CDR_E_IO;
    }
    unsigned char h[HDR_SIZE], foot[CKP_FOOT_SIZE];
    if (r->size < HDR_SIZE + CKP_FOOT_SIZE || r->size > FILE_CAP ||
        pread_all(r->fd, h, sizeof h, 0) || memcmp(h, CKP_MAGIC, 8) ||
        pread_all(r->fd, foot, sizeof foot, r->size - CKP_FOOT_SIZE) ||
        memcmp(foot, CKP_FOOT, 8) || le32(foot + 52) != crc(foot, 52) ||
        le32(h + 8) != ST_VERSION || le32(foot + 36) != ST_VERSION)
        goto bad;
    r->n = le64(foot + 8);
    r->month = (cdr_month)le32(foot + 32);
    uint64_t kd = le64(foot + 16), nkd = le64(foot + 24);
    if (kd < HDR_SIZE || nkd > r->size / 32 || kd + nkd * 32 + 4 != r->size - CKP_FOOT_SIZE)
        goto bad;
    size_t dl = (size_t)(nkd * 32 + 4);
    if (!(buf = malloc(dl)))
        goto nomem;
    if (pread_all(r->fd, buf, dl, kd) || le32(buf + dl - 4) != crc(buf, dl - 4))
        goto bad;
    r->kd = malloc((size_t)(nkd ? nkd : 1) * sizeof *r->kd);
    if (!r->kd)
        goto nomem;
    uint64_t total = 0;
    for (uint64_t i = 0; i < nkd; i++) {
        const unsigned char *p = buf + i * 32;
        r->kd[i] = (kdir){le64(p), le64(p + 8), le64(p + 16), le64(p + 24)};
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

static cdr_err ckcur_load(st_ckcur *c, uint64_t k)
{
    st_ckr *r = c->r;
    if (c->loaded == r && c->chunk == k) {
        c->rd = (st_rd){c->buf.p, c->buf.p + c->buf_n, 0}; /* (decoded already) */
        return CDR_OK;
    }
    c->loaded = NULL;
    unsigned char h8[8];
    uint64_t at = r->kd[k].offset;
    if (pread_all(r->fd, h8, 8, at) != CDR_OK)
        goto bad;
    uint32_t zl = le32(h8), rl = le32(h8 + 4);
    if (zl > (1u << 28) || rl > (1u << 28) || at + 12 + zl > r->size)
        goto bad;
    unsigned char *z = malloc((size_t)zl + 4);
    if (!z)
        return CDR_E_NOMEM;
    if (pread_all(r->fd, z, (size_t)zl + 4, at + 8) != CDR_OK || le32(z + zl) != crc(z, zl)) {
        free(z);
        goto bad;
    }
    c->buf.n = 0;
    if (st_buf_reserve(&c->buf, rl ? rl : 1) != 0) {
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
    free(z);
    if (!ok)
        goto bad;
    c->chunk = k;
    c->loaded = r;
    c->buf_n = rl;
    c->rd = (st_rd){c->buf.p, c->buf.p + rl, 0};
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
        if (c->chunk + 1 >= c->r->n_kd) {
            c->done = 1;
            return CDR_OK;
        }
        cdr_err e = ckcur_load(c, c->chunk + 1);
        if (e != CDR_OK)
            return e;
    }
    const unsigned char *start = c->rd.p;
    int g = st_ckpt_get(&c->rd, &c->cur, cdr_month_start(c->r->month));
    if (g != 0) {
        if (g == -2)
            return CDR_E_NOMEM;
        snprintf(c->err, sizeof c->err, "%s: damaged checkpoint entry", c->r->path);
        return CDR_E_PARSE;
    }
    c->cur_raw = start;
    c->cur_raw_n = (size_t)(c->rd.p - start);
    c->have = 1;
    return CDR_OK;
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
    size_t lo = 0, hi = r->n_kd;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (r->kd[m].last_h < h)
            lo = m + 1;
        else
            hi = m;
    }
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

/* ---- the state directory ----------------------------------------------------------- */

size_t cdr_state_file_name(cdr_state_kind k, cdr_month m, int64_t run_id, char *buf)
{
    char mo[8];
    cdr_month_format(m, mo);
    return (size_t)snprintf(buf, 64, "%s-%s-r%07lld.%s", k == CDR_STATE_SEGMENT ? "seg" : "ckp",
                            mo, (long long)run_id, k == CDR_STATE_SEGMENT ? "cds" : "cdk");
}

int cdr_state_file_parse(const char *name, cdr_state_kind *k, cdr_month *m, int64_t *run_id)
{
    /* seg-YYYY-MM-rNNNNNNN.cds */
    size_t n = strlen(name);
    if (n < 24)
        return -1;
    if (!strncmp(name, "seg-", 4) && !strcmp(name + n - 4, ".cds"))
        *k = CDR_STATE_SEGMENT;
    else if (!strncmp(name, "ckp-", 4) && !strcmp(name + n - 4, ".cdk"))
        *k = CDR_STATE_CHECKPOINT;
    else
        return -1;
    if (cdr_month_parse(name + 4, 7, m) != CDR_OK || name[11] != '-' || name[12] != 'r')
        return -1;
    int64_t v = 0;
    size_t i = 13;
    for (; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9' || v > INT64_MAX / 10 - 9)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    if (i == 13)
        return -1;
    *run_id = v;
    char again[64];
    cdr_state_file_name(*k, *m, v, again);
    return strcmp(again, name) == 0 ? 0 : -1;
}

typedef struct smonth {
    cdr_month m;
    st_segr **segs;
    size_t n_segs;
    st_ckr *ckp;
} smonth;

struct cdr_state {
    char *dir;
    smonth *months;
    size_t n_months;
    cdr_month *mlist;
};

static smonth *month_get(cdr_state *s, cdr_month m, int create)
{
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m)
            return &s->months[i];
    if (!create)
        return NULL;
    smonth *n = realloc(s->months, (s->n_months + 1) * sizeof *n);
    if (!n)
        return NULL;
    s->months = n;
    /* keep them sorted */
    size_t at = s->n_months;
    while (at > 0 && s->months[at - 1].m > m) {
        s->months[at] = s->months[at - 1];
        at--;
    }
    memset(&s->months[at], 0, sizeof s->months[at]);
    s->months[at].m = m;
    s->n_months++;
    return &s->months[at];
}

const char *cdr_state_dir(const cdr_state *s)
{
    return s->dir;
}

void cdr_state_close(cdr_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_months; i++) {
        for (size_t j = 0; j < s->months[i].n_segs; j++)
            st_segr_close(s->months[i].segs[j]);
        free(s->months[i].segs);
        st_ckr_close(s->months[i].ckp);
    }
    free(s->months);
    free(s->mlist);
    free(s->dir);
    free(s);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

cdr_err cdr_state_open(const char *dir, const char *const *live, size_t n, cdr_state **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    cdr_state *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return CDR_E_NOMEM;
    }
    cdr_err e = CDR_OK;
    for (size_t i = 0; i < n && e == CDR_OK; i++) {
        cdr_state_kind k;
        cdr_month m;
        int64_t run;
        if (cdr_state_file_parse(live[i], &k, &m, &run) != 0) {
            cdr_seterr(err, errlen, "%s: not a state file name", live[i]);
            e = CDR_E_PARSE;
            break;
        }
        char *path = join(dir, live[i]);
        smonth *sm = month_get(s, m, 1);
        if (!path || !sm) {
            free(path);
            e = CDR_E_NOMEM;
            break;
        }
        if (k == CDR_STATE_SEGMENT) {
            st_segr *r;
            e = st_segr_open(path, &r, err, errlen);
            if (e == CDR_OK) {
                st_segr **ns = realloc(sm->segs, (sm->n_segs + 1) * sizeof *ns);
                if (!ns) {
                    st_segr_close(r);
                    e = CDR_E_NOMEM;
                } else {
                    sm->segs = ns;
                    sm->segs[sm->n_segs++] = r;
                    if (r->month != m) {
                        cdr_seterr(err, errlen, "%s: holds month %d, its name says %d", path,
                                (int)r->month, (int)m);
                        e = CDR_E_PARSE;
                    }
                }
            }
        } else if (sm->ckp) {
            cdr_seterr(err, errlen, "two live checkpoint files for one month (%s)", live[i]);
            e = CDR_E_PARSE;
        } else {
            e = st_ckr_open(path, &sm->ckp, err, errlen);
            if (e == CDR_OK && sm->ckp->month != m) {
                cdr_seterr(err, errlen, "%s: holds another month than its name says", path);
                e = CDR_E_PARSE;
            }
        }
        free(path);
    }
    if (e == CDR_OK) {
        s->mlist = malloc((s->n_months ? s->n_months : 1) * sizeof *s->mlist);
        if (!s->mlist)
            e = CDR_E_NOMEM;
        for (size_t i = 0; e == CDR_OK && i < s->n_months; i++) {
            s->mlist[i] = s->months[i].m;
            if (!s->months[i].ckp && s->months[i].n_segs) {
                cdr_seterr(err, errlen, "records of a month without its checkpoint file");
                e = CDR_E_PARSE;
            }
        }
    }
    if (e != CDR_OK) {
        cdr_state_close(s);
        return e;
    }
    *out = s;
    return CDR_OK;
}

const cdr_month *cdr_state_months(const cdr_state *s, size_t *n)
{
    *n = s->n_months;
    return s->mlist;
}

uint64_t cdr_state_month_records(const cdr_state *s, cdr_month m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m)
            for (size_t j = 0; j < s->months[i].n_segs; j++)
                n += s->months[i].segs[j]->n_records;
    return n;
}

uint64_t cdr_state_month_submonths(const cdr_state *s, cdr_month m)
{
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m && s->months[i].ckp)
            return s->months[i].ckp->n;
    return 0;
}

/* Internal accessors for the engine (state.h users). */
size_t st_state_segments(cdr_state *s, cdr_month m, st_segr ***segs)
{
    smonth *sm = month_get(s, m, 0);
    *segs = sm ? sm->segs : NULL;
    return sm ? sm->n_segs : 0;
}

st_ckr *st_state_checkpoint(cdr_state *s, cdr_month m)
{
    smonth *sm = month_get(s, m, 0);
    return sm ? sm->ckp : NULL;
}

typedef struct rows_ctx {
    cdr_state_row_fn fn;
    void *u;
    st_segr *seg;
} rows_ctx;

static int rows_cb(const cdr_row *r, uint32_t fl, void *u)
{
    rows_ctx *x = u;
    const st_file *f = &x->seg->files[fl];
    cdr_row row = *r;
    row.file_index = 0;
    row.extra_names = NULL;
    if (row.n_extra == f->n_extra && f->n_extra) {
        /* the names as views, for the caller */
        cdr_str names[256];
        uint32_t k = f->n_extra < 256 ? f->n_extra : 256;
        for (uint32_t i = 0; i < k; i++)
            names[i] = (cdr_str){f->extra_names[i], strlen(f->extra_names[i])};
        row.extra_names = names;
        row.n_extra = k;
        return x->fn(&row, f->name, f->db_id, x->u);
    }
    return x->fn(&row, f->name, f->db_id, x->u);
}

cdr_err cdr_state_submonth_rows(cdr_state *s, const char *msisdn, cdr_month month,
                                cdr_state_row_fn fn, void *user, char *err, size_t errlen)
{
    smonth *sm = month_get(s, month, 0);
    size_t n = strlen(msisdn);
    uint64_t h = cdr_msisdn_hash(msisdn, n);
    int any = 0;
    if (!sm)
        return CDR_E_NOTFOUND;
    for (size_t i = 0; i < sm->n_segs; i++) {
        st_gcur c;
        memset(&c, 0, sizeof c);
        cdr_err e = st_gcur_seek(&c, sm->segs[i], h, msisdn, n);
        if (e == CDR_OK && c.have &&
            st_key_cmp(c.cur.h, c.cur.msisdn, c.cur.msisdn_len, h, msisdn, n) == 0) {
            rows_ctx x = {fn, user, sm->segs[i]};
            any = 1;
            e = st_gcur_rows(&c, rows_cb, &x);
        }
        if (e != CDR_OK && c.err[0])
            cdr_seterr(err, errlen, "%s", c.err);
        st_gcur_free(&c);
        if (e != CDR_OK)
            return e;
    }
    return any ? CDR_OK : CDR_E_NOTFOUND;
}

int cdr_state_submonth_info(cdr_state *s, const char *msisdn, cdr_month month,
                            uint64_t *records, uint32_t *tariff_id, char *err, size_t errlen)
{
    smonth *sm = month_get(s, month, 0);
    if (!sm || !sm->ckp)
        return 0;
    size_t n = strlen(msisdn);
    uint64_t h = cdr_msisdn_hash(msisdn, n);
    st_ckcur c;
    memset(&c, 0, sizeof c);
    cdr_err e = st_ckcur_seek(&c, sm->ckp, h);
    int found = 0;
    while (e == CDR_OK && c.have && c.cur.h == h) {
        if (c.cur.msisdn_len == n && !memcmp(c.cur.msisdn, msisdn, n)) {
            *records = c.cur.n_records;
            *tariff_id = c.cur.tariff_id;
            found = 1;
            break;
        }
        e = st_ckcur_next(&c);
    }
    if (e != CDR_OK) {
        cdr_seterr(err, errlen, "%s", c.err);
        found = -1;
    }
    st_ckcur_free(&c);
    return found;
}

cdr_err cdr_state_collect_garbage(const char *dir, const char *const *live, size_t n,
                                  uint64_t *removed, char *err, size_t errlen)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return CDR_OK;
        cdr_seterr(err, errlen, "cannot read state directory %s: %s", dir, strerror(errno));
        return CDR_E_IO;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        char base[256];
        size_t l = strlen(name);
        if (l >= sizeof base)
            continue;
        memcpy(base, name, l + 1);
        int tmp = l > 4 && !strcmp(base + l - 4, ".tmp");
        if (tmp)
            base[l - 4] = '\0';
        cdr_state_kind k;
        cdr_month m;
        int64_t run;
        if (cdr_state_file_parse(base, &k, &m, &run) != 0)
            continue; /* not ours: never touched */
        int keep = 0;
        for (size_t i = 0; !tmp && i < n && !keep; i++)
            keep = !strcmp(live[i], base);
        if (keep)
            continue;
        if (unlinkat(dfd, name, 0) == 0)
            (*removed)++;
        else if (errno != ENOENT) {
            cdr_seterr(err, errlen, "cannot remove %s/%s: %s", dir, name, strerror(errno));
            closedir(d);
            return CDR_E_IO;
        }
    }
    closedir(d);
    return CDR_OK;
}

/* ---- the manifest --------------------------------------------------------------- */

#define MANIFEST "MANIFEST"

void cdr_state_manifest_free(cdr_state_manifest *m)
{
    free(m->db_path);
    for (size_t i = 0; i < m->n_live; i++)
        free(m->live[i]);
    free(m->live);
    for (size_t i = 0; i < m->n_tariffs; i++)
        free(m->tariffs[i].dir);
    free(m->tariffs);
    memset(m, 0, sizeof *m);
}

/* Text fields are written as they are: a name or directory holding a newline
 * is refused (they come from the command line and our own names). */
cdr_err cdr_state_manifest_write(const char *dir, const cdr_state_manifest *m, char *err,
                                 size_t errlen)
{
    st_buf b = {0};
    char line[128];
    if (strchr(m->db_path ? m->db_path : "", '\n')) {
        cdr_seterr(err, errlen, "database path holds a newline");
        return CDR_E_USAGE;
    }
    st_buf_put(&b, "cdrecon-state 1\ndatabase ", 25);
    st_buf_put(&b, m->db_path ? m->db_path : "", m->db_path ? strlen(m->db_path) : 0);
    st_buf_u8(&b, '\n');
    for (size_t i = 0; i < m->n_tariffs; i++) {
        const char *d = m->tariffs[i].dir ? m->tariffs[i].dir : "";
        if (strchr(d, '\n'))
            d = "";
        int n = snprintf(line, sizeof line, "tariff %lld %s ", (long long)m->tariffs[i].id,
                         m->tariffs[i].sha256);
        st_buf_put(&b, line, (size_t)n);
        st_buf_put(&b, d, strlen(d));
        st_buf_u8(&b, '\n');
    }
    for (size_t i = 0; i < m->n_live; i++) {
        st_buf_put(&b, "file ", 5);
        st_buf_put(&b, m->live[i], strlen(m->live[i]));
        st_buf_u8(&b, '\n');
    }
    st_buf_put(&b, "end\n", 4);
    if (b.failed) {
        st_buf_free(&b);
        return CDR_E_NOMEM;
    }
    char *path = join(dir, MANIFEST);
    if (!path) {
        st_buf_free(&b);
        return CDR_E_NOMEM;
    }
    wfile f;
    cdr_err e = wf_open(&f, path);
    if (e == CDR_OK)
        e = wf_write(&f, b.p, b.n);
    if (e == CDR_OK)
        e = wf_commit(&f);
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f.msg);
    wf_free(&f);
    free(path);
    st_buf_free(&b);
    return e;
}

cdr_err cdr_state_manifest_read(const char *dir, cdr_state_manifest *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    char *path = join(dir, MANIFEST);
    if (!path)
        return CDR_E_NOMEM;
    FILE *f = fopen(path, "re");
    if (!f) {
        cdr_seterr(err, errlen, "%s: %s (not a month state directory, or no run finished in it)",
                path, strerror(errno));
        free(path);
        return errno == ENOENT ? CDR_E_NOTFOUND : CDR_E_IO;
    }
    char line[8192];
    int ok = 0, first = 1;
    cdr_err e = CDR_OK;
    while (e == CDR_OK && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            e = CDR_E_PARSE;
            break;
        }
        line[--n] = '\0';
        if (first) {
            if (strcmp(line, "cdrecon-state 1") != 0)
                e = CDR_E_PARSE;
            first = 0;
        } else if (!strncmp(line, "database ", 9)) {
            free(m->db_path);
            if (!(m->db_path = strdup(line + 9)))
                e = CDR_E_NOMEM;
        } else if (!strncmp(line, "tariff ", 7)) {
            char *sp = strchr(line + 7, ' ');
            char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
            if (!sp || !sp2 || sp2 - sp - 1 != 64) {
                e = CDR_E_PARSE;
                break;
            }
            cdr_state_tariff *nt = realloc(m->tariffs, (m->n_tariffs + 1) * sizeof *nt);
            if (!nt) {
                e = CDR_E_NOMEM;
                break;
            }
            m->tariffs = nt;
            cdr_state_tariff *t = &m->tariffs[m->n_tariffs];
            t->id = strtoll(line + 7, NULL, 10);
            memcpy(t->sha256, sp + 1, 64);
            t->sha256[64] = '\0';
            if (!(t->dir = strdup(sp2 + 1))) {
                e = CDR_E_NOMEM;
                break;
            }
            m->n_tariffs++;
        } else if (!strncmp(line, "file ", 5)) {
            char **nl = realloc(m->live, (m->n_live + 1) * sizeof *nl);
            if (!nl) {
                e = CDR_E_NOMEM;
                break;
            }
            m->live = nl;
            if (!(m->live[m->n_live] = strdup(line + 5))) {
                e = CDR_E_NOMEM;
                break;
            }
            m->n_live++;
        } else if (!strcmp(line, "end")) {
            ok = 1;
            break;
        } else {
            e = CDR_E_PARSE;
        }
    }
    fclose(f);
    if (e == CDR_OK && !ok)
        e = CDR_E_PARSE;
    if (e != CDR_OK) {
        if (e == CDR_E_PARSE)
            cdr_seterr(err, errlen, "%s: damaged or truncated", path);
        cdr_state_manifest_free(m);
    }
    free(path);
    return e;
}

/* ---- compaction --------------------------------------------------------------- */

/* One record of a subscriber-month being moved into the compacted segment:
 * its row's strings copied into the compactor's arena. */
typedef struct crow {
    cdr_row row;
    uint32_t file;        /* index in the new file table */
    const char *fname;    /* for the order of equal times */
} crow;

/* Memory in chunks that never move, for the rows' strings and extras until
 * the part cuts its block. */
typedef struct achunk {
    struct achunk *next;
    size_t n, cap;
    char d[];
} achunk;

static void *chunk_take(achunk **head, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    achunk *c = *head;
    if (!c || c->n + n > c->cap) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        achunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->next = c;
        nc->n = 0;
        nc->cap = cap;
        *head = c = nc;
    }
    void *p = c->d + c->n;
    c->n += n;
    return p;
}

static void chunks_free(achunk **head)
{
    for (achunk *c = *head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    *head = NULL;
}

typedef struct compactor {
    st_file *files;       /* the new segment's file table (anchors borrowed) */
    size_t n_files;
    uint32_t **map;       /* per old segment: its file index -> the new one */
    crow *rows;           /* the subscriber-month being moved */
    size_t n_rows, rows_cap;
    achunk *mem;          /* the rows' strings and extras, until the block is cut */
    cdr_err err;
} compactor;

static int crow_cmp(const void *pa, const void *pb)
{
    const crow *a = pa, *b = pb;
    if (a->row.start != b->row.start)
        return a->row.start < b->row.start ? -1 : 1;
    size_t m = a->row.record_id.n < b->row.record_id.n ? a->row.record_id.n : b->row.record_id.n;
    int c = memcmp(a->row.record_id.p, b->row.record_id.p, m);
    if (c)
        return c;
    if (a->row.record_id.n != b->row.record_id.n)
        return a->row.record_id.n < b->row.record_id.n ? -1 : 1;
    c = strcmp(a->fname, b->fname);
    if (c)
        return c;
    return a->row.line < b->row.line ? -1 : a->row.line > b->row.line;
}

static int keep(compactor *k, cdr_str *s)
{
    if (s->n == 0)
        return 0;
    char *p = chunk_take(&k->mem, s->n);
    if (!p)
        return -1;
    memcpy(p, s->p, s->n);
    s->p = p;
    return 0;
}

typedef struct cctx {
    compactor *k;
    const uint32_t *map;
    const st_segr *seg;
} cctx;

static int compact_row(const cdr_row *r, uint32_t fl, void *u)
{
    cctx *x = u;
    compactor *k = x->k;
    if (k->n_rows == k->rows_cap) {
        size_t nc = k->rows_cap ? k->rows_cap * 2 : 256;
        crow *c = realloc(k->rows, nc * sizeof *c);
        if (!c)
            return CDR_E_NOMEM;
        k->rows = c;
        k->rows_cap = nc;
    }
    crow *c = &k->rows[k->n_rows++];
    c->row = *r;
    c->file = x->map[fl];
    c->fname = x->seg->files[fl].name;
    if (keep(k, &c->row.record_id) || keep(k, &c->row.peer) || keep(k, &c->row.call_id) ||
        keep(k, &c->row.sms_ref))
        return CDR_E_NOMEM;
    if (r->n_extra) {
        cdr_str *ex = chunk_take(&k->mem, r->n_extra * sizeof *ex);
        if (!ex)
            return CDR_E_NOMEM;
        for (uint32_t i = 0; i < r->n_extra; i++) {
            ex[i] = r->extra[i];
            if (keep(k, &ex[i]))
                return CDR_E_NOMEM;
        }
        c->row.extra = ex;
    }
    return 0;
}

static void compactor_free(compactor *k)
{
    for (size_t i = 0; i < k->n_files; i++)
        free(k->files[i].extra_names); /* (the strings are the segments') */
    free(k->files);
    free(k->rows);
    chunks_free(&k->mem);
}

cdr_err cdr_state_compact(cdr_state *s, cdr_month month, const char *dir, int64_t run_id,
                          cdr_state_compacted *out, char *err, size_t errlen)
{
    smonth *sm = month_get(s, month, 0);
    compactor k;
    st_gcur *cur = NULL;
    st_segw *w = NULL;
    st_part part;
    st_enc enc;
    int enc_ok = 0;
    cdr_err e = CDR_OK;
    memset(&k, 0, sizeof k);
    memset(out, 0, sizeof *out);
    st_part_init(&part);
    part.block_size = ST_BLOCK_MAX;
    if (!sm || sm->n_segs < 2)
        return CDR_E_NOTFOUND; /* nothing to merge */
    size_t ns = sm->n_segs;
    /* the union of the segments' files, by database id */
    k.map = calloc(ns, sizeof *k.map);
    cur = calloc(ns, sizeof *cur);
    if (!k.map || !cur) {
        e = CDR_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < ns; i++) {
        st_segr *g = sm->segs[i];
        k.map[i] = calloc(g->n_files ? g->n_files : 1, sizeof **k.map);
        if (!k.map[i]) {
            e = CDR_E_NOMEM;
            goto out;
        }
        for (size_t f = 0; f < g->n_files; f++) {
            size_t j = 0;
            while (j < k.n_files && !(k.files[j].db_id == g->files[f].db_id &&
                                      !strcmp(k.files[j].name, g->files[f].name)))
                j++;
            if (j == k.n_files) {
                st_file *nf = realloc(k.files, (k.n_files + 1) * sizeof *nf);
                if (!nf) {
                    e = CDR_E_NOMEM;
                    goto out;
                }
                k.files = nf;
                k.files[j] = g->files[f]; /* borrowed: the segments stay open */
                k.files[j].extra_names = NULL;
                if (g->files[f].n_extra) {
                    k.files[j].extra_names = calloc(g->files[f].n_extra, sizeof(char *));
                    if (!k.files[j].extra_names) {
                        e = CDR_E_NOMEM;
                        goto out;
                    }
                    memcpy(k.files[j].extra_names, g->files[f].extra_names,
                           g->files[f].n_extra * sizeof(char *));
                }
                k.n_files++;
            }
            k.map[i][f] = (uint32_t)j;
        }
    }
    char name[64], path[4200];
    cdr_state_file_name(CDR_STATE_SEGMENT, month, run_id, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((e = st_segw_create(path, month, k.files, k.n_files, &w, err, errlen)) != CDR_OK)
        goto out;
    if (st_enc_init(&enc, 3) != 0) {
        e = CDR_E_NOMEM;
        goto out;
    }
    enc_ok = 1;
    for (size_t i = 0; i < ns; i++) {
        cur[i].whole = 1; /* every group of every block, in turn */
        if ((e = st_gcur_seek(&cur[i], sm->segs[i], 0, NULL, 0)) != CDR_OK) {
            cdr_seterr(err, errlen, "%s", cur[i].err);
            goto out;
        }
    }
    size_t cut = 0; /* rows since the part's last block */
    for (;;) {
        /* the smallest key among the cursors */
        int best = -1;
        for (size_t i = 0; i < ns; i++)
            if (cur[i].have &&
                (best < 0 || st_key_cmp(cur[i].cur.h, cur[i].cur.msisdn, cur[i].cur.msisdn_len,
                                        cur[best].cur.h, cur[best].cur.msisdn,
                                        cur[best].cur.msisdn_len) < 0))
                best = (int)i;
        if (best < 0)
            break;
        char m[CDR_NUMBER_MAX + 1];
        size_t ml = cur[best].cur.msisdn_len;
        uint64_t h = cur[best].cur.h;
        memcpy(m, cur[best].cur.msisdn, ml);
        m[ml] = '\0';
        size_t from = 0;
        k.n_rows = 0; /* (the part keeps copies of the rows; their bytes stay in mem) */
        for (size_t i = 0; i < ns; i++) {
            if (!cur[i].have || st_key_cmp(cur[i].cur.h, cur[i].cur.msisdn, cur[i].cur.msisdn_len,
                                           h, m, ml) != 0)
                continue;
            cctx x = {&k, k.map[i], sm->segs[i]};
            if ((e = st_gcur_rows(&cur[i], compact_row, &x)) != CDR_OK ||
                (e = st_gcur_next(&cur[i])) != CDR_OK) {
                if (cur[i].err[0])
                    cdr_seterr(err, errlen, "%s", cur[i].err);
                goto out;
            }
        }
        size_t n = k.n_rows - from;
        qsort(k.rows + from, n, sizeof *k.rows, crow_cmp);
        if (st_part_group(&part, m, ml, n, &enc) != 0) {
            e = CDR_E_NOMEM;
            goto out;
        }
        for (size_t i = from; i < k.n_rows; i++) {
            crow *c = &k.rows[i];
            c->row.msisdn = (cdr_str){m, ml};
            if (st_part_add(&part, &c->row, c->file,
                            st_file_off_res(&k.files[c->file], c->row.line, c->row.offset),
                            &enc) != 0) {
                e = CDR_E_NOMEM;
                goto out;
            }
        }
        cut += n;
        out->records += n;
        out->submonths++;
        if (part.n_recs == 0 || cut >= ST_BLOCK_MAX) {
            /* the part cut its block (or will, with the next group): write it
             * out and start the rows and strings afresh */
            if (st_part_flush(&part, &enc) != 0 || (e = st_segw_append(w, &part)) != CDR_OK) {
                e = e ? e : CDR_E_NOMEM;
                goto out;
            }
            st_part_free(&part);
            st_part_init(&part);
            part.block_size = ST_BLOCK_MAX;
            chunks_free(&k.mem);
            cut = 0;
        }
    }
    if (st_part_flush(&part, &enc) != 0 || (e = st_segw_append(w, &part)) != CDR_OK) {
        e = e ? e : CDR_E_NOMEM;
        goto out;
    }
    if ((e = st_segw_commit(w, err, errlen)) != CDR_OK)
        goto out;
    snprintf(out->name, sizeof out->name, "%s", name);
    out->bytes = st_segw_bytes(w);
    out->replaced = ns;
out:
    if (cur) {
        for (size_t i = 0; i < ns; i++)
            st_gcur_free(&cur[i]);
        free(cur);
    }
    if (k.map) {
        for (size_t i = 0; i < ns; i++)
            free(k.map[i]);
        free(k.map);
    }
    st_segw_free(w);
    st_part_free(&part);
    if (enc_ok)
        st_enc_free(&enc);
    compactor_free(&k);
    return e;
}

size_t cdr_state_segment_names(const cdr_state *s, cdr_month m, char (*names)[64], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_months; i++) {
        if (s->months[i].m != m)
            continue;
        for (size_t j = 0; j < s->months[i].n_segs && n < cap; j++) {
            const char *p = strrchr(s->months[i].segs[j]->path, '/');
            snprintf(names[n++], 64, "%s", p ? p + 1 : s->months[i].segs[j]->path);
        }
    }
    return n;
}
