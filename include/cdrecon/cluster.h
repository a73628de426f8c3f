/*
 * cdrecon — a month over many machines: the sharded directory, the shard
 * function, and the routed pieces (issue 16; docs/cluster.md).
 *
 * A sharded directory DIR holds P shards, P fixed when it is made:
 *
 *   DIR/parts                 P, one decimal number and a newline
 *   DIR/routed/SHA.done       one input file routed (SHA = its bytes' SHA-256)
 *   DIR/routed/SHA.rejects    its rejected rows, as rows of rejects.csv
 *   DIR/routed/content-CSHA   the claim of its content (CSHA = content SHA-256)
 *   DIR/shard-K/incoming/SHA.piece   the records of file SHA for shard K
 *   DIR/shard-K/cdrecon.db    shard K's database (and cdrecon.db.state/)
 *   DIR/nights                the cluster report's ledger of nights
 *
 * A subscriber's shard is cdr_shard_of(msisdn): FNV-1a (64-bit) of the
 * normalised msisdn's digits, modulo P. Everything a rule needs lives inside
 * one subscriber, so a shard is rated alone, exactly as one machine would.
 *
 * A piece is a gzip stream (concatenated members) of records in the form
 * the engine takes them, each with the origin it had in the operator's file
 * (name, line, byte offset), so that findings and evidence still name it.
 * It ends with a trailer that counts its records: a truncated piece is
 * refused, never taken as whole.
 *
 * The library prints nothing; errors come back as cdr_err with a message.
 */
#ifndef CDRECON_CLUSTER_H
#define CDRECON_CLUSTER_H

#include "common.h"
#include "reader.h"
#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_CLUSTER_MAX_PARTS 4096u

/* The tag of this process in temporary names under DIR, "HOST.PID" (the
 * host name with characters other than letters, digits, '-' and '_' made
 * '_'). DIR is on storage many machines share: a pid alone is unique on one
 * host only, and only this host's pids can be judged alive, so a temporary
 * file is removed as stale only when it carries this host's name. */
void cdr_cluster_tmp_tag(char *buf, size_t len);

/* The shard (0 .. parts-1) of a normalised msisdn. */
uint32_t cdr_shard_of(const char *msisdn, size_t n, uint32_t parts);

/* Make DIR (and its parents) as a sharded directory of `parts` shards. An
 * existing sharded directory with the same P is fine (nothing changes);
 * with another P, or a non-empty directory that is not one: CDR_E_EXISTS. */
cdr_err cdr_cluster_init(const char *dir, uint32_t parts, char *err, size_t errlen);
/* The P of a sharded directory (DIR/parts). CDR_E_NOTFOUND if DIR is not one. */
cdr_err cdr_cluster_parts(const char *dir, uint32_t *parts, char *err, size_t errlen);

/* ---- routing one input file into pieces ---- */

typedef struct cdr_pieces cdr_pieces;

/*
 * Start routing one input file into DIR's shards. Records are buffered per
 * shard (about `mem` bytes in all; from 16 KiB to 1 MiB a shard) and
 * appended to DIR/shard-K/incoming/.piece.tmp.HOST.PID as gzip members
 * (cdr_cluster_tmp_tag; what a killed process of this host left there is
 * removed first, never another host's); nothing has its final name
 * before cdr_pieces_commit. One file at a time per process.
 */
cdr_err cdr_pieces_open(const char *dir, uint32_t parts, size_t mem, cdr_pieces **out,
                        char *err, size_t errlen);
cdr_err cdr_pieces_add(cdr_pieces *p, const cdr_row *r);
/* Flush, fsync and rename every shard's piece to DIR/shard-K/incoming/
 * SHA.piece (sha_hex: the input file's bytes' SHA-256). counts (may be
 * NULL) gets the records of each of the P shards. */
cdr_err cdr_pieces_commit(cdr_pieces *p, const char *sha_hex, uint64_t *counts);
/* Remove the temporary files (a failed or duplicate input). */
void cdr_pieces_abort(cdr_pieces *p);
void cdr_pieces_free(cdr_pieces *p); /* aborts if not committed; accepts NULL */
const char *cdr_pieces_message(const cdr_pieces *p);

/*
 * Read a piece: each record to on_row with row.file_index = file_index and
 * line and offset as in the operator's file. stats gets rows_read =
 * rows_accepted = records, bytes (decompressed), size (stored). A corrupt
 * or truncated piece: CDR_E_GZIP (or CDR_E_PARSE) in stats->status with a
 * message. Returns stats->status.
 */
cdr_err cdr_piece_read(const char *path, uint32_t file_index, cdr_row_fn on_row, void *user,
                       cdr_file_stats *stats);

/* ---- the route markers ---- */

typedef struct cdr_route_mark {
    char name[4096];           /* the file as it was given to split */
    char sha256[65];           /* of its bytes */
    char content_sha256[65];   /* of its decompressed content */
    char status[16];           /* "routed", or "same-content" (content of another file) */
    char same_as[65];          /* same-content: the sha256 of the file that has it */
    char profile[4096];        /* the input profile split read it with ("" if none) */
    char profile_sha256[65];   /* that profile's SHA-256 ("" if none) */
    cdr_file_stats st;         /* the reader's counts */
    uint64_t records;          /* records routed, all shards */
    uint32_t shards;           /* shards that got a piece */
} cdr_route_mark;

/* Write DIR/routed/SHA.done (temporary file, fsync, rename). */
cdr_err cdr_route_mark_write(const char *dir, const cdr_route_mark *m, char *err, size_t errlen);
/* Read DIR/routed/SHA.done: CDR_OK, CDR_E_NOTFOUND, or CDR_E_PARSE. */
cdr_err cdr_route_mark_read(const char *dir, const char *sha_hex, cdr_route_mark *m, char *err,
                            size_t errlen);
/*
 * Claim the content CSHA for the file SHA (O_EXCL create of
 * DIR/routed/content-CSHA holding SHA). *owner gets the SHA that holds the
 * claim: sha_hex itself if the claim is (now or already) ours.
 */
cdr_err cdr_route_claim_content(const char *dir, const char *content_hex, const char *sha_hex,
                                char owner[65], char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
