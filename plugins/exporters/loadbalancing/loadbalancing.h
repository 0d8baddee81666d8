/*
 * loadbalancing.h - the pieces of the `loadbalancing` exporter shared by its files:
 * the configuration, one backend, the instance, and the routing entry points.
 *
 * Every function runs on the instance's loop thread.
 */
#ifndef LB_LOADBALANCING_H
#define LB_LOADBALANCING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>
#include <uv.h>

#include "lb_ring.h"

/* What decides the backend of an item (routing_key). */
typedef enum lb_key_e {
    LB_KEY_DEFAULT = 0, /* traceID for traces and logs, service for metrics */
    LB_KEY_TRACE_ID,
    LB_KEY_SERVICE,
    LB_KEY_RESOURCE,
    LB_KEY_METRIC,
    LB_KEY_STREAM_ID,
    LB_KEY_ATTRIBUTES,
} lb_key_t;

/* The resolver's part of the configuration (filled by the host: loadbalancing.c). */
typedef struct lb_resolver_cfg_s {
    bool static_set; /* resolver.static is there */
    sy_cfg_strlist_t hostnames;
    bool dns_set; /* resolver.dns is there */
    char *dns_hostname;
    char *dns_port;
    int64_t dns_interval_ns;
    int64_t dns_timeout_ns;
} lb_resolver_cfg_t;

/* A growable byte buffer for routing keys. */
typedef struct lb_keybuf_s {
    uint8_t *p;
    size_t len, cap;
} lb_keybuf_t;

/* One backend: an OTLP gRPC exporter (the `otlp` exporter's code, see
 * loadbalancing.c) with its own queue and retries. */
typedef struct lb_backend_s {
    char *endpoint;      /* as the resolver gave it: the ring's name for it */
    char *target;        /* endpoint with the default port added: the exporter's */
    void *exp;           /* the otlp exporter's state (a syc_oxp_t) */
    void *cfg;           /* its configuration: the protocol.otlp block, endpoint = target */
    sy_metric_t *routed; /* loadbalancer_backend_items_<endpoint> */
    sy_batch_t **pend;   /* pieces its full queue refused, in order */
    size_t npend, cap_pend;
    bool retired;              /* gone from the resolver: draining, then freed */
    int reap_ticks;            /* ticks since its exporter said it was drained */
    struct lb_backend_s *next; /* the list of retired backends */
} lb_backend_t;

/* The instance. */
typedef struct lb_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const void *config; /* the lb_config_t (loadbalancing.c) */
    const lb_resolver_cfg_t *res_cfg;
    const sy_cfg_strlist_t *routing_attributes;
    uint64_t last_warn_ms; /* rate limit of the unroutable warning */
    lb_key_t key_traces, key_metrics, key_logs;
    lb_ring_t ring;
    lb_backend_t **backends; /* in ring order (the resolver's sorted list) */
    size_t nbackends;
    sy_view_builder_t **builders; /* one slot per backend, used inside lb_route() */
    lb_backend_t *retired;
    size_t npending; /* pieces parked over all backends */
    bool refused;    /* consume() returned SY_EAGAIN: call api->ready() when clear */
    bool stopping;
    lb_keybuf_t kb;
    uv_timer_t tick; /* pending flush and reaping; runs only while needed */
    bool tick_open, tick_running;
    /* dns resolver */
    uv_timer_t dns_timer;
    bool dns_open;
    struct lb_dns_req_s *dns_req; /* the lookup under way, NULL if none */
    /* metrics */
    sy_metric_t *m_resolutions, *m_resolutions_failed, *m_backends, *m_updates, *m_unroutable;
} lb_t;

/*
 * Routes one batch: splits it by routing key with the view builder and hands each
 * piece to its backend. SY_OK: the batch is taken (delivered, parked in a backend's
 * pending list, or counted as failed when no key could be read). SY_EAGAIN: no
 * backend yet, or pieces still pending; the caller keeps the batch. SY_ENOMEM.
 */
int lb_route(lb_t *s, sy_batch_t *batch);

/* The routing key of `item` (a span, data point or log record) into kb. Returns 1 with
 * a key, 0 when the item has none (service routing without service.name). */
int lb_item_key(lb_t *s, sy_view_node_t *item, lb_key_t key, lb_keybuf_t *kb);

/* Hands one piece to backend b (its queue, or its pending list when the queue is
 * full). Takes the reference. */
void lb_deliver(lb_t *s, lb_backend_t *b, sy_batch_t *piece);

/*
 * Installs a new list of backend endpoints (sorted, without duplicates; the strings
 * stay the caller's), as the collector's onBackendChanges(): a new ring, an exporter
 * for each new endpoint, the ones no longer listed drained and freed. Returns true
 * when the list changed (loadbalancing.c).
 */
bool lb_set_endpoints(lb_t *s, char **eps, size_t n);

/* Starts the configured resolver: `static` installs its list at once, `dns` starts
 * its timer and first look-up (lb_resolve.c). 0 or SY_ERROR. */
int lb_resolver_start(lb_t *s);

/* Stops the resolver (shutdown): closes its timer, orphans a look-up under way. */
void lb_resolver_stop(lb_t *s);

/* The effective key of a signal (resolving LB_KEY_DEFAULT). */
lb_key_t lb_key_for(const lb_t *s, sy_signal_t signal);

#endif
