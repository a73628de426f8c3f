/*
 * cdrecon — a file's identity: the SHA-256 of its bytes, and SHA-256s as
 * text.
 *
 * `run` skips a file whose bytes it ingested before, `split` names a routed
 * file by it, the evidence manifest lists every input with it. The reader
 * computes the same hash while it reads (cdr_file_stats.sha256, reader.h);
 * cdr_file_sha256 is for a file that is not read (or not yet).
 */
#ifndef CDRECON_FILEHASH_H
#define CDRECON_FILEHASH_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SHA-256 of the file's bytes (read in 1 MiB blocks); sets *size to its
 * length. CDR_E_IO (errno kept) when it cannot be opened or read,
 * CDR_E_NOMEM. */
cdr_err cdr_file_sha256(const char *path, uint8_t out[32], uint64_t *size);

/* The 64 lower-case hex digits of a SHA-256 and a NUL into buf (>= 65 bytes). */
void cdr_sha256_hex(const uint8_t d[32], char *buf);

#ifdef __cplusplus
}
#endif
#endif
