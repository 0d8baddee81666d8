/*
 * resource.c - the `resource` processor: the collector's attribute actions on
 * resource attributes, through the view only (no protobuf-c).
 *
 * One view per batch and one commit, only when an action changed something; a
 * batch with nothing to change is emitted as it came.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

#include "attr_actions.h"

typedef struct res_config_s {
    const sy_cfg_node_t *attributes;
} res_config_t;

typedef struct res_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    syc_attr_actions_t *actions;
    sy_metric_t *m_commit_failed;
} res_state_t;

static const sy_config_field_t res_fields[] = {
    {.name = "attributes",
     .type = SY_CFG_RAW,
     .offset = offsetof(res_config_t, attributes),
     .required = true,
     .description = "The actions on resource attributes, applied in order (as the attributes "
                    "processor's actions)."},
};

static void res_destroy(void *state)
{
    res_state_t *s = state;
    if (!s) return;
    syc_attr_actions_free(s->actions);
    free(s);
}

static int res_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    const res_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) return SY_ENOTSUP; /* host older than 1.1 */
    res_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    char err[512] = "";
    if (!(s->actions =
              syc_attr_actions_parse(api, c->attributes, "attributes", err, sizeof(err)))) {
        api->log(inst, SY_LOG_ERROR, "%s", err);
        res_destroy(s);
        return SY_EINVAL;
    }
    s->m_commit_failed = api->metric_register(
        inst, "processor_resource_commit_failed",
        "Batches passed on unchanged because their edits could not be applied.", SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

static int res_consume(void *state, sy_batch_t *batch)
{
    res_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM; /* the batch is still the caller's */
    sy_view_node_t *root = api->view_root(v);
    int edits = 0, rc = SY_OK;
    size_t n = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < n && rc >= 0; r++) {
        rc = syc_attr_actions_apply(s->actions, api, api->view_at(root, SY_VIEW_RESOURCES, r));
        if (rc > 0) edits += rc;
    }
    if (rc >= 0 && edits > 0) rc = api->view_commit(v);
    api->view_close(v);
    if (rc < 0) {
        SY_LOG(api, s->inst, SY_LOG_WARN, "resource actions not applied to a batch (error %d)", rc);
        api->metric_add(s->m_commit_failed, 1);
    }
    if (api->emit(s->inst, batch) < 0) api->batch_release(batch);
    return SY_OK;
}

static const sy_plugin_t res_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "resource",
    .signals = SY_SIGNAL_TRACES | SY_SIGNAL_METRICS | SY_SIGNAL_LOGS,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "1.0",
    .description = "Inserts, updates, deletes, hashes, extracts and converts resource "
                   "attributes.",
    .config_fields = res_fields,
    .config_field_count = sizeof(res_fields) / sizeof(res_fields[0]),
    .config_size = sizeof(res_config_t),
    .create = res_create,
    .consume = res_consume,
    .destroy = res_destroy,
};
SY_PLUGIN_DEFINE(res_descriptor)
