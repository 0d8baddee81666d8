/*
 * subproc.c - the supervisor of a protocol-speaking child process (subproc.h).
 *
 * One child at a time (sp->child). Its three handles (the process, the pipe to
 * its stdin, the pipe from its stdout) live in a struct of their own that frees
 * itself when the last of them has closed, so that a child dying while the next
 * one starts, or the supervisor being freed, never leaves a close callback
 * pointing at freed memory. The supervisor's timers (restart backoff, the one
 * deadline of hello, requests and the drain, and the final kill) live in the
 * supervisor and are opened by syc_sp_start() and closed when the last child is
 * gone at shutdown.
 *
 * Requests move from `queue` (not yet written) to `flight` (written, in the order
 * written, so the head is the oldest and the only one the deadline watches) and
 * end with the child's ACK or NACK. A child that goes away sends its flight back
 * to the front of the queue: the next child sees them first, with new sequence
 * numbers, so a late answer of the old one can never be taken for theirs.
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "subproc.h"
#include "subproc_frame.h"

extern char **environ;

const char *const syc_sp_restart_policies[] = {"always", "on-failure", "never", NULL};

#define SP_READ_CHUNK 65536u
#define SP_KILL_GRACE 2000u /* ms between closing the child's stdin and SIGKILL */

typedef struct sp_req_s {
    struct sp_req_s *next;
    sy_batch_t *batch;
    sy_signal_t signal;
    uint64_t items;
    uint64_t seq;
    uint64_t sent_ms;
    int64_t attempts;
    sy_batch_t **outs;
    size_t nouts, cap;
} sp_req_t;

typedef struct sp_child_s {
    syc_sp_t *sp; /* NULL once the supervisor no longer follows this child */
    uv_process_t proc;
    uv_pipe_t in;  /* the child's stdin: we write */
    uv_pipe_t out; /* the child's stdout: we read */
    int open;      /* handles not closed yet */
    bool closing_in, closing_out, closing_proc;
    bool hello, dead, killed;
    uint64_t started_ms;
    uint8_t *rbuf;
    size_t rlen, rcap;
} sp_child_t;

typedef struct sp_fifo_s {
    sp_req_t *head, *tail;
    size_t n;
} sp_fifo_t;

struct syc_sp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const syc_sp_config_t *cfg;
    syc_sp_hooks_t hooks;
    void *ctx;
    uv_loop_t *loop;
    sp_child_t *child;
    uv_timer_t restart_timer, deadline_timer, kill_timer;
    int timers_open;
    bool timers_ready;
    sp_fifo_t queue, flight;
    uint64_t next_seq;
    int64_t failures_in_row;
    uint64_t window_start_ms;
    int64_t restarts_in_window;
    bool failed, stopping, closing, restart_pending;
    uint64_t drain_deadline_ms;
    uint64_t nack_log_ms;
    struct {
        sy_metric_t *starts, *restarts, *crashes, *failed_exits, *timeouts, *protocol_errors,
            *spawn_failures, *items_sent, *items_received, *batches_resent, *items_nacked,
            *items_dropped, *in_flight, *up;
        sy_metric_t *by_signal[6];
    } m;
};

/* The signals counted on their own; the last slot is every other one. */
static const int sp_signals[5] = {SIGSEGV, SIGABRT, SIGKILL, SIGBUS, SIGXCPU};
static const char *const sp_signal_metrics[6] = {
    "subprocess_crashes_sigsegv", "subprocess_crashes_sigabrt", "subprocess_crashes_sigkill",
    "subprocess_crashes_sigbus",  "subprocess_crashes_sigxcpu", "subprocess_crashes_other_signal"};

static uint64_t now_ms(const syc_sp_t *sp)
{
    return uv_now(sp->loop);
}

static void fifo_push(sp_fifo_t *f, sp_req_t *r)
{
    r->next = NULL;
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    f->n++;
}

static sp_req_t *fifo_pop(sp_fifo_t *f)
{
    sp_req_t *r = f->head;
    if (!r) return NULL;
    f->head = r->next;
    if (!f->head) f->tail = NULL;
    f->n--;
    r->next = NULL;
    return r;
}

/* Removes and returns the request of sequence number seq, or NULL. */
static sp_req_t *fifo_take(sp_fifo_t *f, uint64_t seq)
{
    sp_req_t *prev = NULL;
    for (sp_req_t *r = f->head; r; prev = r, r = r->next) {
        if (r->seq != seq) continue;
        if (prev)
            prev->next = r->next;
        else
            f->head = r->next;
        if (f->tail == r) f->tail = prev;
        f->n--;
        r->next = NULL;
        return r;
    }
    return NULL;
}

static sp_req_t *fifo_find(const sp_fifo_t *f, uint64_t seq)
{
    for (sp_req_t *r = f->head; r; r = r->next)
        if (r->seq == seq) return r;
    return NULL;
}

static void drop_outs(syc_sp_t *sp, sp_req_t *r)
{
    for (size_t i = 0; i < r->nouts; i++)
        sp->api->batch_release(r->outs[i]);
    r->nouts = 0;
}

/* Ends a request: the hook gets the batch back (and the answers when acked). */
static void finish(syc_sp_t *sp, sp_req_t *r, syc_sp_outcome_t outcome)
{
    if (outcome != SYC_SP_ACKED) drop_outs(sp, r);
    if (outcome == SYC_SP_NACKED) sp->api->metric_add(sp->m.items_nacked, (int64_t)r->items);
    if (outcome == SYC_SP_DROPPED) sp->api->metric_add(sp->m.items_dropped, (int64_t)r->items);
    sp->hooks.done(sp->ctx, r->batch, r->outs, r->nouts, outcome);
    free(r->outs);
    free(r);
}

static void set_in_flight(syc_sp_t *sp)
{
    sp->api->metric_set(sp->m.in_flight, (int64_t)sp->flight.n);
}

/* ---- the child's handles ------------------------------------------------------ */

static void on_child_close(uv_handle_t *h)
{
    sp_child_t *c = h->data;
    if (--c->open > 0) return;
    free(c->rbuf);
    free(c);
}

static void close_handle(uv_handle_t *h, bool *closing)
{
    if (*closing) return;
    *closing = true;
    uv_close(h, on_child_close);
}

static void child_close_all(sp_child_t *c)
{
    close_handle((uv_handle_t *)&c->in, &c->closing_in);
    close_handle((uv_handle_t *)&c->out, &c->closing_out);
    close_handle((uv_handle_t *)&c->proc, &c->closing_proc);
}

static void arm_deadline(syc_sp_t *sp);
static void pump(syc_sp_t *sp);
static void child_lost(syc_sp_t *sp, sp_child_t *c, int64_t status, int term_signal);

/* Kills the current child for a reason already counted; its exit callback then
 * puts its flight back in the queue and restarts it. */
static void child_kill(syc_sp_t *sp, const char *why)
{
    sp_child_t *c = sp->child;
    if (!c || c->dead) return;
    c->dead = true;
    c->killed = true;
    SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d killed: %s", c->proc.pid, why);
    uv_read_stop((uv_stream_t *)&c->out);
    uv_process_kill(&c->proc, SIGKILL);
}

static void protocol_error(syc_sp_t *sp, const char *fmt, ...) SY_PRINTF(2, 3);
static void protocol_error(syc_sp_t *sp, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sp->api->metric_add(sp->m.protocol_errors, 1);
    char why[300];
    snprintf(why, sizeof(why), "protocol error: %s", msg);
    child_kill(sp, why);
}

typedef struct sp_write_s {
    uv_write_t req;
    uint8_t header[SYC_SPF_HEADER];
    const sy_host_api_t *api;
    sy_batch_t *batch; /* a reference held while libuv writes its bytes */
} sp_write_t;

static void on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write means the child is going: its exit says the rest */
    sp_write_t *w = (sp_write_t *)req;
    if (w->batch) w->api->batch_release(w->batch);
    free(w);
}

/* Writes one frame to the child's stdin. 0, or a negative libuv error. */
static int write_frame(syc_sp_t *sp, uint8_t type, uint8_t signal, uint64_t seq,
                       const uint8_t *payload, size_t len, sy_batch_t *batch)
{
    sp_write_t *w = malloc(sizeof(*w));
    if (!w) return UV_ENOMEM;
    syc_spf_header(w->header, type, signal, seq, len);
    w->api = sp->api;
    w->batch = batch;
    uv_buf_t bufs[2] = {uv_buf_init((char *)w->header, SYC_SPF_HEADER),
                        uv_buf_init((char *)(uintptr_t)payload, (unsigned)len)};
    int rc = uv_write(&w->req, (uv_stream_t *)&sp->child->in, bufs, len ? 2 : 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (batch) sp->api->batch_retain(batch);
    return 0;
}

/* ---- frames from the child ------------------------------------------------------ */

static void on_hello(syc_sp_t *sp, sp_child_t *c, const syc_spf_frame_t *f)
{
    size_t vl = strlen(SYC_SPF_VERSION);
    if (c->hello) {
        protocol_error(sp, "a second hello");
        return;
    }
    if (f->len < vl || memcmp(f->payload, SYC_SPF_VERSION, vl) != 0 ||
        (f->len > vl && f->payload[vl] != ' ')) {
        protocol_error(sp, "the hello does not start with \"%s\"", SYC_SPF_VERSION);
        return;
    }
    c->hello = true;
    SY_LOG(sp->api, sp->inst, SY_LOG_INFO, "child pid %d speaks %.*s", c->proc.pid,
           (int)(f->len < 200 ? f->len : 200), (const char *)f->payload);
    pump(sp);
}

static void on_data(syc_sp_t *sp, const syc_spf_frame_t *f)
{
    sp_req_t *r = fifo_find(&sp->flight, f->seq);
    if (!r) {
        protocol_error(sp, "data for sequence number %llu, which is not in flight",
                       (unsigned long long)f->seq);
        return;
    }
    if (f->signal != r->signal) {
        protocol_error(sp, "data of signal %u answers a request of signal %u", f->signal,
                       (unsigned)r->signal);
        return;
    }
    const sy_host_api_t *api = sp->api;
    sy_batch_t *b = api->batch_new(sp->inst, (sy_signal_t)f->signal);
    uint8_t *buf = b && f->len ? api->batch_alloc(b, f->len) : NULL;
    char err[160] = "out of memory";
    if (!b || (f->len && !buf)) goto fail;
    if (f->len) memcpy(buf, f->payload, f->len);
    if (api->batch_set_encoded(b, f->len ? buf : (const uint8_t *)"", f->len, err, sizeof(err)) < 0)
        goto fail;
    if (r->nouts == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        sy_batch_t **n = realloc(r->outs, cap * sizeof(*n));
        if (!n) goto fail;
        r->outs = n;
        r->cap = cap;
    }
    sy_batch_info_t info;
    api->batch_info(b, &info);
    api->metric_add(sp->m.items_received, (int64_t)info.items);
    r->outs[r->nouts++] = b;
    return;
fail:
    if (b) api->batch_release(b);
    protocol_error(sp, "data for sequence number %llu is not a valid OTLP request: %s",
                   (unsigned long long)f->seq, err);
}

/* Writes a NACK's message into the log as printable ASCII, at most once a second. */
static void log_nack(syc_sp_t *sp, const syc_spf_frame_t *f, uint64_t items)
{
    uint64_t now = now_ms(sp);
    if (sp->nack_log_ms && now - sp->nack_log_ms < 1000) return;
    sp->nack_log_ms = now;
    char msg[201];
    size_t n = f->len < 200 ? f->len : 200;
    for (size_t i = 0; i < n; i++)
        msg[i] = f->payload[i] >= 0x20 && f->payload[i] < 0x7f ? (char)f->payload[i] : '?';
    msg[n] = 0;
    SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "the child refused %llu items (nack): %s",
           (unsigned long long)items, msg);
}

static void maybe_close(syc_sp_t *sp);

static void on_answer(syc_sp_t *sp, const syc_spf_frame_t *f)
{
    sp_req_t *r = fifo_take(&sp->flight, f->seq);
    if (!r) {
        protocol_error(sp, "%s for sequence number %llu, which is not in flight",
                       syc_spf_type_name(f->type), (unsigned long long)f->seq);
        return;
    }
    set_in_flight(sp);
    if (f->type == SYC_SPF_ACK) {
        sp->failures_in_row = 0;
        finish(sp, r, SYC_SP_ACKED);
    } else {
        log_nack(sp, f, r->items);
        finish(sp, r, SYC_SP_NACKED);
    }
}

static void on_frame(syc_sp_t *sp, sp_child_t *c, const syc_spf_frame_t *f)
{
    if (f->type == SYC_SPF_HELLO) {
        on_hello(sp, c, f);
        return;
    }
    if (!c->hello) {
        protocol_error(sp, "a %s frame before the hello", syc_spf_type_name(f->type));
        return;
    }
    if (f->type == SYC_SPF_DATA)
        on_data(sp, f);
    else
        on_answer(sp, f);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sp_child_t *c = h->data;
    if (c->rcap - c->rlen < SP_READ_CHUNK) {
        size_t cap = c->rlen + SP_READ_CHUNK * 2;
        uint8_t *n = realloc(c->rbuf, cap);
        if (!n) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->rbuf = n;
        c->rcap = cap;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    sp_child_t *c = s->data;
    syc_sp_t *sp = c->sp;
    if (nread < 0) {
        /* EOF or an error: the exit callback follows (or the deadline, for a child
         * that closed its stdout and lives on). */
        uv_read_stop(s);
        return;
    }
    c->rlen += (size_t)nread;
    size_t pos = 0;
    while (sp && sp->child == c && !c->dead) {
        syc_spf_frame_t f;
        size_t used = 0;
        char err[128];
        int rc = syc_spf_parse(c->rbuf + pos, c->rlen - pos, &f, &used, err, sizeof(err));
        if (rc == 0) break;
        if (rc < 0) {
            protocol_error(sp, "%s", err);
            break;
        }
        pos += used;
        on_frame(sp, c, &f);
    }
    /* The frames were handled (answers copied into batches): keep the partial one. */
    if (pos) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    if (sp && sp->child == c && !c->dead) {
        pump(sp);
        arm_deadline(sp);
        maybe_close(sp);
    }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    sp_child_t *c = p->data;
    syc_sp_t *sp = c->sp;
    c->dead = true;
    c->sp = NULL;
    child_close_all(c);
    if (sp && sp->child == c) child_lost(sp, c, status, term_signal);
}

/* ---- spawning ------------------------------------------------------------------- */

/* The router's environment with the configured variables added (or replaced). The
 * strings made here are listed in *owned to be freed. NULL on out of memory. */
static char **build_env(const sy_cfg_strmap_t *add, char ***owned)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + add->count + 1, sizeof(*env));
    char **mine = calloc(add->count + 1, sizeof(*mine));
    if (!env || !mine) goto fail;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < add->count && !replaced; j++) {
            size_t kl = strlen(add->keys[j]);
            replaced = strncmp(environ[i], add->keys[j], kl) == 0 && environ[i][kl] == '=';
        }
        if (!replaced) env[k++] = environ[i];
    }
    for (size_t j = 0; j < add->count; j++) {
        size_t len = strlen(add->keys[j]) + strlen(add->values[j]) + 2;
        if (!(mine[j] = malloc(len))) goto fail;
        snprintf(mine[j], len, "%s=%s", add->keys[j], add->values[j]);
        env[k++] = mine[j];
    }
    *owned = mine;
    return env;
fail:
    if (mine)
        for (size_t j = 0; j < add->count; j++)
            free(mine[j]);
    free(mine);
    free(env);
    return NULL;
}

/*
 * The resource limits, set on the child from outside with prlimit(2) as soon as
 * uv_spawn() returns: libuv has no hook that runs between fork and exec. The child
 * runs unlimited for the moment between its exec and this call (microseconds),
 * which bounds a runaway, not a program that attacks its own limits.
 */
static int apply_limits(syc_sp_t *sp, int pid)
{
    const syc_sp_config_t *cfg = sp->cfg;
    struct {
        int resource;
        int64_t value;
        uint64_t scale;
        const char *name;
    } lim[] = {{RLIMIT_AS, cfg->memory_mib, 1u << 20, "limits.memory_mib"},
               {RLIMIT_CPU, cfg->cpu_seconds, 1, "limits.cpu_seconds"},
               {RLIMIT_NOFILE, cfg->open_files, 1, "limits.open_files"}};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        if (lim[i].value <= 0) continue;
        struct rlimit rl = {.rlim_cur = (rlim_t)lim[i].value * lim[i].scale,
                            .rlim_max = (rlim_t)lim[i].value * lim[i].scale};
        if (lim[i].resource == RLIMIT_CPU) rl.rlim_max = rl.rlim_cur + 1; /* SIGXCPU, then KILL */
        if (prlimit(pid, lim[i].resource, &rl, NULL) != 0) {
            SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "%s: cannot set the child's limit: %s",
                   lim[i].name, strerror(errno));
            return SY_ERROR;
        }
    }
    return SY_OK;
}

/* Starts one child and says hello. SY_ERROR (logged, counted) when it cannot. */
static int spawn_child(syc_sp_t *sp)
{
    const syc_sp_config_t *cfg = sp->cfg;
    sp_child_t *c = calloc(1, sizeof(*c));
    char **owned = NULL, **env = NULL;
    char **args = calloc(cfg->command.count + 1, sizeof(*args));
    if (!c || !args) goto oom;
    memcpy(args, cfg->command.items, cfg->command.count * sizeof(*args));
    if (!(env = build_env(&cfg->env, &owned))) goto oom;
    uv_pipe_init(sp->loop, &c->in, 0);
    uv_pipe_init(sp->loop, &c->out, 0);
    c->in.data = c->out.data = c->proc.data = c;
    c->open = 3;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&c->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o = {.file = args[0],
                              .args = args,
                              .env = env,
                              .exit_cb = on_exit_cb,
                              .stdio_count = 3,
                              .stdio = stdio};
    int rc = uv_spawn(sp->loop, &c->proc, &o);
    for (size_t j = 0; owned && j < cfg->env.count; j++)
        free(owned[j]);
    free(owned);
    free(env);
    free(args);
    if (rc < 0) {
        sp->api->metric_add(sp->m.spawn_failures, 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "command: cannot start `%s`: %s",
               cfg->command.items[0], uv_strerror(rc));
        c->dead = true;
        child_close_all(c); /* a failed spawn's handle must still be closed */
        return SY_ERROR;
    }
    c->sp = sp;
    sp->child = c;
    c->started_ms = now_ms(sp);
    sp->api->metric_add(sp->m.starts, 1);
    sp->api->metric_set(sp->m.up, 1);
    if (apply_limits(sp, c->proc.pid) < 0) {
        child_kill(sp, "its resource limits could not be set");
        return SY_OK; /* its exit restarts it by the policy */
    }
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
    uint8_t signals = (uint8_t)(sp->api->signals(sp->inst) & SY_SIGNAL_ALL);
    if (write_frame(sp, SYC_SPF_HELLO, signals, 0, (const uint8_t *)SYC_SPF_VERSION,
                    strlen(SYC_SPF_VERSION), NULL) < 0)
        child_kill(sp, "the hello could not be written");
    SY_LOG(sp->api, sp->inst, SY_LOG_INFO, "child pid %d started: %s", c->proc.pid,
           cfg->command.items[0]);
    return SY_OK;
oom:
    free(args);
    free(c);
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "out of memory starting the child");
    return SY_ERROR;
}

/* ---- restarts ------------------------------------------------------------------- */

static void close_timers(syc_sp_t *sp);

static void give_up(syc_sp_t *sp, const char *why)
{
    sp->failed = true;
    sp->api->metric_set(sp->m.up, 0);
    uint64_t items = 0;
    size_t n = sp->queue.n;
    sp_req_t *r;
    while ((r = fifo_pop(&sp->queue))) {
        items += r->items;
        finish(sp, r, SYC_SP_DROPPED);
    }
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
           "giving up on the child (%s): %zu held batches (%llu items) dropped; "
           "new batches are refused",
           why, n, (unsigned long long)items);
    if (sp->hooks.room) sp->hooks.room(sp->ctx);
    if (sp->stopping) maybe_close(sp);
}

static void on_restart_timer(uv_timer_t *t);

/* The child is gone (or never came): restart it after the backoff, unless the
 * policy or the restart budget says no. */
static void schedule_restart(syc_sp_t *sp, bool clean_exit)
{
    const syc_sp_config_t *cfg = sp->cfg;
    if (sp->closing || sp->failed) return;
    if (sp->stopping && !sp->queue.n) {
        maybe_close(sp);
        return;
    }
    if (cfg->restart_policy == SYC_SP_RESTART_NEVER) {
        give_up(sp, "restart.policy is never");
        return;
    }
    if (cfg->restart_policy == SYC_SP_RESTART_ON_FAILURE && clean_exit) {
        give_up(sp, "it exited with status 0 and restart.policy is on-failure");
        return;
    }
    uint64_t now = now_ms(sp);
    uint64_t window = (uint64_t)(cfg->restart_window_ns / 1000000);
    if (!sp->window_start_ms || now - sp->window_start_ms > window) {
        sp->window_start_ms = now;
        sp->restarts_in_window = 0;
    }
    if (cfg->max_restarts > 0 && ++sp->restarts_in_window > cfg->max_restarts) {
        char why[128];
        snprintf(why, sizeof(why), "more than %lld restarts within restart.window",
                 (long long)cfg->max_restarts);
        give_up(sp, why);
        return;
    }
    uint64_t delay = (uint64_t)(cfg->initial_interval_ns / 1000000);
    uint64_t max = (uint64_t)(cfg->max_interval_ns / 1000000);
    for (int64_t i = 0; i < sp->failures_in_row && delay < max; i++)
        delay *= 2;
    if (delay > max) delay = max;
    if (!delay) delay = 1;
    sp->failures_in_row++;
    sp->restart_pending = true;
    uv_timer_start(&sp->restart_timer, on_restart_timer, delay, 0);
}

static void on_restart_timer(uv_timer_t *t)
{
    syc_sp_t *sp = t->data;
    sp->restart_pending = false;
    if (sp->closing || sp->failed) return;
    sp->api->metric_add(sp->m.restarts, 1);
    if (spawn_child(sp) < 0) {
        schedule_restart(sp, false);
        return;
    }
    arm_deadline(sp);
}

/* Puts what was in flight back at the front of the queue, in order; a request in
 * flight at its max_attempts-th failure is given up. */
static void requeue_flight(syc_sp_t *sp)
{
    sp_fifo_t back = {0};
    sp_req_t *r;
    while ((r = fifo_pop(&sp->flight))) {
        drop_outs(sp, r);
        if (++r->attempts >= sp->cfg->max_attempts) {
            SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
                   "a batch of %llu items was in flight at %lld child failures: dropped",
                   (unsigned long long)r->items, (long long)r->attempts);
            finish(sp, r, SYC_SP_DROPPED);
            continue;
        }
        sp->api->metric_add(sp->m.batches_resent, 1);
        fifo_push(&back, r);
    }
    if (back.head) {
        back.tail->next = sp->queue.head;
        if (!sp->queue.tail) sp->queue.tail = back.tail;
        sp->queue.head = back.head;
        sp->queue.n += back.n;
    }
    set_in_flight(sp);
}

static void child_lost(syc_sp_t *sp, sp_child_t *c, int64_t status, int term_signal)
{
    sp->child = NULL;
    sp->api->metric_set(sp->m.up, 0);
    bool clean = !c->killed && !term_signal && status == 0;
    if (c->killed) {
        /* counted where it was decided (timeout, protocol error) */
    } else if (term_signal) {
        sp->api->metric_add(sp->m.crashes, 1);
        size_t i = 0;
        while (i < 5 && sp_signals[i] != term_signal)
            i++;
        sp->api->metric_add(sp->m.by_signal[i], 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d crashed: signal %d (%s)", c->proc.pid,
               term_signal, strsignal(term_signal));
    } else if (status != 0) {
        sp->api->metric_add(sp->m.failed_exits, 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d exited with status %lld", c->proc.pid,
               (long long)status);
    } else if (!sp->closing) {
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d exited with status 0", c->proc.pid);
    }
    requeue_flight(sp);
    if (sp->closing) {
        close_timers(sp);
        return;
    }
    schedule_restart(sp, clean);
}

/* ---- deadlines, writing, stopping ---------------------------------------------- */

static void drain_expired(syc_sp_t *sp)
{
    uint64_t items = 0;
    size_t n = sp->queue.n + sp->flight.n;
    sp_req_t *r;
    while ((r = fifo_pop(&sp->flight)) || (r = fifo_pop(&sp->queue))) {
        items += r->items;
        finish(sp, r, SYC_SP_DROPPED);
    }
    set_in_flight(sp);
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
           "drain_timeout: %zu batches (%llu items) the child did not answer are dropped", n,
           (unsigned long long)items);
    maybe_close(sp);
}

static void on_deadline(uv_timer_t *t)
{
    syc_sp_t *sp = t->data;
    uint64_t now = now_ms(sp), timeout = (uint64_t)(sp->cfg->timeout_ns / 1000000);
    if (sp->stopping && !sp->closing && now >= sp->drain_deadline_ms) {
        drain_expired(sp);
        return;
    }
    sp_child_t *c = sp->child;
    if (c && !c->dead && !c->hello && now >= c->started_ms + timeout) {
        sp->api->metric_add(sp->m.timeouts, 1);
        child_kill(sp, "no hello within the timeout");
    } else if (c && !c->dead && sp->flight.head && now >= sp->flight.head->sent_ms + timeout) {
        sp->api->metric_add(sp->m.timeouts, 1);
        child_kill(sp, "a request went unanswered for longer than the timeout");
    }
    arm_deadline(sp);
}

/* Sets the one deadline timer to the earliest of: the hello, the oldest request,
 * the drain. */
static void arm_deadline(syc_sp_t *sp)
{
    if (!sp->timers_ready || sp->closing) return;
    uint64_t timeout = (uint64_t)(sp->cfg->timeout_ns / 1000000), due = UINT64_MAX;
    sp_child_t *c = sp->child;
    if (c && !c->dead && !c->hello) due = c->started_ms + timeout;
    if (c && !c->dead && c->hello && sp->flight.head) due = sp->flight.head->sent_ms + timeout;
    if (sp->stopping && sp->drain_deadline_ms < due) due = sp->drain_deadline_ms;
    if (due == UINT64_MAX) {
        uv_timer_stop(&sp->deadline_timer);
        return;
    }
    uint64_t now = now_ms(sp);
    uv_timer_start(&sp->deadline_timer, on_deadline, due > now ? due - now : 0, 0);
}

/* Writes queued requests while the child is up and the window has room. */
static void pump(syc_sp_t *sp)
{
    sp_child_t *c = sp->child;
    bool wrote = false;
    while (c && c->hello && !c->dead && sp->queue.head &&
           sp->flight.n < (size_t)sp->cfg->max_in_flight) {
        sp_req_t *r = fifo_pop(&sp->queue);
        size_t len = 0;
        const uint8_t *enc = sp->api->batch_encoded(r->batch, &len);
        r->seq = ++sp->next_seq;
        r->sent_ms = now_ms(sp);
        fifo_push(&sp->flight, r);
        if (!enc) {
            protocol_error(sp, "out of memory encoding a batch"); /* requeued by the exit */
            break;
        }
        if (write_frame(sp, SYC_SPF_DATA, (uint8_t)r->signal, r->seq, enc, len, r->batch) < 0) {
            child_kill(sp, "writing to its stdin failed");
            break;
        }
        sp->api->metric_add(sp->m.items_sent, (int64_t)r->items);
        wrote = true;
    }
    if (wrote) {
        set_in_flight(sp);
        arm_deadline(sp);
    }
    if (syc_sp_has_room(sp) && sp->hooks.room) sp->hooks.room(sp->ctx);
}

static void on_timer_close(uv_handle_t *h)
{
    syc_sp_t *sp = h->data;
    sp->timers_open--;
}

static void close_timers(syc_sp_t *sp)
{
    if (!sp->timers_ready) return;
    sp->timers_ready = false;
    uv_close((uv_handle_t *)&sp->restart_timer, on_timer_close);
    uv_close((uv_handle_t *)&sp->deadline_timer, on_timer_close);
    uv_close((uv_handle_t *)&sp->kill_timer, on_timer_close);
}

static void on_kill_timer(uv_timer_t *t)
{
    syc_sp_t *sp = t->data;
    if (sp->child && !sp->child->closing_proc) {
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d did not exit on EOF: killed",
               sp->child->proc.pid);
        uv_process_kill(&sp->child->proc, SIGKILL);
    }
}

/* At shutdown, once nothing is held: EOF to the child, SIGKILL if it lingers. */
static void maybe_close(syc_sp_t *sp)
{
    if (!sp->stopping || sp->closing || sp->queue.n || sp->flight.n) return;
    sp->closing = true;
    if (!sp->timers_ready) return;
    uv_timer_stop(&sp->deadline_timer);
    uv_timer_stop(&sp->restart_timer);
    sp_child_t *c = sp->child;
    if (!c) {
        close_timers(sp);
        return;
    }
    c->killed = true; /* an exit now is the one asked for */
    close_handle((uv_handle_t *)&c->in, &c->closing_in);
    uv_timer_start(&sp->kill_timer, on_kill_timer, SP_KILL_GRACE, 0);
}

/* ---- the public side --------------------------------------------------------------- */

int syc_sp_validate(const syc_sp_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg->command.count || !cfg->command.items[0][0]) {
        snprintf(err, err_len, "command: the program to run is missing");
        return SY_EINVAL;
    }
    const char *prog = cfg->command.items[0];
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) == 0) return SY_OK;
        snprintf(err, err_len, "command: `%s` cannot be run: %s", prog, strerror(errno));
        return SY_EINVAL;
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dl = end ? (size_t)(end - path) : strlen(path);
        char full[4096];
        if (snprintf(full, sizeof(full), "%.*s/%s", (int)dl, dl ? path : ".", prog) <
                (int)sizeof(full) &&
            access(full, X_OK) == 0)
            return SY_OK;
        path += dl + (end ? 1 : 0);
    }
    snprintf(err, err_len, "command: `%s` was not found in PATH", prog);
    return SY_EINVAL;
}

syc_sp_t *syc_sp_new(const sy_host_api_t *api, sy_instance_t *inst, const syc_sp_config_t *cfg,
                     const syc_sp_hooks_t *hooks, void *ctx)
{
    syc_sp_t *sp = calloc(1, sizeof(*sp));
    if (!sp) return NULL;
    sp->api = api;
    sp->inst = inst;
    sp->cfg = cfg;
    sp->hooks = *hooks;
    sp->ctx = ctx;
    sp->loop = api->loop(inst);
#define SP_COUNTER(field, name, help) \
    sp->m.field = api->metric_register(inst, name, help, SY_METRIC_COUNTER)
    SP_COUNTER(starts, "subprocess_child_starts", "Children started (the first and restarts).");
    SP_COUNTER(restarts, "subprocess_child_restarts", "Children restarted after one ended.");
    SP_COUNTER(crashes, "subprocess_child_crashes",
               "Children that ended by a signal not sent "
               "by the router.");
    SP_COUNTER(failed_exits, "subprocess_child_failed_exits",
               "Children that exited with a non-zero status.");
    SP_COUNTER(timeouts, "subprocess_timeouts",
               "Children killed for leaving a request (or the hello) unanswered past timeout.");
    SP_COUNTER(protocol_errors, "subprocess_protocol_errors",
               "Children killed for writing something that is not the protocol.");
    SP_COUNTER(spawn_failures, "subprocess_spawn_failures", "Children that could not be started.");
    SP_COUNTER(items_sent, "subprocess_items_sent", "Items written to children (resent ones too).");
    SP_COUNTER(items_received, "subprocess_items_received",
               "Items in the DATA answers of children (of discarded attempts too).");
    SP_COUNTER(batches_resent, "subprocess_batches_resent",
               "Batches sent again to a new child because the previous one went away.");
    SP_COUNTER(items_nacked, "subprocess_items_nacked", "Items the child refused (NACK).");
    SP_COUNTER(items_dropped, "subprocess_items_dropped",
               "Items given up: poison pills, restarts exhausted, drain_timeout.");
    for (int i = 0; i < 6; i++)
        SP_COUNTER(by_signal[i], sp_signal_metrics[i], "Child crashes by this signal.");
#undef SP_COUNTER
    sp->m.in_flight =
        api->metric_register(inst, "subprocess_in_flight",
                             "Requests written to the child and unanswered.", SY_METRIC_GAUGE);
    sp->m.up =
        api->metric_register(inst, "subprocess_child_up", "1 while a child runs.", SY_METRIC_GAUGE);
    return sp;
}

int syc_sp_start(syc_sp_t *sp)
{
    if (spawn_child(sp) < 0) return SY_ERROR;
    uv_timer_init(sp->loop, &sp->restart_timer);
    uv_timer_init(sp->loop, &sp->deadline_timer);
    uv_timer_init(sp->loop, &sp->kill_timer);
    sp->restart_timer.data = sp->deadline_timer.data = sp->kill_timer.data = sp;
    sp->timers_open = 3;
    sp->timers_ready = true;
    arm_deadline(sp);
    return SY_OK;
}

int syc_sp_submit(syc_sp_t *sp, sy_batch_t *batch)
{
    if (sp->failed || sp->closing) return SY_ECLOSED;
    sp_req_t *r = calloc(1, sizeof(*r));
    if (!r) return SY_ENOMEM;
    sy_batch_info_t info;
    sp->api->batch_info(batch, &info);
    r->batch = batch;
    r->signal = info.signal;
    r->items = info.items;
    fifo_push(&sp->queue, r);
    pump(sp);
    return SY_OK;
}

bool syc_sp_has_room(const syc_sp_t *sp)
{
    const sp_child_t *c = sp->child;
    return !sp->failed && c && c->hello && !c->dead && !sp->queue.n &&
           sp->flight.n < (size_t)sp->cfg->max_in_flight;
}

bool syc_sp_failed(const syc_sp_t *sp)
{
    return sp->failed;
}

void syc_sp_shutdown(syc_sp_t *sp)
{
    if (sp->stopping) return;
    sp->stopping = true;
    sp->drain_deadline_ms = now_ms(sp) + (uint64_t)(sp->cfg->drain_timeout_ns / 1000000);
    if (sp->restart_pending && !sp->queue.n) uv_timer_stop(&sp->restart_timer);
    if (!sp->queue.n && !sp->flight.n) {
        maybe_close(sp);
        return;
    }
    arm_deadline(sp);
}

void syc_sp_free(syc_sp_t *sp)
{
    if (!sp) return;
    if (sp->child) sp->child->sp = NULL;
    sp_req_t *r;
    while ((r = fifo_pop(&sp->flight)) || (r = fifo_pop(&sp->queue))) {
        drop_outs(sp, r);
        sp->api->batch_release(r->batch);
        free(r->outs);
        free(r);
    }
    free(sp);
}
