/*
 * spanmetrics.c - the spanmetrics connector: the end of traces pipelines and the
 * start of metrics pipelines. Every span it is given is counted (calls) and timed
 * (duration histogram) per service, span name, kind, status and configured
 * dimensions, as the OpenTelemetry Collector's spanmetricsconnector does; every
 * metrics_flush_interval the series are written as one OTLP metrics request and
 * emitted downstream.
 *
 * Spans are read through the view (no decode); the output is encoded here
 * (sm_pb.c). The aggregation is sm_agg.c, the exponential histogram sm_expo.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "sm_agg.h"

typedef struct sm_config_s {
    const sy_cfg_node_t *dimensions;
    sy_cfg_strlist_t exclude_dimensions;
    const sy_cfg_node_t *calls_dimensions;
    int64_t dimensions_cache_size;
    int64_t resource_metrics_cache_size;
    sy_cfg_strlist_t resource_metrics_key_attributes;
    char *aggregation_temporality;
    bool hist_disable;
    char *hist_unit;
    bool hist_explicit;
    sy_cfg_strlist_t hist_buckets;
    bool hist_exponential;
    int64_t hist_max_size;
    const sy_cfg_node_t *hist_dimensions;
    int64_t metrics_flush_interval;
    int64_t metrics_expiration;
    int64_t metric_timestamp_cache_size;
    char *namespace_;
    bool exemplars_enabled;
    int64_t exemplars_max_per_data_point;
    bool events_enabled;
    const sy_cfg_node_t *events_dimensions;
    sy_cfg_strlist_t include_instrumentation_scope;
    int64_t aggregation_cardinality_limit;
} sm_config_t;

static const sy_config_field_t sm_fields[] = {
    {SY_CFG_FIELD("dimensions", SY_CFG_RAW, sm_config_t, dimensions),
     .description = "Extra dimensions, a list of {name, default}: looked up in the span's "
                    "attributes, then the resource's; without a value and a default the "
                    "dimension is left out."},
    {SY_CFG_FIELD("exclude_dimensions", SY_CFG_STRLIST, sm_config_t, exclude_dimensions),
     .description = "Default dimensions to leave out: service.name, span.name, span.kind, "
                    "status.code."},
    {SY_CFG_FIELD("calls_dimensions", SY_CFG_RAW, sm_config_t, calls_dimensions),
     .description = "Not supported: refused when it lists anything."},
    {SY_CFG_FIELD("dimensions_cache_size", SY_CFG_INT, sm_config_t, dimensions_cache_size),
     .default_value = "1000", .min = "0",
     .description = "Deprecated in the collector (use aggregation_cardinality_limit); "
                    "accepted and without effect."},
    {SY_CFG_FIELD("resource_metrics_cache_size", SY_CFG_INT, sm_config_t,
                  resource_metrics_cache_size),
     .default_value = "1000", .min = "1",
     .description = "Resources kept: beyond this, the least recently seen are forgotten "
                    "after a flush (their cumulative series start again)."},
    {SY_CFG_FIELD("resource_metrics_key_attributes", SY_CFG_STRLIST, sm_config_t,
                  resource_metrics_key_attributes),
     .description = "Resource attributes that identify a resource (default: all of them)."},
    {SY_CFG_FIELD("aggregation_temporality", SY_CFG_STRING, sm_config_t, aggregation_temporality),
     .default_value = "AGGREGATION_TEMPORALITY_CUMULATIVE",
     .pattern = "AGGREGATION_TEMPORALITY_CUMULATIVE|AGGREGATION_TEMPORALITY_DELTA",
     .description = "AGGREGATION_TEMPORALITY_CUMULATIVE or AGGREGATION_TEMPORALITY_DELTA."},
    {SY_CFG_FIELD("histogram.disable", SY_CFG_BOOL, sm_config_t, hist_disable),
     .default_value = "false", .description = "No duration histogram at all."},
    {SY_CFG_FIELD("histogram.unit", SY_CFG_STRING, sm_config_t, hist_unit), .default_value = "ms",
     .pattern = "ms|s", .description = "Unit of the durations: ms or s."},
    {SY_CFG_FIELD("histogram.explicit", SY_CFG_PRESENT, sm_config_t, hist_explicit),
     .description = "(whether an explicit-bucket histogram is configured; the default)"},
    {SY_CFG_FIELD("histogram.explicit.buckets", SY_CFG_STRLIST, sm_config_t, hist_buckets),
     .description = "Bucket bounds as durations (2ms, 1.5s), ascending. Default: 2ms, 4ms, "
                    "6ms, 8ms, 10ms, 50ms, 100ms, 200ms, 400ms, 800ms, 1s, 1400ms, 2s, 5s, "
                    "10s, 15s."},
    {SY_CFG_FIELD("histogram.exponential", SY_CFG_PRESENT, sm_config_t, hist_exponential),
     .description = "(whether an exponential histogram is configured)"},
    {SY_CFG_FIELD("histogram.exponential.max_size", SY_CFG_INT, sm_config_t, hist_max_size),
     .default_value = "160", .min = "2", .max = "16384",
     .description = "Most buckets of an exponential histogram."},
    {SY_CFG_FIELD("histogram.dimensions", SY_CFG_RAW, sm_config_t, hist_dimensions),
     .description = "Not supported: refused when it lists anything."},
    {SY_CFG_FIELD("metrics_flush_interval", SY_CFG_DURATION, sm_config_t, metrics_flush_interval),
     .default_value = "60s", .min = "1ms", .description = "How often the metrics are emitted."},
    {SY_CFG_FIELD("metrics_expiration", SY_CFG_DURATION, sm_config_t, metrics_expiration),
     .default_value = "0s", .min = "0s",
     .description = "A resource with no span for this long is no longer emitted; 0: never."},
    {SY_CFG_FIELD("metric_timestamp_cache_size", SY_CFG_INT, sm_config_t,
                  metric_timestamp_cache_size),
     .default_value = "1000", .min = "1",
     .description = "Delta only, accepted: a delta series not counted in an interval is "
                    "forgotten here, whatever the size."},
    {SY_CFG_FIELD("namespace", SY_CFG_STRING, sm_config_t, namespace_),
     .default_value = "traces.span.metrics",
     .description = "Prefix of the metric names (namespace.calls); empty: none."},
    {SY_CFG_FIELD("exemplars.enabled", SY_CFG_BOOL, sm_config_t, exemplars_enabled),
     .default_value = "false",
     .description = "Attach spans (trace and span id, duration) as exemplars."},
    {SY_CFG_FIELD("exemplars.max_per_data_point", SY_CFG_INT, sm_config_t,
                  exemplars_max_per_data_point),
     .default_value = "5", .min = "0",
     .description = "Most exemplars of a data point per flush interval (the first spans); "
                    "0: none."},
    {SY_CFG_FIELD("events.enabled", SY_CFG_BOOL, sm_config_t, events_enabled),
     .default_value = "false",
     .description = "Count span events in a third metric, events (namespace.events)."},
    {SY_CFG_FIELD("events.dimensions", SY_CFG_RAW, sm_config_t, events_dimensions),
     .description = "With events.enabled (required then): the event attributes, a list of "
                    "{name, default}, added to the dimensions of the events metric."},
    {SY_CFG_FIELD("include_instrumentation_scope", SY_CFG_STRLIST, sm_config_t,
                  include_instrumentation_scope),
     .description = "Not supported: refused when it lists anything."},
    {SY_CFG_FIELD("aggregation_cardinality_limit", SY_CFG_INT, sm_config_t,
                  aggregation_cardinality_limit),
     .default_value = "0", .min = "0",
     .description = "Most series per resource and metric; the spans (events) of any further series "
                    "are counted "
                    "in one series with the attribute otel.metric.overflow=true. 0: no limit."},
};

/* The collector's default buckets, in milliseconds. */
static const double default_bounds_ms[] = {2,   4,   6,    8,    10,   50,   100,   200,
                                           400, 800, 1000, 1400, 2000, 5000, 10000, 15000};

typedef struct sm_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const sm_config_t *cfg;
    sm_opts_t opts;
    sm_dim_t *dims, *edims;
    double *bounds;
    char *name_calls, *name_duration, *name_events;
    sm_agg_t *agg;
    sy_timer_t *timer;
    sm_buf_t out;
    int64_t last_warn_ns;
    sy_metric_t *m_spans, *m_events, *m_no_service, *m_overflow, *m_points, *m_flushes, *m_refused,
        *m_failed, *m_series, *m_dropped;
} sm_state_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * A Go duration ("2ms", "1.5s", "1h30m", "100us"), or a bare integer of
 * nanoseconds (what a YAML number decodes to in the collector). Returns 0 with
 * *ns set, or -1.
 */
static int parse_duration(const char *s, double *ns)
{
    static const struct {
        const char *u;
        double ns;
    } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long whole = strtoll(s, &end, 10);
    if (!*end && errno == 0) {
        *ns = (double)whole;
        return 0;
    }
    double total = 0;
    const char *p = s;
    if (*p == '+') p++;
    if (strcmp(p, "0") == 0) {
        *ns = 0;
        return 0;
    }
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.')) return -1;
        double v = strtod(p, &end);
        if (end == p) return -1;
        p = end;
        size_t best = 0, bestlen = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].u);
            if (strncmp(p, units[i].u, l) == 0 && l > bestlen) {
                best = i;
                bestlen = l;
            }
        }
        if (!bestlen) return -1;
        total += v * units[best].ns;
        p += bestlen;
    }
    *ns = total;
    return 0;
}

static bool has_entries(const sy_host_api_t *api, const sy_cfg_node_t *n)
{
    return n && api->cfg_kind(n) == 'l' && api->cfg_len(n) > 0;
}

static const char *const default_dims[] = {"service.name", "span.name", "span.kind", "status.code"};

/* A list of {name, default} (dimensions, events.dimensions), as the collector
 * checks it: every entry named, no name of the four defaults, none twice. */
static int validate_dims(const sy_host_api_t *api, const sy_cfg_node_t *list, const char *what,
                         char *err, size_t err_len)
{
    if (!list || api->cfg_kind(list) == 'n') return SY_OK;
    if (api->cfg_kind(list) != 'l') {
        snprintf(err, err_len, "%s: %s must be a list of {name, default}", api->cfg_where(list),
                 what);
        return SY_EINVAL;
    }
    size_t n = api->cfg_len(list);
    for (size_t i = 0; i < n; i++) {
        const sy_cfg_node_t *d = api->cfg_at(list, i, NULL);
        const sy_cfg_node_t *name = api->cfg_kind(d) == 'm' ? api->cfg_get(d, "name") : NULL;
        if (!name || api->cfg_kind(name) != 's' || !*api->cfg_scalar(name)) {
            snprintf(err, err_len, "%s: failed validating %s: a dimension needs a name",
                     api->cfg_where(d), what);
            return SY_EINVAL;
        }
        for (size_t k = 0; k < api->cfg_len(d); k++) {
            const char *key = NULL;
            const sy_cfg_node_t *v = api->cfg_at(d, k, &key);
            if (strcmp(key, "name") != 0 && strcmp(key, "default") != 0) {
                snprintf(err, err_len, "%s: %s: unknown key %s (name, default)", api->cfg_where(v),
                         what, key);
                return SY_EINVAL;
            }
            if (api->cfg_kind(v) != 's' && api->cfg_kind(v) != 'n') {
                snprintf(err, err_len, "%s: %s: %s must be a scalar", api->cfg_where(v), what, key);
                return SY_EINVAL;
            }
        }
        const char *nm = api->cfg_scalar(name);
        for (size_t k = 0; k < 4; k++)
            if (strcmp(nm, default_dims[k]) == 0) {
                snprintf(err, err_len, "%s: failed validating %s: duplicate dimension name %s",
                         api->cfg_where(name), what, nm);
                return SY_EINVAL;
            }
        for (size_t j = 0; j < i; j++) {
            const sy_cfg_node_t *o = api->cfg_at(list, j, NULL);
            if (strcmp(api->cfg_scalar(api->cfg_get(o, "name")), nm) == 0) {
                snprintf(err, err_len, "%s: failed validating %s: duplicate dimension name %s",
                         api->cfg_where(name), what, nm);
                return SY_EINVAL;
            }
        }
    }
    return SY_OK;
}

/* The checks a field table cannot make; the collector's wording where it has one. */
static int sm_validate2(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                        char *err, size_t err_len)
{
    (void)node;
    const sm_config_t *c = config;
    if (c->hist_explicit && c->hist_exponential) {
        snprintf(err, err_len, "use either `explicit` or `exponential` buckets histogram");
        return SY_EINVAL;
    }
    if (has_entries(api, c->calls_dimensions) || has_entries(api, c->hist_dimensions) ||
        c->include_instrumentation_scope.count) {
        snprintf(err, err_len,
                 "calls_dimensions, histogram.dimensions and include_instrumentation_scope are "
                 "not supported by this spanmetrics connector");
        return SY_EINVAL;
    }
    if (validate_dims(api, c->dimensions, "dimensions", err, err_len) != SY_OK) return SY_EINVAL;
    if (c->events_enabled) {
        if (!has_entries(api, c->events_dimensions)) {
            snprintf(err, err_len,
                     "failed validating event dimensions: no dimensions configured for events");
            return SY_EINVAL;
        }
        if (validate_dims(api, c->events_dimensions, "event dimensions", err, err_len) != SY_OK)
            return SY_EINVAL;
    }
    double prev = -1;
    for (size_t i = 0; i < c->hist_buckets.count; i++) {
        double ns;
        if (parse_duration(c->hist_buckets.items[i], &ns) != 0) {
            snprintf(err, err_len, "histogram.explicit.buckets: \"%s\" is not a duration",
                     c->hist_buckets.items[i]);
            return SY_EINVAL;
        }
        if (ns <= prev) {
            snprintf(err, err_len, "histogram.explicit.buckets must be in ascending order (\"%s\")",
                     c->hist_buckets.items[i]);
            return SY_EINVAL;
        }
        prev = ns;
    }
    return SY_OK;
}

static void warn_limited(sm_state_t *s, const char *what, int rc)
{
    int64_t now = now_ns();
    if (now - s->last_warn_ns < 10 * (int64_t)1000000000) return;
    s->last_warn_ns = now;
    SY_LOG(s->api, s->inst, SY_LOG_WARN, "%s (%d); kept for the next flush", what, rc);
}

/* Builds and emits the metrics; on success the aggregation moves on. */
static void sm_flush(sm_state_t *s)
{
    const sy_host_api_t *api = s->api;
    int64_t now = now_ns();
    uint64_t points = 0;
    if (sm_agg_build(s->agg, now, &s->out, &points) != SY_OK) {
        api->metric_add(s->m_failed, 1);
        warn_limited(s, "out of memory building the metrics", SY_ENOMEM);
        return;
    }
    if (s->out.len == 0) return;
    char err[256] = "";
    sy_batch_t *b = api->batch_new(s->inst, SY_SIGNAL_METRICS);
    uint8_t *p = b ? api->batch_alloc(b, s->out.len) : NULL;
    int rc = SY_ENOMEM;
    if (p) {
        memcpy(p, s->out.data, s->out.len);
        rc = api->batch_set_encoded(b, p, s->out.len, err, sizeof(err));
    }
    if (rc == SY_OK) rc = api->emit(s->inst, b);
    if (rc == SY_OK) {
        api->metric_add(s->m_flushes, 1);
        api->metric_add(s->m_points, (int64_t)points);
        api->metric_add(s->m_dropped, (int64_t)sm_agg_flushed(s->agg, now));
        api->metric_set(s->m_series, (int64_t)sm_agg_series(s->agg));
        return;
    }
    if (b) api->batch_release(b);
    if (rc == SY_EAGAIN) {
        api->metric_add(s->m_refused, 1);
        warn_limited(s, "the metrics pipelines are full", rc);
    } else {
        api->metric_add(s->m_failed, 1);
        if (*err)
            SY_LOG(api, s->inst, SY_LOG_ERROR, "the metrics do not encode: %s", err);
        else
            warn_limited(s, "the metrics could not be emitted", rc);
    }
}

static void on_tick(void *arg)
{
    sm_flush(arg);
}

static int sm_consume(void *state, sy_batch_t *batch)
{
    sm_state_t *s = state;
    sm_consume_stats_t st;
    int rc = sm_agg_consume(s->agg, s->api, batch, now_ns(), &st);
    s->api->metric_add(s->m_spans, (int64_t)st.spans);
    if (st.no_service) s->api->metric_add(s->m_no_service, (int64_t)st.no_service);
    if (st.overflow) s->api->metric_add(s->m_overflow, (int64_t)st.overflow);
    if (st.events) s->api->metric_add(s->m_events, (int64_t)st.events);
    s->api->metric_set(s->m_series, (int64_t)sm_agg_series(s->agg));
    if (rc != SY_OK) {
        /* What was counted stays counted; the rest of the batch cannot be. */
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "spans of a batch not counted (%d)", rc);
    }
    s->api->batch_release(batch);
    return SY_OK;
}

static char *metric_name(const char *ns, const char *name)
{
    size_t nl = ns ? strlen(ns) : 0;
    char *out = malloc(nl + strlen(name) + 2);
    if (!out) return NULL;
    if (nl)
        sprintf(out, "%s.%s", ns, name);
    else
        strcpy(out, name);
    return out;
}

/* The {name, default} entries of a list that validate_dims() accepted, pointing
 * into the configuration (valid for the instance's life). */
static int parse_dims(const sy_host_api_t *api, const sy_cfg_node_t *list, sm_dim_t **out,
                      size_t *n)
{
    *n = list && api->cfg_kind(list) == 'l' ? api->cfg_len(list) : 0;
    *out = calloc(*n ? *n : 1, sizeof(**out));
    if (!*out) return SY_ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        const sy_cfg_node_t *d = api->cfg_at(list, i, NULL);
        const char *name = api->cfg_scalar(api->cfg_get(d, "name"));
        const sy_cfg_node_t *def = api->cfg_get(d, "default");
        (*out)[i].name = name;
        (*out)[i].len = strlen(name);
        if (def && api->cfg_kind(def) == 's') {
            (*out)[i].def = api->cfg_scalar(def);
            (*out)[i].def_len = strlen((*out)[i].def);
        }
    }
    return SY_OK;
}

static void sm_destroy(void *state)
{
    sm_state_t *s = state;
    if (!s) return;
    sm_agg_free(s->agg);
    sm_buf_free(&s->out);
    free(s->dims);
    free(s->edims);
    free(s->bounds);
    free(s->name_calls);
    free(s->name_duration);
    free(s->name_events);
    free(s);
}

static int sm_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    const sm_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) return SY_ENOTSUP;
    char err[256];
    if (sm_validate2(api, NULL, c, err, sizeof(err)) != SY_OK) { /* a host older than 1.3 */
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        return SY_EINVAL;
    }
    sm_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = c;
    sm_opts_t *o = &s->opts;

    size_t nd = 0, ned = 0;
    if (parse_dims(api, c->dimensions, &s->dims, &nd) != SY_OK ||
        parse_dims(api, c->events_dimensions, &s->edims, &ned) != SY_OK)
        goto nomem;
    o->dims = s->dims;
    o->ndims = nd;
    o->events = c->events_enabled;
    o->edims = s->edims;
    o->nedims = ned;
    for (size_t i = 0; i < c->exclude_dimensions.count; i++) {
        const char *x = c->exclude_dimensions.items[i];
        o->excl_service |= strcmp(x, "service.name") == 0;
        o->excl_name |= strcmp(x, "span.name") == 0;
        o->excl_kind |= strcmp(x, "span.kind") == 0;
        o->excl_status |= strcmp(x, "status.code") == 0;
    }
    o->key_attrs = (const char *const *)c->resource_metrics_key_attributes.items;
    o->nkey_attrs = c->resource_metrics_key_attributes.count;
    o->delta = strcmp(c->aggregation_temporality, "AGGREGATION_TEMPORALITY_DELTA") == 0;
    o->hist_disable = c->hist_disable;
    o->exponential = c->hist_exponential;
    o->max_size = (int32_t)c->hist_max_size;
    bool seconds = strcmp(c->hist_unit, "s") == 0;
    o->unit = seconds ? "s" : "ms";
    o->ns_per_unit = seconds ? 1e9 : 1e6;
    size_t nb = c->hist_buckets.count ? c->hist_buckets.count
                                      : sizeof(default_bounds_ms) / sizeof(default_bounds_ms[0]);
    s->bounds = calloc(nb, sizeof(double));
    if (!s->bounds) goto nomem;
    for (size_t i = 0; i < nb; i++) {
        if (c->hist_buckets.count) {
            double ns = 0;
            parse_duration(c->hist_buckets.items[i], &ns); /* checked by validate */
            s->bounds[i] = ns / o->ns_per_unit;
        } else {
            s->bounds[i] = seconds ? default_bounds_ms[i] / 1000 : default_bounds_ms[i];
        }
    }
    o->bounds = s->bounds;
    o->nbounds = nb;
    s->name_calls = metric_name(c->namespace_, "calls");
    s->name_duration = metric_name(c->namespace_, "duration");
    s->name_events = metric_name(c->namespace_, "events");
    if (!s->name_calls || !s->name_duration || !s->name_events) goto nomem;
    o->name_calls = s->name_calls;
    o->name_duration = s->name_duration;
    o->name_events = s->name_events;
    o->exemplars = c->exemplars_enabled;
    o->max_exemplars = (size_t)c->exemplars_max_per_data_point;
    o->expiration_ns = c->metrics_expiration;
    o->cardinality_limit = (size_t)c->aggregation_cardinality_limit;
    o->resource_cache_size = (size_t)c->resource_metrics_cache_size;
    s->agg = sm_agg_new(o);
    if (!s->agg) goto nomem;

    s->m_spans = api->metric_register(inst, "connector_spanmetrics_spans",
                                      "Spans counted into span metrics.", SY_METRIC_COUNTER);
    s->m_events = api->metric_register(inst, "connector_spanmetrics_events",
                                       "Span events counted (events.enabled).", SY_METRIC_COUNTER);
    s->m_no_service =
        api->metric_register(inst, "connector_spanmetrics_spans_without_service",
                             "Spans skipped: their resource has no service.name (as the "
                             "collector).",
                             SY_METRIC_COUNTER);
    s->m_overflow = api->metric_register(
        inst, "connector_spanmetrics_overflow_spans",
        "Spans counted in the otel.metric.overflow series (aggregation_cardinality_limit).",
        SY_METRIC_COUNTER);
    s->m_points = api->metric_register(inst, "connector_spanmetrics_data_points",
                                       "Data points emitted.", SY_METRIC_COUNTER);
    s->m_flushes = api->metric_register(inst, "connector_spanmetrics_flushes",
                                        "Metrics requests emitted.", SY_METRIC_COUNTER);
    s->m_refused = api->metric_register(
        inst, "connector_spanmetrics_emit_refused",
        "Flushes refused by a full metrics pipeline (SY_EAGAIN): the metrics are kept for the "
        "next flush.",
        SY_METRIC_COUNTER);
    s->m_failed = api->metric_register(
        inst, "connector_spanmetrics_emit_failed",
        "Flushes that failed otherwise (out of memory, shutting down): kept for the next flush.",
        SY_METRIC_COUNTER);
    s->m_series =
        api->metric_register(inst, "connector_spanmetrics_series", "Series held.", SY_METRIC_GAUGE);
    s->m_dropped =
        api->metric_register(inst, "connector_spanmetrics_series_dropped",
                             "Series forgotten: expired, evicted, or delta series with nothing "
                             "new.",
                             SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
nomem:
    sm_destroy(s);
    return SY_ENOMEM;
}

static int sm_start(void *state)
{
    sm_state_t *s = state;
    uint64_t ms = (uint64_t)(s->cfg->metrics_flush_interval / 1000000);
    if (ms == 0) ms = 1;
    s->timer = s->api->timer_start(s->inst, ms, ms, on_tick, s);
    if (!s->timer) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not start the flush timer");
        return SY_ERROR;
    }
    return SY_OK;
}

/* Emits what is held one last time: the metrics pipelines drain after us. */
static void sm_shutdown(void *state)
{
    sm_state_t *s = state;
    if (s->timer) s->api->timer_stop(s->timer);
    s->timer = NULL;
    sm_flush(s);
}

static const sy_plugin_t sm_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_CONNECTOR,
    .type = "spanmetrics",
    .signals = SY_SIGNAL_TRACES,
    .version = "0.1.0",
    .description = "Aggregates request, error and duration (R.E.D.) metrics from spans.",
    SY_CFG_TABLE(sm_fields),
    .config_size = sizeof(sm_config_t),
    .validate2 = sm_validate2,
    .create = sm_create,
    .start = sm_start,
    .consume = sm_consume,
    .shutdown = sm_shutdown,
    .destroy = sm_destroy,
    .connects = {SY_SIGNAL_METRICS, 0, 0},
};

SY_PLUGIN_DEFINE(sm_plugin)
