/* cdrecon — one number's month as a statement; the canonical record row. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/reader.h"
#include "cdrecon/state.h"
#include "cdrecon/statement.h"
#include "csvout.h"
#include "errmsg.h"
#include "grow.h"
#include "memdupz.h"
#include "swar.h"
#include "tariff_int.h"

/* ------------------------------------------------------------------ */
/* The canonical row                                                    */

enum {
    C_FILE, C_LINE, C_OFFSET, C_RECORD_ID, C_MSISDN, C_MONTH, C_SERVICE, C_DIRECTION, C_PEER,
    C_START, C_AMOUNT, C_USAGE, C_BILLABLE, C_COVERED, C_BILLED, C_REBUILT, C_DIFFERENCE,
    C_STATUS, C_DUP_OF, C_PARTS, C_CALL_ID, C_PARTIAL_SEQ, C_SMS_REF, C_SMS_PART, C_SMS_PARTS,
    C_PLAN, C_RATE_LINE, C_PRICE, C_UNIT, C_INCREMENT, C_BAND, C_POOL, C_POOL_AFTER,
    C_DISCOUNT, C_CATEGORY, C_FLAGS, C_EXPLANATION, C_EXTRA, C__COUNT
};

static const char *const columns[C__COUNT] = {
    "file", "line", "offset", "record_id", "msisdn", "month", "service", "direction", "peer",
    "start_time", "amount", "usage", "billable", "covered", "billed", "rebuilt", "difference",
    "status", "dup_of", "parts", "call_id", "partial_seq", "sms_ref", "sms_part", "sms_parts",
    "plan", "rate_line", "price", "unit", "increment", "band", "pool", "pool_after",
    "discount_percent", "category", "flags", "explanation", "extra",
};

cdr_err cdr_stmt_rec_header(cdr_csvw *w)
{
    for (int i = 0; i < C__COUNT; i++)
        cdr_csvw_textz(w, columns[i]);
    return cdr_csvw_end_row(w);
}

static void opt_i64(cdr_csvw *w, int64_t v)
{
    if (v < 0)
        cdr_csvw_textz(w, "");
    else
        cdr_csvw_i64(w, v);
}

cdr_err cdr_stmt_rec_write(cdr_csvw *w, const cdr_stmt_rec *r)
{
    char buf[64];
    size_t n;
    cdr_csvw_textz(w, r->file);
    cdr_csvw_u64(w, r->line);
    cdr_csvw_u64(w, r->offset);
    cdr_csvw_textz(w, r->record_id);
    cdr_csvw_textz(w, r->msisdn);
    n = cdr_month_format(r->month, buf);
    cdr_csvw_text(w, buf, n);
    cdr_csvw_textz(w, cdr_service_name(r->service));
    cdr_csvw_textz(w, cdr_direction_name(r->direction));
    cdr_csvw_textz(w, r->peer);
    n = cdr_time_format(r->start, buf);
    cdr_csvw_text(w, buf, n);
    cdr_csvw_i64(w, r->amount);
    cdr_csvw_i64(w, r->usage);
    opt_i64(w, r->billable);
    opt_i64(w, r->covered);
    cdr_csvw_money(w, r->billed);
    if (r->has_rebuilt) {
        cdr_csvw_money(w, r->rebuilt);
        cdr_csvw_money(w, r->difference);
    } else {
        cdr_csvw_textz(w, "");
        cdr_csvw_textz(w, "");
    }
    cdr_csvw_textz(w, cdr_rec_status_name(r->status));
    cdr_csvw_textz(w, r->dup_of);
    cdr_csvw_u64(w, r->parts);
    cdr_csvw_textz(w, r->call_id);
    cdr_csvw_i64(w, r->partial_seq);
    cdr_csvw_textz(w, r->sms_ref);
    cdr_csvw_i64(w, r->sms_part);
    cdr_csvw_i64(w, r->sms_parts);
    cdr_csvw_textz(w, r->plan);
    if (r->rate_line) {
        cdr_csvw_u64(w, r->rate_line);
        cdr_csvw_money(w, r->price);
        cdr_csvw_i64(w, r->unit);
        cdr_csvw_i64(w, r->increment);
    } else {
        for (int i = 0; i < 4; i++)
            cdr_csvw_textz(w, "");
    }
    cdr_csvw_textz(w, r->band);
    cdr_csvw_textz(w, r->pool);
    opt_i64(w, r->pool_after);
    if (r->discount_micro > 0) {
        n = cdr_money_format(r->discount_micro, 0, buf);
        cdr_csvw_num(w, buf, n);
    } else {
        cdr_csvw_textz(w, "");
    }
    cdr_csvw_textz(w, r->category);
    cdr_flags_format(r->flags, buf);
    cdr_csvw_textz(w, buf);
    cdr_csvw_textz(w, r->explanation);
    cdr_csvw_textz(w, r->extra);
    return cdr_csvw_end_row(w);
}

void cdr_stmt_rec_clear(cdr_stmt_rec *r)
{
    char **strs[] = {&r->file, &r->record_id, &r->msisdn, &r->peer, &r->dup_of, &r->call_id,
                     &r->sms_ref, &r->plan, &r->band, &r->pool, &r->category, &r->explanation,
                     &r->extra};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

static int parse_u64(const cdr_str *f, uint64_t *out)
{
    uint64_t v = 0;
    if (f->n == 0 || f->n > 19)
        return -1;
    for (size_t i = 0; i < f->n; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(f->p[i] - '0');
    }
    *out = v;
    return 0;
}

/* integer, possibly negative; empty => `dflt` */
static int parse_i64(const cdr_str *f, int64_t dflt, int64_t *out)
{
    if (f->n == 0) {
        *out = dflt;
        return 0;
    }
    int neg = f->p[0] == '-';
    cdr_str g = {f->p + neg, f->n - (size_t)neg};
    uint64_t v;
    if (parse_u64(&g, &v) != 0 || v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int text(const cdr_str *f, char **out)
{
    const char *s = f->p;
    size_t n = f->n;
    cdr_csv_unneutralise(&s, &n);
    *out = cdr_memdupz(s, n);
    return *out ? 0 : -1;
}

static int parse_status(const cdr_str *f, cdr_rec_status *out)
{
    for (int i = 0; i < CDR_RS__COUNT; i++) {
        const char *nm = cdr_rec_status_name((cdr_rec_status)i);
        if (strlen(nm) == f->n && memcmp(nm, f->p, f->n) == 0) {
            *out = (cdr_rec_status)i;
            return 0;
        }
    }
    return -1;
}

static int parse_flags(const cdr_str *f, unsigned *out)
{
    *out = 0;
    size_t i = 0;
    while (i < f->n) {
        size_t j = i;
        while (j < f->n && f->p[j] != ';')
            j++;
        if (j - i == 7 && !memcmp(f->p + i, "overlap", 7))
            *out |= CDR_FLAG_OVERLAP;
        else if (j - i == 8 && !memcmp(f->p + i, "overlong", 8))
            *out |= CDR_FLAG_OVERLONG;
        else
            return -1;
        i = j + 1;
    }
    return 0;
}

cdr_err cdr_stmt_rec_parse(const cdr_str *f, size_t n, cdr_stmt_rec *r)
{
    memset(r, 0, sizeof *r);
    if (n < C__COUNT)
        return CDR_E_PARSE;
    int64_t v;
    int bad = 0;
    bad |= text(&f[C_FILE], &r->file);
    bad |= parse_u64(&f[C_LINE], &r->line);
    bad |= parse_u64(&f[C_OFFSET], &r->offset);
    bad |= text(&f[C_RECORD_ID], &r->record_id);
    bad |= text(&f[C_MSISDN], &r->msisdn);
    bad |= cdr_month_parse(f[C_MONTH].p, f[C_MONTH].n, &r->month) != CDR_OK;
    bad |= cdr_service_parse(f[C_SERVICE].p, f[C_SERVICE].n, &r->service) != CDR_OK;
    bad |= cdr_direction_parse(f[C_DIRECTION].p, f[C_DIRECTION].n, &r->direction) != CDR_OK;
    bad |= text(&f[C_PEER], &r->peer);
    bad |= cdr_time_parse(f[C_START].p, f[C_START].n, &r->start) != CDR_OK;
    bad |= parse_i64(&f[C_AMOUNT], -1, &r->amount);
    bad |= parse_i64(&f[C_USAGE], -1, &r->usage);
    bad |= parse_i64(&f[C_BILLABLE], -1, &r->billable);
    bad |= parse_i64(&f[C_COVERED], -1, &r->covered);
    bad |= cdr_money_parse(f[C_BILLED].p, f[C_BILLED].n, &r->billed) != CDR_OK;
    r->has_rebuilt = f[C_REBUILT].n > 0;
    if (r->has_rebuilt) {
        bad |= cdr_money_parse(f[C_REBUILT].p, f[C_REBUILT].n, &r->rebuilt) != CDR_OK;
        bad |= cdr_money_parse(f[C_DIFFERENCE].p, f[C_DIFFERENCE].n, &r->difference) != CDR_OK;
    }
    bad |= parse_status(&f[C_STATUS], &r->status);
    bad |= text(&f[C_DUP_OF], &r->dup_of);
    bad |= parse_i64(&f[C_PARTS], 1, &v);
    r->parts = (uint32_t)v;
    bad |= text(&f[C_CALL_ID], &r->call_id);
    bad |= parse_i64(&f[C_PARTIAL_SEQ], 0, &r->partial_seq);
    bad |= text(&f[C_SMS_REF], &r->sms_ref);
    bad |= parse_i64(&f[C_SMS_PART], 0, &v);
    r->sms_part = (int32_t)v;
    bad |= parse_i64(&f[C_SMS_PARTS], 0, &v);
    r->sms_parts = (int32_t)v;
    bad |= text(&f[C_PLAN], &r->plan);
    if (f[C_RATE_LINE].n) {
        bad |= parse_i64(&f[C_RATE_LINE], 0, &v);
        r->rate_line = (uint32_t)v;
        bad |= cdr_money_parse(f[C_PRICE].p, f[C_PRICE].n, &r->price) != CDR_OK;
        bad |= parse_i64(&f[C_UNIT], 0, &r->unit);
        bad |= parse_i64(&f[C_INCREMENT], 0, &r->increment);
    }
    bad |= text(&f[C_BAND], &r->band);
    bad |= text(&f[C_POOL], &r->pool);
    bad |= parse_i64(&f[C_POOL_AFTER], -1, &r->pool_after);
    if (f[C_DISCOUNT].n)
        bad |= cdr_money_parse(f[C_DISCOUNT].p, f[C_DISCOUNT].n, &r->discount_micro) != CDR_OK;
    bad |= text(&f[C_CATEGORY], &r->category);
    bad |= parse_flags(&f[C_FLAGS], &r->flags);
    bad |= text(&f[C_EXPLANATION], &r->explanation);
    bad |= text(&f[C_EXTRA], &r->extra);
    if (bad) {
        cdr_stmt_rec_clear(r);
        return CDR_E_PARSE;
    }
    return CDR_OK;
}

/* ------------------------------------------------------------------ */

/* Fill a record whose strings are views copied into `sc` (scratch of
 * `sclen` bytes, NUL-terminated each): no allocation. CDR_E_RANGE if the
 * scratch is too small. */
typedef struct scratch {
    char *p;
    size_t n, cap;
} scratch;

static char *sc_put(scratch *sc, const char *s, size_t n)
{
    if (sc->n + n + 1 > sc->cap)
        return NULL;
    char *d = sc->p + sc->n;
    memcpy(d, s, n);
    d[n] = '\0';
    sc->n += n + 1;
    return d;
}

static char *sc_putz(scratch *sc, const char *s)
{
    return sc_put(sc, s ? s : "", s ? strlen(s) : 0);
}

void cdr_stmt_rec_numbers(const cdr_rated *rr, cdr_stmt_rec *o)
{
    const cdr_row *row = &rr->row;
    const cdr_rate_out *ro = &rr->rating;
    int rated = (rr->status == CDR_RS_RATED || rr->status == CDR_RS_PARTIAL_FIRST) && ro->rate;

    /* field by field: a memset of the struct is a `rep stos` (slow to start,
     * and this runs for every row of `rate`) */
    o->file = o->record_id = o->msisdn = o->peer = o->dup_of = o->call_id = o->sms_ref = NULL;
    o->plan = o->band = o->pool = o->category = o->explanation = o->extra = NULL;
    o->rate_line = 0;
    o->price = 0;
    o->unit = o->increment = 0;
    o->line = row->line;
    o->offset = row->offset;
    o->month = rr->month;
    o->service = row->service;
    o->direction = row->direction;
    o->start = row->start;
    o->amount = row->service == CDR_SVC_VOICE  ? row->duration_s
                : row->service == CDR_SVC_DATA ? row->bytes
                : row->service == CDR_SVC_SMS  ? row->sms_chars
                                               : -1;
    o->usage = rr->usage;
    o->billable = rated ? ro->billable : -1;
    o->covered = rated ? ro->covered : -1;
    o->billed = rr->cmp_billed;
    /* a later part of a merged call is rebuilt at 0 (CONTRACT.md) and compared
     * on the first part: rebuilt 0.00, difference 0.00 */
    o->has_rebuilt = rr->status != CDR_RS_UNRATED;
    o->rebuilt = o->has_rebuilt ? rr->rebuilt : 0;
    /* wrapping, never undefined (amounts are far inside int64 in practice) */
    o->difference = o->has_rebuilt && rr->status != CDR_RS_PARTIAL_REST
                        ? (cdr_money)((uint64_t)rr->cmp_billed - (uint64_t)rr->rebuilt)
                        : 0;
    o->status = rr->status;
    o->parts = rr->n_parts;
    o->partial_seq = row->partial_seq;
    o->sms_part = row->sms_part;
    o->sms_parts = row->sms_parts;
    o->pool_after = rr->pool_after;
    o->discount_micro = rated ? ro->discount_micro : 0;
    o->flags = rr->has_finding ? rr->finding.flags : 0;
    if (rated) {
        o->rate_line = ro->rate->line;
        o->price = ro->rate->price;
        o->unit = ro->rate->unit;
        o->increment = ro->rate->increment;
    }
}

static cdr_err rated_view(const cdr_rated *rr, const cdr_tariff *t, const char *file,
                          cdr_stmt_rec *o, scratch *sc)
{
    const cdr_row *row = &rr->row;
    const cdr_rate_out *ro = &rr->rating;
    int rated = (rr->status == CDR_RS_RATED || rr->status == CDR_RS_PARTIAL_FIRST) && ro->rate;
    char buf[256];

    cdr_stmt_rec_numbers(rr, o);
    /* band, or the pieces under split */
    buf[0] = '\0';
    if (rated && ro->n_pieces > 1) {
        size_t k = 0;
        for (int i = 0; i < ro->n_pieces && k < sizeof buf - 80; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s:%lld", i ? ";" : "",
                                  ro->pieces[i].band >= 0 ? t->band_names[ro->pieces[i].band] : "*",
                                  (long long)ro->pieces[i].units);
    } else if (rated && ro->band >= 0) {
        snprintf(buf, sizeof buf, "%s", t->band_names[ro->band]);
    }
    if (!(o->file = sc_putz(sc, file)) ||
        !(o->record_id = sc_put(sc, row->record_id.p, row->record_id.n)) ||
        !(o->msisdn = sc_put(sc, row->msisdn.p, row->msisdn.n)) ||
        !(o->peer = sc_put(sc, row->peer.p, row->peer.n)) ||
        !(o->dup_of = sc_put(sc, rr->dup_of.p ? rr->dup_of.p : "", rr->dup_of.n)) ||
        !(o->call_id = sc_put(sc, row->call_id.p, row->call_id.n)) ||
        !(o->sms_ref = sc_put(sc, row->sms_ref.p, row->sms_ref.n)) ||
        !(o->plan = sc_putz(sc, rr->plan >= 0 ? t->plans[rr->plan].name : "")) ||
        !(o->pool = sc_putz(sc, rated && ro->pool >= 0 ? t->pool_names[ro->pool] : "")) ||
        !(o->category = sc_putz(sc, rr->has_finding ? cdr_category_name(rr->finding.category)
                                                    : "")) ||
        !(o->explanation = sc_putz(sc, rr->has_finding ? rr->finding.explanation
                                       : rr->status == CDR_RS_UNRATED && rr->unrated
                                           ? rr->unrated
                                           : "")) ||
        !(o->band = sc_putz(sc, buf)))
        return CDR_E_RANGE;
    /* unknown columns as name=value;name=value */
    char *ex = sc->p + sc->n;
    size_t k = 0, room = sc->cap - sc->n;
    for (uint32_t i = 0; i < row->n_extra; i++) {
        size_t need = row->extra_names[i].n + row->extra[i].n + 2;
        if (k + need + 1 > room)
            return CDR_E_RANGE;
        if (i)
            ex[k++] = ';';
        memcpy(ex + k, row->extra_names[i].p, row->extra_names[i].n);
        k += row->extra_names[i].n;
        ex[k++] = '=';
        memcpy(ex + k, row->extra[i].p, row->extra[i].n);
        k += row->extra[i].n;
    }
    if (k + 1 > room)
        return CDR_E_RANGE;
    ex[k] = '\0';
    sc->n += k + 1;
    o->extra = ex;
    return CDR_OK;
}

/* The view's strings need about this much room. */
static size_t view_size(const cdr_rated *rr, const char *file)
{
    size_t n = 512 + strlen(file ? file : "") + rr->row.record_id.n + rr->row.msisdn.n +
               rr->row.peer.n + rr->dup_of.n + rr->row.call_id.n + rr->row.sms_ref.n;
    if (rr->has_finding)
        n += strlen(rr->finding.explanation);
    if (rr->status == CDR_RS_UNRATED && rr->unrated)
        n += strlen(rr->unrated);
    for (uint32_t i = 0; i < rr->row.n_extra; i++)
        n += rr->row.extra_names[i].n + rr->row.extra[i].n + 2;
    return n;
}

/* ------------------------------------------------------------------ */
/* The canonical row of an engine record, written in place              */
/*
 * The same bytes as cdr_stmt_rec_from_rated + cdr_stmt_rec_write (the
 * reference, kept cell by cell above; tests/unit/test_statement.c compares
 * the two), without the copies: the row's largest size is reserved once,
 * numbers are formatted straight into it (they never need quoting or an
 * apostrophe), and only text cells go through the shared cell rules
 * (cdr_csv_put_cell, src/common/csvout.h). Strings are cut at a NUL byte, as the
 * reference's NUL-terminated copies are.
 */

static const char two_digits[201] = "00010203040506070809101112131415161718192021222324"
                                    "25262728293031323334353637383940414243444546474849"
                                    "50515253545556575859606162636465666768697071727374"
                                    "75767778798081828384858687888990919293949596979899";

/* A numeric cell takes at most this much (money: sign, 13 digits, '.', 6). */
#define NUM_MAX 24

/* The eight decimal digits of v < 10^8, most significant first, as the
 * bytes of a little-endian word: v split into two 4-digit halves, each into
 * two 2-digit lanes, each into two digits - one multiply a step for all
 * lanes at once, no loop (the lanes never carry into each other: 9999 *
 * 10486 < 2^32, 99 * 103 < 2^16; both reciprocals are exact below 10^4 and
 * 10^2). */
static inline uint64_t digits8(uint64_t v)
{
    uint64_t m = v / 10000 | (v % 10000) << 32;
    uint64_t q = ((m * 10486) >> 20) & 0x0000007F0000007Full;
    m = q | (m - q * 100) << 16;
    q = ((m * 103) >> 10) & 0x000F000F000F000Full;
    m = q | (m - q * 10) << 8;
    return m | 0x3030303030303030ull;
}

/* Inlined at each column, like the text cells. Writes 8 bytes past d for
 * any value (every numeric column reserves NUM_MAX): the digits, then what
 * the next column overwrites. */
CDR_CSV_INLINE char *put_u64(char *d, uint64_t v)
{
    if (v < 10) {
        *d = (char)('0' + v);
        return d + 1;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    { /* digits8's words are little-endian: a plain loop here */
        char tmp[20];
        size_t k = 0;
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (size_t i = 0; i < k; i++)
            d[i] = tmp[k - 1 - i];
        return d + k;
    }
#endif
    static const uint64_t pow10[9] = {1ull,      10ull,      100ull,      1000ull,     10000ull,
                                      100000ull, 1000000ull, 10000000ull, 100000000ull};
    uint64_t lo = 0;
    int big = v >= 100000000;
    if (big) { /* the last eight digits after the others */
        lo = v % 100000000;
        v /= 100000000;
        if (v >= 100000000) { /* 17 to 20 digits: the first at most 4 */
            uint64_t top = v / 100000000, w = digits8(top) >> 32;
            size_t k = top >= 1000 ? 4 : top >= 100 ? 3 : top >= 10 ? 2 : 1;
            w >>= 8 * (4 - k);
            memcpy(d, &w, 8);
            d += k;
            w = digits8(v % 100000000);
            memcpy(d, &w, 8);
            d += 8;
            w = digits8(lo);
            memcpy(d, &w, 8);
            return d + 8;
        }
    }
    /* 1 to 8 digits of v (v >= 1 here) */
    unsigned t = ((64u - (unsigned)__builtin_clzll(v)) * 1233u) >> 12; /* ~ log10 */
    size_t n = (size_t)t + (v >= pow10[t]);
    uint64_t w = digits8(v) >> (8 * (8 - n));
    memcpy(d, &w, 8);
    d += n;
    if (big) {
        w = digits8(lo);
        memcpy(d, &w, 8);
        d += 8;
    }
    return d;
}

CDR_CSV_INLINE char *put_i64(char *d, int64_t v)
{
    if (v >= 0)
        return put_u64(d, (uint64_t)v);
    *d++ = '-';
    return put_u64(d, (uint64_t)0 - (uint64_t)v);
}

/* opt_i64: empty when negative */
CDR_CSV_INLINE char *put_opt(char *d, int64_t v)
{
    return v < 0 ? d : put_u64(d, (uint64_t)v);
}

CDR_CSV_INLINE char *put_money(char *d, cdr_money v)
{
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (a % 10000 == 0) {
        /* whole fen, most amounts: what cdr_money_format(v, 2) writes,
         * "-"? whole "." two digits, without its general loops */
        if (v < 0)
            *d++ = '-';
        d = put_u64(d, a / CDR_MICRO);
        *d++ = '.';
        memcpy(d, two_digits + 2 * (a / 10000 % 100), 2);
        return d + 2;
    }
    return d + cdr_money_format(v, 2, d); /* its NUL is overwritten by what follows */
}

CDR_CSV_INLINE char *put_text(char *d, const char *p, size_t n)
{
    return cdr_csv_put_cell(d, p, n, 1);
}

/* A view of the record, cut at a NUL as the reference's C-string copy is. */
CDR_CSV_INLINE char *put_view(char *d, const char *p, size_t n)
{
    return cdr_csv_put_cellz(d, p, n, 1);
}

/* A cell known to need no quotes, guard or cut: our own names (service,
 * direction, status, category, flags), a month of years 1000-9999, a cell
 * rendered before (a tariff name's, the file's). Copied as it is. */
CDR_CSV_INLINE char *put_raw(char *d, const char *s, size_t n)
{
    return cdr_copy_small(d, s, n);
}

/* Append to a 256-byte buffer as snprintf(buf + k, 256 - k, ...) would:
 * *k counts every byte, the buffer keeps the first 255. */
static void band_add(char *buf, size_t *k, const char *s, size_t n)
{
    if (*k < 255) {
        size_t room = 255 - *k;
        memcpy(buf + *k, s, n < room ? n : room);
    }
    *k += n;
}

/* The length of name i of one of our name tables (service, direction,
 * status, category: string literals, whose text never changes), measured
 * once per thread and kept by index (memo[i] = length + 1; i past the
 * table: the "?" they all give). An address-keyed memo of 8 slots missed
 * often: 3M simulated mispredicts in 2M rows. */
static size_t name_len(size_t *memo, size_t count, unsigned i, const char *s)
{
    size_t k = i < count ? i : count;
    if (!memo[k])
        memo[k] = strlen(s) + 1;
    return memo[k] - 1;
}

/* The band column into buf[256] (the reference's snprintf loop, byte for
 * byte, truncation included); returns its length. */
static size_t band_text(const cdr_rated *rr, const cdr_tariff *t, int rated, char *buf)
{
    const cdr_rate_out *ro = &rr->rating;
    const size_t *lens = t->ix ? t->ix->band_len : NULL;
    size_t k = 0;
    if (rated && ro->n_pieces > 1) {
        for (int i = 0; i < ro->n_pieces && i < CDR_RATE_MAX_PIECES && k < 256 - 80; i++) {
            int32_t b = ro->pieces[i].band;
            const char *nm = b >= 0 ? t->band_names[b] : "*";
            char num[24];
            if (i)
                band_add(buf, &k, ";", 1);
            band_add(buf, &k, nm, b >= 0 ? cdr_tariff_name_len(lens, b, nm) : 1);
            band_add(buf, &k, ":", 1);
            band_add(buf, &k, num, (size_t)(put_i64(num, ro->pieces[i].units) - num));
        }
    } else if (rated && ro->band >= 0) {
        const char *nm = t->band_names[ro->band];
        band_add(buf, &k, nm, cdr_tariff_name_len(lens, ro->band, nm));
    }
    return k < 255 ? k : 255;
}

/* YYYY-MM-DD HH:MM:SS of `start` in month `mo`, if the month is an ordinary
 * four-digit one and holds the day (always, for the engine's records);
 * else 0 and the caller formats it the long way. */
/* The month's text and bounds, per thread (consecutive rows are mostly of
 * one month): the month column and the start time's date come from it. */
typedef struct month_cache {
    cdr_month mo;
    int bounded; /* m0, m1 are set (a month of the years 1900..9999) */
    int plain;   /* the text is YYYY-MM of years 1000..9999: no quotes or guard */
    cdr_time m0, m1;
    size_t len;
    char text[16];
} month_cache;

static const month_cache *month_of(cdr_month mo)
{
    static _Thread_local month_cache mc = {-1, 0, 0, 0, 0, 0, ""};
    if (mo != mc.mo) {
        mc.bounded = mo >= 1900 * 12 && mo < 10000 * 12;
        mc.plain = mo >= 1000 * 12 && mo < 10000 * 12;
        if (mc.bounded) {
            mc.m0 = cdr_month_start(mo);
            mc.m1 = cdr_month_start(mo + 1);
        }
        mc.len = cdr_month_format(mo, mc.text);
        mc.plain &= mc.len == 7; /* YYYY-MM */
        mc.mo = mo;
    }
    return &mc;
}

static int put_start(char **dp, cdr_time start, cdr_month mo)
{
    const month_cache *m = month_of(mo);
    if (!m->bounded || start < m->m0 || start >= m->m1 || start < 0)
        return 0;
    char *d = *dp;
    memcpy(d, m->text, 7);
    d[7] = '-';
    int64_t in = start - m->m0;
    unsigned dom = (unsigned)(in / 86400) + 1, sod = (unsigned)(in % 86400);
    memcpy(d + 8, two_digits + 2 * dom, 2);
    d[10] = ' ';
    memcpy(d + 11, two_digits + 2 * (sod / 3600), 2);
    d[13] = ':';
    memcpy(d + 14, two_digits + 2 * (sod / 60 % 60), 2);
    d[16] = ':';
    memcpy(d + 17, two_digits + 2 * (sod % 60), 2);
    *dp = d + 19;
    return 1;
}

cdr_err cdr_stmt_rated_write(cdr_csvw *w, const cdr_rated *rr, const cdr_tariff *t,
                             const char *file)
{
    return cdr_stmt_rated_write_n(w, rr, t, file ? file : "", file ? strlen(file) : 0);
}

char *cdr_stmt_file_cell(const char *file, size_t n, size_t *cell_n)
{
    char *c = malloc(CDR_CSV_CELL_MAX(n));
    if (c)
        *cell_n = (size_t)(put_text(c, file, n) - c);
    return c;
}

static cdr_err rated_write(cdr_csvw *w, const cdr_rated *rr, const cdr_tariff *t,
                           const char *file, size_t file_n, int file_is_cell);

cdr_err cdr_stmt_rated_write_n(cdr_csvw *w, const cdr_rated *rr, const cdr_tariff *t,
                               const char *file, size_t file_n)
{
    return rated_write(w, rr, t, file, file_n, 0);
}

cdr_err cdr_stmt_rated_write_cell(cdr_csvw *w, const cdr_rated *rr, const cdr_tariff *t,
                                  const char *file_cell, size_t cell_n)
{
    return rated_write(w, rr, t, file_cell, cell_n, 1);
}

/* The cells of a rated row that are not the row's own views: the names
 * with their lengths, the cells rendered when the tariff was loaded (a
 * tariff made by hand, as in tests, has none: put_text), band, flags. */
typedef struct rated_text {
    const char *plan, *pool, *cat, *expl, *svc, *dir, *st;
    size_t plan_n, pool_n, cat_n, expl_n, svc_n, dir_n, st_n;
    const cdr_name_cell *plan_c, *band_c, *pool_c;
    size_t band_n, flags_n;
    char band[256];
    char flags[32]; /* at most "overlap;overlong" */
} rated_text;

/* The steps of rated_write below are always inlined (CDR_CSV_INLINE) and
 * called once each: one function to the compiler, as it was before it
 * was cut in steps (callgrind, `rate --threads 1` of 300,000 rows: the
 * same instruction count; static inline alone left two steps out of
 * line, +1.9 % in cdr_stmt_rated_write_cell). */
CDR_CSV_INLINE void rated_text_of(const cdr_rated *rr, const cdr_tariff *t,
                                 const cdr_stmt_rec *o, int rated, rated_text *x)
{
    const cdr_rate_out *ro = &rr->rating;
    x->plan = rr->plan >= 0 ? t->plans[rr->plan].name : "";
    x->pool = rated && ro->pool >= 0 ? t->pool_names[ro->pool] : "";
    x->cat = rr->has_finding ? cdr_category_name(rr->finding.category) : "";
    x->expl = rr->has_finding                             ? rr->finding.explanation
              : rr->status == CDR_RS_UNRATED && rr->unrated ? rr->unrated
                                                            : "";
    x->svc = cdr_service_name(o->service);
    x->dir = cdr_direction_name(o->direction);
    x->st = cdr_rec_status_name(o->status);
    const cdr_tariff_index *ix = t->ix;
    x->plan_n = rr->plan >= 0 ? cdr_tariff_name_len(ix ? ix->plan_len : NULL, rr->plan, x->plan)
                              : 0;
    x->pool_n = *x->pool ? cdr_tariff_name_len(ix ? ix->pool_len : NULL, ro->pool, x->pool) : 0;
    static _Thread_local size_t svc_l[CDR_SVC__COUNT + 1], dir_l[3], st_l[CDR_RS__COUNT + 1],
        cat_l[CDR_CAT__COUNT + 1];
    x->cat_n = rr->has_finding ? name_len(cat_l, CDR_CAT__COUNT,
                                          (unsigned)rr->finding.category, x->cat)
                               : 0;
    x->expl_n = *x->expl ? strlen(x->expl) : 0;
    x->svc_n = name_len(svc_l, CDR_SVC__COUNT, (unsigned)o->service, x->svc);
    x->dir_n = name_len(dir_l, 2, (unsigned)o->direction, x->dir);
    x->st_n = name_len(st_l, CDR_RS__COUNT, (unsigned)o->status, x->st);
    static const cdr_name_cell none = {"", 0};
    x->plan_c = x->band_c = x->pool_c = NULL;
    if (ix && ix->plan_cell) {
        x->plan_c = rr->plan >= 0 ? &ix->plan_cell[rr->plan] : &none;
        x->pool_c = rated && ro->pool >= 0 ? &ix->pool_cell[ro->pool] : &none;
        if (!(rated && ro->n_pieces > 1))
            x->band_c = rated && ro->band >= 0 ? &ix->band_cell[ro->band] : &none;
    }
    x->band_n = x->band_c ? 0 : band_text(rr, t, rated, x->band);
    memset(x->flags, 0, sizeof x->flags);
    x->flags_n = cdr_flags_format(o->flags, x->flags);
}

/* The most bytes the row can take (each cell at its longest quoted). */
CDR_CSV_INLINE size_t rated_row_max(const cdr_rated *rr, const rated_text *x, size_t file_n,
                                   size_t ex_n)
{
    const cdr_row *row = &rr->row;
    size_t dup_n = rr->dup_of.p ? rr->dup_of.n : 0;
    return C__COUNT * (NUM_MAX + 1) + 1 + CDR_CSV_CELL_MAX(file_n) +
           CDR_CSV_CELL_MAX(row->record_id.n) + CDR_CSV_CELL_MAX(row->msisdn.n) +
           CDR_CSV_CELL_MAX(x->svc_n) + CDR_CSV_CELL_MAX(x->dir_n) +
           CDR_CSV_CELL_MAX(row->peer.n) + CDR_CSV_CELL_MAX(x->st_n) + CDR_CSV_CELL_MAX(dup_n) +
           CDR_CSV_CELL_MAX(row->call_id.n) + CDR_CSV_CELL_MAX(row->sms_ref.n) +
           CDR_CSV_CELL_MAX(x->plan_c ? x->plan_c->n : x->plan_n) +
           CDR_CSV_CELL_MAX(x->band_c ? x->band_c->n : x->band_n) +
           CDR_CSV_CELL_MAX(x->pool_c ? x->pool_c->n : x->pool_n) + CDR_CSV_CELL_MAX(x->cat_n) +
           CDR_CSV_CELL_MAX(x->flags_n) + CDR_CSV_CELL_MAX(x->expl_n) + CDR_CSV_CELL_MAX(ex_n);
}

/* Columns file .. start_time, each followed by its comma. */
CDR_CSV_INLINE char *put_where_cells(char *d, const cdr_rated *rr, const cdr_stmt_rec *o,
                                    const rated_text *x, const char *file, size_t file_n,
                                    int file_is_cell)
{
    const cdr_row *row = &rr->row;
    char tb[32];
    d = file_is_cell ? put_raw(d, file, file_n) : put_text(d, file, file_n);
    *d++ = ',';
    d = put_u64(d, o->line);
    *d++ = ',';
    d = put_u64(d, o->offset);
    *d++ = ',';
    d = put_view(d, row->record_id.p, row->record_id.n);
    *d++ = ',';
    d = put_view(d, row->msisdn.p, row->msisdn.n);
    *d++ = ',';
    const month_cache *m = month_of(o->month);
    if (m->plain) {
        memcpy(d, m->text, 7);
        d += 7;
    } else {
        d = put_text(d, m->text, m->len);
    }
    *d++ = ',';
    d = put_raw(d, x->svc, x->svc_n);
    *d++ = ',';
    d = put_raw(d, x->dir, x->dir_n);
    *d++ = ',';
    d = put_view(d, row->peer.p, row->peer.n);
    *d++ = ',';
    if (!put_start(&d, o->start, o->month))
        d = put_text(d, tb, cdr_time_format(o->start, tb));
    *d++ = ',';
    return d;
}

/* Columns amount .. sms_parts, each followed by its comma. */
CDR_CSV_INLINE char *put_charge_cells(char *d, const cdr_rated *rr, const cdr_stmt_rec *o,
                                     const rated_text *x)
{
    const cdr_row *row = &rr->row;
    d = put_i64(d, o->amount);
    *d++ = ',';
    d = put_i64(d, o->usage);
    *d++ = ',';
    d = put_opt(d, o->billable);
    *d++ = ',';
    d = put_opt(d, o->covered);
    *d++ = ',';
    d = put_money(d, o->billed);
    *d++ = ',';
    if (o->has_rebuilt) {
        d = put_money(d, o->rebuilt);
        *d++ = ',';
        d = put_money(d, o->difference);
    } else {
        *d++ = ',';
    }
    *d++ = ',';
    d = put_raw(d, x->st, x->st_n);
    *d++ = ',';
    d = put_view(d, rr->dup_of.p, rr->dup_of.p ? rr->dup_of.n : 0);
    *d++ = ',';
    d = put_u64(d, o->parts);
    *d++ = ',';
    d = put_view(d, row->call_id.p, row->call_id.n);
    *d++ = ',';
    d = put_i64(d, o->partial_seq);
    *d++ = ',';
    d = put_view(d, row->sms_ref.p, row->sms_ref.n);
    *d++ = ',';
    d = put_i64(d, o->sms_part);
    *d++ = ',';
    d = put_i64(d, o->sms_parts);
    *d++ = ',';
    return d;
}

/* Columns plan .. extra and the row's end. */
CDR_CSV_INLINE char *put_tariff_cells(char *d, const cdr_stmt_rec *o, const rated_text *x,
                                     const char *ex, size_t ex_n)
{
    char tb[32];
    d = x->plan_c ? put_raw(d, x->plan_c->p, x->plan_c->n) : put_text(d, x->plan, x->plan_n);
    *d++ = ',';
    if (o->rate_line) {
        d = put_u64(d, o->rate_line);
        *d++ = ',';
        d = put_money(d, o->price);
        *d++ = ',';
        d = put_i64(d, o->unit);
        *d++ = ',';
        d = put_i64(d, o->increment);
    } else {
        *d++ = ',';
        *d++ = ',';
        *d++ = ',';
    }
    *d++ = ',';
    d = x->band_c ? put_raw(d, x->band_c->p, x->band_c->n) : put_text(d, x->band, x->band_n);
    *d++ = ',';
    d = x->pool_c ? put_raw(d, x->pool_c->p, x->pool_c->n) : put_text(d, x->pool, x->pool_n);
    *d++ = ',';
    d = put_opt(d, o->pool_after);
    *d++ = ',';
    if (o->discount_micro > 0)
        d = cdr_csv_put_cell(d, tb, cdr_money_format(o->discount_micro, 0, tb), 0);
    *d++ = ',';
    d = put_raw(d, x->cat, x->cat_n);
    *d++ = ',';
    memcpy(d, x->flags, 16); /* (flags_n <= 16; the next columns write over the rest) */
    d += x->flags_n;
    *d++ = ',';
    d = put_text(d, x->expl, x->expl_n);
    *d++ = ',';
    d = put_view(d, ex, ex_n);
    *d++ = '\n';
    return d;
}

static cdr_err rated_write(cdr_csvw *w, const cdr_rated *rr, const cdr_tariff *t,
                           const char *file, size_t file_n, int file_is_cell)
{
    const cdr_row *row = &rr->row;
    const cdr_rate_out *ro = &rr->rating;
    int rated = (rr->status == CDR_RS_RATED || rr->status == CDR_RS_PARTIAL_FIRST) && ro->rate;
    cdr_stmt_rec o;
    cdr_stmt_rec_numbers(rr, &o);
    rated_text x;
    rated_text_of(rr, t, &o, rated, &x);

    /* unknown columns as name=value;name=value */
    char ex_stack[1024], *ex = ex_stack;
    size_t ex_n = 0;
    if (row->n_extra) {
        size_t need = cdr_row_extras_size(row);
        if (need > sizeof ex_stack && !(ex = malloc(need)))
            return CDR_E_NOMEM;
        ex_n = cdr_row_extras_join(row, ex);
    }

    char *d = cdr_csvw_row_begin(w, rated_row_max(rr, &x, file_n, ex_n));
    if (!d) {
        if (ex != ex_stack)
            free(ex);
        return cdr_csvw_status(w);
    }
    d = put_where_cells(d, rr, &o, &x, file, file_n, file_is_cell);
    d = put_charge_cells(d, rr, &o, &x);
    d = put_tariff_cells(d, &o, &x, ex, ex_n);
    if (ex != ex_stack)
        free(ex);
    return cdr_csvw_row_end(w, d);
}

cdr_err cdr_stmt_rec_from_rated(const cdr_rated *rr, const cdr_tariff *t, const char *file,
                                cdr_stmt_rec *o)
{
    size_t need = view_size(rr, file);
    scratch sc = {malloc(need), 0, need};
    if (!sc.p)
        return CDR_E_NOMEM;
    cdr_stmt_rec v;
    cdr_err e = rated_view(rr, t, file, &v, &sc);
    if (e == CDR_OK) {
        /* the owning copy: every string duplicated */
        *o = v;
        char **strs[] = {&o->file, &o->record_id, &o->msisdn, &o->peer, &o->dup_of,
                         &o->call_id, &o->sms_ref, &o->plan, &o->band, &o->pool,
                         &o->category, &o->explanation, &o->extra};
        for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
            *strs[i] = NULL;
        if (!(o->file = strdup(v.file)) || !(o->record_id = strdup(v.record_id)) ||
            !(o->msisdn = strdup(v.msisdn)) || !(o->peer = strdup(v.peer)) ||
            !(o->dup_of = strdup(v.dup_of)) || !(o->call_id = strdup(v.call_id)) ||
            !(o->sms_ref = strdup(v.sms_ref)) || !(o->plan = strdup(v.plan)) ||
            !(o->band = strdup(v.band)) || !(o->pool = strdup(v.pool)) ||
            !(o->category = strdup(v.category)) || !(o->explanation = strdup(v.explanation)) ||
            !(o->extra = strdup(v.extra))) {
            cdr_stmt_rec_clear(o);
            e = CDR_E_NOMEM;
        }
    }
    free(sc.p);
    return e;
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */

cdr_err cdr_stmt_init(cdr_stmt *s, const char *msisdn, cdr_month month)
{
    memset(s, 0, sizeof *s);
    s->month = month;
    s->vip = -1;
    s->join_date = -1;
    s->msisdn = strdup(msisdn ? msisdn : "");
    return s->msisdn ? CDR_OK : CDR_E_NOMEM;
}

static char *sdup(const char *s)
{
    return strdup(s ? s : "");
}

cdr_err cdr_stmt_add(cdr_stmt *s, const cdr_stmt_rec *r)
{
    if (cdr_grow(&s->recs, &s->recs_cap, s->n_recs + 1, sizeof *s->recs, 16))
        return CDR_E_NOMEM;
    cdr_stmt_rec *o = &s->recs[s->n_recs];
    *o = *r;
    o->file = sdup(r->file);
    o->record_id = sdup(r->record_id);
    o->msisdn = sdup(r->msisdn);
    o->peer = sdup(r->peer);
    o->dup_of = sdup(r->dup_of);
    o->call_id = sdup(r->call_id);
    o->sms_ref = sdup(r->sms_ref);
    o->plan = sdup(r->plan);
    o->band = sdup(r->band);
    o->pool = sdup(r->pool);
    o->category = sdup(r->category);
    o->explanation = sdup(r->explanation);
    o->extra = sdup(r->extra);
    if (!o->file || !o->record_id || !o->msisdn || !o->peer || !o->dup_of || !o->call_id ||
        !o->sms_ref || !o->plan || !o->band || !o->pool || !o->category || !o->explanation ||
        !o->extra) {
        cdr_stmt_rec_clear(o);
        return CDR_E_NOMEM;
    }
    s->n_recs++;
    return CDR_OK;
}

cdr_err cdr_stmt_set_candidate(cdr_stmt *s, const cdr_candidate *c)
{
    free((char *)s->cand.policy_reason);
    s->cand = *c;
    s->cand.msisdn = (cdr_str){s->msisdn, strlen(s->msisdn)};
    s->cand.policy_reason = sdup(c->policy_reason);
    s->has_candidate = 1;
    return s->cand.policy_reason ? CDR_OK : CDR_E_NOMEM;
}

/* Totals of hostile or absurd amounts must not overflow: saturate. */
static cdr_money sat_add(cdr_money a, cdr_money b)
{
    cdr_money r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

cdr_err cdr_stmt_finish(cdr_stmt *s, const cdr_tariff *t)
{
    s->n_findings = s->n_duplicates = s->n_unrated = 0;
    s->total_billed = s->total_rebuilt = s->leakage = 0;
    for (size_t i = 0; i < s->n_pools; i++) {
        free(s->pools[i].pool);
        free(s->pools[i].plan);
    }
    free(s->pools);
    s->pools = NULL;
    s->n_pools = 0;
    for (size_t i = 0; i < s->n_recs; i++) {
        const cdr_stmt_rec *r = &s->recs[i];
        if (r->status != CDR_RS_PARTIAL_REST)
            s->total_billed = sat_add(s->total_billed, r->billed);
        if (r->has_rebuilt)
            s->total_rebuilt = sat_add(s->total_rebuilt, r->rebuilt);
        if (r->category[0] || r->flags)
            s->n_findings++;
        if (r->status == CDR_RS_DUPLICATE)
            s->n_duplicates++;
        if (r->status == CDR_RS_UNRATED)
            s->n_unrated++;
        if (r->has_rebuilt && r->difference < 0 && r->difference > INT64_MIN &&
            !strcmp(r->category, "leakage"))
            s->leakage = sat_add(s->leakage, -r->difference);
        if (r->pool[0] && r->pool_after >= 0 && r->covered >= 0) {
            size_t k;
            for (k = 0; k < s->n_pools; k++)
                if (!strcmp(s->pools[k].pool, r->pool) && !strcmp(s->pools[k].plan, r->plan))
                    break;
            if (k == s->n_pools) {
                cdr_stmt_pool *p = realloc(s->pools, (s->n_pools + 1) * sizeof *p);
                if (!p)
                    return CDR_E_NOMEM;
                s->pools = p;
                p[k].pool = sdup(r->pool);
                p[k].plan = sdup(r->plan);
                if (!p[k].pool || !p[k].plan)
                    return CDR_E_NOMEM;
                /* the balance before the first record that drew from it */
                p[k].allowance = sat_add(r->pool_after, r->covered);
                p[k].unit = r->service == CDR_SVC_VOICE ? "s"
                            : r->service == CDR_SVC_DATA ? "KB"
                                                         : "seg";
                s->n_pools++;
            }
            s->pools[k].left = r->pool_after;
            s->pools[k].used = s->pools[k].allowance - r->pool_after;
        }
    }
    if (t && s->n_recs) {
        cdr_time at = s->recs[s->n_recs - 1].start;
        const cdr_subscriber *sub = cdr_tariff_subscriber(t, s->msisdn, strlen(s->msisdn), at);
        if (sub) {
            s->vip = sub->vip;
            s->join_date = sub->join_date;
        }
    }
    return CDR_OK;
}

void cdr_stmt_free(cdr_stmt *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_recs; i++)
        cdr_stmt_rec_clear(&s->recs[i]);
    free(s->recs);
    for (size_t i = 0; i < s->n_pools; i++) {
        free(s->pools[i].pool);
        free(s->pools[i].plan);
    }
    free(s->pools);
    free((char *)s->cand.policy_reason);
    free(s->msisdn);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ */
/* The scan path                                                        */

typedef struct scan_ctx {
    cdr_engine *eng;
    cdr_stmt *s;
    const cdr_tariff *t;
    char **files;
    cdr_err err;
} scan_ctx;

/* A row callback's answer: 0 to go on, or 1 to stop with e kept in
 * *slot when e is an error. */
static int stop_on(cdr_err *slot, cdr_err e)
{
    if (e == CDR_OK)
        return 0;
    *slot = e;
    return 1;
}

static int scan_row(const cdr_row *r, void *user)
{
    scan_ctx *c = user;
    return stop_on(&c->err, cdr_engine_add(c->eng, r));
}

static int scan_rec(const cdr_rated *r, void *user)
{
    scan_ctx *c = user;
    cdr_stmt_rec rec;
    cdr_err e = cdr_stmt_rec_from_rated(r, c->t, r->file_name ? r->file_name : "", &rec);
    if (e == CDR_OK) {
        e = cdr_stmt_add(c->s, &rec);
        cdr_stmt_rec_clear(&rec);
    }
    return stop_on(&c->err, e);
}

static int scan_cand(const cdr_candidate *cd, void *user)
{
    scan_ctx *c = user;
    return stop_on(&c->err, cdr_stmt_set_candidate(c->s, cd));
}

/* The start of both paths: msisdn normalised into a new statement out,
 * and in c an engine for that one subscriber-month. from_state: the
 * engine keeps no month state of its own and runs on one thread. */
static cdr_err scan_start(const cdr_tariff *t, const char *msisdn, cdr_month month,
                          const cdr_engine_opts *eo, int from_state, cdr_stmt *out,
                          scan_ctx *c, char *err, size_t errlen)
{
    cdr_engine_opts o;
    cdr_str num;
    cdr_err rc;
    memset(c, 0, sizeof *c);
    if (err && errlen)
        err[0] = '\0';
    if (cdr_number_normalise(msisdn, strlen(msisdn), &num) != CDR_OK) {
        if (err && from_state)
            snprintf(err, errlen, "not a phone number");
        else if (err)
            snprintf(err, errlen, "not a phone number: '%.40s'", msisdn);
        return CDR_E_USAGE;
    }
    char nb[CDR_NUMBER_MAX + 1];
    memcpy(nb, num.p, num.n);
    nb[num.n] = '\0';
    if ((rc = cdr_stmt_init(out, nb, month)) != CDR_OK)
        return rc;
    if (eo)
        o = *eo;
    else
        cdr_engine_opts_init(&o);
    if (from_state) {
        o.state = NULL;
        o.threads = 1;
    }
    o.msisdn = out->msisdn;
    o.month = month;
    if ((rc = cdr_engine_new(t, &o, &c->eng)) != CDR_OK)
        return rc;
    c->s = out;
    c->t = t;
    return CDR_OK;
}

/* The records given to c's engine rated, into the statement out:
 * CDR_E_NOTFOUND when the number has no record in the month. */
static cdr_err rate_into(scan_ctx *c, cdr_stmt *out, const cdr_tariff *t, char *err,
                         size_t errlen)
{
    cdr_engine_sink sink = {.on_record = scan_rec, .on_candidate = scan_cand, .user = c};
    cdr_engine_totals tot;
    cdr_err rc = cdr_engine_finish(c->eng, &sink, &tot);
    if (rc == CDR_E_INTERRUPTED && c->err)
        rc = c->err;
    if (rc != CDR_OK) {
        cdr_seterr(err, errlen, "%s", cdr_engine_errmsg(c->eng));
        return rc;
    }
    if ((rc = cdr_stmt_finish(out, t)) != CDR_OK)
        return rc;
    return out->n_recs ? CDR_OK : CDR_E_NOTFOUND;
}

cdr_err cdr_stmt_scan(const cdr_tariff *t, char **files, size_t nfiles, const char *msisdn,
                      cdr_month month, const cdr_engine_opts *eo, cdr_file_stats *stats,
                      cdr_stmt *out, char *err, size_t errlen)
{
    return cdr_stmt_scan_ro(t, files, nfiles, msisdn, month, eo, NULL, stats, out, err, errlen);
}

cdr_err cdr_stmt_scan_ro(const cdr_tariff *t, char **files, size_t nfiles, const char *msisdn,
                         cdr_month month, const cdr_engine_opts *eo,
                         const cdr_reader_opts *rdo, cdr_file_stats *stats, cdr_stmt *out,
                         char *err, size_t errlen)
{
    cdr_reader_opts ro;
    scan_ctx c;
    cdr_err rc = scan_start(t, msisdn, month, eo, 0, out, &c, err, errlen);
    if (rc != CDR_OK)
        return rc;
    cdr_engine *eng = c.eng;
    if (rdo)
        ro = *rdo;
    else
        cdr_reader_opts_init(&ro);
    /* the 11 digits appear in "+86..." forms too, and in every form an input
     * profile can normalise (a trunk prefix or a country code before them) */
    ro.line_filter = out->msisdn;
    c.files = files;
    for (size_t i = 0; i < nfiles; i++) {
        cdr_file_stats st_local, *st = stats ? &stats[i] : &st_local;
        if ((rc = cdr_engine_set_file(eng, (uint32_t)i, files[i])) != CDR_OK)
            goto out;
        rc = cdr_read_file(files[i], (uint32_t)i, &ro, scan_row, NULL, &c, st);
        if (c.err != CDR_OK) {
            rc = c.err;
            goto out;
        }
        if (rc != CDR_OK) {
            if (err)
                snprintf(err, errlen, "%s: %s", files[i],
                         st->message[0] ? st->message : cdr_strerror(rc));
            goto out;
        }
    }
    rc = rate_into(&c, out, t, err, errlen);
out:
    cdr_engine_free(eng);
    return rc;
}


/* ---- a subscriber-month from the month state ---- */

typedef struct state_file {
    int64_t db_id;
    const char *name;     /* (the state keeps it while it is open) */
} state_file;

typedef struct state_ctx {
    scan_ctx *c;
    state_file *files;
    uint32_t n;
    size_t cap;
    cdr_err err;
} state_ctx;

static int state_row(const cdr_row *r, const char *file, int64_t db_id, void *user)
{
    state_ctx *x = user;
    uint32_t i = 0;
    while (i < x->n && !(x->files[i].db_id == db_id && !strcmp(x->files[i].name, file)))
        i++;
    if (i == x->n) {
        if (cdr_grow(&x->files, &x->cap, (size_t)x->n + 1, sizeof *x->files, 16))
            return stop_on(&x->err, CDR_E_NOMEM);
        x->files[x->n++] = (state_file){db_id, file};
        cdr_err e = cdr_engine_set_file(x->c->eng, i, file);
        if (e != CDR_OK) {
            x->err = e;
            return 1;
        }
    }
    cdr_row row = *r;
    row.file_index = i;
    cdr_err e = cdr_engine_add(x->c->eng, &row);
    if (e != CDR_OK) {
        x->err = e;
        return 1;
    }
    return 0;
}

cdr_err cdr_stmt_from_state(const cdr_tariff *t, cdr_state *st, const char *msisdn,
                            cdr_month month, const cdr_engine_opts *eo, cdr_stmt *out, char *err,
                            size_t errlen)
{
    scan_ctx c;
    cdr_err rc = scan_start(t, msisdn, month, eo, 1, out, &c, err, errlen);
    if (rc != CDR_OK)
        return rc;
    cdr_engine *eng = c.eng;
    state_ctx x;
    memset(&x, 0, sizeof x);
    x.c = &c;
    rc = cdr_state_submonth_rows(st, out->msisdn, month, state_row, &x, err, errlen);
    if (rc == CDR_E_NOTFOUND) {
        rc = CDR_E_NOTFOUND;
        goto out;
    }
    if (x.err != CDR_OK)
        rc = x.err;
    if (rc != CDR_OK)
        goto out;
    rc = rate_into(&c, out, t, err, errlen);
out:
    free(x.files);
    cdr_engine_free(eng);
    return rc;
}
