/*
 * Fuzz target: OTLP protobuf request bodies, through the batch layer.
 *
 * The first byte picks the signal; the rest is the body. Properties checked:
 *  - the wire walk (sy__pb_validate) accepts exactly what protobuf-c decodes:
 *    a body it accepts must unpack, and the items it counted must equal the items
 *    in the decoded request (the walk also refuses strings that are not UTF-8,
 *    which protobuf-c does not check, so the other direction does not hold);
 *  - the walk's decoded-size estimate bounds what protobuf-c allocates to
 *    unpack the body (each allocation rounded to 16, as the arena does);
 *  - splitting a valid batch into pieces of every size keeps every item once,
 *    and every piece encodes to bytes the walk accepts with the same count;
 *  - merging the pieces back gives the original count;
 *  - the wire walk agrees with the reference walk of pbwalk_ref.h (the code before
 *    it was made fast) on the answer, the items, the decoded-size bound and the
 *    error sentence, with and without the estimate, for the three requests and
 *    for a type reached from them (AnyValue) and one that is not (a response).
 *  - the wire -> OTLP/JSON encoder writes what the struct encoder it replaced
 *    writes for protobuf-c's decode (unless a string holds a NUL, which the
 *    struct cuts, or a message field occurs twice, which the two merge
 *    differently: see otlp_json_encode.c), fails only where that one does
 *    (nesting), and its JSON decodes back to bytes that encode to the same
 *    JSON (wire -> JSON -> wire -> JSON).
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/otlp_json_ref.h"
#include "batch.h"
#include "batch_internal.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "pbwalk_ref.h"
#include "otlp_json.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_otlp_proto: property violated: %s\n", what);
        abort();
    }
}

/* What protobuf-c allocates, rounded as the arena rounds; frees are not
 * subtracted (the arena never frees). */
static size_t alloc_sum;

static void *counting_alloc(void *data, size_t size)
{
    (void)data;
    alloc_sum += (size + 15) & ~(size_t)15;
    return malloc(size);
}

static void counting_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

/* The wire -> JSON -> wire properties (see the top). */
static void check_json(sy_signal_t signal, const uint8_t *body, size_t size, const void *req)
{
    const ProtobufCMessageDescriptor *desc = sy__signal_request_descriptor(signal);
    size_t jlen = 0, rlen = 0;
    unsigned merges;
    char *json = syc_otlp_json_from_wire(desc, body, size, &jlen, &merges);
    char *ref = ref_otlp_json_encode(req, &rlen);
    check((json == NULL) == (ref == NULL), "the wire encoder fails where the struct one does");
    if (json && merges == 0 && !memmem(json, jlen, "\\u0000", 6)) {
        if (rlen != jlen || memcmp(ref, json, jlen) != 0)
            fprintf(stderr, "ref: %s\nnew: %s\n", ref, json);
        check(rlen == jlen && memcmp(ref, json, jlen) == 0, "wire encoder equals struct encoder");
    }
    free(ref);
    if (!json) return;
    char err[256];
    size_t wlen;
    uint8_t *wire =
        syc_otlp_json_to_wire(desc, (const uint8_t *)json, jlen, NULL, &wlen, err, sizeof(err));
    /* JSON nests deeper than the messages (arrays count): a deep request's
     * JSON may be refused. So is an ID of the wrong length, which the wire
     * walk lets through and the encoder writes as hex of that length. */
    check(wire != NULL || strstr(err, "nested deeper") != NULL || strstr(err, "invalid ID: "),
          "our JSON decodes");
    if (wire) {
        size_t j2len;
        char *j2 = syc_otlp_json_from_wire(desc, wire, wlen, &j2len, NULL);
        check(j2 && j2len == jlen && memcmp(j2, json, jlen) == 0,
              "wire -> JSON -> wire -> JSON is stable");
        free(j2);
        free(wire);
    }
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const sy_signal_t signals[3] = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS};
    sy_signal_t signal = signals[data[0] % 3];
    data++;
    size--;

    static const ProtobufCMessageDescriptor *const others[2] = {
        &opentelemetry__proto__common__v1__any_value__descriptor,
        &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor};
    for (int i = 0; i < 5; i++) {
        const ProtobufCMessageDescriptor *d =
            i < 3 ? sy__signal_request_descriptor(signals[i]) : others[i - 3];
        const char *differs = pbwalk_differs(d, data, size);
        if (differs)
            fprintf(stderr, "%s: the walk and its reference differ: %s\n", d->name, differs);
        check(differs == NULL, "the walk agrees with the reference walk");
    }

    sy_batch_t *b = sy__batch_new(signal, "fuzz");
    uint8_t *body = sy__batch_alloc(b, size ? size : 1);
    memcpy(body, data, size);
    char err[256];
    if (sy__batch_set_encoded(b, body, size, err, sizeof(err)) < 0) {
        sy__batch_release(b);
        return 0;
    }
    uint64_t items = sy__batch_items(b);
    const void *req = sy__batch_request(b);
    check(req != NULL, "a body the wire walk accepted must decode");
    check(sy__request_count_items(signal, req) == items, "walked and decoded counts agree");
    ProtobufCAllocator counting = {.alloc = counting_alloc, .free = counting_free};
    alloc_sum = 0;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(sy__signal_request_descriptor(signal), &counting, size, body);
    check(m != NULL, "the body unpacks with malloc too");
    protobuf_c_message_free_unpacked(m, &counting);
    if (alloc_sum > b->dec_est)
        fprintf(stderr, "protobuf-c allocated %zu bytes, estimate %llu\n", alloc_sum,
                (unsigned long long)b->dec_est);
    check(alloc_sum <= b->dec_est, "the decoded-size estimate bounds protobuf-c's allocations");

    check_json(signal, body, size, req);

    /* Split into pieces of `step` items, re-encode each, merge them back. */
    uint64_t step = items > 3 ? items / 3 : 1;
    sy_batch_t *pieces[64];
    size_t npieces = 0;
    uint64_t total = 0;
    sy_batch_t *rest = b;
    sy__batch_retain(b); /* keep the original for the final comparison */
    while (rest && npieces < 64) {
        sy_batch_t *head = sy__batch_split("fuzz", &rest, step);
        check(head != NULL, "split succeeds");
        size_t len;
        const uint8_t *enc = sy__batch_encoded(head, &len);
        check(enc != NULL, "a piece encodes");
        uint64_t n = 0;
        check(sy__pb_validate(sy__signal_request_descriptor(signal), enc, len, &n, err,
                              sizeof(err)) == 0,
              "an encoded piece is valid");
        check(n == sy__batch_items(head), "a piece's count survives encoding");
        total += n;
        pieces[npieces++] = head;
    }
    if (rest) {
        total += sy__batch_items(rest);
        pieces[npieces++] = rest;
    }
    check(total == items, "the pieces hold every item once");
    sy_batch_t *merged = sy__batch_merge("fuzz", pieces, npieces);
    check(merged != NULL, "merge succeeds");
    check(sy__batch_items(merged) == items, "merge keeps the count");
    sy__batch_release(merged);
    for (size_t i = 0; i < npieces; i++)
        sy__batch_release(pieces[i]);
    sy__batch_release(b);
    return 0;
}
