/*
 * nop.c - the `nop` exporter: accepts every batch, counts its items and drops it.
 *
 * Useful as the end of a pipeline in tests and benchmarks, where it measures the
 * router without any backend: the metric exporter_nop_items says how many spans,
 * data points and log records reached it.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

/* No settings; one unused member because the host allocates config_size bytes. */
typedef struct nop_config_s {
    char unused;
} nop_config_t;

typedef struct nop_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    sy_metric_t *items; /* spans + data points + log records taken */
} nop_state_t;

static int nop_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    (void)config;
    nop_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->items = api->metric_register(inst, "exporter_nop_items",
                                    "Items (spans, data points, log records) the nop exporter "
                                    "accepted and dropped.",
                                    SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

/* Takes the reference, counts the batch's items and releases it. Never fails. */
static int nop_consume(void *state, sy_batch_t *batch)
{
    nop_state_t *s = state;
    sy_batch_info_t info;
    s->api->batch_info(batch, &info);
    if (s->items) s->api->metric_add(s->items, (int64_t)info.items);
    s->api->batch_release(batch);
    return SY_OK;
}

/* Nothing to open or flush: start() and shutdown() only satisfy the contract. */
static int nop_start(void *state)
{
    (void)state;
    return SY_OK;
}

static void nop_shutdown(void *state)
{
    (void)state;
}

static void nop_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t nop_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "nop",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Accepts every batch, counts its items and drops it.",
    .config_fields = NULL,
    .config_field_count = 0,
    .config_size = sizeof(nop_config_t),
    .validate = NULL,
    .create = nop_create,
    .start = nop_start,
    .consume = nop_consume,
    .shutdown = nop_shutdown,
    .destroy = nop_destroy,
};

SY_PLUGIN_DEFINE(nop_plugin)
