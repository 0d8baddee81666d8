/*
 * redaction_rules.h - what the redaction processor decides about one key or one
 * value: the key lists, the compiled regexes (PCRE2 with JIT, compiled once), the
 * detectors of plugins/common/detect.h and the hash that replaces a match.
 *
 * Threads: a rules set belongs to one processor instance, whose consume() runs
 * on one loop thread; the scratch buffers and the match data inside make it
 * unsafe to share between threads.
 */
#ifndef SY_REDACTION_RULES_H
#define SY_REDACTION_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "attr_actions.h"

/* hash_function values, in the order of the config's enum_values. */
enum {
    RD_HASH_NONE = 0,
    RD_HASH_MD5,
    RD_HASH_SHA1,
    RD_HASH_SHA3,
    RD_HASH_HMAC_SHA256,
    RD_HASH_HMAC_SHA512,
};

/* summary values, in the order of the config's enum_values. */
enum {
    RD_SUMMARY_SILENT = 0,
    RD_SUMMARY_INFO,
    RD_SUMMARY_DEBUG,
};

/* The processor's configuration, filled by the host from the field table. */
typedef struct rd_config_s {
    bool allow_all_keys;
    sy_cfg_strlist_t allowed_keys;
    sy_cfg_strlist_t ignored_keys;
    sy_cfg_strlist_t blocked_key_patterns;
    sy_cfg_strlist_t blocked_values;
    sy_cfg_strlist_t allowed_values;
    sy_cfg_strlist_t detectors;
    int hash_function;
    char *hmac_key;
    int summary;
    /* Appended with the collector's newer keys. */
    bool redact_all_types;
    sy_cfg_strlist_t ignored_key_patterns;
    bool url_enabled;
    sy_cfg_strlist_t url_attributes;
    bool url_span_name;
    bool url_log_body;
    const sy_cfg_node_t *db_sanitizer; /* refused when it turns anything on */
} rd_config_t;

typedef struct rd_regexes_s {
    size_t n;
    void **code; /* pcre2_code * */
} rd_regexes_t;

/* A key of a list as the look-up compares it: its length, its first and last
 * 8 bytes (all of a key of up to 16 bytes; zero-padded below 8), its index. */
typedef struct rd_key_slot_s {
    uint64_t head, tail;
    size_t len;
    size_t i;
} rd_key_slot_t;

/* The longest key length with a group of its own in rd_keys_t.first. */
#define RD_KEY_GROUPS 64

typedef struct rd_keys_s {
    size_t n;
    const char *const *key;
    size_t *len;
    /* The keys ordered by length: those of length L (L < RD_KEY_GROUPS; all
     * longer ones under RD_KEY_GROUPS) are slot[first[L] .. first[L + 1]). */
    rd_key_slot_t *slot;
    uint32_t first[RD_KEY_GROUPS + 2];
} rd_keys_t;

typedef struct rd_rules_s {
    const rd_config_t *cfg;
    rd_keys_t allowed, ignored;
    rd_keys_t url_attributes;
    rd_regexes_t blocked_keys, blocked_values, allowed_values, ignored_key_patterns;
    struct syc_detect_set_s *detect; /* NULL when no detector is on */
    void *match_data;                /* pcre2_match_data *, one pair */
    syc_buf_t buf[2];                /* scratch: the value being rewritten */
    struct syc_detect_match_s *found;
    size_t found_cap;
} rd_rules_t;

/*
 * Compiles the configuration's lists into r (zeroed by the caller). Returns 0,
 * or SY_EINVAL / SY_ENOMEM with a sentence naming the key at fault in err (a
 * regex error carries PCRE2's message and offset). On failure r holds nothing
 * that needs rd_rules_free(), but calling it is harmless.
 */
int rd_rules_init(rd_rules_t *r, const rd_config_t *cfg, char *err, size_t err_len);
void rd_rules_free(rd_rules_t *r);

/* Whether key[0, len) is in the list. */
bool rd_key_in(const rd_keys_t *keys, const char *key, size_t len);

/* Whether any regex of the list matches somewhere in s[0, len). */
bool rd_regex_any(rd_rules_t *r, const rd_regexes_t *list, const char *s, size_t len);

/*
 * The masked form of a whole value (a key matched blocked_key_patterns): "****",
 * or the hash of the value. *out points into r's scratch, valid until the next
 * call. Returns 0 or SY_ENOMEM.
 */
int rd_mask_whole(rd_rules_t *r, const char *s, size_t len, const char **out, size_t *out_len);

/*
 * Applies blocked_values (each regex in turn, every match replaced, as the
 * collector's ReplaceAllStringFunc) and then the detectors to s[0, len). Returns
 * 1 with the new value in *out (r's scratch, valid until the next call) when it
 * differs from s, 0 when it does not, SY_ENOMEM when out of memory. Adds the
 * number of detector matches to *detected.
 */
int rd_mask_value(rd_rules_t *r, const char *s, size_t len, const char **out, size_t *out_len,
                  uint64_t *detected);

/* Whether key is ignored: in ignored_keys or matching ignored_key_patterns. */
bool rd_key_ignored(rd_rules_t *r, const char *key, size_t len);

/*
 * The url_sanitizer's clustering of s[0, len) into out (cleared first): query and
 * fragment dropped, identifier segments of the path replaced by "*"
 * (redaction_url.c). Returns 0 or SY_ENOMEM.
 */
int rd_url_sanitize(const char *s, size_t len, syc_buf_t *out);
/* Whether every non-empty segment of s is "*" (the collector then keeps a span
 * name as it was). */
bool rd_url_fully_redacted(const char *s, size_t len);

#endif
