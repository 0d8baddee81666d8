/*
 * test_ottl.c - the OTTL compiler and evaluator (plugins/common/ottl_*.c): a table
 * of valid conditions and statements taken from the collector's docs and the
 * filter/transform processor READMEs, a table of invalid ones with the exact
 * column and message, and evaluation against the in-memory item of ottl_fake.h
 * (every operator, enum, converter, nil rule and editor).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ottl_fake.h"

#define SPAN SYC_OTTL_CTX_SPAN
#define EVT  SYC_OTTL_CTX_SPANEVENT
#define LOG  SYC_OTTL_CTX_LOG
#define MET  SYC_OTTL_CTX_METRIC
#define DP   SYC_OTTL_CTX_DATAPOINT
#define RES  SYC_OTTL_CTX_RESOURCE
#define SCO  SYC_OTTL_CTX_SCOPE

typedef struct valid_s {
    syc_ottl_context_t ctx;
    bool statement;
    const char *src;
} valid_t;

static const valid_t valid[] = {
    /* filterprocessor README */
    {SPAN, false, "attributes[\"container.name\"] == \"app_container_1\""},
    {SPAN, false, "resource.attributes[\"host.name\"] == \"localhost\""},
    {SPAN, false, "name == \"app_3\""},
    {SPAN, false, "attributes[\"http.request.method\"] == nil"},
    {SPAN, false, "IsMatch(resource.attributes[\"k8s.pod.name\"], \"my-pod-name.*\")"},
    {SPAN, false, "kind == SPAN_KIND_INTERNAL"},
    {SPAN, false, "status.code == STATUS_CODE_ERROR"},
    {SPAN, false, "attributes[\"grpc\"] == true"},
    {SPAN, false, "IsMatch(name, \".*grpc.*\")"},
    {SPAN, false,
     "attributes[\"http.route\"] == \"/health\" or attributes[\"http.route\"] == "
     "\"/ready\""},
    {EVT, false, "attributes[\"grpc\"] == true"},
    {EVT, false, "IsMatch(name, \".*grpc.*\")"},
    {MET, false, "name == \"my.metric\" and resource.attributes[\"my_label\"] == \"abc123\""},
    {MET, false, "type == METRIC_DATA_TYPE_HISTOGRAM"},
    {MET, false, "HasAttrKeyOnDatapoint(\"http.method\")"},
    {MET, false, "HasAttrOnDatapoint(\"http.method\", \"GET\")"},
    {MET, false, "metric.name == \"k8s.replicaset.available\""},
    {DP, false, "metric.type == METRIC_DATA_TYPE_SUMMARY"},
    {DP, false,
     "metric.name == \"k8s.replicaset.available\" and "
     "IsMatch(resource.attributes[\"k8s.namespace.name\"], \"^kube-.*\")"},
    {DP, false, "value_double < 0.5"},
    {DP, false, "value_int > 100 and attributes[\"state\"] != \"idle\""},
    {LOG, false, "IsMatch(body, \".*password.*\")"},
    {LOG, false, "severity_number < SEVERITY_NUMBER_WARN"},
    {LOG, false, "severity_number >= SEVERITY_NUMBER_INFO3"},
    {LOG, false, "severity_text == \"DEBUG\""},
    {LOG, false, "IsString(body) and Len(body) > 1024"},
    {RES, false, "attributes[\"host.name\"] == \"localhost\""},
    {SCO, false, "name == \"io.opentelemetry.http\" and version != \"\""},
    /* math, string converters, context-prefixed paths (transform README) */
    {SPAN, true,
     "set(span.attributes[\"duration.ms\"], (span.end_time_unix_nano - "
     "span.start_time_unix_nano) / 1000000)"},
    {SPAN, true, "set(span.name, ToLowerCase(span.name)) where span.kind == SPAN_KIND_SERVER"},
    {SPAN, false, "span.attributes[\"retries\"] * 2 > 10"},
    {SPAN, false, "(span.attributes[\"n\"] + 1) * 2 >= 4 or (name == \"x\")"},
    {LOG, true, "set(log.attributes[\"x\"], SHA256(Substring(log.body, 0, 4)))"},
    {DP, false, "datapoint.value_int > 1000 and metric.name == \"queue.size\""},
    /* LANGUAGE.md */
    {SPAN, false, "1 < 2"},
    {SPAN, false, "attributes[\"custom-attr\"] != nil"},
    {SPAN, false, "not true"},
    {SPAN, false, "not name == \"foo\""},
    {SPAN, false, "not (IsMatch(name, \"http_.*\") and kind > 0)"},
    {SPAN, false, "true"},
    {SPAN, false, "false or (true and not false)"},
    {SPAN, false, "attributes[\"nested\"][\"values\"] == \"x\""},
    {SPAN, false, "attributes[\"list\"][1] == 7"},
    {SPAN, false, "trace_id == 0x5b8efff798038103d269b633813fc60c"},
    {SPAN, false, "span_id != 0x0000000000000000"},
    {SPAN, false, "parent_span_id == nil"},
    {SPAN, false, "1.5 >= -.5"},
    {SPAN, false, "-1 < +1 and 1.0e3 == 1000.0 and 2.5E-1 == .25"},
    {SPAN, false, "instrumentation_scope.name == \"x\" and instrumentation_scope.version == \"1\""},
    {SPAN, false, "span.name == \"x\" and span.attributes[\"a\"] == nil"},
    {SPAN, false,
     "IsInt(attributes[\"n\"]) or IsDouble(attributes[\"n\"]) or "
     "IsBool(attributes[\"n\"]) or IsMap(attributes[\"n\"]) or "
     "IsList(attributes[\"n\"])"},
    {SPAN, false, "Int(attributes[\"n\"]) == 3 and Double(\"1.5\") == 1.5 and String(1) == \"1\""},
    {SPAN, false, "Concat([name, \"x\", 1], \"-\") == \"a-x-1\""},
    {SPAN, false, "\"esc\\\"aped\\n\\t\\\\ \\u00e9\" != name"},
    {SPAN, false, "IsMatch(status.message, \"(?i)timeout\") == true"},
    {LOG, false, "log.body == nil or log.severity_number == SEVERITY_NUMBER_FATAL4"},
    {LOG, false, "body[\"user\"][\"id\"] == 1"},
    /* transformprocessor README */
    {SPAN, true, "set(attributes[\"test\"], \"pass\")"},
    {SPAN, true, "set(attributes[\"test\"], \"pass\") where name == \"operationA\""},
    {SPAN, true,
     "set(status.code, STATUS_CODE_ERROR) where attributes[\"http.status_code\"] == 400"},
    {RES, true,
     "keep_keys(attributes, [\"service.name\", \"service.namespace\", "
     "\"cloud.region\", \"process.command_line\"])"},
    {RES, true,
     "replace_pattern(attributes[\"process.command_line\"], "
     "\"password\\\\=[^\\\\s]*(\\\\s?)\", \"password=***\")"},
    {RES, true, "limit(attributes, 100, [])"},
    {RES, true, "truncate_all(attributes, 4096)"},
    {LOG, true, "set(severity_text, \"FAIL\") where body == \"request failed\""},
    {LOG, true,
     "replace_all_patterns(attributes, \"value\", \"/account/\\\\d{4}\", "
     "\"/account/{accountId}\")"},
    {LOG, true, "replace_all_patterns(attributes, \"key\", \"^k8s\\\\.\", \"kube.\")"},
    {LOG, true, "set(body, attributes[\"http.route\"])"},
    {SPAN, true, "delete_key(attributes, \"http.request.method\")"},
    {SPAN, true, "delete_matching_keys(attributes, \"(?i).*password.*\")"},
    {SPAN, true,
     "set(attributes[\"test\"], Concat([attributes[\"a\"], attributes[\"b\"]], "
     "\"-\"))"},
    {DP, true, "set(metric.description, \"Sum\") where metric.type == METRIC_DATA_TYPE_SUM"},
    {SPAN, true, "limit(attributes, 2, [\"http.method\"])"},
    {SPAN, true, "replace_pattern(name, \"^GET (.*)$\", \"$1\")"},
    {SPAN, true, "replace_pattern(name, \"(?P<verb>\\\\w+) \", \"${verb}:\")"},
    {SPAN, true,
     "set(attributes[\"n\"], Int(attributes[\"s\"])) where IsString(attributes[\"s\"])"},
    {MET, true, "set(description, \"x\") where unit == \"ms\""},
};

static void test_valid(void **state)
{
    (void)state;
    assert_true(sizeof valid / sizeof valid[0] >= 60);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        syc_ottl_error_t err;
        const valid_t *v = &valid[i];
        syc_ottl_prog_t *p = v->statement
                                 ? syc_ottl_compile_statement(v->src, strlen(v->src), v->ctx, &err)
                                 : syc_ottl_compile_condition(v->src, strlen(v->src), v->ctx, &err);
        if (!p) fail_msg("valid[%zu] \"%s\": %s", i, v->src, err.msg);
        assert_int_equal(syc_ottl_is_statement(p), v->statement);
        assert_int_equal(syc_ottl_prog_context(p), v->ctx);
        syc_ottl_free(p);
    }
}

typedef struct invalid_s {
    syc_ottl_context_t ctx;
    bool statement;
    const char *src;
    const char *msg; /* the whole message, "col N: ..." */
} invalid_t;

static const invalid_t invalid[] = {
    {SPAN, false, "IsMatch(name, \"a\" \"b\")", "col 19: expected ')' after arguments of IsMatch"},
    {SPAN, false, "name == ", "col 9: expected a value"},
    {SPAN, false, "", "col 1: expected a condition"},
    {SPAN, false, "name", "col 5: expected a comparison operator"},
    {SPAN, false, "name = \"a\"", "col 6: expected a comparison operator"},
    {SPAN, false, "name == \"a", "col 9: unterminated string literal"},
    {SPAN, false, "name == \"a\\q\"", "col 11: invalid escape '\\q' in string"},
    {SPAN, false, "trace_id == 0x123",
     "col 13: byte literal needs an even, non-zero number of "
     "hex digits"},
    {SPAN, false, "name == 12abc", "col 9: invalid number"},
    {SPAN, false, "value_int == 1", "col 1: unknown path 'value_int' in the span context"},
    {LOG, false, "kind == 1", "col 1: unknown path 'kind' in the log context"},
    {DP, false, "name == \"x\"", "col 1: unknown path 'name' in the datapoint context"},
    {SPAN, false, "kind == SPAN_KIND_BOGUS",
     "col 9: unknown enum 'SPAN_KIND_BOGUS' in the span context"},
    {LOG, false, "kind == SPAN_KIND_SERVER", "col 1: unknown path 'kind' in the log context"},
    {LOG, false, "severity_number == SPAN_KIND_SERVER",
     "col 20: unknown enum 'SPAN_KIND_SERVER' in the log context"},
    {SPAN, false, "Foo(name)", "col 1: unknown converter 'Foo'"},
    {SPAN, false, "IsMatch(name)", "col 1: IsMatch takes 2 arguments, got 1"},
    {SPAN, false, "IsMatch(name, \"(\")",
     "col 15: invalid regex in argument 2 of IsMatch: missing closing parenthesis at offset 1"},
    {SPAN, false, "IsMatch(name, attributes[\"re\"])",
     "col 15: argument 2 of IsMatch must be a string literal (a regex)"},
    {SPAN, false, "(name == \"a\"", "col 13: expected ')' to close '(' at col 1"},
    {SPAN, false, "name == \"a\")", "col 12: expected 'and', 'or' or end of condition"},
    {SPAN, false, "name == \"a\" and", "col 16: expected a value"},
    {SPAN, false, "name == \"a\" or or", "col 16: expected a value, found keyword 'or'"},
    {SPAN, false, "status.cod == 1", "col 1: unknown path 'status.cod' in the span context"},
    {SPAN, false, "name[\"x\"] == 1", "col 5: path 'name' cannot be indexed"},
    {SPAN, false, "attributes[x] == 1", "col 12: expected a string or int key inside '[ ]'"},
    {SPAN, false, "attributes[\"x\" == 1", "col 16: expected ']' after key"},
    {SPAN, false, "status. == 1", "col 9: expected a field name after '.'"},
    {SPAN, false, "name == [\"a\"]", "col 9: lists are only supported as function arguments"},
    {SPAN, false, "name == {}", "col 9: map literals are only supported as set()'s value"},
    {SPAN, true, "set(attributes[\"m\"], {1: 2})",
     "col 23: expected a string key in a map literal"},
    {SPAN, true, "set(attributes[\"m\"], {\"a\" 2})", "col 27: expected ':' after key"},
    {SPAN, false, "IsMap({\"a\": 1})", "col 7: argument 1 of IsMap cannot be a map literal"},
    {SPAN, false, "kind + \"a\" == 2", "col 8: math expressions take int and float operands"},
    {SPAN, false, "kind * IsString(name) == 2", "col 8: IsString does not return a number"},
    {SPAN, false, "(kind + 1 == 2", "col 15: expected ')' to close '(' at col 1"},
    {SPAN, true, "set(attributes[\"x\"], [1] + 1)",
     "col 22: a list or map cannot be used in a math expression"},
    {SPAN, false, "set(name, \"x\")", "col 1: editor 'set' can only start a statement"},
    {SPAN, false, "Len(name)", "col 10: expected a comparison operator"},
    {SPAN, false, "HasAttrKeyOnDatapoint(\"k\")",
     "col 1: HasAttrKeyOnDatapoint is not available in the span context"},
    {SPAN, false, "name == \"a\" # comment", "col 13: unexpected character '#'"},
    {SPAN, false, "name == 99999999999999999999", "col 9: integer out of range"},
    {SPAN, false, "kind == 1e3", "col 9: invalid number"},
    {SPAN, false, "name == \"\\ud800\"", "col 10: escape is not a Unicode scalar value"},
    {SPAN, false, "IsMatch(name, pattern=\"x\")", "col 15: named arguments are not supported yet"},
    {SPAN, false, "name == \"é\" and bogus == 1",
     "col 17: unknown path 'bogus' in the span context"},
    {SPAN, true, "name == \"a\"", "col 1: expected an editor call such as set(...)"},
    {SPAN, true, "sett(name, \"a\")", "col 1: unknown editor 'sett'"},
    {SPAN, true, "Concat([\"a\"], \"\")",
     "col 1: 'Concat' is a converter; a statement starts "
     "with an editor"},
    {SPAN, true, "set(name, \"a\") when name == \"b\"",
     "col 16: expected 'where' or end of statement"},
    {SPAN, true, "set(\"name\", \"a\")", "col 5: argument 1 of set must be a path"},
    {SPAN, true, "set(name)", "col 1: set takes 2 arguments, got 1"},
    {SPAN, true, "delete_key(attributes, 1)",
     "col 24: argument 2 of delete_key must be a string literal"},
    {SPAN, true, "keep_keys(attributes, [\"a\", name])",
     "col 29: argument 2 of keep_keys must be a list of string literals"},
    {SPAN, true, "keep_keys(attributes, \"a\")",
     "col 23: argument 2 of keep_keys must be a list of strings"},
    {SPAN, true, "truncate_all(attributes, -1)",
     "col 26: argument 2 of truncate_all must be a non-negative int literal"},
    {SPAN, true, "limit(attributes, 1, [\"a\", \"b\"])",
     "col 22: limit: 2 priority keys exceed the limit of 1"},
    {SPAN, true, "replace_all_patterns(attributes, \"keys\", \"a\", \"b\")",
     "col 34: argument 2 of replace_all_patterns must be \"key\" or \"value\""},
    {SPAN, true, "replace_pattern(name, \"a\", \"$\")",
     "col 28: invalid replacement in argument 3 of replace_pattern: '$' at the end of the "
     "replacement"},
    {SPAN, true, "delete_matching_keys(attributes, \"[a-\")",
     "col 34: invalid regex in argument 2 of delete_matching_keys: missing terminating ] for "
     "character class at offset 3"},
    {SPAN, true, "set(name, \"a\") where", "col 21: expected a value"},
    {SPAN, true, "set(name, \"a\") where name == \"a\" x",
     "col 34: expected 'and', 'or' or end of statement"},
    {MET, true, "set(value_int, 1)", "col 5: unknown path 'value_int' in the metric context"},
};

static void test_invalid(void **state)
{
    (void)state;
    assert_true(sizeof invalid / sizeof invalid[0] >= 30);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        syc_ottl_error_t err;
        const invalid_t *v = &invalid[i];
        syc_ottl_prog_t *p = v->statement
                                 ? syc_ottl_compile_statement(v->src, strlen(v->src), v->ctx, &err)
                                 : syc_ottl_compile_condition(v->src, strlen(v->src), v->ctx, &err);
        if (p) fail_msg("invalid[%zu] \"%s\" compiled", i, v->src);
        if (strcmp(err.msg, v->msg) != 0)
            fail_msg("invalid[%zu] \"%s\":\n  got  %s\n  want %s", i, v->src, err.msg, v->msg);
        int col = 0;
        assert_int_equal(sscanf(v->msg, "col %d:", &col), 1);
        assert_int_equal(err.col, col);
    }
}

/* ---- evaluation ---- */

static syc_ottl_scratch_t *scratch;

static bool eval_in(fake_item_t *it, syc_ottl_context_t ctx, const char *src)
{
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition(src, strlen(src), ctx, &err);
    if (!p) fail_msg("\"%s\": %s", src, err.msg);
    bool out = false;
    int rc = syc_ottl_eval_condition(p, &fake_accessor, it, scratch, &out);
    if (rc) fail_msg("\"%s\": eval rc %d", src, rc);
    syc_ottl_free(p);
    return out;
}

static int eval_rc(fake_item_t *it, syc_ottl_context_t ctx, const char *src)
{
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition(src, strlen(src), ctx, &err);
    if (!p) fail_msg("\"%s\": %s", src, err.msg);
    bool out = false;
    int rc = syc_ottl_eval_condition(p, &fake_accessor, it, scratch, &out);
    syc_ottl_free(p);
    return rc;
}

static bool exec_in(fake_item_t *it, syc_ottl_context_t ctx, const char *src)
{
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_statement(src, strlen(src), ctx, &err);
    if (!p) fail_msg("\"%s\": %s", src, err.msg);
    bool applied = false;
    int rc = syc_ottl_exec_statement(p, &fake_accessor, it, scratch, &applied);
    if (rc) fail_msg("\"%s\": exec rc %d", src, rc);
    syc_ottl_free(p);
    return applied;
}

#define T(src) assert_true(eval_in(&it, SPAN, src))
#define F(src) assert_false(eval_in(&it, SPAN, src))

static void test_operators(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);
    /* ints */
    T("1 == 1");
    F("1 != 1");
    T("1 < 2");
    T("2 <= 2");
    T("3 > 2");
    T("3 >= 3");
    F("3 < 3");
    T("-5 < 0");
    T("attributes[\"http.status_code\"] >= 500 and attributes[\"http.status_code\"] < 600");
    /* int and double mix as doubles */
    T("1 == 1.0");
    T("1 < 1.5");
    T("attributes[\"ratio\"] > 1");
    T("attributes[\"ratio\"] == 1.5");
    F("attributes[\"ratio\"] >= 2");
    T(".5 == 0.5");
    T("1.0e3 == 1000");
    /* strings, bytewise */
    T("name == \"GET /api/users\"");
    T("name != \"get /api/users\"");
    T("\"a\" < \"b\"");
    T("\"a\" < \"ab\"");
    T("\"B\" < \"a\"");
    T("\"\\u00e9\" > \"z\""); /* 0xC3 > 'z' */
    F("\"abc\" >= \"abd\"");
    /* bool: false < true */
    T("true == true");
    T("false < true");
    F("true < false");
    T("attributes[\"grpc\"] == true");
    /* different types: only != holds */
    F("1 == \"1\"");
    T("1 != \"1\"");
    F("1 < \"1\"");
    F("\"1\" >= 1");
    F("true == 1");
    T("true != 1");
    /* nil */
    T("attributes[\"missing\"] == nil");
    F("attributes[\"missing\"] != nil");
    T("nil == nil");
    F("nil != nil");
    F("nil < nil");
    F("nil <= nil");
    F("attributes[\"missing\"] == \"\"");
    T("attributes[\"missing\"] != 0");
    F("attributes[\"missing\"] < 1");
    F("attributes[\"missing\"] > 1");
    F("parent_span_id != nil");
    T("parent_span_id == nil");
    /* bytes */
    T("trace_id == 0x5b8efff798038103d269b633813fc60c");
    F("trace_id == 0x5b8efff798038103d269b633813fc60d");
    T("trace_id < 0x5b8efff798038103d269b633813fc60d");
    T("span_id == 0xeee19b7ec3c1b174");
    T("span_id != 0xEEE19B7EC3C1B175");
    F("span_id == \"eee19b7ec3c1b174\"");
    T("trace_id != nil");
    /* and, or, not, parentheses, precedence: not > and > or */
    T("true or false and false");
    F("(true or false) and false");
    T("not false and true");
    F("not (true and true)");
    T("not not true");
    T("name == \"x\" or kind == SPAN_KIND_SERVER");
    F("name == \"x\" and kind == SPAN_KIND_SERVER");
    /* nested keys and slices */
    T("attributes[\"nested\"][\"inner\"] == \"deep\"");
    T("attributes[\"nested\"][\"nope\"] == nil");
    T("attributes[\"missing\"][\"x\"] == nil");
    T("attributes[\"list\"][0] == \"first\"");
    T("attributes[\"list\"][1] == 7");
    /* map and slice handles only compare for identity */
    T("attributes[\"nested\"] == attributes[\"nested\"]");
    F("attributes[\"nested\"] < attributes[\"nested\"]");
    T("attributes[\"nested\"] != attributes[\"list\"]");
    /* other objects' fields */
    T("resource.attributes[\"service.name\"] == \"checkout\"");
    T("instrumentation_scope.name == \"io.opentelemetry.http\"");
    T("instrumentation_scope.version == \"1.2.3\"");
    T("instrumentation_scope.attributes[\"lib\"] == \"otel\"");
    T("status.message == \"boom\"");
    T("end_time_unix_nano > start_time_unix_nano");
    T("span.name == \"GET /api/users\"");
}

static void test_runtime_errors(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);
    /* indexing what is not a map or slice, and an index out of range */
    assert_int_equal(eval_rc(&it, SPAN, "attributes[\"grpc\"][\"x\"] == nil"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "attributes[\"nested\"][0] == nil"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "attributes[\"list\"][5] == nil"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "Len(attributes[\"missing\"]) == 0"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "Len(kind) == 0"), SY_EINVAL);
    /* no accessor for data point attributes */
    syc_ottl_accessor_t acc = fake_accessor;
    acc.datapoint_has_attr = NULL;
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition("HasAttrKeyOnDatapoint(\"a\")", 26, MET, &err);
    assert_non_null(p);
    bool out;
    assert_int_equal(syc_ottl_eval_condition(p, &acc, &it, scratch, &out), SY_ENOTSUP);
    syc_ottl_free(p);
    /* a scratch too small for Concat's result */
    syc_ottl_scratch_t *tiny = syc_ottl_scratch_new(8);
    assert_non_null(tiny);
    const char *src = "Concat([name, name], \"-\") == \"\"";
    p = syc_ottl_compile_condition(src, strlen(src), SPAN, &err);
    assert_non_null(p);
    assert_int_equal(syc_ottl_eval_condition(p, &fake_accessor, &it, tiny, &out), SY_ENOMEM);
    syc_ottl_free(p);
    syc_ottl_scratch_free(tiny);
}

static void test_enums(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);
    T("SPAN_KIND_UNSPECIFIED == 0 and SPAN_KIND_INTERNAL == 1 and SPAN_KIND_SERVER == 2");
    T("SPAN_KIND_CLIENT == 3 and SPAN_KIND_PRODUCER == 4 and SPAN_KIND_CONSUMER == 5");
    T("STATUS_CODE_UNSET == 0 and STATUS_CODE_OK == 1 and STATUS_CODE_ERROR == 2");
    T("kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR");
    F("kind == SPAN_KIND_CLIENT");
    assert_true(eval_in(&it, LOG,
                        "SEVERITY_NUMBER_UNSPECIFIED == 0 and SEVERITY_NUMBER_TRACE == 1 "
                        "and SEVERITY_NUMBER_TRACE4 == 4 and SEVERITY_NUMBER_DEBUG == 5 "
                        "and SEVERITY_NUMBER_INFO == 9 and SEVERITY_NUMBER_INFO2 == 10 "
                        "and SEVERITY_NUMBER_WARN == 13 and SEVERITY_NUMBER_ERROR == 17 "
                        "and SEVERITY_NUMBER_FATAL == 21 and SEVERITY_NUMBER_FATAL4 == 24"));
    assert_true(eval_in(&it, LOG, "severity_number >= SEVERITY_NUMBER_WARN"));
    assert_false(eval_in(&it, LOG, "severity_number >= SEVERITY_NUMBER_ERROR"));
    assert_true(eval_in(&it, MET,
                        "METRIC_DATA_TYPE_NONE == 0 and METRIC_DATA_TYPE_GAUGE == 1 and "
                        "METRIC_DATA_TYPE_SUM == 2 and METRIC_DATA_TYPE_HISTOGRAM == 3 and "
                        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM == 4 and "
                        "METRIC_DATA_TYPE_SUMMARY == 5"));
    assert_true(eval_in(&it, MET, "type == METRIC_DATA_TYPE_HISTOGRAM and unit == \"ms\""));
    assert_true(eval_in(&it, DP, "metric.type == METRIC_DATA_TYPE_HISTOGRAM"));
    assert_true(eval_in(&it, DP,
                        "AGGREGATION_TEMPORALITY_DELTA == 1 and "
                        "AGGREGATION_TEMPORALITY_CUMULATIVE == 2"));
}

static void test_converters(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);
    T("IsMatch(name, \"^GET \")");
    F("IsMatch(name, \"^POST \")");
    T("IsMatch(name, \"(?i)^get\")");
    T("IsMatch(attributes[\"http.status_code\"], \"^5\\\\d\\\\d$\")"); /* ints match as text */
    T("IsMatch(attributes[\"ratio\"], \"^1\\\\.5$\")");
    T("IsMatch(attributes[\"grpc\"], \"^true$\")");
    T("IsMatch(trace_id, \"^5b8eff\")"); /* bytes match as hex */
    F("IsMatch(attributes[\"missing\"], \".*\")");
    F("IsMatch(attributes[\"nested\"], \".*\")");
    T("IsMatch(resource.attributes[\"host.name\"], \"pod-*\")");
    T("IsMatch(name, \"users\") == true");
    T("IsString(name) and not IsString(kind)");
    T("IsInt(kind) and not IsInt(attributes[\"ratio\"])");
    T("IsDouble(attributes[\"ratio\"]) and not IsDouble(kind)");
    T("IsBool(attributes[\"grpc\"]) and not IsBool(name)");
    T("IsMap(attributes) and IsMap(attributes[\"nested\"]) and not IsMap(name)");
    T("IsList(attributes[\"list\"]) and not IsList(attributes)");
    F("IsString(attributes[\"missing\"])");
    T("Len(name) == 14");
    T("Len(\"\\u00e9\") == 2"); /* bytes, as Go's len */
    T("Len(attributes) == 7");
    T("Len(attributes[\"list\"]) == 2");
    T("Len(trace_id) == 16");
    T("Concat([\"a\", \"b\", \"c\"], \"-\") == \"a-b-c\"");
    T("Concat([], \"-\") == \"\"");
    T("Concat([name, kind, attributes[\"ratio\"], attributes[\"grpc\"]], \"|\") == "
      "\"GET /api/users|2|1.5|true\"");
    T("Concat([\"x\", attributes[\"missing\"]], \":\") == \"x:<nil>\"");
    T("Concat([span_id], \"\") == \"eee19b7ec3c1b174\"");
    T("Concat([Concat([\"a\", \"b\"], \"+\"), Concat([\"c\", \"d\"], \"+\")], \"/\") == "
      "\"a+b/c+d\"");
    T("Int(\"42\") == 42 and Int(-7) == -7 and Int(2.9) == 2 and Int(-2.9) == -2");
    T("Int(true) == 1 and Int(false) == 0");
    T("Int(\"4.2\") == nil and Int(\"x\") == nil and Int(attributes[\"missing\"]) == nil");
    T("Int(attributes) == nil");
    T("Double(\"1.5\") == 1.5 and Double(2) == 2.0 and Double(true) == 1.0");
    T("Double(\"abc\") == nil and Double(nil) == nil");
    T("IsDouble(Double(1)) and IsInt(Int(1.0))");
    T("String(1) == \"1\" and String(1.5) == \"1.5\" and String(true) == \"true\"");
    T("String(0.000001) == \"0.000001\" and String(0.0000001) == \"1e-7\"");
    T("String(1.0e21) == \"1e+21\" and String(123456789.0) == \"123456789\"");
    T("String(0x0a0b) == \"0a0b\" and String(\"s\") == \"s\" and String(nil) == nil");
    assert_int_equal(eval_rc(&it, SPAN, "String(attributes) == nil"), SY_EINVAL);

    /* math: same-type ints or doubles; precedence, grouping, signed literals */
    T("1 + 2 * 3 == 7 and (1 + 2) * 3 == 9 and 7 / 2 == 3 and 7.0 / 2.0 == 3.5");
    T("10 - 2 - 3 == 5 and 10 -2 == 8 and 2 * -3 == -6 and -1 - -1 == 0");
    T("kind + 1 == 3 and kind * 2 > 3 and (kind + 1) * 2 == 6");
    T("Len(name) - 4 == 10 and attributes[\"ratio\"] * 2.0 == 3.0");
    T("((1 + 1)) == 2 and not (1 + 1 > 3) and (1 + 1 == 2)");
    T("-9223372036854775807 - 1 - 1 == 9223372036854775807"); /* wraps as Go */
    assert_int_equal(eval_rc(&it, SPAN, "1 / 0 == 0"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "1.0 / 0.0 == 0.0"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "1 + 1.0 == 2"), SY_EINVAL); /* no mixing */
    assert_int_equal(eval_rc(&it, SPAN, "attributes[\"missing\"] + 1 == 2"), SY_EINVAL);
    /* Split, as Go's strings.Split, through the accessor's make_list */
    T("Len(Split(\"a,b,c\", \",\")) == 3 and Len(Split(\"\", \",\")) == 1");
    T("Len(Split(\"a,b,\", \",\")) == 3 and Len(Split(\"ab\", \"\")) == 2");
    T("Len(Split(\"\", \"\")) == 0 and IsList(Split(name, \" \"))");
    assert_int_equal(eval_rc(&it, SPAN, "Len(Split(kind, \",\")) == 1"), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "Len(Split(\"a,b,c,d,e\", \",\")) == 5"),
                     SY_ENOMEM); /* the fake's lists hold 4 */
    /* string converters */
    T("ToLowerCase(name) == \"get /api/users\" and ToUpperCase(\"aBc\") == \"ABC\"");
    T("Substring(name, 4, 4) == \"/api\" and Substring(\"abc\", 0, 3) == \"abc\"");
    assert_int_equal(eval_rc(&it, SPAN, "Substring(name, 10, 10) == \"\""), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "Substring(name, -1, 2) == \"\""), SY_EINVAL);
    assert_int_equal(eval_rc(&it, SPAN, "Substring(kind, 0, 1) == \"\""), SY_EINVAL);
    T("SHA256(\"abc\") == "
      "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
    T("SHA1(\"abc\") == \"a9993e364706816aba3e25717850c26c9cd0d89d\"");
    T("MD5(\"abc\") == \"900150983cd24fb0d6963f7d28e17f72\"");
    T("Concat([ToUpperCase(\"a\"), String(Len(\"xy\") * 2)], \"-\") == \"A-4\"");
    assert_int_equal(eval_rc(&it, SPAN, "ToLowerCase(kind) == \"\""), SY_EINVAL);

    assert_true(eval_in(&it, MET, "HasAttrKeyOnDatapoint(\"http.method\")"));
    assert_false(eval_in(&it, MET, "HasAttrKeyOnDatapoint(\"http.route\")"));
    assert_true(eval_in(&it, MET, "HasAttrOnDatapoint(\"http.method\", \"GET\")"));
    assert_false(eval_in(&it, MET, "HasAttrOnDatapoint(\"http.method\", \"POST\")"));
}

static void test_contexts(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);
    assert_true(eval_in(&it, LOG, "IsMatch(body, \"password=\") and severity_text == \"WARN\""));
    assert_true(eval_in(&it, LOG, "time_unix_nano > 0 and trace_id != nil"));
    assert_true(eval_in(&it, DP,
                        "value_int == 42 and value_double < 0.5 and "
                        "metric.name == \"http.server.duration\" and metric.unit == "
                        "\"ms\" and attributes[\"http.method\"] == \"GET\""));
    assert_true(eval_in(&it, MET, "name == \"http.server.duration\" and metric.name == name"));
    assert_true(eval_in(&it, EVT, "name == \"GET /api/users\" and time_unix_nano > 0"));
    assert_true(eval_in(&it, RES,
                        "attributes[\"service.name\"] == \"checkout\" and "
                        "resource.attributes[\"host.name\"] == \"pod-7f9c\""));
    assert_true(eval_in(&it, SCO,
                        "name == \"io.opentelemetry.http\" and version == \"1.2.3\" and "
                        "attributes[\"lib\"] == \"otel\" and "
                        "resource.attributes[\"service.name\"] == \"checkout\""));
    const char *names[] = {"resource", "scope", "span", "spanevent", "metric", "datapoint", "log"};
    for (int i = 0; i < SYC_OTTL_CTX_COUNT_; i++) {
        syc_ottl_context_t c;
        assert_int_equal(syc_ottl_context_parse(names[i], &c), 0);
        assert_int_equal(c, i);
        assert_string_equal(syc_ottl_context_name(c), names[i]);
    }
    syc_ottl_context_t c;
    assert_int_equal(syc_ottl_context_parse("trace", &c), -1);
    assert_string_equal(syc_ottl_field_name(SYC_OTTL_F_RESOURCE_ATTRIBUTES), "resource.attributes");
}

static const fake_entry_t *entry(fake_item_t *it, int map, const char *key)
{
    int i = fake_find(&it->maps[map], key, strlen(key));
    return i < 0 ? NULL : &it->maps[map].e[i];
}

static const char *str_of(const fake_entry_t *e)
{
    assert_non_null(e);
    assert_int_equal(e->v.type, SYC_OTTL_STRING);
    return e->v.u.s.ptr;
}

static void test_editors(void **state)
{
    (void)state;
    fake_item_t it;
    fake_item_init(&it);

    /* set: literal, path, converter, enum; where decides; nil sets nothing */
    assert_true(exec_in(&it, SPAN, "set(attributes[\"test\"], \"pass\")"));
    assert_string_equal(str_of(entry(&it, 0, "test")), "pass");
    assert_false(exec_in(&it, SPAN, "set(attributes[\"test\"], \"fail\") where name == \"x\""));
    assert_string_equal(str_of(entry(&it, 0, "test")), "pass");
    assert_true(exec_in(&it, SPAN,
                        "set(status.code, STATUS_CODE_OK) where "
                        "attributes[\"http.status_code\"] == 503"));
    assert_int_equal(it.field[SYC_OTTL_F_STATUS_CODE].u.i, 1);
    assert_true(
        exec_in(&it, SPAN, "set(attributes[\"copy\"], resource.attributes[\"service.name\"])"));
    assert_string_equal(str_of(entry(&it, 0, "copy")), "checkout");
    assert_true(exec_in(&it, SPAN, "set(attributes[\"joined\"], Concat([name, \"x\"], \"#\"))"));
    assert_string_equal(str_of(entry(&it, 0, "joined")), "GET /api/users#x");
    assert_true(exec_in(&it, SPAN, "set(attributes[\"nested\"][\"inner\"], \"changed\")"));
    assert_string_equal(str_of(&it.maps[4].e[0]), "changed");
    int sets = it.sets;
    assert_true(exec_in(&it, SPAN, "set(attributes[\"gone\"], attributes[\"missing\"])"));
    assert_int_equal(it.sets, sets);
    assert_null(entry(&it, 0, "gone"));
    assert_true(exec_in(&it, SPAN, "set(name, \"renamed\")"));
    assert_string_equal(it.field[SYC_OTTL_F_NAME].u.s.ptr, "renamed");
    assert_true(
        exec_in(&it, LOG, "set(severity_text, \"FAIL\") where IsMatch(body, \"password\")"));
    assert_string_equal(it.field[SYC_OTTL_F_SEVERITY_TEXT].u.s.ptr, "FAIL");

    /* replace_pattern, with a capture group; no match leaves the value alone */
    assert_true(exec_in(&it, LOG,
                        "replace_pattern(body, \"password=[^\\\\s]*(\\\\s?)\", "
                        "\"password=***$1\")"));
    assert_string_equal(it.field[SYC_OTTL_F_BODY].u.s.ptr, "user password=*** logged in");
    sets = it.sets;
    assert_true(exec_in(&it, LOG, "replace_pattern(body, \"nomatch\", \"x\")"));
    assert_int_equal(it.sets, sets);
    assert_true(exec_in(&it, SPAN, "replace_pattern(name, \"(?P<w>e)\", \"<${w}>\")"));
    assert_string_equal(it.field[SYC_OTTL_F_NAME].u.s.ptr, "r<e>nam<e>d");
    assert_true(exec_in(&it, SPAN, "replace_pattern(kind, \"2\", \"3\")")); /* not a string */
    assert_int_equal(it.field[SYC_OTTL_F_KIND].u.i, 2);

    /* delete_key, delete_matching_keys */
    assert_true(exec_in(&it, SPAN, "delete_key(attributes, \"copy\")"));
    assert_null(entry(&it, 0, "copy"));
    assert_true(exec_in(&it, SPAN, "delete_key(attributes, \"never-there\")"));
    assert_true(exec_in(&it, SPAN, "delete_matching_keys(attributes, \"(?i).*PASSWORD.*\")"));
    assert_null(entry(&it, 0, "db.password"));
    assert_non_null(entry(&it, 0, "http.method"));

    /* replace_all_patterns on values, then on keys */
    fake_put_str(&it.maps[0], "url", "/account/1234/orders");
    assert_true(exec_in(&it, SPAN,
                        "replace_all_patterns(attributes, \"value\", "
                        "\"/account/\\\\d{4}\", \"/account/{accountId}\")"));
    assert_string_equal(str_of(entry(&it, 0, "url")), "/account/{accountId}/orders");
    assert_int_equal(entry(&it, 0, "http.status_code")->v.u.i, 503); /* ints untouched */
    assert_true(exec_in(&it, SPAN,
                        "replace_all_patterns(attributes, \"key\", \"^http\\\\.\", "
                        "\"h.\")"));
    assert_null(entry(&it, 0, "http.method"));
    assert_string_equal(str_of(entry(&it, 0, "h.method")), "GET");
    assert_int_equal(entry(&it, 0, "h.status_code")->v.u.i, 503);

    /* truncate_all */
    fake_put_str(&it.maps[1], "long", "0123456789");
    assert_true(exec_in(&it, SPAN, "truncate_all(resource.attributes, 4)"));
    assert_string_equal(str_of(entry(&it, 1, "long")), "0123");
    assert_string_equal(str_of(entry(&it, 1, "host.name")), "pod-");
    assert_true(exec_in(&it, RES, "truncate_all(attributes, 0)"));
    assert_string_equal(str_of(entry(&it, 1, "service.name")), "");

    /* keep_keys */
    assert_true(exec_in(&it, SPAN, "keep_keys(attributes, [\"h.method\", \"url\", \"nope\"])"));
    assert_int_equal(it.maps[0].n, 2);
    assert_non_null(entry(&it, 0, "h.method"));
    assert_non_null(entry(&it, 0, "url"));
    assert_true(exec_in(&it, SCO, "keep_keys(attributes, [])"));
    assert_int_equal(it.maps[2].n, 0);

    /* limit: priority keys stay, then the first others, up to the limit */
    fake_item_init(&it); /* 7 attributes: http.method, http.status_code, ratio, grpc, ... */
    assert_true(exec_in(&it, SPAN, "limit(attributes, 10, [])"));
    assert_int_equal(it.maps[0].n, 7);
    assert_true(exec_in(&it, SPAN, "limit(attributes, 3, [\"list\", \"nested\", \"list\"])"));
    assert_int_equal(it.maps[0].n, 3);
    assert_non_null(entry(&it, 0, "list"));
    assert_non_null(entry(&it, 0, "nested"));
    assert_non_null(entry(&it, 0, "http.method"));
    assert_true(exec_in(&it, SPAN, "limit(attributes, 1, [\"absent\"])"));
    assert_int_equal(it.maps[0].n, 1);
    assert_true(exec_in(&it, SPAN, "limit(attributes, 0, [])"));
    assert_int_equal(it.maps[0].n, 0);

    /* an editor on a path that is not a map */
    syc_ottl_error_t err;
    const char *src = "delete_key(name, \"x\")";
    syc_ottl_prog_t *p = syc_ottl_compile_statement(src, strlen(src), SPAN, &err);
    assert_non_null(p);
    bool applied = true;
    assert_int_equal(syc_ottl_exec_statement(p, &fake_accessor, &it, scratch, &applied), SY_EINVAL);
    assert_false(applied);
    syc_ottl_free(p);
}

/* One program, many items, one scratch: nothing leaks into the next evaluation. */
/* Context inference from path prefixes (transform's flat statements, filter's
 * *_conditions), and the context-prefixed spellings it compiles with. */
static void test_inference(void **state)
{
    (void)state;
    const unsigned traces = 1u << RES | 1u << SCO | 1u << SPAN | 1u << EVT;
    const unsigned metrics = 1u << RES | 1u << SCO | 1u << MET | 1u << DP;
    const unsigned all = traces | metrics | 1u << LOG;
    static const struct {
        const char *src;
        unsigned allowed;
        int rc;
        syc_ottl_context_t ctx;
    } cases[] = {
        {"set(span.attributes[\"a\"], resource.attributes[\"b\"])", traces, 0, SPAN},
        {"set(resource.attributes[\"env\"], \"prod\")", traces, 0, RES},
        {"set(scope.name, \"x\") where resource.attributes[\"a\"] == nil", traces, 0, SCO},
        {"instrumentation_scope.name == \"x\"", traces, 0, SCO},
        {"spanevent.name == \"e\" and span.name == \"s\"", traces, 0, EVT},
        {"set(metric.name, \"m\") where datapoint.attributes[\"a\"] == 1", metrics, 0, DP},
        {"metric.name == \"m\"", metrics, 0, MET},
        {"IsMatch(log.body, \"x\") and resource.attributes[\"a\"] == \"span.x\"", all, 0, LOG},
        {"attributes[\"x\"] == 1", all, SY_EAGAIN, SPAN},
        {"set(attributes[\"a.b\"], name)", all, SY_EAGAIN, SPAN},
        {"log.body == \"x\"", traces, SY_EINVAL, SPAN},
        {"set(attributes[\"x\"], resource.attributes[\"y\"])", traces, SY_EINVAL, SPAN},
        {"span.name == \"a\" and kind == SPAN_KIND_SERVER", traces, SY_EINVAL, SPAN},
        {"IsMatch(span.name, \"x\") and span.kind == SPAN_KIND_SERVER", traces, 0, SPAN},
        {"span.name == \"unterminated", traces, SY_EINVAL, SPAN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        syc_ottl_error_t err;
        syc_ottl_context_t ctx = SPAN;
        int rc = syc_ottl_infer_context(cases[i].src, strlen(cases[i].src), cases[i].allowed, &ctx,
                                        &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d (%s)", i, cases[i].src, rc, err.msg);
        if (rc == 0 && ctx != cases[i].ctx) fail_msg("case %zu: context %d", i, (int)ctx);
        if (rc != 0) assert_true(err.msg[0] != '\0');
    }
    syc_ottl_error_t err;
    syc_ottl_context_t ctx;
    assert_int_equal(syc_ottl_infer_context("log.body == 1", 13, traces, &ctx, &err), SY_EINVAL);
    assert_string_equal(err.msg,
                        "col 1: the log context (inferred from the 'log.' paths) is not available "
                        "here");
    const char *mixed = "set(attributes[\"x\"], resource.attributes[\"y\"])";
    assert_int_equal(syc_ottl_infer_context(mixed, strlen(mixed), traces, &ctx, &err), SY_EINVAL);
    assert_string_equal(err.msg, "col 5: a path without a context name ('attributes') next to "
                                 "paths with one: write every path with its context (span., "
                                 "resource., log., ...)");
    /* The prefixed paths compile in the inferred context and read the same fields. */
    fake_item_t it;
    fake_item_init(&it);
    assert_true(eval_in(&it, SPAN, "span.name == name and span.kind == kind"));
    assert_true(eval_in(&it, SPAN, "scope.name == instrumentation_scope.name"));
    assert_true(eval_in(&it, SCO, "scope.name == name"));
    assert_true(
        eval_in(&it, RES, "resource.attributes[\"host.name\"] == attributes[\"host.name\"]"));
}

static void test_reuse(void **state)
{
    (void)state;
    const char *src = "Concat([name, String(kind)], \"/\") == \"a/1\" or IsMatch(name, \"^b\")";
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition(src, strlen(src), SPAN, &err);
    assert_non_null(p);
    fake_item_t it;
    fake_item_init(&it);
    for (int i = 0; i < 1000; i++) {
        fake_set_str(&it, SYC_OTTL_F_NAME, i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c");
        fake_set_int(&it, SYC_OTTL_F_KIND, 1);
        bool out;
        assert_int_equal(syc_ottl_eval_condition(p, &fake_accessor, &it, scratch, &out), 0);
        assert_int_equal(out, i % 3 != 2);
    }
    syc_ottl_free(p);
}

/* A chain of 20000 terms is walked without recursion; nesting is bounded. */
static void test_long_chain(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char src[N * 16];
    size_t n = 0;
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%skind == %d", i ? " or " : "",
                              i == N - 1 ? 2 : 9);
    fake_item_t it;
    fake_item_init(&it);
    assert_true(eval_in(&it, SPAN, src));
    n = 0;
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%strue", i ? " and " : "");
    assert_true(eval_in(&it, SPAN, src));

    n = 0;
    for (int i = 0; i < 40; i++)
        src[n++] = '(';
    memcpy(src + n, "true", 4);
    n += 4;
    for (int i = 0; i < 40; i++)
        src[n++] = ')';
    syc_ottl_error_t err;
    assert_null(syc_ottl_compile_condition(src, n, SPAN, &err));
    assert_string_equal(err.msg, "col 33: expression nested too deeply (limit 32)");
}

static int setup(void **state)
{
    (void)state;
    scratch = syc_ottl_scratch_new(0);
    return scratch ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    syc_ottl_scratch_free(scratch);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),     cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_operators), cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_enums),     cmocka_unit_test(test_converters),
        cmocka_unit_test(test_contexts),  cmocka_unit_test(test_editors),
        cmocka_unit_test(test_reuse),     cmocka_unit_test(test_long_chain),
        cmocka_unit_test(test_inference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
