/* cdrecon — the buckets: records in chunks of memory by msisdn hash, every bucket spilled to its own file past the memory budget. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"
#include "tmpdir.h"

static chunk *chunk_alloc(size_t cap)
{
    /* (transparent huge pages were tried: with defrag=madvise the direct
     * compaction made a 10M-record run slower, not faster) */
    chunk *c = malloc(sizeof(chunk) + cap + PACK_PAD);
    if (c) {
        c->next = NULL;
        c->n = 0;
        c->cap = cap;
    }
    return c;
}

void grp_free_chunks(cdr_engine *e, bucket *b)
{
    for (chunk *c = b->head, *n; c; c = n) {
        n = c->next;
        e->mem -= sizeof(chunk) + c->cap;
        free(c);
    }
    b->head = b->tail = NULL;
    b->bytes = 0;
}

/* A new last chunk for bucket b with room for need bytes, spilling every
 * bucket first if it would pass the budget (the slow part of
 * grp_bucket_reserve). */
cdr_err grp_bucket_grow(cdr_engine *e, bucket *b, size_t need)
{
    cdr_err err;
    chunk *ck = b->tail;
    size_t nc = ck ? (ck->cap * 2 < CHUNK_MAX ? ck->cap * 2 : CHUNK_MAX - sizeof(chunk))
                   : CHUNK_MIN;
    while (nc < need)
        nc *= 2;
    if (e->mem + nc + sizeof(chunk) > e->o.mem_budget) {
        if ((err = grp_spill_all(e)) != CDR_OK)
            return err;
        nc = CHUNK_MIN;
        while (nc < need)
            nc *= 2;
    }
    chunk *n = chunk_alloc(nc);
    if (!n)
        return CDR_E_NOMEM;
    nc = n->cap;
    if (b->tail)
        b->tail->next = n;
    else
        b->head = n;
    b->tail = n;
    e->mem += sizeof(chunk) + nc;
    if (e->mem > e->peak)
        e->peak = e->mem;
    return CDR_OK;
}

cdr_err grp_spill_all(cdr_engine *e)
{
    char path[4096];
    if (!e->spilldir) {
        const char *td = cdr_tmpdir(e->o.tmpdir);
        snprintf(path, sizeof path, "%s/cdrecon-spill-XXXXXX", td);
        if (!mkdtemp(path)) {
            snprintf(e->err, sizeof e->err, "cannot create spill directory in %s: %s", td,
                     strerror(errno));
            return CDR_E_IO;
        }
        e->spilldir = strdup(path);
        if (!e->spilldir)
            return CDR_E_NOMEM;
    }
    for (int i = 0; i < NBUCKET; i++) {
        bucket *b = &e->b[i];
        if (b->bytes == 0)
            continue;
        if (!b->spill) {
            snprintf(path, sizeof path, "%s/b%03d", e->spilldir, i);
            b->spill = fopen(path, "w+b");
            if (!b->spill) {
                snprintf(e->err, sizeof e->err, "cannot create spill file %.300s: %s", path,
                         strerror(errno));
                return CDR_E_IO;
            }
        }
        for (chunk *c = b->head; c; c = c->next)
            if (c->n && fwrite(c->data, 1, c->n, b->spill) != c->n) {
                snprintf(e->err, sizeof e->err, "cannot write spill file: %s", strerror(errno));
                return CDR_E_IO;
            }
        b->spilled += b->bytes;
        e->spilled_bytes += b->bytes;
        grp_free_chunks(e, b);
    }
    e->spilled = 1;
    return CDR_OK;
}

/* The spilled part of a bucket, read back whole (NULL if none). */
cdr_err grp_load_spill(cdr_engine *e, int i, unsigned char **data, size_t *len)
{
    bucket *b = &e->b[i];
    *data = NULL;
    *len = 0;
    if (b->spilled == 0)
        return CDR_OK;
    unsigned char *p = malloc((size_t)b->spilled + PACK_PAD);
    if (!p)
        return CDR_E_NOMEM;
    if (fflush(b->spill) != 0 || fseek(b->spill, 0, SEEK_SET) != 0 ||
        fread(p, 1, (size_t)b->spilled, b->spill) != (size_t)b->spilled) {
        snprintf(e->err, sizeof e->err, "cannot read back spill file: %s", strerror(errno));
        free(p);
        return CDR_E_IO;
    }
    *data = p;
    *len = (size_t)b->spilled;
    return CDR_OK;
}

void grp_remove_spill(cdr_engine *e)
{
    char path[4096];
    for (int i = 0; i < NBUCKET; i++) {
        if (e->b[i].spill) {
            fclose(e->b[i].spill);
            e->b[i].spill = NULL;
        }
        if (e->spilldir) {
            snprintf(path, sizeof path, "%s/b%03d", e->spilldir, i);
            unlink(path);
        }
    }
    if (e->spilldir) {
        rmdir(e->spilldir);
        free(e->spilldir);
        e->spilldir = NULL;
    }
}
