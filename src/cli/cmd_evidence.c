/* PLACEHOLDER: replaced by the real subcommand. Must not ship. */
#include "cli.h"
int cmd_evidence(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_err("not implemented yet");
    return CDR_E_INTERNAL;
}
