/* cdrecon — the month report: the page (include/cdrecon/report.h,
 * docs/report.md). One read transaction; every figure is a query of
 * src/report/month/figures.c (or the tariff look-up of src/report/month/tariffs.c),
 * drawn as a chart where it has one, with its numbers in a table under it
 * and its query in the appendix. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/render.h"
#include "cdrecon/version.h"
#include "report.h"

typedef struct page {
    textbuf b;        /* the page */
    textbuf q;        /* the appendix of queries */
    sqlite3 *h;
    const cdr_report_opts *o;
    char month[8], as_of[16];
    const cdr_tariff *t; /* for the month being written, or NULL */
    cdr_tariff *owned;   /* pg->t when loaded here */
    rp_month *m;     /* the month's numbers */
    char tdir[1024]; /* its directory as shown */
    char tnote[768]; /* why the tariff figures are missing, or a remark */
    char *note;      /* cdr_report.note */
    size_t notelen;
    char *err;
    size_t errlen;
} page;

/* What each figure shows, in words (Chinese, English). */
static const char *const fig_note[RP_FIG__COUNT][2] = {
    [RP_FIG_TOTALS] = {"当前结果与上一次运行后的结果相比。",
                       "The month as it stands now, and as it stood after the previous run."},
    [RP_FIG_CATEGORY] = {"当前问题记录按类别:条数与金额 (退费为多收的两倍;少收单列,不退费)。",
                         "Current findings by category: how many and how much (the refund is "
                         "twice the overcharge; leakage is shown apart and never refunded)."},
    [RP_FIG_NIGHTS] = {"每次运行 (每夜) 新增、增加、减少、撤销的退费候选,及累计退费。",
                       "Each run (night): refund candidates proposed, increased, decreased and "
                       "withdrawn, and the refund to date."},
    [RP_FIG_PLANS] = {"金额不为零的问题记录按用户当时的套餐 (subscribers.csv) 汇总。",
                      "Findings with money at stake by the subscriber's plan at the record's "
                      "start (subscribers.csv)."},
    [RP_FIG_RATES] = {"按主叫 (mo) 记录会使用的 rates.csv 行汇总;重复、免费号码、无订购的"
                      "增值费不按资费行计费,不计入。",
                      "By the rates.csv row an originating (mo) record of that plan, service, "
                      "number and start band uses (findings do not store the direction). "
                      "Duplicates, free numbers and SP fees without a subscription are not "
                      "priced by a rate row and are left out."},
    [RP_FIG_SERVICES] = {"当前问题记录按业务。", "Current findings by service."},
    [RP_FIG_HEAT] = {"跨时段计费错误 (wrong_band) 按星期与开始时刻。",
                     "wrong_band findings by day of week and hour of the record's start."},
    [RP_FIG_TIERS] = {"当前退费候选按审批层级与处理方式。",
                      "Current refund candidates by approval tier and policy."},
    [RP_FIG_DEADLINES] = {"时限自提出当前金额的运行日 (UTC) 起算:先退费后查证 48 小时内退费;"
                          "先查证后退费 3 个工作日内核实 (VIP 为 1 个),确认后 3 个工作日内退费。"
                          "周末顺延,法定假日未计入。",
                          "Counted from the (UTC) day of the run that proposed the current "
                          "amount: refund first, refund within 48 hours; verify first, "
                          "verification within 3 working days (1 for a VIP), then refund within "
                          "3 working days. Weekends skipped, public holidays not. Whether a "
                          "refund was paid is not known here."},
    [RP_FIG_SPECIAL] = {"特殊客户:一个月内退费 3 次以上或 100 元以上的号码,一律先查证后退费。",
                        "Special customers (3 refunds in a month, or 100 yuan or more): always "
                        "verify first."},
    [RP_FIG_TOP] = {"号码已遮蔽 (此页为内部资料,但会通过邮件传递)。",
                    "Numbers masked: the page is internal but travels by mail."},
    [RP_FIG_REJECT_REASONS] = {"本月相关运行中拒收的行,按原因 (引号中的数据值略去)。",
                               "Rows rejected by the month's runs, by reason (the quoted data "
                               "value left out)."},
    [RP_FIG_REJECT_FILES] = {"有拒收行、读取失败或被拒为重复投递的文件。",
                             "Files with rejected rows, files that failed, files refused as "
                             "re-deliveries."},
    [RP_FIG_FILES] = {"每次运行读入的文件;用户月与整月重算为该次运行的全部月份。",
                      "Files each run read; subscriber-months and re-rated whole count every "
                      "month of the run."},
    [RP_FIG_LATE] = {"迟到:问题记录的开始日期早于此前各次运行已到记录的最晚日期 (只有问题记录带"
                     "开始时间存入数据库)。",
                     "Late: a finding whose record starts on a day before the latest day "
                     "already seen in the findings of earlier runs (only records with a finding "
                     "are in the database with their start time)."},
};

static void css(textbuf *b)
{
    tb_puts(b,
            "<style>\n"
            "@page{size:A4;margin:12mm 10mm}\n"
            "body{font-family:\"Noto Sans CJK SC\",\"Noto Sans SC\",\"Source Han Sans SC\","
            "\"Microsoft YaHei\",\"PingFang SC\",sans-serif;font-size:10pt;color:#111;"
            "margin:0;background:#fff}\n"
            "@media screen{body{margin:16px auto;max-width:1000px;padding:0 12px}}\n"
            "h1{font-size:16pt;margin:0 0 4px;border-bottom:3px solid #1a4f8b;padding-bottom:4px}\n"
            "h2{font-size:13pt;margin:18px 0 6px;color:#1a4f8b;border-bottom:1px solid #1a4f8b}\n"
            "h3{font-size:11pt;margin:12px 0 4px}\n"
            ".en{color:#555;font-size:8.5pt}\n"
            "table{border-collapse:collapse;margin:4px 0 8px}\n"
            "th,td{border:1px solid #aaa;padding:2px 5px;vertical-align:top;text-align:left}\n"
            "th{background:#e8eef6;font-weight:normal}\n"
            "td.num{text-align:right;white-space:nowrap}\n"
            "div.heat td,div.heat th{padding:1px 2px;font-size:7.5pt}\n"
            ".note{margin:2px 0 4px;font-size:9pt}\n"
            ".cards{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}\n"
            ".card{border:1px solid #1a4f8b;padding:4px 8px;min-width:110px;background:#f4f8fc}\n"
            ".card b{font-size:13pt}\n"
            ".up{color:#b00020}.down{color:#2e8b57}\n"
            "a.q{font-size:8.5pt;font-weight:normal;margin-left:8px}\n"
            "pre.sql{white-space:pre-wrap;font-size:7.5pt;background:#f6f6f6;border:1px solid #ccc;"
            "padding:4px;margin:2px 0 10px}\n"
            "svg{display:block;margin:4px 0;break-inside:avoid;page-break-inside:avoid}\n"
            ".month{break-before:page;page-break-before:always}\n"
            ".month:first-of-type{break-before:auto;page-break-before:auto}\n"
            "</style>\n");
}

static void head(page *pg, const char *last_run)
{
    textbuf *b = &pg->b;
    tb_puts(b, "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:\">\n"
               "<title>对账月报 Reconciliation month report</title>\n");
    css(b);
    tb_puts(b, "</head><body>\n<h1>话费核查月报 <span class=\"en\">The month at a glance: "
               "re-rating and double-refund report</span></h1>\n<p>");
    tb_puts(b, "数据库 <span class=\"en\">database</span> <code>");
    rp_esc_path(b, pg->o->db_name ? pg->o->db_name : "");
    tb_printf(b, "</code> · 最近运行 <span class=\"en\">latest run</span> %s · 截至 "
                 "<span class=\"en\">as of</span> <span id=\"as-of\">%s</span>",
              last_run, pg->as_of);
    if (pg->o->created) {
        tb_puts(b, " · 生成 <span class=\"en\">made</span> ");
        rp_esc(b, pg->o->created);
    }
    tb_printf(b, " · cdrecon %s</p>\n", CDRECON_VERSION);
    tb_puts(b, "<p class=\"en\">每个图表下的表格是其数字;每个图表链接到给出这些数字的 SQL 查询 "
               "(附录,用 <code>sqlite3 -readonly</code> 运行)。金额单位为元。 Each chart has its "
               "numbers in the table under it and links to the SQL query that gives them (in "
               "the appendix; run it with <code>sqlite3 -readonly</code>). Amounts in yuan; the "
               "queries give micro-yuan (columns *_micro, 1 yuan = 1,000,000).</p>\n");
}

/* The heading of a figure, its words, and its query into the appendix. */
static void fig_head(page *pg, int f)
{
    const rp_figure *fg = &rp_figures[f];
    tb_printf(&pg->b, "<section class=\"fig\" id=\"f-%s-%s\" data-fig=\"%s\" data-month=\"%s\">"
                      "<h3>%s <span class=\"en\">%s</span> <a class=\"q\" href=\"#q-%s-%s\">"
                      "查询 query</a></h3>\n<p class=\"note\">%s<br><span class=\"en\">%s</span>"
                      "</p>\n",
              pg->month, fg->id, fg->id, pg->month, fg->zh, fg->en, pg->month, fg->id,
              fig_note[f][0], fig_note[f][1]);
    tb_printf(&pg->q, "<h3 id=\"q-%s-%s\">%s %s <span class=\"en\">%s</span></h3>\n"
                      "<pre class=\"sql\" data-fig=\"%s\" data-month=\"%s\">",
              pg->month, fg->id, pg->month, fg->zh, fg->en, fg->id, pg->month);
    if (fg->sql)
        rp_sql_shown(&pg->q, fg->sql, pg->month, pg->as_of);
    else if (pg->t)
        rp_tariff_sql_shown(&pg->q, f, pg->tdir, pg->month,
                            pg->t->files[CDR_T_BANDS].present);
    else
        tb_puts(&pg->q, "-- (no tariff: see the figure)");
    tb_puts(&pg->q, "</pre>\n");
}

/* The figure's rows (rp_month_table). */
static cdr_err run_fig(page *pg, int f, rp_table *t)
{
    const rp_figure *fg = &rp_figures[f];
    rp_table_init(t, fg->cols, fg->ncols, fg->unit_col);
    if (rp_month_table(pg->m, f, t))
        return CDR_OK;
    snprintf(pg->err, pg->errlen, "report: out of memory");
    return CDR_E_NOMEM;
}

static void fig_end(page *pg, const rp_table *t, int f)
{
    char id[64];
    snprintf(id, sizeof id, "%s-%s", pg->month, rp_figures[f].id);
    if (f == RP_FIG_HEAT)
        tb_puts(&pg->b, "<div class=\"heat\">");
    rp_table_html(&pg->b, t, id);
    if (f == RP_FIG_HEAT)
        tb_puts(&pg->b, "</div>");
    tb_puts(&pg->b, "</section>\n");
}

/* A plain figure: heading, table. */
static cdr_err simple(page *pg, int f)
{
    rp_table t;
    fig_head(pg, f);
    cdr_err e = run_fig(pg, f, &t);
    if (e == CDR_OK)
        fig_end(pg, &t, f);
    rp_table_free(&t);
    return e;
}

static cdr_err totals(page *pg)
{
    rp_table t;
    textbuf *b = &pg->b;
    fig_head(pg, RP_FIG_TOTALS);
    cdr_err e = run_fig(pg, RP_FIG_TOTALS, &t);
    if (e != CDR_OK)
        goto out;
    tb_puts(b, "<div class=\"cards\">");
    for (size_t r = 0; r < t.nrows; r++) {
        const char *key = rp_table_at(&t, r, 0)->s;
        int money = !strcmp(rp_table_at(&t, r, 1)->s, "micro");
        int64_t now = rp_table_at(&t, r, 2)->i, chg = rp_table_at(&t, r, 4)->i;
        char v[40];
        if (money)
            cdr_yuan(now, v);
        else
            snprintf(v, sizeof v, "%lld", (long long)now);
        tb_printf(b, "<div class=\"card\" id=\"total-%s-%s\" data-v=\"%s\">%s<br><b>", pg->month,
                  key, v, rp_word_zh(key) ? rp_word_zh(key) : key);
        if (money)
            rp_yuan(b, now);
        else
            rp_count(b, now);
        /* (more records is news, not bad news) */
        const char *cls = !strcmp(key, "records") ? "" : chg > 0 ? "up" : chg < 0 ? "down" : "";
        tb_printf(b, "</b> <span class=\"%s\">%s", cls, chg > 0 ? "+" : "");
        if (money)
            rp_yuan(b, chg);
        else
            rp_count(b, chg);
        tb_printf(b, "</span><br><span class=\"en\">%s</span></div>",
                  rp_word_en(key) ? rp_word_en(key) : key);
    }
    tb_puts(b, "</div>\n");
    fig_end(pg, &t, RP_FIG_TOTALS);
out:
    rp_table_free(&t);
    return e;
}

static cdr_err by_category(page *pg)
{
    rp_table t;
    fig_head(pg, RP_FIG_CATEGORY);
    cdr_err e = run_fig(pg, RP_FIG_CATEGORY, &t);
    rp_bar *nb = calloc(t.nrows + 1, sizeof *nb), *mb = calloc(t.nrows + 1, sizeof *mb);
    char **labels = calloc(t.nrows + 1, sizeof *labels);
    if (e == CDR_OK && (!nb || !mb || !labels))
        e = CDR_E_NOMEM;
    for (size_t r = 0; e == CDR_OK && r < t.nrows; r++) {
        const char *key = rp_table_at(&t, r, 0)->s;
        size_t n = strlen(key) + strlen(rp_category_zh(key)) + 2;
        if (!(labels[r] = malloc(n))) {
            e = CDR_E_NOMEM;
            break;
        }
        snprintf(labels[r], n, "%s %s", rp_category_zh(key), key);
        int leak = !strcmp(key, "leakage");
        nb[r] = (rp_bar){labels[r], rp_table_at(&t, r, 1)->i, leak};
        mb[r] = (rp_bar){labels[r], rp_table_at(&t, r, leak ? 4 : 3)->i, leak};
    }
    if (e == CDR_OK) {
        tb_puts(&pg->b, "<p class=\"note\">条数 <span class=\"en\">findings</span></p>");
        rp_svg_bars(&pg->b, pg->month, nb, t.nrows, RP_FMT_COUNT);
        tb_puts(&pg->b, "<p class=\"note\">退费 (元,少收为橙色) <span class=\"en\">refund in "
                        "yuan (orange: leakage, not refunded)</span></p>");
        char id[32];
        snprintf(id, sizeof id, "%s-money", pg->month);
        rp_svg_bars(&pg->b, id, mb, t.nrows, RP_FMT_MONEY);
        fig_end(pg, &t, RP_FIG_CATEGORY);
    } else if (e == CDR_E_NOMEM) {
        snprintf(pg->err, pg->errlen, "report: out of memory");
    }
    for (size_t r = 0; labels && r < t.nrows; r++)
        free(labels[r]);
    free(labels);
    free(nb);
    free(mb);
    rp_table_free(&t);
    return e;
}

static cdr_err by_night(page *pg)
{
    rp_table t;
    fig_head(pg, RP_FIG_NIGHTS);
    cdr_err e = run_fig(pg, RP_FIG_NIGHTS, &t);
    size_t n = t.nrows;
    int64_t *v = calloc(3 * n + 1, sizeof *v);
    char **x = calloc(n + 1, sizeof *x), *xs = calloc(n + 1, 24);
    if (e == CDR_OK && (!v || !x || !xs)) {
        e = CDR_E_NOMEM;
        snprintf(pg->err, pg->errlen, "report: out of memory");
    }
    if (e == CDR_OK) {
        for (size_t r = 0; r < n; r++) {
            x[r] = xs + 24 * r;
            snprintf(x[r], 24, "r%lld", (long long)rp_table_at(&t, r, 0)->i);
            v[r] = rp_table_at(&t, r, 3)->i;         /* proposed */
            v[n + r] = rp_table_at(&t, r, 4)->i;     /* increased */
            v[2 * n + r] = rp_table_at(&t, r, 6)->i; /* withdrawn */
        }
        rp_series s[3] = {{"proposed", "新增 proposed", v},
                          {"increased", "增加 increased", v + n},
                          {"withdrawn", "撤销 withdrawn", v + 2 * n}};
        char id[32];
        snprintf(id, sizeof id, "%s-nights", pg->month);
        rp_svg_lines(&pg->b, id, (const char *const *)x, n, s, 3);
        fig_end(pg, &t, RP_FIG_NIGHTS);
    }
    free(v);
    free(x);
    free(xs);
    rp_table_free(&t);
    return e;
}

static cdr_err heat(page *pg)
{
    rp_table t;
    int64_t v[7][24];
    memset(v, 0, sizeof v);
    fig_head(pg, RP_FIG_HEAT);
    cdr_err e = run_fig(pg, RP_FIG_HEAT, &t);
    if (e != CDR_OK)
        goto out;
    for (size_t r = 0; r < t.nrows && r < 7; r++)
        for (int hr = 0; hr < 24; hr++)
            v[r][hr] = rp_table_at(&t, r, 2 + (size_t)hr)->i; /* rows Monday..Sunday */
    char id[32];
    snprintf(id, sizeof id, "%s-heat", pg->month);
    rp_svg_heat(&pg->b, id, v);
    fig_end(pg, &t, RP_FIG_HEAT);
out:
    rp_table_free(&t);
    return e;
}

static void approvers(page *pg)
{
    static const char *const zh[5] = {"坐席直接退费", "工单班长", "投诉主管", "运营部经理",
                                      "副总经理"};
    tb_puts(&pg->b, "<p class=\"note\">审批人 <span class=\"en\">approvers</span>: ");
    for (int i = 0; i < 5; i++)
        tb_printf(&pg->b, "%s%d %s <span class=\"en\">(%s)</span>", i ? "; " : "", i, zh[i],
                  cdr_tier_approver(i));
    tb_puts(&pg->b, "</p>\n");
}

/* ---- the tariff of the month ---- */

static void hex(const uint8_t d[32], char out[65])
{
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[64] = '\0';
}

/* The tariff loads on a thread of its own while the month is read from the
 * database (the bench month's tariff is most of the report's time). */
typedef struct loader {
    pthread_t th;
    int started;
    char dir[1024];
    cdr_tariff *t;
    cdr_err e;
    char err[512];
} loader;

static void *load_main(void *arg)
{
    loader *l = arg;
    l->e = cdr_tariff_load(l->dir, &l->t, l->err, sizeof l->err);
    return NULL;
}

/* Which tariff: the one given (loaded or a directory), else the one the
 * month was last rated with (its directory and SHA-256 into sha). Starts
 * loading it; pg->tnote says why there is none. */
static cdr_err tariff_start(page *pg, loader *l, char sha[65])
{
    const char *given = pg->o->tariff_dir;
    sha[0] = '\0';
    if (pg->o->tariff) {
        pg->t = pg->o->tariff;
        snprintf(pg->tdir, sizeof pg->tdir, "%s", given ? given : pg->o->tariff->dir);
        return CDR_OK;
    }
    if (!given) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(pg->h, rp_sql_month_tariff, -1, &s, NULL);
        if (rc != SQLITE_OK)
            return rp_sqlite_err(pg->h, rc, "report: tariff", pg->err, pg->errlen);
        sqlite3_bind_text(s, 1, pg->month, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            snprintf(pg->tdir, sizeof pg->tdir, "%s", (const char *)sqlite3_column_text(s, 0));
            snprintf(sha, 65, "%s", (const char *)sqlite3_column_text(s, 1));
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rp_sqlite_err(pg->h, rc, "report: tariff", pg->err, pg->errlen);
        if (!pg->tdir[0]) {
            snprintf(pg->tnote, sizeof pg->tnote, "no tariff is recorded for %s", pg->month);
            return CDR_OK;
        }
    } else {
        snprintf(pg->tdir, sizeof pg->tdir, "%s", given);
    }
    snprintf(l->dir, sizeof l->dir, "%s", pg->tdir);
    l->started = pthread_create(&l->th, NULL, load_main, l) == 0;
    if (!l->started)
        load_main(l); /* (no thread: load it here) */
    return CDR_OK;
}

/* Wait for the tariff; keep it only when its tables are those recorded
 * (or it was given). */
static cdr_err tariff_finish(page *pg, loader *l, const char *sha)
{
    char got[65];
    if (pg->o->tariff || !l->dir[0])
        return CDR_OK;
    if (l->started)
        pthread_join(l->th, NULL);
    l->started = 0;
    if (l->e == CDR_E_NOMEM) {
        snprintf(pg->err, pg->errlen, "report: out of memory");
        return l->e;
    }
    if (l->e != CDR_OK && pg->o->tariff_dir) { /* the one asked for: an error */
        snprintf(pg->err, pg->errlen, "tariff %.400s: %.500s", pg->tdir, l->err);
        return l->e;
    }
    if (l->e != CDR_OK) {
        snprintf(pg->tnote, sizeof pg->tnote,
                 "the tariff %.400s cannot be read (%.300s): give --tariff", pg->tdir, l->err);
        return CDR_OK;
    }
    uint8_t d[32];
    cdr_tariff_sha256(l->t, d);
    hex(d, got);
    if (!pg->o->tariff_dir && strcmp(got, sha) != 0) {
        snprintf(pg->tnote, sizeof pg->tnote, "the tariff %.400s changed since %s was rated: give "
                 "--tariff with the tables it was rated with", pg->tdir, pg->month);
        return CDR_OK;
    }
    pg->t = pg->owned = l->t;
    l->t = NULL;
    return CDR_OK;
}

static void no_tariff(page *pg)
{
    tb_puts(&pg->b, "<p class=\"note\"><b>无资费表 <span class=\"en\">no tariff</span></b>: ");
    rp_esc_path(&pg->b, pg->tnote);
    tb_puts(&pg->b, "</p>\n");
}

static cdr_err tariff_figs(page *pg)
{
    rp_table p, r;
    fig_head(pg, RP_FIG_PLANS);
    if (!pg->t)
        no_tariff(pg);
    cdr_err e = run_fig(pg, RP_FIG_PLANS, &p);
    rp_bar *bars = calloc(p.nrows + 1, sizeof *bars);
    if (e == CDR_OK && !bars) {
        snprintf(pg->err, pg->errlen, "report: out of memory");
        e = CDR_E_NOMEM;
    }
    if (e == CDR_OK) {
        for (size_t i = 0; i < p.nrows; i++)
            bars[i] = (rp_bar){rp_table_at(&p, i, 0)->s, rp_table_at(&p, i, 2)->i, 0};
        char id[32];
        snprintf(id, sizeof id, "%s-plans", pg->month);
        if (pg->t)
            rp_svg_bars(&pg->b, id, bars, p.nrows, RP_FMT_MONEY);
        fig_end(pg, &p, RP_FIG_PLANS);
    }
    free(bars);
    rp_table_free(&p);
    if (e != CDR_OK)
        return e;
    fig_head(pg, RP_FIG_RATES);
    if (!pg->t)
        no_tariff(pg);
    if ((e = run_fig(pg, RP_FIG_RATES, &r)) == CDR_OK)
        fig_end(pg, &r, RP_FIG_RATES);
    rp_table_free(&r);
    return e;
}

/* ---- one month ---- */

static cdr_err month_known(page *pg)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(pg->h, rp_sql_month_known, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rp_sqlite_err(pg->h, rc, "report", pg->err, pg->errlen);
    sqlite3_bind_text(s, 1, pg->month, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return CDR_OK;
    if (rc == SQLITE_DONE) {
        snprintf(pg->err, pg->errlen, "the database holds no record of %s", pg->month);
        return CDR_E_NOTFOUND;
    }
    return rp_sqlite_err(pg->h, rc, "report", pg->err, pg->errlen);
}

static void h2(page *pg, const char *zh, const char *en)
{
    tb_printf(&pg->b, "<h2>%s <span class=\"en\">%s</span></h2>\n", zh, en);
}

static cdr_err month_section(page *pg)
{
    cdr_err e;
    loader l;
    char sha[65];
    memset(&l, 0, sizeof l);
    if ((e = month_known(pg)) != CDR_OK || (e = tariff_start(pg, &l, sha)) != CDR_OK)
        return e;
    e = rp_month_load(pg->h, pg->month, pg->as_of, pg->o->tariff || l.dir[0], &pg->m, pg->err,
                      pg->errlen);
    cdr_err te = tariff_finish(pg, &l, sha);
    cdr_tariff_free(l.t);
    if (e == CDR_OK)
        e = te;
    if (e == CDR_OK && pg->t && !rp_month_tariff(pg->m, pg->t)) {
        snprintf(pg->err, pg->errlen, "report: out of memory");
        e = CDR_E_NOMEM;
    }
    if (e != CDR_OK)
        return e;
    if (pg->tnote[0] && pg->note && !pg->note[0])
        snprintf(pg->note, pg->notelen, "%s: plans and rate rows left out: %s", pg->month,
                 pg->tnote);
    tb_printf(&pg->b, "<div class=\"month\" id=\"m-%s\" data-month=\"%s\">\n", pg->month,
              pg->month);
    h2(pg, "账期", "Bill month");
    tb_printf(&pg->b, "<p style=\"font-size:14pt\"><b id=\"month\">%s</b></p>\n", pg->month);
    if ((e = totals(pg)) != CDR_OK)
        return e;
    h2(pg, "问题与退费", "Findings and refunds");
    if ((e = by_category(pg)) != CDR_OK || (e = by_night(pg)) != CDR_OK)
        return e;
    h2(pg, "问题来源", "Where the errors come from");
    if ((e = tariff_figs(pg)) != CDR_OK || (e = simple(pg, RP_FIG_SERVICES)) != CDR_OK ||
        (e = heat(pg)) != CDR_OK)
        return e;
    h2(pg, "退费候选", "Refund candidates");
    if ((e = simple(pg, RP_FIG_TIERS)) != CDR_OK)
        return e;
    approvers(pg);
    if ((e = simple(pg, RP_FIG_DEADLINES)) != CDR_OK ||
        (e = simple(pg, RP_FIG_SPECIAL)) != CDR_OK || (e = simple(pg, RP_FIG_TOP)) != CDR_OK)
        return e;
    h2(pg, "数据质量", "Data quality");
    if ((e = simple(pg, RP_FIG_REJECT_REASONS)) != CDR_OK ||
        (e = simple(pg, RP_FIG_REJECT_FILES)) != CDR_OK ||
        (e = simple(pg, RP_FIG_FILES)) != CDR_OK || (e = simple(pg, RP_FIG_LATE)) != CDR_OK)
        return e;
    tb_puts(&pg->b, "</div>\n");
    return CDR_OK;
}

/* ---- the page ---- */

/* One text value of a one-row query (or "" when it gives no row). */
static cdr_err scalar(page *pg, const char *sql, int col, char *buf, size_t len)
{
    sqlite3_stmt *s = NULL;
    buf[0] = '\0';
    int rc = sqlite3_prepare_v2(pg->h, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rp_sqlite_err(pg->h, rc, "report", pg->err, pg->errlen);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW && sqlite3_column_type(s, col) != SQLITE_NULL)
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, col));
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rp_sqlite_err(pg->h, rc, "report", pg->err, pg->errlen);
    return CDR_OK;
}

/* Which months, as of which day, and the latest run. */
static cdr_err setup(page *pg, cdr_report *out, char *last_run, size_t len)
{
    const cdr_report_opts *o = pg->o;
    char v[64];
    cdr_err e;
    if (o->n_months > CDR_REPORT_MAX_MONTHS) {
        snprintf(pg->err, pg->errlen, "at most %d months in one report", CDR_REPORT_MAX_MONTHS);
        return CDR_E_USAGE;
    }
    for (size_t i = 0; i < o->n_months; i++)
        out->months[out->n_months++] = o->months[i];
    if (!out->n_months) {
        if ((e = scalar(pg, rp_sql_latest_month, 0, v, sizeof v)) != CDR_OK)
            return e;
        if (!v[0] || cdr_month_parse(v, strlen(v), &out->months[0]) != CDR_OK) {
            snprintf(pg->err, pg->errlen, "the database holds no records yet");
            return CDR_E_NOTFOUND;
        }
        out->n_months = 1;
    }
    if ((e = scalar(pg, rp_sql_last_run, 0, last_run, len)) != CDR_OK ||
        (e = scalar(pg, rp_sql_last_run, 2, v, sizeof v)) != CDR_OK)
        return e;
    snprintf(pg->as_of, sizeof pg->as_of, "%s", o->as_of ? o->as_of : v);
    cdr_time tt;
    if (strlen(pg->as_of) != 10 || cdr_date_parse(pg->as_of, 10, &tt) != CDR_OK) {
        snprintf(pg->err, pg->errlen, "bad as-of day '%s' (want YYYY-MM-DD)", pg->as_of);
        return CDR_E_USAGE;
    }
    return CDR_OK;
}

static cdr_err build(page *pg, cdr_report *out)
{
    char last_run[32];
    cdr_err e = setup(pg, out, last_run, sizeof last_run);
    if (e != CDR_OK)
        return e;
    head(pg, last_run[0] ? last_run : "—");
    for (size_t i = 0; i < out->n_months && e == CDR_OK; i++) {
        cdr_month_format(out->months[i], pg->month);
        pg->tnote[0] = '\0';
        pg->tdir[0] = '\0';
        e = month_section(pg);
        cdr_tariff_free(pg->owned);
        pg->t = pg->owned = NULL;
        rp_month_free(pg->m);
        pg->m = NULL;
    }
    if (e != CDR_OK)
        return e;
    tb_puts(&pg->b, "<h2 class=\"month\">附录:查询 <span class=\"en\">Appendix: the queries"
                    "</span></h2>\n<p class=\"note\">用 <code>sqlite3 -readonly ");
    rp_esc_path(&pg->b, pg->o->db_name ? pg->o->db_name : "DB");
    tb_puts(&pg->b, "</code> 运行 <span class=\"en\">run each with it; the plan and rate-row "
                    "queries first load the tariff's tables into temporary tables "
                    "(.import)</span></p>\n");
    tb_put(&pg->b, pg->q.p ? pg->q.p : "", pg->q.n);
    tb_puts(&pg->b, "</body></html>\n");
    if (pg->b.oom || pg->q.oom) {
        snprintf(pg->err, pg->errlen, "report: out of memory");
        return CDR_E_NOMEM;
    }
    return CDR_OK;
}

cdr_err cdr_report_build(cdr_db *db, const cdr_report_opts *o, cdr_report *out, char *err,
                         size_t errlen)
{
    page pg;
    memset(&pg, 0, sizeof pg);
    memset(out, 0, sizeof *out);
    pg.h = cdr_db_sqlite(db);
    pg.o = o;
    pg.err = err;
    pg.errlen = errlen;
    pg.note = out->note;
    pg.notelen = sizeof out->note;
    err[0] = '\0';
    /* one read transaction: every figure sees the same committed state */
    int rc = sqlite3_exec(pg.h, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rp_sqlite_err(pg.h, rc, "report: begin", err, errlen);
    cdr_err e = build(&pg, out);
    sqlite3_exec(pg.h, "ROLLBACK", NULL, NULL, NULL);
    tb_free(&pg.q);
    if (e != CDR_OK) {
        tb_free(&pg.b);
        out->n_months = 0;
        return e;
    }
    out->html = pg.b.p;
    out->html_len = pg.b.n;
    return CDR_OK;
}

void cdr_report_free(cdr_report *r)
{
    if (!r)
        return;
    free(r->html);
    r->html = NULL;
    r->html_len = 0;
}
