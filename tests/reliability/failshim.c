/*
 * failshim — an LD_PRELOAD library that makes allocations and I/O fail on
 * demand, to test that cdrecon ends every failure with a clear error and
 * leaves no half-written output and no trace in the database.
 *
 * Build: cc -shared -fPIC -O1 -o failshim.so failshim.c -ldl
 * Use:   LD_PRELOAD=./failshim.so FAILSHIM_MALLOC_FAIL=123 build/cdrecon run ...
 *
 * Environment (all optional; unset = never fail):
 *   FAILSHIM_MALLOC_FAIL=N     the Nth allocation (1-based, counting malloc,
 *                              calloc, realloc, posix_memalign, aligned_alloc,
 *                              memalign, valloc) returns NULL with ENOMEM
 *   FAILSHIM_MALLOC_PERSIST=1  ... and every allocation after it too
 *   FAILSHIM_WRITE_LIMIT=N     write/pwrite/writev to regular files may write N
 *                              bytes in total; the write that crosses the limit
 *                              writes what fits, later ones fail with ENOSPC
 *   FAILSHIM_FSYNC_FAIL=1      fsync/fdatasync on regular files fail with EIO
 *   FAILSHIM_READ_FAIL_AFTER=N read() of regular files fails with EIO once N
 *                              bytes were read in total
 *   FAILSHIM_PATH=SUBSTR       the write/fsync/read rules apply only to files
 *                              whose path contains SUBSTR (e.g. ".db", ".csv")
 *   FAILSHIM_REPORT=FILE       at exit, append "allocs N live N writes N
 *                              reads N failed N" to FILE: allocations made,
 *                              allocations never freed (leak check), bytes
 *                              written/read on targeted files, failures made
 *
 * Only regular files are affected (never the terminal, pipes or sockets).
 * The counters are process-wide and atomic; with threads, which allocation
 * is the Nth may differ between runs, which only widens what a sweep covers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t alloc_count, write_bytes, read_bytes, failures;
static int64_t live; /* allocations not yet freed */
static int64_t fail_at = -1;
static int persist;
static int64_t write_limit = -1, read_limit = -1;
static int fsync_fail;
static const char *path_filter;
static const char *report_path;
static int configured;

static int64_t env_i64(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return -1;
    return strtoll(v, NULL, 10);
}

/* getenv is safe this early (no allocation). */
__attribute__((constructor)) static void shim_init(void)
{
    fail_at = env_i64("FAILSHIM_MALLOC_FAIL");
    persist = env_i64("FAILSHIM_MALLOC_PERSIST") > 0;
    write_limit = env_i64("FAILSHIM_WRITE_LIMIT");
    read_limit = env_i64("FAILSHIM_READ_FAIL_AFTER");
    fsync_fail = env_i64("FAILSHIM_FSYNC_FAIL") > 0;
    path_filter = getenv("FAILSHIM_PATH");
    if (path_filter && !*path_filter)
        path_filter = NULL;
    report_path = getenv("FAILSHIM_REPORT");
    configured = 1;
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!report_path)
        return;
    char buf[200];
    int n = snprintf(buf, sizeof buf, "allocs %llu live %lld writes %llu reads %llu failed %llu\n",
                     (unsigned long long)alloc_count, (long long)live,
                     (unsigned long long)write_bytes, (unsigned long long)read_bytes,
                     (unsigned long long)failures);
    int fd = (int)syscall(SYS_open, report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = syscall(SYS_write, fd, buf, (size_t)n);
        (void)w;
        syscall(SYS_close, fd);
    }
}

/* ---------------- allocations ---------------- */

static int alloc_fails(void)
{
    uint64_t n = __atomic_add_fetch(&alloc_count, 1, __ATOMIC_RELAXED);
    if (fail_at <= 0)
        return 0;
    if ((int64_t)n == fail_at || (persist && (int64_t)n > fail_at)) {
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

static void *got(void *p)
{
    if (p)
        __atomic_add_fetch(&live, 1, __ATOMIC_RELAXED);
    return p;
}

void *malloc(size_t n)
{
    return alloc_fails() ? NULL : got(__libc_malloc(n));
}

void *calloc(size_t a, size_t b)
{
    return alloc_fails() ? NULL : got(__libc_calloc(a, b));
}

void *realloc(void *p, size_t n)
{
    if (p && n == 0) { /* a free, never "fails" */
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
        return __libc_realloc(p, n);
    }
    if (alloc_fails())
        return NULL;
    void *q = __libc_realloc(p, n);
    return p ? q : got(q);
}

void free(void *p)
{
    if (p)
        __atomic_sub_fetch(&live, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}

void *memalign(size_t al, size_t n)
{
    return alloc_fails() ? NULL : got(__libc_memalign(al, n));
}

void *aligned_alloc(size_t al, size_t n)
{
    return alloc_fails() ? NULL : got(__libc_memalign(al, n));
}

void *valloc(size_t n)
{
    return alloc_fails() ? NULL : got(__libc_memalign((size_t)sysconf(_SC_PAGESIZE), n));
}

int posix_memalign(void **out, size_t al, size_t n)
{
    if (al < sizeof(void *) || (al & (al - 1)))
        return EINVAL;
    if (alloc_fails())
        return ENOMEM;
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    got(p);
    *out = p;
    return 0;
}

/* ---------------- I/O ---------------- */

/* Is fd a regular file whose path matches the filter? */
static int targeted(int fd)
{
    struct stat st;
    if (fd <= 2 || syscall(SYS_fstat, fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (!path_filter)
        return 1;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = syscall(SYS_readlink, link, path, sizeof path - 1);
    if (k <= 0)
        return 0;
    path[k] = '\0';
    return strstr(path, path_filter) != NULL;
}

/* How many of n bytes may be written now; -1 with errno = ENOSPC if none. */
static ssize_t write_allowance(int fd, size_t n)
{
    if (write_limit < 0 || n == 0 || !targeted(fd))
        return (ssize_t)n;
    uint64_t done = __atomic_load_n(&write_bytes, __ATOMIC_RELAXED);
    if ((int64_t)done >= write_limit) {
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        errno = ENOSPC;
        return -1;
    }
    uint64_t room = (uint64_t)write_limit - done;
    return (ssize_t)(n < room ? n : room);
}

static void account_write(int fd, ssize_t w)
{
    if (w > 0 && write_limit >= 0 && targeted(fd))
        __atomic_add_fetch(&write_bytes, (uint64_t)w, __ATOMIC_RELAXED);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    ssize_t k = write_allowance(fd, n);
    if (k < 0)
        return -1;
    ssize_t w = syscall(SYS_write, fd, buf, (size_t)k);
    account_write(fd, w);
    return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    ssize_t k = write_allowance(fd, n);
    if (k < 0)
        return -1;
    ssize_t w = syscall(SYS_pwrite64, fd, buf, (size_t)k, off);
    account_write(fd, w);
    return w;
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    ssize_t k = write_allowance(fd, n);
    if (k < 0)
        return -1;
    if ((size_t)k < n) { /* write only the first k bytes */
        ssize_t w = 0;
        for (int i = 0; i < cnt && k > 0; i++) {
            size_t part = iov[i].iov_len < (size_t)k ? iov[i].iov_len : (size_t)k;
            ssize_t r = syscall(SYS_write, fd, iov[i].iov_base, part);
            if (r <= 0)
                break;
            w += r;
            k -= r;
        }
        account_write(fd, w);
        return w;
    }
    ssize_t w = syscall(SYS_writev, fd, iov, cnt);
    account_write(fd, w);
    return w;
}

static int fsync_fails(int fd)
{
    if (fsync_fail && targeted(fd)) {
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
        errno = EIO;
        return 1;
    }
    return 0;
}

int fsync(int fd)
{
    return fsync_fails(fd) ? -1 : (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    return fsync_fails(fd) ? -1 : (int)syscall(SYS_fdatasync, fd);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (read_limit >= 0 && targeted(fd)) {
        uint64_t done = __atomic_load_n(&read_bytes, __ATOMIC_RELAXED);
        if ((int64_t)done >= read_limit) {
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            errno = EIO;
            return -1;
        }
        if (n > (uint64_t)read_limit - done)
            n = (size_t)((uint64_t)read_limit - done);
        ssize_t r = syscall(SYS_read, fd, buf, n);
        if (r > 0)
            __atomic_add_fetch(&read_bytes, (uint64_t)r, __ATOMIC_RELAXED);
        return r;
    }
    return syscall(SYS_read, fd, buf, n);
}
