/*
 * test_prom_receiver.c - the prometheus receiver's parser (text format 0.0.4 and
 * OpenMetrics 1.0), its relabeling and its mapping to OTLP, on the corners a real
 * target does not show: escapes, every value spelling, refused documents with
 * their line, Go's $-expansion rules, anchored regexes, start times across
 * scrapes and resets, stale points. Sources compiled in from the plugin's
 * directory.
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

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_otlp.h"
#include "prom_parse.h"
#include "prom_relabel.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;

static int parse(prom_doc_t *d, const char *text, bool om, char *err)
{
    memset(d, 0, sizeof(*d));
    return prom_parse(d, text, strlen(text), om, 0, err, 256);
}

static void test_text_format(void **state)
{
    (void)state;
    prom_doc_t d;
    char err[256] = "";
    const char *page = "# HELP a_total Help with \\\\ and \\n and \\x.\n"
                       "# TYPE a_total counter\n"
                       "a_total{x=\"1\",y=\"q\\\"\\\\\\n\\t\"} 1.5e3 1700000000123\n"
                       "  \t\n"
                       "# just a comment\n"
                       "b { k = \"v\" , } NaN\n"
                       "c +Inf\n"
                       "c2 -Inf\n"
                       "c3 Inf\n"
                       "d\t-0.25\t\n";
    assert_int_equal(parse(&d, page, false, err), 0);
    assert_int_equal(d.nsamples, 6);
    const prom_meta_t *m = prom_doc_meta(&d, "a_total");
    assert_non_null(m);
    assert_int_equal(m->type, PROM_COUNTER);
    assert_string_equal(m->help, "Help with \\ and \n and \\x.");
    prom_sample_t *s = &d.samples[0];
    assert_string_equal(s->name, "a_total");
    assert_int_equal(s->nlabels, 2);
    assert_string_equal(s->labels[1].name, "y");
    assert_string_equal(s->labels[1].value, "q\"\\\n\\t"); /* \t is not an escape */
    assert_true(s->value == 1500.0);
    assert_true(s->has_ts);
    assert_int_equal(s->ts_ms, 1700000000123);
    assert_true(isnan(d.samples[1].value));
    assert_int_equal(d.samples[1].nlabels, 1);
    assert_true(isinf(d.samples[2].value) && d.samples[2].value > 0);
    assert_true(isinf(d.samples[3].value) && d.samples[3].value < 0);
    assert_true(isinf(d.samples[4].value));
    assert_true(d.samples[5].value == -0.25);
    assert_false(d.samples[5].has_ts);
    prom_doc_free(&d);
}

static void test_openmetrics(void **state)
{
    (void)state;
    prom_doc_t d;
    char err[256] = "";
    const char *page = "# TYPE x_seconds histogram\n"
                       "# UNIT x_seconds seconds\n"
                       "# HELP x_seconds Some \\\"help\\\".\n"
                       "x_seconds_bucket{le=\"1\"} 1 # {id=\"a\"} 0.5 1700000000.5\n"
                       "x_seconds_bucket{le=\"+Inf\"} 2 1700000000.25\n"
                       "x_seconds_created 1600000000\n"
                       "# TYPE i info\n"
                       "i_info{v=\"1\"} 1\n"
                       "# EOF\n";
    assert_int_equal(parse(&d, page, true, err), 0);
    assert_int_equal(d.nsamples, 4);
    const prom_meta_t *m = prom_doc_meta(&d, "x_seconds");
    assert_string_equal(m->unit, "seconds");
    assert_string_equal(m->help, "Some \"help\".");
    assert_int_equal(prom_doc_meta(&d, "i")->type, PROM_INFO);
    assert_int_equal(d.samples[1].ts_ms, 1700000000250);
    prom_doc_free(&d);
}

static void refused(const char *page, bool om, const char *want)
{
    prom_doc_t d;
    char err[256] = "";
    assert_int_equal(parse(&d, page, om, err), -1);
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
    prom_doc_free(&d);
}

static void test_refused(void **state)
{
    (void)state;
    refused("a 1\nb{x=\"1\" 2\n", false, "line 2: expected ',' or '}'");
    refused("a{x=\"1\",x=\"2\"} 1\n", false, "duplicate label name");
    refused("a{x=\"\xff\"} 1\n", false, "invalid UTF-8");
    refused("a 1x\n", false, "invalid value");
    refused("a 0x10\n", false, "invalid value");
    refused("a 1 12.5\n", false, "invalid timestamp");
    refused("a 1 2 3\n", false, "line 1: unexpected text");
    refused("# TYPE a bogus\n", false, "invalid metric type");
    refused("# TYPE a unknown\n", false, "invalid metric type"); /* OpenMetrics only */
    refused("a{x=\"1} 1\n", false, "unterminated");
    refused("1a 1\n", false, "invalid metric name");
    refused("a 1\n", true, "does not end with # EOF");
    refused("a 1\n# EOF\nb 2\n", true, "after # EOF");
    refused("a  1\n# EOF\n", true, "single space");
    refused("\n# EOF\n", true, "empty line");
    refused("# TYPE a gauge\n# TYPE a gauge\n# EOF\n", true, "second # TYPE");
    refused("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n", true, "not a suffix");
    refused("# random comment\n# EOF\n", true, "invalid comment");
}

static void test_sample_limit(void **state)
{
    (void)state;
    prom_doc_t d = {0};
    char err[256];
    const char *page = "a 1\nb 2\nc 3\n";
    assert_int_equal(prom_parse(&d, page, strlen(page), false, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "sample_limit"));
    prom_doc_free(&d);
    memset(&d, 0, sizeof(d));
    const char nul[] = "a 1\nb\0 2\n";
    assert_int_equal(prom_parse(&d, nul, sizeof(nul) - 1, false, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
    prom_doc_free(&d);
}

/* ---- relabeling ------------------------------------------------------------------ */

static prom_relabel_t rule(prom_relabel_action_t a, const char *src, const char *regex,
                           const char *target, const char *repl)
{
    prom_relabel_t r = {0};
    r.action = a;
    if (src) {
        r.source_labels = calloc(2, sizeof(char *));
        char *copy = strdup(src);
        char *semi = strchr(copy, ',');
        if (semi) *semi = '\0';
        r.source_labels[r.nsource++] = strdup(copy);
        if (semi) r.source_labels[r.nsource++] = strdup(semi + 1);
        free(copy);
    }
    if (regex) r.regex = strdup(regex);
    if (target) r.target_label = strdup(target);
    if (repl) r.replacement = strdup(repl);
    char err[256];
    if (prom_relabel_compile(&r, err, sizeof(err)) != 0) fail_msg("%s", err);
    return r;
}

static void test_relabel(void **state)
{
    (void)state;
    prom_arena_t a = {0};
    prom_labels_t ls = {.arena = &a};
    prom_labels_set(&ls, "__name__", "http_requests_total");
    prom_labels_set(&ls, "code", "200");
    prom_labels_set(&ls, "method", "get");
    prom_relabel_t rules[] = {
        /* anchored: "requests" alone does not match the whole name */
        rule(PROM_RL_DROP, "__name__", "requests", NULL, NULL),
        rule(PROM_RL_KEEP, "__name__,code", "http_.*;2..", NULL, NULL),
        rule(PROM_RL_REPLACE, "method,code", "(?P<m>[a-z]+);(\\d)(\\d+)", "x_$1",
             "${m}-$2$3-$$-$9-$2x-${2}x-$"),
        rule(PROM_RL_REPLACE, "method", "get", "gone", "$unknown"),
        rule(PROM_RL_LABELMAP, NULL, "(c)ode", NULL, "was_$1"),
        rule(PROM_RL_UPPERCASE, "method", NULL, "upper", NULL),
        rule(PROM_RL_LABELDROP, NULL, "meth.*", NULL, NULL),
    };
    size_t n = sizeof(rules) / sizeof(rules[0]);
    assert_int_equal(prom_relabel_apply(rules, n, &ls), 1);
    /* Go's Expand: $9 and $2x (a name, not a group) are empty, a lone $ is text. */
    assert_string_equal(prom_labels_get(&ls, "x_get"), "get-200-$---2x-$");
    assert_null(prom_labels_get(&ls, "gone")); /* empty replacement deletes */
    assert_string_equal(prom_labels_get(&ls, "was_c"), "200");
    assert_string_equal(prom_labels_get(&ls, "upper"), "GET");
    assert_null(prom_labels_get(&ls, "method"));
    assert_string_equal(prom_labels_get(&ls, "code"), "200");
    /* sorted by name */
    for (size_t i = 1; i < ls.n; i++)
        assert_true(strcmp(ls.v[i - 1].name, ls.v[i].name) < 0);
    /* keep drops what does not match, labelkeep keeps only what matches */
    prom_relabel_t keep = rule(PROM_RL_KEEP, "code", "5..", NULL, NULL);
    assert_int_equal(prom_relabel_apply(&keep, 1, &ls), 0);
    prom_relabel_t lk = rule(PROM_RL_LABELKEEP, NULL, "__name__|code", NULL, NULL);
    assert_int_equal(prom_relabel_apply(&lk, 1, &ls), 1);
    assert_int_equal(ls.n, 2);
    /* a target label that expands to an invalid name changes nothing */
    prom_relabel_t bad = rule(PROM_RL_REPLACE, "code", "(.*)", "${1}", "v");
    assert_int_equal(prom_relabel_apply(&bad, 1, &ls), 1);
    assert_int_equal(ls.n, 2);
    /* PCRE2's $ would match before a final newline; the anchoring does not */
    prom_labels_set(&ls, "nl", "a\n");
    prom_relabel_t nl = rule(PROM_RL_DROP, "nl", "a", NULL, NULL);
    assert_int_equal(prom_relabel_apply(&nl, 1, &ls), 1);
    for (size_t i = 0; i < n; i++)
        prom_relabel_free(&rules[i]);
    prom_relabel_free(&keep);
    prom_relabel_free(&lk);
    prom_relabel_free(&bad);
    prom_relabel_free(&nl);
    prom_arena_free(&a);
}

static void test_relabel_refused(void **state)
{
    (void)state;
    char err[256];
    prom_relabel_t r = {.action = PROM_RL_REPLACE};
    assert_int_equal(prom_relabel_compile(&r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "target_label"));
    prom_relabel_free(&r);
    prom_relabel_t r2 = {.action = PROM_RL_KEEP, .regex = strdup("(")};
    assert_int_equal(prom_relabel_compile(&r2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid regex"));
    prom_relabel_free(&r2);
    prom_relabel_t r3 = {.action = PROM_RL_LABELDROP, .target_label = strdup("x")};
    assert_int_equal(prom_relabel_compile(&r3, err, sizeof(err)), -1);
    prom_relabel_free(&r3);
    assert_int_equal(prom_relabel_action_parse("LabelKeep"), PROM_RL_LABELKEEP);
    assert_int_equal(prom_relabel_action_parse("hashmod"), -1);
}

/* ---- mapping --------------------------------------------------------------------- */

static const metric_t *find(const req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++)
                if (!strcmp(sm->metrics[k]->name, name)) return sm->metrics[k];
        }
    return NULL;
}

static const req_t *scrape(prom_target_t *t, prom_series_state_t *st, const char *page, bool om,
                           uint64_t now, prom_arena_t *a, prom_doc_t *d, prom_stats_t *stats)
{
    char err[256];
    memset(d, 0, sizeof(*d));
    if (page && prom_parse(d, page, strlen(page), om, 0, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return prom_build(t, st, page ? d : NULL, now, 0.01, "test", a, stats);
}

static void test_mapping_across_scrapes(void **state)
{
    (void)state;
    prom_target_t t = {
        .job = "j", .instance = "host.example:9100", .scheme = "https", .honor_timestamps = true};
    prom_series_state_t st = {0};
    prom_arena_t a = {0};
    prom_doc_t d;
    prom_stats_t stats;
    const char *p1 = "# TYPE c_total counter\nc_total 10\n# TYPE g gauge\ng{a=\"1\"} 3\n"
                     "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                     "h_count 2\nh_sum 3\n# TYPE s summary\ns_bucket{le=\"1\"} 1\n";
    const req_t *r = scrape(&t, &st, p1, false, 1000, &a, &d, &stats);
    assert_non_null(r);
    assert_int_equal(stats.scraped, 7);
    assert_int_equal(stats.dropped, 1); /* a summary has no buckets */
    const Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_metrics[0]->resource;
    assert_int_equal(res->n_attributes, 5);
    assert_string_equal(res->attributes[1]->key, "server.address");
    assert_string_equal(res->attributes[1]->value->string_value, "host.example");
    assert_string_equal(res->attributes[3]->value->string_value, "9100");
    assert_string_equal(res->attributes[4]->value->string_value, "https");
    const metric_t *c = find(r, "c_total");
    assert_int_equal(c->sum->data_points[0]->start_time_unix_nano, 1000);
    const metric_t *h = find(r, "h");
    assert_int_equal(h->histogram->data_points[0]->n_bucket_counts, 2);
    assert_null(find(r, "s"));
    assert_int_equal(stats.added, 7); /* samples, the dropped one too */
    prom_doc_free(&d);
    prom_arena_free(&a);

    /* second scrape: same start; g gone -> stale; the counter keeps its start */
    const char *p2 = "# TYPE c_total counter\nc_total 12\n# TYPE h histogram\nh_count 1\nh_sum 1\n";
    r = scrape(&t, &st, p2, false, 2000, &a, &d, &stats);
    c = find(r, "c_total");
    assert_int_equal(c->sum->data_points[0]->start_time_unix_nano, 1000);
    const metric_t *g = find(r, "g");
    assert_non_null(g);
    assert_int_equal(g->gauge->data_points[0]->flags, 1);
    assert_int_equal(g->gauge->data_points[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET);
    assert_int_equal(g->gauge->data_points[0]->n_attributes, 1);
    assert_int_equal(stats.stale, 1);
    /* the histogram's count went down: reset */
    h = find(r, "h");
    assert_int_equal(h->histogram->data_points[0]->start_time_unix_nano, 2000);
    prom_doc_free(&d);
    prom_arena_free(&a);

    /* a series with an explicit timestamp is forgotten without a stale point */
    r = scrape(&t, &st,
               "e 1 5000\n# TYPE c_total counter\nc_total 12\n# TYPE h histogram\n"
               "h_count 1\nh_sum 1\n",
               false, 2500, &a, &d, &stats);
    assert_int_equal(find(r, "e")->gauge->data_points[0]->time_unix_nano, 5000000000u);
    prom_doc_free(&d);
    prom_arena_free(&a);
    r = scrape(&t, &st, p2, false, 2600, &a, &d, &stats);
    assert_null(find(r, "e"));
    assert_int_equal(stats.stale, 0);
    prom_doc_free(&d);
    prom_arena_free(&a);

    /* down: every series stale, up 0 */
    r = scrape(&t, &st, NULL, false, 3000, &a, &d, &stats);
    assert_int_equal(stats.stale, 2);
    assert_int_equal(find(r, "c_total")->sum->data_points[0]->flags, 1);
    assert_int_equal(find(r, "up")->gauge->data_points[0]->as_double, 0);
    prom_doc_free(&d);
    prom_arena_free(&a);

    /* back up: the counter starts again at first sight */
    r = scrape(&t, &st, p2, false, 4000, &a, &d, &stats);
    assert_int_equal(find(r, "c_total")->sum->data_points[0]->start_time_unix_nano, 4000);
    assert_null(find(r, "g"));
    prom_doc_free(&d);
    prom_arena_free(&a);
    prom_series_state_free(&st);
}

static void test_honor_labels(void **state)
{
    (void)state;
    prom_label_t statics[] = {{"env", "prod"}};
    prom_target_t t = {.job = "j",
                       .instance = "localhost:1",
                       .scheme = "http",
                       .labels = statics,
                       .nlabels = 1,
                       .honor_labels = true};
    prom_series_state_t st = {0};
    prom_arena_t a = {0};
    prom_doc_t d;
    prom_stats_t stats;
    const req_t *r =
        scrape(&t, &st, "m{job=\"other\",env=\"dev\"} 1 5\n", false, 1000, &a, &d, &stats);
    /* the exposed job wins: its own resource; the explicit timestamp is ignored
     * without honor_timestamps */
    assert_int_equal(r->n_resource_metrics, 2);
    const metric_t *m = r->resource_metrics[0]->scope_metrics[0]->metrics[0];
    assert_string_equal(m->name, "m");
    assert_string_equal(r->resource_metrics[0]->resource->attributes[0]->value->string_value,
                        "other");
    assert_int_equal(r->resource_metrics[0]->resource->n_attributes, 4); /* localhost */
    assert_string_equal(m->gauge->data_points[0]->attributes[0]->value->string_value, "dev");
    assert_int_equal(m->gauge->data_points[0]->time_unix_nano, 1000);
    prom_doc_free(&d);
    prom_arena_free(&a);
    prom_series_state_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_openmetrics),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_sample_limit),
        cmocka_unit_test(test_relabel),
        cmocka_unit_test(test_relabel_refused),
        cmocka_unit_test(test_mapping_across_scrapes),
        cmocka_unit_test(test_honor_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
