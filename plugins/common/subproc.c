/*
 * subproc.c - the supervisor of a protocol-speaking child process (subproc.h):
 * requests, what the child writes back, deadlines and the public functions. The
 * children themselves (starting, limits, losing, restarting) are in
 * subproc_child.c.
 *
 * Requests move from `queue` (not yet written) to `flight` (written, in the order
 * written, so the head is the oldest and the only one the deadline watches) and
 * end with the child's ACK or NACK. A child that goes away sends its flight back
 * to the front of the queue: the next child sees them first, with new sequence
 * numbers, so a late answer of the old one can never be taken for theirs.
 *
 * The supervisor's timers (restart backoff, the one deadline of hello, requests
 * and the drain, and the final kill) live in the supervisor, are opened by
 * syc_sp_start() and closed when the last child is gone at shutdown.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subproc_internal.h"

const char *const syc_sp_restart_policies[] = {"always", "on-failure", "never", NULL};

/* The names of the crash counters of sp_signals (subproc_child.c), and of every
 * other signal in the last slot. */
static const char *const sp_signal_metrics[6] = {
    "subprocess_crashes_sigsegv", "subprocess_crashes_sigabrt", "subprocess_crashes_sigkill",
    "subprocess_crashes_sigbus",  "subprocess_crashes_sigxcpu", "subprocess_crashes_other_signal"};

static void pump(syc_sp_t *sp);

void syc__sp_fifo_push(sp_fifo_t *f, sp_req_t *r)
{
    r->next = NULL;
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    f->n++;
}

sp_req_t *syc__sp_fifo_pop(sp_fifo_t *f)
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

void syc__sp_drop_outs(syc_sp_t *sp, sp_req_t *r)
{
    for (size_t i = 0; i < r->nouts; i++)
        sp->api->batch_release(r->outs[i]);
    r->nouts = 0;
}

/* Ends a request: the hook gets the batch back (and the answers when acked). */
void syc__sp_finish(syc_sp_t *sp, sp_req_t *r, syc_sp_outcome_t outcome)
{
    if (outcome != SYC_SP_ACKED) syc__sp_drop_outs(sp, r);
    if (outcome == SYC_SP_NACKED) sp->api->metric_add(sp->m.items_nacked, (int64_t)r->items);
    if (outcome == SYC_SP_DROPPED) sp->api->metric_add(sp->m.items_dropped, (int64_t)r->items);
    sp->hooks.done(sp->ctx, r->batch, r->outs, r->nouts, outcome);
    free(r->outs);
    free(r);
}

void syc__sp_set_in_flight(syc_sp_t *sp)
{
    sp->api->metric_set(sp->m.in_flight, (int64_t)sp->flight.n);
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
    syc__sp_child_kill(sp, why);
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
int syc__sp_write_frame(syc_sp_t *sp, uint8_t type, uint8_t signal, uint64_t seq,
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
    uint64_t now = syc__sp_now(sp);
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

static void on_answer(syc_sp_t *sp, const syc_spf_frame_t *f)
{
    sp_req_t *r = fifo_take(&sp->flight, f->seq);
    if (!r) {
        protocol_error(sp, "%s for sequence number %llu, which is not in flight",
                       syc_spf_type_name(f->type), (unsigned long long)f->seq);
        return;
    }
    syc__sp_set_in_flight(sp);
    if (f->type == SYC_SPF_ACK) {
        sp->failures_in_row = 0;
        syc__sp_finish(sp, r, SYC_SP_ACKED);
    } else {
        log_nack(sp, f, r->items);
        syc__sp_finish(sp, r, SYC_SP_NACKED);
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

void syc__sp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
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

void syc__sp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
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
        syc__sp_arm_deadline(sp);
        syc__sp_maybe_close(sp);
    }
}

/* ---- deadlines, writing, stopping ---------------------------------------------- */

static void drain_expired(syc_sp_t *sp)
{
    uint64_t items = 0;
    size_t n = sp->queue.n + sp->flight.n;
    sp_req_t *r;
    while ((r = syc__sp_fifo_pop(&sp->flight)) || (r = syc__sp_fifo_pop(&sp->queue))) {
        items += r->items;
        syc__sp_finish(sp, r, SYC_SP_DROPPED);
    }
    syc__sp_set_in_flight(sp);
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
           "drain_timeout: %zu batches (%llu items) the child did not answer are dropped", n,
           (unsigned long long)items);
    syc__sp_maybe_close(sp);
}

static void on_deadline(uv_timer_t *t)
{
    syc_sp_t *sp = t->data;
    uint64_t now = syc__sp_now(sp), timeout = (uint64_t)(sp->cfg->timeout_ns / 1000000);
    if (sp->stopping && !sp->closing && now >= sp->drain_deadline_ms) {
        drain_expired(sp);
        return;
    }
    sp_child_t *c = sp->child;
    if (c && !c->dead && !c->hello && now >= c->started_ms + timeout) {
        sp->api->metric_add(sp->m.timeouts, 1);
        syc__sp_child_kill(sp, "no hello within the timeout");
    } else if (c && !c->dead && sp->flight.head && now >= sp->flight.head->sent_ms + timeout) {
        sp->api->metric_add(sp->m.timeouts, 1);
        syc__sp_child_kill(sp, "a request went unanswered for longer than the timeout");
    }
    syc__sp_arm_deadline(sp);
}

/* Sets the one deadline timer to the earliest of: the hello, the oldest request,
 * the drain. */
void syc__sp_arm_deadline(syc_sp_t *sp)
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
    uint64_t now = syc__sp_now(sp);
    uv_timer_start(&sp->deadline_timer, on_deadline, due > now ? due - now : 0, 0);
}

/* Writes queued requests while the child is up and the window has room. */
static void pump(syc_sp_t *sp)
{
    sp_child_t *c = sp->child;
    bool wrote = false;
    while (c && c->hello && !c->dead && sp->queue.head &&
           sp->flight.n < (size_t)sp->cfg->max_in_flight) {
        sp_req_t *r = syc__sp_fifo_pop(&sp->queue);
        size_t len = 0;
        const uint8_t *enc = sp->api->batch_encoded(r->batch, &len);
        r->seq = ++sp->next_seq;
        r->sent_ms = syc__sp_now(sp);
        syc__sp_fifo_push(&sp->flight, r);
        if (!enc) {
            protocol_error(sp, "out of memory encoding a batch"); /* requeued by the exit */
            break;
        }
        if (syc__sp_write_frame(sp, SYC_SPF_DATA, (uint8_t)r->signal, r->seq, enc, len, r->batch) <
            0) {
            syc__sp_child_kill(sp, "writing to its stdin failed");
            break;
        }
        sp->api->metric_add(sp->m.items_sent, (int64_t)r->items);
        wrote = true;
    }
    if (wrote) {
        syc__sp_set_in_flight(sp);
        syc__sp_arm_deadline(sp);
    }
    if (syc_sp_has_room(sp) && sp->hooks.room) sp->hooks.room(sp->ctx);
}

static void on_timer_close(uv_handle_t *h)
{
    syc_sp_t *sp = h->data;
    sp->timers_open--;
}

void syc__sp_close_timers(syc_sp_t *sp)
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
void syc__sp_maybe_close(syc_sp_t *sp)
{
    if (!sp->stopping || sp->closing || sp->queue.n || sp->flight.n) return;
    sp->closing = true;
    if (!sp->timers_ready) return;
    uv_timer_stop(&sp->deadline_timer);
    uv_timer_stop(&sp->restart_timer);
    sp_child_t *c = sp->child;
    if (!c) {
        syc__sp_close_timers(sp);
        return;
    }
    c->killed = true; /* an exit now is the one asked for */
    syc__sp_close_handle((uv_handle_t *)&c->in, &c->closing_in);
    uv_timer_start(&sp->kill_timer, on_kill_timer, SP_KILL_GRACE, 0);
}

/* ---- the public side --------------------------------------------------------------- */

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
    if (syc__sp_spawn(sp) < 0) return SY_ERROR;
    uv_timer_init(sp->loop, &sp->restart_timer);
    uv_timer_init(sp->loop, &sp->deadline_timer);
    uv_timer_init(sp->loop, &sp->kill_timer);
    sp->restart_timer.data = sp->deadline_timer.data = sp->kill_timer.data = sp;
    sp->timers_open = 3;
    sp->timers_ready = true;
    syc__sp_arm_deadline(sp);
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
    syc__sp_fifo_push(&sp->queue, r);
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
    sp->drain_deadline_ms = syc__sp_now(sp) + (uint64_t)(sp->cfg->drain_timeout_ns / 1000000);
    if (sp->restart_pending && !sp->queue.n) uv_timer_stop(&sp->restart_timer);
    if (!sp->queue.n && !sp->flight.n) {
        syc__sp_maybe_close(sp);
        return;
    }
    syc__sp_arm_deadline(sp);
}

void syc_sp_free(syc_sp_t *sp)
{
    if (!sp) return;
    if (sp->child) sp->child->sp = NULL;
    sp_req_t *r;
    while ((r = syc__sp_fifo_pop(&sp->flight)) || (r = syc__sp_fifo_pop(&sp->queue))) {
        syc__sp_drop_outs(sp, r);
        sp->api->batch_release(r->batch);
        free(r->outs);
        free(r);
    }
    free(sp);
}
