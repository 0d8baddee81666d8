/*
 * health_check.c - the `health_check` extension: an HTTP endpoint that says
 * whether the router is up, for liveness and readiness probes.
 *
 * GET or HEAD on `path` answers 200 with
 *     {"status":"Server available","upSince":"<RFC 3339 time>","uptime":"<duration>"}
 * while the host reports SY_STATUS_READY, and 503 with
 *     {"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}
 * otherwise, as the collector's extension does (its upSince and uptime are Go's
 * time.Time and time.Duration formats, reproduced here). `response_body.healthy`
 * and `response_body.unhealthy` replace those bodies.
 *
 * Everything runs on the instance's loop thread; the state needs no locks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include <switchyard/plugin.h>

#include "http_server.h"
#include "tls_config.h"

#define HC_DEFAULT_ENDPOINT "localhost:13133"
#define HC_PATH_MAX         1024
#define HC_WATCH_MS         100 /* how often the status is polled until it is READY */

typedef struct hc_config_s {
    char *endpoint;
    char *path;
    char *body_healthy;   /* NULL: the default JSON body */
    char *body_unhealthy; /* NULL: the default JSON body */
    const sy_cfg_node_t *check_collector_pipeline;
    syc_tls_server_cfg_t tls;
} hc_config_t;

static const sy_config_field_t hc_fields[] = {
    {SY_CFG_FIELD("endpoint", SY_CFG_STRING, hc_config_t, endpoint),
     .default_value = HC_DEFAULT_ENDPOINT,
     .description = "`host:port` to listen on. Use `0.0.0.0:13133` in a container."},
    {SY_CFG_FIELD("path", SY_CFG_STRING, hc_config_t, path), .default_value = "/",
     .description = "Path that answers. It must start with `/`. As in the collector (Go's "
                    "`ServeMux`), a path ending in `/` also answers every path below it, so the "
                    "default `/` answers any path; `/health/status` answers only itself."},
    {SY_CFG_FIELD("response_body.healthy", SY_CFG_STRING, hc_config_t, body_healthy),
     .description = "Body sent with 200 instead of the JSON status below."},
    {SY_CFG_FIELD("response_body.unhealthy", SY_CFG_STRING, hc_config_t, body_unhealthy),
     .description = "Body sent with 503 instead of the JSON status below."},
    {SY_CFG_FIELD("check_collector_pipeline", SY_CFG_RAW, hc_config_t, check_collector_pipeline),
     .description =
         "Accepted so that collector configs load, and ignored with a warning. The collector "
         "itself documents this feature as not working and advises against it."},
    SYC_TLS_SERVER_FIELDS(hc_config_t, tls, ""),
};

typedef struct hc_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const hc_config_t *cfg;
    syc_http_server_t *server;
    syc_tls_server_t tls;
    sy_timer_t *watch;       /* polls the status until it is READY; NULL after */
    bool ready;              /* the status was READY when last looked at */
    struct timespec up_wall; /* when it became READY: wall clock, for upSince */
    struct timespec up_mono; /* and monotonic, for uptime */
    bool closing;            /* shutdown() ran; the server's close is pending */
} hc_state_t;

/* ------------------------------------------------------------------------ */
/* Go's formats                                                              */
/* ------------------------------------------------------------------------ */

/* Appends "<whole>[.<frac>]" where frac has `digits` digits with trailing zeros
 * dropped, as Go prints durations. */
static int hc_put_fraction(char *out, size_t cap, uint64_t value, uint64_t unit, int digits)
{
    uint64_t whole = value / unit, frac = value % unit;
    if (frac == 0) return snprintf(out, cap, "%" PRIu64, whole);
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    return snprintf(out, cap, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
}

/* time.Duration.String(): "0s", "850ns", "1.5µs", "12.3ms", "4.2s", "3m0s", "1h2m3.5s". */
static void hc_format_duration(char *out, size_t cap, uint64_t ns)
{
    if (ns == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (ns < 1000u) {
        snprintf(out, cap, "%" PRIu64 "ns", ns);
        return;
    }
    if (ns < 1000000000u) {
        bool micro = ns < 1000000u;
        int n = hc_put_fraction(out, cap, ns, micro ? 1000u : 1000000u, micro ? 3 : 6);
        if (n > 0 && (size_t)n < cap)
            snprintf(out + n, cap - (size_t)n, micro ? "\xc2\xb5s" : "ms");
        return;
    }
    uint64_t hours = ns / 3600000000000u, minutes = ns / 60000000000u % 60u;
    uint64_t rest = ns % 60000000000u;
    int n = 0;
    if (hours > 0)
        n = snprintf(out, cap, "%" PRIu64 "h%" PRIu64 "m", hours, minutes);
    else if (minutes > 0)
        n = snprintf(out, cap, "%" PRIu64 "m", minutes);
    if (n < 0 || (size_t)n >= cap) return;
    int m = hc_put_fraction(out + n, cap - (size_t)n, rest, 1000000000u, 9);
    if (m > 0 && (size_t)(n + m) < cap) snprintf(out + n + m, cap - (size_t)(n + m), "s");
}

/* time.Time in RFC 3339 with nanoseconds, trailing zeros dropped, in UTC. */
static void hc_format_time(char *out, size_t cap, const struct timespec *ts)
{
    struct tm tm;
    time_t sec = ts->tv_sec;
    gmtime_r(&sec, &tm);
    int n = (int)strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n <= 0) {
        snprintf(out, cap, "0001-01-01T00:00:00Z");
        return;
    }
    if (ts->tv_nsec != 0) {
        char frac[16];
        snprintf(frac, sizeof frac, "%09ld", ts->tv_nsec);
        for (int i = 8; i > 0 && frac[i] == '0'; i--)
            frac[i] = '\0';
        n += snprintf(out + n, cap - (size_t)n, ".%s", frac);
    }
    if ((size_t)n < cap) snprintf(out + n, cap - (size_t)n, "Z");
}

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

static void hc_watch_cb(void *arg);

/* Looks at the host's status and remembers when it became READY. While it is not
 * READY, a timer keeps looking, so that upSince is the moment of the change and
 * not that of the first probe after it. */
static bool hc_observe(hc_state_t *s)
{
    bool ready = s->api->status() == SY_STATUS_READY;
    if (ready && !s->ready) {
        clock_gettime(CLOCK_REALTIME, &s->up_wall);
        clock_gettime(CLOCK_MONOTONIC, &s->up_mono);
        SY_LOG(s->api, s->inst, SY_LOG_INFO, "Health Check state change: ready");
    } else if (!ready && s->ready) {
        SY_LOG(s->api, s->inst, SY_LOG_INFO, "Health Check state change: unavailable");
    }
    s->ready = ready;
    if (ready && s->watch != NULL) {
        s->api->timer_stop(s->watch);
        s->watch = NULL;
    } else if (!ready && s->watch == NULL && !s->closing) {
        s->watch = s->api->timer_start(s->inst, HC_WATCH_MS, HC_WATCH_MS, hc_watch_cb, s);
    }
    return ready;
}

static void hc_watch_cb(void *arg)
{
    hc_observe(arg);
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */
/* ------------------------------------------------------------------------ */

/* Go's ServeMux rules, which the collector's extension follows: a pattern ending
 * in '/' matches every path below it, any other pattern matches only itself. */
static bool hc_path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '/') return strncmp(path, pattern, n) == 0;
    return strcmp(path, pattern) == 0;
}

static void hc_handle(void *arg, syc_http_request_t *req)
{
    static const char not_found[] = "404 page not found\n";
    static const char not_allowed[] = "405 method not allowed\n";
    hc_state_t *s = arg;
    if (!hc_path_matches(s->cfg->path, req->path)) {
        syc_http_respond(req, 404, "text/plain; charset=utf-8", NULL, not_found,
                         sizeof not_found - 1);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        syc_http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", not_allowed,
                         sizeof not_allowed - 1);
        return;
    }
    bool ready = hc_observe(s);
    const char *custom = ready ? s->cfg->body_healthy : s->cfg->body_unhealthy;
    int status = ready ? 200 : 503;
    /* HEAD is answered like GET: the server sends the Content-Length of the body
     * and leaves the body out (RFC 9110 section 9.3.2). */
    if (custom != NULL) {
        syc_http_respond(req, status, "application/json", NULL, custom, strlen(custom));
        return;
    }
    char body[256], since[64], uptime[64];
    if (ready) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ns = (int64_t)(now.tv_sec - s->up_mono.tv_sec) * 1000000000 +
                     (now.tv_nsec - s->up_mono.tv_nsec);
        hc_format_time(since, sizeof since, &s->up_wall);
        hc_format_duration(uptime, sizeof uptime, ns > 0 ? (uint64_t)ns : 0);
        snprintf(body, sizeof body,
                 "{\"status\":\"Server available\",\"upSince\":\"%s\",\"uptime\":\"%s\"}", since,
                 uptime);
    } else {
        snprintf(body, sizeof body,
                 "{\"status\":\"Server not available\",\"upSince\":\"0001-01-01T00:00:00Z\","
                 "\"uptime\":\"\"}");
    }
    syc_http_respond(req, status, "application/json", NULL, body, strlen(body));
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static int hc_validate(const void *config, char *err, size_t err_len)
{
    const hc_config_t *cfg = config;
    if (cfg->endpoint == NULL || cfg->endpoint[0] == '\0') {
        snprintf(err, err_len, "endpoint: must be specified");
        return SY_EINVAL;
    }
    if (cfg->path == NULL || cfg->path[0] != '/') {
        snprintf(err, err_len, "path: must start with /");
        return SY_EINVAL;
    }
    if (strlen(cfg->path) > HC_PATH_MAX) {
        snprintf(err, err_len, "path: longer than %d bytes", HC_PATH_MAX);
        return SY_EINVAL;
    }
    return syc_tls_server_cfg_check(&cfg->tls, "tls", err, err_len);
}

static int hc_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    hc_state_t *s = calloc(1, sizeof *s);
    if (s == NULL) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    const sy_cfg_node_t *ccp = s->cfg->check_collector_pipeline;
    if (ccp != NULL && api->cfg_kind(ccp) != 'n')
        SY_LOG(api, inst, SY_LOG_WARN,
               "check_collector_pipeline (%s) is not supported and is ignored; the endpoint "
               "reports the router's status only",
               api->cfg_where(ccp));
    if (syc_tls_server_open(&s->tls, api, inst, &s->cfg->tls, "tls", true) != 0) {
        free(s);
        return SY_EINVAL;
    }
    *state = s;
    return SY_OK;
}

static int hc_start(void *state)
{
    hc_state_t *s = state;
    char err[256] = "";
    s->server = syc_http_server_start(s->api->loop(s->inst), s->cfg->endpoint, 1024, hc_handle, s,
                                      err, sizeof err);
    if (s->server == NULL) {
        s->api->log(s->inst, SY_LOG_ERROR, "cannot listen on \"%s\": %s", s->cfg->endpoint, err);
        return SY_ERROR;
    }
    syc_tls_server_attach(&s->tls, s->server);
    SY_LOG(s->api, s->inst, SY_LOG_INFO, "Starting health_check extension on %s://%s%s",
           s->tls.ctx ? "https" : "http", s->cfg->endpoint, s->cfg->path);
    hc_observe(s);
    return SY_OK;
}

static void hc_server_closed(void *arg)
{
    hc_state_t *s = arg;
    s->server = NULL;
}

static void hc_shutdown(void *state)
{
    hc_state_t *s = state;
    s->closing = true;
    syc_tls_server_stop(&s->tls);
    if (s->watch != NULL) {
        s->api->timer_stop(s->watch);
        s->watch = NULL;
    }
    if (s->server != NULL) syc_http_server_close(s->server, hc_server_closed, s);
}

static void hc_destroy(void *state)
{
    hc_state_t *s = state;
    if (s != NULL) syc_tls_server_free(&s->tls);
    free(s);
}

static const sy_plugin_t hc_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXTENSION,
    .type = "health_check",
    .signals = 0,
    .flags = 0,
    .version = "0.1.0",
    .description = "HTTP endpoint reporting whether the router is ready, for health probes.",
    .config_fields = hc_fields,
    .config_field_count = sizeof hc_fields / sizeof hc_fields[0],
    .config_size = sizeof(hc_config_t),
    .validate = hc_validate,
    .create = hc_create,
    .start = hc_start,
    .consume = NULL,
    .shutdown = hc_shutdown,
    .destroy = hc_destroy,
};

SY_PLUGIN_DEFINE(hc_plugin)
