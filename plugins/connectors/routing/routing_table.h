/*
 * routing_table.h - the routing connector's table and its decision: which
 * pipelines each resource, span, metric, data point or log record of a batch
 * goes to, and the batches that carry them there, made without decoding (the
 * view reads the conditions' fields, the view builder copies items still
 * encoded).
 *
 * The table is built once (rt_table_add() per route, rt_table_set_default(),
 * rt_table_finish()) and then only read. A runner (rt_runner_t) holds what one
 * instance reuses from batch to batch: the OTTL scratch, the view item and the
 * per-item arrays; it belongs to one thread.
 *
 * Semantics (the collector's routingconnector since v0.120, where match_once
 * went and matching once became the only behaviour): routes are tried in table
 * order and each item goes to the pipelines of the FIRST route that matches it.
 * A route of the resource context takes every item of a matching resource that
 * no earlier route took; one of the metric context every such data point of a
 * matching metric; span, datapoint and log routes take single items. What no
 * route takes goes to default_pipelines, or is dropped (counted) without them.
 */
#ifndef SY_ROUTING_TABLE_H
#define SY_ROUTING_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "ottl.h"
#include "ottl_view.h"

/* error_mode, in the order of the config's enum names. */
typedef enum rt_error_mode_e { RT_EM_PROPAGATE, RT_EM_IGNORE, RT_EM_SILENT } rt_error_mode_t;

/* Where an item goes: a destination index (one set of pipelines), or dropped. */
#define RT_DROP (-1)

typedef struct rt_route_s {
    syc_ottl_context_t ctx;
    syc_ottl_prog_t *prog; /* the condition; NULL for a bare route(): always true */
    char *text;            /* "route() where <condition>", for logs and duplicates */
    char **pipelines;      /* owned, deduplicated, in the order written */
    size_t npipelines;
    int dest; /* index into the table's destinations */
} rt_route_t;

/* One set of pipelines that some route (or the default) sends to. Routes with
 * the same set share one destination, hence one batch per consumed batch. */
typedef struct rt_dest_s {
    const char *const *ids; /* the first route's (or the default's) list */
    size_t n;
} rt_dest_t;

typedef struct rt_table_s {
    rt_route_t *routes;
    size_t nroutes;
    char **defaults; /* default_pipelines, owned */
    size_t ndefaults;
    rt_dest_t *dests;
    size_t ndests;
    int default_dest; /* RT_DROP when there are no default_pipelines */
    rt_error_mode_t error_mode;
} rt_table_t;

/* The contexts a route may name (bit set of 1u << SYC_OTTL_CTX_*), and those
 * that apply to the items of one signal. */
#define RT_CONTEXTS                                                                      \
    (1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SPAN | 1u << SYC_OTTL_CTX_METRIC | \
     1u << SYC_OTTL_CTX_DATAPOINT | 1u << SYC_OTTL_CTX_LOG)
unsigned rt_signal_contexts(sy_signal_t signal);

/*
 * Adds one route: `context` (NULL: inferred from context-named paths such as
 * span.name, else resource), and exactly one of `statement` ("route() [where
 * <condition>]") and `condition`, with its pipelines. Returns 0 when added, 1
 * when an earlier route has the same context and statement (the collector
 * ignores such a route with a warning; the caller logs it), SY_EINVAL with a
 * sentence in err (a column inside the OTTL where there is one), SY_ENOMEM.
 */
int rt_table_add(rt_table_t *t, const char *context, const char *statement, const char *condition,
                 const char *const *pipelines, size_t npipelines, char *err, size_t err_len);
/* Sets default_pipelines (n may be 0). 0 or SY_ENOMEM. */
int rt_table_set_default(rt_table_t *t, const char *const *pipelines, size_t n);
/* Groups the routes and the default into destinations. 0 or SY_ENOMEM. */
int rt_table_finish(rt_table_t *t);
void rt_table_free(rt_table_t *t);

/* What rt_route() made of one batch. */
typedef struct rt_out_s {
    int dest;
    sy_batch_t *batch; /* one reference, the caller's */
    uint64_t items;
} rt_out_t;

typedef struct rt_result_s {
    /* The whole batch goes to one destination (whole_dest, or RT_DROP): nothing
     * was built, and the caller sends (or releases) the batch it has. */
    bool whole;
    int whole_dest;
    /* Otherwise one new batch per destination that has items, in destination
     * order (at most the table's ndests). */
    rt_out_t *outs;
    size_t nouts;
    uint64_t items;   /* items in the batch */
    uint64_t matched; /* items a route took */
    uint64_t to_default;
    uint64_t dropped; /* no route and no default_pipelines */
    uint64_t errors;  /* conditions that failed at run time (ignore, silent) */
    int first_error;  /* the first such failure's code, and its route */
    size_t error_route;
} rt_result_t;

/* One item of the batch being routed. */
typedef struct rt_item_s {
    sy_view_node_t *node;
    int32_t dest; /* a destination, RT_DROP, or not yet decided */
} rt_item_t;

/* A run of consecutive items that share one resource (or one metric): the
 * node a route of that context evaluates, and where its items start. */
typedef struct rt_group_s {
    sy_view_node_t *node;
    size_t first; /* the end is the next group's first */
} rt_group_t;

typedef struct rt_runner_s {
    syc_ottl_scratch_t *scratch;
    syc_ottl_view_item_t item;
    rt_item_t *items;
    size_t items_cap;
    rt_group_t *res; /* resources, then one past the last (first = item count) */
    size_t res_cap;
    rt_group_t *met; /* metrics, idem (metrics batches only) */
    size_t met_cap;
    uint64_t *counts; /* per destination */
    sy_view_builder_t **builders;
    rt_out_t *outs;
    size_t dest_cap;
} rt_runner_t;

/* 0 or SY_ENOMEM; rt_runner_free() frees what it holds (also after a failure). */
int rt_runner_init(rt_runner_t *r);
void rt_runner_free(rt_runner_t *r);

/*
 * Routes `batch` (which the caller keeps: rt_route() neither takes nor releases
 * it) of `inst` (the origin of the batches built; NULL in tests). Fills *res;
 * res->outs points into the runner and is valid until the next call. Returns 0;
 * under error_mode propagate, the first condition's run-time error (nothing was
 * built: the batch is refused whole); SY_ENOMEM.
 */
int rt_route(const rt_table_t *t, rt_runner_t *r, const sy_host_api_t *api, sy_instance_t *inst,
             sy_batch_t *batch, rt_result_t *res);

#endif
