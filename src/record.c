/* cdrecon — names of services and directions; the unknown columns as text. */
#include <string.h>
#include "cdrecon/record.h"

static const char *const svc_names[CDR_SVC__COUNT] = {"voice", "sms", "data", "vas"};

const char *cdr_service_name(cdr_service s)
{
    return (unsigned)s < CDR_SVC__COUNT ? svc_names[s] : "?";
}

const char *cdr_direction_name(cdr_direction d)
{
    return d == CDR_DIR_MT ? "mt" : "mo";
}

/* ASCII case-insensitive equality of s[0..n) and the lower-case z (what
 * strncasecmp does in the C locale, without its cost per row). */
static int ieq_ascii(const char *s, size_t n, const char *z)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)z[i] || !z[i])
            return 0;
    }
    return z[n] == '\0';
}

cdr_err cdr_service_parse(const char *s, size_t n, cdr_service *out)
{
    static const unsigned char len[CDR_SVC__COUNT] = {5, 3, 4, 3}; /* of svc_names */
    for (int i = 0; i < CDR_SVC__COUNT; i++) {
        if (len[i] == n && ieq_ascii(s, n, svc_names[i])) {
            *out = (cdr_service)i;
            return CDR_OK;
        }
    }
    return CDR_E_PARSE;
}

cdr_err cdr_direction_parse(const char *s, size_t n, cdr_direction *out)
{
    if (n == 0 || ieq_ascii(s, n, "mo")) {
        *out = CDR_DIR_MO;
        return CDR_OK;
    }
    if (ieq_ascii(s, n, "mt")) {
        *out = CDR_DIR_MT;
        return CDR_OK;
    }
    return CDR_E_PARSE;
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
