/*
 * debug_normal.c - the debug exporter's summary line and its `normal` verbosity
 * text (one line per span, data point or log record), as the collector's
 * debugexporter writes them.
 *
 * The summary of `basic` counts from the decoded request or the encoded bytes;
 * `normal` reads the request through the host's view, so strings are written
 * whole (pointer and length), NUL bytes included.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "debug_format_internal.h"

/* ------------------------------------------------------------------------ */
/* Counting, for the summary                                                 */
/* ------------------------------------------------------------------------ */

static size_t metric_points(const pb_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

void dbg_summary(sy_signal_t signal, const void *request, char *out, size_t out_len)
{
    size_t resources = 0, items = 0, metrics = 0;
    switch (signal) {
    case SY_SIGNAL_TRACES: {
        const pb_traces_req_t *r = request;
        resources = r->n_resource_spans;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                items += r->resource_spans[i]->scope_spans[j]->n_spans;
        snprintf(out, out_len, "Traces {\"resource spans\": %zu, \"spans\": %zu}", resources,
                 items);
        return;
    }
    case SY_SIGNAL_METRICS: {
        const pb_metrics_req_t *r = request;
        resources = r->n_resource_metrics;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            const pb_resource_metrics_t *rm = r->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                const pb_scope_metrics_t *sm = rm->scope_metrics[j];
                metrics += sm->n_metrics;
                for (size_t k = 0; k < sm->n_metrics; k++)
                    items += metric_points(sm->metrics[k]);
            }
        }
        snprintf(out, out_len,
                 "Metrics {\"resource metrics\": %zu, \"metrics\": %zu, \"data points\": %zu}",
                 resources, metrics, items);
        return;
    }
    case SY_SIGNAL_LOGS: {
        const pb_logs_req_t *r = request;
        resources = r->n_resource_logs;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                items += r->resource_logs[i]->scope_logs[j]->n_log_records;
        snprintf(out, out_len, "Logs {\"resource logs\": %zu, \"log records\": %zu}", resources,
                 items);
        return;
    }
    }
    snprintf(out, out_len, "unknown signal %d", (int)signal);
}

/* ------------------------------------------------------------------------ */
/* Normal verbosity                                                          */
/* ------------------------------------------------------------------------ */

/* "k=v" for each attribute of a node, joined by `sep`, values as AsString(). */
static void put_attrs_joined(dbg_buf_t *b, sy_view_node_t *node, const char *sep)
{
    const sy_host_api_t *api = b->api;
    size_t n = api->view_attr_count(node);
    for (size_t i = 0; i < n; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(node, i, &k, &v) < 0) continue;
        if (i) dbg_buf_puts(b, sep);
        dbg_put_sv(b, &k);
        dbg_buf_put(b, "=", 1);
        dbg_put_value_string(b, &v);
    }
}

/* The "ResourceX #i [schema] k=v ..." and "ScopeX #i name@version [schema] k=v"
 * header lines of normal verbosity. */
static void normal_resource(dbg_buf_t *b, const char *what, size_t i, sy_view_node_t *res)
{
    dbg_buf_printf(b, "%s #%zu", what, i);
    sy_value_t schema = dbg_get(b, res, SY_FIELD_SCHEMA_URL);
    if (dbg_sv_set(&schema)) {
        dbg_buf_puts(b, " [");
        dbg_put_sv(b, &schema);
        dbg_buf_put(b, "]", 1);
    }
    if (b->api->view_attr_count(res)) {
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, res, " ");
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_scope(dbg_buf_t *b, const char *what, size_t i, sy_view_node_t *scope)
{
    dbg_buf_printf(b, "%s #%zu", what, i);
    sy_value_t name = dbg_get(b, scope, SY_FIELD_SCOPE_NAME);
    sy_value_t version = dbg_get(b, scope, SY_FIELD_SCOPE_VERSION);
    sy_value_t schema = dbg_get(b, scope, SY_FIELD_SCHEMA_URL);
    bool any = false;
    if (dbg_sv_set(&name) || dbg_sv_set(&version) || dbg_sv_set(&schema)) dbg_buf_put(b, " ", 1);
    if (dbg_sv_set(&name)) {
        dbg_put_sv(b, &name);
        any = true;
    }
    if (dbg_sv_set(&version)) {
        dbg_buf_put(b, "@", 1);
        dbg_put_sv(b, &version);
        any = true;
    }
    if (dbg_sv_set(&schema)) {
        dbg_buf_puts(b, any ? " [" : "[");
        dbg_put_sv(b, &schema);
        dbg_buf_put(b, "]", 1);
    }
    if (b->api->view_attr_count(scope)) {
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, scope, " ");
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_span(dbg_buf_t *b, sy_view_node_t *sp)
{
    sy_value_t name = dbg_get(b, sp, SY_FIELD_NAME);
    sy_value_t tid = dbg_get(b, sp, SY_FIELD_TRACE_ID);
    sy_value_t sid = dbg_get(b, sp, SY_FIELD_SPAN_ID);
    dbg_put_sv(b, &name);
    dbg_buf_put(b, " ", 1);
    dbg_put_id(b, &tid);
    dbg_buf_put(b, " ", 1);
    dbg_put_id(b, &sid);
    if (b->api->view_attr_count(sp)) {
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, sp, " ");
    }
    dbg_buf_put(b, "\n", 1);
}

/* "name{k=v,...}" that every data point line starts with. */
static void normal_point_head(dbg_buf_t *b, sy_view_node_t *dp)
{
    sy_value_t name = dbg_get(b, dp, SY_FIELD_METRIC_NAME);
    dbg_put_sv(b, &name);
    dbg_buf_put(b, "{", 1);
    put_attrs_joined(b, dp, ",");
    dbg_buf_put(b, "}", 1);
}

static void normal_number_point(dbg_buf_t *b, sy_view_node_t *dp)
{
    normal_point_head(b, dp);
    dbg_buf_put(b, " ", 1);
    sy_value_t v = dbg_get(b, dp, SY_FIELD_VALUE);
    if (v.type == SY_VALUE_INT)
        dbg_buf_printf(b, "%lld", (long long)v.i);
    else if (v.type == SY_VALUE_DOUBLE)
        dbg_put_float_v(b, v.d);
    dbg_buf_put(b, "\n", 1);
}

/* " sum=.. min=.. max=.." of the histogram kinds, as %v; absent ones are EMPTY. */
static void normal_sum_min_max(dbg_buf_t *b, sy_view_node_t *dp)
{
    static const struct {
        sy_field_t f;
        const char *label;
    } fields[] = {{SY_FIELD_SUM, " sum="}, {SY_FIELD_MIN, " min="}, {SY_FIELD_MAX, " max="}};
    for (size_t i = 0; i < 3; i++) {
        sy_value_t v = dbg_get(b, dp, fields[i].f);
        if (v.type != SY_VALUE_DOUBLE) continue;
        dbg_buf_puts(b, fields[i].label);
        dbg_put_float_v(b, v.d);
    }
}

static void normal_histogram_point(dbg_buf_t *b, sy_view_node_t *dp)
{
    const sy_host_api_t *api = b->api;
    normal_point_head(b, dp);
    dbg_buf_printf(b, " count=%llu", (unsigned long long)dbg_get(b, dp, SY_FIELD_COUNT).i);
    normal_sum_min_max(b, dp);
    sy_value_t counts = dbg_get(b, dp, SY_FIELD_BUCKET_COUNTS);
    sy_value_t bounds = dbg_get(b, dp, SY_FIELD_EXPLICIT_BOUNDS);
    sy_value_iter_t ci = {.value = &counts}, bi = {.value = &bounds};
    sy_value_t c, bound;
    while (api->view_value_next(&ci, NULL, &c) == 1) {
        dbg_buf_put(b, " ", 1);
        if (api->view_value_next(&bi, NULL, &bound) == 1) {
            dbg_buf_puts(b, "le");
            dbg_put_float_v(b, bound.d);
            dbg_buf_put(b, "=", 1);
        }
        dbg_buf_printf(b, "%llu", (unsigned long long)c.i);
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_exp_buckets(dbg_buf_t *b, sy_view_node_t *dp, sy_field_t offset_field,
                               sy_field_t buckets_field, double base)
{
    sy_value_t buckets = dbg_get(b, dp, buckets_field);
    int64_t offset = dbg_get(b, dp, offset_field).i;
    sy_value_iter_t it = {.value = &buckets};
    sy_value_t c;
    for (size_t k = 0; b->api->view_value_next(&it, NULL, &c) == 1; k++) {
        dbg_buf_puts(b, " le");
        dbg_put_float_v(b, pow(base, (double)offset + (double)k));
        dbg_buf_printf(b, "=%llu", (unsigned long long)c.i);
    }
}

static void normal_exp_histogram_point(dbg_buf_t *b, sy_view_node_t *dp)
{
    normal_point_head(b, dp);
    dbg_buf_printf(b, " count=%llu", (unsigned long long)dbg_get(b, dp, SY_FIELD_COUNT).i);
    normal_sum_min_max(b, dp);
    int32_t scale = (int32_t)dbg_get(b, dp, SY_FIELD_SCALE).i;
    double base = pow(2, pow(2, -(double)scale));
    normal_exp_buckets(b, dp, SY_FIELD_NEGATIVE_OFFSET, SY_FIELD_NEGATIVE_BUCKETS, base);
    normal_exp_buckets(b, dp, SY_FIELD_POSITIVE_OFFSET, SY_FIELD_POSITIVE_BUCKETS, base);
    uint64_t zero_count = (uint64_t)dbg_get(b, dp, SY_FIELD_ZERO_COUNT).i;
    if (zero_count > 0) {
        dbg_buf_puts(b, " zero_count");
        dbg_put_float_v(b, dbg_get(b, dp, SY_FIELD_ZERO_THRESHOLD).d);
        dbg_buf_printf(b, "=%llu", (unsigned long long)zero_count);
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_summary_point(dbg_buf_t *b, sy_view_node_t *dp)
{
    normal_point_head(b, dp);
    dbg_buf_printf(b, " count=%llu sum=", (unsigned long long)dbg_get(b, dp, SY_FIELD_COUNT).i);
    dbg_put_float_f(b, dbg_get(b, dp, SY_FIELD_SUM).d);
    sy_value_t q = dbg_get(b, dp, SY_FIELD_QUANTILES);
    sy_value_iter_t it = {.value = &q};
    sy_value_t k, v;
    while (b->api->view_value_next(&it, &k, &v) == 1) {
        dbg_buf_puts(b, " q");
        dbg_put_float_v(b, k.d);
        dbg_buf_put(b, "=", 1);
        dbg_put_float_v(b, v.d);
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_item(dbg_buf_t *b, sy_view_node_t *item)
{
    switch (b->api->view_kind(item)) {
    case SY_NODE_SPAN:
        normal_span(b, item);
        break;
    case SY_NODE_NUMBER_POINT:
        normal_number_point(b, item);
        break;
    case SY_NODE_HISTOGRAM_POINT:
        normal_histogram_point(b, item);
        break;
    case SY_NODE_EXP_HISTOGRAM_POINT:
        normal_exp_histogram_point(b, item);
        break;
    case SY_NODE_SUMMARY_POINT:
        normal_summary_point(b, item);
        break;
    case SY_NODE_LOG: {
        sy_value_t body = dbg_get(b, item, SY_FIELD_BODY);
        dbg_put_value_string(b, &body);
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, item, " ");
        dbg_buf_put(b, "\n", 1);
        break;
    }
    default:
        break;
    }
}

void dbg_format_normal(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view)
{
    static const char *const names[][2] = {{"ResourceTraces", "ScopeTraces"},
                                           {"ResourceMetrics", "ScopeMetrics"},
                                           {"ResourceLog", "ScopeLog"}};
    const char *const *what = signal == SY_SIGNAL_TRACES    ? names[0]
                              : signal == SY_SIGNAL_METRICS ? names[1]
                                                            : names[2];
    const sy_host_api_t *api = b->api;
    sy_view_node_t *root = api->view_root(view);
    size_t nres = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t i = 0; i < nres; i++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, i);
        normal_resource(b, what[0], i, res);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t j = 0; j < nsc; j++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, j);
            /* The collector numbers scope lines with the resource's index; so do we,
             * to print the same text. */
            normal_scope(b, what[1], i, sc);
            /* A metrics scope's items are its metrics' data points, in order. */
            size_t n = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t k = 0; k < n; k++)
                normal_item(b, api->view_at(sc, SY_VIEW_ITEMS, k));
        }
    }
}

void dbg_summary_view(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view, char *out, size_t out_len)
{
    const sy_host_api_t *api = b->api;
    sy_view_node_t *root = api->view_root(view);
    size_t resources = api->view_count(root, SY_VIEW_RESOURCES), metrics = 0, items = 0;
    for (size_t i = 0; i < resources; i++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, i);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t j = 0; j < nsc; j++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, j);
            items += api->view_count(sc, SY_VIEW_ITEMS);
            if (signal == SY_SIGNAL_METRICS) metrics += api->view_count(sc, SY_VIEW_METRICS);
        }
    }
    switch (signal) {
    case SY_SIGNAL_TRACES:
        snprintf(out, out_len, "Traces {\"resource spans\": %zu, \"spans\": %zu}", resources,
                 items);
        return;
    case SY_SIGNAL_METRICS:
        snprintf(out, out_len,
                 "Metrics {\"resource metrics\": %zu, \"metrics\": %zu, \"data points\": %zu}",
                 resources, metrics, items);
        return;
    case SY_SIGNAL_LOGS:
        snprintf(out, out_len, "Logs {\"resource logs\": %zu, \"log records\": %zu}", resources,
                 items);
        return;
    }
    snprintf(out, out_len, "unknown signal %d", (int)signal);
}

static void count_metrics_in_scope(void *arg, const uint8_t *p, size_t len)
{
    long n = dbg_wire_each(p, len, 2, NULL, NULL); /* ScopeMetrics.metrics */
    if (n > 0) *(size_t *)arg += (size_t)n;
}

static void count_metrics_in_resource(void *arg, const uint8_t *p, size_t len)
{
    dbg_wire_each(p, len, 2, count_metrics_in_scope, arg); /* ResourceMetrics.scope_metrics */
}

int dbg_summary_encoded(sy_signal_t signal, uint64_t items, const uint8_t *bytes, size_t len,
                        char *out, size_t out_len)
{
    size_t metrics = 0;
    long resources = dbg_wire_each(
        bytes, len, 1, signal == SY_SIGNAL_METRICS ? count_metrics_in_resource : NULL, &metrics);
    if (resources < 0) return -1;
    switch (signal) {
    case SY_SIGNAL_TRACES:
        snprintf(out, out_len, "Traces {\"resource spans\": %ld, \"spans\": %" PRIu64 "}",
                 resources, items);
        return 0;
    case SY_SIGNAL_METRICS:
        snprintf(out, out_len,
                 "Metrics {\"resource metrics\": %ld, \"metrics\": %zu, \"data points\": %" PRIu64
                 "}",
                 resources, metrics, items);
        return 0;
    case SY_SIGNAL_LOGS:
        snprintf(out, out_len, "Logs {\"resource logs\": %ld, \"log records\": %" PRIu64 "}",
                 resources, items);
        return 0;
    }
    return -1;
}
