/* Unit tests: the month state's pieces on their own (src/state/). The block
 * codec gives back every field of random records, whole, by row range and
 * record_ids only, and refuses a damaged block; a checkpoint entry survives
 * its serialisation, and its sets of partial-call keys and record_id
 * fingerprints stay sorted and unique; a checkpoint file of format 3
 * (18-bit fingerprints) still finds every stored record_id, copied,
 * continued or rated whole into format 4; a segment file written by parts
 * reads back group by group, and a truncated one is refused; the group
 * index of many groups of every shape of msisdn reads back by key and by
 * cursor in format 3 and in format 2 (written through the test's switch,
 * st_segw_create_format), and a damaged chunk of it is refused. Built a
 * second time as test_state_weak (Makefile) over an msisdn hash of 8
 * values, so that the index's chunks hold runs of msisdns sharing a hash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/engine.h"
#include "state.h"

#include "testrnd.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

enum { NREC = 1500, SLEN = 24 };

/* Random records in groups (first[i]: a group starts), each group in time
 * order; strings of every kind the codec types (digits, prefix + digits,
 * words, raw bytes, empty). */
typedef struct sample {
    cdr_row rows[NREC];
    st_rec recs[NREC];
    char str[NREC][4][SLEN];
    char ext[NREC][2][SLEN];
    cdr_str extra[NREC][2];
} sample;

static void rand_str(char *b, cdr_str *out)
{
    size_t n = 0;
    switch (trnd_below(&rng, 5)) {
    case 0: /* digits, counting up mostly */
        n = (size_t)snprintf(b, SLEN, "%llu",
                             (unsigned long long)(10000000 + trnd_below(&rng, 1000)));
        break;
    case 1:
        n = (size_t)snprintf(b, SLEN, "CALL-%llu", (unsigned long long)trnd_below(&rng, 1000000));
        break;
    case 2: {
        static const char *w[] = {"roam", "local", "vpn", "CN"};
        n = (size_t)snprintf(b, SLEN, "%s", w[trnd_below(&rng, 4)]);
        break;
    }
    case 3:
        n = trnd_below(&rng, SLEN);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)(1 + trnd_below(&rng, 255));
        break;
    default:
        break; /* empty */
    }
    *out = (cdr_str){b, n};
}

static void make_sample(sample *s)
{
    int64_t t = 1790000000;
    for (size_t i = 0; i < NREC; i++) {
        cdr_row *r = &s->rows[i];
        memset(r, 0, sizeof *r);
        int first = i == 0 || trnd_below(&rng, 20) == 0;
        t = first ? 1790000000 + (int64_t)trnd_below(&rng, 1000)
                  : t + (int64_t)trnd_below(&rng, 4000);
        r->start = t;
        r->service = (cdr_service)trnd_below(&rng, 3);
        r->direction = (cdr_direction)trnd_below(&rng, 2);
        r->duration_s = r->bytes = r->sms_chars = -1;
        if (r->service == CDR_SVC_VOICE)
            r->duration_s = (int64_t)trnd_below(&rng, 7200);
        else if (r->service == CDR_SVC_SMS)
            r->sms_chars = (int64_t)trnd_below(&rng, 400);
        else
            r->bytes = (int64_t)trnd_below(&rng, 1u << 30);
        /* whole fen (the short code) and odd micro-yuan, negative too */
        r->billed = trnd_below(&rng, 2) ? (int64_t)trnd_below(&rng, 100000) * 10000
                                        : (int64_t)trnd_below(&rng, 1000000007) - 5000;
        if (r->service == CDR_SVC_SMS && trnd_below(&rng, 3) == 0) {
            r->sms_parts = (int32_t)(1 + trnd_below(&rng, 5));
            r->sms_part = (int32_t)(1 + trnd_below(&rng, (uint64_t)r->sms_parts));
        }
        if (trnd_below(&rng, 8) == 0)
            r->partial_seq = (int64_t)(1 + trnd_below(&rng, 4));
        r->line = 2 + i * 3;
        for (int k = 0; k < 4; k++) {
            cdr_str v;
            rand_str(s->str[i][k], &v);
            if (k == 0)
                r->record_id = v;
            else if (k == 1)
                r->peer = v;
            else if (k == 2)
                r->call_id = v;
            else
                r->sms_ref = v;
        }
        r->n_extra = (uint32_t)trnd_below(&rng, 3);
        for (uint32_t k = 0; k < r->n_extra; k++)
            rand_str(s->ext[i][k], &s->extra[i][k]);
        r->extra = r->n_extra ? s->extra[i] : NULL;
        s->recs[i] = (st_rec){r, (uint32_t)trnd_below(&rng, 3),
                              (int64_t)trnd_below(&rng, 200) - 100, first};
    }
}

static void same_str(cdr_str a, cdr_str b)
{
    assert_int_equal(a.n, b.n);
    if (a.n)
        assert_memory_equal(a.p, b.p, a.n);
}

static void same_row(const cdr_row *a, const cdr_row *b)
{
    assert_int_equal(a->start, b->start);
    assert_int_equal(a->service, b->service);
    assert_int_equal(a->direction, b->direction);
    assert_int_equal(a->duration_s, b->duration_s);
    assert_int_equal(a->bytes, b->bytes);
    assert_int_equal(a->sms_chars, b->sms_chars);
    assert_int_equal(a->billed, b->billed);
    assert_int_equal(a->sms_part, b->sms_part);
    assert_int_equal(a->sms_parts, b->sms_parts);
    assert_int_equal(a->partial_seq, b->partial_seq);
    assert_int_equal(a->line, b->line);
    same_str(a->record_id, b->record_id);
    same_str(a->peer, b->peer);
    same_str(a->call_id, b->call_id);
    same_str(a->sms_ref, b->sms_ref);
    assert_int_equal(a->n_extra, b->n_extra);
    for (uint32_t k = 0; k < a->n_extra; k++)
        same_str(a->extra[k], b->extra[k]);
}

static void block_round_trip(void **state)
{
    (void)state;
    static sample s;
    make_sample(&s);
    st_enc enc;
    assert_int_equal(st_enc_init(&enc, 1), 0);
    st_buf out = {0};
    assert_int_equal(st_block_encode(s.recs, NREC, &enc, &out), 0);
    /* the codec earns its keep: well below the rows' own bytes */
    assert_true(out.n < (size_t)NREC * 60);
    st_block b;
    memset(&b, 0, sizeof b);
    char err[256];
    assert_int_equal(st_block_decode(out.p, out.n, &b, err, sizeof err), 0);
    assert_int_equal(b.n, NREC);
    for (size_t i = 0; i < NREC; i++) {
        same_row(&s.rows[i], &b.rows[i]);
        assert_int_equal(b.file_local[i], s.recs[i].file_local);
        assert_int_equal(b.off_res[i], s.recs[i].off_res);
        assert_int_equal(b.first[i], s.recs[i].first);
    }
    /* a range: the same rows */
    assert_int_equal(st_block_decode_rows(out.p, out.n, &b, 700, 731, err, sizeof err), 0);
    for (size_t i = 700; i < 731; i++)
        same_row(&s.rows[i], &b.rows[i]);
    /* the record_ids alone */
    assert_int_equal(st_block_decode_ids(out.p, out.n, &b, 0, SIZE_MAX, err, sizeof err), 0);
    assert_int_equal(b.n, NREC);
    for (size_t i = 0; i < NREC; i++)
        same_str(s.rows[i].record_id, b.rows[i].record_id);
    /* ... of a range: the same ids */
    st_block_free(&b);
    assert_int_equal(st_block_decode_ids(out.p, out.n, &b, 700, 731, err, sizeof err), 0);
    assert_int_equal(b.n, NREC);
    for (size_t i = 700; i < 731; i++)
        same_str(s.rows[i].record_id, b.rows[i].record_id);
    /* any flipped byte is caught (the block's CRC) */
    for (int k = 0; k < 20; k++) {
        size_t at = trnd_below(&rng, out.n);
        unsigned char x = (unsigned char)(1 + trnd_below(&rng, 255));
        err[0] = '\0';
        out.p[at] ^= x;
        assert_int_not_equal(st_block_decode(out.p, out.n, &b, err, sizeof err), 0);
        assert_true(err[0] != '\0');
        out.p[at] ^= x;
    }
    /* records out of time order within a group cannot be encoded */
    s.rows[5].start = s.rows[4].start - 1;
    s.recs[5].first = 0;
    st_buf o2 = {0};
    assert_int_equal(st_block_encode(s.recs, NREC, &enc, &o2), -1);
    st_buf_free(&o2);
    st_buf_free(&out);
    st_block_free(&b);
    st_enc_free(&enc);
}

/* c laid out as formats 2-4 wrote an entry (the fingerprints as varint
 * gaps among its bytes, where format 5 keeps only their count), made from
 * format 5's own bytes: what older checkpoint files hold */
static void put_old(st_buf *b, const st_ckpt *c, int64_t base)
{
    st_ckpt z = *c;
    st_buf m = {0}, f = {0};
    z.n_rfp = 0;
    z.has_rw = 0;
    st_ckpt_put(&m, &f, &z, base);
    size_t pre = m.n - 2; /* before the count (0: one byte) and the flags byte */
    st_buf_put(b, m.p, pre);
    st_buf_varint(b, c->n_rfp);
    for (uint32_t i = 0; i < c->n_rfp; i++)
        st_buf_varint(b, i ? c->rfp[i] - c->rfp[i - 1] : c->rfp[0]);
    z.has_rw = c->has_rw;
    m.n = 0;
    st_ckpt_put(&m, &f, &z, base);
    st_buf_put(b, m.p + pre + 1, m.n - pre - 1);
    assert_int_equal(f.n, 0);
    st_buf_free(&m);
    st_buf_free(&f);
}

static void checkpoint_entry(void **state)
{
    (void)state;
    st_ckpt c, d;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    const char *m = "13800138000";
    c.h = cdr_msisdn_hash(m, strlen(m));
    c.msisdn_len = (uint8_t)strlen(m);
    memcpy(c.msisdn, m, c.msisdn_len + 1);
    int64_t base = 1790000000;
    c.n_records = 61;
    c.last_start = base + 86400 * 29;
    c.tariff_id = 3;
    c.prev_end = base + 86400 * 29 + 120;
    c.n_pools = 2;
    c.pools[0] = (st_pool){1, 0, 36000};
    c.pools[1] = (st_pool){1, 2, -5};
    c.has_cand = 1;
    c.over = 2850000;
    c.cand_records = 4;
    c.cats = 0x41;
    c.tier = 1;
    c.policy = 1;
    c.n_findings = 7;
    c.billed_hi = 12;
    c.rebuilt_hi = 11;
    /* keys added out of order and twice: kept sorted, once */
    uint32_t keys[] = {900, 5, 77, 5, 900, 1};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(st_ckpt_add_pkey(&c, keys[i]), 0);
    assert_int_equal(c.n_pkeys, 4);
    assert_true(c.pkeys[0] == 1 && c.pkeys[1] == 5 && c.pkeys[2] == 77 && c.pkeys[3] == 900);
    /* fingerprints of a new entry: 20 bits, kept whole */
    uint32_t f1[] = {300, 10, 10, 1048575}, f2[] = {11, 300, 0};
    assert_int_equal(st_ckpt_add_rfps(&c, f1, 4), 0);
    assert_int_equal(st_ckpt_add_rfps(&c, f2, 3), 0);
    assert_int_equal(c.n_rfp, 5); /* 0 10 11 300 1048575 */
    assert_true(st_ckpt_has_rfp(&c, 0) && st_ckpt_has_rfp(&c, 1048575) && st_ckpt_has_rfp(&c, 11));
    assert_false(st_ckpt_has_rfp(&c, 12));
    assert_false(st_ckpt_has_rfp(&c, 1048575 >> 2)); /* (compared at 20 bits) */
    assert_true(st_ckpt_has_pkey(&c, 77));
    assert_false(st_ckpt_has_pkey(&c, 78));

    st_buf b = {0}, bf = {0};
    st_ckpt_put(&b, &bf, &c, base);
    assert_int_equal(bf.n, 13); /* 5 fingerprints packed at 20 bits: 5 + 5 + 3 bytes */
    st_rd r = {b.p, b.p + b.n, 0}, rf = {bf.p, bf.p + bf.n, 0};
    assert_int_equal(st_ckpt_get(&r, &rf, &d, base, 5), 0);
    assert_ptr_equal(r.p, b.p + b.n);
    assert_ptr_equal(rf.p, bf.p + bf.n);
    assert_int_equal(d.h, c.h);
    assert_string_equal(d.msisdn, m);
    assert_int_equal(d.n_records, 61);
    assert_int_equal(d.last_start, c.last_start);
    assert_int_equal(d.prev_end, c.prev_end);
    assert_int_equal(d.tariff_id, 3);
    assert_int_equal(d.n_pools, 2);
    assert_int_equal(d.pools[1].left, -5);
    assert_int_equal(d.pools[0].left, 36000);
    assert_int_equal(d.has_cand, 1);
    assert_int_equal(d.over, 2850000);
    assert_int_equal(d.cand_records, 4);
    assert_int_equal(d.cats, 0x41);
    assert_int_equal(d.n_findings, 7);
    assert_int_equal(d.billed_hi, 12);
    assert_int_equal(d.n_pkeys, 4);
    assert_int_equal(d.pkeys[3], 900);
    assert_int_equal(d.n_rfp, 5);
    assert_int_equal(d.rfp[4], 1048575);
    assert_int_equal(d.rfp_shift, 0);
    assert_true(st_ckpt_has_rfp(&d, 1048575) && !st_ckpt_has_rfp(&d, 12));
    /* the same entry as format 4 laid it out reads the same; a format-3
     * reader refuses its 20-bit fingerprints (its entries have 18) */
    st_buf bo = {0};
    put_old(&bo, &c, base);
    r = (st_rd){bo.p, bo.p + bo.n, 0};
    assert_int_equal(st_ckpt_get(&r, NULL, &d, base, 4), 0);
    assert_ptr_equal(r.p, bo.p + bo.n);
    assert_int_equal(d.n_rfp, 5);
    assert_true(d.rfp[0] == 0 && d.rfp[2] == 11 && d.rfp[4] == 1048575 && d.rfp_shift == 0);
    r = (st_rd){bo.p, bo.p + bo.n, 0};
    assert_int_equal(st_ckpt_get(&r, NULL, &d, base, 3), -1);
    st_buf_free(&bo);
    /* format 5 reads no fingerprint without their stream, and refuses a
     * packed run out of order or with bits above the 20th */
    r = (st_rd){b.p, b.p + b.n, 0};
    assert_int_equal(st_ckpt_get(&r, NULL, &d, base, 5), -1);
    for (int k = 0; k < 2; k++) {
        unsigned char keep = bf.p[k ? 12 : 0];
        bf.p[k ? 12 : 0] = k ? (unsigned char)(keep | 0x10) : 0xFF; /* 0 -> 255 > 10 */
        r = (st_rd){b.p, b.p + b.n, 0};
        rf = (st_rd){bf.p, bf.p + bf.n, 0};
        assert_int_equal(st_ckpt_get(&r, &rf, &d, base, 5), -1);
        bf.p[k ? 12 : 0] = keep;
    }
    /* a rewind point: the walk before the tail and the tail's records */
    c.has_rw = 1;
    c.rw.seq = 59;
    c.rw.prev_end = INT64_MIN;
    c.rw.cflags = 1;
    c.rw.has_cand = 1;
    c.rw.over = 2500000;
    c.rw.cand_records = 3;
    c.rw.cats = 0x40;
    c.rw.n_findings = 6;
    c.rw.billed_hi = 11;
    c.rw.rebuilt_hi = 10;
    c.rw.n_pools = 1;
    c.rw.pools[0] = (st_pool){1, 0, 36060};
    st_buf tb = {0};
    cdr_row t1, t2, g1;
    memset(&t1, 0, sizeof t1);
    t1.service = CDR_SVC_VOICE;
    t1.direction = CDR_DIR_MO;
    t1.start = base + 86400 * 29 - 30;
    t1.duration_s = 2400;
    t1.bytes = t1.sms_chars = -1;
    t1.billed = 1230000;
    t1.partial_seq = 1;
    t1.line = 77;
    t1.offset = 9123;
    t1.record_id = (cdr_str){"R1", 2};
    t1.peer = (cdr_str){"13900000000", 11};
    t1.call_id = (cdr_str){"C9", 2};
    cdr_str ex[2] = {{"MSC7", 4}, {"", 0}};
    t2 = t1;
    t2.partial_seq = 2;
    t2.start += 2400;
    t2.record_id = (cdr_str){"R2", 2};
    t2.extra = ex;
    t2.n_extra = 2;
    st_tail_put(&tb, &t1, 5, base);
    st_tail_put(&tb, &t2, -3, base);
    assert_int_equal(st_ckpt_set_tail(&c, tb.p, tb.n, 2), 0);
    st_buf_free(&tb);
    st_buf b3 = {0}, b3f = {0};
    st_ckpt_put(&b3, &b3f, &c, base);
    st_rd r3 = {b3.p, b3.p + b3.n, 0}, r3f = {b3f.p, b3f.p + b3f.n, 0};
    assert_int_equal(st_ckpt_get(&r3, &r3f, &d, base, 5), 0);
    assert_ptr_equal(r3.p, b3.p + b3.n);
    assert_ptr_equal(r3f.p, b3f.p + b3f.n);
    assert_int_equal(d.has_rw, 1);
    assert_int_equal(d.rw.seq, 59);
    assert_int_equal(d.rw.prev_end, INT64_MIN);
    assert_int_equal(d.rw.over, 2500000);
    assert_int_equal(d.rw.n_findings, 6);
    assert_int_equal(d.rw.pools[0].left, 36060);
    assert_int_equal(d.rw.n_tail, 2);
    st_rd tr = {d.rw.tail, d.rw.tail + d.rw.tail_n, 0};
    int64_t db_id;
    cdr_str gx[4];
    assert_int_equal(st_tail_get(&tr, &g1, &db_id, base, gx, 4), 0);
    assert_int_equal(db_id, 5);
    same_row(&t1, &g1);
    assert_int_equal(g1.offset, 9123);
    st_rd keep = tr;
    assert_int_equal(st_tail_get(&tr, &g1, &db_id, base, gx, 1), -3); /* room for 1 extra */
    assert_int_equal(g1.n_extra, 2);
    tr = keep;
    assert_int_equal(st_tail_get(&tr, &g1, &db_id, base, gx, 4), 0);
    assert_int_equal(db_id, -3);
    same_row(&t2, &g1);
    assert_ptr_equal(tr.p, tr.end);
    /* a format-2 reader stops before the rewind point: the entry's own
     * fields read the same, the rest is left (an entry of 18 bits: those
     * of format 2 files) */
    st_ckpt n18;
    memset(&n18, 0, sizeof n18);
    assert_int_equal(st_ckpt_copy(&n18, &c), 0);
    n18.n_rfp = 0;
    n18.rfp_shift = ST_RFP_BITS - ST_RFP_BITS_V3;
    uint32_t f3[] = {1200, 40, 44, 0, 1048575}; /* (300 10 11 0 262143 at 18 bits) */
    assert_int_equal(st_ckpt_add_rfps(&n18, f3, 5), 0);
    assert_int_equal(n18.rfp[4], 262143);
    st_buf b18 = {0};
    put_old(&b18, &n18, base);
    st_rd r2 = {b18.p, b18.p + b18.n, 0};
    st_ckpt v2;
    memset(&v2, 0, sizeof v2);
    assert_int_equal(st_ckpt_get(&r2, NULL, &v2, base, 2), 0);
    assert_int_equal(v2.has_rw, 0);
    assert_int_equal(v2.n_rfp, 5);
    assert_int_equal(v2.rfp_shift, 2);
    assert_true(st_ckpt_has_rfp(&v2, 1048575) && st_ckpt_has_rfp(&v2, 1048572));
    assert_true(r2.p < r2.end);
    st_ckpt_clear(&v2);
    st_ckpt_clear(&n18);
    st_buf_free(&b18);
    /* a tail that does not end where the checkpoint's records do is damaged */
    c.rw.seq = 58;
    b3.n = b3f.n = 0;
    st_ckpt_put(&b3, &b3f, &c, base);
    r3 = (st_rd){b3.p, b3.p + b3.n, 0};
    r3f = (st_rd){b3f.p, b3f.p + b3f.n, 0};
    assert_int_equal(st_ckpt_get(&r3, &r3f, &d, base, 5), -1);
    c.rw.seq = 59;
    st_buf_free(&b3);
    st_buf_free(&b3f);
    b.n = bf.n = 0;
    st_ckpt_put(&b, &bf, &c, base);
    /* a cut entry or a cut run of its fingerprints is damaged, never half
     * read */
    for (size_t cut = 1; cut < b.n + bf.n; cut += 3) {
        st_rd t = {b.p, b.p + (cut < b.n ? cut : b.n), 0};
        st_rd tf = {bf.p, bf.p + (cut < b.n ? bf.n : cut - b.n), 0};
        st_ckpt e;
        memset(&e, 0, sizeof e);
        assert_int_not_equal(st_ckpt_get(&t, &tf, &e, base, 5), 0);
        st_ckpt_clear(&e);
    }
    st_buf_free(&b);
    st_buf_free(&bf);
    st_ckpt_clear(&c);
    st_ckpt_clear(&d);
}

/* A checkpoint file of format 3 as the code before format 4 wrote it
 * (305103c; a program linked with its library made it): month 2026-09, two
 * entries with 18-bit record_id fingerprints, each with tariff 2, pool
 * 1/0, 3 findings and the partial key 4242. 13800138000: 60 records, the
 * record_ids fp_id('A', 0..59). 13900139000: 3 records, fp_id('B', 0..2),
 * and a rewind point before the last (a tail of one record). */
static const unsigned char ckp_v3[] = {
    0x43, 0x44, 0x52, 0x43, 0x4b, 0x50, 0x30, 0x31, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x5f, 0x00, 0x00, 0xea, 0x00, 0x00, 0x00, 0x08, 0x01, 0x00, 0x00,
    0xe3, 0x36, 0x34, 0xb6, 0x30, 0x30, 0x00, 0x13, 0x06, 0x36, 0x0d, 0x3f,
    0x2e, 0x31, 0x32, 0x31, 0x30, 0x32, 0x32, 0x3c, 0x10, 0x62, 0x60, 0x60,
    0x66, 0x65, 0x61, 0x9c, 0x24, 0xc0, 0xc0, 0x60, 0xf3, 0x51, 0xb6, 0x57,
    0xea, 0x19, 0xf3, 0x31, 0xd6, 0x99, 0x62, 0x57, 0xe4, 0x7e, 0x68, 0x3d,
    0xe7, 0xfd, 0xcd, 0xfd, 0x47, 0xeb, 0xab, 0xc3, 0x65, 0xa5, 0xbb, 0xf2,
    0x73, 0x84, 0xce, 0x32, 0x7e, 0xd4, 0x5c, 0xc6, 0x74, 0x52, 0x72, 0xae,
    0x7b, 0xa3, 0xc4, 0x4d, 0xf5, 0x06, 0xd6, 0xa5, 0xea, 0x6b, 0x53, 0x1e,
    0xb6, 0x31, 0x6e, 0x32, 0xf9, 0xa1, 0x78, 0x97, 0xfd, 0x08, 0xcf, 0x5e,
    0x9d, 0x7f, 0xa2, 0x17, 0x38, 0x9f, 0xb3, 0x6d, 0xe0, 0xd0, 0x7f, 0x27,
    0xb1, 0xae, 0xe8, 0x6b, 0xe5, 0x54, 0xae, 0x93, 0x9c, 0x4b, 0xf4, 0x77,
    0xf2, 0x6f, 0x32, 0xba, 0xc3, 0x3c, 0x81, 0x6b, 0x97, 0xf4, 0x07, 0xc6,
    0x67, 0x7c, 0x8f, 0x34, 0x2f, 0xb0, 0x77, 0xb2, 0x1d, 0x2d, 0xb9, 0xc2,
    0xa9, 0xb2, 0x85, 0xf9, 0x98, 0xee, 0x03, 0xd3, 0x2f, 0x7c, 0x3d, 0x71,
    0x67, 0x05, 0x19, 0xb8, 0x0d, 0x8d, 0x2d, 0x41, 0x4e, 0xb3, 0x34, 0x30,
    0x30, 0x60, 0xc6, 0xea, 0x34, 0xe6, 0x7e, 0xe3, 0x17, 0x9b, 0x19, 0x67,
    0x35, 0xb0, 0x32, 0x32, 0x31, 0x30, 0x30, 0x30, 0xb1, 0xb0, 0x30, 0x32,
    0x32, 0xdc, 0x10, 0x66, 0x34, 0x66, 0x00, 0xa9, 0xae, 0x60, 0x64, 0x04,
    0x09, 0x32, 0x71, 0xee, 0x61, 0x15, 0x74, 0x32, 0x00, 0x03, 0x23, 0x03,
    0x23, 0x33, 0x43, 0x30, 0x83, 0xdb, 0xd0, 0xd8, 0x1c, 0xc4, 0x00, 0x41,
    0x26, 0x67, 0x73, 0x06, 0x06, 0x00, 0xcd, 0x64, 0x1f, 0x30, 0x19, 0xd4,
    0x0e, 0xb1, 0x81, 0xc6, 0xd5, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3d, 0x46,
    0x5e, 0x5e, 0xbe, 0x02, 0xc4, 0x59, 0x2d, 0x4f, 0x19, 0x24, 0x43, 0x44,
    0x52, 0x43, 0x4b, 0x50, 0x46, 0x31, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5f, 0x00, 0x00, 0x03, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x80, 0x29, 0x7d, 0xd2,
};

static void fp_id(char *b, char who, int i)
{
    sprintf(b, "%c%016d", who, 2026100000 + i);
}

/* Whether c may hold each of the record_ids fp_id(who, from..to): for
 * one it says "certainly new" of, a duplicate would go unseen. */
static int holds_ids(const st_ckpt *c, char who, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32];
        fp_id(id, who, i);
        if (!st_ckpt_has_rfp(c, st_rfp(id, strlen(id))))
            return 0;
    }
    return 1;
}

/* How many of 100,000 record_ids it does not hold c doubts. */
static int doubts(const st_ckpt *c)
{
    int n = 0;
    for (int i = 0; i < 100000; i++) {
        char id[32];
        fp_id(id, 'Z', i);
        n += st_ckpt_has_rfp(c, st_rfp(id, strlen(id)));
    }
    return n;
}

static void ckpt_read_back(const st_buf *b, const st_buf *f, st_ckpt *d, int64_t base)
{
    st_rd r = {b->p, b->p + b->n, 0}, rf = {f->p, f->p + f->n, 0};
    assert_int_equal(st_ckpt_get(&r, &rf, d, base, 5), 0);
    assert_ptr_equal(r.p, r.end);
    assert_ptr_equal(rf.p, rf.end);
}

static void checkpoint_format3(void **state)
{
    (void)state;
    char dir[] = "/tmp/cdr-test-ckp3.XXXXXX", path[256], err[256], id[32];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ckp-2026-09-r0000001.cdk", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ckp_v3, 1, sizeof ckp_v3, f), sizeof ckp_v3);
    assert_int_equal(fclose(f), 0);
    st_ckr *r;
    assert_int_equal(st_ckr_open(path, &r, err, sizeof err), CDR_OK);
    assert_int_equal(st_ckr_entries(r), 2);
    assert_int_equal(st_ckr_month(r), cdr_time_month(1790000000));
    int64_t base = cdr_month_start(st_ckr_month(r));
    st_ckpt a, b, o, d;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&o, 0, sizeof o);
    memset(&d, 0, sizeof d);
    /* read, and copied the way a run copies an entry it does not touch
     * into its new file (format 5: an old entry is encoded again) */
    st_ckcur cur;
    memset(&cur, 0, sizeof cur);
    st_buf copied[2] = {{0}, {0}}, copiedf[2] = {{0}, {0}};
    assert_int_equal(st_ckcur_seek(&cur, r, 0), CDR_OK);
    for (int k = 0; k < 2; k++) {
        assert_true(cur.have);
        int is_a = strcmp(cur.cur.msisdn, "13800138000") == 0;
        assert_int_equal(st_ckpt_copy(is_a ? &a : &b, &cur.cur), 0);
        st_ckcur_copy(&cur, &copied[!is_a], &copiedf[!is_a]);
        assert_int_equal(st_ckcur_next(&cur), CDR_OK);
    }
    assert_false(cur.have);
    st_ckcur_free(&cur);
    st_ckr_close(r);
    /* 18-bit entries that find every stored record_id, compared at 18 bits
     * (about 60 in 2^18 of the others doubted, not all of them) */
    assert_int_equal(a.rfp_shift, ST_RFP_BITS - ST_RFP_BITS_V3);
    assert_int_equal(a.n_rfp, 60);
    assert_int_equal(a.n_records, 60);
    assert_true(holds_ids(&a, 'A', 0, 60));
    int doubts18 = doubts(&a);
    assert_in_range(doubts18, 1, 100);
    assert_int_equal(b.rfp_shift, ST_RFP_BITS - ST_RFP_BITS_V3);
    assert_int_equal(b.n_rfp, 3);
    assert_true(holds_ids(&b, 'B', 0, 3));
    assert_true(b.has_rw && b.rw.n_tail == 1 && b.rw.seq == 2);
    assert_true(b.n_pkeys == 1 && b.pkeys[0] == 4242 && b.n_findings == 3);
    /* the copies read as entries of format 5: the same 18-bit sets */
    ckpt_read_back(&copied[0], &copiedf[0], &d, base);
    assert_int_equal(d.rfp_shift, ST_RFP_BITS - ST_RFP_BITS_V3);
    assert_int_equal(d.n_rfp, 60);
    assert_true(holds_ids(&d, 'A', 0, 60));
    assert_int_equal(doubts(&d), doubts18);
    ckpt_read_back(&copied[1], &copiedf[1], &d, base);
    assert_int_equal(d.rfp_shift, ST_RFP_BITS - ST_RFP_BITS_V3);
    assert_true(holds_ids(&d, 'B', 0, 3));
    assert_true(d.has_rw && d.rw.n_tail == 1 && d.rw.tail_n == b.rw.tail_n);
    assert_memory_equal(d.rw.tail, b.rw.tail, b.rw.tail_n);
    /* continued (rate/checkpoint.c: the old fingerprints at their width,
     * then the new records'): 10 new records stay at 18 bits, and the
     * entry written in format 5 finds the old and the new record_ids */
    assert_int_equal(st_ckpt_copy(&o, &a), 0);
    assert_int_equal(st_ckpt_rfps_from(&o, &a), 0);
    uint32_t nf[70];
    for (int i = 0; i < 10; i++) {
        fp_id(id, 'A', 60 + i);
        nf[i] = st_rfp(id, strlen(id));
    }
    assert_int_equal(st_ckpt_add_rfps(&o, nf, 10), 0);
    o.n_records = 70;
    st_buf w = {0}, wf = {0};
    st_ckpt_put(&w, &wf, &o, base);
    ckpt_read_back(&w, &wf, &d, base);
    assert_int_equal(d.rfp_shift, ST_RFP_BITS - ST_RFP_BITS_V3);
    assert_int_equal(d.n_records, 70);
    assert_true(holds_ids(&d, 'A', 0, 70));
    assert_in_range(doubts(&d), doubts18, 100);
    w.n = 0; /* (laid out as before format 5, it is one of format 3) */
    put_old(&w, &o, base);
    st_rd r3 = {w.p, w.p + w.n, 0};
    assert_int_equal(st_ckpt_get(&r3, NULL, &d, base, 3), 0);
    assert_true(holds_ids(&d, 'A', 0, 70));
    /* rated whole again (every record_id at hand): 20 bits, fewer doubts */
    assert_int_equal(st_ckpt_rfps_from(&o, NULL), 0);
    assert_int_equal(o.rfp_shift, 0);
    assert_int_equal(o.n_rfp, 0);
    for (int i = 0; i < 70; i++) {
        fp_id(id, 'A', i);
        nf[i] = st_rfp(id, strlen(id));
    }
    assert_int_equal(st_ckpt_add_rfps(&o, nf, 70), 0);
    w.n = wf.n = 0;
    st_ckpt_put(&w, &wf, &o, base);
    ckpt_read_back(&w, &wf, &d, base);
    assert_int_equal(d.rfp_shift, 0);
    assert_true(holds_ids(&d, 'A', 0, 70));
    assert_in_range(doubts(&d), 0, doubts18 - 1);
    st_buf_free(&w);
    st_buf_free(&wf);
    for (int k = 0; k < 2; k++) {
        st_buf_free(&copied[k]);
        st_buf_free(&copiedf[k]);
    }
    st_ckpt_clear(&a);
    st_ckpt_clear(&b);
    st_ckpt_clear(&o);
    st_ckpt_clear(&d);
    unlink(path);
    rmdir(dir);
}

typedef struct got {
    const sample *s;
    size_t i, n;
} got;

static int check_row(const cdr_row *r, uint32_t fl, void *u)
{
    got *g = u;
    same_row(&g->s->rows[g->i], r);
    assert_int_equal(fl, g->s->recs[g->i].file_local);
    g->i++;
    g->n++;
    return 0;
}

static void segment_file(void **state)
{
    (void)state;
    static sample s;
    make_sample(&s);
    /* three subscribers, groups in key order (hash, msisdn) */
    const char *num[3] = {"13800000001", "13900000002", "15000000003"};
    uint64_t h[3];
    for (int i = 0; i < 3; i++)
        h[i] = cdr_msisdn_hash(num[i], strlen(num[i]));
    int ord[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (st_key_cmp(h[ord[j]], num[ord[j]], 11, h[ord[i]], num[ord[i]], 11) < 0) {
                int t = ord[i];
                ord[i] = ord[j];
                ord[j] = t;
            }
    size_t cnt[3] = {400, 1, NREC - 401}; /* the last spans blocks of 512 */
    /* each group's first row starts a time run: make the sample's runs match */
    size_t at = 0;
    for (int g = 0; g < 3; g++)
        for (size_t i = 0; i < cnt[g]; i++, at++) {
            s.rows[at].start = 1790000000 + (int64_t)i * 60;
            s.rows[at].file_index = 0;
            s.rows[at].offset = s.rows[at].line * 100;
            /* a row has its file's extra columns: c.csv's two, or none */
            if (s.rows[at].n_extra == 1)
                s.rows[at].n_extra = 0;
            s.recs[at].file_local = s.rows[at].n_extra ? 2 : (uint32_t)(at & 1);
        }
    char dir[] = "/tmp/cdr-test-state.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/seg-2026-10-r0000001.cds", dir);
    char *names[2] = {"a", "b"};
    st_file files[3] = {{.db_id = 1, .name = "a.csv"}, {.db_id = 2, .name = "b.csv.gz"},
                        {.db_id = 3, .name = "c.csv", .n_extra = 2, .extra_names = names}};
    st_segw *w;
    char err[256];
    assert_int_equal(st_segw_create(path, cdr_time_month(1790000000), files, 3, &w, err,
                                    sizeof err), CDR_OK);
    st_enc enc;
    assert_int_equal(st_enc_init(&enc, 1), 0);
    st_part p;
    st_part_init(&p);
    p.block_size = 512;
    size_t first_of[3];
    at = 0;
    for (int g = 0; g < 3; g++) {
        first_of[g] = at;
        assert_int_equal(st_part_group(&p, num[ord[g]], 11, cnt[g], &enc), 0);
        for (size_t i = 0; i < cnt[g]; i++, at++) {
            s.rows[at].msisdn = (cdr_str){num[ord[g]], 11};
            assert_int_equal(st_part_add(&p, &s.rows[at], s.recs[at].file_local,
                                         (int64_t)s.rows[at].offset, &enc), 0);
        }
    }
    assert_int_equal(st_part_flush(&p, &enc), 0);
    assert_int_equal(st_segw_append(w, &p), CDR_OK);
    assert_int_equal(st_segw_commit(w, err, sizeof err), CDR_OK);
    assert_int_equal(st_segw_records(w), at);
    st_segw_free(w);
    st_part_free(&p);
    st_enc_free(&enc);

    st_segr *r;
    assert_int_equal(st_segr_open(path, &r, err, sizeof err), CDR_OK);
    assert_int_equal(st_segr_records(r), at);
    assert_int_equal(st_segr_n_files(r), 3);
    assert_string_equal(st_segr_file(r, 2)->name, "c.csv");
    assert_string_equal(st_segr_file(r, 2)->extra_names[1], "b");
    assert_string_equal(st_segr_name(r), "seg-2026-10-r0000001.cds");
    /* each subscriber found by its key, its rows in order */
    for (int g = 2; g >= 0; g--) {
        st_gcur c;
        memset(&c, 0, sizeof c);
        assert_int_equal(st_gcur_seek(&c, r, h[ord[g]], num[ord[g]], 11), CDR_OK);
        assert_true(c.have);
        assert_int_equal(c.cur.count, cnt[g]);
        got x = {&s, first_of[g], 0};
        cdr_err e = st_gcur_rows(&c, check_row, &x);
        if (e != CDR_OK)
            print_error("rows of group %d: %s\n", g, c.err);
        assert_int_equal(e, CDR_OK);
        assert_int_equal(x.n, cnt[g]);
        st_gcur_free(&c);
    }
    st_segr_close(r);
    /* cut short: refused with a reason */
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(st_segr_open(path, &r, err, sizeof err), CDR_E_PARSE);
    assert_non_null(strstr(err, "not a segment file"));
    unlink(path);
    rmdir(dir);
}


/* ---- the group index: many groups, every shape of msisdn ------------------------- */

enum { NG = 2600, GREC_MAX = 3 }; /* three chunks of up to 1,024 groups */

typedef struct gset {
    char m[NG][CDR_NUMBER_MAX + 1];
    size_t len[NG];
    uint64_t h[NG];
    size_t count[NG];
    size_t ord[NG];          /* the groups in key order */
    uint64_t first[NG];      /* of group ord[k]: its first record in the segment */
    cdr_row rows[NG * GREC_MAX];
    char rid[NG * GREC_MAX][16];
    size_t n_rows;
} gset;

static const gset *g_sort;

static int gset_cmp(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return st_key_cmp(g_sort->h[a], g_sort->m[a], g_sort->len[a], g_sort->h[b], g_sort->m[b],
                      g_sort->len[b]);
}

static void rand_digits(char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('0' + trnd_below(&rng, 10));
}

/* Group i's msisdn: fixed ones at the edges of the format (one digit, 18
 * digits as the largest number, 19, CDR_NUMBER_MAX of digits or not, leading
 * zeros), then mobile numbers mostly, with some of a leading zero, with a
 * '+' or a letter, or of raw bytes. The last 4 characters hold i, so all
 * differ. */
static void gset_msisdn(gset *g, size_t i)
{
    static const char *fixed[] = {"0", "7", "00", "000000000000000000", "999999999999999999",
                                  "1000000000000000000", "99999999999999999999999999999999",
                                  "01234567890123456789012345678901", "+8613800138000",
                                  "AbCdEfGhIjKlMnOpQrStUvWxYz012345"};
    char *b = g->m[i];
    size_t n;
    if (i < sizeof fixed / sizeof *fixed) {
        n = strlen(fixed[i]);
        memcpy(b, fixed[i], n);
    } else {
        switch (trnd_below(&rng, 10)) {
        case 0: /* a leading zero, 5..18 digits */
            n = 5 + trnd_below(&rng, 14);
            rand_digits(b, n);
            b[0] = '0';
            break;
        case 1: /* a '+' or a letter */
            n = 12;
            rand_digits(b, n);
            b[trnd_below(&rng, 2) ? 0 : 7] = trnd_below(&rng, 2) ? '+' : 'x';
            break;
        case 2: /* any bytes, up to the longest */
            n = 4 + trnd_below(&rng, CDR_NUMBER_MAX - 3);
            for (size_t k = 0; k < n; k++)
                b[k] = (char)(1 + trnd_below(&rng, 255));
            break;
        case 3: /* digits, as long as any */
            n = CDR_NUMBER_MAX;
            rand_digits(b, n);
            break;
        default: /* a mobile number */
            n = 11;
            rand_digits(b, n);
            b[0] = '1';
            break;
        }
        snprintf(b + n - 4, 5, "%04zu", i);
    }
    b[n] = '\0';
    g->len[i] = n;
    g->h[i] = cdr_msisdn_hash(b, n);
}

static void make_gset(gset *g)
{
    memset(g, 0, sizeof *g);
    for (size_t i = 0; i < NG; i++) {
        gset_msisdn(g, i);
        g->count[i] = 1 + trnd_below(&rng, GREC_MAX);
        g->ord[i] = i;
    }
    g_sort = g;
    qsort(g->ord, NG, sizeof *g->ord, gset_cmp);
    /* the records, group by group in key order: line says which */
    for (size_t k = 0; k < NG; k++) {
        size_t i = g->ord[k];
        g->first[k] = g->n_rows;
        for (size_t j = 0; j < g->count[i]; j++) {
            size_t at = g->n_rows++;
            cdr_row *r = &g->rows[at];
            memset(r, 0, sizeof *r);
            r->msisdn = (cdr_str){g->m[i], g->len[i]};
            r->start = 1790000000 + (int64_t)j * 600;
            r->service = CDR_SVC_VOICE;
            r->direction = CDR_DIR_MO;
            r->duration_s = 60;
            r->bytes = r->sms_chars = -1;
            r->billed = 150000;
            r->line = 2 + at;
            r->offset = r->line * 90;
            r->record_id = (cdr_str){g->rid[at], (size_t)snprintf(g->rid[at], 16, "R%zu", at)};
        }
    }
}

/* The set written as a segment of the format, in three parts cut where no
 * chunk is. */
static void write_gset(const gset *g, const char *path, uint32_t version)
{
    st_file files[1] = {{.db_id = 1, .name = "a.csv"}};
    st_segw *w;
    char err[256];
    assert_int_equal(st_segw_create_format(path, cdr_time_month(1790000000), files, 1, version,
                                           &w, err, sizeof err), CDR_OK);
    st_enc enc;
    assert_int_equal(st_enc_init(&enc, 1), 0);
    size_t cut[] = {0, 700, 1500, NG};
    for (int p = 0; p < 3; p++) {
        st_part part;
        st_part_init(&part);
        for (size_t k = cut[p]; k < cut[p + 1]; k++) {
            size_t i = g->ord[k];
            assert_int_equal(st_part_group(&part, g->m[i], g->len[i], g->count[i], &enc), 0);
            for (size_t j = 0; j < g->count[i]; j++)
                assert_int_equal(st_part_add(&part, &g->rows[g->first[k] + j], 0,
                                             (int64_t)g->rows[g->first[k] + j].offset, &enc), 0);
        }
        assert_int_equal(st_part_flush(&part, &enc), 0);
        assert_int_equal(st_segw_append(w, &part), CDR_OK);
        st_part_free(&part);
    }
    assert_int_equal(st_segw_commit(w, err, sizeof err), CDR_OK);
    st_segw_free(w);
    st_enc_free(&enc);
}

typedef struct lines {
    const gset *g;
    size_t k, n;
} lines;

static int check_line(const cdr_row *r, uint32_t fl, void *u)
{
    lines *x = u;
    const cdr_row *want = &x->g->rows[x->g->first[x->k] + x->n];
    assert_int_equal(r->line, want->line);
    same_str(r->record_id, want->record_id);
    same_str(r->msisdn, want->msisdn);
    x->n++;
    return 0;
}

static void same_group(const st_gcur *c, const gset *g, size_t k)
{
    size_t i = g->ord[k];
    assert_true(c->have);
    assert_int_equal(c->cur.h, g->h[i]);
    assert_int_equal(c->cur.msisdn_len, g->len[i]);
    assert_memory_equal(c->cur.msisdn, g->m[i], g->len[i]);
    assert_int_equal(c->cur.count, g->count[i]);
    assert_int_equal(c->cur.first, g->first[k]);
}

/* Every group read back: by a cursor from the start, by its key in any
 * order (its records with it), by st_gcur_find in key order; a key that is
 * not there is not found. */
static void read_gset(const gset *g, const char *path)
{
    st_segr *r;
    char err[256];
    assert_int_equal(st_segr_open(path, &r, err, sizeof err), CDR_OK);
    assert_int_equal(st_segr_records(r), g->n_rows);
    st_gcur c;
    memset(&c, 0, sizeof c);
    assert_int_equal(st_gcur_seek(&c, r, 0, NULL, 0), CDR_OK);
    for (size_t k = 0; k < NG; k++) {
        same_group(&c, g, k);
        assert_int_equal(st_gcur_next(&c), CDR_OK);
    }
    assert_false(c.have);
    for (size_t t = 0; t < NG; t++) {
        size_t k = t % 2 ? trnd_below(&rng, NG) : NG - 1 - t / 2;
        size_t i = g->ord[k];
        assert_int_equal(st_gcur_seek(&c, r, g->h[i], g->m[i], g->len[i]), CDR_OK);
        same_group(&c, g, k);
        if (t % 7 == 0) {
            lines x = {g, k, 0};
            assert_int_equal(st_gcur_rows(&c, check_line, &x), CDR_OK);
            assert_int_equal(x.n, g->count[i]);
        }
    }
    st_gcur_free(&c);
    memset(&c, 0, sizeof c);
    size_t i0 = g->ord[0];
    assert_int_equal(st_gcur_seek(&c, r, g->h[i0], g->m[i0], g->len[i0]), CDR_OK);
    for (size_t k = 0; k < NG; k += 1 + trnd_below(&rng, 40)) {
        size_t i = g->ord[k];
        assert_int_equal(st_gcur_find(&c, g->h[i], g->m[i], g->len[i]), 1);
        same_group(&c, g, k);
    }
    st_gcur_free(&c);
    /* one more character: not there, the cursor on the next key */
    memset(&c, 0, sizeof c);
    for (size_t t = 0; t < 50; t++) {
        size_t i = g->ord[trnd_below(&rng, NG)];
        char m[CDR_NUMBER_MAX + 2];
        memcpy(m, g->m[i], g->len[i]);
        m[g->len[i]] = '5';
        uint64_t h = cdr_msisdn_hash(m, g->len[i] + 1);
        assert_int_equal(st_gcur_seek(&c, r, h, m, g->len[i] + 1), CDR_OK);
        assert_true(!c.have || st_key_cmp(c.cur.h, c.cur.msisdn, c.cur.msisdn_len, h, m,
                                          g->len[i] + 1) > 0);
    }
    st_gcur_free(&c);
    st_segr_close(r);
}

static uint64_t file_le64(FILE *f, long at)
{
    unsigned char b[8];
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fread(b, 1, 8, f), 8);
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | b[k];
    return v;
}

static void poke32(const char *path, long at, uint32_t v)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    for (int k = 0; k < 4; k++)
        fputc((int)(v >> (8 * k)) & 255, f);
    fclose(f);
}

static void flip(const char *path, long at, unsigned char x)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ x, f);
    fclose(f);
}

/* A group of chunk k looked up, walked to from the start: refused (the
 * file itself opens: its footer and directories are whole). */
static void chunk_refused(const gset *g, const char *path, size_t k)
{
    st_segr *r;
    char err[256];
    assert_int_equal(st_segr_open(path, &r, err, sizeof err), CDR_OK);
    st_gcur c;
    memset(&c, 0, sizeof c);
    size_t i = g->ord[k * 1024 + 5];
    cdr_err e = st_gcur_seek(&c, r, g->h[i], g->m[i], g->len[i]);
    assert_int_equal(e, CDR_E_PARSE);
    assert_non_null(strstr(c.err, "damaged group"));
    e = st_gcur_seek(&c, r, 0, NULL, 0);
    while (e == CDR_OK && c.have)
        e = st_gcur_next(&c);
    assert_int_equal(e, CDR_E_PARSE);
    st_gcur_free(&c);
    st_segr_close(r);
}

static void group_index(void **state)
{
    (void)state;
    static gset g;
    make_gset(&g);
    char dir[] = "/tmp/cdr-test-gidx.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p3[256], p2[256];
    snprintf(p3, sizeof p3, "%s/seg-2026-10-r0000003.cds", dir);
    snprintf(p2, sizeof p2, "%s/seg-2026-10-r0000002.cds", dir);
    write_gset(&g, p3, 3);
    write_gset(&g, p2, 2);
    read_gset(&g, p3);
    read_gset(&g, p2); /* what earlier releases wrote */
    /* the same records and groups: format 3 is smaller by its index alone */
    FILE *f3 = fopen(p3, "rb"), *f2 = fopen(p2, "rb");
    assert_non_null(f3);
    assert_non_null(f2);
    assert_int_equal(fseek(f3, 0, SEEK_END), 0);
    assert_int_equal(fseek(f2, 0, SEEK_END), 0);
    long n3 = ftell(f3), n2 = ftell(f2);
    assert_true(n3 < n2 - (long)NG * 5);
    /* format 3's chunk 1: where the footer's directory says it is */
    uint64_t cd = file_le64(f3, n3 - 80 + 32);
    long at = (long)file_le64(f3, (long)cd + 32 + 8);
    unsigned char h8[8];
    assert_int_equal(fseek(f3, at, SEEK_SET), 0);
    assert_int_equal(fread(h8, 1, 8, f3), 8);
    long zlen = (long)(h8[0] | h8[1] << 8 | h8[2] << 16 | (uint32_t)h8[3] << 24);
    fclose(f3);
    fclose(f2);
    /* a flipped byte in its lengths, its deflated bytes or its CRC */
    long where[] = {at, at + 1, at + 4, at + 5, at + 8, at + 8 + zlen / 2, at + 8 + zlen - 1,
                    at + 8 + zlen, at + 8 + zlen + 3};
    for (size_t t = 0; t < sizeof where / sizeof *where; t++) {
        unsigned char x = (unsigned char)(1 + trnd_below(&rng, 255));
        flip(p3, where[t], x);
        chunk_refused(&g, p3, 1);
        flip(p3, where[t], x);
    }
    /* cut short by a byte: its length one less */
    poke32(p3, at, (uint32_t)zlen - 1);
    chunk_refused(&g, p3, 1);
    poke32(p3, at, (uint32_t)zlen);
    read_gset(&g, p3); /* (restored) */
    /* groups out of key order are not written */
    st_file files[1] = {{.db_id = 1, .name = "a.csv"}};
    st_segw *w;
    char err[256];
    snprintf(p3, sizeof p3, "%s/seg-2026-10-r0000004.cds", dir);
    assert_int_equal(st_segw_create(p3, cdr_time_month(1790000000), files, 1, &w, err,
                                    sizeof err), CDR_OK);
    st_enc enc;
    assert_int_equal(st_enc_init(&enc, 1), 0);
    st_part part;
    st_part_init(&part);
    for (size_t k = 2; k-- > 0;) {
        size_t i = g.ord[k];
        assert_int_equal(st_part_group(&part, g.m[i], g.len[i], 1, &enc), 0);
        assert_int_equal(st_part_add(&part, &g.rows[g.first[k]], 0, 0, &enc), 0);
    }
    assert_int_equal(st_part_flush(&part, &enc), 0);
    assert_int_equal(st_segw_append(w, &part), CDR_E_INTERNAL);
    st_part_free(&part);
    st_segw_free(w);
    st_enc_free(&enc);
    unlink(p2);
    snprintf(p3, sizeof p3, "%s/seg-2026-10-r0000003.cds", dir);
    unlink(p3);
    rmdir(dir);
}

/* A checkpoint file of format 5 of 3,000 entries over every bucket (each
 * with its own fingerprints, 0 to 80 of them, at 20 bits or 18, some with
 * partial keys): written by parts cut at buckets, read back whole by a
 * cursor and from a key in the middle, copied entry by entry into a second
 * file that reads the same; and every 97th byte of the file flipped in turn
 * is refused (the open or the cursor fails) before the entries come back
 * whole. */
enum { NCK = 3000 };

typedef struct ck_ent {
    char m[16];
    uint64_t h;
} ck_ent;

static int cmp_ck_ent(const void *a, const void *b)
{
    const ck_ent *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : strcmp(x->m, y->m);
}

static void ck_make(st_ckpt *c, const ck_ent *e, int i)
{
    st_ckpt_clear(c);
    memcpy(c->msisdn, e->m, strlen(e->m) + 1);
    c->msisdn_len = (uint8_t)strlen(e->m);
    c->h = e->h;
    c->n_records = (uint64_t)i;
    c->prev_end = INT64_MIN;
    c->rfp_shift = i % 7 == 0 ? ST_RFP_BITS - ST_RFP_BITS_V3 : 0;
    uint64_t s = 977 + (uint64_t)i;
    uint32_t v[80];
    uint32_t n = (uint32_t)(i % 81);
    for (uint32_t k = 0; k < n; k++)
        v[k] = (uint32_t)trnd_below(&s, (uint64_t)1 << ST_RFP_BITS);
    assert_int_equal(st_ckpt_add_rfps(c, v, n), 0);
    for (uint32_t k = 0; k < (uint32_t)(i % 3); k++)
        assert_int_equal(st_ckpt_add_pkey(c, (uint32_t)(i * 7 + (int)k)), 0);
}

static void ck_same(const st_ckpt *a, const st_ckpt *b)
{
    assert_string_equal(a->msisdn, b->msisdn);
    assert_true(a->h == b->h && a->n_records == b->n_records);
    assert_int_equal(a->rfp_shift, b->rfp_shift);
    assert_int_equal(a->n_rfp, b->n_rfp);
    if (a->n_rfp)
        assert_memory_equal(a->rfp, b->rfp, a->n_rfp * sizeof *a->rfp);
    assert_int_equal(a->n_pkeys, b->n_pkeys);
}

/* Every entry of the file at path, in order, against want[0..NCK): 0 if all
 * came back, -1 if the open or the cursor refused the file. */
static int ck_read_all(const char *path, const ck_ent *want, st_buf *copy, st_buf *copyf)
{
    char err[256];
    st_ckr *r;
    if (st_ckr_open(path, &r, err, sizeof err) != CDR_OK)
        return -1;
    st_ckcur cur;
    memset(&cur, 0, sizeof cur);
    st_ckpt c;
    memset(&c, 0, sizeof c);
    int k_got = 0, bad = st_ckcur_seek(&cur, r, 0) != CDR_OK;
    while (!bad && cur.have) {
        assert_true(k_got < NCK);
        ck_make(&c, &want[k_got], k_got);
        ck_same(&cur.cur, &c);
        if (copy)
            st_ckcur_copy(&cur, copy, copyf);
        k_got++;
        bad = st_ckcur_next(&cur) != CDR_OK;
    }
    st_ckcur_free(&cur);
    st_ckpt_clear(&c);
    st_ckr_close(r);
    if (bad)
        return -1;
    assert_int_equal(k_got, NCK);
    return 0;
}

static void ck_write(const char *path, cdr_month m, const ck_ent *e, const st_buf *raw,
                     const st_buf *rawf)
{
    char err[256];
    st_ckw *w;
    assert_int_equal(st_ckw_create(path, m, &w, err, sizeof err), CDR_OK);
    st_ckpart p;
    memset(&p, 0, sizeof p);
    st_ckpt c;
    memset(&c, 0, sizeof c);
    st_rd rr = raw ? (st_rd){raw->p, raw->p + raw->n, 0} : (st_rd){0};
    st_rd rf = raw ? (st_rd){rawf->p, rawf->p + rawf->n, 0} : (st_rd){0};
    for (int i = 0; i < NCK; i++) {
        if (p.n && (e[i].h >> 56) != (p.first_h >> 56))
            assert_int_equal(st_ckw_append(w, &p), CDR_OK);
        if (p.n == 0)
            p.first_h = e[i].h;
        p.last_h = e[i].h;
        if (raw) /* (the copies, entry by entry) */
            assert_int_equal(st_ckpt_get(&rr, &rf, &c, cdr_month_start(m), 5), 0);
        else
            ck_make(&c, &e[i], i);
        st_ckpt_put(&p.b, &p.f, &c, cdr_month_start(m));
        p.n++;
    }
    assert_int_equal(st_ckw_append(w, &p), CDR_OK);
    assert_int_equal(st_ckw_entries(w), NCK);
    assert_int_equal(st_ckw_commit(w, err, sizeof err), CDR_OK);
    st_ckw_free(w);
    st_buf_free(&p.b);
    st_buf_free(&p.f);
    st_ckpt_clear(&c);
}

static void checkpoint_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/cdr-test-ckp5.XXXXXX", path[256], path2[256], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ckp-2026-10-r0000001.cdk", dir);
    snprintf(path2, sizeof path2, "%s/ckp-2026-10-r0000002.cdk", dir);
    cdr_month m = cdr_time_month(1791000000);
    static ck_ent e[NCK];
    for (int i = 0; i < NCK; i++) {
        snprintf(e[i].m, sizeof e[i].m, "1380%07d", i * 7919);
        e[i].h = cdr_msisdn_hash(e[i].m, strlen(e[i].m));
    }
    qsort(e, NCK, sizeof *e, cmp_ck_ent);
    ck_write(path, m, e, NULL, NULL);
    st_buf copy = {0}, copyf = {0};
    assert_int_equal(ck_read_all(path, e, &copy, &copyf), 0);
    ck_write(path2, m, e, &copy, &copyf);
    assert_int_equal(ck_read_all(path2, e, NULL, NULL), 0);
    /* from a key in the middle */
    st_ckr *r;
    assert_int_equal(st_ckr_open(path, &r, err, sizeof err), CDR_OK);
    st_ckcur cur;
    memset(&cur, 0, sizeof cur);
    int mid = NCK / 2;
    while (mid > 0 && e[mid - 1].h == e[mid].h) /* (the first of its hash) */
        mid--;
    assert_int_equal(st_ckcur_seek(&cur, r, e[mid].h), CDR_OK);
    assert_true(cur.have);
    assert_string_equal(cur.cur.msisdn, e[mid].m);
    st_ckcur_free(&cur);
    st_ckr_close(r);
    /* damaged anywhere: refused */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char img[1 << 20];
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    assert_true(n > 16 && n < sizeof img);
    int refused = 0, tried = 0;
    for (size_t at = 16; at < n; at += 97) {
        img[at] ^= 0x21;
        f = fopen(path2, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(img, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
        refused += ck_read_all(path2, e, NULL, NULL) != 0;
        tried++;
        img[at] ^= 0x21;
    }
    assert_int_equal(refused, tried);
    st_buf_free(&copy);
    st_buf_free(&copyf);
    unlink(path);
    unlink(path2);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(block_round_trip),
        cmocka_unit_test(checkpoint_entry),
        cmocka_unit_test(checkpoint_format3),
        cmocka_unit_test(checkpoint_file),
        cmocka_unit_test(segment_file),
        cmocka_unit_test(group_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
