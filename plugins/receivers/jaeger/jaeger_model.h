/*
 * jaeger_model.h - the Jaeger Thrift structs the receiver reads (proto/jaeger/
 * jaeger.thrift: Batch, Process, Span, Tag, Log, SpanRef), their decoders in either
 * Thrift protocol (jaeger_decode.c) and their translation into an OTLP
 * ExportTraceServiceRequest (jaeger_otlp.c).
 *
 * Memory: decoded structs are allocated through a ProtobufCAllocator (the batch's
 * arena in the receiver, any arena in tests) and strings point into the input
 * bytes, which must outlive the translation. The translation copies every string
 * it keeps into the allocator, so the OTLP request does not point into the input.
 */
#ifndef SY_JAEGER_MODEL_H
#define SY_JAEGER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "thrift.h"

/* TagType and SpanRefType of jaeger.thrift. */
enum { JG_TAG_STRING = 0, JG_TAG_DOUBLE = 1, JG_TAG_BOOL = 2, JG_TAG_LONG = 3, JG_TAG_BINARY = 4 };
enum { JG_REF_CHILD_OF = 0, JG_REF_FOLLOWS_FROM = 1 };

typedef struct jg_str_s {
    const uint8_t *p; /* into the input; NULL with len 0 when absent */
    uint32_t len;
} jg_str_t;

typedef struct jg_tag_s {
    jg_str_t key;
    int32_t vtype;
    jg_str_t vstr;
    double vdouble;
    bool vbool;
    int64_t vlong;
    jg_str_t vbinary;
} jg_tag_t;

/* An optional list<Tag>: `present` tells an empty list from an absent one (the
 * collector treats them differently in two places). */
typedef struct jg_tags_s {
    jg_tag_t *v;
    uint32_t n;
    bool present;
} jg_tags_t;

typedef struct jg_log_s {
    int64_t timestamp; /* microseconds */
    jg_tags_t fields;
} jg_log_t;

typedef struct jg_ref_s {
    int32_t type;
    int64_t trace_id_low, trace_id_high, span_id;
} jg_ref_t;

typedef struct jg_span_s {
    int64_t trace_id_low, trace_id_high, span_id, parent_span_id;
    jg_str_t operation_name;
    jg_ref_t *refs;
    uint32_t n_refs;
    bool refs_present;
    int32_t flags;
    int64_t start_time, duration; /* microseconds */
    jg_tags_t tags;
    jg_log_t *logs;
    uint32_t n_logs;
    bool logs_present;
    /* Set by the api_v2 conversion (jaeger_proto.c), where the collector's proto
     * translator (ProtoToTraces) differs from its Thrift one: start_time, duration
     * and log timestamps are in nanoseconds; the parent is only a CHILD_OF
     * reference of the same trace (parent_span_id unused); "w3c.tracestate"
     * becomes the trace state; the spans are grouped into scopes by scope_name /
     * scope_version (taken out of the tags by the conversion). */
    bool proto;
    jg_str_t scope_name, scope_version;
} jg_span_t;

typedef struct jg_batch_s {
    jg_str_t service_name;
    jg_tags_t process_tags;
    jg_span_t *spans;
    uint32_t n_spans;
    bool proto; /* from api_v2: skipped when it has no process and no span */
    bool process_present;
} jg_batch_t;

/* What a UDP packet held. */
typedef enum jg_agent_result_e {
    JG_AGENT_BATCH = 0,      /* emitBatch: *batch is filled */
    JG_AGENT_ZIPKIN = 1,     /* emitZipkinBatch: not supported, as in the collector */
    JG_AGENT_UNKNOWN = 2,    /* another method name */
    JG_AGENT_MALFORMED = -1, /* the bytes do not decode (err says why) */
} jg_agent_result_t;

/*
 * Decodes a bare Batch struct (the thrift_http body, binary protocol). Returns 0,
 * or -1 with a sentence in err (what failed and at which byte offset) when the
 * bytes do not decode or a required field is missing, or out of memory.
 */
int jg_decode_batch(th_proto_t proto, const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                    jg_batch_t *batch, char *err, size_t err_len);

/*
 * Decodes an agent UDP packet: the Thrift message Agent.emitBatch(1: Batch batch).
 * Returns a jg_agent_result_t; on JG_AGENT_MALFORMED err holds a sentence, on
 * JG_AGENT_UNKNOWN the method's name.
 */
jg_agent_result_t jg_decode_agent(th_proto_t proto, const uint8_t *data, size_t len,
                                  ProtobufCAllocator *alloc, jg_batch_t *batch, char *err,
                                  size_t err_len);

/*
 * Translates a batch into an OTLP ExportTraceServiceRequest
 * (Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *),
 * allocated from `alloc`, as the collector's jaeger translator
 * (ThriftToTraces) does; see README.md for the table. Strings that are not valid
 * UTF-8 get U+FFFD for each bad run. Stores the number of spans in *spans.
 * Returns NULL on out of memory.
 */
void *jg_to_otlp(const jg_batch_t *batch, ProtobufCAllocator *alloc, size_t *spans);

/* The same for n batches, one ResourceSpans each (the api_v2 path, whose batches
 * are regrouped by process first). */
void *jg_to_otlp_many(const jg_batch_t *batches, size_t n, ProtobufCAllocator *alloc,
                      size_t *spans);

/*
 * Decodes a jaeger.api_v2.PostSpansRequest and translates it as the collector's
 * ProtoToTraces does (jaeger_proto.c), everything allocated from `alloc`: *req is
 * an ExportTraceServiceRequest, *spans its span count. Returns SY_OK; SY_EINVAL
 * with a sentence in err (the bytes do not decode, an id of the wrong length, a
 * timestamp or duration out of range); SY_ENOMEM.
 */
int jaeger_proto_translate(const uint8_t *data, size_t len, ProtobufCAllocator *alloc, void **req,
                           size_t *spans, char *err, size_t err_len);

#endif
