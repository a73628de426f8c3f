/* cdrecon — whole-file CSV table reader on libcsv (see csvtable.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <csv.h>

#include "csvtable.h"
#include "grow.h"

typedef struct rdr {
    const char *name;
    csvt_row_fn fn;
    void *ud;
    char *err;
    size_t errlen;
    cdr_err status;     /* first error; stops everything */
    char *buf;          /* fields of the current row, each NUL-terminated */
    size_t len, cap;
    size_t *off;        /* start offset of each field in buf */
    size_t *flen;
    cdr_str *fields;
    size_t nf, fcap;
    size_t header_nf;   /* 0 until the header is read */
    uint32_t row_line;  /* line where the current row starts */
    int nul_seen;
} rdr;

static int never_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void set_err(rdr *r, cdr_err e, uint32_t line, const char *msg)
{
    if (r->status != CDR_OK)
        return;
    r->status = e;
    snprintf(r->err, r->errlen, "%s:%u: %s", r->name, (unsigned)line, msg);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void on_field(void *s, size_t n, void *data)
{
    rdr *r = data;
    const char *p = s;
    if (r->status != CDR_OK)
        return;
    if (p && memchr(p, '\0', n))
        r->nul_seen = 1;
    while (n > 0 && is_blank(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    if (r->nf == r->fcap) {
        size_t nc = r->fcap ? r->fcap * 2 : 16;
        size_t *o = realloc(r->off, nc * sizeof *o);
        if (o)
            r->off = o;
        size_t *l = realloc(r->flen, nc * sizeof *l);
        if (l)
            r->flen = l;
        cdr_str *f = realloc(r->fields, nc * sizeof *f);
        if (f)
            r->fields = f;
        if (!o || !l || !f) {
            r->status = CDR_E_NOMEM;
            snprintf(r->err, r->errlen, "%s: out of memory", r->name);
            return;
        }
        r->fcap = nc;
    }
    if (cdr_grow(&r->buf, &r->cap, r->len + n + 1, 1, 256)) {
        r->status = CDR_E_NOMEM;
        snprintf(r->err, r->errlen, "%s: out of memory", r->name);
        return;
    }
    if (n)
        memcpy(r->buf + r->len, p, n);
    r->buf[r->len + n] = '\0';
    r->off[r->nf] = r->len;
    r->flen[r->nf] = n;
    r->nf++;
    r->len += n + 1;
}

static void on_row(int c, void *data)
{
    rdr *r = data;
    (void)c;
    size_t nf = r->nf;
    r->nf = 0;
    r->len = 0;
    if (r->status != CDR_OK)
        return;
    if (r->nul_seen) {
        set_err(r, CDR_E_TARIFF, r->row_line, "NUL byte in a field");
        return;
    }
    int empty = 1;
    for (size_t i = 0; i < nf; i++) {
        r->fields[i].p = r->buf + r->off[i];
        r->fields[i].n = r->flen[i];
        if (r->flen[i])
            empty = 0;
    }
    if (empty && r->header_nf)
        return;
    if (!r->header_nf) {
        r->header_nf = nf;
    } else if (nf != r->header_nf) {
        char m[96];
        snprintf(m, sizeof m, "%zu fields, but the header has %zu", nf, r->header_nf);
        set_err(r, CDR_E_TARIFF, r->row_line, m);
        return;
    }
    cdr_err e = r->fn(r->ud, r->fields, nf, r->row_line, r->err, r->errlen);
    if (e != CDR_OK)
        r->status = e;
}

static int fast_path = 1;
void csvt_set_fast_path(int on) { fast_path = on; }

int csvt_eq(cdr_str f, const char *name)
{
    size_t k = strlen(name);
    return f.n == k && strncasecmp(f.p, name, k) == 0;
}

static cdr_err slurp(const char *path, const char *name, char **out, size_t *len, char *err,
                     size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; then only a
     * regular file of bounded size is read (a FIFO would hang the load, a
     * link to /dev/zero would read until memory runs out) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno));
        return CDR_E_IO;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno));
        close(fd);
        return CDR_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file (%s): refused", name,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file");
        close(fd);
        return CDR_E_TARIFF;
    }
    if ((uint64_t)st.st_size > CSVT_MAX_BYTES) {
        snprintf(err, errlen, "%s: %llu bytes, above the limit of %llu bytes for a tariff table",
                 name, (unsigned long long)st.st_size, (unsigned long long)CSVT_MAX_BYTES);
        close(fd);
        return CDR_E_TARIFF;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : (size_t)st.st_size + 65536;
            char *nb = realloc(b, nc);
            if (!nb) {
                free(b);
                close(fd);
                snprintf(err, errlen, "%s: out of memory", name);
                return CDR_E_NOMEM;
            }
            b = nb;
            cap = nc;
        }
        ssize_t got = read(fd, b + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            free(b);
            close(fd);
            snprintf(err, errlen, "%s: cannot read: %s", name, strerror(e));
            return CDR_E_IO;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > CSVT_MAX_BYTES) { /* grew while read */
            free(b);
            close(fd);
            snprintf(err, errlen, "%s: more than %llu bytes: refused", name,
                     (unsigned long long)CSVT_MAX_BYTES);
            return CDR_E_TARIFF;
        }
    }
    close(fd);
    *out = b;
    *len = n;
    return CDR_OK;
}

/* Whether data[pos..end) (one line) holds only line ends: libcsv skips
 * such lines between rows. */
static inline int blank_line(const char *data, size_t pos, size_t end)
{
    size_t k = pos;
    while (k < end && (data[k] == '\r' || data[k] == '\n'))
        k++;
    return k == end;
}

/* A line at a row boundary with no quote and no CR (but its line end) is
 * split here: what libcsv would give, fields and then the row, at a
 * fraction of its cost (most of the tariff's load time was libcsv on
 * subscribers.csv). 0: anything else, for libcsv. */
static inline int plain_line(rdr *r, char *data, size_t pos, size_t end)
{
    size_t ce = end;
    if (ce > pos && data[ce - 1] == '\n')
        ce--;
    if (ce > pos && data[ce - 1] == '\r')
        ce--;
    if (memchr(data + pos, '"', ce - pos) || memchr(data + pos, '\r', ce - pos))
        return 0;
    if (ce > pos) { /* (a blank line holds no row) */
        size_t a = pos;
        for (;;) {
            const char *c = memchr(data + a, ',', ce - a);
            size_t b = c ? (size_t)(c - data) : ce;
            on_field(data + a, b - a, r);
            if (!c)
                break;
            a = b + 1;
        }
        on_row('\n', r);
    }
    return 1;
}

cdr_err csvt_read(const char *path, const char *name, csvt_row_fn fn, void *ud,
                  uint64_t *size, void **data_out, size_t *len_out, char *err, size_t errlen)
{
    char *data = NULL;
    size_t n = 0;
    cdr_err e = slurp(path, name, &data, &n, err, errlen);
    if (e != CDR_OK)
        return e;
    if (size)
        *size = n;

    rdr r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.fn = fn;
    r.ud = ud;
    r.err = err;
    r.errlen = errlen;

    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(data);
        snprintf(err, errlen, "%s: out of memory", name);
        return CDR_E_NOMEM;
    }
    csv_set_space_func(&p, never_space);

    size_t pos = 0;
    if (n >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF)
        pos = 3;
    uint32_t line = 0;
    int in_row = 0;
    while (pos < n && r.status == CDR_OK) {
        const char *nl = memchr(data + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : n;
        line++;
        int boundary = !in_row; /* libcsv is between rows */
        if (!in_row && !blank_line(data, pos, end)) {
            /* a row starts on this line */
            r.row_line = line;
            in_row = 1;
        }
        if (boundary && fast_path && plain_line(&r, data, pos, end)) {
            in_row = 0;
            pos = end;
            continue;
        }
        if (csv_parse(&p, data + pos, end - pos, on_field, on_row, &r) != end - pos) {
            if (r.status == CDR_OK)
                set_err(&r, csv_error(&p) == CSV_ENOMEM ? CDR_E_NOMEM : CDR_E_TARIFF,
                        line, csv_error(&p) == CSV_ENOMEM ? "out of memory"
                                                          : "malformed CSV (bad quoting)");
            break;
        }
        /* libcsv reports the row end at the line terminator, so after a
         * whole line the row is closed (state ROW_NOT_BEGUN = 0) unless a
         * quoted field spans the line end. */
        in_row = p.pstate != 0;
        pos = end;
    }
    if (r.status == CDR_OK && csv_fini(&p, on_field, on_row, &r) != 0)
        set_err(&r, CDR_E_TARIFF, r.row_line, "malformed CSV (unterminated quote)");
    csv_free(&p);
    free(r.buf);
    free(r.off);
    free(r.flen);
    free(r.fields);
    if (r.status == CDR_OK && data_out) {
        *data_out = data;
        if (len_out)
            *len_out = n;
    } else {
        free(data);
    }
    return r.status;
}
