/*
 * test_config.c - the configuration tree: YAML loading with positions, errors,
 * anchors, env expansion, merging of files, --set, durations and sizes, filling
 * a plugin's struct from a field table, and rendering back to YAML.
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

#ifndef SY_TEST_DATA_DIR
#define SY_TEST_DATA_DIR "tests/data"
#endif
#define CFG_DIR SY_TEST_DATA_DIR "/config/"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static bool diag_has(const sy__diag_t *d, const char *msg)
{
    for (size_t i = 0; i < d->count; i++)
        if (!strcmp(d->msgs[i], msg)) return true;
    return false;
}

/* Fails, printing every message, unless `msg` is one of them exactly. */
#define assert_diag(d, msg)                          \
    do {                                             \
        if (!diag_has((d), (msg))) {                 \
            sy__diag_print((d), stderr);             \
            fail_msg("expected message: %s", (msg)); \
        }                                            \
    } while (0)

static sy_cfg_node_t *load(const char *yaml, sy__diag_t *d)
{
    sy__diag_init(d);
    return sy__cfg_load_string("t.yaml", yaml, d);
}

static const sy_cfg_node_t *path(const sy_cfg_node_t *n, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && n;
         seg = strtok_r(NULL, ".", &save))
        n = sy__cfg_get(n, seg);
    return n;
}

static const char *sval(const sy_cfg_node_t *root, const char *dotted)
{
    return sy__cfg_scalar(path(root, dotted));
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

static void test_parse_kinds_and_positions(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("a:\n"
                            "  b: 1\n"
                            "  c: \"two\"\n"
                            "  list: [x, 'y', ~]\n"
                            "n1:\n"
                            "n2: null\n"
                            "n3: ~\n"
                            "s1: 'null'\n"
                            "e: {}\n",
                            &d);
    assert_non_null(r);
    assert_int_equal(d.count, 0);
    assert_int_equal(sy__cfg_kind(r), SY__CFG_MAP);
    const sy_cfg_node_t *b = path(r, "a.b");
    assert_string_equal(sy__cfg_scalar(b), "1");
    assert_false(b->quoted);
    assert_string_equal(sy__cfg_where(b), "t.yaml:2:6");
    const sy_cfg_node_t *c = path(r, "a.c");
    assert_true(c->quoted);
    assert_string_equal(c->scalar, "two");
    assert_string_equal(sy__cfg_where(c), "t.yaml:3:6");
    const sy_cfg_node_t *list = path(r, "a.list");
    assert_int_equal(sy__cfg_kind(list), SY__CFG_LIST);
    assert_int_equal(sy__cfg_len(list), 3);
    const char *key = "x";
    assert_string_equal(sy__cfg_scalar(sy__cfg_at(list, 1, &key)), "y");
    assert_null(key);
    assert_int_equal(sy__cfg_kind(sy__cfg_at(list, 2, NULL)), SY__CFG_NULL);
    assert_null(sy__cfg_at(list, 3, NULL));
    assert_string_equal(sy__cfg_where(sy__cfg_at(list, 2, NULL)), "t.yaml:4:18");
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "n1")), SY__CFG_NULL);
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "n2")), SY__CFG_NULL);
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "n3")), SY__CFG_NULL);
    assert_string_equal(sval(r, "s1"), "null");
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "e")), SY__CFG_MAP);
    assert_int_equal(sy__cfg_len(sy__cfg_get(r, "e")), 0);
    /* Keys keep their own positions, for "invalid keys" errors. */
    assert_string_equal(sy__cfg_where(sy__cfg_key_node(sy__cfg_get(r, "a"), 1)), "t.yaml:3:3");
    key = NULL;
    sy__cfg_at(r, 0, &key);
    assert_string_equal(key, "a");
    assert_null(sy__cfg_get(list, "x")); /* not a map */
    assert_null(sy__cfg_get(r, "missing"));
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_parse_empty(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("", &d);
    assert_non_null(r);
    assert_int_equal(sy__cfg_kind(r), SY__CFG_NULL);
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_syntax_error_file(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "syntax_error.yaml"};
    assert_null(sy__cfg_load(files, 1, NULL, 0, &d));
    assert_diag(&d, CFG_DIR "syntax_error.yaml:4:10: did not find expected ',' or ']' while "
                            "parsing a flow sequence (line 3, column 16)");
    sy__diag_free(&d);
}

static void test_syntax_error_string(void **state)
{
    (void)state;
    sy__diag_t d;
    assert_null(load("a: 1\n  b: 2\n", &d));
    assert_diag(&d, "t.yaml:2:4: mapping values are not allowed in this context");
    sy__diag_free(&d);
    assert_null(load("a: \"open\n", &d));
    assert_diag(&d, "t.yaml:2:1: found unexpected end of stream while scanning a quoted scalar "
                    "(line 1, column 4)");
    sy__diag_free(&d);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "duplicate_key.yaml"};
    assert_null(sy__cfg_load(files, 1, NULL, 0, &d));
    assert_diag(&d, CFG_DIR "duplicate_key.yaml:5:1: duplicate key \"receivers\" in one map "
                            "(first defined at " CFG_DIR "duplicate_key.yaml:1:1)");
    sy__diag_free(&d);
    assert_null(load("a:\n  x: 1\n  y: 2\n  x: 3\n", &d));
    assert_diag(&d, "t.yaml:4:3: duplicate key \"x\" in one map (first defined at t.yaml:2:3)");
    sy__diag_free(&d);
}

static void test_missing_file(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "no-such-file.yaml"};
    assert_null(sy__cfg_load(files, 1, NULL, 0, &d));
    assert_diag(&d,
                CFG_DIR "no-such-file.yaml: cannot read config file: No such file or directory");
    sy__diag_free(&d);
}

static void test_multiple_documents(void **state)
{
    (void)state;
    sy__diag_t d;
    assert_null(load("a: 1\n---\nb: 2\n", &d));
    assert_diag(&d, "t.yaml:2:1: a configuration file holds one YAML document, this is a second");
    sy__diag_free(&d);
}

static void test_anchors_and_merge_keys(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("common: &c\n"
                            "  timeout: 5s\n"
                            "  retry: {enabled: true}\n"
                            "a:\n"
                            "  <<: *c\n"
                            "  timeout: 10s\n"
                            "b: *c\n"
                            "names: [&n x, *n]\n",
                            &d);
    assert_non_null(r);
    assert_int_equal(d.count, 0);
    assert_string_equal(sval(r, "a.timeout"), "10s");        /* explicit key wins */
    assert_string_equal(sval(r, "a.retry.enabled"), "true"); /* merged */
    assert_null(sy__cfg_get(sy__cfg_get(r, "a"), "<<"));
    assert_string_equal(sval(r, "b.timeout"), "5s");
    assert_string_equal(sy__cfg_scalar(sy__cfg_at(sy__cfg_get(r, "names"), 1, NULL)), "x");
    sy__cfg_free(r);
    sy__diag_free(&d);

    assert_null(load("a: *nope\n", &d));
    assert_diag(&d, "t.yaml:1:4: unknown anchor: *nope is not defined before its use");
    sy__diag_free(&d);
}

static void test_alias_bomb_is_bounded(void **state)
{
    (void)state;
    sy__diag_t d;
    /* Each level multiplies by 10: 10^9 nodes if expanded. */
    sy_cfg_node_t *r = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                            "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                            "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                            "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                            "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
                            &d);
    assert_null(r);
    assert_true(sy__diag_errors(&d) > 0);
    assert_non_null(strstr(d.msgs[0], "expands beyond"));
    sy__diag_free(&d);
}

static void test_depth_is_bounded(void **state)
{
    (void)state;
    sy__diag_t d;
    char deep[1024];
    memset(deep, '[', 600);
    deep[600] = '\0';
    assert_null(load(deep, &d));
    assert_diag(&d, "t.yaml:1:130: nesting deeper than 128 levels");
    sy__diag_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Environment references                                                    */
/* ------------------------------------------------------------------------ */

static void test_env_forms(void **state)
{
    (void)state;
    sy__diag_t d;
    setenv("SY_T_PORT", "4317", 1);
    setenv("SY_T_HOST", "collector", 1);
    setenv("SY_T_LIST", "[a, b]", 1);
    setenv("SY_T_MAPTEXT", "a: b", 1);
    setenv("SY_T_EMPTY", "", 1);
    unsetenv("SY_T_UNSET");
    sy_cfg_node_t *r = load("port: ${env:SY_T_PORT}\n"
                            "bare: ${SY_T_PORT}\n"
                            "url: http://${env:SY_T_HOST}:${SY_T_PORT}/v1\n"
                            "quoted: \"${env:SY_T_PORT}\"\n"
                            "dflt: ${env:SY_T_UNSET:-fallback}\n"
                            "dflt2: ${SY_T_UNSET:-x:y}\n"
                            "set_empty: ${env:SY_T_EMPTY:-unused}\n"
                            "dollar: $$HOME and $$${SY_T_HOST}\n"
                            "lone: a $ b $VAR\n"
                            "list: ${env:SY_T_LIST}\n"
                            "maptext: ${env:SY_T_MAPTEXT}\n"
                            "${SY_T_HOST}: key-not-expanded\n",
                            &d);
    assert_non_null(r);
    assert_int_equal(sy__diag_errors(&d), 0);
    assert_int_equal(d.warnings, 0);
    assert_string_equal(sval(r, "port"), "4317");
    assert_false(sy__cfg_get(r, "port")->quoted); /* typed as YAML: an int */
    assert_string_equal(sy__cfg_where(sy__cfg_get(r, "port")), "t.yaml:1:7");
    assert_string_equal(sval(r, "bare"), "4317");
    assert_string_equal(sval(r, "url"), "http://collector:4317/v1");
    assert_string_equal(sval(r, "quoted"), "4317");
    assert_true(sy__cfg_get(r, "quoted")->quoted);
    assert_string_equal(sval(r, "dflt"), "fallback");
    assert_string_equal(sval(r, "dflt2"), "x:y");
    /* Like otelcol, a default is used only when the variable is unset. */
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "set_empty")), SY__CFG_NULL);
    assert_string_equal(sval(r, "dollar"), "$HOME and $collector");
    assert_string_equal(sval(r, "lone"), "a $ b $VAR");
    const sy_cfg_node_t *list = sy__cfg_get(r, "list");
    assert_int_equal(sy__cfg_kind(list), SY__CFG_LIST);
    assert_int_equal(sy__cfg_len(list), 2);
    assert_string_equal(sy__cfg_where(sy__cfg_at(list, 1, NULL)), "t.yaml:10:7");
    assert_string_equal(sval(r, "maptext"), "a: b"); /* block YAML stays text */
    assert_string_equal(sval(r, "${SY_T_HOST}"), "key-not-expanded");
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_env_unset_warns(void **state)
{
    (void)state;
    sy__diag_t d;
    unsetenv("SY_T_UNSET");
    sy_cfg_node_t *r = load("a: ${env:SY_T_UNSET}\nb: x${SY_T_UNSET}y\n", &d);
    assert_non_null(r);
    assert_int_equal(sy__diag_errors(&d), 0);
    assert_int_equal(d.warnings, 2);
    assert_diag(&d, "t.yaml:1:4: warning: environment variable \"SY_T_UNSET\" is not set; it "
                    "expands to an empty string");
    assert_diag(&d, "t.yaml:2:4: warning: environment variable \"SY_T_UNSET\" is not set; it "
                    "expands to an empty string");
    assert_int_equal(sy__cfg_kind(sy__cfg_get(r, "a")), SY__CFG_NULL);
    assert_string_equal(sval(r, "b"), "xy");
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_env_malformed(void **state)
{
    (void)state;
    sy__diag_t d;
    assert_null(load("a: 1\nb: ${env:FOO\n", &d));
    assert_diag(&d, "t.yaml:2:4: malformed reference \"${env:FOO\": no closing '}' (write $$ for "
                    "a literal $)");
    sy__diag_free(&d);
    assert_null(load("a: ${file:/etc/passwd}\n", &d));
    assert_diag(&d, "t.yaml:1:4: unsupported reference \"${file:/etc/passwd}\": scheme \"file\" "
                    "is not supported (only env is; write $$ for a literal $)");
    sy__diag_free(&d);
    assert_null(load("a: ${env:1BAD}\n", &d));
    assert_diag(&d, "t.yaml:1:4: invalid environment variable name \"1BAD\" in \"${env:1BAD}\": "
                    "a name must match ^[a-zA-Z_][a-zA-Z0-9_]*$");
    sy__diag_free(&d);
    assert_null(load("a: ${}\n", &d));
    assert_diag(&d, "t.yaml:1:4: invalid environment variable name \"\" in \"${}\": a name must "
                    "match ^[a-zA-Z_][a-zA-Z0-9_]*$");
    sy__diag_free(&d);
}

/* A large variable used many times stops at SY__CFG_MAX_EXPANDED bytes, with an
 * error at the reference that crossed it, instead of growing without end. */
static void test_env_expansion_size_is_bounded(void **state)
{
    (void)state;
    size_t big_len = 100000, refs = 1000;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    setenv("SY_T_BIG", big, 1);
    free(big);

    static const char item[] = "  - ${env:SY_T_BIG}\n";
    char *yaml = malloc(3 + refs * (sizeof item - 1) + 1);
    assert_non_null(yaml);
    strcpy(yaml, "a:\n");
    for (size_t i = 0; i < refs; i++)
        strcat(yaml + 3 + i * (sizeof item - 1), item);

    sy__diag_t d;
    sy_cfg_node_t *r = load(yaml, &d);
    assert_null(r);
    /* 671 values of 100,000 bytes fit in 64 MiB; the 672nd (line 673) does not. */
    assert_diag(&d, "t.yaml:673:5: environment references expand the configuration beyond 64 "
                    "MiB (at \"${env:SY_T_BIG}\"); is a large variable used many times?");
    assert_int_equal(sy__diag_errors(&d), 1); /* expansion stops at the first */
    sy__diag_free(&d);
    free(yaml);
    unsetenv("SY_T_BIG");
}

/* A variable holding a flow list adds its nodes to the document's; the total is
 * bounded like the parser's node count. */
static void test_env_expansion_nodes_are_bounded(void **state)
{
    (void)state;
    size_t items = 10000, refs = 101;
    char *list = malloc(2 * items + 2);
    assert_non_null(list);
    char *p = list;
    *p++ = '[';
    for (size_t i = 0; i < items; i++) {
        *p++ = 'x';
        *p++ = i + 1 < items ? ',' : ']';
    }
    *p = '\0';
    setenv("SY_T_LIST10K", list, 1);
    free(list);

    static const char item[] = "  - ${env:SY_T_LIST10K}\n";
    char *yaml = malloc(3 + refs * (sizeof item - 1) + 1);
    assert_non_null(yaml);
    strcpy(yaml, "a:\n");
    for (size_t i = 0; i < refs; i++)
        strcat(yaml + 3 + i * (sizeof item - 1), item);

    sy__diag_t d;
    sy_cfg_node_t *r = load(yaml, &d);
    assert_null(r);
    /* 104 nodes of its own, 10,000 more per list: the 25th (line 26) passes 250,000. */
    assert_diag(&d, "t.yaml:26:5: environment references make the document more than 250000 "
                    "nodes");
    assert_int_equal(sy__diag_errors(&d), 1);
    sy__diag_free(&d);
    free(yaml);
    unsetenv("SY_T_LIST10K");
}

/* ------------------------------------------------------------------------ */
/* Merging and --set                                                         */
/* ------------------------------------------------------------------------ */

static void test_merge_two_files(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "base.yaml", CFG_DIR "overlay.yaml", CFG_DIR "empty.yaml"};
    sy_cfg_node_t *r = sy__cfg_load(files, 3, NULL, 0, &d);
    assert_non_null(r);
    assert_int_equal(d.count, 0);
    /* Maps merge: both protocols are there. */
    assert_string_equal(sval(r, "receivers.otlp.protocols.grpc.endpoint"), "localhost:4317");
    assert_string_equal(sval(r, "receivers.otlp.protocols.http.endpoint"), "0.0.0.0:4318");
    /* The later file wins, and its node points at it. */
    const sy_cfg_node_t *v = path(r, "exporters.debug.verbosity");
    assert_string_equal(sy__cfg_scalar(v), "detailed");
    assert_string_equal(sy__cfg_where(v), CFG_DIR "overlay.yaml:8:16");
    /* Lists are replaced, not appended. */
    const sy_cfg_node_t *tags = path(r, "exporters.debug.tags");
    assert_int_equal(sy__cfg_len(tags), 1);
    assert_string_equal(sy__cfg_scalar(sy__cfg_at(tags, 0, NULL)), "z");
    /* Untouched parts of the first file keep their positions. */
    assert_string_equal(sy__cfg_where(path(r, "service.pipelines.traces")),
                        CFG_DIR "base.yaml:13:7");
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_set(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    const char *files[] = {CFG_DIR "base.yaml"};
    const char *sets[] = {
        "exporters.debug.verbosity=normal",        "processors.batch.timeout=2s",
        "processors::batch::send_batch_size=1000", "exporters.debug.tags=[q, r]",
        "service.telemetry.logs.level=\"debug\"",  "receivers.otlp.protocols=5",
    };
    sy_cfg_node_t *r = sy__cfg_load(files, 1, sets, 6, &d);
    assert_non_null(r);
    assert_int_equal(d.count, 0);
    assert_string_equal(sval(r, "exporters.debug.verbosity"), "normal");
    assert_string_equal(sval(r, "processors.batch.timeout"), "2s");
    const sy_cfg_node_t *size = path(r, "processors.batch.send_batch_size");
    assert_string_equal(sy__cfg_scalar(size), "1000");
    assert_false(size->quoted);
    assert_string_equal(sy__cfg_where(size), "--set:3:36");
    assert_int_equal(sy__cfg_len(path(r, "exporters.debug.tags")), 2);
    assert_true(path(r, "service.telemetry.logs.level")->quoted);
    assert_string_equal(sval(r, "receivers.otlp.protocols"), "5");
    /* The rest of the file is still there. */
    assert_non_null(path(r, "service.pipelines.traces"));
    sy__cfg_free(r);
    sy__diag_free(&d);

    sy__diag_init(&d);
    const char *bad[] = {"novalue", "a..b=1", "=1"};
    assert_null(sy__cfg_load(files, 1, bad, 3, &d));
    assert_diag(&d, "--set:1:1: --set \"novalue\": expected key=value, such as "
                    "processors::batch::timeout=2s");
    assert_diag(&d, "--set:2:1: --set \"a..b=1\": empty key in the path");
    assert_diag(&d, "--set:3:1: --set \"=1\": expected key=value, such as "
                    "processors::batch::timeout=2s");
    sy__diag_free(&d);
}

static void test_set_on_empty_root(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    sy_cfg_node_t *root = NULL;
    assert_int_equal(sy__cfg_apply_set(&root, "a.b.c=true", 0, &d), 0);
    assert_string_equal(sval(root, "a.b.c"), "true");
    sy__cfg_free(root);
    sy__diag_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Durations and sizes                                                       */
/* ------------------------------------------------------------------------ */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"0", 0},
        {"200ms", 200000000},
        {"5s", 5000000000},
        {"1m", 60000000000},
        {"1h30m", 5400000000000},
        {"2h45m", 9900000000000},
        {"1.5s", 1500000000},
        {"1.5h", 5400000000000},
        {".5s", 500000000},
        {"300us", 300000},
        {"300\xc2\xb5s", 300000},
        {"10ns", 10},
        {"-5s", -5000000000},
        {"1m30s", 90000000000},
        {"2562047h", 2562047ll * 3600 * 1000000000},
    };
    static const char *const bad[] = {"banana", "5", "",     "s",        "5 s", "5sec",
                                      "1.s.",   "-", "1e3s", "2562048h", "5S"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns = -1;
        if (sy__parse_duration(ok[i].s, &ns) != 0) fail_msg("refused %s", ok[i].s);
        assert_int_equal(ns, ok[i].ns);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns;
        if (sy__parse_duration(bad[i], &ns) == 0) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"4MiB", 4u << 20},
        {"20MB", 20000000},
        {"512KiB", 512u << 10},
        {"1GiB", 1u << 30},
        {"3gb", 3000000000},
        {"100B", 100},
        {"64 KiB", 64u << 10},
        {"2TiB", 2ull << 40},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "1.5",        "1.5MiB", "4 MiBs", "MiB", "-1", "4PiB", "", "0x10", "18446744073709551616",
        "20000000TiB"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t b = 1;
        if (sy__parse_size(ok[i].s, &b) != 0) fail_msg("refused %s", ok[i].s);
        assert_true(b == ok[i].b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b;
        if (sy__parse_size(bad[i], &b) == 0) fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* Filling a plugin's struct                                                 */
/* ------------------------------------------------------------------------ */

typedef struct tcfg_s {
    bool flag;
    int64_t count;
    double ratio;
    char *name;
    int64_t timeout;
    uint64_t limit;
    int mode;
    bool tls;
    bool insecure;
    sy_cfg_strlist_t tags;
    sy_cfg_strmap_t headers;
    const sy_cfg_node_t *raw;
    bool grpc;
    char *grpc_endpoint;
    bool http;
    char *http_endpoint;
    char *path; /* required */
} tcfg_t;

static const char *const modes[] = {"hash_seed", "proportional", "equalizing", NULL};

#define F(n, t, m, d)                                                                \
    {                                                                                \
        SY_CFG_FIELD(n, t, tcfg_t, m), .default_value = d, .description = n " field" \
    }
static const sy_config_field_t fields[] = {
    F("flag", SY_CFG_BOOL, flag, "true"),
    F("count", SY_CFG_INT, count, "8192"),
    F("ratio", SY_CFG_DOUBLE, ratio, "0.5"),
    F("name", SY_CFG_STRING, name, "dflt"),
    F("timeout", SY_CFG_DURATION, timeout, "200ms"),
    F("limit", SY_CFG_SIZE, limit, "4MiB"),
    {SY_CFG_FIELD("mode", SY_CFG_ENUM, tcfg_t, mode), .default_value = "proportional",
     .description = "mode", .enum_values = modes},
    F("tls", SY_CFG_PRESENT, tls, NULL),
    F("tls.insecure", SY_CFG_BOOL, insecure, NULL),
    F("tags", SY_CFG_STRLIST, tags, "[a, b]"),
    F("headers", SY_CFG_STRMAP, headers, NULL),
    F("raw", SY_CFG_RAW, raw, NULL),
    F("protocols.grpc", SY_CFG_PRESENT, grpc, NULL),
    F("protocols.grpc.endpoint", SY_CFG_STRING, grpc_endpoint, "localhost:4317"),
    F("protocols.http", SY_CFG_PRESENT, http, NULL),
    F("protocols.http.endpoint", SY_CFG_STRING, http_endpoint, "localhost:4318"),
    {SY_CFG_FIELD("path", SY_CFG_STRING, tcfg_t, path), .required = true,
     .description = "required"},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static void test_fill_defaults(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    tcfg_t c;
    memset(&c, 0, sizeof(c));
    /* Everything but the required field: defaults only. */
    assert_int_equal(sy__cfg_fill("t", fields, NFIELDS - 1, NULL, &c, &d), 0);
    assert_true(c.flag);
    assert_int_equal(c.count, 8192);
    assert_true(c.ratio == 0.5);
    assert_string_equal(c.name, "dflt");
    assert_int_equal(c.timeout, 200000000);
    assert_true(c.limit == 4u << 20);
    assert_int_equal(c.mode, 1);
    assert_false(c.tls);
    assert_false(c.grpc);
    assert_int_equal(c.tags.count, 2);
    assert_string_equal(c.tags.items[1], "b");
    assert_int_equal(c.headers.count, 0);
    assert_null(c.raw);
    assert_string_equal(c.grpc_endpoint, "localhost:4317");
    sy__cfg_free_struct(fields, NFIELDS, &c);
    assert_null(c.name);
    assert_null(c.tags.items);
    sy__diag_free(&d);
}

static void test_fill_values(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("t:\n"
                            "  flag: false\n"
                            "  count: -0x10\n"
                            "  ratio: 12.5\n"
                            "  name: 123\n"
                            "  timeout: 1m30s\n"
                            "  limit: 20MB\n"
                            "  mode: equalizing\n"
                            "  tls:\n"
                            "  tags: []\n"
                            "  headers: {a: b, c: 1, empty: }\n"
                            "  raw: {anything: [goes, here]}\n"
                            "  protocols:\n"
                            "    http:\n"
                            "      endpoint: 0.0.0.0:4318\n"
                            "  path: /tmp/x\n",
                            &d);
    assert_non_null(r);
    tcfg_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sy__cfg_fill("t", fields, NFIELDS, sy__cfg_get(r, "t"), &c, &d), 0);
    assert_int_equal(d.count, 0);
    assert_false(c.flag);
    assert_int_equal(c.count, -16);
    assert_true(c.ratio == 12.5);
    assert_string_equal(c.name, "123");
    assert_int_equal(c.timeout, 90000000000);
    assert_true(c.limit == 20000000);
    assert_int_equal(c.mode, 2);
    assert_true(c.tls); /* present though null */
    assert_false(c.insecure);
    assert_int_equal(c.tags.count, 0); /* an empty list replaces the default */
    assert_int_equal(c.headers.count, 3);
    assert_string_equal(c.headers.keys[1], "c");
    assert_string_equal(c.headers.values[1], "1");
    assert_string_equal(c.headers.values[2], "");
    assert_non_null(c.raw);
    assert_int_equal(sy__cfg_kind(c.raw), SY__CFG_MAP);
    assert_string_equal(sy__cfg_where(c.raw), "t.yaml:12:8");
    assert_false(c.grpc);
    assert_true(c.http);
    assert_string_equal(c.grpc_endpoint, "localhost:4317");
    assert_string_equal(c.http_endpoint, "0.0.0.0:4318");
    assert_string_equal(c.path, "/tmp/x");
    sy__cfg_free_struct(fields, NFIELDS, &c);
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_fill_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        {"t:\n  path: x\n  flag: yes\n",
         "t.yaml:3:9: 't.flag': expected true or false, got \"yes\""},
        {"t:\n  path: x\n  count: 1.5\n",
         "t.yaml:3:10: 't.count': expected an integer, got \"1.5\""},
        {"t:\n  path: x\n  count: 99999999999999999999\n",
         "t.yaml:3:10: 't.count': expected an integer, got \"99999999999999999999\""},
        {"t:\n  path: x\n  ratio: abc\n", "t.yaml:3:10: 't.ratio': expected a number, got \"abc\""},
        {"t:\n  path: x\n  name: [a]\n", "t.yaml:3:9: 't.name': expected a string, got a list"},
        {"t:\n  path: x\n  timeout: banana\n",
         "t.yaml:3:12: 't.timeout': expected a duration such as 200ms or 5s, got \"banana\""},
        {"t:\n  path: x\n  timeout: 5\n",
         "t.yaml:3:12: 't.timeout': expected a duration such as 200ms or 5s, got \"5\""},
        {"t:\n  path: x\n  limit: 4MB/s\n",
         "t.yaml:3:10: 't.limit': expected a size such as 4MiB, 20MB or 1048576 (bytes), got "
         "\"4MB/s\""},
        {"t:\n  path: x\n  mode: random\n",
         "t.yaml:3:9: 't.mode': expected one of hash_seed, proportional, equalizing, got "
         "\"random\""},
        {"t:\n  path: x\n  tags: a\n",
         "t.yaml:3:9: 't.tags': expected a list of strings, got \"a\""},
        {"t:\n  path: x\n  tags: [a, {b: c}]\n",
         "t.yaml:3:13: 't.tags[1]': expected a string, got a map"},
        {"t:\n  path: x\n  headers: [a]\n",
         "t.yaml:3:12: 't.headers': expected a map of strings, got a list"},
        {"t:\n  path: x\n  headers: {a: [1]}\n",
         "t.yaml:3:16: 't.headers.a': expected a string, got a list"},
        {"t:\n  path: x\n  protocols:\n    htp:\n",
         "t.yaml:4:5: 't' has invalid keys: protocols.htp"},
        {"t:\n  path: x\n  tls: {insecur: true}\n",
         "t.yaml:3:9: 't' has invalid keys: tls.insecur"},
        {"t:\n  path: x\n  bogus: 1\n", "t.yaml:3:3: 't' has invalid keys: bogus"},
        {"t:\n  path: x\n  protocols.grpc: {}\n",
         "t.yaml:3:3: 't' has invalid keys: protocols.grpc"},
        {"t:\n  path: x\n  protocols: 5\n",
         "t.yaml:3:14: 't.protocols': expected a map, got \"5\""},
        {"t:\n  flag: true\n", "t.yaml:2:3: 't': missing required key 'path'"},
        {"t:\n  path:\n", "t.yaml:2:3: 't': missing required key 'path'"},
        {"t: [1]\n", "t.yaml:1:4: 't': expected a map, got a list"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sy__diag_t d;
        sy_cfg_node_t *r = load(cases[i].yaml, &d);
        assert_non_null(r);
        tcfg_t c;
        memset(&c, 0, sizeof(c));
        assert_int_equal(sy__cfg_fill("t", fields, NFIELDS, sy__cfg_get(r, "t"), &c, &d), -1);
        assert_diag(&d, cases[i].msg);
        /* A failed fill leaves nothing allocated behind. */
        assert_null(c.name);
        assert_null(c.path);
        assert_null(c.tags.items);
        assert_null(c.headers.keys);
        sy__cfg_free_struct(fields, NFIELDS, &c);
        sy__cfg_free(r);
        sy__diag_free(&d);
    }
}

static void test_fill_missing_required_without_node(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    tcfg_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sy__cfg_fill("file/x", fields, NFIELDS, NULL, &c, &d), -1);
    assert_diag(&d, "'file/x': missing required key 'path'");
    sy__diag_free(&d);
}

static void test_fill_reports_all_errors(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("t:\n  flag: 1\n  count: x\n  nope: 1\n", &d);
    tcfg_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sy__cfg_fill("t", fields, NFIELDS, sy__cfg_get(r, "t"), &c, &d), -1);
    assert_int_equal(sy__diag_errors(&d), 4);
    sy__cfg_free(r);
    sy__diag_free(&d);
}

static void test_fill_env_typed(void **state)
{
    (void)state;
    sy__diag_t d;
    setenv("SY_T_COUNT", "42", 1);
    setenv("SY_T_TAGS", "[x, y, z]", 1);
    sy_cfg_node_t *r =
        load("t:\n  path: p\n  count: ${env:SY_T_COUNT}\n  tags: ${SY_T_TAGS}\n", &d);
    tcfg_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sy__cfg_fill("t", fields, NFIELDS, sy__cfg_get(r, "t"), &c, &d), 0);
    assert_int_equal(c.count, 42);
    assert_int_equal(c.tags.count, 3);
    sy__cfg_free_struct(fields, NFIELDS, &c);
    sy__cfg_free(r);
    sy__diag_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */
/* ------------------------------------------------------------------------ */

static bool tree_equal(const sy_cfg_node_t *a, const sy_cfg_node_t *b)
{
    if (sy__cfg_kind(a) != sy__cfg_kind(b)) return false;
    if (a->kind == SY__CFG_SCALAR) return !strcmp(a->scalar, b->scalar) && a->quoted == b->quoted;
    if (sy__cfg_len(a) != sy__cfg_len(b)) return false;
    for (size_t i = 0; i < sy__cfg_len(a); i++) {
        const char *ka, *kb;
        const sy_cfg_node_t *va = sy__cfg_at(a, i, &ka), *vb = sy__cfg_at(b, i, &kb);
        if ((ka || kb) && (!ka || !kb || strcmp(ka, kb))) return false;
        if (!tree_equal(va, vb)) return false;
    }
    return true;
}

static void test_to_yaml_round_trip(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("a:\n  b: [1, \"2\", ~, {}]\n  c: 'it''s: here'\n"
                            "  d: \"line\\nbreak\"\n  e: []\n  \"k: x\": true\n",
                            &d);
    assert_non_null(r);
    char *y = sy__cfg_to_yaml(r);
    assert_non_null(y);
    sy_cfg_node_t *r2 = load(y, &d);
    assert_non_null(r2);
    assert_true(tree_equal(r, r2));
    free(y);
    sy__cfg_free(r);
    sy__cfg_free(r2);
    sy__diag_free(&d);
}

static void test_diag_print(void **state)
{
    (void)state;
    sy__diag_t d;
    sy__diag_init(&d);
    sy__diag_add(&d, NULL, "plain %d", 1);
    sy__diag_warn(&d, NULL, "careful");
    char buf[256] = {0};
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    sy__diag_print(&d, f);
    fclose(f);
    assert_string_equal(buf, "plain 1\nwarning: careful\n");
    assert_int_equal(sy__diag_errors(&d), 1);
    assert_int_equal(d.warnings, 1);
    sy__diag_free(&d);
}

/* Every diagnostic has one shape: "file:line:col: ", "file: " when only the file
 * is known, nothing when nothing is; a node's position is written the same way. */
static void test_diag_one_format(void **state)
{
    (void)state;
    sy__diag_t d;
    sy_cfg_node_t *r = load("a:\n  b: 1\n", &d);
    assert_non_null(r);
    const sy_cfg_node_t *b = path(r, "a.b");
    sy__diag_add(&d, b, "bad %s", "value");
    sy__diag_warn(&d, b, "odd");
    sy__diag_add_at(&d, "f.yaml", 3, 7, "from a mark");
    sy__diag_add_at(&d, "f.yaml", 0, 0, "cannot read");
    sy__diag_add_at(&d, NULL, 0, 0, "nowhere");
    assert_diag(&d, "t.yaml:2:6: bad value");
    assert_diag(&d, "t.yaml:2:6: warning: odd");
    assert_diag(&d, "f.yaml:3:7: from a mark");
    assert_diag(&d, "f.yaml: cannot read");
    assert_diag(&d, "nowhere");
    assert_string_equal(sy__cfg_where(b), "t.yaml:2:6");
    char *where = sy__diag_where("t.yaml", 2, 6);
    assert_string_equal(where, sy__cfg_where(b));
    free(where);
    assert_int_equal(sy__diag_errors(&d), 4);
    assert_int_equal(d.warnings, 1);
    sy__cfg_free(r);
    sy__diag_free(&d);
}

/* ---- ABI 1.3: min, max and pattern in the field table; the table's checks ---- */

typedef struct lim_s {
    int64_t n;
    double ratio;
    int64_t wait;
    uint64_t buf;
    char *name;
    sy_cfg_strlist_t tags;
    sy_cfg_strmap_t headers;
} lim_t;

static const sy_config_field_t lim_fields[] = {
    {SY_CFG_FIELD("n", SY_CFG_INT, lim_t, n), .default_value = "-100", .min = "-10", .max = "0x10"},
    {SY_CFG_FIELD("ratio", SY_CFG_DOUBLE, lim_t, ratio), .min = "0", .max = "1"},
    {SY_CFG_FIELD("wait", SY_CFG_DURATION, lim_t, wait), .min = "10ms", .max = "1m"},
    {SY_CFG_FIELD("buf", SY_CFG_SIZE, lim_t, buf), .min = "1KiB", .max = "4MiB"},
    {SY_CFG_FIELD("name", SY_CFG_STRING, lim_t, name), .min = "2", .max = "5",
     .pattern = "[a-z]+|x[0-9]"},
    {SY_CFG_FIELD("tags", SY_CFG_STRLIST, lim_t, tags), .min = "1", .max = "2",
     .pattern = "[a-z]*"},
    {SY_CFG_FIELD("headers", SY_CFG_STRMAP, lim_t, headers), .max = "1", .pattern = "v.*"},
};
#define NLIM (sizeof(lim_fields) / sizeof(lim_fields[0]))

static void test_fill_limits(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *msg; /* NULL: accepted */
    } cases[] = {
        {"t:\n  n: -10\n  ratio: 1\n  wait: 10ms\n  buf: 1024\n  name: ab\n  tags: [a]\n", NULL},
        {"t:\n  n: 16\n  ratio: 0\n  wait: 1m\n  buf: 4MiB\n  name: x1\n  tags: [a, \"\"]\n"
         "  headers: {k: vv}\n",
         NULL},
        {"t:\n  n: -11\n", "t.yaml:2:6: 't.n': must be at least -10, got \"-11\""},
        {"t:\n  n: 17\n", "t.yaml:2:6: 't.n': must be at most 0x10, got \"17\""},
        {"t:\n  ratio: 1.0001\n", "t.yaml:2:10: 't.ratio': must be at most 1, got \"1.0001\""},
        {"t:\n  ratio: -0.5\n", "t.yaml:2:10: 't.ratio': must be at least 0, got \"-0.5\""},
        {"t:\n  wait: 9ms\n", "t.yaml:2:9: 't.wait': must be at least 10ms, got \"9ms\""},
        {"t:\n  wait: 1m0.001s\n", "t.yaml:2:9: 't.wait': must be at most 1m, got \"1m0.001s\""},
        {"t:\n  buf: 1023\n", "t.yaml:2:8: 't.buf': must be at least 1KiB, got \"1023\""},
        {"t:\n  buf: 5MB\n", "t.yaml:2:8: 't.buf': must be at most 4MiB, got \"5MB\""},
        {"t:\n  name: a\n", "t.yaml:2:9: 't.name': must be at least 2 bytes long, got 1"},
        {"t:\n  name: abcdef\n", "t.yaml:2:9: 't.name': must be at most 5 bytes long, got 6"},
        {"t:\n  name: aB\n", "t.yaml:2:9: 't.name': \"aB\" does not match the pattern "
                             "[a-z]+|x[0-9]"},
        /* The alternation is anchored as a whole: "x1a" matches neither branch. */
        {"t:\n  name: x1a\n", "t.yaml:2:9: 't.name': \"x1a\" does not match the pattern "
                              "[a-z]+|x[0-9]"},
        {"t:\n  tags: []\n", "t.yaml:2:9: 't.tags': must have at least 1 entries, got 0"},
        {"t:\n  tags: [a, b, c]\n", "t.yaml:2:9: 't.tags': must have at most 2 entries, got 3"},
        {"t:\n  tags: [a, B]\n",
         "t.yaml:2:13: 't.tags[1]': \"B\" does not match the pattern [a-z]*"},
        {"t:\n  headers: {a: v, b: v}\n",
         "t.yaml:2:12: 't.headers': must have at most 1 entries, got 2"},
        {"t:\n  headers: {a: w}\n",
         "t.yaml:2:16: 't.headers.a': \"w\" does not match the pattern v.*"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sy__diag_t d;
        sy_cfg_node_t *r = load(cases[i].yaml, &d);
        assert_non_null(r);
        lim_t c;
        memset(&c, 0, sizeof(c));
        int rc = sy__cfg_fill("t", lim_fields, NLIM, sy__cfg_get(r, "t"), &c, &d);
        if (!cases[i].msg) {
            if (rc != 0) sy__diag_print(&d, stderr);
            assert_int_equal(rc, 0);
            assert_int_equal(d.count, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_diag(&d, cases[i].msg);
            assert_null(c.name);
        }
        sy__cfg_free_struct(lim_fields, NLIM, &c);
        sy__cfg_free(r);
        sy__diag_free(&d);
    }
    /* Bounds apply to what the user writes; the plugin's default (-100) is its own. */
    sy__diag_t d;
    sy__diag_init(&d);
    lim_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sy__cfg_fill("t", lim_fields, NLIM, NULL, &c, &d), 0);
    assert_int_equal(c.n, -100);
    sy__diag_free(&d);
}

static void test_check_table(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(sy__cfg_check_table("p.so", lim_fields, NLIM, sizeof(lim_t), err, sizeof(err)),
                     0);
    assert_int_equal(sy__cfg_check_table("p.so", fields, NFIELDS, sizeof(tcfg_t), err, sizeof(err)),
                     0);
    static const char *const no_values[] = {NULL};
    static const struct {
        sy_config_field_t field;
        size_t config_size;
        const char *msg;
    } cases[] = {
        {{SY_CFG_FIELD("n", SY_CFG_INT, lim_t, n)},
         4,
         "plugin p.so: config field 'n' (offset 0, 8 bytes) does not fit in its config struct of "
         "config_size 4 bytes"},
        {{.name = "far", .type = SY_CFG_BOOL, .offset = (size_t)-1},
         sizeof(lim_t),
         "plugin p.so: config field 'far' (offset 18446744073709551615, 1 bytes) does not fit"},
        {{SY_CFG_FIELD("headers", SY_CFG_STRMAP, lim_t, headers)},
         sizeof(lim_t) - 1,
         "config field 'headers' (offset 56, 24 bytes) does not fit in its config struct of "
         "config_size 79 bytes"},
        {{.name = NULL, .type = SY_CFG_INT},
         sizeof(lim_t),
         "plugin p.so: config field 0 has no name"},
        {{.name = "x", .type = (sy_cfg_type_t)99},
         sizeof(lim_t),
         "plugin p.so: config field 'x' has an unknown type 99"},
        {{.name = "e", .type = SY_CFG_ENUM, .enum_values = no_values},
         sizeof(lim_t),
         "plugin p.so: enum config field 'e' has no enum_values"},
        {{SY_CFG_FIELD("n", SY_CFG_INT, lim_t, n), .min = "ten"},
         sizeof(lim_t),
         "plugin p.so: config field 'n' has a min \"ten\" that does not parse as its type"},
        {{SY_CFG_FIELD("wait", SY_CFG_DURATION, lim_t, wait), .max = "5"},
         sizeof(lim_t),
         "config field 'wait' has a max \"5\" that does not parse as its type"},
        {{SY_CFG_FIELD("name", SY_CFG_STRING, lim_t, name), .min = "-1"},
         sizeof(lim_t),
         "config field 'name' has a min \"-1\" that does not parse as its type"},
        {{SY_CFG_FIELD("n", SY_CFG_INT, lim_t, n), .min = "5", .max = "4"},
         sizeof(lim_t),
         "plugin p.so: config field 'n' has min 5 above max 4"},
        {{.name = "b", .type = SY_CFG_BOOL, .min = "0"},
         sizeof(lim_t),
         "config field 'b' has a min \"0\" that its type does not take"},
        {{SY_CFG_FIELD("n", SY_CFG_INT, lim_t, n), .pattern = "[0-9]+"},
         sizeof(lim_t),
         "config field 'n' has a pattern \"[0-9]+\": its type takes no pattern"},
        {{SY_CFG_FIELD("name", SY_CFG_STRING, lim_t, name), .pattern = "(a"},
         sizeof(lim_t),
         "plugin p.so: config field 'name' has a pattern \"(a\": "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = 0;
        assert_int_equal(
            sy__cfg_check_table("p.so", &cases[i].field, 1, cases[i].config_size, err, sizeof(err)),
            SY_ERROR);
        if (!strstr(err, cases[i].msg)) fail_msg("case %zu: got \"%s\"", i, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kinds_and_positions),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_syntax_error_file),
        cmocka_unit_test(test_syntax_error_string),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_multiple_documents),
        cmocka_unit_test(test_anchors_and_merge_keys),
        cmocka_unit_test(test_alias_bomb_is_bounded),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_env_forms),
        cmocka_unit_test(test_env_unset_warns),
        cmocka_unit_test(test_env_malformed),
        cmocka_unit_test(test_env_expansion_size_is_bounded),
        cmocka_unit_test(test_env_expansion_nodes_are_bounded),
        cmocka_unit_test(test_merge_two_files),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_set_on_empty_root),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_fill_defaults),
        cmocka_unit_test(test_fill_values),
        cmocka_unit_test(test_fill_errors),
        cmocka_unit_test(test_fill_missing_required_without_node),
        cmocka_unit_test(test_fill_reports_all_errors),
        cmocka_unit_test(test_fill_env_typed),
        cmocka_unit_test(test_to_yaml_round_trip),
        cmocka_unit_test(test_diag_print),
        cmocka_unit_test(test_diag_one_format),
        cmocka_unit_test(test_fill_limits),
        cmocka_unit_test(test_check_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
