/*
 * processor "abi1<minor>" (tests only): the same small processor compiled against
 * the plugin.h of every released minor (tests/abi/1.<minor>/), to prove that a
 * plugin built for an older minor still loads and works in this host.
 *
 * It uses what 1.0 offered: a config table of the 1.0 layout (an int and a
 * string), the host's log and metrics, and emit(). Each batch passes through
 * unchanged; its items are counted in `abiold_items_total`, and the string
 * setting must read back as configured (or the plugin fails to create).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

typedef struct cfg_s {
    int64_t factor;
    char *tag;
} cfg_t;

static const sy_config_field_t fields[] = {
    {.name = "factor",
     .type = SY_CFG_INT,
     .offset = offsetof(cfg_t, factor),
     .default_value = "1",
     .description = "a number"},
    {.name = "tag",
     .type = SY_CFG_STRING,
     .offset = offsetof(cfg_t, tag),
     .default_value = "old",
     .description = "a string"},
};

typedef struct state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    sy_metric_t *items;
} state_t;

static int create(const sy_host_api_t *api, sy_instance_t *inst, const void *config, void **out)
{
    const cfg_t *cfg = config;
    if (!cfg->tag || strcmp(cfg->tag, TEST_WANT_TAG) != 0 || cfg->factor != 7) {
        SY_LOG(api, inst, SY_LOG_ERROR, "settings did not read back: factor=%lld tag=%s",
               (long long)cfg->factor, cfg->tag ? cfg->tag : "(null)");
        return SY_EINVAL;
    }
    state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->items = api->metric_register(inst, "abiold_items_total", "items seen", SY_METRIC_COUNTER);
    *out = s;
    return SY_OK;
}

static int consume(void *state, sy_batch_t *b)
{
    state_t *s = state;
    sy_batch_info_t info;
    s->api->batch_info(b, &info);
    s->api->metric_add(s->items, (int64_t)info.items);
    return s->api->emit(s->inst, b);
}

static void destroy(void *state)
{
    free(state);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = TEST_TYPE,
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    .description = "built against an older plugin.h",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = create,
    .consume = consume,
    .destroy = destroy,
};

SY_PLUGIN_DEFINE(descriptor)
