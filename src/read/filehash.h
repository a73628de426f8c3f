/* cdrecon — SHA-256 of a whole file (internal). */
#ifndef CDRECON_FILEHASH_H
#define CDRECON_FILEHASH_H
#include "cdrecon/common.h"
/* SHA-256 of the file's bytes; sets *size. CDR_E_IO (errno kept) on failure. */
cdr_err cdr_file_sha256(const char *path, uint8_t out[32], uint64_t *size);
#endif
