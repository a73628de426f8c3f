/*
 * cdrgen --profile FILE: the same month written in an input profile's layout
 * (docs/profiles.md, docs/generator.md). Included by cdrgen.c after its row
 * formatter: it uses cdrgen's records (rec, sub) and its put_ helpers.
 *
 * Independent of the library: this is cdrgen's own small reader of profile
 * files, written from docs/profiles.md, and its own writer of times, units,
 * record types and numbers. It shares no code with src/profile.c or the
 * reader, so a test that reads cdrgen's files through a profile checks one
 * implementation of the profile language against another. It understands
 * what it can write and refuses the rest (a constant it cannot honour,
 * bytes in KB, which lose the exact byte counts, ...).
 *
 * What the profile does not say, cdrgen decides (docs/generator.md):
 * - the columns: with a header, in the order the profile first names them,
 *   then the month's two unknown columns (cell and MSC id), named cell_id
 *   and msc_id unless a comment line `#cdrgen extra = NAME, NAME` names
 *   them; without a header, each $N where the profile puts it and the two
 *   unknown columns in the first columns it leaves unnamed;
 * - skipped records: a headerless profile with `type X = skip` lines gets
 *   the first such type as a header record on line 1 (so data rows start on
 *   line 2, as in the contract's files); every other skip type, and every
 *   skip_prefix, one trailer line at the end with the file's row count;
 * - variety the reader must undo: one time in ten written in UTC (when the
 *   format has %z or a UTC offset column), milliseconds below the second
 *   (duration in ms: ceil gives the seconds back), a sum's columns split at
 *   random, a trunk prefix before a quarter of the msisdns (when declared),
 *   data's APN in the last column of a `|` list (others in the first).
 * Its random draws come from a stream of their own: the month is the same.
 */

enum { GF_RID, GF_MSISDN, GF_SERVICE, GF_DIR, GF_PEER, GF_START, GF_DUR, GF_BYTES, GF_CHARS,
       GF_SREF, GF_SPART, GF_SPARTS, GF_CALL, GF_PSEQ, GF_BILLED, GF_IMSI, GF_TYPE, GF_UTC,
       GF__N };
static const char *const GF_NAME[GF__N] = {
    "record_id", "msisdn", "service", "direction", "peer", "start_time", "duration_s", "bytes",
    "sms_chars", "sms_ref", "sms_part", "sms_parts", "call_id", "partial_seq", "billed", "imsi",
    "record_type", "start_time.utc_offset"};
enum { GW_FIELD, GW_CELL, GW_MSC, GW_EMPTY };
#define GP_MAXCOL 64

typedef struct gref { char name[64]; int index; /* 1-based; 0: by name */ } gref;
typedef struct gfield {
    int set, is_const, nref;
    char op; /* 0, '+', '&', '|' */
    gref ref[8];
    char konst[64];
} gfield;
typedef struct gcol { char name[64]; int what, fld, part; } gcol;

static struct {
    int on;
    const char *path;
    char sep, quote;
    int header, columns;
    gfield f[GF__N];
    int order[GF__N], norder;
    int tkind; /* 0 contract, 1 pattern, 2 epoch, 3 epoch_ms */
    char tfmt[80];
    int has_tz, has_local, local_off;
    int dur_ms, money_shift;
    struct { char key[32]; int skip, svc, dir; } type[64];
    int ntype;
    char skip[8][64];
    int nskip;
    char trunk[8];
    char extra[2][64];
    int nextra;
    gcol col[GP_MAXCOL];
    int ncol;
    rng g;
} GP;

static void gp_die(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cdrgen: %s:%d: ", GP.path, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static char *gp_trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* "NAME", "[NAME]", "$N", each maybe with '?' (cdrgen writes the column anyway). */
static const char *gp_ref(int line, const char *v, gref *r)
{
    memset(r, 0, sizeof *r);
    if (*v == '$') {
        char *e;
        long x = strtol(v + 1, &e, 10);
        if (e == v + 1 || x < 1 || x > GP_MAXCOL) gp_die(line, "bad column index");
        r->index = (int)x;
        v = e;
    } else if (*v == '[') {
        const char *e = strchr(v, ']');
        if (!e || e - v - 1 >= (long)sizeof r->name) gp_die(line, "bad [column name]");
        memcpy(r->name, v + 1, (size_t)(e - v - 1));
        v = e + 1;
    } else {
        size_t k = 0;
        while ((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || *v == '_' ||
               (k && ((*v >= '0' && *v <= '9') || *v == '.' || *v == '-'))) {
            if (k + 1 >= sizeof r->name) gp_die(line, "column name too long");
            r->name[k++] = *v++;
        }
        if (!k) gp_die(line, "expected a column at '%s'", v);
    }
    if (*v == '?') v++;
    return v;
}

static void gp_source(int line, int fld, const char *v)
{
    gfield *f = &GP.f[fld];
    if (f->set) gp_die(line, "%s twice", GF_NAME[fld]);
    f->set = 1;
    GP.order[GP.norder++] = fld;
    if (*v == '"') {
        const char *e = strrchr(v, '"');
        if (e == v || e - v - 1 >= (long)sizeof f->konst) gp_die(line, "bad constant");
        memcpy(f->konst, v + 1, (size_t)(e - v - 1));
        f->is_const = 1;
        return;
    }
    for (;;) {
        if (f->nref == 8) gp_die(line, "too many columns");
        v = gp_ref(line, v, &f->ref[f->nref++]);
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) break;
        if (*v != '+' && *v != '&' && *v != '|') gp_die(line, "unexpected '%s'", v);
        f->op = *v++;
        while (*v == ' ' || *v == '\t') v++;
    }
}

static int gp_service(const char *w)
{
    for (int i = 0; i < 4; i++) if (!strcasecmp(w, SVC_NAME[i])) return i;
    return -1;
}

static void gp_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("%s: %s", path, strerror(errno));
    memset(&GP, 0, sizeof GP);
    GP.on = 1;
    GP.path = path;
    GP.sep = ',';
    GP.quote = '"';
    GP.header = 1;
    char buf[1024];
    int line = 0;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        char *l = gp_trim(buf);
        size_t ln = strlen(l);
        if (ln && l[ln - 1] == '\n') l[--ln] = 0;
        l = gp_trim(l);
        if (!strncmp(l, "#cdrgen ", 8)) { /* cdrgen's own: the unknown columns' names */
            char *eq = strchr(l, '=');
            if (!eq || strncmp(gp_trim(l + 8), "extra", 5)) gp_die(line, "unknown #cdrgen line");
            char *save = NULL;
            for (char *t = strtok_r(eq + 1, ",", &save); t && GP.nextra < 2; t = strtok_r(NULL, ",", &save))
                snprintf(GP.extra[GP.nextra++], sizeof GP.extra[0], "%s", gp_trim(t));
            continue;
        }
        if (!*l || *l == '#') continue;
        char *eq = strchr(l, '=');
        if (!eq) gp_die(line, "not KEY = VALUE");
        *eq = 0;
        char *k = gp_trim(l), *v = gp_trim(eq + 1);
        int fld = -1;
        for (int i = 0; i < GF_TYPE; i++) if (!strcmp(k, GF_NAME[i])) fld = i;
        if (fld >= 0) { gp_source(line, fld, v); continue; }
        if (!strcmp(k, "record_type")) gp_source(line, GF_TYPE, v);
        else if (!strcmp(k, "start_time.utc_offset")) gp_source(line, GF_UTC, v);
        else if (!strcmp(k, "separator")) {
            GP.sep = !strcmp(v, "tab") ? '\t' : !strcmp(v, "pipe") ? '|' : !strcmp(v, "comma") ? ','
                   : !strcmp(v, "semicolon") ? ';' : v[0];
            if (!strchr(",|;\t", GP.sep) || (strlen(v) != 1 && strcmp(v, "tab") && strcmp(v, "pipe") &&
                                              strcmp(v, "comma") && strcmp(v, "semicolon")))
                gp_die(line, "separator");
        } else if (!strcmp(k, "quote")) GP.quote = !strcmp(v, "none") ? 0 : '"';
        else if (!strcmp(k, "header")) GP.header = !strcmp(v, "yes");
        else if (!strcmp(k, "columns")) GP.columns = atoi(v);
        else if (!strcmp(k, "skip_prefix")) {
            if (GP.nskip == 8) gp_die(line, "too many skip_prefix");
            size_t n = strlen(v);
            if (n >= 2 && v[0] == '"' && v[n - 1] == '"') { v[n - 1] = 0; v++; }
            snprintf(GP.skip[GP.nskip++], sizeof GP.skip[0], "%s", v);
        } else if (!strncmp(k, "type", 4) && (k[4] == ' ' || k[4] == '\t')) {
            char *key = gp_trim(k + 4);
            size_t n = strlen(key);
            if (n >= 2 && key[0] == '"' && key[n - 1] == '"') { key[n - 1] = 0; key++; }
            if (GP.ntype == 64) gp_die(line, "too many type lines");
            snprintf(GP.type[GP.ntype].key, sizeof GP.type[0].key, "%s", key);
            char w1[16] = "", w2[16] = "";
            sscanf(v, "%15s %15s", w1, w2);
            GP.type[GP.ntype].skip = !strcmp(w1, "skip");
            GP.type[GP.ntype].svc = gp_service(w1);
            GP.type[GP.ntype].dir = !w2[0] ? -1 : !strcasecmp(w2, "mt") ? 1 : 0;
            if (!GP.type[GP.ntype].skip && GP.type[GP.ntype].svc < 0) gp_die(line, "type value");
            GP.ntype++;
        } else if (!strcmp(k, "local_utc_offset")) {
            int hh = 0, mm = 0;
            if (sscanf(v + 1, "%2d:%2d", &hh, &mm) != 2 && sscanf(v + 1, "%2d%2d", &hh, &mm) != 2)
                gp_die(line, "local_utc_offset");
            GP.local_off = (v[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
            GP.has_local = 1;
        } else if (!strcmp(k, "start_time.format")) {
            snprintf(GP.tfmt, sizeof GP.tfmt, "%s", v);
            GP.tkind = !strcmp(v, "epoch") ? 2 : !strcmp(v, "epoch_ms") ? 3 : !strcmp(v, "contract") ? 0 : 1;
            GP.has_tz = GP.tkind == 1 && strstr(v, "%z") != NULL;
        } else if (!strcmp(k, "duration_s.unit")) GP.dur_ms = !strcmp(v, "ms");
        else if (!strcmp(k, "bytes.unit")) {
            if (strcmp(v, "bytes") && strcmp(v, "B"))
                gp_die(line, "bytes.unit = %s would lose the month's exact byte counts", v);
        } else if (!strcmp(k, "billed.unit"))
            GP.money_shift = !strcmp(v, "fen") ? 2 : !strcmp(v, "jiao") ? 1 : 0;
        else if (!strcmp(k, "number.trunk_prefix")) snprintf(GP.trunk, sizeof GP.trunk, "%s", v);
        else if (!strcmp(k, "number.country_code")) {
            if (strcmp(v, "86")) gp_die(line, "cdrgen writes Chinese numbers: country code 86 only");
        } else if (!strcmp(k, "number.imsi_prefix") || !strcmp(k, "name") || !strcmp(k, "description"))
            ;
        else gp_die(line, "cdrgen cannot write '%s'", k);
    }
    fclose(f);
    if (GP.f[GF_TYPE].set && GP.f[GF_TYPE].nref != 1) die("%s: record_type must be one column", path);
    if ((GP.has_tz || GP.tkind >= 2 || GP.f[GF_UTC].set) && !GP.has_local)
        die("%s: local_utc_offset is needed", path);

    /* the columns */
    if (GP.header) {
        for (int o = 0; o < GP.norder; o++) {
            int fld = GP.order[o];
            gfield *g = &GP.f[fld];
            if (g->is_const) continue;
            for (int i = 0; i < g->nref; i++) {
                if (g->ref[i].index) die("%s: cdrgen writes $N columns only without a header", path);
                if (GP.ncol == GP_MAXCOL) die("%s: too many columns", path);
                gcol *c = &GP.col[GP.ncol++];
                snprintf(c->name, sizeof c->name, "%s", g->ref[i].name);
                c->what = GW_FIELD; c->fld = fld; c->part = i;
            }
        }
        static const char *const dflt[2] = {"cell_id", "msc_id"};
        for (int i = 0; i < 2; i++) {
            gcol *c = &GP.col[GP.ncol++];
            snprintf(c->name, sizeof c->name, "%s", i < GP.nextra ? GP.extra[i] : dflt[i]);
            c->what = i ? GW_MSC : GW_CELL;
        }
    } else {
        if (GP.columns < 1 || GP.columns > GP_MAXCOL) die("%s: columns", path);
        GP.ncol = GP.columns;
        for (int i = 0; i < GP.ncol; i++) GP.col[i].what = -1;
        for (int fld = 0; fld < GF__N; fld++) {
            gfield *g = &GP.f[fld];
            for (int i = 0; g->set && !g->is_const && i < g->nref; i++) {
                int x = g->ref[i].index;
                if (!x || x > GP.ncol) die("%s: a headerless profile names columns $1..$%d", path, GP.ncol);
                GP.col[x - 1].what = GW_FIELD; GP.col[x - 1].fld = fld; GP.col[x - 1].part = i;
            }
        }
        int ex = 0;
        for (int i = 0; i < GP.ncol; i++)
            if (GP.col[i].what < 0) GP.col[i].what = ex == 0 ? GW_CELL : ex == 1 ? GW_MSC : GW_EMPTY, ex++;
    }
    for (int i = 0; i < GP.ncol; i++)
        if (GP.col[i].what == GW_FIELD && GP.col[i].fld == GF_TYPE && GP.f[GF_SERVICE].set)
            die("%s: service and record_type", path);
    rng_init(&GP.g, O.seed, 0x9F0F11EULL);
}

/* The type line a record is written with: one with its service and
 * direction, else one with its service and no direction. */
static int gp_type_of(const rec *r)
{
    for (int i = 0; i < GP.ntype; i++)
        if (!GP.type[i].skip && GP.type[i].svc == r->svc && GP.type[i].dir == r->dir) return i;
    for (int i = 0; i < GP.ntype; i++)
        if (!GP.type[i].skip && GP.type[i].svc == r->svc && GP.type[i].dir < 0) return i;
    die("%s: no type line for %s %s", GP.path, SVC_NAME[r->svc], r->dir ? "mt" : "mo");
    return -1;
}

static char *gp_off(char *p, int off, int colon)
{
    *p++ = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    p = put2(p, off / 3600);
    if (colon) *p++ = ':';
    return put2(p, off / 60 % 60);
}

/* The start time as the profile writes it; utc: in UTC (offset +00:00). */
static char *gp_time(char *p, int64_t t, int utc)
{
    if (GP.tkind == 2 || GP.tkind == 3) {
        p = put_i(p, t - GP.local_off);
        if (GP.tkind == 3) p = put_padu(p, runi(&GP.g, 1000), 3);
        return p;
    }
    int64_t w = utc ? t - GP.local_off : t;
    if (GP.tkind == 0) return put_time(p, w);
    int y, m, d;
    civil_from_days(w / 86400, &y, &m, &d);
    int64_t s = sod(w);
    for (const char *f = GP.tfmt; *f; f++) {
        if (*f != '%') { *p++ = *f; continue; }
        switch (*++f) {
        case 'Y': p = put2(p, y / 100); p = put2(p, y % 100); break;
        case 'y': if (y < 2000 || y > 2099) die("%%y: year %d", y); p = put2(p, y % 100); break;
        case 'm': p = put2(p, m); break;
        case 'd': p = put2(p, d); break;
        case 'H': p = put2(p, (int)(s / 3600)); break;
        case 'M': p = put2(p, (int)(s / 60 % 60)); break;
        case 'S': p = put2(p, (int)(s % 60)); break;
        case 'f': p = put_padu(p, runi(&GP.g, 1000), 3); break;
        case 'z': p = gp_off(p, utc ? 0 : GP.local_off, 0); break;
        case '%': *p++ = '%'; break;
        default: die("%s: time format code %%%c", GP.path, *f);
        }
    }
    return p;
}

/* Money in the profile's unit. */
static char *gp_money(char *p, int64_t v)
{
    return p + cdr_money_format(v * (GP.money_shift == 2 ? 100 : GP.money_shift == 1 ? 10 : 1),
                                GP.money_shift == 2 ? 0 : GP.money_shift == 1 ? 1 : 2, p);
}

/* Split x into n parts at random (the reader adds them up again). */
static void gp_split(int64_t x, int n, int64_t *part)
{
    for (int i = 0; i < n - 1; i++) {
        int64_t a = x > 0 ? x * (int64_t)rrange(&GP.g, 5, 60) / 100 : 0;
        part[i] = a;
        x -= a;
    }
    part[n - 1] = x;
}

/* One field's full value (before splitting) is written by its parts. */
static size_t gp_format_row(const sub *s, const rec *r, char *buf)
{
    int svc = r->svc;
    char val[GP_MAXCOL][96];
    size_t vlen[GP_MAXCOL];
    int utc = (GP.has_tz || GP.f[GF_UTC].set) && runi(&GP.g, 10) == 0;
    int trunk = GP.trunk[0] && r->msfmt == 0 && runi(&GP.g, 4) == 0;
    int64_t sums[GF__N][8];
    /* the sums split once per record */
    for (int fld = 0; fld < GF__N; fld++) {
        gfield *g = &GP.f[fld];
        if (!g->set || g->op != '+') continue;
        int64_t x = fld == GF_DUR ? (svc == S_VOICE ? r->dur : -1)
                  : fld == GF_BYTES ? (svc == S_DATA ? (r->bytes < 0 ? 1000 : r->bytes) : -1)
                  : fld == GF_CHARS ? (svc == S_SMS ? r->chars : -1)
                  : fld == GF_BILLED ? r->billed : -1;
        if (fld == GF_DUR && GP.dur_ms && x > 0) x = x * 1000 - (int64_t)runi(&GP.g, 1000);
        if (x >= 0) gp_split(x, g->nref, sums[fld]);
        else for (int i = 0; i < g->nref; i++) sums[fld][i] = -1;
    }
    for (int fld = 0; fld < GF__N; fld++) { /* constants must hold for every record */
        gfield *g = &GP.f[fld];
        if (!g->set || !g->is_const) continue;
        if ((fld == GF_SERVICE && strcasecmp(g->konst, SVC_NAME[svc])) ||
            (fld == GF_DIR && strcasecmp(g->konst, r->dir ? "mt" : "mo")))
            die("%s: %s is always \"%s\", but the month has %s %s records", GP.path, GF_NAME[fld],
                g->konst, SVC_NAME[svc], r->dir ? "mt" : "mo");
        if (fld != GF_SERVICE && fld != GF_DIR)
            die("%s: cdrgen cannot honour the constant of %s", GP.path, GF_NAME[fld]);
    }
    for (int c = 0; c < GP.ncol; c++) {
        gcol *col = &GP.col[c];
        char *p = val[c], *p0 = p;
        if (col->what == GW_CELL) p = put_u(p, r->cell);
        else if (col->what == GW_MSC) { p = put_s(p, "BJMSC"); p = put_padu(p, r->cell % 17, 2); }
        else if (col->what == GW_FIELD) {
            gfield *g = &GP.f[col->fld];
            int part = col->part;
            if (g->op == '|') { /* the first column, data's APN the last */
                int want = col->fld == GF_PEER && svc == S_DATA ? g->nref - 1 : 0;
                if (part != want) { vlen[c] = 0; continue; }
            }
            switch (col->fld) {
            case GF_RID: p = put_id(p, r->id, 'R'); break;
            case GF_MSISDN:
                if (r->msfmt == 1) p = put_s(p, "86");
                else if (trunk) p = put_s(p, GP.trunk);
                p = put_s(p, s->msisdn);
                break;
            case GF_IMSI: p = put_s(p, "46000"); p = put_s(p, s->msisdn + 1); break;
            case GF_SERVICE: p = put_s(p, SVC_NAME[svc]); break;
            case GF_DIR: {
                int t = GP.f[GF_TYPE].set ? gp_type_of(r) : -1;
                if (t < 0 || GP.type[t].dir < 0) p = put_s(p, r->dir ? "mt" : "mo");
                break;
            }
            case GF_TYPE: p = put_s(p, GP.type[gp_type_of(r)].key); break;
            case GF_PEER:
                if (r->peerfmt == 1) p = put_s(p, "+86");
                else if (r->peerfmt == 2) p = put_s(p, "86");
                p = put_s(p, r->peer);
                break;
            case GF_START:
                if (g->op == '&') {
                    char t[96];
                    char *e = gp_time(t, r->start, utc);
                    *e = 0;
                    char *sp = strchr(t, ' ');
                    if (!sp) die("%s: a date & time pair needs a format with one space", GP.path);
                    if (part == 0) { memcpy(p, t, (size_t)(sp - t)); p += sp - t; }
                    else p = put_s(p, sp + 1);
                } else p = gp_time(p, r->start, utc);
                break;
            case GF_UTC: p = gp_off(p, utc ? 0 : GP.local_off, 1); break;
            case GF_DUR: case GF_BYTES: case GF_CHARS: {
                int64_t x;
                if (g->op == '+') x = sums[col->fld][part];
                else {
                    x = col->fld == GF_DUR ? (svc == S_VOICE ? r->dur : -1)
                      : col->fld == GF_BYTES ? (svc == S_DATA ? (r->bytes < 0 ? 1000 : r->bytes) : -1)
                      : (svc == S_SMS ? r->chars : -1);
                    if (col->fld == GF_DUR && GP.dur_ms && x > 0) x = x * 1000 - (int64_t)runi(&GP.g, 1000);
                }
                if (x >= 0) p = put_i(p, x);
                break;
            }
            case GF_SREF: if (r->sms_ref && svc == S_SMS) p = put_u(p, r->sms_ref); break;
            case GF_SPART: if (r->sms_ref && svc == S_SMS) p = put_u(p, (uint64_t)r->sms_part); break;
            case GF_SPARTS: if (r->sms_ref && svc == S_SMS) p = put_u(p, (uint64_t)r->sms_parts); break;
            case GF_CALL: if (r->call_id) { *p++ = 'C'; p = put_padu(p, r->call_id, 10); } break;
            case GF_PSEQ: if (r->call_id) p = put_u(p, (uint64_t)r->pseq); break;
            case GF_BILLED: p = gp_money(p, g->op == '+' ? sums[GF_BILLED][part] : r->billed); break;
            }
        }
        vlen[c] = (size_t)(p - p0);
        if (vlen[c] >= sizeof val[0]) die("internal: value too long");
        for (size_t i = 0; i < vlen[c]; i++)
            if (p0[i] == GP.sep || p0[i] == '\n' || (GP.quote && p0[i] == GP.quote))
                die("%s: a value holds the separator or a quote", GP.path);
    }
    char *p = buf;
    for (int c = 0; c < GP.ncol; c++) {
        if (c) *p++ = GP.sep;
        memcpy(p, val[c], vlen[c]);
        p += vlen[c];
    }
    *p++ = '\n';
    return (size_t)(p - buf);
}

static int gp_first_skip(void)
{
    for (int i = 0; i < GP.ntype; i++) if (GP.type[i].skip) return i;
    return -1;
}

/* A record of a skipped type: its code, the file's name or row count in
 * the next column, the rest empty. */
static void gp_skip_record(int fi, int t, const char *what)
{
    char line[1024], *p = line;
    int tc = GP.f[GF_TYPE].ref[0].index ? GP.f[GF_TYPE].ref[0].index - 1 : -1;
    for (int c = 0; c < GP.ncol; c++) {
        if (GP.col[c].what == GW_FIELD && GP.col[c].fld == GF_TYPE) tc = c;
    }
    for (int c = 0; c < GP.ncol; c++) {
        if (c) *p++ = GP.sep;
        if (c == tc) p = put_s(p, GP.type[t].key);
        else if (c == tc + 1) p = put_s(p, what);
    }
    *p++ = '\n';
    wb_put(fi, line, (size_t)(p - line));
}

/* The first line(s) of file fi. */
static void gp_header(int fi)
{
    if (GP.header) {
        char line[4096], *p = line;
        for (int c = 0; c < GP.ncol; c++) {
            if (c) *p++ = GP.sep;
            p = put_s(p, GP.col[c].name);
        }
        *p++ = '\n';
        wb_put(fi, line, (size_t)(p - line));
    } else if (gp_first_skip() >= 0) {
        gp_skip_record(fi, gp_first_skip(), OUT[fi].base);
    }
}

/* The last lines of file fi: the other skip types and the skip prefixes. */
static void gp_trailer(int fi, uint64_t rows)
{
    char n[32];
    *put_u(n, rows) = 0;
    for (int i = 0; i < GP.ntype; i++)
        if (GP.type[i].skip && (GP.header || i != gp_first_skip())) gp_skip_record(fi, i, n);
    for (int i = 0; i < GP.nskip; i++) {
        char line[256];
        int k = snprintf(line, sizeof line, "%s%s\n", GP.skip[i], n);
        wb_put(fi, line, (size_t)k);
    }
}
