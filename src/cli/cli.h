/* cdrecon command-line tool: shared declarations. Only the CLI prints or exits. */
#ifndef CDRECON_CLI_H
#define CDRECON_CLI_H

#include <stdio.h>
#include "cdrecon/common.h"

/* Each subcommand: argv[0] is the subcommand name. Returns a cdr_err,
 * which main() turns into the exit status. */
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_check_tariff(int argc, char **argv);
int cmd_check_profile(int argc, char **argv);
int cmd_rate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_investigate(int argc, char **argv);
int cmd_evidence(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* The month report (cmd_report.c, docs/report.md) of the months (n == 0:
 * the latest) from db, written as DIR/report.html through the output
 * directory od (a temporary file renamed at commit); its path printed on
 * stdout unless quiet. tariff_dir, t (a tariff loaded already), as_of may
 * be NULL. Returns a cdr_err (said on stderr). Used by `report` and
 * `run --report`. */
struct cdr_db;
struct cli_outdir;
struct cdr_tariff;
int cli_report_write(struct cdr_db *db, struct cli_outdir *od, const cdr_month *months,
                     size_t n, const char *db_path, const char *tariff_dir,
                     const struct cdr_tariff *t, const char *as_of, int quiet);

/* "cdrecon: <cmd>: message\n" on stderr. The message is escaped
 * (cdr_text_escape: control bytes and invalid UTF-8 as \xHH), so data in it
 * cannot drive the terminal; numbers in it are not masked (cli_mask_digits
 * does that for data that may hold phone numbers). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same without counting as the command's error report (notes, warnings,
 * rejects listed on stderr). */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print an error code with its message: "cdrecon: <what>: <strerror> [CDR_E_X]". */
int cli_fail(cdr_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s escaped for a terminal (cdr_text_escape) into buf; for text printed with
 * printf on stdout. cap >= 4 * strlen(s) + 1 holds all of it. */
const char *cli_esc(const char *s, char *buf, size_t cap);
/* For CSV or JSON going to a terminal (isatty): n bytes of s with every
 * unsafe character but TAB, LF and CR, and every invalid byte, as \xHH
 * (cdr_text_escape); buf holds 4 * n + 1 bytes. Returns the length. Output
 * to a file or a pipe is written as it is. */
size_t cli_tty_escape(const char *s, size_t n, char *buf);
/* Seconds on the monotonic clock, for timings and progress (main.c). */
double cli_now_s(void);
extern const char *cli_cmd; /* the running subcommand's name */
extern int cli_reported;    /* set once an error message was printed */

#endif
