/*
 * cdrecon — the re-rating engine.
 *
 * Ingest: every accepted row is packed (about 90 bytes, see Records) and
 * appended to one of NBUCKET buckets chosen by a hash of its msisdn - with
 * threads > 1 through staging blocks that a distributor thread files into
 * the buckets. When the buckets together exceed the memory budget, every
 * bucket is appended to its own spill file and emptied. Finish: bucket by
 * bucket (spill file + what is in memory), in cache-sized slices cut by the
 * hash, the records are decoded into blobs, sorted by (msisdn hash, msisdn,
 * start, record_id, file, line) and walked subscriber by subscriber, month by
 * month. The order depends only on the data, so spilling, threads or not
 * give identical output.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "cdrecon/engine.h"
#include "cdrecon/outcsv.h"
#include "hashfn.h"
#include "swar.h"
#include "tmpdir.h"

#define NBUCKET 256

/* ------------------------------------------------------------------ */
/* Records                                                              */

/* In memory and in spill files a record is packed:
 *
 *   length    L (of the rest)
 *   msisdn    L, bytes
 *   widths    3 bytes: the byte widths (minus one) of the 8 numbers, 3 bits each
 *   numbers   start (zigzag, from PACK_EPOCH), file, amount (zigzag), billed
 *             (zigzag), partial_seq (zigzag), line, offset, sms part and parts
 *             (zigzag, 32 bits each): each in its width, little-endian
 *   svc/dir   1 byte
 *   lengths   L x 5: record_id, peer, call_id, sms_ref, number of extras
 *   strings   record_id, peer, call_id, sms_ref; then each extra as L, bytes
 *
 * where L is a byte below 255, or 255 and 4 bytes. The msisdn, start and
 * file come first, so that filing and collecting records read only those.
 * About 90 bytes for a usual record, half a fixed header's, so that a
 * 10M-record month fits in the default 1 GiB and fresh memory (costly to
 * fault in) is halved. Numbers in byte widths named up front decode with
 * no loop and no branch on their size: the varints this replaced were a
 * tenth of a worker's instructions. Decoding reads up to 8 bytes from a
 * number's first byte: every block of packed records has PACK_PAD bytes
 * beyond its end. A bucket is decoded into blobs when it is rated. */
#define PACK_EPOCH 1700000000 /* 2023-11-14: keeps start times in 4 bytes */
#define PACK_PAD 8

typedef struct blob {
    uint64_t h;          /* msisdn hash */
    int64_t start;
    int64_t amount;      /* duration_s / bytes / sms_chars (-1 if n/a) */
    int64_t billed;
    int64_t partial_seq;
    uint64_t line;
    uint64_t offset;
    uint32_t file_index;
    int32_t sms_part, sms_parts;
    uint32_t l_msisdn, l_rid, l_peer, l_call, l_ref;
    uint32_t n_extra;
    uint8_t service, direction;
    const char *s;            /* msisdn */
    const char *r;            /* record_id, peer, call_id, sms_ref (adjacent) */
    const unsigned char *x;   /* n_extra x (length, bytes) */
} blob;

static inline const char *b_msisdn(const blob *b) { return b->s; }
static inline const char *b_rid(const blob *b) { return b->r; }
static inline const char *b_peer(const blob *b) { return b_rid(b) + b->l_rid; }
static inline const char *b_call(const blob *b) { return b_peer(b) + b->l_peer; }
static inline const char *b_ref(const blob *b) { return b_call(b) + b->l_call; }

static inline uint64_t zz(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzz(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
static inline uint32_t zz32(int32_t v) { return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31); }
static inline int32_t unzz32(uint32_t v) { return (int32_t)(v >> 1) ^ -(int32_t)(v & 1); }

static inline uint64_t le64(uint64_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(x);
#else
    return x;
#endif
}

static inline uint32_t le32(uint32_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(x);
#else
    return x;
#endif
}

/* The bytes v takes (1..8). */
static inline unsigned width8(uint64_t v)
{
    return (unsigned)(71 - __builtin_clzll(v | 1)) >> 3;
}

/* A length: one byte below 255, else 255 and 4 bytes. */
static inline unsigned char *put_len(unsigned char *p, uint32_t v)
{
    if (v < 255) {
        *p = (unsigned char)v;
        return p + 1;
    }
    *p = 255;
    uint32_t x = le32(v);
    memcpy(p + 1, &x, 4);
    return p + 5;
}

static inline size_t len_size(size_t v) { return v < 255 ? 1 : 5; }

/* Packed data is our own (memory, or a spill file we wrote and read back
 * whole), so decoding trusts its lengths. */
static inline const unsigned char *get_len(const unsigned char *p, uint32_t *v)
{
    if (*p != 255) {
        *v = *p;
        return p + 1;
    }
    uint32_t x;
    memcpy(&x, p + 1, 4);
    *v = le32(x);
    return p + 5;
}

/* The first k numbers at p (after the msisdn): the widths, then each
 * number read as 8 bytes and cut to its width. Returns what follows them
 * when k is 8. */
static inline const unsigned char *get_nums(const unsigned char *p, uint64_t *num, int k)
{
    static const uint64_t cut[8] = {0xffull,         0xffffull,         0xffffffull,
                                    0xffffffffull,   0xffffffffffull,   0xffffffffffffull,
                                    0xffffffffffffffull, ~0ull};
    uint32_t wd = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    p += 3;
    for (int i = 0; i < k; i++) {
        unsigned w = wd >> (3 * i) & 7;
        uint64_t x;
        memcpy(&x, p, 8);
        num[i] = le64(x) & cut[w];
        p += w + 1;
    }
    return p;
}

/* The packed record at p: its size (length prefix included). */
static inline size_t packed_size(const unsigned char *p)
{
    uint32_t n;
    const unsigned char *q = get_len(p, &n);
    return (size_t)(q - p) + n;
}

/* The msisdn of the packed record at p; returns what follows it. */
static inline const unsigned char *peek_msisdn(const unsigned char *p, const char **msisdn,
                                               size_t *msisdn_len)
{
    uint32_t v;
    p = get_len(p, &v); /* length */
    p = get_len(p, &v);
    *msisdn = (const char *)p;
    *msisdn_len = v;
    return p + v;
}

/* The msisdn, start time and file of the packed record at p. */
static inline void peek(const unsigned char *p, const char **msisdn, size_t *msisdn_len,
                        int64_t *start, uint32_t *file_index)
{
    p = peek_msisdn(p, msisdn, msisdn_len);
    uint64_t num[2];
    get_nums(p, num, 2);
    *start = (int64_t)((uint64_t)unzz(num[0]) + PACK_EPOCH);
    *file_index = (uint32_t)num[1];
}

static void unpack(const unsigned char *p, blob *b)
{
    uint32_t v;
    p = get_len(p, &v); /* length */
    p = get_len(p, &v);
    b->l_msisdn = v;
    b->s = (const char *)p;
    p += v;
    uint64_t num[8];
    p = get_nums(p, num, 8);
    b->start = (int64_t)((uint64_t)unzz(num[0]) + PACK_EPOCH);
    b->file_index = (uint32_t)num[1];
    b->amount = unzz(num[2]);
    b->billed = unzz(num[3]);
    b->partial_seq = unzz(num[4]);
    b->line = num[5];
    b->offset = num[6];
    b->sms_part = unzz32((uint32_t)num[7]);
    b->sms_parts = unzz32((uint32_t)(num[7] >> 32));
    b->service = *p & 15;
    b->direction = *p++ >> 4;
    p = get_len(p, &b->l_rid);
    p = get_len(p, &b->l_peer);
    p = get_len(p, &b->l_call);
    p = get_len(p, &b->l_ref);
    p = get_len(p, &b->n_extra);
    b->r = (const char *)p;
    b->x = p + b->l_rid + b->l_peer + b->l_call + b->l_ref;
    b->h = 0; /* the caller sets it: msisdn_hash(b->s, b->l_msisdn) */
}

/* The msisdn's hash (src/hashfn.h): its top bits pick the bucket, and its
 * values fix the order of the output. */
static inline uint64_t msisdn_hash(const char *p, size_t n)
{
#ifdef CDR_TEST_WEAK_HASH
    /* tests only (test_rate_weak): 8 hash values for every number, so
     * that numbers sharing a hash - a 1 in 10^12 event with the real one -
     * are the rule, and the code for them runs */
    return cdr_hash_bytes(p, n, 0) & 0x8000000000000003ull;
#else
    return cdr_hash_bytes(p, n, 0);
#endif
}

uint64_t cdr_msisdn_hash(const char *p, size_t n)
{
    return msisdn_hash(p, n);
}

/* ------------------------------------------------------------------ */

/* A bucket's records live in a list of chunks (no realloc copying); a blob
 * never straddles two chunks. */
typedef struct chunk {
    struct chunk *next;
    size_t n, cap;
    unsigned char data[];
} chunk;

typedef struct bucket {
    chunk *head, *tail;
    size_t bytes;      /* in memory */
    FILE *spill;
    uint64_t spilled;  /* bytes in the spill file */
    size_t records;    /* records filed, in memory and spilled */
} bucket;

#define CHUNK_MIN ((size_t)16 << 10)
#define CHUNK_MAX ((size_t)2 << 20)

static chunk *chunk_alloc(size_t cap)
{
    /* (transparent huge pages were tried: with defrag=madvise the direct
     * compaction made a 10M-record run slower, not faster) */
    chunk *c = malloc(sizeof(chunk) + cap + PACK_PAD);
    if (c) {
        c->next = NULL;
        c->n = 0;
        c->cap = cap;
    }
    return c;
}

static void free_chunks(cdr_engine *e, bucket *b);
static cdr_err dist_stop(cdr_engine *e);

typedef struct file_info {
    char *name;
    int excluded;
    cdr_str *extra_names; /* copied */
    char *extra_store;
    uint32_t n_extra;
} file_info;

#define TPOOL_MAX 8 /* kept memory writers: the buckets in flight (LOOKAHEAD) and more */

struct cdr_engine {
    const cdr_tariff *t;
    cdr_engine_opts o;
    bucket b[NBUCKET];
    size_t mem, peak;
    char *spilldir;
    int spilled;
    uint64_t spilled_bytes;
    file_info *files;
    uint32_t n_files;
    uint64_t out_of_scope;
    int finished;
    char err[512];
    /* The distributor (threads > 1): cdr_engine_add packs records into
     * staging blocks, a second thread moves them into the buckets (hashing,
     * chunk memory, spilling), so that the reading thread does less. */
    int dist_on, dist_tried;
    pthread_t dist_th;
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    struct stage *q_head, *q_tail; /* full blocks, in order */
    size_t q_len;
    struct stage *spare;           /* emptied blocks, for reuse */
    struct stage *cur;             /* being filled */
    int dist_end;
    cdr_err dist_err;
    /* Memory writers for rendered rows, kept for the next bucket once
     * drained: a bucket renders megabytes, and fresh memory each time
     * cost its page faults again (at most the writers in flight are kept). */
    pthread_mutex_t tmu;
    struct cdr_csvw *tpool[TPOOL_MAX];
    int n_tpool;
};

/* A staging block: packed records. */
typedef struct stage {
    struct stage *next;
    size_t n, cap;
    unsigned char data[];
} stage;

#define STAGE_SIZE ((size_t)1 << 20)
#define STAGE_QUEUE 6 /* full blocks waiting: with the spares, ~8 MiB beside --mem */

void cdr_engine_opts_init(cdr_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mem_budget = (size_t)1 << 30;
    o->max_duration = 10800;
    o->tolerance = 0;
    o->month = -1;
    o->threads = 2; /* rating workers; the results do not depend on it */
}

const char *cdr_rec_status_name(cdr_rec_status s)
{
    static const char *const n[CDR_RS__COUNT] = {
        "rated", "duplicate", "partial_first", "partial_rest",
        "free_number", "no_subscription", "segment_over", "unrated",
    };
    return (unsigned)s < CDR_RS__COUNT ? n[s] : "?";
}

const char *cdr_engine_errmsg(const cdr_engine *e)
{
    return e ? e->err : "";
}

cdr_err cdr_engine_new(const cdr_tariff *t, const cdr_engine_opts *o, cdr_engine **out)
{
    cdr_engine *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return CDR_E_NOMEM;
    e->t = t;
    if (o)
        e->o = *o;
    else
        cdr_engine_opts_init(&e->o);
    if (e->o.mem_budget < ((size_t)1 << 16))
        e->o.mem_budget = (size_t)1 << 16; /* below one bucket's first block */
    pthread_mutex_init(&e->tmu, NULL);
    *out = e;
    return CDR_OK;
}

/* A memory writer for a bucket's rendered rows: a kept one, or a new one. */
static cdr_csvw *text_take(cdr_engine *e)
{
    cdr_csvw *w = NULL;
    pthread_mutex_lock(&e->tmu);
    if (e->n_tpool > 0)
        w = e->tpool[--e->n_tpool];
    pthread_mutex_unlock(&e->tmu);
    if (!w && cdr_csvw_open_memory(&w) != CDR_OK)
        return NULL;
    return w;
}

/* Give a drained (or failed) writer back: emptied and kept if it is sound
 * and there is room, else freed. */
static void text_give(cdr_engine *e, cdr_csvw *w)
{
    if (!w)
        return;
    if (cdr_csvw_status(w) == CDR_OK) {
        cdr_csvw_memory_reset(w);
        pthread_mutex_lock(&e->tmu);
        if (e->n_tpool < TPOOL_MAX) {
            e->tpool[e->n_tpool++] = w;
            w = NULL;
        }
        pthread_mutex_unlock(&e->tmu);
    }
    cdr_csvw_free(w);
}

static void remove_spill(cdr_engine *e)
{
    char path[4096];
    for (int i = 0; i < NBUCKET; i++) {
        if (e->b[i].spill) {
            fclose(e->b[i].spill);
            e->b[i].spill = NULL;
        }
        if (e->spilldir) {
            snprintf(path, sizeof path, "%s/b%03d", e->spilldir, i);
            unlink(path);
        }
    }
    if (e->spilldir) {
        rmdir(e->spilldir);
        free(e->spilldir);
        e->spilldir = NULL;
    }
}

void cdr_engine_set_tariff(cdr_engine *e, const cdr_tariff *t)
{
    e->t = t;
}

void cdr_engine_free(cdr_engine *e)
{
    if (!e)
        return;
    dist_stop(e);
    remove_spill(e);
    for (int i = 0; i < NBUCKET; i++)
        free_chunks(e, &e->b[i]);
    for (uint32_t i = 0; i < e->n_files; i++) {
        free(e->files[i].name);
        free(e->files[i].extra_names);
        free(e->files[i].extra_store);
    }
    free(e->files);
    for (int i = 0; i < e->n_tpool; i++)
        cdr_csvw_free(e->tpool[i]);
    pthread_mutex_destroy(&e->tmu);
    free(e);
}

static cdr_err ensure_file(cdr_engine *e, uint32_t fi)
{
    if (fi < e->n_files)
        return CDR_OK;
    if (fi > 100000000u)
        return CDR_E_RANGE;
    uint32_t n = fi + 1;
    file_info *f = realloc(e->files, n * sizeof *f);
    if (!f)
        return CDR_E_NOMEM;
    memset(f + e->n_files, 0, (n - e->n_files) * sizeof *f);
    e->files = f;
    e->n_files = n;
    return CDR_OK;
}

cdr_err cdr_engine_set_file(cdr_engine *e, uint32_t fi, const char *name)
{
    cdr_err r = ensure_file(e, fi);
    if (r)
        return r;
    free(e->files[fi].name);
    e->files[fi].name = strdup(name ? name : "");
    return e->files[fi].name ? CDR_OK : CDR_E_NOMEM;
}

void cdr_engine_exclude_file(cdr_engine *e, uint32_t fi)
{
    if (ensure_file(e, fi) == CDR_OK)
        e->files[fi].excluded = 1;
}

static cdr_err set_extra_names(cdr_engine *e, uint32_t fi, const cdr_row *r)
{
    file_info *f = &e->files[fi];
    if (f->n_extra == r->n_extra && (f->extra_names || r->n_extra == 0))
        return CDR_OK;
    size_t total = 0;
    for (uint32_t i = 0; i < r->n_extra; i++)
        total += r->extra_names[i].n + 1;
    cdr_str *names = calloc(r->n_extra ? r->n_extra : 1, sizeof *names);
    char *store = malloc(total ? total : 1);
    if (!names || !store) {
        free(names);
        free(store);
        return CDR_E_NOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < r->n_extra; i++) {
        memcpy(store + k, r->extra_names[i].p, r->extra_names[i].n);
        names[i].p = store + k;
        names[i].n = r->extra_names[i].n;
        k += r->extra_names[i].n;
        store[k++] = '\0';
    }
    free(f->extra_names);
    free(f->extra_store);
    f->extra_names = names;
    f->extra_store = store;
    f->n_extra = r->n_extra;
    return CDR_OK;
}

static cdr_err spill_all(cdr_engine *e)
{
    char path[4096];
    if (!e->spilldir) {
        const char *td = cdr_tmpdir(e->o.tmpdir);
        snprintf(path, sizeof path, "%s/cdrecon-spill-XXXXXX", td);
        if (!mkdtemp(path)) {
            snprintf(e->err, sizeof e->err, "cannot create spill directory in %s: %s", td,
                     strerror(errno));
            return CDR_E_IO;
        }
        e->spilldir = strdup(path);
        if (!e->spilldir)
            return CDR_E_NOMEM;
    }
    for (int i = 0; i < NBUCKET; i++) {
        bucket *b = &e->b[i];
        if (b->bytes == 0)
            continue;
        if (!b->spill) {
            snprintf(path, sizeof path, "%s/b%03d", e->spilldir, i);
            b->spill = fopen(path, "w+b");
            if (!b->spill) {
                snprintf(e->err, sizeof e->err, "cannot create spill file %.300s: %s", path,
                         strerror(errno));
                return CDR_E_IO;
            }
        }
        for (chunk *c = b->head; c; c = c->next)
            if (c->n && fwrite(c->data, 1, c->n, b->spill) != c->n) {
                snprintf(e->err, sizeof e->err, "cannot write spill file: %s", strerror(errno));
                return CDR_E_IO;
            }
        b->spilled += b->bytes;
        e->spilled_bytes += b->bytes;
        free_chunks(e, b);
    }
    e->spilled = 1;
    return CDR_OK;
}

/* Room for need bytes at the end of bucket h's last chunk (a new chunk,
 * spilling everything first if the budget would be passed). */
static cdr_err bucket_reserve(cdr_engine *e, uint64_t h, size_t need, unsigned char **out)
{
    cdr_err err;
    bucket *b = &e->b[h >> 56];
    chunk *ck = b->tail;
    if (!ck || ck->n + need > ck->cap) {
        size_t nc = ck ? (ck->cap * 2 < CHUNK_MAX ? ck->cap * 2 : CHUNK_MAX - sizeof(chunk))
                       : CHUNK_MIN;
        while (nc < need)
            nc *= 2;
        if (e->mem + nc + sizeof(chunk) > e->o.mem_budget) {
            if ((err = spill_all(e)) != CDR_OK)
                return err;
            nc = CHUNK_MIN;
            while (nc < need)
                nc *= 2;
        }
        chunk *n = chunk_alloc(nc);
        if (!n)
            return CDR_E_NOMEM;
        nc = n->cap;
        if (b->tail)
            b->tail->next = n;
        else
            b->head = n;
        b->tail = ck = n;
        e->mem += sizeof(chunk) + nc;
        if (e->mem > e->peak)
            e->peak = e->mem;
    }
    *out = ck->data + ck->n;
    ck->n += need;
    b->bytes += need;
    b->records++;
    return CDR_OK;
}

/* Move a staging block's records into their buckets. */
static cdr_err distribute(cdr_engine *e, const stage *s)
{
    for (size_t off = 0; off < s->n;) {
        const char *m;
        size_t ml;
        peek_msisdn(s->data + off, &m, &ml); /* (the bucket needs only its hash) */
        size_t need = packed_size(s->data + off);
        unsigned char *d;
        cdr_err err = bucket_reserve(e, msisdn_hash(m, ml), need, &d);
        if (err != CDR_OK)
            return err;
        memcpy(d, s->data + off, need);
        off += need;
    }
    return CDR_OK;
}

static void *dist_main(void *arg)
{
    cdr_engine *e = arg;
    pthread_mutex_lock(&e->dmu);
    for (;;) {
        while (!e->q_head && !e->dist_end)
            pthread_cond_wait(&e->dcv, &e->dmu);
        stage *s = e->q_head;
        if (!s)
            break;
        e->q_head = s->next;
        if (!e->q_head)
            e->q_tail = NULL;
        e->q_len--;
        cdr_err err = e->dist_err;
        pthread_mutex_unlock(&e->dmu);
        if (err == CDR_OK)
            err = distribute(e, s);
        pthread_mutex_lock(&e->dmu);
        if (err != CDR_OK && e->dist_err == CDR_OK)
            e->dist_err = err;
        s->n = 0;
        s->next = e->spare;
        e->spare = s;
        pthread_cond_broadcast(&e->dcv);
    }
    pthread_mutex_unlock(&e->dmu);
    return NULL;
}

/* Append the current block to the distributor's queue (dmu held). */
static void queue_cur(cdr_engine *e)
{
    e->cur->next = NULL;
    if (e->q_tail)
        e->q_tail->next = e->cur;
    else
        e->q_head = e->cur;
    e->q_tail = e->cur;
    e->q_len++;
    e->cur = NULL;
}

/* Queue the current block (waiting for room) and take an empty one with
 * room for need bytes. */
static cdr_err stage_next(cdr_engine *e, size_t need)
{
    pthread_mutex_lock(&e->dmu);
    if (e->cur && e->cur->n) {
        while (e->q_len >= STAGE_QUEUE && e->dist_err == CDR_OK)
            pthread_cond_wait(&e->dcv, &e->dmu);
        queue_cur(e);
        pthread_cond_broadcast(&e->dcv);
    }
    cdr_err err = e->dist_err;
    stage *s = e->cur;
    if (!s && e->spare) {
        s = e->spare;
        e->spare = s->next;
    }
    pthread_mutex_unlock(&e->dmu);
    if (err != CDR_OK) {
        e->cur = s;
        return err;
    }
    if (s && s->cap < need) {
        free(s);
        s = NULL;
    }
    if (!s) {
        size_t cap = need > STAGE_SIZE ? need : STAGE_SIZE;
        s = malloc(sizeof *s + cap + PACK_PAD);
        if (!s)
            return CDR_E_NOMEM;
        s->cap = cap;
    }
    s->n = 0;
    s->next = NULL;
    e->cur = s;
    return CDR_OK;
}

static void dist_start(cdr_engine *e)
{
    if (pthread_mutex_init(&e->dmu, NULL) != 0)
        return;
    if (pthread_cond_init(&e->dcv, NULL) != 0) {
        pthread_mutex_destroy(&e->dmu);
        return;
    }
    if (pthread_create(&e->dist_th, NULL, dist_main, e) != 0) {
        pthread_cond_destroy(&e->dcv);
        pthread_mutex_destroy(&e->dmu);
        return; /* the records are then distributed on the calling thread */
    }
    e->dist_on = 1;
}

/* Hand over the last block, wait for the distributor, free the blocks. */
static cdr_err dist_stop(cdr_engine *e)
{
    if (!e->dist_on)
        return CDR_OK;
    pthread_mutex_lock(&e->dmu);
    if (e->cur && e->cur->n && e->dist_err == CDR_OK)
        queue_cur(e);
    e->dist_end = 1;
    pthread_cond_broadcast(&e->dcv);
    pthread_mutex_unlock(&e->dmu);
    pthread_join(e->dist_th, NULL);
    e->dist_on = 0;
    cdr_err err = e->dist_err;
    for (stage *s = e->q_head, *n; s; s = n) { /* left over after an error */
        n = s->next;
        free(s);
    }
    for (stage *s = e->spare, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    free(e->cur);
    e->q_head = e->q_tail = e->spare = e->cur = NULL;
    pthread_cond_destroy(&e->dcv);
    pthread_mutex_destroy(&e->dmu);
    return err;
}

cdr_err cdr_engine_add(cdr_engine *e, const cdr_row *r)
{
    cdr_err err;
    if (e->finished)
        return CDR_E_INTERNAL;
    if ((err = ensure_file(e, r->file_index)) != CDR_OK)
        return err;
    if (e->o.month >= 0 && cdr_time_month(r->start) != e->o.month) {
        e->out_of_scope++;
        return CDR_OK;
    }
    if (e->o.msisdn &&
        (strlen(e->o.msisdn) != r->msisdn.n || memcmp(e->o.msisdn, r->msisdn.p, r->msisdn.n))) {
        e->out_of_scope++;
        return CDR_OK;
    }
    if (r->n_extra && (err = set_extra_names(e, r->file_index, r)) != CDR_OK)
        return err;
    if (r->n_extra > 65535)
        return CDR_E_RANGE;

    /* the head: everything between the msisdn and the strings */
    if (r->msisdn.n > UINT32_MAX || r->record_id.n > UINT32_MAX || r->peer.n > UINT32_MAX ||
        r->call_id.n > UINT32_MAX || r->sms_ref.n > UINT32_MAX)
        return CDR_E_RANGE;
    int64_t amount = r->service == CDR_SVC_VOICE  ? r->duration_s
                     : r->service == CDR_SVC_DATA ? r->bytes
                     : r->service == CDR_SVC_SMS  ? r->sms_chars
                                                  : -1;
    uint64_t num[8] = {zz((int64_t)((uint64_t)r->start - PACK_EPOCH)),
                       r->file_index,
                       zz(amount),
                       zz(r->billed),
                       zz(r->partial_seq),
                       r->line,
                       r->offset,
                       (uint64_t)zz32(r->sms_part) | (uint64_t)zz32(r->sms_parts) << 32};
    unsigned char head[3 + 8 * 8 + 1 + 5 * 5 + 8], *hp = head + 3;
    uint32_t wd = 0;
    for (int i = 0; i < 8; i++) {
        unsigned w = width8(num[i]);
        uint64_t x = le64(num[i]);
        wd |= (uint32_t)(w - 1) << (3 * i);
        memcpy(hp, &x, 8); /* (the head has room for 8 bytes of the last) */
        hp += w;
    }
    head[0] = (unsigned char)wd;
    head[1] = (unsigned char)(wd >> 8);
    head[2] = (unsigned char)(wd >> 16);
    *hp++ = (unsigned char)((unsigned)r->service | ((unsigned)r->direction << 4));
    hp = put_len(hp, (uint32_t)r->record_id.n);
    hp = put_len(hp, (uint32_t)r->peer.n);
    hp = put_len(hp, (uint32_t)r->call_id.n);
    hp = put_len(hp, (uint32_t)r->sms_ref.n);
    hp = put_len(hp, r->n_extra);
    size_t body = len_size(r->msisdn.n) + r->msisdn.n + (size_t)(hp - head) + r->record_id.n +
                  r->peer.n + r->call_id.n + r->sms_ref.n;
    for (uint32_t i = 0; i < r->n_extra; i++) {
        if (r->extra[i].n > UINT32_MAX)
            return CDR_E_RANGE;
        body += len_size(r->extra[i].n) + r->extra[i].n;
    }
    if (body > UINT32_MAX)
        return CDR_E_RANGE;
    size_t need = len_size(body) + body;

    unsigned char *d;
    if (e->o.threads > 1 && !e->dist_tried) {
        e->dist_tried = 1; /* one attempt: without a thread, distribute here */
        dist_start(e);
    }
    if (e->dist_on) {
        if ((!e->cur || e->cur->n + need > e->cur->cap) &&
            (err = stage_next(e, need)) != CDR_OK)
            return err;
        d = e->cur->data + e->cur->n;
        e->cur->n += need;
    } else if ((err = bucket_reserve(e, msisdn_hash(r->msisdn.p, r->msisdn.n), need, &d)) !=
               CDR_OK) {
        return err;
    }
    d = put_len(d, (uint32_t)body);
    d = put_len(d, (uint32_t)r->msisdn.n);
    d = cdr_copy_small(d, r->msisdn.p, r->msisdn.n);
    d = cdr_copy_small(d, head, (size_t)(hp - head));
    d = cdr_copy_small(d, r->record_id.p, r->record_id.n);
    d = cdr_copy_small(d, r->peer.p, r->peer.n);
    d = cdr_copy_small(d, r->call_id.p, r->call_id.n);
    d = cdr_copy_small(d, r->sms_ref.p, r->sms_ref.n);
    for (uint32_t i = 0; i < r->n_extra; i++) {
        d = put_len(d, (uint32_t)r->extra[i].n);
        d = cdr_copy_small(d, r->extra[i].p, r->extra[i].n);
    }
    return CDR_OK;
}

/* ------------------------------------------------------------------ */
/* Finish: sort, group, rate                                            */

typedef struct ent {
    uint64_t h;
    int64_t start;
    const blob *b;            /* decoded (set per slice, see run_bucket) */
    const unsigned char *p;   /* the packed record */
} ent;

static int cmp_str(const char *a, size_t an, const char *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    int c = memcmp(a, b, m);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* Whether two strings are equal: inline for 8 to 16 bytes (the msisdns
 * compared twice a record), else the library's memcmp. */
static inline int same_str(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    if (an >= 8 && an <= 16) {
        uint64_t x0, x1, y0, y1;
        memcpy(&x0, a, 8);
        memcpy(&y0, b, 8);
        memcpy(&x1, a + an - 8, 8);
        memcpy(&y1, b + an - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    return memcmp(a, b, an) == 0;
}

static int cmp_ent(const void *pa, const void *pb)
{
    const ent *a = pa, *b = pb;
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    int c = cmp_str(b_msisdn(a->b), a->b->l_msisdn, b_msisdn(b->b), b->b->l_msisdn);
    if (c)
        return c;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    c = cmp_str(b_rid(a->b), a->b->l_rid, b_rid(b->b), b->b->l_rid);
    if (c)
        return c;
    if (a->b->file_index != b->b->file_index)
        return a->b->file_index < b->b->file_index ? -1 : 1;
    if (a->b->line != b->b->line)
        return a->b->line < b->b->line ? -1 : 1;
    return 0;
}

/* A small open-addressing table of (hash, index) for per-subscriber sets. */
typedef struct htab {
    uint64_t *h;
    int32_t *v;
    size_t cap;  /* allocated */
    size_t mask; /* in use: a power of two >= 2n, minus one */
} htab;

/* Make room for n keys and clear only the part in use, so that one large
 * subscriber does not make every later (small) one pay for its size. */
static cdr_err htab_reset(htab *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    if (cap > t->cap) {
        free(t->h);
        free(t->v);
        t->h = malloc(cap * sizeof *t->h);
        t->v = malloc(cap * sizeof *t->v);
        if (!t->h || !t->v) {
            t->cap = 0;
            return CDR_E_NOMEM;
        }
        t->cap = cap;
    }
    t->mask = cap - 1;
    memset(t->v, 0xff, cap * sizeof *t->v); /* -1 */
    return CDR_OK;
}

static void htab_free(htab *t)
{
    free(t->h);
    free(t->v);
}

/* Per-record working state during one subscriber-month. */
typedef struct work {
    const blob *b;
    cdr_rec_status status;
    int32_t dup_of;       /* index of the original within the subscriber slice */
    int32_t group_first;  /* for partial parts: index of the first part; -1 */
    int64_t g_usage;      /* first part: merged usage */
    cdr_money g_billed;   /* first part: sum of parts' billed */
    int64_t g_sep_billable_usage; /* first part: sum of per-part usage rounded separately (voice s / data KB) */
    int64_t g_sep_whole_usage; /* the same, each part rounded up to a whole minute / MB */
    uint32_t g_parts;
    int32_t next_part;    /* chain of a group's parts, -1 at the end */
    int32_t last_part;    /* first part: the chain's tail */
} work;

typedef struct pool_bal {
    int32_t plan, pool;
    int64_t left;
} pool_bal;

typedef struct outbuf outbuf;

/* One rating worker's state (one per thread). */
typedef struct ctx {
    cdr_engine *e;
    const cdr_engine_sink *sink;
    cdr_engine_totals *tot;
    htab rid, content, group;
    work *w;
    size_t w_cap;
    pool_bal *pb;
    size_t n_pb, pb_cap;
    ent *ents, *tmp;
    blob *blobs;          /* the current slice, decoded; ents point here */
    uint32_t *runs;       /* its subscribers' runs (sort_ents), blobs_cap of them */
    size_t ents_cap, blobs_cap;
    cdr_str *xs;          /* extras of the current record */
    size_t xs_cap;
    outbuf *out;          /* NULL: call the sink directly */
    char expl[768];       /* the current finding's explanation */
} ctx;

static int same_content(const blob *a, const blob *b)
{
    return a->service == b->service && a->direction == b->direction && a->start == b->start &&
           a->amount == b->amount && a->sms_part == b->sms_part &&
           a->partial_seq == b->partial_seq && a->l_peer == b->l_peer &&
           memcmp(b_peer(a), b_peer(b), a->l_peer) == 0 && a->l_call == b->l_call &&
           memcmp(b_call(a), b_call(b), a->l_call) == 0 && a->l_ref == b->l_ref &&
           memcmp(b_ref(a), b_ref(b), a->l_ref) == 0;
}

/* The hash of what same_content compares: the numbers, then peer, call_id
 * and sms_ref, which lie one after the other in the record (their lengths
 * are mixed in, so that the split between them counts). */
static uint64_t content_hash(const blob *a)
{
    uint64_t k[4] = {(uint64_t)a->start ^ ((uint64_t)a->amount << 32 | (uint64_t)a->amount >> 32),
                     ((uint64_t)a->service << 8 | a->direction) ^ ((uint64_t)a->sms_part << 16),
                     (uint64_t)a->partial_seq,
                     (uint64_t)a->l_peer | (uint64_t)a->l_call << 21 | (uint64_t)a->l_ref << 42};
    uint64_t h = cdr_hash_bytes(k, sizeof k, 1);
    return cdr_hash_bytes(b_peer(a), (size_t)a->l_peer + a->l_call + a->l_ref, h);
}

static int is_partial(const blob *b)
{
    return (b->service == CDR_SVC_VOICE || b->service == CDR_SVC_DATA) && b->l_call > 0 &&
           b->partial_seq > 0;
}

static int64_t *pool_left(ctx *c, int32_t plan, int32_t pool, int64_t allowance)
{
    for (size_t i = 0; i < c->n_pb; i++)
        if (c->pb[i].plan == plan && c->pb[i].pool == pool)
            return &c->pb[i].left;
    if (c->n_pb == c->pb_cap) {
        size_t nc = c->pb_cap ? c->pb_cap * 2 : 8;
        pool_bal *p = realloc(c->pb, nc * sizeof *p);
        if (!p)
            return NULL;
        c->pb = p;
        c->pb_cap = nc;
    }
    c->pb[c->n_pb] = (pool_bal){plan, pool, allowance};
    return &c->pb[c->n_pb++].left;
}

/* The record as a cdr_row view (extras rebuilt into scratch). */
static cdr_err fill_row(ctx *c, const blob *b, cdr_row *r)
{
    /* field by field, no memset of the whole row (a `rep stos`) */
    r->extra = NULL;
    r->extra_names = NULL;
    r->n_extra = 0;
    r->raw = (cdr_str){NULL, 0};
    r->msisdn = (cdr_str){b_msisdn(b), b->l_msisdn};
    r->record_id = (cdr_str){b_rid(b), b->l_rid};
    r->peer = (cdr_str){b_peer(b), b->l_peer};
    r->call_id = (cdr_str){b_call(b), b->l_call};
    r->sms_ref = (cdr_str){b_ref(b), b->l_ref};
    r->service = (cdr_service)b->service;
    r->direction = (cdr_direction)b->direction;
    r->start = b->start;
    r->duration_s = b->service == CDR_SVC_VOICE ? b->amount : -1;
    r->bytes = b->service == CDR_SVC_DATA ? b->amount : -1;
    r->sms_chars = b->service == CDR_SVC_SMS ? b->amount : -1;
    r->sms_part = b->sms_part;
    r->sms_parts = b->sms_parts;
    r->partial_seq = b->partial_seq;
    r->billed = b->billed;
    r->file_index = b->file_index;
    r->line = b->line;
    r->offset = b->offset;
    if (b->n_extra) {
        if (b->n_extra > c->xs_cap) {
            cdr_str *x = realloc(c->xs, b->n_extra * sizeof *x);
            if (!x)
                return CDR_E_NOMEM;
            c->xs = x;
            c->xs_cap = b->n_extra;
        }
        const unsigned char *s = b->x;
        for (uint32_t i = 0; i < b->n_extra; i++) {
            uint32_t l;
            s = get_len(s, &l);
            c->xs[i] = (cdr_str){(const char *)s, (size_t)l};
            s += l;
        }
        r->extra = c->xs;
        r->n_extra = b->n_extra;
        const cdr_engine *e = c->e;
        if (b->file_index < e->n_files && e->files[b->file_index].n_extra == b->n_extra)
            r->extra_names = e->files[b->file_index].extra_names;
        else
            r->n_extra = 0; /* names unknown: should not happen */
    }
    return CDR_OK;
}

static const char *file_name(const cdr_engine *e, uint32_t fi)
{
    return fi < e->n_files && e->files[fi].name ? e->files[fi].name : "";
}

/* ---- diagnosis ---- */

static cdr_money alt_charge(const cdr_rate_in *base, void (*tweak)(cdr_rate_in *, int64_t),
                            int64_t arg, int *ok)
{
    cdr_rate_in in = *base;
    cdr_rate_out o;
    tweak(&in, arg);
    if (cdr_rate_usage(&in, &o) != CDR_OK || o.unrated) {
        *ok = 0;
        return 0;
    }
    *ok = 1;
    return o.charge;
}

static void tw_billable(cdr_rate_in *in, int64_t v) { in->billable_override = v; }
static void tw_band(cdr_rate_in *in, int64_t v) { in->force_band = (int32_t)v; }
static void tw_start_rule(cdr_rate_in *in, int64_t v) { (void)v; in->force_start_rule = 1; }
static void tw_no_discount(cdr_rate_in *in, int64_t v) { (void)v; in->no_discount = 1; }

/* Smallest k > from with alt(k) >= billed; returns k if alt(k) == billed, else -1. */
static int64_t search_units(const cdr_rate_in *base, int64_t from, cdr_money billed)
{
    int ok;
    int64_t lo = from, hi = from + 1, limit = (int64_t)1 << 40;
    cdr_money v = alt_charge(base, tw_billable, hi, &ok);
    if (!ok)
        return -1;
    while (v < billed) {
        lo = hi;
        if (hi > limit)
            return -1;
        hi = hi * 2 + 1;
        v = alt_charge(base, tw_billable, hi, &ok);
        if (!ok)
            return -1;
    }
    /* alt(lo) < billed (or lo == from), alt(hi) >= billed */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        v = alt_charge(base, tw_billable, mid, &ok);
        if (!ok)
            return -1;
        if (v >= billed)
            hi = mid;
        else
            lo = mid;
    }
    v = alt_charge(base, tw_billable, hi, &ok);
    return ok && v == billed ? hi : -1;
}

static void money(char *buf, cdr_money v)
{
    cdr_money_format(v, 2, buf);
}

static cdr_category diagnose(ctx *c, const work *w, const cdr_rate_in *in,
                             const cdr_rate_out *ro, cdr_money billed, cdr_money rebuilt)
{
    cdr_engine *e = c->e;
    const blob *b = w->b;
    char *x = c->expl;
    size_t xn = sizeof c->expl;
    char m1[32], m2[32], m3[32];
    int ok;
    int rated = w->status == CDR_RS_RATED || w->status == CDR_RS_PARTIAL_FIRST;
    money(m1, billed);
    money(m2, rebuilt);
    money(m3, billed - rebuilt);

    if (w->status == CDR_RS_DUPLICATE) {
        const blob *o = c->w[w->dup_of].b;
        snprintf(x, xn, "duplicate of record %.*s (%s); a duplicate is not charged: billed %s, "
                 "overcharged %s", (int)o->l_rid, b_rid(o),
                 (o->l_rid == b->l_rid && !memcmp(b_rid(o), b_rid(b), b->l_rid))
                     ? "same record_id"
                     : "same usage under a new record_id",
                 m1, m3);
        return CDR_CAT_DUPLICATE;
    }
    if (w->status == CDR_RS_FREE) {
        const cdr_free_number *f = cdr_tariff_free_number(e->t, b_peer(b), b->l_peer);
        snprintf(x, xn, "%s to free number %.*s (%s) charged %s; free numbers are not charged",
                 b->service == CDR_SVC_SMS ? "SMS" : "call", (int)b->l_peer, b_peer(b),
                 f ? f->label : "", m1);
        return CDR_CAT_FREE_NUMBER;
    }
    if (b->service == CDR_SVC_VOICE && w->g_usage == 0) {
        snprintf(x, xn, "0-second call charged %s; a call of 0 s is not charged", m1);
        return CDR_CAT_ZERO_DURATION;
    }
    if (w->status == CDR_RS_PARTIAL_FIRST && w->g_parts >= 2 && ro->rate) {
        /* probes (docs/rating.md): each part rounded up alone to the rate's
         * increment, then to a whole minute (voice) / MB (data) */
        int64_t sep = w->g_sep_billable_usage;
        cdr_money v = alt_charge(in, tw_billable, sep, &ok);
        if (ok && v == billed) {
            snprintf(x, xn, "%u partial records of one %s rounded up separately "
                     "(%lld billable units instead of %lld merged): billed %s, should be %s",
                     w->g_parts, b->service == CDR_SVC_VOICE ? "call" : "session",
                     (long long)sep, (long long)ro->billable, m1, m2);
            return CDR_CAT_PARTIAL_ROUNDING;
        }
        int64_t whole = w->g_sep_whole_usage;
        v = whole != sep ? alt_charge(in, tw_billable, whole, &ok) : -1;
        if (whole != sep && ok && v == billed) {
            int voice = b->service == CDR_SVC_VOICE;
            snprintf(x, xn, "%u partial records of one %s each rounded up to a whole %s "
                     "(%lld billable %s instead of %lld merged): billed %s, should be %s",
                     w->g_parts, voice ? "call" : "session", voice ? "minute" : "MB",
                     (long long)whole, voice ? "seconds" : "KB", (long long)ro->billable, m1,
                     m2);
            return CDR_CAT_PARTIAL_ROUNDING;
        }
    }
    if (w->status == CDR_RS_NO_SUBSCRIPTION) {
        snprintf(x, xn, "information fee for SP service %.*s charged %s without a valid "
                 "subscription at that time", (int)b->l_peer, b_peer(b), m1);
        return CDR_CAT_VAS_NO_SUBSCRIPTION;
    }
    if (b->service == CDR_SVC_DATA && w->g_usage == 0) {
        snprintf(x, xn, "data record of 0 bytes charged %s; no usage, no charge", m1);
        return CDR_CAT_DATA_NO_USAGE;
    }
    if (rated && ro->covered > 0) {
        snprintf(x, xn, "bundle pool %s still covered %lld of %lld billable units; billed %s, "
                 "should be %s", e->t->pool_names[ro->pool], (long long)ro->covered,
                 (long long)ro->billable, m1, m2);
        return CDR_CAT_BUNDLE_NOT_APPLIED;
    }
    if (rated && ro->discount_micro > 0) {
        cdr_money v = alt_charge(in, tw_no_discount, 0, &ok);
        if (ok && v == billed) {
            char pct[32];
            cdr_money_format(ro->discount_micro, 0, pct);
            snprintf(x, xn, "plan discount of %s%% not applied: billed %s is the undiscounted "
                     "charge, should be %s", pct, m1, m2);
            return CDR_CAT_DISCOUNT_NOT_APPLIED;
        }
    }
    if (rated && e->t->n_band_names > 0 && ro->band >= 0) {
        for (size_t bi = 0; bi < e->t->n_band_names; bi++) {
            if ((int32_t)bi == ro->band)
                continue;
            cdr_money v = alt_charge(in, tw_band, (int64_t)bi, &ok);
            if (ok && v == billed) {
                snprintf(x, xn, "charged at the %s band's price although the record starts in "
                         "the %s band: billed %s, should be %s", e->t->band_names[bi],
                         e->t->band_names[ro->band], m1, m2);
                return CDR_CAT_WRONG_BAND;
            }
        }
        if (ro->n_pieces > 1) {
            cdr_money v = alt_charge(in, tw_start_rule, 0, &ok);
            if (ok && v == billed) {
                snprintf(x, xn, "the whole call was charged at the %s band's price; the plan "
                         "splits calls at band boundaries: billed %s, should be %s",
                         e->t->band_names[ro->band], m1, m2);
                return CDR_CAT_WRONG_BAND;
            }
        }
    }
    if (b->service == CDR_SVC_SMS) {
        if (w->status == CDR_RS_SEGMENT_OVER) {
            snprintf(x, xn, "segment %d of a long SMS of %lld characters, which has fewer "
                     "segments; an overcounted segment is not charged: billed %s",
                     b->sms_part, (long long)b->amount, m1);
            return CDR_CAT_SMS_SEGMENTS;
        }
        if (rated) {
            int64_t k = search_units(in, ro->billable, billed);
            if (k > 0) {
                snprintf(x, xn, "billed %lld segments, the message length of %lld characters "
                         "gives %lld: billed %s, should be %s", (long long)k,
                         (long long)b->amount, (long long)ro->billable, m1, m2);
                return CDR_CAT_SMS_SEGMENTS;
            }
        }
    }
    if (b->service == CDR_SVC_DATA && rated && w->g_usage > 0) {
        int64_t k = search_units(in, ro->billable, billed);
        if (k > 0) {
            snprintf(x, xn, "billed %lld KB, %lld bytes round up to %lld KB: billed %s, "
                     "should be %s", (long long)k, (long long)w->g_usage,
                     (long long)ro->billable, m1, m2);
            return CDR_CAT_DATA_ROUNDING;
        }
    }
    snprintf(x, xn, "billed %s, the tariff gives %s (no known billing error reproduces the "
             "billed amount)", m1, m2);
    return CDR_CAT_RATE_MISMATCH;
}

/* ---- results of one bucket, kept for the drain when rating in parallel ---- */

typedef struct ablk {
    struct ablk *next;
    size_t n, cap;
    char d[];
} ablk;

struct outbuf {
    cdr_rated *recs;
    size_t n_recs, cap_recs;
    cdr_candidate *cands;
    size_t n_cands, cap_cands;
    uint8_t *kinds;          /* 0 record, 1 candidate, in order */
    size_t n_kinds, cap_kinds;
    ablk *arena;             /* copies of explanations and extras arrays */
    cdr_csvw *text_w;        /* rendered records (sink->render), in order, in memory */
    void *work;              /* the sink's state of this bucket (sink->work_record) */
    unsigned char *spill_data; /* the bucket's blobs, alive until drained */
    chunk *chunks;
    cdr_err err;
    int done;
};

static void *arena_alloc(outbuf *o, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!o->arena || o->arena->n + n > o->arena->cap) {
        size_t cap = n > 65536 ? n : 65536;
        ablk *b = malloc(sizeof(ablk) + cap);
        if (!b)
            return NULL;
        b->next = o->arena;
        b->n = 0;
        b->cap = cap;
        o->arena = b;
    }
    void *p = o->arena->d + o->arena->n;
    o->arena->n += n;
    return p;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 256;
    void *q = realloc(*p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static void outbuf_clear(cdr_engine *e, const cdr_engine_sink *sink, outbuf *o)
{
    if (o->work && sink->free_work)
        sink->free_work(o->work, sink->user);
    text_give(e, o->text_w);
    free(o->recs);
    free(o->cands);
    free(o->kinds);
    for (ablk *b = o->arena, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(o->spill_data);
    for (chunk *c = o->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    memset(o, 0, sizeof *o);
}

static cdr_err emit_record(ctx *c, const cdr_rated *r)
{
    outbuf *o = c->out;
    if (c->sink->work_record) {
        /* the sink's own work, here on the worker (o is set: see uses_outbuf) */
        cdr_err err = c->sink->work_record(&o->work, r, c->sink->user);
        if (err != CDR_OK)
            return err;
    }
    int want = (c->sink->on_record || c->sink->render) &&
               (!c->sink->record_statuses || (c->sink->record_statuses & (1u << r->status)));
    if (want && c->sink->render) {
        /* rendered here, on the worker; findings still go through the buffer */
        if (!o->text_w && !(o->text_w = text_take(c->e)))
            return CDR_E_NOMEM;
        cdr_err err = c->sink->render(r, o->text_w, c->sink->user);
        if (err != CDR_OK)
            return err;
        want = 0;
    }
    if (!o) {
        if (want && c->sink->on_record(r, c->sink->user))
            return CDR_E_INTERRUPTED;
        if (r->has_finding && c->sink->on_finding &&
            c->sink->on_finding(&r->finding, c->sink->user))
            return CDR_E_INTERRUPTED;
        return CDR_OK;
    }
    if (!want && !r->has_finding)
        return CDR_OK; /* nobody wants it */
    if (grow((void **)&o->recs, &o->cap_recs, o->n_recs, sizeof *o->recs) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    cdr_rated *x = &o->recs[o->n_recs];
    *x = *r;
    if (r->row.n_extra) {
        cdr_str *ex = arena_alloc(o, r->row.n_extra * sizeof *ex);
        if (!ex)
            return CDR_E_NOMEM;
        memcpy(ex, r->row.extra, r->row.n_extra * sizeof *ex);
        x->row.extra = ex;
    }
    if (r->has_finding) {
        size_t l = strlen(r->finding.explanation) + 1;
        char *t = arena_alloc(o, l);
        if (!t)
            return CDR_E_NOMEM;
        memcpy(t, r->finding.explanation, l);
        x->finding.explanation = t;
    }
    o->n_recs++;
    o->kinds[o->n_kinds++] = 0;
    return CDR_OK;
}

static cdr_err emit_candidate(ctx *c, const cdr_candidate *cd)
{
    outbuf *o = c->out;
    if (c->sink->work_candidate) {
        cdr_err err = c->sink->work_candidate(&o->work, cd, c->sink->user);
        if (err != CDR_OK)
            return err;
    }
    if (!o)
        return c->sink->on_candidate && c->sink->on_candidate(cd, c->sink->user)
                   ? CDR_E_INTERRUPTED
                   : CDR_OK;
    if (grow((void **)&o->cands, &o->cap_cands, o->n_cands, sizeof *o->cands) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    o->cands[o->n_cands++] = *cd;
    o->kinds[o->n_kinds++] = 1;
    return CDR_OK;
}

/* Whether the results of a bucket go through an outbuf even on one thread. */
static int uses_outbuf(const cdr_engine_sink *sink)
{
    return sink->render || sink->work_record || sink->work_candidate;
}

/* On the worker, after the bucket's last record: the end of the sink's work. */
static cdr_err end_work(const cdr_engine_sink *sink, outbuf *o)
{
    return o->work && sink->work_end ? sink->work_end(o->work, sink->user) : CDR_OK;
}

/* Hand a finished bucket's results to the sink, in order. */
static cdr_err drain(const cdr_engine_sink *sink, outbuf *o)
{
    size_t ir = 0, ic = 0;
    if (o->work && sink->on_work && sink->on_work(o->work, sink->user))
        return CDR_E_INTERRUPTED;
    if (o->text_w) {
        size_t len;
        const char *text = cdr_csvw_memory(o->text_w, &len);
        if (cdr_csvw_status(o->text_w) != CDR_OK)
            return cdr_csvw_status(o->text_w);
        if (len && sink->on_text && sink->on_text(text, len, cdr_csvw_rows(o->text_w), sink->user))
            return CDR_E_INTERRUPTED;
    }
    for (size_t k = 0; k < o->n_kinds; k++) {
        if (o->kinds[k] == 0) {
            const cdr_rated *r = &o->recs[ir++];
            if (sink->on_record && !sink->render &&
                (!sink->record_statuses || (sink->record_statuses & (1u << r->status))) &&
                sink->on_record(r, sink->user))
                return CDR_E_INTERRUPTED;
            if (r->has_finding && sink->on_finding && sink->on_finding(&r->finding, sink->user))
                return CDR_E_INTERRUPTED;
        } else if (sink->on_candidate && sink->on_candidate(&o->cands[ic++], sink->user)) {
            return CDR_E_INTERRUPTED;
        }
    }
    return CDR_OK;
}

/* ---- refund policy ---- */

int cdr_approval_tier(cdr_money refund, int company_liable, int first_refund)
{
    const cdr_money Y = CDR_MICRO;
    if (refund <= 20 * Y && first_refund)
        return 0;
    if (company_liable) {
        if (refund <= 200 * Y)
            return 1;
        if (refund <= 500 * Y)
            return 2;
        if (refund <= 1000 * Y)
            return 3;
        return 4;
    }
    if (refund <= 100 * Y)
        return 1;
    if (refund <= 300 * Y)
        return 2;
    if (refund <= 500 * Y)
        return 3;
    return 4;
}

int cdr_special_customer(const cdr_prior_refund *r, size_t n, cdr_month m)
{
    /* Window: the bill month and the three before it. */
    int count[4] = {0, 0, 0, 0};
    cdr_money sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].company_liable || r[i].border_roaming)
            continue;
        cdr_month rm = cdr_time_month(r[i].date);
        if (rm > m || rm < m - 3)
            continue;
        count[m - rm]++;
        sum = cdr_money_total_add(sum, r[i].amount);
    }
    for (int k = 0; k < 4; k++)
        if (count[k] >= 3)
            return 1;
    return sum >= 100 * CDR_MICRO;
}

static void make_candidate(ctx *c, const blob *first, cdr_month month, const cdr_subscriber *sub,
                           uint32_t records, cdr_money over, uint32_t cats, unsigned flags,
                           cdr_candidate *cd)
{
    cdr_engine *e = c->e;
    size_t nref = 0;
    const cdr_prior_refund *refs = cdr_tariff_refunds(e->t, b_msisdn(first), first->l_msisdn, &nref);
    memset(cd, 0, sizeof *cd);
    cd->msisdn = (cdr_str){b_msisdn(first), first->l_msisdn};
    cd->month = month;
    cd->records = records;
    cd->overcharge = over;
    cd->refund = 2 * over;
    cd->categories = cats;
    cd->flags = flags;
    /* Refunds before the end of this bill month count as earlier refunds. */
    cdr_time month_end = cdr_month_start(month + 1);
    size_t earlier = 0, this_year = 0, last3 = 0;
    cdr_month year_start = month - month % 12;
    for (size_t i = 0; i < nref; i++) {
        if (refs[i].date >= month_end)
            continue;
        earlier++;
        cdr_month rm = cdr_time_month(refs[i].date);
        if (rm >= year_start)
            this_year++;
        if (rm >= month - 3)
            last3++;
    }
    cd->special = cdr_special_customer(refs, nref, month);
    cd->tier = cdr_approval_tier(cd->refund, 1, earlier == 0);
    int long_tenure = sub && sub->join_date >= 0 &&
                      cdr_time_month(sub->join_date) + 12 <= month;
    if (cd->special) {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->policy_reason = "special customer (3+ refunds in a month or 100+ yuan in 3 months): "
                            "verify first";
    } else if (flags & (CDR_FLAG_OVERLAP | CDR_FLAG_OVERLONG)) {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->policy_reason = "overlapping or over-long call records need verification first";
    } else if (cats & (1u << CDR_CAT_VAS_NO_SUBSCRIPTION)) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->policy_reason = "value-added (SP) fee dispute: refund first";
    } else if (long_tenure) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->policy_reason = "customer for a year or more in good standing: refund first";
    } else if (this_year == 0 && last3 == 0) {
        cd->policy = CDR_POLICY_REFUND_FIRST;
        cd->policy_reason = "first fee dispute this year, no refund in the last three months: "
                            "refund first";
    } else {
        cd->policy = CDR_POLICY_VERIFY_FIRST;
        cd->policy_reason = "earlier refunds this year and tenure under a year: verify first";
    }
}

/* Process one subscriber-month: w[0..n) sorted in time order. `all` is the
 * subscriber's slice (for dup_of indexes across months). */
static cdr_err process_month(ctx *c, work *w, size_t n, cdr_month month)
{
    cdr_engine *e = c->e;
    const cdr_tariff *t = e->t;
    cdr_err err;

    /* Limits (docs/rating.md "Limits and sums"): a subscriber-month whose
     * billed amounts add up to more than CDR_MONEY_MAX is not rated at all;
     * so no sum of its billed amounts below (merged parts, overcharge,
     * refund = 2 x overcharge) can leave 64 bits. */
    const char *month_unrated = NULL;
    cdr_money billed_sum = 0, rebuilt_sum = 0;
    for (size_t i = 0; i < n && !month_unrated; i++) {
        cdr_money v = w[i].b->billed; /* (the reader gives 0..CDR_MONEY_MAX) */
        if (v < 0 || v > CDR_MONEY_MAX || (billed_sum += v) > CDR_MONEY_MAX)
            month_unrated = "the billed amounts of this subscriber-month add up to more than "
                            "1000000000000 yuan: out of range, not rated";
    }

    /* Partial groups: key (service, call_id). First part = earliest. */
    if ((err = htab_reset(&c->group, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        w[i].group_first = -1;
        w[i].g_usage = w[i].b->amount;
        w[i].g_billed = w[i].b->billed;
        w[i].g_parts = 1;
        w[i].g_sep_billable_usage = -1;
        w[i].g_sep_whole_usage = -1;
        w[i].next_part = -1;
        w[i].last_part = (int32_t)i;
        if (w[i].status != CDR_RS_RATED || !is_partial(w[i].b) || month_unrated)
            continue;
        const blob *b = w[i].b;
        uint64_t h = cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
        size_t mask = c->group.mask, k = h & mask;
        while (c->group.v[k] >= 0) {
            const blob *o = w[c->group.v[k]].b;
            if (c->group.h[k] == h && o->service == b->service && o->l_call == b->l_call &&
                !memcmp(b_call(o), b_call(b), b->l_call))
                break;
            k = (k + 1) & mask;
        }
        if (c->group.v[k] < 0) {
            c->group.h[k] = h;
            c->group.v[k] = (int32_t)i;
        } else {
            int32_t f = c->group.v[k];
            w[i].group_first = f;
            w[i].status = CDR_RS_PARTIAL_REST;
            w[f].status = CDR_RS_PARTIAL_FIRST;
            if (__builtin_add_overflow(w[f].g_usage, b->amount, &w[f].g_usage))
                w[f].g_usage = INT64_MAX; /* above every usage limit: unrated */
            w[f].g_billed += b->billed;
            w[f].g_parts++;
            w[w[f].last_part].next_part = (int32_t)i;
            w[f].last_part = (int32_t)i;
        }
    }

    /* Walk in time order. */
    c->n_pb = 0;
    int64_t prev_end = INT64_MIN;
    uint32_t cand_records = 0;
    cdr_money over = 0;
    uint32_t cats = 0;
    unsigned cflags = 0;
    const cdr_subscriber *sub = NULL;
    int has_candidate = 0;

    for (size_t i = 0; i < n; i++) {
        work *wi = &w[i];
        const blob *b = wi->b;
        cdr_rated r;
        /* the rating and the finding are filled only when used (status /
         * has_finding say so): clearing the whole struct costs more than
         * rating many records */
        /* (the row is set field by field in fill_row) */
        memset(&r.month, 0, offsetof(cdr_rated, rating) - offsetof(cdr_rated, month));
        r.rating.rate = NULL;
        r.rating.n_pieces = 0;
        memset(&r.rebuilt, 0, offsetof(cdr_rated, finding) - offsetof(cdr_rated, rebuilt));
        r.unrated = NULL;
        if ((err = fill_row(c, b, &r.row)) != CDR_OK)
            return err;
        r.month = month;
        r.plan = -1;
        r.pool_after = -1;
        r.usage = b->amount;
        r.n_parts = 1;
        r.cmp_billed = b->billed;

        if (!sub || b->start < sub->valid_from || b->start >= sub->valid_to)
            sub = cdr_tariff_subscriber(t, b_msisdn(b), b->l_msisdn, b->start);

        cdr_rate_in in;
        cdr_rate_in_init(&in);
        cdr_rate_out *ro = &r.rating;
        int rated = 0;

        if (month_unrated) {
            wi->status = CDR_RS_UNRATED;
            r.unrated = month_unrated;
        } else if (wi->status == CDR_RS_DUPLICATE) {
            const blob *o = c->w[wi->dup_of].b;
            r.dup_of = (cdr_str){b_rid(o), o->l_rid};
        } else if (wi->status == CDR_RS_PARTIAL_REST) {
            /* compared on the first part */
        } else if (!sub) {
            wi->status = CDR_RS_UNRATED;
            r.unrated = "no plan for this number at the record's start time";
        } else {
            r.plan = sub->plan;
            if ((b->service == CDR_SVC_VOICE || b->service == CDR_SVC_SMS) &&
                b->direction == CDR_DIR_MO && cdr_tariff_free_number(t, b_peer(b), b->l_peer)) {
                wi->status = CDR_RS_FREE;
            } else if (b->service == CDR_SVC_VAS &&
                       !cdr_tariff_subscribed(t, b_msisdn(b), b->l_msisdn, b_peer(b), b->l_peer,
                                              b->start)) {
                wi->status = CDR_RS_NO_SUBSCRIPTION;
            } else if (b->service == CDR_SVC_SMS && b->l_ref > 0 && b->sms_part > 0 &&
                       b->sms_part > cdr_sms_segments(b->amount,
                                                      t->plans[sub->plan].sms_single_chars,
                                                      t->plans[sub->plan].sms_part_chars)) {
                wi->status = CDR_RS_SEGMENT_OVER;
            } else {
                rated = 1;
            }
        }

        if (rated) {
            in.tariff = t;
            in.plan = sub->plan;
            in.service = (cdr_service)b->service;
            in.direction = (cdr_direction)b->direction;
            in.peer = (cdr_str){b_peer(b), b->l_peer};
            in.start = b->start;
            int64_t usage = wi->g_usage;
            if (b->service == CDR_SVC_SMS)
                usage = (b->l_ref > 0 && b->sms_part > 0)
                            ? 1
                            : cdr_sms_segments(b->amount, t->plans[sub->plan].sms_single_chars,
                                               t->plans[sub->plan].sms_part_chars);
            in.usage = usage;
            r.usage = usage;
            /* learn the pool, then give its balance */
            int32_t band = cdr_tariff_band_at(t, b->start);
            const cdr_rate *pr = cdr_tariff_find_rate(t, sub->plan, in.service, in.direction,
                                                      in.peer.p, in.peer.n, band);
            in.rate_hint = pr;
            in.band_hint = band;
            int64_t *left = NULL;
            if (pr && pr->pool >= 0) {
                const cdr_bundle *bu = cdr_tariff_bundle(t, sub->plan, pr->pool);
                if (bu) {
                    left = pool_left(c, sub->plan, pr->pool, bu->allowance_base);
                    if (!left)
                        return CDR_E_NOMEM;
                    in.pool_avail = *left;
                }
            }
            /* out of range: unrated with the reason; the night goes on */
            if (cdr_rate_usage(&in, ro) != CDR_OK)
                ro->unrated = "arithmetic out of range: the charge cannot be computed "
                              "(usage x price above 1000000000000 yuan)";
            else if (!ro->unrated && ro->charge > CDR_MONEY_MAX - rebuilt_sum)
                ro->unrated = "the rebuilt charges of this subscriber-month would add up to "
                              "more than 1000000000000 yuan: out of range, not rated";
            if (ro->unrated) {
                wi->status = CDR_RS_UNRATED;
                r.unrated = ro->unrated;
            } else {
                rebuilt_sum += ro->charge;
                if (left) {
                    *left -= ro->covered;
                    r.pool_after = *left;
                }
                r.rebuilt = ro->charge;
                if (wi->status == CDR_RS_PARTIAL_FIRST) {
                    /* per-part rounding, for the partial_rounding diagnosis:
                     * to the increment, and to a whole minute / MB */
                    int64_t sep = 0, whole = 0;
                    for (int32_t j = (int32_t)i; j >= 0; j = w[j].next_part) {
                        int64_t a = w[j].b->amount;
                        if (__builtin_add_overflow(
                                sep, cdr_rate_billable(in.service, a, ro->rate->increment), &sep))
                            sep = INT64_MAX; /* no charge reproduces it */
                        if (__builtin_add_overflow(
                                whole,
                                cdr_rate_billable(in.service, a,
                                                  in.service == CDR_SVC_VOICE ? 60 : 1024),
                                &whole))
                            whole = INT64_MAX;
                    }
                    wi->g_sep_billable_usage = sep;
                    wi->g_sep_whole_usage = whole;
                    r.n_parts = wi->g_parts;
                    r.cmp_billed = wi->g_billed;
                }
            }
        }
        r.status = wi->status;

        /* Flags: overlapping and over-long voice records (duplicates excluded). */
        unsigned flags = 0;
        if (b->service == CDR_SVC_VOICE && wi->status != CDR_RS_DUPLICATE) {
            if (b->start < prev_end)
                flags |= CDR_FLAG_OVERLAP;
            if (b->amount > e->o.max_duration)
                flags |= CDR_FLAG_OVERLONG;
            if (b->start + b->amount > prev_end)
                prev_end = b->start + b->amount;
        }

        /* Compare. */
        int compare = wi->status != CDR_RS_PARTIAL_REST && wi->status != CDR_RS_UNRATED;
        cdr_money billed = r.cmp_billed, diff = billed - r.rebuilt;
        cdr_category cat = CDR_CAT_NONE;
        c->expl[0] = '\0';
        if (compare && diff > e->o.tolerance) {
            cat = diagnose(c, wi, &in, ro, billed, r.rebuilt);
        } else if (compare && diff < -e->o.tolerance) {
            char m1[32], m2[32], m3[32];
            money(m1, billed);
            money(m2, r.rebuilt);
            money(m3, -diff);
            snprintf(c->expl, sizeof c->expl, "billed %s, the tariff gives %s: undercharged by "
                     "%s (revenue leakage, not refunded)", m1, m2, m3);
            cat = CDR_CAT_LEAKAGE;
        } else if (wi->status == CDR_RS_DUPLICATE) {
            const blob *o = c->w[wi->dup_of].b;
            snprintf(c->expl, sizeof c->expl, "duplicate of record %.*s, billed 0: correct",
                     (int)o->l_rid, b_rid(o));
            cat = CDR_CAT_DUPLICATE;
        } else if (flags) {
            snprintf(c->expl, sizeof c->expl, "%s%s%s",
                     flags & CDR_FLAG_OVERLAP ? "call starts before the previous call ended" : "",
                     (flags & CDR_FLAG_OVERLAP) && (flags & CDR_FLAG_OVERLONG) ? "; " : "",
                     flags & CDR_FLAG_OVERLONG ? "call longer than the plausible maximum" : "");
        }

        if (cat != CDR_CAT_NONE || flags) {
            cdr_finding *f = &r.finding;
            r.has_finding = 1;
            f->msisdn = r.row.msisdn;
            f->month = month;
            f->record_id = r.row.record_id;
            f->file_index = b->file_index;
            f->file = file_name(e, b->file_index);
            f->line = b->line;
            f->offset = b->offset;
            f->service = (cdr_service)b->service;
            f->start = b->start;
            f->peer = r.row.peer;
            f->category = cat;
            f->flags = flags;
            f->billed = billed;
            f->rebuilt = r.rebuilt;
            f->difference = diff;
            f->explanation = c->expl;
            c->tot->findings++;
            c->tot->by_category[cat]++;
            if (cat < CDR_CAT__OVERCHARGE_COUNT && diff > e->o.tolerance) {
                /* a duplicate billed 0 is a finding, but no overcharge */
                c->tot->amount_by_category[cat] =
                    cdr_money_total_add(c->tot->amount_by_category[cat], diff);
                over += diff;
                cand_records++;
                cats |= 1u << cat;
                has_candidate = 1;
            } else if (cat == CDR_CAT_LEAKAGE) {
                c->tot->amount_by_category[cat] =
                    cdr_money_total_add(c->tot->amount_by_category[cat], -diff);
                c->tot->leakage = cdr_money_total_add(c->tot->leakage, -diff);
                c->tot->leakage_records++;
            }
            cflags |= flags;
        }
        c->tot->records++;
        if (wi->status == CDR_RS_DUPLICATE)
            c->tot->duplicates++;
        if (wi->status == CDR_RS_UNRATED)
            c->tot->unrated++;

        if ((err = emit_record(c, &r)) != CDR_OK)
            return err;
    }

    if (has_candidate && over > 0) {
        cdr_candidate cd;
        make_candidate(c, w[0].b, month, sub, cand_records, over, cats, cflags, &cd);
        c->tot->candidates++;
        c->tot->overcharge = cdr_money_total_add(c->tot->overcharge, cd.overcharge);
        c->tot->refund = cdr_money_total_add(c->tot->refund, cd.refund);
        if ((err = emit_candidate(c, &cd)) != CDR_OK)
            return err;
    }
    return CDR_OK;
}

/* One subscriber: ents[0..n) sorted by time. */
static cdr_err process_subscriber(ctx *c, const ent *ents, size_t n)
{
    cdr_err err;
    if (n > c->w_cap) {
        work *w = realloc(c->w, n * sizeof *w);
        if (!w)
            return CDR_E_NOMEM;
        c->w = w;
        c->w_cap = n;
    }
    work *w = c->w;
    if ((err = htab_reset(&c->rid, n)) != CDR_OK || (err = htab_reset(&c->content, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        const blob *b = ents[i].b;
        w[i].b = b;
        w[i].status = CDR_RS_RATED;
        w[i].dup_of = -1;
        /* same record_id seen before? */
        uint64_t h = cdr_hash_bytes(b_rid(b), b->l_rid, 3);
        size_t mask = c->rid.mask, k = h & mask;
        int32_t orig = -1;
        while (c->rid.v[k] >= 0) {
            const blob *o = w[c->rid.v[k]].b;
            if (c->rid.h[k] == h && o->l_rid == b->l_rid && !memcmp(b_rid(o), b_rid(b), b->l_rid)) {
                orig = c->rid.v[k];
                break;
            }
            k = (k + 1) & mask;
        }
        if (orig < 0) {
            c->rid.h[k] = h;
            c->rid.v[k] = (int32_t)i;
        }
        /* same usage under another id? */
        uint64_t ch = content_hash(b);
        size_t k2 = ch & c->content.mask;
        int32_t corig = -1;
        while (c->content.v[k2] >= 0) {
            const blob *o = w[c->content.v[k2]].b;
            if (c->content.h[k2] == ch && same_content(o, b)) {
                corig = c->content.v[k2];
                break;
            }
            k2 = (k2 + 1) & c->content.mask;
        }
        if (orig >= 0 || corig >= 0) {
            w[i].status = CDR_RS_DUPLICATE;
            int32_t o = orig >= 0 ? orig : corig;
            /* point at the original of the original */
            while (w[o].dup_of >= 0)
                o = w[o].dup_of;
            w[i].dup_of = o;
        } else {
            c->content.h[k2] = ch;
            c->content.v[k2] = (int32_t)i;
        }
    }
    /* months */
    size_t s = 0;
    while (s < n) {
        cdr_month m = cdr_time_month(w[s].b->start);
        /* the records are in time order: the month ends at the next one's
         * first second (one comparison a record, not a calendar sum) */
        cdr_time next = cdr_month_start(m + 1);
        size_t end = s + 1;
        while (end < n && w[end].b->start < next)
            end++;
        /* dup_of indexes are subscriber-wide: process_month reads c->w */
        if ((err = process_month(c, w + s, end - s, m)) != CDR_OK)
            return err;
        s = end;
    }
    return CDR_OK;
}

static void free_chunks(cdr_engine *e, bucket *b)
{
    for (chunk *c = b->head, *n; c; c = n) {
        n = c->next;
        e->mem -= sizeof(chunk) + c->cap;
        free(c);
    }
    b->head = b->tail = NULL;
    b->bytes = 0;
}

/* The spilled part of a bucket, read back whole (NULL if none). */
static cdr_err load_spill(cdr_engine *e, int i, unsigned char **data, size_t *len)
{
    bucket *b = &e->b[i];
    *data = NULL;
    *len = 0;
    if (b->spilled == 0)
        return CDR_OK;
    unsigned char *p = malloc((size_t)b->spilled + PACK_PAD);
    if (!p)
        return CDR_E_NOMEM;
    if (fflush(b->spill) != 0 || fseek(b->spill, 0, SEEK_SET) != 0 ||
        fread(p, 1, (size_t)b->spilled, b->spill) != (size_t)b->spilled) {
        snprintf(e->err, sizeof e->err, "cannot read back spill file: %s", strerror(errno));
        free(p);
        return CDR_E_IO;
    }
    *data = p;
    *len = (size_t)b->spilled;
    return CDR_OK;
}

/* The records of [p, p+len) into ents[k..] (hash, start, where), leaving
 * out excluded files. */
static size_t collect(cdr_engine *e, const unsigned char *p, size_t len, ent *ents, size_t k,
                      size_t cap, cdr_engine_totals *tot)
{
    for (size_t off = 0; off < len; off += packed_size(p + off)) {
        if (k == cap)
            return (size_t)-1; /* cannot happen: cap is the count filed */
        const char *m;
        size_t ml;
        int64_t st;
        uint32_t fi;
        peek(p + off, &m, &ml, &st, &fi);
        if (fi < e->n_files && e->files[fi].excluded) {
            tot->excluded++;
            continue;
        }
        ents[k].h = msisdn_hash(m, ml);
        ents[k].start = st;
        ents[k].b = NULL;
        ents[k].p = p + off;
        k++;
    }
    return k;
}

/* The order within one subscriber: time, then record_id, file and line. */
static int cmp_time(const ent *a, const ent *b)
{
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    int c = cmp_str(b_rid(a->b), a->b->l_rid, b_rid(b->b), b->b->l_rid);
    if (c)
        return c;
    if (a->b->file_index != b->b->file_index)
        return a->b->file_index < b->b->file_index ? -1 : 1;
    return a->b->line < b->b->line ? -1 : a->b->line > b->b->line;
}

static int cmp_time_q(const void *a, const void *b)
{
    return cmp_time(a, b);
}

typedef struct sgroup {
    uint64_t h;
    int32_t first, last;
    uint32_t count;
} sgroup;

static int cmp_group(const void *pa, const void *pb)
{
    const sgroup *a = pa, *b = pb;
    return a->h < b->h ? -1 : a->h > b->h;
}

/* Sort m 64-bit keys (t: room for m more). Insertion sort for a short
 * group, else runs of 16 merged bottom-up. */
static void ins_u64(uint64_t *k, size_t m)
{
    for (size_t i = 1; i < m; i++) {
        uint64_t x = k[i];
        size_t j = i;
        while (j > 0 && k[j - 1] > x) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = x;
    }
}

static void sort_u64(uint64_t *k, uint64_t *t, size_t m)
{
    enum { RUN = 8 };
    if (m <= 2 * RUN) {
        ins_u64(k, m);
        return;
    }
    for (size_t i = 0; i < m; i += RUN)
        ins_u64(k + i, m - i < RUN ? m - i : RUN);
    uint64_t *src = k, *dst = t;
    for (size_t w = RUN; w < m; w *= 2) {
        for (size_t i = 0; i < m; i += 2 * w) {
            size_t x = i, mid = i + w < m ? i + w : m, y = mid, end = i + 2 * w < m ? i + 2 * w : m;
            size_t o = i;
            while (x < mid && y < end) {
                uint64_t p = src[x], q = src[y];
                int tk = q < p;
                dst[o++] = tk ? q : p;
                x += (size_t)!tk;
                y += (size_t)tk;
            }
            while (x < mid)
                dst[o++] = src[x++];
            while (y < end)
                dst[o++] = src[y++];
        }
        uint64_t *sw = src;
        src = dst;
        dst = sw;
    }
    if (src != k)
        memcpy(k, src, m * sizeof *k);
}

/* Order a bucket's records by (msisdn hash, msisdn, start, record_id, file,
 * line): group them by hash in one pass (a small table: a bucket holds a few
 * thousand subscribers), order the groups by hash, then sort each group -
 * one subscriber's month or months, short - by time: as 64-bit keys (start
 * time from the group's first, position), record_id, file and line only
 * deciding between equal start times. Returns 0, or -1 if memory ran out
 * (the records are then left as they were). */
#define RUN_MIXED 0x80000000u /* a run of msisdns sharing a hash: split by comparing */

static int sort_ents(ent *a, ent *tmp, size_t n, uint32_t *runs, size_t *nruns)
{
    *nruns = 0;
    if (n < 2) {
        if (n == 1)
            runs[(*nruns)++] = 1;
        return 0;
    }
    size_t cap = 64;
    while (cap < n / 4)
        cap *= 2;
    int32_t *slot = malloc(cap * sizeof *slot);
    int32_t *next = malloc(n * sizeof *next);
    int32_t *idx = malloc(n * sizeof *idx);
    uint64_t *key = malloc(2 * n * sizeof *key);
    size_t ng = 0, gcap = 256;
    sgroup *g = malloc(gcap * sizeof *g);
    if (!slot || !next || !idx || !key || !g)
        goto nomem;
    memset(slot, 0xff, cap * sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = a[i].h;
        size_t k = (size_t)(h ^ (h >> 32)) & (cap - 1);
        while (slot[k] >= 0 && g[slot[k]].h != h)
            k = (k + 1) & (cap - 1);
        next[i] = -1;
        if (slot[k] >= 0) {
            sgroup *x = &g[slot[k]];
            next[x->last] = (int32_t)i;
            x->last = (int32_t)i;
            x->count++;
            continue;
        }
        if (ng == gcap) {
            sgroup *ngp = realloc(g, 2 * gcap * sizeof *g);
            if (!ngp)
                goto nomem;
            g = ngp;
            gcap *= 2;
        }
        g[ng] = (sgroup){h, (int32_t)i, (int32_t)i, 1};
        slot[k] = (int32_t)ng++;
        if (ng * 2 > cap) { /* grow the table */
            free(slot);
            cap *= 4;
            slot = malloc(cap * sizeof *slot);
            if (!slot)
                goto nomem;
            memset(slot, 0xff, cap * sizeof *slot);
            for (size_t j = 0; j < ng; j++) {
                size_t q = (size_t)(g[j].h ^ (g[j].h >> 32)) & (cap - 1);
                while (slot[q] >= 0)
                    q = (q + 1) & (cap - 1);
                slot[q] = (int32_t)j;
            }
        }
    }
    qsort(g, ng, sizeof *g, cmp_group);
    size_t pos = 0;
    for (size_t gi = 0; gi < ng; gi++) {
        size_t m = g[gi].count, k = 0;
        ent *r = tmp + pos;
        pos += m;
        const ent *f = &a[g[gi].first];
        int same = 1;
        uint64_t lo = (uint64_t)f->start, hi = lo;
        for (int32_t i = g[gi].first; i >= 0; i = next[i]) {
            const ent *x = &a[i];
            idx[k++] = i;
            if (same && x != f &&
                !same_str(b_msisdn(x->b), x->b->l_msisdn, b_msisdn(f->b), f->b->l_msisdn))
                same = 0; /* two numbers share a hash: sort by the full order */
            if (x->start < (int64_t)lo)
                lo = (uint64_t)x->start;
            if (x->start > (int64_t)hi)
                hi = (uint64_t)x->start;
        }
        runs[(*nruns)++] = (uint32_t)m | (same ? 0 : RUN_MIXED);
        if (!same || m >= ((size_t)1 << 24) || hi - lo >= ((uint64_t)1 << 40)) {
            for (k = 0; k < m; k++)
                r[k] = a[idx[k]];
            qsort(r, m, sizeof *r, same ? cmp_time_q : cmp_ent);
            continue;
        }
        for (k = 0; k < m; k++)
            key[k] = ((uint64_t)a[idx[k]].start - lo) << 24 | k;
        sort_u64(key, key + n, m);
        for (k = 0; k < m; k++)
            r[k] = a[idx[key[k] & 0xffffff]];
        /* equal start times: by record_id, file, line */
        for (size_t j = 0; j < m;) {
            size_t e = j + 1;
            while (e < m && key[e] >> 24 == key[j] >> 24)
                e++;
            for (size_t i = j + 1; i < e; i++) {
                ent x = r[i];
                size_t y = i;
                while (y > j && cmp_time(&r[y - 1], &x) > 0) {
                    r[y] = r[y - 1];
                    y--;
                }
                r[y] = x;
            }
            j = e;
        }
    }
    memcpy(a, tmp, n * sizeof *a);
    free(slot);
    free(next);
    free(idx);
    free(key);
    free(g);
    return 0;
nomem:
    free(slot);
    free(next);
    free(idx);
    free(key);
    free(g);
    return -1;
}

/* Load, sort and rate one bucket. With c->out set, the bucket's blobs are
 * handed to the outbuf (they must live until it is drained). */
static cdr_err run_bucket(ctx *c, int bi)
{
    cdr_engine *e = c->e;
    bucket *bk = &e->b[bi];
    unsigned char *data;
    size_t len;
    cdr_err err = load_spill(e, bi, &data, &len);
    if (err != CDR_OK)
        return err;
    if (!data && !bk->head)
        return CDR_OK;
    size_t cnt = bk->records; /* (counted as filed: one pass less over the data) */
    if (cnt > c->ents_cap) {
        ent *ne = realloc(c->ents, cnt * sizeof *ne);
        if (ne)
            c->ents = ne;
        ent *nt = ne ? realloc(c->tmp, cnt * sizeof *nt) : NULL;
        if (!nt) {
            free(data);
            return CDR_E_NOMEM;
        }
        c->tmp = nt;
        c->ents_cap = cnt;
    }
    size_t k = data ? collect(e, data, len, c->ents, 0, cnt, c->tot) : 0;
    for (chunk *ck = bk->head; ck && k != (size_t)-1; ck = ck->next)
        k = collect(e, ck->data, ck->n, c->ents, k, cnt, c->tot);
    if (k == (size_t)-1) {
        free(data);
        snprintf(e->err, sizeof e->err, "bucket %d holds more records than were filed", bi);
        return CDR_E_INTERNAL;
    }
    bk->records = 0;

    /* Slices: the bucket is cut by the next bits of the hash into slices of
     * about SLICE records, each decoded, sorted and rated while it fits in
     * the core's cache (a large bucket rated whole spends its time waiting
     * on memory). Slices follow the hash order, so the output is the same. */
    enum { SLICE = 2048, MAX_SLICES = 256 };
    size_t nsl = 1;
    unsigned lg = 0;
    while (nsl < MAX_SLICES && nsl * SLICE < k) {
        nsl *= 2;
        lg++;
    }
    size_t start[MAX_SLICES + 1];
    if (nsl > 1) {
        size_t cnts[MAX_SLICES] = {0};
        for (size_t i = 0; i < k; i++)
            cnts[(c->ents[i].h >> (56 - lg)) & (nsl - 1)]++;
        start[0] = 0;
        for (size_t j = 0; j < nsl; j++)
            start[j + 1] = start[j] + cnts[j];
        size_t pos[MAX_SLICES];
        memcpy(pos, start, nsl * sizeof *pos);
        for (size_t i = 0; i < k; i++)
            c->tmp[pos[(c->ents[i].h >> (56 - lg)) & (nsl - 1)]++] = c->ents[i];
        ent *t = c->ents; /* the scattered order becomes ents */
        c->ents = c->tmp;
        c->tmp = t;
    } else {
        start[0] = 0;
        start[1] = k;
    }
    size_t most = 0;
    for (size_t j = 0; j < nsl; j++)
        if (start[j + 1] - start[j] > most)
            most = start[j + 1] - start[j];
    if (most > c->blobs_cap) {
        blob *nb = realloc(c->blobs, most * sizeof *nb);
        if (nb)
            c->blobs = nb;
        uint32_t *nr = nb ? realloc(c->runs, most * sizeof *nr) : NULL;
        if (!nr) {
            free(data);
            return CDR_E_NOMEM;
        }
        c->runs = nr;
        c->blobs_cap = most;
    }
    ent *ents = c->ents;
    for (size_t j = 0; j < nsl && err == CDR_OK; j++) {
        size_t a = start[j], n = start[j + 1] - a;
        for (size_t i = 0; i < n; i++) {
            /* the slice's records are scattered over the bucket: fetch
             * ahead (a record spans one or two cache lines; not timed
             * alone - this VM's noise is larger than its effect) */
            if (i + 8 < n) {
                __builtin_prefetch(ents[a + i + 8].p);
                __builtin_prefetch(ents[a + i + 8].p + 64);
            }
            unpack(ents[a + i].p, &c->blobs[i]);
            c->blobs[i].h = ents[a + i].h;
            ents[a + i].b = &c->blobs[i];
        }
        size_t nruns;
        if (sort_ents(ents + a, c->tmp + a, n, c->runs, &nruns) != 0) {
            err = CDR_E_NOMEM;
            break;
        }
        /* each run one subscriber (sort_ents compared the numbers), but
         * for the rare run of numbers sharing a hash */
        size_t s0 = a;
        for (size_t g = 0; g < nruns && err == CDR_OK; g++) {
            size_t z = s0 + (c->runs[g] & ~RUN_MIXED);
            if (!(c->runs[g] & RUN_MIXED)) {
                err = process_subscriber(c, ents + s0, z - s0);
                s0 = z;
                continue;
            }
            while (s0 < z && err == CDR_OK) {
                size_t end = s0 + 1;
                while (end < z && ents[end].h == ents[s0].h &&
                       same_str(b_msisdn(ents[end].b), ents[end].b->l_msisdn,
                                b_msisdn(ents[s0].b), ents[s0].b->l_msisdn))
                    end++;
                err = process_subscriber(c, ents + s0, end - s0);
                s0 = end;
            }
        }
    }
    if (c->out) {
        c->out->spill_data = data;
        c->out->chunks = bk->head;
        bk->head = bk->tail = NULL;
        bk->bytes = 0;
    } else {
        free(data);
        for (chunk *ck = bk->head, *n; ck; ck = n) {
            n = ck->next;
            free(ck);
        }
        bk->head = bk->tail = NULL;
        bk->bytes = 0;
    }
    return err;
}

static void ctx_free(ctx *c)
{
    htab_free(&c->rid);
    htab_free(&c->content);
    htab_free(&c->group);
    free(c->w);
    free(c->pb);
    free(c->ents);
    free(c->tmp);
    free(c->blobs);
    free(c->runs);
    free(c->xs);
}

static void add_totals(cdr_engine_totals *t, const cdr_engine_totals *a)
{
    t->records += a->records;
    t->excluded += a->excluded;
    t->duplicates += a->duplicates;
    t->unrated += a->unrated;
    t->findings += a->findings;
    for (int i = 0; i < CDR_CAT__COUNT; i++) {
        t->by_category[i] += a->by_category[i];
        t->amount_by_category[i] =
            cdr_money_total_add(t->amount_by_category[i], a->amount_by_category[i]);
    }
    t->candidates += a->candidates;
    t->overcharge = cdr_money_total_add(t->overcharge, a->overcharge);
    t->refund = cdr_money_total_add(t->refund, a->refund);
    t->leakage = cdr_money_total_add(t->leakage, a->leakage);
    t->leakage_records += a->leakage_records;
}

#define LOOKAHEAD 4 /* buckets rated ahead of the drain: enough for 2 workers; each held
                     * bucket costs memory (its blobs, the records the sink wants one
                     * by one, its rendered text and the sink's work state) */

typedef struct par {
    cdr_engine *e;
    const cdr_engine_sink *sink;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next, drained, stop;
    outbuf res[NBUCKET];
} par;

typedef struct worker {
    par *p;
    ctx c;
    cdr_engine_totals tot;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    par *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next < NBUCKET && p->next >= p->drained + LOOKAHEAD)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop || p->next >= NBUCKET) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int bi = p->next++;
        pthread_mutex_unlock(&p->mu);

        w->c.out = &p->res[bi];
        cdr_err err = run_bucket(&w->c, bi);
        if (err == CDR_OK)
            err = end_work(p->sink, &p->res[bi]);

        pthread_mutex_lock(&p->mu);
        p->res[bi].err = err;
        p->res[bi].done = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Two (or more) workers rate buckets ahead; this thread drains them to the
 * sink strictly in bucket order, so the output is the serial one. */
static cdr_err finish_parallel(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot,
                               int nthreads)
{
    par *p = calloc(1, sizeof *p);
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    cdr_err err = CDR_OK;
    int started = 0;
    if (!p || !ws) {
        free(p);
        free(ws);
        return CDR_E_NOMEM;
    }
    p->e = e;
    p->sink = sink;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < nthreads; i++) {
        ws[i].p = p;
        ws[i].c.e = e;
        ws[i].c.sink = sink;
        ws[i].c.tot = &ws[i].tot;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            err = CDR_E_NOMEM;
            break;
        }
        started++;
    }
    for (int bi = 0; bi < NBUCKET && err == CDR_OK && started; bi++) {
        pthread_mutex_lock(&p->mu);
        while (!p->res[bi].done)
            pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        err = p->res[bi].err;
        if (err == CDR_OK)
            err = drain(sink, &p->res[bi]);
        outbuf_clear(e, sink, &p->res[bi]);
        pthread_mutex_lock(&p->mu);
        p->drained = bi + 1;
        if (err != CDR_OK)
            p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);
    for (int bi = 0; bi < NBUCKET; bi++)
        outbuf_clear(e, sink, &p->res[bi]);
    for (int i = 0; i < nthreads; i++) {
        add_totals(tot, &ws[i].tot);
        ctx_free(&ws[i].c);
    }
    if (!started && err == CDR_OK)
        err = CDR_E_NOMEM;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(ws);
    free(p);
    return err;
}

cdr_err cdr_engine_finish(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot)
{
    cdr_err err = CDR_OK;
    cdr_engine_sink none = {0};
    cdr_engine_totals dummy;
    if (!tot)
        tot = &dummy;
    memset(tot, 0, sizeof *tot);
    if (!sink)
        sink = &none;
    if (e->finished || !e->t)
        return CDR_E_INTERNAL;
    e->finished = 1;
    if ((err = dist_stop(e)) != CDR_OK)
        return err;
    /* If anything was spilled, spill the rest too, so that buckets are loaded
     * one at a time and peak memory stays near a few buckets. */
    if (e->spilled && (err = spill_all(e)) != CDR_OK)
        return err;
    e->mem = 0; /* from here the buckets are consumed; peak was measured while adding */

    if (e->o.threads > 1) {
        err = finish_parallel(e, sink, tot, e->o.threads > 8 ? 8 : e->o.threads);
    } else {
        ctx c;
        memset(&c, 0, sizeof c);
        c.e = e;
        c.sink = sink;
        c.tot = tot;
        outbuf ob;
        memset(&ob, 0, sizeof ob);
        for (int bi = 0; bi < NBUCKET && err == CDR_OK; bi++) {
            c.out = uses_outbuf(sink) ? &ob : NULL; /* rendering always goes through a buffer */
            err = run_bucket(&c, bi);
            if (err == CDR_OK && c.out)
                err = end_work(sink, &ob);
            if (err == CDR_OK && c.out)
                err = drain(sink, &ob);
            outbuf_clear(e, sink, &ob);
        }
        ctx_free(&c);
    }
    tot->out_of_scope = e->out_of_scope;
    tot->spilled = e->spilled;
    tot->spilled_bytes = e->spilled_bytes;
    tot->peak_mem = e->peak;
    remove_spill(e);
    return err;
}
