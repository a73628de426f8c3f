/* cdrecon — state/'s own: the bytes and the I/O its files share (header and
 * footer layout, little-endian fields, CRCs, a file written under NAME.tmp and
 * renamed when complete, the file table of a segment). Not used outside
 * src/state/. */
#ifndef CDRECON_STFILE_H
#define CDRECON_STFILE_H

#include <stdint.h>

#include "bytes.h"
#include "crc.h"
#include "state.h"

#define SEG_MAGIC "CDRSEG01"
#define SEG_FOOT "CDRSEGF1"
#define CKP_MAGIC "CDRCKP01"
#define CKP_FOOT "CDRCKPF1"
/* Formats. Segments 2: numbered with checkpoints 2 (whose chunks got their
 * last keys and 18-bit record_id fingerprints); a segment holds no
 * fingerprints, so their width is the checkpoints' alone. Segments 3: the
 * group index's chunks deflated, msisdns of digits kept as numbers in number
 * order (a reader sorts them back into key order); the rest of the file as
 * in 2. A segment of format 2 is still read; segments are never rewritten,
 * so a month's state may hold both until `cdrecon compact` merges them into
 * one of format 3.
 * Checkpoints 3: entries may carry a rewind point. Checkpoints 4: an entry's
 * flags byte also says the width of its record_id fingerprints, 20 bits
 * (ST_RFP_BITS) or 18 (ST_RFP_BITS_V3: the entries of format 2 and 3 files,
 * and their continuations). A checkpoint file of format 2 or 3 is still read
 * (18-bit entries, format 2's without rewind points) and replaced by the
 * next run with one of format 4, into which its untouched entries are copied
 * as bytes. Checkpoints 5: each chunk holds its entries deflated and then,
 * not deflated, their record_id fingerprints packed at 20 bits (ckpt.c);
 * the entries of older files are read and written again in format 5 by the
 * next run that writes the month's checkpoint. */
#define SEG_VERSION 3
#define SEG_VERSION_MIN 2
#define CKP_VERSION 5
#define CKP_VERSION_MIN 2
#define HDR_SIZE 16
#define SEG_FOOT_SIZE 80
#define CKP_FOOT_SIZE 56
#define FILE_CAP ((uint64_t)1 << 40) /* the largest state file we accept */

static inline uint32_t st_crc(const void *p, size_t n)
{
    return cdr_crc32(0, p, n);
}

/* A segment's file table entry, serialised / read back (0, -1 damaged,
 * -2 nomem). */
void st_file_put(st_buf *b, const st_file *f);
int st_file_get(st_rd *r, st_file *f);

/* ---- writing a file: under NAME.tmp, renamed into place at commit ---- */

typedef struct st_wfile {
    char *path, *tmp;
    int fd;
    uint64_t pos;
    uint64_t wback; /* writeback started up to here (src/common/wback.h) */
    int committed;
    cdr_err status;
    char msg[512];
} st_wfile;

cdr_err stf_open(st_wfile *f, const char *path);
/* After a failure: does nothing. Every 8 MiB written, starts the kernel's
 * writeback of them, so that stf_commit's fsync waits for less. */
cdr_err stf_write(st_wfile *f, const void *p, size_t n);
cdr_err stf_commit(st_wfile *f); /* fsync, rename into place, fsync the directory */
void stf_free(st_wfile *f);      /* an uncommitted file's NAME.tmp removed */
/* A segment or checkpoint file begun: created under its temporary name,
 * its header (magic, version, month) written; what failed said in err. */
cdr_err stf_start(st_wfile *f, const char *path, const char *magic, uint32_t version,
                  cdr_month m, char *err, size_t errlen);
/* The footer foot[0..n) written, its last 4 bytes the CRC of the others,
 * and the file committed; what failed said in err. */
cdr_err stf_finish(st_wfile *f, unsigned char *foot, size_t n, char *err, size_t errlen);

/* ---- reading a file ---- */

cdr_err stf_pread(int fd, void *buf, size_t n, uint64_t off); /* all n bytes, or an error */
int stf_open_ro(const char *path, uint64_t *size); /* a regular file, not a link; -1 errno */
/* A state file opened and its ends checked: the header's magic and
 * version, the footer's (n bytes, read into foot) magic, CRC (its last 4
 * bytes) and version (at ver_at, the same as the header's, vmin..vmax).
 * Returns the descriptor, *size and *version, or -1 with CDR_E_IO (cannot
 * open) or CDR_E_PARSE in *e and the reason in err (what: "segment",
 * "checkpoint"). */
int stf_open_checked(const char *path, const char *magic, const char *foot_magic,
                     unsigned char *foot, size_t n, size_t ver_at, uint32_t vmin, uint32_t vmax,
                     const char *what, uint64_t *size, uint32_t *version, cdr_err *e, char *err,
                     size_t errlen);

#endif
