/* cdrecon — names of services and directions; the unknown columns as text. */
#include <string.h>
#include "cdrecon/record.h"
#include "hashfn.h"

static const char *const svc_names[CDR_SVC__COUNT] = {"voice", "sms", "data", "vas"};

const char *cdr_service_name(cdr_service s)
{
    return (unsigned)s < CDR_SVC__COUNT ? svc_names[s] : "?";
}

const char *cdr_direction_name(cdr_direction d)
{
    return d == CDR_DIR_MT ? "mt" : "mo";
}

/* The n (1..7) bytes at s as a little-endian word, every byte OR 0x20: for
 * bytes that are letters, the lower case. Compared with a name made of
 * lower-case letters it matches exactly the ASCII case-insensitive
 * spellings of that name (a byte b has b | 0x20 == a lower-case letter
 * only when b is that letter in either case). */
static uint64_t lower_word(const char *s, size_t n)
{
    return cdr_tail_word((const unsigned char *)s, n, n) | (0x2020202020202020ull >> (8 * (8 - n)));
}
#define W2(a, b) ((uint64_t)(a) | (uint64_t)(b) << 8)
#define W3(a, b, c) ((uint64_t)(a) | (uint64_t)(b) << 8 | (uint64_t)(c) << 16)
#define W4(a, b, c, d) (W3(a, b, c) | (uint64_t)(d) << 24)
#define W5(a, b, c, d, e) (W4(a, b, c, d) | (uint64_t)(e) << 32)

/* Without a branch per name: records of every service come mixed, so a
 * chain of comparisons was mispredicted on most rows. */
cdr_err cdr_service_parse(const char *s, size_t n, cdr_service *out)
{
    if (n < 3 || n > 5)
        return CDR_E_PARSE;
    uint64_t w = lower_word(s, n) | (uint64_t)n << 56;
    static const uint64_t key[CDR_SVC__COUNT] = {
        W5('v', 'o', 'i', 'c', 'e') | 5ull << 56, W3('s', 'm', 's') | 3ull << 56,
        W4('d', 'a', 't', 'a') | 4ull << 56, W3('v', 'a', 's') | 3ull << 56};
    int hit = -1;
    for (int i = 0; i < CDR_SVC__COUNT; i++)
        hit = w == key[i] ? i : hit;
    if (hit < 0)
        return CDR_E_PARSE;
    *out = (cdr_service)hit;
    return CDR_OK;
}

cdr_err cdr_direction_parse(const char *s, size_t n, cdr_direction *out)
{
    if (n == 0) {
        *out = CDR_DIR_MO;
        return CDR_OK;
    }
    uint64_t w = n == 2 ? lower_word(s, 2) : 0;
    if (w != W2('m', 'o') && w != W2('m', 't'))
        return CDR_E_PARSE;
    *out = w == W2('m', 't') ? CDR_DIR_MT : CDR_DIR_MO;
    return CDR_OK;
}

size_t cdr_row_extras_size(const cdr_row *r)
{
    size_t n = 1;
    for (uint32_t i = 0; i < r->n_extra; i++)
        n += r->extra_names[i].n + r->extra[i].n + 2;
    return n;
}

size_t cdr_row_extras_join(const cdr_row *r, char *dst)
{
    size_t k = 0;
    for (uint32_t i = 0; i < r->n_extra; i++) {
        if (i)
            dst[k++] = ';';
        if (r->extra_names[i].n)
            memcpy(dst + k, r->extra_names[i].p, r->extra_names[i].n);
        k += r->extra_names[i].n;
        dst[k++] = '=';
        if (r->extra[i].n)
            memcpy(dst + k, r->extra[i].p, r->extra[i].n);
        k += r->extra[i].n;
    }
    return k;
}
