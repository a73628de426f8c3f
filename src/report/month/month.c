/* cdrecon — the month report's numbers: one pass over the month's findings
 * (every version), one over its candidates, and small queries of the run
 * history; each figure's table holds exactly the rows its shown query
 * (src/report/month/figures.c) gives (src/report/month/report.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "report.h"

#define TOP_MAX 20
#define DAY0 1000000 /* day numbers kept positive (years from about -800) */
#define GROUPS_MAX 64

typedef struct run {
    int64_t id, submonths, submonths_full;
    char kind[16], started[11], finished[11];
    int night;                  /* one of the month's runs */
    int64_t fdelta;             /* findings of the month written - replaced */
    int64_t status[4];          /* changes: new, increased, decreased, withdrawn */
    cdr_money delta;            /* refund change */
    int64_t files, ingested, failed, refused, rows_read, rows_rejected, rejects;
    int64_t arrived, late;      /* current findings whose file it ingested; late ones */
    char watermark[11];         /* the latest start day of the runs before ("": none) */
    int has_arrived;
} run;

typedef struct cand_row {
    char *msisdn, *categories, *policy, *flags;
    int64_t records, tier, special;
    cdr_money over, refund;
} cand_row;

typedef struct group {         /* tiers, deadlines, services: a text key and an int */
    char key[24];
    int64_t k2;
    int64_t n, special, verify;
    cdr_money over, refund, leak, max;
    char first[11], last[11];
} group;

struct rp_month {
    const char *month, *as_of;
    run *runs;
    size_t nruns;
    int64_t last, prev;        /* the latest committed run, the one before it */
    int64_t now[8], before[8]; /* totals: the metrics of the totals figure */
    rp_agg cat[CDR_CAT__COUNT];
    group svc[8], tiers[GROUPS_MAX], dead[GROUPS_MAX];
    size_t nsvc, ntiers, ndead;
    int64_t heat[7][24];
    group special;
    cand_row top[TOP_MAX];
    size_t ntop;
    int64_t *arr;              /* current findings: run index << 32 | day number */
    size_t narr, caparr;
    rp_table plans, rates, rej_reasons, rej_files; /* figures kept as they were made */
    int64_t *file_run;         /* file_id -> the run that ingested it */
    size_t file_run_n;
    int keep;                  /* keep what the tariff figures need (tup, names) */
    struct tup {               /* a current finding with money at stake */
        size_t msisdn, peer;   /* offsets into names */
        cdr_time start;
        cdr_money d;
        int svc, cat;
    } *tup;
    size_t ntup, captup;
    textbuf names;
};

enum { T_RECORDS, T_FINDINGS, T_CANDIDATES, T_OVER, T_REFUND, T_LEAK, T_REJECTS, T_UNRATED };

/* ---- the run history ---- */

static run *find_run(const rp_month *m, int64_t id)
{
    size_t lo = 0, hi = m->nruns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->runs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->nruns && m->runs[lo].id == id ? &m->runs[lo] : NULL;
}

static void mark(rp_month *m, int64_t id)
{
    run *r = find_run(m, id);
    if (r)
        r->night = 1;
}

/* Does ';'-separated text list the month? */
static int lists(const char *months, const char *month)
{
    size_t n = strlen(month);
    for (const char *p = months; p && *p;) {
        const char *e = strchr(p, ';');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !memcmp(p, month, n))
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static const char sql_runs[] =
    "SELECT run_id, kind, substr(started_at, 1, 10), substr(finished_at, 1, 10), months, "
    "submonths, submonths_full FROM runs WHERE finished_at IS NOT NULL ORDER BY run_id";

static void put_text(char *dst, size_t n, const unsigned char *s)
{
    snprintf(dst, n, "%s", s ? (const char *)s : "");
}

static int runs_row(rp_month *m, sqlite3_stmt *s)
{
    if (m->nruns % 64 == 0) {
        run *v = realloc(m->runs, (m->nruns + 64) * sizeof *v);
        if (!v)
            return 0;
        m->runs = v;
    }
    run *r = &m->runs[m->nruns++];
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    put_text(r->kind, sizeof r->kind, sqlite3_column_text(s, 1));
    put_text(r->started, sizeof r->started, sqlite3_column_text(s, 2));
    put_text(r->finished, sizeof r->finished, sqlite3_column_text(s, 3));
    r->night = lists((const char *)sqlite3_column_text(s, 4), m->month);
    r->submonths = sqlite3_column_int64(s, 5);
    r->submonths_full = sqlite3_column_int64(s, 6);
    return 1;
}

/* Run a query (?1 month, ?2 as_of, ?3 the month's runs as JSON) and hand
 * each row to fn (0: out of memory). */
static cdr_err each(sqlite3 *h, rp_month *m, const char *sql, const char *nights,
                    int (*fn)(rp_month *, sqlite3_stmt *), char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rp_sqlite_err(h, rc, "report query", err, errlen);
    int np = sqlite3_bind_parameter_count(s);
    const char *v[3] = {m->month, m->as_of, nights ? nights : "[]"};
    for (int i = 0; i < np && i < 3; i++)
        sqlite3_bind_text(s, i + 1, v[i], -1, SQLITE_STATIC);
    cdr_err e = CDR_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (!fn(m, s)) {
            e = CDR_E_NOMEM;
            snprintf(err, errlen, "report: out of memory");
            break;
        }
    if (e == CDR_OK && rc != SQLITE_DONE)
        e = rp_sqlite_err(h, rc, "report query", err, errlen);
    sqlite3_finalize(s);
    return e;
}

/* ---- the findings ---- */

static const char sql_findings[] =
    "SELECT run_id, file_id, superseded_by, category, difference_micro, service, start_time, "
    "msisdn, peer FROM findings WHERE month = ?1";

static int cat_of(const char *key)
{
    for (int c = 0; key && c < CDR_CAT__COUNT; c++)
        if (!strcmp(cdr_category_name((cdr_category)c), key))
            return c;
    return -1;
}

static group *group_of(group *v, size_t *n, size_t cap, const char *key, int64_t k2)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i].k2 == k2 && !strcmp(v[i].key, key))
            return &v[i];
    if (*n == cap)
        return NULL;
    group *g = &v[(*n)++];
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s", key);
    g->k2 = k2;
    return g;
}

/* Money sums saturate at CDR_MONEY_TOTAL_OVER (shown "out of range"). */
#define ADD(a, b) ((a) = cdr_money_total_add((a), (b)))

static void agg_add(rp_agg *a, cdr_money d)
{
    a->n++;
    if (d > 0)
        ADD(a->over, d);
    else
        ADD(a->leak, -d);
}

/* What the tariff figures need of a finding: kept until the tariff is
 * there (it loads while the database is read). */
static int keep(rp_month *m, sqlite3_stmt *s, cdr_time t, cdr_service sv, cdr_money d, int cat)
{
    if (cdr_grow(&m->tup, &m->captup, m->ntup + 1, sizeof *m->tup, 4096))
        return 0;
    const char *ms = (const char *)sqlite3_column_text(s, 7);
    const char *peer = (const char *)sqlite3_column_text(s, 8);
    struct tup *u = &m->tup[m->ntup++];
    u->msisdn = m->names.n;
    tb_put(&m->names, ms ? ms : "", ms ? strlen(ms) + 1 : 1);
    u->peer = m->names.n;
    tb_put(&m->names, peer ? peer : "", peer ? strlen(peer) + 1 : 1);
    u->start = t;
    u->d = d;
    u->svc = (int)sv;
    u->cat = cat < 0 ? CDR_CAT_NONE : cat;
    return !m->names.oom;
}

/* A current finding: the figures of the month as it stands. */
static int current(rp_month *m, sqlite3_stmt *s, cdr_money d, const char *cat)
{
    const char *svc = (const char *)sqlite3_column_text(s, 5);
    const char *st = (const char *)sqlite3_column_text(s, 6);
    m->now[T_FINDINGS]++;
    int c = cat_of(cat);
    if (c >= 0 && c != CDR_CAT_NONE)
        agg_add(&m->cat[c], d);
    if (!strcmp(cat, "leakage"))
        ADD(m->now[T_LEAK], -d);
    group *g = group_of(m->svc, &m->nsvc, 8, svc ? svc : "", 0);
    if (g) {
        g->n++;
        ADD(g->over, d > 0 ? d : 0);
        ADD(g->leak, d < 0 ? -d : 0);
    }
    cdr_time t = 0;
    int have_t = st && cdr_time_parse(st, strlen(st), &t) == CDR_OK;
    if (have_t && c == CDR_CAT_WRONG_BAND)
        m->heat[cdr_time_weekday(t)][cdr_time_of_day(t) / 3600]++;
    cdr_service sv;
    if (m->keep && have_t && d != 0 && svc && cdr_service_parse(svc, strlen(svc), &sv) == CDR_OK &&
        !keep(m, s, t, sv, d, c))
        return 0;
    int64_t fid = sqlite3_column_int64(s, 1);
    run *r = fid > 0 && (size_t)fid < m->file_run_n ? find_run(m, m->file_run[fid]) : NULL;
    if (r && have_t) {
        if (cdr_grow(&m->arr, &m->caparr, m->narr + 1, sizeof *m->arr, 4096))
            return 0;
        m->arr[m->narr++] = ((int64_t)(r - m->runs) << 32) | ((t - cdr_time_of_day(t)) / 86400 + DAY0);
    }
    return 1;
}

static int finding_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t rid = sqlite3_column_int64(s, 0);
    int sup_null = sqlite3_column_type(s, 2) == SQLITE_NULL;
    int64_t sup = sqlite3_column_int64(s, 2);
    const char *cat = (const char *)sqlite3_column_text(s, 3);
    cdr_money d = sqlite3_column_int64(s, 4);
    run *r = find_run(m, rid);
    if (r) {
        r->night = 1;
        r->fdelta++;
    }
    if (!sup_null && (r = find_run(m, sup)) != NULL) {
        r->night = 1;
        r->fdelta--;
    }
    if (rid <= m->prev && (sup_null || sup > m->prev)) {
        m->before[T_FINDINGS]++;
        if (cat && !strcmp(cat, "leakage"))
            ADD(m->before[T_LEAK], -d);
    }
    return sup_null ? current(m, s, d, cat ? cat : "") : 1;
}

static int file_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t fid = sqlite3_column_int64(s, 0);
    if (fid >= 0 && (size_t)fid < m->file_run_n)
        m->file_run[fid] = sqlite3_column_int64(s, 1);
    run *r = find_run(m, sqlite3_column_int64(s, 1));
    if (r) {
        const char *st = (const char *)sqlite3_column_text(s, 2);
        r->files++;
        r->ingested += st && !strcmp(st, "ingested");
        r->failed += st && !strcmp(st, "failed");
        r->refused += st && !strcmp(st, "refused");
        r->rows_read += sqlite3_column_int64(s, 3);
        r->rows_rejected += sqlite3_column_int64(s, 4);
    }
    return 1;
}

/* Late findings: a finding is late when its start day is before the latest
 * start day of the current findings that earlier runs ingested. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void late(rp_month *m)
{
    if (m->narr == 0)
        return; /* (no findings: qsort must not be given arr == NULL) */
    qsort(m->arr, m->narr, sizeof *m->arr, cmp_i64);
    int64_t seen = -1; /* the latest day of the runs before */
    for (size_t i = 0; i < m->narr;) {
        size_t ri = (size_t)(m->arr[i] >> 32), j = i;
        run *r = &m->runs[ri];
        int64_t top = -1;
        r->has_arrived = 1;
        if (seen >= 0)
            cdr_date_format((seen - DAY0) * 86400, r->watermark);
        for (; j < m->narr && (size_t)(m->arr[j] >> 32) == ri; j++) {
            int64_t day = m->arr[j] & 0xffffffff;
            r->arrived++;
            r->late += seen >= 0 && day < seen;
            top = day > top ? day : top;
        }
        seen = top > seen ? top : seen;
        i = j;
    }
}

/* ---- the candidates ---- */

static const char sql_candidates[] =
    "SELECT c.run_id, c.superseded_by, c.msisdn, c.records, c.overcharge_micro, "
    "c.refund_micro, c.categories, c.tier, c.policy, c.special, c.flags "
    "FROM candidates c WHERE c.month = ?1";

static void free_cand(cand_row *c)
{
    free(c->msisdn);
    free(c->categories);
    free(c->policy);
    free(c->flags);
    memset(c, 0, sizeof *c);
}

static char *dup_col(sqlite3_stmt *s, int i, int *ok)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    char *d = strdup(t ? t : "");
    *ok = *ok && d;
    return d;
}

/* The 20 largest: refund descending, then msisdn. */
static int top_add(rp_month *m, sqlite3_stmt *s, cdr_money refund)
{
    const char *msisdn = (const char *)sqlite3_column_text(s, 2);
    msisdn = msisdn ? msisdn : "";
    size_t at = m->ntop;
    while (at > 0 && (m->top[at - 1].refund < refund ||
                      (m->top[at - 1].refund == refund && strcmp(m->top[at - 1].msisdn, msisdn) > 0)))
        at--;
    if (at >= TOP_MAX)
        return 1;
    if (m->ntop == TOP_MAX)
        free_cand(&m->top[--m->ntop]);
    memmove(&m->top[at + 1], &m->top[at], (m->ntop - at) * sizeof *m->top);
    m->ntop++;
    cand_row *c = &m->top[at];
    int ok = 1;
    c->msisdn = dup_col(s, 2, &ok);
    c->records = sqlite3_column_int64(s, 3);
    c->over = sqlite3_column_int64(s, 4);
    c->refund = refund;
    c->categories = dup_col(s, 6, &ok);
    c->tier = sqlite3_column_int64(s, 7);
    c->policy = dup_col(s, 8, &ok);
    c->special = sqlite3_column_int64(s, 9);
    c->flags = dup_col(s, 10, &ok);
    return ok;
}

/* The deadline of a candidate proposed on day `proposed` (UTC, the run's
 * finished_at): refund first 2 days; verify first 3 working days. */
static void due_day(const char *policy, const char *proposed, char out[11])
{
    cdr_time d;
    out[0] = '\0';
    if (cdr_date_parse(proposed, strlen(proposed), &d) != CDR_OK)
        return;
    int add = 2;
    if (strcmp(policy, "refund_first") != 0) {
        int wd = cdr_time_weekday(d); /* 0 = Monday */
        add = wd >= 2 && wd <= 4 ? 5 : wd == 5 ? 4 : 3;
    }
    cdr_date_format(d + (cdr_time)add * 86400, out);
}

static void deadline(rp_month *m, const char *policy, int64_t run_id, cdr_money refund)
{
    run *r = find_run(m, run_id);
    char due[11] = "";
    if (r)
        due_day(policy, r->finished, due);
    int c = strcmp(due, m->as_of);
    group *g = group_of(m->dead, &m->ndead, GROUPS_MAX, policy, c < 0 ? 1 : c == 0 ? 3 : 0);
    if (!g)
        return;
    g->n++;
    ADD(g->refund, refund);
    if (!g->first[0] || strcmp(due, g->first) < 0)
        snprintf(g->first, sizeof g->first, "%s", due);
    if (strcmp(due, g->last) > 0)
        snprintf(g->last, sizeof g->last, "%s", due);
}

static int candidate_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t rid = sqlite3_column_int64(s, 0);
    int sup_null = sqlite3_column_type(s, 1) == SQLITE_NULL;
    int64_t sup = sqlite3_column_int64(s, 1);
    cdr_money over = sqlite3_column_int64(s, 4), refund = sqlite3_column_int64(s, 5);
    if (rid <= m->prev && (sup_null || sup > m->prev)) {
        m->before[T_CANDIDATES]++;
        ADD(m->before[T_OVER], over);
        ADD(m->before[T_REFUND], refund);
    }
    if (!sup_null)
        return 1;
    m->now[T_CANDIDATES]++;
    ADD(m->now[T_OVER], over);
    ADD(m->now[T_REFUND], refund);
    const char *policy = (const char *)sqlite3_column_text(s, 8);
    policy = policy ? policy : "";
    int64_t tier = sqlite3_column_int64(s, 7), special = sqlite3_column_int64(s, 9);
    group *g = group_of(m->tiers, &m->ntiers, GROUPS_MAX, policy, tier);
    if (g) {
        g->n++;
        ADD(g->over, over);
        ADD(g->refund, refund);
        g->special += special;
    }
    deadline(m, policy, rid, refund);
    if (special == 1) {
        m->special.n++;
        ADD(m->special.refund, refund);
        m->special.verify += !strcmp(policy, "verify_first");
        m->special.max = refund > m->special.max ? refund : m->special.max;
    }
    return top_add(m, s, refund);
}

/* ---- the small tables ---- */

static const char sql_changes[] =
    "SELECT run_id, status, count(*), sum(delta_micro) FROM changes WHERE month = ?1 "
    "GROUP BY run_id, status";
static const char sql_state[] =
    "SELECT run_id, kind, records FROM state_files WHERE month = ?1";
static const char sql_unrated[] =
    "SELECT run_id, superseded_by FROM unrated WHERE month = ?1";
static const char sql_files[] =
    "SELECT file_id, run_id, state, rows_read, rows_rejected FROM files";
static const char sql_file_max[] = "SELECT coalesce(max(file_id), 0) FROM files";
static const char sql_rejects[] =
    "SELECT run_id, count(*) FROM rejects WHERE run_id IN (SELECT value FROM json_each(?3)) "
    "GROUP BY run_id";

static int change_row(rp_month *m, sqlite3_stmt *s)
{
    static const char *const st[4] = {"new", "increased", "decreased", "withdrawn"};
    run *r = find_run(m, sqlite3_column_int64(s, 0));
    const char *v = (const char *)sqlite3_column_text(s, 1);
    if (!r)
        return 1;
    r->night = 1;
    for (int i = 0; i < 4; i++)
        if (v && !strcmp(v, st[i]))
            r->status[i] += sqlite3_column_int64(s, 2);
    r->delta = cdr_money_total_add(r->delta, sqlite3_column_int64(s, 3));
    return 1;
}

static int state_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t rid = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 2);
    const char *kind = (const char *)sqlite3_column_text(s, 1);
    mark(m, rid);
    if (!kind || strcmp(kind, "segment") != 0)
        return 1;
    m->now[T_RECORDS] += n;
    const run *last = find_run(m, m->last);
    /* the records before the latest run: all but what it added (a
     * compaction adds none: it merges segments) */
    if (rid != m->last || (last && !strcmp(last->kind, "compact")))
        m->before[T_RECORDS] += n;
    return 1;
}

static int unrated_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t rid = sqlite3_column_int64(s, 0), sup = sqlite3_column_int64(s, 1);
    int sup_null = sqlite3_column_type(s, 1) == SQLITE_NULL;
    m->now[T_UNRATED] += sup_null;
    m->before[T_UNRATED] += rid <= m->prev && (sup_null || sup > m->prev);
    return 1;
}

static int file_max_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t n = sqlite3_column_int64(s, 0);
    m->file_run_n = n >= 0 && n < ((int64_t)1 << 40) ? (size_t)n + 1 : 1;
    return (m->file_run = calloc(m->file_run_n, sizeof *m->file_run)) != NULL;
}

static int reject_row(rp_month *m, sqlite3_stmt *s)
{
    int64_t rid = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 1);
    run *r = find_run(m, rid);
    if (r)
        r->rejects = n;
    m->now[T_REJECTS] += n;
    m->before[T_REJECTS] += rid <= m->prev ? n : 0;
    return 1;
}

/* The month's runs as a JSON array of run ids (malloc'd). */
static char *nights_json(const rp_month *m)
{
    char *j = malloc(m->nruns * 22 + 3), *p = j;
    if (!j)
        return NULL;
    *p++ = '[';
    for (size_t i = 0; i < m->nruns; i++)
        if (m->runs[i].night)
            p += sprintf(p, "%s%lld", p[-1] == '[' ? "" : ",", (long long)m->runs[i].id);
    *p++ = ']';
    *p = '\0';
    return j;
}

int rp_month_tariff(rp_month *m, const cdr_tariff *t)
{
    rp_tariff_sums *ts = rp_tariff_sums_new(t);
    if (!ts)
        return 0;
    for (size_t i = 0; i < m->ntup; i++) {
        const struct tup *u = &m->tup[i];
        rp_tariff_sums_add(ts, m->names.p + u->msisdn, u->start, (cdr_service)u->svc,
                           m->names.p + u->peer, cdr_category_name((cdr_category)u->cat), u->d);
    }
    int ok = rp_tariff_sums_tables(ts, &m->plans, &m->rates);
    rp_tariff_sums_free(ts);
    return ok;
}

cdr_err rp_month_load(sqlite3 *h, const char *month, const char *as_of, int keep_tariff,
                      rp_month **out, char *err, size_t errlen)
{
    rp_month *m = calloc(1, sizeof *m);
    char *nj = NULL;
    cdr_err e = CDR_OK;
    *out = NULL;
    if (!m) {
        snprintf(err, errlen, "report: out of memory");
        return CDR_E_NOMEM;
    }
    m->keep = keep_tariff;
    m->month = month;
    m->as_of = as_of;
    static const int kept[4] = {RP_FIG_PLANS, RP_FIG_RATES, RP_FIG_REJECT_REASONS,
                                RP_FIG_REJECT_FILES};
    rp_table *kt[4] = {&m->plans, &m->rates, &m->rej_reasons, &m->rej_files};
    for (int i = 0; i < 4; i++)
        rp_table_init(kt[i], rp_figures[kept[i]].cols, rp_figures[kept[i]].ncols, -1);
    if ((e = each(h, m, sql_runs, NULL, runs_row, err, errlen)) != CDR_OK)
        goto out;
    m->last = m->nruns ? m->runs[m->nruns - 1].id : 0;
    m->prev = m->nruns > 1 ? m->runs[m->nruns - 2].id : 0;
    if ((e = each(h, m, sql_file_max, NULL, file_max_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_files, NULL, file_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_findings, NULL, finding_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_candidates, NULL, candidate_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_changes, NULL, change_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_state, NULL, state_row, err, errlen)) != CDR_OK ||
        (e = each(h, m, sql_unrated, NULL, unrated_row, err, errlen)) != CDR_OK)
        goto out;
    if (!(nj = nights_json(m))) {
        e = CDR_E_NOMEM;
        snprintf(err, errlen, "report: out of memory");
        goto out;
    }
    if ((e = each(h, m, sql_rejects, nj, reject_row, err, errlen)) != CDR_OK ||
        (e = rp_query(h, rp_sql_run_reject_reasons, month, as_of, nj, &m->rej_reasons, err,
                      errlen)) != CDR_OK ||
        (e = rp_query(h, rp_sql_run_reject_files, month, as_of, nj, &m->rej_files, err,
                      errlen)) != CDR_OK)
        goto out;
    late(m);
out:
    free(nj);
    if (e != CDR_OK)
        rp_month_free(m);
    else
        *out = m;
    return e;
}

void rp_month_free(rp_month *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ntop; i++)
        free_cand(&m->top[i]);
    free(m->tup);
    tb_free(&m->names);
    rp_table_free(&m->plans);
    rp_table_free(&m->rates);
    rp_table_free(&m->rej_reasons);
    rp_table_free(&m->rej_files);
    free(m->runs);
    free(m->arr);
    free(m->file_run);
    free(m);
}

/* ---- the figures' tables ---- */

static int cell_text(rp_cell *c, const char *s)
{
    c->null = 0;
    return (c->s = strdup(s ? s : "")) != NULL;
}

static void cell_int(rp_cell *c, int64_t v)
{
    c->null = 0;
    c->i = v;
}

/* A row of ints and texts as the format says: 'i' an int64_t, 's' a
 * string, 'n' a string or NULL (SQL NULL when NULL or ""). */
static int row(rp_table *t, const char *fmt, ...)
{
    rp_cell *c = rp_table_add(t);
    if (!c)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    int ok = 1;
    for (size_t i = 0; fmt[i] && i < t->ncols; i++) {
        if (fmt[i] == 'i') {
            cell_int(&c[i], va_arg(ap, int64_t));
        } else {
            const char *s = va_arg(ap, const char *);
            if (fmt[i] == 's' || (s && *s))
                ok = ok && cell_text(&c[i], s);
        }
    }
    va_end(ap);
    return ok;
}

#define I(x) ((int64_t)(x))

static int totals_table(const rp_month *m, rp_table *t)
{
    static const char *const key[8] = {"records", "findings", "candidates", "overcharge",
                                       "refund",  "leakage",  "rejects",    "unrated"};
    int ok = 1;
    for (int i = 0; i < 8 && ok; i++) {
        int money = i == T_OVER || i == T_REFUND || i == T_LEAK;
        ok = row(t, "ssiii", key[i], money ? "micro" : "count", I(m->now[i]), I(m->before[i]),
                 I(m->now[i] - m->before[i]));
    }
    return ok;
}

static int cmp_cat(const void *a, const void *b)
{
    const rp_agg *x = a, *y = b;
    int lx = x->idx == CDR_CAT_LEAKAGE, ly = y->idx == CDR_CAT_LEAKAGE;
    if (lx != ly)
        return lx - ly;
    if (x->over != y->over)
        return x->over > y->over ? -1 : 1;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(cdr_category_name((cdr_category)x->idx), cdr_category_name((cdr_category)y->idx));
}

static int category_table(const rp_month *m, rp_table *t)
{
    rp_agg v[CDR_CAT__COUNT];
    size_t n = 0;
    for (int c = 0; c < CDR_CAT__COUNT; c++)
        if (m->cat[c].n && c != CDR_CAT_NONE) {
            v[n] = m->cat[c];
            v[n++].idx = (size_t)c;
        }
    qsort(v, n, sizeof *v, cmp_cat);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = row(t, "siiii", cdr_category_name((cdr_category)v[i].idx), I(v[i].n), I(v[i].over),
                 I(cdr_money_total_add(v[i].over, v[i].over)), I(v[i].leak));
    return ok;
}

static int cmp_svc(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->over != y->over)
        return x->over > y->over ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int cmp_tier(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->k2 != y->k2)
        return x->k2 < y->k2 ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int cmp_dead(const void *a, const void *b)
{
    const group *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->k2 > y->k2) - (x->k2 < y->k2);
}

static int groups_table(const group *src, size_t n, int fig, rp_table *t)
{
    static const char *const state[4] = {"open", "passed", "", "today"};
    group v[GROUPS_MAX];
    memcpy(v, src, n * sizeof *v);
    qsort(v, n, sizeof *v, fig == RP_FIG_SERVICES ? cmp_svc : fig == RP_FIG_TIERS ? cmp_tier : cmp_dead);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        const group *g = &v[i];
        if (fig == RP_FIG_SERVICES)
            ok = row(t, "siii", g->key, I(g->n), I(g->over), I(g->leak));
        else if (fig == RP_FIG_TIERS)
            ok = row(t, "isiiii", I(g->k2), g->key, I(g->n), I(g->over), I(g->refund),
                     I(g->special));
        else
            ok = row(t, "ssiinn", g->key, state[g->k2 & 3], I(g->n), I(g->refund), g->first,
                     g->last);
    }
    return ok;
}

static int heat_table(const rp_month *m, rp_table *t)
{
    static const char *const dow[7] = {"1", "2", "3", "4", "5", "6", "0"};
    for (int d = 0; d < 7; d++) {
        rp_cell *c = rp_table_add(t);
        if (!c || !cell_text(&c[0], dow[d]))
            return 0;
        int64_t total = 0;
        for (int h = 0; h < 24; h++) {
            cell_int(&c[2 + h], m->heat[d][h]);
            total += m->heat[d][h];
        }
        cell_int(&c[1], total);
    }
    return 1;
}

static int runs_table(const rp_month *m, int fig, rp_table *t)
{
    int ok = 1;
    cdr_money to_date = 0;
    int64_t found = 0;
    for (size_t i = 0; i < m->nruns && ok; i++) {
        const run *r = &m->runs[i];
        if (fig == RP_FIG_LATE) {
            if (r->has_arrived)
                ok = row(t, "iini", I(r->id), I(r->arrived), r->watermark, I(r->late));
            continue;
        }
        if (!r->night)
            continue;
        to_date = cdr_money_total_add(to_date, r->delta);
        found += r->fdelta;
        if (fig == RP_FIG_NIGHTS)
            ok = row(t, "issiiiiiii", I(r->id), r->started, r->kind, I(r->status[0]),
                     I(r->status[1]), I(r->status[2]), I(r->status[3]), I(r->delta), I(to_date),
                     I(found));
        else
            ok = row(t, "issiiiiiiii", I(r->id), r->started, r->kind, I(r->files),
                     I(r->ingested), I(r->failed), I(r->refused), I(r->rows_read),
                     I(r->rows_rejected), I(r->submonths), I(r->submonths_full));
    }
    return ok;
}

static int candidates_table(const rp_month *m, int fig, rp_table *t)
{
    if (fig == RP_FIG_SPECIAL)
        return row(t, "iiii", I(m->special.n), I(m->special.refund), I(m->special.verify),
                   I(m->special.max));
    int ok = 1;
    for (size_t i = 0; i < m->ntop && ok; i++) {
        const cand_row *c = &m->top[i];
        ok = row(t, "siiisisis", c->msisdn, I(c->records), I(c->over), I(c->refund),
                 c->categories, I(c->tier), c->policy, I(c->special), c->flags);
    }
    return ok;
}

static int copy_table(const rp_table *src, rp_table *t)
{
    for (size_t r = 0; r < src->nrows; r++) {
        rp_cell *c = rp_table_add(t);
        if (!c)
            return 0;
        for (size_t i = 0; i < t->ncols && i < src->ncols; i++) {
            const rp_cell *v = rp_table_at(src, r, i);
            c[i] = *v;
            if (v->s && !(c[i].s = strdup(v->s)))
                return 0;
        }
    }
    return 1;
}

int rp_month_table(const rp_month *m, int fig, rp_table *t)
{
    switch (fig) {
    case RP_FIG_TOTALS:
        return totals_table(m, t);
    case RP_FIG_CATEGORY:
        return category_table(m, t);
    case RP_FIG_NIGHTS:
    case RP_FIG_FILES:
    case RP_FIG_LATE:
        return runs_table(m, fig, t);
    case RP_FIG_SERVICES:
        return groups_table(m->svc, m->nsvc, fig, t);
    case RP_FIG_TIERS:
        return groups_table(m->tiers, m->ntiers, fig, t);
    case RP_FIG_DEADLINES:
        return groups_table(m->dead, m->ndead, fig, t);
    case RP_FIG_HEAT:
        return heat_table(m, t);
    case RP_FIG_SPECIAL:
    case RP_FIG_TOP:
        return candidates_table(m, fig, t);
    case RP_FIG_PLANS:
        return copy_table(&m->plans, t);
    case RP_FIG_RATES:
        return copy_table(&m->rates, t);
    case RP_FIG_REJECT_REASONS:
        return copy_table(&m->rej_reasons, t);
    case RP_FIG_REJECT_FILES:
        return copy_table(&m->rej_files, t);
    default:
        return 1;
    }
}
