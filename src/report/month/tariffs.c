/* cdrecon — the month report's plan and rate-row figures: the database
 * does not store a finding's plan or rate row, so they are looked up in the
 * tariff, and the page shows the sqlite3 commands that give the same rows
 * from the tariff's CSV tables (src/report/month/report.h, docs/report.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define PLANS_MAX 10
#define RATES_MAX 15

struct rp_tariff_sums {
    const cdr_tariff *t;
    rp_agg *plans, *rates; /* by plan and rate index */
};

rp_tariff_sums *rp_tariff_sums_new(const cdr_tariff *t)
{
    rp_tariff_sums *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->plans = calloc(t->n_plans + 1, sizeof *s->plans);
    s->rates = calloc(t->n_rates + 1, sizeof *s->rates);
    if (!s->plans || !s->rates) {
        rp_tariff_sums_free(s);
        return NULL;
    }
    return s;
}

void rp_tariff_sums_free(rp_tariff_sums *s)
{
    if (!s)
        return;
    free(s->plans);
    free(s->rates);
    free(s);
}

/* Categories whose money is not set by a rate row: a duplicate is not
 * charged at all, a free number is free, an SP fee needs a subscription. */
static int not_a_rate_row(const char *cat)
{
    return !strcmp(cat, "duplicate") || !strcmp(cat, "free_number") ||
           !strcmp(cat, "vas_no_subscription");
}

static void add(rp_agg *a, cdr_money d)
{
    a->n++;
    if (d > 0)
        a->over = cdr_money_total_add(a->over, d);
    else
        a->leak = cdr_money_total_add(a->leak, -d);
}

void rp_tariff_sums_add(rp_tariff_sums *s, const char *msisdn, cdr_time start, cdr_service svc,
                        const char *peer, const char *category, cdr_money difference)
{
    const cdr_tariff *t = s->t;
    if (!msisdn || difference == 0)
        return;
    const cdr_subscriber *sub = cdr_tariff_subscriber(t, msisdn, strlen(msisdn), start);
    if (!sub)
        return;
    add(&s->plans[sub->plan], difference);
    if (!category || not_a_rate_row(category))
        return;
    int32_t band = cdr_tariff_band_at(t, start);
    const cdr_rate *r = cdr_tariff_find_rate(t, sub->plan, svc, CDR_DIR_MO, peer ? peer : "",
                                             peer ? strlen(peer) : 0, band);
    if (r)
        add(&s->rates[r - t->rates], difference);
}

static int by_money(const rp_agg *x, const rp_agg *y)
{
    if (x->over != y->over)
        return x->over > y->over ? -1 : 1;
    if (x->leak != y->leak)
        return x->leak > y->leak ? -1 : 1;
    return 0;
}

static int cmp_plan(const void *a, const void *b, void *arg)
{
    const rp_agg *x = a, *y = b;
    const cdr_tariff *t = arg;
    int c = by_money(x, y);
    return c ? c : strcmp(t->plans[x->idx].name, t->plans[y->idx].name);
}

static int cmp_rate(const void *a, const void *b, void *arg)
{
    const rp_agg *x = a, *y = b;
    const cdr_tariff *t = arg;
    int c = by_money(x, y);
    if (c)
        return c;
    uint32_t lx = t->rates[x->idx].line, ly = t->rates[y->idx].line;
    return lx < ly ? -1 : lx > ly;
}

/* The non-empty sums, sorted and cut to max. Returns how many. */
static size_t ranked(rp_agg *v, size_t n, int (*cmp)(const void *, const void *, void *),
                     const cdr_tariff *t, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].n) {
            v[k] = v[i];
            v[k++].idx = i;
        }
    qsort_r(v, k, sizeof *v, cmp, (void *)t);
    return k < max ? k : max;
}

static int put_text(rp_cell *c, const char *s)
{
    c->null = 0;
    return (c->s = strdup(s ? s : "")) != NULL;
}

static void put_int(rp_cell *c, int64_t v)
{
    c->null = 0;
    c->i = v;
}

static int fill(const cdr_tariff *t, const rp_agg *p, size_t np, const rp_agg *r, size_t nr,
                rp_table *plans, rp_table *rates)
{
    int ok = 1;
    for (size_t i = 0; i < np && ok; i++) {
        rp_cell *c = rp_table_add(plans);
        if (!(ok = c != NULL))
            break;
        ok = put_text(&c[0], t->plans[p[i].idx].name);
        put_int(&c[1], p[i].n);
        put_int(&c[2], p[i].over);
        put_int(&c[3], p[i].leak);
    }
    for (size_t i = 0; i < nr && ok; i++) {
        rp_cell *c = rp_table_add(rates);
        if (!(ok = c != NULL))
            break;
        const cdr_rate *rt = &t->rates[r[i].idx];
        char price[40];
        cdr_money_format(rt->price, 2, price);
        put_int(&c[0], rt->line);
        ok = put_text(&c[1], t->plans[rt->plan].name) &&
             put_text(&c[2], cdr_service_name(rt->service)) &&
             put_text(&c[3], cdr_direction_name(rt->direction)) &&
             put_text(&c[4], *rt->prefix ? rt->prefix : "*") &&
             put_text(&c[5], rt->band >= 0 ? t->band_names[rt->band] : "*") &&
             put_text(&c[6], price);
        put_int(&c[7], r[i].n);
        put_int(&c[8], r[i].over);
        put_int(&c[9], r[i].leak);
    }
    return ok;
}

int rp_tariff_sums_tables(rp_tariff_sums *s, rp_table *plans, rp_table *rates)
{
    const cdr_tariff *t = s->t;
    size_t np = ranked(s->plans, t->n_plans, cmp_plan, t, PLANS_MAX);
    size_t nr = ranked(s->rates, t->n_rates, cmp_rate, t, RATES_MAX);
    return fill(t, s->plans, np, s->rates, nr, plans, rates);
}

/* ---- the shown SQL ---- */

/* sqlite3's .import of DIR/NAME into temp.TABLE (a double-quoted argument:
 * backslash and double quote escaped). */
static void import(textbuf *b, const char *dir, const char *name, const char *table)
{
    tb_printf(b, "DROP TABLE IF EXISTS temp.%s;\n.import --csv --schema temp \"", table);
    textbuf p = {0};
    for (const char *c = dir; *c; c++) {
        if (*c == '\\' || *c == '"')
            tb_put(&p, "\\", 1);
        tb_put(&p, c, 1);
    }
    tb_printf(&p, "/%s", name);
    if (p.oom)
        b->oom = 1;
    else
        rp_esc_path(b, p.p);
    tb_free(&p);
    tb_printf(b, "\" %s\n", table);
}

#define SUB_JOIN                                                                           \
    "JOIN temp.subscribers s ON s.msisdn = f.msisdn\n"                                      \
    "    AND substr(f.start_time, 1, 10) >= s.valid_from\n"                                 \
    "    AND (coalesce(s.valid_to, '') = '' OR substr(f.start_time, 1, 10) <= s.valid_to)\n"

static const char sql_plans[] =
    "SELECT s.plan, count(*) AS findings,\n"
    "  sum(max(f.difference_micro, 0)) AS overcharge_micro,\n"
    "  sum(max(-f.difference_micro, 0)) AS leakage_micro\n"
    "FROM current_findings f " SUB_JOIN
    "WHERE f.month = ?1 AND f.difference_micro <> 0\n"
    "GROUP BY s.plan ORDER BY overcharge_micro DESC, leakage_micro DESC, s.plan LIMIT 10;\n";

#define PFX "coalesce(nullif(t.prefix, ''), '*')"
#define BND "coalesce(nullif(t.band, ''), '*')"
static const char sql_rates[] =
    "WITH f AS (SELECT f.service, f.peer, f.difference_micro AS d, s.plan,\n"
    "    substr(f.start_time, 12, 5) AS hm,\n"
    "    CASE WHEN strftime('%w', f.start_time) IN ('0', '6') THEN 'weekend'\n"
    "      ELSE 'weekday' END AS dk\n"
    "  FROM current_findings f " SUB_JOIN
    "  WHERE f.month = ?1 AND f.difference_micro <> 0\n"
    "    AND f.category NOT IN ('duplicate', 'free_number', 'vas_no_subscription')),\n"
    "b AS (SELECT f.*, (SELECT b.band FROM temp.bands b\n"
    "    WHERE lower(coalesce(nullif(b.days, ''), 'all')) IN ('all', f.dk)\n"
    "      AND CASE WHEN b.\"from\" < b.\"to\" THEN f.hm >= b.\"from\" AND f.hm < b.\"to\"\n"
    "        ELSE f.hm >= b.\"from\" OR f.hm < b.\"to\" END) AS band FROM f),\n"
    "r AS MATERIALIZED (SELECT b.*, (SELECT t.rowid + 1 FROM temp.rates t\n"
    "    WHERE t.plan = b.plan AND lower(t.service) = b.service\n"
    "      AND lower(coalesce(nullif(t.direction, ''), 'mo')) = 'mo'\n"
    "      AND (" PFX " = '*' OR substr(b.peer, 1, length(t.prefix)) = t.prefix)\n"
    "      AND " BND " IN ('*', b.band)\n"
    "    ORDER BY CASE WHEN " PFX " = '*' THEN 0 ELSE length(t.prefix) END DESC,\n"
    "      " BND " = '*' LIMIT 1) AS line FROM b)\n"
    "SELECT r.line, t.plan, lower(t.service) AS service, 'mo' AS direction,\n"
    "  " PFX " AS prefix, " BND " AS band, t.price,\n"
    "  count(*) AS findings, sum(max(r.d, 0)) AS overcharge_micro,\n"
    "  sum(max(-r.d, 0)) AS leakage_micro\n"
    "FROM r JOIN temp.rates t ON t.rowid + 1 = r.line\n"
    "GROUP BY r.line ORDER BY overcharge_micro DESC, leakage_micro DESC, r.line LIMIT 15;\n";

void rp_tariff_sql_shown(textbuf *b, int fig, const char *dir, const char *month, int bands)
{
    import(b, dir, "subscribers.csv", "subscribers");
    tb_puts(b, "CREATE INDEX temp.subscribers_msisdn ON subscribers(msisdn);\n");
    if (fig == RP_FIG_RATES) {
        if (bands)
            import(b, dir, "bands.csv", "bands");
        else /* a tariff without bands.csv: every record is in no band */
            tb_puts(b, "DROP TABLE IF EXISTS temp.bands;\n"
                       "CREATE TEMP TABLE bands(band, days, \"from\", \"to\");\n");
        import(b, dir, "rates.csv", "rates");
    }
    rp_sql_shown(b, fig == RP_FIG_RATES ? sql_rates : sql_plans, month, NULL);
}
