/*
 * The plugin loader and the plugin path: refusals with a sentence naming the file
 * and both versions, tolerance of older and newer minors, two instances of one
 * plugin with different configurations, and finding plugins on the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "router.h"
#include "telemetry.h"

#define ABI_DIR SY_TEST_KIT_DIR "/abi"

static void load_expect(const char *file, const char *needle1, const char *needle2)
{
    sy__plugin_file_t f;
    char err[512] = "";
    int rc = sy__plugin_load_path(file, &f, err, sizeof(err));
    if (!needle1) {
        if (rc != 0) fprintf(stderr, "unexpected: %s\n", err);
        assert_int_equal(rc, 0);
        free(f.path);
        free(f.type);
        return;
    }
    assert_true(rc < 0);
    fprintf(stderr, "refused as expected: %s\n", err);
    assert_non_null(strstr(err, file));
    assert_non_null(strstr(err, needle1));
    if (needle2) assert_non_null(strstr(err, needle2));
}

static void test_major_mismatch_refused(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof(want), "has ABI %d.%d", SY_ABI_MAJOR, SY_ABI_MINOR);
    load_expect(ABI_DIR "/processor_abimajor.so", "built for plugin ABI 2.", want);
}

static void test_missing_entry_refused(void **state)
{
    (void)state;
    load_expect(ABI_DIR "/processor_noentry.so", "does not export the entry symbol",
                SY_PLUGIN_ENTRY_SYMBOL);
}

static void test_type_mismatch_refused(void **state)
{
    (void)state;
    load_expect(ABI_DIR "/processor_wrongtype.so", "declares processor \"other\"",
                "file name says processor \"wrongtype\"");
}

static void test_older_minor_loads(void **state)
{
    (void)state;
    load_expect(ABI_DIR "/processor_oldminor.so", NULL, NULL);
    sy__plugin_file_t f;
    char err[256];
    assert_int_equal(sy__plugin_load_path(ABI_DIR "/processor_oldminor.so", &f, err, sizeof(err)),
                     0);
    /* The host read only the 1.0 part of the descriptor. */
    assert_int_equal(f.desc.abi_minor, 0);
    assert_string_equal(f.desc.type, "oldminor");
    free(f.path);
    free(f.type);
}

static void test_newer_minor_loads(void **state)
{
    (void)state;
    load_expect(ABI_DIR "/processor_newminor.so", NULL, NULL);
}

/* ABI 1.5: a plugin that declares a minimum host minor above this host's is
 * refused with both versions; one whose minimum is met loads. */
static void test_min_host_minor(void **state)
{
    (void)state;
    load_expect(ABI_DIR "/processor_needminor.so", "needs a switchyard of plugin ABI 1.99 or later",
                "has ABI 1.8");
    load_expect(ABI_DIR "/processor_needmet.so", NULL, NULL);
}

static void test_registry_path_and_types(void **state)
{
    (void)state;
    const char *dirs[] = {SY_TEST_KIT_DIR};
    sy__registry_t reg;
    assert_int_equal(sy__registry_scan(&reg, dirs, 1), 0);
    /* --plugin-dir first, then the build tree beside the test binary's bin/. */
    assert_string_equal(reg.dirs[0], SY_TEST_KIT_DIR);
    assert_non_null(sy__registry_find(&reg, SY_KIND_RECEIVER, "testgen"));
    assert_non_null(sy__registry_find(&reg, SY_KIND_PROCESSOR, "nop"));
    assert_null(
        sy__registry_find(&reg, SY_KIND_PROCESSOR, "abimajor")); /* in abi/, not on the path */
    char *types = sy__registry_types(&reg, SY_KIND_EXPORTER);
    assert_non_null(strstr(types, "testsink"));
    assert_non_null(strstr(types, "nop"));
    free(types);
    sy__registry_free(&reg);

    setenv("SWITCHYARD_PLUGIN_PATH", "/nonexistent:" ABI_DIR, 1);
    assert_int_equal(sy__registry_scan(&reg, NULL, 0), 0);
    assert_non_null(sy__registry_find(&reg, SY_KIND_PROCESSOR, "abimajor"));
    sy__registry_free(&reg);
    unsetenv("SWITCHYARD_PLUGIN_PATH");
}

/* Runs a router on `yaml` with the test kit for a moment, stops it (which
 * flushes and makes each testsink write its report), and checks that report
 * file a starts with want_a and b with want_b. */
static void run_and_check_reports(const char *yaml, const char *a, const char *want_a,
                                  const char *b, const char *want_b)
{
    const char *dirs[] = {SY_TEST_KIT_DIR};
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = dirs, .nplugin_dirs = 1};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    assert_non_null(r);
    assert_int_equal(sy__router_start(r), 0);
    usleep(300000);
    assert_int_equal(sy__router_close(r), 0);
    sy__diag_free(&diag);
    const char *paths[2] = {a, b}, *wants[2] = {want_a, want_b};
    for (int i = 0; i < 2; i++) {
        char line[256];
        FILE *f = fopen(paths[i], "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof(line), f));
        fclose(f);
        assert_non_null(strstr(line, wants[i]));
        unlink(paths[i]);
    }
}

/* Two instances of one plugin, configured differently, run side by side and keep
 * their own state: each sink writes its own report with its own counts. */
static void test_two_instances_coexist(void **state)
{
    (void)state;
    char yaml[1024], a[64], b[64];
    snprintf(a, sizeof(a), "/tmp/sy_coexist_a.%d", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/sy_coexist_b.%d", (int)getpid());
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/one: {count: 3, spans: 2}\n"
             "  testgen/two: {count: 5, spans: 7, first_seq: 100}\n"
             "exporters:\n"
             "  testsink/one: {report_path: %s}\n"
             "  testsink/two: {report_path: %s, delay: 1ms}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces/one: {receivers: [testgen/one], exporters: [testsink/one]}\n"
             "    traces/two: {receivers: [testgen/two], exporters: [testsink/two]}\n",
             a, b);
    run_and_check_reports(yaml, a, "batches=3 items=6 ", b, "batches=5 items=35 ");
}

/* The real batch processor twice, with different sizes, behind one receiver that
 * feeds both pipelines: each instance batches by its own configuration. */
static void test_batch_and_batch2_coexist(void **state)
{
    (void)state;
    char yaml[1024], a[64], b[64];
    snprintf(a, sizeof(a), "/tmp/sy_batch2_a.%d", (int)getpid());
    snprintf(b, sizeof(b), "/tmp/sy_batch2_b.%d", (int)getpid());
    snprintf(yaml, sizeof(yaml),
             "receivers:\n"
             "  testgen/bb: {count: 7, spans: 5}\n"
             "processors:\n"
             "  batch: {send_batch_size: 10, timeout: 10s}\n"
             "  batch/2: {send_batch_size: 35, timeout: 10s}\n"
             "exporters:\n"
             "  testsink/bb1: {report_path: %s}\n"
             "  testsink/bb2: {report_path: %s}\n"
             "service:\n"
             "  telemetry: {logs: {level: warn}}\n"
             "  pipelines:\n"
             "    traces/1: {receivers: [testgen/bb], processors: [batch], exporters: "
             "[testsink/bb1]}\n"
             "    traces/2: {receivers: [testgen/bb], processors: [batch/2], exporters: "
             "[testsink/bb2]}\n",
             a, b);
    /* batch: 35 spans by tens: 10, 10, 10 on size, then 5 flushed at shutdown. */
    run_and_check_reports(yaml, a, "batches=4 items=35 ", b, "batches=1 items=35 ");
}

static void expect_config_error(const char *yaml, const char *needle)
{
    const char *dirs[] = {SY_TEST_KIT_DIR, ABI_DIR};
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    assert_null(r);
    bool found = false;
    for (size_t i = 0; i < diag.count; i++) {
        fprintf(stderr, "diag: %s\n", diag.msgs[i]);
        if (strstr(diag.msgs[i], needle)) found = true;
    }
    assert_true(found);
    sy__diag_free(&diag);
}

static void test_graph_errors(void **state)
{
    (void)state;
    /* An unknown type lists the valid ones, at the component's position. */
    expect_config_error(
        "receivers:\n  nosuch:\nexporters:\n  testsink:\n"
        "service:\n  pipelines:\n    traces:\n"
        "      receivers: [nosuch]\n      exporters: [testsink]\n",
        "<config>:2:3: unknown type: \"nosuch\" for id: \"nosuch\" (valid values: [");
    /* A plugin that does not support the pipeline's signal, at the reference. */
    expect_config_error("receivers:\n  testgen:\nexporters:\n  testsink:\n"
                        "service:\n  pipelines:\n    metrics:\n"
                        "      receivers: [testgen]\n      exporters: [testsink]\n",
                        "<config>:8:19: service::pipelines::metrics: receiver \"testgen\" does "
                        "not support metrics (it supports traces)");
    /* A plugin refused by the loader is reported at the component, with the file. */
    expect_config_error(
        "receivers:\n  testgen:\nprocessors:\n  abimajor:\nexporters:\n  testsink:\n"
        "service:\n  pipelines:\n    traces:\n      receivers: [testgen]\n"
        "      processors: [abimajor]\n      exporters: [testsink]\n",
        "processor_abimajor.so was built for plugin ABI 2.");
    /* A connector of a type no plugin provides: reported once, at its declaration,
     * naming the file looked for. */
    expect_config_error("receivers:\n  testgen:\nconnectors:\n  nosuchconn:\nexporters:\n"
                        "  testsink:\nservice:\n  pipelines:\n"
                        "    traces/a: {receivers: [testgen], exporters: [nosuchconn]}\n"
                        "    traces/b: {receivers: [nosuchconn], exporters: [testsink]}\n",
                        "<config>:4:3: unknown type: \"nosuchconn\" for id: \"nosuchconn\"");
    /* A value of the wrong type in a plugin's own table. */
    expect_config_error("receivers:\n  testgen:\n    interval: banana\nexporters:\n  testsink:\n"
                        "service:\n  pipelines:\n    traces:\n"
                        "      receivers: [testgen]\n      exporters: [testsink]\n",
                        "<config>:3:15:");
}

/* ABI 1.3: a minor-2 plugin's table of the 1.0 layout is read with the 1.0
 * element size and copied into this host's layout, new members zero; a 1.3
 * table is used in place; a field past config_size is refused. */
static void test_field_table_by_minor(void **state)
{
    (void)state;
    sy__plugin_file_t f;
    char err[512];
    assert_int_equal(
        sy__plugin_load_path(SY_TEST_KIT_DIR "/cfgabi/processor_cfgold.so", &f, err, sizeof(err)),
        0);
    assert_int_equal(f.desc.abi_minor, 2);
    assert_int_equal(f.desc.config_field_count, 3);
    assert_non_null(f.fields_copy);
    assert_ptr_equal(f.desc.config_fields, f.fields_copy);
    static const char *const names[] = {"limit", "label", "rules"};
    static const sy_cfg_type_t types[] = {SY_CFG_INT, SY_CFG_STRING, SY_CFG_RAW};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(f.desc.config_fields[i].name, names[i]);
        assert_int_equal(f.desc.config_fields[i].type, types[i]);
        assert_null(f.desc.config_fields[i].min);
        assert_null(f.desc.config_fields[i].max);
        assert_null(f.desc.config_fields[i].pattern);
    }
    assert_string_equal(f.desc.config_fields[0].default_value, "7");
    assert_string_equal(f.desc.config_fields[1].description, "a label");
    assert_null(f.desc.validate2);
    sy__plugin_file_free(&f);

    assert_int_equal(
        sy__plugin_load_path(SY_TEST_KIT_DIR "/cfgabi/processor_cfgv2.so", &f, err, sizeof(err)),
        0);
    assert_int_equal(f.desc.abi_minor, SY_ABI_MINOR);
    assert_null(f.fields_copy); /* the plugin's own table, in this host's layout */
    assert_int_equal(f.desc.config_field_size, sizeof(sy_config_field_t));
    assert_string_equal(f.desc.config_fields[1].pattern, "[a-z]+");
    assert_string_equal(f.desc.config_fields[0].min, "-5");
    assert_non_null(f.desc.validate2);
    sy__plugin_file_free(&f);

    load_expect(SY_TEST_KIT_DIR "/cfgabi/processor_cfgbadoffset.so", "config field 'label'",
                "does not fit in its config struct of config_size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_major_mismatch_refused),
        cmocka_unit_test(test_missing_entry_refused),
        cmocka_unit_test(test_type_mismatch_refused),
        cmocka_unit_test(test_older_minor_loads),
        cmocka_unit_test(test_newer_minor_loads),
        cmocka_unit_test(test_min_host_minor),
        cmocka_unit_test(test_field_table_by_minor),
        cmocka_unit_test(test_registry_path_and_types),
        cmocka_unit_test(test_two_instances_coexist),
        cmocka_unit_test(test_batch_and_batch2_coexist),
        cmocka_unit_test(test_graph_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
