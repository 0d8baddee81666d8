/*
 * Fuzz target: the jaeger receiver's gRPC path (plugins/receivers/jaeger/
 * jaeger_proto.c): a jaeger.api_v2.PostSpansRequest unpacked by protobuf-c,
 * converted (ids, timestamps, durations, regrouping by process, scopes) and
 * translated to OTLP. Properties:
 *  - no crash, hang, leak or read past the input (ASan/UBSan);
 *  - a refusal says why;
 *  - an accepted request translates to OTLP that packs to bytes the core's wire
 *    walk accepts with as many spans as reported, and that protobuf-c unpacks
 *    (fuzz_jaeger_check_request in fuzz_thrift.h).
 */
#include <string.h>

#include <switchyard/plugin.h>

#define FUZZ_JAEGER_REQUEST_ONLY
#include "fuzz_thrift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sy__arena_t arena;
    /* protobuf-c allocates a struct per submessage (a few hundred bytes for two
     * input bytes), the conversion and translation a few more per span. */
    sy__arena_init(&arena, ((size_t)1 << 24) + size * 2048);
    void *req = NULL;
    size_t spans = 0;
    char err[300] = "";
    int rc = jaeger_proto_translate(data, size, &arena.pb, &req, &spans, err, sizeof(err));
    if (rc == SY_OK) {
        fuzz_thrift_check(req != NULL, "an accepted request has a translation");
        fuzz_jaeger_check_request(req, spans);
    } else {
        fuzz_thrift_check(rc == SY_EINVAL || rc == SY_ENOMEM, "SY_EINVAL or SY_ENOMEM");
        fuzz_thrift_check(rc != SY_EINVAL || err[0] != '\0', "a refusal says why");
    }
    sy__arena_release(&arena);
    return 0;
}
