/*
 * test_ts_strcache.c - the tail_sampling string_attribute policy's LRU of regex
 * results (plugins/processors/tail_sampling/ts_strcache.c): a lookup refreshes
 * an entry, the least recently used goes first, values longer than the bound
 * are never cached, and random traffic over few and many distinct values agrees
 * with a plain reference LRU (an array in use order) entry for entry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ts_strcache.h"

static bool get(ts_strcache_t *c, const char *s, bool *m)
{
    return ts_strcache_get(c, s, strlen(s), m);
}

static void test_lru_order(void **state)
{
    (void)state;
    ts_strcache_t *c = ts_strcache_new(2);
    assert_non_null(c);
    bool m = false;
    assert_false(get(c, "a", &m));
    ts_strcache_put(c, "a", 1, true);
    ts_strcache_put(c, "b", 1, false);
    assert_true(get(c, "a", &m)); /* a is now the most recent */
    assert_true(m);
    ts_strcache_put(c, "c", 1, true); /* b goes */
    assert_false(get(c, "b", &m));
    assert_true(get(c, "a", &m));
    assert_true(m);
    assert_true(get(c, "c", &m));
    assert_true(m);
    ts_strcache_put(c, "b", 1, false); /* a (least recent now) goes */
    assert_false(get(c, "a", &m));
    assert_true(get(c, "b", &m));
    assert_false(m);
    assert_int_equal(ts_strcache_len(c), 2);
    assert_int_equal(ts_strcache_hits(c), 4);
    assert_int_equal(ts_strcache_misses(c), 3);
    /* the empty string is a value like any other */
    ts_strcache_put(c, "", 0, true);
    assert_true(ts_strcache_get(c, "", 0, &m));
    assert_true(m);
    ts_strcache_free(c);
}

static void test_long_values(void **state)
{
    (void)state;
    ts_strcache_t *c = ts_strcache_new(4);
    char big[TS_STRCACHE_MAX_LEN + 2];
    memset(big, 'x', sizeof big);
    bool m;
    ts_strcache_put(c, big, TS_STRCACHE_MAX_LEN + 1, true);
    assert_false(ts_strcache_get(c, big, TS_STRCACHE_MAX_LEN + 1, &m));
    assert_int_equal(ts_strcache_len(c), 0);
    ts_strcache_put(c, big, TS_STRCACHE_MAX_LEN, true);
    assert_true(ts_strcache_get(c, big, TS_STRCACHE_MAX_LEN, &m));
    assert_null(ts_strcache_new(0));
    ts_strcache_free(c);
}

/* The reference: keys in use order, most recent first. */
#define REF_MAX 64
typedef struct {
    int key[REF_MAX];
    bool val[REF_MAX];
    size_t n, cap;
} ref_t;

static int ref_find(const ref_t *r, int k)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->key[i] == k) return (int)i;
    return -1;
}

static void ref_front(ref_t *r, size_t i, int k, bool v)
{
    memmove(&r->key[1], &r->key[0], i * sizeof r->key[0]);
    memmove(&r->val[1], &r->val[0], i * sizeof r->val[0]);
    r->key[0] = k;
    r->val[0] = v;
}

static void run_random(size_t cap, int distinct, unsigned steps)
{
    ts_strcache_t *c = ts_strcache_new(cap);
    ref_t r = {.cap = cap};
    uint64_t x = 0x2545f4914f6cdd1dull + cap;
    for (unsigned step = 0; step < steps; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)(x % (uint64_t)distinct);
        char s[32];
        int len = snprintf(s, sizeof s, "value-%d", k);
        bool want = (k * 7 + 3) % 5 < 2, got;
        int at = ref_find(&r, k);
        bool hit = ts_strcache_get(c, s, (size_t)len, &got);
        assert_int_equal(hit, at >= 0);
        if (hit) {
            assert_int_equal(got, want);
            ref_front(&r, (size_t)at, k, want);
        } else {
            ts_strcache_put(c, s, (size_t)len, want);
            if (r.n < r.cap) r.n++;
            ref_front(&r, r.n - 1, k, want);
        }
        assert_int_equal(ts_strcache_len(c), r.n);
    }
    ts_strcache_free(c);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    run_random(1, 3, 2000);
    run_random(8, 6, 5000);   /* everything fits */
    run_random(8, 20, 20000); /* constant eviction */
    run_random(64, 100, 50000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
