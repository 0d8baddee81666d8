/*
 * codec_bench - what each step of the batch path costs, on one core, in spans per
 * second: walking (validating and counting) the encoded bytes, the same walk with
 * the field-by-field decoded-size estimate (what requests over about 1.6 MB and
 * merged requests get), protobuf-c unpack with malloc and into a batch arena,
 * packing, merging by concatenation, the view (ABI 1.1): reading every span's
 * name and attributes, and changing one attribute a span and committing, and the
 * OTLP/JSON codec as the otlp receiver (JSON body -> batch) and the file exporter
 * (batch -> JSON line) use it.
 *
 *   codec_bench [--spans 512] [--attrs 10] [--seconds 2] [--only TEXT]
 *
 * Times are the thread's CPU time, so a busy machine slows the run but changes
 * the figures less; --only runs the rows whose name contains TEXT.
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
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "view.h"
#include "otlp_json.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

static void step_walk_estimate(const lg_payload_t *p)
{
    sy__pb_stats_t st;
    char err[128];
    if (sy__pb_walk(req_desc, p->body, p->len, true, &st, err, sizeof(err)) < 0 ||
        st.items != p->spans) {
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

/* The batch the view rows read, made once: they measure the view, not the walk. */
static sy_batch_t *view_batch;

static void view_fail(const char *what)
{
    fprintf(stderr, "view bench: %s\n", what);
    exit(1);
}

/* Iterates every span, reading its name and every attribute (key and value). */
static unsigned long view_read_all(sy_view_t *v)
{
    unsigned long sum = 0;
    sy_view_node_t *root = sy__view_root(v);
    size_t nr = sy__view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr; r++) {
        sy_view_node_t *res = sy__view_at(root, SY_VIEW_RESOURCES, r);
        size_t ns = sy__view_count(res, SY_VIEW_SCOPES);
        for (size_t s = 0; s < ns; s++) {
            sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, s);
            size_t ni = sy__view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < ni; i++) {
                sy_view_node_t *span = sy__view_at(sc, SY_VIEW_ITEMS, i);
                sy_value_t name, k, val;
                if (sy__view_get(span, SY_FIELD_NAME, &name) < 0) view_fail("name");
                sum += name.len;
                size_t na = sy__view_attr_count(span);
                for (size_t a = 0; a < na; a++) {
                    if (sy__view_attr_at(span, a, &k, &val) < 0) view_fail("attribute");
                    sum += k.len + (size_t)val.type;
                }
            }
        }
    }
    return sum;
}

static void step_view_read(const lg_payload_t *p)
{
    sy_view_t *v = sy__view_open(view_batch);
    if (!v || view_read_all(v) == 0 || p->spans == 0) view_fail("read");
    sy__view_close(v);
}

/* A batch of its own (copy + walk, as a receiver makes one), then one attribute
 * changed on every span (the value of http.request.method) and one commit: the
 * new request written, and validated by the walk. */
static void step_view_edit(const lg_payload_t *p)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    uint8_t *body = sy__batch_alloc(b, p->len);
    memcpy(body, p->body, p->len);
    if (sy__batch_set_encoded(b, body, p->len, NULL, 0) < 0) view_fail("set_encoded");
    sy_view_t *v = sy__view_open(b);
    sy_view_node_t *root = sy__view_root(v);
    sy_value_t nv = {.type = SY_VALUE_STRING, .str = "PATCH", .len = 5};
    for (size_t r = 0; r < sy__view_count(root, SY_VIEW_RESOURCES); r++) {
        sy_view_node_t *res = sy__view_at(root, SY_VIEW_RESOURCES, r);
        for (size_t s = 0; s < sy__view_count(res, SY_VIEW_SCOPES); s++) {
            sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, s);
            for (size_t i = 0; i < sy__view_count(sc, SY_VIEW_ITEMS); i++)
                if (sy__view_attr_set(sy__view_at(sc, SY_VIEW_ITEMS, i), "http.request.method", 19,
                                      &nv, SY_ATTR_UPSERT) < 0)
                    view_fail("attr_set");
        }
    }
    if (sy__view_commit(v) < 0 || sy__batch_items(b) != p->spans) view_fail("commit");
    sy__view_close(v);
    sy__batch_release(b);
}

/* The same change through the decoded form: copy + walk + unpack into the arena,
 * change, pack (what batch_request_mut costs a processor that edits). */
static void step_decoded_edit(const lg_payload_t *p)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    uint8_t *body = sy__batch_alloc(b, p->len);
    memcpy(body, p->body, p->len);
    if (sy__batch_set_encoded(b, body, p->len, NULL, 0) < 0) view_fail("set_encoded");
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        sy__batch_request_mut(b);
    if (!req) view_fail("request_mut");
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                req->resource_spans[r]->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++)
                for (size_t a = 0; a < ss->spans[i]->n_attributes; a++)
                    if (!strcmp(ss->spans[i]->attributes[a]->key, "http.request.method"))
                        ss->spans[i]->attributes[a]->value->string_value = "PATCH";
        }
    if (!sy__batch_encoded(b, NULL)) view_fail("pack");
    sy__batch_release(b);
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

static const char *only; /* --only */

static void run(const char *name, step_fn fn, const lg_payload_t *p, double seconds,
                unsigned spans_per_call)
{
    if (only && !strstr(name, only)) return;
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
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
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
    run("walk + decoded-size estimate", step_walk_estimate, p, seconds, p->spans);
    run("protobuf-c unpack, malloc", step_unpack_malloc, p, seconds, p->spans);
    run("batch: copy + walk + arena unpack", step_batch_decode, p, seconds, p->spans);
    run("protobuf-c pack", step_pack, p, seconds, p->spans);
    run("batch: walk x16 + merge (concat)", step_merge16, p, seconds, 16 * p->spans);
    view_batch = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    if (sy__batch_set_encoded(view_batch, p->body, p->len, NULL, 0) < 0) view_fail("batch");
    run("view: name + every attribute", step_view_read, p, seconds, p->spans);
    run("view: copy+walk, 1 attr/span, commit", step_view_edit, p, seconds, p->spans);
    run("decoded: copy+walk+unpack, edit, pack", step_decoded_edit, p, seconds, p->spans);
    sy__batch_release(view_batch);
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
