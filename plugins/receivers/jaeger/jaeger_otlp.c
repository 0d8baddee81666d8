/*
 * jaeger_otlp.c - a decoded Jaeger Batch as an OTLP ExportTraceServiceRequest,
 * following the collector's translator (pkg/translator/jaeger,
 * jaegerthrift_to_traces.go, ThriftToTraces) rule for rule:
 *
 *  - one ResourceSpans per Batch; service.name from Process.serviceName, then the
 *    process tags; "hostname" becomes "host.name" and "jaeger.version" becomes
 *    "opencensus.exporterversion" = "Jaeger-<version>" (unless already there);
 *  - one ScopeSpans with an empty scope holding every span (the Thrift path does
 *    not read otel.library.name / otel.scope.name: those stay attributes);
 *  - a span equal to an all-zero Span is skipped;
 *  - tags become attributes with their types; a key given twice keeps its first
 *    place and its last value (pcommon.Map.Put);
 *  - "span.kind" sets the kind and is removed; "error" (bool true),
 *    "otel.status_code", "otel.status_description" and, failing those,
 *    "http.status_code" set the status (see set_status());
 *  - the parent is parentSpanId, or else the first CHILD_OF (else FOLLOWS_FROM)
 *    reference of the same trace; every other reference is a link with
 *    "opentracing.ref_type";
 *  - logs are events; a field "event" names the event and is removed;
 *  - microseconds times 1000, wrapping as Go's uint64 arithmetic does.
 *
 * Everything is allocated from the caller's allocator; a failed allocation makes
 * the whole translation return NULL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jaeger_model.h"
#include "utf8.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Trace__V1__Status status_t;

#define VC(x)   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define KIND(x) OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_##x
#define CODE(x) OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_##x

/* Maps with more entries than this get a hash index while they are filled. */
#define MAP_INDEX_MIN 16

typedef struct tx_s {
    ProtobufCAllocator *a;
    bool oom;
} tx_t;

static void *tx_alloc(tx_t *t, size_t size)
{
    if (t->oom) return NULL;
    void *p = t->a->alloc(t->a->allocator_data, size ? size : 1);
    if (!p) t->oom = true;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p[0..n), 0 if there is none. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return need;
}

/* A NUL-terminated copy, valid UTF-8: each run of bytes that is not becomes one
 * U+FFFD (as Go's strings.ToValidUTF8). The copy ends at the first NUL, where
 * protobuf-c's strings end anyway. Its length goes to *out_len when not NULL. */
static char *str_copy_len(tx_t *t, const uint8_t *p, size_t len, size_t *out_len)
{
    len = len ? strnlen((const char *)p, len) : 0;
    if (out_len) *out_len = len;
    if (syc_utf8_valid(p, len)) {
        char *s = tx_alloc(t, len + 1);
        if (!s) return NULL;
        if (len) memcpy(s, p, len);
        s[len] = '\0';
        return s;
    }
    char *s = tx_alloc(t, len * 3 + 1), *o = s;
    if (!s) return NULL;
    bool in_bad = false;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(p + i, len - i);
        if (k) {
            memcpy(o, p + i, k);
            o += k;
            i += k;
            in_bad = false;
        } else {
            if (!in_bad) {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
            }
            in_bad = true;
            i++;
        }
    }
    *o = '\0';
    if (out_len) *out_len = (size_t)(o - s);
    return s;
}

static char *str_copy(tx_t *t, const uint8_t *p, size_t len)
{
    return str_copy_len(t, p, len, NULL);
}

static char *jstr(tx_t *t, jg_str_t s)
{
    return str_copy(t, s.p, s.len);
}

/* ------------------------------------------------------------------------ */
/* Attribute maps with pcommon.Map's Put/Get/Remove semantics                */
/* ------------------------------------------------------------------------ */

typedef struct amap_s {
    kv_t **kv;
    uint32_t *klen; /* strlen of each key: compared before the bytes */
    size_t n, cap;
    uint32_t *index; /* open addressing, slot = position + 1; NULL when small */
    size_t index_mask;
} amap_t;

/* Lookups and removals by a string literal. */
#define AMAP_GET(m, lit)    amap_get((m), (lit), sizeof(lit) - 1)
#define AMAP_REMOVE(m, lit) amap_remove((m), (lit), sizeof(lit) - 1)

static uint32_t key_hash(const char *k, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)k[i]) * 16777619u;
    return h;
}

static int amap_init(tx_t *t, amap_t *m, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->cap = cap;
    if (!cap) return 0;
    m->kv = tx_alloc(t, cap * sizeof(kv_t *));
    m->klen = tx_alloc(t, cap * sizeof(uint32_t));
    if (!m->kv || !m->klen) return -1;
    if (cap > MAP_INDEX_MIN) {
        size_t slots = 32;
        while (slots < cap * 2)
            slots <<= 1;
        m->index = tx_alloc(t, slots * sizeof(uint32_t));
        if (!m->index) return -1;
        memset(m->index, 0, slots * sizeof(uint32_t));
        m->index_mask = slots - 1;
    }
    return 0;
}

static bool key_at(const amap_t *m, size_t i, const char *key, size_t len)
{
    return m->klen[i] == len && memcmp(m->kv[i]->key, key, len) == 0;
}

/* Position of `key`, or -1. */
static long amap_find(const amap_t *m, const char *key, size_t len)
{
    if (m->index) {
        for (size_t s = key_hash(key, len) & m->index_mask;; s = (s + 1) & m->index_mask) {
            uint32_t v = m->index[s];
            if (!v) return -1;
            if (key_at(m, v - 1, key, len)) return (long)v - 1;
        }
    }
    for (size_t i = 0; i < m->n; i++)
        if (key_at(m, i, key, len)) return (long)i;
    return -1;
}

static any_t *amap_get(const amap_t *m, const char *key, size_t len)
{
    long i = amap_find(m, key, len);
    return i < 0 ? NULL : m->kv[i]->value;
}

/* Sets key (owned by the arena, `len` its strlen) to val: in place when the key
 * is there, else at the end. */
static void amap_put(tx_t *t, amap_t *m, char *key, size_t len, any_t *val)
{
    long i = amap_find(m, key, len);
    if (i >= 0) {
        m->kv[i]->value = val;
        return;
    }
    if (m->n == m->cap) return; /* cannot happen: cap counts every put */
    kv_t *kv = tx_alloc(t, sizeof(*kv));
    if (!kv) return;
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = key;
    kv->value = val;
    if (m->index) {
        size_t s = key_hash(key, len) & m->index_mask;
        while (m->index[s])
            s = (s + 1) & m->index_mask;
        m->index[s] = (uint32_t)m->n + 1;
    }
    m->klen[m->n] = (uint32_t)len;
    m->kv[m->n++] = kv;
}

/* Removes key, keeping the order of the others. Only after the map is filled
 * (the index is dropped: removals are few and the map is scanned). */
static void amap_remove(amap_t *m, const char *key, size_t len)
{
    m->index = NULL;
    long i = amap_find(m, key, len);
    if (i < 0) return;
    size_t after = m->n - (size_t)i - 1;
    memmove(&m->kv[i], &m->kv[i + 1], after * sizeof(kv_t *));
    memmove(&m->klen[i], &m->klen[i + 1], after * sizeof(uint32_t));
    m->n--;
}

static any_t *any_new(tx_t *t)
{
    any_t *v = tx_alloc(t, sizeof(*v));
    if (v) opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static any_t *any_str(tx_t *t, char *s)
{
    any_t *v = any_new(t);
    if (!v || !s) return NULL;
    v->value_case = VC(STRING_VALUE);
    v->string_value = s;
    return v;
}

/* pcommon.Value.Str(): the string, or "" for any other type. */
static const char *any_as_str(const any_t *v)
{
    return v && v->value_case == VC(STRING_VALUE) ? v->string_value : "";
}

static any_t *tag_value(tx_t *t, const jg_tag_t *tag)
{
    any_t *v = any_new(t);
    if (!v) return NULL;
    switch (tag->vtype) {
    case JG_TAG_STRING:
        v->value_case = VC(STRING_VALUE);
        v->string_value = jstr(t, tag->vstr);
        break;
    case JG_TAG_BOOL:
        v->value_case = VC(BOOL_VALUE);
        v->bool_value = tag->vbool;
        break;
    case JG_TAG_LONG:
        v->value_case = VC(INT_VALUE);
        v->int_value = tag->vlong;
        break;
    case JG_TAG_DOUBLE:
        v->value_case = VC(DOUBLE_VALUE);
        v->double_value = tag->vdouble;
        break;
    case JG_TAG_BINARY:
        v->value_case = VC(BYTES_VALUE);
        v->bytes_value.len = tag->vbinary.len;
        v->bytes_value.data = tx_alloc(t, tag->vbinary.len);
        if (v->bytes_value.data && tag->vbinary.len)
            memcpy(v->bytes_value.data, tag->vbinary.p, tag->vbinary.len);
        break;
    default: /* Go's TagType.String() of an unknown value is "<UNSET>" */
        v->value_case = VC(STRING_VALUE);
        v->string_value = str_copy(t, (const uint8_t *)"<Unknown Jaeger TagType \"<UNSET>\">",
                                   sizeof("<Unknown Jaeger TagType \"<UNSET>\">") - 1);
    }
    return v;
}

static void put_tags(tx_t *t, amap_t *m, const jg_tags_t *tags)
{
    for (uint32_t i = 0; i < tags->n && !t->oom; i++) {
        size_t klen;
        char *key = str_copy_len(t, tags->v[i].key.p, tags->v[i].key.len, &klen);
        any_t *val = tag_value(t, &tags->v[i]);
        if (key && val) amap_put(t, m, key, klen, val);
    }
}

/* ------------------------------------------------------------------------ */
/* Spans                                                                     */
/* ------------------------------------------------------------------------ */

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void trace_id(tx_t *t, ProtobufCBinaryData *d, int64_t high, int64_t low)
{
    d->data = tx_alloc(t, 16);
    if (!d->data) return;
    d->len = 16;
    put_be64(d->data, (uint64_t)high);
    put_be64(d->data + 8, (uint64_t)low);
}

static void span_id(tx_t *t, ProtobufCBinaryData *d, int64_t id)
{
    d->data = tx_alloc(t, 8);
    if (!d->data) return;
    d->len = 8;
    put_be64(d->data, (uint64_t)id);
}

/* The collector's jThriftSpanParentID. */
static int64_t parent_id(const jg_span_t *s)
{
    if (s->proto) { /* model.Span.ParentSpanID() */
        for (uint32_t i = 0; i < s->n_refs; i++) {
            const jg_ref_t *r = &s->refs[i];
            if (r->trace_id_high == s->trace_id_high && r->trace_id_low == s->trace_id_low &&
                r->type == JG_REF_CHILD_OF)
                return r->span_id;
        }
        return 0;
    }
    if (s->parent_span_id != 0) return s->parent_span_id;
    const jg_ref_t *follows = NULL;
    for (uint32_t i = 0; i < s->n_refs; i++) {
        const jg_ref_t *r = &s->refs[i];
        if (r->trace_id_high != s->trace_id_high || r->trace_id_low != s->trace_id_low) continue;
        if (r->type == JG_REF_CHILD_OF) return r->span_id;
        if (!follows && r->type == JG_REF_FOLLOWS_FROM) follows = r;
    }
    return follows ? follows->span_id : 0;
}

static int span_kind(const char *k)
{
    static const char *const names[] = {"internal", "server", "client", "producer", "consumer"};
    for (int i = 0; i < 5; i++)
        if (strcmp(k, names[i]) == 0) return KIND(INTERNAL) + i;
    return KIND(UNSPECIFIED);
}

/* strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow. */
static bool parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    if (!*s) return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (lim - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool ascii_upper_eq(const char *s, const char *upper)
{
    for (; *s && *upper; s++, upper++) {
        char c = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        if (c != *upper) return false;
    }
    return !*s && !*upper;
}

/* otel.status_description, removed from the map when there. */
static bool take_description(amap_t *m, const char **msg)
{
    any_t *v = AMAP_GET(m, "otel.status_description");
    if (!v) return false;
    *msg = any_as_str(v);
    AMAP_REMOVE(m, "otel.status_description");
    return true;
}

/* The collector's setInternalSpanStatus. */
static void set_status(tx_t *t, amap_t *m, span_t *span)
{
    int code = CODE(UNSET);
    const char *msg = "";
    bool exists = false;
    any_t *v = AMAP_GET(m, "error");
    if (v && v->value_case == VC(BOOL_VALUE) && v->bool_value) {
        code = CODE(ERROR);
        AMAP_REMOVE(m, "error");
        exists = true;
        if (!take_description(m, &msg)) {
            any_t *hm = AMAP_GET(m, "http.status_message");
            if (hm) msg = any_as_str(hm);
        }
    }
    any_t *sc = AMAP_GET(m, "otel.status_code");
    any_t *hc = sc ? NULL : AMAP_GET(m, "http.status_code");
    if (sc) {
        if (!exists) {
            exists = true;
            if (ascii_upper_eq(any_as_str(sc), "OK"))
                code = CODE(OK);
            else if (ascii_upper_eq(any_as_str(sc), "ERROR"))
                code = CODE(ERROR);
            take_description(m, &msg);
        }
        AMAP_REMOVE(m, "otel.status_code");
    } else if (hc && !exists) {
        int64_t http = 0;
        bool ok = hc->value_case == VC(INT_VALUE)
                      ? (http = hc->int_value, true)
                      : hc->value_case == VC(STRING_VALUE) && parse_int(hc->string_value, &http);
        if (ok) {
            int c = CODE(ERROR);
            if (http >= 400 && http < 500 && span->kind == KIND(SERVER))
                c = CODE(UNSET);
            else if (!(http >= 400 && http < 500 && span->kind == KIND(CLIENT)) && http >= 100 &&
                     http < 399)
                c = CODE(UNSET);
            if (c != CODE(UNSET)) {
                exists = true;
                code = c;
            }
            any_t *hm = AMAP_GET(m, "http.status_message");
            if (hm) msg = any_as_str(hm);
        }
    }
    if (!exists) return;
    span->status->code = code;
    span->status->message = str_copy(t, (const uint8_t *)msg, strlen(msg));
}

static Opentelemetry__Proto__Trace__V1__Span__Event *log_event(tx_t *t, const jg_log_t *l, bool ns)
{
    Opentelemetry__Proto__Trace__V1__Span__Event *e = tx_alloc(t, sizeof(*e));
    if (!e) return NULL;
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = (uint64_t)l->timestamp * (ns ? 1u : 1000u);
    if (l->fields.n == 0) return e;
    amap_t m;
    if (amap_init(t, &m, l->fields.n) != 0) return NULL;
    put_tags(t, &m, &l->fields);
    any_t *name = AMAP_GET(&m, "event");
    if (name) {
        const char *s = any_as_str(name);
        e->name = str_copy(t, (const uint8_t *)s, strlen(s));
        AMAP_REMOVE(&m, "event");
    }
    e->attributes = m.kv;
    e->n_attributes = m.n;
    return e;
}

static void span_links(tx_t *t, const jg_span_t *s, int64_t parent, span_t *span)
{
    if (s->n_refs == 0 ||
        (s->n_refs == 1 && s->refs[0].span_id == parent && s->refs[0].type == JG_REF_CHILD_OF))
        return;
    span->links = tx_alloc(t, s->n_refs * sizeof(*span->links));
    if (!span->links) return;
    for (uint32_t i = 0; i < s->n_refs; i++) {
        const jg_ref_t *r = &s->refs[i];
        if (r->span_id == parent && r->type == JG_REF_CHILD_OF) continue;
        Opentelemetry__Proto__Trace__V1__Span__Link *l = tx_alloc(t, sizeof(*l));
        kv_t *kv = tx_alloc(t, sizeof(*kv));
        kv_t **kvs = tx_alloc(t, sizeof(*kvs));
        if (!l || !kv || !kvs) return;
        opentelemetry__proto__trace__v1__span__link__init(l);
        opentelemetry__proto__common__v1__key_value__init(kv);
        trace_id(t, &l->trace_id, r->trace_id_high, r->trace_id_low);
        span_id(t, &l->span_id, r->span_id);
        const char *rt = r->type == JG_REF_CHILD_OF ? "child_of" : "follows_from";
        kv->key = (char *)"opentracing.ref_type";
        kv->value = any_str(t, (char *)rt);
        kvs[0] = kv;
        l->attributes = kvs;
        l->n_attributes = 1;
        span->links[span->n_links++] = l;
    }
}

static span_t *span_new(tx_t *t, const jg_span_t *s)
{
    span_t *span = tx_alloc(t, sizeof(*span));
    status_t *st = tx_alloc(t, sizeof(*st));
    if (!span || !st) return NULL;
    opentelemetry__proto__trace__v1__span__init(span);
    opentelemetry__proto__trace__v1__status__init(st);
    span->status = st;
    trace_id(t, &span->trace_id, s->trace_id_high, s->trace_id_low);
    span_id(t, &span->span_id, s->span_id);
    span->name = jstr(t, s->operation_name);
    uint64_t unit = s->proto ? 1u : 1000u;
    span->start_time_unix_nano = (uint64_t)s->start_time * unit;
    span->end_time_unix_nano = ((uint64_t)s->start_time + (uint64_t)s->duration) * unit;
    int64_t parent = parent_id(s);
    if (parent != 0) span_id(t, &span->parent_span_id, parent);

    amap_t m;
    if (amap_init(t, &m, s->tags.n) != 0) return NULL;
    put_tags(t, &m, &s->tags);
    any_t *kind = AMAP_GET(&m, "span.kind");
    if (kind) {
        span->kind = span_kind(any_as_str(kind));
        AMAP_REMOVE(&m, "span.kind");
    }
    set_status(t, &m, span);
    any_t *ts = s->proto ? AMAP_GET(&m, "w3c.tracestate") : NULL;
    if (ts) { /* getTraceStateFromAttrs */
        const char *v = any_as_str(ts);
        span->trace_state = str_copy(t, (const uint8_t *)v, strlen(v));
        AMAP_REMOVE(&m, "w3c.tracestate");
    }
    span->attributes = m.kv;
    span->n_attributes = m.n;

    if (s->n_logs) {
        span->events = tx_alloc(t, s->n_logs * sizeof(*span->events));
        if (!span->events) return NULL;
        for (uint32_t i = 0; i < s->n_logs; i++) {
            span->events[i] = log_event(t, &s->logs[i], s->proto);
            if (!span->events[i]) return NULL;
        }
        span->n_events = s->n_logs;
    }
    span_links(t, s, parent, span);
    return t->oom ? NULL : span;
}

/* reflect.DeepEqual(span, new(jaeger.Span)): every field zero, no list given. */
static bool blank(const jg_span_t *s)
{
    return !s->trace_id_low && !s->trace_id_high && !s->span_id && !s->parent_span_id &&
           !s->operation_name.len && !s->refs_present && !s->flags && !s->start_time &&
           !s->duration && !s->tags.present && !s->logs_present;
}

/* ------------------------------------------------------------------------ */
/* The request                                                               */
/* ------------------------------------------------------------------------ */

static Opentelemetry__Proto__Resource__V1__Resource *resource(tx_t *t, const jg_batch_t *b)
{
    Opentelemetry__Proto__Resource__V1__Resource *res = tx_alloc(t, sizeof(*res));
    if (!res) return NULL;
    opentelemetry__proto__resource__v1__resource__init(res);
    if (b->service_name.len == 0 && !b->process_tags.present) return res;
    amap_t m;
    /* service.name, the tags, host.name and opencensus.exporterversion */
    if (amap_init(t, &m, b->process_tags.n + 3) != 0) return NULL;
    if (b->service_name.len)
        amap_put(t, &m, (char *)"service.name", 12, any_str(t, jstr(t, b->service_name)));
    put_tags(t, &m, &b->process_tags);
    any_t *host = AMAP_GET(&m, "hostname");
    if (host && !AMAP_GET(&m, "host.name")) {
        amap_put(t, &m, (char *)"host.name", 9, host);
        AMAP_REMOVE(&m, "hostname");
    }
    any_t *ver = AMAP_GET(&m, "jaeger.version");
    if (ver && !AMAP_GET(&m, "opencensus.exporterversion")) {
        const char *v = any_as_str(ver);
        size_t n = strlen(v);
        char *s = tx_alloc(t, n + sizeof("Jaeger-"));
        if (!s) return NULL;
        memcpy(s, "Jaeger-", 7);
        memcpy(s + 7, v, n + 1);
        amap_put(t, &m, (char *)"opencensus.exporterversion", 26, any_str(t, s));
        AMAP_REMOVE(&m, "jaeger.version");
    }
    res->attributes = m.kv;
    res->n_attributes = m.n;
    return t->oom ? NULL : res;
}

static Opentelemetry__Proto__Trace__V1__ScopeSpans *scope_spans_new(tx_t *t, jg_str_t name,
                                                                    jg_str_t version, size_t cap)
{
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = tx_alloc(t, sizeof(*ss));
    Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = tx_alloc(t, sizeof(*scope));
    span_t **out = tx_alloc(t, cap * sizeof(*out));
    if (t->oom) return NULL;
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
    if (name.len) scope->name = jstr(t, name);
    if (version.len) scope->version = jstr(t, version);
    ss->scope = scope;
    ss->spans = out;
    return t->oom ? NULL : ss;
}

static bool jstr_eq(jg_str_t a, jg_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* jSpansToInternal: a ScopeSpans per (otel.scope.name, otel.scope.version), in
 * the order they first appear, made when its first span that is not blank is. */
static int proto_scopes(tx_t *t, const jg_batch_t *b,
                        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs, size_t *spans)
{
    rs->scope_spans = tx_alloc(t, b->n_spans * sizeof(*rs->scope_spans));
    uint32_t *first = tx_alloc(t, b->n_spans * sizeof(*first)); /* a span of each scope */
    if (t->oom) return -1;
    for (uint32_t i = 0; i < b->n_spans; i++) {
        const jg_span_t *js = &b->spans[i];
        if (blank(js)) continue;
        size_t k = 0;
        while (k < rs->n_scope_spans &&
               !(jstr_eq(b->spans[first[k]].scope_name, js->scope_name) &&
                 jstr_eq(b->spans[first[k]].scope_version, js->scope_version)))
            k++;
        if (k == rs->n_scope_spans) {
            rs->scope_spans[k] =
                scope_spans_new(t, js->scope_name, js->scope_version, b->n_spans - i);
            if (!rs->scope_spans[k]) return -1;
            first[k] = i;
            rs->n_scope_spans++;
        }
        span_t *s = span_new(t, js);
        if (!s) return -1;
        rs->scope_spans[k]->spans[rs->scope_spans[k]->n_spans++] = s;
        (*spans)++;
    }
    return 0;
}

void *jg_to_otlp(const jg_batch_t *b, ProtobufCAllocator *alloc, size_t *spans)
{
    return jg_to_otlp_many(b, 1, alloc, spans);
}

void *jg_to_otlp_many(const jg_batch_t *batches, size_t n, ProtobufCAllocator *alloc, size_t *spans)
{
    tx_t t = {.a = alloc};
    *spans = 0;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        tx_alloc(&t, sizeof(*req));
    Opentelemetry__Proto__Trace__V1__ResourceSpans **rss = tx_alloc(&t, n * sizeof(*rss));
    if (t.oom) return NULL;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    req->resource_spans = rss;
    for (size_t i = 0; i < n; i++) {
        const jg_batch_t *b = &batches[i];
        if (b->proto && !b->process_present && b->n_spans == 0) continue;
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = tx_alloc(&t, sizeof(*rs));
        if (!rs) return NULL;
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rss[req->n_resource_spans++] = rs;
        rs->resource = resource(&t, b);
        if (!rs->resource) return NULL;
        if (b->n_spans == 0) continue;
        if (b->proto) {
            if (proto_scopes(&t, b, rs, spans) != 0) return NULL;
            continue;
        }
        jg_str_t none = {0};
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
            scope_spans_new(&t, none, none, b->n_spans);
        Opentelemetry__Proto__Trace__V1__ScopeSpans **sss = tx_alloc(&t, sizeof(*sss));
        if (!ss || !sss) return NULL;
        sss[0] = ss;
        rs->scope_spans = sss;
        rs->n_scope_spans = 1;
        for (uint32_t k = 0; k < b->n_spans; k++) {
            if (blank(&b->spans[k])) continue;
            span_t *s = span_new(&t, &b->spans[k]);
            if (!s) return NULL;
            ss->spans[ss->n_spans++] = s;
        }
        *spans += ss->n_spans;
    }
    return req;
}
