/*
 * The filter processor through the plugin test harness: OTTL conditions drop
 * spans, its own counter says how many, an emptied batch is not emitted, and a
 * condition that does not compile is refused at load with its position.
 */
#include <stdlib.h>

#include "pt_common.h"

#define FILTER PT_PLUGIN("processor_filter")

static void test_drops_matching_spans(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(FILTER, "filter/x",
                            "traces:\n  span:\n    - name == \"span-1\"\n"
                            "    - attributes[\"user\"] == \"u-3\"\n");
    char json[4096];
    pt_spans_json(json, sizeof(json), "svc", 4);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    assert_int_equal(sy_pt_emitted_items(h), 2);
    char *out = sy_pt_emitted_json(h, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"name\":\"span-0\""));
    assert_non_null(strstr(out, "\"name\":\"span-2\""));
    assert_null(strstr(out, "\"name\":\"span-1\""));
    assert_null(strstr(out, "\"name\":\"span-3\""));
    free(out);
    int64_t n = -1;
    assert_int_equal(sy_pt_metric(h, "processor_filter_spans_filtered", &n), SY_OK);
    assert_int_equal(n, 2);
    sy_pt_close(h);
}

static void test_all_dropped_emits_nothing(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(FILTER, NULL,
                            "traces:\n  span:\n    - resource.attributes[\"service.name\"] == "
                            "\"canary\"\n");
    char json[4096];
    pt_spans_json(json, sizeof(json), "canary", 3);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    pt_spans_json(json, sizeof(json), "other", 3);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_items(h), 3);
    int64_t n = -1;
    assert_int_equal(sy_pt_metric(h, "processor_filter_spans_filtered", &n), SY_OK);
    assert_int_equal(n, 3);
    sy_pt_close(h);
}

static void test_bad_condition_refused(void **state)
{
    (void)state;
    assert_true(pt_refused(FILTER, "traces:\n  span:\n    - name == \n", "plugintest.yaml:3:"));
    assert_true(pt_refused(FILTER, "error_mode: loud\n", "error_mode"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drops_matching_spans),
        cmocka_unit_test(test_all_dropped_emits_nothing),
        cmocka_unit_test(test_bad_condition_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
