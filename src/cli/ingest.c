/* cdrecon CLI — shared plumbing: option values, reading inputs into the engine. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

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

/* A long option "--name VALUE" or "--name=VALUE"; advances *i. */
const char *cli_optval(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        cli_err("option %s needs a value", name);
        return "";
    }
    (*i)++;
    return argv[*i];
}

int cli_engine_option(int argc, char **argv, int *i, cdr_engine_opts *eo, int *rc)
{
    const char *v;
    *rc = CDR_OK;
    if ((v = cli_optval(argc, argv, i, "--tolerance"))) {
        if (cdr_money_parse(v, strlen(v), &eo->tolerance) != CDR_OK || eo->tolerance < 0)
            *rc = cli_fail(CDR_E_USAGE, "bad --tolerance '%s' (yuan, e.g. 0.01)", v);
    } else if ((v = cli_optval(argc, argv, i, "--max-duration"))) {
        if (cli_parse_i64(v, &eo->max_duration) != 0 || eo->max_duration < 0)
            *rc = cli_fail(CDR_E_USAGE, "bad --max-duration '%s' (seconds)", v);
    } else if ((v = cli_optval(argc, argv, i, "--mem"))) {
        if (cli_parse_size(v, &eo->mem_budget) != 0)
            *rc = cli_fail(CDR_E_USAGE, "bad --mem '%s' (e.g. 512M, 2G)", v);
    } else if ((v = cli_optval(argc, argv, i, "--tmp"))) {
        eo->tmpdir = v;
    } else if ((v = cli_optval(argc, argv, i, "--threads"))) {
        int64_t n;
        if (cli_parse_i64(v, &n) != 0 || n < 1 || n > 8)
            *rc = cli_fail(CDR_E_USAGE, "bad --threads '%s' (1 to 8)", v);
        else
            eo->threads = (int)n;
    } else {
        return 0;
    }
    return 1;
}

int cli_profile_option(int argc, char **argv, int *i, const char **path, int *rc)
{
    const char *v = cli_optval(argc, argv, i, "--profile");
    *rc = CDR_OK;
    if (!v)
        return 0;
    if (!*v) /* (a missing value was reported by cli_optval) */
        *rc = cli_reported ? CDR_E_USAGE : cli_fail(CDR_E_USAGE, "--profile needs a profile file");
    else if (*path)
        *rc = cli_fail(CDR_E_USAGE, "--profile is given twice");
    *path = v;
    return 1;
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
    if (e != CDR_OK)
        cli_err("%s", b->err);
    return e;
}

cdr_tariff *cli_bgtariff_take(cli_bgtariff *b)
{
    if (cli_bgtariff_ready(b) != CDR_OK)
        return NULL;
    cdr_tariff *t = b->t;
    b->t = NULL;
    return t;
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
        cdr_read_file(files[i], (uint32_t)i, &ro, in->engine ? on_row : NULL, on_reject, &c, st);
        if (c.err == CDR_E_INTERRUPTED && in->tariff && cli_bgtariff_failed(in->tariff))
            return c.err;
        if (c.err != CDR_OK) {
            cli_err("%s: %s%s%s", files[i], cdr_strerror(c.err),
                    in->engine && *cdr_engine_errmsg(in->engine) ? ": " : "",
                    in->engine ? cdr_engine_errmsg(in->engine) : "");
            return c.err;
        }
        if (st->status != CDR_OK) {
            cli_err("%s: %s", files[i], st->message[0] ? st->message : cdr_strerror(st->status));
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
