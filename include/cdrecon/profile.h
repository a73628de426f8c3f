/*
 * cdrecon — input profiles: an operator's own CDR export mapped onto the
 * contract's fields (docs/profiles.md).
 *
 * A profile is a small declarative text file: the layout (separator,
 * quoting, header or not, lines to skip), where each contract field comes
 * from (a column by header name or 1-based index, a constant, a sum of
 * columns, a date column and a time column), time formats, units, record
 * types and number normalisation. It is loaded and checked whole before any
 * row is read; the reader (reader.h, cdr_reader_opts.profile) then turns
 * it into a per-file plan (column index -> converter) when it meets the
 * header.
 *
 * A loaded profile is read-only: one can be shared by any number of readers
 * and threads. The library never prints.
 */
#ifndef CDRECON_PROFILE_H
#define CDRECON_PROFILE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cdr_profile cdr_profile;

/* The contract fields a profile can map, in the order they are described
 * (check-profile prints them in this order). */
typedef enum cdr_pfield {
    CDR_PF_RECORD_ID,
    CDR_PF_MSISDN,
    CDR_PF_SERVICE,
    CDR_PF_DIRECTION,
    CDR_PF_PEER,
    CDR_PF_START_TIME,
    CDR_PF_DURATION_S,
    CDR_PF_BYTES,
    CDR_PF_SMS_CHARS,
    CDR_PF_SMS_REF,
    CDR_PF_SMS_PART,
    CDR_PF_SMS_PARTS,
    CDR_PF_CALL_ID,
    CDR_PF_PARTIAL_SEQ,
    CDR_PF_BILLED,
    CDR_PF_IMSI,        /* not a contract field: names the IMSI of IMSI-only records */
    CDR_PF_RECORD_TYPE, /* the column the `type` lines look up */
    CDR_PF__COUNT
} cdr_pfield;

/*
 * Load and check a profile file. On failure *out is NULL, the code is
 * CDR_E_PROFILE (or CDR_E_IO, CDR_E_NOMEM), and err says "PATH:LINE: what".
 */
cdr_err cdr_profile_load(const char *path, cdr_profile **out, char *err, size_t errlen);
/* The same from text in memory; `name` stands for the path in messages. */
cdr_err cdr_profile_parse(const char *text, size_t n, const char *name, cdr_profile **out,
                          char *err, size_t errlen);
void cdr_profile_free(cdr_profile *p); /* NULL is fine */

const char *cdr_profile_path(const cdr_profile *p);
/* SHA-256 of the profile file's bytes, and their number. */
const uint8_t *cdr_profile_sha256(const cdr_profile *p);
uint64_t cdr_profile_size(const cdr_profile *p);

/* The field's name ("msisdn", ..., "imsi", "record_type"). */
const char *cdr_pfield_name(cdr_pfield f);
/*
 * Where a field comes from and how it is converted, in words, e.g.
 * "column servedMSISDN; trunk prefix 0 removed" or "columns up + down (bytes)".
 * Empty when the profile does not map the field. Returns the length (cut
 * to cap - 1, NUL-terminated).
 */
size_t cdr_profile_describe(const cdr_profile *p, cdr_pfield f, char *buf, size_t cap);
/* The layout in words: "separator ',', quote '\"', header yes, ...". */
size_t cdr_profile_describe_layout(const cdr_profile *p, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
