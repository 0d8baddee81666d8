/*
 * The OTTL accessor over the view (plugins/common/ottl_view.c): conditions and
 * statements evaluated on real views of batches built here with protobuf-c, for
 * the span, spanevent, resource, scope, log, metric and datapoint contexts; edits
 * committed and read back, untouched items checked unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "ottl.h"
#include "ottl_view.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValueList KeyValueList;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;

static const sy_host_api_t *api;

static void kv_str(KeyValue *kv, AnyValue *av, const char *k, const char *v)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    kv->key = (char *)k;
    kv->value = av;
}

static void kv_int(KeyValue *kv, AnyValue *av, const char *k, int64_t v)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av->int_value = v;
    kv->key = (char *)k;
    kv->value = av;
}

static sy_batch_t *batch_of(sy_signal_t signal, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    sy_batch_t *b = sy__batch_new(signal, "test");
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    protobuf_c_message_pack(m, buf);
    char err[256];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

/* A traces request: resource {service.name=checkout}, scope lib/1.0, two spans:
 * "GET /cart" (attrs http.route=/cart, secret=s, n=7, nested={inner=deep}; events
 * "noise", "signal"; status ERROR "boom") and "other" (no attributes). */
static sy_batch_t *traces_batch(void)
{
    static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                    0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    KeyValue rkv[1], skv[4], ikv[1];
    AnyValue rav[1], sav[4], iav[1];
    kv_str(&rkv[0], &rav[0], "service.name", "checkout");
    kv_str(&skv[0], &sav[0], "http.route", "/cart");
    kv_str(&skv[1], &sav[1], "secret", "s");
    kv_int(&skv[2], &sav[2], "n", 7);
    kv_str(&ikv[0], &iav[0], "inner", "deep");
    KeyValueList kvl;
    opentelemetry__proto__common__v1__key_value_list__init(&kvl);
    KeyValue *ikvp[] = {&ikv[0]};
    kvl.n_values = 1;
    kvl.values = ikvp;
    opentelemetry__proto__common__v1__key_value__init(&skv[3]);
    opentelemetry__proto__common__v1__any_value__init(&sav[3]);
    sav[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    sav[3].kvlist_value = &kvl;
    skv[3].key = "nested";
    skv[3].value = &sav[3];

    Resource res;
    opentelemetry__proto__resource__v1__resource__init(&res);
    KeyValue *rkvp[] = {&rkv[0]};
    res.n_attributes = 1;
    res.attributes = rkvp;
    Scope sc;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&sc);
    sc.name = "lib";
    sc.version = "1.0";

    Opentelemetry__Proto__Trace__V1__Span__Event ev[2];
    Opentelemetry__Proto__Trace__V1__Span__Event *evp[] = {&ev[0], &ev[1]};
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__trace__v1__span__event__init(&ev[i]);
        ev[i].name = i ? "signal" : "noise";
        ev[i].time_unix_nano = 1544712660500000000ull + (uint64_t)i;
    }
    Opentelemetry__Proto__Trace__V1__Status st;
    opentelemetry__proto__trace__v1__status__init(&st);
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st.message = "boom";
    Opentelemetry__Proto__Trace__V1__Span sp[2];
    Opentelemetry__Proto__Trace__V1__Span *spp[] = {&sp[0], &sp[1]};
    KeyValue *skvp[] = {&skv[0], &skv[1], &skv[2], &skv[3]};
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__trace__v1__span__init(&sp[i]);
        sp[i].trace_id = (ProtobufCBinaryData){16, (uint8_t *)tid};
        sp[i].span_id = (ProtobufCBinaryData){8, (uint8_t *)sid};
        sp[i].start_time_unix_nano = 1544712660000000000ull;
        sp[i].end_time_unix_nano = 1544712661000000000ull;
        sp[i].kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    }
    sp[0].name = "GET /cart";
    sp[0].n_attributes = 4;
    sp[0].attributes = skvp;
    sp[0].n_events = 2;
    sp[0].events = evp;
    sp[0].status = &st;
    sp[1].name = "other";

    Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.scope = &sc;
    ss.n_spans = 2;
    ss.spans = spp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[] = {&rs};
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = rsp;
    return batch_of(SY_SIGNAL_TRACES, &req.base);
}

static sy_view_node_t *first_scope(sy_view_t *v)
{
    sy_view_node_t *res = api->view_at(api->view_root(v), SY_VIEW_RESOURCES, 0);
    return api->view_at(res, SY_VIEW_SCOPES, 0);
}

/* Evaluates condition src of ctx on node. */
static bool cond(sy_view_node_t *node, syc_ottl_context_t ctx, const char *src)
{
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition(src, strlen(src), ctx, &err);
    if (!p) fail_msg("%s: %s", src, err.msg);
    syc_ottl_scratch_t *s = syc_ottl_scratch_new(0);
    syc_ottl_view_item_t it = {0};
    syc_ottl_view_bind(&it, api, node);
    bool out = false;
    int rc = syc_ottl_eval_condition(p, &syc_ottl_view_accessor, &it, s, &out);
    if (rc) fail_msg("%s: error %d", src, rc);
    syc_ottl_scratch_free(s);
    syc_ottl_free(p);
    return out;
}

/* Runs statement src of ctx on node; returns the evaluator's code. */
static int stmt(sy_view_node_t *node, syc_ottl_context_t ctx, const char *src)
{
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_statement(src, strlen(src), ctx, &err);
    if (!p) fail_msg("%s: %s", src, err.msg);
    syc_ottl_scratch_t *s = syc_ottl_scratch_new(0);
    syc_ottl_view_item_t it = {0};
    syc_ottl_view_bind(&it, api, node);
    int rc = syc_ottl_exec_statement(p, &syc_ottl_view_accessor, &it, s, NULL);
    syc_ottl_scratch_free(s);
    syc_ottl_free(p);
    return rc;
}

static void assert_attr_str(sy_view_node_t *n, const char *k, const char *want)
{
    sy_value_t v;
    int rc = api->view_attr_get(n, k, strlen(k), &v);
    if (!want) {
        assert_int_equal(rc, SY_EAGAIN);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(v.type, SY_VALUE_STRING);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.str, want, v.len);
}

static void test_span_reads(void **state)
{
    (void)state;
    sy_batch_t *b = traces_batch();
    sy_view_t *v = api->view_open(b);
    sy_view_node_t *sc = first_scope(v);
    sy_view_node_t *span = api->view_at(sc, SY_VIEW_ITEMS, 0);
    syc_ottl_context_t C = SYC_OTTL_CTX_SPAN;
    assert_true(cond(span, C, "name == \"GET /cart\""));
    assert_true(cond(span, C, "attributes[\"http.route\"] == \"/cart\""));
    assert_true(cond(span, C, "attributes[\"n\"] == 7 and attributes[\"n\"] > 6.5"));
    assert_true(cond(span, C, "attributes[\"missing\"] == nil"));
    assert_true(cond(span, C, "attributes[\"nested\"][\"inner\"] == \"deep\""));
    assert_true(cond(span, C, "IsMap(attributes[\"nested\"]) and Len(attributes) == 4"));
    assert_true(cond(span, C, "resource.attributes[\"service.name\"] == \"checkout\""));
    assert_true(cond(span, C, "instrumentation_scope.name == \"lib\""));
    assert_true(cond(span, C, "instrumentation_scope.version == \"1.0\""));
    assert_true(cond(span, C, "kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR"));
    assert_true(cond(span, C, "status.message == \"boom\""));
    assert_true(cond(span, C, "trace_id == 0x5b8efff798038103d269b633813fc60c"));
    assert_true(cond(span, C, "span_id == 0x0102030405060708"));
    assert_true(cond(span, C, "parent_span_id == nil and trace_state == \"\""));
    assert_true(cond(span, C, "start_time_unix_nano == 1544712660000000000"));
    assert_true(cond(span, C, "end_time_unix_nano > start_time_unix_nano"));
    assert_false(cond(span, C, "name == \"other\""));
    sy_view_node_t *other = api->view_at(sc, SY_VIEW_ITEMS, 1);
    assert_true(cond(other, C, "status.code == STATUS_CODE_UNSET and Len(attributes) == 0"));
    sy_view_node_t *ev = api->view_at(span, SY_VIEW_EVENTS, 1);
    assert_true(cond(ev, SYC_OTTL_CTX_SPANEVENT,
                     "name == \"signal\" and time_unix_nano == 1544712660500000001"));
    assert_true(cond(ev, SYC_OTTL_CTX_SPANEVENT, "resource.attributes[\"service.name\"] != nil"));
    sy_view_node_t *res = api->view_at(api->view_root(v), SY_VIEW_RESOURCES, 0);
    assert_true(cond(res, SYC_OTTL_CTX_RESOURCE, "attributes[\"service.name\"] == \"checkout\""));
    assert_true(cond(sc, SYC_OTTL_CTX_SCOPE, "name == \"lib\" and version == \"1.0\""));
    api->view_close(v);
    sy__batch_release(b);
}

static void test_span_edits(void **state)
{
    (void)state;
    sy_batch_t *b = traces_batch();
    sy_view_t *v = api->view_open(b);
    sy_view_node_t *sc = first_scope(v);
    sy_view_node_t *span = api->view_at(sc, SY_VIEW_ITEMS, 0);
    syc_ottl_context_t C = SYC_OTTL_CTX_SPAN;
    assert_int_equal(stmt(span, C, "set(name, \"renamed\") where kind == SPAN_KIND_SERVER"), 0);
    assert_int_equal(stmt(span, C, "set(attributes[\"added\"], \"yes\")"), 0);
    assert_int_equal(stmt(span, C, "set(attributes[\"copy\"], attributes[\"nested\"])"), 0);
    assert_int_equal(stmt(span, C, "delete_key(attributes, \"secret\")"), 0);
    /* a chain of edits of one key applies in order */
    assert_int_equal(stmt(span, C, "set(attributes[\"chain\"], \"1\")"), 0);
    assert_int_equal(stmt(span, C, "delete_key(attributes, \"chain\")"), 0);
    assert_int_equal(stmt(span, C, "set(attributes[\"chain\"], \"3\")"), 0);
    assert_int_equal(stmt(span, C,
                          "replace_pattern(attributes[\"http.route\"], \"c(ar)t\", "
                          "\"x$1\")"),
                     0);
    assert_int_equal(stmt(span, C, "set(status.code, STATUS_CODE_OK)"), 0);
    assert_int_equal(stmt(span, C, "set(resource.attributes[\"env\"], \"prod\")"), 0);
    assert_int_equal(stmt(span, C, "set(instrumentation_scope.name, \"lib2\")"), 0);
    /* nested keys cannot be edited in place */
    assert_int_equal(stmt(span, C, "set(attributes[\"nested\"][\"inner\"], \"x\")"), SY_ENOTSUP);
    sy_view_node_t *ev = api->view_at(span, SY_VIEW_EVENTS, 0);
    assert_int_equal(stmt(ev, SYC_OTTL_CTX_SPANEVENT, "set(attributes[\"e\"], 1)"), 0);
    assert_int_equal(api->view_commit(v), 0);

    sc = first_scope(v);
    span = api->view_at(sc, SY_VIEW_ITEMS, 0);
    assert_true(cond(span, C, "name == \"renamed\" and status.code == STATUS_CODE_OK"));
    assert_true(cond(span, C, "status.message == \"boom\""));
    assert_attr_str(span, "added", "yes");
    assert_attr_str(span, "secret", NULL);
    assert_attr_str(span, "chain", "3");
    assert_attr_str(span, "http.route", "/xar");
    assert_true(cond(span, C, "attributes[\"copy\"][\"inner\"] == \"deep\""));
    assert_true(cond(span, C, "attributes[\"n\"] == 7"));
    assert_true(cond(span, C, "resource.attributes[\"env\"] == \"prod\""));
    assert_true(cond(span, C, "resource.attributes[\"service.name\"] == \"checkout\""));
    assert_true(cond(span, C, "instrumentation_scope.name == \"lib2\""));
    assert_true(cond(span, C, "instrumentation_scope.version == \"1.0\""));
    ev = api->view_at(span, SY_VIEW_EVENTS, 0);
    assert_true(cond(ev, SYC_OTTL_CTX_SPANEVENT, "attributes[\"e\"] == 1 and name == \"noise\""));
    sy_view_node_t *other = api->view_at(sc, SY_VIEW_ITEMS, 1);
    assert_true(cond(other, C, "name == \"other\" and Len(attributes) == 0"));
    api->view_close(v);
    sy__batch_release(b);
}

static void test_map_editors(void **state)
{
    (void)state;
    sy_batch_t *b = traces_batch();
    sy_view_t *v = api->view_open(b);
    sy_view_node_t *span = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    syc_ottl_context_t C = SYC_OTTL_CTX_SPAN;
    assert_int_equal(stmt(span, C, "keep_keys(attributes, [\"http.route\", \"n\", \"secret\"])"),
                     0);
    assert_int_equal(stmt(span, C, "replace_all_patterns(attributes, \"value\", \"^s$\", \"***\")"),
                     0);
    assert_int_equal(stmt(span, C,
                          "replace_all_patterns(attributes, \"key\", \"^http\\\\.\", "
                          "\"h.\")"),
                     0);
    assert_int_equal(api->view_commit(v), 0);
    span = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    assert_int_equal(api->view_attr_count(span), 3);
    assert_attr_str(span, "h.route", "/cart");
    assert_attr_str(span, "secret", "***");
    assert_attr_str(span, "nested", NULL);
    /* truncate_all, limit, delete_matching_keys */
    assert_int_equal(stmt(span, C, "truncate_all(attributes, 2)"), 0);
    assert_int_equal(api->view_commit(v), 0);
    span = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    assert_attr_str(span, "h.route", "/c");
    assert_int_equal(stmt(span, C, "limit(attributes, 1, [\"n\"])"), 0);
    assert_int_equal(api->view_commit(v), 0);
    span = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    assert_int_equal(api->view_attr_count(span), 1);
    assert_true(cond(span, C, "attributes[\"n\"] == 7"));
    assert_int_equal(stmt(span, C, "delete_matching_keys(attributes, \"^n$\")"), 0);
    assert_int_equal(api->view_commit(v), 0);
    span = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    assert_int_equal(api->view_attr_count(span), 0);
    api->view_close(v);
    sy__batch_release(b);
}

static sy_batch_t *logs_batch(void)
{
    KeyValue kv[2];
    AnyValue av[2];
    kv_str(&kv[0], &av[0], "user", "alice");
    kv_int(&kv[1], &av[1], "code", 3);
    KeyValue *kvp[] = {&kv[0], &kv[1]};
    AnyValue body;
    opentelemetry__proto__common__v1__any_value__init(&body);
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = "user password=hunter2";
    Opentelemetry__Proto__Logs__V1__LogRecord lr;
    opentelemetry__proto__logs__v1__log_record__init(&lr);
    lr.time_unix_nano = 1;
    lr.observed_time_unix_nano = 2;
    lr.severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
    lr.severity_text = "WARN";
    lr.body = &body;
    lr.n_attributes = 2;
    lr.attributes = kvp;
    lr.flags = 1;
    Opentelemetry__Proto__Logs__V1__LogRecord *lrp[] = {&lr};
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl;
    opentelemetry__proto__logs__v1__scope_logs__init(&sl);
    sl.n_log_records = 1;
    sl.log_records = lrp;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *slp[] = {&sl};
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl;
    opentelemetry__proto__logs__v1__resource_logs__init(&rl);
    rl.n_scope_logs = 1;
    rl.scope_logs = slp;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rlp[] = {&rl};
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req;
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
    req.n_resource_logs = 1;
    req.resource_logs = rlp;
    return batch_of(SY_SIGNAL_LOGS, &req.base);
}

static void test_logs(void **state)
{
    (void)state;
    sy_batch_t *b = logs_batch();
    sy_view_t *v = api->view_open(b);
    sy_view_node_t *log = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    syc_ottl_context_t C = SYC_OTTL_CTX_LOG;
    assert_true(cond(log, C, "severity_number == SEVERITY_NUMBER_WARN"));
    assert_true(cond(log, C, "severity_text == \"WARN\" and flags == 1"));
    assert_true(cond(log, C, "IsMatch(body, \"password=\")"));
    assert_true(cond(log, C, "time_unix_nano == 1 and observed_time_unix_nano == 2"));
    assert_true(cond(log, C, "instrumentation_scope.name == \"\""));
    assert_true(cond(log, C, "trace_id == nil"));
    assert_int_equal(stmt(log, C, "replace_pattern(body, \"password=\\\\w+\", \"password=***\")"),
                     0);
    assert_int_equal(stmt(log, C, "set(severity_text, \"warning\")"), 0);
    assert_int_equal(stmt(log, C, "set(attributes[\"code\"], 4)"), 0);
    assert_int_equal(api->view_commit(v), 0);
    log = api->view_at(first_scope(v), SY_VIEW_ITEMS, 0);
    assert_true(cond(log, C, "body == \"user password=***\""));
    assert_true(cond(log, C, "severity_text == \"warning\" and attributes[\"code\"] == 4"));
    assert_true(cond(log, C, "attributes[\"user\"] == \"alice\" and flags == 1"));
    assert_true(cond(log, C, "severity_number == SEVERITY_NUMBER_WARN"));
    api->view_close(v);
    sy__batch_release(b);
}

static sy_batch_t *metrics_batch(void)
{
    KeyValue kv[2];
    AnyValue av[2];
    kv_str(&kv[0], &av[0], "host", "a");
    kv_str(&kv[1], &av[1], "host", "b");
    KeyValue *kvp0[] = {&kv[0]}, *kvp1[] = {&kv[1]};
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint dp[2];
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dpp[] = {&dp[0], &dp[1]};
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&dp[i]);
        dp[i].time_unix_nano = 10;
    }
    dp[0].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    dp[0].as_int = 42;
    dp[0].n_attributes = 1;
    dp[0].attributes = kvp0;
    dp[1].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    dp[1].as_double = 0.5;
    dp[1].n_attributes = 1;
    dp[1].attributes = kvp1;
    Opentelemetry__Proto__Metrics__V1__Sum sum;
    opentelemetry__proto__metrics__v1__sum__init(&sum);
    sum.n_data_points = 2;
    sum.data_points = dpp;
    sum.is_monotonic = true;
    sum.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    Opentelemetry__Proto__Metrics__V1__Metric m;
    opentelemetry__proto__metrics__v1__metric__init(&m);
    m.name = "requests";
    m.unit = "1";
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m.sum = &sum;
    Opentelemetry__Proto__Metrics__V1__Metric *mp[] = {&m};
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm;
    opentelemetry__proto__metrics__v1__scope_metrics__init(&sm);
    sm.n_metrics = 1;
    sm.metrics = mp;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp[] = {&sm};
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm;
    opentelemetry__proto__metrics__v1__resource_metrics__init(&rm);
    rm.n_scope_metrics = 1;
    rm.scope_metrics = smp;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp[] = {&rm};
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
    req.n_resource_metrics = 1;
    req.resource_metrics = rmp;
    return batch_of(SY_SIGNAL_METRICS, &req.base);
}

static int count_visit(sy_view_node_t *node, void *arg)
{
    (void)node;
    (*(int *)arg)++;
    return 0;
}

static void test_metrics(void **state)
{
    (void)state;
    sy_batch_t *b = metrics_batch();
    sy_view_t *v = api->view_open(b);
    sy_view_node_t *sc = first_scope(v);
    sy_view_node_t *m = api->view_at(sc, SY_VIEW_METRICS, 0);
    syc_ottl_context_t M = SYC_OTTL_CTX_METRIC, D = SYC_OTTL_CTX_DATAPOINT;
    assert_true(cond(m, M, "name == \"requests\" and type == METRIC_DATA_TYPE_SUM"));
    assert_true(cond(m, M, "is_monotonic == true and unit == \"1\" and description == \"\""));
    assert_true(cond(m, M, "aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE"));
    assert_true(cond(m, M, "HasAttrOnDatapoint(\"host\", \"b\")"));
    assert_false(cond(m, M, "HasAttrKeyOnDatapoint(\"zone\")"));
    sy_view_node_t *p0 = api->view_at(m, SY_VIEW_ITEMS, 0), *p1 = api->view_at(m, SY_VIEW_ITEMS, 1);
    assert_true(cond(p0, D, "value_int == 42 and value_double == 0.0"));
    assert_true(cond(p1, D, "value_double == 0.5 and value_int == 0"));
    assert_true(cond(p0, D, "metric.name == \"requests\" and attributes[\"host\"] == \"a\""));
    assert_true(cond(p1, D, "time_unix_nano == 10 and start_time_unix_nano == 0"));
    int n = 0;
    assert_int_equal(syc_ottl_view_walk(api, api->view_root(v), D, count_visit, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(syc_ottl_view_walk(api, api->view_root(v), SYC_OTTL_CTX_SPAN, count_visit, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(stmt(p0, D, "set(value_int, 43)"), 0);
    assert_int_equal(stmt(p1, D, "set(attributes[\"host\"], \"c\")"), 0);
    assert_int_equal(stmt(p1, D, "set(metric.description, \"d\")"), 0);
    assert_int_equal(stmt(m, M, "set(unit, \"ms\")"), 0);
    assert_int_equal(stmt(m, M, "set(type, METRIC_DATA_TYPE_GAUGE)"), SY_ENOTSUP);
    assert_int_equal(api->view_commit(v), 0);
    m = api->view_at(first_scope(v), SY_VIEW_METRICS, 0);
    p0 = api->view_at(m, SY_VIEW_ITEMS, 0);
    p1 = api->view_at(m, SY_VIEW_ITEMS, 1);
    assert_true(cond(p0, D, "value_int == 43 and attributes[\"host\"] == \"a\""));
    assert_true(cond(p1, D, "value_double == 0.5 and attributes[\"host\"] == \"c\""));
    assert_true(cond(m, M, "description == \"d\" and unit == \"ms\" and name == \"requests\""));
    api->view_close(v);
    sy__batch_release(b);
}

int main(void)
{
    api = sy__host_api();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_reads),  cmocka_unit_test(test_span_edits),
        cmocka_unit_test(test_map_editors), cmocka_unit_test(test_logs),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
