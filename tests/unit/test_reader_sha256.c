/* Unit tests: SHA-256 against the FIPS 180-4 / NIST example vectors, fed
 * in one piece and in every split, and the safe CSV cell writer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cdrecon/reader.h"
#include "csvout.h"
#include "sha256.h"

static void hex_of(const void *p, size_t n, char *hex)
{
    uint8_t d[32];
    cdr_sha256_once(p, n, d);
    cdr_sha256_hex(d, hex);
}

static void test_vectors(void **st)
{
    (void)st;
    char hex[65];
    hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                       "klmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(m896, strlen(m896), hex);
    assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* one million 'a', fed in odd-sized pieces */
    cdr_sha256 c;
    cdr_sha256_init(&c);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof a ? left : sizeof a;
        cdr_sha256_update(&c, a, k);
        left -= k;
    }
    uint8_t d[32];
    cdr_sha256_final(&c, d);
    cdr_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_every_split(void **st)
{
    (void)st;
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof msg; n++) {
        uint8_t want[32];
        cdr_sha256_once(msg, n, want);
        for (size_t cut = 0; cut <= n; cut++) {
            cdr_sha256 c;
            uint8_t got[32];
            cdr_sha256_init(&c);
            cdr_sha256_update(&c, msg, cut);
            cdr_sha256_update(&c, msg + cut, n - cut);
            cdr_sha256_final(&c, got);
            assert_memory_equal(got, want, 32);
        }
    }
}

static char *cell(const char *s, int neutral)
{
    static char out[256];
    memset(out, 0, sizeof out);
    FILE *f = fmemopen(out, sizeof out, "w");
    if (neutral)
        assert_int_equal(cdr_csv_write_cell(f, s, strlen(s)), 0);
    else
        assert_int_equal(cdr_csv_write_raw_cell(f, s, strlen(s)), 0);
    fclose(f);
    return out;
}

static void test_csv_cell(void **st)
{
    (void)st;
    assert_string_equal(cell("plain", 1), "plain");
    assert_string_equal(cell("", 1), "");
    assert_string_equal(cell("a,b", 1), "\"a,b\"");
    assert_string_equal(cell("say \"hi\"", 1), "\"say \"\"hi\"\"\"");
    assert_string_equal(cell("two\nlines", 1), "\"two\nlines\"");
    assert_string_equal(cell("=SUM(A1)", 1), "'=SUM(A1)");
    assert_string_equal(cell("+1", 1), "'+1");
    assert_string_equal(cell("-1", 1), "'-1");
    assert_string_equal(cell("@x", 1), "'@x");
    assert_string_equal(cell("\tx", 1), "'\tx");
    assert_string_equal(cell("\rx", 1), "\"'\rx\"");
    assert_string_equal(cell("=1,2", 1), "\"'=1,2\"");
    assert_string_equal(cell("-0.37", 0), "-0.37");
}

int main(void)
{
    /* t_inflate_zlib.sh runs this again with CDRECON_INFLATE=zlib; the
     * library reads no environment variable, so the test passes it on as
     * the CLI does (main.c). */
    cdr_reader_set_inflate(cdr_inflate_from_name(getenv("CDRECON_INFLATE")));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_csv_cell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
