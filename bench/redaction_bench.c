/*
 * redaction_bench.c - what the redaction processor costs per span, in process:
 * loads processor_redaction.so through its entry symbol, gives it the core's
 * host API (emit releases the batch, metrics and logs are no-ops), and feeds it
 * loadgen's requests (512 spans of 10 attributes by default). Each iteration
 * copies a request into a new batch (validated and counted, as a receiver
 * does), then has the processor redact it; the baseline row does the copy alone.
 *
 *   ./build/bin/redaction_bench --plugin build/lib/switchyard/plugins/processor_redaction.so
 *
 * The configuration: allowed_keys lists 8 of the 10 span keys and the 3 resource
 * keys (2 attributes deleted per span, so every batch is committed), detectors
 * [card], summary silent.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "loadgen_payload.h"
#include "redaction_rules.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    (void)inst;
    /* The bytes, as the next consumer that is not a view would ask for them: a
     * commit of the shared view is written then (docs/view.md). */
    if (!sy__batch_encoded(batch, NULL)) return SY_ENOMEM;
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
    const char *plugin = "build/lib/switchyard/plugins/processor_redaction.so";
    double seconds = 2;
    unsigned long iterations = 0; /* fixed number of batches a row instead of a time */
    int only = -1;                /* one row only (0 baseline, 1 redaction) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--plugin") && i + 1 < argc)
            plugin = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iterations = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--row") && i + 1 < argc)
            only = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--plugin processor_redaction.so] [--seconds 2] "
                    "[--iterations N] [--row 0|1]\n",
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

    static char *allowed[] = {"http.request.method",
                              "url.path",
                              "server.address",
                              "db.system",
                              "peer.service",
                              "http.response.status_code",
                              "server.port",
                              "http.request.body.size",
                              "db.response.returned_rows",
                              "service.name",
                              "host.name",
                              "service.instance.id"};
    static char *detectors[] = {"card"};
    rd_config_t cfg = {.allowed_keys = {sizeof(allowed) / sizeof(allowed[0]), allowed},
                       .detectors = {1, detectors},
                       .summary = RD_SUMMARY_SILENT};
    void *state = NULL;
    if (d->create(&api, NULL, &cfg, &state) < 0) return 1;

    lg_payload_opts_t opts = {.spans = 512, .attrs = 10, .distinct = 4, .seed = 1};
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&opts, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    for (int row = 0; row < 2; row++) {
        if (only >= 0 && row != only) continue;
        unsigned long n = 0;
        double t0 = now(), t;
        do {
            for (unsigned k = 0; k < set.count && (!iterations || n < iterations); k++) {
                sy_batch_t *b = copy_batch(&set.items[k]);
                if (row == 0)
                    sy__batch_release(b);
                else if (d->consume(state, b) < 0)
                    return 1;
                n++;
            }
            t = now() - t0;
        } while (iterations ? n < iterations : t < seconds);
        double spans = (double)n * opts.spans;
        printf("%-44s %8.1f ns/span  %6.2f M spans/s\n",
               row == 0 ? "baseline: copy + validate a batch"
                        : "copy + validate + redaction (keys + card)",
               t / spans * 1e9, spans / t / 1e6);
    }
    d->destroy(state);
    lg_payload_free(&set);
    dlclose(so);
    return 0;
}
