/*
 * telemetry.c - the router's own metrics as a service: the process metrics
 * (uptime, start time, CPU, RSS, read from procstat at scrape time) and the
 * GET /metrics endpoint on a thread and libuv loop of its own; start, stop and
 * the final shutdown that frees the registry. The registry itself is
 * telemetry_registry.c, its text format telemetry_render.c.
 */
#include "telemetry_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http_server.h"
#include "log.h"
#include "telemetry_tls.h"
#include "procstat.h"

/* ------------------------------------------------------------------------ */
/* Process metrics                                                           */
/* ------------------------------------------------------------------------ */

/* Set once by sy__telemetry_start() before the metrics that read it exist. */
static double sy__start_time;

static double sy__proc_uptime(void *arg)
{
    (void)arg;
    return sy__procstat_now() - sy__start_time;
}

static double sy__proc_start_time(void *arg)
{
    (void)arg;
    return sy__start_time;
}

static double sy__proc_cpu(void *arg)
{
    (void)arg;
    sy__procstat_t ps;
    sy__procstat_read(&ps);
    return ps.cpu_user_seconds + ps.cpu_system_seconds;
}

static int64_t sy__proc_rss(void *arg)
{
    (void)arg;
    sy__procstat_t ps;
    sy__procstat_read(&ps);
    return (int64_t)ps.rss_bytes;
}

static int sy__register_process_metrics(void)
{
    sy__procstat_t ps;
    if (sy__start_time == 0) {
        sy__procstat_read(&ps);
        sy__start_time = ps.start_time_seconds > 0 ? ps.start_time_seconds : sy__procstat_now();
    }
    if (sy__metric_register_fn_double("process_uptime_seconds",
                                      "Seconds since the process started.", SY_METRIC_GAUGE, NULL,
                                      sy__proc_uptime, NULL) == NULL ||
        sy__metric_register_fn_double("process_start_time_seconds",
                                      "Start time of the process since the Unix epoch in seconds.",
                                      SY_METRIC_GAUGE, NULL, sy__proc_start_time, NULL) == NULL ||
        sy__metric_register_fn_double("process_cpu_seconds",
                                      "Total user and system CPU time spent in seconds.",
                                      SY_METRIC_COUNTER, NULL, sy__proc_cpu, NULL) == NULL ||
        sy__metric_register_fn("process_resident_memory_bytes", "Resident memory size in bytes.",
                               SY_METRIC_GAUGE, NULL, sy__proc_rss, NULL) == NULL)
        return SY_ENOMEM;
    return SY_OK;
}

/* ------------------------------------------------------------------------ */
/* The /metrics endpoint                                                     */
/* ------------------------------------------------------------------------ */

/* The endpoint's thread and loop. Written by the main thread before the thread is
 * created and after it is joined; in between, only the metrics thread touches the
 * loop and the server (pthread_create and pthread_join order the two). */
static struct {
    bool running;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    syc_http_server_t *server;
    int port;
    /* service.telemetry.metrics.tls (sy__telemetry_set_tls): the settings, the
     * context once made, the reload timer of reload_interval. */
    bool tls_set, timer_open;
    sy__metrics_tls_t tls;
    syc_tls_ctx_t *tls_ctx;
    uv_timer_t tls_timer;
} sy__srv;

int sy__telemetry_set_tls(const sy_cfg_node_t *tls, const char *const *module_dirs, size_t ndirs,
                          char *err, size_t err_len)
{
    if (sy__srv.tls_set) sy__metrics_tls_free(&sy__srv.tls);
    sy__srv.tls_set = false;
    if (!tls) return SY_OK;
    const sy_cfg_node_t *bad = tls;
    char why[512];
    if (sy__metrics_tls_read(tls, &sy__srv.tls, &bad, why, sizeof(why)) < 0) {
        const char *at = sy__cfg_where(bad);
        snprintf(err, err_len, "%s: %s", at ? at : "service.telemetry.metrics.tls", why);
        return SY_EINVAL;
    }
    syc_tls_module_dirs(module_dirs, ndirs);
    sy__srv.tls_set = true;
    return SY_OK;
}

/* reload_interval: reads the three files again for new connections; a failure
 * keeps what was loaded (metrics thread). */
static void sy__metrics_tls_reload(uv_timer_t *t)
{
    (void)t;
    char err[512];
    if (syc_tls_ctx_reload(sy__srv.tls_ctx, err, sizeof(err)) != 0)
        sy__log("telemetry", SY_LOG_WARN,
                "%s: service.telemetry.metrics.tls: %s; the TLS files loaded before stay in use",
                sy__srv.tls.where, err);
}

#define SY__METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void sy__metrics_handle(void *arg, syc_http_request_t *req)
{
    static const char not_found[] = "404 page not found\n";
    static const char not_allowed[] = "405 method not allowed\n";
    static const char no_memory[] = "500 out of memory\n";
    (void)arg;
    if (strcmp(req->path, "/metrics") != 0) {
        syc_http_respond(req, 404, "text/plain; charset=utf-8", NULL, not_found,
                         sizeof not_found - 1);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        syc_http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", not_allowed,
                         sizeof not_allowed - 1);
        return;
    }
    /* HEAD is rendered like GET: the server sends the Content-Length of this body
     * and leaves the body out (RFC 9110 section 9.3.2). */
    size_t len = 0;
    char *text = sy__metrics_render(&len);
    if (text == NULL) {
        syc_http_respond(req, 500, "text/plain; charset=utf-8", NULL, no_memory,
                         sizeof no_memory - 1);
        return;
    }
    syc_http_respond(req, 200, SY__METRICS_CONTENT_TYPE, NULL, text, len);
    free(text);
}

static void sy__metrics_server_closed(void *arg)
{
    (void)arg;
}

static void sy__metrics_stop_cb(uv_async_t *handle)
{
    if (sy__srv.server != NULL)
        syc_http_server_close(sy__srv.server, sy__metrics_server_closed, NULL);
    if (sy__srv.timer_open) uv_close((uv_handle_t *)&sy__srv.tls_timer, NULL);
    sy__srv.timer_open = false;
    sy__srv.server = NULL;
    uv_close((uv_handle_t *)handle, NULL);
}

static void *sy__metrics_thread(void *arg)
{
    (void)arg;
    /* Runs until sy__metrics_stop_cb() has closed every handle. */
    uv_run(&sy__srv.loop, UV_RUN_DEFAULT);
    return NULL;
}

int sy__telemetry_start(const char *endpoint, char *err, size_t err_len)
{
    int rc = sy__register_process_metrics();
    if (rc != SY_OK) {
        snprintf(err, err_len, "cannot register the process metrics: out of memory");
        return rc;
    }
    if (endpoint == NULL) return SY_OK;
    if (sy__srv.running) {
        snprintf(err, err_len, "the metrics endpoint is running already");
        return SY_EINVAL;
    }
    int uvrc = uv_loop_init(&sy__srv.loop);
    if (uvrc != 0) {
        snprintf(err, err_len, "cannot create the metrics loop: %s", uv_strerror(uvrc));
        return SY_ERROR;
    }
    char serr[256] = "";
    sy__srv.server = syc_http_server_start(&sy__srv.loop, endpoint, 4096, sy__metrics_handle, NULL,
                                           serr, sizeof serr);
    if (sy__srv.server == NULL) {
        snprintf(err, err_len, "service.telemetry.metrics: cannot serve on \"%s\": %s", endpoint,
                 serr);
        rc = SY_EINVAL;
        goto fail_loop;
    }
    sy__srv.port = syc_http_server_port(sy__srv.server);
    if (sy__srv.tls_set) {
        char terr[512] = "";
        sy__srv.tls_ctx = syc_tls_ctx_new(&sy__srv.tls.set, terr, sizeof terr);
        if (!sy__srv.tls_ctx) {
            snprintf(err, err_len, "%s: service.telemetry.metrics.tls: %s", sy__srv.tls.where,
                     terr);
            syc_http_server_close(sy__srv.server, sy__metrics_server_closed, NULL);
            sy__srv.server = NULL;
            rc = SY_EINVAL;
            goto fail_loop;
        }
        syc_http_server_set_tls(sy__srv.server, sy__srv.tls_ctx);
        uint64_t every = (uint64_t)(sy__srv.tls.reload_ns / 1000000);
        if (every && uv_timer_init(&sy__srv.loop, &sy__srv.tls_timer) == 0) {
            sy__srv.timer_open = true;
            uv_timer_start(&sy__srv.tls_timer, sy__metrics_tls_reload, every, every);
        }
    }
    uv_async_init(&sy__srv.loop, &sy__srv.stop, sy__metrics_stop_cb);

    /* The thread starts with every signal blocked, so that SIGTERM and SIGHUP reach
     * the main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&sy__srv.thread, NULL, sy__metrics_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        snprintf(err, err_len, "cannot start the metrics thread: %s", strerror(prc));
        sy__metrics_stop_cb(&sy__srv.stop);
        rc = SY_ERROR;
        goto fail_loop;
    }
#ifdef __linux__
    pthread_setname_np(sy__srv.thread, "sy-metrics");
#endif
    sy__srv.running = true;
    sy__log("telemetry", SY_LOG_INFO, "serving metrics on %s://%s/metrics",
            sy__srv.tls_ctx ? "https" : "http", endpoint);
    return SY_OK;

fail_loop:
    /* Lets the loop run the close callbacks of whatever was opened. */
    uv_run(&sy__srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(&sy__srv.loop);
    sy__srv.port = 0;
    syc_tls_ctx_free(sy__srv.tls_ctx);
    sy__srv.tls_ctx = NULL;
    return rc;
}

int sy__telemetry_port(void)
{
    return sy__srv.running ? sy__srv.port : 0;
}

void sy__telemetry_stop(void)
{
    if (!sy__srv.running) return;
    /* uv_async_send is the one libuv call that is safe from another thread. */
    uv_async_send(&sy__srv.stop);
    pthread_join(sy__srv.thread, NULL);
    int rc = uv_loop_close(&sy__srv.loop);
    if (rc != 0)
        sy__log("telemetry", SY_LOG_WARN, "metrics loop closed with handles left: %s",
                uv_strerror(rc));
    sy__srv.running = false;
    sy__srv.port = 0;
    syc_tls_ctx_free(sy__srv.tls_ctx);
    sy__srv.tls_ctx = NULL;
}

void sy__telemetry_shutdown(void)
{
    sy__telemetry_stop();
    if (sy__srv.tls_set) sy__metrics_tls_free(&sy__srv.tls);
    sy__srv.tls_set = false;
    sy__metrics_free_all();
    sy__start_time = 0;
}
