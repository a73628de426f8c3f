/* cdrecon — duplicates in a subscriber-month: the same record_id again, or the same usage under a new one; and copies of records ingested before. */
#include <stdlib.h>
#include <string.h>

#include "rate_int.h"

/* Make room for n keys and clear only the part in use, so that one large
 * subscriber does not make every later (small) one pay for its size. */
cdr_err rt_htab_reset(htab *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    if (cap > t->cap) {
        free(t->h);
        free(t->v);
        t->h = malloc(cap * sizeof *t->h);
        t->v = malloc(cap * sizeof *t->v);
        if (!t->h || !t->v) {
            t->cap = 0;
            return CDR_E_NOMEM;
        }
        t->cap = cap;
    }
    t->mask = cap - 1;
    memset(t->v, 0xff, cap * sizeof *t->v); /* -1 */
    return CDR_OK;
}

void rt_htab_free(htab *t)
{
    free(t->h);
    free(t->v);
}

static int same_content(const blob *a, const blob *b)
{
    return a->service == b->service && a->direction == b->direction && a->start == b->start &&
           a->amount == b->amount && a->sms_part == b->sms_part &&
           a->partial_seq == b->partial_seq && a->l_peer == b->l_peer &&
           memcmp(b_peer(a), b_peer(b), a->l_peer) == 0 && a->l_call == b->l_call &&
           memcmp(b_call(a), b_call(b), a->l_call) == 0 && a->l_ref == b->l_ref &&
           memcmp(b_ref(a), b_ref(b), a->l_ref) == 0;
}

/* The hash of what same_content compares: the numbers, then peer, call_id
 * and sms_ref, which lie one after the other in the record (their lengths
 * are mixed in, so that the split between them counts). */
static uint64_t content_hash(const blob *a)
{
    uint64_t k[4] = {(uint64_t)a->start ^ ((uint64_t)a->amount << 32 | (uint64_t)a->amount >> 32),
                     ((uint64_t)a->service << 8 | a->direction) ^ ((uint64_t)a->sms_part << 16),
                     (uint64_t)a->partial_seq,
                     (uint64_t)a->l_peer | (uint64_t)a->l_call << 21 | (uint64_t)a->l_ref << 42};
    uint64_t h = cdr_hash_bytes(k, sizeof k, 1);
    return cdr_hash_bytes(b_peer(a), (size_t)a->l_peer + a->l_call + a->l_ref, h);
}

/* Duplicates within one subscriber-month (CONTRACT.md "duplicates"): the
 * same record_id again, or the same usage under a new record_id; the first
 * in time order is the original. A new record whose record_id is that of a
 * stored record, or of a record of an earlier file of this run, is counted
 * as a copy for its file (a re-delivered file is mostly copies). */
cdr_err rt_find_duplicates(ctx *c, work *w, size_t n)
{
    cdr_err err;
    if ((err = rt_htab_reset(&c->rid, n)) != CDR_OK || (err = rt_htab_reset(&c->content, n)) != CDR_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        const blob *b = w[i].b;
        w[i].status = CDR_RS_RATED;
        w[i].dup_of = -1;
        /* same record_id seen before? */
        uint64_t h = cdr_hash_bytes(b_rid(b), b->l_rid, 3);
        size_t mask = c->rid.mask, k = h & mask;
        int32_t orig = -1;
        while (c->rid.v[k] >= 0) {
            const blob *o = w[c->rid.v[k]].b;
            if (c->rid.h[k] == h && o->l_rid == b->l_rid && !memcmp(b_rid(o), b_rid(b), b->l_rid)) {
                orig = c->rid.v[k];
                break;
            }
            k = (k + 1) & mask;
        }
        if (orig < 0) {
            c->rid.h[k] = h;
            c->rid.v[k] = (int32_t)i;
        }
        w[i].rid_first = orig < 0 ? (int32_t)i : orig;
        /* same usage under another id? */
        uint64_t ch = content_hash(b);
        size_t k2 = ch & c->content.mask;
        int32_t corig = -1;
        while (c->content.v[k2] >= 0) {
            const blob *o = w[c->content.v[k2]].b;
            if (c->content.h[k2] == ch && same_content(o, b)) {
                corig = c->content.v[k2];
                break;
            }
            k2 = (k2 + 1) & c->content.mask;
        }
        if (orig >= 0 || corig >= 0) {
            w[i].status = CDR_RS_DUPLICATE;
            int32_t o = orig >= 0 ? orig : corig;
            /* point at the original of the original */
            while (w[o].dup_of >= 0)
                o = w[o].dup_of;
            w[i].dup_of = o;
        } else {
            c->content.h[k2] = ch;
            c->content.v[k2] = (int32_t)i;
        }
    }
    return CDR_OK;
}

/* Copies of records ingested before: a new record whose record_id is that
 * of a stored record, or of a record of an earlier file of this run (each
 * counted once, for its file). rt_find_duplicates set each record's first
 * record of its record_id (rid_first). */
void rt_count_copies(ctx *c, work *w, size_t n)
{
    /* per group of one record_id, at its first record: any stored record,
     * and the lowest file of its new records */
    for (size_t i = 0; i < n; i++) {
        w[i].g_stored = 0;
        w[i].g_minfile = UINT32_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        work *f = &w[w[i].rid_first];
        if (!w[i].is_new)
            f->g_stored = 1;
        else if (w[i].b->file_index < f->g_minfile)
            f->g_minfile = w[i].b->file_index;
    }
    for (size_t i = 0; i < n; i++) {
        const work *f = &w[w[i].rid_first];
        if (w[i].is_new && (f->g_stored || w[i].b->file_index > f->g_minfile))
            c->copies[w[i].b->file_index]++;
    }
}
