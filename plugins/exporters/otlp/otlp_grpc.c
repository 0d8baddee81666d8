/*
 * otlp_grpc.c - the `otlp` exporter (also built as `otlp_grpc`, the collector's
 * name since v0.144): unary gRPC Export calls of the OTLP collector services.
 *
 * gRPC is spoken through libcurl (plugins/common/curl_uv.c) rather than a gRPC
 * library: HTTP/2 (prior knowledge on plaintext, ALPN on TLS), POST
 * /opentelemetry.proto.collector.<signal>.v1.<Service>/Export with
 * `content-type: application/grpc` and `te: trailers`, the request as one
 * length-prefixed message (1 byte compressed flag, 4 bytes big-endian length), and
 * the status read from the trailers (`grpc-status`, `grpc-message`,
 * `grpc-status-details-bin`), which curl hands to the header callback after the
 * body. Concurrent calls are multiplexed as streams over one connection. See the
 * README for why curl and not nghttp2 directly. The instance and request glue
 * (queue, retries, start, shutdown) is plugins/common/otlp_exporter_common.c, shared
 * with otlphttp; this file frames the request, sets the HTTP/2 options and reads
 * the gRPC status.
 *
 * Status handling as the OTLP specification says: OK is success (partial_success
 * logged, rejected items counted as failed); CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retried, RESOURCE_EXHAUSTED only when
 * the status carries a google.rpc.RetryInfo (whose delay is honoured); everything
 * else is permanent. A connection that cannot be made is retried.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "grpc_frame.h"
#include "otlp_exporter_common.h"
#include "signals.h"

#ifndef OTLP_GRPC_TYPE
#define OTLP_GRPC_TYPE "otlp"
#endif

typedef struct otlp_config_s {
    char *endpoint;
    sy_cfg_strmap_t headers;
    int compression;
    int64_t compression_level;
    char *authority;
    int64_t keepalive_time_ns;
    int64_t keepalive_timeout_ns;
    bool keepalive_permit_without_stream;
    bool wait_for_ready;
    char *balancer_name;
    syc_tls_client_t tls;
    syc_xh_config_t xh;
    char *authenticator; /* auth.authenticator */
} otlp_config_t;

static const sy_config_field_t otlp_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, endpoint),
     .required = true,
     .description = "host:port of the gRPC server; an http:// or https:// scheme chooses "
                    "plaintext or TLS."},
    {.name = "headers",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(otlp_config_t, headers),
     .description = "Metadata (headers) added to every call."},
    {.name = "compression",
     .type = SY_CFG_ENUM,
     .offset = offsetof(otlp_config_t, compression),
     .default_value = "gzip",
     .enum_values = syc_xh_grpc_compression_names,
     .description = "grpc-encoding of the requests: gzip, zstd, snappy (block) or none."},
    SYC_XH_COMPRESSION_LEVEL_FIELD(otlp_config_t, compression_level),
    {.name = "authority",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, authority),
     .description = "The :authority sent instead of the endpoint's host:port."},
    {.name = "keepalive.time",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, keepalive_time_ns),
     .description = "Idle time before TCP keepalive probes start (0: system default)."},
    {.name = "keepalive.timeout",
     .type = SY_CFG_DURATION,
     .offset = offsetof(otlp_config_t, keepalive_timeout_ns),
     .description = "Interval between TCP keepalive probes."},
    {.name = "keepalive.permit_without_stream",
     .type = SY_CFG_BOOL,
     .offset = offsetof(otlp_config_t, keepalive_permit_without_stream),
     .description = "Accepted for compatibility; TCP keepalive runs regardless."},
    {.name = "wait_for_ready",
     .type = SY_CFG_BOOL,
     .offset = offsetof(otlp_config_t, wait_for_ready),
     .description = "Accepted for compatibility; a connection that cannot be made is retried "
                    "by retry_on_failure."},
    {.name = "balancer_name",
     .type = SY_CFG_STRING,
     .offset = offsetof(otlp_config_t, balancer_name),
     .description = "Accepted for compatibility; one connection per host is used."},
    SYC_XH_TLS_FIELDS(otlp_config_t, tls),
    SYC_OXP_AUTH_FIELD(otlp_config_t, authenticator),
    SYC_XH_CONFIG_FIELDS(otlp_config_t, xh),
};

typedef struct otlp_s {
    syc_oxp_t base; /* first: the plugin's state is also the shared part's */
    const otlp_config_t *cfg;
    char *connect_to; /* server_name_override: "name:port:host:port" */
    struct curl_slist *connect_list;
    bool h2c_no_reuse; /* libcurl < 8.0: see otlp_setup() */
} otlp_t;

/* ---- the endpoint ------------------------------------------------------------------- */

typedef struct target_s {
    bool tls;
    char host[256]; /* with brackets for IPv6 */
    char port[8];
} target_t;

/* Splits "[scheme://]host:port" (also "dns:///host:port"). Returns 0 or -1 with a
 * sentence in err. */
static int parse_target(const otlp_config_t *c, target_t *t, char *err, size_t err_len)
{
    const char *e = c->endpoint ? c->endpoint : "";
    t->tls = !c->tls.insecure;
    if (!strncmp(e, "http://", 7)) {
        t->tls = false;
        e += 7;
    } else if (!strncmp(e, "https://", 8)) {
        t->tls = true;
        e += 8;
    } else if (!strncmp(e, "dns:///", 7)) {
        e += 7;
    }
    size_t n = strcspn(e, "/");
    const char *colon = NULL;
    if (e[0] == '[') {
        const char *close = memchr(e, ']', n);
        if (close && close + 1 < e + n && close[1] == ':') colon = close + 1;
    } else {
        colon = memchr(e, ':', n);
        if (colon && memchr(colon + 1, ':', (size_t)(e + n - colon - 1))) colon = NULL;
    }
    size_t hl = colon ? (size_t)(colon - e) : 0;
    size_t pl = colon ? (size_t)(e + n - colon - 1) : 0;
    if (!colon || hl == 0 || hl >= sizeof(t->host) || pl == 0 || pl >= sizeof(t->port) ||
        (e[n] == '/' && e[n + 1] != '\0')) {
        snprintf(err, err_len,
                 "'endpoint' must be host:port (optionally with http:// or "
                 "https://), got \"%.100s\"",
                 c->endpoint ? c->endpoint : "");
        return -1;
    }
    memcpy(t->host, e, hl);
    t->host[hl] = '\0';
    memcpy(t->port, colon + 1, pl);
    t->port[pl] = '\0';
    for (size_t i = 0; i < pl; i++)
        if (!isdigit((unsigned char)t->port[i])) {
            snprintf(err, err_len, "'endpoint': the port of \"%.100s\" is not a number",
                     c->endpoint);
            return -1;
        }
    for (size_t i = 0; i < hl; i++)
        if (isspace((unsigned char)t->host[i]) || t->host[i] == '@') {
            snprintf(err, err_len, "'endpoint': invalid host in \"%.100s\"", c->endpoint);
            return -1;
        }
    return 0;
}

static int otlp_validate(const void *config, char *err, size_t err_len)
{
    const otlp_config_t *c = config;
    target_t t;
    if (parse_target(c, &t, err, err_len) < 0) return SY_EINVAL;
    if (syc_oxp_validate_headers(&c->headers, err, err_len) < 0) return SY_EINVAL;
    if (syc_tls_client_check(&c->tls, err, err_len) < 0) return SY_EINVAL;
    if (c->tls.server_name_override && strpbrk(c->tls.server_name_override, ":/[] ")) {
        snprintf(err, err_len, "'tls.server_name_override' must be a host name");
        return SY_EINVAL;
    }
    if (syc_xh_compression_check(c->compression, c->compression_level, err, err_len) < 0)
        return SY_EINVAL;
    return syc_xh_config_validate(&c->xh, err, err_len);
}

/* The gRPC status of an HTTP answer without grpc-status, as the gRPC spec maps it. */
static int code_from_http(long status)
{
    switch (status) {
    case 400:
        return SYC_GRPC_INTERNAL;
    case 401:
        return SYC_GRPC_UNAUTHENTICATED;
    case 403:
        return SYC_GRPC_PERMISSION_DENIED;
    case 404:
        return SYC_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return SYC_GRPC_UNAVAILABLE;
    default:
        return SYC_GRPC_UNKNOWN;
    }
}

/* ---- one call ----------------------------------------------------------------------- */

/* The length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length.
 * Uncompressed, the header goes first and the batch's bytes follow as they are
 * (in pieces for a merge: no copy before curl's). */
static int otlp_build_body(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    const otlp_t *s = (const otlp_t *)o;
    size_t len, body_len;
    bool compress = s->cfg->compression != SYC_XH_COMPRESS_NONE;
    if (!compress) {
        uint8_t head[SYC_GRPC_FRAME_HEADER] = {0};
        int rc = syc_oxp_take_pieces(o, req, r, head, sizeof(head));
        if (rc != SY_OK) return rc;
        if (r->body_len - SYC_GRPC_FRAME_HEADER > UINT32_MAX) return SY_ENOMEM;
        /* The length is known once the pieces are: written into the first. */
        syc_grpc_frame_header(r->prefix, false, (uint32_t)(r->body_len - SYC_GRPC_FRAME_HEADER));
        return SY_OK;
    }
    /* What the clients compressed the same way, unchanged since: as it came. */
    uint8_t head[SYC_GRPC_FRAME_HEADER] = {0};
    int twin = syc_oxp_take_twin(o, req, r, s->cfg->compression, head, sizeof(head));
    if (twin == SY_OK) {
        if (r->body_len - SYC_GRPC_FRAME_HEADER > UINT32_MAX) return SY_ENOMEM;
        syc_grpc_frame_header(r->prefix, true, (uint32_t)(r->body_len - SYC_GRPC_FRAME_HEADER));
        return SY_OK;
    }
    if (twin != SY_ENOTSUP) return twin;
    uint8_t *tmp; /* a merge's pieces gathered (syc_oxp_flat) */
    const uint8_t *raw = syc_oxp_flat(o, req->batch, &len, &tmp);
    int rc = raw && len <= UINT32_MAX - 5
                 ? syc_xh_compress(s->cfg->compression, (int)s->cfg->compression_level, 5, raw, len,
                                   &r->owned, &body_len)
                 : SY_ENOMEM;
    free(tmp);
    if (rc < 0) return SY_ENOMEM;
    syc_grpc_frame_header(r->owned, compress, (uint32_t)(body_len - SYC_GRPC_FRAME_HEADER));
    r->body = r->owned;
    r->body_len = body_len;
    return SY_OK;
}

/* gRPC's options beyond the shared ones: HTTP/2, connection reuse, keepalive and
 * server_name_override. */
static void otlp_setup(syc_oxp_t *o, syc_xh_req_t *req, CURL *e)
{
    (void)req;
    const otlp_t *s = (const otlp_t *)o;
    const otlp_config_t *c = s->cfg;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (s->h2c_no_reuse && !strncmp(o->urls[0], "http:", 5)) {
        /* libcurl before 8.0 fails every call on a reused prior-knowledge h2c
         * connection ("Error in the HTTP2 framing layer", curl issue 10634):
         * there, each plaintext call gets a connection of its own. */
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    } else {
        /* Several calls share one connection as HTTP/2 streams. */
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    }
    if (c->keepalive_time_ns > 0) {
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        long idle = (long)(c->keepalive_time_ns / 1000000000);
        long intvl = (long)(c->keepalive_timeout_ns / 1000000000);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, idle > 0 ? idle : 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, intvl > 0 ? intvl : 1L);
    }
    if (s->connect_list) curl_easy_setopt(e, CURLOPT_CONNECT_TO, s->connect_list);
}

/* The verdict of a gRPC status, as the OTLP specification sorts the codes. */
static void judge_code(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, int code,
                       syc_xh_result_t *res)
{
    syc_curl_exchange_t *x = &r->x;
    syc_grpc_message_decode(x->grpc_message);
    uint64_t retry_ms = 0;
    bool has_retry_info =
        x->grpc_details[0] &&
        syc_grpc_status_details_retry_delay(x->grpc_details, strlen(x->grpc_details), &retry_ms);
    if (code == SYC_GRPC_OK) {
        res->verdict = SYC_XH_SENT;
        /* A response the server compressed (it should not: we announce no
         * grpc-accept-encoding) is not looked into for partial success. */
        if (x->body_len >= SYC_GRPC_FRAME_HEADER && x->body[0] == 0) {
            uint32_t n = (uint32_t)x->body[1] << 24 | (uint32_t)x->body[2] << 16 |
                         (uint32_t)x->body[3] << 8 | x->body[4];
            if (n <= x->body_len - SYC_GRPC_FRAME_HEADER &&
                syc_xh_partial_success(req->signal, x->body + SYC_GRPC_FRAME_HEADER, n, false,
                                       &res->rejected, res->message, sizeof(res->message)) < 0)
                SY_LOG(o->api, o->inst, SY_LOG_DEBUG, "the Export response does not decode");
        }
        return;
    }
    snprintf(res->message, sizeof(res->message), "rpc error: code = %s desc = %.400s",
             syc_grpc_code_name(code), x->grpc_message);
    res->verdict =
        syc_grpc_code_retryable(code, has_retry_info) ? SYC_XH_RETRYABLE : SYC_XH_PERMANENT;
    if (has_retry_info) res->retry_after_ms = retry_ms > 86400000 ? 86400000 : (int64_t)retry_ms;
}

/* A call that got no answer: UNAVAILABLE, or DEADLINE_EXCEEDED on a timeout. */
static void otlp_failed(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                        syc_xh_result_t *res)
{
    (void)o;
    (void)req;
    snprintf(res->message, sizeof(res->message), "rpc error: code = %s desc = %.400s",
             syc_grpc_code_name(rc == CURLE_OPERATION_TIMEDOUT ? SYC_GRPC_DEADLINE_EXCEEDED
                                                               : SYC_GRPC_UNAVAILABLE),
             why);
}

static void otlp_judge(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                       syc_xh_result_t *res)
{
    syc_curl_exchange_t *x = &r->x;
    int code;
    if (x->grpc_status[0] && isdigit((unsigned char)x->grpc_status[0]))
        code = atoi(x->grpc_status);
    else if (status != 200)
        code = code_from_http(status);
    else
        /* An answer that ends without a status: the stream was cut short, which a
         * retry may well get through. */
        code = SYC_GRPC_UNAVAILABLE;
    if (!x->grpc_status[0] && !x->grpc_message[0])
        snprintf(x->grpc_message, sizeof(x->grpc_message), "HTTP status %ld without grpc-status",
                 status);
    judge_code(o, req, r, code, res);
}

static void otlp_free(syc_oxp_t *o)
{
    otlp_t *s = (otlp_t *)o;
    curl_slist_free_all(s->connect_list);
    free(s->connect_to);
}

static const syc_oxp_ops_t otlp_ops = {
    .build_body = otlp_build_body,
    .setup = otlp_setup,
    .failed = otlp_failed,
    .judge = otlp_judge,
    .free = otlp_free,
};

/* ---- the instance -------------------------------------------------------------------- */

/* The headers every call carries. */
static struct curl_slist *make_headers(const otlp_config_t *c)
{
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/grpc");
    l = syc_oxp_header(l, "TE: trailers");
    l = syc_oxp_header(l, "Expect:");
    if (c->compression != SYC_XH_COMPRESS_NONE)
        l = syc_oxp_headerf(l, "grpc-encoding: %s", syc_xh_compression_name(c->compression));
    int64_t ms = c->xh.timeout_ns / 1000000;
    if (ms > 0 && ms < 100000000) l = syc_oxp_headerf(l, "grpc-timeout: %" PRId64 "m", ms);
    if (c->authority && *c->authority) l = syc_oxp_headerf(l, "Host: %s", c->authority);
    return syc_oxp_header_map(l, &c->headers);
}

static int otlp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const otlp_config_t *c = config;
    char err[256];
    target_t t;
    otlp_t *s =
        syc_oxp_alloc(sizeof(*s), api, inst, &otlp_ops, &c->xh, &c->tls, "grpc-c-switchyard/0.1.0");
    if (!s) return SY_ENOMEM;
    s->cfg = c;
    if (parse_target(c, &t, err, sizeof(err)) < 0) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        return syc_oxp_create_fail(&s->base);
    }
    /* With server_name_override the URL names the override (so TLS checks the
     * certificate against it, and sends it as SNI and :authority) and CONNECT_TO
     * sends the connection to the real host. */
    const char *sno = c->tls.server_name_override;
    const char *url_host = sno && *sno ? sno : t.host;
    if (sno && *sno) {
        if (asprintf(&s->connect_to, "%s:%s:%s:%s", sno, t.port, t.host, t.port) < 0) {
            s->connect_to = NULL;
            goto nomem;
        }
        s->connect_list = curl_slist_append(NULL, s->connect_to);
        if (!s->connect_list) goto nomem;
    }
    for (int i = 0; i < 3; i++)
        if (asprintf(&s->base.urls[i], "%s://%s:%s/%s/Export", t.tls ? "https" : "http", url_host,
                     t.port, syc_signal_by_index(i)->grpc_service) < 0) {
            s->base.urls[i] = NULL;
            goto nomem;
        }
    s->h2c_no_reuse = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    s->base.headers = make_headers(c);
    s->base.auth_id = c->authenticator;
    return syc_oxp_create_done(&s->base, state);
nomem:
    SY_LOG(api, inst, SY_LOG_ERROR, "could not create the exporter: out of memory");
    return syc_oxp_create_fail(&s->base);
}

static const sy_plugin_t otlp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = OTLP_GRPC_TYPE,
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_REPORTS_OUTCOME | SY_PLUGIN_SENDS_COMPRESSED,
    .version = "0.1.0",
    .description = "Sends OTLP over gRPC with a sending queue and retries.",
    .config_fields = otlp_fields,
    .config_field_count = sizeof(otlp_fields) / sizeof(otlp_fields[0]),
    .config_size = sizeof(otlp_config_t),
    .validate = otlp_validate,
    .create = otlp_create,
    .start = syc_oxp_start,
    .consume = syc_oxp_consume,
    .shutdown = syc_oxp_shutdown,
    .destroy = syc_oxp_destroy,
};

SY_PLUGIN_DEFINE(otlp_plugin)
