/*
 * detect_scan.h - the scanners behind detect.h, one per detector, and the byte
 * classes they share. Internal to plugins/common.
 *
 * Every scanner has the same contract: find the first match in s[0, len) that
 * starts at or after `from`, fill *m (offset, len, kind) and return true; or
 * return false when there is none. A scanner may look at bytes before `from`
 * (word boundaries, the local part of an address) but never at or past len.
 * What it finds does not depend on `from` other than by that lower bound, which
 * lets detect.c ask again from the end of another detector's match.
 */
#ifndef SY_COMMON_DETECT_SCAN_H
#define SY_COMMON_DETECT_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"

typedef bool (*syc_detect_scan_fn)(const uint8_t *s, size_t len, size_t from,
                                   syc_detect_match_t *m);

bool syc_detect_scan_card(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);
bool syc_detect_scan_email(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);
bool syc_detect_scan_ipv4(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);
bool syc_detect_scan_ipv6(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);
bool syc_detect_scan_url_password(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);
bool syc_detect_scan_bearer(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m);

/*
 * A dotted quad at s[p] (no boundary checks: the caller makes them): four
 * decimal octets 0..255 without leading zeros. Returns the offset just past it,
 * or 0 when there is none (a quad never ends at 0).
 */
size_t syc_detect_ipv4_at(const uint8_t *s, size_t len, size_t p);

static inline bool syc_is_digit(uint8_t c)
{
    return (unsigned)(c - '0') < 10u;
}

static inline bool syc_is_alpha(uint8_t c)
{
    return (unsigned)((c | 0x20) - 'a') < 26u;
}

static inline bool syc_is_alnum(uint8_t c)
{
    return syc_is_digit(c) || syc_is_alpha(c);
}

/* A word character as regular expressions' \w: letters, digits, underscore. */
static inline bool syc_is_word(uint8_t c)
{
    return syc_is_alnum(c) || c == '_';
}

static inline bool syc_is_hex(uint8_t c)
{
    return syc_is_digit(c) || (unsigned)((c | 0x20) - 'a') < 6u;
}

static inline uint8_t syc_lower(uint8_t c)
{
    return (unsigned)(c - 'A') < 26u ? (uint8_t)(c | 0x20) : c;
}

/* Whether s[p, p + n) equals the lower-case word w, ignoring ASCII case. */
static inline bool syc_ci_at(const uint8_t *s, size_t len, size_t p, const char *w, size_t n)
{
    if (p > len || len - p < n) return false;
    for (size_t i = 0; i < n; i++)
        if (syc_lower(s[p + i]) != (uint8_t)w[i]) return false;
    return true;
}

#endif
