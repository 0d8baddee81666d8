/*
 * prw_translate.h - OTLP metrics into Prometheus remote write 1.0 requests
 * (prometheus.WriteRequest, proto/prometheus/remote.proto), as the collector's
 * prometheusremotewrite exporter translates them (pkg/translator/prometheusremotewrite):
 *
 *   gauge                          <name>                       (unit "1": _ratio)
 *   sum, cumulative, monotonic     <name>_total                 counter
 *   sum, cumulative, non-monotonic <name>                       gauge
 *   histogram, cumulative          <name>_bucket{le=...} (+Inf), <name>_sum, <name>_count
 *   summary                        <name>{quantile=...}, <name>_sum, <name>_count
 *   delta or unspecified sums and histograms: dropped (counted)
 *   exponential histograms: dropped (counted; no native histograms here)
 *
 * Labels: the point's attributes (with resource_to_telemetry, the resource's too,
 * which win), translated by plugins/common/prom_names.c and joined with ';' where
 * two keys give one name; job (service.namespace/service.name) and instance
 * (service.instance.id) from the resource; external labels where no attribute
 * gave that name; __name__, le and quantile last. A point flagged "no recorded
 * value" gives Prometheus' stale marker (a NaN) in every series it makes. A
 * target_info series (value 1) per resource with attributes beyond the three
 * service ones, at the newest timestamp of the resource's points.
 *
 * Points of one series within a request become the samples of one TimeSeries,
 * sorted by time. The request is cut into parts whose encoding stays within
 * max_bytes (a single TimeSeries larger than that goes alone).
 *
 * Pure functions of their arguments, no host: any thread.
 */
#ifndef PRW_TRANSLATE_H
#define PRW_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_names.h"

typedef struct prw_cfg_s {
    syc_prom_namer_t namer;
    bool resource_to_telemetry;
    bool target_info;
    bool send_metadata;
    size_t n_external; /* external labels: names valid (checked by the plugin), values set */
    char *const *external_names;
    char *const *external_values;
} prw_cfg_t;

/* What one translation made and left out. */
typedef struct prw_stats_s {
    uint64_t series;           /* TimeSeries written (target_info included) */
    uint64_t samples;          /* samples written */
    uint64_t metadata;         /* MetricMetadata written */
    uint64_t dropped_temporal; /* points of delta / unspecified sums and histograms */
    uint64_t dropped_exphist;  /* points of exponential histograms */
    uint64_t dropped_invalid;  /* points of metrics whose name translates to nothing */
} prw_stats_t;

/* One encoded WriteRequest (uncompressed). */
typedef struct prw_part_s {
    uint8_t *data; /* malloc'ed */
    size_t len;
} prw_part_t;

/*
 * Translates `req` into *nparts WriteRequest encodings of at most max_bytes each
 * (but a single larger series), in *parts (malloc'ed; free with prw_parts_free()).
 * No part when nothing translates. Adds to *st. Returns 0 or SY_ENOMEM (nothing
 * is then handed out).
 */
int prw_translate(
    const prw_cfg_t *cfg,
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
    size_t max_bytes, prw_part_t **parts, size_t *nparts, prw_stats_t *st);

void prw_parts_free(prw_part_t *parts, size_t n);

/* Appends v as Go's strconv.FormatFloat(v, 'f', -1, 64) writes it ("0.005", "100",
 * "+Inf"): the form of the le and quantile labels. */
void prw_float_label(syc_prom_buf_t *b, double v);

#endif
