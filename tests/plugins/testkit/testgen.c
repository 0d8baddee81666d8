/*
 * receiver "testgen" (tests only): generates `count` trace batches of `spans`
 * spans each, as fast as the pipeline takes them or every `interval`. Span IDs are
 * a global sequence number (big-endian), so that a sink can check that every span
 * arrived exactly once; give each instance its own `first_seq` so that the ranges
 * of several instances do not overlap. Under back-pressure or out of memory
 * (emit() says SY_EAGAIN or SY_ENOMEM) it retries the same batch a millisecond
 * later and counts the refusal; when the host cannot make a batch (batch_new() or
 * batch_alloc() returns NULL) it tries again a millisecond later, and a sequence
 * number is used up only by a batch that was made whole.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <switchyard/plugin.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef struct cfg_s {
    int64_t count;
    int64_t spans;
    int64_t interval_ns;
    int64_t first_seq;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("count", SY_CFG_INT, cfg_t, count), .default_value = "100",
     .description = "batches to send"},
    {SY_CFG_FIELD("spans", SY_CFG_INT, cfg_t, spans), .default_value = "10",
     .description = "spans per batch"},
    {SY_CFG_FIELD("interval", SY_CFG_DURATION, cfg_t, interval_ns), .default_value = "0s",
     .description = "pause between batches"},
    {SY_CFG_FIELD("first_seq", SY_CFG_INT, cfg_t, first_seq), .default_value = "0",
     .description = "sequence number of the first span"},
};

typedef struct gen_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    sy_timer_t *timer;
    sy_batch_t *pending; /* refused last time: offered again */
    int64_t sent;
    uint64_t next_seq;
    sy_metric_t *refused;
    bool stopping;
} gen_t;

static sy_batch_t *make_batch(gen_t *g)
{
    const sy_host_api_t *api = g->api;
    sy_batch_t *b = api->batch_new(g->inst, SY_SIGNAL_TRACES);
    if (!b) return NULL;
    size_t n = (size_t)g->cfg->spans;
    Opentelemetry__Proto__Trace__V1__Span *spans = api->batch_alloc(b, n * sizeof(*spans));
    Opentelemetry__Proto__Trace__V1__Span **ptrs = api->batch_alloc(b, n * sizeof(*ptrs));
    uint8_t *ids = api->batch_alloc(b, n * 24);
    if (!spans || !ptrs || !ids) goto fail;
    uint64_t seq = g->next_seq;
    for (size_t i = 0; i < n; i++, seq++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        uint8_t *tid = ids + i * 24, *sid = tid + 16;
        memset(tid, 0, 16);
        tid[15] = 1;
        for (int k = 0; k < 8; k++)
            sid[k] = (uint8_t)(seq >> (56 - 8 * k));
        spans[i].trace_id.data = tid;
        spans[i].trace_id.len = 16;
        spans[i].span_id.data = sid;
        spans[i].span_id.len = 8;
        spans[i].name = "testgen";
        spans[i].start_time_unix_nano = 1700000000000000000ull + seq;
        spans[i].end_time_unix_nano = spans[i].start_time_unix_nano + 1000;
        ptrs[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n;
    ss.spans = ptrs;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = api->batch_alloc(b, len);
    if (!buf) goto fail;
    protobuf_c_message_pack(&req.base, buf);
    char err[128];
    if (api->batch_set_encoded(b, buf, len, err, sizeof(err)) < 0) goto fail;
    g->next_seq = seq;
    return b;
fail:
    api->batch_release(b);
    return NULL;
}

static void tick(void *arg)
{
    gen_t *g = arg;
    g->timer = NULL;
    if (g->stopping) return;
    int burst = g->cfg->interval_ns ? 1 : 64;
    while (burst-- > 0 && g->sent < g->cfg->count) {
        sy_batch_t *b = g->pending ? g->pending : make_batch(g);
        g->pending = NULL;
        if (!b) {
            g->timer = g->api->timer_start(g->inst, 1, 0, tick, g);
            return;
        }
        int rc = g->api->emit(g->inst, b);
        if (rc == SY_EAGAIN || rc == SY_ENOMEM) {
            g->pending = b;
            g->api->metric_add(g->refused, 1);
            g->timer = g->api->timer_start(g->inst, 1, 0, tick, g);
            return;
        }
        if (rc < 0) {
            g->api->batch_release(b);
            return;
        }
        g->sent++;
    }
    if (g->sent < g->cfg->count) {
        uint64_t ms = (uint64_t)(g->cfg->interval_ns / 1000000);
        g->timer = g->api->timer_start(g->inst, ms, 0, tick, g);
    } else {
        SY_LOG(g->api, g->inst, SY_LOG_INFO, "testgen: sent %lld batches", (long long)g->sent);
    }
}

static int gen_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    gen_t *g = calloc(1, sizeof(*g));
    if (!g) return SY_ENOMEM;
    g->api = api;
    g->inst = inst;
    g->cfg = config;
    g->next_seq = (uint64_t)g->cfg->first_seq;
    g->refused =
        api->metric_register(inst, "testgen_refused_batches", "Refused emits.", SY_METRIC_COUNTER);
    *state = g;
    return SY_OK;
}

static int gen_start(void *state)
{
    gen_t *g = state;
    g->timer = g->api->timer_start(g->inst, 0, 0, tick, g);
    return g->timer ? SY_OK : SY_ERROR;
}

static void gen_shutdown(void *state)
{
    gen_t *g = state;
    g->stopping = true;
    if (g->timer) g->api->timer_stop(g->timer);
    g->timer = NULL;
    if (g->pending) g->api->batch_release(g->pending);
    g->pending = NULL;
}

static void gen_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "testgen",
    .signals = SY_SIGNAL_TRACES,
    .version = "test",
    .description = "Test receiver: generates numbered spans.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = gen_create,
    .start = gen_start,
    .shutdown = gen_shutdown,
    .destroy = gen_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
