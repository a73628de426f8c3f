/*
 * cdrecon — streaming CDR reader (include/cdrecon/reader.h).
 *
 * Three layers:
 *   1. source: the stored bytes (plain, gzip multi-member, stdin) turned into
 *      decompressed chunks. A streaming inflate API is used directly so that
 *      a truncated or corrupt stream is always reported: ISA-L's igzip by
 *      default, zlib with opts.inflate (src/read/inflate_gz.h); the
 *      member boundaries, magic bytes, trailing garbage and truncation are
 *      decided here, the same way for both engines. With threads == 2 a
 *      producer thread reads and inflates into a ring of NSLOT buffers while
 *      the calling thread parses.
 *   2. splitter: chunks into physical lines (memchr '\n'), with line numbers
 *      and offsets; a line that crosses a chunk is joined in a carry buffer
 *      bounded by max_row; a longer line is streamed without buffering.
 *   3. rows: a line without '"' or CR is split on ',' directly (fast path);
 *      every other line goes through libcsv in strict mode. A quoted field may
 *      span lines. A complete row is checked (field count, NUL, UTF-8,
 *      lengths) and typed per CONTRACT.md, then passed to on_row or on_reject.
 *
 * The library never prints. Memory is bounded: NSLOT * buf_size + in_buf_size
 * + a few buffers of max_row bytes, whatever the input.
 */
#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "cdrecon/reader.h"
#include "swar.h"
#include "grow.h"
#include "inflate_gz.h"
#include "profile_int.h"
#include "sha256.h"

#define NSLOT 4
#define PROGRESS_STEP (16u << 20)
#define MAX_COLUMNS 4096
#define QUOTE_MAX 60
#define INT_CAP 1000000000000000LL /* 10^15 */

static cdr_inflate default_inflate = CDR_INFLATE_ISAL;

void cdr_reader_set_inflate(cdr_inflate e)
{
    default_inflate = e;
}

void cdr_reader_opts_init(cdr_reader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->buf_size = 4u << 20;
    o->max_field = 64u << 10;
    o->max_row = 1u << 20;
    o->threads = 2;
    o->inflate = default_inflate;
}

/* ================================================================== */
/* 1. Source                                                            */

typedef struct source {
    int fd;
    int own_fd;
    int gzip;
    int named_gz;
    cdr_gz gz;
    int gz_ready;
    uint64_t member_out; /* bytes decoded from the current member */
    uint64_t hdr_pos;    /* next header byte of the current member to check */
    unsigned char *in;
    size_t in_cap;
    size_t pend_off, pend_len; /* plain: sniffed bytes not yet delivered */
    int eof;
    uint64_t in_read;      /* stored bytes read so far */
    uint64_t member_start; /* compressed offset of the current gzip member */
    uint64_t members;      /* gzip members completed */
    int want_sha;
    cdr_sha256 sha;
    int want_csha;         /* gzip: hash the decompressed bytes too */
    cdr_sha256 csha;
    cdr_err err;
    uint64_t err_off;
    char msg[256];
} source;

static cdr_err src_fail(source *s, cdr_err e, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cdr_err src_fail(source *s, cdr_err e, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    s->err = e;
    s->err_off = off;
    return e;
}

/* read() once into buf; 0 at end of file. */
static cdr_err src_read(source *s, unsigned char *buf, size_t cap, size_t *got)
{
    ssize_t n;
    do
        n = read(s->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return src_fail(s, CDR_E_IO, s->in_read, "read error at offset %llu: %s",
                        (unsigned long long)s->in_read, strerror(errno));
    if (n == 0)
        s->eof = 1;
    if (s->want_sha && n > 0)
        cdr_sha256_update(&s->sha, buf, (size_t)n);
    s->in_read += (uint64_t)n;
    *got = (size_t)n;
    return CDR_OK;
}

static int ends_with_gz(const char *p)
{
    size_t n = strlen(p);
    return n >= 3 && strcasecmp(p + n - 3, ".gz") == 0;
}

static cdr_err src_open(source *s, const char *path, const cdr_reader_opts *o, uint64_t *size)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->want_sha = o->want_sha256;
    if (s->want_sha)
        cdr_sha256_init(&s->sha);
    s->want_csha = o->want_content_sha256;
    cdr_sha256_init(&s->csha);
    s->in_cap = o->in_buf_size ? o->in_buf_size : 256u << 10;
    s->in = malloc(s->in_cap < 2 ? 2 : s->in_cap);
    if (!s->in)
        return src_fail(s, CDR_E_NOMEM, 0, "out of memory");
    if (strcmp(path, "-") == 0) {
        s->fd = 0;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0)
            return src_fail(s, CDR_E_IO, 0, "cannot open: %s", strerror(errno));
        s->own_fd = 1;
        s->named_gz = ends_with_gz(path);
    }
    struct stat stt;
    if (fstat(s->fd, &stt) == 0) {
        if (S_ISDIR(stt.st_mode))
            return src_fail(s, CDR_E_IO, 0, "is a directory");
        if (S_ISREG(stt.st_mode))
            *size = (uint64_t)stt.st_size;
    }
    /* Sniff the first two bytes. */
    size_t have = 0;
    while (have < 2 && !s->eof) {
        size_t got;
        cdr_err e = src_read(s, s->in + have, (s->in_cap < 2 ? 2 : s->in_cap) - have, &got);
        if (e)
            return e;
        have += got;
    }
    int magic = have >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b;
    if (s->named_gz && have == 1 && s->in[0] == 0x1f)
        return src_fail(s, CDR_E_GZIP, 1, "truncated gzip stream at compressed offset 1");
    if (s->named_gz && !magic)
        return src_fail(s, CDR_E_GZIP, 0, "not gzip: the file is named .gz but does not start "
                                          "with the gzip magic bytes 1f 8b");
    if (magic) {
        s->gzip = 1;
        s->gz_ready = 1;
        if (cdr_gz_init(&s->gz, o->inflate))
            return src_fail(s, CDR_E_NOMEM, 0, "out of memory");
        s->gz.next_in = s->in;
        s->gz.avail_in = have;
    } else {
        s->pend_off = 0;
        s->pend_len = have;
    }
    return CDR_OK;
}

static void src_close(source *s)
{
    if (s->gz_ready)
        cdr_gz_end(&s->gz);
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    free(s->in);
    s->in = NULL;
}

/* src_fill of a file that is not gzip: the bytes sniffed, then reads. */
static cdr_err src_fill_plain(source *s, unsigned char *out, size_t cap, size_t *got)
{
    while (*got < cap) {
        if (s->pend_len) {
            size_t k = s->pend_len < cap - *got ? s->pend_len : cap - *got;
            memcpy(out + *got, s->in + s->pend_off, k);
            s->pend_off += k;
            s->pend_len -= k;
            *got += k;
            continue;
        }
        if (s->eof)
            break;
        size_t n;
        cdr_err e = src_read(s, out + *got, cap - *got, &n);
        if (e)
            return e;
        *got += n;
    }
    return CDR_OK;
}

/* The fixed header bytes of each gzip member (magic, method, flags), as
 * the input passes them. */
static cdr_err gz_member_header(source *s)
{
    cdr_gz *z = &s->gz;
    uint64_t pos = s->in_read - z->avail_in;
    while (s->hdr_pos < s->member_start + 4 && s->hdr_pos < pos + z->avail_in) {
        unsigned char c = z->next_in[s->hdr_pos - pos];
        uint64_t k = s->hdr_pos - s->member_start;
        if (k < 2 && c != (k == 0 ? 0x1f : 0x8b))
            return src_fail(s, CDR_E_GZIP, s->member_start,
                            "trailing garbage after gzip member at compressed offset %llu",
                            (unsigned long long)s->member_start);
        if ((k == 2 && c != 8) || (k == 3 && (c & 0xE0)))
            return src_fail(s, CDR_E_GZIP, s->hdr_pos,
                            "corrupt gzip data at compressed offset %llu: %s",
                            (unsigned long long)s->hdr_pos,
                            k == 2 ? "unknown compression method" : "unknown header flags set");
        s->hdr_pos++;
    }
    return CDR_OK;
}

/* Why inflate stopped with r (CDR_GZ_OK: without progress), at the
 * compressed offset nearest the fault. */
static cdr_err gz_stopped(source *s, int r)
{
    cdr_gz *z = &s->gz;
    uint64_t off = s->in_read - z->avail_in;
    if (r == CDR_GZ_OK) {
        /* With input left, the engine is stuck (never seen). */
        if (z->avail_in > 0)
            return src_fail(s, CDR_E_GZIP, off,
                            "corrupt gzip data at compressed offset %llu: inflate is stuck",
                            (unsigned long long)off);
        /* Here s->eof: all input given and nothing more comes out. */
        return src_fail(s, CDR_E_GZIP, s->in_read,
                        "truncated gzip stream at compressed offset %llu",
                        (unsigned long long)s->in_read);
    }
    off = z->back < off - s->member_start ? off - z->back : s->member_start;
    if (r == CDR_GZ_NOMEM)
        return src_fail(s, CDR_E_NOMEM, off, "out of memory in inflate");
    if (s->members > 0 && s->member_out == 0)
        return src_fail(s, CDR_E_GZIP, s->member_start,
                        "trailing garbage after gzip member at compressed offset %llu",
                        (unsigned long long)s->member_start);
    return src_fail(s, CDR_E_GZIP, off, "corrupt gzip data at compressed offset %llu: %s",
                    (unsigned long long)off, z->msg);
}

/* Fill out[0..cap) with decompressed bytes; *got == 0 with CDR_OK means the
 * end. On an error, the bytes produced before it are still in *got. Once
 * a buffer (not per record). */
static cdr_err src_fill(source *s, unsigned char *out, size_t cap, size_t *got)
{
    *got = 0;
    if (s->err)
        return s->err;
    if (!s->gzip)
        return src_fill_plain(s, out, cap, got);
    cdr_gz *z = &s->gz;
    z->next_out = out;
    z->avail_out = cap;
    cdr_err e = CDR_OK;
    while (z->avail_out > 0) {
        if (z->avail_in == 0 && !s->eof) {
            size_t n;
            if ((e = src_read(s, s->in, s->in_cap, &n)) != CDR_OK)
                break;
            z->next_in = s->in;
            z->avail_in = n;
            continue;
        }
        if (z->avail_in == 0 && s->members > 0 && s->member_start == s->in_read)
            break; /* clean end right after a member */
        if (z->avail_in > 0 && s->hdr_pos < s->member_start + 4 &&
            (e = gz_member_header(s)) != CDR_OK)
            break;
        size_t in0 = z->avail_in, out0 = z->avail_out;
        int r = cdr_gz_run(z);
        s->member_out += out0 - z->avail_out;
        if (r == CDR_GZ_END) {
            s->members++;
            s->member_start = s->in_read - z->avail_in;
            s->hdr_pos = s->member_start;
            s->member_out = 0;
            cdr_gz_reset(z);
            continue;
        }
        if (r == CDR_GZ_OK && (in0 != z->avail_in || out0 != z->avail_out))
            continue;
        e = gz_stopped(s, r);
        break;
    }
    *got = cap - z->avail_out;
    return e;
}

/* ------------------------------------------------------------------ */
/* Producer thread and ring of buffers.                                  */

typedef struct ring {
    source *src;
    size_t cap;
    unsigned char *buf[NSLOT];
    size_t len[NSLOT];
    uint64_t in_bytes[NSLOT];
    unsigned head, count;
    int done, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv_full, cv_free;
    pthread_t th;
    int threaded;
} ring;

static void *producer(void *arg)
{
    ring *g = arg;
    for (;;) {
        pthread_mutex_lock(&g->mu);
        while (g->count == NSLOT && !g->stop)
            pthread_cond_wait(&g->cv_free, &g->mu);
        if (g->stop) {
            pthread_mutex_unlock(&g->mu);
            break;
        }
        unsigned idx = (g->head + g->count) % NSLOT;
        pthread_mutex_unlock(&g->mu);

        size_t got = 0;
        cdr_err e = src_fill(g->src, g->buf[idx], g->cap, &got);
        if (g->src->want_csha && g->src->gzip && got)
            cdr_sha256_update(&g->src->csha, g->buf[idx], got); /* (on this thread: the
                                                                  * parser is the slower) */

        pthread_mutex_lock(&g->mu);
        g->len[idx] = got;
        g->in_bytes[idx] = g->src->in_read;
        if (got > 0)
            g->count++;
        if (got == 0 || e)
            g->done = 1;
        int fin = g->done;
        pthread_cond_signal(&g->cv_full);
        pthread_mutex_unlock(&g->mu);
        if (fin)
            break;
    }
    return NULL;
}

/* Next chunk for the parser: 1 with p and n set, 0 at the end (or error). */
static int ring_get(ring *g, unsigned char **p, size_t *n, uint64_t *in_bytes)
{
    if (!g->threaded) {
        if (g->done)
            return 0;
        size_t got = 0;
        cdr_err e = src_fill(g->src, g->buf[0], g->cap, &got);
        if (g->src->want_csha && g->src->gzip && got)
            cdr_sha256_update(&g->src->csha, g->buf[0], got);
        if (got == 0 || e)
            g->done = 1;
        *p = g->buf[0];
        *n = got;
        *in_bytes = g->src->in_read;
        return got > 0;
    }
    pthread_mutex_lock(&g->mu);
    while (g->count == 0 && !g->done)
        pthread_cond_wait(&g->cv_full, &g->mu);
    int have = g->count > 0;
    if (have) {
        *p = g->buf[g->head];
        *n = g->len[g->head];
        *in_bytes = g->in_bytes[g->head];
    }
    pthread_mutex_unlock(&g->mu);
    return have;
}

static void ring_release(ring *g)
{
    if (!g->threaded)
        return;
    pthread_mutex_lock(&g->mu);
    g->head = (g->head + 1) % NSLOT;
    g->count--;
    pthread_cond_signal(&g->cv_free);
    pthread_mutex_unlock(&g->mu);
}

static cdr_err ring_start(ring *g, source *s, size_t cap, int threads)
{
    memset(g, 0, sizeof *g);
    g->src = s;
    g->cap = cap;
    int nbuf = threads >= 2 ? NSLOT : 1;
    for (int i = 0; i < nbuf; i++)
        if (!(g->buf[i] = malloc(cap)))
            return CDR_E_NOMEM;
    if (threads < 2)
        return CDR_OK;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv_full, NULL);
    pthread_cond_init(&g->cv_free, NULL);
    if (pthread_create(&g->th, NULL, producer, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv_full);
        pthread_cond_destroy(&g->cv_free);
        return CDR_OK; /* fall back to one thread */
    }
    g->threaded = 1;
    return CDR_OK;
}

static void ring_stop(ring *g)
{
    if (g->threaded) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_broadcast(&g->cv_free);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th, NULL);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv_full);
        pthread_cond_destroy(&g->cv_free);
        g->threaded = 0;
    }
    for (int i = 0; i < NSLOT; i++) {
        free(g->buf[i]);
        g->buf[i] = NULL;
    }
}

/* ================================================================== */
/* Columns                                                              */

enum {
    C_RECORD_ID,
    C_MSISDN,
    C_SERVICE,
    C_DIRECTION,
    C_PEER,
    C_START_TIME,
    C_DURATION_S,
    C_BYTES,
    C_SMS_CHARS,
    C_SMS_REF,
    C_SMS_PART,
    C_SMS_PARTS,
    C_CALL_ID,
    C_PARTIAL_SEQ,
    C_BILLED,
    C__N
};

static const char *const col_names[C__N] = {
    "record_id", "msisdn",   "service",  "direction", "peer",
    "start_time", "duration_s", "bytes", "sms_chars", "sms_ref",
    "sms_part",  "sms_parts", "call_id", "partial_seq", "billed"};
static const int col_required[C__N] = {[C_RECORD_ID] = 1, [C_MSISDN] = 1, [C_SERVICE] = 1,
                                       [C_START_TIME] = 1, [C_BILLED] = 1};

/* ================================================================== */
/* 2+3. Splitter and rows                                               */

enum { M_NORMAL, M_CSV, M_SKIP };

typedef struct rd {
    const cdr_reader_opts *o;
    const char *path;
    uint32_t fidx;
    cdr_row_fn on_row;
    cdr_reject_fn on_reject;
    void *user;
    cdr_file_stats *st;
    int stop; /* header error or callback stop */
    cdr_err stop_err;

    /* splitter */
    uint64_t line_no;  /* lines begun */
    uint64_t line_off; /* offset of the current line start */
    char *carry;
    size_t carry_len, carry_cap;
    int over;            /* current physical line is longer than carry_cap */
    uint64_t over_len;   /* its length so far */
    unsigned over_quotes;
    size_t over_run, over_maxrun;
    uint64_t over_line, over_off;

    /* rows */
    int mode;
    uint64_t row_line, row_off;
    char *rowbuf; /* raw text of a row spanning lines, <= max_row */
    const char *lo; /* the current row's raw text, if its fields point into it (parse_uint) */
    size_t row_len;
    uint64_t row_total;
    unsigned skip_parity;
    size_t skip_maxrun;

    /* libcsv */
    struct csv_parser csv;
    int csv_ready;
    char *fbuf;
    size_t fbuf_len, fbuf_cap;
    size_t *foff, *flen;
    size_t nf, nf_cap;
    int csv_phase_content;
    int csv_rows;
    int csv_cr;     /* a row ended inside the line's content: bare CR */
    size_t csv_cr_field;

    /* fields of the current row */
    cdr_str *fields;
    size_t fields_cap;

    /* header */
    int have_header;
    size_t ncols;
    int known[C__N];
    int *col_of; /* per header column: C_* or -1 */
    int *extra_at; /* the header columns that are unknown (n_extra of them) */
    char *names_buf;
    cdr_str *names;
    cdr_str *extra_names;
    cdr_str *extra;
    size_t n_extra;

    uint64_t next_progress;
    char reason[512];

    /* input profile (NULL: the contract's layout) and its plan for this
     * file: each field's kind and column indexes, resolved at the header */
    const cdr_profile *prof;
    char sep;           /* the field separator */
    char quote;         /* '"' or 0 */
    unsigned char cls[256]; /* the fast path's byte classes for sep and quote */
    unsigned char pk[PF__N];
    int pcol[PF__N][PF_MAXREF];
    int pidx[PF__N];    /* a field of one column present in this file: it; else -1 */
    cdr_str pconst[PF__N];
    int type_col;       /* the record type's column, or -1 */
    const pf_type *cur_type; /* the current row's type line */
    char tbuf[160];     /* a date and a time column joined */
} rd;

static size_t quote_val(char *buf, size_t cap, const char *s, size_t n, int esc_high)
{
    size_t o = 0;
    int trunc = 0;
    if (n > QUOTE_MAX) {
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        trunc = 1;
    }
    buf[o++] = '\'';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (esc_high && c >= 0x80))
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
        else
            buf[o++] = (char)c;
    }
    if (trunc && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return o;
}

static const char *col_label(rd *r, size_t i, char *tmp, size_t cap)
{
    if (r->have_header && i < r->ncols) {
        const cdr_str *nm = &r->names[i];
        if (nm->n > 0 && nm->n < cap - 1) {
            memcpy(tmp, nm->p, nm->n);
            tmp[nm->n] = '\0';
            for (size_t k = 0; k < nm->n; k++)
                if ((unsigned char)tmp[k] < 0x20)
                    tmp[k] = '?';
            return tmp;
        }
    }
    snprintf(tmp, cap, "field %zu", i + 1);
    return tmp;
}

static int fail_header(rd *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_header(rd *r, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->st->message, sizeof r->st->message, fmt, ap);
    va_end(ap);
    r->st->status = CDR_E_HEADER;
    r->st->error_offset = off;
    r->stop = 1;
    r->stop_err = CDR_E_HEADER;
    return -1;
}

/* A row not read as a record (rejected or skipped), with r->reason, to
 * fn when there is one (its first CDR_REJECT_RAW_MAX bytes of raw_total);
 * fn's non-zero stops the file. */
static void pass_row(rd *r, cdr_reject_fn fn, const char *raw, size_t raw_n,
                     uint64_t raw_total, uint64_t line, uint64_t off)
{
    if (!fn)
        return;
    cdr_reject j;
    j.file_index = r->fidx;
    j.file = r->path;
    j.line = line;
    j.offset = off;
    j.reason = r->reason;
    j.raw.p = raw;
    j.raw.n = raw_n < CDR_REJECT_RAW_MAX ? raw_n : CDR_REJECT_RAW_MAX;
    j.raw_len = raw_total;
    if (fn(&j, r->user)) {
        r->stop = 1;
        r->stop_err = CDR_E_INTERRUPTED;
    }
}

/* A row that cannot be read: counted and passed to on_reject. */
static void reject(rd *r, const char *raw, size_t raw_n, uint64_t raw_total, uint64_t line,
                   uint64_t off)
{
    if (!r->have_header) {
        fail_header(r, off, "bad header row (line %llu): %s", (unsigned long long)line,
                    r->reason);
        return;
    }
    r->st->rows_read++;
    r->st->rows_rejected++;
    pass_row(r, r->on_reject, raw, raw_n, raw_total, line, off);
}

static int reasonf(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reasonf(rd *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    return -1;
}

/* "<what> <column> '<value>'<tail>" */
static int bad(rd *r, const char *what, int col, cdr_str v, const char *tail)
{
    char q[QUOTE_MAX * 4 + 16];
    quote_val(q, sizeof q, v.p, v.n, 0);
    if (strcmp(what, "out of range") == 0)
        return reasonf(r, "%s out of range %s%s", col_names[col], q, tail ? tail : "");
    return reasonf(r, "%s %s %s%s", what, col_names[col], q, tail ? tail : "");
}

/* ------------------------------------------------------------------ */
/* Field checks                                                          */

/* Index of the first byte of invalid UTF-8, or n if valid. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += len;
    }
    return n;
}

/* 0 ok; -1 not a plain digit string; -2 above 10^15. */
/* lo: where the row v lies in begins, or NULL (a field copied out of the
 * row, the libcsv path). With lo, 1 to 8 digits are read as one word
 * ending at the field's end - the bytes before it are the row's - with no
 * loop and no branch on the length (the loop's exit was mispredicted on
 * most numbers). */
static int parse_uint(cdr_str v, const char *lo, int64_t *out)
{
    if (v.n == 0)
        return -1;
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (lo && v.n <= 8 && (size_t)(v.p - lo) + v.n >= 8) {
        uint64_t x;
        memcpy(&x, v.p + v.n - 8, 8);
        /* the bytes before the field (the low ones) become leading zeros */
        uint64_t before = v.n == 8 ? 0 : ~0ull >> (8 * v.n);
        x = (x & ~before) | (0x3030303030303030ull & before);
        if (cdr_nondigit8(x))
            return -1;
        *out = (int64_t)cdr_digits8_value(x);
        return 0;
    }
#endif
    int64_t x = 0;
    int over = 0;
    for (size_t i = 0; i < v.n; i++) {
        unsigned d = (unsigned char)v.p[i] - '0';
        if (d > 9)
            return -1;
        if (!over) {
            x = x * 10 + d;
            if (x > INT_CAP)
                over = 1;
        }
    }
    if (over)
        return -2;
    *out = x;
    return 0;
}

_Static_assert(CDR_DURATION_MAX == 1000000000LL && CDR_SMS_CHARS_MAX == 1000000000LL &&
                   CDR_BYTES_MAX == INT_CAP,
               "the reject reasons below name the limits as 10^9 and 10^15");

static int want_uint(rd *r, int col, cdr_str v, int64_t *out, const char *svc)
{
    if (v.n == 0) {
        char tail[64];
        snprintf(tail, sizeof tail, " (required for %s)", svc);
        return bad(r, "missing", col, v, tail);
    }
    int e = parse_uint(v, r->lo, out);
    if (e == -1)
        return bad(r, "bad", col, v, " (not a whole number >= 0)");
    /* the usage limits that rating can compute (common.h, docs/rating.md) */
    if (col == C_BYTES ? e == -2 || *out > CDR_BYTES_MAX
                       : e == -2 || *out > (col == C_DURATION_S ? CDR_DURATION_MAX
                                                                : CDR_SMS_CHARS_MAX))
        return bad(r, "out of range", col, v, col == C_BYTES ? " (above 10^15)" : " (above 10^9)");
    return 0;
}

static int has_ctl(cdr_str v)
{
    for (size_t i = 0; i < v.n; i++)
        if ((unsigned char)v.p[i] < 0x20 || v.p[i] == 0x7f)
            return 1;
    return 0;
}

/* The bytes of every field: length, NUL, UTF-8. 0 = fine. (Inlined in both
 * callers: the contract's type_row keeps its code as it was.) */
static inline __attribute__((always_inline)) int check_fields(rd *r, const cdr_str *f, size_t raw_n, int check_bytes)
{
    char lab[128];
    /* (a field is never longer than the raw row it came from: a row within
     * max_field and of plain bytes needs no look at its fields here) */
    size_t nchk = check_bytes || raw_n > r->o->max_field ? r->ncols : 0;
    for (size_t i = 0; i < nchk; i++) {
        if (f[i].n > r->o->max_field)
            return reasonf(r, "field longer than %zu bytes in column %s (%zu bytes)",
                           r->o->max_field, col_label(r, i, lab, sizeof lab), f[i].n);
        if (!check_bytes)
            continue;
        const char *z = memchr(f[i].p, '\0', f[i].n);
        if (z)
            return reasonf(r, "NUL byte in column %s at byte %zu of the field",
                           col_label(r, i, lab, sizeof lab), (size_t)(z - f[i].p) + 1);
        size_t u = utf8_check((const unsigned char *)f[i].p, f[i].n);
        if (u != f[i].n) {
            char q[QUOTE_MAX * 4 + 16];
            quote_val(q, sizeof q, f[i].p, f[i].n, 1);
            return reasonf(r, "invalid UTF-8 in column %s at byte %zu of the field: %s",
                           col_label(r, i, lab, sizeof lab), u + 1, q);
        }
    }
    return 0;
}

/* Type a row whose field count matches the header. 0 = accepted. */
/* The steps of type_row, each 0 or -1 (the row rejected, its reason in
 * r). Always inlined: they run once per row, one function to the
 * compiler as before they were named (callgrind, scan of 300,000 rows:
 * the same instruction count). FLD: a contract column's field, or empty. */
static const cdr_str empty_str = {"", 0};
#define FLD(c) (r->known[c] >= 0 ? f[r->known[c]] : empty_str)

/* record_id and msisdn. */
static inline __attribute__((always_inline)) int tr_ids(rd *r, const cdr_str *f, cdr_row *row)
{
    cdr_str v;
    v = FLD(C_RECORD_ID);
    if (v.n == 0)
        return bad(r, "missing", C_RECORD_ID, v, NULL);
    if (has_ctl(v)) /* an id is shown, joined and compared: no control bytes */
        return bad(r, "bad", C_RECORD_ID, v, " (control character)");
    row->record_id = v;

    v = FLD(C_MSISDN);
    if (v.n == 0)
        return bad(r, "missing", C_MSISDN, v, NULL);
    if (cdr_number_normalise(v.p, v.n, &row->msisdn) != CDR_OK)
        return bad(r, "bad", C_MSISDN, v, " (not a phone number)");
    return 0;
}

/* service, direction, start_time and billed. */
static inline __attribute__((always_inline)) int tr_kind_time_money(rd *r, const cdr_str *f,
                                                                   cdr_row *row)
{
    cdr_str v;
    v = FLD(C_SERVICE);
    if (cdr_service_parse(v.p, v.n, &row->service) != CDR_OK)
        return bad(r, v.n ? "bad" : "missing", C_SERVICE, v,
                   " (expected voice, sms, data or vas)");

    v = FLD(C_DIRECTION);
    if (cdr_direction_parse(v.p, v.n, &row->direction) != CDR_OK)
        return bad(r, "bad", C_DIRECTION, v, " (expected mo or mt)");

    v = FLD(C_START_TIME);
    if (v.n == 0)
        return bad(r, "missing", C_START_TIME, v, NULL);
    if (cdr_time_parse(v.p, v.n, &row->start) != CDR_OK)
        return bad(r, "bad", C_START_TIME, v, " (expected YYYY-MM-DD HH:MM:SS)");

    v = FLD(C_BILLED);
    if (v.n == 0)
        return bad(r, "missing", C_BILLED, v, NULL);
    cdr_err me = cdr_money_parse(v.p, v.n, &row->billed);
    if (me == CDR_E_RANGE)
        return bad(r, "out of range", C_BILLED, v, " (more than 6 decimals or too large)");
    if (me != CDR_OK)
        return bad(r, "bad", C_BILLED, v, " (expected decimal yuan)");
    if (row->billed < 0)
        return bad(r, "negative", C_BILLED, v, NULL);
    return 0;
}

/* The service's usage (duration, SMS characters, bytes) and the peer. */
static inline __attribute__((always_inline)) int tr_usage(rd *r, const cdr_str *f,
                                                         cdr_row *row)
{
    cdr_str v;
    row->duration_s = -1;
    row->bytes = -1;
    row->sms_chars = -1;
    const char *svc = cdr_service_name(row->service);
    v = FLD(C_PEER);
    switch (row->service) {
    case CDR_SVC_VOICE:
    case CDR_SVC_SMS:
        if (row->service == CDR_SVC_VOICE) {
            if (want_uint(r, C_DURATION_S, FLD(C_DURATION_S), &row->duration_s, svc))
                return -1;
        } else if (want_uint(r, C_SMS_CHARS, FLD(C_SMS_CHARS), &row->sms_chars, svc)) {
            return -1;
        }
        if (v.n == 0) {
            char tail[64];
            snprintf(tail, sizeof tail, " (required for %s)", svc);
            return bad(r, "missing", C_PEER, v, tail);
        }
        if (cdr_number_normalise(v.p, v.n, &row->peer) != CDR_OK)
            return bad(r, "bad", C_PEER, v, " (not a phone number)");
        break;
    case CDR_SVC_DATA:
        if (want_uint(r, C_BYTES, FLD(C_BYTES), &row->bytes, svc))
            return -1;
        if (has_ctl(v))
            return bad(r, "bad", C_PEER, v, " (control character)");
        row->peer = v;
        break;
    case CDR_SVC_VAS:
        if (v.n == 0)
            return bad(r, "missing", C_PEER, v, " (SP service code, required for vas)");
        if (has_ctl(v))
            return bad(r, "bad", C_PEER, v, " (control character)");
        row->peer = v;
        break;
    }
    return 0;
}

/* sms_part / sms_parts, partial_seq, call_id and sms_ref. */
static inline __attribute__((always_inline)) int tr_parts(rd *r, const cdr_str *f,
                                                         cdr_row *row)
{
    cdr_str v;
    cdr_str sp = FLD(C_SMS_PART), sps = FLD(C_SMS_PARTS);
    if (sp.n || sps.n) {
        int64_t a, b;
        if (!sp.n)
            return bad(r, "missing", C_SMS_PART, sp, " (sms_parts is given)");
        if (!sps.n)
            return bad(r, "missing", C_SMS_PARTS, sps, " (sms_part is given)");
        if (parse_uint(sp, r->lo, &a) || a < 1 || a > INT32_MAX)
            return bad(r, "bad", C_SMS_PART, sp, " (expected 1..sms_parts)");
        if (parse_uint(sps, r->lo, &b) || b < 1 || b > INT32_MAX)
            return bad(r, "bad", C_SMS_PARTS, sps, " (expected a count >= 1)");
        if (a > b)
            return bad(r, "bad", C_SMS_PART, sp, " (greater than sms_parts)");
        row->sms_part = (int32_t)a;
        row->sms_parts = (int32_t)b;
    }
    v = FLD(C_PARTIAL_SEQ);
    if (v.n) {
        int e = parse_uint(v, r->lo, &row->partial_seq);
        if (e == -1)
            return bad(r, "bad", C_PARTIAL_SEQ, v, " (not a whole number >= 0)");
        if (e == -2)
            return bad(r, "out of range", C_PARTIAL_SEQ, v, " (above 10^15)");
    }
    row->call_id = FLD(C_CALL_ID);
    row->sms_ref = FLD(C_SMS_REF);
    if (has_ctl(row->call_id))
        return bad(r, "bad", C_CALL_ID, row->call_id, " (control character)");
    if (has_ctl(row->sms_ref))
        return bad(r, "bad", C_SMS_REF, row->sms_ref, " (control character)");
    return 0;
}
#undef FLD

/* The unknown columns of the row, by name (both paths). */
static inline __attribute__((always_inline)) void row_extras(rd *r, const cdr_str *f,
                                                            cdr_row *row)
{
    for (size_t k = 0; k < r->n_extra; k++)
        r->extra[k] = f[r->extra_at[k]];
    row->extra = r->extra;
    row->extra_names = r->extra_names;
    row->n_extra = (uint32_t)r->n_extra;
}

/* The row's fields checked (check_fields) and the optional ones cleared:
 * the start of both paths. Every field is set by the steps (the caller
 * sets the provenance); no memset of the whole row: gcc makes it a `rep
 * stos`, whose start-up cost was a fifth of type_row's time in a
 * profile. */
static inline __attribute__((always_inline)) int row_begin(rd *r, const cdr_str *f, size_t raw_n,
                                                          int check_bytes, cdr_row *row)
{
    if (check_fields(r, f, raw_n, check_bytes))
        return -1;
    row->sms_part = 0;
    row->sms_parts = 0;
    row->partial_seq = 0;
    row->peer = empty_str;
    return 0;
}

static int type_row(rd *r, const cdr_str *f, size_t raw_n, int check_bytes, cdr_row *row)
{
    if (row_begin(r, f, raw_n, check_bytes, row) || tr_ids(r, f, row) ||
        tr_kind_time_money(r, f, row) || tr_usage(r, f, row) || tr_parts(r, f, row))
        return -1;
    row_extras(r, f, row);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rows through an input profile (profile.h, docs/profiles.md)          */

/* A skipped row: read and counted, passed to on_skip. */
static void skip_row(rd *r, const char *raw, size_t raw_n, uint64_t line, uint64_t off)
{
    r->st->rows_read++;
    r->st->rows_skipped++;
    pass_row(r, r->o->on_skip, raw, raw_n, raw_n, line, off);
}

/* A line that starts with one of the profile's skip prefixes. */
static int skip_prefixed(rd *r, const char *p, size_t n, uint64_t line, uint64_t off)
{
    const cdr_profile *pr = r->prof;
    for (int i = 0; i < pr->n_skip; i++)
        if (n >= pr->skip_n[i] && memcmp(p, pr->skip[i], pr->skip_n[i]) == 0) {
            char q[QUOTE_MAX * 4 + 16];
            quote_val(q, sizeof q, pr->skip[i], pr->skip_n[i], 0);
            reasonf(r, "skipped: the line starts with %s (skip_prefix)", q);
            skip_row(r, p, n, line, off);
            return 1;
        }
    return 0;
}

/* The value of a field of this row: its column, its constant, or the first
 * of its columns that is not empty. *src: the column, -1 for none (then
 * the value is not in the row: parse_uint must not look before it). */
static inline cdr_str pval(rd *r, const cdr_str *f, int fld, int *src)
{
    int c = r->pidx[fld];
    if (c >= 0) { /* the usual field: one column (a branch the same way every row) */
        *src = c;
        return f[c];
    }
    switch (r->pk[fld]) {
    case PK_COL:
        c = r->pcol[fld][0];
        *src = c;
        return c >= 0 ? f[c] : empty_str;
    case PK_CONST:
        *src = -1;
        return r->pconst[fld];
    case PK_FIRST:
        for (int i = 0; i < r->prof->f[fld].nref; i++) {
            c = r->pcol[fld][i];
            if (c >= 0 && f[c].n) {
                *src = c;
                return f[c];
            }
        }
        *src = r->pcol[fld][0];
        return empty_str;
    default:
        *src = -1;
        return empty_str;
    }
}

/* "<what> <field> '<value>'[ in column C]<tail>": the column is named when
 * it is not the field's own name. */
static __attribute__((cold, noinline)) int pbad(rd *r, const char *what, int fld, cdr_str v,
                                                int src, const char *tail)
{
    char q[QUOTE_MAX * 4 + 16], where[200] = "", lab[128];
    const char *fname = cdr_pfield_name((cdr_pfield)fld);
    quote_val(q, sizeof q, v.p, v.n, 0);
    if (src >= 0) {
        cdr_str fn = {fname, strlen(fname)};
        const cdr_str *nm = (size_t)src < r->ncols ? &r->names[src] : NULL;
        if (!nm || nm->n != fn.n || strncasecmp(nm->p, fn.p, fn.n) != 0)
            snprintf(where, sizeof where, " in column %s", col_label(r, (size_t)src, lab, sizeof lab));
    }
    if (strcmp(what, "out of range") == 0)
        return reasonf(r, "%s out of range %s%s%s", fname, q, where, tail ? tail : "");
    return reasonf(r, "%s %s %s%s%s", what, fname, q, where, tail ? tail : "");
}

/* A whole number field (duration_s, bytes, sms_chars): one column, a
 * constant, or a sum; then its unit. */
static __attribute__((cold, noinline)) int pmissing(rd *r, int fld, cdr_str v, int src,
                                                    const char *svc)
{
    char tail[64];
    snprintf(tail, sizeof tail, " (required for %s)", svc);
    return pbad(r, "missing", fld, v, src, tail);
}

static inline int puint(rd *r, const cdr_str *f, int fld, const char *svc, int64_t *out)
{
    int src = -1;
    int64_t x = 0;
    cdr_str v = empty_str; /* the (last) value, for a message about the whole */
    if (r->pk[fld] == PK_SUM) {
        for (int i = 0; i < r->prof->f[fld].nref; i++) {
            int c = r->pcol[fld][i];
            int64_t y;
            v = c >= 0 ? f[c] : empty_str;
            src = c;
            if (v.n == 0)
                return pmissing(r, fld, v, c, svc);
            int e = parse_uint(v, r->lo, &y);
            if (e == -1)
                return pbad(r, "bad", fld, v, c, " (not a whole number >= 0)");
            if (e == -2)
                return pbad(r, "out of range", fld, v, c, " (above 10^15)");
            x += y;
            if (x > INT_CAP)
                return pbad(r, "out of range", fld, v, c, " (the sum is above 10^15)");
        }
    } else {
        v = pval(r, f, fld, &src);
        if (v.n == 0)
            return pmissing(r, fld, v, src, svc);
        int e = parse_uint(v, src >= 0 ? r->lo : NULL, &x);
        if (e == -1)
            return pbad(r, "bad", fld, v, src, " (not a whole number >= 0)");
        if (e == -2)
            return pbad(r, "out of range", fld, v, src, " (above 10^15)");
    }
    if (fld == CDR_PF_DURATION_S && r->prof->dur_ms)
        x = (x + 999) / 1000; /* milliseconds: up to the whole second */
    else if (fld == CDR_PF_BYTES && r->prof->bytes_kb) {
        if (x > INT_CAP / 1024)
            return pbad(r, "out of range", fld, v, src, " (KB: above 10^15 bytes)");
        x *= 1024;
    }
    /* the usage limits that rating can compute, after the unit (common.h,
     * docs/rating.md): the same as the contract's reading of the value */
    if (fld != CDR_PF_BYTES && x > CDR_DURATION_MAX)
        return pbad(r, "out of range", fld, v, src,
                    r->pk[fld] == PK_SUM                        ? " (the sum is above 10^9)"
                    : fld == CDR_PF_DURATION_S && r->prof->dur_ms ? " (above 10^9 s)"
                                                                  : " (above 10^9)");
    *out = x;
    return 0;
}

static const char *const unit_words[] = {"yuan", "jiao", "fen"};

static inline int pmoney1(rd *r, int fld, cdr_str v, int src, cdr_money *out)
{
    char tail[96];
    int e;
    if (r->prof->money_shift == 0) { /* yuan: the contract's parse */
        cdr_err me = cdr_money_parse(v.p, v.n, out);
        e = me == CDR_OK ? 0 : me == CDR_E_RANGE ? -2 : -1;
    } else {
        e = cdr_pf_money(r->prof, v.p, v.n, out);
    }
    if (e == -2) {
        if (r->prof->money_shift)
            snprintf(tail, sizeof tail, " (finer than a micro-yuan, or too large: %s)",
                     unit_words[r->prof->money_shift]);
        else
            snprintf(tail, sizeof tail, " (more than 6 decimals or too large)");
        return pbad(r, "out of range", fld, v, src, tail);
    }
    if (e) {
        snprintf(tail, sizeof tail, " (expected decimal %s)", unit_words[r->prof->money_shift]);
        return pbad(r, "bad", fld, v, src, tail);
    }
    if (*out < 0)
        return pbad(r, "negative", fld, v, src, NULL);
    return 0;
}

static int pmoney(rd *r, const cdr_str *f, cdr_money *out)
{
    int src;
    if (r->pk[CDR_PF_BILLED] != PK_SUM) {
        cdr_str v = pval(r, f, CDR_PF_BILLED, &src);
        if (v.n == 0)
            return pbad(r, "missing", CDR_PF_BILLED, v, src, NULL);
        return pmoney1(r, CDR_PF_BILLED, v, src, out);
    }
    cdr_money sum = 0;
    for (int i = 0; i < r->prof->f[CDR_PF_BILLED].nref; i++) {
        int c = r->pcol[CDR_PF_BILLED][i];
        cdr_str v = c >= 0 ? f[c] : empty_str;
        cdr_money m;
        if (v.n == 0)
            return pbad(r, "missing", CDR_PF_BILLED, v, c, NULL);
        if (pmoney1(r, CDR_PF_BILLED, v, c, &m))
            return -1;
        sum += m;
        if (sum > CDR_MONEY_MAX)
            return pbad(r, "out of range", CDR_PF_BILLED, v, c, " (the sum is too large)");
    }
    *out = sum;
    return 0;
}

static inline int pnumber(rd *r, int fld, cdr_str v, int src, cdr_str *out)
{
    /* without a trunk prefix or another country code: the contract's rule */
    if (r->prof->num_plain ? cdr_number_normalise(v.p, v.n, out) != CDR_OK
                           : cdr_pf_number(r->prof, v.p, v.n, out) != 0)
        return pbad(r, "bad", fld, v, src, " (not a phone number)");
    return 0;
}

/* The steps of type_row_prof, each 0 or -1 (the row rejected, its reason
 * in r). Always inlined: they run once per row read through a profile,
 * one function to the compiler as before they were named (callgrind,
 * below). */
#define ROW_STEP static inline __attribute__((always_inline)) int

/* record_id, and msisdn (not an IMSI; an IMSI-only record is said so). */
ROW_STEP tp_ids(rd *r, const cdr_str *f, cdr_row *row)
{
    const cdr_profile *pr = r->prof;
    cdr_str v;
    int src;
    v = pval(r, f, CDR_PF_RECORD_ID, &src);
    if (v.n == 0)
        return pbad(r, "missing", CDR_PF_RECORD_ID, v, src, NULL);
    if (has_ctl(v)) /* an id is shown, joined and compared: no control bytes */
        return pbad(r, "bad", CDR_PF_RECORD_ID, v, src, " (control character)");
    row->record_id = v;

    v = pval(r, f, CDR_PF_MSISDN, &src);
    if (v.n == 0) {
        int is;
        cdr_str im = pval(r, f, CDR_PF_IMSI, &is);
        if (im.n) {
            char q[QUOTE_MAX * 4 + 16], tail[QUOTE_MAX * 4 + 200], lab[128];
            quote_val(q, sizeof q, im.p, im.n, 0);
            if (is >= 0)
                snprintf(tail, sizeof tail, " (an IMSI-only record: %s %s)",
                         col_label(r, (size_t)is, lab, sizeof lab), q);
            else
                snprintf(tail, sizeof tail, " (an IMSI-only record: imsi %s)", q);
            return pbad(r, "missing", CDR_PF_MSISDN, v, src, tail);
        }
        return pbad(r, "missing", CDR_PF_MSISDN, v, src, NULL);
    }
    if (pnumber(r, CDR_PF_MSISDN, v, src, &row->msisdn))
        return -1;
    if (pr->imsi_pfx_n && row->msisdn.n == 15 &&
        memcmp(row->msisdn.p, pr->imsi_pfx, pr->imsi_pfx_n) == 0)
        return pbad(r, "bad", CDR_PF_MSISDN, v, src, " (an IMSI, not a phone number)");
    return 0;
}

/* service and direction: from the record type's line, or their columns. */
ROW_STEP tp_kind(rd *r, const cdr_str *f, cdr_row *row)
{
    cdr_str v;
    int src;
    if (r->type_col >= 0) {
        const pf_type *t = r->cur_type;
        if (!t) {
            v = f[r->type_col];
            return pbad(r, v.n ? "bad" : "missing", CDR_PF_RECORD_TYPE, v, r->type_col,
                        " (no type line for it in the profile)");
        }
        row->service = (cdr_service)t->service;
        if (t->direction >= 0) {
            row->direction = (cdr_direction)t->direction;
        } else {
            v = pval(r, f, CDR_PF_DIRECTION, &src);
            if (cdr_direction_parse(v.p, v.n, &row->direction) != CDR_OK)
                return pbad(r, "bad", CDR_PF_DIRECTION, v, src, " (expected mo or mt)");
        }
    } else {
        v = pval(r, f, CDR_PF_SERVICE, &src);
        if (cdr_service_parse(v.p, v.n, &row->service) != CDR_OK)
            return pbad(r, v.n ? "bad" : "missing", CDR_PF_SERVICE, v, src,
                        " (expected voice, sms, data or vas)");
        v = pval(r, f, CDR_PF_DIRECTION, &src);
        if (cdr_direction_parse(v.p, v.n, &row->direction) != CDR_OK)
            return pbad(r, "bad", CDR_PF_DIRECTION, v, src, " (expected mo or mt)");
    }
    return 0;
}

/* start_time: one column or a date and a time, with a UTC offset column
 * when the profile has one. */
ROW_STEP tp_start(rd *r, const cdr_str *f, cdr_row *row)
{
    const cdr_profile *pr = r->prof;
    cdr_str v;
    int src;
    if (r->pk[CDR_PF_START_TIME] == PK_PAIR) {
        int c0 = r->pcol[CDR_PF_START_TIME][0], c1 = r->pcol[CDR_PF_START_TIME][1];
        cdr_str a = c0 >= 0 ? f[c0] : empty_str, b = c1 >= 0 ? f[c1] : empty_str;
        src = c0;
        if (a.n == 0 && b.n == 0) {
            v = empty_str;
        } else if (a.n + b.n + 1 > sizeof r->tbuf) {
            v = a;
            return pbad(r, "bad", CDR_PF_START_TIME, v, src, " (the date and time are too long)");
        } else {
            memcpy(r->tbuf, a.p, a.n);
            r->tbuf[a.n] = ' ';
            memcpy(r->tbuf + a.n + 1, b.p, b.n);
            v.p = r->tbuf;
            v.n = a.n + b.n + 1;
        }
    } else {
        v = pval(r, f, CDR_PF_START_TIME, &src);
    }
    if (v.n == 0)
        return pbad(r, "missing", CDR_PF_START_TIME, v, src, NULL);
    int tsrc = -1;
    cdr_str tz = r->pk[PF_UTC] ? pval(r, f, PF_UTC, &tsrc) : empty_str;
    int e = cdr_pf_time(pr, v.p, v.n, tz.p, tz.n, &row->start);
    if (e == -3) {
        char q[QUOTE_MAX * 4 + 16], lab[128];
        quote_val(q, sizeof q, tz.p, tz.n, 0);
        return reasonf(r, "bad start_time UTC offset %s in column %s (expected +HH:MM)", q,
                       tsrc >= 0 ? col_label(r, (size_t)tsrc, lab, sizeof lab) : "?");
    }
    if (e) {
        char tail[160];
        snprintf(tail, sizeof tail, " (expected %s)", pr->tfmt);
        return pbad(r, "bad", CDR_PF_START_TIME, v, src, tail);
    }
    return 0;
}

/* The service's usage (duration, SMS characters, bytes) and the peer. */
ROW_STEP tp_usage(rd *r, const cdr_str *f, cdr_row *row)
{
    cdr_str v;
    int src;
    row->duration_s = -1;
    row->bytes = -1;
    row->sms_chars = -1;
    const char *svc = cdr_service_name(row->service);
    v = pval(r, f, CDR_PF_PEER, &src);
    switch (row->service) {
    case CDR_SVC_VOICE:
    case CDR_SVC_SMS:
        if (row->service == CDR_SVC_VOICE) {
            if (puint(r, f, CDR_PF_DURATION_S, svc, &row->duration_s))
                return -1;
        } else if (puint(r, f, CDR_PF_SMS_CHARS, svc, &row->sms_chars)) {
            return -1;
        }
        if (v.n == 0) {
            char tail[64];
            snprintf(tail, sizeof tail, " (required for %s)", svc);
            return pbad(r, "missing", CDR_PF_PEER, v, src, tail);
        }
        if (pnumber(r, CDR_PF_PEER, v, src, &row->peer))
            return -1;
        break;
    case CDR_SVC_DATA:
        if (puint(r, f, CDR_PF_BYTES, svc, &row->bytes))
            return -1;
        if (has_ctl(v))
            return pbad(r, "bad", CDR_PF_PEER, v, src, " (control character)");
        row->peer = v;
        break;
    case CDR_SVC_VAS:
        if (v.n == 0)
            return pbad(r, "missing", CDR_PF_PEER, v, src, " (SP service code, required for vas)");
        if (has_ctl(v))
            return pbad(r, "bad", CDR_PF_PEER, v, src, " (control character)");
        row->peer = v;
        break;
    }
    return 0;
}

/* sms_part / sms_parts, partial_seq, call_id and sms_ref. */
ROW_STEP tp_parts(rd *r, const cdr_str *f, cdr_row *row)
{
    cdr_str v;
    int src;
    int s1, s2;
    cdr_str sp = pval(r, f, CDR_PF_SMS_PART, &s1), sps = pval(r, f, CDR_PF_SMS_PARTS, &s2);
    if (sp.n || sps.n) {
        int64_t a, b;
        if (!sp.n)
            return pbad(r, "missing", CDR_PF_SMS_PART, sp, s1, " (sms_parts is given)");
        if (!sps.n)
            return pbad(r, "missing", CDR_PF_SMS_PARTS, sps, s2, " (sms_part is given)");
        if (parse_uint(sp, s1 >= 0 ? r->lo : NULL, &a) || a < 1 || a > INT32_MAX)
            return pbad(r, "bad", CDR_PF_SMS_PART, sp, s1, " (expected 1..sms_parts)");
        if (parse_uint(sps, s2 >= 0 ? r->lo : NULL, &b) || b < 1 || b > INT32_MAX)
            return pbad(r, "bad", CDR_PF_SMS_PARTS, sps, s2, " (expected a count >= 1)");
        if (a > b)
            return pbad(r, "bad", CDR_PF_SMS_PART, sp, s1, " (greater than sms_parts)");
        row->sms_part = (int32_t)a;
        row->sms_parts = (int32_t)b;
    }
    v = pval(r, f, CDR_PF_PARTIAL_SEQ, &src);
    if (v.n) {
        int e = parse_uint(v, src >= 0 ? r->lo : NULL, &row->partial_seq);
        if (e == -1)
            return pbad(r, "bad", CDR_PF_PARTIAL_SEQ, v, src, " (not a whole number >= 0)");
        if (e == -2)
            return pbad(r, "out of range", CDR_PF_PARTIAL_SEQ, v, src, " (above 10^15)");
    }
    row->call_id = pval(r, f, CDR_PF_CALL_ID, &src);
    if (has_ctl(row->call_id))
        return pbad(r, "bad", CDR_PF_CALL_ID, row->call_id, src, " (control character)");
    row->sms_ref = pval(r, f, CDR_PF_SMS_REF, &src);
    if (has_ctl(row->sms_ref))
        return pbad(r, "bad", CDR_PF_SMS_REF, row->sms_ref, src, " (control character)");
    return 0;
}

/* Type a row through the profile. 0 = accepted. */
static int type_row_prof(rd *r, const cdr_str *f, size_t raw_n, int check_bytes, cdr_row *row)
{
    if (row_begin(r, f, raw_n, check_bytes, row) || tp_ids(r, f, row) || tp_kind(r, f, row) ||
        tp_start(r, f, row) || pmoney(r, f, &row->billed) || tp_usage(r, f, row) ||
        tp_parts(r, f, row))
        return -1;
    row_extras(r, f, row);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Header                                                                */

static int ieq(cdr_str a, cdr_str b)
{
    return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

static void plan_profile(rd *r, uint64_t off);

static void setup_header(rd *r, const cdr_str *f, size_t nf, uint64_t off)
{
    if (nf > MAX_COLUMNS) {
        fail_header(r, off, "header has %zu columns (at most %d)", nf, MAX_COLUMNS);
        return;
    }
    size_t total = 0;
    for (size_t i = 0; i < nf; i++)
        total += f[i].n + 1;
    r->names_buf = malloc(total + 1);
    r->names = calloc(nf + 1, sizeof *r->names);
    r->extra_names = calloc(nf + 1, sizeof *r->extra_names);
    r->extra = calloc(nf + 1, sizeof *r->extra);
    r->col_of = calloc(nf + 1, sizeof *r->col_of);
    r->extra_at = calloc(nf + 1, sizeof *r->extra_at);
    if (!r->names_buf || !r->names || !r->extra_names || !r->extra || !r->col_of ||
        !r->extra_at) {
        r->st->status = CDR_E_NOMEM;
        snprintf(r->st->message, sizeof r->st->message, "out of memory reading the header");
        r->stop = 1;
        r->stop_err = CDR_E_NOMEM;
        return;
    }
    for (int c = 0; c < C__N; c++)
        r->known[c] = -1;
    size_t pos = 0;
    for (size_t i = 0; i < nf; i++) {
        char q[QUOTE_MAX * 4 + 16];
        if (memchr(f[i].p, '\0', f[i].n) ||
            utf8_check((const unsigned char *)f[i].p, f[i].n) != f[i].n) {
            quote_val(q, sizeof q, f[i].p, f[i].n, 1);
            fail_header(r, off, "header column %zu %s is not valid UTF-8 text", i + 1, q);
            return;
        }
        memcpy(r->names_buf + pos, f[i].p, f[i].n);
        r->names_buf[pos + f[i].n] = '\0';
        r->names[i].p = r->names_buf + pos;
        r->names[i].n = f[i].n;
        pos += f[i].n + 1;
        for (size_t k = 0; k < i; k++)
            if (ieq(r->names[k], r->names[i])) {
                quote_val(q, sizeof q, f[i].p, f[i].n, 0);
                fail_header(r, off, "duplicate column %s in header (columns %zu and %zu)", q,
                            k + 1, i + 1);
                return;
            }
        if (r->prof)
            continue; /* planned below */
        r->col_of[i] = -1;
        for (int c = 0; c < C__N; c++) {
            cdr_str cn = {col_names[c], strlen(col_names[c])};
            if (ieq(cn, r->names[i])) {
                r->col_of[i] = c;
                r->known[c] = (int)i;
            }
        }
        if (r->col_of[i] < 0) {
            r->extra_at[r->n_extra] = (int)i;
            r->extra_names[r->n_extra++] = r->names[i];
        }
    }
    if (r->prof) {
        r->ncols = nf;
        plan_profile(r, off);
        return;
    }
    char miss[256] = "";
    for (int c = 0; c < C__N; c++)
        if (col_required[c] && r->known[c] < 0) {
            if (miss[0])
                strcat(miss, ", ");
            strcat(miss, col_names[c]);
        }
    r->ncols = nf;
    if (miss[0]) {
        fail_header(r, off, "header lacks required column(s): %s", miss);
        return;
    }
    r->have_header = 1;
}

/* The profile's plan for this file: each field's columns as indexes into
 * the row (names looked up in the header once, here), the record type's
 * column, and the unknown columns. Fails the file when a named column is
 * not in the header. */
static void plan_profile(rd *r, uint64_t off)
{
    const cdr_profile *pr = r->prof;
    char miss[400] = "";
    int nmore = 0;
    unsigned char *used = calloc(r->ncols + 1, 1);
    if (!used) {
        r->st->status = CDR_E_NOMEM;
        snprintf(r->st->message, sizeof r->st->message, "out of memory reading the header");
        r->stop = 1;
        r->stop_err = CDR_E_NOMEM;
        return;
    }
    for (int fld = 0; fld < PF__N; fld++) {
        const pf_field *pf = &pr->f[fld];
        r->pk[fld] = (unsigned char)pf->kind;
        r->pconst[fld].p = pf->konst ? pf->konst : "";
        r->pconst[fld].n = pf->konst_n;
        for (int i = 0; i < pf->nref; i++) {
            const pf_ref *ref = &pf->ref[i];
            int c = -1;
            if (ref->name) {
                cdr_str nm = {ref->name, ref->name_n};
                for (size_t k = 0; k < r->ncols && c < 0; k++)
                    if (ieq(r->names[k], nm))
                        c = (int)k;
                if (c < 0 && !ref->optional) {
                    /* every missing column is listed (as many as fit), then
                     * the file fails */
                    char q[QUOTE_MAX * 4 + 16], one[QUOTE_MAX * 4 + 48];
                    size_t k = strlen(miss);
                    quote_val(q, sizeof q, ref->name, ref->name_n, 0);
                    int w = snprintf(one, sizeof one, "%s%s (line %d)", k ? ", " : "", q, pf->line);
                    if (!nmore && k + (size_t)w < sizeof miss - 24)
                        memcpy(miss + k, one, (size_t)w + 1);
                    else
                        nmore++;
                    continue;
                }
            } else if ((size_t)ref->index >= r->ncols) {
                fail_header(r, off, "header has %zu columns, no $%d (%s, profile %s line %d)",
                            r->ncols, ref->index + 1,
                            fld == PF_UTC ? "start_time.utc_offset"
                                          : cdr_pfield_name((cdr_pfield)fld),
                            pr->path, pf->line);
                free(used);
                return;
            } else {
                c = ref->index;
            }
            r->pcol[fld][i] = c;
            /* every column the profile reads is used up (the IMSI's too: it
             * names IMSI-only rejects and is personal data, not evidence) */
            if (c >= 0)
                used[c] = 1;
        }
    }
    if (miss[0]) {
        if (nmore)
            snprintf(miss + strlen(miss), sizeof miss - strlen(miss), " and %d more", nmore);
        fail_header(r, off, "header lacks column(s) named by profile %s: %s", pr->path, miss);
        free(used);
        return;
    }
    r->type_col = pr->f[CDR_PF_RECORD_TYPE].kind == PK_COL ? r->pcol[CDR_PF_RECORD_TYPE][0] : -1;
    for (int fld = 0; fld < PF__N; fld++)
        r->pidx[fld] = r->pk[fld] == PK_COL ? r->pcol[fld][0] : -1;
    r->n_extra = 0;
    for (size_t i = 0; i < r->ncols; i++)
        if (!used[i]) {
            r->extra_at[r->n_extra] = (int)i;
            r->extra_names[r->n_extra++] = r->names[i];
        }
    free(used);
    r->have_header = 1;
}

/* A headerless profile: the columns are "$1", "$2", ... and the plan is
 * made before the first row. */
static void plan_headerless(rd *r)
{
    size_t nf = (size_t)r->prof->columns;
    r->names_buf = malloc(nf * 6 + 1);
    r->names = calloc(nf + 1, sizeof *r->names);
    r->extra_names = calloc(nf + 1, sizeof *r->extra_names);
    r->extra = calloc(nf + 1, sizeof *r->extra);
    r->extra_at = calloc(nf + 1, sizeof *r->extra_at);
    if (!r->names_buf || !r->names || !r->extra_names || !r->extra || !r->extra_at) {
        r->st->status = CDR_E_NOMEM;
        snprintf(r->st->message, sizeof r->st->message, "out of memory");
        r->stop = 1;
        r->stop_err = CDR_E_NOMEM;
        return;
    }
    size_t pos = 0;
    for (size_t i = 0; i < nf; i++) {
        int k = snprintf(r->names_buf + pos, 6, "$%zu", i + 1);
        r->names[i].p = r->names_buf + pos;
        r->names[i].n = (size_t)k;
        pos += (size_t)k + 1;
    }
    r->ncols = nf;
    plan_profile(r, 0);
}

/* ------------------------------------------------------------------ */
/* A complete row                                                        */

/* in_raw: the fields point into raw (the fast path), not into copies.
 * with_prof: a constant: the body is inlined once for the contract's layout
 * (row_done_contract, the fast path's call: no test of r->prof in it) and
 * once for a profile's. */
static inline __attribute__((always_inline)) void
row_done_t(rd *r, const cdr_str *f, size_t nf, const char *raw, size_t raw_n, int check_bytes,
           int in_raw, int with_prof)
{
    r->lo = in_raw ? raw : NULL;
    if (!r->have_header) {
        setup_header(r, f, nf, r->row_off);
        return;
    }
    if (with_prof && r->type_col >= 0) {
        /* the record type first: a record the profile skips (a header or
         * trailer record, a type not rated) may have any field count */
        r->cur_type = (size_t)r->type_col < nf
                          ? cdr_pf_type(r->prof, f[r->type_col].p, f[r->type_col].n)
                          : NULL;
        if (r->cur_type && r->cur_type->skip) {
            char q[QUOTE_MAX * 4 + 16];
            quote_val(q, sizeof q, f[r->type_col].p, f[r->type_col].n, 0);
            reasonf(r, "skipped: record type %s (a type the profile skips)", q);
            skip_row(r, raw, raw_n, r->row_line, r->row_off);
            return;
        }
    }
    if (nf != r->ncols) {
        if (with_prof && !r->prof->header)
            reasonf(r, "%zu fields, the profile says %zu", nf, r->ncols);
        else
            reasonf(r, "%zu fields, header has %zu", nf, r->ncols);
        reject(r, raw, raw_n, raw_n, r->row_line, r->row_off);
        return;
    }
    cdr_row row;
    if (with_prof ? type_row_prof(r, f, raw_n, check_bytes, &row)
                  : type_row(r, f, raw_n, check_bytes, &row)) {
        reject(r, raw, raw_n, raw_n, r->row_line, r->row_off);
        return;
    }
    row.file_index = r->fidx;
    row.line = r->row_line;
    row.offset = r->row_off;
    row.raw.p = raw;
    row.raw.n = raw_n;
    r->st->rows_read++;
    r->st->rows_accepted++;
    if (r->on_row && r->on_row(&row, r->user)) {
        r->stop = 1;
        r->stop_err = CDR_E_INTERRUPTED;
    }
}

static void row_done_contract(rd *r, const cdr_str *f, size_t nf, const char *raw, size_t raw_n,
                              int check_bytes, int in_raw)
{
    row_done_t(r, f, nf, raw, raw_n, check_bytes, in_raw, 0);
}

static void row_done_profile(rd *r, const cdr_str *f, size_t nf, const char *raw, size_t raw_n,
                             int check_bytes, int in_raw)
{
    row_done_t(r, f, nf, raw, raw_n, check_bytes, in_raw, 1);
}

/* A row of either kind (the libcsv path). */
static void row_done(rd *r, const cdr_str *f, size_t nf, const char *raw, size_t raw_n,
                     int check_bytes, int in_raw)
{
    if (r->prof)
        row_done_profile(r, f, nf, raw, raw_n, check_bytes, in_raw);
    else
        row_done_contract(r, f, nf, raw, raw_n, check_bytes, in_raw);
}

static int grow_fields(rd *r, size_t need)
{
    return cdr_grow(&r->fields, &r->fields_cap, need, sizeof *r->fields, 64);
}

/* ------------------------------------------------------------------ */
/* libcsv path                                                           */

static int csv_space_none(unsigned char c)
{
    (void)c;
    return 0;
}

static int csv_reset(rd *r)
{
    if (r->csv_ready)
        csv_free(&r->csv);
    r->csv_ready = 0;
    if (csv_init(&r->csv, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return -1;
    csv_set_space_func(&r->csv, csv_space_none);
    if (r->prof) {
        csv_set_delim(&r->csv, (unsigned char)r->sep);
        if (r->quote)
            csv_set_quote(&r->csv, (unsigned char)r->quote);
    }
    r->csv_ready = 1;
    r->nf = 0;
    r->fbuf_len = 0;
    r->csv_rows = 0;
    r->csv_cr = 0;
    return 0;
}

static void cb_field(void *s, size_t len, void *data)
{
    rd *r = data;
    if (r->csv_rows)
        return; /* after a bare CR ended the row: rejected anyway */
    if (r->nf >= MAX_COLUMNS + 1) {
        r->nf++;
        return;
    }
    if (r->nf == r->nf_cap) {
        size_t cap = r->nf_cap ? r->nf_cap * 2 : 64;
        size_t *a = realloc(r->foff, cap * sizeof *a);
        if (!a)
            return;
        r->foff = a;
        size_t *b = realloc(r->flen, cap * sizeof *b);
        if (!b)
            return;
        r->flen = b;
        r->nf_cap = cap;
    }
    if (cdr_grow(&r->fbuf, &r->fbuf_cap, r->fbuf_len + len + 1, 1, 4096))
        return;
    if (len)
        memcpy(r->fbuf + r->fbuf_len, s, len);
    r->foff[r->nf] = r->fbuf_len;
    r->flen[r->nf] = len;
    r->fbuf_len += len;
    r->nf++;
}

static void cb_row(int c, void *data)
{
    rd *r = data;
    (void)c;
    if (r->csv_phase_content && !r->csv_rows && !r->csv_cr) {
        r->csv_cr = 1;
        r->csv_cr_field = r->nf;
    }
    r->csv_rows++;
}

/* Emit the libcsv row (fields in fbuf) with raw text raw[0..raw_n). */
static void csv_emit(rd *r, const char *raw, size_t raw_n)
{
    size_t nf = r->nf;
    if (nf > MAX_COLUMNS + 1)
        nf = MAX_COLUMNS + 1;
    if (grow_fields(r, nf + 1)) {
        reasonf(r, "out of memory");
        reject(r, raw, raw_n, raw_n, r->row_line, r->row_off);
        return;
    }
    for (size_t i = 0; i < nf && i < r->nf_cap; i++) {
        r->fields[i].p = r->fbuf + r->foff[i];
        r->fields[i].n = r->flen[i];
    }
    row_done(r, r->fields, r->nf, raw, raw_n, 1, 0);
}

static void append_row(rd *r, const char *p, size_t n)
{
    size_t room = r->o->max_row + 2 - r->row_len;
    size_t k = n < room ? n : room;
    memcpy(r->rowbuf + r->row_len, p, k);
    r->row_len += k;
    r->row_total += n;
}

static unsigned count_quotes(const rd *r, const char *p, size_t n)
{
    unsigned q = 0;
    const char *e = p + n;
    if (!r->quote)
        return 0;
    while ((p = memchr(p, r->quote, (size_t)(e - p))) != NULL) {
        q++;
        p++;
    }
    return q;
}

static void reject_long(rd *r, const char *raw, size_t raw_n, uint64_t total, size_t maxrun)
{
    if (maxrun > r->o->max_field)
        reasonf(r, "row longer than %zu bytes (a field longer than %zu bytes)", r->o->max_row,
                r->o->max_field);
    else
        reasonf(r, "row longer than %zu bytes", r->o->max_row);
    reject(r, raw, raw_n, total, r->row_line, r->row_off);
}

static size_t longest_run(const rd *r, const char *p, size_t n, size_t *run)
{
    size_t best = 0, cur = run ? *run : 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == r->sep) {
            if (cur > best)
                best = cur;
            cur = 0;
        } else {
            cur++;
        }
    }
    if (cur > best)
        best = cur;
    if (run)
        *run = cur;
    return best;
}

/* Feed one line to libcsv (first line of a row or a continuation).
 * p[0..n) is the line without '\n'; term: the line ended with '\n'. */
static void csv_line(rd *r, const char *p, size_t n, int term, int first)
{
    char lab[128];
    size_t cn = n;
    int cr = 0;
    if (cn > 0 && p[cn - 1] == '\r') {
        cn--;
        cr = 1;
    }
    if (first && cn > 0 && p[0] == '\r') {
        /* libcsv silently skips a CR at the start of a row: refuse it. */
        reasonf(r, "carriage return outside quotes in column %s", col_label(r, 0, lab, sizeof lab));
        reject(r, p, cn, cn, r->row_line, r->row_off);
        return;
    }
    if (first) {
        if (csv_reset(r)) {
            reasonf(r, "out of memory");
            reject(r, p, cn, cn, r->row_line, r->row_off);
            return;
        }
        r->row_len = 0;
        r->row_total = 0;
    } else if (r->row_len + n + 1 > r->o->max_row) {
        /* The row grows past max_row inside a quoted field: skip to its end. */
        append_row(r, p, n);
        r->row_total++;
        unsigned par = (1u + count_quotes(r, p, n)) & 1u;
        csv_reset(r);
        if (!par || !term) {
            reject_long(r, r->rowbuf, r->row_len, r->row_total - 1, 0);
            r->mode = M_NORMAL;
        } else {
            r->skip_parity = 1;
            r->skip_maxrun = 0;
            r->mode = M_SKIP;
        }
        return;
    }
    r->csv_phase_content = 1;
    size_t used = csv_parse(&r->csv, p, cn, cb_field, cb_row, r);
    r->csv_phase_content = 0;
    int perr = used != cn;
    if (!perr && !r->csv_cr) {
        if (term) {
            size_t tl = cr ? 2 : 1;
            perr = csv_parse(&r->csv, cr ? "\r\n" : "\n", tl, cb_field, cb_row, r) != tl;
        } else {
            if (cr)
                perr = csv_parse(&r->csv, "\r", 1, cb_field, cb_row, r) != 1;
            if (!perr)
                perr = csv_fini(&r->csv, cb_field, cb_row, r) != 0;
        }
    }
    const char *raw;
    size_t raw_n;
    if (first) {
        raw = p;
        raw_n = cn;
    } else {
        append_row(r, p, cn);
        raw = r->rowbuf;
        raw_n = r->row_len;
    }
    if (r->csv_cr) {
        reasonf(r, "carriage return outside quotes in column %s",
                col_label(r, r->csv_cr_field ? r->csv_cr_field - 1 : 0, lab, sizeof lab));
        reject(r, raw, raw_n, first ? raw_n : r->row_total, r->row_line, r->row_off);
        r->mode = M_NORMAL;
        csv_reset(r);
        return;
    }
    if (perr) {
        if (!term)
            reasonf(r, "broken quoting in column %s: unterminated quoted field at end of file",
                    col_label(r, r->nf, lab, sizeof lab));
        else
            reasonf(r, "broken quoting in column %s", col_label(r, r->nf, lab, sizeof lab));
        reject(r, raw, raw_n, first ? raw_n : r->row_total, r->row_line, r->row_off);
        r->mode = M_NORMAL;
        csv_reset(r);
        return;
    }
    if (r->csv_rows) {
        r->mode = M_NORMAL;
        csv_emit(r, raw, raw_n);
        return;
    }
    /* Still inside a quoted field: keep the line and its end. */
    if (first)
        append_row(r, p, cn);
    append_row(r, p + cn, n - cn);
    append_row(r, "\n", 1);
    r->mode = M_CSV;
}

/* ------------------------------------------------------------------ */
/* One physical line                                                     */

#ifdef __SSE2__
/* The bytes of a 16-byte block the fast path stops at (quote, CR, NUL,
 * >= 0x80), as a mask. */
static inline unsigned block_special(__m128i x)
{
    __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"')), c = _mm_cmpeq_epi8(x, _mm_set1_epi8('\r')),
            z = _mm_cmpeq_epi8(x, _mm_setzero_si128());
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, c), z)) |
           (unsigned)_mm_movemask_epi8(x); /* bytes >= 0x80 */
}

/* The fields ending at the commas of a block (bits of `commas`, positions
 * from base): into fl while nf < cap, counted beyond. Returns nf. */
static inline size_t block_fields(cdr_str *fl, size_t nf, size_t cap, size_t *start,
                                  const char *p, size_t base, unsigned commas)
{
    while (commas) {
        size_t at = base + (size_t)__builtin_ctz(commas);
        commas &= commas - 1;
        if (nf < cap) {
            fl[nf].p = p + *start;
            fl[nf].n = at - *start;
        }
        nf++;
        *start = at + 1;
    }
    return nf;
}
#endif

static const unsigned char cls_tab[256] = {
    [0] = 8, ['\r'] = 4, [','] = 1, ['"'] = 2, [0x80 ... 0xFF] = 16,
};

/* Fast path: split on sep while classifying bytes (cls: the byte classes
 * for sep and the quote). 1 = the line was handled; 0 = it needs libcsv.
 * Always inlined: on_line has one copy for the contract's ',' and '"' with
 * the constants folded in, and one for a profile's. */
static inline __attribute__((always_inline)) int fast_line(rd *r, const char *p, size_t cn,
                                                          uint64_t line, uint64_t off, char sep,
                                                          const unsigned char *cls, int with_prof)
{
    size_t cap = r->have_header ? r->ncols + 1 : MAX_COLUMNS + 2;
    if (grow_fields(r, cap)) { /* then nf < cap is all the loops check */
        reasonf(r, "out of memory");
        reject(r, p, cn, cn, line, off);
        return 1;
    }
    unsigned flags = 0;
    size_t nf = 0, start = 0, i = 0;
    const unsigned char *u = (const unsigned char *)p;
    cdr_str *fl = r->fields; /* (a local: stores through it cannot move r's fields) */
    /* 16 bytes a step while they hold nothing but commas and plain bytes
     * (no quote, CR, NUL or byte >= 0x80): the byte loop below classifies
     * the rest of the line from the first such block. */
#ifdef __SSE2__
    const __m128i v_comma = _mm_set1_epi8(sep);
    for (; i + 16 <= cn; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
        if (block_special(x))
            break;
        nf = block_fields(fl, nf, cap, &start, p, i,
                          (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, v_comma)));
    }
    if (i < cn && i + 16 > cn && cn >= 16) {
        /* the last bytes as one more block, the 16 ending the line:
         * those already seen masked off (a byte loop there had an exit
         * mispredicted on most lines) */
        size_t b0 = cn - 16;
        unsigned seen = (1u << (i - b0)) - 1;
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(u + b0));
        if (!(block_special(x) & ~seen)) {
            nf = block_fields(
                fl, nf, cap, &start, p, b0,
                (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, v_comma)) & ~seen);
            i = cn;
        }
    }
#endif
    for (; i < cn; i++) {
        unsigned k = cls[u[i]];
        if (!k)
            continue;
        if (k == 1) {
            if (nf < cap) {
                fl[nf].p = p + start;
                fl[nf].n = i - start;
            }
            nf++;
            start = i + 1;
        } else {
            flags |= k;
        }
    }
    if (!(flags & 6)) {
        if (nf < cap) {
            fl[nf].p = p + start;
            fl[nf].n = cn - start;
        }
        nf++;
        if (with_prof)
            row_done_profile(r, r->fields, nf, p, cn, flags != 0, 1);
        else
            row_done_contract(r, r->fields, nf, p, cn, flags != 0, 1);
        return 1;
    }
    if ((flags & 4) && !(flags & 2)) {
        char lab[128];
        /* Column of the first CR, as libcsv would report it. */
        size_t col = 0;
        for (size_t j = 0; j < cn && p[j] != '\r'; j++)
            col += p[j] == sep;
        reasonf(r, "carriage return outside quotes in column %s",
                col_label(r, col, lab, sizeof lab));
        reject(r, p, cn, cn, line, off);
        return 1;
    }
    return 0;
}

static void on_line(rd *r, const char *p, size_t n, int term)
{
    uint64_t line = ++r->line_no;
    uint64_t off = r->line_off;
    r->line_off += n + (term ? 1 : 0);
    if (line == 1 && n >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF) {
        p += 3;
        n -= 3;
        off += 3;
    }
    if (r->mode == M_CSV) {
        csv_line(r, p, n, term, 0);
        return;
    }
    if (r->mode == M_SKIP) {
        r->skip_parity ^= count_quotes(r, p, n) & 1u;
        size_t run = 0;
        size_t mr = longest_run(r, p, n, &run);
        if (mr > r->skip_maxrun)
            r->skip_maxrun = mr;
        r->row_total += n + (term ? 1 : 0);
        if (!r->skip_parity || !term) {
            r->mode = M_NORMAL;
            reject_long(r, r->rowbuf, r->row_len, r->row_total - (term ? 1 : 0), r->skip_maxrun);
        }
        return;
    }
    size_t cn = n;
    if (cn > 0 && p[cn - 1] == '\r')
        cn--;
    if (cn == 0) {
        r->st->blank_lines++;
        return;
    }
    r->row_line = line;
    r->row_off = off;
    if (r->prof && r->prof->n_skip && skip_prefixed(r, p, cn, line, off))
        return;
    if (cn > r->o->max_row) {
        unsigned q = count_quotes(r, p, n);
        size_t run = 0;
        size_t mr = longest_run(r, p, cn, &run);
        if ((q & 1u) == 0 || !term) {
            reject_long(r, p, cn, cn, mr);
        } else {
            r->row_len = 0;
            r->row_total = 0;
            append_row(r, p, n);
            append_row(r, "\n", 1);
            r->skip_parity = 1;
            r->skip_maxrun = mr;
            r->mode = M_SKIP;
        }
        return;
    }
    if (r->have_header && r->o->line_filter && !memchr(p, '"', cn) &&
        !memmem(p, cn, r->o->line_filter, strlen(r->o->line_filter))) {
        r->st->rows_filtered++;
        return;
    }
    if (!r->prof) {
        if (!r->o->no_fast_path && fast_line(r, p, cn, line, off, ',', cls_tab, 0))
            return;
    } else if ((!r->o->no_fast_path || !r->quote) &&
               fast_line(r, p, cn, line, off, r->sep, r->cls, 1)) {
        return;
    }
    csv_line(r, p, n, term, 1);
}

/* Overlong physical line, streamed piece by piece. */
static void over_piece(rd *r, const char *p, size_t n)
{
    r->over_len += n;
    r->over_quotes += count_quotes(r, p, n);
    size_t mr = longest_run(r, p, n, &r->over_run);
    if (mr > r->over_maxrun)
        r->over_maxrun = mr;
}

static void over_end(rd *r, int term)
{
    uint64_t line = ++r->line_no;
    uint64_t off = r->line_off;
    r->line_off += r->over_len + (term ? 1 : 0);
    r->over = 0;
    /* carry holds the first carry_cap bytes of the line */
    if (r->mode == M_CSV) {
        /* a quoted field continues into an overlong line */
        append_row(r, r->carry, r->carry_len);
        r->row_total += r->over_len - r->carry_len;
        unsigned par = (1u + r->over_quotes) & 1u;
        csv_reset(r);
        if (!par || !term) {
            r->mode = M_NORMAL;
            reject_long(r, r->rowbuf, r->row_len, r->row_total, r->over_maxrun);
        } else {
            r->row_total++;
            r->skip_parity = 1;
            r->skip_maxrun = r->over_maxrun;
            r->mode = M_SKIP;
        }
    } else if (r->mode == M_SKIP) {
        r->skip_parity ^= r->over_quotes & 1u;
        r->row_total += r->over_len + (term ? 1 : 0);
        if (r->over_maxrun > r->skip_maxrun)
            r->skip_maxrun = r->over_maxrun;
        if (!r->skip_parity || !term) {
            r->mode = M_NORMAL;
            reject_long(r, r->rowbuf, r->row_len, r->row_total - (term ? 1 : 0),
                        r->skip_maxrun);
        }
    } else {
        r->row_line = line;
        r->row_off = off;
        if (r->prof && r->prof->n_skip && skip_prefixed(r, r->carry, r->carry_len, line, off)) {
            r->carry_len = 0;
            return;
        }
        if ((r->over_quotes & 1u) == 0 || !term) {
            reject_long(r, r->carry, r->carry_len, r->over_len, r->over_maxrun);
        } else {
            r->row_len = 0;
            r->row_total = 0;
            append_row(r, r->carry, r->carry_len);
            r->row_total = r->over_len + 1;
            r->skip_parity = 1;
            r->skip_maxrun = r->over_maxrun;
            r->mode = M_SKIP;
        }
    }
    r->carry_len = 0;
}

static void feed(rd *r, const char *p, size_t n)
{
    while (n > 0 && !r->stop) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        if (r->over) {
            over_piece(r, p, k);
        } else if (nl && r->carry_len == 0) {
            on_line(r, p, k, 1);
        } else if (r->carry_len + k > r->carry_cap) {
            /* start streaming an overlong line; carry keeps its beginning */
            r->over = 1;
            r->over_len = 0;
            r->over_quotes = 0;
            r->over_run = 0;
            r->over_maxrun = 0;
            over_piece(r, r->carry, r->carry_len);
            size_t room = r->carry_cap - r->carry_len;
            memcpy(r->carry + r->carry_len, p, room);
            r->carry_len += room;
            over_piece(r, p, k);
        } else {
            memcpy(r->carry + r->carry_len, p, k);
            r->carry_len += k;
            if (nl) {
                on_line(r, r->carry, r->carry_len, 1);
                r->carry_len = 0;
            }
        }
        if (!nl)
            return;
        if (r->over)
            over_end(r, 1);
        p = nl + 1;
        n -= k + 1;
    }
}

static void finish(rd *r)
{
    if (r->stop)
        return;
    if (r->over)
        over_end(r, 0);
    else if (r->carry_len > 0)
        on_line(r, r->carry, r->carry_len, 0);
    r->carry_len = 0;
    if (r->stop)
        return;
    if (r->mode == M_CSV) {
        /* the file ended with '\n' inside a quoted field */
        char lab[128];
        r->mode = M_NORMAL;
        r->row_len = r->row_len > 0 ? r->row_len - 1 : 0; /* drop the last '\n' */
        reasonf(r, "broken quoting in column %s: unterminated quoted field at end of file",
                col_label(r, r->nf, lab, sizeof lab));
        reject(r, r->rowbuf, r->row_len, r->row_total - 1, r->row_line, r->row_off);
    } else if (r->mode == M_SKIP) {
        r->mode = M_NORMAL;
        reject_long(r, r->rowbuf, r->row_len, r->row_total - 1, r->skip_maxrun);
    }
}

/* ================================================================== */

static void set_status(cdr_file_stats *st, cdr_err e, uint64_t off, const char *msg)
{
    if (st->status != CDR_OK)
        return;
    st->status = e;
    st->error_offset = off;
    snprintf(st->message, sizeof st->message, "%s", msg);
}

static void rd_free(rd *r);

/* A reader of one file with opts (its buffers allocated: NULL when out of
 * memory, with rd_free done). */
static rd *rd_new(const char *path, uint32_t file_index, const cdr_reader_opts *opts,
                  cdr_row_fn on_row, cdr_reject_fn on_reject, void *user, cdr_file_stats *stats)
{
    rd *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->o = opts;
    r->path = path;
    r->fidx = file_index;
    r->on_row = on_row;
    r->on_reject = on_reject;
    r->user = user;
    r->st = stats;
    r->prof = opts->profile;
    r->sep = ',';
    r->quote = '"';
    r->type_col = -1;
    if (r->prof) {
        r->sep = r->prof->sep;
        r->quote = r->prof->quote;
        memcpy(r->cls, cls_tab, sizeof r->cls);
        r->cls[','] = 0;
        r->cls['"'] = 0;
        r->cls[(unsigned char)r->sep] = 1;
        if (r->quote)
            r->cls[(unsigned char)r->quote] = 2;
        if (!r->prof->header)
            plan_headerless(r);
    }
    r->carry_cap = opts->max_row + 1;
    r->carry = malloc(r->carry_cap + 1);
    r->rowbuf = malloc(opts->max_row + 3);
    r->next_progress = PROGRESS_STEP;
    if (!r->carry || !r->rowbuf) {
        rd_free(r);
        return NULL;
    }
    return r;
}

static void rd_free(rd *r)
{
    if (!r)
        return;
    if (r->csv_ready)
        csv_free(&r->csv);
    free(r->carry);
    free(r->rowbuf);
    free(r->fbuf);
    free(r->foff);
    free(r->flen);
    free(r->fields);
    free(r->col_of);
    free(r->extra_at);
    free(r->names_buf);
    free(r->names);
    free(r->extra_names);
    free(r->extra);
    free(r);
}

/* The file's SHA-256 (as stored) and its content's (as decompressed), as
 * opts asks. */
static void file_hashes(source *s, const cdr_reader_opts *opts, cdr_file_stats *stats)
{
    if (opts->want_sha256)
        cdr_sha256_final(&s->sha, stats->sha256);
    if (opts->want_content_sha256 && s->gzip) {
        cdr_sha256_final(&s->csha, stats->content_sha256);
        stats->has_content_sha256 = 1;
    } else if (opts->want_content_sha256 && opts->want_sha256) {
        memcpy(stats->content_sha256, stats->sha256, 32); /* plain: the same bytes */
        stats->has_content_sha256 = 1;
    }
}

cdr_err cdr_read_file(const char *path, uint32_t file_index, const cdr_reader_opts *opts,
                      cdr_row_fn on_row, cdr_reject_fn on_reject, void *user,
                      cdr_file_stats *stats)
{
    cdr_reader_opts defo;
    if (!opts) {
        cdr_reader_opts_init(&defo);
        opts = &defo;
    }
    memset(stats, 0, sizeof *stats);
    source s;
    uint64_t total = 0;
    cdr_err e = src_open(&s, path, opts, &total);
    if (e) {
        set_status(stats, e, s.err_off, s.msg);
        stats->size = s.in_read;
        src_close(&s);
        return stats->status;
    }
    stats->gzip = s.gzip;

    size_t bufsz = opts->buf_size ? opts->buf_size : 4u << 20;
    ring g;
    memset(&g, 0, sizeof g);
    rd *r = rd_new(path, file_index, opts, on_row, on_reject, user, stats);
    if (!r || ring_start(&g, &s, bufsz, opts->threads))
        goto nomem;

    unsigned char *chunk;
    size_t n;
    uint64_t in_bytes = 0;
    while (!r->stop && ring_get(&g, &chunk, &n, &in_bytes)) {
        feed(r, (const char *)chunk, n);
        stats->bytes += n;
        ring_release(&g);
        if (opts->progress && stats->bytes >= r->next_progress) {
            r->next_progress = stats->bytes + PROGRESS_STEP;
            cdr_progress pr = {file_index, path, in_bytes, total, stats->bytes, stats->rows_read};
            opts->progress(&pr, opts->progress_user);
        }
    }
    ring_stop(&g);
    if (r->stop) {
        if (r->stop_err == CDR_E_INTERRUPTED)
            set_status(stats, CDR_E_INTERRUPTED, r->line_off, "stopped by the caller");
    } else if (s.err) {
        set_status(stats, s.err, s.err_off, s.msg);
    } else {
        finish(r);
        if (!r->have_header && stats->status == CDR_OK)
            set_status(stats, CDR_E_HEADER, 0, "empty file: no header row");
    }
    if (opts->progress) {
        cdr_progress pr = {file_index, path, s.in_read, total, stats->bytes, stats->rows_read};
        opts->progress(&pr, opts->progress_user);
    }
    goto out;
nomem:
    ring_stop(&g);
    set_status(stats, CDR_E_NOMEM, 0, "out of memory");
out:
    stats->size = s.in_read;
    file_hashes(&s, opts, stats);
    src_close(&s);
    rd_free(r);
    return stats->status;
}
