/*
 * stamp - an example processor that works through the view (docs/view.md):
 * it drops log records below a minimum severity and stamps every record it
 * keeps with an attribute, then commits all edits of a batch at once. A batch
 * whose every record is dropped is not passed on; one with nothing to change is
 * passed on as it came, without a commit.
 *
 * It changes data, so it sets SY_PLUGIN_MUTATES_DATA: the host hands it batches
 * it owns alone. Threads: its pipeline's loop thread; no state but counters.
 */
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

typedef struct stamp_config_s {
    char *key;
    char *value;
    int64_t min_severity;
} stamp_config_t;

static const sy_config_field_t stamp_fields[] = {
    {SY_CFG_FIELD("key", SY_CFG_STRING, stamp_config_t, key), .default_value = "stamp",
     .pattern = "[a-zA-Z_.][a-zA-Z0-9_.]*", .max = "64",
     .description = "The attribute set on every log record kept."},
    {SY_CFG_FIELD("value", SY_CFG_STRING, stamp_config_t, value), .required = true,
     .description = "Its string value."},
    {SY_CFG_FIELD("min_severity", SY_CFG_INT, stamp_config_t, min_severity), .default_value = "0",
     .min = "0", .max = "24",
     .description = "Log records whose severity_number is below it are dropped (0: none; "
                    "9 is INFO, 13 WARN)."},
};

typedef struct stamp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const stamp_config_t *cfg;
    sy_metric_t *m_dropped;
} stamp_t;

static int stamp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                        void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with the view (plugin ABI 1.1)");
        return SY_ENOTSUP;
    }
    stamp_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->m_dropped =
        api->metric_register(inst, "processor_stamp_dropped_log_records",
                             "Log records dropped for their severity.", SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

/* Records the edits of one batch; returns the records kept, or a negative SY_E*. */
static int64_t edit(stamp_t *s, sy_view_t *view, int64_t *dropped)
{
    const sy_host_api_t *api = s->api;
    sy_value_t stamp = {
        .type = SY_VALUE_STRING, .str = s->cfg->value, .len = strlen(s->cfg->value)};
    int64_t kept = 0;
    sy_view_node_t *root = api->view_root(view);
    for (size_t r = 0; r < api->view_count(root, SY_VIEW_RESOURCES); r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        for (size_t c = 0; c < api->view_count(res, SY_VIEW_SCOPES); c++) {
            sy_view_node_t *scope = api->view_at(res, SY_VIEW_SCOPES, c);
            for (size_t i = 0; i < api->view_count(scope, SY_VIEW_ITEMS); i++) {
                sy_view_node_t *log = api->view_at(scope, SY_VIEW_ITEMS, i);
                sy_value_t sev;
                int rc = api->view_get(log, SY_FIELD_SEVERITY_NUMBER, &sev);
                if (rc < 0) return rc;
                if (sev.i < s->cfg->min_severity) {
                    if ((rc = api->view_drop(log)) < 0) return rc;
                    ++*dropped;
                    continue;
                }
                rc = api->view_attr_set(log, s->cfg->key, strlen(s->cfg->key), &stamp,
                                        SY_ATTR_UPSERT);
                if (rc < 0) return rc;
                kept++;
            }
        }
    }
    return kept;
}

static int stamp_consume(void *state, sy_batch_t *batch)
{
    stamp_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_view_t *view = api->view_open(batch);
    if (!view) return SY_ENOMEM;
    int64_t dropped = 0;
    int64_t kept = edit(s, view, &dropped);
    int rc = kept < 0 ? (int)kept : api->view_commit(view);
    api->view_close(view);
    if (rc < 0) {
        SY_LOG(api, s->inst, SY_LOG_ERROR, "cannot stamp a batch (error %d)", rc);
        return rc; /* the host still owns the batch */
    }
    api->metric_add(s->m_dropped, dropped);
    if (kept == 0) {
        api->batch_release(batch); /* nothing left to pass on */
        return SY_OK;
    }
    return api->emit(s->inst, batch);
}

static void stamp_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t stamp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "stamp",
    .signals = SY_SIGNAL_LOGS,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "0.1.0",
    .description = "Example: drops log records below a severity and stamps the rest.",
    SY_CFG_TABLE(stamp_fields),
    .config_size = sizeof(stamp_config_t),
    .create = stamp_create,
    .consume = stamp_consume,
    .destroy = stamp_destroy,
};

SY_PLUGIN_DEFINE(stamp_plugin)
