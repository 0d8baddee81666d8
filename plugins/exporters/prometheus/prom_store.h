/*
 * prom_store.h - the accumulated state of the `prometheus` exporter: one entry per
 * Prometheus series (metric name plus label set), the metric families they belong
 * to, and one target_info entry per resource. It follows the collector's
 * accumulator: the newest point of each series is kept, delta monotonic sums and
 * delta histograms are added up into cumulative ones, and a series that is not
 * updated for `expiration_ms` is removed.
 *
 * Threads: one store is used from one thread only (the exporter's loop thread runs
 * both consume() and the HTTP server), so nothing here locks.
 *
 * Memory: a series costs one allocation when it is created (its key, labels and
 * value in one block) and none when it is updated, unless the shape of a histogram
 * or summary changes; the key of each incoming point is built in scratch buffers
 * that the store reuses. The number of series is bounded by `max_series`.
 */
#ifndef PROM_STORE_H
#define PROM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_buf.h"
#include "prom_names.h"

/* The Prometheus types of the exposition formats. */
typedef enum prom_kind_e {
    PROM_KIND_GAUGE = 0,
    PROM_KIND_COUNTER,
    PROM_KIND_HISTOGRAM,
    PROM_KIND_SUMMARY,
} prom_kind_t;

/* What a warning is about; the exporter rate-limits each kind on its own. */
typedef enum prom_warn_e {
    PROM_WARN_EXPHISTOGRAM = 0, /* exponential histograms are not exported */
    PROM_WARN_DROPPED,          /* a metric or point the collector would drop too */
    PROM_WARN_CONFLICT,         /* one name, two types */
    PROM_WARN_LIMIT,            /* max_series reached */
    PROM_WARN_COUNT
} prom_warn_t;

/* An entry of one of the store's hash tables; `key` is owned by the entry. */
typedef struct prom_hnode_s {
    struct prom_hnode_s *next;
    uint64_t hash;
    const char *key;
    size_t key_len;
} prom_hnode_t;

typedef struct prom_htab_s {
    prom_hnode_t **buckets;
    size_t mask; /* bucket count - 1 (a power of two), 0 before the first insert */
    size_t count;
} prom_htab_t;

/* A metric family: the Prometheus name, its type and HELP (the first seen wins, as
 * in the collector). Freed when its last series goes. */
typedef struct prom_family_s {
    prom_hnode_t node; /* key: the name */
    const char *name;
    const char *help;
    prom_kind_t kind;
    size_t nseries;
} prom_family_t;

typedef struct prom_exemplar_s {
    double value;
    uint64_t time_ns;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool has_trace_id, has_span_id;
} prom_exemplar_t;

typedef struct prom_series_s {
    prom_hnode_t node; /* key: the series signature */
    prom_family_t *family;
    const char *labels; /* `a="x",b="y"`, sorted by name, escaped; "" for none */
    size_t labels_len;
    uint64_t updated_ms; /* monotonic time of the last update, for expiration */
    uint64_t start_ns, time_ns;
    double value; /* gauge and counter */
    /* Histogram: n bounds and n + 1 per-bucket counts; summary: n quantiles and
     * their values, sorted by quantile. */
    uint64_t count;
    double sum;
    size_t n, cap;
    double *bounds;   /* histogram bounds, or summary quantiles */
    uint64_t *counts; /* histogram only */
    double *qvalues;  /* summary only */
    size_t n_exemplars;
    prom_exemplar_t *exemplars;
} prom_series_t;

/* One resource with both job and instance: its target_info labels. */
typedef struct prom_target_s {
    prom_hnode_t node; /* key: job \xff instance */
    char *labels;
    size_t labels_len;
    uint64_t updated_ms;
} prom_target_t;

typedef struct prom_store_cfg_s {
    syc_prom_namer_t namer;
    bool label_utf8;       /* label names kept as they are (then escaped) */
    size_t n_const_labels; /* const_labels, names already valid */
    char *const *const_label_names;
    char *const *const_label_values;
    bool resource_to_telemetry;
    bool exclude_service_attributes;
    bool without_scope_info;
    bool keep_exemplars;
    uint64_t expiration_ms;
    size_t max_series;
    /* Called for things the exporter should log (rate-limited by the caller). */
    void (*warn)(void *arg, prom_warn_t what, const char *msg);
    void *warn_arg;
} prom_store_cfg_t;

typedef struct prom_pair_s prom_pair_t;

typedef struct prom_store_s {
    prom_store_cfg_t cfg;
    prom_htab_t series;
    prom_htab_t families;
    prom_htab_t targets;
    uint64_t dropped_points; /* points not stored: invalid, conflicting, over the limit */
    /* Scratch space reused from batch to batch. */
    syc_prom_buf_t key, name, rvals, svals, dvals, lnames, lvals, tmp;
    prom_pair_t *pairs;
    size_t n_pairs, cap_pairs;
} prom_store_t;

/* Initializes an empty store; cfg is copied (the arrays it points at must outlive
 * the store). */
void prom_store_init(prom_store_t *s, const prom_store_cfg_t *cfg);
void prom_store_free(prom_store_t *s);

/* Adds every point of a request; returns how many were stored. */
size_t
prom_store_add(prom_store_t *s,
               const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
               uint64_t now_ms);

/* Removes the series and targets not updated since now_ms - expiration_ms. */
void prom_store_expire(prom_store_t *s, uint64_t now_ms);

/* Iteration over a table, for the renderer: call with *node NULL to start; returns
 * NULL at the end. The table must not change during the walk. */
prom_hnode_t *prom_htab_next(const prom_htab_t *t, size_t *bucket, prom_hnode_t *node);

#endif
