/* cdrecon — a growable array's room made by doubling: the one helper every growable array of the library uses (internal header). */
#ifndef CDRECON_GROW_H
#define CDRECON_GROW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Room for need elements of elem bytes in the array whose pointer is at
 * ptr_addr (e.g. &r->fields) and whose capacity is *cap: the capacity
 * doubles from first (or from *cap) until need fits. 0, or -1 when out of
 * memory or when the size would not fit a size_t (then the array and *cap
 * are as they were). A caller appending one element asks for count + 1.
 * Inline: the first test is all it costs when there is room (per-record
 * callers). */
static inline int cdr_grow(void *ptr_addr, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem)
        return -1;
    void *old;
    memcpy(&old, ptr_addr, sizeof old);
    void *p = realloc(old, nc * elem);
    if (!p)
        return -1;
    memcpy(ptr_addr, &p, sizeof p);
    *cap = nc;
    return 0;
}

#endif
