/* cdrecon — the engine's driver: its options and life cycle, the rating workers and the in-order hand-over of their results to the sink. */
/*
 * The data path (src/engine_int.h): rows are packed and filed into
 * NBUCKET buckets by msisdn hash as they are added (group/add.c; with
 * threads > 1 through the distributor thread, group/distributor.c),
 * spilling to disk past the memory budget. cdr_engine_finish rates the
 * buckets: each worker takes the next bucket, loads and sorts it
 * (group/walk.c), rates its subscriber-months (rate/) and compares them
 * (reconcile/), keeping the results in the bucket's outbuf (rate/emit.c);
 * this thread drains the outbufs to the sink strictly in bucket order, so
 * the output is the same with any number of threads and with or without
 * spilling. With a month state, the months' state files are opened before
 * and committed after (rate/months.c).
 *
 * This file stays in src/ itself, above the folders it runs: it is the
 * implementation of include/cdrecon/engine.h and belongs to no stage (the
 * distributor thread is group/'s, but the workers and the drain serve all
 * three).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "engine_int.h"
#include "rate_int.h"
#include "sha256.h"

void cdr_engine_opts_init(cdr_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mem_budget = (size_t)1 << 30;
    o->max_duration = 10800;
    o->tolerance = 0;
    o->month = -1;
    o->threads = 2; /* rating workers; the results do not depend on it */
}

void cdr_rating_identity(const struct cdr_tariff *t, const cdr_engine_opts *o, uint8_t out[32])
{
    cdr_tariff_sha256(t, out);
    if (o->tolerance == 0 && o->max_duration == 10800)
        return; /* the defaults: the tariff's own hash (databases made before keep it) */
    char opt[96];
    int n = snprintf(opt, sizeof opt, "tolerance=%lld;max_duration=%lld", (long long)o->tolerance,
                     (long long)o->max_duration);
    cdr_sha256 c;
    cdr_sha256_init(&c);
    cdr_sha256_update(&c, out, 32);
    cdr_sha256_update(&c, opt, (size_t)n);
    cdr_sha256_final(&c, out);
}

const char *cdr_rec_status_name(cdr_rec_status s)
{
    static const char *const n[CDR_RS__COUNT] = {
        "rated", "duplicate", "partial_first", "partial_rest",
        "free_number", "no_subscription", "segment_over", "unrated",
    };
    return (unsigned)s < CDR_RS__COUNT ? n[s] : "?";
}

const char *cdr_engine_errmsg(const cdr_engine *e)
{
    return e ? e->err : "";
}

cdr_err cdr_engine_new(const cdr_tariff *t, const cdr_engine_opts *o, cdr_engine **out)
{
    cdr_engine *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return CDR_E_NOMEM;
    e->t = t;
    if (o)
        e->o = *o;
    else
        cdr_engine_opts_init(&e->o);
    if (e->o.mem_budget < ((size_t)1 << 16))
        e->o.mem_budget = (size_t)1 << 16; /* below one bucket's first block */
    pthread_mutex_init(&e->tmu, NULL);
    *out = e;
    return CDR_OK;
}

cdr_csvw *eng_text_take(cdr_engine *e)
{
    cdr_csvw *w = NULL;
    pthread_mutex_lock(&e->tmu);
    if (e->n_tpool > 0)
        w = e->tpool[--e->n_tpool];
    pthread_mutex_unlock(&e->tmu);
    if (!w && cdr_csvw_open_memory(&w) != CDR_OK)
        return NULL;
    return w;
}

/* Give a drained (or failed) writer back: emptied and kept if it is sound
 * and there is room, else freed. */
static void text_give(cdr_engine *e, cdr_csvw *w)
{
    if (!w)
        return;
    if (cdr_csvw_status(w) == CDR_OK) {
        cdr_csvw_memory_reset(w);
        pthread_mutex_lock(&e->tmu);
        if (e->n_tpool < TPOOL_MAX) {
            e->tpool[e->n_tpool++] = w;
            w = NULL;
        }
        pthread_mutex_unlock(&e->tmu);
    }
    cdr_csvw_free(w);
}

void cdr_engine_set_tariff(cdr_engine *e, const cdr_tariff *t)
{
    e->t = t;
}

void cdr_engine_free(cdr_engine *e)
{
    if (!e)
        return;
    grp_dist_stop(e);
    grp_remove_spill(e);
    for (int i = 0; i < NBUCKET; i++)
        grp_free_chunks(e, &e->b[i]);
    for (uint32_t i = 0; i < e->n_files; i++) {
        free(e->files[i].name);
        free(e->files[i].extra_names);
        free(e->files[i].extra_store);
        free(e->files[i].anchors);
    }
    free(e->files);
    rt_free_months(e);
    free(e->months);
    free(e->written);
    free(e->replaced);
    for (int i = 0; i < e->n_tpool; i++)
        cdr_csvw_free(e->tpool[i]);
    pthread_mutex_destroy(&e->tmu);
    free(e);
}

void cdr_engine_set_state_ids(cdr_engine *e, int64_t run_id, uint32_t tariff_id)
{
    e->o.run_id = run_id;
    e->o.tariff_id = tariff_id;
}

/* ---- the results of a bucket, handed to the sink in order ---- */

static void outbuf_clear(cdr_engine *e, const cdr_engine_sink *sink, outbuf *o)
{
    if (o->work && sink->free_work)
        sink->free_work(o->work, sink->user);
    text_give(e, o->text_w);
    free(o->recs);
    free(o->cands);
    free(o->kinds);
    for (ablk *b = o->arena, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(o->spill_data);
    for (chunk *c = o->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(o->sms);
    for (size_t i = 0; i < o->n_parts; i++) {
        st_part_free(&o->parts[i]);
        st_buf_free(&o->ckparts[i].b);
        st_buf_free(&o->ckparts[i].f);
    }
    free(o->parts);
    free(o->ckparts);
    memset(o, 0, sizeof *o);
}

/* Whether the results of a bucket go through an outbuf even on one thread
 * (always with a state: the bucket's state parts live there). */
static int uses_outbuf(const cdr_engine *e, const cdr_engine_sink *sink)
{
    return sink->render || sink->work_record || sink->work_candidate || e->o.state;
}

/* On the worker, after the bucket's last record: the end of the sink's work. */
static cdr_err end_work(const cdr_engine_sink *sink, outbuf *o)
{
    return o->work && sink->work_end ? sink->work_end(o->work, sink->user) : CDR_OK;
}

/* Hand a finished bucket's results to the sink, in order (and its state
 * parts to the month's writers). */
static cdr_err drain(cdr_engine *e, const cdr_engine_sink *sink, outbuf *o)
{
    size_t ir = 0, ic = 0, is = 0;
    for (size_t mi = 0; mi < o->n_parts; mi++) {
        emonth *em = &e->em[mi];
        cdr_err err;
        if (o->parts[mi].n_records) {
            if (!em->segw)
                return CDR_E_INTERNAL;
            if ((err = st_segw_append(em->segw, &o->parts[mi])) != CDR_OK)
                return err;
            em->new_records += o->parts[mi].n_records;
        }
        if ((err = st_ckw_append(em->ckw, &o->ckparts[mi])) != CDR_OK)
            return err;
    }
    if (o->work && sink->on_work && sink->on_work(o->work, sink->user))
        return CDR_E_INTERRUPTED;
    if (o->text_w) {
        size_t len;
        const char *text = cdr_csvw_memory(o->text_w, &len);
        if (cdr_csvw_status(o->text_w) != CDR_OK)
            return cdr_csvw_status(o->text_w);
        if (len && sink->on_text && sink->on_text(text, len, cdr_csvw_rows(o->text_w), sink->user))
            return CDR_E_INTERRUPTED;
    }
    for (size_t k = 0; k < o->n_kinds; k++) {
        if (o->kinds[k] == 0) {
            const cdr_rated *r = &o->recs[ir++];
            if (sink->on_record && !sink->render &&
                (!sink->record_statuses || (sink->record_statuses & (1u << r->status))) &&
                sink->on_record(r, sink->user))
                return CDR_E_INTERRUPTED;
            if (r->has_finding && sink->on_finding && sink->on_finding(&r->finding, sink->user))
                return CDR_E_INTERRUPTED;
        } else if (o->kinds[k] == 2) {
            if (sink->on_submonth && sink->on_submonth(&o->sms[is], sink->user))
                return CDR_E_INTERRUPTED;
            is++;
        } else if (sink->on_candidate && sink->on_candidate(&o->cands[ic++], sink->user)) {
            return CDR_E_INTERRUPTED;
        }
    }
    return CDR_OK;
}

/* ---- the rating workers ---- */

static void ctx_free(ctx *c)
{
    if (c->wmo) {
        for (size_t mi = 0; mi < c->e->n_em; mi++) {
            st_ckcur_free(&c->wmo[mi].ck);
            for (size_t s = 0; s < c->e->em[mi].n_segs; s++)
                st_gcur_free(&c->wmo[mi].g[s]);
            free(c->wmo[mi].g);
        }
        free(c->wmo);
    }
    free(c->st.p);
    free(c->st.b);
    free(c->mix);
    free(c->wf);
    free(c->copies);
    if (c->enc_ready)
        st_enc_free(&c->enc);
    st_ckpt_clear(&c->ck_new);
    st_buf_free(&c->rw_tail);
    free(c->tx);
    free(c->fps);
    free(c->rids);
    rt_htab_free(&c->rid);
    rt_htab_free(&c->content);
    rt_htab_free(&c->group);
    free(c->w);
    free(c->pb);
    free(c->ents);
    free(c->tmp);
    free(c->blobs);
    free(c->runs);
    free(c->xs);
}

static void add_totals(cdr_engine_totals *t, const cdr_engine_totals *a)
{
    t->records += a->records;
    t->excluded += a->excluded;
    t->duplicates += a->duplicates;
    t->unrated += a->unrated;
    t->findings += a->findings;
    for (int i = 0; i < CDR_CAT__COUNT; i++) {
        t->by_category[i] += a->by_category[i];
        t->amount_by_category[i] =
            cdr_money_total_add(t->amount_by_category[i], a->amount_by_category[i]);
    }
    t->candidates += a->candidates;
    t->overcharge = cdr_money_total_add(t->overcharge, a->overcharge);
    t->refund = cdr_money_total_add(t->refund, a->refund);
    t->leakage = cdr_money_total_add(t->leakage, a->leakage);
    t->leakage_records += a->leakage_records;
    t->submonths += a->submonths;
    t->submonths_new += a->submonths_new;
    t->submonths_continued += a->submonths_continued;
    t->submonths_full += a->submonths_full;
    t->submonths_rewound += a->submonths_rewound;
    t->records_rerated += a->records_rerated;
    t->submonths_other_tariff += a->submonths_other_tariff;
    t->candidates_changed += a->candidates_changed;
    t->candidates_withdrawn += a->candidates_withdrawn;
}

/* A worker's state for the months of a finish with a state. */
static cdr_err ctx_init_state(ctx *c)
{
    cdr_engine *e = c->e;
    if (!e->o.state)
        return CDR_OK;
    c->copies = calloc(e->n_files ? e->n_files : 1, sizeof *c->copies);
    c->wmo = calloc(e->n_em ? e->n_em : 1, sizeof *c->wmo);
    if (!c->copies || !c->wmo)
        return CDR_E_NOMEM;
    for (size_t mi = 0; mi < e->n_em; mi++) {
        c->wmo[mi].g = calloc(e->em[mi].n_segs ? e->em[mi].n_segs : 1, sizeof *c->wmo[mi].g);
        if (!c->wmo[mi].g)
            return CDR_E_NOMEM;
    }
    return CDR_OK;
}

/* A worker's copy counts into the files' (after the finish). */
static void add_copies(cdr_engine *e, const ctx *c)
{
    if (!c->copies)
        return;
    for (uint32_t i = 0; i < e->n_files; i++)
        e->files[i].copies += c->copies[i];
}

/* With a state: the bucket's parts, one per month of the finish. */
static cdr_err bucket_parts(ctx *c)
{
    size_t n = c->e->n_em;
    outbuf *o = c->out;
    o->parts = calloc(n ? n : 1, sizeof *o->parts);
    o->ckparts = calloc(n ? n : 1, sizeof *o->ckparts);
    if (!o->parts || !o->ckparts)
        return CDR_E_NOMEM;
    o->n_parts = n;
    for (size_t i = 0; i < n; i++)
        st_part_init(&o->parts[i]);
    return CDR_OK;
}

/* Load, sort and rate one bucket (and with a state, every subscriber-month
 * of its hash range the state holds). With c->out set, the bucket's blobs
 * are kept in the outbuf (they must live until it is drained). */
static cdr_err run_bucket(ctx *c, int bi)
{
    cdr_err err = CDR_OK;
    c->bucket = bi;
    if (c->e->o.state && (err = bucket_parts(c)) != CDR_OK)
        return err;
    err = grp_walk_bucket(c, bi);
    if (err == CDR_OK && c->e->o.state)
        err = rt_finish_bucket_state(c);
    return err;
}

/* Buckets rated ahead of the drain. Each held bucket costs memory (its
 * blobs, the records the sink wants one by one, its rendered text and the
 * sink's work state). 8, not 4: on a late night a bucket's drain into the
 * database varies, and with 4 the workers waited for it (night 30 of the
 * bench month: rating 0.59-0.65 -> 0.56-0.61 s, 5 of 5 pairs faster; peak
 * 197 -> 199 MB, and a one-shot run of the month 989 -> 1,000 MB). */
#define LOOKAHEAD 8

typedef struct par {
    cdr_engine *e;
    const cdr_engine_sink *sink;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next, drained, stop;
    outbuf res[NBUCKET];
} par;

typedef struct worker {
    par *p;
    ctx c;
    cdr_engine_totals tot;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    par *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next < NBUCKET && p->next >= p->drained + LOOKAHEAD)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop || p->next >= NBUCKET) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        int bi = p->next++;
        pthread_mutex_unlock(&p->mu);

        w->c.out = &p->res[bi];
        cdr_err err = run_bucket(&w->c, bi);
        if (err == CDR_OK)
            err = end_work(p->sink, &p->res[bi]);

        pthread_mutex_lock(&p->mu);
        p->res[bi].err = err;
        p->res[bi].done = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Two (or more) workers rate buckets ahead; this thread drains them to the
 * sink strictly in bucket order, so the output is the serial one. */
static cdr_err finish_parallel(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot,
                               int nthreads)
{
    par *p = calloc(1, sizeof *p);
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    cdr_err err = CDR_OK;
    int started = 0;
    if (!p || !ws) {
        free(p);
        free(ws);
        return CDR_E_NOMEM;
    }
    p->e = e;
    p->sink = sink;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < nthreads; i++) {
        ws[i].p = p;
        ws[i].c.e = e;
        ws[i].c.sink = sink;
        ws[i].c.tot = &ws[i].tot;
        if ((err = ctx_init_state(&ws[i].c)) != CDR_OK)
            break;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            err = CDR_E_NOMEM;
            break;
        }
        started++;
    }
    for (int bi = 0; bi < NBUCKET && err == CDR_OK && started; bi++) {
        pthread_mutex_lock(&p->mu);
        while (!p->res[bi].done)
            pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        err = p->res[bi].err;
        if (err == CDR_OK)
            err = drain(e, sink, &p->res[bi]);
        outbuf_clear(e, sink, &p->res[bi]);
        pthread_mutex_lock(&p->mu);
        p->drained = bi + 1;
        if (err != CDR_OK)
            p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);
    for (int bi = 0; bi < NBUCKET; bi++)
        outbuf_clear(e, sink, &p->res[bi]);
    for (int i = 0; i < nthreads; i++) {
        add_totals(tot, &ws[i].tot);
        add_copies(e, &ws[i].c);
        ctx_free(&ws[i].c);
    }
    if (!started && err == CDR_OK)
        err = CDR_E_NOMEM;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(ws);
    free(p);
    return err;
}

/* One thread: each bucket rated, then drained, in order. */
static cdr_err finish_serial(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.sink = sink;
    c.tot = tot;
    outbuf ob;
    memset(&ob, 0, sizeof ob);
    cdr_err err = ctx_init_state(&c);
    for (int bi = 0; bi < NBUCKET && err == CDR_OK; bi++) {
        c.out = uses_outbuf(e, sink) ? &ob : NULL; /* rendering always goes through a buffer */
        err = run_bucket(&c, bi);
        if (err == CDR_OK && c.out)
            err = end_work(sink, &ob);
        if (err == CDR_OK && c.out)
            err = drain(e, sink, &ob);
        outbuf_clear(e, sink, &ob);
    }
    add_copies(e, &c);
    ctx_free(&c);
    return err;
}

cdr_err cdr_engine_finish(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot)
{
    cdr_err err = CDR_OK;
    cdr_engine_sink none = {0};
    cdr_engine_totals dummy;
    if (!tot)
        tot = &dummy;
    memset(tot, 0, sizeof *tot);
    if (!sink)
        sink = &none;
    if (e->finished || !e->t || (e->o.state && !e->o.state_dir))
        return CDR_E_INTERNAL;
    e->finished = 1;
    if ((err = grp_dist_stop(e)) != CDR_OK)
        return err;
    /* If anything was spilled, spill the rest too, so that buckets are loaded
     * one at a time and peak memory stays near a few buckets. */
    if (e->spilled && (err = grp_spill_all(e)) != CDR_OK)
        return err;
    e->mem = 0; /* from here the buckets are consumed; peak was measured while adding */
    if (e->o.state && (err = rt_setup_months(e)) != CDR_OK)
        return err;

    if (e->o.threads > 1)
        err = finish_parallel(e, sink, tot, e->o.threads > 8 ? 8 : e->o.threads);
    else
        err = finish_serial(e, sink, tot);
    if (err == CDR_OK && e->o.state)
        err = rt_commit_months(e);
    tot->out_of_scope = e->out_of_scope;
    tot->spilled = e->spilled;
    tot->spilled_bytes = e->spilled_bytes;
    tot->peak_mem = e->peak;
    if (!e->o.state)
        grp_remove_spill(e); /* (with a state a finish may run again) */
    return err;
}
