/* Unit tests: the month report's SVG charts and text helpers
 * (src/report/month/report.h): one mark per value, lengths proportional to the
 * values, exact values in data-v, labels escaped and numbers masked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "report.h"

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* The value of attribute `name` of the k-th element starting with `tag`. */
static double attr(const char *s, const char *tag, size_t k, const char *name)
{
    const char *p = s;
    for (size_t i = 0; i <= k; i++) {
        p = strstr(p, tag);
        assert_non_null(p);
        if (i < k)
            p += strlen(tag);
    }
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *end = strchr(p, '>');
    const char *a = strstr(p, key);
    assert_non_null(a);
    assert_true(a < end);
    return strtod(a + strlen(key), NULL);
}

static const char *attr_text(const char *s, const char *tag, size_t k, const char *name,
                             char *buf, size_t len)
{
    const char *p = s;
    for (size_t i = 0; i <= k; i++) {
        p = strstr(p, tag);
        assert_non_null(p);
        if (i < k)
            p += strlen(tag);
    }
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(p, key);
    assert_non_null(a);
    a += strlen(key);
    size_t n = strcspn(a, "\"");
    snprintf(buf, len, "%.*s", (int)n, a);
    return buf;
}

/* No 11-digit run of digits anywhere. */
static int has_long_number(const char *s)
{
    int run = 0;
    for (; *s; s++) {
        run = (*s >= '0' && *s <= '9') ? run + 1 : 0;
        if (run >= 11)
            return 1;
    }
    return 0;
}

static void test_bars_count_and_scale(void **state)
{
    (void)state;
    textbuf b = {0};
    rp_bar bars[] = {{"a", 100, 0}, {"b", 50, 0}, {"c", 25, 1}, {"d", 0, 0}, {"e", -7, 0}};
    rp_svg_bars(&b, "x", bars, 5, RP_FMT_COUNT);
    assert_false(b.oom);
    assert_int_equal(count(b.p, "<rect class=\"bar\""), 5);
    assert_int_equal(count(b.p, "<svg "), 1);
    assert_int_equal(count(b.p, "</svg>"), 1);
    double w0 = attr(b.p, "<rect class=\"bar\"", 0, "width");
    assert_true(w0 > 100.0); /* the largest fills the plot */
    assert_true(attr(b.p, "<rect class=\"bar\"", 1, "width") == w0 / 2);
    assert_true(attr(b.p, "<rect class=\"bar\"", 2, "width") == w0 / 4);
    assert_true(attr(b.p, "<rect class=\"bar\"", 3, "width") == 0.0);
    assert_true(attr(b.p, "<rect class=\"bar\"", 4, "width") == 0.0); /* negative: no bar */
    char v[64];
    assert_string_equal(attr_text(b.p, "<rect class=\"bar\"", 4, "data-v", v, sizeof v), "-7");
    assert_string_equal(attr_text(b.p, "<rect class=\"bar\"", 1, "data-label", v, sizeof v),
                        "b");
    /* the second colour for alt bars */
    assert_string_equal(attr_text(b.p, "<rect class=\"bar\"", 2, "fill", v, sizeof v),
                        "#c77800");
    assert_string_not_equal(attr_text(b.p, "<rect class=\"bar\"", 0, "fill", v, sizeof v),
                            "#c77800");
    tb_free(&b);
}

static void test_bars_money_and_empty(void **state)
{
    (void)state;
    textbuf b = {0};
    rp_bar bars[] = {{"big", 1234567890000LL, 0}, {"small", 190000, 0}};
    rp_svg_bars(&b, "m", bars, 2, RP_FMT_MONEY);
    char v[64];
    /* exact yuan in data-v, grouped yuan as the text */
    assert_string_equal(attr_text(b.p, "<rect class=\"bar\"", 0, "data-v", v, sizeof v),
                        "1234567.89");
    assert_string_equal(attr_text(b.p, "<rect class=\"bar\"", 1, "data-v", v, sizeof v),
                        "0.19");
    assert_non_null(strstr(b.p, ">1,234,567.89</text>"));
    tb_free(&b);

    rp_svg_bars(&b, "none", NULL, 0, RP_FMT_COUNT);
    assert_int_equal(count(b.p, "<rect class=\"bar\""), 0);
    assert_non_null(strstr(b.p, "no data"));
    tb_free(&b);

    /* all zero: no division by zero, every bar 0 wide */
    rp_bar z[] = {{"a", 0, 0}, {"b", 0, 0}};
    rp_svg_bars(&b, "z", z, 2, RP_FMT_COUNT);
    assert_true(attr(b.p, "<rect class=\"bar\"", 1, "width") == 0.0);
    tb_free(&b);
}

static void test_bars_escape_and_mask(void **state)
{
    (void)state;
    textbuf b = {0};
    rp_bar bars[] = {{"<script>alert(1)</script> & \"q\" 'x'", 3, 0},
                     {"13800138000 call", 2, 0},
                     {"bad \x1b[2J \xff byte", 1, 0}};
    rp_svg_bars(&b, "e", bars, 3, RP_FMT_COUNT);
    assert_null(strstr(b.p, "<script"));
    assert_non_null(strstr(b.p, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; "
                                "&#39;x&#39;"));
    assert_null(strstr(b.p, "13800138000"));
    assert_non_null(strstr(b.p, "138****8000 call"));
    assert_false(has_long_number(b.p));
    assert_null(strchr(b.p, '\x1b'));
    assert_null(strchr(b.p, '\xff'));
    assert_non_null(strstr(b.p, "\xEF\xBF\xBD[2J"));
    tb_free(&b);
}

static void test_lines(void **state)
{
    (void)state;
    textbuf b = {0};
    const char *x[] = {"r1", "r2", "r3", "r4"};
    int64_t a[] = {0, 4, 2, 8}, c[] = {1, 1, 1, 1};
    rp_series s[] = {{"proposed", "p", a}, {"withdrawn", "w", c}};
    rp_svg_lines(&b, "l", x, 4, s, 2);
    assert_int_equal(count(b.p, "<polyline class=\"series\""), 2);
    assert_int_equal(count(b.p, "<circle class=\"pt\""), 8);
    assert_int_equal(count(b.p, "data-series=\"proposed\""), 5);
    /* y: the largest value at the top of the plot, 0 at the bottom, linear */
    double y0 = attr(b.p, "<circle class=\"pt\"", 0, "cy");
    double y4 = attr(b.p, "<circle class=\"pt\"", 1, "cy");
    double y8 = attr(b.p, "<circle class=\"pt\"", 3, "cy");
    assert_true(y8 < y4 && y4 < y0);
    assert_true(y4 - y8 == y0 - y4 || (y4 - y8) - (y0 - y4) < 0.11);
    char v[32];
    assert_string_equal(attr_text(b.p, "<circle class=\"pt\"", 3, "data-v", v, sizeof v), "8");
    /* x: evenly spaced */
    double x0 = attr(b.p, "<circle class=\"pt\"", 0, "cx");
    double x1 = attr(b.p, "<circle class=\"pt\"", 1, "cx");
    double x2 = attr(b.p, "<circle class=\"pt\"", 2, "cx");
    assert_true((x1 - x0) - (x2 - x1) < 0.11 && (x2 - x1) - (x1 - x0) < 0.11);
    tb_free(&b);

    /* one point and all zeros: drawn, nothing divides by zero */
    int64_t one[] = {0};
    rp_series s1[] = {{"proposed", "p", one}};
    rp_svg_lines(&b, "l1", x, 1, s1, 1);
    assert_int_equal(count(b.p, "<circle class=\"pt\""), 1);
    assert_null(strstr(b.p, "nan"));
    assert_null(strstr(b.p, "inf"));
    tb_free(&b);
}

static void test_heat(void **state)
{
    (void)state;
    textbuf b = {0};
    int64_t v[7][24];
    memset(v, 0, sizeof v);
    v[2][1] = 6;  /* Wednesday 01:00: the most */
    v[6][22] = 3; /* Sunday 22:00 */
    rp_svg_heat(&b, "h", v);
    assert_int_equal(count(b.p, "<rect class=\"cell\""), 7 * 24);
    assert_non_null(strstr(b.p, "data-day=\"2\" data-hour=\"1\" data-v=\"6\""));
    assert_non_null(strstr(b.p, "data-day=\"6\" data-hour=\"22\" data-v=\"3\""));
    /* darkest for the largest, grey for none */
    char f[16];
    const char *cell = strstr(b.p, "data-day=\"2\" data-hour=\"1\"");
    assert_string_equal(attr_text(cell - 20, "<rect", 0, "fill", f, sizeof f), "#a50f15");
    cell = strstr(b.p, "data-day=\"0\" data-hour=\"0\"");
    assert_string_equal(attr_text(cell - 20, "<rect", 0, "fill", f, sizeof f), "#f2f2f2");
    tb_free(&b);
}

static void test_text(void **state)
{
    (void)state;
    textbuf b = {0};
    rp_yuan(&b, -1234567891000LL);
    tb_puts(&b, "|");
    rp_yuan(&b, 5000);
    tb_puts(&b, "|");
    rp_count(&b, 1234567);
    tb_puts(&b, "|");
    rp_count(&b, -999);
    tb_puts(&b, "|");
    rp_yuan(&b, CDR_MONEY_TOTAL_OVER);
    assert_string_equal(b.p, "-1,234,567.891|0.005|1,234,567|-999|out of range");
    tb_free(&b);
    rp_esc(&b, "a\tb\nc\x01" "d\x7f" "e\xe2\x80\xae" "f 008613800138000");
    assert_string_equal(b.p, "a\tb\nc\xEF\xBF\xBD" "d\xEF\xBF\xBD" "e\xEF\xBF\xBD"
                             "f 0086138****8000");
    tb_free(&b);
    /* paths: only runs of 11 digits or more masked */
    rp_esc_path(&b, "/data/20261001/seed42-10000000/<13800138000>/x");
    assert_string_equal(b.p, "/data/20261001/seed42-10000000/&lt;138****8000&gt;/x");
    tb_free(&b);
    /* the shown query: ?1 and ?2 as literals, everything escaped */
    rp_sql_shown(&b, "SELECT a < b FROM t WHERE m = ?1 AND d = ?2 AND x = ?", "2026-10",
                 "2026-11-05");
    assert_string_equal(b.p, "SELECT a &lt; b FROM t WHERE m = &#39;2026-10&#39; AND d = "
                             "&#39;2026-11-05&#39; AND x = ?");
    tb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bars_count_and_scale), cmocka_unit_test(test_bars_money_and_empty),
        cmocka_unit_test(test_bars_escape_and_mask), cmocka_unit_test(test_lines),
        cmocka_unit_test(test_heat),                 cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
