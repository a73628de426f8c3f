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
#include "sha256.h"
#include "state.h"
#include "swar.h"
#include "tmpdir.h"
#include "reconcile_int.h"

#define NBUCKET 256
/* (internal) a subscriber-month continued from its checkpoint reached a
 * limit that only rating it whole can decide: rate it whole */
#define CDR_E_AGAIN ((cdr_err)(CDR_E__COUNT + 100))

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
struct cdr_engine;
static void free_months(struct cdr_engine *e);

typedef struct file_info {
    char *name;
    int excluded;
    cdr_str *extra_names; /* copied */
    char *extra_store;
    uint32_t n_extra;
    /* with a state */
    int64_t db_id;        /* files.file_id (0: unknown) */
    st_anchor *anchors;   /* a file of this run: (line, offset) every ST_ANCHOR_LINES lines */
    uint32_t n_anchors, anchors_cap;
    uint64_t next_anchor;
    uint64_t row_len;     /* the anchors' average row length */
    uint64_t copies;      /* records repeating an earlier (msisdn, record_id) */
    int stored;           /* known only from the state (a file of an earlier run) */
} file_info;

/* A month this finish touches: its live state files and the new ones. */
typedef struct emonth {
    cdr_month m;
    int rerate;           /* re-rate every stored subscriber-month */
    st_segr **segs;       /* live segments (the state's) */
    size_t n_segs;
    uint32_t **seg_files; /* per segment: file table index -> engine file index */
    st_ckr *ckp;          /* the live checkpoint file (NULL: a new month) */
    uint64_t new_records;
    st_segw *segw;        /* this finish's segment (NULL: no new records) */
    st_ckw *ckw;          /* this finish's checkpoint file */
} emonth;

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
    /* With a state: the months of the records added, the months of a
     * finish, and the state files it wrote and replaced. */
    cdr_month *months;
    size_t n_months, months_cap;
    emonth *em;
    size_t n_em;
    uint32_t n_run_files;   /* engine file indexes below this are files of this run */
    cdr_engine_state_file *written, *replaced;
    size_t n_written, n_replaced;
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

void cdr_rating_identity(const struct cdr_tariff *t, const cdr_engine_opts *o, uint8_t out[32])
{
    cdr_tariff_sha256(t, out);
    if (o->tolerance == 0 && o->max_duration == 10800)
        return; /* the defaults: the tariff's own hash (databases made before keep it) */
    char opt[96];
    int n = snprintf(opt, sizeof opt, "tolerance=%lld;max_duration=%lld", (long long)o->tolerance,
                     (long long)o->max_duration);
    cdr_sha256 c;
    cdr_sha256_init(&c);
    cdr_sha256_update(&c, out, 32);
    cdr_sha256_update(&c, opt, (size_t)n);
    cdr_sha256_final(&c, out);
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
        free(e->files[i].anchors);
    }
    free(e->files);
    free_months(e);
    free(e->months);
    free(e->written);
    free(e->replaced);
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

void cdr_engine_set_state_ids(cdr_engine *e, int64_t run_id, uint32_t tariff_id)
{
    e->o.run_id = run_id;
    e->o.tariff_id = tariff_id;
}

cdr_err cdr_engine_set_file_id(cdr_engine *e, uint32_t fi, int64_t db_file_id)
{
    cdr_err r = ensure_file(e, fi);
    if (r == CDR_OK)
        e->files[fi].db_id = db_file_id;
    return r;
}

uint64_t cdr_engine_file_copies(const cdr_engine *e, uint32_t fi)
{
    return fi < e->n_files ? e->files[fi].copies : 0;
}

/* With a state: the anchors of the file (line -> offset every
 * ST_ANCHOR_LINES lines), so that the state stores an offset as a small
 * residual; and the months of the records. */
static cdr_err note_row(cdr_engine *e, const cdr_row *r)
{
    file_info *f = &e->files[r->file_index];
    if (r->line >= f->next_anchor) {
        if (f->n_anchors == f->anchors_cap) {
            uint32_t nc = f->anchors_cap ? f->anchors_cap * 2 : 64;
            st_anchor *a = realloc(f->anchors, nc * sizeof *a);
            if (!a)
                return CDR_E_NOMEM;
            f->anchors = a;
            f->anchors_cap = nc;
        }
        f->anchors[f->n_anchors++] = (st_anchor){r->line, r->offset};
        f->next_anchor = r->line + ST_ANCHOR_LINES;
    }
    cdr_month m = cdr_time_month(r->start);
    size_t lo = 0, hi = e->n_months;
    while (lo < hi) {
        size_t k = lo + (hi - lo) / 2;
        if (e->months[k] < m)
            lo = k + 1;
        else
            hi = k;
    }
    if (lo < e->n_months && e->months[lo] == m)
        return CDR_OK;
    if (e->n_months == e->months_cap) {
        size_t nc = e->months_cap ? e->months_cap * 2 : 8;
        cdr_month *mm = realloc(e->months, nc * sizeof *mm);
        if (!mm)
            return CDR_E_NOMEM;
        e->months = mm;
        e->months_cap = nc;
    }
    memmove(e->months + lo + 1, e->months + lo, (e->n_months - lo) * sizeof *e->months);
    e->months[lo] = m;
    e->n_months++;
    return CDR_OK;
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

/* A row's packed form (see Records): its head, built once, and its size. */
typedef struct packing {
    unsigned char head[3 + 8 * 8 + 1 + 5 * 5 + 8];
    size_t head_n;
    uint32_t body;
    size_t need;
} packing;

static inline cdr_err pack_prepare(const cdr_row *r, packing *pk)
{
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
    unsigned char *head = pk->head, *hp = head + 3;
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
    pk->head_n = (size_t)(hp - head);
    pk->body = (uint32_t)body;
    pk->need = len_size(body) + body;
    return CDR_OK;

}

static inline void pack_write(unsigned char *d, const cdr_row *r, const packing *pk)
{
    d = put_len(d, pk->body);
    d = put_len(d, (uint32_t)r->msisdn.n);
    d = cdr_copy_small(d, r->msisdn.p, r->msisdn.n);
    d = cdr_copy_small(d, pk->head, pk->head_n);
    d = cdr_copy_small(d, r->record_id.p, r->record_id.n);
    d = cdr_copy_small(d, r->peer.p, r->peer.n);
    d = cdr_copy_small(d, r->call_id.p, r->call_id.n);
    d = cdr_copy_small(d, r->sms_ref.p, r->sms_ref.n);
    for (uint32_t i = 0; i < r->n_extra; i++) {
        d = put_len(d, (uint32_t)r->extra[i].n);
        d = cdr_copy_small(d, r->extra[i].p, r->extra[i].n);
    }
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
    if (e->o.state && (err = note_row(e, r)) != CDR_OK)
        return err;

    packing pk;
    if ((err = pack_prepare(r, &pk)) != CDR_OK)
        return err;
    size_t need = pk.need;

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
    pack_write(d, r, &pk);
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
    int is_new;           /* read in this run (else from the state) */
    int32_t rid_first;    /* the first record with its record_id (itself if none before) */
    int g_stored;         /* (count_copies, at rid_first) a stored record has this id */
    uint32_t g_minfile;   /* (count_copies, at rid_first) the lowest file of its new ones */
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

/* A worker's view of one month of a finish with a state. */
typedef struct wmonth {
    st_ckcur ck;          /* the month's old checkpoint entries */
    int ck_on;            /* positioned in the current bucket */
    st_gcur *g;           /* one cursor per live segment */
    int g_on;
} wmonth;

/* Stored records of one subscriber-month, loaded for re-rating it whole. */
typedef struct stored {
    unsigned char *p;     /* packed records */
    size_t n, cap;
    blob *b;
    size_t nb, bcap;
} stored;

/* One rating worker's state (one per thread). */
typedef struct ctx {
    cdr_engine *e;
    const cdr_engine_sink *sink;
    cdr_engine_totals *tot;
    htab rid, content, group;
    work *w;
    size_t w_cap;
    work *wm;             /* the subscriber-month being rated (dup_of indexes into it) */
    /* with a state */
    wmonth *wmo;          /* per month of the finish */
    int bucket;
    stored st;
    const blob **mix;     /* a month's stored records, in time order */
    size_t mix_cap;
    work *wf;             /* its stored and new records, in time order */
    size_t wf_cap;
    uint32_t *fps;        /* record_id fingerprints of a checkpoint being made */
    size_t fps_cap;
    uint64_t *rids;       /* hashes of the stored record_ids (a fingerprint's doubt) */
    size_t n_rids, rids_cap;
    uint64_t *copies;     /* per engine file */
    st_enc enc;
    int enc_ready;
    st_ckpt ck_new;       /* the checkpoint being built */
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
    cdr_submonth *sms;       /* subscriber-month events (kind 2), in order */
    size_t n_sms, cap_sms;
    st_part *parts;          /* with a state: this bucket's new records, per month */
    st_ckpart *ckparts;      /* ... and its checkpoint entries, per month */
    size_t n_parts;
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
    free(o->sms);
    for (size_t i = 0; i < o->n_parts; i++) {
        st_part_free(&o->parts[i]);
        st_buf_free(&o->ckparts[i].b);
    }
    free(o->parts);
    free(o->ckparts);
    memset(o, 0, sizeof *o);
}

/* Where a bucket's results stand, to take back what a subscriber-month
 * emitted (a continuation redone whole). */
typedef struct outbuf_mark {
    size_t n_recs, n_cands, n_sms, n_kinds;
} outbuf_mark;

static outbuf_mark outbuf_save(const outbuf *o)
{
    outbuf_mark m = {o->n_recs, o->n_cands, o->n_sms, o->n_kinds};
    return m;
}

static void outbuf_restore(outbuf *o, const outbuf_mark *m)
{
    o->n_recs = m->n_recs;
    o->n_cands = m->n_cands;
    o->n_sms = m->n_sms;
    o->n_kinds = m->n_kinds;
}

/* A view copied into the bucket's arena (for views into memory that goes
 * before the drain: the stored records of the subscriber-month). */
static int keep_str(outbuf *o, cdr_str *s)
{
    if (s->n == 0)
        return 0;
    char *p = arena_alloc(o, s->n);
    if (!p)
        return -1;
    memcpy(p, s->p, s->n);
    s->p = p;
    return 0;
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
    if (c->e->o.state) {
        /* a stored record's bytes, and the record_id of a stored original,
         * are reused for the next subscriber-month: keep copies */
        if (keep_str(o, &x->dup_of))
            return CDR_E_NOMEM;
        if (!r->is_new) {
            cdr_str *ex = (cdr_str *)x->row.extra;
            if (keep_str(o, &x->row.record_id) || keep_str(o, &x->row.msisdn) ||
                keep_str(o, &x->row.peer) || keep_str(o, &x->row.call_id) ||
                keep_str(o, &x->row.sms_ref))
                return CDR_E_NOMEM;
            for (uint32_t i = 0; i < x->row.n_extra; i++)
                if (keep_str(o, &ex[i]))
                    return CDR_E_NOMEM;
            x->finding.msisdn = x->row.msisdn;
            x->finding.record_id = x->row.record_id;
            x->finding.peer = x->row.peer;
        }
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
    cdr_candidate *x = &o->cands[o->n_cands];
    *x = *cd;
    if (c->e->o.state && keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_cands++;
    o->kinds[o->n_kinds++] = 1;
    return CDR_OK;
}

static cdr_err emit_submonth(ctx *c, const cdr_submonth *sm)
{
    outbuf *o = c->out;
    if (!o)
        return c->sink->on_submonth && c->sink->on_submonth(sm, c->sink->user) ? CDR_E_INTERRUPTED
                                                                                : CDR_OK;
    if (grow((void **)&o->sms, &o->cap_sms, o->n_sms, sizeof *o->sms) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    cdr_submonth *x = &o->sms[o->n_sms];
    *x = *sm;
    if (keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_sms++;
    o->kinds[o->n_kinds++] = 2;
    return CDR_OK;
}

/* Whether the results of a bucket go through an outbuf even on one thread
 * (always with a state: the bucket's state parts live there). */
static int uses_outbuf(const cdr_engine *e, const cdr_engine_sink *sink)
{
    return sink->render || sink->work_record || sink->work_candidate || e->o.state;
}

/* On the worker, after the bucket's last record: the end of the sink's work. */
static cdr_err end_work(const cdr_engine_sink *sink, outbuf *o)
{
    return o->work && sink->work_end ? sink->work_end(o->work, sink->user) : CDR_OK;
}

/* Hand a finished bucket's results to the sink, in order (and its state
 * parts to the month's writers). */
static cdr_err drain(cdr_engine *e, const cdr_engine_sink *sink, outbuf *o)
{
    size_t ir = 0, ic = 0, is = 0;
    for (size_t mi = 0; mi < o->n_parts; mi++) {
        emonth *em = &e->em[mi];
        cdr_err err;
        if (o->parts[mi].n_records) {
            if (!em->segw)
                return CDR_E_INTERNAL;
            if ((err = st_segw_append(em->segw, &o->parts[mi])) != CDR_OK)
                return err;
            em->new_records += o->parts[mi].n_records;
        }
        if ((err = st_ckw_append(em->ckw, &o->ckparts[mi])) != CDR_OK)
            return err;
    }
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
        } else if (o->kinds[k] == 2) {
            if (sink->on_submonth && sink->on_submonth(&o->sms[is], sink->user))
                return CDR_E_INTERRUPTED;
            is++;
        } else if (sink->on_candidate && sink->on_candidate(&o->cands[ic++], sink->user)) {
            return CDR_E_INTERRUPTED;
        }
    }
    return CDR_OK;
}

/* How process_month continues and what it writes. */
typedef struct mopts {
    const st_ckpt *init;   /* go on after these records (NULL: from the month's start) */
    const st_ckpt *prev;   /* the subscriber-month's checkpoint before this finish */
    uint64_t seq0;         /* the sequence number of the first record */
    st_ckpt *out;          /* with a state: the new checkpoint (NULL: no state) */
    cdr_submonth *sm;      /* with a state: the candidate's outcome */
} mopts;

/* A record_id's fingerprint (the checkpoints' rfp, ST_RFP_BITS bits). */
static uint32_t rid_fp(const blob *b)
{
    return (uint32_t)(cdr_hash_bytes(b_rid(b), b->l_rid, 3) >> (64 - ST_RFP_BITS));
}

static uint32_t partial_key(const blob *b)
{
    return (uint32_t)cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
}

/* Duplicates within one subscriber-month (CONTRACT.md "duplicates"): the
 * same record_id again, or the same usage under a new record_id; the first
 * in time order is the original. A new record whose record_id is that of a
 * stored record, or of a record of an earlier file of this run, is counted
 * as a copy for its file (a re-delivered file is mostly copies). */
static cdr_err find_duplicates(ctx *c, work *w, size_t n)
{
    cdr_err err;
    if ((err = htab_reset(&c->rid, n)) != CDR_OK || (err = htab_reset(&c->content, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        const blob *b = w[i].b;
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
        w[i].rid_first = orig < 0 ? (int32_t)i : orig;
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
    return CDR_OK;
}

/* Copies of records ingested before: a new record whose record_id is that
 * of a stored record, or of a record of an earlier file of this run (each
 * counted once, for its file). find_duplicates set each record's first
 * record of its record_id (rid_first). */
static void count_copies(ctx *c, work *w, size_t n)
{
    /* per group of one record_id, at its first record: any stored record,
     * and the lowest file of its new records */
    for (size_t i = 0; i < n; i++) {
        w[i].g_stored = 0;
        w[i].g_minfile = UINT32_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        work *f = &w[w[i].rid_first];
        if (!w[i].is_new)
            f->g_stored = 1;
        else if (w[i].b->file_index < f->g_minfile)
            f->g_minfile = w[i].b->file_index;
    }
    for (size_t i = 0; i < n; i++) {
        const work *f = &w[w[i].rid_first];
        if (w[i].is_new && (f->g_stored || w[i].b->file_index > f->g_minfile))
            c->copies[w[i].b->file_index]++;
    }
}

/* Process one subscriber-month: w[0..n) sorted in time order. */
static cdr_err process_month(ctx *c, work *w, size_t n, cdr_month month, const mopts *mo)
{
    cdr_engine *e = c->e;
    const cdr_tariff *t = e->t;
    cdr_err err;

    c->wm = w;
    if ((err = find_duplicates(c, w, n)) != CDR_OK)
        return err;

    if (c->copies)
        count_copies(c, w, n);

    /* Limits (docs/rating.md "Limits and sums"): a subscriber-month whose
     * billed amounts add up to more than CDR_MONEY_MAX is not rated at all;
     * so no sum of its billed amounts below (merged parts, overcharge,
     * refund = 2 x overcharge) can leave 64 bits. Continuing from a
     * checkpoint, the sums start at the checkpoint's upper bounds of the
     * stored records' sums; reaching a limit from there is not decided
     * here: the month is rated whole instead (CDR_E_AGAIN to the caller). */
    const char *month_unrated = NULL;
    cdr_money billed_sum = mo->init ? (cdr_money)mo->init->billed_hi << ST_SUM_SHIFT : 0;
    cdr_money rebuilt_sum = mo->init ? (cdr_money)mo->init->rebuilt_hi << ST_SUM_SHIFT : 0;
    for (size_t i = 0; i < n && !month_unrated; i++) {
        cdr_money v = w[i].b->billed; /* (the reader gives 0..CDR_MONEY_MAX) */
        if (v < 0 || v > CDR_MONEY_MAX || (billed_sum += v) > CDR_MONEY_MAX)
            month_unrated = "the billed amounts of this subscriber-month add up to more than "
                            "1000000000000 yuan: out of range, not rated";
    }
    if (month_unrated && mo->init)
        return CDR_E_AGAIN;

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

    /* Walk in time order (from where the checkpoint left off). */
    c->n_pb = 0;
    int64_t prev_end = INT64_MIN;
    uint32_t cand_records = 0;
    cdr_money over = 0;
    uint32_t cats = 0;
    unsigned cflags = 0;
    const cdr_subscriber *sub = NULL;
    int has_candidate = 0;
    uint64_t findings = 0;
    const st_ckpt *init = mo->init;
    if (init) {
        for (uint32_t k = 0; k < init->n_pools; k++)
            if (!pool_left(c, init->pools[k].plan, init->pools[k].pool, init->pools[k].left))
                return CDR_E_NOMEM;
        prev_end = init->prev_end;
        cflags = init->cflags;
        if (init->has_cand) {
            cand_records = init->cand_records;
            over = init->over;
            cats = init->cats;
            has_candidate = 1;
        }
    }

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
        r.seq = mo->seq0 + i;
        r.msisdn_hash = b->h;
        r.is_new = wi->is_new;
        r.file_name = file_name(e, b->file_index);
        r.file_db_id = b->file_index < e->n_files ? e->files[b->file_index].db_id : 0;
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
            const blob *o = c->wm[wi->dup_of].b;
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
            else if (!ro->unrated && ro->charge > CDR_MONEY_MAX - rebuilt_sum) {
                if (mo->init)
                    return CDR_E_AGAIN; /* (an upper bound: rate the month whole) */
                ro->unrated = "the rebuilt charges of this subscriber-month would add up to "
                              "more than 1000000000000 yuan: out of range, not rated";
            }
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

        /* Compare (reconcile/): a finding for a difference beyond the
         * tolerance, a duplicate or a flag. */
        cdr_money billed = r.cmp_billed, diff = billed - r.rebuilt;
        cdr_category cat = CDR_CAT_NONE;
        if (rc_has_finding(wi->status, diff, e->o.tolerance, flags)) {
            rc_record rr = {.t = t, .status = wi->status, .service = (cdr_service)b->service,
                            .peer = r.row.peer, .record_id = r.row.record_id,
                            .dup_of = r.dup_of, .amount = b->amount, .sms_part = b->sms_part,
                            .usage = wi->g_usage, .parts = wi->g_parts,
                            .sep_billable = wi->g_sep_billable_usage,
                            .sep_whole = wi->g_sep_whole_usage, .in = &in, .ro = ro,
                            .billed = billed, .rebuilt = r.rebuilt};
            cat = rc_compare(&rr, e->o.tolerance, flags, c->expl, sizeof c->expl);
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
            f->seq = r.seq;
            f->msisdn_hash = b->h;
            f->file_db_id = r.file_db_id;
            findings++;
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

    int has = has_candidate && over > 0;
    cdr_candidate cd;
    if (has)
        rc_candidate(t, (cdr_str){b_msisdn(w[0].b), w[0].b->l_msisdn}, w[0].b->h, month, sub,
                     cand_records, over, cats, cflags, &cd);
    if (!mo->out) {
        /* no state: every candidate */
        if (has) {
            c->tot->candidates++;
            c->tot->overcharge += cd.overcharge;
            c->tot->refund += cd.refund;
            if ((err = emit_candidate(c, &cd)) != CDR_OK)
                return err;
        }
        return CDR_OK;
    }
    /* With a state: the checkpoint after this month's last record, and the
     * candidate only when it is new or changed. */
    st_ckpt *o = mo->out;
    const blob *f0 = w[0].b;
    o->h = f0->h;
    o->msisdn_len = (uint8_t)f0->l_msisdn;
    memcpy(o->msisdn, b_msisdn(f0), f0->l_msisdn);
    o->msisdn[f0->l_msisdn] = '\0';
    o->n_records = mo->seq0 + n;
    o->last_start = w[n - 1].b->start;
    o->tariff_id = e->o.tariff_id;
    o->prev_end = prev_end;
    if (c->n_pb > ST_POOLS_MAX) {
        snprintf(e->err, sizeof e->err, "a subscriber-month draws from more than %d bundle pools",
                 ST_POOLS_MAX);
        return CDR_E_RANGE;
    }
    o->n_pools = (uint32_t)c->n_pb;
    for (size_t k = 0; k < c->n_pb; k++)
        o->pools[k] = (st_pool){c->pb[k].plan, c->pb[k].pool, c->pb[k].left};
    o->has_cand = has;
    o->cflags = cflags;
    if (has) {
        o->over = cd.overcharge;
        o->cand_records = cd.records;
        o->cats = cd.categories;
        o->tier = cd.tier;
        o->policy = (int)cd.policy;
        o->special = cd.special;
        o->reason = cd.reason;
    }
    o->n_findings = (init ? init->n_findings : 0) + findings;
    /* upper bounds of the month's sums, for the limits of a continuation */
    o->billed_hi = (uint64_t)((billed_sum + ((cdr_money)1 << ST_SUM_SHIFT) - 1) >> ST_SUM_SHIFT);
    o->rebuilt_hi = (uint64_t)((rebuilt_sum + ((cdr_money)1 << ST_SUM_SHIFT) - 1) >> ST_SUM_SHIFT);
    o->n_pkeys = 0;
    if (init)
        for (uint32_t k = 0; k < init->n_pkeys; k++)
            if (st_ckpt_add_pkey(o, init->pkeys[k]) != 0)
                return CDR_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (is_partial(w[i].b) && st_ckpt_add_pkey(o, partial_key(w[i].b)) != 0)
            return CDR_E_NOMEM;
    /* the record_ids' fingerprints: the old ones (continued) and these */
    o->n_rfp = 0;
    if (init && init->n_rfp) {
        if (o->rfp_cap < init->n_rfp) {
            uint32_t *f = realloc(o->rfp, init->n_rfp * sizeof *f);
            if (!f)
                return CDR_E_NOMEM;
            o->rfp = f;
            o->rfp_cap = init->n_rfp;
        }
        memcpy(o->rfp, init->rfp, init->n_rfp * sizeof *o->rfp);
        o->n_rfp = init->n_rfp;
    }
    if (n > c->fps_cap) {
        uint32_t *f = realloc(c->fps, n * sizeof *f);
        if (!f)
            return CDR_E_NOMEM;
        c->fps = f;
        c->fps_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        c->fps[i] = rid_fp(w[i].b);
    if (st_ckpt_add_rfps(o, c->fps, n) != 0)
        return CDR_E_NOMEM;
    const st_ckpt *p = mo->prev;
    int had = p && p->has_cand;
    int changed = has && !(had && p->over == o->over && p->cand_records == o->cand_records &&
                           p->cats == o->cats && p->cflags == o->cflags && p->tier == o->tier &&
                           p->policy == o->policy && p->special == o->special &&
                           p->reason == o->reason);
    mo->sm->has_candidate = has;
    mo->sm->refund = has ? cd.refund : 0;
    mo->sm->candidate_changed = changed;
    mo->sm->candidate_withdrawn = had && !has;
    c->tot->candidates_changed += (uint64_t)changed;
    c->tot->candidates_withdrawn += (uint64_t)(had && !has);
    if (changed) {
        c->tot->candidates++;
        c->tot->overcharge = cdr_money_total_add(c->tot->overcharge, cd.overcharge);
        c->tot->refund = cdr_money_total_add(c->tot->refund, cd.refund);
        if ((err = emit_candidate(c, &cd)) != CDR_OK)
            return err;
    }
    return CDR_OK;
}

/* ---- subscriber-months with a state ---- */

/* The month index of m in the finish's months (they are sorted). */
static int month_index(const cdr_engine *e, cdr_month m)
{
    size_t lo = 0, hi = e->n_em;
    while (lo < hi) {
        size_t k = lo + (hi - lo) / 2;
        if (e->em[k].m < m)
            lo = k + 1;
        else
            hi = k;
    }
    return lo < e->n_em && e->em[lo].m == m ? (int)lo : -1;
}

static uint64_t bucket_lo(int bi)
{
    return (uint64_t)bi << 56;
}

/* Whether hash h is still in the current bucket. */
static int in_bucket(int bi, uint64_t h)
{
    return (int)(h >> 56) == bi;
}

static cdr_err ck_fail(ctx *c, const char *why)
{
    snprintf(c->e->err, sizeof c->e->err, "%s", why && *why ? why : "damaged state file");
    return CDR_E_PARSE;
}

/* Position month mi's checkpoint cursor at the bucket's start (once). */
static cdr_err ck_start(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    if (wm->ck_on)
        return CDR_OK;
    wm->ck_on = 1;
    st_ckr *r = c->e->em[mi].ckp;
    if (!r) {
        wm->ck.have = 0;
        return CDR_OK;
    }
    cdr_err err = st_ckcur_seek(&wm->ck, r, bucket_lo(c->bucket));
    return err == CDR_OK ? CDR_OK : err == CDR_E_NOMEM ? err : ck_fail(c, wm->ck.err);
}

static int rid_add(const cdr_str *id, void *u)
{
    ctx *c = u;
    if (c->n_rids == c->rids_cap) {
        size_t nc = c->rids_cap ? c->rids_cap * 2 : 256;
        uint64_t *r = realloc(c->rids, nc * sizeof *r);
        if (!r)
            return CDR_E_NOMEM;
        c->rids = r;
        c->rids_cap = nc;
    }
    c->rids[c->n_rids++] = cdr_hash_bytes(id->p, id->n, 3);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Month mi's segment cursors at the group of (h, msisdn): *found[s]. */
static cdr_err seg_find(ctx *c, int mi, uint64_t h, const char *m, size_t n)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    for (size_t s = 0; s < em->n_segs; s++) {
        st_gcur *g = &wm->g[s];
        cdr_err err;
        if (!wm->g_on) {
            if ((err = st_gcur_seek(g, em->segs[s], h, m, n)) != CDR_OK)
                return err == CDR_E_NOMEM ? err : ck_fail(c, g->err);
        } else if (st_gcur_find(g, h, m, n) < 0) {
            return ck_fail(c, g->err);
        }
    }
    wm->g_on = 1;
    return CDR_OK;
}

static int seg_here(const st_gcur *g, uint64_t h, const char *m, size_t n)
{
    return g->have && st_key_cmp(g->cur.h, g->cur.msisdn, g->cur.msisdn_len, h, m, n) == 0;
}

/* Whether a new record's record_id is one of the stored records'. */
static cdr_err stored_ids_hit(ctx *c, int mi, const work *wn, size_t nn, uint64_t h,
                              const char *m, size_t ml, int *hit)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    cdr_err err;
    *hit = 0;
    c->n_rids = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++)
        if (seg_here(&wm->g[s], h, m, ml) && (err = st_gcur_ids(&wm->g[s], rid_add, c)) != CDR_OK)
            return err == CDR_E_NOMEM ? err : ck_fail(c, wm->g[s].err);
    qsort(c->rids, c->n_rids, sizeof *c->rids, cmp_u64);
    for (size_t i = 0; i < nn && !*hit; i++) {
        uint64_t k = cdr_hash_bytes(b_rid(wn[i].b), wn[i].b->l_rid, 3);
        *hit = bsearch(&k, c->rids, c->n_rids, sizeof k, cmp_u64) != NULL;
    }
    return CDR_OK;
}

typedef struct load_ctx {
    ctx *c;
    const uint32_t *files; /* segment file index -> engine file index */
    size_t n_files;
} load_ctx;

/* A stored row, packed into the ctx's stored area (unpacked afterwards:
 * the area moves while it grows). */
static int stored_add(const cdr_row *r, uint32_t fl, void *u)
{
    load_ctx *x = u;
    stored *st = &x->c->st;
    if (fl >= x->n_files)
        return CDR_E_PARSE;
    cdr_row row = *r;
    row.file_index = x->files[fl];
    packing pk;
    cdr_err err = pack_prepare(&row, &pk);
    if (err != CDR_OK)
        return err;
    if (st->n + pk.need + PACK_PAD > st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 65536;
        while (nc < st->n + pk.need + PACK_PAD)
            nc *= 2;
        unsigned char *p = realloc(st->p, nc);
        if (!p)
            return CDR_E_NOMEM;
        st->p = p;
        st->cap = nc;
    }
    pack_write(st->p + st->n, &row, &pk);
    st->n += pk.need;
    st->nb++;
    return 0;
}

/* Every stored record of (h, msisdn) in month mi, as blobs in c->st.b. */
static cdr_err load_stored(ctx *c, int mi, uint64_t h, const char *m, size_t ml)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    stored *st = &c->st;
    cdr_err err;
    st->n = 0;
    st->nb = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++) {
        if (!seg_here(&wm->g[s], h, m, ml))
            continue;
        load_ctx x = {c, em->seg_files[s], st_segr_n_files(em->segs[s])};
        err = st_gcur_rows(&wm->g[s], stored_add, &x);
        if (err != CDR_OK)
            return err == CDR_E_NOMEM ? err : ck_fail(c, wm->g[s].err);
    }
    if (st->nb > st->bcap) {
        blob *b = realloc(st->b, st->nb * sizeof *b);
        if (!b)
            return CDR_E_NOMEM;
        st->b = b;
        st->bcap = st->nb;
    }
    size_t off = 0;
    for (size_t i = 0; i < st->nb; i++) {
        unpack(st->p + off, &st->b[i]);
        st->b[i].h = h;
        off += packed_size(st->p + off);
    }
    return CDR_OK;
}

/* The order of records within a subscriber (CONTRACT.md "earlier"): start
 * time, record_id, then the file's name and the line, so that the order
 * does not depend on how the files were grouped into runs. */
static int blob_time_cmp(const cdr_engine *e, const blob *a, const blob *b)
{
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    int c = cmp_str(b_rid(a), a->l_rid, b_rid(b), b->l_rid);
    if (c)
        return c;
    if (a->file_index != b->file_index) {
        c = strcmp(file_name(e, a->file_index), file_name(e, b->file_index));
        if (c)
            return c;
    }
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->file_index < b->file_index ? -1 : a->file_index > b->file_index;
}

static int work_grow(work **w, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    work *x = realloc(*w, n * sizeof *x);
    if (!x)
        return -1;
    *w = x;
    *cap = n;
    return 0;
}

/* The stored records of the subscriber-month and the new ones wn[0..nn),
 * merged in time order into c->wf. */
static cdr_err merge_stored(ctx *c, const work *wn, size_t nn, size_t *total)
{
    stored *st = &c->st;
    size_t n = st->nb + nn;
    if (work_grow(&c->wf, &c->wf_cap, n ? n : 1))
        return CDR_E_NOMEM;
    /* both sides are in time order (each segment's group is, and the new
     * records are): the stored side is sorted first, as several segments
     * interleave */
    if (st->nb > c->mix_cap) {
        const blob **m = realloc(c->mix, st->nb * sizeof *m);
        if (!m)
            return CDR_E_NOMEM;
        c->mix = m;
        c->mix_cap = st->nb;
    }
    for (size_t i = 0; i < st->nb; i++)
        c->mix[i] = &st->b[i];
    /* insertion sort on nearly sorted runs, else a merge sort via qsort */
    const cdr_engine *e = c->e;
    for (size_t i = 1; i < st->nb; i++) {
        const blob *x = c->mix[i];
        size_t j = i;
        while (j > 0 && blob_time_cmp(e, c->mix[j - 1], x) > 0) {
            c->mix[j] = c->mix[j - 1];
            j--;
        }
        c->mix[j] = x;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < st->nb || j < nn) {
        int take_new = i == st->nb || (j < nn && blob_time_cmp(e, wn[j].b, c->mix[i]) < 0);
        if (take_new) {
            c->wf[k].b = wn[j++].b;
            c->wf[k].is_new = 1;
        } else {
            c->wf[k].b = c->mix[i++];
            c->wf[k].is_new = 0;
        }
        k++;
    }
    *total = k;
    return CDR_OK;
}

/* Hand a subscriber-month's event to the drain (or the sink). */
static cdr_err emit_submonth(ctx *c, const cdr_submonth *sm);

/* Rate one subscriber-month with the state: new records wn[0..nn) (may be
 * none: a re-rating), its old checkpoint `old` (NULL: none). Emits the
 * events, the new checkpoint into the bucket's checkpoint part and the new
 * records into the bucket's segment part. */
static cdr_err rate_submonth(ctx *c, int mi, work *wn, size_t nn, const st_ckpt *old,
                             uint64_t h, const char *m, size_t ml)
{
    cdr_engine *e = c->e;
    emonth *em = &e->em[mi];
    outbuf *o = c->out;
    cdr_err err;
    cdr_submonth sm;
    memset(&sm, 0, sizeof sm);
    sm.msisdn = (cdr_str){m, ml};
    sm.msisdn_hash = h;
    sm.month = em->m;
    sm.had_candidate = old && old->has_cand;
    sm.prev_refund = sm.had_candidate ? 2 * old->over : 0;
    sm.new_records = nn;

    cdr_submonth_mode mode;
    if (!old) {
        mode = CDR_SM_NEW;
    } else if (em->rerate || old->tariff_id != e->o.tariff_id || nn == 0 ||
               wn[0].b->start <= old->last_start) {
        mode = CDR_SM_FULL;
    } else {
        mode = CDR_SM_CONTINUE;
        for (size_t i = 0; i < nn && mode == CDR_SM_CONTINUE; i++)
            if (is_partial(wn[i].b) && st_ckpt_has_pkey(old, partial_key(wn[i].b)))
                mode = CDR_SM_FULL; /* a new part of a stored call */
        /* a record_id seen before makes a duplicate: rated whole. The
         * fingerprints say "not seen" for certain; on a "perhaps" (about
         * 1 in 1000 at 60 records) the stored ids themselves decide */
        int doubt = 0;
        for (size_t i = 0; i < nn && !doubt && mode == CDR_SM_CONTINUE; i++)
            doubt = st_ckpt_has_rfp(old, rid_fp(wn[i].b));
        if (doubt) {
            int hit;
            if ((err = stored_ids_hit(c, mi, wn, nn, h, m, ml, &hit)) != CDR_OK)
                return err;
            if (hit)
                mode = CDR_SM_FULL;
        }
    }
    sm.mode = mode;
    sm.records = (old ? old->n_records : 0) + nn;

    mopts mo = {NULL, old, 0, &c->ck_new, &sm};
    work *w = wn;
    size_t n = nn;
    if (mode == CDR_SM_CONTINUE) {
        mo.init = old;
        mo.seq0 = old->n_records;
    } else if (mode == CDR_SM_FULL) {
        if ((err = load_stored(c, mi, h, m, ml)) != CDR_OK)
            return err;
        if (c->st.nb != old->n_records) {
            snprintf(e->err, sizeof e->err, "the state holds %zu records of a subscriber-month "
                     "whose checkpoint counts %llu", c->st.nb,
                     (unsigned long long)old->n_records);
            return CDR_E_PARSE;
        }
        if ((err = merge_stored(c, wn, nn, &n)) != CDR_OK)
            return err;
        w = c->wf;
        c->tot->records_rerated += c->st.nb;
    }
    if (n == 0)
        return CDR_OK; /* (a checkpoint without records cannot be written) */
    if ((err = emit_submonth(c, &sm)) != CDR_OK)
        return err;
    outbuf_mark mark = outbuf_save(o);
    cdr_engine_totals tot_keep = *c->tot;
    err = process_month(c, w, n, em->m, &mo);
    if (err == CDR_E_AGAIN && mode == CDR_SM_CONTINUE) {
        /* a limit the checkpoint's bounds cannot decide: rate it whole */
        outbuf_restore(o, &mark);
        *c->tot = tot_keep;
        mode = sm.mode = CDR_SM_FULL;
        o->sms[o->n_sms - 1].mode = CDR_SM_FULL; /* (the begin event just emitted) */
        if ((err = load_stored(c, mi, h, m, ml)) != CDR_OK ||
            (err = merge_stored(c, wn, nn, &n)) != CDR_OK)
            return err;
        w = c->wf;
        c->tot->records_rerated += c->st.nb;
        mo.init = NULL;
        mo.seq0 = 0;
        err = process_month(c, w, n, em->m, &mo);
    }
    if (err != CDR_OK)
        return err;
    sm.end = 1;
    if ((err = emit_submonth(c, &sm)) != CDR_OK)
        return err;
    c->tot->submonths++;
    c->tot->submonths_new += mode == CDR_SM_NEW;
    c->tot->submonths_continued += mode == CDR_SM_CONTINUE;
    c->tot->submonths_full += mode == CDR_SM_FULL;

    /* the new checkpoint, and the new records into this run's segment */
    st_ckpart *cp = &o->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = h;
    cp->last_h = h;
    st_ckpt_put(&cp->b, &c->ck_new, cdr_month_start(em->m));
    cp->n++;
    if (cp->b.failed)
        return CDR_E_NOMEM;
    if (nn) {
        if (!c->enc_ready) {
            if (st_enc_init(&c->enc, 1) != 0)
                return CDR_E_NOMEM;
            c->enc_ready = 1;
        }
        st_part *part = &o->parts[mi];
        if (st_part_group(part, m, ml, nn, &c->enc) != 0)
            return CDR_E_NOMEM;
        for (size_t i = 0; i < nn; i++) {
            cdr_row r;
            const blob *b = wn[i].b;
            if ((err = fill_row(c, b, &r)) != CDR_OK)
                return err;
            if (r.n_extra) {
                /* the part keeps the row's views until its block is cut */
                cdr_str *x = arena_alloc(o, r.n_extra * sizeof *x);
                if (!x)
                    return CDR_E_NOMEM;
                memcpy(x, r.extra, r.n_extra * sizeof *x);
                r.extra = x;
            }
            const file_info *f = &e->files[b->file_index];
            st_file sf = {.anchors = f->anchors, .n_anchors = f->n_anchors, .row_len = f->row_len};
            if (st_part_add(part, &r, b->file_index, st_file_off_res(&sf, b->line, b->offset),
                            &c->enc) != 0)
                return CDR_E_NOMEM;
        }
    }
    return CDR_OK;
}

/* An old checkpoint entry no new record touches: copied, or (re-rating)
 * its subscriber-month rated again from the state. */
static cdr_err untouched(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    const st_ckpt *k = &wm->ck.cur;
    if (c->e->em[mi].rerate)
        return rate_submonth(c, mi, NULL, 0, k, k->h, k->msisdn, k->msisdn_len);
    if (k->tariff_id != c->e->o.tariff_id)
        c->tot->submonths_other_tariff++;
    st_ckpart *cp = &c->out->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = k->h;
    cp->last_h = k->h;
    st_buf_put(&cp->b, wm->ck.cur_raw, wm->ck.cur_raw_n);
    cp->n++;
    return cp->b.failed ? CDR_E_NOMEM : CDR_OK;
}

/* Advance month mi's checkpoint cursor to the key (h, m), handling every
 * entry before it; *old is the entry of the key itself, if there is one. */
static cdr_err ck_advance(ctx *c, int mi, uint64_t h, const char *m, size_t ml,
                          const st_ckpt **old)
{
    wmonth *wm = &c->wmo[mi];
    cdr_err err = ck_start(c, mi);
    *old = NULL;
    while (err == CDR_OK && wm->ck.have) {
        const st_ckpt *k = &wm->ck.cur;
        int cmp = st_key_cmp(k->h, k->msisdn, k->msisdn_len, h, m, ml);
        if (cmp == 0) {
            *old = k;
            return CDR_OK;
        }
        if (cmp > 0)
            return CDR_OK;
        if ((err = untouched(c, mi)) == CDR_OK && (err = st_ckcur_next(&wm->ck)) != CDR_OK &&
            err != CDR_E_NOMEM)
            err = ck_fail(c, wm->ck.err);
    }
    return err;
}

/* The new records wn[0..nn) of one subscriber-month (time order). */
static cdr_err handle_submonth(ctx *c, work *wn, size_t nn, cdr_month m)
{
    int mi = month_index(c->e, m);
    if (mi < 0) {
        snprintf(c->e->err, sizeof c->e->err, "a record of a month the finish did not expect");
        return CDR_E_INTERNAL;
    }
    const blob *b0 = wn[0].b;
    const st_ckpt *old;
    cdr_err err = ck_advance(c, mi, b0->h, b_msisdn(b0), b0->l_msisdn, &old);
    if (err != CDR_OK)
        return err;
    err = rate_submonth(c, mi, wn, nn, old, b0->h, b_msisdn(b0), b0->l_msisdn);
    if (err == CDR_OK && old && (err = st_ckcur_next(&c->wmo[mi].ck)) != CDR_OK &&
        err != CDR_E_NOMEM)
        err = ck_fail(c, c->wmo[mi].ck.err);
    return err;
}

/* The end of a bucket: the rest of every month's old entries in its range,
 * and the parts' last blocks. */
static cdr_err finish_bucket_state(ctx *c)
{
    cdr_engine *e = c->e;
    cdr_err err = CDR_OK;
    for (size_t mi = 0; mi < e->n_em && err == CDR_OK; mi++) {
        wmonth *wm = &c->wmo[mi];
        if ((err = ck_start(c, (int)mi)) != CDR_OK)
            break;
        while (err == CDR_OK && wm->ck.have && in_bucket(c->bucket, wm->ck.cur.h)) {
            if ((err = untouched(c, (int)mi)) == CDR_OK &&
                (err = st_ckcur_next(&wm->ck)) != CDR_OK && err != CDR_E_NOMEM)
                err = ck_fail(c, wm->ck.err);
        }
        if (err == CDR_OK && c->enc_ready && st_part_flush(&c->out->parts[mi], &c->enc) != 0)
            err = CDR_E_NOMEM;
        wm->ck_on = 0;
        wm->g_on = 0;
    }
    return err;
}

/* One subscriber: ents[0..n) sorted by time. */
static cdr_err process_subscriber(ctx *c, const ent *ents, size_t n)
{
    cdr_err err;
    if (work_grow(&c->w, &c->w_cap, n))
        return CDR_E_NOMEM;
    work *w = c->w;
    for (size_t i = 0; i < n; i++) {
        w[i].b = ents[i].b;
        w[i].is_new = 1;
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
        if (c->e->o.state) {
            err = handle_submonth(c, w + s, end - s, m);
        } else {
            mopts mo = {NULL, NULL, 0, NULL, NULL};
            err = process_month(c, w + s, end - s, m, &mo);
        }
        if (err != CDR_OK)
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

/* The order within one subscriber: time, then record_id, the file's name
 * and the line (blob_time_cmp). */
static int cmp_time(const cdr_engine *e, const ent *a, const ent *b)
{
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return blob_time_cmp(e, a->b, b->b);
}

static int cmp_time_q(const void *a, const void *b, void *e)
{
    return cmp_time(e, a, b);
}

/* The full order of records: msisdn hash, msisdn, then cmp_time. */
static int cmp_ent(const void *pa, const void *pb, void *e)
{
    const ent *a = pa, *b = pb;
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    int c = cmp_str(b_msisdn(a->b), a->b->l_msisdn, b_msisdn(b->b), b->b->l_msisdn);
    if (c)
        return c;
    return cmp_time(e, a, b);
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

static int sort_ents(const cdr_engine *e, ent *a, ent *tmp, size_t n, uint32_t *runs,
                     size_t *nruns)
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
            qsort_r(r, m, sizeof *r, same ? cmp_time_q : cmp_ent, (void *)e);
            continue;
        }
        for (k = 0; k < m; k++)
            key[k] = ((uint64_t)a[idx[k]].start - lo) << 24 | k;
        sort_u64(key, key + n, m);
        for (k = 0; k < m; k++)
            r[k] = a[idx[key[k] & 0xffffff]];
        /* equal start times: by record_id, file, line */
        for (size_t j = 0; j < m;) {
            size_t z = j + 1;
            while (z < m && key[z] >> 24 == key[j] >> 24)
                z++;
            for (size_t i = j + 1; i < z; i++) {
                ent x = r[i];
                size_t y = i;
                while (y > j && cmp_time(e, &r[y - 1], &x) > 0) {
                    r[y] = r[y - 1];
                    y--;
                }
                r[y] = x;
            }
            j = z;
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
static cdr_err run_bucket_records(ctx *c, int bi);

/* With a state: the bucket's parts, one per month of the finish. */
static cdr_err bucket_parts(ctx *c)
{
    size_t n = c->e->n_em;
    outbuf *o = c->out;
    o->parts = calloc(n ? n : 1, sizeof *o->parts);
    o->ckparts = calloc(n ? n : 1, sizeof *o->ckparts);
    if (!o->parts || !o->ckparts)
        return CDR_E_NOMEM;
    o->n_parts = n;
    for (size_t i = 0; i < n; i++)
        st_part_init(&o->parts[i]);
    return CDR_OK;
}

/* Load, sort and rate one bucket (and with a state, every subscriber-month
 * of its hash range the state holds). With c->out set, the bucket's blobs
 * are kept in the outbuf (they must live until it is drained). */
static cdr_err run_bucket(ctx *c, int bi)
{
    cdr_err err = CDR_OK;
    c->bucket = bi;
    if (c->e->o.state && (err = bucket_parts(c)) != CDR_OK)
        return err;
    err = run_bucket_records(c, bi);
    if (err == CDR_OK && c->e->o.state)
        err = finish_bucket_state(c);
    return err;
}

static cdr_err run_bucket_records(ctx *c, int bi)
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
    if (!e->o.state)
        bk->records = 0; /* (with a state the records stay: a finish may run again) */

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
        if (sort_ents(e, ents + a, c->tmp + a, n, c->runs, &nruns) != 0) {
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
    if (c->out)
        c->out->spill_data = data;
    else
        free(data);
    if (!e->o.state) {
        /* the bucket's memory goes as it is rated (with a state it stays
         * until the engine is freed: a finish may run again) */
        if (c->out) {
            c->out->chunks = bk->head;
        } else {
            for (chunk *ck = bk->head, *n; ck; ck = n) {
                n = ck->next;
                free(ck);
            }
        }
        bk->head = bk->tail = NULL;
        bk->bytes = 0;
    }
    return err;
}

static void ctx_free(ctx *c)
{
    if (c->wmo) {
        for (size_t mi = 0; mi < c->e->n_em; mi++) {
            st_ckcur_free(&c->wmo[mi].ck);
            for (size_t s = 0; s < c->e->em[mi].n_segs; s++)
                st_gcur_free(&c->wmo[mi].g[s]);
            free(c->wmo[mi].g);
        }
        free(c->wmo);
    }
    free(c->st.p);
    free(c->st.b);
    free(c->mix);
    free(c->wf);
    free(c->copies);
    if (c->enc_ready)
        st_enc_free(&c->enc);
    st_ckpt_clear(&c->ck_new);
    free(c->fps);
    free(c->rids);
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
    t->submonths += a->submonths;
    t->submonths_new += a->submonths_new;
    t->submonths_continued += a->submonths_continued;
    t->submonths_full += a->submonths_full;
    t->records_rerated += a->records_rerated;
    t->submonths_other_tariff += a->submonths_other_tariff;
    t->candidates_changed += a->candidates_changed;
    t->candidates_withdrawn += a->candidates_withdrawn;
}

/* A worker's state for the months of a finish with a state. */
static cdr_err ctx_init_state(ctx *c)
{
    cdr_engine *e = c->e;
    if (!e->o.state)
        return CDR_OK;
    c->copies = calloc(e->n_files ? e->n_files : 1, sizeof *c->copies);
    c->wmo = calloc(e->n_em ? e->n_em : 1, sizeof *c->wmo);
    if (!c->copies || !c->wmo)
        return CDR_E_NOMEM;
    for (size_t mi = 0; mi < e->n_em; mi++) {
        c->wmo[mi].g = calloc(e->em[mi].n_segs ? e->em[mi].n_segs : 1, sizeof *c->wmo[mi].g);
        if (!c->wmo[mi].g)
            return CDR_E_NOMEM;
    }
    return CDR_OK;
}

/* A worker's copy counts into the files' (after the finish). */
static void add_copies(cdr_engine *e, const ctx *c)
{
    if (!c->copies)
        return;
    for (uint32_t i = 0; i < e->n_files; i++)
        e->files[i].copies += c->copies[i];
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
        if ((err = ctx_init_state(&ws[i].c)) != CDR_OK)
            break;
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
            err = drain(e, sink, &p->res[bi]);
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
        add_copies(e, &ws[i].c);
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

/* ---- the months of a finish with a state ---- */

static void free_months(cdr_engine *e)
{
    for (size_t i = 0; i < e->n_em; i++) {
        emonth *em = &e->em[i];
        for (size_t s = 0; s < em->n_segs; s++)
            free(em->seg_files[s]);
        free(em->seg_files);
        free(em->segs);
        st_segw_free(em->segw);
        st_ckw_free(em->ckw);
    }
    free(e->em);
    e->em = NULL;
    e->n_em = 0;
}

static int has_month(const cdr_month *m, size_t n, cdr_month x)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] == x)
            return 1;
    return 0;
}

/* The engine file of a stored file (by its database id), registered on
 * first sight. */
static cdr_err stored_file(cdr_engine *e, const st_file *f, uint32_t *idx)
{
    for (uint32_t i = 0; i < e->n_files; i++)
        if (e->files[i].db_id == f->db_id && f->db_id != 0) {
            *idx = i;
            return CDR_OK;
        }
    uint32_t k = e->n_files;
    cdr_err err = ensure_file(e, k);
    if (err == CDR_OK)
        err = cdr_engine_set_file(e, k, f->name);
    if (err != CDR_OK)
        return err;
    file_info *fi = &e->files[k];
    fi->db_id = f->db_id;
    fi->stored = 1;
    if (f->n_extra) {
        size_t total = 0;
        for (uint32_t i = 0; i < f->n_extra; i++)
            total += strlen(f->extra_names[i]) + 1;
        fi->extra_names = calloc(f->n_extra, sizeof *fi->extra_names);
        fi->extra_store = malloc(total);
        if (!fi->extra_names || !fi->extra_store)
            return CDR_E_NOMEM;
        size_t at = 0;
        for (uint32_t i = 0; i < f->n_extra; i++) {
            size_t l = strlen(f->extra_names[i]);
            memcpy(fi->extra_store + at, f->extra_names[i], l + 1);
            fi->extra_names[i] = (cdr_str){fi->extra_store + at, l};
            at += l + 1;
        }
        fi->n_extra = f->n_extra;
    }
    *idx = k;
    return CDR_OK;
}

/* The months a finish touches: those of the new records, and with rerate
 * those asked; their live state files; a writer for each; every stored
 * file in the engine's file table. */
static cdr_err setup_months(cdr_engine *e)
{
    cdr_err err;
    e->n_run_files = e->n_files;
    for (uint32_t i = 0; i < e->n_files; i++) {
        file_info *f = &e->files[i];
        f->row_len = 0;
        f->copies = 0;
        if (f->n_anchors >= 2) {
            const st_anchor *a = &f->anchors[0], *z = &f->anchors[f->n_anchors - 1];
            if (z->line > a->line)
                f->row_len = (z->offset - a->offset) / (z->line - a->line);
        }
    }
    size_t nsm = 0;
    const cdr_month *sm = cdr_state_months(e->o.state, &nsm);
    cdr_month *want = malloc((e->n_months + nsm + e->o.n_rerate_months + 1) * sizeof *want);
    if (!want)
        return CDR_E_NOMEM;
    size_t nw = 0;
    for (size_t i = 0; i < e->n_months; i++)
        want[nw++] = e->months[i];
    if (e->o.rerate) {
        for (size_t i = 0; i < nsm; i++)
            if ((e->o.n_rerate_months == 0 ||
                 has_month(e->o.rerate_months, e->o.n_rerate_months, sm[i])) &&
                !has_month(want, nw, sm[i]))
                want[nw++] = sm[i];
    }
    /* sorted */
    for (size_t i = 1; i < nw; i++)
        for (size_t j = i; j > 0 && want[j - 1] > want[j]; j--) {
            cdr_month t = want[j];
            want[j] = want[j - 1];
            want[j - 1] = t;
        }
    e->em = calloc(nw ? nw : 1, sizeof *e->em);
    if (!e->em) {
        free(want);
        return CDR_E_NOMEM;
    }
    e->n_em = nw;
    /* the files of this run, for the new segments' file tables */
    st_file *run_files = calloc(e->n_run_files ? e->n_run_files : 1, sizeof *run_files);
    if (!run_files) {
        free(want);
        return CDR_E_NOMEM;
    }
    for (uint32_t i = 0; i < e->n_run_files; i++) {
        file_info *f = &e->files[i];
        run_files[i].db_id = f->db_id;
        run_files[i].name = f->name ? f->name : (char *)"";
        run_files[i].n_extra = f->n_extra;
        run_files[i].anchors = f->anchors;
        run_files[i].n_anchors = f->n_anchors;
        run_files[i].row_len = f->row_len;
        if (f->n_extra) {
            run_files[i].extra_names = calloc(f->n_extra, sizeof(char *));
            if (!run_files[i].extra_names) {
                err = CDR_E_NOMEM;
                goto out;
            }
            for (uint32_t k = 0; k < f->n_extra; k++)
                run_files[i].extra_names[k] = (char *)f->extra_names[k].p;
        }
    }
    err = CDR_OK;
    for (size_t i = 0; i < nw && err == CDR_OK; i++) {
        emonth *em = &e->em[i];
        em->m = want[i];
        em->rerate = e->o.rerate &&
                     (e->o.n_rerate_months == 0 ||
                      has_month(e->o.rerate_months, e->o.n_rerate_months, em->m));
        st_segr **segs;
        em->n_segs = st_state_segments(e->o.state, em->m, &segs);
        em->segs = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->segs);
        em->seg_files = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->seg_files);
        if (!em->segs || !em->seg_files) {
            err = CDR_E_NOMEM;
            break;
        }
        for (size_t k = 0; k < em->n_segs && err == CDR_OK; k++) {
            em->segs[k] = segs[k];
            size_t nf = st_segr_n_files(segs[k]);
            em->seg_files[k] = calloc(nf ? nf : 1, sizeof **em->seg_files);
            if (!em->seg_files[k]) {
                err = CDR_E_NOMEM;
                break;
            }
            for (size_t f = 0; f < nf && err == CDR_OK; f++)
                err = stored_file(e, st_segr_file(segs[k], f), &em->seg_files[k][f]);
        }
        em->ckp = st_state_checkpoint(e->o.state, em->m);
        char name[64], path[4096];
        if (err == CDR_OK && has_month(e->months, e->n_months, em->m)) {
            cdr_state_file_name(CDR_STATE_SEGMENT, em->m, e->o.run_id, name);
            snprintf(path, sizeof path, "%s/%s", e->o.state_dir, name);
            err = st_segw_create(path, em->m, run_files, e->n_run_files, &em->segw, e->err,
                                 sizeof e->err);
        }
        if (err == CDR_OK) {
            cdr_state_file_name(CDR_STATE_CHECKPOINT, em->m, e->o.run_id, name);
            snprintf(path, sizeof path, "%s/%s", e->o.state_dir, name);
            err = st_ckw_create(path, em->m, &em->ckw, e->err, sizeof e->err);
        }
    }
out:
    for (uint32_t i = 0; i < e->n_run_files; i++)
        free(run_files[i].extra_names);
    free(run_files);
    free(want);
    return err;
}

static cdr_err add_state_file(cdr_engine_state_file **list, size_t *n, const char *name, int kind,
                              cdr_month m, uint64_t records, uint64_t bytes)
{
    cdr_engine_state_file *l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return CDR_E_NOMEM;
    *list = l;
    cdr_engine_state_file *f = &l[(*n)++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->kind = kind;
    f->month = m;
    f->records = records;
    f->bytes = bytes;
    return CDR_OK;
}

/* Finish the months' new files (renamed into place) and list them, with the
 * live checkpoints they replace. */
static cdr_err commit_months(cdr_engine *e)
{
    cdr_err err = CDR_OK;
    char name[64];
    for (size_t i = 0; i < e->n_em && err == CDR_OK; i++) {
        emonth *em = &e->em[i];
        if (em->segw && st_segw_records(em->segw) > 0) {
            if ((err = st_segw_commit(em->segw, e->err, sizeof e->err)) != CDR_OK)
                break;
            cdr_state_file_name(CDR_STATE_SEGMENT, em->m, e->o.run_id, name);
            err = add_state_file(&e->written, &e->n_written, name, CDR_STATE_SEGMENT, em->m,
                                 st_segw_records(em->segw), st_segw_bytes(em->segw));
        }
        st_segw_free(em->segw);
        em->segw = NULL;
        if (err != CDR_OK)
            break;
        if (st_ckw_entries(em->ckw) > 0) {
            if ((err = st_ckw_commit(em->ckw, e->err, sizeof e->err)) != CDR_OK)
                break;
            cdr_state_file_name(CDR_STATE_CHECKPOINT, em->m, e->o.run_id, name);
            err = add_state_file(&e->written, &e->n_written, name, CDR_STATE_CHECKPOINT, em->m,
                                 st_ckw_entries(em->ckw), st_ckw_bytes(em->ckw));
            if (err == CDR_OK && em->ckp)
                err = add_state_file(&e->replaced, &e->n_replaced, st_ckr_name(em->ckp),
                                     CDR_STATE_CHECKPOINT, em->m, st_ckr_entries(em->ckp), 0);
        }
        st_ckw_free(em->ckw);
        em->ckw = NULL;
    }
    return err;
}

size_t cdr_engine_state_written(const cdr_engine *e, const cdr_engine_state_file **files)
{
    *files = e->written;
    return e->n_written;
}

size_t cdr_engine_state_replaced(const cdr_engine *e, const cdr_engine_state_file **files)
{
    *files = e->replaced;
    return e->n_replaced;
}

void cdr_engine_state_discard(cdr_engine *e)
{
    char path[4096];
    for (size_t i = 0; i < e->n_written && e->o.state_dir; i++) {
        snprintf(path, sizeof path, "%s/%s", e->o.state_dir, e->written[i].name);
        unlink(path);
    }
    free(e->written);
    e->written = NULL;
    e->n_written = 0;
    free(e->replaced);
    e->replaced = NULL;
    e->n_replaced = 0;
    free_months(e); /* (unlinks the temporary files of writers not committed) */
}

cdr_err cdr_engine_rewind(cdr_engine *e)
{
    if (!e->finished || !e->o.state)
        return CDR_E_INTERNAL;
    cdr_engine_state_discard(e);
    for (uint32_t i = 0; i < e->n_files; i++)
        e->files[i].copies = 0;
    /* the stored files registered by the finish are registered again */
    for (uint32_t i = e->n_run_files; i < e->n_files; i++) {
        free(e->files[i].name);
        free(e->files[i].extra_names);
        free(e->files[i].extra_store);
        free(e->files[i].anchors);
        memset(&e->files[i], 0, sizeof e->files[i]);
    }
    if (e->n_run_files < e->n_files)
        e->n_files = e->n_run_files;
    e->finished = 0;
    e->err[0] = '\0';
    return CDR_OK;
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
    if (e->finished || !e->t || (e->o.state && !e->o.state_dir))
        return CDR_E_INTERNAL;
    e->finished = 1;
    if ((err = dist_stop(e)) != CDR_OK)
        return err;
    /* If anything was spilled, spill the rest too, so that buckets are loaded
     * one at a time and peak memory stays near a few buckets. */
    if (e->spilled && (err = spill_all(e)) != CDR_OK)
        return err;
    e->mem = 0; /* from here the buckets are consumed; peak was measured while adding */
    if (e->o.state && (err = setup_months(e)) != CDR_OK)
        return err;

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
        err = ctx_init_state(&c);
        for (int bi = 0; bi < NBUCKET && err == CDR_OK; bi++) {
            c.out = uses_outbuf(e, sink) ? &ob : NULL; /* rendering always goes through a buffer */
            err = run_bucket(&c, bi);
            if (err == CDR_OK && c.out)
                err = end_work(sink, &ob);
            if (err == CDR_OK && c.out)
                err = drain(e, sink, &ob);
            outbuf_clear(e, sink, &ob);
        }
        add_copies(e, &c);
        ctx_free(&c);
    }
    if (err == CDR_OK && e->o.state)
        err = commit_months(e);
    tot->out_of_scope = e->out_of_scope;
    tot->spilled = e->spilled;
    tot->spilled_bytes = e->spilled_bytes;
    tot->peak_mem = e->peak;
    if (!e->o.state)
        remove_spill(e); /* (with a state a finish may run again) */
    return err;
}
