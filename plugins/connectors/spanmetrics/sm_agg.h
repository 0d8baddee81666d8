/*
 * sm_agg.h - the aggregation of the spanmetrics connector: spans read through the
 * view (never decoded) are counted into series of calls and durations, per
 * resource, and written out as one encoded OTLP ExportMetricsServiceRequest at
 * every flush.
 *
 * A series is identified by its resource and by its data point attributes, kept
 * encoded (the KeyValue messages the output writes), so that the key a span makes
 * is the very bytes that will be written. Everything here runs on the connector's
 * loop thread; nothing is shared.
 */
#ifndef SY_SPANMETRICS_AGG_H
#define SY_SPANMETRICS_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <switchyard/plugin.h>

#include "sm_pb.h"

/* One extra dimension: looked up in the span's attributes, then the resource's;
 * when absent, `def` if there is one, else the dimension is left out. */
typedef struct sm_dim_s {
    const char *name;
    size_t len;
    const char *def; /* NULL: no default */
    size_t def_len;
} sm_dim_t;

/* What the aggregation does, from the configuration (spanmetrics.c fills it). */
typedef struct sm_opts_s {
    const sm_dim_t *dims;
    size_t ndims;
    /* exclude_dimensions of the four default ones */
    bool excl_service, excl_name, excl_kind, excl_status;
    /* resource_metrics_key_attributes: NULL/0 means every attribute */
    const char *const *key_attrs;
    size_t nkey_attrs;
    bool delta;           /* AGGREGATION_TEMPORALITY_DELTA */
    bool hist_disable;    /* histogram.disable */
    bool exponential;     /* histogram.exponential given */
    int32_t max_size;     /* histogram.exponential.max_size */
    const double *bounds; /* explicit bounds, in the unit */
    size_t nbounds;
    double ns_per_unit;     /* 1e6 for ms, 1e9 for s */
    const char *unit;       /* "ms" or "s" */
    const char *name_calls; /* "traces.span.metrics.calls" */
    const char *name_duration;
    bool events;             /* events.enabled: the events metric */
    const char *name_events; /* "traces.span.metrics.events" */
    const sm_dim_t *edims;   /* events.dimensions */
    size_t nedims;
    bool exemplars;
    size_t max_exemplars;       /* per data point and flush interval; 0: none */
    int64_t expiration_ns;      /* metrics_expiration; 0: never */
    size_t cardinality_limit;   /* series per resource; 0: none */
    size_t resource_cache_size; /* resources kept; 0: no bound */
} sm_opts_t;

typedef struct sm_agg_s sm_agg_t;

/* What one sm_agg_consume() saw. */
typedef struct sm_consume_stats_s {
    uint64_t spans;      /* spans counted */
    uint64_t no_service; /* spans skipped: their resource has no service.name */
    uint64_t overflow;   /* spans (and events) counted in an otel.metric.overflow series */
    uint64_t events;     /* span events counted (events.enabled) */
} sm_consume_stats_t;

/* NULL on out of memory. `opts` (and what it points to) must outlive the agg. */
sm_agg_t *sm_agg_new(const sm_opts_t *opts);
void sm_agg_free(sm_agg_t *a);

/*
 * Counts every span of a traces batch into its series. The batch is only read
 * (the caller keeps its reference). now_ns is the start time of series made now.
 * Returns 0, SY_ENOMEM (what was counted stays counted) or SY_EINVAL (a view that
 * does not open or parse).
 */
int sm_agg_consume(sm_agg_t *a, const sy_host_api_t *api, sy_batch_t *batch, int64_t now_ns,
                   sm_consume_stats_t *stats);

/*
 * Writes every series as an encoded ExportMetricsServiceRequest into out (reset
 * first), with time now_ns. *points is set to the number of data points. Nothing
 * changes in the aggregation: call sm_agg_flushed() once the request was handed
 * on, and not at all when it was not (delta counts are then carried over to the
 * next flush). Returns 0 (out->len 0 when there is nothing to send) or SY_ENOMEM.
 */
int sm_agg_build(sm_agg_t *a, int64_t now_ns, sm_buf_t *out, uint64_t *points);

/*
 * After a successful hand-on of what sm_agg_build() wrote at now_ns: delta series
 * start again from zero, exemplars are cleared, resources not seen for
 * metrics_expiration and those beyond resource_metrics_cache_size are dropped.
 * Returns the number of series dropped.
 */
uint64_t sm_agg_flushed(sm_agg_t *a, int64_t now_ns);

/* Series and resources held now. */
size_t sm_agg_series(const sm_agg_t *a);
size_t sm_agg_resources(const sm_agg_t *a);

#endif
