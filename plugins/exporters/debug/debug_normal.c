/*
 * debug_normal.c - the debug exporter's summary line and its `normal` verbosity
 * text (one line per span, data point or log record), as the collector's
 * debugexporter writes them.
 *
 * Every request field may be absent (NULL) in a decoded request that came from
 * a peer; each access below checks for it.
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

/* "k=v" for each attribute, joined by `sep`, values as AsString(). */
static void put_attrs_joined(dbg_buf_t *b, pb_kv_t *const *kv, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        if (i) dbg_buf_puts(b, sep);
        dbg_buf_puts(b, dbg_str(kv[i]->key));
        dbg_buf_put(b, "=", 1);
        dbg_put_value_string(b, kv[i]->value);
    }
}

/* The "ResourceX #i [schema] k=v ..." and "ScopeX #i name@version [schema] k=v"
 * header lines of normal verbosity. */
static void normal_resource(dbg_buf_t *b, const char *what, size_t i, const char *schema_url,
                            const pb_resource_t *res)
{
    dbg_buf_printf(b, "%s #%zu", what, i);
    if (schema_url && *schema_url) dbg_buf_printf(b, " [%s]", schema_url);
    if (res && res->n_attributes) {
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, res->attributes, res->n_attributes, " ");
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_scope(dbg_buf_t *b, const char *what, size_t i, const pb_scope_t *scope,
                         const char *schema_url)
{
    dbg_buf_printf(b, "%s #%zu", what, i);
    const char *name = scope ? dbg_str(scope->name) : "";
    const char *version = scope ? dbg_str(scope->version) : "";
    bool any = false;
    if (*name || *version || (schema_url && *schema_url)) dbg_buf_put(b, " ", 1);
    if (*name) {
        dbg_buf_puts(b, name);
        any = true;
    }
    if (*version) {
        dbg_buf_printf(b, "@%s", version);
        any = true;
    }
    if (schema_url && *schema_url) dbg_buf_printf(b, "%s[%s]", any ? " " : "", schema_url);
    if (scope && scope->n_attributes) {
        dbg_buf_put(b, " ", 1);
        put_attrs_joined(b, scope->attributes, scope->n_attributes, " ");
    }
    dbg_buf_put(b, "\n", 1);
}

static void normal_traces(dbg_buf_t *b, const pb_traces_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const pb_resource_spans_t *rs = r->resource_spans[i];
        normal_resource(b, "ResourceTraces", i, rs->schema_url, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const pb_scope_spans_t *ss = rs->scope_spans[j];
            /* The collector numbers scope lines with the resource's index; so do we,
             * to print the same text. */
            normal_scope(b, "ScopeTraces", i, ss->scope, ss->schema_url);
            for (size_t k = 0; k < ss->n_spans; k++) {
                const pb_span_t *sp = ss->spans[k];
                dbg_buf_puts(b, dbg_str(sp->name));
                dbg_buf_put(b, " ", 1);
                dbg_put_id(b, &sp->trace_id);
                dbg_buf_put(b, " ", 1);
                dbg_put_id(b, &sp->span_id);
                if (sp->n_attributes) {
                    dbg_buf_put(b, " ", 1);
                    put_attrs_joined(b, sp->attributes, sp->n_attributes, " ");
                }
                dbg_buf_put(b, "\n", 1);
            }
        }
    }
}

static void normal_number_points(dbg_buf_t *b, const pb_metric_t *m, pb_number_dp_t *const *dps,
                                 size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pb_number_dp_t *dp = dps[i];
        dbg_buf_printf(b, "%s{", dbg_str(m->name));
        put_attrs_joined(b, dp->attributes, dp->n_attributes, ",");
        dbg_buf_puts(b, "} ");
        if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
            dbg_buf_printf(b, "%lld", (long long)dp->as_int);
        else if (dp->value_case ==
                 OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
            dbg_put_float_v(b, dp->as_double);
        dbg_buf_put(b, "\n", 1);
    }
}

/* " sum=.. min=.. max=.." of the histogram kinds, as %v. */
static void normal_sum_min_max(dbg_buf_t *b, bool has_sum, double sum, bool has_min, double min,
                               bool has_max, double max)
{
    if (has_sum) {
        dbg_buf_puts(b, " sum=");
        dbg_put_float_v(b, sum);
    }
    if (has_min) {
        dbg_buf_puts(b, " min=");
        dbg_put_float_v(b, min);
    }
    if (has_max) {
        dbg_buf_puts(b, " max=");
        dbg_put_float_v(b, max);
    }
}

static void normal_histogram(dbg_buf_t *b, const pb_metric_t *m)
{
    for (size_t i = 0; m->histogram && i < m->histogram->n_data_points; i++) {
        const pb_hist_dp_t *dp = m->histogram->data_points[i];
        dbg_buf_printf(b, "%s{", dbg_str(m->name));
        put_attrs_joined(b, dp->attributes, dp->n_attributes, ",");
        dbg_buf_printf(b, "} count=%llu", (unsigned long long)dp->count);
        normal_sum_min_max(b, dp->_sum_case != 0, dp->sum, dp->_min_case != 0, dp->min,
                           dp->_max_case != 0, dp->max);
        for (size_t k = 0; k < dp->n_bucket_counts; k++) {
            dbg_buf_put(b, " ", 1);
            if (k < dp->n_explicit_bounds) {
                dbg_buf_puts(b, "le");
                dbg_put_float_v(b, dp->explicit_bounds[k]);
                dbg_buf_put(b, "=", 1);
            }
            dbg_buf_printf(b, "%llu", (unsigned long long)dp->bucket_counts[k]);
        }
        dbg_buf_put(b, "\n", 1);
    }
}

static void normal_exp_buckets(dbg_buf_t *b, const pb_exphist_buckets_t *bk, double base)
{
    for (size_t k = 0; bk && k < bk->n_bucket_counts; k++) {
        dbg_buf_puts(b, " le");
        dbg_put_float_v(b, pow(base, (double)bk->offset + (double)k));
        dbg_buf_printf(b, "=%llu", (unsigned long long)bk->bucket_counts[k]);
    }
}

static void normal_exp_histogram(dbg_buf_t *b, const pb_metric_t *m)
{
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = m->exponential_histogram;
    for (size_t i = 0; h && i < h->n_data_points; i++) {
        const pb_exphist_dp_t *dp = h->data_points[i];
        dbg_buf_printf(b, "%s{", dbg_str(m->name));
        put_attrs_joined(b, dp->attributes, dp->n_attributes, ",");
        dbg_buf_printf(b, "} count=%llu", (unsigned long long)dp->count);
        normal_sum_min_max(b, dp->_sum_case != 0, dp->sum, dp->_min_case != 0, dp->min,
                           dp->_max_case != 0, dp->max);
        double base = pow(2, pow(2, -(double)dp->scale));
        normal_exp_buckets(b, dp->negative, base);
        normal_exp_buckets(b, dp->positive, base);
        if (dp->zero_count > 0) {
            dbg_buf_puts(b, " zero_count");
            dbg_put_float_v(b, dp->zero_threshold);
            dbg_buf_printf(b, "=%llu", (unsigned long long)dp->zero_count);
        }
        dbg_buf_put(b, "\n", 1);
    }
}

static void normal_summary(dbg_buf_t *b, const pb_metric_t *m)
{
    for (size_t i = 0; m->summary && i < m->summary->n_data_points; i++) {
        const pb_summary_dp_t *dp = m->summary->data_points[i];
        dbg_buf_printf(b, "%s{", dbg_str(m->name));
        put_attrs_joined(b, dp->attributes, dp->n_attributes, ",");
        dbg_buf_printf(b, "} count=%llu sum=", (unsigned long long)dp->count);
        dbg_put_float_f(b, dp->sum);
        for (size_t k = 0; k < dp->n_quantile_values; k++) {
            dbg_buf_puts(b, " q");
            dbg_put_float_v(b, dp->quantile_values[k]->quantile);
            dbg_buf_put(b, "=", 1);
            dbg_put_float_v(b, dp->quantile_values[k]->value);
        }
        dbg_buf_put(b, "\n", 1);
    }
}

static void normal_metrics(dbg_buf_t *b, const pb_metrics_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const pb_resource_metrics_t *rm = r->resource_metrics[i];
        normal_resource(b, "ResourceMetrics", i, rm->schema_url, rm->resource);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const pb_scope_metrics_t *sm = rm->scope_metrics[j];
            normal_scope(b, "ScopeMetrics", i, sm->scope, sm->schema_url);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const pb_metric_t *m = sm->metrics[k];
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    if (m->gauge)
                        normal_number_points(b, m, m->gauge->data_points, m->gauge->n_data_points);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    if (m->sum)
                        normal_number_points(b, m, m->sum->data_points, m->sum->n_data_points);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    normal_histogram(b, m);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    normal_exp_histogram(b, m);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    normal_summary(b, m);
                    break;
                default:
                    break;
                }
            }
        }
    }
}

static void normal_logs(dbg_buf_t *b, const pb_logs_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        const pb_resource_logs_t *rl = r->resource_logs[i];
        normal_resource(b, "ResourceLog", i, rl->schema_url, rl->resource);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const pb_scope_logs_t *sl = rl->scope_logs[j];
            normal_scope(b, "ScopeLog", i, sl->scope, sl->schema_url);
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const pb_log_t *lr = sl->log_records[k];
                dbg_put_value_string(b, lr->body);
                dbg_buf_put(b, " ", 1);
                put_attrs_joined(b, lr->attributes, lr->n_attributes, " ");
                dbg_buf_put(b, "\n", 1);
            }
        }
    }
}

void dbg_format_normal(dbg_buf_t *b, sy_signal_t signal, const void *request)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        normal_traces(b, request);
        break;
    case SY_SIGNAL_METRICS:
        normal_metrics(b, request);
        break;
    case SY_SIGNAL_LOGS:
        normal_logs(b, request);
        break;
    }
}

/* Reads a varint; returns the bytes used, 0 when truncated. */
static size_t wire_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

/*
 * Calls fn(arg, value, len) for every length-delimited field `field` of one
 * encoded message, skipping the others. Returns the occurrences, or -1 when the
 * bytes are malformed (the host has validated them, so that does not happen).
 */
static long wire_each(const uint8_t *p, size_t len, uint32_t field,
                      void (*fn)(void *, const uint8_t *, size_t), void *arg)
{
    long n = 0;
    size_t off = 0;
    while (off < len) {
        uint64_t key, v;
        size_t k = wire_varint(p + off, len - off, &key);
        if (!k) return -1;
        off += k;
        switch (key & 7) {
        case 0:
            if (!(k = wire_varint(p + off, len - off, &v))) return -1;
            off += k;
            break;
        case 1:
            off += 8;
            break;
        case 5:
            off += 4;
            break;
        case 2:
            if (!(k = wire_varint(p + off, len - off, &v)) || v > len - off - k) return -1;
            off += k;
            if ((key >> 3) == field) {
                n++;
                if (fn) fn(arg, p + off, (size_t)v);
            }
            off += (size_t)v;
            break;
        default:
            return -1;
        }
        if (off > len) return -1;
    }
    return n;
}

static void count_metrics_in_scope(void *arg, const uint8_t *p, size_t len)
{
    long n = wire_each(p, len, 2, NULL, NULL); /* ScopeMetrics.metrics */
    if (n > 0) *(size_t *)arg += (size_t)n;
}

static void count_metrics_in_resource(void *arg, const uint8_t *p, size_t len)
{
    wire_each(p, len, 2, count_metrics_in_scope, arg); /* ResourceMetrics.scope_metrics */
}

int dbg_summary_encoded(sy_signal_t signal, uint64_t items, const uint8_t *bytes, size_t len,
                        char *out, size_t out_len)
{
    size_t metrics = 0;
    long resources = wire_each(
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
