/* cdrecon — streaming writeback of a large file that is fsynced when
 * complete (internal header).
 *
 * A file of tens of MB written and then fsynced makes the fsync wait for all
 * of it to reach the disk. Telling the kernel to start writing each 8 MiB
 * as soon as it is written (sync_file_range, SYNC_FILE_RANGE_WRITE: start,
 * do not wait) lets the disk work while the file is still being produced,
 * and the final fsync waits for the rest. The fsync stays where it was: this
 * only moves when the bytes go, not whether they are durable. Elsewhere than
 * Linux it does nothing. */
#ifndef CDRECON_WBACK_H
#define CDRECON_WBACK_H

#include <stdint.h>

#if defined(__linux__)
#include <fcntl.h>
#endif

#define CDR_WBACK_STEP ((uint64_t)8 << 20)

/* `written`: bytes of fd known to be handed to the kernel (from offset 0);
 * *from: where the writeback started so far ends (0 at first). Starts the
 * writeback of [*from, written) once that is CDR_WBACK_STEP or more. A
 * failure is ignored: the fsync that follows reports what matters. */
static inline void cdr_wback(int fd, uint64_t *from, uint64_t written)
{
    written &= ~(uint64_t)0xffff; /* (whole pages: the last one is not written twice) */
    if (written < *from || written - *from < CDR_WBACK_STEP)
        return;
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    (void)sync_file_range(fd, (off_t)*from, (off_t)(written - *from), SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
#endif
    *from = written;
}

#endif
