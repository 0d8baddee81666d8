/*
 * The plugin ABI does not move: every member of sy_plugin_t and sy_host_api_t
 * keeps its offset from one minor to the next (x86-64 / LP64 offsets).
 *
 * tests/abi/abi_layout.c is compiled against the plugin.h of every released
 * minor (tests/abi/1.0 ... 1.4, copies of the header as it was released) and
 * against the current one. Each old member must sit at the offset the current
 * header gives it, and each old struct must be a prefix of the current one. The
 * current offsets are also compared with the table recorded below: a change to
 * plugin.h that moves a member fails here, and a member appended must be added
 * to the table (and to abi_layout.c) on purpose.
 *
 * A plugin built against each old header loads and runs in this host: that is
 * test_old_plugins_run.
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

#include "abi_layout.h"
#include "engine.h"
#include "router_harness.h"

extern const abi_member_t abi_members_v10[], abi_members_v11[], abi_members_v12[],
    abi_members_v13[], abi_members_v14[], abi_members_v15[], abi_members_v16[], abi_members_v17[],
    abi_members_cur[];
extern const abi_sizes_t abi_sizes_v10, abi_sizes_v11, abi_sizes_v12, abi_sizes_v13, abi_sizes_v14,
    abi_sizes_v15, abi_sizes_v16, abi_sizes_v17, abi_sizes_cur;

/* Recorded from ABI 1.4. Append; never edit a line. */
static const abi_member_t recorded[] = {
    {'P', "abi_major", 0},
    {'P', "abi_minor", 2},
    {'P', "size", 4},
    {'P', "kind", 8},
    {'P', "type", 16},
    {'P', "signals", 24},
    {'P', "flags", 28},
    {'P', "version", 32},
    {'P', "description", 40},
    {'P', "config_fields", 48},
    {'P', "config_field_count", 56},
    {'P', "config_size", 64},
    {'P', "validate", 72},
    {'P', "create", 80},
    {'P', "start", 88},
    {'P', "consume", 96},
    {'P', "shutdown", 104},
    {'P', "destroy", 112},
    {'P', "config_field_size", 120},
    {'P', "validate2", 128},
    {'P', "connects", 136},
    {'H', "abi_major", 0},
    {'H', "abi_minor", 2},
    {'H', "size", 4},
    {'H', "log_enabled", 8},
    {'H', "log", 16},
    {'H', "instance_id", 24},
    {'H', "loop", 32},
    {'H', "status", 40},
    {'H', "signals", 48},
    {'H', "cfg_kind", 56},
    {'H', "cfg_scalar", 64},
    {'H', "cfg_len", 72},
    {'H', "cfg_at", 80},
    {'H', "cfg_get", 88},
    {'H', "cfg_where", 96},
    {'H', "batch_new", 104},
    {'H', "batch_alloc", 112},
    {'H', "batch_allocator", 120},
    {'H', "batch_set_encoded", 128},
    {'H', "batch_set_decoded", 136},
    {'H', "batch_retain", 144},
    {'H', "batch_release", 152},
    {'H', "batch_info", 160},
    {'H', "batch_request", 168},
    {'H', "batch_request_mut", 176},
    {'H', "batch_recount", 184},
    {'H', "batch_encoded", 192},
    {'H', "batch_merge", 200},
    {'H', "batch_split", 208},
    {'H', "emit", 216},
    {'H', "ready", 224},
    {'H', "timer_start", 232},
    {'H', "timer_stop", 240},
    {'H', "metric_register", 248},
    {'H', "metric_add", 256},
    {'H', "metric_set", 264},
    {'H', "exporter_outcome", 272},
    {'H', "view_open", 280},
    {'H', "view_close", 288},
    {'H', "view_root", 296},
    {'H', "view_kind", 304},
    {'H', "view_parent", 312},
    {'H', "view_count", 320},
    {'H', "view_at", 328},
    {'H', "view_get", 336},
    {'H', "view_attr_count", 344},
    {'H', "view_attr_at", 352},
    {'H', "view_attr_get", 360},
    {'H', "view_value_next", 368},
    {'H', "view_set", 376},
    {'H', "view_attr_set", 384},
    {'H', "view_attr_delete", 392},
    {'H', "view_attr_rename", 400},
    {'H', "view_drop", 408},
    {'H', "view_commit", 416},
    {'H', "view_build", 424},
    {'H', "view_build_add", 432},
    {'H', "view_build_finish", 440},
    {'H', "view_build_abort", 448},
    {'H', "pipeline_refuse", 456},
    {'H', "cfg_quoted", 464},
    {'H', "value_container", 472},
    {'H', "emit_to", 480},
    {'H', "connector_pipelines", 488},
    {'P', "extension_interface", 152},
    {'H', "extension_get", 496},
    {'H', "queue_budget_limit", 504},
    {'P', "min_host_minor", 160},
    {'H', "status_json", 512},
    {'H', "batch_pieces", 520},
    {'H', "settle_new", 528},
    {'H', "settle_attach", 536},
    {'H', "settle_release", 544},
    {'H', "settle_wanted", 552},
    {'H', "settle_durable", 560},
    {'H', "metric_register_labelled", 568},
    {'H', "metric_series", 576},
    {'H', "batch_set_compressed", 584},
    {'H', "batch_compressed_pieces", 592},
    {'H', "emit_may_wait", 600},
    {'H', "compressed_wanted", 608},
    {0, NULL, 0},
};

static const abi_member_t *find(const abi_member_t *t, char which, const char *name)
{
    for (; t->which; t++)
        if (t->which == which && !strcmp(t->name, name)) return t;
    return NULL;
}

static void test_current_matches_record(void **state)
{
    (void)state;
    size_t n = 0;
    for (const abi_member_t *m = abi_members_cur; m->which; m++, n++) {
        const abi_member_t *r = find(recorded, m->which, m->name);
        if (!r) fail_msg("%c %s is not in the recorded table: append it", m->which, m->name);
        if (r->offset != m->offset)
            fail_msg("%c %s moved: recorded at %zu, now at %zu", m->which, m->name, r->offset,
                     m->offset);
    }
    size_t nrec = 0;
    for (const abi_member_t *r = recorded; r->which; r++, nrec++)
        if (!find(abi_members_cur, r->which, r->name))
            fail_msg("%c %s was removed from the ABI", r->which, r->name);
    assert_int_equal(n, nrec);
}

static void check_old(const abi_member_t *old, const abi_sizes_t *sz, int minor)
{
    assert_int_equal(sz->minor, minor);
    size_t n = 0;
    for (const abi_member_t *m = old; m->which; m++, n++) {
        const abi_member_t *c = find(abi_members_cur, m->which, m->name);
        if (!c) fail_msg("1.%d: %c %s is gone", minor, m->which, m->name);
        if (c->offset != m->offset)
            fail_msg("1.%d: %c %s at %zu, now at %zu", minor, m->which, m->name, m->offset,
                     c->offset);
    }
    assert_true(n > 40);
    /* Each old struct is a prefix of the current one. */
    assert_true(sz->plugin <= abi_sizes_cur.plugin);
    assert_true(sz->host <= abi_sizes_cur.host);
}

static void test_old_headers_are_prefixes(void **state)
{
    (void)state;
    check_old(abi_members_v10, &abi_sizes_v10, 0);
    check_old(abi_members_v11, &abi_sizes_v11, 1);
    check_old(abi_members_v12, &abi_sizes_v12, 2);
    check_old(abi_members_v13, &abi_sizes_v13, 3);
    check_old(abi_members_v14, &abi_sizes_v14, 4);
    check_old(abi_members_v15, &abi_sizes_v15, 5);
    check_old(abi_members_v16, &abi_sizes_v16, 6);
    check_old(abi_members_v17, &abi_sizes_v17, 7);
    assert_int_equal(abi_sizes_cur.minor, SY_TEST_ABI_MINOR);
}

static sy_instance_t *instance(sy__router_t *r, const char *id)
{
    for (size_t i = 0; i < r->engine->ninstances; i++)
        if (!strcmp(r->engine->instances[i]->id, id)) return r->engine->instances[i];
    fail_msg("no instance %s", id);
    return NULL;
}

/* ABI 1.8: compressed_wanted() is true only for a receiver with an exporter that
 * declares SY_PLUGIN_SENDS_COMPRESSED (otlphttp) behind it, for that signal;
 * emit_may_wait() is true for a receiver whose pipeline only has full queues and
 * false once a memory_limiter refuses. */
static void test_receiver_queries(void **state)
{
    (void)state;
    const char *yaml = "receivers:\n  testgen/a: {count: 0}\n  testgen/b: {count: 0}\n"
                       "  testgen/c: {count: 0}\n"
                       "processors:\n  memory_limiter: {check_interval: 10ms, limit_mib: 1}\n"
                       "exporters:\n  testsink/a: {}\n  testsink/c: {}\n"
                       "  otlphttp/b: {endpoint: 'http://127.0.0.1:9'}\n"
                       "service:\n  telemetry: {logs: {level: error}}\n  pipelines:\n"
                       "    traces/a: {receivers: [testgen/a], exporters: [testsink/a]}\n"
                       "    traces/b: {receivers: [testgen/b], exporters: [otlphttp/b]}\n"
                       "    traces/c: {receivers: [testgen/c], processors: [memory_limiter], "
                       "exporters: [testsink/c]}\n";
    sy__router_t *r = sy_test_router_start(yaml);
    const sy_host_api_t *api = sy__host_api();
    sy_instance_t *a = instance(r, "testgen/a"), *b = instance(r, "testgen/b"),
                  *c = instance(r, "testgen/c");
    assert_false(api->compressed_wanted(a, SY_SIGNAL_TRACES));
    assert_true(api->compressed_wanted(b, SY_SIGNAL_TRACES));
    assert_false(api->compressed_wanted(b, SY_SIGNAL_METRICS)); /* no such pipeline */
    assert_false(api->compressed_wanted(instance(r, "testsink/a"), SY_SIGNAL_TRACES));
    assert_true(api->emit_may_wait(a, SY_SIGNAL_TRACES));
    assert_true(api->emit_may_wait(b, SY_SIGNAL_TRACES));
    assert_int_equal(sy_test_metric_wait("switchyard_memory_limiter_refusing",
                                         "processor=\"memory_limiter\",pipeline=\"traces/c\"", 1,
                                         3000),
                     1);
    assert_false(api->emit_may_wait(c, SY_SIGNAL_TRACES));
    assert_true(api->emit_may_wait(a, SY_SIGNAL_TRACES)); /* another pipeline's limiter */
    assert_int_equal(sy_test_router_close(r), 0);
}

/* The same processor built against each old header (tests/plugins: abi10 ...
 * abi17) passes every span through and reads its 1.0-layout settings back. */
static void test_old_plugins_run(void **state)
{
    (void)state;
    static const char *const types[] = {"abi10", "abi11", "abi12", "abi13",
                                        "abi14", "abi15", "abi16", "abi17"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char path[128], yaml[1024], labels[128];
        snprintf(path, sizeof(path), "/tmp/sy_abi_%s.%d", types[i], (int)getpid());
        snprintf(yaml, sizeof(yaml),
                 "receivers:\n  testgen: {count: 20, spans: 5}\n"
                 "processors:\n  %s: {factor: 7, tag: m%s}\n"
                 "exporters:\n  testsink: {report_path: %s, verify: true, max_seq: 1000}\n"
                 "service:\n  pipelines:\n    traces:\n      receivers: [testgen]\n"
                 "      processors: [%s]\n      exporters: [testsink]\n",
                 types[i], types[i] + 3, path, types[i]);
        sy__router_t *r = sy_test_router_start(yaml);
        snprintf(labels, sizeof(labels), "processor=\"%s\",pipeline=\"traces\"", types[i]);
        assert_int_equal(sy_test_metric_wait("switchyard_abiold_items_total", labels, 100, 5000),
                         100);
        assert_int_equal(sy_test_router_close(r), 0);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        unsigned long long batches = 0, items = 0, distinct = 0, dup = 0;
        assert_int_equal(fscanf(f, "batches=%llu items=%llu distinct=%llu duplicates=%llu",
                                &batches, &items, &distinct, &dup),
                         4);
        fclose(f);
        unlink(path);
        assert_int_equal(items, 100);
        assert_int_equal(distinct, 100);
        assert_int_equal(dup, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_matches_record),
        cmocka_unit_test(test_old_headers_are_prefixes),
        cmocka_unit_test(test_old_plugins_run),
        cmocka_unit_test(test_receiver_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
