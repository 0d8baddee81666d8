/*
 * jaeger_proto.c - a jaeger.api_v2.PostSpansRequest (proto/jaeger/api_v2) as the
 * receiver's Jaeger structs (jaeger_model.h), read as the collector's
 * ProtoToTraces (pkg/translator/jaeger, jaegerproto_to_traces.go) reads the
 * gogo-decoded model, then translated by jaeger_otlp.c:
 *
 *  - ids: a trace id of 16 bytes (high, low) or 8 (low); a span id of 8; an id
 *    of another non-zero length is an error, as model.TraceIDFromBytes /
 *    SpanIDFromBytes make it one (the whole call is refused);
 *  - start_time / log timestamps: validated as gogo's TimestampFromProto does
 *    (years 1 to 9999, nanos in [0, 1e9)); an absent one is Go's zero time.Time,
 *    whose UnixNano wraps (the collector's output for it is kept);
 *  - duration: validated as DurationFromProto does;
 *  - regroup(): spans carrying their own process go to a ResourceSpans of that
 *    process, the others to the batch's; equal processes (same service name and
 *    tags) share one. The collector orders them by a map (random), we by first
 *    appearance, the batch's process first;
 *  - a process whose service name is "OTLPResourceNoServiceName", or absent,
 *    gives an empty resource;
 *  - the first "otel.scope.name" tag of a span (its v_str, whatever its type)
 *    names the scope and is removed, then the first "otel.scope.version";
 *  - a tag of an unknown value type is the string "<Unknown Jaeger TagType \"N\">".
 */
#include <stdio.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "hash.h"
#include "jaeger_model.h"

#include "jaeger/api_v2/collector.pb-c.h"

typedef Jaeger__ApiV2__KeyValue pkv_t;
typedef Jaeger__ApiV2__Process pproc_t;
typedef Jaeger__ApiV2__Span pspan_t;

#define MIN_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define MAX_SECONDS 253402300800LL   /* 10000-01-01T00:00:00Z */
#define MAX_DUR_SEC 315576000000LL   /* 10000 years */
#define NANOS       1000000000LL

typedef struct cv_s {
    ProtobufCAllocator *a;
    char *err;
    size_t err_len;
    int rc;
} cv_t;

static void *cv_alloc(cv_t *c, size_t size)
{
    if (c->rc) return NULL;
    void *p = c->a->alloc(c->a->allocator_data, size ? size : 1);
    if (!p) c->rc = SY_ENOMEM;
    return p;
}

static void cv_fail(cv_t *c, const char *what)
{
    if (c->rc) return;
    c->rc = SY_EINVAL;
    snprintf(c->err, c->err_len, "%s", what);
}

static jg_str_t str_of(const char *s)
{
    jg_str_t r = {(const uint8_t *)s, s ? (uint32_t)strlen(s) : 0};
    if (!r.len) r.p = NULL;
    return r;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void trace_id(cv_t *c, ProtobufCBinaryData d, int64_t *high, int64_t *low)
{
    *high = *low = 0;
    if (d.len == 16) {
        *high = (int64_t)be64(d.data);
        *low = (int64_t)be64(d.data + 8);
    } else if (d.len == 8) {
        *low = (int64_t)be64(d.data);
    } else if (d.len != 0) {
        cv_fail(c, "invalid length for TraceID");
    }
}

static void span_id(cv_t *c, ProtobufCBinaryData d, int64_t *id)
{
    *id = 0;
    if (d.len == 8)
        *id = (int64_t)be64(d.data);
    else if (d.len != 0)
        cv_fail(c, "invalid length for SpanID");
}

/* Nanoseconds since the epoch, wrapping as Go's Time.UnixNano does. */
static int64_t timestamp_ns(cv_t *c, const Google__Protobuf__Timestamp *ts)
{
    int64_t sec = ts ? ts->seconds : MIN_SECONDS, nanos = ts ? ts->nanos : 0;
    if (ts && (sec < MIN_SECONDS || sec >= MAX_SECONDS || nanos < 0 || nanos >= NANOS))
        cv_fail(c, "timestamp out of range (years 1 to 9999, nanos 0 to 999999999)");
    return (int64_t)((uint64_t)sec * (uint64_t)NANOS + (uint64_t)nanos);
}

static int64_t duration_ns(cv_t *c, const Google__Protobuf__Duration *d)
{
    if (!d) return 0;
    int64_t sec = d->seconds, nanos = d->nanos;
    if (sec < -MAX_DUR_SEC || sec > MAX_DUR_SEC || nanos <= -NANOS || nanos >= NANOS ||
        (sec < 0 && nanos > 0) || (sec > 0 && nanos < 0)) {
        cv_fail(c, "duration out of range");
        return 0;
    }
    /* time.Duration is int64 nanoseconds: about 292 years */
    if (sec > INT64_MAX / NANOS || sec < INT64_MIN / NANOS) {
        cv_fail(c, "duration out of range for time.Duration");
        return 0;
    }
    int64_t ns = sec * NANOS;
    if ((nanos > 0 && ns > INT64_MAX - nanos) || (nanos < 0 && ns < INT64_MIN - nanos)) {
        cv_fail(c, "duration out of range for time.Duration");
        return 0;
    }
    return ns + nanos;
}

static void tag_of(cv_t *c, const pkv_t *kv, jg_tag_t *t)
{
    memset(t, 0, sizeof(*t));
    t->key = str_of(kv->key);
    switch ((int)kv->v_type) {
    case JAEGER__API_V2__VALUE_TYPE__STRING:
        t->vtype = JG_TAG_STRING;
        t->vstr = str_of(kv->v_str);
        break;
    case JAEGER__API_V2__VALUE_TYPE__BOOL:
        t->vtype = JG_TAG_BOOL;
        t->vbool = kv->v_bool;
        break;
    case JAEGER__API_V2__VALUE_TYPE__INT64:
        t->vtype = JG_TAG_LONG;
        t->vlong = kv->v_int64;
        break;
    case JAEGER__API_V2__VALUE_TYPE__FLOAT64:
        t->vtype = JG_TAG_DOUBLE;
        t->vdouble = kv->v_float64;
        break;
    case JAEGER__API_V2__VALUE_TYPE__BINARY:
        t->vtype = JG_TAG_BINARY;
        t->vbinary.p = kv->v_binary.data;
        t->vbinary.len = (uint32_t)kv->v_binary.len;
        break;
    default: { /* fmt.Sprintf("<Unknown Jaeger TagType %q>", vtype) */
        char *s = cv_alloc(c, 48);
        if (!s) return;
        snprintf(s, 48, "<Unknown Jaeger TagType \"%d\">", (int)kv->v_type);
        t->vtype = JG_TAG_STRING;
        t->vstr = str_of(s);
    }
    }
}

/* `skip` (may be NULL) are indexes of tags left out, -1 for none. */
static void tags_of(cv_t *c, pkv_t *const *kvs, size_t n, long skip1, long skip2, jg_tags_t *out)
{
    out->v = NULL;
    out->n = 0;
    out->present = n > 0; /* gogo leaves an empty repeated field nil */
    if (!n) return;
    out->v = cv_alloc(c, n * sizeof(*out->v));
    if (!out->v) return;
    for (size_t i = 0; i < n; i++)
        if ((long)i != skip1 && (long)i != skip2) tag_of(c, kvs[i], &out->v[out->n++]);
}

static long find_tag(pkv_t *const *kvs, size_t n, const char *key, long not )
{
    for (size_t i = 0; i < n; i++)
        if ((long)i != not &&strcmp(kvs[i]->key, key) == 0) return (long)i;
    return -1;
}

static bool span_blank(const pspan_t *s)
{
    return !s->trace_id.len && !s->span_id.len && !s->operation_name[0] && !s->n_references &&
           !s->flags && !s->start_time && !s->duration && !s->n_tags && !s->n_logs && !s->process &&
           !s->process_id[0] && !s->n_warnings;
}

static void span_of(cv_t *c, const pspan_t *p, jg_span_t *s)
{
    memset(s, 0, sizeof(*s));
    s->proto = true;
    if (span_blank(p)) return; /* every field zero: skipped by the translation */
    trace_id(c, p->trace_id, &s->trace_id_high, &s->trace_id_low);
    span_id(c, p->span_id, &s->span_id);
    s->operation_name = str_of(p->operation_name);
    s->flags = (int32_t)p->flags;
    s->start_time = timestamp_ns(c, p->start_time);
    s->duration = duration_ns(c, p->duration);
    s->refs_present = p->n_references > 0;
    if (p->n_references) {
        s->refs = cv_alloc(c, p->n_references * sizeof(*s->refs));
        if (!s->refs) return;
        for (size_t i = 0; i < p->n_references; i++) {
            const Jaeger__ApiV2__SpanRef *r = p->references[i];
            jg_ref_t *o = &s->refs[s->n_refs++];
            o->type = r->ref_type == JAEGER__API_V2__SPAN_REF_TYPE__CHILD_OF ? JG_REF_CHILD_OF
                                                                             : JG_REF_FOLLOWS_FROM;
            trace_id(c, r->trace_id, &o->trace_id_high, &o->trace_id_low);
            span_id(c, r->span_id, &o->span_id);
        }
    }
    /* getScope(): the first otel.scope.name, then the first otel.scope.version */
    long name = find_tag(p->tags, p->n_tags, "otel.scope.name", -1), version = -1;
    if (name >= 0) {
        s->scope_name = str_of(p->tags[name]->v_str);
        version = find_tag(p->tags, p->n_tags, "otel.scope.version", name);
        if (version >= 0) s->scope_version = str_of(p->tags[version]->v_str);
    }
    tags_of(c, p->tags, p->n_tags, name, version, &s->tags);
    s->logs_present = p->n_logs > 0;
    if (p->n_logs) {
        s->logs = cv_alloc(c, p->n_logs * sizeof(*s->logs));
        if (!s->logs) return;
        for (size_t i = 0; i < p->n_logs; i++) {
            const Jaeger__ApiV2__Log *l = p->logs[i];
            jg_log_t *o = &s->logs[s->n_logs++];
            o->timestamp = timestamp_ns(c, l->timestamp);
            tags_of(c, l->fields, l->n_fields, -1, -1, &o->fields);
        }
    }
}

/* process.Hash(fnv64a) stands for the process: ours covers the same fields. */
static uint64_t process_key(const pproc_t *p)
{
    uint64_t h = SYC_FNV64_OFFSET;
    if (!p) return h;
    h = syc_fnv1a64(h, "P", 1);
    h = syc_fnv1a64(h, p->service_name, strlen(p->service_name) + 1);
    for (size_t i = 0; i < p->n_tags; i++) {
        const pkv_t *kv = p->tags[i];
        int32_t vt = (int32_t)kv->v_type;
        h = syc_fnv1a64(h, kv->key, strlen(kv->key) + 1);
        h = syc_fnv1a64(h, &vt, sizeof(vt));
        h = syc_fnv1a64(h, kv->v_str, strlen(kv->v_str) + 1);
        h = syc_fnv1a64(h, &kv->v_bool, sizeof(kv->v_bool));
        h = syc_fnv1a64(h, &kv->v_int64, sizeof(kv->v_int64));
        h = syc_fnv1a64(h, &kv->v_float64, sizeof(kv->v_float64));
        h = syc_fnv1a64(h, &kv->v_binary.len, sizeof(kv->v_binary.len));
        h = syc_fnv1a64(h, kv->v_binary.data, kv->v_binary.len);
    }
    return h;
}

typedef struct group_s {
    uint64_t key;
    const pproc_t *process;
    size_t n; /* spans */
} group_t;

static size_t group_for(group_t *g, size_t *ng, const pproc_t *p)
{
    uint64_t key = process_key(p);
    for (size_t i = 0; i < *ng; i++)
        if (g[i].key == key) return i;
    g[*ng] = (group_t){.key = key, .process = p};
    return (*ng)++;
}

static void process_of(cv_t *c, const pproc_t *p, jg_batch_t *b)
{
    b->proto = true;
    b->process_present = p != NULL;
    if (!p || strcmp(p->service_name, "OTLPResourceNoServiceName") == 0) return;
    b->service_name = str_of(p->service_name);
    tags_of(c, p->tags, p->n_tags, -1, -1, &b->process_tags);
}

int jaeger_proto_translate(const uint8_t *data, size_t len, ProtobufCAllocator *alloc, void **req,
                           size_t *spans, char *err, size_t err_len)
{
    cv_t c = {.a = alloc, .err = err, .err_len = err_len};
    *req = NULL;
    *spans = 0;
    Jaeger__ApiV2__PostSpansRequest *r =
        jaeger__api_v2__post_spans_request__unpack(alloc, len, data);
    if (!r) {
        snprintf(err, err_len, "proto: cannot decode jaeger.api_v2.PostSpansRequest (%zu bytes)",
                 len);
        return SY_EINVAL;
    }
    const Jaeger__ApiV2__Batch *in = r->batch;
    size_t n = in ? in->n_spans : 0;
    const pproc_t *bp = in ? in->process : NULL;
    /* regroup(): one group per distinct process, the batch's first */
    group_t *groups = cv_alloc(&c, (n + 1) * sizeof(*groups));
    size_t *which = cv_alloc(&c, (n ? n : 1) * sizeof(*which));
    if (c.rc) return c.rc;
    size_t ng = 0;
    group_for(groups, &ng, bp);
    for (size_t i = 0; i < n; i++) {
        const pproc_t *p = in->spans[i]->process ? in->spans[i]->process : bp;
        which[i] = group_for(groups, &ng, p);
        groups[which[i]].n++;
    }
    jg_batch_t *batches = cv_alloc(&c, ng * sizeof(*batches));
    if (c.rc) return c.rc;
    memset(batches, 0, ng * sizeof(*batches));
    for (size_t g = 0; g < ng; g++) {
        process_of(&c, groups[g].process, &batches[g]);
        if (groups[g].n) batches[g].spans = cv_alloc(&c, groups[g].n * sizeof(jg_span_t));
    }
    for (size_t i = 0; i < n && !c.rc; i++) {
        jg_batch_t *b = &batches[which[i]];
        span_of(&c, in->spans[i], &b->spans[b->n_spans++]);
    }
    if (c.rc) return c.rc;
    *req = jg_to_otlp_many(batches, ng, alloc, spans);
    return *req ? SY_OK : SY_ENOMEM;
}
