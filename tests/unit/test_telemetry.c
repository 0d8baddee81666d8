/*
 * test_telemetry.c - the metrics registry: registration, deduplication, counters,
 * gauges and function gauges, the exact Prometheus text, label escaping,
 * concurrent adds, the process metrics and the /metrics endpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "telemetry.h"

/* Every test starts and ends with an empty registry, so that LSan sees no leak. */
static int teardown(void **state)
{
    (void)state;
    sy__telemetry_shutdown();
    return 0;
}

/* Registry errors are logged; keep them out of the test output. */
static int quiet(void **state)
{
    (void)state;
    sy__log_set_level(SY_LOG_ERROR + 1);
    return 0;
}

static void assert_render(const char *expected)
{
    size_t len = 0;
    char *text = sy__metrics_render(&len);
    assert_non_null(text);
    assert_string_equal(text, expected);
    assert_int_equal(len, strlen(expected));
    free(text);
}

static void test_empty(void **state)
{
    (void)state;
    assert_render("");
}

static void test_counter_and_gauge(void **state)
{
    (void)state;
    sy_metric_t *c = sy__metric_register("receiver_accepted_spans", "Spans accepted.",
                                         SY_METRIC_COUNTER, "receiver=\"otlp\",transport=\"http\"");
    sy_metric_t *g = sy__metric_register("queue_size", "Items in the queue.", SY_METRIC_GAUGE,
                                         "pipeline=\"traces\"");
    sy_metric_t *t =
        sy__metric_register("already_total", "Has the suffix.", SY_METRIC_COUNTER, NULL);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(t);
    sy__metric_add(c, 5);
    sy__metric_add(c, 2);
    sy__metric_set(g, 10);
    sy__metric_add(g, -3);
    assert_int_equal(sy__metric_value(c), 7);
    assert_int_equal(sy__metric_value(g), 7);
    assert_int_equal(sy__metric_value(t), 0);
    assert_render("# HELP switchyard_already_total Has the suffix.\n"
                  "# TYPE switchyard_already_total counter\n"
                  "switchyard_already_total 0\n"
                  "# HELP switchyard_queue_size Items in the queue.\n"
                  "# TYPE switchyard_queue_size gauge\n"
                  "switchyard_queue_size{pipeline=\"traces\"} 7\n"
                  "# HELP switchyard_receiver_accepted_spans_total Spans accepted.\n"
                  "# TYPE switchyard_receiver_accepted_spans_total counter\n"
                  "switchyard_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"http\"} "
                  "7\n");
}

/* The same name and labels give the same metric; other labels join its family. */
static void test_dedupe_and_grouping(void **state)
{
    (void)state;
    sy_metric_t *a = sy__metric_register("exporter_sent_spans", "Spans sent.", SY_METRIC_COUNTER,
                                         "exporter=\"otlp\"");
    sy_metric_t *b = sy__metric_register("exporter_sent_spans", "Other help is ignored.",
                                         SY_METRIC_COUNTER, "exporter=\"otlp\"");
    sy_metric_t *d =
        sy__metric_register("exporter_sent_spans", "x", SY_METRIC_COUNTER, "exporter=\"debug\"");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, d);
    sy__metric_add(a, 1);
    sy__metric_add(b, 1);
    sy__metric_add(d, 4);
    assert_render("# HELP switchyard_exporter_sent_spans_total Spans sent.\n"
                  "# TYPE switchyard_exporter_sent_spans_total counter\n"
                  "switchyard_exporter_sent_spans_total{exporter=\"debug\"} 4\n"
                  "switchyard_exporter_sent_spans_total{exporter=\"otlp\"} 2\n");
    /* One name, two types: refused. */
    assert_null(sy__metric_register("exporter_sent_spans_total", "x", SY_METRIC_GAUGE, NULL));
}

static void test_invalid(void **state)
{
    (void)state;
    assert_null(sy__metric_register(NULL, "x", SY_METRIC_GAUGE, NULL));
    assert_null(sy__metric_register("", "x", SY_METRIC_GAUGE, NULL));
    assert_null(sy__metric_register("9lives", "x", SY_METRIC_GAUGE, NULL));
    assert_null(sy__metric_register("has-dash", "x", SY_METRIC_GAUGE, NULL));
    assert_null(sy__metric_register("ok", "x", (sy_metric_type_t)7, NULL));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(sy__metric_register(longname, "x", SY_METRIC_GAUGE, NULL));
    static const char *const bad_labels[] = {
        "a=\"b",          "a=b",        "a=\"b\",",      "=\"b\"",    "1a=\"b\"",
        "a=\"b\"c=\"d\"", "a=\"b\\x\"", "a=\"line\nx\"", "a=\"b\"\"", "a=\"b\\\"",
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        assert_null(sy__metric_register("ok", "x", SY_METRIC_GAUGE, bad_labels[i]));
    assert_null(sy__metric_register_fn("ok", "x", SY_METRIC_GAUGE, NULL, NULL, NULL));
    /* NULL handles are ignored rather than crashing the caller. */
    sy__metric_add(NULL, 1);
    sy__metric_set(NULL, 1);
    assert_int_equal(sy__metric_value(NULL), 0);
    sy__metric_unregister(NULL);
    assert_render("");
}

static void test_label_escaping(void **state)
{
    (void)state;
    char buf[128];
    assert_non_null(sy__metric_labels(buf, sizeof buf, "receiver", "otlp/\"a\\b\"\nc", "transport",
                                      "http", NULL));
    assert_string_equal(buf, "receiver=\"otlp/\\\"a\\\\b\\\"\\nc\",transport=\"http\"");
    sy_metric_t *m = sy__metric_register("receiver_refused_spans", "Refused.\nSecond \\ line.",
                                         SY_METRIC_COUNTER, buf);
    assert_non_null(m);
    sy__metric_add(m, 3);
    assert_render("# HELP switchyard_receiver_refused_spans_total Refused.\\nSecond \\\\ line.\n"
                  "# TYPE switchyard_receiver_refused_spans_total counter\n"
                  "switchyard_receiver_refused_spans_total{receiver=\"otlp/\\\"a\\\\b\\\"\\nc\","
                  "transport=\"http\"} 3\n");

    assert_non_null(sy__metric_labels(buf, sizeof buf, NULL));
    assert_string_equal(buf, "");
    assert_null(sy__metric_labels(buf, sizeof buf, "bad-key", "v", NULL));
    assert_null(sy__metric_labels(buf, 12, "key", "0123456789", NULL));
    assert_string_equal(buf, "");
}

/* ABI 1.7: a labelled metric of an instance, its series found once each, values
 * escaped, the family rendered with the instance's labels first. */
static void test_labelled(void **state)
{
    (void)state;
    static const char *const names[] = {"policy", "sampled"};
    const char *inst = "processor=\"tail_sampling/x\",pipeline=\"traces\"";
    sy_labelled_metric_t *lm =
        sy__metric_register_labelled("processor_tail_sampling_count_traces_sampled", "Per policy.",
                                     SY_METRIC_COUNTER, inst, names, 2);
    assert_non_null(lm);
    /* The same again is the same handle (a reload keeps counting). */
    assert_ptr_equal(sy__metric_register_labelled("processor_tail_sampling_count_traces_sampled",
                                                  "Per policy.", SY_METRIC_COUNTER, inst, names, 2),
                     lm);
    const char *v1[] = {"e\"rr\\s\nx", "true"}, *v2[] = {"slow", "false"}, *v3[] = {NULL, "true"};
    sy_metric_t *a = sy__metric_series(lm, v1), *b = sy__metric_series(lm, v2);
    sy_metric_t *c = sy__metric_series(lm, v3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_equal(sy__metric_series(lm, v1), a);
    assert_ptr_not_equal(a, b);
    sy__metric_add(a, 2);
    sy__metric_add(b, 5);
    sy__metric_add(c, 1);
    assert_render(
        "# HELP switchyard_processor_tail_sampling_count_traces_sampled_total Per policy.\n"
        "# TYPE switchyard_processor_tail_sampling_count_traces_sampled_total counter\n"
        "switchyard_processor_tail_sampling_count_traces_sampled_total{processor=\""
        "tail_sampling/x\",pipeline=\"traces\",policy=\"\",sampled=\"true\"} 1\n"
        "switchyard_processor_tail_sampling_count_traces_sampled_total{processor=\""
        "tail_sampling/x\",pipeline=\"traces\",policy=\"e\\\"rr\\\\s\\nx\","
        "sampled=\"true\"} 2\n"
        "switchyard_processor_tail_sampling_count_traces_sampled_total{processor=\""
        "tail_sampling/x\",pipeline=\"traces\",policy=\"slow\",sampled=\"false\"} 5\n");
    /* Without instance labels, and a gauge. */
    static const char *const one[] = {"k"};
    sy_labelled_metric_t *g =
        sy__metric_register_labelled("x_gauge", "G.", SY_METRIC_GAUGE, NULL, one, 1);
    const char *gv[] = {"v"};
    sy__metric_set(sy__metric_series(g, gv), -4);
    size_t len;
    char *text = sy__metrics_render(&len);
    assert_non_null(
        strstr(text, "# TYPE switchyard_x_gauge gauge\nswitchyard_x_gauge{k=\"v\"} -4\n"));
    free(text);
}

static void test_labelled_invalid(void **state)
{
    (void)state;
    const char *inst = "processor=\"p\"";
    static const char *const dup[] = {"a", "a"}, *const reserved[] = {"__name"},
                             *const clash[] = {"processor"}, *const bad[] = {"a-b"},
                             *const ok[] = {"a"};
    assert_null(sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, dup, 2));
    assert_null(sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, reserved, 1));
    assert_null(sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, clash, 1));
    assert_null(sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, bad, 1));
    assert_null(sy__metric_register_labelled("bad name", "", SY_METRIC_COUNTER, inst, ok, 1));
    assert_null(sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, NULL, 1));
    assert_null(sy__metric_series(NULL, NULL));
    sy_labelled_metric_t *lm =
        sy__metric_register_labelled("m", "", SY_METRIC_COUNTER, inst, ok, 1);
    assert_non_null(lm);
    assert_null(sy__metric_series(lm, NULL));
    /* Values past the label list's bound. */
    char *big = malloc(SY__METRIC_LABELS_MAX + 10);
    assert_non_null(big);
    memset(big, 'v', SY__METRIC_LABELS_MAX + 9);
    big[SY__METRIC_LABELS_MAX + 9] = '\0';
    const char *bv[] = {big};
    assert_null(sy__metric_series(lm, bv));
    free(big);
    /* No labels at all is a plain metric. */
    sy_labelled_metric_t *none =
        sy__metric_register_labelled("n", "", SY_METRIC_COUNTER, inst, NULL, 0);
    assert_non_null(none);
    assert_ptr_equal(sy__metric_series(none, NULL),
                     sy__metric_register("n", "", SY_METRIC_COUNTER, inst));
    /* A family registered as a counter (exposed t_total) refuses a gauge series of
     * the same exposed name. */
    sy__metric_register("t", "", SY_METRIC_COUNTER, NULL);
    sy_labelled_metric_t *t =
        sy__metric_register_labelled("t_total", "", SY_METRIC_GAUGE, NULL, ok, 1);
    const char *tv[] = {"x"};
    assert_non_null(t);
    assert_null(sy__metric_series(t, tv));
}

static int64_t fn_value(void *arg)
{
    return *(int64_t *)arg;
}

static double fn_double(void *arg)
{
    return *(double *)arg;
}

static void test_function_metrics(void **state)
{
    (void)state;
    int64_t size = 17, other = 5;
    double seconds = 0.25;
    sy_metric_t *m = sy__metric_register_fn("queue_size", "Size.", SY_METRIC_GAUGE,
                                            "pipeline=\"traces\"", fn_value, &size);
    sy_metric_t *d = sy__metric_register_fn_double("busy_seconds", "Busy.", SY_METRIC_COUNTER, NULL,
                                                   fn_double, &seconds);
    assert_non_null(m);
    assert_non_null(d);
    assert_int_equal(sy__metric_value(m), 17);
    size = 18;
    assert_render("# HELP switchyard_busy_seconds_total Busy.\n"
                  "# TYPE switchyard_busy_seconds_total counter\n"
                  "switchyard_busy_seconds_total 0.25\n"
                  "# HELP switchyard_queue_size Size.\n"
                  "# TYPE switchyard_queue_size gauge\n"
                  "switchyard_queue_size{pipeline=\"traces\"} 18\n");
    /* Registering again (a rebuilt queue) keeps the metric and takes the new source. */
    assert_ptr_equal(sy__metric_register_fn("queue_size", "Size.", SY_METRIC_GAUGE,
                                            "pipeline=\"traces\"", fn_value, &other),
                     m);
    assert_int_equal(sy__metric_value(m), 5);
    seconds = 1.0 / 3.0;
    size_t len;
    char *text = sy__metrics_render(&len);
    assert_non_null(strstr(text, "switchyard_busy_seconds_total 0.3333333333333333\n"));
    free(text);
    sy__metric_unregister(d);
    sy__metric_unregister(m);
    assert_render("");
}

#define ADD_THREADS 4
#define ADDS        200000

static void *add_thread(void *arg)
{
    for (int i = 0; i < ADDS; i++)
        sy__metric_add(arg, 1);
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    sy_metric_t *m = sy__metric_register("spans", "n", SY_METRIC_COUNTER, NULL);
    pthread_t threads[ADD_THREADS];
    for (int i = 0; i < ADD_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, add_thread, m), 0);
    for (int i = 0; i < ADD_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(sy__metric_value(m), (int64_t)ADD_THREADS * ADDS);
}

typedef struct reg_arg_s {
    int id;
    sy_metric_t *got[64];
} reg_arg_t;

static void *register_thread(void *p)
{
    reg_arg_t *arg = p;
    char labels[64];
    for (int i = 0; i < 64; i++) {
        snprintf(labels, sizeof labels, "n=\"%d\"", i);
        arg->got[i] = sy__metric_register("shared", "s", SY_METRIC_GAUGE, labels);
        sy__metric_add(arg->got[i], 1);
    }
    return NULL;
}

/* Threads registering the same metrics at once all get the same handles. */
static void test_concurrent_registration(void **state)
{
    (void)state;
    reg_arg_t args[ADD_THREADS];
    pthread_t threads[ADD_THREADS];
    for (int i = 0; i < ADD_THREADS; i++) {
        args[i].id = i;
        assert_int_equal(pthread_create(&threads[i], NULL, register_thread, &args[i]), 0);
    }
    for (int i = 0; i < ADD_THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int k = 0; k < 64; k++) {
        assert_non_null(args[0].got[k]);
        for (int i = 1; i < ADD_THREADS; i++)
            assert_ptr_equal(args[i].got[k], args[0].got[k]);
        assert_int_equal(sy__metric_value(args[0].got[k]), ADD_THREADS);
    }
}

static void test_process_metrics(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(sy__telemetry_start(NULL, err, sizeof err), 0);
    assert_int_equal(sy__telemetry_port(), 0);
    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "# TYPE switchyard_process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE switchyard_process_uptime_seconds gauge\n"));
    assert_non_null(strstr(text, "# TYPE switchyard_process_start_time_seconds gauge\n"));
    const char *rss = strstr(text, "\nswitchyard_process_resident_memory_bytes ");
    assert_non_null(rss);
    assert_true(strtoll(rss + strlen("\nswitchyard_process_resident_memory_bytes "), NULL, 10) >
                1024 * 1024 / 2);
    const char *start = strstr(text, "\nswitchyard_process_start_time_seconds ");
    assert_non_null(start);
    double t = strtod(start + strlen("\nswitchyard_process_start_time_seconds "), NULL);
    assert_true(t > 1.6e9);
    free(text);
}

/* Sends one request to 127.0.0.1:port and returns the whole response. */
static char *http_get(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t n;
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void test_endpoint(void **state)
{
    (void)state;
    char err[256] = "";
    sy_metric_t *m = sy__metric_register("receiver_accepted_spans", "Spans accepted.",
                                         SY_METRIC_COUNTER, "receiver=\"otlp\"");
    sy__metric_add(m, 9);
    int rc = sy__telemetry_start("127.0.0.1:0", err, sizeof err);
    if (rc != 0) fail_msg("start: %s", err);
    int port = sy__telemetry_port();
    assert_true(port > 0);
    /* Starting twice is refused. */
    assert_int_not_equal(sy__telemetry_start("127.0.0.1:0", err, sizeof err), 0);

    char *resp = http_get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(resp, "text/plain; version=0.0.4; charset=utf-8"));
    assert_non_null(
        strstr(resp, "\nswitchyard_receiver_accepted_spans_total{receiver=\"otlp\"} 9\n"));
    assert_non_null(strstr(resp, "\nswitchyard_process_resident_memory_bytes "));
    free(resp);

    resp = http_get(port, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_true(strncmp(resp, "HTTP/1.1 404", 12) == 0);
    free(resp);
    resp = http_get(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n");
    assert_true(strncmp(resp, "HTTP/1.1 405", 12) == 0);
    free(resp);

    sy__telemetry_stop();
    assert_int_equal(sy__telemetry_port(), 0);
    sy__telemetry_stop(); /* a second stop does nothing */

    /* The port is free again, and a bad endpoint is refused with a sentence. */
    assert_int_not_equal(sy__telemetry_start("not an endpoint", err, sizeof err), 0);
    assert_true(strlen(err) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_empty, teardown),
        cmocka_unit_test_teardown(test_counter_and_gauge, teardown),
        cmocka_unit_test_teardown(test_dedupe_and_grouping, teardown),
        cmocka_unit_test_teardown(test_invalid, teardown),
        cmocka_unit_test_teardown(test_label_escaping, teardown),
        cmocka_unit_test_teardown(test_labelled, teardown),
        cmocka_unit_test_setup_teardown(test_labelled_invalid, quiet, teardown),
        cmocka_unit_test_teardown(test_function_metrics, teardown),
        cmocka_unit_test_teardown(test_concurrent_adds, teardown),
        cmocka_unit_test_teardown(test_concurrent_registration, teardown),
        cmocka_unit_test_teardown(test_process_metrics, teardown),
        cmocka_unit_test_teardown(test_endpoint, teardown),
    };
    return cmocka_run_group_tests(tests, quiet, NULL);
}
