/*
 * jaeger_http.c - thrift_http: the Jaeger collector's HTTP endpoint, answering as
 * the collector's jaeger receiver does:
 *
 *   POST /api/traces, Content-Type application/x-thrift or
 *   application/vnd.apache.thrift.binary (parameters allowed), body a Thrift
 *   binary-protocol Batch:
 *     202  accepted (no body)
 *     400  "Cannot parse content type: ...", "Unsupported content type: ...",
 *          "Unable to process request body: ..." (the collector's sentences)
 *     401  refused by protocols.thrift_http.auth's authenticator (before the
 *          body is read; "Unauthorized", WWW-Authenticate when it has a challenge)
 *     413  body over max_request_body_size
 *     429  the pipeline's queue is full (Retry-After: 1); the collector answers
 *          500 here, having no back-pressure of its own
 *     503  the router is shutting down (Retry-After: 1)
 *   other method: 405; other path: 404.
 *
 * Requests are decoded on the loop thread: a body is at most max_request_body_size
 * and decoding is linear in its length.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "answer.h"
#include "jaeger.h"

#define API_TRACES "/api/traces"

static void respond(jaeger_state_t *st, syc_http_request_t *req, int status, const char *text,
                    const char *extra)
{
    st->api->metric_add(st->m_http_requests, 1);
    if (status != 202) {
        st->api->metric_add(st->m_http_failed, 1);
        jaeger_ratelog(st, &st->log_http, "thrift_http: answered %d to %s %s: %s", status,
                       req->method, req->path, text);
    }
    syc_http_respond(req, status, text ? "text/plain; charset=utf-8" : NULL, extra, text,
                     text ? strlen(text) : 0);
}

/* mime.ParseMediaType's media type: trimmed, lower case, without parameters.
 * Returns false when there is none. */
static bool media_type(const char *ct, char *out, size_t out_len)
{
    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= out_len) return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)ct[i]);
    out[n] = '\0';
    return true;
}

static void on_request(void *arg, syc_http_request_t *req)
{
    jaeger_state_t *st = arg;
    char msg[512], type[128];
    if (strcmp(req->path, API_TRACES) != 0) {
        respond(st, req, 404, "404 page not found\n", NULL);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        respond(st, req, 405, "405 method not allowed\n", "Allow: POST\r\n");
        return;
    }
    if (!media_type(req->content_type, type, sizeof(type))) {
        respond(st, req, 400, "Cannot parse content type: mime: no media type\n", NULL);
        return;
    }
    if (strcmp(type, "application/x-thrift") != 0 &&
        strcmp(type, "application/vnd.apache.thrift.binary") != 0) {
        snprintf(msg, sizeof(msg), "Unsupported content type: %.100s\n", type);
        respond(st, req, 400, msg, NULL);
        return;
    }
    jaeger_outcome_t out = {.settle_req = req};
    jaeger_emit(st, &st->http_scratch, TH_PROTO_BINARY, false, 0, req->body, req->body_len, &out);
    if (out.rc == SYC_EMIT_PARKED) return; /* held for room: jaeger_http_emitted() answers */
    if (out.rc == SY_OK) {
        if (!out.wait) respond(st, req, 202, NULL, NULL); /* else: jaeger_http_settled */
        return;
    }
    if (out.rc == SY_EINVAL) {
        snprintf(msg, sizeof(msg), "Unable to process request body: %s\n", out.err);
        respond(st, req, 400, msg, NULL);
        return;
    }
    const syc_answer_t *a = syc_answer_for(out.rc);
    snprintf(msg, sizeof(msg), "Cannot submit Jaeger batch: %s\n",
             out.err[0] ? out.err : a->message);
    respond(st, req, a->http_status, msg, a->retry ? "Retry-After: 1\r\n" : NULL);
}

void jaeger_http_emitted(const syc_emit_req_t *er, int rc)
{
    jaeger_state_t *st = er->owner;
    syc_http_request_t *req = er->ctx;
    syc_settle_emitted(er->aux, rc);
    if (rc == SY_OK) {
        if (!er->aux) respond(st, req, 202, NULL, NULL); /* else: jaeger_http_settled */
        return;
    }
    st->api->batch_release(er->batch);
    const syc_answer_t *a = syc_answer_for(rc);
    char msg[300];
    snprintf(msg, sizeof(msg), "Cannot submit Jaeger batch: %s\n", a->message);
    respond(st, req, a->http_status, msg, a->retry ? "Retry-After: 1\r\n" : NULL);
}

void jaeger_http_settled(void *owner, void *ctx, int tag, int status)
{
    jaeger_state_t *st = owner;
    syc_http_request_t *req = ctx;
    (void)tag;
    if (status == SY_OK) {
        respond(st, req, 202, NULL, NULL);
        return;
    }
    respond(st, req, 503,
            status == SYC_SETTLE_TIMEDOUT
                ? "Cannot submit Jaeger batch: the spans were not written to the persistent "
                  "queue within settle_timeout\n"
                : "Cannot submit Jaeger batch: the spans could not be written to the persistent "
                  "queue\n",
            "Retry-After: 1\r\n");
}

/* The server refused a request by itself (a body over max_request_body_size). */
static void on_refused(void *arg, syc_http_request_t *req, int status, const char *message)
{
    jaeger_state_t *st = arg;
    char msg[300];
    if (status == 401) {
        char extra[300];
        respond(st, req, 401, SYC_AUTH_UNAUTHORIZED_BODY,
                syc_auth_guard_challenge(&st->http_auth, extra, sizeof(extra)));
        return;
    }
    snprintf(msg, sizeof(msg), "%s (max_request_body_size is %llu bytes)\n", message,
             (unsigned long long)st->cfg->http_max_body);
    respond(st, req, status, msg, NULL);
}

int jaeger_http_start(jaeger_state_t *st)
{
    char err[512];
    uv_loop_t *loop = st->api->loop(st->inst);
    if (syc_auth_guard_init(&st->http_auth, st->api, st->inst, "protocols.thrift_http.auth",
                            st->cfg->http_authenticator, st->m_http_auth_failed, "thrift_http",
                            "receiver_jaeger_thrift_http_auth_failures") != 0)
        return SY_ERROR;
    st->http = syc_http_server_start(loop, st->cfg->http_endpoint, (size_t)st->cfg->http_max_body,
                                     on_request, st, err, sizeof(err));
    if (!st->http) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "cannot start the thrift_http server: %s", err);
        return SY_ERROR;
    }
    syc_http_server_set_error_handler(st->http, on_refused, st);
    syc_auth_guard_attach(&st->http_auth, st->http);
    syc_tls_server_attach(&st->http_tls, st->http);
    syc_http_server_set_idle_timeout(st->http, 60000);
    SY_LOG(st->api, st->inst, SY_LOG_INFO,
           "Starting HTTP server for Jaeger Thrift on endpoint %s "
           "(port %d)",
           st->cfg->http_endpoint, syc_http_server_port(st->http));
    return SY_OK;
}

static void on_closed(void *arg)
{
    jaeger_state_t *st = arg;
    st->http = NULL;
    st->http_closing = false;
}

void jaeger_http_shutdown(jaeger_state_t *st)
{
    syc_tls_server_stop(&st->http_tls);
    syc_emit_wait_close(&st->http_emitq); /* held requests: 503, before the settle waits */
    syc_settle_close(&st->http_settle);   /* answers 503 to the requests still waiting */
    if (!st->http || st->http_closing) return;
    st->http_closing = true;
    syc_http_server_close(st->http, on_closed, st);
}
