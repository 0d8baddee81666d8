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

/* One field of a node; EMPTY (str "", numbers 0) when absent or not the node's. */
static inline sy_value_t dbg_get(const dbg_buf_t *b, sy_view_node_t *node, sy_field_t field)
{
    sy_value_t v = {.type = SY_VALUE_EMPTY, .str = ""};
    if (b->api->view_get(node, field, &v) < 0) v = (sy_value_t){.type = SY_VALUE_EMPTY, .str = ""};
    return v;
}

/* A string of the request, byte for byte; a NUL byte as `\u0000` (one line per
 * log line: the raw byte would end C-string readers of the output). */
void dbg_put_str(dbg_buf_t *b, const char *s, size_t n);
/* A STRING value as dbg_put_str(); nothing for any other type. */
void dbg_put_sv(dbg_buf_t *b, const sy_value_t *v);
/* True if v is a non-empty string. */
static inline bool dbg_sv_set(const sy_value_t *v)
{
    return v->type == SY_VALUE_STRING && v->len > 0;
}

/* Floats as Go's %v, as Go's encoding/json (and pcommon's AsString) and as %f. */
void dbg_put_float_v(dbg_buf_t *b, double v);
void dbg_put_float_json(dbg_buf_t *b, double v);
void dbg_put_float_f(dbg_buf_t *b, double v);

/* Go's time.Time.String() in UTC of nanoseconds since the epoch. */
void dbg_put_time(dbg_buf_t *b, uint64_t ns);

/* Lower-case hex of a BYTES value; nothing when the ID is empty or all zero. */
void dbg_put_id(dbg_buf_t *b, const sy_value_t *id);

/* pcommon.Value's Type().String(): Str, Int, Double, Bool, Map, Slice, Bytes, Empty. */
const char *dbg_value_type(const sy_value_t *v);
/* pcommon.Value's AsString(): maps and slices as JSON, bytes as base64. */
void dbg_put_value_string(dbg_buf_t *b, const sy_value_t *v);
/* "Type(AsString)", as otlptext writes every value. */
void dbg_put_value(dbg_buf_t *b, const sy_value_t *v);

const char *dbg_span_kind(int64_t kind);
const char *dbg_status_code(int64_t code);
const char *dbg_temporality(int64_t t);
const char *dbg_severity(int64_t n, char *buf, size_t len);

/* Calls fn(arg, value, len) for every length-delimited field `field` of one
 * encoded message. Returns the occurrences, or -1 when the bytes are malformed. */
long dbg_wire_each(const uint8_t *p, size_t len, uint32_t field,
                   void (*fn)(void *, const uint8_t *, size_t), void *arg);

#endif
