/*
 * Fuzz target: input profiles — the profile file's parser, then the reader
 * through whatever profile it accepted. Input: a selector byte, the profile
 * text, a line "%%", the CDR file. Invariants: a refused profile says why,
 * with the profile's name; an accepted one describes every field and reads
 * any file with read = accepted + rejected + skipped, every view readable,
 * every reject and skip with a reason.
 */
#include "fuzz_util.h"

#include "cdrecon/reader.h"

typedef struct fp_ctx {
    uint64_t rows, rejects, skips;
} fp_ctx;

static void touch(const cdr_str *v)
{
    volatile unsigned x = 0;
    for (size_t k = 0; k < v->n; k++)
        x += (unsigned char)v->p[k];
}

static int on_row(const cdr_row *r, void *user)
{
    fp_ctx *c = user;
    c->rows++;
    FZ_CHECK(r->record_id.n > 0 && r->msisdn.n > 0 && r->msisdn.n <= CDR_NUMBER_MAX);
    FZ_CHECK(r->service >= CDR_SVC_VOICE && r->service <= CDR_SVC_VAS);
    FZ_CHECK(r->billed >= 0 && r->billed <= CDR_MONEY_MAX);
    if (r->service == CDR_SVC_VOICE)
        FZ_CHECK(r->duration_s >= 0);
    if (r->service == CDR_SVC_DATA)
        FZ_CHECK(r->bytes >= 0);
    if (r->service == CDR_SVC_SMS)
        FZ_CHECK(r->sms_chars >= 0);
    char t[20];
    cdr_time_format(r->start, t);
    const cdr_str *v[] = {&r->record_id, &r->msisdn, &r->peer, &r->call_id, &r->sms_ref, &r->raw};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        touch(v[i]);
    for (uint32_t i = 0; i < r->n_extra; i++) {
        touch(&r->extra[i]);
        touch(&r->extra_names[i]);
    }
    return 0;
}

static int on_reject(const cdr_reject *r, void *user)
{
    ((fp_ctx *)user)->rejects++;
    FZ_CHECK(r->reason && r->reason[0]);
    FZ_CHECK(r->raw.n <= CDR_REJECT_RAW_MAX && r->raw.n <= r->raw_len);
    touch(&r->raw);
    return 0;
}

static int on_skip(const cdr_reject *r, void *user)
{
    ((fp_ctx *)user)->skips++;
    FZ_CHECK(r->reason && strncmp(r->reason, "skipped: ", 9) == 0);
    touch(&r->raw);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    unsigned sel = data[0];
    data++;
    size--;
    const uint8_t *sepp = NULL;
    for (size_t i = 0; i + 3 <= size; i++)
        if (data[i] == '%' && data[i + 1] == '%' && (i == 0 || data[i - 1] == '\n') &&
            (i + 2 == size || data[i + 2] == '\n')) {
            sepp = data + i;
            break;
        }
    size_t plen = sepp ? (size_t)(sepp - data) : size;
    cdr_profile *p = NULL;
    char err[600];
    err[0] = 'x';
    cdr_err e = cdr_profile_parse((const char *)data, plen, "fz.profile", &p, err, sizeof err);
    if (e != CDR_OK) {
        FZ_CHECK(p == NULL && (e == CDR_E_PROFILE || e == CDR_E_NOMEM));
        FZ_CHECK(strncmp(err, "fz.profile", 10) == 0);
        return 0;
    }
    FZ_CHECK(p != NULL);
    char d[600];
    for (int f = 0; f < CDR_PF__COUNT; f++)
        FZ_CHECK(cdr_profile_describe(p, (cdr_pfield)f, d, sizeof d) < sizeof d);
    cdr_profile_describe_layout(p, d, sizeof d);
    if (sepp) {
        size_t off = (size_t)(sepp - data) + 3;
        const uint8_t *body = off <= size ? data + off : data + size;
        size_t blen = off <= size ? size - off : 0;
        char path[256];
        fz_path(path, sizeof path, "profile.csv");
        fz_write(path, body, blen);
        cdr_reader_opts o;
        cdr_reader_opts_init(&o);
        o.profile = p;
        o.on_skip = on_skip;
        o.threads = (sel & 1) ? 2 : 1;
        o.no_fast_path = (sel & 2) != 0;
        if (sel & 4) { /* tiny buffers: every splitter boundary */
            o.buf_size = 1 + (sel >> 4);
            o.max_field = 64;
            o.max_row = 256;
        }
        if (sel & 8)
            o.line_filter = "1";
        fp_ctx c = {0, 0, 0};
        cdr_file_stats st;
        cdr_err re = cdr_read_file(path, 0, &o, on_row, on_reject, &c, &st);
        FZ_CHECK(re == st.status);
        FZ_CHECK(st.rows_read == st.rows_accepted + st.rows_rejected + st.rows_skipped);
        FZ_CHECK(st.rows_accepted == c.rows && st.rows_rejected == c.rejects &&
                 st.rows_skipped == c.skips);
        if (re != CDR_OK)
            FZ_CHECK(st.message[0] != '\0');
        unlink(path);
    }
    cdr_profile_free(p);
    return 0;
}
