/*
 * Fuzz target: the servicegraph connector's engine
 * (plugins/connectors/servicegraph/sg_*.c) over any traces request the wire walk
 * accepts, read through the core's view as the plugin reads it.
 *
 * Input: byte 0 picks options (bit 0: two dimensions, bit 1: virtual_node_extra_
 * label, bit 2: no virtual nodes, bits 3-4: store.max_items 1, 2, 4 or 1000), the
 * rest is the ExportTraceServiceRequest body. The body is ingested twice (the
 * second time 1 s later, so that halves meet halves), then every edge expires.
 * Properties:
 *  - no read outside the input, no leak (ASan);
 *  - ingest succeeds on every body the walk accepted; the store never holds more
 *    than max_items edges and is empty after expiry;
 *  - the metrics request written unpacks with protobuf-c; every histogram point's
 *    bucket counts add up to its count, which equals the series' request_total;
 *    failed_total never exceeds request_total; the two histograms have as many
 *    points as request_total, whose sum is the edges completed.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "sg.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_servicegraph: property violated: %s\n", what);
        abort();
    }
}

static const double bounds[] = {0.005, 0.01, 0.05, 1};
static const char *const dims[] = {"http.route", "k8s.namespace.name"};
static const char *const peers[] = {"peer.service", "db.name", "db.system"};
static const char *const dbs[] = {"db.name"};

static Metric *find(MetricsReq *r, const char *name)
{
    if (r->n_resource_metrics != 1 || r->resource_metrics[0]->n_scope_metrics != 1) return NULL;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++)
        if (!strcmp(sm->metrics[i]->name, name)) return sm->metrics[i];
    return NULL;
}

static void check_output(sg_t *sg)
{
    uint8_t *bytes;
    size_t len;
    check(sg_encode(sg, 1, 2, &bytes, &len) == 0, "encode succeeds");
    if (!sg_series_len(sg)) {
        check(bytes == NULL && len == 0, "no series, no request");
        return;
    }
    MetricsReq *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, len, bytes);
    free(bytes);
    check(r != NULL, "the metrics request unpacks");
    Metric *total = find(r, "traces_service_graph_request_total");
    Metric *failed = find(r, "traces_service_graph_request_failed_total");
    Metric *hs[2] = {find(r, "traces_service_graph_request_server"),
                     find(r, "traces_service_graph_request_client")};
    check(total && total->sum && total->sum->n_data_points == sg_series_len(sg),
          "one request_total point a series");
    int64_t sum_total = 0;
    for (size_t i = 0; i < total->sum->n_data_points; i++)
        sum_total += total->sum->data_points[i]->as_int;
    if (failed) {
        int64_t sum_failed = 0;
        for (size_t i = 0; i < failed->sum->n_data_points; i++)
            sum_failed += failed->sum->data_points[i]->as_int;
        check(sum_failed <= sum_total, "failed_total <= request_total");
    }
    for (int h = 0; h < 2; h++) {
        check(hs[h] && hs[h]->histogram &&
                  hs[h]->histogram->n_data_points == total->sum->n_data_points,
              "one histogram point a series");
        for (size_t i = 0; i < hs[h]->histogram->n_data_points; i++) {
            Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p =
                hs[h]->histogram->data_points[i];
            uint64_t n = 0;
            check(p->n_bucket_counts == 5 && p->n_explicit_bounds == 4, "bucket layout");
            for (size_t b = 0; b < p->n_bucket_counts; b++)
                n += p->bucket_counts[b];
            check(n == p->count, "buckets add up to the count");
            check((int64_t)p->count == total->sum->data_points[i]->as_int,
                  "histogram count == request_total of the series");
        }
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const uint64_t max_items[] = {1, 2, 4, 1000};
    uint8_t opt = data[0];
    sg_opts_t o = {.bounds = bounds,
                   .nbounds = 4,
                   .dims = dims,
                   .ndims = (opt & 1) ? 2 : 0,
                   .peer_attrs = peers,
                   .npeer = (opt & 4) ? 0 : 3,
                   .db_attrs = dbs,
                   .ndb = 1,
                   .virtual_node_extra_label = (opt & 2) != 0,
                   .ttl_ns = 2000000000,
                   .max_items = max_items[(opt >> 3) & 3],
                   .series_ttl_ns = 900000000000LL};
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "fuzz");
    uint8_t *buf = sy__batch_alloc(b, size);
    memcpy(buf, data + 1, size - 1);
    char err[256];
    if (sy__batch_set_encoded(b, buf, size - 1, err, sizeof(err)) != 0) {
        sy__batch_release(b);
        return 0;
    }
    const sy_host_api_t *api = sy__host_api();
    sg_t *sg = sg_new(&o);
    check(sg != NULL, "sg_new");
    check(sg_ingest(sg, api, b, 0) == 0, "ingest succeeds");
    check(sg_store_len(sg) <= o.max_items, "store within max_items");
    check(sg_ingest(sg, api, b, 1000000000) == 0, "ingest succeeds twice");
    check(sg_store_len(sg) <= o.max_items, "store within max_items");
    check_output(sg);
    sg_expire(sg, 10000000000LL);
    check(sg_store_len(sg) == 0, "every edge expired");
    check_output(sg);
    sg_free(sg);
    sy__batch_release(b);
    return 0;
}
