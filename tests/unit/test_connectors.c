/*
 * Connectors through the real engine: a connector is an exporter in the
 * pipelines it ends and a receiver in those it feeds.
 *
 * The router tests run testgen -> pipeline -> testconn -> pipeline -> testsink
 * (and longer chains) and check, with the sinks' sequence-number reports, that
 * every span arrives exactly once: when the connector passes batches on as they
 * come, when a slow sink makes the pipeline behind the connector fill (the
 * connector is told to retry and offered the batch again), and when the
 * connectors hold everything until shutdown, which only works if the pipelines
 * drain in the order of the chain. emit_to() reaches only the pipeline named.
 * The configuration tests check what the engine refuses: cycles (with the loop
 * named), a connector in a pipeline of a signal it cannot make, one used on one
 * side only, and emit_to() of a pipeline the connector does not feed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "router_harness.h"

typedef struct report_s {
    unsigned long long batches, items, distinct, duplicates, out_of_range, undecodable;
} report_t;

static void report_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "/tmp/sy_conn_%s.%d", name, (int)getpid());
}

static report_t read_report(const char *name)
{
    char path[128];
    report_path(path, sizeof(path), name);
    report_t r = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n =
        fscanf(f,
               "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
               "undecodable=%llu",
               &r.batches, &r.items, &r.distinct, &r.duplicates, &r.out_of_range, &r.undecodable);
    fclose(f);
    unlink(path);
    assert_int_equal(n, 6);
    return r;
}

static void expect_all_once(const char *sink, unsigned long long items)
{
    report_t r = read_report(sink);
    fprintf(stderr, "%s: batches=%llu items=%llu distinct=%llu duplicates=%llu\n", sink, r.batches,
            r.items, r.distinct, r.duplicates);
    assert_int_equal(r.items, items);
    assert_int_equal(r.distinct, items);
    assert_int_equal(r.duplicates, 0);
    assert_int_equal(r.out_of_range, 0);
    assert_int_equal(r.undecodable, 0);
}

static void run(const char *yaml)
{
    sy__router_t *r = sy_test_router_start(yaml);
    usleep(300000);
    /* Closing drains the whole chain before the sinks write their reports. */
    assert_int_equal(sy_test_router_close(r), 0);
}

static char *sink_yaml(const char *name, const char *extra)
{
    static char buf[4][256];
    static int next;
    char path[128];
    report_path(path, sizeof(path), name);
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "  testsink/%s: {report_path: %s, verify: true, max_seq: 1000%s}\n",
             name, path, extra);
    return b;
}

/* testgen -> a -> testconn -> b -> sink: every span once. */
static void test_pass_through(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n  testgen: {count: 100, spans: 10}\n"
             "connectors:\n  testconn:\n"
             "exporters:\n%s"
             "service:\n  pipelines:\n"
             "    traces/a: {receivers: [testgen], exporters: [testconn]}\n"
             "    traces/b: {receivers: [testconn], exporters: [testsink/pass]}\n",
             sink_yaml("pass", ""));
    sy__router_t *r = sy_test_router_start(yaml);
    assert_int_equal(sy_test_metric_wait("switchyard_connector_emitted_spans_total",
                                         "connector=\"testconn\"", 1000, 5000),
                     1000);
    assert_int_equal(
        sy_test_metric("switchyard_connector_consumed_spans_total", "connector=\"testconn\""),
        1000);
    assert_int_equal(sy_test_router_close(r), 0);
    expect_all_once("pass", 1000);
}

/* A slow sink behind the connector: the pipeline it feeds fills, emit() says
 * SY_EAGAIN, consume() passes it on and the batch is offered again later. */
static void test_back_pressure(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n  testgen: {count: 400, spans: 2}\n"
             "connectors:\n  testconn:\n"
             "exporters:\n%s"
             "service:\n  pipelines:\n"
             "    traces/a: {receivers: [testgen], exporters: [testconn]}\n"
             "    traces/b: {receivers: [testconn], exporters: [testsink/slow]}\n",
             sink_yaml("slow", ", delay: 2ms"));
    sy__router_t *r = sy_test_router_start(yaml);
    /* 400 batches at 2 ms each: let most of them through before closing. */
    sy_test_metric_wait("switchyard_exporter_sent_spans_total", "exporter=\"testsink/slow\"", 800,
                        8000);
    assert_int_equal(sy_test_router_close(r), 0);
    expect_all_once("slow", 800);
}

/* Two connectors that hold everything until shutdown: a -> c1 -> b -> c2 -> c.
 * Only a drain in chain order delivers it all. */
static void test_drain_order(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n  testgen: {count: 50, spans: 10}\n"
             "connectors:\n  testconn/1: {hold: true}\n  testconn/2: {hold: true}\n"
             "exporters:\n%s"
             "service:\n  pipelines:\n"
             "    traces/c: {receivers: [testconn/2], exporters: [testsink/held]}\n"
             "    traces/b: {receivers: [testconn/1], exporters: [testconn/2]}\n"
             "    traces/a: {receivers: [testgen], exporters: [testconn/1]}\n",
             sink_yaml("held", ""));
    run(yaml);
    expect_all_once("held", 500);
}

/* emit_to: only the pipeline named; api->emit() reaches both. */
static void test_emit_to(void **state)
{
    (void)state;
    char yaml[3072];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n  testgen: {count: 30, spans: 10}\n"
             "connectors:\n  testconn/to: {to: traces/y}\n  testconn/all:\n"
             "exporters:\n%s%s%s%s"
             "service:\n  pipelines:\n"
             "    traces/in: {receivers: [testgen], exporters: [testconn/to, testconn/all]}\n"
             "    traces/x: {receivers: [testconn/to], exporters: [testsink/x]}\n"
             "    traces/y: {receivers: [testconn/to], exporters: [testsink/y]}\n"
             "    traces/p: {receivers: [testconn/all], exporters: [testsink/p]}\n"
             "    traces/q: {receivers: [testconn/all], exporters: [testsink/q]}\n",
             sink_yaml("x", ""), sink_yaml("y", ""), sink_yaml("p", ""), sink_yaml("q", ""));
    run(yaml);
    expect_all_once("y", 300);
    expect_all_once("p", 300);
    expect_all_once("q", 300);
    /* testconn/to never emitted to x: its sink saw nothing. */
    report_t x = read_report("x");
    assert_int_equal(x.items, 0);
}

static void test_config_refusals(void **state)
{
    (void)state;
    /* A connector that closes a loop of pipelines. */
    assert_true(sy_test_config_refused(
        "receivers:\n  testgen:\n"
        "connectors:\n  testconn/1:\n  testconn/2:\n"
        "exporters:\n  testsink:\n"
        "service:\n  pipelines:\n"
        "    traces/a: {receivers: [testgen, testconn/2], exporters: [testconn/1, testsink]}\n"
        "    traces/b: {receivers: [testconn/1], exporters: [testconn/2]}\n",
        "cycle detected: connector"));
    assert_true(sy_test_config_refused("receivers:\n  testgen:\n"
                                       "connectors:\n  testconn:\n"
                                       "exporters:\n  testsink:\n"
                                       "service:\n  pipelines:\n"
                                       "    traces/a: {receivers: [testgen, testconn], exporters: "
                                       "[testconn, testsink]}\n",
                                       "(pipeline traces/a -> pipeline traces/a)"));
    /* testconn makes traces only. */
    assert_true(
        sy_test_config_refused("receivers:\n  testgen:\n"
                               "connectors:\n  testconn:\n"
                               "exporters:\n  debug:\n  testsink:\n"
                               "service:\n  pipelines:\n"
                               "    traces/a: {receivers: [testgen], exporters: [testconn]}\n"
                               "    traces/b: {receivers: [testconn], exporters: [testsink]}\n"
                               "    metrics/m: {receivers: [testconn], exporters: [debug]}\n",
                               "connector \"testconn\" cannot be a receiver of metrics"));
    /* Used on one side only. */
    assert_true(sy_test_config_refused(
        "receivers:\n  testgen:\n"
        "connectors:\n  testconn:\n"
        "exporters:\n  testsink:\n"
        "service:\n  pipelines:\n"
        "    traces/a: {receivers: [testgen], exporters: [testconn, testsink]}\n",
        "connector \"testconn\" used as exporter in traces/a pipeline but not used in any "
        "supported receiver pipeline"));
}

/* emit_to() of a pipeline the connector does not feed: the connector's create()
 * refuses it (api->connector_pipelines), so the router does not start. */
static void test_unknown_target(void **state)
{
    (void)state;
    const char *dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml =
                                  "receivers:\n  testgen: {count: 1}\n"
                                  "connectors:\n  testconn: {to: traces/nowhere}\n"
                                  "exporters:\n  testsink:\n"
                                  "service:\n  pipelines:\n"
                                  "    traces/a: {receivers: [testgen], exporters: [testconn]}\n"
                                  "    traces/b: {receivers: [testconn], exporters: [testsink]}\n",
                              .plugin_dirs = dirs,
                              .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    assert_non_null(r);
    assert_int_not_equal(sy__router_start(r), 0);
    /* The pipelines that never started count as drained: the stop does not wait
     * for them (it used to hang until the shutdown deadline). */
    assert_int_not_equal(sy__router_close(r), SY__ETIMEDOUT);
    sy__diag_free(&diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_through),    cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_drain_order),     cmocka_unit_test(test_emit_to),
        cmocka_unit_test(test_config_refusals), cmocka_unit_test(test_unknown_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
