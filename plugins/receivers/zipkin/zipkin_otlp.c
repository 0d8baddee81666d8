/*
 * zipkin_otlp.c - decoded Zipkin spans into an OTLP ExportTraceServiceRequest, as
 * the collector's translators do (pkg/translator/zipkin: zipkinv2 ToTraces for
 * v2 JSON and protobuf, zipkinv1's JSON path for v1). The README's tables list
 * every field; where this differs from the collector it says so.
 *
 * Everything is allocated from the caller's arena as protobuf-c structs; strings
 * point at the decoded spans' strings (same arena) or at string literals.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "zipkin_model.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link link_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans rspans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans sspans_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest request_t;

#define NO_SERVICE_NAME "OTLPResourceNoServiceName" /* the collector's placeholder */
#define ABSENT_START    "otel.zipkin.absentField.startTime"
#define SN_SOURCE       "otlp.service.name.source"
#define LIB_NAME        "otel.library.name"
#define LIB_VERSION     "otel.library.version"

/* Tags that are never span attributes: the resource semantic conventions of
 * semconv v1.6.1 and a few more (the collector's nonSpanAttributes). Sorted. */
static const char *const resource_keys[] = {
    "aws.ecs.cluster.arn",
    "aws.ecs.container.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.arns",
    "aws.log.group.names",
    "aws.log.stream.arns",
    "aws.log.stream.names",
    "cloud.account.id",
    "cloud.availability_zone",
    "cloud.platform",
    "cloud.provider",
    "cloud.region",
    "container.id",
    "container.image.name",
    "container.image.tag",
    "container.name",
    "container.runtime",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "faas.id",
    "faas.instance",
    "faas.max_memory",
    "faas.name",
    "faas.version",
    "host.arch",
    "host.id",
    "host.image.id",
    "host.image.name",
    "host.image.version",
    "host.name",
    "host.type",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.cronjob.name",
    "k8s.cronjob.uid",
    "k8s.daemonset.name",
    "k8s.daemonset.uid",
    "k8s.deployment.name",
    "k8s.deployment.uid",
    "k8s.job.name",
    "k8s.job.uid",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.replicaset.name",
    "k8s.replicaset.uid",
    "k8s.statefulset.name",
    "k8s.statefulset.uid",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
    "opencensus.starttime",
    "os.description",
    "os.name",
    "os.type",
    "os.version",
    LIB_NAME,
    LIB_VERSION,
    SN_SOURCE,
    "process.command",
    "process.command_args",
    "process.command_line",
    "process.executable.name",
    "process.executable.path",
    "process.owner",
    "process.pid",
    "process.runtime.description",
    "process.runtime.name",
    "process.runtime.version",
    "service.instance.id",
    "service.name",
    "service.namespace",
    "service.version",
    "telemetry.auto.version",
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "webengine.description",
    "webengine.name",
    "webengine.version",
};

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_resource_key(const char *k)
{
    /* Every key above starts with one of these letters: most tags stop here. */
    if (!strchr("acdfhkoptsw", k[0]) || !k[0]) return false;
    return bsearch(&k, resource_keys, sizeof(resource_keys) / sizeof(resource_keys[0]),
                   sizeof(resource_keys[0]), cmp_key) != NULL;
}

typedef struct tr_s {
    const zk_alloc_t *alloc;
    bool parse_tags;
    char *err;
    size_t err_len;
    bool oom;
} tr_t;

static void *tr_alloc(tr_t *t, size_t size)
{
    void *p = t->alloc->fn(t->alloc->ctx, size ? size : 1);
    if (!p) {
        t->oom = true;
        return NULL;
    }
    memset(p, 0, size);
    return p;
}

/* ---- attribute lists -------------------------------------------------------------- */

typedef struct attrs_s {
    kv_t **v;
    size_t n, cap;
} attrs_t;

static bool attrs_init(tr_t *t, attrs_t *a, size_t cap)
{
    a->n = 0;
    a->cap = cap;
    a->v = cap ? tr_alloc(t, cap * sizeof(kv_t *)) : NULL;
    return !cap || a->v;
}

/* Puts key = value, replacing an attribute of that key (pcommon.Map's Put*). NULL
 * when out of memory or room. */
static any_t *attrs_put(tr_t *t, attrs_t *a, const char *key)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i]->key[0] == key[0] && strcmp(a->v[i]->key, key) == 0) {
            opentelemetry__proto__common__v1__any_value__init(a->v[i]->value);
            return a->v[i]->value;
        }
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 4;
        kv_t **v = tr_alloc(t, ncap * sizeof(*v));
        if (!v) return NULL;
        if (a->n) memcpy(v, a->v, a->n * sizeof(*v));
        a->v = v;
        a->cap = ncap;
    }
    kv_t *kv = tr_alloc(t, sizeof(*kv));
    any_t *val = tr_alloc(t, sizeof(*val));
    if (!kv || !val) return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(val);
    kv->key = (char *)key;
    kv->value = val;
    a->v[a->n++] = kv;
    return val;
}

/* Puts an attribute of one value case; the caller fills the value. */
static any_t *put_case(tr_t *t, attrs_t *a, const char *key,
                       Opentelemetry__Proto__Common__V1__AnyValue__ValueCase vcase)
{
    any_t *v = attrs_put(t, a, key);
    if (v) v->value_case = vcase;
    return v;
}

static bool put_str(tr_t *t, attrs_t *a, const char *key, const char *val)
{
    any_t *v = put_case(t, a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    return v ? (v->string_value = (char *)val, true) : false;
}

static bool put_int(tr_t *t, attrs_t *a, const char *key, int64_t val)
{
    any_t *v = put_case(t, a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    return v ? (v->int_value = val, true) : false;
}

static bool put_double(tr_t *t, attrs_t *a, const char *key, double val)
{
    any_t *v = put_case(t, a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    return v ? (v->double_value = val, true) : false;
}

static bool put_bool(tr_t *t, attrs_t *a, const char *key, bool val)
{
    any_t *v = put_case(t, a, key, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    return v ? (v->bool_value = val, true) : false;
}

/* The collector's DetermineValueType for parse_string_tags: ^-?\d+$ is an int,
 * ^-?\d+\.\d+$ a double, ^(true|false)$ a bool, anything else a string. */
typedef enum vtype_e { VT_STRING, VT_INT, VT_DOUBLE, VT_BOOL } vtype_t;

static vtype_t value_type(const char *s, size_t n)
{
    if (n == 4 && memcmp(s, "true", 4) == 0) return VT_BOOL;
    if (n == 5 && memcmp(s, "false", 5) == 0) return VT_BOOL;
    size_t i = s[0] == '-' ? 1 : 0, digits = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (!digits) return VT_STRING;
    if (i == n) return VT_INT;
    if (s[i] != '.') return VT_STRING;
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, frac++;
    return frac && i == n ? VT_DOUBLE : VT_STRING;
}

/* A tag's value as an attribute: typed when parse_string_tags says so. strtoll
 * and strtod clamp out-of-range values as Go's ParseInt and ParseFloat do. */
static bool put_tag(tr_t *t, attrs_t *a, const char *key, zk_str_t val)
{
    if (t->parse_tags) switch (value_type(val.s, val.len)) {
        case VT_INT:
            return put_int(t, a, key, strtoll(val.s, NULL, 10));
        case VT_DOUBLE:
            return put_double(t, a, key, strtod(val.s, NULL));
        case VT_BOOL:
            return put_bool(t, a, key, val.s[0] == 't');
        case VT_STRING:
            break;
        }
    return put_str(t, a, key, val.s);
}

static void attrs_set(const attrs_t *a, size_t *n, kv_t ***v)
{
    *n = a->n;
    *v = a->n ? a->v : NULL;
}

/* ---- "name|{json attributes}|dropped" of events and links ------------------------- */

/* Adds the members of a JSON object as attributes (strings, numbers: integral ones
 * as ints, booleans; other members are left out, as the collector does). */
static int json_attrs(tr_t *t, const char *json, size_t len, attrs_t *a, const char *what)
{
    char *buf = malloc(len + 1);
    if (!buf) {
        t->oom = true;
        return -1;
    }
    memcpy(buf, json, len);
    buf[len] = '\0';
    char why[128] = "";
    yajl_val root = yajl_tree_parse(buf, why, sizeof(why));
    free(buf);
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(t->err, t->err_len, "%s: the attributes are not a JSON object: %s", what,
                 root ? "not an object" : why);
        if (root) yajl_tree_free(root);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < root->u.object.len && rc == 0; i++) {
        const char *k = zk_strdup(t->alloc, root->u.object.keys[i], strlen(root->u.object.keys[i]));
        yajl_val v = root->u.object.values[i];
        bool ok = true;
        if (!k) {
            ok = false;
        } else if (YAJL_IS_STRING(v)) {
            const char *s = zk_strdup(t->alloc, v->u.string, strlen(v->u.string));
            ok = s && put_str(t, a, k, s);
        } else if (YAJL_IS_NUMBER(v)) {
            double d = strtod(YAJL_GET_NUMBER(v), NULL);
            ok = fmod(d, 1.0) == 0.0 && fabs(d) < 9.2e18 ? put_int(t, a, k, (int64_t)d)
                                                         : put_double(t, a, k, d);
        } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
            ok = put_bool(t, a, k, YAJL_IS_TRUE(v));
        }
        if (!ok) {
            t->oom = true;
            rc = -1;
        }
    }
    yajl_tree_free(root);
    return rc;
}

/* Splits s on '|'. Returns the number of parts (at most max), positions in p/len. */
static size_t split_bars(const char *s, size_t n, const char **p, size_t *len, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == '|') {
            if (k < max) {
                p[k] = s + start;
                len[k] = i - start;
            }
            k++;
            start = i + 1;
        }
    return k;
}

static int parse_dropped(tr_t *t, const char *s, size_t n, uint32_t *out, const char *what)
{
    uint64_t v = 0;
    bool ok = n > 0 && n <= 10;
    for (size_t i = 0; ok && i < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!ok || v > UINT32_MAX) {
        snprintf(t->err, t->err_len, "%s: dropped attributes count \"%.*s\" is not a number", what,
                 (int)(n < 32 ? n : 32), s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* An annotation as an event: "name", or "name|{attributes}|dropped" as the
 * collector writes events with attributes (a '|' inside the JSON is allowed). */
static int annotation_event(tr_t *t, const zk_annotation_t *an, event_t *ev)
{
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->time_unix_nano = an->timestamp_us > 0 ? (uint64_t)an->timestamp_us * 1000u : 0;
    if (!an->value.s) { /* no "value": an event without a name */
        ev->name = (char *)"";
        return 0;
    }
    const char *p[3];
    size_t len[3];
    size_t parts = split_bars(an->value.s, an->value.len, p, len, 1);
    if (parts < 3) {
        ev->name = (char *)(parts == 1 ? an->value.s : zk_strdup(t->alloc, p[0], len[0]));
        return ev->name ? 0 : (t->oom = true, -1);
    }
    ev->name = (char *)zk_strdup(t->alloc, p[0], len[0]);
    const char *last = strrchr(an->value.s, '|');
    const char *json = p[0] + len[0] + 1;
    attrs_t a;
    if (!ev->name || !attrs_init(t, &a, 4)) return (t->oom = true, -1);
    if (json_attrs(t, json, (size_t)(last - json), &a, "annotation") < 0) return -1;
    if (parse_dropped(t, last + 1, strlen(last + 1), &ev->dropped_attributes_count, "annotation") <
        0)
        return -1;
    attrs_set(&a, &ev->n_attributes, &ev->attributes);
    return 0;
}

static bool hex_bytes(const char *s, size_t n, uint8_t *out, size_t size)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    if (n == 0) return true; /* empty: all zero */
    if (n != size * 2) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0) return false;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return true;
}

/* "otlp.link.<i>" = "traceid|spanid|tracestate|{attributes}|dropped", as the
 * collector's exporter writes links. Fewer than 5 parts: the tag is dropped. */
static int tag_link(tr_t *t, zk_str_t v, link_t **out)
{
    *out = NULL;
    const char *p[3];
    size_t len[3];
    size_t parts = split_bars(v.s, v.len, p, len, 3);
    if (parts < 5) return 0;
    link_t *l = tr_alloc(t, sizeof(*l));
    uint8_t *ids = tr_alloc(t, 24);
    if (!l || !ids) return -1;
    opentelemetry__proto__trace__v1__span__link__init(l);
    if (!hex_bytes(p[0], len[0], ids, 16) || !hex_bytes(p[1], len[1], ids + 16, 8)) {
        snprintf(t->err, t->err_len, "link: invalid trace or span id");
        return -1;
    }
    l->trace_id = (ProtobufCBinaryData){16, ids};
    l->span_id = (ProtobufCBinaryData){8, ids + 16};
    l->trace_state = (char *)zk_strdup(t->alloc, p[2], len[2]);
    const char *json = p[2] + len[2] + 1;
    const char *last = strrchr(v.s, '|');
    attrs_t a;
    if (!l->trace_state || !attrs_init(t, &a, 4)) return (t->oom = true, -1);
    if (json_attrs(t, json, (size_t)(last - json), &a, "link") < 0) return -1;
    if (parse_dropped(t, last + 1, strlen(last + 1), &l->dropped_attributes_count, "link") < 0)
        return -1;
    attrs_set(&a, &l->n_attributes, &l->attributes);
    *out = l;
    return 0;
}

/* ---- v2 ---------------------------------------------------------------------------- */

/* A span's tags, as a map the translation takes keys out of (the collector's
 * copy of the tags): the later of two equal keys wins. */
typedef struct tags_s {
    const zk_tag_t *v;
    bool *gone;
    size_t n;
} tags_t;

static bool key_eq(const zk_str_t *k, const char *key, size_t len)
{
    return k->len == len && memcmp(k->s, key, len) == 0;
}

static const zk_str_t *tag_get(const tags_t *tg, const char *key, size_t *at)
{
    size_t len = strlen(key);
    for (size_t i = tg->n; i-- > 0;)
        if (!tg->gone[i] && key_eq(&tg->v[i].key, key, len)) {
            if (at) *at = i;
            return &tg->v[i].value;
        }
    return NULL;
}

/* Takes a key out (every occurrence). */
static const zk_str_t *tag_take(tags_t *tg, const char *key)
{
    size_t at;
    const zk_str_t *v = tag_get(tg, key, &at);
    if (!v) return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < tg->n; i++)
        if (key_eq(&tg->v[i].key, key, len)) tg->gone[i] = true;
    return v;
}

static const char *service_of(const zk_span_t *s)
{
    return s->local.present && s->local.service_name.len ? s->local.service_name.s
                                                         : NO_SERVICE_NAME;
}

static const char *library_of(const zk_span_t *s)
{
    for (size_t i = s->n_tags; i-- > 0;)
        if (key_eq(&s->tags[i].key, LIB_NAME, sizeof(LIB_NAME) - 1)) return s->tags[i].value.s;
    return "";
}

/* A span with its sort keys, computed once. */
typedef struct order_s {
    zk_span_t *span;
    const char *svc, *lib;
} order_t;

/* The collector sorts spans by service name, then library name (sort.Sort: the
 * order of equal spans is unspecified there; here it is kept). */
static int cmp_spans(const void *a, const void *b)
{
    const order_t *x = a, *y = b;
    int c = strcmp(x->svc, y->svc);
    if (!c) c = strcmp(x->lib, y->lib);
    if (!c) c = x->span < y->span ? -1 : x->span > y->span;
    return c;
}

static bool resource_from_span(tr_t *t, tags_t *tg, const char *svc,
                               Opentelemetry__Proto__Resource__V1__Resource *res)
{
    if (strcmp(svc, NO_SERVICE_NAME) == 0) return true;
    attrs_t a;
    if (!attrs_init(t, &a, tg->n + 1)) return false;
    const zk_str_t *src = tag_take(tg, SN_SOURCE);
    if (!put_str(t, &a, src && src->len ? src->s : "service.name", svc)) return false;
    for (size_t i = 0; i < tg->n; i++) {
        const char *k = tg->v[i].key.s;
        if (tg->gone[i] || !is_resource_key(k) || !strcmp(k, LIB_NAME) || !strcmp(k, LIB_VERSION))
            continue;
        const zk_str_t *v = tag_take(tg, k);
        if (!put_str(t, &a, k, v->s)) return false;
    }
    attrs_set(&a, &res->n_attributes, &res->attributes);
    return true;
}

/* The collector's names (STATUS_CODE_OK, STATUS_CODE_ERROR), the specification's
 * (OK, ERROR: what OpenTelemetry SDKs write) and pdata's (Ok, Error). */
static int status_code_of(const zk_str_t *v)
{
    if (!strcmp(v->s, "STATUS_CODE_OK") || !strcmp(v->s, "OK") || !strcmp(v->s, "Ok")) return 1;
    if (!strcmp(v->s, "STATUS_CODE_ERROR") || !strcmp(v->s, "ERROR") || !strcmp(v->s, "Error"))
        return 2;
    return 0;
}

static bool endpoint_attrs(tr_t *t, attrs_t *a, const zk_endpoint_t *e, bool remote)
{
    if (!e->present) return true;
    const char *ip = remote ? "net.peer.ip" : "net.host.ip";
    if (remote && e->service_name.len && !put_str(t, a, "peer.service", e->service_name.s))
        return false;
    if (e->ipv4.len && !put_str(t, a, ip, e->ipv4.s)) return false;
    if (e->ipv6.len && !put_str(t, a, ip, e->ipv6.s)) return false;
    if (e->port > 0 && !put_int(t, a, remote ? "net.peer.port" : "net.host.port", e->port))
        return false;
    return true;
}

static int span_v2(tr_t *t, zk_span_t *zs, tags_t *tg, span_t *sp)
{
    opentelemetry__proto__trace__v1__span__init(sp);
    uint8_t *ids = tr_alloc(t, 32);
    if (!ids) return -1;
    memcpy(ids, zs->trace_id, 16);
    memcpy(ids + 16, zs->id, 8);
    sp->trace_id = (ProtobufCBinaryData){16, ids};
    sp->span_id = (ProtobufCBinaryData){8, ids + 16};
    const zk_str_t *ts = tag_take(tg, "w3c.tracestate");
    if (ts) sp->trace_state = (char *)ts->s;
    if (zs->has_parent && memcmp(zs->parent_id, zs->id, 8) != 0) {
        memcpy(ids + 24, zs->parent_id, 8);
        sp->parent_span_id = (ProtobufCBinaryData){8, ids + 24};
    }
    sp->name = (char *)(zs->name.s ? zs->name.s : "");
    static const int kinds[] = {0, 3, 2, 4, 5}; /* ZK_KIND_* -> SpanKind */
    sp->kind = kinds[zs->kind];
    if (zs->kind == ZK_KIND_NONE) {
        const zk_str_t *k = tag_take(tg, "span.kind");
        if (k && !strcmp(k->s, "internal")) sp->kind = 1;
    }
    /* Status: otel.status_code (+ otel.status_description), then error=true. */
    int code = -1;
    const char *message = NULL;
    const zk_str_t *sc = tag_take(tg, "otel.status_code");
    if (sc) {
        code = status_code_of(sc);
        const zk_str_t *sd = tag_take(tg, "otel.status_description");
        if (sd) message = sd->s;
    }
    /* An "error" tag other than "false" is an error; its value, unless "true", is
     * the message (OpenTelemetry SDKs write the status description there). */
    const zk_str_t *e = tag_get(tg, "error", NULL);
    if (e && strcmp(e->s, "false") != 0) {
        code = 2;
        if (!message && e->len && strcmp(e->s, "true") != 0) message = e->s;
        tag_take(tg, "error");
    }
    if (code >= 0 || message) {
        sp->status = tr_alloc(t, sizeof(*sp->status));
        if (!sp->status) return -1;
        opentelemetry__proto__trace__v1__status__init(sp->status);
        sp->status->code = code > 0 ? code : 0;
        if (message) sp->status->message = (char *)message;
    }
    /* Links from otlp.link.0, .1, ... (up to the first one missing). */
    link_t *links[128];
    size_t nl = 0;
    bool any_link = false;
    for (size_t i = 0; i < tg->n && !any_link; i++)
        any_link = tg->v[i].key.len > 10 && !memcmp(tg->v[i].key.s, "otlp.link.", 10);
    for (int i = 0; any_link && i < 128; i++) {
        char key[24];
        snprintf(key, sizeof(key), "otlp.link.%d", i);
        const zk_str_t *lv = tag_take(tg, key);
        if (!lv) break;
        link_t *l;
        if (tag_link(t, *lv, &l) < 0) return -1;
        if (l) links[nl++] = l;
    }
    if (nl) {
        sp->links = tr_alloc(t, nl * sizeof(link_t *));
        if (!sp->links) return -1;
        memcpy(sp->links, links, nl * sizeof(link_t *));
        sp->n_links = nl;
    }
    attrs_t a;
    if (!attrs_init(t, &a, tg->n + 8)) return -1;
    for (size_t i = 0; i < tg->n; i++) {
        if (tg->gone[i] || is_resource_key(tg->v[i].key.s)) continue;
        size_t at = i;
        tag_get(tg, tg->v[i].key.s, &at);
        if (at != i) continue; /* an earlier occurrence of a key given again */
        if (!put_tag(t, &a, tg->v[i].key.s, tg->v[i].value)) return -1;
    }
    if (!endpoint_attrs(t, &a, &zs->local, false) || !endpoint_attrs(t, &a, &zs->remote, true))
        return -1;
    uint64_t dur = zs->duration_us > 0 ? (uint64_t)zs->duration_us * 1000u : 0;
    if (zs->timestamp_us <= 0) {
        sp->start_time_unix_nano = 0;
        sp->end_time_unix_nano = dur;
        if (!put_bool(t, &a, ABSENT_START, true)) return -1;
    } else {
        sp->start_time_unix_nano = (uint64_t)zs->timestamp_us * 1000u;
        sp->end_time_unix_nano = sp->start_time_unix_nano + dur;
    }
    attrs_set(&a, &sp->n_attributes, &sp->attributes);
    if (zs->n_annotations) {
        sp->events = tr_alloc(t, zs->n_annotations * sizeof(event_t *));
        event_t *evs = tr_alloc(t, zs->n_annotations * sizeof(event_t));
        if (!sp->events || !evs) return -1;
        for (size_t i = 0; i < zs->n_annotations; i++) {
            if (annotation_event(t, &zs->annotations[i], &evs[i]) < 0) return -1;
            sp->events[i] = &evs[i];
        }
        sp->n_events = zs->n_annotations;
    }
    return 0;
}

/* Appends to a growing array of pointers in the arena (doubling). */
static bool ptr_push(tr_t *t, void ***v, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void **nv = tr_alloc(t, ncap * sizeof(void *));
        if (!nv) return false;
        if (*n) memcpy(nv, *v, *n * sizeof(void *));
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return true;
}

static rspans_t *new_resource(tr_t *t)
{
    rspans_t *rs = tr_alloc(t, sizeof(*rs));
    Opentelemetry__Proto__Resource__V1__Resource *res = tr_alloc(t, sizeof(*res));
    if (!rs || !res) return NULL;
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__resource__v1__resource__init(res);
    rs->resource = res;
    return rs;
}

static sspans_t *new_scope(tr_t *t)
{
    sspans_t *ss = tr_alloc(t, sizeof(*ss));
    Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = tr_alloc(t, sizeof(*sc));
    if (!ss || !sc) return NULL;
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
    ss->scope = sc;
    return ss;
}

static int to_otlp_v2(tr_t *t, zk_spans_t *spans, request_t *req)
{
    size_t n = spans->n;
    order_t *order = malloc(n * sizeof(*order));
    bool *gone = NULL;
    size_t max_tags = 0;
    for (size_t i = 0; i < n; i++)
        if (spans->v[i].n_tags > max_tags) max_tags = spans->v[i].n_tags;
    gone = malloc(max_tags + 1);
    if (!order || !gone) {
        free(order);
        free(gone);
        t->oom = true;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (order_t){&spans->v[i], service_of(&spans->v[i]), library_of(&spans->v[i])};
    qsort(order, n, sizeof(*order), cmp_spans);
    size_t rcap = 0, scap = 0, pcap = 0;
    rspans_t *rs = NULL;
    sspans_t *ss = NULL;
    const char *prev_svc = NULL, *prev_lib = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        zk_span_t *zs = order[i].span;
        tags_t tg = {zs->tags, gone, zs->n_tags};
        memset(gone, 0, max_tags + 1);
        const char *svc = order[i].svc, *lib = order[i].lib;
        rc = -1;
        if (!prev_svc || strcmp(svc, prev_svc) != 0) {
            prev_svc = svc;
            prev_lib = NULL;
            rs = new_resource(t);
            if (!rs || !resource_from_span(t, &tg, svc, rs->resource) ||
                !ptr_push(t, (void ***)&req->resource_spans, &req->n_resource_spans, &rcap, rs))
                break;
            scap = 0;
        }
        if (!prev_lib || strcmp(lib, prev_lib) != 0) {
            prev_lib = lib;
            ss = new_scope(t);
            if (!ss || !ptr_push(t, (void ***)&rs->scope_spans, &rs->n_scope_spans, &scap, ss))
                break;
            pcap = 0;
            if (*lib) {
                const zk_str_t *nm = tag_take(&tg, LIB_NAME), *ver = tag_take(&tg, LIB_VERSION);
                if (nm) ss->scope->name = (char *)nm->s;
                if (ver) ss->scope->version = (char *)ver->s;
            }
        }
        span_t *sp = tr_alloc(t, sizeof(*sp));
        if (!sp || span_v2(t, zs, &tg, sp) < 0 ||
            !ptr_push(t, (void ***)&ss->spans, &ss->n_spans, &pcap, sp))
            break;
        rc = 0;
    }
    free(order);
    free(gone);
    return rc;
}

/* ---- v1 ---------------------------------------------------------------------------- */

#define UNKNOWN_SERVICE "unknown-service"

/* The collector's statusMapper: census.status_code, then otel.status_code, then
 * error, then http.status_code decide the status. */
typedef struct status_map_s {
    int census, otel, error, http; /* codes; -1 absent */
    const char *census_msg, *otel_msg, *http_msg;
} status_map_t;

static bool int32_of(const zk_str_t *v, int32_t *out)
{
    if (!v->len || v->len > 11) return false;
    char *end;
    long long x = strtoll(v->s, &end, 10);
    if (*end || end == v->s || x < INT32_MIN || x > INT32_MAX) return false;
    *out = (int32_t)x;
    return true;
}

/* Returns true when the binary annotation is consumed by the status. */
static bool status_from_tag(status_map_t *m, const char *key, const zk_str_t *v)
{
    int32_t c;
    if (!strcmp(key, "census.status_code")) {
        if (int32_of(v, &c)) m->census = c == 0 ? 1 : 2;
        return true;
    }
    if (!strcmp(key, "census.status_description") ||
        !strcmp(key, "opencensus.status_description")) {
        m->census_msg = v->s;
        return true;
    }
    if (!strcmp(key, "otel.status_code")) {
        if (int32_of(v, &c)) m->otel = c;
        return true;
    }
    if (!strcmp(key, "otel.status_description")) {
        m->otel_msg = v->s;
        return true;
    }
    if (!strcmp(key, "http.status_code")) {
        if (int32_of(v, &c)) m->http = c >= 100 && c < 400 ? 0 : 2;
    } else if (!strcmp(key, "http.status_message")) {
        m->http_msg = v->s;
    } else if (!strcmp(key, "error")) {
        m->error = 2;
        return true;
    }
    return false;
}

static bool status_apply(tr_t *t, const status_map_t *m, span_t *sp)
{
    int code;
    const char *msg = "";
    if (m->census >= 0) {
        code = m->census;
        msg = m->census_msg ? m->census_msg : "";
    } else if (m->otel >= 0) {
        code = m->otel;
        msg = m->otel_msg ? m->otel_msg : "";
    } else if (m->error >= 0) {
        code = m->error;
        msg = m->census_msg ? m->census_msg : m->otel_msg ? m->otel_msg : "";
    } else if (m->http >= 0) {
        code = m->http;
        msg = m->http_msg ? m->http_msg : "";
    } else {
        return true;
    }
    sp->status = tr_alloc(t, sizeof(*sp->status));
    if (!sp->status) return false;
    opentelemetry__proto__trace__v1__status__init(sp->status);
    sp->status->code = code;
    sp->status->message = (char *)msg;
    return true;
}

/* The endpoint a v1 span's resource is made of. */
typedef struct v1_ep_s {
    zk_str_t service, ipv4, ipv6;
    int32_t port;
} v1_ep_t;

static bool str_eq(zk_str_t a, zk_str_t b)
{
    return a.len == b.len && (!a.len || memcmp(a.s, b.s, a.len) == 0);
}

static bool ep_eq(const v1_ep_t *a, const v1_ep_t *b)
{
    return str_eq(a->service, b->service) && str_eq(a->ipv4, b->ipv4) && str_eq(a->ipv6, b->ipv6) &&
           a->port == b->port;
}

static int span_v1(tr_t *t, const zk_span_t *zs, uint64_t now_ns, span_t *sp, v1_ep_t *ep)
{
    opentelemetry__proto__trace__v1__span__init(sp);
    const zk_endpoint_t *found = NULL;
    bool kind_set = false;
    int64_t early = INT64_MAX, late = INT64_MIN;
    size_t nev = 0;
    event_t *evs = zs->n_annotations ? tr_alloc(t, zs->n_annotations * sizeof(event_t)) : NULL;
    if (zs->n_annotations && !evs) return -1;
    for (size_t i = 0; i < zs->n_annotations; i++) {
        const zk_annotation_t *an = &zs->annotations[i];
        if (an->null || !an->value.len) continue;
        const char *v = an->value.s;
        bool has_kind = !strcmp(v, "cs") || !strcmp(v, "cr") || !strcmp(v, "ms") ||
                        !strcmp(v, "mr") || !strcmp(v, "ss") || !strcmp(v, "sr");
        if (!found && has_kind && an->endpoint.present && an->endpoint.service_name.len)
            found = &an->endpoint;
        if (!kind_set && has_kind) {
            sp->kind = v[0] == 'c' ? 3 : v[0] == 's' ? 2 : v[1] == 's' ? 4 : 5;
            kind_set = true;
        }
        uint64_t ts = an->timestamp_us > 0 ? (uint64_t)an->timestamp_us * 1000u : 0;
        if (an->timestamp_us < early) {
            early = an->timestamp_us;
            sp->start_time_unix_nano = ts;
        }
        if (an->timestamp_us > late) {
            late = an->timestamp_us;
            sp->end_time_unix_nano = ts;
        }
        if (has_kind) continue;
        event_t *ev = &evs[nev];
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->time_unix_nano = ts;
        ev->name = (char *)v;
        nev++;
    }
    if (nev) {
        sp->events = tr_alloc(t, nev * sizeof(event_t *));
        if (!sp->events) return -1;
        for (size_t i = 0; i < nev; i++)
            sp->events[i] = &evs[i];
        sp->n_events = nev;
    }
    /* Binary annotations: attributes, the status, and a fallback service name. */
    attrs_t a;
    if (!attrs_init(t, &a, zs->n_tags + 1)) return -1;
    status_map_t m = {-1, -1, -1, -1, NULL, NULL, NULL};
    const char *fallback = "", *local_component = "";
    for (size_t i = 0; i < zs->n_tags; i++) {
        const zk_tag_t *b = &zs->tags[i];
        if (b->endpoint_service.len) fallback = b->endpoint_service.s;
        const char *key = b->key.s ? b->key.s : "";
        if (!strcmp(key, "lc")) {
            key = "component";
            local_component = b->value.s ? b->value.s : "";
        }
        zk_str_t val = b->value.s ? b->value : (zk_str_t){"", 0};
        if (status_from_tag(&m, key, &val)) continue;
        if (!put_tag(t, &a, key, val)) return -1;
    }
    if (!*fallback) fallback = local_component;
    if (!status_apply(t, &m, sp)) return -1;
    memset(ep, 0, sizeof(*ep));
    if (found) {
        ep->service = found->service_name;
        ep->ipv4 = found->ipv4;
        ep->ipv6 = found->ipv6;
        ep->port = found->port;
    } else {
        ep->service = (zk_str_t){UNKNOWN_SERVICE, strlen(UNKNOWN_SERVICE)};
    }
    if (!strcmp(ep->service.s, UNKNOWN_SERVICE) && *fallback)
        ep->service = (zk_str_t){fallback, strlen(fallback)};
    if (zs->timestamp_us != 0) {
        sp->start_time_unix_nano = zs->timestamp_us > 0 ? (uint64_t)zs->timestamp_us * 1000u : 0;
        int64_t end = zs->timestamp_us + zs->duration_us;
        sp->end_time_unix_nano = end > 0 ? (uint64_t)end * 1000u : 0;
    }
    sp->name = (char *)(zs->name.s ? zs->name.s : "");
    uint8_t *ids = tr_alloc(t, 32);
    if (!ids) return -1;
    memcpy(ids, zs->trace_id, 16);
    memcpy(ids + 16, zs->id, 8);
    sp->trace_id = (ProtobufCBinaryData){16, ids};
    sp->span_id = (ProtobufCBinaryData){8, ids + 16};
    if (zs->has_parent) {
        memcpy(ids + 24, zs->parent_id, 8);
        sp->parent_span_id = (ProtobufCBinaryData){8, ids + 24};
    }
    if (sp->start_time_unix_nano == 0) {
        sp->start_time_unix_nano = sp->end_time_unix_nano = now_ns;
        if (!put_bool(t, &a, ABSENT_START, true)) return -1;
    }
    attrs_set(&a, &sp->n_attributes, &sp->attributes);
    return 0;
}

static int to_otlp_v1(tr_t *t, zk_spans_t *spans, uint64_t now_ns, request_t *req)
{
    /* One resource per distinct endpoint, in order of first appearance. */
    size_t n = spans->n, nres = 0, rcap = 0;
    v1_ep_t *eps = malloc((n ? n : 1) * sizeof(*eps));
    size_t *pcaps = malloc((n ? n : 1) * sizeof(*pcaps));
    int rc = eps && pcaps ? 0 : -1;
    if (rc) t->oom = true;
    for (size_t i = 0; i < n && rc == 0; i++) {
        span_t *sp = tr_alloc(t, sizeof(*sp));
        v1_ep_t ep;
        rc = -1;
        if (!sp || span_v1(t, &spans->v[i], now_ns, sp, &ep) < 0) break;
        size_t r = 0;
        while (r < nres && !ep_eq(&eps[r], &ep))
            r++;
        if (r == nres) {
            rspans_t *rs = new_resource(t);
            sspans_t *ss = new_scope(t);
            attrs_t a;
            size_t scap = 0;
            if (!rs || !ss || !attrs_init(t, &a, 4) ||
                !ptr_push(t, (void ***)&rs->scope_spans, &rs->n_scope_spans, &scap, ss) ||
                !ptr_push(t, (void ***)&req->resource_spans, &req->n_resource_spans, &rcap, rs))
                break;
            bool ok = put_str(t, &a, "service.name", ep.service.s);
            if (ok && ep.ipv4.len) ok = put_str(t, &a, "ipv4", ep.ipv4.s);
            if (ok && ep.ipv6.len) ok = put_str(t, &a, "ipv6", ep.ipv6.s);
            if (ok && ep.port) {
                char port[16];
                int pn = snprintf(port, sizeof(port), "%d", (int)ep.port);
                const char *ps = zk_strdup(t->alloc, port, (size_t)pn);
                ok = ps && put_str(t, &a, "port", ps);
            }
            if (!ok) break;
            attrs_set(&a, &rs->resource->n_attributes, &rs->resource->attributes);
            eps[nres] = ep;
            pcaps[nres] = 0;
            nres++;
        }
        sspans_t *ss = req->resource_spans[r]->scope_spans[0];
        if (!ptr_push(t, (void ***)&ss->spans, &ss->n_spans, &pcaps[r], sp)) break;
        rc = 0;
    }
    free(eps);
    free(pcaps);
    return rc;
}

void *zk_to_otlp(zk_format_t format, zk_spans_t *spans, bool parse_string_tags, uint64_t now_ns,
                 const zk_alloc_t *alloc, char *err, size_t err_len)
{
    tr_t t = {.alloc = alloc, .parse_tags = parse_string_tags, .err = err, .err_len = err_len};
    err[0] = '\0';
    request_t *req = tr_alloc(&t, sizeof(*req));
    if (!req) goto oom;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    if (!spans->n) return req;
    int rc = format == ZK_V1 ? to_otlp_v1(&t, spans, now_ns, req) : to_otlp_v2(&t, spans, req);
    if (rc == 0) return req;
    if (!t.oom && err[0]) {
        char why[400];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, err_len, "zipkin%s: %s", format == ZK_V1 ? "V1" : "V2", why);
        return NULL;
    }
oom:
    snprintf(err, err_len, "out of memory (the request is too large to translate)");
    return NULL;
}
