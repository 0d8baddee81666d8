/*
 * jaeger.c - the `jaeger` receiver: configuration, validation, lifecycle, and the
 * one path every protocol takes from Thrift bytes to an emitted OTLP batch
 * (jaeger_emit). The agent's UDP protocols are in jaeger_udp.c, thrift_http in
 * jaeger_http.c; the Thrift reader in thrift.c, the Jaeger structs in
 * jaeger_decode.c and their translation to OTLP in jaeger_otlp.c.
 *
 * As in the collector, no protocol is on by default: each runs when its key is
 * under `protocols` (an empty key takes the defaults).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emit_wait.h"
#include "jaeger.h"
#include "jaeger_model.h"

#define UDP_FIELDS(i, proto, port)                                                              \
    {.name = "protocols." proto,                                                                \
     .type = SY_CFG_PRESENT,                                                                    \
     .offset = offsetof(jaeger_config_t, udp[i].enabled),                                       \
     .description = "Enables the agent's UDP protocol " proto " when present, even if empty."}, \
        {.name = "protocols." proto ".endpoint",                                                \
         .type = SY_CFG_STRING,                                                                 \
         .offset = offsetof(jaeger_config_t, udp[i].endpoint),                                  \
         .default_value = "localhost:" port,                                                    \
         .description =                                                                         \
             "host:port the UDP socket is bound to (\":" port "\" for every interface)."},      \
        {.name = "protocols." proto ".queue_size",                                              \
         .type = SY_CFG_INT,                                                                    \
         .offset = offsetof(jaeger_config_t, udp[i].queue_size),                                \
         .default_value = "1000",                                                               \
         .description = "Packets waiting for a worker; a packet arriving when it is full is "   \
                        "dropped and counted."},                                                \
        {.name = "protocols." proto ".max_packet_size",                                         \
         .type = SY_CFG_INT,                                                                    \
         .offset = offsetof(jaeger_config_t, udp[i].max_packet_size),                           \
         .default_value = "65000",                                                              \
         .description = "Largest packet read; a longer one is truncated by the socket and "     \
                        "counted as invalid."},                                                 \
        {.name = "protocols." proto ".workers",                                                 \
         .type = SY_CFG_INT,                                                                    \
         .offset = offsetof(jaeger_config_t, udp[i].workers),                                   \
         .default_value = "10",                                                                 \
         .description = "Threads that decode packets, translate them to OTLP and emit them."},  \
    {                                                                                           \
        .name = "protocols." proto ".socket_buffer_size", .type = SY_CFG_SIZE,                  \
        .offset = offsetof(jaeger_config_t, udp[i].socket_buffer_size),                         \
        .description = "SO_RCVBUF of the socket in bytes (0: the OS default; Linux caps it at " \
                       "net.core.rmem_max)."                                                    \
    }

static const sy_config_field_t jaeger_fields[] = {
    UDP_FIELDS(JG_COMPACT, "thrift_compact", "6831"),
    UDP_FIELDS(JG_BINARY, "thrift_binary", "6832"),
    {.name = "protocols.thrift_http",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(jaeger_config_t, http),
     .description = "Enables the collector's HTTP protocol (POST /api/traces, Thrift binary "
                    "Batch) when present, even if empty."},
    {.name = "protocols.thrift_http.endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(jaeger_config_t, http_endpoint),
     .default_value = "localhost:14268",
     .description = "host:port the HTTP server listens on (\":14268\" for every interface)."},
    {.name = "protocols.thrift_http.max_request_body_size",
     .type = SY_CFG_SIZE,
     .offset = offsetof(jaeger_config_t, http_max_body),
     .default_value = "20MiB",
     .description = "Largest request body accepted (413 beyond)."},
    {SY_CFG_FIELD("protocols.thrift_http.auth.authenticator", SY_CFG_STRING, jaeger_config_t,
                  http_authenticator),
     .description = "ID of an extension (listed in service.extensions) that authenticates "
                    "every thrift_http request before its body is read: bearertokenauth, "
                    "basicauth. A refused request gets 401."},
    SYC_TLS_SERVER_FIELDS(jaeger_config_t, http_tls, "protocols.thrift_http."),
    {.name = "protocols.grpc",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(jaeger_config_t, grpc),
     .description = "Enables the collector's gRPC protocol "
                    "(jaeger.api_v2.CollectorService/PostSpans) when present, even if empty."},
    {.name = "protocols.grpc.endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(jaeger_config_t, grpc_endpoint),
     .default_value = "localhost:14250",
     .description = "host:port of the gRPC server (see protocols.grpc)."},
    {SY_CFG_FIELD("protocols.grpc.auth.authenticator", SY_CFG_STRING, jaeger_config_t,
                  grpc_authenticator),
     .description = "ID of an extension (listed in service.extensions) that authenticates "
                    "every gRPC call from its metadata. A refused call gets UNAUTHENTICATED."},
    SYC_TLS_SERVER_FIELDS(jaeger_config_t, grpc_tls, "protocols.grpc."),
    SYC_SETTLE_TIMEOUT_FIELD(jaeger_config_t, settle_timeout),
    SYC_EMIT_WAIT_FIELD(jaeger_config_t, queue_wait),
};

static const char *const udp_names[JG_UDP_PROTOCOLS] = {"thrift_compact", "thrift_binary"};

static int jaeger_validate(const void *config, char *err, size_t err_len)
{
    const jaeger_config_t *cfg = config;
    char why[300];
    if (!cfg->udp[JG_COMPACT].enabled && !cfg->udp[JG_BINARY].enabled && !cfg->http && !cfg->grpc) {
        snprintf(err, err_len, "must specify at least one protocol when using the Jaeger receiver");
        return SY_EINVAL;
    }
    for (int i = 0; i < JG_UDP_PROTOCOLS; i++) {
        const jaeger_udp_config_t *u = &cfg->udp[i];
        if (!u->enabled) continue;
        if (syc_http_endpoint_check(u->endpoint, why, sizeof(why)) != 0) {
            snprintf(err, err_len, "protocols::%s::endpoint: %s", udp_names[i], why);
            return SY_EINVAL;
        }
        if (u->queue_size < 1 || u->queue_size > 1000000) {
            snprintf(err, err_len, "protocols::%s::queue_size: must be between 1 and 1000000",
                     udp_names[i]);
            return SY_EINVAL;
        }
        if (u->max_packet_size < 1 || u->max_packet_size > 65535) {
            snprintf(err, err_len, "protocols::%s::max_packet_size: must be between 1 and 65535",
                     udp_names[i]);
            return SY_EINVAL;
        }
        if (u->workers < 1 || u->workers > 256) {
            snprintf(err, err_len, "protocols::%s::workers: must be between 1 and 256",
                     udp_names[i]);
            return SY_EINVAL;
        }
        if (u->socket_buffer_size > (uint64_t)INT32_MAX) {
            snprintf(err, err_len, "protocols::%s::socket_buffer_size: at most 2GiB", udp_names[i]);
            return SY_EINVAL;
        }
    }
    if (cfg->http && syc_http_endpoint_check(cfg->http_endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "protocols::thrift_http::endpoint: %s", why);
        return SY_EINVAL;
    }
    if (cfg->http &&
        syc_tls_server_cfg_check(&cfg->http_tls, "protocols::thrift_http::tls", err, err_len) != 0)
        return SY_EINVAL;
    if (cfg->grpc &&
        syc_tls_server_cfg_check(&cfg->grpc_tls, "protocols::grpc::tls", err, err_len) != 0)
        return SY_EINVAL;
    if (cfg->grpc && syc_http_endpoint_check(cfg->grpc_endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "protocols::grpc::endpoint: %s", why);
        return SY_EINVAL;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void jaeger_ratelog(jaeger_state_t *st, jaeger_ratelog_t *rl, const char *fmt, ...)
{
    const uint64_t interval = 10000000000u; /* 10 s */
    /* Relaxed throughout: the counter and the time only decide who logs, they
     * publish no other memory. */
    uint64_t n = atomic_fetch_add_explicit(&rl->since, 1, memory_order_relaxed) + 1;
    uint64_t now = now_ns(), last = atomic_load_explicit(&rl->last_ns, memory_order_relaxed);
    if (last && now - last < interval) return;
    if (!atomic_compare_exchange_strong_explicit(&rl->last_ns, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return; /* another thread logs this round */
    atomic_fetch_sub_explicit(&rl->since, n, memory_order_relaxed);
    if (!st->api->log_enabled(st->inst, SY_LOG_WARN)) return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    st->api->log(st->inst, SY_LOG_WARN,
                 "%s (%llu such events since the last warning; at most one "
                 "warning per 10 s)",
                 msg, (unsigned long long)n);
}

static void *scratch_alloc(void *data, size_t size)
{
    jaeger_scratch_t *s = data;
    size = (size + 15) & ~(size_t)15;
    s->need += size;
    if (s->base && size <= s->cap - s->used) {
        void *p = s->base + s->used;
        s->used += size;
        return p;
    }
    if (s->n_extra == s->cap_extra) {
        size_t n = s->cap_extra ? s->cap_extra * 2 : 16;
        void **e = realloc(s->extra, n * sizeof(*e));
        if (!e) return NULL;
        s->extra = e;
        s->cap_extra = n;
    }
    void *p = malloc(size);
    if (p) s->extra[s->n_extra++] = p;
    return p;
}

static void scratch_free_one(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* everything goes at reset */
}

void jaeger_scratch_init(jaeger_scratch_t *s)
{
    memset(s, 0, sizeof(*s));
    s->pb.alloc = scratch_alloc;
    s->pb.free = scratch_free_one;
    s->pb.allocator_data = s;
}

void jaeger_scratch_reset(jaeger_scratch_t *s)
{
    for (size_t i = 0; i < s->n_extra; i++)
        free(s->extra[i]);
    s->n_extra = 0;
    /* Grow the block to what this packet needed, so that the next one like it
     * is served from it; a block over the keep bound is let go. */
    if (s->need > s->cap) {
        free(s->base);
        s->cap = s->need <= JAEGER_SCRATCH_KEEP ? s->need : 0;
        s->base = s->cap ? malloc(s->cap) : NULL;
        if (!s->base) s->cap = 0;
    }
    s->used = 0;
    s->need = 0;
}

void jaeger_scratch_free(jaeger_scratch_t *s)
{
    jaeger_scratch_reset(s);
    free(s->base);
    free(s->extra);
    jaeger_scratch_init(s);
}

void jaeger_emit(jaeger_state_t *st, jaeger_scratch_t *scratch, th_proto_t proto, bool agent,
                 unsigned wait_ms, const uint8_t *data, size_t len, jaeger_outcome_t *out)
{
    const sy_host_api_t *api = st->api;
    out->rc = SY_OK;
    out->spans = 0;
    out->err[0] = '\0';
    out->wait = NULL;
    sy_batch_t *batch = api->batch_new(st->inst, SY_SIGNAL_TRACES);
    if (!batch) {
        out->rc = SY_ENOMEM;
        snprintf(out->err, sizeof(out->err), "out of memory");
        return;
    }
    ProtobufCAllocator *alloc = api->batch_allocator(batch);
    jg_batch_t jb;
    char why[200];
    if (agent) {
        jg_agent_result_t r =
            jg_decode_agent(proto, data, len, &scratch->pb, &jb, why, sizeof(why));
        if (r == JG_AGENT_ZIPKIN)
            snprintf(out->err, sizeof(out->err),
                     "Agent.emitZipkinBatch is not supported (use the zipkin receiver)");
        else if (r == JG_AGENT_UNKNOWN)
            snprintf(out->err, sizeof(out->err), "unknown method \"%s\" of service Agent", why);
        else if (r == JG_AGENT_MALFORMED)
            snprintf(out->err, sizeof(out->err), "cannot decode the Thrift message: %s", why);
        if (r != JG_AGENT_BATCH) out->rc = SY_EINVAL;
    } else if (jg_decode_batch(proto, data, len, &scratch->pb, &jb, why, sizeof(why)) != 0) {
        snprintf(out->err, sizeof(out->err), "%s", why);
        out->rc = SY_EINVAL;
    }
    void *req = NULL;
    if (out->rc == SY_OK) {
        req = jg_to_otlp(&jb, alloc, &out->spans);
        if (!req) {
            out->rc = SY_ENOMEM;
            snprintf(out->err, sizeof(out->err), "out of memory translating the batch");
        }
    }
    jaeger_scratch_reset(scratch);
    if (out->rc == SY_OK && api->batch_set_decoded(batch, req) != 0) {
        out->rc = SY_ERROR;
        snprintf(out->err, sizeof(out->err), "the translated request was refused");
    }
    if (out->rc == SY_OK && out->settle_req)
        out->wait =
            syc_settle_begin(&st->http_settle, batch, jaeger_http_settled, st, out->settle_req, 0);
    if (out->rc == SY_OK && out->settle_req) {
        /* thrift_http, on the loop thread: held while the queue is full (queue_wait). */
        syc_emit_req_t er = {.batch = batch, .owner = st, .ctx = out->settle_req, .aux = out->wait};
        syc_emit_park_t *park;
        out->rc = syc_emit(&st->http_emitq, &er, jaeger_http_emitted, &park);
        if (out->rc == SYC_EMIT_PARKED) return; /* the batch is held; answered later */
    } else if (out->rc == SY_OK) {
        out->rc = api->emit(st->inst, batch);
    }
    /* A full pipeline queue is usually a burst: waiting here (a worker thread,
     * never the loop thread) lets the packet queue absorb it, and when it lasts,
     * packets are dropped at the queue before they cost a decode, rather than
     * decoded and then dropped, which starves the pipeline of the CPU it needs to
     * catch up. */
    for (unsigned waited = 0; out->rc == SY_EAGAIN && waited < wait_ms &&
                              !atomic_load_explicit(&st->stopping, memory_order_relaxed);
         waited++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        out->rc = api->emit(st->inst, batch);
    }
    if (out->wait) {
        syc_settle_emitted(out->wait, out->rc);
        if (out->rc != SY_OK) out->wait = NULL; /* the caller answers the refusal */
    }
    if (out->rc != SY_OK) api->batch_release(batch);
}

static void jaeger_destroy(void *state);

static int jaeger_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                         void **state)
{
    jaeger_state_t *st = calloc(1, sizeof(*st));
    if (!st) return SY_ENOMEM;
    st->api = api;
    st->inst = inst;
    st->cfg = config;
    jaeger_scratch_init(&st->http_scratch);
    if (st->cfg->http) {
        st->m_http_requests =
            api->metric_register(inst, "receiver_jaeger_thrift_http_requests",
                                 "thrift_http requests answered.", SY_METRIC_COUNTER);
        st->m_http_failed =
            api->metric_register(inst, "receiver_jaeger_thrift_http_failed_requests",
                                 "thrift_http requests answered with another "
                                 "status than 202.",
                                 SY_METRIC_COUNTER);
        st->m_http_auth_failed =
            api->metric_register(inst, "receiver_jaeger_thrift_http_auth_failures",
                                 "thrift_http requests answered 401: their authenticator "
                                 "refused them.",
                                 SY_METRIC_COUNTER);
    }
    if (st->cfg->http) {
        st->m_http_settle_timeouts = api->metric_register(
            inst, "receiver_jaeger_thrift_http_settle_timeouts",
            "thrift_http requests answered 503 because their spans were not written to the "
            "persistent queue within settle_timeout.",
            SY_METRIC_COUNTER);
        st->m_http_settle_failed = api->metric_register(
            inst, "receiver_jaeger_thrift_http_settle_failed",
            "thrift_http requests answered 503 because an exporter failed or gave up their "
            "spans before they were written, or the receiver stopped first.",
            SY_METRIC_COUNTER);
        syc_settle_init(&st->http_settle, api, inst, st->cfg->settle_timeout,
                        st->m_http_settle_timeouts, st->m_http_settle_failed);
        syc_emit_wait_metrics(api, inst, "receiver_jaeger_thrift_http", "thrift_http requests",
                              &st->m_http_queue_waits, &st->m_http_queue_wait_expired);
        syc_emit_wait_init(&st->http_emitq, api, inst, st->cfg->queue_wait, st->m_http_queue_waits,
                           st->m_http_queue_wait_expired);
    }
    if (st->cfg->http && syc_tls_server_open(&st->http_tls, api, inst, &st->cfg->http_tls,
                                             "protocols.thrift_http.tls", true) != 0) {
        jaeger_destroy(st);
        return SY_EINVAL;
    }
    if (st->cfg->grpc && syc_tls_server_open(&st->grpc_tls, api, inst, &st->cfg->grpc_tls,
                                             "protocols.grpc.tls", false) != 0) {
        jaeger_destroy(st);
        return SY_EINVAL;
    }
    if (st->cfg->grpc && jaeger_grpc_create(st) != SY_OK) {
        jaeger_destroy(st);
        return SY_ENOMEM;
    }
    *state = st;
    return SY_OK;
}

static void jaeger_shutdown(void *state);

static int jaeger_start(void *state)
{
    jaeger_state_t *st = state;
    for (int i = 0; i < JG_UDP_PROTOCOLS; i++)
        if (st->cfg->udp[i].enabled && jaeger_udp_start(st, i) != 0) goto fail;
    if (st->cfg->http && jaeger_http_start(st) != 0) goto fail;
    if (st->cfg->grpc && jaeger_grpc_start(st) != 0) goto fail;
    return SY_OK;
fail:
    jaeger_shutdown(st);
    return SY_ERROR;
}

static void jaeger_shutdown(void *state)
{
    jaeger_state_t *st = state;
    /* Relaxed: the flag only shortens the workers' waits; joining them is what
     * orders their last writes before what follows. */
    atomic_store_explicit(&st->stopping, true, memory_order_relaxed);
    for (int i = 0; i < JG_UDP_PROTOCOLS; i++)
        if (st->udp[i]) jaeger_udp_shutdown(st->udp[i]);
    jaeger_http_shutdown(st);
    jaeger_grpc_shutdown(st);
}

static void jaeger_destroy(void *state)
{
    jaeger_state_t *st = state;
    if (!st) return;
    for (int i = 0; i < JG_UDP_PROTOCOLS; i++)
        jaeger_udp_free(st->udp[i]);
    jaeger_scratch_free(&st->http_scratch);
    jaeger_grpc_free(st);
    syc_tls_server_free(&st->http_tls);
    syc_tls_server_free(&st->grpc_tls);
    free(st);
}

static const sy_plugin_t jaeger_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "jaeger",
    .signals = SY_SIGNAL_TRACES,
    .version = "0.1.0",
    .description = "Receives Jaeger Thrift: the agent's UDP protocols (compact 6831, binary 6832) "
                   "the collector's HTTP endpoint (14268) and its gRPC PostSpans (14250).",
    .config_fields = jaeger_fields,
    .config_field_count = sizeof(jaeger_fields) / sizeof(jaeger_fields[0]),
    .config_size = sizeof(jaeger_config_t),
    .validate = jaeger_validate,
    .create = jaeger_create,
    .start = jaeger_start,
    .shutdown = jaeger_shutdown,
    .destroy = jaeger_destroy,
};

SY_PLUGIN_DEFINE(jaeger_plugin)
