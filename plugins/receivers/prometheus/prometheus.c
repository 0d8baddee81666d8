/*
 * prometheus.c - the `prometheus` receiver: scrapes Prometheus targets as the
 * collector's prometheusreceiver does, and emits OTLP metrics.
 *
 * Every target of every scrape config has a timer on the receiver's loop thread;
 * a tick starts one HTTP GET through libcurl's multi interface on the same loop
 * (curl_uv.c), bounded by scrape_timeout. The page is parsed (prom_parse.c),
 * labelled, relabeled and turned into one OTLP request (prom_otlp.c), which is
 * packed into a batch and emitted.
 *
 * Back-pressure: when emit() says SY_EAGAIN the batch is kept and offered again
 * at the target's next tick, before the next scrape; if it is refused again it is
 * dropped and its points counted in receiver_prometheus_dropped_points (a newer
 * scrape supersedes it: every value it held is cumulative or a gauge that the
 * next scrape sends again).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "curl_uv.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_config.h"
#include "prom_otlp.h"
#include "prom_parse.h"

#define PROM_VERSION  "0.1.0"
#define PROM_MAX_BODY (64u << 20) /* without body_size_limit */
#define PROM_ACCEPT                                           \
    "application/openmetrics-text;version=1.0.0,application/" \
    "openmetrics-text;version=0.0.1;q=0.75,"                  \
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

typedef struct prom_rcv_config_s {
    const sy_cfg_node_t *config;
} prom_rcv_config_t;

static const sy_config_field_t prom_fields[] = {
    {SY_CFG_FIELD("config", SY_CFG_RAW, prom_rcv_config_t, config), .required = true,
     .description = "A Prometheus configuration: global.scrape_interval / scrape_timeout and "
                    "scrape_configs (job_name, static_configs, metrics_path, scheme, params, "
                    "honor_labels, metric_relabel_configs ...). See the README for the subset."},
};

typedef struct prom_s prom_t;

typedef struct target_s {
    prom_t *owner;
    const prom_scrape_config_t *sc;
    prom_target_t t;
    char *url;
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    uint8_t *body;
    size_t body_len, body_cap, body_limit;
    bool body_over;
    char content_type[128];
    bool busy;
    bool was_up;
    uint64_t started_mono_ns, started_wall_ns;
    sy_timer_t *timer;
    prom_series_state_t st;
    sy_batch_t *pending;
    size_t pending_points;
} target_t;

struct prom_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    prom_config_t cfg;
    target_t *targets;
    size_t ntargets;
    syc_curl_uv_t *curl;
    bool closing;
    sy_metric_t *m_scrapes, *m_failed, *m_points, *m_dropped, *m_stale;
    uint64_t emitted, dropped; /* points, for the summary logged at shutdown */
};

static void count_points(prom_t *p, bool emitted, size_t points)
{
    p->api->metric_add(emitted ? p->m_points : p->m_dropped, (int64_t)points);
    if (emitted)
        p->emitted += points;
    else
        p->dropped += points;
}

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    target_t *t = arg;
    size_t len = size * n;
    if (t->body_len + len > t->body_limit) {
        t->body_over = true;
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    if (t->body_len + len > t->body_cap) {
        size_t cap = t->body_cap ? t->body_cap : 65536;
        while (cap < t->body_len + len)
            cap *= 2;
        uint8_t *b = realloc(t->body, cap);
        if (!b) return 0;
        t->body = b;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, data, len);
    t->body_len += len;
    return len;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    target_t *t = arg;
    size_t len = size * n;
    static const char name[] = "content-type:";
    if (len > sizeof(name) - 1 && !strncasecmp(line, name, sizeof(name) - 1)) {
        const char *v = line + sizeof(name) - 1;
        const char *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl >= sizeof(t->content_type)) vl = sizeof(t->content_type) - 1;
        memcpy(t->content_type, v, vl);
        t->content_type[vl] = '\0';
    }
    return len;
}

/* Percent-encodes s (RFC 3986 unreserved characters stay). */
static void url_escape(char *out, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
}

static char *make_url(const prom_scrape_config_t *sc, const char *address)
{
    size_t len = strlen(sc->scheme) + strlen(address) + strlen(sc->metrics_path) + 8;
    for (size_t i = 0; i < sc->nparams * 2; i++)
        len += strlen(sc->params[i]) * 3 + 2;
    char *u = malloc(len);
    if (!u) return NULL;
    size_t o = (size_t)snprintf(u, len, "%s://%s%s", sc->scheme, address, sc->metrics_path);
    for (size_t i = 0; i < sc->nparams; i++) {
        u[o++] = i == 0 && !strchr(sc->metrics_path, '?') ? '?' : '&';
        url_escape(u, &o, sc->params[2 * i]);
        u[o++] = '=';
        url_escape(u, &o, sc->params[2 * i + 1]);
    }
    u[o] = '\0';
    return u;
}

static int target_init(prom_t *p, target_t *t, const prom_scrape_config_t *sc,
                       const prom_static_target_t *st)
{
    t->owner = p;
    t->sc = sc;
    t->t.job = sc->job_name;
    t->t.instance = st->address;
    t->t.scheme = sc->scheme;
    /* Static labels named job or instance win over the job name and the
     * address, as in Prometheus; the others stay target labels. */
    t->t.labels = calloc(st->nlabels ? st->nlabels : 1, sizeof(*t->t.labels));
    if (!t->t.labels) return SY_ENOMEM;
    for (size_t i = 0; i < st->nlabels; i++) {
        if (!strcmp(st->labels[i].name, "job"))
            t->t.job = st->labels[i].value;
        else if (!strcmp(st->labels[i].name, "instance"))
            t->t.instance = st->labels[i].value;
        else
            t->t.labels[t->t.nlabels++] = st->labels[i];
    }
    t->t.honor_labels = sc->honor_labels;
    t->t.honor_timestamps = sc->honor_timestamps;
    t->t.rules = sc->rules;
    t->t.nrules = sc->nrules;
    t->body_limit = sc->body_size_limit ? sc->body_size_limit : PROM_MAX_BODY;
    t->was_up = true;
    t->url = make_url(sc, st->address);
    t->easy = curl_easy_init();
    if (!t->url || !t->easy) return SY_ENOMEM;
    char timeout_hdr[96];
    snprintf(timeout_hdr, sizeof(timeout_hdr), "X-Prometheus-Scrape-Timeout-Seconds: %g",
             (double)sc->timeout_ms / 1000.0);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: " PROM_ACCEPT);
    if (h) t->headers = h;
    if (!h || !curl_slist_append(h, timeout_hdr)) return SY_ENOMEM;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "Switchyard/" PROM_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sc->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Prometheus's follow_redirects defaults to true (Go's limit: 10). */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* tls_config (https targets): Prometheus's default minimum is TLS 1.2 too. */
    syc_curl_apply_tls(e, &sc->tls);
    return SY_OK;
}

/* ---- one scrape ---------------------------------------------------------------- */

static void try_emit_pending(target_t *t)
{
    prom_t *p = t->owner;
    if (!t->pending) return;
    if (p->api->emit(p->inst, t->pending) == SY_OK) {
        count_points(p, true, t->pending_points);
    } else {
        p->api->batch_release(t->pending);
        count_points(p, false, t->pending_points);
        SY_LOG(p->api, p->inst, SY_LOG_WARN,
               "dropped the scrape of %s (%zu points): the pipeline refused it twice "
               "(back-pressure)",
               t->url, t->pending_points);
    }
    t->pending = NULL;
    t->pending_points = 0;
}

/* Builds, packs and emits the OTLP request of one scrape (doc NULL: failed). */
static void deliver(target_t *t, const prom_doc_t *doc, double duration_s, prom_arena_t *arena)
{
    prom_t *p = t->owner;
    const sy_host_api_t *api = p->api;
    prom_stats_t stats;
    void *req =
        prom_build(&t->t, &t->st, doc, t->started_wall_ns, duration_s, PROM_VERSION, arena, &stats);
    if (!req) {
        SY_LOG(api, p->inst, SY_LOG_ERROR, "out of memory building the scrape of %s", t->url);
        return;
    }
    api->metric_add(p->m_stale, (int64_t)stats.stale);
    size_t len = protobuf_c_message_get_packed_size(req);
    sy_batch_t *batch = api->batch_new(p->inst, SY_SIGNAL_METRICS);
    uint8_t *buf = batch ? api->batch_alloc(batch, len ? len : 1) : NULL;
    char err[256] = "";
    if (!buf) {
        if (batch) api->batch_release(batch);
        count_points(p, false, stats.points);
        SY_LOG(api, p->inst, SY_LOG_ERROR, "out of memory for the scrape of %s", t->url);
        return;
    }
    protobuf_c_message_pack(req, buf);
    if (api->batch_set_encoded(batch, buf, len, err, sizeof(err)) != 0) {
        api->batch_release(batch);
        count_points(p, false, stats.points);
        SY_LOG(api, p->inst, SY_LOG_ERROR, "the scrape of %s made an invalid request: %s", t->url,
               err);
        return;
    }
    int rc = api->emit(p->inst, batch);
    if (rc == SY_OK) {
        count_points(p, true, stats.points);
        return;
    }
    if (rc == SY_EAGAIN) {
        t->pending = batch; /* offered again at the next tick */
        t->pending_points = stats.points;
        return;
    }
    api->batch_release(batch);
    count_points(p, false, stats.points);
}

static bool is_openmetrics(const char *ct)
{
    while (*ct == ' ')
        ct++;
    return !strncasecmp(ct, "application/openmetrics-text", 28);
}

static void on_done(void *arg, CURL *easy, CURLcode result)
{
    target_t *t = arg;
    prom_t *p = t->owner;
    const sy_host_api_t *api = p->api;
    t->busy = false;
    double duration_s = (double)(now_ns(CLOCK_MONOTONIC) - t->started_mono_ns) / 1e9;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    char why[512] = "", perr[400] = "";
    prom_doc_t doc = {0};
    bool ok = false;
    if (result != CURLE_OK) {
        if (t->body_over)
            snprintf(why, sizeof(why), "body size limit exceeded (%zu bytes)", t->body_limit);
        else if (result == CURLE_OPERATION_TIMEDOUT)
            snprintf(why, sizeof(why), "context deadline exceeded (scrape_timeout %" PRId64 "ms)",
                     t->sc->timeout_ms);
        else
            snprintf(why, sizeof(why), "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(result));
    } else if (status != 200) {
        snprintf(why, sizeof(why), "server returned HTTP status %ld", status);
    } else if (prom_parse(&doc, (const char *)t->body, t->body_len, is_openmetrics(t->content_type),
                          (size_t)t->sc->sample_limit, perr, sizeof(perr)) != 0) {
        snprintf(why, sizeof(why), "invalid %s: %s",
                 is_openmetrics(t->content_type) ? "OpenMetrics" : "text format", perr);
    } else {
        ok = true;
    }
    api->metric_add(p->m_scrapes, 1);
    if (!ok) {
        api->metric_add(p->m_failed, 1);
        /* One warning when a target goes down, debug while it stays down. */
        SY_LOG(api, p->inst, t->was_up ? SY_LOG_WARN : SY_LOG_DEBUG, "scrape of %s failed: %s",
               t->url, why);
    } else if (!t->was_up) {
        SY_LOG(api, p->inst, SY_LOG_INFO, "scrape of %s succeeded again", t->url);
    }
    t->was_up = ok;
    prom_arena_t arena = {.limit = PROM_MAX_ARENA};
    deliver(t, ok ? &doc : NULL, duration_s, &arena);
    prom_arena_free(&arena);
    prom_doc_free(&doc);
    if (t->body_cap > (1u << 20)) { /* do not keep a large page between scrapes */
        free(t->body);
        t->body = NULL;
        t->body_cap = 0;
    }
}

static void on_tick(void *arg)
{
    target_t *t = arg;
    prom_t *p = t->owner;
    if (p->closing) return;
    try_emit_pending(t);
    if (t->busy) return; /* cannot happen: scrape_timeout <= scrape_interval */
    t->body_len = 0;
    t->body_over = false;
    t->content_type[0] = '\0';
    t->errbuf[0] = '\0';
    t->started_mono_ns = now_ns(CLOCK_MONOTONIC);
    t->started_wall_ns = now_ns(CLOCK_REALTIME);
    if (syc_curl_uv_add(p->curl, t->easy, on_done, t) != 0) {
        SY_LOG(p->api, p->inst, SY_LOG_ERROR, "cannot start the scrape of %s", t->url);
        return;
    }
    t->busy = true;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int prom_validate2(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                          char *err, size_t err_len)
{
    (void)node;
    const prom_rcv_config_t *c = config;
    prom_config_t cfg;
    int rc = prom_config_parse(api, c->config, &cfg, err, err_len);
    prom_config_free(&cfg);
    return rc == SY_OK ? SY_OK : SY_EINVAL;
}

static void prom_destroy(void *state);

static int prom_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const prom_rcv_config_t *c = config;
    prom_t *p = calloc(1, sizeof(*p));
    if (!p) return SY_ENOMEM;
    p->api = api;
    p->inst = inst;
    char err[600];
    int rc = prom_config_parse(api, c->config, &p->cfg, err, sizeof(err));
    if (rc != SY_OK) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        goto fail;
    }
    for (size_t i = 0; i < p->cfg.nscrapes; i++)
        p->ntargets += p->cfg.scrapes[i].ntargets;
    p->targets = calloc(p->ntargets ? p->ntargets : 1, sizeof(*p->targets));
    if (!p->targets) {
        rc = SY_ENOMEM;
        goto fail;
    }
    size_t k = 0;
    for (size_t i = 0; i < p->cfg.nscrapes; i++)
        for (size_t j = 0; j < p->cfg.scrapes[i].ntargets; j++) {
            rc =
                target_init(p, &p->targets[k++], &p->cfg.scrapes[i], &p->cfg.scrapes[i].targets[j]);
            if (rc != SY_OK) goto fail;
        }
    p->curl = syc_curl_uv_new(api->loop(inst), 0, err, sizeof(err));
    if (!p->curl) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        rc = SY_ERROR;
        goto fail;
    }
    p->m_scrapes = api->metric_register(inst, "receiver_prometheus_scrapes",
                                        "Scrapes made, successful or not.", SY_METRIC_COUNTER);
    p->m_failed = api->metric_register(inst, "receiver_prometheus_scrape_failures",
                                       "Scrapes that failed (connection, timeout, HTTP status, "
                                       "body size, parse error): up = 0.",
                                       SY_METRIC_COUNTER);
    p->m_points = api->metric_register(inst, "receiver_prometheus_points",
                                       "Data points emitted downstream.", SY_METRIC_COUNTER);
    p->m_dropped = api->metric_register(inst, "receiver_prometheus_dropped_points",
                                        "Data points of scrapes dropped: refused twice by the "
                                        "pipeline (back-pressure), or out of memory.",
                                        SY_METRIC_COUNTER);
    p->m_stale = api->metric_register(inst, "receiver_prometheus_stale_points",
                                      "Stale markers written (series gone, target down).",
                                      SY_METRIC_COUNTER);
    *state = p;
    return SY_OK;
fail:
    prom_destroy(p);
    return rc;
}

static int prom_start(void *state)
{
    prom_t *p = state;
    for (size_t i = 0; i < p->ntargets; i++) {
        target_t *t = &p->targets[i];
        uint64_t every = (uint64_t)t->sc->interval_ms;
        /* The first scrape right away, then one per interval. */
        t->timer = p->api->timer_start(p->inst, 1, every, on_tick, t);
        if (!t->timer) return SY_ERROR;
        SY_LOG(p->api, p->inst, SY_LOG_INFO, "scraping %s every %" PRId64 "ms (job %s)", t->url,
               t->sc->interval_ms, t->sc->job_name);
    }
    return SY_OK;
}

static void prom_shutdown(void *state)
{
    prom_t *p = state;
    if (p->closing) return;
    p->closing = true;
    for (size_t i = 0; i < p->ntargets; i++) {
        target_t *t = &p->targets[i];
        if (t->timer) p->api->timer_stop(t->timer);
        t->timer = NULL;
        t->busy = false;
        try_emit_pending(t);
    }
    if (p->curl) syc_curl_uv_close(p->curl, NULL, NULL); /* cancels scrapes in flight */
    p->curl = NULL;
    SY_LOG(p->api, p->inst, SY_LOG_INFO,
           "stopped: %" PRIu64 " points emitted, %" PRIu64 " dropped under back-pressure or out "
           "of memory",
           p->emitted, p->dropped);
}

static void prom_destroy(void *state)
{
    prom_t *p = state;
    if (!p) return;
    if (p->curl) syc_curl_uv_close(p->curl, NULL, NULL);
    for (size_t i = 0; i < p->ntargets; i++) {
        target_t *t = &p->targets[i];
        if (t->pending) p->api->batch_release(t->pending);
        if (t->easy) curl_easy_cleanup(t->easy);
        curl_slist_free_all(t->headers);
        free(t->url);
        free(t->body);
        free(t->t.labels);
        prom_series_state_free(&t->st);
    }
    free(p->targets);
    prom_config_free(&p->cfg);
    free(p);
}

static const sy_plugin_t prom_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "prometheus",
    .signals = SY_SIGNAL_METRICS,
    .version = PROM_VERSION,
    .description = "Scrapes Prometheus targets (text format 0.0.4 and OpenMetrics) and turns "
                   "the samples into OTLP metrics, as the collector's prometheusreceiver.",
    SY_CFG_TABLE(prom_fields),
    .config_size = sizeof(prom_rcv_config_t),
    .validate2 = prom_validate2,
    .create = prom_create,
    .start = prom_start,
    .shutdown = prom_shutdown,
    .destroy = prom_destroy,
};

SY_PLUGIN_DEFINE(prom_plugin)
