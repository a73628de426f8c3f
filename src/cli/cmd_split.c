/*
 * cdrecon split — the route (map) stage of a sharded night (docs/cluster.md).
 *
 *   cdrecon split --cluster DIR [--mem SIZE] [--profile FILE] [--quiet] FILES...
 *
 * Each file is read and checked exactly as `run` reads it (through the
 * input profile, if given: split is the stage that reads the operator's
 * files, so the pieces hold records already mapped onto the contract's
 * fields and `run --shard` needs no profile); its records go
 * to their shards' incoming areas as pieces (with their origin: file name
 * as given, line, byte offset) and its rejected rows to DIR/routed/SHA.
 * rejects. A file whose bytes were routed before is skipped (its SHA-256,
 * hashed first when a routed file has its size); a file whose content was
 * routed before (a recompressed copy) is recorded as such and its records
 * dropped. A file is routed whole or not at all: its pieces take their
 * names, then its marker DIR/routed/SHA.done is written (with the profile's
 * path and SHA-256, which the shard's run records for the file).
 *
 * Exit: 0 when every file was routed or skipped (rejected rows are the
 * report's business: they do not fail the stage); else the first failed
 * file's code, the others being routed all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/cluster.h"
#include "cdrecon/filehash.h"
#include "cdrecon/outcsv.h"
#include "cdrecon/outdir.h"
#include "cdrecon/reader.h"
#include "cli.h"
#include "ingest.h"
#include "opts.h"
#include "progress.h"

enum { O_MEM = 1, O_QUIET };
static const cli_opt split_opts[] = {
    {"--cluster", 0, CLI_OPT_VALUE, "DIR", "the sharded directory (cdrecon cluster init)",
     CLI_O_CLUSTER},
    /* not the engine's --mem: a smaller default, at least 1M */
    {"--mem", 0, CLI_OPT_VALUE, "SIZE", "memory for the shards' buffers (default 64M)", O_MEM},
    /* not the common --quiet: split prints nothing else, and has no -q */
    {"--quiet", 0, 0, NULL, "no line per file", O_QUIET},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const split_tables[] = {split_opts, cli_profile_opts, NULL};
static const cli_spec split_spec = {
    "split",
    "cdrecon split --cluster DIR [--mem SIZE] [--profile FILE] [--quiet] FILES...",
    "The route stage of a sharded night: read CDR files (checked exactly as `run`\n"
    "checks them) and write each record to its shard's incoming area under DIR.\n"
    "A file routed before (same bytes, or same content) is skipped. With --profile,\n"
    "the shards' runs need none. The options come before the files.\n",
    split_tables,
    "exit: 0 every file routed or skipped; else the first failed file's code;\n"
    "17 the profile is refused (docs/exit-codes.md, docs/cluster.md).\n",
    CLI_ARGS_POS_STOPS | CLI_ARGS_DASH_OPT,
};

typedef struct split_ctx {
    cdr_pieces *pc;
    FILE *rej_fp;
    cdr_csvw *rej;
    cdr_err err;
} split_ctx;

static int on_row(const cdr_row *r, void *user)
{
    split_ctx *c = user;
    if (cdr_pieces_add(c->pc, r) != CDR_OK) {
        c->err = CDR_E_IO;
        return 1;
    }
    return 0;
}

static int on_reject(const cdr_reject *j, void *user)
{
    split_ctx *c = user;
    cdr_rejects_csv_row(c->rej, j); /* a failed write is sticky: seen at the end */
    return 0;
}

/* DIR/routed/sizes/SIZE exists: a routed file has this size. */
static int size_seen(const char *dir, uint64_t size)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/routed/sizes/%llu", dir, (unsigned long long)size);
    return access(p, F_OK) == 0;
}

static cdr_err size_note(const char *dir, uint64_t size)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/routed/sizes", dir);
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return CDR_E_IO;
    snprintf(p, sizeof p, "%s/routed/sizes/%llu", dir, (unsigned long long)size);
    int fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return CDR_E_IO;
    close(fd);
    return CDR_OK;
}

typedef struct split_tot {
    uint64_t routed, skipped, same, failed, records, read, accepted, rejected, skipped_rows;
} split_tot;

/* Before reading: path must be a regular file; when a routed file had its
 * size, its SHA-256 (into pre, *prehashed set) says whether it was routed
 * already. 1 when the file is done with: *e is CDR_OK (skipped) or its
 * error, reported. */
static int already_routed(const char *dir, const char *path, uint8_t pre[32], int *prehashed,
                          int quiet, split_tot *tot, cdr_err *e)
{
    char err[1024], hex[65];
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        tot->failed++;
        *e = cli_fail(CDR_E_IO, "%s: %s", path, errno ? strerror(errno) : "not a regular file");
        return 1;
    }
    if (size_seen(dir, (uint64_t)sb.st_size)) {
        uint64_t sz;
        if (cdr_file_sha256(path, pre, &sz) != CDR_OK) {
            tot->failed++;
            *e = cli_fail(CDR_E_IO, "cannot read %s: %s", path, strerror(errno));
            return 1;
        }
        *prehashed = 1;
        cdr_sha256_hex(pre, hex);
        cdr_route_mark m;
        *e = cdr_route_mark_read(dir, hex, &m, err, sizeof err);
        if (*e == CDR_OK) {
            tot->skipped++;
            if (!quiet)
                cli_note("%s was already routed: skipped", path);
            return 1; /* (*e is CDR_OK) */
        }
        if (*e != CDR_E_NOTFOUND) {
            tot->failed++;
            *e = cli_fail(*e, "%s", err);
            return 1;
        }
    }
    return 0;
}

/* The file's rejects go to DIR/routed/.rejects.tmp.HOST.PID (its name in
 * rtmp), renamed when the file is routed. */
static cdr_err open_rejects_tmp(const char *dir, char *rtmp, size_t len, split_ctx *c)
{
    /* ".rejects.tmp.HOST.PID": unique on shared storage; what killed
     * splits of this host left is removed (cdr_cluster_tmp_tag) */
    char tag[96], stale[120];
    cdr_cluster_tmp_tag(tag, sizeof tag);
    snprintf(rtmp, len, "%s/routed", dir);
    snprintf(stale, sizeof stale, ".rejects.tmp.%.*s", (int)(strrchr(tag, '.') - tag + 1), tag);
    int dfd = open(rtmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        cdr_dir_remove_stale(dfd, stale);
        close(dfd);
    }
    snprintf(rtmp, len, "%s/routed/.rejects.tmp.%s", dir, tag);
    int fd = open(rtmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || !(c->rej_fp = fdopen(fd, "w")) ||
        cdr_csvw_open_stream(c->rej_fp, rtmp, &c->rej) != CDR_OK) {
        cdr_err e = cli_fail(CDR_E_IO, "cannot create %s: %s", rtmp, strerror(errno));
        if (fd >= 0 && !c->rej_fp)
            close(fd);
        return e;
    }
    return CDR_OK;
}

/* Commit the file's pieces (counts: records per shard) and its rejects
 * under its SHA-256, and say so unless quiet. */
static cdr_err commit_routed(const char *dir, uint32_t parts, split_ctx *c, cdr_route_mark *mk,
                             char *rtmp, uint64_t *counts, const cdr_file_stats *st,
                             const cdr_profile *prof, const char *path, int quiet,
                             split_tot *tot)
{
    cdr_err e;
    char rfin[4400];
    snprintf(mk->status, sizeof mk->status, "routed");
    if ((e = cdr_csvw_commit(c->rej)) != CDR_OK) {
        cli_fail(e, "%s", cdr_csvw_message(c->rej));
        tot->failed++;
        return e;
    }
    if ((e = cdr_pieces_commit(c->pc, mk->sha256, counts)) != CDR_OK) {
        cli_fail(e, "%s", cdr_pieces_message(c->pc));
        tot->failed++;
        return e;
    }
    for (uint32_t k = 0; k < parts; k++) {
        mk->records += counts[k];
        mk->shards += counts[k] != 0;
    }
    snprintf(rfin, sizeof rfin, "%s/routed/%s.rejects", dir, mk->sha256);
    if (fsync(fileno(c->rej_fp)) != 0 || rename(rtmp, rfin) != 0) {
        e = cli_fail(CDR_E_IO, "cannot write %s: %s", rfin, strerror(errno));
        tot->failed++;
        return e;
    }
    rtmp[0] = '\0';
    tot->routed++;
    tot->records += mk->records;
    tot->read += st->rows_read;
    tot->accepted += st->rows_accepted;
    tot->rejected += st->rows_rejected;
    tot->skipped_rows += st->rows_skipped;
    if (!quiet) {
        char sk[64] = "";
        if (prof) /* read = accepted + rejected + skipped */
            snprintf(sk, sizeof sk, " + %llu skipped", (unsigned long long)st->rows_skipped);
        cli_note("%s: %llu rows read = %llu accepted + %llu rejected%s; %llu records "
                 "routed to %u shards",
                 path, (unsigned long long)st->rows_read,
                 (unsigned long long)st->rows_accepted, (unsigned long long)st->rows_rejected,
                 sk, (unsigned long long)mk->records, mk->shards);
    }
    return CDR_OK;
}

/* The marker of a file read: its name, hashes, profile and counts. */
static void fill_mark(cdr_route_mark *mk, const char *path, const cdr_file_stats *st,
                      const cdr_profile *prof)
{
    memset(mk, 0, sizeof *mk);
    snprintf(mk->name, sizeof mk->name, "%s", path);
    cdr_sha256_hex(st->sha256, mk->sha256);
    cdr_sha256_hex(st->content_sha256, mk->content_sha256);
    if (prof) {
        snprintf(mk->profile, sizeof mk->profile, "%s", cdr_profile_path(prof));
        cdr_sha256_hex(cdr_profile_sha256(prof), mk->profile_sha256);
    }
    mk->st = *st;
}

/* Route one file (through prof, when not NULL). */
static cdr_err split_file(const char *dir, uint32_t parts, size_t mem, const cdr_profile *prof,
                          const char *path, uint32_t idx, int quiet, split_tot *tot)
{
    char err[1024], rtmp[4400] = "";
    uint8_t pre[32];
    int prehashed = 0;
    cdr_err e;
    if (already_routed(dir, path, pre, &prehashed, quiet, tot, &e))
        return e;

    split_ctx c = {0};
    cdr_file_stats st;
    memset(&st, 0, sizeof st);
    if ((e = cdr_pieces_open(dir, parts, mem, &c.pc, err, sizeof err)) != CDR_OK)
        return cli_fail(e, "%s", err);
    if ((e = open_rejects_tmp(dir, rtmp, sizeof rtmp, &c)) != CDR_OK)
        goto out;
    cdr_reader_opts ro;
    cdr_reader_opts_init(&ro);
    ro.want_sha256 = !prehashed;
    ro.want_content_sha256 = 1;
    ro.profile = prof;
    cdr_read_file(path, idx, &ro, on_row, on_reject, &c, &st);
    if (prehashed) {
        memcpy(st.sha256, pre, 32);
        if (!st.gzip) {
            memcpy(st.content_sha256, pre, 32);
            st.has_content_sha256 = 1;
        }
    }
    if (c.err != CDR_OK || cdr_pieces_message(c.pc)[0]) {
        e = cli_fail(CDR_E_IO, "%s: %s", path, cdr_pieces_message(c.pc));
        tot->failed++;
        goto out;
    }
    if (st.status != CDR_OK) {
        char m[700];
        e = cli_fail(st.status, "%s: %s", path,
                     cli_mask_digits(st.message[0] ? st.message : cdr_strerror(st.status), m,
                                     sizeof m));
        tot->failed++;
        goto out;
    }
    cdr_route_mark mk;
    fill_mark(&mk, path, &st, prof);
    if (cdr_route_mark_read(dir, mk.sha256, &(cdr_route_mark){0}, err, sizeof err) == CDR_OK) {
        tot->skipped++; /* routed meanwhile by another task */
        if (!quiet)
            cli_note("%s was already routed: skipped", path);
        e = CDR_OK;
        goto out;
    }
    char owner[65];
    if ((e = cdr_route_claim_content(dir, mk.content_sha256, mk.sha256, owner, err,
                                     sizeof err)) != CDR_OK) {
        cli_fail(e, "%s", err);
        tot->failed++;
        goto out;
    }
    uint64_t *counts = calloc(parts, sizeof *counts);
    if (!counts) {
        e = CDR_E_NOMEM;
        goto out;
    }
    if (strcmp(owner, mk.sha256) != 0) {
        /* the same content as a file routed before: its records are not
         * taken twice; the marker makes a rerun skip it at once */
        snprintf(mk.status, sizeof mk.status, "same-content");
        snprintf(mk.same_as, sizeof mk.same_as, "%s", owner);
        cdr_pieces_abort(c.pc);
        tot->same++;
        if (!quiet)
            cli_note("%s has the content of a file routed before: skipped", path);
    } else {
        if ((e = commit_routed(dir, parts, &c, &mk, rtmp, counts, &st, prof, path, quiet,
                               tot)) != CDR_OK) {
            free(counts);
            goto out;
        }
    }
    free(counts);
    if (size_note(dir, st.size) != CDR_OK ||
        (e = cdr_route_mark_write(dir, &mk, err, sizeof err)) != CDR_OK) {
        e = cli_fail(e ? e : CDR_E_IO, "%s", e ? err : "cannot note the file's size");
        tot->failed++;
        goto out;
    }
    e = CDR_OK;
out:
    cdr_csvw_free(c.rej);
    if (c.rej_fp)
        fclose(c.rej_fp);
    if (rtmp[0])
        unlink(rtmp);
    cdr_pieces_free(c.pc);
    return e;
}

int cmd_split(int argc, char **argv)
{
    const char *dir = NULL, *profile_path = NULL;
    size_t mem = (size_t)64 << 20;
    int quiet = 0, i = 0, rc;
    cli_args args;
    cli_args_init(&args, &split_spec, argc, argv);
    for (int id; !i && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        switch (id) {
        case CLI_ARG_HELP: return CDR_OK;
        case CLI_ARG_ERR: return CDR_E_USAGE;
        case CLI_ARG_POS: i = args.i - 1; break; /* the files: the rest */
        case CLI_O_CLUSTER: dir = args.val; break;
        case O_MEM:
            if (cli_parse_size(args.val, &mem) != 0 || mem < ((size_t)1 << 20))
                return cli_fail(CDR_E_USAGE, "--mem: a size of at least 1M, e.g. 64M");
            break;
        case O_QUIET: quiet = 1; break;
        case CLI_O_PROFILE:
            if ((rc = cli_profile_value(args.val, &profile_path)) != CDR_OK)
                return rc;
            break;
        }
    }
    if (!i)
        i = argc;
    if (!dir)
        return cli_fail(CDR_E_USAGE, "--cluster DIR is required (cdrecon split --help)");
    for (int j = i; j < argc; j++)
        if (!strcmp(argv[j], "-"))
            return cli_fail(CDR_E_USAGE, "split reads files, not standard input: a file "
                            "is routed once, by the SHA-256 of its bytes");
    uint32_t parts;
    char err[1024];
    cdr_err e = cdr_cluster_parts(dir, &parts, err, sizeof err);
    if (e != CDR_OK)
        return cli_fail(e, "%s", err);
    /* the profile is checked before any file is read */
    cdr_profile *prof = NULL;
    if ((e = cli_profile_load(profile_path, &prof)) != CDR_OK)
        return e;
    split_tot tot = {0};
    cdr_err worst = CDR_OK;
    for (int j = i; j < argc; j++) {
        e = split_file(dir, parts, mem, prof, argv[j], (uint32_t)(j - i), quiet, &tot);
        if (e == CDR_E_NOMEM) {
            cdr_profile_free(prof);
            return e;
        }
        if (e != CDR_OK && worst == CDR_OK)
            worst = e;
    }
    if (!quiet) {
        char sk[64] = "";
        if (prof)
            snprintf(sk, sizeof sk, " + %llu skipped", (unsigned long long)tot.skipped_rows);
        printf("split: %llu files routed (%llu records; rows %llu read = %llu accepted + %llu "
               "rejected%s), %llu already routed, %llu same content as a routed file, %llu "
               "failed\n",
               (unsigned long long)tot.routed, (unsigned long long)tot.records,
               (unsigned long long)tot.read, (unsigned long long)tot.accepted,
               (unsigned long long)tot.rejected, sk, (unsigned long long)tot.skipped,
               (unsigned long long)tot.same, (unsigned long long)tot.failed);
    }
    cdr_profile_free(prof);
    return worst;
}
