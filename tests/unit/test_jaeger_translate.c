/*
 * test_jaeger_translate.c - the jaeger receiver's Thrift reader and its
 * translation to OTLP, on the rules the integration test's real senders cannot
 * reach: the corners of the compact and binary encodings, and the collector's
 * translator rules one by one (parents from references, the status from
 * error / otel.status_code / http.status_code, unknown tag types, blank spans,
 * duplicate keys past the map's hash threshold, invalid UTF-8, the resource's
 * renames). The structs are built by hand; nothing here encodes Jaeger.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "jaeger_model.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;

#define VC(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

static sy__arena_t arena;

static int setup(void **state)
{
    (void)state;
    sy__arena_init(&arena, (size_t)64 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy__arena_release(&arena);
    return 0;
}

/* ---- the reader ------------------------------------------------------------ */

static void test_compact_scalars(void **state)
{
    (void)state;
    /* struct { 1: i64 -3 (delta 1), 2: bool true (in the header), 20: double 1.5
     * (long form: type byte, zigzag id), 21: list<i32> of 16 (long size) } */
    uint8_t in[64];
    size_t n = 0;
    in[n++] = 0x16; /* delta 1, i64 */
    in[n++] = 0x05; /* zigzag(-3) */
    in[n++] = 0x21; /* delta 2, bool true */
    in[n++] = 0x07; /* delta 0, double */
    in[n++] = 0x28; /* zigzag(20) */
    double d = 1.5;
    memcpy(in + n, &d, 8); /* little-endian on the hosts we run */
    n += 8;
    in[n++] = 0x19; /* delta 1 -> 21, list */
    in[n++] = 0xf5; /* size 15 = long form, i32 */
    in[n++] = 16;
    for (int i = 0; i < 16; i++)
        in[n++] = (uint8_t)(i * 2);
    in[n++] = 0x00;
    th_reader_t r;
    th_init(&r, TH_PROTO_COMPACT, in, n);
    th_type_t t;
    int16_t id;
    int64_t v;
    bool b;
    double dv;
    uint32_t count;
    assert_int_equal(th_struct_begin(&r), 0);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_true(t == TH_I64 && id == 1);
    assert_int_equal(th_read_i64(&r, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_true(t == TH_BOOL && id == 3);
    assert_int_equal(th_read_bool(&r, &b), 0);
    assert_true(b);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_true(t == TH_DOUBLE && id == 20);
    assert_int_equal(th_read_double(&r, &dv), 0);
    assert_true(dv == 1.5);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_true(t == TH_LIST && id == 21);
    assert_int_equal(th_list_begin(&r, &t, &count), 0);
    assert_true(t == TH_I32 && count == 16);
    for (int i = 0; i < 16; i++) {
        int32_t x;
        assert_int_equal(th_read_i32(&r, &x), 0);
        assert_int_equal(x, i);
    }
    assert_int_equal(th_container_end(&r), 0);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_int_equal(t, TH_STOP);
    assert_null(r.err);
}

static void test_binary_scalars_and_skip(void **state)
{
    (void)state;
    /* struct { 1: i64 -2, 2: map<string,i32>{"a":1}, 3: set<bool>{1,0}, 4: string "hi" } */
    static const uint8_t in[] = {
        10, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,                        /* i64 */
        13, 0, 2, 11,   8,    0,    0,    0,    1,    0,    0,    0, 1, 'a', 0, 0, 0, 1, /* map */
        14, 0, 3, 2,    0,    0,    0,    2,    1,    0,                                 /* set */
        11, 0, 4, 0,    0,    0,    2,    'h',  'i', /* string */
        0};
    th_reader_t r;
    th_init(&r, TH_PROTO_BINARY, in, sizeof(in));
    th_type_t t;
    int16_t id;
    int64_t v;
    assert_int_equal(th_struct_begin(&r), 0);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_int_equal(th_read_i64(&r, &v), 0);
    assert_int_equal(v, -2);
    for (int i = 0; i < 2; i++) { /* the map and the set are skipped */
        assert_int_equal(th_field_begin(&r, &t, &id), 0);
        assert_int_equal(th_skip(&r, t), 0);
    }
    const uint8_t *p;
    uint32_t len;
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_int_equal(th_read_binary(&r, &p, &len), 0);
    assert_true(len == 2 && memcmp(p, "hi", 2) == 0);
    assert_int_equal(th_field_begin(&r, &t, &id), 0);
    assert_int_equal(t, TH_STOP);
}

static void expect_error(th_proto_t proto, const uint8_t *in, size_t n, const char *why)
{
    th_reader_t r;
    th_init(&r, proto, in, n);
    assert_int_equal(th_skip(&r, TH_STRUCT), -1);
    assert_non_null(r.err);
    if (!strstr(r.err, why)) fail_msg("error \"%s\", expected \"%s\"", r.err, why);
    /* every later read fails too */
    int64_t v;
    assert_int_equal(th_read_i64(&r, &v), -1);
}

static void test_reader_errors(void **state)
{
    (void)state;
    static const uint8_t neg_len[] = {11, 0, 1, 0xff, 0xff, 0xff, 0xff, 0};
    expect_error(TH_PROTO_BINARY, neg_len, sizeof(neg_len), "negative size");
    static const uint8_t long_len[] = {11, 0, 1, 0, 0, 0, 9, 'a', 0};
    expect_error(TH_PROTO_BINARY, long_len, sizeof(long_len), "larger than the data left");
    static const uint8_t big_list[] = {15, 0, 1, 8, 0, 0, 1, 0, 0};
    expect_error(TH_PROTO_BINARY, big_list, sizeof(big_list), "larger than the data left");
    static const uint8_t bad_type[] = {99, 0, 1, 0};
    expect_error(TH_PROTO_BINARY, bad_type, sizeof(bad_type), "unknown field type");
    static const uint8_t cut[] = {10, 0, 1, 0, 0};
    expect_error(TH_PROTO_BINARY, cut, sizeof(cut), "truncated");
    static const uint8_t overlong[] = {0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0};
    expect_error(TH_PROTO_COMPACT, overlong, sizeof(overlong), "malformed varint");
    static const uint8_t bad_ctype[] = {0x1d, 0};
    expect_error(TH_PROTO_COMPACT, bad_ctype, sizeof(bad_ctype), "unknown field type");
    /* a struct in a struct ... 20 deep */
    uint8_t deep[64];
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        deep[n++] = 0x1c; /* delta 1, struct */
    for (int i = 0; i < 21; i++)
        deep[n++] = 0;
    expect_error(TH_PROTO_COMPACT, deep, n, "nested too deep");
}

/* ---- the translation ---------------------------------------------------------- */

static jg_str_t S(const char *s)
{
    return (jg_str_t){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static jg_tag_t tstr(const char *k, const char *v)
{
    return (jg_tag_t){.key = S(k), .vtype = JG_TAG_STRING, .vstr = S(v)};
}

static jg_tag_t tlong(const char *k, int64_t v)
{
    return (jg_tag_t){.key = S(k), .vtype = JG_TAG_LONG, .vlong = v};
}

static jg_tag_t tbool(const char *k, bool v)
{
    return (jg_tag_t){.key = S(k), .vtype = JG_TAG_BOOL, .vbool = v};
}

#define TAGS(...)                                                           \
    ((jg_tags_t){.v = (jg_tag_t[]){__VA_ARGS__},                            \
                 .n = sizeof((jg_tag_t[]){__VA_ARGS__}) / sizeof(jg_tag_t), \
                 .present = true})

static jg_span_t base_span(int64_t id)
{
    return (jg_span_t){.trace_id_low = 7,
                       .trace_id_high = 0,
                       .span_id = id,
                       .operation_name = S("op"),
                       .start_time = 10,
                       .duration = 5};
}

static req_t *translate(jg_span_t *spans, uint32_t n, size_t *count)
{
    jg_batch_t b = {.service_name = S("svc"), .spans = spans, .n_spans = n};
    req_t *req = jg_to_otlp(&b, &arena.pb, count);
    assert_non_null(req);
    return req;
}

static span_t *only_span(req_t *req)
{
    assert_int_equal(req->n_resource_spans, 1);
    assert_int_equal(req->resource_spans[0]->n_scope_spans, 1);
    assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, 1);
    return req->resource_spans[0]->scope_spans[0]->spans[0];
}

static const kv_t *attr(kv_t **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0) return kv[i];
    return NULL;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void test_parent_from_references(void **state)
{
    (void)state;
    jg_span_t s = base_span(1);
    jg_ref_t refs[] = {
        {JG_REF_FOLLOWS_FROM, 99, 0, 0x10}, /* another trace: never the parent */
        {JG_REF_FOLLOWS_FROM, 7, 0, 0x11},  /* same trace: the parent if no CHILD_OF */
        {JG_REF_CHILD_OF, 7, 0, 0x12},      /* same trace, CHILD_OF: the parent */
    };
    s.refs = refs;
    s.n_refs = 3;
    s.refs_present = true;
    size_t count;
    span_t *sp = only_span(translate(&s, 1, &count));
    assert_int_equal(sp->parent_span_id.len, 8);
    assert_int_equal(be64(sp->parent_span_id.data), 0x12);
    assert_int_equal(sp->n_links, 2);
    assert_int_equal(be64(sp->links[0]->span_id.data), 0x10);
    assert_int_equal(be64(sp->links[0]->trace_id.data + 8), 99);
    assert_string_equal(sp->links[0]->attributes[0]->value->string_value, "follows_from");
    assert_int_equal(be64(sp->links[1]->span_id.data), 0x11);

    /* no CHILD_OF: the first FOLLOWS_FROM of the trace, and it stays a link */
    s.n_refs = 2;
    sp = only_span(translate(&s, 1, &count));
    assert_int_equal(be64(sp->parent_span_id.data), 0x11);
    assert_int_equal(sp->n_links, 2);
}

static void test_status_rules(void **state)
{
    (void)state;
    size_t count;
    struct {
        jg_tags_t tags;
        int code; /* -1: no status set */
        const char *msg;
        const char *gone; /* an attribute that must have been removed */
        const char *kept; /* one that must stay */
    } cases[] = {
        {TAGS(tstr("span.kind", "server"), tlong("http.status_code", 404)), -1, "", "span.kind",
         "http.status_code"},
        {TAGS(tstr("span.kind", "client"), tlong("http.status_code", 404),
              tstr("http.status_message", "nf")),
         2, "nf", "span.kind", "http.status_message"},
        {TAGS(tstr("http.status_code", "503")), 2, "", "error", "http.status_code"},
        {TAGS(tstr("http.status_code", "x503")), -1, "", "error", "http.status_code"},
        {TAGS(tstr("http.status_code", "200")), -1, "", "error", "http.status_code"},
        {TAGS(tstr("otel.status_code", "weird"), tstr("otel.status_description", "d")), 0, "d",
         "otel.status_code", NULL},
        {TAGS(tbool("error", true), tstr("otel.status_code", "OK"),
              tstr("http.status_message", "m")),
         2, "m", "otel.status_code", "http.status_message"},
        {TAGS(tbool("error", false), tstr("otel.status_code", "ok")), 1, "", "otel.status_code",
         "error"},
        {TAGS(tstr("error", "true")), -1, "", "span.kind", "error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jg_span_t s = base_span(1);
        s.tags = cases[i].tags;
        span_t *sp = only_span(translate(&s, 1, &count));
        if (cases[i].code < 0) {
            assert_int_equal(sp->status->code, 0);
            assert_string_equal(sp->status->message, "");
        } else {
            if ((int)sp->status->code != cases[i].code)
                fail_msg("case %zu: code %d, expected %d", i, sp->status->code, cases[i].code);
            assert_string_equal(sp->status->message, cases[i].msg);
        }
        assert_null(attr(sp->attributes, sp->n_attributes, cases[i].gone));
        if (cases[i].kept) assert_non_null(attr(sp->attributes, sp->n_attributes, cases[i].kept));
    }
}

static void test_tags_and_events(void **state)
{
    (void)state;
    jg_span_t s = base_span(1);
    jg_tag_t odd = {.key = S("odd"), .vtype = 9};
    jg_tag_t kind = tlong("span.kind", 1);
    jg_tag_t bad_utf8 = tstr("k\xff\xfe", "v\xc3(");
    s.tags = TAGS(odd, kind, bad_utf8, tstr("dup", "1"), tstr("dup", "2"));
    jg_log_t logs[] = {{.timestamp = 3, .fields = TAGS(tlong("event", 5), tstr("a", "b"))}};
    s.logs = logs;
    s.n_logs = 1;
    s.logs_present = true;
    s.start_time = -1; /* Go's uint64 arithmetic */
    s.duration = 2;
    size_t count;
    span_t *sp = only_span(translate(&s, 1, &count));
    assert_int_equal(sp->kind, 0); /* a non-string span.kind: unspecified, removed */
    assert_int_equal(sp->n_attributes, 3);
    assert_string_equal(sp->attributes[0]->value->string_value,
                        "<Unknown Jaeger TagType \"<UNSET>\">");
    assert_string_equal(sp->attributes[1]->key, "k\xef\xbf\xbd");
    assert_string_equal(sp->attributes[1]->value->string_value, "v\xef\xbf\xbd(");
    assert_string_equal(sp->attributes[2]->key, "dup");
    assert_string_equal(sp->attributes[2]->value->string_value, "2");
    assert_int_equal(sp->start_time_unix_nano, (uint64_t)-1 * 1000u);
    assert_int_equal(sp->end_time_unix_nano, 1000u);
    assert_int_equal(sp->n_events, 1);
    assert_string_equal(sp->events[0]->name, ""); /* "event" not a string */
    assert_int_equal(sp->events[0]->n_attributes, 1);
    assert_int_equal(sp->events[0]->time_unix_nano, 3000);
}

static void test_many_duplicate_keys(void **state)
{
    (void)state;
    /* 200 tags, 50 keys each given 4 times: the map's hash index path */
    static jg_tag_t tags[200];
    static char keys[50][16], vals[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i % 50], sizeof(keys[0]), "k%d", i % 50);
        snprintf(vals[i], sizeof(vals[0]), "v%d", i);
        tags[i] = tstr(keys[i % 50], vals[i]);
    }
    jg_span_t s = base_span(1);
    s.tags = (jg_tags_t){tags, 200, true};
    size_t count;
    span_t *sp = only_span(translate(&s, 1, &count));
    assert_int_equal(sp->n_attributes, 50);
    for (int k = 0; k < 50; k++) {
        char want[16];
        snprintf(want, sizeof(want), "v%d", 150 + k);
        assert_string_equal(sp->attributes[k]->value->string_value, want);
    }
}

static void test_blank_spans_and_resource(void **state)
{
    (void)state;
    jg_span_t spans[3] = {{0}, base_span(2), {0}};
    spans[2].tags.present = true; /* an empty list given: not blank */
    jg_tags_t ptags = TAGS(tstr("hostname", "h"), tstr("host.name", "H"),
                           tlong("jaeger.version", 3), tstr("service.name", "over"));
    jg_batch_t b = {.service_name = S("svc"), .process_tags = ptags, .spans = spans, .n_spans = 3};
    size_t count;
    req_t *req = jg_to_otlp(&b, &arena.pb, &count);
    assert_non_null(req);
    assert_int_equal(count, 2);
    Opentelemetry__Proto__Resource__V1__Resource *res = req->resource_spans[0]->resource;
    /* service.name replaced in place; hostname kept (host.name exists);
     * jaeger.version -> "Jaeger-" + "" (not a string), appended */
    assert_int_equal(res->n_attributes, 4);
    assert_string_equal(res->attributes[0]->key, "service.name");
    assert_string_equal(res->attributes[0]->value->string_value, "over");
    assert_string_equal(res->attributes[1]->key, "hostname");
    assert_string_equal(res->attributes[2]->key, "host.name");
    assert_string_equal(res->attributes[3]->key, "opencensus.exporterversion");
    assert_string_equal(res->attributes[3]->value->string_value, "Jaeger-");

    /* no service name and no tags: an empty resource; no spans: no ScopeSpans */
    jg_batch_t empty = {.service_name = S("")};
    req = jg_to_otlp(&empty, &arena.pb, &count);
    assert_int_equal(req->n_resource_spans, 1);
    assert_int_equal(req->resource_spans[0]->resource->n_attributes, 0);
    assert_int_equal(req->resource_spans[0]->n_scope_spans, 0);
}

static void test_decode_required_and_wrong_types(void **state)
{
    (void)state;
    jg_batch_t b;
    char err[200];
    /* Batch { 1: Process { 1: "s" }, 2: list<Span> [] } in binary: valid */
    static const uint8_t ok[] = {12, 0,  1, 11, 0,  1, 0, 0, 0, 1, 's',
                                 0,  15, 0, 2,  12, 0, 0, 0, 0, 0};
    assert_int_equal(
        jg_decode_batch(TH_PROTO_BINARY, ok, sizeof(ok), &arena.pb, &b, err, sizeof(err)), 0);
    assert_int_equal(b.n_spans, 0);
    /* serviceName given as an i32: skipped, then missing */
    static const uint8_t wrong[] = {12, 0, 1, 8, 0, 1, 0, 0, 0, 1, 0, 15, 0, 2, 12, 0, 0, 0, 0, 0};
    assert_int_equal(
        jg_decode_batch(TH_PROTO_BINARY, wrong, sizeof(wrong), &arena.pb, &b, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "Process.serviceName"));
    /* a list of spans whose count cannot fit */
    static const uint8_t many[] = {12, 0, 1, 11, 0, 1, 0, 0, 0, 0, 0, 15, 0, 2, 12, 0, 0, 0, 3, 0,
                                   0,  0, 0, 0,  0, 0, 0, 0, 0, 0, 0, 0,  0, 0, 0,  0, 0, 0, 0, 0};
    assert_int_equal(
        jg_decode_batch(TH_PROTO_BINARY, many, sizeof(many), &arena.pb, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "list count"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_scalars),
        cmocka_unit_test(test_binary_scalars_and_skip),
        cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_parent_from_references),
        cmocka_unit_test(test_status_rules),
        cmocka_unit_test(test_tags_and_events),
        cmocka_unit_test(test_many_duplicate_keys),
        cmocka_unit_test(test_blank_spans_and_resource),
        cmocka_unit_test(test_decode_required_and_wrong_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
