/* cdrecon — command-line entry point: one table of subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdrecon/reader.h"
#include "cdrecon/textsafe.h"
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
    {"compact", cmd_compact, "merge a month's nightly segments of the month state into one"},
    {"split", cmd_split, "route CDR files to the shards of a sharded directory (map stage)"},
    {"cluster", cmd_cluster, "a sharded directory: init, report (the night over all shards), shard"},
    {"report", cmd_report, "the month at a glance: one HTML page from the database"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "list commands, or help for one: cdrecon help COMMAND"},
};

/* Every message goes out escaped (cdr_text_escape): a file name, a record
 * id or a tariff name with ESC or BEL bytes must not drive the terminal. */
static void report(const char *fmt, va_list ap, const char *tail)
{
    char msg[2048], out[4 * sizeof msg];
    int k = vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof msg ? (size_t)k : sizeof msg - 1;
    cdr_text_escape(msg, n, out, sizeof out);
    fprintf(stderr, "cdrecon: %s: %s%s\n", cli_cmd, out, tail);
}

void cli_err(const char *fmt, ...)
{
    va_list ap;
    cli_reported = 1;
    va_start(ap, fmt);
    report(fmt, ap, "");
    va_end(ap);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap, "");
    va_end(ap);
}

int cli_fail(cdr_err e, const char *fmt, ...)
{
    va_list ap;
    char tail[256];
    cli_reported = 1;
    snprintf(tail, sizeof tail, ": %s [%s]", cdr_strerror(e), cdr_errname(e));
    va_start(ap, fmt);
    report(fmt, ap, tail);
    va_end(ap);
    return (int)e;
}

size_t cli_tty_escape(const char *s, size_t n, char *buf)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t k = cdr_utf8_len(p + i, n - i, &cp);
        if (k && (!cdr_char_unsafe(cp) || cp == '\t' || cp == '\n' || cp == '\r')) {
            memcpy(buf + o, p + i, k);
            o += k;
        } else {
            if (!k)
                k = 1;
            o += cdr_text_escape((const char *)p + i, k, buf + o, 4 * k + 1);
        }
        i += k;
    }
    buf[o] = '\0';
    return o;
}

double cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cli_esc(const char *s, char *buf, size_t cap)
{
    cdr_text_escape(s ? s : "", s ? strlen(s) : 0, buf, cap);
    return buf;
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

/* The environment is the command line's to read, never the library's: what
 * a variable chooses is passed on through the public API. The other
 * variables the CLI reads: TMPDIR (cli_engine_opts_init, evidence's PDF
 * printing), PATH and CDRECON_CHROMIUM (evidence). */
static void from_environment(void)
{
    /* the gzip inflate implementation: zlib with CDRECON_INFLATE=zlib
     * (docs/cdr-format.md "Decompression engines") */
    cdr_reader_set_inflate(cdr_inflate_from_name(getenv("CDRECON_INFLATE")));
}

int main(int argc, char **argv)
{
    from_environment();
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
