/*
 * cdrecon — the evidence pack for a complaint reply (docs/evidence.md).
 *
 * From one subscriber-month statement (statement.h) the library writes, into
 * a directory it creates safely:
 *
 *   DIR/manifest                   SHA-256 of every input and tariff table,
 *                                  tool version, run id, the reproducing
 *                                  command, SHA-256 of every file of the pack
 *   DIR/internal/evidence.html     the investigator's copy (full numbers,
 *                                  file/line/offset, tier, approver, policy)
 *   DIR/internal/records.csv       every record of the month (canonical row)
 *   DIR/customer/evidence.html     the customer's copy: other parties' numbers
 *                                  masked (138****1234), no internal notes
 *   DIR/customer/records.csv       the same rows, masked, without provenance
 *   DIR/customer/sms.txt           the notification SMS (only with a refund)
 *   DIR/{internal,customer}/evidence.pdf   added by the caller (the CLI prints
 *                                  the HTML with headless Chromium)
 *
 * Sequence: cdr_evidence_open -> cdr_evidence_write -> [cdr_evidence_add_file]
 * -> cdr_evidence_finish (writes the manifest last: a pack without a manifest
 * is incomplete) -> cdr_evidence_free.
 *
 * Safety: every file is created with O_CREAT|O_EXCL|O_NOFOLLOW relative to a
 * directory descriptor; names are fixed by the library (never taken from
 * data), so nothing can be written outside DIR. See cdr_evidence_open.
 *
 * The library never prints; errors come back as cdr_err with a message
 * (cdr_evidence_errmsg).
 */
#ifndef CDRECON_EVIDENCE_H
#define CDRECON_EVIDENCE_H

#include "statement.h"
#include "tariff.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cdr_ev_copy { CDR_EV_INTERNAL = 0, CDR_EV_CUSTOMER = 1, CDR_EV__COPIES } cdr_ev_copy;
const char *cdr_ev_copy_name(cdr_ev_copy c); /* "internal" / "customer" */

/* One input file, for the manifest. */
typedef struct cdr_ev_input {
    const char *path;
    uint64_t size;
    uint8_t sha256[32];
} cdr_ev_input;

typedef struct cdr_evidence_opts {
    const char *operator_name; /* {运营商} of the SMS; NULL = "中国移动" */
    cdr_time refund_date;      /* the date in the SMS, and the day deadlines count from */
    const char *created;       /* creation time as text (manifest and page), may be NULL */
    const char *run_id;        /* may be NULL */
    const char *command;       /* the exact command that reproduces the pack, may be NULL */
    const char *cwd;           /* the directory that command runs in, may be NULL */
    const char *source;        /* "scan" or "store PATH", may be NULL */
    const cdr_tariff *tariff;  /* NULL: tariff rows are shown from the records only */
    const cdr_ev_input *inputs;
    size_t n_inputs;
    const cdr_ev_input *profile; /* the input profile the inputs were read with, or NULL */
} cdr_evidence_opts;

typedef struct cdr_evidence cdr_evidence;

#define CDR_EV_FORCE 0x1u /* replace the files of an existing pack in DIR */

/*
 * Create (or open) the pack directory DIR.
 *  - Missing parent directories are created (mode 0755).
 *  - A symbolic link in DIR's parent path is followed only if it is owned by
 *    the caller's effective uid or by root; DIR itself must not be a symbolic
 *    link and must be owned by the caller.
 *  - DIR that exists and is not empty: CDR_E_EXISTS, unless CDR_EV_FORCE,
 *    in which case the pack's own file names (and only those) are removed
 *    first; other files are left alone.
 * Errors: CDR_E_USAGE (empty path), CDR_E_EXISTS, CDR_E_IO, CDR_E_NOMEM; the
 * message goes to err.
 */
cdr_err cdr_evidence_open(const char *dir, unsigned flags, cdr_evidence **out, char *err,
                          size_t errlen);

/* Write both copies' evidence.html and records.csv (and customer/sms.txt).
 * The options are checked first (cdr_evidence_check_opts). */
cdr_err cdr_evidence_write(cdr_evidence *ev, const cdr_stmt *s, const cdr_evidence_opts *o);

/* The latest refund date: the deadlines count up to 10 days from it (6
 * working days) and must stay within year 9999. */
#define CDR_EV_DATE_MAX "9999-12-21"
/* Check the options before any work: the operator name (it ends the SMS
 * the customer receives) must be valid UTF-8 without control characters
 * (cdr_char_unsafe) and at most 200 bytes (CDR_E_USAGE); the refund date
 * at most CDR_EV_DATE_MAX (CDR_E_RANGE). The reason goes to err. */
cdr_err cdr_evidence_check_opts(const cdr_evidence_opts *o, char *err, size_t errlen);

/* Absolute path of a file of the pack, e.g. (CDR_EV_CUSTOMER, "evidence.html")
 * for the printer. The text lives in ev until the next call. */
const char *cdr_evidence_path(cdr_evidence *ev, cdr_ev_copy c, const char *name);

/* Copy a file made outside (the printed PDF) into the pack as copy/name.
 * name must be a plain name ("evidence.pdf"); created with O_EXCL. */
cdr_err cdr_evidence_add_file(cdr_evidence *ev, cdr_ev_copy c, const char *name,
                              const char *src_path);

/* Write DIR/manifest (lists every file of the pack with its SHA-256). */
cdr_err cdr_evidence_finish(cdr_evidence *ev);

const char *cdr_evidence_errmsg(const cdr_evidence *ev); /* "" if none */
void cdr_evidence_free(cdr_evidence *ev);                /* accepts NULL */

/* ---- pieces exposed for tests ---- */

/* The problem's name in Chinese for the SMS ("短信条数计量差错", ...); "" for
 * leakage/none. */
const char *cdr_category_zh(cdr_category c);

/*
 * The notification SMS (DOMAIN.md template), UTF-8:
 * 尊敬的客户,您反映的{问题}问题,已于{YYYY}年{MM}月{DD}日对您完成退费处理,
 * 退费金额{金额}元,感谢您的支持与关注。{运营商}
 * {问题}: the candidate's categories' Chinese names (distinct, in precedence
 * order) joined by "、"; {MM} and {DD} two digits; {金额} the refund with 2
 * decimals (more only if the amount needs them). Returns the length written
 * (or needed: like snprintf).
 */
size_t cdr_evidence_sms(const cdr_candidate *c, cdr_time date, const char *operator_name,
                        char *buf, size_t n);

/* Customer masking: every run of 8 or more ASCII digits in s that is not
 * exactly `own` is masked like cdr_number_mask. Returns a malloc'd string
 * (NULL on no memory). */
char *cdr_evidence_mask_text(const char *s, const char *own);

#ifdef __cplusplus
}
#endif
#endif
