/* cdrecon — the month state's block codec (src/state/stcodec.h, docs/state.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/igzip_lib.h>
#include "crc.h"

#include "deflate1.h"
#include "grow.h"
#include "hashfn.h"
#include "stcodec.h"
#include "swar.h"

/* ---- buffers --------------------------------------------------------- */

void st_buf_free(st_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int st_buf_reserve(st_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->n + more <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + more) {
        if (nc > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        nc *= 2;
    }
    unsigned char *p = realloc(b->p, nc);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = nc;
    return 0;
}

void st_buf_put(st_buf *b, const void *p, size_t n)
{
    if (n == 0 || st_buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void st_buf_u8(st_buf *b, unsigned v)
{
    if (st_buf_reserve(b, 1) != 0)
        return;
    b->p[b->n++] = (unsigned char)v;
}

void st_buf_varint(st_buf *b, uint64_t v)
{
    if (st_buf_reserve(b, 10) != 0)
        return;
    b->n = (size_t)(cdr_put_varint(b->p + b->n, v) - b->p);
}

void st_buf_u32le(st_buf *b, uint32_t v)
{
    unsigned char x[4];
    cdr_put_le32(x, v);
    st_buf_put(b, x, 4);
}

void st_buf_u64le(st_buf *b, uint64_t v)
{
    st_buf_u32le(b, (uint32_t)v);
    st_buf_u32le(b, (uint32_t)(v >> 32));
}

uint64_t st_rd_varint(st_rd *r)
{
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        unsigned c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

unsigned st_rd_u8(st_rd *r)
{
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

uint32_t st_rd_u32le(st_rd *r)
{
    const unsigned char *p = st_rd_bytes(r, 4);
    return p ? cdr_le32(p) : 0;
}

uint64_t st_rd_u64le(st_rd *r)
{
    uint64_t lo = st_rd_u32le(r);
    return lo | (uint64_t)st_rd_u32le(r) << 32;
}

const unsigned char *st_rd_bytes(st_rd *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        r->p = r->end;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    return p;
}

/* Fast appenders for the encoder's columns (the checked functions above
 * are the slow path). */
static inline void put8(st_buf *b, unsigned v)
{
    if (b->n < b->cap)
        b->p[b->n++] = (unsigned char)v;
    else
        st_buf_u8(b, v);
}

static inline void putv(st_buf *b, uint64_t v)
{
    if (b->cap - b->n >= 10) {
        b->n = (size_t)(cdr_put_varint(b->p + b->n, v) - b->p);
    } else {
        st_buf_varint(b, v);
    }
}

/* ---- columns ----------------------------------------------------------- */

enum {
    C_SD = 0,     /* service | direction << 2 | sms fields << 3 | partial << 4 | first << 7 */
    C_ST0,        /* start delta, 4 byte planes */
    C_ST1,
    C_ST2,
    C_ST3,
    C_AMT_V,      /* voice duration_s */
    C_AMT_S,      /* sms_chars */
    C_AMT_D,      /* data bytes */
    C_BILL_V,     /* billed per service (see put_billed) */
    C_BILL_S,
    C_BILL_D,
    C_BILL_A,
    C_SMSPART,
    C_SMSPARTS,
    C_PSEQ,
    C_FILE,
    C_LINE0,
    C_LINE1,
    C_LINE2,
    C_LINE3,
    C_OFFRES,
    C_NEXTRA,
    C_DICT,       /* the block's words: varint length + bytes each */
    C__FIXED
};

/* String column sets: record_id, peer, call_id, sms_ref, then the extras. */
enum { S_RID = 0, S_PEER, S_CALL, S_REF, S_EXTRA0, S__COUNT = S_EXTRA0 + ST_EXTRA_COLS };
/* Sub-columns of a set. */
enum {
    U_KIND = 0, /* kind << 5 | digits written (leading zeros kept; 1..18 for kinds 1
                 * and 2, else 0); kinds: 0 empty, 1 digits, 2 prefix+digits, 3 word,
                 * 4 raw */
    U_L0,       /* value mod 10^8, 4 byte planes */
    U_L1,
    U_L2,
    U_L3,
    U_HI,       /* value / 10^8 when below 255 (the 3 leading digits of a mobile
                 * number), else 255 and the value in U_HIX */
    U_HIX,      /* value / 10^8, varint, when U_HI says 255 */
    U_DV,       /* delta sets: zigzag difference from the previous value of the group */
    U_ID,       /* word / prefix id in the block dictionary */
    U_RAW,      /* varint length + bytes */
    U__COUNT
};
#define C_STR_BASE 32
#define C__COUNT (C_STR_BASE + S__COUNT * U__COUNT)

static int is_delta_set(int s)
{
    return s == S_RID || s == S_CALL;
}

static int is_plane(int c)
{
    if ((c >= C_ST0 && c <= C_ST3) || (c >= C_LINE0 && c <= C_LINE3))
        return 1;
    if (c >= C_STR_BASE) {
        int u = (c - C_STR_BASE) % U__COUNT;
        return u >= U_L0 && u <= U_L3;
    }
    return 0;
}

#define WORD_MAX 48
#define DIGITS_MAX 18
#define PREFIX_MAX 16

static const uint64_t P10[DIGITS_MAX + 1] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull};

/* Per-set running state (delta sets). */
typedef struct sprev {
    int kind;
    uint32_t pfx;
    unsigned ndig;
    uint64_t v;
} sprev;

/* The block's dictionary while encoding: open addressing over word ids. */
typedef struct dict {
    st_buf bytes;         /* the C_DICT column */
    uint32_t *off;        /* word -> offset of its length byte in bytes */
    uint32_t n;
    size_t cap;
    uint32_t *slot;       /* hash -> word + 1 (0 free) */
    uint32_t nslot;
} dict;

static uint64_t fnv(const char *p, size_t n)
{
    return cdr_hash_bytes(p, n, 0x5354);
}

static int dict_id(dict *d, const char *p, size_t n, uint32_t *id)
{
    if (d->n * 2 >= d->nslot) {
        uint32_t ns = d->nslot ? d->nslot * 2 : 256;
        uint32_t *s = calloc(ns, sizeof *s);
        if (!s)
            return -1;
        for (uint32_t i = 0; i < d->n; i++) {
            const unsigned char *w = d->bytes.p + d->off[i];
            uint64_t h = fnv((const char *)w + 1, w[0]) & (ns - 1);
            while (s[h])
                h = (h + 1) & (ns - 1);
            s[h] = i + 1;
        }
        free(d->slot);
        d->slot = s;
        d->nslot = ns;
    }
    uint64_t h = fnv(p, n) & (d->nslot - 1);
    while (d->slot[h]) {
        const unsigned char *w = d->bytes.p + d->off[d->slot[h] - 1];
        if (w[0] == n && memcmp(w + 1, p, n) == 0) {
            *id = d->slot[h] - 1;
            return 0;
        }
        h = (h + 1) & (d->nslot - 1);
    }
    if (cdr_grow(&d->off, &d->cap, (size_t)d->n + 1, sizeof *d->off, 64))
        return -1;
    d->off[d->n] = (uint32_t)d->bytes.n;
    st_buf_u8(&d->bytes, (unsigned)n);
    st_buf_put(&d->bytes, p, n);
    if (d->bytes.failed)
        return -1;
    d->slot[h] = d->n + 1;
    *id = d->n++;
    return 0;
}

static void dict_free(dict *d)
{
    st_buf_free(&d->bytes);
    free(d->off);
    free(d->slot);
}

/* Classify a string: kind, prefix length, digits and their value. */
static int classify(const char *p, size_t n, size_t *plen, unsigned *ndig, uint64_t *val)
{
    if (n == 0)
        return 0;
    size_t i = 0;
    while (i < n && i <= PREFIX_MAX && (unsigned char)(p[i] - '0') > 9)
        i++;
    size_t nd = n - i;
    if (i > PREFIX_MAX || nd == 0 || nd > DIGITS_MAX)
        return n <= WORD_MAX ? 3 : 4;
    /* the digits: the first nd % 8 one by one, then words of eight */
    uint64_t v = 0;
    size_t k = i;
    for (size_t r = nd & 7; r; r--, k++) {
        unsigned c = (unsigned char)(p[k] - '0');
        if (c > 9)
            return n <= WORD_MAX ? 3 : 4;
        v = v * 10 + c;
    }
    for (; k < n; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        if (cdr_nondigit8(w))
            return n <= WORD_MAX ? 3 : 4;
        v = v * 100000000u + cdr_digits8_value(w);
    }
    *plen = i;
    *ndig = (unsigned)nd;
    *val = v;
    return i == 0 ? 1 : 2;
}

/* The last dictionary word of a set (a prefix or a word), so that a column
 * whose values share one prefix ("R" of every record_id) looks it up once. */
typedef struct wcache {
    uint32_t id;
    uint8_t len;
    char b[WORD_MAX];
} wcache;

static int cached_id(dict *d, wcache *c, const char *p, size_t n, uint32_t *id)
{
    if (c->len == n && n > 0 && memcmp(c->b, p, n) == 0) {
        *id = c->id;
        return 0;
    }
    if (dict_id(d, p, n, id) != 0)
        return -1;
    c->id = *id;
    c->len = (uint8_t)n;
    memcpy(c->b, p, n);
    return 0;
}

static inline __attribute__((always_inline)) void put_planes(st_buf *cols, int c0, uint32_t v)
{
    put8(&cols[c0], v & 0xff);
    put8(&cols[c0 + 1], (v >> 8) & 0xff);
    put8(&cols[c0 + 2], (v >> 16) & 0xff);
    put8(&cols[c0 + 3], v >> 24);
}

static int put_string(st_buf *cols, dict *d, wcache *wc, int set, sprev *pv, const char *p,
                      size_t n)
{
    st_buf *u = &cols[C_STR_BASE + set * U__COUNT];
    size_t plen = 0;
    unsigned ndig = 0;
    uint64_t v = 0;
    uint32_t id = 0;
    int kind = classify(p, n, &plen, &ndig, &v);
    put8(&u[U_KIND], (unsigned)kind << 5 | (kind == 1 || kind == 2 ? ndig : 0));
    switch (kind) {
    case 0:
        return 0;
    case 2:
        if (cached_id(d, &wc[set], p, plen, &id) != 0)
            return -1;
        putv(&u[U_ID], id);
        /* fall through */
    case 1:
        if (is_delta_set(set)) {
            uint64_t base = (pv->kind == kind && pv->pfx == id && pv->ndig == ndig) ? pv->v : 0;
            putv(&u[U_DV], cdr_zz((int64_t)(v - base)));
            pv->kind = kind;
            pv->pfx = id;
            pv->ndig = ndig;
            pv->v = v;
        } else {
            put_planes(u, U_L0, (uint32_t)(v % 100000000u));
            uint64_t hi = v / 100000000u;
            put8(&u[U_HI], hi < 255 ? (unsigned)hi : 255);
            if (hi >= 255)
                putv(&u[U_HIX], hi);
        }
        return 0;
    case 3:
        if (cached_id(d, &wc[set], p, n, &id) != 0)
            return -1;
        putv(&u[U_ID], id);
        return 0;
    default:
        putv(&u[U_RAW], n);
        st_buf_put(&u[U_RAW], p, n);
        return 0;
    }
}

/* billed: whole hundredths of a yuan (the usual case) as zz(v/10^4) << 1,
 * else zz(v) << 1 | 1. */
static uint64_t billed_code(int64_t b)
{
    if (b % 10000 == 0)
        return cdr_zz(b / 10000) << 1;
    return cdr_zz(b) << 1 | 1;
}

/* Raw deflate of one column with ISA-L (about 4x zlib's speed at a
 * similar size for these columns): level 1 for columns of bytes and byte
 * planes, `level` (up to 3) for the rest. */
static int compress_col(st_enc *x, int level, const st_buf *raw, st_buf *out)
{
    size_t bound = raw->n + raw->n / 8 + 1024;
    if (st_buf_reserve(out, bound) != 0)
        return -1;
    size_t zn;
    if (cdr_deflate1(raw->p, raw->n, out->p + out->n, bound, level, x->lvl_buf,
                     (uint32_t)x->lvl_size, 0, &zn) != 0)
        return -1;
    out->n += zn;
    return 0;
}

int st_enc_init(st_enc *x, int level)
{
    memset(x, 0, sizeof *x);
    x->level = level < 1 ? 1 : level > 3 ? 3 : level;
    x->lvl_size = ISAL_DEF_LVL3_DEFAULT > ISAL_DEF_LVL1_DEFAULT ? ISAL_DEF_LVL3_DEFAULT
                                                                : ISAL_DEF_LVL1_DEFAULT;
    if (ISAL_DEF_LVL2_DEFAULT > x->lvl_size)
        x->lvl_size = ISAL_DEF_LVL2_DEFAULT;
    x->lvl_buf = calloc(1, x->lvl_size);
    return x->lvl_buf ? 0 : -1;
}

void st_enc_free(st_enc *x)
{
    free(x->lvl_buf);
    memset(x, 0, sizeof *x);
}

/* The records into their columns (cols[], the dictionary d); times from
 * base. -1: out of memory, or a record the format cannot hold. */
static int encode_columns(const st_rec *recs, size_t n, int64_t base, st_buf *cols, dict *d)
{
    sprev pv[S__COUNT];
    wcache wc[S__COUNT];
    for (int c = 0; c < C_STR_BASE + S_EXTRA0 * U__COUNT; c++)
        if (st_buf_reserve(&cols[c], c == C_DICT ? 1024 : n * 2 + 16) != 0)
            return -1;
    int64_t prev_start = base;
    memset(pv, 0, sizeof pv); /* a block starts afresh, even inside a group */
    for (int k = 0; k < S__COUNT; k++)
        wc[k].len = 0;
    for (size_t i = 0; i < n; i++) {
        const cdr_row *r = recs[i].row;
        if (recs[i].first) {
            prev_start = base;
            memset(pv, 0, sizeof pv);
        }
        int sms = r->sms_part != 0 || r->sms_parts != 0;
        int part = r->partial_seq != 0;
        put8(&cols[C_SD], (unsigned)r->service | (unsigned)r->direction << 2 |
                                  (unsigned)sms << 3 | (unsigned)part << 4 |
                                  (unsigned)(recs[i].first != 0) << 7);
        uint64_t dt = (uint64_t)(r->start - prev_start);
        if (r->start < prev_start || dt > UINT32_MAX)
            return -1; /* records out of time order within a group, or a month > 136 years */
        prev_start = r->start;
        put_planes(cols, C_ST0, (uint32_t)dt);
        switch (r->service) {
        case CDR_SVC_VOICE:
            putv(&cols[C_AMT_V], (uint64_t)r->duration_s);
            putv(&cols[C_BILL_V], billed_code(r->billed));
            break;
        case CDR_SVC_SMS:
            putv(&cols[C_AMT_S], (uint64_t)r->sms_chars);
            putv(&cols[C_BILL_S], billed_code(r->billed));
            break;
        case CDR_SVC_DATA:
            putv(&cols[C_AMT_D], (uint64_t)r->bytes);
            putv(&cols[C_BILL_D], billed_code(r->billed));
            break;
        default:
            putv(&cols[C_BILL_A], billed_code(r->billed));
            break;
        }
        if (sms) {
            putv(&cols[C_SMSPART], cdr_zz(r->sms_part));
            putv(&cols[C_SMSPARTS], cdr_zz(r->sms_parts));
        }
        if (part)
            putv(&cols[C_PSEQ], cdr_zz(r->partial_seq));
        putv(&cols[C_FILE], recs[i].file_local);
        if (r->line > UINT32_MAX) {
            /* more than 4 billion lines in one file: planes cannot hold it */
            return -1;
        }
        put_planes(cols, C_LINE0, (uint32_t)r->line);
        putv(&cols[C_OFFRES], cdr_zz(recs[i].off_res));
        putv(&cols[C_NEXTRA], r->n_extra);
        if (put_string(cols, d, wc, S_RID, &pv[S_RID], r->record_id.p, r->record_id.n) ||
            put_string(cols, d, wc, S_PEER, &pv[S_PEER], r->peer.p, r->peer.n) ||
            put_string(cols, d, wc, S_CALL, &pv[S_CALL], r->call_id.p, r->call_id.n) ||
            put_string(cols, d, wc, S_REF, &pv[S_REF], r->sms_ref.p, r->sms_ref.n))
            return -1;
        for (uint32_t k = 0; k < r->n_extra; k++) {
            int set = S_EXTRA0 + (k < ST_EXTRA_COLS ? (int)k : ST_EXTRA_COLS - 1);
            if (put_string(cols, d, wc, set, &pv[set], r->extra[k].p, r->extra[k].n))
                return -1;
        }
    }
    return 0;
}

/* The block written to out: header, the directory of present columns, each
 * column stored, deflated or as its one repeated byte, a CRC. */
static int write_block(st_buf *cols, size_t n, int64_t base, st_enc *x, st_buf *out)
{
    /* header: magic, n, base, column count; then a directory of present
     * columns (id, method, raw length, stored length), the data, a CRC */
    size_t start = out->n;
    unsigned present = 0;
    for (int c = 0; c < C__COUNT; c++) {
        if (cols[c].failed)
            return -1;
        present += cols[c].n > 0;
    }
    st_buf_put(out, "STB1", 4);
    st_buf_u32le(out, (uint32_t)n);
    st_buf_u64le(out, (uint64_t)base);
    st_buf_u32le(out, present);
    size_t dir = out->n;
    for (unsigned i = 0; i < present; i++) {
        st_buf_u8(out, 0);
        st_buf_u8(out, 0);
        st_buf_u32le(out, 0);
        st_buf_u32le(out, 0);
    }
    unsigned k = 0;
    for (int c = 0; c < C__COUNT; c++) {
        if (cols[c].n == 0)
            continue;
        size_t at = out->n;
        unsigned method = 0;
        size_t same = 1;
        while (same < cols[c].n && cols[c].p[same] == cols[c].p[0])
            same++;
        if (same == cols[c].n && cols[c].n > 1) {
            method = 2; /* every byte the same: that byte */
            st_buf_u8(out, cols[c].p[0]);
        } else if (cols[c].n >= 48) {
            if (compress_col(x, is_plane(c) ? 1 : x->level, &cols[c], out) != 0)
                return -1;
            /* kept deflated only when it saves a sixteenth: inflating a
             * column costs its Huffman tables whatever its size, and a
             * month read for one subscriber inflates every column of a
             * block of each segment (docs/state.md) */
            if (out->n - at <= cols[c].n - cols[c].n / 16)
                method = 1;
            else
                out->n = at; /* (about) did not shrink: stored */
        }
        if (method == 0)
            st_buf_put(out, cols[c].p, cols[c].n);
        if (out->failed)
            return -1;
        unsigned char *e = out->p + dir + (size_t)k * 10;
        uint32_t rl = (uint32_t)cols[c].n, sl = (uint32_t)(out->n - at);
        e[0] = (unsigned char)c;
        e[1] = (unsigned char)method;
        cdr_put_le32(e + 2, rl);
        cdr_put_le32(e + 6, sl);
        k++;
    }
    st_buf_u32le(out, cdr_crc32(0, out->p + start, out->n - start));
    return out->failed ? -1 : 0;
}

int st_block_encode(const st_rec *recs, size_t n, st_enc *x, st_buf *out)
{
    st_buf cols[C__COUNT];
    dict d;
    int rc = -1;
    memset(cols, 0, sizeof cols);
    memset(&d, 0, sizeof d);
    if (n == 0 || n > ST_BLOCK_MAX)
        return -1;
    int64_t base = recs[0].row->start;
    for (size_t i = 1; i < n; i++)
        if (recs[i].row->start < base)
            base = recs[i].row->start;
    if (encode_columns(recs, n, base, cols, &d) != 0)
        goto out;
    st_buf_free(&cols[C_DICT]); /* (reserved above with the others) */
    cols[C_DICT] = d.bytes;
    memset(&d.bytes, 0, sizeof d.bytes);
    rc = write_block(cols, n, base, x, out);
out:
    for (int c = 0; c < C__COUNT; c++)
        st_buf_free(&cols[c]);
    dict_free(&d);
    return rc;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct colv {
    st_rd r;
    int present;
} colv;

static int bad(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "damaged state block: %s", what);
    return -1;
}

/* Parse the block's header and directory, inflate the wanted columns into
 * the block's scratch memory; cv[c] reads column c. want(c) selects. */
static int open_columns(const unsigned char *p, size_t n, st_block *b, colv *cv,
                        int (*want)(int), uint32_t *nrec, int64_t *base, char *err,
                        size_t errlen)
{
    memset(cv, 0, sizeof(colv) * C__COUNT);
    if (n < 24 || memcmp(p, "STB1", 4) != 0)
        return bad(err, errlen, "no block magic");
    uint32_t crc = cdr_le32(p + n - 4);
    if (cdr_crc32(0, p, n - 4) != crc)
        return bad(err, errlen, "CRC mismatch");
    st_rd r = {p + 4, p + n - 4, 0};
    *nrec = st_rd_u32le(&r);
    *base = (int64_t)st_rd_u64le(&r);
    uint32_t present = st_rd_u32le(&r);
    if (r.bad || *nrec == 0 || *nrec > ST_BLOCK_MAX || present > C__COUNT)
        return bad(err, errlen, "bad header");
    const unsigned char *dirp = st_rd_bytes(&r, (size_t)present * 10);
    if (!dirp)
        return bad(err, errlen, "short directory");
    /* first pass: sizes of the scratch we need */
    size_t need = 0;
    for (uint32_t i = 0; i < present; i++) {
        const unsigned char *e = dirp + (size_t)i * 10;
        uint32_t rl = cdr_le32(e + 2);
        if (e[1] != 0 && want(e[0]))
            need += rl;
    }
    if (need > b->scratch_cap) {
        unsigned char *s = realloc(b->scratch, need);
        if (!s)
            return -2;
        b->scratch = s;
        b->scratch_cap = need;
    }
    size_t used = 0;
    int rc = 0;
    for (uint32_t i = 0; i < present && rc == 0; i++) {
        const unsigned char *e = dirp + (size_t)i * 10;
        unsigned c = e[0], method = e[1];
        uint32_t rl = cdr_le32(e + 2), sl = cdr_le32(e + 6);
        const unsigned char *data = st_rd_bytes(&r, sl);
        if (!data || c >= C__COUNT || method > 2 || (method == 0 && sl != rl) ||
            (method == 2 && sl != 1) || cv[c].present) {
            rc = bad(err, errlen, "bad column directory");
            break;
        }
        if (!want((int)c))
            continue;
        cv[c].present = 1;
        if (method == 0) {
            cv[c].r = (st_rd){data, data + sl, 0};
            continue;
        }
        if (method == 2) {
            memset(b->scratch + used, data[0], rl);
            cv[c].r = (st_rd){b->scratch + used, b->scratch + used + rl, 0};
            used += rl;
            continue;
        }
        if (!b->inf) {
            b->inf = malloc(sizeof(struct inflate_state));
            if (!b->inf) {
                rc = -2;
                break;
            }
        }
        struct inflate_state *st = b->inf;
        isal_inflate_init(st);
        st->crc_flag = ISAL_DEFLATE;
        st->next_in = (uint8_t *)data;
        st->avail_in = sl;
        st->next_out = b->scratch + used;
        st->avail_out = rl;
        if (isal_inflate_stateless(st) != ISAL_DECOMP_OK || st->avail_out != 0 ||
            st->total_out != rl) {
            rc = bad(err, errlen, "column does not inflate to its length");
            break;
        }
        cv[c].r = (st_rd){b->scratch + used, b->scratch + used + rl, 0};
        used += rl;
    }
    if (rc == 0 && r.p != r.end)
        rc = bad(err, errlen, "bytes after the last column");
    return rc;
}

static int want_all(int c)
{
    (void)c;
    return 1;
}

static int want_ids(int c)
{
    if (c == C_SD || c == C_DICT)
        return 1;
    return c >= C_STR_BASE && (c - C_STR_BASE) / U__COUNT == S_RID;
}

static uint32_t get_planes(colv *cv, int c0)
{
    uint32_t v = st_rd_u8(&cv[c0].r);
    v |= st_rd_u8(&cv[c0 + 1].r) << 8;
    v |= st_rd_u8(&cv[c0 + 2].r) << 16;
    v |= (uint32_t)st_rd_u8(&cv[c0 + 3].r) << 24;
    return v;
}

/* The block dictionary's words as (offset, length) into the column. */
typedef struct words {
    const unsigned char *base;
    uint32_t *off;
    uint32_t n;
    size_t cap;
} words;

static int load_words(colv *cv, words *w)
{
    w->n = 0;
    if (!cv[C_DICT].present)
        return 0;
    st_rd r = cv[C_DICT].r;
    w->base = r.p;
    while (r.p < r.end) {
        if (cdr_grow(&w->off, &w->cap, (size_t)w->n + 1, sizeof *w->off, 64))
            return -2;
        w->off[w->n++] = (uint32_t)(r.p - w->base);
        unsigned len = st_rd_u8(&r);
        if (!st_rd_bytes(&r, len))
            return -1;
    }
    cv[C_DICT].r.p = r.p; /* read whole */
    return 0;
}

/* Arena writing during decode: strings as offsets, fixed up at the end. */
typedef struct arena {
    char *p;
    size_t n, cap;
    int failed;
} arena;

static size_t arena_put(arena *a, const void *s, size_t n)
{
    if (a->n + n > a->cap) {
        size_t nc = a->cap ? a->cap : 4096;
        while (nc < a->n + n)
            nc *= 2;
        char *q = realloc(a->p, nc);
        if (!q) {
            a->failed = 1;
            return 0;
        }
        a->p = q;
        a->cap = nc;
    }
    size_t at = a->n;
    memcpy(a->p + at, s, n);
    a->n += n;
    return at;
}

/* Decode one string of a set into the arena (offset and length). */
static int get_string(colv *cv, const words *w, int set, sprev *pv, arena *a, size_t *off,
                      size_t *len, int skip)
{
    colv *u = &cv[C_STR_BASE + set * U__COUNT];
    unsigned kb = st_rd_u8(&u[U_KIND].r), kind = kb >> 5, nd = kb & 31;
    char tmp[PREFIX_MAX + DIGITS_MAX + 1];
    size_t n = 0;
    uint32_t id = 0;
    *len = 0;
    *off = a->n;
    if (u[U_KIND].r.bad)
        return -1;
    if ((kind == 1 || kind == 2) != (nd != 0))
        return -1;
    switch (kind) {
    case 0:
        return 0;
    case 1:
    case 2: {
        if (kind == 2) {
            id = (uint32_t)st_rd_varint(&u[U_ID].r);
            if (u[U_ID].r.bad || id >= w->n)
                return -1;
            const unsigned char *wp = w->base + w->off[id];
            if (wp[0] > PREFIX_MAX)
                return -1;
            memcpy(tmp, wp + 1, wp[0]);
            n = wp[0];
        }
        if (nd > DIGITS_MAX)
            return -1;
        uint64_t v;
        if (is_delta_set(set)) {
            uint64_t bse = (pv->kind == (int)kind && pv->pfx == id && pv->ndig == nd) ? pv->v : 0;
            v = bse + (uint64_t)cdr_unzz(st_rd_varint(&u[U_DV].r));
            if (u[U_DV].r.bad)
                return -1;
            pv->kind = (int)kind;
            pv->pfx = id;
            pv->ndig = nd;
            pv->v = v;
        } else {
            uint32_t lo = get_planes(u, U_L0);
            uint64_t hi = st_rd_u8(&u[U_HI].r);
            int esc = hi == 255;
            if (esc)
                hi = st_rd_varint(&u[U_HIX].r);
            if (u[U_L0].r.bad || u[U_L3].r.bad || u[U_HI].r.bad || u[U_HIX].r.bad ||
                lo >= 100000000u || hi >= P10[DIGITS_MAX - 8] || (esc && hi < 255))
                return -1;
            v = hi * 100000000u + lo;
        }
        if (v >= P10[nd])
            return -1;
        if (skip)
            return 0;
        cdr_format_digits(tmp + n, v, nd);
        n += nd;
        *off = arena_put(a, tmp, n);
        *len = n;
        return a->failed ? -2 : 0;
    }
    case 3: {
        id = (uint32_t)st_rd_varint(&u[U_ID].r);
        if (u[U_ID].r.bad || id >= w->n)
            return -1;
        if (skip)
            return 0;
        const unsigned char *wp = w->base + w->off[id];
        *off = arena_put(a, wp + 1, wp[0]);
        *len = wp[0];
        return a->failed ? -2 : 0;
    }
    case 4: {
        uint64_t l = st_rd_varint(&u[U_RAW].r);
        const unsigned char *s = u[U_RAW].r.bad ? NULL : st_rd_bytes(&u[U_RAW].r, (size_t)l);
        if (!s)
            return -1;
        if (skip)
            return 0;
        *off = arena_put(a, s, (size_t)l);
        *len = (size_t)l;
        return a->failed ? -2 : 0;
    }
    default:
        return -1;
    }
}

static int grow_rows(st_block *b, size_t n)
{
    if (n <= b->rows_cap)
        return 0;
    /* (new arrays, not realloc'd ones: a decode writes what it returns, and
     * copying the old rows only touched memory) */
    free(b->rows);
    free(b->file_local);
    free(b->off_res);
    free(b->first);
    b->rows_cap = 0;
    b->rows = malloc(n * sizeof *b->rows);
    b->file_local = malloc(n * sizeof *b->file_local);
    b->off_res = malloc(n * sizeof *b->off_res);
    b->first = malloc(n);
    if (!b->rows || !b->file_local || !b->off_res || !b->first)
        return -2;
    b->rows_cap = n;
    return 0;
}

typedef struct strref {
    size_t off, len;
} strref;

/* decode's string references grown to hold `need` (first: 5 a record). */
static int refs_reserve(strref **refs, size_t *cap, size_t need, uint32_t nrec)
{
    size_t nc = *cap ? *cap * 2 : (size_t)nrec * 5 + 16;
    while (nc < need)
        nc *= 2;
    strref *q = realloc(*refs, nc * sizeof *q);
    if (!q)
        return -2;
    *refs = q;
    *cap = nc;
    return 0;
}

/* Every present column read exactly to its end. */
static int check_ends(const colv *cv, char *err, size_t errlen)
{
    for (int c = 0; c < C__COUNT; c++)
        if (cv[c].present && (cv[c].r.bad || cv[c].r.p != cv[c].r.end)) {
            char what[64];
            snprintf(what, sizeof what, "column %d's length does not match its records", c);
            return bad(err, errlen, what);
        }
    return 0;
}

/* A record's numbers (decode's step for one row; inlined): its start from
 * the previous record's, amount and billed by service, SMS and partial
 * fields when its flags sd say so, file, line and offset residue. Returns
 * the new previous start. */
static inline int64_t decode_numbers(colv *cv, unsigned sd, int64_t prev_start, cdr_row *r,
                                     uint32_t *file_local, int64_t *off_res)
{
    uint32_t dt = get_planes(cv, C_ST0);
    prev_start += dt;
    r->start = prev_start;
    uint64_t bc;
    switch (r->service) {
    case CDR_SVC_VOICE:
        r->duration_s = (int64_t)st_rd_varint(&cv[C_AMT_V].r);
        bc = st_rd_varint(&cv[C_BILL_V].r);
        break;
    case CDR_SVC_SMS:
        r->sms_chars = (int64_t)st_rd_varint(&cv[C_AMT_S].r);
        bc = st_rd_varint(&cv[C_BILL_S].r);
        break;
    case CDR_SVC_DATA:
        r->bytes = (int64_t)st_rd_varint(&cv[C_AMT_D].r);
        bc = st_rd_varint(&cv[C_BILL_D].r);
        break;
    default:
        bc = st_rd_varint(&cv[C_BILL_A].r);
        break;
    }
    r->billed = (bc & 1) ? cdr_unzz(bc >> 1) : cdr_unzz(bc >> 1) * 10000;
    if (sd & 8) {
        r->sms_part = (int32_t)cdr_unzz(st_rd_varint(&cv[C_SMSPART].r));
        r->sms_parts = (int32_t)cdr_unzz(st_rd_varint(&cv[C_SMSPARTS].r));
    }
    if (sd & 16)
        r->partial_seq = cdr_unzz(st_rd_varint(&cv[C_PSEQ].r));
    *file_local = (uint32_t)st_rd_varint(&cv[C_FILE].r);
    r->line = get_planes(cv, C_LINE0);
    *off_res = cdr_unzz(st_rd_varint(&cv[C_OFFRES].r));
    return prev_start;
}

/* Rows from..to of a decoded block get their strings as views into the
 * block's arena, now final: refs holds, per row, the record_id, then
 * (all fields) the peer, call_id, sms_ref and the extras. */
static void set_views(st_block *b, const strref *refs, int ids_only, size_t from, size_t to)
{
    size_t k = 0, ex = 0;
    for (size_t i = from; i < to; i++) {
        cdr_row *r = &b->rows[i];
        r->record_id = (cdr_str){b->arena + refs[k].off, refs[k].len};
        k++;
        if (!ids_only) {
            r->peer = (cdr_str){b->arena + refs[k].off, refs[k].len};
            r->call_id = (cdr_str){b->arena + refs[k + 1].off, refs[k + 1].len};
            r->sms_ref = (cdr_str){b->arena + refs[k + 2].off, refs[k + 2].len};
            k += 3;
            r->extra = r->n_extra ? b->extras + ex : NULL;
            for (uint32_t j = 0; j < r->n_extra; j++)
                b->extras[ex++] = (cdr_str){b->arena + refs[k + j].off, refs[k + j].len};
            k += r->n_extra;
        }
    }
}

/* A block's rows [from, to) decoded (all fields, or the record_ids only);
 * the rows before `from` are stepped over, as the columns are read in
 * order. Kept as one function of about 100 lines: it is the per-row loop
 * every read of the state runs (a re-rated subscriber-month, investigate,
 * compaction), its state (the column readers, the previous start and
 * strings, the arena) is shared by every step, and its steps are the
 * inline helpers above. */
static int decode(const unsigned char *p, size_t n, st_block *b, int ids_only, size_t from,
                  size_t to, char *err, size_t errlen)
{
    colv cv[C__COUNT];
    uint32_t nrec = 0;
    int64_t base = 0;
    words w = {0};
    arena a = {b->arena, 0, b->arena_cap, 0};
    strref *refs = NULL;
    size_t nrefs = 0, refs_cap = 0;
    int rc = open_columns(p, n, b, cv, ids_only ? want_ids : want_all, &nrec, &base, err, errlen);
    if (rc != 0)
        goto out;
    if ((rc = grow_rows(b, nrec)) != 0)
        goto out;
    if ((rc = load_words(cv, &w)) != 0) {
        if (rc == -1)
            bad(err, errlen, "dictionary");
        goto out;
    }
    sprev pv[S__COUNT];
    memset(pv, 0, sizeof pv);
    int64_t prev_start = base;
    size_t nx = 0; /* extras used so far */
    /* string refs: 4 per record + the extras; grown as needed */
    if (to > nrec)
        to = nrec;
    if (from > to)
        from = to;
    cdr_row over;         /* a row before the range: stepped over, here */
    uint32_t over_fl;
    int64_t over_res;
    for (uint32_t i = 0; i < to; i++) {
        int skip = i < from;
        cdr_row *r = skip ? &over : &b->rows[i];
        unsigned sd = st_rd_u8(&cv[C_SD].r);
        int first = (sd >> 7) & 1;
        b->first[i] = (unsigned char)first;
        if (first) {
            prev_start = base;
            memset(pv, 0, sizeof pv);
        }
        memset(r, 0, sizeof *r);
        r->service = (cdr_service)(sd & 3);
        r->direction = (cdr_direction)((sd >> 2) & 1);
        r->duration_s = r->bytes = r->sms_chars = -1;
        uint32_t nextra = 0;
        if (!ids_only) {
            prev_start = decode_numbers(cv, sd, prev_start, r, skip ? &over_fl : &b->file_local[i],
                                        skip ? &over_res : &b->off_res[i]);
            nextra = (uint32_t)st_rd_varint(&cv[C_NEXTRA].r);
            if (nextra > 65535) {
                rc = bad(err, errlen, "extra count");
                goto out;
            }
        }
        if (nrefs + 4 + nextra > refs_cap &&
            (rc = refs_reserve(&refs, &refs_cap, nrefs + 4 + nextra, nrec)) != 0)
            goto out;
        int sets = ids_only ? 1 : 4;
        for (int s = 0; s < sets; s++) {
            rc = get_string(cv, &w, s, &pv[s], &a, &refs[nrefs].off, &refs[nrefs].len, skip);
            if (rc != 0)
                goto strfail;
            nrefs += !skip;
        }
        for (uint32_t k = 0; k < nextra; k++) {
            int set = S_EXTRA0 + (k < ST_EXTRA_COLS ? (int)k : ST_EXTRA_COLS - 1);
            rc = get_string(cv, &w, set, &pv[set], &a, &refs[nrefs].off, &refs[nrefs].len,
                            skip);
            if (rc != 0)
                goto strfail;
            nrefs += !skip;
        }
        r->n_extra = nextra;
        nx += skip ? 0 : nextra;
    }
    /* every column must be read to its end (when every row was decoded) */
    if (to == nrec && (rc = check_ends(cv, err, errlen)) != 0)
        goto out;
    if (nx > b->extras_cap) {
        cdr_str *x = realloc(b->extras, nx * sizeof *x);
        if (!x) {
            rc = -2;
            goto out;
        }
        b->extras = x;
        b->extras_cap = nx;
    }
    /* the arena is final: views from offsets */
    b->arena = a.p;
    b->arena_cap = a.cap;
    a.p = NULL;
    set_views(b, refs, ids_only, from, to);
    b->n = nrec;
    rc = 0;
    goto out;
strfail:
    if (rc == -1)
        bad(err, errlen, "string column");
out:
    if (a.p) {
        b->arena = a.p;
        b->arena_cap = a.cap;
    }
    if (a.failed && rc == 0)
        rc = -2;
    free(w.off);
    free(refs);
    if (rc != 0)
        b->n = 0;
    return rc;
}

int st_block_decode(const unsigned char *p, size_t n, st_block *b, char *err, size_t errlen)
{
    return decode(p, n, b, 0, 0, SIZE_MAX, err, errlen);
}

int st_block_decode_rows(const unsigned char *p, size_t n, st_block *b, size_t from, size_t to,
                         char *err, size_t errlen)
{
    return decode(p, n, b, 0, from, to, err, errlen);
}

int st_block_decode_ids(const unsigned char *p, size_t n, st_block *b, size_t from, size_t to,
                        char *err, size_t errlen)
{
    return decode(p, n, b, 1, from, to, err, errlen);
}

void st_block_free(st_block *b)
{
    free(b->rows);
    free(b->file_local);
    free(b->off_res);
    free(b->first);
    free(b->extras);
    free(b->arena);
    free(b->scratch);
    free(b->inf);
    memset(b, 0, sizeof *b);
}
