/*
 * zipkin.c - the `zipkin` exporter: spans as Zipkin v2 JSON or protobuf, POSTed to
 * a Zipkin collector's /api/v2/spans on libcurl's multi interface.
 *
 * The transfer, the sending queue, the retries and the timeout are the ones the
 * OTLP exporters use (plugins/common: otlp_exporter_common.c, exporterhelper.c,
 * curl_uv.c): this file only builds the body (zipkin_out.c reads the batch through
 * the view, zipkin_write.c writes JSON or protobuf) and judges the answer. 2xx is
 * sent; 408, 429 and 5xx are retried (after Retry-After when given); any other
 * status is permanent: the batch is dropped, logged and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "otlp_exporter_common.h"
#include "zipkin_out.h"

enum { FORMAT_JSON = 0, FORMAT_PROTO = 1 };

typedef struct zipkin_config_s {
    char *endpoint;
    int format;
    char *default_service_name;
    int compression;
    int64_t compression_level;
    sy_cfg_strmap_t headers;
    syc_tls_client_t tls;
    syc_xh_config_t xh;
    char *authenticator; /* auth.authenticator */
} zipkin_config_t;

static const char *const format_names[] = {"json", "proto", NULL};

static const sy_config_field_t zipkin_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(zipkin_config_t, endpoint),
     .required = true,
     .description = "URL spans are POSTed to (http:// or https://), e.g. "
                    "http://zipkin:9411/api/v2/spans."},
    {.name = "format",
     .type = SY_CFG_ENUM,
     .offset = offsetof(zipkin_config_t, format),
     .default_value = "json",
     .enum_values = format_names,
     .description = "Body: json (a Zipkin v2 JSON array) or proto (zipkin.proto3.ListOfSpans)."},
    {.name = "default_service_name",
     .type = SY_CFG_STRING,
     .offset = offsetof(zipkin_config_t, default_service_name),
     .default_value = "<missing service name>",
     .description = "Local endpoint service name of spans whose resource has no attributes."},
    {.name = "compression",
     .type = SY_CFG_ENUM,
     .offset = offsetof(zipkin_config_t, compression),
     .default_value = "none",
     .enum_values = syc_xh_compression_names,
     .description = "Content-Encoding of the requests: gzip, zstd, snappy (block), deflate or "
                    "zlib (both the zlib format), or none."},
    SYC_XH_COMPRESSION_LEVEL_FIELD(zipkin_config_t, compression_level),
    {.name = "headers",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(zipkin_config_t, headers),
     .description = "Headers added to every request."},
    SYC_XH_TLS_FIELDS(zipkin_config_t, tls),
    SYC_OXP_AUTH_FIELD(zipkin_config_t, authenticator),
    SYC_XH_CONFIG_FIELDS(zipkin_config_t, xh),
};

typedef struct zipkin_s {
    syc_oxp_t base; /* first: the plugin's state is also the shared part's */
    const zipkin_config_t *cfg;
    sy_metric_t *m_invalid;
} zipkin_t;

static int zipkin_validate(const void *config, char *err, size_t err_len)
{
    const zipkin_config_t *c = config;
    const char *u = c->endpoint;
    if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || strlen(u) > 4000) {
        snprintf(err, err_len, "'endpoint' must be an http:// or https:// URL, got \"%.100s\"",
                 u ? u : "");
        return SY_EINVAL;
    }
    if (syc_oxp_validate_headers(&c->headers, err, err_len) < 0) return SY_EINVAL;
    if (syc_tls_client_check(&c->tls, err, err_len) < 0) return SY_EINVAL;
    if (syc_xh_compression_check(c->compression, c->compression_level, err, err_len) < 0)
        return SY_EINVAL;
    return syc_xh_config_validate(&c->xh, err, err_len);
}

static int zipkin_build_body(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    zipkin_t *z = (zipkin_t *)o;
    zo_arena_t arena = {0};
    zo_spans_t spans;
    int rc = zo_from_batch(o->api, req->batch, z->cfg->default_service_name, &arena, &spans);
    zo_buf_t b = {0};
    if (rc == SY_OK) {
        if (spans.invalid) {
            o->api->metric_add(z->m_invalid, (int64_t)spans.invalid);
            SY_LOG(o->api, o->inst, SY_LOG_WARN,
                   "left out %llu spans without a valid trace or span id",
                   (unsigned long long)spans.invalid);
        }
        if (z->cfg->format == FORMAT_PROTO)
            zo_write_proto(&spans, &b);
        else
            zo_write_json(&spans, &b);
        if (b.failed) rc = SY_ENOMEM;
    }
    zo_arena_free(&arena);
    if (rc != SY_OK) {
        free(b.p);
        return rc;
    }
    if (z->cfg->compression == SYC_XH_COMPRESS_NONE) {
        r->owned = b.p;
        r->body = b.p ? b.p : (const uint8_t *)"";
        r->body_len = b.len;
        return SY_OK;
    }
    rc = syc_xh_compress(z->cfg->compression, (int)z->cfg->compression_level, 0, b.p, b.len,
                         &r->owned, &r->body_len);
    free(b.p);
    r->body = r->owned;
    return rc;
}

static void zipkin_failed(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                          syc_xh_result_t *res)
{
    (void)req;
    (void)rc;
    snprintf(res->message, sizeof(res->message), "Post \"%s\": %s", o->urls[0], why);
}

static void zipkin_judge(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                         syc_xh_result_t *res)
{
    (void)req;
    if (status >= 200 && status < 300) return;
    const syc_curl_exchange_t *x = &r->x;
    if (status == 408 || status == 429 || status >= 500) {
        res->verdict = SYC_XH_RETRYABLE;
        res->retry_after_ms = syc_curl_retry_after_ms(x->retry_after);
    } else {
        res->verdict = SYC_XH_PERMANENT;
    }
    /* The answer's first printable bytes say why. */
    char why[200];
    size_t n = 0;
    for (size_t i = 0; i < x->body_len && n < sizeof(why) - 1; i++)
        why[n++] = x->body[i] >= 0x20 && x->body[i] < 0x7f ? (char)x->body[i] : ' ';
    why[n] = '\0';
    snprintf(res->message, sizeof(res->message),
             "failed the request with status code %ld from %s%s%s", status, o->urls[0],
             n ? ": " : "", why);
}

static const syc_oxp_ops_t zipkin_ops = {
    .build_body = zipkin_build_body,
    .failed = zipkin_failed,
    .judge = zipkin_judge,
};

static int zipkin_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                         void **state)
{
    const zipkin_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "needs a host of plugin ABI 1.1 or later (the view)");
        return SY_ENOTSUP;
    }
    zipkin_t *z =
        syc_oxp_alloc(sizeof(*z), api, inst, &zipkin_ops, &c->xh, &c->tls, "Switchyard/0.1.0");
    if (!z) return SY_ENOMEM;
    z->cfg = c;
    z->base.urls[0] = strdup(c->endpoint);
    z->m_invalid = api->metric_register(inst, "exporter_zipkin_invalid_spans",
                                        "Spans left out because their trace or span id is "
                                        "zero or missing.",
                                        SY_METRIC_COUNTER);
    struct curl_slist *l =
        curl_slist_append(NULL, c->format == FORMAT_PROTO ? "Content-Type: application/x-protobuf"
                                                          : "Content-Type: application/json");
    l = syc_oxp_header(l, "Expect:");
    if (c->compression != SYC_XH_COMPRESS_NONE)
        l = syc_oxp_headerf(l, "Content-Encoding: %s", syc_xh_compression_name(c->compression));
    z->base.headers = syc_oxp_header_map(l, &c->headers);
    if (!z->base.urls[0]) {
        curl_slist_free_all(z->base.headers);
        z->base.headers = NULL; /* create_done logs and fails */
    }
    z->base.auth_id = c->authenticator;
    return syc_oxp_create_done(&z->base, state);
}

static const sy_plugin_t zipkin_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "zipkin",
    .signals = SY_SIGNAL_TRACES,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Sends spans to a Zipkin collector as v2 JSON or protobuf, with a sending "
                   "queue and retries.",
    .config_fields = zipkin_fields,
    .config_field_count = sizeof(zipkin_fields) / sizeof(zipkin_fields[0]),
    .config_size = sizeof(zipkin_config_t),
    .validate = zipkin_validate,
    .create = zipkin_create,
    .start = syc_oxp_start,
    .consume = syc_oxp_consume,
    .shutdown = syc_oxp_shutdown,
    .destroy = syc_oxp_destroy,
};

SY_PLUGIN_DEFINE(zipkin_plugin)
