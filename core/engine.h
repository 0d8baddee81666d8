/*
 * engine.h - the running router: instances, pipelines, their threads and queues.
 *
 * Built from a checked configuration in three steps: sy__engine_build() resolves
 * every component to its plugin, fills and validates its configuration and lays
 * out the graph (nothing runs yet; `switchyard validate` stops here);
 * sy__engine_start() creates and starts the instances on their threads, exporters
 * first and receivers last; sy__engine_stop() stops receivers, drains the
 * pipelines and then the exporters, and frees everything.
 */
#ifndef SY_CORE_ENGINE_H
#define SY_CORE_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "config.h"
#include "diag.h"
#include "loader.h"
#include "loop.h"
#include "queue.h"
#include "service_config.h"

typedef struct sy__engine_s sy__engine_t;
typedef struct sy__pipeline_s sy__pipeline_t;

/* Default capacities, in batches, of the queue in front of each pipeline and of
 * each exporter. */
#define SY__PIPELINE_QUEUE_CAPACITY 128
#define SY__EXPORTER_QUEUE_CAPACITY 128
#define SY__EXPORTER_BURST          32
/* A queue holding anything refuses more once it holds this many items. */
#define SY__QUEUE_MAX_ITEMS 65536

/* Metrics kept per signal for one instance (index: sy__signal_index()). */
typedef struct sy__signal_metrics_s {
    sy_metric_t *ok;     /* receiver: accepted; exporter: sent */
    sy_metric_t *failed; /* receiver: refused; exporter: send_failed */
} sy__signal_metrics_t;

typedef struct sy__timer_list_s sy__timer_list_t;

struct sy_instance_s {
    sy__engine_t *engine;
    char *id;     /* "batch/2" */
    char *labels; /* 'processor="batch",pipeline="traces"' */
    sy_kind_t kind;
    sy__plugin_file_t *file;
    const sy_plugin_t *plugin; /* &file->desc */
    const sy__component_cfg_t *cfg;
    void *config;
    bool config_owner; /* processors of several pipelines share one config */
    void *state;
    bool created, started;
    uint32_t signals; /* of the pipelines it is in */

    sy__thread_t *thread; /* its loop thread (a processor's is its pipeline's) */
    sy__thread_t own_thread;
    struct sy_timer_s *timers; /* open timers, closed at shutdown if the plugin forgot */

    /* Receiver: the pipelines it feeds. */
    sy__pipeline_t **outputs;
    size_t noutputs;

    /* Processor: its pipeline and place in the chain. */
    sy__pipeline_t *pipeline;
    size_t index;

    /* Exporter: its input queue, and the burst taken from it but not yet
     * consumed (the first of which it may have declined with SY_EAGAIN). */
    sy__mpmc_t queue;
    _Atomic int64_t queue_items;
    bool queue_ready;
    sy_metric_t *queue_metrics[2]; /* size and capacity gauges */
    void *backlog[SY__EXPORTER_BURST];
    unsigned backlog_pos, backlog_n;
    atomic_bool blocked;

    sy__signal_metrics_t metrics[3];
};

struct sy__pipeline_s {
    sy__engine_t *engine;
    const sy__pipeline_cfg_t *cfg;
    char *id;
    sy_signal_t signal;
    sy__thread_t thread;
    bool thread_started, timer_ready;
    sy__mpmc_t in;
    _Atomic int64_t in_items;
    bool queue_ready;
    sy_metric_t *queue_metrics[2];

    sy_instance_t **processors; /* owned: one instance per pipeline, as otelcol does */
    size_t nprocessors;
    sy_instance_t **exporters; /* shared with other pipelines */
    size_t nexporters;

    /* Batches the last processor emitted that not every exporter queue has taken
     * yet. While any is pending the pipeline takes nothing new from `in`, which is
     * how a full exporter queue pushes back to the receivers. */
    struct sy__pending_s *pending;
    size_t npending, cap_pending;
    uv_timer_t retry;
    bool retry_armed;
    bool stopping;
};

struct sy__engine_s {
    sy__service_cfg_t *svc;
    sy__registry_t *reg;
    sy_instance_t **instances; /* every instance, in creation order */
    size_t ninstances;
    sy__pipeline_t **pipelines;
    size_t npipelines;
    _Atomic int status; /* sy_status_t */
    uint64_t shutdown_timeout_ms;
};

/* Resolves and checks everything; returns NULL with errors in diag. `svc` and
 * `reg` must outlive the engine. */
sy__engine_t *sy__engine_build(sy__service_cfg_t *svc, sy__registry_t *reg, sy__diag_t *diag);
/* Starts everything; on failure stops what had started and returns SY_ERROR. */
int sy__engine_start(sy__engine_t *e);
/* Stops and drains. Returns 0, or SY_ERROR if something missed its deadline. */
int sy__engine_stop(sy__engine_t *e);
void sy__engine_free(sy__engine_t *e);

/* The status every host API call reports (one engine per process). */
sy_status_t sy__engine_status(void);
void sy__engine_set_status(sy_status_t status);

/* The host API table handed to plugins. */
const sy_host_api_t *sy__host_api(void);

/* 0, 1, 2 for traces, metrics, logs. */
int sy__signal_index(sy_signal_t signal);

/* Internal plumbing between engine.c, runtime.c and host_api.c. */
int sy__receiver_emit(sy_instance_t *inst, sy_batch_t *batch);
int sy__processor_emit(sy_instance_t *inst, sy_batch_t *batch);
void sy__exporter_ready(sy_instance_t *inst);
void sy__exporter_outcome(sy_instance_t *x, sy_signal_t signal, uint64_t items, bool sent);
int sy__pipeline_init(sy__pipeline_t *p);
void sy__pipeline_on_wake(void *arg);
void sy__pipeline_drain(void *arg);
void sy__exporter_on_wake(void *arg);
void sy__instance_close_timers(sy_instance_t *inst);
size_t sy__exporter_backlog(const sy_instance_t *x);
uint64_t sy__exporter_abandon(sy_instance_t *x);

/*
 * Items that exporters reported failed (api->exporter_outcome(..., false)) while
 * the router was stopping: data acknowledged to a client that was never
 * delivered. The router's close turns a non-zero count into exit code 4.
 * Any thread (shutdown_loss.c).
 */
void sy__shutdown_loss_add(uint64_t items);
uint64_t sy__shutdown_loss(void);
void sy__shutdown_loss_reset(void);

#endif
