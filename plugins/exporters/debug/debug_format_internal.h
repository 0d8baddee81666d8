/*
 * debug_format_internal.h - what debug_format.c shares with debug_normal.c and
 * debug_detailed.c: short
 * names for the protobuf-c types and the Go-style primitives.
 */
#ifndef SY_DEBUG_FORMAT_INTERNAL_H
#define SY_DEBUG_FORMAT_INTERNAL_H

#include "debug_format.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array_t;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource_t;

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_traces_req_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link_t;

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest pb_metrics_req_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_resource_metrics_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_scope_metrics_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_number_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hist_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pb_exphist_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets
    pb_exphist_buckets_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pb_summary_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar_t;

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_logs_req_t;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_resource_logs_t;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_scope_logs_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log_t;

/* An absent protobuf-c string reads as empty. */
static inline const char *dbg_str(const char *s)
{
    return s ? s : "";
}

/* Floats as Go's %v, as Go's encoding/json (and pcommon's AsString) and as %f. */
void dbg_put_float_v(dbg_buf_t *b, double v);
void dbg_put_float_json(dbg_buf_t *b, double v);
void dbg_put_float_f(dbg_buf_t *b, double v);

/* Go's time.Time.String() in UTC of nanoseconds since the epoch. */
void dbg_put_time(dbg_buf_t *b, uint64_t ns);

/* Lower-case hex; nothing when the ID is empty or all zero. */
void dbg_put_id(dbg_buf_t *b, const ProtobufCBinaryData *id);

/* pcommon.Value's Type().String(): Str, Int, Double, Bool, Map, Slice, Bytes, Empty. */
const char *dbg_value_type(const pb_any_t *v);
/* pcommon.Value's AsString(): maps and slices as JSON, bytes as base64. */
void dbg_put_value_string(dbg_buf_t *b, const pb_any_t *v);
/* "Type(AsString)", as otlptext writes every value. */
void dbg_put_value(dbg_buf_t *b, const pb_any_t *v);

const char *dbg_span_kind(int kind);
const char *dbg_status_code(int code);
const char *dbg_temporality(int t);
const char *dbg_severity(int n, char *buf, size_t len);

#endif
