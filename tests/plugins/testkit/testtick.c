/*
 * testtick - a processor for the plugin test harness's own tests: it holds the
 * batches it is given and emits them on a repeating timer (`interval`), and
 * starts a one-shot timer (`once_after`) that stops itself from inside its own
 * callback. Each callback writes a log line naming the timer and the count, and
 * counts in testtick_ticks / testtick_once.
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

typedef struct tick_config_s {
    int64_t interval;   /* ns */
    int64_t once_after; /* ns */
} tick_config_t;

static const sy_config_field_t tick_fields[] = {
    {SY_CFG_FIELD("interval", SY_CFG_DURATION, tick_config_t, interval), .default_value = "1s",
     .min = "1ms"},
    {SY_CFG_FIELD("once_after", SY_CFG_DURATION, tick_config_t, once_after),
     .default_value = "2500ms", .min = "1ms"},
};

typedef struct tick_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const tick_config_t *cfg;
    sy_timer_t *repeat, *once;
    sy_batch_t *held[16];
    size_t nheld;
    int64_t ticks, onces;
    sy_metric_t *m_ticks, *m_once;
} tick_t;

static void on_tick(void *arg)
{
    tick_t *t = arg;
    t->ticks++;
    t->api->metric_add(t->m_ticks, 1);
    t->api->log(t->inst, SY_LOG_INFO, "tick %lld", (long long)t->ticks);
    size_t kept = 0;
    for (size_t i = 0; i < t->nheld; i++)
        if (t->api->emit(t->inst, t->held[i]) != SY_OK) t->held[kept++] = t->held[i];
    t->nheld = kept;
}

static void on_once(void *arg)
{
    tick_t *t = arg;
    t->onces++;
    t->api->metric_add(t->m_once, 1);
    t->api->log(t->inst, SY_LOG_WARN, "once %lld", (long long)t->onces);
    t->api->timer_stop(t->once); /* from inside its own callback */
    t->once = NULL;
}

static int tick_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    tick_t *t = calloc(1, sizeof(*t));
    if (!t) return SY_ENOMEM;
    t->api = api;
    t->inst = inst;
    t->cfg = config;
    t->m_ticks =
        api->metric_register(inst, "testtick_ticks", "Repeating timer calls.", SY_METRIC_COUNTER);
    t->m_once =
        api->metric_register(inst, "testtick_once", "One-shot timer calls.", SY_METRIC_COUNTER);
    *state = t;
    return SY_OK;
}

static int tick_start(void *state)
{
    tick_t *t = state;
    uint64_t every = (uint64_t)(t->cfg->interval / 1000000);
    t->repeat = t->api->timer_start(t->inst, every, every, on_tick, t);
    t->once = t->api->timer_start(t->inst, (uint64_t)(t->cfg->once_after / 1000000), 0, on_once, t);
    return t->repeat && t->once ? SY_OK : SY_ENOMEM;
}

static int tick_consume(void *state, sy_batch_t *batch)
{
    tick_t *t = state;
    if (t->nheld == sizeof(t->held) / sizeof(t->held[0])) return SY_EAGAIN;
    t->held[t->nheld++] = batch;
    return SY_OK;
}

static void tick_shutdown(void *state)
{
    tick_t *t = state;
    for (size_t i = 0; i < t->nheld; i++)
        if (t->api->emit(t->inst, t->held[i]) != SY_OK) t->api->batch_release(t->held[i]);
    t->nheld = 0;
}

static void tick_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t tick_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "testtick",
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    SY_CFG_TABLE(tick_fields),
    .config_size = sizeof(tick_config_t),
    .create = tick_create,
    .start = tick_start,
    .consume = tick_consume,
    .shutdown = tick_shutdown,
    .destroy = tick_destroy,
};

SY_PLUGIN_DEFINE(tick_plugin)
