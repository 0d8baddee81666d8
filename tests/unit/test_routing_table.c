/*
 * test_routing_table.c - the routing connector's decision and regrouping
 * (plugins/connectors/routing/routing_table.c, compiled in): OTLP requests
 * written as OTLP/JSON, encoded, routed through the real view and view builder
 * of the core, and every output batch read back item by item: which resource,
 * scope (and metric) each item sits under, and which destination got it.
 * Also the table's own rules: statement forms, contexts, duplicates, errors.
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
#include "otlp_json.h"
#include "routing_table.h"

static const sy_host_api_t *api;
/* One runner for every test, as an instance keeps one from batch to batch. */
static rt_runner_t runner;

static const ProtobufCMessageDescriptor *desc_of(sy_signal_t signal)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case SY_SIGNAL_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    default:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    }
}

/* A batch of `signal` holding the request the OTLP/JSON describes. */
static sy_batch_t *batch_json(sy_signal_t signal, const char *json)
{
    char err[256] = "";
    size_t len = 0;
    uint8_t *wire = syc_otlp_json_to_wire(desc_of(signal), (const uint8_t *)json, strlen(json),
                                          NULL, &len, err, sizeof err);
    if (!wire) fail_msg("bad test JSON: %s", err);
    sy_batch_t *b = sy__batch_new(signal, "test");
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    memcpy(buf, wire, len);
    free(wire);
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof err), 0);
    return b;
}

/* Appends the string value of attribute `key` of node, or "-". */
static void put_attr(char *out, size_t cap, sy_view_node_t *node, const char *key)
{
    sy_value_t v;
    size_t n = strlen(out);
    if (api->view_attr_get(node, key, strlen(key), &v) == 0 && v.type == SY_VALUE_STRING)
        snprintf(out + n, cap - n, "%.*s", (int)v.len, v.str);
    else
        snprintf(out + n, cap - n, "-");
}

static void put_field(char *out, size_t cap, sy_view_node_t *node, sy_field_t f)
{
    sy_value_t v;
    size_t n = strlen(out);
    assert_int_equal(api->view_get(node, f, &v), 0);
    snprintf(out + n, cap - n, "%.*s", (int)v.len, v.str);
}

/*
 * The batch as text: each resource as its attribute r, then each scope as its
 * name, then (metrics) each metric as its name, then its items by their
 * attribute id: "acme/lib[a1 a2] beta/lib[b1]", "r1/lib/m1[p1 p2]". Checks
 * that the batch's item count is the number of items listed.
 */
static void describe(sy_batch_t *b, char *out, size_t cap)
{
    out[0] = '\0';
    sy_batch_info_t info;
    api->batch_info(b, &info);
    sy_view_t *v = api->view_open(b);
    assert_non_null(v);
    sy_view_node_t *root = api->view_root(v);
    uint64_t items = 0;
    for (size_t i = 0; i < api->view_count(root, SY_VIEW_RESOURCES); i++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, i);
        for (size_t j = 0; j < api->view_count(res, SY_VIEW_SCOPES); j++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, j);
            size_t nm = info.signal == SY_SIGNAL_METRICS ? api->view_count(sc, SY_VIEW_METRICS) : 1;
            for (size_t m = 0; m < nm; m++) {
                if (out[0]) snprintf(out + strlen(out), cap - strlen(out), " ");
                put_attr(out, cap, res, "r");
                snprintf(out + strlen(out), cap - strlen(out), "/");
                put_field(out, cap, sc, SY_FIELD_SCOPE_NAME);
                sy_view_node_t *parent = sc;
                if (info.signal == SY_SIGNAL_METRICS) {
                    parent = api->view_at(sc, SY_VIEW_METRICS, m);
                    snprintf(out + strlen(out), cap - strlen(out), "/");
                    put_field(out, cap, parent, SY_FIELD_METRIC_NAME);
                }
                snprintf(out + strlen(out), cap - strlen(out), "[");
                size_t n = api->view_count(parent, SY_VIEW_ITEMS);
                for (size_t k = 0; k < n; k++) {
                    if (k) snprintf(out + strlen(out), cap - strlen(out), " ");
                    put_attr(out, cap, api->view_at(parent, SY_VIEW_ITEMS, k), "id");
                    items++;
                }
                snprintf(out + strlen(out), cap - strlen(out), "]");
            }
        }
    }
    api->view_close(v);
    assert_int_equal(info.items, items);
}

/* The table from routes given as {context, statement, condition, pipelines...}. */
typedef struct route_spec_s {
    const char *context, *statement, *condition;
    const char *pipelines[4];
} route_spec_t;

static void make_table(rt_table_t *t, const route_spec_t *routes, size_t n,
                       const char *const *defaults, size_t ndefaults, rt_error_mode_t em)
{
    memset(t, 0, sizeof *t);
    t->error_mode = em;
    for (size_t i = 0; i < n; i++) {
        size_t np = 0;
        while (np < 4 && routes[i].pipelines[np])
            np++;
        char err[256] = "";
        int rc = rt_table_add(t, routes[i].context, routes[i].statement, routes[i].condition,
                              routes[i].pipelines, np, err, sizeof err);
        if (rc != 0) fail_msg("route %zu: %d %s", i, rc, err);
    }
    assert_int_equal(rt_table_set_default(t, defaults, ndefaults), 0);
    assert_int_equal(rt_table_finish(t), 0);
}

/* Routes b and checks the outcome: `want[d]` is the description of what
 * destination d gets (NULL: nothing). Releases what was built. */
static void expect_split(const rt_table_t *t, sy_batch_t *b, const char *const *want,
                         rt_result_t *res)
{
    assert_int_equal(rt_route(t, &runner, api, NULL, b, res), 0);
    assert_false(res->whole);
    size_t o = 0;
    for (size_t d = 0; d < t->ndests; d++) {
        if (!want[d]) continue;
        if (o >= res->nouts) fail_msg("destination %zu got nothing, wanted %s", d, want[d]);
        assert_int_equal(res->outs[o].dest, (int)d);
        static char got[1 << 16];
        describe(res->outs[o].batch, got, sizeof got);
        if (strcmp(got, want[d]) != 0)
            fail_msg("destination %zu: got \"%s\", wanted \"%s\"", d, got, want[d]);
        sy_batch_info_t info;
        api->batch_info(res->outs[o].batch, &info);
        assert_int_equal(info.items, res->outs[o].items);
        o++;
    }
    assert_int_equal(o, res->nouts);
    for (size_t i = 0; i < res->nouts; i++)
        api->batch_release(res->outs[i].batch);
}

#define SPAN_KV(id, k, v)                                                                   \
    "{\"name\":\"" id "\",\"attributes\":[{\"key\":\"id\",\"value\":{\"stringValue\":\"" id \
    "\"}},{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}]}"
#define RES(r, tenant)                                                                     \
    "\"resource\":{\"attributes\":[{\"key\":\"r\",\"value\":{\"stringValue\":\"" r "\"}}," \
    "{\"key\":\"tenant\",\"value\":{\"stringValue\":\"" tenant "\"}}]}"

/* Three resources (tenants acme, beta, gamma), the first with two scopes. */
static const char *const three_tenants =
    "{\"resourceSpans\":["
    "{" RES("r1",
            "acme") ",\"scopeSpans\":["
                    "{\"scope\":{\"name\":\"lib\"},\"spans\":[" SPAN_KV("a1", "k", "x") "," SPAN_KV(
                        "a2", "k",
                        "y") "]},"
                             "{\"scope\":{\"name\":\"lib2\"},\"spans\":[" SPAN_KV(
                                 "a3", "k",
                                 "x") "]}]},"
                                      "{" RES("r2",
                                              "beta") ",\"scopeSpans\":[{\"scope\":{"
                                                      "\"name\":\"lib\"},\"spans\":"
                                                      "[" SPAN_KV("b1", "k", "y") "," SPAN_KV(
                                                          "b2", "k",
                                                          "x") "]}]},"
                                                               "{" RES("r3",
                                                                       "gamma") ",\"scopeSpans\""
                                                                                ":[{\"scope\":{"
                                                                                "\"name\":"
                                                                                "\"lib\"},"
                                                                                "\"spans\":"
                                                                                "[" SPAN_KV(
                                                                                    "g1", "k",
                                                                                    "y") "]}]}]}";

static void test_resource_context_split(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {NULL, "route() where attributes[\"tenant\"] == \"acme\"", NULL, {"traces/a"}},
        {NULL, NULL, "attributes[\"tenant\"] == \"beta\"", {"traces/b"}},
    };
    static const char *const def[] = {"traces/d"};
    rt_table_t t;
    make_table(&t, routes, 2, def, 1, RT_EM_PROPAGATE);
    assert_int_equal(t.ndests, 3);
    assert_int_equal(t.default_dest, 2);
    assert_string_equal(t.dests[0].ids[0], "traces/a");
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, three_tenants);
    const char *want[] = {"r1/lib[a1 a2] r1/lib2[a3]", "r2/lib[b1 b2]", "r3/lib[g1]"};
    rt_result_t res;
    expect_split(&t, b, want, &res);
    assert_int_equal(res.items, 6);
    assert_int_equal(res.matched, 5);
    assert_int_equal(res.to_default, 1);
    assert_int_equal(res.dropped, 0);
    /* The source is untouched. */
    char got[512];
    describe(b, got, sizeof got);
    assert_string_equal(got, "r1/lib[a1 a2] r1/lib2[a3] r2/lib[b1 b2] r3/lib[g1]");
    sy__batch_release(b);
    rt_table_free(&t);
}

/* Every resource matches the first route: nothing is copied, and the second
 * route, which matches some of them too, gets nothing (first match only). */
static void test_first_match_only_whole_batch(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {"resource", NULL, "attributes[\"tenant\"] != nil", {"traces/a"}},
        {"resource", NULL, "attributes[\"tenant\"] == \"beta\"", {"traces/b"}},
    };
    static const char *const def[] = {"traces/d"};
    rt_table_t t;
    make_table(&t, routes, 2, def, 1, RT_EM_PROPAGATE);
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, three_tenants);
    rt_result_t res;
    assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.whole_dest, 0);
    assert_int_equal(res.nouts, 0);
    assert_int_equal(res.matched, 6);
    /* Nothing matches: the whole batch to the default, without a copy. */
    sy_batch_t *c = batch_json(
        SY_SIGNAL_TRACES,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" SPAN_KV("z", "k", "x") "]}]}]}");
    assert_int_equal(rt_route(&t, &runner, api, NULL, c, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.whole_dest, t.default_dest);
    assert_int_equal(res.to_default, 1);
    sy__batch_release(b);
    sy__batch_release(c);
    rt_table_free(&t);
}

/* A span route before a resource route: spans it takes leave their resource,
 * which the resource route then takes with what is left; items of one resource
 * and scope stay together in each output. */
static void test_span_context_then_resource(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {"span", NULL, "attributes[\"k\"] == \"x\"", {"traces/x"}},
        {NULL, NULL, "attributes[\"tenant\"] == \"acme\"", {"traces/acme"}},
        /* Inferred from the context-named path: the span context. */
        {NULL, NULL, "span.name == \"g1\"", {"traces/g"}},
    };
    static const char *const def[] = {"traces/d"};
    rt_table_t t;
    make_table(&t, routes, 3, def, 1, RT_EM_PROPAGATE);
    assert_int_equal(t.routes[2].ctx, SYC_OTTL_CTX_SPAN);
    assert_int_equal(t.routes[1].ctx, SYC_OTTL_CTX_RESOURCE);
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, three_tenants);
    const char *want[] = {"r1/lib[a1] r1/lib2[a3] r2/lib[b2]", "r1/lib[a2]", "r3/lib[g1]",
                          "r2/lib[b1]"};
    rt_result_t res;
    expect_split(&t, b, want, &res);
    assert_int_equal(res.matched, 5);
    assert_int_equal(res.to_default, 1);
    sy__batch_release(b);
    rt_table_free(&t);
}

/* Without default_pipelines what no route takes is dropped and counted; routes
 * with the same pipelines share one destination (one batch). */
static void test_no_default_drops_and_shared_dest(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {NULL, NULL, "attributes[\"tenant\"] == \"acme\"", {"traces/a", "traces/b"}},
        {NULL, NULL, "attributes[\"tenant\"] == \"gamma\"", {"traces/b", "traces/a", "traces/a"}},
    };
    rt_table_t t;
    make_table(&t, routes, 2, NULL, 0, RT_EM_PROPAGATE);
    assert_int_equal(t.ndests, 1);
    assert_int_equal(t.routes[1].npipelines, 2); /* the repeated id counted once */
    assert_int_equal(t.default_dest, RT_DROP);
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, three_tenants);
    rt_result_t res;
    assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), 0);
    assert_false(res.whole);
    assert_int_equal(res.nouts, 1);
    assert_int_equal(res.dropped, 2);
    assert_int_equal(res.matched, 4);
    char got[512];
    describe(res.outs[0].batch, got, sizeof got);
    assert_string_equal(got, "r1/lib[a1 a2] r1/lib2[a3] r3/lib[g1]");
    api->batch_release(res.outs[0].batch);
    /* All dropped: whole, to nowhere. */
    sy_batch_t *c = batch_json(
        SY_SIGNAL_TRACES,
        "{\"resourceSpans\":[{" RES("r9", "zeta") ",\"scopeSpans\":[{"
                                                  "\"spans\":[" SPAN_KV("z1", "k", "x") "]}]}]}");
    assert_int_equal(rt_route(&t, &runner, api, NULL, c, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.whole_dest, RT_DROP);
    assert_int_equal(res.dropped, 1);
    sy__batch_release(b);
    sy__batch_release(c);
    rt_table_free(&t);
}

#define LOG(id, sev)                                                                \
    "{\"severityNumber\":" sev ",\"body\":{\"stringValue\":\"m\"},\"attributes\":[" \
    "{\"key\":\"id\",\"value\":{\"stringValue\":\"" id "\"}}]}"

static void test_log_context_severity(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {"log", NULL, "severity_number >= SEVERITY_NUMBER_ERROR", {"logs/errors"}},
        {"resource", "route()", NULL, {"logs/rest"}},
    };
    rt_table_t t;
    make_table(&t, routes, 2, NULL, 0, RT_EM_PROPAGATE);
    assert_null(t.routes[1].prog); /* a bare route() always matches */
    sy_batch_t *b = batch_json(
        SY_SIGNAL_LOGS,
        "{\"resourceLogs\":[{" RES(
            "r1", "acme") ",\"scopeLogs\":[{\"scope\":{\"name\":\"l\"},"
                          "\"logRecords\":[" LOG("l1", "9") "," LOG("l2", "17") "," LOG(
                              "l3",
                              "21") "]}]},"
                                    "{" RES("r2",
                                            "beta") ",\"scopeLogs\":[{\"scope\":{\"name\":\"l\"},"
                                                    "\"logRecords\":[" LOG("l4", "18") "]}]}]}");
    const char *want[] = {"r1/l[l2 l3] r2/l[l4]", "r1/l[l1]"};
    rt_result_t res;
    expect_split(&t, b, want, &res);
    assert_int_equal(res.matched, 4);
    assert_int_equal(res.dropped, 0);
    sy__batch_release(b);
    rt_table_free(&t);
}

#define POINT(id) \
    "{\"asInt\":\"1\",\"attributes\":[{\"key\":\"id\",\"value\":{\"stringValue\":\"" id "\"}}]}"

static void test_metric_and_datapoint_contexts(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {"datapoint", NULL, "attributes[\"id\"] == \"p4\"", {"metrics/p"}},
        {"metric", NULL, "name == \"m2\"", {"metrics/m"}},
    };
    static const char *const def[] = {"metrics/d"};
    rt_table_t t;
    make_table(&t, routes, 2, def, 1, RT_EM_PROPAGATE);
    sy_batch_t *b = batch_json(
        SY_SIGNAL_METRICS,
        "{\"resourceMetrics\":[{" RES(
            "r1",
            "acme") ",\"scopeMetrics\":[{\"scope\":{\"name\":"
                    "\"s\"},\"metrics\":["
                    "{\"name\":\"m1\",\"gauge\":{\"dataPoints\":[" POINT("p1") "," POINT(
                        "p2") "]}},"
                              "{\"name\":\"m2\",\"sum\":{\"dataPoints\":[" POINT("p3") "," POINT(
                                  "p4") "],"
                                        "\"aggregationTemporality\":2}}]}]}]}");
    const char *want[] = {"r1/s/m2[p4]", "r1/s/m2[p3]", "r1/s/m1[p1 p2]"};
    rt_result_t res;
    expect_split(&t, b, want, &res);
    assert_int_equal(res.matched, 2);
    assert_int_equal(res.to_default, 2);
    sy__batch_release(b);
    rt_table_free(&t);
}

/* 10 / attributes["zero"] fails at run time (a division by zero). */
static void test_error_modes(void **state)
{
    (void)state;
    const char *json =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"r\",\"value\":{"
        "\"stringValue\":\"r1\"}},{\"key\":\"zero\",\"value\":{\"intValue\":\"0\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":[" SPAN_KV(
            "e1", "k", "x") "]}]},"
                            "{" RES("r2", "beta") ",\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},"
                                                  "\"spans\":[" SPAN_KV("b1", "k", "y") "]}]}]}";
    static const route_spec_t routes[] = {
        {NULL, NULL, "attributes[\"zero\"] != nil and 10 / attributes[\"zero\"] > 1", {"traces/a"}},
        {NULL, NULL, "attributes[\"r\"] != nil", {"traces/b"}},
    };
    static const char *const def[] = {"traces/d"};
    for (int em = RT_EM_PROPAGATE; em <= RT_EM_SILENT; em++) {
        rt_table_t t;
        make_table(&t, routes, 2, def, 1, (rt_error_mode_t)em);
        sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, json);
        rt_result_t res;
        if (em == RT_EM_PROPAGATE) {
            assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), SY_EINVAL);
            assert_int_equal(res.errors, 1);
            assert_int_equal(res.error_route, 0);
            assert_int_equal(res.first_error, SY_EINVAL);
        } else {
            /* The failing resource goes to the default, not on to route 1. */
            const char *want[] = {NULL, "r2/lib[b1]", "r1/lib[e1]"};
            expect_split(&t, b, want, &res);
            assert_int_equal(res.errors, 1);
            assert_int_equal(res.to_default, 1);
            assert_int_equal(res.matched, 1);
        }
        sy__batch_release(b);
        rt_table_free(&t);
    }
}

static void expect_add_error(const char *context, const char *statement, const char *condition,
                             size_t npipelines, const char *want)
{
    static const char *const p[] = {"traces/a"};
    rt_table_t t = {0};
    char err[256] = "";
    assert_int_equal(
        rt_table_add(&t, context, statement, condition, p, npipelines, err, sizeof err), SY_EINVAL);
    if (!strstr(err, want)) fail_msg("expected \"%s\" in \"%s\"", want, err);
    assert_int_equal(t.nroutes, 0);
    rt_table_free(&t);
}

static void test_table_errors(void **state)
{
    (void)state;
    expect_add_error(NULL, "route()", "true", 1, "both condition and statement provided");
    expect_add_error(NULL, NULL, NULL, 1, "no condition or statement provided");
    expect_add_error(NULL, NULL, "true", 0, "no pipelines defined");
    expect_add_error(NULL, "drop() where true", NULL, 1,
                     "col 1: a routing statement must be route() [where <condition>]");
    expect_add_error(NULL, "route(1)", NULL, 1, "col 7: route() takes no arguments");
    expect_add_error(NULL, "route() if x", NULL, 1, "col 9: expected 'where' or the end");
    expect_add_error(NULL, "route() where ", NULL, 1, "expected a condition after 'where'");
    expect_add_error("scope", NULL, "true", 1, "invalid context: scope");
    expect_add_error("request", NULL, "request[\"X\"] == \"a\"", 1,
                     "the request context is not supported");
    /* The column of an OTTL error counts from the start of the statement. */
    expect_add_error("span", "route() where name == ", NULL, 1, "col 23:");
    expect_add_error(NULL, "  route() where name == 1", NULL, 1,
                     "col 17: unknown path 'name' in the resource context");
    expect_add_error("span", NULL, "nosuchpath == 1", 1, "unknown path 'nosuchpath'");
    expect_add_error("resource", NULL, "name == \"x\"", 1, "in the resource context");
}

/* A route with the context and statement of an earlier one is ignored (1),
 * whichever of statement and condition wrote it; another context is another
 * route. */
static void test_duplicates(void **state)
{
    (void)state;
    static const char *const a[] = {"traces/a"}, *const b[] = {"traces/b"};
    rt_table_t t = {0};
    char err[256] = "";
    assert_int_equal(rt_table_add(&t, NULL, NULL, "attributes[\"x\"] == 1", a, 1, err, sizeof err),
                     0);
    assert_int_equal(rt_table_add(&t, "resource", "route() where attributes[\"x\"] == 1 ", NULL, b,
                                  1, err, sizeof err),
                     1);
    assert_int_equal(
        rt_table_add(&t, "span", NULL, "attributes[\"x\"] == 1", b, 1, err, sizeof err), 0);
    assert_int_equal(t.nroutes, 2);
    assert_string_equal(t.routes[0].text, "route() where attributes[\"x\"] == 1");
    rt_table_free(&t);
}

/* An empty request, and a request whose resources hold no item. */
static void test_empty(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {{NULL, NULL, "true", {"logs/a"}}};
    static const char *const def[] = {"logs/d"};
    rt_table_t t;
    make_table(&t, routes, 1, def, 1, RT_EM_PROPAGATE);
    rt_result_t res;
    sy_batch_t *b = batch_json(SY_SIGNAL_LOGS, "{}");
    assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.whole_dest, t.default_dest);
    assert_int_equal(res.items, 0);
    sy__batch_release(b);
    b = batch_json(SY_SIGNAL_LOGS, "{\"resourceLogs\":[{" RES("r1", "a") "}]}");
    assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.items, 0);
    sy__batch_release(b);
    rt_table_free(&t);
}

/* A route whose pipelines are the default's: one destination, so the batch goes
 * whole, and the counts still tell what a route took from what it did not. */
static void test_route_to_default_set(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {NULL, NULL, "attributes[\"tenant\"] == \"acme\"", {"traces/d"}}};
    static const char *const def[] = {"traces/d"};
    rt_table_t t;
    make_table(&t, routes, 1, def, 1, RT_EM_PROPAGATE);
    assert_int_equal(t.ndests, 1);
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, three_tenants);
    rt_result_t res;
    assert_int_equal(rt_route(&t, &runner, api, NULL, b, &res), 0);
    assert_true(res.whole);
    assert_int_equal(res.whole_dest, 0);
    assert_int_equal(res.items, 6);
    assert_int_equal(res.matched, 3);
    assert_int_equal(res.to_default, 3);
    sy__batch_release(b);
    rt_table_free(&t);
}

/* Many resources, routed alternately: every item lands once, in order. */
static void test_many_items(void **state)
{
    (void)state;
    static const route_spec_t routes[] = {
        {NULL, NULL, "attributes[\"tenant\"] == \"even\"", {"traces/even"}}};
    static const char *const def[] = {"traces/odd"};
    rt_table_t t;
    make_table(&t, routes, 1, def, 1, RT_EM_PROPAGATE);
    size_t cap = 1 << 20, n = 0;
    char *json = malloc(cap);
    char *want[2];
    want[0] = calloc(1, cap / 4);
    want[1] = calloc(1, cap / 4);
    n += (size_t)snprintf(json + n, cap - n, "{\"resourceSpans\":[");
    for (int i = 0; i < 300; i++) {
        const char *tenant = i % 2 ? "odd" : "even";
        n += (size_t)snprintf(json + n, cap - n,
                              "%s{\"resource\":{\"attributes\":[{\"key\":\"r\",\"value\":{"
                              "\"stringValue\":\"r%d\"}},{\"key\":\"tenant\",\"value\":{"
                              "\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
                              "\"s\"},\"spans\":[",
                              i ? "," : "", i, tenant);
        char *w = want[i % 2];
        snprintf(w + strlen(w), cap / 4 - strlen(w), "%sr%d/s[", w[0] ? " " : "", i);
        for (int k = 0; k < 3; k++) {
            n += (size_t)snprintf(json + n, cap - n,
                                  "%s{\"name\":\"x\",\"attributes\":[{\"key\":\"id\",\"value\":{"
                                  "\"stringValue\":\"s%d_%d\"}}]}",
                                  k ? "," : "", i, k);
            snprintf(w + strlen(w), cap / 4 - strlen(w), "%ss%d_%d", k ? " " : "", i, k);
        }
        n += (size_t)snprintf(json + n, cap - n, "]}]}");
        snprintf(w + strlen(w), cap / 4 - strlen(w), "]");
    }
    snprintf(json + n, cap - n, "]}");
    sy_batch_t *b = batch_json(SY_SIGNAL_TRACES, json);
    const char *w[] = {want[0], want[1]};
    rt_result_t res;
    expect_split(&t, b, w, &res);
    assert_int_equal(res.items, 900);
    assert_int_equal(res.matched, 450);
    assert_int_equal(res.to_default, 450);
    sy__batch_release(b);
    free(json);
    free(want[0]);
    free(want[1]);
    rt_table_free(&t);
}

static int setup(void **state)
{
    (void)state;
    api = sy__host_api();
    return rt_runner_init(&runner);
}

static int teardown(void **state)
{
    (void)state;
    rt_runner_free(&runner);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_context_split),
        cmocka_unit_test(test_first_match_only_whole_batch),
        cmocka_unit_test(test_span_context_then_resource),
        cmocka_unit_test(test_no_default_drops_and_shared_dest),
        cmocka_unit_test(test_log_context_severity),
        cmocka_unit_test(test_metric_and_datapoint_contexts),
        cmocka_unit_test(test_error_modes),
        cmocka_unit_test(test_table_errors),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_route_to_default_set),
        cmocka_unit_test(test_many_items),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
