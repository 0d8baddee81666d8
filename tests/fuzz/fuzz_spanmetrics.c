/*
 * Fuzz target: the spanmetrics connector's aggregation and output encoder
 * (plugins/connectors/spanmetrics), over any traces request the wire walk
 * accepts.
 *
 * Input: byte 0 picks options (bit 0 delta, bit 1 exponential histogram, bit 2
 * exemplars, bit 3 a cardinality limit of 2, bit 4 two extra dimensions and
 * the events metric with one event dimension, bit 5
 * resource key attributes, bit 6 no histogram, bit 7 excluded defaults); the rest
 * is the request body. Properties:
 *  - reading the spans through the view never fails on bytes the walk accepted;
 *  - the metrics request written is accepted by the core's validation walk as a
 *    metrics request, whose item count is the number of data points the encoder
 *    says it wrote;
 *  - it unpacks with protobuf-c, and its calls add up to the spans counted;
 *  - after a flush, a second round (the same body again) holds to the same.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "sm_agg.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_spanmetrics: property violated: %s\n", what);
        abort();
    }
}

static const double bounds[] = {2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000};

/* The calls of every point of every `calls` metric. */
static uint64_t sum_calls(const uint8_t *data, size_t len)
{
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *m =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, len, data);
    check(m != NULL, "the output unpacks with protobuf-c");
    uint64_t total = 0;
    for (size_t r = 0; r < m->n_resource_metrics; r++)
        for (size_t s = 0; s < m->resource_metrics[r]->n_scope_metrics; s++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                m->resource_metrics[r]->scope_metrics[s];
            for (size_t i = 0; i < sm->n_metrics; i++)
                if (strcmp(sm->metrics[i]->name, "calls") == 0)
                    for (size_t p = 0; p < sm->metrics[i]->sum->n_data_points; p++)
                        total += (uint64_t)sm->metrics[i]->sum->data_points[p]->as_int;
        }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        m, NULL);
    return total;
}

static void round_trip(sm_agg_t *a, const sm_opts_t *o, sy_batch_t *in, int64_t now,
                       uint64_t *counted)
{
    sm_consume_stats_t st;
    check(sm_agg_consume(a, sy__host_api(), in, now, &st) == 0, "consume succeeds");
    *counted += st.spans;
    sm_buf_t out = {0};
    uint64_t points = 0;
    check(sm_agg_build(a, now + 1, &out, &points) == 0, "build succeeds");
    if (out.len) {
        sy_batch_t *b = sy__batch_new(SY_SIGNAL_METRICS, "fuzz");
        char err[256];
        int rc = sy__batch_set_encoded(b, out.data, out.len, err, sizeof(err));
        if (rc) fprintf(stderr, "%s\n", err);
        check(rc == 0, "the output passes the validation walk");
        check(sy__batch_items(b) == points, "the walk counts the points written");
        sy__batch_release(b);
        /* cumulative: a series' first point reads 0; delta: what came since */
        uint64_t calls = sum_calls(out.data, out.len);
        check(calls <= *counted, "no more calls than spans");
        if (o->delta) check(calls == st.spans || st.spans == 0, "delta calls are the new spans");
    } else {
        check(points == 0, "no bytes, no points");
    }
    sm_buf_free(&out);
    sm_agg_flushed(a, now + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t opt = data[0];
    sy_batch_t *in = sy__batch_new(SY_SIGNAL_TRACES, "fuzz");
    char err[256];
    uint8_t *body = sy__batch_alloc(in, size);
    memcpy(body, data + 1, size - 1);
    if (sy__batch_set_encoded(in, body, size - 1, err, sizeof(err)) != 0) {
        sy__batch_release(in);
        return 0;
    }
    static const sm_dim_t dims[] = {{.name = "http.method", .len = 11, .def = "GET", .def_len = 3},
                                    {.name = "k", .len = 1}};
    static const sm_dim_t edims[] = {{.name = "exception.type", .len = 14}};
    static const char *const keys[] = {"service.name"};
    sm_opts_t o = {
        .delta = opt & 1,
        .exponential = opt & 2,
        .max_size = 4,
        .exemplars = opt & 4,
        .max_exemplars = 2,
        .cardinality_limit = (opt & 8) ? 2 : 0,
        .dims = (opt & 16) ? dims : NULL,
        .ndims = (opt & 16) ? 2 : 0,
        .events = opt & 16,
        .edims = edims,
        .nedims = 1,
        .name_events = "events",
        .key_attrs = (opt & 32) ? keys : NULL,
        .nkey_attrs = (opt & 32) ? 1 : 0,
        .hist_disable = opt & 64,
        .excl_service = opt & 128,
        .excl_status = opt & 128,
        .bounds = bounds,
        .nbounds = sizeof(bounds) / sizeof(bounds[0]),
        .ns_per_unit = 1e6,
        .unit = "ms",
        .name_calls = "calls",
        .name_duration = "duration",
        .resource_cache_size = 3,
        .expiration_ns = 5,
    };
    sm_agg_t *a = sm_agg_new(&o);
    check(a != NULL, "sm_agg_new");
    uint64_t counted = 0;
    round_trip(a, &o, in, 1000, &counted);
    round_trip(a, &o, in, 2000, &counted);
    sm_agg_free(a);
    sy__batch_release(in);
    return 0;
}
