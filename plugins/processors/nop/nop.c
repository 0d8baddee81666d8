/*
 * nop.c - the `nop` processor: hands every batch on unchanged.
 *
 * It is the smallest complete processor and the worked example of
 * docs/plugin-guide.md: a descriptor, an (empty) configuration, and a consume()
 * that passes the reference it was given downstream with api->emit().
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

/* The processor has no settings. The host still allocates config_size bytes for
 * every instance, so the struct has one unused member rather than none. */
typedef struct nop_config_s {
    char unused;
} nop_config_t;

typedef struct nop_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
} nop_state_t;

static int nop_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    (void)config;
    nop_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    *state = s;
    return SY_OK;
}

/*
 * Passes the batch on. On SY_OK emit() took our reference; on an error (the
 * router is shutting down) we still own it, and returning the same error hands
 * it back to the host, which owns it again under consume()'s contract.
 */
static int nop_consume(void *state, sy_batch_t *batch)
{
    nop_state_t *s = state;
    return s->api->emit(s->inst, batch);
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
    .kind = SY_KIND_PROCESSOR,
    .type = "nop",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Passes every batch on unchanged.",
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
