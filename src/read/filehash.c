/* cdrecon — SHA-256 of a whole file, read in large blocks
 * (include/cdrecon/filehash.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cdrecon/filehash.h"
#include "sha256.h"

cdr_err cdr_file_sha256(const char *path, uint8_t out[32], uint64_t *size)
{
    enum { BUF = 1 << 20 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CDR_E_IO;
    unsigned char *buf = malloc(BUF);
    if (!buf) {
        close(fd);
        return CDR_E_NOMEM;
    }
    cdr_sha256 c;
    cdr_sha256_init(&c);
    uint64_t total = 0;
    cdr_err rc = CDR_OK;
    for (;;) {
        ssize_t n = read(fd, buf, BUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = CDR_E_IO;
            break;
        }
        if (n == 0)
            break;
        cdr_sha256_update(&c, buf, (size_t)n);
        total += (uint64_t)n;
    }
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    if (rc == CDR_OK) {
        cdr_sha256_final(&c, out);
        *size = total;
    }
    return rc;
}
