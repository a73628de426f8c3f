/*
 * cdrecon — a small whole-file CSV table reader on top of libcsv, for the
 * tariff directory's tables (internal header).
 *
 * The file is read into memory whole (tariff tables are small; a
 * subscribers.csv of millions of rows is tens of MB) and parsed with libcsv
 * in strict mode (CSV_STRICT | CSV_STRICT_FINI), one physical line at a time
 * so that every row knows the line it starts on (lines with no quote or CR
 * are split directly, with the same result). A UTF-8 BOM is skipped.
 * ASCII spaces and tabs around each value are removed (also inside quotes).
 * Rows whose every field is empty are skipped. Every row must have as many
 * fields as the first row (the header).
 */
#ifndef CDRECON_CSVTABLE_H
#define CDRECON_CSVTABLE_H

#include "cdrecon/common.h"

/*
 * Called once per row, the header included. Fields are NUL-terminated and
 * valid only during the call. Return CDR_OK to go on; any other value stops
 * the read and is returned by csvt_read (the callback fills err itself).
 */
typedef cdr_err (*csvt_row_fn)(void *ud, const cdr_str *f, size_t nf, uint32_t line,
                               char *err, size_t errlen);

/* The largest table read: 1 GiB (a subscribers.csv of 10M rows is ~500 MB). */
#define CSVT_MAX_BYTES ((uint64_t)1 << 30)

/*
 * Read the table at `path`; `name` is used in messages ("NAME:LINE: reason").
 * *size receives the file's size in bytes. Only a regular file is read (it
 * is opened with O_NONBLOCK, so a FIFO does not block, then checked with
 * fstat), of at most CSVT_MAX_BYTES. Errors: CDR_E_IO (cannot open or
 * read; message "NAME: cannot read: ..."), CDR_E_TARIFF (not a regular
 * file, too big, broken quoting, wrong field count, NUL byte), CDR_E_NOMEM,
 * or what the callback returned.
 * If `data_out` is not NULL it receives the file's bytes (malloc'd, caller
 * frees) and *len_out their count, e.g. for hashing.
 */
cdr_err csvt_read(const char *path, const char *name, csvt_row_fn fn, void *ud,
                  uint64_t *size, void **data_out, size_t *len_out, char *err, size_t errlen);

/* Lines without quotes or CRs are split without libcsv (the same rows);
 * tests turn this off (0) to compare the two. Not thread-safe: set it
 * before any read. */
void csvt_set_fast_path(int on);

/* Case-insensitive comparison of a field with a NUL-terminated name. */
int csvt_eq(cdr_str f, const char *name);

#endif
