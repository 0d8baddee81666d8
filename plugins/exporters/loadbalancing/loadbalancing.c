/*
 * loadbalancing.c - the `loadbalancing` exporter: routes every span, data point or
 * log record by a routing key (trace id by default) over the collector's consistent
 * hash ring (lb_ring.c) to one of a list of OTLP/gRPC backends, each with its own
 * sending queue and retries. The backends come from a resolver: `static` (a list
 * of host:port) or `dns` (every address of a host name, looked up again every
 * `interval`). A change of the list rebuilds the ring; a backend that left drains
 * its queue and is then freed.
 *
 * Each backend is an instance of the `otlp` exporter's own code: this file
 * compiles plugins/exporters/otlp/otlp_grpc.c into itself (with its plugin entry
 * switched off) and drives one of its states per backend through the shared glue
 * of plugins/common/otlp_exporter_common.c, so `protocol.otlp` takes exactly the
 * otlp exporter's keys, and its gRPC framing, compression, TLS, timeout, retry and
 * queue behave the same. The field table of `protocol.otlp.*` is the otlp
 * exporter's, prefixed, made once when the plugin is loaded.
 *
 * A backend that is down keeps its place on the ring, as in the collector: its
 * pieces wait in its own queue and are retried by retry_on_failure; only a
 * resolver change moves keys to other backends.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>
#include <uv.h>

/* The otlp exporter, without its entry point. */
#undef SY_PLUGIN_DEFINE
#define SY_PLUGIN_DEFINE(descriptor)
#include "../otlp/otlp_grpc.c"
#undef SY_PLUGIN_DEFINE

#include "loadbalancing.h"

enum { LB_TICK_MS = 100 };

typedef struct lb_config_s {
    char *routing_key;
    sy_cfg_strlist_t routing_attributes;
    lb_resolver_cfg_t res;
    const sy_cfg_node_t *k8s;
    const sy_cfg_node_t *aws_cloud_map;
    otlp_config_t otlp;
} lb_config_t;

static const sy_config_field_t lb_own_fields[] = {
    {.name = "routing_key",
     .type = SY_CFG_STRING,
     .offset = offsetof(lb_config_t, routing_key),
     .description = "What decides the backend: traceID (default for traces and logs), "
                    "service (default for metrics), resource, metric, streamID or attributes."},
    {.name = "routing_attributes",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(lb_config_t, routing_attributes),
     .description = "With routing_key: attributes, the attributes whose values make the key "
                    "(resource, then scope, then item; span.kind and span.name for spans)."},
    {.name = "resolver.static",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(lb_config_t, res.static_set),
     .description = "(whether the static resolver is configured)"},
    {.name = "resolver.static.hostnames",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(lb_config_t, res.hostnames),
     .description = "The backends, as host:port (a host without a port gets 4317)."},
    {.name = "resolver.dns",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(lb_config_t, res.dns_set),
     .description = "(whether the dns resolver is configured)"},
    {.name = "resolver.dns.hostname",
     .type = SY_CFG_STRING,
     .offset = offsetof(lb_config_t, res.dns_hostname),
     .description = "Host name whose addresses are the backends (a headless Service)."},
    {.name = "resolver.dns.port",
     .type = SY_CFG_STRING,
     .offset = offsetof(lb_config_t, res.dns_port),
     .default_value = "4317",
     .description = "Port of every backend found by the dns resolver."},
    {.name = "resolver.dns.interval",
     .type = SY_CFG_DURATION,
     .offset = offsetof(lb_config_t, res.dns_interval_ns),
     .default_value = "5s",
     .description = "Time between two look-ups."},
    {.name = "resolver.dns.timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(lb_config_t, res.dns_timeout_ns),
     .default_value = "1s",
     .description = "A look-up that takes longer counts as failed (the list stays)."},
    {.name = "resolver.k8s",
     .type = SY_CFG_RAW,
     .offset = offsetof(lb_config_t, k8s),
     .description = "The Kubernetes resolver: not implemented (use dns with a headless "
                    "Service)."},
    {.name = "resolver.aws_cloud_map",
     .type = SY_CFG_RAW,
     .offset = offsetof(lb_config_t, aws_cloud_map),
     .description = "The AWS Cloud Map resolver: not implemented."},
};

#define LB_OWN_COUNT  (sizeof(lb_own_fields) / sizeof(lb_own_fields[0]))
#define LB_OTLP_COUNT (sizeof(otlp_fields) / sizeof(otlp_fields[0]))
#define LB_PREFIX     "protocol.otlp."

/*
 * The full table: ours, then the otlp exporter's under protocol.otlp. Written once,
 * under pthread_once, when the loader first asks for the descriptor, and read-only
 * after that: the one piece of process-wide state, shared by every instance.
 */
static sy_config_field_t lb_fields[LB_OWN_COUNT + LB_OTLP_COUNT];
static char lb_field_names[LB_OTLP_COUNT][96];
static pthread_once_t lb_fields_once = PTHREAD_ONCE_INIT;

static void lb_fields_init(void)
{
    memcpy(lb_fields, lb_own_fields, sizeof(lb_own_fields));
    const sy_config_field_t *of = otlp_plugin.config_fields;
    for (size_t i = 0; i < LB_OTLP_COUNT && i < otlp_plugin.config_field_count; i++) {
        sy_config_field_t f = of[i];
        snprintf(lb_field_names[i], sizeof(lb_field_names[i]), "%s%s", LB_PREFIX, f.name);
        f.name = lb_field_names[i];
        f.offset += offsetof(lb_config_t, otlp);
        if (!strcmp(of[i].name, "endpoint")) {
            /* Filled from the resolver: the collector ignores a value written here. */
            f.required = false;
            f.description = "Ignored: each backend's endpoint comes from the resolver.";
        }
        lb_fields[LB_OWN_COUNT + i] = f;
    }
}

/* ---- configuration ---------------------------------------------------------------- */

static const char *const lb_key_names[] = {"",       "traceID",  "service",    "resource",
                                           "metric", "streamID", "attributes", NULL};

static lb_key_t parse_key(const char *k)
{
    if (!k || !*k) return LB_KEY_DEFAULT;
    for (int i = 1; lb_key_names[i]; i++)
        if (!strcmp(k, lb_key_names[i])) return (lb_key_t)i;
    return (lb_key_t)-1;
}

static int lb_validate(const void *config, char *err, size_t err_len)
{
    const lb_config_t *c = config;
    lb_key_t key = parse_key(c->routing_key);
    if ((int)key < 0) {
        snprintf(err, err_len, "unsupported routing_key: \"%.64s\"", c->routing_key);
        return SY_EINVAL;
    }
    if (key == LB_KEY_ATTRIBUTES && c->routing_attributes.count == 0) {
        snprintf(err, err_len,
                 "routing_attributes must be specified when routing_key is "
                 "\"attributes\"");
        return SY_EINVAL;
    }
    if (key != LB_KEY_ATTRIBUTES && c->routing_attributes.count > 0) {
        snprintf(err, err_len,
                 "routing_attributes can only be used when routing_key is \"attributes\"");
        return SY_EINVAL;
    }
    if (c->k8s || c->aws_cloud_map) {
        snprintf(err, err_len,
                 "resolver.%s is not supported by Switchyard (use resolver.dns "
                 "with a headless Service, or resolver.static)",
                 c->k8s ? "k8s" : "aws_cloud_map");
        return SY_EINVAL;
    }
    if (c->res.static_set && c->res.dns_set) {
        snprintf(err, err_len, "only one resolver should be specified");
        return SY_EINVAL;
    }
    if (!c->res.static_set && !c->res.dns_set) {
        snprintf(err, err_len, "no resolvers specified for the exporter");
        return SY_EINVAL;
    }
    if (c->res.static_set && c->res.hostnames.count == 0) {
        snprintf(err, err_len, "no endpoints specified for the static resolver");
        return SY_EINVAL;
    }
    for (size_t i = 0; c->res.static_set && i < c->res.hostnames.count; i++)
        if (!*c->res.hostnames.items[i] || strpbrk(c->res.hostnames.items[i], " /@")) {
            snprintf(err, err_len, "resolver.static.hostnames: invalid endpoint \"%.100s\"",
                     c->res.hostnames.items[i]);
            return SY_EINVAL;
        }
    if (c->res.dns_set) {
        if (!c->res.dns_hostname || !*c->res.dns_hostname) {
            snprintf(err, err_len, "no hostname specified to resolve the backends");
            return SY_EINVAL;
        }
        const char *p = c->res.dns_port ? c->res.dns_port : "";
        if (*p && (strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)) {
            snprintf(err, err_len, "resolver.dns.port must be a port number, got \"%.32s\"", p);
            return SY_EINVAL;
        }
        if (c->res.dns_interval_ns <= 0 || c->res.dns_timeout_ns <= 0) {
            snprintf(err, err_len, "resolver.dns.interval and timeout must be positive");
            return SY_EINVAL;
        }
    }
    /* The otlp exporter's own checks, with a stand-in endpoint. */
    otlp_config_t o = c->otlp;
    o.endpoint = "backend:4317";
    return otlp_validate(&o, err, err_len);
}

/* ---- backends ---------------------------------------------------------------------- */

static void backend_free(lb_backend_t *b)
{
    if (!b) return;
    if (b->exp) syc_oxp_destroy(b->exp);
    free(b->cfg);
    free(b->pend);
    free(b->endpoint);
    free(b->target);
    free(b);
}

/* The metric name of a backend: loadbalancer_backend_items_<endpoint, [^a-zA-Z0-9]->_>. */
static sy_metric_t *backend_metric(lb_t *s, const char *endpoint)
{
    char name[160];
    int n = snprintf(name, sizeof(name), "loadbalancer_backend_items_%.120s", endpoint);
    for (int i = 0; i < n && name[i]; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            name[i] = '_';
    return s->api->metric_register(
        s->inst, name, "Items routed to one backend (the name says which).", SY_METRIC_COUNTER);
}

/* Makes and starts the exporter of one endpoint. NULL on failure (logged). */
static lb_backend_t *backend_new(lb_t *s, const lb_config_t *c, const char *endpoint)
{
    lb_backend_t *b = calloc(1, sizeof(*b));
    otlp_config_t *oc = malloc(sizeof(*oc));
    if (!b || !oc) goto nomem;
    b->cfg = oc;
    b->endpoint = strdup(endpoint);
    /* As the collector's endpointWithPort(): no ':' at all gets the default port. */
    if (!b->endpoint ||
        asprintf(&b->target, strchr(endpoint, ':') ? "%s" : "%s:4317", endpoint) < 0) {
        b->target = NULL;
        goto nomem;
    }
    *oc = c->otlp;
    oc->endpoint = b->target;
    if (otlp_create(s->api, s->inst, oc, &b->exp) != SY_OK) {
        b->exp = NULL;
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not create the exporter of backend %s",
               endpoint);
        backend_free(b);
        return NULL;
    }
    if (syc_oxp_start(b->exp) != SY_OK) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not start the exporter of backend %s",
               endpoint);
        /* Its helper is shut down by the failed start; free it with the retired. */
        b->retired = true;
        b->next = s->retired;
        s->retired = b;
        return NULL;
    }
    b->routed = backend_metric(s, endpoint);
    return b;
nomem:
    SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory creating backend %s", endpoint);
    if (b)
        b->cfg = oc;
    else
        free(oc);
    backend_free(b);
    return NULL;
}

static void tick_update(lb_t *s);

/* Stops a backend that left the ring: its queue drains (one last attempt for what
 * waits to retry, as the otlp exporter does at shutdown), then it is freed by the
 * tick. Pieces it had parked go back through the new ring. */
static void backend_retire(lb_t *s, lb_backend_t *b, sy_batch_t ***reroute, size_t *nreroute)
{
    b->retired = true;
    for (size_t i = 0; i < b->npend; i++)
        (*reroute)[(*nreroute)++] = b->pend[i];
    s->npending -= b->npend;
    b->npend = 0;
    syc_oxp_shutdown(b->exp);
    b->next = s->retired;
    s->retired = b;
}

/*
 * Installs a new list of endpoints (sorted, no duplicates), as the collector's
 * onBackendChanges(): a new ring; exporters for new endpoints; the ones no longer
 * listed drain and go. Returns true when the list changed.
 */
bool lb_set_endpoints(lb_t *s, char **eps, size_t n)
{
    const lb_config_t *c = s->config;
    bool same = n == s->nbackends;
    for (size_t i = 0; same && i < n; i++)
        same = !strcmp(eps[i], s->backends[i]->endpoint);
    if (same) return false;
    lb_backend_t **nb = calloc(n ? n : 1, sizeof(*nb));
    sy_view_builder_t **bl = calloc(n ? n : 1, sizeof(*bl));
    size_t total_pend = s->npending;
    sy_batch_t **reroute = calloc(total_pend ? total_pend : 1, sizeof(*reroute));
    if (!nb || !bl || !reroute) {
        free(nb);
        free(bl);
        free(reroute);
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: the backend list is unchanged");
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        lb_backend_t *b = NULL;
        for (size_t j = 0; j < s->nbackends; j++)
            if (s->backends[j] && !strcmp(s->backends[j]->endpoint, eps[i])) {
                b = s->backends[j];
                s->backends[j] = NULL;
                break;
            }
        if (!b) b = backend_new(s, c, eps[i]);
        if (b) nb[k++] = b;
    }
    size_t nreroute = 0;
    for (size_t j = 0; j < s->nbackends; j++)
        if (s->backends[j]) backend_retire(s, s->backends[j], &reroute, &nreroute);
    free(s->backends);
    free(s->builders);
    s->backends = nb;
    s->builders = bl;
    s->nbackends = k;
    lb_ring_free(&s->ring);
    const char **names = calloc(k ? k : 1, sizeof(*names));
    for (size_t i = 0; names && i < k; i++)
        names[i] = nb[i]->endpoint;
    if (!names || lb_ring_build(&s->ring, (const char *const *)names, k) < 0)
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: the ring is empty");
    free(names);
    s->api->metric_set(s->m_backends, (int64_t)k);
    s->api->metric_add(s->m_updates, 1);
    SY_LOG(s->api, s->inst, SY_LOG_INFO, "%zu backend(s) on the ring", k);
    /* Pieces parked for a backend that left go where the new ring says. */
    for (size_t i = 0; i < nreroute; i++) {
        int rc = lb_route(s, reroute[i]);
        if (rc != SY_OK) {
            sy_batch_info_t info;
            s->api->batch_info(reroute[i], &info);
            SY_LOG(s->api, s->inst, SY_LOG_WARN, "%llu %s lost: no backend to re-route to",
                   (unsigned long long)info.items, syc_xh_item_name(info.signal));
            s->api->exporter_outcome(s->inst, info.signal, info.items, false);
            s->api->batch_release(reroute[i]);
        }
    }
    free(reroute);
    tick_update(s);
    if (s->refused && s->npending == 0 && s->nbackends > 0) {
        s->refused = false;
        s->api->ready(s->inst);
    }
    return true;
}

/* ---- the tick: parked pieces and retired backends ---------------------------------- */

/* Hands parked pieces to their backends while their queues take them. */
static void flush_pending(lb_t *s)
{
    for (size_t i = 0; i < s->nbackends && s->npending; i++) {
        lb_backend_t *b = s->backends[i];
        size_t done = 0;
        while (done < b->npend) {
            sy_batch_info_t info;
            s->api->batch_info(b->pend[done], &info);
            int rc = syc_oxp_consume(b->exp, b->pend[done]);
            if (rc == SY_EAGAIN) break;
            if (rc == SY_OK) {
                s->api->metric_add(b->routed, (int64_t)info.items);
            } else {
                s->api->exporter_outcome(s->inst, info.signal, info.items, false);
                s->api->batch_release(b->pend[done]);
            }
            done++;
        }
        memmove(b->pend, b->pend + done, (b->npend - done) * sizeof(*b->pend));
        b->npend -= done;
        s->npending -= done;
    }
}

/* Frees retired backends once drained: their exporter closed its handles in the
 * loop iteration when it was drained, so one tick later they are gone. */
static void reap_retired(lb_t *s)
{
    lb_backend_t **link = &s->retired;
    while (*link) {
        lb_backend_t *b = *link;
        const syc_oxp_t *o = b->exp;
        if (o->curl == NULL && ++b->reap_ticks >= 2) {
            *link = b->next;
            backend_free(b);
            continue;
        }
        link = &b->next;
    }
}

static void on_tick(uv_timer_t *t)
{
    lb_t *s = t->data;
    flush_pending(s);
    reap_retired(s);
    if (s->refused && s->npending == 0 && s->nbackends > 0 && !s->stopping) {
        s->refused = false;
        s->api->ready(s->inst);
    }
    tick_update(s);
}

/* The tick runs only while something is parked or draining. */
static void tick_update(lb_t *s)
{
    if (!s->tick_open) return;
    bool need = s->npending > 0 || s->retired != NULL || (s->refused && s->nbackends > 0);
    if (need && !s->tick_running) {
        uv_timer_start(&s->tick, on_tick, LB_TICK_MS, LB_TICK_MS);
        s->tick_running = true;
    } else if (!need && s->tick_running) {
        uv_timer_stop(&s->tick);
        s->tick_running = false;
    }
}

/* ---- the plugin ---------------------------------------------------------------------- */

static int lb_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    const lb_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "this host has no view builder (ABI 1.1 needed)");
        return SY_ENOTSUP;
    }
    lb_key_t key = parse_key(c->routing_key);
    uint32_t sig = api->signals(inst);
    /* Which key serves which signal, as the collector's exporters accept them. */
    bool bad_traces = key == LB_KEY_METRIC || key == LB_KEY_STREAM_ID || key == LB_KEY_RESOURCE;
    bool bad_metrics = key == LB_KEY_TRACE_ID;
    bool bad_logs = key != LB_KEY_DEFAULT && key != LB_KEY_TRACE_ID && key != LB_KEY_SERVICE &&
                    key != LB_KEY_RESOURCE;
    if (((sig & SY_SIGNAL_TRACES) && bad_traces) || ((sig & SY_SIGNAL_METRICS) && bad_metrics) ||
        ((sig & SY_SIGNAL_LOGS) && bad_logs)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "unsupported routing_key: \"%s\" for the %s pipeline",
               c->routing_key,
               (sig & SY_SIGNAL_TRACES) && bad_traces     ? "traces"
               : (sig & SY_SIGNAL_METRICS) && bad_metrics ? "metrics"
                                                          : "logs");
        return SY_EINVAL;
    }
    lb_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->config = c;
    s->res_cfg = &c->res;
    s->routing_attributes = &c->routing_attributes;
    s->key_traces = key == LB_KEY_DEFAULT ? LB_KEY_TRACE_ID : key;
    s->key_metrics = key == LB_KEY_DEFAULT ? LB_KEY_SERVICE : key;
    s->key_logs = key == LB_KEY_DEFAULT ? LB_KEY_TRACE_ID : key;
    s->m_resolutions =
        api->metric_register(inst, "loadbalancer_num_resolutions",
                             "Resolutions the resolver made that succeeded.", SY_METRIC_COUNTER);
    s->m_resolutions_failed =
        api->metric_register(inst, "loadbalancer_num_resolutions_failed",
                             "Resolutions that failed (the list stays).", SY_METRIC_COUNTER);
    s->m_backends = api->metric_register(inst, "loadbalancer_num_backends", "Backends on the ring.",
                                         SY_METRIC_GAUGE);
    s->m_updates =
        api->metric_register(inst, "loadbalancer_num_backend_updates",
                             "Resolutions that changed the list of backends.", SY_METRIC_COUNTER);
    s->m_unroutable = api->metric_register(
        inst, "loadbalancer_unroutable_items",
        "Items not exported for want of a routing key (service routing without service.name).",
        SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

static int lb_start(void *state)
{
    lb_t *s = state;
    const lb_config_t *c = s->config;
    uv_loop_t *loop = s->api->loop(s->inst);
    if (uv_timer_init(loop, &s->tick) != 0) return SY_ERROR;
    s->tick.data = s;
    s->tick_open = true;
    if (lb_resolver_start(s) < 0) return SY_ERROR;
    if (!c->res.dns_set && s->nbackends == 0) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "no backend could be started");
        return SY_ERROR;
    }
    return SY_OK;
}

static int lb_consume(void *state, sy_batch_t *batch)
{
    lb_t *s = state;
    if (s->stopping) return SY_ECLOSED;
    if (s->npending) flush_pending(s);
    /* Pieces still parked: a backend's queue is full, so the whole exporter pushes
     * back (the collector's blocking queue does the same to its caller). */
    int rc = s->npending ? SY_EAGAIN : lb_route(s, batch);
    if (rc == SY_EAGAIN) s->refused = true;
    tick_update(s);
    return rc;
}

static void lb_shutdown(void *state)
{
    lb_t *s = state;
    s->stopping = true;
    lb_resolver_stop(s);
    flush_pending(s);
    for (size_t i = 0; i < s->nbackends; i++) {
        lb_backend_t *b = s->backends[i];
        for (size_t j = 0; j < b->npend; j++) {
            sy_batch_info_t info;
            s->api->batch_info(b->pend[j], &info);
            SY_LOG(s->api, s->inst, SY_LOG_WARN, "shutdown: %llu %s for %s not sent",
                   (unsigned long long)info.items, syc_xh_item_name(info.signal), b->endpoint);
            s->api->exporter_outcome(s->inst, info.signal, info.items, false);
            s->api->batch_release(b->pend[j]);
        }
        s->npending -= b->npend;
        b->npend = 0;
        syc_oxp_shutdown(b->exp);
    }
    if (s->tick_open) uv_close((uv_handle_t *)&s->tick, NULL);
    s->tick_open = false;
}

static void lb_destroy(void *state)
{
    lb_t *s = state;
    if (!s) return;
    for (size_t i = 0; i < s->nbackends; i++)
        backend_free(s->backends[i]);
    while (s->retired) {
        lb_backend_t *b = s->retired;
        s->retired = b->next;
        backend_free(b);
    }
    free(s->backends);
    free(s->builders);
    lb_ring_free(&s->ring);
    free(s->kb.p);
    free(s);
}

static const sy_plugin_t lb_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "loadbalancing",
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Routes by trace id (or service, metric, ...) over the collector's "
                   "consistent hash ring to OTLP/gRPC backends.",
    .config_fields = lb_fields,
    .config_field_count = LB_OWN_COUNT + LB_OTLP_COUNT,
    .config_size = sizeof(lb_config_t),
    .validate = lb_validate,
    .create = lb_create,
    .start = lb_start,
    .consume = lb_consume,
    .shutdown = lb_shutdown,
    .destroy = lb_destroy,
};

SY_EXPORT const sy_plugin_t *sy_plugin_entry(void);
SY_EXPORT const sy_plugin_t *sy_plugin_entry(void)
{
    pthread_once(&lb_fields_once, lb_fields_init);
    return &lb_plugin;
}
