/*
 * sg_ingest.c - one traces batch, read through the view (docs/view.md), into the
 * store: the collector's aggregateMetrics. A CLIENT or PRODUCER span fills the
 * client half of the edge keyed (trace ID, its span ID); a SERVER or CONSUMER span
 * the server half of the edge keyed (trace ID, its parent span ID). An edge with
 * both halves is recorded and leaves the store at once; a client span naming a
 * database (database_name_attributes) is a whole edge by itself.
 */
#include <stdlib.h>
#include <string.h>

#include "attr_actions.h"
#include "sg.h"

/* Span kinds and status codes of the OTLP schema. */
enum { KIND_SERVER = 2, KIND_CLIENT = 3, KIND_PRODUCER = 4, KIND_CONSUMER = 5 };
enum { STATUS_ERROR = 2 };

/* v as the collector's Value.AsString() writes it, malloc'ed; NULL for arrays
 * and maps (the collector writes those as JSON, which this connector does not)
 * and on out of memory. */
static char *value_dup(const sy_value_t *v)
{
    char buf[64];
    size_t cap = syc_value_as_string_cap(v);
    char *tmp = cap <= sizeof(buf) ? buf : malloc(cap);
    if (!tmp) return NULL;
    const char *s;
    size_t n;
    char *out = NULL;
    if (syc_value_as_string(v, tmp, cap, &s, &n) == 0) {
        out = malloc(n + 1);
        if (out) {
            memcpy(out, s, n);
            out[n] = '\0';
        }
    }
    if (tmp != buf) free(tmp);
    return out;
}

/* Replaces *slot with a copy of v's string form. Returns 0, or SY_ENOMEM /
 * SY_EINVAL (an array or map) with *slot unchanged. */
static int set_value(char **slot, const sy_value_t *v)
{
    if (v->type == SY_VALUE_ARRAY || v->type == SY_VALUE_MAP) return SY_EINVAL;
    char *s = value_dup(v);
    if (!s) return SY_ENOMEM;
    free(*slot);
    *slot = s;
    return SY_OK;
}

static int set_str(char **slot, const char *s)
{
    char *d = strdup(s);
    if (!d) return SY_ENOMEM;
    free(*slot);
    *slot = d;
    return SY_OK;
}

/* The attribute `key` of the first of the nodes that has it (NULLs skipped). */
static bool attr_first(const sy_host_api_t *api, sy_view_node_t *a, sy_view_node_t *b,
                       const char *key, sy_value_t *out)
{
    size_t n = strlen(key);
    if (a && api->view_attr_get(a, key, n, out) == 0) return true;
    if (b && api->view_attr_get(b, key, n, out) == 0) return true;
    return false;
}

/* One bytes field (an ID) into dst[0, cap), zero-padded: an absent ID reads as
 * zeros, as pdata's empty ID. */
static void read_id(const sy_host_api_t *api, sy_view_node_t *span, sy_field_t f, uint8_t *dst,
                    size_t cap)
{
    sy_value_t v;
    memset(dst, 0, cap);
    if (api->view_get(span, f, &v) == 0 && v.type == SY_VALUE_BYTES && v.bytes)
        memcpy(dst, v.bytes, v.len < cap ? v.len : cap);
}

static int64_t read_int(const sy_host_api_t *api, sy_view_node_t *n, sy_field_t f)
{
    sy_value_t v;
    if (api->view_get(n, f, &v) != 0 || v.type != SY_VALUE_INT) return 0;
    return v.i;
}

/* The collector's upsertDimensions: each dimension from the resource first, then
 * the span, as "client_<dim>" / "server_<dim>". */
static int upsert_dims(const sg_t *sg, const sy_host_api_t *api, sg_edge_t *e, int side,
                       sy_view_node_t *res, sy_view_node_t *span)
{
    for (size_t i = 0; i < sg->o.ndims; i++) {
        sy_value_t v;
        if (!attr_first(api, res, span, sg->o.dims[i], &v)) continue;
        if (set_value(&e->dims[2 * i + side], &v) == SY_ENOMEM) return SY_ENOMEM;
    }
    return SY_OK;
}

/* What one span makes of its edge. */
typedef struct span_facts_s {
    bool client; /* client half (CLIENT/PRODUCER), else server half */
    uint8_t conn;
    bool error;
    double latency; /* seconds */
} span_facts_t;

static int update_edge(sg_t *sg, const sy_host_api_t *api, sg_edge_t *e, const span_facts_t *f,
                       const char *service, sy_view_node_t *res, sy_view_node_t *span)
{
    e->conn = f->conn;
    e->failed = e->failed || f->error;
    if (!f->client) {
        if (set_str(&e->server, service) < 0) return SY_ENOMEM;
        e->server_lat = f->latency;
        return upsert_dims(sg, api, e, 1, res, span);
    }
    if (set_str(&e->client, service) < 0) return SY_ENOMEM;
    e->client_lat = f->latency;
    if (upsert_dims(sg, api, e, 0, res, span) < 0) return SY_ENOMEM;
    /* The first peer attribute the span has (span attributes only). */
    for (size_t i = 0; i < sg->o.npeer; i++) {
        sy_value_t v;
        if (api->view_attr_get(span, sg->o.peer_attrs[i], strlen(sg->o.peer_attrs[i]), &v))
            continue;
        if (set_value(&e->peers[i], &v) == SY_ENOMEM) return SY_ENOMEM;
        break;
    }
    /* A database call has no server span: the client span is the whole edge. */
    for (size_t i = 0; i < sg->o.ndb; i++) {
        sy_value_t v;
        if (!attr_first(api, res, span, sg->o.db_attrs[i], &v)) continue;
        int rc = set_value(&e->server, &v);
        if (rc == SY_ENOMEM) return rc;
        if (rc == 0) {
            e->conn = SG_CONN_DATABASE;
            e->server_lat = f->latency;
        }
        break;
    }
    return SY_OK;
}

static int one_span(sg_t *sg, const sy_host_api_t *api, sy_view_node_t *res, sy_view_node_t *span,
                    const char *service, int64_t now_ns)
{
    span_facts_t f = {0};
    switch (read_int(api, span, SY_FIELD_KIND)) {
    case KIND_PRODUCER:
        f.conn = SG_CONN_MESSAGING;
        /* fall through */
    case KIND_CLIENT:
        f.client = true;
        break;
    case KIND_CONSUMER:
        f.conn = SG_CONN_MESSAGING;
        /* fall through */
    case KIND_SERVER:
        f.client = false;
        break;
    default:
        return SY_OK; /* not part of an edge */
    }
    uint8_t key[SG_KEY_LEN];
    read_id(api, span, SY_FIELD_TRACE_ID, key, 16);
    read_id(api, span, f.client ? SY_FIELD_SPAN_ID : SY_FIELD_PARENT_SPAN_ID, key + 16, 8);
    f.error = read_int(api, span, SY_FIELD_STATUS_CODE) == STATUS_ERROR;
    /* As the collector: unsigned nanoseconds, end - start, in seconds. */
    uint64_t start = (uint64_t)read_int(api, span, SY_FIELD_START_TIME);
    uint64_t end = (uint64_t)read_int(api, span, SY_FIELD_END_TIME);
    f.latency = (double)(end - start) / 1e9;

    sg_edge_t *e = sg_store_find(&sg->store, key);
    bool is_new = e == NULL;
    if (is_new) {
        e = sg_edge_new(key, sg->o.ndims, sg->o.npeer);
        if (!e) return SY_ENOMEM;
        e->expire_ns = now_ns + sg->o.ttl_ns;
    }
    int rc = update_edge(sg, api, e, &f, service, res, span);
    if (rc < 0) {
        if (is_new) sg_edge_free(e, sg->o.ndims, sg->o.npeer);
        return rc;
    }
    if (sg_has(e->client) && sg_has(e->server)) {
        rc = sg_series_record(sg, e, now_ns);
        if (!is_new) sg_store_remove(&sg->store, e);
        sg_edge_free(e, sg->o.ndims, sg->o.npeer);
        if (is_new) sg->stats.total_edges++;
        return rc;
    }
    if (is_new) {
        if (sg->store.len >= sg->o.max_items) {
            sg->stats.dropped_spans++;
            sg_edge_free(e, sg->o.ndims, sg->o.npeer);
            return SY_OK;
        }
        sg_store_insert(&sg->store, e);
        sg->stats.total_edges++;
    }
    return SY_OK;
}

int sg_ingest(sg_t *sg, const sy_host_api_t *api, sy_batch_t *batch, int64_t now_ns)
{
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    if (info.signal != SY_SIGNAL_TRACES) return SY_EINVAL;
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM;
    int rc = SY_OK;
    sy_view_node_t *root = api->view_root(v);
    size_t nres = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nres && rc == SY_OK; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        sy_value_t sv;
        char *service = NULL;
        if (api->view_attr_get(res, "service.name", 12, &sv) == 0) service = value_dup(&sv);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t c = 0; c < nsc && rc == SY_OK; c++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, c);
            size_t nsp = api->view_count(sc, SY_VIEW_ITEMS);
            if (!service) {
                sg->stats.no_service += nsp; /* the collector skips the resource */
                continue;
            }
            for (size_t i = 0; i < nsp && rc == SY_OK; i++)
                rc = one_span(sg, api, res, api->view_at(sc, SY_VIEW_ITEMS, i), service, now_ns);
        }
        free(service);
    }
    api->view_close(v);
    return rc;
}
