/*
 * plugintest.c - switchyard/plugintest.h: one plugin instance hosted on the
 * caller's thread.
 *
 * The plugin is loaded, its table checked and its configuration filled by the
 * router's own code (loader.c, config_fill.c), so what passes here passes in the
 * router. The instance is a real sy_instance_t, so the host functions that only
 * read its ID (batches, the view, copy-on-write) are the router's own; the
 * harness hands the plugin a copy of the host table in which the functions that
 * reach the engine (emit, ready, outcomes, timers, metrics, logs, the loop) are
 * its own: emitted batches are collected, metrics and log lines kept per
 * harness, and timers run on a fake clock. Nothing here touches the engine, so
 * several harnesses may live in one process (one per thread).
 */
#include <switchyard/plugintest.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "cow.h"
#include "engine.h"
#include "loader.h"
#include "otlp_json.h"
#include "signals.h"

#define PT_API __attribute__((visibility("default")))

struct sy_metric_s {
    char *name;
    _Atomic int64_t value;
    struct sy_metric_s *next;
};

/* A labelled metric: its series are metrics named name{k="v",...} (values not
 * escaped), so that sy_pt_metric() finds them by that string. */
struct sy_labelled_metric_s {
    sy_pt_t *h;
    char *name;
    char **names;
    size_t n;
    struct sy_labelled_metric_s *next;
};

struct sy_timer_s {
    sy_pt_t *h;
    uint64_t due, repeat;
    sy_timer_cb cb;
    void *arg;
    bool stopped; /* stopped from inside its own callback: freed after it returns */
    struct sy_timer_s *next;
};

typedef struct pt_line_s {
    sy_log_level_t level;
    char *text;
} pt_line_t;

struct sy_pt_s {
    sy_host_api_t api; /* first: host functions find the harness from the instance */
    struct sy_instance_s inst;
    sy__plugin_file_t file;
    sy_cfg_node_t *root; /* the parsed snippet (SY_CFG_RAW fields point into it) */
    void *config;
    void *state;
    bool created, started, shut;
    uv_loop_t loop;

    int emit_rc;
    sy_batch_t **emitted;
    size_t nemitted, cap_emitted;
    uint64_t outcome[3][2];
    uint64_t ready_calls;

    struct sy_metric_s *metrics;
    struct sy_labelled_metric_s *labelled;
    pt_line_t *lines;
    size_t nlines, cap_lines;
    sy_log_level_t log_level;
    bool echo;

    uint64_t now;
    struct sy_timer_s *timers;
    struct sy_timer_s *firing;
};

/* The instance is the harness's own member, so its address leads back. */
static sy_pt_t *of(const sy_instance_t *inst)
{
    return (sy_pt_t *)((char *)inst - offsetof(sy_pt_t, inst));
}

/* ---- the host functions the harness replaces ------------------------------ */

static bool pt_log_enabled(const sy_instance_t *inst, sy_log_level_t level)
{
    return inst ? level >= of(inst)->log_level : true;
}

static void pt_log(const sy_instance_t *inst, sy_log_level_t level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (!inst) {
        fprintf(stderr, "plugintest: %s\n", buf);
        return;
    }
    sy_pt_t *h = of(inst);
    if (h->echo) fprintf(stderr, "plugintest %s [%d]: %s\n", h->inst.id, (int)level, buf);
    if (h->nlines == h->cap_lines) {
        size_t cap = h->cap_lines ? 2 * h->cap_lines : 16;
        pt_line_t *n = realloc(h->lines, cap * sizeof(*n));
        if (!n) return;
        h->lines = n;
        h->cap_lines = cap;
    }
    char *text = strdup(buf);
    if (!text) return;
    h->lines[h->nlines++] = (pt_line_t){level, text};
}

static void *pt_loop(const sy_instance_t *inst)
{
    return &of(inst)->loop;
}

static int pt_collect(sy_instance_t *inst, sy_batch_t *batch)
{
    sy_pt_t *h = of(inst);
    if (h->emit_rc != SY_OK) return h->emit_rc;
    if (!batch) return SY_EINVAL;
    if (h->nemitted == h->cap_emitted) {
        size_t cap = h->cap_emitted ? 2 * h->cap_emitted : 8;
        sy_batch_t **n = realloc(h->emitted, cap * sizeof(*n));
        if (!n) return SY_ENOMEM;
        h->emitted = n;
        h->cap_emitted = cap;
    }
    h->emitted[h->nemitted++] = batch;
    return SY_OK;
}

static int pt_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    if (inst->kind != SY_KIND_RECEIVER && inst->kind != SY_KIND_PROCESSOR &&
        inst->kind != SY_KIND_CONNECTOR)
        return SY_ENOTSUP;
    return pt_collect(inst, batch);
}

static int pt_emit_to(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines,
                      size_t n)
{
    (void)pipelines;
    (void)n;
    if (inst->kind != SY_KIND_CONNECTOR) return SY_ENOTSUP;
    return pt_collect(inst, batch);
}

static size_t pt_connector_pipelines(sy_instance_t *inst, sy_signal_t signal, const char **ids,
                                     size_t max)
{
    (void)inst;
    (void)signal;
    (void)ids;
    (void)max;
    return 0;
}

static void pt_ready(sy_instance_t *inst)
{
    of(inst)->ready_calls++;
}

static void pt_outcome(sy_instance_t *inst, sy_signal_t signal, uint64_t items, bool sent)
{
    int i = sy__signal_index(signal);
    if (i >= 0) of(inst)->outcome[i][sent ? 1 : 0] += items;
}

static void pt_refuse(sy_instance_t *inst, bool refuse)
{
    (void)inst;
    (void)refuse;
}

static void pt_budget(sy_instance_t *inst, uint64_t bytes)
{
    (void)inst;
    (void)bytes;
}

static const void *pt_extension_get(sy_instance_t *inst, const char *id, const char *name)
{
    (void)inst;
    (void)id;
    (void)name;
    return NULL;
}

static sy_timer_t *pt_timer_start(sy_instance_t *inst, uint64_t timeout_ms, uint64_t repeat_ms,
                                  sy_timer_cb cb, void *arg)
{
    if (!cb) return NULL;
    sy_pt_t *h = of(inst);
    struct sy_timer_s *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    *t = (struct sy_timer_s){h, h->now + timeout_ms, repeat_ms, cb, arg, false, h->timers};
    h->timers = t;
    return t;
}

static void pt_timer_stop(sy_timer_t *t)
{
    if (!t) return;
    sy_pt_t *h = t->h;
    for (struct sy_timer_s **pp = &h->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    if (t == h->firing)
        t->stopped = true;
    else
        free(t);
}

static sy_metric_t *pt_metric_register(sy_instance_t *inst, const char *name, const char *help,
                                       sy_metric_type_t type)
{
    (void)help;
    (void)type;
    sy_pt_t *h = of(inst);
    for (struct sy_metric_s *m = h->metrics; m; m = m->next)
        if (strcmp(m->name, name) == 0) return m;
    struct sy_metric_s *m = calloc(1, sizeof(*m));
    if (!m || !(m->name = strdup(name))) {
        free(m);
        return NULL;
    }
    m->next = h->metrics;
    h->metrics = m;
    return m;
}

static void pt_labelled_free(struct sy_labelled_metric_s *lm)
{
    for (size_t i = 0; lm->names && i < lm->n; i++)
        free(lm->names[i]);
    free(lm->names);
    free(lm->name);
    free(lm);
}

static sy_labelled_metric_t *pt_metric_register_labelled(sy_instance_t *inst, const char *name,
                                                         const char *help, sy_metric_type_t type,
                                                         const char *const *label_names, size_t n)
{
    (void)help;
    (void)type;
    sy_pt_t *h = of(inst);
    struct sy_labelled_metric_s *lm = calloc(1, sizeof(*lm));
    if (!lm) return NULL;
    lm->h = h;
    lm->n = n;
    bool ok = (lm->name = strdup(name)) && (lm->names = calloc(n ? n : 1, sizeof(char *)));
    for (size_t i = 0; ok && i < n; i++)
        ok = (lm->names[i] = strdup(label_names[i])) != NULL;
    if (!ok) {
        pt_labelled_free(lm);
        return NULL;
    }
    lm->next = h->labelled;
    h->labelled = lm;
    return lm;
}

static sy_metric_t *pt_metric_series(sy_labelled_metric_t *lm, const char *const *values)
{
    if (!lm) return NULL;
    char full[2048];
    size_t pos = (size_t)snprintf(full, sizeof(full), "%s{", lm->name);
    for (size_t i = 0; i < lm->n && pos < sizeof(full); i++)
        pos += (size_t)snprintf(full + pos, sizeof(full) - pos, "%s%s=\"%s\"", i ? "," : "",
                                lm->names[i], values[i] ? values[i] : "");
    if (pos + 2 > sizeof(full)) return NULL;
    memcpy(full + pos, "}", 2);
    return pt_metric_register(&lm->h->inst, full, NULL, SY_METRIC_COUNTER);
}

static void pt_metric_add(sy_metric_t *m, int64_t delta)
{
    if (m) atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

static void pt_metric_set(sy_metric_t *m, int64_t value)
{
    if (m) atomic_store_explicit(&m->value, value, memory_order_relaxed);
}

/* ---- opening and closing ---------------------------------------------------- */

static void diag_to_err(sy__diag_t *diag, char *err, size_t err_len)
{
    size_t len = 0;
    err[0] = 0;
    for (size_t i = 0; i < diag->count && len + 1 < err_len; i++) {
        int n = snprintf(err + len, err_len - len, "%s%s", i ? "\n" : "", diag->msgs[i]);
        if (n < 0) break;
        len += (size_t)n;
    }
}

PT_API sy_pt_t *sy_pt_open(const char *path, const char *id, const char *yaml, char *err,
                           size_t err_len)
{
    sy_pt_options_t o = {.path = path, .id = id, .yaml = yaml};
    return sy_pt_open_opts(&o, err, err_len);
}

PT_API sy_pt_t *sy_pt_open_opts(const sy_pt_options_t *o, char *err, size_t err_len)
{
    const char *path = o->path, *id = o->id, *yaml = o->yaml;
    sy_pt_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "plugintest: out of memory");
        return NULL;
    }
    if (uv_loop_init(&h->loop) != 0) {
        free(h);
        snprintf(err, err_len, "plugintest: cannot create a libuv loop");
        return NULL;
    }
    h->echo = getenv("SY_PT_ECHO") != NULL;
    /* As the router does: a write to a socket whose peer went away is an error
     * the plugin handles (EPIPE), not a signal that ends the test. */
    signal(SIGPIPE, SIG_IGN);
    h->log_level = SY_LOG_DEBUG;
    if (sy__plugin_load_path(path, &h->file, err, err_len) < 0) {
        uv_loop_close(&h->loop);
        free(h);
        return NULL;
    }
    const sy_plugin_t *d = &h->file.desc;

    /* The host table: the router's, with what reaches the engine replaced. */
    h->api = *sy__host_api();
    h->api.log_enabled = pt_log_enabled;
    h->api.log = pt_log;
    h->api.loop = pt_loop;
    h->api.emit = pt_emit;
    h->api.ready = pt_ready;
    h->api.timer_start = pt_timer_start;
    h->api.timer_stop = pt_timer_stop;
    h->api.metric_register = pt_metric_register;
    h->api.metric_add = pt_metric_add;
    h->api.metric_set = pt_metric_set;
    h->api.metric_register_labelled = pt_metric_register_labelled;
    h->api.metric_series = pt_metric_series;
    h->api.exporter_outcome = pt_outcome;
    h->api.pipeline_refuse = pt_refuse;
    h->api.emit_to = pt_emit_to;
    h->api.connector_pipelines = pt_connector_pipelines;
    h->api.extension_get = pt_extension_get;
    h->api.queue_budget_limit = pt_budget;

    h->inst.kind = d->kind;
    h->inst.file = &h->file;
    h->inst.plugin = d;
    h->inst.id = strdup(id ? id : d->type);
    char labels[512];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", sy__kind_name(d->kind), id ? id : d->type);
    h->inst.labels = strdup(labels);
    h->inst.signals = o->signals ? o->signals : d->signals;
    h->config = calloc(1, d->config_size ? d->config_size : 1);
    if (!h->inst.id || !h->inst.labels || !h->config) {
        snprintf(err, err_len, "plugintest: out of memory");
        goto fail;
    }

    sy__diag_t diag;
    sy__diag_init(&diag);
    if (yaml && *yaml) {
        h->root = sy__cfg_load_string("plugintest.yaml", yaml, &diag);
        if (!h->root && diag.count) {
            diag_to_err(&diag, err, err_len);
            sy__diag_free(&diag);
            goto fail;
        }
    }
    const sy_cfg_node_t *node = h->root && h->root->kind != SY__CFG_NULL ? h->root : NULL;
    if (sy__cfg_fill(h->inst.id, d->config_fields, d->config_field_count, node, h->config, &diag) <
        0) {
        diag_to_err(&diag, err, err_len);
        sy__diag_free(&diag);
        goto fail;
    }
    sy__diag_free(&diag);
    char msg[512] = "";
    int rc = d->validate ? d->validate(h->config, msg, sizeof(msg)) : SY_OK;
    if (rc == SY_OK && d->validate2)
        rc = d->validate2(&h->api, node && node->kind == SY__CFG_MAP ? node : NULL, h->config, msg,
                          sizeof(msg));
    if (rc < 0) {
        snprintf(err, err_len, "'%s': %s", h->inst.id, msg[0] ? msg : "invalid configuration");
        goto fail;
    }
    h->inst.config = h->config;
    sy_instance_t *prev = sy__consumer_enter(&h->inst);
    rc = d->create(&h->api, &h->inst, h->config, &h->state);
    sy__consumer_leave(prev);
    if (rc < 0) {
        snprintf(err, err_len, "'%s': create() failed (%d)%s%s", h->inst.id, rc,
                 h->nlines ? ": " : "", h->nlines ? h->lines[h->nlines - 1].text : "");
        goto fail;
    }
    h->created = true;
    return h;
fail:
    sy_pt_close(h);
    return NULL;
}

PT_API int sy_pt_start(sy_pt_t *h)
{
    if (!h->created || h->started) return SY_EINVAL;
    const sy_plugin_t *d = &h->file.desc;
    sy_instance_t *prev = sy__consumer_enter(&h->inst);
    int rc = d->start ? d->start(h->state) : SY_OK;
    sy__consumer_leave(prev);
    h->started = rc == SY_OK;
    return rc;
}

static void count_handle(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle)) ++*(size_t *)arg;
}

PT_API size_t sy_pt_shutdown(sy_pt_t *h)
{
    if (h->shut) return 0;
    h->shut = true;
    const sy_plugin_t *d = &h->file.desc;
    sy_instance_t *prev = sy__consumer_enter(&h->inst);
    if (h->started && d->shutdown) d->shutdown(h->state);
    sy__consumer_leave(prev);
    while (h->timers)
        pt_timer_stop(h->timers);
    /* The plugin closes its handles in shutdown(); their close callbacks run here,
     * and an exporter's in-flight work may finish (bounded as the router's stop). */
    for (int i = 0; i < 1000 && uv_loop_alive(&h->loop); i++) {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        if (uv_loop_alive(&h->loop)) uv_sleep(10);
    }
    size_t open = 0;
    uv_walk(&h->loop, count_handle, &open);
    if (open)
        fprintf(stderr, "plugintest: '%s' left %zu libuv handle(s) open after shutdown()\n",
                h->inst.id ? h->inst.id : "?", open);
    return open;
}

PT_API void sy_pt_close(sy_pt_t *h)
{
    if (!h) return;
    const sy_plugin_t *d = &h->file.desc;
    sy_pt_shutdown(h);
    sy_instance_t *prev = sy__consumer_enter(&h->inst);
    if (h->created) d->destroy(h->state);
    sy__consumer_leave(prev);
    sy_pt_emitted_clear(h);
    free(h->emitted);
    if (h->file.loaded) sy__cfg_free_struct(d->config_fields, d->config_field_count, h->config);
    free(h->config);
    sy__cfg_free(h->root);
    for (struct sy_metric_s *m = h->metrics, *n; m; m = n) {
        n = m->next;
        free(m->name);
        free(m);
    }
    for (struct sy_labelled_metric_s *m = h->labelled, *n; m; m = n) {
        n = m->next;
        pt_labelled_free(m);
    }
    for (size_t i = 0; i < h->nlines; i++)
        free(h->lines[i].text);
    free(h->lines);
    free(h->inst.id);
    free(h->inst.labels);
    if (h->file.loaded) sy__plugin_file_free(&h->file);
    if (uv_loop_close(&h->loop) != 0)
        return; /* handles left open: the loop's memory stays with them */
    free(h);
}

PT_API const sy_host_api_t *sy_pt_api(sy_pt_t *h)
{
    return &h->api;
}

PT_API sy_instance_t *sy_pt_instance(sy_pt_t *h)
{
    return &h->inst;
}

PT_API const void *sy_pt_config(sy_pt_t *h)
{
    return h->config;
}

/* ---- feeding ------------------------------------------------------------------ */

static const syc_signal_info_t *signal_of(sy_signal_t signal, char *err, size_t err_len)
{
    const syc_signal_info_t *si = syc_signal_info(signal);
    if (!si) snprintf(err, err_len, "plugintest: %d is not one signal", (int)signal);
    return si;
}

PT_API sy_batch_t *sy_pt_batch_json(sy_pt_t *h, sy_signal_t signal, const char *json, char *err,
                                    size_t err_len)
{
    const syc_signal_info_t *si = signal_of(signal, err, err_len);
    if (!si) return NULL;
    sy_batch_t *b = sy__batch_new(signal, "plugintest");
    if (!b) {
        snprintf(err, err_len, "plugintest: out of memory");
        return NULL;
    }
    (void)h;
    size_t len = 0;
    uint8_t *wire = syc_otlp_json_to_wire(si->request, (const uint8_t *)json, strlen(json),
                                          sy__batch_allocator(b), &len, err, err_len);
    if (!wire || sy__batch_set_encoded(b, wire, len, err, err_len) < 0) {
        sy__batch_release(b);
        return NULL;
    }
    return b;
}

PT_API sy_batch_t *sy_pt_batch_proto(sy_pt_t *h, sy_signal_t signal, const void *bytes, size_t len,
                                     char *err, size_t err_len)
{
    (void)h;
    if (!signal_of(signal, err, err_len)) return NULL;
    sy_batch_t *b = sy__batch_new(signal, "plugintest");
    uint8_t *copy = b ? sy__batch_alloc(b, len ? len : 1) : NULL;
    if (!copy) {
        if (b) sy__batch_release(b);
        snprintf(err, err_len, "plugintest: out of memory");
        return NULL;
    }
    if (len) memcpy(copy, bytes, len);
    if (sy__batch_set_encoded(b, copy, len, err, err_len) < 0) {
        sy__batch_release(b);
        return NULL;
    }
    return b;
}

PT_API int sy_pt_consume(sy_pt_t *h, sy_batch_t *batch)
{
    const sy_plugin_t *d = &h->file.desc;
    if (!batch) return SY_EINVAL;
    if (!d->consume || !h->created) {
        sy__batch_release(batch);
        return SY_ENOTSUP;
    }
    sy_instance_t *prev = sy__consumer_enter(&h->inst);
    int rc = d->consume(h->state, batch);
    sy__consumer_leave(prev);
    if (rc != SY_OK) sy__batch_release(batch);
    return rc;
}

PT_API int sy_pt_consume_json(sy_pt_t *h, sy_signal_t signal, const char *json)
{
    char err[512];
    sy_batch_t *b = sy_pt_batch_json(h, signal, json, err, sizeof(err));
    if (!b) {
        fprintf(stderr, "plugintest: %s\n", err);
        return SY_EINVAL;
    }
    return sy_pt_consume(h, b);
}

/* ---- what it emitted ------------------------------------------------------------ */

PT_API void sy_pt_set_emit_result(sy_pt_t *h, int rc)
{
    h->emit_rc = rc;
}

PT_API size_t sy_pt_emitted_count(sy_pt_t *h)
{
    return h->nemitted;
}

PT_API sy_batch_t *sy_pt_emitted(sy_pt_t *h, size_t i)
{
    return i < h->nemitted ? h->emitted[i] : NULL;
}

PT_API char *sy_pt_emitted_json(sy_pt_t *h, size_t i)
{
    if (i >= h->nemitted) return NULL;
    sy_batch_info_t info;
    sy__batch_info(h->emitted[i], &info);
    const syc_signal_info_t *si = syc_signal_info(info.signal);
    size_t len = 0, jlen = 0;
    const uint8_t *wire = si ? sy__batch_encoded(h->emitted[i], &len) : NULL;
    if (!wire) return NULL;
    return syc_otlp_json_from_wire(si->request, wire, len, &jlen, NULL);
}

PT_API uint64_t sy_pt_emitted_items(sy_pt_t *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i < h->nemitted; i++) {
        sy_batch_info_t info;
        sy__batch_info(h->emitted[i], &info);
        n += info.items;
    }
    return n;
}

PT_API void sy_pt_emitted_clear(sy_pt_t *h)
{
    for (size_t i = 0; i < h->nemitted; i++)
        sy__batch_release(h->emitted[i]);
    h->nemitted = 0;
}

/* ---- exporters, metrics, logs ------------------------------------------------------ */

PT_API uint64_t sy_pt_outcome(sy_pt_t *h, sy_signal_t signal, bool sent)
{
    int i = sy__signal_index(signal);
    return i < 0 ? 0 : h->outcome[i][sent ? 1 : 0];
}

PT_API uint64_t sy_pt_ready_calls(sy_pt_t *h)
{
    return h->ready_calls;
}

PT_API int sy_pt_metric(sy_pt_t *h, const char *name, int64_t *value)
{
    for (struct sy_metric_s *m = h->metrics; m; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            *value = atomic_load_explicit(&m->value, memory_order_relaxed);
            return SY_OK;
        }
    }
    return SY_EINVAL;
}

PT_API size_t sy_pt_log_count(sy_pt_t *h, sy_log_level_t level, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nlines; i++)
        if (h->lines[i].level >= level && (!needle || strstr(h->lines[i].text, needle))) n++;
    return n;
}

PT_API const char *sy_pt_log_line(sy_pt_t *h, size_t i, sy_log_level_t *level)
{
    if (i >= h->nlines) return NULL;
    if (level) *level = h->lines[i].level;
    return h->lines[i].text;
}

PT_API void sy_pt_log_config(sy_pt_t *h, sy_log_level_t level, bool echo)
{
    h->log_level = level;
    h->echo = echo;
}

/* ---- time ---------------------------------------------------------------------------- */

PT_API uint64_t sy_pt_now_ms(sy_pt_t *h)
{
    return h->now;
}

PT_API size_t sy_pt_advance(sy_pt_t *h, uint64_t ms)
{
    uint64_t until = h->now + ms;
    size_t fired = 0;
    for (;;) {
        /* The earliest due timer; the first started wins a tie (the list is newest
         * first, so the last of equal ones found). */
        struct sy_timer_s *next = NULL;
        for (struct sy_timer_s *t = h->timers; t; t = t->next)
            if (t->due <= until && (!next || t->due <= next->due)) next = t;
        if (!next) break;
        h->now = next->due;
        if (next->repeat)
            next->due += next->repeat;
        else
            next->due = UINT64_MAX; /* fired once; stays until timer_stop() */
        h->firing = next;
        sy_instance_t *prev = sy__consumer_enter(&h->inst);
        next->cb(next->arg);
        sy__consumer_leave(prev);
        h->firing = NULL;
        if (next->stopped) free(next);
        fired++;
    }
    h->now = until;
    return fired;
}

PT_API size_t sy_pt_timer_count(sy_pt_t *h)
{
    size_t n = 0;
    for (struct sy_timer_s *t = h->timers; t; t = t->next)
        n++;
    return n;
}

/* ---- real I/O -------------------------------------------------------------------------- */

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

PT_API int sy_pt_run(sy_pt_t *h, int ms, bool (*done)(void *arg), void *arg)
{
    uint64_t end = real_ms() + (uint64_t)(ms > 0 ? ms : 0);
    do {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        if (done && done(arg)) return 1;
        uv_sleep(1);
    } while (real_ms() < end);
    return done && done(arg) ? 1 : 0;
}
