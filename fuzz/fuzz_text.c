/*
 * Fuzz target: text made safe to show (include/cdrecon/textsafe.h). Any bytes
 * through the terminal escaper, the rejects' lossless escaper, the display
 * width and the number masker. Besides "no crash":
 *   - cdr_text_escape gives valid UTF-8 without an unsafe character, and
 *     decoding its \xHH gives the input back (when the input has no '\');
 *     with a smaller buffer it gives a prefix of the same text;
 *   - cdr_bytes_escape gives valid UTF-8 without control bytes but TAB, LF,
 *     CR, and always decodes back to the input;
 *   - cdr_text_mask_numbers is never longer than its input, leaves a text
 *     with fewer than 8 digits as it is, keeps valid UTF-8 valid, and keeps
 *     a text unchanged when the whole text's digits are the "own" number.
 */
#include "fuzz_util.h"

#include "cdrecon/common.h"
#include "cdrecon/textsafe.h"

static int clean(const char *s, size_t n, int allow_ws)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = cdr_utf8_len((const unsigned char *)s + i, n - i, &cp);
        if (!k)
            return 0;
        if (allow_ws ? (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f
                     : cdr_char_unsafe(cp))
            return 0;
        i += k;
    }
    return 1;
}

static size_t unescape(const char *s, size_t n, int backslashes, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (backslashes && s[i] == '\\' && i + 1 < n && s[i + 1] == '\\') {
            out[k++] = '\\';
            i += 2;
        } else if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x') {
            unsigned v = 0;
            for (int j = 2; j < 4; j++) {
                char c = s[i + j];
                v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'A' + 10);
            }
            out[k++] = (char)v;
            i += 4;
        } else {
            out[k++] = s[i++];
        }
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *s = (const char *)data;
    size_t cap = 4 * size + 1;
    char *a = malloc(cap), *b = malloc(cap), *back = malloc(size + 1);
    if (!a || !b || !back)
        abort();

    size_t n = cdr_text_escape(s, size, a, cap);
    FZ_CHECK(n < cap && a[n] == '\0' && strlen(a) == n);
    FZ_CHECK(clean(a, n, 0));
    if (!memchr(s, '\\', size)) {
        FZ_CHECK(unescape(a, n, 0, back) == size);
        FZ_CHECK(memcmp(back, s, size) == 0);
    }
    size_t small = 1 + (size ? data[0] % (n + 1) : 0);
    size_t m = cdr_text_escape(s, size, b, small);
    FZ_CHECK(m < small && memcmp(a, b, m) == 0 && clean(b, m, 0));
    (void)cdr_text_width(a, n);

    n = cdr_bytes_escape(s, size, a);
    FZ_CHECK(n < cap && strlen(a) == n && clean(a, n, 1));
    FZ_CHECK(unescape(a, n, 1, back) == size && memcmp(back, s, size) == 0);

    size_t digits = 0;
    for (size_t i = 0; i < size; i++)
        digits += data[i] >= '0' && data[i] <= '9';
    int valid = clean(s, size, 1) || size == 0;
    n = cdr_text_mask_numbers(s, size, NULL, a);
    FZ_CHECK(n <= size && a[n] == '\0');
    if (digits < 8 && !memmem(s, size, "\xef\xbc", 2))
        FZ_CHECK(n == size && memcmp(a, s, size) == 0);
    if (valid)
        FZ_CHECK(clean(a, n, 1));
    /* the own number: the input normalised, when it is nothing but a number */
    cdr_str num;
    if (digits >= 8 && digits == size && cdr_number_normalise(s, size, &num) == CDR_OK) {
        char own[CDR_NUMBER_MAX + 1];
        memcpy(own, num.p, num.n);
        own[num.n] = '\0';
        n = cdr_text_mask_numbers(s, size, own, a);
        FZ_CHECK(n == size && memcmp(a, s, size) == 0);
    }
    free(a);
    free(b);
    free(back);
    return 0;
}
