/* cdrecon — the month's outputs kept current (include/cdrecon/outcache.h,
 * docs/state.md "The outputs cache").
 *
 * A file: header (magic, version, month, token), chunks of at most
 * OC_CHUNK bytes of the row stream (raw length, stored length, method, CRC
 * of the stored bytes, the bytes: raw deflate at ISA-L level 1, or as is),
 * footer (magic, stream length, chunks, month, token, CRC). The stream: three
 * sections, each entries then 0; an entry: 1, h (8 bytes), msisdn (length
 * byte, bytes), rows (2, seq, the numbers zigzagged, text length, text),
 * 3. The delta's three temporary files hold the same entries, each with the
 * month, the first seq it replaces and whether its candidate is gone. */
#include "cdrecon/outcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "crc.h"
#include "deflate1.h"
#include "errmsg.h"
#include "grow.h"
#include "wback.h"

#define OC_MAGIC "CDROUT01"
#define OC_FOOT "CDROUTF1"
#define OC_VERSION 1
#define OC_HEAD (8 + 4 + 4 + CDR_OC_TOKEN_LEN)
#define OC_FOOT_SIZE (8 + 8 + 4 + 4 + CDR_OC_TOKEN_LEN + 4)
#define OC_CHUNK (256u * 1024u)
#define OC_CHUNK_HEAD 13
#define NO_SEQ UINT64_MAX

enum { T_END = 0, T_ENTRY = 1, T_ROW = 2, T_ENTRY_END = 3 };

const char *cdr_oc_meta_key(cdr_month m, char *buf)
{
    char mo[16];
    cdr_month_format(m, mo);
    snprintf(buf, 32, "outcache %s", mo);
    return buf;
}

static void oc_name(cdr_month m, int tmp, char *buf, size_t len)
{
    char mo[16];
    cdr_month_format(m, mo);
    snprintf(buf, len, "out-%s.cdo%s", mo, tmp ? ".tmp" : "");
}

cdr_err cdr_oc_token(char tok[CDR_OC_TOKEN_LEN + 1])
{
    unsigned char r[CDR_OC_TOKEN_LEN / 2];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return CDR_E_IO;
        got += (size_t)k;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(tok + 2 * i, 3, "%02x", r[i]);
    return CDR_OK;
}

/* ---- an entry's key and a row, as both streams hold them ------------------ */

typedef struct okey {
    uint64_t h;
    cdr_month m;
    unsigned char ml;
    char ms[256];
} okey;

/* The outputs' order: h, msisdn (bytes, the shorter first), month. */
static int key_cmp(const okey *a, const okey *b)
{
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    size_t n = a->ml < b->ml ? a->ml : b->ml;
    int c = memcmp(a->ms, b->ms, n);
    if (c)
        return c;
    if (a->ml != b->ml)
        return a->ml < b->ml ? -1 : 1;
    return a->m < b->m ? -1 : a->m > b->m;
}

/* A row; text is the reader's copy (buf) or, when the row lay whole in a
 * chunk, points into it: valid until the reader's next call, so each row is
 * written and handed over before the next is read. */
typedef struct orow {
    uint64_t seq;
    int64_t num[CDR_OC_NUMS];
    const char *text;
    size_t len;
    char *buf;
    size_t cap;
} orow;

/* ---- a cache file being written ------------------------------------------- */

/* Where a file's chunks go: deflated, their CRC taken, written; the
 * writeback of each 8 MiB started (src/common/wback.h: the rename before
 * the database commit, and the commit's syncs, wait for less). */
typedef struct ocsink {
    int fd;
    unsigned char *z;
    void *lvl;
    uint64_t pos, wback;
} ocsink;

static cdr_err write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return CDR_E_IO;
        b += k;
        n -= (size_t)k;
    }
    return CDR_OK;
}

static cdr_err sink_chunk(ocsink *k, const unsigned char *raw, size_t n)
{
    size_t zn = 0;
    unsigned char h[OC_CHUNK_HEAD];
    const unsigned char *out = k->z;
    int method = 1;
    if (cdr_deflate1(raw, n, k->z, OC_CHUNK, 1, k->lvl, ISAL_DEF_LVL1_DEFAULT, 0, &zn) != 0 ||
        zn >= n) {
        out = raw; /* (did not shrink) */
        zn = n;
        method = 0;
    }
    cdr_put_le32(h, (uint32_t)n);
    cdr_put_le32(h + 4, (uint32_t)zn);
    h[8] = (unsigned char)method;
    cdr_put_le32(h + 9, cdr_crc32(0, out, zn));
    cdr_err e = write_all(k->fd, h, sizeof h);
    if (e == CDR_OK)
        e = write_all(k->fd, out, zn);
    k->pos += sizeof h + zn;
    cdr_wback(k->fd, &k->wback, k->pos);
    return e;
}

/* The deflater: a thread of its own that sinks the chunks the writer hands
 * it, one after the other in the order handed, while the writer goes on
 * merging (the file's bytes are those the writer would sink itself). A
 * ring of OC_QUEUE chunk buffers: the writer fills the one after the
 * queued ones; buf[head] is being sunk. */
#define OC_QUEUE 4

typedef struct ocz {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    unsigned char *buf[OC_QUEUE];
    size_t len[OC_QUEUE];
    unsigned head, count;
    int done;
    cdr_err st; /* the first failure: nothing is sunk after it */
    ocsink *out;
} ocz;

static void *ocz_main(void *arg)
{
    ocz *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->count == 0 && !q->done)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count == 0)
            break;
        unsigned char *b = q->buf[q->head];
        size_t n = q->len[q->head];
        cdr_err st = q->st;
        pthread_mutex_unlock(&q->mu);
        if (st == CDR_OK)
            st = sink_chunk(q->out, b, n);
        pthread_mutex_lock(&q->mu);
        if (q->st == CDR_OK)
            q->st = st;
        q->head = (q->head + 1) % OC_QUEUE;
        q->count--;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void ocz_free(ocz *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    for (int i = 0; i < OC_QUEUE; i++)
        free(q->buf[i]);
    free(q);
}

/* The thread started, or NULL (the writer sinks its chunks itself). */
static ocz *ocz_new(ocsink *out)
{
    ocz *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->out = out;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    int ok = 1;
    for (int i = 0; i < OC_QUEUE; i++)
        ok &= (q->buf[i] = malloc(OC_CHUNK)) != NULL;
    if (!ok || pthread_create(&q->th, NULL, ocz_main, q) != 0) {
        ocz_free(q);
        return NULL;
    }
    return q;
}

/* The chunk filled (n bytes) queued; the buffer to fill next, once there is
 * one (*st: the thread's failure, if any). */
static unsigned char *ocz_hand(ocz *q, size_t n, cdr_err *st)
{
    pthread_mutex_lock(&q->mu);
    q->len[(q->head + q->count) % OC_QUEUE] = n;
    q->count++;
    pthread_cond_broadcast(&q->cv);
    while (q->count == OC_QUEUE && q->st == CDR_OK)
        pthread_cond_wait(&q->cv, &q->mu);
    *st = q->st;
    unsigned char *next = q->buf[(q->head + q->count) % OC_QUEUE];
    pthread_mutex_unlock(&q->mu);
    return next;
}

/* The thread ended once the queue is sunk (abandon: nothing more sunk);
 * its first failure. */
static cdr_err ocz_stop(ocz *q, int abandon)
{
    pthread_mutex_lock(&q->mu);
    q->done = 1;
    if (abandon && q->st == CDR_OK)
        q->st = CDR_E_INTERRUPTED;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    return q->st;
}

typedef struct ocw {
    cdr_month m;
    ocsink out;
    ocz *q;             /* the deflater, or NULL: chunks sunk here */
    unsigned char *raw; /* the chunk being filled (one of q's buffers) */
    size_t n;
    uint64_t total;
    uint32_t chunks;
    cdr_err st;
    int section, open;
    okey cur;
} ocw;

static void ocw_flush(ocw *w)
{
    if (w->st != CDR_OK || w->n == 0)
        return;
    if (w->q)
        w->raw = ocz_hand(w->q, w->n, &w->st);
    else
        w->st = sink_chunk(&w->out, w->raw, w->n);
    w->total += w->n;
    w->chunks++;
    w->n = 0;
}

static void ocw_put_slow(ocw *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n && w->st == CDR_OK) {
        size_t k = OC_CHUNK - w->n < n ? OC_CHUNK - w->n : n;
        memcpy(w->raw + w->n, b, k);
        w->n += k;
        b += k;
        n -= k;
        if (w->n == OC_CHUNK)
            ocw_flush(w);
    }
}

/* The writers below run for every field of every row: what leaves the
 * chunk short of full goes straight in; filling it (its flush at exactly
 * OC_CHUNK bytes, as before) and a failed writer go the slow way. */
static inline void ocw_put(ocw *w, const void *p, size_t n)
{
    if (n && n < OC_CHUNK - w->n && w->st == CDR_OK) {
        memcpy(w->raw + w->n, p, n);
        w->n += n;
    } else {
        ocw_put_slow(w, p, n);
    }
}

static inline void ocw_u8(ocw *w, unsigned v)
{
    unsigned char c = (unsigned char)v;
    ocw_put(w, &c, 1);
}

static inline void ocw_varint(ocw *w, uint64_t v)
{
    if (OC_CHUNK - w->n > 10 && w->st == CDR_OK) {
        w->n = (size_t)(cdr_put_varint(w->raw + w->n, v) - w->raw);
        return;
    }
    unsigned char b[10];
    ocw_put_slow(w, b, (size_t)(cdr_put_varint(b, v) - b));
}

static cdr_err ocw_open(ocw *w, const char *dir, cdr_month m, const char *token)
{
    memset(w, 0, sizeof *w);
    w->out.fd = -1;
    w->m = m;
    char name[64], path[4096];
    oc_name(m, 1, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    w->out.z = malloc(OC_CHUNK);
    w->out.lvl = malloc(ISAL_DEF_LVL1_DEFAULT);
    if (!w->out.z || !w->out.lvl)
        return w->st = CDR_E_NOMEM;
    w->out.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (w->out.fd < 0)
        return w->st = CDR_E_IO;
    unsigned char h[OC_HEAD];
    memcpy(h, OC_MAGIC, 8);
    cdr_put_le32(h + 8, OC_VERSION);
    cdr_put_le32(h + 12, (uint32_t)m);
    memcpy(h + 16, token, CDR_OC_TOKEN_LEN);
    if ((w->st = write_all(w->out.fd, h, sizeof h)) != CDR_OK)
        return w->st;
    w->out.pos = sizeof h;
    if ((w->q = ocz_new(&w->out)) != NULL)
        w->raw = w->q->buf[0];
    else if (!(w->raw = malloc(OC_CHUNK)))
        return w->st = CDR_E_NOMEM;
    return CDR_OK;
}

static void ocw_close_entry(ocw *w)
{
    if (w->open)
        ocw_u8(w, T_ENTRY_END);
    w->open = 0;
}

/* Go on to section s (the ones before it end). */
static void ocw_section(ocw *w, int s)
{
    while (w->section < s) {
        ocw_close_entry(w);
        ocw_u8(w, T_END);
        w->section++;
    }
}

static void ocw_row(ocw *w, int s, const okey *k, const orow *r)
{
    ocw_section(w, s);
    if (w->open && key_cmp(&w->cur, k) != 0)
        ocw_close_entry(w);
    if (!w->open) {
        unsigned char h[8];
        cdr_put_le64(h, k->h);
        ocw_u8(w, T_ENTRY);
        ocw_put(w, h, 8);
        ocw_u8(w, k->ml);
        ocw_put(w, k->ms, k->ml);
        w->cur = *k;
        w->open = 1;
    }
    ocw_u8(w, T_ROW);
    ocw_varint(w, r->seq);
    for (int i = 0; i < CDR_OC_NUMS; i++)
        ocw_varint(w, cdr_zz(r->num[i]));
    ocw_varint(w, r->len);
    ocw_put(w, r->text, r->len);
}

/* The deflater stopped (abandon: what it holds dropped); its buffers go. */
static void ocw_join(ocw *w, int abandon)
{
    if (!w->q)
        return;
    cdr_err e = ocz_stop(w->q, abandon);
    if (w->st == CDR_OK)
        w->st = e;
    ocz_free(w->q);
    w->q = NULL;
    w->raw = NULL;
}

static cdr_err ocw_finish(ocw *w, const char *token)
{
    ocw_section(w, CDR_OC__SECTIONS);
    ocw_flush(w);
    ocw_join(w, 0);
    if (w->st != CDR_OK)
        return w->st;
    unsigned char f[OC_FOOT_SIZE];
    memcpy(f, OC_FOOT, 8);
    cdr_put_le64(f + 8, w->total);
    cdr_put_le32(f + 16, w->chunks);
    cdr_put_le32(f + 20, (uint32_t)w->m);
    memcpy(f + 24, token, CDR_OC_TOKEN_LEN);
    cdr_put_le32(f + 24 + CDR_OC_TOKEN_LEN, cdr_crc32(0, f, 24 + CDR_OC_TOKEN_LEN));
    w->st = write_all(w->out.fd, f, sizeof f);
    if (w->st == CDR_OK && close(w->out.fd) != 0)
        w->st = CDR_E_IO;
    w->out.fd = -1;
    return w->st;
}

static void ocw_free(ocw *w)
{
    if (w->q)
        ocw_join(w, 1);
    else
        free(w->raw);
    if (w->out.fd >= 0)
        close(w->out.fd);
    free(w->out.z);
    free(w->out.lvl);
    w->out.fd = -1;
    w->raw = w->out.z = NULL;
    w->out.lvl = NULL;
}

/* ---- a byte source: a cache file's chunks, or a delta's temporary file ---- */

struct ocin;

typedef struct src {
    /* cache file: raw, the chunk at hand (n bytes), from in's ring, or else
     * read and inflated here into own (z: its stored bytes; off: the next
     * chunk's) */
    int fd;
    uint64_t off, end;
    unsigned char *raw, *own, *z;
    size_t n, pos;
    struct inflate_state *inf;
    struct ocin *in;
    /* delta */
    FILE *fp;
    int bad;
} src;

/* The chunk at *off of fd (whose chunks end at end) read, its CRC checked,
 * and inflated into dst (its length into *n; z: room for its stored
 * bytes); *off moves past it. */
static int chunk_read(int fd, uint64_t end, uint64_t *off, struct inflate_state *inf,
                      unsigned char *z, unsigned char *dst, size_t *n)
{
    unsigned char h[OC_CHUNK_HEAD];
    if (*off + OC_CHUNK_HEAD > end || pread(fd, h, sizeof h, (off_t)*off) != (ssize_t)sizeof h)
        return -1;
    uint32_t rl = cdr_le32(h), sl = cdr_le32(h + 4);
    if (rl == 0 || rl > OC_CHUNK || sl > OC_CHUNK || h[8] > 1 ||
        *off + OC_CHUNK_HEAD + sl > end || (h[8] == 0 && sl != rl))
        return -1;
    unsigned char *in = h[8] ? z : dst;
    if (pread(fd, in, sl, (off_t)(*off + OC_CHUNK_HEAD)) != (ssize_t)sl ||
        cdr_crc32(0, in, sl) != cdr_le32(h + 9))
        return -1;
    if (h[8]) {
        isal_inflate_init(inf);
        inf->crc_flag = ISAL_DEFLATE;
        inf->next_in = z;
        inf->avail_in = sl;
        inf->next_out = dst;
        inf->avail_out = rl;
        if (isal_inflate_stateless(inf) != ISAL_DECOMP_OK || inf->total_out != rl)
            return -1;
    }
    *off += OC_CHUNK_HEAD + sl;
    *n = rl;
    return 0;
}

/* ---- the inflater: a cache file's chunks inflated ahead, on a thread ------
 * Inflating was the largest part of the main thread's outputs phase; here
 * a thread fills a ring of OC_RING chunks while the merge reads the one it
 * holds (released when it asks for the next: a row's text handed over from
 * it stays valid until then). The thread stops at the file's end or at the
 * first bad chunk, and the reader then sees the same failure src_fill's own
 * inflating would give, at the same point of the stream. */

#define OC_RING 4

typedef struct ocin {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int fd;
    uint64_t end;
    struct inflate_state *inf;
    unsigned char *z; /* a chunk's stored bytes */
    unsigned char *buf[OC_RING];
    size_t len[OC_RING];
    unsigned head, count; /* filled, the reader's included */
    int held;             /* the reader holds buf[head] */
    int done, stop;
} ocin;

static void *ocin_main(void *arg)
{
    ocin *q = arg;
    uint64_t off = OC_HEAD;
    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        if (q->count == OC_RING) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        /* (a slot's index stays put while the reader releases the head) */
        unsigned at = (q->head + q->count) % OC_RING;
        pthread_mutex_unlock(&q->mu);
        int rc = chunk_read(q->fd, q->end, &off, q->inf, q->z, q->buf[at], &q->len[at]);
        pthread_mutex_lock(&q->mu);
        if (rc != 0)
            break; /* the end, or a bad chunk */
        q->count++;
        pthread_cond_broadcast(&q->cv);
    }
    q->done = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* The chunk after the one held (released), or -1 past the last good one. */
static int ocin_next(ocin *q, unsigned char **raw, size_t *n)
{
    pthread_mutex_lock(&q->mu);
    if (q->held) {
        q->head = (q->head + 1) % OC_RING;
        q->count--;
        q->held = 0;
        pthread_cond_broadcast(&q->cv);
    }
    while (q->count == 0 && !q->done)
        pthread_cond_wait(&q->cv, &q->mu);
    int ok = q->count > 0;
    if (ok) {
        *raw = q->buf[q->head];
        *n = q->len[q->head];
        q->held = 1;
    }
    pthread_mutex_unlock(&q->mu);
    return ok ? 0 : -1;
}

static void ocin_free(ocin *q)
{
    free(q->z);
    for (int i = 0; i < OC_RING; i++)
        free(q->buf[i]);
    free(q);
}

/* The thread started on s's checked file (it reads it as src_fill would,
 * through its own offset), or NULL (s then inflates itself). */
static ocin *ocin_new(src *s)
{
    ocin *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    int ok = (q->z = malloc(OC_CHUNK)) != NULL;
    for (int i = 0; i < OC_RING; i++)
        ok &= (q->buf[i] = malloc(OC_CHUNK)) != NULL;
    q->fd = s->fd;
    q->end = s->end;
    q->inf = s->inf;
    if (!ok || pthread_mutex_init(&q->mu, NULL) != 0) {
        ocin_free(q);
        return NULL;
    }
    if (pthread_cond_init(&q->cv, NULL) != 0) {
        pthread_mutex_destroy(&q->mu);
        ocin_free(q);
        return NULL;
    }
    if (pthread_create(&q->th, NULL, ocin_main, q) != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        ocin_free(q);
        return NULL;
    }
    return q;
}

/* The thread stopped (wherever it is) and joined, its ring freed. */
static void ocin_stop(ocin *q)
{
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    ocin_free(q);
}

/* The next chunk into raw. */
static int src_fill(src *s)
{
    if (s->fp)
        return -1;
    if (s->in ? ocin_next(s->in, &s->raw, &s->n) != 0
              : chunk_read(s->fd, s->end, &s->off, s->inf, s->z, s->raw, &s->n) != 0)
        return -1;
    s->pos = 0;
    return 0;
}

/* src_get when the bytes are not all in the chunk at hand (or a delta). */
static int src_get_slow(src *s, void *dst, size_t n)
{
    unsigned char *d = dst;
    if (s->fp) {
        if (n && fread(d, 1, n, s->fp) != n)
            return s->bad = 1, -1;
        return 0;
    }
    while (n) {
        if (s->pos == s->n && src_fill(s) != 0)
            return s->bad = 1, -1;
        size_t k = s->n - s->pos < n ? s->n - s->pos : n;
        memcpy(d, s->raw + s->pos, k);
        s->pos += k;
        d += k;
        n -= k;
    }
    return 0;
}

/* The readers below are called for every byte of a row's head: they take
 * the bytes straight from the chunk when it holds them (a delta's source
 * has n = pos = 0, so it always goes the slow way, through stdio). */
static inline int src_get(src *s, void *dst, size_t n)
{
    if (n && n <= s->n - s->pos) {
        memcpy(dst, s->raw + s->pos, n);
        s->pos += n;
        return 0;
    }
    return src_get_slow(s, dst, n);
}

static inline unsigned src_u8(src *s)
{
    if (s->pos < s->n)
        return s->raw[s->pos++];
    unsigned char c = 0;
    src_get_slow(s, &c, 1);
    return c;
}

/* At most 10 bytes, the last of them ending it (else the stream is bad). */
static uint64_t src_varint_slow(src *s)
{
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        unsigned c = src_u8(s);
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80))
            return v;
    }
    s->bad = 1;
    return 0;
}

static inline uint64_t src_varint(src *s)
{
    if (s->n - s->pos < 10)
        return src_varint_slow(s);
    const unsigned char *p = s->raw + s->pos;
    uint64_t v = 0;
    for (int i = 0, sh = 0; sh < 64; i++, sh += 7) {
        v |= (uint64_t)(p[i] & 0x7f) << sh;
        if (!(p[i] & 0x80)) {
            s->pos += (size_t)i + 1;
            return v;
        }
    }
    s->pos += 10; /* (as the slow way leaves it) */
    s->bad = 1;
    return 0;
}

static void src_close(src *s)
{
    if (s->in)
        ocin_stop(s->in); /* (before the fd it reads goes) */
    if (s->fd >= 0)
        close(s->fd);
    free(s->own);
    free(s->z);
    free(s->inf);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* Open a month's file and check it whole (footer, token, every chunk's CRC)
 * before a row is used: a damaged file is found before any output. */
static int src_open_cache(src *s, const char *dir, cdr_month m, const char *token)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    char name[64], path[4096];
    oc_name(m, 0, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (s->fd < 0 || fstat(s->fd, &sb) != 0 || sb.st_size < OC_HEAD + OC_FOOT_SIZE)
        return -1;
    unsigned char h[OC_HEAD], f[OC_FOOT_SIZE];
    s->end = (uint64_t)sb.st_size - OC_FOOT_SIZE;
    if (pread(s->fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
        pread(s->fd, f, sizeof f, (off_t)s->end) != (ssize_t)sizeof f)
        return -1;
    if (memcmp(h, OC_MAGIC, 8) || cdr_le32(h + 8) != OC_VERSION || cdr_le32(h + 12) != (uint32_t)m ||
        memcmp(h + 16, token, CDR_OC_TOKEN_LEN) || memcmp(f, OC_FOOT, 8) ||
        cdr_le32(f + 20) != (uint32_t)m || memcmp(f + 24, token, CDR_OC_TOKEN_LEN) ||
        cdr_le32(f + 24 + CDR_OC_TOKEN_LEN) != cdr_crc32(0, f, 24 + CDR_OC_TOKEN_LEN))
        return -1;
    s->z = malloc(OC_CHUNK);
    s->inf = malloc(sizeof *s->inf);
    if (!s->z || !s->inf)
        return -1;
    /* every chunk's CRC, and their count and lengths */
    uint64_t off = OC_HEAD, total = 0;
    uint32_t chunks = 0;
    while (off < s->end) {
        unsigned char c[OC_CHUNK_HEAD];
        if (off + OC_CHUNK_HEAD > s->end || pread(s->fd, c, sizeof c, (off_t)off) != sizeof c)
            return -1;
        uint32_t rl = cdr_le32(c), sl = cdr_le32(c + 4);
        if (rl == 0 || rl > OC_CHUNK || sl > OC_CHUNK || c[8] > 1 || (c[8] == 0 && sl != rl) ||
            off + OC_CHUNK_HEAD + sl > s->end ||
            pread(s->fd, s->z, sl, (off_t)(off + OC_CHUNK_HEAD)) != (ssize_t)sl ||
            cdr_crc32(0, s->z, sl) != cdr_le32(c + 9))
            return -1;
        off += OC_CHUNK_HEAD + sl;
        total += rl;
        chunks++;
    }
    if (total != cdr_le64(f + 8) || chunks != cdr_le32(f + 16))
        return -1;
    s->off = OC_HEAD;
    if (!(s->in = ocin_new(s)) && !(s->raw = s->own = malloc(OC_CHUNK)))
        return -1;
    return 0;
}

/* ---- entries as a stream hands them over ---------------------------------- */

typedef struct head {
    src *s;
    int delta, has, section;
    okey k;
    uint64_t from_seq; /* delta: first seq replaced (NO_SEQ: none) */
    int withdrawn;
} head;

/* The next entry of the section, or none (has = 0) at its end. */
static int head_next(head *e, cdr_month m)
{
    e->has = 0;
    unsigned t = src_u8(e->s);
    if (e->s->bad)
        return -1;
    if (t == T_END)
        return 0;
    if (t != T_ENTRY)
        return e->s->bad = 1, -1;
    unsigned char h[8];
    src_get(e->s, h, 8);
    e->k.h = cdr_le64(h);
    e->k.ml = (unsigned char)src_u8(e->s);
    src_get(e->s, e->k.ms, e->k.ml);
    e->k.m = m;
    if (e->delta) {
        unsigned char mb[4];
        src_get(e->s, mb, 4);
        e->k.m = (cdr_month)cdr_le32(mb);
        uint64_t f = src_varint(e->s);
        e->from_seq = f ? f - 1 : NO_SEQ;
        e->withdrawn = (int)src_u8(e->s);
    }
    if (e->s->bad)
        return -1;
    e->has = 1;
    return 0;
}

/* The entry's next row into r (1), or its end (0). */
static int head_row(head *e, orow *r)
{
    unsigned t = src_u8(e->s);
    if (e->s->bad || t == T_ENTRY_END)
        return e->s->bad ? -1 : 0;
    if (t != T_ROW)
        return e->s->bad = 1, -1;
    r->seq = src_varint(e->s);
    for (int i = 0; i < CDR_OC_NUMS; i++)
        r->num[i] = cdr_unzz(src_varint(e->s));
    uint64_t len = src_varint(e->s);
    if (e->s->bad || len > ((uint64_t)1 << 30))
        return e->s->bad = 1, -1;
    r->len = (size_t)len;
    if (!e->s->fp && len <= e->s->n - e->s->pos) { /* in the chunk: not copied */
        r->text = (const char *)e->s->raw + e->s->pos;
        e->s->pos += r->len;
        return 1;
    }
    if (len > r->cap) {
        char *t2 = realloc(r->buf, (size_t)len);
        if (!t2)
            return e->s->bad = 1, -1;
        r->buf = t2;
        r->cap = (size_t)len;
    }
    r->text = r->buf;
    if (src_get(e->s, r->buf, r->len) != 0)
        return -1;
    return 1;
}

/* ---- the delta ------------------------------------------------------------- */

/* One month's news: a temporary file per section. */
typedef struct dmonth {
    cdr_month m;
    FILE *f[CDR_OC__SECTIONS];
    okey last; /* the last subscriber begun: they must come in order */
    int any;
} dmonth;

struct cdr_oc_delta {
    char *dir;
    dmonth *dm;
    size_t n_dm, cap_dm;
    dmonth *cur;
    okey k;
    uint64_t from_seq;
    int begun, open[CDR_OC__SECTIONS];
    int unsorted; /* a subscriber-month came out of order: not usable */
    cdr_err st;
};

static FILE *temp_file(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.outdelta-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    unlink(path);
    FILE *f = fdopen(fd, "w+b");
    if (!f)
        close(fd);
    return f;
}

cdr_err cdr_oc_delta_new(const char *dir, cdr_oc_delta **out)
{
    *out = NULL;
    cdr_oc_delta *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        return CDR_E_NOMEM;
    }
    *out = d;
    return CDR_OK;
}

void cdr_oc_delta_free(cdr_oc_delta *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_dm; i++)
        for (int s = 0; s < CDR_OC__SECTIONS; s++)
            if (d->dm[i].f[s])
                fclose(d->dm[i].f[s]);
    free(d->dm);
    free(d->dir);
    free(d);
}

cdr_err cdr_oc_delta_reset(cdr_oc_delta *d)
{
    for (size_t i = 0; i < d->n_dm; i++) {
        for (int s = 0; s < CDR_OC__SECTIONS; s++) {
            FILE *f = d->dm[i].f[s];
            if (fflush(f) != 0 || ftruncate(fileno(f), 0) != 0)
                return d->st = CDR_E_IO;
            rewind(f);
        }
        d->dm[i].any = 0;
    }
    memset(d->open, 0, sizeof d->open);
    d->begun = 0;
    d->unsorted = 0;
    d->cur = NULL;
    d->st = CDR_OK;
    return CDR_OK;
}

static dmonth *delta_month(cdr_oc_delta *d, cdr_month m)
{
    for (size_t i = 0; i < d->n_dm; i++)
        if (d->dm[i].m == m)
            return &d->dm[i];
    if (cdr_grow(&d->dm, &d->cap_dm, d->n_dm + 1, sizeof *d->dm, 4))
        return NULL;
    dmonth *x = &d->dm[d->n_dm];
    memset(x, 0, sizeof *x);
    x->m = m;
    for (int s = 0; s < CDR_OC__SECTIONS; s++)
        if (!(x->f[s] = temp_file(d->dir))) {
            for (int t = 0; t < s; t++)
                fclose(x->f[t]);
            return NULL;
        }
    d->n_dm++;
    return x;
}

static void d_put(cdr_oc_delta *d, int s, const void *p, size_t n)
{
    if (d->st == CDR_OK && n && fwrite(p, 1, n, d->cur->f[s]) != n)
        d->st = CDR_E_IO;
}

static void d_u8(cdr_oc_delta *d, int s, unsigned v)
{
    unsigned char c = (unsigned char)v;
    d_put(d, s, &c, 1);
}

static void d_varint(cdr_oc_delta *d, int s, uint64_t v)
{
    unsigned char b[10];
    d_put(d, s, b, (size_t)(cdr_put_varint(b, v) - b));
}

static void d_entry(cdr_oc_delta *d, int s, uint64_t from_seq, int withdrawn)
{
    unsigned char h[8], m[4];
    cdr_put_le64(h, d->k.h);
    cdr_put_le32(m, (uint32_t)d->k.m);
    d_u8(d, s, T_ENTRY);
    d_put(d, s, h, 8);
    d_u8(d, s, d->k.ml);
    d_put(d, s, d->k.ms, d->k.ml);
    d_put(d, s, m, 4);
    d_varint(d, s, from_seq == NO_SEQ ? 0 : from_seq + 1);
    d_u8(d, s, (unsigned)withdrawn);
    d->open[s] = 1;
}

cdr_err cdr_oc_delta_begin(cdr_oc_delta *d, uint64_t h, cdr_str msisdn, cdr_month m,
                           uint64_t from_seq)
{
    if (d->begun || msisdn.n > 255)
        return d->st = CDR_E_INTERNAL;
    d->k.h = h;
    d->k.m = m;
    d->k.ml = (unsigned char)msisdn.n;
    memcpy(d->k.ms, msisdn.p, msisdn.n);
    d->from_seq = from_seq;
    if (!d->cur || d->cur->m != m)
        d->cur = delta_month(d, m);
    if (!d->cur)
        return d->st = CDR_E_IO;
    if (d->cur->any && key_cmp(&d->cur->last, &d->k) >= 0)
        d->unsorted = 1;
    d->cur->last = d->k;
    d->cur->any = 1;
    d->begun = 1;
    return d->st;
}

cdr_err cdr_oc_delta_row(cdr_oc_delta *d, int s, uint64_t seq, const int64_t num[CDR_OC_NUMS],
                         const char *text, size_t len)
{
    if (!d->begun || s < 0 || s >= CDR_OC__SECTIONS)
        return d->st = CDR_E_INTERNAL;
    if (s == CDR_OC_CANDIDATES) {
        if (d->open[s])
            return d->st = CDR_E_INTERNAL; /* one candidate a subscriber-month */
        d_entry(d, s, NO_SEQ, 0);
    } else if (!d->open[s]) {
        d_entry(d, s, d->from_seq, 0);
    }
    d_u8(d, s, T_ROW);
    d_varint(d, s, seq);
    for (int i = 0; i < CDR_OC_NUMS; i++)
        d_varint(d, s, cdr_zz(num[i]));
    d_varint(d, s, len);
    d_put(d, s, text, len);
    return d->st;
}

cdr_err cdr_oc_delta_end(cdr_oc_delta *d, int candidate_withdrawn)
{
    if (!d->begun)
        return d->st = CDR_E_INTERNAL;
    for (int s = 0; s < CDR_OC__SECTIONS; s++) {
        if (s == CDR_OC_CANDIDATES && !d->open[s] && candidate_withdrawn)
            d_entry(d, s, NO_SEQ, 1);
        else if (s != CDR_OC_CANDIDATES && !d->open[s] && d->from_seq != NO_SEQ)
            d_entry(d, s, d->from_seq, 0); /* earlier rows replaced by none */
        if (d->open[s])
            d_u8(d, s, T_ENTRY_END);
        d->open[s] = 0;
    }
    d->begun = 0;
    return d->st;
}

/* ---- the merge ------------------------------------------------------------- */

typedef struct mctx {
    const cdr_oc_month *months;
    size_t n;
    ocw *w;
    cdr_oc_row_fn fn;
    void *user;
    orow row;
} mctx;

static size_t month_index(const mctx *x, cdr_month m)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->months[i].m == m)
            return i;
    return (size_t)-1;
}

static int give(mctx *x, int s, size_t mi, const okey *k)
{
    if (x->months[mi].rewrite) {
        ocw_row(&x->w[mi], s, k, &x->row);
        if (x->w[mi].st != CDR_OK)
            return -1;
    }
    if (!x->months[mi].report || !x->fn)
        return 0;
    cdr_oc_row r = {s, k->m, {k->ms, k->ml}, {0}, x->row.text, x->row.len};
    memcpy(r.num, x->row.num, sizeof r.num);
    return x->fn(&r, x->user) ? -2 : 0;
}

/* One section: every month's entries and the delta's, in key order. */
static cdr_err merge_section(mctx *x, int s, head *old, head *dl)
{
    for (;;) {
        const okey *k = NULL;
        for (size_t i = 0; i < x->n; i++) {
            if (old[i].has && (!k || key_cmp(&old[i].k, k) < 0))
                k = &old[i].k;
            if (dl[i].has && (!k || key_cmp(&dl[i].k, k) < 0))
                k = &dl[i].k;
        }
        if (!k)
            return CDR_OK;
        okey key = *k;
        size_t mi = month_index(x, key.m);
        if (mi == (size_t)-1)
            return CDR_E_INTERNAL;
        head *o = old[mi].has && key_cmp(&old[mi].k, &key) == 0 ? &old[mi] : NULL;
        head *d = dl[mi].has && key_cmp(&dl[mi].k, &key) == 0 ? &dl[mi] : NULL;
        int rc;
        if (o) {
            while ((rc = head_row(o, &x->row)) == 1) {
                int keep = !d || (s != CDR_OC_CANDIDATES && x->row.seq < d->from_seq);
                if (keep && (rc = give(x, s, mi, &key)) != 0)
                    return rc == -2 ? CDR_E_INTERRUPTED : CDR_E_IO;
            }
            if (rc < 0 || head_next(o, key.m) != 0)
                return CDR_E_PARSE;
        }
        if (d) {
            while ((rc = head_row(d, &x->row)) == 1)
                if ((rc = give(x, s, mi, &key)) != 0)
                    return rc == -2 ? CDR_E_INTERRUPTED : CDR_E_IO;
            if (rc < 0 || head_next(d, key.m) != 0)
                return CDR_E_IO;
        }
    }
}

/* What a merge holds, month by month. */
typedef struct mstate {
    src *os, *ds; /* each month's file; its delta */
    head *old, *dl;
    dmonth **dm;  /* its news, or NULL */
    ocw *w;       /* its next file, when written again */
} mstate;

static void mstate_free(mstate *g, size_t n)
{
    for (size_t i = 0; g->os && i < n; i++)
        src_close(&g->os[i]);
    for (size_t i = 0; g->w && i < n; i++)
        ocw_free(&g->w[i]);
    free(g->os);
    free(g->ds);
    free(g->old);
    free(g->dl);
    free(g->dm);
    free(g->w);
}

static cdr_err mstate_new(mstate *g, size_t n)
{
    g->os = calloc(n + 1, sizeof *g->os);
    g->ds = calloc(n + 1, sizeof *g->ds);
    g->old = calloc(n + 1, sizeof *g->old);
    g->dl = calloc(n + 1, sizeof *g->dl);
    g->dm = calloc(n + 1, sizeof *g->dm);
    g->w = calloc(n + 1, sizeof *g->w);
    if (!g->os || !g->ds || !g->old || !g->dl || !g->dm || !g->w)
        return CDR_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        g->os[i].fd = g->ds[i].fd = g->w[i].out.fd = -1;
    return CDR_OK;
}

/* Whether the cache can serve: the news in order, each month of it merged
 * and written again, every month's file present and whole under its token.
 * CDR_E_NOTFOUND (and why in err) when not. */
static cdr_err merge_usable(mstate *g, const char *dir, const cdr_oc_month *months, size_t n,
                            const cdr_oc_delta *d, char *err, size_t errlen)
{
    const char *why = NULL;
    if (d->unsorted || d->begun || d->st != CDR_OK)
        why = "the run's changes are not in the outputs' order";
    for (size_t k = 0; !why && k < d->n_dm; k++) {
        size_t i = 0;
        while (i < n && months[i].m != d->dm[k].m)
            i++;
        if (i == n || !months[i].rewrite)
            why = "the run changed a month it does not write";
        else
            g->dm[i] = &d->dm[k];
    }
    for (size_t i = 0; !why && i < n; i++) {
        if (!months[i].token)
            why = "no outputs cache for a month";
        else if (*months[i].token &&
                 src_open_cache(&g->os[i], dir, months[i].m, months[i].token) != 0)
            why = "the outputs cache of a month is missing or damaged";
    }
    if (!why)
        return CDR_OK;
    cdr_seterr(err, errlen, "%s", why);
    return CDR_E_NOTFOUND;
}

/* Each month's news ends its sections as a file's do, to be read back. */
static cdr_err delta_close(cdr_oc_delta *d, dmonth **dm, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d->cur = dm[i];
        for (int s = 0; dm[i] && s < CDR_OC__SECTIONS; s++) {
            d_u8(d, s, T_END);
            if (d->st != CDR_OK || fflush(dm[i]->f[s]) != 0)
                return d->st = CDR_E_IO;
        }
    }
    d->cur = NULL;
    return CDR_OK;
}

/* Section s of every month: the heads of its files and news, then the merge. */
static cdr_err merge_one(mctx *x, mstate *g, int s)
{
    const cdr_oc_month *months = x->months;
    for (size_t i = 0; i < x->n; i++) {
        g->old[i] = (head){&g->os[i], 0, 0, s, {0}, NO_SEQ, 0};
        if (*months[i].token && head_next(&g->old[i], months[i].m) != 0)
            return CDR_E_PARSE;
        g->dl[i] = (head){&g->ds[i], 1, 0, s, {0}, NO_SEQ, 0};
        if (g->dm[i]) {
            rewind(g->dm[i]->f[s]);
            g->ds[i].fp = g->dm[i]->f[s];
            if (head_next(&g->dl[i], months[i].m) != 0)
                return CDR_E_IO;
        }
    }
    return merge_section(x, s, g->old, g->dl);
}

struct cdr_oc_merger {
    char *dir;
    cdr_oc_month *months;
    size_t n;
    mstate g;
    char (*tokens)[CDR_OC_TOKEN_LEN + 1]; /* months[i].token's copies */
    char token[CDR_OC_TOKEN_LEN + 1];     /* the next files' */
    int finished;                     /* every next file written whole */
};

void cdr_oc_merge_free(cdr_oc_merger *mg)
{
    if (!mg)
        return;
    mstate_free(&mg->g, mg->n);
    for (size_t i = 0; !mg->finished && mg->months && i < mg->n; i++)
        if (mg->months[i].rewrite)
            cdr_oc_discard(mg->dir, &mg->months[i].m, 1);
    free(mg->months);
    free(mg->tokens);
    free(mg->dir);
    free(mg);
}

cdr_err cdr_oc_merge_open(const char *dir, const cdr_oc_month *months, size_t n,
                          const char *new_token, cdr_oc_delta *d, cdr_oc_merger **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    cdr_oc_merger *mg = calloc(1, sizeof *mg);
    if (!mg)
        return CDR_E_NOMEM;
    mg->n = n;
    mg->dir = strdup(dir);
    mg->months = calloc(n + 1, sizeof *months);
    mg->tokens = calloc(n + 1, sizeof *mg->tokens);
    cdr_err e = !mg->dir || !mg->months || !mg->tokens ? CDR_E_NOMEM : mstate_new(&mg->g, n);
    for (size_t i = 0; e == CDR_OK && i < n; i++) { /* (the caller's may go before _rows) */
        mg->months[i] = months[i];
        if (months[i].token) {
            snprintf(mg->tokens[i], sizeof mg->tokens[i], "%s", months[i].token);
            mg->months[i].token = mg->tokens[i];
        }
    }
    snprintf(mg->token, sizeof mg->token, "%s", new_token);
    if (e == CDR_OK && (e = merge_usable(&mg->g, dir, months, n, d, err, errlen)) == CDR_OK &&
        (e = delta_close(d, mg->g.dm, n)) != CDR_OK)
        cdr_seterr(err, errlen, "cannot read back the run's changes in %s", dir);
    for (size_t i = 0; e == CDR_OK && i < n; i++)
        if (months[i].rewrite && (e = ocw_open(&mg->g.w[i], dir, months[i].m, new_token)) != CDR_OK)
            cdr_seterr(err, errlen, "cannot write the outputs cache in %s: %s", dir,
                       strerror(errno));
    if (e != CDR_OK) {
        cdr_oc_merge_free(mg);
        return e;
    }
    *out = mg;
    return CDR_OK;
}

uint64_t cdr_oc_merge_size(const cdr_oc_merger *mg)
{
    uint64_t n = 0;
    for (size_t i = 0; i < mg->n; i++)
        if (mg->g.os[i].end > OC_HEAD)
            n += mg->g.os[i].end - OC_HEAD;
    return n;
}

cdr_err cdr_oc_merge_rows(cdr_oc_merger *mg, cdr_oc_row_fn fn, void *user, char *err,
                          size_t errlen)
{
    const cdr_oc_month *months = mg->months;
    size_t n = mg->n;
    mctx x = {months, n, mg->g.w, fn, user, {0}};
    cdr_err e = CDR_OK;
    for (int s = 0; e == CDR_OK && s < CDR_OC__SECTIONS; s++)
        if ((e = merge_one(&x, &mg->g, s)) != CDR_OK)
            cdr_seterr(err, errlen, "outputs cache: %s",
                       e == CDR_E_PARSE ? "a month's file is damaged"
                       : e == CDR_E_IO  ? "cannot read or write it"
                                        : "stopped");
    for (size_t i = 0; e == CDR_OK && i < n; i++)
        if (months[i].rewrite && (e = ocw_finish(&mg->g.w[i], mg->token)) != CDR_OK)
            cdr_seterr(err, errlen, "cannot write the outputs cache in %s", mg->dir);
    free(x.row.buf);
    mg->finished = e == CDR_OK;
    return e;
}

cdr_err cdr_oc_merge(const char *dir, const cdr_oc_month *months, size_t n,
                     const char *new_token, cdr_oc_delta *d, cdr_oc_row_fn fn, void *user,
                     char *err, size_t errlen)
{
    cdr_oc_merger *mg;
    cdr_err e = cdr_oc_merge_open(dir, months, n, new_token, d, &mg, err, errlen);
    if (e == CDR_OK)
        e = cdr_oc_merge_rows(mg, fn, user, err, errlen);
    cdr_oc_merge_free(mg);
    return e;
}

/* ---- files from the database ------------------------------------------------- */

struct cdr_oc_build {
    char *dir;
    cdr_month *m;
    ocw *w;
    size_t n;
    char token[CDR_OC_TOKEN_LEN + 1];
};

cdr_err cdr_oc_build_new(const char *dir, const cdr_month *months, size_t n, const char *token,
                         cdr_oc_build **out)
{
    *out = NULL;
    cdr_oc_build *b = calloc(1, sizeof *b);
    if (!b)
        return CDR_E_NOMEM;
    b->dir = strdup(dir);
    b->m = malloc((n + 1) * sizeof *b->m);
    b->w = calloc(n + 1, sizeof *b->w);
    if (!b->dir || !b->m || !b->w) {
        cdr_oc_build_free(b);
        return CDR_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        b->w[i].out.fd = -1;
    memcpy(b->token, token, CDR_OC_TOKEN_LEN);
    b->n = n;
    memcpy(b->m, months, n * sizeof *months);
    for (size_t i = 0; i < n; i++) {
        cdr_err e = ocw_open(&b->w[i], dir, months[i], token);
        if (e != CDR_OK) {
            cdr_oc_build_free(b);
            return e;
        }
    }
    *out = b;
    return CDR_OK;
}

cdr_err cdr_oc_build_row(cdr_oc_build *b, int s, uint64_t h, cdr_str msisdn, cdr_month m,
                         uint64_t seq, const int64_t num[CDR_OC_NUMS], const char *text,
                         size_t len)
{
    size_t i = 0;
    while (i < b->n && b->m[i] != m)
        i++;
    if (i == b->n || msisdn.n > 255 || s < 0 || s >= CDR_OC__SECTIONS || s < b->w[i].section)
        return CDR_E_INTERNAL;
    okey k;
    k.h = h;
    k.m = m;
    k.ml = (unsigned char)msisdn.n;
    memcpy(k.ms, msisdn.p, msisdn.n);
    orow r = {seq, {0}, text, len, NULL, 0};
    memcpy(r.num, num, sizeof r.num);
    ocw_row(&b->w[i], s, &k, &r);
    return b->w[i].st;
}

cdr_err cdr_oc_build_finish(cdr_oc_build *b, char *err, size_t errlen)
{
    for (size_t i = 0; i < b->n; i++) {
        cdr_err e = ocw_finish(&b->w[i], b->token);
        if (e != CDR_OK) {
            cdr_seterr(err, errlen, "cannot write the outputs cache in %s", b->dir);
            return e;
        }
    }
    return CDR_OK;
}

void cdr_oc_build_free(cdr_oc_build *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->w && i < b->n; i++)
        ocw_free(&b->w[i]);
    free(b->dir);
    free(b->m);
    free(b->w);
    free(b);
}

/* ---- placing --------------------------------------------------------------------- */

cdr_err cdr_oc_place(const char *dir, const cdr_month *months, size_t n, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char a[64], b[64], pa[4096], pb[4096];
        oc_name(months[i], 1, a, sizeof a);
        oc_name(months[i], 0, b, sizeof b);
        snprintf(pa, sizeof pa, "%s/%s", dir, a);
        snprintf(pb, sizeof pb, "%s/%s", dir, b);
        if (rename(pa, pb) != 0) {
            cdr_seterr(err, errlen, "cannot rename %s: %s", pa, strerror(errno));
            return CDR_E_IO;
        }
    }
    return CDR_OK;
}

void cdr_oc_discard(const char *dir, const cdr_month *months, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char a[64], pa[4096];
        oc_name(months[i], 1, a, sizeof a);
        snprintf(pa, sizeof pa, "%s/%s", dir, a);
        unlink(pa);
    }
}
