/*
 * test_attr_actions.c - the attribute action engine (plugins/common/attr_actions.c)
 * on a real batch through the host's view: chained actions see each other's
 * results, a no-op apply records no edit, conversions and digests are the
 * collector's, and parse errors carry file:line:col.
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

#include "attr_actions.h"
#include "batch.h"
#include "config.h"
#include "diag.h"
#include "engine.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;

static const sy_host_api_t *api;

/* A batch of one span with attributes s="abc", i=7, d=0.1, b=true. */
static sy_batch_t *make_batch(void)
{
    AnyValue v[4];
    KeyValue kv[4];
    KeyValue *kvs[4];
    const char *keys[] = {"s", "i", "d", "b"};
    for (int k = 0; k < 4; k++) {
        opentelemetry__proto__common__v1__any_value__init(&v[k]);
        opentelemetry__proto__common__v1__key_value__init(&kv[k]);
        kv[k].key = (char *)keys[k];
        kv[k].value = &v[k];
        kvs[k] = &kv[k];
    }
    v[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v[0].string_value = "abc";
    v[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v[1].int_value = 7;
    v[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v[2].double_value = 0.1;
    v[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v[3].bool_value = 1;
    Opentelemetry__Proto__Trace__V1__Span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    uint8_t tid[16] = {1}, sid[8] = {1};
    span.trace_id = (ProtobufCBinaryData){16, tid};
    span.span_id = (ProtobufCBinaryData){8, sid};
    span.name = "op";
    span.n_attributes = 4;
    span.attributes = kvs;
    Opentelemetry__Proto__Trace__V1__Span *spans[] = {&span};
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 1;
    ss.spans = spans;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = sss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = rss;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    uint8_t *buf = sy__batch_alloc(b, len);
    protobuf_c_message_pack(&req.base, buf);
    char err[256];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

static syc_attr_actions_t *parse(const char *yaml, sy_cfg_node_t **root, char *err, size_t n)
{
    sy__diag_t d;
    sy__diag_init(&d);
    *root = sy__cfg_parse_string("t.yaml", yaml, strlen(yaml), &d);
    assert_non_null(*root);
    sy__diag_free(&d);
    return syc_attr_actions_parse(api, *root, "actions", err, n);
}

static sy_view_node_t *span_of(sy_view_t *v)
{
    sy_view_node_t *r = api->view_at(api->view_root(v), SY_VIEW_RESOURCES, 0);
    return api->view_at(api->view_at(r, SY_VIEW_SCOPES, 0), SY_VIEW_ITEMS, 0);
}

static void assert_str_attr(sy_view_node_t *n, const char *key, const char *want)
{
    sy_value_t v;
    assert_int_equal(api->view_attr_get(n, key, strlen(key), &v), 0);
    assert_int_equal(v.type, SY_VALUE_STRING);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.str, want, v.len);
}

static void test_chain_and_convert(void **st)
{
    (void)st;
    char err[512];
    sy_cfg_node_t *root;
    syc_attr_actions_t *a = parse("- {key: n, value: 12, action: insert}\n"
                                  "- {key: n, action: convert, converted_type: string}\n"
                                  "- {key: c, from_attribute: n, action: upsert}\n"
                                  "- {key: d, action: convert, converted_type: string}\n"
                                  "- {key: i, action: hash}\n"
                                  "- {key: s, action: extract, pattern: '(?P<z>b)(?P<y>c)'}\n"
                                  "- {key: b, action: convert, converted_type: int}\n",
                                  &root, err, sizeof(err));
    assert_non_null(a);
    sy_batch_t *b = make_batch();
    sy_view_t *v = api->view_open(b);
    assert_true(syc_attr_actions_apply(a, api, span_of(v)) > 0);
    assert_int_equal(api->view_commit(v), 0);
    sy_view_node_t *s = span_of(v);
    assert_str_attr(s, "n", "12");
    assert_str_attr(s, "c", "12"); /* sees the converted value */
    assert_str_attr(s, "d", "0.1");
    /* sha256 of 07 00 00 00 00 00 00 00 */
    assert_str_attr(s, "i", "aae89fc0f03e2959ae4d701a80cc3915918c950b159f6abb6c92c1433b1a8534");
    assert_str_attr(s, "z", "b");
    assert_str_attr(s, "y", "c");
    sy_value_t bv;
    assert_int_equal(api->view_attr_get(s, "b", 1, &bv), 0);
    assert_int_equal(bv.type, SY_VALUE_INT);
    assert_int_equal(bv.i, 1);
    /* Group order, not name order: z before y. */
    sy_value_t k, x;
    size_t nattr = api->view_attr_count(s);
    assert_int_equal(api->view_attr_at(s, nattr - 2, &k, &x), 0);
    assert_memory_equal(k.str, "z", 1);
    api->view_close(v);
    sy__batch_release(b);
    syc_attr_actions_free(a);
    sy__cfg_free(root);
}

static void test_noop_records_nothing(void **st)
{
    (void)st;
    char err[512];
    sy_cfg_node_t *root;
    syc_attr_actions_t *a = parse("- {key: absent, value: 1, action: update}\n"
                                  "- {key: s, value: x, action: insert}\n"
                                  "- {pattern: '^zz', action: delete}\n"
                                  "- {key: s, action: convert, converted_type: int}\n",
                                  &root, err, sizeof(err));
    assert_non_null(a);
    sy_batch_t *b = make_batch();
    sy_view_t *v = api->view_open(b);
    assert_int_equal(syc_attr_actions_apply(a, api, span_of(v)), 0);
    api->view_close(v);
    sy__batch_release(b);
    syc_attr_actions_free(a);
    sy__cfg_free(root);
}

static void test_parse_errors(void **st)
{
    (void)st;
    char err[512];
    sy_cfg_node_t *root;
    assert_null(parse("- {value: 1, action: insert}\n", &root, err, sizeof(err)));
    assert_non_null(strstr(err, "t.yaml:1:"));
    assert_non_null(strstr(err, "missing required field (\"key\" or \"pattern\") at the 0-th"));
    sy__cfg_free(root);
    assert_null(parse("- {key: a, action: hash, value: 1}\n", &root, err, sizeof(err)));
    assert_non_null(strstr(err, "does not use \"value\""));
    sy__cfg_free(root);
    assert_null(parse("[]\n", &root, err, sizeof(err)));
    assert_non_null(strstr(err, "missing required field \"actions\""));
    sy__cfg_free(root);
}

static void test_yaml_values(void **st)
{
    (void)st;
    sy_value_t v;
    syc_attr_value_from_yaml("42", &v);
    assert_int_equal(v.type, SY_VALUE_INT);
    syc_attr_value_from_yaml("-1.5e3", &v);
    assert_int_equal(v.type, SY_VALUE_DOUBLE);
    assert_true(v.d == -1500.0);
    syc_attr_value_from_yaml("true", &v);
    assert_int_equal(v.type, SY_VALUE_BOOL);
    syc_attr_value_from_yaml("1.2.3", &v);
    assert_int_equal(v.type, SY_VALUE_STRING);
    syc_attr_value_from_yaml("99999999999999999999", &v);
    assert_int_equal(v.type, SY_VALUE_DOUBLE);
}

/* Value.AsString() as the collector writes it. */
static void test_as_string(void **st)
{
    (void)st;
    static const struct {
        sy_value_t v;
        const char *want;
    } cases[] = {
        {{.type = SY_VALUE_INT, .i = -42}, "-42"},
        {{.type = SY_VALUE_INT, .i = INT64_MIN}, "-9223372036854775808"},
        {{.type = SY_VALUE_DOUBLE, .d = 12345.0}, "12345"},
        {{.type = SY_VALUE_DOUBLE, .d = 1.5}, "1.5"},
        {{.type = SY_VALUE_DOUBLE, .d = 0.000001}, "0.000001"},
        {{.type = SY_VALUE_DOUBLE, .d = 1e-7}, "1e-7"},
        {{.type = SY_VALUE_DOUBLE, .d = 1e21}, "1e+21"},
        {{.type = SY_VALUE_DOUBLE, .d = -0.1}, "-0.1"},
        {{.type = SY_VALUE_BOOL, .b = true}, "true"},
        {{.type = SY_VALUE_BOOL, .b = false}, "false"},
        {{.type = SY_VALUE_BYTES, .bytes = (const uint8_t *)"12345", .len = 5}, "MTIzNDU="},
        {{.type = SY_VALUE_BYTES, .bytes = (const uint8_t *)"ab", .len = 2}, "YWI="},
        {{.type = SY_VALUE_STRING, .str = "s", .len = 1}, "s"},
        {{.type = SY_VALUE_EMPTY}, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        const char *out;
        size_t len;
        assert_true(syc_value_as_string_cap(&cases[i].v) <= sizeof buf);
        assert_int_equal(syc_value_as_string(&cases[i].v, buf, sizeof buf, &out, &len), 0);
        if (len != strlen(cases[i].want) || memcmp(out, cases[i].want, len) != 0)
            fail_msg("case %zu: got %.*s, want %s", i, (int)len, out, cases[i].want);
    }
    char buf[64];
    const char *out;
    size_t len;
    sy_value_t nan = {.type = SY_VALUE_DOUBLE, .d = NAN};
    assert_int_equal(syc_value_as_string(&nan, buf, sizeof buf, &out, &len), 0);
    assert_memory_equal(out, "NaN", 3);
    sy_value_t map = {.type = SY_VALUE_MAP};
    assert_int_equal(syc_value_as_string(&map, buf, sizeof buf, &out, &len), SY_EINVAL);
    sy_value_t big = {.type = SY_VALUE_INT, .i = INT64_MIN};
    assert_int_equal(syc_value_as_string(&big, buf, 4, &out, &len), SY_ENOMEM);
}

/* Containers a plugin encodes become values through value_container (ABI 1.2),
 * read back with view_value_next; content that does not parse is refused. */
static void test_value_container(void **st)
{
    (void)st;
    syc_buf_t inner = {0}, outer = {0};
    sy_value_t s1 = {.type = SY_VALUE_STRING, .str = "x", .len = 1};
    sy_value_t i7 = {.type = SY_VALUE_INT, .i = 7};
    assert_int_equal(syc_anyvalue_put_entry(&inner, NULL, &s1, NULL, 0), 0);
    assert_int_equal(syc_anyvalue_put_entry(&inner, NULL, &i7, NULL, 0), 0);
    sy_value_t arr = {.type = SY_VALUE_ARRAY};
    sy_value_t k = {.type = SY_VALUE_STRING, .str = "list", .len = 4};
    assert_int_equal(syc_anyvalue_put_entry(&outer, &k, &arr, inner.p, inner.len), 0);
    sy_value_t m;
    assert_int_equal(api->value_container(SY_VALUE_MAP, (const uint8_t *)outer.p, outer.len, &m),
                     0);
    assert_int_equal(m.type, SY_VALUE_MAP);
    assert_int_equal(m.len, 1);
    sy_value_iter_t it = {.value = &m};
    sy_value_t key, val;
    assert_int_equal(api->view_value_next(&it, &key, &val), 1);
    assert_int_equal(key.len, 4);
    assert_memory_equal(key.str, "list", 4);
    assert_int_equal(val.type, SY_VALUE_ARRAY);
    assert_int_equal(val.len, 2);
    sy_value_t list = val, el;
    sy_value_iter_t it2 = {.value = &list};
    assert_int_equal(api->view_value_next(&it2, NULL, &el), 1);
    assert_int_equal(el.type, SY_VALUE_STRING);
    assert_int_equal(api->view_value_next(&it2, NULL, &el), 1);
    assert_int_equal(el.i, 7);
    assert_int_equal(api->view_value_next(&it2, NULL, &el), 0);
    assert_int_equal(api->view_value_next(&it, &key, &val), 0);
    /* A truncated entry, and a type that is not a container. */
    assert_int_equal(
        api->value_container(SY_VALUE_MAP, (const uint8_t *)outer.p, outer.len - 1, &m), SY_EINVAL);
    assert_int_equal(api->value_container(SY_VALUE_STRING, (const uint8_t *)"", 0, &m), SY_EINVAL);
    assert_int_equal(api->value_container(SY_VALUE_ARRAY, NULL, 0, &m), 0);
    assert_int_equal(m.len, 0);
    free(inner.p);
    free(outer.p);
}

/* cfg_quoted: a quoted scalar is a string, a plain one typed by its look. */
static void test_cfg_quoted(void **st)
{
    (void)st;
    const char *yaml = "a: \"123\"\nb: 123\nc: '1.5'\nd: !!str true\ne: [x]\n";
    sy__diag_t d;
    sy__diag_init(&d);
    sy_cfg_node_t *root = sy__cfg_parse_string("q.yaml", yaml, strlen(yaml), &d);
    assert_non_null(root);
    assert_true(api->cfg_quoted(api->cfg_get(root, "a")));
    assert_false(api->cfg_quoted(api->cfg_get(root, "b")));
    assert_true(api->cfg_quoted(api->cfg_get(root, "c")));
    assert_true(api->cfg_quoted(api->cfg_get(root, "d")));
    assert_false(api->cfg_quoted(api->cfg_get(root, "e")));
    assert_false(api->cfg_quoted(NULL));
    sy__cfg_free(root);
    sy__diag_free(&d);
}

int main(void)
{
    api = sy__host_api();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_and_convert), cmocka_unit_test(test_noop_records_nothing),
        cmocka_unit_test(test_parse_errors),      cmocka_unit_test(test_yaml_values),
        cmocka_unit_test(test_as_string),         cmocka_unit_test(test_value_container),
        cmocka_unit_test(test_cfg_quoted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
