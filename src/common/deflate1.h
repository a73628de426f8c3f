/* cdrecon — one-shot deflate with ISA-L (raw or gzip), shared by the month
 * state's columns and checkpoints and the cluster's pieces. Internal. */
#ifndef CDRECON_DEFLATE1_H
#define CDRECON_DEFLATE1_H

#include <isa-l/igzip_lib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Deflate in[0..n) into out[0..cap) at ISA-L `level` with its level buffer
 * (NULL, 0 at level 0), as gzip when `gzip`, else raw. *outn: the bytes
 * written. 0, or -1 when the output did not fit or ISA-L failed. */
static inline int cdr_deflate1(const void *in, size_t n, void *out, size_t cap, int level,
                               void *lvl_buf, uint32_t lvl_size, int gzip, size_t *outn)
{
    struct isal_zstream is;
    memset(&is, 0, sizeof is); /* its init leaves fields it reads unset (valgrind) */
    isal_deflate_stateless_init(&is);
    is.level = (uint32_t)level;
    is.level_buf = level == 0 ? NULL : lvl_buf;
    is.level_buf_size = level == 0 ? 0 : lvl_size;
    is.gzip_flag = gzip ? IGZIP_GZIP : IGZIP_DEFLATE;
    is.end_of_stream = 1;
    is.flush = NO_FLUSH;
    is.next_in = (uint8_t *)in;
    is.avail_in = (uint32_t)n;
    is.next_out = out;
    is.avail_out = (uint32_t)cap;
    if (isal_deflate_stateless(&is) != COMP_OK || is.avail_in != 0)
        return -1;
    *outn = is.total_out;
    return 0;
}

#endif
