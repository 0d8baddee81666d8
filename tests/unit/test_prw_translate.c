/*
 * test_prw_translate.c - the prometheusremotewrite exporter's translation
 * (plugins/exporters/prometheusremotewrite/prw_translate.c, compiled in): the
 * requests it writes are read back with protobuf-c's code generated from
 * proto/prometheus/remote.proto, so the hand-written encoder is checked against
 * an independent decoder. Splitting by max_batch_size_bytes: every part within
 * the bound (or a single series), the parts together exactly the series and
 * samples of the unsplit request, in order, metadata after the series; samples
 * of one series in time order; the stale marker; the le/quantile number format.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_json.h"
#include "prometheus/remote.pb-c.h"
#include "prw_translate.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;

/* The decoded request's memory: every block, freed at once. */
typedef struct blocks_s {
    void **v;
    size_t n, cap;
} blocks_t;

static void *blk_alloc(void *data, size_t size)
{
    blocks_t *b = data;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = realloc(b->v, b->cap * sizeof(*b->v));
        assert_non_null(b->v);
    }
    void *p = malloc(size ? size : 1);
    assert_non_null(p);
    b->v[b->n++] = p;
    return p;
}

static void blk_free(void *data, void *p)
{
    (void)data;
    (void)p; /* freed with the rest */
}

static void blocks_free(blocks_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i]);
    free(b->v);
}

static MetricsReq *decode_json(blocks_t *b, const char *json)
{
    ProtobufCAllocator a = {.alloc = blk_alloc, .free = blk_free, .allocator_data = b};
    char err[256] = "";
    MetricsReq *req = (MetricsReq *)syc_otlp_json_decode(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        (const uint8_t *)json, strlen(json), &a, err, sizeof(err));
    if (!req) fail_msg("test JSON does not decode: %s", err);
    return req;
}

/* A request of `n` gauge points (one series each, attribute i=<k>, value k, a
 * resource with service.name and host.name) and one histogram. */
static char *many_points_json(int n)
{
    size_t cap = 4096 + (size_t)n * 200;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = (size_t)snprintf(
        s, cap,
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h\"}}]},"
        "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\",\"description\":\"a gauge\","
        "\"unit\":\"s\",\"gauge\":{\"dataPoints\":[");
    for (int k = 0; k < n; k++)
        o += (size_t)snprintf(s + o, cap - o,
                              "%s{\"asInt\":\"%d\",\"timeUnixNano\":\"%d000000\","
                              "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"%d\"}}]}",
                              k ? "," : "", k, 1000 + k, k);
    snprintf(s + o, cap - o,
             "]}},{\"name\":\"h\",\"histogram\":{\"aggregationTemporality\":2,"
             "\"dataPoints\":[{\"count\":\"3\",\"sum\":1.5,\"bucketCounts\":[\"1\",\"2\"],"
             "\"explicitBounds\":[0.5],\"timeUnixNano\":\"5000000\"}]}}]}]}]}");
    return s;
}

static const prw_cfg_t CFG = {
    .namer = {.ns = "", .suffixes = true},
    .target_info = true,
    .send_metadata = true,
};

/* One series as text: `name{a="x",...} v@t v@t`, for comparing parts. */
static void series_text(const Prometheus__TimeSeries *ts, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < ts->n_labels; i++)
        o +=
            (size_t)snprintf(out + o, cap - o, "%s=%s,", ts->labels[i]->name, ts->labels[i]->value);
    for (size_t i = 0; i < ts->n_samples; i++)
        o += (size_t)snprintf(out + o, cap - o, " %.17g@%lld", ts->samples[i]->value,
                              (long long)ts->samples[i]->timestamp);
}

typedef struct flat_s {
    char **series;
    size_t n_series;
    char **meta;
    size_t n_meta;
} flat_t;

/* Unpacks every part, checks the bound and the label order, and lists what they
 * hold in order. */
static flat_t flatten(prw_part_t *parts, size_t n, size_t max)
{
    flat_t f = {0};
    bool meta_seen = false;
    for (size_t p = 0; p < n; p++) {
        Prometheus__WriteRequest *w =
            prometheus__write_request__unpack(NULL, parts[p].len, parts[p].data);
        assert_non_null(w);
        if (parts[p].len > max) assert_int_equal(w->n_timeseries + w->n_metadata, 1);
        if (w->n_timeseries) assert_false(meta_seen); /* metadata after every series */
        for (size_t i = 0; i < w->n_timeseries; i++) {
            const Prometheus__TimeSeries *ts = w->timeseries[i];
            for (size_t l = 1; l < ts->n_labels; l++)
                assert_true(strcmp(ts->labels[l - 1]->name, ts->labels[l]->name) < 0);
            char buf[1024];
            series_text(ts, buf, sizeof(buf));
            f.series = realloc(f.series, (f.n_series + 1) * sizeof(*f.series));
            f.series[f.n_series++] = strdup(buf);
        }
        for (size_t i = 0; i < w->n_metadata; i++) {
            char buf[512];
            snprintf(buf, sizeof(buf), "%d %s %s %s", (int)w->metadata[i]->type,
                     w->metadata[i]->metric_family_name, w->metadata[i]->help,
                     w->metadata[i]->unit);
            f.meta = realloc(f.meta, (f.n_meta + 1) * sizeof(*f.meta));
            f.meta[f.n_meta++] = strdup(buf);
            meta_seen = true;
        }
        prometheus__write_request__free_unpacked(w, NULL);
    }
    return f;
}

static void flat_free(flat_t *f)
{
    for (size_t i = 0; i < f->n_series; i++)
        free(f->series[i]);
    for (size_t i = 0; i < f->n_meta; i++)
        free(f->meta[i]);
    free(f->series);
    free(f->meta);
}

static void test_split_by_size(void **state)
{
    (void)state;
    blocks_t b = {0};
    char *json = many_points_json(200);
    MetricsReq *req = decode_json(&b, json);
    free(json);

    prw_stats_t st = {0};
    prw_part_t *whole = NULL;
    size_t n_whole = 0;
    assert_int_equal(prw_translate(&CFG, req, 3000000, &whole, &n_whole, &st), 0);
    assert_int_equal(n_whole, 1);
    /* 200 gauge series, 2 buckets + sum + count, target_info; 2 metadata */
    assert_int_equal(st.series, 205);
    assert_int_equal(st.samples, 205);
    assert_int_equal(st.metadata, 2);
    flat_t fw = flatten(whole, n_whole, 3000000);
    assert_int_equal(fw.n_series, 205);
    assert_int_equal(fw.n_meta, 2);
    assert_string_equal(fw.series[0], "__name__=g_seconds,i=0,job=svc, 0@1000");
    assert_string_equal(fw.series[199], "__name__=g_seconds,i=199,job=svc, 199@1199");
    assert_string_equal(fw.series[200], "__name__=h_bucket,job=svc,le=0.5, 1@5");
    assert_string_equal(fw.series[201], "__name__=h_bucket,job=svc,le=+Inf, 3@5");
    assert_string_equal(fw.series[202], "__name__=h_sum,job=svc, 1.5@5");
    assert_string_equal(fw.series[203], "__name__=h_count,job=svc, 3@5");
    assert_string_equal(fw.series[204], "__name__=target_info,host_name=h,job=svc, 1@1199");
    assert_string_equal(fw.meta[0], "2 g_seconds a gauge s");
    assert_string_equal(fw.meta[1], "3 h  ");

    static const size_t bounds[] = {1, 60, 100, 300, 1000, 4096};
    for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
        prw_stats_t st2 = {0};
        prw_part_t *parts = NULL;
        size_t n = 0;
        assert_int_equal(prw_translate(&CFG, req, bounds[k], &parts, &n, &st2), 0);
        assert_true(n > 1);
        size_t total = 0;
        for (size_t p = 0; p < n; p++)
            total += parts[p].len;
        /* Parts are filled greedily: two neighbours never fit in one. */
        assert_true(n <= 2 * whole[0].len / bounds[k] + 1);
        assert_true(total == whole[0].len); /* no byte more or less than the whole */
        flat_t fp = flatten(parts, n, bounds[k]);
        assert_int_equal(fp.n_series, fw.n_series);
        assert_int_equal(fp.n_meta, fw.n_meta);
        for (size_t i = 0; i < fw.n_series; i++)
            assert_string_equal(fp.series[i], fw.series[i]);
        for (size_t i = 0; i < fw.n_meta; i++)
            assert_string_equal(fp.meta[i], fw.meta[i]);
        if (bounds[k] == 1) assert_int_equal(n, 205 + 2); /* one entry a part */
        flat_free(&fp);
        prw_parts_free(parts, n);
    }
    flat_free(&fw);
    prw_parts_free(whole, n_whole);
    blocks_free(&b);
}

static void test_samples_sorted_and_stale(void **state)
{
    (void)state;
    blocks_t b = {0};
    /* One series, three points out of order, the newest flagged "no recorded
     * value"; a delta sum and an exponential histogram, both dropped. */
    MetricsReq *req = decode_json(
        &b, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
            "{\"name\":\"t\",\"gauge\":{\"dataPoints\":["
            "{\"asDouble\":2,\"timeUnixNano\":\"2000000\"},"
            "{\"timeUnixNano\":\"3000000\",\"flags\":1},"
            "{\"asDouble\":1,\"timeUnixNano\":\"1000000\"}]}},"
            "{\"name\":\"d\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
            "\"dataPoints\":[{\"asInt\":\"1\"},{\"asInt\":\"2\"}]}},"
            "{\"name\":\"e\",\"exponentialHistogram\":{\"aggregationTemporality\":2,"
            "\"dataPoints\":[{\"count\":\"1\"}]}}]}]}]}");
    prw_cfg_t cfg = CFG;
    cfg.send_metadata = false;
    prw_stats_t st = {0};
    prw_part_t *parts = NULL;
    size_t n = 0;
    assert_int_equal(prw_translate(&cfg, req, 3000000, &parts, &n, &st), 0);
    assert_int_equal(n, 1);
    assert_int_equal(st.dropped_temporal, 2);
    assert_int_equal(st.dropped_exphist, 1);
    assert_int_equal(st.series, 1); /* no resource attributes: no target_info */
    Prometheus__WriteRequest *w =
        prometheus__write_request__unpack(NULL, parts[0].len, parts[0].data);
    assert_non_null(w);
    assert_int_equal(w->n_timeseries, 1);
    const Prometheus__TimeSeries *ts = w->timeseries[0];
    assert_int_equal(ts->n_samples, 3);
    assert_int_equal(ts->samples[0]->timestamp, 1);
    assert_true(ts->samples[0]->value == 1.0);
    assert_int_equal(ts->samples[1]->timestamp, 2);
    assert_true(ts->samples[1]->value == 2.0);
    assert_int_equal(ts->samples[2]->timestamp, 3);
    uint64_t bits;
    memcpy(&bits, &ts->samples[2]->value, sizeof(bits));
    assert_true(bits == 0x7ff0000000000002ull); /* Prometheus' StaleNaN */
    prometheus__write_request__free_unpacked(w, NULL);
    prw_parts_free(parts, n);

    /* Nothing to write: no part. */
    MetricsReq *none = decode_json(
        &b, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
            "{\"name\":\"d\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
            "\"dataPoints\":[{\"asInt\":\"1\"}]}}]}]}]}");
    assert_int_equal(prw_translate(&cfg, none, 3000000, &parts, &n, &st), 0);
    assert_int_equal(n, 0);
    prw_parts_free(parts, n);
    blocks_free(&b);
}

static void test_float_label(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {100, "100"},
        {0.005, "0.005"},
        {2.5, "2.5"},
        {-0.5, "-0.5"},
        {1e-7, "0.0000001"},
        {0.1, "0.1"},
        {1e21, "1000000000000000000000"},
        {123456.789, "123456.789"},
        {0.99, "0.99"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
        {5e-324, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        syc_prom_buf_t b;
        syc_prom_buf_init(&b, 0);
        syc_prom_buf_str(&b, "");
        prw_float_label(&b, cases[i].v);
        if (cases[i].want) {
            assert_string_equal(b.data, cases[i].want);
        } else {
            /* The smallest denormal: 323 zeros after the point, then 5. */
            assert_int_equal(b.len, 2 + 323 + 1);
            assert_true(strtod(b.data, NULL) == cases[i].v);
        }
        syc_prom_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_by_size),
        cmocka_unit_test(test_samples_sorted_and_stale),
        cmocka_unit_test(test_float_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
