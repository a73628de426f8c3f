/*
 * Fuzz target: the streaming CDR reader, through the plain and the gzip
 * paths. The first input byte chooses the options (plain or gzip-compressed
 * here first, .gz name, threads, libcsv-only, tiny buffers and limits); the
 * rest is the file. Invariants: read = accepted + rejected; every accepted
 * row has valid views and values in range (usage within the limits that
 * rating computes); every reject has a reason.
 */
#include <zlib.h>

#include "fuzz_util.h"

#include "cdrecon/reader.h"

typedef struct fz_ctx {
    uint64_t rows, rejects;
    const cdr_reader_opts *o;
} fz_ctx;

static int on_row(const cdr_row *r, void *user)
{
    fz_ctx *c = user;
    c->rows++;
    FZ_CHECK(r->record_id.n > 0 && r->msisdn.n > 0 && r->msisdn.n <= CDR_NUMBER_MAX);
    FZ_CHECK(r->service >= CDR_SVC_VOICE && r->service <= CDR_SVC_VAS);
    FZ_CHECK(r->billed >= 0 && r->billed <= CDR_MONEY_MAX);
    FZ_CHECK(r->line >= 2);
    /* the limits rating computes (common.h, docs/rating.md "Limits and sums") */
    if (r->service == CDR_SVC_VOICE)
        FZ_CHECK(r->duration_s >= 0 && r->duration_s <= CDR_DURATION_MAX);
    if (r->service == CDR_SVC_DATA)
        FZ_CHECK(r->bytes >= 0 && r->bytes <= CDR_BYTES_MAX);
    if (r->service == CDR_SVC_SMS)
        FZ_CHECK(r->sms_chars >= 0 && r->sms_chars <= CDR_SMS_CHARS_MAX);
    /* touch every byte of every view (ASan/valgrind catch stale views) */
    volatile unsigned x = 0;
    const cdr_str *v[] = {&r->record_id, &r->msisdn, &r->peer, &r->call_id, &r->sms_ref, &r->raw};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (size_t k = 0; k < v[i]->n; k++)
            x += (unsigned char)v[i]->p[k];
    for (uint32_t i = 0; i < r->n_extra; i++) {
        for (size_t k = 0; k < r->extra[i].n; k++)
            x += (unsigned char)r->extra[i].p[k];
        for (size_t k = 0; k < r->extra_names[i].n; k++)
            x += (unsigned char)r->extra_names[i].p[k];
    }
    FZ_CHECK(r->raw.n <= c->o->max_row);
    return 0;
}

static int on_reject(const cdr_reject *r, void *user)
{
    fz_ctx *c = user;
    c->rejects++;
    FZ_CHECK(r->reason && r->reason[0]);
    FZ_CHECK(r->raw.n <= CDR_REJECT_RAW_MAX && r->raw.n <= r->raw_len);
    volatile unsigned x = 0;
    for (size_t k = 0; k < r->raw.n; k++)
        x += (unsigned char)r->raw.p[k];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    unsigned sel = data[0];
    data++;
    size--;

    cdr_reader_opts o;
    cdr_reader_opts_init(&o);
    o.want_sha256 = 1;
    o.threads = (sel & 4) ? 2 : 1;
    o.no_fast_path = (sel & 8) != 0;
    if (sel & 16) { /* tiny buffers: every boundary case of the splitter */
        o.buf_size = 1 + (sel >> 5);
        o.in_buf_size = 1 + (sel >> 6);
        o.max_field = 64;
        o.max_row = 256;
    }
    if (sel & 32)
        o.line_filter = "1";

    char path[256];
    const uint8_t *bytes = data;
    size_t n = size;
    uint8_t *z = NULL;
    fz_path(path, sizeof path, (sel & 2) ? "reader.csv.gz" : "reader.csv");
    if (sel & 1) { /* compress the input: the parser fed through inflate */
        uLongf zn = compressBound(size) + 32;
        z = malloc(zn);
        if (!z)
            return 0;
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            abort();
        zs.next_in = (Bytef *)data;
        zs.avail_in = (uInt)size;
        zs.next_out = z;
        zs.avail_out = (uInt)zn;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
            abort();
        n = zs.total_out;
        deflateEnd(&zs);
        bytes = z;
    }
    fz_write(path, bytes, n);

    fz_ctx c = {0, 0, &o};
    cdr_file_stats st;
    cdr_err e = cdr_read_file(path, 0, &o, on_row, on_reject, &c, &st);
    FZ_CHECK(e == st.status);
    FZ_CHECK(st.rows_read == st.rows_accepted + st.rows_rejected);
    FZ_CHECK(st.rows_accepted == c.rows && st.rows_rejected == c.rejects);
    if (e != CDR_OK)
        FZ_CHECK(st.message[0] != '\0');
    if (sel & 1)
        FZ_CHECK(e != CDR_OK || st.gzip == 1);
    unlink(path);
    free(z);
    return 0;
}
