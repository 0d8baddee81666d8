/*
 * ts_strcache.c - the LRU of regex results of the string_attribute policy (see
 * ts_strcache.h). Entries live in one array; a bucket array of heads chains
 * entries of one hash, and a doubly linked list in use order (head: most
 * recent) picks the entry to reuse when the cache is full.
 */
#include "ts_strcache.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define NIL UINT32_MAX

typedef struct entry_s {
    uint64_t hash;
    uint32_t chain;      /* next entry of the bucket */
    uint32_t prev, next; /* use order */
    uint16_t len;
    bool matched;
    char *s; /* malloc'ed: the entries of a large cache take only what they hold */
} entry_t;

struct ts_strcache_s {
    entry_t *e;
    uint32_t *bucket;
    size_t cap, n, mask;
    uint32_t head, tail; /* most and least recently used */
    uint64_t hits, misses;
};

ts_strcache_t *ts_strcache_new(size_t cap)
{
    if (cap == 0 || cap > UINT32_MAX / 4) return NULL;
    ts_strcache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    size_t nb = 1;
    while (nb < cap * 2)
        nb <<= 1;
    c->e = malloc(cap * sizeof *c->e);
    c->bucket = malloc(nb * sizeof *c->bucket);
    if (!c->e || !c->bucket) {
        ts_strcache_free(c);
        return NULL;
    }
    memset(c->bucket, 0xff, nb * sizeof *c->bucket);
    c->cap = cap;
    c->mask = nb - 1;
    c->head = c->tail = NIL;
    return c;
}

void ts_strcache_free(ts_strcache_t *c)
{
    if (!c) return;
    for (size_t i = 0; c->e && i < c->n; i++)
        free(c->e[i].s);
    free(c->e);
    free(c->bucket);
    free(c);
}

static void unlink_use(ts_strcache_t *c, uint32_t i)
{
    entry_t *x = &c->e[i];
    if (x->prev != NIL)
        c->e[x->prev].next = x->next;
    else
        c->head = x->next;
    if (x->next != NIL)
        c->e[x->next].prev = x->prev;
    else
        c->tail = x->prev;
}

static void push_front(ts_strcache_t *c, uint32_t i)
{
    entry_t *x = &c->e[i];
    x->prev = NIL;
    x->next = c->head;
    if (c->head != NIL) c->e[c->head].prev = i;
    c->head = i;
    if (c->tail == NIL) c->tail = i;
}

bool ts_strcache_get(ts_strcache_t *c, const char *s, size_t len, bool *matched)
{
    if (len > TS_STRCACHE_MAX_LEN) return false;
    uint64_t h = syc_fnv1a64(SYC_FNV64_OFFSET, s, len);
    for (uint32_t i = c->bucket[h & c->mask]; i != NIL; i = c->e[i].chain) {
        entry_t *x = &c->e[i];
        if (x->hash == h && x->len == len && memcmp(x->s, s, len) == 0) {
            if (c->head != i) {
                unlink_use(c, i);
                push_front(c, i);
            }
            *matched = x->matched;
            c->hits++;
            return true;
        }
    }
    c->misses++;
    return false;
}

/* Takes entry i out of its bucket's chain. */
static void unchain(ts_strcache_t *c, uint32_t i)
{
    uint32_t *p = &c->bucket[c->e[i].hash & c->mask];
    while (*p != i)
        p = &c->e[*p].chain;
    *p = c->e[i].chain;
}

void ts_strcache_put(ts_strcache_t *c, const char *s, size_t len, bool matched)
{
    if (len > TS_STRCACHE_MAX_LEN) return;
    char *copy = malloc(len + 1);
    if (!copy) return; /* not cached: matched again next time */
    uint32_t i;
    if (c->n < c->cap) {
        i = (uint32_t)c->n++;
    } else {
        i = c->tail; /* the least recently used makes room */
        unlink_use(c, i);
        unchain(c, i);
        free(c->e[i].s);
    }
    entry_t *x = &c->e[i];
    x->s = copy;
    x->hash = syc_fnv1a64(SYC_FNV64_OFFSET, s, len);
    x->len = (uint16_t)len;
    x->matched = matched;
    memcpy(x->s, s, len);
    uint32_t *b = &c->bucket[x->hash & c->mask];
    x->chain = *b;
    *b = i;
    push_front(c, i);
}

size_t ts_strcache_len(const ts_strcache_t *c)
{
    return c->n;
}

uint64_t ts_strcache_hits(const ts_strcache_t *c)
{
    return c->hits;
}

uint64_t ts_strcache_misses(const ts_strcache_t *c)
{
    return c->misses;
}
