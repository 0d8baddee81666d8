/*
 * subprocess.c - the `subprocess` exporter: hands each batch to a child process
 * that speaks the subprocess protocol (docs/subprocess.md) and counts it sent when
 * the child answers ACK, failed on NACK.
 *
 * At most max_in_flight batches are with the child; beyond that, and while the
 * child is restarting, consume() declines (SY_EAGAIN) and the host offers the
 * batch again after api->ready(). A child that dies, hangs past `timeout` or
 * breaks the protocol is killed and restarted by the supervisor
 * (plugins/common/subproc.c), and what it held unanswered is sent to the next
 * child: delivery is at least once (a child that delivered a batch and died before
 * its ACK sees it again). DATA frames from an exporter's child are read, checked
 * and discarded.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

#include "subproc.h"

typedef struct cfg_s {
    syc_sp_config_t sp;
} cfg_t;

static const sy_config_field_t fields[] = {SYC_SP_FIELDS(cfg_t, sp)};

typedef struct exp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    syc_sp_t *sp;
    bool declined; /* consume() said SY_EAGAIN: ready() is owed */
} exp_t;

static void on_done(void *ctx, sy_batch_t *batch, sy_batch_t **outs, size_t nouts,
                    syc_sp_outcome_t outcome)
{
    exp_t *x = ctx;
    for (size_t i = 0; i < nouts; i++)
        x->api->batch_release(outs[i]);
    sy_batch_info_t info;
    x->api->batch_info(batch, &info);
    x->api->exporter_outcome(x->inst, info.signal, info.items, outcome == SYC_SP_ACKED);
    x->api->batch_release(batch);
}

static void on_room(void *ctx)
{
    exp_t *x = ctx;
    if (!x->declined) return;
    x->declined = false;
    x->api->ready(x->inst);
}

static int exp_validate(const void *config, char *err, size_t err_len)
{
    return syc_sp_validate(&((const cfg_t *)config)->sp, err, err_len);
}

static int exp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    exp_t *x = calloc(1, sizeof(*x));
    if (!x) return SY_ENOMEM;
    x->api = api;
    x->inst = inst;
    x->cfg = config;
    static const syc_sp_hooks_t hooks = {.done = on_done, .room = on_room};
    if (!(x->sp = syc_sp_new(api, inst, &x->cfg->sp, &hooks, x))) {
        free(x);
        return SY_ENOMEM;
    }
    *state = x;
    return SY_OK;
}

static int exp_start(void *state)
{
    exp_t *x = state;
    return syc_sp_start(x->sp);
}

static int exp_consume(void *state, sy_batch_t *batch)
{
    exp_t *x = state;
    if (syc_sp_failed(x->sp)) return SY_ERROR; /* counted failed by the host */
    if (!syc_sp_has_room(x->sp)) {
        x->declined = true;
        return SY_EAGAIN;
    }
    return syc_sp_submit(x->sp, batch);
}

static void exp_shutdown(void *state)
{
    exp_t *x = state;
    syc_sp_shutdown(x->sp);
}

static void exp_destroy(void *state)
{
    exp_t *x = state;
    syc_sp_free(x->sp);
    free(x);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "subprocess",
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Hands each batch to a child process speaking the subprocess protocol.",
    SY_CFG_TABLE(fields),
    .config_size = sizeof(cfg_t),
    .validate = exp_validate,
    .create = exp_create,
    .start = exp_start,
    .consume = exp_consume,
    .shutdown = exp_shutdown,
    .destroy = exp_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
