/*
 * zipkin_out.c - OTLP spans as Zipkin v2 spans, read through the view only (no
 * protobuf-c), as the collector's zipkinv2 FromTranslator does: the resource's
 * attributes and the scope's name and version become tags of every span, the
 * service name comes from service.name (or faas.name, k8s.deployment.name,
 * process.executable.name, with otlp.service.name.source naming which), the
 * endpoints from net.host.* / net.peer.* / peer.service, the status from
 * error / otel.status_code / otel.status_description, events become
 * annotations and links otlp.link.<i> tags.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "zipkin_out.h"

#define ABSENT_START "otel.zipkin.absentField.startTime"

typedef struct tx_s {
    const sy_host_api_t *api;
    zo_arena_t *arena;
    bool failed;
} tx_t;

/* A string copied into the arena. */
static zo_str_t arena_str(tx_t *t, const void *s, size_t len)
{
    char *p = zo_alloc(t->arena, len + 1);
    if (!p) {
        t->failed = true;
        return (zo_str_t){"", 0};
    }
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return (zo_str_t){p, len};
}

static zo_str_t buf_str(tx_t *t, zo_buf_t *b)
{
    if (b->failed) t->failed = true;
    zo_str_t s = arena_str(t, b->p ? (const char *)b->p : "", b->len);
    free(b->p);
    memset(b, 0, sizeof(*b));
    return s;
}

/* ---- values as text (pcommon.Value.AsString) ----------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(zo_buf_t *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        zo_put(b, q, 4);
    }
}

/* A double as pcommon's AsString writes it (Go's encoding/json): the shortest
 * decimal that reads back as d, with an exponent below 1e-6 and from 1e21 up
 * ("1e-7", "1e+21"), without one in between. */
static void put_double(zo_buf_t *b, double d, bool json)
{
    char s[400];
    if (isnan(d) || isinf(d)) {
        const char *t = isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf";
        if (json)
            zo_json_str(b, t, strlen(t)); /* JSON has no NaN: written as a string */
        else
            zo_puts(b, t);
        return;
    }
    double a = fabs(d);
    bool exp = a != 0 && (a < 1e-6 || a >= 1e21);
    for (int p = 0; p <= 340; p++) {
        snprintf(s, sizeof(s), exp ? "%.*e" : "%.*f", p, d);
        if (strtod(s, NULL) == d) break;
    }
    size_t n = strlen(s);
    if (exp && n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
        s[n - 2] = s[n - 1]; /* e-07 -> e-7, as Go writes it */
        s[n - 1] = '\0';
    }
    zo_puts(b, s);
}

static void put_value(const sy_host_api_t *api, zo_buf_t *b, const sy_value_t *v, bool json,
                      int depth);

/* An ARRAY or MAP value as JSON (pcommon's AsString of a slice or map). */
static void put_container(const sy_host_api_t *api, zo_buf_t *b, const sy_value_t *v, int depth)
{
    bool map = v->type == SY_VALUE_MAP;
    zo_put(b, map ? "{" : "[", 1);
    sy_value_iter_t it = {.value = v};
    sy_value_t k, x;
    bool first = true;
    while (api->view_value_next(&it, &k, &x) == 1) {
        if (!first) zo_put(b, ",", 1);
        first = false;
        if (map) {
            zo_json_str(b, k.str, k.len);
            zo_put(b, ":", 1);
        }
        put_value(api, b, &x, true, depth + 1);
    }
    zo_put(b, map ? "}" : "]", 1);
}

static void put_value(const sy_host_api_t *api, zo_buf_t *b, const sy_value_t *v, bool json,
                      int depth)
{
    char num[32];
    switch (v->type) {
    case SY_VALUE_STRING:
        if (json)
            zo_json_str(b, v->str, v->len);
        else
            zo_put(b, v->str, v->len);
        break;
    case SY_VALUE_BOOL:
        zo_puts(b, v->b ? "true" : "false");
        break;
    case SY_VALUE_INT:
        snprintf(num, sizeof(num), "%" PRId64, v->i);
        zo_puts(b, num);
        break;
    case SY_VALUE_DOUBLE:
        put_double(b, v->d, json);
        break;
    case SY_VALUE_BYTES:
        if (json) zo_put(b, "\"", 1);
        put_base64(b, v->bytes, v->len);
        if (json) zo_put(b, "\"", 1);
        break;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP:
        if (depth > 32)
            zo_puts(b, json ? "null" : "");
        else
            put_container(api, b, v, depth);
        break;
    default:
        if (json) zo_puts(b, "null");
        break;
    }
}

static zo_str_t value_text(tx_t *t, const sy_value_t *v)
{
    if (v->type == SY_VALUE_STRING) return (zo_str_t){v->str, v->len};
    zo_buf_t b = {0};
    put_value(t->api, &b, v, false, 0);
    return buf_str(t, &b);
}

/* ---- the tag map --------------------------------------------------------------------- */

typedef struct tagmap_s {
    zo_tag_t *v;
    size_t n, cap;
} tagmap_t;

static bool key_is(zo_str_t k, const char *s)
{
    size_t n = strlen(s);
    return k.len == n && memcmp(k.s, s, n) == 0;
}

static zo_tag_t *tag_find(tagmap_t *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (key_is(m->v[i].key, key)) return &m->v[i];
    return NULL;
}

static void tag_set(tx_t *t, tagmap_t *m, zo_str_t key, zo_str_t val)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].key.len == key.len && !memcmp(m->v[i].key.s, key.s, key.len)) {
            m->v[i].value = val;
            return;
        }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        zo_tag_t *v = zo_alloc(t->arena, ncap * sizeof(*v));
        if (!v) {
            t->failed = true;
            return;
        }
        if (m->n) memcpy(v, m->v, m->n * sizeof(*v));
        m->v = v;
        m->cap = ncap;
    }
    m->v[m->n++] = (zo_tag_t){key, val};
}

static void tag_setc(tx_t *t, tagmap_t *m, const char *key, zo_str_t val)
{
    tag_set(t, m, (zo_str_t){key, strlen(key)}, val);
}

static bool tag_take(tagmap_t *m, const char *key, zo_str_t *out)
{
    zo_tag_t *tg = tag_find(m, key);
    if (!tg) return false;
    if (out) *out = tg->value;
    *tg = m->v[--m->n];
    return true;
}

static void tags_copy(tx_t *t, tagmap_t *dst, const tagmap_t *src)
{
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++)
        tag_set(t, dst, src->v[i].key, src->v[i].value);
}

/* Adds every attribute of a node, as text. */
static void attrs_to_tags(tx_t *t, sy_view_node_t *node, tagmap_t *m)
{
    size_t n = t->api->view_attr_count(node);
    for (size_t i = 0; i < n; i++) {
        sy_value_t k, v;
        if (t->api->view_attr_at(node, i, &k, &v) != 0) continue;
        tag_set(t, m, (zo_str_t){k.str, k.len}, value_text(t, &v));
    }
}

/* ---- endpoints, status, events, links --------------------------------------------- */

static void endpoint_from_tags(tagmap_t *m, zo_str_t service, bool remote, zo_endpoint_t *e)
{
    memset(e, 0, sizeof(*e));
    zo_str_t svc = service, ip = {NULL, 0}, port = {NULL, 0};
    if (remote) tag_take(m, "peer.service", &svc);
    bool have_ip = tag_take(m, remote ? "net.peer.ip" : "net.host.ip", &ip);
    bool have_port = tag_take(m, remote ? "net.peer.port" : "net.host.port", &port);
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN + 1];
    bool ip_ok = false;
    if (have_ip && ip.len < sizeof(text)) {
        memcpy(text, ip.s, ip.len);
        text[ip.len] = '\0';
        e->ipv6 = memchr(ip.s, ':', ip.len) != NULL;
        ip_ok = inet_pton(e->ipv6 ? AF_INET6 : AF_INET, text, bin) == 1;
    }
    if (have_port && port.len && port.len <= 5) {
        unsigned v = 0;
        bool ok = true;
        for (size_t i = 0; i < port.len; i++) {
            ok = ok && port.s[i] >= '0' && port.s[i] <= '9';
            v = v * 10 + (unsigned)(port.s[i] - '0');
        }
        if (ok && v <= 65535) e->port = (uint16_t)v;
    }
    if (!svc.len && !ip_ok) return;
    e->present = true;
    e->service_name = svc;
    if (ip_ok) e->ip = ip;
}

static void status_to_tags(tx_t *t, sy_view_node_t *span, tagmap_t *m)
{
    sy_value_t code, msg;
    t->api->view_get(span, SY_FIELD_STATUS_CODE, &code);
    t->api->view_get(span, SY_FIELD_STATUS_MESSAGE, &msg);
    int64_t c = code.type == SY_VALUE_INT ? code.i : 0;
    if (c == 2)
        tag_setc(t, m, "error", (zo_str_t){"true", 4});
    else
        tag_take(m, "error", NULL); /* only an error status says error */
    if (c == 0) return;
    tag_setc(t, m, "otel.status_code",
             c == 1   ? (zo_str_t){"OK", 2}
             : c == 2 ? (zo_str_t){"ERROR", 5}
                      : value_text(t, &code));
    if (msg.type == SY_VALUE_STRING && msg.len)
        tag_setc(t, m, "otel.status_description", (zo_str_t){msg.str, msg.len});
}

static int cmp_tag(const void *a, const void *b)
{
    const zo_tag_t *x = a, *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.s, y->key.s, n);
    return c ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* The attributes of an event or link as a JSON object, keys sorted as Go's
 * encoding/json writes a map. */
static void attrs_json(tx_t *t, sy_view_node_t *node, zo_buf_t *b)
{
    size_t n = t->api->view_attr_count(node);
    zo_tag_t *kv = n ? malloc(n * sizeof(*kv)) : NULL;
    sy_value_t *vals = n ? malloc(n * sizeof(*vals)) : NULL;
    if (n && (!kv || !vals)) {
        free(kv);
        free(vals);
        b->failed = true;
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        sy_value_t k;
        if (t->api->view_attr_at(node, i, &k, &vals[m]) != 0) continue;
        kv[m] = (zo_tag_t){{k.str, k.len}, {(const char *)&vals[m], 0}};
        m++;
    }
    if (m > 1) qsort(kv, m, sizeof(*kv), cmp_tag);
    zo_put(b, "{", 1);
    for (size_t i = 0; i < m; i++) {
        if (i) zo_put(b, ",", 1);
        zo_json_str(b, kv[i].key.s, kv[i].key.len);
        zo_put(b, ":", 1);
        put_value(t->api, b, (const sy_value_t *)kv[i].value.s, true, 0);
    }
    zo_put(b, "}", 1);
    free(kv);
    free(vals);
}

static void put_hex(zo_buf_t *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char c[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        zo_put(b, c, 2);
    }
}

static int64_t get_int(tx_t *t, sy_view_node_t *n, sy_field_t f)
{
    sy_value_t v;
    if (t->api->view_get(n, f, &v) != 0 || v.type != SY_VALUE_INT) return 0;
    return v.i;
}

static void events_to_annotations(tx_t *t, sy_view_node_t *span, zo_span_t *zs)
{
    size_t n = t->api->view_count(span, SY_VIEW_EVENTS);
    if (!n) return;
    zs->annotations = zo_alloc(t->arena, n * sizeof(zo_annotation_t));
    if (!zs->annotations) {
        t->failed = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *ev = t->api->view_at(span, SY_VIEW_EVENTS, i);
        sy_value_t name;
        t->api->view_get(ev, SY_FIELD_NAME, &name);
        zo_annotation_t *a = &zs->annotations[i];
        a->timestamp_us = (uint64_t)get_int(t, ev, SY_FIELD_TIME) / 1000u;
        int64_t dropped = get_int(t, ev, SY_FIELD_DROPPED_ATTRIBUTES);
        if (!t->api->view_attr_count(ev) && !dropped) {
            a->value = (zo_str_t){name.str ? name.str : "", name.len};
            continue;
        }
        zo_buf_t b = {0};
        zo_put(&b, name.str, name.len);
        zo_put(&b, "|", 1);
        attrs_json(t, ev, &b);
        char d[24];
        snprintf(d, sizeof(d), "|%" PRId64, dropped);
        zo_puts(&b, d);
        a->value = buf_str(t, &b);
    }
    zs->n_annotations = n;
}

static void links_to_tags(tx_t *t, sy_view_node_t *span, tagmap_t *m)
{
    size_t n = t->api->view_count(span, SY_VIEW_LINKS);
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *l = t->api->view_at(span, SY_VIEW_LINKS, i);
        sy_value_t tid, sid, ts;
        t->api->view_get(l, SY_FIELD_TRACE_ID, &tid);
        t->api->view_get(l, SY_FIELD_SPAN_ID, &sid);
        t->api->view_get(l, SY_FIELD_TRACE_STATE, &ts);
        zo_buf_t b = {0};
        put_hex(&b, tid.bytes, tid.type == SY_VALUE_BYTES ? tid.len : 0);
        zo_put(&b, "|", 1);
        put_hex(&b, sid.bytes, sid.type == SY_VALUE_BYTES ? sid.len : 0);
        zo_put(&b, "|", 1);
        zo_put(&b, ts.str, ts.type == SY_VALUE_STRING ? ts.len : 0);
        zo_put(&b, "|", 1);
        attrs_json(t, l, &b);
        char d[24];
        snprintf(d, sizeof(d), "|%" PRId64, get_int(t, l, SY_FIELD_DROPPED_ATTRIBUTES));
        zo_puts(&b, d);
        char key[32];
        int kn = snprintf(key, sizeof(key), "otlp.link.%zu", i);
        tag_set(t, m, arena_str(t, key, (size_t)kn), buf_str(t, &b));
    }
}

/* ---- spans ----------------------------------------------------------------------------- */

static bool id_of(tx_t *t, sy_view_node_t *span, sy_field_t f, uint8_t *out, size_t n)
{
    sy_value_t v;
    if (t->api->view_get(span, f, &v) != 0 || v.type != SY_VALUE_BYTES || v.len != n) return false;
    memcpy(out, v.bytes, n);
    for (size_t i = 0; i < n; i++)
        if (out[i]) return true;
    return false;
}

static bool span_out(tx_t *t, sy_view_node_t *span, zo_str_t service, const tagmap_t *base,
                     tagmap_t *m, zo_span_t *zs)
{
    memset(zs, 0, sizeof(*zs));
    if (!id_of(t, span, SY_FIELD_TRACE_ID, zs->trace_id, 16) ||
        !id_of(t, span, SY_FIELD_SPAN_ID, zs->id, 8))
        return false;
    for (int i = 0; i < 8; i++)
        if (zs->trace_id[i]) zs->trace_id_128 = true;
    zs->has_parent = id_of(t, span, SY_FIELD_PARENT_SPAN_ID, zs->parent_id, 8);
    tags_copy(t, m, base);
    attrs_to_tags(t, span, m);
    sy_value_t v;
    t->api->view_get(span, SY_FIELD_TRACE_STATE, &v);
    if (v.type == SY_VALUE_STRING && v.len)
        tag_setc(t, m, "w3c.tracestate", (zo_str_t){v.str, v.len});
    t->api->view_get(span, SY_FIELD_NAME, &v);
    zs->name = (zo_str_t){v.str ? v.str : "", v.len};
    uint64_t start = (uint64_t)get_int(t, span, SY_FIELD_START_TIME);
    uint64_t end = (uint64_t)get_int(t, span, SY_FIELD_END_TIME);
    zo_str_t absent;
    bool no_start = tag_take(m, ABSENT_START, &absent) && key_is(absent, "true");
    if (start >= 1000000000u && !no_start) zs->timestamp_us = (start + 500) / 1000;
    if (end && end > start) zs->duration_us = (end - start) / 1000;
    static const int kinds[] = {ZO_KIND_NONE,   ZO_KIND_NONE,     ZO_KIND_SERVER,
                                ZO_KIND_CLIENT, ZO_KIND_PRODUCER, ZO_KIND_CONSUMER};
    int64_t kind = get_int(t, span, SY_FIELD_KIND);
    zs->kind = kind >= 0 && kind <= 5 ? kinds[kind] : ZO_KIND_NONE;
    if (kind == 1) tag_setc(t, m, "span.kind", (zo_str_t){"internal", 8});
    endpoint_from_tags(m, service, false, &zs->local);
    endpoint_from_tags(m, (zo_str_t){NULL, 0}, true, &zs->remote);
    status_to_tags(t, span, m);
    events_to_annotations(t, span, zs);
    links_to_tags(t, span, m);
    if (m->n) {
        zs->tags = zo_alloc(t->arena, m->n * sizeof(zo_tag_t));
        if (!zs->tags) {
            t->failed = true;
            return true;
        }
        memcpy(zs->tags, m->v, m->n * sizeof(zo_tag_t));
        qsort(zs->tags, m->n, sizeof(zo_tag_t), cmp_tag); /* as Go writes a map */
        zs->n_tags = m->n;
    }
    return true;
}

/* The service name of a resource, taken out of its tags (extractZipkinServiceName). */
static zo_str_t service_of(tx_t *t, tagmap_t *m, bool empty, const char *dflt)
{
    static const char *const alt[] = {"faas.name", "k8s.deployment.name",
                                      "process.executable.name"};
    zo_str_t s;
    if (!empty && tag_take(m, "service.name", &s)) return s;
    for (size_t i = 0; !empty && i < 3; i++)
        if (tag_take(m, alt[i], &s)) {
            tag_setc(t, m, "otlp.service.name.source", (zo_str_t){alt[i], strlen(alt[i])});
            return s;
        }
    return (zo_str_t){dflt, strlen(dflt)};
}

int zo_from_batch(const sy_host_api_t *api, sy_batch_t *batch, const char *default_service,
                  zo_arena_t *arena, zo_spans_t *out)
{
    memset(out, 0, sizeof(*out));
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    sy_view_t *view = api->view_open(batch);
    if (!view) return SY_ENOMEM;
    tx_t t = {.api = api, .arena = arena};
    size_t cap = info.items ? (size_t)info.items : 1;
    out->v = zo_alloc(arena, cap * sizeof(zo_span_t));
    if (!out->v) t.failed = true;
    tagmap_t base = {0}, scope = {0}, m = {0};
    sy_view_node_t *root = api->view_root(view);
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr && !t.failed; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        base.n = 0;
        attrs_to_tags(&t, res, &base);
        zo_str_t svc = service_of(&t, &base, base.n == 0, default_service);
        size_t ns = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t s = 0; s < ns && !t.failed; s++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, s);
            tags_copy(&t, &scope, &base);
            sy_value_t v;
            api->view_get(sc, SY_FIELD_SCOPE_NAME, &v);
            if (v.type == SY_VALUE_STRING && v.len)
                tag_setc(&t, &scope, "otel.library.name", (zo_str_t){v.str, v.len});
            api->view_get(sc, SY_FIELD_SCOPE_VERSION, &v);
            if (v.type == SY_VALUE_STRING && v.len)
                tag_setc(&t, &scope, "otel.library.version", (zo_str_t){v.str, v.len});
            size_t ni = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < ni && !t.failed && out->n < cap; i++) {
                if (span_out(&t, api->view_at(sc, SY_VIEW_ITEMS, i), svc, &scope, &m,
                             &out->v[out->n]))
                    out->n++;
                else
                    out->invalid++;
            }
        }
    }
    api->view_close(view);
    if (t.failed || arena->failed) return SY_ENOMEM;
    return SY_OK;
}
