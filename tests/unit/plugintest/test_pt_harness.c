/*
 * The plugin test harness itself (switchyard/plugintest.h): a repeating and a
 * one-shot timer on the fake clock (counts, order, a timer stopped from its own
 * callback, the rest closed at shutdown), batches emitted from a timer, the
 * protobuf feed, a refusing emit(), the log level, and the errors of a bad path,
 * a bad snippet and bad JSON.
 */
#include <stdlib.h>

#include "pt_common.h"

#define TICK SY_TEST_KIT_DIR "/processor_testtick.so"
#define NOP  PT_PLUGIN("processor_nop")

static int64_t metric(sy_pt_t *h, const char *name)
{
    int64_t v = -1;
    assert_int_equal(sy_pt_metric(h, name, &v), SY_OK);
    return v;
}

static void test_timers_on_the_fake_clock(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(TICK, "testtick/a", "interval: 1s\nonce_after: 2500ms\n");
    assert_int_equal(sy_pt_timer_count(h), 2);
    assert_int_equal(sy_pt_advance(h, 999), 0);
    assert_int_equal(sy_pt_advance(h, 1), 1); /* 1000: tick 1 */
    assert_int_equal(metric(h, "testtick_ticks"), 1);
    /* 1000 -> 4000: ticks at 2000, 3000, 4000 and the one-shot at 2500, in order. */
    assert_int_equal(sy_pt_advance(h, 3000), 4);
    assert_int_equal(sy_pt_now_ms(h), 4000);
    assert_int_equal(metric(h, "testtick_ticks"), 4);
    assert_int_equal(metric(h, "testtick_once"), 1);
    assert_int_equal(sy_pt_timer_count(h), 1); /* the one-shot stopped itself */
    const char *want[] = {"tick 1", "tick 2", "once 1", "tick 3", "tick 4"};
    size_t n = 0;
    for (size_t i = 0; sy_pt_log_line(h, i, NULL); i++) {
        sy_log_level_t lv;
        const char *line = sy_pt_log_line(h, i, &lv);
        assert_true(n < 5);
        assert_string_equal(line, want[n]);
        assert_int_equal(lv, strncmp(line, "once", 4) == 0 ? SY_LOG_WARN : SY_LOG_INFO);
        n++;
    }
    assert_int_equal(n, 5);
    assert_int_equal(sy_pt_log_count(h, SY_LOG_WARN, NULL), 1);
    assert_int_equal(sy_pt_log_count(h, SY_LOG_DEBUG, "tick"), 4);
    /* A long jump fires a repeating timer once per period. */
    assert_int_equal(sy_pt_advance(h, 60 * 1000), 60);
    assert_int_equal(metric(h, "testtick_ticks"), 64);
    assert_int_equal(sy_pt_shutdown(h), 0);
    assert_int_equal(sy_pt_timer_count(h), 0); /* the host closed the one left */
    sy_pt_close(h);
}

static void test_emit_from_a_timer(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(TICK, NULL, "interval: 100ms\n");
    char json[4096];
    pt_spans_json(json, sizeof(json), "svc", 3);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    sy_pt_set_emit_result(h, SY_EAGAIN); /* refused: it keeps the batch */
    sy_pt_advance(h, 100);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    sy_pt_set_emit_result(h, SY_OK);
    sy_pt_advance(h, 100);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    assert_int_equal(sy_pt_emitted_items(h), 3);
    char *out = sy_pt_emitted_json(h, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"name\":\"span-2\""));
    free(out);
    assert_null(sy_pt_emitted_json(h, 1));
    assert_null(sy_pt_emitted(h, 1));
    sy_pt_emitted_clear(h);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    /* What it holds at shutdown is emitted by shutdown(). */
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    sy_pt_shutdown(h);
    assert_int_equal(sy_pt_emitted_items(h), 3);
    sy_pt_close(h);
}

/* The protobuf feed: the bytes of an emitted batch fed again come out as the
 * same JSON. Also: a log level above INFO keeps INFO lines out. */
static void test_proto_round_trip_and_log_level(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(NOP, NULL, NULL);
    char json[4096], err[256];
    pt_spans_json(json, sizeof(json), "svc", 2);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    char *first = sy_pt_emitted_json(h, 0);
    size_t len = 0;
    const uint8_t *wire = sy_pt_api(h)->batch_encoded(sy_pt_emitted(h, 0), &len);
    assert_non_null(wire);
    sy_batch_t *b = sy_pt_batch_proto(h, SY_SIGNAL_TRACES, wire, len, err, sizeof(err));
    assert_non_null(b);
    assert_int_equal(sy_pt_consume(h, b), SY_OK);
    char *second = sy_pt_emitted_json(h, 1);
    assert_non_null(first);
    assert_non_null(second);
    assert_string_equal(first, second);
    free(first);
    free(second);
    assert_null(sy_pt_batch_proto(h, SY_SIGNAL_TRACES, "\x0a\xff", 2, err, sizeof(err)));
    fprintf(stderr, "bad protobuf: %s\n", err);
    assert_null(sy_pt_batch_json(h, SY_SIGNAL_TRACES, "{\"resourceSpans\":[", err, sizeof(err)));
    fprintf(stderr, "bad JSON: %s\n", err);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, "nonsense"), SY_EINVAL);
    sy_pt_log_config(h, SY_LOG_WARN, false);
    assert_false(sy_pt_api(h)->log_enabled(sy_pt_instance(h), SY_LOG_INFO));
    assert_true(sy_pt_api(h)->log_enabled(sy_pt_instance(h), SY_LOG_ERROR));
    sy_pt_close(h);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[1024];
    assert_null(sy_pt_open("/nonexistent/processor_x.so", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot load plugin /nonexistent/processor_x.so"));
    assert_null(sy_pt_open("/tmp/not-a-plugin.txt", NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "is not named <kind>_<type>.so"));
    assert_true(pt_refused(TICK, "interval: 0s\n", "plugintest.yaml:1:11"));
    assert_true(pt_refused(TICK, "interval: [1\n", "plugintest.yaml"));
    assert_true(pt_refused(TICK, "intervall: 1s\n", "has invalid keys: intervall"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_on_the_fake_clock),
        cmocka_unit_test(test_emit_from_a_timer),
        cmocka_unit_test(test_proto_round_trip_and_log_level),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
