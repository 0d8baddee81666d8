/*
 * fuzz_detect.c - libFuzzer target for the redaction detectors
 * (plugins/common/detect.c, detect_scan.c, detect_token.c).
 *
 * The first byte of the input chooses which detectors are on (its low six
 * bits; none means all), the rest is the string. Invariants checked (abort on
 * violation): every range is non-empty, in bounds, of a detector that is on,
 * sorted and apart from the one before; the total does not depend on max; the
 * redacted length is len - covered + ranges * mask length; syc_detect_redact()
 * and syc_detect_apply() over the ranges write the same bytes; the bytes
 * between ranges are copied unchanged; the prefilter never hides a match: when
 * a detector's scanner, called directly, finds a range, the set of that
 * detector alone finds one too. ASan catches any read past the string.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.detect.corpus).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "detect_scan.h"

#define FUZZ_MAX_MATCHES 4096
#define FUZZ_MASK        "<redacted>"

static syc_detect_set_t *sets[64];

static const syc_detect_set_t *set_for(unsigned bits)
{
    if (!sets[bits]) {
        const char *names[SYC_DETECT_KINDS];
        size_t n = 0;
        for (int k = 0; k < SYC_DETECT_KINDS; k++)
            if (bits == 0 || (bits >> k & 1u)) names[n++] = syc_detect_name((syc_detect_kind_t)k);
        char err[256];
        sets[bits] = syc_detect_compile(names, n, err, sizeof(err));
        if (!sets[bits]) abort();
    }
    return sets[bits];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned bits = data[0] & 63u;
    const syc_detect_set_t *set = set_for(bits);
    /* The string in a block of its own size, so that ASan sees a read past it. */
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);
    if (!s) return 0;
    memcpy(s, data + 1, len);

    static syc_detect_match_t m[FUZZ_MAX_MATCHES];
    size_t total = syc_detect_find(set, s, len, NULL, 0);
    syc_detect_match_t first;
    if (syc_detect_find(set, s, len, &first, 1) != total) abort();
    if (syc_detect_find(set, s, len, m, FUZZ_MAX_MATCHES) != total) abort();
    if (total > 0 &&
        (first.offset != m[0].offset || first.len != m[0].len || first.kind != m[0].kind))
        abort();
    size_t n = total < FUZZ_MAX_MATCHES ? total : FUZZ_MAX_MATCHES;

    size_t covered = 0, prev_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i].len == 0 || m[i].offset > len || m[i].len > len - m[i].offset) abort();
        if (m[i].offset < prev_end) abort();
        if ((unsigned)m[i].kind >= SYC_DETECT_KINDS || !syc_detect_has(set, m[i].kind)) abort();
        prev_end = m[i].offset + m[i].len;
        covered += m[i].len;
    }
    const size_t mask_len = sizeof(FUZZ_MASK) - 1;
    size_t need = syc_detect_redact(set, s, len, NULL, 0, FUZZ_MASK);
    if (total == n && need != len - covered + n * mask_len) abort();

    char *out = malloc(need ? need : 1);
    char *via = malloc(need ? need : 1);
    if (!out || !via) abort();
    if (syc_detect_redact(set, s, len, out, need, FUZZ_MASK) != need) abort();
    if (total == n) {
        if (syc_detect_apply(s, len, m, n, via, need, FUZZ_MASK) != need) abort();
        if (memcmp(out, via, need) != 0) abort();
        /* The bytes between ranges are the input's. */
        size_t at = 0, from = 0;
        for (size_t i = 0; i < n; i++) {
            size_t gap = m[i].offset - from;
            if (memcmp(out + at, s + from, gap) != 0) abort();
            at += gap + mask_len;
            from = m[i].offset + m[i].len;
        }
        if (memcmp(out + at, s + from, len - from) != 0) abort();
    }
    /* A truncated redaction writes a prefix of the whole. */
    if (need > 1) {
        size_t cap = need / 2;
        memset(via, 0, need);
        if (syc_detect_redact(set, s, len, via, cap, FUZZ_MASK) != need) abort();
        if (memcmp(via, out, cap) != 0) abort();
    }
    /* The prefilter (which skips scanners by the bytes the string holds) is
     * exact for what it lets through: a scanner that matches is never skipped. */
    static const syc_detect_scan_fn scan[SYC_DETECT_KINDS] = {
        [SYC_DETECT_URL_PASSWORD] = syc_detect_scan_url_password,
        [SYC_DETECT_BEARER] = syc_detect_scan_bearer,
        [SYC_DETECT_EMAIL] = syc_detect_scan_email,
        [SYC_DETECT_CARD] = syc_detect_scan_card,
        [SYC_DETECT_IPV6] = syc_detect_scan_ipv6,
        [SYC_DETECT_IPV4] = syc_detect_scan_ipv4,
    };
    for (int k = 0; k < SYC_DETECT_KINDS; k++) {
        syc_detect_match_t direct;
        if (len && scan[k]((const uint8_t *)s, len, 0, &direct) &&
            syc_detect_find(set_for(1u << k), s, len, NULL, 0) == 0)
            abort();
    }
    free(out);
    free(via);
    free(s);
    return 0;
}
