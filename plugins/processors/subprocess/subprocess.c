/*
 * subprocess.c - the `subprocess` processor: runs each batch through a child
 * process that speaks the subprocess protocol (docs/subprocess.md), so that a
 * crash or a leak in third-party code takes down the child, not the router.
 *
 * consume() always takes the batch: the supervisor (plugins/common/subproc.c)
 * writes it to the child or queues it, and keeps it until the child has answered
 * it with ACK; what the child sent back for it (DATA frames) is then emitted, in
 * order, and the batch released. A child that dies, hangs past `timeout` or breaks
 * the protocol is killed and restarted, and what it held is sent again to the next
 * one, its partial answers discarded: every batch is emitted as one child's whole
 * answer, exactly once.
 *
 * Back-pressure: a processor that returns an error from consume() has refused the
 * batch (the host counts it as refused and releases it), so this one never says
 * SY_EAGAIN. While anything waits that is not written to the child (the child is
 * restarting, or max_in_flight requests are unanswered), it asks the host to
 * refuse receivers (api->pipeline_refuse), as the memory_limiter does: their
 * clients are told to retry, and what the pipeline's queue already holds still
 * comes here, bounded by that queue.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

#include "subproc.h"

typedef struct cfg_s {
    syc_sp_config_t sp;
} cfg_t;

static const sy_config_field_t fields[] = {SYC_SP_FIELDS(cfg_t, sp)};

typedef struct proc_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    syc_sp_t *sp;
    bool refusing;
    sy_metric_t *dropped; /* answers that could not be emitted (shutting down) */
} proc_t;

static void set_refuse(proc_t *p, bool refuse)
{
    if (p->refusing == refuse || !SY_API_HAS(p->api, pipeline_refuse)) return;
    p->refusing = refuse;
    p->api->pipeline_refuse(p->inst, refuse);
}

static void on_done(void *ctx, sy_batch_t *batch, sy_batch_t **outs, size_t nouts,
                    syc_sp_outcome_t outcome)
{
    proc_t *p = ctx;
    (void)outcome; /* NACKED and DROPPED were counted and logged by the supervisor */
    for (size_t i = 0; i < nouts; i++) {
        if (p->api->emit(p->inst, outs[i]) == SY_OK) continue;
        sy_batch_info_t info;
        p->api->batch_info(outs[i], &info);
        p->api->metric_add(p->dropped, (int64_t)info.items);
        p->api->batch_release(outs[i]);
    }
    p->api->batch_release(batch);
}

static void on_room(void *ctx)
{
    proc_t *p = ctx;
    set_refuse(p, !syc_sp_has_room(p->sp) && !syc_sp_failed(p->sp));
}

static int proc_validate(const void *config, char *err, size_t err_len)
{
    return syc_sp_validate(&((const cfg_t *)config)->sp, err, err_len);
}

static int proc_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    proc_t *p = calloc(1, sizeof(*p));
    if (!p) return SY_ENOMEM;
    p->api = api;
    p->inst = inst;
    p->cfg = config;
    static const syc_sp_hooks_t hooks = {.done = on_done, .room = on_room};
    if (!(p->sp = syc_sp_new(api, inst, &p->cfg->sp, &hooks, p))) {
        free(p);
        return SY_ENOMEM;
    }
    p->dropped = api->metric_register(inst, "subprocess_answers_dropped",
                                      "Items the child answered that could not be emitted.",
                                      SY_METRIC_COUNTER);
    *state = p;
    return SY_OK;
}

static int proc_start(void *state)
{
    proc_t *p = state;
    return syc_sp_start(p->sp);
}

static int proc_consume(void *state, sy_batch_t *batch)
{
    proc_t *p = state;
    int rc = syc_sp_submit(p->sp, batch);
    if (rc < 0) return rc; /* given up on the child: the host counts the refusal */
    on_room(p);
    return SY_OK;
}

static void proc_shutdown(void *state)
{
    proc_t *p = state;
    set_refuse(p, false);
    syc_sp_shutdown(p->sp);
}

static void proc_destroy(void *state)
{
    proc_t *p = state;
    syc_sp_free(p->sp);
    free(p);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "subprocess",
    .signals = SY_SIGNAL_ALL,
    .version = "0.1.0",
    .description = "Runs each batch through a child process speaking the subprocess protocol.",
    SY_CFG_TABLE(fields),
    .config_size = sizeof(cfg_t),
    .validate = proc_validate,
    .create = proc_create,
    .start = proc_start,
    .consume = proc_consume,
    .shutdown = proc_shutdown,
    .destroy = proc_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
