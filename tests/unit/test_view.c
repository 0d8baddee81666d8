/*
 * The view (ABI 1.1): reading, editing and regrouping encoded requests.
 *
 * Requests are built with protobuf-c here (tests may), so every read through
 * the view is checked against the decoded value: all three signals, every data
 * point type, events, links, exemplars and every AnyValue kind, nested. Edits
 * are checked by building the expected request the same way and comparing the
 * committed bytes, unpacked and packed again, with it packed; the length
 * prefixes are checked across the 1/2 and 2/3-byte varint boundaries; untouched
 * resources must come out byte for byte. The builder, the copy-on-write refusal
 * (a shared batch; through the real loader, a processor without
 * SY_PLUGIN_MUTATES_DATA that uses only the view) are tested last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batch_internal.h"
#include "cow.h"
#include "engine.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "router.h"
#include "telemetry.h"
#include "view.h"
#include "view_internal.h" /* sy__view_share */

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KeyValueList;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event Event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link Link;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets Buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryDP;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile Quantile;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;

/* ---- memory for the structs a test builds: freed after each test ----------------- */

static void *allocs[100000];
static size_t nallocs;

static void *T(size_t n)
{
    assert_true(nallocs < sizeof(allocs) / sizeof(allocs[0]));
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    allocs[nallocs++] = p;
    return p;
}

static int free_all(void **state)
{
    (void)state;
    for (size_t i = 0; i < nallocs; i++)
        free(allocs[i]);
    nallocs = 0;
    return 0;
}

#define NEW(type, init)             \
    ({                              \
        type *p_ = T(sizeof(type)); \
        init(p_);                   \
        p_;                         \
    })
#define ARR(type, ...)                  \
    ({                                  \
        type *src_[] = {__VA_ARGS__};   \
        type **a_ = T(sizeof(src_));    \
        memcpy(a_, src_, sizeof(src_)); \
        a_;                             \
    })
#define NARR(...) (sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))

static char *S(const char *s)
{
    char *c = T(strlen(s) + 1);
    memcpy(c, s, strlen(s));
    return c;
}

static ProtobufCBinaryData B(const char *s, size_t n)
{
    uint8_t *p = T(n);
    memcpy(p, s, n);
    return (ProtobufCBinaryData){.len = n, .data = p};
}

static AnyValue *av_str(const char *s)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    a->string_value = S(s);
    return a;
}

static AnyValue *av_int(int64_t i)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    a->int_value = i;
    return a;
}

static AnyValue *av_double(double d)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    a->double_value = d;
    return a;
}

static AnyValue *av_bool(bool b)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    a->bool_value = b;
    return a;
}

static AnyValue *av_bytes(const char *s, size_t n)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    a->bytes_value = B(s, n);
    return a;
}

static AnyValue *av_empty(void)
{
    return NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
}

static AnyValue *av_array(size_t n, AnyValue **v)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    a->array_value = NEW(ArrayValue, opentelemetry__proto__common__v1__array_value__init);
    a->array_value->n_values = n;
    a->array_value->values = v;
    return a;
}

static AnyValue *av_map(size_t n, KeyValue **v)
{
    AnyValue *a = NEW(AnyValue, opentelemetry__proto__common__v1__any_value__init);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    a->kvlist_value = NEW(KeyValueList, opentelemetry__proto__common__v1__key_value_list__init);
    a->kvlist_value->n_values = n;
    a->kvlist_value->values = v;
    return a;
}

static KeyValue *kv(const char *k, AnyValue *v)
{
    KeyValue *x = NEW(KeyValue, opentelemetry__proto__common__v1__key_value__init);
    x->key = S(k);
    x->value = v;
    return x;
}

#define ATTRS(obj, field, ...)                     \
    do {                                           \
        (obj)->n_##field = NARR(__VA_ARGS__);      \
        (obj)->field = ARR(KeyValue, __VA_ARGS__); \
    } while (0)

static Scope *scope(const char *name, const char *version)
{
    Scope *s = NEW(Scope, opentelemetry__proto__common__v1__instrumentation_scope__init);
    s->name = S(name);
    s->version = S(version);
    return s;
}

/* ---- batches --------------------------------------------------------------------- */

static sy_batch_t *batch_of(sy_signal_t signal, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    sy_batch_t *b = sy__batch_new(signal, "test");
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    protobuf_c_message_pack(m, buf);
    char err[256];
    int rc = sy__batch_set_encoded(b, buf, len, err, sizeof(err));
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    /* SY_VIEW_SEED_DIR=dir: write each request as a seed of tests/fuzz/fuzz_view. */
    const char *dir = getenv("SY_VIEW_SEED_DIR");
    if (dir && len < 4096) {
        static int seq;
        char path[512];
        snprintf(path, sizeof(path), "%s/test_view_%d.bin", dir, seq++);
        FILE *f = fopen(path, "wb");
        if (f) {
            uint8_t head[2] = {signal == SY_SIGNAL_TRACES    ? 0
                               : signal == SY_SIGNAL_METRICS ? 1
                                                             : 2,
                               0};
            fwrite(head, 1, 2, f);
            fwrite(buf, 1, len, f);
            fclose(f);
        }
    }
    return b;
}

/* Packs m into a malloc'd buffer. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* The batch's bytes decode to what `expected` packs to (unpacked and packed
 * again, which is canonical: field order and defaults as protobuf-c writes). */
static void assert_batch_is(sy_batch_t *b, const ProtobufCMessage *expected)
{
    size_t len, elen, glen;
    const uint8_t *enc = sy__batch_encoded(b, &len);
    assert_non_null(enc);
    ProtobufCMessage *got = protobuf_c_message_unpack(expected->descriptor, NULL, len, enc);
    assert_non_null(got);
    uint8_t *g = pack(got, &glen), *e = pack(expected, &elen);
    if (glen != elen || memcmp(g, e, elen) != 0) {
        fprintf(stderr, "got %zu bytes, expected %zu\n", glen, elen);
        fail_msg("the committed request differs from the expected one");
    }
    free(g);
    free(e);
    protobuf_c_message_free_unpacked(got, NULL);
    uint64_t items;
    assert_int_equal(sy__pb_validate(expected->descriptor, enc, len, &items, NULL, 0), 0);
    assert_int_equal(sy__batch_items(b), items);
}

/* ---- comparing the view with decoded structs ---------------------------------------- */

static void check_any(const sy_value_t *v, const AnyValue *a);

static void check_str_value(const sy_value_t *v, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0) {
        assert_true(v->type == SY_VALUE_STRING || v->type == SY_VALUE_EMPTY);
    } else {
        assert_int_equal(v->type, SY_VALUE_STRING);
    }
    assert_int_equal(v->len, n);
    assert_memory_equal(v->str, n ? s : "", n);
}

static void check_kvs(const sy_value_t *v, size_t n, KeyValue **kvs)
{
    assert_int_equal(v->type, SY_VALUE_MAP);
    assert_int_equal(v->len, n);
    sy_value_iter_t it = {.value = v};
    sy_value_t k, x;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sy__view_value_next(&it, &k, &x), 1);
        check_str_value(&k, kvs[i]->key);
        check_any(&x, kvs[i]->value);
    }
    assert_int_equal(sy__view_value_next(&it, &k, &x), 0);
}

static void check_any(const sy_value_t *v, const AnyValue *a)
{
    if (!a || a->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
        assert_int_equal(v->type, SY_VALUE_EMPTY);
        return;
    }
    switch (a->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        assert_int_equal(v->type, SY_VALUE_STRING);
        check_str_value(v, a->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        assert_int_equal(v->type, SY_VALUE_BOOL);
        assert_int_equal(v->b, a->bool_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        assert_int_equal(v->type, SY_VALUE_INT);
        assert_int_equal(v->i, a->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        assert_int_equal(v->type, SY_VALUE_DOUBLE);
        assert_true(v->d == a->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        assert_int_equal(v->type, SY_VALUE_BYTES);
        assert_int_equal(v->len, a->bytes_value.len);
        assert_memory_equal(v->bytes, a->bytes_value.data, v->len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        assert_int_equal(v->type, SY_VALUE_ARRAY);
        assert_int_equal(v->len, a->array_value->n_values);
        sy_value_iter_t it = {.value = v};
        sy_value_t x;
        for (size_t i = 0; i < a->array_value->n_values; i++) {
            assert_int_equal(sy__view_value_next(&it, NULL, &x), 1);
            check_any(&x, a->array_value->values[i]);
        }
        assert_int_equal(sy__view_value_next(&it, NULL, &x), 0);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        check_kvs(v, a->kvlist_value->n_values, a->kvlist_value->values);
        break;
    default:
        fail();
    }
}

static void check_attrs(sy_view_node_t *n, size_t count, KeyValue **attrs)
{
    assert_int_equal(sy__view_attr_count(n), count);
    for (size_t i = 0; i < count; i++) {
        sy_value_t k, v, g;
        assert_int_equal(sy__view_attr_at(n, i, &k, &v), 0);
        check_str_value(&k, attrs[i]->key);
        check_any(&v, attrs[i]->value);
        assert_int_equal(sy__view_attr_get(n, attrs[i]->key, strlen(attrs[i]->key), &g), 0);
        check_any(&g, attrs[i]->value);
    }
    sy_value_t none;
    assert_int_equal(sy__view_attr_get(n, "no.such.key", 11, &none), SY_EAGAIN);
    assert_int_equal(none.type, SY_VALUE_EMPTY);
}

static void check_str(sy_view_node_t *n, sy_field_t f, const char *s)
{
    sy_value_t v;
    assert_int_equal(sy__view_get(n, f, &v), 0);
    check_str_value(&v, s);
}

static void check_bytes(sy_view_node_t *n, sy_field_t f, ProtobufCBinaryData d)
{
    sy_value_t v;
    assert_int_equal(sy__view_get(n, f, &v), 0);
    assert_true(v.type == (d.len ? SY_VALUE_BYTES : v.type));
    assert_int_equal(v.len, d.len);
    if (d.len) assert_memory_equal(v.bytes, d.data, d.len);
}

static void check_int(sy_view_node_t *n, sy_field_t f, int64_t i)
{
    sy_value_t v;
    assert_int_equal(sy__view_get(n, f, &v), 0);
    assert_true(v.type == SY_VALUE_INT || (v.type == SY_VALUE_EMPTY && i == 0));
    assert_int_equal(v.i, i);
}

static void check_double(sy_view_node_t *n, sy_field_t f, double d)
{
    sy_value_t v;
    assert_int_equal(sy__view_get(n, f, &v), 0);
    assert_true(v.type == SY_VALUE_DOUBLE || (v.type == SY_VALUE_EMPTY && d == 0));
    assert_true(v.d == d);
}

static void check_scope_and_resource(sy_view_node_t *res, sy_view_node_t *sc, const Resource *r,
                                     const char *rurl, const Scope *s, const char *surl)
{
    assert_int_equal(sy__view_kind(res), SY_NODE_RESOURCE);
    assert_int_equal(sy__view_kind(sc), SY_NODE_SCOPE);
    assert_ptr_equal(sy__view_parent_api(sc), res);
    check_str(res, SY_FIELD_SCHEMA_URL, rurl);
    check_str(sc, SY_FIELD_SCHEMA_URL, surl);
    if (r) {
        check_attrs(res, r->n_attributes, r->attributes);
        check_int(res, SY_FIELD_DROPPED_ATTRIBUTES, r->dropped_attributes_count);
    } else {
        assert_int_equal(sy__view_attr_count(res), 0);
    }
    check_str(sc, SY_FIELD_SCOPE_NAME, s ? s->name : NULL);
    check_str(sc, SY_FIELD_SCOPE_VERSION, s ? s->version : NULL);
    check_int(sc, SY_FIELD_DROPPED_ATTRIBUTES, s ? s->dropped_attributes_count : 0);
    if (s)
        check_attrs(sc, s->n_attributes, s->attributes);
    else
        assert_int_equal(sy__view_attr_count(sc), 0);
}

/* ---- traces ------------------------------------------------------------------------- */

/* The request the trace tests use; with `edited`, as the edit test expects it
 * after its edits. */
static TraceReq *make_traces(bool edited)
{
    AnyValue *nested = av_array(4, ARR(AnyValue, av_int(1), av_str("two"),
                                       av_array(1, ARR(AnyValue, av_double(3.0))),
                                       av_map(1, ARR(KeyValue, kv("k", av_str("v"))))));
    AnyValue *map = av_map(2, ARR(KeyValue, kv("a", av_int(1)),
                                  kv("b", av_map(1, ARR(KeyValue, kv("c", av_bool(true)))))));

    Span *s0 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    s0->trace_id = B("0123456789abcdef", 16);
    s0->span_id = B("spanid00", 8);
    s0->parent_span_id = B("parent00", 8);
    s0->trace_state = S("ts=1");
    s0->flags = 0x101;
    s0->name = S(edited ? "renamed-span0" : "span0");
    s0->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s0->start_time_unix_nano = 1700000000000000001ull;
    s0->end_time_unix_nano = 1700000000000000999ull;
    if (!edited)
        ATTRS(s0, attributes, kv("str", av_str("hello")), kv("int", av_int(-42)),
              kv("double", av_double(2.5)), kv("bool", av_bool(true)),
              kv("bytes", av_bytes("\0\1\2", 3)), kv("array", nested), kv("map", map),
              kv("empty", av_empty()));
    else
        ATTRS(s0, attributes, kv("str", av_str("upd")), kv("int", av_double(1.5)),
              kv("double", av_double(2.5)), kv("bytes", av_bytes("\0\1\2", 3)), kv("array", nested),
              kv("map", map), kv("empty", av_empty()), kv("k.new", av_int(7)),
              kv("copied", nested));
    s0->dropped_attributes_count = 1;
    Event *e0 = NEW(Event, opentelemetry__proto__trace__v1__span__event__init);
    e0->time_unix_nano = 5;
    e0->name = S("event0");
    ATTRS(e0, attributes, kv("e", av_str("x")));
    e0->dropped_attributes_count = 2;
    Event *e1 = NEW(Event, opentelemetry__proto__trace__v1__span__event__init);
    e1->time_unix_nano = 6;
    e1->name = S("event1");
    s0->n_events = edited ? 1 : 2;
    s0->events = ARR(Event, e0, e1);
    s0->dropped_events_count = 3;
    Link *l0 = NEW(Link, opentelemetry__proto__trace__v1__span__link__init);
    l0->trace_id = B("fedcba9876543210", 16);
    l0->span_id = B("linkspan", 8);
    l0->trace_state = S("lts");
    ATTRS(l0, attributes, kv("l", av_int(9)));
    l0->dropped_attributes_count = 4;
    l0->flags = 0x100;
    s0->n_links = 1;
    s0->links = ARR(Link, l0);
    s0->dropped_links_count = 5;
    s0->status = NEW(Status, opentelemetry__proto__trace__v1__status__init);
    s0->status->message = S("bad");
    s0->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;

    Span *s1 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    s1->name = S("span1");
    if (edited) {
        s1->status = NEW(Status, opentelemetry__proto__trace__v1__status__init);
        s1->status->message = S("m");
        s1->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    }

    ResourceSpans *rs0 = NEW(ResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init);
    rs0->resource = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
    ATTRS(rs0->resource, attributes, kv("service.name", av_str("svc")), kv("k.int", av_int(42)));
    rs0->resource->dropped_attributes_count = 7;
    rs0->schema_url = S("https://rs0");
    ScopeSpans *ss0 = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
    ss0->scope = scope("lib", "1.0");
    ATTRS(ss0->scope, attributes, kv("s", av_str("x")));
    ss0->scope->dropped_attributes_count = 8;
    ss0->schema_url = S("https://ss0");
    ss0->n_spans = 2;
    ss0->spans = ARR(Span, s0, s1);
    rs0->n_scope_spans = 1;
    rs0->scope_spans = ARR(ScopeSpans, ss0);

    /* A resource without a Resource, a scope without an InstrumentationScope. */
    Span *s2 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    s2->name = S("span2");
    ATTRS(s2, attributes, kv("before", av_int(1)),
          kv(edited ? "renamed" : "rename.me", av_str("v")), kv("after", av_int(2)));
    ResourceSpans *rs1 = NEW(ResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init);
    ScopeSpans *ss1 = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
    ss1->n_spans = 1;
    ss1->spans = ARR(Span, s2);
    if (edited) {
        rs1->resource = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
        ATTRS(rs1->resource, attributes, kv("svc", av_str("new")));
        ss1->scope = scope("newscope", "");
    }
    rs1->n_scope_spans = 1;
    rs1->scope_spans = ARR(ScopeSpans, ss1);

    TraceReq *req = NEW(
        TraceReq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__init);
    req->n_resource_spans = 2;
    req->resource_spans = ARR(ResourceSpans, rs0, rs1);
    return req;
}

static void check_traces(sy_view_t *v, const TraceReq *req)
{
    sy_view_node_t *root = sy__view_root(v);
    assert_int_equal(sy__view_kind(root), SY_NODE_REQUEST);
    assert_null(sy__view_parent_api(root));
    assert_int_equal(sy__view_count(root, SY_VIEW_RESOURCES), req->n_resource_spans);
    assert_int_equal(sy__view_count(root, SY_VIEW_ITEMS), 0);
    assert_null(sy__view_at(root, SY_VIEW_RESOURCES, req->n_resource_spans));
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const ResourceSpans *rs = req->resource_spans[r];
        sy_view_node_t *res = sy__view_at(root, SY_VIEW_RESOURCES, r);
        assert_ptr_equal(sy__view_parent_api(res), root);
        assert_int_equal(sy__view_count(res, SY_VIEW_SCOPES), rs->n_scope_spans);
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const ScopeSpans *ss = rs->scope_spans[s];
            sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, s);
            check_scope_and_resource(res, sc, rs->resource, rs->schema_url, ss->scope,
                                     ss->schema_url);
            assert_int_equal(sy__view_count(sc, SY_VIEW_ITEMS), ss->n_spans);
            for (size_t i = 0; i < ss->n_spans; i++) {
                const Span *sp = ss->spans[i];
                sy_view_node_t *n = sy__view_at(sc, SY_VIEW_ITEMS, i);
                assert_int_equal(sy__view_kind(n), SY_NODE_SPAN);
                assert_ptr_equal(sy__view_parent_api(n), sc);
                check_bytes(n, SY_FIELD_TRACE_ID, sp->trace_id);
                check_bytes(n, SY_FIELD_SPAN_ID, sp->span_id);
                check_bytes(n, SY_FIELD_PARENT_SPAN_ID, sp->parent_span_id);
                check_str(n, SY_FIELD_TRACE_STATE, sp->trace_state);
                check_int(n, SY_FIELD_FLAGS, sp->flags);
                check_str(n, SY_FIELD_NAME, sp->name);
                check_int(n, SY_FIELD_KIND, sp->kind);
                check_int(n, SY_FIELD_START_TIME, (int64_t)sp->start_time_unix_nano);
                check_int(n, SY_FIELD_END_TIME, (int64_t)sp->end_time_unix_nano);
                check_attrs(n, sp->n_attributes, sp->attributes);
                check_int(n, SY_FIELD_DROPPED_ATTRIBUTES, sp->dropped_attributes_count);
                check_int(n, SY_FIELD_DROPPED_EVENTS, sp->dropped_events_count);
                check_int(n, SY_FIELD_DROPPED_LINKS, sp->dropped_links_count);
                check_int(n, SY_FIELD_STATUS_CODE, sp->status ? sp->status->code : 0);
                check_str(n, SY_FIELD_STATUS_MESSAGE, sp->status ? sp->status->message : NULL);
                /* Fields of the enclosing scope and resource, asked of the span. */
                check_str(n, SY_FIELD_SCOPE_NAME, ss->scope ? ss->scope->name : NULL);
                check_str(n, SY_FIELD_SCHEMA_URL, ss->schema_url);
                sy_value_t x;
                assert_int_equal(sy__view_get(n, SY_FIELD_SEVERITY_NUMBER, &x), SY_ENOTSUP);
                assert_int_equal(sy__view_count(n, SY_VIEW_EVENTS), sp->n_events);
                for (size_t e = 0; e < sp->n_events; e++) {
                    sy_view_node_t *en = sy__view_at(n, SY_VIEW_EVENTS, e);
                    assert_int_equal(sy__view_kind(en), SY_NODE_EVENT);
                    assert_ptr_equal(sy__view_parent_api(en), n);
                    check_int(en, SY_FIELD_TIME, (int64_t)sp->events[e]->time_unix_nano);
                    check_str(en, SY_FIELD_NAME, sp->events[e]->name);
                    check_attrs(en, sp->events[e]->n_attributes, sp->events[e]->attributes);
                    check_int(en, SY_FIELD_DROPPED_ATTRIBUTES,
                              sp->events[e]->dropped_attributes_count);
                }
                assert_int_equal(sy__view_count(n, SY_VIEW_LINKS), sp->n_links);
                for (size_t l = 0; l < sp->n_links; l++) {
                    sy_view_node_t *ln = sy__view_at(n, SY_VIEW_LINKS, l);
                    const Link *lk = sp->links[l];
                    assert_int_equal(sy__view_kind(ln), SY_NODE_LINK);
                    check_bytes(ln, SY_FIELD_TRACE_ID, lk->trace_id);
                    check_bytes(ln, SY_FIELD_SPAN_ID, lk->span_id);
                    check_str(ln, SY_FIELD_TRACE_STATE, lk->trace_state);
                    check_attrs(ln, lk->n_attributes, lk->attributes);
                    check_int(ln, SY_FIELD_DROPPED_ATTRIBUTES, lk->dropped_attributes_count);
                    check_int(ln, SY_FIELD_FLAGS, lk->flags);
                }
            }
        }
    }
}

static void test_read_traces(void **state)
{
    (void)state;
    TraceReq *req = make_traces(false);
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &req->base);
    sy_view_t *v = sy__view_open(b);
    assert_non_null(v);
    check_traces(v, req);
    sy__view_close(v);
    /* A batch built decoded is packed for the view. */
    sy_batch_t *d = sy__batch_new(SY_SIGNAL_TRACES, "test");
    const void *dec = sy__batch_request(b);
    assert_int_equal(sy__batch_set_decoded(d, (void *)dec), 0);
    v = sy__view_open(d);
    check_traces(v, req);
    sy__view_close(v);
    sy__batch_release(d);
    sy__batch_release(b);
}

/* Every kind of edit, then one commit; compared with the request built edited. */
static void test_edit_traces(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *root = sy__view_root(v);
    sy_view_node_t *r0 = sy__view_at(root, SY_VIEW_RESOURCES, 0);
    sy_view_node_t *r1 = sy__view_at(root, SY_VIEW_RESOURCES, 1);
    sy_view_node_t *sc0 = sy__view_at(r0, SY_VIEW_SCOPES, 0);
    sy_view_node_t *sc1 = sy__view_at(r1, SY_VIEW_SCOPES, 0);
    sy_view_node_t *s0 = sy__view_at(sc0, SY_VIEW_ITEMS, 0);
    sy_view_node_t *s1 = sy__view_at(sc0, SY_VIEW_ITEMS, 1);
    sy_view_node_t *s2 = sy__view_at(sc1, SY_VIEW_ITEMS, 0);

    sy_value_t name = {.type = SY_VALUE_STRING, .str = "renamed-span0", .len = 13};
    sy_value_t wrong = {.type = SY_VALUE_INT, .i = 1};
    assert_int_equal(sy__view_set(s0, SY_FIELD_NAME, &wrong), SY_EINVAL);
    assert_int_equal(sy__view_set(s0, SY_FIELD_NAME,
                                  &(sy_value_t){.type = SY_VALUE_STRING, .str = "first", .len = 5}),
                     0);
    assert_int_equal(sy__view_set(s0, SY_FIELD_NAME, &name), 0); /* the second set wins */
    assert_int_equal(sy__view_set(s0, SY_FIELD_SEVERITY_TEXT, &name), SY_ENOTSUP);
    /* Span 1 has no Status: one is made. */
    assert_int_equal(
        sy__view_set(s1, SY_FIELD_STATUS_CODE, &(sy_value_t){.type = SY_VALUE_INT, .i = 1}), 0);
    assert_int_equal(sy__view_set(s1, SY_FIELD_STATUS_MESSAGE,
                                  &(sy_value_t){.type = SY_VALUE_STRING, .str = "m", .len = 1}),
                     0);
    sy_value_t seven = {.type = SY_VALUE_INT, .i = 7};
    assert_int_equal(sy__view_attr_set(s0, "k.new", 5, &seven, SY_ATTR_INSERT), 0);
    assert_int_equal(sy__view_attr_set(s0, "k.new", 5, &seven, SY_ATTR_INSERT), SY_EAGAIN);
    sy_value_t upd = {.type = SY_VALUE_STRING, .str = "upd", .len = 3};
    assert_int_equal(sy__view_attr_set(s0, "str", 3, &upd, SY_ATTR_INSERT), SY_EAGAIN);
    assert_int_equal(sy__view_attr_set(s0, "str", 3, &upd, SY_ATTR_UPDATE), 0);
    assert_int_equal(sy__view_attr_set(s1, "x", 1, &upd, SY_ATTR_UPDATE), SY_EAGAIN);
    assert_int_equal(sy__view_attr_set(s0, "int", 3,
                                       &(sy_value_t){.type = SY_VALUE_DOUBLE, .d = 1.5},
                                       SY_ATTR_UPSERT),
                     0);
    assert_int_equal(sy__view_attr_delete(s0, "bool", 4), 0);
    assert_int_equal(sy__view_attr_delete(s0, "bool", 4), SY_EAGAIN);
    assert_int_equal(sy__view_attr_delete(s0, "nope", 4), SY_EAGAIN);
    /* An ARRAY read from the view is copied as it is encoded. */
    sy_value_t arr;
    assert_int_equal(sy__view_attr_get(s0, "array", 5, &arr), 0);
    assert_int_equal(sy__view_attr_set(s0, "copied", 6, &arr, SY_ATTR_UPSERT), 0);
    assert_int_equal(sy__view_attr_rename(s2, "rename.me", 9, "renamed", 7), 0);
    assert_int_equal(sy__view_attr_rename(s2, "rename.me", 9, "renamed", 7), SY_EAGAIN);
    /* No Resource and no InstrumentationScope on the wire: made for the edits. */
    sy_value_t nv = {.type = SY_VALUE_STRING, .str = "new", .len = 3};
    assert_int_equal(sy__view_attr_set(r1, "svc", 3, &nv, SY_ATTR_UPSERT), 0);
    assert_int_equal(
        sy__view_set(sc1, SY_FIELD_SCOPE_NAME,
                     &(sy_value_t){.type = SY_VALUE_STRING, .str = "newscope", .len = 8}),
        0);
    assert_int_equal(sy__view_drop(sy__view_at(s0, SY_VIEW_EVENTS, 1)), 0);
    /* Reads see the edits (read-your-writes; test_read_your_writes has more). */
    check_str(s0, SY_FIELD_NAME, "renamed-span0");

    assert_int_equal(sy__view_commit(v), 0);
    TraceReq *expected = make_traces(true);
    assert_batch_is(b, &expected->base);
    /* The view reads the new bytes. */
    check_traces(v, expected);
    sy__view_close(v);
    sy__batch_release(b);
}

/* Renaming onto an existing key replaces it; a key set after a rename, and
 * rename chains, follow the latest state. */
static void test_attr_rename_chain(void **state)
{
    (void)state;
    Span *s = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    s->name = S("s");
    ATTRS(s, attributes, kv("a", av_int(1)), kv("b", av_int(2)), kv("c", av_int(3)));
    ScopeSpans *ss = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
    ss->n_spans = 1;
    ss->spans = ARR(Span, s);
    ResourceSpans *rs = NEW(ResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init);
    rs->n_scope_spans = 1;
    rs->scope_spans = ARR(ScopeSpans, ss);
    TraceReq *req = NEW(
        TraceReq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__init);
    req->n_resource_spans = 1;
    req->resource_spans = ARR(ResourceSpans, rs);
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &req->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *n = sy__view_at(
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0),
        SY_VIEW_ITEMS, 0);
    assert_int_equal(sy__view_attr_rename(n, "a", 1, "b", 1), 0); /* b=1 where a was */
    assert_int_equal(sy__view_attr_rename(n, "b", 1, "d", 1), 0); /* d=1 there */
    assert_int_equal(
        sy__view_attr_set(n, "a", 1, &(sy_value_t){.type = SY_VALUE_INT, .i = 9}, SY_ATTR_INSERT),
        0); /* a is absent again */
    assert_int_equal(sy__view_attr_rename(n, "zz", 2, "y", 1), SY_EAGAIN);
    assert_int_equal(sy__view_commit(v), 0);
    ATTRS(s, attributes, kv("d", av_int(1)), kv("c", av_int(3)), kv("a", av_int(9)));
    assert_batch_is(b, &req->base);
    sy__view_close(v);
    sy__batch_release(b);
}

/* One span whose name has `len` bytes, in a request of `nres` resources. */
static TraceReq *one_span(size_t len, size_t nres)
{
    char *name = T(len + 1);
    for (size_t i = 0; i < len; i++)
        name[i] = (char)('a' + i % 26);
    ResourceSpans **rss = T(nres * sizeof(*rss));
    for (size_t r = 0; r < nres; r++) {
        Span *s = NEW(Span, opentelemetry__proto__trace__v1__span__init);
        s->name = r == nres / 2 ? name : S("other");
        s->trace_id = B("0123456789abcdef", 16);
        s->start_time_unix_nano = r;
        ScopeSpans *ss = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
        ss->scope = scope("lib", "1");
        ss->n_spans = 1;
        ss->spans = ARR(Span, s);
        rss[r] = NEW(ResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init);
        rss[r]->resource = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
        ATTRS(rss[r]->resource, attributes, kv("r", av_int((int64_t)r)));
        rss[r]->n_scope_spans = 1;
        rss[r]->scope_spans = ARR(ScopeSpans, ss);
    }
    TraceReq *req = NEW(
        TraceReq, opentelemetry__proto__collector__trace__v1__export_trace_service_request__init);
    req->n_resource_spans = nres;
    req->resource_spans = rss;
    return req;
}

/* Length prefixes that grow and shrink across 127/128 and 16383/16384 (span,
 * scope and resource all cross them at slightly different name lengths), and
 * the resources around the edited one come out byte for byte. */
static void test_varint_boundaries(void **state)
{
    (void)state;
    size_t sizes[64], n = 0;
    sizes[n++] = 0;
    sizes[n++] = 3;
    for (size_t s = 60; s <= 132; s += 3)
        sizes[n++] = s;
    for (size_t s = 16280; s <= 16390; s += 7)
        sizes[n++] = s;
    sizes[n++] = 20000;
    assert_true(n <= 64);
    char *name = malloc(20001);
    for (size_t i = 0; i < 20000; i++)
        name[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < n; i++) {
        TraceReq *from = one_span(sizes[i], 3);
        sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &from->base);
        size_t before_len;
        const uint8_t *before = sy__batch_encoded(b, &before_len);
        /* The bytes of resource 0 and 2 as fields of the request. */
        size_t r0 = protobuf_c_message_get_packed_size(&from->resource_spans[0]->base);
        size_t r2 = protobuf_c_message_get_packed_size(&from->resource_spans[2]->base);
        r0 += 2;
        r2 += 2;
        for (size_t j = 0; j < n; j++) {
            sy_batch_t *c = sy__batch_copy(b);
            sy_view_t *v = sy__view_open(c);
            sy_view_node_t *span = sy__view_at(
                sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 1), SY_VIEW_SCOPES, 0),
                SY_VIEW_ITEMS, 0);
            sy_value_t nv = {.type = SY_VALUE_STRING, .str = name, .len = sizes[j]};
            assert_int_equal(sy__view_set(span, SY_FIELD_NAME, &nv), 0);
            assert_int_equal(sy__view_commit(v), 0);
            sy__view_close(v);
            size_t nfree = nallocs;
            TraceReq *to = one_span(sizes[j], 3);
            assert_batch_is(c, &to->base);
            size_t after_len;
            const uint8_t *after = sy__batch_encoded(c, &after_len);
            assert_memory_equal(after, before, r0);
            assert_memory_equal(after + after_len - r2, before + before_len - r2, r2);
            while (nallocs > nfree)
                free(allocs[--nallocs]);
            sy__batch_release(c);
        }
        sy__batch_release(b);
    }
    free(name);
}

/* Dropping items drops the scopes and resources they leave empty. */
static void test_drop_items(void **state)
{
    (void)state;
    TraceReq *req = one_span(5, 3);
    /* Resource 1 gets a second span. */
    ScopeSpans *ss = req->resource_spans[1]->scope_spans[0];
    Span *extra = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    extra->name = S("extra");
    ss->n_spans = 2;
    ss->spans = ARR(Span, ss->spans[0], extra);
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &req->base);
    assert_int_equal(sy__batch_items(b), 4);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *root = sy__view_root(v);
    sy_view_node_t *sc0 = sy__view_at(sy__view_at(root, SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    sy_view_node_t *sc1 = sy__view_at(sy__view_at(root, SY_VIEW_RESOURCES, 1), SY_VIEW_SCOPES, 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc0, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc0, SY_VIEW_ITEMS, 0)), 0); /* once */
    assert_int_equal(sy__view_drop(sy__view_at(sc1, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_drop(root), SY_EINVAL);
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__batch_items(b), 2);
    req->n_resource_spans = 2;
    req->resource_spans[0] = req->resource_spans[1];
    req->resource_spans[1] = req->resource_spans[2];
    ss->n_spans = 1;
    ss->spans[0] = extra;
    assert_batch_is(b, &req->base);
    /* Everything: an empty request. */
    root = sy__view_root(v);
    for (size_t r = 0; r < sy__view_count(root, SY_VIEW_RESOURCES); r++)
        assert_int_equal(sy__view_drop(sy__view_at(root, SY_VIEW_RESOURCES, r)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__batch_items(b), 0);
    size_t len;
    assert_non_null(sy__batch_encoded(b, &len));
    assert_int_equal(len, 0);
    assert_int_equal(sy__view_count(sy__view_root(v), SY_VIEW_RESOURCES), 0);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- read-your-writes ------------------------------------------------------------------ */

static void check_attr_str(sy_view_node_t *n, const char *key, const char *want)
{
    sy_value_t v;
    assert_int_equal(sy__view_attr_get(n, key, strlen(key), &v), 0);
    check_str_value(&v, want);
}

/* The keys of n's attributes in order, comma-separated, as attr_at reads them. */
static const char *attr_keys(sy_view_node_t *n)
{
    static char out[512];
    size_t len = 0, count = sy__view_attr_count(n);
    out[0] = 0;
    for (size_t i = 0; i < count; i++) {
        sy_value_t k, x;
        assert_int_equal(sy__view_attr_at(n, i, &k, &x), 0);
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%.*s", i ? "," : "", (int)k.len,
                                k.str);
    }
    assert_int_equal(sy__view_attr_at(n, count, NULL, NULL), SY_EINVAL);
    return out;
}

/* After an edit, reads of that node return the pending value, as the commit will
 * write it: a statement set(attributes["b"], attributes["a"]) after
 * set(attributes["a"], "x") sees "x". */
static void test_read_your_writes(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *root = sy__view_root(v);
    sy_view_node_t *r1 = sy__view_at(root, SY_VIEW_RESOURCES, 1);
    sy_view_node_t *sc0 = sy__view_at(sy__view_at(root, SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    sy_view_node_t *sc1 = sy__view_at(r1, SY_VIEW_SCOPES, 0);
    sy_view_node_t *s0 = sy__view_at(sc0, SY_VIEW_ITEMS, 0);
    sy_view_node_t *s1 = sy__view_at(sc0, SY_VIEW_ITEMS, 1);
    sy_view_node_t *s2 = sy__view_at(sc1, SY_VIEW_ITEMS, 0);
    sy_value_t x = {.type = SY_VALUE_STRING, .str = "x", .len = 1}, got;

    /* set(attributes["a"], "x"); set(attributes["b"], attributes["a"]) */
    assert_int_equal(sy__view_attr_set(s2, "a", 1, &x, SY_ATTR_UPSERT), 0);
    assert_int_equal(sy__view_attr_get(s2, "a", 1, &got), 0);
    check_str_value(&got, "x");
    assert_int_equal(sy__view_attr_set(s2, "b", 1, &got, SY_ATTR_UPSERT), 0);
    check_attr_str(s2, "b", "x");
    assert_string_equal(attr_keys(s2), "before,rename.me,after,a,b");
    /* A set keeps the place; a rename keeps place and value; a delete removes. */
    sy_value_t y = {.type = SY_VALUE_STRING, .str = "y", .len = 1};
    assert_int_equal(sy__view_attr_set(s2, "before", 6, &y, SY_ATTR_UPDATE), 0);
    check_attr_str(s2, "before", "y");
    assert_int_equal(sy__view_attr_rename(s2, "rename.me", 9, "renamed", 7), 0);
    assert_int_equal(sy__view_attr_get(s2, "rename.me", 9, &got), SY_EAGAIN);
    check_attr_str(s2, "renamed", "v");
    assert_int_equal(sy__view_attr_delete(s2, "after", 5), 0);
    assert_int_equal(sy__view_attr_get(s2, "after", 5, &got), SY_EAGAIN);
    assert_string_equal(attr_keys(s2), "before,renamed,a,b");
    /* Renaming onto an existing key replaces it, in the renamed one's place. */
    assert_int_equal(sy__view_attr_rename(s2, "a", 1, "before", 6), 0);
    /* (a new attribute renamed is written after the other new ones, and read so) */
    assert_string_equal(attr_keys(s2), "renamed,b,before");
    check_attr_str(s2, "before", "x");
    sy_value_t k0;
    assert_int_equal(sy__view_attr_at(s2, 2, &k0, &got), 0);
    check_str_value(&k0, "before");
    check_str_value(&got, "x");
    /* INSERT and UPDATE test the state the reads show. */
    assert_int_equal(sy__view_attr_set(s2, "after", 5, &y, SY_ATTR_UPDATE), SY_EAGAIN);
    assert_int_equal(sy__view_attr_set(s2, "after", 5, &y, SY_ATTR_INSERT), 0);
    /* (set again after a delete, a key is written where it was) */
    assert_string_equal(attr_keys(s2), "renamed,after,b,before");

    /* Fields: a set reads back, an EMPTY reads absent, a made Status reads its code. */
    sy_value_t name = {.type = SY_VALUE_STRING, .str = "new-name", .len = 8};
    assert_int_equal(sy__view_set(s0, SY_FIELD_NAME, &name), 0);
    check_str(s0, SY_FIELD_NAME, "new-name");
    assert_int_equal(sy__view_set(s0, SY_FIELD_TRACE_STATE, &(sy_value_t){0}), 0);
    assert_int_equal(sy__view_get(s0, SY_FIELD_TRACE_STATE, &got), 0);
    assert_int_equal(got.type, SY_VALUE_EMPTY);
    assert_int_equal(sy__view_get(s1, SY_FIELD_STATUS_CODE, &got), 0);
    assert_int_equal(got.type, SY_VALUE_EMPTY);
    assert_int_equal(
        sy__view_set(s1, SY_FIELD_STATUS_CODE, &(sy_value_t){.type = SY_VALUE_INT, .i = 2}), 0);
    assert_int_equal(sy__view_get(s1, SY_FIELD_STATUS_CODE, &got), 0);
    assert_int_equal(got.type, SY_VALUE_INT);
    assert_int_equal(got.i, 2);
    assert_int_equal(
        sy__view_set(s0, SY_FIELD_START_TIME, &(sy_value_t){.type = SY_VALUE_INT, .i = 9}), 0);
    assert_int_equal(sy__view_get(s0, SY_FIELD_START_TIME, &got), 0);
    assert_int_equal(got.i, 9);
    /* A resource with no Resource on the wire: its attributes are made and read. */
    assert_int_equal(sy__view_attr_count(r1), 0);
    assert_int_equal(sy__view_attr_set(r1, "svc", 3, &x, SY_ATTR_INSERT), 0);
    assert_string_equal(attr_keys(r1), "svc");
    /* An item of the scope reads the scope's name as set. */
    assert_int_equal(sy__view_set(sc1, SY_FIELD_SCOPE_NAME, &name), 0);
    check_str(s2, SY_FIELD_SCOPE_NAME, "new-name");

    /* What was read before the commit is what the commit wrote. */
    char before[512];
    snprintf(before, sizeof(before), "%s", attr_keys(s2));
    assert_int_equal(sy__view_commit(v), 0);
    root = sy__view_root(v);
    r1 = sy__view_at(root, SY_VIEW_RESOURCES, 1);
    s2 = sy__view_at(sy__view_at(r1, SY_VIEW_SCOPES, 0), SY_VIEW_ITEMS, 0);
    assert_string_equal(attr_keys(s2), before);
    check_attr_str(s2, "before", "x");
    check_attr_str(s2, "b", "x");
    check_attr_str(s2, "after", "y");
    check_str(s2, SY_FIELD_SCOPE_NAME, "new-name");
    assert_string_equal(attr_keys(r1), "svc");
    s0 = sy__view_at(sy__view_at(sy__view_at(root, SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0),
                     SY_VIEW_ITEMS, 0);
    check_str(s0, SY_FIELD_NAME, "new-name");
    sy__view_close(v);
    sy__batch_release(b);
}

static sy_view_node_t *first_span(sy_view_t *v)
{
    sy_view_node_t *r0 = sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0);
    return sy__view_at(sy__view_at(r0, SY_VIEW_SCOPES, 0), SY_VIEW_ITEMS, 0);
}

/* A string set through the view that is not UTF-8 fails the commit, which changes
 * nothing; the view is usable again afterwards. */
static void test_commit_refuses_bad_utf8(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    size_t len0;
    const uint8_t *enc0 = sy__batch_encoded(b, &len0);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *s0;
    sy_value_t bad = {.type = SY_VALUE_STRING, .str = "a\xc3", .len = 2};
    sy_value_t good = {.type = SY_VALUE_STRING, .str = "\xc3\xa9", .len = 2};
    /* As a value, as a key, as a field, as a new key of a rename. */
    for (int way = 0; way < 4; way++) {
        s0 = first_span(v); /* a commit, refused too, resets the view */
        if (way == 0) assert_int_equal(sy__view_attr_set(s0, "k", 1, &bad, SY_ATTR_UPSERT), 0);
        if (way == 1) assert_int_equal(sy__view_attr_set(s0, "\xff", 1, &good, SY_ATTR_UPSERT), 0);
        if (way == 2) assert_int_equal(sy__view_set(s0, SY_FIELD_NAME, &bad), 0);
        if (way == 3) assert_int_equal(sy__view_attr_rename(s0, "str", 3, "s\xfe", 2), 0);
        assert_int_equal(sy__view_commit(v), SY_EINVAL);
        size_t len;
        assert_ptr_equal(sy__batch_encoded(b, &len), enc0);
        assert_int_equal(len, len0);
        assert_int_equal(sy__batch_items(b), 3);
    }
    /* A bad value replaced by a good one before the commit is not refused; bytes
     * are never checked as UTF-8. */
    s0 = first_span(v);
    assert_int_equal(sy__view_attr_set(s0, "k", 1, &bad, SY_ATTR_UPSERT), 0);
    assert_int_equal(sy__view_attr_set(s0, "k", 1, &good, SY_ATTR_UPSERT), 0);
    assert_int_equal(
        sy__view_set(
            s0, SY_FIELD_TRACE_ID,
            &(sy_value_t){.type = SY_VALUE_BYTES, .bytes = (const uint8_t *)"\xff", .len = 1}),
        0);
    assert_int_equal(sy__view_commit(v), 0);
    s0 = sy__view_at(
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0),
        SY_VIEW_ITEMS, 0);
    check_attr_str(s0, "k", "\xc3\xa9");
    /* An ARRAY whose private bytes are not an ArrayValue is refused at commit. */
    sy_value_t forged = {.type = SY_VALUE_ARRAY,
                         .priv = "\x0a\x05zz",
                         .priv_len = 4,
                         .priv_kind = 1 /* SY__PK_ANYARRAY */};
    assert_int_equal(sy__view_attr_set(s0, "arr", 3, &forged, SY_ATTR_UPSERT), 0);
    assert_int_equal(sy__view_commit(v), SY_EINVAL);
    sy__view_close(v);
    sy__batch_release(b);
}

/* The commit counts items from its drops without walking what it wrote: dropping
 * a scope, a metric, points and a resource leaves the count the walk finds. */
static void test_trusted_commit_counts(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    assert_true(sy__batch_encoded_trusted(b));
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *root = sy__view_root(v);
    /* Resource 0's only scope (2 spans) by the scope, not indexed below it. */
    assert_int_equal(
        sy__view_drop(sy__view_at(sy__view_at(root, SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_true(sy__batch_encoded_trusted(b));
    assert_int_equal(sy__batch_items(b), 1);
    size_t len;
    const uint8_t *enc = sy__batch_encoded(b, &len);
    uint64_t walked;
    assert_int_equal(sy__pb_validate(sy__signal_request_descriptor(SY_SIGNAL_TRACES), enc, len,
                                     &walked, NULL, 0),
                     0);
    assert_int_equal(walked, 1);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- metrics -------------------------------------------------------------------------- */

static Exemplar *exemplar(bool as_int)
{
    Exemplar *e = NEW(Exemplar, opentelemetry__proto__metrics__v1__exemplar__init);
    ATTRS(e, filtered_attributes, kv("fa", av_str("x")));
    e->time_unix_nano = 77;
    if (as_int) {
        e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
        e->as_int = -5;
    } else {
        e->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
        e->as_double = 0.25;
    }
    e->span_id = B("exspan00", 8);
    e->trace_id = B("extrace000000000", 16);
    return e;
}

static NumberDP *number(bool as_int, double v)
{
    NumberDP *p = NEW(NumberDP, opentelemetry__proto__metrics__v1__number_data_point__init);
    ATTRS(p, attributes, kv("p", av_double(v)));
    p->start_time_unix_nano = 10;
    p->time_unix_nano = 20;
    if (as_int) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = (int64_t)v;
    } else {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double = v;
    }
    p->flags = 1;
    p->n_exemplars = 2;
    p->exemplars = ARR(Exemplar, exemplar(false), exemplar(true));
    return p;
}

static Metric *metric(const char *name)
{
    Metric *m = NEW(Metric, opentelemetry__proto__metrics__v1__metric__init);
    m->name = S(name);
    m->description = S("desc");
    m->unit = S("ms");
    ATTRS(m, metadata, kv("meta", av_int(1)));
    return m;
}

static MetricsReq *make_metrics(void)
{
    Metric *g = metric("g");
    g->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    g->gauge = NEW(Opentelemetry__Proto__Metrics__V1__Gauge,
                   opentelemetry__proto__metrics__v1__gauge__init);
    g->gauge->n_data_points = 2;
    g->gauge->data_points = ARR(NumberDP, number(false, 1.5), number(true, 7));

    Metric *s = metric("s");
    s->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    s->sum =
        NEW(Opentelemetry__Proto__Metrics__V1__Sum, opentelemetry__proto__metrics__v1__sum__init);
    s->sum->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    s->sum->is_monotonic = true;
    s->sum->n_data_points = 1;
    s->sum->data_points = ARR(NumberDP, number(true, 3));

    Metric *h = metric("h");
    h->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    h->histogram = NEW(Opentelemetry__Proto__Metrics__V1__Histogram,
                       opentelemetry__proto__metrics__v1__histogram__init);
    h->histogram->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    HistDP *hp = NEW(HistDP, opentelemetry__proto__metrics__v1__histogram_data_point__init);
    ATTRS(hp, attributes, kv("hp", av_bool(false)));
    hp->start_time_unix_nano = 1;
    hp->time_unix_nano = 2;
    hp->count = 6;
    hp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    hp->sum = 12.5;
    hp->n_bucket_counts = 3;
    hp->bucket_counts = T(3 * sizeof(uint64_t));
    hp->bucket_counts[0] = 1, hp->bucket_counts[1] = 2, hp->bucket_counts[2] = 3;
    hp->n_explicit_bounds = 2;
    hp->explicit_bounds = T(2 * sizeof(double));
    hp->explicit_bounds[0] = 0.5, hp->explicit_bounds[1] = 1.5;
    hp->n_exemplars = 1;
    hp->exemplars = ARR(Exemplar, exemplar(false));
    hp->flags = 0;
    hp->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
    hp->min = 0.1;
    hp->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
    hp->max = 9.9;
    h->histogram->n_data_points = 1;
    h->histogram->data_points = ARR(HistDP, hp);

    Metric *e = metric("e");
    e->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    e->exponential_histogram = NEW(Opentelemetry__Proto__Metrics__V1__ExponentialHistogram,
                                   opentelemetry__proto__metrics__v1__exponential_histogram__init);
    e->exponential_histogram->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    ExpDP *ep =
        NEW(ExpDP, opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init);
    ATTRS(ep, attributes, kv("ep", av_int(3)));
    ep->start_time_unix_nano = 3;
    ep->time_unix_nano = 4;
    ep->count = 8;
    ep->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    ep->sum = 4.0;
    ep->scale = -3;
    ep->zero_count = 4;
    ep->positive =
        NEW(Buckets,
            opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init);
    ep->positive->offset = 2;
    ep->positive->n_bucket_counts = 2;
    ep->positive->bucket_counts = T(2 * sizeof(uint64_t));
    ep->positive->bucket_counts[0] = 1, ep->positive->bucket_counts[1] = 300;
    ep->negative =
        NEW(Buckets,
            opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init);
    ep->negative->offset = -1;
    ep->negative->n_bucket_counts = 1;
    ep->negative->bucket_counts = T(sizeof(uint64_t));
    ep->negative->bucket_counts[0] = 5;
    ep->flags = 1;
    ep->n_exemplars = 1;
    ep->exemplars = ARR(Exemplar, exemplar(true));
    ep->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN;
    ep->min = -2;
    ep->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX;
    ep->max = 2;
    ep->zero_threshold = 0.001;
    e->exponential_histogram->n_data_points = 1;
    e->exponential_histogram->data_points = ARR(ExpDP, ep);

    Metric *q = metric("q");
    q->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    q->summary = NEW(Opentelemetry__Proto__Metrics__V1__Summary,
                     opentelemetry__proto__metrics__v1__summary__init);
    SummaryDP *qp = NEW(SummaryDP, opentelemetry__proto__metrics__v1__summary_data_point__init);
    ATTRS(qp, attributes, kv("qp", av_str("s")));
    qp->start_time_unix_nano = 5;
    qp->time_unix_nano = 6;
    qp->count = 2;
    qp->sum = 3.0;
    Quantile *q0 = NEW(
        Quantile, opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init);
    q0->quantile = 0.5, q0->value = 1.0;
    Quantile *q1 = NEW(
        Quantile, opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init);
    q1->quantile = 0.99, q1->value = 2.0;
    qp->n_quantile_values = 2;
    qp->quantile_values = ARR(Quantile, q0, q1);
    qp->flags = 0;
    q->summary->n_data_points = 1;
    q->summary->data_points = ARR(SummaryDP, qp);

    ScopeMetrics *sm = NEW(ScopeMetrics, opentelemetry__proto__metrics__v1__scope_metrics__init);
    sm->scope = scope("meter", "2");
    sm->n_metrics = 5;
    sm->metrics = ARR(Metric, g, s, h, e, q);
    ResourceMetrics *rm =
        NEW(ResourceMetrics, opentelemetry__proto__metrics__v1__resource_metrics__init);
    rm->resource = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
    ATTRS(rm->resource, attributes, kv("service.name", av_str("m")));
    rm->n_scope_metrics = 1;
    rm->scope_metrics = ARR(ScopeMetrics, sm);
    MetricsReq *req =
        NEW(MetricsReq,
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init);
    req->n_resource_metrics = 1;
    req->resource_metrics = ARR(ResourceMetrics, rm);
    return req;
}

static void check_array_u64(sy_view_node_t *n, sy_field_t f, size_t count, const uint64_t *want)
{
    sy_value_t v, x;
    assert_int_equal(sy__view_get(n, f, &v), 0);
    assert_int_equal(v.type, SY_VALUE_ARRAY);
    assert_int_equal(v.len, count);
    sy_value_iter_t it = {.value = &v};
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(sy__view_value_next(&it, NULL, &x), 1);
        assert_int_equal(x.type, SY_VALUE_INT);
        assert_int_equal(x.i, (int64_t)want[i]);
    }
    assert_int_equal(sy__view_value_next(&it, NULL, &x), 0);
}

static void check_exemplars(sy_view_node_t *n, size_t count, Exemplar **ex)
{
    assert_int_equal(sy__view_count(n, SY_VIEW_EXEMPLARS), count);
    for (size_t i = 0; i < count; i++) {
        sy_view_node_t *e = sy__view_at(n, SY_VIEW_EXEMPLARS, i);
        assert_int_equal(sy__view_kind(e), SY_NODE_EXEMPLAR);
        check_attrs(e, ex[i]->n_filtered_attributes, ex[i]->filtered_attributes);
        check_int(e, SY_FIELD_TIME, (int64_t)ex[i]->time_unix_nano);
        if (ex[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT)
            check_int(e, SY_FIELD_VALUE, ex[i]->as_int);
        else
            check_double(e, SY_FIELD_VALUE, ex[i]->as_double);
        check_bytes(e, SY_FIELD_SPAN_ID, ex[i]->span_id);
        check_bytes(e, SY_FIELD_TRACE_ID, ex[i]->trace_id);
    }
}

static void test_read_metrics(void **state)
{
    (void)state;
    MetricsReq *req = make_metrics();
    sy_batch_t *b = batch_of(SY_SIGNAL_METRICS, &req->base);
    assert_int_equal(sy__batch_items(b), 6);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *res = sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0);
    sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, 0);
    const ResourceMetrics *rm = req->resource_metrics[0];
    check_scope_and_resource(res, sc, rm->resource, rm->schema_url, rm->scope_metrics[0]->scope,
                             rm->scope_metrics[0]->schema_url);
    const ScopeMetrics *sm = rm->scope_metrics[0];
    assert_int_equal(sy__view_count(sc, SY_VIEW_METRICS), 5);
    assert_int_equal(sy__view_count(sc, SY_VIEW_ITEMS), 6);
    static const int types[5] = {SY_METRIC_TYPE_GAUGE, SY_METRIC_TYPE_SUM, SY_METRIC_TYPE_HISTOGRAM,
                                 SY_METRIC_TYPE_EXP_HISTOGRAM, SY_METRIC_TYPE_SUMMARY};
    size_t item = 0;
    for (size_t m = 0; m < 5; m++) {
        const Metric *mm = sm->metrics[m];
        sy_view_node_t *mn = sy__view_at(sc, SY_VIEW_METRICS, m);
        assert_int_equal(sy__view_kind(mn), SY_NODE_METRIC);
        assert_ptr_equal(sy__view_parent_api(mn), sc);
        check_str(mn, SY_FIELD_METRIC_NAME, mm->name);
        check_str(mn, SY_FIELD_NAME, mm->name);
        check_str(mn, SY_FIELD_METRIC_DESCRIPTION, mm->description);
        check_str(mn, SY_FIELD_METRIC_UNIT, mm->unit);
        check_int(mn, SY_FIELD_METRIC_TYPE, types[m]);
        check_attrs(mn, mm->n_metadata, mm->metadata);
        size_t npoints = sy__view_count(mn, SY_VIEW_ITEMS);
        for (size_t i = 0; i < npoints; i++) {
            sy_view_node_t *p = sy__view_at(mn, SY_VIEW_ITEMS, i);
            assert_ptr_equal(sy__view_at(sc, SY_VIEW_ITEMS, item++), p);
            assert_ptr_equal(sy__view_parent_api(p), mn);
            check_str(p, SY_FIELD_METRIC_NAME, mm->name); /* asked of the point */
            switch (mm->data_case) {
            case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
                const NumberDP *d =
                    mm->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE
                        ? mm->gauge->data_points[i]
                        : mm->sum->data_points[i];
                assert_int_equal(
                    npoints,
                    mm->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ? 2 : 1);
                assert_int_equal(sy__view_kind(p), SY_NODE_NUMBER_POINT);
                check_attrs(p, d->n_attributes, d->attributes);
                check_int(p, SY_FIELD_START_TIME, (int64_t)d->start_time_unix_nano);
                check_int(p, SY_FIELD_TIME, (int64_t)d->time_unix_nano);
                if (d->value_case ==
                    OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
                    check_int(p, SY_FIELD_VALUE, d->as_int);
                else
                    check_double(p, SY_FIELD_VALUE, d->as_double);
                check_int(p, SY_FIELD_FLAGS, d->flags);
                check_exemplars(p, d->n_exemplars, d->exemplars);
                if (mm->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM) {
                    check_int(mn, SY_FIELD_TEMPORALITY, mm->sum->aggregation_temporality);
                    sy_value_t mono;
                    assert_int_equal(sy__view_get(mn, SY_FIELD_MONOTONIC, &mono), 0);
                    assert_int_equal(mono.type, SY_VALUE_BOOL);
                    assert_true(mono.b);
                }
                break;
            }
            case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
                const HistDP *d = mm->histogram->data_points[i];
                assert_int_equal(sy__view_kind(p), SY_NODE_HISTOGRAM_POINT);
                check_int(mn, SY_FIELD_TEMPORALITY, mm->histogram->aggregation_temporality);
                check_attrs(p, d->n_attributes, d->attributes);
                check_int(p, SY_FIELD_START_TIME, (int64_t)d->start_time_unix_nano);
                check_int(p, SY_FIELD_TIME, (int64_t)d->time_unix_nano);
                check_int(p, SY_FIELD_COUNT, (int64_t)d->count);
                check_double(p, SY_FIELD_SUM, d->sum);
                check_double(p, SY_FIELD_MIN, d->min);
                check_double(p, SY_FIELD_MAX, d->max);
                check_int(p, SY_FIELD_FLAGS, d->flags);
                check_array_u64(p, SY_FIELD_BUCKET_COUNTS, d->n_bucket_counts, d->bucket_counts);
                sy_value_t bv, x;
                assert_int_equal(sy__view_get(p, SY_FIELD_EXPLICIT_BOUNDS, &bv), 0);
                assert_int_equal(bv.len, d->n_explicit_bounds);
                sy_value_iter_t it = {.value = &bv};
                for (size_t k = 0; k < d->n_explicit_bounds; k++) {
                    assert_int_equal(sy__view_value_next(&it, NULL, &x), 1);
                    assert_int_equal(x.type, SY_VALUE_DOUBLE);
                    assert_true(x.d == d->explicit_bounds[k]);
                }
                assert_int_equal(sy__view_value_next(&it, NULL, &x), 0);
                check_exemplars(p, d->n_exemplars, d->exemplars);
                break;
            }
            case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
                const ExpDP *d = mm->exponential_histogram->data_points[i];
                assert_int_equal(sy__view_kind(p), SY_NODE_EXP_HISTOGRAM_POINT);
                check_attrs(p, d->n_attributes, d->attributes);
                check_int(p, SY_FIELD_START_TIME, (int64_t)d->start_time_unix_nano);
                check_int(p, SY_FIELD_TIME, (int64_t)d->time_unix_nano);
                check_int(p, SY_FIELD_COUNT, (int64_t)d->count);
                check_double(p, SY_FIELD_SUM, d->sum);
                check_int(p, SY_FIELD_SCALE, d->scale);
                check_int(p, SY_FIELD_ZERO_COUNT, (int64_t)d->zero_count);
                check_int(p, SY_FIELD_POSITIVE_OFFSET, d->positive->offset);
                check_array_u64(p, SY_FIELD_POSITIVE_BUCKETS, d->positive->n_bucket_counts,
                                d->positive->bucket_counts);
                check_int(p, SY_FIELD_NEGATIVE_OFFSET, d->negative->offset);
                check_array_u64(p, SY_FIELD_NEGATIVE_BUCKETS, d->negative->n_bucket_counts,
                                d->negative->bucket_counts);
                check_int(p, SY_FIELD_FLAGS, d->flags);
                check_double(p, SY_FIELD_MIN, d->min);
                check_double(p, SY_FIELD_MAX, d->max);
                check_double(p, SY_FIELD_ZERO_THRESHOLD, d->zero_threshold);
                check_exemplars(p, d->n_exemplars, d->exemplars);
                break;
            }
            case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
                const SummaryDP *d = mm->summary->data_points[i];
                assert_int_equal(sy__view_kind(p), SY_NODE_SUMMARY_POINT);
                check_attrs(p, d->n_attributes, d->attributes);
                check_int(p, SY_FIELD_START_TIME, (int64_t)d->start_time_unix_nano);
                check_int(p, SY_FIELD_TIME, (int64_t)d->time_unix_nano);
                check_int(p, SY_FIELD_COUNT, (int64_t)d->count);
                check_double(p, SY_FIELD_SUM, d->sum);
                sy_value_t qv, k, x;
                assert_int_equal(sy__view_get(p, SY_FIELD_QUANTILES, &qv), 0);
                assert_int_equal(qv.type, SY_VALUE_MAP);
                assert_int_equal(qv.len, d->n_quantile_values);
                sy_value_iter_t it = {.value = &qv};
                for (size_t j = 0; j < d->n_quantile_values; j++) {
                    assert_int_equal(sy__view_value_next(&it, &k, &x), 1);
                    assert_true(k.d == d->quantile_values[j]->quantile);
                    assert_true(x.d == d->quantile_values[j]->value);
                }
                assert_int_equal(sy__view_count(p, SY_VIEW_EXEMPLARS), 0);
                break;
            }
            default:
                fail();
            }
        }
    }
    assert_int_equal(item, 6);
    sy__view_close(v);
    sy__batch_release(b);
}

/* Edits on metrics, and drops that empty a metric and then the scope. */
static void test_edit_metrics(void **state)
{
    (void)state;
    MetricsReq *req = make_metrics();
    sy_batch_t *b = batch_of(SY_SIGNAL_METRICS, &req->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *sc =
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    sy_view_node_t *g = sy__view_at(sc, SY_VIEW_METRICS, 0);
    sy_view_node_t *s = sy__view_at(sc, SY_VIEW_METRICS, 1);
    /* Both gauge points go: the gauge goes. */
    assert_int_equal(sy__view_drop(sy__view_at(g, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_drop(sy__view_at(g, SY_VIEW_ITEMS, 1)), 0);
    /* The sum's point changes its value from int to double; the sum its name. */
    sy_view_node_t *sp = sy__view_at(s, SY_VIEW_ITEMS, 0);
    assert_int_equal(
        sy__view_set(sp, SY_FIELD_VALUE, &(sy_value_t){.type = SY_VALUE_DOUBLE, .d = 8.5}), 0);
    assert_int_equal(sy__view_set(sp, SY_FIELD_METRIC_NAME,
                                  &(sy_value_t){.type = SY_VALUE_STRING, .str = "s2", .len = 2}),
                     0);
    assert_int_equal(
        sy__view_set(s, SY_FIELD_TEMPORALITY, &(sy_value_t){.type = SY_VALUE_INT, .i = 1}), 0);
    assert_int_equal(
        sy__view_set(g, SY_FIELD_TEMPORALITY, &(sy_value_t){.type = SY_VALUE_INT, .i = 1}),
        SY_ENOTSUP);
    assert_int_equal(
        sy__view_set(sp, SY_FIELD_BUCKET_COUNTS, &(sy_value_t){.type = SY_VALUE_INT, .i = 1}),
        SY_ENOTSUP);
    assert_int_equal(sy__view_attr_set(sp, "added", 5, &(sy_value_t){.type = SY_VALUE_BOOL, .b = 1},
                                       SY_ATTR_UPSERT),
                     0);
    assert_int_equal(sy__view_drop(sy__view_at(sp, SY_VIEW_EXEMPLARS, 1)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__batch_items(b), 4);

    ScopeMetrics *sm = req->resource_metrics[0]->scope_metrics[0];
    Metric *sum = sm->metrics[1];
    sum->name = S("s2");
    sum->sum->aggregation_temporality = 1;
    NumberDP *d = sum->sum->data_points[0];
    d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    d->as_double = 8.5;
    ATTRS(d, attributes, d->attributes[0], kv("added", av_bool(true)));
    d->n_exemplars = 1;
    sm->n_metrics = 4;
    sm->metrics = ARR(Metric, sm->metrics[1], sm->metrics[2], sm->metrics[3], sm->metrics[4]);
    assert_batch_is(b, &req->base);

    /* Every remaining point: the scope and the resource go. */
    sc = sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    size_t n = sy__view_count(sc, SY_VIEW_ITEMS);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, i)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    size_t len;
    sy__batch_encoded(b, &len);
    assert_int_equal(len, 0);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- logs ---------------------------------------------------------------------------- */

static LogsReq *make_logs(void)
{
    AnyValue *bodies[] = {
        av_str("message"),
        av_int(-1),
        av_double(0.5),
        av_bool(true),
        av_bytes("\xff\x00", 2),
        av_array(2, ARR(AnyValue, av_str("x"), av_array(0, NULL))),
        av_map(2, ARR(KeyValue, kv("k", av_str("v")), kv("n", av_map(0, NULL)))),
        av_empty(),
        NULL,
    };
    size_t n = sizeof(bodies) / sizeof(bodies[0]);
    LogRecord **recs = T(n * sizeof(*recs));
    for (size_t i = 0; i < n; i++) {
        LogRecord *r = NEW(LogRecord, opentelemetry__proto__logs__v1__log_record__init);
        r->time_unix_nano = 100 + i;
        r->observed_time_unix_nano = 200 + i;
        r->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)(9 + i);
        r->severity_text = S("INFO");
        r->body = bodies[i];
        ATTRS(r, attributes, kv("i", av_int((int64_t)i)));
        r->dropped_attributes_count = (uint32_t)i;
        r->flags = 1;
        r->trace_id = B("0123456789abcdef", 16);
        r->span_id = B("spanid00", 8);
        r->event_name = S(i % 2 ? "ev" : "");
        recs[i] = r;
    }
    ScopeLogs *sl = NEW(ScopeLogs, opentelemetry__proto__logs__v1__scope_logs__init);
    sl->scope = scope("logger", "3");
    sl->n_log_records = n;
    sl->log_records = recs;
    ResourceLogs *rl = NEW(ResourceLogs, opentelemetry__proto__logs__v1__resource_logs__init);
    rl->n_scope_logs = 1;
    rl->scope_logs = ARR(ScopeLogs, sl);
    LogsReq *req =
        NEW(LogsReq, opentelemetry__proto__collector__logs__v1__export_logs_service_request__init);
    req->n_resource_logs = 1;
    req->resource_logs = ARR(ResourceLogs, rl);
    return req;
}

static void test_read_and_edit_logs(void **state)
{
    (void)state;
    LogsReq *req = make_logs();
    sy_batch_t *b = batch_of(SY_SIGNAL_LOGS, &req->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *res = sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0);
    sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, 0);
    const ScopeLogs *sl = req->resource_logs[0]->scope_logs[0];
    check_scope_and_resource(res, sc, NULL, NULL, sl->scope, sl->schema_url);
    assert_int_equal(sy__view_count(sc, SY_VIEW_ITEMS), sl->n_log_records);
    for (size_t i = 0; i < sl->n_log_records; i++) {
        const LogRecord *r = sl->log_records[i];
        sy_view_node_t *n = sy__view_at(sc, SY_VIEW_ITEMS, i);
        assert_int_equal(sy__view_kind(n), SY_NODE_LOG);
        check_int(n, SY_FIELD_TIME, (int64_t)r->time_unix_nano);
        check_int(n, SY_FIELD_OBSERVED_TIME, (int64_t)r->observed_time_unix_nano);
        check_int(n, SY_FIELD_SEVERITY_NUMBER, r->severity_number);
        check_str(n, SY_FIELD_SEVERITY_TEXT, r->severity_text);
        sy_value_t body;
        assert_int_equal(sy__view_get(n, SY_FIELD_BODY, &body), 0);
        check_any(&body, r->body);
        check_attrs(n, r->n_attributes, r->attributes);
        check_int(n, SY_FIELD_DROPPED_ATTRIBUTES, r->dropped_attributes_count);
        check_int(n, SY_FIELD_FLAGS, r->flags);
        check_bytes(n, SY_FIELD_TRACE_ID, r->trace_id);
        check_bytes(n, SY_FIELD_SPAN_ID, r->span_id);
        check_str(n, SY_FIELD_EVENT_NAME, r->event_name);
    }
    /* Edits: a body replaced by another record's map body, a severity, a drop. */
    sy_view_node_t *r0 = sy__view_at(sc, SY_VIEW_ITEMS, 0);
    sy_value_t mapbody;
    assert_int_equal(sy__view_get(sy__view_at(sc, SY_VIEW_ITEMS, 6), SY_FIELD_BODY, &mapbody), 0);
    assert_int_equal(sy__view_set(r0, SY_FIELD_BODY, &mapbody), 0);
    assert_int_equal(
        sy__view_set(r0, SY_FIELD_SEVERITY_NUMBER, &(sy_value_t){.type = SY_VALUE_INT, .i = 17}),
        0);
    assert_int_equal(sy__view_set(sy__view_at(sc, SY_VIEW_ITEMS, 1), SY_FIELD_BODY,
                                  &(sy_value_t){.type = SY_VALUE_EMPTY}),
                     0);
    assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, 2)), 0);
    assert_int_equal(
        sy__view_attr_set(
            sc, "scope.attr", 10,
            &(sy_value_t){.type = SY_VALUE_BYTES, .bytes = (const uint8_t *)"ab", .len = 2},
            SY_ATTR_UPSERT),
        0);
    assert_int_equal(sy__view_commit(v), 0);
    LogRecord **recs = sl->log_records;
    recs[0]->body = recs[6]->body;
    recs[0]->severity_number = 17;
    recs[1]->body = NULL;
    memmove(&recs[2], &recs[3], (sl->n_log_records - 3) * sizeof(*recs));
    ((ScopeLogs *)sl)->n_log_records--;
    ATTRS(sl->scope, attributes, kv("scope.attr", av_bytes("ab", 2)));
    assert_batch_is(b, &req->base);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- the builder ------------------------------------------------------------------------ */

static void test_builder_traces(void **state)
{
    (void)state;
    /* Two batches with the same two resources (one scope each), two spans each. */
    TraceReq *a = one_span(4, 2), *bq = one_span(4, 2);
    for (size_t r = 0; r < 2; r++) {
        TraceReq *reqs[2] = {a, bq};
        for (int k = 0; k < 2; k++) {
            ScopeSpans *ss = reqs[k]->resource_spans[r]->scope_spans[0];
            Span *s2 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
            char name[32];
            snprintf(name, sizeof(name), "%c%zu", k ? 'B' : 'A', r);
            s2->name = S(name);
            ss->n_spans = 2;
            ss->spans = ARR(Span, ss->spans[0], s2);
        }
    }
    sy_batch_t *ba = batch_of(SY_SIGNAL_TRACES, &a->base);
    sy_batch_t *bb = batch_of(SY_SIGNAL_TRACES, &bq->base);
    sy_view_t *va = sy__view_open(ba), *vb = sy__view_open(bb);
#define SPAN(v, r, i)                                                                        \
    sy__view_at(                                                                             \
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, r), SY_VIEW_SCOPES, 0), \
        SY_VIEW_ITEMS, i)
    sy_view_builder_t *bld = sy__view_build("me", SY_SIGNAL_TRACES);
    assert_int_equal(sy__view_build_add(bld, SPAN(va, 0, 1)), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(vb, 1, 1)), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(va, 0, 0)), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(vb, 0, 1)), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(va, 1, 0)), 0);
    /* Not an item: refused, the builder carries on. */
    assert_int_equal(sy__view_build_add(bld, sy__view_root(va)), SY_EINVAL);
    sy__view_close(va);
    sy__view_close(vb);
    sy__batch_release(ba);
    sy__batch_release(bb);
    sy_batch_t *out = sy__view_build_finish(bld);
    assert_non_null(out);
    assert_string_equal(sy__batch_origin(out), "me");
    assert_int_equal(sy__batch_items(out), 5);
    /* Expected: resource 0 {A0, span(a,0,0), B0}, resource 1 {B1, span(a,1,0)}. */
    ResourceSpans *r0 = a->resource_spans[0], *r1 = a->resource_spans[1];
    ScopeSpans *s0 = r0->scope_spans[0], *s1 = r1->scope_spans[0];
    Span *a0 = s0->spans[1], *a00 = s0->spans[0],
         *b0 = bq->resource_spans[0]->scope_spans[0]->spans[1];
    Span *b1 = bq->resource_spans[1]->scope_spans[0]->spans[1], *a10 = s1->spans[0];
    s0->n_spans = 3;
    s0->spans = ARR(Span, a0, a00, b0);
    s1->n_spans = 2;
    s1->spans = ARR(Span, b1, a10);
    assert_batch_is(out, &a->base);
    sy__batch_release(out);
    /* An empty builder makes an empty batch; an aborted one nothing. */
    out = sy__view_build_finish(sy__view_build("me", SY_SIGNAL_LOGS));
    assert_non_null(out);
    assert_int_equal(sy__batch_items(out), 0);
    sy__batch_release(out);
    sy__view_build_abort(sy__view_build("me", SY_SIGNAL_TRACES));
#undef SPAN
}

/* Consecutive items of one scope reuse its group (the builder remembers the last
 * resource and scope it copied); after a commit that rewrites the resource in
 * place (same lengths, other bytes), the same offsets name another resource. */
static void test_builder_memo(void **state)
{
    (void)state;
    TraceReq *req = one_span(4, 1);
    ScopeSpans *ss = req->resource_spans[0]->scope_spans[0];
    Span *s0 = ss->spans[0];
    Span *s1 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    Span *s2 = NEW(Span, opentelemetry__proto__trace__v1__span__init);
    s1->name = S("one");
    s2->name = S("two");
    ss->n_spans = 3;
    ss->spans = ARR(Span, s0, s1, s2);
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &req->base);
    sy_view_t *v = sy__view_open(b);
#define SPAN(i)                                                                              \
    sy__view_at(                                                                             \
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0), \
        SY_VIEW_ITEMS, i)
    sy_view_builder_t *bld = sy__view_build("me", SY_SIGNAL_TRACES);
    assert_int_equal(sy__view_build_add(bld, SPAN(0)), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(1)), 0);
    /* r: 0 -> 1, a one-byte varint either way: every offset stays. */
    sy_view_node_t *res = sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0);
    sy_value_t one = {.type = SY_VALUE_INT, .i = 1};
    assert_int_equal(sy__view_attr_set(res, "r", 1, &one, SY_ATTR_UPDATE), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__view_build_add(bld, SPAN(2)), 0);
    sy__view_close(v);
    sy__batch_release(b);
    sy_batch_t *out = sy__view_build_finish(bld);
    assert_non_null(out);
    assert_int_equal(sy__batch_items(out), 3);
    /* Expected: resource r=0 {s0, s1}, then resource r=1 {s2}. */
    ResourceSpans *r1 = NEW(ResourceSpans, opentelemetry__proto__trace__v1__resource_spans__init);
    r1->resource = NEW(Resource, opentelemetry__proto__resource__v1__resource__init);
    ATTRS(r1->resource, attributes, kv("r", av_int(1)));
    ScopeSpans *ss1 = NEW(ScopeSpans, opentelemetry__proto__trace__v1__scope_spans__init);
    ss1->scope = ss->scope;
    ss1->n_spans = 1;
    ss1->spans = ARR(Span, s2);
    r1->n_scope_spans = 1;
    r1->scope_spans = ARR(ScopeSpans, ss1);
    ss->n_spans = 2;
    req->n_resource_spans = 2;
    req->resource_spans = ARR(ResourceSpans, req->resource_spans[0], r1);
    assert_batch_is(out, &req->base);
    sy__batch_release(out);
#undef SPAN
}

static void test_builder_metrics(void **state)
{
    (void)state;
    MetricsReq *req = make_metrics();
    sy_batch_t *b = batch_of(SY_SIGNAL_METRICS, &req->base);
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *sc =
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    sy_view_builder_t *bld = sy__view_build("me", SY_SIGNAL_METRICS);
    /* Gauge point 1, the histogram's point, gauge point 0, the summary's. */
    assert_int_equal(sy__view_build_add(bld, sy__view_at(sc, SY_VIEW_ITEMS, 1)), 0);
    assert_int_equal(sy__view_build_add(bld, sy__view_at(sc, SY_VIEW_ITEMS, 3)), 0);
    assert_int_equal(sy__view_build_add(bld, sy__view_at(sc, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_build_add(bld, sy__view_at(sc, SY_VIEW_ITEMS, 5)), 0);
    sy_batch_t *out = sy__view_build_finish(bld);
    assert_non_null(out);
    assert_int_equal(sy__batch_items(out), 4);
    ScopeMetrics *sm = req->resource_metrics[0]->scope_metrics[0];
    Metric *g = sm->metrics[0];
    g->gauge->data_points = ARR(NumberDP, g->gauge->data_points[1], g->gauge->data_points[0]);
    sm->n_metrics = 3;
    sm->metrics = ARR(Metric, g, sm->metrics[2], sm->metrics[4]);
    assert_batch_is(out, &req->base);
    sy__batch_release(out);
    /* A span is not an item of a metrics builder, and vice versa. */
    bld = sy__view_build("me", SY_SIGNAL_TRACES);
    assert_int_equal(sy__view_build_add(bld, sy__view_at(sc, SY_VIEW_ITEMS, 0)), SY_EINVAL);
    sy__view_build_abort(bld);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- copy-on-write -------------------------------------------------------------------------- */

static void test_commit_refused_when_shared(void **state)
{
    (void)state;
    TraceReq *req = make_traces(false);
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &req->base);
    size_t len0;
    const uint8_t *enc0 = sy__batch_encoded(b, &len0);
    sy__batch_retain(b); /* shared */
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *sc =
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_commit(v), SY_EAGAIN);
    size_t len1;
    assert_ptr_equal(sy__batch_encoded(b, &len1), enc0);
    assert_int_equal(len1, len0);
    assert_int_equal(sy__batch_items(b), 3);
    /* The edits were discarded; the view still reads the batch. */
    check_traces(v, req);
    sy__batch_release(b); /* no longer shared */
    sc = sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, 0)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__batch_items(b), 2);
    /* No edits: nothing to refuse, nothing done. */
    sy__batch_retain(b);
    assert_int_equal(sy__view_commit(v), 0);
    sy__batch_release(b);
    sy__view_close(v);
    sy__batch_release(b);
}

/* ---- the shared view ---------------------------------------------------------------- */

static void set_str(sy_view_node_t *n, const char *key, const char *val)
{
    sy_value_t v = {.type = SY_VALUE_STRING, .str = val, .len = strlen(val)};
    assert_int_equal(sy__view_attr_set(n, key, strlen(key), &v, SY_ATTR_UPSERT), 0);
}

/* The value of attribute `key` of the first span of what the batch holds now,
 * read through a view of its bytes (NULL when absent). */
static char *written_attr(sy_batch_t *b, const char *key)
{
    static char out[64];
    size_t len;
    const uint8_t *enc = sy__batch_encoded(b, &len);
    sy_batch_t *c = sy__batch_new(SY_SIGNAL_TRACES, "t");
    uint8_t *copy = sy__batch_alloc(c, len ? len : 1);
    memcpy(copy, enc, len);
    assert_int_equal(sy__batch_set_encoded(c, copy, len, NULL, 0), 0);
    sy_view_t *v = sy__view_open(c);
    sy_value_t x;
    int rc = sy__view_attr_get(first_span(v), key, strlen(key), &x);
    if (rc == 0) snprintf(out, sizeof(out), "%.*s", (int)x.len, x.str);
    sy__view_close(v);
    sy__batch_release(c);
    return rc == 0 ? out : NULL;
}

/* Two processors in a row: the second opens the view the first committed, with
 * its index, and reads its edits; nothing is written until something other than
 * the view asks for the bytes. */
static void test_shared_view_chain(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    size_t len0;
    const uint8_t *enc0 = sy__batch_encoded(b, &len0);
    sy_view_t *a = sy__view_open(b);
    set_str(first_span(a), "by", "a");
    assert_int_equal(sy__view_commit(a), 0);
    sy__view_close(a);
    assert_ptr_equal(b->view, a);   /* kept with the batch */
    assert_ptr_equal(b->enc, enc0); /* not written yet */
    sy_view_t *v = sy__view_open(b);
    assert_ptr_equal(v, a); /* the same view: no second walk */
    check_attr_str(first_span(v), "by", "a");
    set_str(first_span(v), "second", "b");
    assert_int_equal(sy__view_commit(v), 0);
    sy__view_close(v);
    assert_ptr_equal(b->enc, enc0);
    assert_int_equal(sy__batch_items(b), 3);
    /* A third drops the span the first two edited (no new op: it is linked
     * already): written at once, with their edits. */
    v = sy__view_open(b);
    assert_ptr_equal(v, a);
    sy_view_node_t *sc =
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    set_str(sy__view_at(sc, SY_VIEW_ITEMS, 1), "gone", "x");
    assert_int_equal(sy__view_commit(v), 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, 1)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    sy__view_close(v);
    assert_true(b->enc != enc0);
    assert_int_equal(sy__batch_items(b), 2);
    /* The exporter (or a merge, a copy) asks for the bytes: both edits. */
    assert_string_equal(written_attr(b, "by"), "a");
    assert_string_equal(written_attr(b, "second"), "b");
    assert_null(b->view);
    assert_true(b->enc != enc0);
    sy__batch_release(b);
}

/* What the second holder does not commit, or commits refused, is its own: the
 * first holder's committed edits are written all the same, without it (also when
 * it changed the first one's edit in place). */
static void test_shared_view_discards_uncommitted(void **state)
{
    (void)state;
    sy_value_t bad = {.type = SY_VALUE_STRING, .str = "a\xc3", .len = 2};
    for (int way = 0; way < 3; way++) {
        sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
        sy_view_t *v = sy__view_open(b);
        set_str(first_span(v), "k", "first");
        assert_int_equal(sy__view_commit(v), 0);
        sy__view_close(v);
        v = sy__view_open(b);
        set_str(first_span(v), "k", "second"); /* the same op, changed in place */
        set_str(first_span(v), "other", "x");
        assert_int_equal(
            sy__view_drop(sy__view_at(
                sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0),
                SY_VIEW_ITEMS, 1)),
            0);
        check_attr_str(first_span(v), "k", "second");
        if (way == 0) { /* closed without a commit */
            sy__view_close(v);
        } else if (way == 1) { /* refused: not UTF-8 */
            assert_int_equal(sy__view_attr_set(first_span(v), "bad", 3, &bad, SY_ATTR_UPSERT), 0);
            assert_int_equal(sy__view_commit(v), SY_EINVAL);
            check_attr_str(first_span(v), "k", "first"); /* the view reads the batch again */
            sy__view_close(v);
        } else {                 /* refused: shared */
            sy__batch_retain(b); /* settles: the first holder's edit is written */
            assert_null(b->view);
            assert_int_equal(sy__view_commit(v), SY_EAGAIN);
            sy__view_close(v);
            sy__batch_release(b);
        }
        assert_string_equal(written_attr(b, "k"), "first");
        assert_null(written_attr(b, "other"));
        assert_int_equal(sy__batch_items(b), 3);
        sy__batch_release(b);
    }
}

/* An edit that changes the previous holder's op in place (deleting the key it
 * set) and makes no op of its own is an edit all the same: committed, it is
 * written; not committed, it goes. */
static void test_shared_view_in_place_edit(void **state)
{
    (void)state;
    for (int commit = 0; commit < 2; commit++) {
        sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
        sy_view_t *v = sy__view_open(b);
        set_str(first_span(v), "k", "first");
        assert_int_equal(sy__view_commit(v), 0);
        sy__view_close(v);
        v = sy__view_open(b);
        assert_int_equal(sy__view_attr_delete(first_span(v), "k", 1), 0);
        if (commit) assert_int_equal(sy__view_commit(v), 0);
        sy__view_close(v);
        if (commit)
            assert_null(written_attr(b, "k"));
        else
            assert_string_equal(written_attr(b, "k"), "first");
        sy__batch_release(b);
    }
}

/* A drop is written at once (the index would be stale); a view whose batch goes
 * away while it is open is freed by its close; a batch settled while its view is
 * open gets the committed edits, and the view's next commit writes everything. */
static void test_shared_view_drop_and_lifetimes(void **state)
{
    (void)state;
    sy_batch_t *b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    const uint8_t *enc0 = sy__batch_encoded(b, NULL);
    sy_view_t *v = sy__view_open(b);
    set_str(first_span(v), "k", "1");
    assert_int_equal(sy__view_commit(v), 0);
    assert_ptr_equal(b->enc, enc0);
    sy_view_node_t *sc =
        sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0), SY_VIEW_SCOPES, 0);
    assert_int_equal(sy__view_drop(sy__view_at(sc, SY_VIEW_ITEMS, 1)), 0);
    assert_int_equal(sy__view_commit(v), 0);
    assert_true(b->enc != enc0);
    assert_int_equal(sy__batch_items(b), 2);
    assert_int_equal(sy__view_count(sy__view_at(sy__view_at(sy__view_root(v), SY_VIEW_RESOURCES, 0),
                                                SY_VIEW_SCOPES, 0),
                                    SY_VIEW_ITEMS),
                     1);
    sy__view_close(v);
    assert_string_equal(written_attr(b, "k"), "1");
    /* Settled while open. */
    v = sy__view_open(b);
    set_str(first_span(v), "k", "2");
    assert_int_equal(sy__view_commit(v), 0);
    assert_string_equal(written_attr(b, "k"), "2"); /* settles */
    set_str(first_span(v), "k2", "3");
    assert_int_equal(sy__view_commit(v), 0);
    assert_string_equal(written_attr(b, "k"), "2");
    assert_string_equal(written_attr(b, "k2"), "3");
    sy__view_close(v);
    /* The batch goes while its view is open. */
    v = sy__view_open(b);
    set_str(first_span(v), "k", "4");
    assert_int_equal(sy__view_commit(v), 0);
    sy__batch_release(b);
    sy__view_close(v);
    /* Off: every commit is written at once. */
    sy__view_share = false;
    b = batch_of(SY_SIGNAL_TRACES, &make_traces(false)->base);
    enc0 = sy__batch_encoded(b, NULL);
    v = sy__view_open(b);
    assert_null(b->view);
    set_str(first_span(v), "k", "5");
    assert_int_equal(sy__view_commit(v), 0);
    assert_true(b->enc != enc0);
    sy__view_close(v);
    sy__view_share = true;
    sy__batch_release(b);
}

static void test_api_table(void **state)
{
    (void)state;
    const sy_host_api_t *api = sy__host_api();
    assert_int_equal(api->abi_minor, 8); /* 1.8 (1.7: twin; 1.6: pieces, settle; 1.5: ...) */
    assert_true(SY_API_HAS(api, metric_series));
    assert_true(api->metric_register_labelled && api->metric_series);
    assert_true(SY_API_HAS(api, settle_durable));
    assert_true(SY_API_HAS(api, batch_pieces));
    assert_true(SY_API_HAS(api, view_open));
    assert_true(SY_API_HAS(api, emit_to));
    assert_true(SY_API_HAS(api, connector_pipelines));
    assert_true(SY_API_HAS(api, value_container));
    assert_true(SY_API_HAS(api, view_build_abort));
    assert_ptr_equal(api->view_commit, sy__view_commit);
    /* A 1.0 host's table ends at exporter_outcome. */
    sy_host_api_t old = *api;
    old.size = (uint32_t)(offsetof(sy_host_api_t, exporter_outcome) + sizeof(void *));
    assert_false(SY_API_HAS(&old, view_open));
    assert_true(SY_API_HAS(&old, exporter_outcome));
}

/* ---- through the loader: a processor that uses only the view --------------------------------- */

typedef struct report_s {
    unsigned long long batches, items, distinct, duplicates, out_of_range, undecodable;
    unsigned long long names[3], span_hash, bytes_hash;
} report_t;

static void report_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "/tmp/sy_view_%s.%d", name, (int)getpid());
}

static report_t read_report(const char *name)
{
    char path[128];
    report_path(path, sizeof(path), name);
    report_t r;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n =
        fscanf(f,
               "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
               "undecodable=%llu names0=%llu names1=%llu names2=%llu span_hash=%llu "
               "bytes_hash=%llu",
               &r.batches, &r.items, &r.distinct, &r.duplicates, &r.out_of_range, &r.undecodable,
               &r.names[0], &r.names[1], &r.names[2], &r.span_hash, &r.bytes_hash);
    fclose(f);
    unlink(path);
    assert_int_equal(n, 11);
    return r;
}

static int64_t metric_value(const char *name, const char *processor, const char *pipeline)
{
    char labels[256];
    assert_non_null(sy__metric_labels(labels, sizeof(labels), "processor", processor, "pipeline",
                                      pipeline, NULL));
    return sy__metric_value(sy__metric_register(name, "", SY_METRIC_COUNTER, labels));
}

static char *run_router_capturing_log(const char *yaml)
{
    fflush(stderr);
    FILE *f = tmpfile();
    assert_non_null(f);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    const char *dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_non_null(r);
    saved = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    int rc_start = sy__router_start(r);
    usleep(300000);
    int rc_close = sy__router_close(r);
    sy__diag_free(&diag);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(rc_start, 0);
    assert_int_equal(rc_close, 0);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    buf[fread(buf, 1, (size_t)size, f)] = '\0';
    fclose(f);
    return buf;
}

static void test_view_processor_through_loader(void **state)
{
    (void)state;
    char yaml[4096], p[5][128];
    const char *names[5] = {"plain", "mut", "noflag", "own", "solo"};
    for (int i = 0; i < 5; i++)
        report_path(p[i], sizeof(p[i]), names[i]);
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/v: {count: 10, spans: 5}\n"
             "  testgen/vsolo: {count: 10, spans: 5}\n"
             "processors:\n"
             "  testviewmut/m:\n"
             "  testviewmut_noflag/n:\n"
             "  testviewmut_noflag/own: {own_copy: true}\n"
             "  testviewmut_noflag/solo:\n"
             "exporters:\n"
             "  testsink/plain: {report_path: %s, verify: true, max_seq: 1000, digest: true, "
             "delay: 1ms}\n"
             "  testsink/mut: {report_path: %s, verify: true, max_seq: 1000, digest: true}\n"
             "  testsink/noflag: {report_path: %s, verify: true, max_seq: 1000, digest: true}\n"
             "  testsink/own: {report_path: %s, verify: true, max_seq: 1000, digest: true}\n"
             "  testsink/solo: {report_path: %s, verify: true, max_seq: 1000, digest: true}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces/plain: {receivers: [testgen/v], processors: [], exporters: "
             "[testsink/plain]}\n"
             "    traces/mut: {receivers: [testgen/v], processors: [testviewmut/m], exporters: "
             "[testsink/mut]}\n"
             "    traces/noflag: {receivers: [testgen/v], processors: [testviewmut_noflag/n], "
             "exporters: [testsink/noflag]}\n"
             "    traces/own: {receivers: [testgen/v], processors: [testviewmut_noflag/own], "
             "exporters: [testsink/own]}\n"
             "    traces/solo: {receivers: [testgen/vsolo], processors: "
             "[testviewmut_noflag/solo], exporters: [testsink/solo]}\n",
             p[0], p[1], p[2], p[3], p[4]);
    char *log = run_router_capturing_log(yaml);
    fprintf(stderr, "captured log:\n%s", log);
    assert_non_null(strstr(log, "view_commit refused for plugin testviewmut_noflag/n"));
    assert_non_null(strstr(log, "view_commit refused for plugin testviewmut_noflag/solo"));
    assert_null(strstr(log, "refused for plugin testviewmut/m"));
    assert_null(strstr(log, "refused for plugin testviewmut_noflag/own"));
    free(log);
    report_t plain = read_report("plain"), mut = read_report("mut"), noflag = read_report("noflag"),
             own = read_report("own"), solo = read_report("solo");
    /* The flagged processor got a private copy: its spans renamed once, the
     * other pipelines' untouched, byte for byte. */
    assert_int_equal(mut.items, 50);
    assert_int_equal(mut.names[1], 50);
    assert_int_equal(mut.undecodable, 0);
    assert_int_equal(plain.names[0], 50);
    assert_int_equal(noflag.names[0], 50);
    assert_int_equal(noflag.bytes_hash, plain.bytes_hash);
    assert_int_equal(solo.names[0], 50);
    assert_int_equal(own.names[1], 50);
    assert_int_equal(own.distinct, 50);
    assert_int_equal(metric_value("testviewmut_mutated_spans", "testviewmut/m", "traces/mut"), 50);
    assert_int_equal(metric_value("testviewmut_refused_batches", "testviewmut/m", "traces/mut"), 0);
    assert_int_equal(
        metric_value("testviewmut_refused_batches", "testviewmut_noflag/n", "traces/noflag"), 10);
    assert_int_equal(
        metric_value("testviewmut_refused_batches", "testviewmut_noflag/solo", "traces/solo"), 10);
    assert_int_equal(
        metric_value("batch_mutation_refused", "testviewmut_noflag/solo", "traces/solo"), 10);
    assert_int_equal(
        metric_value("testviewmut_mutated_spans", "testviewmut_noflag/own", "traces/own"), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_read_traces, free_all),
        cmocka_unit_test_teardown(test_edit_traces, free_all),
        cmocka_unit_test_teardown(test_attr_rename_chain, free_all),
        cmocka_unit_test_teardown(test_varint_boundaries, free_all),
        cmocka_unit_test_teardown(test_drop_items, free_all),
        cmocka_unit_test_teardown(test_read_your_writes, free_all),
        cmocka_unit_test_teardown(test_commit_refuses_bad_utf8, free_all),
        cmocka_unit_test_teardown(test_trusted_commit_counts, free_all),
        cmocka_unit_test_teardown(test_read_metrics, free_all),
        cmocka_unit_test_teardown(test_edit_metrics, free_all),
        cmocka_unit_test_teardown(test_read_and_edit_logs, free_all),
        cmocka_unit_test_teardown(test_builder_traces, free_all),
        cmocka_unit_test_teardown(test_builder_memo, free_all),
        cmocka_unit_test_teardown(test_builder_metrics, free_all),
        cmocka_unit_test_teardown(test_commit_refused_when_shared, free_all),
        cmocka_unit_test_teardown(test_shared_view_chain, free_all),
        cmocka_unit_test_teardown(test_shared_view_discards_uncommitted, free_all),
        cmocka_unit_test_teardown(test_shared_view_drop_and_lifetimes, free_all),
        cmocka_unit_test_teardown(test_shared_view_in_place_edit, free_all),
        cmocka_unit_test_teardown(test_api_table, free_all),
        cmocka_unit_test_teardown(test_view_processor_through_loader, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
