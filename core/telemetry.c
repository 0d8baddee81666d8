/*
 * telemetry.c - the metrics registry, its Prometheus rendering, and the thread
 * that serves GET /metrics.
 */
#include "telemetry.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http_server.h"
#include "log.h"
#include "procstat.h"

/* ------------------------------------------------------------------------ */
/* The registry                                                              */
/* ------------------------------------------------------------------------ */

/* All metrics of one exposed name. */
typedef struct sy__family_s {
    char *name; /* exposed: prefix and, for counters, "_total" included */
    char *help;
    sy_metric_type_t type;
    sy_metric_t *series;       /* sorted by labels */
    struct sy__family_s *next; /* sorted by name */
} sy__family_t;

struct sy_metric_s {
    /* Relaxed atomics: a sample is one independent number and orders nothing. */
    _Atomic int64_t value;
    sy__family_t *family;
    char *labels; /* "" when none; escaped */
    sy__gauge_fn fn;
    sy__gauge_double_fn dfn;
    void *arg;
    sy_metric_t *next;
};

/* Guards the lists (not the values): taken by registration, unregistration and
 * rendering. */
static pthread_mutex_t sy__registry_mu = PTHREAD_MUTEX_INITIALIZER;
static sy__family_t *sy__families;

static bool sy__is_name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (c == ':' && colon_ok) return true;
    return !first && c >= '0' && c <= '9';
}

static bool sy__valid_name(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0') return false;
    for (size_t i = 0; s[i] != '\0'; i++)
        if (!sy__is_name_char(s[i], i == 0, colon_ok)) return false;
    return true;
}

/*
 * Checks a label list: name="value"(,name="value")*, where a value holds no raw
 * '"' or newline and a backslash starts one of \\ \" \n. Empty is valid.
 */
static bool sy__valid_labels(const char *s)
{
    const char *p = s;
    if (*p == '\0') return true;
    for (;;) {
        if (!sy__is_name_char(*p, true, false)) return false;
        while (sy__is_name_char(*p, false, false))
            p++;
        if (p[0] != '=' || p[1] != '"') return false;
        p += 2;
        for (; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n') return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') return false;
            }
        }
        p++;
        if (*p == '\0') return true;
        if (*p != ',') return false;
        p++;
    }
}

char *sy__metric_labels(char *buf, size_t cap, ...)
{
    va_list ap;
    size_t pos = 0;
    char *ret = buf;
    if (cap == 0) return NULL;
    va_start(ap, cap);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (!sy__valid_name(key, false)) goto fail;
        if (value == NULL) value = "";
        int n = snprintf(buf + pos, cap - pos, "%s%s=\"", pos > 0 ? "," : "", key);
        if (n < 0 || (size_t)n >= cap - pos) goto fail;
        pos += (size_t)n;
        for (const char *v = value; *v != '\0'; v++) {
            const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
            size_t need = esc != NULL ? 2 : 1;
            if (pos + need >= cap) goto fail;
            if (esc != NULL)
                memcpy(buf + pos, esc, 2);
            else
                buf[pos] = *v;
            pos += need;
        }
        if (pos + 1 >= cap) goto fail;
        buf[pos++] = '"';
    }
    buf[pos] = '\0';
    va_end(ap);
    return ret;
fail:
    va_end(ap);
    buf[0] = '\0';
    return NULL;
}

static bool sy__ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Finds or creates the family of `full`; NULL on a type clash or out of memory.
 * Registry mutex held. */
static sy__family_t *sy__family_get(const char *full, const char *help, sy_metric_type_t type)
{
    sy__family_t **link = &sy__families;
    while (*link != NULL && strcmp((*link)->name, full) < 0)
        link = &(*link)->next;
    if (*link != NULL && strcmp((*link)->name, full) == 0) {
        if ((*link)->type != type) {
            sy__log("telemetry", SY_LOG_ERROR,
                    "metric %s is registered as a %s already; refusing it as a %s", full,
                    (*link)->type == SY_METRIC_COUNTER ? "counter" : "gauge",
                    type == SY_METRIC_COUNTER ? "counter" : "gauge");
            return NULL;
        }
        return *link;
    }
    sy__family_t *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->name = strdup(full);
    f->help = strndup(help != NULL ? help : "", SY__METRIC_HELP_MAX);
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->next = *link;
    *link = f;
    return f;
}

static void sy__family_free_if_empty(sy__family_t *family)
{
    if (family->series != NULL) return;
    for (sy__family_t **link = &sy__families; *link != NULL; link = &(*link)->next) {
        if (*link == family) {
            *link = family->next;
            free(family->name);
            free(family->help);
            free(family);
            return;
        }
    }
}

static sy_metric_t *sy__register(const char *name, const char *help, sy_metric_type_t type,
                                 const char *labels, sy__gauge_fn fn, sy__gauge_double_fn dfn,
                                 void *arg)
{
    char full[SY__METRIC_NAME_MAX + 1];
    if (labels == NULL) labels = "";
    if (!sy__valid_name(name, true) || (type != SY_METRIC_COUNTER && type != SY_METRIC_GAUGE)) {
        sy__log("telemetry", SY_LOG_ERROR, "invalid metric name or type: \"%.100s\"",
                name != NULL ? name : "(null)");
        return NULL;
    }
    const char *suffix =
        type == SY_METRIC_COUNTER && !sy__ends_with(name, "_total") ? "_total" : "";
    int n = snprintf(full, sizeof full, "%s%s%s", SY__METRIC_PREFIX, name, suffix);
    if (n < 0 || (size_t)n >= sizeof full) {
        sy__log("telemetry", SY_LOG_ERROR, "metric name is too long: \"%.100s...\"", name);
        return NULL;
    }
    if (strlen(labels) > SY__METRIC_LABELS_MAX || !sy__valid_labels(labels)) {
        sy__log("telemetry", SY_LOG_ERROR, "metric %s: malformed labels: %.200s", full, labels);
        return NULL;
    }

    pthread_mutex_lock(&sy__registry_mu);
    sy_metric_t *m = NULL;
    sy__family_t *f = sy__family_get(full, help, type);
    if (f == NULL) goto out;
    sy_metric_t **link = &f->series;
    while (*link != NULL && strcmp((*link)->labels, labels) < 0)
        link = &(*link)->next;
    if (*link != NULL && strcmp((*link)->labels, labels) == 0) {
        m = *link;
        if (fn != NULL || dfn != NULL) {
            m->fn = fn;
            m->dfn = dfn;
            m->arg = arg;
        }
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->labels = strdup(labels)) == NULL) {
        free(m);
        m = NULL;
        sy__family_free_if_empty(f);
        goto out;
    }
    atomic_init(&m->value, 0);
    m->family = f;
    m->fn = fn;
    m->dfn = dfn;
    m->arg = arg;
    m->next = *link;
    *link = m;
out:
    pthread_mutex_unlock(&sy__registry_mu);
    return m;
}

sy_metric_t *sy__metric_register(const char *name, const char *help, sy_metric_type_t type,
                                 const char *labels)
{
    return sy__register(name, help, type, labels, NULL, NULL, NULL);
}

sy_metric_t *sy__metric_register_fn(const char *name, const char *help, sy_metric_type_t type,
                                    const char *labels, sy__gauge_fn fn, void *arg)
{
    if (fn == NULL) return NULL;
    return sy__register(name, help, type, labels, fn, NULL, arg);
}

sy_metric_t *sy__metric_register_fn_double(const char *name, const char *help,
                                           sy_metric_type_t type, const char *labels,
                                           sy__gauge_double_fn fn, void *arg)
{
    if (fn == NULL) return NULL;
    return sy__register(name, help, type, labels, NULL, fn, arg);
}

void sy__metric_unregister(sy_metric_t *metric)
{
    if (metric == NULL) return;
    pthread_mutex_lock(&sy__registry_mu);
    sy__family_t *f = metric->family;
    for (sy_metric_t **link = &f->series; *link != NULL; link = &(*link)->next) {
        if (*link == metric) {
            *link = metric->next;
            break;
        }
    }
    sy__family_free_if_empty(f);
    pthread_mutex_unlock(&sy__registry_mu);
    free(metric->labels);
    free(metric);
}

void sy__metric_add(sy_metric_t *metric, int64_t delta)
{
    if (metric != NULL) atomic_fetch_add_explicit(&metric->value, delta, memory_order_relaxed);
}

void sy__metric_set(sy_metric_t *metric, int64_t value)
{
    if (metric != NULL) atomic_store_explicit(&metric->value, value, memory_order_relaxed);
}

int64_t sy__metric_value(const sy_metric_t *metric)
{
    if (metric == NULL) return 0;
    if (metric->fn != NULL) return metric->fn(metric->arg);
    if (metric->dfn != NULL) return (int64_t)metric->dfn(metric->arg);
    /* The cast drops const: C11 atomic_load takes a non-const pointer. */
    return atomic_load_explicit((_Atomic int64_t *)&metric->value, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct sy__buf_s {
    char *data;
    size_t len, cap;
    bool failed;
} sy__buf_t;

static void sy__buf_put(sy__buf_t *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sy__buf_str(sy__buf_t *b, const char *s)
{
    sy__buf_put(b, s, strlen(s));
}

/* HELP text escapes '\' and newline (and nothing else) in format 0.0.4. */
static void sy__buf_help(sy__buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            sy__buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            sy__buf_put(b, "\\n", 2);
        else
            sy__buf_put(b, s, 1);
    }
}

/* Writes a double as the shortest decimal that reads back the same. */
static void sy__format_double(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void sy__render_sample(sy__buf_t *b, const sy__family_t *f, const sy_metric_t *m)
{
    char num[64];
    sy__buf_str(b, f->name);
    if (m->labels[0] != '\0') {
        sy__buf_put(b, "{", 1);
        sy__buf_str(b, m->labels);
        sy__buf_put(b, "}", 1);
    }
    if (m->dfn != NULL)
        sy__format_double(num, sizeof num, m->dfn(m->arg));
    else
        snprintf(num, sizeof num, "%" PRId64, sy__metric_value(m));
    sy__buf_put(b, " ", 1);
    sy__buf_str(b, num);
    sy__buf_put(b, "\n", 1);
}

char *sy__metrics_render(size_t *len)
{
    sy__buf_t b = {0};
    sy__buf_put(&b, "", 0); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&sy__registry_mu);
    for (const sy__family_t *f = sy__families; f != NULL; f = f->next) {
        sy__buf_str(&b, "# HELP ");
        sy__buf_str(&b, f->name);
        sy__buf_put(&b, " ", 1);
        sy__buf_help(&b, f->help);
        sy__buf_str(&b, "\n# TYPE ");
        sy__buf_str(&b, f->name);
        sy__buf_str(&b, f->type == SY_METRIC_COUNTER ? " counter\n" : " gauge\n");
        for (const sy_metric_t *m = f->series; m != NULL; m = m->next)
            sy__render_sample(&b, f, m);
    }
    pthread_mutex_unlock(&sy__registry_mu);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len != NULL) *len = b.len;
    return b.data;
}

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
    sy_http_server_t *server;
    int port;
} sy__srv;

#define SY__METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void sy__metrics_handle(void *arg, sy_http_request_t *req)
{
    static const char not_found[] = "404 page not found\n";
    static const char not_allowed[] = "405 method not allowed\n";
    static const char no_memory[] = "500 out of memory\n";
    (void)arg;
    if (strcmp(req->path, "/metrics") != 0) {
        sy_http_respond(req, 404, "text/plain; charset=utf-8", NULL, not_found,
                        sizeof not_found - 1);
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        sy_http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", not_allowed,
                        sizeof not_allowed - 1);
        return;
    }
    /* HEAD is rendered like GET: the server sends the Content-Length of this body
     * and leaves the body out (RFC 9110 section 9.3.2). */
    size_t len = 0;
    char *text = sy__metrics_render(&len);
    if (text == NULL) {
        sy_http_respond(req, 500, "text/plain; charset=utf-8", NULL, no_memory,
                        sizeof no_memory - 1);
        return;
    }
    sy_http_respond(req, 200, SY__METRICS_CONTENT_TYPE, NULL, text, len);
    free(text);
}

static void sy__metrics_server_closed(void *arg)
{
    (void)arg;
}

static void sy__metrics_stop_cb(uv_async_t *handle)
{
    if (sy__srv.server != NULL)
        sy_http_server_close(sy__srv.server, sy__metrics_server_closed, NULL);
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
    sy__srv.server = sy_http_server_start(&sy__srv.loop, endpoint, 4096, sy__metrics_handle, NULL,
                                          serr, sizeof serr);
    if (sy__srv.server == NULL) {
        snprintf(err, err_len, "service.telemetry.metrics: cannot serve on \"%s\": %s", endpoint,
                 serr);
        rc = SY_EINVAL;
        goto fail_loop;
    }
    sy__srv.port = sy_http_server_port(sy__srv.server);
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
    sy__log("telemetry", SY_LOG_INFO, "serving metrics on http://%s/metrics", endpoint);
    return SY_OK;

fail_loop:
    /* Lets the loop run the close callbacks of whatever was opened. */
    uv_run(&sy__srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(&sy__srv.loop);
    sy__srv.port = 0;
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
}

void sy__telemetry_shutdown(void)
{
    sy__telemetry_stop();
    pthread_mutex_lock(&sy__registry_mu);
    sy__family_t *f = sy__families;
    sy__families = NULL;
    pthread_mutex_unlock(&sy__registry_mu);
    while (f != NULL) {
        sy__family_t *next_f = f->next;
        for (sy_metric_t *m = f->series, *next_m; m != NULL; m = next_m) {
            next_m = m->next;
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
        f = next_f;
    }
    sy__start_time = 0;
}
