/*
 * detect.c - a set of detectors, and the walk that merges what its scanners
 * find into one sorted list of non-overlapping ranges (detect_scan.c and
 * detect_token.c hold the scanners).
 *
 * The walk keeps, for each detector turned on, its next match. It takes the
 * one starting first, then asks again the detectors whose pending match starts
 * before the end of the one taken. Nothing is allocated: the pending matches
 * live in a small struct on the caller's stack.
 *
 * Before any scanner runs, one pass over the string (8 bytes a step in a
 * register for short strings, vectorized for long ones) notes which of the
 * bytes the detectors need it holds (digits and how many, '@', ':', '.', '/'),
 * and detectors that cannot match are never called.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "detect_scan.h"

struct syc_detect_set_s {
    uint32_t kinds; /* bit k: detector k is on */
};

static const char *const detect_names[SYC_DETECT_KINDS] = {
    [SYC_DETECT_URL_PASSWORD] = "url_password",
    [SYC_DETECT_BEARER] = "bearer",
    [SYC_DETECT_EMAIL] = "email",
    [SYC_DETECT_CARD] = "card",
    [SYC_DETECT_IPV6] = "ipv6",
    [SYC_DETECT_IPV4] = "ipv4",
};

static const syc_detect_scan_fn detect_scanners[SYC_DETECT_KINDS] = {
    [SYC_DETECT_URL_PASSWORD] = syc_detect_scan_url_password,
    [SYC_DETECT_BEARER] = syc_detect_scan_bearer,
    [SYC_DETECT_EMAIL] = syc_detect_scan_email,
    [SYC_DETECT_CARD] = syc_detect_scan_card,
    [SYC_DETECT_IPV6] = syc_detect_scan_ipv6,
    [SYC_DETECT_IPV4] = syc_detect_scan_ipv4,
};

const char *syc_detect_name(syc_detect_kind_t kind)
{
    return (unsigned)kind < SYC_DETECT_KINDS ? detect_names[kind] : "?";
}

syc_detect_set_t *syc_detect_compile(const char *const *names, size_t n, char *err, size_t err_len)
{
    uint32_t kinds = 0;
    for (size_t i = 0; i < n; i++) {
        int found = -1;
        for (int k = 0; k < SYC_DETECT_KINDS && names[i]; k++)
            if (strcmp(names[i], detect_names[k]) == 0) found = k;
        if (found < 0) {
            if (err && err_len)
                snprintf(err, err_len,
                         "unknown detector \"%s\" (valid: card, email, bearer, ipv4, ipv6, "
                         "url_password)",
                         names[i] ? names[i] : "(null)");
            return NULL;
        }
        kinds |= 1u << found;
    }
    syc_detect_set_t *set = malloc(sizeof(*set));
    if (!set) {
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    set->kinds = kinds;
    return set;
}

void syc_detect_free(syc_detect_set_t *set)
{
    free(set);
}

bool syc_detect_has(const syc_detect_set_t *set, syc_detect_kind_t kind)
{
    return (unsigned)kind < SYC_DETECT_KINDS && (set->kinds >> kind & 1u);
}

bool syc_luhn_valid(const char *digits, size_t n)
{
    if (n == 0) return false;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(uint8_t)digits[n - 1 - i] - '0';
        if (d > 9) return false;
        if (i & 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return sum % 10 == 0;
}

/* ---- the prefilter ---- */

/* The shortest string the bearer detector matches: "apikey=" and one byte. */
#define BEARER_MIN_LEN 8u

/* The shortest string each detector's prefilter condition allows (13 digits; 4
 * digits and a dot; '@' and '.'; ':'; ':', '/' and '@'; the bearer's 8 bytes). */
static const uint8_t detect_min_len[SYC_DETECT_KINDS] = {
    [SYC_DETECT_URL_PASSWORD] = 3, [SYC_DETECT_BEARER] = BEARER_MIN_LEN,
    [SYC_DETECT_EMAIL] = 2,        [SYC_DETECT_CARD] = 13,
    [SYC_DETECT_IPV6] = 1,         [SYC_DETECT_IPV4] = 5,
};

/* The largest of detect_min_len: longer strings pass every length test. */
#define DETECT_LONGEST_MIN_LEN 13u

#define KIND(k)     (1u << (k))
#define NEED_DIGITS (KIND(SYC_DETECT_CARD) | KIND(SYC_DETECT_IPV4))
#define NEED_DOT    (KIND(SYC_DETECT_EMAIL) | KIND(SYC_DETECT_IPV4))
#define NEED_AT     (KIND(SYC_DETECT_EMAIL) | KIND(SYC_DETECT_URL_PASSWORD))
#define NEED_COLON  (KIND(SYC_DETECT_IPV6) | KIND(SYC_DETECT_URL_PASSWORD))
#define NEED_SLASH  KIND(SYC_DETECT_URL_PASSWORD)
/* Strings shorter than this take the word-at-a-time pass below. */
#define SWAR_MAX_LEN 64u

#define ONES 0x0101010101010101ull
#define HIGH 0x8080808080808080ull

/* The high bit of each byte of x that is an ASCII digit. A byte's 7 low bits
 * plus 0x50 (0x46) have their high bit set when they are >= '0' (> '9'); no sum
 * carries into the next byte. */
static inline uint64_t swar_digits(uint64_t x)
{
    uint64_t y = x & ~HIGH;
    return (y + ONES * (0x80 - '0')) & ~(y + ONES * (0x80 - '9' - 1)) & ~x & HIGH;
}

/* Non-zero when a byte of x equals c (exact: the borrow of the classic test
 * only follows a byte that is really zero). */
static inline uint64_t swar_has(uint64_t x, uint8_t c)
{
    uint64_t v = x ^ (ONES * c);
    return (v - ONES) & ~v & HIGH;
}

/* The same counts as the loop below, 8 bytes a step in a 64-bit register, for
 * the short values most attributes hold: the vectorized loop's set-up and its
 * byte-by-byte tail cost more than the string there. Only what `need` asks for
 * is computed; the tail is read through a zeroed word (a zero byte is none of
 * the bytes looked for). */
static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t load32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* The n bytes (1 to 8) at p in the low bytes of a word, the others zero, read
 * with whole loads inside [p, p + n): a copy of a variable length through memory
 * costs a store-forwarding stall (a dozen cycles) on every word. Overlapping
 * loads put the same byte at the same place, so OR-ing them is exact. */
static inline uint64_t load_tail(const uint8_t *p, size_t n)
{
    if (n >= 4) {
        uint64_t lo = load32(p), hi = load32(p + n - 4);
        return lo | hi << (8 * (n - 4));
    }
    uint64_t w = p[0];
    w |= (uint64_t)p[n / 2] << (8 * (n / 2));
    w |= (uint64_t)p[n - 1] << (8 * (n - 1));
    return w;
}

static void counts_swar(uint32_t need, const uint8_t *s, size_t len, size_t *digits, uint64_t *at,
                        uint64_t *colon, uint64_t *dot, uint64_t *slash)
{
    size_t d = 0;
    for (size_t i = 0; i < len; i += 8) {
        size_t n = len - i;
        /* The last partial word: the last 8 bytes of s shifted down when s has
         * 8 (the bytes already counted fall out), else loaded piecewise. */
        uint64_t w = n >= 8     ? load64(s + i)
                     : len >= 8 ? load64(s + len - 8) >> (8 * (8 - n))
                                : load_tail(s + i, n);
        if (need & NEED_DIGITS) d += ((swar_digits(w) >> 7) * ONES) >> 56;
        if (need & NEED_AT) *at |= swar_has(w, '@');
        if (need & NEED_COLON) *colon |= swar_has(w, ':');
        if (need & NEED_DOT) *dot |= swar_has(w, '.');
        if (need & NEED_SLASH) *slash |= swar_has(w, '/');
    }
    *digits = d;
}

/*
 * Which detectors of `kinds` can match s at all, from the bytes it holds: a
 * card needs 13 digits, an IPv4 address 4 digits and a dot, an e-mail address
 * '@' and '.', an IPv6 address ':', a URL password ':', '/' and '@'. Detectors
 * whose condition the length alone rules out are dropped first, and a string
 * no remaining detector needs to look into (bearer alone) is not read. Long
 * strings take a loop of branch-free compares and sums that the compiler
 * vectorizes (16 or 32 bytes a step); short ones counts_swar().
 */
static uint32_t prefilter(uint32_t kinds, const uint8_t *s, size_t len)
{
    if (len < DETECT_LONGEST_MIN_LEN)
        for (int k = 0; k < SYC_DETECT_KINDS; k++)
            if (len < detect_min_len[k]) kinds &= ~KIND(k);
    if (!(kinds & ~KIND(SYC_DETECT_BEARER))) return kinds;
    size_t digits = 0;
    uint64_t at = 0, colon = 0, dot = 0, slash = 0;
    if (len < SWAR_MAX_LEN) {
        counts_swar(kinds, s, len, &digits, &at, &colon, &dot, &slash);
    } else {
        /* Byte-wide counters, 255 bytes at a time, keep the vector lanes bytes. */
        uint8_t at8 = 0, colon8 = 0, dot8 = 0, slash8 = 0;
        for (size_t block = 0; block < len; block += 255) {
            size_t end = len - block < 255 ? len : block + 255;
            uint8_t d = 0;
            for (size_t i = block; i < end; i++) {
                uint8_t c = s[i];
                d += (uint8_t)(c - '0') < 10;
                at8 |= c == '@';
                colon8 |= c == ':';
                dot8 |= c == '.';
                slash8 |= c == '/';
            }
            digits += d;
        }
        at = at8, colon = colon8, dot = dot8, slash = slash8;
    }
    uint32_t can = KIND(SYC_DETECT_BEARER);
    if (digits >= 13) can |= KIND(SYC_DETECT_CARD);
    if (at && dot) can |= KIND(SYC_DETECT_EMAIL);
    if (digits >= 4 && dot) can |= KIND(SYC_DETECT_IPV4);
    if (colon) can |= KIND(SYC_DETECT_IPV6);
    if (colon && slash && at) can |= KIND(SYC_DETECT_URL_PASSWORD);
    return kinds & can;
}

/* ---- the merging walk ---- */

typedef struct detect_walk_s {
    const uint8_t *s;
    size_t len;
    uint32_t pending; /* bit k: next[k] holds detector k's next match */
    syc_detect_match_t next[SYC_DETECT_KINDS];
} detect_walk_t;

static void walk_init(detect_walk_t *w, const syc_detect_set_t *set, const char *s, size_t len)
{
    w->s = (const uint8_t *)s;
    w->len = len;
    w->pending = 0;
    uint32_t kinds = len ? prefilter(set->kinds, w->s, len) : 0;
    if (!kinds) return;
    for (int k = 0; k < SYC_DETECT_KINDS; k++)
        if ((kinds >> k & 1u) && detect_scanners[k](w->s, len, 0, &w->next[k]))
            w->pending |= 1u << k;
}

/* The next range of the walk into *m; false at the end. */
static bool walk_next(detect_walk_t *w, syc_detect_match_t *m)
{
    if (!w->pending) return false;
    int best = -1;
    for (int k = 0; k < SYC_DETECT_KINDS; k++)
        if ((w->pending >> k & 1u) && (best < 0 || w->next[k].offset < w->next[best].offset))
            best = k; /* strictly earlier: on a tie the lower kind stays */
    *m = w->next[best];
    size_t end = m->offset + m->len;
    for (int k = 0; k < SYC_DETECT_KINDS; k++) {
        if (!(w->pending >> k & 1u) || w->next[k].offset >= end) continue;
        if (end >= w->len || !detect_scanners[k](w->s, w->len, end, &w->next[k]))
            w->pending &= ~(1u << k);
    }
    return true;
}

size_t syc_detect_find(const syc_detect_set_t *set, const char *s, size_t len,
                       syc_detect_match_t *out, size_t max)
{
    detect_walk_t w;
    walk_init(&w, set, s, len);
    size_t total = 0;
    syc_detect_match_t m;
    while (walk_next(&w, &m)) {
        if (total < max) out[total] = m;
        total++;
    }
    return total;
}

/* Appends p[0, n) to out at *at, as far as out_cap allows; *at counts it all. */
static void put(char *out, size_t out_cap, size_t *at, const char *p, size_t n)
{
    if (*at < out_cap) memcpy(out + *at, p, out_cap - *at < n ? out_cap - *at : n);
    *at += n;
}

size_t syc_detect_redact(const syc_detect_set_t *set, const char *s, size_t len, char *out,
                         size_t out_cap, const char *mask)
{
    if (!mask) mask = "****";
    size_t mask_len = strlen(mask);
    detect_walk_t w;
    walk_init(&w, set, s, len);
    size_t at = 0, from = 0;
    syc_detect_match_t m;
    while (walk_next(&w, &m)) {
        put(out, out_cap, &at, s + from, m.offset - from);
        put(out, out_cap, &at, mask, mask_len);
        from = m.offset + m.len;
    }
    put(out, out_cap, &at, s + from, len - from);
    return at;
}

size_t syc_detect_apply(const char *s, size_t len, const syc_detect_match_t *matches, size_t n,
                        char *out, size_t out_cap, const char *mask)
{
    if (!mask) mask = "****";
    size_t mask_len = strlen(mask);
    size_t at = 0, from = 0;
    for (size_t i = 0; i < n; i++) {
        /* Ranges out of order or out of bounds are skipped rather than read. */
        if (matches[i].offset < from || matches[i].offset > len ||
            matches[i].len > len - matches[i].offset)
            continue;
        put(out, out_cap, &at, s + from, matches[i].offset - from);
        put(out, out_cap, &at, mask, mask_len);
        from = matches[i].offset + matches[i].len;
    }
    put(out, out_cap, &at, s + from, len - from);
    return at;
}
