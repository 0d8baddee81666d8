/*
 * debug_detailed.c - the debug exporter's `detailed` verbosity text: the
 * collector's otlptext dump, field by field, for traces, metrics and logs.
 *
 * Every request field may be absent (NULL) in a decoded request that came from
 * a peer; each access below checks for it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "debug_format_internal.h"

/* ------------------------------------------------------------------------ */
/* Detailed verbosity: otlptext                                              */
/* ------------------------------------------------------------------------ */

/*
 * "<header>:" and one "     -> key: Type(value)" line per attribute; nothing
 * for no attributes. A header that itself starts with an arrow ("     -> Attributes:")
 * indents its entries by the arrow's indentation, as otlptext does.
 */
static void put_attributes(dbg_buf_t *b, const char *header, pb_kv_t *const *kv, size_t n)
{
    if (n == 0) return;
    dbg_buf_printf(b, "%s:\n", header);
    const char *arrow = strstr(header, "->");
    int indent = arrow ? (int)(arrow - header) : 0;
    for (size_t i = 0; i < n; i++) {
        dbg_buf_printf(b, "%*s     -> %s: ", indent, "", dbg_str(kv[i]->key));
        dbg_put_value(b, kv[i]->value);
        dbg_buf_put(b, "\n", 1);
    }
}

/* "    <name padded to 15>: " as otlptext's logAttr. */
static void put_field(dbg_buf_t *b, const char *name)
{
    dbg_buf_printf(b, "    %-15s: ", name);
}

static void put_field_str(dbg_buf_t *b, const char *name, const char *value)
{
    put_field(b, name);
    dbg_buf_printf(b, "%s\n", dbg_str(value));
}

static void put_field_time(dbg_buf_t *b, const char *name, uint64_t ns)
{
    put_field(b, name);
    dbg_put_time(b, ns);
    dbg_buf_put(b, "\n", 1);
}

static void put_field_id(dbg_buf_t *b, const char *name, const ProtobufCBinaryData *id)
{
    put_field(b, name);
    dbg_put_id(b, id);
    dbg_buf_put(b, "\n", 1);
}

static void put_resource(dbg_buf_t *b, const char *what, size_t i, const char *schema_url,
                         const pb_resource_t *res)
{
    dbg_buf_printf(b, "%s #%zu\n", what, i);
    dbg_buf_printf(b, "Resource SchemaURL: %s\n", dbg_str(schema_url));
    if (!res) return;
    put_attributes(b, "Resource attributes", res->attributes, res->n_attributes);
    if (res->n_entity_refs == 0) return;
    dbg_buf_puts(b, "Resource entity refs:\n");
    for (size_t e = 0; e < res->n_entity_refs; e++) {
        const Opentelemetry__Proto__Common__V1__EntityRef *ref = res->entity_refs[e];
        dbg_buf_printf(b, "     -> Entity ref #%zu:\n", e);
        dbg_buf_printf(b, "          -> Type: %s\n", dbg_str(ref->type));
        if (ref->schema_url && *ref->schema_url)
            dbg_buf_printf(b, "          -> Schema URL: %s\n", ref->schema_url);
        if (ref->n_id_keys) dbg_buf_puts(b, "          -> ID keys:\n");
        for (size_t k = 0; k < ref->n_id_keys; k++)
            dbg_buf_printf(b, "               -> %s\n", dbg_str(ref->id_keys[k]));
        if (ref->n_description_keys) dbg_buf_puts(b, "          -> Description keys:\n");
        for (size_t k = 0; k < ref->n_description_keys; k++)
            dbg_buf_printf(b, "               -> %s\n", dbg_str(ref->description_keys[k]));
    }
}

static void put_scope(dbg_buf_t *b, const char *what, size_t j, const char *schema_url,
                      const pb_scope_t *scope)
{
    dbg_buf_printf(b, "%s #%zu\n", what, j);
    dbg_buf_printf(b, "%s SchemaURL: %s\n", what, dbg_str(schema_url));
    dbg_buf_printf(b, "InstrumentationScope %s %s\n", scope ? dbg_str(scope->name) : "",
                   scope ? dbg_str(scope->version) : "");
    if (scope)
        put_attributes(b, "InstrumentationScope attributes", scope->attributes,
                       scope->n_attributes);
}

static void detailed_span(dbg_buf_t *b, const pb_span_t *sp)
{
    put_field_id(b, "Trace ID", &sp->trace_id);
    put_field_id(b, "Parent ID", &sp->parent_span_id);
    put_field_id(b, "ID", &sp->span_id);
    put_field_str(b, "Name", sp->name);
    put_field_str(b, "Kind", dbg_span_kind(sp->kind));
    if (sp->trace_state && *sp->trace_state) put_field_str(b, "TraceState", sp->trace_state);
    put_field_time(b, "Start time", sp->start_time_unix_nano);
    put_field_time(b, "End time", sp->end_time_unix_nano);
    put_field_str(b, "Status code", dbg_status_code(sp->status ? (int)sp->status->code : 0));
    put_field_str(b, "Status message", sp->status ? sp->status->message : "");
    dbg_buf_printf(b, "    DroppedAttributesCount: %u\n", sp->dropped_attributes_count);
    dbg_buf_printf(b, "    DroppedEventsCount: %u\n", sp->dropped_events_count);
    dbg_buf_printf(b, "    DroppedLinksCount: %u\n", sp->dropped_links_count);
    put_attributes(b, "Attributes", sp->attributes, sp->n_attributes);
    if (sp->n_events) dbg_buf_puts(b, "Events:\n");
    for (size_t e = 0; e < sp->n_events; e++) {
        const pb_event_t *ev = sp->events[e];
        dbg_buf_printf(b, "SpanEvent #%zu\n", e);
        dbg_buf_printf(b, "     -> Name: %s\n", dbg_str(ev->name));
        dbg_buf_puts(b, "     -> Timestamp: ");
        dbg_put_time(b, ev->time_unix_nano);
        dbg_buf_printf(b, "\n     -> DroppedAttributesCount: %u\n", ev->dropped_attributes_count);
        put_attributes(b, "     -> Attributes:", ev->attributes, ev->n_attributes);
    }
    if (sp->n_links) dbg_buf_puts(b, "Links:\n");
    for (size_t l = 0; l < sp->n_links; l++) {
        const pb_link_t *ln = sp->links[l];
        dbg_buf_printf(b, "SpanLink #%zu\n", l);
        dbg_buf_puts(b, "     -> Trace ID: ");
        dbg_put_id(b, &ln->trace_id);
        dbg_buf_puts(b, "\n     -> ID: ");
        dbg_put_id(b, &ln->span_id);
        dbg_buf_printf(b, "\n     -> TraceState: %s\n", dbg_str(ln->trace_state));
        dbg_buf_printf(b, "     -> DroppedAttributesCount: %u\n", ln->dropped_attributes_count);
        put_attributes(b, "     -> Attributes:", ln->attributes, ln->n_attributes);
    }
}

static void detailed_traces(dbg_buf_t *b, const pb_traces_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const pb_resource_spans_t *rs = r->resource_spans[i];
        put_resource(b, "ResourceSpans", i, rs->schema_url, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const pb_scope_spans_t *ss = rs->scope_spans[j];
            put_scope(b, "ScopeSpans", j, ss->schema_url, ss->scope);
            for (size_t k = 0; k < ss->n_spans; k++) {
                dbg_buf_printf(b, "Span #%zu\n", k);
                detailed_span(b, ss->spans[k]);
            }
        }
    }
}

static void put_exemplars(dbg_buf_t *b, pb_exemplar_t *const *ex, size_t n)
{
    if (n == 0) return;
    dbg_buf_puts(b, "Exemplars:\n");
    for (size_t i = 0; i < n; i++) {
        const pb_exemplar_t *e = ex[i];
        dbg_buf_printf(b, "Exemplar #%zu\n     -> Trace ID: ", i);
        dbg_put_id(b, &e->trace_id);
        dbg_buf_puts(b, "\n     -> Span ID: ");
        dbg_put_id(b, &e->span_id);
        dbg_buf_puts(b, "\n     -> Timestamp: ");
        dbg_put_time(b, e->time_unix_nano);
        dbg_buf_put(b, "\n", 1);
        if (e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT) {
            dbg_buf_printf(b, "     -> Value: %lld\n", (long long)e->as_int);
        } else if (e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE) {
            dbg_buf_puts(b, "     -> Value: ");
            dbg_put_float_f(b, e->as_double);
            dbg_buf_put(b, "\n", 1);
        }
        put_attributes(b, "     -> FilteredAttributes", e->filtered_attributes,
                       e->n_filtered_attributes);
    }
}

/* The lines every data point kind starts with. */
static void put_point_head(dbg_buf_t *b, const char *kind, size_t i, pb_kv_t *const *attrs,
                           size_t nattrs, uint64_t start, uint64_t ts)
{
    dbg_buf_printf(b, "%s #%zu\n", kind, i);
    put_attributes(b, "Data point attributes", attrs, nattrs);
    dbg_buf_puts(b, "StartTimestamp: ");
    dbg_put_time(b, start);
    dbg_buf_puts(b, "\nTimestamp: ");
    dbg_put_time(b, ts);
    dbg_buf_put(b, "\n", 1);
}

static void put_line_f(dbg_buf_t *b, const char *label, double v)
{
    dbg_buf_printf(b, "%s: ", label);
    dbg_put_float_f(b, v);
    dbg_buf_put(b, "\n", 1);
}

static void detailed_number_points(dbg_buf_t *b, pb_number_dp_t *const *dps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pb_number_dp_t *dp = dps[i];
        put_point_head(b, "NumberDataPoints", i, dp->attributes, dp->n_attributes,
                       dp->start_time_unix_nano, dp->time_unix_nano);
        if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
            dbg_buf_printf(b, "Value: %lld\n", (long long)dp->as_int);
        else if (dp->value_case ==
                 OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
            put_line_f(b, "Value", dp->as_double);
        put_exemplars(b, dp->exemplars, dp->n_exemplars);
    }
}

static void detailed_histogram(dbg_buf_t *b, pb_hist_dp_t *const *dps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pb_hist_dp_t *dp = dps[i];
        put_point_head(b, "HistogramDataPoints", i, dp->attributes, dp->n_attributes,
                       dp->start_time_unix_nano, dp->time_unix_nano);
        dbg_buf_printf(b, "Count: %llu\n", (unsigned long long)dp->count);
        if (dp->_sum_case) put_line_f(b, "Sum", dp->sum);
        if (dp->_min_case) put_line_f(b, "Min", dp->min);
        if (dp->_max_case) put_line_f(b, "Max", dp->max);
        for (size_t k = 0; k < dp->n_explicit_bounds; k++) {
            dbg_buf_printf(b, "ExplicitBounds #%zu: ", k);
            dbg_put_float_f(b, dp->explicit_bounds[k]);
            dbg_buf_put(b, "\n", 1);
        }
        for (size_t k = 0; k < dp->n_bucket_counts; k++)
            dbg_buf_printf(b, "Buckets #%zu, Count: %llu\n", k,
                           (unsigned long long)dp->bucket_counts[k]);
        put_exemplars(b, dp->exemplars, dp->n_exemplars);
    }
}

static void detailed_exp_histogram(dbg_buf_t *b, pb_exphist_dp_t *const *dps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pb_exphist_dp_t *dp = dps[i];
        put_point_head(b, "ExponentialHistogramDataPoints", i, dp->attributes, dp->n_attributes,
                       dp->start_time_unix_nano, dp->time_unix_nano);
        dbg_buf_printf(b, "Count: %llu\n", (unsigned long long)dp->count);
        if (dp->_sum_case) put_line_f(b, "Sum", dp->sum);
        if (dp->_min_case) put_line_f(b, "Min", dp->min);
        if (dp->_max_case) put_line_f(b, "Max", dp->max);
        /* Bucket bounds as otlptext computes them: exp(index * ln2 / 2^scale). */
        double factor = ldexp(M_LN2, -dp->scale);
        const pb_exphist_buckets_t *neg = dp->negative, *pos = dp->positive;
        for (size_t k = 0; neg && k < neg->n_bucket_counts; k++) {
            size_t at = neg->n_bucket_counts - k - 1;
            double index = (double)neg->offset + (double)at;
            dbg_buf_puts(b, "Bucket [");
            dbg_put_float_f(b, -exp((index + 1) * factor));
            dbg_buf_puts(b, ", ");
            dbg_put_float_f(b, -exp(index * factor));
            dbg_buf_printf(b, "), Count: %llu\n", (unsigned long long)neg->bucket_counts[at]);
        }
        if (dp->zero_count)
            dbg_buf_printf(b, "Bucket [0, 0], Count: %llu\n", (unsigned long long)dp->zero_count);
        for (size_t k = 0; pos && k < pos->n_bucket_counts; k++) {
            double index = (double)pos->offset + (double)k;
            dbg_buf_puts(b, "Bucket (");
            dbg_put_float_f(b, exp(index * factor));
            dbg_buf_puts(b, ", ");
            dbg_put_float_f(b, exp((index + 1) * factor));
            dbg_buf_printf(b, "], Count: %llu\n", (unsigned long long)pos->bucket_counts[k]);
        }
        put_exemplars(b, dp->exemplars, dp->n_exemplars);
    }
}

static void detailed_summary(dbg_buf_t *b, pb_summary_dp_t *const *dps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pb_summary_dp_t *dp = dps[i];
        put_point_head(b, "SummaryDataPoints", i, dp->attributes, dp->n_attributes,
                       dp->start_time_unix_nano, dp->time_unix_nano);
        dbg_buf_printf(b, "Count: %llu\n", (unsigned long long)dp->count);
        put_line_f(b, "Sum", dp->sum);
        for (size_t k = 0; k < dp->n_quantile_values; k++) {
            dbg_buf_printf(b, "QuantileValue #%zu: Quantile ", k);
            dbg_put_float_f(b, dp->quantile_values[k]->quantile);
            dbg_buf_puts(b, ", Value ");
            dbg_put_float_f(b, dp->quantile_values[k]->value);
            dbg_buf_put(b, "\n", 1);
        }
    }
}

static const char *metric_type(const pb_metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return "Gauge";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return "Sum";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return "Histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return "ExponentialHistogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return "Summary";
    default:
        return "Empty";
    }
}

static void detailed_metric(dbg_buf_t *b, const pb_metric_t *m)
{
    dbg_buf_puts(b, "Descriptor:\n");
    dbg_buf_printf(b, "     -> Name: %s\n", dbg_str(m->name));
    dbg_buf_printf(b, "     -> Description: %s\n", dbg_str(m->description));
    dbg_buf_printf(b, "     -> Unit: %s\n", dbg_str(m->unit));
    dbg_buf_printf(b, "     -> DataType: %s\n", metric_type(m));
    put_attributes(b, "     -> Metadata", m->metadata, m->n_metadata);
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (m->gauge) detailed_number_points(b, m->gauge->data_points, m->gauge->n_data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (!m->sum) break;
        dbg_buf_printf(b, "     -> IsMonotonic: %s\n", m->sum->is_monotonic ? "true" : "false");
        dbg_buf_printf(b, "     -> AggregationTemporality: %s\n",
                       dbg_temporality(m->sum->aggregation_temporality));
        detailed_number_points(b, m->sum->data_points, m->sum->n_data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (!m->histogram) break;
        dbg_buf_printf(b, "     -> AggregationTemporality: %s\n",
                       dbg_temporality(m->histogram->aggregation_temporality));
        detailed_histogram(b, m->histogram->data_points, m->histogram->n_data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (!m->exponential_histogram) break;
        dbg_buf_printf(b, "     -> AggregationTemporality: %s\n",
                       dbg_temporality(m->exponential_histogram->aggregation_temporality));
        detailed_exp_histogram(b, m->exponential_histogram->data_points,
                               m->exponential_histogram->n_data_points);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        if (m->summary) detailed_summary(b, m->summary->data_points, m->summary->n_data_points);
        break;
    default:
        break;
    }
}

static void detailed_metrics(dbg_buf_t *b, const pb_metrics_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const pb_resource_metrics_t *rm = r->resource_metrics[i];
        put_resource(b, "ResourceMetrics", i, rm->schema_url, rm->resource);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const pb_scope_metrics_t *sm = rm->scope_metrics[j];
            put_scope(b, "ScopeMetrics", j, sm->schema_url, sm->scope);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                dbg_buf_printf(b, "Metric #%zu\n", k);
                detailed_metric(b, sm->metrics[k]);
            }
        }
    }
}

static void detailed_log(dbg_buf_t *b, const pb_log_t *lr)
{
    char sev[16];
    dbg_buf_puts(b, "ObservedTimestamp: ");
    dbg_put_time(b, lr->observed_time_unix_nano);
    dbg_buf_puts(b, "\nTimestamp: ");
    dbg_put_time(b, lr->time_unix_nano);
    dbg_buf_printf(b, "\nSeverityText: %s\n", dbg_str(lr->severity_text));
    dbg_buf_printf(b, "SeverityNumber: %s(%d)\n",
                   dbg_severity(lr->severity_number, sev, sizeof(sev)), (int)lr->severity_number);
    if (lr->event_name && *lr->event_name) dbg_buf_printf(b, "EventName: %s\n", lr->event_name);
    dbg_buf_puts(b, "Body: ");
    dbg_put_value(b, lr->body);
    dbg_buf_put(b, "\n", 1);
    put_attributes(b, "Attributes", lr->attributes, lr->n_attributes);
    dbg_buf_puts(b, "Trace ID: ");
    dbg_put_id(b, &lr->trace_id);
    dbg_buf_puts(b, "\nSpan ID: ");
    dbg_put_id(b, &lr->span_id);
    dbg_buf_printf(b, "\nFlags: %u\n", lr->flags);
}

static void detailed_logs(dbg_buf_t *b, const pb_logs_req_t *r)
{
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        const pb_resource_logs_t *rl = r->resource_logs[i];
        put_resource(b, "ResourceLog", i, rl->schema_url, rl->resource);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const pb_scope_logs_t *sl = rl->scope_logs[j];
            put_scope(b, "ScopeLogs", j, sl->schema_url, sl->scope);
            for (size_t k = 0; k < sl->n_log_records; k++) {
                dbg_buf_printf(b, "LogRecord #%zu\n", k);
                detailed_log(b, sl->log_records[k]);
            }
        }
    }
}

void dbg_format_detailed(dbg_buf_t *b, sy_signal_t signal, const void *request)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        detailed_traces(b, request);
        break;
    case SY_SIGNAL_METRICS:
        detailed_metrics(b, request);
        break;
    case SY_SIGNAL_LOGS:
        detailed_logs(b, request);
        break;
    }
}
