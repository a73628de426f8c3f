/* cdrecon — growing an array by doubling: the one helper every growable array of the library uses. */
#ifndef CDRECON_GROW_H
#define CDRECON_GROW_H

#include <stdint.h>
#include <stdlib.h>

/* The array at *(T **)pp, of *cap elements of `size` bytes, made to hold at
 * least `need`: its capacity doubled (from `first` when it has none) until
 * it does, and reallocated. Returns 0, or -1 when memory runs out or the
 * size would not fit a size_t (the array and *cap unchanged). A caller
 * appending one element calls it with need = count + 1; while count < *cap
 * nothing is done. */
static inline int cdr_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    if (nc > SIZE_MAX / size)
        return -1;
    void **p = pp;
    void *q = realloc(*p, nc * size);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

#endif
