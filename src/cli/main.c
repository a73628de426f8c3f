/* cdrecon — command-line entry point: one table of subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cdrecon/version.h"
#include "cli.h"

const char *cli_cmd = "cdrecon";
int cli_reported;

static const struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"scan", cmd_scan, "read and validate CDR files; per-file counts and rejects"},
    {"check-tariff", cmd_check_tariff, "validate a tariff directory and summarise it"},
    {"check-profile", cmd_check_profile, "check an input profile; show a file's first rows through it"},
    {"rate", cmd_rate, "rebuild every record's charge from the tariff"},
    {"run", cmd_run, "nightly job: re-rate, compare, write findings and refund candidates"},
    {"investigate", cmd_investigate, "one number's month as a statement"},
    {"evidence", cmd_evidence, "evidence pack for a complaint reply"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "list commands, or help for one: cdrecon help COMMAND"},
};

void cli_err(const char *fmt, ...)
{
    va_list ap;
    cli_reported = 1;
    fprintf(stderr, "cdrecon: %s: ", cli_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_fail(cdr_err e, const char *fmt, ...)
{
    va_list ap;
    cli_reported = 1;
    fprintf(stderr, "cdrecon: %s: ", cli_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s [%s]\n", cdr_strerror(e), cdr_errname(e));
    return (int)e;
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("cdrecon %s (data contract v%d)\n", CDRECON_VERSION, CDRECON_CONTRACT_VERSION);
    return CDR_OK;
}

int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            if (strcmp(argv[1], commands[i].name) == 0) {
                char *av[] = {argv[1], "--help", NULL};
                cli_cmd = commands[i].name;
                return commands[i].fn(2, av);
            }
        cli_err("no such command: %s", argv[1]);
        return CDR_E_USAGE;
    }
    printf("usage: cdrecon COMMAND [OPTIONS] [FILES...]\n\n"
           "Re-rates mobile call/SMS/data records from the tariff and finds billing\n"
           "errors that the operator refunds twice (\"billing error, double refund\").\n\n"
           "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        printf("  %-13s %s\n", commands[i].name, commands[i].summary);
    printf("\nexit status: 0 ok; see docs/exit-codes.md for every code.\n");
    return CDR_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(1, argv);
        return CDR_E_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(1, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli_cmd = commands[i].name;
            int rc = commands[i].fn(argc - 1, argv + 1);
            /* Every failure says something: a command that failed without a
             * message (an allocation failing early, say) gets the generic one. */
            if (rc != CDR_OK && rc != CDR_E_REJECTS && rc != CDR_E_ALREADY && !cli_reported)
                fprintf(stderr, "cdrecon: %s: %s [%s]\n", cli_cmd, cdr_strerror((cdr_err)rc),
                        cdr_errname((cdr_err)rc));
            return rc;
        }
    fprintf(stderr, "cdrecon: unknown command '%s' (try: cdrecon help)\n", argv[1]);
    return CDR_E_USAGE;
}
