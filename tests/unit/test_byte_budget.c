/*
 * test_byte_budget.c - the receiver's bytes-in-flight budget (byte_budget.h):
 * large requests fill seven eighths, small ones the rest, gives return bytes,
 * an unbounded budget still counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "byte_budget.h"

#define MIB (1024u * 1024u)

static void large_requests_leave_the_last_eighth(void **state)
{
    (void)state;
    syc_byte_budget_t b = {.limit = 8 * MIB};
    /* 7 MiB for requests over 64 KiB: three of 2 MiB fit, the fourth does not. */
    assert_true(syc_byte_budget_take(&b, 2 * MIB));
    assert_true(syc_byte_budget_take(&b, 2 * MIB));
    assert_true(syc_byte_budget_take(&b, 2 * MIB));
    assert_false(syc_byte_budget_take(&b, 2 * MIB));
    assert_int_equal(b.used, 6 * MIB);
    /* Small ones fill up to the whole budget, not beyond. */
    for (int i = 0; i < 32; i++)
        assert_true(syc_byte_budget_take(&b, SYC_BUDGET_SMALL));
    assert_int_equal(b.used, 8 * MIB);
    assert_false(syc_byte_budget_take(&b, 1));
    /* Giving back makes room again. */
    syc_byte_budget_give(&b, 2 * MIB, 0);
    assert_int_equal(b.used, 6 * MIB);
    assert_false(syc_byte_budget_take(&b, 2 * MIB)); /* 8 MiB > 7 MiB for large */
    assert_true(syc_byte_budget_take(&b, SYC_BUDGET_SMALL));
}

static void one_request_larger_than_the_budget(void **state)
{
    (void)state;
    syc_byte_budget_t b = {.limit = 1 * MIB};
    assert_false(syc_byte_budget_take(&b, 4 * MIB));
    assert_int_equal(b.used, 0);
    assert_false(syc_byte_budget_take(&b, SIZE_MAX));
}

static void unbounded_still_counts(void **state)
{
    (void)state;
    syc_byte_budget_t b = {0};
    assert_true(syc_byte_budget_take(&b, 100 * MIB));
    assert_true(syc_byte_budget_take(&b, 100 * MIB));
    assert_int_equal(b.used, 200 * MIB);
    assert_int_equal(b.peak, 200 * MIB);
    /* A burst that ended: the peak is reset by the trim (once a second). */
    syc_byte_budget_give(&b, 190 * MIB, 5000);
    assert_int_equal(b.used, 10 * MIB);
    assert_int_equal(b.peak, 10 * MIB);
    assert_int_equal(b.trimmed_at_ms, 5000);
    /* Giving more than was taken clamps at zero. */
    syc_byte_budget_give(&b, 50 * MIB, 5100);
    assert_int_equal(b.used, 0);
    assert_int_equal(b.trimmed_at_ms, 5000); /* not twice within a second */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_requests_leave_the_last_eighth),
        cmocka_unit_test(one_request_larger_than_the_budget),
        cmocka_unit_test(unbounded_still_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
