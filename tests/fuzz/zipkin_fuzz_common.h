/*
 * zipkin_fuzz_common.h - what fuzz_zipkin_json.c and fuzz_zipkin_proto.c share: an
 * arena of malloc() blocks freed at the end of each input (a batch arena's
 * behaviour, so that ASan sees every overrun), and the check of a translated
 * request: it packs, unpacks again with protobuf-c, and holds as many spans as
 * were decoded.
 */
#ifndef SY_ZIPKIN_FUZZ_COMMON_H
#define SY_ZIPKIN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "zipkin_model.h"

#define FUZZ_MAX_BYTES (64u << 20)

typedef struct fz_block_s {
    struct fz_block_s *next;
    max_align_t data[];
} fz_block_t;

typedef struct fz_arena_s {
    fz_block_t *head;
    size_t bytes;
} fz_arena_t;

static void *fz_alloc(void *ctx, size_t size)
{
    fz_arena_t *a = ctx;
    if (size > FUZZ_MAX_BYTES - a->bytes) return NULL;
    fz_block_t *b = malloc(sizeof(*b) + (size ? size : 1));
    if (!b) return NULL;
    b->next = a->head;
    a->head = b;
    a->bytes += size;
    return b->data;
}

static void fz_arena_free(fz_arena_t *a)
{
    while (a->head) {
        fz_block_t *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

/* Translates and checks; aborts on a broken invariant. */
static void fz_translate_check(zk_format_t format, zk_spans_t *spans, bool parse_tags,
                               const zk_alloc_t *alloc)
{
    char err[512];
    size_t n = spans->n;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        zk_to_otlp(format, spans, parse_tags, 1700000000000000000ull, alloc, err, sizeof(err));
    if (!req) {
        if (!err[0]) abort(); /* a failure always says why */
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    if (protobuf_c_message_pack(&req->base, buf) != len) abort();
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *back =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         buf);
    if (!back) abort();
    size_t count = 0;
    for (size_t r = 0; r < back->n_resource_spans; r++)
        for (size_t s = 0; s < back->resource_spans[r]->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                back->resource_spans[r]->scope_spans[s];
            count += ss->n_spans;
            for (size_t i = 0; i < ss->n_spans; i++)
                if (ss->spans[i]->trace_id.len != 16 || ss->spans[i]->span_id.len != 8) abort();
        }
    if (count != n) abort();
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(back,
                                                                                            NULL);
    free(buf);
}

#endif
