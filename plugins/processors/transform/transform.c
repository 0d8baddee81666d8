/*
 * transform.c - the `transform` processor: runs OTTL statements (set, delete_key,
 * keep_keys, replace_pattern, ...) on spans, span events, metrics, data points,
 * log records, resources and scopes, as the collector's transformprocessor does.
 *
 * Each *_statements key takes the collector's forms: a flat list of statements
 * whose context is inferred from their path prefixes (`span.attributes[...]`,
 * `resource.attributes[...]`, `log.body`, `datapoint.attributes[...]`; a
 * statement without any runs in the signal's default context: span, datapoint,
 * log), and a list of groups `{context, statements, conditions, error_mode}`
 * (context inferred when absent; the statements run on an item when any of the
 * conditions holds). Statements are compiled once in create(); a bad one fails
 * the component with the file:line:col of its YAML node and the column inside
 * it. A batch is edited through the view (ottl_view.h) and committed once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "ottl.h"
#include "ottl_view.h"

enum { EM_IGNORE, EM_SILENT, EM_PROPAGATE };
static const char *const error_modes[] = {"ignore", "silent", "propagate", NULL};

enum { S_TRACES, S_METRICS, S_LOGS, S_COUNT };

typedef struct transform_config_s {
    int error_mode;
    const sy_cfg_node_t *statements[S_COUNT];
} transform_config_t;

static const struct {
    const char *key;
    syc_ottl_context_t default_ctx;
    unsigned contexts; /* bit set of the contexts the signal allows */
} signal_info[S_COUNT] = {
    [S_TRACES] = {"trace_statements", SYC_OTTL_CTX_SPAN,
                  1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE | 1u << SYC_OTTL_CTX_SPAN |
                      1u << SYC_OTTL_CTX_SPANEVENT},
    [S_METRICS] = {"metric_statements", SYC_OTTL_CTX_DATAPOINT,
                   1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE |
                       1u << SYC_OTTL_CTX_METRIC | 1u << SYC_OTTL_CTX_DATAPOINT},
    [S_LOGS] = {"log_statements", SYC_OTTL_CTX_LOG,
                1u << SYC_OTTL_CTX_RESOURCE | 1u << SYC_OTTL_CTX_SCOPE | 1u << SYC_OTTL_CTX_LOG},
};

static const sy_config_field_t transform_fields[] = {
    {.name = "error_mode",
     .type = SY_CFG_ENUM,
     .offset = offsetof(transform_config_t, error_mode),
     .default_value = "ignore",
     .enum_values = error_modes,
     .description = "What a statement that fails at run time does: ignore (log, go on with the "
                    "next statement), silent (go on), propagate (refuse the batch)."},
    {.name = "trace_statements",
     .type = SY_CFG_RAW,
     .offset = offsetof(transform_config_t, statements[S_TRACES]),
     .description = "Statements on traces: a list of strings (span context) or of "
                    "{context, statements} groups."},
    {.name = "metric_statements",
     .type = SY_CFG_RAW,
     .offset = offsetof(transform_config_t, statements[S_METRICS]),
     .description = "Statements on metrics (datapoint context by default)."},
    {.name = "log_statements",
     .type = SY_CFG_RAW,
     .offset = offsetof(transform_config_t, statements[S_LOGS]),
     .description = "Statements on logs (log context by default)."},
};

/* Statements of one context, run in order on every item of that context for
 * which one of the conditions (if any) holds. */
typedef struct tf_group_s {
    syc_ottl_list_t stmts;
    syc_ottl_list_t conds;
    int error_mode;
} tf_group_t;

typedef struct transform_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const transform_config_t *cfg;
    tf_group_t *groups[S_COUNT]; /* in config order */
    size_t ngroups[S_COUNT];
    syc_ottl_scratch_t *scratch;
    syc_ottl_view_item_t item;
} transform_state_t;

typedef struct transform_run_s {
    transform_state_t *s;
    const tf_group_t *group;
    int error;
} transform_run_t;

/* A run-time error under the group's error_mode: the error to stop with, or 0. */
static int failed(transform_run_t *run, const char *what, size_t i, int rc)
{
    transform_state_t *s = run->s;
    const char *ctx = syc_ottl_context_name(run->group->stmts.ctx);
    if (run->group->error_mode == EM_PROPAGATE) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR,
               "failed processing batch: %s %zu of the %s context: error %d", what, i, ctx, rc);
        run->error = rc;
        return rc;
    }
    if (run->group->error_mode == EM_IGNORE)
        SY_LOG(s->api, s->inst, SY_LOG_WARN,
               "failed executing %s %zu of the %s context (error %d); going on", what, i, ctx, rc);
    return 0;
}

static int visit(sy_view_node_t *node, void *arg)
{
    transform_run_t *run = arg;
    transform_state_t *s = run->s;
    const tf_group_t *g = run->group;
    syc_ottl_view_bind(&s->item, s->api, node);
    bool any = g->conds.count == 0;
    for (size_t i = 0; i < g->conds.count && !any; i++) {
        int rc = syc_ottl_eval_condition(g->conds.progs[i], &syc_ottl_view_accessor, &s->item,
                                         s->scratch, &any);
        if (rc < 0 && (rc = failed(run, "condition", i, rc)) < 0) return rc;
    }
    if (!any) return 0;
    for (size_t i = 0; i < g->stmts.count; i++) {
        int rc = syc_ottl_exec_statement(g->stmts.progs[i], &syc_ottl_view_accessor, &s->item,
                                         s->scratch, NULL);
        if (rc < 0 && (rc = failed(run, "statement", i, rc)) < 0) return rc;
    }
    return 0;
}

static int transform_consume(void *state, sy_batch_t *batch)
{
    transform_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    int sig = info.signal == SY_SIGNAL_TRACES    ? S_TRACES
              : info.signal == SY_SIGNAL_METRICS ? S_METRICS
                                                 : S_LOGS;
    if (s->ngroups[sig] == 0) return api->emit(s->inst, batch);

    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM; /* the batch is still the caller's */
    transform_run_t run = {.s = s};
    int rc = 0;
    for (size_t g = 0; g < s->ngroups[sig] && rc >= 0; g++) {
        run.group = &s->groups[sig][g];
        rc = syc_ottl_view_walk(api, api->view_root(v), run.group->stmts.ctx, visit, &run);
    }
    if (rc >= 0) rc = api->view_commit(v); /* one commit per batch; none without edits */
    api->view_close(v);
    if (rc < 0) {
        if (!run.error)
            SY_LOG(api, s->inst, SY_LOG_ERROR, "failed transforming batch (error %d)", rc);
        return rc;
    }
    return api->emit(s->inst, batch);
}

static void transform_destroy(void *state)
{
    transform_state_t *s = state;
    if (!s) return;
    for (int sig = 0; sig < S_COUNT; sig++) {
        for (size_t g = 0; g < s->ngroups[sig]; g++) {
            syc_ottl_list_free(&s->groups[sig][g].stmts);
            syc_ottl_list_free(&s->groups[sig][g].conds);
        }
        free(s->groups[sig]);
    }
    syc_ottl_scratch_free(s->scratch);
    syc_ottl_view_item_free(&s->item);
    free(s);
}

/* Appends an empty group of ctx to the signal's groups. */
static tf_group_t *add_group(transform_state_t *s, int sig, syc_ottl_context_t ctx)
{
    tf_group_t *g = realloc(s->groups[sig], (s->ngroups[sig] + 1) * sizeof *g);
    if (!g) return NULL;
    s->groups[sig] = g;
    g = &g[s->ngroups[sig]++];
    *g = (tf_group_t){
        .stmts = {.ctx = ctx}, .conds = {.ctx = ctx}, .error_mode = s->cfg->error_mode};
    return g;
}

/* One flat statement: its context inferred from its paths (the signal's
 * default when no path names one); consecutive statements of one context share
 * a group. */
static int compile_flat(transform_state_t *s, int sig, const sy_cfg_node_t *el, const char *what,
                        tf_group_t **flat, char *err, size_t err_len)
{
    const sy_host_api_t *api = s->api;
    const char *src = api->cfg_scalar(el);
    syc_ottl_error_t e = {0};
    syc_ottl_context_t ctx = signal_info[sig].default_ctx;
    int rc = syc_ottl_infer_context(src, strlen(src), signal_info[sig].contexts, &ctx, &e);
    if (rc == SY_EAGAIN) ctx = signal_info[sig].default_ctx;
    if (rc == SY_EINVAL) {
        snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg);
        return SY_EINVAL;
    }
    syc_ottl_prog_t *p = syc_ottl_compile_statement(src, strlen(src), ctx, &e);
    if (!p) {
        snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg);
        return SY_EINVAL;
    }
    if ((!*flat || (*flat)->stmts.ctx != ctx) && !(*flat = add_group(s, sig, ctx))) {
        syc_ottl_free(p);
        return SY_ENOMEM;
    }
    syc_ottl_list_t *l = &(*flat)->stmts;
    if (syc_ottl_list_push(l, p) < 0) return SY_ENOMEM;
    return 0;
}

/* One {context, statements, conditions, error_mode} group. */
static int compile_group(transform_state_t *s, int sig, const sy_cfg_node_t *el, const char *what,
                         char *err, size_t err_len)
{
    const sy_host_api_t *api = s->api;
    const char *key = signal_info[sig].key;
    const sy_cfg_node_t *ctxn = NULL, *stmts = NULL, *conds = NULL, *emode = NULL;
    for (size_t k = 0; k < api->cfg_len(el); k++) {
        const char *name = NULL;
        const sy_cfg_node_t *v = api->cfg_at(el, k, &name);
        if (strcmp(name, "context") == 0) {
            ctxn = v;
        } else if (strcmp(name, "statements") == 0) {
            stmts = v;
        } else if (strcmp(name, "conditions") == 0) {
            conds = v;
        } else if (strcmp(name, "error_mode") == 0) {
            emode = v;
        } else {
            snprintf(err, err_len,
                     "%s: %s: unknown key '%s' (supported: context, statements, conditions, "
                     "error_mode)",
                     api->cfg_where(v), what, name);
            return SY_EINVAL;
        }
    }
    syc_ottl_context_t ctx = signal_info[sig].default_ctx;
    char sub[128];
    if (ctxn) {
        int rc = syc_ottl_context_from_cfg(api, ctxn, signal_info[sig].contexts, what, key, &ctx,
                                           err, err_len);
        if (rc < 0) return rc;
    } else {
        /* One context for the whole group: the most specific its paths name. */
        unsigned named = 0;
        int rc;
        snprintf(sub, sizeof sub, "%s.statements", what);
        if ((rc = syc_ottl_list_names(api, stmts, sub, &named, err, err_len)) < 0) return rc;
        snprintf(sub, sizeof sub, "%s.conditions", what);
        if ((rc = syc_ottl_list_names(api, conds, sub, &named, err, err_len)) < 0) return rc;
        syc_ottl_error_t e = {0};
        rc = syc_ottl_context_pick(named, signal_info[sig].contexts, &ctx, &e);
        if (rc == SY_EINVAL) {
            snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg + 7);
            return rc;
        }
        if (rc == SY_EAGAIN) ctx = signal_info[sig].default_ctx;
    }
    tf_group_t *g = add_group(s, sig, ctx);
    if (!g) return SY_ENOMEM;
    if (emode) {
        const char *m = api->cfg_kind(emode) == 's' ? api->cfg_scalar(emode) : "";
        int i = 0;
        while (error_modes[i] && strcmp(error_modes[i], m) != 0)
            i++;
        if (!error_modes[i]) {
            snprintf(err, err_len,
                     "%s: %s.error_mode: '%s' is not one of ignore, silent, propagate",
                     api->cfg_where(emode), what, m);
            return SY_EINVAL;
        }
        g->error_mode = i;
    }
    snprintf(sub, sizeof sub, "%s.statements", what);
    int rc = syc_ottl_list_compile(api, stmts, sub, ctx, true, &g->stmts, err, err_len);
    if (rc < 0) return rc;
    snprintf(sub, sizeof sub, "%s.conditions", what);
    return syc_ottl_list_compile(api, conds, sub, ctx, false, &g->conds, err, err_len);
}

/* Compiles one *_statements list: flat strings and groups, in order. */
static int compile_signal(transform_state_t *s, int sig, char *err, size_t err_len)
{
    const sy_host_api_t *api = s->api;
    const sy_cfg_node_t *node = s->cfg->statements[sig];
    const char *key = signal_info[sig].key;
    if (!node || api->cfg_kind(node) == 'n') return 0;
    if (api->cfg_kind(node) != 'l') {
        snprintf(err, err_len, "%s: %s: must be a list", api->cfg_where(node), key);
        return SY_EINVAL;
    }
    tf_group_t *flat = NULL;
    for (size_t i = 0, n = api->cfg_len(node); i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        char what[96];
        snprintf(what, sizeof what, "%s[%zu]", key, i);
        int rc;
        if (api->cfg_kind(el) == 's') {
            rc = compile_flat(s, sig, el, what, &flat, err, err_len);
        } else if (api->cfg_kind(el) == 'm') {
            flat = NULL;
            rc = compile_group(s, sig, el, what, err, err_len);
        } else {
            snprintf(err, err_len, "%s: %s: must be a statement or a {context, statements} map",
                     api->cfg_where(el), what);
            rc = SY_EINVAL;
        }
        if (rc < 0) return rc;
    }
    return 0;
}

static int transform_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                            void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.1 (the view)");
        return SY_ENOTSUP;
    }
    transform_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->scratch = syc_ottl_scratch_new(SYC_OTTL_SCRATCH_DEFAULT);
    if (!s->scratch) {
        transform_destroy(s);
        return SY_ENOMEM;
    }
    for (int sig = 0; sig < S_COUNT; sig++) {
        char err[512] = "";
        int rc = compile_signal(s, sig, err, sizeof err);
        if (rc < 0) {
            if (err[0]) api->log(inst, SY_LOG_ERROR, "%s", err);
            transform_destroy(s);
            return rc;
        }
    }
    *state = s;
    return SY_OK;
}

static const sy_plugin_t transform_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "transform",
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "1.0",
    .description = "Changes telemetry with OTTL statements.",
    .config_fields = transform_fields,
    .config_field_count = sizeof(transform_fields) / sizeof(transform_fields[0]),
    .config_size = sizeof(transform_config_t),
    .create = transform_create,
    .consume = transform_consume,
    .destroy = transform_destroy,
};
SY_PLUGIN_DEFINE(transform_descriptor)
