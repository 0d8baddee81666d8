/*
 * status_json.c - api->status_json() (ABI 1.5): the running router as one JSON
 * document, for status pages (the zpages extension). The document is described
 * in docs/status.md.
 *
 * Counters are read with the same sy__metric_value() as the /metrics endpoint,
 * from the same sy_metric_t objects, so the page and the metrics agree.
 *
 * Threads: called from any plugin thread while the engine runs. Everything that
 * reads the engine's graph (its pipelines, instances, their metrics and queues)
 * happens inside status_write_graph(), under the read side of graph_lock; a
 * reload (router.c) holds its write side while it moves instances between
 * engines and frees the old one, and a reader that finds it held answers
 * SY_EAGAIN rather than wait (a loop thread never blocks). Between reloads the
 * graph is not changed after sy__engine_build(); what start writes later on the
 * main thread (metric pointers, queues) is published by the release store of the
 * status READY (or STOPPING), so counters are read only once the acquire load of
 * sy__engine_status() says the router is no longer starting.
 */
#include "status_json.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "json_write.h"
#include "log.h"
#include "procstat.h"
#include "signals.h"
#include "telemetry.h"

#ifndef SY_VERSION
#define SY_VERSION "0.0.0"
#endif

/* Held for writing by a reload; readers only ever try it. */
static pthread_rwlock_t graph_lock = PTHREAD_RWLOCK_INITIALIZER;

void sy__status_graph_lock(void)
{
    pthread_rwlock_wrlock(&graph_lock);
}

void sy__status_graph_unlock(void)
{
    pthread_rwlock_unlock(&graph_lock);
}

/* ---- small writers ------------------------------------------------------------ */

/* Writes `"key":` preceded by a comma unless it is the first member. */
static void put_key(FILE *f, bool *first, const char *key)
{
    if (!*first) fputc(',', f);
    *first = false;
    sy__json_str(f, key);
    fputc(':', f);
}

static void put_int(FILE *f, bool *first, const char *key, int64_t v)
{
    put_key(f, first, key);
    fprintf(f, "%" PRId64, v);
}

static void put_double(FILE *f, bool *first, const char *key, double v)
{
    put_key(f, first, key);
    fprintf(f, "%.3f", v);
}

static void put_bool(FILE *f, bool *first, const char *key, bool v)
{
    put_key(f, first, key);
    fputs(v ? "true" : "false", f);
}

static void put_str(FILE *f, bool *first, const char *key, const char *v)
{
    put_key(f, first, key);
    sy__json_str(f, v);
}

/* A counter, left out when the metric was never registered (that signal does
 * not flow through the component). */
static void put_metric(FILE *f, bool *first, const char *key, const sy_metric_t *m)
{
    if (m) put_int(f, first, key, sy__metric_value(m));
}

/* RFC 3339 UTC with milliseconds, as the log lines write it. */
static void format_time(int64_t unix_ms, char *buf, size_t cap)
{
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

/* "errors": the component's last warnings and errors, oldest first. */
static void put_errors(FILE *f, bool *first, const char *component)
{
    sy__log_recent_t rec[SY__LOG_RECENT_PER_COMPONENT];
    size_t n = sy__log_recent(component, rec, SY__LOG_RECENT_PER_COMPONENT);
    put_key(f, first, "errors");
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        char when[64];
        format_time(rec[i].time_unix_ms, when, sizeof when);
        bool f1 = true;
        fputs(i ? ",{" : "{", f);
        put_str(f, &f1, "time", when);
        put_int(f, &f1, "time_unix_ms", rec[i].time_unix_ms);
        put_str(f, &f1, "level", sy__log_level_name(rec[i].level));
        put_str(f, &f1, "message", rec[i].message);
        fputc('}', f);
    }
    fputc(']', f);
}

/* ---- the graph ----------------------------------------------------------------- */

/* "queue": a core queue's fill, as the queue_size / queue_capacity gauges show it,
 * the number of batches at which it refuses more (a pipeline's ring keeps spare
 * slots above that, see runtime.c), and the items and bytes of the batches in it. */
static void put_queue(FILE *f, bool *first, const sy__mpmc_t *q, size_t limit,
                      const _Atomic int64_t *items)
{
    bool f1 = true;
    put_key(f, first, "queue");
    fputc('{', f);
    put_int(f, &f1, "size", (int64_t)sy__mpmc_size(q));
    put_int(f, &f1, "capacity", (int64_t)sy__mpmc_capacity(q));
    put_int(f, &f1, "limit", (int64_t)limit);
    put_int(f, &f1, "items", atomic_load_explicit(items, memory_order_relaxed));
    put_int(f, &f1, "bytes", sy__mpmc_weight(q));
    fputc('}', f);
}

/* "signals": per signal, the component's counters under the names of its own
 * metrics (receiver_accepted_<items> is "accepted", ...). */
static void put_signal_counters(FILE *f, bool *first, const sy_instance_t *x)
{
    const char *ok = x->kind == SY_KIND_RECEIVER   ? "accepted"
                     : x->kind == SY_KIND_EXPORTER ? "sent"
                                                   : "consumed";
    const char *failed = x->kind == SY_KIND_RECEIVER   ? "refused"
                         : x->kind == SY_KIND_EXPORTER ? "send_failed"
                                                       : "failed";
    bool f1 = true;
    put_key(f, first, "signals");
    fputc('{', f);
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        const sy__signal_metrics_t *m = &x->metrics[i];
        if (!m->ok && !m->failed && !m->enqueue_failed && !m->emitted) continue;
        bool f2 = true;
        put_key(f, &f1, syc_signal_table[i].name);
        fputc('{', f);
        put_str(f, &f2, "items", syc_signal_table[i].item_metric);
        put_metric(f, &f2, ok, m->ok);
        put_metric(f, &f2, failed, m->failed);
        put_metric(f, &f2, "enqueue_failed", m->enqueue_failed);
        put_metric(f, &f2, "emitted", m->emitted);
        fputc('}', f);
    }
    fputc('}', f);
}

/* {"kind":..,"id":..}: a reference from a pipeline to a shared component. */
static void put_ref(FILE *f, bool comma, const sy_instance_t *x)
{
    bool f1 = true;
    fputs(comma ? ",{" : "{", f);
    put_str(f, &f1, "kind", sy__kind_name(x->kind));
    put_str(f, &f1, "id", x->id);
    fputc('}', f);
}

/* A processor: its pipeline owns it, so it is written in the pipeline. */
static void put_processor(FILE *f, bool comma, const sy_instance_t *x, bool counters)
{
    bool f1 = true;
    fputs(comma ? ",{" : "{", f);
    put_str(f, &f1, "kind", "processor");
    put_str(f, &f1, "id", x->id);
    put_str(f, &f1, "type", x->plugin->type);
    put_bool(f, &f1, "mutates_data", (x->plugin->flags & SY_PLUGIN_MUTATES_DATA) != 0);
    if (counters) {
        const sy__processor_metrics_t *m = &x->proc.pmetrics;
        put_str(f, &f1, "items", syc_signal_info(x->proc.pipeline->signal)->item_metric);
        put_metric(f, &f1, "incoming", m->incoming);
        put_metric(f, &f1, "outgoing", m->outgoing);
        put_metric(f, &f1, "refused", m->refused);
        put_metric(f, &f1, "dropped", m->dropped);
    }
    put_errors(f, &f1, x->id);
    fputc('}', f);
}

static void put_pipeline(FILE *f, bool comma, const sy__pipeline_t *p, bool counters)
{
    bool f1 = true;
    fputs(comma ? ",{" : "{", f);
    put_str(f, &f1, "id", p->id);
    put_str(f, &f1, "signal", syc_signal_info(p->signal)->name);
    if (counters && p->queue_ready) put_queue(f, &f1, &p->in, p->in_limit, &p->in_items);
    /* Receivers in configuration order: receivers and the connectors that feed
     * it are found through what they feed, as the engine links them. */
    put_key(f, &f1, "receivers");
    fputc('[', f);
    const sy__engine_t *e = p->engine;
    bool any = false;
    for (size_t i = 0; i < p->cfg->nreceivers; i++) {
        for (size_t j = 0; j < e->ninstances; j++) {
            const sy_instance_t *x = e->instances[j];
            if ((x->kind != SY_KIND_RECEIVER && x->kind != SY_KIND_CONNECTOR) ||
                strcmp(x->id, p->cfg->receivers[i]) != 0)
                continue;
            for (size_t k = 0; k < x->recv.noutputs; k++) {
                if (x->recv.outputs[k] != p) continue;
                put_ref(f, any, x);
                any = true;
                break;
            }
        }
    }
    fputc(']', f);
    put_key(f, &f1, "processors");
    fputc('[', f);
    for (size_t i = 0; i < p->nprocessors; i++)
        put_processor(f, i > 0, p->processors[i], counters);
    fputc(']', f);
    put_key(f, &f1, "exporters");
    fputc('[', f);
    for (size_t i = 0; i < p->nexporters; i++)
        put_ref(f, i > 0, p->exporters[i]);
    fputc(']', f);
    fputc('}', f);
}

/* Receivers, exporters, connectors and extensions: one entry each, however
 * many pipelines share it. */
static void put_component(FILE *f, bool comma, const sy_instance_t *x, bool counters)
{
    bool f1 = true;
    fputs(comma ? ",{" : "{", f);
    put_str(f, &f1, "kind", sy__kind_name(x->kind));
    put_str(f, &f1, "id", x->id);
    put_str(f, &f1, "type", x->plugin->type);
    put_str(f, &f1, "version", x->plugin->version ? x->plugin->version : "");
    put_key(f, &f1, "pipelines");
    fputc('[', f);
    bool any = false;
    const sy__engine_t *e = x->engine;
    for (size_t i = 0; i < e->npipelines; i++) {
        const sy__pipeline_t *p = e->pipelines[i];
        bool in = false;
        for (size_t k = 0; k < x->recv.noutputs && !in; k++)
            in = x->recv.outputs[k] == p;
        for (size_t k = 0; k < p->nexporters && !in; k++)
            in = p->exporters[k] == x;
        if (!in) continue;
        if (any) fputc(',', f);
        sy__json_str(f, p->id);
        any = true;
    }
    fputc(']', f);
    if (counters && x->kind != SY_KIND_EXTENSION) put_signal_counters(f, &f1, x);
    bool has_queue = x->kind == SY_KIND_EXPORTER || x->kind == SY_KIND_CONNECTOR;
    if (counters && has_queue && x->exp.queue_ready)
        put_queue(f, &f1, &x->exp.queue, sy__mpmc_capacity(&x->exp.queue), &x->exp.queue_items);
    put_errors(f, &f1, x->id);
    fputc('}', f);
}

/*
 * Writes "pipelines" and "components". The only function here that reads the
 * engine (the helpers above read what it hands them, within its call): a reload
 * wraps this call in its lock.
 */
static void status_write_graph(FILE *f, bool *first, const sy__engine_t *e, bool counters)
{
    put_key(f, first, "pipelines");
    fputc('[', f);
    for (size_t i = 0; i < e->npipelines; i++)
        put_pipeline(f, i > 0, e->pipelines[i], counters);
    fputc(']', f);
    put_key(f, first, "components");
    fputc('[', f);
    bool any = false;
    for (size_t i = 0; i < e->ninstances; i++) {
        const sy_instance_t *x = e->instances[i];
        if (x->kind == SY_KIND_PROCESSOR) continue; /* in their pipelines */
        put_component(f, any, x, counters);
        any = true;
    }
    fputc(']', f);
}

/* ---- the document ----------------------------------------------------------------- */

static const char *status_name(sy_status_t s)
{
    switch (s) {
    case SY_STATUS_READY:
        return "ready";
    case SY_STATUS_STOPPING:
        return "stopping";
    default:
        return "starting";
    }
}

static void put_service(FILE *f, bool *first, sy_status_t status, const sy__procstat_t *ps,
                        double now)
{
    bool f1 = true;
    char abi[16], when[64];
    snprintf(abi, sizeof abi, "%d.%d", SY_ABI_MAJOR, SY_ABI_MINOR);
    put_key(f, first, "service");
    fputc('{', f);
    put_str(f, &f1, "name", "switchyard");
    put_str(f, &f1, "version", SY_VERSION);
    put_str(f, &f1, "abi", abi);
    put_str(f, &f1, "status", status_name(status));
    put_int(f, &f1, "pid", (int64_t)getpid());
    put_str(f, &f1, "log_level", sy__log_level_name(sy__log_level()));
    format_time((int64_t)(now * 1000), when, sizeof when);
    put_str(f, &f1, "time", when);
    put_int(f, &f1, "time_unix_ms", (int64_t)(now * 1000));
    if (ps->start_time_seconds > 0) {
        format_time((int64_t)(ps->start_time_seconds * 1000), when, sizeof when);
        put_str(f, &f1, "start_time", when);
        put_int(f, &f1, "start_time_unix_ms", (int64_t)(ps->start_time_seconds * 1000));
        put_double(f, &f1, "uptime_seconds", now - ps->start_time_seconds);
    }
    put_errors(f, &f1, NULL);
    fputc('}', f);
}

static void put_process(FILE *f, bool *first, const sy__procstat_t *ps)
{
    bool f1 = true;
    put_key(f, first, "process");
    fputc('{', f);
    put_int(f, &f1, "rss_bytes", (int64_t)ps->rss_bytes);
    put_double(f, &f1, "cpu_seconds", ps->cpu_user_seconds + ps->cpu_system_seconds);
    put_double(f, &f1, "cpu_user_seconds", ps->cpu_user_seconds);
    put_double(f, &f1, "cpu_system_seconds", ps->cpu_system_seconds);
    put_int(f, &f1, "queue_bytes", sy__queue_weight_total());
    put_int(f, &f1, "queue_budget_bytes", sy__queue_budget());
    fputc('}', f);
}

int sy__status_json(sy_instance_t *inst, char **out, size_t *len)
{
    if (out) *out = NULL;
    if (!inst || !out) return SY_EINVAL;
    sy__procstat_t ps;
    sy__procstat_read(&ps);
    double now = sy__procstat_now();
    if (pthread_rwlock_tryrdlock(&graph_lock) != 0) return SY_EAGAIN; /* reloading */
    char *buf = NULL;
    size_t size = 0;
    FILE *f = inst->engine ? open_memstream(&buf, &size) : NULL;
    if (!f) {
        pthread_rwlock_unlock(&graph_lock);
        return inst->engine ? SY_ENOMEM : SY_EINVAL;
    }
    /* Acquire: pairs with the release store of the status, after which the
     * counters and queues that start registered are there to read. */
    sy_status_t status = sy__engine_status();
    bool first = true;
    fputc('{', f);
    put_int(f, &first, "schema", 1);
    put_service(f, &first, status, &ps, now);
    put_process(f, &first, &ps);
    status_write_graph(f, &first, inst->engine, status != SY_STATUS_STARTING);
    pthread_rwlock_unlock(&graph_lock);
    fputs("}", f);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed || !buf) {
        free(buf);
        return SY_ENOMEM;
    }
    *out = buf;
    if (len) *len = size;
    return SY_OK;
}
