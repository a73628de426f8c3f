/*
 * cdrecon — a statement (statement.h) rendered for people and tools:
 * terminal text, CSV sections, one JSON object (docs/investigate.md).
 *
 * The functions write to a stream the caller gives and never print
 * elsewhere; they return CDR_E_IO when the stream reports an error
 * (checked with fflush + ferror at the end). Phone numbers are shown in
 * full: a statement is meant for the investigator.
 */
#ifndef CDRECON_RENDER_H
#define CDRECON_RENDER_H

#include <stdio.h>

#include "statement.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdr_render_format {
    CDR_RENDER_TEXT = 0,
    CDR_RENDER_CSV = 1,
    CDR_RENDER_JSON = 2
} cdr_render_format;

/* "text" / "csv" / "json" (case-insensitive). CDR_E_USAGE otherwise. */
cdr_err cdr_render_format_parse(const char *s, cdr_render_format *out);

cdr_err cdr_render_stmt(FILE *fp, const cdr_stmt *s, cdr_render_format f);

/* Header, one line per record, per-pool summary, verdict, findings in words. */
cdr_err cdr_render_text(FILE *fp, const cdr_stmt *s);
/* Three CSV sections separated by one empty line: the canonical record
 * rows (cdr_stmt_rec_header), the pools (pool,plan,allowance,used,left,
 * unit), and the candidate (the columns of candidates.csv; header only
 * when there is none). */
cdr_err cdr_render_csv(FILE *fp, const cdr_stmt *s);
/* One JSON object: msisdn, month, vip, join_date, totals{}, records[],
 * pools[], verdict{}. Amounts are exact decimal strings in yuan. */
cdr_err cdr_render_json(FILE *fp, const cdr_stmt *s);

/* ---- pieces reused by the evidence writer ---- */

/* The approver of a tier 0..4 (DOMAIN.md, service-centre channel). */
const char *cdr_tier_approver(int tier);
/* The deadline of a policy in words; vip 1/0, -1 unknown. */
const char *cdr_policy_deadline(cdr_policy p, int vip);
/* A record's usage in words: "3:12" (voice), "2 seg" (sms), "12 KB"
 * (data), "1" (vas). Returns the length (buf >= 48). */
size_t cdr_render_usage(const cdr_stmt_rec *r, char *buf);
/* A pool quantity in its unit: "412:00" for seconds, "37 seg", "2048 KB". */
size_t cdr_render_pool_units(int64_t v, const char *unit, char *buf);
/* A JSON string literal (with quotes): escapes '"', '\\' and control
 * characters; valid UTF-8 is kept, invalid bytes become U+FFFD. */
void cdr_json_string(FILE *fp, const char *s);

#ifdef __cplusplus
}
#endif
#endif
