/*
 * fuzz_prom_text.c - libFuzzer target for the prometheus receiver's parser of
 * the text format 0.0.4 and OpenMetrics 1.0 (plugins/receivers/prometheus/
 * prom_parse.c), its relabeling and its mapping to OTLP (prom_otlp.c).
 *
 * The first byte chooses OpenMetrics (bit 0), honor_labels (bit 1) and
 * honor_timestamps (bit 2); the rest is the page, scraped twice and then once
 * as down, so that start times, resets and stale points run. Checked: no crash,
 * hang or leak; an error comes with a sentence naming a line; every sample has
 * a valid metric name and labels of valid names with UTF-8 values; every
 * request packs, unpacks with protobuf-c and holds as many points as counted.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_otlp.h"
#include "prom_parse.h"
#include "prom_relabel.h"
#include "utf8.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;

static size_t count_points(const req_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                n += m->gauge       ? m->gauge->n_data_points
                     : m->sum       ? m->sum->n_data_points
                     : m->histogram ? m->histogram->n_data_points
                     : m->summary   ? m->summary->n_data_points
                                    : 0;
            }
        }
    return n;
}

static void check_doc(const prom_doc_t *d)
{
    for (size_t i = 0; i < d->nsamples; i++) {
        const prom_sample_t *s = &d->samples[i];
        if (!prom_valid_metric_name(s->name, strlen(s->name))) abort();
        for (size_t k = 0; k < s->nlabels; k++) {
            const prom_label_t *l = &s->labels[k];
            if (!prom_valid_label_name(l->name, strlen(l->name))) abort();
            if (!syc_utf8_valid((const uint8_t *)l->value, strlen(l->value))) abort();
        }
    }
}

static void build_check(prom_target_t *t, prom_series_state_t *st, const prom_doc_t *doc,
                        uint64_t now)
{
    prom_arena_t a = {0};
    prom_stats_t stats;
    req_t *req = prom_build(t, st, doc, now, 0.5, "fuzz", &a, &stats);
    if (req) {
        if (count_points(req) != stats.points) abort();
        size_t len = protobuf_c_message_get_packed_size(&req->base);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) abort();
        protobuf_c_message_pack(&req->base, buf);
        req_t *back =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
                NULL, len, buf);
        if (!back || count_points(back) != count_points(req)) abort();
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
            back, NULL);
        free(buf);
    }
    prom_arena_free(&a);
}

static prom_relabel_t make_rule(prom_relabel_action_t action, const char *src, const char *regex,
                                const char *target, const char *repl)
{
    prom_relabel_t r = {.action = action};
    if (src) {
        r.source_labels = malloc(sizeof(char *));
        r.source_labels[0] = strdup(src);
        r.nsource = 1;
    }
    r.regex = regex ? strdup(regex) : NULL;
    r.target_label = target ? strdup(target) : NULL;
    r.replacement = repl ? strdup(repl) : NULL;
    char err[256];
    if (prom_relabel_compile(&r, err, sizeof(err)) != 0) abort();
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool om = data[0] & 1;
    prom_doc_t doc = {0};
    char err[512] = "";
    int rc = prom_parse(&doc, (const char *)data + 1, size - 1, om, 100000, err, sizeof(err));
    if (rc != 0) {
        if (strncmp(err, "line ", 5) != 0) abort();
        prom_doc_free(&doc);
        return 0;
    }
    check_doc(&doc);
    prom_relabel_t rules[] = {
        make_rule(PROM_RL_DROP, "__name__", "drop_.*", NULL, NULL),
        make_rule(PROM_RL_REPLACE, "__name__", "(.)(.*)", "first", "$1${2}x$$"),
        make_rule(PROM_RL_LABELMAP, NULL, "(l.*)", NULL, "m_$1"),
        make_rule(PROM_RL_LABELDROP, NULL, "tmp.*", NULL, NULL),
    };
    prom_label_t statics[] = {{"env", "fuzz"}};
    prom_target_t t = {.job = "job",
                       .instance = "10.0.0.1:9100",
                       .scheme = "http",
                       .labels = statics,
                       .nlabels = 1,
                       .honor_labels = data[0] & 2,
                       .honor_timestamps = data[0] & 4,
                       .rules = rules,
                       .nrules = sizeof(rules) / sizeof(rules[0])};
    prom_series_state_t st = {0};
    build_check(&t, &st, &doc, 1000000000);
    build_check(&t, &st, &doc, 2000000000);
    build_check(&t, &st, NULL, 3000000000);
    prom_series_state_free(&st);
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        prom_relabel_free(&rules[i]);
    prom_doc_free(&doc);
    return 0;
}
