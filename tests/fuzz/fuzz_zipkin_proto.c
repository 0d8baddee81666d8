/*
 * fuzz_zipkin_proto.c - libFuzzer target for the zipkin receiver's protobuf
 * decoding (a zipkin.proto3.ListOfSpans, plugins/receivers/zipkin/zipkin_proto.c)
 * and its translation into OTLP (zipkin_otlp.c).
 *
 * The first byte's bit 0 turns parse_string_tags on; the rest is the body.
 * Checked as fuzz_zipkin_json.c checks.
 */
#include "zipkin_fuzz_common.h"

#include <switchyard/plugin.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool parse_tags = data[0] & 1;
    fz_arena_t arena = {0};
    zk_alloc_t alloc = {fz_alloc, &arena};
    zk_spans_t spans;
    char err[512] = "";
    int rc = zk_proto_decode(data + 1, size - 1, &alloc, &spans, err, sizeof(err));
    if (rc == SY_OK)
        fz_translate_check(ZK_V2, &spans, parse_tags, &alloc);
    else if (!err[0] || spans.v || spans.n)
        abort();
    zk_spans_free(&spans);
    fz_arena_free(&arena);
    return 0;
}
