/*
 * cdrecon — CSV output files written through a temporary name and renamed
 * into place (include/cdrecon/outcsv.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/outcsv.h"
#include "cdrecon/outdir.h"
#include "cdrecon/textsafe.h"
#include "csvout.h"
#include "errmsg.h"
#include "grow.h"
#include "wback.h"

#define CSVW_IOBUF ((size_t)1 << 18)

struct cdr_csvw {
    FILE *fp;
    int owns_fp;       /* 1: our temp file; 0: a caller's stream */
    int committed;
    int row_open;      /* a cell was written in the current row */
    cdr_err status;
    uint64_t rows;
    int dirfd;         /* owned mode only: the output directory (our own duplicate) */
    char *tmp_name;    /* ".NAME.tmp.PID", relative to dirfd */
    char *final_name;  /* NAME */
    unsigned flags;
    char *mem;         /* memory mode (cdr_csvw_open_memory): the text so far */
    size_t mem_len, mem_cap;
    int mem_mode;
    char *row;         /* cdr_csvw_row_begin's buffer for a stream writer */
    char *iobuf;       /* owned mode: the stream's buffer (freed after its fclose) */
    size_t row_cap;
    uint64_t nput, wback_at; /* owned mode: bytes put; the next look at writeback */
    uint64_t wback;          /* the writeback started up to here (src/common/wback.h) */
    char label[256];
    char message[512];
};

static cdr_err mem_reserve(cdr_csvw *w, size_t n)
{
    if (cdr_grow(&w->mem, &w->mem_cap, w->mem_len + n, 1, 65536) == 0)
        return CDR_OK;
    w->status = CDR_E_NOMEM;
    snprintf(w->message, sizeof w->message, "%s: out of memory", w->label);
    return w->status;
}

/* A cell into memory: the same bytes cdr_csv_write_cell(_raw) writes. */
static cdr_err mem_cell(cdr_csvw *w, const char *s, size_t n, int neutralise)
{
    if (mem_reserve(w, CDR_CSV_CELL_MAX(n) + 1) != CDR_OK)
        return w->status;
    char *d = w->mem + w->mem_len;
    if (w->row_open)
        *d++ = ',';
    d = cdr_csv_put_cell(d, s, n, neutralise);
    w->mem_len = (size_t)(d - w->mem);
    w->row_open = 1;
    return CDR_OK;
}

static cdr_err fail(cdr_csvw *w, cdr_err e, const char *what, int errnum)
{
    if (w->status == CDR_OK) {
        w->status = e;
        if (errnum)
            snprintf(w->message, sizeof w->message, "%s: %s: %s", w->label, what,
                     strerror(errnum));
        else
            snprintf(w->message, sizeof w->message, "%s: %s", w->label, what);
    }
    return w->status;
}

/* A plain file name: no '/', no "..", not empty, not ".". */
static int name_ok(const char *name)
{
    if (!name || !name[0] || strcmp(name, ".") == 0)
        return 0;
    if (strchr(name, '/') || strstr(name, ".."))
        return 0;
    return strlen(name) < 200;
}

static cdr_err open_fail(cdr_csvw *w, cdr_err e, char *err, size_t errlen, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));
static cdr_err open_fail(cdr_csvw *w, cdr_err e, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cdr_vseterr(err, errlen, fmt, ap);
    va_end(ap);
    cdr_csvw_free(w);
    return e;
}

cdr_err cdr_csvw_openat(int dirfd, const char *dir_label, const char *name, unsigned flags,
                        cdr_csvw **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!dir_label || !dir_label[0])
        dir_label = ".";
    if (!name_ok(name)) {
        if (err && errlen)
            snprintf(err, errlen, "bad output file name '%s'", name ? name : "");
        return CDR_E_USAGE;
    }
    cdr_csvw *w = calloc(1, sizeof *w);
    if (!w) {
        if (err && errlen)
            snprintf(err, errlen, "%s/%s: out of memory", dir_label, name);
        return CDR_E_NOMEM;
    }
    w->owns_fp = 1;
    w->flags = flags;
    w->dirfd = -1;
    size_t dl = strlen(dir_label);
    if (!strcmp(dir_label, "."))
        snprintf(w->label, sizeof w->label, "%s", name);
    else if (dl && dir_label[dl - 1] == '/')
        snprintf(w->label, sizeof w->label, "%s%s", dir_label, name);
    else
        snprintf(w->label, sizeof w->label, "%s/%s", dir_label, name);
    char tmpname[256], prefix[240];
    snprintf(tmpname, sizeof tmpname, ".%s.tmp.%ld", name, (long)getpid());
    snprintf(prefix, sizeof prefix, ".%s.tmp.", name);
    w->tmp_name = strdup(tmpname);
    w->final_name = strdup(name);
    if (!w->tmp_name || !w->final_name)
        return open_fail(w, CDR_E_NOMEM, err, errlen, "%s: out of memory", w->label);
    if ((w->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0)
        return open_fail(w, CDR_E_IO, err, errlen, "%s: %s", dir_label, strerror(errno));
    struct stat st;
    if ((flags & CDR_CSVW_NOCLOBBER) && fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return open_fail(w, CDR_E_EXISTS, err, errlen, "%s exists", w->label);
    /* Only a regular file is ever replaced: renaming over a device, a FIFO,
     * a directory or a symlink (/dev/null, say, as root) must not happen. */
    if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return open_fail(w, CDR_E_EXISTS, err, errlen,
                         "%s exists and is not a regular file: not replaced", w->label);
    /* what killed runs left under this output's temporary name */
    cdr_dir_remove_stale(w->dirfd, prefix);
    int fd = openat(w->dirfd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0644);
    if (fd < 0) {
        int en = errno;
        free(w->tmp_name); /* nothing of ours to unlink */
        w->tmp_name = NULL;
        return open_fail(w, CDR_E_IO, err, errlen, "cannot create %s/%s: %s", dir_label,
                         tmpname, strerror(en));
    }
    w->fp = fdopen(fd, "w");
    /* (stdio's 4 KiB would make a write call of every 4 KiB: the month's
     * findings.csv is tens of MB on the last night; glibc takes the size
     * only with a buffer given) */
    w->iobuf = malloc(CSVW_IOBUF);
    if (!w->fp || !w->iobuf || setvbuf(w->fp, w->iobuf, _IOFBF, CSVW_IOBUF) != 0) {
        if (w->fp)
            fclose(w->fp);
        else
            close(fd);
        w->fp = NULL;
        unlinkat(w->dirfd, w->tmp_name, 0);
        free(w->tmp_name);
        w->tmp_name = NULL;
        return open_fail(w, CDR_E_NOMEM, err, errlen, "%s: out of memory", w->label);
    }
    *out = w;
    return CDR_OK;
}

cdr_err cdr_csvw_open(const char *dir, const char *name, unsigned flags, cdr_csvw **out)
{
    *out = NULL;
    if (!dir || !dir[0] || !name_ok(name))
        return CDR_E_USAGE;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return CDR_E_IO;
    cdr_err e = cdr_csvw_openat(fd, dir, name, flags, out, NULL, 0);
    close(fd);
    return e;
}

cdr_err cdr_csvw_open_stream(FILE *fp, const char *label, cdr_csvw **out)
{
    *out = NULL;
    if (!fp)
        return CDR_E_USAGE;
    cdr_csvw *w = calloc(1, sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    w->fp = fp;
    w->dirfd = -1;
    snprintf(w->label, sizeof w->label, "%s", label ? label : "(stream)");
    *out = w;
    return CDR_OK;
}

/* Owned mode, every MiB put: start the writeback of what the stream has
 * handed to the kernel (all but its buffer), so that the commit's fsync of
 * the month's large outputs waits for less. */
static void csvw_wback(cdr_csvw *w)
{
    off_t at = ftello(w->fp);
    w->wback_at = w->nput + ((uint64_t)1 << 20);
    if (at > (off_t)CSVW_IOBUF)
        cdr_wback(fileno(w->fp), &w->wback, (uint64_t)at - CSVW_IOBUF);
}

static cdr_err put(cdr_csvw *w, const char *s, size_t n)
{
    if (w->status != CDR_OK)
        return w->status;
    if (w->mem_mode) {
        if (mem_reserve(w, n) == CDR_OK) {
            memcpy(w->mem + w->mem_len, s, n);
            w->mem_len += n;
        }
        return w->status;
    }
    if (!w->fp || w->committed)
        return fail(w, CDR_E_INTERNAL, "write after commit or abort", 0);
    errno = 0;
    if (n == 1 ? putc_unlocked(*s, w->fp) == EOF : n && fwrite_unlocked(s, 1, n, w->fp) != n)
        return fail(w, CDR_E_IO, "write failed", errno ? errno : EIO);
    w->nput += n;
    if (w->owns_fp && w->nput >= w->wback_at)
        csvw_wback(w);
    return CDR_OK;
}

/* One cell: separator, then the shared cell writer (src/common/csvout.c): RFC 4180
 * quoting, and for text cells the leading apostrophe. */
static cdr_err cell(cdr_csvw *w, const char *s, size_t n, int neutralise)
{
    if (w->status != CDR_OK)
        return w->status;
    if (!s) {
        s = "";
        n = 0;
    }
    if (w->mem_mode)
        return mem_cell(w, s, n, neutralise);
    if (w->row_open && put(w, ",", 1) != CDR_OK)
        return w->status;
    w->row_open = 1;
    errno = 0;
    int rc = neutralise ? cdr_csv_write_cell(w->fp, s, n) : cdr_csv_write_raw_cell(w->fp, s, n);
    if (rc != 0)
        return fail(w, CDR_E_IO, "write failed", errno ? errno : EIO);
    w->nput += n; /* (at least) */
    return CDR_OK;
}

cdr_err cdr_csvw_text(cdr_csvw *w, const char *s, size_t n) { return cell(w, s, n, 1); }
cdr_err cdr_csvw_textz(cdr_csvw *w, const char *s) { return cell(w, s, s ? strlen(s) : 0, 1); }
cdr_err cdr_csvw_num(cdr_csvw *w, const char *s, size_t n) { return cell(w, s, n, 0); }

cdr_err cdr_csvw_money(cdr_csvw *w, cdr_money v)
{
    char b[32];
    size_t n = cdr_money_format(v, 2, b);
    return cell(w, b, n, 0);
}

static size_t fmt_u64(uint64_t v, char *b)
{
    char t[24];
    size_t k = 0, n = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        b[n++] = t[--k];
    return n;
}
cdr_err cdr_csvw_u64(cdr_csvw *w, uint64_t v)
{
    char b[32];
    return cell(w, b, fmt_u64(v, b), 0);
}
cdr_err cdr_csvw_i64(cdr_csvw *w, int64_t v)
{
    char b[32];
    if (v >= 0)
        return cell(w, b, fmt_u64((uint64_t)v, b), 0);
    b[0] = '-';
    return cell(w, b, 1 + fmt_u64((uint64_t)0 - (uint64_t)v, b + 1), 0);
}
cdr_err cdr_csvw_raw(cdr_csvw *w, const char *p, size_t n)
{
    uint64_t rows = 0;
    for (const char *q = p, *end = p + n; (q = memchr(q, '\n', (size_t)(end - q))); q++)
        rows++;
    return cdr_csvw_raw_rows(w, p, n, rows);
}

cdr_err cdr_csvw_raw_rows(cdr_csvw *w, const char *p, size_t n, uint64_t rows)
{
    if (w->row_open)
        return fail(w, CDR_E_INTERNAL, "raw rows inside an open row", 0);
    if (put(w, p, n) == CDR_OK)
        w->rows += rows;
    return w->status;
}

char *cdr_csvw_row_begin(cdr_csvw *w, size_t max)
{
    if (w->status != CDR_OK)
        return NULL;
    if (w->row_open) {
        fail(w, CDR_E_INTERNAL, "a whole row inside an open row", 0);
        return NULL;
    }
    if (w->mem_mode)
        return mem_reserve(w, max) == CDR_OK ? w->mem + w->mem_len : NULL;
    if (!w->fp || w->committed) {
        fail(w, CDR_E_INTERNAL, "write after commit or abort", 0);
        return NULL;
    }
    if (max > w->row_cap) {
        char *p = realloc(w->row, max);
        if (!p) {
            fail(w, CDR_E_NOMEM, "out of memory", 0);
            return NULL;
        }
        w->row = p;
        w->row_cap = max;
    }
    return w->row;
}

cdr_err cdr_csvw_row_end(cdr_csvw *w, const char *end)
{
    if (w->status != CDR_OK)
        return w->status;
    if (w->mem_mode)
        w->mem_len = (size_t)(end - w->mem);
    else if (put(w, w->row, (size_t)(end - w->row)) != CDR_OK)
        return w->status;
    w->rows++;
    return CDR_OK;
}

cdr_err cdr_csvw_end_row(cdr_csvw *w)
{
    if (put(w, "\n", 1) == CDR_OK) {
        w->row_open = 0;
        w->rows++;
    }
    return w->status;
}

cdr_err cdr_csvw_status(const cdr_csvw *w) { return w->status; }
const char *cdr_csvw_message(const cdr_csvw *w) { return w->message; }
uint64_t cdr_csvw_rows(const cdr_csvw *w) { return w->rows; }

cdr_err cdr_csvw_commit(cdr_csvw *w)
{
    if (w->committed)
        return w->status;
    if (!w->fp)
        return fail(w, CDR_E_INTERNAL, "commit after abort", 0);
    if (w->row_open)
        cdr_csvw_end_row(w);
    errno = 0;
    if (w->status == CDR_OK && fflush(w->fp) != 0)
        fail(w, CDR_E_IO, "write failed", errno ? errno : EIO);
    if (w->status == CDR_OK && ferror(w->fp))
        fail(w, CDR_E_IO, "write failed", EIO);
    if (!w->owns_fp) {
        w->fp = NULL;
        w->committed = 1;
        return w->status;
    }
    if (w->status == CDR_OK && fsync(fileno(w->fp)) != 0)
        fail(w, CDR_E_IO, "fsync failed", errno);
    errno = 0;
    int rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0)
        fail(w, CDR_E_IO, "close failed", errno ? errno : EIO);
    if (w->status == CDR_OK) {
        struct stat st;
        if ((w->flags & CDR_CSVW_NOCLOBBER) &&
            fstatat(w->dirfd, w->final_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            fail(w, CDR_E_EXISTS, "output exists", 0);
        else if (fstatat(w->dirfd, w->final_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 !S_ISREG(st.st_mode))
            fail(w, CDR_E_EXISTS, "output exists and is not a regular file", 0);
        else if (renameat(w->dirfd, w->tmp_name, w->dirfd, w->final_name) != 0)
            fail(w, CDR_E_IO, "rename into place failed", errno);
        else if (fsync(w->dirfd) != 0 && errno != EINVAL)
            fail(w, CDR_E_IO, "directory fsync failed", errno);
    }
    if (w->status != CDR_OK)
        unlinkat(w->dirfd, w->tmp_name, 0); /* ENOENT after a successful rename is harmless */
    w->committed = 1;
    return w->status;
}

void cdr_csvw_abort(cdr_csvw *w)
{
    if (!w || w->committed)
        return;
    if (w->owns_fp) {
        if (w->fp)
            fclose(w->fp);
        if (w->tmp_name && w->dirfd >= 0)
            unlinkat(w->dirfd, w->tmp_name, 0);
    }
    w->fp = NULL;
    w->committed = 1;
    if (w->status == CDR_OK)
        fail(w, CDR_E_INTERRUPTED, "aborted", 0);
}

void cdr_csvw_free(cdr_csvw *w)
{
    if (!w)
        return;
    if (!w->mem_mode)
        cdr_csvw_abort(w);
    free(w->mem);
    free(w->row);
    free(w->iobuf); /* (after the fclose of commit or abort) */
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->tmp_name);
    free(w->final_name);
    free(w);
}

/* ------------------------------------------------------------------ */
/* The contract files.                                                 */

static cdr_err header(cdr_csvw *w, const char *const *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cdr_csvw_textz(w, cols[i]);
    return cdr_csvw_end_row(w);
}

#define COUNT(a) (sizeof(a) / sizeof *(a))

cdr_err cdr_findings_csv_header(cdr_csvw *w)
{
    static const char *const cols[] = {"msisdn",  "month",      "record_id", "file",
                                       "line",    "category",   "flags",     "billed",
                                       "rebuilt", "difference", "service",   "start_time",
                                       "peer",    "offset",     "explanation"};
    return header(w, cols, COUNT(cols));
}

cdr_err cdr_findings_csv_row(cdr_csvw *w, const cdr_finding *f)
{
    char b[64];
    cdr_csvw_text(w, f->msisdn.p, f->msisdn.n);
    cdr_csvw_text(w, b, cdr_month_format(f->month, b));
    cdr_csvw_text(w, f->record_id.p, f->record_id.n);
    cdr_csvw_textz(w, f->file);
    cdr_csvw_u64(w, f->line);
    cdr_csvw_textz(w, cdr_category_name(f->category));
    cdr_csvw_text(w, b, cdr_flags_format(f->flags, b));
    cdr_csvw_money(w, f->billed);
    cdr_csvw_money(w, f->rebuilt);
    cdr_csvw_money(w, f->difference);
    cdr_csvw_textz(w, cdr_service_name(f->service));
    cdr_csvw_text(w, b, cdr_time_format(f->start, b));
    cdr_csvw_text(w, f->peer.p, f->peer.n);
    cdr_csvw_u64(w, f->offset);
    cdr_csvw_textz(w, f->explanation);
    return cdr_csvw_end_row(w);
}

cdr_err cdr_candidates_csv_header(cdr_csvw *w)
{
    static const char *const cols[] = {"msisdn", "month",  "records", "overcharge",
                                       "refund", "categories", "tier", "policy",
                                       "special", "flags", "policy_reason"};
    return header(w, cols, COUNT(cols));
}

cdr_err cdr_candidates_csv_row(cdr_csvw *w, const cdr_candidate *c)
{
    char b[256];
    cdr_csvw_text(w, c->msisdn.p, c->msisdn.n);
    cdr_csvw_text(w, b, cdr_month_format(c->month, b));
    cdr_csvw_u64(w, c->records);
    cdr_csvw_money(w, c->overcharge);
    cdr_csvw_money(w, c->refund);
    cdr_csvw_text(w, b, cdr_categories_format(c->categories, b));
    cdr_csvw_i64(w, c->tier);
    cdr_csvw_textz(w, cdr_policy_name(c->policy));
    cdr_csvw_i64(w, c->special ? 1 : 0);
    cdr_csvw_text(w, b, cdr_flags_format(c->flags, b));
    cdr_csvw_textz(w, c->policy_reason);
    return cdr_csvw_end_row(w);
}

cdr_err cdr_rejects_csv_header(cdr_csvw *w)
{
    static const char *const cols[] = {"file", "line", "offset", "reason", "raw"};
    return header(w, cols, COUNT(cols));
}

cdr_err cdr_rejects_csv_row(cdr_csvw *w, const cdr_reject *r)
{
    cdr_csvw_textz(w, r->file);
    cdr_csvw_u64(w, r->line);
    cdr_csvw_u64(w, r->offset);
    cdr_csvw_textz(w, r->reason);
    /* raw: the row's bytes as valid UTF-8 (cdr_bytes_escape: NUL, control
     * bytes and invalid UTF-8 as \xHH, a backslash as \\), so the file
     * stays UTF-8 whatever the input held (docs/cdr-format.md) */
    size_t n = r->raw.n < CDR_REJECT_RAW_MAX ? r->raw.n : CDR_REJECT_RAW_MAX;
    char esc[4 * CDR_REJECT_RAW_MAX + 1];
    cdr_csvw_text(w, esc, cdr_bytes_escape(r->raw.p, n, esc));
    return cdr_csvw_end_row(w);
}

cdr_err cdr_csvw_open_memory(cdr_csvw **out)
{
    cdr_csvw *w = calloc(1, sizeof *w);
    *out = w;
    if (!w)
        return CDR_E_NOMEM;
    w->mem_mode = 1;
    w->dirfd = -1;
    snprintf(w->label, sizeof w->label, "memory");
    return CDR_OK;
}

const char *cdr_csvw_memory(const cdr_csvw *w, size_t *len)
{
    *len = w->mem_len;
    return w->mem;
}

void cdr_csvw_memory_reset(cdr_csvw *w)
{
    w->mem_len = 0;
    w->row_open = 0;
    w->rows = 0;
}
