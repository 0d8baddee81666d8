/*
 * test_arena.c - the arena's cache of large released chunks (core/arena.c):
 * a released chunk of 64 KiB or more is taken again by the next arena that
 * needs one its size, small chunks are not kept, an arena's limit still holds,
 * the cache stays within 16 MiB, trimming empties it, and arenas filled on some
 * threads and released on others (as batches are) never see each other's bytes
 * (the "stress" label runs this under ThreadSanitizer too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define MIB ((size_t)1 << 20)

static void test_reuse(void **state)
{
    (void)state;
    sy__arena_cache_trim();
    sy__arena_t a, b;
    sy__arena_init(&a, 64 * MIB);
    unsigned char *p = sy__arena_alloc(&a, MIB);
    assert_non_null(p);
    memset(p, 0xab, MIB);
    sy__arena_release(&a);
    assert_int_equal(sy__arena_cache_bytes(), MIB);
    /* The next arena wanting as much gets the same chunk, usable in full. */
    sy__arena_init(&b, 64 * MIB);
    unsigned char *q = sy__arena_alloc(&b, MIB - 100);
    assert_ptr_equal(q, p);
    assert_int_equal(sy__arena_cache_bytes(), 0);
    memset(q, 0xcd, MIB - 100);
    assert_int_equal(b.total, MIB);
    sy__arena_release(&b);
    assert_int_equal(sy__arena_cache_trim(), MIB);
}

static void test_small_chunks_not_kept(void **state)
{
    (void)state;
    sy__arena_cache_trim();
    sy__arena_t a;
    sy__arena_init(&a, 64 * MIB);
    for (int i = 0; i < 100; i++)
        assert_non_null(sy__arena_alloc(&a, 100));
    assert_true(a.total < 64 * 1024);
    sy__arena_release(&a);
    assert_int_equal(sy__arena_cache_bytes(), 0);
}

static void test_limit_and_slack(void **state)
{
    (void)state;
    sy__arena_cache_trim();
    sy__arena_t a, b;
    sy__arena_init(&a, 64 * MIB);
    void *big = sy__arena_alloc(&a, MIB);
    assert_non_null(big);
    sy__arena_release(&a);
    assert_int_equal(sy__arena_cache_bytes(), MIB);
    /* The cached 1 MiB chunk is more than this arena may hold: not taken. */
    sy__arena_init(&b, 600 * 1024);
    void *p = sy__arena_alloc(&b, 512 * 1024);
    assert_non_null(p);
    assert_ptr_not_equal(p, big);
    assert_true(b.total <= b.limit);
    sy__arena_release(&b);
    /* Nor is a chunk more than 4 times what is wanted. */
    size_t held = sy__arena_cache_bytes();
    assert_int_equal(held, MIB + 512 * 1024);
    sy__arena_init(&b, 64 * MIB);
    p = sy__arena_alloc(&b, 200 * 1024);
    assert_non_null(p);
    assert_ptr_not_equal(p, big);
    assert_int_equal(sy__arena_cache_bytes(), MIB); /* the 512 KiB chunk was taken */
    assert_int_equal(b.total, 512 * 1024);
    sy__arena_release(&b);
    assert_int_equal(sy__arena_cache_trim(), MIB + 512 * 1024);
    assert_int_equal(sy__arena_cache_bytes(), 0);
}

static void test_cache_bounded(void **state)
{
    (void)state;
    sy__arena_cache_trim();
    enum { N = 24 };
    sy__arena_t a[N];
    for (int i = 0; i < N; i++) {
        sy__arena_init(&a[i], 64 * MIB);
        assert_non_null(sy__arena_alloc(&a[i], MIB));
    }
    for (int i = 0; i < N; i++)
        sy__arena_release(&a[i]);
    assert_int_equal(sy__arena_cache_bytes(), 16 * MIB);
    assert_int_equal(sy__arena_cache_trim(), 16 * MIB);
}

/* ---- arenas handed between threads ---- */

#define SLOTS 8

typedef struct handoff_s {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sy__arena_t *slot[SLOTS];
    unsigned char fill[SLOTS];
    size_t size[SLOTS];
    unsigned char *data[SLOTS];
    int n;
    int producers_left;
    int bad;
} handoff_t;

static handoff_t hand = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, {0}, {0}, {0}, 0, 0, 0};

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1);
    for (int i = 0; i < 300; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t size = 64 * 1024 + (size_t)(rng % (900 * 1024));
        sy__arena_t *a = malloc(sizeof(*a));
        if (!a) abort();
        sy__arena_init(a, 64 * MIB);
        unsigned char *p = sy__arena_alloc(a, size);
        if (!p) abort();
        unsigned char fill = (unsigned char)(id * 64 + i % 64 + 1);
        memset(p, fill, size);
        pthread_mutex_lock(&hand.lock);
        while (hand.n == SLOTS)
            pthread_cond_wait(&hand.cond, &hand.lock);
        hand.slot[hand.n] = a;
        hand.fill[hand.n] = fill;
        hand.size[hand.n] = size;
        hand.data[hand.n] = p;
        hand.n++;
        pthread_cond_broadcast(&hand.cond);
        pthread_mutex_unlock(&hand.lock);
    }
    pthread_mutex_lock(&hand.lock);
    hand.producers_left--;
    pthread_cond_broadcast(&hand.cond);
    pthread_mutex_unlock(&hand.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&hand.lock);
        while (hand.n == 0 && hand.producers_left > 0)
            pthread_cond_wait(&hand.cond, &hand.lock);
        if (hand.n == 0) {
            pthread_mutex_unlock(&hand.lock);
            return NULL;
        }
        hand.n--;
        sy__arena_t *a = hand.slot[hand.n];
        unsigned char fill = hand.fill[hand.n], *p = hand.data[hand.n];
        size_t size = hand.size[hand.n];
        pthread_cond_broadcast(&hand.cond);
        pthread_mutex_unlock(&hand.lock);
        /* The bytes its producer wrote, untouched by any other arena. */
        for (size_t i = 0; i < size; i += 4093)
            if (p[i] != fill) __atomic_fetch_add(&hand.bad, 1, __ATOMIC_RELAXED);
        if (p[size - 1] != fill) __atomic_fetch_add(&hand.bad, 1, __ATOMIC_RELAXED);
        sy__arena_release(a);
        free(a);
    }
}

static void test_threads(void **state)
{
    (void)state;
    sy__arena_cache_trim();
    enum { P = 3, C = 2 };
    pthread_t pt[P], ct[C];
    hand.producers_left = P;
    for (int i = 0; i < P; i++)
        assert_int_equal(pthread_create(&pt[i], NULL, producer, (void *)(uintptr_t)i), 0);
    for (int i = 0; i < C; i++)
        assert_int_equal(pthread_create(&ct[i], NULL, consumer, NULL), 0);
    for (int i = 0; i < P; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < C; i++)
        pthread_join(ct[i], NULL);
    assert_int_equal(hand.bad, 0);
    assert_int_equal(hand.n, 0);
    assert_true(sy__arena_cache_bytes() <= 16 * MIB);
    sy__arena_cache_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),           cmocka_unit_test(test_small_chunks_not_kept),
        cmocka_unit_test(test_limit_and_slack), cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
