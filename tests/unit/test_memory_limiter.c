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

/* A hard limit of 1 MiB is below any process's RSS: every emit is refused, nothing
 * reaches the sink, and the refusals are counted at the receiver. */
static void test_above_soft_limit_refuses(void **state)
{
    (void)state;
    char yaml[2048], report[64];
    snprintf(report, sizeof(report), "/tmp/sy_ml_low.%d", (int)getpid());
    yaml_for(yaml, sizeof(yaml), "low", "check_interval: 10ms, limit_mib: 1", report);
    sy__router_t *r = sy_test_router_start(yaml);
    int64_t refused = sy_test_metric_wait("switchyard_receiver_refused_spans_total",
                                          "receiver=\"testgen/low\"", 50, 3000);
    assert_true(refused >= 50);
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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
