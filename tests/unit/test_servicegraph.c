/*
 * The servicegraph connector's engine (plugins/connectors/servicegraph/sg_*.c,
 * compiled in): OTLP trace requests encoded here with protobuf-c, read by the
 * engine through the core's real view, paired into edges, expired on a fake
 * clock, and the OTLP metrics request it writes unpacked with protobuf-c and
 * checked field by field.
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
#include "sg.h"
#include "sg_config.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;

static const sy_host_api_t *api;

enum { SERVER = 2, CLIENT = 3, PRODUCER = 4, CONSUMER = 5, INTERNAL = 1 };
#define SEC 1000000000LL

/* One span of a test request: its resource's service (NULL: none), its kind,
 * IDs (every byte of the ID is the number given; 0: absent), status code,
 * duration, span attributes and resource attributes (key, value, ..., NULL). */
typedef struct span_spec_s {
    const char *service;
    int kind;
    uint8_t tid, sid, parent;
    int status;
    uint64_t dur_ns;
    const char *attrs[7];
    const char *rattrs[5];
} span_spec_t;

#define T0 1700000000000000000ull

static size_t fill_kvs(KeyValue *kv, AnyValue *av, KeyValue **ptrs, const char *const *src,
                       const char *service)
{
    size_t n = 0;
    if (service) {
        opentelemetry__proto__common__v1__key_value__init(&kv[n]);
        opentelemetry__proto__common__v1__any_value__init(&av[n]);
        av[n].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av[n].string_value = (char *)service;
        kv[n].key = "service.name";
        kv[n].value = &av[n];
        ptrs[n] = &kv[n];
        n++;
    }
    for (size_t i = 0; src[i]; i += 2) {
        opentelemetry__proto__common__v1__key_value__init(&kv[n]);
        opentelemetry__proto__common__v1__any_value__init(&av[n]);
        const char *v = src[i + 1];
        if (v[0] == '#') { /* "#123": an int attribute */
            av[n].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            av[n].int_value = strtoll(v + 1, NULL, 10);
        } else {
            av[n].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            av[n].string_value = (char *)v;
        }
        kv[n].key = (char *)src[i];
        kv[n].value = &av[n];
        ptrs[n] = &kv[n];
        n++;
    }
    return n;
}

/* A traces batch with one ResourceSpans per span. */
static sy_batch_t *batch_of(const span_spec_t *sp, size_t n)
{
    ResourceSpans rs[8], *rsp[8];
    ScopeSpans ss[8], *ssp[8];
    Span span[8], *spanp[8];
    Resource res[8];
    KeyValue kv[8][4], skv[8][4];
    AnyValue av[8][4], sav[8][4];
    KeyValue *kvp[8][4], *skvp[8][4];
    uint8_t tid[8][16], sid[8][8], pid[8][8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[i]);
        opentelemetry__proto__trace__v1__scope_spans__init(&ss[i]);
        opentelemetry__proto__trace__v1__span__init(&span[i]);
        opentelemetry__proto__resource__v1__resource__init(&res[i]);
        res[i].n_attributes = fill_kvs(kv[i], av[i], kvp[i], sp[i].rattrs, sp[i].service);
        res[i].attributes = kvp[i];
        span[i].n_attributes = fill_kvs(skv[i], sav[i], skvp[i], sp[i].attrs, NULL);
        span[i].attributes = skvp[i];
        memset(tid[i], sp[i].tid, 16);
        memset(sid[i], sp[i].sid, 8);
        memset(pid[i], sp[i].parent, 8);
        span[i].trace_id = (ProtobufCBinaryData){16, tid[i]};
        if (sp[i].sid) span[i].span_id = (ProtobufCBinaryData){8, sid[i]};
        if (sp[i].parent) span[i].parent_span_id = (ProtobufCBinaryData){8, pid[i]};
        span[i].name = "op";
        span[i].kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)sp[i].kind;
        span[i].start_time_unix_nano = T0;
        span[i].end_time_unix_nano = T0 + sp[i].dur_ns;
        static Opentelemetry__Proto__Trace__V1__Status st[8];
        opentelemetry__proto__trace__v1__status__init(&st[i]);
        st[i].code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)sp[i].status;
        span[i].status = &st[i];
        spanp[i] = &span[i];
        ss[i].n_spans = 1;
        ss[i].spans = &spanp[i];
        ssp[i] = &ss[i];
        rs[i].resource = &res[i];
        rs[i].n_scope_spans = 1;
        rs[i].scope_spans = &ssp[i];
        rsp[i] = &rs[i];
    }
    TraceReq req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = n;
    req.resource_spans = rsp;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    protobuf_c_message_pack(&req.base, buf);
    char err[256];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

static void feed(sg_t *sg, const span_spec_t *sp, size_t n, int64_t now)
{
    sy_batch_t *b = batch_of(sp, n);
    assert_int_equal(sg_ingest(sg, api, b, now), 0);
    sy__batch_release(b);
}

/* ---- options --------------------------------------------------------------- */

static const double bounds[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const peers[] = {"peer.service", "db.name", "db.system"};
static const char *const dbs[] = {"db.name"};

static sg_opts_t default_opts(void)
{
    sg_opts_t o = {.bounds = bounds,
                   .nbounds = 16,
                   .peer_attrs = peers,
                   .npeer = 3,
                   .db_attrs = dbs,
                   .ndb = 1,
                   .ttl_ns = 2 * SEC,
                   .max_items = 1000,
                   .series_ttl_ns = 900 * SEC};
    return o;
}

/* ---- reading the output ------------------------------------------------------ */

static MetricsReq *encode(sg_t *sg)
{
    uint8_t *bytes;
    size_t len;
    assert_int_equal(sg_encode(sg, T0, T0 + 5 * SEC, &bytes, &len), 0);
    assert_non_null(bytes);
    MetricsReq *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            NULL, len, bytes);
    free(bytes);
    assert_non_null(r);
    assert_int_equal(r->n_resource_metrics, 1);
    assert_int_equal(r->resource_metrics[0]->n_scope_metrics, 1);
    assert_string_equal(r->resource_metrics[0]->scope_metrics[0]->scope->name,
                        "traces_service_graph");
    return r;
}

static void req_free(MetricsReq *r)
{
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
        r, NULL);
}

static Metric *metric(MetricsReq *r, const char *name)
{
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++)
        if (!strcmp(sm->metrics[i]->name, name)) return sm->metrics[i];
    return NULL;
}

/* The string form of label `key` in kvs (bools as true/false); NULL: absent. */
static const char *label(KeyValue **kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key)) continue;
        AnyValue *v = kvs[i]->value;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE)
            return v->bool_value ? "true" : "false";
        assert_int_equal(v->value_case,
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
        return v->string_value;
    }
    return NULL;
}

static NumberDataPoint *sum_point(MetricsReq *r, const char *name, const char *client,
                                  const char *server)
{
    Metric *m = metric(r, name);
    if (!m) return NULL;
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_true(m->sum->is_monotonic);
    assert_int_equal(m->sum->aggregation_temporality, 2);
    for (size_t i = 0; i < m->sum->n_data_points; i++) {
        NumberDataPoint *p = m->sum->data_points[i];
        if (!strcmp(label(p->attributes, p->n_attributes, "client"), client) &&
            !strcmp(label(p->attributes, p->n_attributes, "server"), server)) {
            assert_int_equal(p->value_case,
                             OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
            assert_int_equal(p->start_time_unix_nano, T0);
            assert_int_equal(p->time_unix_nano, T0 + 5 * SEC);
            return p;
        }
    }
    return NULL;
}

static HistogramDataPoint *hist_point(MetricsReq *r, const char *name, const char *client,
                                      const char *server)
{
    Metric *m = metric(r, name);
    if (!m) return NULL;
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    assert_string_equal(m->unit, "s");
    assert_int_equal(m->histogram->aggregation_temporality, 2);
    for (size_t i = 0; i < m->histogram->n_data_points; i++) {
        HistogramDataPoint *p = m->histogram->data_points[i];
        if (!strcmp(label(p->attributes, p->n_attributes, "client"), client) &&
            !strcmp(label(p->attributes, p->n_attributes, "server"), server)) {
            assert_int_equal(p->n_explicit_bounds, 16);
            assert_int_equal(p->n_bucket_counts, 17);
            return p;
        }
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------------- */

/* A client span of "frontend" and the server span of "backend" that it called, in
 * one request: one series of each metric, labels and values as the collector's. */
static void test_pair_one_batch(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "frontend",
         .kind = CLIENT,
         .tid = 1,
         .sid = 0x11,
         .parent = 0x10,
         .dur_ns = 30000000},
        {.service = "backend",
         .kind = SERVER,
         .tid = 1,
         .sid = 0x12,
         .parent = 0x11,
         .dur_ns = 7000000},
        {.service = "backend", .kind = INTERNAL, .tid = 1, .sid = 0x13, .parent = 0x12},
    };
    feed(sg, sp, 3, 0);
    assert_int_equal(sg_store_len(sg), 0);
    assert_int_equal(sg_series_len(sg), 1);
    assert_int_equal(sg_stats(sg)->total_edges,
                     1); /* the client made it, the server completed it */
    MetricsReq *r = encode(sg);
    assert_int_equal(r->resource_metrics[0]->scope_metrics[0]->n_metrics, 3); /* no failed */
    NumberDataPoint *p = sum_point(r, "traces_service_graph_request_total", "frontend", "backend");
    assert_non_null(p);
    assert_int_equal(p->as_int, 1);
    assert_int_equal(p->n_attributes, 4);
    assert_string_equal(label(p->attributes, p->n_attributes, "connection_type"), "");
    assert_string_equal(label(p->attributes, p->n_attributes, "failed"), "false");
    assert_null(metric(r, "traces_service_graph_request_failed_total"));
    HistogramDataPoint *h =
        hist_point(r, "traces_service_graph_request_server", "frontend", "backend");
    assert_non_null(h);
    assert_int_equal(h->count, 1);
    assert_true(fabs(h->sum - 0.007) < 1e-12);
    for (size_t i = 0; i < 17; i++) /* 7 ms: the 8 ms bucket */
        assert_int_equal(h->bucket_counts[i], i == 3 ? 1 : 0);
    assert_true(h->explicit_bounds[0] == 0.002 && h->explicit_bounds[15] == 15);
    h = hist_point(r, "traces_service_graph_request_client", "frontend", "backend");
    assert_non_null(h);
    assert_int_equal(h->count, 1);
    assert_true(fabs(h->sum - 0.030) < 1e-12);
    for (size_t i = 0; i < 17; i++) /* 30 ms: the 50 ms bucket */
        assert_int_equal(h->bucket_counts[i], i == 5 ? 1 : 0);
    req_free(r);
    sg_free(sg);
}

/* The server half first, the client half in a later batch; three calls, one of
 * them failed on the server: request_total counts by `failed`, failed_total the
 * failed series only. A latency on a bound counts in that bound's bucket. */
static void test_pair_across_batches_and_failures(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    sg_t *sg = sg_new(&o);
    for (uint8_t t = 1; t <= 3; t++) {
        span_spec_t server = {.service = "backend",
                              .kind = SERVER,
                              .tid = t,
                              .sid = 0x22,
                              .parent = 0x21,
                              .status = t == 3 ? 2 : 0,
                              .dur_ns = 10000000};
        feed(sg, &server, 1, 0);
    }
    assert_int_equal(sg_store_len(sg), 3);
    assert_int_equal(sg_series_len(sg), 0);
    uint8_t *bytes = (uint8_t *)"x";
    size_t len = 1;
    assert_int_equal(sg_encode(sg, T0, T0, &bytes, &len), 0);
    assert_null(bytes); /* nothing to flush yet */
    assert_int_equal(len, 0);
    for (uint8_t t = 1; t <= 3; t++) {
        span_spec_t client = {
            .service = "frontend", .kind = CLIENT, .tid = t, .sid = 0x21, .dur_ns = 2000000000};
        feed(sg, &client, 1, SEC);
    }
    assert_int_equal(sg_store_len(sg), 0);
    assert_int_equal(sg_series_len(sg), 2);
    MetricsReq *r = encode(sg);
    Metric *m = metric(r, "traces_service_graph_request_total");
    assert_int_equal(m->sum->n_data_points, 2);
    for (size_t i = 0; i < 2; i++) {
        NumberDataPoint *p = m->sum->data_points[i];
        bool failed = !strcmp(label(p->attributes, p->n_attributes, "failed"), "true");
        assert_int_equal(p->as_int, failed ? 1 : 2);
    }
    m = metric(r, "traces_service_graph_request_failed_total");
    assert_non_null(m);
    assert_int_equal(m->sum->n_data_points, 1);
    NumberDataPoint *p = m->sum->data_points[0];
    assert_int_equal(p->as_int, 1);
    assert_string_equal(label(p->attributes, p->n_attributes, "failed"), "true");
    assert_string_equal(label(p->attributes, p->n_attributes, "client"), "frontend");
    m = metric(r, "traces_service_graph_request_client");
    for (size_t i = 0; i < m->histogram->n_data_points; i++) {
        HistogramDataPoint *h = m->histogram->data_points[i];
        /* 2 s is a bound (index 12): it counts there, not in 5 s. */
        assert_int_equal(h->bucket_counts[12], h->count);
        assert_int_equal(h->bucket_counts[13], 0);
    }
    req_free(r);
    sg_free(sg);
}

/* PRODUCER/CONSUMER make messaging_system edges; a client span with db.name (on
 * the span or its resource) is a database edge by itself. */
static void test_messaging_and_database(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "orders", .kind = PRODUCER, .tid = 5, .sid = 0x31, .dur_ns = 1000000},
        {.service = "billing",
         .kind = CONSUMER,
         .tid = 5,
         .sid = 0x32,
         .parent = 0x31,
         .dur_ns = 1000000},
        {.service = "orders",
         .kind = CLIENT,
         .tid = 5,
         .sid = 0x33,
         .dur_ns = 3000000,
         .attrs = {"db.name", "ordersdb", "db.system", "postgresql", NULL}},
    };
    feed(sg, sp, 3, 0);
    assert_int_equal(sg_store_len(sg), 0);
    MetricsReq *r = encode(sg);
    NumberDataPoint *p = sum_point(r, "traces_service_graph_request_total", "orders", "billing");
    assert_non_null(p);
    assert_string_equal(label(p->attributes, p->n_attributes, "connection_type"),
                        "messaging_system");
    p = sum_point(r, "traces_service_graph_request_total", "orders", "ordersdb");
    assert_non_null(p);
    assert_int_equal(p->as_int, 1);
    assert_string_equal(label(p->attributes, p->n_attributes, "connection_type"), "database");
    HistogramDataPoint *h =
        hist_point(r, "traces_service_graph_request_server", "orders", "ordersdb");
    assert_true(fabs(h->sum - 0.003) < 1e-12); /* the client's latency on both sides */
    req_free(r);
    sg_free(sg);
}

/* Expiry on a fake clock: an edge lives until its TTL has passed (strictly), then
 * a client span with peer.service becomes a virtual_node edge to that peer, one
 * without a peer attribute an edge to "unknown", and a root server span (no parent)
 * an edge from "user". virtual_node_extra_label adds the side that was made up. */
static void test_expiry_virtual_nodes(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    o.virtual_node_extra_label = true;
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "frontend",
         .kind = CLIENT,
         .tid = 7,
         .sid = 0x41,
         .dur_ns = 1000000,
         .attrs = {"peer.service", "payments-api", NULL}},
        {.service = "frontend", .kind = CLIENT, .tid = 7, .sid = 0x42, .dur_ns = 1000000},
        {.service = "backend", .kind = SERVER, .tid = 8, .sid = 0x43, .dur_ns = 1000000},
    };
    feed(sg, sp, 3, 10 * SEC);
    assert_int_equal(sg_store_len(sg), 3);
    sg_expire(sg, 12 * SEC); /* exactly the TTL: not yet */
    assert_int_equal(sg_store_len(sg), 3);
    sg_expire(sg, 12 * SEC + 1);
    assert_int_equal(sg_store_len(sg), 0);
    assert_int_equal(sg_stats(sg)->expired_edges, 3);
    assert_int_equal(sg_stats(sg)->virtual_edges, 3);
    MetricsReq *r = encode(sg);
    NumberDataPoint *p =
        sum_point(r, "traces_service_graph_request_total", "frontend", "payments-api");
    assert_non_null(p);
    assert_string_equal(label(p->attributes, p->n_attributes, "connection_type"), "virtual_node");
    assert_string_equal(label(p->attributes, p->n_attributes, "virtual_node"), "server");
    p = sum_point(r, "traces_service_graph_request_total", "frontend", "unknown");
    assert_non_null(p);
    p = sum_point(r, "traces_service_graph_request_total", "user", "backend");
    assert_non_null(p);
    assert_string_equal(label(p->attributes, p->n_attributes, "virtual_node"), "client");
    assert_string_equal(label(p->attributes, p->n_attributes, "connection_type"), "virtual_node");
    req_free(r);
    sg_free(sg);
}

/* virtual_node_peer_attributes: [] turns virtual nodes off: expired edges are
 * counted and forgotten. A full store drops the spans of new edges. */
static void test_no_virtual_nodes_and_full_store(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    o.npeer = 0;
    o.max_items = 2;
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "a", .kind = CLIENT, .tid = 9, .sid = 1, .attrs = {"peer.service", "x", NULL}},
        {.service = "a", .kind = CLIENT, .tid = 9, .sid = 2},
        {.service = "a", .kind = CLIENT, .tid = 9, .sid = 3},
        {.service = "a", .kind = CLIENT, .tid = 9, .sid = 4},
    };
    feed(sg, sp, 4, 0);
    assert_int_equal(sg_store_len(sg), 2);
    assert_int_equal(sg_stats(sg)->dropped_spans, 2);
    assert_int_equal(sg_stats(sg)->total_edges, 2);
    /* The pair of a stored edge still completes in a full store. */
    span_spec_t srv = {.service = "b", .kind = SERVER, .tid = 9, .sid = 5, .parent = 2};
    feed(sg, &srv, 1, 0);
    assert_int_equal(sg_store_len(sg), 1);
    assert_int_equal(sg_series_len(sg), 1);
    sg_expire(sg, 3 * SEC);
    assert_int_equal(sg_store_len(sg), 0);
    assert_int_equal(sg_stats(sg)->expired_edges, 1);
    assert_int_equal(sg_series_len(sg), 1); /* no virtual edge */
    sg_free(sg);
}

/* dimensions: looked up on the resource first, then the span; labelled
 * client_<dim> / server_<dim>; an int attribute as its decimal string; the values
 * are part of the series key. Spans of a resource without service.name are
 * skipped and counted. */
static void test_dimensions_and_missing_service(void **st)
{
    (void)st;
    static const char *const dims[] = {"deployment.environment", "http.status_code"};
    sg_opts_t o = default_opts();
    o.dims = dims;
    o.ndims = 2;
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "frontend",
         .kind = CLIENT,
         .tid = 3,
         .sid = 0x51,
         .attrs = {"deployment.environment", "span-level", NULL},
         .rattrs = {"deployment.environment", "prod", NULL}},
        {.service = "backend",
         .kind = SERVER,
         .tid = 3,
         .sid = 0x52,
         .parent = 0x51,
         .attrs = {"http.status_code", "#503", NULL}},
        {.service = NULL, .kind = CLIENT, .tid = 3, .sid = 0x53},
    };
    feed(sg, sp, 3, 0);
    assert_int_equal(sg_stats(sg)->no_service, 1);
    assert_int_equal(sg_store_len(sg), 0);
    MetricsReq *r = encode(sg);
    NumberDataPoint *p = sum_point(r, "traces_service_graph_request_total", "frontend", "backend");
    assert_non_null(p);
    assert_int_equal(p->n_attributes, 6);
    assert_string_equal(label(p->attributes, p->n_attributes, "client_deployment.environment"),
                        "prod");
    assert_string_equal(label(p->attributes, p->n_attributes, "server_http.status_code"), "503");
    assert_null(label(p->attributes, p->n_attributes, "server_deployment.environment"));
    assert_null(label(p->attributes, p->n_attributes, "virtual_node"));
    req_free(r);
    /* Another environment is another series. */
    span_spec_t again[] = {
        {.service = "frontend",
         .kind = CLIENT,
         .tid = 4,
         .sid = 0x51,
         .rattrs = {"deployment.environment", "staging", NULL}},
        {.service = "backend",
         .kind = SERVER,
         .tid = 4,
         .sid = 0x52,
         .parent = 0x51,
         .attrs = {"http.status_code", "#503", NULL}},
    };
    feed(sg, again, 2, 0);
    assert_int_equal(sg_series_len(sg), 2);
    sg_free(sg);
}

/* Series not updated for series_ttl_ns are forgotten (the collector's cache loop). */
static void test_series_cleanup(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    sg_t *sg = sg_new(&o);
    span_spec_t sp[] = {
        {.service = "a", .kind = CLIENT, .tid = 1, .sid = 1},
        {.service = "b", .kind = SERVER, .tid = 1, .sid = 2, .parent = 1},
    };
    feed(sg, sp, 2, 0);
    span_spec_t sp2[] = {
        {.service = "c", .kind = CLIENT, .tid = 2, .sid = 1},
        {.service = "b", .kind = SERVER, .tid = 2, .sid = 2, .parent = 1},
    };
    feed(sg, sp2, 2, 600 * SEC);
    assert_int_equal(sg_series_len(sg), 2);
    sg_clean_series(sg, 900 * SEC);
    assert_int_equal(sg_series_len(sg), 2);
    sg_clean_series(sg, 900 * SEC + 1);
    assert_int_equal(sg_series_len(sg), 1);
    assert_int_equal(sg_stats(sg)->series_expired, 1);
    MetricsReq *r = encode(sg);
    assert_non_null(sum_point(r, "traces_service_graph_request_total", "c", "b"));
    assert_null(sum_point(r, "traces_service_graph_request_total", "a", "b"));
    req_free(r);
    sg_free(sg);
}

static void test_parse_duration(void **st)
{
    (void)st;
    double d;
    assert_int_equal(sg_parse_duration("100ms", &d), 0);
    assert_true(fabs(d - 0.1) < 1e-12);
    assert_int_equal(sg_parse_duration("1.5s", &d), 0);
    assert_true(fabs(d - 1.5) < 1e-12);
    assert_int_equal(sg_parse_duration("1m30s", &d), 0);
    assert_true(fabs(d - 90) < 1e-12);
    assert_int_equal(sg_parse_duration("250us", &d), 0);
    assert_true(fabs(d - 0.00025) < 1e-15);
    assert_int_equal(sg_parse_duration("0", &d), 0);
    assert_true(d == 0);
    assert_int_equal(sg_parse_duration("2h", &d), 0);
    assert_true(d == 7200);
    assert_int_equal(sg_parse_duration("5", &d), -1);
    assert_int_equal(sg_parse_duration("ms", &d), -1);
    assert_int_equal(sg_parse_duration("1x", &d), -1);
    assert_int_equal(sg_parse_duration("", &d), -1);
}

/* A batch of another signal is refused. */
static void test_not_traces(void **st)
{
    (void)st;
    sg_opts_t o = default_opts();
    sg_t *sg = sg_new(&o);
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_METRICS, "test");
    assert_int_equal(sg_ingest(sg, api, b, 0), SY_EINVAL);
    sy__batch_release(b);
    sg_free(sg);
}

int main(void)
{
    api = sy__host_api();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_one_batch),
        cmocka_unit_test(test_pair_across_batches_and_failures),
        cmocka_unit_test(test_messaging_and_database),
        cmocka_unit_test(test_expiry_virtual_nodes),
        cmocka_unit_test(test_no_virtual_nodes_and_full_store),
        cmocka_unit_test(test_dimensions_and_missing_service),
        cmocka_unit_test(test_series_cleanup),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_not_traces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
