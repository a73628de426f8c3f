/*
 * cdrecon — input profiles (include/cdrecon/profile.h, docs/profiles.md):
 * the profile file's parser and checks, and the value conversions the
 * reader applies with it (times, units, record types, numbers).
 *
 * The file is read whole (at most 64 KiB) and checked whole: every error
 * names the profile and the line. Column names are only resolved against
 * a CDR file's header by the reader (src/reader.c), which plans each
 * field as a column index and a converter before the first row.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdrecon/record.h"
#include "hashfn.h"
#include "memdupz.h"
#include "profile_int.h"
#include "sha256.h"
#include "swar.h"

static const char *const pf_names[PF__N] = {
    "record_id", "msisdn",   "service",   "direction", "peer",     "start_time",
    "duration_s", "bytes",   "sms_chars", "sms_ref",   "sms_part", "sms_parts",
    "call_id",   "partial_seq", "billed", "imsi",      "record_type", "start_time.utc_offset"};

const char *cdr_pfield_name(cdr_pfield f)
{
    return (unsigned)f < CDR_PF__COUNT ? pf_names[f] : "?";
}

/* ------------------------------------------------------------------ */
/* Conversions                                                          */

int cdr_pf_utc_offset(const char *v, size_t n, int32_t *out)
{
    if (n == 1 && (v[0] == 'Z' || v[0] == 'z')) {
        *out = 0;
        return 0;
    }
    if (n != 3 && n != 5 && n != 6)
        return -1;
    if (v[0] != '+' && v[0] != '-')
        return -1;
    int d[4] = {0, 0, 0, 0}, k = 0;
    for (size_t i = 1; i < n; i++) {
        if (n == 6 && i == 3) {
            if (v[i] != ':')
                return -1;
            continue;
        }
        if (v[i] < '0' || v[i] > '9')
            return -1;
        d[k++] = v[i] - '0';
    }
    int hh = d[0] * 10 + d[1], mm = d[2] * 10 + d[3];
    if (hh > 14 || mm > 59)
        return -2;
    *out = (v[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return 0;
}

/* Exactly w digits at v[*i]. */
static int digits_at(const char *v, size_t n, size_t *i, int w, int *out)
{
    if (*i + (size_t)w > n)
        return -1;
    int x = 0;
    for (int k = 0; k < w; k++) {
        unsigned d = (unsigned char)v[*i + (size_t)k] - '0';
        if (d > 9)
            return -1;
        x = x * 10 + (int)d;
    }
    *i += (size_t)w;
    *out = x;
    return 0;
}

/* A %z at the end of a fixed-width time: "+hhmm" inline, the rest by
 * cdr_pf_utc_offset. */
static inline int tz_tail(const char *z, size_t zn, int32_t *off)
{
    unsigned h1, h2, m1, m2;
    if (zn == 5 && (z[0] == '+' || z[0] == '-') && (h1 = (unsigned char)z[1] - 48u) <= 9 &&
        (h2 = (unsigned char)z[2] - 48u) <= 9 && (m1 = (unsigned char)z[3] - 48u) <= 9 &&
        (m2 = (unsigned char)z[4] - 48u) <= 9 && h1 * 10 + h2 <= 14 && m1 * 10 + m2 <= 59) {
        *off = (z[0] == '-' ? -1 : 1) * (int32_t)((h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60);
        return 0;
    }
    return cdr_pf_utc_offset(z, zn, off);
}

/* Times accepted: years 1900..9999 of the operator's clock. */
#define T_MIN (-2208988800LL)  /* 1900-01-01 00:00:00 */
#define T_END (253402300800LL) /* 10000-01-01 00:00:00 */

/* The steps of cdr_pf_time: each 0 with *t (and, for a zone in the
 * text, *off and *has_off 1), or cdr_pf_time's error. Always inlined:
 * they run once per row read through a profile (callgrind: scan
 * --profile of 300,000 rows, the same instruction count as the one
 * function they were). */
#define PF_STEP static inline __attribute__((always_inline)) int

/* Seconds (PT_EPOCH) or milliseconds (PT_EPOCH_MS) since 1970, UTC. */
PF_STEP pf_time_epoch(const cdr_profile *p, const char *v, size_t n, cdr_time *out)
{
    cdr_time t;
    if (n > 18)
        return -2;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - '0';
        if (d > 9)
            return -1;
        x = x * 10 + d;
    }
    if (p->tkind == PT_EPOCH_MS)
        x /= 1000; /* the second it began in */
    t = x + p->local_off;
    if (t >= T_END)
        return -2;
    *out = t;
    return 0; /* epoch times are UTC by definition: no offset column */
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Fixed widths of digits only (p->tdig 12 or 14), as two 8-byte words. */
PF_STEP pf_time_digits(const cdr_profile *p, const char *v, size_t n, size_t L, cdr_time *tp,
                       int32_t *offp, int *has_offp)
{
    cdr_time t;
    int32_t off = 0;
    uint64_t a, b;
    memcpy(&a, v, 8);
    memcpy(&b, v + L - 8, 8);
    if (cdr_nondigit8(a) | cdr_nondigit8(b))
        return -1;
    a &= 0x0F0F0F0F0F0F0F0Full;
    b &= 0x0F0F0F0F0F0F0F0Full;
    a = a * 10 + (a >> 8); /* byte i: the number of digits i, i + 1 */
    b = b * 10 + (b >> 8);
    int y, mo, d, hh, mi, ss;
    if (p->tdig == 12) { /* a: yy mm dd hh, b (bytes 4..11): dd hh mi ss */
        y = 2000 + (int)(a & 0xFF);
        mo = (int)(a >> 16 & 0xFF);
        d = (int)(a >> 32 & 0xFF);
        hh = (int)(a >> 48 & 0xFF);
    } else { /* a: cc yy mm dd, b (bytes 6..13): dd hh mi ss */
        y = (int)(a & 0xFF) * 100 + (int)(a >> 16 & 0xFF);
        mo = (int)(a >> 32 & 0xFF);
        d = (int)(a >> 48 & 0xFF);
        hh = (int)(b >> 16 & 0xFF);
    }
    mi = (int)(b >> 32 & 0xFF);
    ss = (int)(b >> 48 & 0xFF);
    if (cdr_time_make(y, mo, d, hh, mi, ss, &t) != CDR_OK)
        return -1;
    if (p->tfix_tz) {
        int rr = tz_tail(v + L, n - L, &off);
        if (rr)
            return rr;
    }
    *tp = t;
    *offp = off;
    *has_offp = p->tfix_tz;
    return 0;
}
#endif

/* Fixed widths: each field by its position. */
PF_STEP pf_time_fixed(const cdr_profile *p, const char *v, size_t n, cdr_time *tp,
                      int32_t *offp, int *has_offp)
{
    cdr_time t;
    int32_t off = 0;
    size_t L = (size_t)p->tfix_len;
    if (n < L || (!p->tfix_tz && n != L))
        return -1;
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (p->tdig)
        return pf_time_digits(p, v, n, L, tp, offp, has_offp);
#endif
    /* two digits a field (a 4-digit year is two: its century in
     * slot 0), each into its slot: one loop body, no branch */
    unsigned val[8] = {0, 0, 0, 0, 0, 0, 0, 0}, bad = 0;
    if (p->tw_n) { /* as words: every digit and literal checked at once */
        uint64_t w[3];
        uint64_t nd = 0;
        for (int k = 0; k < 3; k++) { /* 3: a loop the compiler unrolls */
            memcpy(&w[k], v + p->tw_off[k], 8);
            uint64_t dm = p->tw_dig[k];
            /* a digit where dm says, '0' elsewhere: then cdr_nondigit8 */
            uint64_t x = (w[k] & dm) | (0x3030303030303030ull & ~dm);
            nd |= (((x & 0xF0F0F0F0F0F0F0F0ull) ^ 0x3030303030303030ull) |
                   (((x & 0x0F0F0F0F0F0F0F0Full) + 0x0606060606060606ull) &
                    0xF0F0F0F0F0F0F0F0ull)) |
                  ((w[k] & p->tw_lit[k]) ^ p->tw_val[k]);
            /* digits 0..9 in each byte; then in byte b the number of
             * the digits b, b + 1 (at most 99: no carry between bytes) */
            uint64_t d = w[k] & 0x0F0F0F0F0F0F0F0Full;
            w[k] = d * 10 + (d >> 8);
        }
        if (nd)
            return -1;
        for (int k = 0; k < 8; k++)
            val[p->twf[k].slot] = (unsigned)(w[p->twf[k].w] >> p->twf[k].sh) & 0xFF;
    } else {
        for (int k = 0; k < p->tl_n; k++)
            if (v[p->tl[k].pos] != p->tl[k].c)
                return -1;
        for (int k = 0; k < p->tf_n; k++) {
            const unsigned char *u = (const unsigned char *)v + p->tf[k].pos;
            unsigned a = u[0] - 48u, b = u[1] - 48u;
            bad |= (a > 9) | (b > 9);
            val[p->tf[k].op] = a * 10 + b;
        }
        if (bad)
            return -1;
    }
    if (p->tfix_tz) {
        int rr = tz_tail(v + L, n - L, &off);
        if (rr)
            return rr;
    }
    int y = (int)(val[TF_CENTURY] * 100 + val[TF_YEAR]) + (p->t_y2 ? 2000 : 0);
    if (cdr_time_make(y, (int)val[TF_MON], (int)val[TF_DAY], (int)val[TF_H],
                      (int)val[TF_MI], (int)val[TF_S], &t) != CDR_OK)
        return -1;
    *tp = t;
    *offp = off;
    *has_offp = p->tfix_tz;
    return 0;
}

/* Any other format: its fields and literals in turn (p->tops). */
PF_STEP pf_time_ops(const cdr_profile *p, const char *v, size_t n, cdr_time *tp, int32_t *offp,
                    int *has_offp)
{
    cdr_time t;
    int32_t off = 0;
    int has_off = 0;
    int y = 0, mo = 0, d = 0, hh = 0, mi = 0, ss = 0;
    size_t i = 0;
    for (int k = 0; k < p->ntops; k++) {
        const pf_top *o = &p->tops[k];
        int r = 0;
        switch (o->op) {
        case TO_LIT:
            if (i >= n || v[i] != o->c)
                return -1;
            i++;
            break;
        case TO_Y4: r = digits_at(v, n, &i, 4, &y); break;
        case TO_Y2:
            r = digits_at(v, n, &i, 2, &y);
            y += 2000;
            break;
        case TO_MON: r = digits_at(v, n, &i, 2, &mo); break;
        case TO_DAY: r = digits_at(v, n, &i, 2, &d); break;
        case TO_H: r = digits_at(v, n, &i, 2, &hh); break;
        case TO_MI: r = digits_at(v, n, &i, 2, &mi); break;
        case TO_S: r = digits_at(v, n, &i, 2, &ss); break;
        case TO_FRAC: {
            size_t s0 = i;
            while (i < n && i - s0 < 9 && (unsigned)((unsigned char)v[i] - '0') <= 9)
                i++;
            if (i == s0)
                return -1;
            break;
        }
        case TO_TZ: {
            /* Z, or a sign and 2 or 4 digits, with or without ':' */
            size_t e = i;
            if (e < n && (v[e] == 'Z' || v[e] == 'z')) {
                e++;
            } else {
                if (e < n && (v[e] == '+' || v[e] == '-'))
                    e++;
                else
                    return -1;
                while (e < n && e - i < 6 && ((unsigned)((unsigned char)v[e] - '0') <= 9 || v[e] == ':'))
                    e++;
            }
            int rr = cdr_pf_utc_offset(v + i, e - i, &off);
            if (rr)
                return rr;
            has_off = 1;
            i = e;
            break;
        }
        }
        if (r)
            return -1;
    }
    if (i != n)
        return -1;
    if (cdr_time_make(y, mo, d, hh, mi, ss, &t) != CDR_OK)
        return -1;
    *tp = t;
    *offp = off;
    *has_offp = has_off;
    return 0;
}

int cdr_pf_time(const cdr_profile *p, const char *v, size_t n, const char *tz, size_t tzn,
                cdr_time *out)
{
    cdr_time t;
    int32_t off = 0;
    int has_off = 0, r;
    if (n == 0)
        return -1;
    switch (p->tkind) {
    case PT_CONTRACT:
        if (cdr_time_parse(v, n, &t) != CDR_OK)
            return -1;
        break;
    case PT_EPOCH:
    case PT_EPOCH_MS:
        return pf_time_epoch(p, v, n, out);
    default:
        r = p->tfix ? pf_time_fixed(p, v, n, &t, &off, &has_off)
                    : pf_time_ops(p, v, n, &t, &off, &has_off);
        if (r)
            return r;
        break;
    }
    if (p->f[PF_UTC].kind != PK_NONE) {
        if (cdr_pf_utc_offset(tz, tzn, &off))
            return -3;
        has_off = 1;
    }
    if (has_off) {
        t = t - off + p->local_off;
        if (t < T_MIN || t >= T_END)
            return -2;
    }
    *out = t;
    return 0;
}

int cdr_pf_money(const cdr_profile *p, const char *v, size_t n, cdr_money *out)
{
    cdr_money m;
    cdr_err e = cdr_money_parse(v, n, &m);
    if (e == CDR_E_RANGE)
        return -2;
    if (e != CDR_OK)
        return -1;
    if (p->money_shift) {
        int64_t k = p->money_shift == 1 ? 10 : 100;
        if (m % k != 0)
            return -2; /* finer than a micro-yuan */
        m /= k;
    }
    *out = m;
    return 0;
}

static int is_mobile11(const char *s, size_t n)
{
    return n == 11 && s[0] == '1';
}

int cdr_pf_number(const cdr_profile *p, const char *s, size_t n, cdr_str *out)
{
    if (p->trunk_n && n == p->trunk_n + 11 && memcmp(s, p->trunk, p->trunk_n) == 0 &&
        is_mobile11(s + p->trunk_n, 11)) {
        s += p->trunk_n;
        n -= p->trunk_n;
    } else if (p->cc_n && !(p->cc_n == 2 && p->cc[0] == '8' && p->cc[1] == '6')) {
        /* another country code than the contract's 86: +CC, 00CC or CC */
        size_t k = n > 0 && s[0] == '+' ? 1 : n > 1 && s[0] == '0' && s[1] == '0' ? 2 : 0;
        if (n == k + p->cc_n + 11 && memcmp(s + k, p->cc, p->cc_n) == 0 &&
            is_mobile11(s + k + p->cc_n, 11)) {
            s += k + p->cc_n;
            n -= k + p->cc_n;
        }
    }
    return cdr_number_normalise(s, n, out) == CDR_OK ? 0 : -1;
}

static unsigned type_slot(uint64_t w)
{
    return (unsigned)((w * 0x9E3779B97F4A7C15ull) >> 56); /* 8 bits: PF_TYPE_HASH */
}

const pf_type *cdr_pf_type(const cdr_profile *p, const char *v, size_t n)
{
    if (p->type_by_word) {
        if (n == 0 || n > 8)
            return NULL;
        /* the key as a word, hashed; at most 64 of 256 slots are used, so a
         * probe or two (a loop over every key was a fifth of a row's time) */
        uint64_t w = cdr_tail_word((const unsigned char *)v, n, n) | (uint64_t)n << 56;
        for (unsigned h = type_slot(w);; h = (h + 1) % PF_TYPE_HASH) {
            int i = p->type_hash[h];
            if (i < 0)
                return NULL;
            if (p->type_word[i] == w)
                return &p->types[i];
        }
    }
    for (int i = 0; i < p->ntypes; i++)
        if (p->types[i].n == n && memcmp(p->types[i].key, v, n) == 0)
            return &p->types[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The parser                                                           */

typedef struct ps {
    cdr_profile *p;
    const char *name;
    int line;
    char *err;
    size_t errlen;
    cdr_err rc;
    int seen_line[64]; /* layout keys: where each was given */
} ps;

static int perr(ps *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(ps *s, const char *fmt, ...)
{
    if (s->rc != CDR_OK)
        return -1;
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (s->err && s->errlen) {
        if (s->line > 0)
            snprintf(s->err, s->errlen, "%s:%d: %s", s->name, s->line, m);
        else
            snprintf(s->err, s->errlen, "%s: %s", s->name, m);
    }
    s->rc = CDR_E_PROFILE;
    return -1;
}

static int nomem(ps *s)
{
    if (s->rc == CDR_OK) {
        if (s->err && s->errlen)
            snprintf(s->err, s->errlen, "%s: out of memory", s->name);
        s->rc = CDR_E_NOMEM;
    }
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A value shown in a message: at most 40 bytes, control bytes as '?'. */
static const char *shown(const char *p, size_t n, char *buf, size_t cap)
{
    size_t k = n < cap - 4 ? n : cap - 4;
    if (k > 40)
        k = 40;
    for (size_t i = 0; i < k; i++)
        buf[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
    if (k < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

static int word_is(const char *v, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(v, w, n) == 0;
}

/* A double-quoted string at v (v[0] == '"'): its content, "" = one quote,
 * into a new allocation; *used = bytes taken. -1 if unterminated. */
static int quoted(ps *s, const char *v, size_t n, char **out, size_t *outn, size_t *used)
{
    char *b = malloc(n + 1);
    if (!b)
        return nomem(s);
    size_t k = 0, i = 1;
    for (;;) {
        if (i >= n) {
            free(b);
            return perr(s, "unterminated \"...\" string");
        }
        if (v[i] == '"') {
            if (i + 1 < n && v[i + 1] == '"') {
                b[k++] = '"';
                i += 2;
                continue;
            }
            i++;
            break;
        }
        b[k++] = v[i++];
    }
    b[k] = '\0';
    *out = b;
    *outn = k;
    *used = i;
    return 0;
}

static int bare_char(char c, int first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

/* One column reference at v: NAME, [any name], $N, with an optional '?'.
 * *used = bytes taken; -1 on error (reported). */
static int parse_ref(ps *s, const char *v, size_t n, pf_ref *r, size_t *used)
{
    char b[64];
    size_t i = 0;
    memset(r, 0, sizeof *r);
    if (n > 0 && v[0] == '$') {
        i = 1;
        long x = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9' && x <= 100000)
            x = x * 10 + (v[i++] - '0');
        if (i == 1 || x < 1 || x > 4096)
            return perr(s, "bad column index '%s' (want $1 .. $4096)", shown(v, n, b, sizeof b));
        r->index = (int)x - 1;
    } else if (n > 0 && v[0] == '[') {
        const char *e = memchr(v, ']', n);
        if (!e)
            return perr(s, "unterminated [column name]");
        if (e == v + 1)
            return perr(s, "empty [column name]");
        if (!(r->name = cdr_memdupz(v + 1, (size_t)(e - v - 1))))
            return nomem(s);
        r->name_n = (size_t)(e - v - 1);
        i = (size_t)(e - v) + 1;
    } else if (n > 0 && bare_char(v[0], 1)) {
        while (i < n && bare_char(v[i], 0))
            i++;
        if (!(r->name = cdr_memdupz(v, i)))
            return nomem(s);
        r->name_n = i;
    } else {
        return perr(s, "expected a column (NAME, [NAME] or $N) or a \"constant\" at '%s'",
                    shown(v, n, b, sizeof b));
    }
    if (i < n && v[i] == '?') {
        r->optional = 1;
        i++;
    }
    *used = i;
    return 0;
}

static void free_field(pf_field *f)
{
    for (int i = 0; i < f->nref; i++)
        free(f->ref[i].name);
    free(f->konst);
    memset(f, 0, sizeof *f);
}

/* Which fields may be built how. */
static int numeric_field(int fld)
{
    return fld == CDR_PF_DURATION_S || fld == CDR_PF_BYTES || fld == CDR_PF_SMS_CHARS ||
           fld == CDR_PF_BILLED;
}

/* FIELD = source: a constant, or references joined by one operator. */
static int parse_source(ps *s, int fld, const char *v, size_t n)
{
    pf_field *f = &s->p->f[fld];
    char b[64];
    if (n == 0)
        return perr(s, "%s: empty value (want a column, a \"constant\" or columns joined "
                       "by + & |)", pf_names[fld]);
    if (v[0] == '"') {
        size_t used;
        if (quoted(s, v, n, &f->konst, &f->konst_n, &used))
            return -1;
        if (used != n)
            return perr(s, "%s: text after the constant: '%s'", pf_names[fld],
                        shown(v + used, n - used, b, sizeof b));
        if (fld == CDR_PF_RECORD_TYPE || fld == PF_UTC)
            return perr(s, "%s must be a column, not a constant", pf_names[fld]);
        f->kind = PK_CONST;
        return 0;
    }
    size_t i = 0;
    char op = 0;
    for (;;) {
        if (f->nref == PF_MAXREF)
            return perr(s, "%s: more than %d columns", pf_names[fld], PF_MAXREF);
        size_t used = 0;
        if (parse_ref(s, v + i, n - i, &f->ref[f->nref], &used))
            return -1;
        f->nref++;
        i += used;
        while (i < n && is_blank(v[i]))
            i++;
        if (i == n)
            break;
        char c = v[i];
        if (c != '+' && c != '&' && c != '|')
            return perr(s, "%s: unexpected '%s' (columns are joined by + (sum), & (date and "
                           "time) or | (first non-empty))",
                        pf_names[fld], shown(v + i, n - i, b, sizeof b));
        if (op && c != op)
            return perr(s, "%s: '%c' and '%c' mixed in one value", pf_names[fld], op, c);
        op = c;
        i++;
        while (i < n && is_blank(v[i]))
            i++;
        if (i == n)
            return perr(s, "%s: a column is missing after '%c'", pf_names[fld], op);
    }
    if (!op) {
        f->kind = PK_COL;
    } else if (op == '+') {
        if (!numeric_field(fld))
            return perr(s, "%s: a sum (+) is only for duration_s, bytes, sms_chars and billed",
                        pf_names[fld]);
        f->kind = PK_SUM;
    } else if (op == '&') {
        if (fld != CDR_PF_START_TIME || f->nref != 2)
            return perr(s, "%s: '&' joins exactly two columns of start_time (a date and a "
                           "time)", pf_names[fld]);
        f->kind = PK_PAIR;
    } else {
        if (fld == CDR_PF_RECORD_TYPE || fld == PF_UTC)
            return perr(s, "%s must be one column", pf_names[fld]);
        f->kind = PK_FIRST;
    }
    return 0;
}

/* A start_time.format pattern into its steps (p->tops), each code counted
 * in count[] (at most once). */
static int time_steps(ps *s, const char *v, size_t n, int count[TO_TZ + 1])
{
    cdr_profile *p = s->p;
    char b[64];
    p->ntops = 0;
    for (size_t i = 0; i < n; i++) {
        pf_top o = {TO_LIT, 0};
        if (v[i] != '%') {
            o.c = v[i];
        } else {
            if (++i == n)
                return perr(s, "start_time.format: '%%' at the end (write %%%% for a percent "
                               "sign)");
            switch (v[i]) {
            case 'Y': o.op = TO_Y4; break;
            case 'y': o.op = TO_Y2; break;
            case 'm': o.op = TO_MON; break;
            case 'd': o.op = TO_DAY; break;
            case 'H': o.op = TO_H; break;
            case 'M': o.op = TO_MI; break;
            case 'S': o.op = TO_S; break;
            case 'f': o.op = TO_FRAC; break;
            case 'z': o.op = TO_TZ; break;
            case '%': o.c = '%'; break;
            default:
                return perr(s, "start_time.format: unknown code '%%%s' (known: %%Y %%y %%m %%d "
                               "%%H %%M %%S %%f %%z %%%%, or epoch, epoch_ms, contract)",
                            shown(v + i, 1, b, sizeof b));
            }
        }
        if (o.op != TO_LIT && count[o.op]++)
            return perr(s, "start_time.format: '%%%c' twice", v[i]);
        if (p->ntops == PF_MAXTOPS)
            return perr(s, "start_time.format: more than %d steps", PF_MAXTOPS);
        p->tops[p->ntops++] = o;
    }
    return 0;
}

/* A pattern of fixed widths (every step but %f, and %z only at the end):
 * its literals (p->tl) and two-digit fields (p->tf) by position. */
static void time_fixed_layout(cdr_profile *p, int has_frac)
{
    p->tfix = !has_frac && (!p->t_tz || p->tops[p->ntops - 1].op == TO_TZ);
    int pos = 0;
    for (int k = 0; k < p->ntops && p->tfix; k++) {
        const pf_top *o = &p->tops[k];
        if (o->op == TO_TZ) {
            p->tfix_tz = 1;
        } else if (o->op == TO_LIT) {
            p->tl[p->tl_n].pos = (unsigned char)pos;
            p->tl[p->tl_n++].c = o->c;
            pos++;
        } else {
            static const unsigned char slot[] = {[TO_Y2] = TF_YEAR, [TO_MON] = TF_MON,
                                                 [TO_DAY] = TF_DAY, [TO_H] = TF_H,
                                                 [TO_MI] = TF_MI, [TO_S] = TF_S};
            if (o->op == TO_Y4) { /* century and year: two 2-digit fields */
                p->tf[p->tf_n].op = TF_CENTURY;
                p->tf[p->tf_n++].pos = (unsigned char)pos;
                p->tf[p->tf_n].op = TF_YEAR;
                p->tf[p->tf_n++].pos = (unsigned char)(pos + 2);
                pos += 4;
            } else {
                p->tf[p->tf_n].op = slot[o->op];
                p->tf[p->tf_n++].pos = (unsigned char)pos;
                pos += 2;
            }
        }
    }
    p->tfix_len = pos;
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The commonest CDR stamps: digits only, year to second (3GPP's
 * YYMMDDhhmmss, switches' YYYYMMDDhhmmss), maybe with an offset: read
 * by cdr_pf_time as two 8-byte words (p->tdig). */
static void time_digits(cdr_profile *p)
{
    static const unsigned char y2[] = {TO_Y2, TO_MON, TO_DAY, TO_H, TO_MI, TO_S},
                               y4[] = {TO_Y4, TO_MON, TO_DAY, TO_H, TO_MI, TO_S};
    int k = p->ntops - (p->t_tz ? 1 : 0), same2 = k == 6, same4 = k == 6;
    for (int i = 0; i < 6 && k == 6; i++) {
        same2 &= p->tops[i].op == y2[i];
        same4 &= p->tops[i].op == y4[i];
    }
    if (p->tfix && (same2 || same4))
        p->tdig = same2 ? 12 : 14;
}

/* A fixed-width stamp of 8 to 24 bytes as up to three 8-byte words, every
 * digit and literal checked at once (p->tw_*: the words of docs in
 * profile_int.h). */
static void time_words(cdr_profile *p)
{
    int pos = p->tfix_len;
    if (p->tfix && pos >= 8 && pos <= 24) { /* the words of docs in profile_int.h */
        int nw = (pos + 7) / 8;
        int base[3];
        for (int w = 0; w < nw; w++)
            p->tw_off[w] = (unsigned)(base[w] = w == nw - 1 ? pos - 8 : 8 * w);
        for (int k = 0; k < 8; k++)
            p->twf[k].slot = TF_NONE; /* the unused entries */
        /* a byte belongs to the first word that holds it */
#define WORD_OF(q) ((q) < 8 * (nw - 1) ? (q) / 8 : nw - 1)
        for (int k = 0; k < p->tl_n; k++) {
            int q = p->tl[k].pos, w = WORD_OF(q), at = q - base[w];
            p->tw_lit[w] |= 0xFFull << (8 * at);
            p->tw_val[w] |= (uint64_t)(unsigned char)p->tl[k].c << (8 * at);
        }
        int ok = 1;
        for (int k = 0; k < p->tf_n; k++) {
            /* a number: the first word that holds both its digits */
            int q = p->tf[k].pos, w = 0;
            while (w < nw && !(base[w] <= q && q + 1 < base[w] + 8))
                w++;
            if (w == nw) { /* none: the pattern is read by bytes */
                ok = 0;
                break;
            }
            int at = q - base[w];
            p->tw_dig[w] |= 0xFFFFull << (8 * at);
            p->twf[k].slot = p->tf[k].op;
            p->twf[k].w = (unsigned char)w;
            p->twf[k].sh = (unsigned char)(8 * at);
        }
#undef WORD_OF
        p->tw_n = ok ? nw : 0;
    }
}
#endif

static int parse_time_format(ps *s, const char *v, size_t n)
{
    cdr_profile *p = s->p;
    char b[64];
    if (n >= sizeof p->tfmt)
        return perr(s, "start_time.format: longer than %zu bytes", sizeof p->tfmt - 1);
    memcpy(p->tfmt, v, n);
    p->tfmt[n] = '\0';
    if (word_is(v, n, "epoch")) {
        p->tkind = PT_EPOCH;
        return 0;
    }
    if (word_is(v, n, "epoch_ms")) {
        p->tkind = PT_EPOCH_MS;
        return 0;
    }
    if (word_is(v, n, "contract")) {
        p->tkind = PT_CONTRACT;
        return 0;
    }
    int count[TO_TZ + 1] = {0};
    int r = time_steps(s, v, n, count);
    if (r)
        return r;
    if (count[TO_Y4] && count[TO_Y2])
        return perr(s, "start_time.format: both %%Y and %%y");
    if (!(count[TO_Y4] || count[TO_Y2]) || !count[TO_MON] || !count[TO_DAY] || !count[TO_H] ||
        !count[TO_MI])
        return perr(s, "start_time.format: '%s' lacks a year, month, day, hour or minute "
                       "(%%Y or %%y, %%m, %%d, %%H, %%M)",
                    shown(v, n, b, sizeof b));
    p->t_tz = count[TO_TZ] > 0;
    p->t_y2 = count[TO_Y2] > 0;
    p->tkind = PT_PATTERN;
    time_fixed_layout(p, count[TO_FRAC]);
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    time_digits(p);
    time_words(p);
#endif
    return 0;
}

static int parse_type_line(ps *s, const char *k, size_t kn, const char *v, size_t vn)
{
    cdr_profile *p = s->p;
    char b[64];
    if (p->ntypes == PF_MAXTYPE)
        return perr(s, "more than %d type lines", PF_MAXTYPE);
    pf_type *t = &p->types[p->ntypes];
    memset(t, 0, sizeof *t);
    if (kn > 0 && k[0] == '"') {
        size_t used;
        if (quoted(s, k, kn, &t->key, &t->n, &used))
            return -1;
        if (used != kn)
            return perr(s, "type: text after the quoted value");
    } else {
        for (size_t i = 0; i < kn; i++)
            if (is_blank(k[i]))
                return perr(s, "type '%s': a value with blanks must be quoted",
                            shown(k, kn, b, sizeof b));
        if (!(t->key = cdr_memdupz(k, kn)))
            return nomem(s);
        t->n = kn;
    }
    p->ntypes++;
    if (t->n == 0)
        return perr(s, "type: the value is empty");
    t->line = s->line;
    for (int i = 0; i < p->ntypes - 1; i++)
        if (p->types[i].n == t->n && memcmp(p->types[i].key, t->key, t->n) == 0)
            return perr(s, "type '%s' is given twice (first at line %d)",
                        shown(t->key, t->n, b, sizeof b), p->types[i].line);
    /* value: skip | SERVICE [DIRECTION] */
    size_t a = 0;
    while (a < vn && !is_blank(v[a]))
        a++;
    size_t c = a;
    while (c < vn && is_blank(v[c]))
        c++;
    t->direction = -1;
    if (word_is(v, a, "skip")) {
        if (c < vn)
            return perr(s, "type '%s': nothing may follow skip", shown(t->key, t->n, b, sizeof b));
        t->skip = 1;
        return 0;
    }
    cdr_service sv;
    if (cdr_service_parse(v, a, &sv) != CDR_OK)
        return perr(s, "type '%s': '%s' is not voice, sms, data, vas or skip",
                    shown(t->key, t->n, b, sizeof b), shown(v, a, b + 32, 32));
    t->service = (int)sv;
    if (c < vn) {
        cdr_direction d;
        if (c == vn || cdr_direction_parse(v + c, vn - c, &d) != CDR_OK)
            return perr(s, "type '%s': '%s' is not mo or mt", shown(t->key, t->n, b, sizeof b),
                        shown(v + c, vn - c, b + 32, 32));
        t->direction = (int)d;
    }
    return 0;
}

static int digit_string(const char *v, size_t n, size_t lo, size_t hi)
{
    if (n < lo || n > hi)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* Layout and other single keys: index into seen_line. */
static const char *const layout_keys[] = {
    "separator", "quote", "header", "columns", "record_type", "local_utc_offset",
    "number.country_code", "number.trunk_prefix", "number.imsi_prefix", "start_time.format",
    "start_time.utc_offset", "duration_s.unit", "bytes.unit", "billed.unit", "name",
    "description"};
#define N_LAYOUT_KEYS (sizeof layout_keys / sizeof *layout_keys)

/* skip_prefix: a line prefix (quoted, or the value as it is) whose
 * lines are skipped. */
static int parse_skip_prefix(ps *s, const char *v, size_t vn)
{
    cdr_profile *p = s->p;
    if (p->n_skip == PF_MAXSKIP)
        return perr(s, "more than %d skip_prefix lines", PF_MAXSKIP);
    char *t;
    size_t tn, used;
    if (vn > 0 && v[0] == '"') {
        if (quoted(s, v, vn, &t, &tn, &used))
            return -1;
        if (used != vn) {
            free(t);
            return perr(s, "skip_prefix: text after the quoted prefix");
        }
    } else {
        if (!(t = cdr_memdupz(v, vn)))
            return nomem(s);
        tn = vn;
    }
    p->skip[p->n_skip] = t;
    p->skip_n[p->n_skip++] = tn;
    if (tn == 0)
        return perr(s, "skip_prefix: empty (it would skip every line)");
    return 0;
}

/* A value of lo to hi digits into dst (a number.* key); else the error,
 * with note after what it is not. */
static int set_digits(ps *s, const char *kw, const char *v, size_t vn, int lo, int hi,
                      const char *note, char *dst, size_t *dst_n)
{
    char b[64];
    if (!digit_string(v, vn, lo, hi))
        return perr(s, "%s: '%s' is not %d to %d digits%s", kw, shown(v, vn, b, sizeof b), lo,
                    hi, note);
    memcpy(dst, v, vn);
    *dst_n = vn;
    return 0;
}

/* A key's value as one of its words (word_is), into *out; else the
 * error, saying what the value is not. */
typedef struct word_val {
    const char *word;
    int val;
} word_val;
#define N_WORDS(w) (sizeof(w) / sizeof *(w))

static int pick_word(ps *s, const char *kw, const char *v, size_t vn, const word_val *w, size_t n,
                     const char *expect, int *out)
{
    char b[64];
    for (size_t i = 0; i < n; i++)
        if (word_is(v, vn, w[i].word)) {
            *out = w[i].val;
            return 0;
        }
    return perr(s, "%s: '%s' is not %s", kw, shown(v, vn, b, sizeof b), expect);
}

/* One of the layout keys (layout_keys[]: separator, quote, header, units
 * and the like): kw, seen for the first time. */
static int parse_layout_key(ps *s, const char *kw, const char *v, size_t vn)
{
    cdr_profile *p = s->p;
    char b[64];
    int x = 0;
    if (!strcmp(kw, "separator")) {
        static const word_val w[] = {{",", ','}, {"comma", ','},     {"|", '|'},   {"pipe", '|'},
                                     {";", ';'}, {"semicolon", ';'}, {"tab", '\t'}, {"\t", '\t'}};
        if (pick_word(s, kw, v, vn, w, N_WORDS(w), "one of , | ; tab", &x))
            return -1;
        p->sep = (char)x;
    } else if (!strcmp(kw, "quote")) {
        static const word_val w[] = {{"\"", '"'}, {"double", '"'}, {"none", 0}};
        if (pick_word(s, kw, v, vn, w, N_WORDS(w), "\" or none", &x))
            return -1;
        p->quote = (char)x;
    } else if (!strcmp(kw, "header")) {
        static const word_val w[] = {{"yes", 1}, {"no", 0}};
        if (pick_word(s, kw, v, vn, w, N_WORDS(w), "yes or no", &p->header))
            return -1;
    } else if (!strcmp(kw, "columns")) {
        if (!digit_string(v, vn, 1, 4) || atoi(v) < 1 || atoi(v) > 4096)
            return perr(s, "columns: '%s' is not a number 1..4096", shown(v, vn, b, sizeof b));
        p->columns = atoi(v);
    } else if (!strcmp(kw, "record_type")) {
        p->f[CDR_PF_RECORD_TYPE].line = s->line;
        return parse_source(s, CDR_PF_RECORD_TYPE, v, vn);
    } else if (!strcmp(kw, "local_utc_offset")) {
        if (cdr_pf_utc_offset(v, vn, &p->local_off) != 0 || (vn == 1))
            return perr(s, "local_utc_offset: '%s' is not +HH:MM (e.g. +08:00)",
                        shown(v, vn, b, sizeof b));
        p->has_local = 1;
    } else if (!strcmp(kw, "number.country_code")) {
        return set_digits(s, kw, v, vn, 1, 4, "", p->cc, &p->cc_n);
    } else if (!strcmp(kw, "number.trunk_prefix")) {
        return set_digits(s, kw, v, vn, 1, 4, "", p->trunk, &p->trunk_n);
    } else if (!strcmp(kw, "number.imsi_prefix")) {
        return set_digits(s, kw, v, vn, 3, 6, " (a mobile country code, e.g. 460)", p->imsi_pfx,
                          &p->imsi_pfx_n);
    } else if (!strcmp(kw, "start_time.format")) {
        p->f[CDR_PF_START_TIME].opt_line = s->line;
        return parse_time_format(s, v, vn);
    } else if (!strcmp(kw, "start_time.utc_offset")) {
        p->f[PF_UTC].line = s->line;
        return parse_source(s, PF_UTC, v, vn);
    } else if (!strcmp(kw, "duration_s.unit")) {
        static const word_val w[] = {{"s", 0}, {"ms", 1}};
        p->f[CDR_PF_DURATION_S].opt_line = s->line;
        return pick_word(s, kw, v, vn, w, N_WORDS(w), "s or ms", &p->dur_ms);
    } else if (!strcmp(kw, "bytes.unit")) {
        static const word_val w[] = {{"B", 0}, {"bytes", 0}, {"KB", 1}};
        p->f[CDR_PF_BYTES].opt_line = s->line;
        return pick_word(s, kw, v, vn, w, N_WORDS(w), "bytes or KB", &p->bytes_kb);
    } else if (!strcmp(kw, "billed.unit")) {
        static const word_val w[] = {{"yuan", 0}, {"jiao", 1}, {"fen", 2}};
        p->f[CDR_PF_BILLED].opt_line = s->line;
        return pick_word(s, kw, v, vn, w, N_WORDS(w), "yuan, jiao or fen", &p->money_shift);
    }
    /* name, description: free text */
    return 0;
}

static int parse_line(ps *s, const char *k, size_t kn, const char *v, size_t vn)
{
    cdr_profile *p = s->p;
    char b[64];
    if (kn > 4 && strncmp(k, "type", 4) == 0 && is_blank(k[4])) {
        size_t i = 4;
        while (i < kn && is_blank(k[i]))
            i++;
        return parse_type_line(s, k + i, kn - i, v, vn);
    }
    if (word_is(k, kn, "skip_prefix"))
        return parse_skip_prefix(s, v, vn);
    /* contract fields and imsi */
    for (int fld = 0; fld < CDR_PF__COUNT; fld++) {
        if (fld == CDR_PF_RECORD_TYPE || !word_is(k, kn, pf_names[fld]))
            continue;
        if (p->f[fld].line)
            return perr(s, "%s is given twice (first at line %d)", pf_names[fld], p->f[fld].line);
        p->f[fld].line = s->line;
        return parse_source(s, fld, v, vn);
    }
    size_t key = 0;
    while (key < N_LAYOUT_KEYS && !word_is(k, kn, layout_keys[key]))
        key++;
    if (key == N_LAYOUT_KEYS)
        return perr(s, "unknown key '%s' (fields: record_id, msisdn, service, direction, peer, "
                       "start_time, duration_s, bytes, sms_chars, sms_ref, sms_part, sms_parts, "
                       "call_id, partial_seq, billed, imsi; see docs/profiles.md for the rest)",
                    shown(k, kn, b, sizeof b));
    if (s->seen_line[key])
        return perr(s, "%s is given twice (first at line %d)", layout_keys[key],
                    s->seen_line[key]);
    s->seen_line[key] = s->line;
    return parse_layout_key(s, layout_keys[key], v, vn);
}

/* A constant field checked as the reader would convert it. */
static int check_constant(ps *s, int fld)
{
    cdr_profile *p = s->p;
    pf_field *f = &p->f[fld];
    const char *v = f->konst;
    size_t n = f->konst_n;
    char b[64];
    int bad = 0;
    cdr_str o;
    s->line = f->line;
    switch (fld) {
    case CDR_PF_RECORD_ID:
        bad = n == 0;
        break;
    case CDR_PF_MSISDN:
    case CDR_PF_PEER:
        bad = n > 0 && fld == CDR_PF_MSISDN && cdr_pf_number(p, v, n, &o) != 0;
        break;
    case CDR_PF_SERVICE: {
        cdr_service sv;
        bad = cdr_service_parse(v, n, &sv) != CDR_OK;
        break;
    }
    case CDR_PF_DIRECTION: {
        cdr_direction d;
        bad = cdr_direction_parse(v, n, &d) != CDR_OK;
        break;
    }
    case CDR_PF_START_TIME: {
        cdr_time t;
        bad = p->f[PF_UTC].kind != PK_NONE || cdr_pf_time(p, v, n, "", 0, &t) != 0;
        break;
    }
    case CDR_PF_DURATION_S:
    case CDR_PF_BYTES:
    case CDR_PF_SMS_CHARS:
    case CDR_PF_SMS_PART:
    case CDR_PF_SMS_PARTS:
    case CDR_PF_PARTIAL_SEQ:
        bad = n > 0 && !digit_string(v, n, 1, 15);
        break;
    case CDR_PF_BILLED: {
        cdr_money m;
        bad = cdr_pf_money(p, v, n, &m) != 0 || m < 0;
        break;
    }
    default:
        break;
    }
    if (bad)
        return perr(s, "%s: the constant \"%s\" is not a valid %s", pf_names[fld],
                    shown(v, n, b, sizeof b), pf_names[fld]);
    return 0;
}

/* Checks of the whole profile, after its last line. */
/* The required fields, and the service from either service or the record
 * types (with at least one type not skipped). */
static int check_fields(ps *s)
{
    cdr_profile *p = s->p;
    static const int required[] = {CDR_PF_RECORD_ID, CDR_PF_MSISDN, CDR_PF_START_TIME,
                                   CDR_PF_BILLED};
    s->line = 0;
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (p->f[required[i]].kind == PK_NONE)
            return perr(s, "%s is not mapped (required: record_id, msisdn, start_time, billed, "
                           "and service or record_type)",
                        pf_names[required[i]]);
    if (p->ntypes > 0 && p->f[CDR_PF_RECORD_TYPE].kind == PK_NONE) {
        s->line = p->types[0].line;
        return perr(s, "type lines need record_type = COLUMN");
    }
    if (p->f[CDR_PF_SERVICE].kind == PK_NONE && p->f[CDR_PF_RECORD_TYPE].kind == PK_NONE)
        return perr(s, "service is not mapped: give service = COLUMN, or record_type = COLUMN "
                       "with type lines");
    if (p->f[CDR_PF_SERVICE].kind != PK_NONE && p->f[CDR_PF_RECORD_TYPE].kind != PK_NONE) {
        s->line = p->f[CDR_PF_SERVICE].line;
        return perr(s, "service and record_type are both given (line %d): the type lines "
                       "give the service",
                    p->f[CDR_PF_RECORD_TYPE].line);
    }
    if (p->f[CDR_PF_RECORD_TYPE].kind != PK_NONE && p->ntypes == 0) {
        s->line = p->f[CDR_PF_RECORD_TYPE].line;
        return perr(s, "record_type needs type lines (type VALUE = SERVICE [DIRECTION] or "
                       "skip)");
    }
    if (p->ntypes > 0) {
        int rated = 0;
        for (int i = 0; i < p->ntypes; i++)
            rated |= !p->types[i].skip;
        if (!rated) {
            s->line = p->types[0].line;
            return perr(s, "every type line says skip: no record would be read");
        }
    }
    return 0;
}

/* Options without their field, and the UTC offsets: a zone from one
 * place only, and the operator's own offset whenever one is given. */
static int check_times(ps *s)
{
    cdr_profile *p = s->p;
    static const struct { int fld; const char *opt; } opts[] = {
        {CDR_PF_DURATION_S, "duration_s.unit"}, {CDR_PF_BYTES, "bytes.unit"},
        {CDR_PF_BILLED, "billed.unit"}, {CDR_PF_START_TIME, "start_time.format"}};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (p->f[opts[i].fld].opt_line && p->f[opts[i].fld].kind == PK_NONE) {
            s->line = p->f[opts[i].fld].opt_line;
            return perr(s, "%s without %s", opts[i].opt, pf_names[opts[i].fld]);
        }
    /* UTC offsets */
    int needs_local = p->t_tz || p->f[PF_UTC].kind != PK_NONE || p->tkind == PT_EPOCH ||
                      p->tkind == PT_EPOCH_MS;
    if (p->f[PF_UTC].kind != PK_NONE && (p->t_tz || p->tkind == PT_EPOCH ||
                                         p->tkind == PT_EPOCH_MS)) {
        s->line = p->f[PF_UTC].line;
        return perr(s, "start_time.utc_offset: the format '%s' already says the offset",
                    p->tfmt);
    }
    if (needs_local && !p->has_local) {
        s->line = p->f[PF_UTC].line ? p->f[PF_UTC].line : p->f[CDR_PF_START_TIME].opt_line;
        return perr(s, "start_time is in UTC or carries a UTC offset: declare the operator's "
                       "own offset, e.g. local_utc_offset = +08:00 (CONTRACT.md: times are "
                       "operator-local)");
    }
    return 0;
}

/* Columns by name (with a header) or by index (within columns = N). */
static int check_columns(ps *s)
{
    cdr_profile *p = s->p;
    if (p->header && p->columns) {
        s->line = s->seen_line[3];
        return perr(s, "columns is only for header = no (the header says how many)");
    }
    if (!p->header && !p->columns)
        return perr(s, "header = no needs columns = N (the number of fields of a row)");
    for (int fld = 0; fld < PF__N; fld++) {
        pf_field *f = &p->f[fld];
        for (int i = 0; i < f->nref; i++) {
            s->line = f->line;
            if (!p->header && f->ref[i].name)
                return perr(s, "%s: column '%s' by name, but the profile says header = no "
                               "(use $N)", pf_names[fld], f->ref[i].name);
            if (!p->header && f->ref[i].optional)
                return perr(s, "%s: '?' (optional column) needs a header", pf_names[fld]);
            if (!p->header && f->ref[i].index >= p->columns)
                return perr(s, "%s: column $%d, but a row has %d columns", pf_names[fld],
                            f->ref[i].index + 1, p->columns);
        }
    }
    return 0;
}

/* The record types looked up as words when every key fits one. */
static void type_words(cdr_profile *p)
{
    p->type_by_word = p->ntypes > 0;
    memset(p->type_hash, -1, sizeof p->type_hash);
    for (int i = 0; i < p->ntypes; i++) {
        pf_type *t = &p->types[i];
        if (t->n > 8) {
            p->type_by_word = 0;
            continue;
        }
        p->type_word[i] = cdr_tail_word((const unsigned char *)t->key, t->n, t->n) |
                          (uint64_t)t->n << 56;
        unsigned h = type_slot(p->type_word[i]);
        while (p->type_hash[h] >= 0)
            h = (h + 1) % PF_TYPE_HASH;
        p->type_hash[h] = (signed char)i;
    }
}

static int check_profile(ps *s)
{
    cdr_profile *p = s->p;
    s->line = 0;
    if (check_fields(s) || check_times(s) || check_columns(s))
        return -1;
    for (int fld = 0; fld < CDR_PF__COUNT; fld++)
        if (p->f[fld].kind == PK_CONST && check_constant(s, fld))
            return -1;
    type_words(p);
    p->num_plain = !p->trunk_n && p->cc_n == 2 && p->cc[0] == '8' && p->cc[1] == '6';
    s->line = 0;
    return 0;
}

cdr_err cdr_profile_parse(const char *text, size_t n, const char *name, cdr_profile **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    ps s;
    memset(&s, 0, sizeof s);
    s.name = name ? name : "profile";
    s.err = err;
    s.errlen = errlen;
    cdr_profile *p = calloc(1, sizeof *p);
    if (!p) {
        nomem(&s);
        return s.rc;
    }
    s.p = p;
    p->sep = ',';
    p->quote = '"';
    p->header = 1;
    p->tkind = PT_CONTRACT;
    memcpy(p->cc, "86", 2);
    p->cc_n = 2;
    snprintf(p->tfmt, sizeof p->tfmt, "YYYY-MM-DD HH:MM:SS");
    if (!(p->path = cdr_memdupz(s.name, strlen(s.name)))) {
        nomem(&s);
        goto out;
    }
    cdr_sha256_once(text, n, p->sha);
    p->size = n;
    if (n > PF_MAXSIZE) {
        perr(&s, "larger than %u bytes: not a profile", PF_MAXSIZE);
        goto out;
    }
    if (memchr(text, '\0', n)) {
        perr(&s, "contains a NUL byte: not a text file");
        goto out;
    }
    size_t pos = 0;
    if (n >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
        (unsigned char)text[2] == 0xBF)
        pos = 3;
    while (pos < n && s.rc == CDR_OK) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', n - pos);
        size_t ln = nl ? (size_t)(nl - l) : n - pos;
        pos += ln + (nl ? 1 : 0);
        s.line++;
        if (ln > 0 && l[ln - 1] == '\r')
            ln--;
        while (ln > 0 && is_blank(*l)) {
            l++;
            ln--;
        }
        while (ln > 0 && is_blank(l[ln - 1]))
            ln--;
        if (ln == 0 || l[0] == '#')
            continue;
        const char *eq = memchr(l, '=', ln);
        if (!eq) {
            char b[64];
            perr(&s, "'%s' is not KEY = VALUE", shown(l, ln, b, sizeof b));
            break;
        }
        size_t kn = (size_t)(eq - l);
        while (kn > 0 && is_blank(l[kn - 1]))
            kn--;
        const char *v = eq + 1;
        size_t vn = ln - (size_t)(v - l);
        while (vn > 0 && is_blank(*v)) {
            v++;
            vn--;
        }
        if (kn == 0) {
            perr(&s, "a line starts with '=' (want KEY = VALUE)");
            break;
        }
        parse_line(&s, l, kn, v, vn);
    }
    if (s.rc == CDR_OK)
        check_profile(&s);
out:
    if (s.rc != CDR_OK) {
        cdr_profile_free(p);
        return s.rc;
    }
    *out = p;
    return CDR_OK;
}

cdr_err cdr_profile_load(const char *path, cdr_profile **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return CDR_E_IO;
    }
    size_t cap = PF_MAXSIZE + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return CDR_E_NOMEM;
    }
    size_t k;
    while (n < cap && (k = fread(buf + n, 1, cap - n, f)) > 0)
        n += k;
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        if (err && errlen)
            snprintf(err, errlen, "%s: read error", path);
        return CDR_E_IO;
    }
    cdr_err e = cdr_profile_parse(buf, n, path, out, err, errlen);
    free(buf);
    return e;
}

void cdr_profile_free(cdr_profile *p)
{
    if (!p)
        return;
    for (int i = 0; i < PF__N; i++)
        free_field(&p->f[i]);
    for (int i = 0; i < p->n_skip; i++)
        free(p->skip[i]);
    for (int i = 0; i < p->ntypes; i++)
        free(p->types[i].key);
    free(p->path);
    free(p);
}

const char *cdr_profile_path(const cdr_profile *p)
{
    return p->path;
}

const uint8_t *cdr_profile_sha256(const cdr_profile *p)
{
    return p->sha;
}

uint64_t cdr_profile_size(const cdr_profile *p)
{
    return p->size;
}

/* ------------------------------------------------------------------ */
/* In words (check-profile)                                             */

typedef struct wb {
    char *p;
    size_t cap, n;
} wb;

static void wf(wb *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wf(wb *w, const char *fmt, ...)
{
    if (w->n + 1 >= w->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->p + w->n, w->cap - w->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        w->n = w->n + (size_t)k < w->cap ? w->n + (size_t)k : w->cap - 1;
}

static void w_ref(wb *w, const pf_ref *r)
{
    if (r->name)
        wf(w, "%s%s", r->name, r->optional ? " (if present)" : "");
    else
        wf(w, "$%d", r->index + 1);
}

static void w_source(wb *w, const pf_field *f)
{
    static const char *const ops[] = {"", "", "", " + ", " & ", " | "};
    if (f->kind == PK_CONST) {
        wf(w, "constant \"%s\"", f->konst);
        return;
    }
    wf(w, f->nref > 1 ? "columns " : "column ");
    for (int i = 0; i < f->nref; i++) {
        if (i)
            wf(w, "%s", ops[f->kind]);
        w_ref(w, &f->ref[i]);
    }
    if (f->kind == PK_FIRST)
        wf(w, " (the first not empty)");
}

size_t cdr_profile_describe(const cdr_profile *p, cdr_pfield fld, char *buf, size_t cap)
{
    wb w = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    if ((unsigned)fld >= CDR_PF__COUNT || !cap)
        return 0;
    const pf_field *f = &p->f[fld];
    if (fld == CDR_PF_SERVICE || fld == CDR_PF_DIRECTION) {
        if (p->f[CDR_PF_RECORD_TYPE].kind != PK_NONE) {
            if (fld == CDR_PF_SERVICE || f->kind == PK_NONE) {
                wf(&w, "the type lines of ");
                w_source(&w, &p->f[CDR_PF_RECORD_TYPE]);
                if (fld == CDR_PF_DIRECTION)
                    wf(&w, " (mo where a type line gives none)");
                return w.n;
            }
            w_source(&w, f);
            wf(&w, " where a type line gives no direction");
            return w.n;
        }
        if (f->kind == PK_NONE && fld == CDR_PF_DIRECTION) {
            wf(&w, "not mapped: mo");
            return w.n;
        }
    }
    if (f->kind == PK_NONE)
        return w.n;
    w_source(&w, f);
    switch (fld) {
    case CDR_PF_MSISDN:
    case CDR_PF_PEER:
        if (p->trunk_n)
            wf(&w, "; trunk prefix %.*s before a mobile number removed", (int)p->trunk_n,
               p->trunk);
        if (!(p->cc_n == 2 && !memcmp(p->cc, "86", 2)))
            wf(&w, "; +%.*s, 00%.*s, %.*s before a mobile number removed", (int)p->cc_n, p->cc,
               (int)p->cc_n, p->cc, (int)p->cc_n, p->cc);
        if (fld == CDR_PF_MSISDN && p->imsi_pfx_n)
            wf(&w, "; 15 digits starting %.*s refused as an IMSI", (int)p->imsi_pfx_n,
               p->imsi_pfx);
        break;
    case CDR_PF_START_TIME:
        wf(&w, "; format %s", p->tkind == PT_CONTRACT ? "YYYY-MM-DD HH:MM:SS" : p->tfmt);
        if (p->f[PF_UTC].kind != PK_NONE) {
            wf(&w, "; UTC offset in ");
            w_source(&w, &p->f[PF_UTC]);
        }
        if (p->has_local) {
            int o = p->local_off < 0 ? -p->local_off : p->local_off;
            wf(&w, "; converted to local UTC%c%02d:%02d", p->local_off < 0 ? '-' : '+',
               o / 3600, o / 60 % 60);
        }
        break;
    case CDR_PF_DURATION_S:
        wf(&w, p->dur_ms ? "; milliseconds, rounded up to whole seconds" : "; seconds");
        break;
    case CDR_PF_BYTES:
        wf(&w, p->bytes_kb ? "; KB, times 1024" : "; bytes");
        break;
    case CDR_PF_BILLED:
        wf(&w, "; %s", p->money_shift == 2 ? "fen" : p->money_shift == 1 ? "jiao" : "yuan");
        break;
    case CDR_PF_RECORD_TYPE:
        for (int i = 0; i < p->ntypes; i++) {
            const pf_type *t = &p->types[i];
            wf(&w, "%s '%s' %s%s%s", i ? "," : ":", t->key,
               t->skip ? "skip" : cdr_service_name((cdr_service)t->service),
               t->direction >= 0 ? " " : "",
               t->direction >= 0 ? cdr_direction_name((cdr_direction)t->direction) : "");
        }
        break;
    default:
        break;
    }
    return w.n;
}

size_t cdr_profile_describe_layout(const cdr_profile *p, char *buf, size_t cap)
{
    wb w = {buf, cap, 0};
    if (!cap)
        return 0;
    buf[0] = '\0';
    wf(&w, "separator %s, quote %s, header %s", p->sep == '\t' ? "tab" : (char[]){'\'', p->sep, '\'', 0},
       p->quote ? "'\"'" : "none", p->header ? "yes" : "no");
    if (!p->header)
        wf(&w, ", %d columns", p->columns);
    for (int i = 0; i < p->n_skip; i++)
        wf(&w, ", skip lines starting '%s'", p->skip[i]);
    return w.n;
}
