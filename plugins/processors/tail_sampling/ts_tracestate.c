/*
 * ts_tracestate.c - one key of a W3C tracestate (ts_tracestate.h).
 */
#include "ts_tracestate.h"

#include <string.h>

bool ts_tracestate_get(const char *s, size_t len, const char *key, size_t keylen, const char **val,
                       size_t *vlen)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        size_t a = i, b = j; /* the member, without its optional white space */
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        const char *eq = b > a ? memchr(s + a, '=', b - a) : NULL;
        if (eq && (size_t)(eq - (s + a)) == keylen && memcmp(s + a, key, keylen) == 0) {
            *val = eq + 1;
            *vlen = (size_t)(s + b - (eq + 1));
            return true;
        }
        i = j + 1;
    }
    return false;
}
