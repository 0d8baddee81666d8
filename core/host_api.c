/*
 * host_api.c - the table of host functions handed to every plugin.
 *
 * Each entry is a thin, checked bridge to a core module; the table is filled with
 * designated initializers so that a new entry can only be added at its end.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cow.h"
#include "engine.h"
#include "log.h"
#include "arena.h"
#include "settle.h"
#include "status_json.h"
#include "telemetry.h"
#include "view.h"
#include "view_internal.h"

static _Atomic int engine_status = SY_STATUS_STARTING;

sy_status_t sy__engine_status(void)
{
    return (sy_status_t)atomic_load_explicit(&engine_status, memory_order_acquire);
}

void sy__engine_set_status(sy_status_t s)
{
    atomic_store_explicit(&engine_status, (int)s, memory_order_release);
}

/* ---- logging and the instance ---------------------------------------------- */

static bool api_log_enabled(const sy_instance_t *inst, sy_log_level_t level)
{
    (void)inst;
    return sy__log_enabled(level);
}

static void api_log(const sy_instance_t *inst, sy_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__vlog(inst ? inst->id : NULL, level, fmt, ap);
    va_end(ap);
}

static const char *api_instance_id(const sy_instance_t *inst)
{
    return inst->id;
}

static void *api_loop(const sy_instance_t *inst)
{
    return inst->thread ? &inst->thread->loop : NULL;
}

static uint32_t api_signals(const sy_instance_t *inst)
{
    return inst->signals;
}

/* ---- raw configuration nodes ------------------------------------------------- */

static int api_cfg_kind(const sy_cfg_node_t *node)
{
    return node ? node->kind : SY__CFG_NULL;
}

static const char *api_cfg_scalar(const sy_cfg_node_t *node)
{
    return node && node->kind == SY__CFG_SCALAR ? node->scalar : NULL;
}

static size_t api_cfg_len(const sy_cfg_node_t *node)
{
    return node && (node->kind == SY__CFG_MAP || node->kind == SY__CFG_LIST) ? node->len : 0;
}

static const sy_cfg_node_t *api_cfg_at(const sy_cfg_node_t *node, size_t i, const char **key)
{
    return node ? sy__cfg_at(node, i, key) : NULL;
}

static const sy_cfg_node_t *api_cfg_get(const sy_cfg_node_t *node, const char *key)
{
    return node ? sy__cfg_get(node, key) : NULL;
}

static const char *api_cfg_where(const sy_cfg_node_t *node)
{
    return node ? sy__cfg_where(node) : "";
}

static bool api_cfg_quoted(const sy_cfg_node_t *node)
{
    return node && node->kind == SY__CFG_SCALAR && node->quoted;
}

/* ---- values a plugin encodes ---------------------------------------------------- */

/* The container as the view would hand it out (priv, priv_len, priv_kind), its
 * entries counted, which also checks that every one of them parses. */
static int api_value_container(sy_value_type_t type, const uint8_t *content, size_t len,
                               sy_value_t *out)
{
    if (!out || (type != SY_VALUE_ARRAY && type != SY_VALUE_MAP) || (!content && len) ||
        len > UINT32_MAX)
        return SY_EINVAL;
    static const uint8_t none[1];
    memset(out, 0, sizeof(*out));
    out->type = type;
    out->str = "";
    out->bytes = content ? content : none;
    out->priv = out->bytes;
    out->priv_len = (uint32_t)len;
    out->priv_kind = type == SY_VALUE_ARRAY ? SY__PK_ANYARRAY : SY__PK_KVLIST;
    sy_value_iter_t it = {.value = out};
    sy_value_t k, v;
    size_t n = 0;
    int rc;
    while ((rc = sy__view_value_next(&it, &k, &v)) > 0)
        n++;
    if (rc < 0) return SY_EINVAL;
    out->len = n;
    return 0;
}

/* ---- batches ------------------------------------------------------------------ */

static sy_batch_t *api_batch_new(sy_instance_t *inst, sy_signal_t signal)
{
    return sy__batch_new(signal, inst ? inst->id : NULL);
}

static void *api_batch_allocator(sy_batch_t *b)
{
    return sy__batch_allocator(b);
}

static sy_batch_t *api_batch_merge(sy_instance_t *inst, sy_batch_t *const *batches, size_t n)
{
    return sy__batch_merge(inst ? inst->id : NULL, batches, n);
}

static sy_batch_t *api_batch_split(sy_instance_t *inst, sy_batch_t **batch, uint64_t max_items)
{
    return sy__batch_split(inst ? inst->id : NULL, batch, max_items);
}

/* ---- data flow ------------------------------------------------------------------- */

static int api_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    switch (inst->kind) {
    case SY_KIND_RECEIVER:
        return sy__receiver_emit(inst, batch);
    case SY_KIND_PROCESSOR:
        return sy__processor_emit(inst, batch);
    case SY_KIND_CONNECTOR:
        return sy__connector_emit(inst, batch, NULL, 0);
    default:
        return SY_ENOTSUP;
    }
}

static int api_emit_to(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines,
                       size_t n)
{
    if (inst->kind != SY_KIND_CONNECTOR) return SY_ENOTSUP;
    return sy__connector_emit(inst, batch, pipelines, n);
}

static size_t api_connector_pipelines(sy_instance_t *inst, sy_signal_t signal, const char **ids,
                                      size_t max)
{
    if (inst->kind != SY_KIND_CONNECTOR) return 0;
    return sy__connector_pipelines(inst, signal, ids, max);
}

static void api_ready(sy_instance_t *inst)
{
    if (inst->kind == SY_KIND_EXPORTER || inst->kind == SY_KIND_CONNECTOR) sy__exporter_ready(inst);
}

static void api_queue_budget_limit(sy_instance_t *inst, uint64_t bytes)
{
    if (inst->kind != SY_KIND_PROCESSOR) return;
    sy__queue_budget_limit(bytes > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)bytes);
}

static void api_pipeline_refuse(sy_instance_t *inst, bool refuse)
{
    if (inst->kind != SY_KIND_PROCESSOR) return;
    sy__processor_refuse(inst, refuse);
    /* A limiter refuses for memory: the arena's chunk cache (up to 16 MiB kept
     * for the next batches) is given back first. */
    if (refuse) sy__arena_cache_trim();
}

static void api_exporter_outcome(sy_instance_t *inst, sy_signal_t signal, uint64_t items, bool sent)
{
    if (inst->kind == SY_KIND_EXPORTER || inst->kind == SY_KIND_CONNECTOR)
        sy__exporter_outcome(inst, signal, items, sent);
}

/* ---- extension interfaces ------------------------------------------------------------ */

/* Looks the extension up among the engine's instances: it must have started (so
 * its start() wrote what the interface reads; the engine's cross-thread call that
 * ran it orders that before this caller's create or start). */
static const void *api_extension_get(sy_instance_t *inst, const char *extension_id,
                                     const char *name)
{
    if (!inst || !inst->engine || !extension_id || !name) return NULL;
    sy__engine_t *e = inst->engine;
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind != SY_KIND_EXTENSION || strcmp(x->id, extension_id) != 0) continue;
        if (!x->started || !x->plugin->extension_interface) return NULL;
        return x->plugin->extension_interface(x->state, name);
    }
    return NULL;
}

/* ---- timers ------------------------------------------------------------------------ */

struct sy_timer_s {
    uv_timer_t handle;
    sy_instance_t *inst;
    sy_timer_cb cb;
    void *arg;
    struct sy_timer_s *next;
};

/* The instance is current while its callback runs, so that a batch processor
 * flushing from its timer is held to its own flags (cow.h). `t` may be stopped,
 * and later freed, inside the callback: nothing of it is read afterwards. */
static void timer_fire(uv_timer_t *h)
{
    struct sy_timer_s *t = h->data;
    sy_instance_t *prev = sy__consumer_enter(t->inst);
    t->cb(t->arg);
    sy__consumer_leave(prev);
}

static void timer_free(uv_handle_t *h)
{
    free(h->data);
}

static sy_timer_t *api_timer_start(sy_instance_t *inst, uint64_t timeout_ms, uint64_t repeat_ms,
                                   sy_timer_cb cb, void *arg)
{
    if (!inst->thread || !cb) return NULL;
    struct sy_timer_s *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    if (uv_timer_init(&inst->thread->loop, &t->handle) != 0) {
        free(t);
        return NULL;
    }
    t->handle.data = t;
    t->inst = inst;
    t->cb = cb;
    t->arg = arg;
    uv_timer_start(&t->handle, timer_fire, timeout_ms, repeat_ms);
    t->next = inst->timers;
    inst->timers = t;
    return t;
}

static void api_timer_stop(sy_timer_t *t)
{
    if (!t) return;
    for (struct sy_timer_s **pp = &t->inst->timers; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, timer_free);
}

void sy__instance_close_timers(sy_instance_t *inst)
{
    while (inst->timers)
        api_timer_stop(inst->timers);
}

/* ---- the view ------------------------------------------------------------------------ */

static sy_view_builder_t *api_view_build(sy_instance_t *inst, sy_signal_t signal)
{
    return sy__view_build(inst ? inst->id : NULL, signal);
}

/* ---- metrics ------------------------------------------------------------------------ */

static sy_metric_t *api_metric_register(sy_instance_t *inst, const char *name, const char *help,
                                        sy_metric_type_t type)
{
    return sy__metric_register(name, help, type, inst ? inst->labels : NULL);
}

static sy_labelled_metric_t *api_metric_register_labelled(sy_instance_t *inst, const char *name,
                                                          const char *help, sy_metric_type_t type,
                                                          const char *const *label_names, size_t n)
{
    return sy__metric_register_labelled(name, help, type, inst ? inst->labels : NULL, label_names,
                                        n);
}

static sy_settle_t *api_settle_new(sy_instance_t *inst, void (*done)(void *ud, int status),
                                   void *ud)
{
    (void)inst;
    return sy__settle_new(done, ud);
}

static void api_settle_release(sy_settle_t *t)
{
    sy__settle_drop(t, SY_OK);
}

static const sy_host_api_t host_api = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_host_api_t),
    .log_enabled = api_log_enabled,
    .log = api_log,
    .instance_id = api_instance_id,
    .loop = api_loop,
    .status = sy__engine_status,
    .signals = api_signals,
    .cfg_kind = api_cfg_kind,
    .cfg_scalar = api_cfg_scalar,
    .cfg_len = api_cfg_len,
    .cfg_at = api_cfg_at,
    .cfg_get = api_cfg_get,
    .cfg_where = api_cfg_where,
    .batch_new = api_batch_new,
    .batch_alloc = sy__batch_alloc,
    .batch_allocator = api_batch_allocator,
    .batch_set_encoded = sy__batch_set_encoded,
    .batch_set_decoded = sy__batch_set_decoded,
    .batch_retain = sy__batch_retain,
    .batch_release = sy__batch_release,
    .batch_info = sy__batch_info,
    .batch_request = sy__batch_request,
    .batch_request_mut = sy__cow_request_mut,
    .batch_recount = sy__batch_recount,
    .batch_encoded = sy__batch_encoded,
    .batch_merge = api_batch_merge,
    .batch_split = api_batch_split,
    .emit = api_emit,
    .ready = api_ready,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .metric_register = api_metric_register,
    .metric_add = sy__metric_add,
    .metric_set = sy__metric_set,
    .exporter_outcome = api_exporter_outcome,
    /* ABI 1.1: the view */
    .view_open = sy__view_open,
    .view_close = sy__view_close,
    .view_root = sy__view_root,
    .view_kind = sy__view_kind,
    .view_parent = sy__view_parent_api,
    .view_count = sy__view_count,
    .view_at = sy__view_at,
    .view_get = sy__view_get,
    .view_attr_count = sy__view_attr_count,
    .view_attr_at = sy__view_attr_at,
    .view_attr_get = sy__view_attr_get,
    .view_value_next = sy__view_value_next,
    .view_set = sy__view_set,
    .view_attr_set = sy__view_attr_set,
    .view_attr_delete = sy__view_attr_delete,
    .view_attr_rename = sy__view_attr_rename,
    .view_drop = sy__view_drop,
    .view_commit = sy__view_commit,
    .view_build = api_view_build,
    .view_build_add = sy__view_build_add,
    .view_build_finish = sy__view_build_finish,
    .view_build_abort = sy__view_build_abort,
    .pipeline_refuse = api_pipeline_refuse,
    .cfg_quoted = api_cfg_quoted,
    .value_container = api_value_container,
    .emit_to = api_emit_to,
    .connector_pipelines = api_connector_pipelines,
    .extension_get = api_extension_get,
    .queue_budget_limit = api_queue_budget_limit,
    /* ABI 1.5 */
    .status_json = sy__status_json,
    /* ABI 1.6 */
    .batch_pieces = sy__batch_pieces,
    .settle_new = api_settle_new,
    .settle_attach = sy__settle_attach,
    .settle_release = api_settle_release,
    .settle_wanted = sy__settle_wanted,
    .settle_durable = sy__settle_durable,
    /* ABI 1.7 */
    .metric_register_labelled = api_metric_register_labelled,
    .metric_series = sy__metric_series,
    .batch_set_compressed = sy__batch_set_compressed,
    .batch_compressed_pieces = sy__batch_compressed_pieces,
    /* ABI 1.8 */
    .emit_may_wait = sy__receiver_may_wait,
    .compressed_wanted = sy__receiver_compressed_wanted,
};

const sy_host_api_t *sy__host_api(void)
{
    return &host_api;
}
