/*
 * cdrecon — a typed CDR row, as read from a CDR file (CONTRACT.md "CDR files").
 */
#ifndef CDRECON_RECORD_H
#define CDRECON_RECORD_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdr_service {
    CDR_SVC_VOICE = 0,
    CDR_SVC_SMS = 1,
    CDR_SVC_DATA = 2,
    CDR_SVC_VAS = 3
} cdr_service;
#define CDR_SVC__COUNT 4

typedef enum cdr_direction { CDR_DIR_MO = 0, CDR_DIR_MT = 1 } cdr_direction;

const char *cdr_service_name(cdr_service s);   /* "voice", "sms", ... */
const char *cdr_direction_name(cdr_direction d); /* "mo" / "mt" */
/* Case-insensitive parse of "voice"/"sms"/"data"/"vas". */
cdr_err cdr_service_parse(const char *s, size_t n, cdr_service *out);
/* Case-insensitive "mo"/"mt"; empty text is mo. */
cdr_err cdr_direction_parse(const char *s, size_t n, cdr_direction *out);

/*
 * One accepted CDR row. All cdr_str views are borrowed from the reader and
 * valid only inside the row callback: copy what you keep.
 *
 * Absent optional numbers are 0 (sms_part, sms_parts, partial_seq) or -1
 * (duration_s, bytes, sms_chars for services that do not use them).
 */
typedef struct cdr_row {
    cdr_str record_id;
    cdr_str msisdn;   /* normalised digits */
    cdr_str peer;     /* normalised digits for voice/sms; SP code for vas; APN for data */
    cdr_str call_id;  /* empty if none */
    cdr_str sms_ref;  /* empty if none */
    cdr_service service;
    cdr_direction direction;
    cdr_time start;
    int64_t duration_s; /* voice: >= 0; else -1 */
    int64_t bytes;      /* data: >= 0; else -1 */
    int64_t sms_chars;  /* sms: >= 0; else -1 */
    int32_t sms_part;   /* 1-based segment number, 0 = not a per-segment record */
    int32_t sms_parts;  /* segment count written by the network, 0 = absent */
    int64_t partial_seq;/* 1, 2, ... for partial records; 0 = complete */
    cdr_money billed;   /* micro-yuan, >= 0 */

    /* Provenance. */
    uint32_t file_index; /* index into the list of input files */
    uint64_t line;       /* 1-based physical line where the row starts */
    uint64_t offset;     /* byte offset of the row start in the decompressed stream */

    /* Unknown columns, in header order; names come from the reader's header. */
    const cdr_str *extra;
    const cdr_str *extra_names; /* header names of the unknown columns */
    uint32_t n_extra;

    /* The raw row text as it stood in the file (without the line end). */
    cdr_str raw;
} cdr_row;

/* The unknown columns as one text, "name=value;name=value" (the `extra`
 * column of rate rows and statements): the most bytes it takes, with room
 * for a NUL, and the text written into dst (its length returned; no NUL). */
size_t cdr_row_extras_size(const cdr_row *r);
size_t cdr_row_extras_join(const cdr_row *r, char *dst);

#ifdef __cplusplus
}
#endif
#endif
