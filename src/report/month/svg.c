/* cdrecon — the month report's charts: inline SVG, no script
 * (src/report/month/report.h). Coordinates are layout only (double); the values
 * written beside the marks are the exact integers and amounts. */
#include <stdio.h>
#include <string.h>

#include "report.h"

#define SVG_OPEN "<svg xmlns=\"http://www.w3.org/2000/svg\" "
static const char *const palette[] = {"#1a4f8b", "#2e8b57", "#b00020", "#c77800", "#6a3d9a"};

/* A value as shown (grouped) and as data-v (exact). */
static void value_text(textbuf *b, int64_t v, rp_fmt fmt)
{
    if (fmt == RP_FMT_MONEY)
        rp_yuan(b, v);
    else
        rp_count(b, v);
}

static void value_attr(textbuf *b, int64_t v, rp_fmt fmt)
{
    char t[40];
    if (fmt == RP_FMT_MONEY)
        cdr_yuan(v, t);
    else
        snprintf(t, sizeof t, "%lld", (long long)v);
    tb_printf(b, " data-v=\"%s\"", t);
}

void rp_svg_bars(textbuf *b, const char *id, const rp_bar *bars, size_t n, rp_fmt fmt)
{
    const int W = 680, L = 250, R = 120, T = 8, PITCH = 24, BH = 16;
    int H = n ? T + (int)n * PITCH + 6 : 40;
    double plot = W - L - R;
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (bars[i].v > max)
            max = bars[i].v;
    tb_printf(b, SVG_OPEN "class=\"chart bars\" id=\"c-%s\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\">",
              id, W, H, W, H);
    if (n == 0)
        tb_printf(b, "<text x=\"%d\" y=\"24\" font-size=\"12\" fill=\"#555\">无数据 no data</text>",
                  L);
    tb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>", L, T - 4, L,
              H - 2);
    for (size_t i = 0; i < n; i++) {
        int y = T + (int)i * PITCH;
        int64_t v = bars[i].v > 0 ? bars[i].v : 0;
        double w = max > 0 ? (double)v / (double)max * plot : 0.0;
        tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">", L - 6,
                  y + 12);
        rp_esc(b, bars[i].label);
        tb_printf(b, "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                     "fill=\"%s\"",
                  L, y, w, BH, bars[i].alt ? palette[3] : palette[0]);
        value_attr(b, bars[i].v, fmt);
        tb_puts(b, " data-label=\"");
        rp_esc(b, bars[i].label);
        tb_printf(b, "\"/><text x=\"%.1f\" y=\"%d\" font-size=\"11\">", L + w + 4, y + 12);
        value_text(b, bars[i].v, fmt);
        tb_puts(b, "</text>");
    }
    tb_puts(b, "</svg>\n");
}

void rp_svg_lines(textbuf *b, const char *id, const char *const *x, size_t n,
                  const rp_series *s, size_t ns)
{
    const int W = 680, H = 250, L = 50, R = 12, T = 28, B = 34;
    double pw = W - L - R, ph = H - T - B;
    int64_t max = 1;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < n; i++)
            if (s[k].v[i] > max)
                max = s[k].v[i];
#define XP(i) (L + (n > 1 ? (double)(i) * pw / (double)(n - 1) : pw / 2))
#define YP(v) (T + ph - (double)(v) / (double)max * ph)
    tb_printf(b, SVG_OPEN "class=\"chart lines\" id=\"c-%s\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\">",
              id, W, H, W, H);
    tb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
                 "stroke=\"#999\"/>",
              L, T, pw, ph);
    for (int g = 0; g <= 2; g++) {
        int64_t gv = max * g / 2;
        tb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                     "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%lld</text>",
                  L, YP(gv), W - R, YP(gv), L - 4, YP(gv) + 3, (long long)gv);
    }
    size_t step = n > 16 ? (n + 15) / 16 : 1;
    for (size_t i = 0; i < n; i += step) {
        tb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">",
                  XP(i), H - B + 14);
        rp_esc(b, x[i]);
        tb_puts(b, "</text>");
    }
    for (size_t k = 0; k < ns; k++) {
        const char *col = palette[k % (sizeof palette / sizeof *palette)];
        tb_printf(b, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                     "<text x=\"%d\" y=\"17\" font-size=\"11\">%s</text>",
                  L + 4 + (int)k * 150, col, L + 18 + (int)k * 150, s[k].label);
        tb_printf(b, "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" stroke=\"%s\" "
                     "stroke-width=\"2\" points=\"",
                  s[k].key, col);
        for (size_t i = 0; i < n; i++)
            tb_printf(b, "%s%.1f,%.1f", i ? " " : "", XP(i), YP(s[k].v[i]));
        tb_puts(b, "\"/>");
        for (size_t i = 0; i < n; i++)
            tb_printf(b, "<circle class=\"pt\" data-series=\"%s\" data-v=\"%lld\" cx=\"%.1f\" "
                         "cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                      s[k].key, (long long)s[k].v[i], XP(i), YP(s[k].v[i]), col);
    }
    tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">"
                 "夜 night (run)</text>",
              W - R, H - 4);
    tb_puts(b, "</svg>\n");
#undef XP
#undef YP
}

/* Colour of a cell: light grey for 0, else from pale to dark red. */
static void heat_colour(int64_t v, int64_t max, char out[8])
{
    if (v <= 0 || max <= 0) {
        snprintf(out, 8, "#f2f2f2");
        return;
    }
    double f = (double)v / (double)max;
    int r = (int)(0xfc + (0xa5 - 0xfc) * f), g = (int)(0xe0 + (0x0f - 0xe0) * f),
        bl = (int)(0xdd + (0x15 - 0xdd) * f);
    snprintf(out, 8, "#%02x%02x%02x", r & 255, g & 255, bl & 255);
}

void rp_svg_heat(textbuf *b, const char *id, const int64_t v[7][24])
{
    static const char *const days[7] = {"一 Mon", "二 Tue", "三 Wed", "四 Thu",
                                        "五 Fri", "六 Sat", "日 Sun"};
    const int CW = 24, CH = 20, L = 56, T = 18;
    int W = L + 24 * CW + 8, H = T + 7 * CH + 24;
    int64_t max = 0;
    for (int d = 0; d < 7; d++)
        for (int h = 0; h < 24; h++)
            if (v[d][h] > max)
                max = v[d][h];
    tb_printf(b, SVG_OPEN "class=\"chart heat\" id=\"c-%s\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\">",
              id, W, H, W, H);
    for (int h = 0; h < 24; h++)
        tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%d</text>",
                  L + h * CW + CW / 2, T - 5, h);
    for (int d = 0; d < 7; d++) {
        int y = T + d * CH;
        tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%s</text>",
                  L - 4, y + 14, days[d]);
        for (int h = 0; h < 24; h++) {
            char col[8];
            heat_colour(v[d][h], max, col);
            tb_printf(b, "<rect class=\"cell\" data-day=\"%d\" data-hour=\"%d\" data-v=\"%lld\" "
                         "x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                         "stroke=\"#fff\"/>",
                      d, h, (long long)v[d][h], L + h * CW, y, CW, CH, col);
            if (v[d][h] > 0)
                tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\" "
                             "fill=\"%s\">%lld</text>",
                          L + h * CW + CW / 2, y + 13,
                          v[d][h] * 2 > max ? "#fff" : "#111", (long long)v[d][h]);
        }
    }
    tb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"10\">时 hour of day (start time); "
                 "最多 max %lld</text>",
              L, H - 6, (long long)max);
    tb_puts(b, "</svg>\n");
}
