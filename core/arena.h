/*
 * arena.h - a bump allocator: many small allocations, one release.
 *
 * Every byte of a batch (its encoded request, the decoded protobuf-c structs, the
 * arrays the splitter builds) comes from the batch's arena, so freeing a batch is
 * one walk over a short chunk list, and decoding a request costs no per-span
 * malloc. An arena belongs to one thread at a time; the batch serializes the
 * lazy decode that may run while the batch is shared.
 */
#ifndef SY_CORE_ARENA_H
#define SY_CORE_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct sy__arena_chunk_s sy__arena_chunk_t;

typedef struct sy__arena_s {
    sy__arena_chunk_t *head; /* the chunk being filled; older chunks follow */
    size_t total;            /* bytes obtained from malloc so far */
    size_t limit;            /* allocations that would pass this fail */
    ProtobufCAllocator pb;   /* allocator_data points back at the arena */
} sy__arena_t;

/* Prepares an empty arena that will obtain at most `limit` bytes. No allocation. */
void sy__arena_init(sy__arena_t *a, size_t limit);
/* Returns `size` bytes aligned to 16, or NULL when out of memory or over the limit. */
void *sy__arena_alloc(sy__arena_t *a, size_t size);
/* Frees every chunk; the arena is empty and usable again. Chunks of 64 KiB or
 * more go to a process-wide cache (at most 16 MiB in all) that later arenas on
 * any thread take new chunks from, their pages already mapped (arena.c). */
void sy__arena_release(sy__arena_t *a);
/* Frees every chunk the cache holds; returns the bytes it held. */
size_t sy__arena_cache_trim(void);
/* The bytes the cache holds now. */
size_t sy__arena_cache_bytes(void);

#endif
