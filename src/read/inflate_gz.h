/*
 * cdrecon — streaming decoder of one gzip member at a time (internal).
 *
 * Two engines behind one interface: ISA-L's igzip (the default, 2-4x
 * faster than zlib; the header is parsed in inflate_gz.c and isal_inflate
 * gets the deflate data with crc_flag ISAL_GZIP_NO_HDR_VER) and zlib's
 * inflate (windowBits 15+16), kept as a fallback and selected by
 * cdr_reader_opts.inflate (the CLI: CDRECON_INFLATE=zlib). Both parse the gzip
 * header (FEXTRA, FNAME, FCOMMENT, FHCRC) and check the trailer (CRC32 and
 * ISIZE). The caller owns the buffers and moves from member to member (magic
 * bytes, trailing garbage, truncation are decided by the caller, the same
 * way for both engines: see src_fill in reader.c).
 */
#ifndef CDRECON_INFLATE_GZ_H
#define CDRECON_INFLATE_GZ_H
#include <stddef.h>
#include "cdrecon/reader.h" /* cdr_inflate */

/* Result of one cdr_gz_run call. */
enum {
    CDR_GZ_OK = 0,   /* input used up or output full: call again */
    CDR_GZ_END = 1,  /* the member ended (trailer checked); next_in is just past it */
    CDR_GZ_DATA = 2, /* invalid data (msg says what) */
    CDR_GZ_NOMEM = 3
};

typedef struct cdr_gz {
    cdr_inflate engine;
    const unsigned char *next_in;
    size_t avail_in;
    unsigned char *next_out;
    size_t avail_out;
    const char *msg; /* after CDR_GZ_DATA: the fault in words (static text) */
    size_t back;     /* after CDR_GZ_DATA: the fault is this many bytes before
                        next_in (read-ahead, or the start of a bad trailer) */
    void *impl;      /* struct inflate_state or z_stream */
} cdr_gz;

/* CDR_OK or CDR_E_NOMEM. cdr_gz_end may be called after a failed init. */
cdr_err cdr_gz_init(cdr_gz *g, cdr_inflate e);
void cdr_gz_end(cdr_gz *g);
/* Start the next member (keeps next_in/avail_in). */
void cdr_gz_reset(cdr_gz *g);
/* Decode from next_in into next_out, advancing both. */
int cdr_gz_run(cdr_gz *g);
#endif
