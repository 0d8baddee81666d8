/*
 * The batch processor through the plugin test harness, on its fake clock: a
 * timeout flush happens exactly when the clock reaches it and not a millisecond
 * before, a full batch goes at once, and shutdown flushes what is held. Its own
 * metrics count each trigger.
 */
#include <stdlib.h>

#include "pt_common.h"

#define BATCH PT_PLUGIN("processor_batch")

static int64_t metric(sy_pt_t *h, const char *name)
{
    int64_t v = -1;
    assert_int_equal(sy_pt_metric(h, name, &v), SY_OK);
    return v;
}

static void feed(sy_pt_t *h, int spans)
{
    char json[8192];
    pt_spans_json(json, sizeof(json), "svc", spans);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
}

static void test_timeout_on_the_fake_clock(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(BATCH, "batch/t", "timeout: 5s\nsend_batch_size: 100\n");
    feed(h, 2);
    sy_pt_advance(h, 1000);
    feed(h, 3);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    assert_int_equal(sy_pt_timer_count(h), 1);
    sy_pt_advance(h, 3999); /* 4999 ms after the first item */
    assert_int_equal(sy_pt_emitted_count(h), 0);
    assert_int_equal(sy_pt_advance(h, 1), 1);
    assert_int_equal(sy_pt_now_ms(h), 5000);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    assert_int_equal(sy_pt_emitted_items(h), 5);
    assert_int_equal(metric(h, "processor_batch_timeout_trigger_send"), 1);
    assert_int_equal(metric(h, "processor_batch_batch_size_trigger_send"), 0);
    assert_int_equal(metric(h, "processor_batch_batch_send_size"), 5);
    /* Nothing held: an hour later nothing more is sent. */
    sy_pt_advance(h, 3600 * 1000);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    sy_pt_close(h);
}

static void test_size_trigger_and_shutdown_flush(void **state)
{
    (void)state;
    sy_pt_t *h =
        pt_open_ok(BATCH, NULL, "timeout: 1s\nsend_batch_size: 4\nsend_batch_max_size: 4\n");
    feed(h, 6); /* 4 go at once; 2 wait for the timer */
    assert_int_equal(sy_pt_emitted_count(h), 1);
    assert_int_equal(sy_pt_emitted_items(h), 4);
    assert_int_equal(metric(h, "processor_batch_batch_size_trigger_send"), 1);
    feed(h, 1);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    /* shutdown() flushes the 3 held, without waiting for the timer. */
    assert_int_equal(sy_pt_shutdown(h), 0);
    assert_int_equal(sy_pt_emitted_count(h), 2);
    assert_int_equal(sy_pt_emitted_items(h), 7);
    assert_int_equal(sy_pt_timer_count(h), 0);
    sy_pt_close(h);
}

static void test_bounds_refused(void **state)
{
    (void)state;
    assert_true(pt_refused(BATCH, "send_batch_size: -1\n", "must be at least 0"));
    assert_true(pt_refused(BATCH, "send_batch_size: 10\nsend_batch_max_size: 5\n",
                           "send_batch_max_size must be greater or equal to send_batch_size"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_on_the_fake_clock),
        cmocka_unit_test(test_size_trigger_and_shutdown_flush),
        cmocka_unit_test(test_bounds_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
