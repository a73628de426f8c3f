/* cdrecon — a checkpoint entry: what rating a subscriber-month needs to go on after its last stored record; kept, copied, serialised and read back. */
#include <stdlib.h>
#include <string.h>

#include "cdrecon/engine.h"
#include "stfile.h"

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

/* The first position of the sorted v[0..n) whose value is not below x. */
static size_t lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (v[m] < x)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* Whether the sorted v[0..n) holds x. */
static int sorted_has(const uint32_t *v, size_t n, uint32_t x)
{
    size_t at = lower_bound(v, n, x);
    return at < n && v[at] == x;
}

int st_ckpt_has_rfp(const st_ckpt *c, uint32_t f)
{
    return sorted_has(c->rfp, c->n_rfp, f);
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
