/*
 * test_otlp_json.c - the OTLP/JSON codec (plugins/common/otlp_json_*.c): decoding of
 * spec-style documents of each signal, what is refused and how it is reported,
 * encode -> decode round trips, and the body decompression the receiver uses with
 * it (plugins/common/compress.c). Every decode allocates from a recording
 * allocator that frees everything at the end of the test, so LSan sees no leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>

#include "compress.h"
#include "otlp_json.h"

#include <switchyard/plugin.h>
#include <zlib.h>
#include <zstd.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

#define TRACE_REQ_DESC \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define METRICS_REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_REQ_DESC \
    (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)

/* ------------------------------------------------------------------------ */
/* A recording allocator: the "arena" of these tests                         */
/* ------------------------------------------------------------------------ */

typedef struct rec_s {
    void **ptrs;
    size_t n, cap;
} rec_t;

static void *rec_alloc(void *data, size_t size)
{
    rec_t *r = data;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        void **p = realloc(r->ptrs, cap * sizeof(*p));
        if (!p) return NULL;
        r->ptrs = p;
        r->cap = cap;
    }
    void *m = malloc(size);
    if (m) r->ptrs[r->n++] = m;
    return m;
}

static void rec_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* an arena: everything goes at the end */
}

static rec_t g_rec;
static ProtobufCAllocator g_alloc = {rec_alloc, rec_free, &g_rec};

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_rec.n; i++)
        free(g_rec.ptrs[i]);
    free(g_rec.ptrs);
    memset(&g_rec, 0, sizeof(g_rec));
    return 0;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const char *json, char *err,
                                size_t err_len)
{
    return syc_otlp_json_decode(d, (const uint8_t *)json, strlen(json), &g_alloc, err, err_len);
}

static void expect_error(const ProtobufCMessageDescriptor *d, const char *json,
                         const char *fragment)
{
    char err[256] = "";
    ProtobufCMessage *m = decode(d, json, err, sizeof(err));
    if (m || !strstr(err, fragment))
        fail_msg("decoding %s: expected an error containing \"%s\", got %s \"%s\"", json, fragment,
                 m ? "a message" : "error", err);
}

/* ------------------------------------------------------------------------ */
/* Traces                                                                    */
/* ------------------------------------------------------------------------ */

static const char trace_json[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"my.service\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"my.library\","
    "\"version\":\"1.0.0\",\"attributes\":[{\"key\":\"my.scope.attribute\",\"value\":"
    "{\"stringValue\":\"some scope attribute\"}}]},\"spans\":[{\"traceId\":"
    "\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\",\"parentSpanId\":"
    "\"EEE19B7EC3C1B173\",\"name\":\"I'm a server span\",\"startTimeUnixNano\":"
    "\"1544712660000000000\",\"endTimeUnixNano\":1544712661000000000,\"kind\":2,"
    "\"attributes\":[{\"key\":\"my.span.attr\",\"value\":{\"stringValue\":\"some value\"}}],"
    "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"message\":\"boom\"},"
    "\"events\":[{\"timeUnixNano\":\"5\",\"name\":\"ev\"}],"
    "\"links\":[{\"traceId\":\"00000000000000000000000000000001\",\"spanId\":"
    "\"0000000000000002\",\"flags\":256}],"
    "\"futureField\":{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"},\"anotherUnknown\":[[]]}]}]}]}";

static void test_traces_decode(void **state)
{
    (void)state;
    char err[256];
    TraceReq *req = (TraceReq *)decode(TRACE_REQ_DESC, trace_json, err, sizeof(err));
    if (!req) fail_msg("decode failed: %s", err);
    assert_int_equal(req->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
    assert_non_null(rs->resource);
    assert_int_equal(rs->resource->n_attributes, 1);
    assert_string_equal(rs->resource->attributes[0]->key, "service.name");
    AnyValue *v = rs->resource->attributes[0]->value;
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(v->string_value, "my.service");
    assert_int_equal(rs->n_scope_spans, 1);
    assert_string_equal(rs->scope_spans[0]->scope->version, "1.0.0");
    assert_int_equal(rs->scope_spans[0]->n_spans, 1);
    Opentelemetry__Proto__Trace__V1__Span *sp = rs->scope_spans[0]->spans[0];
    static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                    0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    assert_int_equal(sp->trace_id.len, 16);
    assert_memory_equal(sp->trace_id.data, tid, 16);
    assert_int_equal(sp->span_id.len, 8);
    assert_int_equal(sp->span_id.data[7], 0x74);
    assert_int_equal(sp->parent_span_id.data[7], 0x73);
    assert_string_equal(sp->name, "I'm a server span");
    assert_true(sp->start_time_unix_nano == 1544712660000000000ull);
    assert_true(sp->end_time_unix_nano == 1544712661000000000ull); /* a number, not a string */
    assert_int_equal(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(sp->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    assert_string_equal(sp->status->message, "boom");
    assert_int_equal(sp->n_events, 1);
    assert_true(sp->events[0]->time_unix_nano == 5);
    assert_int_equal(sp->n_links, 1);
    assert_int_equal(sp->links[0]->trace_id.data[15], 1);
    assert_int_equal(sp->links[0]->flags, 256);
}

static void test_snake_case_names(void **state)
{
    (void)state;
    char err[256];
    const char *json = "{\"resource_spans\":[{\"scope_spans\":[{\"spans\":[{\"trace_id\":"
                       "\"0102030405060708090a0b0c0d0e0f10\",\"start_time_unix_nano\":\"7\","
                       "\"kind\":\"SPAN_KIND_CLIENT\"}]}]}]}";
    TraceReq *req = (TraceReq *)decode(TRACE_REQ_DESC, json, err, sizeof(err));
    if (!req) fail_msg("decode failed: %s", err);
    Opentelemetry__Proto__Trace__V1__Span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(sp->trace_id.data[0], 1);
    assert_true(sp->start_time_unix_nano == 7);
    assert_int_equal(sp->kind, 3);
}

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

static void test_metrics_decode(void **state)
{
    (void)state;
    char err[256];
    const char *json =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"c\",\"unit\":\"1\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,"
        "\"dataPoints\":[{\"asInt\":\"-5\",\"timeUnixNano\":\"1\"},{\"asDouble\":\"NaN\"},"
        "{\"asDouble\":\"-Infinity\"},{\"asDouble\":2.5e-3}]}},"
        "{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asDouble\":\"Infinity\",\"exemplars\":"
        "[{\"asInt\":3,\"spanId\":\"0102030405060708\",\"traceId\":"
        "\"0102030405060708090a0b0c0d0e0f10\"}]}]}},"
        "{\"name\":\"h\",\"histogram\":{\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_"
        "DELTA\","
        "\"dataPoints\":[{\"count\":\"3\",\"sum\":6,\"min\":1,\"bucketCounts\":[\"1\",2],"
        "\"explicitBounds\":[1.5]}]}},"
        "{\"name\":\"e\",\"exponentialHistogram\":{\"dataPoints\":[{\"scale\":-2,\"positive\":"
        "{\"offset\":-1,\"bucketCounts\":[\"4\"]}}]}},"
        "{\"name\":\"s\",\"summary\":{\"dataPoints\":[{\"quantileValues\":[{\"quantile\":0.5,"
        "\"value\":1}]}]}}]}]}]}";
    MetricsReq *req = (MetricsReq *)decode(METRICS_REQ_DESC, json, err, sizeof(err));
    if (!req) fail_msg("decode failed: %s", err);
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        req->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(sm->n_metrics, 5);

    Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[0];
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_int_equal(m->sum->aggregation_temporality, 2);
    assert_true(m->sum->is_monotonic);
    assert_int_equal(m->sum->n_data_points, 4);
    assert_int_equal(m->sum->data_points[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_true(m->sum->data_points[0]->as_int == -5);
    assert_true(isnan(m->sum->data_points[1]->as_double));
    assert_true(isinf(m->sum->data_points[2]->as_double) && m->sum->data_points[2]->as_double < 0);
    assert_true(m->sum->data_points[3]->as_double == 2.5e-3);

    m = sm->metrics[1];
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    assert_true(isinf(m->gauge->data_points[0]->as_double));
    assert_int_equal(m->gauge->data_points[0]->exemplars[0]->span_id.len, 8);
    assert_int_equal(m->gauge->data_points[0]->exemplars[0]->trace_id.len, 16);
    assert_true(m->gauge->data_points[0]->exemplars[0]->as_int == 3);

    m = sm->metrics[2];
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = m->histogram->data_points[0];
    assert_int_equal(m->histogram->aggregation_temporality, 1);
    assert_true(hp->count == 3);
    assert_int_equal(hp->_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_true(hp->sum == 6);
    assert_int_equal(hp->_min_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN);
    assert_int_equal(hp->_max_case, 0); /* absent stays unset */
    assert_int_equal(hp->n_bucket_counts, 2);
    assert_true(hp->bucket_counts[0] == 1 && hp->bucket_counts[1] == 2);
    assert_int_equal(hp->n_explicit_bounds, 1);

    m = sm->metrics[3];
    assert_int_equal(m->exponential_histogram->data_points[0]->scale, -2);
    assert_int_equal(m->exponential_histogram->data_points[0]->positive->offset, -1);
    assert_true(m->exponential_histogram->data_points[0]->positive->bucket_counts[0] == 4);

    m = sm->metrics[4];
    assert_true(m->summary->data_points[0]->quantile_values[0]->quantile == 0.5);
}

/* ------------------------------------------------------------------------ */
/* Logs, with AnyValue of every kind                                         */
/* ------------------------------------------------------------------------ */

static void test_logs_anyvalue(void **state)
{
    (void)state;
    char err[256];
    const char *json =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1\","
        "\"severityNumber\":\"SEVERITY_NUMBER_WARN\",\"severityText\":\"WARN\",\"traceId\":\"\","
        "\"body\":{\"kvlistValue\":{\"values\":["
        "{\"key\":\"s\",\"value\":{\"stringValue\":\"caf\\u00e9 \\\"q\\\"\\n\"}},"
        "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"i\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
        "{\"key\":\"d\",\"value\":{\"doubleValue\":\"NaN\"}},"
        "{\"key\":\"y\",\"value\":{\"bytesValue\":\"aGVsbG8=\"}},"
        "{\"key\":\"a\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":1},{}]}}},"
        "{\"key\":\"e\",\"value\":{}}]}},"
        "\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":42}}],"
        "\"eventName\":\"evt\",\"flags\":1,\"spanId\":\"0102030405060708\"}]}]}]}";
    LogsReq *req = (LogsReq *)decode(LOGS_REQ_DESC, json, err, sizeof(err));
    if (!req) fail_msg("decode failed: %s", err);
    Opentelemetry__Proto__Logs__V1__LogRecord *lr =
        req->resource_logs[0]->scope_logs[0]->log_records[0];
    assert_int_equal(lr->severity_number, 13);
    assert_string_equal(lr->severity_text, "WARN");
    assert_int_equal(lr->trace_id.len, 0);
    assert_int_equal(lr->span_id.len, 8);
    assert_string_equal(lr->event_name, "evt");
    assert_true(lr->attributes[0]->value->int_value == 42);
    AnyValue *body = lr->body;
    assert_int_equal(body->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    Opentelemetry__Proto__Common__V1__KeyValue **kv = body->kvlist_value->values;
    assert_int_equal(body->kvlist_value->n_values, 7);
    assert_string_equal(kv[0]->value->string_value, "caf\xc3\xa9 \"q\"\n");
    assert_int_equal(kv[1]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_true(kv[1]->value->bool_value);
    assert_true(kv[2]->value->int_value == INT64_MIN);
    assert_true(isnan(kv[3]->value->double_value));
    assert_int_equal(kv[4]->value->bytes_value.len, 5);
    assert_memory_equal(kv[4]->value->bytes_value.data, "hello", 5);
    assert_int_equal(kv[5]->value->array_value->n_values, 2);
    assert_int_equal(kv[5]->value->array_value->values[1]->value_case, 0);
    assert_int_equal(kv[6]->value->value_case, 0);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void test_errors(void **state)
{
    (void)state;
    /* UTF-8, after unescaping: OTLP strings must be valid UTF-8. */
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\\ud800b\"}]}]}]}",
                 "unpaired UTF-16 surrogate escape");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\\uDC00\"}]}]}]}",
                 "invalid UTF-8");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\xc0\xaf\"}]}]}]}",
                 "field \"name\": invalid UTF-8"); /* yajl lets overlong forms through */
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"\xed\xa0\x80\","
                 "\"value\":{\"stringValue\":\"v\"}}]}}]}",
                 "field \"key\": invalid UTF-8");
    /* IDs. */
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"abc\"}]}]}]}",
                 "\"traceId\": invalid ID");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":"
                 "\"zz19b7ec3c1b1740\"}]}]}]}",
                 "\"spanId\": invalid ID");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"parentSpanId\":"
                 "\"0102030405060708090a0b0c0d0e0f10\"}]}]}]}",
                 "\"parentSpanId\": invalid ID: expected 16 hex digits");
    /* Malformed JSON. */
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":[", "invalid JSON");
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":[]}}", "invalid JSON");
    expect_error(TRACE_REQ_DESC, "", "invalid JSON");
    expect_error(TRACE_REQ_DESC, "{'a':1}", "invalid JSON");
    expect_error(TRACE_REQ_DESC, "{\"a\":\"\xff\"}", "invalid JSON");
    /* Wrong types. */
    expect_error(TRACE_REQ_DESC, "[]", "expected a JSON object");
    expect_error(TRACE_REQ_DESC, "42", "expected a JSON object");
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":{}}", "expected an array");
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":\"x\"}", "expected an array");
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":[1]}", "expected an object");
    expect_error(TRACE_REQ_DESC, "{\"resourceSpans\":[{\"schemaUrl\":5}]}",
                 "\"schemaUrl\": unexpected a number");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"BOGUS\"}]}]}]}",
                 "invalid enum value");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":"
                 "\"-1\"}]}]}]}",
                 "invalid number");
    expect_error(TRACE_REQ_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedAttributesCount\":"
                 "4294967296}]}]}]}",
                 "invalid number");
    expect_error(LOGS_REQ_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"intValue\":"
                 "1.5}}]}]}]}",
                 "invalid number");
    expect_error(LOGS_REQ_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":"
                 "\"!!\"}}]}]}]}",
                 "invalid base64");
    /* Nesting is bounded. */
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n,
                          "{\"resourceLogs\":[{\"scopeLogs\":[{"
                          "\"logRecords\":[{\"body\":");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"arrayValue\":{\"values\":[");
    deep[n] = '\0';
    expect_error(LOGS_REQ_DESC, deep, "nested deeper than 64");
    /* Also when the depth is in ignored fields. */
    n = 0;
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "{\"x\":");
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    expect_error(LOGS_REQ_DESC, deep, "nested deeper than 64");
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */
/* ------------------------------------------------------------------------ */

/* Decodes, encodes, decodes again and encodes again: both encodings match, and
 * the protobuf packings of both messages match. */
static void round_trip(const ProtobufCMessageDescriptor *d, const char *json)
{
    char err[256];
    ProtobufCMessage *a = decode(d, json, err, sizeof(err));
    if (!a) fail_msg("decode failed: %s", err);
    size_t len1, len2;
    char *j1 = syc_otlp_json_encode(a, &len1);
    assert_non_null(j1);
    assert_int_equal(strlen(j1), len1);
    ProtobufCMessage *b = decode(d, j1, err, sizeof(err));
    if (!b) fail_msg("re-decode of %s failed: %s", j1, err);
    char *j2 = syc_otlp_json_encode(b, &len2);
    assert_non_null(j2);
    assert_string_equal(j1, j2);
    size_t p1 = protobuf_c_message_get_packed_size(a), p2 = protobuf_c_message_get_packed_size(b);
    assert_int_equal(p1, p2);
    uint8_t *b1 = malloc(p1 + 1), *b2 = malloc(p2 + 1);
    protobuf_c_message_pack(a, b1);
    protobuf_c_message_pack(b, b2);
    assert_memory_equal(b1, b2, p1);
    free(b1);
    free(b2);
    free(j1);
    free(j2);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(TRACE_REQ_DESC, trace_json);
    round_trip(LOGS_REQ_DESC,
               "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"kvlistValue\":"
               "{\"values\":[{\"key\":\"y\",\"value\":{\"bytesValue\":\"AAEC/w==\"}},{\"key\":"
               "\"d\",\"value\":{\"doubleValue\":0.1}},{\"key\":\"z\",\"value\":{\"doubleValue\":"
               "0}},{\"key\":\"ctl\",\"value\":{\"stringValue\":\"\\u0001\\t\\\\\"}}]}}}]}]}]}");
    round_trip(METRICS_REQ_DESC,
               "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
               "\"histogram\":{\"dataPoints\":[{\"sum\":0,\"max\":-1e300,\"bucketCounts\":[\"0\","
               "\"18446744073709551615\"],\"explicitBounds\":[\"Infinity\"]}]}},{\"name\":\"n\","
               "\"sum\":{\"dataPoints\":[{\"asInt\":\"0\"},{\"asDouble\":\"NaN\"}]}}]}]}]}");
}

static void test_encode_format(void **state)
{
    (void)state;
    char err[256];
    /* Defaults are left out; set oneofs are kept even at their default; 64-bit
     * integers are strings; enums are numbers; IDs are lower-case hex. */
    TraceReq *req = (TraceReq *)decode(
        TRACE_REQ_DESC,
        "{\"resourceSpans\":[{\"schemaUrl\":\"\",\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"5B8EFFF798038103D269B633813FC60C\",\"kind\":\"SPAN_KIND_SERVER\",\"startTimeUnixNano\":"
        "12,\"droppedLinksCount\":0,\"attributes\":[{\"key\":\"zero\",\"value\":{\"intValue\":"
        "0}}]}]}]}]}",
        err, sizeof(err));
    if (!req) fail_msg("decode failed: %s", err);
    size_t len;
    char *j = syc_otlp_json_encode(&req->base, &len);
    assert_string_equal(j, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                           "\"5b8efff798038103d269b633813fc60c\",\"kind\":2,\"startTimeUnixNano\":"
                           "\"12\",\"attributes\":[{\"key\":\"zero\",\"value\":{\"intValue\":"
                           "\"0\"}}]}]}]}]}");
    free(j);

    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = (char *)"bad \xff input";
    j = syc_otlp_json_encode(&st.base, &len);
    assert_string_equal(j, "{\"code\":3,\"message\":\"bad \xef\xbf\xbd input\"}");
    free(j);

    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    j = syc_otlp_json_encode(&resp.base, &len);
    assert_string_equal(j, "{}");
    free(j);
}

/* ------------------------------------------------------------------------ */
/* Decompression                                                             */
/* ------------------------------------------------------------------------ */

static void *test_alloc(void *ctx, size_t size)
{
    return rec_alloc(ctx, size);
}

/* Compresses with zlib: window_bits 16+15 for gzip, 15 for a zlib stream. */
static size_t zcompress(const void *in, size_t len, uint8_t *out, size_t cap, int window_bits)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

static int decompress(syc_encoding_t enc, const uint8_t *in, size_t len, size_t max, uint8_t **out,
                      size_t *out_len, char *err)
{
    return syc_decompress(enc, in, len, max, test_alloc, &g_rec, out, out_len, err, 256);
}

static void test_decompress(void **state)
{
    (void)state;
    static uint8_t plain[100000], packed[120000], two[240000];
    for (size_t i = 0; i < sizeof(plain); i++)
        plain[i] = (uint8_t)(i * 7 / 13);
    uint8_t *out;
    size_t out_len;
    char err[256];

    assert_int_equal(syc_encoding_parse(NULL), SYC_ENCODING_IDENTITY);
    assert_int_equal(syc_encoding_parse(" GZIP "), SYC_ENCODING_GZIP);
    assert_int_equal(syc_encoding_parse("x-gzip"), SYC_ENCODING_GZIP);
    assert_int_equal(syc_encoding_parse("deflate"), SYC_ENCODING_DEFLATE);
    assert_int_equal(syc_encoding_parse("zstd"), SYC_ENCODING_ZSTD);
    assert_int_equal(syc_encoding_parse("br"), SYC_ENCODING_UNKNOWN);

    /* gzip, one member and two members back to back. */
    size_t n = zcompress(plain, sizeof(plain), packed, sizeof(packed), 16 + MAX_WBITS);
    assert_int_equal(decompress(SYC_ENCODING_GZIP, packed, n, sizeof(plain), &out, &out_len, err),
                     0);
    assert_int_equal(out_len, sizeof(plain));
    assert_memory_equal(out, plain, sizeof(plain));
    memcpy(two, packed, n);
    memcpy(two + n, packed, n);
    assert_int_equal(
        decompress(SYC_ENCODING_GZIP, two, 2 * n, 2 * sizeof(plain), &out, &out_len, err), 0);
    assert_int_equal(out_len, 2 * sizeof(plain));
    /* One byte over the bound is refused; truncation and garbage are errors. */
    assert_int_equal(
        decompress(SYC_ENCODING_GZIP, packed, n, sizeof(plain) - 1, &out, &out_len, err),
        SY_ENOMEM);
    assert_non_null(strstr(err, "larger than the limit"));
    assert_int_equal(
        decompress(SYC_ENCODING_GZIP, packed, n - 10, sizeof(plain), &out, &out_len, err),
        SY_EINVAL);
    assert_int_equal(
        decompress(SYC_ENCODING_GZIP, (const uint8_t *)"hello", 5, 100, &out, &out_len, err),
        SY_EINVAL);
    /* A bomb stops at the bound, whatever its trailer claims. */
    static uint8_t zeros[1 << 20];
    n = zcompress(zeros, sizeof(zeros), packed, sizeof(packed), 16 + MAX_WBITS);
    assert_true(n < 2000);
    assert_int_equal(decompress(SYC_ENCODING_GZIP, packed, n, 65536, &out, &out_len, err),
                     SY_ENOMEM);

    /* deflate: a zlib stream, and raw deflate. */
    n = zcompress(plain, sizeof(plain), packed, sizeof(packed), MAX_WBITS);
    assert_int_equal(
        decompress(SYC_ENCODING_DEFLATE, packed, n, sizeof(plain), &out, &out_len, err), 0);
    assert_memory_equal(out, plain, sizeof(plain));
    n = zcompress(plain, sizeof(plain), packed, sizeof(packed), -MAX_WBITS);
    assert_int_equal(
        decompress(SYC_ENCODING_DEFLATE, packed, n, sizeof(plain), &out, &out_len, err), 0);
    assert_int_equal(out_len, sizeof(plain));

    /* zstd. */
    n = ZSTD_compress(packed, sizeof(packed), plain, sizeof(plain), 3);
    assert_false(ZSTD_isError(n));
    assert_int_equal(decompress(SYC_ENCODING_ZSTD, packed, n, sizeof(plain), &out, &out_len, err),
                     0);
    assert_memory_equal(out, plain, sizeof(plain));
    assert_int_equal(decompress(SYC_ENCODING_ZSTD, packed, n, 1000, &out, &out_len, err),
                     SY_ENOMEM);
    assert_int_equal(
        decompress(SYC_ENCODING_ZSTD, packed, n / 2, sizeof(plain), &out, &out_len, err),
        SY_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_traces_decode, teardown),
        cmocka_unit_test_teardown(test_snake_case_names, teardown),
        cmocka_unit_test_teardown(test_metrics_decode, teardown),
        cmocka_unit_test_teardown(test_logs_anyvalue, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
        cmocka_unit_test_teardown(test_round_trip, teardown),
        cmocka_unit_test_teardown(test_encode_format, teardown),
        cmocka_unit_test_teardown(test_decompress, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
