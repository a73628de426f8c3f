/*
 * money_driver — feeds the library's money functions one case per stdin line
 * and prints the result, for tools/money_ref.py to check against exact
 * decimal arithmetic:
 *   P TEXT              -> "P CODE VALUE"  cdr_money_parse (VALUE 0 on error)
 *   F VALUE MIN         -> "F TEXT"        cdr_money_format
 *   R NUM DEN STEP      -> "R CODE VALUE"  cdr_money_round (NUM, DEN: int128)
 * CODE is the cdr_err number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrecon/common.h"

static __int128 parse_i128(const char *s)
{
    int neg = *s == '-';
    __int128 v = 0;
    if (neg)
        s++;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}

int main(void)
{
    static char line[1 << 16];
    char out[64];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        if (line[0] == 'P' && line[1] == ' ') {
            cdr_money v = 0;
            cdr_err e = cdr_money_parse(line + 2, n - 2, &v);
            printf("P %d %lld\n", (int)e, (long long)(e == CDR_OK ? v : 0));
        } else if (line[0] == 'F') {
            long long v;
            int mind;
            if (sscanf(line + 2, "%lld %d", &v, &mind) != 2)
                return 2;
            cdr_money_format(v, mind, out);
            printf("F %s\n", out);
        } else if (line[0] == 'R') {
            char a[64], b[64];
            long long step;
            if (sscanf(line + 2, "%63s %63s %lld", a, b, &step) != 3)
                return 2;
            cdr_money v = 0;
            cdr_err e = cdr_money_round(parse_i128(a), parse_i128(b), step, &v);
            printf("R %d %lld\n", (int)e, (long long)(e == CDR_OK ? v : 0));
        } else {
            return 2;
        }
    }
    return 0;
}
