/*
 * cdrecon — internal: a statement record built from the engine's view of it
 * without allocating (the store writer's hot path, src/store.c).
 */
#ifndef CDRECON_STMT_VIEW_H
#define CDRECON_STMT_VIEW_H

#include "cdrecon/statement.h"

/*
 * The record cdr_stmt_rec_from_rated would build, field for field, but with
 * every string written NUL-terminated into buf (bufsize bytes) and *out's
 * string pointers pointing there: nothing to free, valid until buf is
 * reused. CDR_E_RANGE if buf is too small; *need (if not NULL) then holds
 * a size that is enough.
 */
cdr_err cdr_stmt_rec_view_from_rated(const cdr_rated *r, const cdr_tariff *t, const char *file,
                                     cdr_stmt_rec *out, char *buf, size_t bufsize,
                                     size_t *need);

#endif
