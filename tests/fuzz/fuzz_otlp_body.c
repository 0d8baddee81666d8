/*
 * fuzz_otlp_body.c - libFuzzer target for what the otlp receiver does with a
 * request body: the OTLP/JSON decoder (JSON -> encoded protobuf) for each
 * signal's request, then the same after gzip, deflate, zstd and snappy
 * decompression of the input; and every codec's compression of the input
 * decompresses back to it. What it decodes goes through the wire encoder and
 * back, compared with protobuf-c and with the struct encoder it replaced (see decode_all): a
 * failure is a bug (abort).
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.otlp_body.corpus).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/otlp_json_ref.h"
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

static void check(int cond, const char *what, const char *json, size_t len)
{
    if (!cond) {
        fprintf(stderr, "fuzz_otlp_body: property violated: %s\n%.*s\n", what,
                (int)(len > 2000 ? 2000 : len), json ? json : "");
        abort();
    }
}

/* Whether the JSON holds a NUL in some string (the struct form cuts there). */
static bool has_nul(const char *json, size_t len)
{
    return memmem(json, len, "\\u0000", 6) != NULL;
}

/*
 * JSON -> wire -> JSON -> wire for each signal's request. Properties:
 *  - a refusal says why; accepted JSON gives bytes that protobuf-c unpacks;
 *  - the JSON written from those bytes equals the struct encoder's output for
 *    protobuf-c's decode of them (when no string holds a NUL and no message
 *    field was merged: see otlp_json_encode.c);
 *  - that JSON decodes again to bytes that encode to the same JSON, and those
 *    bytes are exactly what protobuf-c packs for its own decode of them.
 */
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
        size_t wlen;
        uint8_t *wire =
            syc_otlp_json_to_wire(descs[i], data, size, &alloc, &wlen, err, sizeof(err));
        if (!wire) {
            if (!err[0]) abort(); /* every refusal says why */
            continue;
        }
        ProtobufCMessage *m = protobuf_c_message_unpack(descs[i], &alloc, wlen, wire);
        check(m != NULL, "the decoder's bytes unpack", (const char *)data, size);
        size_t jlen, rlen;
        unsigned merges;
        char *json = syc_otlp_json_from_wire(descs[i], wire, wlen, &jlen, &merges);
        check(json != NULL, "the decoder's bytes encode", (const char *)data, size);
        if (merges == 0 && !has_nul(json, jlen)) {
            char *ref = ref_otlp_json_encode(m, &rlen);
            check(ref && rlen == jlen && memcmp(ref, json, jlen) == 0,
                  "wire encoder equals struct encoder", json, jlen);
            free(ref);
        }
        size_t w2len;
        uint8_t *w2 = syc_otlp_json_to_wire(descs[i], (const uint8_t *)json, jlen, &alloc, &w2len,
                                            err, sizeof(err));
        if (!w2) fprintf(stderr, "re-decoding our own encoding failed: %s\n", err);
        check(w2 != NULL, "our own encoding decodes", json, jlen);
        size_t j2len;
        char *j2 = syc_otlp_json_from_wire(descs[i], w2, w2len, &j2len, NULL);
        check(j2 && j2len == jlen && memcmp(j2, json, jlen) == 0, "JSON -> wire -> JSON is stable",
              json, jlen);
        if (!has_nul(json, jlen)) {
            ProtobufCMessage *again = protobuf_c_message_unpack(descs[i], &alloc, w2len, w2);
            check(again != NULL, "our bytes unpack", json, jlen);
            size_t packed = protobuf_c_message_get_packed_size(again);
            uint8_t *buf = malloc(packed ? packed : 1);
            if (buf) {
                protobuf_c_message_pack(again, buf);
                check(packed == w2len && memcmp(buf, w2, w2len) == 0,
                      "the decoder writes what protobuf-c packs", json, jlen);
            }
            free(buf);
        }
        free(j2);
        free(json);
    }
}

/* Compressing the input with each codec at a level picked from its first byte and
 * decompressing it again gives the input back, within a bound of exactly its size. */
static void round_trip(const uint8_t *data, size_t size, arena_t *arena)
{
    static const syc_encoding_t encs[] = {SYC_ENCODING_GZIP, SYC_ENCODING_DEFLATE,
                                          SYC_ENCODING_ZSTD, SYC_ENCODING_SNAPPY};
    if (size > (64u << 10)) return;
    for (size_t i = 0; i < sizeof(encs) / sizeof(encs[0]); i++) {
        int level = 0;
        if (size && encs[i] != SYC_ENCODING_SNAPPY)
            level = encs[i] == SYC_ENCODING_ZSTD ? data[0] % 8 : data[0] % 13;
        uint8_t *c, *out;
        size_t clen, out_len;
        char err[256];
        if (syc_compress(encs[i], level, 0, data, size, &c, &clen) != 0) abort();
        int rc = syc_decompress(encs[i], c, clen, size, arena_alloc, arena, &out, &out_len, err,
                                sizeof(err));
        if (rc != 0 || out_len != size || (size && memcmp(out, data, size) != 0)) {
            fprintf(stderr, "fuzz_otlp_body: %s level %d round trip failed: %s\n",
                    syc_encoding_name(encs[i]), level, err);
            abort();
        }
        free(c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t arena = {0};
    decode_all(data, size, &arena);
    static const syc_encoding_t encs[] = {SYC_ENCODING_GZIP, SYC_ENCODING_DEFLATE,
                                          SYC_ENCODING_ZSTD, SYC_ENCODING_SNAPPY};
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
    round_trip(data, size, &arena);
    arena_reset(&arena);
    return 0;
}
