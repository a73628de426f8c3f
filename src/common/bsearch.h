/* cdrecon — the one binary search of the library: where a sorted array's keys stop being below a value (internal header). */
#ifndef CDRECON_BSEARCH_H
#define CDRECON_BSEARCH_H

#include <stddef.h>

/* The first index k in [0, n) for which below(k, x) is false, where below
 * is true for a prefix of the indexes and false after it (n when it is
 * true for all). Inline, with below a static function at each call site:
 * gcc inlines the test too. For "the first key >= x", below is key < x;
 * for "the last key <= x", below is key <= x and the answer is one less. */
static inline size_t cdr_partition_point(size_t n, int (*below)(size_t k, const void *x),
                                         const void *x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (below(m, x))
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

#endif
