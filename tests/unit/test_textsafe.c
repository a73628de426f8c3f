/* Unit tests: terminal escaping, display width, number masking in free text
 * (include/cdrecon/textsafe.h). Property tests over every byte and over
 * generated numbers written with separators and full-width digits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "testrnd.h"
#include "cdrecon/common.h"
#include "cdrecon/evidence.h"
#include "cdrecon/textsafe.h"

static const char *esc(const char *s, size_t n)
{
    static char b[4096];
    cdr_text_escape(s, n, b, sizeof b);
    return b;
}

static const char *mask(const char *s, const char *own)
{
    static char b[4096];
    cdr_text_mask_numbers(s, strlen(s), own, b);
    return b;
}

/* Is s valid UTF-8 with no unsafe character? */
static int clean_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = cdr_utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!k || cdr_char_unsafe(cp))
            return 0;
        i += k;
    }
    return 1;
}

static void test_escape_examples(void **st)
{
    (void)st;
    assert_string_equal(esc("R1\x1b[2J", 6), "R1\\x1B[2J");
    assert_string_equal(esc("\x1b]52;c;cHduZWQ=\x07", 16), "\\x1B]52;c;cHduZWQ=\\x07");
    assert_string_equal(esc("a\tb\nc", 5), "a\\x09b\\x0Ac");
    assert_string_equal(esc("\x7f", 1), "\\x7F");
    /* C1 CSI (U+009B) and a bidi override (U+202E), valid UTF-8 but unsafe */
    assert_string_equal(esc("\xc2\x9b" "31m", 5), "\\xC2\\x9B31m");
    assert_string_equal(esc("x\xe2\x80\xaey", 5), "x\\xE2\\x80\\xAEy");
    /* invalid UTF-8: a lone continuation byte, a cut character, overlong '/' */
    assert_string_equal(esc("\x80", 1), "\\x80");
    assert_string_equal(esc("\xe4\xb8", 2), "\\xE4\\xB8");
    assert_string_equal(esc("\xc0\xaf", 2), "\\xC0\\xAF");
    /* a NUL inside the given length */
    assert_string_equal(esc("a\0b", 3), "a\\x00b");
    /* valid text passes */
    assert_string_equal(esc("中国移动 ok", strlen("中国移动 ok")), "中国移动 ok");
    /* a small buffer: never a cut escape or character */
    char b[6];
    assert_int_equal(cdr_text_escape("ab\x1b", 3, b, sizeof b), 2);
    assert_string_equal(b, "ab");
    assert_int_equal(cdr_text_escape("a中", strlen("a中"), b, 4), 1);
    assert_string_equal(b, "a");
}

/* Every byte alone, every pair of bytes, and random strings: the output is
 * clean UTF-8, and unescaping it gives the input back (escapes are only
 * ever \xHH, and a backslash in the input is rare enough to check apart). */
static void unescape_cmp(const char *in, size_t n, const char *out)
{
    char back[4096];
    size_t k = 0;
    for (const char *p = out; *p;) {
        if (p[0] == '\\' && p[1] == 'x') {
            unsigned v;
            assert_int_equal(sscanf(p + 2, "%2X", &v), 1);
            back[k++] = (char)v;
            p += 4;
        } else {
            back[k++] = *p++;
        }
    }
    assert_int_equal(k, n);
    assert_memory_equal(back, in, n);
}

static void test_escape_all_bytes(void **st)
{
    (void)st;
    char out[64];
    for (int a = 0; a < 256; a++) {
        char in[2] = {(char)a, 0};
        size_t n = cdr_text_escape(in, 1, out, sizeof out);
        assert_true(clean_utf8(out, n));
        assert_int_equal(strlen(out), n);
        unescape_cmp(in, 1, out);
        if (a < 0x20 || (a >= 0x7f))
            assert_true(out[0] == '\\');
        for (int b = 0; b < 256; b++) {
            char in2[2] = {(char)a, (char)b};
            n = cdr_text_escape(in2, 2, out, sizeof out);
            assert_true(clean_utf8(out, n));
            if (a != '\\')
                unescape_cmp(in2, 2, out);
        }
    }
    uint64_t seed = 0x5eed14;
    for (int t = 0; t < 20000; t++) {
        char in[64], o[4 * 64 + 1];
        size_t n = 1 + trnd(&seed, 63);
        for (size_t i = 0; i < n; i++) {
            in[i] = (char)trnd(&seed, 256);
            if (in[i] == '\\')
                in[i] = 'x';
        }
        size_t k = cdr_text_escape(in, n, o, sizeof o);
        assert_true(clean_utf8(o, k));
        unescape_cmp(in, n, o);
        /* every capacity: a prefix of the whole output, still clean */
        size_t cap = 1 + trnd(&seed, (unsigned)k + 1);
        char small[4 * 64 + 1];
        size_t ks = cdr_text_escape(in, n, small, cap);
        assert_true(ks < cap);
        assert_memory_equal(small, o, ks);
        assert_true(clean_utf8(small, ks));
    }
}

static void test_width(void **st)
{
    (void)st;
    assert_int_equal(cdr_text_width("abc", 3), 3);
    assert_int_equal(cdr_text_width("中国", strlen("中国")), 4);
    assert_int_equal(cdr_text_width("１３９", strlen("１３９")), 6); /* full-width digits */
    assert_int_equal(cdr_text_width("e\xcc\x81", 3), 1);          /* e + combining acute */
    assert_int_equal(cdr_text_width("\xff", 1), 1);
    assert_int_equal(cdr_char_width(0xAC00), 2); /* Hangul */
    assert_int_equal(cdr_char_width(0x1F600), 2);
    assert_int_equal(cdr_char_width('A'), 1);
}

static void test_mask_examples(void **st)
{
    (void)st;
    /* the plain case, as cdr_number_mask */
    assert_string_equal(mask("13812341234", NULL), "138****1234");
    assert_string_equal(mask("call to 13812341234.", NULL), "call to 138****1234.");
    /* the numbers */
    assert_string_equal(mask("139-8765-4321", NULL), "139-****-4321");
    assert_string_equal(mask("+86 139 1111 2222", NULL), "+86 139 **** 2222");
    assert_string_equal(mask("bad msisdn '+86 137 5431 7498'", NULL),
                        "bad msisdn '+86 137 **** 7498'");
    assert_string_equal(mask("１３９８７６５４３２１", NULL), "１３９****４３２１");
    assert_string_equal(mask("0086 139.1111.2222", NULL), "0086 139.****.2222");
    assert_string_equal(mask("(0755) 8888-9999", NULL), "(075*) ****-9999");
    assert_string_equal(mask("139\xe3\x80\x80" "8765\xe3\x80\x80" "4321", NULL),
                        "139\xe3\x80\x80****\xe3\x80\x80" "4321");
    /* the own number stays, however it is written */
    assert_string_equal(mask("13900000001", "13900000001"), "13900000001");
    assert_string_equal(mask("+86 139 0000 0001", "13900000001"), "+86 139 0000 0001");
    assert_string_equal(mask("139-0000-0001 139-0000-0002", "13900000001"),
                        "139-0000-0001 139-****-0002");
    /* short service numbers, amounts, dates and times stay */
    assert_string_equal(mask("10086, 110, 12315", NULL), "10086, 110, 12315");
    assert_string_equal(mask("10086 12315", NULL), "10086 12315");
    /* groups of 5+ digits after a separator start a new number; a short
     * prefix joins ("010 12345678" is one number) */
    assert_string_equal(mask("95588 13812341234", NULL), "95588 138****1234");
    assert_string_equal(mask("010 12345678", NULL), "010 ****5678");
    assert_string_equal(mask("0.19 yuan, 145 chars", NULL), "0.19 yuan, 145 chars");
    assert_string_equal(mask("2026-10-05 12:00:00", NULL), "2026-10-05 12:00:00");
    assert_string_equal(mask("on 2026-10-05 13812341234", NULL), "on 2026-10-05 138****1234");
    assert_string_equal(mask("2026/10/5", NULL), "2026/10/5");
    /* separators only between digits: a trailing one is text */
    assert_string_equal(mask("1381234 - x", NULL), "1381234 - x");
}

static size_t put_digit(char *b, int d, int full)
{
    if (!full) {
        b[0] = (char)('0' + d);
        return 1;
    }
    b[0] = (char)0xEF;
    b[1] = (char)0xBC;
    b[2] = (char)(0x90 + d);
    return 3;
}

/* Generated numbers of 8..15 digits, written with random separators and
 * full-width digits inside random words: no digit of the masked part
 * survives, the first 3 and last 4 do, the words are unchanged, and the
 * own number is never masked. */
static void test_mask_property(void **st)
{
    (void)st;
    static const char *const seps[] = {" ", "-", ".", "\xe3\x80\x80", "\xc2\xa0",
                                       "\xe2\x80\x94", "\xef\xbc\x8d", ") ", "-("};
    static const char *const words[] = {"call ", "peer=", "to:", "号码", "x", "R-",
                                        "note "};
    uint64_t seed = 42;
    for (int t = 0; t < 20000; t++) {
        char digits[16];
        int nd = 8 + (int)trnd(&seed, 8);
        for (int i = 0; i < nd; i++)
            digits[i] = (char)('0' + trnd(&seed, 10));
        /* an 11-digit mobile number starts with 1; other lengths start with
         * 2..9 (no "86"/"0086" prefix and no whole mobile number inside) */
        digits[0] = nd == 11 ? '1' : (char)('2' + trnd(&seed, 8));
        if (digits[0] == '8')
            digits[0] = '9';
        int full = (int)trnd(&seed, 3); /* 0 ASCII, 1 full-width, 2 mixed */
        char text[512], expect[512];
        size_t n = 0, e = 0;
        const char *w1 = words[trnd(&seed, 7)], *w2 = words[trnd(&seed, 7)];
        n += (size_t)sprintf(text + n, "%s", w1);
        e += (size_t)sprintf(expect + e, "%s", w1);
        /* groups: the first of any length (all digits: no separator), the
         * others of 1 to 4 digits after a separator (a group of 5 or more
         * after a separator starts a new number) */
        int used_dash = 0, used_dot = 0;
        int next_cut = 1 + (int)trnd(&seed, (unsigned)nd);
        for (int i = 0; i < nd; i++) {
            int f = full == 2 ? (int)trnd(&seed, 2) : full;
            if (i == next_cut) {
                next_cut = i + 1 + (int)trnd(&seed, 4);
                {
                    /* '-' and '.' at most once each: two of one would make a
                     * number such as 1234-56-78 a date, which is not masked */
                    const char *sp = seps[trnd(&seed, 9)];
                    if ((strchr(sp, '-') && used_dash++) || (strchr(sp, '.') && used_dot++))
                        sp = " ";
                    n += (size_t)sprintf(text + n, "%s", sp);
                    e += (size_t)sprintf(expect + e, "%s", sp);
                }
            }
            n += put_digit(text + n, digits[i] - '0', f);
            if (i >= 3 && i + 4 < nd)
                expect[e++] = '*';
            else
                e += put_digit(expect + e, digits[i] - '0', f);
        }
        /* the word after must not start with a digit or a separator+digit */
        n += (size_t)sprintf(text + n, " %s", w2);
        e += (size_t)sprintf(expect + e, " %s", w2);
        text[n] = expect[e] = '\0';
        char out[512];
        size_t k = cdr_text_mask_numbers(text, n, NULL, out);
        assert_int_equal(k, strlen(out));
        if (strcmp(out, expect) != 0)
            fail_msg("masking '%s': got '%s', want '%s'", text, out, expect);
        /* the own number is kept */
        char own[17];
        memcpy(own, digits, (size_t)nd);
        own[nd] = '\0';
        cdr_text_mask_numbers(text, n, own, out);
        assert_string_equal(out, text);
        /* the evidence's masking is the same function */
        char *m = cdr_evidence_mask_text(text, NULL);
        assert_non_null(m);
        assert_string_equal(m, expect);
        free(m);
    }
}

/* Random bytes: never longer than the input, never a crash, and a text
 * without digits is unchanged. */
static void test_mask_random_bytes(void **st)
{
    (void)st;
    uint64_t seed = 7;
    for (int t = 0; t < 50000; t++) {
        char in[96], out[97];
        size_t n = trnd(&seed, 96);
        int digits = 0;
        for (size_t i = 0; i < n; i++) {
            in[i] = (char)trnd(&seed, 256);
            if (trnd(&seed, 3) == 0)
                in[i] = "0123456789 -.()"[trnd(&seed, 15)];
            digits |= in[i] >= '0' && in[i] <= '9';
            digits |= (unsigned char)in[i] == 0xEF;
        }
        size_t k = cdr_text_mask_numbers(in, n, NULL, out);
        assert_true(k <= n);
        if (!digits) {
            assert_int_equal(k, n);
            assert_memory_equal(in, out, n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_examples), cmocka_unit_test(test_escape_all_bytes),
        cmocka_unit_test(test_width),           cmocka_unit_test(test_mask_examples),
        cmocka_unit_test(test_mask_property),   cmocka_unit_test(test_mask_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
