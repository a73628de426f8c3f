/*
 * cdrecon — loading and validating the tariff directory (CONTRACT.md "Tariff
 * directory"; the user's description is docs/tariff.md). The first problem
 * found refuses the tariff with "FILE:LINE: reason".
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cdrecon/rate.h"
#include "csvout.h"
#include "csvtable.h"
#include "grow.h"
#include "sha256.h"
#include "tariff_int.h"

static const char *const table_names[CDR_T__COUNT] = {
    "plans.csv",       "bands.csv",       "rates.csv",
    "bundles.csv",     "discounts.csv",   "free_numbers.csv",
    "subscribers.csv", "subscriptions.csv", "refunds.csv",
};

/* ------------------------------------------------------------ the loader */
#define MAXCOLS 12

typedef struct colspec {
    const char *name;
    int required;
} colspec;

typedef struct ld ld;
typedef cdr_err (*row_fn)(ld *L, const cdr_str *c, uint32_t line);

struct ld {
    cdr_tariff *t;
    cdr_tariff_index *ix;
    char *err;
    size_t errlen;
    const char *file;
    const colspec *cols;
    int ncols;
    int idx[MAXCOLS];
    int header_done;
    row_fn fn;
    uint64_t rows;
    size_t cap_bands, cap_rates, cap_bundles, cap_discounts, cap_free, cap_subs, cap_sscr,
        cap_refunds, cap_band_names, cap_pool_names;
};

static cdr_err fail(ld *L, uint32_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cdr_err fail(ld *L, uint32_t line, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(L->err, L->errlen, "%s:%u: ", L->file, (unsigned)line);
    if (k < 0 || (size_t)k >= L->errlen)
        return CDR_E_TARIFF;
    va_start(ap, fmt);
    vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return CDR_E_TARIFF;
}

static cdr_err nomem(ld *L)
{
    snprintf(L->err, L->errlen, "%s: out of memory", L->file ? L->file : "tariff");
    return CDR_E_NOMEM;
}

/* A value for messages: at most 40 bytes, between quotes. */
#define V(s) (int)((s).n > 40 ? 40 : (s).n), (s).p

/* Room for element n of arr (capacity in L->capf): 0, or -1 when out of
 * memory. */
#define GROW(L, arr, n, capf) cdr_grow(&(arr), &(L)->capf, (n) + 1, sizeof *(arr), 16)

static char *dupstr(ld *L, cdr_str s)
{
    return cdr_arena_strdup(&L->ix->arena, s.p, s.n);
}

/* --------------------------------------------------------- value parsers */
/* 0, or -1 (not a whole number), or -2 (a whole number above max). */
static int parse_uint(cdr_str s, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (s.n == 0)
        return -1;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
    if (s.n > 18)
        return -2;
    for (size_t i = 0; i < s.n; i++)
        v = v * 10 + (s.p[i] - '0');
    if (v > max)
        return -2;
    *out = v;
    return 0;
}

static int parse_bool(cdr_str s, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "y"};
    static const char *const no[] = {"0", "no", "false", "n"};
    if (s.n == 0) {
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        if (csvt_eq(s, yes[i])) {
            *out = 1;
            return 0;
        }
        if (csvt_eq(s, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int is_digits(cdr_str s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
    return 1;
}

static int is_star(cdr_str s)
{
    return s.n == 1 && s.p[0] == '*';
}

/* Names (plan, band, pool, service code): 1..CDR_NAME_MAX bytes, no control
 * characters. */
static cdr_err check_name(ld *L, uint32_t line, const char *what, cdr_str s)
{
    if (s.n == 0)
        return fail(L, line, "%s is empty", what);
    if (s.n > CDR_NAME_MAX)
        return fail(L, line, "%s '%.*s...' is longer than %d bytes", what, V(s), CDR_NAME_MAX);
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return fail(L, line, "%s contains a control character", what);
    return CDR_OK;
}

static cdr_err money_cell(ld *L, uint32_t line, const char *col, cdr_str s, cdr_money *out)
{
    cdr_err e = cdr_money_parse(s.p, s.n, out);
    if (e == CDR_E_RANGE)
        return fail(L, line, "%s '%.*s' has more than 6 decimals or is too large", col, V(s));
    if (e != CDR_OK)
        return fail(L, line, "bad %s '%.*s' (a decimal amount in yuan, e.g. 0.19)", col, V(s));
    return CDR_OK;
}

static cdr_err date_cell(ld *L, uint32_t line, const char *col, cdr_str s, cdr_time *out)
{
    if (cdr_date_parse(s.p, s.n, out) != CDR_OK)
        return fail(L, line, "bad %s '%.*s' (YYYY-MM-DD)", col, V(s));
    return CDR_OK;
}

static cdr_err number_cell(ld *L, uint32_t line, cdr_str s, cdr_str *out)
{
    if (s.n == 0)
        return fail(L, line, "msisdn is empty");
    if (cdr_number_normalise(s.p, s.n, out) != CDR_OK)
        return fail(L, line, "bad msisdn '%.*s' (digits, optional leading +)", V(s));
    return CDR_OK;
}

/* Date range: valid_from required, valid_to empty = open ended; both days
 * included, so valid_to is stored as 00:00 of the day after. */
static cdr_err range_cells(ld *L, uint32_t line, cdr_str from, cdr_str to, cdr_time *vf,
                           cdr_time *vt)
{
    cdr_err e;
    if (from.n == 0)
        return fail(L, line, "valid_from is empty");
    if ((e = date_cell(L, line, "valid_from", from, vf)) != CDR_OK)
        return e;
    if (to.n == 0) {
        *vt = INT64_MAX;
        return CDR_OK;
    }
    if ((e = date_cell(L, line, "valid_to", to, vt)) != CDR_OK)
        return e;
    if (*vt < *vf)
        return fail(L, line, "valid_to %.*s is before valid_from %.*s", V(to), V(from));
    *vt += 86400;
    return CDR_OK;
}

static int32_t find_plan(ld *L, cdr_str s)
{
    const cdr_sh_ent *e = cdr_sh_get(&L->ix->plans, 0, s.p, s.n);
    return e ? e->a : -1;
}

static cdr_err plan_cell(ld *L, uint32_t line, cdr_str s, int32_t *out)
{
    if (s.n == 0)
        return fail(L, line, "plan is empty");
    *out = find_plan(L, s);
    if (*out < 0)
        return fail(L, line, "unknown plan '%.*s' (not in plans.csv)", V(s));
    return CDR_OK;
}

static cdr_err service_cell(ld *L, uint32_t line, cdr_str s, cdr_service *out)
{
    if (cdr_service_parse(s.p, s.n, out) != CDR_OK)
        return fail(L, line, "unknown service '%.*s' (voice, sms, data or vas)", V(s));
    return CDR_OK;
}

static int32_t find_name(char **names, size_t n, cdr_str s)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == s.n && memcmp(names[i], s.p, s.n) == 0)
            return (int32_t)i;
    return -1;
}

/* --------------------------------------------------------- table driver */
static cdr_err on_csv_row(void *ud, const cdr_str *f, size_t nf, uint32_t line, char *err,
                          size_t errlen)
{
    ld *L = ud;
    (void)err;
    (void)errlen;
    if (!L->header_done) {
        for (int c = 0; c < L->ncols; c++)
            L->idx[c] = -1;
        for (size_t i = 0; i < nf; i++) {
            for (int c = 0; c < L->ncols; c++) {
                if (!csvt_eq(f[i], L->cols[c].name))
                    continue;
                if (L->idx[c] >= 0)
                    return fail(L, line, "column '%s' appears twice", L->cols[c].name);
                L->idx[c] = (int)i;
            }
        }
        for (int c = 0; c < L->ncols; c++)
            if (L->cols[c].required && L->idx[c] < 0)
                return fail(L, line, "missing required column '%s'", L->cols[c].name);
        L->header_done = 1;
        return CDR_OK;
    }
    cdr_str c[MAXCOLS];
    for (int k = 0; k < L->ncols; k++) {
        if (L->idx[k] >= 0) {
            c[k] = f[L->idx[k]];
        } else {
            c[k].p = "";
            c[k].n = 0;
        }
    }
    L->rows++;
    if (line == UINT32_MAX)
        return fail(L, line, "too many lines");
    return L->fn(L, c, line);
}

/* Read one table. An absent optional table is empty; an absent required
 * one is refused. */
/* ------------------------------------------- names in the directory */

/* Edit distance of two names, ASCII case folded, capped at 3. */
static int name_distance(const char *a, size_t na, const char *b, size_t nb)
{
    int d[64][64];
    if (na > 63 || nb > 63)
        return 3;
    for (size_t i = 0; i <= na; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int c = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j - 1] + c;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            d[i][j] = v;
        }
    return d[na][nb] < 3 ? d[na][nb] : 3;
}

/* The name without what follows its first '.' ("refunds" of "refunds.csv"). */
static size_t stem(const char *s)
{
    const char *dot = strchr(s, '.');
    return dot ? (size_t)(dot - s) : strlen(s);
}

/* The table whose name is near `name` (a stem at most 2 edits away: a
 * misspelling, another case or extension), or NULL. */
static const char *near_table(const char *name)
{
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; i < CDR_T__COUNT; i++) {
        int d = name_distance(name, stem(name), table_names[i], stem(table_names[i]));
        if (d < bd) {
            bd = d;
            best = table_names[i];
        }
    }
    return bd <= 2 ? best : NULL;
}

static int is_table_name(const char *name)
{
    for (int i = 0; i < CDR_T__COUNT; i++)
        if (strcmp(name, table_names[i]) == 0)
            return 1;
    return 0;
}

/* An entry of dir near the table `table` (for "required table is missing"). */
static int near_entry(const char *dir, const char *table, char *out, size_t n)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    int found = 0;
    if (!dp)
        return 0;
    while (!found && (de = readdir(dp)) != NULL)
        if (de->d_name[0] != '.' && !is_table_name(de->d_name) &&
            near_table(de->d_name) == table) {
            snprintf(out, n, "%s", de->d_name);
            found = 1;
        }
    closedir(dp);
    return found;
}

/* Every entry of the tariff directory that is not a table (hidden names
 * excepted) becomes a warning: a misspelled optional table (refund.csv)
 * would otherwise be ignored without a word. Sorted by name. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static cdr_err scan_unknown(cdr_tariff *t, char *err, size_t errlen)
{
    DIR *dp = opendir(t->dir);
    struct dirent *de;
    size_t cap = 0;
    if (!dp)
        return CDR_OK; /* it was read a moment ago; nothing to add */
    while ((de = readdir(dp)) != NULL) {
        if (de->d_name[0] == '.' || is_table_name(de->d_name))
            continue;
        if (t->n_warnings == 64) {
            char **v = realloc(t->warnings, (t->n_warnings + 1) * sizeof *v);
            if (!v || !(v[t->n_warnings] = strdup("... more unknown files not listed")))
                break;
            t->warnings = v;
            t->n_warnings++;
            break;
        }
        if (t->n_warnings == cap) {
            size_t nc = cap ? cap * 2 : 4;
            char **v = realloc(t->warnings, nc * sizeof *v);
            if (!v)
                goto nomem;
            t->warnings = v;
            cap = nc;
        }
        const char *near = near_table(de->d_name);
        char m[512];
        snprintf(m, sizeof m, "unknown file '%.200s' is not read%s%s%s", de->d_name,
                 near ? " (did you mean " : " (the tables: docs/tariff.md)", near ? near : "",
                 near ? "?)" : "");
        if (!(t->warnings[t->n_warnings] = strdup(m)))
            goto nomem;
        t->n_warnings++;
    }
    closedir(dp);
    if (t->n_warnings > 1) {
        size_t n = t->n_warnings;
        int more = strncmp(t->warnings[n - 1], "...", 3) == 0;
        qsort(t->warnings, n - (size_t)more, sizeof *t->warnings, cmp_str);
    }
    return CDR_OK;
nomem:
    closedir(dp);
    snprintf(err, errlen, "tariff: out of memory");
    return CDR_E_NOMEM;
}

static cdr_err load_table(ld *L, cdr_table tb, int required, const colspec *cols, int ncols,
                          row_fn fn)
{
    cdr_tariff *t = L->t;
    cdr_tariff_file *tf = &t->files[tb];
    size_t plen = strlen(t->dir) + strlen(tf->name) + 2;
    char *path = malloc(plen);
    struct stat st;
    if (!path)
        return nomem(L);
    snprintf(path, plen, "%s/%s", t->dir, tf->name);
    L->file = tf->name;
    L->cols = cols;
    L->ncols = ncols;
    L->header_done = 0;
    L->fn = fn;
    L->rows = 0;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        int dangling = lstat(path, &st) == 0; /* a symbolic link to nothing */
        free(path);
        if (dangling) {
            snprintf(L->err, L->errlen, "%s: cannot read: a symbolic link to a missing file",
                     tf->name);
            return CDR_E_IO;
        }
        if (required) {
            char near[256];
            int k = snprintf(L->err, L->errlen, "%s: required table is missing from %s",
                             tf->name, t->dir);
            if (near_entry(t->dir, tf->name, near, sizeof near) && k >= 0 &&
                (size_t)k < L->errlen)
                snprintf(L->err + k, L->errlen - (size_t)k, " (the directory has %s)", near);
            return CDR_E_TARIFF;
        }
        return CDR_OK;
    }
    void *data = NULL;
    size_t len = 0;
    cdr_err e = csvt_read(path, tf->name, on_csv_row, L, &tf->size, &data, &len, L->err,
                          L->errlen);
    free(path);
    if (e != CDR_OK)
        return e;
    tf->present = 1;
    tf->rows = L->rows;
    {
        cdr_sha256 h;
        cdr_sha256_init(&h);
        cdr_sha256_update(&h, data ? data : "", len);
        cdr_sha256_final(&h, tf->sha256);
    }
    free(data);
    if (!L->header_done) {
        if (required) {
            snprintf(L->err, L->errlen, "%s:1: empty file: no header row", tf->name);
            return CDR_E_TARIFF;
        }
        return CDR_OK;
    }
    return CDR_OK;
}

/* ----------------------------------------------------------------- plans */
enum { P_PLAN, P_FEE, P_ROUND, P_SINGLE, P_PART, P_RULE };
static const colspec plan_cols[] = {
    {"plan", 1}, {"monthly_fee", 0}, {"rounding", 0},
    {"sms_single_chars", 0}, {"sms_part_chars", 0}, {"band_rule", 0},
};

static cdr_err sms_chars_cell(ld *L, uint32_t line, const char *col, cdr_str s, int32_t *out)
{
    int64_t v;
    if (s.n == 0) {
        *out = 70;
        return CDR_OK;
    }
    if (parse_uint(s, 1000000, &v) != 0 || v <= 0)
        return fail(L, line, "%s '%.*s' must be a whole number from 1 to 1000000", col, V(s));
    *out = (int32_t)v;
    return CDR_OK;
}

static cdr_err plan_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_plan p;
    cdr_err e;
    memset(&p, 0, sizeof p);
    p.line = line;
    if ((e = check_name(L, line, "plan", c[P_PLAN])) != CDR_OK)
        return e;
    p.monthly_fee = 0;
    if (c[P_FEE].n && (e = money_cell(L, line, "monthly_fee", c[P_FEE], &p.monthly_fee)))
        return e;
    if (p.monthly_fee < 0)
        return fail(L, line, "negative monthly_fee %.*s", V(c[P_FEE]));
    p.rounding = 10000;
    if (c[P_ROUND].n && (e = money_cell(L, line, "rounding", c[P_ROUND], &p.rounding)))
        return e;
    if (p.rounding <= 0)
        return fail(L, line, "rounding %.*s must be positive", V(c[P_ROUND]));
    if (CDR_MICRO % p.rounding != 0 && p.rounding % CDR_MICRO != 0)
        return fail(L, line,
                    "rounding %.*s must divide 1 yuan (0.01, 0.05, 0.1, ...) or be whole yuan",
                    V(c[P_ROUND]));
    if ((e = sms_chars_cell(L, line, "sms_single_chars", c[P_SINGLE], &p.sms_single_chars)))
        return e;
    if ((e = sms_chars_cell(L, line, "sms_part_chars", c[P_PART], &p.sms_part_chars)))
        return e;
    if (c[P_RULE].n == 0 || csvt_eq(c[P_RULE], "start"))
        p.band_rule = CDR_BAND_START;
    else if (csvt_eq(c[P_RULE], "split"))
        p.band_rule = CDR_BAND_SPLIT;
    else
        return fail(L, line, "bad band_rule '%.*s' (start or split)", V(c[P_RULE]));
    if (t->n_plans >= INT16_MAX)
        return fail(L, line, "too many plans (at most %d)", INT16_MAX - 1);
    if (!(p.name = dupstr(L, c[P_PLAN])))
        return nomem(L);
    int created;
    cdr_sh_ent *he = cdr_sh_put(&L->ix->plans, 0, p.name, c[P_PLAN].n, &created);
    if (!he)
        return nomem(L);
    if (!created)
        return fail(L, line, "duplicate plan '%s' (first at line %u)", p.name,
                    (unsigned)t->plans[he->a].line);
    size_t cap = t->n_plans; /* plans grow one by one: small table */
    cdr_plan *np = realloc(t->plans, (cap + 1) * sizeof *np);
    if (!np)
        return nomem(L);
    t->plans = np;
    he->a = (int32_t)t->n_plans;
    t->plans[t->n_plans++] = p;
    return CDR_OK;
}

/* ----------------------------------------------------------------- bands */
enum { B_BAND, B_DAYS, B_FROM, B_TO };
static const colspec band_cols[] = {{"band", 1}, {"days", 0}, {"from", 1}, {"to", 1}};

static cdr_err band_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_band_row b;
    cdr_err e;
    b.line = line;
    if ((e = check_name(L, line, "band", c[B_BAND])) != CDR_OK)
        return e;
    if (is_star(c[B_BAND]))
        return fail(L, line, "band '*' is reserved (it means any band in rates.csv)");
    if (c[B_DAYS].n == 0 || csvt_eq(c[B_DAYS], "all"))
        b.days = CDR_DAYS_ALL;
    else if (csvt_eq(c[B_DAYS], "weekday"))
        b.days = CDR_DAYS_WEEKDAY;
    else if (csvt_eq(c[B_DAYS], "weekend"))
        b.days = CDR_DAYS_WEEKEND;
    else
        return fail(L, line, "bad days '%.*s' (all, weekday or weekend)", V(c[B_DAYS]));
    if (cdr_hhmm_parse(c[B_FROM].p, c[B_FROM].n, &b.from) != CDR_OK || b.from >= 86400)
        return fail(L, line, "bad from '%.*s' (HH:MM, 00:00 to 23:59)", V(c[B_FROM]));
    if (cdr_hhmm_parse(c[B_TO].p, c[B_TO].n, &b.to) != CDR_OK)
        return fail(L, line, "bad to '%.*s' (HH:MM, 00:00 to 24:00)", V(c[B_TO]));
    if (b.from == b.to)
        return fail(L, line, "from equals to (%.*s): a band must cover a time span",
                    V(c[B_FROM]));
    b.band = find_name(t->band_names, t->n_band_names, c[B_BAND]);
    if (b.band < 0) {
        if (t->n_band_names >= INT16_MAX)
            return fail(L, line, "too many bands");
        if (GROW(L, t->band_names, t->n_band_names, cap_band_names))
            return nomem(L);
        if (!(t->band_names[t->n_band_names] = dupstr(L, c[B_BAND])))
            return nomem(L);
        b.band = (int32_t)t->n_band_names++;
    }
    if (GROW(L, t->bands, t->n_bands, cap_bands))
        return nomem(L);
    t->bands[t->n_bands++] = b;
    return CDR_OK;
}

static void fmt_min(int m, char *buf)
{
    int h = m / 60 % 100, mi = m % 60;
    buf[0] = (char)('0' + h / 10);
    buf[1] = (char)('0' + h % 10);
    buf[2] = ':';
    buf[3] = (char)('0' + mi / 10);
    buf[4] = (char)('0' + mi % 10);
    buf[5] = '\0';
}

static const char *const daytype_names[2] = {"weekday", "weekend"};

/* Every minute of a weekday and of a weekend day must be covered by exactly
 * one band row. A row applies to its day type(s); a wrapping row covers
 * from..24:00 and 00:00..to of the SAME day type. */
static cdr_err build_bands(ld *L)
{
    cdr_tariff *t = L->t;
    cdr_tariff_index *ix = L->ix;
    int32_t owner[CDR_MINUTES];
    L->file = table_names[CDR_T_BANDS];
    ix->have_bands = t->n_bands > 0;
    if (!ix->have_bands)
        return CDR_OK;
    for (int dt = 0; dt < 2; dt++) {
        for (int m = 0; m < CDR_MINUTES; m++)
            owner[m] = -1;
        for (size_t r = 0; r < t->n_bands; r++) {
            const cdr_band_row *b = &t->bands[r];
            if (b->days != CDR_DAYS_ALL && (int)b->days != dt + 1)
                continue;
            int from = b->from / 60, to = b->to / 60;
            int spans[2][2];
            int ns = 0;
            if (to > from) {
                spans[ns][0] = from;
                spans[ns++][1] = to;
            } else {
                spans[ns][0] = from;
                spans[ns++][1] = CDR_MINUTES;
                spans[ns][0] = 0;
                spans[ns++][1] = to;
            }
            for (int s = 0; s < ns; s++)
                for (int m = spans[s][0]; m < spans[s][1]; m++) {
                    if (owner[m] >= 0) {
                        const cdr_band_row *o = &t->bands[owner[m]];
                        char at[8];
                        fmt_min(m, at);
                        return fail(L, b->line,
                                    "band '%s' overlaps band '%s' (line %u) on %ss at %s",
                                    t->band_names[b->band], t->band_names[o->band],
                                    (unsigned)o->line, daytype_names[dt], at);
                    }
                    owner[m] = (int32_t)r;
                }
        }
        for (int m = 0; m < CDR_MINUTES; m++) {
            if (owner[m] >= 0)
                continue;
            int end = m;
            while (end < CDR_MINUTES && owner[end] < 0)
                end++;
            /* Name the row that ends where the gap starts, else the last row. */
            uint32_t line = t->bands[t->n_bands - 1].line;
            for (size_t r = 0; r < t->n_bands; r++)
                if (t->bands[r].to / 60 % CDR_MINUTES == m &&
                    (t->bands[r].days == CDR_DAYS_ALL || (int)t->bands[r].days == dt + 1))
                    line = t->bands[r].line;
            char a[8], b[8];
            fmt_min(m, a);
            fmt_min(end, b);
            return fail(L, line,
                        "bands leave a gap on %ss from %s to %s (every minute of weekdays and "
                        "weekends needs exactly one band)",
                        daytype_names[dt], a, end == CDR_MINUTES ? "24:00" : b);
        }
        for (int m = 0; m < CDR_MINUTES; m++)
            ix->band_min[dt][m] = (int16_t)t->bands[owner[m]].band;
        int16_t next = CDR_MINUTES;
        for (int m = CDR_MINUTES - 1; m >= 0; m--) {
            ix->next_diff[dt][m] = next;
            if (m > 0 && ix->band_min[dt][m - 1] != ix->band_min[dt][m])
                next = (int16_t)m;
        }
    }
    return CDR_OK;
}

/* --------------------------------------------------------------- bundles */
enum { U_PLAN, U_POOL, U_ALLOW, U_UNIT };
static const colspec bundle_cols[] = {
    {"plan", 1}, {"pool", 1}, {"allowance", 1}, {"unit", 1}};
static const char *const allow_unit_names[3] = {"min", "seg", "MB"};

static cdr_err bundle_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_bundle b;
    cdr_err e;
    b.line = line;
    if ((e = plan_cell(L, line, c[U_PLAN], &b.plan)) != CDR_OK)
        return e;
    if ((e = check_name(L, line, "pool", c[U_POOL])) != CDR_OK)
        return e;
    if (c[U_ALLOW].n && c[U_ALLOW].p[0] == '-')
        return fail(L, line, "negative allowance %.*s", V(c[U_ALLOW]));
    int pe = parse_uint(c[U_ALLOW], 1000000000000LL, &b.allowance);
    if (pe == -2)
        return fail(L, line, "allowance '%.*s' out of range (at most 1000000000000)",
                    V(c[U_ALLOW]));
    if (pe != 0)
        return fail(L, line, "bad allowance '%.*s' (a whole number >= 0)", V(c[U_ALLOW]));
    int u = -1;
    for (int k = 0; k < 3; k++)
        if (csvt_eq(c[U_UNIT], allow_unit_names[k]))
            u = k;
    if (u < 0)
        return fail(L, line, "unknown bundle unit '%.*s' (min, seg or MB)", V(c[U_UNIT]));
    b.unit = (cdr_allow_unit)u;
    b.allowance_base = b.unit == CDR_ALLOW_MIN  ? b.allowance * 60
                       : b.unit == CDR_ALLOW_MB ? b.allowance * 1024
                                                : b.allowance;
    b.pool = find_name(t->pool_names, t->n_pool_names, c[U_POOL]);
    if (b.pool < 0) {
        if (GROW(L, t->pool_names, t->n_pool_names, cap_pool_names))
            return nomem(L);
        if (!(t->pool_names[t->n_pool_names] = dupstr(L, c[U_POOL])))
            return nomem(L);
        b.pool = (int32_t)t->n_pool_names++;
    }
    for (size_t i = 0; i < t->n_bundles; i++)
        if (t->bundles[i].plan == b.plan && t->bundles[i].pool == b.pool)
            return fail(L, line, "duplicate bundle for plan '%s' pool '%s' (first at line %u)",
                        t->plans[b.plan].name, t->pool_names[b.pool],
                        (unsigned)t->bundles[i].line);
    if (GROW(L, t->bundles, t->n_bundles, cap_bundles))
        return nomem(L);
    t->bundles[t->n_bundles++] = b;
    return CDR_OK;
}

static cdr_err build_bundles(ld *L)
{
    cdr_tariff *t = L->t;
    size_t n = t->n_plans * (t->n_pool_names ? t->n_pool_names : 1);
    L->ix->bundle = malloc(n * sizeof(int32_t));
    if (!L->ix->bundle)
        return nomem(L);
    for (size_t i = 0; i < n; i++)
        L->ix->bundle[i] = -1;
    for (size_t i = 0; i < t->n_bundles; i++)
        L->ix->bundle[(size_t)t->bundles[i].plan * t->n_pool_names + (size_t)t->bundles[i].pool] =
            (int32_t)i;
    return CDR_OK;
}

/* ----------------------------------------------------------------- rates */
enum { R_PLAN, R_SVC, R_DIR, R_PREFIX, R_BAND, R_PRICE, R_UNIT, R_INC, R_POOL };
static const colspec rate_cols[] = {
    {"plan", 1},  {"service", 1}, {"direction", 0}, {"prefix", 0},   {"band", 0},
    {"price", 1}, {"unit", 0},    {"increment", 0}, {"pool", 0},
};

static cdr_err prefix_cell(ld *L, uint32_t line, cdr_str s, int digits_only, const char *what)
{
    if (s.n > CDR_PREFIX_MAX)
        return fail(L, line, "%s '%.*s...' is longer than %d", what, V(s), CDR_PREFIX_MAX);
    if (digits_only && !is_digits(s))
        return fail(L, line, "bad %s '%.*s' (digits, or * for any)", what, V(s));
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return fail(L, line, "%s contains a control character", what);
    return CDR_OK;
}

static cdr_err count_cell(ld *L, uint32_t line, const char *col, cdr_str s, int64_t *out)
{
    if (s.n == 0) {
        *out = 1;
        return CDR_OK;
    }
    int pe = parse_uint(s, 1000000000000LL, out);
    if (pe == -2)
        return fail(L, line, "%s '%.*s' out of range (at most 1000000000000)", col, V(s));
    if (pe != 0 || *out <= 0)
        return fail(L, line, "%s '%.*s' must be a whole number > 0", col, V(s));
    return CDR_OK;
}

static cdr_err rate_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_rate r;
    cdr_err e;
    r.line = line;
    if ((e = plan_cell(L, line, c[R_PLAN], &r.plan)) != CDR_OK)
        return e;
    if ((e = service_cell(L, line, c[R_SVC], &r.service)) != CDR_OK)
        return e;
    if (cdr_direction_parse(c[R_DIR].p, c[R_DIR].n, &r.direction) != CDR_OK)
        return fail(L, line, "unknown direction '%.*s' (mo or mt)", V(c[R_DIR]));
    cdr_str pre = c[R_PREFIX];
    if (is_star(pre))
        pre.n = 0;
    int digits = r.service == CDR_SVC_VOICE || r.service == CDR_SVC_SMS;
    if ((e = prefix_cell(L, line, pre, digits, "prefix")) != CDR_OK)
        return e;
    if (!(r.prefix = dupstr(L, pre)))
        return nomem(L);
    r.band = -1;
    if (c[R_BAND].n && !is_star(c[R_BAND])) {
        r.band = find_name(t->band_names, t->n_band_names, c[R_BAND]);
        if (r.band < 0)
            return fail(L, line, "band '%.*s' is not in bands.csv", V(c[R_BAND]));
    }
    if (c[R_PRICE].n == 0)
        return fail(L, line, "price is empty");
    if ((e = money_cell(L, line, "price", c[R_PRICE], &r.price)) != CDR_OK)
        return e;
    if (r.price < 0)
        return fail(L, line, "negative price %.*s", V(c[R_PRICE]));
    if ((e = count_cell(L, line, "unit", c[R_UNIT], &r.unit)) != CDR_OK)
        return e;
    if ((e = count_cell(L, line, "increment", c[R_INC], &r.increment)) != CDR_OK)
        return e;
    if ((r.service == CDR_SVC_SMS || r.service == CDR_SVC_VAS) &&
        (r.unit != 1 || r.increment != 1))
        return fail(L, line, "%s is priced per %s: unit and increment must be 1 (or empty)",
                    cdr_service_name(r.service),
                    r.service == CDR_SVC_SMS ? "segment" : "record");
    r.pool = -1;
    if (c[R_POOL].n) {
        if (r.service == CDR_SVC_VAS)
            return fail(L, line, "vas usage cannot draw from a bundle pool");
        r.pool = find_name(t->pool_names, t->n_pool_names, c[R_POOL]);
        const cdr_bundle *b = cdr_tariff_bundle(t, r.plan, r.pool);
        if (!b)
            return fail(L, line, "pool '%.*s' has no bundles.csv row for plan '%s'",
                        V(c[R_POOL]), t->plans[r.plan].name);
        cdr_allow_unit want = r.service == CDR_SVC_VOICE ? CDR_ALLOW_MIN
                              : r.service == CDR_SVC_SMS ? CDR_ALLOW_SEG
                                                         : CDR_ALLOW_MB;
        if (b->unit != want)
            return fail(L, line,
                        "%s usage draws from pool '%s', whose allowance is in %s "
                        "(bundles.csv:%u); %s needs %s",
                        cdr_service_name(r.service), t->pool_names[r.pool],
                        allow_unit_names[b->unit], (unsigned)b->line,
                        cdr_service_name(r.service), allow_unit_names[want]);
    }
    if (t->n_rates >= INT32_MAX - 1)
        return fail(L, line, "too many rates");
    if (GROW(L, t->rates, t->n_rates, cap_rates))
        return nomem(L);
    t->rates[t->n_rates++] = r;
    return CDR_OK;
}

/* Rating must be able to compute every record the reader accepts (common.h,
 * docs/tariff.md "Limits"): for each rate row, the largest billable usage
 * (the reader's usage limit rounded up to the largest increment of the
 * rows of its plan, service and direction - a split call is priced at
 * other bands' rows with the start row's billable units) times price / unit
 * must stay within CDR_MONEY_MAX, and unit within 2^30 (so that usage x
 * price and the discount's fraction stay inside src/tariff/rate.c's 128-bit
 * arithmetic). */
#define RATE_UNIT_MAX (1LL << 30)
static cdr_err check_rate_limits(ld *L)
{
    cdr_tariff *t = L->t;
    size_t ng = t->n_plans * CDR_SVC__COUNT * 2;
    int64_t *inc = calloc(ng ? ng : 1, sizeof *inc);
    if (!inc)
        return nomem(L);
    L->file = table_names[CDR_T_RATES];
#define GROUP(r) (((size_t)(r)->plan * CDR_SVC__COUNT + (size_t)(r)->service) * 2 + (r)->direction)
    for (size_t i = 0; i < t->n_rates; i++)
        if (t->rates[i].increment > inc[GROUP(&t->rates[i])])
            inc[GROUP(&t->rates[i])] = t->rates[i].increment;
    cdr_err e = CDR_OK;
    for (size_t i = 0; i < t->n_rates && e == CDR_OK; i++) {
        const cdr_rate *r = &t->rates[i];
        const cdr_plan *pl = &t->plans[r->plan];
        int64_t g = inc[GROUP(r)], usage, most;
        const char *what;
        switch (r->service) {
        case CDR_SVC_VOICE:
            usage = CDR_DURATION_MAX;
            what = "the longest call the reader accepts (10^9 s) is billed as %lld seconds";
            break;
        case CDR_SVC_DATA:
            usage = (CDR_BYTES_MAX + 1023) / 1024;
            what = "the largest session the reader accepts (10^15 bytes) is billed as %lld KB";
            break;
        case CDR_SVC_SMS:
            usage = cdr_sms_segments(CDR_SMS_CHARS_MAX, pl->sms_single_chars, pl->sms_part_chars);
            what = "the longest SMS the reader accepts (10^9 characters) is %lld segments";
            break;
        default:
            usage = 1;
            what = "one record is %lld unit";
            break;
        }
        most = (usage + g - 1) / g * g;
        if (r->unit > RATE_UNIT_MAX) {
            e = fail(L, r->line, "unit %lld is above %lld (2^30): rating cannot compute it",
                     (long long)r->unit, (long long)RATE_UNIT_MAX);
        } else if ((__int128)most * r->price > (__int128)CDR_MONEY_MAX * r->unit) {
            char pr[32], ws[160];
            cdr_money_format(r->price, 2, pr);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(ws, sizeof ws, what, (long long)most);
#pragma GCC diagnostic pop
            e = fail(L, r->line,
                     "price %s per %lld is too large: %s, which would cost more than "
                     "1000000000000 yuan (the limit of one record's charge): rating cannot "
                     "compute it", pr, (long long)r->unit, ws);
        }
    }
#undef GROUP
    free(inc);
    return e;
}

static cdr_err build_rates(ld *L)
{
    cdr_tariff *t = L->t;
    cdr_tariff_index *ix = L->ix;
    L->file = table_names[CDR_T_RATES];
    ix->n_buckets = t->n_plans * CDR_SVC__COUNT * 2;
    ix->rate_lens = calloc(ix->n_buckets ? ix->n_buckets : 1, sizeof *ix->rate_lens);
    ix->rate_next = malloc((t->n_rates ? t->n_rates : 1) * sizeof *ix->rate_next);
    if (!ix->rate_lens || !ix->rate_next)
        return nomem(L);
    for (size_t i = 0; i < t->n_rates; i++) {
        cdr_rate *r = &t->rates[i];
        uint32_t bucket =
            ((uint32_t)r->plan * CDR_SVC__COUNT + (uint32_t)r->service) * 2 + r->direction;
        size_t plen = strlen(r->prefix);
        int created;
        cdr_sh_ent *e = cdr_sh_put(&ix->prefixes, bucket, r->prefix, plen, &created);
        if (!e)
            return nomem(L);
        ix->rate_lens[bucket] |= 1ULL << plen;
        cdr_pf_add(&ix->rate_pf, r->prefix, plen);
        ix->rate_next[i] = -1;
        /* Duplicate key? */
        for (int32_t j = e->a; j >= 0; j = ix->rate_next[j])
            if (t->rates[j].band == r->band)
                return fail(L, r->line,
                            "duplicate rate: plan '%s' %s %s prefix '%s' band '%s' is already "
                            "at line %u",
                            t->plans[r->plan].name, cdr_service_name(r->service),
                            cdr_direction_name(r->direction), plen ? r->prefix : "*",
                            r->band < 0 ? "*" : t->band_names[r->band],
                            (unsigned)t->rates[j].line);
        if (r->band >= 0 || e->a < 0) {
            ix->rate_next[i] = e->a; /* exact bands in front */
            e->a = (int32_t)i;
        } else {
            int32_t j = e->a; /* '*' at the tail */
            while (ix->rate_next[j] >= 0)
                j = ix->rate_next[j];
            ix->rate_next[j] = (int32_t)i;
        }
    }
    ix->rate_star = malloc((ix->n_buckets ? ix->n_buckets : 1) * sizeof *ix->rate_star);
    if (!ix->rate_star)
        return nomem(L);
    for (size_t b = 0; b < ix->n_buckets; b++) {
        const cdr_sh_ent *e = cdr_sh_get(&ix->prefixes, (uint32_t)b, "", 0);
        ix->rate_star[b] = e ? e->a : -1;
    }
    return CDR_OK;
}

/* ------------------------------------------------------------- discounts */
enum { D_PLAN, D_SVC, D_PCT };
static const colspec discount_cols[] = {{"plan", 1}, {"service", 1}, {"percent", 1}};

static cdr_err discount_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_discount d;
    cdr_err e;
    d.line = line;
    if ((e = plan_cell(L, line, c[D_PLAN], &d.plan)) != CDR_OK)
        return e;
    if ((e = service_cell(L, line, c[D_SVC], &d.service)) != CDR_OK)
        return e;
    if (cdr_money_parse(c[D_PCT].p, c[D_PCT].n, &d.percent_micro) != CDR_OK)
        return fail(L, line, "bad percent '%.*s' (a decimal such as 20 or 12.5)", V(c[D_PCT]));
    if (d.percent_micro <= 0 || d.percent_micro > 100 * CDR_MICRO)
        return fail(L, line, "percent %.*s must be > 0 and <= 100", V(c[D_PCT]));
    int32_t *slot = &L->ix->discount[(size_t)d.plan * CDR_SVC__COUNT + d.service];
    if (*slot >= 0)
        return fail(L, line, "duplicate discount for plan '%s' %s (first at line %u)",
                    t->plans[d.plan].name, cdr_service_name(d.service),
                    (unsigned)t->discounts[*slot].line);
    if (GROW(L, t->discounts, t->n_discounts, cap_discounts))
        return nomem(L);
    *slot = (int32_t)t->n_discounts;
    t->discounts[t->n_discounts++] = d;
    return CDR_OK;
}

/* ---------------------------------------------------------- free numbers */
enum { F_PREFIX, F_LABEL };
static const colspec free_cols[] = {{"prefix", 1}, {"label", 0}};

static cdr_err free_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_tariff_index *ix = L->ix;
    cdr_free_number f;
    cdr_err e;
    f.line = line;
    if (c[F_PREFIX].n == 0 || is_star(c[F_PREFIX]))
        return fail(L, line, "bad prefix '%.*s' (digits; '*' would make every call free)",
                    V(c[F_PREFIX]));
    if ((e = prefix_cell(L, line, c[F_PREFIX], 1, "prefix")) != CDR_OK)
        return e;
    if (!(f.prefix = dupstr(L, c[F_PREFIX])) || !(f.label = dupstr(L, c[F_LABEL])))
        return nomem(L);
    int created;
    cdr_sh_ent *he =
        cdr_sh_put(&ix->prefixes, (uint32_t)ix->n_buckets, f.prefix, c[F_PREFIX].n, &created);
    if (!he)
        return nomem(L);
    if (!created)
        return fail(L, line, "duplicate free-number prefix '%s' (first at line %u)", f.prefix,
                    (unsigned)t->free_numbers[he->a].line);
    if (GROW(L, t->free_numbers, t->n_free_numbers, cap_free))
        return nomem(L);
    he->a = (int32_t)t->n_free_numbers;
    ix->free_lens |= 1ULL << c[F_PREFIX].n;
    cdr_pf_add(&ix->free_pf, f.prefix, c[F_PREFIX].n);
    t->free_numbers[t->n_free_numbers++] = f;
    return CDR_OK;
}

/* ----------------------------------------------------------- subscribers */
enum { S_MSISDN, S_PLAN, S_FROM, S_TO, S_VIP, S_JOIN };
static const colspec sub_cols[] = {{"msisdn", 1},   {"plan", 1}, {"valid_from", 1},
                                   {"valid_to", 0}, {"vip", 0},  {"join_date", 0}};

static cdr_err sub_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_subscriber s;
    cdr_str num;
    cdr_err e;
    s.line = line;
    if ((e = number_cell(L, line, c[S_MSISDN], &num)) != CDR_OK)
        return e;
    if ((e = plan_cell(L, line, c[S_PLAN], &s.plan)) != CDR_OK)
        return e;
    if ((e = range_cells(L, line, c[S_FROM], c[S_TO], &s.valid_from, &s.valid_to)) != CDR_OK)
        return e;
    if (parse_bool(c[S_VIP], &s.vip) != 0)
        return fail(L, line, "bad vip '%.*s' (0/1, yes/no, true/false)", V(c[S_VIP]));
    s.join_date = -1;
    if (c[S_JOIN].n && (e = date_cell(L, line, "join_date", c[S_JOIN], &s.join_date)))
        return e;
    if (t->n_subscribers >= INT32_MAX - 1)
        return fail(L, line, "too many subscribers");
    if (!(s.msisdn = dupstr(L, num)))
        return nomem(L);
    if (GROW(L, t->subscribers, t->n_subscribers, cap_subs))
        return nomem(L);
    t->subscribers[t->n_subscribers++] = s;
    return CDR_OK;
}

/* ------------------------------------------------- sorting by number */
/* The subscriber, subscription and refund tables are sorted by number
 * (then service code), then date and line, to group each number's rows.
 * Comparing through the rows' string pointers was most of that sort
 * (strcmp on scattered strings; perf: about a third of the tariff load).
 * Each row gets keys first: a number's digits as nibbles d + 1, its end as
 * 0, so that two keys of digit strings compare as strcmp compares the
 * strings; strcmp decides only when the first 16 digits are equal and a
 * string is longer, or when a string is not all digits. The order is the
 * same total order as before (the line breaks every tie). */
typedef struct skey {
    uint64_t k1, k2;      /* number, code */
    const char *s1, *s2;  /* the strings (s2 NULL: no code) */
    int64_t t;            /* valid_from / date */
    uint32_t line, idx;
    uint8_t x1, x2;       /* 0: the key is the whole string; 1: its first 16
                           * digits; 2: not digits (strcmp) */
} skey;

static uint64_t str_key(const char *s, uint8_t *kind)
{
    uint64_t k = 0;
    int i = 0;
    for (; i < 16 && s[i]; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            *kind = 2;
            return 0;
        }
        k = k << 4 | (d + 1);
    }
    *kind = i == 16 && s[16] ? 1 : 0;
    return i == 0 ? 0 : i == 16 ? k : k << (4 * (16 - i));
}

static int cmp_part(uint64_t a, uint8_t ax, const char *as, uint64_t b, uint8_t bx,
                    const char *bs)
{
    if (ax == 2 || bx == 2 || (a == b && (ax | bx)))
        return strcmp(as, bs);
    return a < b ? -1 : a > b;
}

static int cmp_skey(const void *pa, const void *pb)
{
    const skey *x = pa, *y = pb;
    int c = cmp_part(x->k1, x->x1, x->s1, y->k1, y->x1, y->s1);
    if (!c && x->s2)
        c = cmp_part(x->k2, x->x2, x->s2, y->k2, y->x2, y->s2);
    if (c)
        return c;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Sort n rows of `size` bytes by their keys (k[i] describes row i). */
static int sort_rows(void *rows, size_t n, size_t size, skey *k)
{
    unsigned char *tmp = malloc(n * size);
    if (!tmp)
        return -1;
    qsort(k, n, sizeof *k, cmp_skey);
    for (size_t i = 0; i < n; i++)
        memcpy(tmp + i * size, (unsigned char *)rows + (size_t)k[i].idx * size, size);
    memcpy(rows, tmp, n * size);
    free(tmp);
    return 0;
}

/* A row's key: its number, its code (NULL: the table has none), its time,
 * its line. */
static void key_of(skey *k, const char *msisdn, const char *code, int64_t t, uint32_t line)
{
    k->k1 = str_key(msisdn, &k->x1);
    k->s1 = msisdn;
    k->s2 = code;
    if (code)
        k->k2 = str_key(code, &k->x2);
    k->t = t;
    k->line = line;
}

/* The n rows of `size` bytes of a per-subscriber table (subscribers,
 * subscriptions, refunds) sorted by (number, code, time, line): the order
 * the look-ups bisect. key(row, k) sets all of k but idx. */
static cdr_err sort_table(ld *L, void *rows, size_t n, size_t size,
                          void (*key)(const void *row, skey *k))
{
    if (n < 2)
        return CDR_OK;
    skey *k = n <= SIZE_MAX / sizeof(skey) ? malloc(n * sizeof(skey)) : NULL;
    if (!k)
        return nomem(L);
    for (size_t i = 0; i < n; i++) {
        key((const unsigned char *)rows + i * size, &k[i]);
        k[i].idx = (uint32_t)i;
    }
    int rc = sort_rows(rows, n, size, k);
    free(k);
    return rc ? nomem(L) : CDR_OK;
}

/* Rows first .. end-1, one number's (or number and code's), found by key. */
static cdr_err index_run(ld *L, cdr_shash *h, const char *key, size_t n, size_t first,
                         size_t end)
{
    int created;
    cdr_sh_ent *e = cdr_sh_put(h, 0, key, n, &created);
    if (!e)
        return nomem(L);
    e->a = (int32_t)first;
    e->b = (int32_t)(end - first);
    return CDR_OK;
}

static void subscriber_key(const void *row, skey *k)
{
    const cdr_subscriber *s = row;
    key_of(k, s->msisdn, NULL, s->valid_from, s->line);
}

static cdr_err build_subscribers(ld *L)
{
    cdr_tariff *t = L->t;
    L->file = table_names[CDR_T_SUBSCRIBERS];
    cdr_err rc =
        sort_table(L, t->subscribers, t->n_subscribers, sizeof *t->subscribers, subscriber_key);
    if (rc != CDR_OK)
        return rc;
    for (size_t i = 0; i < t->n_subscribers;) {
        size_t j = i + 1;
        const char *m = t->subscribers[i].msisdn;
        while (j < t->n_subscribers && strcmp(t->subscribers[j].msisdn, m) == 0) {
            const cdr_subscriber *p = &t->subscribers[j - 1], *s = &t->subscribers[j];
            if (s->valid_from < p->valid_to) {
                const cdr_subscriber *later = p->line > s->line ? p : s;
                const cdr_subscriber *other = later == p ? s : p;
                char d[12];
                cdr_date_format(s->valid_from, d);
                return fail(L, later->line,
                            "msisdn %s has overlapping plan periods (with line %u, both in "
                            "force on %s)",
                            m, (unsigned)other->line, d);
            }
            j++;
        }
        if ((rc = index_run(L, &L->ix->subscribers, m, strlen(m), i, j)) != CDR_OK)
            return rc;
        i = j;
    }
    return CDR_OK;
}

/* --------------------------------------------------------- subscriptions */
enum { C_MSISDN, C_CODE, C_FROM, C_TO };
static const colspec sscr_cols[] = {
    {"msisdn", 1}, {"service_code", 1}, {"valid_from", 1}, {"valid_to", 0}};

static cdr_err sscr_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_subscription s;
    cdr_str num;
    cdr_err e;
    s.line = line;
    if ((e = number_cell(L, line, c[C_MSISDN], &num)) != CDR_OK)
        return e;
    if ((e = check_name(L, line, "service_code", c[C_CODE])) != CDR_OK)
        return e;
    if ((e = range_cells(L, line, c[C_FROM], c[C_TO], &s.valid_from, &s.valid_to)) != CDR_OK)
        return e;
    /* Stored as "msisdn|code" (the hash key), then split. */
    char key[CDR_NUMBER_MAX + 1 + CDR_NAME_MAX + 1];
    memcpy(key, num.p, num.n);
    key[num.n] = '|';
    memcpy(key + num.n + 1, c[C_CODE].p, c[C_CODE].n);
    char *k = cdr_arena_strdup(&L->ix->arena, key, num.n + 1 + c[C_CODE].n);
    if (!k)
        return nomem(L);
    if (!(s.msisdn = dupstr(L, num)))
        return nomem(L);
    s.service_code = k + num.n + 1;
    if (t->n_subscriptions >= INT32_MAX - 1)
        return fail(L, line, "too many subscriptions");
    if (GROW(L, t->subscriptions, t->n_subscriptions, cap_sscr))
        return nomem(L);
    t->subscriptions[t->n_subscriptions++] = s;
    return CDR_OK;
}

static void subscription_key(const void *row, skey *k)
{
    const cdr_subscription *s = row;
    key_of(k, s->msisdn, s->service_code, s->valid_from, s->line);
}

static cdr_err build_subscriptions(ld *L)
{
    cdr_tariff *t = L->t;
    L->file = table_names[CDR_T_SUBSCRIPTIONS];
    cdr_err rc = sort_table(L, t->subscriptions, t->n_subscriptions, sizeof *t->subscriptions,
                            subscription_key);
    if (rc != CDR_OK)
        return rc;
    for (size_t i = 0; i < t->n_subscriptions;) {
        const cdr_subscription *s = &t->subscriptions[i];
        size_t j = i + 1;
        while (j < t->n_subscriptions && strcmp(t->subscriptions[j].msisdn, s->msisdn) == 0 &&
               strcmp(t->subscriptions[j].service_code, s->service_code) == 0)
            j++;
        /* The key "msisdn|code" sits just before service_code in the arena. */
        size_t mn = strlen(s->msisdn);
        const char *key = s->service_code - mn - 1;
        rc = index_run(L, &L->ix->subscriptions, key, mn + 1 + strlen(s->service_code), i, j);
        if (rc != CDR_OK)
            return rc;
        i = j;
    }
    return CDR_OK;
}

/* --------------------------------------------------------------- refunds */
enum { F2_MSISDN, F2_DATE, F2_AMOUNT, F2_COMPANY, F2_BORDER };
static const colspec refund_cols[] = {{"msisdn", 1},
                                      {"date", 1},
                                      {"amount", 1},
                                      {"company_liable", 0},
                                      {"border_roaming", 0}};

static cdr_err refund_row(ld *L, const cdr_str *c, uint32_t line)
{
    cdr_tariff *t = L->t;
    cdr_prior_refund r;
    cdr_str num;
    cdr_err e;
    r.line = line;
    if ((e = number_cell(L, line, c[F2_MSISDN], &num)) != CDR_OK)
        return e;
    if ((e = date_cell(L, line, "date", c[F2_DATE], &r.date)) != CDR_OK)
        return e;
    if (c[F2_AMOUNT].n == 0)
        return fail(L, line, "amount is empty");
    if ((e = money_cell(L, line, "amount", c[F2_AMOUNT], &r.amount)) != CDR_OK)
        return e;
    if (r.amount < 0)
        return fail(L, line, "negative amount %.*s", V(c[F2_AMOUNT]));
    if (parse_bool(c[F2_COMPANY], &r.company_liable) != 0)
        return fail(L, line, "bad company_liable '%.*s' (0/1, yes/no, true/false)",
                    V(c[F2_COMPANY]));
    if (parse_bool(c[F2_BORDER], &r.border_roaming) != 0)
        return fail(L, line, "bad border_roaming '%.*s' (0/1, yes/no, true/false)",
                    V(c[F2_BORDER]));
    if (!(r.msisdn = dupstr(L, num)))
        return nomem(L);
    if (t->n_refunds >= INT32_MAX - 1)
        return fail(L, line, "too many refunds");
    if (GROW(L, t->refunds, t->n_refunds, cap_refunds))
        return nomem(L);
    t->refunds[t->n_refunds++] = r;
    return CDR_OK;
}

static void refund_key(const void *row, skey *k)
{
    const cdr_prior_refund *r = row;
    key_of(k, r->msisdn, NULL, r->date, r->line);
}

static cdr_err build_refunds(ld *L)
{
    cdr_tariff *t = L->t;
    L->file = table_names[CDR_T_REFUNDS];
    cdr_err rc = sort_table(L, t->refunds, t->n_refunds, sizeof *t->refunds, refund_key);
    if (rc != CDR_OK)
        return rc;
    for (size_t i = 0; i < t->n_refunds;) {
        size_t j = i + 1;
        while (j < t->n_refunds && strcmp(t->refunds[j].msisdn, t->refunds[i].msisdn) == 0)
            j++;
        const char *m = t->refunds[i].msisdn;
        if ((rc = index_run(L, &L->ix->refunds, m, strlen(m), i, j)) != CDR_OK)
            return rc;
        i = j;
    }
    return CDR_OK;
}

/* ------------------------------------------------------------ load, free */
#define NCOLS(a) (int)(sizeof(a) / sizeof *(a))

/* The names' lengths, for the row writer (tariff_int.h). */
static size_t *lengths(char *const *names, size_t n)
{
    size_t *l = malloc((n ? n : 1) * sizeof *l);
    if (l)
        for (size_t i = 0; i < n; i++)
            l[i] = strlen(names[i]);
    return l;
}

int cdr_tariff_index_names(const cdr_tariff *t, cdr_tariff_index *ix)
{
    if (!(ix->band_len = lengths(t->band_names, t->n_band_names)) ||
        !(ix->pool_len = lengths(t->pool_names, t->n_pool_names)) ||
        !(ix->plan_len = malloc((t->n_plans ? t->n_plans : 1) * sizeof(size_t))))
        return -1;
    for (size_t i = 0; i < t->n_plans; i++)
        ix->plan_len[i] = strlen(t->plans[i].name);
    /* and as the row writer's cells: one buffer for all of them */
    size_t total = 0, nn = t->n_plans + t->n_band_names + t->n_pool_names;
    for (size_t i = 0; i < t->n_plans; i++)
        total += CDR_CSV_CELL_MAX(ix->plan_len[i]);
    for (size_t i = 0; i < t->n_band_names; i++)
        total += CDR_CSV_CELL_MAX(ix->band_len[i] < 255 ? ix->band_len[i] : 255);
    for (size_t i = 0; i < t->n_pool_names; i++)
        total += CDR_CSV_CELL_MAX(ix->pool_len[i]);
    cdr_name_cell *cells = malloc((nn ? nn : 1) * sizeof *cells);
    char *text = malloc(total ? total : 1);
    if (!cells || !text) {
        free(cells);
        free(text);
        return -1;
    }
    ix->plan_cell = cells;
    ix->band_cell = cells + t->n_plans;
    ix->pool_cell = ix->band_cell + t->n_band_names;
    ix->cell_text = text;
    char *d = text;
    for (size_t i = 0; i < nn; i++) {
        const char *nm;
        size_t n;
        if (i < t->n_plans) {
            nm = t->plans[i].name;
            n = ix->plan_len[i];
        } else if (i < t->n_plans + t->n_band_names) {
            nm = t->band_names[i - t->n_plans];
            n = ix->band_len[i - t->n_plans];
            n = n < 255 ? n : 255; /* the band column keeps 255 bytes */
        } else {
            nm = t->pool_names[i - t->n_plans - t->n_band_names];
            n = ix->pool_len[i - t->n_plans - t->n_band_names];
        }
        char *e = cdr_csv_put_cell(d, nm, n, 1);
        cells[i] = (cdr_name_cell){d, (size_t)(e - d)};
        d = e;
    }
    return 0;
}

void cdr_tariff_index_names_free(cdr_tariff_index *ix)
{
    free(ix->plan_len);
    free(ix->band_len);
    free(ix->pool_len);
    free(ix->plan_cell);
    free(ix->cell_text);
    ix->plan_len = ix->band_len = ix->pool_len = NULL;
    ix->plan_cell = ix->band_cell = ix->pool_cell = NULL;
    ix->cell_text = NULL;
}

static cdr_err name_lengths(ld *L)
{
    return cdr_tariff_index_names(L->t, L->ix) ? nomem(L) : CDR_OK;
}

static cdr_err load_all(ld *L)
{
    cdr_tariff *t = L->t;
    cdr_err e;
    if ((e = load_table(L, CDR_T_PLANS, 1, plan_cols, NCOLS(plan_cols), plan_row)))
        return e;
    if (t->n_plans == 0) {
        snprintf(L->err, L->errlen, "plans.csv:1: no plans");
        return CDR_E_TARIFF;
    }
    if ((e = load_table(L, CDR_T_BANDS, 0, band_cols, NCOLS(band_cols), band_row)))
        return e;
    if ((e = build_bands(L)))
        return e;
    if ((e = load_table(L, CDR_T_BUNDLES, 0, bundle_cols, NCOLS(bundle_cols), bundle_row)))
        return e;
    if ((e = build_bundles(L)))
        return e;
    if ((e = load_table(L, CDR_T_RATES, 1, rate_cols, NCOLS(rate_cols), rate_row)))
        return e;
    if ((e = build_rates(L)))
        return e;
    if ((e = check_rate_limits(L)))
        return e;
    L->ix->discount = malloc(t->n_plans * CDR_SVC__COUNT * sizeof(int32_t));
    if (!L->ix->discount)
        return nomem(L);
    for (size_t i = 0; i < t->n_plans * CDR_SVC__COUNT; i++)
        L->ix->discount[i] = -1;
    if ((e = load_table(L, CDR_T_DISCOUNTS, 0, discount_cols, NCOLS(discount_cols),
                        discount_row)))
        return e;
    if ((e = load_table(L, CDR_T_FREE, 0, free_cols, NCOLS(free_cols), free_row)))
        return e;
    if ((e = load_table(L, CDR_T_SUBSCRIBERS, 1, sub_cols, NCOLS(sub_cols), sub_row)))
        return e;
    if ((e = build_subscribers(L)))
        return e;
    if ((e = load_table(L, CDR_T_SUBSCRIPTIONS, 0, sscr_cols, NCOLS(sscr_cols), sscr_row)))
        return e;
    if ((e = build_subscriptions(L)))
        return e;
    if ((e = load_table(L, CDR_T_REFUNDS, 0, refund_cols, NCOLS(refund_cols), refund_row)))
        return e;
    if ((e = build_refunds(L)))
        return e;
    return name_lengths(L);
}

cdr_err cdr_tariff_load(const char *dir, cdr_tariff **out, char *err, size_t errlen)
{
    char dummy[8];
    struct stat st;
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return CDR_E_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return CDR_E_IO;
    }
    cdr_tariff *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "tariff: out of memory");
        return CDR_E_NOMEM;
    }
    t->ix = calloc(1, sizeof *t->ix);
    t->dir = strdup(dir);
    if (!t->ix || !t->dir) {
        cdr_tariff_free(t);
        snprintf(err, errlen, "tariff: out of memory");
        return CDR_E_NOMEM;
    }
    for (int i = 0; i < CDR_T__COUNT; i++)
        t->files[i].name = table_names[i];
    ld L;
    memset(&L, 0, sizeof L);
    L.t = t;
    L.ix = t->ix;
    L.err = err;
    L.errlen = errlen;
    cdr_err e = load_all(&L);
    if (e == CDR_OK)
        e = scan_unknown(t, err, errlen);
    if (e != CDR_OK) {
        cdr_tariff_free(t);
        return e;
    }
    *out = t;
    return CDR_OK;
}

void cdr_tariff_free(cdr_tariff *t)
{
    if (!t)
        return;
    if (t->ix) {
        cdr_arena_free(&t->ix->arena);
        cdr_sh_free(&t->ix->plans);
        cdr_sh_free(&t->ix->prefixes);
        cdr_sh_free(&t->ix->subscribers);
        cdr_sh_free(&t->ix->subscriptions);
        cdr_sh_free(&t->ix->refunds);
        free(t->ix->rate_next);
        free(t->ix->rate_lens);
        free(t->ix->rate_star);
        cdr_tariff_index_names_free(t->ix);
        free(t->ix->discount);
        free(t->ix->bundle);
        free(t->ix);
    }
    free(t->dir);
    free(t->plans);
    free(t->band_names);
    free(t->bands);
    free(t->pool_names);
    free(t->rates);
    free(t->bundles);
    free(t->discounts);
    free(t->free_numbers);
    free(t->subscribers);
    free(t->subscriptions);
    free(t->refunds);
    for (size_t i = 0; i < t->n_warnings; i++)
        free(t->warnings[i]);
    free(t->warnings);
    free(t);
}

void cdr_tariff_sha256(const cdr_tariff *t, uint8_t out[32])
{
    /* every table's name, presence and SHA-256, in the fixed table order */
    cdr_sha256 h;
    cdr_sha256_init(&h);
    for (int i = 0; i < CDR_T__COUNT; i++) {
        const cdr_tariff_file *f = &t->files[i];
        cdr_sha256_update(&h, f->name, strlen(f->name) + 1);
        unsigned char p = (unsigned char)(f->present != 0);
        cdr_sha256_update(&h, &p, 1);
        if (f->present)
            cdr_sha256_update(&h, f->sha256, 32);
    }
    cdr_sha256_final(&h, out);
}
