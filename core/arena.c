/*
 * arena.c - the bump allocator behind every batch (see arena.h): chunks taken
 * from malloc as the arena grows, a byte limit, the protobuf-c allocator that
 * draws from it, and the one release that frees every chunk.
 */
#include "arena.h"

#include <stdalign.h>
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
    c = malloc(sizeof(*c) + want);
    if (!c) return NULL;
    c->size = want;
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
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
