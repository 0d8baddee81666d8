/*
 * otlphttp.c - the `otlphttp` exporter (also built as `otlp_http`, the collector's
 * name since v0.144): OTLP/HTTP POSTs of protobuf or JSON to <endpoint>/v1/<signal>.
 *
 * Transfers run on libcurl's multi interface on the exporter's loop
 * (plugins/common/curl_uv.c); queueing, retries and outcomes are the shared
 * exporterhelper's, and the instance and request glue around both is
 * plugins/common/otlp_exporter_common.c, shared with the otlp (gRPC) exporter. The
 * protobuf body is the batch's encoded bytes, forwarded as they arrived (never
 * decoded here); JSON is written from those bytes too (plugins/common/otlp_json_encode.c).
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
#include <strings.h>

#include <switchyard/plugin.h>

#include "otlp_exporter_common.h"
#include "otlp_json.h"
#include "signals.h"

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
    int64_t compression_level;
    int encoding;
    syc_tls_client_t tls;
    syc_xh_config_t xh;
    char *authenticator; /* auth.authenticator */
    int http_client;     /* HTTP_CLIENT_* */
} otlphttp_config_t;

static const char *const encoding_names[] = {"proto", "json", NULL};

enum { HTTP_CLIENT_AUTO = 0, HTTP_CLIENT_CURL = 1 };
static const char *const http_client_names[] = {"auto", "curl", NULL};

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
     .enum_values = syc_xh_compression_names,
     .description = "Content-Encoding of the requests: gzip, zstd, snappy (block), deflate or "
                    "zlib (both the zlib format), or none."},
    SYC_XH_COMPRESSION_LEVEL_FIELD(otlphttp_config_t, compression_level),
    {.name = "encoding",
     .type = SY_CFG_ENUM,
     .offset = offsetof(otlphttp_config_t, encoding),
     .default_value = "proto",
     .enum_values = encoding_names,
     .description = "Body encoding: proto (application/x-protobuf) or json (OTLP/JSON)."},
    SYC_XH_TLS_FIELDS(otlphttp_config_t, tls),
    SYC_OXP_AUTH_FIELD(otlphttp_config_t, authenticator),
    SYC_XH_CONFIG_FIELDS(otlphttp_config_t, xh),
    {SY_CFG_FIELD("http_client", SY_CFG_ENUM, otlphttp_config_t, http_client),
     .default_value = "auto", .enum_values = http_client_names,
     .description = "auto: plain http:// endpoints are sent to with the exporter's own "
                    "HTTP/1.1 client (keep-alive, the body written from the batch's memory) "
                    "when nothing needs libcurl (no proxy variable set, no credentials in the "
                    "URL); curl: always libcurl."},
};

typedef struct otlphttp_s {
    syc_oxp_t base; /* first: the plugin's state is also the shared part's */
    const otlphttp_config_t *cfg;
} otlphttp_t;

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
    if (syc_oxp_validate_headers(&c->headers, err, err_len) < 0) return SY_EINVAL;
    if (syc_tls_client_check(&c->tls, err, err_len) < 0) return SY_EINVAL;
    if (syc_xh_compression_check(c->compression, c->compression_level, err, err_len) < 0)
        return SY_EINVAL;
    return syc_xh_config_validate(&c->xh, err, err_len);
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

/* Builds the body once: the encoded bytes (or OTLP/JSON), compressed if asked. */
static int otlphttp_build_body(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    const otlphttp_t *s = (const otlphttp_t *)o;
    const uint8_t *raw;
    size_t raw_len;
    char *json = NULL;
    uint8_t *tmp = NULL; /* a merge's pieces gathered (syc_oxp_flat) */
    if (s->cfg->encoding == ENCODING_JSON) {
        /* From the encoded bytes, so that strings keep every byte (NUL too). */
        const syc_signal_info_t *sig = syc_signal_info(req->signal);
        size_t wire_len;
        const uint8_t *wire = sig ? syc_oxp_flat(o, req->batch, &wire_len, &tmp) : NULL;
        json = wire ? syc_otlp_json_from_wire(sig->request, wire, wire_len, &raw_len, NULL) : NULL;
        free(tmp);
        tmp = NULL;
        if (!json) return SY_ENOMEM;
        raw = (const uint8_t *)json;
    } else if (s->cfg->compression == SYC_XH_COMPRESS_NONE) {
        return syc_oxp_take_pieces(o, req, r, NULL, 0); /* the bytes as they are, unjoined */
    } else {
        /* What the clients compressed the same way, unchanged since: as it came. */
        int rc = syc_oxp_take_twin(o, req, r, s->cfg->compression, NULL, 0);
        if (rc != SY_ENOTSUP) return rc;
        raw = syc_oxp_flat(o, req->batch, &raw_len, &tmp);
        if (!raw) return SY_ENOMEM;
    }
    if (s->cfg->compression == SYC_XH_COMPRESS_NONE) {
        r->body = raw;
        r->body_len = raw_len;
        r->owned = (uint8_t *)json;
        return SY_OK;
    }
    int rc = syc_xh_compress(s->cfg->compression, (int)s->cfg->compression_level, 0, raw, raw_len,
                             &r->owned, &r->body_len);
    free(json);
    free(tmp);
    r->body = r->owned;
    return rc;
}

static void otlphttp_failed(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                            syc_xh_result_t *res)
{
    (void)rc;
    snprintf(res->message, sizeof(res->message), "Post \"%s\": %s",
             o->urls[syc_oxp_signal_index(req->signal)], why);
}

static void otlphttp_judge(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                           syc_xh_result_t *res)
{
    const syc_curl_exchange_t *x = &r->x;
    bool json = strstr(x->content_type, "json") != NULL;
    if (status >= 200 && status < 300) {
        if (syc_xh_partial_success(req->signal, x->body, x->body_len, json, &res->rejected,
                                   res->message, sizeof(res->message)) < 0)
            SY_LOG(o->api, o->inst, SY_LOG_DEBUG, "the %ld response's body does not decode",
                   status);
        return;
    }
    char why[300];
    syc_xh_rpc_status(x->body, x->body_len, json, why, sizeof(why));
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        res->verdict = SYC_XH_RETRYABLE;
        res->retry_after_ms = syc_curl_retry_after_ms(x->retry_after);
    } else {
        res->verdict = SYC_XH_PERMANENT;
    }
    snprintf(res->message, sizeof(res->message), "HTTP %ld from %s%s%s", status,
             o->urls[syc_oxp_signal_index(req->signal)], why[0] ? ": " : "", why);
}

static const syc_oxp_ops_t otlphttp_ops = {
    .build_body = otlphttp_build_body,
    .failed = otlphttp_failed,
    .judge = otlphttp_judge,
};

/* ---- the instance ------------------------------------------------------------------- */

/* Whether every URL can go through the own HTTP/1.1 client (http_client.h): all
 * plain http://, no credentials in them, no proxy that curl would use for them
 * (http_proxy, all_proxy; curl ignores HTTP_PROXY), no header that the client
 * writes itself or that changes the framing. Fills the targets when so. */
static bool use_own_client(otlphttp_t *s)
{
    const otlphttp_config_t *c = s->cfg;
    if (c->http_client == HTTP_CLIENT_CURL) return false;
    static const char *const proxies[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(proxies[i]);
        if (v && *v) return false;
    }
    static const char *const own[] = {"host",       "content-length", "transfer-encoding",
                                      "connection", "expect",         "te",
                                      "upgrade",    "keep-alive"};
    for (size_t i = 0; i < c->headers.count; i++)
        for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
            if (!strcasecmp(c->headers.keys[i], own[k])) return false;
    bool any = false;
    for (int i = 0; i < 3; i++) {
        if (!s->base.urls[i]) continue;
        if (!(s->base.targets[i] = syc_hc_target_new(s->base.urls[i]))) return false;
        any = true;
    }
    return any;
}

static int otlphttp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                           void **state)
{
    const otlphttp_config_t *c = config;
    otlphttp_t *s =
        syc_oxp_alloc(sizeof(*s), api, inst, &otlphttp_ops, &c->xh, &c->tls, "Switchyard/0.1.0");
    if (!s) return SY_ENOMEM;
    s->cfg = c;
    for (int i = 0; i < 3; i++)
        s->base.urls[i] = signal_url(c, i);
    const char *ctype = c->encoding == ENCODING_JSON ? "Content-Type: application/json"
                                                     : "Content-Type: application/x-protobuf";
    struct curl_slist *l = curl_slist_append(NULL, ctype);
    /* No "Expect: 100-continue" round trip before large bodies. */
    l = syc_oxp_header(l, "Expect:");
    if (c->compression != SYC_XH_COMPRESS_NONE)
        l = syc_oxp_headerf(l, "Content-Encoding: %s", syc_xh_compression_name(c->compression));
    s->base.headers = syc_oxp_header_map(l, &c->headers);
    s->base.auth_id = c->authenticator;
    s->base.direct = use_own_client(s);
    SY_LOG(api, inst, SY_LOG_INFO, "sending with %s",
           s->base.direct ? "the own HTTP/1.1 client" : "libcurl");
    return syc_oxp_create_done(&s->base, state);
}

static const sy_plugin_t otlphttp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = OTLPHTTP_TYPE,
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_REPORTS_OUTCOME | SY_PLUGIN_SENDS_COMPRESSED,
    .version = "0.1.0",
    .description = "Sends OTLP over HTTP (protobuf or JSON) with a sending queue and retries.",
    .config_fields = otlphttp_fields,
    .config_field_count = sizeof(otlphttp_fields) / sizeof(otlphttp_fields[0]),
    .config_size = sizeof(otlphttp_config_t),
    .validate = otlphttp_validate,
    .create = otlphttp_create,
    .start = syc_oxp_start,
    .consume = syc_oxp_consume,
    .shutdown = syc_oxp_shutdown,
    .destroy = syc_oxp_destroy,
};

SY_PLUGIN_DEFINE(otlphttp_plugin)
