/* malloc_count.so - an LD_PRELOAD shim that counts the calls to malloc, calloc,
 * realloc, posix_memalign, aligned_alloc and free of a process and writes the
 * totals at exit to the file named by $MALLOC_COUNT_OUT (stderr without it).
 * Used by bench/malloc_per_span.py to find the allocations per span of a pipeline:
 * two runs with different numbers of requests, the difference divided by the
 * difference in spans (start-up and shutdown cancel out).
 *
 *   cc -O2 -shared -fPIC -o malloc_count.so bench/malloc_count.c
 *   MALLOC_COUNT_OUT=/tmp/m.txt LD_PRELOAD=./malloc_count.so build/bin/switchyard ...
 *
 * glibc only: it forwards to __libc_malloc and friends, so that no dlsym bootstrap
 * is needed. Counters are relaxed atomics (one cache line each would be faster; a
 * benchmark of throughput should not run under it). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_ulong n_malloc, n_calloc, n_realloc, n_memalign, n_free, n_bytes;

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, a * b, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
    void *p = __libc_memalign(align, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add_explicit(&n_memalign, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

void free(void *p)
{
    if (p) atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
    __libc_free(p);
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("MALLOC_COUNT_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) return;
    fprintf(f, "malloc %lu calloc %lu realloc %lu memalign %lu free %lu bytes %lu\n",
            atomic_load(&n_malloc), atomic_load(&n_calloc), atomic_load(&n_realloc),
            atomic_load(&n_memalign), atomic_load(&n_free), atomic_load(&n_bytes));
    if (f != stderr) fclose(f);
}
