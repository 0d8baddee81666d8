/*
 * ts_idmap.c - trace ID map and decision caches (ts_idmap.h).
 */
#include "ts_idmap.h"

#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

/* splitmix64's finalizer over both halves: crafted IDs (a counter in the last
 * bytes, zeros elsewhere) spread as well as random ones. */
static uint64_t id_hash(const uint8_t id[16])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t x = a ^ (b * 0x9e3779b97f4a7c15ull) ^ (b >> 29);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static int alloc_table(ts_idmap_t *m, size_t cap)
{
    m->e = calloc(cap, sizeof *m->e);
    if (!m->e) return SY_ENOMEM;
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

int ts_idmap_init(ts_idmap_t *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    return alloc_table(m, cap);
}

void ts_idmap_free(ts_idmap_t *m)
{
    free(m->e);
    m->e = NULL;
    m->mask = m->count = 0;
}

uint32_t *ts_idmap_get(const ts_idmap_t *m, const uint8_t id[16])
{
    if (!m->e) return NULL;
    for (size_t i = id_hash(id) & m->mask;; i = (i + 1) & m->mask) {
        ts_idmap_entry_t *e = &m->e[i];
        if (!e->used) return NULL;
        if (memcmp(e->id, id, 16) == 0) return &e->val;
    }
}

static void insert_new(ts_idmap_t *m, const uint8_t id[16], uint32_t val)
{
    size_t i = id_hash(id) & m->mask;
    while (m->e[i].used)
        i = (i + 1) & m->mask;
    memcpy(m->e[i].id, id, 16);
    m->e[i].val = val;
    m->e[i].used = 1;
    m->count++;
}

/* Doubles the table when one more entry would fill it past half. */
static int make_room(ts_idmap_t *m)
{
    if ((m->count + 1) * 2 <= m->mask + 1) return 0;
    ts_idmap_t bigger;
    if (alloc_table(&bigger, (m->mask + 1) * 2) < 0) return SY_ENOMEM;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->e[i].used) insert_new(&bigger, m->e[i].id, m->e[i].val);
    free(m->e);
    *m = bigger;
    return 0;
}

int ts_idmap_put(ts_idmap_t *m, const uint8_t id[16], uint32_t val)
{
    uint32_t *v = ts_idmap_get(m, id);
    if (v) {
        *v = val;
        return 0;
    }
    if (make_room(m) < 0) return SY_ENOMEM;
    insert_new(m, id, val);
    return 0;
}

uint32_t *ts_idmap_get_or_add(ts_idmap_t *m, const uint8_t id[16], bool *added)
{
    *added = false;
    if (!m->e || make_room(m) < 0) return NULL;
    size_t i = id_hash(id) & m->mask;
    for (; m->e[i].used; i = (i + 1) & m->mask)
        if (memcmp(m->e[i].id, id, 16) == 0) return &m->e[i].val;
    memcpy(m->e[i].id, id, 16);
    m->e[i].val = 0;
    m->e[i].used = 1;
    m->count++;
    *added = true;
    return &m->e[i].val;
}

/* Backward-shift deletion: every entry after the hole that could live at the
 * hole (its home slot is not between the hole and itself) moves into it. */
void ts_idmap_del(ts_idmap_t *m, const uint8_t id[16])
{
    if (!m->e) return;
    size_t i = id_hash(id) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        if (!m->e[i].used) return;
        if (memcmp(m->e[i].id, id, 16) == 0) break;
    }
    size_t hole = i;
    for (size_t j = (hole + 1) & m->mask; m->e[j].used; j = (j + 1) & m->mask) {
        size_t home = id_hash(m->e[j].id) & m->mask;
        /* Distance from home to j, and from the hole to j, around the ring. */
        if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
            m->e[hole] = m->e[j];
            hole = j;
        }
    }
    m->e[hole].used = 0;
    m->count--;
}

int ts_cache_init(ts_cache_t *c, size_t cap)
{
    memset(c, 0, sizeof *c);
    if (cap == 0) return 0;
    c->ring = malloc(cap * sizeof *c->ring);
    c->when = calloc(cap, sizeof *c->when);
    if (!c->ring || !c->when) {
        free(c->ring);
        free(c->when);
        c->ring = NULL;
        c->when = NULL;
        return SY_ENOMEM;
    }
    c->cap = cap;
    if (ts_idmap_init(&c->map, cap) < 0) {
        free(c->ring);
        free(c->when);
        c->ring = NULL;
        c->when = NULL;
        return SY_ENOMEM;
    }
    return 0;
}

void ts_cache_free(ts_cache_t *c)
{
    ts_idmap_free(&c->map);
    free(c->ring);
    free(c->when);
    memset(c, 0, sizeof *c);
}

bool ts_cache_has(const ts_cache_t *c, const uint8_t id[16])
{
    return c->cap && ts_idmap_get(&c->map, id) != NULL;
}

bool ts_cache_find(const ts_cache_t *c, const uint8_t id[16], uint32_t *when)
{
    const uint32_t *slot = c->cap ? ts_idmap_get(&c->map, id) : NULL;
    if (slot) *when = c->when[*slot];
    return slot != NULL;
}

int ts_cache_put(ts_cache_t *c, const uint8_t id[16])
{
    return ts_cache_put_at(c, id, 0);
}

int ts_cache_put_at(ts_cache_t *c, const uint8_t id[16], uint32_t when)
{
    if (!c->cap || ts_idmap_get(&c->map, id)) return 0;
    size_t slot;
    if (c->n == c->cap) {
        slot = c->head; /* the oldest: forget it */
        ts_idmap_del(&c->map, c->ring[slot]);
        c->head = (c->head + 1) % c->cap;
    } else {
        slot = (c->head + c->n) % c->cap;
        c->n++;
    }
    memcpy(c->ring[slot], id, 16);
    c->when[slot] = when;
    return ts_idmap_put(&c->map, id, (uint32_t)slot);
}
