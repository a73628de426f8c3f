/* cdrecon — where temporary files go (internal header). */
#ifndef CDRECON_TMPDIR_H
#define CDRECON_TMPDIR_H

#include <stddef.h>

/* The directory for the engine's spill files: the caller's choice
 * (cdr_engine_opts.tmpdir), else /tmp. The library reads no environment
 * variable: the CLI passes --tmp, else $TMPDIR (cli_engine_opts_init). */
static inline const char *cdr_tmpdir(const char *dir)
{
    return dir && *dir ? dir : "/tmp";
}

#endif
