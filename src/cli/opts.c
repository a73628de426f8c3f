/* cdrecon CLI — the option parser and help printer of every command, and the common options. */
#include <string.h>

#include "ingest.h"
#include "opts.h"

const cli_opt cli_engine_opts[] = {
    {"--tolerance", 0, CLI_OPT_VALUE, "YUAN",
     "differences up to this amount are not findings (default 0)", CLI_O_TOLERANCE},
    {"--max-duration", 0, CLI_OPT_VALUE, "S",
     "voice records longer than S seconds are flagged overlong (10800)", CLI_O_MAX_DURATION},
    {"--mem", 0, CLI_OPT_VALUE, "SIZE",
     "memory for grouping records before spilling to disk (default 1G)", CLI_O_MEM},
    {"--tmp", 0, CLI_OPT_VALUE, "DIR", "directory for spill files (default $TMPDIR or /tmp)",
     CLI_O_TMP},
    {"--threads", 0, CLI_OPT_VALUE, "N",
     "rating threads, 1 to 8 (default 2; results do not depend on it)", CLI_O_THREADS},
    {NULL, 0, 0, NULL, NULL, 0},
};

const cli_opt cli_profile_opts[] = {
    {"--profile", 0, CLI_OPT_VALUE, "FILE",
     "read the CDR files through an input profile: the operator's own\n"
     "layout mapped onto the contract's fields (docs/profiles.md)",
     CLI_O_PROFILE},
    {NULL, 0, 0, NULL, NULL, 0},
};

const cli_opt cli_tariff_opts[] = {
    {"--tariff", 0, CLI_OPT_VALUE, "DIR", "the tariff directory (docs/tariff.md)", CLI_O_TARIFF},
    {NULL, 0, 0, NULL, NULL, 0},
};

const cli_opt cli_quiet_opts[] = {
    {"--quiet", 'q', 0, NULL, "print nothing but errors", CLI_O_QUIET},
    {NULL, 0, 0, NULL, NULL, 0},
};

const cli_opt cli_subject_opts[] = {
    {"--msisdn", 0, CLI_OPT_VALUE, "N", "the subscriber (+86/0086/86 prefixes are removed)",
     CLI_O_MSISDN},
    {"--month", 0, CLI_OPT_VALUE, "YYYY-MM", "the bill month", CLI_O_MONTH},
    {"--db", 0, CLI_OPT_VALUE, "FILE",
     "the month to date from the month state of `cdrecon run`'s\n"
     "database (every file ingested so far), rated with the tariff it\n"
     "was last rated with (or --tariff)", CLI_O_DB},
    {"--store", 0, CLI_OPT_VALUE, "DIR", "the same from the month state directory itself",
     CLI_O_STORE},
    {"--cluster", 0, CLI_OPT_VALUE, "DIR",
     "the same from the shard of a sharded directory that holds\n"
     "the number (docs/cluster.md)", CLI_O_CLUSTER},
    {NULL, 0, 0, NULL, NULL, 0},
};

int cli_engine_value(int id, const char *v, cdr_engine_opts *eo)
{
    int64_t n;
    switch (id) {
    case CLI_O_TOLERANCE:
        if (cdr_money_parse(v, strlen(v), &eo->tolerance) != CDR_OK || eo->tolerance < 0)
            return cli_fail(CDR_E_USAGE, "bad --tolerance '%s' (yuan, e.g. 0.01)", v);
        break;
    case CLI_O_MAX_DURATION:
        if (cli_parse_i64(v, &eo->max_duration) != 0 || eo->max_duration < 0)
            return cli_fail(CDR_E_USAGE, "bad --max-duration '%s' (seconds)", v);
        break;
    case CLI_O_MEM:
        if (cli_parse_size(v, &eo->mem_budget) != 0)
            return cli_fail(CDR_E_USAGE, "bad --mem '%s' (e.g. 512M, 2G)", v);
        break;
    case CLI_O_TMP:
        if (*v) /* --tmp "": as without it */
            eo->tmpdir = v;
        break;
    case CLI_O_THREADS:
        if (cli_parse_i64(v, &n) != 0 || n < 1 || n > 8)
            return cli_fail(CDR_E_USAGE, "bad --threads '%s' (1 to 8)", v);
        eo->threads = (int)n;
        break;
    default:
        return cli_fail(CDR_E_USAGE, "option id %d is not an engine option", id);
    }
    return CDR_OK;
}

int cli_profile_value(const char *v, const char **profile)
{
    if (!*v)
        return cli_fail(CDR_E_USAGE, "--profile needs a profile file");
    if (*profile)
        return cli_fail(CDR_E_USAGE, "--profile is given twice");
    *profile = v;
    return CDR_OK;
}

int cli_month_value(const char *v, cdr_month *m)
{
    if (cdr_month_parse(v, strlen(v), m) != CDR_OK)
        return cli_fail(CDR_E_USAGE, "bad --month '%s' (want YYYY-MM)", v);
    return CDR_OK;
}

void cli_args_init(cli_args *a, const cli_spec *spec, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->spec = spec;
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
}

/* The option of spec named by s (up to n bytes: "--name" of "--name=v"),
 * or of the short form -c; NULL if none. */
static const cli_opt *find(const cli_spec *spec, const char *s, size_t n, char c)
{
    for (const cli_opt *const *t = spec->tables; *t; t++)
        for (const cli_opt *o = *t; o->name; o++)
            if (c ? o->short_name == c : strlen(o->name) == n && !memcmp(o->name, s, n))
                return o;
    return NULL;
}

static int unknown(const char *s)
{
    cli_fail(CDR_E_USAGE, "unknown option %s", s);
    return CLI_ARG_ERR;
}

static int positional(cli_args *a, const char *s)
{
    if (a->spec->flags & CLI_ARGS_NO_POS) {
        cli_fail(CDR_E_USAGE, "unknown argument %s", s);
        return CLI_ARG_ERR;
    }
    if (a->spec->flags & CLI_ARGS_POS_STOPS)
        a->only_pos = 1;
    a->val = s;
    return CLI_ARG_POS;
}

/* "--name", "--name VALUE", "--name=VALUE" */
static int long_option(cli_args *a, const char *s)
{
    const char *eq = strchr(s, '=');
    const cli_opt *o = find(a->spec, s, eq ? (size_t)(eq - s) : strlen(s), 0);
    if (!o || (eq && (!(o->flags & CLI_OPT_VALUE) || (o->flags & CLI_OPT_NOEQ))))
        return unknown(s);
    if (!(o->flags & CLI_OPT_VALUE))
        return o->id;
    if (eq) {
        a->val = eq + 1;
        return o->id;
    }
    if (a->i >= a->argc) {
        cli_err("option %s needs a value", o->name);
        return CLI_ARG_ERR;
    }
    a->val = a->argv[a->i++];
    return o->id;
}

int cli_args_next(cli_args *a)
{
    if (a->i >= a->argc)
        return CLI_ARG_END;
    const char *s = a->argv[a->i++];
    a->arg = s;
    a->val = NULL;
    if (a->only_pos)
        return positional(a, s);
    if (!strcmp(s, "--")) {
        a->only_pos = 1;
        return cli_args_next(a);
    }
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
        cli_help(a->spec, stdout);
        return CLI_ARG_HELP;
    }
    if (s[0] == '-' && s[1] == '-')
        return long_option(a, s);
    if (s[0] == '-' && s[1] && !s[2]) {
        const cli_opt *o = find(a->spec, NULL, 0, s[1]);
        if (o)
            return o->id; /* (short forms are flags) */
    }
    if (s[0] == '-' && s[1] && (a->spec->flags & CLI_ARGS_DASH_OPT))
        return unknown(s);
    return positional(a, s);
}

/* The help of one option: "  --name META" padded, then its help, each '\n'
 * of it continued under the first line. */
static void help_line(const cli_opt *o, FILE *fp)
{
    char left[64];
    if (o->short_name)
        snprintf(left, sizeof left, "-%c, %s", o->short_name, o->name);
    else
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
    if (strlen(left) <= 17) /* (two spaces at least: tools/gen-man.py splits there) */
        fprintf(fp, "  %-18s ", left);
    else
        fprintf(fp, "  %s  ", left);
    for (const char *h = o->help; *h; h++) {
        fputc(*h, fp);
        if (*h == '\n')
            fprintf(fp, "%21s", "");
    }
    fputc('\n', fp);
}

void cli_help(const cli_spec *spec, FILE *fp)
{
    const char *u = spec->usage;
    for (int first = 1; *u; first = 0) {
        size_t n = strcspn(u, "\n");
        fprintf(fp, "%s%.*s\n", first ? "usage: " : "       ", (int)n, u);
        u += n + (u[n] == '\n');
    }
    fputs(spec->about, fp);
    fputs("options:\n", fp);
    for (const cli_opt *const *t = spec->tables; *t; t++)
        for (const cli_opt *o = *t; o->name; o++) {
            int seen = 0; /* a name in two tables is listed once: the first */
            for (const cli_opt *const *p = spec->tables; p <= t && !seen; p++)
                for (const cli_opt *q = *p; q->name && q != o && !seen; q++)
                    seen = !strcmp(q->name, o->name);
            if (!seen)
                help_line(o, fp);
        }
    fprintf(fp, "  -h, --help         this help\n");
    fputs(spec->tail, fp);
}
