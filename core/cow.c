/*
 * cow.c - copy-on-write: who is running, and who may change a batch.
 *
 * Memory safety does not depend on the caller: sy__batch_request_mut() never
 * hands out a shared batch (batch.c). What this file adds is the contract a
 * plugin signs with SY_PLUGIN_MUTATES_DATA. Without the flag the runtime does not
 * copy a shared batch for the processor, so a processor that changes data
 * without declaring it would work only while nothing happens to share its input,
 * and break the day a second pipeline or a `batch` with send_batch_max_size is
 * put in front of it. Refusing it every time, whether or not this batch happens
 * to be shared, makes that mistake show on the first batch.
 */
#include "cow.h"

#include <stdio.h>

#include "batch.h"
#include "engine.h"
#include "log.h"
#include "telemetry.h"

/* Set by the runtime around plugin code on the loop threads; other threads
 * (a receiver's I/O threads, the metrics thread) see NULL. */
static _Thread_local sy_instance_t *current;

/* One limit for all instances: a plugin that breaks the rule usually does so on
 * every batch, and the metric counts every refusal by instance anyway. */
static sy__ratelimit_t refusal_rl;

sy_instance_t *sy__consumer_enter(sy_instance_t *inst)
{
    sy_instance_t *prev = current;
    current = inst;
    return prev;
}

void sy__consumer_leave(sy_instance_t *prev)
{
    current = prev;
}

sy_instance_t *sy__consumer_current(void)
{
    return current;
}

/* Counts one refusal. The counter is found or made by name and labels on each
 * refusal, rather than kept in the instance: refusals are a bug being reported,
 * not a hot path, and registering the same name and labels again returns the same
 * counter. It therefore appears on /metrics with the first refusal. */
static void count_refusal(const sy_instance_t *inst)
{
    sy_metric_t *m = sy__metric_register(
        "batch_mutation_refused",
        "Requests of a plugin to change a batch in place that were refused (the batch was "
        "shared, or the plugin does not declare SY_PLUGIN_MUTATES_DATA).",
        SY_METRIC_COUNTER, inst ? inst->labels : NULL);
    sy__metric_add(m, 1);
}

bool sy__cow_may_change(sy_batch_t *batch, const char *what)
{
    sy_instance_t *inst = current;
    bool shared = sy__batch_is_shared(batch);
    /* Origin by address: processors are instantiated once per pipeline under one
     * ID, and each instance may change only the batches it made itself. */
    bool unflagged = inst && !(inst->plugin->flags & SY_PLUGIN_MUTATES_DATA) &&
                     sy__batch_origin(batch) != inst->id;
    /* Both reasons when both hold: the author's fix is the flag, whichever
     * check happened to trip first. */
    const char *why = shared && unflagged ? "the batch is shared and the plugin does not declare "
                                            "SY_PLUGIN_MUTATES_DATA"
                      : shared    ? "the batch is shared (another reference, or a piece of a split)"
                      : unflagged ? "the plugin does not declare SY_PLUGIN_MUTATES_DATA"
                                  : NULL;
    if (!why) return true;
    count_refusal(inst);
    char who[256];
    if (!inst)
        snprintf(who, sizeof(who), "a caller outside any plugin");
    else if (inst->kind == SY_KIND_PROCESSOR)
        snprintf(who, sizeof(who), "plugin %s (pipeline %s)", inst->id, inst->proc.pipeline->id);
    else
        snprintf(who, sizeof(who), "plugin %s", inst->id);
    SY__LOG_RATELIMITED(inst ? &inst->cow_log : &refusal_rl, 1000, SY_LOG_ERROR,
                        inst ? inst->id : NULL,
                        "%s refused for %s: %s; the batch is left unchanged", what, who, why);
    return false;
}

void *sy__cow_request_mut(sy_batch_t *batch)
{
    if (!sy__cow_may_change(batch, "batch_request_mut")) return NULL;
    return sy__batch_request_mut(batch);
}
