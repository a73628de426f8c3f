/* cdrecon CLI — progress line on stderr, only when stderr is a terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrecon/common.h"
#include "cdrecon/textsafe.h"
#include "cli.h"
#include "progress.h"

void cli_progress_init(cli_progress *p, int quiet)
{
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->t0 = cli_now_s();
    p->file_index = (uint32_t)-1;
}

const char *cli_fmt_bytes(uint64_t n, char *buf)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, 16, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, 16, "%.1f %s", v, u[i]);
    return buf;
}

const char *cli_mask_digits(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (cap == 0)
        return "";
    if (n + 1 <= cap) {
        cdr_text_mask_numbers(s, n, NULL, buf);
        return buf;
    }
    char *tmp = malloc(n + 1);
    if (!tmp) {
        buf[0] = '\0';
        return buf;
    }
    size_t k = cdr_text_mask_numbers(s, n, NULL, tmp);
    if (k >= cap) { /* cut on a character boundary */
        k = cap - 1;
        while (k > 0 && ((unsigned char)tmp[k] & 0xC0) == 0x80)
            k--;
    }
    memcpy(buf, tmp, k);
    buf[k] = '\0';
    free(tmp);
    return buf;
}

void cli_progress_cb(const cdr_progress *pr, void *user)
{
    cli_progress *p = user;
    if (!p || !p->enabled)
        return;
    /* The reader reports every 16 MiB, the first time with that much read
     * already: rates are measured from the file's first report, and shown
     * only after a second of it (the rows of the first report over the
     * microseconds since gave "187347556932 rows/s"). */
    if (pr->file_index != p->file_index) {
        p->file_index = pr->file_index;
        p->t0 = cli_now_s();
        p->rows0 = pr->rows;
        p->in0 = pr->in_bytes;
    }
    double el = cli_now_s() - p->t0;
    char a[16], b[16], eta[32] = "", rate[40] = "";
    if (el >= 1.0 && pr->rows > p->rows0)
        snprintf(rate, sizeof rate, ", %.0f rows/s", (double)(pr->rows - p->rows0) / el);
    if (pr->in_total > 0 && pr->in_bytes > p->in0 && pr->in_bytes < pr->in_total && el >= 1.0) {
        double left = el * (double)(pr->in_total - pr->in_bytes) / (double)(pr->in_bytes - p->in0);
        snprintf(eta, sizeof eta, ", ETA %.0fs", left);
    }
    if (pr->in_total > 0)
        fprintf(stderr, "\r\033[K%s: %s of %s, %llu rows%s%s", pr->file,
                cli_fmt_bytes(pr->in_bytes, a), cli_fmt_bytes(pr->in_total, b),
                (unsigned long long)pr->rows, rate, eta);
    else
        fprintf(stderr, "\r\033[K%s: %s, %llu rows%s", pr->file,
                cli_fmt_bytes(pr->in_bytes, a), (unsigned long long)pr->rows, rate);
    fflush(stderr);
    p->drawn = 1;
}

void cli_progress_clear(cli_progress *p)
{
    if (p && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = 0;
    }
}
