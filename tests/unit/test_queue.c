/*
 * Single-threaded tests of the SPSC and MPMC rings: capacity rounding, the
 * full/empty edges, partial bursts, FIFO order, wrap-around and size(). The
 * concurrent behaviour is covered by tests/stress/test_queue_stress.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "queue.h"

/* Items are small integers disguised as pointers; the queue never looks. */
#define ITEM(i)  ((void *)(uintptr_t)(i))
#define VALUE(p) ((uintptr_t)(p))

/*
 * The two rings share one API shape, so each test runs against both through
 * this table. The queue itself is allocated with the cache-line alignment its
 * header requires.
 */
typedef struct queue_ops_s {
    const char *name;
    size_t size;
    int (*init)(void *q, size_t capacity);
    void (*destroy)(void *q);
    unsigned (*push_burst)(void *q, void *const *items, unsigned n);
    unsigned (*pop_burst)(void *q, void **items, unsigned n);
    size_t (*fill)(const void *q);
    size_t (*capacity)(const void *q);
    size_t min_capacity;
} queue_ops_t;

/* Thin adapters from `void *` to the typed functions. */
static int spsc_init(void *q, size_t c)
{
    return sy__spsc_init(q, c);
}
static void spsc_destroy(void *q)
{
    sy__spsc_destroy(q);
}
static unsigned spsc_push(void *q, void *const *it, unsigned n)
{
    return sy__spsc_push_burst(q, it, n);
}
static unsigned spsc_pop(void *q, void **it, unsigned n)
{
    return sy__spsc_pop_burst(q, it, n);
}
static size_t spsc_fill(const void *q)
{
    return sy__spsc_size(q);
}
static size_t spsc_cap(const void *q)
{
    return sy__spsc_capacity(q);
}
static int mpmc_init(void *q, size_t c)
{
    return sy__mpmc_init(q, c);
}
static void mpmc_destroy(void *q)
{
    sy__mpmc_destroy(q);
}
static unsigned mpmc_push(void *q, void *const *it, unsigned n)
{
    return sy__mpmc_push_burst(q, it, n);
}
static unsigned mpmc_pop(void *q, void **it, unsigned n)
{
    return sy__mpmc_pop_burst(q, it, n);
}
static size_t mpmc_fill(const void *q)
{
    return sy__mpmc_size(q);
}
static size_t mpmc_cap(const void *q)
{
    return sy__mpmc_capacity(q);
}

static const queue_ops_t spsc_ops = {"spsc",       sizeof(sy__spsc_t), spsc_init,
                                     spsc_destroy, spsc_push,          spsc_pop,
                                     spsc_fill,    spsc_cap,           1};
static const queue_ops_t mpmc_ops = {"mpmc",       sizeof(sy__mpmc_t), mpmc_init,
                                     mpmc_destroy, mpmc_push,          mpmc_pop,
                                     mpmc_fill,    mpmc_cap,           2};

/* Allocates an uninitialized, suitably aligned queue of the given kind. */
static void *queue_alloc(const queue_ops_t *ops)
{
    size_t bytes = (ops->size + SY_QUEUE_CACHE_LINE - 1) & ~(size_t)(SY_QUEUE_CACHE_LINE - 1);
    void *q = aligned_alloc(SY_QUEUE_CACHE_LINE, bytes);

    assert_non_null(q);
    return q;
}

/* Allocates and initializes a queue; the test frees it with queue_free(). */
static void *queue_new(const queue_ops_t *ops, size_t capacity)
{
    void *q = queue_alloc(ops);

    assert_int_equal(ops->init(q, capacity), 0);
    return q;
}

static void queue_free(const queue_ops_t *ops, void *q)
{
    ops->destroy(q);
    free(q);
}

static void check_capacity_rounding(const queue_ops_t *ops)
{
    static const struct {
        size_t requested, expected;
    } cases[] = {{1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {1000, 1024}, {1024, 1024}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        void *q = queue_new(ops, cases[i].requested);
        size_t expected = cases[i].expected;

        if (expected < ops->min_capacity) expected = ops->min_capacity;
        assert_int_equal(ops->capacity(q), expected);
        assert_int_equal(ops->fill(q), 0);
        queue_free(ops, q);
    }
}

static void check_bad_capacity(const queue_ops_t *ops)
{
    void *q = queue_alloc(ops);

    assert_int_equal(ops->init(q, 0), -1);
    ops->destroy(q); /* A no-op after a failed init. */
    assert_int_equal(ops->init(q, SIZE_MAX), -1);
    ops->destroy(q);
    free(q);
}

static void check_full_empty(const queue_ops_t *ops)
{
    void *q = queue_new(ops, 8);
    void *item = NULL;

    assert_int_equal(ops->pop_burst(q, &item, 1), 0);
    assert_null(item); /* Untouched on an empty pop. */
    for (uintptr_t i = 0; i < 8; i++) {
        void *in = ITEM(i + 1);
        assert_int_equal(ops->push_burst(q, &in, 1), 1);
        assert_int_equal(ops->fill(q), i + 1);
    }
    void *extra = ITEM(99);
    assert_int_equal(ops->push_burst(q, &extra, 1), 0);
    assert_int_equal(ops->fill(q), 8);

    /* One pop makes room for exactly one push. */
    assert_int_equal(ops->pop_burst(q, &item, 1), 1);
    assert_int_equal(VALUE(item), 1);
    assert_int_equal(ops->push_burst(q, &extra, 1), 1);
    assert_int_equal(ops->push_burst(q, &extra, 1), 0);

    for (uintptr_t i = 2; i <= 8; i++) {
        assert_int_equal(ops->pop_burst(q, &item, 1), 1);
        assert_int_equal(VALUE(item), i);
    }
    assert_int_equal(ops->pop_burst(q, &item, 1), 1);
    assert_int_equal(VALUE(item), 99);
    assert_int_equal(ops->pop_burst(q, &item, 1), 0);
    assert_int_equal(ops->fill(q), 0);

    /* Zero-length bursts are no-ops, even on an empty or full ring. */
    assert_int_equal(ops->push_burst(q, &extra, 0), 0);
    assert_int_equal(ops->pop_burst(q, &item, 0), 0);
    queue_free(ops, q);
}

static void check_partial_bursts(const queue_ops_t *ops)
{
    void *q = queue_new(ops, 8);
    void *in[10], *out[16] = {0};

    for (uintptr_t i = 0; i < 10; i++)
        in[i] = ITEM(i + 1);
    /* Push 10 into 8: the first 8 go in, and the return value says so. */
    assert_int_equal(ops->push_burst(q, in, 10), 8);
    assert_int_equal(ops->fill(q), 8);
    assert_int_equal(ops->push_burst(q, in + 8, 2), 0);

    /* Pop 3 of 8, then ask for 16 and get the remaining 5. */
    assert_int_equal(ops->pop_burst(q, out, 3), 3);
    assert_int_equal(ops->fill(q), 5);
    assert_int_equal(ops->pop_burst(q, out + 3, 16), 5);
    for (uintptr_t i = 0; i < 8; i++)
        assert_int_equal(VALUE(out[i]), i + 1);
    assert_null(out[8]); /* Nothing written past the count returned. */

    /* A burst that finds partial room takes a prefix. */
    assert_int_equal(ops->push_burst(q, in, 5), 5);
    assert_int_equal(ops->push_burst(q, in + 5, 5), 3);
    assert_int_equal(ops->pop_burst(q, out, 16), 8);
    for (uintptr_t i = 0; i < 8; i++)
        assert_int_equal(VALUE(out[i]), i + 1);
    queue_free(ops, q);
}

/* Pushes and pops a running counter with ever-changing burst sizes, so the
 * indices cross the end of the array at every possible offset, many times. */
static void check_fifo_wraparound(const queue_ops_t *ops)
{
    void *q = queue_new(ops, 16);
    void *buf[32];
    uintptr_t next_in = 1, next_out = 1;

    for (unsigned round = 0; round < 20000; round++) {
        unsigned want = 1 + round % 23; /* Sometimes more than the capacity. */

        for (unsigned i = 0; i < want; i++)
            buf[i] = ITEM(next_in + i);
        unsigned pushed = ops->push_burst(q, buf, want);
        next_in += pushed;
        assert_int_equal(ops->fill(q), next_in - next_out);

        unsigned popped = ops->pop_burst(q, buf, 1 + (round * 7) % 19);
        for (unsigned i = 0; i < popped; i++)
            assert_int_equal(VALUE(buf[i]), next_out + i);
        next_out += popped;
        assert_int_equal(ops->fill(q), next_in - next_out);
    }
    /* Far more items than slots went through, so every slot wrapped often. */
    assert_true(next_out > 16 * 1000);

    unsigned rest = ops->pop_burst(q, buf, 32);
    for (unsigned i = 0; i < rest; i++)
        assert_int_equal(VALUE(buf[i]), next_out + i);
    assert_int_equal(next_out + rest, next_in);
    assert_int_equal(ops->fill(q), 0);
    queue_free(ops, q);
}

/* Capacity 1 (SPSC) and 2 (MPMC's floor) are the smallest rings; they must
 * still alternate cleanly between full and empty. */
static void check_smallest(const queue_ops_t *ops)
{
    void *q = queue_new(ops, 1);
    size_t cap = ops->capacity(q);
    void *in[2] = {ITEM(1), ITEM(2)}, *out[2];

    for (uintptr_t round = 0; round < 100; round++) {
        assert_int_equal(ops->push_burst(q, in, 2), cap);
        assert_int_equal(ops->push_burst(q, in, 1), 0);
        assert_int_equal(ops->fill(q), cap);
        assert_int_equal(ops->pop_burst(q, out, 2), cap);
        assert_int_equal(VALUE(out[0]), 1);
        assert_int_equal(ops->pop_burst(q, out, 1), 0);
    }
    queue_free(ops, q);
}

static void test_spsc_capacity_rounding(void **state)
{
    (void)state;
    check_capacity_rounding(&spsc_ops);
}
static void test_spsc_bad_capacity(void **state)
{
    (void)state;
    check_bad_capacity(&spsc_ops);
}
static void test_spsc_full_empty(void **state)
{
    (void)state;
    check_full_empty(&spsc_ops);
}
static void test_spsc_partial_bursts(void **state)
{
    (void)state;
    check_partial_bursts(&spsc_ops);
}
static void test_spsc_fifo_wraparound(void **state)
{
    (void)state;
    check_fifo_wraparound(&spsc_ops);
}
static void test_spsc_smallest(void **state)
{
    (void)state;
    check_smallest(&spsc_ops);
}
static void test_mpmc_capacity_rounding(void **state)
{
    (void)state;
    check_capacity_rounding(&mpmc_ops);
}
static void test_mpmc_bad_capacity(void **state)
{
    (void)state;
    check_bad_capacity(&mpmc_ops);
}
static void test_mpmc_full_empty(void **state)
{
    (void)state;
    check_full_empty(&mpmc_ops);
}
static void test_mpmc_partial_bursts(void **state)
{
    (void)state;
    check_partial_bursts(&mpmc_ops);
}
static void test_mpmc_fifo_wraparound(void **state)
{
    (void)state;
    check_fifo_wraparound(&mpmc_ops);
}
static void test_mpmc_smallest(void **state)
{
    (void)state;
    check_smallest(&mpmc_ops);
}

/* The single-item helpers are thin wrappers, but they are what most of the
 * core calls. NULL is a legitimate item. */
static void test_mpmc_single(void **state)
{
    (void)state;
    sy__mpmc_t *q = queue_new(&mpmc_ops, 4);
    void *item = ITEM(7);

    assert_false(sy__mpmc_pop(q, &item));
    assert_int_equal(VALUE(item), 7);
    assert_true(sy__mpmc_push(q, NULL));
    assert_true(sy__mpmc_push(q, ITEM(1)));
    assert_true(sy__mpmc_push(q, ITEM(2)));
    assert_true(sy__mpmc_push(q, ITEM(3)));
    assert_false(sy__mpmc_push(q, ITEM(4)));
    assert_true(sy__mpmc_pop(q, &item));
    assert_null(item);
    for (uintptr_t i = 1; i <= 3; i++) {
        assert_true(sy__mpmc_pop(q, &item));
        assert_int_equal(VALUE(item), i);
    }
    assert_false(sy__mpmc_pop(q, &item));
    queue_free(&mpmc_ops, q);
}

/* A weighted push adds its weight to the ring and to the process-wide total;
 * whatever pop takes the item off (single or burst) takes exactly that weight off;
 * a push that fails and a plain push add nothing; destroy forgets what is left. */
static void test_mpmc_weighted(void **state)
{
    (void)state;
    sy__mpmc_t *q = queue_new(&mpmc_ops, 4);
    sy__mpmc_t *r = queue_new(&mpmc_ops, 2);
    int64_t base = sy__queue_weight_total();
    void *items[4];

    assert_true(sy__mpmc_push_weighted(q, ITEM(1), 100));
    assert_true(sy__mpmc_push(q, ITEM(2)));
    assert_true(sy__mpmc_push_weighted(q, ITEM(3), 30));
    assert_true(sy__mpmc_push_weighted(r, ITEM(9), 5));
    assert_int_equal(sy__mpmc_weight(q), 130);
    assert_int_equal(sy__mpmc_weight(r), 5);
    assert_int_equal(sy__queue_weight_total() - base, 135);
    assert_true(sy__mpmc_push_weighted(q, ITEM(4), 7));
    assert_false(sy__mpmc_push_weighted(q, ITEM(5), 1000)); /* full: weight taken back */
    assert_int_equal(sy__mpmc_weight(q), 137);
    assert_int_equal(sy__queue_weight_total() - base, 142);

    assert_int_equal(sy__mpmc_pop_burst(q, items, 2), 2); /* 100 + 0 */
    assert_int_equal(VALUE(items[0]), 1);
    assert_int_equal(sy__mpmc_weight(q), 37);
    assert_true(sy__mpmc_pop(q, &items[0])); /* 30 */
    assert_int_equal(VALUE(items[0]), 3);
    assert_int_equal(sy__mpmc_weight(q), 7);
    assert_int_equal(sy__queue_weight_total() - base, 12);
    /* Wrap around with weights: the cells' weights are reset by each push. */
    for (uintptr_t i = 10; i < 13; i++)
        assert_true(sy__mpmc_push(q, ITEM(i)));
    assert_int_equal(sy__mpmc_pop_burst(q, items, 4), 4);
    assert_int_equal(sy__mpmc_weight(q), 0);
    assert_int_equal(sy__queue_weight_total() - base, 5);

    queue_free(&mpmc_ops, r); /* destroyed holding ITEM(9): its 5 leave the total */
    assert_int_equal(sy__queue_weight_total() - base, 0);
    queue_free(&mpmc_ops, q);
}

/* A queue in static or automatic storage gets its alignment from alignas. */
static void test_alignment(void **state)
{
    (void)state;
    sy__spsc_t s;
    sy__mpmc_t m;

    assert_int_equal((uintptr_t)&s % SY_QUEUE_CACHE_LINE, 0);
    assert_int_equal((uintptr_t)&m % SY_QUEUE_CACHE_LINE, 0);
    assert_int_equal(offsetof(sy__spsc_t, tail) % SY_QUEUE_CACHE_LINE, 0);
    assert_int_equal(offsetof(sy__spsc_t, head) - offsetof(sy__spsc_t, tail), SY_QUEUE_CACHE_LINE);
    assert_int_equal(offsetof(sy__mpmc_t, dequeue_pos) - offsetof(sy__mpmc_t, enqueue_pos),
                     SY_QUEUE_CACHE_LINE);
    assert_int_equal(sy__spsc_init(&s, 3), 0);
    assert_int_equal(sy__mpmc_init(&m, 3), 0);
    assert_int_equal(sy__spsc_capacity(&s), 4);
    assert_int_equal(sy__mpmc_capacity(&m), 4);
    sy__spsc_destroy(&s);
    sy__mpmc_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spsc_capacity_rounding),
        cmocka_unit_test(test_spsc_bad_capacity),
        cmocka_unit_test(test_spsc_full_empty),
        cmocka_unit_test(test_spsc_partial_bursts),
        cmocka_unit_test(test_spsc_fifo_wraparound),
        cmocka_unit_test(test_spsc_smallest),
        cmocka_unit_test(test_mpmc_capacity_rounding),
        cmocka_unit_test(test_mpmc_bad_capacity),
        cmocka_unit_test(test_mpmc_full_empty),
        cmocka_unit_test(test_mpmc_partial_bursts),
        cmocka_unit_test(test_mpmc_fifo_wraparound),
        cmocka_unit_test(test_mpmc_smallest),
        cmocka_unit_test(test_mpmc_single),
        cmocka_unit_test(test_mpmc_weighted),
        cmocka_unit_test(test_alignment),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
