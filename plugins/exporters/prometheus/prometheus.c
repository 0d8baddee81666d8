/*
 * prometheus.c - the `prometheus` exporter: keeps the newest value of every series
 * it is sent and serves them on GET /metrics for a Prometheus server to scrape, as
 * the collector's prometheusexporter does. Names are translated in prom_names.c,
 * the accumulated state lives in prom_store.c and the exposition formats are
 * written by prom_render.c.
 *
 * Threads: consume() and the HTTP server both run on the exporter's loop thread,
 * so the store needs no locks: a scrape always sees whole batches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "http_server.h"
#include "tls_config.h"
#include "prom_render.h"
#include "prom_store.h"

/* A scrape answer larger than this fails with 500 rather than exhaust memory. */
#define PROM_MAX_RESPONSE ((size_t)512 << 20)
/* New series beyond this many are dropped (and counted) until old ones expire. */
#define PROM_MAX_SERIES ((size_t)500000)
/* One log line per kind of warning per this many milliseconds at most. */
#define PROM_WARN_INTERVAL_MS 10000

typedef struct prom_config_s {
    char *endpoint;
    char *ns;
    sy_cfg_strmap_t const_labels;
    bool send_timestamps;
    int64_t metric_expiration; /* nanoseconds */
    bool r2t_enabled;
    bool r2t_exclude_service_attributes;
    bool enable_open_metrics;
    bool add_metric_suffixes;
    char *translation_strategy;
    bool without_scope_info;
    syc_tls_server_cfg_t tls;
    const sy_cfg_node_t *sending_queue;
} prom_config_t;

typedef struct prom_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const prom_config_t *cfg;
    prom_store_t store;
    syc_prom_buf_t out; /* the scrape answer, kept between scrapes */
    char *target_info_name;
    syc_http_server_t *server;
    syc_tls_server_t tls;
    sy_timer_t *sweep;
    uint64_t last_warn_ms[PROM_WARN_COUNT];
    uint64_t suppressed[PROM_WARN_COUNT];
    sy_metric_t *m_series, *m_dropped, *m_scrapes;
    uint64_t dropped_reported;
} prom_state_t;

static const sy_config_field_t prom_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(prom_config_t, endpoint),
     .required = true,
     .description = "host:port on which the metrics are served, at path /metrics "
                    "(\"0.0.0.0:8889\" for every interface)."},
    {.name = "namespace",
     .type = SY_CFG_STRING,
     .offset = offsetof(prom_config_t, ns),
     .description = "Prefix of every metric name (namespace_name)."},
    {.name = "const_labels",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(prom_config_t, const_labels),
     .description = "Labels added to every exported series."},
    {.name = "send_timestamps",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, send_timestamps),
     .default_value = "false",
     .description = "Write each sample with the timestamp of its data point."},
    {.name = "metric_expiration",
     .type = SY_CFG_DURATION,
     .offset = offsetof(prom_config_t, metric_expiration),
     .default_value = "5m",
     .description = "How long a series is served after its last update."},
    {.name = "resource_to_telemetry_conversion.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, r2t_enabled),
     .default_value = "false",
     .description = "Add every resource attribute as a label of every series."},
    {.name = "resource_to_telemetry_conversion.exclude_service_attributes",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, r2t_exclude_service_attributes),
     .default_value = "false",
     .description = "With resource_to_telemetry_conversion, leave out service.name, "
                    "service.namespace and service.instance.id (already job and instance)."},
    {.name = "enable_open_metrics",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, enable_open_metrics),
     .default_value = "false",
     .description = "Write exemplars (of counters and histogram buckets) when the scraper "
                    "asks for OpenMetrics."},
    {.name = "add_metric_suffixes",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, add_metric_suffixes),
     .default_value = "true",
     .description = "Deprecated: add unit and type suffixes; ignored when "
                    "translation_strategy is set."},
    {.name = "translation_strategy",
     .type = SY_CFG_STRING,
     .offset = offsetof(prom_config_t, translation_strategy),
     .description = "UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, "
                    "NoUTF8EscapingWithSuffixes or NoTranslation."},
    {.name = "without_scope_info",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prom_config_t, without_scope_info),
     .default_value = "false",
     .description = "Leave out the otel_scope_* labels."},
    SYC_TLS_SERVER_FIELDS(prom_config_t, tls, ""),
    {.name = "sending_queue",
     .type = SY_CFG_RAW,
     .offset = offsetof(prom_config_t, sending_queue),
     .description = "Accepted for compatibility and ignored: points are stored as they "
                    "arrive."},
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool valid_const_label(const char *k)
{
    if (!k || !*k || strncmp(k, "__", 2) == 0) return false;
    for (size_t i = 0; k[i]; i++) {
        char c = k[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static int prom_validate(const void *config, char *err, size_t err_len)
{
    const prom_config_t *c = config;
    char why[300];
    if (!c->endpoint || !*c->endpoint) {
        snprintf(err, err_len,
                 "endpoint: expecting a non-blank address to run the Prometheus metrics handler");
        return SY_EINVAL;
    }
    if (syc_http_endpoint_check(c->endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "endpoint: %s", why);
        return SY_EINVAL;
    }
    if (syc_tls_server_cfg_check(&c->tls, "tls", err, err_len) != 0) return SY_EINVAL;
    if (c->translation_strategy && *c->translation_strategy &&
        syc_prom_strategy_parse(c->translation_strategy) < 0) {
        snprintf(err, err_len, "invalid translation_strategy: %s", c->translation_strategy);
        return SY_EINVAL;
    }
    if (c->metric_expiration <= 0) {
        snprintf(err, err_len, "metric_expiration: must be a positive duration");
        return SY_EINVAL;
    }
    for (size_t i = 0; i < c->const_labels.count; i++) {
        if (!valid_const_label(c->const_labels.keys[i])) {
            snprintf(err, err_len, "const_labels: \"%s\" is not a valid label name",
                     c->const_labels.keys[i]);
            return SY_EINVAL;
        }
    }
    return SY_OK;
}

/* The store's warnings, at most one line per kind per PROM_WARN_INTERVAL_MS. */
static void prom_warn(void *arg, prom_warn_t what, const char *msg)
{
    prom_state_t *s = arg;
    uint64_t now = monotonic_ms();
    if (s->last_warn_ms[what] && now - s->last_warn_ms[what] < PROM_WARN_INTERVAL_MS) {
        s->suppressed[what]++;
        return;
    }
    if (s->suppressed[what])
        SY_LOG(s->api, s->inst, SY_LOG_WARN, "%s (and %llu more like it)", msg,
               (unsigned long long)s->suppressed[what]);
    else
        SY_LOG(s->api, s->inst, SY_LOG_WARN, "%s", msg);
    s->last_warn_ms[what] = now;
    s->suppressed[what] = 0;
}

static void prom_update_metrics(prom_state_t *s)
{
    s->api->metric_set(s->m_series, (int64_t)s->store.series.count);
    if (s->store.dropped_points > s->dropped_reported) {
        s->api->metric_add(s->m_dropped, (int64_t)(s->store.dropped_points - s->dropped_reported));
        s->dropped_reported = s->store.dropped_points;
    }
}

static void prom_sweep(void *arg)
{
    prom_state_t *s = arg;
    prom_store_expire(&s->store, monotonic_ms());
    prom_update_metrics(s);
}

static void prom_handle(void *arg, syc_http_request_t *req)
{
    static const char not_found[] = "404 page not found\n";
    static const char not_allowed[] = "405 method not allowed\n";
    static const char failed[] = "the exposition is too large or memory ran out\n";
    prom_state_t *s = arg;
    if (strcmp(req->path, "/metrics") != 0) {
        syc_http_respond(req, 404, "text/plain; charset=utf-8", NULL, not_found,
                         sizeof(not_found) - 1);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        syc_http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET\r\n", not_allowed,
                         sizeof(not_allowed) - 1);
        return;
    }
    prom_store_expire(&s->store, monotonic_ms());
    prom_update_metrics(s);
    s->api->metric_add(s->m_scrapes, 1);
    prom_render_opts_t o = {
        .openmetrics = prom_accepts_openmetrics(req->accept),
        .exemplars = s->cfg->enable_open_metrics,
        .timestamps = s->cfg->send_timestamps,
        .target_info_name = s->target_info_name,
    };
    syc_prom_buf_reset(&s->out);
    if (prom_render(&s->store, &o, &s->out) != 0) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR,
               "cannot write the metrics for a scrape (over %zu bytes, or out of memory)",
               (size_t)PROM_MAX_RESPONSE);
        syc_prom_buf_free(&s->out);
        syc_prom_buf_init(&s->out, PROM_MAX_RESPONSE);
        syc_http_respond(req, 500, "text/plain; charset=utf-8", NULL, failed, sizeof(failed) - 1);
        return;
    }
    syc_http_respond(req, 200, o.openmetrics ? PROM_CONTENT_TYPE_OM : PROM_CONTENT_TYPE_TEXT, NULL,
                     s->out.data, s->out.len);
}

static void prom_destroy(void *state);

static int prom_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const prom_config_t *c = config;
    if (c->sending_queue && api->cfg_kind(c->sending_queue) != 'n')
        SY_LOG(api, inst, SY_LOG_INFO,
               "sending_queue is ignored: the prometheus exporter stores points as they "
               "arrive");
    prom_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = c;
    int strategy = c->translation_strategy && *c->translation_strategy
                       ? syc_prom_strategy_parse(c->translation_strategy)
                       : -1;
    syc_prom_namer_t namer = syc_prom_namer_for(strategy, c->add_metric_suffixes, c->ns);
    prom_store_cfg_t sc = {
        .namer = namer,
        .label_utf8 = namer.utf8,
        .n_const_labels = c->const_labels.count,
        .const_label_names = c->const_labels.keys,
        .const_label_values = c->const_labels.values,
        .resource_to_telemetry = c->r2t_enabled,
        .exclude_service_attributes = c->r2t_exclude_service_attributes,
        .without_scope_info = c->without_scope_info,
        .keep_exemplars = c->enable_open_metrics,
        .expiration_ms = (uint64_t)c->metric_expiration / 1000000,
        .max_series = PROM_MAX_SERIES,
        .warn = prom_warn,
        .warn_arg = s,
    };
    prom_store_init(&s->store, &sc);
    syc_prom_buf_init(&s->out, PROM_MAX_RESPONSE);
    /* target_info takes the namespace as a label name would (LabelNamer). */
    syc_prom_buf_t name;
    syc_prom_buf_init(&name, 0);
    if (c->ns && *c->ns) {
        if (syc_prom_label_name(&name, c->ns, strlen(c->ns), namer.utf8) == 0) {
            if (namer.utf8 && !syc_prom_is_legacy_name(name.data, name.len, true)) {
                syc_prom_buf_t esc;
                syc_prom_buf_init(&esc, 0);
                syc_prom_escape_legacy(&esc, name.data, name.len, true);
                syc_prom_buf_free(&name);
                name = esc;
            }
            syc_prom_buf_char(&name, '_');
        }
    }
    syc_prom_buf_str(&name, "target_info");
    s->target_info_name = syc_prom_buf_take(&name, NULL);
    s->m_series =
        api->metric_register(inst, "exporter_prometheus_series",
                             "Series the prometheus exporter currently serves.", SY_METRIC_GAUGE);
    s->m_dropped = api->metric_register(
        inst, "exporter_prometheus_dropped_points",
        "Data points the prometheus exporter could not store (invalid, exponential "
        "histograms, type conflicts, over the series limit).",
        SY_METRIC_COUNTER);
    s->m_scrapes =
        api->metric_register(inst, "exporter_prometheus_scrapes",
                             "Scrapes of the prometheus exporter's endpoint.", SY_METRIC_COUNTER);
    if (!s->target_info_name || !s->m_series || !s->m_dropped || !s->m_scrapes) {
        prom_destroy(s);
        return SY_ENOMEM;
    }
    if (syc_tls_server_open(&s->tls, api, inst, &c->tls, "tls", true) != 0) {
        prom_destroy(s);
        return SY_EINVAL;
    }
    *state = s;
    return SY_OK;
}

static int prom_start(void *state)
{
    prom_state_t *s = state;
    char err[256] = "";
    s->server = syc_http_server_start(s->api->loop(s->inst), s->cfg->endpoint, 64 * 1024,
                                      prom_handle, s, err, sizeof(err));
    if (!s->server) {
        s->api->log(s->inst, SY_LOG_ERROR, "cannot listen on \"%s\": %s", s->cfg->endpoint, err);
        return SY_ERROR;
    }
    syc_tls_server_attach(&s->tls, s->server);
    /* Expired series go at every scrape and, so that memory stays bounded when
     * nobody scrapes, at least once a minute. */
    uint64_t period = s->store.cfg.expiration_ms / 4;
    if (period < 1000) period = 1000;
    if (period > 60000) period = 60000;
    s->sweep = s->api->timer_start(s->inst, period, period, prom_sweep, s);
    if (!s->sweep) {
        s->api->log(s->inst, SY_LOG_ERROR, "cannot start the expiration timer");
        return SY_ERROR;
    }
    SY_LOG(s->api, s->inst, SY_LOG_INFO, "Serving Prometheus metrics on %s://%s/metrics",
           s->tls.ctx ? "https" : "http", s->cfg->endpoint);
    return SY_OK;
}

static int prom_consume(void *state, sy_batch_t *batch)
{
    prom_state_t *s = state;
    sy_batch_info_t info;
    s->api->batch_info(batch, &info);
    if (info.signal == SY_SIGNAL_METRICS) {
        const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req =
            s->api->batch_request(batch);
        if (req)
            prom_store_add(&s->store, req, monotonic_ms());
        else
            SY_LOG(s->api, s->inst, SY_LOG_WARN, "dropped a batch that does not decode");
        prom_update_metrics(s);
    }
    s->api->batch_release(batch);
    return SY_OK;
}

static void prom_server_closed(void *arg)
{
    prom_state_t *s = arg;
    s->server = NULL;
}

static void prom_shutdown(void *state)
{
    prom_state_t *s = state;
    syc_tls_server_stop(&s->tls);
    if (s->sweep) {
        s->api->timer_stop(s->sweep);
        s->sweep = NULL;
    }
    if (s->server) syc_http_server_close(s->server, prom_server_closed, s);
}

static void prom_destroy(void *state)
{
    prom_state_t *s = state;
    if (!s) return;
    prom_store_free(&s->store);
    syc_prom_buf_free(&s->out);
    free(s->target_info_name);
    syc_tls_server_free(&s->tls);
    free(s);
}

static const sy_plugin_t prom_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "prometheus",
    .signals = SY_SIGNAL_METRICS,
    .flags = 0,
    .version = "0.1.0",
    .description = "Serves the metrics it receives on /metrics for Prometheus to scrape.",
    .config_fields = prom_fields,
    .config_field_count = sizeof(prom_fields) / sizeof(prom_fields[0]),
    .config_size = sizeof(prom_config_t),
    .validate = prom_validate,
    .create = prom_create,
    .start = prom_start,
    .consume = prom_consume,
    .shutdown = prom_shutdown,
    .destroy = prom_destroy,
};

SY_PLUGIN_DEFINE(prom_plugin)
