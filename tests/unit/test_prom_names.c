/*
 * test_prom_names.c - the `prometheus` exporter's pieces that need no host: the
 * translation of OTLP names, units and attribute keys into Prometheus names (cases
 * from the collector's translator, github.com/prometheus/otlptranslator), the
 * number formats, the Accept negotiation, and the store and renderer driven by
 * OTLP/JSON requests, compared with the exact exposition text.
 *
 * The plugin's sources are compiled into this test (they are static-free modules
 * with no host dependency), so the test exercises exactly the code of the .so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_json.h"

#include "../../plugins/common/prom_buf.c"
#include "../../plugins/common/prom_names.c"
#include "../../plugins/exporters/prometheus/prom_render.c"
#include "../../plugins/exporters/prometheus/prom_store.c"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;

#define METRICS_REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)

/* ------------------------------------------------------------------------ */
/* Metric, unit and label names                                              */
/* ------------------------------------------------------------------------ */

typedef struct name_case_s {
    const char *ns;
    bool suffixes, utf8;
    const char *name, *unit;
    syc_prom_mtype_t type;
    const char *want; /* NULL: refused */
} name_case_t;

#define ESC_SFX  true, false  /* UnderscoreEscapingWithSuffixes */
#define ESC_NSFX false, false /* UnderscoreEscapingWithoutSuffixes */
#define UTF_SFX  true, true   /* NoUTF8EscapingWithSuffixes */
#define UTF_NSFX false, true  /* NoTranslation */

static void check_name(const name_case_t *c)
{
    syc_prom_namer_t n = {.ns = c->ns ? c->ns : "", .suffixes = c->suffixes, .utf8 = c->utf8};
    syc_prom_buf_t b;
    syc_prom_buf_init(&b, 0);
    syc_prom_buf_str(&b, "x"); /* names are appended: check that nothing before is touched */
    int rc = syc_prom_metric_name(&b, &n, c->name, c->unit, c->type);
    if (c->want == NULL) {
        if (rc != -1 || strcmp(b.data, "x") != 0)
            fail_msg("%s [%s] should be refused, got \"%s\"", c->name, c->unit, b.data + 1);
    } else if (rc != 0 || strcmp(b.data + 1, c->want) != 0) {
        fail_msg("%s [%s] (ns %s, sfx %d, utf8 %d): got \"%s\" (rc %d), want \"%s\"", c->name,
                 c->unit, n.ns, c->suffixes, c->utf8, rc == 0 ? b.data + 1 : "", rc, c->want);
    }
    syc_prom_buf_free(&b);
}

static void test_metric_names(void **state)
{
    (void)state;
    static const name_case_t cases[] = {
        /* The Docker CLI's metric and its neighbours. */
        {NULL, ESC_SFX, "command.time", "ms", SYC_PROM_MT_COUNTER,
         "command_time_milliseconds_total"},
        {NULL, ESC_SFX, "command.time", "ms", SYC_PROM_MT_GAUGE, "command_time_milliseconds"},
        {NULL, ESC_SFX, "command.time", "ms", SYC_PROM_MT_HISTOGRAM, "command_time_milliseconds"},
        /* Without suffixes, escaping. */
        {NULL, ESC_NSFX, "simple_metric", "", SYC_PROM_MT_GAUGE, "simple_metric"},
        {NULL, ESC_NSFX, "metric@with#special$chars", "", SYC_PROM_MT_GAUGE,
         "metric_with_special_chars"},
        {NULL, ESC_NSFX, "123metric", "", SYC_PROM_MT_GAUGE, "_123metric"},
        {"test_namespace", ESC_NSFX, "simple_metric", "", SYC_PROM_MT_GAUGE,
         "test_namespace_simple_metric"},
        {NULL, ESC_NSFX, "", "", SYC_PROM_MT_GAUGE, NULL},
        {NULL, ESC_NSFX, "metric@@##$$name", "", SYC_PROM_MT_GAUGE, "metric_name"},
        {NULL, ESC_NSFX, "@#$%", "", SYC_PROM_MT_GAUGE, NULL},
        {"test@namespace!!??", ESC_NSFX, "metric", "", SYC_PROM_MT_GAUGE, "test_namespace_metric"},
        {NULL, ESC_NSFX, "command.time", "ms", SYC_PROM_MT_COUNTER, "command_time"},
        /* With suffixes, escaping. */
        {NULL, ESC_SFX, "requests", "", SYC_PROM_MT_COUNTER, "requests_total"},
        {NULL, ESC_SFX, "cpu_usage", "1", SYC_PROM_MT_GAUGE, "cpu_usage_ratio"},
        {NULL, ESC_SFX, "items", "1", SYC_PROM_MT_COUNTER, "items_total"},
        {NULL, ESC_SFX, "items", "1", SYC_PROM_MT_UPDOWN, "items"},
        {NULL, ESC_SFX, "response_time", "ms", SYC_PROM_MT_GAUGE, "response_time_milliseconds"},
        {NULL, ESC_SFX, "memory_usage", "By", SYC_PROM_MT_GAUGE, "memory_usage_bytes"},
        {NULL, ESC_SFX, "requests", "1/s", SYC_PROM_MT_GAUGE, "requests_per_second"},
        {NULL, ESC_SFX, "throughput", "By/s", SYC_PROM_MT_GAUGE, "throughput_bytes_per_second"},
        {NULL, ESC_SFX, "custom_metric", "custom_unit", SYC_PROM_MT_GAUGE,
         "custom_metric_custom_unit"},
        {NULL, ESC_SFX, "custom_metric", "{custom}", SYC_PROM_MT_GAUGE, "custom_metric"},
        {NULL, ESC_SFX, "packets", "{packets}", SYC_PROM_MT_COUNTER, "packets_total"},
        {NULL, ESC_SFX, "custom_metric", "By/{custom}", SYC_PROM_MT_GAUGE, "custom_metric_bytes"},
        {NULL, ESC_SFX, "requests_total", "", SYC_PROM_MT_COUNTER, "requests_total"},
        {NULL, ESC_SFX, "cpu_usage_ratio", "1", SYC_PROM_MT_GAUGE, "cpu_usage_ratio"},
        {NULL, ESC_SFX, "response_time_seconds", "s", SYC_PROM_MT_GAUGE, "response_time_seconds"},
        {"app", ESC_SFX, "requests", "1/s", SYC_PROM_MT_COUNTER, "app_requests_per_second_total"},
        {"app", ESC_SFX, "123_requests", "", SYC_PROM_MT_COUNTER, "app_123_requests_total"},
        {NULL, ESC_SFX, "123_requests", "", SYC_PROM_MT_COUNTER, "_123_requests_total"},
        {NULL, ESC_SFX, "metric__with__multiple__underscores", "unit__multiple__underscores",
         SYC_PROM_MT_GAUGE, "metric_with_multiple_underscores_unit_multiple_underscores"},
        {NULL, ESC_SFX, "custom_metric", "unit@with#special/chars", SYC_PROM_MT_GAUGE,
         "custom_metric_unit_with_special_per_chars"},
        {NULL, ESC_SFX, "@#$%", "", SYC_PROM_MT_GAUGE, NULL},
        {NULL, ESC_SFX, "request_duration", "s", SYC_PROM_MT_HISTOGRAM, "request_duration_seconds"},
        {NULL, ESC_SFX, "request_size", "By", SYC_PROM_MT_EXPHISTOGRAM, "request_size_bytes"},
        {NULL, ESC_SFX, "response_time", "ms", SYC_PROM_MT_SUMMARY, "response_time_milliseconds"},
        {NULL, ESC_SFX, "active_connections", "", SYC_PROM_MT_UPDOWN, "active_connections"},
        {NULL, ESC_SFX, "uptime", "d", SYC_PROM_MT_GAUGE, "uptime_days"},
        {NULL, ESC_SFX, "duration", "h", SYC_PROM_MT_GAUGE, "duration_hours"},
        {NULL, ESC_SFX, "timeout", "min", SYC_PROM_MT_GAUGE, "timeout_minutes"},
        {NULL, ESC_SFX, "latency", "us", SYC_PROM_MT_GAUGE, "latency_microseconds"},
        {NULL, ESC_SFX, "precision_time", "ns", SYC_PROM_MT_GAUGE, "precision_time_nanoseconds"},
        {NULL, ESC_SFX, "cache_size", "KiBy", SYC_PROM_MT_GAUGE, "cache_size_kibibytes"},
        {NULL, ESC_SFX, "memory", "MiBy", SYC_PROM_MT_GAUGE, "memory_mebibytes"},
        {NULL, ESC_SFX, "storage", "GiBy", SYC_PROM_MT_GAUGE, "storage_gibibytes"},
        {NULL, ESC_SFX, "capacity", "TiBy", SYC_PROM_MT_GAUGE, "capacity_tibibytes"},
        {NULL, ESC_SFX, "transfer", "KBy", SYC_PROM_MT_GAUGE, "transfer_kilobytes"},
        {NULL, ESC_SFX, "download", "MBy", SYC_PROM_MT_GAUGE, "download_megabytes"},
        {NULL, ESC_SFX, "backup", "GBy", SYC_PROM_MT_GAUGE, "backup_gigabytes"},
        {NULL, ESC_SFX, "archive", "TBy", SYC_PROM_MT_GAUGE, "archive_terabytes"},
        {NULL, ESC_SFX, "distance", "m", SYC_PROM_MT_GAUGE, "distance_meters"},
        {NULL, ESC_SFX, "voltage", "V", SYC_PROM_MT_GAUGE, "voltage_volts"},
        {NULL, ESC_SFX, "current", "A", SYC_PROM_MT_GAUGE, "current_amperes"},
        {NULL, ESC_SFX, "energy", "J", SYC_PROM_MT_GAUGE, "energy_joules"},
        {NULL, ESC_SFX, "power", "W", SYC_PROM_MT_GAUGE, "power_watts"},
        {NULL, ESC_SFX, "weight", "g", SYC_PROM_MT_GAUGE, "weight_grams"},
        {NULL, ESC_SFX, "temperature", "Cel", SYC_PROM_MT_GAUGE, "temperature_celsius"},
        {NULL, ESC_SFX, "frequency", "Hz", SYC_PROM_MT_GAUGE, "frequency_hertz"},
        {NULL, ESC_SFX, "cpu_usage", "%", SYC_PROM_MT_GAUGE, "cpu_usage_percent"},
        {NULL, ESC_SFX, "requests", "1/m", SYC_PROM_MT_GAUGE, "requests_per_minute"},
        {NULL, ESC_SFX, "events", "1/h", SYC_PROM_MT_GAUGE, "events_per_hour"},
        {NULL, ESC_SFX, "transactions", "1/d", SYC_PROM_MT_GAUGE, "transactions_per_day"},
        {NULL, ESC_SFX, "reports", "1/w", SYC_PROM_MT_GAUGE, "reports_per_week"},
        {NULL, ESC_SFX, "invoices", "1/mo", SYC_PROM_MT_GAUGE, "invoices_per_month"},
        {NULL, ESC_SFX, "renewals", "1/y", SYC_PROM_MT_GAUGE, "renewals_per_year"},
        {NULL, ESC_SFX, "custom", "1/custom_unit", SYC_PROM_MT_GAUGE, "custom_per_custom_unit"},
        {NULL, ESC_SFX, "metric", "By/", SYC_PROM_MT_GAUGE, "metric_bytes"},
        {NULL, ESC_SFX, "metric", " By / s ", SYC_PROM_MT_GAUGE, "metric_bytes_per_second"},
        {NULL, ESC_SFX, "metric", "/", SYC_PROM_MT_GAUGE, "metric"},
        {NULL, ESC_SFX, "http.request.duration", "ms", SYC_PROM_MT_HISTOGRAM,
         "http_request_duration_milliseconds"},
        {NULL, ESC_SFX, "http.requests", "1", SYC_PROM_MT_COUNTER, "http_requests_total"},
        {NULL, ESC_SFX, "system.network.io", "By", SYC_PROM_MT_COUNTER,
         "system_network_io_bytes_total"},
        {NULL, ESC_SFX, "total.requests", "", SYC_PROM_MT_COUNTER, "requests_total"},
        {NULL, ESC_SFX, "métric", "", SYC_PROM_MT_GAUGE, "m_tric"},
        /* UTF-8 allowed (the exporter escapes afterwards, see syc_prom_escape_legacy). */
        {NULL, UTF_NSFX, "métric_with_ñ_chars", "", SYC_PROM_MT_GAUGE, "métric_with_ñ_chars"},
        {"test_namespace", UTF_NSFX, "métric_with_ñ_chars", "", SYC_PROM_MT_GAUGE,
         "test_namespace_métric_with_ñ_chars"},
        {NULL, UTF_SFX, "requêsts", "", SYC_PROM_MT_COUNTER, "requêsts_total"},
        {NULL, UTF_SFX, "cpu_usagé", "1", SYC_PROM_MT_GAUGE, "cpu_usagé_ratio"},
        {NULL, UTF_SFX, "respønse_time", "ms", SYC_PROM_MT_GAUGE, "respønse_time_milliseconds"},
        {NULL, UTF_SFX, "requêsts", "1/s", SYC_PROM_MT_GAUGE, "requêsts_per_second"},
        {"ñamespace", UTF_SFX, "requêsts", "1/s", SYC_PROM_MT_COUNTER,
         "ñamespace_requêsts_per_second_total"},
        {NULL, UTF_SFX, "@#$%", "", SYC_PROM_MT_COUNTER, "@#$%_total"},
        {"test@namespace", UTF_SFX, "metric", "", SYC_PROM_MT_COUNTER,
         "test@namespace_metric_total"},
        {NULL, UTF_SFX, "requests_total", "", SYC_PROM_MT_COUNTER, "requests_total"},
        {NULL, UTF_SFX, "cpu_usage_ratio", "1", SYC_PROM_MT_GAUGE, "cpu_usage_ratio"},
        {NULL, UTF_SFX, "response_time_seconds", "s", SYC_PROM_MT_GAUGE, "response_time_seconds"},
        {NULL, UTF_SFX, "cpu_seconds_total", "s", SYC_PROM_MT_COUNTER, "cpu_seconds_total"},
        {NULL, UTF_SFX, "command.time", "ms", SYC_PROM_MT_COUNTER,
         "command.time_milliseconds_total"},
        {NULL, UTF_NSFX, "http.request.duration", "ms", SYC_PROM_MT_HISTOGRAM,
         "http.request.duration"},
        {NULL, UTF_NSFX, "http.requests", "1", SYC_PROM_MT_COUNTER, "http.requests"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_name(&cases[i]);
}

static void test_unit_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"ms", "milliseconds"},
        {"s", "seconds"},
        {"By", "bytes"},
        {"KiBy", "kibibytes"},
        {"%", "percent"},
        {"1", ""},
        {"{packets}", ""},
        {"By/s", "bytes_per_second"},
        {"1/s", "per_second"},
        {"custom_unit", "custom_unit"},
        {"unit__multiple__underscores", "unit_multiple_underscores"},
        {"unit@with#special/chars", "unit_with_special_per_chars"},
        {"By/{custom}", "bytes"},
        {" By / s ", "bytes_per_second"},
        {"/", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        syc_prom_buf_t b;
        syc_prom_buf_init(&b, 0);
        syc_prom_buf_str(&b, "");
        syc_prom_unit_name(&b, cases[i][0], false);
        if (strcmp(b.data, cases[i][1]) != 0)
            fail_msg("unit \"%s\": got \"%s\", want \"%s\"", cases[i][0], b.data, cases[i][1]);
        syc_prom_buf_free(&b);
    }
}

static void test_label_names(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"command.name", "command_name"},
        {"command.status.code", "command_status_code"},
        {"label:with:colons", "label_with_colons"},
        {"LabelWithCapitalLetters", "LabelWithCapitalLetters"},
        {"label!with&special$chars)", "label_with_special_chars_"},
        {"label_with_foreign_characters_字符", "label_with_foreign_characters_"},
        {"label.with.dots", "label_with_dots"},
        {"123label", "key_123label"},
        {"_label_starting_with_underscore", "_label_starting_with_underscore"},
        {"__label_starting_with_2underscores", "_label_starting_with_2underscores"},
        {"__reserved__", "__reserved__"},
        {"__res.erved__", "__res_erved__"},
        {"regular label", "regular_label"},
        {"a..b", "a_b"},
        {"http.method", "http_method"},
        {"métric", "m_tric"},
        {"ようこそ", NULL},
        {"__", NULL},
        {"...", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        syc_prom_buf_t b;
        syc_prom_buf_init(&b, 0);
        syc_prom_buf_str(&b, "");
        int rc = syc_prom_label_name(&b, cases[i][0], strlen(cases[i][0]), false);
        if (cases[i][1] == NULL) {
            if (rc != -1 || b.len != 0)
                fail_msg("label \"%s\" should be refused, got \"%s\"", cases[i][0], b.data);
        } else if (rc != 0 || strcmp(b.data, cases[i][1]) != 0) {
            fail_msg("label \"%s\": got \"%s\", want \"%s\"", cases[i][0], b.data, cases[i][1]);
        }
        syc_prom_buf_free(&b);
    }
    /* UTF-8 allowed: kept as they are, then escaped one '_' per character. */
    syc_prom_buf_t b;
    syc_prom_buf_init(&b, 0);
    assert_int_equal(syc_prom_label_name(&b, "lab.él", 7, true), 0);
    assert_string_equal(b.data, "lab.él");
    syc_prom_buf_reset(&b);
    syc_prom_escape_legacy(&b, "lab.él", 7, false);
    assert_string_equal(b.data, "lab__l");
    syc_prom_buf_reset(&b);
    syc_prom_escape_legacy(&b, "1a:b", 4, true);
    assert_string_equal(b.data, "_a:b");
    assert_true(syc_prom_is_legacy_name("a_b:c", 5, true));
    assert_false(syc_prom_is_legacy_name("a_b:c", 5, false));
    assert_false(syc_prom_is_legacy_name("1ab", 3, true));
    syc_prom_buf_free(&b);
}

static void test_strategies(void **state)
{
    (void)state;
    assert_int_equal(syc_prom_strategy_parse("UnderscoreEscapingWithSuffixes"), 0);
    assert_int_equal(syc_prom_strategy_parse("NoTranslation"), SYC_PROM_NO_TRANSLATION);
    assert_int_equal(syc_prom_strategy_parse("underscoreescapingwithsuffixes"), -1);
    syc_prom_namer_t n = syc_prom_namer_for(-1, false, NULL);
    assert_false(n.suffixes);
    assert_false(n.utf8);
    n = syc_prom_namer_for(SYC_PROM_UNDERSCORE_ESCAPING_WITH_SUFFIXES, false, "ns");
    assert_true(n.suffixes);
    assert_string_equal(n.ns, "ns");
    n = syc_prom_namer_for(SYC_PROM_NO_UTF8_ESCAPING_WITH_SUFFIXES, false, NULL);
    assert_true(n.suffixes && n.utf8);
    n = syc_prom_namer_for(SYC_PROM_NO_TRANSLATION, true, NULL);
    assert_true(!n.suffixes && n.utf8);
}

/* ------------------------------------------------------------------------ */
/* Numbers, values, negotiation                                              */
/* ------------------------------------------------------------------------ */

static void check_float(void (*fn)(syc_prom_buf_t *, double), double v, const char *want)
{
    syc_prom_buf_t b;
    syc_prom_buf_init(&b, 0);
    syc_prom_buf_str(&b, "");
    fn(&b, v);
    if (strcmp(b.data, want) != 0) fail_msg("%.17g: got \"%s\", want \"%s\"", v, b.data, want);
    syc_prom_buf_free(&b);
}

static void test_floats(void **state)
{
    (void)state;
    /* Go's strconv.FormatFloat(v, 'g', -1, 64). */
    check_float(syc_prom_buf_float_text, 45, "45");
    check_float(syc_prom_buf_float_text, 0, "0");
    check_float(syc_prom_buf_float_text, 1, "1");
    check_float(syc_prom_buf_float_text, -1, "-1");
    check_float(syc_prom_buf_float_text, 0.25, "0.25");
    check_float(syc_prom_buf_float_text, 0.1, "0.1");
    check_float(syc_prom_buf_float_text, 100000, "100000");
    check_float(syc_prom_buf_float_text, 1000000, "1e+06");
    check_float(syc_prom_buf_float_text, 1234567, "1.234567e+06");
    check_float(syc_prom_buf_float_text, 1712345678.5, "1.7123456785e+09");
    check_float(syc_prom_buf_float_text, 0.0001, "0.0001");
    check_float(syc_prom_buf_float_text, 0.00001, "1e-05");
    check_float(syc_prom_buf_float_text, 1e21, "1e+21");
    check_float(syc_prom_buf_float_text, 1.0 / 3, "0.3333333333333333");
    check_float(syc_prom_buf_float_text, INFINITY, "+Inf");
    check_float(syc_prom_buf_float_text, -INFINITY, "-Inf");
    check_float(syc_prom_buf_float_text, NAN, "NaN");
    /* OpenMetrics: ".0" on integral values. */
    check_float(syc_prom_buf_float_om, 45, "45.0");
    check_float(syc_prom_buf_float_om, 0, "0.0");
    check_float(syc_prom_buf_float_om, 1, "1.0");
    check_float(syc_prom_buf_float_om, 0.5, "0.5");
    check_float(syc_prom_buf_float_om, 1e6, "1e+06");
    check_float(syc_prom_buf_float_om, INFINITY, "+Inf");
    /* pcommon Value.AsString() of doubles. */
    check_float(syc_prom_buf_float_attr, 0.5, "0.5");
    check_float(syc_prom_buf_float_attr, 45, "45");
    check_float(syc_prom_buf_float_attr, 1e6, "1000000");
    check_float(syc_prom_buf_float_attr, 1e21, "1e+21");
    check_float(syc_prom_buf_float_attr, 1e-7, "1e-7");
    check_float(syc_prom_buf_float_attr, 1.5e-10, "1.5e-10");
    check_float(syc_prom_buf_float_attr, 0.000001, "0.000001");
}

static void test_escaping(void **state)
{
    (void)state;
    syc_prom_buf_t b;
    syc_prom_buf_init(&b, 0);
    const char in[] = "a\"b\\c\nd\xff"
                      "e";
    syc_prom_buf_escaped(&b, in, sizeof(in) - 1, true);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd\xEF\xBF\xBD"
                                "e");
    syc_prom_buf_reset(&b);
    syc_prom_buf_escaped(&b, in, sizeof(in) - 1, false);
    assert_string_equal(b.data, "a\"b\\\\c\\nd\xEF\xBF\xBD"
                                "e");
    syc_prom_buf_free(&b);
    /* A bounded buffer fails and stays failed. */
    syc_prom_buf_init(&b, 8);
    syc_prom_buf_str(&b, "12345");
    syc_prom_buf_str(&b, "6789");
    assert_true(b.failed);
    syc_prom_buf_str(&b, "x");
    assert_null(syc_prom_buf_take(&b, NULL));
    syc_prom_buf_free(&b);
}

static void test_accept(void **state)
{
    (void)state;
    /* What Prometheus 2.42 sends. */
    assert_true(prom_accepts_openmetrics(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
    assert_false(prom_accepts_openmetrics(NULL));
    assert_false(prom_accepts_openmetrics("*/*"));
    assert_false(prom_accepts_openmetrics("text/plain;version=0.0.4"));
    assert_false(prom_accepts_openmetrics(
        "text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5"));
    assert_true(prom_accepts_openmetrics("application/openmetrics-text"));
    assert_false(prom_accepts_openmetrics("application/openmetrics-text;version=2.0.0"));
    assert_false(prom_accepts_openmetrics(
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
        "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"));
}

/* ------------------------------------------------------------------------ */
/* Store and render                                                          */
/* ------------------------------------------------------------------------ */

typedef struct rec_s {
    void **ptrs;
    size_t n, cap;
} rec_t;

static void *rec_alloc(void *data, size_t size)
{
    rec_t *r = data;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        void **p = realloc(r->ptrs, cap * sizeof(*p));
        if (!p) return NULL;
        r->ptrs = p;
        r->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (m) r->ptrs[r->n++] = m;
    return m;
}

static void rec_free(void *data, void *p)
{
    (void)data;
    (void)p; /* an arena: everything goes in rec_clear() */
}

static void rec_clear(rec_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->ptrs[i]);
    free(r->ptrs);
    memset(r, 0, sizeof(*r));
}

typedef struct fixture_s {
    prom_store_t store;
    rec_t rec;
    int warnings[PROM_WARN_COUNT];
} fixture_t;

static void on_warn(void *arg, prom_warn_t what, const char *msg)
{
    (void)msg;
    ((fixture_t *)arg)->warnings[what]++;
}

static fixture_t *fixture_new(prom_store_cfg_t cfg)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    if (!cfg.namer.ns) cfg.namer.ns = "";
    if (!cfg.expiration_ms) cfg.expiration_ms = 300000;
    cfg.warn = on_warn;
    cfg.warn_arg = f;
    prom_store_init(&f->store, &cfg);
    return f;
}

static void fixture_free(fixture_t *f)
{
    prom_store_free(&f->store);
    rec_clear(&f->rec);
    free(f);
}

static size_t add_json(fixture_t *f, const char *json, uint64_t now_ms)
{
    ProtobufCAllocator a = {.alloc = rec_alloc, .free = rec_free, .allocator_data = &f->rec};
    char err[256] = "";
    MetricsReq *req = (MetricsReq *)syc_otlp_json_decode(METRICS_REQ_DESC, (const uint8_t *)json,
                                                         strlen(json), &a, err, sizeof(err));
    if (!req) fail_msg("test JSON does not decode: %s", err);
    return prom_store_add(&f->store, req, now_ms);
}

static char *render(fixture_t *f, bool om, bool exemplars, bool timestamps)
{
    prom_render_opts_t o = {.openmetrics = om,
                            .exemplars = exemplars,
                            .timestamps = timestamps,
                            .target_info_name = "target_info"};
    syc_prom_buf_t b;
    syc_prom_buf_init(&b, 0);
    syc_prom_buf_str(&b, "");
    assert_int_equal(prom_render(&f->store, &o, &b), 0);
    return syc_prom_buf_take(&b, NULL);
}

static void expect_render(fixture_t *f, bool om, const char *want)
{
    char *got = render(f, om, false, false);
    if (strcmp(got, want) != 0) fail_msg("exposition differs; got:\n%s\nwant:\n%s", got, want);
    free(got);
}

#define RESOURCE_DOCKER                                                                    \
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":" \
    "\"docker\"}},{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"i-1\"}},"  \
    "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h1\"}}]},"

#define COMMAND_TIME_ATTRS                                                           \
    "\"attributes\":[{\"key\":\"command.name\",\"value\":{\"stringValue\":\"ps\"}}," \
    "{\"key\":\"command.status.code\",\"value\":{\"intValue\":\"0\"}},"              \
    "{\"key\":\"command.stderr.isatty\",\"value\":{\"boolValue\":true}},"            \
    "{\"key\":\"command.stdin.isatty\",\"value\":{\"boolValue\":false}},"            \
    "{\"key\":\"command.stdout.isatty\",\"value\":{\"boolValue\":true}}]"

static const char docker_json[] =
    "{\"resourceMetrics\":[" RESOURCE_DOCKER
    "\"scopeMetrics\":[{\"scope\":{\"name\":\"github.com/docker/cli\"},\"metrics\":[{\"name\":"
    "\"command.time\",\"unit\":\"ms\",\"description\":\"Measures the duration of the docker "
    "command\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[{"
    "\"asInt\":\"45\",\"startTimeUnixNano\":\"1000000000\",\"timeUnixNano\":"
    "\"2000000000\"," COMMAND_TIME_ATTRS "}]}}]}]}]}";

#define DOCKER_LABELS                                                                      \
    "command_name=\"ps\",command_status_code=\"0\",command_stderr_isatty=\"true\","        \
    "command_stdin_isatty=\"false\",command_stdout_isatty=\"true\",instance=\"i-1\","      \
    "job=\"docker\",otel_scope_name=\"github.com/docker/cli\",otel_scope_schema_url=\"\"," \
    "otel_scope_version=\"\""

static void test_docker_cli_text(void **state)
{
    (void)state;
    fixture_t *f = fixture_new((prom_store_cfg_t){.namer = {.suffixes = true}});
    assert_int_equal(add_json(f, docker_json, 1000), 1);
    expect_render(f, false,
                  "# HELP command_time_milliseconds_total Measures the duration of the docker "
                  "command\n"
                  "# TYPE command_time_milliseconds_total counter\n"
                  "command_time_milliseconds_total{" DOCKER_LABELS "} 45\n"
                  "# HELP target_info Target metadata\n"
                  "# TYPE target_info gauge\n"
                  "target_info{host_name=\"h1\",instance=\"i-1\",job=\"docker\"} 1\n");
    expect_render(f, true,
                  "# HELP command_time_milliseconds Measures the duration of the docker "
                  "command\n"
                  "# TYPE command_time_milliseconds counter\n"
                  "command_time_milliseconds_total{" DOCKER_LABELS "} 45.0\n"
                  "# HELP target_info Target metadata\n"
                  "# TYPE target_info gauge\n"
                  "target_info{host_name=\"h1\",instance=\"i-1\",job=\"docker\"} 1.0\n"
                  "# EOF\n");
    /* The same point again changes nothing; an older one is ignored. */
    assert_int_equal(add_json(f, docker_json, 2000), 1);
    assert_int_equal(f->store.series.count, 1);
    fixture_free(f);
}

static void test_delta_and_types(void **state)
{
    (void)state;
    fixture_t *f = fixture_new((prom_store_cfg_t){.namer = {.suffixes = true}});
    /* No service.name: no job, no instance, no target_info. */
    static const char first[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"requests\",\"unit\":\"{request}\",\"sum\":{\"aggregationTemporality\":1,"
        "\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"3\",\"startTimeUnixNano\":\"100\","
        "\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"queue.size\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":false,"
        "\"dataPoints\":[{\"asDouble\":-2.5,\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"dropped.delta.updown\",\"sum\":{\"aggregationTemporality\":1,"
        "\"dataPoints\":[{\"asInt\":\"1\",\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"dropped.unspecified\",\"sum\":{\"isMonotonic\":true,"
        "\"dataPoints\":[{\"asInt\":\"1\",\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"exp\",\"exponentialHistogram\":{\"aggregationTemporality\":2,"
        "\"dataPoints\":[{\"count\":\"1\",\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"http.duration\",\"unit\":\"s\",\"histogram\":{\"aggregationTemporality\":1,"
        "\"dataPoints\":[{\"count\":\"4\",\"sum\":2.5,\"bucketCounts\":[\"1\",\"2\",\"1\"],"
        "\"explicitBounds\":[0.5,1],\"startTimeUnixNano\":\"100\",\"timeUnixNano\":\"200\","
        "\"attributes\":[{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/a\\\"b\"}}]}]}},"
        "{\"name\":\"latency\",\"unit\":\"ms\",\"summary\":{\"dataPoints\":[{\"count\":\"3\","
        "\"sum\":12,\"quantileValues\":[{\"quantile\":0.99,\"value\":7},{\"quantile\":0.5,"
        "\"value\":4}],\"timeUnixNano\":\"200\"}]}},"
        "{\"name\":\"cpu.utilization\",\"unit\":\"1\",\"gauge\":{\"dataPoints\":[{\"asDouble\":"
        "0.25,\"timeUnixNano\":\"200\"}]}}"
        "]}]}]}";
    assert_int_equal(add_json(f, first, 1000), 5);
    assert_int_equal(f->warnings[PROM_WARN_EXPHISTOGRAM], 1);
    /* The next deltas start where the kept ones end: they add up. */
    static const char second[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"requests\",\"unit\":\"{request}\",\"sum\":{\"aggregationTemporality\":1,"
        "\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"4\",\"startTimeUnixNano\":\"200\","
        "\"timeUnixNano\":\"300\"}]}},"
        "{\"name\":\"http.duration\",\"unit\":\"s\",\"histogram\":{\"aggregationTemporality\":1,"
        "\"dataPoints\":[{\"count\":\"2\",\"sum\":0.5,\"bucketCounts\":[\"2\",\"0\",\"0\"],"
        "\"explicitBounds\":[0.5,1],\"startTimeUnixNano\":\"200\",\"timeUnixNano\":\"300\","
        "\"attributes\":[{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/a\\\"b\"}}]}]}},"
        "{\"name\":\"queue.size\",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":false,"
        "\"dataPoints\":[{\"asDouble\":9,\"timeUnixNano\":\"100\"}]}}"
        "]}]}]}";
    assert_int_equal(add_json(f, second, 2000), 2);
    expect_render(f, false,
                  "# HELP cpu_utilization_ratio \n"
                  "# TYPE cpu_utilization_ratio gauge\n"
                  "cpu_utilization_ratio{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\"} 0.25\n"
                  "# HELP http_duration_seconds \n"
                  "# TYPE http_duration_seconds histogram\n"
                  "http_duration_seconds_bucket{http_route=\"/a\\\"b\",otel_scope_name=\"\","
                  "otel_scope_schema_url=\"\",otel_scope_version=\"\",le=\"0.5\"} 3\n"
                  "http_duration_seconds_bucket{http_route=\"/a\\\"b\",otel_scope_name=\"\","
                  "otel_scope_schema_url=\"\",otel_scope_version=\"\",le=\"1\"} 5\n"
                  "http_duration_seconds_bucket{http_route=\"/a\\\"b\",otel_scope_name=\"\","
                  "otel_scope_schema_url=\"\",otel_scope_version=\"\",le=\"+Inf\"} 6\n"
                  "http_duration_seconds_sum{http_route=\"/a\\\"b\",otel_scope_name=\"\","
                  "otel_scope_schema_url=\"\",otel_scope_version=\"\"} 3\n"
                  "http_duration_seconds_count{http_route=\"/a\\\"b\",otel_scope_name=\"\","
                  "otel_scope_schema_url=\"\",otel_scope_version=\"\"} 6\n"
                  "# HELP latency_milliseconds \n"
                  "# TYPE latency_milliseconds summary\n"
                  "latency_milliseconds{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\",quantile=\"0.5\"} 4\n"
                  "latency_milliseconds{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\",quantile=\"0.99\"} 7\n"
                  "latency_milliseconds_sum{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\"} 12\n"
                  "latency_milliseconds_count{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\"} 3\n"
                  "# HELP queue_size \n"
                  "# TYPE queue_size gauge\n"
                  "queue_size{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\"} -2.5\n"
                  "# HELP requests_total \n"
                  "# TYPE requests_total counter\n"
                  "requests_total{otel_scope_name=\"\",otel_scope_schema_url=\"\","
                  "otel_scope_version=\"\"} 7\n");
    /* A delta that starts later than the kept one ends is a reset. */
    static const char reset[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"requests\",\"unit\":\"{request}\",\"sum\":{\"aggregationTemporality\":1,"
        "\"isMonotonic\":true,\"dataPoints\":[{\"asInt\":\"2\",\"startTimeUnixNano\":\"500\","
        "\"timeUnixNano\":\"600\"}]}}]}]}]}";
    assert_int_equal(add_json(f, reset, 3000), 1);
    char *text = render(f, false, false, false);
    assert_non_null(strstr(text, "otel_scope_version=\"\"} 2\n"));
    free(text);
    /* Expiration: everything was updated at 1000..3000 ms; at 303000 only the reset
     * counter (3000) stays; at 303001 nothing. */
    prom_store_expire(&f->store, 302000);
    assert_int_equal(f->store.series.count, 2); /* requests and http.duration (2000) */
    prom_store_expire(&f->store, 303001);
    assert_int_equal(f->store.series.count, 0);
    assert_int_equal(f->store.families.count, 0);
    expect_render(f, false, "");
    expect_render(f, true, "# EOF\n");
    fixture_free(f);
}

static void test_options(void **state)
{
    (void)state;
    char *names[] = {"env", "zone"};
    char *values[] = {"prod", "a\"1"};
    fixture_t *f = fixture_new((prom_store_cfg_t){
        .namer = {.ns = "sy", .suffixes = true},
        .n_const_labels = 2,
        .const_label_names = names,
        .const_label_values = values,
        .resource_to_telemetry = true,
        .without_scope_info = true,
        .keep_exemplars = true,
    });
    static const char json[] =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"svc\"}},{\"key\":\"service.namespace\",\"value\":{"
        "\"stringValue\":\"ns\"}},{\"key\":\"k8s.pod.name\",\"value\":{\"stringValue\":\"p\"}},"
        "{\"key\":\"dup\",\"value\":{\"stringValue\":\"resource\"}}]},"
        "\"scopeMetrics\":[{\"metrics\":[{\"name\":\"hits\",\"sum\":{\"aggregationTemporality\":"
        "2,\"isMonotonic\":true,\"dataPoints\":[{\"asDouble\":1.5,\"timeUnixNano\":\"5000000000\","
        "\"attributes\":[{\"key\":\"dup\",\"value\":{\"stringValue\":\"point\"}},{\"key\":"
        "\"a.b\",\"value\":{\"stringValue\":\"x\"}},{\"key\":\"a_b\",\"value\":{\"stringValue\":"
        "\"y\"}},{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},"
        "{\"stringValue\":\"<b>\"}]}}}],"
        "\"exemplars\":[{\"asDouble\":1,\"timeUnixNano\":\"4500000000\",\"traceId\":"
        "\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\"}]}]}}]}]}]}";
    assert_int_equal(add_json(f, json, 1000), 1);
    static const char labels[] =
        "a_b=\"x;y\",arr=\"[1,\\\"\\\\u003cb\\\\u003e\\\"]\",dup=\"resource\",env=\"prod\","
        "job=\"ns/svc\",k8s_pod_name=\"p\",service_name=\"svc\",service_namespace=\"ns\","
        "zone=\"a\\\"1\"";
    char *text = render(f, false, false, true);
    char want[2048];
    snprintf(want, sizeof(want),
             "# HELP sy_hits_total \n# TYPE sy_hits_total counter\nsy_hits_total{%s} 1.5 5000\n",
             labels);
    if (strcmp(text, want) != 0) fail_msg("got:\n%s\nwant:\n%s", text, want);
    free(text);
    text = render(f, true, true, true);
    snprintf(want, sizeof(want),
             "# HELP sy_hits \n# TYPE sy_hits counter\nsy_hits_total{%s} 1.5 5.0 # "
             "{span_id=\"0102030405060708\",trace_id=\"0102030405060708090a0b0c0d0e0f10\"} 1.0 "
             "4.5\n# EOF\n",
             labels);
    if (strcmp(text, want) != 0) fail_msg("got:\n%s\nwant:\n%s", text, want);
    free(text);
    fixture_free(f);
}

static void test_conflicts_and_bad_input(void **state)
{
    (void)state;
    fixture_t *f = fixture_new((prom_store_cfg_t){.namer = {.suffixes = true}, .max_series = 3});
    static const char json[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"x\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\",\"timeUnixNano\":\"1\"}]}},"
        "{\"name\":\"x\",\"summary\":{\"dataPoints\":[{\"count\":\"1\",\"timeUnixNano\":\"1\"}]}},"
        "{\"name\":\"h\",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":["
        "{\"count\":\"1\",\"bucketCounts\":[\"1\"],\"explicitBounds\":[1,2]},"
        "{\"count\":\"1\",\"bucketCounts\":[\"0\",\"1\",\"0\"],\"explicitBounds\":[2,1]}]}},"
        "{\"name\":\"...\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\"}]}},"
        "{\"name\":\"g\",\"gauge\":{\"dataPoints\":[{\"asInt\":\"1\",\"attributes\":[{\"key\":"
        "\"k\",\"value\":{\"intValue\":\"1\"}}]},{\"asInt\":\"2\",\"attributes\":[{\"key\":\"k\","
        "\"value\":{\"intValue\":\"2\"}}]},{\"asInt\":\"3\",\"attributes\":[{\"key\":\"k\","
        "\"value\":{\"intValue\":\"3\"}}]}]}}"
        "]}]}]}";
    assert_int_equal(add_json(f, json, 1000), 3);
    assert_int_equal(f->warnings[PROM_WARN_CONFLICT], 1);
    assert_int_equal(f->warnings[PROM_WARN_DROPPED], 3); /* two histograms, one name */
    assert_int_equal(f->warnings[PROM_WARN_LIMIT], 1);
    assert_int_equal(f->store.series.count, 3);
    /* A point flagged "no recorded value" removes its series. */
    static const char gone[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"x\",\"gauge\":{"
        "\"dataPoints\":[{\"flags\":1,\"timeUnixNano\":\"2\"}]}}]}]}]}";
    add_json(f, gone, 1000);
    assert_int_equal(f->store.series.count, 2);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_unit_names),
        cmocka_unit_test(test_label_names),
        cmocka_unit_test(test_strategies),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_docker_cli_text),
        cmocka_unit_test(test_delta_and_types),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_conflicts_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
