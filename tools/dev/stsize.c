/* Development tool: the month-state block codec on a real CDR file. Keeps
 * the subscribers whose msisdn hash is 0 mod K, groups their records by
 * msisdn and time as a segment does, encodes blocks, decodes and compares,
 * prints bytes per record. Usage: stsize FILE [K] [LEVEL]
 * Build (after make): cc -O2 -D_GNU_SOURCE -Iinclude -Isrc/common -Isrc/state
 *   -o build/stsize tools/dev/stsize.c build/libcdrecon.a
 *   -lsqlite3 -lcsv -lisal -lnettle -lz -lm -pthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cdrecon/reader.h"
#include "hashfn.h"
#include "stcodec.h"

typedef struct own {
    cdr_row r;
    char *mem;
    cdr_str ex[8];
} own;
static own *v; static size_t nv, cv; static int K = 10;
typedef struct anc { uint64_t line, off; } anc;
static anc *an; static size_t nan_, can; static uint64_t next_line = 0;

static int on_row(const cdr_row *r, void *u)
{
    (void)u;
    if (r->line >= next_line) {
        if (nan_ == can) { can = can ? can * 2 : 1024; an = realloc(an, can * sizeof *an); }
        an[nan_++] = (anc){r->line, r->offset};
        next_line = r->line + 64;
    }
    if (cdr_hash_bytes(r->msisdn.p, r->msisdn.n, 0) % K) return 0;
    if (nv == cv) { cv = cv ? cv * 2 : 4096; v = realloc(v, cv * sizeof *v); }
    own *o = &v[nv++];
    o->r = *r;
    size_t tot = r->record_id.n + r->msisdn.n + r->peer.n + r->call_id.n + r->sms_ref.n;
    for (uint32_t i = 0; i < r->n_extra; i++) tot += r->extra[i].n;
    char *m = o->mem = malloc(tot + 1);
#define CP(f) do { memcpy(m, r->f.p, r->f.n); o->r.f.p = m; m += r->f.n; } while (0)
    CP(record_id); CP(msisdn); CP(peer); CP(call_id); CP(sms_ref);
    for (uint32_t i = 0; i < r->n_extra && i < 8; i++) { memcpy(m, r->extra[i].p, r->extra[i].n); o->ex[i] = (cdr_str){m, r->extra[i].n}; m += r->extra[i].n; }
    o->r.n_extra = r->n_extra < 8 ? r->n_extra : 8;
    o->r.raw = (cdr_str){0, 0};
    return 0;
}
static int cmpo(const void *a, const void *b)
{
    const cdr_row *x = &((const own *)a)->r, *y = &((const own *)b)->r;
    int c = x->msisdn.n != y->msisdn.n ? (x->msisdn.n < y->msisdn.n ? -1 : 1) : memcmp(x->msisdn.p, y->msisdn.p, x->msisdn.n);
    if (c) return c;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return 0;
}
static int eqs(cdr_str a, cdr_str b) { return a.n == b.n && (a.n == 0 || !memcmp(a.p, b.p, a.n)); }
int main(int argc, char **argv)
{
    if (argc > 2) K = atoi(argv[2]);
    int level = argc > 3 ? atoi(argv[3]) : 1; st_enc X; st_enc_init(&X, level);
    cdr_reader_opts ro; cdr_reader_opts_init(&ro);
    cdr_file_stats st;
    cdr_read_file(argv[1], 0, &ro, on_row, NULL, NULL, &st);
    uint64_t L = st.bytes / (st.rows_read + 1);
    for (size_t i = 0; i < nv; i++) { v[i].r.extra = v[i].ex; }
    qsort(v, nv, sizeof *v, cmpo);
    for (size_t i = 0; i < nv; i++) v[i].r.extra = v[i].ex;
    st_rec *recs = malloc(ST_BLOCK_RECORDS * sizeof *recs);
    st_buf out = {0}; st_block b = {0}; char err[200];
    size_t total = 0; double te = 0, td = 0; size_t bad = 0;
    for (size_t s = 0; s < nv; s += ST_BLOCK_RECORDS) {
        size_t n = nv - s < ST_BLOCK_RECORDS ? nv - s : ST_BLOCK_RECORDS;
        for (size_t i = 0; i < n; i++) {
            const cdr_row *r = &v[s + i].r;
            size_t lo = 0, hi = nan_;
            while (hi - lo > 1) { size_t m = (lo + hi) / 2; if (an[m].line <= r->line) lo = m; else hi = m; }
            recs[i] = (st_rec){r, 0, (int64_t)(r->offset - an[lo].off) - (int64_t)((r->line - an[lo].line) * L),
                               i == 0 || !eqs(r->msisdn, v[s + i - 1].r.msisdn)};
        }
        out.n = 0;
        clock_t c0 = clock();
        if (st_block_encode(recs, n, &X, &out)) { fprintf(stderr, "encode failed\n"); return 1; }
        clock_t c1 = clock();
        if (st_block_decode(out.p, out.n, &b, err, sizeof err)) { fprintf(stderr, "decode: %s\n", err); return 1; }
        clock_t c2 = clock();
        te += (double)(c1 - c0) / CLOCKS_PER_SEC; td += (double)(c2 - c1) / CLOCKS_PER_SEC;
        total += out.n;
        {   static size_t colsz[256]; static int init;
            if (!init) { init = 1; }
            const unsigned char *q = out.p + 20; uint32_t present = out.p[16] | out.p[17] << 8;
            for (uint32_t k = 0; k < present; k++) { const unsigned char *e = q + k * 10; colsz[e[0]] += (size_t)e[6] | (size_t)e[7] << 8 | (size_t)e[8] << 16; }
            if (s + ST_BLOCK_RECORDS >= nv && getenv("STSIZE_COLS")) for (int c = 0; c < 256; c++) if (colsz[c]) printf("col %3d %.3f\n", c, (double)colsz[c] / nv);
        }
        for (size_t i = 0; i < n; i++) {
            const cdr_row *a = &v[s + i].r, *c = &b.rows[i];
            int ok = eqs(a->record_id, c->record_id) && eqs(a->peer, c->peer) && eqs(a->call_id, c->call_id) && eqs(a->sms_ref, c->sms_ref)
                && a->service == c->service && a->direction == c->direction && a->start == c->start && a->duration_s == c->duration_s
                && a->bytes == c->bytes && a->sms_chars == c->sms_chars && a->sms_part == c->sms_part && a->sms_parts == c->sms_parts
                && a->partial_seq == c->partial_seq && a->billed == c->billed && a->line == c->line && a->n_extra == c->n_extra
                && b.off_res[i] == recs[i].off_res;
            for (uint32_t k = 0; ok && k < a->n_extra; k++) ok = eqs(a->extra[k], c->extra[k]);
            if (!ok) bad++;
        }
    }
    if (getenv("STSIZE_LOOP")) {
        struct timespec a, c; clock_gettime(CLOCK_MONOTONIC, &a);
        for (size_t s = 0; s + ST_BLOCK_RECORDS <= nv; s += ST_BLOCK_RECORDS) {
            for (size_t i = 0; i < ST_BLOCK_RECORDS; i++) recs[i] = (st_rec){&v[s + i].r, 0, 0, i == 0 || !eqs(v[s+i].r.msisdn, v[s+i-1].r.msisdn)};
            out.n = 0; st_block_encode(recs, ST_BLOCK_RECORDS, &X, &out);
        }
        clock_gettime(CLOCK_MONOTONIC, &c);
        double e = (c.tv_sec - a.tv_sec) + (c.tv_nsec - a.tv_nsec) / 1e9;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int k = 0; k < 200; k++) st_block_decode(out.p, out.n, &b, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &c);
        double d = (c.tv_sec - a.tv_sec) + (c.tv_nsec - a.tv_nsec) / 1e9;
        printf("loop: encode %.0f ns/rec, decode %.0f ns/rec\n", e * 1e9 / nv, d * 1e9 / (200.0 * ST_BLOCK_RECORDS));
    }
    printf("%zu records, %zu bytes, %.2f B/rec; mismatches %zu; encode %.0f ns/rec, decode %.0f ns/rec; gzip CSV %.2f B/rec\n",
           nv, total, (double)total / nv, bad, te * 1e9 / nv, td * 1e9 / nv, (double)st.size / st.rows_read);
    return bad != 0;
}
/* per-column sizes of a block: called from main via env STSIZE_COLS */
