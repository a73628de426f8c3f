/*
 * cdrecon — output directories opened safely, and temporary files of killed
 * runs cleaned up.
 *
 * Every output of cdrecon (the CSV files, the store, the evidence pack) is
 * created relative to a directory descriptor opened once with
 * cdr_dir_open(): the name given on the command line is resolved once, a
 * symbolic link planted in its place afterwards changes nothing, and a
 * symbolic link given as the output directory itself is refused (`run --out
 * LINK` would otherwise write into the link's target, as root into /etc).
 */
#ifndef CDRECON_OUTDIR_H
#define CDRECON_OUTDIR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_DIR_CREATE 0x1u      /* create the directory and missing parents (mode 0755) */
#define CDR_DIR_FOLLOW_LAST 0x2u /* the last component may be a symbolic link (under the
                                    owner rule below), e.g. the directory of an output file */

/*
 * Open the directory `path` for creating files in it with openat().
 * The path is walked from "/" or "." one component at a time with
 * openat(O_NOFOLLOW | O_DIRECTORY): a symbolic link among the parent
 * directories is followed only if it is owned by the caller's effective uid
 * or by root (a link planted by another user in /tmp is refused); the last
 * component must not be a symbolic link (CDR_E_EXISTS, "is a symbolic link:
 * refused") unless CDR_DIR_FOLLOW_LAST, and must be a directory
 * (CDR_E_EXISTS, "exists and is not a directory"). With CDR_DIR_CREATE,
 * missing components are created (0755) and *created (may be NULL) tells
 * whether the last one was. Returns the descriptor (O_RDONLY | O_DIRECTORY
 * | O_CLOEXEC), or -1 with *e (CDR_E_USAGE, CDR_E_EXISTS, CDR_E_IO) and a
 * message naming the path and the OS reason in err.
 */
int cdr_dir_open(const char *path, unsigned flags, int *created, cdr_err *e, char *err,
                 size_t errlen);

/*
 * Remove what killed runs left in the directory dirfd: every entry named
 * PREFIX followed by a process id (decimal digits only) that is a regular
 * file or a symbolic link, whose process id is not this process's and
 * belongs to no live process (kill(pid, 0) fails with ESRCH). A temporary
 * file of a run that is still going (its process lives) is left alone.
 * Returns how many were removed; errors are ignored (a leftover that cannot
 * be removed now is tried again by the next run).
 */
int cdr_dir_remove_stale(int dirfd, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
