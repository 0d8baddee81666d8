/*
 * The spanmetrics connector's aggregation (plugins/connectors/spanmetrics,
 * compiled in): encoded OTLP trace requests, built here with protobuf-c, are
 * read through the real host's view (sy__host_api()) exactly as the plugin reads
 * them; the metrics request it writes is unpacked with protobuf-c and checked
 * field by field against what the spans say: names, attributes, counts, bucket
 * counts, sums, timestamps, temporality, exemplars, the overflow series, delta
 * resets and carry-over, resource identity and expiry, exponential buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "sm_agg.h"
#include "sm_expo.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpDP;

#define T0 1700000000000000000LL /* span start times */
#define MS 1000000LL

/* ---- building trace requests ------------------------------------------------------- */

static void *allocs[4096];
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

static char *S(const char *s)
{
    char *c = T(strlen(s) + 1);
    memcpy(c, s, strlen(s));
    return c;
}

static KeyValue *kv_str(const char *k, const char *v)
{
    KeyValue *x = T(sizeof(*x));
    opentelemetry__proto__common__v1__key_value__init(x);
    x->key = S(k);
    x->value = T(sizeof(AnyValue));
    opentelemetry__proto__common__v1__any_value__init(x->value);
    x->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    x->value->string_value = S(v);
    return x;
}

static KeyValue *kv_int(const char *k, int64_t v)
{
    KeyValue *x = kv_str(k, "");
    x->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    x->value->int_value = v;
    return x;
}

typedef struct span_spec_s {
    const char *name;
    int kind, status;
    int64_t dur_ns;
    uint8_t trace_byte; /* 0: an all-zero trace id */
    KeyValue *attr;     /* one attribute or NULL */
} span_spec_t;

static Span *mk_span(const span_spec_t *sp, int seq)
{
    Span *s = T(sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    s->name = S(sp->name);
    s->kind = sp->kind;
    s->start_time_unix_nano = (uint64_t)(T0 + seq);
    s->end_time_unix_nano = (uint64_t)(T0 + seq + sp->dur_ns);
    uint8_t *tid = T(16), *sid = T(8);
    memset(tid, sp->trace_byte, 16);
    sid[0] = (uint8_t)(seq + 1);
    sid[7] = 0x5a;
    s->trace_id = (ProtobufCBinaryData){16, tid};
    s->span_id = (ProtobufCBinaryData){8, sid};
    if (sp->status) {
        s->status = T(sizeof(Status));
        opentelemetry__proto__trace__v1__status__init(s->status);
        s->status->code = sp->status;
    }
    if (sp->attr) {
        s->n_attributes = 1;
        s->attributes = T(sizeof(KeyValue *));
        s->attributes[0] = sp->attr;
    }
    return s;
}

/* A ResourceSpans with the given resource attributes and one scope of spans. */
static ResourceSpans *mk_rs(KeyValue **rattrs, size_t nr, const span_spec_t *spans, size_t n)
{
    ResourceSpans *rs = T(sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = T(sizeof(Resource));
    opentelemetry__proto__resource__v1__resource__init(rs->resource);
    rs->resource->n_attributes = nr;
    rs->resource->attributes = rattrs;
    rs->n_scope_spans = 1;
    rs->scope_spans = T(sizeof(ScopeSpans *));
    ScopeSpans *ss = T(sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    rs->scope_spans[0] = ss;
    ss->n_spans = n;
    ss->spans = T(n * sizeof(Span *));
    for (size_t i = 0; i < n; i++)
        ss->spans[i] = mk_span(&spans[i], (int)i);
    return rs;
}

static sy_batch_t *batch_of(ResourceSpans **rss, size_t n)
{
    TraceReq req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = n;
    req.resource_spans = rss;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    protobuf_c_message_pack(&req.base, buf);
    char err[256];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

/* Feeds a batch to the aggregation, as the plugin's consume() does. */
static sm_consume_stats_t feed(sm_agg_t *a, ResourceSpans **rss, size_t n, int64_t now)
{
    sy_batch_t *b = batch_of(rss, n);
    sm_consume_stats_t st;
    assert_int_equal(sm_agg_consume(a, sy__host_api(), b, now, &st), 0);
    sy__batch_release(b);
    return st;
}

/* Builds the output and unpacks it (NULL when there is nothing to send). */
static MetricsReq *build(sm_agg_t *a, int64_t now, uint64_t *points)
{
    sm_buf_t out = {0};
    assert_int_equal(sm_agg_build(a, now, &out, points), 0);
    MetricsReq *m = NULL;
    if (out.len) {
        m = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, out.len, out.data);
        assert_non_null(m);
    }
    sm_buf_free(&out);
    return m;
}

static void unpacked_free(MetricsReq *m)
{
    if (m)
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
            m, NULL);
}

/* ---- reading the output ----------------------------------------------------------- */

static const AnyValue *attr(KeyValue **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kvs[i]->key, key) == 0) return kvs[i]->value;
    return NULL;
}

static const char *attr_str(KeyValue **kvs, size_t n, const char *key)
{
    const AnyValue *v = attr(kvs, n, key);
    if (!v) return NULL;
    assert_int_equal(v->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    return v->string_value;
}

static const Metric *metric(const ResourceMetrics *rm, const char *name)
{
    assert_int_equal(rm->n_scope_metrics, 1);
    assert_string_equal(rm->scope_metrics[0]->scope->name, "spanmetricsconnector");
    for (size_t i = 0; i < rm->scope_metrics[0]->n_metrics; i++)
        if (strcmp(rm->scope_metrics[0]->metrics[i]->name, name) == 0)
            return rm->scope_metrics[0]->metrics[i];
    return NULL;
}

static const ResourceMetrics *resource(const MetricsReq *m, const char *service)
{
    for (size_t i = 0; i < m->n_resource_metrics; i++) {
        const Resource *r = m->resource_metrics[i]->resource;
        const char *s = attr_str(r->attributes, r->n_attributes, "service.name");
        if (s && strcmp(s, service) == 0) return m->resource_metrics[i];
    }
    return NULL;
}

static const NumberDP *calls_point(const Metric *m, const char *span_name, const char *status)
{
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    for (size_t i = 0; i < m->sum->n_data_points; i++) {
        const NumberDP *p = m->sum->data_points[i];
        const char *n = attr_str(p->attributes, p->n_attributes, "span.name");
        const char *st = attr_str(p->attributes, p->n_attributes, "status.code");
        if (n && strcmp(n, span_name) == 0 && (!status || (st && strcmp(st, status) == 0)))
            return p;
    }
    return NULL;
}

static const HistDP *hist_point(const Metric *m, const char *span_name, const char *status)
{
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    for (size_t i = 0; i < m->histogram->n_data_points; i++) {
        const HistDP *p = m->histogram->data_points[i];
        const char *n = attr_str(p->attributes, p->n_attributes, "span.name");
        const char *st = attr_str(p->attributes, p->n_attributes, "status.code");
        if (n && strcmp(n, span_name) == 0 && (!status || (st && strcmp(st, status) == 0)))
            return p;
    }
    return NULL;
}

static const double default_ms[] = {2,   4,   6,    8,    10,   50,   100,   200,
                                    400, 800, 1000, 1400, 2000, 5000, 10000, 15000};

static sm_opts_t base_opts(void)
{
    return (sm_opts_t){
        .bounds = default_ms,
        .nbounds = 16,
        .ns_per_unit = 1e6,
        .unit = "ms",
        .name_calls = "traces.span.metrics.calls",
        .name_duration = "traces.span.metrics.duration",
        .max_exemplars = 5,
        .resource_cache_size = 1000,
        .max_size = 160,
    };
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_calls_and_durations(void **state)
{
    (void)state;
    sm_opts_t o = base_opts();
    sm_agg_t *a = sm_agg_new(&o);
    assert_non_null(a);
    /* shop: GET /cart x3 SERVER (1ms, 2ms exactly -> bucket le=2, 3ms), one ERROR,
     * and a CLIENT call of 20s (the +Inf bucket); pay: one INTERNAL span. */
    span_spec_t shop[] = {
        {"GET /cart", 2, 0, 1 * MS, 1, NULL},    {"GET /cart", 2, 0, 2 * MS, 1, NULL},
        {"GET /cart", 2, 0, 3 * MS, 2, NULL},    {"GET /cart", 2, 2, 120 * MS, 3, NULL},
        {"call pay", 3, 1, 20000 * MS, 3, NULL},
    };
    span_spec_t pay[] = {{"charge", 1, 0, 0, 4, NULL}};
    KeyValue **r1 = T(2 * sizeof(KeyValue *));
    r1[0] = kv_str("service.name", "shop");
    r1[1] = kv_int("process.pid", 42);
    KeyValue **r2 = T(sizeof(KeyValue *));
    r2[0] = kv_str("service.name", "pay");
    ResourceSpans *rss[] = {mk_rs(r1, 2, shop, 5), mk_rs(r2, 1, pay, 1)};
    int64_t t1 = T0 + 10 * 1000 * MS;
    sm_consume_stats_t st = feed(a, rss, 2, t1);
    assert_int_equal(st.spans, 6);
    assert_int_equal(st.no_service, 0);
    assert_int_equal(sm_agg_series(a), 4);
    assert_int_equal(sm_agg_resources(a), 2);

    /* First flush: calls read 0 (the collector's first point of a cumulative
     * series), the histograms already hold everything. */
    uint64_t points;
    int64_t f1 = t1 + 1000 * MS;
    MetricsReq *m = build(a, f1, &points);
    assert_int_equal(points, 8);
    assert_int_equal(m->n_resource_metrics, 2);
    const ResourceMetrics *rm = resource(m, "shop");
    assert_non_null(rm);
    assert_int_equal(rm->resource->n_attributes, 2);
    assert_int_equal(attr(rm->resource->attributes, 2, "process.pid")->int_value, 42);
    const Metric *calls = metric(rm, "traces.span.metrics.calls");
    assert_non_null(calls);
    assert_true(calls->sum->is_monotonic);
    assert_int_equal(calls->sum->aggregation_temporality, 2);
    const NumberDP *cp = calls_point(calls, "GET /cart", "STATUS_CODE_UNSET");
    assert_non_null(cp);
    assert_int_equal(cp->as_int, 0);
    assert_int_equal(cp->start_time_unix_nano, t1);
    assert_int_equal(cp->time_unix_nano, f1);
    const Metric *dur = metric(rm, "traces.span.metrics.duration");
    assert_non_null(dur);
    assert_string_equal(dur->unit, "ms");
    assert_int_equal(dur->histogram->aggregation_temporality, 2);
    const HistDP *hp = hist_point(dur, "GET /cart", "STATUS_CODE_UNSET");
    assert_non_null(hp);
    assert_int_equal(hp->n_attributes, 4);
    assert_string_equal(attr_str(hp->attributes, 4, "service.name"), "shop");
    assert_string_equal(attr_str(hp->attributes, 4, "span.kind"), "SPAN_KIND_SERVER");
    assert_int_equal(hp->count, 3);
    assert_int_equal(hp->_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_true(fabs(hp->sum - 6.0) < 1e-9);
    assert_int_equal(hp->n_explicit_bounds, 16);
    for (size_t i = 0; i < 16; i++)
        assert_true(hp->explicit_bounds[i] == default_ms[i]);
    assert_int_equal(hp->n_bucket_counts, 17);
    uint64_t want[17] = {2, 1}; /* 1ms and 2ms (inclusive) in le=2, 3ms in le=4 */
    for (size_t i = 0; i < 17; i++)
        assert_int_equal(hp->bucket_counts[i], want[i]);
    const HistDP *he = hist_point(dur, "GET /cart", "STATUS_CODE_ERROR");
    assert_int_equal(he->count, 1);
    assert_int_equal(he->bucket_counts[7], 1); /* 120ms: (100, 200] */
    const HistDP *hc = hist_point(dur, "call pay", NULL);
    assert_string_equal(attr_str(hc->attributes, 4, "span.kind"), "SPAN_KIND_CLIENT");
    assert_string_equal(attr_str(hc->attributes, 4, "status.code"), "STATUS_CODE_OK");
    assert_int_equal(hc->bucket_counts[16], 1); /* 20s: +Inf */
    const HistDP *hz =
        hist_point(metric(resource(m, "pay"), "traces.span.metrics.duration"), "charge", NULL);
    assert_string_equal(attr_str(hz->attributes, 4, "span.kind"), "SPAN_KIND_INTERNAL");
    assert_int_equal(hz->bucket_counts[0], 1); /* 0 duration */
    assert_int_equal(hz->n_exemplars, 0);      /* exemplars are off */
    unpacked_free(m);
    assert_int_equal(sm_agg_flushed(a, f1), 0);

    /* Second flush, one more span: cumulative counts, the same start time. */
    span_spec_t more[] = {{"GET /cart", 2, 0, 5 * MS, 1, NULL}};
    ResourceSpans *rs3[] = {mk_rs(r1, 2, more, 1)};
    feed(a, rs3, 1, f1 + MS);
    int64_t f2 = f1 + 2000 * MS;
    m = build(a, f2, &points);
    assert_int_equal(points, 8);
    rm = resource(m, "shop");
    cp = calls_point(metric(rm, "traces.span.metrics.calls"), "GET /cart", "STATUS_CODE_UNSET");
    assert_int_equal(cp->as_int, 4);
    assert_int_equal(cp->start_time_unix_nano, t1);
    assert_int_equal(cp->time_unix_nano, f2);
    assert_int_equal(
        calls_point(metric(rm, "traces.span.metrics.calls"), "GET /cart", "STATUS_CODE_ERROR")
            ->as_int,
        1);
    hp = hist_point(metric(rm, "traces.span.metrics.duration"), "GET /cart", "STATUS_CODE_UNSET");
    assert_int_equal(hp->count, 4);
    assert_int_equal(hp->bucket_counts[2], 1); /* 5ms: (4, 6] */
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_dimensions(void **state)
{
    (void)state;
    sm_dim_t dims[] = {
        {.name = "http.method", .len = 11, .def = "GET", .def_len = 3},
        {.name = "region", .len = 6},
        {.name = "http.status_code", .len = 16},
    };
    sm_opts_t o = base_opts();
    o.dims = dims;
    o.ndims = 3;
    o.excl_status = true;
    o.hist_disable = true;
    sm_agg_t *a = sm_agg_new(&o);
    span_spec_t spans[] = {
        {"a", 2, 0, MS, 1, NULL}, /* method GET by default */
        {"a", 2, 0, MS, 1, NULL}, /* the same series */
        {"a", 2, 2, MS, 1, NULL}, /* status excluded: same series */
        {"a", 2, 0, MS, 1, NULL}, /* made POST below */
        {"a", 2, 0, MS, 1, NULL}, /* status 200 (int) */
        {"a", 2, 0, MS, 1, NULL}, /* region from the span */
    };
    spans[3].attr = kv_str("http.method", "POST");
    spans[4].attr = kv_int("http.status_code", 200);
    spans[5].attr = kv_str("region", "eu");
    KeyValue **r = T(2 * sizeof(KeyValue *));
    r[0] = kv_str("service.name", "svc");
    r[1] = kv_str("region", "us"); /* the resource's, below a span's own */
    ResourceSpans *rss[] = {mk_rs(r, 2, spans, 6)};
    feed(a, rss, 1, T0);
    assert_int_equal(sm_agg_series(a), 4);
    sm_agg_flushed(a, T0); /* past the first (zero) point */
    uint64_t points;
    MetricsReq *m = build(a, T0 + MS, &points);
    assert_int_equal(points, 4); /* no histogram */
    const ResourceMetrics *rm = resource(m, "svc");
    assert_null(metric(rm, "traces.span.metrics.duration"));
    const Metric *calls = metric(rm, "traces.span.metrics.calls");
    int seen = 0;
    for (size_t i = 0; i < calls->sum->n_data_points; i++) {
        const NumberDP *p = calls->sum->data_points[i];
        KeyValue **kvs = p->attributes;
        size_t n = p->n_attributes;
        assert_null(attr(kvs, n, "status.code"));
        assert_string_equal(attr_str(kvs, n, "service.name"), "svc");
        const AnyValue *code = attr(kvs, n, "http.status_code");
        const char *region = attr_str(kvs, n, "region");
        const char *method = attr_str(kvs, n, "http.method");
        if (code) { /* typed as it was on the span */
            assert_int_equal(code->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
            assert_int_equal(code->int_value, 200);
            assert_string_equal(region, "us");
            assert_int_equal(p->as_int, 1);
            seen |= 1;
        } else if (strcmp(method, "POST") == 0) {
            assert_int_equal(p->as_int, 1);
            seen |= 2;
        } else if (strcmp(region, "eu") == 0) {
            assert_string_equal(method, "GET");
            assert_int_equal(p->as_int, 1);
            seen |= 4;
        } else {
            assert_string_equal(method, "GET");
            assert_string_equal(region, "us");
            assert_int_equal(n, 5); /* 3 defaults + method + region, no status code */
            assert_int_equal(p->as_int, 3);
            seen |= 8;
        }
    }
    assert_int_equal(seen, 15);
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_delta_and_carry_over(void **state)
{
    (void)state;
    sm_opts_t o = base_opts();
    o.delta = true;
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(sizeof(KeyValue *));
    r[0] = kv_str("service.name", "d");
    span_spec_t s1[] = {{"x", 2, 0, 3 * MS, 1, NULL}, {"y", 2, 0, 3 * MS, 1, NULL}};
    ResourceSpans *rss[] = {mk_rs(r, 1, s1, 2)};
    feed(a, rss, 1, T0);
    uint64_t points;
    MetricsReq *m = build(a, T0 + 1000 * MS, &points);
    const ResourceMetrics *rm = resource(m, "d");
    const Metric *calls = metric(rm, "traces.span.metrics.calls");
    assert_int_equal(calls->sum->aggregation_temporality, 1);
    assert_int_equal(calls_point(calls, "x", NULL)->as_int, 1); /* no zero point in delta */
    unpacked_free(m);
    /* The emit was refused: nothing moves on, the next flush carries it. */
    feed(a, rss, 1, T0 + 1500 * MS);
    m = build(a, T0 + 2000 * MS, &points);
    rm = resource(m, "d");
    const NumberDP *p = calls_point(metric(rm, "traces.span.metrics.calls"), "x", NULL);
    assert_int_equal(p->as_int, 2);
    assert_int_equal(p->start_time_unix_nano, T0);
    assert_int_equal(hist_point(metric(rm, "traces.span.metrics.duration"), "x", NULL)->count, 2);
    unpacked_free(m);
    assert_int_equal(sm_agg_flushed(a, T0 + 2000 * MS), 0);
    /* Only x again: y, with nothing new, is not written and is forgotten. */
    span_spec_t s2[] = {{"x", 2, 0, 3 * MS, 1, NULL}};
    ResourceSpans *rs2[] = {mk_rs(r, 1, s2, 1)};
    feed(a, rs2, 1, T0 + 2500 * MS);
    m = build(a, T0 + 3000 * MS, &points);
    assert_int_equal(points, 2);
    rm = resource(m, "d");
    p = calls_point(metric(rm, "traces.span.metrics.calls"), "x", NULL);
    assert_int_equal(p->as_int, 1);
    assert_int_equal(p->start_time_unix_nano, T0 + 2000 * MS); /* the previous flush */
    assert_null(calls_point(metric(rm, "traces.span.metrics.calls"), "y", NULL));
    unpacked_free(m);
    assert_int_equal(sm_agg_flushed(a, T0 + 3000 * MS), 1);
    assert_int_equal(sm_agg_series(a), 1);
    /* Nothing at all: nothing to send. */
    assert_null(build(a, T0 + 4000 * MS, &points));
    assert_int_equal(sm_agg_flushed(a, T0 + 4000 * MS), 1);
    assert_int_equal(sm_agg_resources(a), 0);
    sm_agg_free(a);
}

static void test_exemplars(void **state)
{
    (void)state;
    sm_opts_t o = base_opts();
    o.exemplars = true;
    o.max_exemplars = 2;
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(sizeof(KeyValue *));
    r[0] = kv_str("service.name", "e");
    span_spec_t s[] = {{"x", 2, 0, 3 * MS, 0, NULL}, /* all-zero trace id: no exemplar */
                       {"x", 2, 0, 7 * MS, 0xab, NULL},
                       {"x", 2, 0, 9 * MS, 0xcd, NULL},
                       {"x", 2, 0, 11 * MS, 0xef, NULL}}; /* over max_per_data_point */
    ResourceSpans *rss[] = {mk_rs(r, 1, s, 4)};
    feed(a, rss, 1, T0);
    uint64_t points;
    int64_t f = T0 + 5000 * MS;
    MetricsReq *m = build(a, f, &points);
    const ResourceMetrics *rm = resource(m, "e");
    const HistDP *h = hist_point(metric(rm, "traces.span.metrics.duration"), "x", NULL);
    assert_int_equal(h->n_exemplars, 2);
    const Opentelemetry__Proto__Metrics__V1__Exemplar *e = h->exemplars[0];
    assert_int_equal(e->trace_id.len, 16);
    assert_int_equal(e->trace_id.data[0], 0xab);
    assert_int_equal(e->trace_id.data[15], 0xab);
    assert_int_equal(e->span_id.len, 8);
    assert_int_equal(e->span_id.data[0], 2); /* the second span */
    assert_int_equal(e->span_id.data[7], 0x5a);
    assert_true(e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE);
    assert_true(fabs(e->as_double - 7.0) < 1e-9);
    assert_int_equal(e->time_unix_nano, f);
    assert_int_equal(h->exemplars[1]->trace_id.data[0], 0xcd);
    const NumberDP *c = calls_point(metric(rm, "traces.span.metrics.calls"), "x", NULL);
    assert_int_equal(c->n_exemplars, 2); /* the calls carry them too, as the collector */
    unpacked_free(m);
    sm_agg_flushed(a, f);
    m = build(a, f + MS, &points); /* cleared after a flush */
    h = hist_point(metric(resource(m, "e"), "traces.span.metrics.duration"), "x", NULL);
    assert_int_equal(h->n_exemplars, 0);
    assert_int_equal(h->count, 4);
    unpacked_free(m);
    sm_agg_free(a);

    /* max_per_data_point 0: none at all, as the collector */
    o.max_exemplars = 0;
    a = sm_agg_new(&o);
    feed(a, rss, 1, T0);
    m = build(a, f, &points);
    h = hist_point(metric(resource(m, "e"), "traces.span.metrics.duration"), "x", NULL);
    assert_int_equal(h->n_exemplars, 0);
    assert_int_equal(h->count, 4);
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_cardinality_limit(void **state)
{
    (void)state;
    sm_opts_t o = base_opts();
    o.cardinality_limit = 2;
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(sizeof(KeyValue *));
    r[0] = kv_str("service.name", "c");
    span_spec_t s[] = {{"a", 2, 0, MS, 1, NULL},
                       {"b", 2, 0, MS, 1, NULL},
                       {"c", 2, 0, MS, 1, NULL},
                       {"d", 2, 0, MS, 1, NULL},
                       {"a", 2, 0, MS, 1, NULL}};
    ResourceSpans *rss[] = {mk_rs(r, 1, s, 5)};
    sm_consume_stats_t st = feed(a, rss, 1, T0);
    assert_int_equal(st.overflow, 2);
    assert_int_equal(sm_agg_series(a), 3);
    sm_agg_flushed(a, T0);
    uint64_t points;
    MetricsReq *m = build(a, T0 + MS, &points);
    const Metric *calls = metric(resource(m, "c"), "traces.span.metrics.calls");
    assert_int_equal(calls->sum->n_data_points, 3);
    assert_int_equal(calls_point(calls, "a", NULL)->as_int, 2);
    int found = 0;
    for (size_t i = 0; i < 3; i++) {
        const NumberDP *p = calls->sum->data_points[i];
        const AnyValue *v = attr(p->attributes, p->n_attributes, "otel.metric.overflow");
        if (!v) continue;
        assert_int_equal(p->n_attributes, 1);
        assert_true(v->bool_value);
        assert_int_equal(p->as_int, 2);
        found++;
    }
    assert_int_equal(found, 1);
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_resources(void **state)
{
    (void)state;
    const char *keys[] = {"service.name"};
    sm_opts_t o = base_opts();
    o.key_attrs = keys;
    o.nkey_attrs = 1;
    o.expiration_ns = 5000 * MS;
    sm_agg_t *a = sm_agg_new(&o);
    /* Two processes of one service: one resource by service.name. */
    KeyValue **r1 = T(2 * sizeof(KeyValue *)), **r2 = T(2 * sizeof(KeyValue *));
    r1[0] = kv_int("process.pid", 1);
    r1[1] = kv_str("service.name", "k");
    r2[0] = kv_str("service.name", "k");
    r2[1] = kv_int("process.pid", 2);
    KeyValue **r3 = T(sizeof(KeyValue *)); /* no service.name: skipped */
    r3[0] = kv_str("host.name", "h");
    KeyValue **r4 = T(sizeof(KeyValue *));
    r4[0] = kv_str("service.name", "other");
    span_spec_t s[] = {{"x", 2, 0, MS, 1, NULL}};
    span_spec_t s3[] = {{"x", 2, 0, MS, 1, NULL}, {"y", 2, 0, MS, 1, NULL}};
    ResourceSpans *rss[] = {mk_rs(r1, 2, s, 1), mk_rs(r2, 2, s, 1), mk_rs(r3, 1, s3, 2),
                            mk_rs(r4, 1, s, 1)};
    sm_consume_stats_t st = feed(a, rss, 4, T0);
    assert_int_equal(st.spans, 3);
    assert_int_equal(st.no_service, 2);
    assert_int_equal(sm_agg_resources(a), 2);
    assert_int_equal(sm_agg_series(a), 2);
    sm_agg_flushed(a, T0 + 1000 * MS);
    /* "k" is seen again, "other" is not: after metrics_expiration it goes. */
    ResourceSpans *again[] = {mk_rs(r2, 2, s, 1)};
    feed(a, again, 1, T0 + 4000 * MS);
    uint64_t points;
    MetricsReq *m = build(a, T0 + 5000 * MS, &points);
    assert_int_equal(m->n_resource_metrics, 2);
    const ResourceMetrics *rm = resource(m, "k");
    /* the attributes of the first resource seen */
    assert_int_equal(attr(rm->resource->attributes, 2, "process.pid")->int_value, 1);
    assert_int_equal(calls_point(metric(rm, "traces.span.metrics.calls"), "x", NULL)->as_int, 3);
    unpacked_free(m);
    assert_int_equal(sm_agg_flushed(a, T0 + 5000 * MS), 1);
    assert_int_equal(sm_agg_resources(a), 1);
    m = build(a, T0 + 6000 * MS, &points);
    assert_int_equal(m->n_resource_metrics, 1);
    assert_non_null(resource(m, "k"));
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_resource_cache_size(void **state)
{
    (void)state;
    sm_opts_t o = base_opts();
    o.resource_cache_size = 2;
    sm_agg_t *a = sm_agg_new(&o);
    const char *names[] = {"s1", "s2", "s3"};
    span_spec_t s[] = {{"x", 2, 0, MS, 1, NULL}};
    for (int i = 0; i < 3; i++) {
        KeyValue **r = T(sizeof(KeyValue *));
        r[0] = kv_str("service.name", names[i]);
        ResourceSpans *rss[] = {mk_rs(r, 1, s, 1)};
        feed(a, rss, 1, T0 + i * MS);
    }
    uint64_t points;
    MetricsReq *m = build(a, T0 + 10 * MS, &points);
    assert_int_equal(m->n_resource_metrics, 3); /* all written once */
    unpacked_free(m);
    assert_int_equal(sm_agg_flushed(a, T0 + 10 * MS), 1);
    m = build(a, T0 + 20 * MS, &points);
    assert_int_equal(m->n_resource_metrics, 2);
    assert_null(resource(m, "s1")); /* the least recently seen */
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_seconds(void **state)
{
    (void)state;
    double bounds_s[16];
    for (int i = 0; i < 16; i++)
        bounds_s[i] = default_ms[i] / 1000;
    sm_opts_t o = base_opts();
    o.bounds = bounds_s;
    o.ns_per_unit = 1e9;
    o.unit = "s";
    o.name_calls = "calls";
    o.name_duration = "duration";
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(sizeof(KeyValue *));
    r[0] = kv_str("service.name", "s");
    span_spec_t s[] = {{"x", 2, 0, 1500 * MS, 1, NULL}};
    ResourceSpans *rss[] = {mk_rs(r, 1, s, 1)};
    feed(a, rss, 1, T0);
    uint64_t points;
    MetricsReq *m = build(a, T0 + MS, &points);
    const Metric *d = metric(resource(m, "s"), "duration");
    assert_string_equal(d->unit, "s");
    const HistDP *h = hist_point(d, "x", NULL);
    assert_true(fabs(h->sum - 1.5) < 1e-12);
    assert_true(h->explicit_bounds[0] == 0.002);
    assert_int_equal(h->bucket_counts[12], 1); /* (1.4, 2] */
    unpacked_free(m);
    sm_agg_free(a);
}

/* The bucket of v at `scale`, from the definition: base^i < v <= base^(i+1). */
static long double bound(int32_t i, int32_t scale)
{
    /* base^i = 2^(i * 2^-scale): the exponent is exact in a long double, and exp2l
     * of an integer is exact, so powers of two are bounds exactly */
    return exp2l(ldexpl((long double)i, -scale));
}

static int32_t ref_index(double v, int32_t scale)
{
    int32_t i = (int32_t)floorl(log2l((long double)v) * ldexpl(1.0L, scale));
    while (bound(i, scale) >= v)
        i--;
    while (bound(i + 1, scale) < v)
        i++;
    return i;
}

static void test_exponential(void **state)
{
    (void)state;
    /* the mapping, at positive, zero and negative scales, powers of two included */
    const double vals[] = {1, 2, 3, 0.5, 1.5, 7.25, 1000, 1024, 0.001, 12345.678};
    for (int32_t sc = -4; sc <= 20; sc += 3)
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
            assert_int_equal(sm_expo_index(vals[i], sc), ref_index(vals[i], sc));

    sm_opts_t o = base_opts();
    o.exponential = true;
    o.max_size = 10;
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(sizeof(KeyValue *));
    r[0] = kv_str("service.name", "x");
    enum { N = 40 };
    span_spec_t s[N];
    double durs[N];
    for (int i = 0; i < N; i++) {
        int64_t ns = i == 0 ? 0 : (int64_t)(i * i) * 137 * 1000; /* 0 .. ~213ms */
        s[i] = (span_spec_t){"op", 2, 0, ns, 1, NULL};
        durs[i] = (double)ns / 1e6;
    }
    ResourceSpans *rss[] = {mk_rs(r, 1, s, N)};
    feed(a, rss, 1, T0);
    uint64_t points;
    MetricsReq *m = build(a, T0 + MS, &points);
    const Metric *d = metric(resource(m, "x"), "traces.span.metrics.duration");
    assert_int_equal(d->data_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    assert_int_equal(d->exponential_histogram->aggregation_temporality, 2);
    const ExpDP *e = d->exponential_histogram->data_points[0];
    assert_int_equal(e->count, N);
    assert_int_equal(e->zero_count, 1);
    assert_true(e->_min_case ==
                    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN &&
                e->min == 0);
    assert_true(e->_max_case ==
                    OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX &&
                fabs(e->max - durs[N - 1]) < 1e-9);
    assert_true(e->positive->n_bucket_counts <= 10);
    assert_true(e->scale < 20);
    /* each value in the bucket the definition gives at the final scale */
    uint64_t expect[10] = {0};
    double sum = 0;
    for (int i = 1; i < N; i++) {
        int32_t idx = ref_index(durs[i], e->scale) - e->positive->offset;
        assert_true(idx >= 0 && idx < (int32_t)e->positive->n_bucket_counts);
        expect[idx]++;
        sum += durs[i];
    }
    for (size_t i = 0; i < e->positive->n_bucket_counts; i++)
        assert_int_equal(e->positive->bucket_counts[i], expect[i]);
    assert_true(fabs(e->sum - sum) < 1e-6);
    /* one more downscale would have fitted too: the scale is the largest that fits */
    int32_t lo = ref_index(durs[1], e->scale + 1), hi = ref_index(durs[N - 1], e->scale + 1);
    assert_true(hi - lo + 1 > 10);
    unpacked_free(m);
    sm_agg_free(a);
}

static void test_events(void **state)
{
    (void)state;
    sm_dim_t dims[] = {{.name = "http.method", .len = 11, .def = "GET", .def_len = 3}};
    sm_dim_t edims[] = {{.name = "exception.type", .len = 14},
                        {.name = "region", .len = 6, .def = "none", .def_len = 4}};
    sm_opts_t o = base_opts();
    o.dims = dims;
    o.ndims = 1;
    o.events = true;
    o.edims = edims;
    o.nedims = 2;
    o.name_events = "traces.span.metrics.events";
    sm_agg_t *a = sm_agg_new(&o);
    KeyValue **r = T(2 * sizeof(KeyValue *));
    r[0] = kv_str("service.name", "ev");
    r[1] = kv_str("region", "eu"); /* the resource's, below an event's own */
    span_spec_t s[] = {{"x", 2, 2, 3 * MS, 1, NULL}, {"x", 2, 2, 3 * MS, 1, NULL}};
    ResourceSpans *rs = mk_rs(r, 2, s, 2);
    /* span 0: events IOError, Timeout (region us); span 1: IOError */
    const char *types[] = {"IOError", "Timeout", "IOError"};
    for (int i = 0; i < 3; i++) {
        Span *sp = rs->scope_spans[0]->spans[i < 2 ? 0 : 1];
        Opentelemetry__Proto__Trace__V1__Span__Event *e = T(sizeof(*e));
        opentelemetry__proto__trace__v1__span__event__init(e);
        e->name = S("exception");
        e->n_attributes = i == 1 ? 2 : 1;
        e->attributes = T(2 * sizeof(KeyValue *));
        e->attributes[0] = kv_str("exception.type", types[i]);
        if (i == 1) e->attributes[1] = kv_str("region", "us");
        Opentelemetry__Proto__Trace__V1__Span__Event **evs = T(3 * sizeof(*evs));
        for (size_t k = 0; k < sp->n_events; k++)
            evs[k] = sp->events[k];
        evs[sp->n_events++] = e;
        sp->events = evs;
    }
    ResourceSpans *rss[] = {rs};
    sm_consume_stats_t st = feed(a, rss, 1, T0);
    assert_int_equal(st.spans, 2);
    assert_int_equal(st.events, 3);
    assert_int_equal(sm_agg_series(a), 3); /* one of calls/duration, two of events */
    sm_agg_flushed(a, T0);
    uint64_t points;
    MetricsReq *m = build(a, T0 + MS, &points);
    assert_int_equal(points, 4); /* calls, duration, two events points */
    const ResourceMetrics *rm = resource(m, "ev");
    assert_int_equal(rm->scope_metrics[0]->n_metrics, 3);
    assert_int_equal(calls_point(metric(rm, "traces.span.metrics.calls"), "x", NULL)->as_int, 2);
    const Metric *ev = metric(rm, "traces.span.metrics.events");
    assert_non_null(ev);
    assert_true(ev->sum->is_monotonic);
    assert_int_equal(ev->sum->n_data_points, 2);
    int seen = 0;
    for (size_t i = 0; i < 2; i++) {
        const NumberDP *p = ev->sum->data_points[i];
        KeyValue **kvs = p->attributes;
        size_t n = p->n_attributes;
        assert_int_equal(n, 7); /* 4 defaults, http.method, exception.type, region */
        assert_string_equal(attr_str(kvs, n, "status.code"), "STATUS_CODE_ERROR");
        assert_string_equal(attr_str(kvs, n, "http.method"), "GET");
        const char *t = attr_str(kvs, n, "exception.type");
        if (strcmp(t, "IOError") == 0) {
            assert_string_equal(attr_str(kvs, n, "region"), "eu");
            assert_int_equal(p->as_int, 2);
            seen |= 1;
        } else {
            assert_string_equal(t, "Timeout");
            assert_string_equal(attr_str(kvs, n, "region"), "us");
            assert_int_equal(p->as_int, 1);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    unpacked_free(m);
    sm_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_calls_and_durations, free_all),
        cmocka_unit_test_teardown(test_dimensions, free_all),
        cmocka_unit_test_teardown(test_delta_and_carry_over, free_all),
        cmocka_unit_test_teardown(test_exemplars, free_all),
        cmocka_unit_test_teardown(test_cardinality_limit, free_all),
        cmocka_unit_test_teardown(test_resources, free_all),
        cmocka_unit_test_teardown(test_resource_cache_size, free_all),
        cmocka_unit_test_teardown(test_seconds, free_all),
        cmocka_unit_test_teardown(test_exponential, free_all),
        cmocka_unit_test_teardown(test_events, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
