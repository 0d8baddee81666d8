/*
 * probsampler_bench.c - what the probabilistic_sampler costs per span, in
 * process: loads processor_probabilistic_sampler.so through its entry symbol,
 * gives it the core's host API (emit releases the batch, metrics and logs are
 * no-ops), and feeds it loadgen's requests (512 spans of 10 attributes, 8 spans
 * a trace). Each iteration copies a request into a new batch (validated and
 * counted, as a receiver does), then has the sampler decide on it; the baseline
 * row does the copy alone, so a row's cost less the baseline's is the sampler's.
 *
 *   ./build/bin/probsampler_bench --plugin
 * build/lib/switchyard/plugins/processor_probabilistic_sampler.so
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "loadgen_payload.h"
#include "probabilistic_sampler.h"

static uint64_t kept;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    (void)inst;
    sy_batch_info_t info;
    sy__host_api()->batch_info(batch, &info);
    kept += info.items;
    sy__batch_release(batch);
    return SY_OK;
}

static sy_metric_t *bench_metric_register(sy_instance_t *inst, const char *name, const char *help,
                                          sy_metric_type_t type)
{
    (void)inst, (void)name, (void)help, (void)type;
    static char dummy;
    return (sy_metric_t *)&dummy;
}

static void bench_metric_add(sy_metric_t *m, int64_t d)
{
    (void)m, (void)d;
}

static bool bench_log_enabled(const sy_instance_t *inst, sy_log_level_t level)
{
    (void)inst;
    return level >= SY_LOG_WARN;
}

static uint32_t bench_signals(const sy_instance_t *inst)
{
    (void)inst;
    return SY_SIGNAL_TRACES;
}

static sy_batch_t *copy_batch(const lg_payload_t *p)
{
    char err[128];
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    uint8_t *body = b ? sy__batch_alloc(b, p->len) : NULL;
    if (!body) exit(1);
    memcpy(body, p->body, p->len);
    if (sy__batch_set_encoded(b, body, p->len, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        exit(1);
    }
    return b;
}

int main(int argc, char **argv)
{
    const char *plugin = "build/lib/switchyard/plugins/processor_probabilistic_sampler.so";
    double seconds = 2;
    long only = -1, iterations = 0; /* --row, --iterations: for bench/callgrind_per_batch.py */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plugin") && i + 1 < argc)
            plugin = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--row") && i + 1 < argc)
            only = atol(argv[++i]);
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iterations = atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--plugin processor_probabilistic_sampler.so] [--seconds 2] "
                    "[--row N] [--iterations BATCHES]\n",
                    argv[0]);
            return 2;
        }
    }
    void *so = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    sy_plugin_entry_fn entry = so ? (sy_plugin_entry_fn)dlsym(so, SY_PLUGIN_ENTRY_SYMBOL) : NULL;
    if (!entry) {
        fprintf(stderr, "bench: cannot load %s: %s\n", plugin, dlerror());
        return 1;
    }
    const sy_plugin_t *d = entry();
    sy_host_api_t api = *sy__host_api();
    api.emit = bench_emit;
    api.metric_register = bench_metric_register;
    api.metric_add = bench_metric_add;
    api.log_enabled = bench_log_enabled;
    api.signals = bench_signals;

    lg_payload_opts_t opts = {.spans = 512, .attrs = 10, .distinct = 4, .seed = 1};
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&opts, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    static const struct {
        const char *name, *mode;
        double pct;
    } rows[] = {
        {"baseline: copy + validate a batch", NULL, -1},
        {"hash_seed 1 %", "hash_seed", 1},
        {"hash_seed 10 %", "hash_seed", 10},
        {"hash_seed 100 % (rv and th written on every span)", "hash_seed", 100},
        {"proportional 10 %", "proportional", 10},
        {"equalizing 10 %", "equalizing", 10},
    };
    for (size_t row = 0; row < sizeof rows / sizeof rows[0]; row++) {
        if (only >= 0 && (size_t)only != row) continue;
        ps_config_t cfg = {.sampling_percentage = rows[row].pct,
                           .mode = (char *)rows[row].mode,
                           .fail_closed = true,
                           .sampling_precision = 4,
                           .attribute_source = (char *)"traceID"};
        void *state = NULL;
        if (rows[row].mode && d->create(&api, NULL, &cfg, &state) < 0) return 1;
        unsigned long n = 0;
        kept = 0;
        double t0 = now(), t;
        do {
            for (unsigned k = 0; k < set.count && (!iterations || (long)n < iterations); k++) {
                sy_batch_t *b = copy_batch(&set.items[k]);
                if (!state)
                    sy__batch_release(b);
                else if (d->consume(state, b) < 0)
                    return 1;
                n++;
            }
            t = now() - t0;
        } while (iterations ? (long)n < iterations : t < seconds);
        double spans = (double)n * opts.spans;
        printf("%-52s %7.1f ns/span  %5.2f M spans/s  %5.1f %% kept\n", rows[row].name,
               t / spans * 1e9, spans / t / 1e6, state ? 100.0 * (double)kept / spans : 100.0);
        if (state) d->destroy(state);
    }
    lg_payload_free(&set);
    dlclose(so);
    return 0;
}
