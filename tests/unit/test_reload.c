/*
 * Reload under load, in-process (and so under ThreadSanitizer in CI: the
 * "stress" label). testgen sends a batch every millisecond; the router is
 * reloaded RELOADS times while it sends, each time with another processor chain and another
 * exporter (testsink/gN, which writes one byte per span sequence number at
 * shutdown). Summed over every generation's sink, every span arrived exactly
 * once; testgen, unchanged, was kept (its counter never restarted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "router_harness.h"

#define RELOADS 12
#define BATCHES 400
#define SPANS   50
#define TOTAL   (BATCHES * SPANS)

static char dir[64];

static char *gen_yaml(int gen)
{
    static const char *const chains[] = {"[batch]", "[nop, batch]", "[]", "[nop]"};
    char *yaml = malloc(4096);
    assert_non_null(yaml);
    snprintf(yaml, 4096,
             "receivers:\n  testgen: {count: %d, spans: %d, interval: 1ms}\n"
             "processors:\n  batch: {timeout: %dms, send_batch_size: %d}\n  nop: {}\n"
             "exporters:\n  testsink/g%d: {report_path: %s/report%d, counts_path: %s/counts%d, "
             "verify: true, max_seq: %d}\n"
             "service:\n  pipelines:\n    traces:\n"
             "      receivers: [testgen]\n      processors: %s\n      exporters: [testsink/g%d]\n",
             BATCHES, SPANS, 5 + gen % 7, 50 + gen * 10, gen, dir, gen, dir, gen, TOTAL,
             chains[gen % 4], gen);
    return yaml;
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

static void test_reload_under_load(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sy_reload_%d", (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    char *yaml = gen_yaml(0);
    sy__router_t *r = sy_test_router_start(yaml);
    free(yaml);
    int threads_before = count_threads();
    for (int gen = 1; gen <= RELOADS; gen++) {
        struct timespec ts = {0, 15 * 1000 * 1000};
        nanosleep(&ts, NULL);
        yaml = gen_yaml(gen);
        sy__router_opts_t opts = {.yaml = yaml};
        sy__diag_t diag;
        sy__diag_init(&diag);
        int rc = sy__router_reload(r, &opts, &diag);
        if (rc != SY_OK) sy__diag_print(&diag, stderr);
        assert_int_equal(rc, SY_OK);
        sy__diag_free(&diag);
        free(yaml);
    }
    /* Workers a reload no longer needs end: the thread count does not grow with
     * the number of reloads (a new generation's exporter worker, the old one's
     * still draining at most). */
    struct timespec settle = {0, 200 * 1000 * 1000};
    nanosleep(&settle, NULL);
    int threads_after = count_threads();
    fprintf(stderr, "threads: %d before the reloads, %d after %d\n", threads_before, threads_after,
            RELOADS);
    assert_true(threads_after <= threads_before + 2);

    /* A configuration that does not check is refused and changes nothing. */
    sy__router_opts_t bad = {.yaml = "receivers:\n  testgen: {count: -x}\n"};
    sy__diag_t diag;
    sy__diag_init(&diag);
    assert_int_equal(sy__router_reload(r, &bad, &diag), SY_EINVAL);
    assert_true(sy__diag_errors(&diag) > 0);
    sy__diag_free(&diag);

    /* testgen was kept: it finishes its count (one instance, never restarted). */
    char labels[64];
    snprintf(labels, sizeof(labels), "exporter=\"testsink/g%d\"", RELOADS);
    sy_test_metric_wait("switchyard_receiver_accepted_spans_total", "receiver=\"testgen\"", TOTAL,
                        60000);
    assert_int_equal(
        sy_test_metric("switchyard_receiver_accepted_spans_total", "receiver=\"testgen\""), TOTAL);
    assert_int_equal(sy_test_router_close(r), 0);

    /* Every sequence number arrived once, summed over the generations' sinks. */
    unsigned char *sum = calloc(TOTAL, 1);
    assert_non_null(sum);
    for (int gen = 0; gen <= RELOADS; gen++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/counts%d", dir, gen);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char *c = malloc(TOTAL);
        assert_non_null(c);
        assert_int_equal(fread(c, 1, TOTAL, f), TOTAL);
        fclose(f);
        for (int i = 0; i < TOTAL; i++)
            sum[i] = (unsigned char)(sum[i] + c[i]);
        free(c);
        unlink(path);
        snprintf(path, sizeof(path), "%s/report%d", dir, gen);
        unlink(path);
    }
    int lost = 0, dup = 0;
    for (int i = 0; i < TOTAL; i++) {
        lost += sum[i] == 0;
        dup += sum[i] > 1;
    }
    free(sum);
    rmdir(dir);
    if (lost || dup) fprintf(stderr, "lost %d, duplicated %d of %d spans\n", lost, dup, TOTAL);
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
