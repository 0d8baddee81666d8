/*
 * engine.c - building the graph from the configuration, starting it, stopping it.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "log.h"
#include "telemetry.h"

static const char *const item_names[3] = {"spans", "metric_points", "log_records"};
static const sy_signal_t signal_list[3] = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS};

static char *signal_set_names(uint32_t signals)
{
    char buf[64] = "";
    for (int i = 0; i < 3; i++) {
        if (!(signals & signal_list[i])) continue;
        if (buf[0]) strcat(buf, ", ");
        strcat(buf, sy__signal_name(signal_list[i]));
    }
    return strdup(buf[0] ? buf : "none");
}

/* ---- building -------------------------------------------------------------- */

/* Instances and pipelines embed queues, whose hot indices are cache-line aligned:
 * they must come from an aligned allocation, not plain malloc. */
static void *zalloc_aligned(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

static sy_instance_t *find_shared(sy__engine_t *e, sy_kind_t kind, const char *id)
{
    for (size_t i = 0; i < e->ninstances; i++)
        if (e->instances[i]->kind == kind && !e->instances[i]->pipeline &&
            strcmp(e->instances[i]->id, id) == 0)
            return e->instances[i];
    return NULL;
}

static int add_ptr(void ***arr, size_t *n, void *p)
{
    void **a = realloc(*arr, (*n + 1) * sizeof(void *));
    if (!a) return SY_ENOMEM;
    a[(*n)++] = p;
    *arr = a;
    return SY_OK;
}

/*
 * Makes the instance of component `id` of `kind`: finds and loads its plugin,
 * fills and validates its configuration. A processor gets one instance per
 * pipeline (sharing one configuration struct); the others one per ID. Returns
 * NULL after adding the reason to diag.
 */
static sy_instance_t *make_instance(sy__engine_t *e, sy_kind_t kind, const char *id,
                                    sy__pipeline_t *p, size_t index, sy__diag_t *diag)
{
    const sy__component_cfg_t *comp = sy__service_cfg_find(e->svc, kind, id);
    if (!comp) {
        /* A pipeline may name a connector where a receiver or exporter goes. */
        const sy__component_cfg_t *conn = sy__service_cfg_find(e->svc, SY_KIND_CONNECTOR, id);
        if (conn)
            sy__diag_add(diag, conn->key,
                         "connector \"%s\": connectors are not available in this build yet", id);
        return NULL; /* otherwise a dangling reference: service_config reported it */
    }

    sy_instance_t *twin = NULL; /* the same processor in an earlier pipeline */
    if (p) {
        for (size_t i = 0; i < e->ninstances && !twin; i++)
            if (e->instances[i]->cfg == comp) twin = e->instances[i];
        if (twin && !twin->config) return NULL; /* it failed there: reported once */
    }

    sy__plugin_file_t *file = twin ? twin->file : sy__registry_find(e->reg, kind, comp->type);
    if (!file) {
        char *valid = sy__registry_types(e->reg, kind);
        sy__diag_add(diag, comp->key, "unknown type: \"%s\" for id: \"%s\" (valid values: %s)",
                     comp->type, id, valid ? valid : "[]");
        free(valid);
        return NULL;
    }
    char err[512];
    if (sy__registry_load(file, err, sizeof(err)) < 0) {
        sy__diag_add(diag, comp->key, "%s", err);
        return NULL;
    }

    sy_instance_t *inst = zalloc_aligned(sizeof(*inst));
    if (!inst) return NULL;
    inst->engine = e;
    inst->kind = kind;
    inst->file = file;
    inst->plugin = &file->desc;
    inst->cfg = comp;
    inst->pipeline = p;
    inst->index = index;
    inst->id = strdup(id);
    char labels[512];
    if (p)
        inst->labels = sy__metric_labels(labels, sizeof(labels), sy__kind_name(kind), id,
                                         "pipeline", p->id, NULL)
                           ? strdup(labels)
                           : NULL;
    else
        inst->labels = sy__metric_labels(labels, sizeof(labels), sy__kind_name(kind), id, NULL)
                           ? strdup(labels)
                           : NULL;
    if (!inst->id || !inst->labels || add_ptr((void ***)&e->instances, &e->ninstances, inst)) {
        free(inst->id);
        free(inst->labels);
        free(inst);
        return NULL;
    }

    if (twin) {
        inst->config = twin->config; /* read-only and shared; the first owns it */
        return inst;
    }
    const sy_plugin_t *d = inst->plugin;
    void *config = calloc(1, d->config_size ? d->config_size : 1);
    if (!config) return NULL;
    if (sy__cfg_fill(id, d->config_fields, d->config_field_count, comp->node, config, diag) < 0) {
        sy__cfg_free_struct(d->config_fields, d->config_field_count, config);
        free(config);
        return NULL;
    }
    if (d->validate) {
        err[0] = 0;
        if (d->validate(config, err, sizeof(err)) < 0) {
            sy__diag_add(diag, comp->node ? comp->node : comp->key, "'%s': %s", id,
                         err[0] ? err : "invalid configuration");
            sy__cfg_free_struct(d->config_fields, d->config_field_count, config);
            free(config);
            return NULL;
        }
    }
    inst->config = config;
    inst->config_owner = true;
    return inst;
}

static bool check_signal(sy_instance_t *inst, const sy__pipeline_t *p, const sy_cfg_node_t *at,
                         sy__diag_t *diag)
{
    if (inst->plugin->signals & p->signal) return true;
    char *has = signal_set_names(inst->plugin->signals);
    sy__diag_add(diag, at, "service::pipelines::%s: %s \"%s\" does not support %s (it supports %s)",
                 p->id, sy__kind_name(inst->kind), inst->id, sy__signal_name(p->signal),
                 has ? has : "none");
    free(has);
    return false;
}

static sy_instance_t *shared_instance(sy__engine_t *e, sy_kind_t kind, const char *id,
                                      sy__diag_t *diag, bool *reported)
{
    sy_instance_t *inst = find_shared(e, kind, id);
    if (inst) return inst;
    /* Remember failures so that a component referenced by several pipelines is
     * reported once. */
    for (size_t i = 0; reported && i < e->svc->ncomponents; i++)
        if ((e->svc->components[i].kind == kind ||
             e->svc->components[i].kind == SY_KIND_CONNECTOR) &&
            strcmp(e->svc->components[i].id, id) == 0 && reported[i])
            return NULL;
    inst = make_instance(e, kind, id, NULL, 0, diag);
    if (!inst && reported)
        for (size_t i = 0; i < e->svc->ncomponents; i++)
            if ((e->svc->components[i].kind == kind ||
                 e->svc->components[i].kind == SY_KIND_CONNECTOR) &&
                strcmp(e->svc->components[i].id, id) == 0)
                reported[i] = true;
    return inst;
}

sy__engine_t *sy__engine_build(sy__service_cfg_t *svc, sy__registry_t *reg, sy__diag_t *diag)
{
    sy__engine_t *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->svc = svc;
    e->reg = reg;
    e->shutdown_timeout_ms = 10000;
    size_t errors_before = diag->count - diag->warnings;
    bool *reported = calloc(svc->ncomponents + 1, sizeof(bool));

    for (size_t pi = 0; pi < svc->npipelines; pi++) {
        const sy__pipeline_cfg_t *pc = &svc->pipelines[pi];
        sy__pipeline_t *p = zalloc_aligned(sizeof(*p));
        if (!p || add_ptr((void ***)&e->pipelines, &e->npipelines, p)) {
            free(p);
            goto fail;
        }
        p->engine = e;
        p->cfg = pc;
        p->id = strdup(pc->id);
        p->signal = pc->signal;

        for (size_t i = 0; i < pc->nreceivers; i++) {
            sy_instance_t *r =
                shared_instance(e, SY_KIND_RECEIVER, pc->receivers[i], diag, reported);
            if (!r || !check_signal(r, p, pc->receiver_nodes[i], diag)) continue;
            r->signals |= p->signal;
            add_ptr((void ***)&r->outputs, &r->noutputs, p);
        }
        for (size_t i = 0; i < pc->nprocessors; i++) {
            sy_instance_t *x =
                make_instance(e, SY_KIND_PROCESSOR, pc->processors[i], p, p->nprocessors, diag);
            if (!x || !check_signal(x, p, pc->processor_nodes[i], diag)) continue;
            x->signals |= p->signal;
            add_ptr((void ***)&p->processors, &p->nprocessors, x);
        }
        for (size_t i = 0; i < pc->nexporters; i++) {
            sy_instance_t *x =
                shared_instance(e, SY_KIND_EXPORTER, pc->exporters[i], diag, reported);
            if (!x || !check_signal(x, p, pc->exporter_nodes[i], diag)) continue;
            x->signals |= p->signal;
            add_ptr((void ***)&p->exporters, &p->nexporters, x);
        }
    }
    for (size_t i = 0; i < svc->nextensions; i++)
        shared_instance(e, SY_KIND_EXTENSION, svc->extensions[i], diag, reported);

    free(reported);
    reported = NULL;
    if (diag->count - diag->warnings > errors_before) goto fail;
    return e;
fail:
    free(reported);
    sy__engine_free(e);
    return NULL;
}

/* ---- starting ------------------------------------------------------------------ */

typedef struct call_s {
    sy_instance_t *inst;
    int rc;
} call_t;

static void do_create_start(void *arg)
{
    call_t *c = arg;
    sy_instance_t *inst = c->inst;
    const sy_plugin_t *d = inst->plugin;
    c->rc = d->create(sy__host_api(), inst, inst->config, &inst->state);
    if (c->rc < 0) {
        SY__LOG(SY_LOG_ERROR, inst->id, "failed to create (error %d)", c->rc);
        return;
    }
    inst->created = true;
    if (d->start) c->rc = d->start(inst->state);
    if (c->rc < 0) {
        SY__LOG(SY_LOG_ERROR, inst->id, "failed to start (error %d)", c->rc);
        return;
    }
    inst->started = true;
}

static void do_shutdown(void *arg)
{
    sy_instance_t *inst = arg;
    if (inst->started && inst->plugin->shutdown) inst->plugin->shutdown(inst->state);
    inst->started = false;
    sy__instance_close_timers(inst);
}

static void do_destroy(void *arg)
{
    sy_instance_t *inst = arg;
    if (inst->created) inst->plugin->destroy(inst->state);
    inst->created = false;
    inst->state = NULL;
}

/* Run on a loop thread once its loop has ended: destroys what lived there. */
static void own_thread_exit(void *arg)
{
    do_destroy(arg);
}

static void pipeline_thread_exit(void *arg)
{
    sy__pipeline_t *p = arg;
    for (size_t i = 0; i < p->nprocessors; i++)
        do_destroy(p->processors[i]);
}

static void register_metrics(sy_instance_t *inst)
{
    const char *ok = NULL, *failed = NULL;
    if (inst->kind == SY_KIND_RECEIVER) {
        ok = "receiver_accepted_";
        failed = "receiver_refused_";
    } else if (inst->kind == SY_KIND_EXPORTER) {
        ok = "exporter_sent_";
        failed = "exporter_send_failed_";
    } else {
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (!(inst->signals & signal_list[i])) continue;
        char name[96], help[160];
        snprintf(name, sizeof(name), "%s%s", ok, item_names[i]);
        snprintf(
            help, sizeof(help), "Number of %s the %s %s.", item_names[i], sy__kind_name(inst->kind),
            inst->kind == SY_KIND_RECEIVER ? "accepted and passed on" : "handed to its backend");
        inst->metrics[i].ok = sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
        snprintf(name, sizeof(name), "%s%s", failed, item_names[i]);
        snprintf(help, sizeof(help), "Number of %s the %s %s.", item_names[i],
                 sy__kind_name(inst->kind),
                 inst->kind == SY_KIND_RECEIVER ? "refused (the client was told to retry)"
                                                : "failed to send");
        inst->metrics[i].failed = sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
    }
}

static int64_t queue_size_fn(void *arg)
{
    return (int64_t)sy__mpmc_size(arg);
}

static int64_t queue_capacity_fn(void *arg)
{
    return (int64_t)sy__mpmc_capacity(arg);
}

/* The gauges read the queue at scrape time, so they are unregistered before the
 * queue is freed (see unregister_queue_metrics). */
static void register_queue_metrics(sy__mpmc_t *q, const char *labels, sy_metric_t *out[2])
{
    out[0] = sy__metric_register_fn("queue_size", "Batches waiting in the queue.", SY_METRIC_GAUGE,
                                    labels, queue_size_fn, q);
    out[1] = sy__metric_register_fn("queue_capacity", "Capacity of the queue, in batches.",
                                    SY_METRIC_GAUGE, labels, queue_capacity_fn, q);
}

static void unregister_queue_metrics(sy_metric_t *m[2])
{
    for (int i = 0; i < 2; i++)
        if (m[i]) sy__metric_unregister(m[i]);
    m[0] = m[1] = NULL;
}

static int start_own(sy_instance_t *inst)
{
    inst->own_thread.on_exit = own_thread_exit;
    inst->own_thread.exit_arg = inst;
    if (sy__thread_start(&inst->own_thread, inst->id) < 0) return SY_ERROR;
    inst->thread = &inst->own_thread;
    call_t c = {.inst = inst};
    sy__thread_call(inst->thread, do_create_start, &c);
    return c.rc;
}

static int start_exporter(sy_instance_t *x)
{
    if (sy__mpmc_init(&x->queue, SY__EXPORTER_QUEUE_CAPACITY) < 0) return SY_ENOMEM;
    x->queue_ready = true;
    char labels[256];
    snprintf(labels, sizeof(labels), "%s,queue=\"exporter\"", x->labels);
    register_queue_metrics(&x->queue, labels, x->queue_metrics);
    register_metrics(x);
    /* Before the thread starts; consume() is not called before start() returned,
     * because on_wake checks `started`, which is set on the same thread. */
    x->own_thread.on_wake = sy__exporter_on_wake;
    x->own_thread.wake_arg = x;
    return start_own(x);
}

typedef struct pipeline_call_s {
    sy__pipeline_t *p;
    int rc;
} pipeline_call_t;

static void pipeline_init_call(void *arg)
{
    pipeline_call_t *c = arg;
    c->rc = sy__pipeline_init(c->p);
}

static int start_pipeline(sy__pipeline_t *p)
{
    if (sy__mpmc_init(&p->in, SY__PIPELINE_QUEUE_CAPACITY) < 0) return SY_ENOMEM;
    p->queue_ready = true;
    char labels[256];
    if (sy__metric_labels(labels, sizeof(labels), "pipeline", p->id, "queue", "pipeline", NULL))
        register_queue_metrics(&p->in, labels, p->queue_metrics);
    char name[32];
    snprintf(name, sizeof(name), "pipeline:%s", p->id);
    /* Set before the thread starts (which orders these writes before its reads);
     * the pipeline pulls nothing before receivers start, which is after every
     * processor here has started. */
    p->thread.on_wake = sy__pipeline_on_wake;
    p->thread.wake_arg = p;
    p->thread.on_exit = pipeline_thread_exit;
    p->thread.exit_arg = p;
    if (sy__thread_start(&p->thread, name) < 0) return SY_ERROR;
    p->thread_started = true;
    pipeline_call_t c = {.p = p};
    sy__thread_call(&p->thread, pipeline_init_call, &c);
    if (c.rc < 0) return c.rc;
    p->timer_ready = true;
    for (size_t i = 0; i < p->nprocessors; i++) {
        sy_instance_t *x = p->processors[i];
        x->thread = &p->thread;
        call_t pc = {.inst = x};
        sy__thread_call(&p->thread, do_create_start, &pc);
        if (pc.rc < 0) return pc.rc;
    }
    return SY_OK;
}

static void log_pipeline(const sy__pipeline_t *p)
{
    char line[1024];
    size_t len = 0;
    const sy__pipeline_cfg_t *c = p->cfg;
    len += (size_t)snprintf(line + len, sizeof(line) - len, "receivers [");
    for (size_t i = 0; i < c->nreceivers && len < sizeof(line); i++)
        len +=
            (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", c->receivers[i]);
    if (len < sizeof(line))
        len += (size_t)snprintf(line + len, sizeof(line) - len, "] -> processors [");
    for (size_t i = 0; i < c->nprocessors && len < sizeof(line); i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "",
                                c->processors[i]);
    if (len < sizeof(line))
        len += (size_t)snprintf(line + len, sizeof(line) - len, "] -> exporters [");
    for (size_t i = 0; i < c->nexporters && len < sizeof(line); i++)
        len +=
            (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", c->exporters[i]);
    if (len < sizeof(line)) snprintf(line + len, sizeof(line) - len, "]");
    SY__LOG(SY_LOG_INFO, NULL, "Pipeline %s is running: %s", p->id, line);
}

int sy__engine_start(sy__engine_t *e)
{
    sy__engine_set_status(SY_STATUS_STARTING);
    /* Extensions first (health_check answers 503 while starting), then exporters,
     * the pipelines with their processors, and the receivers last, so that nothing
     * is sent to a component that is not running. */
    static const sy_kind_t order[] = {SY_KIND_EXTENSION, SY_KIND_EXPORTER};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < e->ninstances; i++) {
            sy_instance_t *x = e->instances[i];
            if (x->kind != order[k]) continue;
            int rc = x->kind == SY_KIND_EXPORTER ? start_exporter(x) : start_own(x);
            if (rc < 0) goto fail;
        }
    }
    for (size_t i = 0; i < e->npipelines; i++)
        if (start_pipeline(e->pipelines[i]) < 0) goto fail;
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind != SY_KIND_RECEIVER) continue;
        register_metrics(x);
        if (start_own(x) < 0) goto fail;
    }
    for (size_t i = 0; i < e->npipelines; i++)
        log_pipeline(e->pipelines[i]);
    sy__engine_set_status(SY_STATUS_READY);
    SY__LOG(SY_LOG_INFO, NULL, "Everything is ready. Begin running and processing data.");
    return SY_OK;
fail:
    sy__engine_stop(e);
    return SY_ERROR;
}

/* ---- stopping ---------------------------------------------------------------------- */

static int stop_own(sy_instance_t *x, uint64_t timeout_ms)
{
    if (!x->thread || x->thread != &x->own_thread) return SY_OK;
    sy__thread_call(x->thread, do_shutdown, x);
    if (sy__thread_stop(x->thread, timeout_ms) < 0) {
        SY__LOG(SY_LOG_ERROR, x->id, "did not close all of its handles within %llu ms of shutdown",
                (unsigned long long)timeout_ms);
        x->thread = NULL;
        return SY_ERROR;
    }
    x->thread = NULL;
    return SY_OK;
}

typedef struct backlog_call_s {
    sy_instance_t *x;
    size_t backlog;
    uint64_t lost;
} backlog_call_t;

static void backlog_check(void *arg)
{
    backlog_call_t *c = arg;
    c->backlog = sy__exporter_backlog(c->x);
}

static void backlog_abandon(void *arg)
{
    backlog_call_t *c = arg;
    c->lost = sy__exporter_abandon(c->x);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sy__engine_stop(sy__engine_t *e)
{
    int rc = SY_OK;
    sy__engine_set_status(SY_STATUS_STOPPING);
    SY__LOG(SY_LOG_INFO, NULL, "Shutdown: stopping receivers, draining pipelines and exporters.");
    for (size_t i = 0; i < e->ninstances; i++)
        if (e->instances[i]->kind == SY_KIND_RECEIVER &&
            stop_own(e->instances[i], e->shutdown_timeout_ms) < 0)
            rc = SY_ERROR;

    for (size_t i = 0; i < e->npipelines; i++) {
        sy__pipeline_t *p = e->pipelines[i];
        if (!p->thread_started) continue;
        if (p->timer_ready) sy__thread_call(&p->thread, sy__pipeline_drain, p);
        if (sy__thread_stop(&p->thread, e->shutdown_timeout_ms) < 0) {
            SY__LOG(SY_LOG_ERROR, p->id, "pipeline did not stop within the shutdown timeout");
            rc = SY_ERROR;
        }
        p->thread_started = false;
    }

    uint64_t deadline = now_ms() + e->shutdown_timeout_ms;
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind != SY_KIND_EXPORTER || !x->thread) continue;
        backlog_call_t c = {.x = x};
        for (;;) {
            sy__thread_call(x->thread, backlog_check, &c);
            if (c.backlog == 0 || now_ms() >= deadline) break;
            sy__thread_wake(x->thread);
            uv_sleep(2);
        }
        if (c.backlog) {
            sy__thread_call(x->thread, backlog_abandon, &c);
            SY__LOG(SY_LOG_ERROR, x->id,
                    "shutdown timeout: %llu items were never sent and are counted as failed",
                    (unsigned long long)c.lost);
            rc = SY_ERROR;
        }
        uint64_t left = deadline > now_ms() ? deadline - now_ms() : 100;
        if (stop_own(x, left < 100 ? 100 : left) < 0) rc = SY_ERROR;
    }
    for (size_t i = 0; i < e->ninstances; i++)
        if (e->instances[i]->kind == SY_KIND_EXTENSION &&
            stop_own(e->instances[i], e->shutdown_timeout_ms) < 0)
            rc = SY_ERROR;
    return rc;
}

void sy__engine_free(sy__engine_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->npipelines; i++) {
        sy__pipeline_t *p = e->pipelines[i];
        unregister_queue_metrics(p->queue_metrics);
        if (p->queue_ready) {
            void *b;
            while (sy__mpmc_pop(&p->in, &b))
                sy__batch_release(b);
            sy__mpmc_destroy(&p->in);
        }
        free(p->pending);
        free(p->processors);
        free(p->exporters);
        free(p->id);
        free(p);
    }
    free(e->pipelines);
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        unregister_queue_metrics(x->queue_metrics);
        if (x->kind == SY_KIND_EXPORTER && x->queue_ready) {
            void *b;
            while (sy__mpmc_pop(&x->queue, &b))
                sy__batch_release(b);
            sy__mpmc_destroy(&x->queue);
        }
        if (x->config_owner) {
            sy__cfg_free_struct(x->plugin->config_fields, x->plugin->config_field_count, x->config);
            free(x->config);
        }
        free(x->outputs);
        free(x->id);
        free(x->labels);
        free(x);
    }
    free(e->instances);
    free(e);
}
