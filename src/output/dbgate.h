/* cdrecon — a database commit held at its commit point (src/output/dbgate.c).
 *
 * With a rollback journal, SQLite's COMMIT writes and syncs the journal,
 * writes and syncs the database, and then deletes the journal: that
 * deletion is the commit point (until it, a crash leaves a hot journal
 * that the next open plays back). The gate is a VFS over the default one
 * that differs only there: deleting a journal whose gate is armed waits
 * until the gate is opened (the delete goes ahead) or shut (it fails with
 * SQLITE_IOERR_DELETE and the journal stays, hot). A run uses it to let
 * SQLite do the commit's slow part while the outputs are still being
 * written, and to commit only once they are in place. */
#ifndef CDRECON_DBGATE_H
#define CDRECON_DBGATE_H

#include <sqlite3.h>

/* The VFS's name for sqlite3_open_v2 (registered on first use; not the
 * default VFS). NULL if it could not be registered: open with the
 * default, and cdr_dbgate_arm then refuses. */
const char *cdr_dbgate_vfs(void);

typedef struct cdr_dbgate {
    char *journal; /* the journal's full path */
    int state;     /* (dbgate.c) */
    struct cdr_dbgate *next;
} cdr_dbgate;

/* Arm the gate of the database whose main file is db_path as SQLite
 * names it (sqlite3_db_filename): -1 without memory or without the VFS. */
int cdr_dbgate_arm(cdr_dbgate *g, const char *db_path);
/* Open (go != 0) or shut the gate: a deletion waiting there, or one to
 * come, goes ahead or fails. Only the first release counts. */
void cdr_dbgate_release(cdr_dbgate *g, int go);
/* After the commit's thread has left SQLite: the journal deleted as any
 * other again (a shut commit's journal is then played back and deleted). */
void cdr_dbgate_disarm(cdr_dbgate *g);

#endif
