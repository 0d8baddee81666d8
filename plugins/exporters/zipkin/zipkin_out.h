/*
 * zipkin_out.h - OTLP spans, read through the view (include/switchyard/plugin.h,
 * docs/view.md), as Zipkin v2 spans (zipkin_out.c), and those spans written as a
 * JSON array or a zipkin.proto3.ListOfSpans (zipkin_write.c).
 *
 * Strings are (pointer, length), not NUL-terminated: they point into the batch's
 * bytes (valid while the caller holds the batch) or into the scratch arena.
 */
#ifndef SY_ZIPKIN_OUT_H
#define SY_ZIPKIN_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

typedef struct zo_str_s {
    const char *s;
    size_t len;
} zo_str_t;

/* Memory for one body: blocks freed together. */
typedef struct zo_arena_s {
    struct zo_block_s *blocks;
    bool failed; /* an allocation failed */
} zo_arena_t;

void *zo_alloc(zo_arena_t *a, size_t size);
void zo_arena_free(zo_arena_t *a);

/* A growable byte buffer (malloc). */
typedef struct zo_buf_s {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} zo_buf_t;

void zo_put(zo_buf_t *b, const void *data, size_t len);
void zo_puts(zo_buf_t *b, const char *s);
/* A JSON string literal of s[0..len), quotes included. */
void zo_json_str(zo_buf_t *b, const char *s, size_t len);

typedef struct zo_endpoint_s {
    bool present;
    zo_str_t service_name;
    zo_str_t ip; /* text */
    bool ipv6;   /* ip is an IPv6 address */
    uint16_t port;
} zo_endpoint_t;

typedef struct zo_annotation_s {
    uint64_t timestamp_us;
    zo_str_t value;
} zo_annotation_t;

typedef struct zo_tag_s {
    zo_str_t key, value;
} zo_tag_t;

enum { ZO_KIND_NONE = 0, ZO_KIND_CLIENT, ZO_KIND_SERVER, ZO_KIND_PRODUCER, ZO_KIND_CONSUMER };

typedef struct zo_span_s {
    uint8_t trace_id[16];
    bool trace_id_128; /* the high 8 bytes are not zero */
    uint8_t id[8];
    uint8_t parent_id[8];
    bool has_parent;
    zo_str_t name;
    int kind;
    uint64_t timestamp_us; /* 0: absent */
    uint64_t duration_us;  /* 0: absent */
    zo_endpoint_t local, remote;
    zo_annotation_t *annotations;
    size_t n_annotations;
    zo_tag_t *tags;
    size_t n_tags;
} zo_span_t;

typedef struct zo_spans_s {
    zo_span_t *v; /* from the arena */
    size_t n;
    uint64_t invalid; /* spans left out: zero or missing trace or span id */
} zo_spans_t;

/*
 * Reads every span of `batch` through the view and translates it as the
 * collector's zipkinv2 FromTranslator does (see the README). Returns 0, or
 * SY_ENOMEM, or SY_EINVAL when the bytes do not read. Memory from `arena`.
 */
int zo_from_batch(const sy_host_api_t *api, sy_batch_t *batch, const char *default_service,
                  zo_arena_t *arena, zo_spans_t *out);

/* Writes the spans as a Zipkin v2 JSON array, or as a ListOfSpans. */
void zo_write_json(const zo_spans_t *spans, zo_buf_t *b);
void zo_write_proto(const zo_spans_t *spans, zo_buf_t *b);

#endif
