/*
 * routing.c - the `routing` connector, as the collector's routingconnector: it
 * ends pipelines and sends each resource, span, metric, data point or log record
 * of their batches to the pipelines of the first route of its table whose OTTL
 * condition holds, or to default_pipelines (routing_table.h has the rules).
 *
 * Nothing is decoded. Conditions read the batch through the view; when every
 * item of a batch goes to one set of pipelines (the usual case: one tenant per
 * request), the batch itself is handed on with api->emit_to(); otherwise the view
 * builder copies the items, still encoded, into one batch per set of pipelines.
 *
 * Back-pressure: emit_to() takes nothing when a pipeline is full (SY_EAGAIN),
 * and consume() then returns SY_EAGAIN so that the host offers the batch again
 * later. A batch split into several has some of its pieces taken before one is
 * refused: the pieces left are kept (with a reference to the batch they came
 * from) and sent first when the host offers that batch again, so that no piece
 * is sent twice and none is lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "routing_config.h"
#include "routing_table.h"

static const char *const error_modes[] = {"propagate", "ignore", "silent", NULL};

static const sy_config_field_t routing_fields[] = {
    {SY_CFG_FIELD("table", SY_CFG_RAW, routing_config_t, table),
     .description = "The routes, tried in order: each a map of `statement` (route() where "
                    "<condition>) or `condition`, `pipelines` (ids) and an optional `context` "
                    "(resource, span, metric, datapoint, log; default: the one the paths name, "
                    "else resource). Required, not empty."},
    {SY_CFG_FIELD("default_pipelines", SY_CFG_RAW, routing_config_t, default_pipelines),
     .description = "Pipelines for what no route takes; without them it is dropped (counted)."},
    {SY_CFG_FIELD("error_mode", SY_CFG_ENUM, routing_config_t, error_mode),
     .default_value = "propagate", .enum_values = error_modes,
     .description = "A condition failing at run time: propagate (refuse the batch), ignore "
                    "(log; its items go to default_pipelines), silent (the same, not logged)."},
};

/* At most one log line of each kind per interval; the rest are counted. */
typedef struct rate_log_s {
    struct timespec last;
    uint64_t suppressed;
} rate_log_t;

typedef struct routing_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const routing_config_t *cfg;
    rt_table_t table;
    rt_runner_t runner;
    /* A split batch whose pieces were not all taken: our reference to it, and
     * the pieces from `pos` on still to send. */
    sy_batch_t *pending_src;
    rt_out_t *pending;
    size_t npending, pos;
    bool pending_taken; /* a piece of pending_src went downstream */
    sy_metric_t *m_routed, *m_default, *m_dropped, *m_errors, *m_split, *m_lost, *m_deferred;
    rate_log_t log_errors, log_dropped, log_lost;
} routing_state_t;

/* Whether a line of this kind may be written now; *suppressed is how many were
 * not since the last one. */
static bool rate_ok(rate_log_t *rl, double interval_s, uint64_t *suppressed)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double since =
        (double)(now.tv_sec - rl->last.tv_sec) + (double)(now.tv_nsec - rl->last.tv_nsec) / 1e9;
    if (rl->last.tv_sec && since < interval_s) {
        rl->suppressed++;
        return false;
    }
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->last = now;
    return true;
}

static const char *signal_items(const sy_host_api_t *api, sy_batch_t *batch)
{
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    return info.signal == SY_SIGNAL_TRACES    ? "spans"
           : info.signal == SY_SIGNAL_METRICS ? "data points"
                                              : "log records";
}

static void add(const sy_host_api_t *api, sy_metric_t *m, uint64_t n)
{
    if (m && n) api->metric_add(m, (int64_t)n);
}

/* Counts (and logs, at a rate) what one routed batch did. */
static void account(routing_state_t *s, sy_batch_t *batch, const rt_result_t *res)
{
    const sy_host_api_t *api = s->api;
    add(api, s->m_routed, res->matched);
    add(api, s->m_default, res->to_default);
    add(api, s->m_dropped, res->dropped);
    add(api, s->m_errors, res->errors);
    if (!res->whole) add(api, s->m_split, 1);
    uint64_t sup;
    if (res->errors && s->table.error_mode == RT_EM_IGNORE &&
        api->log_enabled(s->inst, SY_LOG_WARN) && rate_ok(&s->log_errors, 1.0, &sup))
        api->log(s->inst, SY_LOG_WARN,
                 "%" PRIu64 " condition(s) of this batch failed (first: table route %zu, \"%s\", "
                 "error %d); their %s went to %s (%" PRIu64 " messages suppressed)",
                 res->errors, res->error_route, s->table.routes[res->error_route].text,
                 res->first_error, signal_items(api, batch),
                 s->table.default_dest == RT_DROP ? "nowhere (no default_pipelines): dropped"
                                                  : "default_pipelines",
                 sup);
    if (res->dropped && api->log_enabled(s->inst, SY_LOG_INFO) &&
        rate_ok(&s->log_dropped, 60.0, &sup))
        api->log(s->inst, SY_LOG_INFO,
                 "%" PRIu64 " %s matched no route and there are no default_pipelines: dropped "
                 "(counted in connector_routing_dropped_items; %" PRIu64
                 " messages suppressed in the last minute)",
                 res->dropped, signal_items(api, batch), sup);
}

static int emit_dest(routing_state_t *s, sy_batch_t *batch, int dest)
{
    const rt_dest_t *d = &s->table.dests[dest];
    return s->api->emit_to(s->inst, batch, d->ids, d->n);
}

/* Sends the pending pieces from pos on. SY_EAGAIN: a pipeline is full (the rest
 * stays pending). A piece refused otherwise (shutting down) is released and
 * counted as lost, unless no piece of this batch was taken yet: then every piece
 * is released and the error returned, so that the host keeps the batch whole. */
static int send_pending(routing_state_t *s)
{
    const sy_host_api_t *api = s->api;
    while (s->pos < s->npending) {
        rt_out_t *o = &s->pending[s->pos];
        int rc = emit_dest(s, o->batch, o->dest);
        if (rc == SY_EAGAIN) return SY_EAGAIN;
        if (rc < 0 && !s->pending_taken) {
            for (size_t i = s->pos; i < s->npending; i++)
                api->batch_release(s->pending[i].batch);
            s->npending = s->pos = 0;
            return rc;
        }
        if (rc < 0) {
            uint64_t sup;
            add(api, s->m_lost, o->items);
            if (rate_ok(&s->log_lost, 1.0, &sup))
                SY_LOG(api, s->inst, SY_LOG_ERROR,
                       "%" PRIu64 " items for %s were refused (error %d) after other parts of "
                       "their batch were sent: lost (%" PRIu64 " messages suppressed)",
                       o->items, s->table.dests[o->dest].ids[0], rc, sup);
            api->batch_release(o->batch);
        }
        s->pending_taken = true;
        s->pos++;
    }
    s->npending = s->pos = 0;
    return SY_OK;
}

/* consume()'s SY_EAGAIN: a pipeline is full; the host offers the batch again. */
static int deferred(routing_state_t *s)
{
    add(s->api, s->m_deferred, 1);
    return SY_EAGAIN;
}

/* Ends the pending batch: drops our reference to it. */
static void pending_done(routing_state_t *s)
{
    s->api->batch_release(s->pending_src);
    s->pending_src = NULL;
    s->pending_taken = false;
}

static int routing_consume(void *state, sy_batch_t *batch)
{
    routing_state_t *s = state;
    const sy_host_api_t *api = s->api;
    if (s->pending_src) {
        /* The host offers again the batch whose pieces were not all taken (or,
         * should it not, one after it waits until they are). */
        bool same = batch == s->pending_src;
        int rc = send_pending(s);
        if (rc == SY_EAGAIN) return deferred(s);
        if (rc < 0) {
            pending_done(s);
            if (same) return rc; /* nothing of it went downstream: the host keeps it */
        } else {
            pending_done(s);
            if (same) {
                api->batch_release(batch);
                return SY_OK;
            }
        }
    }

    rt_result_t res;
    int rc = rt_route(&s->table, &s->runner, api, s->inst, batch, &res);
    if (rc < 0) {
        if (res.errors) {
            add(api, s->m_errors, 1);
            uint64_t sup;
            if (rate_ok(&s->log_errors, 1.0, &sup))
                SY_LOG(api, s->inst, SY_LOG_ERROR,
                       "failed routing a batch of %" PRIu64 " %s: table route %zu (\"%s\") failed "
                       "with error %d; the batch is refused (error_mode: propagate; %" PRIu64
                       " messages suppressed)",
                       res.items, signal_items(api, batch), res.error_route,
                       s->table.routes[res.error_route].text, rc, sup);
        } else {
            SY_LOG(api, s->inst, SY_LOG_ERROR, "failed routing a batch (error %d)", rc);
        }
        return rc; /* the host still owns the batch */
    }

    if (res.whole) {
        if (res.whole_dest == RT_DROP) {
            account(s, batch, &res);
            api->batch_release(batch);
            return SY_OK;
        }
        rc = emit_dest(s, batch, res.whole_dest);
        if (rc == SY_OK) account(s, batch, &res); /* not before: a refused batch comes back */
        return rc == SY_EAGAIN ? deferred(s) : rc;
    }

    /* Split: the pieces are ours now, and so is the batch once they are sent. */
    account(s, batch, &res);
    memcpy(s->pending, res.outs, res.nouts * sizeof *res.outs);
    s->npending = res.nouts;
    s->pos = 0;
    s->pending_taken = false;
    api->batch_retain(batch);
    s->pending_src = batch;
    rc = send_pending(s);
    if (rc == SY_EAGAIN) return deferred(s);
    pending_done(s);
    if (rc < 0) return rc;
    api->batch_release(batch);
    return SY_OK;
}

/* The pipelines this connector feeds are drained after it: what is still
 * pending goes now, or is counted as lost. */
static void routing_shutdown(void *state)
{
    routing_state_t *s = state;
    if (!s->pending_src) return;
    const sy_host_api_t *api = s->api;
    if (send_pending(s) == SY_EAGAIN) {
        uint64_t lost = 0;
        for (size_t i = s->pos; i < s->npending; i++) {
            lost += s->pending[i].items;
            api->batch_release(s->pending[i].batch);
        }
        s->npending = s->pos = 0;
        add(api, s->m_lost, lost);
        SY_LOG(api, s->inst, SY_LOG_ERROR,
               "shutting down with %" PRIu64 " routed items that their pipelines did not take: "
               "lost",
               lost);
    }
    pending_done(s);
}

static void routing_destroy(void *state)
{
    routing_state_t *s = state;
    if (!s) return;
    if (s->pending_src) routing_shutdown(s);
    rt_table_free(&s->table);
    rt_runner_free(&s->runner);
    free(s->pending);
    free(s);
}

static int routing_validate2(const sy_host_api_t *api, const sy_cfg_node_t *node,
                             const void *config, char *err, size_t err_len)
{
    (void)node;
    rt_table_t t;
    int rc = routing_config_load(api, NULL, config, &t, err, err_len);
    if (rc == 0) rt_table_free(&t);
    return rc == SY_ENOMEM ? SY_EINVAL : rc;
}

static int routing_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                          void **state)
{
    if (!SY_API_HAS(api, connector_pipelines)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.4 (connectors)");
        return SY_ENOTSUP;
    }
    routing_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    char err[768] = "";
    int rc = routing_config_load(api, inst, s->cfg, &s->table, err, sizeof err);
    if (rc == 0) rc = routing_config_check_pipelines(api, inst, s->cfg, err, sizeof err);
    if (rc == 0) rc = rt_runner_init(&s->runner);
    if (rc == 0 &&
        !(s->pending = calloc(s->table.ndests ? s->table.ndests : 1, sizeof *s->pending)))
        rc = SY_ENOMEM;
    if (rc < 0) {
        api->log(inst, SY_LOG_ERROR, "%s", err[0] ? err : "out of memory");
        routing_destroy(s);
        return rc;
    }
#define COUNTER(name, help) api->metric_register(inst, name, help, SY_METRIC_COUNTER)
    s->m_routed = COUNTER("connector_routing_routed_items",
                          "Items (spans, data points, log records) that a route took.");
    s->m_default = COUNTER("connector_routing_default_items",
                           "Items sent to default_pipelines: no route took them, or a condition "
                           "failed (error_mode ignore or silent).");
    s->m_dropped = COUNTER("connector_routing_dropped_items",
                           "Items that no route took, with no default_pipelines: dropped.");
    s->m_errors =
        COUNTER("connector_routing_condition_errors", "Route conditions that failed at run time.");
    s->m_split = COUNTER("connector_routing_split_batches",
                         "Batches whose items went to several sets of pipelines (copied).");
    s->m_lost = COUNTER("connector_routing_lost_items",
                        "Items of a split batch that a pipeline refused after other parts of "
                        "the batch had been sent (at shutdown): lost.");
    s->m_deferred = COUNTER("connector_routing_deferred_batches",
                            "Times a batch was handed back (SY_EAGAIN) because a pipeline it goes "
                            "to was full; the host offers it again.");
#undef COUNTER
    *state = s;
    return SY_OK;
}

static const sy_plugin_t routing_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_CONNECTOR,
    .type = "routing",
    .signals = SY_SIGNAL_ALL,
    .version = "1.0",
    .description = "Sends each resource or item to the pipelines of the first route whose OTTL "
                   "condition holds.",
    SY_CFG_TABLE(routing_fields),
    .config_size = sizeof(routing_config_t),
    .validate2 = routing_validate2,
    .create = routing_create,
    .consume = routing_consume,
    .shutdown = routing_shutdown,
    .destroy = routing_destroy,
    .connects = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS},
};

SY_PLUGIN_DEFINE(routing_descriptor)
