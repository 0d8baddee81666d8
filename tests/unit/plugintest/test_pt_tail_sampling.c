/*
 * test_pt_tail_sampling.c - the tail_sampling processor in the plugin test
 * harness: its labelled metrics (ABI 1.7 metric_register_labelled and
 * metric_series, as plugintest serves them: name{label="value",...}) after two
 * crafted traces are decided at shutdown.
 */
#include "pt_common.h"

#define TS PT_PLUGIN("processor_tail_sampling")

static int64_t metric(sy_pt_t *h, const char *name)
{
    int64_t v = -1;
    if (sy_pt_metric(h, name, &v) != SY_OK) {
        fprintf(stderr, "no metric %s\n", name);
        return -1;
    }
    return v;
}

static void test_labelled_policy_counts(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(TS, "tail_sampling/pt",
                            "decision_wait: 30s\n"
                            "policies:\n"
                            "  - {name: errors, type: status_code, "
                            "status_code: {status_codes: [ERROR]}}\n"
                            "  - {name: 'q\"b', type: span_count, span_count: {min_spans: 2}}\n");
    /* Trace 01..: 3 spans, one ERROR (both policies sample it); trace 02..: one
     * span, OK (neither does). */
    const char *json =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"01000000000000000000000000000000\",\"spanId\":\"0100000000000001\","
        "\"name\":\"a\"},"
        "{\"traceId\":\"01000000000000000000000000000000\",\"spanId\":\"0100000000000002\","
        "\"name\":\"b\",\"status\":{\"code\":2}},"
        "{\"traceId\":\"01000000000000000000000000000000\",\"spanId\":\"0100000000000003\","
        "\"name\":\"c\"},"
        "{\"traceId\":\"02000000000000000000000000000000\",\"spanId\":\"0200000000000001\","
        "\"name\":\"d\",\"status\":{\"code\":1}}]}]}]}";
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_items(h), 0); /* held until decided */
    sy_pt_shutdown(h);                           /* decides both */
    assert_int_equal(sy_pt_emitted_items(h), 3);
    assert_int_equal(
        metric(h,
               "processor_tail_sampling_count_traces_sampled{policy=\"errors\",sampled=\"true\"}"),
        1);
    assert_int_equal(
        metric(h,
               "processor_tail_sampling_count_traces_sampled{policy=\"errors\",sampled=\"false\"}"),
        1);
    assert_int_equal(
        metric(h,
               "processor_tail_sampling_count_spans_sampled{policy=\"errors\",sampled=\"true\"}"),
        3);
    assert_int_equal(
        metric(h,
               "processor_tail_sampling_count_spans_sampled{policy=\"errors\",sampled=\"false\"}"),
        1);
    assert_int_equal(
        metric(h, "processor_tail_sampling_count_traces_sampled{policy=\"q\"b\",sampled=\"true\"}"),
        1);
    assert_int_equal(
        metric(h,
               "processor_tail_sampling_count_traces_sampled{policy=\"q\"b\",sampled=\"false\"}"),
        1);
    assert_int_equal(
        metric(h, "processor_tail_sampling_global_count_traces_sampled{sampled=\"true\"}"), 1);
    assert_int_equal(
        metric(h, "processor_tail_sampling_global_count_traces_sampled{sampled=\"false\"}"), 1);
    assert_int_equal(metric(h, "processor_tail_sampling_new_trace_id_received"), 2);
    assert_int_equal(metric(h, "processor_tail_sampling_sampling_decision_latency_count"), 2);
    sy_pt_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labelled_policy_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
