/*
 * zipkin_model.h - the Zipkin spans the zipkin receiver decodes (v2 JSON, v2
 * protobuf, v1 JSON) before it translates them into OTLP (zipkin_otlp.c).
 *
 * Memory: every string and array of a decoded span comes from the caller's
 * allocator (a batch arena: never freed piecewise), so that the OTLP structs made
 * from them can point at them. Strings are NUL-terminated and valid UTF-8. The
 * array of spans itself is malloc()ed and freed with zk_spans_free().
 */
#ifndef SY_ZIPKIN_MODEL_H
#define SY_ZIPKIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Memory that lives as long as the decoded spans (a batch arena). NULL when out
 * of memory or over the caller's bound. */
typedef void *(*zk_alloc_fn)(void *ctx, size_t size);

typedef struct zk_alloc_s {
    zk_alloc_fn fn;
    void *ctx;
} zk_alloc_t;

/* A string: NUL-terminated, `len` bytes before the NUL. */
typedef struct zk_str_s {
    const char *s;
    size_t len;
} zk_str_t;

typedef struct zk_endpoint_s {
    bool present;
    zk_str_t service_name;
    zk_str_t ipv4; /* as written in v1; canonical text (inet_ntop) in v2 */
    zk_str_t ipv6;
    int32_t port;
} zk_endpoint_t;

typedef struct zk_annotation_s {
    int64_t timestamp_us;
    zk_str_t value;
    zk_endpoint_t endpoint; /* v1 only */
    bool null;              /* v1: a null entry of the array (skipped) */
} zk_annotation_t;

/* A v2 tag, or a v1 binary annotation (with the service name of its endpoint). */
typedef struct zk_tag_s {
    zk_str_t key;
    zk_str_t value;
    zk_str_t endpoint_service; /* v1 only */
} zk_tag_t;

enum { ZK_KIND_NONE = 0, ZK_KIND_CLIENT, ZK_KIND_SERVER, ZK_KIND_PRODUCER, ZK_KIND_CONSUMER };

typedef struct zk_span_s {
    uint8_t trace_id[16]; /* a 64-bit trace id is in the low 8 bytes */
    uint8_t id[8];
    uint8_t parent_id[8];
    bool has_parent;
    zk_str_t name;
    int kind;             /* ZK_KIND_* (v2) */
    int64_t timestamp_us; /* 0: absent */
    int64_t duration_us;
    bool debug, shared;
    zk_endpoint_t local, remote; /* v2 */
    zk_annotation_t *annotations;
    size_t n_annotations;
    zk_tag_t *tags; /* v2 tags (a key given twice: the later wins), v1 binaryAnnotations */
    size_t n_tags;
} zk_span_t;

typedef struct zk_spans_s {
    zk_span_t *v; /* malloc() */
    size_t n, cap;
} zk_spans_t;

/* Most spans one request may hold, and most tags or annotations one span may hold. */
#define ZK_MAX_SPANS 1000000u
#define ZK_MAX_LIST  100000u

typedef enum zk_format_e { ZK_V2 = 2, ZK_V1 = 1 } zk_format_t;

/* Decodes a JSON array of spans of `format`. Returns 0, or SY_EINVAL with a
 * sentence in err (malformed JSON, a value of the wrong type, a bad id), or
 * SY_ENOMEM. On error *out holds nothing (freed). Any thread; no global state. */
int zk_json_decode(zk_format_t format, const uint8_t *json, size_t len, const zk_alloc_t *alloc,
                   zk_spans_t *out, char *err, size_t err_len);

/* Decodes a zipkin.proto3.ListOfSpans. Same contract. */
int zk_proto_decode(const uint8_t *data, size_t len, const zk_alloc_t *alloc, zk_spans_t *out,
                    char *err, size_t err_len);

void zk_spans_free(zk_spans_t *spans);

/* Copies s[0..len) into the allocator with a NUL. NULL when out of memory. */
const char *zk_strdup(const zk_alloc_t *alloc, const char *s, size_t len);

/*
 * Translates decoded spans into an ExportTraceServiceRequest (protobuf-c structs,
 * returned as void * so that this header needs no protobuf-c) whose memory all
 * comes from `alloc`, as the collector's zipkinv2 / zipkinv1 translators do (see
 * the README's tables). `now_ns` is the time given to v1 spans without any
 * timestamp. Returns NULL with a sentence in err (a malformed v1 id; out of
 * memory).
 */
void *zk_to_otlp(zk_format_t format, zk_spans_t *spans, bool parse_string_tags, uint64_t now_ns,
                 const zk_alloc_t *alloc, char *err, size_t err_len);

#endif
