/*
 * The memory_limiter processor through the real loader: above its soft limit the
 * receivers feeding its pipeline are refused (the client retries) while what the
 * pipeline took still flows; below it nothing is refused; and its configuration
 * errors are the collector's.
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

#include "router_harness.h"
#include "telemetry.h"

static const char *const tail = "service:\n"
                                "  telemetry: {logs: {level: warn}}\n"
                                "  pipelines:\n"
                                "    traces/%s:\n"
                                "      receivers: [testgen/%s]\n"
                                "      processors: [memory_limiter/%s]\n"
                                "      exporters: [testsink/%s]\n";

static void yaml_for(char *buf, size_t cap, const char *id, const char *limiter, const char *report)
{
    char svc[512];
    snprintf(svc, sizeof(svc), tail, id, id, id, id);
    snprintf(buf, cap,
             "receivers:\n  testgen/%s: {count: 20, spans: 5, interval: 5ms}\n"
             "processors:\n  memory_limiter/%s: {%s}\n"
             "exporters:\n  testsink/%s: {report_path: %s}\n%s",
             id, id, limiter, id, report, svc);
}

/* A hard limit of 1 MiB is below any process's RSS: every emit is refused and
 * nothing reaches the sink. testgen holds its refused batch and emits it again
 * every millisecond (its own counter counts the attempts); the receiver's
 * refused counter counts a batch once, when it is given up (freed without an
 * emit taking it), so it stays 0 while the batch is held. */
static void test_above_soft_limit_refuses(void **state)
{
    (void)state;
    char yaml[2048], report[64];
    snprintf(report, sizeof(report), "/tmp/sy_ml_low.%d", (int)getpid());
    yaml_for(yaml, sizeof(yaml), "low", "check_interval: 10ms, limit_mib: 1", report);
    sy__router_t *r = sy_test_router_start(yaml);
    int64_t attempts = sy_test_metric_wait("switchyard_testgen_refused_batches_total",
                                           "receiver=\"testgen/low\"", 10, 3000);
    assert_true(attempts >= 10);
    assert_int_equal(
        sy_test_metric("switchyard_receiver_refused_spans_total", "receiver=\"testgen/low\""), 0);
    assert_int_equal(
        sy_test_metric("switchyard_receiver_accepted_spans_total", "receiver=\"testgen/low\""), 0);
    assert_int_equal(sy_test_metric("switchyard_memory_limiter_refusing",
                                    "processor=\"memory_limiter/low\",pipeline=\"traces/low\""),
                     1);
    assert_true(sy_test_metric("switchyard_memory_limiter_rss_bytes",
                               "processor=\"memory_limiter/low\",pipeline=\"traces/low\"") >
                1024 * 1024);
    assert_int_equal(sy_test_router_close(r), 0);
    FILE *f = fopen(report, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(report);
    assert_non_null(strstr(line, "batches=0 items=0 "));
}

/* A generous limit refuses nothing: every span arrives. */
static void test_below_soft_limit_passes(void **state)
{
    (void)state;
    char yaml[2048], report[64];
    snprintf(report, sizeof(report), "/tmp/sy_ml_high.%d", (int)getpid());
    yaml_for(yaml, sizeof(yaml), "high", "check_interval: 10ms, limit_mib: 100000", report);
    sy__router_t *r = sy_test_router_start(yaml);
    int64_t accepted = sy_test_metric_wait("switchyard_receiver_accepted_spans_total",
                                           "receiver=\"testgen/high\"", 100, 5000);
    assert_int_equal(accepted, 100);
    assert_int_equal(
        sy_test_metric("switchyard_receiver_refused_spans_total", "receiver=\"testgen/high\""), 0);
    assert_int_equal(sy_test_router_close(r), 0);
    FILE *f = fopen(report, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(report);
    assert_non_null(strstr(line, "items=100 "));
}

/* A process-wide metric without labels, from the rendered text; -1 when absent. */
static int64_t plain_metric(const char *name)
{
    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *at = strstr(text, needle);
    int64_t v = at ? strtoll(at + strlen(needle), NULL, 10) : -1;
    free(text);
    return v;
}

/* The router's queues share a byte budget: 16 MiB by default; a memory_limiter
 * bounds it to a quarter of its soft limit, the smallest of several winning. */
static void test_queue_budget(void **state)
{
    (void)state;
    if (getenv("SWITCHYARD_QUEUE_BUDGET")) skip(); /* it overrides both */
    char yaml[2048];
    /* No memory_limiter: the default. */
    char plain[2048];
    snprintf(plain, sizeof(plain),
             "receivers:\n  testgen: {count: 1}\nexporters:\n  testsink:\n"
             "service:\n  pipelines:\n    traces: {receivers: [testgen], exporters: [testsink]}\n");
    sy__router_t *r = sy_test_router_start(plain);
    assert_int_equal(plain_metric("switchyard_queue_budget_bytes"), 16 << 20);
    assert_true(plain_metric("switchyard_queue_bytes") >= 0);
    assert_int_equal(sy_test_router_close(r), 0);
    /* Two limiters: soft limits 48 MiB and 80 MiB; a quarter of the smaller. */
    snprintf(yaml, sizeof(yaml),
             "receivers:\n  testgen: {count: 1}\n"
             "processors:\n"
             "  memory_limiter/a: {check_interval: 1s, limit_mib: 64, spike_limit_mib: 16}\n"
             "  memory_limiter/b: {check_interval: 1s, limit_mib: 100, spike_limit_mib: 20}\n"
             "exporters:\n  testsink:\n"
             "service:\n  pipelines:\n"
             "    traces/a: {receivers: [testgen], processors: [memory_limiter/a], exporters: "
             "[testsink]}\n"
             "    traces/b: {receivers: [testgen], processors: [memory_limiter/b], exporters: "
             "[testsink]}\n");
    r = sy_test_router_start(yaml);
    assert_int_equal(plain_metric("switchyard_queue_budget_bytes"), (48 << 20) / 4);
    assert_int_equal(sy_test_router_close(r), 0);
    /* The next router without a limiter is back to the default. */
    r = sy_test_router_start(plain);
    assert_int_equal(plain_metric("switchyard_queue_budget_bytes"), 16 << 20);
    assert_int_equal(sy_test_router_close(r), 0);
}

static void test_config_errors(void **state)
{
    (void)state;
    char yaml[2048];
    yaml_for(yaml, sizeof(yaml), "e1", "limit_mib: 100", "/dev/null");
    assert_true(sy_test_config_refused(yaml, "check_interval must be greater than zero"));
    yaml_for(yaml, sizeof(yaml), "e2", "check_interval: 1s, limit_mib: 100, spike_limit_mib: 100",
             "/dev/null");
    assert_true(sy_test_config_refused(yaml, "spike_limit_mib (100) must be smaller than "
                                             "limit_mib (100)"));
    yaml_for(yaml, sizeof(yaml), "e3", "check_interval: 1s", "/dev/null");
    assert_true(sy_test_config_refused(
        yaml, "either limit_mib or limit_percentage must be greater than zero"));
    yaml_for(yaml, sizeof(yaml), "e4", "check_interval: 1s, limit_percentage: 101", "/dev/null");
    assert_true(sy_test_config_refused(yaml, "limit_percentage (101) must be at most 100"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_above_soft_limit_refuses),
        cmocka_unit_test(test_below_soft_limit_passes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_queue_budget),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
