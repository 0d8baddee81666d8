/*
 * fuzz_otlp_body.c - libFuzzer target for what the otlp receiver does with a
 * request body: the OTLP/JSON decoder for each signal's request, then the same
 * after gzip, deflate and zstd decompression of the input. Every message decoded
 * is encoded again, and that encoding must decode: a failure is a bug (abort).
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.otlp_body.corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "otlp_json.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Decompressed bodies are bounded like a receiver bounds them. */
#define FUZZ_MAX_OUT (4u << 20)

/* An arena for one input: every block is kept and freed at the end. */
typedef struct arena_s {
    void **blocks;
    size_t n, cap;
    size_t bytes;
} arena_t;

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    if (size > ((size_t)256 << 20) - a->bytes) return NULL; /* like a batch's bound */
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        void **p = realloc(a->blocks, cap * sizeof(*p));
        if (!p) return NULL;
        a->blocks = p;
        a->cap = cap;
    }
    void *m = malloc(size ? size : 1);
    if (!m) return NULL;
    a->blocks[a->n++] = m;
    a->bytes += size;
    return m;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

static void arena_reset(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof(*a));
}

static void decode_all(const uint8_t *data, size_t size, arena_t *arena)
{
    static const ProtobufCMessageDescriptor *const descs[] = {
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
    };
    ProtobufCAllocator alloc = {arena_alloc, arena_free, arena};
    char err[256];
    for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
        ProtobufCMessage *m = syc_otlp_json_decode(descs[i], data, size, &alloc, err, sizeof(err));
        if (!m) {
            if (!err[0]) abort(); /* every refusal says why */
            continue;
        }
        size_t len;
        char *json = syc_otlp_json_encode(m, &len);
        if (!json) continue; /* deeper than the encoder goes, or out of memory */
        ProtobufCMessage *again =
            syc_otlp_json_decode(descs[i], (const uint8_t *)json, len, &alloc, err, sizeof(err));
        if (!again) {
            fprintf(stderr, "re-decoding our own encoding failed: %s\n%.*s\n", err, (int)len, json);
            abort();
        }
        /* Packing walks every field the decoder set. */
        size_t packed = protobuf_c_message_get_packed_size(again);
        uint8_t *buf = malloc(packed ? packed : 1);
        if (buf) protobuf_c_message_pack(again, buf);
        free(buf);
        free(json);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t arena = {0};
    decode_all(data, size, &arena);
    static const syc_encoding_t encs[] = {SYC_ENCODING_GZIP, SYC_ENCODING_DEFLATE,
                                          SYC_ENCODING_ZSTD};
    for (size_t i = 0; i < sizeof(encs) / sizeof(encs[0]); i++) {
        uint8_t *out;
        size_t out_len;
        char err[256];
        if (syc_decompress(encs[i], data, size, FUZZ_MAX_OUT, arena_alloc, &arena, &out, &out_len,
                           err, sizeof(err)) == 0) {
            if (out_len > FUZZ_MAX_OUT) abort();
            decode_all(out, out_len, &arena);
        }
    }
    arena_reset(&arena);
    return 0;
}
