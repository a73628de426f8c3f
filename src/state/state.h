/* cdrecon — the month state on disk: segments of records and checkpoints of
 * subscriber-months (internal; the design is in docs/state.md).
 *
 * A state directory holds, per bill month:
 *   seg-YYYY-MM-rNNNNNNN.cds  the records one run (or a compaction) added to
 *                             the month: subscriber-month groups in the
 *                             engine's order (msisdn hash, msisdn), each in
 *                             time order, in blocks of the column codec
 *                             (stcodec.h); a group index and a file table
 *   ckp-YYYY-MM-rNNNNNNN.cdk  one entry per subscriber-month of the month:
 *                             what rating needs to go on after its last
 *                             record (pool balances, the last call's end,
 *                             the candidate so far, the partial calls seen)
 * The database says which files are live (table state_files); a file it
 * does not name is garbage. Files are written under NAME.tmp and renamed
 * when complete; every block, index chunk and footer carries a CRC. */
#ifndef CDRECON_STATE_INT_H
#define CDRECON_STATE_INT_H

#include <stdio.h>

#include "cdrecon/state.h"
#include "bsearch.h"
#include "hashfn.h"
#include "stcodec.h"

/* The order of subscribers everywhere: hash, then the msisdn's bytes. */
static inline int st_key_cmp(uint64_t ha, const char *a, size_t an, uint64_t hb, const char *b,
                             size_t bn)
{
    if (ha != hb)
        return ha < hb ? -1 : 1;
    size_t m = an < bn ? an : bn;
    int c = memcmp(a, b, m);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* ---- checkpoints ----------------------------------------------------- */

#define ST_POOLS_MAX 64

typedef struct st_pool {
    int32_t plan, pool;
    int64_t left;
} st_pool;

/* A point to go back to (docs/state.md "Rewind points"): the walk as it
 * stood before the subscriber-month's last partial call, and the records
 * from that call's first part on (the tail, a few records kept in the
 * entry itself). A later part of that call, the usual case of a call over
 * midnight, then re-rates the tail and the new records only, not the month
 * from every segment. */
typedef struct st_rewind {
    uint64_t seq;           /* the tail's first record: the records before it */
    int64_t prev_end;       /* the walk before it (as in st_ckpt) */
    unsigned cflags;
    int has_cand;
    cdr_money over;
    uint32_t cand_records, cats;
    uint64_t n_findings, billed_hi, rebuilt_hi;
    uint32_t n_pools;
    st_pool pools[ST_POOLS_MAX];
    uint32_t n_tail;        /* records in tail */
    unsigned char *tail;    /* n_tail records (st_tail_put), owned like pkeys */
    size_t tail_n, tail_cap;
} st_rewind;

#define ST_TAIL_MAX 8       /* the most records a tail keeps */

/* One tail record: the row's fields and its file's database id, times
 * relative to base (appended to b) / read back with views into r's bytes
 * and its extra values into extra[0..cap): 0 ok, -1 damaged, -3 more than
 * cap extras (row->n_extra says how many; read again from a copy of r). */
void st_tail_put(st_buf *b, const cdr_row *row, int64_t file_db_id, int64_t base);
int st_tail_get(st_rd *r, cdr_row *row, int64_t *file_db_id, int64_t base, cdr_str *extra,
                uint32_t cap);

/* Where rating of a subscriber-month stands after its last stored record. */

typedef struct st_ckpt {
    uint64_t h;
    uint8_t msisdn_len;
    char msisdn[CDR_NUMBER_MAX + 1];
    uint64_t n_records;     /* records stored (also the next record's sequence number) */
    int64_t last_start;     /* start of the last record in time order */
    uint32_t tariff_id;     /* the tariff it was rated with (database tariffs table) */
    int64_t prev_end;       /* end of the latest non-duplicate voice call (INT64_MIN: none) */
    uint32_t n_pools;
    st_pool pools[ST_POOLS_MAX];
    /* the candidate so far */
    int has_cand;
    cdr_money over;
    uint32_t cand_records;
    uint32_t cats;
    unsigned cflags;
    int tier, policy, special, reason;
    /* (service, call_id) hashes of the partial records stored: a new part of
     * one of these calls re-rates the month from its records */
    uint32_t n_pkeys;
    uint32_t *pkeys;        /* sorted; owned by whoever filled the entry */
    uint32_t pkeys_cap;
    /* fingerprints of the stored records' record_ids (sorted, each once):
     * a new record whose fingerprint is not here repeats no stored
     * record_id, so the month continues without reading its records; on
     * one that is (about 1 in 17,000 at 60 records) the stored record_ids
     * decide. Each is a full fingerprint (st_rfp) >> rfp_shift: 0 for an
     * entry made now, ST_RFP_BITS - ST_RFP_BITS_V3 for one of a format 2
     * or 3 file and for its continuations (an 18-bit set cannot be
     * widened); an entry rated whole again is made at the full width */
    uint32_t n_rfp;
    uint32_t *rfp;          /* owned like pkeys */
    uint32_t rfp_cap;
    unsigned rfp_shift;
    /* counts shown by a run */
    uint64_t n_findings;
    /* upper bounds of the sums of the billed and the rebuilt charges, in
     * units of 2^ST_SUM_SHIFT micro-yuan (the limits of docs/rating.md) */
    uint64_t billed_hi, rebuilt_hi;
    /* a rewind point (format 3; has_rw 0: none) */
    int has_rw;
    st_rewind rw;
} st_ckpt;

#define ST_SUM_SHIFT 30

void st_ckpt_clear(st_ckpt *c);  /* frees pkeys, zeroes */
int st_ckpt_copy(st_ckpt *dst, const st_ckpt *src);
int st_ckpt_has_pkey(const st_ckpt *c, uint32_t k);
int st_ckpt_add_pkey(st_ckpt *c, uint32_t k);  /* keeps the set sorted; 0 / -1 nomem */
/* A record_id's fingerprint: 20 bits since checkpoint format 4 (18 in
 * formats 2 and 3: on the 10M-record bench month's night 30, 56
 * subscriber-months doubted and reading their stored record_ids was 6.7 %
 * of the run; at 20 bits 11 do). The sorted gaps of a subscriber-month's
 * ~40 fingerprints cost 2.5 bits a record more than at 18 bits, after
 * deflate (docs/state.md). */
#define ST_RFP_BITS 20
#define ST_RFP_BITS_V3 18   /* the width of the entries of format 2 and 3 files */
static inline uint32_t st_rfp(const void *id, size_t n)
{
    return (uint32_t)(cdr_hash_bytes(id, n, 3) >> (64 - ST_RFP_BITS));
}
/* Whether c may hold the record_id whose full fingerprint is f (compared
 * at c's width): 0 means certainly not stored. */
int st_ckpt_has_rfp(const st_ckpt *c, uint32_t f);
/* Add the full fingerprints v[0..n) (any order, repeats allowed; v is
 * narrowed to c's width and sorted in place); 0 / -1 nomem. */
int st_ckpt_add_rfps(st_ckpt *c, uint32_t *v, size_t n);
/* o's fingerprints become those of `init` (an entry continued: at its
 * width), or none at the full width (init NULL: the month rated from its
 * first record); 0 / -1 nomem. */
int st_ckpt_rfps_from(st_ckpt *o, const st_ckpt *init);
/* Serialise one entry: its bytes appended to b, its fingerprints to f (the
 * chunk's second stream, format 5) / read one back from r and rf; times are
 * kept relative to `base`, the first second of the entry's month. */
void st_ckpt_put(st_buf *b, st_buf *f, const st_ckpt *c, int64_t base);
/* version: the checkpoint file's format (2: entries without rewind points;
 * 2 and 3: 18-bit fingerprints; 2-4: the fingerprints among the entry's
 * bytes, rf unused and may be NULL) */
int st_ckpt_get(st_rd *r, st_rd *rf, st_ckpt *c, int64_t base,
                int version); /* 0, -1 damaged, -2 nomem */
/* c's rewind tail set to n records of the bytes p[0..len); 0 / -1 nomem */
int st_ckpt_set_tail(st_ckpt *c, const void *p, size_t len, uint32_t n);

/* ---- files: a segment's file table ------------------------------------- */

typedef struct st_anchor {
    uint64_t line, offset;
} st_anchor;

/* One input file as the state knows it. */
typedef struct st_file {
    int64_t db_id;          /* files.file_id */
    char *name;
    uint32_t n_extra;
    char **extra_names;
    uint32_t n_anchors;
    st_anchor *anchors;     /* every ANCHOR_LINES lines of accepted rows, in file order */
    uint64_t row_len;       /* average row length between anchors (the residual's slope) */
} st_file;

#define ST_ANCHOR_LINES 64

void st_file_free(st_file *f);
/* The residual of an offset against the file's anchors, and back. */
typedef struct st_anchor_key {
    const st_anchor *a;
    uint64_t line;
} st_anchor_key;

static inline int st_anchor_at_or_before(size_t k, const void *x)
{
    const st_anchor_key *q = x;
    return q->a[k].line <= q->line;
}

/* The last anchor at or before the line (NULL: none). */
static inline const st_anchor *st_anchor_for(const st_file *f, uint64_t line)
{
    st_anchor_key q = {f->anchors, line};
    size_t k = cdr_partition_point(f->n_anchors, st_anchor_at_or_before, &q);
    return k ? &f->anchors[k - 1] : NULL;
}

static inline int64_t st_file_off_res(const st_file *f, uint64_t line, uint64_t offset)
{
    const st_anchor *a = st_anchor_for(f, line);
    if (!a)
        return (int64_t)offset;
    return (int64_t)(offset - a->offset - (line - a->line) * f->row_len);
}

static inline uint64_t st_file_offset(const st_file *f, uint64_t line, int64_t res)
{
    const st_anchor *a = st_anchor_for(f, line);
    if (!a)
        return (uint64_t)res;
    return a->offset + (line - a->line) * f->row_len + (uint64_t)res;
}

/* ---- segment writer ------------------------------------------------------ */

typedef struct st_segw st_segw;

/* A part: whole subscriber-month groups, encoded on a worker thread and
 * appended by the writer's thread in order. */
typedef struct st_part {
    st_buf blocks;          /* encoded blocks, each: u32 length + bytes */
    uint32_t *block_recs;   /* records per block */
    size_t n_blocks, blocks_cap;
    st_buf groups;          /* group entries: msisdn length, msisdn, varint count */
    uint64_t n_groups, n_records;
    size_t block_size;      /* records a block (0: ST_BLOCK_RECORDS) */
    /* the block being filled */
    st_rec *recs;
    cdr_row *rows;          /* copies of the views (the strings stay the caller's) */
    size_t n_recs;
    int open_first;         /* the next record starts a group */
    int failed;
} st_part;

void st_part_init(st_part *p);
void st_part_free(st_part *p);
/* Begin a subscriber-month group; then its records in time order. The
 * strings of each row must stay valid until st_part_flush or the next
 * block is cut (the part copies the row structure, not the bytes): the
 * engine calls st_part_flush before its records' memory goes. */
int st_part_group(st_part *p, const char *msisdn, size_t n, uint64_t count, st_enc *enc);
int st_part_add(st_part *p, const cdr_row *r, uint32_t file_local, int64_t off_res,
                st_enc *enc);
int st_part_flush(st_part *p, st_enc *enc); /* encode the open block */

/* Create PATH.tmp: a segment of `month` whose records come from these files
 * (copied). */
cdr_err st_segw_create(const char *path, cdr_month month, const st_file *files, size_t n_files,
                       st_segw **out, char *err, size_t errlen);
/* The same in format `version`, 2 (the oldest still read) up to the one
 * this program writes: for tests, which write format 2 to show that what
 * earlier releases wrote is still read. */
cdr_err st_segw_create_format(const char *path, cdr_month month, const st_file *files,
                              size_t n_files, uint32_t version, st_segw **out, char *err,
                              size_t errlen);
cdr_err st_segw_append(st_segw *w, st_part *p);
/* Finish the file (index, table, footer), fsync, rename PATH.tmp to PATH. */
cdr_err st_segw_commit(st_segw *w, char *err, size_t errlen);
void st_segw_free(st_segw *w); /* removes PATH.tmp if not committed */
uint64_t st_segw_records(const st_segw *w);
uint64_t st_segw_bytes(const st_segw *w);

/* ---- segment reader ------------------------------------------------------ */

typedef struct st_segr st_segr;

typedef struct st_group {
    uint64_t h;
    const char *msisdn;     /* valid until the cursor moves on */
    size_t msisdn_len;
    uint64_t first;         /* index of its first record in the segment */
    uint64_t count;
} st_group;

cdr_err st_segr_open(const char *path, st_segr **out, char *err, size_t errlen);
void st_segr_close(st_segr *r);
cdr_month st_segr_month(const st_segr *r);
uint64_t st_segr_records(const st_segr *r);
size_t st_segr_n_files(const st_segr *r);
const st_file *st_segr_file(const st_segr *r, size_t i);
const char *st_segr_name(const st_segr *r); /* the file's name, without the directory */

/* A group of a chunk of the index, decoded (the cursor's). */
typedef struct st_gent {
    uint64_t h, count;
    const char *msisdn;     /* into the cursor's memory, until the next chunk */
    uint32_t len;
} st_gent;

/* A cursor over the groups in key order; one per thread (a reader may be
 * shared by threads: it reads with pread). */
typedef struct st_gcur {
    st_segr *r;
    uint64_t chunk;         /* the chunk decoded into ent (when loaded) */
    int loaded;
    st_buf buf;             /* its bytes as stored */
    st_buf raw;             /* format 3: inflated */
    st_buf names;           /* format 3: the msisdns kept as numbers, as text */
    st_gent *ent;           /* its groups in key order */
    size_t n_ent, ent_cap, at; /* at: the next one */
    uint64_t next_first;    /* the first record of ent[at] */
    int have;               /* cur is a group */
    int done;
    st_group cur;
    char msisdn[CDR_NUMBER_MAX + 1];
    /* decoded blocks kept for look-ups (rows and record_ids) */
    st_block rows_blk;
    int64_t rows_blk_no;
    size_t rows_from, rows_to; /* the rows of rows_blk decoded */
    int whole;              /* read every group in turn: decode whole blocks (set after
                               st_gcur_seek, which keeps it) */
    st_block ids_blk;
    int64_t ids_blk_no;
    size_t ids_from, ids_to; /* the rows of ids_blk decoded */
    char err[256];
} st_gcur;

/* Position at the first group with key >= (h, msisdn) (msisdn NULL: the
 * first with hash >= h). Returns CDR_OK (cur->have says whether there is
 * one), or an error (damaged file: cur->err). */
cdr_err st_gcur_seek(st_gcur *c, st_segr *r, uint64_t h, const char *msisdn, size_t n);
cdr_err st_gcur_next(st_gcur *c);
/* Advance to the group of exactly (h, msisdn) if there is one: 1 found
 * (cur), 0 not (the cursor rests on the next larger key), <0 error. The
 * keys asked must not decrease. */
int st_gcur_find(st_gcur *c, uint64_t h, const char *msisdn, size_t n);
void st_gcur_free(st_gcur *c);

/* The record_ids of the current group: fn(id) for each. Non-zero from fn
 * stops (returned). */
cdr_err st_gcur_ids(st_gcur *c, int (*fn)(const cdr_str *id, void *u), void *u);
/* The rows of the current group in time order, with the file table index
 * of each and its offset restored. Views are valid during fn only. */
cdr_err st_gcur_rows(st_gcur *c, int (*fn)(const cdr_row *r, uint32_t file_local, void *u),
                     void *u);

/* ---- checkpoint writer and reader --------------------------------------- */

typedef struct st_ckw st_ckw;

/* A part of a checkpoint file: serialised entries in key order. */
typedef struct st_ckpart {
    st_buf b;
    st_buf f;               /* their fingerprints (st_ckpt_put) */
    uint64_t n;
    uint64_t first_h;       /* of its first entry */
    uint64_t last_h;        /* of its last entry */
} st_ckpart;

cdr_err st_ckw_create(const char *path, cdr_month month, st_ckw **out, char *err, size_t errlen);
cdr_err st_ckw_append(st_ckw *w, st_ckpart *p); /* p's entries, emptied */
cdr_err st_ckw_commit(st_ckw *w, char *err, size_t errlen);
void st_ckw_free(st_ckw *w);
uint64_t st_ckw_entries(const st_ckw *w);
uint64_t st_ckw_bytes(const st_ckw *w);

typedef struct st_ckr st_ckr;
cdr_err st_ckr_open(const char *path, st_ckr **out, char *err, size_t errlen);
void st_ckr_close(st_ckr *r);
cdr_month st_ckr_month(const st_ckr *r);
uint64_t st_ckr_entries(const st_ckr *r);
const char *st_ckr_name(const st_ckr *r); /* the file's name, without the directory */

/* A cursor over entries in key order (one per thread). */
typedef struct st_ckcur {
    st_ckr *r;
    uint64_t chunk;
    const st_ckr *loaded;   /* buf holds chunk `chunk` of this reader (NULL: nothing) */
    size_t buf_n;
    st_buf buf;
    size_t buf_fn;          /* the chunk's fingerprint bytes, after its buf_n */
    st_rd rd, rf;           /* the chunk's entries; their fingerprints (format 5) */
    int have, done;
    st_ckpt cur;
    const unsigned char *cur_raw; /* the serialised bytes of cur, for copying */
    size_t cur_raw_n;
    const unsigned char *cur_rawf; /* ... and of its fingerprints (format 5) */
    size_t cur_rawf_n;
    char err[256];
} st_ckcur;

cdr_err st_ckcur_seek(st_ckcur *c, st_ckr *r, uint64_t h);
cdr_err st_ckcur_next(st_ckcur *c);
/* The current entry appended to b and f as st_ckpt_put would (as bytes
 * from a file of the current format, else encoded again). */
void st_ckcur_copy(const st_ckcur *c, st_buf *b, st_buf *f);
void st_ckcur_free(st_ckcur *c);

/* ---- the engine's view of a state ------------------------------------------- */

/* The live segments and the checkpoint file of month m (none: 0 / NULL). */
size_t st_state_segments(cdr_state *s, cdr_month m, st_segr ***segs);
st_ckr *st_state_checkpoint(cdr_state *s, cdr_month m);

#endif
