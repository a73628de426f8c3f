/* cdrecon — state/'s file I/O: segment file tables, files written under NAME.tmp and renamed when complete, files read back with their ends checked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "stfile.h"
#include "wback.h"

/* ---- files ------------------------------------------------------------------- */

void st_file_free(st_file *f)
{
    if (!f)
        return;
    free(f->name);
    for (uint32_t i = 0; i < f->n_extra; i++)
        free(f->extra_names[i]);
    free(f->extra_names);
    free(f->anchors);
    memset(f, 0, sizeof *f);
}

void st_file_put(st_buf *b, const st_file *f)
{
    size_t nl = strlen(f->name);
    st_buf_varint(b, cdr_zz(f->db_id));
    st_buf_varint(b, nl);
    st_buf_put(b, f->name, nl);
    st_buf_varint(b, f->n_extra);
    for (uint32_t i = 0; i < f->n_extra; i++) {
        size_t l = strlen(f->extra_names[i]);
        st_buf_varint(b, l);
        st_buf_put(b, f->extra_names[i], l);
    }
    st_buf_varint(b, f->row_len);
    st_buf_varint(b, f->n_anchors);
    uint64_t pl = 0, po = 0;
    for (uint32_t i = 0; i < f->n_anchors; i++) {
        st_buf_varint(b, f->anchors[i].line - pl);
        st_buf_varint(b, f->anchors[i].offset - po);
        pl = f->anchors[i].line;
        po = f->anchors[i].offset;
    }
}

static char *rd_str(st_rd *r, size_t max)
{
    uint64_t l = st_rd_varint(r);
    const unsigned char *p = (r->bad || l > max) ? NULL : st_rd_bytes(r, (size_t)l);
    if (!p) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)l + 1);
    if (!s)
        return NULL;
    memcpy(s, p, (size_t)l);
    s[l] = '\0';
    return s;
}

int st_file_get(st_rd *r, st_file *f)
{
    memset(f, 0, sizeof *f);
    f->db_id = cdr_unzz(st_rd_varint(r));
    if (!(f->name = rd_str(r, 65536)))
        return r->bad ? -1 : -2;
    uint64_t ne = st_rd_varint(r);
    if (r->bad || ne > 65535)
        return -1;
    if (ne) {
        f->extra_names = calloc((size_t)ne, sizeof *f->extra_names);
        if (!f->extra_names)
            return -2;
    }
    for (uint64_t i = 0; i < ne; i++) {
        f->n_extra = (uint32_t)i;
        if (!(f->extra_names[i] = rd_str(r, 65536)))
            return r->bad ? -1 : -2;
    }
    f->n_extra = (uint32_t)ne;
    f->row_len = st_rd_varint(r);
    uint64_t na = st_rd_varint(r);
    if (r->bad || na > (uint64_t)(r->end - r->p) / 2)
        return -1;
    if (na) {
        f->anchors = malloc((size_t)na * sizeof *f->anchors);
        if (!f->anchors)
            return -2;
    }
    uint64_t pl = 0, po = 0;
    for (uint64_t i = 0; i < na; i++) {
        pl += st_rd_varint(r);
        po += st_rd_varint(r);
        f->anchors[i] = (st_anchor){pl, po};
    }
    f->n_anchors = (uint32_t)na;
    return r->bad ? -1 : 0;
}

/* ---- writing a file ------------------------------------------------------------ */

cdr_err stf_open(st_wfile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path);
    f->path = malloc(n + 1);
    f->tmp = malloc(n + 5);
    if (!f->path || !f->tmp)
        return CDR_E_NOMEM;
    memcpy(f->path, path, n + 1);
    memcpy(f->tmp, path, n);
    memcpy(f->tmp + n, ".tmp", 5);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (f->fd < 0) {
        snprintf(f->msg, sizeof f->msg, "cannot create %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    return CDR_OK;
}

cdr_err stf_write(st_wfile *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    if (f->status)
        return f->status;
    while (n) {
        ssize_t w = write(f->fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(f->msg, sizeof f->msg, "cannot write %s: %s", f->tmp,
                     w < 0 ? strerror(errno) : "no progress");
            return f->status = CDR_E_IO;
        }
        b += w;
        n -= (size_t)w;
        f->pos += (uint64_t)w;
    }
    cdr_wback(f->fd, &f->wback, f->pos);
    return CDR_OK;
}

/* fsync, rename into place, fsync the directory. */
cdr_err stf_commit(st_wfile *f)
{
    if (f->status)
        return f->status;
    if (fsync(f->fd) != 0 || close(f->fd) != 0) {
        f->fd = -1;
        snprintf(f->msg, sizeof f->msg, "cannot write %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) != 0) {
        snprintf(f->msg, sizeof f->msg, "cannot rename %s: %s", f->tmp, strerror(errno));
        return f->status = CDR_E_IO;
    }
    f->committed = 1;
    char *dir = strdup(f->path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return CDR_OK;
}

void stf_free(st_wfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (!f->committed && f->tmp)
        unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* A segment or checkpoint file begun: created under its temporary name,
 * its header (magic, version, month) written; what failed said in err. */
cdr_err stf_start(st_wfile *f, const char *path, const char *magic, uint32_t version,
                  cdr_month m, char *err, size_t errlen)
{
    cdr_err e = stf_open(f, path);
    if (e == CDR_OK) {
        unsigned char h[HDR_SIZE];
        memcpy(h, magic, 8);
        cdr_put_le32(h + 8, version);
        cdr_put_le32(h + 12, (uint32_t)m);
        e = stf_write(f, h, sizeof h);
    }
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f->msg);
    return e;
}

cdr_err stf_finish(st_wfile *f, unsigned char *foot, size_t n, char *err, size_t errlen)
{
    cdr_put_le32(foot + n - 4, st_crc(foot, n - 4));
    stf_write(f, foot, n);
    cdr_err e = stf_commit(f);
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f->msg);
    return e;
}

/* ---- reading a file ------------------------------------------------------------------ */

cdr_err stf_pread(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *b = buf;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? CDR_E_PARSE : CDR_E_IO;
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return CDR_OK;
}

int stf_open_ro(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    *size = (uint64_t)sb.st_size;
    return fd;
}

int stf_open_checked(const char *path, const char *magic, const char *foot_magic,
                     unsigned char *foot, size_t n, size_t ver_at, uint32_t vmin, uint32_t vmax,
                     const char *what, uint64_t *size, uint32_t *version, cdr_err *e, char *err,
                     size_t errlen)
{
    int fd = stf_open_ro(path, size);
    if (fd < 0) {
        cdr_seterr(err, errlen, "cannot open state file %s: %s", path, strerror(errno));
        *e = CDR_E_IO;
        return -1;
    }
    unsigned char h[HDR_SIZE];
    *e = CDR_E_PARSE;
    if (*size < HDR_SIZE + n || *size > FILE_CAP || stf_pread(fd, h, sizeof h, 0) ||
        memcmp(h, magic, 8) || stf_pread(fd, foot, n, *size - n) ||
        memcmp(foot, foot_magic, 8) || cdr_le32(foot + n - 4) != st_crc(foot, n - 4)) {
        cdr_seterr(err, errlen, "%s: not a %s file, truncated or damaged", path, what);
    } else if (cdr_le32(h + 8) < vmin || cdr_le32(h + 8) > vmax ||
               cdr_le32(foot + ver_at) != cdr_le32(h + 8)) {
        cdr_seterr(err, errlen, "%s: %s format version %u (this program reads %u)", path, what,
                   cdr_le32(h + 8), vmax);
    } else {
        *version = cdr_le32(h + 8);
        return fd;
    }
    close(fd);
    return -1;
}
