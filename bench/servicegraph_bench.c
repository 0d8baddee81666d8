/*
 * servicegraph_bench.c - what the servicegraph connector's engine costs per span,
 * in process (plugins/connectors/servicegraph/sg_*.c compiled in, the core's real
 * view). A request holds 512 spans of 10 attributes: 16 client services with 16
 * CLIENT spans each, and 16 server services with the 16 SERVER spans that answer
 * them (children of those client spans, same traces), so every request completes
 * 256 edges of 16 series. Each iteration copies the request into a new batch
 * (validated and counted, as a receiver does) with fresh trace IDs, then has the
 * engine read it; the baseline row does the copy alone. A third row is the
 * flush: the metrics request of the 16 series written.
 *
 *   ./build/bin/servicegraph_bench [--seconds 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "sg.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

#define SERVICES 16
#define PER      16
#define SPANS    (2 * SERVICES * PER)
#define ATTRS    10

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The request, encoded; the trace IDs' first 8 bytes are at tid_off[] so that
 * each iteration can make them new. */
static uint8_t *request(size_t *len, size_t *tid_off, size_t *ntid)
{
    static char names[2 * SERVICES][32];
    static char vals[SPANS][ATTRS][24];
    static uint8_t ids[SPANS][3][16];
    static KeyValue kv[SPANS][ATTRS], rkv[2 * SERVICES];
    static AnyValue av[SPANS][ATTRS], rav[2 * SERVICES];
    static KeyValue *kvp[SPANS][ATTRS], *rkvp[2 * SERVICES];
    static Span span[SPANS], *spanp[SPANS];
    static Opentelemetry__Proto__Trace__V1__ScopeSpans ss[2 * SERVICES], *ssp[2 * SERVICES];
    static Opentelemetry__Proto__Trace__V1__ResourceSpans rs[2 * SERVICES], *rsp[2 * SERVICES];
    static Opentelemetry__Proto__Resource__V1__Resource res[2 * SERVICES];
    static const char *keys[ATTRS] = {
        "http.route",       "http.method", "net.peer.name", "user.id", "session.id",
        "http.status_code", "thread.name", "code.func",     "code.ns", "deployment.id"};
    for (int r = 0; r < 2 * SERVICES; r++) {
        bool server = r >= SERVICES;
        snprintf(names[r], sizeof(names[r]), "%s-%02d", server ? "backend" : "frontend",
                 r % SERVICES);
        opentelemetry__proto__common__v1__key_value__init(&rkv[r]);
        opentelemetry__proto__common__v1__any_value__init(&rav[r]);
        rav[r].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        rav[r].string_value = names[r];
        rkv[r].key = "service.name";
        rkv[r].value = &rav[r];
        rkvp[r] = &rkv[r];
        opentelemetry__proto__resource__v1__resource__init(&res[r]);
        res[r].n_attributes = 1;
        res[r].attributes = &rkvp[r];
        for (int i = 0; i < PER; i++) {
            int s = r * PER + i;
            int call = (r % SERVICES) * PER + i; /* the call this span takes part in */
            opentelemetry__proto__trace__v1__span__init(&span[s]);
            memset(ids[s][0], 0, 16);
            memcpy(ids[s][0] + 8, &call, sizeof(call));
            memset(ids[s][1], 0, 8);
            ids[s][1][0] = (uint8_t)(server ? 2 : 1);
            memcpy(ids[s][1] + 1, &call, sizeof(call));
            memset(ids[s][2], 0, 8);
            ids[s][2][0] = 1;
            memcpy(ids[s][2] + 1, &call, sizeof(call));
            span[s].trace_id = (ProtobufCBinaryData){16, ids[s][0]};
            span[s].span_id = (ProtobufCBinaryData){8, ids[s][1]};
            if (server) span[s].parent_span_id = (ProtobufCBinaryData){8, ids[s][2]};
            span[s].name = "GET /api/items";
            span[s].kind = server
                               ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                               : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
            span[s].start_time_unix_nano = 1700000000000000000ull;
            span[s].end_time_unix_nano = 1700000000000000000ull + 1000000ull * (1 + i);
            for (int a = 0; a < ATTRS; a++) {
                snprintf(vals[s][a], sizeof(vals[s][a]), "value-%d-%d", s, a);
                opentelemetry__proto__common__v1__key_value__init(&kv[s][a]);
                opentelemetry__proto__common__v1__any_value__init(&av[s][a]);
                av[s][a].value_case =
                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                av[s][a].string_value = vals[s][a];
                kv[s][a].key = (char *)keys[a];
                kv[s][a].value = &av[s][a];
                kvp[s][a] = &kv[s][a];
            }
            span[s].n_attributes = ATTRS;
            span[s].attributes = kvp[s];
            spanp[s] = &span[s];
        }
        opentelemetry__proto__trace__v1__scope_spans__init(&ss[r]);
        ss[r].n_spans = PER;
        ss[r].spans = &spanp[r * PER];
        ssp[r] = &ss[r];
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[r]);
        rs[r].resource = &res[r];
        rs[r].n_scope_spans = 1;
        rs[r].scope_spans = &ssp[r];
        rsp[r] = &rs[r];
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 2 * SERVICES;
    req.resource_spans = rsp;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&req.base, buf);
    /* Find every trace ID (its 16 bytes: 8 zeros, then the call number) by value. */
    *ntid = 0;
    for (size_t off = 0; off + 16 <= *len && *ntid < SPANS; off++) {
        if (buf[off] == 0x0a && buf[off + 1] == 16 && !memcmp(buf + off + 2, "\0\0\0\0\0\0\0\0", 8))
            tid_off[(*ntid)++] = off + 2;
    }
    return buf;
}

static const double bounds[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const peers[] = {"peer.service", "db.name", "db.system"};
static const char *const dbs[] = {"db.name"};

int main(int argc, char **argv)
{
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[++i]);
    size_t len, tid_off[SPANS], ntid;
    uint8_t *req = request(&len, tid_off, &ntid);
    if (ntid != SPANS) {
        fprintf(stderr, "found %zu trace IDs, want %d\n", ntid, SPANS);
        return 1;
    }
    const sy_host_api_t *api = sy__host_api();
    sg_opts_t o = {.bounds = bounds,
                   .nbounds = 16,
                   .peer_attrs = peers,
                   .npeer = 3,
                   .db_attrs = dbs,
                   .ndb = 1,
                   .ttl_ns = 2000000000LL,
                   .max_items = 1000,
                   .series_ttl_ns = 900000000000LL};
    sg_t *sg = sg_new(&o);
    printf("request: %zu bytes, %d spans (%d edges), %.0f bytes a span\n", len, SPANS, SPANS / 2,
           (double)len / SPANS);
    for (int mode = 0; mode < 2; mode++) {
        uint64_t n = 0, iter = 0;
        double t0 = now(), t;
        do {
            sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
            uint8_t *dst = sy__batch_alloc(b, len);
            memcpy(dst, req, len);
            iter++;
            for (size_t k = 0; k < ntid; k++) /* fresh traces every iteration */
                memcpy(dst + tid_off[k], &iter, sizeof(iter));
            char err[128];
            if (sy__batch_set_encoded(b, dst, len, err, sizeof(err)) != 0) {
                fprintf(stderr, "bad request: %s\n", err);
                return 1;
            }
            if (mode == 1 && sg_ingest(sg, api, b, 0) != 0) {
                fprintf(stderr, "ingest failed\n");
                return 1;
            }
            sy__batch_release(b);
            n += SPANS;
            t = now();
        } while (t - t0 < seconds);
        printf("%-44s %.2f M spans/s\n",
               mode ? "copy + walk + servicegraph ingest" : "copy + walk (baseline)",
               (double)n / (t - t0) / 1e6);
    }
    if (sg_store_len(sg) != 0 || sg_series_len(sg) != SERVICES) {
        fprintf(stderr, "store %zu, series %zu: the edges did not all pair\n", sg_store_len(sg),
                sg_series_len(sg));
        return 1;
    }
    uint64_t flushes = 0;
    size_t out_len = 0;
    double t0 = now(), t;
    do {
        uint8_t *out;
        sg_encode(sg, 1, 2, &out, &out_len);
        free(out);
        flushes++;
        t = now();
    } while (t - t0 < seconds);
    printf("%-44s %.1f us (%zu bytes)\n", "flush of 16 series (metrics request)",
           (t - t0) / (double)flushes * 1e6, out_len);
    sg_free(sg);
    free(req);
    return 0;
}
