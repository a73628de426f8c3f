/* cdrecon — the months of a finish with a month state: their live segments and checkpoints opened, their new state files written, committed or discarded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rate_int.h"

void rt_free_months(cdr_engine *e)
{
    for (size_t i = 0; i < e->n_em; i++) {
        emonth *em = &e->em[i];
        for (size_t s = 0; s < em->n_segs; s++)
            free(em->seg_files[s]);
        free(em->seg_files);
        free(em->segs);
        st_segw_free(em->segw);
        st_ckw_free(em->ckw);
    }
    free(e->em);
    e->em = NULL;
    e->n_em = 0;
}

static int has_month(const cdr_month *m, size_t n, cdr_month x)
{
    for (size_t i = 0; i < n; i++)
        if (m[i] == x)
            return 1;
    return 0;
}

uint32_t rt_file_by_db_id(const cdr_engine *e, int64_t db_id)
{
    for (uint32_t i = 0; i < e->n_files && db_id != 0; i++)
        if (e->files[i].db_id == db_id)
            return i;
    return UINT32_MAX;
}

/* The engine file of a stored file (by its database id), registered on
 * first sight. */
static cdr_err stored_file(cdr_engine *e, const st_file *f, uint32_t *idx)
{
    uint32_t known = rt_file_by_db_id(e, f->db_id);
    if (known != UINT32_MAX) {
        *idx = known;
        return CDR_OK;
    }
    uint32_t k = e->n_files;
    cdr_err err = grp_ensure_file(e, k);
    if (err == CDR_OK)
        err = cdr_engine_set_file(e, k, f->name);
    if (err != CDR_OK)
        return err;
    file_info *fi = &e->files[k];
    fi->db_id = f->db_id;
    fi->stored = 1;
    if (f->n_extra) {
        size_t total = 0;
        for (uint32_t i = 0; i < f->n_extra; i++)
            total += strlen(f->extra_names[i]) + 1;
        fi->extra_names = calloc(f->n_extra, sizeof *fi->extra_names);
        fi->extra_store = malloc(total);
        if (!fi->extra_names || !fi->extra_store)
            return CDR_E_NOMEM;
        size_t at = 0;
        for (uint32_t i = 0; i < f->n_extra; i++) {
            size_t l = strlen(f->extra_names[i]);
            memcpy(fi->extra_store + at, f->extra_names[i], l + 1);
            fi->extra_names[i] = (cdr_str){fi->extra_store + at, l};
            at += l + 1;
        }
        fi->n_extra = f->n_extra;
    }
    *idx = k;
    return CDR_OK;
}

/* The months a finish touches: those of the new records, and with rerate
 * those asked (of the months the state holds); sorted, into *want (to free). */
static cdr_err wanted_months(const cdr_engine *e, cdr_month **want, size_t *nw)
{
    size_t nsm = 0;
    const cdr_month *sm = cdr_state_months(e->o.state, &nsm);
    cdr_month *w = malloc((e->n_months + nsm + e->o.n_rerate_months + 1) * sizeof *w);
    if (!w)
        return CDR_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < e->n_months; i++)
        w[n++] = e->months[i];
    if (e->o.rerate) {
        for (size_t i = 0; i < nsm; i++)
            if ((e->o.n_rerate_months == 0 ||
                 has_month(e->o.rerate_months, e->o.n_rerate_months, sm[i])) &&
                !has_month(w, n, sm[i]))
                w[n++] = sm[i];
    }
    /* sorted */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && w[j - 1] > w[j]; j--) {
            cdr_month t = w[j];
            w[j] = w[j - 1];
            w[j - 1] = t;
        }
    *want = w;
    *nw = n;
    return CDR_OK;
}

/* The files of this run, as the new segments' file tables name them
 * (*files: n_run_files of them, each with its extra names; to free with
 * free_run_files). */
static cdr_err run_file_table(const cdr_engine *e, st_file **files)
{
    st_file *run_files = calloc(e->n_run_files ? e->n_run_files : 1, sizeof *run_files);
    *files = run_files;
    if (!run_files)
        return CDR_E_NOMEM;
    for (uint32_t i = 0; i < e->n_run_files; i++) {
        const file_info *f = &e->files[i];
        run_files[i].db_id = f->db_id;
        run_files[i].name = f->name ? f->name : (char *)"";
        run_files[i].n_extra = f->n_extra;
        run_files[i].anchors = f->anchors;
        run_files[i].n_anchors = f->n_anchors;
        run_files[i].row_len = f->row_len;
        if (f->n_extra) {
            run_files[i].extra_names = calloc(f->n_extra, sizeof(char *));
            if (!run_files[i].extra_names)
                return CDR_E_NOMEM;
            for (uint32_t k = 0; k < f->n_extra; k++)
                run_files[i].extra_names[k] = (char *)f->extra_names[k].p;
        }
    }
    return CDR_OK;
}

static void free_run_files(const cdr_engine *e, st_file *run_files)
{
    if (!run_files)
        return;
    for (uint32_t i = 0; i < e->n_run_files; i++)
        free(run_files[i].extra_names);
    free(run_files);
}

/* Month em of the finish: its live segments (their files in the engine's
 * file table) and checkpoint file, and writers for its new segment (when
 * the run has records of it) and checkpoint file. */
static cdr_err open_month(cdr_engine *e, emonth *em, const st_file *run_files)
{
    cdr_err err = CDR_OK;
    em->rerate = e->o.rerate &&
                 (e->o.n_rerate_months == 0 ||
                  has_month(e->o.rerate_months, e->o.n_rerate_months, em->m));
    st_segr **segs;
    em->n_segs = st_state_segments(e->o.state, em->m, &segs);
    em->segs = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->segs);
    em->seg_files = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->seg_files);
    if (!em->segs || !em->seg_files)
        return CDR_E_NOMEM;
    for (size_t k = 0; k < em->n_segs && err == CDR_OK; k++) {
        em->segs[k] = segs[k];
        size_t nf = st_segr_n_files(segs[k]);
        em->seg_files[k] = calloc(nf ? nf : 1, sizeof **em->seg_files);
        if (!em->seg_files[k])
            return CDR_E_NOMEM;
        for (size_t f = 0; f < nf && err == CDR_OK; f++)
            err = stored_file(e, st_segr_file(segs[k], f), &em->seg_files[k][f]);
    }
    em->ckp = st_state_checkpoint(e->o.state, em->m);
    char name[64], path[4096];
    if (err == CDR_OK && has_month(e->months, e->n_months, em->m)) {
        cdr_state_file_name(CDR_STATE_SEGMENT, em->m, e->o.run_id, name);
        snprintf(path, sizeof path, "%s/%s", e->o.state_dir, name);
        err = st_segw_create(path, em->m, run_files, e->n_run_files, &em->segw, e->err,
                             sizeof e->err);
    }
    if (err == CDR_OK) {
        cdr_state_file_name(CDR_STATE_CHECKPOINT, em->m, e->o.run_id, name);
        snprintf(path, sizeof path, "%s/%s", e->o.state_dir, name);
        err = st_ckw_create(path, em->m, &em->ckw, e->err, sizeof e->err);
    }
    return err;
}

/* The months a finish touches (wanted_months), each opened (open_month);
 * every stored file they name is registered in the engine's file table. */
cdr_err rt_setup_months(cdr_engine *e)
{
    e->n_run_files = e->n_files;
    for (uint32_t i = 0; i < e->n_files; i++) {
        file_info *f = &e->files[i];
        f->row_len = 0;
        f->copies = 0;
        if (f->n_anchors >= 2) {
            const st_anchor *a = &f->anchors[0], *z = &f->anchors[f->n_anchors - 1];
            if (z->line > a->line)
                f->row_len = (z->offset - a->offset) / (z->line - a->line);
        }
    }
    cdr_month *want;
    size_t nw;
    cdr_err err = wanted_months(e, &want, &nw);
    if (err != CDR_OK)
        return err;
    e->em = calloc(nw ? nw : 1, sizeof *e->em);
    if (!e->em) {
        free(want);
        return CDR_E_NOMEM;
    }
    e->n_em = nw;
    st_file *run_files;
    err = run_file_table(e, &run_files);
    for (size_t i = 0; i < nw && err == CDR_OK; i++) {
        e->em[i].m = want[i];
        err = open_month(e, &e->em[i], run_files);
    }
    free_run_files(e, run_files);
    free(want);
    return err;
}

static cdr_err add_state_file(cdr_engine_state_file **list, size_t *n, const char *name, int kind,
                              cdr_month m, uint64_t records, uint64_t bytes)
{
    cdr_engine_state_file *l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l)
        return CDR_E_NOMEM;
    *list = l;
    cdr_engine_state_file *f = &l[(*n)++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->kind = kind;
    f->month = m;
    f->records = records;
    f->bytes = bytes;
    return CDR_OK;
}

/* Finish the months' new files (renamed into place) and list them, with the
 * live checkpoints they replace. */
cdr_err rt_commit_months(cdr_engine *e)
{
    cdr_err err = CDR_OK;
    char name[64];
    for (size_t i = 0; i < e->n_em && err == CDR_OK; i++) {
        emonth *em = &e->em[i];
        if (em->segw && st_segw_records(em->segw) > 0) {
            if ((err = st_segw_commit(em->segw, e->err, sizeof e->err)) != CDR_OK)
                break;
            cdr_state_file_name(CDR_STATE_SEGMENT, em->m, e->o.run_id, name);
            err = add_state_file(&e->written, &e->n_written, name, CDR_STATE_SEGMENT, em->m,
                                 st_segw_records(em->segw), st_segw_bytes(em->segw));
        }
        st_segw_free(em->segw);
        em->segw = NULL;
        if (err != CDR_OK)
            break;
        if (st_ckw_entries(em->ckw) > 0) {
            if ((err = st_ckw_commit(em->ckw, e->err, sizeof e->err)) != CDR_OK)
                break;
            cdr_state_file_name(CDR_STATE_CHECKPOINT, em->m, e->o.run_id, name);
            err = add_state_file(&e->written, &e->n_written, name, CDR_STATE_CHECKPOINT, em->m,
                                 st_ckw_entries(em->ckw), st_ckw_bytes(em->ckw));
            if (err == CDR_OK && em->ckp)
                err = add_state_file(&e->replaced, &e->n_replaced, st_ckr_name(em->ckp),
                                     CDR_STATE_CHECKPOINT, em->m, st_ckr_entries(em->ckp), 0);
        }
        st_ckw_free(em->ckw);
        em->ckw = NULL;
    }
    return err;
}

size_t cdr_engine_state_written(const cdr_engine *e, const cdr_engine_state_file **files)
{
    *files = e->written;
    return e->n_written;
}

size_t cdr_engine_state_replaced(const cdr_engine *e, const cdr_engine_state_file **files)
{
    *files = e->replaced;
    return e->n_replaced;
}

void cdr_engine_state_discard(cdr_engine *e)
{
    char path[4096];
    for (size_t i = 0; i < e->n_written && e->o.state_dir; i++) {
        snprintf(path, sizeof path, "%s/%s", e->o.state_dir, e->written[i].name);
        unlink(path);
    }
    free(e->written);
    e->written = NULL;
    e->n_written = 0;
    free(e->replaced);
    e->replaced = NULL;
    e->n_replaced = 0;
    rt_free_months(e); /* (unlinks the temporary files of writers not committed) */
}

cdr_err cdr_engine_rewind(cdr_engine *e)
{
    if (!e->finished || !e->o.state)
        return CDR_E_INTERNAL;
    cdr_engine_state_discard(e);
    for (uint32_t i = 0; i < e->n_files; i++)
        e->files[i].copies = 0;
    /* the stored files registered by the finish are registered again */
    for (uint32_t i = e->n_run_files; i < e->n_files; i++) {
        free(e->files[i].name);
        free(e->files[i].extra_names);
        free(e->files[i].extra_store);
        free(e->files[i].anchors);
        memset(&e->files[i], 0, sizeof e->files[i]);
    }
    if (e->n_run_files < e->n_files)
        e->n_files = e->n_run_files;
    e->finished = 0;
    e->err[0] = '\0';
    return CDR_OK;
}
