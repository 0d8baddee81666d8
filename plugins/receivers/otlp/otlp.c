/*
 * otlp.c - the `otlp` receiver: configuration, validation and lifecycle. The
 * HTTP protocol (OTLP/HTTP, protobuf and JSON) is in otlp_http.c, gRPC (OTLP/gRPC
 * over h2c, or over TLS through plugins/common/tls_server.h) in otlp_grpc.c; both hand their
 * batches to the same api->emit(), so they feed the same pipelines.
 *
 * Every callback runs on the instance's loop thread; the state needs no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_settle.h"
#include "signals.h"

#define OTLP_MIB (1024u * 1024u)

static const sy_config_field_t otlp_fields[] = {
    {.name = "max_items_per_request",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, max_items_per_request),
     .default_value = "1000000",
     .description = "Most spans, data points or log records one request may hold (HTTP 413 / "
                    "gRPC RESOURCE_EXHAUSTED beyond; 0: no bound but the decoded size)."},
    {.name = "settle_timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, settle_timeout),
     .default_value = "5s",
     .description = "With a persistent queue (sending_queue.storage) on an exporter of the "
                    "receiver's pipelines: how long a request's answer waits for its data to "
                    "be written there; HTTP 503 / gRPC UNAVAILABLE beyond (the client retries)."},
    SYC_EMIT_WAIT_FIELD(otlp_config_t, queue_wait),
    {.name = "protocols.http",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(otlp_config_t, http),
     .description = "Enables OTLP/HTTP (protobuf and JSON) when present, even if empty."},
    {.name = "protocols.http.endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, http_endpoint),
     .default_value = "localhost:4318",
     .description = "host:port the HTTP server listens on (\":4318\" for every interface)."},
    {.name = "protocols.http.max_request_body_size",
     .type = SY_CFG_SIZE,
     .offset = offsetof(otlp_config_t, http_max_body),
     .default_value = "20MiB",
     .description = "Largest request body accepted, before and after decompression (413 "
                    "beyond)."},
    {.name = "protocols.http.traces_url_path",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, http_paths[0]),
     .default_value = "/v1/traces",
     .description = "URL path that receives traces."},
    {.name = "protocols.http.metrics_url_path",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, http_paths[1]),
     .default_value = "/v1/metrics",
     .description = "URL path that receives metrics."},
    {.name = "protocols.http.logs_url_path",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, http_paths[2]),
     .default_value = "/v1/logs",
     .description = "URL path that receives logs."},
    {.name = "protocols.http.cors.allowed_origins",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(otlp_config_t, cors_origins),
     .description = "Origins allowed to send cross-origin requests (\"*\" wildcards); CORS is "
                    "off when empty."},
    {.name = "protocols.http.cors.allowed_headers",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(otlp_config_t, cors_headers),
     .description = "Request headers allowed in cross-origin requests besides the simple ones "
                    "(\"*\" for any)."},
    {.name = "protocols.http.cors.max_age",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, cors_max_age),
     .description = "Seconds a browser may cache a preflight answer (0: not sent)."},
    {.name = "protocols.http.include_metadata",
     .type = SY_CFG_BOOL,
     .offset = offsetof(otlp_config_t, http_include_metadata),
     .description = "Accepted for compatibility; client metadata is not propagated yet."},
    {.name = "protocols.http.read_header_timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, http_read_header_timeout),
     .default_value = "10s",
     .description = "Time from a request's first byte within which its request line and "
                    "headers must be in (408 and closed beyond; not extended by later bytes; "
                    "0: none)."},
    {.name = "protocols.http.read_timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, http_read_timeout),
     .default_value = "30s",
     .description = "Time from a request's first byte within which the whole request, body "
                    "included, must be in (408 and closed beyond; 0: none)."},
    {.name = "protocols.http.idle_timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, http_idle_timeout),
     .default_value = "1m",
     .description = "A kept-alive connection with no request for this long is closed (0: "
                    "never)."},
    {.name = "protocols.http.max_connections",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, http_max_connections),
     .default_value = "1024",
     .description = "Open connections at most; one more is answered 503 with Retry-After "
                    "and closed (0: no bound)."},
    {.name = "protocols.http.max_inflight_bytes",
     .type = SY_CFG_SIZE,
     .offset = offsetof(otlp_config_t, http_max_inflight),
     .default_value = "64MiB",
     .description = "Request body bytes held by the server at once, counted from a "
                    "request's first byte by its Content-Length; a request that does not "
                    "fit is answered 503 with Retry-After (0: no bound)."},
    {SY_CFG_FIELD("protocols.http.auth.authenticator", SY_CFG_STRING, otlp_config_t,
                  http_authenticator),
     .description = "ID of an extension (listed in service.extensions) that authenticates "
                    "every HTTP request before its body is looked at: bearertokenauth, "
                    "basicauth. A refused request gets 401."},
    SYC_TLS_SERVER_FIELDS(otlp_config_t, http_tls, "protocols.http."),
    {.name = "protocols.grpc",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(otlp_config_t, grpc),
     .description = "Enables OTLP/gRPC when present, even if empty."},
    {.name = "protocols.grpc.endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, grpc_endpoint),
     .default_value = "localhost:4317",
     .description = "host:port the gRPC server listens on (\":4317\" for every interface)."},
    {.name = "protocols.grpc.transport",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, grpc_transport),
     .default_value = "tcp",
     .description = "Network of the gRPC listener: tcp (tcp4 and tcp6 are taken as tcp)."},
    {.name = "protocols.grpc.max_recv_msg_size_mib",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, grpc_max_recv_msg_size_mib),
     .default_value = "4",
     .description = "Largest gRPC message accepted, in MiB, compressed and decompressed "
                    "(RESOURCE_EXHAUSTED beyond; 0 means 4)."},
    {.name = "protocols.grpc.max_concurrent_streams",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, grpc_max_concurrent_streams),
     .description = "Concurrent calls per gRPC connection, sent as "
                    "SETTINGS_MAX_CONCURRENT_STREAMS (0: 100)."},
    {.name = "protocols.grpc.read_buffer_size",
     .type = SY_CFG_SIZE,
     .offset = offsetof(otlp_config_t, grpc_read_buffer_size),
     .default_value = "512KiB",
     .description = "Size of the socket read buffer (clamped to 16KiB..4MiB)."},
    {.name = "protocols.grpc.write_buffer_size",
     .type = SY_CFG_SIZE,
     .offset = offsetof(otlp_config_t, grpc_write_buffer_size),
     .description = "Bytes in flight to a client before the connection stops reading "
                    "(0: 64KiB; clamped to 64KiB..4MiB)."},
    {.name = "protocols.grpc.keepalive.server_parameters.max_connection_idle",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_max_connection_idle),
     .default_value = "2m",
     .description = "A connection without calls for this long gets a GOAWAY and is closed "
                    "(0: never; grpc-go's default is never, ours is finite so that idle "
                    "connections cannot hold max_connections)."},
    {.name = "protocols.grpc.keepalive.server_parameters.max_connection_age",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_max_connection_age),
     .description = "A connection this old gets a GOAWAY: its calls finish, new ones go to a "
                    "new connection (0: never)."},
    {.name = "protocols.grpc.keepalive.server_parameters.max_connection_age_grace",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_max_connection_age_grace),
     .description = "Time after max_connection_age's GOAWAY after which the connection is "
                    "closed, calls or not (0: never)."},
    {.name = "protocols.grpc.keepalive.server_parameters.time",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_time),
     .default_value = "2h",
     .description = "After this long without input the server sends a PING (0: never)."},
    {.name = "protocols.grpc.keepalive.server_parameters.timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_timeout),
     .default_value = "20s",
     .description = "A PING of the server's not acknowledged within this time closes the "
                    "connection."},
    {.name = "protocols.grpc.keepalive.enforcement_policy.min_time",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, ka_min_time),
     .description = "Shortest interval between a client's PINGs; the third PING too soon (or "
                    "without calls, see permit_without_stream) gets a GOAWAY "
                    "ENHANCE_YOUR_CALM \"too_many_pings\" (0: not enforced)."},
    {.name = "protocols.grpc.keepalive.enforcement_policy.permit_without_stream",
     .type = SY_CFG_BOOL,
     .offset = offsetof(otlp_config_t, ka_permit_without_stream),
     .description = "With min_time set, whether PINGs on a connection without calls are "
                    "allowed (false: they count as too soon)."},
    {.name = "protocols.grpc.read_timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, grpc_read_timeout),
     .default_value = "30s",
     .description = "Time from a call's HEADERS within which its request message must be "
                    "complete; the stream is reset (RST_STREAM CANCEL) beyond (0: none). Not "
                    "a collector key."},
    {.name = "protocols.grpc.max_connections",
     .type = SY_CFG_INT,
     .offset = offsetof(otlp_config_t, grpc_max_connections),
     .default_value = "1024",
     .description = "Open connections at most; one more gets SETTINGS and a GOAWAY "
                    "(ENHANCE_YOUR_CALM, \"too many connections\") and is closed (0: no "
                    "bound)."},
    {.name = "protocols.grpc.max_inflight_bytes",
     .type = SY_CFG_SIZE,
     .offset = offsetof(otlp_config_t, grpc_max_inflight),
     .default_value = "64MiB",
     .description = "Request message bytes held by the server at once, counted from a "
                    "message's first byte by its length prefix; a call that does not fit is "
                    "answered RESOURCE_EXHAUSTED with RetryInfo (0: no bound). One "
                    "connection may hold a quarter of it (at least one largest message)."},
    SYC_TLS_SERVER_FIELDS(otlp_config_t, grpc_tls, "protocols.grpc."),
    {.name = "protocols.grpc.include_metadata",
     .type = SY_CFG_BOOL,
     .offset = offsetof(otlp_config_t, grpc_include_metadata),
     .description = "Accepted for compatibility; client metadata is not propagated yet."},
    {SY_CFG_FIELD("protocols.grpc.auth.authenticator", SY_CFG_STRING, otlp_config_t,
                  grpc_authenticator),
     .description = "ID of an extension (listed in service.extensions) that authenticates "
                    "every gRPC call from its metadata before its message is looked at. A "
                    "refused call gets UNAUTHENTICATED."},
};

/* The metrics of the connection guards, in syc_http_guard_t and otlp_grpc_guard_t
 * order. */
static const char *const http_guard_metrics[SYC_HTTP_GUARD_COUNT][2] = {
    {"receiver_otlp_http_header_timeouts",
     "HTTP connections answered 408 and closed: headers not in within read_header_timeout."},
    {"receiver_otlp_http_body_timeouts",
     "HTTP connections answered 408 and closed: request not in within read_timeout."},
    {"receiver_otlp_http_idle_closed",
     "HTTP connections closed after idle_timeout without a request."},
    {"receiver_otlp_http_connections_refused",
     "HTTP connections answered 503 and closed: over max_connections."},
    {"receiver_otlp_http_inflight_refused",
     "HTTP requests answered 503: their body did not fit in max_inflight_bytes."},
    {"receiver_otlp_http_malformed_requests",
     "HTTP requests answered 400 (431 for headers over 64 KiB) and closed: HTTP that does "
     "not parse, or a request the client cut short."},
};
static const char *const grpc_guard_metrics[OTLP_GRPC_GUARD_COUNT][2] = {
    {"receiver_otlp_grpc_idle_closed",
     "gRPC connections sent GOAWAY and closed after max_connection_idle without calls."},
    {"receiver_otlp_grpc_age_closed", "gRPC connections sent GOAWAY after max_connection_age."},
    {"receiver_otlp_grpc_keepalive_timeouts",
     "gRPC connections closed: the server's PING was not acknowledged within timeout."},
    {"receiver_otlp_grpc_read_timeouts",
     "gRPC calls reset: their request message was not in within read_timeout."},
    {"receiver_otlp_grpc_connections_refused",
     "gRPC connections sent GOAWAY and closed: over max_connections."},
    {"receiver_otlp_grpc_inflight_refused",
     "gRPC calls answered RESOURCE_EXHAUSTED: their message did not fit in "
     "max_inflight_bytes."},
    {"receiver_otlp_grpc_streams_refused",
     "gRPC streams refused (RST_STREAM REFUSED_STREAM): over max_concurrent_streams."},
    {"receiver_otlp_grpc_too_many_pings",
     "gRPC connections sent GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\": PINGs against "
     "keepalive.enforcement_policy."},
    {"receiver_otlp_grpc_protocol_errors",
     "gRPC connections ended by a GOAWAY with an HTTP/2 error: a protocol violation, or a "
     "flood of frames (SETTINGS or PING acks never read, RST_STREAM, CONTINUATION)."},
};

void otlp_grpc_guard_count(otlp_state_t *st, otlp_grpc_guard_t which)
{
    st->api->metric_add(st->m_grpc_guard[which], 1);
}

sy_signal_t otlp_signal_at(int i)
{
    return syc_signal_by_index(i)->signal;
}

int otlp_check_items(const otlp_state_t *st, sy_batch_t *batch, char *err, size_t err_len)
{
    uint64_t max = (uint64_t)st->cfg->max_items_per_request;
    if (!max) return 0;
    sy_batch_info_t info;
    st->api->batch_info(batch, &info);
    if (info.items <= max) return 0;
    snprintf(err, err_len,
             "request too large: %llu items in one request, over max_items_per_request (%llu); "
             "send fewer items per request",
             (unsigned long long)info.items, (unsigned long long)max);
    return -1;
}

static int otlp_validate(const void *config, char *err, size_t err_len)
{
    static const char *const path_keys[OTLP_SIGNALS] = {"traces_url_path", "metrics_url_path",
                                                        "logs_url_path"};
    const otlp_config_t *cfg = config;
    if (cfg->max_items_per_request < 0) {
        snprintf(err, err_len, "max_items_per_request: must not be negative");
        return SY_EINVAL;
    }
    if (!cfg->http && !cfg->grpc) {
        snprintf(err, err_len, "must specify at least one protocol when using the OTLP receiver");
        return SY_EINVAL;
    }
    if (cfg->grpc && otlp_grpc_validate(cfg, err, err_len) != 0) return SY_EINVAL;
    if (cfg->grpc &&
        syc_tls_server_cfg_check(&cfg->grpc_tls, "protocols::grpc::tls", err, err_len) != 0)
        return SY_EINVAL;
    if (!cfg->http) return 0;
    char why[300];
    if (syc_http_endpoint_check(cfg->http_endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "protocols::http::endpoint: %s", why);
        return SY_EINVAL;
    }
    for (int i = 0; i < OTLP_SIGNALS; i++) {
        const char *p = cfg->http_paths[i];
        if (!p || !*p || strlen(p) > 1024 || strpbrk(p, "?# \t\r\n")) {
            snprintf(err, err_len,
                     "protocols::http::%s: invalid HTTP URL path set for signal: \"%s\"",
                     path_keys[i], p ? p : "");
            return SY_EINVAL;
        }
    }
    if (cfg->http_read_header_timeout < 0 || cfg->http_read_timeout < 0 ||
        cfg->http_idle_timeout < 0 || cfg->http_max_connections < 0) {
        snprintf(err, err_len,
                 "protocols::http: read_header_timeout, read_timeout, idle_timeout and "
                 "max_connections must not be negative");
        return SY_EINVAL;
    }
    if (cfg->cors_max_age < 0) {
        snprintf(err, err_len, "protocols::http::cors::max_age: must not be negative");
        return SY_EINVAL;
    }
    return syc_tls_server_cfg_check(&cfg->http_tls, "protocols::http::tls", err, err_len);
}

static void otlp_destroy(void *state);

static int otlp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const otlp_config_t *cfg = config;
    otlp_state_t *st = calloc(1, sizeof(*st));
    if (!st) return SY_ENOMEM;
    st->api = api;
    st->inst = inst;
    st->cfg = cfg;
    /* 0 means the default, as in the collector. */
    st->max_body = cfg->http_max_body ? (size_t)cfg->http_max_body : (size_t)20 * OTLP_MIB;
    for (int i = 0; i < OTLP_SIGNALS; i++) {
        const char *p = cfg->http_paths[i] ? cfg->http_paths[i] : "/";
        size_t n = strlen(p);
        /* A path without its leading slash gets one, as the collector does. */
        st->paths[i] = malloc(n + 2);
        if (!st->paths[i]) goto fail;
        snprintf(st->paths[i], n + 2, "%s%s", p[0] == '/' ? "" : "/", p);
    }
    st->m_requests =
        api->metric_register(inst, "receiver_otlp_http_requests",
                             "OTLP/HTTP requests answered by the receiver.", SY_METRIC_COUNTER);
    st->m_settle_timeouts = api->metric_register(
        inst, "receiver_otlp_settle_timeouts",
        "Requests answered unavailable because their data was not written to the persistent "
        "queue within settle_timeout.",
        SY_METRIC_COUNTER);
    st->m_settle_failed = api->metric_register(
        inst, "receiver_otlp_settle_failed",
        "Requests answered unavailable because an exporter failed or gave up their data before "
        "it was settled, or the receiver stopped first.",
        SY_METRIC_COUNTER);
    syc_emit_wait_metrics(api, inst, "receiver_otlp", "requests", &st->m_queue_waits,
                          &st->m_queue_wait_expired);
    st->m_failed = api->metric_register(inst, "receiver_otlp_http_failed_requests",
                                        "OTLP/HTTP requests answered with another status than "
                                        "200.",
                                        SY_METRIC_COUNTER);
    st->m_grpc_calls =
        api->metric_register(inst, "receiver_otlp_grpc_calls",
                             "OTLP/gRPC calls answered by the receiver.", SY_METRIC_COUNTER);
    st->m_grpc_failed = api->metric_register(inst, "receiver_otlp_grpc_failed_calls",
                                             "OTLP/gRPC calls answered with another status "
                                             "than OK.",
                                             SY_METRIC_COUNTER);
    st->m_grpc_tls_failed =
        api->metric_register(inst, "receiver_otlp_grpc_tls_handshake_failures",
                             "TLS handshakes that failed on the gRPC port (cleartext clients "
                             "among them).",
                             SY_METRIC_COUNTER);
    st->m_http_auth_failed = api->metric_register(
        inst, "receiver_otlp_http_auth_failures",
        "OTLP/HTTP requests answered 401: their authenticator refused them.", SY_METRIC_COUNTER);
    st->m_grpc_auth_failed =
        api->metric_register(inst, "receiver_otlp_grpc_auth_failures",
                             "OTLP/gRPC calls answered UNAUTHENTICATED: their authenticator "
                             "refused them.",
                             SY_METRIC_COUNTER);
    for (int i = 0; i < SYC_HTTP_GUARD_COUNT; i++)
        st->m_http_guard[i] = api->metric_register(inst, http_guard_metrics[i][0],
                                                   http_guard_metrics[i][1], SY_METRIC_COUNTER);
    for (int i = 0; i < OTLP_GRPC_GUARD_COUNT; i++)
        st->m_grpc_guard[i] = api->metric_register(inst, grpc_guard_metrics[i][0],
                                                   grpc_guard_metrics[i][1], SY_METRIC_COUNTER);
    /* The files are read now so that a bad one fails startup, naming it. */
    if (cfg->grpc && syc_tls_server_open(&st->grpc_tls, api, inst, &cfg->grpc_tls,
                                         "protocols.grpc.tls", false) != 0) {
        otlp_destroy(st);
        return SY_EINVAL;
    }
    st->tls = st->grpc_tls.ctx;
    if (cfg->http && syc_tls_server_open(&st->http_tls, api, inst, &cfg->http_tls,
                                         "protocols.http.tls", true) != 0) {
        otlp_destroy(st);
        return SY_EINVAL;
    }
    if (cfg->grpc && cfg->grpc_include_metadata)
        SY_LOG(api, inst, SY_LOG_WARN,
               "protocols.grpc.include_metadata is accepted but client metadata is not "
               "propagated yet");
    if (cfg->http_include_metadata)
        SY_LOG(api, inst, SY_LOG_WARN,
               "protocols.http.include_metadata is accepted but client metadata is not "
               "propagated yet");
    *state = st;
    return 0;
fail:
    otlp_destroy(st);
    return SY_ENOMEM;
}

static int otlp_start(void *state)
{
    otlp_state_t *st = state;
    if ((st->cfg->grpc &&
         syc_auth_guard_init(&st->grpc_auth, st->api, st->inst, "protocols.grpc.auth",
                             st->cfg->grpc_authenticator, st->m_grpc_auth_failed, "gRPC",
                             "receiver_otlp_grpc_auth_failures") != 0) ||
        (st->cfg->http &&
         syc_auth_guard_init(&st->http_auth, st->api, st->inst, "protocols.http.auth",
                             st->cfg->http_authenticator, st->m_http_auth_failed, "HTTP",
                             "receiver_otlp_http_auth_failures") != 0))
        return SY_ERROR;
    if (st->cfg->grpc && otlp_grpc_start(st) != 0) return SY_ERROR;
    if (st->cfg->http && otlp_http_start(st) != 0) {
        otlp_grpc_shutdown(st);
        return SY_ERROR;
    }
    syc_tls_server_start_reload(&st->grpc_tls);
    return 0;
}

static void otlp_shutdown(void *state)
{
    otlp_state_t *st = state;
    syc_tls_server_stop(&st->grpc_tls);
    otlp_emit_close(st); /* before the settle waits: a held request's answer uses them */
    otlp_settle_close(st);
    otlp_grpc_shutdown(st);
    otlp_http_shutdown(st);
}

static void otlp_destroy(void *state)
{
    otlp_state_t *st = state;
    if (!st) return;
    for (int i = 0; i < OTLP_SIGNALS; i++)
        free(st->paths[i]);
    syc_tls_server_free(&st->grpc_tls);
    syc_tls_server_free(&st->http_tls);
    free(st);
}

static const sy_plugin_t otlp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "otlp",
    .signals = SY_SIGNAL_ALL,
    .version = "0.1.0",
    .description = "Receives OTLP over gRPC (h2c or TLS) and HTTP (protobuf and JSON, "
                   "gzip/deflate/zstd).",
    .config_fields = otlp_fields,
    .config_field_count = sizeof(otlp_fields) / sizeof(otlp_fields[0]),
    .config_size = sizeof(otlp_config_t),
    .validate = otlp_validate,
    .create = otlp_create,
    .start = otlp_start,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};

SY_PLUGIN_DEFINE(otlp_plugin)
