/*
 * sg.h - the servicegraph connector's engine: the store of half-seen edges
 * (sg_store.c), the series they are aggregated into and the OTLP metrics request
 * written from them (sg_series.c), and the walk of a traces batch through the view
 * (sg_ingest.c). No libuv, no clock of its own: every call that needs the time is
 * given it, so that tests drive expiry with a fake clock.
 *
 * Threads: one sg_t belongs to one thread (the connector's loop thread).
 */
#ifndef SY_SERVICEGRAPH_SG_H
#define SY_SERVICEGRAPH_SG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

/* connection_type label values, as the collector writes them. */
enum {
    SG_CONN_UNSET = 0,     /* "" */
    SG_CONN_MESSAGING = 1, /* "messaging_system" */
    SG_CONN_DATABASE = 2,  /* "database" */
    SG_CONN_VIRTUAL = 3,   /* "virtual_node" */
};

/* virtual_node label values (virtual_node_extra_label). */
enum {
    SG_VNODE_NONE = 0,   /* "" */
    SG_VNODE_CLIENT = 1, /* "client": the client was made up ("user") */
    SG_VNODE_SERVER = 2, /* "server": the server was made up from a peer attribute */
};

/* The settings the engine works with, resolved from the YAML (defaults applied).
 * The arrays are owned by the caller and must outlive the sg_t. */
typedef struct sg_opts_s {
    const double *bounds; /* latency bucket bounds in seconds, ascending */
    size_t nbounds;
    const char *const *dims; /* `dimensions` */
    size_t ndims;
    const char *const *peer_attrs; /* `virtual_node_peer_attributes` (0: no virtual nodes) */
    size_t npeer;
    const char *const *db_attrs; /* `database_name_attributes` */
    size_t ndb;
    bool virtual_node_extra_label;
    int64_t ttl_ns;        /* store.ttl */
    uint64_t max_items;    /* store.max_items */
    int64_t series_ttl_ns; /* a series not updated for this long is forgotten (15 min) */
} sg_opts_t;

/* What the engine counts (the connector's own metrics). */
typedef struct sg_stats_s {
    uint64_t dropped_spans;  /* a new edge found the store full */
    uint64_t expired_edges;  /* edges that expired before their pair came */
    uint64_t total_edges;    /* edges made (new keys) */
    uint64_t no_service;     /* spans skipped: their resource has no service.name */
    uint64_t virtual_edges;  /* edges completed with a virtual node */
    uint64_t series_expired; /* series forgotten after series_ttl_ns */
    uint64_t bad_spans;      /* spans whose fields did not read */
} sg_stats_t;

typedef struct sg_s sg_t;

/* A new engine, or NULL on out of memory. */
sg_t *sg_new(const sg_opts_t *opts);
void sg_free(sg_t *sg);

/*
 * Reads every span of a traces batch through the view (the caller keeps its
 * reference) and pairs client/producer spans with server/consumer spans in the
 * store; completed edges are aggregated at once. now_ns is a monotonic time (the
 * store's TTL and the series' age count from it). Returns 0, SY_ENOMEM (the view
 * or an edge could not be allocated: what was read until then is kept), or
 * SY_EINVAL when the batch is not traces.
 */
int sg_ingest(sg_t *sg, const sy_host_api_t *api, sy_batch_t *batch, int64_t now_ns);

/* Expires the edges whose TTL has passed at now_ns (oldest first), making
 * virtual-node edges as the collector does. */
void sg_expire(sg_t *sg, int64_t now_ns);

/* Forgets series not updated for series_ttl_ns (the collector's cache loop). */
void sg_clean_series(sg_t *sg, int64_t now_ns);

/*
 * The OTLP ExportMetricsServiceRequest of every series, cumulative: one resource
 * (no attributes), scope "traces_service_graph", metrics
 * traces_service_graph_request_total, traces_service_graph_request_failed_total
 * (Sums, monotonic, cumulative), traces_service_graph_request_server and
 * traces_service_graph_request_client (Histograms, unit "s", cumulative).
 * start_unix_ns / time_unix_nano are the points' times. *out is malloc'ed (the
 * caller frees it); *len is 0 and *out NULL when there is no series. Returns 0 or
 * SY_ENOMEM.
 */
int sg_encode(sg_t *sg, uint64_t start_unix_ns, uint64_t time_unix_ns, uint8_t **out, size_t *len);

const sg_stats_t *sg_stats(const sg_t *sg);
size_t sg_store_len(const sg_t *sg);
size_t sg_series_len(const sg_t *sg);

/* ---- internal to the engine's files ---------------------------------------- */

#define SG_KEY_LEN 24 /* trace id (16) + span id (8) */

typedef struct sg_edge_s {
    uint8_t key[SG_KEY_LEN];
    struct sg_edge_s *hnext;       /* hash chain */
    struct sg_edge_s *prev, *next; /* oldest first */
    int64_t expire_ns;
    uint8_t conn, vlabel;
    bool failed;
    char *client, *server; /* NULL: not seen yet */
    double client_lat, server_lat;
    char **dims;  /* 2 * ndims: [2i] client_<dim i>, [2i + 1] server_<dim i>; NULL: absent */
    char **peers; /* npeer: a value per peer attribute; NULL: absent */
} sg_edge_t;

typedef struct sg_store_s {
    sg_edge_t **buckets;
    size_t nbuckets; /* a power of two */
    sg_edge_t *head, *tail;
    size_t len;
} sg_store_t;

/* The collector's checks are on the string: an empty name is no name. */
static inline bool sg_has(const char *s)
{
    return s && *s;
}

int sg_store_init(sg_store_t *st, uint64_t max_items);
void sg_store_fini(sg_store_t *st, size_t ndims, size_t npeer);
sg_edge_t *sg_store_find(sg_store_t *st, const uint8_t key[SG_KEY_LEN]);
void sg_store_insert(sg_store_t *st, sg_edge_t *e);
void sg_store_remove(sg_store_t *st, sg_edge_t *e);
sg_edge_t *sg_edge_new(const uint8_t key[SG_KEY_LEN], size_t ndims, size_t npeer);
void sg_edge_free(sg_edge_t *e, size_t ndims, size_t npeer);

typedef struct sg_series_tab_s sg_series_tab_t;

struct sg_s {
    sg_opts_t o;
    sg_store_t store;
    sg_stats_t stats;
    sg_series_tab_t *series;
};

sg_series_tab_t *sg_series_new(void);
void sg_series_free(sg_series_tab_t *t, size_t ndims);

/* Records a completed edge into its series. Returns 0 or SY_ENOMEM. */
int sg_series_record(sg_t *sg, const sg_edge_t *e, int64_t now_ns);

#endif
