/*
 * redaction_rules.c - the redaction processor's decisions on keys and values:
 * key lists, regexes compiled once with PCRE2 (JIT when the platform has it),
 * the detectors, and the replacement of every match by "****" or its hash.
 *
 * The collector (Go regexp) replaces the matches of each blocked_values regex
 * in turn with ReplaceAllStringFunc; replace_all() follows its loop step by
 * step, including how it treats empty matches, so a pattern that can match the
 * empty string gives the collector's result. PCRE2 and RE2 agree on the syntax
 * such patterns use in practice (classes, repetition, alternation, (?:...),
 * (?i)); RE2-only syntax such as \pN works in both.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "hash.h"
#include "redaction_rules.h"

#define MASK     "****"
#define MASK_LEN 4

/* The first and last 8 bytes of key[0, len) as two words (for a key under 8
 * bytes, its bytes and zeros, twice), read with whole loads inside the key. */
static void key_words(const char *key, size_t len, uint64_t *head, uint64_t *tail)
{
    if (len >= 8) {
        memcpy(head, key, 8);
        memcpy(tail, key + len - 8, 8);
        return;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)(uint8_t)key[i] << (8 * i);
    *head = *tail = w;
}

static size_t key_group(size_t len)
{
    return len < RD_KEY_GROUPS ? len : RD_KEY_GROUPS;
}

static int keys_init(rd_keys_t *k, const sy_cfg_strlist_t *list)
{
    k->n = list->count;
    k->key = (const char *const *)list->items;
    if (list->count == 0) return SY_OK;
    k->len = calloc(list->count, sizeof(*k->len));
    k->slot = calloc(list->count, sizeof(*k->slot));
    if (!k->len || !k->slot) return SY_ENOMEM;
    uint32_t count[RD_KEY_GROUPS + 1] = {0};
    for (size_t i = 0; i < list->count; i++) {
        k->len[i] = strlen(list->items[i]);
        count[key_group(k->len[i])]++;
    }
    k->first[0] = 0;
    for (size_t g = 0; g <= RD_KEY_GROUPS; g++)
        k->first[g + 1] = k->first[g] + count[g];
    uint32_t next[RD_KEY_GROUPS + 1];
    memcpy(next, k->first, sizeof(next));
    for (size_t i = 0; i < list->count; i++) {
        rd_key_slot_t *e = &k->slot[next[key_group(k->len[i])]++];
        *e = (rd_key_slot_t){.len = k->len[i], .i = i};
        key_words(list->items[i], k->len[i], &e->head, &e->tail);
    }
    return SY_OK;
}

bool rd_key_in(const rd_keys_t *keys, const char *key, size_t len)
{
    /* Only the keys of the same length are looked at (a handful); the first and
     * last 8 bytes decide a key of up to 16 bytes, the bytes between them are
     * compared for a longer one. */
    if (keys->n == 0) return false;
    size_t g = key_group(len);
    uint32_t i = keys->first[g], end = keys->first[g + 1];
    if (i == end) return false;
    uint64_t head, tail;
    key_words(key, len, &head, &tail);
    for (; i < end; i++) {
        const rd_key_slot_t *e = &keys->slot[i];
        if (e->len == len && e->head == head && e->tail == tail &&
            (len <= 16 || memcmp(keys->key[e->i] + 8, key + 8, len - 16) == 0))
            return true;
    }
    return false;
}

static void regexes_free(rd_regexes_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        pcre2_code_free(l->code[i]);
    free(l->code);
    l->code = NULL;
    l->n = 0;
}

/* Compiles every pattern of list; `what` names the key (and the collector's
 * words) for the error. */
static int regexes_init(rd_regexes_t *l, const sy_cfg_strlist_t *list, const char *key,
                        const char *what, char *err, size_t err_len)
{
    if (list->count == 0) return SY_OK;
    l->code = calloc(list->count, sizeof(*l->code));
    if (!l->code) {
        snprintf(err, err_len, "%s: out of memory", key);
        return SY_ENOMEM;
    }
    for (size_t i = 0; i < list->count; i++) {
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *code =
            pcre2_compile((PCRE2_SPTR)list->items[i], PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            snprintf(err, err_len,
                     "failed to process %s: error compiling regex in list: %s[%zu] \"%s\": %s at "
                     "offset %zu",
                     what, key, i, list->items[i], (const char *)msg, (size_t)erroff);
            return SY_EINVAL;
        }
        /* Without JIT support matching falls back to the interpreter. */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        l->code[l->n++] = code;
    }
    return SY_OK;
}

int rd_rules_init(rd_rules_t *r, const rd_config_t *cfg, char *err, size_t err_len)
{
    int rc;
    r->cfg = cfg;
    if ((rc = keys_init(&r->allowed, &cfg->allowed_keys)) < 0 ||
        (rc = keys_init(&r->ignored, &cfg->ignored_keys)) < 0 ||
        (rc = keys_init(&r->url_attributes, &cfg->url_attributes)) < 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    if ((rc = regexes_init(&r->blocked_keys, &cfg->blocked_key_patterns, "blocked_key_patterns",
                           "block keys list", err, err_len)) < 0 ||
        (rc = regexes_init(&r->blocked_values, &cfg->blocked_values, "blocked_values", "block list",
                           err, err_len)) < 0 ||
        (rc = regexes_init(&r->allowed_values, &cfg->allowed_values, "allowed_values", "allow list",
                           err, err_len)) < 0 ||
        (rc = regexes_init(&r->ignored_key_patterns, &cfg->ignored_key_patterns,
                           "ignored_key_patterns", "ignore keys list", err, err_len)) < 0)
        goto fail;
    if (cfg->detectors.count > 0) {
        char derr[200];
        r->detect = syc_detect_compile((const char *const *)cfg->detectors.items,
                                       cfg->detectors.count, derr, sizeof(derr));
        if (!r->detect) {
            snprintf(err, err_len, "detectors: %s", derr);
            rc = SY_EINVAL;
            goto fail;
        }
    }
    if ((cfg->hash_function == RD_HASH_HMAC_SHA256 || cfg->hash_function == RD_HASH_HMAC_SHA512) &&
        (!cfg->hmac_key || !cfg->hmac_key[0])) {
        snprintf(err, err_len,
                 "hmac_key must not be empty when hash_function is hmac-sha256 or "
                 "hmac-sha512");
        rc = SY_EINVAL;
        goto fail;
    }
    r->match_data = pcre2_match_data_create(1, NULL);
    if (!r->match_data) {
        snprintf(err, err_len, "out of memory");
        rc = SY_ENOMEM;
        goto fail;
    }
    return SY_OK;
fail:
    rd_rules_free(r);
    return rc;
}

void rd_rules_free(rd_rules_t *r)
{
    free(r->allowed.len);
    free(r->ignored.len);
    free(r->url_attributes.len);
    free(r->allowed.slot);
    free(r->ignored.slot);
    free(r->url_attributes.slot);
    r->allowed = (rd_keys_t){0};
    r->ignored = (rd_keys_t){0};
    r->url_attributes = (rd_keys_t){0};
    regexes_free(&r->ignored_key_patterns);
    regexes_free(&r->blocked_keys);
    regexes_free(&r->blocked_values);
    regexes_free(&r->allowed_values);
    syc_detect_free(r->detect);
    r->detect = NULL;
    pcre2_match_data_free(r->match_data);
    r->match_data = NULL;
    for (int i = 0; i < 2; i++)
        free(r->buf[i].p);
    memset(r->buf, 0, sizeof(r->buf));
    free(r->found);
    r->found = NULL;
    r->found_cap = 0;
}

bool rd_key_ignored(rd_rules_t *r, const char *key, size_t len)
{
    return rd_key_in(&r->ignored, key, len) || rd_regex_any(r, &r->ignored_key_patterns, key, len);
}

/* 1 and the match's range when code matches s[0, len) at or after pos, else 0. */
static int match_at(rd_rules_t *r, void *code, const char *s, size_t len, size_t pos, size_t *start,
                    size_t *end)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, len, pos, 0, r->match_data, NULL);
    if (rc < 0) return 0; /* no match, or a matching error: treated as no match */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->match_data);
    *start = ov[0];
    *end = ov[1];
    return 1;
}

bool rd_regex_any(rd_rules_t *r, const rd_regexes_t *list, const char *s, size_t len)
{
    size_t a, b;
    for (size_t i = 0; i < list->n; i++)
        if (match_at(r, list->code[i], s, len, 0, &a, &b)) return true;
    return false;
}

/* The hex digest of s[0, len) with the configured function, in hex. Returns its
 * length, or a negative SY_E*. */
static int hash_hex(const rd_config_t *cfg, const char *s, size_t len, char *hex, size_t cap)
{
    switch (cfg->hash_function) {
    case RD_HASH_MD5:
        return syc_hash_hex("md5", s, len, hex, cap);
    case RD_HASH_SHA1:
        return syc_hash_hex("sha1", s, len, hex, cap);
    case RD_HASH_SHA3:
        return syc_hash_hex("sha3", s, len, hex, cap);
    default: {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        const EVP_MD *alg = cfg->hash_function == RD_HASH_HMAC_SHA512 ? EVP_sha512() : EVP_sha256();
        if (!HMAC(alg, cfg->hmac_key, (int)strlen(cfg->hmac_key), (const unsigned char *)s, len, md,
                  &md_len))
            return SY_ENOMEM;
        if (cap < 2 * (size_t)md_len + 1) return SY_ENOMEM;
        static const char digits[] = "0123456789abcdef";
        for (unsigned int i = 0; i < md_len; i++) {
            hex[2 * i] = digits[md[i] >> 4];
            hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[2 * md_len] = 0;
        return (int)(2 * md_len);
    }
    }
}

/* Appends the replacement of the match s[0, len): the mask, or its hash. */
static int put_replacement(rd_rules_t *r, syc_buf_t *out, const char *s, size_t len)
{
    if (r->cfg->hash_function == RD_HASH_NONE) return syc_buf_put(out, MASK, MASK_LEN);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    int n = hash_hex(r->cfg, s, len, hex, sizeof(hex));
    if (n < 0) return SY_ENOMEM;
    return syc_buf_put(out, hex, (size_t)n);
}

int rd_mask_whole(rd_rules_t *r, const char *s, size_t len, const char **out, size_t *out_len)
{
    syc_buf_t *b = &r->buf[0];
    b->len = 0;
    int rc = put_replacement(r, b, s, len);
    if (rc < 0) return rc;
    *out = b->p;
    *out_len = b->len;
    return SY_OK;
}

/* The width of the UTF-8 sequence starting s[0] (1 for a stray byte), as Go's
 * utf8.DecodeRuneInString for the valid UTF-8 a batch holds. */
static size_t utf8_width(const char *s, size_t left)
{
    unsigned char c = (unsigned char)s[0];
    size_t w = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return w > left ? 1 : w;
}

/*
 * Every match of code in s[0, len) replaced, into out, as Go's
 * Regexp.ReplaceAllStringFunc: an empty match right after a match is not
 * replaced, and the search always advances by at least one character.
 */
static int replace_all(rd_rules_t *r, void *code, const char *s, size_t len, syc_buf_t *out)
{
    size_t last_end = 0, search = 0, a0, a1;
    int rc;
    out->len = 0;
    while (search <= len) {
        if (!match_at(r, code, s, len, search, &a0, &a1)) break;
        if ((rc = syc_buf_put(out, s + last_end, a0 - last_end)) < 0) return rc;
        if (a1 > last_end || a0 == 0)
            if ((rc = put_replacement(r, out, s + a0, a1 - a0)) < 0) return rc;
        last_end = a1;
        size_t width = search < len ? utf8_width(s + search, len - search) : 0;
        if (search + width > a1)
            search += width;
        else if (search + 1 > a1)
            search++;
        else
            search = a1;
    }
    return syc_buf_put(out, s + last_end, len - last_end);
}

/* The detectors' matches in s[0, len) replaced, into out. Returns the number of
 * matches (0: out untouched), or SY_ENOMEM. */
static int replace_detected(rd_rules_t *r, const char *s, size_t len, syc_buf_t *out)
{
    size_t n = syc_detect_find(r->detect, s, len, r->found, r->found_cap);
    if (n == 0) return 0;
    if (n > r->found_cap) {
        syc_detect_match_t *f = realloc(r->found, n * sizeof(*f));
        if (!f) return SY_ENOMEM;
        r->found = f;
        r->found_cap = n;
        n = syc_detect_find(r->detect, s, len, r->found, r->found_cap);
    }
    size_t at = 0;
    int rc;
    out->len = 0;
    for (size_t i = 0; i < n; i++) {
        const syc_detect_match_t *m = &r->found[i];
        if ((rc = syc_buf_put(out, s + at, m->offset - at)) < 0 ||
            (rc = put_replacement(r, out, s + m->offset, m->len)) < 0)
            return rc;
        at = m->offset + m->len;
    }
    if ((rc = syc_buf_put(out, s + at, len - at)) < 0) return rc;
    return (int)(n > 0x7fffffff ? 0x7fffffff : n);
}

int rd_mask_value(rd_rules_t *r, const char *s, size_t len, const char **out, size_t *out_len,
                  uint64_t *detected)
{
    const char *cur = s;
    size_t cur_len = len, a, b;
    int which = 0, rc;
    for (size_t i = 0; i < r->blocked_values.n; i++) {
        void *code = r->blocked_values.code[i];
        if (!match_at(r, code, cur, cur_len, 0, &a, &b)) continue;
        syc_buf_t *dst = &r->buf[which];
        if ((rc = replace_all(r, code, cur, cur_len, dst)) < 0) return rc;
        cur = dst->p ? dst->p : "";
        cur_len = dst->len;
        which ^= 1;
    }
    if (r->detect) {
        syc_buf_t *dst = &r->buf[which];
        rc = replace_detected(r, cur, cur_len, dst);
        if (rc < 0) return rc;
        if (rc > 0) {
            *detected += (uint64_t)rc;
            cur = dst->p;
            cur_len = dst->len;
        }
    }
    if (cur == s || (cur_len == len && (len == 0 || memcmp(cur, s, len) == 0))) return 0;
    *out = cur;
    *out_len = cur_len;
    return 1;
}
