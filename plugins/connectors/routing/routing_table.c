/*
 * routing_table.c - the routing connector's table (OTTL conditions compiled per
 * route, routes grouped into destinations) and its decision over one batch
 * (see routing_table.h for the semantics).
 *
 * A batch is routed in three passes over one view: collect the items (spans,
 * data points, log records) with the resources (and metrics) they belong to;
 * try the routes in table order on what is still undecided; then either hand
 * back "the whole batch goes to destination d" (the common case, which copies
 * nothing) or copy each item, still encoded, into the batch of its destination
 * with the view builder, which keeps items of one resource and scope together.
 */
#include "routing_table.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An item no route has decided yet. */
#define RT_UNSET (-2)

unsigned rt_signal_contexts(sy_signal_t signal)
{
    unsigned r = 1u << SYC_OTTL_CTX_RESOURCE;
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return r | 1u << SYC_OTTL_CTX_SPAN;
    case SY_SIGNAL_METRICS:
        return r | 1u << SYC_OTTL_CTX_METRIC | 1u << SYC_OTTL_CTX_DATAPOINT;
    case SY_SIGNAL_LOGS:
        return r | 1u << SYC_OTTL_CTX_LOG;
    }
    return r;
}

/* ---- the table ------------------------------------------------------------ */

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/*
 * Finds the condition of a statement "route() [where <condition>]": *cond at its
 * first character, or NULL for a bare route(). The collector's routing statements
 * call only the editor route(), which takes no arguments. Returns 0, or SY_EINVAL
 * with "col N: ..." in err.
 */
static int parse_route(const char *stmt, const char **cond, char *err, size_t err_len)
{
    const char *p = skip_space(stmt);
    if (strncmp(p, "route", 5) != 0 || ident_char(p[5])) {
        snprintf(err, err_len, "col %d: a routing statement must be route() [where <condition>]",
                 (int)(p - stmt) + 1);
        return SY_EINVAL;
    }
    p = skip_space(p + 5);
    if (*p != '(') {
        snprintf(err, err_len, "col %d: expected '(' after route", (int)(p - stmt) + 1);
        return SY_EINVAL;
    }
    p = skip_space(p + 1);
    if (*p != ')') {
        snprintf(err, err_len, "col %d: route() takes no arguments", (int)(p - stmt) + 1);
        return SY_EINVAL;
    }
    p = skip_space(p + 1);
    if (*p == '\0') {
        *cond = NULL;
        return 0;
    }
    if (strncmp(p, "where", 5) != 0 || ident_char(p[5])) {
        snprintf(err, err_len, "col %d: expected 'where' or the end after route()",
                 (int)(p - stmt) + 1);
        return SY_EINVAL;
    }
    const char *c = skip_space(p + 5);
    if (*c == '\0') {
        snprintf(err, err_len, "col %d: expected a condition after 'where'", (int)(c - stmt) + 1);
        return SY_EINVAL;
    }
    *cond = c;
    return 0;
}

/* An OTTL error of the condition that starts `offset` bytes into what the user
 * wrote, with its column counted from the start of that. */
static void ottl_error(const syc_ottl_error_t *e, size_t offset, char *err, size_t err_len)
{
    const char *msg = e->msg;
    if (strncmp(msg, "col ", 4) == 0) {
        const char *colon = strstr(msg, ": ");
        if (colon) msg = colon + 2;
    }
    if (e->col > 0)
        snprintf(err, err_len, "col %d: %s", e->col + (int)offset, msg);
    else
        snprintf(err, err_len, "%s", msg);
}

static int resolve_context(const char *context, const char *cond, syc_ottl_context_t *ctx,
                           char *err, size_t err_len)
{
    if (context) {
        if (strcmp(context, "request") == 0) {
            snprintf(err, err_len,
                     "the request context is not supported: batches carry no request metadata "
                     "(HTTP headers, gRPC metadata) to route on");
            return SY_EINVAL;
        }
        if (syc_ottl_context_parse(context, ctx) < 0 || !(RT_CONTEXTS & 1u << *ctx)) {
            snprintf(err, err_len,
                     "invalid context: %s (supported: resource, span, metric, datapoint, log)",
                     context);
            return SY_EINVAL;
        }
        return 0;
    }
    /* As the collector: the context that the condition's paths name (span.name),
     * else resource, the context of routing before contexts could be named. */
    *ctx = SYC_OTTL_CTX_RESOURCE;
    if (!cond) return 0;
    syc_ottl_error_t e = {0};
    int rc = syc_ottl_infer_context(cond, strlen(cond), RT_CONTEXTS, ctx, &e);
    if (rc == SY_EAGAIN) {
        *ctx = SYC_OTTL_CTX_RESOURCE;
        return 0;
    }
    if (rc < 0) {
        ottl_error(&e, 0, err, err_len);
        return SY_EINVAL;
    }
    return 0;
}

static char *dup_trimmed(const char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* A copy of ids[0..n) without repeats, in order; *out_n how many. NULL on
 * out of memory (n == 0 gives NULL and *out_n 0 too). */
static char **dup_unique(const char *const *ids, size_t n, size_t *out_n)
{
    *out_n = 0;
    if (n == 0) return NULL;
    char **v = calloc(n, sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(v[j], ids[i]) == 0;
        if (seen) continue;
        if (!(v[k] = strdup(ids[i]))) {
            free_strings(v, k);
            return NULL;
        }
        k++;
    }
    *out_n = k;
    return v;
}

int rt_table_add(rt_table_t *t, const char *context, const char *statement, const char *condition,
                 const char *const *pipelines, size_t npipelines, char *err, size_t err_len)
{
    if ((statement == NULL) == (condition == NULL)) {
        snprintf(err, err_len,
                 statement ? "invalid route: both condition and statement provided"
                           : "invalid route: no condition or statement provided");
        return SY_EINVAL;
    }
    if (npipelines == 0) {
        snprintf(err, err_len, "invalid route: no pipelines defined");
        return SY_EINVAL;
    }
    const char *cond = condition;
    size_t offset = 0; /* of the condition in what the user wrote */
    if (statement) {
        if (parse_route(statement, &cond, err, err_len) < 0) return SY_EINVAL;
        offset = cond ? (size_t)(cond - statement) : 0;
    } else {
        cond = skip_space(condition);
        offset = (size_t)(cond - condition);
        if (*cond == '\0') {
            snprintf(err, err_len, "invalid route: the condition is empty");
            return SY_EINVAL;
        }
    }
    syc_ottl_context_t ctx;
    if (resolve_context(context, cond, &ctx, err, err_len) < 0) return SY_EINVAL;

    char *text = NULL;
    if (cond) {
        char *c = dup_trimmed(cond);
        if (!c) return SY_ENOMEM;
        size_t len = strlen(c) + sizeof "route() where ";
        text = malloc(len);
        if (text) snprintf(text, len, "route() where %s", c);
        free(c);
    } else {
        text = strdup("route()");
    }
    if (!text) return SY_ENOMEM;
    for (size_t i = 0; i < t->nroutes; i++)
        if (t->routes[i].ctx == ctx && strcmp(t->routes[i].text, text) == 0) {
            free(text);
            return 1;
        }

    syc_ottl_prog_t *prog = NULL;
    if (cond) {
        syc_ottl_error_t e = {0};
        prog = syc_ottl_compile_condition(cond, strlen(cond), ctx, &e);
        if (!prog) {
            ottl_error(&e, offset, err, err_len);
            free(text);
            return SY_EINVAL;
        }
    }
    rt_route_t *grown = realloc(t->routes, (t->nroutes + 1) * sizeof *grown);
    if (!grown) goto nomem;
    t->routes = grown;
    rt_route_t *rt = &t->routes[t->nroutes];
    *rt = (rt_route_t){.ctx = ctx, .prog = prog, .text = text, .dest = RT_DROP};
    if (!(rt->pipelines = dup_unique(pipelines, npipelines, &rt->npipelines))) goto nomem;
    t->nroutes++;
    return 0;
nomem:
    syc_ottl_free(prog);
    free(text);
    return SY_ENOMEM;
}

int rt_table_set_default(rt_table_t *t, const char *const *pipelines, size_t n)
{
    free_strings(t->defaults, t->ndefaults);
    t->defaults = dup_unique(pipelines, n, &t->ndefaults);
    return n && !t->defaults ? SY_ENOMEM : 0;
}

static bool same_set(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = strcmp(a[i], b[j]) == 0;
        if (!found) return false;
    }
    return true;
}

/* The destination of the set ids[0..n), added when new. */
static int dest_of(rt_table_t *t, const char *const *ids, size_t n)
{
    for (size_t d = 0; d < t->ndests; d++)
        if (same_set(t->dests[d].ids, t->dests[d].n, ids, n)) return (int)d;
    t->dests[t->ndests] = (rt_dest_t){.ids = ids, .n = n};
    return (int)t->ndests++;
}

int rt_table_finish(rt_table_t *t)
{
    free(t->dests);
    t->ndests = 0;
    if (!(t->dests = calloc(t->nroutes + 1, sizeof *t->dests))) return SY_ENOMEM;
    for (size_t i = 0; i < t->nroutes; i++)
        t->routes[i].dest =
            dest_of(t, (const char *const *)t->routes[i].pipelines, t->routes[i].npipelines);
    t->default_dest =
        t->ndefaults ? dest_of(t, (const char *const *)t->defaults, t->ndefaults) : RT_DROP;
    return 0;
}

void rt_table_free(rt_table_t *t)
{
    for (size_t i = 0; i < t->nroutes; i++) {
        syc_ottl_free(t->routes[i].prog);
        free(t->routes[i].text);
        free_strings(t->routes[i].pipelines, t->routes[i].npipelines);
    }
    free(t->routes);
    free_strings(t->defaults, t->ndefaults);
    free(t->dests);
    memset(t, 0, sizeof *t);
}

/* ---- the runner ----------------------------------------------------------- */

int rt_runner_init(rt_runner_t *r)
{
    memset(r, 0, sizeof *r);
    r->scratch = syc_ottl_scratch_new(SYC_OTTL_SCRATCH_DEFAULT);
    return r->scratch ? 0 : SY_ENOMEM;
}

void rt_runner_free(rt_runner_t *r)
{
    syc_ottl_scratch_free(r->scratch);
    syc_ottl_view_item_free(&r->item);
    free(r->items);
    free(r->res);
    free(r->met);
    free(r->counts);
    free(r->builders);
    free(r->outs);
    memset(r, 0, sizeof *r);
}

/* Makes room for index `i` in *arr of *cap elements of `size` bytes. */
static int reserve(void **arr, size_t *cap, size_t i, size_t size)
{
    if (i < *cap) return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n <= i)
        n *= 2;
    void *grown = realloc(*arr, n * size);
    if (!grown) return SY_ENOMEM;
    *arr = grown;
    *cap = n;
    return 0;
}

#define RESERVE(arr, cap, i) reserve((void **)&(arr), &(cap), (i), sizeof *(arr))

/* One run: the table, the runner, and the counts of rt_result_t. */
typedef struct rt_run_s {
    const rt_table_t *t;
    rt_runner_t *r;
    const sy_host_api_t *api;
    rt_result_t *res;
    size_t nitems, nres, nmet;
    size_t undecided;
} rt_run_t;

static int add_group(rt_group_t **arr, size_t *cap, size_t i, sy_view_node_t *node, size_t first)
{
    if (reserve((void **)arr, cap, i, sizeof **arr) < 0) return SY_ENOMEM;
    (*arr)[i] = (rt_group_t){.node = node, .first = first};
    return 0;
}

static int add_item(rt_run_t *run, sy_view_node_t *node)
{
    rt_runner_t *r = run->r;
    if (RESERVE(r->items, r->items_cap, run->nitems) < 0) return SY_ENOMEM;
    r->items[run->nitems++] = (rt_item_t){.node = node, .dest = RT_UNSET};
    return 0;
}

/* Lists every item with the resource (and metric) it belongs to. */
static int collect(rt_run_t *run, sy_view_node_t *root, bool metrics)
{
    const sy_host_api_t *api = run->api;
    rt_runner_t *r = run->r;
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t i = 0; i < nr; i++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, i);
        if (add_group(&r->res, &r->res_cap, run->nres++, res, run->nitems) < 0) return SY_ENOMEM;
        size_t ns = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t j = 0; j < ns; j++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, j);
            if (!metrics) {
                size_t n = api->view_count(sc, SY_VIEW_ITEMS);
                for (size_t k = 0; k < n; k++)
                    if (add_item(run, api->view_at(sc, SY_VIEW_ITEMS, k)) < 0) return SY_ENOMEM;
                continue;
            }
            size_t nm = api->view_count(sc, SY_VIEW_METRICS);
            for (size_t m = 0; m < nm; m++) {
                sy_view_node_t *met = api->view_at(sc, SY_VIEW_METRICS, m);
                if (add_group(&r->met, &r->met_cap, run->nmet++, met, run->nitems) < 0)
                    return SY_ENOMEM;
                size_t n = api->view_count(met, SY_VIEW_ITEMS);
                for (size_t k = 0; k < n; k++)
                    if (add_item(run, api->view_at(met, SY_VIEW_ITEMS, k)) < 0) return SY_ENOMEM;
            }
        }
    }
    /* The end sentinels: a group's items end where the next one's start. */
    if (add_group(&r->res, &r->res_cap, run->nres, NULL, run->nitems) < 0) return SY_ENOMEM;
    if (metrics && add_group(&r->met, &r->met_cap, run->nmet, NULL, run->nitems) < 0)
        return SY_ENOMEM;
    run->undecided = run->nitems;
    return 0;
}

/* Sends the undecided items of [first, end) to dest; returns how many. */
static uint64_t decide(rt_run_t *run, size_t first, size_t end, int dest)
{
    uint64_t n = 0;
    for (size_t i = first; i < end; i++)
        if (run->r->items[i].dest == RT_UNSET) {
            run->r->items[i].dest = dest;
            n++;
        }
    run->undecided -= n;
    return n;
}

static void count_default(rt_run_t *run, uint64_t n)
{
    if (run->t->default_dest == RT_DROP)
        run->res->dropped += n;
    else
        run->res->to_default += n;
}

/*
 * Route k on node, which encloses the items [first, end): when its condition
 * holds, the undecided ones among them go to the route's destination. A run-time
 * error stops the batch under propagate; under ignore and silent those items go
 * to the default pipelines, as the collector's README says.
 */
static int try_route(rt_run_t *run, size_t k, sy_view_node_t *node, size_t first, size_t end)
{
    bool any = false;
    for (size_t i = first; i < end && !any; i++)
        any = run->r->items[i].dest == RT_UNSET;
    if (!any) return 0;
    const rt_route_t *rt = &run->t->routes[k];
    bool match = true;
    int rc = 0;
    if (rt->prog) {
        syc_ottl_view_bind(&run->r->item, run->api, node);
        rc = syc_ottl_eval_condition(rt->prog, &syc_ottl_view_accessor, &run->r->item,
                                     run->r->scratch, &match);
    }
    if (rc < 0) {
        if (run->res->errors++ == 0) {
            run->res->first_error = rc;
            run->res->error_route = k;
        }
        if (run->t->error_mode == RT_EM_PROPAGATE) return rc;
        count_default(run, decide(run, first, end, run->t->default_dest));
        return 0;
    }
    if (match) run->res->matched += decide(run, first, end, rt->dest);
    return 0;
}

static int run_routes(rt_run_t *run, unsigned contexts)
{
    const rt_table_t *t = run->t;
    rt_runner_t *r = run->r;
    for (size_t k = 0; k < t->nroutes && run->undecided; k++) {
        const rt_route_t *rt = &t->routes[k];
        if (!(contexts & 1u << rt->ctx)) continue;
        const rt_group_t *g = NULL;
        size_t ng = 0;
        if (rt->ctx == SYC_OTTL_CTX_RESOURCE)
            g = r->res, ng = run->nres;
        else if (rt->ctx == SYC_OTTL_CTX_METRIC)
            g = r->met, ng = run->nmet;
        int rc = 0;
        if (g) {
            for (size_t i = 0; i < ng && rc == 0; i++)
                rc = try_route(run, k, g[i].node, g[i].first, g[i + 1].first);
        } else {
            for (size_t i = 0; i < run->nitems && rc == 0; i++)
                rc = try_route(run, k, r->items[i].node, i, i + 1);
        }
        if (rc < 0) return rc;
    }
    count_default(run, decide(run, 0, run->nitems, t->default_dest));
    return 0;
}

/* Copies every item into the batch of its destination. */
static int build(rt_run_t *run, sy_instance_t *inst, sy_signal_t signal)
{
    const sy_host_api_t *api = run->api;
    rt_runner_t *r = run->r;
    size_t nd = run->t->ndests;
    int rc = 0;
    for (size_t d = 0; d < nd; d++) {
        r->builders[d] = NULL;
        if (r->counts[d] && !(r->builders[d] = api->view_build(inst, signal))) rc = SY_ENOMEM;
    }
    for (size_t i = 0; i < run->nitems && rc == 0; i++)
        if (r->items[i].dest >= 0)
            rc = api->view_build_add(r->builders[r->items[i].dest], r->items[i].node);
    rt_result_t *res = run->res;
    for (size_t d = 0; d < nd; d++) {
        if (!r->builders[d]) continue;
        if (rc < 0) {
            api->view_build_abort(r->builders[d]);
            continue;
        }
        sy_batch_t *b = api->view_build_finish(r->builders[d]);
        if (!b) {
            rc = SY_ENOMEM;
            continue;
        }
        r->outs[res->nouts++] = (rt_out_t){.dest = (int)d, .batch = b, .items = r->counts[d]};
    }
    if (rc < 0) {
        for (size_t i = 0; i < res->nouts; i++)
            api->batch_release(r->outs[i].batch);
        res->nouts = 0;
    }
    return rc < 0 ? rc : 0;
}

/*
 * The common case without a walk of the items: every route that applies to the
 * signal is of the resource context, so each resource goes whole to one place.
 * Evaluates the routes on each resource; when all resources go to the same
 * destination for the same reason (a route, or none), that is the answer: the
 * whole batch goes there, its item count from the batch. Returns 1 when decided,
 * 0 when the items must be listed (resources going to different places, or a
 * condition that failed: the full pass decides and counts), <0 under propagate.
 */
static int route_resources(const rt_table_t *t, rt_runner_t *r, const sy_host_api_t *api,
                           sy_view_node_t *root, unsigned contexts, uint64_t items,
                           rt_result_t *res)
{
    for (size_t k = 0; k < t->nroutes; k++)
        if ((contexts & 1u << t->routes[k].ctx) && t->routes[k].ctx != SYC_OTTL_CTX_RESOURCE)
            return 0;
    int dest = RT_UNSET;
    bool by_route = false;
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t i = 0; i < nr; i++) {
        sy_view_node_t *node = api->view_at(root, SY_VIEW_RESOURCES, i);
        int d = t->default_dest;
        bool matched = false;
        for (size_t k = 0; k < t->nroutes && !matched; k++) {
            const rt_route_t *rt = &t->routes[k];
            if (!(contexts & 1u << rt->ctx)) continue;
            bool match = true;
            if (rt->prog) {
                syc_ottl_view_bind(&r->item, api, node);
                int rc = syc_ottl_eval_condition(rt->prog, &syc_ottl_view_accessor, &r->item,
                                                 r->scratch, &match);
                if (rc < 0) {
                    if (t->error_mode != RT_EM_PROPAGATE) return 0;
                    res->errors = 1;
                    res->first_error = rc;
                    res->error_route = k;
                    return rc;
                }
            }
            if (match) d = rt->dest, matched = true;
        }
        if (dest != RT_UNSET && (d != dest || matched != by_route)) return 0;
        dest = d;
        by_route = matched;
    }
    res->items = items;
    if (dest == RT_UNSET) return 1; /* no resource: nothing to route */
    res->whole_dest = dest;
    if (by_route)
        res->matched = items;
    else if (dest == RT_DROP)
        res->dropped = items;
    else
        res->to_default = items;
    return 1;
}

int rt_route(const rt_table_t *t, rt_runner_t *r, const sy_host_api_t *api, sy_instance_t *inst,
             sy_batch_t *batch, rt_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->whole = true;
    res->whole_dest = t->default_dest;
    size_t nd = t->ndests;
    if (RESERVE(r->counts, r->dest_cap, nd) < 0) return SY_ENOMEM;
    /* counts, builders and outs grow together, all to dest_cap. */
    size_t cap = r->dest_cap;
    sy_view_builder_t **b = realloc(r->builders, cap * sizeof *b);
    if (!b) return SY_ENOMEM;
    r->builders = b;
    rt_out_t *o = realloc(r->outs, cap * sizeof *o);
    if (!o) return SY_ENOMEM;
    r->outs = o;
    res->outs = r->outs;

    sy_batch_info_t info;
    api->batch_info(batch, &info);
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM;
    unsigned contexts = rt_signal_contexts(info.signal);
    int rc = route_resources(t, r, api, api->view_root(v), contexts, info.items, res);
    if (rc != 0) {
        api->view_close(v);
        return rc < 0 ? rc : 0;
    }
    rt_run_t run = {.t = t, .r = r, .api = api, .res = res};
    rc = collect(&run, api->view_root(v), info.signal == SY_SIGNAL_METRICS);
    res->items = run.nitems;
    if (rc == 0) rc = run_routes(&run, contexts);
    if (rc < 0) goto out;

    memset(r->counts, 0, nd * sizeof *r->counts);
    bool single = true; /* one destination (or none) for every item: no copy */
    for (size_t i = 0; i < run.nitems; i++) {
        int d = r->items[i].dest;
        if (d >= 0) r->counts[d]++;
        single = single && d == r->items[0].dest;
    }
    if (single) {
        if (run.nitems) res->whole_dest = r->items[0].dest;
        goto out;
    }
    res->whole = false;
    rc = build(&run, inst, info.signal);
out:
    api->view_close(v);
    return rc;
}
