/*
 * cdrecon — the re-rating engine: the rating of subscriber-months and the
 * driver that runs it.
 *
 * Ingest and grouping are group/'s (src/group/group_int.h): every accepted
 * row is packed and filed into a bucket by msisdn hash, spilled to disk past
 * the memory budget; at the finish each bucket is loaded, sorted and walked
 * subscriber by subscriber (rt_subscriber below), month by month. The
 * comparison with the billed amounts is reconcile/'s. The order depends only
 * on the data, so spilling, threads or not give identical output.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "engine_int.h"
#include "reconcile_int.h"
#include "sha256.h"

/* (internal) a subscriber-month continued from its checkpoint reached a
 * limit that only rating it whole can decide: rate it whole */
#define CDR_E_AGAIN ((cdr_err)(CDR_E__COUNT + 100))

static void free_months(cdr_engine *e);

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
    free_months(e);
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

/* ------------------------------------------------------------------ */
/* Finish: sort, group, rate                                            */

/* Make room for n keys and clear only the part in use, so that one large
 * subscriber does not make every later (small) one pay for its size. */
static cdr_err htab_reset(htab *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    if (cap > t->cap) {
        free(t->h);
        free(t->v);
        t->h = malloc(cap * sizeof *t->h);
        t->v = malloc(cap * sizeof *t->v);
        if (!t->h || !t->v) {
            t->cap = 0;
            return CDR_E_NOMEM;
        }
        t->cap = cap;
    }
    t->mask = cap - 1;
    memset(t->v, 0xff, cap * sizeof *t->v); /* -1 */
    return CDR_OK;
}

static void htab_free(htab *t)
{
    free(t->h);
    free(t->v);
}

/* Per-record working state during one subscriber-month. */
struct work {
    const blob *b;
    int is_new;           /* read in this run (else from the state) */
    int32_t rid_first;    /* the first record with its record_id (itself if none before) */
    int g_stored;         /* (count_copies, at rid_first) a stored record has this id */
    uint32_t g_minfile;   /* (count_copies, at rid_first) the lowest file of its new ones */
    cdr_rec_status status;
    int32_t dup_of;       /* index of the original within the subscriber slice */
    int32_t group_first;  /* for partial parts: index of the first part; -1 */
    int64_t g_usage;      /* first part: merged usage */
    cdr_money g_billed;   /* first part: sum of parts' billed */
    int64_t g_sep_billable_usage; /* first part: sum of per-part usage rounded separately (voice s / data KB) */
    int64_t g_sep_whole_usage; /* the same, each part rounded up to a whole minute / MB */
    uint32_t g_parts;
    int32_t next_part;    /* chain of a group's parts, -1 at the end */
    int32_t last_part;    /* first part: the chain's tail */
};

struct pool_bal {
    int32_t plan, pool;
    int64_t left;
};

static int same_content(const blob *a, const blob *b)
{
    return a->service == b->service && a->direction == b->direction && a->start == b->start &&
           a->amount == b->amount && a->sms_part == b->sms_part &&
           a->partial_seq == b->partial_seq && a->l_peer == b->l_peer &&
           memcmp(b_peer(a), b_peer(b), a->l_peer) == 0 && a->l_call == b->l_call &&
           memcmp(b_call(a), b_call(b), a->l_call) == 0 && a->l_ref == b->l_ref &&
           memcmp(b_ref(a), b_ref(b), a->l_ref) == 0;
}

/* The hash of what same_content compares: the numbers, then peer, call_id
 * and sms_ref, which lie one after the other in the record (their lengths
 * are mixed in, so that the split between them counts). */
static uint64_t content_hash(const blob *a)
{
    uint64_t k[4] = {(uint64_t)a->start ^ ((uint64_t)a->amount << 32 | (uint64_t)a->amount >> 32),
                     ((uint64_t)a->service << 8 | a->direction) ^ ((uint64_t)a->sms_part << 16),
                     (uint64_t)a->partial_seq,
                     (uint64_t)a->l_peer | (uint64_t)a->l_call << 21 | (uint64_t)a->l_ref << 42};
    uint64_t h = cdr_hash_bytes(k, sizeof k, 1);
    return cdr_hash_bytes(b_peer(a), (size_t)a->l_peer + a->l_call + a->l_ref, h);
}

static int is_partial(const blob *b)
{
    return (b->service == CDR_SVC_VOICE || b->service == CDR_SVC_DATA) && b->l_call > 0 &&
           b->partial_seq > 0;
}

static int64_t *pool_left(ctx *c, int32_t plan, int32_t pool, int64_t allowance)
{
    for (size_t i = 0; i < c->n_pb; i++)
        if (c->pb[i].plan == plan && c->pb[i].pool == pool)
            return &c->pb[i].left;
    if (c->n_pb == c->pb_cap) {
        size_t nc = c->pb_cap ? c->pb_cap * 2 : 8;
        pool_bal *p = realloc(c->pb, nc * sizeof *p);
        if (!p)
            return NULL;
        c->pb = p;
        c->pb_cap = nc;
    }
    c->pb[c->n_pb] = (pool_bal){plan, pool, allowance};
    return &c->pb[c->n_pb++].left;
}

/* The record as a cdr_row view (extras rebuilt into scratch). */
static cdr_err fill_row(ctx *c, const blob *b, cdr_row *r)
{
    /* field by field, no memset of the whole row (a `rep stos`) */
    r->extra = NULL;
    r->extra_names = NULL;
    r->n_extra = 0;
    r->raw = (cdr_str){NULL, 0};
    r->msisdn = (cdr_str){b_msisdn(b), b->l_msisdn};
    r->record_id = (cdr_str){b_rid(b), b->l_rid};
    r->peer = (cdr_str){b_peer(b), b->l_peer};
    r->call_id = (cdr_str){b_call(b), b->l_call};
    r->sms_ref = (cdr_str){b_ref(b), b->l_ref};
    r->service = (cdr_service)b->service;
    r->direction = (cdr_direction)b->direction;
    r->start = b->start;
    r->duration_s = b->service == CDR_SVC_VOICE ? b->amount : -1;
    r->bytes = b->service == CDR_SVC_DATA ? b->amount : -1;
    r->sms_chars = b->service == CDR_SVC_SMS ? b->amount : -1;
    r->sms_part = b->sms_part;
    r->sms_parts = b->sms_parts;
    r->partial_seq = b->partial_seq;
    r->billed = b->billed;
    r->file_index = b->file_index;
    r->line = b->line;
    r->offset = b->offset;
    if (b->n_extra) {
        if (b->n_extra > c->xs_cap) {
            cdr_str *x = realloc(c->xs, b->n_extra * sizeof *x);
            if (!x)
                return CDR_E_NOMEM;
            c->xs = x;
            c->xs_cap = b->n_extra;
        }
        const unsigned char *s = b->x;
        for (uint32_t i = 0; i < b->n_extra; i++) {
            uint32_t l;
            s = get_len(s, &l);
            c->xs[i] = (cdr_str){(const char *)s, (size_t)l};
            s += l;
        }
        r->extra = c->xs;
        r->n_extra = b->n_extra;
        const cdr_engine *e = c->e;
        if (b->file_index < e->n_files && e->files[b->file_index].n_extra == b->n_extra)
            r->extra_names = e->files[b->file_index].extra_names;
        else
            r->n_extra = 0; /* names unknown: should not happen */
    }
    return CDR_OK;
}

/* ---- results of one bucket, kept for the drain when rating in parallel ---- */

static void *arena_alloc(outbuf *o, size_t n)
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

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 256;
    void *q = realloc(*p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

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
    }
    free(o->parts);
    free(o->ckparts);
    memset(o, 0, sizeof *o);
}

/* Where a bucket's results stand, to take back what a subscriber-month
 * emitted (a continuation redone whole). */
typedef struct outbuf_mark {
    size_t n_recs, n_cands, n_sms, n_kinds;
} outbuf_mark;

static outbuf_mark outbuf_save(const outbuf *o)
{
    outbuf_mark m = {o->n_recs, o->n_cands, o->n_sms, o->n_kinds};
    return m;
}

static void outbuf_restore(outbuf *o, const outbuf_mark *m)
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
    char *p = arena_alloc(o, s->n);
    if (!p)
        return -1;
    memcpy(p, s->p, s->n);
    s->p = p;
    return 0;
}

static cdr_err emit_record(ctx *c, const cdr_rated *r)
{
    outbuf *o = c->out;
    if (c->sink->work_record) {
        /* the sink's own work, here on the worker (o is set: see uses_outbuf) */
        cdr_err err = c->sink->work_record(&o->work, r, c->sink->user);
        if (err != CDR_OK)
            return err;
    }
    int want = (c->sink->on_record || c->sink->render) &&
               (!c->sink->record_statuses || (c->sink->record_statuses & (1u << r->status)));
    if (want && c->sink->render) {
        /* rendered here, on the worker; findings still go through the buffer */
        if (!o->text_w && !(o->text_w = eng_text_take(c->e)))
            return CDR_E_NOMEM;
        cdr_err err = c->sink->render(r, o->text_w, c->sink->user);
        if (err != CDR_OK)
            return err;
        want = 0;
    }
    if (!o) {
        if (want && c->sink->on_record(r, c->sink->user))
            return CDR_E_INTERRUPTED;
        if (r->has_finding && c->sink->on_finding &&
            c->sink->on_finding(&r->finding, c->sink->user))
            return CDR_E_INTERRUPTED;
        return CDR_OK;
    }
    if (!want && !r->has_finding)
        return CDR_OK; /* nobody wants it */
    if (grow((void **)&o->recs, &o->cap_recs, o->n_recs, sizeof *o->recs) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    cdr_rated *x = &o->recs[o->n_recs];
    *x = *r;
    if (r->row.n_extra) {
        cdr_str *ex = arena_alloc(o, r->row.n_extra * sizeof *ex);
        if (!ex)
            return CDR_E_NOMEM;
        memcpy(ex, r->row.extra, r->row.n_extra * sizeof *ex);
        x->row.extra = ex;
    }
    if (r->has_finding) {
        size_t l = strlen(r->finding.explanation) + 1;
        char *t = arena_alloc(o, l);
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

static cdr_err emit_candidate(ctx *c, const cdr_candidate *cd)
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
    if (grow((void **)&o->cands, &o->cap_cands, o->n_cands, sizeof *o->cands) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    cdr_candidate *x = &o->cands[o->n_cands];
    *x = *cd;
    if (c->e->o.state && keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_cands++;
    o->kinds[o->n_kinds++] = 1;
    return CDR_OK;
}

static cdr_err emit_submonth(ctx *c, const cdr_submonth *sm)
{
    outbuf *o = c->out;
    if (!o)
        return c->sink->on_submonth && c->sink->on_submonth(sm, c->sink->user) ? CDR_E_INTERRUPTED
                                                                                : CDR_OK;
    if (grow((void **)&o->sms, &o->cap_sms, o->n_sms, sizeof *o->sms) ||
        grow((void **)&o->kinds, &o->cap_kinds, o->n_kinds, 1))
        return CDR_E_NOMEM;
    cdr_submonth *x = &o->sms[o->n_sms];
    *x = *sm;
    if (keep_str(o, &x->msisdn))
        return CDR_E_NOMEM;
    o->n_sms++;
    o->kinds[o->n_kinds++] = 2;
    return CDR_OK;
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

/* How process_month continues and what it writes. */
typedef struct mopts {
    const st_ckpt *init;   /* go on after these records (NULL: from the month's start) */
    const st_ckpt *prev;   /* the subscriber-month's checkpoint before this finish */
    uint64_t seq0;         /* the sequence number of the first record */
    st_ckpt *out;          /* with a state: the new checkpoint (NULL: no state) */
    cdr_submonth *sm;      /* with a state: the candidate's outcome */
} mopts;

/* A record_id's fingerprint (the checkpoints' rfp, ST_RFP_BITS bits). */
static uint32_t rid_fp(const blob *b)
{
    return (uint32_t)(cdr_hash_bytes(b_rid(b), b->l_rid, 3) >> (64 - ST_RFP_BITS));
}

static uint32_t partial_key(const blob *b)
{
    return (uint32_t)cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
}

/* Duplicates within one subscriber-month (CONTRACT.md "duplicates"): the
 * same record_id again, or the same usage under a new record_id; the first
 * in time order is the original. A new record whose record_id is that of a
 * stored record, or of a record of an earlier file of this run, is counted
 * as a copy for its file (a re-delivered file is mostly copies). */
static cdr_err find_duplicates(ctx *c, work *w, size_t n)
{
    cdr_err err;
    if ((err = htab_reset(&c->rid, n)) != CDR_OK || (err = htab_reset(&c->content, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        const blob *b = w[i].b;
        w[i].status = CDR_RS_RATED;
        w[i].dup_of = -1;
        /* same record_id seen before? */
        uint64_t h = cdr_hash_bytes(b_rid(b), b->l_rid, 3);
        size_t mask = c->rid.mask, k = h & mask;
        int32_t orig = -1;
        while (c->rid.v[k] >= 0) {
            const blob *o = w[c->rid.v[k]].b;
            if (c->rid.h[k] == h && o->l_rid == b->l_rid && !memcmp(b_rid(o), b_rid(b), b->l_rid)) {
                orig = c->rid.v[k];
                break;
            }
            k = (k + 1) & mask;
        }
        if (orig < 0) {
            c->rid.h[k] = h;
            c->rid.v[k] = (int32_t)i;
        }
        w[i].rid_first = orig < 0 ? (int32_t)i : orig;
        /* same usage under another id? */
        uint64_t ch = content_hash(b);
        size_t k2 = ch & c->content.mask;
        int32_t corig = -1;
        while (c->content.v[k2] >= 0) {
            const blob *o = w[c->content.v[k2]].b;
            if (c->content.h[k2] == ch && same_content(o, b)) {
                corig = c->content.v[k2];
                break;
            }
            k2 = (k2 + 1) & c->content.mask;
        }
        if (orig >= 0 || corig >= 0) {
            w[i].status = CDR_RS_DUPLICATE;
            int32_t o = orig >= 0 ? orig : corig;
            /* point at the original of the original */
            while (w[o].dup_of >= 0)
                o = w[o].dup_of;
            w[i].dup_of = o;
        } else {
            c->content.h[k2] = ch;
            c->content.v[k2] = (int32_t)i;
        }
    }
    return CDR_OK;
}

/* Copies of records ingested before: a new record whose record_id is that
 * of a stored record, or of a record of an earlier file of this run (each
 * counted once, for its file). find_duplicates set each record's first
 * record of its record_id (rid_first). */
static void count_copies(ctx *c, work *w, size_t n)
{
    /* per group of one record_id, at its first record: any stored record,
     * and the lowest file of its new records */
    for (size_t i = 0; i < n; i++) {
        w[i].g_stored = 0;
        w[i].g_minfile = UINT32_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        work *f = &w[w[i].rid_first];
        if (!w[i].is_new)
            f->g_stored = 1;
        else if (w[i].b->file_index < f->g_minfile)
            f->g_minfile = w[i].b->file_index;
    }
    for (size_t i = 0; i < n; i++) {
        const work *f = &w[w[i].rid_first];
        if (w[i].is_new && (f->g_stored || w[i].b->file_index > f->g_minfile))
            c->copies[w[i].b->file_index]++;
    }
}

/* Process one subscriber-month: w[0..n) sorted in time order. */
static cdr_err process_month(ctx *c, work *w, size_t n, cdr_month month, const mopts *mo)
{
    cdr_engine *e = c->e;
    const cdr_tariff *t = e->t;
    cdr_err err;

    c->wm = w;
    if ((err = find_duplicates(c, w, n)) != CDR_OK)
        return err;

    if (c->copies)
        count_copies(c, w, n);

    /* Limits (docs/rating.md "Limits and sums"): a subscriber-month whose
     * billed amounts add up to more than CDR_MONEY_MAX is not rated at all;
     * so no sum of its billed amounts below (merged parts, overcharge,
     * refund = 2 x overcharge) can leave 64 bits. Continuing from a
     * checkpoint, the sums start at the checkpoint's upper bounds of the
     * stored records' sums; reaching a limit from there is not decided
     * here: the month is rated whole instead (CDR_E_AGAIN to the caller). */
    const char *month_unrated = NULL;
    cdr_money billed_sum = mo->init ? (cdr_money)mo->init->billed_hi << ST_SUM_SHIFT : 0;
    cdr_money rebuilt_sum = mo->init ? (cdr_money)mo->init->rebuilt_hi << ST_SUM_SHIFT : 0;
    for (size_t i = 0; i < n && !month_unrated; i++) {
        cdr_money v = w[i].b->billed; /* (the reader gives 0..CDR_MONEY_MAX) */
        if (v < 0 || v > CDR_MONEY_MAX || (billed_sum += v) > CDR_MONEY_MAX)
            month_unrated = "the billed amounts of this subscriber-month add up to more than "
                            "1000000000000 yuan: out of range, not rated";
    }
    if (month_unrated && mo->init)
        return CDR_E_AGAIN;

    /* Partial groups: key (service, call_id). First part = earliest. */
    if ((err = htab_reset(&c->group, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        w[i].group_first = -1;
        w[i].g_usage = w[i].b->amount;
        w[i].g_billed = w[i].b->billed;
        w[i].g_parts = 1;
        w[i].g_sep_billable_usage = -1;
        w[i].g_sep_whole_usage = -1;
        w[i].next_part = -1;
        w[i].last_part = (int32_t)i;
        if (w[i].status != CDR_RS_RATED || !is_partial(w[i].b) || month_unrated)
            continue;
        const blob *b = w[i].b;
        uint64_t h = cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
        size_t mask = c->group.mask, k = h & mask;
        while (c->group.v[k] >= 0) {
            const blob *o = w[c->group.v[k]].b;
            if (c->group.h[k] == h && o->service == b->service && o->l_call == b->l_call &&
                !memcmp(b_call(o), b_call(b), b->l_call))
                break;
            k = (k + 1) & mask;
        }
        if (c->group.v[k] < 0) {
            c->group.h[k] = h;
            c->group.v[k] = (int32_t)i;
        } else {
            int32_t f = c->group.v[k];
            w[i].group_first = f;
            w[i].status = CDR_RS_PARTIAL_REST;
            w[f].status = CDR_RS_PARTIAL_FIRST;
            if (__builtin_add_overflow(w[f].g_usage, b->amount, &w[f].g_usage))
                w[f].g_usage = INT64_MAX; /* above every usage limit: unrated */
            w[f].g_billed += b->billed;
            w[f].g_parts++;
            w[w[f].last_part].next_part = (int32_t)i;
            w[f].last_part = (int32_t)i;
        }
    }

    /* Walk in time order (from where the checkpoint left off). */
    c->n_pb = 0;
    int64_t prev_end = INT64_MIN;
    uint32_t cand_records = 0;
    cdr_money over = 0;
    uint32_t cats = 0;
    unsigned cflags = 0;
    const cdr_subscriber *sub = NULL;
    int has_candidate = 0;
    uint64_t findings = 0;
    const st_ckpt *init = mo->init;
    if (init) {
        for (uint32_t k = 0; k < init->n_pools; k++)
            if (!pool_left(c, init->pools[k].plan, init->pools[k].pool, init->pools[k].left))
                return CDR_E_NOMEM;
        prev_end = init->prev_end;
        cflags = init->cflags;
        if (init->has_cand) {
            cand_records = init->cand_records;
            over = init->over;
            cats = init->cats;
            has_candidate = 1;
        }
    }

    for (size_t i = 0; i < n; i++) {
        work *wi = &w[i];
        const blob *b = wi->b;
        cdr_rated r;
        /* the rating and the finding are filled only when used (status /
         * has_finding say so): clearing the whole struct costs more than
         * rating many records */
        /* (the row is set field by field in fill_row) */
        memset(&r.month, 0, offsetof(cdr_rated, rating) - offsetof(cdr_rated, month));
        r.rating.rate = NULL;
        r.rating.n_pieces = 0;
        memset(&r.rebuilt, 0, offsetof(cdr_rated, finding) - offsetof(cdr_rated, rebuilt));
        r.unrated = NULL;
        if ((err = fill_row(c, b, &r.row)) != CDR_OK)
            return err;
        r.month = month;
        r.seq = mo->seq0 + i;
        r.msisdn_hash = b->h;
        r.is_new = wi->is_new;
        r.file_name = eng_file_name(e, b->file_index);
        r.file_db_id = b->file_index < e->n_files ? e->files[b->file_index].db_id : 0;
        r.plan = -1;
        r.pool_after = -1;
        r.usage = b->amount;
        r.n_parts = 1;
        r.cmp_billed = b->billed;

        if (!sub || b->start < sub->valid_from || b->start >= sub->valid_to)
            sub = cdr_tariff_subscriber(t, b_msisdn(b), b->l_msisdn, b->start);

        cdr_rate_in in;
        cdr_rate_in_init(&in);
        cdr_rate_out *ro = &r.rating;
        int rated = 0;

        if (month_unrated) {
            wi->status = CDR_RS_UNRATED;
            r.unrated = month_unrated;
        } else if (wi->status == CDR_RS_DUPLICATE) {
            const blob *o = c->wm[wi->dup_of].b;
            r.dup_of = (cdr_str){b_rid(o), o->l_rid};
        } else if (wi->status == CDR_RS_PARTIAL_REST) {
            /* compared on the first part */
        } else if (!sub) {
            wi->status = CDR_RS_UNRATED;
            r.unrated = "no plan for this number at the record's start time";
        } else {
            r.plan = sub->plan;
            if ((b->service == CDR_SVC_VOICE || b->service == CDR_SVC_SMS) &&
                b->direction == CDR_DIR_MO && cdr_tariff_free_number(t, b_peer(b), b->l_peer)) {
                wi->status = CDR_RS_FREE;
            } else if (b->service == CDR_SVC_VAS &&
                       !cdr_tariff_subscribed(t, b_msisdn(b), b->l_msisdn, b_peer(b), b->l_peer,
                                              b->start)) {
                wi->status = CDR_RS_NO_SUBSCRIPTION;
            } else if (b->service == CDR_SVC_SMS && b->l_ref > 0 && b->sms_part > 0 &&
                       b->sms_part > cdr_sms_segments(b->amount,
                                                      t->plans[sub->plan].sms_single_chars,
                                                      t->plans[sub->plan].sms_part_chars)) {
                wi->status = CDR_RS_SEGMENT_OVER;
            } else {
                rated = 1;
            }
        }

        if (rated) {
            in.tariff = t;
            in.plan = sub->plan;
            in.service = (cdr_service)b->service;
            in.direction = (cdr_direction)b->direction;
            in.peer = (cdr_str){b_peer(b), b->l_peer};
            in.start = b->start;
            int64_t usage = wi->g_usage;
            if (b->service == CDR_SVC_SMS)
                usage = (b->l_ref > 0 && b->sms_part > 0)
                            ? 1
                            : cdr_sms_segments(b->amount, t->plans[sub->plan].sms_single_chars,
                                               t->plans[sub->plan].sms_part_chars);
            in.usage = usage;
            r.usage = usage;
            /* learn the pool, then give its balance */
            int32_t band = cdr_tariff_band_at(t, b->start);
            const cdr_rate *pr = cdr_tariff_find_rate(t, sub->plan, in.service, in.direction,
                                                      in.peer.p, in.peer.n, band);
            in.rate_hint = pr;
            in.band_hint = band;
            int64_t *left = NULL;
            if (pr && pr->pool >= 0) {
                const cdr_bundle *bu = cdr_tariff_bundle(t, sub->plan, pr->pool);
                if (bu) {
                    left = pool_left(c, sub->plan, pr->pool, bu->allowance_base);
                    if (!left)
                        return CDR_E_NOMEM;
                    in.pool_avail = *left;
                }
            }
            /* out of range: unrated with the reason; the night goes on */
            if (cdr_rate_usage(&in, ro) != CDR_OK)
                ro->unrated = "arithmetic out of range: the charge cannot be computed "
                              "(usage x price above 1000000000000 yuan)";
            else if (!ro->unrated && ro->charge > CDR_MONEY_MAX - rebuilt_sum) {
                if (mo->init)
                    return CDR_E_AGAIN; /* (an upper bound: rate the month whole) */
                ro->unrated = "the rebuilt charges of this subscriber-month would add up to "
                              "more than 1000000000000 yuan: out of range, not rated";
            }
            if (ro->unrated) {
                wi->status = CDR_RS_UNRATED;
                r.unrated = ro->unrated;
            } else {
                rebuilt_sum += ro->charge;
                if (left) {
                    *left -= ro->covered;
                    r.pool_after = *left;
                }
                r.rebuilt = ro->charge;
                if (wi->status == CDR_RS_PARTIAL_FIRST) {
                    /* per-part rounding, for the partial_rounding diagnosis:
                     * to the increment, and to a whole minute / MB */
                    int64_t sep = 0, whole = 0;
                    for (int32_t j = (int32_t)i; j >= 0; j = w[j].next_part) {
                        int64_t a = w[j].b->amount;
                        if (__builtin_add_overflow(
                                sep, cdr_rate_billable(in.service, a, ro->rate->increment), &sep))
                            sep = INT64_MAX; /* no charge reproduces it */
                        if (__builtin_add_overflow(
                                whole,
                                cdr_rate_billable(in.service, a,
                                                  in.service == CDR_SVC_VOICE ? 60 : 1024),
                                &whole))
                            whole = INT64_MAX;
                    }
                    wi->g_sep_billable_usage = sep;
                    wi->g_sep_whole_usage = whole;
                    r.n_parts = wi->g_parts;
                    r.cmp_billed = wi->g_billed;
                }
            }
        }
        r.status = wi->status;

        /* Flags: overlapping and over-long voice records (duplicates excluded). */
        unsigned flags = 0;
        if (b->service == CDR_SVC_VOICE && wi->status != CDR_RS_DUPLICATE) {
            if (b->start < prev_end)
                flags |= CDR_FLAG_OVERLAP;
            if (b->amount > e->o.max_duration)
                flags |= CDR_FLAG_OVERLONG;
            if (b->start + b->amount > prev_end)
                prev_end = b->start + b->amount;
        }

        /* Compare (reconcile/): a finding for a difference beyond the
         * tolerance, a duplicate or a flag. */
        cdr_money billed = r.cmp_billed, diff = billed - r.rebuilt;
        cdr_category cat = CDR_CAT_NONE;
        if (rc_has_finding(wi->status, diff, e->o.tolerance, flags)) {
            rc_record rr = {.t = t, .status = wi->status, .service = (cdr_service)b->service,
                            .peer = r.row.peer, .record_id = r.row.record_id,
                            .dup_of = r.dup_of, .amount = b->amount, .sms_part = b->sms_part,
                            .usage = wi->g_usage, .parts = wi->g_parts,
                            .sep_billable = wi->g_sep_billable_usage,
                            .sep_whole = wi->g_sep_whole_usage, .in = &in, .ro = ro,
                            .billed = billed, .rebuilt = r.rebuilt};
            cat = rc_compare(&rr, e->o.tolerance, flags, c->expl, sizeof c->expl);
            cdr_finding *f = &r.finding;
            r.has_finding = 1;
            f->msisdn = r.row.msisdn;
            f->month = month;
            f->record_id = r.row.record_id;
            f->file_index = b->file_index;
            f->file = eng_file_name(e, b->file_index);
            f->line = b->line;
            f->offset = b->offset;
            f->service = (cdr_service)b->service;
            f->start = b->start;
            f->peer = r.row.peer;
            f->category = cat;
            f->flags = flags;
            f->billed = billed;
            f->rebuilt = r.rebuilt;
            f->difference = diff;
            f->explanation = c->expl;
            f->seq = r.seq;
            f->msisdn_hash = b->h;
            f->file_db_id = r.file_db_id;
            findings++;
            c->tot->findings++;
            c->tot->by_category[cat]++;
            if (cat < CDR_CAT__OVERCHARGE_COUNT && diff > e->o.tolerance) {
                /* a duplicate billed 0 is a finding, but no overcharge */
                c->tot->amount_by_category[cat] =
                    cdr_money_total_add(c->tot->amount_by_category[cat], diff);
                over += diff;
                cand_records++;
                cats |= 1u << cat;
                has_candidate = 1;
            } else if (cat == CDR_CAT_LEAKAGE) {
                c->tot->amount_by_category[cat] =
                    cdr_money_total_add(c->tot->amount_by_category[cat], -diff);
                c->tot->leakage = cdr_money_total_add(c->tot->leakage, -diff);
                c->tot->leakage_records++;
            }
            cflags |= flags;
        }
        c->tot->records++;
        if (wi->status == CDR_RS_DUPLICATE)
            c->tot->duplicates++;
        if (wi->status == CDR_RS_UNRATED)
            c->tot->unrated++;

        if ((err = emit_record(c, &r)) != CDR_OK)
            return err;
    }

    int has = has_candidate && over > 0;
    cdr_candidate cd;
    if (has)
        rc_candidate(t, (cdr_str){b_msisdn(w[0].b), w[0].b->l_msisdn}, w[0].b->h, month, sub,
                     cand_records, over, cats, cflags, &cd);
    if (!mo->out) {
        /* no state: every candidate */
        if (has) {
            c->tot->candidates++;
            c->tot->overcharge += cd.overcharge;
            c->tot->refund += cd.refund;
            if ((err = emit_candidate(c, &cd)) != CDR_OK)
                return err;
        }
        return CDR_OK;
    }
    /* With a state: the checkpoint after this month's last record, and the
     * candidate only when it is new or changed. */
    st_ckpt *o = mo->out;
    const blob *f0 = w[0].b;
    o->h = f0->h;
    o->msisdn_len = (uint8_t)f0->l_msisdn;
    memcpy(o->msisdn, b_msisdn(f0), f0->l_msisdn);
    o->msisdn[f0->l_msisdn] = '\0';
    o->n_records = mo->seq0 + n;
    o->last_start = w[n - 1].b->start;
    o->tariff_id = e->o.tariff_id;
    o->prev_end = prev_end;
    if (c->n_pb > ST_POOLS_MAX) {
        snprintf(e->err, sizeof e->err, "a subscriber-month draws from more than %d bundle pools",
                 ST_POOLS_MAX);
        return CDR_E_RANGE;
    }
    o->n_pools = (uint32_t)c->n_pb;
    for (size_t k = 0; k < c->n_pb; k++)
        o->pools[k] = (st_pool){c->pb[k].plan, c->pb[k].pool, c->pb[k].left};
    o->has_cand = has;
    o->cflags = cflags;
    if (has) {
        o->over = cd.overcharge;
        o->cand_records = cd.records;
        o->cats = cd.categories;
        o->tier = cd.tier;
        o->policy = (int)cd.policy;
        o->special = cd.special;
        o->reason = cd.reason;
    }
    o->n_findings = (init ? init->n_findings : 0) + findings;
    /* upper bounds of the month's sums, for the limits of a continuation */
    o->billed_hi = (uint64_t)((billed_sum + ((cdr_money)1 << ST_SUM_SHIFT) - 1) >> ST_SUM_SHIFT);
    o->rebuilt_hi = (uint64_t)((rebuilt_sum + ((cdr_money)1 << ST_SUM_SHIFT) - 1) >> ST_SUM_SHIFT);
    o->n_pkeys = 0;
    if (init)
        for (uint32_t k = 0; k < init->n_pkeys; k++)
            if (st_ckpt_add_pkey(o, init->pkeys[k]) != 0)
                return CDR_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (is_partial(w[i].b) && st_ckpt_add_pkey(o, partial_key(w[i].b)) != 0)
            return CDR_E_NOMEM;
    /* the record_ids' fingerprints: the old ones (continued) and these */
    o->n_rfp = 0;
    if (init && init->n_rfp) {
        if (o->rfp_cap < init->n_rfp) {
            uint32_t *f = realloc(o->rfp, init->n_rfp * sizeof *f);
            if (!f)
                return CDR_E_NOMEM;
            o->rfp = f;
            o->rfp_cap = init->n_rfp;
        }
        memcpy(o->rfp, init->rfp, init->n_rfp * sizeof *o->rfp);
        o->n_rfp = init->n_rfp;
    }
    if (n > c->fps_cap) {
        uint32_t *f = realloc(c->fps, n * sizeof *f);
        if (!f)
            return CDR_E_NOMEM;
        c->fps = f;
        c->fps_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        c->fps[i] = rid_fp(w[i].b);
    if (st_ckpt_add_rfps(o, c->fps, n) != 0)
        return CDR_E_NOMEM;
    const st_ckpt *p = mo->prev;
    int had = p && p->has_cand;
    int changed = has && !(had && p->over == o->over && p->cand_records == o->cand_records &&
                           p->cats == o->cats && p->cflags == o->cflags && p->tier == o->tier &&
                           p->policy == o->policy && p->special == o->special &&
                           p->reason == o->reason);
    mo->sm->has_candidate = has;
    mo->sm->refund = has ? cd.refund : 0;
    mo->sm->candidate_changed = changed;
    mo->sm->candidate_withdrawn = had && !has;
    c->tot->candidates_changed += (uint64_t)changed;
    c->tot->candidates_withdrawn += (uint64_t)(had && !has);
    if (changed) {
        c->tot->candidates++;
        c->tot->overcharge = cdr_money_total_add(c->tot->overcharge, cd.overcharge);
        c->tot->refund = cdr_money_total_add(c->tot->refund, cd.refund);
        if ((err = emit_candidate(c, &cd)) != CDR_OK)
            return err;
    }
    return CDR_OK;
}

/* ---- subscriber-months with a state ---- */

/* The month index of m in the finish's months (they are sorted). */
static int month_index(const cdr_engine *e, cdr_month m)
{
    size_t lo = 0, hi = e->n_em;
    while (lo < hi) {
        size_t k = lo + (hi - lo) / 2;
        if (e->em[k].m < m)
            lo = k + 1;
        else
            hi = k;
    }
    return lo < e->n_em && e->em[lo].m == m ? (int)lo : -1;
}

static uint64_t bucket_lo(int bi)
{
    return (uint64_t)bi << 56;
}

/* Whether hash h is still in the current bucket. */
static int in_bucket(int bi, uint64_t h)
{
    return (int)(h >> 56) == bi;
}

static cdr_err ck_fail(ctx *c, const char *why)
{
    snprintf(c->e->err, sizeof c->e->err, "%s", why && *why ? why : "damaged state file");
    return CDR_E_PARSE;
}

/* Position month mi's checkpoint cursor at the bucket's start (once). */
static cdr_err ck_start(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    if (wm->ck_on)
        return CDR_OK;
    wm->ck_on = 1;
    st_ckr *r = c->e->em[mi].ckp;
    if (!r) {
        wm->ck.have = 0;
        return CDR_OK;
    }
    cdr_err err = st_ckcur_seek(&wm->ck, r, bucket_lo(c->bucket));
    return err == CDR_OK ? CDR_OK : err == CDR_E_NOMEM ? err : ck_fail(c, wm->ck.err);
}

static int rid_add(const cdr_str *id, void *u)
{
    ctx *c = u;
    if (c->n_rids == c->rids_cap) {
        size_t nc = c->rids_cap ? c->rids_cap * 2 : 256;
        uint64_t *r = realloc(c->rids, nc * sizeof *r);
        if (!r)
            return CDR_E_NOMEM;
        c->rids = r;
        c->rids_cap = nc;
    }
    c->rids[c->n_rids++] = cdr_hash_bytes(id->p, id->n, 3);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Month mi's segment cursors at the group of (h, msisdn): *found[s]. */
static cdr_err seg_find(ctx *c, int mi, uint64_t h, const char *m, size_t n)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    for (size_t s = 0; s < em->n_segs; s++) {
        st_gcur *g = &wm->g[s];
        cdr_err err;
        if (!wm->g_on) {
            if ((err = st_gcur_seek(g, em->segs[s], h, m, n)) != CDR_OK)
                return err == CDR_E_NOMEM ? err : ck_fail(c, g->err);
        } else if (st_gcur_find(g, h, m, n) < 0) {
            return ck_fail(c, g->err);
        }
    }
    wm->g_on = 1;
    return CDR_OK;
}

static int seg_here(const st_gcur *g, uint64_t h, const char *m, size_t n)
{
    return g->have && st_key_cmp(g->cur.h, g->cur.msisdn, g->cur.msisdn_len, h, m, n) == 0;
}

/* Whether a new record's record_id is one of the stored records'. */
static cdr_err stored_ids_hit(ctx *c, int mi, const work *wn, size_t nn, uint64_t h,
                              const char *m, size_t ml, int *hit)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    cdr_err err;
    *hit = 0;
    c->n_rids = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++)
        if (seg_here(&wm->g[s], h, m, ml) && (err = st_gcur_ids(&wm->g[s], rid_add, c)) != CDR_OK)
            return err == CDR_E_NOMEM ? err : ck_fail(c, wm->g[s].err);
    qsort(c->rids, c->n_rids, sizeof *c->rids, cmp_u64);
    for (size_t i = 0; i < nn && !*hit; i++) {
        uint64_t k = cdr_hash_bytes(b_rid(wn[i].b), wn[i].b->l_rid, 3);
        *hit = bsearch(&k, c->rids, c->n_rids, sizeof k, cmp_u64) != NULL;
    }
    return CDR_OK;
}

typedef struct load_ctx {
    ctx *c;
    const uint32_t *files; /* segment file index -> engine file index */
    size_t n_files;
} load_ctx;

/* A stored row, packed into the ctx's stored area (unpacked afterwards:
 * the area moves while it grows). */
static int stored_add(const cdr_row *r, uint32_t fl, void *u)
{
    load_ctx *x = u;
    stored *st = &x->c->st;
    if (fl >= x->n_files)
        return CDR_E_PARSE;
    cdr_row row = *r;
    row.file_index = x->files[fl];
    packing pk;
    cdr_err err = pack_prepare(&row, &pk);
    if (err != CDR_OK)
        return err;
    if (st->n + pk.need + PACK_PAD > st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 65536;
        while (nc < st->n + pk.need + PACK_PAD)
            nc *= 2;
        unsigned char *p = realloc(st->p, nc);
        if (!p)
            return CDR_E_NOMEM;
        st->p = p;
        st->cap = nc;
    }
    pack_write(st->p + st->n, &row, &pk);
    st->n += pk.need;
    st->nb++;
    return 0;
}

/* Every stored record of (h, msisdn) in month mi, as blobs in c->st.b. */
static cdr_err load_stored(ctx *c, int mi, uint64_t h, const char *m, size_t ml)
{
    wmonth *wm = &c->wmo[mi];
    emonth *em = &c->e->em[mi];
    stored *st = &c->st;
    cdr_err err;
    st->n = 0;
    st->nb = 0;
    if ((err = seg_find(c, mi, h, m, ml)) != CDR_OK)
        return err;
    for (size_t s = 0; s < em->n_segs; s++) {
        if (!seg_here(&wm->g[s], h, m, ml))
            continue;
        load_ctx x = {c, em->seg_files[s], st_segr_n_files(em->segs[s])};
        err = st_gcur_rows(&wm->g[s], stored_add, &x);
        if (err != CDR_OK)
            return err == CDR_E_NOMEM ? err : ck_fail(c, wm->g[s].err);
    }
    if (st->nb > st->bcap) {
        blob *b = realloc(st->b, st->nb * sizeof *b);
        if (!b)
            return CDR_E_NOMEM;
        st->b = b;
        st->bcap = st->nb;
    }
    size_t off = 0;
    for (size_t i = 0; i < st->nb; i++) {
        unpack(st->p + off, &st->b[i]);
        st->b[i].h = h;
        off += packed_size(st->p + off);
    }
    return CDR_OK;
}

static int work_grow(work **w, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    work *x = realloc(*w, n * sizeof *x);
    if (!x)
        return -1;
    *w = x;
    *cap = n;
    return 0;
}

/* The stored records of the subscriber-month and the new ones wn[0..nn),
 * merged in time order into c->wf. */
static cdr_err merge_stored(ctx *c, const work *wn, size_t nn, size_t *total)
{
    stored *st = &c->st;
    size_t n = st->nb + nn;
    if (work_grow(&c->wf, &c->wf_cap, n ? n : 1))
        return CDR_E_NOMEM;
    /* both sides are in time order (each segment's group is, and the new
     * records are): the stored side is sorted first, as several segments
     * interleave */
    if (st->nb > c->mix_cap) {
        const blob **m = realloc(c->mix, st->nb * sizeof *m);
        if (!m)
            return CDR_E_NOMEM;
        c->mix = m;
        c->mix_cap = st->nb;
    }
    for (size_t i = 0; i < st->nb; i++)
        c->mix[i] = &st->b[i];
    /* insertion sort on nearly sorted runs, else a merge sort via qsort */
    const cdr_engine *e = c->e;
    for (size_t i = 1; i < st->nb; i++) {
        const blob *x = c->mix[i];
        size_t j = i;
        while (j > 0 && grp_blob_time_cmp(e, c->mix[j - 1], x) > 0) {
            c->mix[j] = c->mix[j - 1];
            j--;
        }
        c->mix[j] = x;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < st->nb || j < nn) {
        int take_new = i == st->nb || (j < nn && grp_blob_time_cmp(e, wn[j].b, c->mix[i]) < 0);
        if (take_new) {
            c->wf[k].b = wn[j++].b;
            c->wf[k].is_new = 1;
        } else {
            c->wf[k].b = c->mix[i++];
            c->wf[k].is_new = 0;
        }
        k++;
    }
    *total = k;
    return CDR_OK;
}

/* Hand a subscriber-month's event to the drain (or the sink). */
static cdr_err emit_submonth(ctx *c, const cdr_submonth *sm);

/* Rate one subscriber-month with the state: new records wn[0..nn) (may be
 * none: a re-rating), its old checkpoint `old` (NULL: none). Emits the
 * events, the new checkpoint into the bucket's checkpoint part and the new
 * records into the bucket's segment part. */
static cdr_err rate_submonth(ctx *c, int mi, work *wn, size_t nn, const st_ckpt *old,
                             uint64_t h, const char *m, size_t ml)
{
    cdr_engine *e = c->e;
    emonth *em = &e->em[mi];
    outbuf *o = c->out;
    cdr_err err;
    cdr_submonth sm;
    memset(&sm, 0, sizeof sm);
    sm.msisdn = (cdr_str){m, ml};
    sm.msisdn_hash = h;
    sm.month = em->m;
    sm.had_candidate = old && old->has_cand;
    sm.prev_refund = sm.had_candidate ? 2 * old->over : 0;
    sm.new_records = nn;

    cdr_submonth_mode mode;
    if (!old) {
        mode = CDR_SM_NEW;
    } else if (em->rerate || old->tariff_id != e->o.tariff_id || nn == 0 ||
               wn[0].b->start <= old->last_start) {
        mode = CDR_SM_FULL;
    } else {
        mode = CDR_SM_CONTINUE;
        for (size_t i = 0; i < nn && mode == CDR_SM_CONTINUE; i++)
            if (is_partial(wn[i].b) && st_ckpt_has_pkey(old, partial_key(wn[i].b)))
                mode = CDR_SM_FULL; /* a new part of a stored call */
        /* a record_id seen before makes a duplicate: rated whole. The
         * fingerprints say "not seen" for certain; on a "perhaps" (about
         * 1 in 1000 at 60 records) the stored ids themselves decide */
        int doubt = 0;
        for (size_t i = 0; i < nn && !doubt && mode == CDR_SM_CONTINUE; i++)
            doubt = st_ckpt_has_rfp(old, rid_fp(wn[i].b));
        if (doubt) {
            int hit;
            if ((err = stored_ids_hit(c, mi, wn, nn, h, m, ml, &hit)) != CDR_OK)
                return err;
            if (hit)
                mode = CDR_SM_FULL;
        }
    }
    sm.mode = mode;
    sm.records = (old ? old->n_records : 0) + nn;

    mopts mo = {NULL, old, 0, &c->ck_new, &sm};
    work *w = wn;
    size_t n = nn;
    if (mode == CDR_SM_CONTINUE) {
        mo.init = old;
        mo.seq0 = old->n_records;
    } else if (mode == CDR_SM_FULL) {
        if ((err = load_stored(c, mi, h, m, ml)) != CDR_OK)
            return err;
        if (c->st.nb != old->n_records) {
            snprintf(e->err, sizeof e->err, "the state holds %zu records of a subscriber-month "
                     "whose checkpoint counts %llu", c->st.nb,
                     (unsigned long long)old->n_records);
            return CDR_E_PARSE;
        }
        if ((err = merge_stored(c, wn, nn, &n)) != CDR_OK)
            return err;
        w = c->wf;
        c->tot->records_rerated += c->st.nb;
    }
    if (n == 0)
        return CDR_OK; /* (a checkpoint without records cannot be written) */
    if ((err = emit_submonth(c, &sm)) != CDR_OK)
        return err;
    outbuf_mark mark = outbuf_save(o);
    cdr_engine_totals tot_keep = *c->tot;
    err = process_month(c, w, n, em->m, &mo);
    if (err == CDR_E_AGAIN && mode == CDR_SM_CONTINUE) {
        /* a limit the checkpoint's bounds cannot decide: rate it whole */
        outbuf_restore(o, &mark);
        *c->tot = tot_keep;
        mode = sm.mode = CDR_SM_FULL;
        o->sms[o->n_sms - 1].mode = CDR_SM_FULL; /* (the begin event just emitted) */
        if ((err = load_stored(c, mi, h, m, ml)) != CDR_OK ||
            (err = merge_stored(c, wn, nn, &n)) != CDR_OK)
            return err;
        w = c->wf;
        c->tot->records_rerated += c->st.nb;
        mo.init = NULL;
        mo.seq0 = 0;
        err = process_month(c, w, n, em->m, &mo);
    }
    if (err != CDR_OK)
        return err;
    sm.end = 1;
    if ((err = emit_submonth(c, &sm)) != CDR_OK)
        return err;
    c->tot->submonths++;
    c->tot->submonths_new += mode == CDR_SM_NEW;
    c->tot->submonths_continued += mode == CDR_SM_CONTINUE;
    c->tot->submonths_full += mode == CDR_SM_FULL;

    /* the new checkpoint, and the new records into this run's segment */
    st_ckpart *cp = &o->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = h;
    cp->last_h = h;
    st_ckpt_put(&cp->b, &c->ck_new, cdr_month_start(em->m));
    cp->n++;
    if (cp->b.failed)
        return CDR_E_NOMEM;
    if (nn) {
        if (!c->enc_ready) {
            if (st_enc_init(&c->enc, 1) != 0)
                return CDR_E_NOMEM;
            c->enc_ready = 1;
        }
        st_part *part = &o->parts[mi];
        if (st_part_group(part, m, ml, nn, &c->enc) != 0)
            return CDR_E_NOMEM;
        for (size_t i = 0; i < nn; i++) {
            cdr_row r;
            const blob *b = wn[i].b;
            if ((err = fill_row(c, b, &r)) != CDR_OK)
                return err;
            if (r.n_extra) {
                /* the part keeps the row's views until its block is cut */
                cdr_str *x = arena_alloc(o, r.n_extra * sizeof *x);
                if (!x)
                    return CDR_E_NOMEM;
                memcpy(x, r.extra, r.n_extra * sizeof *x);
                r.extra = x;
            }
            const file_info *f = &e->files[b->file_index];
            st_file sf = {.anchors = f->anchors, .n_anchors = f->n_anchors, .row_len = f->row_len};
            if (st_part_add(part, &r, b->file_index, st_file_off_res(&sf, b->line, b->offset),
                            &c->enc) != 0)
                return CDR_E_NOMEM;
        }
    }
    return CDR_OK;
}

/* An old checkpoint entry no new record touches: copied, or (re-rating)
 * its subscriber-month rated again from the state. */
static cdr_err untouched(ctx *c, int mi)
{
    wmonth *wm = &c->wmo[mi];
    const st_ckpt *k = &wm->ck.cur;
    if (c->e->em[mi].rerate)
        return rate_submonth(c, mi, NULL, 0, k, k->h, k->msisdn, k->msisdn_len);
    if (k->tariff_id != c->e->o.tariff_id)
        c->tot->submonths_other_tariff++;
    st_ckpart *cp = &c->out->ckparts[mi];
    if (cp->n == 0)
        cp->first_h = k->h;
    cp->last_h = k->h;
    st_buf_put(&cp->b, wm->ck.cur_raw, wm->ck.cur_raw_n);
    cp->n++;
    return cp->b.failed ? CDR_E_NOMEM : CDR_OK;
}

/* Advance month mi's checkpoint cursor to the key (h, m), handling every
 * entry before it; *old is the entry of the key itself, if there is one. */
static cdr_err ck_advance(ctx *c, int mi, uint64_t h, const char *m, size_t ml,
                          const st_ckpt **old)
{
    wmonth *wm = &c->wmo[mi];
    cdr_err err = ck_start(c, mi);
    *old = NULL;
    while (err == CDR_OK && wm->ck.have) {
        const st_ckpt *k = &wm->ck.cur;
        int cmp = st_key_cmp(k->h, k->msisdn, k->msisdn_len, h, m, ml);
        if (cmp == 0) {
            *old = k;
            return CDR_OK;
        }
        if (cmp > 0)
            return CDR_OK;
        if ((err = untouched(c, mi)) == CDR_OK && (err = st_ckcur_next(&wm->ck)) != CDR_OK &&
            err != CDR_E_NOMEM)
            err = ck_fail(c, wm->ck.err);
    }
    return err;
}

/* The new records wn[0..nn) of one subscriber-month (time order). */
static cdr_err handle_submonth(ctx *c, work *wn, size_t nn, cdr_month m)
{
    int mi = month_index(c->e, m);
    if (mi < 0) {
        snprintf(c->e->err, sizeof c->e->err, "a record of a month the finish did not expect");
        return CDR_E_INTERNAL;
    }
    const blob *b0 = wn[0].b;
    const st_ckpt *old;
    cdr_err err = ck_advance(c, mi, b0->h, b_msisdn(b0), b0->l_msisdn, &old);
    if (err != CDR_OK)
        return err;
    err = rate_submonth(c, mi, wn, nn, old, b0->h, b_msisdn(b0), b0->l_msisdn);
    if (err == CDR_OK && old && (err = st_ckcur_next(&c->wmo[mi].ck)) != CDR_OK &&
        err != CDR_E_NOMEM)
        err = ck_fail(c, c->wmo[mi].ck.err);
    return err;
}

/* The end of a bucket: the rest of every month's old entries in its range,
 * and the parts' last blocks. */
static cdr_err finish_bucket_state(ctx *c)
{
    cdr_engine *e = c->e;
    cdr_err err = CDR_OK;
    for (size_t mi = 0; mi < e->n_em && err == CDR_OK; mi++) {
        wmonth *wm = &c->wmo[mi];
        if ((err = ck_start(c, (int)mi)) != CDR_OK)
            break;
        while (err == CDR_OK && wm->ck.have && in_bucket(c->bucket, wm->ck.cur.h)) {
            if ((err = untouched(c, (int)mi)) == CDR_OK &&
                (err = st_ckcur_next(&wm->ck)) != CDR_OK && err != CDR_E_NOMEM)
                err = ck_fail(c, wm->ck.err);
        }
        if (err == CDR_OK && c->enc_ready && st_part_flush(&c->out->parts[mi], &c->enc) != 0)
            err = CDR_E_NOMEM;
        wm->ck_on = 0;
        wm->g_on = 0;
    }
    return err;
}

/* One subscriber: ents[0..n) sorted by time (from group/walk.c). */
cdr_err rt_subscriber(ctx *c, const ent *ents, size_t n)
{
    cdr_err err;
    if (work_grow(&c->w, &c->w_cap, n))
        return CDR_E_NOMEM;
    work *w = c->w;
    for (size_t i = 0; i < n; i++) {
        w[i].b = ents[i].b;
        w[i].is_new = 1;
    }
    /* months */
    size_t s = 0;
    while (s < n) {
        cdr_month m = cdr_time_month(w[s].b->start);
        /* the records are in time order: the month ends at the next one's
         * first second (one comparison a record, not a calendar sum) */
        cdr_time next = cdr_month_start(m + 1);
        size_t end = s + 1;
        while (end < n && w[end].b->start < next)
            end++;
        if (c->e->o.state) {
            err = handle_submonth(c, w + s, end - s, m);
        } else {
            mopts mo = {NULL, NULL, 0, NULL, NULL};
            err = process_month(c, w + s, end - s, m, &mo);
        }
        if (err != CDR_OK)
            return err;
        s = end;
    }
    return CDR_OK;
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
        err = finish_bucket_state(c);
    return err;
}

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
    free(c->fps);
    free(c->rids);
    htab_free(&c->rid);
    htab_free(&c->content);
    htab_free(&c->group);
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

#define LOOKAHEAD 4 /* buckets rated ahead of the drain: enough for 2 workers; each held
                     * bucket costs memory (its blobs, the records the sink wants one
                     * by one, its rendered text and the sink's work state) */

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

/* ---- the months of a finish with a state ---- */

static void free_months(cdr_engine *e)
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

/* The engine file of a stored file (by its database id), registered on
 * first sight. */
static cdr_err stored_file(cdr_engine *e, const st_file *f, uint32_t *idx)
{
    for (uint32_t i = 0; i < e->n_files; i++)
        if (e->files[i].db_id == f->db_id && f->db_id != 0) {
            *idx = i;
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
 * those asked; their live state files; a writer for each; every stored
 * file in the engine's file table. */
static cdr_err setup_months(cdr_engine *e)
{
    cdr_err err;
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
    size_t nsm = 0;
    const cdr_month *sm = cdr_state_months(e->o.state, &nsm);
    cdr_month *want = malloc((e->n_months + nsm + e->o.n_rerate_months + 1) * sizeof *want);
    if (!want)
        return CDR_E_NOMEM;
    size_t nw = 0;
    for (size_t i = 0; i < e->n_months; i++)
        want[nw++] = e->months[i];
    if (e->o.rerate) {
        for (size_t i = 0; i < nsm; i++)
            if ((e->o.n_rerate_months == 0 ||
                 has_month(e->o.rerate_months, e->o.n_rerate_months, sm[i])) &&
                !has_month(want, nw, sm[i]))
                want[nw++] = sm[i];
    }
    /* sorted */
    for (size_t i = 1; i < nw; i++)
        for (size_t j = i; j > 0 && want[j - 1] > want[j]; j--) {
            cdr_month t = want[j];
            want[j] = want[j - 1];
            want[j - 1] = t;
        }
    e->em = calloc(nw ? nw : 1, sizeof *e->em);
    if (!e->em) {
        free(want);
        return CDR_E_NOMEM;
    }
    e->n_em = nw;
    /* the files of this run, for the new segments' file tables */
    st_file *run_files = calloc(e->n_run_files ? e->n_run_files : 1, sizeof *run_files);
    if (!run_files) {
        free(want);
        return CDR_E_NOMEM;
    }
    for (uint32_t i = 0; i < e->n_run_files; i++) {
        file_info *f = &e->files[i];
        run_files[i].db_id = f->db_id;
        run_files[i].name = f->name ? f->name : (char *)"";
        run_files[i].n_extra = f->n_extra;
        run_files[i].anchors = f->anchors;
        run_files[i].n_anchors = f->n_anchors;
        run_files[i].row_len = f->row_len;
        if (f->n_extra) {
            run_files[i].extra_names = calloc(f->n_extra, sizeof(char *));
            if (!run_files[i].extra_names) {
                err = CDR_E_NOMEM;
                goto out;
            }
            for (uint32_t k = 0; k < f->n_extra; k++)
                run_files[i].extra_names[k] = (char *)f->extra_names[k].p;
        }
    }
    err = CDR_OK;
    for (size_t i = 0; i < nw && err == CDR_OK; i++) {
        emonth *em = &e->em[i];
        em->m = want[i];
        em->rerate = e->o.rerate &&
                     (e->o.n_rerate_months == 0 ||
                      has_month(e->o.rerate_months, e->o.n_rerate_months, em->m));
        st_segr **segs;
        em->n_segs = st_state_segments(e->o.state, em->m, &segs);
        em->segs = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->segs);
        em->seg_files = calloc(em->n_segs ? em->n_segs : 1, sizeof *em->seg_files);
        if (!em->segs || !em->seg_files) {
            err = CDR_E_NOMEM;
            break;
        }
        for (size_t k = 0; k < em->n_segs && err == CDR_OK; k++) {
            em->segs[k] = segs[k];
            size_t nf = st_segr_n_files(segs[k]);
            em->seg_files[k] = calloc(nf ? nf : 1, sizeof **em->seg_files);
            if (!em->seg_files[k]) {
                err = CDR_E_NOMEM;
                break;
            }
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
    }
out:
    for (uint32_t i = 0; i < e->n_run_files; i++)
        free(run_files[i].extra_names);
    free(run_files);
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
static cdr_err commit_months(cdr_engine *e)
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
    free_months(e); /* (unlinks the temporary files of writers not committed) */
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
    if (e->o.state && (err = setup_months(e)) != CDR_OK)
        return err;

    if (e->o.threads > 1) {
        err = finish_parallel(e, sink, tot, e->o.threads > 8 ? 8 : e->o.threads);
    } else {
        ctx c;
        memset(&c, 0, sizeof c);
        c.e = e;
        c.sink = sink;
        c.tot = tot;
        outbuf ob;
        memset(&ob, 0, sizeof ob);
        err = ctx_init_state(&c);
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
    }
    if (err == CDR_OK && e->o.state)
        err = commit_months(e);
    tot->out_of_scope = e->out_of_scope;
    tot->spilled = e->spilled;
    tot->spilled_bytes = e->spilled_bytes;
    tot->peak_mem = e->peak;
    if (!e->o.state)
        grp_remove_spill(e); /* (with a state a finish may run again) */
    return err;
}
