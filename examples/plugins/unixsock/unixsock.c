/*
 * unixsock - an example exporter: appends every log record, as one line of
 * text, to a Unix stream socket:
 *
 *   <severity_text>|<body>|<key>=<value>;<key>=<value>...\n
 *
 * (string attributes only; '|', ';' and newlines in them are written as '_').
 * It connects in start(), and again every `reconnect_interval` after the peer
 * went away. Until it is connected, and while more than `max_pending` bytes are
 * still being written, consume() answers SY_EAGAIN: the host keeps the batch and
 * offers it again after api->ready(), so nothing is dropped while the reader is
 * slow or away. Threads: its loop thread (libuv), no locks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h and clock_gettime() under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <switchyard/plugin.h>

typedef struct unixsock_config_s {
    char *path;
    int64_t reconnect_interval; /* ns */
    uint64_t max_pending;
} unixsock_config_t;

static const sy_config_field_t unixsock_fields[] = {
    {SY_CFG_FIELD("path", SY_CFG_STRING, unixsock_config_t, path), .required = true, .min = "1",
     .max = "107", .description = "The Unix socket to connect to."},
    {SY_CFG_FIELD("reconnect_interval", SY_CFG_DURATION, unixsock_config_t, reconnect_interval),
     .default_value = "1s", .min = "10ms", .max = "1h",
     .description = "How long to wait before connecting again."},
    {SY_CFG_FIELD("max_pending", SY_CFG_SIZE, unixsock_config_t, max_pending),
     .default_value = "1MiB", .min = "1KiB",
     .description = "Bytes being written above which consume() pushes back."},
};

typedef struct unixsock_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const unixsock_config_t *cfg;
    uv_pipe_t pipe;
    uv_connect_t connect;
    bool pipe_open, connected, waiting, stopping;
    size_t pending; /* bytes handed to uv_write() not yet written */
    sy_timer_t *retry;
    sy_metric_t *m_lines, *m_reconnects;
} unixsock_t;

typedef struct write_s {
    uv_write_t req;
    unixsock_t *u;
    size_t len;
    char data[];
} write_t;

static void connect_now(void *arg);

static void wake(unixsock_t *u)
{
    if (u->waiting && u->connected && u->pending <= u->cfg->max_pending) {
        u->waiting = false;
        u->api->ready(u->inst);
    }
}

static void on_closed(uv_handle_t *h)
{
    unixsock_t *u = h->data;
    u->pipe_open = false;
    if (u->stopping || u->retry) return;
    uint64_t ms = (uint64_t)(u->cfg->reconnect_interval / 1000000);
    u->retry = u->api->timer_start(u->inst, ms, 0, connect_now, u);
}

static void drop_connection(unixsock_t *u, int status)
{
    SY_LOG(u->api, u->inst, SY_LOG_WARN, "%s: %s; connecting again in %lld ms", u->cfg->path,
           uv_strerror(status), (long long)(u->cfg->reconnect_interval / 1000000));
    u->connected = false;
    if (u->pipe_open && !uv_is_closing((uv_handle_t *)&u->pipe))
        uv_close((uv_handle_t *)&u->pipe, on_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    unixsock_t *u = req->data;
    if (status != 0) {
        if (status != UV_ECANCELED) drop_connection(u, status);
        return;
    }
    u->connected = true;
    SY_LOG(u->api, u->inst, SY_LOG_INFO, "connected to %s", u->cfg->path);
    wake(u);
}

static void connect_now(void *arg)
{
    unixsock_t *u = arg;
    if (u->retry) {
        u->api->timer_stop(u->retry);
        u->retry = NULL;
        u->api->metric_add(u->m_reconnects, 1);
    }
    if (uv_pipe_init(u->api->loop(u->inst), &u->pipe, 0) != 0) return;
    u->pipe.data = u;
    u->pipe_open = true;
    u->connect.data = u;
    uv_pipe_connect(&u->connect, &u->pipe, u->cfg->path, on_connect);
}

static void on_written(uv_write_t *req, int status)
{
    write_t *w = (write_t *)req;
    unixsock_t *u = w->u;
    u->pending -= w->len;
    free(w);
    if (status != 0 && status != UV_ECANCELED && u->connected) drop_connection(u, status);
    wake(u);
}

/* Appends `len` bytes of s, with the separators replaced, to the line. */
static void put_clean(char *out, size_t *at, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        out[(*at)++] = c == '|' || c == ';' || c == '\n' || c == '\r' ? '_' : c;
    }
}

/* The text of one batch: an upper bound of its size first, then the lines. */
static write_t *format(unixsock_t *u, sy_view_t *view, size_t *lines)
{
    const sy_host_api_t *api = u->api;
    size_t cap = 0, n = 0;
    sy_view_node_t *root = api->view_root(view);
    for (int pass = 0; pass < 2; pass++) {
        write_t *w = pass ? malloc(sizeof(*w) + cap) : NULL;
        if (pass && !w) return NULL;
        size_t at = 0;
        for (size_t r = 0; r < api->view_count(root, SY_VIEW_RESOURCES); r++) {
            sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
            for (size_t c = 0; c < api->view_count(res, SY_VIEW_SCOPES); c++) {
                sy_view_node_t *scope = api->view_at(res, SY_VIEW_SCOPES, c);
                for (size_t i = 0; i < api->view_count(scope, SY_VIEW_ITEMS); i++) {
                    sy_view_node_t *log = api->view_at(scope, SY_VIEW_ITEMS, i);
                    sy_value_t sev, body, k, v;
                    api->view_get(log, SY_FIELD_SEVERITY_TEXT, &sev);
                    api->view_get(log, SY_FIELD_BODY, &body);
                    size_t na = api->view_attr_count(log);
                    if (!pass) {
                        cap += sev.len + 4 + na;
                        if (body.type == SY_VALUE_STRING) cap += body.len;
                        for (size_t a = 0; a < na; a++)
                            if (api->view_attr_at(log, a, &k, &v) == 0)
                                cap += k.len + (v.type == SY_VALUE_STRING ? v.len : 0) + 2;
                        n++;
                        continue;
                    }
                    put_clean(w->data, &at, sev.str, sev.len);
                    w->data[at++] = '|';
                    if (body.type == SY_VALUE_STRING) put_clean(w->data, &at, body.str, body.len);
                    w->data[at++] = '|';
                    bool first = true;
                    for (size_t a = 0; a < na; a++) {
                        if (api->view_attr_at(log, a, &k, &v) != 0 || v.type != SY_VALUE_STRING)
                            continue;
                        if (!first) w->data[at++] = ';';
                        first = false;
                        put_clean(w->data, &at, k.str, k.len);
                        w->data[at++] = '=';
                        put_clean(w->data, &at, v.str, v.len);
                    }
                    w->data[at++] = '\n';
                }
            }
        }
        if (pass) {
            w->len = at;
            *lines = n;
            return w;
        }
    }
    return NULL;
}

static int unixsock_consume(void *state, sy_batch_t *batch)
{
    unixsock_t *u = state;
    const sy_host_api_t *api = u->api;
    if (!u->connected || u->pending > u->cfg->max_pending) {
        u->waiting = true; /* wake() calls api->ready() */
        return SY_EAGAIN;
    }
    sy_view_t *view = api->view_open(batch);
    if (!view) return SY_ENOMEM;
    size_t lines = 0;
    write_t *w = format(u, view, &lines);
    api->view_close(view);
    if (!w) return SY_ENOMEM;
    w->u = u;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    int rc = w->len ? uv_write(&w->req, (uv_stream_t *)&u->pipe, &buf, 1, on_written) : 0;
    if (rc != 0 || !w->len) {
        free(w);
        if (rc != 0) {
            drop_connection(u, rc);
            u->waiting = true;
            return SY_EAGAIN;
        }
    } else {
        u->pending += w->len;
    }
    api->metric_add(u->m_lines, (int64_t)lines);
    api->batch_release(batch);
    return SY_OK;
}

static int unixsock_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                           void **state)
{
    unixsock_t *u = calloc(1, sizeof(*u));
    if (!u) return SY_ENOMEM;
    u->api = api;
    u->inst = inst;
    u->cfg = config;
    u->m_lines = api->metric_register(inst, "exporter_unixsock_lines",
                                      "Log records written to the socket.", SY_METRIC_COUNTER);
    u->m_reconnects =
        api->metric_register(inst, "exporter_unixsock_reconnects",
                             "Connection attempts after the first.", SY_METRIC_COUNTER);
    *state = u;
    return SY_OK;
}

static int unixsock_start(void *state)
{
    connect_now(state); /* a failure is retried, so start() does not fail */
    return SY_OK;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    unixsock_t *u = req->data;
    free(req);
    uv_close((uv_handle_t *)&u->pipe, on_closed);
}

/* Lets what was written reach the socket (uv_shutdown waits for the writes),
 * then closes it. The host runs the loop until the close callback has run. */
static void unixsock_shutdown(void *state)
{
    unixsock_t *u = state;
    u->stopping = true;
    if (!u->pipe_open || uv_is_closing((uv_handle_t *)&u->pipe)) return;
    uv_shutdown_t *req = u->connected ? malloc(sizeof(*req)) : NULL;
    if (req) {
        req->data = u;
        if (uv_shutdown(req, (uv_stream_t *)&u->pipe, on_shutdown) == 0) return;
        free(req);
    }
    uv_close((uv_handle_t *)&u->pipe, on_closed);
}

static void unixsock_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t unixsock_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "unixsock",
    .signals = SY_SIGNAL_LOGS,
    .version = "0.1.0",
    .description = "Example: appends log records as lines to a Unix socket.",
    SY_CFG_TABLE(unixsock_fields),
    .config_size = sizeof(unixsock_config_t),
    .create = unixsock_create,
    .start = unixsock_start,
    .consume = unixsock_consume,
    .shutdown = unixsock_shutdown,
    .destroy = unixsock_destroy,
};

SY_PLUGIN_DEFINE(unixsock_plugin)
