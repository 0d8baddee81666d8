/*
 * Stress test of the SPSC and MPMC rings under real concurrency, meant to run
 * under ThreadSanitizer too.
 *
 * Every producer pushes a stamped sequence (its id and a sequence number packed
 * into the pointer value) in random burst sizes, and consumers pop in random
 * burst sizes and check each stamp:
 *
 * - exactly once: a shared "seen" byte per stamp, set with an atomic exchange,
 *   catches duplicates at once and losses after the join;
 * - order: for a given (producer, consumer) pair the sequence numbers must
 *   increase, which the Vyukov ring guarantees because both sides claim
 *   positions in increasing order; with a single consumer they must even be
 *   contiguous (0, 1, 2, ...), which is FIFO per producer.
 *
 * Item counts scale with SY_STRESS_SCALE (a positive factor, default 1) and
 * drop by 4x under ThreadSanitizer. Exits 0 and prints one summary line when
 * all runs pass; prints the first errors and exits 1 otherwise, or 2 when the
 * watchdog fires because the run stopped making progress.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif
#ifndef STRESS_TSAN
#define STRESS_TSAN 0
#endif

/* A stamp is (producer << SEQ_BITS) | (seq + 1): 24 bits of sequence keep it in
 * a 32-bit pointer too, and the +1 makes a never-written slot (NULL) invalid. */
#define SEQ_BITS     24
#define MAX_PER_PROD ((1u << SEQ_BITS) - 2)
#define MAX_THREADS  8
#define MAX_BURST    64
/* A run that pops nothing for this long has lost items or livelocked. */
#define STALL_SECS  20
#define MAX_REPORTS 10

typedef struct run_s {
    /* The queues come first: the run is allocated cache-line aligned. */
    sy__spsc_t spsc;
    sy__mpmc_t mpmc;
    const char *name;
    bool is_mpmc;
    bool weighted; /* MPMC pushes with sy__mpmc_push_weighted: see item_weight() */
    unsigned producers;
    unsigned consumers;
    size_t capacity;
    uint32_t per_producer;
    uint64_t total;
    pthread_barrier_t start;
    _Atomic uint64_t consumed;   /* Items popped so far, by all consumers. */
    atomic_uchar *seen;          /* One flag per stamp, producer-major. */
    atomic_bool failed;          /* Set on the first error; all threads stop. */
    _Atomic unsigned reports;    /* Error lines printed, capped. */
    _Atomic uint64_t empty_pops; /* Bursts that moved nothing, for the log. */
    _Atomic uint64_t full_pushes;
} run_t;

/* Read by the watchdog thread: the name of the run in progress and the number
 * of items popped by all runs so far. */
static const char *_Atomic g_run_name = "start";
static _Atomic uint64_t g_popped;

typedef struct worker_s {
    run_t *run;
    unsigned id;
    uint64_t rng;
} worker_t;

/* xorshift64: cheap and good enough to vary burst sizes. */
static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *stamp(unsigned producer, uint32_t seq)
{
    return (void *)(((uintptr_t)producer << SEQ_BITS) | ((uintptr_t)seq + 1));
}

/* Marks the run failed, which stops every thread, and prints the first few
 * errors (one fprintf each, so lines from different threads do not mix). */
__attribute__((format(printf, 2, 3))) static void report(run_t *run, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    atomic_store_explicit(&run->failed, true, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&run->reports, 1, memory_order_relaxed) >= MAX_REPORTS) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "queue stress %s: %s\n", run->name, line);
}

/* The weight a weighted run gives an item: from its stamp, so that any mix-up of
 * weights between cells would leave a total other than zero at the end. */
static size_t item_weight(const void *item)
{
    return ((uintptr_t)item & 0x3ff) + 1;
}

static unsigned push(run_t *run, void *const *items, unsigned n)
{
    if (run->weighted) {
        unsigned done = 0;
        while (done < n &&
               sy__mpmc_push_weighted(&run->mpmc, items[done], item_weight(items[done])))
            done++;
        return done;
    }
    return run->is_mpmc ? sy__mpmc_push_burst(&run->mpmc, items, n)
                        : sy__spsc_push_burst(&run->spsc, items, n);
}

static unsigned pop(run_t *run, void **items, unsigned n)
{
    return run->is_mpmc ? sy__mpmc_pop_burst(&run->mpmc, items, n)
                        : sy__spsc_pop_burst(&run->spsc, items, n);
}

/* Gives the CPU away when a burst moved nothing: the test runs more threads
 * than the two cores CI has, and a spinning thread would starve its peer. */
static void backoff(unsigned *misses)
{
    if (++*misses >= 4) {
        *misses = 0;
        sched_yield();
    }
}

static void *producer_main(void *arg)
{
    worker_t *w = arg;
    run_t *run = w->run;
    void *buf[MAX_BURST];
    uint32_t seq = 0;
    unsigned misses = 0;
    uint64_t full = 0;

    pthread_barrier_wait(&run->start);
    while (seq < run->per_producer && !atomic_load_explicit(&run->failed, memory_order_relaxed)) {
        unsigned n = 1 + (unsigned)(xorshift(&w->rng) % MAX_BURST);

        if (n > run->per_producer - seq) n = run->per_producer - seq;
        for (unsigned i = 0; i < n; i++)
            buf[i] = stamp(w->id, seq + i);
        unsigned moved = push(run, buf, n);
        if (moved > n) {
            report(run, "producer %u: push of %u returned %u", w->id, n, moved);
            break;
        }
        seq += moved;
        if (moved == 0) {
            full++;
            backoff(&misses);
        }
    }
    atomic_fetch_add_explicit(&run->full_pushes, full, memory_order_relaxed);
    return NULL;
}

static void *consumer_main(void *arg)
{
    worker_t *w = arg;
    run_t *run = w->run;
    void *buf[MAX_BURST];
    int64_t last[MAX_THREADS];
    bool contiguous = run->consumers == 1;
    unsigned misses = 0;
    uint64_t empty = 0;

    for (unsigned p = 0; p < MAX_THREADS; p++)
        last[p] = -1;
    pthread_barrier_wait(&run->start);
    while (atomic_load_explicit(&run->consumed, memory_order_relaxed) < run->total &&
           !atomic_load_explicit(&run->failed, memory_order_relaxed)) {
        unsigned n = 1 + (unsigned)(xorshift(&w->rng) % MAX_BURST);
        unsigned moved = pop(run, buf, n);

        if (moved > n) {
            report(run, "consumer %u: pop of %u returned %u", w->id, n, moved);
            break;
        }
        if (moved == 0) {
            empty++;
            backoff(&misses);
            continue;
        }
        for (unsigned i = 0; i < moved; i++) {
            uintptr_t v = (uintptr_t)buf[i];
            unsigned p = (unsigned)(v >> SEQ_BITS);
            uintptr_t low = v & (((uintptr_t)1 << SEQ_BITS) - 1);

            if (p >= run->producers || low == 0 || low > run->per_producer) {
                report(run, "consumer %u: bad stamp %#llx", w->id, (unsigned long long)v);
                continue;
            }
            int64_t seq = (int64_t)low - 1;
            if (contiguous ? seq != last[p] + 1 : seq <= last[p])
                report(run, "consumer %u: producer %u out of order, seq %lld", w->id, p,
                       (long long)seq);
            last[p] = seq;
            if (atomic_exchange_explicit(&run->seen[(size_t)p * run->per_producer + low - 1], 1,
                                         memory_order_relaxed))
                report(run, "consumer %u: duplicate from producer %u, seq %lld", w->id, p,
                       (long long)seq);
        }
        atomic_fetch_add_explicit(&run->consumed, moved, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_popped, moved, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&run->empty_pops, empty, memory_order_relaxed);
    return NULL;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one configuration; returns true if it passed. */
static bool run_one(const char *name, bool is_mpmc, bool weighted, unsigned producers,
                    unsigned consumers, size_t capacity, uint64_t total, uint64_t seed)
{
    run_t *run = aligned_alloc(SY_QUEUE_CACHE_LINE, (sizeof(run_t) + SY_QUEUE_CACHE_LINE - 1) &
                                                        ~(size_t)(SY_QUEUE_CACHE_LINE - 1));
    pthread_t threads[2 * MAX_THREADS];
    worker_t workers[2 * MAX_THREADS];
    unsigned nthreads = producers + consumers;
    bool ok = false;

    if (run == NULL) {
        fprintf(stderr, "queue stress %s: out of memory\n", name);
        return false;
    }
    memset(run, 0, sizeof(*run));
    run->name = name;
    run->is_mpmc = is_mpmc;
    run->weighted = is_mpmc && weighted;
    run->producers = producers;
    run->consumers = consumers;
    run->capacity = capacity;
    run->per_producer = (uint32_t)(total / producers);
    if (run->per_producer == 0) run->per_producer = 1;
    if (run->per_producer > MAX_PER_PROD) run->per_producer = MAX_PER_PROD;
    run->total = (uint64_t)run->per_producer * producers;
    run->seen = calloc(run->total, 1);
    if (run->seen == NULL ||
        (is_mpmc ? sy__mpmc_init(&run->mpmc, capacity) : sy__spsc_init(&run->spsc, capacity))) {
        fprintf(stderr, "queue stress %s: out of memory\n", name);
        free(run->seen);
        free(run);
        return false;
    }
    pthread_barrier_init(&run->start, NULL, nthreads + 1);

    for (unsigned i = 0; i < nthreads; i++) {
        bool is_producer = i < producers;

        workers[i].run = run;
        workers[i].id = is_producer ? i : i - producers;
        workers[i].rng = seed * 0x9E3779B97F4A7C15ull + i + 1;
        if (pthread_create(&threads[i], NULL, is_producer ? producer_main : consumer_main,
                           &workers[i]) != 0) {
            fprintf(stderr, "queue stress %s: pthread_create failed\n", name);
            exit(1);
        }
    }
    double t0 = now_seconds();
    pthread_barrier_wait(&run->start);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    double elapsed = now_seconds() - t0;

    /* Exactly once: with no duplicates reported, every stamp must be seen. */
    uint64_t missing = 0;
    for (uint64_t i = 0; i < run->total; i++)
        missing += atomic_load_explicit(&run->seen[i], memory_order_relaxed) == 0;
    size_t left = is_mpmc ? sy__mpmc_size(&run->mpmc) : sy__spsc_size(&run->spsc);
    uint64_t consumed = atomic_load_explicit(&run->consumed, memory_order_relaxed);
    ok = !atomic_load(&run->failed) && missing == 0 && left == 0 && consumed == run->total;
    /* Weighted: every weight added was taken off again, in the ring and process-wide
     * (no other ring of this process holds anything now). */
    int64_t weight_left = is_mpmc ? sy__mpmc_weight(&run->mpmc) : 0;
    int64_t weight_all = sy__queue_weight_total();
    if (weight_left != 0 || weight_all != 0) {
        fprintf(stderr, "queue stress %s: weight left %lld in the ring, %lld in all\n", name,
                (long long)weight_left, (long long)weight_all);
        ok = false;
    }

    printf("  %-22s %uP%uC cap %-5zu %9llu items %6.2fs %5.1f M/s  full %llu empty %llu  %s\n",
           name, producers, consumers,
           is_mpmc ? sy__mpmc_capacity(&run->mpmc) : sy__spsc_capacity(&run->spsc),
           (unsigned long long)run->total, elapsed, (double)run->total / elapsed / 1e6,
           (unsigned long long)atomic_load(&run->full_pushes),
           (unsigned long long)atomic_load(&run->empty_pops), ok ? "ok" : "FAILED");
    if (!ok)
        fprintf(stderr, "queue stress %s: %llu missing, %zu left, %llu consumed of %llu\n", name,
                (unsigned long long)missing, left, (unsigned long long)consumed,
                (unsigned long long)run->total);

    pthread_barrier_destroy(&run->start);
    if (is_mpmc)
        sy__mpmc_destroy(&run->mpmc);
    else
        sy__spsc_destroy(&run->spsc);
    free(run->seen);
    free(run);
    return ok;
}

/*
 * Fails the test when no item has been popped for STALL_SECS: a lost item
 * leaves the consumers waiting forever, and a hung test is slower to diagnose
 * than one that names the run it stopped in. Relaxed loads suffice: the
 * counter only has to move, and the name is a string literal.
 */
static void *watchdog_main(void *arg)
{
    uint64_t last = UINT64_MAX;
    unsigned still = 0;

    (void)arg;
    for (;;) {
        sleep(1);
        uint64_t now = atomic_load_explicit(&g_popped, memory_order_relaxed);
        still = now == last ? still + 1 : 0;
        last = now;
        if (still >= STALL_SECS) {
            fprintf(stderr,
                    "queue stress: FAILED, run %s made no progress for %d s "
                    "(lost item or livelock)\n",
                    atomic_load_explicit(&g_run_name, memory_order_relaxed), STALL_SECS);
            _exit(2);
        }
    }
    return NULL;
}

int main(void)
{
    double scale = STRESS_TSAN ? 1.0 / 4 : 1.0;
    const char *env = getenv("SY_STRESS_SCALE");

    if (env != NULL && *env != '\0') {
        char *end = NULL;
        double s = strtod(env, &end);
        if (end == env || *end != '\0' || !(s > 0)) {
            fprintf(stderr, "queue stress: SY_STRESS_SCALE must be a positive number\n");
            return 1;
        }
        scale *= s;
    }
    pthread_t dog;
    if (pthread_create(&dog, NULL, watchdog_main, NULL) != 0 || pthread_detach(dog) != 0) {
        fprintf(stderr, "queue stress: cannot start the watchdog\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Small capacities make the rings run full and empty constantly, so the
     * wrap-around and the edges get most of the traffic. */
    static const struct {
        const char *name;
        bool is_mpmc, weighted;
        unsigned producers, consumers;
        size_t capacity;
        double millions;
    } runs[] = {
        {"spsc", false, false, 1, 1, 1024, 16},   {"spsc-tiny", false, false, 1, 1, 16, 12},
        {"mpmc-1x1", true, false, 1, 1, 256, 12}, {"mpmc-2x2", true, false, 2, 2, 64, 16},
        {"mpmc-4x4", true, false, 4, 4, 256, 20}, {"mpmc-4x4-tiny", true, false, 4, 4, 8, 4},
        {"mpmc-4x1", true, false, 4, 1, 64, 10},  {"mpmc-4x4-weighted", true, true, 4, 4, 16, 4},
    };
    unsigned nruns = sizeof(runs) / sizeof(runs[0]), passed = 0;
    uint64_t items = 0;
    double t0 = now_seconds();

    for (unsigned i = 0; i < nruns; i++) {
        atomic_store_explicit(&g_run_name, runs[i].name, memory_order_relaxed);
        uint64_t total = (uint64_t)(runs[i].millions * 1e6 * scale);
        if (total < 1000) total = 1000;
        passed += run_one(runs[i].name, runs[i].is_mpmc, runs[i].weighted, runs[i].producers,
                          runs[i].consumers, runs[i].capacity, total, i + 1);
        items += total;
    }
    printf("queue stress: %s, %u/%u runs passed, %.1fM items in %.1fs (scale %g%s)\n",
           passed == nruns ? "OK" : "FAILED", passed, nruns, (double)items / 1e6,
           now_seconds() - t0, scale, STRESS_TSAN ? ", tsan" : "");
    return passed == nruns ? 0 : 1;
}
