/*
 * ts_strcache.h - the string_attribute policy's cache of regex results (the
 * collector's `cache_max_size`: an LRU of attribute value -> matched), so that a
 * value seen again is not matched against every pattern again.
 *
 * Up to `cap` values of at most TS_STRCACHE_MAX_LEN bytes each (longer values
 * are not cached: the caller matches them every time; each is copied into its
 * own allocation); a lookup that finds a
 * value makes it the most recently used, and adding one more than `cap` forgets
 * the least recently used. Chained hashing over FNV-1a 64. One thread; no locks.
 */
#ifndef TS_STRCACHE_H
#define TS_STRCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_STRCACHE_MAX_LEN 256
/* cache_max_size: the collector's default when unset or <= 0, and our bound */
#define TS_REGEX_CACHE_DEFAULT 128
#define TS_REGEX_CACHE_MAX     (1 << 24)

typedef struct ts_strcache_s ts_strcache_t;

/* A cache of `cap` (>= 1) entries; NULL on out of memory. */
ts_strcache_t *ts_strcache_new(size_t cap);
void ts_strcache_free(ts_strcache_t *c);
/* True and *matched set when s is cached (it becomes the most recently used). */
bool ts_strcache_get(ts_strcache_t *c, const char *s, size_t len, bool *matched);
/* Remembers s -> matched (s must not be cached yet; too long: nothing). */
void ts_strcache_put(ts_strcache_t *c, const char *s, size_t len, bool matched);
/* Entries held, lookups that hit, lookups that missed. */
size_t ts_strcache_len(const ts_strcache_t *c);
uint64_t ts_strcache_hits(const ts_strcache_t *c);
uint64_t ts_strcache_misses(const ts_strcache_t *c);

#endif
