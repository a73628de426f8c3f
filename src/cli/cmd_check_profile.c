/*
 * cdrecon check-profile — validate an input profile and show what it does:
 * how each contract field is built, and (with FILE) the first rows of an
 * operator's file as the contract fields they become. How a user writes a
 * profile by trial (docs/profiles.md).
 *
 *   cdrecon check-profile [--rows N] [--unmasked] PROFILE [FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/reader.h"
#include "ingest.h"
#include "opts.h"
#include "progress.h"

enum { O_ROWS = 1, O_UNMASKED };
static const cli_opt check_profile_opts[] = {
    {"--rows", 0, CLI_OPT_VALUE, "N", "rows of FILE to show (default 10)", O_ROWS},
    {"--unmasked", 0, 0, NULL, "show phone numbers in full (default: 138****1234)", O_UNMASKED},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const check_profile_tables[] = {check_profile_opts, NULL};
static const cli_spec check_profile_spec = {
    "check-profile",
    "cdrecon check-profile [--rows N] [--unmasked] PROFILE [FILE]",
    "Check an input profile (docs/profiles.md) and show how it builds each of the\n"
    "contract's fields from the operator's columns. With FILE (.csv, .gz or - for\n"
    "stdin), read its first N rows through the profile and show each one as the\n"
    "contract fields it becomes, or why it is rejected or skipped.\n",
    check_profile_tables,
    "exit: 0 ok; 17 the profile is refused (the message names its line); 4 FILE's\n"
    "header does not fit the profile; 9 some of the rows shown were rejected; other\n"
    "codes: docs/exit-codes.md\n",
    0,
};

typedef struct cp_ctx {
    uint64_t shown, max, acc, rej, skip;
    int unmasked;
} cp_ctx;

static const char *num(const cp_ctx *c, const char *p, size_t n, char *buf, size_t cap)
{
    if (n >= cap)
        n = cap - 1;
    if (c->unmasked) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        return buf;
    }
    cdr_number_mask(p, n, buf);
    return buf;
}

/* A text value for the terminal: control bytes as '?', at most 200 bytes. */
static void put_text(const char *label, const char *p, size_t n)
{
    if (n == 0) {
        printf("  %s\n", label);
        return;
    }
    printf("  %-12s ", label);
    for (size_t i = 0; i < n && i < 200; i++)
        putchar((unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i]);
    if (n > 200)
        fputs("...", stdout);
    putchar('\n');
}

static void put_i64(const char *label, int64_t v)
{
    if (v < 0)
        printf("  %s\n", label);
    else
        printf("  %-12s %lld\n", label, (long long)v);
}

static int on_row(const cdr_row *r, void *user)
{
    cp_ctx *c = user;
    char b[256], t[32];
    c->acc++;
    printf("line %llu (offset %llu): accepted\n", (unsigned long long)r->line,
           (unsigned long long)r->offset);
    put_text("record_id", r->record_id.p, r->record_id.n);
    printf("  %-12s %s\n", "msisdn", num(c, r->msisdn.p, r->msisdn.n, b, sizeof b));
    printf("  %-12s %s\n", "service", cdr_service_name(r->service));
    printf("  %-12s %s\n", "direction", cdr_direction_name(r->direction));
    if (r->service == CDR_SVC_VOICE || r->service == CDR_SVC_SMS)
        printf("  %-12s %s\n", "peer", num(c, r->peer.p, r->peer.n, b, sizeof b));
    else
        put_text("peer", r->peer.p, r->peer.n);
    cdr_time_format(r->start, t);
    printf("  %-12s %s\n", "start_time", t);
    put_i64("duration_s", r->duration_s);
    put_i64("bytes", r->bytes);
    put_i64("sms_chars", r->sms_chars);
    put_text("sms_ref", r->sms_ref.p, r->sms_ref.n);
    put_i64("sms_part", r->sms_part ? r->sms_part : -1);
    put_i64("sms_parts", r->sms_parts ? r->sms_parts : -1);
    put_text("call_id", r->call_id.p, r->call_id.n);
    put_i64("partial_seq", r->partial_seq ? r->partial_seq : -1);
    cdr_money_format(r->billed, 2, b);
    printf("  %-12s %s\n", "billed", b);
    if (r->n_extra) {
        size_t cap = cdr_row_extras_size(r);
        char *x = malloc(cap), *m = malloc(cap + 1);
        if (x && m) {
            x[cdr_row_extras_join(r, x)] = '\0';
            const char *shown = c->unmasked ? x : cli_mask_digits(x, m, cap + 1);
            put_text("unknown", shown, strlen(shown));
        }
        free(x);
        free(m);
    }
    return ++c->shown >= c->max;
}

/* A row rejected or skipped: its line, "rejected: " or not, and why. */
static int show_reject(cp_ctx *c, const cdr_reject *j, const char *what)
{
    char m[700];
    printf("line %llu (offset %llu): %s%s\n", (unsigned long long)j->line,
           (unsigned long long)j->offset, what,
           c->unmasked ? j->reason : cli_mask_digits(j->reason, m, sizeof m));
    return ++c->shown >= c->max;
}

static int on_reject(const cdr_reject *j, void *user)
{
    cp_ctx *c = user;
    c->rej++;
    return show_reject(c, j, "rejected: ");
}

static int on_skip(const cdr_reject *j, void *user)
{
    cp_ctx *c = user;
    c->skip++;
    return show_reject(c, j, "");
}

int cmd_check_profile(int argc, char **argv)
{
    const char *ppath = NULL, *file = NULL;
    cp_ctx c = {0, 10, 0, 0, 0, 0};
    int rc = CDR_OK;
    cli_args args;
    cli_args_init(&args, &check_profile_spec, argc, argv);
    for (int id; (id = cli_args_next(&args)) != CLI_ARG_END;) {
        int64_t n;
        switch (id) {
        case CLI_ARG_HELP: return CDR_OK;
        case CLI_ARG_ERR: return CDR_E_USAGE;
        case O_ROWS:
            if (cli_parse_i64(args.val, &n) != 0 || n < 1 || n > 1000000)
                return cli_fail(CDR_E_USAGE, "bad --rows '%s' (1 to 1000000)", args.val);
            c.max = (uint64_t)n;
            break;
        case O_UNMASKED: c.unmasked = 1; break;
        case CLI_ARG_POS:
            if (file) {
                cli_help(&check_profile_spec, stderr);
                return cli_fail(CDR_E_USAGE, "one PROFILE and at most one FILE");
            }
            *(ppath ? &file : &ppath) = args.val;
            break;
        }
    }
    if (!ppath) {
        cli_help(&check_profile_spec, stderr);
        return cli_fail(CDR_E_USAGE, "no PROFILE given");
    }
    cdr_profile *p = NULL;
    if ((rc = cli_profile_load(ppath, &p)) != CDR_OK)
        return rc;
    char hex[65], d[600];
    cdr_sha256_hex(cdr_profile_sha256(p), hex);
    printf("profile %s: ok (sha256 %s)\n", ppath, hex);
    cdr_profile_describe_layout(p, d, sizeof d);
    printf("layout: %s\n", d);
    for (int f = 0; f < CDR_PF__COUNT; f++) {
        cdr_profile_describe(p, (cdr_pfield)f, d, sizeof d);
        if (d[0] || f <= CDR_PF_BILLED)
            printf("  %-12s %s\n", cdr_pfield_name((cdr_pfield)f), d[0] ? d : "(not mapped)");
    }
    if (file) {
        printf("%s: the first %llu rows through the profile\n", file, (unsigned long long)c.max);
        cdr_reader_opts o;
        cdr_reader_opts_init(&o);
        o.profile = p;
        o.on_skip = on_skip;
        cdr_file_stats st;
        cdr_err e = cdr_read_file(file, 0, &o, on_row, on_reject, &c, &st);
        if (e != CDR_OK && e != CDR_E_INTERRUPTED) {
            char m[600];
            rc = cli_fail(e, "%s: %s", file,
                          c.unmasked ? st.message : cli_mask_digits(st.message, m, sizeof m));
        } else {
            printf("%s: %llu read, %llu accepted, %llu rejected, %llu skipped%s\n", file,
                   (unsigned long long)st.rows_read, (unsigned long long)st.rows_accepted,
                   (unsigned long long)st.rows_rejected, (unsigned long long)st.rows_skipped,
                   e == CDR_E_INTERRUPTED ? " (stopped after the rows shown)" : "");
            rc = st.rows_rejected ? CDR_E_REJECTS : CDR_OK;
        }
    }
    cdr_profile_free(p);
    if (fflush(stdout) != 0)
        return cli_fail(CDR_E_IO, "cannot write standard output");
    return rc;
}
