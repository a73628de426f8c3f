/* cdrecon — the engine's shared internal header: the engine, a rating worker's state and a bucket's results, for the driver and its three stages. */
/*
 * What src/engine.c and group/, rate/, reconcile/ share: the engine itself,
 * a rating worker's state (ctx) and the results of one bucket on their way
 * to the sink (outbuf). Not public.
 *
 *   group/      records packed and filed into buckets; at the finish each
 *               bucket loaded, sorted, walked subscriber by subscriber
 *   rate/       one subscriber-month in time order: duplicates, partial
 *               calls, bundles, each record's charge; with a month state,
 *               continued from its checkpoint or rated whole
 *   reconcile/  rebuilt against billed: diagnosis, candidates, policy
 *
 * Each stage's own types and functions are in its folder's header
 * (group_int.h, rate_int.h, reconcile_int.h); only what crosses them is
 * here.
 */
#ifndef CDRECON_ENGINE_INT_H
#define CDRECON_ENGINE_INT_H

#include <pthread.h>

#include "cdrecon/engine.h"
#include "cdrecon/outcsv.h"
#include "group_int.h"
#include "state.h"

/* ------------------------------------------------------------------ */
/* The engine                                                           */

typedef struct file_info {
    char *name;
    int excluded;
    cdr_str *extra_names; /* copied */
    char *extra_store;
    uint32_t n_extra;
    /* with a state */
    int64_t db_id;        /* files.file_id (0: unknown) */
    st_anchor *anchors;   /* a file of this run: (line, offset) every ST_ANCHOR_LINES lines */
    uint32_t n_anchors, anchors_cap;
    uint64_t next_anchor;
    uint64_t row_len;     /* the anchors' average row length */
    uint64_t copies;      /* records repeating an earlier (msisdn, record_id) */
    int stored;           /* known only from the state (a file of an earlier run) */
} file_info;

/* A month this finish touches: its live state files and the new ones. */
typedef struct emonth {
    cdr_month m;
    int rerate;           /* re-rate every stored subscriber-month */
    st_segr **segs;       /* live segments (the state's) */
    size_t n_segs;
    uint32_t **seg_files; /* per segment: file table index -> engine file index */
    st_ckr *ckp;          /* the live checkpoint file (NULL: a new month) */
    uint64_t new_records;
    st_segw *segw;        /* this finish's segment (NULL: no new records) */
    st_ckw *ckw;          /* this finish's checkpoint file */
} emonth;

#define TPOOL_MAX 8 /* kept memory writers: the buckets in flight (LOOKAHEAD) and more */

struct cdr_engine {
    const cdr_tariff *t;
    cdr_engine_opts o;
    bucket b[NBUCKET];
    size_t mem, peak;
    char *spilldir;
    int spilled;
    uint64_t spilled_bytes;
    file_info *files;
    uint32_t n_files;
    uint64_t out_of_scope;
    int finished;
    char err[512];
    /* The distributor (threads > 1): cdr_engine_add packs records into
     * staging blocks, a second thread moves them into the buckets (hashing,
     * chunk memory, spilling), so that the reading thread does less. */
    int dist_on, dist_tried;
    pthread_t dist_th;
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    struct stage *q_head, *q_tail; /* full blocks, in order */
    size_t q_len;
    struct stage *spare;           /* emptied blocks, for reuse */
    struct stage *cur;             /* being filled */
    int dist_end;
    cdr_err dist_err;
    /* Memory writers for rendered rows, kept for the next bucket once
     * drained: a bucket renders megabytes, and fresh memory each time
     * cost its page faults again (at most the writers in flight are kept). */
    pthread_mutex_t tmu;
    struct cdr_csvw *tpool[TPOOL_MAX];
    int n_tpool;
    /* With a state: the months of the records added, the months of a
     * finish, and the state files it wrote and replaced. */
    cdr_month *months;
    size_t n_months, months_cap;
    emonth *em;
    size_t n_em;
    uint32_t n_run_files;   /* engine file indexes below this are files of this run */
    cdr_engine_state_file *written, *replaced;
    size_t n_written, n_replaced;
};

/* The name of engine file fi ("" if unknown). */
static inline const char *eng_file_name(const cdr_engine *e, uint32_t fi)
{
    return fi < e->n_files && e->files[fi].name ? e->files[fi].name : "";
}

/* ------------------------------------------------------------------ */
/* A rating worker                                                      */

/* A small open-addressing table of (hash, index) for per-subscriber sets
 * (rate/duplicates.c). */
typedef struct htab {
    uint64_t *h;
    int32_t *v;
    size_t cap;  /* allocated */
    size_t mask; /* in use: a power of two >= 2n, minus one */
} htab;

typedef struct work work;         /* a record in its subscriber-month (rate/rate_int.h) */
typedef struct pool_bal pool_bal; /* a bundle pool's balance (rate/rate_int.h) */
typedef struct outbuf outbuf;

/* A worker's view of one month of a finish with a state. */
typedef struct wmonth {
    st_ckcur ck;          /* the month's old checkpoint entries */
    int ck_on;            /* positioned in the current bucket */
    st_gcur *g;           /* one cursor per live segment */
    int g_on;
} wmonth;

/* Stored records of one subscriber-month, loaded for re-rating it whole. */
typedef struct stored {
    unsigned char *p;     /* packed records */
    size_t n, cap;
    blob *b;
    size_t nb, bcap;
} stored;

/* One rating worker's state (one per thread): set up and freed by the
 * driver, its scratch owned by the stage that uses it. */
struct ctx {
    cdr_engine *e;
    const cdr_engine_sink *sink;
    cdr_engine_totals *tot;
    /* rate/: one subscriber-month */
    htab rid, content, group;
    work *w;
    size_t w_cap;
    work *wm;             /* the subscriber-month being rated (dup_of indexes into it) */
    /* rate/, with a state */
    wmonth *wmo;          /* per month of the finish */
    int bucket;
    stored st;
    const blob **mix;     /* a month's stored records, in time order */
    size_t mix_cap;
    work *wf;             /* its stored and new records, in time order */
    size_t wf_cap;
    uint32_t *fps;        /* record_id fingerprints of a checkpoint being made */
    size_t fps_cap;
    uint64_t *rids;       /* hashes of the stored record_ids (a fingerprint's doubt) */
    size_t n_rids, rids_cap;
    uint64_t *copies;     /* per engine file */
    st_enc enc;
    int enc_ready;
    st_ckpt ck_new;       /* the checkpoint being built */
    size_t rw_at;         /* the rewind point of the walk being made (SIZE_MAX: none) */
    int rw_ok;            /* rw_snap holds the walk at rw_at */
    st_rewind rw_snap;    /* (its tail fields unused) */
    st_buf rw_tail;       /* the tail being serialised */
    cdr_str *tx;          /* extras of a tail record read back */
    size_t tx_cap;
    pool_bal *pb;         /* rate/: the bundle pools' balances */
    size_t n_pb, pb_cap;
    /* group/: the bucket being rated */
    ent *ents, *tmp;
    blob *blobs;          /* the current slice, decoded; ents point here */
    uint32_t *runs;       /* its subscribers' runs (grp_sort_ents), blobs_cap of them */
    size_t ents_cap, blobs_cap;
    /* rate/ */
    cdr_str *xs;          /* extras of the current record */
    size_t xs_cap;
    outbuf *out;          /* NULL: call the sink directly */
    char expl[768];       /* the current finding's explanation */
};

/* ------------------------------------------------------------------ */
/* The results of one bucket, kept for the drain                        */

typedef struct ablk {
    struct ablk *next;
    size_t n, cap;
    char d[];
} ablk;

/* Filled on the worker that rates the bucket (rate/emit.c), handed to the
 * sink in bucket order on the finishing thread (src/engine.c). */
struct outbuf {
    cdr_rated *recs;
    size_t n_recs, cap_recs;
    cdr_candidate *cands;
    size_t n_cands, cap_cands;
    uint8_t *kinds;          /* 0 record, 1 candidate, in order */
    size_t n_kinds, cap_kinds;
    ablk *arena;             /* copies of explanations and extras arrays */
    cdr_csvw *text_w;        /* rendered records (sink->render), in order, in memory */
    void *work;              /* the sink's state of this bucket (sink->work_record) */
    unsigned char *spill_data; /* the bucket's blobs, alive until drained */
    chunk *chunks;
    cdr_submonth *sms;       /* subscriber-month events (kind 2), in order */
    size_t n_sms, cap_sms;
    st_part *parts;          /* with a state: this bucket's new records, per month */
    st_ckpart *ckparts;      /* ... and its checkpoint entries, per month */
    size_t n_parts;
    cdr_err err;
    int done;
};

/* A memory writer for a bucket's rendered rows: a kept one, or a new one
 * (NULL: no memory). */
cdr_csvw *eng_text_take(cdr_engine *e);

#endif
