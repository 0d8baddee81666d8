/*
 * sdkdemo.c - a processor built outside the tree by tests/install_layout.cmake,
 * against the installed SDK alone (pkg-config and find_package). Its type comes
 * from SDKDEMO_TYPE so that one source gives one plugin per build method; its
 * validate() refuses a limit below 1 with a sentence the test looks for, which
 * proves the installed binary ran this very code.
 */
#include <stdio.h>
#include <stdlib.h>

#include <switchyard/plugin.h>

#ifndef SDKDEMO_TYPE
#define SDKDEMO_TYPE "sdkdemo"
#endif

typedef struct demo_config_s {
    int64_t limit;
    char *label;
} demo_config_t;

static const sy_config_field_t demo_fields[] = {
    {.name = "limit",
     .type = SY_CFG_INT,
     .offset = offsetof(demo_config_t, limit),
     .default_value = "10",
     .description = "A number that must be at least 1."},
    {.name = "label",
     .type = SY_CFG_STRING,
     .offset = offsetof(demo_config_t, label),
     .description = "Any text."},
};

static int demo_validate(const void *config, char *err, size_t err_len)
{
    const demo_config_t *c = config;
    if (c->limit < 1) {
        snprintf(err, err_len, "sdkdemo: limit must be at least 1, got %lld", (long long)c->limit);
        return SY_EINVAL;
    }
    return SY_OK;
}

typedef struct demo_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
} demo_state_t;

static int demo_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    (void)config;
    demo_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    *state = s;
    return SY_OK;
}

static int demo_start(void *state)
{
    (void)state;
    return SY_OK;
}

static int demo_consume(void *state, sy_batch_t *batch)
{
    demo_state_t *s = state;
    return s->api->emit(s->inst, batch);
}

static void demo_shutdown(void *state)
{
    (void)state;
}

static void demo_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t demo_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = SDKDEMO_TYPE,
    .signals = SY_SIGNAL_ALL,
    .version = "0.0.1",
    .description = "An out-of-tree test processor.",
    .config_fields = demo_fields,
    .config_field_count = sizeof(demo_fields) / sizeof(demo_fields[0]),
    .config_size = sizeof(demo_config_t),
    .validate = demo_validate,
    .create = demo_create,
    .start = demo_start,
    .consume = demo_consume,
    .shutdown = demo_shutdown,
    .destroy = demo_destroy,
};

SY_PLUGIN_DEFINE(demo_plugin)
