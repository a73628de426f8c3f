/* cdrecon CLI — a one-line progress display on stderr (only on a terminal). */
#ifndef CDRECON_CLI_PROGRESS_H
#define CDRECON_CLI_PROGRESS_H

#include <stdint.h>
#include "cdrecon/reader.h"

typedef struct cli_progress {
    int enabled;     /* stderr is a terminal and not --quiet */
    int drawn;       /* a line is on screen */
    double t0;       /* first report of the current file, seconds */
    uint64_t rows0;  /* its rows then */
    uint64_t in0;    /* its input bytes then */
    uint32_t file_index;
} cli_progress;

/* enabled = !quiet && isatty(stderr). */
void cli_progress_init(cli_progress *p, int quiet);
/* A cdr_progress_fn: pass the cli_progress as progress_user. Redraws with \r. */
void cli_progress_cb(const cdr_progress *pr, void *user);
/* Erase the line (if any). Call before printing anything else on stderr. */
void cli_progress_clear(cli_progress *p);
/* Format n bytes as "12.3 MiB" into buf (>= 16 bytes). */
const char *cli_fmt_bytes(uint64_t n, char *buf);
/* Mask every phone number in s ("13800138000" -> "138****8000", also when
 * written with separators or full-width digits: cdr_text_mask_numbers), for
 * text shown on the terminal or in logs. Cut to cap - 1 bytes. */
const char *cli_mask_digits(const char *s, char *buf, size_t cap);

#endif
