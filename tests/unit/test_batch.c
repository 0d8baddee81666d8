/*
 * Batches: validation and counting without decoding, lazy decode and encode,
 * merging by concatenation, splitting at item granularity, the depth bound.
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
#include "batch_internal.h"
#include "utf8.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rs_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ss_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

/* A trace request of resources holding `per[i]` spans each (one scope each),
 * span names "r<i>s<j>", encoded into a batch. */
static sy_batch_t *make_traces(const size_t *per, size_t nres)
{
    span_t spans[64];
    span_t *span_ptrs[64];
    ss_t ss[8];
    ss_t *ss_ptrs[8];
    rs_t rs[8];
    rs_t *rs_ptrs[8];
    char names[64][48];
    size_t k = 0;
    for (size_t i = 0; i < nres; i++) {
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[i]);
        opentelemetry__proto__trace__v1__scope_spans__init(&ss[i]);
        ss[i].spans = &span_ptrs[k];
        for (size_t j = 0; j < per[i]; j++, k++) {
            opentelemetry__proto__trace__v1__span__init(&spans[k]);
            snprintf(names[k], sizeof(names[k]), "r%zus%zu", i, j);
            spans[k].name = names[k];
            span_ptrs[k] = &spans[k];
        }
        ss[i].n_spans = per[i];
        ss_ptrs[i] = &ss[i];
        rs[i].scope_spans = &ss_ptrs[i];
        rs[i].n_scope_spans = 1;
        rs_ptrs[i] = &rs[i];
    }
    trace_req_t req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = rs_ptrs;
    req.n_resource_spans = nres;
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = sy__batch_alloc(b, len ? len : 1);
    protobuf_c_message_pack(&req.base, buf);
    char err[128];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

/* The span names of a batch, in order, joined with ','. */
static void names_of(sy_batch_t *b, char *out, size_t cap)
{
    const trace_req_t *req = sy__batch_request(b);
    assert_non_null(req);
    out[0] = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const ss_t *ss = req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                strncat(out, ss->spans[k]->name, cap - strlen(out) - 1);
                strncat(out, ",", cap - strlen(out) - 1);
            }
        }
}

static void test_count_without_decoding(void **state)
{
    (void)state;
    size_t per[] = {5, 1};
    sy_batch_t *b = make_traces(per, 2);
    sy_batch_info_t info;
    sy__batch_info(b, &info);
    assert_int_equal(info.items, 6);
    assert_true(info.has_encoded);
    assert_false(info.has_decoded); /* counted by walking the bytes */
    char names[512];
    names_of(b, names, sizeof(names));
    assert_string_equal(names, "r0s0,r0s1,r0s2,r0s3,r0s4,r1s0,");
    sy__batch_release(b);
}

/* sy__batch_bytes: the batch's arena and itself; it grows when a form is made
 * (what the core queues weigh a batch by when it goes in). */
static void test_bytes_held(void **state)
{
    (void)state;
    sy_batch_t *empty = sy__batch_new(SY_SIGNAL_TRACES, "test");
    size_t none = sy__batch_bytes(empty);
    assert_true(none > 0 && none < 4096); /* no chunk yet: the struct only */
    sy__batch_release(empty);

    size_t per[] = {40, 20};
    sy_batch_t *b = make_traces(per, 2);
    size_t len = 0;
    assert_non_null(sy__batch_encoded(b, &len));
    size_t encoded = sy__batch_bytes(b);
    assert_true(encoded >= none + len);
    assert_non_null(sy__batch_request(b)); /* decoded into the same arena */
    assert_true(sy__batch_bytes(b) > encoded);
    sy__batch_release(b);
}

static void test_merge_concatenates(void **state)
{
    (void)state;
    size_t p1[] = {2}, p2[] = {1, 3};
    sy_batch_t *in[2] = {make_traces(p1, 1), make_traces(p2, 2)};
    size_t l1, l2, lm;
    sy__batch_encoded(in[0], &l1);
    sy__batch_encoded(in[1], &l2);
    sy_batch_t *m = sy__batch_merge("test", in, 2);
    assert_non_null(m);
    assert_int_equal(sy__batch_items(m), 6);
    sy__batch_encoded(m, &lm);
    assert_int_equal(lm, l1 + l2);
    char names[512];
    names_of(m, names, sizeof(names));
    assert_string_equal(names, "r0s0,r0s1,r0s0,r1s0,r1s1,r1s2,");
    sy__batch_release(m);
    sy__batch_release(in[0]);
    sy__batch_release(in[1]);
}

/* A merge keeps its inputs as pieces: sy__batch_pieces() hands out the inputs'
 * own bytes (not copies), a merge of merges has the leaves as its pieces, the
 * joined form is their concatenation, a copy and a decode read the pieces, the
 * pieces count in the merge's bytes, and they stay valid after the caller
 * released the inputs. */
static void test_merge_keeps_pieces(void **state)
{
    (void)state;
    size_t p1[] = {2}, p2[] = {1, 3}, p3[] = {4};
    sy_batch_t *in[3] = {make_traces(p1, 1), make_traces(p2, 2), make_traces(p3, 1)};
    size_t len[3];
    const uint8_t *enc[3];
    for (int i = 0; i < 3; i++)
        enc[i] = sy__batch_encoded(in[i], &len[i]);
    sy_batch_t *m01 = sy__batch_merge("test", in, 2);
    assert_non_null(m01);
    size_t in_bytes = sy__batch_bytes(in[0]) + sy__batch_bytes(in[1]);
    assert_true(sy__batch_bytes(m01) >= in_bytes);
    sy_batch_t *two[2] = {m01, in[2]};
    sy_batch_t *m = sy__batch_merge("test", two, 2);
    assert_non_null(m);
    sy__batch_release(m01);
    for (int i = 0; i < 3; i++)
        sy__batch_release(in[i]); /* the merge holds them now */
    sy_piece_t pieces[4];
    assert_int_equal(sy__batch_pieces(m, pieces, 1), 3); /* room for one: the count */
    assert_int_equal(sy__batch_pieces(m, pieces, 4), 3);
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(pieces[i].data, enc[i]);
        assert_int_equal(pieces[i].len, len[i]);
    }
    sy_batch_info_t info;
    sy__batch_info(m, &info);
    assert_true(info.has_encoded);
    assert_int_equal(info.bytes, len[0] + len[1] + len[2]);
    assert_int_equal(sy__batch_items(m), 10);
    /* A copy, from the pieces. */
    sy_batch_t *c = sy__batch_copy(m);
    assert_non_null(c);
    size_t lc;
    const uint8_t *ec = sy__batch_encoded(c, &lc);
    assert_int_equal(lc, len[0] + len[1] + len[2]);
    assert_memory_equal(ec, enc[0], len[0]);
    assert_memory_equal(ec + len[0], enc[1], len[1]);
    assert_memory_equal(ec + len[0] + len[1], enc[2], len[2]);
    assert_int_equal(sy__batch_pieces(c, pieces, 4), 1);
    assert_ptr_equal(pieces[0].data, ec);
    /* Joined and decoded: the items of all three, in order. */
    size_t lm;
    const uint8_t *em = sy__batch_encoded(m, &lm);
    assert_int_equal(lm, lc);
    assert_memory_equal(em, ec, lc);
    char names[512];
    names_of(m, names, sizeof(names));
    assert_string_equal(names, "r0s0,r0s1,r0s0,r1s0,r1s1,r1s2,r0s0,r0s1,r0s2,r0s3,");
    sy__batch_release(c);
    /* A merge of one is the caller's own batch: changing it leaves the input alone. */
    sy_batch_t *orig = make_traces(p1, 1);
    size_t lo;
    const uint8_t *eo = sy__batch_encoded(orig, &lo);
    uint8_t before[4096];
    assert_true(lo <= sizeof(before));
    memcpy(before, eo, lo);
    sy_batch_t *own = sy__batch_merge("test", &orig, 1);
    assert_false(sy__batch_is_shared(own));
    assert_non_null(sy__batch_request_mut(own));
    sy__batch_info(own, &info);
    assert_false(info.has_encoded); /* packed again when asked */
    assert_memory_equal(sy__batch_encoded(orig, &lo), before, lo);
    sy__batch_release(own);
    sy__batch_release(orig);
    sy__batch_release(m);
}

static void test_split_at_items(void **state)
{
    (void)state;
    size_t per[] = {0, 5, 1, 3}; /* an empty resource entry first */
    sy_batch_t *b = make_traces(per, 4);
    assert_int_equal(sy__batch_items(b), 9);
    const char *want[] = {"r1s0,r1s1,r1s2,r1s3,", "r1s4,r2s0,r3s0,r3s1,", "r3s2,"};
    for (int i = 0; i < 3; i++) {
        sy_batch_t *head = sy__batch_split("test", &b, 4);
        assert_non_null(head);
        char names[512];
        names_of(head, names, sizeof(names));
        assert_string_equal(names, want[i]);
        /* Re-encoded pieces are valid on their own and keep their count. */
        size_t len;
        const uint8_t *enc = sy__batch_encoded(head, &len);
        uint64_t n = 0;
        char err[128];
        assert_int_equal(sy__pb_validate(sy__signal_request_descriptor(SY_SIGNAL_TRACES), enc, len,
                                         &n, err, sizeof(err)),
                         0);
        assert_int_equal(n, sy__batch_items(head));
        if (i == 0) {
            /* The empty resource entry travels with the first piece, once. */
            const trace_req_t *req = sy__batch_request(head);
            assert_int_equal(req->n_resource_spans, 2);
        }
        sy__batch_release(head);
        if (i < 2) assert_non_null(b);
    }
    assert_null(b); /* the last piece was returned whole */
}

static void test_split_metrics_by_data_point(void **state)
{
    (void)state;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint dp[3], *dpp[3];
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&dp[i]);
        dp[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp[i].as_int = i;
        dpp[i] = &dp[i];
    }
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.data_points = dpp;
    sum.n_data_points = 3;
    Opentelemetry__Proto__Metrics__V1__Metric metric =
                                                  OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT,
                                              *mp = &metric;
    metric.name = "m";
    metric.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    metric.sum = &sum;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics
        sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT,
        *smp = &sm;
    sm.metrics = &mp;
    sm.n_metrics = 1;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics
        rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT,
        *rmp = &rm;
    rm.scope_metrics = &smp;
    rm.n_scope_metrics = 1;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.resource_metrics = &rmp;
    req.n_resource_metrics = 1;

    /* Built decoded, as a JSON receiver would. */
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_METRICS, "test");
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(len);
    protobuf_c_message_pack(&req.base, buf);
    void *dec = protobuf_c_message_unpack(sy__signal_request_descriptor(SY_SIGNAL_METRICS),
                                          sy__batch_allocator(b), len, buf);
    free(buf);
    assert_int_equal(sy__batch_set_decoded(b, dec), 0);
    assert_int_equal(sy__batch_items(b), 3);
    sy_batch_t *head = sy__batch_split("test", &b, 2);
    assert_int_equal(sy__batch_items(head), 2);
    assert_int_equal(sy__batch_items(b), 1);
    const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r =
        sy__batch_request(b);
    const Opentelemetry__Proto__Metrics__V1__Metric *m =
        r->resource_metrics[0]->scope_metrics[0]->metrics[0];
    assert_string_equal(m->name, "m"); /* the metric's descriptor goes with each piece */
    assert_int_equal(m->sum->n_data_points, 1);
    assert_int_equal(m->sum->data_points[0]->as_int, 2);
    sy__batch_release(head);
    sy__batch_release(b);
}

static void test_invalid_and_too_deep(void **state)
{
    (void)state;
    char err[256];
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    static const uint8_t truncated[] = {0x0a, 0x05, 0x0a};
    assert_int_equal(sy__batch_set_encoded(b, truncated, sizeof(truncated), err, sizeof(err)),
                     SY_EINVAL);
    assert_non_null(strstr(err, "length past the end"));
    static const uint8_t wrong_wire[] = {0x08, 0x01}; /* field 1 as a varint */
    assert_int_equal(sy__batch_set_encoded(b, wrong_wire, sizeof(wrong_wire), err, sizeof(err)),
                     SY_EINVAL);
    assert_non_null(strstr(err, "wire type"));

    /* AnyValue{array_value: ArrayValue{values: AnyValue{...}}}, 100 levels deep,
     * built from the inside out: refused by the depth bound, not recursed into
     * (protobuf-c itself has no bound). */
    enum { LEVELS = 100 };
    uint8_t *buf = malloc(LEVELS * 2 * 4 + 8), *tmp = malloc(LEVELS * 2 * 4 + 8);
    size_t len = 0;
    for (int i = 0; i < 2 * LEVELS; i++) {
        size_t n = 0;
        tmp[n++] = (i % 2 == 0) ? 0x0a : 0x2a; /* ArrayValue.values / AnyValue.array_value */
        size_t l = len;
        do {
            tmp[n++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
            l >>= 7;
        } while (l);
        memcpy(tmp + n, buf, len);
        memcpy(buf, tmp, n + len);
        len += n;
    }
    uint64_t items;
    int rc = sy__pb_validate(&opentelemetry__proto__common__v1__any_value__descriptor, buf, len,
                             &items, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "nesting too deep"));
    free(buf);
    free(tmp);
    sy__batch_release(b);
}

/* Appends a length-delimited field (tag byte, varint length, bytes) to buf. */
static size_t put_ld(uint8_t *buf, uint8_t tag, const uint8_t *val, size_t len)
{
    size_t n = 0;
    buf[n++] = tag;
    size_t l = len;
    do {
        buf[n++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
        l >>= 7;
    } while (l);
    memmove(buf + n, val, len);
    return n + len;
}

/* ExportTraceServiceRequest{resource_spans{resource{attributes{key, string_value
 * value}}, scope_spans{spans{name}}}}: strings at depth 4 and 5. */
static size_t traces_with_strings(uint8_t *out, const char *key, size_t key_len, const char *val,
                                  size_t val_len, const char *name, size_t name_len)
{
    uint8_t a[256], b[256], c[256], rs[1024];
    size_t n_any = put_ld(a, 0x0a, (const uint8_t *)val, val_len);    /* AnyValue.string_value */
    size_t n_kv = put_ld(b, 0x0a, (const uint8_t *)key, key_len);     /* KeyValue.key */
    n_kv += put_ld(b + n_kv, 0x12, a, n_any);                         /* KeyValue.value */
    size_t n_res = put_ld(c, 0x0a, b, n_kv);                          /* Resource.attributes */
    size_t n_rs = put_ld(rs, 0x0a, c, n_res);                         /* ResourceSpans.resource */
    size_t n_span = put_ld(a, 0x2a, (const uint8_t *)name, name_len); /* Span.name */
    size_t n_ss = put_ld(b, 0x12, a, n_span);                         /* ScopeSpans.spans */
    n_rs += put_ld(rs + n_rs, 0x12, b, n_ss); /* ResourceSpans.scope_spans */
    return put_ld(out, 0x0a, rs, n_rs);       /* resource_spans */
}

static void test_utf8_strings(void **state)
{
    (void)state;
    char err[256];
    uint8_t buf[2048];
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");

    /* NUL and multi-byte UTF-8 are valid; the decoded string keeps the bytes up to
     * the NUL only (a char *): see the file exporter's notes. */
    static const char ok_val[] = "a\0b \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    size_t len = traces_with_strings(buf, "k", 1, ok_val, sizeof(ok_val) - 1, "span", 4);
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), SY_OK);
    assert_int_equal(sy__batch_items(b), 1);

    static const struct {
        const char *s;
        size_t len;
        int where; /* 0 key, 1 value, 2 span name */
        const char *field;
    } bad[] = {
        {"\xff", 1, 0, "KeyValue.key"},
        {"ok\xc0\xaf", 4, 1, "AnyValue.string_value"},        /* overlong '/' */
        {"\xed\xa0\x80", 3, 2, "Span.name"},                  /* a surrogate */
        {"abcdefgh\xf4\x90\x80\x80", 12, 2, "Span.name"},     /* above U+10FFFF */
        {"abcdefghijklmnopq\xe2\x82", 19, 1, "string_value"}, /* truncated */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        len = traces_with_strings(
            buf, bad[i].where == 0 ? bad[i].s : "k", bad[i].where == 0 ? bad[i].len : 1,
            bad[i].where == 1 ? bad[i].s : "v", bad[i].where == 1 ? bad[i].len : 1,
            bad[i].where == 2 ? bad[i].s : "n", bad[i].where == 2 ? bad[i].len : 1);
        assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), SY_EINVAL);
        if (!strstr(err, "invalid UTF-8") || !strstr(err, bad[i].field))
            fail_msg("case %zu: %s", i, err);
    }
    sy__batch_release(b);
}

static void test_utf8_validator(void **state)
{
    (void)state;
    assert_true(syc_utf8_valid((const uint8_t *)"", 0));
    assert_true(syc_utf8_valid((const uint8_t *)"\0\0\0", 3));
    /* Every length class (<4, 4..7, 8..16, >16) with the bad byte at each end. */
    for (size_t n = 1; n <= 40; n++) {
        uint8_t s[48];
        memset(s, 'x', n);
        assert_true(syc_utf8_valid(s, n));
        s[n - 1] = 0x80;
        assert_false(syc_utf8_valid(s, n));
        s[n - 1] = 'x';
        s[0] = 0xfe;
        assert_false(syc_utf8_valid(s, n));
        if (n >= 2) {
            s[0] = 0xc3;
            s[1] = 0xa9;
            assert_true(syc_utf8_valid(s, n));
        }
    }
    static const char *const good[] = {"\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
                                       "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(syc_utf8_valid((const uint8_t *)good[i], strlen(good[i])));
    static const char *const bad[] = {"\xc1\xbf",         "\xe0\x9f\xbf",     "\xed\xa0\x80",
                                      "\xed\xbf\xbf",     "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
                                      "\xf5\x80\x80\x80", "\xe2\x28\xa1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(syc_utf8_valid((const uint8_t *)bad[i], strlen(bad[i])));

    size_t at = 0;
    static const char pair[] = "{\"a\":\"\\ud83d\\ude00 \\\\ud800 \\u0041\"}";
    assert_true(syc_json_surrogates_valid((const uint8_t *)pair, strlen(pair), &at));
    static const char lone_hi[] = "{\"a\":\"x\\uD800y\"}";
    assert_false(syc_json_surrogates_valid((const uint8_t *)lone_hi, strlen(lone_hi), &at));
    assert_int_equal(at, 7);
    static const char lone_lo[] = "{\"a\":\"\\udc00\"}";
    assert_false(syc_json_surrogates_valid((const uint8_t *)lone_lo, strlen(lone_lo), &at));
    static const char hi_hi[] = "{\"a\":\"\\ud800\\ud800\"}";
    assert_false(syc_json_surrogates_valid((const uint8_t *)hi_hi, strlen(hi_hi), &at));
}

/* `n` empty spans under one resource and scope, encoded (malloc). */
static uint8_t *empty_spans(size_t n, size_t *len)
{
    size_t inner = 2 * n;
    uint8_t *buf = malloc(inner + 32);
    size_t k = 0;
    size_t ss_len = inner, rs_len;
    uint8_t hdr[32];
    size_t h = 0;
    /* resource_spans { scope_spans { spans... } } with varint lengths. */
    uint8_t ss_hdr[8], rs_hdr[8];
    size_t nss = 0, nrs = 0, l = ss_len;
    ss_hdr[nss++] = 0x12;
    do {
        ss_hdr[nss++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
        l >>= 7;
    } while (l);
    rs_len = nss + ss_len;
    l = rs_len;
    rs_hdr[nrs++] = 0x0a;
    do {
        rs_hdr[nrs++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
        l >>= 7;
    } while (l);
    memcpy(hdr + h, rs_hdr, nrs);
    h += nrs;
    memcpy(hdr + h, ss_hdr, nss);
    h += nss;
    memcpy(buf, hdr, h);
    k = h;
    for (size_t i = 0; i < n; i++) {
        buf[k++] = 0x12;
        buf[k++] = 0x00;
    }
    *len = k;
    return buf;
}

/* What protobuf-c allocates to unpack a trace request, each allocation rounded
 * to 16 bytes as the arena does (it never frees, so frees are not subtracted). */
static size_t alloc_sum;

static void *counting_alloc(void *data, size_t size)
{
    (void)data;
    alloc_sum += (size + 15) & ~(size_t)15;
    return malloc(size);
}

static void counting_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static size_t alloc_total(const uint8_t *buf, size_t len)
{
    ProtobufCAllocator a = {.alloc = counting_alloc, .free = counting_free};
    alloc_sum = 0;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(sy__signal_request_descriptor(SY_SIGNAL_TRACES), &a, len, buf);
    assert_non_null(m);
    protobuf_c_message_free_unpacked(m, &a);
    return alloc_sum;
}

/* The decoded-size estimate bounds what a decode takes; a request past
 * SY__REQUEST_MAX_DECODED is refused with SY_ENOMEM, and no merge passes
 * SY__BATCH_MAX_DECODED. */
static void test_decoded_size_bounds(void **state)
{
    (void)state;
    char err[256];
    size_t len;

    /* 20000 empty spans: decodes, and within the estimate. */
    uint8_t *small = empty_spans(20000, &len);
    sy__pb_stats_t st;
    assert_int_equal(sy__pb_walk(sy__signal_request_descriptor(SY_SIGNAL_TRACES), small, len, true,
                                 &st, err, 64),
                     0);
    assert_int_equal(st.items, 20000);
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    assert_int_equal(sy__batch_set_encoded(b, small, len, err, sizeof(err)), SY_OK);
    assert_non_null(sy__batch_request(b));
    assert_true(alloc_total(small, len) <= st.decoded_bytes);
    /* A string-heavy request: the estimate bounds it too. */
    static const char val[] = "a value of some length, \xc3\xa9";
    uint8_t buf[1024];
    size_t blen = traces_with_strings(buf, "service.name", 12, val, sizeof(val) - 1, "span", 4);
    assert_int_equal(
        sy__pb_walk(sy__signal_request_descriptor(SY_SIGNAL_TRACES), buf, blen, true, &st, err, 64),
        0);
    assert_true(alloc_total(buf, blen) <= st.decoded_bytes);
    sy__batch_release(b);
    free(small);

    /* ResourceSpans.resource given k times, each with one attribute: protobuf-c
     * merges each into the one before, allocating the attribute array anew every
     * time (quadratic). The estimate follows; at 20000 times it is refused. */
    for (size_t k = 2000; k <= 20000; k += 18000) {
        size_t inner = 4 * k, hdr = 0;
        uint8_t *q = malloc(inner + 8);
        q[hdr++] = 0x0a; /* resource_spans */
        for (size_t l = inner;; l >>= 7) {
            q[hdr++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
            if (l <= 0x7f) break;
        }
        for (size_t i = 0; i < k; i++)
            memcpy(q + hdr + 4 * i, "\x0a\x02\x0a\x00", 4); /* resource{attributes{}} */
        size_t qlen = hdr + inner;
        assert_int_equal(sy__pb_walk(sy__signal_request_descriptor(SY_SIGNAL_TRACES), q, qlen, true,
                                     &st, err, 64),
                         0);
        if (k == 2000) {
            assert_true(alloc_total(q, qlen) <= st.decoded_bytes);
        } else {
            b = sy__batch_new(SY_SIGNAL_TRACES, "test");
            assert_int_equal(sy__batch_set_encoded(b, q, qlen, err, sizeof(err)), SY_ENOMEM);
            sy__batch_release(b);
        }
        free(q);
    }

    /* 10,000,000 empty spans (20 MB): refused, with a sentence. */
    uint8_t *huge = empty_spans(10000000, &len);
    b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    assert_int_equal(sy__batch_set_encoded(b, huge, len, err, sizeof(err)), SY_ENOMEM);
    assert_non_null(strstr(err, "request too large"));
    assert_non_null(strstr(err, "10000000 items"));
    sy__batch_release(b);
    free(huge);

    /* Requests just under the per-request bound: two merge, three do not. */
    size_t n = 100000;
    uint8_t *part = empty_spans(n, &len);
    assert_int_equal(
        sy__pb_walk(sy__signal_request_descriptor(SY_SIGNAL_TRACES), part, len, true, &st, err, 64),
        0);
    size_t per = (size_t)((SY__REQUEST_MAX_DECODED - 4096) / (st.decoded_bytes + len));
    free(part);
    part = empty_spans(n * per, &len);
    sy_batch_t *in[3];
    for (int i = 0; i < 3; i++) {
        in[i] = sy__batch_new(SY_SIGNAL_TRACES, "test");
        assert_int_equal(sy__batch_set_encoded(in[i], part, len, err, sizeof(err)), SY_OK);
    }
    sy_batch_t *two = sy__batch_merge("test", in, 2);
    assert_non_null(two);
    assert_int_equal(sy__batch_items(two), 2 * n * per);
    assert_null(sy__batch_merge("test", in, 3));
    sy__batch_release(two);
    for (int i = 0; i < 3; i++)
        sy__batch_release(in[i]);
    free(part);
}

/* The compressed twin (ABI 1.7): kept while the content is the one it is of,
 * a merge's when every input has one of the same encoding, dropped by a change. */
static void test_compressed_twin(void **state)
{
    (void)state;
    static const uint8_t z0[] = "gzip-of-0", z1[] = "gzip-of-1", z2[] = "zstd-of-2";
    size_t p1[] = {2}, p2[] = {1, 3}, p3[] = {4};
    sy_batch_t *in[3] = {make_traces(p1, 1), make_traces(p2, 2), make_traces(p3, 1)};
    sy_piece_t pieces[4];
    assert_int_equal(sy__batch_compressed_pieces(in[0], "gzip", pieces, 4), 0); /* none yet */
    assert_int_equal(sy__batch_set_compressed(in[0], "br", z0, sizeof(z0)), SY_EINVAL);
    assert_int_equal(sy__batch_set_compressed(in[0], "gzip", z0, 0), SY_EINVAL);
    assert_int_equal(sy__batch_set_compressed(in[0], "gzip", z0, sizeof(z0)), SY_OK);
    assert_int_equal(sy__batch_set_compressed(in[1], "gzip", z1, sizeof(z1)), SY_OK);
    assert_int_equal(sy__batch_set_compressed(in[2], "zstd", z2, sizeof(z2)), SY_OK);
    assert_int_equal(sy__batch_compressed_pieces(in[0], "gzip", pieces, 4), 1);
    assert_ptr_equal(pieces[0].data, z0);
    assert_int_equal(pieces[0].len, sizeof(z0));
    assert_int_equal(sy__batch_compressed_pieces(in[0], "zstd", pieces, 4), 0);
    /* A merge of two gzip twins: both, in order; with the zstd one: none. */
    sy_batch_t *m01 = sy__batch_merge("test", in, 2);
    assert_non_null(m01);
    assert_int_equal(sy__batch_compressed_pieces(m01, "gzip", pieces, 1), 2); /* the count */
    assert_int_equal(sy__batch_compressed_pieces(m01, "gzip", pieces, 4), 2);
    assert_ptr_equal(pieces[0].data, z0);
    assert_ptr_equal(pieces[1].data, z1);
    sy_batch_t *m012 = sy__batch_merge("test", in, 3);
    assert_non_null(m012);
    assert_int_equal(sy__batch_compressed_pieces(m012, "gzip", pieces, 4), 0);
    assert_int_equal(sy__batch_compressed_pieces(m012, "zstd", pieces, 4), 0);
    /* Decoding (reading) keeps it; a copy has none; a new content drops it. */
    assert_non_null(sy__batch_request(in[2]));
    assert_int_equal(sy__batch_compressed_pieces(in[2], "zstd", pieces, 4), 1);
    sy_batch_t *c = sy__batch_copy(in[2]);
    assert_non_null(c);
    assert_int_equal(sy__batch_compressed_pieces(c, "zstd", pieces, 4), 0);
    sy__batch_release(c);
    sy__batch_release(m01);
    sy__batch_release(m012);
    assert_non_null(sy__batch_request_mut(in[2])); /* the only holder: may change it */
    assert_int_equal(sy__batch_compressed_pieces(in[2], "zstd", pieces, 4), 0);
    size_t len;
    const uint8_t *enc = sy__batch_encoded(in[1], &len);
    assert_int_equal(sy__batch_set_encoded(in[1], enc, len, NULL, 0), SY_OK);
    assert_int_equal(sy__batch_compressed_pieces(in[1], "gzip", pieces, 4), 0);
    for (int i = 0; i < 3; i++)
        sy__batch_release(in[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_without_decoding),
        cmocka_unit_test(test_merge_concatenates),
        cmocka_unit_test(test_split_at_items),
        cmocka_unit_test(test_split_metrics_by_data_point),
        cmocka_unit_test(test_invalid_and_too_deep),
        cmocka_unit_test(test_utf8_strings),
        cmocka_unit_test(test_utf8_validator),
        cmocka_unit_test(test_decoded_size_bounds),
        cmocka_unit_test(test_bytes_held),
        cmocka_unit_test(test_merge_keeps_pieces),
        cmocka_unit_test(test_compressed_twin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
