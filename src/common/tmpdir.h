/* cdrecon — where temporary files go (internal header). */
#ifndef CDRECON_TMPDIR_H
#define CDRECON_TMPDIR_H

#include <stdlib.h>

/* The directory for spill and index files: the caller's choice (--tmp),
 * else $TMPDIR, else /tmp. The engine's spill files and the store's spilled
 * index use the same rule. */
static inline const char *cdr_tmpdir(const char *dir)
{
    if (dir && *dir)
        return dir;
    const char *env = getenv("TMPDIR");
    return env && *env ? env : "/tmp";
}

#endif
