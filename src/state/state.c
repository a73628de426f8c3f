/* cdrecon — the state directory (src/state/state.h, include/cdrecon/state.h,
 * docs/state.md): its live files opened by month, file names, garbage
 * collection, the manifest, and a subscriber-month's rows for investigate. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/engine.h"
#include "errmsg.h"
#include "stfile.h"

/* ---- the state directory ----------------------------------------------------------- */

size_t cdr_state_file_name(cdr_state_kind k, cdr_month m, int64_t run_id, char *buf)
{
    char mo[8];
    cdr_month_format(m, mo);
    return (size_t)snprintf(buf, 64, "%s-%s-r%07lld.%s", k == CDR_STATE_SEGMENT ? "seg" : "ckp",
                            mo, (long long)run_id, k == CDR_STATE_SEGMENT ? "cds" : "cdk");
}

int cdr_state_file_parse(const char *name, cdr_state_kind *k, cdr_month *m, int64_t *run_id)
{
    /* seg-YYYY-MM-rNNNNNNN.cds */
    size_t n = strlen(name);
    if (n < 24)
        return -1;
    if (!strncmp(name, "seg-", 4) && !strcmp(name + n - 4, ".cds"))
        *k = CDR_STATE_SEGMENT;
    else if (!strncmp(name, "ckp-", 4) && !strcmp(name + n - 4, ".cdk"))
        *k = CDR_STATE_CHECKPOINT;
    else
        return -1;
    if (cdr_month_parse(name + 4, 7, m) != CDR_OK || name[11] != '-' || name[12] != 'r')
        return -1;
    int64_t v = 0;
    size_t i = 13;
    for (; i < n - 4; i++) {
        if (name[i] < '0' || name[i] > '9' || v > INT64_MAX / 10 - 9)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    if (i == 13)
        return -1;
    *run_id = v;
    char again[64];
    cdr_state_file_name(*k, *m, v, again);
    return strcmp(again, name) == 0 ? 0 : -1;
}

typedef struct smonth {
    cdr_month m;
    st_segr **segs;
    size_t n_segs;
    st_ckr *ckp;
} smonth;

struct cdr_state {
    char *dir;
    smonth *months;
    size_t n_months;
    cdr_month *mlist;
};

static smonth *month_get(cdr_state *s, cdr_month m, int create)
{
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m)
            return &s->months[i];
    if (!create)
        return NULL;
    smonth *n = realloc(s->months, (s->n_months + 1) * sizeof *n);
    if (!n)
        return NULL;
    s->months = n;
    /* keep them sorted */
    size_t at = s->n_months;
    while (at > 0 && s->months[at - 1].m > m) {
        s->months[at] = s->months[at - 1];
        at--;
    }
    memset(&s->months[at], 0, sizeof s->months[at]);
    s->months[at].m = m;
    s->n_months++;
    return &s->months[at];
}

const char *cdr_state_dir(const cdr_state *s)
{
    return s->dir;
}

void cdr_state_close(cdr_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_months; i++) {
        for (size_t j = 0; j < s->months[i].n_segs; j++)
            st_segr_close(s->months[i].segs[j]);
        free(s->months[i].segs);
        st_ckr_close(s->months[i].ckp);
    }
    free(s->months);
    free(s->mlist);
    free(s->dir);
    free(s);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

cdr_err cdr_state_open(const char *dir, const char *const *live, size_t n, cdr_state **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    cdr_state *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return CDR_E_NOMEM;
    }
    cdr_err e = CDR_OK;
    for (size_t i = 0; i < n && e == CDR_OK; i++) {
        cdr_state_kind k;
        cdr_month m;
        int64_t run;
        if (cdr_state_file_parse(live[i], &k, &m, &run) != 0) {
            cdr_seterr(err, errlen, "%s: not a state file name", live[i]);
            e = CDR_E_PARSE;
            break;
        }
        char *path = join(dir, live[i]);
        smonth *sm = month_get(s, m, 1);
        if (!path || !sm) {
            free(path);
            e = CDR_E_NOMEM;
            break;
        }
        if (k == CDR_STATE_SEGMENT) {
            st_segr *r;
            e = st_segr_open(path, &r, err, errlen);
            if (e == CDR_OK) {
                st_segr **ns = realloc(sm->segs, (sm->n_segs + 1) * sizeof *ns);
                if (!ns) {
                    st_segr_close(r);
                    e = CDR_E_NOMEM;
                } else {
                    sm->segs = ns;
                    sm->segs[sm->n_segs++] = r;
                    if (st_segr_month(r) != m) {
                        cdr_seterr(err, errlen, "%s: holds month %d, its name says %d", path,
                                (int)st_segr_month(r), (int)m);
                        e = CDR_E_PARSE;
                    }
                }
            }
        } else if (sm->ckp) {
            cdr_seterr(err, errlen, "two live checkpoint files for one month (%s)", live[i]);
            e = CDR_E_PARSE;
        } else {
            e = st_ckr_open(path, &sm->ckp, err, errlen);
            if (e == CDR_OK && st_ckr_month(sm->ckp) != m) {
                cdr_seterr(err, errlen, "%s: holds another month than its name says", path);
                e = CDR_E_PARSE;
            }
        }
        free(path);
    }
    if (e == CDR_OK) {
        s->mlist = malloc((s->n_months ? s->n_months : 1) * sizeof *s->mlist);
        if (!s->mlist)
            e = CDR_E_NOMEM;
        for (size_t i = 0; e == CDR_OK && i < s->n_months; i++) {
            s->mlist[i] = s->months[i].m;
            if (!s->months[i].ckp && s->months[i].n_segs) {
                cdr_seterr(err, errlen, "records of a month without its checkpoint file");
                e = CDR_E_PARSE;
            }
        }
    }
    if (e != CDR_OK) {
        cdr_state_close(s);
        return e;
    }
    *out = s;
    return CDR_OK;
}

const cdr_month *cdr_state_months(const cdr_state *s, size_t *n)
{
    *n = s->n_months;
    return s->mlist;
}

uint64_t cdr_state_month_records(const cdr_state *s, cdr_month m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m)
            for (size_t j = 0; j < s->months[i].n_segs; j++)
                n += st_segr_records(s->months[i].segs[j]);
    return n;
}

uint64_t cdr_state_month_submonths(const cdr_state *s, cdr_month m)
{
    for (size_t i = 0; i < s->n_months; i++)
        if (s->months[i].m == m && s->months[i].ckp)
            return st_ckr_entries(s->months[i].ckp);
    return 0;
}

/* Internal accessors for the engine (state.h users). */
size_t st_state_segments(cdr_state *s, cdr_month m, st_segr ***segs)
{
    smonth *sm = month_get(s, m, 0);
    *segs = sm ? sm->segs : NULL;
    return sm ? sm->n_segs : 0;
}

st_ckr *st_state_checkpoint(cdr_state *s, cdr_month m)
{
    smonth *sm = month_get(s, m, 0);
    return sm ? sm->ckp : NULL;
}

typedef struct rows_ctx {
    cdr_state_row_fn fn;
    void *u;
    st_segr *seg;
} rows_ctx;

static int rows_cb(const cdr_row *r, uint32_t fl, void *u)
{
    rows_ctx *x = u;
    const st_file *f = st_segr_file(x->seg, fl);
    if (!f)
        return CDR_E_PARSE;
    cdr_row row = *r;
    row.file_index = 0;
    row.extra_names = NULL;
    if (row.n_extra == f->n_extra && f->n_extra) {
        /* the names as views, for the caller */
        cdr_str names[256];
        uint32_t k = f->n_extra < 256 ? f->n_extra : 256;
        for (uint32_t i = 0; i < k; i++)
            names[i] = (cdr_str){f->extra_names[i], strlen(f->extra_names[i])};
        row.extra_names = names;
        row.n_extra = k;
        return x->fn(&row, f->name, f->db_id, x->u);
    }
    return x->fn(&row, f->name, f->db_id, x->u);
}

cdr_err cdr_state_submonth_rows(cdr_state *s, const char *msisdn, cdr_month month,
                                cdr_state_row_fn fn, void *user, char *err, size_t errlen)
{
    smonth *sm = month_get(s, month, 0);
    size_t n = strlen(msisdn);
    uint64_t h = cdr_msisdn_hash(msisdn, n);
    int any = 0;
    if (!sm)
        return CDR_E_NOTFOUND;
    for (size_t i = 0; i < sm->n_segs; i++) {
        st_gcur c;
        memset(&c, 0, sizeof c);
        cdr_err e = st_gcur_seek(&c, sm->segs[i], h, msisdn, n);
        if (e == CDR_OK && c.have &&
            st_key_cmp(c.cur.h, c.cur.msisdn, c.cur.msisdn_len, h, msisdn, n) == 0) {
            rows_ctx x = {fn, user, sm->segs[i]};
            any = 1;
            e = st_gcur_rows(&c, rows_cb, &x);
        }
        if (e != CDR_OK && c.err[0])
            cdr_seterr(err, errlen, "%s", c.err);
        st_gcur_free(&c);
        if (e != CDR_OK)
            return e;
    }
    return any ? CDR_OK : CDR_E_NOTFOUND;
}

int cdr_state_submonth_info(cdr_state *s, const char *msisdn, cdr_month month,
                            uint64_t *records, uint32_t *tariff_id, char *err, size_t errlen)
{
    smonth *sm = month_get(s, month, 0);
    if (!sm || !sm->ckp)
        return 0;
    size_t n = strlen(msisdn);
    uint64_t h = cdr_msisdn_hash(msisdn, n);
    st_ckcur c;
    memset(&c, 0, sizeof c);
    cdr_err e = st_ckcur_seek(&c, sm->ckp, h);
    int found = 0;
    while (e == CDR_OK && c.have && c.cur.h == h) {
        if (c.cur.msisdn_len == n && !memcmp(c.cur.msisdn, msisdn, n)) {
            *records = c.cur.n_records;
            *tariff_id = c.cur.tariff_id;
            found = 1;
            break;
        }
        e = st_ckcur_next(&c);
    }
    if (e != CDR_OK) {
        cdr_seterr(err, errlen, "%s", c.err);
        found = -1;
    }
    st_ckcur_free(&c);
    return found;
}

cdr_err cdr_state_collect_garbage(const char *dir, const char *const *live, size_t n,
                                  uint64_t *removed, char *err, size_t errlen)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return CDR_OK;
        cdr_seterr(err, errlen, "cannot read state directory %s: %s", dir, strerror(errno));
        return CDR_E_IO;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        char base[256];
        size_t l = strlen(name);
        if (l >= sizeof base)
            continue;
        memcpy(base, name, l + 1);
        int tmp = l > 4 && !strcmp(base + l - 4, ".tmp");
        if (tmp)
            base[l - 4] = '\0';
        cdr_state_kind k;
        cdr_month m;
        int64_t run;
        /* an outputs cache's .tmp and a delta file a run had not yet
         * unlinked (src/output/outcache.c) are ours too */
        size_t bl = strlen(base);
        int oc_tmp = (tmp && bl > 8 && !strncmp(base, "out-", 4) &&
                      !strcmp(base + bl - 4, ".cdo")) ||
                     !strncmp(base, ".outdelta-", 10);
        if (oc_tmp)
            tmp = 1;
        if (!oc_tmp && cdr_state_file_parse(base, &k, &m, &run) != 0)
            continue; /* not ours: never touched */
        int keep = 0;
        for (size_t i = 0; !tmp && i < n && !keep; i++)
            keep = !strcmp(live[i], base);
        if (keep)
            continue;
        if (unlinkat(dfd, name, 0) == 0)
            (*removed)++;
        else if (errno != ENOENT) {
            cdr_seterr(err, errlen, "cannot remove %s/%s: %s", dir, name, strerror(errno));
            closedir(d);
            return CDR_E_IO;
        }
    }
    closedir(d);
    return CDR_OK;
}

/* ---- the manifest --------------------------------------------------------------- */

#define MANIFEST "MANIFEST"

void cdr_state_manifest_free(cdr_state_manifest *m)
{
    free(m->db_path);
    for (size_t i = 0; i < m->n_live; i++)
        free(m->live[i]);
    free(m->live);
    for (size_t i = 0; i < m->n_tariffs; i++)
        free(m->tariffs[i].dir);
    free(m->tariffs);
    memset(m, 0, sizeof *m);
}

/* Text fields are written as they are: a name or directory holding a newline
 * is refused (they come from the command line and our own names). */
cdr_err cdr_state_manifest_write(const char *dir, const cdr_state_manifest *m, char *err,
                                 size_t errlen)
{
    st_buf b = {0};
    char line[128];
    if (strchr(m->db_path ? m->db_path : "", '\n')) {
        cdr_seterr(err, errlen, "database path holds a newline");
        return CDR_E_USAGE;
    }
    st_buf_put(&b, "cdrecon-state 1\ndatabase ", 25);
    st_buf_put(&b, m->db_path ? m->db_path : "", m->db_path ? strlen(m->db_path) : 0);
    st_buf_u8(&b, '\n');
    for (size_t i = 0; i < m->n_tariffs; i++) {
        const char *d = m->tariffs[i].dir ? m->tariffs[i].dir : "";
        if (strchr(d, '\n'))
            d = "";
        int n = snprintf(line, sizeof line, "tariff %lld %s ", (long long)m->tariffs[i].id,
                         m->tariffs[i].sha256);
        st_buf_put(&b, line, (size_t)n);
        st_buf_put(&b, d, strlen(d));
        st_buf_u8(&b, '\n');
    }
    for (size_t i = 0; i < m->n_live; i++) {
        st_buf_put(&b, "file ", 5);
        st_buf_put(&b, m->live[i], strlen(m->live[i]));
        st_buf_u8(&b, '\n');
    }
    st_buf_put(&b, "end\n", 4);
    if (b.failed) {
        st_buf_free(&b);
        return CDR_E_NOMEM;
    }
    char *path = join(dir, MANIFEST);
    if (!path) {
        st_buf_free(&b);
        return CDR_E_NOMEM;
    }
    st_wfile f;
    cdr_err e = stf_open(&f, path);
    if (e == CDR_OK)
        e = stf_write(&f, b.p, b.n);
    if (e == CDR_OK)
        e = stf_commit(&f);
    if (e != CDR_OK)
        cdr_seterr(err, errlen, "%s", f.msg);
    stf_free(&f);
    free(path);
    st_buf_free(&b);
    return e;
}

cdr_err cdr_state_manifest_read(const char *dir, cdr_state_manifest *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    char *path = join(dir, MANIFEST);
    if (!path)
        return CDR_E_NOMEM;
    FILE *f = fopen(path, "re");
    if (!f) {
        cdr_seterr(err, errlen, "%s: %s (not a month state directory, or no run finished in it)",
                path, strerror(errno));
        free(path);
        return errno == ENOENT ? CDR_E_NOTFOUND : CDR_E_IO;
    }
    char line[8192];
    int ok = 0, first = 1;
    cdr_err e = CDR_OK;
    while (e == CDR_OK && fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') {
            e = CDR_E_PARSE;
            break;
        }
        line[--n] = '\0';
        if (first) {
            if (strcmp(line, "cdrecon-state 1") != 0)
                e = CDR_E_PARSE;
            first = 0;
        } else if (!strncmp(line, "database ", 9)) {
            free(m->db_path);
            if (!(m->db_path = strdup(line + 9)))
                e = CDR_E_NOMEM;
        } else if (!strncmp(line, "tariff ", 7)) {
            char *sp = strchr(line + 7, ' ');
            char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
            if (!sp || !sp2 || sp2 - sp - 1 != 64) {
                e = CDR_E_PARSE;
                break;
            }
            cdr_state_tariff *nt = realloc(m->tariffs, (m->n_tariffs + 1) * sizeof *nt);
            if (!nt) {
                e = CDR_E_NOMEM;
                break;
            }
            m->tariffs = nt;
            cdr_state_tariff *t = &m->tariffs[m->n_tariffs];
            t->id = strtoll(line + 7, NULL, 10);
            memcpy(t->sha256, sp + 1, 64);
            t->sha256[64] = '\0';
            if (!(t->dir = strdup(sp2 + 1))) {
                e = CDR_E_NOMEM;
                break;
            }
            m->n_tariffs++;
        } else if (!strncmp(line, "file ", 5)) {
            char **nl = realloc(m->live, (m->n_live + 1) * sizeof *nl);
            if (!nl) {
                e = CDR_E_NOMEM;
                break;
            }
            m->live = nl;
            if (!(m->live[m->n_live] = strdup(line + 5))) {
                e = CDR_E_NOMEM;
                break;
            }
            m->n_live++;
        } else if (!strcmp(line, "end")) {
            ok = 1;
            break;
        } else {
            e = CDR_E_PARSE;
        }
    }
    fclose(f);
    if (e == CDR_OK && !ok)
        e = CDR_E_PARSE;
    if (e != CDR_OK) {
        if (e == CDR_E_PARSE)
            cdr_seterr(err, errlen, "%s: damaged or truncated", path);
        cdr_state_manifest_free(m);
    }
    free(path);
    return e;
}

size_t cdr_state_segment_names(const cdr_state *s, cdr_month m, char (*names)[64], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_months; i++) {
        if (s->months[i].m != m)
            continue;
        for (size_t j = 0; j < s->months[i].n_segs && n < cap; j++) {
            snprintf(names[n++], 64, "%s", st_segr_name(s->months[i].segs[j]));
        }
    }
    return n;
}
