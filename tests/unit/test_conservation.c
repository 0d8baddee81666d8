/*
 * Conservation of items, as a property test: random pipeline graphs (fan-in,
 * fan-out, exporters shared between pipelines, chains of the real batch and nop
 * processors and the refusing testfault processor) are run in-process, and once
 * the router is closed its own metrics must balance exactly:
 *
 *   - each processor: incoming = outgoing + refused + dropped;
 *   - processor i's outgoing = processor i+1's incoming;
 *   - the first processor's incoming = the sum of the accepted items of the
 *     pipeline's receivers (a receiver's batch is accepted into all of its
 *     pipelines or none);
 *   - each exporter: the sum over its pipelines of the pipeline's last outgoing
 *     (or of its receivers' accepted) = sent + send_failed + enqueue_failed;
 *
 * and every testsink must have been handed exactly what its exporter counted as
 * sent, each span at most once per path from its receiver to the sink, and
 * exactly once per path when nothing on those paths refuses.
 *
 * Some seeds also make the core's allocations fail at random (1 in 20) while
 * the router runs: the test is linked with --wrap for malloc, calloc, realloc,
 * posix_memalign and aligned_alloc, which the static core library's references
 * go through (the plugins are shared objects and keep the real allocator). The
 * balance must still hold (out of memory is refused at a receiver, dropped at a
 * processor or failed at an exporter), and under ASan nothing may leak.
 *
 * The metrics are read as Prometheus text from sy__metrics_render(), the function
 * that serves /metrics, so the test depends on no engine internals. A failing
 * seed is printed with its configuration; SY_CONSERVATION_SEED=<n> runs only it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router.h"
#include "telemetry.h"

/* ---- a fault-injecting allocator for the core ------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);

/* One in fail_one_in allocations fails while fail_on is set. Which ones is
 * decided by hashing a global allocation counter, so that the choice does not
 * depend on which thread allocates. Relaxed atomics: nothing is published
 * through these, the main thread only flips the switch and reads the tally. */
static atomic_bool fail_on;
static atomic_uint_fast64_t fail_counter, fail_injected;
static uint64_t fail_one_in = 20;
static atomic_uint_fast64_t fail_salt;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool should_fail(void)
{
    if (!atomic_load_explicit(&fail_on, memory_order_relaxed)) return false;
    uint64_t n = atomic_fetch_add_explicit(&fail_counter, 1, memory_order_relaxed) ^
                 atomic_load_explicit(&fail_salt, memory_order_relaxed);
    if (splitmix(&n) % fail_one_in != 0) return false;
    atomic_fetch_add_explicit(&fail_injected, 1, memory_order_relaxed);
    return true;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    return should_fail() ? ENOMEM : __real_posix_memalign(p, align, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    return should_fail() ? NULL : __real_aligned_alloc(align, size);
}

/* ---- random graphs -------------------------------------------------------------- */

#define MAX_RECEIVERS   8
#define MAX_EXPORTERS   8
#define MAX_PIPELINES   40
#define MAX_PER_PIPE    3
#define SEQ_STRIDE      1000 /* sequence numbers of receiver r: r*SEQ_STRIDE + [0, count*spans) */
#define MAX_SEQ         (MAX_RECEIVERS * SEQ_STRIDE)
#define NPROC_KINDS     5
#define SEEDS           40
#define OOM_EVERY       4 /* every 4th seed fails allocations */
#define DELIVERY_WAIT_S 8

static const char *const proc_types[NPROC_KINDS] = {"batch", "batch", "nop", "testfault",
                                                    "testfault"};

typedef struct pipe_s {
    int recv[MAX_PER_PIPE], nrecv;
    int proc[MAX_PER_PIPE], nproc;
    int exp[MAX_PER_PIPE], nexp;
} pipe_t;

typedef struct graph_s {
    unsigned seed;
    bool oom;
    int nrecv, nexp, npipe;
    int64_t count[MAX_RECEIVERS], spans[MAX_RECEIVERS], interval_ms[MAX_RECEIVERS];
    int64_t batch_size[2], batch_timeout_ms[2];
    int64_t refuse[2], enomem[2]; /* testfault/a and /b, permille */
    pipe_t pipes[MAX_PIPELINES];
    char dir[64];
} graph_t;

static int pick(uint64_t *rng, int n)
{
    return (int)(splitmix(rng) % (uint64_t)n);
}

/* Picks k distinct values of [0, n) into out. */
static void pick_distinct(uint64_t *rng, int n, int k, int *out)
{
    for (int i = 0; i < k; i++) {
        int v;
        bool dup;
        do {
            v = pick(rng, n);
            dup = false;
            for (int j = 0; j < i; j++)
                dup |= out[j] == v;
        } while (dup);
        out[i] = v;
    }
}

static void make_graph(graph_t *g, unsigned seed)
{
    memset(g, 0, sizeof(*g));
    uint64_t rng = seed * 7919ull + 1;
    g->seed = seed;
    g->oom = seed % OOM_EVERY == OOM_EVERY - 1;
    g->npipe = 1 + pick(&rng, MAX_PIPELINES);
    /* Every fifth seed has one receiver feeding every pipeline: wide fan-out. */
    g->nrecv = seed % 5 == 0 ? 1 : 1 + pick(&rng, MAX_RECEIVERS);
    g->nexp = 1 + pick(&rng, MAX_EXPORTERS);
    for (int r = 0; r < g->nrecv; r++) {
        g->count[r] = 5 + pick(&rng, 36);
        g->spans[r] = 1 + pick(&rng, 10);
        if (g->oom) {
            /* Paced, so that data flows all through the window of failures. */
            g->count[r] = 40 + pick(&rng, 60);
            g->interval_ms[r] = 2 + pick(&rng, 3);
        }
    }
    for (int i = 0; i < 2; i++) {
        g->batch_size[i] = 1 + pick(&rng, 50);
        g->batch_timeout_ms[i] = 1 + pick(&rng, 50);
        /* Half the seeds refuse nothing, so that exact delivery is checked. */
        g->refuse[i] = seed % 2 ? pick(&rng, 300) : 0;
        g->enomem[i] = seed % 2 ? pick(&rng, 100) : 0;
    }
    for (int p = 0; p < g->npipe; p++) {
        pipe_t *pp = &g->pipes[p];
        pp->nrecv = 1 + pick(&rng, g->nrecv < MAX_PER_PIPE ? g->nrecv : MAX_PER_PIPE);
        pick_distinct(&rng, g->nrecv, pp->nrecv, pp->recv);
        pp->nexp = 1 + pick(&rng, g->nexp < MAX_PER_PIPE ? g->nexp : MAX_PER_PIPE);
        pick_distinct(&rng, g->nexp, pp->nexp, pp->exp);
        pp->nproc = pick(&rng, MAX_PER_PIPE + 1);
        pick_distinct(&rng, NPROC_KINDS, pp->nproc, pp->proc);
    }
}

static bool recv_used(const graph_t *g, int r)
{
    for (int p = 0; p < g->npipe; p++)
        for (int i = 0; i < g->pipes[p].nrecv; i++)
            if (g->pipes[p].recv[i] == r) return true;
    return false;
}

static bool exp_used(const graph_t *g, int x)
{
    for (int p = 0; p < g->npipe; p++)
        for (int i = 0; i < g->pipes[p].nexp; i++)
            if (g->pipes[p].exp[i] == x) return true;
    return false;
}

static bool proc_used(const graph_t *g, int k)
{
    for (int p = 0; p < g->npipe; p++)
        for (int i = 0; i < g->pipes[p].nproc; i++)
            if (g->pipes[p].proc[i] == k) return true;
    return false;
}

/* Component IDs carry the seed, so that metrics of earlier seeds (the registry
 * is process-wide and keeps them) never mix with this one's. */
static void recv_id(const graph_t *g, int r, char *buf, size_t cap)
{
    snprintf(buf, cap, "testgen/s%u_r%d", g->seed, r);
}

static void exp_id(const graph_t *g, int x, char *buf, size_t cap)
{
    snprintf(buf, cap, "testsink/s%u_x%d", g->seed, x);
}

static void proc_id(const graph_t *g, int k, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/s%u_k%d", proc_types[k], g->seed, k);
}

static void pipe_id(const graph_t *g, int p, char *buf, size_t cap)
{
    snprintf(buf, cap, "traces/s%u_p%d", g->seed, p);
}

static void report_path(const graph_t *g, int x, const char *what, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/x%d.%s", g->dir, x, what);
}

/* The YAML of the graph; malloc'ed. */
static char *graph_yaml(const graph_t *g)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    char id[96], path[128], counts[128];
    fprintf(f, "receivers:\n");
    for (int r = 0; r < g->nrecv; r++) {
        if (!recv_used(g, r)) continue;
        recv_id(g, r, id, sizeof(id));
        fprintf(f,
                "  %s: {count: %" PRId64 ", spans: %" PRId64 ", first_seq: %d, interval: %" PRId64
                "ms}\n",
                id, g->count[r], g->spans[r], r * SEQ_STRIDE, g->interval_ms[r]);
    }
    bool any_proc = false;
    for (int k = 0; k < NPROC_KINDS; k++) {
        if (!proc_used(g, k)) continue;
        if (!any_proc) fprintf(f, "processors:\n");
        any_proc = true;
        proc_id(g, k, id, sizeof(id));
        if (k < 2)
            fprintf(f, "  %s: {send_batch_size: %" PRId64 ", timeout: %" PRId64 "ms}\n", id,
                    g->batch_size[k], g->batch_timeout_ms[k]);
        else if (k == 2)
            fprintf(f, "  %s:\n", id);
        else
            fprintf(
                f, "  %s: {seed: %u, refuse_permille: %" PRId64 ", enomem_permille: %" PRId64 "}\n",
                id, g->seed * 31 + (unsigned)k, g->refuse[k - 3], g->enomem[k - 3]);
    }
    fprintf(f, "exporters:\n");
    for (int x = 0; x < g->nexp; x++) {
        if (!exp_used(g, x)) continue;
        exp_id(g, x, id, sizeof(id));
        report_path(g, x, "report", path, sizeof(path));
        report_path(g, x, "counts", counts, sizeof(counts));
        fprintf(f, "  %s: {report_path: %s, counts_path: %s, verify: true, max_seq: %d}\n", id,
                path, counts, MAX_SEQ);
    }
    fprintf(f, "service:\n  telemetry: {logs: {level: error}}\n  pipelines:\n");
    for (int p = 0; p < g->npipe; p++) {
        const pipe_t *pp = &g->pipes[p];
        pipe_id(g, p, id, sizeof(id));
        fprintf(f, "    %s:\n      receivers: [", id);
        for (int i = 0; i < pp->nrecv; i++) {
            recv_id(g, pp->recv[i], id, sizeof(id));
            fprintf(f, "%s%s", i ? ", " : "", id);
        }
        fprintf(f, "]\n      processors: [");
        for (int i = 0; i < pp->nproc; i++) {
            proc_id(g, pp->proc[i], id, sizeof(id));
            fprintf(f, "%s%s", i ? ", " : "", id);
        }
        fprintf(f, "]\n      exporters: [");
        for (int i = 0; i < pp->nexp; i++) {
            exp_id(g, pp->exp[i], id, sizeof(id));
            fprintf(f, "%s%s", i ? ", " : "", id);
        }
        fprintf(f, "]\n");
    }
    fclose(f);
    return text;
}

/* ---- reading the router's own metrics ------------------------------------------ */

/* The value of the sample `name{labels}` in a Prometheus text rendering, or -1
 * when there is no such sample. */
static int64_t sample(const char *text, const char *name, const char *labels)
{
    char needle[1024];
    snprintf(needle, sizeof(needle), "\n%s{%s} ", name, labels);
    const char *at = strstr(text, needle);
    if (!at) return -1;
    return strtoll(at + strlen(needle), NULL, 10);
}

/* What a check found wrong, printed with the seed; counted, not fatal, so that a
 * failing seed reports every imbalance at once. */
static int failures;

static void flag(const graph_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void flag(const graph_t *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "seed %u: ", g->seed);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* A metric that must exist; -1 when it does not. Missing metrics are summed up
 * in one line per seed rather than one line each. */
static int missing;
static char first_missing[1024];

static int64_t need(const char *text, const char *name, const char *labels)
{
    int64_t v = sample(text, name, labels);
    if (v < 0 && !missing++) snprintf(first_missing, sizeof(first_missing), "%s{%s}", name, labels);
    return v;
}

static void recv_labels(const graph_t *g, int r, char *buf, size_t cap)
{
    char id[96];
    recv_id(g, r, id, sizeof(id));
    snprintf(buf, cap, "receiver=\"%s\"", id);
}

static void exp_labels(const graph_t *g, int x, char *buf, size_t cap)
{
    char id[96];
    exp_id(g, x, id, sizeof(id));
    snprintf(buf, cap, "exporter=\"%s\"", id);
}

static void proc_labels(const graph_t *g, int p, int k, char *buf, size_t cap)
{
    char id[96], pid[96];
    proc_id(g, k, id, sizeof(id));
    pipe_id(g, p, pid, sizeof(pid));
    snprintf(buf, cap, "processor=\"%s\",pipeline=\"%s\"", id, pid);
}

/* True once every receiver has had all of its spans accepted. */
static bool all_accepted(const graph_t *g)
{
    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    bool done = true;
    char labels[256];
    for (int r = 0; r < g->nrecv && done; r++) {
        if (!recv_used(g, r)) continue;
        recv_labels(g, r, labels, sizeof(labels));
        done = sample(text, "switchyard_receiver_accepted_spans_total", labels) ==
               g->count[r] * g->spans[r];
    }
    free(text);
    return done;
}

static bool pipe_refuses(const graph_t *g, int p)
{
    for (int i = 0; i < g->pipes[p].nproc; i++) {
        int k = g->pipes[p].proc[i];
        if (k >= 3 && (g->refuse[k - 3] || g->enomem[k - 3])) return true;
    }
    return false;
}

static bool list_has(const int *list, int n, int v)
{
    for (int i = 0; i < n; i++)
        if (list[i] == v) return true;
    return false;
}

/* ---- the checks ----------------------------------------------------------------- */

/* What testsink x wrote at shutdown against what its exporter counted as sent,
 * and the arrivals of every span against the paths from its receiver to x. */
static void check_sink(const graph_t *g, int x, int64_t sent)
{
    char path[128];
    report_path(g, x, "report", path, sizeof(path));
    FILE *f = fopen(path, "r");
    unsigned long long batches = 0, items = 0, distinct = 0, dups = 0, range = 0, bad = 0;
    if (!f || fscanf(f,
                     "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
                     "undecodable=%llu",
                     &batches, &items, &distinct, &dups, &range, &bad) != 6) {
        flag(g, "sink x%d: no report at %s", x, path);
        if (f) fclose(f);
        return;
    }
    fclose(f);
    if ((int64_t)items != sent)
        flag(g, "sink x%d: took %llu spans, its exporter counted %" PRId64 " sent", x, items, sent);
    /* Under injected out of memory the sink's batch_request() (the core's
     * unpacking) may fail: such a batch is counted but its spans are not seen. */
    if (range || (bad && !g->oom))
        flag(g, "sink x%d: %llu out of range, %llu undecodable", x, range, bad);

    static uint8_t counts[MAX_SEQ];
    report_path(g, x, "counts", path, sizeof(path));
    f = fopen(path, "rb");
    if (!f || fread(counts, 1, MAX_SEQ, f) != MAX_SEQ) {
        flag(g, "sink x%d: no counts at %s", x, path);
        if (f) fclose(f);
        return;
    }
    fclose(f);
    uint64_t total = 0;
    for (int r = 0; r < MAX_RECEIVERS; r++) {
        int paths = 0;
        bool exact = !g->oom;
        for (int p = 0; r < g->nrecv && p < g->npipe; p++) {
            const pipe_t *pp = &g->pipes[p];
            if (!list_has(pp->recv, pp->nrecv, r) || !list_has(pp->exp, pp->nexp, x)) continue;
            paths++;
            if (pipe_refuses(g, p)) exact = false;
        }
        int64_t n = r < g->nrecv ? g->count[r] * g->spans[r] : 0;
        int wrong = 0;
        for (int64_t i = 0; i < SEQ_STRIDE; i++) {
            int c = counts[r * SEQ_STRIDE + i];
            total += (uint64_t)c;
            int want = i < n ? paths : 0;
            if (exact ? c == want : c <= want) continue;
            if (!wrong++)
                flag(g,
                     "sink x%d: span %" PRId64
                     " of receiver r%d arrived %d times, %s %d (%d paths)",
                     x, i, r, c, exact ? "expected" : "at most", want, paths);
        }
        if (wrong > 1) flag(g, "sink x%d: ... %d spans of receiver r%d in all", x, wrong, r);
    }
    if (total != items && !bad)
        flag(g, "sink x%d: %" PRIu64 " arrivals counted, %llu items reported", x, total, items);
}

static void check_balance(const graph_t *g, const char *text)
{
    char labels[512];
    int64_t accepted[MAX_RECEIVERS] = {0}, into_exporter[MAX_EXPORTERS] = {0};
    bool unknown[MAX_EXPORTERS] = {false}; /* a metric on the way is missing */
    missing = 0;
    for (int r = 0; r < g->nrecv; r++) {
        if (!recv_used(g, r)) continue;
        recv_labels(g, r, labels, sizeof(labels));
        accepted[r] = need(text, "switchyard_receiver_accepted_spans_total", labels);
        if (accepted[r] < 0) continue;
        if (!g->oom && accepted[r] != g->count[r] * g->spans[r])
            flag(g, "receiver r%d accepted %" PRId64 " spans, sent %" PRId64, r, accepted[r],
                 g->count[r] * g->spans[r]);
    }
    for (int p = 0; p < g->npipe; p++) {
        const pipe_t *pp = &g->pipes[p];
        int64_t flow = 0;
        for (int i = 0; i < pp->nrecv && flow >= 0; i++)
            flow = accepted[pp->recv[i]] < 0 ? -1 : flow + accepted[pp->recv[i]];
        for (int i = 0; i < pp->nproc; i++) {
            int k = pp->proc[i];
            proc_labels(g, p, k, labels, sizeof(labels));
            int64_t in = need(text, "switchyard_processor_incoming_spans_total", labels);
            int64_t out = need(text, "switchyard_processor_outgoing_spans_total", labels);
            int64_t refused = need(text, "switchyard_processor_refused_spans_total", labels);
            int64_t dropped = need(text, "switchyard_processor_dropped_spans_total", labels);
            if (flow < 0 || in < 0 || out < 0 || refused < 0 || dropped < 0) {
                flow = -1;
                continue;
            }
            if (in != flow)
                flag(g,
                     "pipeline p%d processor %d (k%d): incoming %" PRId64 " != %" PRId64
                     " handed to it",
                     p, i, k, in, flow);
            if (in != out + refused + dropped)
                flag(g,
                     "pipeline p%d processor %d (k%d): incoming %" PRId64 " != outgoing %" PRId64
                     " + refused %" PRId64 " + dropped %" PRId64,
                     p, i, k, in, out, refused, dropped);
            if (!g->oom && dropped != 0)
                flag(g, "pipeline p%d processor %d (k%d): dropped %" PRId64 " without OOM", p, i, k,
                     dropped);
            if (k < 3 && !g->oom && refused != 0)
                flag(g, "pipeline p%d processor %d (k%d, %s): refused %" PRId64 " without OOM", p,
                     i, k, proc_types[k], refused);
            if (k >= 3) {
                /* The plugin's own tally of its errors: the host must count each
                 * consume() error as refused, once. An error that only passes on
                 * emit()'s failure may have been counted downstream already, so
                 * with any of those the bound is all the test can say. */
                int64_t own_error = need(text, "switchyard_testfault_refused_items_total", labels);
                int64_t own_enomem = need(text, "switchyard_testfault_enomem_items_total", labels);
                int64_t passed = need(text, "switchyard_testfault_emit_failed_items_total", labels);
                int64_t own = own_error + own_enomem;
                if (own_error < 0 || own_enomem < 0 || passed < 0) {
                    /* reported as missing */
                } else if (passed == 0 ? refused != own : (refused < own || refused > own + passed))
                    flag(g,
                         "pipeline p%d processor %d (testfault k%d): refused %" PRId64
                         " but the plugin refused %" PRId64 " (+%" PRId64 " emit failures)",
                         p, i, k, refused, own, passed);
            }
            flow = out;
        }
        for (int i = 0; i < pp->nexp; i++) {
            into_exporter[pp->exp[i]] += flow;
            if (flow < 0) unknown[pp->exp[i]] = true;
        }
    }
    for (int x = 0; x < g->nexp; x++) {
        if (!exp_used(g, x)) continue;
        exp_labels(g, x, labels, sizeof(labels));
        int64_t sent = need(text, "switchyard_exporter_sent_spans_total", labels);
        int64_t failed = need(text, "switchyard_exporter_send_failed_spans_total", labels);
        int64_t enq = need(text, "switchyard_exporter_enqueue_failed_spans_total", labels);
        if (sent < 0 || failed < 0 || enq < 0) continue;
        if (!unknown[x] && into_exporter[x] != sent + failed + enq)
            flag(g,
                 "exporter x%d: its pipelines handed it %" PRId64 " != sent %" PRId64
                 " + send_failed %" PRId64 " + enqueue_failed %" PRId64,
                 x, into_exporter[x], sent, failed, enq);
        /* Out of memory queueing for an exporter is its enqueue_failed; a testsink
         * never fails. */
        if (failed != 0)
            flag(g, "exporter x%d: send_failed %" PRId64 " (testsink never fails)", x, failed);
        if (enq != 0 && !g->oom)
            flag(g, "exporter x%d: enqueue_failed %" PRId64 " without out of memory", x, enq);
        check_sink(g, x, sent);
    }
    if (missing)
        flag(g, "%d metrics are missing, the first: %s (what follows them was not checked)",
             missing, first_missing);
}

/* ---- running one graph ------------------------------------------------------------ */

static const char *const plugin_dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_reports(const graph_t *g)
{
    char path[128];
    for (int x = 0; x < g->nexp; x++) {
        report_path(g, x, "report", path, sizeof(path));
        unlink(path);
        report_path(g, x, "counts", path, sizeof(path));
        unlink(path);
    }
    rmdir(g->dir);
}

static void run_seed(unsigned seed)
{
    graph_t *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    make_graph(g, seed);
    snprintf(g->dir, sizeof(g->dir), "/tmp/sy_conservation.XXXXXX");
    assert_non_null(mkdtemp(g->dir));
    char *yaml = graph_yaml(g);
    int failures_before = failures;

    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = plugin_dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) {
        sy__diag_print(&diag, stderr);
        fprintf(stderr, "seed %u: configuration refused:\n%s", seed, yaml);
    }
    assert_non_null(r);
    sy__diag_free(&diag);
    assert_int_equal(sy__router_start(r), 0);

    double t0 = now_s();
    uint64_t injected = 0;
    if (g->oom) {
        /* Failures only while the router runs: from after start until close
         * begins, so that building and tearing down are not what is tested. */
        atomic_store_explicit(&fail_salt, seed, memory_order_relaxed);
        atomic_store_explicit(&fail_injected, 0, memory_order_relaxed);
        atomic_store_explicit(&fail_on, true, memory_order_relaxed);
        usleep(300000);
        atomic_store_explicit(&fail_on, false, memory_order_relaxed);
        injected = atomic_load_explicit(&fail_injected, memory_order_relaxed);
    } else {
        while (!all_accepted(g) && now_s() - t0 < DELIVERY_WAIT_S)
            usleep(10000);
    }
    int rc = sy__router_close(r);
    if (rc != 0) flag(g, "sy__router_close() returned %d", rc);

    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    check_balance(g, text);
    free(text);
    fprintf(stderr, "seed %u: %d pipelines, %d receivers, %d exporters%s%s, %.2f s%s\n", seed,
            g->npipe, g->nrecv, g->nexp, g->oom ? ", out of memory" : "",
            seed % 2 ? ", refusing" : "", now_s() - t0,
            failures > failures_before ? " FAILED" : "");
    if (g->oom) fprintf(stderr, "seed %u: %" PRIu64 " allocations failed\n", seed, injected);
    if (failures > failures_before)
        fprintf(stderr, "seed %u: the configuration was:\n%s", seed, yaml);
    free(yaml);
    remove_reports(g);
    free(g);
}

static void test_random_graphs_conserve(void **state)
{
    (void)state;
    const char *only = getenv("SY_CONSERVATION_SEED");
    if (only) {
        run_seed((unsigned)strtoul(only, NULL, 10));
    } else {
        for (unsigned seed = 1; seed <= SEEDS; seed++)
            run_seed(seed);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_graphs_conserve),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
