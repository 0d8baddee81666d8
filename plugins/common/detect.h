/*
 * detect.h - the secret and personal-data detectors the redaction processor
 * applies to attribute values and log bodies: payment cards (Luhn-checked),
 * e-mail addresses, bearer/basic credentials and API-key shapes, IPv4 and IPv6
 * addresses, and the password of a URL's userinfo.
 *
 * Every detector is a hand-written single-pass scanner over (pointer, length):
 * the string may hold any bytes, NUL included, and nothing at or past len is
 * read. What each detector matches, and which false positives it accepts, is in
 * docs/redaction-detectors.md.
 *
 * Threads: a set is immutable once syc_detect_compile() returns it, so any number
 * of threads may call syc_detect_find() and syc_detect_redact() on it at once.
 * Those calls allocate nothing; their state lives on the caller's stack.
 */
#ifndef SY_COMMON_DETECT_H
#define SY_COMMON_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The detectors. The order is the priority when two detectors find a match at
 * the same offset (the first wins): url_password before email, so that the
 * password of "https://u:pw@host" is redacted and not "pw@host".
 */
typedef enum syc_detect_kind_e {
    SYC_DETECT_URL_PASSWORD = 0,
    SYC_DETECT_BEARER,
    SYC_DETECT_EMAIL,
    SYC_DETECT_CARD,
    SYC_DETECT_IPV6,
    SYC_DETECT_IPV4,
    SYC_DETECT_KINDS
} syc_detect_kind_t;

/* One range to redact: s[offset, offset + len), found by detector `kind`. */
typedef struct syc_detect_match_s {
    size_t offset;
    size_t len;
    syc_detect_kind_t kind;
} syc_detect_match_t;

typedef struct syc_detect_set_s syc_detect_set_t;

/* The configuration name of a detector ("card", "email", ...), or "?" . */
const char *syc_detect_name(syc_detect_kind_t kind);

/*
 * A set of the n detectors named (see syc_detect_name(); a name may repeat; n
 * may be 0, which finds nothing). Returns NULL with a sentence in err for an
 * unknown name, listing the valid ones, or when out of memory. The caller frees
 * the set with syc_detect_free().
 */
syc_detect_set_t *syc_detect_compile(const char *const *names, size_t n, char *err, size_t err_len);

void syc_detect_free(syc_detect_set_t *set);

/* Whether the set has the detector `kind` turned on. */
bool syc_detect_has(const syc_detect_set_t *set, syc_detect_kind_t kind);

/*
 * The ranges of s[0, len) to redact: non-overlapping, sorted by offset. Writes
 * the first min(total, max) to out (out may be NULL when max is 0) and returns
 * the total, as snprintf does: a return above max means some were not written.
 * When two detectors' matches overlap, the one starting first wins (at the same
 * offset, the detector first in syc_detect_kind_t), and the other detectors
 * look again after its end.
 */
size_t syc_detect_find(const syc_detect_set_t *set, const char *s, size_t len,
                       syc_detect_match_t *out, size_t max);

/*
 * s with every range syc_detect_find() reports replaced by mask (NULL means
 * "****"). Writes min(result, out_cap) bytes to out and no terminating NUL;
 * returns the length of the whole redacted string, so out holds all of it when
 * the return is at most out_cap (out may be NULL when out_cap is 0: a sizing
 * call). A string with nothing to redact comes back unchanged; compare the
 * return with syc_detect_find(set, s, len, NULL, 0) == 0 to skip the copy.
 */
size_t syc_detect_redact(const syc_detect_set_t *set, const char *s, size_t len, char *out,
                         size_t out_cap, const char *mask);

/*
 * The same replacement over ranges the caller already has (sorted,
 * non-overlapping, within len, as syc_detect_find() returns them), for callers
 * that look at the matches first (to count them per detector, say). Same return
 * and truncation as syc_detect_redact().
 */
size_t syc_detect_apply(const char *s, size_t len, const syc_detect_match_t *matches, size_t n,
                        char *out, size_t out_cap, const char *mask);

/*
 * Whether digits[0, n) - ASCII digits only, no separators - pass the Luhn
 * checksum that payment card numbers carry. False for n == 0 or any non-digit.
 */
bool syc_luhn_valid(const char *digits, size_t n);

#endif
