/*
 * forward.c - the `forward` connector, as the collector's forwardconnector: it
 * ends pipelines (as an exporter) and starts pipelines of the same signal (as a
 * receiver), and hands every batch on unchanged, so several pipelines can be
 * merged into one (fan-in) or one forked into several (fan-out).
 *
 * The batch is not looked into, copied or decoded: consume() passes the reference
 * it was given to api->emit(), which hands it to every pipeline of the batch's
 * signal that this connector feeds (one reference each, taken by the host).
 * Back-pressure goes upstream unchanged: when a pipeline it feeds is full, emit()
 * takes nothing and returns SY_EAGAIN, which consume() returns; the host keeps
 * the batch and offers it again once that pipeline has made room.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

typedef struct forward_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
} forward_state_t;

static int forward_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                          void **state)
{
    (void)config;
    if (!SY_API_HAS(api, connector_pipelines)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.4 (connectors)");
        return SY_ENOTSUP;
    }
    forward_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    *state = s;
    return SY_OK;
}

/* SY_OK: the reference went downstream. SY_EAGAIN (a pipeline it feeds is full),
 * SY_ECLOSED (shutting down) or another error: nothing was taken and the host
 * still owns the batch. */
static int forward_consume(void *state, sy_batch_t *batch)
{
    forward_state_t *s = state;
    return s->api->emit(s->inst, batch);
}

static void forward_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t forward_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_CONNECTOR,
    .type = "forward",
    .signals = SY_SIGNAL_ALL,
    .version = "1.0",
    .description = "Hands every batch to the pipelines of the same signal it feeds, unchanged.",
    .config_size = 1, /* no settings */
    .create = forward_create,
    .consume = forward_consume,
    .destroy = forward_destroy,
    .connects = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS},
};

SY_PLUGIN_DEFINE(forward_descriptor)
