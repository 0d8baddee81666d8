/*
 * A thousand pipelines: the router starts them, runs them and closes cleanly,
 * every span arrives, and the process's threads stay bounded (a worker pool, not
 * a thread per pipeline, receiver or exporter), which is what lets a
 * configuration grow without the router growing with it.
 *
 * Two shapes: a thousand independent testgen/N -> testsink/N pipelines, and one
 * receiver fanned out to a thousand pipelines that share ten sinks. Threads are
 * counted from /proc/self/task while data flows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router.h"
#include "telemetry.h"

#define NPIPES      1000
#define NSHARED     10 /* sinks of the fan-out shape */
#define MAX_THREADS 64
#define WAIT_S      60

static const char *const plugin_dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The threads of this process right now. */
static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The value of `name{labels}` in the Prometheus text of sy__metrics_render(), or
 * -1 when there is no such sample. */
static int64_t sample(const char *text, const char *name, const char *labels)
{
    char needle[512];
    snprintf(needle, sizeof(needle), "\n%s{%s} ", name, labels);
    const char *at = strstr(text, needle);
    return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

/* Sum of accepted spans over the receivers named prefix0 .. prefix<n-1> (or the
 * one receiver `prefix` when n is 0). */
static int64_t accepted(const char *prefix, int n)
{
    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    int64_t sum = 0;
    char labels[128];
    for (int i = 0; i < (n ? n : 1); i++) {
        if (n)
            snprintf(labels, sizeof(labels), "receiver=\"%s%d\"", prefix, i);
        else
            snprintf(labels, sizeof(labels), "receiver=\"%s\"", prefix);
        int64_t v = sample(text, "switchyard_receiver_accepted_spans_total", labels);
        if (v > 0) sum += v;
    }
    free(text);
    return sum;
}

/* Runs `yaml` until the receivers have had `want` spans accepted (or WAIT_S
 * passed), sampling the thread count all the while; returns the most threads
 * seen. The router must start and close with 0. */
static int run(const char *yaml, const char *prefix, int nrecv, int64_t want)
{
    int before = count_threads();
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = plugin_dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    assert_non_null(r);
    sy__diag_free(&diag);
    double t0 = now_s();
    assert_int_equal(sy__router_start(r), 0);
    double started = now_s();
    int most = count_threads();
    int64_t got = 0;
    while ((got = accepted(prefix, nrecv)) < want && now_s() - t0 < WAIT_S) {
        int n = count_threads();
        if (n > most) most = n;
        usleep(20000);
    }
    int n = count_threads();
    if (n > most) most = n;
    double flowed = now_s();
    int rc = sy__router_close(r);
    fprintf(stderr,
            "threads: %d before, at most %d while running; start %.2f s, data %.2f s, close "
            "%.2f s; accepted %" PRId64 " of %" PRId64 "\n",
            before, most, started - t0, flowed - started, now_s() - flowed, got, want);
    assert_int_equal(got, want);
    assert_int_equal(rc, 0);
    return most;
}

static char *read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *line = fgets(buf, (int)cap, f);
    fclose(f);
    return line;
}

/* testgen/N -> testsink/N, a thousand times over. */
static void test_thousand_own_pipelines(void **state)
{
    (void)state;
    char dir[] = "/tmp/sy_many.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *yaml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    assert_non_null(f);
    fprintf(f, "receivers:\n");
    for (int i = 0; i < NPIPES; i++)
        fprintf(f, "  testgen/own%d: {count: 2, spans: 5, first_seq: %d}\n", i, i * 10);
    fprintf(f, "exporters:\n");
    for (int i = 0; i < NPIPES; i++)
        fprintf(f, "  testsink/own%d: {report_path: %s/%d, verify: true, max_seq: %d}\n", i, dir, i,
                NPIPES * 10);
    fprintf(f, "service:\n  telemetry: {logs: {level: error}}\n  pipelines:\n");
    for (int i = 0; i < NPIPES; i++)
        fprintf(f, "    traces/own%d: {receivers: [testgen/own%d], exporters: [testsink/own%d]}\n",
                i, i, i);
    fclose(f);

    int most = run(yaml, "testgen/own", NPIPES, NPIPES * 10);
    free(yaml);
    int bad = 0;
    for (int i = 0; i < NPIPES; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "%s/%d", dir, i);
        if (!read_line(path, line, sizeof(line)) ||
            !strstr(line, "batches=2 items=10 distinct=10 duplicates=0 out_of_range=0 ")) {
            if (!bad++) fprintf(stderr, "testsink/own%d: %s\n", i, line);
        }
        unlink(path);
    }
    rmdir(dir);
    assert_int_equal(bad, 0);
    assert_in_range(most, 1, MAX_THREADS);
}

/* One receiver feeding a thousand pipelines (each with a nop processor) that
 * share ten sinks: every span reaches each sink once per pipeline. */
static void test_one_receiver_thousand_pipelines(void **state)
{
    (void)state;
    char dir[] = "/tmp/sy_fan.XXXXXX";
    assert_non_null(mkdtemp(dir));
    enum { COUNT = 20, SPANS = 5, ITEMS = COUNT * SPANS };
    char *yaml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    assert_non_null(f);
    fprintf(f,
            "receivers:\n  testgen/fan: {count: %d, spans: %d}\nprocessors:\n  nop/fan:\n"
            "exporters:\n",
            COUNT, SPANS);
    for (int i = 0; i < NSHARED; i++)
        fprintf(f,
                "  testsink/fan%d: {report_path: %s/%d, counts_path: %s/%d.counts, verify: true, "
                "max_seq: %d}\n",
                i, dir, i, dir, i, ITEMS);
    fprintf(f, "service:\n  telemetry: {logs: {level: error}}\n  pipelines:\n");
    for (int i = 0; i < NPIPES; i++)
        fprintf(f,
                "    traces/fan%d: {receivers: [testgen/fan], processors: [nop/fan], exporters: "
                "[testsink/fan%d]}\n",
                i, i % NSHARED);
    fclose(f);

    int most = run(yaml, "testgen/fan", 0, ITEMS);
    free(yaml);
    int bad = 0;
    for (int i = 0; i < NSHARED; i++) {
        char path[64], line[256], want[128];
        snprintf(path, sizeof(path), "%s/%d", dir, i);
        snprintf(want, sizeof(want), "items=%d distinct=%d ", ITEMS * NPIPES / NSHARED, ITEMS);
        if (!read_line(path, line, sizeof(line)) || !strstr(line, want)) {
            fprintf(stderr, "testsink/fan%d: want %s, got %s\n", i, want, line);
            bad++;
        }
        unlink(path);
        snprintf(path, sizeof(path), "%s/%d.counts", dir, i);
        uint8_t counts[ITEMS];
        FILE *c = fopen(path, "rb");
        if (!c || fread(counts, 1, ITEMS, c) != ITEMS) {
            fprintf(stderr, "testsink/fan%d: no counts\n", i);
            bad++;
        } else {
            for (int s = 0; s < ITEMS; s++)
                if (counts[s] != NPIPES / NSHARED) {
                    fprintf(stderr, "testsink/fan%d: span %d arrived %d times, expected %d\n", i, s,
                            counts[s], NPIPES / NSHARED);
                    bad++;
                    break;
                }
        }
        if (c) fclose(c);
        unlink(path);
    }
    rmdir(dir);
    assert_int_equal(bad, 0);
    assert_in_range(most, 1, MAX_THREADS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_own_pipelines),
        cmocka_unit_test(test_one_receiver_thousand_pipelines),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
