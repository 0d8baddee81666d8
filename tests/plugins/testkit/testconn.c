/*
 * connector "testconn" (tests only): traces in, traces out, unchanged.
 *
 * By default each batch is emitted as it arrives, with api->emit() (every traces
 * pipeline the connector feeds), or with api->emit_to() to the one pipeline named
 * by `to`; a full pipeline makes consume() return SY_EAGAIN, and the host offers
 * the batch again once that pipeline has room. With `hold` it keeps every batch
 * until shutdown() and emits them all then: what the drain order must carry,
 * since the pipelines it feeds may only drain after it has.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

typedef struct cfg_s {
    bool hold;
    char *to;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("hold", SY_CFG_BOOL, cfg_t, hold), .default_value = "false",
     .description = "keep every batch until shutdown, then emit them all"},
    {SY_CFG_FIELD("to", SY_CFG_STRING, cfg_t, to),
     .description = "emit only to this pipeline (api->emit_to)"},
};

typedef struct conn_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    sy_batch_t **held;
    size_t nheld, cap;
} conn_t;

static int conn_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return SY_ENOMEM;
    c->api = api;
    c->inst = inst;
    c->cfg = config;
    if (c->cfg->to) {
        const char *ids[8];
        size_t n = api->connector_pipelines(inst, SY_SIGNAL_TRACES, ids, 8);
        bool found = false;
        for (size_t i = 0; i < n && i < 8; i++)
            found |= !strcmp(ids[i], c->cfg->to);
        if (!found) {
            SY_LOG(api, inst, SY_LOG_ERROR, "to: %s is not a pipeline this connector feeds",
                   c->cfg->to);
            free(c);
            return SY_EINVAL;
        }
    }
    *state = c;
    return SY_OK;
}

static int send(conn_t *c, sy_batch_t *b)
{
    if (!c->cfg->to) return c->api->emit(c->inst, b);
    const char *to = c->cfg->to;
    return c->api->emit_to(c->inst, b, &to, 1);
}

static int conn_consume(void *state, sy_batch_t *b)
{
    conn_t *c = state;
    if (!c->cfg->hold) return send(c, b);
    if (c->nheld == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        sy_batch_t **h = realloc(c->held, cap * sizeof(*h));
        if (!h) return SY_ENOMEM;
        c->held = h;
        c->cap = cap;
    }
    c->held[c->nheld++] = b;
    return SY_OK;
}

/* The pipelines it feeds have not begun to drain: they take everything, though a
 * full queue may need a few tries while their worker empties it. */
static void conn_shutdown(void *state)
{
    conn_t *c = state;
    for (size_t i = 0; i < c->nheld; i++) {
        int rc, tries = 0;
        while ((rc = send(c, c->held[i])) == SY_EAGAIN && tries++ < 20000) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        if (rc != SY_OK) {
            SY_LOG(c->api, c->inst, SY_LOG_ERROR, "held batch %zu not emitted (%d)", i, rc);
            c->api->batch_release(c->held[i]);
        }
    }
    c->nheld = 0;
}

static void conn_destroy(void *state)
{
    conn_t *c = state;
    for (size_t i = 0; i < c->nheld; i++)
        c->api->batch_release(c->held[i]);
    free(c->held);
    free(c);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_CONNECTOR,
    .type = "testconn",
    .signals = SY_SIGNAL_TRACES,
    .version = "test",
    .description = "Test connector: traces to traces, unchanged.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = conn_create,
    .consume = conn_consume,
    .shutdown = conn_shutdown,
    .destroy = conn_destroy,
    .connects = {SY_SIGNAL_TRACES, 0, 0},
};

SY_PLUGIN_DEFINE(descriptor)
