/*
 * ts_idmap.h - trace ID tables of the tail_sampling processor: a map from a
 * 16-byte trace ID to a 32-bit value (the slot of a pending trace), and the
 * decision caches built on it (a bounded set of IDs that forgets the oldest).
 *
 * Open addressing with linear probing and backward-shift deletion, so that
 * removing a trace leaves no tombstone behind and lookups stay short however
 * long the processor runs. Trace IDs are hashed (they may be crafted, not
 * random). One thread; no locks.
 */
#ifndef TS_IDMAP_H
#define TS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ts_idmap_entry_s {
    uint8_t id[16];
    uint32_t val;
    uint32_t used;
} ts_idmap_entry_t;

typedef struct ts_idmap_s {
    ts_idmap_entry_t *e;
    size_t mask; /* capacity - 1; the capacity is a power of two */
    size_t count;
} ts_idmap_t;

/* Sizes the table for at least `expected` entries. Returns 0 or SY_ENOMEM. */
int ts_idmap_init(ts_idmap_t *m, size_t expected);
void ts_idmap_free(ts_idmap_t *m);
/* The value stored for id, or NULL. Valid until the next put or del. */
uint32_t *ts_idmap_get(const ts_idmap_t *m, const uint8_t id[16]);
/* Stores id -> val (replacing a value already there). Grows at half full.
 * Returns 0 or SY_ENOMEM (the map is unchanged then). */
int ts_idmap_put(ts_idmap_t *m, const uint8_t id[16], uint32_t val);
/* The value of id; when absent, id is added (its value 0) and *added set: one
 * probe for a trace ID seen for the first time. Grows at half full. NULL on out
 * of memory (the map is unchanged then). Valid until the next put, add or del. */
uint32_t *ts_idmap_get_or_add(ts_idmap_t *m, const uint8_t id[16], bool *added);
/* Removes id; nothing when absent. */
void ts_idmap_del(ts_idmap_t *m, const uint8_t id[16]);

/*
 * A decision cache: remembers up to `cap` trace IDs; adding one more forgets
 * the one added longest ago. A cap of 0 is a cache that remembers nothing, as
 * the collector's default no-op cache.
 */
typedef struct ts_cache_s {
    ts_idmap_t map;
    uint8_t (*ring)[16];
    uint32_t *when; /* per ring slot: when the decision was taken (ts_cache_put_at) */
    size_t cap, head, n;
} ts_cache_t;

int ts_cache_init(ts_cache_t *c, size_t cap);
void ts_cache_free(ts_cache_t *c);
bool ts_cache_has(const ts_cache_t *c, const uint8_t id[16]);
/* Remembers id (no-op when present or when the cap is 0). 0 or SY_ENOMEM. */
int ts_cache_put(ts_cache_t *c, const uint8_t id[16]);
/* The same, remembering `when` (the caller's clock, seconds) with it. */
int ts_cache_put_at(ts_cache_t *c, const uint8_t id[16], uint32_t when);
/* Whether id is remembered; when it is, *when is what ts_cache_put_at() stored. */
bool ts_cache_find(const ts_cache_t *c, const uint8_t id[16], uint32_t *when);

#endif
