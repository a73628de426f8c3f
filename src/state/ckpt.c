/* cdrecon — a checkpoint entry: what rating a subscriber-month needs to go on after its last stored record; kept, copied, serialised and read back. */
#include <stdlib.h>
#include <string.h>

#include "cdrecon/engine.h"
#include "bsearch.h"
#include "grow.h"
#include "stfile.h"

/* ---- checkpoints ------------------------------------------------------------ */

/* An entry's flags byte (formats 3 and 4; format 2 has none: 0) */
#define CK_REWIND 1u   /* a rewind point follows */
#define CK_RFP_FULL 2u /* fingerprints of ST_RFP_BITS bits (format 4); else ST_RFP_BITS_V3 */

void st_ckpt_clear(st_ckpt *c)
{
    free(c->pkeys);
    free(c->rfp);
    free(c->rw.tail);
    memset(c, 0, sizeof *c);
}

/* c's own arrays, kept across a whole-struct assignment or memset */
typedef struct ck_arrays {
    uint32_t *pkeys;
    uint32_t pkeys_cap;
    uint32_t *rfp;
    uint32_t rfp_cap;
    unsigned char *tail;
    size_t tail_cap;
} ck_arrays;

static ck_arrays ck_keep(const st_ckpt *c)
{
    return (ck_arrays){c->pkeys, c->pkeys_cap, c->rfp, c->rfp_cap, c->rw.tail, c->rw.tail_cap};
}

static void ck_restore(st_ckpt *c, ck_arrays a)
{
    c->pkeys = a.pkeys;
    c->pkeys_cap = a.pkeys_cap;
    c->rfp = a.rfp;
    c->rfp_cap = a.rfp_cap;
    c->rw.tail = a.tail;
    c->rw.tail_cap = a.tail_cap;
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
    if (src->has_rw && st_ckpt_set_tail(dst, src->rw.tail, src->rw.tail_n, src->rw.n_tail) != 0) {
        dst->has_rw = 0;
        return -1;
    }
    return 0;
}

int st_ckpt_set_tail(st_ckpt *c, const void *p, size_t len, uint32_t n)
{
    if (cdr_grow(&c->rw.tail, &c->rw.tail_cap, len ? len : 1, 1, 256))
        return -1;
    if (len)
        memcpy(c->rw.tail, p, len);
    c->rw.tail_n = len;
    c->rw.n_tail = n;
    return 0;
}

/* The first position of the sorted v[0..n) whose value is not below x. */
typedef struct u32_key {
    const uint32_t *v;
    uint32_t x;
} u32_key;

static int u32_below(size_t k, const void *x)
{
    const u32_key *q = x;
    return q->v[k] < q->x;
}

static size_t lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
    u32_key q = {v, x};
    return cdr_partition_point(n, u32_below, &q);
}

/* Whether the sorted v[0..n) holds x. */
static int sorted_has(const uint32_t *v, size_t n, uint32_t x)
{
    size_t at = lower_bound(v, n, x);
    return at < n && v[at] == x;
}

int st_ckpt_has_rfp(const st_ckpt *c, uint32_t f)
{
    return sorted_has(c->rfp, c->n_rfp, f >> c->rfp_shift);
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
    for (size_t i = 0; c->rfp_shift && i < n; i++)
        v[i] >>= c->rfp_shift;
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

int st_ckpt_rfps_from(st_ckpt *o, const st_ckpt *init)
{
    o->n_rfp = 0;
    o->rfp_shift = init ? init->rfp_shift : 0;
    if (!init || !init->n_rfp)
        return 0;
    if (ck_reserve((void **)&o->rfp, &o->rfp_cap, init->n_rfp, sizeof *o->rfp))
        return -1;
    memcpy(o->rfp, init->rfp, init->n_rfp * sizeof *o->rfp);
    o->n_rfp = init->n_rfp;
    return 0;
}

int st_ckpt_has_pkey(const st_ckpt *c, uint32_t k)
{
    return sorted_has(c->pkeys, c->n_pkeys, k);
}

int st_ckpt_add_pkey(st_ckpt *c, uint32_t k)
{
    size_t lo = lower_bound(c->pkeys, c->n_pkeys, k);
    if (lo < c->n_pkeys && c->pkeys[lo] == k)
        return 0;
    if (c->n_pkeys == c->pkeys_cap &&
        ck_reserve((void **)&c->pkeys, &c->pkeys_cap, c->pkeys_cap ? (size_t)c->pkeys_cap * 2 : 8,
                   sizeof *c->pkeys))
        return -1;
    memmove(c->pkeys + lo + 1, c->pkeys + lo, (c->n_pkeys - lo) * sizeof *c->pkeys);
    c->pkeys[lo] = k;
    c->n_pkeys++;
    return 0;
}

/* A checkpoint's bundle pools and their balances (the entry's own, or a
 * rewind point's). */
static void put_pools(st_buf *b, const st_pool *pools, uint32_t n)
{
    st_buf_varint(b, n);
    for (uint32_t i = 0; i < n; i++) {
        st_buf_varint(b, (uint32_t)pools[i].plan);
        st_buf_varint(b, (uint32_t)pools[i].pool);
        st_buf_varint(b, cdr_zz(pools[i].left));
    }
}

static int get_pools(st_rd *r, st_pool *pools, uint32_t *n)
{
    uint64_t np = st_rd_varint(r);
    if (np > ST_POOLS_MAX)
        return -1;
    *n = (uint32_t)np;
    for (uint32_t i = 0; i < *n; i++) {
        pools[i].plan = (int32_t)st_rd_varint(r);
        pools[i].pool = (int32_t)st_rd_varint(r);
        pools[i].left = cdr_unzz(st_rd_varint(r));
    }
    return 0;
}

/* The walk's state before the tail (times relative to none: prev_end is
 * kept as it is, zigzag), then the tail's bytes. */
static void put_rewind(st_buf *b, const st_rewind *w)
{
    st_buf_varint(b, w->seq);
    st_buf_varint(b, w->prev_end == INT64_MIN ? 0 : cdr_zz(w->prev_end) + 1);
    st_buf_varint(b, w->cflags);
    st_buf_u8(b, (unsigned)(w->has_cand != 0));
    if (w->has_cand) {
        st_buf_varint(b, cdr_zz(w->over));
        st_buf_varint(b, w->cand_records);
        st_buf_varint(b, w->cats);
    }
    st_buf_varint(b, w->n_findings);
    st_buf_varint(b, w->billed_hi);
    st_buf_varint(b, w->rebuilt_hi);
    put_pools(b, w->pools, w->n_pools);
    st_buf_varint(b, w->n_tail);
    st_buf_varint(b, w->tail_n);
    st_buf_put(b, w->tail, w->tail_n);
}

static int get_rewind(st_rd *r, st_ckpt *c)
{
    st_rewind *w = &c->rw;
    w->seq = st_rd_varint(r);
    uint64_t pe = st_rd_varint(r);
    w->prev_end = pe == 0 ? INT64_MIN : cdr_unzz(pe - 1);
    w->cflags = (unsigned)st_rd_varint(r);
    w->has_cand = (int)st_rd_u8(r);
    if (w->has_cand > 1)
        return -1;
    if (w->has_cand) {
        w->over = cdr_unzz(st_rd_varint(r));
        w->cand_records = (uint32_t)st_rd_varint(r);
        w->cats = (uint32_t)st_rd_varint(r);
    }
    w->n_findings = st_rd_varint(r);
    w->billed_hi = st_rd_varint(r);
    w->rebuilt_hi = st_rd_varint(r);
    if (get_pools(r, w->pools, &w->n_pools) != 0)
        return -1;
    uint64_t nt = st_rd_varint(r), len = st_rd_varint(r);
    const unsigned char *p;
    if (r->bad || nt == 0 || nt > ST_TAIL_MAX || w->seq + nt != c->n_records ||
        len > (uint64_t)(r->end - r->p) || !(p = st_rd_bytes(r, (size_t)len)))
        return -1;
    return st_ckpt_set_tail(c, p, (size_t)len, (uint32_t)nt) != 0 ? -2 : 0;
}

static void put_str(st_buf *b, cdr_str s)
{
    st_buf_varint(b, s.n);
    st_buf_put(b, s.p, s.n);
}

static int get_str(st_rd *r, cdr_str *s)
{
    uint64_t n = st_rd_varint(r);
    const unsigned char *p = r->bad || n > (uint64_t)(r->end - r->p) ? NULL
                                                                       : st_rd_bytes(r, (size_t)n);
    if (!p)
        return -1;
    *s = (cdr_str){(const char *)p, (size_t)n};
    return 0;
}

void st_tail_put(st_buf *b, const cdr_row *row, int64_t file_db_id, int64_t base)
{
    st_buf_u8(b, (unsigned)row->service | (unsigned)row->direction << 2);
    st_buf_varint(b, cdr_zz(row->start - base));
    st_buf_varint(b, cdr_zz(row->duration_s));
    st_buf_varint(b, cdr_zz(row->bytes));
    st_buf_varint(b, cdr_zz(row->sms_chars));
    st_buf_varint(b, cdr_zz(row->billed));
    st_buf_varint(b, cdr_zz(row->sms_part));
    st_buf_varint(b, cdr_zz(row->sms_parts));
    st_buf_varint(b, cdr_zz(row->partial_seq));
    st_buf_varint(b, cdr_zz(file_db_id));
    st_buf_varint(b, row->line);
    st_buf_varint(b, row->offset);
    put_str(b, row->record_id);
    put_str(b, row->peer);
    put_str(b, row->call_id);
    put_str(b, row->sms_ref);
    st_buf_varint(b, row->n_extra);
    for (uint32_t i = 0; i < row->n_extra; i++)
        put_str(b, row->extra[i]);
}

int st_tail_get(st_rd *r, cdr_row *row, int64_t *file_db_id, int64_t base, cdr_str *extra,
                uint32_t cap)
{
    memset(row, 0, sizeof *row);
    unsigned sd = st_rd_u8(r);
    if (sd >> 3)
        return -1;
    row->service = (cdr_service)(sd & 3);
    row->direction = (cdr_direction)(sd >> 2);
    row->start = base + cdr_unzz(st_rd_varint(r));
    row->duration_s = cdr_unzz(st_rd_varint(r));
    row->bytes = cdr_unzz(st_rd_varint(r));
    row->sms_chars = cdr_unzz(st_rd_varint(r));
    row->billed = cdr_unzz(st_rd_varint(r));
    row->sms_part = (int32_t)cdr_unzz(st_rd_varint(r));
    row->sms_parts = (int32_t)cdr_unzz(st_rd_varint(r));
    row->partial_seq = cdr_unzz(st_rd_varint(r));
    *file_db_id = cdr_unzz(st_rd_varint(r));
    row->line = st_rd_varint(r);
    row->offset = st_rd_varint(r);
    if (get_str(r, &row->record_id) || get_str(r, &row->peer) || get_str(r, &row->call_id) ||
        get_str(r, &row->sms_ref))
        return -1;
    uint64_t ne = st_rd_varint(r);
    if (r->bad || ne > 65535)
        return -1;
    row->n_extra = (uint32_t)ne;
    if (ne > cap)
        return -3;
    for (uint32_t i = 0; i < row->n_extra; i++)
        if (get_str(r, &extra[i]))
            return -1;
    row->extra = ne ? extra : NULL;
    return r->bad ? -1 : 0;
}

/* The fingerprints of an entry (format 5): not among its bytes but in the
 * chunk's second stream, each in ST_RFP_BITS bits, little-endian, two in
 * five bytes; an entry's run ends on a byte (an odd last one in three
 * bytes, its top 4 bits 0). Read and written without a varint or a
 * deflate: on the bench month's night 30 the gaps as varints inside the
 * deflated entries were 0.25 s of the run's CPU, about half of it
 * inflating and deflating bytes that deflate shrinks by about 3 %. */
_Static_assert(ST_RFP_BITS == 20, "the packing below is of 20-bit fingerprints");

static size_t rfp_bytes(uint32_t n)
{
    return (size_t)n / 2 * 5 + (n & 1u) * 3;
}

static void put_rfps(st_buf *f, const uint32_t *v, uint32_t n)
{
    size_t len = rfp_bytes(n);
    if (n == 0 || st_buf_reserve(f, len) != 0)
        return;
    unsigned char *p = f->p + f->n;
    uint32_t i = 0;
    for (; i + 1 < n; i += 2, p += 5) {
        uint64_t x = (uint64_t)v[i] | (uint64_t)v[i + 1] << 20;
        for (int k = 0; k < 5; k++)
            p[k] = (unsigned char)(x >> (8 * k));
    }
    if (i < n) {
        p[0] = (unsigned char)v[i];
        p[1] = (unsigned char)(v[i] >> 8);
        p[2] = (unsigned char)(v[i] >> 16);
    }
    f->n += len;
}

/* v[0..n) from rf, checked sorted, each once, each below 2^ST_RFP_BITS */
static int get_rfps(st_rd *rf, uint32_t *v, uint32_t n)
{
    const unsigned char *p = n ? st_rd_bytes(rf, rfp_bytes(n)) : NULL;
    if (n && !p)
        return -1;
    uint32_t i = 0;
    for (; i + 1 < n; i += 2, p += 5) {
        uint64_t x = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32;
        v[i] = (uint32_t)(x & 0xFFFFFu);
        v[i + 1] = (uint32_t)(x >> 20);
    }
    if (i < n) {
        if (p[2] >> 4)
            return -1;
        v[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    }
    for (i = 1; i < n; i++)
        if (v[i] <= v[i - 1])
            return -1;
    return 0;
}

/* Formats 2-4: the gaps between them, as varints among the entry's bytes. */
static int get_rfp_gaps(st_rd *r, uint32_t *v, uint32_t n)
{
    uint32_t x = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t g = st_rd_varint(r);
        if ((i && g == 0) || x + g >= ((uint64_t)1 << ST_RFP_BITS))
            return -1;
        x += (uint32_t)g;
        v[i] = x;
    }
    return r->bad ? -1 : 0;
}

void st_ckpt_put(st_buf *b, st_buf *f, const st_ckpt *c, int64_t base)
{
    st_buf_u8(b, c->msisdn_len);
    st_buf_put(b, c->msisdn, c->msisdn_len);
    st_buf_varint(b, c->n_records);
    st_buf_varint(b, cdr_zz(c->last_start - base));
    st_buf_varint(b, c->tariff_id);
    st_buf_varint(b, c->prev_end == INT64_MIN ? 0 : cdr_zz(c->prev_end - c->last_start) + 1);
    put_pools(b, c->pools, c->n_pools);
    st_buf_varint(b, c->cflags); /* (flags count even without an overcharge) */
    st_buf_u8(b, (unsigned)(c->has_cand != 0));
    if (c->has_cand) {
        st_buf_varint(b, cdr_zz(c->over));
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
    st_buf_varint(b, c->n_rfp); /* (they go to f) */
    put_rfps(f, c->rfp, c->n_rfp);
    /* the entry's flags (format 3: the rewind point; 4: the fingerprints'
     * width, 20 bits or the 18 of an entry from a format 2 or 3 file),
     * then the rewind point */
    st_buf_u8(b, (c->has_rw ? CK_REWIND : 0u) | (c->rfp_shift ? 0u : CK_RFP_FULL));
    if (c->has_rw)
        put_rewind(b, &c->rw);
}

int st_ckpt_get(st_rd *r, st_rd *rf, st_ckpt *c, int64_t base, int version)
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
    c->last_start = base + cdr_unzz(st_rd_varint(r));
    c->tariff_id = (uint32_t)st_rd_varint(r);
    uint64_t pe = st_rd_varint(r);
    c->prev_end = pe == 0 ? INT64_MIN : c->last_start + cdr_unzz(pe - 1);
    if (get_pools(r, c->pools, &c->n_pools) != 0)
        return -1;
    c->cflags = (unsigned)st_rd_varint(r);
    c->has_cand = (int)st_rd_u8(r);
    if (c->has_cand > 1)
        return -1;
    if (c->has_cand) {
        c->over = cdr_unzz(st_rd_varint(r));
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
    /* the fingerprints, checked against the widest they may be (their
     * width comes after them, in the flags) */
    uint64_t nf = st_rd_varint(r);
    const st_rd *fr = version >= 5 ? rf : r;
    if (r->bad || !fr || nf > ((uint64_t)1 << ST_RFP_BITS) || nf > (uint64_t)(fr->end - fr->p))
        return -1;
    if (ck_reserve((void **)&c->rfp, &c->rfp_cap, (size_t)nf, sizeof *c->rfp))
        return -2;
    c->n_rfp = (uint32_t)nf;
    int g = version >= 5 ? get_rfps(rf, c->rfp, c->n_rfp) : get_rfp_gaps(r, c->rfp, c->n_rfp);
    if (g != 0)
        return g;
    uint32_t v = c->n_rfp ? c->rfp[c->n_rfp - 1] : 0;
    unsigned flags = version >= 3 ? st_rd_u8(r) : 0;
    if (flags & ~(version >= 4 ? CK_REWIND | CK_RFP_FULL : CK_REWIND))
        return -1;
    if (!(flags & CK_RFP_FULL)) {
        c->rfp_shift = ST_RFP_BITS - ST_RFP_BITS_V3;
        if (v >> ST_RFP_BITS_V3)
            return -1;
    }
    c->has_rw = (flags & CK_REWIND) != 0;
    if (c->has_rw && (g = get_rewind(r, c)) != 0)
        return g;
    return r->bad ? -1 : 0;
}
