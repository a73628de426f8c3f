/* cdrecon — output directories opened safely; leftovers of killed runs
 * (include/cdrecon/outdir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/outdir.h"
#include "errmsg.h"
#include "grow.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

static int dfail(cdr_err *e, cdr_err code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int dfail(cdr_err *e, cdr_err code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cdr_vseterr(err, errlen, fmt, ap);
    va_end(ap);
    *e = code;
    return -1;
}

/* Open the directory `name` under `at` (shown as `shown` in messages)
 * without following a symbolic link, unless the link may be followed: not
 * the last component (or follow_last), and owned by us or by root. */
static int open_component(int at, const char *name, const char *shown, int create, int last,
                          int follow_last, cdr_err *e, char *err, size_t errlen)
{
    int fd = openat(at, name, DIR_FLAGS | O_NOFOLLOW);
    if (fd >= 0)
        return fd;
    if (errno == ENOENT && create) {
        if (mkdirat(at, name, 0755) != 0 && errno != EEXIST)
            return dfail(e, CDR_E_IO, err, errlen, "cannot create directory %s: %s", shown,
                         strerror(errno));
        fd = openat(at, name, DIR_FLAGS | O_NOFOLLOW);
        if (fd >= 0)
            return fd;
    }
    int en = errno;
    if (en == ELOOP || en == ENOTDIR) {
        struct stat st;
        if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            if (last && !follow_last)
                return dfail(e, CDR_E_EXISTS, err, errlen,
                             "%s is a symbolic link: refused (give the real directory)", shown);
            if (st.st_uid != geteuid() && st.st_uid != 0)
                return dfail(e, CDR_E_IO, err, errlen,
                             "%s is a symbolic link owned by another user (uid %u): refused",
                             shown, (unsigned)st.st_uid);
            fd = openat(at, name, DIR_FLAGS);
            if (fd >= 0)
                return fd;
            en = errno;
        } else {
            return dfail(e, last ? CDR_E_EXISTS : CDR_E_IO, err, errlen,
                         "%s exists and is not a directory", shown);
        }
    }
    return dfail(e, CDR_E_IO, err, errlen, "cannot open directory %s: %s", shown, strerror(en));
}

int cdr_dir_open(const char *path, unsigned flags, int *created, cdr_err *e, char *err,
                 size_t errlen)
{
    cdr_err dummy;
    if (!e)
        e = &dummy;
    if (created)
        *created = 0;
    if (!path || !*path)
        return dfail(e, CDR_E_USAGE, err, errlen, "empty directory name");
    size_t len = strlen(path);
    if (len > 4096)
        return dfail(e, CDR_E_USAGE, err, errlen, "directory path too long");
    char *copy = strdup(path), *shown = malloc(len + 2);
    if (!copy || !shown) {
        free(copy);
        free(shown);
        return dfail(e, CDR_E_NOMEM, err, errlen, "out of memory");
    }
    int fd = open(path[0] == '/' ? "/" : ".", DIR_FLAGS);
    if (fd < 0) {
        dfail(e, CDR_E_IO, err, errlen, "cannot open %s: %s", path[0] == '/' ? "/" : ".",
              strerror(errno));
        goto out;
    }
    /* the components, and how far into the path each one reaches (for messages) */
    char *comps[512];
    size_t ends[512];
    int nc = 0;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (nc == 512) {
            close(fd);
            fd = dfail(e, CDR_E_USAGE, err, errlen, "%s: path too deep", path);
            goto out;
        }
        comps[nc] = tok;
        ends[nc] = (size_t)(tok - copy) + strlen(tok);
        nc++;
    }
    for (int i = 0; i < nc; i++) {
        int last = i == nc - 1;
        memcpy(shown, path, ends[i]);
        shown[ends[i]] = '\0';
        if (last && (flags & CDR_DIR_CREATE) && created) {
            if (mkdirat(fd, comps[i], 0755) == 0)
                *created = 1;
            else if (errno != EEXIST) {
                dfail(e, CDR_E_IO, err, errlen, "cannot create directory %s: %s", shown,
                      strerror(errno));
                close(fd);
                fd = -1;
                goto out;
            }
        }
        int nfd = open_component(fd, comps[i], shown, (flags & CDR_DIR_CREATE) != 0, last,
                                 (flags & CDR_DIR_FOLLOW_LAST) != 0, e, err, errlen);
        close(fd);
        fd = nfd;
        if (fd < 0)
            goto out;
    }
out:
    free(copy);
    free(shown);
    return fd;
}

int cdr_dir_remove_stale(int dirfd, const char *prefix)
{
    size_t pl = strlen(prefix);
    /* a description of our own: a dup() shares the directory offset with
     * dirfd, and a second walk from the same descriptor would see nothing */
    int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), removed = 0;
    if (d < 0)
        return 0;
    DIR *dp = fdopendir(d);
    if (!dp) {
        close(d);
        return 0;
    }
    /* collect first, then remove: no unlink while readdir walks */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *nm = de->d_name;
        if (strncmp(nm, prefix, pl) != 0 || !nm[pl] || strlen(nm + pl) > 10)
            continue;
        const char *p = nm + pl;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p)
            continue;
        if (cdr_grow(&names, &cap, n + 1, sizeof *names, 8))
            break;
        if (!(names[n] = strdup(nm)))
            break;
        n++;
    }
    closedir(dp);
    for (size_t i = 0; i < n; i++) {
        long pid = strtol(names[i] + pl, NULL, 10);
        struct stat st;
        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH &&
            fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && unlinkat(dirfd, names[i], 0) == 0)
            removed++;
        free(names[i]);
    }
    free(names);
    return removed;
}
