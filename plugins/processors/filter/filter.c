/*
 * filter.c - the `filter` processor: drops spans, span events, metrics, data
 * points and log records for which any of the configured OTTL conditions is true,
 * as the collector's filterprocessor does.
 *
 * Conditions are compiled once, in create(), for their context (ottl.h); a bad
 * one fails the component with the file:line:col of its YAML node and the column
 * inside it. Each batch is read and edited through the view (ottl_view.h): items
 * are dropped with view_drop and the batch committed once; a batch left with no
 * item is released instead of emitted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "filter_legacy.h"
#include "ottl.h"
#include "ottl_view.h"

enum { EM_IGNORE, EM_SILENT, EM_PROPAGATE };
static const char *const error_modes[] = {"ignore", "silent", "propagate", NULL};

/* The lists, in the order filter_fields names them. */
enum { L_SPAN, L_SPANEVENT, L_METRIC, L_DATAPOINT, L_LOG, L_COUNT };

typedef struct filter_config_s {
    int error_mode;
    const sy_cfg_node_t *lists[L_COUNT];
    const sy_cfg_node_t *legacy[3][2]; /* spans, logs, metrics x include, exclude */
    const sy_cfg_node_t *inferred[3];  /* trace_, metric_, log_conditions */
} filter_config_t;

/* The *_conditions keys (context inferred from the paths): which contexts the
 * signal has, and the list a resource or scope condition joins (dropping every
 * item of a resource drops the resource). */
static const struct {
    const char *key;
    unsigned contexts;
    int item_list;
} inferred_info[3] = {
    {"trace_conditions",
     1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE | 1u << SYC_OTTL_CTX_SPAN |
         1u << SYC_OTTL_CTX_SPANEVENT,
     L_SPAN},
    {"metric_conditions",
     1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE | 1u << SYC_OTTL_CTX_METRIC |
         1u << SYC_OTTL_CTX_DATAPOINT,
     L_METRIC},
    {"log_conditions",
     1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE | 1u << SYC_OTTL_CTX_LOG, L_LOG},
};

/* The legacy blocks: which kind, which key, and the list their condition joins. */
static const struct {
    filter_legacy_kind_t kind;
    const char *what;
    int list;
    int first, last; /* the OTTL lists of the same signal */
} legacy_info[3] = {
    {FL_SPANS, "spans", L_SPAN, L_SPAN, L_SPANEVENT},
    {FL_LOGS, "logs", L_LOG, L_LOG, L_LOG},
    {FL_METRICS, "metrics", L_METRIC, L_METRIC, L_DATAPOINT},
};

static const struct {
    const char *key;
    syc_ottl_context_t ctx;
} list_info[L_COUNT] = {
    [L_SPAN] = {"traces.span", SYC_OTTL_CTX_SPAN},
    [L_SPANEVENT] = {"traces.spanevent", SYC_OTTL_CTX_SPANEVENT},
    [L_METRIC] = {"metrics.metric", SYC_OTTL_CTX_METRIC},
    [L_DATAPOINT] = {"metrics.datapoint", SYC_OTTL_CTX_DATAPOINT},
    [L_LOG] = {"logs.log_record", SYC_OTTL_CTX_LOG},
};

static const sy_config_field_t filter_fields[] = {
    {.name = "error_mode",
     .type = SY_CFG_ENUM,
     .offset = offsetof(filter_config_t, error_mode),
     .default_value = "propagate",
     .enum_values = error_modes,
     .description = "What a condition that fails at run time does: ignore (log, treat as "
                    "false), silent (treat as false), propagate (refuse the batch)."},
    {.name = "traces.span",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, lists[L_SPAN]),
     .description = "OTTL conditions on each span; the span is dropped when any is true."},
    {.name = "traces.spanevent",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, lists[L_SPANEVENT]),
     .description = "OTTL conditions on each span event."},
    {.name = "metrics.metric",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, lists[L_METRIC]),
     .description = "OTTL conditions on each metric (with all its data points)."},
    {.name = "metrics.datapoint",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, lists[L_DATAPOINT]),
     .description = "OTTL conditions on each data point."},
    {.name = "logs.log_record",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, lists[L_LOG]),
     .description = "OTTL conditions on each log record."},
#define LEGACY(key, i, j, what)                                                             \
    {                                                                                       \
        .name = key, .type = SY_CFG_RAW, .offset = offsetof(filter_config_t, legacy[i][j]), \
        .description = "Legacy " what " block (match_type strict or regexp)."               \
    }
    LEGACY("spans.include", 0, 0, "include"),
    LEGACY("spans.exclude", 0, 1, "exclude"),
    LEGACY("logs.include", 1, 0, "include"),
    LEGACY("logs.exclude", 1, 1, "exclude"),
    LEGACY("metrics.include", 2, 0, "include"),
    LEGACY("metrics.exclude", 2, 1, "exclude"),
#undef LEGACY
    {.name = "trace_conditions",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, inferred[0]),
     .description = "OTTL conditions on traces, each in the context its paths name "
                    "(resource., scope., span., spanevent.), or {context, conditions} groups."},
    {.name = "metric_conditions",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, inferred[1]),
     .description = "OTTL conditions on metrics (resource., scope., metric., datapoint.)."},
    {.name = "log_conditions",
     .type = SY_CFG_RAW,
     .offset = offsetof(filter_config_t, inferred[2]),
     .description = "OTTL conditions on logs (resource., scope., log.)."},
};

typedef struct filter_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const filter_config_t *cfg;
    syc_ottl_list_t lists[L_COUNT];
    syc_ottl_scratch_t *scratch;
    sy_metric_t *m_spans, *m_points, *m_logs;
    syc_ottl_view_item_t item;
} filter_state_t;

/* One batch's walk. */
typedef struct filter_run_s {
    filter_state_t *s;
    uint64_t dropped; /* spans, data points or log records */
    int error;        /* the first run-time error (propagate) */
} filter_run_t;

/* Whether any condition of list l is true of node. A run-time error counts as
 * false under ignore and silent, and stops the batch under propagate. */
static int any_true(filter_run_t *run, int l, sy_view_node_t *node, bool *out)
{
    filter_state_t *s = run->s;
    const syc_ottl_list_t *list = &s->lists[l];
    *out = false;
    if (list->count == 0) return 0;
    syc_ottl_view_bind(&s->item, s->api, node);
    for (size_t i = 0; i < list->count; i++) {
        bool t = false;
        int rc = syc_ottl_eval_condition(list->progs[i], &syc_ottl_view_accessor, &s->item,
                                         s->scratch, &t);
        if (rc < 0) {
            if (s->cfg->error_mode == EM_PROPAGATE) {
                SY_LOG(s->api, s->inst, SY_LOG_ERROR,
                       "failed processing batch: %s condition %zu: error %d", list_info[l].key, i,
                       rc);
                run->error = rc;
                return rc;
            }
            if (s->cfg->error_mode == EM_IGNORE)
                SY_LOG(s->api, s->inst, SY_LOG_WARN,
                       "failed evaluating %s condition %zu (error %d); treated as false",
                       list_info[l].key, i, rc);
            continue;
        }
        if (t) {
            *out = true;
            return 0;
        }
    }
    return 0;
}

static int visit_span(sy_view_node_t *span, void *arg)
{
    filter_run_t *run = arg;
    const sy_host_api_t *api = run->s->api;
    bool drop;
    int rc = any_true(run, L_SPAN, span, &drop);
    if (rc < 0) return rc;
    if (drop) {
        run->dropped++;
        return api->view_drop(span);
    }
    size_t n = run->s->lists[L_SPANEVENT].count ? api->view_count(span, SY_VIEW_EVENTS) : 0;
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *ev = api->view_at(span, SY_VIEW_EVENTS, i);
        if ((rc = any_true(run, L_SPANEVENT, ev, &drop)) < 0) return rc;
        if (drop && (rc = api->view_drop(ev)) < 0) return rc;
    }
    return 0;
}

static int visit_metric(sy_view_node_t *metric, void *arg)
{
    filter_run_t *run = arg;
    const sy_host_api_t *api = run->s->api;
    size_t n = api->view_count(metric, SY_VIEW_ITEMS);
    bool drop;
    int rc = any_true(run, L_METRIC, metric, &drop);
    if (rc < 0) return rc;
    if (drop) {
        run->dropped += n;
        return api->view_drop(metric);
    }
    if (run->s->lists[L_DATAPOINT].count == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *p = api->view_at(metric, SY_VIEW_ITEMS, i);
        if ((rc = any_true(run, L_DATAPOINT, p, &drop)) < 0) return rc;
        if (drop) {
            run->dropped++;
            if ((rc = api->view_drop(p)) < 0) return rc;
        }
    }
    return 0;
}

static int visit_log(sy_view_node_t *log, void *arg)
{
    filter_run_t *run = arg;
    bool drop;
    int rc = any_true(run, L_LOG, log, &drop);
    if (rc < 0) return rc;
    if (!drop) return 0;
    run->dropped++;
    return run->s->api->view_drop(log);
}

static int filter_consume(void *state, sy_batch_t *batch)
{
    filter_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_batch_info_t info;
    api->batch_info(batch, &info);

    syc_ottl_context_t ctx;
    syc_ottl_view_visit_fn visit;
    sy_metric_t *counter;
    bool any;
    switch (info.signal) {
    case SY_SIGNAL_TRACES:
        ctx = SYC_OTTL_CTX_SPAN, visit = visit_span, counter = s->m_spans;
        any = s->lists[L_SPAN].count || s->lists[L_SPANEVENT].count;
        break;
    case SY_SIGNAL_METRICS:
        ctx = SYC_OTTL_CTX_METRIC, visit = visit_metric, counter = s->m_points;
        any = s->lists[L_METRIC].count || s->lists[L_DATAPOINT].count;
        break;
    default:
        ctx = SYC_OTTL_CTX_LOG, visit = visit_log, counter = s->m_logs;
        any = s->lists[L_LOG].count;
        break;
    }
    if (!any) return api->emit(s->inst, batch);

    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM; /* the batch is still the caller's */
    filter_run_t run = {.s = s};
    int rc = syc_ottl_view_walk(api, api->view_root(v), ctx, visit, &run);
    if (rc < 0) {
        api->view_close(v);
        if (!run.error) SY_LOG(api, s->inst, SY_LOG_ERROR, "failed filtering batch (error %d)", rc);
        return rc;
    }
    if (run.dropped) rc = api->view_commit(v);
    api->view_close(v);
    if (rc < 0) {
        SY_LOG(api, s->inst, SY_LOG_ERROR, "failed committing filtered batch (error %d)", rc);
        return rc;
    }
    if (run.dropped && counter) api->metric_add(counter, (int64_t)run.dropped);
    api->batch_info(batch, &info);
    if (info.items == 0) {
        api->batch_release(batch); /* everything was dropped: nothing to send */
        return SY_OK;
    }
    return api->emit(s->inst, batch);
}

static void filter_destroy(void *state)
{
    filter_state_t *s = state;
    if (!s) return;
    for (int l = 0; l < L_COUNT; l++)
        syc_ottl_list_free(&s->lists[l]);
    syc_ottl_scratch_free(s->scratch);
    syc_ottl_view_item_free(&s->item);
    free(s);
}

/* Compiles the condition made of legacy block k and appends it to its list;
 * refuses it next to OTTL conditions of the same signal, as the collector does. */
static int add_legacy(filter_state_t *s, int k, const char *cond, char *err, size_t err_len)
{
    const sy_host_api_t *api = s->api;
    const sy_cfg_node_t *at = s->cfg->legacy[k][0] ? s->cfg->legacy[k][0] : s->cfg->legacy[k][1];
    for (int l = legacy_info[k].first; l <= legacy_info[k].last; l++)
        if (s->lists[l].count) {
            snprintf(err, err_len,
                     "%s: cannot use ottl conditions and include/exclude for %s at the same time",
                     api->cfg_where(at), legacy_info[k].what);
            return SY_EINVAL;
        }
    syc_ottl_list_t *list = &s->lists[legacy_info[k].list];
    syc_ottl_error_t e = {0};
    syc_ottl_prog_t *p = syc_ottl_compile_condition(cond, strlen(cond), list->ctx, &e);
    if (!p) {
        snprintf(err, err_len, "%s: %s: %s (in the condition made of it: %s)", api->cfg_where(at),
                 legacy_info[k].what, e.msg, cond);
        return SY_EINVAL;
    }
    if (syc_ottl_list_push(list, p) < 0) return SY_ENOMEM;
    SY_LOG(api, s->inst, SY_LOG_DEBUG, "%s include/exclude as OTTL: %s", legacy_info[k].what, cond);
    return 0;
}

/* The list a condition of context ctx joins, for the signal of *_conditions k. */
static int list_of(int k, syc_ottl_context_t ctx)
{
    for (int l = 0; l < L_COUNT; l++)
        if (list_info[l].ctx == ctx) return l;
    return inferred_info[k].item_list; /* resource, scope */
}

/* Compiles src for the list of context ctx and appends it. */
static int add_condition(filter_state_t *s, int k, syc_ottl_context_t ctx, const char *src,
                         const sy_cfg_node_t *at, const char *what, char *err, size_t err_len)
{
    syc_ottl_list_t *list = &s->lists[list_of(k, ctx)];
    syc_ottl_error_t e = {0};
    syc_ottl_prog_t *p = syc_ottl_compile_condition(src, strlen(src), list->ctx, &e);
    if (!p) {
        snprintf(err, err_len, "%s: %s: %s", s->api->cfg_where(at), what, e.msg);
        return SY_EINVAL;
    }
    if (syc_ottl_list_push(list, p) < 0) return SY_ENOMEM;
    return 0;
}

/* One trace_/metric_/log_conditions list: strings, each in the context its
 * paths name, and {context, conditions} groups (context inferred from all of
 * the group's conditions when absent). */
static int compile_inferred(filter_state_t *s, int k, char *err, size_t err_len)
{
    const sy_host_api_t *api = s->api;
    const sy_cfg_node_t *node = s->cfg->inferred[k];
    const char *key = inferred_info[k].key;
    if (!node || api->cfg_kind(node) == 'n') return 0;
    if (api->cfg_kind(node) != 'l') {
        snprintf(err, err_len, "%s: %s: must be a list", api->cfg_where(node), key);
        return SY_EINVAL;
    }
    for (size_t i = 0, n = api->cfg_len(node); i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        char what[96];
        snprintf(what, sizeof what, "%s[%zu]", key, i);
        syc_ottl_error_t e = {0};
        syc_ottl_context_t ctx;
        int rc;
        if (api->cfg_kind(el) == 's') {
            const char *src = api->cfg_scalar(el);
            if (syc_ottl_infer_context(src, strlen(src), inferred_info[k].contexts, &ctx, &e) < 0) {
                snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg);
                return SY_EINVAL;
            }
            if ((rc = add_condition(s, k, ctx, src, el, what, err, err_len)) < 0) return rc;
            continue;
        }
        if (api->cfg_kind(el) != 'm') {
            snprintf(err, err_len, "%s: %s: must be a condition or a {context, conditions} map",
                     api->cfg_where(el), what);
            return SY_EINVAL;
        }
        const sy_cfg_node_t *ctxn = NULL, *conds = NULL;
        for (size_t j = 0; j < api->cfg_len(el); j++) {
            const char *name = NULL;
            const sy_cfg_node_t *v = api->cfg_at(el, j, &name);
            if (strcmp(name, "context") == 0) {
                ctxn = v;
            } else if (strcmp(name, "conditions") == 0) {
                conds = v;
            } else {
                snprintf(err, err_len, "%s: %s: unknown key '%s' (supported: context, conditions)",
                         api->cfg_where(v), what, name);
                return SY_EINVAL;
            }
        }
        char sub[128];
        snprintf(sub, sizeof sub, "%s.conditions", what);
        if (ctxn) {
            rc = syc_ottl_context_from_cfg(api, ctxn, inferred_info[k].contexts, what, key, &ctx,
                                           err, err_len);
            if (rc < 0) return rc;
        } else {
            unsigned named = 0;
            if ((rc = syc_ottl_list_names(api, conds, sub, &named, err, err_len)) < 0) return rc;
            if (syc_ottl_context_pick(named, inferred_info[k].contexts, &ctx, &e) < 0) {
                snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg + 7);
                return SY_EINVAL;
            }
        }
        if (!conds || api->cfg_kind(conds) != 'l') {
            snprintf(err, err_len, "%s: %s: must be a list of conditions",
                     api->cfg_where(conds ? conds : el), sub);
            return SY_EINVAL;
        }
        for (size_t j = 0; j < api->cfg_len(conds); j++) {
            const sy_cfg_node_t *c = api->cfg_at(conds, j, NULL);
            char cw[160];
            snprintf(cw, sizeof cw, "%s[%zu]", sub, j);
            if (api->cfg_kind(c) != 's') {
                snprintf(err, err_len, "%s: %s: must be a string", api->cfg_where(c), cw);
                return SY_EINVAL;
            }
            if ((rc = add_condition(s, k, ctx, api->cfg_scalar(c), c, cw, err, err_len)) < 0)
                return rc;
        }
    }
    return 0;
}

static int filter_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                         void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.1 (the view)");
        return SY_ENOTSUP;
    }
    filter_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->scratch = syc_ottl_scratch_new(SYC_OTTL_SCRATCH_DEFAULT);
    if (!s->scratch) goto nomem;
    for (int l = 0; l < L_COUNT; l++) {
        char err[512] = "";
        int rc = syc_ottl_list_compile(api, s->cfg->lists[l], list_info[l].key, list_info[l].ctx,
                                       false, &s->lists[l], err, sizeof err);
        if (rc < 0) {
            if (err[0]) api->log(inst, SY_LOG_ERROR, "%s", err);
            filter_destroy(s);
            return rc;
        }
    }
    for (int k = 0; k < 3; k++) {
        char err[512] = "";
        int rc = compile_inferred(s, k, err, sizeof err);
        if (rc < 0) {
            if (err[0]) api->log(inst, SY_LOG_ERROR, "%s", err);
            filter_destroy(s);
            return rc;
        }
    }
    for (int k = 0; k < 3; k++) {
        char err[512] = "";
        char *cond = NULL;
        int rc = filter_legacy_condition(api, legacy_info[k].kind, legacy_info[k].what,
                                         s->cfg->legacy[k][0], s->cfg->legacy[k][1], &cond, err,
                                         sizeof err);
        if (rc == 0 && cond) rc = add_legacy(s, k, cond, err, sizeof err);
        free(cond);
        if (rc < 0) {
            if (err[0]) api->log(inst, SY_LOG_ERROR, "%s", err);
            filter_destroy(s);
            return rc;
        }
    }
    /* A processor has one instance per pipeline: count only what it can see. */
    uint32_t sig = api->signals(inst);
    if (sig & SY_SIGNAL_TRACES)
        s->m_spans =
            api->metric_register(inst, "processor_filter_spans_filtered",
                                 "Spans dropped by the filter processor.", SY_METRIC_COUNTER);
    if (sig & SY_SIGNAL_METRICS)
        s->m_points =
            api->metric_register(inst, "processor_filter_datapoints_filtered",
                                 "Data points dropped by the filter processor.", SY_METRIC_COUNTER);
    if (sig & SY_SIGNAL_LOGS)
        s->m_logs =
            api->metric_register(inst, "processor_filter_logs_filtered",
                                 "Log records dropped by the filter processor.", SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
nomem:
    filter_destroy(s);
    return SY_ENOMEM;
}

static const sy_plugin_t filter_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "filter",
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "1.0",
    .description = "Drops telemetry for which any OTTL condition is true.",
    .config_fields = filter_fields,
    .config_field_count = sizeof(filter_fields) / sizeof(filter_fields[0]),
    .config_size = sizeof(filter_config_t),
    .create = filter_create,
    .consume = filter_consume,
    .destroy = filter_destroy,
};
SY_PLUGIN_DEFINE(filter_descriptor)
