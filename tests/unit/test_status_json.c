/*
 * test_status_json.c - api->status_json() (core/status_json.c) on a whole router
 * in-process, and the per-component rings of last warnings and errors behind it
 * (core/log_recent.c).
 *
 * The router: testgen -> testfault (refuses some) -> batch -> testsink, and the
 * same testgen -> forward (a connector) -> a logs-less traces pipeline -> nop;
 * the document is parsed with yajl and every counter in it compared with the
 * router's own metrics once the data has stopped flowing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <yajl/yajl_tree.h>

#include "engine.h"
#include "log.h"
#include "router_harness.h"
#include "status_json.h"

/* ---- log_recent ----------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_recent_ring(void **state)
{
    (void)state;
    sy__log_recent_reset();
    sy__log_recent_t rec[8];
    assert_int_equal(sy__log_recent("ring", rec, 8), 0);
    sy__log_recent_add("ring", SY_LOG_INFO, 1, "info is not kept", 16);
    sy__log_recent_add("ring", SY_LOG_DEBUG, 1, "nor debug", 9);
    assert_int_equal(sy__log_recent("ring", rec, 8), 0);
    char msg[32];
    for (int i = 0; i < 8; i++) {
        int n = snprintf(msg, sizeof msg, "message %d", i);
        sy__log_recent_add("ring", i % 2 ? SY_LOG_ERROR : SY_LOG_WARN, 100 + i, msg, (size_t)n);
    }
    /* The newest SY__LOG_RECENT_PER_COMPONENT, oldest first. */
    size_t n = sy__log_recent("ring", rec, 8);
    assert_int_equal(n, SY__LOG_RECENT_PER_COMPONENT);
    for (size_t i = 0; i < n; i++) {
        int k = 8 - SY__LOG_RECENT_PER_COMPONENT + (int)i;
        snprintf(msg, sizeof msg, "message %d", k);
        assert_string_equal(rec[i].message, msg);
        assert_int_equal(rec[i].time_unix_ms, 100 + k);
        assert_int_equal(rec[i].level, k % 2 ? SY_LOG_ERROR : SY_LOG_WARN);
    }
    /* Asking for fewer gives the newest ones. */
    assert_int_equal(sy__log_recent("ring", rec, 2), 2);
    assert_string_equal(rec[0].message, "message 6");
    assert_string_equal(rec[1].message, "message 7");
    /* Other components are apart; NULL is "service". */
    assert_int_equal(sy__log_recent("other", rec, 8), 0);
    sy__log_recent_add(NULL, SY_LOG_WARN, 5, "from the service", 16);
    assert_int_equal(sy__log_recent("service", rec, 8), 1);
    assert_int_equal(sy__log_recent(NULL, rec, 8), 1);
    assert_string_equal(rec[0].message, "from the service");
    sy__log_recent_reset();
    assert_int_equal(sy__log_recent("ring", rec, 8), 0);
}

static void test_recent_cut_and_bounded(void **state)
{
    (void)state;
    sy__log_recent_reset();
    char big[1000];
    memset(big, 'x', sizeof big);
    sy__log_recent_add("big", SY_LOG_ERROR, 1, big, sizeof big);
    sy__log_recent_t rec[1];
    assert_int_equal(sy__log_recent("big", rec, 1), 1);
    assert_int_equal(strlen(rec[0].message), SY__LOG_RECENT_MSG_MAX - 1);
    /* A bounded number of components: the 4,097th and later are not kept. */
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "c%d", i);
        sy__log_recent_add(id, SY_LOG_WARN, i, "w", 1);
    }
    assert_int_equal(sy__log_recent("c4094", rec, 1), 1); /* "big" took one place */
    assert_int_equal(sy__log_recent("c4095", rec, 1), 0);
    assert_int_equal(sy__log_recent("c4999", rec, 1), 0);
    sy__log_recent_reset();
    sy__log_recent_add("c4999", SY_LOG_WARN, 1, "w", 1);
    assert_int_equal(sy__log_recent("c4999", rec, 1), 1);
    sy__log_recent_reset();
}

/* The logging functions keep what they write at warn and error, as written after
 * the component column (suppressed counts included), and nothing they filter. */
static void test_recent_from_log(void **state)
{
    (void)state;
    sy__log_recent_reset();
    int64_t t0 = now_ms();
    sy__log("comp/1", SY_LOG_INFO, "not kept");
    sy__log("comp/1", SY_LOG_WARN, "first %d", 1);
    sy__log_suppressed("comp/1", SY_LOG_ERROR, 3, "second\tline\nbreak");
    sy__log_set_level(SY_LOG_ERROR);
    sy__log("comp/1", SY_LOG_WARN, "filtered out");
    sy__log_set_level(SY_LOG_INFO);
    sy__log_recent_t rec[8];
    size_t n = sy__log_recent("comp/1", rec, 8);
    assert_int_equal(n, 2);
    assert_string_equal(rec[0].message, "first 1");
    assert_int_equal(rec[0].level, SY_LOG_WARN);
    assert_string_equal(rec[1].message, "second line break (3 similar messages suppressed)");
    assert_int_equal(rec[1].level, SY_LOG_ERROR);
    assert_true(rec[0].time_unix_ms >= t0 - 1 && rec[1].time_unix_ms <= now_ms() + 1);
    sy__log_recent_reset();
}

typedef struct adder_s {
    int id;
} adder_t;

static void *adder(void *arg)
{
    adder_t *a = arg;
    char msg[32];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(msg, sizeof msg, "t%d m%d", a->id, i);
        sy__log_recent_add(i % 2 ? "shared" : "mine", SY_LOG_WARN, i, msg, (size_t)n);
        sy__log_recent_t rec[SY__LOG_RECENT_PER_COMPONENT];
        size_t got = sy__log_recent("shared", rec, SY__LOG_RECENT_PER_COMPONENT);
        if (got > SY__LOG_RECENT_PER_COMPONENT) abort();
        for (size_t k = 0; k < got; k++)
            if (strncmp(rec[k].message, "t", 1) != 0) abort();
    }
    return NULL;
}

static void test_recent_threads(void **state)
{
    (void)state;
    sy__log_recent_reset();
    pthread_t th[4];
    adder_t a[4];
    for (int i = 0; i < 4; i++) {
        a[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, adder, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    sy__log_recent_t rec[SY__LOG_RECENT_PER_COMPONENT];
    assert_int_equal(sy__log_recent("shared", rec, SY__LOG_RECENT_PER_COMPONENT),
                     SY__LOG_RECENT_PER_COMPONENT);
    sy__log_recent_reset();
}

/* ---- status_json ------------------------------------------------------------ */

static const char *const router_yaml = "receivers:\n"
                                       "  testgen: {count: 200, spans: 5, interval: 1ms}\n"
                                       "processors:\n"
                                       "  testfault: {refuse_permille: 300, seed: 3}\n"
                                       "  batch: {timeout: 20ms}\n"
                                       "exporters:\n"
                                       "  testsink:\n"
                                       "  nop:\n"
                                       "connectors:\n"
                                       "  forward:\n"
                                       "extensions:\n"
                                       "  zpages: {endpoint: \"127.0.0.1:0\"}\n"
                                       "service:\n"
                                       "  extensions: [zpages]\n"
                                       "  pipelines:\n"
                                       "    traces/in:\n"
                                       "      receivers: [testgen]\n"
                                       "      processors: [testfault, batch]\n"
                                       "      exporters: [testsink, forward]\n"
                                       "    traces/out:\n"
                                       "      receivers: [forward]\n"
                                       "      exporters: [nop]\n";

static yajl_val get(yajl_val v, const char *key)
{
    if (!YAJL_IS_OBJECT(v)) return NULL;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], key) == 0) return v->u.object.values[i];
    return NULL;
}

static const char *str(yajl_val v, const char *key)
{
    yajl_val s = get(v, key);
    return YAJL_IS_STRING(s) ? YAJL_GET_STRING(s) : NULL;
}

static int64_t num(yajl_val v, const char *key)
{
    yajl_val n = get(v, key);
    assert_true(YAJL_IS_INTEGER(n));
    return YAJL_GET_INTEGER(n);
}

static yajl_val find(yajl_val list, const char *kind, const char *id)
{
    assert_true(YAJL_IS_ARRAY(list));
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val c = list->u.array.values[i];
        if (strcmp(str(c, "kind"), kind) == 0 && strcmp(str(c, "id"), id) == 0) return c;
    }
    fail_msg("no %s %s", kind, id);
    return NULL;
}

static yajl_val parse_status(sy_instance_t *inst, char **text)
{
    size_t len = 0;
    assert_int_equal(sy__status_json(inst, text, &len), SY_OK);
    assert_int_equal(strlen(*text), len);
    char err[256] = "";
    yajl_val doc = yajl_tree_parse(*text, err, sizeof err);
    if (!doc) fail_msg("not JSON (%s): %s", err, *text);
    return doc;
}

/* Every counter of a signals object equals its metric. */
static void check_signals(yajl_val comp, const char *kind, const char *labels)
{
    yajl_val sig = get(get(comp, "signals"), "traces");
    assert_non_null(sig);
    assert_string_equal(str(sig, "items"), "spans");
    for (size_t i = 0; i < sig->u.object.len; i++) {
        const char *k = sig->u.object.keys[i];
        if (strcmp(k, "items") == 0) continue;
        char name[128];
        snprintf(name, sizeof name, "switchyard_%s_%s_spans_total", kind, k);
        int64_t want = sy_test_metric(name, labels);
        if (want != YAJL_GET_INTEGER(sig->u.object.values[i]))
            fail_msg("%s{%s}: %lld in the document, %lld in the metrics", name, labels,
                     (long long)YAJL_GET_INTEGER(sig->u.object.values[i]), (long long)want);
    }
}

/* Builds documents without pause while the data flows (ThreadSanitizer runs this
 * test: the stress label). */
typedef struct reader_s {
    sy_instance_t *ext;
    atomic_bool stop;
    int built;
} reader_t;

static void *reader(void *arg)
{
    reader_t *rd = arg;
    while (!atomic_load(&rd->stop)) {
        char *text = NULL;
        if (sy__status_json(rd->ext, &text, NULL) == SY_OK) rd->built++;
        free(text);
    }
    return NULL;
}

static void test_status_document(void **state)
{
    (void)state;
    sy__log_recent_reset();
    sy__router_t *r = sy_test_router_start(router_yaml);
    sy_instance_t *ext = NULL;
    for (size_t i = 0; i < r->engine->ninstances; i++)
        if (r->engine->instances[i]->kind == SY_KIND_EXTENSION) ext = r->engine->instances[i];
    assert_non_null(ext);
    reader_t rd = {.ext = ext};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, &rd), 0);
    /* 200 batches of 5: wait until what testfault let through reached nop. */
    int64_t in = sy_test_metric_wait("switchyard_receiver_accepted_spans_total",
                                     "receiver=\"testgen\"", 1000, 10000);
    assert_int_equal(in, 1000);
    for (int i = 0; i < 500; i++) {
        int64_t refused = sy_test_metric("switchyard_processor_refused_spans_total",
                                         "processor=\"testfault\",pipeline=\"traces/in\"");
        int64_t out = sy_test_metric("switchyard_exporter_sent_spans_total", "exporter=\"nop\"");
        if (refused + out == 1000) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&rd.stop, true);
    pthread_join(th, NULL);
    assert_true(rd.built > 0);

    char *text = NULL;
    yajl_val doc = parse_status(ext, &text);
    assert_int_equal(num(doc, "schema"), 1);
    yajl_val svc = get(doc, "service");
    assert_string_equal(str(svc, "status"), "ready");
    assert_string_equal(str(svc, "abi"), "1.8");
    assert_true(num(get(doc, "process"), "rss_bytes") > 0);

    /* The graph. */
    yajl_val pipes = get(doc, "pipelines");
    assert_int_equal(pipes->u.array.len, 2);
    yajl_val pin = pipes->u.array.values[0], pout = pipes->u.array.values[1];
    assert_string_equal(str(pin, "id"), "traces/in");
    assert_string_equal(str(pin, "signal"), "traces");
    assert_int_equal(get(pin, "receivers")->u.array.len, 1);
    find(get(pin, "receivers"), "receiver", "testgen");
    yajl_val procs = get(pin, "processors");
    assert_int_equal(procs->u.array.len, 2);
    assert_string_equal(str(procs->u.array.values[0], "id"), "testfault");
    assert_string_equal(str(procs->u.array.values[1], "id"), "batch");
    assert_int_equal(get(pin, "exporters")->u.array.len, 2);
    find(get(pin, "exporters"), "exporter", "testsink");
    find(get(pin, "exporters"), "connector", "forward");
    find(get(pout, "receivers"), "connector", "forward");
    find(get(pout, "exporters"), "exporter", "nop");
    assert_int_equal(get(pout, "processors")->u.array.len, 0);

    /* Counters equal the metrics: processors, receivers, exporters, connector. */
    static const char *const pnames[] = {"incoming", "outgoing", "refused", "dropped"};
    for (size_t i = 0; i < 2; i++) {
        yajl_val p = procs->u.array.values[i];
        for (int k = 0; k < 4; k++) {
            char name[96], labels[96];
            snprintf(name, sizeof name, "switchyard_processor_%s_spans_total", pnames[k]);
            snprintf(labels, sizeof labels, "processor=\"%s\",pipeline=\"traces/in\"",
                     str(p, "id"));
            assert_int_equal(num(p, pnames[k]), sy_test_metric(name, labels));
        }
    }
    assert_true(num(procs->u.array.values[0], "refused") > 0);
    yajl_val comps = get(doc, "components");
    check_signals(find(comps, "receiver", "testgen"), "receiver", "receiver=\"testgen\"");
    check_signals(find(comps, "exporter", "testsink"), "exporter", "exporter=\"testsink\"");
    check_signals(find(comps, "exporter", "nop"), "exporter", "exporter=\"nop\"");
    yajl_val fwd = find(comps, "connector", "forward");
    check_signals(fwd, "connector", "connector=\"forward\"");
    assert_int_equal(num(get(get(fwd, "signals"), "traces"), "emitted"),
                     sy_test_metric("switchyard_exporter_sent_spans_total", "exporter=\"nop\""));
    yajl_val q = get(find(comps, "exporter", "testsink"), "queue");
    assert_int_equal(num(q, "size"), 0);
    assert_int_equal(
        num(q, "capacity"),
        sy_test_metric("switchyard_queue_capacity", "exporter=\"testsink\",queue=\"exporter\""));
    assert_int_equal(
        num(get(pin, "queue"), "capacity"),
        sy_test_metric("switchyard_queue_capacity", "pipeline=\"traces/in\",queue=\"pipeline\""));
    assert_int_equal(num(get(pin, "queue"), "limit"), SY__PIPELINE_QUEUE_CAPACITY);
    assert_int_equal(num(q, "limit"), num(q, "capacity"));
    yajl_val zp = find(comps, "extension", "zpages");
    assert_null(get(zp, "signals"));
    assert_int_equal(get(zp, "pipelines")->u.array.len, 0);
    /* The processor's refusal warning, under its ID. */
    yajl_val errs = get(procs->u.array.values[0], "errors");
    assert_true(errs->u.array.len >= 1);
    assert_non_null(strstr(str(errs->u.array.values[0], "message"), "processor refused"));
    assert_string_equal(str(errs->u.array.values[0], "level"), "warn");
    yajl_tree_free(doc);
    free(text);

    /* While starting, counters and queues are left out. */
    sy__engine_set_status(SY_STATUS_STARTING);
    doc = parse_status(ext, &text);
    sy__engine_set_status(SY_STATUS_READY);
    assert_string_equal(str(get(doc, "service"), "status"), "starting");
    assert_null(get(find(get(doc, "components"), "exporter", "nop"), "signals"));
    assert_null(get(get(doc, "pipelines")->u.array.values[0], "queue"));
    assert_null(get(get(get(doc, "pipelines")->u.array.values[0], "processors")->u.array.values[0],
                    "incoming"));
    yajl_tree_free(doc);
    free(text);

    /* While a reload holds the graph: SY_EAGAIN at once, nothing made. */
    sy__status_graph_lock();
    text = (char *)"unchanged";
    assert_int_equal(sy__status_json(ext, &text, NULL), SY_EAGAIN);
    assert_null(text);
    sy__status_graph_unlock();
    doc = parse_status(ext, &text);
    yajl_tree_free(doc);
    free(text);

    /* Bad arguments. */
    text = (char *)"unchanged";
    assert_int_equal(sy__status_json(NULL, &text, NULL), SY_EINVAL);
    assert_null(text);
    assert_int_equal(sy__status_json(ext, NULL, NULL), SY_EINVAL);
    /* Through the host table, as a plugin calls it. */
    const sy_host_api_t *api = sy__host_api();
    assert_true(SY_API_HAS(api, status_json));
    assert_int_equal(api->status_json(ext, &text, NULL), SY_OK);
    assert_non_null(strstr(text, "\"schema\":1"));
    free(text);

    assert_int_equal(sy_test_router_close(r), 0);
    sy__log_recent_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recent_ring),     cmocka_unit_test(test_recent_cut_and_bounded),
        cmocka_unit_test(test_recent_from_log), cmocka_unit_test(test_recent_threads),
        cmocka_unit_test(test_status_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
