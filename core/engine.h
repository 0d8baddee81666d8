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
#include "log.h"
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
    sy_metric_t *ok;             /* receiver: accepted; exporter: sent */
    sy_metric_t *failed;         /* receiver: refused; exporter: send_failed */
    sy_metric_t *enqueue_failed; /* exporter: never reached its queue (pipeline dropped) */
    sy_metric_t *emitted;        /* connector: items it handed to the pipelines it feeds */
} sy__signal_metrics_t;

/* A processor's counters (one signal: its pipeline's). For every processor,
 * incoming = outgoing + refused + dropped once the router has stopped. */
typedef struct sy__processor_metrics_s {
    sy_metric_t *incoming; /* items handed to consume() */
    sy_metric_t *outgoing; /* items it emitted */
    sy_metric_t *refused;  /* items of batches whose consume() failed */
    sy_metric_t *dropped;  /* items the core could not hand to it (out of memory) */
} sy__processor_metrics_t;

/* The roles that get a pool of workers of their own. Stopping goes role by role
 * (receivers, pipelines, exporters, extensions), and a worker's loop ends only when
 * every component on it has closed its handles, so one worker never hosts two. */
typedef enum sy__role_e {
    SY__ROLE_RECEIVER,
    SY__ROLE_PIPELINE,
    SY__ROLE_EXPORTER,
    SY__ROLE_EXTENSION,
    SY__ROLE_COUNT
} sy__role_t;

typedef struct sy__worker_s {
    sy__thread_t thread; /* first: a sy__thread_t * of a worker is its sy__worker_t * */
    sy__engine_t *engine;
    sy__role_t role;
    /* Instances a reload stopped on this worker while it kept others running:
     * destroyed and freed only when the worker's loop has ended (the contract of
     * destroy(): no handles left on the loop). */
    struct sy_instance_s **retired;
    size_t nretired;
} sy__worker_t;

/* A batch at the end of a pipeline's chain that not every exporter has taken. */
typedef struct sy__pending_s {
    sy_batch_t *batch; /* one reference, for the exporters not yet served */
    size_t next;       /* the first exporter that has not taken it yet */
} sy__pending_t;

/* What a receiver and a connector have: the pipelines they feed. */
typedef struct sy__receiver_part_s {
    sy__pipeline_t **outputs;
    size_t noutputs;
} sy__receiver_part_t;

/* What only a processor has: its pipeline, its place in the chain, its counters. */
typedef struct sy__processor_part_s {
    sy__pipeline_t *pipeline;
    size_t index;
    sy__processor_metrics_t pmetrics;
    sy__ratelimit_t refusal_log;
    atomic_bool refusing; /* api->pipeline_refuse(): counted in pipeline->refusing */
} sy__processor_part_t;

/* What only an exporter has: its input queue and the burst taken from it but not
 * yet consumed (the first of which it may have declined with SY_EAGAIN), the
 * pipelines that feed it, and its drain at shutdown. */
typedef struct sy__exporter_part_s {
    sy__mpmc_t queue;
    _Atomic int64_t queue_items;
    bool queue_ready;
    sy_metric_t *queue_metrics[2]; /* size and capacity gauges */
    void *backlog[SY__EXPORTER_BURST];
    unsigned backlog_pos, backlog_n;
    atomic_bool blocked;
    sy__wake_t wake;
    /* The pipelines that feed it, and whether one of them waits for room in its
     * queue (set by that pipeline, cleared by the exporter when it makes room). */
    sy__pipeline_t **feeders;
    size_t nfeeders;
    atomic_bool has_waiter;
    /* Draining at shutdown: finishes when the backlog is empty, or at the deadline. */
    bool draining, drained, deadline_ready;
    uv_timer_t deadline;
    /* Connectors: the feeders that have not finished draining; when the last one
     * has, drain_go is set and the connector drains (runtime.c). */
    atomic_size_t feeders_live;
    atomic_bool drain_go;
    /* consume() returning SY_OK means written to a persistent queue
     * (api->settle_durable(); settle.c). */
    atomic_bool durable;
    /* Reload (reload.c): the new instance with the same id and plugin that takes
     * over what this one still holds in its queue when it drains; and, in that
     * new instance, the batches handed over from its predecessor's queue, offered
     * to its plugin before anything of its own queue (runtime.c). */
    sy_instance_t *successor;
    bool handing; /* from the start of the old pipelines' drain: all goes there */
    void **inherit;
    size_t inherit_n, inherit_pos;
} sy__exporter_part_t;

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
    /* Reload (reload.c): in a new engine, the running instance of the old one that
     * this one stands for (its configuration did not change), adopted in its place;
     * and an exporter whose plugin starts only once its old self has drained. */
    sy_instance_t *keep;
    bool deferred;
    atomic_bool finished; /* exporter: drained and shut down (exporter_finish) */
    int start_rc;         /* what create()/start() returned (written on its worker) */
    uint32_t signals;     /* of the pipelines it is in */

    sy__thread_t *thread;      /* its worker (a processor's is its pipeline's) */
    struct sy_timer_s *timers; /* open timers, closed at shutdown if the plugin forgot */
    sy__ratelimit_t cow_log;   /* batch_request_mut refusals (cow.c) */
    sy__signal_metrics_t metrics[3];

    /* Receivers and connectors: the pipelines they feed. */
    sy__receiver_part_t recv;
    /* By kind: proc for processors, exp for exporters and connectors (a connector
     * is an exporter in the pipelines it ends); extensions have nothing of their own. */
    union {
        sy__processor_part_t proc;
        sy__exporter_part_t exp;
    };
};

struct sy__pipeline_s {
    sy__engine_t *engine;
    const sy__pipeline_cfg_t *cfg;
    char *id;
    sy_signal_t signal;
    sy__thread_t *thread; /* its worker */
    sy__wake_t wake;
    bool wake_ready;
    sy__mpmc_t in;
    size_t in_limit;      /* logical capacity, below the ring's: see runtime.c */
    int open_rc;          /* what sy__pipeline_open() returned (written on its worker) */
    atomic_uint refusing; /* processors that ask receivers to be refused */
    _Atomic int64_t in_items;
    bool queue_ready;
    sy_metric_t *queue_metrics[2];

    sy_instance_t **processors; /* owned: one instance per pipeline, as otelcol does */
    size_t nprocessors;
    sy_instance_t **exporters; /* shared with other pipelines */
    size_t nexporters;

    /* Batches the last processor emitted that not every exporter queue has taken
     * yet. While any is pending the pipeline takes nothing new from `in`, which is
     * how a full exporter queue pushes back to the receivers; the exporter that
     * makes room wakes it. */
    struct sy__pending_s *pending;
    size_t npending, cap_pending;
    /* Draining at shutdown: finishes when nothing is pending, or at the deadline. */
    bool draining, drained, deadline_ready;
    uv_timer_t deadline;

    /* Connectors that feed this pipeline. It begins to drain only once all of
     * them have (upstream_live reaches 0 and drain_go is set); one of them that
     * found its queue full sets conn_waiting, and the pipeline wakes them all
     * after it has taken from the queue. */
    sy_instance_t **upstream;
    size_t nupstream;
    atomic_size_t upstream_live;
    atomic_bool stop_requested; /* the engine asked it to drain */
    atomic_bool drain_go;       /* and every connector feeding it has drained */
    atomic_bool conn_waiting;
    atomic_bool accepting; /* started: a connector's timer may emit into it */
};

struct sy__engine_s {
    sy__service_cfg_t *svc;
    sy__registry_t *reg;
    sy_instance_t **instances; /* every instance, in creation order */
    size_t ninstances;
    sy__pipeline_t **pipelines;
    size_t npipelines;
    /* Its workers, a pool per role (a reload's new engine adopts the old one's
     * receiver, exporter and extension pools, with the components kept on them). */
    sy__worker_t **pools[SY__ROLE_COUNT];
    size_t npools[SY__ROLE_COUNT];
    size_t next_slot[SY__ROLE_COUNT];  /* round robin over a pool ... */
    size_t first_free[SY__ROLE_COUNT]; /* ... from this worker on (a reload's fresh ones) */
    /* Workers a reload left with nothing running on them: their loops end once the
     * retired instances' handles are closed; joined and freed later. */
    sy__worker_t **dying;
    size_t ndying;
    unsigned worker_seq[SY__ROLE_COUNT]; /* for thread names */
    uint64_t shutdown_timeout_ms;
    uint64_t deadline_ms; /* of the stop in progress (CLOCK_MONOTONIC) */
    /* Items that were acknowledged and then not delivered because of the shutdown
     * deadline (the exit code says so). */
    _Atomic uint64_t lost_at_stop;
    /* A cross-thread call or a worker missed its deadline: a thread may still be
     * running inside a plugin, so nothing it can reach is ever freed. */
    bool wedged;
};

/* Internal to engine.c and reload.c. */
int sy__engine_grow_pool(sy__engine_t *e, sy__role_t role, size_t members);
int sy__engine_add_workers(sy__engine_t *e, sy__role_t role, size_t n);
void sy__engine_free_worker(sy__worker_t *w);
int sy__engine_start_instance(sy_instance_t *x);
int sy__engine_open_exporter(sy_instance_t *x, size_t n, bool start);
int sy__engine_create_start(sy_instance_t *inst);
int sy__engine_start_again(sy_instance_t *inst);
/* create() only, on the instance's worker (reload: a successor created beside its
 * old self, started later with sy__engine_create_start, which skips create). */
int sy__engine_create_only(sy_instance_t *inst);
int sy__engine_start_pipeline(sy__pipeline_t *p, size_t n);
int sy__engine_stop_workers(sy__engine_t *e, sy__role_t role, sy__thread_fn begin,
                            uint64_t deadline);
void sy__engine_drain_pipelines_on(void *arg);
void sy__engine_log_pipeline(const sy__pipeline_t *p);
void sy__engine_free_instance(sy_instance_t *x);

/* Reload (reload.c): starts `nu` (built from the new configuration) beside the
 * running `old`, moves the components whose configuration did not change into
 * it untouched, switches the receivers to the new pipelines, drains the old ones
 * and stops what is not kept. Returns SY_OK (`old` is freed); SY_ERROR when
 * something failed after traffic moved (`old` is freed, nu runs without what
 * failed); SY_EAGAIN when a new component failed to start before: what of `nu`
 * had started is stopped, `old` runs as before, and the caller frees `nu`;
 * SY__ETIMEDOUT when a component is stuck. */
int sy__engine_reload(sy__engine_t *old, sy__engine_t *nu);

/* Resolves and checks everything; returns NULL with errors in diag. `svc` and
 * `reg` must outlive the engine. */
sy__engine_t *sy__engine_build(sy__service_cfg_t *svc, sy__registry_t *reg, sy__diag_t *diag);
/* Starts everything; on failure stops what had started and returns SY_ERROR. */
int sy__engine_start(sy__engine_t *e);
/* Stops and drains. Returns 0, or SY_ERROR if something missed its deadline. */
int sy__engine_stop(sy__engine_t *e);
/* Frees everything, unless a thread was left running (wedged): then nothing. */
void sy__engine_free(sy__engine_t *e);
/* Worker threads per role at most (the pools' bound). */
size_t sy__engine_pool_max(void);

/* The status every host API call reports (one engine per process). */
sy_status_t sy__engine_status(void);
void sy__engine_set_status(sy_status_t status);

/* The host API table handed to plugins. */
const sy_host_api_t *sy__host_api(void);

/* 0, 1, 2 for traces, metrics, logs. */
int sy__signal_index(sy_signal_t signal);

/* Internal plumbing between engine.c, runtime.c and host_api.c. */
int sy__receiver_emit(sy_instance_t *inst, sy_batch_t *batch);
/* ABI 1.8 emit_may_wait(): whether a refusal of `signal` was only a full queue. */
bool sy__receiver_may_wait(sy_instance_t *inst, sy_signal_t signal);
/* ABI 1.8 compressed_wanted(): whether an exporter behind it sends compressed twins. */
bool sy__receiver_compressed_wanted(sy_instance_t *inst, sy_signal_t signal);
int sy__processor_emit(sy_instance_t *inst, sy_batch_t *batch);
/* A connector's emit (pipelines NULL: every pipeline of the batch's signal it feeds). */
int sy__connector_emit(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines,
                       size_t n);
size_t sy__connector_pipelines(sy_instance_t *inst, sy_signal_t signal, const char **ids,
                               size_t max);
void sy__processor_refuse(sy_instance_t *inst, bool refuse);
/* The bytes all core queues may hold together (runtime.c), a memory_limiter's
 * bound on it (the smallest wins), and forgetting such bounds (a new engine). */
int64_t sy__queue_budget(void);
void sy__queue_budget_limit(int64_t bytes);
void sy__queue_budget_reset(void);
void sy__exporter_ready(sy_instance_t *inst);
void sy__exporter_outcome(sy_instance_t *x, sy_signal_t signal, uint64_t items, bool sent);
int sy__pipeline_open(sy__pipeline_t *p);
void sy__pipeline_on_wake(void *arg);
void sy__pipeline_begin_drain(sy__pipeline_t *p);
void sy__pipeline_never_started(sy__pipeline_t *p);
int sy__exporter_open(sy_instance_t *x);
void sy__exporter_on_wake(void *arg);
void sy__exporter_begin_drain(sy_instance_t *x);
/* Reload, on x's worker before the old pipelines drain: from now on whatever x's
 * queue holds or gets goes to the end of its successor's inherited list, not to
 * x's plugin (which then only finishes or hands on what it holds). */
void sy__exporter_hand_over_begin(sy_instance_t *x);
void sy__instance_close_timers(sy_instance_t *inst);
void sy__instance_shutdown(sy_instance_t *inst);
void sy__instance_destroy(sy_instance_t *inst);

#endif
