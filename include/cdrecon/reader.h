/*
 * cdrecon — streaming CDR reader: plain CSV, gzip (multi-member) or stdin,
 * libcsv in strict mode, header-driven columns, rejects with file/line/offset.
 *
 * Usage: fill a cdr_reader_opts (cdr_reader_opts_init), then call
 * cdr_read_file() once per input file. Each accepted row is passed to
 * on_row, each rejected row to on_reject; both get views valid only during
 * the call. The library never prints.
 */
#ifndef CDRECON_READER_H
#define CDRECON_READER_H

#include "profile.h"
#include "filehash.h" /* cdr_sha256_hex of cdr_file_stats.sha256 */
#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rejected rows keep at most this many bytes of their raw text. */
#define CDR_REJECT_RAW_MAX 4096

typedef struct cdr_reject {
    uint32_t file_index;
    const char *file;    /* the name as given ("-" for stdin) */
    uint64_t line;       /* 1-based physical line where the row starts */
    uint64_t offset;     /* byte offset of the row start, decompressed stream */
    const char *reason;  /* human-readable, e.g. "bad start_time '2024-13-01 00:00:00'" */
    cdr_str raw;         /* first CDR_REJECT_RAW_MAX bytes of the row */
    uint64_t raw_len;    /* full length of the row in bytes */
} cdr_reject;

/* Progress snapshot, for a caller that wants to draw a progress line. */
typedef struct cdr_progress {
    uint32_t file_index;
    const char *file;
    uint64_t in_bytes;    /* compressed (on-disk) bytes consumed so far */
    uint64_t in_total;    /* file size if known, else 0 (stdin, pipes) */
    uint64_t out_bytes;   /* decompressed bytes parsed so far */
    uint64_t rows;        /* rows read so far */
} cdr_progress;

typedef int (*cdr_row_fn)(const cdr_row *row, void *user);       /* non-zero: stop */
typedef int (*cdr_reject_fn)(const cdr_reject *rej, void *user); /* non-zero: stop */
typedef void (*cdr_progress_fn)(const cdr_progress *p, void *user);

/* Two implementations of inflate read gzip input, with the same rows,
 * rejects and errors (docs/cdr-format.md "Decompression engines"): ISA-L's
 * igzip (the default, 2-4x faster) and zlib's, kept as a fallback. */
typedef enum cdr_inflate { CDR_INFLATE_ISAL = 0, CDR_INFLATE_ZLIB = 1 } cdr_inflate;

/* The implementation a name selects: "zlib" selects zlib; NULL, "", "isal"
 * or anything else ISA-L (the CLI passes $CDRECON_INFLATE). */
cdr_inflate cdr_inflate_from_name(const char *name);
const char *cdr_inflate_name(cdr_inflate e); /* "isa-l" or "zlib" */

/* The implementation cdr_reader_opts_init puts into every cdr_reader_opts
 * from now on, including those the library makes itself (cdr_stmt_scan):
 * ISA-L until set. Call it before reading starts (it is not synchronised
 * with readers on other threads). The library reads no environment
 * variable: the CLI calls this with cdr_inflate_from_name($CDRECON_INFLATE). */
void cdr_reader_set_inflate(cdr_inflate e);

typedef struct cdr_reader_opts {
    size_t buf_size;      /* decompressed chunk size, default 4 MiB */
    size_t max_field;     /* longest accepted field, default 64 KiB; longer => reject */
    size_t max_row;       /* longest accepted row, default 1 MiB; longer => reject */
    int threads;          /* 2 (default): decompress/read on a second thread; 1: none */
    int want_sha256;      /* compute SHA-256 of the file's bytes as read */
    int want_content_sha256; /* and of its decompressed content (gzip; the same as the
                                bytes' for a plain file, given when want_sha256 is set) */
    cdr_progress_fn progress; /* called about every 16 MiB; may be NULL */
    void *progress_user;
    /* Optional pre-filter (investigate's scan path): when set, physical lines
     * that do not contain this byte string are counted but not parsed. */
    const char *line_filter;
    /* Input profile (profile.h, docs/profiles.md): the operator's layout
     * mapped onto the contract's fields. NULL: the contract's own layout. */
    const cdr_profile *profile;
    /* Lines the profile skips (skip_prefix, `type ... = skip`) are counted
     * in rows_skipped and, when this is set, passed here (same user as the
     * row callbacks; reason says why). Non-zero: stop. */
    cdr_reject_fn on_skip;
    cdr_inflate inflate;  /* gzip input: see cdr_reader_set_inflate */
    /* Testing and tuning (0 = default). */
    int no_fast_path;     /* 1: parse every line with libcsv (differential tests; a
                             profile with quote = none has nothing for libcsv to do) */
    size_t in_buf_size;   /* bytes per read() of the stored file, default 256 KiB */
} cdr_reader_opts;

void cdr_reader_opts_init(cdr_reader_opts *o);

typedef struct cdr_file_stats {
    uint64_t size;          /* bytes of the file as stored (compressed if gzip) */
    uint64_t bytes;         /* decompressed bytes */
    int gzip;               /* 1 if read as gzip */
    uint8_t sha256[32];     /* of the stored bytes, if want_sha256 */
    uint8_t content_sha256[32]; /* of the decompressed content, if has_content_sha256 */
    int has_content_sha256;
    uint64_t rows_read;     /* data rows (header not counted) */
    uint64_t rows_accepted;
    uint64_t rows_rejected;
    uint64_t rows_skipped;  /* skipped by the profile; 0 without one */
    uint64_t rows_filtered; /* lines skipped by line_filter (counted apart) */
    uint64_t blank_lines;   /* empty physical lines: not rows, counted apart */
    cdr_err status;         /* CDR_OK, or why the file as a whole failed */
    uint64_t error_offset;  /* where it failed: compressed offset for gzip errors */
    char message[512];      /* the whole-file error in words, "" if none */
} cdr_file_stats;

/*
 * Read one file ("-" = stdin). Returns stats->status. A file-level failure
 * (cannot open, no/invalid header, corrupt or truncated gzip, read error)
 * ends the file with that status: rows passed to on_row before the failure
 * must then be treated by the caller as belonging to a failed file.
 * read = accepted + rejected + skipped holds for every file, failed or not
 * (skipped is 0 without a profile).
 */
/*
 * If on_row or on_reject returns non-zero, reading stops and the file's
 * status is CDR_E_INTERRUPTED ("stopped by the caller").
 */
cdr_err cdr_read_file(const char *path, uint32_t file_index, const cdr_reader_opts *opts,
                      cdr_row_fn on_row, cdr_reject_fn on_reject, void *user,
                      cdr_file_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
