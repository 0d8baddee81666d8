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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_without_decoding),
        cmocka_unit_test(test_merge_concatenates),
        cmocka_unit_test(test_split_at_items),
        cmocka_unit_test(test_split_metrics_by_data_point),
        cmocka_unit_test(test_invalid_and_too_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
