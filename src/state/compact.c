/* cdrecon — compaction: a month's segments merged into one, each subscriber-month's records in time order, strings kept once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "stfile.h"
#include "grow.h"

/* One record of a subscriber-month being moved into the compacted segment:
 * its row's strings copied into the compactor's arena. */
typedef struct crow {
    cdr_row row;
    uint32_t file;        /* index in the new file table */
    const char *fname;    /* for the order of equal times */
} crow;

/* Memory in chunks that never move, for the rows' strings and extras until
 * the part cuts its block. */
typedef struct achunk {
    struct achunk *next;
    size_t n, cap;
    char d[];
} achunk;

static void *chunk_take(achunk **head, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    achunk *c = *head;
    if (!c || c->n + n > c->cap) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        achunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->next = c;
        nc->n = 0;
        nc->cap = cap;
        *head = c = nc;
    }
    void *p = c->d + c->n;
    c->n += n;
    return p;
}

static void chunks_free(achunk **head)
{
    for (achunk *c = *head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    *head = NULL;
}

typedef struct compactor {
    st_file *files;       /* the new segment's file table (anchors borrowed) */
    size_t n_files;
    uint32_t **map;       /* per old segment: its file index -> the new one */
    crow *rows;           /* the subscriber-month being moved */
    size_t n_rows, rows_cap;
    achunk *mem;          /* the rows' strings and extras, until the block is cut */
    cdr_err err;
} compactor;

static int crow_cmp(const void *pa, const void *pb)
{
    const crow *a = pa, *b = pb;
    if (a->row.start != b->row.start)
        return a->row.start < b->row.start ? -1 : 1;
    size_t m = a->row.record_id.n < b->row.record_id.n ? a->row.record_id.n : b->row.record_id.n;
    int c = memcmp(a->row.record_id.p, b->row.record_id.p, m);
    if (c)
        return c;
    if (a->row.record_id.n != b->row.record_id.n)
        return a->row.record_id.n < b->row.record_id.n ? -1 : 1;
    c = strcmp(a->fname, b->fname);
    if (c)
        return c;
    return a->row.line < b->row.line ? -1 : a->row.line > b->row.line;
}

static int keep(compactor *k, cdr_str *s)
{
    if (s->n == 0)
        return 0;
    char *p = chunk_take(&k->mem, s->n);
    if (!p)
        return -1;
    memcpy(p, s->p, s->n);
    s->p = p;
    return 0;
}

typedef struct cctx {
    compactor *k;
    const uint32_t *map;
    const st_segr *seg;
} cctx;

static int compact_row(const cdr_row *r, uint32_t fl, void *u)
{
    cctx *x = u;
    compactor *k = x->k;
    if (cdr_grow(&k->rows, &k->rows_cap, k->n_rows + 1, sizeof *k->rows, 256))
        return CDR_E_NOMEM;
    crow *c = &k->rows[k->n_rows++];
    c->row = *r;
    c->file = x->map[fl];
    c->fname = st_segr_file(x->seg, fl)->name;
    if (keep(k, &c->row.record_id) || keep(k, &c->row.peer) || keep(k, &c->row.call_id) ||
        keep(k, &c->row.sms_ref))
        return CDR_E_NOMEM;
    if (r->n_extra) {
        cdr_str *ex = chunk_take(&k->mem, r->n_extra * sizeof *ex);
        if (!ex)
            return CDR_E_NOMEM;
        for (uint32_t i = 0; i < r->n_extra; i++) {
            ex[i] = r->extra[i];
            if (keep(k, &ex[i]))
                return CDR_E_NOMEM;
        }
        c->row.extra = ex;
    }
    return 0;
}

static void compactor_free(compactor *k)
{
    for (size_t i = 0; i < k->n_files; i++)
        free(k->files[i].extra_names); /* (the strings are the segments') */
    free(k->files);
    free(k->rows);
    chunks_free(&k->mem);
}

/* The union of the segments' file tables, by database id and name, into
 * k->files; k->map[i] maps segment i's file indexes to it. */
static cdr_err union_files(compactor *k, st_segr **segs, size_t ns)
{
    for (size_t i = 0; i < ns; i++) {
        st_segr *g = segs[i];
        size_t gn = st_segr_n_files(g);
        k->map[i] = calloc(gn ? gn : 1, sizeof **k->map);
        if (!k->map[i])
            return CDR_E_NOMEM;
        for (size_t f = 0; f < gn; f++) {
            const st_file *gf = st_segr_file(g, f);
            size_t j = 0;
            while (j < k->n_files && !(k->files[j].db_id == gf->db_id &&
                                       !strcmp(k->files[j].name, gf->name)))
                j++;
            if (j == k->n_files) {
                st_file *nf = realloc(k->files, (k->n_files + 1) * sizeof *nf);
                if (!nf)
                    return CDR_E_NOMEM;
                k->files = nf;
                k->files[j] = *gf; /* borrowed: the segments stay open */
                k->files[j].extra_names = NULL;
                if (gf->n_extra) {
                    k->files[j].extra_names = calloc(gf->n_extra, sizeof(char *));
                    if (!k->files[j].extra_names)
                        return CDR_E_NOMEM;
                    memcpy(k->files[j].extra_names, gf->extra_names,
                           gf->n_extra * sizeof(char *));
                }
                k->n_files++;
            }
            k->map[i][f] = (uint32_t)j;
        }
    }
    return CDR_OK;
}

/* The cursor with the smallest key (-1: all done). */
static int smallest(const st_gcur *cur, size_t ns)
{
    int best = -1;
    for (size_t i = 0; i < ns; i++)
        if (cur[i].have &&
            (best < 0 || st_key_cmp(cur[i].cur.h, cur[i].cur.msisdn, cur[i].cur.msisdn_len,
                                    cur[best].cur.h, cur[best].cur.msisdn,
                                    cur[best].cur.msisdn_len) < 0))
            best = (int)i;
    return best;
}

/* The subscriber-month at cursor `best`: its rows from every segment that
 * holds it, in time order, into the part; the cursors moved past it. *n:
 * its records. */
static cdr_err move_group(compactor *k, st_gcur *cur, st_segr **segs, size_t ns, int best,
                          st_part *part, st_enc *enc, size_t *n, char *err, size_t errlen)
{
    char m[CDR_NUMBER_MAX + 1];
    size_t ml = cur[best].cur.msisdn_len;
    uint64_t h = cur[best].cur.h;
    cdr_err e;
    memcpy(m, cur[best].cur.msisdn, ml);
    m[ml] = '\0';
    k->n_rows = 0; /* (the part keeps copies of the rows; their bytes stay in mem) */
    for (size_t i = 0; i < ns; i++) {
        if (!cur[i].have ||
            st_key_cmp(cur[i].cur.h, cur[i].cur.msisdn, cur[i].cur.msisdn_len, h, m, ml) != 0)
            continue;
        cctx x = {k, k->map[i], segs[i]};
        if ((e = st_gcur_rows(&cur[i], compact_row, &x)) != CDR_OK ||
            (e = st_gcur_next(&cur[i])) != CDR_OK) {
            if (cur[i].err[0])
                cdr_seterr(err, errlen, "%s", cur[i].err);
            return e;
        }
    }
    qsort(k->rows, k->n_rows, sizeof *k->rows, crow_cmp);
    if (st_part_group(part, m, ml, k->n_rows, enc) != 0)
        return CDR_E_NOMEM;
    for (size_t i = 0; i < k->n_rows; i++) {
        crow *c = &k->rows[i];
        c->row.msisdn = (cdr_str){m, ml};
        if (st_part_add(part, &c->row, c->file,
                        st_file_off_res(&k->files[c->file], c->row.line, c->row.offset),
                        enc) != 0)
            return CDR_E_NOMEM;
    }
    *n = k->n_rows;
    return CDR_OK;
}

/* The part's block(s) written out to the new segment. */
static cdr_err flush_part(st_segw *w, st_part *part, st_enc *enc)
{
    cdr_err e = CDR_OK;
    if (st_part_flush(part, enc) != 0 || (e = st_segw_append(w, part)) != CDR_OK)
        return e ? e : CDR_E_NOMEM;
    return CDR_OK;
}

cdr_err cdr_state_compact(cdr_state *s, cdr_month month, const char *dir, int64_t run_id,
                          cdr_state_compacted *out, char *err, size_t errlen)
{
    st_segr **segs;
    size_t ns = st_state_segments(s, month, &segs);
    compactor k;
    st_gcur *cur = NULL;
    st_segw *w = NULL;
    st_part part;
    st_enc enc;
    int enc_ok = 0;
    cdr_err e = CDR_OK;
    memset(&k, 0, sizeof k);
    memset(out, 0, sizeof *out);
    st_part_init(&part);
    part.block_size = ST_BLOCK_MAX;
    if (ns < 2)
        return CDR_E_NOTFOUND; /* nothing to merge */
    k.map = calloc(ns, sizeof *k.map);
    cur = calloc(ns, sizeof *cur);
    if (!k.map || !cur) {
        e = CDR_E_NOMEM;
        goto out;
    }
    if ((e = union_files(&k, segs, ns)) != CDR_OK)
        goto out;
    char name[64], path[4200];
    cdr_state_file_name(CDR_STATE_SEGMENT, month, run_id, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((e = st_segw_create(path, month, k.files, k.n_files, &w, err, errlen)) != CDR_OK)
        goto out;
    if (st_enc_init(&enc, 3) != 0) {
        e = CDR_E_NOMEM;
        goto out;
    }
    enc_ok = 1;
    for (size_t i = 0; i < ns; i++) {
        cur[i].whole = 1; /* every group of every block, in turn */
        if ((e = st_gcur_seek(&cur[i], segs[i], 0, NULL, 0)) != CDR_OK) {
            cdr_seterr(err, errlen, "%s", cur[i].err);
            goto out;
        }
    }
    size_t cut = 0; /* rows since the part's last block */
    for (int best; (best = smallest(cur, ns)) >= 0;) {
        size_t n;
        if ((e = move_group(&k, cur, segs, ns, best, &part, &enc, &n, err, errlen)) != CDR_OK)
            goto out;
        cut += n;
        out->records += n;
        out->submonths++;
        if (part.n_recs == 0 || cut >= ST_BLOCK_MAX) {
            /* the part cut its block (or will, with the next group): write it
             * out and start the rows and strings afresh */
            if ((e = flush_part(w, &part, &enc)) != CDR_OK)
                goto out;
            st_part_free(&part);
            st_part_init(&part);
            part.block_size = ST_BLOCK_MAX;
            chunks_free(&k.mem);
            cut = 0;
        }
    }
    if ((e = flush_part(w, &part, &enc)) != CDR_OK ||
        (e = st_segw_commit(w, err, errlen)) != CDR_OK)
        goto out;
    snprintf(out->name, sizeof out->name, "%s", name);
    out->bytes = st_segw_bytes(w);
    out->replaced = ns;
out:
    if (cur) {
        for (size_t i = 0; i < ns; i++)
            st_gcur_free(&cur[i]);
        free(cur);
    }
    if (k.map) {
        for (size_t i = 0; i < ns; i++)
            free(k.map[i]);
        free(k.map);
    }
    st_segw_free(w);
    st_part_free(&part);
    if (enc_ok)
        st_enc_free(&enc);
    compactor_free(&k);
    return e;
}
