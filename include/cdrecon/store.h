/*
 * cdrecon — the per-subscriber store: what `cdrecon run` rated, kept by
 * subscriber-month so that `cdrecon investigate` reads one number's month
 * in milliseconds whatever the size of the month (docs/investigate.md).
 *
 * One file:
 *   header   "CDRSTOR1", format version, the writer's meta text
 *   blocks   zlib-compressed chunks (~64 KiB uncompressed) of one logical
 *            byte stream; the stream is the sequence of serialised
 *            subscriber-month statements (header with the candidate,
 *            then the records; totals and pools are recomputed on reading
 *            by cdr_stmt_finish) in the engine's output order. A statement may span several blocks;
 *            a part (below) starts a new block, so a block may be short.
 *            Each block carries its lengths and the CRC-32 of its bytes.
 *   index    one 64-byte entry per subscriber-month, sorted by (msisdn,
 *            month): where its statement starts (block offset, offset in
 *            the block) and how long it is; each entry has its own CRC-32.
 *   footer   64 bytes: magic, version, index offset and count, totals,
 *            CRC-32 of the footer.
 * The writer writes to "PATH.tmp.PID" and renames it to PATH only when
 * complete (fsync of the file and the directory): a killed run never
 * leaves a half store under the final name.
 *
 * A look-up reads the footer, binary-searches the index with ~log2(n)
 * 64-byte reads, and inflates only that statement's blocks. Every length,
 * offset and CRC is checked: a damaged or truncated store gives CDR_E_PARSE
 * (or CDR_E_IO), never a wrong statement.
 */
#ifndef CDRECON_STORE_H
#define CDRECON_STORE_H

#include "statement.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_STORE_VERSION 3
#define CDR_STORE_VERSION_TEXT "3"

/* ---- writer ---------------------------------------------------------- */

typedef struct cdr_store_writer cdr_store_writer;

typedef struct cdr_store_opts {
    int level;              /* deflate level 1..9 (default 1: the nightly run pays for it;
                               level 1 uses ISA-L when the program is linked with it) */
    size_t block_size;      /* uncompressed bytes per block (default 65536) */
    const char *meta;       /* free text kept in the header (run id, tariff, options) */
    const char *tmpdir;     /* where the index spills past 65,536 subscriber-months
                               (NULL: $TMPDIR, else /tmp); must outlive the writer */
} cdr_store_opts;

void cdr_store_opts_init(cdr_store_opts *o);

/*
 * Create the store's temporary file PATH.tmp.PID beside PATH. `t` is the
 * tariff the records were rated with (kept for cdr_stmt_rec_from_rated and
 * cdr_stmt_finish; must outlive the writer). First the PATH.tmp.PID files
 * that killed runs left are removed (cdr_dir_remove_stale: only those whose
 * PID is no live process). CDR_E_IO if the file cannot be created,
 * CDR_E_EXISTS if PATH exists and is not a regular file (a device, a FIFO,
 * a symbolic link or a directory is never replaced, at create and at
 * commit); *out is then still set, for cdr_store_writer_message ("PATH:
 * what: OS reason"), and must be freed.
 */
cdr_err cdr_store_create(const char *path, const cdr_tariff *t, const cdr_store_opts *o,
                         cdr_store_writer **out);
/* The same for the file `name` in the directory open as `dirfd`
 * (cdr_dir_open; the writer keeps its own duplicate and makes every file
 * with openat/renameat relative to it); `dir_label` names the directory in
 * messages. cdr_store_create(path) is this with dirname(path) opened. */
cdr_err cdr_store_create_at(int dirfd, const char *dir_label, const char *name,
                            const cdr_tariff *t, const cdr_store_opts *o,
                            cdr_store_writer **out);
/* The tariff, for a writer created with t = NULL (created before the tariff
 * finished loading). Set it before the first record or candidate. */
void cdr_store_set_tariff(cdr_store_writer *w, const cdr_tariff *t);

/*
 * The engine's records are encoded on the rating workers, in parts: a part
 * holds whole subscriber-months, fed every record in the engine's output
 * order (`file` is the record's input file name) and each candidate after
 * its records; a subscriber-month is closed when a record of another one
 * arrives. Each part is encoded and compressed into blocks of its own (the
 * part's last block may be short). cdr_store_part_add_rated / _add_candidate
 * create the part on the first call (*p NULL); cdr_store_part_finish closes its last
 * subscriber-month and compresses its last block, after which the part
 * holds only compressed bytes and index entries (cdr_store_part_bytes).
 * These three only read the writer (and the tariff), so parts are encoded
 * in parallel; a failure is also kept for cdr_store_writer_message. Then,
 * on the writer's thread and in index order, cdr_store_append_part writes
 * the part's blocks and takes its index entries; free it afterwards.
 * Parts and cdr_store_put may be mixed: a part starts on a new block.
 * The store reads the same whether written by parts or not; only where
 * blocks are cut differs.
 */
typedef struct cdr_store_part cdr_store_part;
cdr_err cdr_store_part_add_rated(cdr_store_writer *w, cdr_store_part **p, const cdr_rated *r,
                                 const char *file);
cdr_err cdr_store_part_add_candidate(cdr_store_writer *w, cdr_store_part **p,
                                     const cdr_candidate *c);
/* A whole statement into a part (as cdr_store_put; tests, tools). */
cdr_err cdr_store_part_put(cdr_store_writer *w, cdr_store_part **p, const cdr_stmt *s);
cdr_err cdr_store_part_finish(cdr_store_writer *w, cdr_store_part *p);
size_t cdr_store_part_bytes(const cdr_store_part *p); /* memory held by a finished part */
cdr_err cdr_store_append_part(cdr_store_writer *w, cdr_store_part *p);
void cdr_store_part_free(cdr_store_part *p); /* NULL is accepted */

/* Or a whole finished statement at a time (tests, tools). Its records,
 * candidate, VIP flag and join date are kept; its totals and pools are not
 * (a reader gets those of cdr_stmt_finish). A subscriber-month written twice
 * makes the commit fail. */
cdr_err cdr_store_put(cdr_store_writer *w, const cdr_stmt *s);

/* Write the last blocks, the sorted index and the footer, fsync, rename
 * into place, fsync the directory. On failure the temporary file is
 * removed and PATH is left as it was. */
cdr_err cdr_store_commit(cdr_store_writer *w);
/* Give up: remove the temporary file. Safe after commit. */
void cdr_store_abort(cdr_store_writer *w);
/* Abort if not committed, then free. NULL is accepted. */
void cdr_store_writer_free(cdr_store_writer *w);
/* The first error in words ("" if none); later calls return that error. */
const char *cdr_store_writer_message(const cdr_store_writer *w);

typedef struct cdr_store_info {
    uint64_t statements;    /* subscriber-months */
    uint64_t records;
    uint64_t blocks;
    uint64_t raw_bytes;     /* serialised statement bytes before compression */
    uint64_t file_bytes;    /* the store file's size */
    int64_t created;        /* Unix seconds (UTC) at commit */
} cdr_store_info;

/* Counts so far (complete after commit). */
void cdr_store_writer_info(const cdr_store_writer *w, cdr_store_info *info);

/* ---- reader ---------------------------------------------------------- */

typedef struct cdr_store cdr_store;

/* Open and check the footer. CDR_E_IO (cannot open/read), CDR_E_PARSE (not
 * a store, truncated, damaged, newer version). err holds the reason. */
cdr_err cdr_store_open(const char *path, cdr_store **out, char *err, size_t errlen);
void cdr_store_close(cdr_store *s); /* NULL is accepted */

void cdr_store_info_get(const cdr_store *s, cdr_store_info *info);
/* The writer's meta text ("" if none). */
const char *cdr_store_meta(const cdr_store *s);

/*
 * The statement of one number's month (msisdn normalised). CDR_E_NOTFOUND
 * when the store has no record of it (out is then a valid empty statement);
 * CDR_E_PARSE / CDR_E_IO when the store is damaged (err says where).
 * out is the caller's; free its contents with cdr_stmt_free.
 */
cdr_err cdr_store_get(cdr_store *s, const char *msisdn, cdr_month month, cdr_stmt *out,
                      char *err, size_t errlen);

/* Read and check every block and index entry (CRC-32, order, lengths,
 * that every statement decodes). For `investigate --verify` and tests. */
cdr_err cdr_store_verify(cdr_store *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
