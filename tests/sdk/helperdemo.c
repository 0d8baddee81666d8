/*
 * helperdemo - a processor built out of tree against the installed helpers
 * (<switchyard/helper.h>, library switchyard-helper): its validate() reads a
 * gRPC timeout with syc_grpc_timeout_parse() and names the gRPC code of a bad
 * one with syc_grpc_code_name(), so that `switchyard validate` proves the
 * helpers link into a plugin and load in the installed binary.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* <switchyard/helper.h> includes uv.h */
#endif
#include <stdio.h>
#include <stdlib.h>

#include <switchyard/helper.h>
#include <switchyard/plugin.h>

typedef struct demo_config_s {
    char *grpc_timeout;
} demo_config_t;

static const sy_config_field_t demo_fields[] = {
    {SY_CFG_FIELD("grpc_timeout", SY_CFG_STRING, demo_config_t, grpc_timeout),
     .default_value = "5S", .description = "A grpc-timeout header value (\"100m\", \"5S\")."},
};

static int demo_validate(const void *config, char *err, size_t err_len)
{
    const demo_config_t *c = config;
    uint64_t ms = 0;
    if (syc_grpc_timeout_parse(c->grpc_timeout, &ms) != 0) {
        snprintf(err, err_len, "grpc_timeout \"%s\" is not a grpc-timeout value (%s)",
                 c->grpc_timeout, syc_grpc_code_name(3));
        return SY_EINVAL;
    }
    return SY_OK;
}

static int demo_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    (void)config;
    (void)api;
    *state = inst;
    return SY_OK;
}

static int demo_consume(void *state, sy_batch_t *batch)
{
    (void)state;
    (void)batch;
    return SY_ENOTSUP;
}

static void demo_destroy(void *state)
{
    (void)state;
}

static const sy_plugin_t demo_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "helperdemo",
    .signals = SY_SIGNAL_ALL,
    .version = "0.1.0",
    .description = "Out-of-tree test of the installed helpers.",
    SY_CFG_TABLE(demo_fields),
    .config_size = sizeof(demo_config_t),
    .validate = demo_validate,
    .create = demo_create,
    .consume = demo_consume,
    .destroy = demo_destroy,
};

SY_PLUGIN_DEFINE(demo_plugin)
