/*
 * loki.c - the `loki` exporter: log records POSTed to Grafana Loki's push API
 * (/loki/api/v1/push) as the collector's contrib lokiexporter sends them, as a
 * snappy-compressed logproto.PushRequest (the default) or as JSON.
 *
 * The transfer, the sending queue, the retries and the timeout are those of the
 * OTLP exporters (plugins/common: otlp_exporter_common.c, exporterhelper.c,
 * curl_uv.c). This file holds the configuration, splits a batch whose records
 * name several tenants (the loki.tenant hint) into one request per tenant, builds
 * a request's body (loki_out.c reads the records through the view, loki_write.c
 * writes the body) with its X-Scope-OrgID header, and judges the answer: 2xx is
 * sent; 429 and 5xx are retried (after Retry-After when given); any other status
 * is permanent: the batch is dropped, logged with the answer's text and counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "compress.h"
#include "loki_out.h"
#include "otlp_exporter_common.h"

enum { ENC_PROTOBUF = 0, ENC_JSON = 1 };
enum { COMP_NONE = 0, COMP_GZIP = 1 };

typedef struct loki_config_s {
    char *endpoint;
    int encoding;
    int compression;
    char *tenant_id;
    bool label_exporter, label_job, label_instance, label_level;
    sy_cfg_strmap_t headers;
    syc_tls_client_t tls;
    syc_xh_config_t xh;
    char *authenticator; /* auth.authenticator */
} loki_config_t;

static const char *const encoding_names[] = {"protobuf", "json", NULL};
static const char *const compression_names[] = {"none", "gzip", NULL};

#define DEFAULT_LABEL_FIELD(key, member, what)                              \
    {                                                                       \
        .name = "default_labels_enabled." key, .type = SY_CFG_BOOL,         \
        .offset = offsetof(loki_config_t, member), .default_value = "true", \
        .description = "Set the default label `" key "` (" what ")."        \
    }

static const sy_config_field_t loki_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(loki_config_t, endpoint),
     .required = true,
     .description = "URL the streams are POSTed to (http:// or https://), e.g. "
                    "http://loki:3100/loki/api/v1/push."},
    {.name = "encoding",
     .type = SY_CFG_ENUM,
     .offset = offsetof(loki_config_t, encoding),
     .default_value = "protobuf",
     .enum_values = encoding_names,
     .description = "Body: protobuf (a snappy-compressed logproto.PushRequest) or json."},
    {.name = "compression",
     .type = SY_CFG_ENUM,
     .offset = offsetof(loki_config_t, compression),
     .default_value = "none",
     .enum_values = compression_names,
     .description = "Content-Encoding of json bodies: none or gzip (protobuf bodies are "
                    "always snappy)."},
    {.name = "tenant_id",
     .type = SY_CFG_STRING,
     .offset = offsetof(loki_config_t, tenant_id),
     .description = "X-Scope-OrgID of every request whose records name no tenant through "
                    "the loki.tenant hint."},
    DEFAULT_LABEL_FIELD("exporter", label_exporter, "exporter=\"OTLP\""),
    DEFAULT_LABEL_FIELD("job", label_job, "service.namespace/service.name"),
    DEFAULT_LABEL_FIELD("instance", label_instance, "service.instance.id"),
    DEFAULT_LABEL_FIELD("level", label_level, "from the severity number"),
    {.name = "headers",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(loki_config_t, headers),
     .description = "Headers added to every request."},
    SYC_XH_TLS_FIELDS(loki_config_t, tls),
    SYC_OXP_AUTH_FIELD(loki_config_t, authenticator),
    SYC_XH_CONFIG_FIELDS(loki_config_t, xh),
};

typedef struct loki_s {
    syc_oxp_t base; /* first: the plugin's state is also the shared part's */
    const loki_config_t *cfg;
    lk_defaults_t defaults;
    sy_metric_t *m_dropped, *m_rejected, *m_split;
    uint64_t last_drop_log_ms; /* the rate limit of the "left out" warning */
    uint64_t drops_unlogged;   /* records left out since that warning */
} loki_t;

#define DROP_LOG_INTERVAL_MS 10000

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define TENANT_HEADER "X-Scope-OrgID"

/* A tenant goes into a header: printable ASCII, not empty, bounded. */
static bool tenant_ok(const char *s, size_t len)
{
    if (!len || len > 1024) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

static int loki_validate(const void *config, char *err, size_t err_len)
{
    const loki_config_t *c = config;
    const char *u = c->endpoint;
    if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || strlen(u) > 4000) {
        snprintf(err, err_len, "'endpoint' must be an http:// or https:// URL, got \"%.100s\"",
                 u ? u : "");
        return SY_EINVAL;
    }
    if (c->encoding == ENC_PROTOBUF && c->compression != COMP_NONE) {
        snprintf(err, err_len,
                 "'compression' applies to encoding json only: protobuf bodies are always "
                 "snappy-compressed, as Loki requires");
        return SY_EINVAL;
    }
    if (c->tenant_id && c->tenant_id[0] && !tenant_ok(c->tenant_id, strlen(c->tenant_id))) {
        snprintf(err, err_len, "'tenant_id' must be printable ASCII of at most 1024 bytes");
        return SY_EINVAL;
    }
    if (syc_oxp_validate_headers(&c->headers, err, err_len) < 0) return SY_EINVAL;
    if (syc_tls_client_check(&c->tls, err, err_len) < 0) return SY_EINVAL;
    return syc_xh_config_validate(&c->xh, err, err_len);
}

/* ---- one request per tenant ---------------------------------------------------------- */

typedef struct tenant_s {
    const char *s;
    size_t len;
    sy_view_builder_t *bld;
} tenant_t;

/*
 * Splits a batch whose records name more than one tenant into one batch per tenant
 * (the collector sends one request per tenant). Returns the number of batches made
 * into out (0: the batch has at most one tenant and goes as it is), or a negative
 * SY_E*.
 */
static long split_by_tenant(loki_t *l, sy_batch_t *batch, sy_batch_t ***out)
{
    const sy_host_api_t *api = l->base.api;
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM;
    tenant_t *t = NULL;
    size_t nt = 0, cap = 0;
    long rc = 0;
    sy_view_node_t *root = api->view_root(v);
    /* Two passes: count the tenants first (cheap: two attribute lookups a record),
     * build only when there are several. */
    for (int pass = 0; pass < 2 && rc >= 0; pass++) {
        for (size_t r = 0; r < api->view_count(root, SY_VIEW_RESOURCES) && rc >= 0; r++) {
            sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
            for (size_t s = 0; s < api->view_count(res, SY_VIEW_SCOPES) && rc >= 0; s++) {
                sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, s);
                for (size_t i = 0; i < api->view_count(sc, SY_VIEW_ITEMS) && rc >= 0; i++) {
                    sy_view_node_t *rec = api->view_at(sc, SY_VIEW_ITEMS, i);
                    const char *ts;
                    size_t tl;
                    lk_tenant(api, res, rec, &ts, &tl);
                    size_t k = 0;
                    while (k < nt && !(t[k].len == tl && (!tl || !memcmp(t[k].s, ts, tl))))
                        k++;
                    if (k == nt) {
                        if (pass == 1) { /* cannot happen: the same records */
                            rc = SY_EINVAL;
                            break;
                        }
                        if (nt == cap) {
                            size_t ncap = cap ? cap * 2 : 4;
                            tenant_t *n = realloc(t, ncap * sizeof(*n));
                            if (!n) {
                                rc = SY_ENOMEM;
                                break;
                            }
                            t = n;
                            cap = ncap;
                        }
                        t[nt++] = (tenant_t){ts, tl, NULL};
                    }
                    if (pass == 1 && api->view_build_add(t[k].bld, rec) < 0) rc = SY_ENOMEM;
                }
            }
        }
        if (pass == 0 && rc >= 0) {
            if (nt <= 1) break;
            for (size_t k = 0; k < nt && rc >= 0; k++)
                if (!(t[k].bld = api->view_build(l->base.inst, SY_SIGNAL_LOGS))) rc = SY_ENOMEM;
        }
    }
    sy_batch_t **pieces = NULL;
    if (rc >= 0 && nt > 1) {
        pieces = calloc(nt, sizeof(*pieces));
        if (!pieces) rc = SY_ENOMEM;
    }
    for (size_t k = 0; k < nt; k++) {
        if (!t[k].bld) continue;
        if (rc >= 0) {
            pieces[k] = api->view_build_finish(t[k].bld);
            if (!pieces[k]) rc = SY_ENOMEM;
        } else {
            api->view_build_abort(t[k].bld);
        }
    }
    api->view_close(v);
    free(t);
    if (rc < 0) {
        for (size_t k = 0; pieces && k < nt; k++)
            if (pieces[k]) api->batch_release(pieces[k]);
        free(pieces);
        return rc;
    }
    *out = pieces;
    return nt > 1 ? (long)nt : 0;
}

static int loki_consume(void *state, sy_batch_t *batch)
{
    loki_t *l = state;
    sy_batch_t **pieces = NULL;
    long n = split_by_tenant(l, batch, &pieces);
    if (n < 0) return (int)n; /* the batch is still the caller's */
    if (n == 0) return syc_oxp_consume(state, batch);
    int rc = syc_xh_consume_all(l->base.xh, pieces, (size_t)n);
    if (rc == SY_OK) {
        l->base.api->metric_add(l->m_split, 1);
        l->base.api->batch_release(batch);
    } else {
        for (long k = 0; k < n; k++)
            l->base.api->batch_release(pieces[k]);
    }
    free(pieces);
    return rc;
}

/* ---- a request ----------------------------------------------------------------------- */

/* A copy of the header list `from` (which is not empty) without X-Scope-OrgID,
 * then `X-Scope-OrgID: tenant` (when tenant is not NULL). NULL when out of memory. */
static struct curl_slist *with_tenant(const struct curl_slist *from, const char *tenant, size_t len)
{
    struct curl_slist *out = NULL;
    for (const struct curl_slist *h = from; h; h = h->next) {
        if (!strncasecmp(h->data, TENANT_HEADER ":", strlen(TENANT_HEADER) + 1)) continue;
        struct curl_slist *n = curl_slist_append(out, h->data);
        if (!n) {
            curl_slist_free_all(out);
            return NULL;
        }
        out = n;
    }
    if (!tenant) return out;
    return syc_oxp_headerf(out, TENANT_HEADER ": %.*s", (int)len, tenant);
}

static int loki_build_body(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    loki_t *l = (loki_t *)o;
    const sy_host_api_t *api = o->api;
    lk_push_t push = {0};
    int rc = lk_translate(api, req->batch, &l->defaults, &push);
    if (rc == SY_OK && push.dropped) {
        api->metric_add(l->m_dropped, (int64_t)push.dropped);
        l->drops_unlogged += push.dropped;
        uint64_t now = monotonic_ms();
        if (!push.entries) {
            /* Nothing left to send: the request fails (the helper logs and counts it). */
            SY_LOG(api, o->inst, SY_LOG_ERROR, "no log record of the request can be sent: %s",
                   push.dropped_why);
            rc = SY_EINVAL;
        } else if (!l->last_drop_log_ms || now - l->last_drop_log_ms >= DROP_LOG_INTERVAL_MS) {
            SY_LOG(api, o->inst, SY_LOG_WARN,
                   "left out %llu log records (at most one such line every %d s): %s",
                   (unsigned long long)l->drops_unlogged, DROP_LOG_INTERVAL_MS / 1000,
                   push.dropped_why);
            l->last_drop_log_ms = now;
            l->drops_unlogged = 0;
        }
    }
    if (rc == SY_OK && push.tenant_len) {
        if (!tenant_ok(push.tenant, push.tenant_len)) {
            SY_LOG(api, o->inst, SY_LOG_ERROR,
                   "the loki.tenant hint names a value that cannot be a tenant (empty, control "
                   "characters or over 1024 bytes): dropping %llu log records",
                   (unsigned long long)req->items);
            rc = SY_EINVAL;
        } else if (!(r->headers = with_tenant(o->headers, push.tenant, push.tenant_len))) {
            rc = SY_ENOMEM;
        }
    }
    syc_buf_t b = {0};
    if (rc == SY_OK)
        rc = l->cfg->encoding == ENC_JSON ? lk_write_json(&push, &b) : lk_write_proto(&push, &b);
    lk_push_free(&push);
    if (rc != SY_OK) {
        free(b.p);
        return rc;
    }
    if (l->cfg->encoding == ENC_JSON && l->cfg->compression == COMP_NONE) {
        r->owned = (uint8_t *)b.p;
        r->body = b.p ? (const uint8_t *)b.p : (const uint8_t *)"";
        r->body_len = b.len;
        return SY_OK;
    }
    syc_encoding_t enc = l->cfg->encoding == ENC_JSON ? SYC_ENCODING_GZIP : SYC_ENCODING_SNAPPY;
    rc = syc_compress(enc, 0, 0, b.p ? (const uint8_t *)b.p : (const uint8_t *)"", b.len, &r->owned,
                      &r->body_len);
    free(b.p);
    r->body = r->owned;
    return rc;
}

static void loki_failed(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                        syc_xh_result_t *res)
{
    (void)req;
    (void)rc;
    snprintf(res->message, sizeof(res->message), "Post \"%s\": %s", o->urls[2], why);
}

static void loki_judge(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                       syc_xh_result_t *res)
{
    loki_t *l = (loki_t *)o;
    (void)req;
    if (status >= 200 && status < 300) return;
    const syc_curl_exchange_t *x = &r->x;
    if (status == 429 || status >= 500) {
        res->verdict = SYC_XH_RETRYABLE;
        res->retry_after_ms = syc_curl_retry_after_ms(x->retry_after);
    } else {
        res->verdict = SYC_XH_PERMANENT;
        o->api->metric_add(l->m_rejected, 1);
    }
    /* Loki answers in plain text: its first printable bytes say why. */
    char why[240];
    size_t n = 0;
    for (size_t i = 0; i < x->body_len && n < sizeof(why) - 1; i++)
        why[n++] = x->body[i] >= 0x20 && x->body[i] < 0x7f ? (char)x->body[i] : ' ';
    while (n && why[n - 1] == ' ')
        n--;
    why[n] = '\0';
    snprintf(res->message, sizeof(res->message), "HTTP %ld \"%s\" from %s%s%s", status,
             status == 429   ? "Too Many Requests"
             : status >= 500 ? "Server Error"
                             : "Client Error",
             o->urls[2], n ? ": " : "", why);
}

static const syc_oxp_ops_t loki_ops = {
    .build_body = loki_build_body,
    .failed = loki_failed,
    .judge = loki_judge,
};

static int loki_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const loki_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "needs a host of plugin ABI 1.1 or later (the view)");
        return SY_ENOTSUP;
    }
    loki_t *l =
        syc_oxp_alloc(sizeof(*l), api, inst, &loki_ops, &c->xh, &c->tls, "Switchyard/0.1.0");
    if (!l) return SY_ENOMEM;
    l->cfg = c;
    l->defaults =
        (lk_defaults_t){c->label_exporter, c->label_job, c->label_instance, c->label_level};
    l->base.urls[2] = strdup(c->endpoint);
    l->m_dropped = api->metric_register(inst, "exporter_loki_dropped_log_records",
                                        "Log records left out of a push: their loki.format "
                                        "hint names no known format, or they have no label.",
                                        SY_METRIC_COUNTER);
    l->m_rejected = api->metric_register(inst, "exporter_loki_rejected_requests",
                                         "Pushes Loki refused with a status that is not "
                                         "retried (4xx other than 429).",
                                         SY_METRIC_COUNTER);
    l->m_split = api->metric_register(inst, "exporter_loki_tenant_splits",
                                      "Batches split into one push per tenant (loki.tenant).",
                                      SY_METRIC_COUNTER);
    struct curl_slist *h =
        curl_slist_append(NULL, c->encoding == ENC_JSON ? "Content-Type: application/json"
                                                        : "Content-Type: application/x-protobuf");
    h = syc_oxp_header(h, "Expect:");
    if (c->encoding == ENC_PROTOBUF)
        h = syc_oxp_header(h, "Content-Encoding: snappy");
    else if (c->compression == COMP_GZIP)
        h = syc_oxp_header(h, "Content-Encoding: gzip");
    h = syc_oxp_header_map(h, &c->headers);
    if (h && c->tenant_id && c->tenant_id[0]) { /* tenant_id wins over headers */
        struct curl_slist *t = with_tenant(h, c->tenant_id, strlen(c->tenant_id));
        curl_slist_free_all(h);
        h = t;
    }
    l->base.headers = h;
    if (!l->base.urls[2]) {
        curl_slist_free_all(l->base.headers);
        l->base.headers = NULL; /* create_done logs and fails */
    }
    l->base.auth_id = c->authenticator;
    return syc_oxp_create_done(&l->base, state);
}

static const sy_plugin_t loki_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "loki",
    .signals = SY_SIGNAL_LOGS,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Sends log records to Grafana Loki's push API (snappy protobuf or JSON), "
                   "with labels from the lokiexporter hints, a sending queue and retries.",
    .config_fields = loki_fields,
    .config_field_count = sizeof(loki_fields) / sizeof(loki_fields[0]),
    .config_size = sizeof(loki_config_t),
    .validate = loki_validate,
    .create = loki_create,
    .start = syc_oxp_start,
    .consume = loki_consume,
    .shutdown = syc_oxp_shutdown,
    .destroy = syc_oxp_destroy,
};

SY_PLUGIN_DEFINE(loki_plugin)
