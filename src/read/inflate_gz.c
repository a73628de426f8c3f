/*
 * cdrecon — gzip member decoder with two engines, ISA-L and zlib
 * (src/read/inflate_gz.h).
 *
 * ISA-L: the gzip header is parsed here and only the deflate data and the
 * trailer go to isal_inflate (crc_flag ISAL_GZIP_NO_HDR_VER: it checks the
 * CRC32 and ISIZE that follow the deflate data). Reason: ISA-L 2.30 (Debian
 * 12) computes the header CRC (FHCRC) over the last input buffer only, so a
 * valid header split across two reads is refused with
 * ISAL_INCORRECT_CHECKSUM. Parsing it here also gives the same words as
 * zlib for header faults.
 */
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "inflate_gz.h"

/* Neither library takes more than 32 bits of length per call. */
#define STEP_MAX ((size_t)1 << 30)

cdr_inflate cdr_inflate_from_name(const char *name)
{
    return name && strcmp(name, "zlib") == 0 ? CDR_INFLATE_ZLIB : CDR_INFLATE_ISAL;
}

const char *cdr_inflate_name(cdr_inflate e)
{
    return e == CDR_INFLATE_ZLIB ? "zlib" : "isa-l";
}

/* The gzip header, byte by byte (RFC 1952 2.3). */
enum { H_FIXED, H_XLEN, H_EXTRA, H_NAME, H_COMMENT, H_HCRC, H_BODY };
enum { FL_HCRC = 2, FL_EXTRA = 4, FL_NAME = 8, FL_COMMENT = 16 };

typedef struct isal_eng {
    struct inflate_state st;
    int h;          /* H_* */
    uint32_t count; /* bytes of the current header part seen */
    uint32_t xlen;
    uint32_t hcrc;  /* CRC32 of the header bytes so far */
    unsigned flags;
    unsigned char stored[2];
} isal_eng;

static void isal_start(isal_eng *x)
{
    isal_inflate_reset(&x->st);
    x->st.crc_flag = ISAL_GZIP_NO_HDR_VER;
    x->h = H_FIXED;
    x->count = 0;
    x->xlen = 0;
    x->hcrc = (uint32_t)crc32(0L, Z_NULL, 0);
    x->flags = 0;
}

/* The next header part after the one that just ended. */
static int next_part(const isal_eng *x, int after)
{
    if (after < H_XLEN && (x->flags & FL_EXTRA))
        return H_XLEN;
    if (after < H_NAME && (x->flags & FL_NAME))
        return H_NAME;
    if (after < H_COMMENT && (x->flags & FL_COMMENT))
        return H_COMMENT;
    if (after < H_HCRC && (x->flags & FL_HCRC))
        return H_HCRC;
    return H_BODY;
}

/* Consume header bytes from g->next_in; CDR_GZ_OK (done or needs more) or
 * CDR_GZ_DATA. */
static int isal_header(cdr_gz *g, isal_eng *x)
{
    const unsigned char *p = g->next_in;
    size_t n = g->avail_in, i = 0;
    int rc = CDR_GZ_OK;
    while (i < n && x->h != H_BODY) {
        unsigned char c = p[i];
        switch (x->h) {
        case H_FIXED:
            if ((x->count == 0 && c != 0x1f) || (x->count == 1 && c != 0x8b)) {
                g->msg = "incorrect header check";
                rc = CDR_GZ_DATA;
                goto out;
            }
            if (x->count == 2 && c != 8) {
                g->msg = "unknown compression method";
                rc = CDR_GZ_DATA;
                goto out;
            }
            if (x->count == 3) {
                if (c & 0xE0) {
                    g->msg = "unknown header flags set";
                    rc = CDR_GZ_DATA;
                    goto out;
                }
                x->flags = c;
            }
            if (++x->count == 10) {
                x->h = next_part(x, H_FIXED);
                x->count = 0;
            }
            break;
        case H_XLEN:
            x->xlen |= (uint32_t)c << (8 * x->count);
            if (++x->count == 2) {
                x->h = x->xlen ? H_EXTRA : next_part(x, H_EXTRA);
                x->count = 0;
            }
            break;
        case H_EXTRA: {
            size_t k = x->xlen - x->count;
            if (k > n - i)
                k = n - i;
            x->hcrc = (uint32_t)crc32(x->hcrc, p + i, (uInt)k);
            x->count += (uint32_t)k;
            i += k;
            if (x->count == x->xlen) {
                x->h = next_part(x, H_EXTRA);
                x->count = 0;
            }
            continue; /* crc already updated */
        }
        case H_NAME:
        case H_COMMENT: {
            const unsigned char *z = memchr(p + i, 0, n - i);
            size_t k = z ? (size_t)(z - (p + i)) + 1 : n - i;
            x->hcrc = (uint32_t)crc32(x->hcrc, p + i, (uInt)k);
            i += k;
            if (z)
                x->h = next_part(x, x->h);
            continue;
        }
        case H_HCRC:
            x->stored[x->count++] = c;
            i++;
            if (x->count == 2) {
                uint32_t want = (uint32_t)x->stored[0] | (uint32_t)x->stored[1] << 8;
                if (want != (x->hcrc & 0xffffu)) {
                    g->msg = "header crc mismatch";
                    rc = CDR_GZ_DATA;
                    goto out;
                }
                x->h = H_BODY;
            }
            continue; /* the CRC bytes are not part of the CRC */
        }
        x->hcrc = (uint32_t)crc32(x->hcrc, p + i, 1);
        i++;
    }
out:
    g->next_in += i;
    g->avail_in -= i;
    return rc;
}

cdr_err cdr_gz_init(cdr_gz *g, cdr_inflate e)
{
    memset(g, 0, sizeof *g);
    g->engine = e;
    if (e == CDR_INFLATE_ZLIB) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z)
            return CDR_E_NOMEM;
        if (inflateInit2(z, 15 + 16) != Z_OK) {
            free(z);
            return CDR_E_NOMEM;
        }
        g->impl = z;
    } else {
        /* zeroed: on damaged data ISA-L 2.30 may copy from parts of its
         * internal output buffer never written (a distance too far back that
         * it does not refuse); the CRC32 then fails, but the bytes seen before
         * that must not be uninitialised memory */
        isal_eng *x = calloc(1, sizeof *x);
        if (!x)
            return CDR_E_NOMEM;
        isal_inflate_init(&x->st);
        isal_start(x);
        g->impl = x;
    }
    return CDR_OK;
}

void cdr_gz_end(cdr_gz *g)
{
    if (!g->impl)
        return;
    if (g->engine == CDR_INFLATE_ZLIB)
        inflateEnd(g->impl);
    free(g->impl);
    g->impl = NULL;
}

void cdr_gz_reset(cdr_gz *g)
{
    if (g->engine == CDR_INFLATE_ZLIB) {
        inflateReset(g->impl);
    } else {
        isal_start(g->impl);
    }
}

static int run_zlib(cdr_gz *g)
{
    z_stream *z = g->impl;
    uInt ai = (uInt)(g->avail_in < STEP_MAX ? g->avail_in : STEP_MAX);
    uInt ao = (uInt)(g->avail_out < STEP_MAX ? g->avail_out : STEP_MAX);
    z->next_in = (unsigned char *)g->next_in;
    z->avail_in = ai;
    z->next_out = g->next_out;
    z->avail_out = ao;
    int r = inflate(z, Z_NO_FLUSH);
    g->next_in += ai - z->avail_in;
    g->avail_in -= ai - z->avail_in;
    g->next_out += ao - z->avail_out;
    g->avail_out -= ao - z->avail_out;
    switch (r) {
    case Z_STREAM_END:
        return CDR_GZ_END;
    case Z_OK:
    case Z_BUF_ERROR: /* no progress possible: the caller sees it */
        return CDR_GZ_OK;
    case Z_MEM_ERROR:
        return CDR_GZ_NOMEM;
    default:
        g->msg = z->msg ? z->msg : "inflate error";
        /* a bad trailer: report where it starts, as for ISA-L */
        if (strcmp(g->msg, "incorrect data check") == 0)
            g->back = 4;
        else if (strcmp(g->msg, "incorrect length check") == 0)
            g->back = 8;
        return CDR_GZ_DATA;
    }
}

static const char *isal_msg(int r)
{
    switch (r) {
    case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid distance too far back";
    case ISAL_INCORRECT_CHECKSUM:
        return "incorrect data check or length check (CRC32 or ISIZE)";
    case ISAL_NEED_DICT:
        return "needs a preset dictionary";
    default:
        return "inflate error";
    }
}

static int run_isal(cdr_gz *g)
{
    isal_eng *x = g->impl;
    struct inflate_state *st = &x->st;
    if (x->h != H_BODY) {
        int r = isal_header(g, x);
        if (r != CDR_GZ_OK || x->h != H_BODY)
            return r;
    }
    uint32_t ai = (uint32_t)(g->avail_in < STEP_MAX ? g->avail_in : STEP_MAX);
    uint32_t ao = (uint32_t)(g->avail_out < STEP_MAX ? g->avail_out : STEP_MAX);
    st->next_in = (uint8_t *)g->next_in;
    st->avail_in = ai;
    st->next_out = g->next_out;
    st->avail_out = ao;
    int r = isal_inflate(st);
    /* On ISAL_BLOCK_FINISH, ISA-L gives back the bytes it had buffered past
     * the trailer: next_in is then exactly the end of the member. */
    g->next_in += ai - st->avail_in;
    g->avail_in -= ai - st->avail_in;
    g->next_out += ao - st->avail_out;
    g->avail_out -= ao - st->avail_out;
    if (r < 0) {
        g->msg = isal_msg(r);
        /* bytes loaded into the bit buffer but not decoded */
        g->back = st->read_in_length > 0 ? (size_t)st->read_in_length / 8 : 0;
        if (r == ISAL_INCORRECT_CHECKSUM)
            g->back += 8; /* the start of the trailer */
        return CDR_GZ_DATA;
    }
    if (r == ISAL_NEED_DICT) {
        g->msg = isal_msg(r);
        return CDR_GZ_DATA;
    }
    return st->block_state == ISAL_BLOCK_FINISH ? CDR_GZ_END : CDR_GZ_OK;
}

int cdr_gz_run(cdr_gz *g)
{
    g->msg = NULL;
    g->back = 0;
    return g->engine == CDR_INFLATE_ZLIB ? run_zlib(g) : run_isal(g);
}
