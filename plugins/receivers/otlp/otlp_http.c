/*
 * otlp_http.c - OTLP/HTTP for the otlp receiver, answering as the collector's
 * otlpreceiver does:
 *
 *   POST <path> with application/x-protobuf or application/json (parameters
 *   allowed), optionally Content-Encoding gzip, deflate or zstd:
 *     200  Export<Signal>ServiceResponse in the request's type (protobuf: no bytes,
 *          JSON: "{}")
 *     400  unknown Content-Encoding, corrupt compression, undecodable body, a
 *          string that is not valid UTF-8
 *     413  body over max_request_body_size, before or after decompression; more
 *          than max_items_per_request items; too large to decode within the
 *          core's bound (RESOURCE_EXHAUSTED in the Status)
 *     429  the pipeline's queue is full (Retry-After: 1)
 *     503  the router is shutting down (Retry-After: 1)
 *   other method: 405 with Allow: POST; other content type: 415; other path: 404.
 *
 * Error bodies are a google.rpc.Status in the request's content type, with the gRPC
 * code matching the HTTP status (InvalidArgument 3, ResourceExhausted 8,
 * Unavailable 14, Internal 13).
 *
 * A protobuf body is copied (or decompressed) into the batch's arena and handed
 * over encoded: the core validates it and counts its items without decoding. A
 * JSON body is decoded into the batch's arena.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "answer.h"
#include "compress.h"
#include "grpc_frame.h"
#include "otlp.h"
#include "otlp_json.h"
#include "otlp_settle.h"
#include "signals.h"

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON     "application/json"
#define NS_PER_MS   1000000

/* gRPC status codes used in error bodies. */

typedef enum body_type_e { BODY_OTHER = 0, BODY_PROTOBUF, BODY_JSON } body_type_t;

static const ProtobufCMessageDescriptor *request_descriptor(int signal_index)
{
    return syc_signal_by_index(signal_index)->request;
}

/* The media type of a Content-Type header, parameters and case ignored. */
static body_type_t body_type(const char *content_type)
{
    if (!content_type) return BODY_OTHER;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    if (n == strlen(CT_PROTOBUF) && strncasecmp(content_type, CT_PROTOBUF, n) == 0)
        return BODY_PROTOBUF;
    if (n == strlen(CT_JSON) && strncasecmp(content_type, CT_JSON, n) == 0) return BODY_JSON;
    return BODY_OTHER;
}

/* ------------------------------------------------------------------------ */
/* CORS                                                                      */
/* ------------------------------------------------------------------------ */

/* Matches an origin against a pattern where '*' stands for any run of characters. */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (tolower((unsigned char)*pat) == tolower((unsigned char)*s)) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

static bool origin_allowed(const otlp_state_t *st, const char *origin)
{
    if (!origin) return false;
    for (size_t i = 0; i < st->cfg->cors_origins.count; i++)
        if (glob_match(st->cfg->cors_origins.items[i], origin)) return true;
    return false;
}

static bool header_allowed(const otlp_state_t *st, const char *name, size_t len)
{
    static const char *const simple[] = {"accept", "content-type", "origin", "x-requested-with",
                                         "content-encoding"};
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
        if (strlen(simple[i]) == len && strncasecmp(simple[i], name, len) == 0) return true;
    for (size_t i = 0; i < st->cfg->cors_headers.count; i++) {
        const char *h = st->cfg->cors_headers.items[i];
        if (strcmp(h, "*") == 0 || (strlen(h) == len && strncasecmp(h, name, len) == 0))
            return true;
    }
    return false;
}

/* Answers an OPTIONS preflight: 204, with the CORS headers when it is allowed. */
static void answer_preflight(otlp_state_t *st, syc_http_request_t *req)
{
    char hdrs[2048];
    size_t n = 0;
    bool ok = origin_allowed(st, req->origin) && req->access_control_request_method &&
              strcasecmp(req->access_control_request_method, "POST") == 0 &&
              strlen(req->origin) < 1024;
    const char *rh = req->access_control_request_headers;
    if (ok && rh) {
        /* Every requested header must be allowed. */
        const char *p = rh;
        while (*p && ok) {
            while (*p == ' ' || *p == ',')
                p++;
            size_t len = strcspn(p, ", ");
            if (len > 0 && !header_allowed(st, p, len)) ok = false;
            p += len;
        }
        if (strlen(rh) > 512) ok = false;
    }
    if (ok) {
        n += (size_t)snprintf(hdrs + n, sizeof(hdrs) - n,
                              "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                              "Access-Control-Allow-Methods: POST\r\n",
                              req->origin);
        if (rh && *rh)
            n += (size_t)snprintf(hdrs + n, sizeof(hdrs) - n,
                                  "Access-Control-Allow-Headers: %s\r\n", rh);
        if (st->cfg->cors_max_age > 0)
            n += (size_t)snprintf(hdrs + n, sizeof(hdrs) - n, "Access-Control-Max-Age: %lld\r\n",
                                  (long long)st->cfg->cors_max_age);
    }
    hdrs[n < sizeof(hdrs) ? n : sizeof(hdrs) - 1] = '\0';
    syc_http_respond(req, 204, NULL, n ? hdrs : NULL, NULL, 0);
}

/* The CORS header of an actual (non-preflight) answer, or "". */
static void cors_headers(const otlp_state_t *st, const syc_http_request_t *req, char *out,
                         size_t out_len)
{
    out[0] = '\0';
    if (st->cfg->cors_origins.count && origin_allowed(st, req->origin) &&
        strlen(req->origin) < 1024)
        snprintf(out, out_len, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", req->origin);
}

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

static void respond(otlp_state_t *st, syc_http_request_t *req, int status, const char *ctype,
                    const char *extra, const void *body, size_t len)
{
    char hdrs[1400];
    cors_headers(st, req, hdrs, sizeof(hdrs) - 64);
    if (extra) strncat(hdrs, extra, sizeof(hdrs) - strlen(hdrs) - 1);
    st->api->metric_add(st->m_requests, 1);
    if (status != 200) st->api->metric_add(st->m_failed, 1);
    syc_http_respond(req, status, ctype, hdrs[0] ? hdrs : NULL, body, len);
}

static void respond_text(otlp_state_t *st, syc_http_request_t *req, int status, const char *text,
                         const char *extra)
{
    respond(st, req, status, "text/plain", extra, text, strlen(text));
}

/* Answers an error as a google.rpc.Status in the request's content type. */
static void respond_status(otlp_state_t *st, syc_http_request_t *req, body_type_t type,
                           int http_status, int grpc_code, const char *message, const char *extra)
{
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = grpc_code;
    status.message = (char *)message;
    if (type == BODY_PROTOBUF) {
        uint8_t buf[1200];
        size_t need = google__rpc__status__get_packed_size(&status);
        if (need > sizeof(buf)) { /* messages are short; keep the answer bounded */
            status.message = (char *)"error message too long";
            need = google__rpc__status__get_packed_size(&status);
        }
        size_t len = google__rpc__status__pack(&status, buf);
        respond(st, req, http_status, CT_PROTOBUF, extra, buf, len);
        return;
    }
    size_t len = 0;
    char *json = syc_otlp_json_encode(&status.base, &len);
    if (!json) {
        static const char fallback[] = "{\"code\":13,\"message\":\"failed to marshal error "
                                       "message\"}";
        respond(st, req, 500, CT_JSON, NULL, fallback, sizeof(fallback) - 1);
        return;
    }
    respond(st, req, http_status, CT_JSON, extra, json, len);
    free(json);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct arena_ctx_s {
    const sy_host_api_t *api;
    sy_batch_t *batch;
} arena_ctx_t;

static void *arena_alloc(void *ctx, size_t size)
{
    arena_ctx_t *a = ctx;
    return a->api->batch_alloc(a->batch, size);
}

/* Keeps the compressed body as the batch's twin (ABI 1.7), so that an exporter
 * compressing the same way sends it as it came (docs/architecture.md, "The
 * compressed twin"): in place when the server read it into the batch, else
 * copied (a fraction of the request's size). Without room, the batch goes on
 * without a twin. */
static void keep_twin(otlp_state_t *st, const syc_http_request_t *req, sy_batch_t *batch, int sig,
                      syc_encoding_t enc, const uint8_t *zdata, size_t zlen)
{
    const sy_host_api_t *api = st->api;
    if (zlen == 0 || !otlp_twin_wanted(st, sig)) return;
    if (!req->body_owner) {
        uint8_t *copy = api->batch_alloc(batch, zlen);
        if (!copy) return;
        memcpy(copy, zdata, zlen);
        zdata = copy;
    }
    api->batch_set_compressed(batch, syc_encoding_name(enc), zdata, zlen);
}

/* Decodes the body into `batch`. Returns 0, or the HTTP status to answer with a
 * message in err. A body the server read into the batch's own memory
 * (req->body_owner, see body_alloc()) is taken as it is. */
static int fill_batch(otlp_state_t *st, syc_http_request_t *req, body_type_t type, int sig,
                      sy_batch_t *batch, char *err, size_t err_len)
{
    const sy_host_api_t *api = st->api;
    syc_encoding_t enc = syc_encoding_parse(req->content_encoding);
    const uint8_t *data = req->body;
    size_t len = req->body_len;

    if (enc == SYC_ENCODING_UNKNOWN) {
        snprintf(err, err_len, "unsupported Content-Encoding \"%.64s\"", req->content_encoding);
        return 400;
    }
    const uint8_t *zdata = NULL; /* the compressed body, kept as the batch's twin */
    size_t zlen = 0;
    if (enc != SYC_ENCODING_IDENTITY) {
        arena_ctx_t actx = {api, batch};
        uint8_t *out;
        int rc = syc_decompress(enc, data, len, st->max_body, arena_alloc, &actx, &out, &len, err,
                                err_len);
        if (rc == SY_ENOMEM) return 413;
        if (rc != 0) return 400;
        if (type == BODY_PROTOBUF && syc_encoding_twin(enc)) {
            zdata = data;
            zlen = req->body_len;
        }
        data = out;
    } else if (type == BODY_PROTOBUF && !req->body_owner) {
        /* The encoded request is forwarded as is: its bytes must live in the batch. */
        uint8_t *copy = api->batch_alloc(batch, len ? len : 1);
        if (!copy) {
            snprintf(err, err_len, "out of memory");
            return 500;
        }
        memcpy(copy, data, len);
        data = copy;
    }

    if (type == BODY_PROTOBUF) {
        int rc = api->batch_set_encoded(batch, data, len, err, err_len);
        if (rc == SY_ENOMEM) return 413;
        if (rc != 0) return 400;
        if (zdata) keep_twin(st, req, batch, sig, enc, zdata, zlen);
        return otlp_check_items(st, batch, err, err_len) == 0 ? 0 : 413;
    }
    /* JSON becomes the encoded request, in the batch's arena: from here on it is
     * validated, counted and forwarded like a protobuf body, strings whole. */
    size_t wire_len;
    uint8_t *wire = syc_otlp_json_to_wire(request_descriptor(sig), data, len,
                                          api->batch_allocator(batch), &wire_len, err, err_len);
    if (!wire) return 400;
    int rc = api->batch_set_encoded(batch, wire, wire_len, err, err_len);
    if (rc == SY_ENOMEM) return 413;
    if (rc != 0) return 400;
    return otlp_check_items(st, batch, err, err_len) == 0 ? 0 : 413;
}

/* The answer of a request that waited for its data to be settled (otlp_settle.c):
 * 200 as usual, or 503 with Retry-After (the client sends it again: a duplicate
 * at worst, never a loss). Loop thread. */
static void http_settled(void *owner, void *ctx, int tag, int status)
{
    otlp_state_t *st = owner;
    syc_http_request_t *req = ctx;
    body_type_t type = (body_type_t)tag;
    if (status == SY_OK) {
        if (type == BODY_PROTOBUF)
            respond(st, req, 200, CT_PROTOBUF, NULL, NULL, 0);
        else
            respond(st, req, 200, CT_JSON, NULL, "{}", 2);
        return;
    }
    respond_status(st, req, type, 503, SYC_GRPC_UNAVAILABLE,
                   status == SY_ETIMEDOUT
                       ? "the data was not written to the persistent queue within settle_timeout"
                       : "the data could not be written to the persistent queue",
                   "Retry-After: 1\r\n");
}

static void answer_refusal(otlp_state_t *st, syc_http_request_t *req, body_type_t type,
                           const syc_answer_t *a)
{
    respond_status(st, req, type, a->http_status, a->grpc_code, a->message,
                   a->retry ? "Retry-After: 1\r\n" : NULL);
}

/* The second half of an export, once emit() (perhaps after a wait for room)
 * took the batch or refused it. Loop thread. */
static void http_emitted(const syc_emit_req_t *er, int rc)
{
    otlp_state_t *st = er->owner;
    syc_http_request_t *req = er->ctx;
    body_type_t type = (body_type_t)er->tag;
    otlp_settle_emitted(er->aux, rc);
    if (rc == SY_OK) {
        if (er->aux) return; /* answered once settled (http_settled) */
        if (type == BODY_PROTOBUF)
            respond(st, req, 200, CT_PROTOBUF, NULL, NULL, 0);
        else
            respond(st, req, 200, CT_JSON, NULL, "{}", 2);
        return;
    }
    st->api->batch_release(er->batch);
    answer_refusal(st, req, type, syc_answer_for(rc));
}

static void handle_export(otlp_state_t *st, syc_http_request_t *req, body_type_t type, int sig)
{
    const sy_host_api_t *api = st->api;
    char err[512] = "";
    /* The batch the body was read into (the server gave it to us), or a new one. */
    sy_batch_t *batch =
        req->body_owner ? req->body_owner : api->batch_new(st->inst, otlp_signal_at(sig));
    if (!batch) {
        respond_status(st, req, type, 503, SYC_GRPC_UNAVAILABLE, "out of memory",
                       "Retry-After: 1\r\n");
        return;
    }
    int status = fill_batch(st, req, type, sig, batch, err, sizeof(err));
    if (status != 0) {
        api->batch_release(batch);
        SY_LOG(api, st->inst, SY_LOG_DEBUG, "refused a request on %s (%d): %s", req->path, status,
               err);
        respond_status(st, req, type, status,
                       syc_answer_for(status == 500   ? SY_ERROR
                                      : status == 413 ? SY_ENOMEM
                                                      : SY_EINVAL)
                           ->grpc_code,
                       err, NULL);
        return;
    }
    syc_emit_req_t er = {.batch = batch, .owner = st, .ctx = req, .tag = (int)type};
    er.aux = otlp_settle_begin(st, batch, http_settled, req, (int)type);
    syc_emit_park_t *park;
    int rc = otlp_emit(st, &er, http_emitted, &park);
    if (rc != SYC_EMIT_PARKED) http_emitted(&er, rc);
    /* Held (queue_wait): http_emitted() answers once the queue took it, or not.
     * The request stays valid until it is answered, its client gone or not. */
}

/* The signal whose path the request names, or -1. */
static int signal_of(const otlp_state_t *st, const syc_http_request_t *req)
{
    int sig = -1;
    uint32_t wanted = st->api->signals(st->inst);
    for (int i = 0; i < OTLP_SIGNALS; i++)
        if ((wanted & otlp_signal_at(i)) && strcmp(req->path, st->paths[i]) == 0) sig = i;
    return sig;
}

/* A CORS preflight is answered without credentials (browsers never send them with
 * it), as the collector does. */
static bool is_preflight(const otlp_state_t *st, const syc_http_request_t *req, int sig)
{
    return sig >= 0 && strcmp(req->method, "OPTIONS") == 0 && st->cfg->cors_origins.count;
}

/* With an authenticator: every request is authenticated from its headers before
 * any of its body is read; a refusal is answered 401 by on_refused(). */
static int check_head(void *arg, const syc_http_request_t *req)
{
    otlp_state_t *st = arg;
    if (is_preflight(st, req, signal_of(st, req)) ||
        syc_auth_guard_check(&st->http_auth, req->headers, req->nheaders))
        return 0;
    return 401;
}

/* The 401 answer: it says nothing about what was wrong, and repeats nothing that
 * was sent. */
static void respond_unauthorized(otlp_state_t *st, syc_http_request_t *req)
{
    char extra[300];
    respond_text(st, req, 401, SYC_AUTH_UNAUTHORIZED_BODY,
                 syc_auth_guard_challenge(&st->http_auth, extra, sizeof(extra)));
}

/* Whether the body of this request is kept in its batch as it is: protobuf, to a
 * path of ours, by POST, not compressed (the request forwarded) or compressed in
 * a format the batch keeps as its twin (the compressed bytes forwarded). */
static bool body_kept(const otlp_state_t *st, const syc_http_request_t *req, int sig)
{
    if (sig < 0 || strcmp(req->method, "POST") != 0 ||
        body_type(req->content_type) != BODY_PROTOBUF)
        return false;
    syc_encoding_t enc = syc_encoding_parse(req->content_encoding);
    return enc == SYC_ENCODING_IDENTITY || (syc_encoding_twin(enc) && otlp_twin_wanted(st, sig));
}

/* The server's body_alloc: a body that is forwarded as it is goes straight into
 * the memory of the batch that will carry it (one copy less per request: the
 * socket is read into the batch). */
static void *body_alloc(void *arg, const syc_http_request_t *req, size_t len, void **owner)
{
    otlp_state_t *st = arg;
    int sig = signal_of(st, req);
    if (!body_kept(st, req, sig)) return NULL;
    sy_batch_t *batch = st->api->batch_new(st->inst, otlp_signal_at(sig));
    void *mem = batch ? st->api->batch_alloc(batch, len) : NULL;
    if (!mem) {
        if (batch) st->api->batch_release(batch);
        return NULL;
    }
    *owner = batch;
    return mem;
}

static void body_release(void *arg, void *owner)
{
    otlp_state_t *st = arg;
    st->api->batch_release(owner);
}

static void on_request(void *arg, syc_http_request_t *req)
{
    otlp_state_t *st = arg;
    if (req->body_owner) { /* the batch the body was read into */
        handle_export(st, req, BODY_PROTOBUF, signal_of(st, req));
        return;
    }
    int sig = signal_of(st, req);
    if (is_preflight(st, req, sig)) {
        st->api->metric_add(st->m_requests, 1);
        answer_preflight(st, req);
        return;
    }
    if (sig < 0) {
        respond_text(st, req, 404, "404 page not found\n", NULL);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        respond_text(st, req, 405, "405 method not allowed, supported: [POST]", "Allow: POST\r\n");
        return;
    }
    body_type_t type = body_type(req->content_type);
    if (type == BODY_OTHER) {
        respond_text(st, req, 415,
                     "415 unsupported media type, supported: [" CT_JSON ", " CT_PROTOBUF "]", NULL);
        return;
    }
    handle_export(st, req, type, sig);
}

/* The server refused a request by itself (body over the limit). */
static void on_refused(void *arg, syc_http_request_t *req, int status, const char *message)
{
    otlp_state_t *st = arg;
    if (status == 401) {
        respond_unauthorized(st, req);
        return;
    }
    body_type_t type = body_type(req->content_type);
    char msg[256];
    const char *retry = status == 503 ? "Retry-After: 1\r\n" : NULL;
    int code = SYC_GRPC_INVALID_ARGUMENT;
    if (status == 413)
        snprintf(msg, sizeof(msg), "%s (max_request_body_size is %zu bytes)", message,
                 st->max_body);
    else if (status == 503)
        snprintf(msg, sizeof(msg), "%s (%llu bytes); retry later", message,
                 (unsigned long long)st->cfg->http_max_inflight);
    else
        snprintf(msg, sizeof(msg), "%s", message);
    if (status == 503) code = SYC_GRPC_UNAVAILABLE;
    if (status == 408) code = SYC_GRPC_DEADLINE_EXCEEDED;
    if (type == BODY_OTHER)
        respond_text(st, req, status, msg, retry);
    else
        respond_status(st, req, type, status, code, msg, retry);
}

static void on_guard(void *arg, syc_http_guard_t which)
{
    otlp_state_t *st = arg;
    st->api->metric_add(st->m_http_guard[which], 1);
}

int otlp_http_start(otlp_state_t *st)
{
    char err[512];
    uv_loop_t *loop = st->api->loop(st->inst);
    st->http = syc_http_server_start(loop, st->cfg->http_endpoint, st->max_body, on_request, st,
                                     err, sizeof(err));
    if (!st->http) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "cannot start the HTTP server: %s", err);
        return SY_ERROR;
    }
    syc_http_server_set_error_handler(st->http, on_refused, st);
    syc_http_server_set_body_alloc(st->http, body_alloc, body_release, st);
    syc_tls_server_attach(&st->http_tls, st->http);
    if (syc_auth_guard_on(&st->http_auth)) {
        syc_http_server_keep_all_headers(st->http, true);
        syc_http_server_set_head_check(st->http, check_head, st);
    }
    const otlp_config_t *cfg = st->cfg;
    syc_http_limits_t lim = {
        .read_header_ms = (uint64_t)cfg->http_read_header_timeout / NS_PER_MS,
        .read_ms = (uint64_t)cfg->http_read_timeout / NS_PER_MS,
        .idle_ms = (uint64_t)cfg->http_idle_timeout / NS_PER_MS,
        .max_connections = (size_t)cfg->http_max_connections,
        .max_inflight_bytes = (size_t)cfg->http_max_inflight,
        .guard = on_guard,
        .guard_arg = st,
    };
    syc_http_server_set_limits(st->http, &lim);
    SY_LOG(st->api, st->inst, SY_LOG_INFO, "Starting HTTP server on endpoint %s (port %d)",
           st->cfg->http_endpoint, syc_http_server_port(st->http));
    return 0;
}

static void on_http_closed(void *arg)
{
    otlp_state_t *st = arg;
    st->http = NULL;
    st->http_closing = false;
}

void otlp_http_shutdown(otlp_state_t *st)
{
    syc_tls_server_stop(&st->http_tls);
    if (!st->http || st->http_closing) return;
    st->http_closing = true;
    syc_http_server_close(st->http, on_http_closed, st);
}
