/*
 * Fuzz target: an end-to-end `run` in memory: one CDR file (the input, after
 * one option byte) read by the reader into the engine against a fixed tariff
 * (env CDR_FUZZ_TARIFF, default testdata/example/tariff; with option bit 16
 * CDR_FUZZ_TARIFF_LIMITS, default fuzz/tariff-limits: every price at the
 * largest that check-tariff accepts), rated, and stored in an in-memory
 * SQLite results database in one committed run.
 * Invariants: read = accepted + rejected; rating never fails (what cannot be
 * rated is unrated with a reason: docs/rating.md "Limits and sums"); every
 * amount within its limit (a record's billed and rebuilt <= 10^12 yuan, a
 * candidate's overcharge <= 10^12 and refund = 2 x overcharge, never
 * negative); every finding's difference is billed - rebuilt; the totals are
 * the saturating sums of what the sink saw, and the database's the same;
 * integrity_check passes.
 * Option bits: 1 tiny memory budget (forces the spill path), 2 two reader
 * threads, 4 a --month filter, 8 libcsv only, 16 the limits tariff.
 */
#include "fuzz_util.h"

#include "cdrecon/db.h"
#include "cdrecon/engine.h"
#include "cdrecon/tariff.h"

static cdr_tariff *tariff, *tariff_limits;

typedef struct fz_run {
    cdr_db *db;
    cdr_engine *eng;
    uint64_t findings, candidates, rejects, records;
    cdr_money overcharge, refund, leakage;
    int db_failed;
} fz_run;

static int on_row(const cdr_row *r, void *user)
{
    fz_run *c = user;
    FZ_CHECK(cdr_engine_add(c->eng, r) == CDR_OK);
    return 0;
}

static int on_reject(const cdr_reject *r, void *user)
{
    fz_run *c = user;
    c->rejects++;
    FZ_CHECK(cdr_db_add_reject(c->db, r) == CDR_OK);
    return 0;
}

static int on_record(const cdr_rated *r, void *user)
{
    fz_run *c = user;
    c->records++;
    FZ_CHECK(r->status < CDR_RS__COUNT);
    if (r->status == CDR_RS_DUPLICATE || r->status == CDR_RS_PARTIAL_REST ||
        r->status == CDR_RS_FREE || r->status == CDR_RS_NO_SUBSCRIPTION)
        FZ_CHECK(r->rebuilt == 0);
    FZ_CHECK(r->rebuilt >= 0 && r->rebuilt <= CDR_MONEY_MAX);
    FZ_CHECK(r->row.billed >= 0 && r->row.billed <= CDR_MONEY_MAX);
    FZ_CHECK(r->cmp_billed >= 0 && r->cmp_billed <= CDR_MONEY_MAX);
    FZ_CHECK((r->status == CDR_RS_UNRATED) == (r->unrated != NULL));
    if (r->status == CDR_RS_UNRATED)
        FZ_CHECK(r->rebuilt == 0 && r->unrated[0]);
    return 0;
}

static int on_finding(const cdr_finding *f, void *user)
{
    fz_run *c = user;
    c->findings++;
    FZ_CHECK(f->difference == f->billed - f->rebuilt);
    FZ_CHECK(f->billed >= 0 && f->billed <= CDR_MONEY_MAX);
    FZ_CHECK(f->rebuilt >= 0 && f->rebuilt <= CDR_MONEY_MAX);
    if (f->category == CDR_CAT_LEAKAGE) {
        FZ_CHECK(f->difference < 0);
        c->leakage = cdr_money_total_add(c->leakage, -f->difference);
    }
    FZ_CHECK(f->category < CDR_CAT__COUNT);
    FZ_CHECK(cdr_db_add_finding(c->db, f) == CDR_OK);
    return 0;
}

static int on_candidate(const cdr_candidate *cd, void *user)
{
    fz_run *c = user;
    c->candidates++;
    FZ_CHECK(cd->overcharge > 0 && cd->overcharge <= CDR_MONEY_MAX);
    FZ_CHECK(cd->refund == 2 * cd->overcharge);
    FZ_CHECK(cd->tier >= 0 && cd->tier <= 4 && cd->records >= 1);
    c->overcharge = cdr_money_total_add(c->overcharge, cd->overcharge);
    c->refund = cdr_money_total_add(c->refund, cd->refund);
    FZ_CHECK(cdr_db_add_candidate(c->db, cd) == CDR_OK);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("CDR_FUZZ_TARIFF");
    const char *lim = getenv("CDR_FUZZ_TARIFF_LIMITS");
    char err[512];
    if (!dir)
        dir = "testdata/example/tariff";
    if (!lim)
        lim = "fuzz/tariff-limits";
    if (cdr_tariff_load(dir, &tariff, err, sizeof err) != CDR_OK ||
        cdr_tariff_load(dir = lim, &tariff_limits, err, sizeof err) != CDR_OK) {
        fprintf(stderr, "fuzz_run: cannot load the tariff %s: %s\n", dir, err);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 18))
        return 0;
    if (!tariff)
        LLVMFuzzerInitialize(NULL, NULL);
    unsigned sel = data[0];
    char path[256], tmp[256];
    fz_path(path, sizeof path, "run.csv");
    fz_path(tmp, sizeof tmp, "spill");
    fz_write(path, data + 1, size - 1);

    fz_run c;
    memset(&c, 0, sizeof c);
    char err[512];
    FZ_CHECK(cdr_db_open(":memory:", &c.db, err, sizeof err) == CDR_OK);
    cdr_engine_opts eo;
    cdr_engine_opts_init(&eo);
    if (sel & 1) {
        eo.mem_budget = 4096;
        eo.tmpdir = "/tmp";
    }
    if (sel & 4)
        eo.month = 2026 * 12 + 9;
    FZ_CHECK(cdr_engine_new((sel & 16) ? tariff_limits : tariff, &eo, &c.eng) == CDR_OK);
    FZ_CHECK(cdr_engine_set_file(c.eng, 0, path) == CDR_OK);

    cdr_db_run_info info = {1, "fuzz", "fuzz_run", "tariff"};
    int64_t run_id = 0, file_id = 0;
    FZ_CHECK(cdr_db_begin_run(c.db, &info, &run_id) == CDR_OK);
    FZ_CHECK(cdr_db_file_start(c.db, 0, path, &file_id) == CDR_OK);

    cdr_reader_opts ro;
    cdr_reader_opts_init(&ro);
    ro.want_sha256 = 1;
    ro.threads = (sel & 2) ? 2 : 1;
    ro.no_fast_path = (sel & 8) != 0;
    cdr_file_stats st;
    cdr_err e = cdr_read_file(path, 0, &ro, on_row, on_reject, &c, &st);
    FZ_CHECK(st.rows_read == st.rows_accepted + st.rows_rejected);
    if (e != CDR_OK)
        cdr_engine_exclude_file(c.eng, 0);
    FZ_CHECK(cdr_db_file_finish(c.db, file_id, &st) == CDR_OK);

    cdr_engine_sink sink = {.on_record = on_record, .on_finding = on_finding, .on_candidate = on_candidate, .user = &c};
    cdr_engine_totals tot;
    cdr_err fe = cdr_engine_finish(c.eng, &sink, &tot);
    FZ_CHECK(fe == CDR_OK);
    FZ_CHECK(tot.findings == c.findings && tot.candidates == c.candidates);
    FZ_CHECK(tot.overcharge == c.overcharge && tot.refund == c.refund);
    FZ_CHECK(tot.leakage == c.leakage);
    if (tot.refund != CDR_MONEY_TOTAL_OVER)
        FZ_CHECK(tot.refund == 2 * tot.overcharge);
    if (e == CDR_OK)
        FZ_CHECK(tot.records + tot.out_of_scope == st.rows_accepted);

    cdr_db_run_end end = {c.rejects ? CDR_E_REJECTS : CDR_OK, tot.unrated, 2};
    FZ_CHECK(cdr_db_commit_run(c.db, &end) == CDR_OK);
    cdr_db_totals dt;
    FZ_CHECK(cdr_db_run_totals(c.db, run_id, &dt) == CDR_OK);
    FZ_CHECK(dt.candidates == c.candidates && dt.refund == c.refund);
    FZ_CHECK(dt.overcharge == c.overcharge && dt.leakage == c.leakage);
    FZ_CHECK(dt.rows_rejected == st.rows_rejected);
    FZ_CHECK(cdr_db_check(c.db) == CDR_OK);

    cdr_engine_free(c.eng);
    cdr_db_close(c.db);
    unlink(path);
    return 0;
}
