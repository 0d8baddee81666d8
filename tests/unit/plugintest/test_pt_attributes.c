/*
 * The attributes processor through the plugin test harness
 * (switchyard/plugintest.h): the real .so, its YAML, OTLP/JSON in and out, its
 * configuration errors and its own metric, with no router.
 */
#include <stdlib.h>

#include "pt_common.h"

#define ATTRIBUTES PT_PLUGIN("processor_attributes")

static void test_actions_apply_in_order(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(ATTRIBUTES, "attributes/x",
                            "actions:\n"
                            "  - {key: env, value: prod, action: insert}\n"
                            "  - {key: copy, from_attribute: user, action: upsert}\n"
                            "  - {key: user, action: delete}\n"
                            "  - {key: n, value: 7, action: insert}\n");
    char json[4096];
    pt_spans_json(json, sizeof(json), "checkout", 2);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    assert_int_equal(sy_pt_emitted_count(h), 1);
    assert_int_equal(sy_pt_emitted_items(h), 2);
    char *out = sy_pt_emitted_json(h, 0);
    assert_non_null(out);
    /* Each span: user deleted, env and copy and n added in action order. */
    for (int i = 0; i < 2; i++) {
        char want[512];
        snprintf(
            want, sizeof(want),
            "\"name\":\"span-%d\",\"attributes\":[{\"key\":\"env\",\"value\":{"
            "\"stringValue\":\"prod\"}},{\"key\":\"copy\",\"value\":{\"stringValue\":\"u-%d\"}},"
            "{\"key\":\"n\",\"value\":{\"intValue\":\"7\"}}]",
            i, i);
        if (!strstr(out, want)) fprintf(stderr, "got %s\nwant %s\n", out, want);
        assert_non_null(strstr(out, want));
    }
    assert_null(strstr(out, "\"key\":\"user\""));
    /* The resource is untouched. */
    assert_non_null(
        strstr(out, "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}"));
    free(out);
    int64_t failed = -1;
    assert_int_equal(sy_pt_metric(h, "processor_attributes_commit_failed", &failed), SY_OK);
    assert_int_equal(failed, 0);
    sy_pt_close(h);
}

static void test_include_filters_items(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(ATTRIBUTES, NULL,
                            "include:\n  match_type: strict\n  span_names: [span-1]\n"
                            "actions:\n  - {key: seen, value: true, action: upsert}\n");
    char json[4096];
    pt_spans_json(json, sizeof(json), "svc", 3);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_OK);
    char *out = sy_pt_emitted_json(h, 0);
    assert_non_null(out);
    const char *seen = strstr(out, "{\"key\":\"seen\",\"value\":{\"boolValue\":true}}");
    assert_non_null(seen);
    assert_null(strstr(seen + 10, "\"key\":\"seen\"")); /* once only */
    /* ... and on span-1, the one between span-0 and span-2. */
    assert_true(seen > strstr(out, "\"name\":\"span-1\""));
    assert_true(seen < strstr(out, "\"name\":\"span-2\""));
    free(out);
    sy_pt_close(h);
}

/* Nothing to change: the batch is passed on as it came (the same batch). */
static void test_unchanged_batch_passes_as_is(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(ATTRIBUTES, NULL, "actions:\n  - {key: absent, action: delete}\n");
    char json[4096], err[256];
    pt_spans_json(json, sizeof(json), "svc", 1);
    sy_batch_t *b = sy_pt_batch_json(h, SY_SIGNAL_TRACES, json, err, sizeof(err));
    assert_non_null(b);
    assert_int_equal(sy_pt_consume(h, b), SY_OK);
    assert_ptr_equal(sy_pt_emitted(h, 0), b);
    sy_pt_close(h);
}

/* Downstream full: the processor gives the batch back with SY_EAGAIN. */
static void test_emit_refused_is_returned(void **state)
{
    (void)state;
    sy_pt_t *h = pt_open_ok(ATTRIBUTES, NULL, "actions:\n  - {key: a, value: b, action: insert}\n");
    sy_pt_set_emit_result(h, SY_EAGAIN);
    char json[4096];
    pt_spans_json(json, sizeof(json), "svc", 1);
    assert_int_equal(sy_pt_consume_json(h, SY_SIGNAL_TRACES, json), SY_EAGAIN);
    assert_int_equal(sy_pt_emitted_count(h), 0);
    sy_pt_close(h);
}

static void test_config_errors(void **state)
{
    (void)state;
    assert_true(pt_refused(ATTRIBUTES, "actions:\n  - {key: a, action: explode}\n", "explode"));
    assert_true(pt_refused(ATTRIBUTES, "actoins: []\n", "plugintest.yaml:1:1"));
    assert_true(pt_refused(ATTRIBUTES,
                           "actions:\n  - {key: a, from_context: metadata.x, action: insert}\n",
                           "from_context is not supported"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_apply_in_order),
        cmocka_unit_test(test_include_filters_items),
        cmocka_unit_test(test_unchanged_batch_passes_as_is),
        cmocka_unit_test(test_emit_refused_is_returned),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
