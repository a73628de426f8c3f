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

cdr_err cdr_service_parse(const char *s, size_t n, cdr_service *out)
{
    for (int i = 0; i < CDR_SVC__COUNT; i++) {
        size_t k = 0;
        while (svc_names[i][k])
            k++;
        if (k == n && strncasecmp(s, svc_names[i], n) == 0) {
            *out = (cdr_service)i;
            return CDR_OK;
        }
    }
    return CDR_E_PARSE;
}

cdr_err cdr_direction_parse(const char *s, size_t n, cdr_direction *out)
{
    if (n == 0 || (n == 2 && strncasecmp(s, "mo", 2) == 0)) {
        *out = CDR_DIR_MO;
        return CDR_OK;
    }
    if (n == 2 && strncasecmp(s, "mt", 2) == 0) {
        *out = CDR_DIR_MT;
        return CDR_OK;
    }
    return CDR_E_PARSE;
}
