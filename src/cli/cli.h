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

/* "cdrecon: <cmd>: message\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print an error code with its message: "cdrecon: <what>: <strerror> [CDR_E_X]". */
int cli_fail(cdr_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern const char *cli_cmd; /* the running subcommand's name */
extern int cli_reported;    /* set once an error message was printed */

#endif
