/*
 * lb_route.c - the routing of the `loadbalancing` exporter: the key of an item, the
 * split of a batch into one piece per backend (the view builder copies items still
 * encoded, with their resource and scope; nothing is decoded), and the hand-over of
 * a piece to its backend's queue.
 *
 * Keys, as the collector computes them where it says so exactly (traceID: the 16
 * trace-id bytes; service: the service.name string; metric: the metric name), and
 * as a stable byte string of the same fields where its key is an internal hash
 * (resource, streamID, attributes): those route consistently within Switchyard but
 * not to the same backend as the collector would (see the README).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadbalancing.h"
#include "otlp_exporter_common.h"

/* ---- the key buffer ----------------------------------------------------------------- */

static int kb_put(lb_keybuf_t *kb, const void *p, size_t n)
{
    if (kb->len + n > kb->cap) {
        size_t cap = kb->cap ? kb->cap : 256;
        while (cap < kb->len + n)
            cap *= 2;
        uint8_t *q = realloc(kb->p, cap);
        if (!q) return -1;
        kb->p = q;
        kb->cap = cap;
    }
    if (n) memcpy(kb->p + kb->len, p, n);
    kb->len += n;
    return 0;
}

/* A value as text: strings as they are, numbers and booleans as written in JSON,
 * bytes raw; containers by their encoded bytes (stable for equal values). */
static int kb_value(lb_keybuf_t *kb, const sy_value_t *v)
{
    char num[64];
    int n;
    switch (v->type) {
    case SY_VALUE_STRING:
        return kb_put(kb, v->str, v->len);
    case SY_VALUE_INT:
        n = snprintf(num, sizeof(num), "%" PRId64, v->i);
        return kb_put(kb, num, (size_t)n);
    case SY_VALUE_DOUBLE:
        n = snprintf(num, sizeof(num), "%.17g", v->d);
        return kb_put(kb, num, (size_t)n);
    case SY_VALUE_BOOL:
        return kb_put(kb, v->b ? "true" : "false", v->b ? 4 : 5);
    case SY_VALUE_BYTES:
        return kb_put(kb, v->bytes, v->len);
    default:
        return v->priv ? kb_put(kb, v->priv, v->priv_len) : 0;
    }
}

/* Every attribute of a node as key=value pairs separated by 0x1f. */
static int kb_attrs(const sy_host_api_t *api, lb_keybuf_t *kb, sy_view_node_t *node)
{
    size_t n = api->view_attr_count(node);
    for (size_t i = 0; i < n; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(node, i, &k, &v) < 0) continue;
        if (kb_put(kb, k.str, k.len) < 0 || kb_put(kb, "=", 1) < 0 || kb_value(kb, &v) < 0 ||
            kb_put(kb, "\x1f", 1) < 0)
            return -1;
    }
    return 0;
}

static sy_view_node_t *ancestor(const sy_host_api_t *api, sy_view_node_t *n, sy_node_kind_t kind)
{
    while (n && api->view_kind(n) != kind)
        n = api->view_parent(n);
    return n;
}

static int kb_field(const sy_host_api_t *api, lb_keybuf_t *kb, sy_view_node_t *n, sy_field_t f)
{
    sy_value_t v;
    if (api->view_get(n, f, &v) < 0) return 0;
    return kb_value(kb, &v);
}

/* routing_attributes: each name's value, looked up on the resource, then the scope,
 * then the item; span.kind and span.name are the span's fields. */
static int kb_routing_attrs(lb_t *s, lb_keybuf_t *kb, sy_view_node_t *item)
{
    const sy_host_api_t *api = s->api;
    const sy_cfg_strlist_t *names = s->routing_attributes;
    sy_view_node_t *scope = ancestor(api, item, SY_NODE_SCOPE);
    sy_view_node_t *res = ancestor(api, item, SY_NODE_RESOURCE);
    bool span = api->view_kind(item) == SY_NODE_SPAN;
    for (size_t i = 0; i < names->count; i++) {
        const char *name = names->items[i];
        size_t nl = strlen(name);
        sy_value_t v;
        int rc = -1;
        if (span && !strcmp(name, "span.kind"))
            rc = kb_field(api, kb, item, SY_FIELD_KIND);
        else if (span && !strcmp(name, "span.name"))
            rc = kb_field(api, kb, item, SY_FIELD_NAME);
        else if ((res && api->view_attr_get(res, name, nl, &v) == SY_OK) ||
                 (scope && api->view_attr_get(scope, name, nl, &v) == SY_OK) ||
                 api->view_attr_get(item, name, nl, &v) == SY_OK)
            rc = kb_value(kb, &v);
        else
            rc = 0;
        if (rc < 0 || kb_put(kb, "\x1f", 1) < 0) return -1;
    }
    return 0;
}

int lb_item_key(lb_t *s, sy_view_node_t *item, lb_key_t key, lb_keybuf_t *kb)
{
    const sy_host_api_t *api = s->api;
    sy_value_t v;
    kb->len = 0;
    switch (key) {
    case LB_KEY_TRACE_ID:
        /* The collector hashes the 16 id bytes; a log record without a trace id
         * hashes the empty string here (see the README). */
        if (api->view_get(item, SY_FIELD_TRACE_ID, &v) == SY_OK && v.type == SY_VALUE_BYTES)
            return kb_put(kb, v.bytes, v.len) < 0 ? -1 : 1;
        return 1;
    case LB_KEY_SERVICE: {
        sy_view_node_t *res = ancestor(api, item, SY_NODE_RESOURCE);
        if (!res || api->view_attr_get(res, "service.name", 12, &v) != SY_OK) return 0;
        return kb_value(kb, &v) < 0 ? -1 : 1;
    }
    case LB_KEY_RESOURCE:
        return kb_attrs(api, kb, ancestor(api, item, SY_NODE_RESOURCE)) < 0 ? -1 : 1;
    case LB_KEY_METRIC:
        return kb_field(api, kb, item, SY_FIELD_METRIC_NAME) < 0 ? -1 : 1;
    case LB_KEY_STREAM_ID: {
        sy_view_node_t *scope = ancestor(api, item, SY_NODE_SCOPE);
        if (kb_attrs(api, kb, ancestor(api, item, SY_NODE_RESOURCE)) < 0 ||
            kb_put(kb, "\x1e", 1) < 0 || kb_field(api, kb, item, SY_FIELD_SCOPE_NAME) < 0 ||
            kb_put(kb, "\x1e", 1) < 0 || kb_field(api, kb, item, SY_FIELD_SCOPE_VERSION) < 0 ||
            kb_put(kb, "\x1e", 1) < 0 || (scope && kb_attrs(api, kb, scope) < 0) ||
            kb_put(kb, "\x1e", 1) < 0 || kb_field(api, kb, item, SY_FIELD_METRIC_NAME) < 0 ||
            kb_put(kb, "\x1e", 1) < 0 || kb_attrs(api, kb, item) < 0)
            return -1;
        return 1;
    }
    case LB_KEY_ATTRIBUTES:
        return kb_routing_attrs(s, kb, item) < 0 ? -1 : 1;
    default:
        return 0;
    }
}

/* ---- hand-over ---------------------------------------------------------------------- */

void lb_deliver(lb_t *s, lb_backend_t *b, sy_batch_t *piece)
{
    sy_batch_info_t info;
    s->api->batch_info(piece, &info);
    if (b->npend == 0 && !b->retired) {
        int rc = syc_oxp_consume(b->exp, piece);
        if (rc == SY_OK) {
            s->api->metric_add(b->routed, (int64_t)info.items);
            return;
        }
        if (rc != SY_EAGAIN) {
            SY_LOG(s->api, s->inst, SY_LOG_WARN, "backend %s refused %" PRIu64 " %s (%d)",
                   b->endpoint, info.items, syc_xh_item_name(info.signal), rc);
            s->api->exporter_outcome(s->inst, info.signal, info.items, false);
            s->api->batch_release(piece);
            return;
        }
    }
    /* Its queue is full: park the piece; the tick hands it over when there is room. */
    if (b->npend == b->cap_pend) {
        size_t cap = b->cap_pend ? b->cap_pend * 2 : 4;
        sy_batch_t **p = realloc(b->pend, cap * sizeof(*p));
        if (!p) {
            SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: %" PRIu64 " %s to %s lost",
                   info.items, syc_xh_item_name(info.signal), b->endpoint);
            s->api->exporter_outcome(s->inst, info.signal, info.items, false);
            s->api->batch_release(piece);
            return;
        }
        b->pend = p;
        b->cap_pend = cap;
    }
    b->pend[b->npend++] = piece;
    s->npending++;
}

/* ---- the split ---------------------------------------------------------------------- */

lb_key_t lb_key_for(const lb_t *s, sy_signal_t signal)
{
    return signal == SY_SIGNAL_METRICS ? s->key_metrics
           : signal == SY_SIGNAL_LOGS  ? s->key_logs
                                       : s->key_traces;
}

/* The backend of one item, or -1 when it has no key; -2 out of memory. */
static long item_backend(lb_t *s, sy_view_node_t *item, lb_key_t key)
{
    int rc = lb_item_key(s, item, key, &s->kb);
    if (rc < 0) return -2;
    if (rc == 0) return -1;
    return lb_ring_find(&s->ring, s->kb.p ? s->kb.p : (const uint8_t *)"", s->kb.len);
}

int lb_route(lb_t *s, sy_batch_t *batch)
{
    const sy_host_api_t *api = s->api;
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    if (s->nbackends == 0) return SY_EAGAIN;
    lb_key_t key = lb_key_for(s, info.signal);
    /* Keys of the whole resource are computed once per resource. */
    bool per_resource = key == LB_KEY_SERVICE || key == LB_KEY_RESOURCE;
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM;
    long first = -3;
    bool several = false;
    uint64_t unroutable = 0;
    int rc = SY_OK;
    sy_view_node_t *root = api->view_root(v);
    size_t nres = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nres && rc == SY_OK; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        long res_backend = -3;
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t c = 0; c < nsc && rc == SY_OK; c++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, c);
            size_t n = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < n; i++) {
                sy_view_node_t *item = api->view_at(sc, SY_VIEW_ITEMS, i);
                long b;
                if (per_resource) {
                    if (res_backend == -3) res_backend = item_backend(s, item, key);
                    b = res_backend;
                } else {
                    b = item_backend(s, item, key);
                }
                if (b == -2) {
                    rc = SY_ENOMEM;
                    break;
                }
                if (b < 0) {
                    unroutable++;
                    continue;
                }
                if (first == -3)
                    first = b;
                else if (b != first)
                    several = true;
                if (!s->builders[b] && !(s->builders[b] = api->view_build(s->inst, info.signal))) {
                    rc = SY_ENOMEM;
                    break;
                }
                if (api->view_build_add(s->builders[b], item) < 0) {
                    rc = SY_ENOMEM;
                    break;
                }
            }
        }
    }
    if (rc == SY_OK && !several && unroutable == 0) {
        /* One backend (or nothing at all): the batch goes as it is. */
        for (size_t b = 0; b < s->nbackends; b++)
            if (s->builders[b]) {
                api->view_build_abort(s->builders[b]);
                s->builders[b] = NULL;
            }
        api->view_close(v);
        if (first < 0) {
            api->exporter_outcome(s->inst, info.signal, 0, true);
            api->batch_release(batch);
        } else {
            lb_deliver(s, s->backends[first], batch);
        }
        return SY_OK;
    }
    sy_batch_t **pieces = calloc(s->nbackends, sizeof(*pieces));
    if (!pieces) rc = SY_ENOMEM;
    for (size_t b = 0; b < s->nbackends; b++) {
        if (!s->builders[b]) continue;
        if (rc == SY_OK) {
            if (!(pieces[b] = api->view_build_finish(s->builders[b]))) rc = SY_ENOMEM;
        } else {
            api->view_build_abort(s->builders[b]);
        }
        s->builders[b] = NULL;
    }
    api->view_close(v);
    if (rc != SY_OK) {
        for (size_t b = 0; pieces && b < s->nbackends; b++)
            if (pieces[b]) api->batch_release(pieces[b]);
        free(pieces);
        SY_LOG(api, s->inst, SY_LOG_ERROR, "out of memory while splitting a batch");
        return rc;
    }
    for (size_t b = 0; b < s->nbackends; b++)
        if (pieces[b]) lb_deliver(s, s->backends[b], pieces[b]);
    free(pieces);
    if (unroutable) {
        /* As the collector: service routing needs service.name ("unable to get
         * service name"); those items are not exported. */
        api->metric_add(s->m_unroutable, (int64_t)unroutable);
        api->exporter_outcome(s->inst, info.signal, unroutable, false);
        uint64_t now = uv_now(api->loop(s->inst));
        if (s->last_warn_ms == 0 || now - s->last_warn_ms >= 10000) {
            s->last_warn_ms = now;
            SY_LOG(api, s->inst, SY_LOG_WARN,
                   "%" PRIu64 " %s dropped: unable to get service name (routing_key: service)",
                   unroutable, syc_xh_item_name(info.signal));
        }
    }
    api->batch_release(batch);
    return SY_OK;
}
