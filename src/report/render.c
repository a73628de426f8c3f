/*
 * cdrecon — statements rendered as terminal text, CSV sections and JSON
 * (include/cdrecon/render.h, docs/investigate.md).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdrecon/render.h"
#include "cdrecon/textsafe.h"

cdr_err cdr_render_format_parse(const char *s, cdr_render_format *out)
{
    if (!s)
        return CDR_E_USAGE;
    if (!strcasecmp(s, "text"))
        *out = CDR_RENDER_TEXT;
    else if (!strcasecmp(s, "csv"))
        *out = CDR_RENDER_CSV;
    else if (!strcasecmp(s, "json"))
        *out = CDR_RENDER_JSON;
    else
        return CDR_E_USAGE;
    return CDR_OK;
}

static cdr_err finish(FILE *fp)
{
    if (fflush(fp) != 0 || ferror(fp))
        return CDR_E_IO;
    return CDR_OK;
}

cdr_err cdr_render_stmt(FILE *fp, const cdr_stmt *s, cdr_render_format f)
{
    switch (f) {
    case CDR_RENDER_CSV:
        return cdr_render_csv(fp, s);
    case CDR_RENDER_JSON:
        return cdr_render_json(fp, s);
    default:
        return cdr_render_text(fp, s);
    }
}

/* ------------------------------------------------------------------ */
/* shared pieces                                                        */

static const char *const approvers[5] = {
    "agent refunds directly (up to 20 yuan, the customer's first refund)",
    "work-order team lead",
    "complaint supervisor",
    "operations department manager",
    "deputy general manager",
};

const char *cdr_tier_approver(int tier)
{
    return tier >= 0 && tier <= 4 ? approvers[tier] : "?";
}

const char *cdr_policy_deadline(cdr_policy p, int vip)
{
    if (p == CDR_POLICY_REFUND_FIRST)
        return "refund within 48 hours of confirming the amount";
    if (vip == 1)
        return "verification within 1 working day (VIP), then refund within 3 working days "
               "of confirmation";
    if (vip == 0)
        return "verification within 3 working days, then refund within 3 working days "
               "of confirmation";
    return "verification within 3 working days (1 working day for a VIP), then refund within "
           "3 working days of confirmation";
}

static size_t mmss(int64_t s, char *buf)
{
    if (s < 0)
        return (size_t)sprintf(buf, "-");
    return (size_t)sprintf(buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

size_t cdr_render_usage(const cdr_stmt_rec *r, char *buf)
{
    switch (r->service) {
    case CDR_SVC_VOICE:
        return mmss(r->amount, buf);
    case CDR_SVC_SMS:
        if (r->status == CDR_RS_UNRATED || r->billable < 0)
            return (size_t)sprintf(buf, "%lld ch", (long long)r->amount);
        return (size_t)sprintf(buf, "%lld seg (%lld ch)", (long long)r->usage,
                               (long long)r->amount);
    case CDR_SVC_DATA:
        if (r->amount < 0)
            return (size_t)sprintf(buf, "-");
        return (size_t)sprintf(buf, "%lld KB", (long long)((r->amount + 1023) / 1024));
    default:
        return (size_t)sprintf(buf, "1");
    }
}

size_t cdr_render_pool_units(int64_t v, const char *unit, char *buf)
{
    if (unit && !strcmp(unit, "s"))
        return mmss(v, buf);
    return (size_t)sprintf(buf, "%lld %s", (long long)v, unit ? unit : "");
}

/* Status of a record in words, short. */
static size_t status_text(const cdr_stmt_rec *r, char *buf, size_t n)
{
    switch (r->status) {
    case CDR_RS_DUPLICATE: {
        /* a long id is cut on a character boundary, never inside one */
        size_t k = r->dup_of ? strlen(r->dup_of) : 0, max = n - sizeof "duplicate of ";
        if (k > max) {
            k = max;
            while (k > 0 && ((unsigned char)r->dup_of[k] & 0xC0) == 0x80)
                k--;
        }
        return (size_t)snprintf(buf, n, "duplicate of %.*s", (int)k, r->dup_of ? r->dup_of : "");
    }
    case CDR_RS_PARTIAL_FIRST:
        return (size_t)snprintf(buf, n, "part 1 of %u", r->parts);
    case CDR_RS_PARTIAL_REST:
        return (size_t)snprintf(buf, n, "part %lld (in part 1)", (long long)r->partial_seq);
    case CDR_RS_FREE:
        return (size_t)snprintf(buf, n, "free number");
    case CDR_RS_NO_SUBSCRIPTION:
        return (size_t)snprintf(buf, n, "no subscription");
    case CDR_RS_SEGMENT_OVER:
        return (size_t)snprintf(buf, n, "extra segment");
    case CDR_RS_UNRATED:
        return (size_t)snprintf(buf, n, "unrated");
    default:
        return (size_t)snprintf(buf, n, "ok");
    }
}

/* The plans the records were rated on, "a, b" (buf >= 256). */
static void plans_text(const cdr_stmt *s, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_recs; i++) {
        const char *p = s->recs[i].plan;
        if (!p || !p[0])
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = s->recs[j].plan && !strcmp(s->recs[j].plan, p);
        if (seen)
            continue;
        int w = snprintf(buf + k, n - k, "%s%s", k ? ", " : "", p);
        if (w < 0 || (size_t)w >= n - k)
            break;
        k += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, n, "(none)");
}

/* ------------------------------------------------------------------ */
/* text                                                                 */

/* One character of data text at p (n bytes left) as shown on a terminal:
 * itself, or \xHH per byte when it is unsafe (control bytes, C1, bidi
 * overrides) or not valid UTF-8 (cdr_text_escape). Returns the bytes it
 * takes; *w its columns, *esc whether it is escaped. */
static size_t tchar(const unsigned char *p, size_t n, size_t *w, int *esc)
{
    uint32_t cp = 0;
    size_t k = cdr_utf8_len(p, n, &cp);
    *esc = !k || cdr_char_unsafe(cp);
    if (!k)
        k = 1;
    *w = *esc ? 4 * k : (size_t)cdr_char_width(cp);
    return k;
}

/*
 * One cell of the fixed-width table: data text escaped (so a record id
 * with ESC or BEL cannot drive the terminal), cut on a character boundary
 * to `width` display columns with '~' in the last column when `clip` and
 * too wide (CJK and full-width characters take two columns; an escape is
 * never cut), then padded with spaces to `width` columns (printf pads
 * bytes, not columns). width 0: as it is, no padding.
 */
static void put_cell(FILE *fp, const char *s, size_t width, int clip)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), total = 0, w, done = 0;
    int esc;
    for (size_t i = 0; i < n; total += w)
        i += tchar(p + i, n - i, &w, &esc);
    int cut = clip && width && total > width;
    for (size_t i = 0; i < n;) {
        size_t k = tchar(p + i, n - i, &w, &esc);
        if (cut && done + w > width - 1)
            break;
        if (esc) {
            char e[17];
            cdr_text_escape((const char *)p + i, k, e, sizeof e);
            fputs(e, fp);
        } else {
            fwrite(p + i, 1, k, fp);
        }
        done += w;
        i += k;
    }
    if (cut) {
        fputc('~', fp);
        done++;
    }
    for (; done < width; done++)
        fputc(' ', fp);
}

/* The statement's head: who, the plan, and the month's totals. */
static void text_head(FILE *fp, const cdr_stmt *s)
{
    char m[16], a[40], b[40], d[256], pl[256];
    cdr_month_format(s->month, m);
    plans_text(s, pl, sizeof pl);
    fputs("Statement of ", fp);
    put_cell(fp, s->msisdn, 0, 0);
    fprintf(fp, " for %s\n", m);
    if (s->join_date >= 0)
        cdr_date_format(s->join_date, d);
    else
        strcpy(d, "unknown");
    fputs("plan ", fp);
    put_cell(fp, pl, 0, 0);
    fprintf(fp, "; VIP %s; joined %s\n", s->vip == 1 ? "yes" : s->vip == 0 ? "no" : "unknown", d);
    cdr_yuan(s->total_billed, a);
    cdr_yuan(s->total_rebuilt, b);
    fprintf(fp, "%zu records (%llu duplicates, %llu unrated); billed %s yuan, rebuilt %s yuan; "
            "%llu findings\n\n",
            s->n_recs, (unsigned long long)s->n_duplicates, (unsigned long long)s->n_unrated, a,
            b, (unsigned long long)s->n_findings);
}

/* One record's line of the table. */
static void text_record(FILE *fp, const cdr_stmt_rec *r)
{
    char a[40], b[40], c[40], d[256], u[64], st[128], fl[64];
    cdr_time_format(r->start, d);
    cdr_render_usage(r, u);
    cdr_yuan(r->billed, a);
    if (r->has_rebuilt) {
        cdr_yuan(r->rebuilt, b);
        cdr_yuan(r->difference, c);
    } else {
        strcpy(b, "-");
        strcpy(c, "-");
    }
    char left[64];
    if (r->pool && r->pool[0] && r->pool_after >= 0) {
        const char *unit = r->service == CDR_SVC_VOICE ? "s"
                           : r->service == CDR_SVC_DATA ? "KB"
                                                        : "seg";
        char q[40];
        cdr_render_pool_units(r->pool_after, unit, q);
        snprintf(left, sizeof left, "%s %s", r->pool, q);
    } else {
        strcpy(left, "");
    }
    status_text(r, st, sizeof st);
    cdr_flags_format(r->flags, fl);
    fprintf(fp, "%-19s %-5s %-3s ", d, cdr_service_name(r->service),
            cdr_direction_name(r->direction));
    put_cell(fp, r->peer, 20, 1);
    fprintf(fp, " %14s %9s %9s %9s ", u, a, b, c);
    put_cell(fp, left, 14, 1);
    fputc(' ', fp);
    put_cell(fp, st, 20, 0);
    fputc(' ', fp);
    put_cell(fp, fl, 16, 0);
    fputc(' ', fp);
    put_cell(fp, r->category ? r->category : "", 0, 0);
    fputc('\n', fp);
}

/* The bundles: allowance, used and left of each pool. */
static void text_bundles(FILE *fp, const cdr_stmt *s)
{
    char a[40], b[40], c[40];
    fprintf(fp, "\nBundles\n");
    if (s->n_pools == 0)
        fprintf(fp, "  (no bundle used this month)\n");
    else
        fprintf(fp, "  %-12s %-10s %14s %14s %14s\n", "pool", "plan", "allowance", "used",
                "left");
    for (size_t i = 0; i < s->n_pools; i++) {
        const cdr_stmt_pool *p = &s->pools[i];
        cdr_render_pool_units(p->allowance, p->unit, a);
        cdr_render_pool_units(p->used, p->unit, b);
        cdr_render_pool_units(p->left, p->unit, c);
        fputs("  ", fp);
        put_cell(fp, p->pool, 12, 0);
        fputc(' ', fp);
        put_cell(fp, p->plan, 10, 0);
        fprintf(fp, " %14s %14s %14s\n", a, b, c);
    }
}

/* The verdict: the candidate's refund and how it is handled, and leakage. */
static void text_verdict(FILE *fp, const cdr_stmt *s)
{
    char a[40], b[40], d[256], fl[64];
    fprintf(fp, "\nVerdict\n");
    if (s->has_candidate) {
        const cdr_candidate *cd = &s->cand;
        cdr_yuan(cd->overcharge, a);
        cdr_yuan(cd->refund, b);
        cdr_categories_format(cd->categories, d);
        fprintf(fp, "  overcharge  %s yuan on %u records\n", a, cd->records);
        fprintf(fp, "  refund      %s yuan (billing error: the overcharge refunded twice, "
                "as account credit)\n", b);
        fprintf(fp, "  categories  %s\n", d);
        fprintf(fp, "  approval    tier %d: %s\n", cd->tier, cdr_tier_approver(cd->tier));
        fprintf(fp, "  policy      %s%s", cdr_policy_name(cd->policy),
                cd->policy_reason && cd->policy_reason[0] ? ": " : "");
        put_cell(fp, cd->policy_reason ? cd->policy_reason : "", 0, 0);
        fputc('\n', fp);
        fprintf(fp, "  deadline    %s\n", cdr_policy_deadline(cd->policy, s->vip));
        cdr_flags_format(cd->flags, fl);
        fprintf(fp, "  special     %s%s%s\n",
                cd->special ? "yes (special customer: verify first)" : "no",
                fl[0] ? "; flags " : "", fl);
    } else {
        fprintf(fp, "  no overcharge: nothing to refund\n");
    }
    if (s->leakage > 0) {
        cdr_yuan(s->leakage, a);
        fprintf(fp, "  leakage     %s yuan undercharged (reported to revenue assurance, "
                "never refunded)\n", a);
    }
}

/* Each record with a finding, a flag or no rating, in words. */
static void text_findings(FILE *fp, const cdr_stmt *s)
{
    char d[256];
    int any = 0;
    for (size_t i = 0; i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (!(r->category && r->category[0]) && !r->flags && r->status != CDR_RS_UNRATED)
            continue;
        if (!any)
            fprintf(fp, "\nFindings in words\n");
        any = 1;
        cdr_time_format(r->start, d);
        fprintf(fp, "  %s  record ", d);
        put_cell(fp, r->record_id, 0, 0);
        fputs(" (", fp);
        put_cell(fp, r->file, 0, 0);
        fprintf(fp, " line %llu)", (unsigned long long)r->line);
        if (r->category && r->category[0]) {
            fputs(" [", fp);
            put_cell(fp, r->category, 0, 0);
            fputc(']', fp);
        }
        fputs(": ", fp);
        put_cell(fp, r->explanation && r->explanation[0] ? r->explanation
                     : r->status == CDR_RS_UNRATED ? "not rated" : "flagged", 0, 0);
        fputc('\n', fp);
    }
}

cdr_err cdr_render_text(FILE *fp, const cdr_stmt *s)
{
    text_head(fp, s);
    fprintf(fp, "%-19s %-5s %-3s %-20s %14s %9s %9s %9s %-14s %-20s %-16s %s\n", "time",
            "svc", "dir", "other party", "usage", "billed", "rebuilt", "diff", "bundle left",
            "status", "flags", "category");
    for (size_t i = 0; i < s->n_recs; i++)
        text_record(fp, &s->recs[i]);
    text_bundles(fp, s);
    text_verdict(fp, s);
    text_findings(fp, s);
    return finish(fp);
}

/* ------------------------------------------------------------------ */
/* csv                                                                  */

cdr_err cdr_render_csv(FILE *fp, const cdr_stmt *s)
{
    cdr_csvw *w = NULL;
    cdr_err e = cdr_csvw_open_stream(fp, "statement", &w);
    if (e != CDR_OK)
        return e;
    cdr_stmt_rec_header(w);
    for (size_t i = 0; i < s->n_recs; i++)
        cdr_stmt_rec_write(w, &s->recs[i]);
    if ((e = cdr_csvw_status(w)) != CDR_OK)
        goto out;
    fputc('\n', fp);
    static const char *const ph[] = {"pool", "plan", "allowance", "used", "left", "unit"};
    for (size_t i = 0; i < sizeof ph / sizeof *ph; i++)
        cdr_csvw_textz(w, ph[i]);
    cdr_csvw_end_row(w);
    for (size_t i = 0; i < s->n_pools; i++) {
        const cdr_stmt_pool *p = &s->pools[i];
        cdr_csvw_textz(w, p->pool);
        cdr_csvw_textz(w, p->plan);
        cdr_csvw_i64(w, p->allowance);
        cdr_csvw_i64(w, p->used);
        cdr_csvw_i64(w, p->left);
        cdr_csvw_textz(w, p->unit);
        cdr_csvw_end_row(w);
    }
    if ((e = cdr_csvw_status(w)) != CDR_OK)
        goto out;
    fputc('\n', fp);
    cdr_candidates_csv_header(w);
    if (s->has_candidate)
        cdr_candidates_csv_row(w, &s->cand);
    e = cdr_csvw_commit(w);
out:
    cdr_csvw_free(w);
    if (e == CDR_OK)
        e = finish(fp);
    return e;
}

/* ------------------------------------------------------------------ */
/* json                                                                 */

void cdr_json_string(FILE *fp, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    fputc('"', fp);
    while (n) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', fp);
            fputc((int)c, fp);
        } else if (c == '\n') {
            fputs("\\n", fp);
        } else if (c == '\r') {
            fputs("\\r", fp);
        } else if (c == '\t') {
            fputs("\\t", fp);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(fp, "\\u%04x", c);
        } else if (c < 0x80) {
            fputc((int)c, fp);
        } else {
            uint32_t cp = 0;
            size_t l = cdr_utf8_len(p, n, &cp);
            if (l == 0) {
                fputs("\\ufffd", fp);
                l = 1;
            } else if (cdr_char_unsafe(cp)) {
                /* C1 controls and bidi overrides: the same value, escaped,
                 * so that the JSON shown on a terminal cannot drive it */
                fprintf(fp, "\\u%04x", (unsigned)cp);
            } else {
                fwrite(p, 1, l, fp);
            }
            p += l;
            n -= l;
            continue;
        }
        p++;
        n--;
    }
    fputc('"', fp);
}

static void jmoney(FILE *fp, cdr_money v)
{
    char b[40];
    fprintf(fp, "\"%s\"", cdr_yuan(v, b));
}

static void jkey(FILE *fp, int *first, const char *k)
{
    fputs(*first ? "" : ",", fp);
    *first = 0;
    fprintf(fp, "\"%s\":", k);
}

static void jstr(FILE *fp, int *first, const char *k, const char *v)
{
    jkey(fp, first, k);
    cdr_json_string(fp, v);
}

static void jint(FILE *fp, int *first, const char *k, int64_t v)
{
    jkey(fp, first, k);
    fprintf(fp, "%lld", (long long)v);
}

/* -1 (absent) as null */
static void jopt(FILE *fp, int *first, const char *k, int64_t v)
{
    jkey(fp, first, k);
    if (v < 0)
        fputs("null", fp);
    else
        fprintf(fp, "%lld", (long long)v);
}

static void jflags(FILE *fp, int *first, const char *k, unsigned flags)
{
    jkey(fp, first, k);
    fputc('[', fp);
    int n = 0;
    if (flags & CDR_FLAG_OVERLAP)
        fprintf(fp, "%s\"overlap\"", n++ ? "," : "");
    if (flags & CDR_FLAG_OVERLONG)
        fprintf(fp, "%s\"overlong\"", n++ ? "," : "");
    fputc(']', fp);
}

static void json_rec(FILE *fp, const cdr_stmt_rec *r)
{
    char b[64];
    int f = 1;
    fputc('{', fp);
    jstr(fp, &f, "file", r->file);
    jint(fp, &f, "line", (int64_t)r->line);
    jint(fp, &f, "offset", (int64_t)r->offset);
    jstr(fp, &f, "record_id", r->record_id);
    jstr(fp, &f, "msisdn", r->msisdn);
    cdr_month_format(r->month, b);
    jstr(fp, &f, "month", b);
    jstr(fp, &f, "service", cdr_service_name(r->service));
    jstr(fp, &f, "direction", cdr_direction_name(r->direction));
    jstr(fp, &f, "peer", r->peer);
    cdr_time_format(r->start, b);
    jstr(fp, &f, "start_time", b);
    jopt(fp, &f, "amount", r->amount);
    jint(fp, &f, "usage", r->usage);
    jopt(fp, &f, "billable", r->billable);
    jopt(fp, &f, "covered", r->covered);
    jkey(fp, &f, "billed");
    jmoney(fp, r->billed);
    jkey(fp, &f, "rebuilt");
    if (r->has_rebuilt)
        jmoney(fp, r->rebuilt);
    else
        fputs("null", fp);
    jkey(fp, &f, "difference");
    if (r->has_rebuilt)
        jmoney(fp, r->difference);
    else
        fputs("null", fp);
    jstr(fp, &f, "status", cdr_rec_status_name(r->status));
    jstr(fp, &f, "dup_of", r->dup_of);
    jint(fp, &f, "parts", r->parts);
    jstr(fp, &f, "call_id", r->call_id);
    jint(fp, &f, "partial_seq", r->partial_seq);
    jstr(fp, &f, "sms_ref", r->sms_ref);
    jint(fp, &f, "sms_part", r->sms_part);
    jint(fp, &f, "sms_parts", r->sms_parts);
    jstr(fp, &f, "plan", r->plan);
    if (r->rate_line) {
        jint(fp, &f, "rate_line", r->rate_line);
        jkey(fp, &f, "price");
        cdr_money_format(r->price, 2, b);
        fprintf(fp, "\"%s\"", b);
        jint(fp, &f, "unit", r->unit);
        jint(fp, &f, "increment", r->increment);
    } else {
        jkey(fp, &f, "rate_line");
        fputs("null,\"price\":null,\"unit\":null,\"increment\":null", fp);
    }
    jstr(fp, &f, "band", r->band);
    jstr(fp, &f, "pool", r->pool);
    jopt(fp, &f, "pool_after", r->pool_after);
    jkey(fp, &f, "discount_percent");
    if (r->discount_micro > 0) {
        cdr_money_format(r->discount_micro, 0, b);
        fprintf(fp, "\"%s\"", b);
    } else {
        fputs("null", fp);
    }
    jstr(fp, &f, "category", r->category);
    jflags(fp, &f, "flags", r->flags);
    jstr(fp, &f, "explanation", r->explanation);
    jstr(fp, &f, "extra", r->extra);
    fputc('}', fp);
}

cdr_err cdr_render_json(FILE *fp, const cdr_stmt *s)
{
    char b[256];
    int f = 1;
    fputc('{', fp);
    jstr(fp, &f, "msisdn", s->msisdn);
    cdr_month_format(s->month, b);
    jstr(fp, &f, "month", b);
    jkey(fp, &f, "vip");
    fputs(s->vip == 1 ? "true" : s->vip == 0 ? "false" : "null", fp);
    jkey(fp, &f, "join_date");
    if (s->join_date >= 0) {
        cdr_date_format(s->join_date, b);
        cdr_json_string(fp, b);
    } else {
        fputs("null", fp);
    }
    jkey(fp, &f, "totals");
    {
        int g = 1;
        fputc('{', fp);
        jint(fp, &g, "records", (int64_t)s->n_recs);
        jint(fp, &g, "findings", (int64_t)s->n_findings);
        jint(fp, &g, "duplicates", (int64_t)s->n_duplicates);
        jint(fp, &g, "unrated", (int64_t)s->n_unrated);
        jkey(fp, &g, "billed");
        jmoney(fp, s->total_billed);
        jkey(fp, &g, "rebuilt");
        jmoney(fp, s->total_rebuilt);
        jkey(fp, &g, "leakage");
        jmoney(fp, s->leakage);
        fputc('}', fp);
    }
    jkey(fp, &f, "records");
    fputc('[', fp);
    for (size_t i = 0; i < s->n_recs; i++) {
        fputs(i ? ",\n" : "\n", fp);
        json_rec(fp, &s->recs[i]);
    }
    fputs("]", fp);
    jkey(fp, &f, "pools");
    fputc('[', fp);
    for (size_t i = 0; i < s->n_pools; i++) {
        const cdr_stmt_pool *p = &s->pools[i];
        int g = 1;
        fputs(i ? ",{" : "{", fp);
        jstr(fp, &g, "pool", p->pool);
        jstr(fp, &g, "plan", p->plan);
        jint(fp, &g, "allowance", p->allowance);
        jint(fp, &g, "used", p->used);
        jint(fp, &g, "left", p->left);
        jstr(fp, &g, "unit", p->unit);
        fputc('}', fp);
    }
    fputs("]", fp);
    jkey(fp, &f, "verdict");
    {
        int g = 1;
        fputc('{', fp);
        jkey(fp, &g, "candidate");
        fputs(s->has_candidate ? "true" : "false", fp);
        if (s->has_candidate) {
            const cdr_candidate *c = &s->cand;
            jint(fp, &g, "records", c->records);
            jkey(fp, &g, "overcharge");
            jmoney(fp, c->overcharge);
            jkey(fp, &g, "refund");
            jmoney(fp, c->refund);
            jkey(fp, &g, "categories");
            fputc('[', fp);
            cdr_categories_format(c->categories, b);
            char *save = NULL;
            int n = 0;
            for (char *t = strtok_r(b, ";", &save); t; t = strtok_r(NULL, ";", &save))
                fprintf(fp, "%s\"%s\"", n++ ? "," : "", t);
            fputc(']', fp);
            jint(fp, &g, "tier", c->tier);
            jstr(fp, &g, "approver", cdr_tier_approver(c->tier));
            jstr(fp, &g, "policy", cdr_policy_name(c->policy));
            jstr(fp, &g, "policy_reason", c->policy_reason);
            jstr(fp, &g, "deadline", cdr_policy_deadline(c->policy, s->vip));
            jkey(fp, &g, "special");
            fputs(c->special ? "true" : "false", fp);
            jflags(fp, &g, "flags", c->flags);
        } else {
            jkey(fp, &g, "overcharge");
            jmoney(fp, 0);
            jkey(fp, &g, "refund");
            jmoney(fp, 0);
        }
        jkey(fp, &g, "leakage");
        jmoney(fp, s->leakage);
        fputc('}', fp);
    }
    fputs("}\n", fp);
    return finish(fp);
}
