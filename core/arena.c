/*
 * arena.c - the bump allocator behind every batch (see arena.h): chunks taken
 * from malloc as the arena grows, a byte limit, the protobuf-c allocator that
 * draws from it, the one release that frees every chunk, and the cache of
 * large chunks that releases feed and new chunks draw from.
 */
#include "arena.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SY__ARENA_ALIGN     16
#define SY__ARENA_MIN_CHUNK 4096
#define SY__ARENA_MAX_STEP  ((size_t)4 << 20)

struct sy__arena_chunk_s {
    sy__arena_chunk_t *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    alignas(SY__ARENA_ALIGN) unsigned char data[];
};

/* ---- the cache of large chunks ----
 *
 * A batch's arena takes a few large chunks (its encoded request, a commit's
 * rewrite, a merge) and gives them all back when the batch is freed. From
 * malloc, a chunk that large is a fresh mmap, or heap the allocator trimmed
 * back to the kernel, and the first write to each of its pages faults: about 65
 * faults a request in the scrubbing chain, 10 % of the router's CPU. Released
 * chunks of SY__ARENA_CACHE_MIN bytes or more are kept here instead, up to
 * SY__ARENA_CACHE_BYTES in all, and a new chunk is taken from here when one is
 * large enough (and not more than SY__ARENA_CACHE_SLACK times too large), its
 * pages already mapped.
 *
 * One cache for the process, under a mutex: a batch is usually freed on another
 * thread (the batch processor's, an exporter's) than the one that allocated it
 * (a receiver's), so per-thread caches would fill on the freeing threads and
 * stay empty where the chunks are wanted. It is taken a few times a request,
 * never per span. What it holds is given back by sy__arena_cache_trim(), and
 * when it is full a released chunk goes back to malloc.
 */
/* Under AddressSanitizer a cached chunk's bytes are poisoned until it is taken
 * again, so that a read of a freed batch still fails as it would after free. */
#if defined(__SANITIZE_ADDRESS__)
#define SY__ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SY__ARENA_ASAN 1
#endif
#endif
#ifdef SY__ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SY__ARENA_CACHE_MIN   ((size_t)64 << 10)
#define SY__ARENA_CACHE_BYTES ((size_t)16 << 20)
#define SY__ARENA_CACHE_SLACK 4

static struct {
    pthread_mutex_t lock;
    sy__arena_chunk_t *head; /* linked through next */
    size_t bytes;
} arena_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

/* The smallest cached chunk of at least want bytes and at most room (and not
 * SY__ARENA_CACHE_SLACK times larger than want), unlinked; NULL if none. */
static sy__arena_chunk_t *cache_take(size_t want, size_t room)
{
    if (want < SY__ARENA_CACHE_MIN) return NULL;
    size_t most = want > room / SY__ARENA_CACHE_SLACK ? room : want * SY__ARENA_CACHE_SLACK;
    pthread_mutex_lock(&arena_cache.lock);
    sy__arena_chunk_t **best = NULL;
    for (sy__arena_chunk_t **p = &arena_cache.head; *p; p = &(*p)->next)
        if ((*p)->size >= want && (*p)->size <= most && (!best || (*p)->size < (*best)->size))
            best = p;
    sy__arena_chunk_t *c = NULL;
    if (best) {
        c = *best;
        *best = c->next;
        arena_cache.bytes -= c->size;
    }
    pthread_mutex_unlock(&arena_cache.lock);
    if (c) UNPOISON(c->data, c->size);
    return c;
}

/* Keeps c if it is large and the cache has room; false: the caller frees it. */
static bool cache_put(sy__arena_chunk_t *c)
{
    if (c->size < SY__ARENA_CACHE_MIN || c->size > SY__ARENA_CACHE_BYTES) return false;
    bool kept = false;
    POISON(c->data, c->size);
    pthread_mutex_lock(&arena_cache.lock);
    if (arena_cache.bytes + c->size <= SY__ARENA_CACHE_BYTES) {
        c->next = arena_cache.head;
        arena_cache.head = c;
        arena_cache.bytes += c->size;
        kept = true;
    }
    pthread_mutex_unlock(&arena_cache.lock);
    if (!kept) UNPOISON(c->data, c->size);
    return kept;
}

size_t sy__arena_cache_trim(void)
{
    pthread_mutex_lock(&arena_cache.lock);
    sy__arena_chunk_t *c = arena_cache.head;
    size_t bytes = arena_cache.bytes;
    arena_cache.head = NULL;
    arena_cache.bytes = 0;
    pthread_mutex_unlock(&arena_cache.lock);
    while (c) {
        sy__arena_chunk_t *next = c->next;
        UNPOISON(c->data, c->size);
        free(c);
        c = next;
    }
    return bytes;
}

size_t sy__arena_cache_bytes(void)
{
    pthread_mutex_lock(&arena_cache.lock);
    size_t bytes = arena_cache.bytes;
    pthread_mutex_unlock(&arena_cache.lock);
    return bytes;
}

/* ---- the arena ---- */

static void *arena_pb_alloc(void *data, size_t size)
{
    return sy__arena_alloc(data, size);
}

/* protobuf-c frees piecewise on its error paths; an arena frees everything at once. */
static void arena_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void sy__arena_init(sy__arena_t *a, size_t limit)
{
    a->head = NULL;
    a->total = 0;
    a->limit = limit;
    a->pb.alloc = arena_pb_alloc;
    a->pb.free = arena_pb_free;
    a->pb.allocator_data = a;
}

void *sy__arena_alloc(sy__arena_t *a, size_t size)
{
    size_t rounded = (size + (SY__ARENA_ALIGN - 1)) & ~(size_t)(SY__ARENA_ALIGN - 1);
    if (rounded < size) return NULL; /* overflow */
    sy__arena_chunk_t *c = a->head;
    if (c && c->size - c->used >= rounded) {
        void *p = c->data + c->used;
        c->used += rounded;
        return p;
    }
    /* A new chunk: at least the request, growing geometrically with what the arena
     * already holds (so a large decode needs few chunks), capped per step. */
    size_t want = a->total < SY__ARENA_MIN_CHUNK ? SY__ARENA_MIN_CHUNK : a->total;
    if (want > SY__ARENA_MAX_STEP) want = SY__ARENA_MAX_STEP;
    if (want < rounded) want = rounded;
    if (want > a->limit || a->total > a->limit - want) return NULL;
    c = cache_take(want, a->limit - a->total);
    if (c) {
        want = c->size;
    } else {
        c = malloc(sizeof(*c) + want);
        if (!c) return NULL;
        c->size = want;
    }
    c->used = rounded;
    c->next = a->head;
    a->head = c;
    a->total += want;
    return c->data;
}

void sy__arena_release(sy__arena_t *a)
{
    sy__arena_chunk_t *c = a->head;
    while (c) {
        sy__arena_chunk_t *next = c->next;
        if (!cache_put(c)) free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
