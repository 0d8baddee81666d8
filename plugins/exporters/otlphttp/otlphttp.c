/*
 * otlphttp.c - the `otlphttp` exporter (also built as `otlp_http`, the collector's
 * name since v0.144): OTLP/HTTP POSTs of protobuf or JSON to <endpoint>/v1/<signal>.
 *
 * Transfers run on libcurl's multi interface on the exporter's loop
 * (core/common/curl_uv.c); queueing, retries and outcomes are the shared
 * exporterhelper's. The protobuf body is the batch's encoded bytes, forwarded as
 * they arrived (never decoded here); JSON is encoded from the decoded request.
 *
 * Status handling as the OTLP specification says: 2xx is success (a
 * partial_success in the body is logged and its rejected items counted as failed);
 * 429, 502, 503 and 504 are retried, after Retry-After when the server sends one;
 * every other status is permanent: the batch is dropped, logged and counted.
 * Failures without an answer (connection refused, timeout) are retried.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "curl_uv.h"
#include "exporterhelper.h"
#include "otlp_json.h"

#ifndef OTLPHTTP_TYPE
#define OTLPHTTP_TYPE "otlphttp"
#endif

enum { ENCODING_PROTO = 0, ENCODING_JSON = 1 };

typedef struct otlphttp_config_s {
    char *endpoint;
    char *traces_endpoint;
    char *metrics_endpoint;
    char *logs_endpoint;
    sy_cfg_strmap_t headers;
    int compression;
    int encoding;
    sy_tls_client_t tls;
    sy_xh_config_t xh;
} otlphttp_config_t;

static const char *const encoding_names[] = {"proto", "json", NULL};

static const sy_config_field_t otlphttp_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlphttp_config_t, endpoint),
     .description = "Base URL (http:// or https://); /v1/traces, /v1/metrics and /v1/logs are "
                    "appended."},
    {.name = "traces_endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlphttp_config_t, traces_endpoint),
     .description = "Full URL for traces, instead of <endpoint>/v1/traces."},
    {.name = "metrics_endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlphttp_config_t, metrics_endpoint),
     .description = "Full URL for metrics, instead of <endpoint>/v1/metrics."},
    {.name = "logs_endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlphttp_config_t, logs_endpoint),
     .description = "Full URL for logs, instead of <endpoint>/v1/logs."},
    {.name = "headers",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(otlphttp_config_t, headers),
     .description = "Headers added to every request."},
    {.name = "compression",
     .type = SY_CFG_ENUM,
     .offset = offsetof(otlphttp_config_t, compression),
     .default_value = "gzip",
     .enum_values = sy_xh_compression_names,
     .description = "Content-Encoding of the requests: gzip, zstd or none."},
    {.name = "encoding",
     .type = SY_CFG_ENUM,
     .offset = offsetof(otlphttp_config_t, encoding),
     .default_value = "proto",
     .enum_values = encoding_names,
     .description = "Body encoding: proto (application/x-protobuf) or json (OTLP/JSON)."},
    SY_XH_TLS_FIELDS(otlphttp_config_t, tls),
    SY_XH_CONFIG_FIELDS(otlphttp_config_t, xh),
};

/* Per request: the body (built once, kept for every attempt) and the exchange. */
typedef struct hreq_s {
    sy_curl_exchange_t x;
    bool x_ready;
    const uint8_t *body;
    size_t body_len;
    uint8_t *owned; /* the body when it is not the batch's own bytes */
} hreq_t;

typedef struct otlphttp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const otlphttp_config_t *cfg;
    sy_curl_uv_t *curl;
    sy_xh_t *xh;
    char *urls[3]; /* traces, metrics, logs */
    struct curl_slist *headers;
} otlphttp_t;

static int signal_index(sy_signal_t s)
{
    return s == SY_SIGNAL_TRACES ? 0 : s == SY_SIGNAL_METRICS ? 1 : 2;
}

static bool url_ok(const char *url)
{
    return url && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) &&
           strlen(url) < 4096;
}

static int otlphttp_validate(const void *config, char *err, size_t err_len)
{
    const otlphttp_config_t *c = config;
    const char *keys[4] = {"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"};
    const char *vals[4] = {c->endpoint, c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    bool any = false;
    for (int i = 0; i < 4; i++) {
        if (!vals[i] || !*vals[i]) continue;
        any = true;
        if (!url_ok(vals[i])) {
            snprintf(err, err_len, "'%s' must be an http:// or https:// URL, got \"%.100s\"",
                     keys[i], vals[i]);
            return SY_EINVAL;
        }
    }
    if (!any) {
        snprintf(err, err_len, "at least one endpoint must be specified");
        return SY_EINVAL;
    }
    for (size_t i = 0; i < c->headers.count; i++)
        if (strpbrk(c->headers.keys[i], ":\r\n") || strpbrk(c->headers.values[i], "\r\n")) {
            snprintf(err, err_len, "'headers': invalid header \"%.64s\"", c->headers.keys[i]);
            return SY_EINVAL;
        }
    return sy_xh_config_validate(&c->xh, err, err_len);
}

/* <endpoint>/v1/<signal>, or the signal's own URL; NULL when the signal has none. */
static char *signal_url(const otlphttp_config_t *c, int i)
{
    static const char *const paths[3] = {"v1/traces", "v1/metrics", "v1/logs"};
    const char *own[3] = {c->traces_endpoint, c->metrics_endpoint, c->logs_endpoint};
    if (own[i] && *own[i]) return strdup(own[i]);
    if (!c->endpoint || !*c->endpoint) return NULL;
    size_t n = strlen(c->endpoint);
    char *url = NULL;
    if (asprintf(&url, "%s%s%s", c->endpoint, n && c->endpoint[n - 1] == '/' ? "" : "/", paths[i]) <
        0)
        return NULL;
    return url;
}

/* ---- one request ------------------------------------------------------------------ */

static void on_done(void *arg, CURL *easy, CURLcode rc);

/* Builds the body once: the encoded bytes (or OTLP/JSON), compressed if asked. */
static int build_body(otlphttp_t *s, sy_xh_req_t *req, hreq_t *h)
{
    const uint8_t *raw;
    size_t raw_len;
    char *json = NULL;
    if (s->cfg->encoding == ENCODING_JSON) {
        const ProtobufCMessage *m = s->api->batch_request(req->batch);
        json = m ? sy_otlp_json_encode(m, &raw_len) : NULL;
        if (!json) return SY_ENOMEM;
        raw = (const uint8_t *)json;
    } else {
        raw = s->api->batch_encoded(req->batch, &raw_len);
        if (!raw) return SY_ENOMEM;
    }
    if (s->cfg->compression == SY_XH_COMPRESS_NONE) {
        h->body = raw;
        h->body_len = raw_len;
        h->owned = (uint8_t *)json;
        return SY_OK;
    }
    int rc = sy_xh_compress(s->cfg->compression, 0, raw, raw_len, &h->owned, &h->body_len);
    free(json);
    h->body = h->owned;
    return rc;
}

static int otlphttp_send(void *ctx, sy_xh_req_t *req)
{
    otlphttp_t *s = ctx;
    hreq_t *h = req->transport;
    const char *url = s->urls[signal_index(req->signal)];
    if (!url) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "no endpoint is configured for this signal");
        return SY_EINVAL;
    }
    if (!s->curl) return SY_ECLOSED;
    if (!h) {
        h = calloc(1, sizeof(*h));
        if (!h) return SY_ENOMEM;
        req->transport = h;
        if (build_body(s, req, h) < 0 || sy_curl_exchange_init(&h->x) < 0) return SY_ENOMEM;
        h->x_ready = true;
        CURL *e = h->x.easy;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)h->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "Switchyard/0.1.0");
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->cfg->xh.timeout_ns / 1000000));
        sy_curl_apply_tls(e, &s->cfg->tls);
    } else {
        sy_curl_exchange_clear(&h->x);
    }
    return sy_curl_uv_add(s->curl, h->x.easy, on_done, req);
}

static void on_done(void *arg, CURL *easy, CURLcode rc)
{
    sy_xh_req_t *req = arg;
    hreq_t *h = req->transport;
    otlphttp_t *s = sy_xh_req_ctx(req);
    sy_xh_result_t res = {.verdict = SY_XH_SENT, .retry_after_ms = -1};
    if (rc != CURLE_OK) {
        res.verdict = sy_curl_retryable(rc) ? SY_XH_RETRYABLE : SY_XH_PERMANENT;
        snprintf(res.message, sizeof(res.message), "Post \"%s\": %s",
                 s->urls[signal_index(req->signal)],
                 h->x.errbuf[0] ? h->x.errbuf : curl_easy_strerror(rc));
        sy_xh_attempt_done(req, &res);
        return;
    }
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    bool json = strstr(h->x.content_type, "json") != NULL;
    if (status >= 200 && status < 300) {
        if (sy_xh_partial_success(req->signal, h->x.body, h->x.body_len, json, &res.rejected,
                                  res.message, sizeof(res.message)) < 0)
            SY_LOG(s->api, s->inst, SY_LOG_DEBUG, "the %ld response's body does not decode",
                   status);
        sy_xh_attempt_done(req, &res);
        return;
    }
    char why[300];
    sy_xh_rpc_status(h->x.body, h->x.body_len, json, why, sizeof(why));
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        res.verdict = SY_XH_RETRYABLE;
        res.retry_after_ms = sy_curl_retry_after_ms(h->x.retry_after);
    } else {
        res.verdict = SY_XH_PERMANENT;
    }
    snprintf(res.message, sizeof(res.message), "HTTP %ld from %s%s%s", status,
             s->urls[signal_index(req->signal)], why[0] ? ": " : "", why);
    sy_xh_attempt_done(req, &res);
}

static void otlphttp_abort(void *ctx, sy_xh_req_t *req)
{
    otlphttp_t *s = ctx;
    hreq_t *h = req->transport;
    if (h && h->x_ready && s->curl) sy_curl_uv_cancel(s->curl, h->x.easy);
}

static void otlphttp_req_free(void *ctx, sy_xh_req_t *req)
{
    (void)ctx;
    hreq_t *h = req->transport;
    if (!h) return;
    if (h->x_ready) sy_curl_exchange_free(&h->x);
    free(h->owned);
    free(h);
    req->transport = NULL;
}

static const sy_xh_ops_t otlphttp_ops = {
    .send = otlphttp_send,
    .abort = otlphttp_abort,
    .req_free = otlphttp_req_free,
};

/* ---- the instance ------------------------------------------------------------------- */

static int otlphttp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                           void **state)
{
    const otlphttp_config_t *c = config;
    otlphttp_t *s = calloc(1, sizeof(*s));
    char err[256];
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = c;
    for (int i = 0; i < 3; i++)
        s->urls[i] = signal_url(c, i);
    const char *ctype = c->encoding == ENCODING_JSON ? "Content-Type: application/json"
                                                     : "Content-Type: application/x-protobuf";
    struct curl_slist *l = curl_slist_append(NULL, ctype);
    /* No "Expect: 100-continue" round trip before large bodies. */
    if (l) l = curl_slist_append(l, "Expect:");
    if (l && c->compression != SY_XH_COMPRESS_NONE)
        l = curl_slist_append(l, c->compression == SY_XH_COMPRESS_GZIP ? "Content-Encoding: gzip"
                                                                       : "Content-Encoding: zstd");
    for (size_t i = 0; l && i < c->headers.count; i++) {
        char *line = NULL;
        if (asprintf(&line, "%s: %s", c->headers.keys[i], c->headers.values[i]) < 0) {
            curl_slist_free_all(l);
            l = NULL;
            break;
        }
        struct curl_slist *n = curl_slist_append(l, line);
        free(line);
        if (!n) curl_slist_free_all(l);
        l = n;
    }
    s->headers = l;
    s->xh = sy_xh_new(api, inst, &c->xh, &otlphttp_ops, s, err, sizeof(err));
    if (!s->headers || !s->xh) {
        SY_LOG(api, inst, SY_LOG_ERROR, "could not create the exporter: %s",
               s->xh ? "out of memory" : err);
        goto fail;
    }
    *state = s;
    return SY_OK;
fail:
    sy_xh_free(s->xh);
    curl_slist_free_all(s->headers);
    for (int i = 0; i < 3; i++)
        free(s->urls[i]);
    free(s);
    return SY_ERROR;
}

/* Everything sent or given up: close curl's handles (the loop runs until they are). */
static void on_drained(void *arg)
{
    otlphttp_t *s = arg;
    if (!s->curl) return;
    sy_curl_uv_close(s->curl, NULL, NULL);
    s->curl = NULL;
}

static int otlphttp_start(void *state)
{
    otlphttp_t *s = state;
    char err[256];
    if (sy_xh_start(s->xh) < 0) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not start: no timer on the loop");
        return SY_ERROR;
    }
    s->curl = sy_curl_uv_new(s->api->loop(s->inst), 0, err, sizeof(err));
    if (!s->curl) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not start: %s", err);
        sy_xh_shutdown(s->xh, 0, on_drained, s); /* closes the helper's timers */
        return SY_ERROR;
    }
    return SY_OK;
}

static int otlphttp_consume(void *state, sy_batch_t *batch)
{
    otlphttp_t *s = state;
    return sy_xh_consume(s->xh, batch);
}

static void otlphttp_shutdown(void *state)
{
    otlphttp_t *s = state;
    uint64_t ms = (uint64_t)(s->cfg->xh.timeout_ns / 1000000);
    sy_xh_shutdown(s->xh, ms < 1000 ? 1000 : ms, on_drained, s);
}

static void otlphttp_destroy(void *state)
{
    otlphttp_t *s = state;
    sy_xh_free(s->xh);
    curl_slist_free_all(s->headers);
    for (int i = 0; i < 3; i++)
        free(s->urls[i]);
    free(s);
}

static const sy_plugin_t otlphttp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = OTLPHTTP_TYPE,
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Sends OTLP over HTTP (protobuf or JSON) with a sending queue and retries.",
    .config_fields = otlphttp_fields,
    .config_field_count = sizeof(otlphttp_fields) / sizeof(otlphttp_fields[0]),
    .config_size = sizeof(otlphttp_config_t),
    .validate = otlphttp_validate,
    .create = otlphttp_create,
    .start = otlphttp_start,
    .consume = otlphttp_consume,
    .shutdown = otlphttp_shutdown,
    .destroy = otlphttp_destroy,
};

SY_PLUGIN_DEFINE(otlphttp_plugin)
