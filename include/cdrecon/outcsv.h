/*
 * cdrecon — CSV outputs: findings.csv, candidates.csv, rejects.csv
 * (CONTRACT.md "Outputs").
 *
 * A cdr_csvw writes one CSV file safely:
 *   - into a temporary file ".NAME.tmp.PID" created in the output directory
 *     with O_CREAT|O_EXCL|O_NOFOLLOW (mode 0644 before umask), after removing
 *     the ".NAME.tmp.PID" files of dead processes (killed runs);
 *   - cdr_csvw_commit() flushes, fsyncs, closes and rename()s it to NAME,
 *     then fsyncs the directory, so NAME is either the old file or the whole
 *     new one, never half of one;
 *   - cdr_csvw_abort() (or cdr_csvw_free() without commit) unlinks the
 *     temporary file;
 *   - NAME must be a plain file name: "", ".", "..", anything containing '/'
 *     or "..", or a NUL is refused with CDR_E_USAGE.
 * Every write is checked; the first error is remembered ("sticky") and every
 * later call returns it; commit then fails with it (CDR_E_IO for ENOSPC,
 * EFBIG, EIO, ...) and removes the temporary file.
 *
 * Cells follow RFC 4180: a cell containing a comma, a double quote, CR or LF
 * is quoted and its quotes doubled. Rows end with "\n".
 * Text cells are neutralised for spreadsheets: a text cell whose first byte
 * is '=', '+', '-', '@', TAB or CR gets a leading apostrophe ('), so that
 * "=SUM(A1)" is shown as text and not evaluated. Numeric cells (amounts,
 * line numbers, offsets) are written as they are, so -0.37 stays a number.
 * Amounts are written in yuan with at least 2 decimals and exactly
 * (cdr_money_format(v, 2, ...): 0.19, -0.37, 0.0003).
 */
#ifndef CDRECON_OUTCSV_H
#define CDRECON_OUTCSV_H

#include <stdio.h>

#include "findings.h"
#include "reader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdr_csvw cdr_csvw;

/* Flags for cdr_csvw_open. */
#define CDR_CSVW_NOCLOBBER 0x1u /* CDR_E_EXISTS if NAME exists (at open and at commit) */

/*
 * Open a writer for DIR/NAME (see above). DIR must exist. Returns CDR_OK,
 * CDR_E_USAGE (bad name), CDR_E_EXISTS (NOCLOBBER and NAME exists, or NAME
 * is not a regular file), CDR_E_IO (cannot create the temporary file),
 * CDR_E_NOMEM. cdr_csvw_openat with DIR opened here (following links), for
 * callers that need no message.
 */
cdr_err cdr_csvw_open(const char *dir, const char *name, unsigned flags, cdr_csvw **out);

/*
 * The same in the directory open as `dirfd` (cdr_dir_open: the directory is
 * resolved once, and every file of the writer is made with openat/renameat
 * relative to it; the writer keeps its own duplicate of dirfd).
 * `dir_label` names the directory in messages: they read "DIR/NAME: ...".
 * Before creating its temporary file, the writer removes the temporary
 * files ".NAME.tmp.PID" that killed runs left (cdr_dir_remove_stale: only
 * those whose PID is no live process). On failure *out is NULL and `err`
 * (errlen bytes, may be NULL) says what failed, with the OS reason
 * ("cannot create out/.findings.csv.tmp.123: Permission denied").
 */
cdr_err cdr_csvw_openat(int dirfd, const char *dir_label, const char *name, unsigned flags,
                        cdr_csvw **out, char *err, size_t errlen);

/*
 * A writer over a stream the caller owns (stdout, or a test's /dev/full).
 * commit flushes and checks the stream but neither closes nor renames it;
 * abort does nothing to the stream. `label` is used in messages only.
 */
cdr_err cdr_csvw_open_stream(FILE *fp, const char *label, cdr_csvw **out);

/* A writer into memory (no file): the same bytes, read back with
 * cdr_csvw_memory(); cdr_csvw_memory_reset() empties it for reuse (text and
 * row count). */
cdr_err cdr_csvw_open_memory(cdr_csvw **out);
const char *cdr_csvw_memory(const cdr_csvw *w, size_t *len);
void cdr_csvw_memory_reset(cdr_csvw *w);

/* Cells. Each returns the writer's sticky status (CDR_OK while all is well). */
cdr_err cdr_csvw_text(cdr_csvw *w, const char *s, size_t n); /* neutralised */
cdr_err cdr_csvw_textz(cdr_csvw *w, const char *s);          /* NULL = empty */
cdr_err cdr_csvw_num(cdr_csvw *w, const char *s, size_t n);  /* as is (quoted if needed) */
cdr_err cdr_csvw_money(cdr_csvw *w, cdr_money v);            /* yuan, >= 2 decimals */
cdr_err cdr_csvw_u64(cdr_csvw *w, uint64_t v);
cdr_err cdr_csvw_i64(cdr_csvw *w, int64_t v);
cdr_err cdr_csvw_end_row(cdr_csvw *w);
/* Whole rows already formatted by another writer (ending in a newline). */
cdr_err cdr_csvw_raw(cdr_csvw *w, const char *p, size_t n);
/* The same when the caller knows how many rows p holds (a memory writer's
 * cdr_csvw_rows): no scan for the line ends. */
cdr_err cdr_csvw_raw_rows(cdr_csvw *w, const char *p, size_t n, uint64_t rows);

/*
 * One whole row written in place, for row writers that format their cells
 * themselves (cdr_stmt_rated_write): cdr_csvw_row_begin returns room for
 * `max` bytes (NULL on error: out of memory, an open row, a failed writer;
 * the status says which); write the row there, cells, separators and the
 * ending "\n", with the rules of cdr_csvw_text/num (src/common/csvout.h:
 * cdr_csv_put_cell), then pass its end to cdr_csvw_row_end. No other call
 * on the writer in between. The row counts as one.
 */
char *cdr_csvw_row_begin(cdr_csvw *w, size_t max);
cdr_err cdr_csvw_row_end(cdr_csvw *w, const char *end);

/* The sticky status, and the error in words ("" when none). */
cdr_err cdr_csvw_status(const cdr_csvw *w);
const char *cdr_csvw_message(const cdr_csvw *w);
/* Data rows written so far (rows ended after the header row count too). */
uint64_t cdr_csvw_rows(const cdr_csvw *w);

/*
 * Finish: flush, fsync, close, rename the temporary file to its name and
 * fsync the directory. On any failure the temporary file is removed, the
 * final name is left untouched, and the error is returned. The writer must
 * still be freed.
 */
cdr_err cdr_csvw_commit(cdr_csvw *w);
/* Give up: close and unlink the temporary file. Safe after commit (no-op). */
void cdr_csvw_abort(cdr_csvw *w);
/* Abort if not committed, then free. NULL is accepted. */
void cdr_csvw_free(cdr_csvw *w);

/*
 * The three contract files. Leading columns are fixed by CONTRACT.md; the
 * trailing ones are ours:
 *   findings.csv   msisdn,month,record_id,file,line,category,flags,billed,
 *                  rebuilt,difference,service,start_time,peer,offset,explanation
 *   candidates.csv msisdn,month,records,overcharge,refund,categories,tier,
 *                  policy,special,flags,policy_reason
 *   rejects.csv    file,line,offset,reason,raw
 * Rows are written in the order the caller gives them.
 */
cdr_err cdr_findings_csv_header(cdr_csvw *w);
cdr_err cdr_findings_csv_row(cdr_csvw *w, const cdr_finding *f);
cdr_err cdr_candidates_csv_header(cdr_csvw *w);
cdr_err cdr_candidates_csv_row(cdr_csvw *w, const cdr_candidate *c);
cdr_err cdr_rejects_csv_header(cdr_csvw *w);
cdr_err cdr_rejects_csv_row(cdr_csvw *w, const cdr_reject *r);

#ifdef __cplusplus
}
#endif
#endif
