/*
 * fuzz_thrift.h - the body of the two Jaeger Thrift fuzz targets
 * (fuzz_thrift_compact.c, fuzz_thrift_binary.c), which differ only in the protocol.
 *
 * The first byte picks what the rest is: even, an agent UDP packet (a Thrift
 * message, Agent.emitBatch); odd, a bare Batch (the thrift_http body). Properties:
 *  - no crash, hang, leak or read past the input (ASan/UBSan);
 *  - the decoders allocate at most a bounded multiple of the input (the arena's
 *    limit is 64 bytes of struct per input byte, plus a constant);
 *  - a batch that decodes translates to OTLP, and the request packs to bytes the
 *    core's wire walk accepts (valid structure, every string valid UTF-8) with as
 *    many spans as the translation reported, and that protobuf-c unpacks again.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#ifndef SY_FUZZ_THRIFT_H
#define SY_FUZZ_THRIFT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "arena.h"
#include "batch.h"
#include "jaeger_model.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

static void fuzz_thrift_check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_thrift: property violated: %s\n", what);
        abort();
    }
}

/* A translated request packs to bytes the core's wire walk accepts (valid
 * structure, every string valid UTF-8) with `spans` spans, and that protobuf-c
 * unpacks again. Shared with fuzz_jaeger_proto.c. */
static void fuzz_jaeger_check_request(
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req, size_t spans)
{
    char err[256];
    size_t len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            req);
    uint8_t *wire = malloc(len ? len : 1);
    fuzz_thrift_check(wire != NULL, "malloc");
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, wire);
    uint64_t items = 0;
    int rc = sy__pb_validate(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor, wire,
        len, &items, err, sizeof(err));
    if (rc != 0) fprintf(stderr, "fuzz_thrift: %s\n", err);
    fuzz_thrift_check(rc == 0, "the translated request is valid OTLP (structure, UTF-8)");
    fuzz_thrift_check(items == spans, "the wire walk counts the translated spans");
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *back =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         wire);
    fuzz_thrift_check(back != NULL, "protobuf-c unpacks the packed request");
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(back,
                                                                                            NULL);
    free(wire);
}

#ifndef FUZZ_JAEGER_REQUEST_ONLY /* fuzz_jaeger_proto.c needs only the check above */
static int fuzz_thrift_one(th_proto_t proto, const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int agent = !(data[0] & 1);
    data++;
    size--;
    sy__arena_t arena;
    /* Bound: every element the decoders allocate takes at least one input byte,
     * and lists are refused when their count could not fit in what is left. */
    sy__arena_init(&arena, ((size_t)1 << 20) + size * 128);
    jg_batch_t batch;
    char err[256];
    int ok;
    if (agent)
        ok = jg_decode_agent(proto, data, size, &arena.pb, &batch, err, sizeof(err)) ==
             JG_AGENT_BATCH;
    else
        ok = jg_decode_batch(proto, data, size, &arena.pb, &batch, err, sizeof(err)) == 0;
    if (!ok) {
        fuzz_thrift_check(err[0] != '\0' || agent, "a refusal says why");
        sy__arena_release(&arena);
        return 0;
    }
    size_t spans = 0;
    /* The translation gets its own, generous arena: strings may grow 3x (U+FFFD). */
    sy__arena_t out;
    sy__arena_init(&out, (size_t)1 << 30);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        jg_to_otlp(&batch, &out.pb, &spans);
    fuzz_thrift_check(req != NULL, "a decoded batch translates");
    fuzz_thrift_check(spans <= batch.n_spans, "no more spans than decoded");
    fuzz_jaeger_check_request(req, spans);
    sy__arena_release(&out);
    sy__arena_release(&arena);
    return 0;
}

#endif

#endif
