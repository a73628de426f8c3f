/* cdrecon CLI — shared plumbing: value parsers, reading inputs into the engine. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "cdrecon/db.h"
#include "ingest.h"
#include "cdrecon/cluster.h"
#include "progress.h"

int cli_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1ULL << 10; end++; break;
    case 'm': case 'M': mul = 1ULL << 20; end++; break;
    case 'g': case 'G': mul = 1ULL << 30; end++; break;
    case '\0': break;
    default: return -1;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > (~0ULL) / mul)
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

void cli_engine_opts_init(cdr_engine_opts *eo)
{
    cdr_engine_opts_init(eo);
    const char *env = getenv("TMPDIR");
    if (env && *env)
        eo->tmpdir = env;
}

cdr_err cli_profile_load(const char *path, cdr_profile **out)
{
    char err[600];
    *out = NULL;
    if (!path)
        return CDR_OK;
    cdr_err e = cdr_profile_load(path, out, err, sizeof err);
    if (e != CDR_OK)
        cli_fail(e, "profile refused: %s", err);
    return e;
}

static void *bgtariff_main(void *arg)
{
    cli_bgtariff *b = arg;
    b->rc = cdr_tariff_load(b->dir, &b->t, b->err, sizeof b->err);
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

void cli_bgtariff_start(cli_bgtariff *b, const char *dir)
{
    memset(b, 0, sizeof *b);
    b->dir = dir;
    pthread_t *th = malloc(sizeof *th);
    if (th && pthread_create(th, NULL, bgtariff_main, b) == 0) {
        b->th = th;
        b->started = 1;
        return;
    }
    free(th);
    bgtariff_main(b); /* no thread: load now */
}

int cli_bgtariff_done(const cli_bgtariff *b)
{
    return !b->started || __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

int cli_bgtariff_failed(const cli_bgtariff *b)
{
    return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE) && b->rc != CDR_OK;
}

cdr_err cli_bgtariff_join(cli_bgtariff *b)
{
    if (b->started) {
        pthread_join(*(pthread_t *)b->th, NULL);
        free(b->th);
        b->th = NULL;
        b->started = 0;
    }
    return b->rc;
}

cdr_err cli_bgtariff_ready(cli_bgtariff *b)
{
    cdr_err e = cli_bgtariff_join(b);
    size_t dl = strlen(b->dir);
    /* the table's messages ("rates.csv:3: ...") say which directory */
    if (e != CDR_OK && strncmp(b->err, b->dir, dl) == 0 && b->err[dl] == ':')
        cli_err("%s", b->err);
    else if (e != CDR_OK)
        cli_err("tariff %s: %s", b->dir, b->err);
    return e;
}

cdr_tariff *cli_bgtariff_take(cli_bgtariff *b)
{
    if (cli_bgtariff_ready(b) != CDR_OK)
        return NULL;
    cdr_tariff *t = b->t;
    b->t = NULL;
    cli_tariff_warnings(t);
    return t;
}

void cli_tariff_warnings(const cdr_tariff *t)
{
    for (size_t i = 0; t && i < t->n_warnings; i++)
        cli_note("warning: tariff %s: %s", t->dir, t->warnings[i]);
}

typedef struct ing_ctx {
    cli_ingest *in;
    cdr_err err;
    uint32_t n;
} ing_ctx;

static int on_row(const cdr_row *r, void *user)
{
    ing_ctx *c = user;
    if ((++c->n & 0xffff) == 0 && c->in->tariff && cli_bgtariff_failed(c->in->tariff)) {
        c->err = CDR_E_INTERRUPTED; /* the caller reports the tariff's error */
        return 1;
    }
    cdr_err e = cdr_engine_add(c->in->engine, r);
    if (e != CDR_OK) {
        c->err = e;
        return 1;
    }
    return 0;
}

static int on_reject(const cdr_reject *r, void *user)
{
    ing_ctx *c = user;
    return c->in->on_reject ? c->in->on_reject(r, c->in->user) : 0;
}

cdr_err cli_ingest_files(cli_ingest *in, char **files, int nfiles)
{
    cdr_err worst = CDR_OK;
    for (int i = 0; i < nfiles; i++) {
        ing_ctx c = {in, CDR_OK, 0};
        cdr_file_stats *st = &in->stats[i];
        cdr_err e;
        if (in->skip && in->skip[i])
            continue;
        if (in->engine && (e = cdr_engine_set_file(in->engine, (uint32_t)i, files[i])) != CDR_OK)
            return e;
        if (in->on_file_start && (e = in->on_file_start((uint32_t)i, files[i], in->user)) != CDR_OK)
            return e;
        cdr_reader_opts ro = in->ro;
        if (in->hash)
            ro.want_sha256 = in->hash[i];
        (in->read_file ? in->read_file : cdr_read_file)(in->paths ? in->paths[i] : files[i],
                                                        (uint32_t)i, &ro,
                                                        in->engine ? on_row : NULL, on_reject,
                                                        &c, st);
        if (c.err == CDR_E_INTERRUPTED && in->tariff && cli_bgtariff_failed(in->tariff))
            return c.err;
        if (c.err != CDR_OK) {
            cli_err("%s: %s%s%s", files[i], cdr_strerror(c.err),
                    in->engine && *cdr_engine_errmsg(in->engine) ? ": " : "",
                    in->engine ? cdr_engine_errmsg(in->engine) : "");
            return c.err;
        }
        if (st->status == CDR_E_INTERRUPTED && !c.err)
            return CDR_E_INTERRUPTED; /* a callback (on_reject) stopped it: its owner says why */
        if (st->status != CDR_OK) {
            char m[600];
            cli_err("%s: %s", files[i],
                    cli_mask_digits(st->message[0] ? st->message : cdr_strerror(st->status), m,
                                    sizeof m));
            if (in->engine)
                cdr_engine_exclude_file(in->engine, (uint32_t)i);
            if (worst == CDR_OK)
                worst = st->status;
        }
        if (in->on_file_done && (e = in->on_file_done((uint32_t)i, files[i], st, in->user)) != CDR_OK)
            return e;
    }
    return worst;
}

/* ---- the month state, for investigate and evidence ---- */

cdr_err cli_state_open(cli_state_src *s, const char *db_path, const char *store_dir)
{
    char err[1024];
    cdr_err e;
    memset(s, 0, sizeof *s);
    if (store_dir) {
        snprintf(s->dir, sizeof s->dir, "%s", store_dir);
    } else {
        cdr_db *db = NULL;
        int found = 0;
        if ((e = cdr_db_open_readonly(db_path, &db, err, sizeof err)) != CDR_OK)
            return cli_fail(e, "cannot open database %s: %s", db_path, err);
        e = cdr_db_meta_get(db, "state_dir", s->dir, sizeof s->dir, &found);
        if (e != CDR_OK)
            cli_fail(e, "database %s: %s", db_path, cdr_db_message(db));
        cdr_db_close(db);
        if (e != CDR_OK)
            return e;
        if (!found)
            return cli_fail(CDR_E_NOTFOUND, "database %s has no month state: no run finished "
                            "in it", db_path);
        char rec[sizeof s->dir];
        snprintf(rec, sizeof rec, "%s", s->dir);
        if (cli_state_dir_resolve(db_path, rec, s->dir, sizeof s->dir) != 0)
            return cli_fail(CDR_E_IO, "cannot resolve the directory of %s", db_path);
    }
    if ((e = cdr_state_manifest_read(s->dir, &s->m, err, sizeof err)) != CDR_OK)
        return cli_fail(e == CDR_E_NOTFOUND ? CDR_E_IO : e, "month state: %s", err);
    if ((e = cdr_state_open(s->dir, (const char *const *)s->m.live, s->m.n_live, &s->st, err,
                            sizeof err)) != CDR_OK) {
        cdr_state_manifest_free(&s->m); /* (the caller closes only what opened) */
        return cli_fail(e, "month state %s: %s", s->dir, err);
    }
    return CDR_OK;
}

void cli_state_close(cli_state_src *s)
{
    cdr_state_close(s->st);
    cdr_state_manifest_free(&s->m);
    memset(s, 0, sizeof *s);
}

cdr_err cli_state_tariff(cli_state_src *s, const char *msisdn, cdr_month m, const char *given,
                         const cdr_engine_opts *eo, cdr_tariff **t, int *other)
{
    char err[1024];
    uint64_t records = 0;
    uint32_t tid = 0;
    *t = NULL;
    *other = 0;
    int r = cdr_state_submonth_info(s->st, msisdn, m, &records, &tid, err, sizeof err);
    if (r < 0)
        return cli_fail(CDR_E_PARSE, "month state: %s", err);
    const cdr_state_tariff *rec = NULL;
    for (size_t i = 0; r == 1 && i < s->m.n_tariffs; i++)
        if (s->m.tariffs[i].id == (int64_t)tid)
            rec = &s->m.tariffs[i];
    const char *dir = given ? given : rec ? rec->dir : NULL;
    if (!dir)
        return r == 1 ? cli_fail(CDR_E_USAGE, "the tariff of this month is not recorded: give "
                                 "--tariff DIR")
                      : CDR_E_NOTFOUND;
    cdr_err e = cdr_tariff_load(dir, t, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "tariff %s: %s", dir, err);
    if (rec) {
        uint8_t sha[32];
        char hex[65];
        cdr_rating_identity(*t, eo, sha); /* (with the options that change a rating) */
        cdr_sha256_hex(sha, hex);
        *other = strcmp(hex, rec->sha256) != 0;
    }
    return CDR_OK;
}

cdr_err cli_cluster_db(const char *cluster, const char *msisdn_arg, const char **db_path,
                       const char *store_path, char *buf, size_t len)
{
    char err[1024];
    uint32_t parts;
    cdr_str n;
    if (*db_path || store_path)
        return cli_fail(CDR_E_USAGE, "give --cluster DIR or --db FILE (or --store DIR)");
    cdr_err e = cdr_cluster_parts(cluster, &parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    if (!msisdn_arg || cdr_number_normalise(msisdn_arg, strlen(msisdn_arg), &n) != CDR_OK)
        return cli_fail(CDR_E_USAGE, "--msisdn is not a phone number (digits, optional +)");
    snprintf(buf, len, "%s/shard-%u/cdrecon.db", cluster, cdr_shard_of(n.p, n.n, parts));
    *db_path = buf;
    return CDR_OK;
}

char *cli_command_line(int argc, char **argv)
{
    size_t len = 16;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, "cdrecon");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}
