/* cdrecon — the evidence pack: HTML pages, records.csv, SMS text and manifest,
 * written into a safely created directory (include/cdrecon/evidence.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/evidence.h"
#include "cdrecon/outdir.h"
#include "cdrecon/textsafe.h"
#include "cdrecon/version.h"
#include "errmsg.h"
#include "sha256.h"
#include "textbuf.h"

/* HTML-escape data text: & < > " ' as entities, invalid UTF-8 and control
 * characters (except TAB and LF) as U+FFFD. */
static void html_esc(textbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        switch (c) {
        case '&': tb_puts(b, "&amp;"); i++; continue;
        case '<': tb_puts(b, "&lt;"); i++; continue;
        case '>': tb_puts(b, "&gt;"); i++; continue;
        case '"': tb_puts(b, "&quot;"); i++; continue;
        case '\'': tb_puts(b, "&#39;"); i++; continue;
        default: break;
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) {
            tb_puts(b, "\xEF\xBF\xBD");
            i++;
            continue;
        }
        size_t k = cdr_utf8_len(p + i, n - i, NULL);
        if (k == 0) {
            tb_puts(b, "\xEF\xBF\xBD");
            i++;
            continue;
        }
        tb_put(b, (const char *)p + i, k);
        i += k;
    }
}

/* ------------------------------------------------------------------ */
/* Masking and names.                                                  */

char *cdr_evidence_mask_text(const char *s, const char *own)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    cdr_text_mask_numbers(s, n, own, out);
    return out;
}

const char *cdr_ev_copy_name(cdr_ev_copy c)
{
    return c == CDR_EV_CUSTOMER ? "customer" : "internal";
}

const char *cdr_category_zh(cdr_category c)
{
    switch (c) {
    case CDR_CAT_DUPLICATE: return "异常重复话单收费";
    case CDR_CAT_FREE_NUMBER: return "拨打免费电话产生收费";
    case CDR_CAT_ZERO_DURATION: return "超短话单收费";
    case CDR_CAT_PARTIAL_ROUNDING: return "超长话单分段计费差错";
    case CDR_CAT_VAS_NO_SUBSCRIPTION: return "多收/错收信息费";
    case CDR_CAT_DATA_NO_USAGE: return "未产生上网记录但收取费用";
    case CDR_CAT_BUNDLE_NOT_APPLIED: return "优惠未按标准执行";
    case CDR_CAT_DISCOUNT_NOT_APPLIED: return "优惠未按标准执行";
    case CDR_CAT_WRONG_BAND: return "跨时段计费错误";
    case CDR_CAT_SMS_SEGMENTS: return "短信条数计量差错";
    case CDR_CAT_DATA_ROUNDING: return "上网流量计量差错";
    case CDR_CAT_RATE_MISMATCH: return "资费标准执行差错";
    default: return "";
    }
}

/* English words for a category (the page shows both). */
static const char *category_en(cdr_category c)
{
    switch (c) {
    case CDR_CAT_DUPLICATE: return "duplicate record charged";
    case CDR_CAT_FREE_NUMBER: return "call to a free number charged";
    case CDR_CAT_ZERO_DURATION: return "0-second call charged";
    case CDR_CAT_PARTIAL_ROUNDING: return "parts of one long call rounded up separately";
    case CDR_CAT_VAS_NO_SUBSCRIPTION: return "information fee without a subscription";
    case CDR_CAT_DATA_NO_USAGE: return "data charged without usage";
    case CDR_CAT_BUNDLE_NOT_APPLIED: return "bundle allowance not applied";
    case CDR_CAT_DISCOUNT_NOT_APPLIED: return "plan discount not applied";
    case CDR_CAT_WRONG_BAND: return "charged in the wrong time band";
    case CDR_CAT_SMS_SEGMENTS: return "SMS segments over-counted";
    case CDR_CAT_DATA_ROUNDING: return "data volume rounded wrongly";
    case CDR_CAT_RATE_MISMATCH: return "charge does not match the tariff";
    case CDR_CAT_LEAKAGE: return "undercharged (leakage, not refunded)";
    default: return "";
    }
}

static cdr_category category_of(const char *name)
{
    if (!name || !*name)
        return CDR_CAT_NONE;
    for (int c = 0; c < CDR_CAT__COUNT; c++)
        if (strcmp(cdr_category_name((cdr_category)c), name) == 0)
            return (cdr_category)c;
    return CDR_CAT_NONE;
}

size_t cdr_evidence_sms(const cdr_candidate *c, cdr_time date, const char *operator_name,
                        char *buf, size_t n)
{
    char problem[512] = "", amount[32], d[16];
    size_t k = 0;
    const char *seen[CDR_CAT__OVERCHARGE_COUNT];
    int nseen = 0;
    for (int i = 0; i < CDR_CAT__OVERCHARGE_COUNT; i++) {
        if (!(c->categories & (1u << i)))
            continue;
        const char *zh = cdr_category_zh((cdr_category)i);
        int dup = 0;
        for (int j = 0; j < nseen; j++)
            if (strcmp(seen[j], zh) == 0)
                dup = 1;
        if (dup)
            continue;
        seen[nseen++] = zh;
        k += (size_t)snprintf(problem + k, sizeof problem - k, "%s%s", nseen > 1 ? "、" : "", zh);
        if (k >= sizeof problem)
            k = sizeof problem - 1;
    }
    cdr_money_format(c->refund, 2, amount);
    cdr_date_format(date, d); /* YYYY-MM-DD */
    return (size_t)snprintf(buf, n,
                            "尊敬的客户,您反映的%s问题,已于%.4s年%.2s月%.2s日对您完成退费处理,"
                            "退费金额%s元,感谢您的支持与关注。%s",
                            problem, d, d + 5, d + 8, amount,
                            operator_name && *operator_name ? operator_name : "中国移动");
}

/* ------------------------------------------------------------------ */
/* The pack directory.                                                  */

#define MAX_FILES 16

struct cdr_evidence {
    int dirfd;
    int subfd[CDR_EV__COPIES];
    char *abspath;
    char pathbuf[4096 + 64];
    char *files[MAX_FILES]; /* relative names written, in order */
    size_t n_files;
    char *manifest_head;
    char err[768];
};

static const char *const pack_files[] = {"evidence.html", "evidence.pdf", "records.csv",
                                         "sms.txt", NULL};

static cdr_err ev_fail(char *err, size_t errlen, cdr_err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cdr_err ev_fail(char *err, size_t errlen, cdr_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cdr_vseterr(err, errlen, fmt, ap);
    va_end(ap);
    return e;
}

/* 1 if the directory fd has entries other than . and .. (-1 on error). */
static int dir_nonempty(int fd)
{
    int d = dup(fd);
    if (d < 0)
        return -1;
    DIR *dp = fdopendir(d);
    if (!dp) {
        close(d);
        return -1;
    }
    int any = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            any = 1;
            break;
        }
    closedir(dp);
    return any;
}

/* Remove the pack's own names (never anything else) under DIR. */
static cdr_err remove_old_pack(int dirfd, char *err, size_t errlen)
{
    for (int c = 0; c < CDR_EV__COPIES; c++) {
        const char *sub = cdr_ev_copy_name((cdr_ev_copy)c);
        struct stat st;
        if (fstatat(dirfd, sub, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISDIR(st.st_mode)) { /* a link or a file in our place: remove the name */
            if (unlinkat(dirfd, sub, 0) != 0)
                return ev_fail(err, errlen, CDR_E_IO, "cannot remove %s: %s", sub, strerror(errno));
            continue;
        }
        int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return ev_fail(err, errlen, CDR_E_IO, "cannot open %s: %s", sub, strerror(errno));
        for (int i = 0; pack_files[i]; i++)
            if (unlinkat(fd, pack_files[i], 0) != 0 && errno != ENOENT) {
                int en = errno;
                close(fd);
                return ev_fail(err, errlen, CDR_E_IO, "cannot remove %s/%s: %s", sub,
                               pack_files[i], strerror(en));
            }
        close(fd);
    }
    if (unlinkat(dirfd, "manifest", 0) != 0 && errno != ENOENT)
        return ev_fail(err, errlen, CDR_E_IO, "cannot remove manifest: %s", strerror(errno));
    return CDR_OK;
}

/* ev->abspath: dir as an absolute path (for the printer and the
 * manifest), without trailing slashes. */
static cdr_err ev_abspath(cdr_evidence *ev, const char *dir, char *err, size_t errlen)
{
    if (dir[0] == '/') {
        ev->abspath = strdup(dir);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) {
            return ev_fail(err, errlen, CDR_E_IO, "cannot get the current directory: %s",
                           strerror(errno));
        }
        size_t k = strlen(cwd) + strlen(dir) + 2;
        ev->abspath = malloc(k);
        if (ev->abspath)
            snprintf(ev->abspath, k, "%s/%s", cwd, dir);
    }
    if (!ev->abspath) {
        return ev_fail(err, errlen, CDR_E_NOMEM, "out of memory");
    }
    size_t l = strlen(ev->abspath);
    while (l > 1 && ev->abspath[l - 1] == '/')
        ev->abspath[--l] = '\0';
    return CDR_OK;
}

/* ev->dirfd: the pack directory: a new directory or an existing one of
 * ours (emptied of an earlier pack with CDR_EV_FORCE), never a symbolic
 * link (cdr_dir_open walks the path with O_NOFOLLOW). copy: dir to cut
 * into its components. */
static cdr_err ev_packdir(cdr_evidence *ev, const char *dir, char *copy, unsigned flags,
                          char *err, size_t errlen)
{
    cdr_err e = CDR_OK;
    char *comps[512];
    int nc = 0;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok && nc < 512;
         tok = strtok_r(NULL, "/", &save))
        if (strcmp(tok, ".") != 0)
            comps[nc++] = tok;
    if (nc == 0 || strcmp(comps[nc - 1], "..") == 0) {
        return ev_fail(err, errlen, CDR_E_USAGE,
                       "give a new directory for the pack, not %s", dir);
    }
    int created = 0;
    ev->dirfd = cdr_dir_open(dir, CDR_DIR_CREATE, &created, &e, err, errlen);
    if (ev->dirfd < 0)
        return e;
    if (!created) {
        struct stat st;
        if (fstat(ev->dirfd, &st) != 0 || st.st_uid != geteuid()) {
            return ev_fail(err, errlen, CDR_E_IO,
                           "%s exists and is not owned by you: refused", dir);
        }
        int ne = dir_nonempty(ev->dirfd);
        if (ne < 0) {
            return ev_fail(err, errlen, CDR_E_IO, "cannot list %s: %s", dir, strerror(errno));
        }
        if (ne && !(flags & CDR_EV_FORCE)) {
            e = ev_fail(err, errlen, CDR_E_EXISTS,
                        "%s exists and is not empty (an earlier pack?); use --force to "
                        "replace the pack's files", dir);
            return e;
        }
        if (ne && (e = remove_old_pack(ev->dirfd, err, errlen)) != CDR_OK)
            return e;
    }
    return CDR_OK;
}

cdr_err cdr_evidence_open(const char *dir, unsigned flags, cdr_evidence **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (!dir || !*dir)
        return ev_fail(err, errlen, CDR_E_USAGE, "empty output directory");
    if (strlen(dir) > 4096)
        return ev_fail(err, errlen, CDR_E_USAGE, "output directory path too long");
    cdr_evidence *ev = calloc(1, sizeof *ev);
    char *copy = strdup(dir);
    if (!ev || !copy) {
        free(ev);
        free(copy);
        return ev_fail(err, errlen, CDR_E_NOMEM, "out of memory");
    }
    ev->dirfd = ev->subfd[0] = ev->subfd[1] = -1;
    cdr_err e = CDR_OK;
    if ((e = ev_abspath(ev, dir, err, errlen)) != CDR_OK ||
        (e = ev_packdir(ev, dir, copy, flags, err, errlen)) != CDR_OK)
        goto fail;
    for (int c = 0; c < CDR_EV__COPIES; c++) {
        const char *sub = cdr_ev_copy_name((cdr_ev_copy)c);
        if (mkdirat(ev->dirfd, sub, 0755) != 0 && errno != EEXIST) {
            e = ev_fail(err, errlen, CDR_E_IO, "cannot create %s/%s: %s", dir, sub,
                        strerror(errno));
            goto fail;
        }
        ev->subfd[c] = openat(ev->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ev->subfd[c] < 0) {
            e = ev_fail(err, errlen, CDR_E_IO, "cannot open %s/%s: %s", dir, sub,
                        strerror(errno));
            goto fail;
        }
    }
    free(copy);
    *out = ev;
    return CDR_OK;
fail:
    free(copy);
    cdr_evidence_free(ev);
    return e;
}

void cdr_evidence_free(cdr_evidence *ev)
{
    if (!ev)
        return;
    if (ev->dirfd >= 0)
        close(ev->dirfd);
    for (int c = 0; c < CDR_EV__COPIES; c++)
        if (ev->subfd[c] >= 0)
            close(ev->subfd[c]);
    for (size_t i = 0; i < ev->n_files; i++)
        free(ev->files[i]);
    free(ev->manifest_head);
    free(ev->abspath);
    free(ev);
}

const char *cdr_evidence_errmsg(const cdr_evidence *ev) { return ev ? ev->err : ""; }

const char *cdr_evidence_path(cdr_evidence *ev, cdr_ev_copy c, const char *name)
{
    snprintf(ev->pathbuf, sizeof ev->pathbuf, "%s/%s/%s", ev->abspath, cdr_ev_copy_name(c),
             name);
    return ev->pathbuf;
}

static int plain_name(const char *name)
{
    return name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
           !strchr(name, '/') && strlen(name) < 128;
}

/* Create dirfd/name exclusively and write the whole buffer. */
static cdr_err put_file(cdr_evidence *ev, int copy, const char *name, const char *data,
                        size_t n)
{
    int at = copy < 0 ? ev->dirfd : ev->subfd[copy];
    char rel[160];
    snprintf(rel, sizeof rel, "%s%s%s", copy < 0 ? "" : cdr_ev_copy_name((cdr_ev_copy)copy),
             copy < 0 ? "" : "/", name);
    if (!plain_name(name))
        return ev_fail(ev->err, sizeof ev->err, CDR_E_USAGE, "bad file name in pack: %s", name);
    int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return ev_fail(ev->err, sizeof ev->err, errno == EEXIST ? CDR_E_EXISTS : CDR_E_IO,
                       "cannot create %s/%s: %s", ev->abspath, rel, strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int en = errno;
            close(fd);
            unlinkat(at, name, 0);
            return ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot write %s/%s: %s",
                           ev->abspath, rel, strerror(en));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int en = errno;
        unlinkat(at, name, 0);
        return ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot write %s/%s: %s",
                       ev->abspath, rel, strerror(en));
    }
    if (ev->n_files < MAX_FILES)
        ev->files[ev->n_files++] = strdup(rel);
    return CDR_OK;
}

cdr_err cdr_evidence_add_file(cdr_evidence *ev, cdr_ev_copy c, const char *name,
                              const char *src_path)
{
    if (!plain_name(name))
        return ev_fail(ev->err, sizeof ev->err, CDR_E_USAGE, "bad file name in pack: %s",
                       name ? name : "");
    FILE *fp = fopen(src_path, "rb");
    if (!fp)
        return ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot open %s: %s", src_path,
                       strerror(errno));
    textbuf b = {0};
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0)
        tb_put(&b, buf, k);
    int bad = ferror(fp), en = errno;
    fclose(fp);
    cdr_err e;
    if (bad)
        e = ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot read %s: %s", src_path,
                    strerror(en ? en : EIO));
    else if (b.oom)
        e = ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
    else
        e = put_file(ev, (int)c, name, b.p ? b.p : "", b.n);
    free(b.p);
    return e;
}

/* ------------------------------------------------------------------ */
/* records.csv                                                          */

static cdr_err write_records(cdr_evidence *ev, const cdr_stmt *s, int cust)
{
    char tmpname[64];
    char *data = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&data, &len);
    if (!m)
        return ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
    cdr_csvw *w = NULL;
    cdr_err e = cdr_csvw_open_stream(m, "records.csv", &w);
    if (e == CDR_OK)
        e = cdr_stmt_rec_header(w);
    for (size_t i = 0; e == CDR_OK && i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (!cust) {
            e = cdr_stmt_rec_write(w, r);
            continue;
        }
        /* The customer's row: other parties masked, no provenance. */
        cdr_stmt_rec c = *r;
        char *mk[7] = {0};
        mk[0] = cdr_evidence_mask_text(r->peer, s->msisdn);
        mk[1] = cdr_evidence_mask_text(r->record_id, s->msisdn);
        mk[2] = cdr_evidence_mask_text(r->dup_of, s->msisdn);
        mk[3] = strdup("");
        mk[4] = strdup("");
        mk[5] = cdr_evidence_mask_text(r->call_id, s->msisdn);
        mk[6] = cdr_evidence_mask_text(r->sms_ref, s->msisdn);
        int oom = 0;
        for (int k = 0; k < 7; k++)
            oom |= mk[k] == NULL;
        if (!oom) {
            c.peer = mk[0];
            c.record_id = mk[1];
            c.dup_of = mk[2];
            /* internal only (docs/evidence.md): the unknown CDR columns (cell
             * and MSC ids are location data) and the engine's explanations */
            c.extra = "";
            c.explanation = "";
            c.call_id = mk[5];
            c.sms_ref = mk[6];
            c.file = "";
            c.line = 0;
            c.offset = 0;
            e = cdr_stmt_rec_write(w, &c);
        } else {
            e = CDR_E_NOMEM;
        }
        for (int k = 0; k < 7; k++)
            free(mk[k]);
    }
    if (e == CDR_OK)
        e = cdr_csvw_commit(w);
    if (e != CDR_OK)
        snprintf(ev->err, sizeof ev->err, "records.csv: %s",
                 w && *cdr_csvw_message(w) ? cdr_csvw_message(w) : cdr_strerror(e));
    cdr_csvw_free(w);
    fclose(m);
    snprintf(tmpname, sizeof tmpname, "records.csv");
    if (e == CDR_OK)
        e = put_file(ev, cust, tmpname, data ? data : "", len);
    free(data);
    return e;
}

/* ------------------------------------------------------------------ */
/* The page.                                                           */

typedef struct page {
    textbuf b;
    const cdr_stmt *s;
    const cdr_evidence_opts *o;
    int cust;
} page;

/* Data text for the page: masked in the customer copy, always escaped. */
static void put_data(page *pg, const char *s)
{
    if (!pg->cust) {
        html_esc(&pg->b, s);
        return;
    }
    char *m = cdr_evidence_mask_text(s, pg->s->msisdn);
    if (!m) {
        pg->b.oom = 1;
        return;
    }
    html_esc(&pg->b, m);
    free(m);
}

static const cdr_plan *find_plan(const cdr_tariff *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->n_plans; i++)
        if (strcmp(t->plans[i].name, name) == 0)
            return &t->plans[i];
    return NULL;
}

static const cdr_rate *find_rate_line(const cdr_tariff *t, uint32_t line)
{
    if (!t || !line)
        return NULL;
    for (size_t i = 0; i < t->n_rates; i++)
        if (t->rates[i].line == line)
            return &t->rates[i];
    return NULL;
}

static int affected(const cdr_stmt_rec *r, int cust)
{
    if (cust)
        return r->has_rebuilt && r->difference > 0;
    return (r->category && *r->category) || r->flags || (r->has_rebuilt && r->difference != 0);
}

static const char *unit_zh(cdr_service s)
{
    switch (s) {
    case CDR_SVC_VOICE: return "秒";
    case CDR_SVC_SMS: return "条";
    case CDR_SVC_DATA: return "KB";
    default: return "次";
    }
}

static const char *unit_en(cdr_service s)
{
    switch (s) {
    case CDR_SVC_VOICE: return "s";
    case CDR_SVC_SMS: return "segments";
    case CDR_SVC_DATA: return "KB";
    default: return "records";
    }
}

static const char *service_zh(cdr_service s)
{
    switch (s) {
    case CDR_SVC_VOICE: return "语音";
    case CDR_SVC_SMS: return "短信";
    case CDR_SVC_DATA: return "上网";
    default: return "增值业务";
    }
}

/* The arithmetic of one record, in one language (zh = 1 Chinese, 0 English). */
/* The arithmetic of a record not priced from a rate row (a duplicate, a
 * free number, ...): 1 when what was billed follows, 2 when nothing
 * follows; 0 for a priced record (nothing written). */
static int arith_status(page *pg, const cdr_stmt_rec *r, int zh)
{
    textbuf *b = &pg->b;
    switch (r->status) {
    case CDR_RS_DUPLICATE:
        if (zh) {
            tb_puts(b, "与记录 ");
            put_data(pg, r->dup_of);
            tb_puts(b, " 重复,重复话单不收费:应收 0.00 元");
        } else {
            tb_puts(b, "duplicate of record ");
            put_data(pg, r->dup_of);
            tb_puts(b, ", a duplicate is not charged: due 0.00 yuan");
        }
        return 1;
    case CDR_RS_FREE:
        tb_puts(b, zh ? "免费号码 " : "free number ");
        put_data(pg, r->peer);
        tb_puts(b, zh ? " 不收费,不占套餐:应收 0.00 元" : " is not charged: due 0.00 yuan");
        return 1;
    case CDR_RS_NO_SUBSCRIPTION:
        tb_puts(b, zh ? "业务 " : "service ");
        put_data(pg, r->peer);
        tb_puts(b, zh ? " 在使用时没有有效订购关系,信息费不应收取:应收 0.00 元"
                      : " had no valid subscription at the time: due 0.00 yuan");
        return 1;
    case CDR_RS_SEGMENT_OVER:
        tb_printf(b, zh ? "长短信第 %d 段超出 %lld 字应有的段数:应收 0.00 元"
                        : "segment %d is beyond the segments a message of %lld characters "
                          "has: due 0.00 yuan",
                  (int)r->sms_part, (long long)r->amount);
        return 1;
    case CDR_RS_PARTIAL_REST:
        tb_puts(b, zh ? "同一通话/会话的后续分段,费用已计入第一段:应收 0.00 元"
                      : "a later part of one call/session; its charge is in the first part: "
                        "due 0.00 yuan");
        return 2;
    case CDR_RS_UNRATED:
        tb_puts(b, zh ? "无法计费 (无套餐或资费): " : "cannot be rated: ");
        put_data(pg, r->explanation);
        return 2;
    default:
        return 0;
    }
}

/* A priced record's usage as counted: the rounding of a call or a data
 * session, the segments of an SMS, a VAS fee. 0 for a 0-second call
 * (then no price follows). */
static int arith_usage(page *pg, const cdr_stmt_rec *r, int zh)
{
    textbuf *b = &pg->b;
    char m1[32];
    const cdr_plan *pl = find_plan(pg->o->tariff, r->plan);
    if (r->service == CDR_SVC_VOICE) {
        if (r->usage == 0) {
            tb_puts(b, zh ? "0 秒通话不收费:应收 0.00 元" : "a 0-second call is not charged: due 0.00 yuan");
            return 0;
        }
        if (r->parts > 1)
            tb_printf(b, zh ? "%u 段合计 " : "%u parts together ", (unsigned)r->parts);
        tb_printf(b, zh ? "%lld 秒 → 按 %lld 秒进位 = %lld 秒" : "%lld s → rounded up to %lld s = %lld s",
                  (long long)r->usage, (long long)r->increment, (long long)r->billable);
    } else if (r->service == CDR_SVC_SMS) {
        if (r->sms_part > 0)
            tb_printf(b, zh ? "长短信第 %d/%d 段,计 %lld 条" : "segment %d of %d of a long SMS: %lld segment",
                      (int)r->sms_part, (int)r->sms_parts, (long long)r->usage);
        else if (pl && r->amount > pl->sms_single_chars)
            tb_printf(b, zh ? "%lld 字 ÷ %d 字/条 = %lld 条" : "%lld characters ÷ %d characters/segment = %lld segments",
                      (long long)r->amount, (int)pl->sms_part_chars, (long long)r->usage);
        else if (pl)
            tb_printf(b, zh ? "%lld 字 ≤ %d 字 = %lld 条" : "%lld characters ≤ %d characters = %lld segment",
                      (long long)r->amount, (int)pl->sms_single_chars, (long long)r->usage);
        else
            tb_printf(b, zh ? "%lld 字 = %lld 条" : "%lld characters = %lld segments",
                      (long long)r->amount, (long long)r->usage);
    } else if (r->service == CDR_SVC_DATA) {
        long long kb = (long long)((r->usage + 1023) / 1024);
        if (r->parts > 1)
            tb_printf(b, zh ? "%u 段合计 " : "%u parts together ", (unsigned)r->parts);
        tb_printf(b, zh ? "%lld 字节 ÷ 1024 = %lld KB → 按 %lld KB 进位 = %lld KB"
                        : "%lld bytes ÷ 1024 = %lld KB → rounded up to %lld KB = %lld KB",
                  (long long)r->usage, kb, (long long)r->increment, (long long)r->billable);
    } else {
        tb_printf(b, zh ? "信息费 %s 元/次,订购有效" : "information fee %s yuan per use, subscribed",
                  cdr_yuan(r->price, m1));
    }
    return 1;
}

/* ... then the bundle's part and the price: chargeable units × price
 * (× discount), the exact product where it was rounded, = the rebuilt
 * charge. */
static void arith_price(page *pg, const cdr_stmt_rec *r, int zh)
{
    textbuf *b = &pg->b;
    char m1[32], m2[32], m3[32];
    const char *sep = zh ? ";" : "; ";
    int64_t chargeable = r->billable >= 0 ? r->billable - (r->covered > 0 ? r->covered : 0) : 0;
    if (r->covered > 0 && r->service != CDR_SVC_VAS) {
        tb_puts(b, sep);
        tb_puts(b, zh ? "套餐 " : "bundle ");
        html_esc(b, r->pool);
        tb_printf(b, zh ? " 抵扣 %lld %s,计费 %lld %s" : " covers %lld %s, %lld %s charged",
                  (long long)r->covered, zh ? unit_zh(r->service) : unit_en(r->service),
                  (long long)chargeable, zh ? unit_zh(r->service) : unit_en(r->service));
    }
    if (r->service != CDR_SVC_VAS) {
        tb_puts(b, sep);
        if (r->unit == 1)
            tb_printf(b, "%lld %s × %s %s/%s", (long long)chargeable,
                      zh ? unit_zh(r->service) : unit_en(r->service), cdr_yuan(r->price, m1),
                      zh ? "元" : "yuan", zh ? unit_zh(r->service) : "segment");
        else
            tb_printf(b, "%lld %s × %s %s/%lld %s", (long long)chargeable,
                      zh ? unit_zh(r->service) : unit_en(r->service), cdr_yuan(r->price, m1),
                      zh ? "元" : "yuan", (long long)r->unit,
                      zh ? unit_zh(r->service) : unit_en(r->service));
        if (r->service == CDR_SVC_VOICE && r->band && *r->band) {
            tb_puts(b, " (");
            tb_puts(b, zh ? "时段 " : "band ");
            html_esc(b, r->band);
            tb_puts(b, ")");
        }
        if (r->discount_micro > 0) {
            cdr_money_format(r->discount_micro, 0, m2);
            tb_printf(b, " × (1 − %s%%)", m2);
        }
        /* The exact product, to show the one rounding. */
        if (r->unit > 0 && chargeable >= 0 && !(r->band && strchr(r->band, ':'))) {
            __int128 num = (__int128)chargeable * r->price * (100 * CDR_MICRO - r->discount_micro);
            __int128 den = (__int128)r->unit * 100 * CDR_MICRO;
            if (num % den == 0 && (cdr_money)(num / den) != r->rebuilt)
                tb_printf(b, " = %s", cdr_yuan((cdr_money)(num / den), m3));
            else if (num % den != 0)
                tb_printf(b, zh ? " ≈ %s (四舍五入一次)" : " ≈ %s (rounded once, half-up)",
                          cdr_yuan((cdr_money)(num / den), m3));
        }
        tb_printf(b, zh ? " = %s 元" : " = %s yuan", cdr_yuan(r->rebuilt, m1));
    }
}

/* What was billed and the difference. */
static void arith_billed(page *pg, const cdr_stmt_rec *r, int zh)
{
    textbuf *b = &pg->b;
    char m1[32], m2[32], m3[32];
    const char *sep = zh ? ";" : "; ";
    if (r->service == CDR_SVC_SMS && r->price > 0 && r->billed % r->price == 0 &&
        r->difference % r->price == 0 && r->status == CDR_RS_RATED && r->covered <= 0) {
        tb_puts(b, sep);
        tb_printf(b, zh ? "计费 %lld 条" : "billed %lld segments", (long long)(r->billed / r->price));
        if (r->difference > 0)
            tb_printf(b, zh ? "%s多收 %lld 条 × %s 元 = %s 元" : "%sovercharged %lld segments × %s yuan = %s yuan",
                      sep, (long long)(r->difference / r->price), cdr_yuan(r->price, m1),
                      cdr_yuan(r->difference, m2));
        else if (r->difference < 0)
            tb_printf(b, zh ? "%s少收 %s 元" : "%sundercharged %s yuan", sep, cdr_yuan(-r->difference, m2));
        else
            tb_printf(b, zh ? "%s无差额" : "%sno difference", sep);
        return;
    }
    tb_puts(b, sep);
    tb_printf(b, zh ? "计费 %s 元" : "billed %s yuan", cdr_yuan(r->billed, m1));
    if (r->parts > 1)
        tb_printf(b, zh ? " (%u 段合计)" : " (%u parts together)", (unsigned)r->parts);
    if (r->difference > 0)
        tb_printf(b, zh ? "%s多收 %s − %s = %s 元" : "%sovercharged %s − %s = %s yuan", sep,
                  cdr_yuan(r->billed, m1), cdr_yuan(r->rebuilt, m2), cdr_yuan(r->difference, m3));
    else if (r->difference < 0)
        tb_printf(b, zh ? "%s少收 %s 元 (不退费)" : "%sundercharged %s yuan (not refunded)", sep,
                  cdr_yuan(-r->difference, m3));
    else
        tb_printf(b, zh ? "%s无差额" : "%sno difference", sep);
}

/* A record's charge worked out in words and numbers (zh: in Chinese). */
static void arithmetic(page *pg, const cdr_stmt_rec *r, int zh)
{
    int st = arith_status(pg, r, zh);
    if (st == 2)
        return;
    if (st == 0 && arith_usage(pg, r, zh))
        arith_price(pg, r, zh);
    arith_billed(pg, r, zh);
}

static const char *approver(int tier, int zh)
{
    static const char *const z[] = {"坐席直接退费", "工单班长", "投诉主管", "运营部经理",
                                    "副总经理"};
    static const char *const e[] = {"agent refunds directly", "work-order team lead",
                                    "complaint supervisor", "operations department manager",
                                    "deputy general manager"};
    if (tier < 0 || tier > 4)
        return "?";
    return zh ? z[tier] : e[tier];
}

/* Add n working days (Monday..Friday; public holidays are not known). */
static cdr_time add_working_days(cdr_time d, int n)
{
    while (n > 0) {
        d += 86400;
        if (cdr_time_weekday(d) < 5)
            n--;
    }
    return d;
}

static void css(textbuf *b)
{
    tb_puts(b,
            "<style>\n"
            "@page{size:A4;margin:14mm 12mm}\n"
            "body{font-family:\"Noto Sans CJK SC\",\"Noto Sans SC\",\"Source Han Sans SC\","
            "\"Microsoft YaHei\",\"PingFang SC\",sans-serif;font-size:10.5pt;color:#111;"
            "margin:0;background:#fff}\n"
            "@media screen{body{margin:16px auto;max-width:900px}}\n"
            "h1{font-size:16pt;margin:0 0 4px;border-bottom:3px solid #1a4f8b;padding-bottom:4px}\n"
            "h2{font-size:12pt;margin:14px 0 6px;color:#1a4f8b}\n"
            ".en{color:#555;font-size:9pt}\n"
            "table{border-collapse:collapse;width:100%;margin:4px 0}\n"
            "th,td{border:1px solid #999;padding:3px 5px;vertical-align:top;text-align:left}\n"
            "th{background:#e8eef6}\n"
            "td.num{text-align:right;white-space:nowrap}\n"
            ".over{color:#b00020;font-weight:bold}\n"
            ".box{border:2px solid #1a4f8b;padding:8px;margin:8px 0;background:#f4f8fc}\n"
            ".sms{font-size:11.5pt;border:1px dashed #555;padding:8px;background:#fffbe6}\n"
            ".page{page-break-before:always;break-before:page}\n"
            ".copy{float:right;font-size:9pt;border:1px solid #555;padding:2px 6px}\n"
            "svg{display:block;margin:6px 0}\n"
            "</style>\n");
}

static void kv(page *pg, const char *zh, const char *en)
{
    tb_printf(&pg->b, "<th>%s<br><span class=\"en\">%s</span></th>", zh, en);
}

/* Pool chart: allowance left over the month, affected records marked. */
static void chart(page *pg, const cdr_stmt_pool *pool)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const int W = 700, H = 200, L = 60, R = 10, T = 12, B = 30;
    cdr_time t0 = cdr_month_start(s->month), t1 = cdr_month_start(s->month + 1);
    double span = (double)(t1 - t0);
    int64_t top = pool ? pool->allowance : 1;
    if (top <= 0)
        top = 1;
    /* Coordinates are layout only (floating point is fine here: no money). */
#define XP(t) (L + (double)((t) - t0) / span * (W - L - R))
#define YP(v) (T + (1.0 - (double)(v) / (double)top) * (H - T - B))
    tb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\">",
              W, H, W, H);
    tb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
                 "stroke=\"#999\"/>",
              L, T, W - L - R, H - T - B);
    /* Day ticks every 5 days. */
    int days = (int)((t1 - t0) / 86400);
    for (int d = 0; d < days; d += 5) {
        double x = XP(t0 + (cdr_time)d * 86400);
        tb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                     "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%d</text>",
                  x, T, x, H - B, x, H - B + 13, d + 1);
    }
    tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">日 day</text>",
              W - R, H - 4);
    if (pool) {
        tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%lld</text>"
                     "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">0</text>",
                  L - 4, T + 8, (long long)pool->allowance, L - 4, H - B);
        /* The step line. */
        tb_printf(b, "<polyline fill=\"none\" stroke=\"#1a4f8b\" stroke-width=\"2\" points=\"%.1f,%.1f",
                  XP(t0), YP(pool->allowance));
        int64_t left = pool->allowance;
        for (size_t i = 0; i < s->n_recs; i++) {
            const cdr_stmt_rec *r = &s->recs[i];
            if (!r->pool || strcmp(r->pool, pool->pool) != 0 || r->pool_after < 0)
                continue;
            tb_printf(b, " %.1f,%.1f %.1f,%.1f", XP(r->start), YP(left), XP(r->start),
                      YP(r->pool_after));
            left = r->pool_after;
        }
        tb_printf(b, " %.1f,%.1f\"/>", XP(t1), YP(left));
    } else {
        tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#555\">本套餐无套餐内"
                     "包含量 / this plan has no bundle allowance</text>",
                  L + 10, T + 20);
    }
    /* Affected records: red marks (on the line for this pool, on the axis otherwise). */
    int k = 0;
    for (size_t i = 0; i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (!affected(r, pg->cust))
            continue;
        k++;
        int on_pool = pool && r->pool && strcmp(r->pool, pool->pool) == 0 && r->pool_after >= 0;
        double x = XP(r->start), y = on_pool ? YP(r->pool_after) : (double)(H - B);
        tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#b00020\"/>"
                     "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#b00020\" "
                     "text-anchor=\"middle\">%d</text>",
                  x, y, x, y - 8, k);
    }
    tb_puts(b, "</svg>\n");
#undef XP
#undef YP
}

/* The rate rows (rates.csv lines) that priced the affected records, in
 * order, at most max of them; *plan the subscriber's plan (the last
 * record's that names one). */
static size_t rate_lines_of(page *pg, uint32_t *lines, size_t max, const char **plan)
{
    const cdr_stmt *s = pg->s;
    size_t nl = 0;
    *plan = NULL;
    for (size_t i = 0; i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (r->plan && *r->plan)
            *plan = r->plan;
        if (!affected(r, pg->cust) || !r->rate_line)
            continue;
        size_t j = 0;
        while (j < nl && lines[j] != r->rate_line)
            j++;
        if (j == nl && nl < max)
            lines[nl++] = r->rate_line;
    }
    return nl;
}

/* A rate row's cells after its line number (prefix NULL: none shown). */
static void rate_cells(page *pg, const char *plan, cdr_service sv, cdr_direction dir,
                       const char *prefix, const char *band, cdr_money price, int64_t unit,
                       int64_t increment, const char *pool)
{
    textbuf *b = &pg->b;
    char m1[32];
    html_esc(b, plan);
    tb_printf(b, "</td><td>%s</td><td>%s</td><td>", cdr_service_name(sv),
              cdr_direction_name(dir));
    if (prefix)
        html_esc(b, prefix);
    tb_puts(b, "</td><td>");
    html_esc(b, band);
    tb_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">%lld</td>"
                 "<td class=\"num\">%lld</td><td>",
              cdr_yuan(price, m1), (long long)unit, (long long)increment);
    html_esc(b, pool);
}

/* The table of those rate rows: from the tariff, or (a tariff without
 * the line) as the first record priced by it saw it. */
static void rate_table(page *pg, const uint32_t *lines, size_t nl)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_tariff *t = pg->o->tariff;
    tb_puts(b, "<table><tr>");
    kv(pg, "行号", "rates.csv line");
    kv(pg, "套餐", "plan");
    kv(pg, "业务", "service");
    kv(pg, "方向", "direction");
    kv(pg, "号码前缀", "prefix");
    kv(pg, "时段", "band");
    kv(pg, "单价 (元)", "price (yuan)");
    kv(pg, "计费单位", "unit");
    kv(pg, "进位", "increment");
    kv(pg, "套餐池", "pool");
    tb_puts(b, "</tr>\n");
    for (size_t j = 0; j < nl; j++) {
        const cdr_rate *rt = find_rate_line(t, lines[j]);
        const cdr_stmt_rec *ex = NULL;
        for (size_t i = 0; i < s->n_recs && !ex; i++)
            if (s->recs[i].rate_line == lines[j])
                ex = &s->recs[i];
        tb_printf(b, "<tr><td class=\"num\">%u</td><td>", lines[j]);
        if (rt)
            rate_cells(pg, t->plans[rt->plan].name, rt->service, rt->direction,
                       *rt->prefix ? rt->prefix : "*",
                       rt->band >= 0 ? t->band_names[rt->band] : "*", rt->price, rt->unit,
                       rt->increment, rt->pool >= 0 ? t->pool_names[rt->pool] : "");
        else if (ex)
            rate_cells(pg, ex->plan, ex->service, ex->direction, NULL, ex->band, ex->price,
                       ex->unit, ex->increment, ex->pool);
        tb_puts(b, "</td></tr>\n");
    }
    tb_puts(b, "</table>\n");
    if (nl == 0)
        tb_puts(b, "<p>无 / none (受影响的记录不按资费行计费 / the affected records are not "
                   "priced by a rate row: duplicates, free numbers, missing subscriptions)</p>\n");
}

/* The free numbers and subscriptions behind the affected records. */
static void behind_records(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_tariff *t = pg->o->tariff;
    for (size_t i = 0; t && i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (!affected(r, pg->cust))
            continue;
        if (r->status == CDR_RS_FREE) {
            const cdr_free_number *fn = cdr_tariff_free_number(t, r->peer, strlen(r->peer));
            if (fn) {
                tb_printf(b, "<p>free_numbers.csv 第 %u 行 / line %u: 免费号码 free number ",
                          fn->line, fn->line);
                put_data(pg, fn->prefix);
                tb_puts(b, " (");
                put_data(pg, fn->label);
                tb_puts(b, ")</p>\n");
            }
        } else if (r->status == CDR_RS_NO_SUBSCRIPTION) {
            int any = 0;
            for (size_t j = 0; j < t->n_subscriptions; j++) {
                const cdr_subscription *sub = &t->subscriptions[j];
                if (strcmp(sub->msisdn, s->msisdn) != 0 || strcmp(sub->service_code, r->peer) != 0)
                    continue;
                char f[16], to[16];
                cdr_date_format(sub->valid_from, f);
                cdr_date_format(sub->valid_to - 86400, to);
                tb_printf(b, "<p>subscriptions.csv 第 %u 行 / line %u: ", sub->line, sub->line);
                put_data(pg, sub->service_code);
                tb_printf(b, " 订购有效期 valid %s — %s</p>\n", f, to);
                any = 1;
            }
            if (!any) {
                tb_puts(b, "<p>subscriptions.csv: ");
                put_data(pg, r->peer);
                tb_puts(b, " 无订购记录 / no subscription</p>\n");
            }
        }
    }
}

/* The bundles of plan pl, and its discounts. */
static void plan_bundles(page *pg, const cdr_plan *pl)
{
    textbuf *b = &pg->b;
    const cdr_tariff *t = pg->o->tariff;
    char m1[32];
    int32_t pi = (int32_t)(pl - t->plans);
    for (size_t i = 0; i < t->n_bundles; i++)
        if (t->bundles[i].plan == pi) {
            static const char *const u[] = {"min", "seg", "MB"};
            tb_printf(b, "<p>bundles.csv 第 %u 行 / line %u: 套餐池 pool ", t->bundles[i].line,
                      t->bundles[i].line);
            html_esc(b, t->pool_names[t->bundles[i].pool]);
            tb_printf(b, " 每月 allowance %lld %s</p>\n", (long long)t->bundles[i].allowance,
                      u[t->bundles[i].unit]);
        }
    for (size_t i = 0; i < t->n_discounts; i++)
        if (t->discounts[i].plan == pi) {
            cdr_money_format(t->discounts[i].percent_micro, 0, m1);
            tb_printf(b, "<p>discounts.csv 第 %u 行 / line %u: %s 优惠 discount %s%%</p>\n",
                      t->discounts[i].line, t->discounts[i].line,
                      cdr_service_name(t->discounts[i].service), m1);
        }
}

static void tariff_rows(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_tariff *t = pg->o->tariff;
    char m1[32];
    uint32_t lines[64];
    const char *plan;
    size_t nl = rate_lines_of(pg, lines, 64, &plan);
    const cdr_plan *pl = find_plan(t, plan);
    if (pl) {
        tb_printf(b, "<p>plans.csv 第 %u 行 / line %u: 套餐 plan <b>", pl->line, pl->line);
        html_esc(b, pl->name);
        char m2[32];
        tb_printf(b, "</b>, monthly_fee %s, rounding %s, sms_single_chars %d, sms_part_chars %d, "
                     "band_rule %s</p>\n",
                  cdr_yuan(pl->monthly_fee, m1), cdr_yuan(pl->rounding, m2), (int)pl->sms_single_chars,
                  (int)pl->sms_part_chars, pl->band_rule == CDR_BAND_SPLIT ? "split" : "start");
    }
    rate_table(pg, lines, nl);
    behind_records(pg);
    if (t && pl)
        plan_bundles(pg, pl);
}

/* The names of the overcharge categories in cats, joined by sep. */
static void category_list(textbuf *b, uint32_t cats, const char *sep,
                          const char *(*name)(cdr_category c))
{
    int first = 1;
    for (int i = 0; i < CDR_CAT__OVERCHARGE_COUNT; i++)
        if (cats & (1u << i)) {
            tb_printf(b, "%s%s", first ? "" : sep, name((cdr_category)i));
            first = 0;
        }
}

/* The page's head, the copy's kind and the title. */
static void page_head(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    char mon[16];
    cdr_month_format(s->month, mon);
    tb_puts(b, "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:\">\n");
    tb_printf(b, "<title>话费核查证据 Billing evidence %s %s</title>\n", s->msisdn, mon);
    css(b);
    tb_puts(b, "</head><body>\n");
    tb_printf(b, "<div class=\"copy\">%s</div>\n",
              pg->cust ? "客户联 / customer copy" : "内部联 / internal copy — 勿外发 not for the customer");
    tb_puts(b, "<h1>话费核查证据 <span class=\"en\">Billing evidence for a complaint reply</span></h1>\n");
}

/* Who and which month. */
static void page_who(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_evidence_opts *o = pg->o;
    char mon[16], d[16];
    cdr_month_format(s->month, mon);
    cdr_date_format(o->refund_date, d);
    tb_puts(b, "<table><tr>");
    kv(pg, "手机号码", "number");
    tb_puts(b, "<td>");
    html_esc(b, s->msisdn);
    tb_puts(b, "</td>");
    kv(pg, "账期", "bill month");
    tb_printf(b, "<td>%s</td></tr><tr>", mon);
    kv(pg, "套餐", "plan");
    tb_puts(b, "<td>");
    for (size_t i = 0; i < s->n_recs; i++)
        if (s->recs[i].plan && *s->recs[i].plan) {
            html_esc(b, s->recs[i].plan);
            break;
        }
    tb_puts(b, "</td>");
    kv(pg, "出具日期", "date");
    tb_printf(b, "<td>%s</td></tr>", d);
    if (!pg->cust) {
        tb_puts(b, "<tr>");
        kv(pg, "运行编号", "run id");
        tb_puts(b, "<td>");
        html_esc(b, o->run_id ? o->run_id : "");
        tb_puts(b, "</td>");
        kv(pg, "数据来源", "source");
        tb_puts(b, "<td>");
        html_esc(b, o->source ? o->source : "");
        tb_puts(b, "</td></tr>");
    }
    tb_puts(b, "</table>\n");
}

/* The finding in plain words. */
static void page_finding(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_candidate *c = s->has_candidate ? &s->cand : NULL;
    char mon[16], m1[32], m2[32], m3[32];
    cdr_month_format(s->month, mon);
    tb_puts(b, "<h2>核查结论 <span class=\"en\">What we found</span></h2>\n<div class=\"box\">");
    cdr_yuan(s->total_billed, m1);
    cdr_yuan(s->total_rebuilt, m2);
    if (c) {
        tb_printf(b, "<p>%s 账期共 %zu 条使用记录,计费合计 %s 元,按资费重新计算应收 %s 元。"
                     "其中 <b>%u 条记录多收费用,合计多收 <span class=\"over\">%s 元</span></b>。"
                     "问题类型:",
                  mon, s->n_recs, m1, m2, (unsigned)c->records, cdr_yuan(c->overcharge, m3));
        category_list(b, c->categories, "、", cdr_category_zh);
        tb_printf(b, "。</p>\n<p class=\"en\">In %s the number has %zu records, billed %s yuan in "
                     "total; re-rated from the tariff they come to %s yuan. %u record(s) were "
                     "overcharged, by %s yuan in total. Kind: ",
                  mon, s->n_recs, m1, m2, (unsigned)c->records, m3);
        category_list(b, c->categories, "; ", category_en);
        tb_puts(b, ".</p>\n");
    } else {
        tb_printf(b, "<p>%s 账期共 %zu 条使用记录,计费合计 %s 元,按资费重新计算应收 %s 元,"
                     "<b>未发现多收费用</b>。</p>\n<p class=\"en\">In %s the number has %zu records, "
                     "billed %s yuan; re-rated from the tariff they come to %s yuan. No "
                     "overcharge was found.</p>\n",
                  mon, s->n_recs, m1, m2, mon, s->n_recs, m1, m2);
    }
    if (!pg->cust && (s->leakage > 0 || s->n_unrated > 0))
        tb_printf(b, "<p class=\"en\">内部 internal: leakage (undercharge, not refunded) %s yuan; "
                     "%llu unrated record(s).</p>\n",
                  cdr_yuan(s->leakage, m1), (unsigned long long)s->n_unrated);
    tb_puts(b, "</div>\n");
}

/* The deadline of candidate c, counted from the date of the pack (d). */
static void refund_deadline(page *pg, const cdr_candidate *c, const char *d)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_evidence_opts *o = pg->o;
    char tbuf[32];
    tb_puts(b, "<tr>");
    kv(pg, "处理时限", "deadline");
    tb_puts(b, "<td colspan=\"3\">");
    if (c->policy == CDR_POLICY_REFUND_FIRST) {
        cdr_date_format(o->refund_date + 2 * 86400, tbuf);
        tb_printf(b, "先退费后查证:确认金额后 48 小时内退费 (自 %s 起算,不晚于 %s)<br>"
                     "<span class=\"en\">refund first: refund within 48 hours of confirming "
                     "the amount (from %s: by %s)</span>",
                  d, tbuf, d, tbuf);
    } else {
        int vd = s->vip == 1 ? 1 : 3;
        cdr_time v = add_working_days(o->refund_date, vd);
        cdr_date_format(v, tbuf);
        char t2[16];
        cdr_date_format(add_working_days(v, 3), t2);
        tb_printf(b, "先查证后退费:%d 个工作日内完成核实 (不晚于 %s),确认后 3 个工作日内退费 "
                     "(不晚于 %s)<br><span class=\"en\">verify first: verification within %d "
                     "working day(s) (by %s), then refund within 3 working days (by %s); "
                     "counted from %s, weekends skipped, public holidays not</span>",
                  vd, tbuf, t2, vd, tbuf, t2, d);
    }
    tb_puts(b, "</td></tr>\n");
}

/* The refund, its deadline, (internal copy) its approval, and the SMS. */
static void page_refund(page *pg, const cdr_candidate *c)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    const cdr_evidence_opts *o = pg->o;
    char d[16], m1[32], m2[32];
    cdr_date_format(o->refund_date, d);
    tb_puts(b, "<h2>退费 <span class=\"en\">Refund</span></h2>\n<table>");
    tb_puts(b, "<tr>");
    kv(pg, "多收金额", "overcharge");
    tb_printf(b, "<td class=\"num\">%s 元</td>", cdr_yuan(c->overcharge, m1));
    kv(pg, "退费金额 (收费误差,双倍返还)", "refund (billing error: refunded twice)");
    tb_printf(b, "<td class=\"num over\">%s × 2 = %s 元</td></tr>\n", m1,
              cdr_yuan(c->refund, m2));
    refund_deadline(pg, c, d);
    if (!pg->cust) {
        tb_puts(b, "<tr>");
        kv(pg, "审批层级", "approval tier");
        tb_printf(b, "<td>%d — %s / %s</td>", c->tier, approver(c->tier, 1),
                  approver(c->tier, 0));
        kv(pg, "处理方式", "policy");
        tb_printf(b, "<td>%s (%s)<br><span class=\"en\">",
                  c->policy == CDR_POLICY_REFUND_FIRST ? "先退费后查证" : "先查证后退费",
                  cdr_policy_name(c->policy));
        html_esc(b, c->policy_reason ? c->policy_reason : "");
        tb_puts(b, "</span></td></tr>\n<tr>");
        kv(pg, "特殊客户", "special customer");
        tb_printf(b, "<td>%s</td>", c->special ? "是 yes" : "否 no");
        kv(pg, "VIP", "VIP");
        tb_printf(b, "<td>%s</td></tr>\n", s->vip == 1 ? "是 yes" : s->vip == 0 ? "否 no" : "?");
    }
    tb_puts(b, "</table>\n");
    char sms[1024];
    cdr_evidence_sms(c, o->refund_date, o->operator_name, sms, sizeof sms);
    tb_puts(b, "<h2>退费通知短信 <span class=\"en\">Notification SMS</span></h2>\n"
               "<div class=\"sms\" id=\"sms\">");
    html_esc(b, sms);
    tb_puts(b, "</div>\n");
}

/* "<br>label: text" in English (internal copy), when there is text. */
static void en_note(textbuf *b, const char *label, const char *text)
{
    if (!text || !*text)
        return;
    tb_printf(b, "<br><span class=\"en\">%s: ", label);
    html_esc(b, text);
    tb_puts(b, "</span>");
}

/* One affected record (number k) and its arithmetic, as two table rows. */
static void record_rows(page *pg, const cdr_stmt_rec *r, int k)
{
    textbuf *b = &pg->b;
    char m1[32], m2[32], m3[32], tbuf[32];
    cdr_time_format(r->start, tbuf);
    tb_printf(b, "<tr><td class=\"num\">%d</td><td>", k);
    put_data(pg, r->record_id);
    if (!pg->cust) {
        tb_puts(b, "<br><span class=\"en\">");
        html_esc(b, r->file);
        tb_printf(b, ":%llu @%llu</span>", (unsigned long long)r->line,
                  (unsigned long long)r->offset);
    }
    tb_printf(b, "</td><td>%s</td><td>%s<br><span class=\"en\">%s</span></td><td>", tbuf,
              service_zh(r->service), cdr_service_name(r->service));
    put_data(pg, r->peer);
    tb_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                 "<td class=\"num%s\">%s</td><td>",
              cdr_yuan(r->billed, m1), r->has_rebuilt ? cdr_yuan(r->rebuilt, m2) : "—",
              r->difference > 0 ? " over" : "", cdr_yuan(r->difference, m3));
    cdr_category cat = category_of(r->category);
    tb_printf(b, "%s<br><span class=\"en\">%s</span>", cdr_category_zh(cat), category_en(cat));
    if (r->flags) {
        char fl[64];
        cdr_flags_format(r->flags, fl);
        tb_printf(b, "<br><span class=\"en\">flags: %s</span>", fl);
    }
    tb_puts(b, "</td></tr>\n");
    tb_printf(b, "<tr><td></td><td colspan=\"8\">计算 <span class=\"en\">arithmetic</span>: ");
    arithmetic(pg, r, 1);
    tb_puts(b, "<br><span class=\"en\">");
    arithmetic(pg, r, 0);
    tb_puts(b, "</span>");
    if (!pg->cust) {
        en_note(b, "engine", r->explanation);
        en_note(b, "extra", r->extra);
    }
    tb_puts(b, "</td></tr>\n");
}

/* Page 2: the affected records and their arithmetic. */
static void page_records(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    tb_puts(b, "<div class=\"page\"></div>\n<h2>受影响的记录 <span class=\"en\">Affected "
               "records</span></h2>\n<table><tr>");
    kv(pg, "#", "#");
    kv(pg, "记录", "record");
    kv(pg, "时间", "start");
    kv(pg, "业务", "service");
    kv(pg, "对方", "other party");
    kv(pg, "计费", "billed");
    kv(pg, "应收", "rebuilt");
    kv(pg, "差额", "difference");
    kv(pg, "问题", "finding");
    tb_puts(b, "</tr>\n");
    int k = 0;
    for (size_t i = 0; i < s->n_recs; i++)
        if (affected(&s->recs[i], pg->cust))
            record_rows(pg, &s->recs[i], ++k);
    tb_puts(b, "</table>\n");
    if (k == 0)
        tb_puts(b, "<p>无 / none</p>\n");
}

/* The bundle chart of each pool (or one empty chart). */
static void page_bundles(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    tb_puts(b, "<h2>套餐余量 <span class=\"en\">Bundle allowance over the month (red: affected "
               "records, numbered as above)</span></h2>\n");
    if (s->n_pools == 0)
        chart(pg, NULL);
    for (size_t i = 0; i < s->n_pools; i++) {
        const cdr_stmt_pool *p = &s->pools[i];
        tb_puts(b, "<p>套餐池 pool <b>");
        html_esc(b, p->pool);
        tb_printf(b, "</b>: 包含 allowance %lld %s,已用 used %lld,剩余 left %lld</p>\n",
                  (long long)p->allowance, p->unit ? p->unit : "", (long long)p->used,
                  (long long)p->left);
        chart(pg, p);
    }
}

static void build_page(page *pg)
{
    textbuf *b = &pg->b;
    const cdr_stmt *s = pg->s;
    page_head(pg);
    page_who(pg);
    page_finding(pg);
    if (s->has_candidate)
        page_refund(pg, &s->cand);
    page_records(pg);
    page_bundles(pg);
    tb_puts(b, "<h2>适用资费 <span class=\"en\">Tariff rows applied</span></h2>\n");
    tariff_rows(pg);
    tb_printf(b, "<p class=\"en\">cdrecon %s — 全部记录见 records.csv / every record of the month "
                 "is in records.csv.</p>\n",
              CDRECON_VERSION);
    tb_puts(b, "</body></html>\n");
}

/* ------------------------------------------------------------------ */

static void manifest_path(textbuf *b, const char *p)
{
    /* One line per entry: control characters are escaped as %XX. */
    for (const unsigned char *q = (const unsigned char *)p; *q; q++) {
        if (*q < 0x20 || *q == 0x7F || *q == '%')
            tb_printf(b, "%%%02X", *q);
        else
            tb_put(b, (const char *)q, 1);
    }
}

cdr_err cdr_evidence_check_opts(const cdr_evidence_opts *o, char *err, size_t errlen)
{
    const char *op = o->operator_name ? o->operator_name : "";
    size_t n = strlen(op);
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t k = cdr_utf8_len((const unsigned char *)op + i, n - i, &cp);
        if (!k || cdr_char_unsafe(cp))
            return ev_fail(err, errlen, CDR_E_USAGE,
                           "the operator name has %s at byte %zu (it ends the customer's SMS)",
                           k ? "a control character" : "invalid UTF-8", i);
        i += k;
    }
    if (n > 200)
        return ev_fail(err, errlen, CDR_E_USAGE, "the operator name is longer than 200 bytes");
    cdr_time last;
    cdr_date_parse(CDR_EV_DATE_MAX, strlen(CDR_EV_DATE_MAX), &last);
    if (o->refund_date > last)
        return ev_fail(err, errlen, CDR_E_RANGE,
                       "the refund date is after %s: the deadlines counted from it (up to 10 "
                       "days later) would pass 9999-12-31", CDR_EV_DATE_MAX);
    return CDR_OK;
}

cdr_err cdr_evidence_write(cdr_evidence *ev, const cdr_stmt *s, const cdr_evidence_opts *o)
{
    cdr_err e;
    if ((e = cdr_evidence_check_opts(o, ev->err, sizeof ev->err)) != CDR_OK)
        return e;
    for (int c = 0; c < CDR_EV__COPIES; c++) {
        page pg = {.s = s, .o = o, .cust = c == CDR_EV_CUSTOMER};
        build_page(&pg);
        if (pg.b.oom) {
            free(pg.b.p);
            return ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
        }
        e = put_file(ev, c, "evidence.html", pg.b.p, pg.b.n);
        free(pg.b.p);
        if (e != CDR_OK)
            return e;
        if ((e = write_records(ev, s, c)) != CDR_OK)
            return e;
    }
    if (s->has_candidate) {
        char sms[1024];
        size_t n = cdr_evidence_sms(&s->cand, o->refund_date, o->operator_name, sms, sizeof sms - 1);
        if (n >= sizeof sms - 1)
            return ev_fail(ev->err, sizeof ev->err, CDR_E_RANGE, "SMS text too long");
        sms[n++] = '\n';
        if ((e = put_file(ev, CDR_EV_CUSTOMER, "sms.txt", sms, n)) != CDR_OK)
            return e;
    }

    /* The manifest's head; the files are added by finish. */
    textbuf m = {0};
    char mon[16], hex[65], d[16], m1[32];
    cdr_month_format(s->month, mon);
    cdr_date_format(o->refund_date, d);
    tb_puts(&m, "# cdrecon evidence pack manifest (docs/evidence.md)\n");
    tb_printf(&m, "tool\tcdrecon %s\ncontract\t%d\n", CDRECON_VERSION, CDRECON_CONTRACT_VERSION);
    tb_puts(&m, "run_id\t");
    manifest_path(&m, o->run_id ? o->run_id : "");
    tb_puts(&m, "\ncreated\t");
    manifest_path(&m, o->created ? o->created : "");
    tb_printf(&m, "\nmsisdn\t%s\nmonth\t%s\ndate\t%s\n", s->msisdn, mon, d);
    tb_printf(&m, "refund\t%s\n", s->has_candidate ? cdr_yuan(s->cand.refund, m1) : "0.00");
    tb_puts(&m, "source\t");
    manifest_path(&m, o->source ? o->source : "");
    tb_puts(&m, "\ncwd\t");
    manifest_path(&m, o->cwd ? o->cwd : "");
    tb_puts(&m, "\ncommand\t");
    manifest_path(&m, o->command ? o->command : "");
    tb_puts(&m, "\n");
    for (size_t i = 0; i < o->n_inputs; i++) {
        cdr_sha256_hex(o->inputs[i].sha256, hex);
        tb_printf(&m, "input\t%s\t%llu\t", hex, (unsigned long long)o->inputs[i].size);
        manifest_path(&m, o->inputs[i].path);
        tb_puts(&m, "\n");
    }
    if (o->profile) {
        cdr_sha256_hex(o->profile->sha256, hex);
        tb_printf(&m, "profile\t%s\t%llu\t", hex, (unsigned long long)o->profile->size);
        manifest_path(&m, o->profile->path);
        tb_puts(&m, "\n");
    }
    if (o->tariff) {
        for (int i = 0; i < CDR_T__COUNT; i++) {
            const cdr_tariff_file *f = &o->tariff->files[i];
            if (!f->present)
                continue;
            cdr_sha256_hex(f->sha256, hex);
            tb_printf(&m, "tariff\t%s\t%llu\t", hex, (unsigned long long)f->size);
            manifest_path(&m, o->tariff->dir);
            tb_puts(&m, "/");
            manifest_path(&m, f->name);
            tb_puts(&m, "\n");
        }
    }
    if (m.oom) {
        free(m.p);
        return ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
    }
    free(ev->manifest_head);
    ev->manifest_head = m.p;
    return CDR_OK;
}

cdr_err cdr_evidence_finish(cdr_evidence *ev)
{
    if (!ev->manifest_head)
        return ev_fail(ev->err, sizeof ev->err, CDR_E_INTERNAL, "finish before write");
    textbuf m = {0};
    tb_puts(&m, ev->manifest_head);
    for (size_t i = 0; i < ev->n_files; i++) {
        if (!ev->files[i])
            return ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
        /* Hash what is on disk, read back through the pack's descriptor. */
        int fd = openat(ev->dirfd, ev->files[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            free(m.p);
            return ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot read back %s: %s",
                           ev->files[i], strerror(errno));
        }
        cdr_sha256 h;
        cdr_sha256_init(&h);
        char buf[65536];
        ssize_t k;
        uint64_t size = 0;
        while ((k = read(fd, buf, sizeof buf)) > 0) {
            cdr_sha256_update(&h, buf, (size_t)k);
            size += (uint64_t)k;
        }
        close(fd);
        if (k < 0) {
            free(m.p);
            return ev_fail(ev->err, sizeof ev->err, CDR_E_IO, "cannot read back %s",
                           ev->files[i]);
        }
        uint8_t d[32];
        char hex[65];
        cdr_sha256_final(&h, d);
        cdr_sha256_hex(d, hex);
        tb_printf(&m, "file\t%s\t%llu\t%s\n", hex, (unsigned long long)size, ev->files[i]);
    }
    if (m.oom) {
        free(m.p);
        return ev_fail(ev->err, sizeof ev->err, CDR_E_NOMEM, "out of memory");
    }
    cdr_err e = put_file(ev, -1, "manifest", m.p, m.n);
    free(m.p);
    return e;
}
