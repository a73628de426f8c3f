/* cdrecon — the month report: HTML escaping with number masking, number
 * formatting, category words (src/report/month/report.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/evidence.h"
#include "cdrecon/findings.h"
#include "cdrecon/textsafe.h"
#include "report.h"

/* HTML-escape n bytes of text that is already masked; control characters
 * (TAB and LF kept), bidi overrides and invalid bytes become U+FFFD. */
static void esc_html(textbuf *b, const unsigned char *p, size_t n)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const char *ent = c == '&'    ? "&amp;"
                          : c == '<'  ? "&lt;"
                          : c == '>'  ? "&gt;"
                          : c == '"'  ? "&quot;"
                          : c == '\'' ? "&#39;"
                                      : NULL;
        if (ent) {
            tb_puts(b, ent);
            i++;
            continue;
        }
        uint32_t cp = 0;
        size_t k = cdr_utf8_len(p + i, n - i, &cp);
        if (!k || (cdr_char_unsafe(cp) && cp != '\t' && cp != '\n')) {
            tb_put(b, fffd, 3);
            i += k ? k : 1;
            continue;
        }
        tb_put(b, (const char *)p + i, k);
        i += k;
    }
}

void rp_escn(textbuf *b, const char *s, size_t n)
{
    char small[512];
    char *m = n < sizeof small ? small : malloc(n + 1);
    if (!m) {
        b->oom = 1;
        return;
    }
    size_t k = cdr_text_mask_numbers(s ? s : "", s ? n : 0, NULL, m);
    esc_html(b, (const unsigned char *)m, k);
    if (m != small)
        free(m);
}

void rp_esc(textbuf *b, const char *s)
{
    rp_escn(b, s ? s : "", s ? strlen(s) : 0);
}

void rp_esc_path(textbuf *b, const char *s)
{
    size_t n = strlen(s ? s : "");
    char *m = malloc(n + 1);
    if (!m) {
        b->oom = 1;
        return;
    }
    memcpy(m, s ? s : "", n + 1);
    for (size_t i = 0; i < n;) {
        size_t k = strspn(m + i, "0123456789");
        if (k >= 11)
            memset(m + i + 3, '*', k - 7);
        i += k ? k : 1;
    }
    esc_html(b, (const unsigned char *)m, n);
    free(m);
}

/* Digits with a comma every three from the right (s: optional '-', digits,
 * then anything: the decimals are copied as they are). */
static void grouped(textbuf *b, const char *s)
{
    if (*s == '-')
        tb_put(b, s++, 1);
    size_t d = strspn(s, "0123456789");
    for (size_t i = 0; i < d; i++) {
        if (i && (d - i) % 3 == 0)
            tb_put(b, ",", 1);
        tb_put(b, s + i, 1);
    }
    tb_puts(b, s + d);
}

void rp_count(textbuf *b, int64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)v);
    grouped(b, t);
}

void rp_yuan(textbuf *b, cdr_money v)
{
    char t[40];
    cdr_yuan(v, t);
    if (v == CDR_MONEY_TOTAL_OVER)
        tb_puts(b, t);
    else
        grouped(b, t);
}

/* ---- category words ---- */

static int category_of(const char *key)
{
    if (!key || !*key)
        return -1;
    for (int c = 0; c < CDR_CAT__COUNT; c++)
        if (strcmp(cdr_category_name((cdr_category)c), key) == 0)
            return c;
    return -1;
}

const char *rp_category_zh(const char *key)
{
    int c = category_of(key);
    if (c == CDR_CAT_LEAKAGE)
        return "少收 (收入流失)";
    return c < 0 ? "" : cdr_category_zh((cdr_category)c);
}

const char *rp_category_en(const char *key)
{
    static const char *const en[CDR_CAT__COUNT] = {
        "duplicate record charged",      "free number charged",
        "0-second call charged",         "parts of a call rounded separately",
        "SP fee without a subscription", "data charged without usage",
        "bundle allowance not applied",  "plan discount not applied",
        "wrong time band",               "SMS segments over-counted",
        "data volume rounded wrongly",   "charge not as the tariff",
        "undercharge (leakage)",         "flags only"};
    int c = category_of(key);
    return c < 0 ? "" : en[c];
}

/* ---- the page's own words ---- */

static const struct {
    const char *key, *zh, *en;
} words[] = {
    {"records", "记录数", "records stored"},
    {"findings", "问题记录", "findings"},
    {"candidates", "退费候选", "refund candidates"},
    {"overcharge", "多收金额", "overcharge"},
    {"refund", "退费金额 (×2)", "refund (2 x overcharge)"},
    {"leakage", "少收金额", "leakage (undercharge)"},
    {"rejects", "拒收行", "rejected rows"},
    {"unrated", "无法计费", "unrated records"},
    {"count", "条", "count"},
    {"micro", "元", "yuan"},
    {"run", "入库", "run"},
    {"rerate", "重算", "re-rate"},
    {"compact", "合并", "compact"},
    {"refund_first", "先退费后查证", "refund first"},
    {"verify_first", "先查证后退费", "verify first"},
    {"passed", "已过期限", "deadline passed"},
    {"today", "今日到期", "due today"},
    {"open", "未到期", "not yet due"},
    {"ingested", "已入库", "ingested"},
    {"failed", "失败", "failed"},
    {"refused", "拒收", "refused"},
    {"voice", "语音", "voice"},
    {"sms", "短信", "sms"},
    {"data", "上网", "data"},
    {"vas", "增值业务", "vas"},
};

static int word(const char *key)
{
    for (size_t i = 0; key && i < sizeof words / sizeof *words; i++)
        if (strcmp(words[i].key, key) == 0)
            return (int)i;
    return -1;
}

const char *rp_word_zh(const char *key)
{
    int i = word(key);
    return i < 0 ? NULL : words[i].zh;
}

const char *rp_word_en(const char *key)
{
    int i = word(key);
    return i < 0 ? NULL : words[i].en;
}
