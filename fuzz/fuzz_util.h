/* Helpers shared by the fuzz targets (fuzz/fuzz_*.c). */
#ifndef CDR_FUZZ_UTIL_H
#define CDR_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A scratch path unique to this process, on tmpfs when there is one. */
static inline void fz_path(char *buf, size_t n, const char *name)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, n, "%s/cdrfuzz-%ld-%s", dir, (long)getpid(), name);
}

/* Write data to path (truncating); aborts on failure: the harness is broken. */
static inline void fz_write(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (n) {
        ssize_t w = write(fd, data, n);
        if (w <= 0)
            abort();
        data += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* An invariant of the library failed: crash so the fuzzer keeps the input. */
#define FZ_CHECK(cond)                                                             \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                               \
        }                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
