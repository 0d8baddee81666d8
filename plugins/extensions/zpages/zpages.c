/*
 * zpages.c - the `zpages` extension: a live status page of the running router,
 * served from memory on `endpoint` (localhost:55679 by default, as the
 * collector's zpages).
 *
 *   GET /                 the page (web/index.html, zpages.css, zpages.js): every
 *                         pipeline drawn as receivers -> processors -> exporters,
 *                         refreshed every second from /api/status
 *   GET /api/status       the host's status document (api->status_json(), ABI 1.5)
 *   GET /debug/servicez   build and runtime information, the components (HTML)
 *   GET /debug/pipelinez  the pipelines and their components (HTML)
 *
 * Everything else is 404; a method other than GET or HEAD on one of these paths
 * is 405. The assets are compiled in (zpages_assets.c is generated from web/ at
 * build time) and the page fetches nothing but /api/status from this server,
 * which its Content-Security-Policy also enforces.
 *
 * Everything runs on the instance's loop thread; the state needs no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <switchyard/plugin.h>

#include "http_server.h"
#include "tls_config.h"
#include "zpages_assets.h"
#include "zpages_debug.h"

#define ZP_DEFAULT_ENDPOINT "localhost:55679"
#define ZP_MAX_BODY         4096 /* nothing here takes a body */

/* Sent with every answer: nothing cached, nothing loaded from elsewhere. */
#define ZP_HEADERS                                                                        \
    "Cache-Control: no-store\r\n"                                                         \
    "X-Content-Type-Options: nosniff\r\n"                                                 \
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors " \
    "'none'\r\n"

typedef struct zp_config_s {
    char *endpoint;
    syc_tls_server_cfg_t tls;
} zp_config_t;

static const sy_config_field_t zp_fields[] = {
    {SY_CFG_FIELD("endpoint", SY_CFG_STRING, zp_config_t, endpoint),
     .default_value = ZP_DEFAULT_ENDPOINT,
     .description = "`host:port` to serve the pages on. The default listens on the loopback "
                    "interface only, as the collector's zpages do; the pages show the whole "
                    "configuration graph and recent error messages, so think before opening "
                    "it wider."},
    SYC_TLS_SERVER_FIELDS(zp_config_t, tls, ""),
};

typedef struct zp_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const zp_config_t *cfg;
    syc_http_server_t *server;
    sy_metric_t *requests; /* answered with 200 */
    sy_metric_t *refused;  /* answered 404 / 405 */
    sy_metric_t *failed;   /* 500 (out of memory), 503 (a reload holds the graph) */
    syc_tls_server_t tls;
} zp_state_t;

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */
/* ------------------------------------------------------------------------ */

const zp_asset_t *zp_asset_find(const char *path)
{
    for (size_t i = 0; i < zp_asset_count; i++)
        if (strcmp(zp_assets[i].path, path) == 0) return &zp_assets[i];
    return NULL;
}

typedef enum zp_route_e {
    ZP_ROUTE_NONE,
    ZP_ROUTE_ASSET,
    ZP_ROUTE_STATUS,
    ZP_ROUTE_SERVICEZ,
    ZP_ROUTE_PIPELINEZ,
} zp_route_t;

static zp_route_t zp_route(const char *path, const zp_asset_t **asset)
{
    if (strcmp(path, "/api/status") == 0) return ZP_ROUTE_STATUS;
    if (strcmp(path, "/debug/servicez") == 0) return ZP_ROUTE_SERVICEZ;
    if (strcmp(path, "/debug/pipelinez") == 0) return ZP_ROUTE_PIPELINEZ;
    *asset = zp_asset_find(strcmp(path, "/") == 0 ? "/index.html" : path);
    return *asset ? ZP_ROUTE_ASSET : ZP_ROUTE_NONE;
}

static void zp_plain(zp_state_t *s, syc_http_request_t *req, int status, const char *extra,
                     const char *text)
{
    char headers[512];
    snprintf(headers, sizeof headers, "%s%s", ZP_HEADERS, extra ? extra : "");
    syc_http_respond(req, status, "text/plain; charset=utf-8", headers, text, strlen(text));
    s->api->metric_add(status >= 500 ? s->failed : s->refused, 1);
}

static void zp_handle(void *arg, syc_http_request_t *req)
{
    zp_state_t *s = arg;
    const zp_asset_t *asset = NULL;
    zp_route_t route = zp_route(req->path, &asset);
    if (route == ZP_ROUTE_NONE) {
        zp_plain(s, req, 404, NULL, "404 page not found\n");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        zp_plain(s, req, 405, "Allow: GET, HEAD\r\n", "405 method not allowed\n");
        return;
    }
    if (route == ZP_ROUTE_ASSET) {
        syc_http_respond(req, 200, asset->content_type, ZP_HEADERS, asset->data, asset->len);
        s->api->metric_add(s->requests, 1);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    int rc = s->api->status_json(s->inst, &json, &len);
    if (rc == SY_EAGAIN) {
        /* A configuration reload is replacing the graph: the page retries. */
        zp_plain(s, req, 503, "Retry-After: 1\r\n",
                 "503 the router is reloading its configuration\n");
        return;
    }
    if (rc != SY_OK) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "cannot build the status document (error %d)", rc);
        zp_plain(s, req, 500, NULL, "500 the status document could not be built\n");
        return;
    }
    if (route == ZP_ROUTE_STATUS) {
        syc_http_respond(req, 200, "application/json", ZP_HEADERS, json, len);
    } else {
        size_t html_len = 0;
        char *html =
            zp_debug_render(route == ZP_ROUTE_SERVICEZ ? ZP_PAGE_SERVICEZ : ZP_PAGE_PIPELINEZ, json,
                            len, &html_len);
        if (!html) {
            free(json);
            zp_plain(s, req, 500, NULL, "500 the page could not be built\n");
            return;
        }
        syc_http_respond(req, 200, "text/html; charset=utf-8", ZP_HEADERS, html, html_len);
        free(html);
    }
    free(json);
    s->api->metric_add(s->requests, 1);
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static int zp_validate(const void *config, char *err, size_t err_len)
{
    const zp_config_t *cfg = config;
    if (cfg->endpoint == NULL || cfg->endpoint[0] == '\0') {
        snprintf(err, err_len, "endpoint: must be specified");
        return SY_EINVAL;
    }
    char why[200];
    if (syc_http_endpoint_check(cfg->endpoint, why, sizeof why) != 0) {
        snprintf(err, err_len, "endpoint: %s", why);
        return SY_EINVAL;
    }
    return syc_tls_server_cfg_check(&cfg->tls, "tls", err, err_len);
}

static int zp_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, status_json)) {
        api->log(inst, SY_LOG_ERROR,
                 "this switchyard (plugin ABI %u.%u) has no api->status_json: the zpages "
                 "extension needs ABI 1.5 or later",
                 (unsigned)api->abi_major, (unsigned)api->abi_minor);
        return SY_ENOTSUP;
    }
    zp_state_t *s = calloc(1, sizeof *s);
    if (s == NULL) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->requests =
        api->metric_register(inst, "extension_zpages_requests",
                             "Requests the zpages extension answered with 200.", SY_METRIC_COUNTER);
    s->refused = api->metric_register(
        inst, "extension_zpages_requests_refused",
        "Requests the zpages extension refused (404 unknown path, 405 method not allowed).",
        SY_METRIC_COUNTER);
    s->failed = api->metric_register(
        inst, "extension_zpages_requests_failed",
        "Requests the zpages extension could not answer (500: out of memory; 503: a "
        "configuration reload was replacing the graph).",
        SY_METRIC_COUNTER);
    if (syc_tls_server_open(&s->tls, api, inst, &s->cfg->tls, "tls", true) != 0) {
        free(s);
        return SY_EINVAL;
    }
    *state = s;
    return SY_OK;
}

static int zp_start(void *state)
{
    zp_state_t *s = state;
    char err[256] = "";
    s->server = syc_http_server_start(s->api->loop(s->inst), s->cfg->endpoint, ZP_MAX_BODY,
                                      zp_handle, s, err, sizeof err);
    if (s->server == NULL) {
        s->api->log(s->inst, SY_LOG_ERROR, "cannot listen on \"%s\": %s", s->cfg->endpoint, err);
        return SY_ERROR;
    }
    syc_tls_server_attach(&s->tls, s->server);
    SY_LOG(s->api, s->inst, SY_LOG_INFO, "Starting zpages extension on %s://%s/",
           s->tls.ctx ? "https" : "http", s->cfg->endpoint);
    return SY_OK;
}

static void zp_server_closed(void *arg)
{
    zp_state_t *s = arg;
    s->server = NULL;
}

static void zp_shutdown(void *state)
{
    zp_state_t *s = state;
    syc_tls_server_stop(&s->tls);
    if (s->server != NULL) syc_http_server_close(s->server, zp_server_closed, s);
}

static void zp_destroy(void *state)
{
    zp_state_t *s = state;
    if (s) syc_tls_server_free(&s->tls);
    free(s);
}

static const sy_plugin_t zp_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXTENSION,
    .type = "zpages",
    .signals = 0,
    .flags = 0,
    .version = "0.1.0",
    .description = "Live status page: the pipelines as a graph with their rates, refusals, "
                   "failures, queues and last errors; /debug/servicez and /debug/pipelinez.",
    SY_CFG_TABLE(zp_fields),
    .config_size = sizeof(zp_config_t),
    .validate = zp_validate,
    .create = zp_create,
    .start = zp_start,
    .shutdown = zp_shutdown,
    .destroy = zp_destroy,
};

SY_PLUGIN_DEFINE(zp_plugin)
