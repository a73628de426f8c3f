/* cdrecon — the distributor thread: staging blocks of packed records queued by cdr_engine_add and filed into their buckets. */
/*
 * With threads > 1 the reading thread only packs records into 1 MiB
 * staging blocks (add.c); this thread hashes each record's msisdn, finds
 * its bucket room (and spills when the budget is passed), and copies it
 * there. At most STAGE_QUEUE full blocks wait; emptied blocks are reused.
 * An error stops the filing and is returned by the next grp_stage_next or
 * by grp_dist_stop.
 */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "engine_int.h"

/* Move a staging block's records into their buckets. */
static cdr_err distribute(cdr_engine *e, const stage *s)
{
    for (size_t off = 0; off < s->n;) {
        const char *m;
        size_t ml;
        peek_msisdn(s->data + off, &m, &ml); /* (the bucket needs only its hash) */
        size_t need = packed_size(s->data + off);
        unsigned char *d;
        cdr_err err = grp_bucket_reserve(e, &e->b[msisdn_hash(m, ml) >> 56], need, &d);
        if (err != CDR_OK)
            return err;
        memcpy(d, s->data + off, need);
        off += need;
    }
    return CDR_OK;
}

static void *dist_main(void *arg)
{
    cdr_engine *e = arg;
    pthread_mutex_lock(&e->dmu);
    for (;;) {
        while (!e->q_head && !e->dist_end)
            pthread_cond_wait(&e->dcv, &e->dmu);
        stage *s = e->q_head;
        if (!s)
            break;
        e->q_head = s->next;
        if (!e->q_head)
            e->q_tail = NULL;
        e->q_len--;
        cdr_err err = e->dist_err;
        pthread_mutex_unlock(&e->dmu);
        if (err == CDR_OK)
            err = distribute(e, s);
        pthread_mutex_lock(&e->dmu);
        if (err != CDR_OK && e->dist_err == CDR_OK)
            e->dist_err = err;
        s->n = 0;
        s->next = e->spare;
        e->spare = s;
        pthread_cond_broadcast(&e->dcv);
    }
    pthread_mutex_unlock(&e->dmu);
    return NULL;
}

/* Append the current block to the distributor's queue (dmu held). */
static void queue_cur(cdr_engine *e)
{
    e->cur->next = NULL;
    if (e->q_tail)
        e->q_tail->next = e->cur;
    else
        e->q_head = e->cur;
    e->q_tail = e->cur;
    e->q_len++;
    e->cur = NULL;
}

/* Queue the current block (waiting for room) and take an empty one with
 * room for need bytes. */
cdr_err grp_stage_next(cdr_engine *e, size_t need)
{
    pthread_mutex_lock(&e->dmu);
    if (e->cur && e->cur->n) {
        while (e->q_len >= STAGE_QUEUE && e->dist_err == CDR_OK)
            pthread_cond_wait(&e->dcv, &e->dmu);
        queue_cur(e);
        pthread_cond_broadcast(&e->dcv);
    }
    cdr_err err = e->dist_err;
    stage *s = e->cur;
    if (!s && e->spare) {
        s = e->spare;
        e->spare = s->next;
    }
    pthread_mutex_unlock(&e->dmu);
    if (err != CDR_OK) {
        e->cur = s;
        return err;
    }
    if (s && s->cap < need) {
        free(s);
        s = NULL;
    }
    if (!s) {
        size_t cap = need > STAGE_SIZE ? need : STAGE_SIZE;
        s = malloc(sizeof *s + cap + PACK_PAD);
        if (!s)
            return CDR_E_NOMEM;
        s->cap = cap;
    }
    s->n = 0;
    s->next = NULL;
    e->cur = s;
    return CDR_OK;
}

void grp_dist_start(cdr_engine *e)
{
    if (pthread_mutex_init(&e->dmu, NULL) != 0)
        return;
    if (pthread_cond_init(&e->dcv, NULL) != 0) {
        pthread_mutex_destroy(&e->dmu);
        return;
    }
    if (pthread_create(&e->dist_th, NULL, dist_main, e) != 0) {
        pthread_cond_destroy(&e->dcv);
        pthread_mutex_destroy(&e->dmu);
        return; /* the records are then distributed on the calling thread */
    }
    e->dist_on = 1;
}

/* Hand over the last block, wait for the distributor, free the blocks. */
cdr_err grp_dist_stop(cdr_engine *e)
{
    if (!e->dist_on)
        return CDR_OK;
    pthread_mutex_lock(&e->dmu);
    if (e->cur && e->cur->n && e->dist_err == CDR_OK)
        queue_cur(e);
    e->dist_end = 1;
    pthread_cond_broadcast(&e->dcv);
    pthread_mutex_unlock(&e->dmu);
    pthread_join(e->dist_th, NULL);
    e->dist_on = 0;
    cdr_err err = e->dist_err;
    for (stage *s = e->q_head, *n; s; s = n) { /* left over after an error */
        n = s->next;
        free(s);
    }
    for (stage *s = e->spare, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    free(e->cur);
    e->q_head = e->q_tail = e->spare = e->cur = NULL;
    pthread_cond_destroy(&e->dcv);
    pthread_mutex_destroy(&e->dmu);
    return err;
}
