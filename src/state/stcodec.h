/* cdrecon — the month state's block codec: a block of up to ST_BLOCK_RECORDS
 * records, column by column (internal; docs/state.md).
 *
 * The records of a block are those of consecutive subscriber-month groups in
 * time order. Every field becomes one or more byte streams ("columns"):
 * start times as deltas from the previous record of the same group, split
 * into byte planes; numbers as varints or byte planes; strings typed as
 * digits, prefix+digits, dictionary words or raw bytes, so that a phone
 * number costs about its entropy and a record_id that counts up costs a
 * byte or less. Each column is compressed on its own (raw deflate), so a
 * column of random bytes costs its 8 bits and a constant column nothing.
 * A block is self-contained: it decodes without anything else. */
#ifndef CDRECON_STCODEC_H
#define CDRECON_STCODEC_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "cdrecon/record.h"

#define ST_BLOCK_RECORDS 4096 /* a night's segment; a compacted one: more */
#define ST_BLOCK_MAX 16384
#define ST_EXTRA_COLS 16   /* extras beyond the 15th share the last column set */

/* A growable byte buffer. */
typedef struct st_buf {
    unsigned char *p;
    size_t n, cap;
    int failed;            /* an allocation failed: later appends do nothing */
} st_buf;

void st_buf_free(st_buf *b);
int st_buf_reserve(st_buf *b, size_t more);
void st_buf_put(st_buf *b, const void *p, size_t n);
void st_buf_u8(st_buf *b, unsigned v);
void st_buf_varint(st_buf *b, uint64_t v);
void st_buf_u32le(st_buf *b, uint32_t v);
void st_buf_u64le(st_buf *b, uint64_t v);

/* Reading our own bytes back, with every length checked. */
typedef struct st_rd {
    const unsigned char *p, *end;
    int bad;               /* ran past the end or a value was malformed */
} st_rd;

uint64_t st_rd_varint(st_rd *r);
unsigned st_rd_u8(st_rd *r);
uint32_t st_rd_u32le(st_rd *r);
uint64_t st_rd_u64le(st_rd *r);
const unsigned char *st_rd_bytes(st_rd *r, size_t n);


/* One record to encode: the row (its views), the index of its file in the
 * segment's file table, the offset residual the segment computed from its
 * file's anchors, and whether it starts a subscriber-month group. */
typedef struct st_rec {
    const cdr_row *row;
    uint32_t file_local;
    int64_t off_res;
    int first;
} st_rec;

/* An encoder's reusable memory (one per thread). level: ISA-L level 1..3
 * for the columns that are not byte planes. */
typedef struct st_enc {
    int level;
    unsigned char *lvl_buf;
    size_t lvl_size;
} st_enc;
int st_enc_init(st_enc *x, int level); /* 0, or -1 out of memory */
void st_enc_free(st_enc *x);

/* Encode n (1..ST_BLOCK_MAX) records as one block appended to out.
 * Returns 0, or -1 when memory ran out or a record cannot be encoded (start
 * times out of order within a group, a line number above 2^32). */
int st_block_encode(const st_rec *recs, size_t n, st_enc *x, st_buf *out);

/* A decoded block: rows whose views point into the block's own memory. */
typedef struct st_block {
    size_t n;
    cdr_row *rows;          /* extra_names left NULL: the segment sets them */
    uint32_t *file_local;
    int64_t *off_res;
    unsigned char *first;
    /* owned memory */
    cdr_str *extras;
    char *arena;
    size_t arena_cap, rows_cap, extras_cap;
    unsigned char *scratch;
    size_t scratch_cap;
    void *inf;              /* ISA-L inflate state */
} st_block;

/* Decode the block at p[0..n). 0, or -1 when it is damaged (err says how)
 * or memory ran out (-2). The block's memory is reused by the next call. */
int st_block_decode(const unsigned char *p, size_t n, st_block *b, char *err, size_t errlen);
/* The same for the rows [from, to) only (a group's, when a month is read
 * for one subscriber): the rows before are stepped over without building
 * their strings, the decoding stops after `to`; b->n is the block's count,
 * but only rows[from..to) and their file_local, off_res hold records.
 * A block damaged past `to` is not noticed here. */
int st_block_decode_rows(const unsigned char *p, size_t n, st_block *b, size_t from, size_t to,
                         char *err, size_t errlen);
void st_block_free(st_block *b);

/* Only the record_id column of a block (for the duplicate check of a
 * continuing month), of rows[from..to) as st_block_decode_rows: each
 * rows[i].record_id views into b's memory; b->n set. */
int st_block_decode_ids(const unsigned char *p, size_t n, st_block *b, size_t from, size_t to,
                        char *err, size_t errlen);

#endif
