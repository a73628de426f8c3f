/* cdrecon CLI — one option parser for every command, driven by each command's option table. */
#ifndef CDRECON_CLI_OPTS_H
#define CDRECON_CLI_OPTS_H

#include <stdio.h>

#include "cdrecon/engine.h"
#include "cli.h"

/* An option of a command. A value option is given as `--name VALUE` and,
 * unless CLI_OPT_NOEQ, as `--name=VALUE`; a flag only as `--name` (or its
 * short form `-x`). The help line is "  --name METAVAR   help"; a '\n' in
 * help continues it on the next line, indented under the first. */
enum { CLI_OPT_VALUE = 1, CLI_OPT_NOEQ = 2 };
typedef struct cli_opt {
    const char *name;    /* "--tariff" */
    char short_name;     /* 'q' for -q, or 0 */
    unsigned flags;      /* CLI_OPT_VALUE, CLI_OPT_NOEQ */
    const char *metavar; /* "DIR" (value options) */
    const char *help;
    int id;              /* what cli_args_next returns for it (> 0) */
} cli_opt;

/* How a command's arguments are read besides its options. */
enum {
    CLI_ARGS_POS_STOPS = 1, /* the first positional argument ends the options */
    CLI_ARGS_DASH_OPT = 2,  /* "-x" is an option (unknown unless a short one); else a file */
    CLI_ARGS_NO_POS = 4,    /* no positional arguments: "unknown argument X" */
};

/* A command: its usage lines (each "cdrecon ..."; several separated by
 * '\n'), what it does, its option tables (NULL-terminated: its own, then
 * the common ones it takes) and the text after the options (exit status).
 * `cdrecon help CMD` and `CMD --help` print it (cli_help). */
typedef struct cli_spec {
    const char *name;  /* "scan", "cluster init" */
    const char *usage;
    const char *about;
    const cli_opt *const *tables;
    const char *tail;
    unsigned flags;    /* CLI_ARGS_* */
} cli_spec;

/* What cli_args_next returns besides an option's id. */
enum {
    CLI_ARG_END = 0,   /* no more arguments */
    CLI_ARG_POS = -1,  /* a positional argument: a.val */
    CLI_ARG_HELP = -2, /* -h/--help: the help was printed on stdout; exit 0 */
    CLI_ARG_ERR = -3,  /* unknown option or missing value, reported; exit CDR_E_USAGE */
};

/* The common options: declared once (id, help, value parser) and listed
 * in the tables of the commands that take them. --month means something
 * else in each command (the months reported, records kept, the month
 * compacted): each declares its own entry with CLI_O_MONTH, and
 * cli_month_value parses it. */
enum {
    CLI_O_TOLERANCE = 1000, CLI_O_MAX_DURATION, CLI_O_MEM, CLI_O_TMP, CLI_O_THREADS,
    CLI_O_PROFILE, CLI_O_TARIFF, CLI_O_QUIET, CLI_O_MONTH,
    CLI_O_MSISDN, CLI_O_DB, CLI_O_STORE, CLI_O_CLUSTER,
};
extern const cli_opt cli_engine_opts[];  /* --tolerance --max-duration --mem --tmp --threads */
extern const cli_opt cli_profile_opts[]; /* --profile FILE */
extern const cli_opt cli_tariff_opts[];  /* --tariff DIR */
extern const cli_opt cli_quiet_opts[];   /* --quiet, -q: print nothing but errors */
/* One subscriber's month (investigate, evidence): --msisdn N --month YYYY-MM
 * and where its records are: --db FILE, --store DIR or --cluster DIR. */
extern const cli_opt cli_subject_opts[];

typedef struct cli_args {
    const cli_spec *spec;
    int argc;
    char **argv;
    int i;          /* the next argument (after a CLI_ARG_POS: argv[i - 1] is a->val) */
    int only_pos;   /* after "--" (or the first positional, CLI_ARGS_POS_STOPS) */
    const char *val; /* the value of the option returned, or the positional argument */
    const char *arg; /* the option as given ("--out", "--out=x") */
} cli_args;

/* Arguments argv[1..argc-1] of the command spec (argv[0] its name). */
void cli_args_init(cli_args *a, const cli_spec *spec, int argc, char **argv);
/* The next argument: an option's id (a->val its value), CLI_ARG_POS,
 * CLI_ARG_HELP, CLI_ARG_ERR or CLI_ARG_END. */
int cli_args_next(cli_args *a);
/* The help generated from spec: usage, about, options, tail. */
void cli_help(const cli_spec *spec, FILE *fp);

/* The value of the common option id into eo (engine options) or *profile;
 * returns CDR_OK or the usage error, reported. */
int cli_engine_value(int id, const char *v, cdr_engine_opts *eo);
int cli_profile_value(const char *v, const char **profile);
/* --month YYYY-MM; CDR_OK or the usage error, reported. */
int cli_month_value(const char *v, cdr_month *m);

#endif
