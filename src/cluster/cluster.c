/* cdrecon — the sharded directory, the shard function and the routed pieces
 * (include/cdrecon/cluster.h, docs/cluster.md). */
#include "deflate1.h"
#include "cdrecon/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cdrecon/outdir.h"
#include "bytes.h"
#include "errmsg.h"
#include "grow.h"

uint32_t cdr_shard_of(const char *msisdn, size_t n, uint32_t parts)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)msisdn[i];
        h *= 0x100000001b3ull;
    }
    return parts ? (uint32_t)(h % parts) : 0;
}

/* ------------------------------------------------------------------ */
/* The directory                                                        */

static cdr_err mkdir_p(const char *path, char *err, size_t errlen)
{
    cdr_err e = CDR_OK;
    int fd = cdr_dir_open(path, CDR_DIR_CREATE, NULL, &e, err, errlen);
    if (fd < 0)
        return e;
    close(fd);
    return CDR_OK;
}

cdr_err cdr_cluster_parts(const char *dir, uint32_t *parts, char *err, size_t errlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/parts", dir);
    FILE *f = fopen(p, "r");
    if (!f) {
        cdr_seterr(err, errlen, "%s is not a sharded directory (no %s: %s; make one with "
                "`cdrecon cluster init --parts P %s`)", dir, p, strerror(errno), dir);
        return errno == ENOENT ? CDR_E_NOTFOUND : CDR_E_IO;
    }
    char line[64] = "";
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *end = NULL;
    unsigned long v = ok ? strtoul(line, &end, 10) : 0;
    if (!ok || end == line || (*end && *end != '\n') || v < 1 || v > CDR_CLUSTER_MAX_PARTS) {
        cdr_seterr(err, errlen, "%s: not a number of shards from 1 to %u", p, CDR_CLUSTER_MAX_PARTS);
        return CDR_E_PARSE;
    }
    *parts = (uint32_t)v;
    return CDR_OK;
}

/* A small file written and synced to disk (to be renamed or linked into
 * place): CDR_OK, or CDR_E_IO with the message and no file left. */
static cdr_err write_synced(const char *path, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cdr_err write_synced(const char *path, char *err, size_t errlen, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    int bad = !f;
    if (f) {
        va_list ap;
        va_start(ap, fmt);
        bad = vfprintf(f, fmt, ap) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
        va_end(ap);
    }
    if (bad) {
        cdr_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        unlink(path);
        return CDR_E_IO;
    }
    fclose(f);
    return CDR_OK;
}

cdr_err cdr_cluster_init(const char *dir, uint32_t parts, char *err, size_t errlen)
{
    if (parts < 1 || parts > CDR_CLUSTER_MAX_PARTS) {
        cdr_seterr(err, errlen, "--parts must be from 1 to %u", CDR_CLUSTER_MAX_PARTS);
        return CDR_E_USAGE;
    }
    uint32_t have = 0;
    char e2[512];
    cdr_err e = cdr_cluster_parts(dir, &have, e2, sizeof e2);
    if (e == CDR_OK && have != parts) {
        cdr_seterr(err, errlen, "%s is a sharded directory of %u shards, not %u: the number of "
                "shards is fixed when it is made", dir, have, parts);
        return CDR_E_EXISTS;
    }
    if (e == CDR_E_PARSE) {
        cdr_seterr(err, errlen, "%s", e2);
        return e;
    }
    if (e != CDR_OK) {
        DIR *d = opendir(dir);
        if (d) {
            struct dirent *de;
            int n = 0;
            while ((de = readdir(d)))
                n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
            closedir(d);
            if (n) {
                cdr_seterr(err, errlen, "%s exists, is not empty and is not a sharded directory",
                        dir);
                return CDR_E_EXISTS;
            }
        }
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/routed", dir);
    if ((e = mkdir_p(p, err, errlen)) != CDR_OK)
        return e;
    for (uint32_t k = 0; k < parts; k++) {
        snprintf(p, sizeof p, "%s/shard-%u/incoming", dir, k);
        if ((e = mkdir_p(p, err, errlen)) != CDR_OK)
            return e;
    }
    if (have == parts)
        return CDR_OK;
    /* the parts file last: its presence says the directory is complete */
    char tmp[4200];
    snprintf(p, sizeof p, "%s/parts", dir);
    snprintf(tmp, sizeof tmp, "%s/.parts.tmp.%ld", dir, (long)getpid());
    if ((e = write_synced(tmp, err, errlen, "%u\n", parts)) != CDR_OK)
        return e;
    if (rename(tmp, p) != 0) {
        cdr_seterr(err, errlen, "cannot rename %s to %s: %s", tmp, p, strerror(errno));
        unlink(tmp);
        return CDR_E_IO;
    }
    return CDR_OK;
}

/* ------------------------------------------------------------------ */
/* Pieces                                                               */

/* A piece's decompressed bytes are entries [tag][varint length][payload]:
 *   'P'  "cdrecon piece 1" (first)
 *   'X'  the names of the file's unknown columns: varint n, n strings
 *   'R'  a record: strings msisdn, record_id, peer, call_id, sms_ref; bytes
 *        service, direction; zigzag varints start, duration_s, bytes,
 *        sms_chars, sms_part, sms_parts, partial_seq, billed; varints line,
 *        offset; varint n_extra, n strings
 *   'E'  varint: the records in the piece (last)
 * A string is a varint length and its bytes. */
#define PIECE_MAGIC "cdrecon piece 1"

typedef struct pbuf {
    unsigned char *p;
    size_t n, cap;
} pbuf;

static int pb_reserve(pbuf *b, size_t more)
{
    return cdr_grow(&b->p, &b->cap, b->n + more, 1, 4096);
}


static unsigned char *put_str(unsigned char *d, const char *s, size_t n)
{
    d = cdr_put_varint(d, n);
    if (n)
        memcpy(d, s, n);
    return d + n;
}

typedef struct shard_out {
    pbuf buf;
    uint64_t records;
    int opened;      /* the temporary file exists */
    int extras_sent; /* the 'X' entry is in this piece */
} shard_out;

struct cdr_pieces {
    char *dir;
    char tag[96]; /* cdr_cluster_tmp_tag */
    char sha[65];
    uint32_t parts;
    size_t limit; /* bytes buffered per shard before a member is written */
    shard_out *s;
    pbuf z;       /* compressed member */
    unsigned char *lvl;
    /* the file's unknown columns (the reader's names) */
    char **extra_names;
    uint32_t n_extra;
    int committed;
    cdr_err status;
    char msg[1024];
};

static cdr_err pfail(cdr_pieces *p, cdr_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cdr_err pfail(cdr_pieces *p, cdr_err e, const char *fmt, ...)
{
    if (p->status == CDR_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->msg, sizeof p->msg, fmt, ap);
        va_end(ap);
        p->status = e;
    }
    return p->status;
}

void cdr_cluster_tmp_tag(char *buf, size_t len)
{
    char h[72] = "";
    if (gethostname(h, sizeof h - 1) != 0 || !h[0])
        snprintf(h, sizeof h, "host");
    h[sizeof h - 1] = '\0';
    for (char *c = h; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            *c = '_';
    snprintf(buf, len, "%s.%ld", h, (long)getpid());
}

/* (".piece.tmp.HOST.PID": another node's pieces in progress share the
 * directory; see cdr_cluster_tmp_tag) */
static void tmp_path(const cdr_pieces *p, uint32_t k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shard-%u/incoming/.piece.tmp.%s", p->dir, k, p->tag);
}

static void final_path(const cdr_pieces *p, uint32_t k, char *buf, size_t len)
{
    snprintf(buf, len, "%s/shard-%u/incoming/%s.piece", p->dir, k, p->sha);
}

cdr_err cdr_pieces_open(const char *dir, uint32_t parts, size_t mem, cdr_pieces **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    if (parts < 1 || parts > CDR_CLUSTER_MAX_PARTS) {
        cdr_seterr(err, errlen, "bad sharded directory or file identity");
        return CDR_E_USAGE;
    }
    cdr_pieces *p = calloc(1, sizeof *p);
    if (!p || !(p->dir = strdup(dir)) || !(p->s = calloc(parts, sizeof *p->s)) ||
        !(p->lvl = malloc(ISAL_DEF_LVL1_DEFAULT))) {
        cdr_pieces_free(p);
        cdr_seterr(err, errlen, "out of memory");
        return CDR_E_NOMEM;
    }
    p->parts = parts;
    cdr_cluster_tmp_tag(p->tag, sizeof p->tag);
    size_t lim = mem / parts;
    p->limit = lim < ((size_t)16 << 10) ? (size_t)16 << 10 : lim > ((size_t)1 << 20) ? (size_t)1 << 20 : lim;
    *out = p;
    return CDR_OK;
}

const char *cdr_pieces_message(const cdr_pieces *p)
{
    return p ? p->msg : "";
}

/* One gzip member of shard k's buffer, appended to its temporary file. */
static cdr_err flush_shard(cdr_pieces *p, uint32_t k)
{
    shard_out *s = &p->s[k];
    if (s->buf.n == 0)
        return CDR_OK;
    char path[4400];
    tmp_path(p, k, path, sizeof path);
    if (!s->opened) {
        /* what killed runs of this host left (".piece.tmp.HOST.PID" with
         * a dead PID); other hosts' pids cannot be judged from here */
        char d[4300], pre[120];
        snprintf(d, sizeof d, "%s/shard-%u/incoming", p->dir, k);
        snprintf(pre, sizeof pre, ".piece.tmp.%.*s", (int)(strrchr(p->tag, '.') - p->tag + 1),
                 p->tag);
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            cdr_dir_remove_stale(dfd, pre);
            close(dfd);
        }
    }
    p->z.n = 0;
    size_t bound = s->buf.n + s->buf.n / 8 + 1024;
    if (pb_reserve(&p->z, bound) != 0)
        return pfail(p, CDR_E_NOMEM, "out of memory");
    size_t zn;
    if (cdr_deflate1(s->buf.p, s->buf.n, p->z.p, bound, 1, p->lvl, ISAL_DEF_LVL1_DEFAULT, 1,
                     &zn) != 0)
        return pfail(p, CDR_E_INTERNAL, "%s: compression failed", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
                            (s->opened ? 0 : O_TRUNC), 0644);
    if (fd < 0)
        return pfail(p, CDR_E_IO, "cannot create %s: %s", path, strerror(errno));
    s->opened = 1;
    const unsigned char *q = p->z.p;
    size_t left = zn;
    while (left) {
        ssize_t w = write(fd, q, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int en = w < 0 ? errno : EIO;
            close(fd);
            return pfail(p, CDR_E_IO, "cannot write %s: %s", path, strerror(en));
        }
        q += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0)
        return pfail(p, CDR_E_IO, "cannot write %s: %s", path, strerror(errno));
    s->buf.n = 0;
    return CDR_OK;
}

static cdr_err put_entry(cdr_pieces *p, uint32_t k, int tag, const unsigned char *pay,
                         size_t n)
{
    shard_out *s = &p->s[k];
    if (pb_reserve(&s->buf, n + 11) != 0)
        return pfail(p, CDR_E_NOMEM, "out of memory");
    unsigned char *d = s->buf.p + s->buf.n;
    *d++ = (unsigned char)tag;
    d = cdr_put_varint(d, n);
    memcpy(d, pay, n);
    s->buf.n = (size_t)(d + n - s->buf.p);
    return CDR_OK;
}

static cdr_err begin_piece(cdr_pieces *p, uint32_t k)
{
    cdr_err e = put_entry(p, k, 'P', (const unsigned char *)PIECE_MAGIC, strlen(PIECE_MAGIC));
    if (e != CDR_OK || p->n_extra == 0)
        return e;
    size_t n = 10;
    for (uint32_t i = 0; i < p->n_extra; i++)
        n += 10 + strlen(p->extra_names[i]);
    unsigned char *t = malloc(n), *d = t;
    if (!t)
        return pfail(p, CDR_E_NOMEM, "out of memory");
    d = cdr_put_varint(d, p->n_extra);
    for (uint32_t i = 0; i < p->n_extra; i++)
        d = put_str(d, p->extra_names[i], strlen(p->extra_names[i]));
    e = put_entry(p, k, 'X', t, (size_t)(d - t));
    free(t);
    return e;
}

static cdr_err take_extra_names(cdr_pieces *p, const cdr_row *r)
{
    if (p->extra_names || r->n_extra == 0)
        return CDR_OK;
    p->extra_names = calloc(r->n_extra, sizeof *p->extra_names);
    if (!p->extra_names)
        return pfail(p, CDR_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < r->n_extra; i++) {
        if (!(p->extra_names[i] = strndup(r->extra_names[i].p, r->extra_names[i].n)))
            return pfail(p, CDR_E_NOMEM, "out of memory");
        p->n_extra = i + 1;
    }
    return CDR_OK;
}

cdr_err cdr_pieces_add(cdr_pieces *p, const cdr_row *r)
{
    if (p->status != CDR_OK)
        return p->status;
    if (take_extra_names(p, r) != CDR_OK)
        return p->status;
    uint32_t k = cdr_shard_of(r->msisdn.p, r->msisdn.n, p->parts);
    shard_out *s = &p->s[k];
    if (s->records == 0 && begin_piece(p, k) != CDR_OK)
        return p->status;
    size_t n = 2 + 8 * 10 + 2 * 10 + 10 + 5 * 10 + r->msisdn.n + r->record_id.n + r->peer.n +
               r->call_id.n + r->sms_ref.n;
    for (uint32_t i = 0; i < r->n_extra; i++)
        n += 10 + r->extra[i].n;
    if (pb_reserve(&s->buf, n + 11) != 0)
        return pfail(p, CDR_E_NOMEM, "out of memory");
    /* the payload is written after a 5-byte gap for tag and length, then
     * moved down if its length takes fewer bytes */
    unsigned char *base = s->buf.p + s->buf.n, *d = base + 6;
    d = put_str(d, r->msisdn.p, r->msisdn.n);
    d = put_str(d, r->record_id.p, r->record_id.n);
    d = put_str(d, r->peer.p, r->peer.n);
    d = put_str(d, r->call_id.p, r->call_id.n);
    d = put_str(d, r->sms_ref.p, r->sms_ref.n);
    *d++ = (unsigned char)r->service;
    *d++ = (unsigned char)r->direction;
    d = cdr_put_varint(d, cdr_zz(r->start));
    d = cdr_put_varint(d, cdr_zz(r->duration_s));
    d = cdr_put_varint(d, cdr_zz(r->bytes));
    d = cdr_put_varint(d, cdr_zz(r->sms_chars));
    d = cdr_put_varint(d, cdr_zz(r->sms_part));
    d = cdr_put_varint(d, cdr_zz(r->sms_parts));
    d = cdr_put_varint(d, cdr_zz(r->partial_seq));
    d = cdr_put_varint(d, cdr_zz(r->billed));
    d = cdr_put_varint(d, r->line);
    d = cdr_put_varint(d, r->offset);
    d = cdr_put_varint(d, r->n_extra);
    for (uint32_t i = 0; i < r->n_extra; i++)
        d = put_str(d, r->extra[i].p, r->extra[i].n);
    size_t pay = (size_t)(d - (base + 6));
    unsigned char hdr[11], *h = hdr;
    *h++ = 'R';
    h = cdr_put_varint(h, pay);
    size_t hl = (size_t)(h - hdr);
    memmove(base + hl, base + 6, pay);
    memcpy(base, hdr, hl);
    s->buf.n += hl + pay;
    s->records++;
    if (s->buf.n >= p->limit)
        return flush_shard(p, k);
    return CDR_OK;
}

cdr_err cdr_pieces_commit(cdr_pieces *p, const char *sha_hex, uint64_t *counts)
{
    if (p->status != CDR_OK)
        return p->status;
    if (strlen(sha_hex) != 64)
        return pfail(p, CDR_E_USAGE, "bad file identity");
    memcpy(p->sha, sha_hex, 65);
    for (uint32_t k = 0; k < p->parts; k++) {
        shard_out *s = &p->s[k];
        if (counts)
            counts[k] = s->records;
        if (s->records == 0)
            continue;
        unsigned char t[10];
        unsigned char *d = cdr_put_varint(t, s->records);
        if (put_entry(p, k, 'E', t, (size_t)(d - t)) != CDR_OK || flush_shard(p, k) != CDR_OK)
            return p->status;
    }
    /* every piece complete on disk before any takes its name */
    for (uint32_t k = 0; k < p->parts; k++) {
        if (p->s[k].records == 0)
            continue;
        char path[4400];
        tmp_path(p, k, path, sizeof path);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            int en = errno;
            if (fd >= 0)
                close(fd);
            return pfail(p, CDR_E_IO, "cannot sync %s: %s", path, strerror(en));
        }
        close(fd);
    }
    for (uint32_t k = 0; k < p->parts; k++) {
        if (p->s[k].records == 0)
            continue;
        char from[4400], to[4400];
        tmp_path(p, k, from, sizeof from);
        final_path(p, k, to, sizeof to);
        if (rename(from, to) != 0)
            return pfail(p, CDR_E_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
        p->s[k].opened = 0;
        char d[4300];
        snprintf(d, sizeof d, "%s/shard-%u/incoming", p->dir, k);
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    p->committed = 1;
    return CDR_OK;
}

void cdr_pieces_abort(cdr_pieces *p)
{
    if (!p)
        return;
    for (uint32_t k = 0; p->s && k < p->parts; k++) {
        if (!p->s[k].opened)
            continue;
        char path[4400];
        tmp_path(p, k, path, sizeof path);
        unlink(path);
        p->s[k].opened = 0;
    }
}

void cdr_pieces_free(cdr_pieces *p)
{
    if (!p)
        return;
    if (!p->committed)
        cdr_pieces_abort(p);
    for (uint32_t k = 0; p->s && k < p->parts; k++)
        free(p->s[k].buf.p);
    for (uint32_t i = 0; i < p->n_extra; i++)
        free(p->extra_names[i]);
    free(p->extra_names);
    free(p->s);
    free(p->z.p);
    free(p->lvl);
    free(p->dir);
    free(p);
}

/* ---- reading a piece ---- */

typedef struct rd {
    const unsigned char *p, *end;
    int bad;
} rd;

static uint64_t get_varint(rd *r)
{
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static cdr_str get_str(rd *r)
{
    cdr_str s = {"", 0};
    uint64_t n = get_varint(r);
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return s;
    }
    s.p = (const char *)r->p;
    s.n = (size_t)n;
    r->p += n;
    return s;
}

typedef struct prd {
    cdr_str *names; /* the unknown columns' names */
    uint32_t n_names;
    cdr_str *extra;
    uint32_t extra_cap;
    char *names_store;
} prd;

static int decode_extra_names(prd *x, rd *r)
{
    uint64_t n = get_varint(r);
    if (r->bad || n > 100000 || x->names)
        return -1;
    size_t total = (size_t)(r->end - r->p);
    x->names = calloc(n ? n : 1, sizeof *x->names);
    x->names_store = malloc(total + 1);
    if (!x->names || !x->names_store)
        return -1;
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        cdr_str s = get_str(r);
        if (r->bad)
            return -1;
        memcpy(x->names_store + k, s.p, s.n);
        x->names[i] = (cdr_str){x->names_store + k, s.n};
        k += s.n;
    }
    x->n_names = (uint32_t)n;
    return 0;
}

static int decode_row(prd *x, rd *r, cdr_row *row)
{
    memset(row, 0, sizeof *row);
    row->msisdn = get_str(r);
    row->record_id = get_str(r);
    row->peer = get_str(r);
    row->call_id = get_str(r);
    row->sms_ref = get_str(r);
    if (r->bad || r->end - r->p < 2)
        return -1;
    unsigned svc = *r->p++, dir = *r->p++;
    if (svc >= CDR_SVC__COUNT || dir > CDR_DIR_MT)
        return -1;
    row->service = (cdr_service)svc;
    row->direction = (cdr_direction)dir;
    row->start = cdr_unzz(get_varint(r));
    row->duration_s = cdr_unzz(get_varint(r));
    row->bytes = cdr_unzz(get_varint(r));
    row->sms_chars = cdr_unzz(get_varint(r));
    row->sms_part = (int32_t)cdr_unzz(get_varint(r));
    row->sms_parts = (int32_t)cdr_unzz(get_varint(r));
    row->partial_seq = cdr_unzz(get_varint(r));
    row->billed = cdr_unzz(get_varint(r));
    row->line = get_varint(r);
    row->offset = get_varint(r);
    uint64_t ne = get_varint(r);
    if (r->bad || ne != x->n_names)
        return -1;
    if (ne > x->extra_cap) {
        cdr_str *v = realloc(x->extra, ne * sizeof *v);
        if (!v)
            return -1;
        x->extra = v;
        x->extra_cap = (uint32_t)ne;
    }
    for (uint64_t i = 0; i < ne; i++)
        x->extra[i] = get_str(r);
    if (r->bad || r->p != r->end)
        return -1;
    row->extra = x->extra;
    row->extra_names = x->names;
    row->n_extra = (uint32_t)ne;
    return 0;
}

static cdr_err piece_fail(cdr_file_stats *st, cdr_err e, const char *path, const char *why)
{
    st->status = e;
    snprintf(st->message, sizeof st->message, "%s: %s", path, why);
    return e;
}

/* A piece opened for reading (st->size set), or the error in st. */
static cdr_err piece_open(const char *path, cdr_file_stats *st, gzFile *out)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        char m[300];
        snprintf(m, sizeof m, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return piece_fail(st, CDR_E_IO, path, m);
    }
    st->size = (uint64_t)sb.st_size;
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return piece_fail(st, CDR_E_NOMEM, path, "out of memory");
    }
    gzbuffer(g, 1 << 17);
    *out = g;
    return CDR_OK;
}

/* More of the piece into b after what is left from *pos (moved to the
 * front), room for an entry of plen bytes at least; *eof at its end.
 * Not per record: once a buffer (128 KiB) of them. */
static cdr_err piece_refill(gzFile g, pbuf *b, size_t *pos, size_t plen, int *eof,
                            cdr_file_stats *st, const char *path)
{
    if (*eof)
        return piece_fail(st, CDR_E_GZIP, path, "truncated piece (no trailer)");
    if (*pos) {
        memmove(b->p, b->p + *pos, b->n - *pos);
        b->n -= *pos;
    }
    *pos = 0;
    size_t want = plen > (1u << 17) ? plen : 1u << 17;
    if (pb_reserve(b, want) != 0)
        return piece_fail(st, CDR_E_NOMEM, path, "out of memory");
    int got = gzread(g, b->p + b->n, (unsigned)(b->cap - b->n));
    if (got < 0) {
        int zn;
        const char *zm = gzerror(g, &zn);
        return piece_fail(st, CDR_E_GZIP, path, zm && *zm ? zm : "corrupt gzip");
    }
    if (got == 0)
        *eof = 1;
    b->n += (size_t)got;
    st->bytes += (uint64_t)got;
    return CDR_OK;
}

cdr_err cdr_piece_read(const char *path, uint32_t file_index, cdr_row_fn on_row, void *user,
                       cdr_file_stats *st)
{
    memset(st, 0, sizeof *st);
    st->gzip = 1;
    gzFile g;
    cdr_err rc = piece_open(path, st, &g);
    if (rc != CDR_OK)
        return rc;
    pbuf b = {0};
    prd x = {0};
    size_t pos = 0;
    int eof = 0, seen_p = 0, seen_e = 0;
    uint64_t n_end = 0;
    while (rc == CDR_OK && !seen_e) {
        /* an entry: tag, varint length, payload */
        rd r = {b.p + pos, b.p + b.n, 0};
        int have = 0;
        size_t plen = 0;
        if (b.n - pos >= 2) {
            r.p++;
            plen = (size_t)get_varint(&r);
            have = !r.bad && (size_t)(r.end - r.p) >= plen;
            if (r.bad && b.n - pos >= 11) {
                rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (bad entry length)");
                break;
            }
        }
        if (!have) {
            if ((rc = piece_refill(g, &b, &pos, plen, &eof, st, path)) != CDR_OK)
                break;
            continue;
        }
        int tag = b.p[pos];
        rd e = {r.p, r.p + plen, 0};
        pos = (size_t)(r.p + plen - b.p);
        if (!seen_p) {
            if (tag != 'P' || plen != strlen(PIECE_MAGIC) || memcmp(e.p, PIECE_MAGIC, plen)) {
                rc = piece_fail(st, CDR_E_PARSE, path, "not a cdrecon piece");
                break;
            }
            seen_p = 1;
        } else if (tag == 'X') {
            if (decode_extra_names(&x, &e) != 0)
                rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (column names)");
        } else if (tag == 'R') {
            cdr_row row;
            if (decode_row(&x, &e, &row) != 0) {
                rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (record)");
                break;
            }
            row.file_index = file_index;
            st->rows_read++;
            st->rows_accepted++;
            if (on_row && on_row(&row, user)) {
                rc = piece_fail(st, CDR_E_INTERRUPTED, path, "stopped by the caller");
                break;
            }
        } else if (tag == 'E') {
            n_end = get_varint(&e);
            seen_e = 1;
            if (e.bad || n_end != st->rows_read)
                rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (record count)");
        } else {
            rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (unknown entry)");
        }
    }
    if (rc == CDR_OK) {
        /* nothing may follow the trailer */
        char extra;
        if (pos != b.n || gzread(g, &extra, 1) != 0)
            rc = piece_fail(st, CDR_E_PARSE, path, "corrupt piece (bytes after its end)");
    }
    gzclose_r(g);
    free(b.p);
    free(x.names);
    free(x.names_store);
    free(x.extra);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Route markers                                                        */

/* Text "key=value" lines; the file name escaped (\\ and \n). */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *d++ = *s == 'n' ? '\n' : *s;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
}

cdr_err cdr_route_mark_write(const char *dir, const cdr_route_mark *m, char *err, size_t errlen)
{
    char path[4300], tmp[4400];
    snprintf(path, sizeof path, "%s/routed/%s.done", dir, m->sha256);
    char tag[96];
    cdr_cluster_tmp_tag(tag, sizeof tag);
    snprintf(tmp, sizeof tmp, "%s/routed/.%s.done.tmp.%s", dir, m->sha256, tag);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        cdr_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CDR_E_IO;
    }
    const cdr_file_stats *s = &m->st;
    fprintf(f, "cdrecon-routed 1\nname=");
    put_escaped(f, m->name);
    fprintf(f, "\nsha256=%s\ncontent_sha256=%s\nstatus=%s\nsame_as=%s\n", m->sha256,
            m->content_sha256, m->status, m->same_as);
    if (m->profile[0]) { /* (a file read without a profile: no lines, as before) */
        fputs("profile=", f);
        put_escaped(f, m->profile);
        fprintf(f, "\nprofile_sha256=%s\n", m->profile_sha256);
    }
    fprintf(f, "size=%llu\nbytes=%llu\ngzip=%d\nrows_read=%llu\nrows_accepted=%llu\n"
            "rows_rejected=%llu\nrows_skipped=%llu\nblank_lines=%llu\nrecords=%llu\n"
            "shards=%u\nend\n",
            (unsigned long long)s->size, (unsigned long long)s->bytes, s->gzip,
            (unsigned long long)s->rows_read, (unsigned long long)s->rows_accepted,
            (unsigned long long)s->rows_rejected, (unsigned long long)s->rows_skipped,
            (unsigned long long)s->blank_lines, (unsigned long long)m->records, m->shards);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int en = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        en = errno;
    }
    if (bad || rename(tmp, path) != 0) {
        cdr_seterr(err, errlen, "cannot write %s: %s", path, strerror(bad ? en : errno));
        unlink(tmp);
        return CDR_E_IO;
    }
    return CDR_OK;
}

static int getu(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 0;
}

cdr_err cdr_route_mark_read(const char *dir, const char *sha_hex, cdr_route_mark *m, char *err,
                            size_t errlen)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/routed/%s.done", dir, sha_hex);
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return CDR_E_NOTFOUND;
        cdr_seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return CDR_E_IO;
    }
    char line[8300];
    int ok = fgets(line, sizeof line, f) && !strcmp(line, "cdrecon-routed 1\n"), end = 0;
    while (ok && !end && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (!l || line[l - 1] != '\n') {
            ok = 0;
            break;
        }
        line[--l] = '\0';
        if (!strcmp(line, "end")) {
            end = 1;
            break;
        }
        char *v = strchr(line, '=');
        if (!v) {
            ok = 0;
            break;
        }
        *v++ = '\0';
        uint64_t u = 0;
        cdr_file_stats *s = &m->st;
        if (!strcmp(line, "name")) {
            unescape(v);
            snprintf(m->name, sizeof m->name, "%s", v);
        } else if (!strcmp(line, "sha256"))
            snprintf(m->sha256, sizeof m->sha256, "%s", v);
        else if (!strcmp(line, "content_sha256"))
            snprintf(m->content_sha256, sizeof m->content_sha256, "%s", v);
        else if (!strcmp(line, "status"))
            snprintf(m->status, sizeof m->status, "%s", v);
        else if (!strcmp(line, "same_as"))
            snprintf(m->same_as, sizeof m->same_as, "%s", v);
        else if (!strcmp(line, "profile")) {
            unescape(v);
            snprintf(m->profile, sizeof m->profile, "%s", v);
        } else if (!strcmp(line, "profile_sha256"))
            snprintf(m->profile_sha256, sizeof m->profile_sha256, "%s", v);
        else if (getu(v, &u) != 0)
            ok = 0;
        else if (!strcmp(line, "size"))
            s->size = u;
        else if (!strcmp(line, "bytes"))
            s->bytes = u;
        else if (!strcmp(line, "gzip"))
            s->gzip = (int)u;
        else if (!strcmp(line, "rows_read"))
            s->rows_read = u;
        else if (!strcmp(line, "rows_accepted"))
            s->rows_accepted = u;
        else if (!strcmp(line, "rows_rejected"))
            s->rows_rejected = u;
        else if (!strcmp(line, "rows_skipped"))
            s->rows_skipped = u;
        else if (!strcmp(line, "blank_lines"))
            s->blank_lines = u;
        else if (!strcmp(line, "records"))
            m->records = u;
        else if (!strcmp(line, "shards"))
            m->shards = (uint32_t)u;
    }
    fclose(f);
    if (!ok || !end || strcmp(m->sha256, sha_hex) != 0 || strlen(m->content_sha256) != 64 ||
        (m->profile[0] && strlen(m->profile_sha256) != 64)) {
        cdr_seterr(err, errlen, "%s: not a complete route marker", path);
        return CDR_E_PARSE;
    }
    return CDR_OK;
}

cdr_err cdr_route_claim_content(const char *dir, const char *content_hex, const char *sha_hex,
                                char owner[65], char *err, size_t errlen)
{
    char path[4300], tmp[4400];
    snprintf(path, sizeof path, "%s/routed/content-%s", dir, content_hex);
    char tag[96];
    cdr_cluster_tmp_tag(tag, sizeof tag);
    snprintf(tmp, sizeof tmp, "%s/routed/.content-%s.tmp.%s", dir, content_hex, tag);
    for (int tries = 0; tries < 3; tries++) {
        /* a complete claim appears at once: written aside, then linked */
        cdr_err e = write_synced(tmp, err, errlen, "%s\n", sha_hex);
        if (e != CDR_OK)
            return e;
        int r = link(tmp, path);
        int en = errno;
        unlink(tmp);
        if (r == 0) {
            memcpy(owner, sha_hex, 65);
            return CDR_OK;
        }
        if (en != EEXIST) {
            cdr_seterr(err, errlen, "cannot create %s: %s", path, strerror(en));
            return CDR_E_IO;
        }
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* removed meanwhile: try again */
        char line[80] = "";
        int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        if (ok && strlen(line) == 65 && line[64] == '\n') {
            memcpy(owner, line, 64);
            owner[64] = '\0';
            return CDR_OK;
        }
        cdr_seterr(err, errlen, "%s: not a content claim", path);
        return CDR_E_PARSE;
    }
    cdr_seterr(err, errlen, "cannot claim %s", path);
    return CDR_E_IO;
}
