/*
 * fuzz_zipkin_json.c - libFuzzer target for the zipkin receiver's JSON decoding
 * (plugins/receivers/zipkin/zipkin_json.c, v2 and v1) and its translation into
 * OTLP (zipkin_otlp.c).
 *
 * The first byte chooses v1 or v2 (bit 0) and parse_string_tags (bit 1); the rest
 * is the body. Checked: no crash, hang or leak; an error always comes with a
 * sentence; a translated request packs and unpacks with protobuf-c and holds
 * exactly the decoded spans, each with a 16-byte trace id and an 8-byte span id.
 */
#include "zipkin_fuzz_common.h"

#include <switchyard/plugin.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    zk_format_t format = data[0] & 1 ? ZK_V1 : ZK_V2;
    bool parse_tags = data[0] & 2;
    fz_arena_t arena = {0};
    zk_alloc_t alloc = {fz_alloc, &arena};
    zk_spans_t spans;
    char err[512] = "";
    int rc = zk_json_decode(format, data + 1, size - 1, &alloc, &spans, err, sizeof(err));
    if (rc == SY_OK)
        fz_translate_check(format, &spans, parse_tags, &alloc);
    else if (!err[0] || spans.v || spans.n)
        abort();
    zk_spans_free(&spans);
    fz_arena_free(&arena);
    return 0;
}
