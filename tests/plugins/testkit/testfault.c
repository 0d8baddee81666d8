/*
 * processor "testfault" (tests only): refuses a deterministic fraction of the
 * batches it is given, so that tests can check how the host counts refusals.
 *
 * For each batch it draws one number from a PRNG seeded with `seed`: below
 * `refuse_permille` consume() returns SY_ERROR, below refuse_permille +
 * `enomem_permille` it returns SY_ENOMEM; otherwise it hands the batch on with
 * api->emit(). On every error the host still owns the batch (consume()'s
 * contract), so testfault never releases what it refuses; when emit() itself
 * fails, testfault still owns the batch and hands it back by returning that error.
 *
 * Its own counters, one per instance: testfault_refused_items (SY_ERROR),
 * testfault_enomem_items (SY_ENOMEM) and testfault_emit_failed_items (emit()
 * failed and the error was returned). Their sum is what the host must count as
 * this processor's refused items.
 */
#include <stdio.h>
#include <stdlib.h>

#include <switchyard/plugin.h>

typedef struct cfg_s {
    int64_t seed;
    int64_t refuse_permille;
    int64_t enomem_permille;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("seed", SY_CFG_INT, cfg_t, seed), .default_value = "1",
     .description = "seed of the refusal sequence"},
    {SY_CFG_FIELD("refuse_permille", SY_CFG_INT, cfg_t, refuse_permille), .default_value = "0",
     .description = "batches in 1000 refused with SY_ERROR"},
    {SY_CFG_FIELD("enomem_permille", SY_CFG_INT, cfg_t, enomem_permille), .default_value = "0",
     .description = "batches in 1000 refused with SY_ENOMEM"},
};

typedef struct fault_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    uint64_t rng;
    sy_metric_t *refused, *enomem, *emit_failed;
} fault_t;

static int fault_validate(const void *config, char *err, size_t err_len)
{
    const cfg_t *c = config;
    if (c->refuse_permille < 0 || c->enomem_permille < 0 ||
        c->refuse_permille + c->enomem_permille > 1000) {
        snprintf(err, err_len,
                 "refuse_permille and enomem_permille must be >= 0 and sum to at most 1000");
        return SY_EINVAL;
    }
    return SY_OK;
}

/* splitmix64: one 64-bit state, good enough for a test's coin flips. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int fault_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                        void **state)
{
    fault_t *f = calloc(1, sizeof(*f));
    if (!f) return SY_ENOMEM;
    f->api = api;
    f->inst = inst;
    f->cfg = config;
    f->rng = (uint64_t)f->cfg->seed;
    f->refused = api->metric_register(inst, "testfault_refused_items",
                                      "Items of batches refused with SY_ERROR.", SY_METRIC_COUNTER);
    f->enomem = api->metric_register(inst, "testfault_enomem_items",
                                     "Items of batches refused with SY_ENOMEM.", SY_METRIC_COUNTER);
    f->emit_failed =
        api->metric_register(inst, "testfault_emit_failed_items",
                             "Items of batches whose emit() failed.", SY_METRIC_COUNTER);
    *state = f;
    return SY_OK;
}

static int fault_consume(void *state, sy_batch_t *batch)
{
    fault_t *f = state;
    sy_batch_info_t info;
    f->api->batch_info(batch, &info);
    int64_t items = (int64_t)info.items;
    int64_t draw = (int64_t)(next_random(&f->rng) % 1000);
    if (draw < f->cfg->refuse_permille) {
        f->api->metric_add(f->refused, items);
        return SY_ERROR;
    }
    if (draw < f->cfg->refuse_permille + f->cfg->enomem_permille) {
        f->api->metric_add(f->enomem, items);
        return SY_ENOMEM;
    }
    int rc = f->api->emit(f->inst, batch);
    if (rc < 0) f->api->metric_add(f->emit_failed, items);
    return rc;
}

static void fault_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "testfault",
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    .description = "Test processor: refuses a deterministic fraction of batches.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .validate = fault_validate,
    .create = fault_create,
    .consume = fault_consume,
    .destroy = fault_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
