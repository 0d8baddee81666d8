/*
 * zipkin.c - the `zipkin` receiver: Zipkin's HTTP API (POST /api/v2/spans as JSON
 * or protobuf, POST /api/v1/spans as JSON), translated into OTLP as the
 * collector's zipkinreceiver does (zipkin_otlp.c).
 *
 *   202  accepted (empty body), as Zipkin and the collector answer
 *   400  malformed JSON or protobuf, a value of the wrong type, a bad id, corrupt
 *        compression, an unknown Content-Encoding (text/plain message)
 *   401  refused by auth.authenticator, before the body is read
 *   404  another path; 405 another method (Allow: POST); 413 a body over
 *        max_request_body_size, before or after decompression
 *   415  a Content-Type other than application/json (or none) and, on v2,
 *        application/x-protobuf
 *   429  the pipeline's queue is full; 503 shutting down (Retry-After: 1)
 *   503  with a persistent queue (sending_queue.storage) on an exporter of the
 *        receiver's pipelines, the 202 waits until the spans are written there
 *        (settle tokens, settle_wait.h); 503 with Retry-After: 1 when that does not
 *        happen within settle_timeout or an exporter fails them
 *
 * The spans are decoded into the batch's arena (zipkin_json.c, zipkin_proto.c),
 * translated into protobuf-c OTLP structs in the same arena and handed over with
 * batch_set_decoded(). Everything runs on the instance's loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "answer.h"
#include "compress.h"
#include "auth_server.h"
#include "http_server.h"
#include "emit_wait.h"
#include "settle_wait.h"
#include "tls_config.h"
#include "zipkin_model.h"

#define ZK_IDLE_TIMEOUT_MS 60000
#define ZK_LOG_INTERVAL_MS 10000 /* at most one warning per interval about bad input */
#define ZK_PATH_V2         "/api/v2/spans"
#define ZK_PATH_V1         "/api/v1/spans"

typedef struct zipkin_config_s {
    char *endpoint;
    bool parse_string_tags;
    uint64_t max_body;
    char *authenticator; /* auth.authenticator */
    syc_tls_server_cfg_t tls;
    int64_t settle_timeout;
    int64_t queue_wait;
} zipkin_config_t;

static const sy_config_field_t zipkin_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(zipkin_config_t, endpoint),
     .default_value = "localhost:9411",
     .description = "host:port the HTTP server listens on (\":9411\" for every interface)."},
    {.name = "parse_string_tags",
     .type = SY_CFG_BOOL,
     .offset = offsetof(zipkin_config_t, parse_string_tags),
     .default_value = "false",
     .description = "Turn tag values that read as integers, decimals or true/false into "
                    "attributes of those types."},
    {.name = "max_request_body_size",
     .type = SY_CFG_SIZE,
     .offset = offsetof(zipkin_config_t, max_body),
     .default_value = "20MiB",
     .description = "Largest request body accepted, before and after decompression (413 "
                    "beyond)."},
    {SY_CFG_FIELD("auth.authenticator", SY_CFG_STRING, zipkin_config_t, authenticator),
     .description = "ID of an extension (listed in service.extensions) that authenticates "
                    "every request before its body is read: bearertokenauth, basicauth. A "
                    "refused request gets 401."},
    SYC_TLS_SERVER_FIELDS(zipkin_config_t, tls, ""),
    SYC_SETTLE_TIMEOUT_FIELD(zipkin_config_t, settle_timeout),
    SYC_EMIT_WAIT_FIELD(zipkin_config_t, queue_wait),
};

typedef struct zipkin_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const zipkin_config_t *cfg;
    syc_http_server_t *http;
    bool closing;
    size_t max_body;
    sy_metric_t *m_requests; /* answered */
    sy_metric_t *m_failed;   /* answered with another status than 202 */
    sy_metric_t *m_invalid;  /* of which bad input: 400, 413, 415 */
    sy_metric_t *m_auth_failed;
    sy_metric_t *m_settle_timeouts, *m_settle_failed;
    syc_settle_t settle;
    syc_emit_wait_t emitq; /* requests held while a pipeline's queue is full */
    sy_metric_t *m_queue_waits, *m_queue_wait_expired;
    syc_auth_guard_t auth;
    syc_tls_server_t tls;
    uint64_t last_warn_ms;
    uint64_t suppressed;
} zipkin_t;

typedef enum body_e { BODY_OTHER = 0, BODY_JSON, BODY_PROTO } body_t;

static body_t body_type(const char *ct)
{
    if (!ct) return BODY_JSON; /* the collector takes a body without a type as JSON */
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) return BODY_JSON;
    if (n == 22 && !strncasecmp(ct, "application/x-protobuf", 22)) return BODY_PROTO;
    return BODY_OTHER;
}

static void respond(zipkin_t *z, syc_http_request_t *req, int status, const char *text,
                    const char *extra)
{
    z->api->metric_add(z->m_requests, 1);
    if (status != 202) z->api->metric_add(z->m_failed, 1);
    if (status == 400 || status == 413 || status == 415) z->api->metric_add(z->m_invalid, 1);
    syc_http_respond(req, status, text ? "text/plain; charset=utf-8" : NULL, extra, text,
                     text ? strlen(text) : 0);
}

/* Logs refused input at warn, at most once per ZK_LOG_INTERVAL_MS (the rest at
 * debug, counted in the next warning). */
static void warn_refused(zipkin_t *z, const syc_http_request_t *req, int status, const char *why)
{
    uint64_t now = uv_now(z->api->loop(z->inst));
    if (z->last_warn_ms && now - z->last_warn_ms < ZK_LOG_INTERVAL_MS) {
        z->suppressed++;
        SY_LOG(z->api, z->inst, SY_LOG_DEBUG, "refused a request to %s (%d): %s", req->path, status,
               why);
        return;
    }
    SY_LOG(z->api, z->inst, SY_LOG_WARN,
           "refused a request to %s (%d): %s (%llu more refused since the last warning)", req->path,
           status, why, (unsigned long long)z->suppressed);
    z->last_warn_ms = now;
    z->suppressed = 0;
}

static void refuse(zipkin_t *z, syc_http_request_t *req, int status, const char *why)
{
    warn_refused(z, req, status, why);
    char body[700];
    snprintf(body, sizeof(body), "%s\n", why);
    respond(z, req, status, body, NULL);
}

typedef struct arena_s {
    const sy_host_api_t *api;
    sy_batch_t *batch;
} arena_t;

static void *arena_alloc(void *ctx, size_t size)
{
    arena_t *a = ctx;
    return a->api->batch_alloc(a->batch, size);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Decodes and translates the body into `batch`. Returns 0 or the status to
 * answer, with a sentence in err. */
static int fill_batch(zipkin_t *z, syc_http_request_t *req, zk_format_t format, body_t type,
                      sy_batch_t *batch, char *err, size_t err_len)
{
    const sy_host_api_t *api = z->api;
    arena_t actx = {api, batch};
    zk_alloc_t alloc = {arena_alloc, &actx};
    const uint8_t *data = req->body;
    size_t len = req->body_len;
    syc_encoding_t enc = syc_encoding_parse(req->content_encoding);
    if (enc == SYC_ENCODING_UNKNOWN) {
        snprintf(err, err_len, "unsupported Content-Encoding \"%.64s\"", req->content_encoding);
        return 400;
    }
    if (enc != SYC_ENCODING_IDENTITY) {
        uint8_t *out;
        int rc = syc_decompress(enc, data, len, z->max_body, arena_alloc, &actx, &out, &len, err,
                                err_len);
        if (rc == SY_ENOMEM) return 413;
        if (rc != 0) return 400;
        data = out;
    }
    zk_spans_t spans;
    int rc = type == BODY_PROTO ? zk_proto_decode(data, len, &alloc, &spans, err, err_len)
                                : zk_json_decode(format, data, len, &alloc, &spans, err, err_len);
    if (rc == SY_ENOMEM) return 413;
    if (rc != 0) return 400;
    void *request =
        zk_to_otlp(format, &spans, z->cfg->parse_string_tags, now_ns(), &alloc, err, err_len);
    zk_spans_free(&spans);
    if (!request) return strstr(err, "out of memory") ? 413 : 400;
    if (api->batch_set_decoded(batch, request) != 0) {
        snprintf(err, err_len, "the translated request is not valid");
        return 400;
    }
    return 0;
}

/* The answer of a request that waited for its spans to be written to a persistent
 * queue: 202, or 503 with Retry-After (the client sends again: a duplicate at
 * worst, never a loss). Loop thread. */
static void on_settled(void *owner, void *ctx, int tag, int status)
{
    zipkin_t *z = owner;
    syc_http_request_t *req = ctx;
    (void)tag;
    if (status == SY_OK) {
        respond(z, req, 202, NULL, NULL);
        return;
    }
    const char *why = status == SYC_SETTLE_TIMEDOUT
                          ? "the spans were not written to the persistent queue within "
                            "settle_timeout\n"
                          : "the spans could not be written to the persistent queue\n";
    respond(z, req, 503, why, "Retry-After: 1\r\n");
}

static void on_emitted(const syc_emit_req_t *er, int rc);

static void on_request(void *arg, syc_http_request_t *req)
{
    zipkin_t *z = arg;
    zk_format_t format;
    if (!strcmp(req->path, ZK_PATH_V2))
        format = ZK_V2;
    else if (!strcmp(req->path, ZK_PATH_V1))
        format = ZK_V1;
    else {
        respond(z, req, 404, "404 page not found\n", NULL);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        respond(z, req, 405, "405 method not allowed, supported: [POST]\n", "Allow: POST\r\n");
        return;
    }
    body_t type = body_type(req->content_type);
    if (type == BODY_OTHER || (type == BODY_PROTO && format == ZK_V1)) {
        char why[200];
        snprintf(why, sizeof(why), "unsupported Content-Type \"%.64s\", supported: [%s]",
                 req->content_type ? req->content_type : "",
                 format == ZK_V1 ? "application/json" : "application/json, application/x-protobuf");
        refuse(z, req, 415, why);
        return;
    }
    const sy_host_api_t *api = z->api;
    char err[600] = "";
    sy_batch_t *batch = api->batch_new(z->inst, SY_SIGNAL_TRACES);
    if (!batch) {
        respond(z, req, 503, "out of memory\n", "Retry-After: 1\r\n");
        return;
    }
    int status = fill_batch(z, req, format, type, batch, err, sizeof(err));
    if (status) {
        api->batch_release(batch);
        refuse(z, req, status, err);
        return;
    }
    syc_emit_req_t er = {.batch = batch, .owner = z, .ctx = req};
    er.aux = syc_settle_begin(&z->settle, batch, on_settled, z, req, 0);
    syc_emit_park_t *park;
    int rc = syc_emit(&z->emitq, &er, on_emitted, &park);
    if (rc != SYC_EMIT_PARKED) on_emitted(&er, rc);
    /* Held (queue_wait): on_emitted() answers; the request stays valid until then. */
}

/* Once emit() took the batch or refused it (perhaps after a wait for room). */
static void on_emitted(const syc_emit_req_t *er, int rc)
{
    zipkin_t *z = er->owner;
    syc_http_request_t *req = er->ctx;
    syc_settle_emitted(er->aux, rc);
    if (rc == SY_OK) {
        if (!er->aux) respond(z, req, 202, NULL, NULL); /* else answered by on_settled */
        return;
    }
    z->api->batch_release(er->batch);
    const syc_answer_t *a = syc_answer_for(rc);
    char body[200];
    snprintf(body, sizeof(body), "%s\n", a->message);
    respond(z, req, a->http_status, body, a->retry ? "Retry-After: 1\r\n" : NULL);
}

static void on_refused(void *arg, syc_http_request_t *req, int status, const char *message)
{
    zipkin_t *z = arg;
    char why[300];
    if (status == 401) {
        char extra[300];
        respond(z, req, 401, SYC_AUTH_UNAUTHORIZED_BODY,
                syc_auth_guard_challenge(&z->auth, extra, sizeof(extra)));
        return;
    }
    snprintf(why, sizeof(why), "%s (max_request_body_size is %zu bytes)", message, z->max_body);
    refuse(z, req, status, why);
}

static int zipkin_validate(const void *config, char *err, size_t err_len)
{
    const zipkin_config_t *c = config;
    char why[300];
    if (syc_http_endpoint_check(c->endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "endpoint: %s", why);
        return SY_EINVAL;
    }
    return syc_tls_server_cfg_check(&c->tls, "tls", err, err_len);
}

static int zipkin_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                         void **state)
{
    zipkin_t *z = calloc(1, sizeof(*z));
    if (!z) return SY_ENOMEM;
    z->api = api;
    z->inst = inst;
    z->cfg = config;
    z->max_body = z->cfg->max_body ? (size_t)z->cfg->max_body : (size_t)20 << 20;
    z->m_requests = api->metric_register(inst, "receiver_zipkin_requests",
                                         "Zipkin HTTP requests answered.", SY_METRIC_COUNTER);
    z->m_failed = api->metric_register(inst, "receiver_zipkin_failed_requests",
                                       "Zipkin HTTP requests answered with another status than "
                                       "202.",
                                       SY_METRIC_COUNTER);
    z->m_invalid = api->metric_register(inst, "receiver_zipkin_invalid_requests",
                                        "Zipkin HTTP requests refused as bad input (400, 413, "
                                        "415).",
                                        SY_METRIC_COUNTER);
    z->m_auth_failed = api->metric_register(inst, "receiver_zipkin_auth_failures",
                                            "Zipkin HTTP requests answered 401: their "
                                            "authenticator refused them.",
                                            SY_METRIC_COUNTER);
    z->m_settle_timeouts = api->metric_register(
        inst, "receiver_zipkin_settle_timeouts",
        "Requests answered 503 because their spans were not written to the persistent queue "
        "within settle_timeout.",
        SY_METRIC_COUNTER);
    z->m_settle_failed = api->metric_register(
        inst, "receiver_zipkin_settle_failed",
        "Requests answered 503 because an exporter failed or gave up their spans before they "
        "were written, or the receiver stopped first.",
        SY_METRIC_COUNTER);
    syc_settle_init(&z->settle, api, inst, z->cfg->settle_timeout, z->m_settle_timeouts,
                    z->m_settle_failed);
    syc_emit_wait_metrics(api, inst, "receiver_zipkin", "requests", &z->m_queue_waits,
                          &z->m_queue_wait_expired);
    syc_emit_wait_init(&z->emitq, api, inst, z->cfg->queue_wait, z->m_queue_waits,
                       z->m_queue_wait_expired);
    if (syc_tls_server_open(&z->tls, api, inst, &z->cfg->tls, "tls", true) != 0) {
        free(z);
        return SY_EINVAL;
    }
    *state = z;
    return SY_OK;
}

static int zipkin_start(void *state)
{
    zipkin_t *z = state;
    char err[512];
    if (syc_auth_guard_init(&z->auth, z->api, z->inst, "auth", z->cfg->authenticator,
                            z->m_auth_failed, "HTTP", "receiver_zipkin_auth_failures") != 0)
        return SY_ERROR;
    z->http = syc_http_server_start(z->api->loop(z->inst), z->cfg->endpoint, z->max_body,
                                    on_request, z, err, sizeof(err));
    if (!z->http) {
        SY_LOG(z->api, z->inst, SY_LOG_ERROR, "cannot start the HTTP server: %s", err);
        return SY_ERROR;
    }
    syc_http_server_set_error_handler(z->http, on_refused, z);
    syc_auth_guard_attach(&z->auth, z->http);
    syc_tls_server_attach(&z->tls, z->http);
    syc_http_server_set_idle_timeout(z->http, ZK_IDLE_TIMEOUT_MS);
    SY_LOG(z->api, z->inst, SY_LOG_INFO, "Starting HTTP server on endpoint %s (port %d)",
           z->cfg->endpoint, syc_http_server_port(z->http));
    return SY_OK;
}

static void on_closed(void *arg)
{
    zipkin_t *z = arg;
    z->http = NULL;
    z->closing = false;
}

static void zipkin_shutdown(void *state)
{
    zipkin_t *z = state;
    syc_tls_server_stop(&z->tls);
    syc_emit_wait_close(&z->emitq); /* held requests: answered 503, then the settle waits */
    syc_settle_close(&z->settle);   /* answers 503 to the requests still waiting */
    if (!z->http || z->closing) return;
    z->closing = true;
    syc_http_server_close(z->http, on_closed, z);
}

static void zipkin_destroy(void *state)
{
    zipkin_t *z = state;
    if (z) syc_tls_server_free(&z->tls);
    free(z);
}

static const sy_plugin_t zipkin_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "zipkin",
    .signals = SY_SIGNAL_TRACES,
    .version = "0.1.0",
    .description = "Receives Zipkin spans over HTTP (v2 JSON and protobuf, v1 JSON, gzip) and "
                   "translates them into OTLP.",
    .config_fields = zipkin_fields,
    .config_field_count = sizeof(zipkin_fields) / sizeof(zipkin_fields[0]),
    .config_size = sizeof(zipkin_config_t),
    .validate = zipkin_validate,
    .create = zipkin_create,
    .start = zipkin_start,
    .shutdown = zipkin_shutdown,
    .destroy = zipkin_destroy,
};

SY_PLUGIN_DEFINE(zipkin_plugin)
