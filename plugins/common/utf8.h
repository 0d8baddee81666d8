/*
 * utf8.h - UTF-8 validation, for OTLP strings (which the specification requires
 * to be valid UTF-8) at the receivers.
 */
#ifndef SY_COMMON_UTF8_H
#define SY_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Whether p[0..len) is well-formed UTF-8 as Unicode defines it (table 3-7): no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence. NUL bytes are valid. Pure ASCII goes 8 bytes at a time.
 */
static inline bool syc_utf8_valid(const uint8_t *p, size_t len);

/* The out-of-line part of syc_utf8_valid(), from the first byte that may not be
 * ASCII. */
bool syc_utf8_valid_from(const uint8_t *p, size_t len);

/* Inline so that the short ASCII strings telemetry is made of cost no call: 8
 * bytes at a time, the tail as one overlapping 8- or 4-byte read; anything with
 * a high bit goes out of line. */
static inline bool syc_utf8_valid(const uint8_t *p, size_t len)
{
    if (len >= 8 && len <= 16) { /* most keys and values: two overlapping reads */
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        return !((a | b) & 0x8080808080808080ull) || syc_utf8_valid_from(p, len);
    }
    if (len > 16) {
        uint64_t w;
        size_t i = 0;
        for (; len - i >= 8; i += 8) {
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) return syc_utf8_valid_from(p + i, len - i);
        }
        if (i == len) return true;
        memcpy(&w, p + len - 8, 8);
        return !(w & 0x8080808080808080ull) || syc_utf8_valid_from(p + i, len - i);
    }
    if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        return !((a | b) & 0x80808080u) || syc_utf8_valid_from(p, len);
    }
    uint8_t any = 0;
    for (size_t k = 0; k < len; k++)
        any |= p[k];
    return any < 0x80 || syc_utf8_valid_from(p, len);
}

/*
 * Whether the \u escapes of a JSON text pair up as UTF-16 requires: every high
 * surrogate escape (\uD800..\uDBFF) followed at once by a low one
 * (\uDC00..\uDFFF), and no low one alone. Other escapes and malformed JSON are
 * left to the JSON parser. On false, *at is the offset of the offending escape.
 */
bool syc_json_surrogates_valid(const uint8_t *json, size_t len, size_t *at);

#endif
