/*
 * transform.c - the `transform` processor: runs OTTL statements (set, delete_key,
 * keep_keys, replace_pattern, ...) on spans, span events, metrics, data points,
 * log records, resources and scopes, as the collector's transformprocessor does.
 *
 * Each *_statements key takes the collector's two forms: a flat list of
 * statements, run in the signal's default context (span, datapoint, log), and a
 * list of groups `{context: span, statements: [...]}`. Statements are compiled
 * once in create(); a bad one fails the component with the file:line:col of its
 * YAML node and the column inside it. A batch is edited through the view
 * (ottl_view.h) and committed once, so a statement reads the batch as it arrived,
 * not as earlier statements of the same batch changed it.
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

typedef struct transform_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const transform_config_t *cfg;
    syc_ottl_list_t *groups[S_COUNT]; /* in config order, one per context group */
    size_t ngroups[S_COUNT];
    syc_ottl_scratch_t *scratch;
    syc_ottl_view_item_t item;
} transform_state_t;

typedef struct transform_run_s {
    transform_state_t *s;
    const syc_ottl_list_t *group;
    int error;
} transform_run_t;

static int visit(sy_view_node_t *node, void *arg)
{
    transform_run_t *run = arg;
    transform_state_t *s = run->s;
    syc_ottl_view_bind(&s->item, s->api, node);
    for (size_t i = 0; i < run->group->count; i++) {
        int rc = syc_ottl_exec_statement(run->group->progs[i], &syc_ottl_view_accessor, &s->item,
                                         s->scratch, NULL);
        if (rc >= 0) continue;
        if (s->cfg->error_mode == EM_PROPAGATE) {
            SY_LOG(s->api, s->inst, SY_LOG_ERROR,
                   "failed processing batch: statement %zu of the %s context: error %d", i,
                   syc_ottl_context_name(run->group->ctx), rc);
            run->error = rc;
            return rc;
        }
        if (s->cfg->error_mode == EM_IGNORE)
            SY_LOG(s->api, s->inst, SY_LOG_WARN,
                   "failed executing statement %zu of the %s context (error %d); going on", i,
                   syc_ottl_context_name(run->group->ctx), rc);
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
        rc = syc_ottl_view_walk(api, api->view_root(v), run.group->ctx, visit, &run);
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
        for (size_t g = 0; g < s->ngroups[sig]; g++)
            syc_ottl_list_free(&s->groups[sig][g]);
        free(s->groups[sig]);
    }
    syc_ottl_scratch_free(s->scratch);
    free(s);
}

/* Appends an empty group of ctx to the signal's groups. */
static syc_ottl_list_t *add_group(transform_state_t *s, int sig, syc_ottl_context_t ctx)
{
    syc_ottl_list_t *g = realloc(s->groups[sig], (s->ngroups[sig] + 1) * sizeof *g);
    if (!g) return NULL;
    s->groups[sig] = g;
    g = &g[s->ngroups[sig]++];
    *g = (syc_ottl_list_t){.ctx = ctx};
    return g;
}

/* Compiles one *_statements list: strings go to groups of the default context
 * (consecutive strings share one), maps are {context, statements} groups. */
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
    size_t n = api->cfg_len(node);
    syc_ottl_list_t *flat = NULL;
    for (size_t i = 0; i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        char what[96];
        snprintf(what, sizeof what, "%s[%zu]", key, i);
        if (api->cfg_kind(el) == 's') {
            syc_ottl_error_t e = {0};
            const char *src = api->cfg_scalar(el);
            syc_ottl_prog_t *p =
                syc_ottl_compile_statement(src, strlen(src), signal_info[sig].default_ctx, &e);
            if (!p) {
                snprintf(err, err_len, "%s: %s: %s", api->cfg_where(el), what, e.msg);
                return SY_EINVAL;
            }
            if (!flat && !(flat = add_group(s, sig, signal_info[sig].default_ctx))) {
                syc_ottl_free(p);
                return SY_ENOMEM;
            }
            syc_ottl_prog_t **progs = realloc(flat->progs, (flat->count + 1) * sizeof *progs);
            if (!progs) {
                syc_ottl_free(p);
                return SY_ENOMEM;
            }
            flat->progs = progs;
            progs[flat->count++] = p;
            continue;
        }
        flat = NULL;
        if (api->cfg_kind(el) != 'm') {
            snprintf(err, err_len, "%s: %s: must be a statement or a {context, statements} map",
                     api->cfg_where(el), what);
            return SY_EINVAL;
        }
        const sy_cfg_node_t *ctxn = NULL, *stmts = NULL;
        for (size_t k = 0; k < api->cfg_len(el); k++) {
            const char *name = NULL;
            const sy_cfg_node_t *v = api->cfg_at(el, k, &name);
            if (strcmp(name, "context") == 0) {
                ctxn = v;
            } else if (strcmp(name, "statements") == 0) {
                stmts = v;
            } else {
                snprintf(err, err_len, "%s: %s: unknown key '%s' (supported: context, statements)",
                         api->cfg_where(v), what, name);
                return SY_EINVAL;
            }
        }
        syc_ottl_context_t ctx = signal_info[sig].default_ctx;
        if (ctxn) {
            const char *cname = api->cfg_kind(ctxn) == 's' ? api->cfg_scalar(ctxn) : NULL;
            if (!cname || syc_ottl_context_parse(cname, &ctx) < 0 ||
                !(signal_info[sig].contexts & (1u << ctx))) {
                snprintf(err, err_len, "%s: %s.context: unknown context '%s' for %s",
                         api->cfg_where(ctxn), what, cname ? cname : "", key);
                return SY_EINVAL;
            }
        }
        syc_ottl_list_t *g = add_group(s, sig, ctx);
        if (!g) return SY_ENOMEM;
        char sub[128];
        snprintf(sub, sizeof sub, "%s.statements", what);
        int rc = syc_ottl_list_compile(api, stmts, sub, ctx, true, g, err, err_len);
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
