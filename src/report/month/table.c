/* cdrecon — the month report: tables filled by queries with bound
 * parameters, and shown as HTML (src/report/month/report.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

void rp_table_init(rp_table *t, const rp_col *cols, size_t ncols, int unit_col)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->ncols = ncols;
    t->unit_col = unit_col;
}

rp_cell *rp_table_add(rp_table *t)
{
    if (t->oom)
        return NULL;
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        rp_cell *c = realloc(t->cells, nc * t->ncols * sizeof *c);
        if (!c) {
            t->oom = 1;
            return NULL;
        }
        t->cells = c;
        t->cap = nc;
    }
    rp_cell *row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++)
        row[i] = (rp_cell){1, 0, NULL};
    t->nrows++;
    return row;
}

rp_cell *rp_table_at(const rp_table *t, size_t row, size_t col)
{
    return t->cells + row * t->ncols + col;
}

void rp_table_free(rp_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].s);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

static int numeric(rp_coltype k)
{
    return k == RP_COUNT || k == RP_MONEY || k == RP_BY_UNIT;
}

cdr_err rp_sqlite_err(sqlite3 *h, int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s (%s)", what, h ? sqlite3_errmsg(h) : "", sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return CDR_E_NOMEM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
        return CDR_E_IO;
    default:
        return CDR_E_DB;
    }
}

cdr_err rp_query(sqlite3 *h, const char *sql, const char *month, const char *as_of,
                 const char *nights, rp_table *t, char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rp_sqlite_err(h, rc, "report query", err, errlen);
    int np = sqlite3_bind_parameter_count(s);
    if (np >= 1)
        sqlite3_bind_text(s, 1, month, -1, SQLITE_STATIC);
    if (np >= 2)
        sqlite3_bind_text(s, 2, as_of, -1, SQLITE_STATIC);
    if (np >= 3)
        sqlite3_bind_text(s, 3, nights ? nights : "[]", -1, SQLITE_STATIC);
    cdr_err e = CDR_OK;
    size_t nc = (size_t)sqlite3_column_count(s);
    if (nc > t->ncols)
        nc = t->ncols;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rp_cell *row = rp_table_add(t);
        if (!row) {
            e = CDR_E_NOMEM;
            snprintf(err, errlen, "report: out of memory");
            break;
        }
        for (size_t i = 0; i < nc; i++) {
            if (sqlite3_column_type(s, (int)i) == SQLITE_NULL)
                continue;
            row[i].null = 0;
            if (numeric(t->cols[i].type)) {
                row[i].i = sqlite3_column_int64(s, (int)i);
                continue;
            }
            const char *v = (const char *)sqlite3_column_text(s, (int)i);
            if (!(row[i].s = strdup(v ? v : ""))) {
                t->oom = 1;
                row[i].null = 1;
            }
        }
    }
    if (e == CDR_OK && rc != SQLITE_DONE)
        e = rp_sqlite_err(h, rc, "report query", err, errlen);
    if (e == CDR_OK && t->oom) {
        e = CDR_E_NOMEM;
        snprintf(err, errlen, "report: out of memory");
    }
    sqlite3_finalize(s);
    return e;
}

void rp_sql_shown(textbuf *b, const char *sql, const char *month, const char *as_of)
{
    for (const char *p = sql; *p;) {
        const char *q = strchr(p, '?');
        if (!q) {
            rp_esc(b, p);
            break;
        }
        rp_escn(b, p, (size_t)(q - p));
        if (q[1] == '1' || q[1] == '2') {
            /* (month and as_of are validated dates: no quote inside) */
            tb_printf(b, "&#39;%s&#39;", q[1] == '1' ? month : as_of);
            p = q + 2;
        } else {
            tb_put(b, "?", 1);
            p = q + 1;
        }
    }
}

static const char *const day_zh[7] = {"周日", "周一", "周二", "周三", "周四", "周五", "周六"};
static const char *const day_en[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int unit_micro(const rp_table *t, size_t r)
{
    if (t->unit_col < 0)
        return 0;
    const rp_cell *u = rp_table_at(t, r, (size_t)t->unit_col);
    return !u->null && u->s && strcmp(u->s, "micro") == 0;
}

/* One cell: <td data-v="...">shown</td>. */
static void cell_html(textbuf *b, const rp_table *t, size_t r, size_t c)
{
    const rp_cell *v = rp_table_at(t, r, c);
    rp_coltype k = t->cols[c].type;
    char tmp[64];
    if (k == RP_BY_UNIT)
        k = unit_micro(t, r) ? RP_MONEY : RP_COUNT;
    if (v->null) {
        tb_puts(b, "<td data-v=\"\" data-null=\"1\">—</td>");
        return;
    }
    switch (k) {
    case RP_COUNT:
        tb_printf(b, "<td class=\"num\" data-v=\"%lld\">", (long long)v->i);
        rp_count(b, v->i);
        break;
    case RP_MONEY:
        cdr_yuan(v->i, tmp);
        tb_printf(b, "<td class=\"num\" data-v=\"%s\">", tmp);
        rp_yuan(b, v->i);
        break;
    case RP_MSISDN: {
        size_t n = strlen(v->s);
        char *m = malloc(n + 1);
        if (!m) {
            b->oom = 1;
            return;
        }
        cdr_number_mask(v->s, n, m);
        tb_puts(b, "<td data-v=\"");
        rp_esc(b, m);
        tb_puts(b, "\">");
        rp_esc(b, m);
        free(m);
        break;
    }
    case RP_CATEGORY:
        tb_puts(b, "<td data-v=\"");
        rp_esc(b, v->s);
        tb_puts(b, "\">");
        rp_esc(b, rp_category_zh(v->s));
        tb_puts(b, "<br><span class=\"en\">");
        rp_esc(b, *v->s ? v->s : "(flags only)");
        tb_puts(b, "</span>");
        break;
    case RP_WEEKDAY: {
        int d = v->s[0] >= '0' && v->s[0] <= '6' ? v->s[0] - '0' : 0;
        tb_puts(b, "<td data-v=\"");
        rp_esc(b, v->s);
        tb_printf(b, "\">%s <span class=\"en\">%s</span>", day_zh[d], day_en[d]);
        break;
    }
    case RP_WORD:
        tb_puts(b, "<td data-v=\"");
        rp_esc(b, v->s);
        tb_puts(b, "\">");
        if (rp_word_zh(v->s))
            tb_printf(b, "%s <span class=\"en\">%s</span>", rp_word_zh(v->s), rp_word_en(v->s));
        else
            rp_esc(b, v->s);
        break;
    case RP_PRICE:
        tb_puts(b, "<td class=\"num\" data-v=\"");
        rp_esc(b, v->s);
        tb_puts(b, "\">");
        rp_esc(b, v->s);
        break;
    default:
        tb_puts(b, "<td data-v=\"");
        rp_esc(b, v->s);
        tb_puts(b, "\">");
        rp_esc(b, v->s);
        break;
    }
    tb_puts(b, "</td>");
}

void rp_table_html(textbuf *b, const rp_table *t, const char *id)
{
    tb_printf(b, "<table class=\"data\" id=\"t-%s\"><thead><tr>", id);
    for (size_t c = 0; c < t->ncols; c++)
        tb_printf(b, "<th data-key=\"%s\">%s<br><span class=\"en\">%s</span></th>",
                  t->cols[c].key, t->cols[c].zh, t->cols[c].en);
    tb_puts(b, "</tr></thead>\n<tbody>\n");
    for (size_t r = 0; r < t->nrows; r++) {
        tb_puts(b, "<tr>");
        for (size_t c = 0; c < t->ncols; c++)
            cell_html(b, t, r, c);
        tb_puts(b, "</tr>\n");
    }
    if (t->nrows == 0)
        tb_printf(b, "<tr class=\"none\"><td colspan=\"%zu\">无 <span class=\"en\">none</span>"
                     "</td></tr>\n",
                  t->ncols);
    tb_puts(b, "</tbody></table>\n");
}
