/*
 * utf8.c - UTF-8 validation (see utf8.h).
 *
 * Telemetry strings are nearly all ASCII, so the loop tests 8 bytes at once for a
 * high bit and only falls back to decoding a sequence when it finds one. The
 * multi-byte checks follow table 3-7 of the Unicode standard: the second byte's
 * range depends on the first byte, which is what rules out overlong forms,
 * surrogates and code points above U+10FFFF without computing the code point.
 */
#include "utf8.h"

#include <string.h>

#define HIGH_BITS 0x8080808080808080ull

bool syc_utf8_valid_from(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path: 8 bytes at a time (memcpy: no alignment assumed). */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & HIGH_BITS) break;
            i += 8;
        }
        if (i == len) break;
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong below U+0800 */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* a continuation byte, 0xc0, 0xc1 or 0xf5.. as a lead */
        }
        if (len - i < need) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (size_t k = 2; k < need; k++)
            if ((p[i + k] & 0xc0) != 0x80) return false;
        i += need;
    }
    return true;
}

static int hex4(const uint8_t *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

bool syc_json_surrogates_valid(const uint8_t *json, size_t len, size_t *at)
{
    size_t i = 0;
    for (;;) {
        const uint8_t *bs = i < len ? memchr(json + i, '\\', len - i) : NULL;
        if (!bs) return true;
        i = (size_t)(bs - json);
        /* A backslash outside a string is a JSON error the parser reports. */
        if (len - i < 2) return true;
        if (json[i + 1] != 'u') {
            i += 2; /* \\, \" and the like: the escaped character is skipped */
            continue;
        }
        unsigned cu;
        if (len - i < 6 || !hex4(json + i + 2, &cu)) return true; /* the parser's error */
        if (cu >= 0xdc00 && cu <= 0xdfff) {
            *at = i;
            return false; /* a low surrogate with no high one before it */
        }
        if (cu >= 0xd800 && cu <= 0xdbff) {
            unsigned lo;
            if (len - i < 12 || json[i + 6] != '\\' || json[i + 7] != 'u' ||
                !hex4(json + i + 8, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                *at = i;
                return false; /* a high surrogate not followed by a low one */
            }
            i += 12;
            continue;
        }
        i += 6;
    }
}
