/*
 * servicegraph.c - the servicegraph connector: traces in, metrics out, as the
 * OpenTelemetry Collector's servicegraphconnector. It ends traces pipelines
 * (consume() reads each batch through the view, pairs client and server spans
 * into edges and releases the batch) and starts metrics pipelines: every
 * metrics_flush_interval it emits the cumulative series as one OTLP metrics
 * request (sg_encode), built by hand, with api->emit().
 *
 * Back-pressure: the series are cumulative, so a flush refused with SY_EAGAIN
 * loses nothing; it is counted and the next tick sends the newer totals. A span
 * is never refused: a full store drops the span's edge and counts it, as the
 * collector does.
 *
 * Threads: everything runs on the connector's loop thread (its timers too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg.h"
#include "sg_config.h"

static const sy_config_field_t sg_fields[] = {
    {SY_CFG_FIELD("latency_histogram_buckets", SY_CFG_RAW, sg_config_t, latency_buckets),
     .description = "Bounds of the latency histograms, as durations (default: 2ms 4ms 6ms 8ms "
                    "10ms 50ms 100ms 200ms 400ms 800ms 1s 1.4s 2s 5s 10s 15s)."},
    {SY_CFG_FIELD("dimensions", SY_CFG_STRLIST, sg_config_t, dimensions),
     .description = "Attributes (resource first, then span) added as client_<name> and "
                    "server_<name> labels."},
    {SY_CFG_FIELD("store.ttl", SY_CFG_DURATION, sg_config_t, store_ttl), .default_value = "2s",
     .min = "0s", .description = "How long an edge waits for its other half."},
    {SY_CFG_FIELD("store.max_items", SY_CFG_INT, sg_config_t, store_max_items),
     .default_value = "1000", .min = "0",
     .description = "Most edges waiting at once; spans that would make more are dropped."},
    {SY_CFG_FIELD("cache_loop", SY_CFG_DURATION, sg_config_t, cache_loop), .default_value = "1m",
     .min = "0s",
     .description = "How often series not updated for 15 minutes are forgotten (0: 1m)."},
    {SY_CFG_FIELD("store_expiration_loop", SY_CFG_DURATION, sg_config_t, store_expiration_loop),
     .default_value = "2s", .min = "0s",
     .description = "How often expired edges leave the store (0: 2s)."},
    {SY_CFG_FIELD("virtual_node_peer_attributes", SY_CFG_RAW, sg_config_t, peer_attrs),
     .description = "Client span attributes naming the server of an unanswered call, first "
                    "found wins (default: peer.service, db.name, db.system; [] turns virtual "
                    "nodes off)."},
    {SY_CFG_FIELD("virtual_node_extra_label", SY_CFG_BOOL, sg_config_t, virtual_node_extra_label),
     .default_value = "false",
     .description = "Adds the label virtual_node (client or server) to virtual-node series."},
    {SY_CFG_FIELD("metrics_flush_interval", SY_CFG_DURATION, sg_config_t, metrics_flush_interval),
     .default_value = "60s", .min = "0s",
     .description = "How often the metrics are emitted (0: after every traces batch)."},
    {SY_CFG_FIELD("metrics_timestamp_offset", SY_CFG_DURATION, sg_config_t,
                  metrics_timestamp_offset),
     .default_value = "0s", .min = "0s", .description = "Subtracted from the points' timestamps."},
    {SY_CFG_FIELD("database_name_attribute", SY_CFG_STRING, sg_config_t, db_attr),
     .description = "Deprecated: one database name attribute (database_name_attributes wins)."},
    {SY_CFG_FIELD("database_name_attributes", SY_CFG_STRLIST, sg_config_t, db_attrs),
     .description = "Attributes naming the database of a client span, first found wins "
                    "(default: db.name)."},
    {SY_CFG_FIELD("exponential_histogram_max_size", SY_CFG_INT, sg_config_t,
                  exponential_histogram_max_size),
     .default_value = "0", .min = "0",
     .description = "Not supported: must be 0 (explicit-bucket histograms only)."},
    {SY_CFG_FIELD("metrics_exporter", SY_CFG_STRING, sg_config_t, metrics_exporter),
     .description = "Deprecated in the collector and ignored: the pipelines say where metrics go."},
};

/* Published copies of the engine's counters, so that each flush adds the delta. */
typedef struct sg_metrics_s {
    sy_metric_t *dropped, *expired, *total, *no_service, *virt, *series_expired;
    sy_metric_t *flushes, *retries, *failures, *edges, *series;
    sg_stats_t last;
} sg_metrics_t;

typedef struct sg_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const sg_config_t *cfg;
    sg_settings_t settings;
    sg_t *sg;
    sy_timer_t *flush_timer, *expire_timer, *cache_timer;
    sy_timer_t *retry_timer; /* metrics_flush_interval 0: a refused flush, again */
    uint64_t start_unix_ns;
    int64_t last_warn_ns;
    sg_metrics_t m;
} sg_state_t;

#define SG_RETRY_MS 200

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void publish(sg_state_t *s)
{
    const sg_stats_t *st = sg_stats(s->sg);
    const sy_host_api_t *api = s->api;
#define DELTA(metric, field)                                                      \
    do {                                                                          \
        if (st->field != s->m.last.field)                                         \
            api->metric_add(s->m.metric, (int64_t)(st->field - s->m.last.field)); \
    } while (0)
    DELTA(dropped, dropped_spans);
    DELTA(expired, expired_edges);
    DELTA(total, total_edges);
    DELTA(no_service, no_service);
    DELTA(virt, virtual_edges);
    DELTA(series_expired, series_expired);
#undef DELTA
    s->m.last = *st;
    api->metric_set(s->m.edges, (int64_t)sg_store_len(s->sg));
    api->metric_set(s->m.series, (int64_t)sg_series_len(s->sg));
}

/* A warning at most every 10 s. */
static bool warn_now(sg_state_t *s)
{
    int64_t now = mono_ns();
    if (s->last_warn_ns && now - s->last_warn_ns < 10LL * 1000000000) return false;
    s->last_warn_ns = now;
    return true;
}

static void schedule_retry(sg_state_t *s);

/* Emits the cumulative series once. Nothing to lose on failure: the next flush
 * carries the same totals or newer ones. */
static void sg_flush(sg_state_t *s)
{
    const sy_host_api_t *api = s->api;
    uint8_t *bytes;
    size_t len;
    uint64_t now = unix_ns() - (uint64_t)s->cfg->metrics_timestamp_offset;
    if (sg_encode(s->sg, s->start_unix_ns, now, &bytes, &len) < 0) {
        api->metric_add(s->m.failures, 1);
        if (warn_now(s)) SY_LOG(api, s->inst, SY_LOG_WARN, "out of memory writing the metrics");
        return;
    }
    if (!len) return;
    char err[256] = "";
    int rc = SY_ENOMEM;
    sy_batch_t *b = api->batch_new(s->inst, SY_SIGNAL_METRICS);
    uint8_t *dst = b ? api->batch_alloc(b, len) : NULL;
    if (dst) {
        memcpy(dst, bytes, len);
        rc = api->batch_set_encoded(b, dst, len, err, sizeof(err));
    }
    free(bytes);
    if (rc == 0) rc = api->emit(s->inst, b);
    if (rc == 0) {
        api->metric_add(s->m.flushes, 1);
        return;
    }
    if (b) api->batch_release(b);
    if (rc == SY_EAGAIN) {
        api->metric_add(s->m.retries, 1);
        schedule_retry(s);
        if (warn_now(s))
            SY_LOG(api, s->inst, SY_LOG_WARN,
                   "the metrics pipelines are full: the service graph is sent at the next "
                   "flush");
        return;
    }
    api->metric_add(s->m.failures, 1);
    if (warn_now(s))
        SY_LOG(api, s->inst, SY_LOG_WARN, "the service graph metrics could not be emitted (%d%s%s)",
               rc, err[0] ? ": " : "", err);
}

static void on_retry(void *arg);

/* Without a flush timer (metrics_flush_interval 0) the next flush would wait for the
 * next traces batch: a refused one is tried again on a timer of its own. */
static void schedule_retry(sg_state_t *s)
{
    if (s->flush_timer || s->retry_timer) return;
    s->retry_timer = s->api->timer_start(s->inst, SG_RETRY_MS, 0, on_retry, s);
}

static void on_retry(void *arg)
{
    sg_state_t *s = arg;
    s->api->timer_stop(s->retry_timer);
    s->retry_timer = NULL;
    sg_flush(s);
}

static void on_flush(void *arg)
{
    sg_state_t *s = arg;
    publish(s);
    sg_flush(s);
}

static void on_expire(void *arg)
{
    sg_state_t *s = arg;
    sg_expire(s->sg, mono_ns());
    publish(s);
}

static void on_cache(void *arg)
{
    sg_state_t *s = arg;
    sg_clean_series(s->sg, mono_ns());
    publish(s);
}

static int sg_validate(const void *config, char *err, size_t err_len)
{
    const sg_config_t *c = config;
    if (c->exponential_histogram_max_size != 0) {
        snprintf(err, err_len,
                 "exponential_histogram_max_size is not supported: the servicegraph connector "
                 "writes explicit-bucket histograms only (latency_histogram_buckets)");
        return SY_EINVAL;
    }
    return SY_OK;
}

static int sg_validate2(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                        char *err, size_t err_len)
{
    (void)node;
    sg_settings_t st;
    int rc = sg_settings_load(&st, api, config, err, err_len);
    sg_settings_free(&st);
    return rc;
}

static void sg_destroy(void *state)
{
    sg_state_t *s = state;
    if (!s) return;
    sg_free(s->sg);
    sg_settings_free(&s->settings);
    free(s);
}

static int ms_of(int64_t ns, int64_t fallback_ns)
{
    int64_t v = ns > 0 ? ns : fallback_ns;
    v /= 1000000;
    return (int)(v > 0 ? (v < 0x7fffffff ? v : 0x7fffffff) : 1);
}

static int sg_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.1 (the view)");
        return SY_ENOTSUP;
    }
    sg_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    char err[512] = "";
    int rc = sg_settings_load(&s->settings, api, s->cfg, err, sizeof(err));
    if (rc < 0) {
        api->log(inst, SY_LOG_ERROR, "%s", err);
        sg_destroy(s);
        return rc;
    }
    sg_opts_t o;
    sg_settings_opts(&s->settings, s->cfg, &o);
    s->sg = sg_new(&o);
    if (!s->sg) {
        api->log(inst, SY_LOG_ERROR, "out of memory");
        sg_destroy(s);
        return SY_ENOMEM;
    }
#define C(name, help) api->metric_register(inst, name, help, SY_METRIC_COUNTER)
#define G(name, help) api->metric_register(inst, name, help, SY_METRIC_GAUGE)
    s->m.dropped = C("connector_servicegraph_dropped_spans",
                     "Spans dropped because the store was full (store.max_items).");
    s->m.expired = C("connector_servicegraph_expired_edges",
                     "Edges that expired (store.ttl) before their other half came.");
    s->m.total = C("connector_servicegraph_total_edges", "Edges made.");
    s->m.no_service = C("connector_servicegraph_spans_without_service",
                        "Spans skipped because their resource has no service.name.");
    s->m.virt = C("connector_servicegraph_virtual_edges",
                  "Expired edges recorded with a virtual node (user or a peer).");
    s->m.series_expired = C("connector_servicegraph_series_expired",
                            "Series forgotten after 15 minutes without an update.");
    s->m.flushes = C("connector_servicegraph_flushes", "Metrics requests emitted.");
    s->m.retries = C("connector_servicegraph_flush_retries",
                     "Flushes refused by a full metrics pipeline (sent again at the next tick).");
    s->m.failures = C("connector_servicegraph_flush_failures",
                      "Flushes that failed otherwise (out of memory, no pipeline).");
    s->m.edges = G("connector_servicegraph_store_edges", "Edges waiting in the store.");
    s->m.series = G("connector_servicegraph_series", "Series held.");
#undef C
#undef G
    *state = s;
    return SY_OK;
}

static int sg_start(void *state)
{
    sg_state_t *s = state;
    const sy_host_api_t *api = s->api;
    s->start_unix_ns = unix_ns();
    int expire_ms = ms_of(s->cfg->store_expiration_loop, 2000000000LL);
    int cache_ms = ms_of(s->cfg->cache_loop, 60000000000LL);
    s->expire_timer =
        api->timer_start(s->inst, (uint64_t)expire_ms, (uint64_t)expire_ms, on_expire, s);
    s->cache_timer = api->timer_start(s->inst, (uint64_t)cache_ms, (uint64_t)cache_ms, on_cache, s);
    if (!s->expire_timer || !s->cache_timer) return SY_ENOMEM;
    if (s->cfg->metrics_flush_interval > 0) {
        int flush_ms = ms_of(s->cfg->metrics_flush_interval, 0);
        s->flush_timer =
            api->timer_start(s->inst, (uint64_t)flush_ms, (uint64_t)flush_ms, on_flush, s);
        if (!s->flush_timer) return SY_ENOMEM;
    } else {
        SY_LOG(api, s->inst, SY_LOG_WARN,
               "metrics_flush_interval is 0: metrics are flushed after every traces batch");
    }
    return SY_OK;
}

static int sg_consume(void *state, sy_batch_t *batch)
{
    sg_state_t *s = state;
    const sy_host_api_t *api = s->api;
    int rc = sg_ingest(s->sg, api, batch, mono_ns());
    if (rc < 0 && warn_now(s))
        SY_LOG(api, s->inst, SY_LOG_WARN, "spans not all read into the service graph (%d)", rc);
    api->batch_release(batch);
    if (s->cfg->metrics_flush_interval <= 0) {
        publish(s);
        sg_flush(s);
    }
    return SY_OK;
}

/* The pipelines this connector feeds are drained after it: the last totals go. */
static void sg_shutdown(void *state)
{
    sg_state_t *s = state;
    publish(s);
    sg_flush(s);
}

static const sy_plugin_t sg_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_CONNECTOR,
    .type = "servicegraph",
    .signals = SY_SIGNAL_TRACES,
    .version = "0.1.0",
    .description = "Pairs client and server spans into service graph edges and emits their "
                   "request counts and latency histograms as metrics.",
    SY_CFG_TABLE(sg_fields),
    .config_size = sizeof(sg_config_t),
    .validate = sg_validate,
    .validate2 = sg_validate2,
    .create = sg_create,
    .start = sg_start,
    .consume = sg_consume,
    .shutdown = sg_shutdown,
    .destroy = sg_destroy,
    .connects = {SY_SIGNAL_METRICS, 0, 0},
};

SY_PLUGIN_DEFINE(sg_plugin)
