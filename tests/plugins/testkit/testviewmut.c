/*
 * processor "testviewmut" (tests only): what testmutate does, through the view
 * alone. It prefixes the name of every span with "mut." (view_set), renames the
 * span attribute "rename.me" to "renamed" where there is one, and commits. It is
 * built without protobuf-c headers or libraries: the view is all it needs.
 *
 * Metrics (like testmutate's): testviewmut_mutated_batches / _mutated_spans, and
 * testviewmut_refused_batches, the batches whose view_commit() was refused.
 * Built twice: "testviewmut" declares SY_PLUGIN_MUTATES_DATA (TEST_MUTATES),
 * "testviewmut_noflag" does not. With `own_copy` it first copies the batch into
 * one it makes itself (batch_merge of one batch), which it may change unflagged.
 */
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#ifdef PROTOBUF_C_VERSION_NUMBER
#error "testviewmut must not see protobuf-c"
#endif

#ifndef TEST_TYPE
#define TEST_TYPE "testviewmut"
#endif
#ifdef TEST_MUTATES
#define TEST_FLAGS SY_PLUGIN_MUTATES_DATA
#else
#define TEST_FLAGS 0u
#endif

typedef struct cfg_s {
    bool own_copy;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("own_copy", SY_CFG_BOOL, cfg_t, own_copy), .default_value = "false",
     .description = "change a copy made by this instance instead of the batch given"},
};

typedef struct vm_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    sy_metric_t *mutated_batches, *mutated_spans, *refused_batches;
} vm_t;

/* Records the edits of every span; returns how many spans, or -1. */
static int64_t edit_spans(const sy_host_api_t *api, sy_view_t *view)
{
    int64_t n = 0;
    sy_view_node_t *root = api->view_root(view);
    for (size_t r = 0; r < api->view_count(root, SY_VIEW_RESOURCES); r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        for (size_t s = 0; s < api->view_count(res, SY_VIEW_SCOPES); s++) {
            sy_view_node_t *scope = api->view_at(res, SY_VIEW_SCOPES, s);
            for (size_t i = 0; i < api->view_count(scope, SY_VIEW_ITEMS); i++) {
                sy_view_node_t *span = api->view_at(scope, SY_VIEW_ITEMS, i);
                sy_value_t name;
                char buf[256];
                if (api->view_get(span, SY_FIELD_NAME, &name) < 0 || name.len > 200) return -1;
                memcpy(buf, "mut.", 4);
                memcpy(buf + 4, name.str, name.len);
                sy_value_t nv = {.type = SY_VALUE_STRING, .str = buf, .len = name.len + 4};
                if (api->view_set(span, SY_FIELD_NAME, &nv) < 0) return -1;
                int rc = api->view_attr_rename(span, "rename.me", 9, "renamed", 7);
                if (rc < 0 && rc != SY_EAGAIN) return -1;
                n++;
            }
        }
    }
    return n;
}

static int vm_consume(void *state, sy_batch_t *batch)
{
    vm_t *m = state;
    const sy_host_api_t *api = m->api;
    sy_batch_t *b = batch;
    if (m->cfg->own_copy) {
        b = api->batch_merge(m->inst, &batch, 1);
        if (!b) return SY_ENOMEM; /* `batch` is still the caller's */
        api->batch_release(batch);
    }
    sy_view_t *view = api->view_open(b);
    if (view) {
        int64_t n = edit_spans(api, view);
        int rc = n >= 0 ? api->view_commit(view) : SY_ERROR;
        if (rc == SY_EAGAIN) {
            api->metric_add(m->refused_batches, 1);
        } else if (rc == SY_OK) {
            api->metric_add(m->mutated_batches, 1);
            api->metric_add(m->mutated_spans, n);
        }
        api->view_close(view);
    }
    if (api->emit(m->inst, b) < 0) api->batch_release(b);
    return SY_OK;
}

static int vm_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) return SY_ENOTSUP; /* a host older than 1.1 */
    vm_t *m = calloc(1, sizeof(*m));
    if (!m) return SY_ENOMEM;
    m->api = api;
    m->inst = inst;
    m->cfg = config;
    m->mutated_batches = api->metric_register(inst, "testviewmut_mutated_batches",
                                              "Batches renamed.", SY_METRIC_COUNTER);
    m->mutated_spans = api->metric_register(inst, "testviewmut_mutated_spans", "Spans renamed.",
                                            SY_METRIC_COUNTER);
    m->refused_batches =
        api->metric_register(inst, "testviewmut_refused_batches",
                             "Batches whose view_commit was refused.", SY_METRIC_COUNTER);
    *state = m;
    return SY_OK;
}

static void vm_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = TEST_TYPE,
    .signals = SY_SIGNAL_TRACES,
    .flags = TEST_FLAGS,
    .version = "test",
    .description = "Test processor: renames every span through the view.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = vm_create,
    .consume = vm_consume,
    .destroy = vm_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
