/*
 * loadgen_payload.c - builds the OTLP trace requests of loadgen_payload.h.
 *
 * The spans look like what an instrumented HTTP service emits: W3C IDs, a name,
 * a kind, two timestamps, a status, and attributes alternating between strings
 * and integers with semantic-convention keys. With the default 10 attributes a
 * span encodes to about 440 bytes, the figure the design notes measured with.
 * Everything is built in one scratch block per request, serialized, and the
 * block freed: only the encoded bytes stay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "loadgen_payload.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest request_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Trace__V1__Status status_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope scope_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

#define STR_MAX 96 /* longest attribute value or span name written, with its NUL */

/* A bump allocator over one block: the request's structs live as long as it. */
typedef struct scratch_s {
    uint8_t *base;
    size_t used, size;
} scratch_t;

static void *scratch_alloc(scratch_t *s, size_t size)
{
    size_t at = (s->used + 15) & ~(size_t)15;
    if (at > s->size || size > s->size - at) return NULL;
    s->used = at + size;
    return s->base + at;
}

/* xorshift64*: fast, reproducible, good enough for IDs and attribute values. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void random_bytes(uint64_t *state, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = next_random(state);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(out + i, &r, k);
    }
    out[0] |= 1; /* An all-zero ID is invalid. */
}

/* The attribute keys: semantic conventions first, then attr.<n>. Even positions
 * hold strings, odd ones integers. */
static const char *const string_keys[] = {"http.request.method", "url.path",  "server.address",
                                          "user_agent.original", "db.system", "peer.service"};
static const char *const int_keys[] = {"http.response.status_code", "server.port",
                                       "http.request.body.size", "thread.id",
                                       "db.response.returned_rows"};
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const span_names[] = {"GET /api/v1/users/{id}", "POST /api/v1/orders",
                                         "SELECT orders", "GET /api/v1/catalog/items",
                                         "redis GET session"};

static char *string_value(scratch_t *s, uint64_t *rng, unsigned which)
{
    char *out = scratch_alloc(s, STR_MAX);
    if (!out) return NULL;
    unsigned r = (unsigned)(next_random(rng) >> 33);
    switch (which) {
    case 0:
        snprintf(out, STR_MAX, "%s", methods[r % 4]);
        break;
    case 1:
        snprintf(out, STR_MAX, "/api/v1/users/%u/orders/%u", r % 100000, (r >> 8) % 1000);
        break;
    case 2:
        snprintf(out, STR_MAX, "backend-%u.shop.svc.local", r % 64);
        break;
    case 3:
        snprintf(out, STR_MAX, "loadgen/0.%u (linux; x86_64)", r % 10);
        break;
    case 4:
        snprintf(out, STR_MAX, "postgresql");
        break;
    default:
        snprintf(out, STR_MAX, "value-%08x-%04x", r, r % 7919);
        break;
    }
    return out;
}

static int64_t int_value(uint64_t *rng, unsigned which)
{
    uint64_t r = next_random(rng);
    switch (which) {
    case 0:
        return (r % 10) ? 200 : 503;
    case 1:
        return 8080;
    case 2:
        return (int64_t)(r % 65536);
    default:
        return (int64_t)(r % 100000000);
    }
}

/* Fills one attribute, position i on its span. Returns 0 or -1 (out of scratch). */
static int fill_attr(scratch_t *s, uint64_t *rng, unsigned i, kv_t *kv, any_t *val)
{
    static const any_t any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    static const kv_t kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    unsigned n = i / 2;
    *kv = kv_init;
    *val = any_init;
    kv->value = val;
    if (i % 2 == 0) {
        unsigned nk = sizeof(string_keys) / sizeof(string_keys[0]);
        if (n < nk) {
            kv->key = (char *)string_keys[n];
        } else {
            if (!(kv->key = scratch_alloc(s, 24))) return -1;
            snprintf(kv->key, 24, "attr.s%u", n);
        }
        val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        val->string_value = string_value(s, rng, n);
        return val->string_value ? 0 : -1;
    }
    unsigned nk = sizeof(int_keys) / sizeof(int_keys[0]);
    if (n < nk) {
        kv->key = (char *)int_keys[n];
    } else {
        if (!(kv->key = scratch_alloc(s, 24))) return -1;
        snprintf(kv->key, 24, "attr.i%u", n);
    }
    val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    val->int_value = int_value(rng, n);
    return 0;
}

/* Fills span i of a request. Spans come in traces of 8: the first is the root,
 * the others its children. */
static int fill_span(scratch_t *s, uint64_t *rng, const lg_payload_opts_t *o, unsigned i,
                     span_t *sp, uint8_t *trace_id, const uint8_t *root_id)
{
    static const span_t span_init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    static const status_t status_init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    *sp = span_init;
    uint8_t *sid = scratch_alloc(s, 8);
    status_t *st = scratch_alloc(s, sizeof(*st));
    kv_t **kvp = scratch_alloc(s, (o->attrs ? o->attrs : 1) * sizeof(*kvp));
    kv_t *kvs = scratch_alloc(s, (o->attrs ? o->attrs : 1) * sizeof(*kvs));
    any_t *vals = scratch_alloc(s, (o->attrs ? o->attrs : 1) * sizeof(*vals));
    if (!sid || !st || !kvp || !kvs || !vals) return -1;
    random_bytes(rng, sid, 8);
    sp->trace_id.data = trace_id;
    sp->trace_id.len = 16;
    sp->span_id.data = sid;
    sp->span_id.len = 8;
    if (i % 8 != 0 && root_id) {
        sp->parent_span_id.data = (uint8_t *)root_id;
        sp->parent_span_id.len = 8;
    }
    sp->flags = 0x101; /* sampled, parent is not remote */
    sp->name = (char *)span_names[next_random(rng) % 5];
    sp->kind = i % 8 == 0 ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                          : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    sp->start_time_unix_nano = 1700000000000000000ULL + (uint64_t)i * 1000003ULL;
    sp->end_time_unix_nano = sp->start_time_unix_nano + 1000 + next_random(rng) % 50000000;
    for (unsigned a = 0; a < o->attrs; a++) {
        if (fill_attr(s, rng, a, &kvs[a], &vals[a]) < 0) return -1;
        kvp[a] = &kvs[a];
    }
    sp->n_attributes = o->attrs;
    sp->attributes = kvp;
    *st = status_init;
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    sp->status = st;
    return 0;
}

/* gzip-compresses in into a new buffer. Returns 0 or -1. */
static int gzip_body(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;
    size_t cap = deflateBound(&zs, len) + 32;
    uint8_t *buf = malloc(cap);
    if (!buf) goto fail;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) goto fail;
    *out_len = cap - zs.avail_out;
    *out = buf;
    deflateEnd(&zs);
    return 0;
fail:
    free(buf);
    deflateEnd(&zs);
    return -1;
}

/* Finds each span's `span_id` field (tag 0x12, length 8, the ID) in the encoded
 * request, in order, and records where its 8 bytes are. Returns 0 or -1. */
static int find_span_ids(const uint8_t *raw, size_t len, const span_t *spans, unsigned n,
                         lg_payload_t *p)
{
    if (!(p->span_id_at = malloc((n ? n : 1) * sizeof(*p->span_id_at)))) return -1;
    size_t at = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t want[10] = {0x12, 0x08};
        memcpy(want + 2, spans[i].span_id.data, 8);
        while (at + 10 <= len && memcmp(raw + at, want, 10) != 0)
            at++;
        if (at + 10 > len) return -1;
        p->span_id_at[i] = at + 2;
        at += 10;
    }
    return 0;
}

void lg_payload_number(const lg_payload_t *p, uint8_t *out, uint16_t client, uint32_t seq)
{
    memcpy(out, p->body, p->len);
    for (unsigned i = 0; i < p->spans; i++) {
        uint8_t *id = out + p->span_id_at[i];
        id[0] = (uint8_t)(client >> 8);
        id[1] = (uint8_t)client;
        id[2] = (uint8_t)(seq >> 24);
        id[3] = (uint8_t)(seq >> 16);
        id[4] = (uint8_t)(seq >> 8);
        id[5] = (uint8_t)seq;
        id[6] = (uint8_t)(i >> 8);
        id[7] = (uint8_t)i;
        if (p->unique_traces) /* the Span's field 1 (0x0a, 16 bytes) before field 2 */
            memcpy(id - 18, id, 6);
    }
}

/* Builds and serializes one request into p. */
static int build_one(const lg_payload_opts_t *o, unsigned index, lg_payload_t *p, char *err,
                     size_t err_len)
{
    static const request_t req_init =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    static const resource_spans_t rs_init = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    static const scope_spans_t ss_init = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    static const resource_t res_init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    static const scope_t scope_init = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    static const kv_t kv_init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    static const any_t any_init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;

    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + index + 1;
    size_t per_span =
        sizeof(span_t) + sizeof(span_t *) + sizeof(status_t) + 64 +
        (size_t)o->attrs * (sizeof(kv_t) + sizeof(kv_t *) + sizeof(any_t) + 24 + STR_MAX + 64);
    scratch_t s = {.size = (size_t)o->spans * per_span + 65536};
    uint8_t *raw = NULL;
    if (!(s.base = malloc(s.size))) goto oom;

    request_t *req = scratch_alloc(&s, sizeof(*req));
    resource_spans_t *rs = scratch_alloc(&s, sizeof(*rs));
    resource_spans_t **rsp = scratch_alloc(&s, sizeof(*rsp));
    scope_spans_t *ss = scratch_alloc(&s, sizeof(*ss));
    scope_spans_t **ssp = scratch_alloc(&s, sizeof(*ssp));
    resource_t *res = scratch_alloc(&s, sizeof(*res));
    scope_t *scope = scratch_alloc(&s, sizeof(*scope));
    kv_t *rkv = scratch_alloc(&s, 3 * sizeof(*rkv));
    kv_t **rkvp = scratch_alloc(&s, 3 * sizeof(*rkvp));
    any_t *rval = scratch_alloc(&s, 3 * sizeof(*rval));
    char *host = scratch_alloc(&s, 32), *instance = scratch_alloc(&s, 40);
    span_t *spans = scratch_alloc(&s, o->spans * sizeof(*spans));
    span_t **spanp = scratch_alloc(&s, o->spans * sizeof(*spanp));
    if (!req || !rs || !rsp || !ss || !ssp || !res || !scope || !rkv || !rkvp || !rval || !host ||
        !instance || !spans || !spanp)
        goto oom;

    /* The resource: who sent it, different in each request of the set. */
    snprintf(host, 32, "bench-host-%u", index);
    snprintf(instance, 40, "%016llx", (unsigned long long)next_random(&rng));
    const char *rkeys[3] = {"service.name", "host.name", "service.instance.id"};
    const char *rvals[3] = {"loadgen", host, instance};
    for (unsigned i = 0; i < 3; i++) {
        rkv[i] = kv_init;
        rval[i] = any_init;
        rkv[i].key = (char *)rkeys[i];
        rkv[i].value = &rval[i];
        rval[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        rval[i].string_value = (char *)rvals[i];
        rkvp[i] = &rkv[i];
    }
    *res = res_init;
    res->n_attributes = 3;
    res->attributes = rkvp;
    *scope = scope_init;
    scope->name = (char *)"switchyard.loadgen";
    scope->version = (char *)"0.1.0";

    uint8_t *trace_id = NULL;
    const uint8_t *root_id = NULL;
    for (unsigned i = 0; i < o->spans; i++) {
        if (i % 8 == 0) {
            if (!(trace_id = scratch_alloc(&s, 16))) goto oom;
            random_bytes(&rng, trace_id, 16);
        }
        if (fill_span(&s, &rng, o, i, &spans[i], trace_id, root_id) < 0) goto oom;
        if (i % 8 == 0) root_id = spans[i].span_id.data;
        spanp[i] = &spans[i];
    }
    *ss = ss_init;
    ss->scope = scope;
    ss->n_spans = o->spans;
    ss->spans = spanp;
    ssp[0] = ss;
    *rs = rs_init;
    rs->resource = res;
    rs->n_scope_spans = 1;
    rs->scope_spans = ssp;
    rsp[0] = rs;
    *req = req_init;
    req->n_resource_spans = 1;
    req->resource_spans = rsp;

    size_t len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            req);
    if (!(raw = malloc(len ? len : 1))) goto oom;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, raw);
    if (o->sequence && find_span_ids(raw, len, spans, o->spans, p) < 0) {
        snprintf(err, err_len, "a span ID was not found in the encoded request");
        free(p->span_id_at);
        p->span_id_at = NULL;
        free(s.base);
        free(raw);
        return -1;
    }
    if (o->sequence && o->unique_traces) {
        for (unsigned i = 0; i < o->spans; i++) {
            size_t at = p->span_id_at[i];
            if (at < 20 || raw[at - 20] != 0x0a || raw[at - 19] != 0x10) {
                snprintf(err, err_len, "a trace ID does not precede its span ID");
                free(p->span_id_at);
                p->span_id_at = NULL;
                free(s.base);
                free(raw);
                return -1;
            }
        }
        p->unique_traces = true;
    }
    free(s.base);
    s.base = NULL;

    p->index = index;
    p->spans = o->spans;
    p->raw_len = len;
    p->gzip = o->gzip && !o->zstd;
    p->zstd = o->zstd;
    if (o->zstd) {
        size_t cap = ZSTD_compressBound(len);
        uint8_t *z = malloc(cap);
        size_t zlen = z ? ZSTD_compress(z, cap, raw, len, 3) : 0;
        if (!z || ZSTD_isError(zlen)) {
            snprintf(err, err_len, "zstd compression failed");
            free(z);
            free(raw);
            return -1;
        }
        free(raw);
        p->body = z;
        p->len = zlen;
    } else if (o->gzip) {
        uint8_t *z;
        size_t zlen;
        if (gzip_body(raw, len, &z, &zlen) < 0) {
            snprintf(err, err_len, "gzip compression failed");
            free(raw);
            return -1;
        }
        free(raw);
        p->body = z;
        p->len = zlen;
    } else {
        p->body = raw;
        p->len = len;
    }
    return 0;
oom:
    free(s.base);
    free(raw);
    snprintf(err, err_len, "out of memory building a request of %u spans", o->spans);
    return -1;
}

int lg_payload_build(const lg_payload_opts_t *opts, lg_payload_set_t *set, char *err,
                     size_t err_len)
{
    set->items = NULL;
    set->count = 0;
    if (opts->spans == 0 || opts->spans > LG_MAX_SPANS || opts->attrs > LG_MAX_ATTRS ||
        opts->distinct == 0 || opts->distinct > LG_MAX_DISTINCT) {
        snprintf(err, err_len,
                 "spans per request must be 1..%d, attributes 0..%d, distinct requests 1..%d",
                 LG_MAX_SPANS, LG_MAX_ATTRS, LG_MAX_DISTINCT);
        return -1;
    }
    set->header = opts->header;
    set->items = calloc(opts->distinct, sizeof(*set->items));
    if (!set->items) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < opts->distinct; i++) {
        if (build_one(opts, i, &set->items[i], err, err_len) < 0) {
            lg_payload_free(set);
            return -1;
        }
        set->count++;
    }
    return 0;
}

void lg_payload_free(lg_payload_set_t *set)
{
    for (unsigned i = 0; i < set->count; i++) {
        free(set->items[i].body);
        free(set->items[i].span_id_at);
    }
    free(set->items);
    set->items = NULL;
    set->count = 0;
}
