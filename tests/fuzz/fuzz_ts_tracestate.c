/*
 * Fuzz target: the tail_sampling processor's W3C tracestate reader
 * (plugins/processors/tail_sampling/ts_tracestate.c), which reads span data
 * as it came from clients.
 *
 * Input: byte 0 is the length K of the key (mod 17), the next K bytes the key,
 * the rest the tracestate. Properties: no read outside the input (ASan); a
 * value found lies inside the tracestate, right after "key=", within one list
 * member (no ',' in it), and the member's text before the key is only spaces
 * and tabs after the previous ',' (or the start); when the first member that
 * has the key is asked by a reference written differently (split on ','), the
 * answers agree. Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_tracestate.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_ts_tracestate: property violated: %s\n", what);
        abort();
    }
}

/* The reference: the members one by one, trimmed, compared as "key=". */
static int reference(const char *s, size_t len, const char *key, size_t klen, size_t *off,
                     size_t *vlen)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') continue;
        size_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        size_t e = a;
        while (e < b && s[e] != '=')
            e++;
        if (e < b && e - a == klen && memcmp(s + a, key, klen) == 0) {
            *off = e + 1;
            *vlen = b - (e + 1);
            return 1;
        }
        start = i + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t klen = data[0] % 17;
    if (size < 1 + klen) return 0;
    /* Copies, so that ASan sees reads past either end. */
    char *key = malloc(klen ? klen : 1);
    size_t len = size - 1 - klen;
    char *s = malloc(len ? len : 1);
    if (!key || !s) abort();
    memcpy(key, data + 1, klen);
    memcpy(s, data + 1 + klen, len);

    const char *val = NULL;
    size_t vlen = 0, roff = 0, rlen = 0;
    int found = ts_tracestate_get(s, len, key, klen, &val, &vlen);
    int rfound = reference(s, len, key, klen, &roff, &rlen);
    check(found == rfound, "found iff the reference finds it");
    if (found) {
        check(val >= s + 1 && val + vlen <= s + len, "the value lies inside the input");
        check(val[-1] == '=', "the value follows '='");
        check(memchr(val, ',', vlen) == NULL, "the value is within one member");
        check((size_t)(val - s) == roff && vlen == rlen, "the same value as the reference");
        check((size_t)(val - 1 - s) >= klen && memcmp(val - 1 - klen, key, klen) == 0,
              "the key precedes '='");
    }
    free(key);
    free(s);
    return 0;
}
