/*
 * test_workers.c - the worker threads' wake-ups and scheduling (core/loop.c).
 *
 * - A wake-up is never lost: senders on other threads push (a counter) and wake
 *   a component as fast as they can; once they stop, the component has seen the
 *   last push, and it ran fewer times than it was woken (wake-ups coalesce).
 * - A wake closed while senders still send ends cleanly (no write to a closed
 *   descriptor, no callback after the close).
 * - The pipelines' and exporters' workers run under SCHED_BATCH (they do not
 *   preempt a receiver that wakes them), the receivers' under SCHED_OTHER.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "router_harness.h"

typedef struct {
    sy__wake_t wake;
    atomic_uint_fast64_t pushed; /* by the senders, before each wake */
    atomic_uint_fast64_t seen;   /* the largest `pushed` a run of fn read */
    atomic_uint_fast64_t runs;
    atomic_bool stop;
    sy__thread_t *thread;
} wake_case_t;

static void on_wake(void *arg)
{
    wake_case_t *w = arg;
    uint64_t p = atomic_load(&w->pushed);
    if (p > atomic_load(&w->seen)) atomic_store(&w->seen, p);
    atomic_fetch_add(&w->runs, 1);
}

static void open_wake(void *arg)
{
    wake_case_t *w = arg;
    assert_int_equal(sy__wake_open(&w->wake, w->thread, on_wake, w), 0);
}

static void close_wake(void *arg)
{
    wake_case_t *w = arg;
    sy__wake_close(&w->wake);
}

enum { SENDERS = 3, PUSHES = 100000 };

static void *sender(void *arg)
{
    wake_case_t *w = arg;
    for (int i = 0; i < PUSHES && !atomic_load(&w->stop); i++) {
        atomic_fetch_add(&w->pushed, 1);
        sy__wake_send(&w->wake);
    }
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A worker t with the wake-up of w open on it, and SENDERS threads sending. */
static void start_senders(sy__thread_t *t, wake_case_t *w, pthread_t *th)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(sy__thread_start(t, "sy-test-wake"), 0);
    memset(w, 0, sizeof(*w));
    w->thread = t;
    assert_int_equal(sy__thread_call(t, open_wake, w, 0), 0);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sender, w), 0);
}

static void test_wake_not_lost(void **state)
{
    (void)state;
    sy__thread_t t;
    wake_case_t w;
    pthread_t th[SENDERS];
    start_senders(&t, &w, th);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(th[i], NULL);
    uint64_t total = atomic_load(&w.pushed);
    assert_int_equal(total, (uint64_t)SENDERS * PUSHES);
    /* The last wake-up came after the last push: fn runs after it and reads it. */
    uint64_t deadline = now_ms() + 10000;
    while (atomic_load(&w.seen) != total && now_ms() < deadline)
        usleep(1000);
    fprintf(stderr, "pushes=%llu runs=%llu\n", (unsigned long long)total,
            (unsigned long long)atomic_load(&w.runs));
    assert_int_equal(atomic_load(&w.seen), total);
    assert_true(atomic_load(&w.runs) >= 1);
    assert_true(atomic_load(&w.runs) <= total);

    assert_int_equal(sy__thread_call(&t, close_wake, &w, 0), 0);
    /* Closed: a send is ignored, fn does not run again. */
    uint64_t runs = atomic_load(&w.runs);
    sy__wake_send(&w.wake);
    usleep(20000);
    assert_int_equal(atomic_load(&w.runs), runs);
    assert_int_equal(sy__thread_stop(&t, now_ms() + 10000), 0);
}

/* Closing while three threads still send: the close waits for the senders in
 * flight, and the senders that come later see it closed. */
static void test_wake_close_under_senders(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        sy__thread_t t;
        wake_case_t w;
        pthread_t th[SENDERS];
        start_senders(&t, &w, th);
        usleep(1000 * (unsigned)(round % 3));
        assert_int_equal(sy__thread_call(&t, close_wake, &w, 0), 0);
        uint64_t runs = atomic_load(&w.runs);
        atomic_store(&w.stop, true);
        for (int i = 0; i < SENDERS; i++)
            pthread_join(th[i], NULL);
        usleep(2000);
        assert_int_equal(atomic_load(&w.runs), runs);
        assert_int_equal(sy__thread_stop(&t, now_ms() + 10000), 0);
    }
}

/* The policy of each of this process's threads whose name starts with `prefix`;
 * -1 when none, -2 when two differ. */
static int policy_of(const char *prefix, int *count)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int policy = -1;
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof(comm), f)) comm[0] = 0;
        fclose(f);
        if (strncmp(comm, prefix, strlen(prefix)) != 0) continue;
        int p = sched_getscheduler((pid_t)atoi(e->d_name));
        (*count)++;
        policy = policy == -1 || policy == p ? p : -2;
    }
    closedir(d);
    return policy;
}

static void test_worker_policies(void **state)
{
    (void)state;
    sy__router_t *r = sy_test_router_start("receivers:\n  testgen: {count: 5, spans: 2}\n"
                                           "exporters:\n  testsink: {}\n"
                                           "service:\n  pipelines:\n    traces:\n"
                                           "      receivers: [testgen]\n"
                                           "      exporters: [testsink]\n");
    assert_non_null(r);
    int n;
    assert_int_equal(policy_of("sy-pipe-", &n), SCHED_BATCH);
    assert_true(n >= 1);
    assert_int_equal(policy_of("sy-exp-", &n), SCHED_BATCH);
    assert_true(n >= 1);
    assert_int_equal(policy_of("sy-recv-", &n), SCHED_OTHER);
    assert_true(n >= 1);
    assert_int_equal(sy_test_router_close(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_not_lost),
        cmocka_unit_test(test_wake_close_under_senders),
        cmocka_unit_test(test_worker_policies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
