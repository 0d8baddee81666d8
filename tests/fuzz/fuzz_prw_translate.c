/*
 * Fuzz target: the prometheusremotewrite exporter's translation
 * (plugins/exporters/prometheusremotewrite/prw_translate.c). The input's first
 * byte picks the options and the size bound, the rest is an
 * ExportMetricsServiceRequest unpacked by protobuf-c (what the exporter reads
 * through api->batch_request). Properties:
 *  - no crash, hang, leak or read past the input (ASan/UBSan);
 *  - every part unpacks with protobuf-c's code for proto/prometheus/remote.proto
 *    (an independent decoder of the hand-written encoding);
 *  - a part over the bound holds a single series or metadata entry;
 *  - labels are sorted by name, each name once, no empty value, __name__ set;
 *  - the parts hold as many series and metadata as the statistics say.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "prometheus/remote.pb-c.h"
#include "prw_translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "property violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    uint8_t opt = data[0];
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, size - 1, data + 1);
    if (!req) return 0;
    static char *ext_names[] = {"cluster", "job"};
    static char *ext_values[] = {"c1", "j"};
    prw_cfg_t cfg = {
        .namer = {.ns = (opt & 1) ? "ns" : "", .suffixes = (opt & 2) != 0},
        .resource_to_telemetry = (opt & 4) != 0,
        .target_info = (opt & 8) != 0,
        .send_metadata = (opt & 16) != 0,
        .n_external = (opt & 32) ? 2 : 0,
        .external_names = ext_names,
        .external_values = ext_values,
    };
    size_t max = (opt & 64) ? 64 : 3000000;
    prw_stats_t st = {0};
    prw_part_t *parts = NULL;
    size_t n = 0;
    int rc = prw_translate(&cfg, req, max, &parts, &n, &st);
    check(rc == SY_OK || rc == SY_ENOMEM, "SY_OK or SY_ENOMEM");
    uint64_t series = 0, meta = 0;
    for (size_t p = 0; rc == SY_OK && p < n; p++) {
        Prometheus__WriteRequest *w =
            prometheus__write_request__unpack(NULL, parts[p].len, parts[p].data);
        check(w != NULL, "every part unpacks");
        check(parts[p].len <= max || w->n_timeseries + w->n_metadata == 1,
              "a part over the bound holds one entry");
        for (size_t i = 0; i < w->n_timeseries; i++) {
            const Prometheus__TimeSeries *ts = w->timeseries[i];
            int has_name = 0;
            for (size_t l = 0; l < ts->n_labels; l++) {
                check(ts->labels[l]->value[0] != '\0', "no empty label value");
                if (l)
                    check(strcmp(ts->labels[l - 1]->name, ts->labels[l]->name) < 0,
                          "labels sorted, each name once");
                if (!strcmp(ts->labels[l]->name, "__name__")) has_name = 1;
            }
            check(has_name, "__name__ is set");
            check(ts->n_samples > 0, "a series has samples");
        }
        series += w->n_timeseries;
        meta += w->n_metadata;
        prometheus__write_request__free_unpacked(w, NULL);
    }
    if (rc == SY_OK) {
        check(series == st.series, "as many series as counted");
        check(meta == st.metadata, "as much metadata as counted");
    }
    prw_parts_free(parts, n);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        req, NULL);
    return 0;
}
