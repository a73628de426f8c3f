/* cdrecon — rate/'s internal header: a subscriber-month rated in time order, and with a month state continued or rated whole. */
/*
 * One subscriber-month rated in time order, and with a month state,
 * continued from its checkpoint or rated whole (src/rate/). Not public.
 *
 *   rt_subscriber (month.c) splits a subscriber's sorted records into bill
 *   months. Without a state each month goes to rt_month; with one, to
 *   rt_handle_submonth (submonth.c), which decides from the month's old
 *   checkpoint whether the new records continue it or the month is rated
 *   whole with its stored records (stored.c), and writes the new
 *   checkpoint (checkpoint.c) and the new records into the bucket's state
 *   parts. rt_month: duplicates (duplicates.c), partial calls
 *   (partials.c), then each record: its status, its charge with the
 *   bundle pools' balances in time order, its flags, the comparison
 *   (reconcile/); then the candidate. Results go to the bucket's outbuf
 *   (emit.c). The months of a finish with a state are opened and
 *   committed in months.c.
 */
#ifndef CDRECON_RATE_INT_H
#define CDRECON_RATE_INT_H

#include <stdlib.h>

#include "engine_int.h"

/* (internal) a subscriber-month continued from its checkpoint reached a
 * limit that only rating it whole can decide: rate it whole */
#define CDR_E_AGAIN ((cdr_err)(CDR_E__COUNT + 100))

/* Per-record working state during one subscriber-month. */
struct work {
    const blob *b;
    int is_new;           /* read in this run (else from the state) */
    int32_t rid_first;    /* the first record with its record_id (itself if none before) */
    int g_stored;         /* (rt_count_copies, at rid_first) a stored record has this id */
    uint32_t g_minfile;   /* (rt_count_copies, at rid_first) the lowest file of its new ones */
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

/* How rt_month continues and what it writes. */
typedef struct mopts {
    const st_ckpt *init;   /* go on after these records (NULL: from the month's start) */
    const st_ckpt *prev;   /* the subscriber-month's checkpoint before this finish */
    uint64_t seq0;         /* the sequence number of the first record */
    st_ckpt *out;          /* with a state: the new checkpoint (NULL: no state) */
    cdr_submonth *sm;      /* with a state: the candidate's outcome */
} mopts;

/* A subscriber-month's walk in time order: what the records so far left
 * for the next one (a checkpoint keeps it, with the pools' balances in
 * ctx.pb, to go on after them). */
typedef struct mwalk {
    const char *unrated;   /* the month is not rated at all: why (its billed amounts add up
                              beyond the limit) */
    cdr_money billed_sum, rebuilt_sum;
    int64_t prev_end;      /* the latest end of a voice call so far (overlap) */
    const cdr_subscriber *sub; /* the plan period of the last record */
    int has_candidate;
    uint32_t cand_records; /* overcharged records, their sum, categories */
    cdr_money over;
    uint32_t cats;
    unsigned cflags;       /* the records' flags */
    uint64_t findings;
} mwalk;

/* ---- inline helpers for every record ---- */

static inline int is_partial(const blob *b)
{
    return (b->service == CDR_SVC_VOICE || b->service == CDR_SVC_DATA) && b->l_call > 0 &&
           b->partial_seq > 0;
}

/* A record_id's full fingerprint (the checkpoints' rfp: st_rfp). */
static inline uint32_t rid_fp(const blob *b)
{
    return st_rfp(b_rid(b), b->l_rid);
}

/* A partial call's key in a checkpoint (its call_id, by service). */
static inline uint32_t partial_key(const blob *b)
{
    return (uint32_t)cdr_hash_bytes(b_call(b), b->l_call, b->service + 7);
}

static inline int rt_work_grow(work **w, size_t *cap, size_t n)
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

/* The record as a cdr_row view (its extras rebuilt into c->xs; month.c).
 * A function, as before the split: inline here with its extras loop out of
 * line, it cost 10 instructions more a call (callgrind). */
cdr_err rt_fill_row(ctx *c, const blob *b, cdr_row *r);

/* ---- month.c: a subscriber's months, one subscriber-month ---- */

/* One subscriber: ents[0..n) sorted by time, cut into bill months. */
cdr_err rt_subscriber(ctx *c, const ent *ents, size_t n);
/* One subscriber-month: w[0..n) in time order. */
cdr_err rt_month(ctx *c, work *w, size_t n, cdr_month month, const mopts *mo);
/* Bundle pool (plan, pool)'s balance in this subscriber-month, starting at
 * allowance on first use (NULL: no memory). */
int64_t *rt_pool_left(ctx *c, int32_t plan, int32_t pool, int64_t allowance);

/* ---- duplicates.c ---- */

/* Make room for n keys in t, cleared. */
cdr_err rt_htab_reset(htab *t, size_t n);
void rt_htab_free(htab *t);
/* Each record's status RATED or DUPLICATE (with its original), and its
 * record_id's first record. */
cdr_err rt_find_duplicates(ctx *c, work *w, size_t n);
/* Copies of records ingested before, counted per file into c->copies. */
void rt_count_copies(ctx *c, work *w, size_t n);

/* ---- partials.c ---- */

/* The parts of each call or session (none when the month is not rated):
 * the first part PARTIAL_FIRST with the merged usage and billed amounts,
 * the others PARTIAL_REST. */
cdr_err rt_group_partials(ctx *c, work *w, size_t n, int month_unrated);
/* For a first part rated with the rate's increment: its parts' usage each
 * rounded up alone, to the increment and to a whole minute / MB, summed
 * (the partial_rounding probe's alternatives). */
void rt_part_rounding(work *w, int32_t first, cdr_service svc, int64_t increment);

/* A sum as a checkpoint keeps it: an upper bound in units of
 * 2^ST_SUM_SHIFT micro-yuan (rounded up). */
static inline uint64_t rt_sum_hi(cdr_money v)
{
    return (uint64_t)((v + ((cdr_money)1 << ST_SUM_SHIFT) - 1) >> ST_SUM_SHIFT);
}

/* ---- checkpoint.c ---- */

/* Go on from a checkpoint: the pools' balances, the last call's end, the
 * flags and the candidate so far. */
cdr_err rt_walk_resume(ctx *c, mwalk *k, const st_ckpt *init);
/* The new checkpoint (mo->out) after the last of w[0..n): the walk (by
 * value: the caller's stays in registers), the candidate (cd, NULL when
 * none), the partial calls' keys and the record_ids' fingerprints.
 * *changed: the candidate is new or differs from the one of mo->prev. */
cdr_err rt_walk_save(ctx *c, const work *w, size_t n, const mopts *mo, mwalk walk,
                     const cdr_candidate *cd, int *changed);

/* ---- stored.c: a subscriber-month's records in the month state ---- */

cdr_err rt_ck_fail(ctx *c, const char *why);
/* Whether a record_id of the new records wn[0..nn) is a stored one's. */
cdr_err rt_stored_ids_hit(ctx *c, int mi, const work *wn, size_t nn, uint64_t h,
                          const char *m, size_t ml, int *hit);
/* Every stored record of (h, msisdn) in month mi, as blobs in c->st.b. */
cdr_err rt_load_stored(ctx *c, int mi, uint64_t h, const char *m, size_t ml);
/* The stored records and the new ones wn[0..nn) merged in time order
 * into c->wf (*total of them). */
cdr_err rt_merge_stored(ctx *c, const work *wn, size_t nn, size_t *total);

/* A stored row packed into c->st (file_index: the engine's); then, after
 * the last, the area unpacked into blobs c->st.b of subscriber hash h. */
cdr_err rt_stored_push(ctx *c, const cdr_row *row);
cdr_err rt_stored_unpack(ctx *c, uint64_t h);

/* ---- rewind.c: rewind points (docs/state.md) ---- */

/* The rewind point of a walk over w[0..n) whose partial calls are grouped:
 * the first part of the call its last record belongs to, when the records
 * from there on are at most ST_TAIL_MAX and none of them is a duplicate or
 * a part of a call begun before it; else SIZE_MAX. */
size_t rt_rewind_point(const work *w, size_t n);
/* Keep the walk as it stands before record i (by value, rarely). */
void rt_rewind_snap(ctx *c, const work *w, size_t i, const mopts *mo, mwalk k);
/* Into the new checkpoint o: the rewind point kept by rt_rewind_snap, with
 * the records w[c->rw_at..n) as its tail (none when a record's file has no
 * database id). */
cdr_err rt_rewind_save(ctx *c, const work *w, size_t n, st_ckpt *o);
/* The tail of old's rewind point as blobs in c->st.b (not new). */
cdr_err rt_load_tail(ctx *c, const st_ckpt *old);
/* Whether a loaded tail has a part of b's call (the same service and
 * call_id). */
int rt_tail_has_call(const ctx *c, const blob *b);
/* The walk of old's rewind point as a checkpoint to go on from (its key
 * sets borrowed from old: not to be cleared). */
void rt_rewind_init(const st_ckpt *old, st_ckpt *init);

/* ---- submonth.c: subscriber-months with a state ---- */

/* The new records wn[0..nn) of one subscriber-month (time order). */
cdr_err rt_handle_submonth(ctx *c, work *wn, size_t nn, cdr_month m);
/* The end of a bucket: the rest of every month's old checkpoint entries in
 * its hash range, and the parts' last blocks. */
cdr_err rt_finish_bucket_state(ctx *c);

/* ---- months.c: the months of a finish with a state ---- */

cdr_err rt_setup_months(cdr_engine *e);
cdr_err rt_commit_months(cdr_engine *e);
void rt_free_months(cdr_engine *e);
/* The engine file of a database file id (UINT32_MAX: none; 0 is never
 * one). */
uint32_t rt_file_by_db_id(const cdr_engine *e, int64_t db_id);

/* ---- emit.c: results into the bucket's outbuf (or to the sink) ---- */

void *rt_arena_alloc(outbuf *o, size_t n);
/* Where a bucket's results stand, to take back what a subscriber-month
 * emitted (a continuation redone whole). */
typedef struct outbuf_mark {
    size_t n_recs, n_cands, n_sms, n_kinds;
} outbuf_mark;
outbuf_mark rt_outbuf_save(const outbuf *o);
void rt_outbuf_restore(outbuf *o, const outbuf_mark *m);
/* A record kept in the bucket's outbuf for the drain (with copies of the
 * views that go before it). */
cdr_err rt_emit_keep(ctx *c, const cdr_rated *r);

/* A rated record to the sink: the sink's per-bucket work and rendering
 * here on the worker, then kept for the drain if the sink wants it or it
 * has a finding (without an outbuf: straight to the sink). Inline: every
 * record passes here and most need nothing kept. */
static inline cdr_err rt_emit_record(ctx *c, const cdr_rated *r)
{
    outbuf *o = c->out;
    if (c->sink->work_record) {
        /* the sink's own work, here on the worker (o is set: see uses_outbuf in
         * src/engine.c) */
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
    return rt_emit_keep(c, r);
}
cdr_err rt_emit_candidate(ctx *c, const cdr_candidate *cd);
cdr_err rt_emit_submonth(ctx *c, const cdr_submonth *sm);

#endif
