/* cdrecon — group/'s internal header: the packed record, buckets by msisdn hash, spilling, the distributor, a bucket's sort. */
/*
 * The packed record, the buckets it is filed into by msisdn hash (in
 * memory, spilled to disk beyond the memory budget), the distributor
 * thread that files them, and a bucket sorted by subscriber, month and
 * time (src/group/). Not public.
 *
 *   cdr_engine_add (add.c) packs a row and files it: into a staging block
 *   for the distributor (distributor.c) or straight into its bucket
 *   (bucket.c); past the budget every bucket is appended to its spill file.
 *   At the finish, each bucket is loaded, cut into slices, decoded into
 *   blobs, sorted (sort.c) and handed to rate/ one subscriber at a time
 *   (walk.c).
 *
 * The packed record is also how rate/ keeps a subscriber-month's records
 * read back from the month state: it includes this header for the record
 * format (blob, pack, unpack), which stays inline for both.
 */
#ifndef CDRECON_GROUP_INT_H
#define CDRECON_GROUP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cdrecon/engine.h"
#include "hashfn.h"
#include "swar.h"

#define NBUCKET 256 /* buckets, by the top 8 bits of the msisdn hash */

typedef struct ctx ctx; /* a rating worker (src/engine_int.h) */

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

static inline void unpack(const unsigned char *p, blob *b)
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
    /* tests only (test_rate_weak, test_state_weak): 8 hash values for
     * every number, so that numbers sharing a hash - a 1 in 10^12 event
     * with the real one - are the rule, and the code for them runs */
    return cdr_hash_bytes(p, n, 0) & 0x8000000000000003ull;
#else
    return cdr_hash_bytes(p, n, 0);
#endif
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

/* ------------------------------------------------------------------ */
/* Buckets                                                              */

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

/* Room for need bytes at the end of bucket b's last chunk: inline, as
 * every record filed asks for it; a new chunk (and spilling first when the
 * budget would be passed) is grp_bucket_grow's. */
cdr_err grp_bucket_grow(cdr_engine *e, bucket *b, size_t need);

static inline cdr_err grp_bucket_reserve(cdr_engine *e, bucket *b, size_t need,
                                         unsigned char **out)
{
    chunk *ck = b->tail;
    if (!ck || ck->n + need > ck->cap) {
        cdr_err err = grp_bucket_grow(e, b, need);
        if (err != CDR_OK)
            return err;
        ck = b->tail;
    }
    *out = ck->data + ck->n;
    ck->n += need;
    b->bytes += need;
    b->records++;
    return CDR_OK;
}

/* Append every bucket's records to its spill file and free its memory. */
cdr_err grp_spill_all(cdr_engine *e);
void grp_free_chunks(cdr_engine *e, bucket *b);
/* Close and remove the spill files and their directory. */
void grp_remove_spill(cdr_engine *e);
/* The spilled part of bucket i, read back whole (NULL if none). */
cdr_err grp_load_spill(cdr_engine *e, int i, unsigned char **data, size_t *len);

/* A staging block: packed records. */
typedef struct stage {
    struct stage *next;
    size_t n, cap;
    unsigned char data[];
} stage;

#define STAGE_SIZE ((size_t)1 << 20)
#define STAGE_QUEUE 6 /* full blocks waiting: with the spares, ~8 MiB beside --mem */

/* The distributor thread (threads > 1): started on the first record,
 * stopped (its last block filed) before the finish or when the engine is
 * freed. grp_stage_next queues the current block and takes an empty one
 * with room for need bytes. */
void grp_dist_start(cdr_engine *e);
cdr_err grp_dist_stop(cdr_engine *e);
cdr_err grp_stage_next(cdr_engine *e, size_t need);

/* The engine's file table: file fi exists (zeroed) after this. */
cdr_err grp_ensure_file(cdr_engine *e, uint32_t fi);

/* ------------------------------------------------------------------ */
/* A bucket sorted and walked                                           */

/* A record of the bucket being rated: its sort keys and where it is. */
typedef struct ent {
    uint64_t h;
    int64_t start;
    const blob *b;            /* decoded (set per slice, see walk.c) */
    const unsigned char *p;   /* the packed record */
} ent;

static inline int cmp_str(const char *a, size_t an, const char *b, size_t bn)
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

#define RUN_MIXED 0x80000000u /* a run of msisdns sharing a hash: split by comparing */

/* The order of records within a subscriber (CONTRACT.md "earlier"): start
 * time, record_id, then the file's name and the line. */
int grp_blob_time_cmp(const cdr_engine *e, const blob *a, const blob *b);
/* Sort ents[0..n) by (msisdn hash, msisdn, time); runs[] gets each
 * subscriber's count (RUN_MIXED: numbers sharing a hash). 0, or -1 when
 * memory ran out (ents left as they were). */
int grp_sort_ents(const cdr_engine *e, ent *a, ent *tmp, size_t n, uint32_t *runs,
                  size_t *nruns);
/* Load, sort and rate bucket bi: each subscriber goes to rt_subscriber. */
cdr_err grp_walk_bucket(ctx *c, int bi);

#endif
