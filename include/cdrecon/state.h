/*
 * cdrecon — the month state: every record of every subscriber-month ever
 * ingested into a database, kept beside it (docs/state.md).
 *
 * The database says which state files are live; cdr_state_open takes the
 * directory and the live names. `cdrecon run` updates the state through the
 * engine (cdr_engine_opts.state); `investigate` and `evidence` read one
 * subscriber-month's records with cdr_state_month_rows and rate them again.
 */
#ifndef CDRECON_STATE_H
#define CDRECON_STATE_H

#include "record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdr_state cdr_state;

/* Kinds of state file, by name: seg-YYYY-MM-rNNNNNNN.cds (records),
 * ckp-YYYY-MM-rNNNNNNN.cdk (checkpoints). */
typedef enum cdr_state_kind { CDR_STATE_SEGMENT = 0, CDR_STATE_CHECKPOINT = 1 } cdr_state_kind;

/* The name of a state file (buf >= 64). */
size_t cdr_state_file_name(cdr_state_kind k, cdr_month m, int64_t run_id, char *buf);
/* Parse a name made by cdr_state_file_name: 0 ok, -1 not one of ours. */
int cdr_state_file_parse(const char *name, cdr_state_kind *k, cdr_month *m, int64_t *run_id);

/* Open a state directory with its live files (names, no directory). Every
 * file is opened and its footer checked. CDR_E_IO / CDR_E_PARSE with err. */
cdr_err cdr_state_open(const char *dir, const char *const *live, size_t n, cdr_state **out,
                       char *err, size_t errlen);
void cdr_state_close(cdr_state *s); /* NULL accepted */
const char *cdr_state_dir(const cdr_state *s);

/* The months the state holds records of, ascending (*n of them). */
const cdr_month *cdr_state_months(const cdr_state *s, size_t *n);
/* Records and subscriber-months held for month m (0 if none). */
uint64_t cdr_state_month_records(const cdr_state *s, cdr_month m);
uint64_t cdr_state_month_submonths(const cdr_state *s, cdr_month m);

/* Every record of one subscriber-month (msisdn normalised), segment by
 * segment, each segment's records in time order; fn gets each row (views
 * valid during the call; file_index is 0), its input file's name and its
 * database file id. CDR_E_NOTFOUND when there is none. */
typedef int (*cdr_state_row_fn)(const cdr_row *r, const char *file, int64_t db_file_id,
                                void *user);
cdr_err cdr_state_submonth_rows(cdr_state *s, const char *msisdn, cdr_month month,
                                cdr_state_row_fn fn, void *user, char *err, size_t errlen);

/* The checkpoint's record count and tariff of one subscriber-month (1), or
 * 0 if the state has none; <0 on a damaged file. */
int cdr_state_submonth_info(cdr_state *s, const char *msisdn, cdr_month month,
                            uint64_t *records, uint32_t *tariff_id, char *err, size_t errlen);

/* The manifest: a copy of what the database says of its state (the live
 * files, the tariffs by id), rewritten after every committed run, so that
 * `investigate --store DIR` reads a state without its database. */
typedef struct cdr_state_tariff {
    int64_t id;
    char sha256[65];
    char *dir;
} cdr_state_tariff;

typedef struct cdr_state_manifest {
    char *db_path;
    char **live;
    size_t n_live;
    cdr_state_tariff *tariffs;
    size_t n_tariffs;
} cdr_state_manifest;

cdr_err cdr_state_manifest_write(const char *dir, const cdr_state_manifest *m, char *err,
                                 size_t errlen);
cdr_err cdr_state_manifest_read(const char *dir, cdr_state_manifest *m, char *err,
                                size_t errlen);
void cdr_state_manifest_free(cdr_state_manifest *m);

/* Compaction: the segments of month m merged into one (each subscriber-
 * month's records together, in larger blocks), written to dir as run_id's
 * segment and committed; the records, the checkpoints and every result stay
 * as they are. The caller then makes it live in place of the old segments
 * (cdr_state_segment_names). CDR_E_NOTFOUND when the month has fewer than
 * two segments. */
typedef struct cdr_state_compacted {
    char name[64];
    uint64_t records, submonths, bytes;
    size_t replaced;       /* segments merged */
} cdr_state_compacted;
cdr_err cdr_state_compact(cdr_state *s, cdr_month m, const char *dir, int64_t run_id,
                          cdr_state_compacted *out, char *err, size_t errlen);
/* The names of month m's live segments (at most cap). */
size_t cdr_state_segment_names(const cdr_state *s, cdr_month m, char (*names)[64], size_t cap);

/* Remove from dir every state file (ours by name, or NAME.tmp) that is not
 * in live: the files of killed or failed runs. *removed counts them. */
cdr_err cdr_state_collect_garbage(const char *dir, const char *const *live, size_t n,
                                  uint64_t *removed, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
