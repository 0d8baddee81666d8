/*
 * test_service_config.c - the otelcol model: components, pipelines, extensions
 * and telemetry read from a tree, and every check that needs no plugin, with the
 * exact message and position of each error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "service_config.h"

#ifndef SY_TEST_DATA_DIR
#define SY_TEST_DATA_DIR "tests/data"
#endif
#define CFG_DIR SY_TEST_DATA_DIR "/config/"

static bool diag_has(const sy__diag_t *d, const char *msg)
{
    for (size_t i = 0; i < d->count; i++)
        if (!strcmp(d->msgs[i], msg)) return true;
    return false;
}

#define assert_diag(d, msg)                          \
    do {                                             \
        if (!diag_has((d), (msg))) {                 \
            sy__diag_print((d), stderr);             \
            fail_msg("expected message: %s", (msg)); \
        }                                            \
    } while (0)

/* Loads `yaml` as "s.yaml", builds the model and returns build's result. */
static int build(const char *yaml, sy_cfg_node_t **root, sy__service_cfg_t *cfg, sy__diag_t *d)
{
    sy__diag_init(d);
    *root = sy__cfg_load_string("s.yaml", yaml, d);
    assert_non_null(*root);
    return sy__service_cfg_build(*root, cfg, d);
}

static void done(sy_cfg_node_t *root, sy__service_cfg_t *cfg, sy__diag_t *d)
{
    sy__service_cfg_free(cfg);
    sy__cfg_free(root);
    sy__diag_free(d);
}

/* A minimal valid head, to which each test appends its service section. */
#define HEAD "receivers:\n  otlp:\nexporters:\n  debug:\n"

static void test_valid_file(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "valid.yaml"};
    sy_cfg_node_t *root = sy__cfg_load(files, 1, NULL, 0, &d);
    assert_non_null(root);
    sy__service_cfg_t cfg;
    if (sy__service_cfg_build(root, &cfg, &d) != 0) {
        sy__diag_print(&d, stderr);
        fail();
    }
    assert_int_equal(d.count, 0);
    assert_int_equal(cfg.ncomponents, 9);
    const sy__component_cfg_t *c = sy__service_cfg_find(&cfg, SY_KIND_RECEIVER, "otlp/2");
    assert_non_null(c);
    assert_string_equal(c->type, "otlp");
    assert_string_equal(c->name, "2");
    assert_string_equal(sy__cfg_where(c->key), CFG_DIR "valid.yaml:6:3");
    c = sy__service_cfg_find(&cfg, SY_KIND_PROCESSOR, "memory_limiter/tight");
    assert_non_null(c);
    assert_string_equal(sy__cfg_scalar(sy__cfg_get(c->node, "check_interval")), "1s");
    c = sy__service_cfg_find(&cfg, SY_KIND_RECEIVER, "otlp");
    assert_null(c->name);
    assert_int_equal(sy__cfg_kind(sy__cfg_get(c->node, "protocols")), SY__CFG_MAP);
    assert_non_null(sy__service_cfg_find(&cfg, SY_KIND_CONNECTOR, "forward"));
    assert_null(sy__service_cfg_find(&cfg, SY_KIND_EXPORTER, "forward"));
    assert_null(sy__service_cfg_find(&cfg, SY_KIND_RECEIVER, "batch"));

    assert_int_equal(cfg.npipelines, 3);
    const sy__pipeline_cfg_t *p = &cfg.pipelines[0];
    assert_string_equal(p->id, "traces");
    assert_int_equal(p->signal, SY_SIGNAL_TRACES);
    assert_null(p->name);
    assert_int_equal(p->nreceivers, 2);
    assert_string_equal(p->receivers[1], "otlp/2");
    assert_string_equal(sy__cfg_where(p->receiver_nodes[1]), CFG_DIR "valid.yaml:24:25");
    assert_int_equal(p->nprocessors, 2);
    assert_string_equal(p->processors[0], "memory_limiter/tight");
    assert_int_equal(p->nexporters, 1);
    assert_string_equal(p->exporters[0], "forward");
    p = &cfg.pipelines[1];
    assert_string_equal(p->id, "traces/out");
    assert_string_equal(p->name, "out");
    assert_int_equal(p->nexporters, 2);
    assert_int_equal(cfg.pipelines[2].signal, SY_SIGNAL_LOGS);

    assert_int_equal(cfg.nextensions, 2);
    assert_string_equal(cfg.extensions[1], "zpages");
    assert_int_equal(cfg.log_level, SY_LOG_WARN);
    assert_int_equal(cfg.metrics_level, 3);
    assert_string_equal(cfg.metrics_address, "0.0.0.0:9888");
    done(root, &cfg, &d);
}

static void test_defaults(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build(HEAD "service:\n  pipelines:\n    metrics:\n      receivers: [otlp]\n"
                                "      exporters: [debug]\n",
                           &root, &cfg, &d),
                     0);
    assert_int_equal(cfg.log_level, SY_LOG_INFO);
    assert_int_equal(cfg.metrics_level, 2);
    assert_string_equal(cfg.metrics_address, "localhost:8888");
    assert_int_equal(cfg.nextensions, 0);
    done(root, &cfg, &d);
}

static void test_errors_file(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "10:1: '' has invalid keys: recievers",
        "3:3: receivers: invalid component ID \"1bad\": the type must match "
        "^[a-zA-Z][0-9a-zA-Z_]{0,62}$",
        "36:3: 'service' has invalid keys: pipeline",
        "13:24: service::extensions: references extension \"pprof\" which is not configured",
        "13:31: service::extensions: references extension \"zpages\" multiple times",
        "16:25: service::pipelines::traces: references receiver \"nop/2\" which is not configured",
        "17:27: service::pipelines::traces: references processor \"batch\" multiple times",
        "17:34: service::pipelines::traces: references processor \"memory_limiter\" which is not "
        "configured",
        "18:26: service::pipelines::traces: references exporter \"otlphttp\" which is not "
        "configured",
        "22:7: 'service.pipelines.metrics' has invalid keys: extra",
        "20:18: service::pipelines::metrics: must have at least one receiver",
        "23:5: service::pipelines::logs: must have at least one exporter",
        "25:5: service::pipelines: invalid pipeline ID \"profiles\": the signal must be traces, "
        "metrics or logs (\"profiles\" is not supported)",
        "28:5: service::pipelines: invalid pipeline ID \"foo/bar\": the signal must be traces, "
        "metrics or logs (\"foo\" is not supported)",
        "35:5: 'service.telemetry' has invalid keys: tracez",
        "32:7: 'service.telemetry.logs' has invalid keys: colour",
        "31:14: 'service.telemetry.logs.level': expected one of debug, info, warn, error, got "
        "\"verbose\"",
        "34:14: 'service.telemetry.metrics.level': expected one of none, basic, normal, "
        "detailed, got \"everything\"",
    };
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "service_errors.yaml"};
    sy_cfg_node_t *root = sy__cfg_load(files, 1, NULL, 0, &d);
    assert_non_null(root);
    sy__service_cfg_t cfg;
    assert_int_equal(sy__service_cfg_build(root, &cfg, &d), -1);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%sservice_errors.yaml:%s", CFG_DIR, expected[i]);
        assert_diag(&d, msg);
    }
    /* Every error is reported, in one pass, and nothing else. */
    assert_int_equal(sy__diag_errors(&d), sizeof(expected) / sizeof(expected[0]));
    done(root, &cfg, &d);
}

static void test_no_pipelines_no_receivers(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build("exporters:\n  debug:\nservice:\n  pipelines: {}\n", &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:1:1: no receiver configuration specified in config");
    assert_diag(&d, "s.yaml:4:14: service must have at least one pipeline");
    done(root, &cfg, &d);

    assert_int_equal(build("receivers: {}\nservice:\n", &root, &cfg, &d), -1);
    assert_diag(&d, "s.yaml:1:12: no receiver configuration specified in config");
    assert_diag(&d, "s.yaml:2:9: service must have at least one pipeline");
    done(root, &cfg, &d);

    /* An empty file reports the same, without a position to give. */
    sy__diag_init(&d);
    assert_int_equal(sy__service_cfg_build(NULL, &cfg, &d), -1);
    assert_diag(&d, "no receiver configuration specified in config");
    assert_diag(&d, "service must have at least one pipeline");
    sy__service_cfg_free(&cfg);
    sy__diag_free(&d);
}

static void test_root_not_a_map(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build("- a\n- b\n", &root, &cfg, &d), -1);
    assert_diag(&d, "s.yaml:1:1: the configuration must be a map of receivers, processors, "
                    "exporters, connectors, extensions and service, got a list");
    done(root, &cfg, &d);
}

static void test_component_ids(void **state)
{
    (void)state;
    assert_null(sy__component_id_check("otlp"));
    assert_null(sy__component_id_check("otlp/2"));
    assert_null(sy__component_id_check("otlp_http/a/b.c-d"));
    assert_null(sy__component_id_check("batch/\xc3\xa9t\xc3\xa9")); /* été */
    assert_non_null(sy__component_id_check(""));
    assert_non_null(sy__component_id_check("/x"));
    assert_non_null(sy__component_id_check("1otlp"));
    assert_non_null(sy__component_id_check("ot-lp"));
    assert_non_null(sy__component_id_check("otlp/"));
    assert_non_null(sy__component_id_check("otlp/a b"));
    assert_non_null(sy__component_id_check("otlp/a+b"));
    assert_non_null(sy__component_id_check("otlp/\xe2\x82\xac")); /* euro sign: a symbol */
    assert_non_null(sy__component_id_check("otlp/\xff"));         /* not UTF-8 */
    assert_non_null(sy__component_id_check("otlp/\xe2\x80\x8b")); /* zero-width space */
    char longtype[80];
    memset(longtype, 'a', 64);
    longtype[64] = '\0';
    assert_non_null(sy__component_id_check(longtype));
    longtype[63] = '\0';
    assert_null(sy__component_id_check(longtype));

    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(
        build("receivers:\n  otlp/a b:\n  nop:\nexporters:\n  debug/:\n", &root, &cfg, &d), -1);
    assert_diag(&d, "s.yaml:2:3: receivers: invalid component ID \"otlp/a b\": the name must not "
                    "contain spaces, control characters or symbols");
    assert_diag(&d, "s.yaml:5:3: exporters: invalid component ID \"debug/\": the name after '/' "
                    "must not be empty");
    done(root, &cfg, &d);
}

static void test_section_not_a_map(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build(HEAD "processors: [batch]\nservice: 5\n", &root, &cfg, &d), -1);
    assert_diag(&d, "s.yaml:5:13: 'processors': expected a map, got a list");
    assert_diag(&d, "s.yaml:6:10: 'service': expected a map, got \"5\"");
    done(root, &cfg, &d);

    assert_int_equal(build(HEAD "service:\n  pipelines:\n    traces: [otlp]\n", &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:7:13: 'service.pipelines.traces': expected a map, got a list");
    done(root, &cfg, &d);

    assert_int_equal(build(HEAD "service:\n  extensions: zpages\n  pipelines:\n    traces:\n"
                                "      receivers: otlp\n      exporters: [[debug]]\n",
                           &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:6:15: service::extensions: must be a list of extension IDs, got "
                    "\"zpages\"");
    assert_diag(&d, "s.yaml:9:18: service::pipelines::traces: 'receivers' must be a list of "
                    "component IDs, got \"otlp\"");
    assert_diag(&d, "s.yaml:10:19: service::pipelines::traces: exporters[0] must be a component "
                    "ID, got a list");
    done(root, &cfg, &d);
}

static void test_pipeline_empty(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build(HEAD "service:\n  pipelines:\n    traces/x:\n", &root, &cfg, &d), -1);
    assert_diag(&d, "s.yaml:7:5: service::pipelines::traces/x: must have at least one receiver");
    assert_diag(&d, "s.yaml:7:5: service::pipelines::traces/x: must have at least one exporter");
    done(root, &cfg, &d);
}

static void test_duplicate_receiver_warns(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    assert_int_equal(build(HEAD "service:\n  pipelines:\n    logs:\n"
                                "      receivers: [otlp, otlp]\n      exporters: [debug, debug]\n",
                           &root, &cfg, &d),
                     0);
    assert_int_equal(d.warnings, 2);
    assert_diag(&d, "s.yaml:8:25: warning: service::pipelines::logs: references receiver \"otlp\" "
                    "more than once; it is used once");
    assert_diag(&d, "s.yaml:9:26: warning: service::pipelines::logs: references exporter "
                    "\"debug\" more than once; it is used once");
    assert_int_equal(cfg.pipelines[0].nreceivers, 1);
    assert_int_equal(cfg.pipelines[0].nexporters, 1);
    done(root, &cfg, &d);
}

static void test_connectors(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
    /* Used on both sides: fine. */
    assert_int_equal(build(HEAD
                           "connectors:\n  count:\nservice:\n  pipelines:\n"
                           "    traces:\n      receivers: [otlp]\n      exporters: [count]\n"
                           "    metrics:\n      receivers: [count]\n      exporters: [debug]\n",
                           &root, &cfg, &d),
                     0);
    assert_string_equal(cfg.pipelines[1].receivers[0], "count");
    assert_non_null(sy__service_cfg_find(&cfg, SY_KIND_CONNECTOR, "count"));
    done(root, &cfg, &d);

    /* Used as an exporter only. */
    assert_int_equal(build(HEAD "connectors:\n  count:\nservice:\n  pipelines:\n"
                                "    traces:\n      receivers: [otlp]\n      exporters: [count]\n",
                           &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:11:19: connector \"count\" used as exporter in traces pipeline but "
                    "not used in any supported receiver pipeline");
    done(root, &cfg, &d);

    /* An exporter and a connector of the same ID. */
    assert_int_equal(build(HEAD "connectors:\n  debug:\nservice:\n  pipelines:\n"
                                "    traces:\n      receivers: [otlp]\n      exporters: [debug]\n",
                           &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:11:19: service::pipelines::traces: ambiguous ID: Found both \"debug\" "
                    "exporter and \"debug\" connector. Change one of the components' IDs to "
                    "eliminate ambiguity (e.g. rename \"debug\" connector to \"debug/connector\")");
    done(root, &cfg, &d);
}

static void test_telemetry(void **state)
{
    (void)state;
    sy_cfg_node_t *root;
    sy__service_cfg_t cfg;
    sy__diag_t d;
#define PIPE "service:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [debug]}\n"
    assert_int_equal(build(HEAD PIPE "  telemetry:\n    logs: {level: DEBUG}\n"
                                     "    metrics: {level: Basic, address: 0.0.0.0:9999}\n",
                           &root, &cfg, &d),
                     0);
    assert_int_equal(cfg.log_level, SY_LOG_DEBUG);
    assert_int_equal(cfg.metrics_level, 1);
    assert_string_equal(cfg.metrics_address, "0.0.0.0:9999");
    done(root, &cfg, &d);

    assert_int_equal(build(HEAD PIPE "  telemetry:\n    metrics: {level: none}\n", &root, &cfg, &d),
                     0);
    assert_int_equal(cfg.metrics_level, 0);
    assert_null(cfg.metrics_address);
    done(root, &cfg, &d);

    assert_int_equal(build(HEAD PIPE "  telemetry:\n    metrics:\n      readers:\n"
                                     "        - periodic: {exporter: {otlp: {}}}\n"
                                     "        - pull: {exporter: {prometheus: {host: '::1', "
                                     "port: 9464}}}\n",
                           &root, &cfg, &d),
                     0);
    assert_string_equal(cfg.metrics_address, "[::1]:9464");
    assert_int_equal(d.warnings, 1);
    assert_diag(&d, "s.yaml:11:11: warning: service.telemetry.metrics.readers[0]: only pull "
                    "readers with a prometheus exporter are supported; this reader is ignored");
    done(root, &cfg, &d);

    assert_int_equal(build(HEAD PIPE "  telemetry:\n    metrics:\n      readers:\n"
                                     "        - pull: {exporter: {prometheus: {port: 99999}}}\n",
                           &root, &cfg, &d),
                     -1);
    assert_diag(&d, "s.yaml:11:48: "
                    "'service.telemetry.metrics.readers[0].pull.exporter.prometheus.port': "
                    "expected a port number (1-65535), got \"99999\"");
    done(root, &cfg, &d);
#undef PIPE
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_file),
        cmocka_unit_test(test_no_pipelines_no_receivers),
        cmocka_unit_test(test_root_not_a_map),
        cmocka_unit_test(test_component_ids),
        cmocka_unit_test(test_section_not_a_map),
        cmocka_unit_test(test_pipeline_empty),
        cmocka_unit_test(test_duplicate_receiver_warns),
        cmocka_unit_test(test_connectors),
        cmocka_unit_test(test_telemetry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
