/*
 * prometheusremotewrite.c - the `prometheusremotewrite` exporter: metrics as
 * Prometheus remote write 1.0 requests (prometheus.WriteRequest, block-snappy
 * compressed) POSTed to `endpoint`, as the collector's exporter of that name.
 *
 * The translation is prw_translate.c's (from the batch's decoded request, as the
 * prometheus exporter reads it); a batch whose WriteRequest would be larger than
 * max_batch_size_bytes goes as several HTTP requests, one after the other, as one
 * attempt of the shared exporterhelper (plugins/common/otlp_exporter_common.c:
 * split requests), so a retry resumes at the part that failed.
 *
 * Status handling as the collector's: 2xx is success; 5xx and 429 are retried with
 * back-off (after Retry-After when the server sends one); any other status is a
 * permanent failure: the batch is dropped, counted, and logged with the response
 * body. Failures without an answer (connection refused, timeout) are retried.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "compress.h"
#include "otlp_exporter_common.h"
#include "prw_translate.h"

#define PRW_WARN_INTERVAL_MS 10000

typedef struct prw_config_s {
    char *endpoint;
    sy_cfg_strmap_t headers;
    sy_cfg_strmap_t external_labels;
    bool resource_to_telemetry;
    bool target_info;
    bool send_metadata;
    int64_t max_batch_size_bytes;
    char *ns;
    bool add_metric_suffixes;
    syc_tls_client_t tls;
    syc_xh_config_t xh;  /* remote_write_queue fills its queue part */
    char *authenticator; /* auth.authenticator */
} prw_config_t;

static const sy_config_field_t prw_fields[] = {
    {.name = "endpoint",
     .type = SY_CFG_STRING,
     .offset = offsetof(prw_config_t, endpoint),
     .required = true,
     .description = "The remote write URL (http:// or https://), e.g. "
                    "http://prometheus:9090/api/v1/write."},
    {.name = "headers",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(prw_config_t, headers),
     .description = "Headers added to every request."},
    SYC_OXP_AUTH_FIELD(prw_config_t, authenticator),
    {.name = "external_labels",
     .type = SY_CFG_STRMAP,
     .offset = offsetof(prw_config_t, external_labels),
     .description = "Labels added to every series that has no label of that name."},
    {.name = "resource_to_telemetry_conversion.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prw_config_t, resource_to_telemetry),
     .default_value = "false",
     .description = "Make every resource attribute a label of each of the resource's series."},
    {.name = "target_info.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prw_config_t, target_info),
     .default_value = "true",
     .description = "Write a target_info series per resource with its attributes as labels."},
    {.name = "send_metadata",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prw_config_t, send_metadata),
     .default_value = "false",
     .description = "Send the type, HELP and unit of each metric (MetricMetadata)."},
    {.name = "max_batch_size_bytes",
     .type = SY_CFG_INT,
     .offset = offsetof(prw_config_t, max_batch_size_bytes),
     .default_value = "3000000",
     .description = "Largest encoded WriteRequest (before compression); a batch that would be "
                    "larger is sent as several requests."},
    {.name = "namespace",
     .type = SY_CFG_STRING,
     .offset = offsetof(prw_config_t, ns),
     .description = "Prefix of every metric name (namespace_name)."},
    {.name = "add_metric_suffixes",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prw_config_t, add_metric_suffixes),
     .default_value = "true",
     .description = "Append unit and type suffixes (_seconds, _total, _ratio) to names."},
    {.name = "remote_write_queue.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(prw_config_t, xh.queue_enabled),
     .default_value = "true",
     .description = "Queue requests in memory and send several at once."},
    {.name = "remote_write_queue.queue_size",
     .type = SY_CFG_INT,
     .offset = offsetof(prw_config_t, xh.queue_size),
     .default_value = "10000",
     .description = "Capacity of the queue, in batches."},
    {.name = "remote_write_queue.num_consumers",
     .type = SY_CFG_INT,
     .offset = offsetof(prw_config_t, xh.num_consumers),
     .default_value = "5",
     .description = "Requests in flight at once (waiting to retry included)."},
    SYC_XH_TLS_FIELDS(prw_config_t, tls),
    SYC_XH_RETRY_FIELDS(prw_config_t, xh),
};

typedef struct prw_s {
    syc_oxp_t base; /* first: the plugin's state is also the shared part's */
    const prw_config_t *cfg;
    prw_cfg_t tcfg;
    sy_metric_t *m_series, *m_samples, *m_requests, *m_bytes, *m_dropped_temporal,
        *m_dropped_exphist, *m_dropped_invalid, *m_permanent;
    uint64_t last_warn_ms[2], suppressed[2];
} prw_t;

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* At most one line per kind per PRW_WARN_INTERVAL_MS; the rest are counted. */
static void prw_warn(prw_t *s, int kind, const char *msg)
{
    uint64_t now = monotonic_ms();
    if (s->last_warn_ms[kind] && now - s->last_warn_ms[kind] < PRW_WARN_INTERVAL_MS) {
        s->suppressed[kind]++;
        return;
    }
    SY_LOG(s->base.api, s->base.inst, SY_LOG_WARN, "%s (%" PRIu64 " more like it not logged)", msg,
           s->suppressed[kind]);
    s->last_warn_ms[kind] = now;
    s->suppressed[kind] = 0;
}

static int prw_validate(const void *config, char *err, size_t err_len)
{
    const prw_config_t *c = config;
    const char *u = c->endpoint;
    if (!u || !(!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) || strlen(u) >= 4096) {
        snprintf(err, err_len, "'endpoint' must be an http:// or https:// URL, got \"%.100s\"",
                 u ? u : "");
        return SY_EINVAL;
    }
    if (syc_oxp_validate_headers(&c->headers, err, err_len) < 0) return SY_EINVAL;
    if (syc_tls_client_check(&c->tls, err, err_len) < 0) return SY_EINVAL;
    for (size_t i = 0; i < c->external_labels.count; i++) {
        const char *k = c->external_labels.keys[i], *v = c->external_labels.values[i];
        if (!*k || !*v) {
            snprintf(err, err_len, "'external_labels' contains an empty key or value");
            return SY_EINVAL;
        }
        if (!syc_prom_is_legacy_name(k, strlen(k), false) || !strncmp(k, "__", 2)) {
            snprintf(err, err_len,
                     "'external_labels': \"%.64s\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                     "not starting with __)",
                     k);
            return SY_EINVAL;
        }
    }
    if (c->max_batch_size_bytes <= 0) {
        snprintf(err, err_len, "'max_batch_size_bytes' must be positive, got %" PRId64,
                 c->max_batch_size_bytes);
        return SY_EINVAL;
    }
    if (c->xh.num_consumers <= 0) {
        snprintf(err, err_len, "'remote_write_queue.num_consumers' must be positive");
        return SY_EINVAL;
    }
    if (c->xh.queue_size < 0) {
        snprintf(err, err_len, "'remote_write_queue.queue_size' can't be negative");
        return SY_EINVAL;
    }
    return syc_xh_config_validate(&c->xh, err, err_len);
}

/* ---- one request ------------------------------------------------------------------ */

/* Translates the batch into parts, each snappy-compressed. */
static int prw_build_body(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    prw_t *s = (prw_t *)o;
    const sy_host_api_t *api = o->api;
    r->split = true;
    const void *decoded = api->batch_request(req->batch);
    if (!decoded) return SY_ENOMEM; /* cannot happen for bytes the receiver walked */
    prw_stats_t st = {0};
    prw_part_t *raw = NULL;
    size_t n = 0;
    if (prw_translate(&s->tcfg, decoded, (size_t)s->cfg->max_batch_size_bytes, &raw, &n, &st) < 0)
        return SY_ENOMEM;
    r->parts = calloc(n ? n : 1, sizeof(*r->parts));
    if (!r->parts) {
        prw_parts_free(raw, n);
        return SY_ENOMEM;
    }
    int rc = SY_OK;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n && rc == SY_OK; i++) {
        rc = syc_xh_compress(SYC_XH_COMPRESS_SNAPPY, 0, 0, raw[i].data, raw[i].len,
                             &r->parts[i].data, &r->parts[i].len);
        if (rc == SY_OK) {
            r->nparts++;
            bytes += r->parts[i].len;
        }
    }
    prw_parts_free(raw, n);
    if (rc < 0) return rc;
    api->metric_add(s->m_series, (int64_t)st.series);
    api->metric_add(s->m_samples, (int64_t)st.samples);
    api->metric_add(s->m_requests, (int64_t)n);
    api->metric_add(s->m_bytes, (int64_t)bytes);
    uint64_t dropped = st.dropped_temporal + st.dropped_exphist + st.dropped_invalid;
    if (dropped) {
        api->metric_add(s->m_dropped_temporal, (int64_t)st.dropped_temporal);
        api->metric_add(s->m_dropped_exphist, (int64_t)st.dropped_exphist);
        api->metric_add(s->m_dropped_invalid, (int64_t)st.dropped_invalid);
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "dropped %" PRIu64 " data points that remote write cannot carry: %" PRIu64
                 " of delta or unspecified temporality, %" PRIu64
                 " of exponential histograms, %" PRIu64 " of metrics without a valid name",
                 dropped, st.dropped_temporal, st.dropped_exphist, st.dropped_invalid);
        prw_warn(s, 0, msg);
    }
    return SY_OK;
}

static void prw_failed(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                       syc_xh_result_t *res)
{
    (void)req;
    (void)rc;
    snprintf(res->message, sizeof(res->message), "Post \"%s\": %s", o->urls[1], why);
}

static void prw_judge(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                      syc_xh_result_t *res)
{
    (void)req;
    prw_t *s = (prw_t *)o;
    if (status >= 200 && status < 300) return;
    /* The body, as text: Prometheus answers with a plain-text reason. */
    char body[256];
    size_t n = 0;
    for (size_t i = 0; i < r->x.body_len && n + 1 < sizeof(body); i++) {
        unsigned char ch = r->x.body[i];
        body[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    while (n && body[n - 1] == ' ')
        n--;
    body[n] = '\0';
    if (status == 429 || status >= 500) {
        res->verdict = SYC_XH_RETRYABLE;
        res->retry_after_ms = syc_curl_retry_after_ms(r->x.retry_after);
    } else {
        res->verdict = SYC_XH_PERMANENT;
        o->api->metric_add(s->m_permanent, 1);
    }
    snprintf(res->message, sizeof(res->message), "HTTP %ld from %s (part %zu of %zu)%s%s", status,
             o->urls[1], r->part + 1, r->nparts, n ? ": " : "", body);
}

static void prw_free(syc_oxp_t *o)
{
    prw_t *s = (prw_t *)o;
    free((void *)s->tcfg.namer.ns);
}

static const syc_oxp_ops_t prw_ops = {
    .build_body = prw_build_body,
    .failed = prw_failed,
    .judge = prw_judge,
    .free = prw_free,
};

/* ---- the instance ------------------------------------------------------------------- */

static int prw_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                      void **state)
{
    const prw_config_t *c = config;
    prw_t *s = syc_oxp_alloc(sizeof(*s), api, inst, &prw_ops, &c->xh, &c->tls, "Switchyard/0.1.0");
    if (!s) return SY_ENOMEM;
    s->cfg = c;
    char *ns = strdup(c->ns ? c->ns : "");
    s->tcfg = (prw_cfg_t){
        .namer = syc_prom_namer_for(-1, c->add_metric_suffixes, ns),
        .resource_to_telemetry = c->resource_to_telemetry,
        .target_info = c->target_info,
        .send_metadata = c->send_metadata,
        .n_external = c->external_labels.count,
        .external_names = c->external_labels.keys,
        .external_values = c->external_labels.values,
    };
    s->base.urls[1] = strdup(c->endpoint);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    l = syc_oxp_header(l, "Content-Encoding: snappy");
    l = syc_oxp_header(l, "X-Prometheus-Remote-Write-Version: 0.1.0");
    l = syc_oxp_header(l, "Expect:"); /* no 100-continue round trip before large bodies */
    s->base.headers = syc_oxp_header_map(l, &c->headers);
    if (!ns || !s->base.urls[1]) s->base.headers = (curl_slist_free_all(s->base.headers), NULL);
    s->m_series =
        api->metric_register(inst, "exporter_prometheusremotewrite_series",
                             "TimeSeries written into remote write requests.", SY_METRIC_COUNTER);
    s->m_samples =
        api->metric_register(inst, "exporter_prometheusremotewrite_samples",
                             "Samples written into remote write requests.", SY_METRIC_COUNTER);
    s->m_requests = api->metric_register(
        inst, "exporter_prometheusremotewrite_requests",
        "Remote write requests made (a batch over max_batch_size_bytes makes several).",
        SY_METRIC_COUNTER);
    s->m_bytes =
        api->metric_register(inst, "exporter_prometheusremotewrite_sent_bytes",
                             "Bytes of the compressed request bodies made.", SY_METRIC_COUNTER);
    s->m_dropped_temporal = api->metric_register(
        inst, "exporter_prometheusremotewrite_dropped_temporality_points",
        "Data points of delta or unspecified-temporality sums and histograms, left out.",
        SY_METRIC_COUNTER);
    s->m_dropped_exphist = api->metric_register(
        inst, "exporter_prometheusremotewrite_dropped_exponential_histogram_points",
        "Data points of exponential histograms, left out (no native histograms).",
        SY_METRIC_COUNTER);
    s->m_dropped_invalid = api->metric_register(
        inst, "exporter_prometheusremotewrite_dropped_invalid_points",
        "Data points of metrics whose name translates to nothing, left out.", SY_METRIC_COUNTER);
    s->m_permanent = api->metric_register(
        inst, "exporter_prometheusremotewrite_permanent_failures",
        "Requests the endpoint refused with a status that is not retried (4xx but 429).",
        SY_METRIC_COUNTER);
    s->base.auth_id = c->authenticator;
    return syc_oxp_create_done(&s->base, state);
}

static const sy_plugin_t prw_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "prometheusremotewrite",
    .signals = SY_SIGNAL_METRICS,
    .flags = SY_PLUGIN_REPORTS_OUTCOME,
    .version = "0.1.0",
    .description = "Sends metrics as Prometheus remote write 1.0 requests (snappy protobuf).",
    .config_fields = prw_fields,
    .config_field_count = sizeof(prw_fields) / sizeof(prw_fields[0]),
    .config_size = sizeof(prw_config_t),
    .validate = prw_validate,
    .create = prw_create,
    .start = syc_oxp_start,
    .consume = syc_oxp_consume,
    .shutdown = syc_oxp_shutdown,
    .destroy = syc_oxp_destroy,
};

SY_PLUGIN_DEFINE(prw_plugin)
