/*
 * plugin_host.c - switchyard-plugin-host: runs one ordinary processor or exporter
 * plugin (.so) in a process of its own, speaking the subprocess protocol
 * (docs/subprocess.md) on stdin and stdout, so that the `subprocess` processor or
 * exporter of a router can run any plugin out of process.
 *
 *   switchyard-plugin-host [--plugin-dir DIR]... [--config FILE | --config-yaml TEXT]
 *                          [--log-level LEVEL] processor|exporter TYPE[/NAME]
 *
 * It loads the plugin with the router's own loader (plugin path, ABI checks), fills
 * its configuration from the YAML map given (the component's settings, as under
 * its key in a router's configuration) with the router's field table code, and
 * drives it through the router's host API table, with the data-flow members
 * replaced:
 *  - a processor gets each DATA request in consume(); what it emits during that
 *    call is sent back as DATA frames, then ACK; an error return is a NACK. A
 *    processor that holds data across calls (batch, tail_sampling) and emits it
 *    later from a timer cannot be answered for: such emits are dropped, counted
 *    and logged, so run only processors that emit from consume() this way;
 *  - an exporter gets one request at a time: consume() (again after ready() when
 *    it declines), then ACK when it returned SY_OK, or, for an exporter that
 *    reports outcomes, once outcomes for all the request's items have come (NACK
 *    if any were given up). Outcomes are expected on the loop thread.
 * Everything runs on the main thread's libuv loop (the plugin's loop thread);
 * the log goes to stderr. At end of file on stdin the plugin is shut down and
 * destroyed and the program exits 0.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "cow.h"
#include "diag.h"
#include "engine.h"
#include "loader.h"
#include "log.h"
#include "subproc_frame.h"

#define HOST_ORIGIN "switchyard-plugin-host"

typedef struct req_s {
    struct req_s *next;
    uint64_t seq;
    sy_batch_t *batch;
} req_t;

typedef struct host_s {
    sy__thread_t thread; /* only its loop is used: the plugin's loop thread */
    sy_instance_t inst;
    sy__pipeline_t pipeline; /* only its id: named in the core's refusal messages */
    sy_host_api_t api;
    const sy_plugin_t *d;
    uv_pipe_t in;
    uv_async_t ready_async;
    uint8_t *rbuf;
    size_t rlen, rcap;
    bool hello, created, started, stopping;
    /* processor: the batches emitted during the current consume() */
    bool in_request;
    sy_batch_t **emitted;
    size_t nemitted, cap;
    uint64_t stray_items;
    /* exporter: requests waiting, the one given, the outcomes still expected */
    req_t *head, *tail;
    req_t *cur;
    bool cur_given, cur_failed;
    int64_t cur_left;
    sy_cfg_node_t *node; /* the configuration: SY_CFG_RAW fields point into it */
    int exit_code;
} host_t;

static host_t H;

/* ---- writing frames (blocking: the router always reads) ------------------------- */

static int write_all(const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(1, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = 1, .events = POLLOUT};
            poll(&pf, 1, -1);
            continue;
        }
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void send_frame(uint8_t type, uint8_t signal, uint64_t seq, const void *payload, size_t len)
{
    uint8_t h[SYC_SPF_HEADER];
    syc_spf_header(h, type, signal, seq, len);
    if (write_all(h, sizeof(h)) < 0 || (len && write_all(payload, len) < 0)) {
        /* The router is gone: nothing more to do. */
        SY__LOG(SY_LOG_ERROR, H.inst.id, "writing to stdout failed: %s", strerror(errno));
        _exit(1);
    }
}

static void send_nack(uint64_t seq, const char *msg)
{
    send_frame(SYC_SPF_NACK, 0, seq, msg, strlen(msg));
}

/* ---- the host functions replaced ----------------------------------------------- */

static int host_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    (void)inst;
    if (H.in_request && H.nemitted < H.cap) {
        H.emitted[H.nemitted++] = batch;
        return SY_OK;
    }
    if (H.in_request) {
        size_t cap = H.cap ? H.cap * 2 : 8;
        sy_batch_t **n = realloc(H.emitted, cap * sizeof(*n));
        if (!n) return SY_ENOMEM;
        H.emitted = n;
        H.cap = cap;
        H.emitted[H.nemitted++] = batch;
        return SY_OK;
    }
    uint64_t items = sy__batch_items(batch);
    H.stray_items += items;
    SY__LOG(SY_LOG_WARN, H.inst.id,
            "%llu items emitted outside consume() dropped (%llu so far): a processor that "
            "holds data across batches cannot be answered for out of process",
            (unsigned long long)items, (unsigned long long)H.stray_items);
    sy__batch_release(batch);
    return SY_OK;
}

static int host_emit_to(sy_instance_t *inst, sy_batch_t *batch, const char *const *p, size_t n)
{
    (void)inst, (void)batch, (void)p, (void)n;
    return SY_ENOTSUP;
}

static void host_pipeline_refuse(sy_instance_t *inst, bool refuse)
{
    (void)inst, (void)refuse;
}

static void host_queue_budget_limit(sy_instance_t *inst, uint64_t bytes)
{
    (void)inst, (void)bytes;
}

static void give_next(void);

static void finish_cur(void)
{
    req_t *r = H.cur;
    H.cur = NULL;
    if (H.cur_failed)
        send_nack(r->seq, "the exporter gave up on the batch");
    else
        send_frame(SYC_SPF_ACK, 0, r->seq, NULL, 0);
    free(r);
    give_next();
}

static void host_exporter_outcome(sy_instance_t *inst, sy_signal_t signal, uint64_t items,
                                  bool sent)
{
    (void)inst, (void)signal;
    if (!H.cur || !H.cur_given) return;
    if (!sent) H.cur_failed = true;
    H.cur_left -= (int64_t)items;
    if (H.cur_left <= 0) finish_cur();
}

static void host_ready(sy_instance_t *inst)
{
    (void)inst;
    uv_async_send(&H.ready_async); /* any thread */
}

/* ---- requests ------------------------------------------------------------------ */

static void process(uint64_t seq, sy_batch_t *b)
{
    H.in_request = true;
    H.nemitted = 0;
    sy_instance_t *prev = sy__consumer_enter(&H.inst);
    int rc = H.d->consume(H.inst.state, b);
    sy__consumer_leave(prev);
    H.in_request = false;
    for (size_t i = 0; i < H.nemitted; i++) {
        size_t len = 0;
        const uint8_t *enc = sy__batch_encoded(H.emitted[i], &len);
        if (enc) send_frame(SYC_SPF_DATA, (uint8_t)sy__batch_signal(H.emitted[i]), seq, enc, len);
        sy__batch_release(H.emitted[i]);
    }
    if (rc < 0) {
        char msg[80];
        snprintf(msg, sizeof(msg), "the processor refused the batch (error %d)", rc);
        sy__batch_release(b);
        send_nack(seq, msg);
        return;
    }
    send_frame(SYC_SPF_ACK, 0, seq, NULL, 0);
}

/* Offers the exporter its current request (again after ready()). */
static void give_next(void)
{
    if (!H.cur) {
        if (!(H.cur = H.head)) return;
        H.head = H.cur->next;
        if (!H.head) H.tail = NULL;
        H.cur_given = H.cur_failed = false;
    }
    if (H.cur_given) return;
    uint64_t items = sy__batch_items(H.cur->batch);
    H.cur_left = (int64_t)items;
    H.cur_given = true; /* outcomes may come from inside consume() */
    sy_instance_t *prev = sy__consumer_enter(&H.inst);
    int rc = H.d->consume(H.inst.state, H.cur->batch);
    sy__consumer_leave(prev);
    if (rc == SY_EAGAIN) {
        H.cur_given = false; /* ready() calls us again */
        return;
    }
    if (rc < 0) {
        sy__batch_release(H.cur->batch);
        H.cur_failed = true;
        finish_cur();
        return;
    }
    if (!(H.d->flags & SY_PLUGIN_REPORTS_OUTCOME) || items == 0) finish_cur();
}

static void on_ready_async(uv_async_t *a)
{
    (void)a;
    if (H.cur && !H.cur_given) give_next();
}

static int start_plugin(uint8_t signals)
{
    H.inst.signals = signals & H.d->signals;
    if (!H.inst.signals) H.inst.signals = H.d->signals;
    sy_instance_t *prev = sy__consumer_enter(&H.inst);
    int rc = H.d->create(&H.api, &H.inst, H.inst.config, &H.inst.state);
    if (rc == SY_OK) {
        H.created = true;
        rc = H.d->start ? H.d->start(H.inst.state) : SY_OK;
        H.started = rc == SY_OK;
    }
    sy__consumer_leave(prev);
    if (rc < 0) SY__LOG(SY_LOG_ERROR, H.inst.id, "the plugin did not start (error %d)", rc);
    return rc;
}

static void stop(int code);

static void on_frame(const syc_spf_frame_t *f)
{
    if (!H.hello) {
        size_t vl = strlen(SYC_SPF_VERSION);
        if (f->type != SYC_SPF_HELLO || f->len < vl || memcmp(f->payload, SYC_SPF_VERSION, vl)) {
            SY__LOG(SY_LOG_ERROR, H.inst.id, "expected a %s hello first", SYC_SPF_VERSION);
            stop(1);
            return;
        }
        H.hello = true;
        if (start_plugin(f->signal) < 0) {
            stop(1);
            return;
        }
        char hello[160];
        snprintf(hello, sizeof(hello), "%s switchyard-plugin-host %s %s", SYC_SPF_VERSION,
                 sy__kind_name(H.d->kind), H.inst.id);
        send_frame(SYC_SPF_HELLO, (uint8_t)H.inst.signals, 0, hello, strlen(hello));
        return;
    }
    if (f->type != SYC_SPF_DATA) {
        SY__LOG(SY_LOG_ERROR, H.inst.id, "unexpected %s frame", syc_spf_type_name(f->type));
        stop(1);
        return;
    }
    sy_batch_t *b = sy__batch_new((sy_signal_t)f->signal, HOST_ORIGIN);
    uint8_t *buf = b && f->len ? sy__batch_alloc(b, f->len) : NULL;
    char err[160] = "out of memory";
    if (!b || (f->len && !buf)) goto bad;
    if (f->len) memcpy(buf, f->payload, f->len);
    if (H.api.batch_set_encoded(b, f->len ? buf : (const uint8_t *)"", f->len, err, sizeof(err)) <
        0)
        goto bad;
    if (!(H.inst.signals & f->signal)) {
        snprintf(err, sizeof(err), "signal %u is not one the plugin handles", f->signal);
        goto bad;
    }
    if (H.d->kind == SY_KIND_PROCESSOR) {
        process(f->seq, b);
        return;
    }
    req_t *r = calloc(1, sizeof(*r));
    if (!r) goto bad;
    r->seq = f->seq;
    r->batch = b;
    if (H.tail)
        H.tail->next = r;
    else
        H.head = r;
    H.tail = r;
    give_next();
    return;
bad:
    if (b) sy__batch_release(b);
    send_nack(f->seq, err);
}

/* ---- stdin ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    if (H.rcap - H.rlen < 65536) {
        size_t cap = H.rlen + 131072;
        uint8_t *n = realloc(H.rbuf, cap);
        if (!n) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        H.rbuf = n;
        H.rcap = cap;
    }
    *buf = uv_buf_init((char *)H.rbuf + H.rlen, (unsigned)(H.rcap - H.rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)s, (void)buf;
    if (nread < 0) {
        if (nread != UV_EOF)
            SY__LOG(SY_LOG_ERROR, H.inst.id, "reading stdin: %s", uv_strerror((int)nread));
        stop(nread == UV_EOF ? 0 : 1);
        return;
    }
    H.rlen += (size_t)nread;
    size_t pos = 0;
    while (!H.stopping) {
        syc_spf_frame_t f;
        size_t used;
        char err[128];
        int rc = syc_spf_parse(H.rbuf + pos, H.rlen - pos, &f, &used, err, sizeof(err));
        if (rc == 0) break;
        if (rc < 0) {
            SY__LOG(SY_LOG_ERROR, H.inst.id, "protocol error on stdin: %s", err);
            stop(1);
            break;
        }
        pos += used;
        on_frame(&f);
    }
    memmove(H.rbuf, H.rbuf + pos, H.rlen - pos);
    H.rlen -= pos;
}

/* Stops reading, shuts the plugin down; the loop then ends when its handles close. */
static void stop(int code)
{
    if (H.stopping) return;
    H.stopping = true;
    H.exit_code = code;
    uv_read_stop((uv_stream_t *)&H.in);
    uv_close((uv_handle_t *)&H.in, NULL);
    uv_close((uv_handle_t *)&H.ready_async, NULL);
    if (H.started && H.d->shutdown) {
        sy_instance_t *prev = sy__consumer_enter(&H.inst);
        H.d->shutdown(H.inst.state);
        sy__consumer_leave(prev);
    }
    sy__instance_close_timers(&H.inst);
}

/* ---- setup ------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: switchyard-plugin-host [--plugin-dir DIR]... [--config FILE | "
                    "--config-yaml TEXT]\n"
                    "                              [--log-level debug|info|warn|error] "
                    "processor|exporter TYPE[/NAME]\n"
                    "Runs one processor or exporter plugin, speaking the subprocess protocol "
                    "(docs/subprocess.md) on stdin and stdout.\n");
    return 2;
}

/* Loads the plugin and fills its configuration. 0, or an exit code. */
static int load(sy__registry_t *reg, const char *kind_name, const char *id, const char *cfg_file,
                const char *cfg_yaml)
{
    sy_kind_t kind;
    if (sy__kind_from_name(kind_name, &kind) < 0 ||
        (kind != SY_KIND_PROCESSOR && kind != SY_KIND_EXPORTER)) {
        fprintf(stderr, "switchyard-plugin-host: the kind must be processor or exporter, not %s\n",
                kind_name);
        return 2;
    }
    char type[64];
    snprintf(type, sizeof(type), "%.*s", (int)strcspn(id, "/"), id);
    sy__plugin_file_t *file = sy__registry_find(reg, kind, type);
    char err[512];
    if (!file) {
        char *dirs = sy__registry_dirs(reg);
        fprintf(stderr, "switchyard-plugin-host: no %s plugin of type %s in %s\n", kind_name, type,
                dirs ? dirs : "the plugin path");
        free(dirs);
        return 2;
    }
    if (sy__registry_load(file, err, sizeof(err)) < 0) {
        fprintf(stderr, "switchyard-plugin-host: %s\n", err);
        return 2;
    }
    H.d = &file->desc;
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy_cfg_node_t *node = NULL;
    if (cfg_file)
        node = sy__cfg_load(&cfg_file, 1, NULL, 0, &diag);
    else if (cfg_yaml)
        node = sy__cfg_load_string("--config-yaml", cfg_yaml, &diag);
    void *config = calloc(1, H.d->config_size ? H.d->config_size : 1);
    int rc = (cfg_file || cfg_yaml) && !node ? 2 : 0;
    if (!rc && (!config || sy__cfg_fill(id, H.d->config_fields, H.d->config_field_count, node,
                                        config, &diag) < 0))
        rc = 2;
    for (int pass = 0; !rc && pass < 2; pass++) {
        err[0] = 0;
        int v = SY_OK;
        if (pass == 0 && H.d->validate) v = H.d->validate(config, err, sizeof(err));
        if (pass == 1 && H.d->validate2)
            v = H.d->validate2(&H.api, node && sy__cfg_kind(node) == 'm' ? node : NULL, config, err,
                               sizeof(err));
        if (v < 0) {
            fprintf(stderr, "switchyard-plugin-host: '%s': %s\n", id,
                    err[0] ? err : "invalid configuration");
            rc = 2;
        }
    }
    sy__diag_print(&diag, stderr);
    sy__diag_free(&diag);
    if (rc) {
        if (config) sy__cfg_free_struct(H.d->config_fields, H.d->config_field_count, config);
        free(config);
        sy__cfg_free(node);
        return rc;
    }
    H.inst.config = config;
    H.inst.file = file;
    H.inst.plugin = H.d;
    H.inst.kind = kind;
    H.inst.cfg = NULL;
    H.inst.config_owner = true;
    H.node = node;
    return 0;
}

int main(int argc, char **argv)
{
    const char *dirs[16];
    size_t ndirs = 0;
    const char *cfg_file = NULL, *cfg_yaml = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        if (!strcmp(a, "--plugin-dir") && ndirs < 16)
            dirs[ndirs++] = argv[++i];
        else if (!strcmp(a, "--config"))
            cfg_file = argv[++i];
        else if (!strcmp(a, "--config-yaml"))
            cfg_yaml = argv[++i];
        else if (!strcmp(a, "--log-level")) {
            sy_log_level_t level;
            if (sy__log_level_parse(argv[++i], &level) < 0) return usage();
            sy__log_set_level(level);
        } else
            return usage();
    }
    if (argc - i != 2) return usage();
    H.api = *sy__host_api();
    H.api.emit = host_emit;
    H.api.emit_to = host_emit_to;
    H.api.ready = host_ready;
    H.api.exporter_outcome = host_exporter_outcome;
    H.api.pipeline_refuse = host_pipeline_refuse;
    H.api.queue_budget_limit = host_queue_budget_limit;

    sy__registry_t reg = {0};
    if (sy__registry_scan(&reg, dirs, ndirs) < 0) return 1;
    char id[128];
    snprintf(id, sizeof(id), "%s", argv[i + 1]);
    H.inst.id = id;
    char labels[200];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", argv[i], id);
    H.inst.labels = labels;
    int rc = load(&reg, argv[i], id, cfg_file, cfg_yaml);
    if (rc) {
        sy__registry_free(&reg);
        return rc;
    }
    uv_loop_init(&H.thread.loop);
    snprintf(H.thread.name, sizeof(H.thread.name), "plugin-host");
    H.inst.thread = &H.thread;
    if (H.inst.kind == SY_KIND_PROCESSOR) {
        H.pipeline.id = (char *)"plugin-host";
        H.inst.proc.pipeline = &H.pipeline;
    }
    sy__engine_set_status(SY_STATUS_READY);
    uv_pipe_init(&H.thread.loop, &H.in, 0);
    uv_async_init(&H.thread.loop, &H.ready_async, on_ready_async);
    if (uv_pipe_open(&H.in, 0) < 0 || uv_read_start((uv_stream_t *)&H.in, on_alloc, on_read) < 0) {
        fprintf(stderr, "switchyard-plugin-host: stdin is not a pipe or socket\n");
        return 1;
    }
    uv_run(&H.thread.loop, UV_RUN_DEFAULT);
    if (H.created) {
        sy_instance_t *prev = sy__consumer_enter(&H.inst);
        H.d->destroy(H.inst.state);
        sy__consumer_leave(prev);
    }
    while (H.head) {
        req_t *r = H.head;
        H.head = r->next;
        sy__batch_release(r->batch);
        free(r);
    }
    if (H.cur) {
        if (!H.cur_given) sy__batch_release(H.cur->batch);
        free(H.cur);
    }
    uv_loop_close(&H.thread.loop);
    sy__cfg_free_struct(H.d->config_fields, H.d->config_field_count, H.inst.config);
    free(H.inst.config);
    sy__cfg_free(H.node);
    free(H.emitted);
    free(H.rbuf);
    sy__registry_free(&reg);
    return H.exit_code;
}
