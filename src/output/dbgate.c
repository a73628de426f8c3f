/* cdrecon — a database commit held at its commit point: a VFS over SQLite's
 * default one that waits before deleting an armed journal (dbgate.h). */
#include "dbgate.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { GATE_ARMED = 1, GATE_GO, GATE_SHUT };

#define GATE_VFS "cdrecon-gate"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static cdr_dbgate *armed; /* the gates armed, any database of the process */
static sqlite3_vfs vfs;   /* the default VFS with gate_delete */
static sqlite3_vfs *base;
static int registered;

static int gate_delete(sqlite3_vfs *v, const char *path, int sync_dir)
{
    (void)v;
    int state = 0;
    pthread_mutex_lock(&mu);
    cdr_dbgate *g = armed;
    while (g && strcmp(g->journal, path) != 0)
        g = g->next;
    if (g) {
        while (g->state == GATE_ARMED)
            pthread_cond_wait(&cv, &mu);
        state = g->state;
    }
    pthread_mutex_unlock(&mu);
    if (state == GATE_SHUT)
        return SQLITE_IOERR_DELETE;
    return base->xDelete(base, path, sync_dir);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* A copy of the default VFS (its pAppData too: the unix VFS keeps its
 * locking style there) with only xDelete and the name changed. */
static void setup(void)
{
    base = sqlite3_vfs_find(NULL);
    if (!base || base->iVersion < 1)
        return;
    vfs = *base;
    vfs.zName = GATE_VFS;
    vfs.pNext = NULL;
    vfs.xDelete = gate_delete;
    registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
}

const char *cdr_dbgate_vfs(void)
{
    pthread_once(&once, setup);
    return registered ? GATE_VFS : NULL;
}

int cdr_dbgate_arm(cdr_dbgate *g, const char *db_path)
{
    memset(g, 0, sizeof *g);
    if (!cdr_dbgate_vfs() || !db_path || !*db_path)
        return -1;
    size_t n = strlen(db_path);
    if (!(g->journal = malloc(n + sizeof "-journal")))
        return -1;
    memcpy(g->journal, db_path, n);
    memcpy(g->journal + n, "-journal", sizeof "-journal");
    pthread_mutex_lock(&mu);
    g->state = GATE_ARMED;
    g->next = armed;
    armed = g;
    pthread_mutex_unlock(&mu);
    return 0;
}

void cdr_dbgate_release(cdr_dbgate *g, int go)
{
    pthread_mutex_lock(&mu);
    if (g->state == GATE_ARMED)
        g->state = go ? GATE_GO : GATE_SHUT;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void cdr_dbgate_disarm(cdr_dbgate *g)
{
    pthread_mutex_lock(&mu);
    for (cdr_dbgate **p = &armed; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    free(g->journal);
    g->journal = NULL;
    g->state = 0;
    pthread_mutex_unlock(&mu);
}
