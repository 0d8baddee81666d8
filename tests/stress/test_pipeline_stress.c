/*
 * The whole engine under load, in-process, with the real loader and real plugin
 * .so files: two generators fan in to one pipeline, whose batches fan out to two
 * exporters, one of them slow enough that queues fill and back-pressure reaches
 * the generators. Every span must reach both exporters exactly once. Run under
 * ThreadSanitizer in CI.
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

#include "log.h"
#include "router.h"
#include "router_harness.h"
#include "telemetry.h"

static const char *plugin_dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};

static sy_instance_t *find(sy__router_t *r, const char *id)
{
    for (size_t i = 0; i < r->engine->ninstances; i++)
        if (strcmp(r->engine->instances[i]->id, id) == 0) return r->engine->instances[i];
    return NULL;
}

/* Waits (bounded) until exporter `id` has taken `want` spans. */
static int64_t wait_sent(sy__router_t *r, const char *id, int64_t want, int seconds)
{
    sy_instance_t *x = find(r, id);
    assert_non_null(x);
    int64_t got = 0;
    for (int i = 0; i < seconds * 100; i++) {
        got = sy__metric_value(x->metrics[0].ok);
        if (got >= want) break;
        usleep(10000);
    }
    return got;
}

static void read_report(const char *path, unsigned long long v[6])
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = fscanf(f,
                   "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
                   "undecodable=%llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
    fclose(f);
    assert_int_equal(n, 6);
}

/* One generator's refused emits so far, 0 before the first: testgen's own
 * counter of them (it holds a refused batch and emits it again, so the
 * receiver's refused counter, which counts a batch when it is given up, stays 0). */
static int64_t gen_refusals(const char *gen)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "receiver=\"%s\"", gen);
    int64_t v = sy_test_metric("switchyard_testgen_refused_batches_total", labels);
    return v > 0 ? v : 0;
}

/* The registry of metrics is process-wide and keyed by name and labels, so each
 * test uses IDs of its own: `sfx` is appended to every component ID. */
/* The refusals counted at both generators so far. */
static int64_t refusals(const char *gen_a, const char *gen_b)
{
    return gen_refusals(gen_a) + gen_refusals(gen_b);
}

/* With `gate` (a file path the slow sink waits for), the sink declines everything
 * until the generators have been refused, then the gate opens: the push-back is
 * seen however fast or slow this build makes the generators. */
static void run(const char *yaml, const char *sfx, int64_t spans, const char *report_a,
                const char *report_b, bool expect_refusals, const char *gate)
{
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = plugin_dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    assert_non_null(r);
    assert_int_equal(sy__router_start(r), 0);
    char id[4][32];
    snprintf(id[0], sizeof(id[0]), "testsink/a%s", sfx);
    snprintf(id[1], sizeof(id[1]), "testsink/b%s", sfx);
    snprintf(id[2], sizeof(id[2]), "testgen/a%s", sfx);
    snprintf(id[3], sizeof(id[3]), "testgen/b%s", sfx);
    if (gate) {
        for (int i = 0; i < 6000 && refusals(id[2], id[3]) == 0; i++)
            usleep(10000);
        FILE *g = fopen(gate, "w");
        assert_non_null(g);
        fclose(g);
    }
    assert_int_equal(wait_sent(r, id[0], spans, 120), spans);
    assert_int_equal(wait_sent(r, id[1], spans, 120), spans);
    int64_t refused = refusals(id[2], id[3]);
    fprintf(stderr, "spans=%lld refused-at-receivers=%lld\n", (long long)spans, (long long)refused);
    if (expect_refusals) assert_true(refused > 0);
    assert_int_equal(sy__router_close(r), 0);
    sy__diag_free(&diag);
    if (gate) unlink(gate);

    const char *reports[2] = {report_a, report_b};
    for (int i = 0; i < 2; i++) {
        unsigned long long v[6];
        read_report(reports[i], v);
        assert_int_equal(v[1], (unsigned long long)spans); /* items */
        assert_int_equal(v[2], (unsigned long long)spans); /* distinct */
        assert_int_equal(v[3], 0);                         /* duplicates */
        assert_int_equal(v[4], 0);
        assert_int_equal(v[5], 0);
        unlink(reports[i]);
    }
}

static void test_fan_in_fan_out_fast(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/a1: {count: 1500, spans: 40}\n"
             "  testgen/b1: {count: 1500, spans: 40, first_seq: 60000}\n"
             "processors:\n"
             "  nop:\n"
             "exporters:\n"
             "  testsink/a1: {verify: true, max_seq: 120000, report_path: /tmp/sy_stress_a.%d}\n"
             "  testsink/b1: {verify: true, max_seq: 120000, report_path: /tmp/sy_stress_b.%d}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces:\n"
             "      receivers: [testgen/a1, testgen/b1]\n"
             "      processors: [nop]\n"
             "      exporters: [testsink/a1, testsink/b1]\n",
             (int)getpid(), (int)getpid());
    char a[64], b[64];
    snprintf(a, sizeof(a), "/tmp/sy_stress_a.%d", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/sy_stress_b.%d", (int)getpid());
    run(yaml, "1", 3000 * 40, a, b, false, NULL);
}

static void test_back_pressure_slow_exporter(void **state)
{
    (void)state;
    /* 2 ms per batch at the slow sink: its queue (128) and the pipeline's (128)
     * fill long before 700 batches are through, so the generators are refused and
     * retry; nothing may be lost or duplicated. */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/a2: {count: 350, spans: 5}\n"
             "  testgen/b2: {count: 350, spans: 5, first_seq: 10000}\n"
             "exporters:\n"
             "  testsink/a2: {verify: true, max_seq: 20000, delay: 2ms, report_path: "
             "/tmp/sy_bp_a.%d}\n"
             "  testsink/b2: {verify: true, max_seq: 20000, report_path: /tmp/sy_bp_b.%d}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces:\n"
             "      receivers: [testgen/a2, testgen/b2]\n"
             "      exporters: [testsink/a2, testsink/b2]\n",
             (int)getpid(), (int)getpid());
    char a[64], b[64];
    snprintf(a, sizeof(a), "/tmp/sy_bp_a.%d", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/sy_bp_b.%d", (int)getpid());
    run(yaml, "2", 700 * 5, a, b, true, NULL);
}

static void test_item_bound_pushes_back(void **state)
{
    (void)state;
    /* Large batches (3000 spans): the queues fill by their item bound long before
     * their 128-batch capacity, and the generators are refused all the same. The
     * slow sink holds its gate shut until they have been: a timing-free way to
     * make the queues fill in any build on any machine. */
    char yaml[2048], a[64], b[64], gate[64];
    snprintf(a, sizeof(a), "/tmp/sy_ib_a.%d", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/sy_ib_b.%d", (int)getpid());
    snprintf(gate, sizeof(gate), "/tmp/sy_ib_gate.%d", (int)getpid());
    unlink(gate);
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/a3: {count: 40, spans: 3000}\n"
             "  testgen/b3: {count: 40, spans: 3000, first_seq: 200000}\n"
             "exporters:\n"
             "  testsink/a3: {verify: true, max_seq: 400000, delay: 5ms, gate_path: %s, "
             "report_path: %s}\n"
             "  testsink/b3: {verify: true, max_seq: 400000, report_path: %s}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces:\n"
             "      receivers: [testgen/a3, testgen/b3]\n"
             "      exporters: [testsink/a3, testsink/b3]\n",
             gate, a, b);
    run(yaml, "3", 80 * 3000, a, b, true, gate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fan_in_fan_out_fast),
        cmocka_unit_test(test_back_pressure_slow_exporter),
        cmocka_unit_test(test_item_bound_pushes_back),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
