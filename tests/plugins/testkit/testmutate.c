/*
 * processor "testmutate" (tests only): rewrites the name of every span to "mut."
 * followed by the old name, through api->batch_request_mut(), and passes the
 * batch on. It counts the batches and spans it changed and the batches for which
 * batch_request_mut() gave NULL (testmutate_refused_batches), which is how the
 * copy-on-write tests see a refusal.
 *
 * Built twice from this file: "testmutate" declares SY_PLUGIN_MUTATES_DATA
 * (TEST_MUTATES), "testmutate_noflag" does not. With `own_copy` it first copies
 * the batch into one it makes itself (batch_merge of one batch), which an
 * instance may change without the flag.
 */
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#ifndef TEST_TYPE
#define TEST_TYPE "testmutate"
#endif
#ifdef TEST_MUTATES
#define TEST_FLAGS SY_PLUGIN_MUTATES_DATA
#else
#define TEST_FLAGS 0u
#endif

#define PREFIX "mut."

typedef struct cfg_s {
    bool own_copy;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("own_copy", SY_CFG_BOOL, cfg_t, own_copy), .default_value = "false",
     .description = "change a copy made by this instance instead of the batch given"},
};

typedef struct mut_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    sy_metric_t *mutated_batches, *mutated_spans, *refused_batches;
} mut_t;

/* Renames every span; returns how many, or -1 when out of arena memory. */
static int64_t
rename_spans(mut_t *m, sy_batch_t *b,
             Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req)
{
    int64_t n = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                Opentelemetry__Proto__Trace__V1__Span *span = ss->spans[k];
                const char *old = span->name ? span->name : "";
                size_t len = strlen(old);
                char *name = m->api->batch_alloc(b, sizeof(PREFIX) + len);
                if (!name) return -1;
                memcpy(name, PREFIX, sizeof(PREFIX) - 1);
                memcpy(name + sizeof(PREFIX) - 1, old, len + 1);
                span->name = name;
                n++;
            }
        }
    return n;
}

static int mut_consume(void *state, sy_batch_t *batch)
{
    mut_t *m = state;
    const sy_host_api_t *api = m->api;
    sy_batch_t *b = batch;
    if (m->cfg->own_copy) {
        b = api->batch_merge(m->inst, &batch, 1);
        if (!b) return SY_ENOMEM; /* `batch` is still the caller's */
        api->batch_release(batch);
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        api->batch_request_mut(b);
    if (!req) {
        api->metric_add(m->refused_batches, 1);
    } else {
        int64_t n = rename_spans(m, b, req);
        if (n >= 0) {
            api->metric_add(m->mutated_batches, 1);
            api->metric_add(m->mutated_spans, n);
        }
    }
    if (api->emit(m->inst, b) < 0) api->batch_release(b);
    return SY_OK;
}

static int mut_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    mut_t *m = calloc(1, sizeof(*m));
    if (!m) return SY_ENOMEM;
    m->api = api;
    m->inst = inst;
    m->cfg = config;
    m->mutated_batches = api->metric_register(inst, "testmutate_mutated_batches",
                                              "Batches renamed.", SY_METRIC_COUNTER);
    m->mutated_spans =
        api->metric_register(inst, "testmutate_mutated_spans", "Spans renamed.", SY_METRIC_COUNTER);
    m->refused_batches =
        api->metric_register(inst, "testmutate_refused_batches",
                             "Batches for which batch_request_mut gave NULL.", SY_METRIC_COUNTER);
    *state = m;
    return SY_OK;
}

static void mut_destroy(void *state)
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
    .description = "Test processor: renames every span in place.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = mut_create,
    .consume = mut_consume,
    .destroy = mut_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
