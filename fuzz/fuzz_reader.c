/*
 * Fuzz target: the streaming CDR reader, through the plain and the gzip
 * paths. The first input byte chooses the options (plain or gzip-compressed
 * here first, .gz name, threads, libcsv-only, tiny buffers and limits); the
 * rest is the file. Invariants: read = accepted + rejected; every accepted
 * row has valid views and values in range (usage within the limits that
 * rating computes); every reject has a reason.
 *
 * Then the same file once more through an input profile (the profile path
 * of the reader), one of five chosen by the input's length: the contract's
 * layout written as a profile (which must give the same counts and status as
 * no profile), a headerless '|' file without quoting and with skipped record
 * types, 3GPP-style CSV, ';' with a date & time pair and a UTC offset
 * column, tab with epoch_ms. read = accepted + rejected + skipped there.
 */
#include <zlib.h>

#include "fuzz_util.h"

#include "cdrecon/reader.h"

typedef struct fz_ctx {
    uint64_t rows, rejects, skips;
    const cdr_reader_opts *o;
} fz_ctx;

/* The profiles of the second pass (the first: profiles/contract.profile). */
static const char *const fz_profiles[] = {
    "record_id = record_id\nmsisdn = msisdn\nservice = service\ndirection = direction?\n"
    "peer = peer?\nstart_time = start_time\nduration_s = duration_s?\nbytes = bytes?\n"
    "sms_chars = sms_chars?\nsms_ref = sms_ref?\nsms_part = sms_part?\nsms_parts = sms_parts?\n"
    "call_id = call_id?\npartial_seq = partial_seq?\nbilled = billed\n",
    "separator = |\nquote = none\nheader = no\ncolumns = 8\nrecord_type = $1\ntype 00 = skip\n"
    "type 99 = skip\ntype 10 = voice mo\ntype 11 = voice mt\ntype 20 = sms\ntype 30 = data\n"
    "type 40 = vas\nrecord_id = $2\nmsisdn = $3\npeer = $4\nstart_time = $5\n"
    "start_time.format = %Y%m%d%H%M%S\nduration_s = $6\nduration_s.unit = ms\nbytes = $6\n"
    "sms_chars = $6\nbilled = $7\nbilled.unit = fen\nnumber.trunk_prefix = 0\nskip_prefix = #\n",
    "record_type = recordType\ntype 0 = voice mo\ntype 1 = voice mt\ntype 6 = sms mo\n"
    "type 85 = data mo\ntype 84 = skip\nrecord_id = id\nmsisdn = servedMSISDN\n"
    "imsi = servedIMSI?\nnumber.imsi_prefix = 460\npeer = otherParty | apn?\n"
    "start_time = recordOpeningTime\nstart_time.format = %y%m%d%H%M%S%z\n"
    "local_utc_offset = +08:00\nduration_s = duration\nbytes = up + down\nsms_chars = len?\n"
    "billed = charge\n",
    "separator = ;\nrecord_id = ID\nmsisdn = A\npeer = B\nservice = SVC\ndirection = DIR?\n"
    "start_time = D & T\nstart_time.format = %Y%m%d %H:%M:%S.%f\nstart_time.utc_offset = TZ\n"
    "local_utc_offset = -03:30\nduration_s = S1 + S2\nbytes = S1\nsms_chars = S2\n"
    "billed = F\nbilled.unit = jiao\nsms_part = P?\nsms_parts = N?\n",
    "separator = tab\nheader = no\ncolumns = 6\nrecord_id = $1\nmsisdn = $2\nservice = $3\n"
    "peer = $4 | $1\nstart_time = $5\nstart_time.format = epoch_ms\nlocal_utc_offset = +08:00\n"
    "bytes = $6\nbytes.unit = KB\nduration_s = $6\nsms_chars = $6\nbilled = $6\n"
    "number.country_code = 852\n",
};

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

static int on_skip(const cdr_reject *r, void *user)
{
    fz_ctx *c = user;
    c->skips++;
    FZ_CHECK(r->reason && r->reason[0]);
    FZ_CHECK(r->raw.n <= CDR_REJECT_RAW_MAX && r->raw.n <= r->raw_len);
    volatile unsigned x = 0;
    for (size_t k = 0; k < r->raw.n; k++)
        x += (unsigned char)r->raw.p[k];
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

    fz_ctx c = {0, 0, 0, &o};
    cdr_file_stats st;
    cdr_err e = cdr_read_file(path, 0, &o, on_row, on_reject, &c, &st);
    FZ_CHECK(e == st.status);
    FZ_CHECK(st.rows_read == st.rows_accepted + st.rows_rejected);
    FZ_CHECK(st.rows_accepted == c.rows && st.rows_rejected == c.rejects);
    if (e != CDR_OK)
        FZ_CHECK(st.message[0] != '\0');
    if (sel & 1)
        FZ_CHECK(e != CDR_OK || st.gzip == 1);
    FZ_CHECK(st.rows_skipped == 0);

    /* the same bytes through an input profile */
    size_t pi = size % (sizeof fz_profiles / sizeof *fz_profiles);
    cdr_profile *prof = NULL;
    char err[512];
    if (cdr_profile_parse(fz_profiles[pi], strlen(fz_profiles[pi]), "fuzz", &prof, err,
                          sizeof err) != CDR_OK) {
        fprintf(stderr, "fuzz profile %zu refused: %s\n", pi, err);
        abort();
    }
    o.profile = prof;
    o.on_skip = on_skip;
    fz_ctx c2 = {0, 0, 0, &o};
    cdr_file_stats st2;
    cdr_err e2 = cdr_read_file(path, 0, &o, on_row, on_reject, &c2, &st2);
    FZ_CHECK(e2 == st2.status);
    FZ_CHECK(st2.rows_read == st2.rows_accepted + st2.rows_rejected + st2.rows_skipped);
    FZ_CHECK(st2.rows_accepted == c2.rows && st2.rows_rejected == c2.rejects &&
             st2.rows_skipped == c2.skips);
    if (e2 != CDR_OK)
        FZ_CHECK(st2.message[0] != '\0');
    if (pi == 0) { /* the contract's layout as a profile: the same reading */
        FZ_CHECK(e2 == e && st2.rows_read == st.rows_read &&
                 st2.rows_accepted == st.rows_accepted && st2.rows_rejected == st.rows_rejected &&
                 st2.rows_skipped == 0 && st2.bytes == st.bytes);
    }
    cdr_profile_free(prof);
    unlink(path);
    free(z);
    return 0;
}
