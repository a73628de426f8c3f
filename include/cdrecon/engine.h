/*
 * cdrecon — the re-rating engine: groups records by subscriber and bill month
 * (within a memory budget, spilling to temporary files when the input is
 * larger), finds duplicates, merges partial records, runs the bundle pools
 * in time order, rates every record, compares with what was billed, and
 * builds findings and refund candidates.
 *
 *   cdr_engine_new -> cdr_engine_add (per accepted row) ->
 *   [cdr_engine_exclude_file] -> cdr_engine_finish(sink) -> cdr_engine_free
 *
 * Output order: subscribers in a fixed hash order (the same with or without
 * spilling), each subscriber's months in order, records in time order
 * (start time, then record_id, then file and line).
 */
#ifndef CDRECON_ENGINE_H
#define CDRECON_ENGINE_H

#include "findings.h"
#include "rate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdr_engine cdr_engine;

typedef struct cdr_engine_opts {
    size_t mem_budget;       /* bytes for grouped records before spilling; default 1 GiB */
    const char *tmpdir;      /* where spill files go; NULL or "": /tmp (the CLI: $TMPDIR) */
    int64_t max_duration;    /* seconds; longer voice records get the overlong flag (10800) */
    cdr_money tolerance;     /* |billed - rebuilt| <= tolerance is no finding (default 0) */
    cdr_month month;         /* only this bill month; -1 = all months */
    const char *msisdn;      /* only this subscriber (normalised); NULL = all */
    int threads;             /* worker threads for the rating phase (default 2); above 1,
                                cdr_engine_add also hands records to a second thread
                                that files them into their buckets; 1 = no threads.
                                Results do not depend on it. */
    /* The month state (include/cdrecon/state.h; docs/state.md): with one, a
     * finish continues every subscriber-month the new records touch from
     * what the state holds, re-rating it whole when it must, and writes the
     * new records and checkpoints as new state files. month and msisdn must
     * then be unset (a run limits what it reports, not what it ingests). */
    struct cdr_state *state;
    const char *state_dir;   /* where the new state files go (the state's directory) */
    int64_t run_id;          /* names the new state files */
    uint32_t tariff_id;      /* kept in the checkpoints; a subscriber-month last rated with
                                another one is re-rated whole when it is touched */
    int rerate;              /* re-rate every stored subscriber-month of rerate_months
                                (all months the state holds if n_rerate_months is 0) */
    const cdr_month *rerate_months;
    size_t n_rerate_months;
} cdr_engine_opts;

void cdr_engine_opts_init(cdr_engine_opts *o);
/* What the month state calls "the tariff" a subscriber-month was rated
 * with: the tariff's SHA-256 (cdr_tariff_sha256), folded with the options
 * that change a rating (tolerance, max_duration) when they are not the
 * defaults. A night run with other options than the previous one re-rates
 * what it touches, as after a tariff change, instead of mixing two
 * ratings in one month. */
struct cdr_tariff;
void cdr_rating_identity(const struct cdr_tariff *t, const cdr_engine_opts *o, uint8_t out[32]);

/* What happened to one record. */
typedef enum cdr_rec_status {
    CDR_RS_RATED = 0,        /* an ordinary record, rated */
    CDR_RS_DUPLICATE,        /* a duplicate of an earlier record: rebuilt 0 */
    CDR_RS_PARTIAL_FIRST,    /* first part of a multi-part call/session: carries the charge */
    CDR_RS_PARTIAL_REST,     /* a later part: rebuilt 0, compared with the first part */
    CDR_RS_FREE,             /* to a free number: rebuilt 0, no allowance */
    CDR_RS_NO_SUBSCRIPTION,  /* vas without a valid subscription: rebuilt 0 */
    CDR_RS_SEGMENT_OVER,     /* per-segment sms part beyond the segment count: rebuilt 0 */
    CDR_RS_UNRATED,          /* no plan or no rate row: see unrated */
    CDR_RS__COUNT
} cdr_rec_status;
const char *cdr_rec_status_name(cdr_rec_status s);

/* One record with everything the engine decided about it. Views are valid
 * only during the callback. */
typedef struct cdr_rated {
    cdr_row row;             /* the record (raw is empty; extras present) */
    cdr_month month;
    cdr_rec_status status;
    int32_t plan;            /* -1 if no plan */
    cdr_rate_out rating;     /* valid when status is RATED or PARTIAL_FIRST */
    cdr_money rebuilt;       /* the rebuilt charge of this record */
    cdr_money cmp_billed;    /* billed used in the comparison (sum of parts for PARTIAL_FIRST) */
    int64_t pool_after;      /* remaining allowance after this record; -1 if no pool */
    int64_t usage;           /* the usage rated (merged for PARTIAL_FIRST) */
    uint32_t n_parts;        /* parts of a merged call (1 otherwise) */
    cdr_str dup_of;          /* record_id of the original, for duplicates */
    uint64_t seq;            /* the record's place in its subscriber-month's time order */
    uint64_t msisdn_hash;    /* cdr_msisdn_hash of the msisdn: the subscribers' order */
    int is_new;              /* with a state: read in this run (0: from the state) */
    const char *file_name;   /* its input file */
    int64_t file_db_id;      /* with a state: that file's database id (0: unknown) */
    int has_finding;         /* 1 if a finding is reported for this record */
    cdr_finding finding;     /* valid when has_finding */
    const char *unrated;     /* reason when status is UNRATED */
} cdr_rated;

/* Totals of a finished engine. */
typedef struct cdr_engine_totals {
    uint64_t records;        /* records rated (excluded files not counted) */
    uint64_t excluded;       /* records of excluded files */
    uint64_t out_of_scope;   /* records outside the month/msisdn filter */
    uint64_t duplicates;
    uint64_t unrated;
    uint64_t findings;
    uint64_t by_category[CDR_CAT__COUNT];
    cdr_money amount_by_category[CDR_CAT__COUNT];
    uint64_t candidates;
    cdr_money overcharge;
    cdr_money refund;
    cdr_money leakage;       /* sum of undercharges, as a positive amount */
    uint64_t leakage_records;
    /* with a state */
    uint64_t submonths;      /* subscriber-months rated by this finish */
    uint64_t submonths_new;  /* ... seen for the first time */
    uint64_t submonths_continued; /* ... continued from their checkpoint */
    uint64_t submonths_full; /* ... re-rated whole from the state */
    uint64_t submonths_rewound; /* ... re-rated from a rewind point (docs/state.md) */
    uint64_t records_rerated;/* stored records rated again (whole re-rating) */
    uint64_t submonths_other_tariff; /* untouched ones last rated with another tariff */
    uint64_t candidates_changed; /* new candidate versions (changed or new) */
    uint64_t candidates_withdrawn;
    uint64_t spilled_bytes;  /* bytes written to spill files */
    int spilled;             /* 1 if the engine spilled */
    size_t peak_mem;         /* peak bytes held for grouping */
} cdr_engine_totals;

/* With a state: one subscriber-month as a finish handles it. */
typedef enum cdr_submonth_mode {
    CDR_SM_NEW = 0,          /* the state had none of its records */
    CDR_SM_CONTINUE,         /* its new records come after the stored ones: rated from
                                the checkpoint; earlier findings stand */
    CDR_SM_FULL,             /* re-rated whole: its earlier findings are replaced */
    CDR_SM_REWIND            /* re-rated from its rewind point (a new part of its last
                                partial call): its findings from from_seq on are replaced */
} cdr_submonth_mode;

typedef struct cdr_submonth {
    cdr_str msisdn;
    uint64_t msisdn_hash;
    cdr_month month;
    cdr_submonth_mode mode;
    int end;                 /* 0: before its records; 1: after them and its candidate */
    uint64_t records;        /* records of the subscriber-month (all, after this run) */
    uint64_t new_records;
    uint64_t from_seq;       /* CDR_SM_REWIND: the first record (seq) rated again */
    int had_candidate;       /* before this finish */
    cdr_money prev_refund;
    /* at the end: */
    int has_candidate;
    cdr_money refund;
    int candidate_changed;   /* on_candidate was called with a new version */
    int candidate_withdrawn; /* it had one and has none now */
} cdr_submonth;

typedef struct cdr_engine_sink {
    /* Every record, in output order (may be NULL). Non-zero return stops. */
    int (*on_record)(const cdr_rated *r, void *user);
    /* Each finding (also reachable through on_record). */
    int (*on_finding)(const cdr_finding *f, void *user);
    /* Each subscriber-month with an overcharge, after its records. */
    int (*on_candidate)(const cdr_candidate *c, void *user);
    void *user;
    /* on_record is called only for records whose status bit
     * (1u << cdr_rec_status) is set here; 0 means every record. Naming only
     * what is needed saves keeping every record for the ordered hand-over. */
    unsigned record_statuses;
    /* Optional: render each wanted record as text on the rating workers (in
     * parallel; it must be thread-safe and deterministic), into a writer the
     * engine provides; the text of each bucket is then handed over in order
     * through on_text, with the number of rows in it. When set, on_record
     * is not called. */
    cdr_err (*render)(const cdr_rated *r, void *w /* cdr_csvw * */, void *user);
    int (*on_text)(const char *p, size_t n, uint64_t rows, void *user);
    /* Optional: the sink's own per-record work on the rating workers, one
     * state per bucket of subscribers (a bucket holds whole subscribers).
     * On the worker that rates the bucket: work_record for every record
     * (whatever record_statuses says) and work_candidate for each
     * candidate, in output order (a subscriber-month's candidate after its
     * records), then work_end once. *state starts NULL and is the sink's
     * to set (typically on the first call); it may stay NULL. These run in
     * parallel across buckets: they must be thread-safe and deterministic
     * (not depend on which thread runs them). Then, on the thread that
     * called cdr_engine_finish and strictly in bucket order, on_work(state)
     * hands the bucket's state over (before the bucket's on_text,
     * on_record, on_finding, on_candidate calls), and free_work(state)
     * releases it, also when the run stops early. on_work and free_work
     * are called only for a non-NULL state; free_work is required when
     * work_record or work_candidate is set. The engine holds at most a few
     * buckets' states at a time (the ones rated ahead of the drain), so a
     * state should be compact (encoded bytes, not records). */
    /* With a state: each subscriber-month before its records (end 0) and
     * after its candidate (end 1). A candidate is passed to on_candidate
     * only when it is new or changed. */
    int (*on_submonth)(const cdr_submonth *sm, void *user);
    cdr_err (*work_record)(void **state, const cdr_rated *r, void *user);
    cdr_err (*work_candidate)(void **state, const cdr_candidate *c, void *user);
    cdr_err (*work_end)(void *state, void *user);
    int (*on_work)(void *state, void *user);
    void (*free_work)(void *state, void *user);
} cdr_engine_sink;

cdr_err cdr_engine_new(const cdr_tariff *t, const cdr_engine_opts *o, cdr_engine **out);
void cdr_engine_free(cdr_engine *e); /* accepts NULL; removes spill files */

/* Records can be added before the tariff is known (it is needed only by
 * cdr_engine_finish): cdr_engine_new(NULL, ...), then set it here, so that
 * a caller can load the tariff while the CDRs are read. */
void cdr_engine_set_tariff(cdr_engine *e, const cdr_tariff *t);

/* The 64-bit hash of a (normalised) msisdn that orders the engine's output:
 * subscribers come out by (hash, msisdn). The store orders its index the
 * same way, so it can write the index as the subscribers arrive. */
uint64_t cdr_msisdn_hash(const char *p, size_t n);

/* The names of the input files, for findings (the engine copies them). */
cdr_err cdr_engine_set_file(cdr_engine *e, uint32_t file_index, const char *name);

/* Add one accepted row (copied). */
cdr_err cdr_engine_add(cdr_engine *e, const cdr_row *row);

/* Leave out every record of a file (already ingested, or the file failed). */
void cdr_engine_exclude_file(cdr_engine *e, uint32_t file_index);

/* With a state: the run and tariff ids, when they are known only after
 * cdr_engine_new (the tariff loads while the files are read). */
void cdr_engine_set_state_ids(cdr_engine *e, int64_t run_id, uint32_t tariff_id);

/* With a state: the database id of an input file (named in the state). */
cdr_err cdr_engine_set_file_id(cdr_engine *e, uint32_t file_index, int64_t db_file_id);
/* After a finish with a state: records of the file whose (msisdn, record_id)
 * repeats one ingested before (from another file, or an earlier file of
 * this run) - the sign of a re-delivered file. */
uint64_t cdr_engine_file_copies(const cdr_engine *e, uint32_t file_index);

/* The state files a finish wrote (committed, under their final names), and
 * the live files they replace (the months' old checkpoints). */
typedef struct cdr_engine_state_file {
    char name[64];
    int kind;                /* cdr_state_kind */
    cdr_month month;
    uint64_t records;        /* segment: records; checkpoint: subscriber-months */
    uint64_t bytes;
} cdr_engine_state_file;
size_t cdr_engine_state_written(const cdr_engine *e, const cdr_engine_state_file **files);
size_t cdr_engine_state_replaced(const cdr_engine *e, const cdr_engine_state_file **files);
/* Remove the files a finish wrote (the run failed before its database
 * commit). */
void cdr_engine_state_discard(cdr_engine *e);
/* Forget a finish so that cdr_engine_finish can run again (after excluding
 * a file): its state files are removed. The records stay. */
cdr_err cdr_engine_rewind(cdr_engine *e);

/* Rate everything and report through the sink. Call once. */
cdr_err cdr_engine_finish(cdr_engine *e, const cdr_engine_sink *sink, cdr_engine_totals *tot);

/* The error text of the last failure (spill I/O etc.), "" if none. */
const char *cdr_engine_errmsg(const cdr_engine *e);

/* ---- refund policy (DOMAIN.md), exposed for tests and investigate ---- */

/* Approval tier 0..4 for a refund amount (micro-yuan). company_liable: the
 * operator's own error (every double refund is). first_refund: the number
 * has no earlier refund. */
int cdr_approval_tier(cdr_money refund, int company_liable, int first_refund);
/* Special customer as of bill month m, from earlier refunds of the number
 * (company-liable and border-roaming refunds excluded). */
int cdr_special_customer(const cdr_prior_refund *r, size_t n, cdr_month m);

#ifdef __cplusplus
}
#endif
#endif
