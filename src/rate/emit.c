/* cdrecon — results of rating into the bucket's outbuf, in order, with copies of what will not outlive the subscriber-month (or straight to the sink). */
/*
 * On the worker that rates a bucket: each record (rendered here when the
 * sink renders), each candidate and each subscriber-month event is kept in
 * the bucket's outbuf, which the driver (src/engine.c) hands to the sink in
 * bucket order. Without an outbuf (one thread, a sink with no per-bucket
 * work) they go to the sink at once.
 */
#include <stdlib.h>
#include <string.h>

#include "rate_int.h"
#include "grow.h"

void *rt_arena_alloc(outbuf *o, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!o->arena || o->arena->n + n > o->arena->cap) {
        size_t cap = n > 65536 ? n : 65536;
        ablk *b = malloc(sizeof(ablk) + cap);
        if (!b)
            return NULL;
        b->next = o->arena;
        b->n = 0;
        b->cap = cap;
        o->arena = b;
    }
    void *p = o->arena->d + o->arena->n;
    o->arena->n += n;
    return p;
}

outbuf_mark rt_outbuf_save(const outbuf *o)
{
    outbuf_mark m = {o->n_recs, o->n_cands, o->n_sms, o->n_kinds};
    return m;
}

void rt_outbuf_restore(outbuf *o, const outbuf_mark *m)
{
    o->n_recs = m->n_recs;
    o->n_cands = m->n_cands;
    o->n_sms = m->n_sms;
    o->n_kinds = m->n_kinds;
}

/* A view copied into the bucket's arena (for views into memory that goes
 * before the drain: the stored records of the subscriber-month). */
static int keep_str(outbuf *o, cdr_str *s)
{
    if (s->n == 0)
        return 0;
    char *p = rt_arena_alloc(o, s->n);
    if (!p)
        return -1;
    memcpy(p, s->p, s->n);
    s->p = p;
    return 0;
}

cdr_err rt_emit_keep(ctx *c, const cdr_rated *r)
{
    outbuf *o = c->out;
    if (cdr_grow(&o->recs, &o->cap_recs, o->n_recs + 1, sizeof *o->recs, 256) ||
        cdr_grow(&o->kinds, &o->cap_kinds, o->n_kinds + 1, 1, 256))
        return CDR_E_NOMEM;
    cdr_rated *x = &o->recs[o->n_recs];
    *x = *r;
    if (r->row.n_extra) {
        cdr_str *ex = rt_arena_alloc(o, r->row.n_extra * sizeof *ex);
        if (!ex)
            return CDR_E_NOMEM;
        memcpy(ex, r->row.extra, r->row.n_extra * sizeof *ex);
        x->row.extra = ex;
    }
    if (r->has_finding) {
        size_t l = strlen(r->finding.explanation) + 1;
        char *t = rt_arena_alloc(o, l);
        if (!t)
            return CDR_E_NOMEM;
        memcpy(t, r->finding.explanation, l);
        x->finding.explanation = t;
    }
    if (c->e->o.state) {
        /* a stored record's bytes, and the record_id of a stored original,
         * are reused for the next subscriber-month: keep copies */
        if (keep_str(o, &x->dup_of))
            return CDR_E_NOMEM;
        if (!r->is_new) {
            cdr_str *ex = (cdr_str *)x->row.extra;
            if (keep_str(o, &x->row.record_id) || keep_str(o, &x->row.msisdn) ||
                keep_str(o, &x->row.peer) || keep_str(o, &x->row.call_id) ||
                keep_str(o, &x->row.sms_ref))
                return CDR_E_NOMEM;
            for (uint32_t i = 0; i < x->row.n_extra; i++)
                if (keep_str(o, &ex[i]))
                    return CDR_E_NOMEM;
            x->finding.msisdn = x->row.msisdn;
            x->finding.record_id = x->row.record_id;
            x->finding.peer = x->row.peer;
        }
    }
    o->n_recs++;
    o->kinds[o->n_kinds++] = 0;
    return CDR_OK;
}

cdr_err rt_emit_candidate(ctx *c, const cdr_candidate *cd)
{
    outbuf *o = c->out;
    if (c->sink->work_candidate) {
        cdr_err err = c->sink->work_candidate(&o->work, cd, c->sink->user);
        if (err != CDR_OK)
            return err;
    }
    if (!o)
        return c->sink->on_candidate && c->sink->on_candidate(cd, c->sink->user)
                   ? CDR_E_INTERRUPTED
                   : CDR_OK;
    if (cdr_grow(&o->cands, &o->cap_cands, o->n_cands + 1, sizeof *o->cands, 256) ||
        cdr_grow(&o->kinds, &o->cap_kinds, o->n_kinds + 1, 1, 256))
        return CDR_E_NOMEM;
    cdr_candidate *x = &o->cands[o->n_cands];
    *x = *cd;
    if (c->e->o.state && keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_cands++;
    o->kinds[o->n_kinds++] = 1;
    return CDR_OK;
}

cdr_err rt_emit_submonth(ctx *c, const cdr_submonth *sm)
{
    outbuf *o = c->out;
    if (!o)
        return c->sink->on_submonth && c->sink->on_submonth(sm, c->sink->user) ? CDR_E_INTERRUPTED
                                                                                : CDR_OK;
    if (cdr_grow(&o->sms, &o->cap_sms, o->n_sms + 1, sizeof *o->sms, 256) ||
        cdr_grow(&o->kinds, &o->cap_kinds, o->n_kinds + 1, 1, 256))
        return CDR_E_NOMEM;
    cdr_submonth *x = &o->sms[o->n_sms];
    *x = *sm;
    if (keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_sms++;
    o->kinds[o->n_kinds++] = 2;
    return CDR_OK;
}
