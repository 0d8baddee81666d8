/*
 * zipkin_json.c - Zipkin JSON (a v2 or v1 array of spans) into zk_span_t, read
 * with yajl's event parser (the same library as the OTLP/JSON codec in
 * plugins/common): one pass, no tree, strings copied once into the caller's arena.
 *
 * What is accepted follows the collector's decoding (Go's encoding/json into
 * zipkin-go's SpanModel for v2, into the collector's own jsonSpan for v1): keys
 * matched without regard to case, unknown keys ignored, null taken as absent, a
 * value of another type refused ("timestamp" must be an integer, a tag's value a
 * string), ids hex (v2: trace id of 1 to 32 digits, span ids of 1 to 16, not zero;
 * v1: trace id of exactly 16 or 32 digits, span ids of 16). A v1 binary
 * annotation's value may also be a boolean or a number, taken as its text (the
 * collector refuses those).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <switchyard/plugin.h>
#include <yajl/yajl_parse.h>

#include "zipkin_model.h"

#define ZK_JSON_MAX_DEPTH 64

typedef enum ctx_e {
    CTX_TOP = 0,  /* before the array */
    CTX_SPANS,    /* the array of spans */
    CTX_SPAN,     /* a span object */
    CTX_ENDPOINT, /* an endpoint object (ep points at it) */
    CTX_ANN_LIST, /* "annotations" */
    CTX_ANN,      /* one annotation */
    CTX_BIN_LIST, /* v1 "binaryAnnotations" */
    CTX_BIN,      /* one binary annotation */
    CTX_TAGS,     /* v2 "tags" */
    CTX_DONE,     /* after the array */
} ctx_t;

/* The key whose value comes next. */
typedef enum field_e {
    F_NONE = 0,
    F_TRACE_ID,
    F_ID,
    F_PARENT_ID,
    F_NAME,
    F_KIND,
    F_TIMESTAMP,
    F_DURATION,
    F_DEBUG,
    F_SHARED,
    F_LOCAL,
    F_REMOTE,
    F_ANNOTATIONS,
    F_BINARY,
    F_TAGS,
    F_SERVICE_NAME,
    F_IPV4,
    F_IPV6,
    F_PORT,
    F_VALUE,
    F_KEY,
    F_ENDPOINT,
    F_TAG, /* a key of "tags" */
} field_t;

typedef struct names_s {
    const char *name;
    field_t field;
} names_t;

static const names_t span_v2_keys[] = {
    {"traceId", F_TRACE_ID},
    {"id", F_ID},
    {"parentId", F_PARENT_ID},
    {"name", F_NAME},
    {"kind", F_KIND},
    {"timestamp", F_TIMESTAMP},
    {"duration", F_DURATION},
    {"debug", F_DEBUG},
    {"shared", F_SHARED},
    {"localEndpoint", F_LOCAL},
    {"remoteEndpoint", F_REMOTE},
    {"annotations", F_ANNOTATIONS},
    {"tags", F_TAGS},
    {NULL, F_NONE},
};
static const names_t span_v1_keys[] = {
    {"traceId", F_TRACE_ID},
    {"id", F_ID},
    {"parentId", F_PARENT_ID},
    {"name", F_NAME},
    {"timestamp", F_TIMESTAMP},
    {"duration", F_DURATION},
    {"debug", F_DEBUG},
    {"annotations", F_ANNOTATIONS},
    {"binaryAnnotations", F_BINARY},
    {NULL, F_NONE},
};
static const names_t endpoint_keys[] = {
    {"serviceName", F_SERVICE_NAME},
    {"ipv4", F_IPV4},
    {"ipv6", F_IPV6},
    {"port", F_PORT},
    {NULL, F_NONE},
};
static const names_t ann_keys[] = {
    {"timestamp", F_TIMESTAMP}, {"value", F_VALUE}, {"endpoint", F_ENDPOINT}, {NULL, F_NONE}};
static const names_t bin_keys[] = {
    {"key", F_KEY}, {"value", F_VALUE}, {"endpoint", F_ENDPOINT}, {NULL, F_NONE}};

/* A growable array of fixed-size elements (malloc), for one span's lists. */
typedef struct vec_s {
    void *v;
    size_t n, cap, esize;
} vec_t;

typedef struct dec_s {
    zk_format_t format;
    const zk_alloc_t *alloc;
    zk_spans_t *out;
    yajl_handle yajl;
    ctx_t stack[ZK_JSON_MAX_DEPTH];
    int depth;     /* entries of stack in use; stack[depth-1] is the current one */
    int skip;      /* nesting inside a value that is ignored */
    field_t field; /* the key just read */
    zk_str_t tag_key;
    zk_span_t span;       /* the span being read */
    zk_endpoint_t *ep;    /* the endpoint being read */
    zk_annotation_t ann;  /* the annotation being read */
    zk_tag_t bin;         /* the binary annotation being read */
    zk_endpoint_t bin_ep; /* its endpoint */
    vec_t anns, tags;
    bool seen_trace, seen_id;
    char *err;
    size_t err_len;
    bool failed;
    bool oom;
} dec_t;

static int fail(dec_t *d, const char *fmt, ...) SY_PRINTF(2, 3);
static int fail(dec_t *d, const char *fmt, ...)
{
    if (d->failed) return 0;
    d->failed = true;
    if (d->err && d->err_len) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(d->err, d->err_len, "zipkin%s: span %zu: %s (at offset %zu)",
                 d->format == ZK_V1 ? "V1" : "V2", d->out->n, msg,
                 yajl_get_bytes_consumed(d->yajl));
    }
    return 0; /* yajl: cancel */
}

static int no_memory(dec_t *d)
{
    d->oom = true;
    return fail(d, "out of memory");
}

const char *zk_strdup(const zk_alloc_t *alloc, const char *s, size_t len)
{
    char *p = alloc->fn(alloc->ctx, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static bool vec_push(vec_t *v, const void *elem)
{
    if (v->n == v->cap) {
        if (v->cap >= ZK_MAX_LIST) return false;
        size_t ncap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->v, ncap * v->esize);
        if (!p) return false;
        v->v = p;
        v->cap = ncap;
    }
    memcpy((char *)v->v + v->n * v->esize, elem, v->esize);
    v->n++;
    return true;
}

/* Copies a vector into the arena: the span's own array. */
static void *vec_to_arena(dec_t *d, const vec_t *v)
{
    if (!v->n) return NULL;
    void *p = d->alloc->fn(d->alloc->ctx, v->n * v->esize);
    if (p) memcpy(p, v->v, v->n * v->esize);
    return p;
}

static field_t lookup(const names_t *names, const unsigned char *key, size_t len)
{
    for (const names_t *n = names; n->name; n++)
        if (strlen(n->name) == len && strncasecmp(n->name, (const char *)key, len) == 0)
            return n->field;
    return F_NONE;
}

static ctx_t top(const dec_t *d)
{
    return d->depth ? d->stack[d->depth - 1] : CTX_TOP;
}

static bool push(dec_t *d, ctx_t c)
{
    if (d->depth >= ZK_JSON_MAX_DEPTH) return false;
    d->stack[d->depth++] = c;
    return true;
}

static const char *field_name(field_t f)
{
    static const names_t *const all[] = {span_v2_keys, span_v1_keys, endpoint_keys, ann_keys,
                                         bin_keys};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        for (const names_t *n = all[i]; n->name; n++)
            if (n->field == f) return n->name;
    return "value";
}

/* ---- ids ------------------------------------------------------------------------- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Writes the hex digits s[0..len) right-aligned into out[0..size) (zero-padded).
 * Returns false on a non-hex digit or too many digits. */
static bool hex_right(const unsigned char *s, size_t len, uint8_t *out, size_t size)
{
    if (len == 0 || len > size * 2) return false;
    memset(out, 0, size);
    size_t pos = size * 2 - len; /* nibble index of the first digit */
    for (size_t i = 0; i < len; i++, pos++) {
        int v = hexval(s[i]);
        if (v < 0) return false;
        out[pos / 2] |= (uint8_t)(pos % 2 ? v : v << 4);
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static int read_id(dec_t *d, field_t f, const unsigned char *s, size_t len)
{
    zk_span_t *sp = &d->span;
    if (f == F_TRACE_ID) {
        bool ok = d->format == ZK_V1
                      ? (len == 16 || len == 32) && hex_right(s, len, sp->trace_id, 16)
                      : hex_right(s, len, sp->trace_id, 16);
        if (!ok)
            return fail(d, "traceId \"%.*s\" is not %s hex digits", (int)(len < 40 ? len : 40),
                        (const char *)s, d->format == ZK_V1 ? "16 or 32" : "1 to 32");
        if (all_zero(sp->trace_id, 16)) return fail(d, "traceId is zero");
        d->seen_trace = true;
        return 1;
    }
    if (f == F_PARENT_ID && len == 0) return 1; /* "" is no parent */
    uint8_t *dst = f == F_ID ? sp->id : sp->parent_id;
    bool ok =
        d->format == ZK_V1 ? len == 16 && hex_right(s, len, dst, 8) : hex_right(s, len, dst, 8);
    const char *key = f == F_ID ? "id" : "parentId";
    if (!ok)
        return fail(d, "%s \"%.*s\" is not %s hex digits", key, (int)(len < 40 ? len : 40),
                    (const char *)s, d->format == ZK_V1 ? "16" : "1 to 16");
    if (all_zero(dst, 8) && (f == F_ID || d->format == ZK_V1)) return fail(d, "%s is zero", key);
    if (f == F_ID)
        d->seen_id = true;
    else
        sp->has_parent = !all_zero(dst, 8);
    return 1;
}

/* v2 endpoint addresses in the canonical text form (as Go's net.IP prints them). */
static int read_ip(dec_t *d, field_t f, const unsigned char *s, size_t len)
{
    zk_str_t *dst = f == F_IPV4 ? &d->ep->ipv4 : &d->ep->ipv6;
    if (d->format == ZK_V1 || len == 0) {
        const char *c = len ? zk_strdup(d->alloc, (const char *)s, len) : NULL;
        if (len && !c) return no_memory(d);
        *dst = (zk_str_t){c, c ? len : 0};
        return 1;
    }
    char in[INET6_ADDRSTRLEN + 1], text[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    if (len >= sizeof(in)) return fail(d, "%s: invalid IP address", field_name(f));
    memcpy(in, s, len);
    in[len] = '\0';
    if (inet_pton(AF_INET, in, bin) == 1)
        inet_ntop(AF_INET, bin, text, sizeof(text));
    else if (inet_pton(AF_INET6, in, bin) == 1)
        inet_ntop(AF_INET6, bin, text, sizeof(text));
    else
        return fail(d, "%s: invalid IP address \"%s\"", field_name(f), in);
    size_t n = strlen(text);
    const char *c = zk_strdup(d->alloc, text, n);
    if (!c) return no_memory(d);
    *dst = (zk_str_t){c, n};
    return 1;
}

/* ---- yajl callbacks ---------------------------------------------------------------- */

/*
 * Values that are ignored: on_map_key sets skip to -1 after an unknown key,
 * meaning "the next value is ignored". A scalar then sets it back to 0; a map or
 * array makes it 1, and the nesting counts it down to 0 at its end. Returns true
 * when the value (or the start of one) is ignored.
 */
static bool ignored(dec_t *d, bool open)
{
    if (d->skip < 0) {
        d->skip = open ? 1 : 0;
        d->field = F_NONE;
        return true;
    }
    if (d->skip > 0) {
        if (open) d->skip++;
        return true;
    }
    return false;
}

/* An ignored value counts against the same nesting bound as the others (yajl's
 * own stack would otherwise grow with it). */
static bool skip_too_deep(const dec_t *d)
{
    return d->depth + d->skip > ZK_JSON_MAX_DEPTH;
}

/* The current field's value is being set: returns the field, consuming it. */
static field_t take(dec_t *d)
{
    field_t f = d->field;
    d->field = F_NONE;
    return f;
}

static int type_error(dec_t *d, field_t f, const char *want)
{
    return fail(d, "\"%s\" must be %s", f == F_TAG ? d->tag_key.s : field_name(f), want);
}

static int on_null(void *ctx)
{
    dec_t *d = ctx;
    if (ignored(d, false)) return 1;
    ctx_t c = top(d);
    if (c == CTX_TOP) {
        d->stack[d->depth++] = CTX_DONE; /* null: no spans */
        return 1;
    }
    if (c == CTX_SPANS) return 1; /* a null span: skipped */
    if (c == CTX_ANN_LIST) {
        zk_annotation_t a = {.null = true};
        if (!vec_push(&d->anns, &a)) return fail(d, "too many annotations");
        return 1;
    }
    if (c == CTX_BIN_LIST) return 1;
    if (c == CTX_TAGS) {
        take(d);
        zk_tag_t t = {.key = d->tag_key, .value = {"", 0}};
        if (!vec_push(&d->tags, &t)) return fail(d, "too many tags");
        return 1;
    }
    take(d); /* null: the field stays absent */
    return 1;
}

static int on_bool(void *ctx, int b)
{
    dec_t *d = ctx;
    if (ignored(d, false)) return 1;
    ctx_t c = top(d);
    field_t f = take(d);
    if (c == CTX_SPAN && (f == F_DEBUG || (f == F_SHARED && d->format == ZK_V2))) {
        if (f == F_DEBUG)
            d->span.debug = b;
        else
            d->span.shared = b;
        return 1;
    }
    if (c == CTX_BIN && f == F_VALUE && d->format == ZK_V1) {
        d->bin.value = b ? (zk_str_t){"true", 4} : (zk_str_t){"false", 5};
        return 1;
    }
    if (c == CTX_TOP || c == CTX_SPANS) return fail(d, "expected an array of span objects");
    if (f == F_NONE && c != CTX_TAGS) return fail(d, "unexpected boolean");
    return type_error(
        d, f, f == F_PORT || f == F_TIMESTAMP || f == F_DURATION ? "an integer" : "a string");
}

/* Reads an integer JSON number (Go's encoding/json refuses fractions and exponents
 * for an integer field). */
static bool parse_int(const char *s, size_t len, int64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf)) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strpbrk(buf, ".eE")) return false;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno == ERANGE) return false;
    *out = v;
    return true;
}

static int on_number(void *ctx, const char *s, size_t len)
{
    dec_t *d = ctx;
    if (ignored(d, false)) return 1;
    ctx_t c = top(d);
    field_t f = take(d);
    if (c == CTX_TOP || c == CTX_SPANS) return fail(d, "expected an array of span objects");
    if (c == CTX_BIN && f == F_VALUE && d->format == ZK_V1) {
        const char *v = zk_strdup(d->alloc, s, len);
        if (!v) return no_memory(d);
        d->bin.value = (zk_str_t){v, len};
        return 1;
    }
    bool integer = f == F_TIMESTAMP || f == F_DURATION || f == F_PORT;
    if (!integer || (c != CTX_SPAN && c != CTX_ANN && c != CTX_ENDPOINT))
        return f == F_NONE && c != CTX_TAGS ? fail(d, "unexpected number")
                                            : type_error(d, f, "a string");
    int64_t v;
    if (!parse_int(s, len, &v)) return type_error(d, f, "an integer (64-bit)");
    if (c == CTX_ENDPOINT) {
        if (d->format == ZK_V2 ? (v < 0 || v > 65535) : (v < INT32_MIN || v > INT32_MAX))
            return fail(d, "\"port\" %lld is out of range", (long long)v);
        d->ep->port = (int32_t)v;
    } else if (c == CTX_ANN) {
        if (f != F_TIMESTAMP) return type_error(d, f, "a string");
        d->ann.timestamp_us = v;
    } else if (f == F_TIMESTAMP) {
        d->span.timestamp_us = v;
    } else {
        d->span.duration_us = v;
    }
    return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    dec_t *d = ctx;
    if (ignored(d, false)) return 1;
    ctx_t c = top(d);
    field_t f = take(d);
    if (c == CTX_TOP || c == CTX_SPANS) return fail(d, "expected an array of span objects");
    if (c == CTX_ANN_LIST || c == CTX_BIN_LIST)
        return fail(d, "expected an array of objects, got a string");
    if (f == F_TRACE_ID || f == F_ID || f == F_PARENT_ID) return read_id(d, f, s, len);
    if (f == F_IPV4 || f == F_IPV6) return read_ip(d, f, s, len);
    if (f == F_KIND) {
        static const char *const kinds[] = {"CLIENT", "SERVER", "PRODUCER", "CONSUMER"};
        d->span.kind = ZK_KIND_NONE; /* another value is undetermined, as in zipkin-go */
        for (int i = 0; i < 4; i++)
            if (strlen(kinds[i]) == len && memcmp(kinds[i], s, len) == 0) d->span.kind = i + 1;
        return 1;
    }
    if (f == F_TIMESTAMP || f == F_DURATION || f == F_PORT) return type_error(d, f, "an integer");
    if (f == F_DEBUG || f == F_SHARED) return type_error(d, f, "a boolean");
    zk_str_t *dst = NULL;
    switch (c) {
    case CTX_SPAN:
        dst = f == F_NAME ? &d->span.name : NULL;
        break;
    case CTX_ENDPOINT:
        dst = f == F_SERVICE_NAME ? &d->ep->service_name : NULL;
        break;
    case CTX_ANN:
        dst = f == F_VALUE ? &d->ann.value : NULL;
        break;
    case CTX_BIN:
        dst = f == F_KEY ? &d->bin.key : f == F_VALUE ? &d->bin.value : NULL;
        break;
    case CTX_TAGS:
        break;
    default:
        return fail(d, "unexpected string");
    }
    if (c != CTX_TAGS && !dst) return type_error(d, f, "an object");
    const char *v = zk_strdup(d->alloc, (const char *)s, len);
    if (!v) return no_memory(d);
    if (c == CTX_TAGS) {
        zk_tag_t t = {.key = d->tag_key, .value = {v, len}};
        if (!vec_push(&d->tags, &t)) return fail(d, "too many tags");
        return 1;
    }
    *dst = (zk_str_t){v, len};
    return 1;
}

static void span_reset(dec_t *d)
{
    memset(&d->span, 0, sizeof(d->span));
    d->anns.n = d->tags.n = 0;
    d->seen_trace = d->seen_id = false;
}

static int on_start_map(void *ctx)
{
    dec_t *d = ctx;
    if (ignored(d, true)) return skip_too_deep(d) ? fail(d, "nested too deeply") : 1;
    ctx_t c = top(d);
    field_t f = take(d);
    ctx_t next;
    switch (c) {
    case CTX_SPANS:
        span_reset(d);
        next = CTX_SPAN;
        break;
    case CTX_SPAN:
        if (f == F_LOCAL || f == F_REMOTE) {
            d->ep = f == F_LOCAL ? &d->span.local : &d->span.remote;
            memset(d->ep, 0, sizeof(*d->ep));
            d->ep->present = true;
            next = CTX_ENDPOINT;
        } else if (f == F_TAGS) {
            next = CTX_TAGS;
        } else {
            return type_error(d, f,
                              f == F_ANNOTATIONS || f == F_BINARY   ? "an array"
                              : f == F_TIMESTAMP || f == F_DURATION ? "an integer"
                              : f == F_DEBUG || f == F_SHARED       ? "a boolean"
                                                                    : "a string");
        }
        break;
    case CTX_ANN_LIST:
        memset(&d->ann, 0, sizeof(d->ann));
        next = CTX_ANN;
        break;
    case CTX_BIN_LIST:
        memset(&d->bin, 0, sizeof(d->bin));
        next = CTX_BIN;
        break;
    case CTX_ANN:
    case CTX_BIN:
        if (f != F_ENDPOINT) return type_error(d, f, "a string");
        /* Of a binary annotation's endpoint only the service name is kept. */
        d->ep = c == CTX_ANN ? &d->ann.endpoint : &d->bin_ep;
        memset(d->ep, 0, sizeof(*d->ep));
        d->ep->present = true;
        next = CTX_ENDPOINT;
        break;
    case CTX_TOP:
    case CTX_DONE:
        return fail(d, "expected an array of spans, got an object");
    default:
        return type_error(d, f, f == F_TAG ? "a string" : "a string or number");
    }
    if (!push(d, next)) return fail(d, "nested too deeply");
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    dec_t *d = ctx;
    if (ignored(d, false)) return 1;
    const names_t *names;
    switch (top(d)) {
    case CTX_SPAN:
        names = d->format == ZK_V2 ? span_v2_keys : span_v1_keys;
        break;
    case CTX_ENDPOINT:
        names = endpoint_keys;
        break;
    case CTX_ANN:
        names = ann_keys;
        break;
    case CTX_BIN:
        names = bin_keys;
        break;
    case CTX_TAGS: {
        const char *k = zk_strdup(d->alloc, (const char *)key, len);
        if (!k) return no_memory(d);
        d->tag_key = (zk_str_t){k, len};
        d->field = F_TAG;
        return 1;
    }
    default:
        return fail(d, "unexpected key");
    }
    d->field = lookup(names, key, len);
    if (d->field == F_ENDPOINT && d->format == ZK_V2) d->field = F_NONE;
    if (d->field == F_NONE) d->skip = -1; /* the next value is ignored (see ignored()) */
    return 1;
}

static int span_end(dec_t *d)
{
    if (!d->seen_trace) return fail(d, "traceId is required");
    if (!d->seen_id) return fail(d, "id is required");
    zk_span_t *sp = &d->span;
    sp->n_annotations = d->anns.n;
    sp->n_tags = d->tags.n;
    sp->annotations = vec_to_arena(d, &d->anns);
    sp->tags = vec_to_arena(d, &d->tags);
    if ((d->anns.n && !sp->annotations) || (d->tags.n && !sp->tags)) return no_memory(d);
    zk_spans_t *o = d->out;
    if (o->n == o->cap) {
        if (o->cap >= ZK_MAX_SPANS) return fail(d, "more than %u spans", ZK_MAX_SPANS);
        size_t ncap = o->cap ? o->cap * 2 : 16;
        zk_span_t *v = realloc(o->v, ncap * sizeof(*v));
        if (!v) return no_memory(d);
        o->v = v;
        o->cap = ncap;
    }
    o->v[o->n++] = *sp;
    return 1;
}

static int on_end_map(void *ctx)
{
    dec_t *d = ctx;
    if (d->skip > 0) {
        d->skip--;
        return 1;
    }
    ctx_t c = top(d);
    d->depth--;
    switch (c) {
    case CTX_SPAN:
        return span_end(d);
    case CTX_ANN:
        if (!vec_push(&d->anns, &d->ann)) return fail(d, "too many annotations");
        return 1;
    case CTX_BIN:
        if (!vec_push(&d->tags, &d->bin)) return fail(d, "too many binaryAnnotations");
        return 1;
    case CTX_ENDPOINT:
        if (top(d) == CTX_BIN) d->bin.endpoint_service = d->bin_ep.service_name;
        return 1;
    default:
        return 1;
    }
}

static int on_start_array(void *ctx)
{
    dec_t *d = ctx;
    if (ignored(d, true)) return skip_too_deep(d) ? fail(d, "nested too deeply") : 1;
    ctx_t c = top(d);
    field_t f = take(d);
    ctx_t next;
    if (c == CTX_TOP)
        next = CTX_SPANS;
    else if (c == CTX_SPAN && f == F_ANNOTATIONS)
        next = CTX_ANN_LIST;
    else if (c == CTX_SPAN && f == F_BINARY)
        next = CTX_BIN_LIST;
    else if (c == CTX_DONE)
        return fail(d, "data after the array of spans");
    else if (c == CTX_SPANS || c == CTX_ANN_LIST || c == CTX_BIN_LIST)
        return fail(d, "expected an object, got an array");
    else
        return type_error(d, f,
                          f == F_LOCAL || f == F_REMOTE || f == F_TAGS || f == F_ENDPOINT
                              ? "an object"
                              : "a scalar");
    if (!push(d, next)) return fail(d, "nested too deeply");
    return 1;
}

static int on_end_array(void *ctx)
{
    dec_t *d = ctx;
    if (d->skip > 0) {
        d->skip--;
        return 1;
    }
    ctx_t c = top(d);
    d->depth--;
    if (c == CTX_SPANS) push(d, CTX_DONE);
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

void zk_spans_free(zk_spans_t *spans)
{
    free(spans->v);
    memset(spans, 0, sizeof(*spans));
}

int zk_json_decode(zk_format_t format, const uint8_t *json, size_t len, const zk_alloc_t *alloc,
                   zk_spans_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    dec_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    d->format = format;
    d->alloc = alloc;
    d->out = out;
    d->err = err;
    d->err_len = err_len;
    d->anns.esize = sizeof(zk_annotation_t);
    d->tags.esize = sizeof(zk_tag_t);
    d->yajl = yajl_alloc(&callbacks, NULL, d);
    int rc = SY_OK;
    if (!d->yajl) {
        snprintf(err, err_len, "out of memory");
        rc = SY_ENOMEM;
        goto done;
    }
    yajl_status st = yajl_parse(d->yajl, json, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(d->yajl);
    if (st != yajl_status_ok || d->failed) {
        if (!d->failed) {
            unsigned char *msg = yajl_get_error(d->yajl, 0, json, len);
            snprintf(err, err_len, "zipkin%s: malformed JSON: %s (at offset %zu)",
                     format == ZK_V1 ? "V1" : "V2", msg ? (const char *)msg : "parse error",
                     yajl_get_bytes_consumed(d->yajl));
            if (msg) yajl_free_error(d->yajl, msg);
        }
        rc = d->oom ? SY_ENOMEM : SY_EINVAL;
    } else if (top(d) != CTX_DONE) {
        snprintf(err, err_len, "zipkin%s: expected a JSON array of spans",
                 format == ZK_V1 ? "V1" : "V2");
        rc = SY_EINVAL;
    }
done:
    if (d->yajl) yajl_free(d->yajl);
    free(d->anns.v);
    free(d->tags.v);
    free(d);
    if (rc != SY_OK) zk_spans_free(out);
    return rc;
}
