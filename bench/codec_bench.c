/*
 * codec_bench - what each step of the batch path costs, on one core, in spans per
 * second: walking (validating and counting) the encoded bytes, protobuf-c unpack
 * with malloc and into a batch arena, packing, merging by concatenation, and the
 * OTLP/JSON codec as the otlp receiver (JSON body -> batch) and the file exporter
 * (batch -> JSON line) use it.
 *
 *   codec_bench [--spans 512] [--attrs 10] [--seconds 2]
 *
 * The request is the load generator's (bench/loadgen_payload.c): 512 spans with
 * 10 attributes each, about 440 bytes a span.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "loadgen_payload.h"
#include "otlp_json.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef void (*step_fn)(const lg_payload_t *p);

static const ProtobufCMessageDescriptor *req_desc;

static void step_walk(const lg_payload_t *p)
{
    uint64_t items;
    char err[128];
    if (sy__pb_validate(req_desc, p->body, p->len, &items, err, sizeof(err)) < 0 ||
        items != p->spans) {
        fprintf(stderr, "walk failed: %s\n", err);
        exit(1);
    }
}

static void step_unpack_malloc(const lg_payload_t *p)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(req_desc, NULL, p->len, p->body);
    if (!m) exit(1);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void step_batch_decode(const lg_payload_t *p)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    uint8_t *body = sy__batch_alloc(b, p->len);
    memcpy(body, p->body, p->len);
    char err[128];
    if (sy__batch_set_encoded(b, body, p->len, err, sizeof(err)) < 0 || !sy__batch_request(b))
        exit(1);
    sy__batch_release(b);
}

static const ProtobufCMessage *packed_src;
static void step_pack(const lg_payload_t *p)
{
    (void)p;
    size_t n = protobuf_c_message_get_packed_size(packed_src);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(packed_src, buf);
    free(buf);
}

static void step_merge16(const lg_payload_t *p)
{
    sy_batch_t *in[16];
    char err[128];
    for (int i = 0; i < 16; i++) {
        in[i] = sy__batch_new(SY_SIGNAL_TRACES, "bench");
        sy__batch_set_encoded(in[i], p->body, p->len, err, sizeof(err));
    }
    sy_batch_t *m = sy__batch_merge("bench", in, 16);
    sy__batch_release(m);
    for (int i = 0; i < 16; i++)
        sy__batch_release(in[i]);
}

/* The request as OTLP/JSON (what a JSON client would send). */
static char *json_body;
static size_t json_len;

/* The otlp receiver's JSON path: JSON -> encoded request in the batch's arena,
 * then validated and counted like a protobuf body. */
static void step_json_decode(const lg_payload_t *p)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    char err[256];
    size_t n;
    uint8_t *wire = syc_otlp_json_to_wire(req_desc, (const uint8_t *)json_body, json_len,
                                          sy__batch_allocator(b), &n, err, sizeof(err));
    if (!wire || sy__batch_set_encoded(b, wire, n, err, sizeof(err)) < 0 ||
        sy__batch_items(b) != p->spans) {
        fprintf(stderr, "json decode failed: %s\n", err);
        exit(1);
    }
    sy__batch_release(b);
}

/* The file exporter's JSON format: encoded request -> one JSON line. */
static void step_json_encode(const lg_payload_t *p)
{
    size_t n;
    char *json = syc_otlp_json_from_wire(req_desc, p->body, p->len, &n, NULL);
    if (!json || n != json_len) exit(1);
    free(json);
}

static void run(const char *name, step_fn fn, const lg_payload_t *p, double seconds,
                unsigned spans_per_call)
{
    unsigned long calls = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 8; i++)
            fn(p);
        calls += 8;
        t = now();
    } while (t - t0 < seconds);
    double sps = (double)calls * spans_per_call / (t - t0);
    printf("%-34s %10.2f M spans/s  %8.1f us/request\n", name, sps / 1e6,
           (t - t0) / (double)calls * 1e6);
}

int main(int argc, char **argv)
{
    lg_payload_opts_t opts = {.spans = 512, .attrs = 10, .distinct = 1, .seed = 1};
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--spans"))
            opts.spans = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attrs"))
            opts.attrs = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&opts, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const lg_payload_t *p = &set.items[0];
    req_desc = sy__signal_request_descriptor(SY_SIGNAL_TRACES);
    packed_src = protobuf_c_message_unpack(req_desc, NULL, p->len, p->body);
    printf("request: %u spans x %u attributes, %zu bytes (%.0f bytes a span)\n", p->spans,
           opts.attrs, p->len, (double)p->len / p->spans);
    run("walk (validate + count)", step_walk, p, seconds, p->spans);
    run("protobuf-c unpack, malloc", step_unpack_malloc, p, seconds, p->spans);
    run("batch: copy + walk + arena unpack", step_batch_decode, p, seconds, p->spans);
    run("protobuf-c pack", step_pack, p, seconds, p->spans);
    run("batch: walk x16 + merge (concat)", step_merge16, p, seconds, 16 * p->spans);
    json_body = syc_otlp_json_from_wire(req_desc, p->body, p->len, &json_len, NULL);
    if (!json_body) return 1;
    printf("as OTLP/JSON: %zu bytes\n", json_len);
    run("json: decode -> batch (receiver)", step_json_decode, p, seconds, p->spans);
    run("json: encode from batch (file)", step_json_encode, p, seconds, p->spans);
    free(json_body);
    protobuf_c_message_free_unpacked((ProtobufCMessage *)packed_src, NULL);
    lg_payload_free(&set);
    return 0;
}
