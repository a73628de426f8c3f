/* cdrecon CLI — shared plumbing for the commands that read CDR files. */
#ifndef CDRECON_CLI_INGEST_H
#define CDRECON_CLI_INGEST_H

#include "cdrecon/engine.h"
#include "cdrecon/reader.h"
#include "cli.h"

int cli_parse_size(const char *s, size_t *out);   /* "512M", "1G", "65536" */
int cli_parse_i64(const char *s, int64_t *out);
const char *cli_optval(int argc, char **argv, int *i, const char *name);

typedef struct cli_ingest {
    cdr_engine *engine;          /* rows go here (may be NULL: count only) */
    cdr_reader_opts ro;
    cdr_file_stats *stats;       /* one per file, filled */
    cdr_reject_fn on_reject;
    cdr_err (*on_file_start)(uint32_t idx, const char *name, void *user);
    cdr_err (*on_file_done)(uint32_t idx, const char *name, cdr_file_stats *st, void *user);
    void *user;
    const int *skip;             /* skip[i] != 0: file i is not read (may be NULL) */
} cli_ingest;

/* Read every file into the engine. A file that fails as a whole is excluded
 * from the engine; the first such failure's code is returned after all
 * files were read. An engine or callback error stops at once. */
cdr_err cli_ingest_files(cli_ingest *in, char **files, int nfiles);

#endif
