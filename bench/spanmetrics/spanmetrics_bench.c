/*
 * spanmetrics_bench - what the spanmetrics connector's aggregation costs per span,
 * on one core, in-process: a batch made as a receiver makes one (copy + walk),
 * then what the connector's consume() does with it (every span read through the
 * view and counted into its series), with a flush (encoding every series) every
 * 64 batches. The first row is the copy + walk alone, so the connector's own cost
 * is the difference. Emitting downstream is not included.
 *
 *   spanmetrics_bench [--spans 512] [--attrs 10] [--seconds 2]
 *
 * The request is the load generator's (bench/loadgen_payload.c): 512 spans with
 * 10 attributes each, about 440 bytes a span, 5 span names, 4 HTTP methods.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "loadgen_payload.h"
#include "sm_agg.h"

static const double bounds[] = {2,   4,   6,    8,    10,   50,   100,   200,
                                400, 800, 1000, 1400, 2000, 5000, 10000, 15000};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "spanmetrics_bench: %s failed\n", what);
    exit(1);
}

static void run(const char *name, const lg_payload_t *p, double seconds, const sm_opts_t *o)
{
    sm_agg_t *a = o ? sm_agg_new(o) : NULL;
    sm_buf_t out = {0};
    unsigned long calls = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 8; i++, calls++) {
            sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
            uint8_t *body = sy__batch_alloc(b, p->len);
            memcpy(body, p->body, p->len);
            if (sy__batch_set_encoded(b, body, p->len, NULL, 0) < 0) die("set_encoded");
            if (a) {
                sm_consume_stats_t st;
                if (sm_agg_consume(a, sy__host_api(), b, (int64_t)calls, &st) != 0) die("consume");
                if (st.spans != p->spans) die("counting every span");
                if (calls % 64 == 63) {
                    uint64_t points;
                    if (sm_agg_build(a, (int64_t)calls, &out, &points) != 0) die("build");
                    sm_agg_flushed(a, (int64_t)calls);
                }
            }
            sy__batch_release(b);
        }
        t = now();
    } while (t - t0 < seconds);
    double spans = (double)calls * p->spans;
    printf("%-52s %7.0f ns/span  %5.2f M spans/s", name, (t - t0) / spans * 1e9,
           spans / (t - t0) / 1e6);
    if (a) printf("  (%zu series)", sm_agg_series(a));
    printf("\n");
    sm_buf_free(&out);
    sm_agg_free(a);
}

int main(int argc, char **argv)
{
    lg_payload_opts_t opts = {.spans = 512, .attrs = 10, .distinct = 1, .seed = 1};
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--spans"))
            opts.spans = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attrs"))
            opts.attrs = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&opts, &set, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const lg_payload_t *p = &set.items[0];
    sm_dim_t method = {.name = "http.request.method", .len = 19, .def = "GET", .def_len = 3};
    sm_opts_t o = {
        .bounds = bounds,
        .nbounds = 16,
        .ns_per_unit = 1e6,
        .unit = "ms",
        .name_calls = "traces.span.metrics.calls",
        .name_duration = "traces.span.metrics.duration",
        .max_exemplars = 5,
        .resource_cache_size = 1000,
        .max_size = 160,
    };
    run("receive (copy + walk)", p, seconds, NULL);
    run("+ spanmetrics, defaults", p, seconds, &o);
    sm_opts_t od = o;
    od.dims = &method;
    od.ndims = 1;
    run("+ spanmetrics, dimension http.request.method", p, seconds, &od);
    sm_opts_t oe = od;
    oe.exemplars = true;
    run("+ spanmetrics, dimension, exemplars", p, seconds, &oe);
    sm_opts_t ox = od;
    ox.exponential = true;
    run("+ spanmetrics, dimension, exponential histogram", p, seconds, &ox);
    lg_payload_free(&set);
    return 0;
}
