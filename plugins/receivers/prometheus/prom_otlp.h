/*
 * prom_otlp.h - one scrape of one target into an OTLP ExportMetricsServiceRequest,
 * as the collector's prometheusreceiver maps it (README.md has the table): target
 * labels and metric_relabel_configs applied to every sample, samples grouped into
 * metrics by their family's # TYPE, start times from _created or from the first
 * time a series was seen (reset when a cumulative value goes down), stale points
 * (flag NoRecordedValue) for series that disappeared, and the scrape's own
 * up / scrape_* gauges.
 *
 * No plugin API: the request is made of protobuf-c structs in the caller's arena.
 */
#ifndef SY_PROM_OTLP_H
#define SY_PROM_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prom_parse.h"
#include "prom_relabel.h"

/* What the collector writes as the scope name of everything it scrapes. */
#define PROM_SCOPE_NAME \
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"

/* One target, from the configuration. */
typedef struct prom_target_s {
    const char *job;
    const char *instance; /* host:port */
    const char *scheme;   /* http | https */
    prom_label_t *labels; /* static_configs[].labels, without job and instance */
    size_t nlabels;
    bool honor_labels;
    bool honor_timestamps;
    prom_relabel_t *rules; /* metric_relabel_configs */
    size_t nrules;
} prom_target_t;

/* What a target remembers between scrapes: each series' start time and last
 * value, and which scrape saw it last. */
typedef struct prom_series_state_s {
    prom_map_t series;       /* key -> series (malloc'ed) */
    uint32_t gen;            /* scrapes so far */
    uint64_t *sample_hashes; /* of the samples of the last successful scrape, sorted */
    size_t nsample_hashes;
} prom_series_state_t;

typedef struct prom_stats_s {
    size_t scraped;      /* scrape_samples_scraped */
    size_t post_relabel; /* scrape_samples_post_metric_relabeling */
    size_t added;        /* scrape_series_added: series not in the previous scrape */
    size_t stale;        /* stale points written */
    size_t points;       /* data points in the request */
    size_t dropped;      /* samples that fit no metric (gaugehistogram, stray suffixes) */
} prom_stats_t;

/*
 * Builds the request of one scrape. `doc` is the parsed page, or NULL when the
 * scrape failed (up = 0, and every series of the previous scrape goes stale).
 * `scrape_ns` is the scrape's time, `duration_s` how long it took. Everything is
 * allocated from `arena`. Returns the request
 * (Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *),
 * or NULL on out of memory.
 */
void *prom_build(const prom_target_t *t, prom_series_state_t *st, const prom_doc_t *doc,
                 uint64_t scrape_ns, double duration_s, const char *scope_version,
                 prom_arena_t *arena, prom_stats_t *stats);

void prom_series_state_free(prom_series_state_t *st);

#endif
