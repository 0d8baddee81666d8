/*
 * Microbenchmark of the SPSC and MPMC rings: throughput across threads with
 * bursts of 1 and 32, and the cost of a same-thread push+pop pair (the floor:
 * no cache line ever changes hands).
 *
 * Usage: queue_bench [items]   (default 5000000 items per measurement)
 *
 * Each figure is the best of REPS runs, since on a shared machine the noise is
 * all on the slow side. Threads are pinned round-robin to the online CPUs; with
 * more threads than CPUs (2P2C on two cores) they share, and an empty or full
 * ring makes a thread yield, so those figures include scheduler time.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

#define REPS      3
#define CAPACITY  1024
#define MAX_BURST 32
#define MAX_SIDE  4

typedef struct bench_s {
    sy__spsc_t spsc; /* First: the struct is allocated cache-line aligned. */
    sy__mpmc_t mpmc;
    int is_mpmc;
    unsigned burst;
    uint64_t per_producer;
    pthread_barrier_t start;
} bench_t;

typedef struct worker_s {
    bench_t *b;
    unsigned cpu;
    uint64_t popped;
} worker_t;

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pin(unsigned cpu)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    if (ncpu <= 0) return;
    CPU_ZERO(&set);
    CPU_SET(cpu % (unsigned)ncpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* Best effort. */
}

/*
 * Spins on an empty or full ring for a while, then lets a thread that shares
 * our CPU run. Yielding at once would turn every momentary empty ring into a
 * system call and measure the scheduler rather than the queue.
 */
static void backoff(unsigned *misses)
{
    if (++*misses < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
    *misses = 0;
    sched_yield();
}

static unsigned push(bench_t *b, void *const *items, unsigned n)
{
    return b->is_mpmc ? sy__mpmc_push_burst(&b->mpmc, items, n)
                      : sy__spsc_push_burst(&b->spsc, items, n);
}

static unsigned pop(bench_t *b, void **items, unsigned n)
{
    return b->is_mpmc ? sy__mpmc_pop_burst(&b->mpmc, items, n)
                      : sy__spsc_pop_burst(&b->spsc, items, n);
}

/* Pushes per_producer non-NULL items; NULL is the consumers' stop signal. */
static void *producer_main(void *arg)
{
    worker_t *w = arg;
    bench_t *b = w->b;
    void *buf[MAX_BURST];
    unsigned misses = 0;

    pin(w->cpu);
    for (unsigned i = 0; i < MAX_BURST; i++)
        buf[i] = (void *)(uintptr_t)(i + 1);
    pthread_barrier_wait(&b->start);
    for (uint64_t sent = 0; sent < b->per_producer;) {
        unsigned n = b->burst;

        if (n > b->per_producer - sent) n = (unsigned)(b->per_producer - sent);
        unsigned moved = push(b, buf, n);
        sent += moved;
        if (moved == 0) backoff(&misses);
    }
    return NULL;
}

/* Pops until it gets one NULL item; each consumer gets exactly one. */
static void *consumer_main(void *arg)
{
    worker_t *w = arg;
    bench_t *b = w->b;
    void *buf[MAX_BURST];
    unsigned misses = 0;
    uint64_t popped = 0;

    pin(w->cpu);
    pthread_barrier_wait(&b->start);
    for (;;) {
        unsigned moved = pop(b, buf, b->burst);

        if (moved == 0) {
            backoff(&misses);
            continue;
        }
        for (unsigned i = 0; i < moved; i++) {
            if (buf[i] == NULL) {
                /* A stop item is last in the ring only when all producers are
                 * done, but another consumer's stop item may follow in this
                 * burst: push the rest of the burst back for it. */
                unsigned rest = moved - i - 1;
                while (rest > 0) {
                    unsigned n = push(b, &buf[moved - rest], rest);
                    rest -= n;
                }
                w->popped = popped;
                return NULL;
            }
            popped++;
        }
    }
}

/* One timed run; returns items per second. */
static double run_threads(int is_mpmc, unsigned producers, unsigned consumers, unsigned burst,
                          uint64_t items)
{
    bench_t *b = aligned_alloc(SY_QUEUE_CACHE_LINE, (sizeof(bench_t) + SY_QUEUE_CACHE_LINE - 1) &
                                                        ~(size_t)(SY_QUEUE_CACHE_LINE - 1));
    pthread_t pt[MAX_SIDE], ct[MAX_SIDE];
    worker_t pw[MAX_SIDE], cw[MAX_SIDE];

    if (b == NULL ||
        (is_mpmc ? sy__mpmc_init(&b->mpmc, CAPACITY) : sy__spsc_init(&b->spsc, CAPACITY)) != 0) {
        fprintf(stderr, "queue_bench: out of memory\n");
        exit(1);
    }
    b->is_mpmc = is_mpmc;
    b->burst = burst;
    b->per_producer = items / producers;
    pthread_barrier_init(&b->start, NULL, producers + consumers + 1);
    for (unsigned i = 0; i < producers; i++) {
        pw[i] = (worker_t){.b = b, .cpu = 2 * i};
        pthread_create(&pt[i], NULL, producer_main, &pw[i]);
    }
    for (unsigned i = 0; i < consumers; i++) {
        cw[i] = (worker_t){.b = b, .cpu = 2 * i + 1};
        pthread_create(&ct[i], NULL, consumer_main, &cw[i]);
    }
    pthread_barrier_wait(&b->start);
    double t0 = now_seconds();
    for (unsigned i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    /* The stop items go in after every producer is done, so they come out
     * after every real item. With SPSC this thread acts as the producer now,
     * which the join above made safe. */
    for (unsigned i = 0; i < consumers; i++) {
        void *stop = NULL;
        while (push(b, &stop, 1) == 0)
            sched_yield();
    }
    uint64_t popped = 0;
    for (unsigned i = 0; i < consumers; i++) {
        pthread_join(ct[i], NULL);
        popped += cw[i].popped;
    }
    double elapsed = now_seconds() - t0;

    if (popped != b->per_producer * producers) {
        fprintf(stderr, "queue_bench: popped %llu of %llu\n", (unsigned long long)popped,
                (unsigned long long)(b->per_producer * producers));
        exit(1);
    }
    pthread_barrier_destroy(&b->start);
    if (is_mpmc)
        sy__mpmc_destroy(&b->mpmc);
    else
        sy__spsc_destroy(&b->spsc);
    free(b);
    return (double)popped / elapsed;
}

/* Same thread pushes a burst and pops it back; returns ns per item. */
static double run_same_thread(int is_mpmc, unsigned burst, uint64_t items)
{
    bench_t *b = aligned_alloc(SY_QUEUE_CACHE_LINE, (sizeof(bench_t) + SY_QUEUE_CACHE_LINE - 1) &
                                                        ~(size_t)(SY_QUEUE_CACHE_LINE - 1));
    void *in[MAX_BURST], *out[MAX_BURST];
    uintptr_t sink = 0;

    if (b == NULL ||
        (is_mpmc ? sy__mpmc_init(&b->mpmc, CAPACITY) : sy__spsc_init(&b->spsc, CAPACITY)) != 0) {
        fprintf(stderr, "queue_bench: out of memory\n");
        exit(1);
    }
    b->is_mpmc = is_mpmc;
    for (unsigned i = 0; i < MAX_BURST; i++)
        in[i] = (void *)(uintptr_t)(i + 1);
    uint64_t rounds = items / burst;
    double t0 = now_seconds();
    if (is_mpmc && burst == 1) {
        /* The header's single-item helpers, as most callers use them. */
        for (uint64_t r = 0; r < rounds; r++) {
            void *item;
            sy__mpmc_push(&b->mpmc, in[0]);
            sy__mpmc_pop(&b->mpmc, &item);
            sink += (uintptr_t)item;
        }
    } else {
        for (uint64_t r = 0; r < rounds; r++) {
            push(b, in, burst);
            pop(b, out, burst);
            sink += (uintptr_t)out[0];
        }
    }
    double elapsed = now_seconds() - t0;

    if (sink != rounds) {
        fprintf(stderr, "queue_bench: same-thread check failed\n");
        exit(1);
    }
    if (is_mpmc)
        sy__mpmc_destroy(&b->mpmc);
    else
        sy__spsc_destroy(&b->spsc);
    free(b);
    return elapsed * 1e9 / (double)(rounds * burst);
}

int main(int argc, char **argv)
{
    uint64_t items = 5000000;
    static const struct {
        const char *name;
        int is_mpmc;
        unsigned producers, consumers;
    } cases[] = {{"spsc", 0, 1, 1}, {"mpmc", 1, 1, 1}, {"mpmc", 1, 2, 2}};
    static const unsigned bursts[] = {1, 32};

    if (argc > 2 || (argc == 2 && (items = strtoull(argv[1], NULL, 10)) < 1000)) {
        fprintf(stderr, "usage: %s [items >= 1000]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("queue_bench: %llu items, capacity %d, best of %d, %ld CPUs\n\n",
           (unsigned long long)items, CAPACITY, REPS, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-6s %-6s %6s %12s\n", "queue", "thr", "burst", "Mitems/s");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t k = 0; k < sizeof(bursts) / sizeof(bursts[0]); k++) {
            double best = 0;
            for (int r = 0; r < REPS; r++) {
                double v = run_threads(cases[c].is_mpmc, cases[c].producers, cases[c].consumers,
                                       bursts[k], items);
                if (v > best) best = v;
            }
            char thr[16];
            snprintf(thr, sizeof(thr), "%uP%uC", cases[c].producers, cases[c].consumers);
            printf("%-6s %-6s %6u %12.1f\n", cases[c].name, thr, bursts[k], best / 1e6);
        }
    }

    printf("\n%-6s %-6s %6s %12s\n", "queue", "thr", "burst", "ns/push+pop");
    for (int is_mpmc = 0; is_mpmc <= 1; is_mpmc++) {
        for (size_t k = 0; k < sizeof(bursts) / sizeof(bursts[0]); k++) {
            double best = 1e300;
            for (int r = 0; r < REPS; r++) {
                double v = run_same_thread(is_mpmc, bursts[k], items);
                if (v < best) best = v;
            }
            printf("%-6s %-6s %6u %12.2f\n", is_mpmc ? "mpmc" : "spsc", "same", bursts[k], best);
        }
    }
    return 0;
}
