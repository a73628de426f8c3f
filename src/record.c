/* cdrecon — names of services and directions. */
#include <strings.h>
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
