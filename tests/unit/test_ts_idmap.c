/*
 * test_ts_idmap.c - the tail_sampling processor's trace ID map and decision
 * caches (plugins/processors/tail_sampling/ts_idmap.c) against a plain reference:
 * random puts, gets and deletes (backward-shift deletion must keep every other
 * key reachable), crafted IDs that differ only in their last bytes (long probe
 * runs), growth, and the caches forgetting the oldest ID first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ts_idmap.h"

#define NKEYS 4096

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Key i: random bytes, or (crafted) zeros with i in the last two bytes. */
static void key_of(unsigned i, bool crafted, uint8_t out[16])
{
    memset(out, 0, 16);
    if (crafted) {
        out[14] = (uint8_t)(i >> 8);
        out[15] = (uint8_t)i;
        return;
    }
    uint64_t a = (uint64_t)i * 0x9e3779b97f4a7c15ull + 1, b = ~a * 31;
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

static void check_against_reference(bool crafted)
{
    ts_idmap_t m;
    assert_int_equal(ts_idmap_init(&m, 8), 0);
    static bool present[NKEYS];
    static uint32_t value[NKEYS];
    memset(present, 0, sizeof present);
    size_t count = 0;
    uint8_t id[16];
    for (int op = 0; op < 200000; op++) {
        unsigned k = (unsigned)(rnd() % NKEYS);
        key_of(k, crafted, id);
        switch (rnd() % 4) {
        case 3: { /* get-or-add: the value kept when present, 0 when added */
            bool added;
            uint32_t *v = ts_idmap_get_or_add(&m, id, &added);
            assert_non_null(v);
            assert_int_equal(added, !present[k]);
            if (added) {
                assert_int_equal(*v, 0);
                *v = (uint32_t)rnd();
                count++;
                present[k] = true;
            }
            assert_int_equal(*v, added ? *v : value[k]);
            value[k] = *v;
            break;
        }
        case 0:
        case 1: {
            uint32_t v = (uint32_t)rnd();
            assert_int_equal(ts_idmap_put(&m, id, v), 0);
            if (!present[k]) count++;
            present[k] = true;
            value[k] = v;
            break;
        }
        default:
            ts_idmap_del(&m, id);
            if (present[k]) count--;
            present[k] = false;
        }
        assert_int_equal(m.count, count);
        if (op % 20000 == 0 || op == 199999) {
            for (unsigned j = 0; j < NKEYS; j++) {
                key_of(j, crafted, id);
                uint32_t *v = ts_idmap_get(&m, id);
                if (present[j]) {
                    assert_non_null(v);
                    assert_int_equal(*v, value[j]);
                } else {
                    assert_null(v);
                }
            }
        }
    }
    ts_idmap_free(&m);
}

static void test_random_ids(void **state)
{
    (void)state;
    check_against_reference(false);
}

static void test_crafted_ids(void **state)
{
    (void)state;
    check_against_reference(true);
}

static void test_cache_forgets_the_oldest(void **state)
{
    (void)state;
    ts_cache_t c;
    uint8_t id[16];
    assert_int_equal(ts_cache_init(&c, 100), 0);
    for (unsigned i = 0; i < 250; i++) {
        key_of(i, i % 2, id);
        assert_int_equal(ts_cache_put(&c, id), 0);
        assert_int_equal(ts_cache_put(&c, id), 0); /* again: no second entry */
    }
    for (unsigned i = 0; i < 250; i++) {
        key_of(i, i % 2, id);
        assert_int_equal(ts_cache_has(&c, id), i >= 150); /* the last 100 */
    }
    assert_int_equal(c.map.count, 100);
    ts_cache_free(&c);

    ts_cache_t none;
    assert_int_equal(ts_cache_init(&none, 0), 0);
    assert_int_equal(ts_cache_put(&none, id), 0);
    assert_false(ts_cache_has(&none, id)); /* size 0 remembers nothing */
    ts_cache_free(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ids),
        cmocka_unit_test(test_crafted_ids),
        cmocka_unit_test(test_cache_forgets_the_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
