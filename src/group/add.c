/* cdrecon — a record comes in: the engine's file table, and cdr_engine_add packing a row and filing it. */
/*
 * With threads > 1 the packed record goes into a staging block that the
 * distributor thread files (distributor.c); else straight into the bucket
 * of its msisdn hash (bucket.c). With a state, each file's line -> offset
 * anchors and the months of the records are noted as they come.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "grow.h"

uint64_t cdr_msisdn_hash(const char *p, size_t n)
{
    return msisdn_hash(p, n);
}

cdr_err grp_ensure_file(cdr_engine *e, uint32_t fi)
{
    if (fi < e->n_files)
        return CDR_OK;
    if (fi > 100000000u)
        return CDR_E_RANGE;
    uint32_t n = fi + 1;
    file_info *f = realloc(e->files, n * sizeof *f);
    if (!f)
        return CDR_E_NOMEM;
    memset(f + e->n_files, 0, (n - e->n_files) * sizeof *f);
    e->files = f;
    e->n_files = n;
    return CDR_OK;
}

cdr_err cdr_engine_set_file(cdr_engine *e, uint32_t fi, const char *name)
{
    cdr_err r = grp_ensure_file(e, fi);
    if (r)
        return r;
    free(e->files[fi].name);
    e->files[fi].name = strdup(name ? name : "");
    return e->files[fi].name ? CDR_OK : CDR_E_NOMEM;
}

void cdr_engine_exclude_file(cdr_engine *e, uint32_t fi)
{
    if (grp_ensure_file(e, fi) == CDR_OK)
        e->files[fi].excluded = 1;
}

cdr_err cdr_engine_set_file_id(cdr_engine *e, uint32_t fi, int64_t db_file_id)
{
    cdr_err r = grp_ensure_file(e, fi);
    if (r == CDR_OK)
        e->files[fi].db_id = db_file_id;
    return r;
}

uint64_t cdr_engine_file_copies(const cdr_engine *e, uint32_t fi)
{
    return fi < e->n_files ? e->files[fi].copies : 0;
}

/* With a state: the anchors of the file (line -> offset every
 * ST_ANCHOR_LINES lines), so that the state stores an offset as a small
 * residual; and the months of the records. */
static cdr_err note_row(cdr_engine *e, const cdr_row *r)
{
    file_info *f = &e->files[r->file_index];
    if (r->line >= f->next_anchor) {
        if (f->n_anchors == f->anchors_cap) {
            uint32_t nc = f->anchors_cap ? f->anchors_cap * 2 : 64;
            st_anchor *a = realloc(f->anchors, nc * sizeof *a);
            if (!a)
                return CDR_E_NOMEM;
            f->anchors = a;
            f->anchors_cap = nc;
        }
        f->anchors[f->n_anchors++] = (st_anchor){r->line, r->offset};
        f->next_anchor = r->line + ST_ANCHOR_LINES;
    }
    cdr_month m = cdr_time_month(r->start);
    size_t lo = 0, hi = e->n_months;
    while (lo < hi) {
        size_t k = lo + (hi - lo) / 2;
        if (e->months[k] < m)
            lo = k + 1;
        else
            hi = k;
    }
    if (lo < e->n_months && e->months[lo] == m)
        return CDR_OK;
    if (cdr_grow(&e->months, &e->months_cap, e->n_months + 1, sizeof *e->months, 8))
        return CDR_E_NOMEM;
    memmove(e->months + lo + 1, e->months + lo, (e->n_months - lo) * sizeof *e->months);
    e->months[lo] = m;
    e->n_months++;
    return CDR_OK;
}

static cdr_err set_extra_names(cdr_engine *e, uint32_t fi, const cdr_row *r)
{
    file_info *f = &e->files[fi];
    if (f->n_extra == r->n_extra && (f->extra_names || r->n_extra == 0))
        return CDR_OK;
    size_t total = 0;
    for (uint32_t i = 0; i < r->n_extra; i++)
        total += r->extra_names[i].n + 1;
    cdr_str *names = calloc(r->n_extra ? r->n_extra : 1, sizeof *names);
    char *store = malloc(total ? total : 1);
    if (!names || !store) {
        free(names);
        free(store);
        return CDR_E_NOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < r->n_extra; i++) {
        memcpy(store + k, r->extra_names[i].p, r->extra_names[i].n);
        names[i].p = store + k;
        names[i].n = r->extra_names[i].n;
        k += r->extra_names[i].n;
        store[k++] = '\0';
    }
    free(f->extra_names);
    free(f->extra_store);
    f->extra_names = names;
    f->extra_store = store;
    f->n_extra = r->n_extra;
    return CDR_OK;
}

cdr_err cdr_engine_add(cdr_engine *e, const cdr_row *r)
{
    cdr_err err;
    if (e->finished)
        return CDR_E_INTERNAL;
    if ((err = grp_ensure_file(e, r->file_index)) != CDR_OK)
        return err;
    if (e->o.month >= 0 && cdr_time_month(r->start) != e->o.month) {
        e->out_of_scope++;
        return CDR_OK;
    }
    if (e->o.msisdn &&
        (strlen(e->o.msisdn) != r->msisdn.n || memcmp(e->o.msisdn, r->msisdn.p, r->msisdn.n))) {
        e->out_of_scope++;
        return CDR_OK;
    }
    if (r->n_extra && (err = set_extra_names(e, r->file_index, r)) != CDR_OK)
        return err;
    if (r->n_extra > 65535)
        return CDR_E_RANGE;
    if (e->o.state && (err = note_row(e, r)) != CDR_OK)
        return err;

    packing pk;
    if ((err = pack_prepare(r, &pk)) != CDR_OK)
        return err;
    size_t need = pk.need;

    unsigned char *d;
    if (e->o.threads > 1 && !e->dist_tried) {
        e->dist_tried = 1; /* one attempt: without a thread, distribute here */
        grp_dist_start(e);
    }
    if (e->dist_on) {
        if ((!e->cur || e->cur->n + need > e->cur->cap) &&
            (err = grp_stage_next(e, need)) != CDR_OK)
            return err;
        d = e->cur->data + e->cur->n;
        e->cur->n += need;
    } else if ((err = grp_bucket_reserve(e, &e->b[msisdn_hash(r->msisdn.p, r->msisdn.n) >> 56],
                                         need, &d)) != CDR_OK) {
        return err;
    }
    pack_write(d, r, &pk);
    return CDR_OK;
}
